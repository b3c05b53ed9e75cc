"""The MAC learning table against ovs-vswitchd's: identical `fdb/show` text.

A standalone bridge learns from ARP broadcasts traced with `ofproto/trace
-generate` while OVS's clock is stopped and warped (`time/stop`, `time/warp`),
so both tables see the same packets at the same times; after every step the
real `ovs-appctl fdb/show` must equal ovsnet's `format_fdb`, ages, order and
evictions included (small tables force evictions, short aging times expiry).
"""

from __future__ import annotations

import random

import pytest

from ovsnet.ofproto.mac_learning import MacLearning
from tests.differential.ofproto_oracle import oracle_fixture

ARP = ("eth_type(0x0806),arp(sip=192.168.0.1,tip=192.168.0.2,op=1,"
       "sha=50:54:00:00:00:05,tha=00:00:00:00:00:00)")
SEEDS = range(6)


oracle = oracle_fixture("mac-learning")


@pytest.mark.parametrize("seed", SEEDS)
def test_fdb_show_identical_step_by_step(oracle, seed):
    sb = oracle.sb
    rng = random.Random(seed)
    aging, size = rng.choice([15, 20, 30]), rng.choice([10, 12])
    oracle.configure((1, 2, 3, 4, 5, 6), fail_mode="standalone",
                     other_config={"mac-aging-time": str(aging), "mac-table-size": str(size)})
    sb.appctl("time/stop")
    table = MacLearning(idle_time=aging, max_entries=size)
    now = 0
    differences = []
    for step in range(60):
        if rng.random() < 0.3:
            ms = rng.choice([1000, 2000, 5000, 9000])
            sb.appctl("time/warp", str(ms))
            now += ms // 1000
        else:
            port, mac = rng.randint(1, 6), f"50:54:00:00:00:{rng.randint(0, 15):02x}"
            table.run(now)
            oracle.trace(f"in_port({port}),eth(src={mac},dst=ff:ff:ff:ff:ff:ff),{ARP}",
                         generate=True, normalize=False)
            table.learn(mac, 0, port, now)
        table.run(now)
        real, ours = sb.appctl("fdb/show", "br0"), table.format_fdb(now)
        if real != ours:
            differences.append(f"step {step} (t={now}s):\nOVS:\n{real}ovsnet:\n{ours}")
    assert not differences, differences[0]
    assert len(table) > 0
