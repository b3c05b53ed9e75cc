"""ODP printing against real Open vSwitch: ``dpctl/add-flow`` then ``dpctl/dump-flows``.

A private ovs-vswitchd (``--enable-dummy``, datapath type ``dummy``, i.e.
dpif-netdev) gets each megaflow of tests/unit/data/odp_flows.txt and a seeded
random corpus; its ``dpctl/dump-flows`` line must equal
``format_dump_line(..., datapath="netdev")`` for the same key, mask and
actions. Revalidators are paused so they keep the hand-added flows.

Differences of dpif-netdev that the corpus steers around (documented in
docs/datapath.md): it makes ``recirc_id`` and ``in_port`` exact (so every
vector matches them exactly), refuses a mask without an Ethernet II type,
prints ``packet_type`` and ``dp:``/``dp-extra-info`` columns under ``-m``
that the kernel datapath has not, and its ``dpctl/add-flow`` refuses
``recirc``, ``hash`` and ``push_mpls``/``pop_mpls`` actions (those vectors are
counted as refused, not compared).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ovsnet.datapath import odp
from tests.differential.ovs_sandbox import OvsSandbox

DATA = Path(__file__).parents[1] / "unit" / "data" / "odp_flows.txt"
SEED = 20240611


def _dump_one(sb: OvsSandbox, flow: str, actions: str) -> str | None:
    """The dump line of one flow, or None if ovs-vswitchd refused it."""
    sb.appctl("dpctl/del-flows")
    if sb.run("ovs-appctl", "dpctl/add-flow", flow, actions, check=False).returncode:
        return None
    lines = [ln for ln in sb.appctl("dpctl/dump-flows").splitlines() if not ln.startswith("flow-dump")]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    sb = OvsSandbox(str(tmp_path_factory.mktemp("ovs")))
    try:
        sb.start()
        sb.vsctl("add-br", "br0", "--", "set", "bridge", "br0", "datapath-type=dummy", "fail-mode=secure",
                 "--", "add-port", "br0", "p1", "--", "set", "Interface", "p1", "type=dummy",
                 "ofport_request=1",
                 "--", "add-port", "br0", "p2", "--", "set", "Interface", "p2", "type=dummy",
                 "ofport_request=2")
        # A running revalidator would re-translate the hand-added flows through
        # the (empty) OpenFlow table and replace or delete them.
        sb.pause_revalidators()
        yield sb
    finally:
        sb.stop()


def _corpus() -> list[tuple[str, str]]:
    out = []
    for line in DATA.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            flow, _, actions = line.partition(" actions:")
            out.append((flow, actions))
    rng = random.Random(SEED)
    for _ in range(40):
        parts = [f"recirc_id({rng.choice(['0', '0x1', '0x2a'])})"]
        if rng.random() < 0.3:
            parts.append(f"skb_mark({rng.randrange(1 << 32):#x}/{rng.choice(['0xff', '0xffffffff'])})")
        parts.append(f"in_port({rng.choice([1, 2])})")
        src = ":".join(f"{rng.randrange(256):02x}" for _ in range(6))
        parts.append(rng.choice(["eth()", f"eth(src={src})", f"eth(dst={src}/ff:ff:ff:00:00:00)"]))
        l3 = rng.choice(["ip", "ip6", "arp"])
        if l3 == "ip":
            proto = rng.choice([6, 17, 1])
            net = ".".join(str(rng.randrange(256)) for _ in range(4))
            parts.append("eth_type(0x0800)")
            parts.append(f"ipv4(src={net}/255.255.{rng.choice(['0.0', '255.0', '255.255'])},"
                         f"proto={proto},ttl={rng.randrange(256)},frag=no)")
            if proto == 6:
                parts.append(f"tcp(dst={rng.randrange(65536)}/{rng.choice(['0xff00', '0xffff'])})")
            elif proto == 17:
                parts.append(f"udp(src={rng.randrange(65536)})")
            else:
                parts.append(f"icmp(type={rng.randrange(256)})")
        elif l3 == "ip6":
            parts.append("eth_type(0x86dd)")
            parts.append(f"ipv6(dst=2001:db8::{rng.randrange(65536):x},proto=17,frag=no),"
                         f"udp(dst={rng.randrange(65536)})")
        else:
            parts.append(f"eth_type(0x0806),arp(tip=10.0.0.{rng.randrange(256)},op={rng.choice([1, 2])})")
        acts = rng.choice(["1", "2", "drop", "pop_vlan,1", f"push_vlan(vid={rng.randrange(4096)},pcp=0),2",
                           f"set(ipv4(ttl={rng.randrange(256)})),1" if l3 == "ip" else "1,2"])
        out.append((",".join(parts), acts))
    return out


CORPUS = _corpus()


def test_dump_lines_equal_real_ovs(sandbox):
    same = refused = 0
    diffs = []
    for flow, actions in CORPUS:
        real = _dump_one(sandbox, flow, actions)
        if real is None:
            refused += 1
            print(f"refused: {flow} actions:{actions}")
            continue
        key, mask = odp.parse_flow(flow)
        ours = odp.format_dump_line(key, mask, odp.parse_actions(actions), 0, 0, 0, 0, 0,
                                    datapath="netdev")
        if ours == real:
            same += 1
        else:
            diffs.append(f"flow:  {flow} actions:{actions}\nreal:  {real}\novsnet: {ours}")
    print(f"\nODP dump lines: {len(CORPUS)} vectors, {refused} refused by ovs-vswitchd, "
          f"{same} identical, {len(diffs)} different")
    # dpctl/add-flow on the dummy datapath refuses recirc, hash and MPLS
    # push/pop actions: the four hand-written vectors that use them.
    assert refused <= 4
    assert not diffs, "\n\n".join(diffs)
