"""Revalidation against real ovs-vswitchd 3.1: the datapath flows left after each change.

The same switch (br0 with dummy ports p1..p3, ``pN`` OpenFlow and datapath
port N, the local port datapath port 100) runs in a private ovs-vswitchd
with the dummy (userspace) datapath and in a :class:`~ovsnet.vswitchd.Vswitchd`
built from the equivalent OVSDB rows. Both receive the same packets, so
both install megaflows from upcalls; then the OpenFlow tables change
(``ovs-ofctl add-flow``, ``del-flows``, ``mod-port``) or NORMAL learns MAC
addresses, OVS's revalidators run a round (``revalidator/wait``) and ovsnet
revalidates, and ``dpctl/dump-flows`` of both must hold the same megaflows
with the same actions: deleted where the new tables need more bits, modified
where only the actions changed (OVS may delete where ovsnet keeps, see
:meth:`Pair.compare`). Seeded; ``REVALIDATION_SEEDS=N`` runs more.
"""

from __future__ import annotations

import os
import random
import re

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from ovsnet.datapath import odp
from ovsnet.datapath.host import dump_flows
from ovsnet.ofproto.upcall import wc_to_key_mask
from ovsnet.ofproto.xlate import xlate
from ovsnet.vswitchd import BridgeConfig, HostConfig, IfaceConfig, PortConfig, Vswitchd
from tests.differential.ofproto_oracle import OfprotoOracle, oracle_fixture
from tests.differential.test_fastpath_real import odp_packet

SEEDS = range(int(os.environ.get("REVALIDATION_SEEDS", "2")))
PORTS = (1, 2, 3)
#: keep OVS from expiring idle flows while a case runs
OVS_CONFIG = {"max-idle": "600000"}

#: over every comparison of the run: flows OVS had (all found in ovsnet's datapath with
#: the same actions), and flows OVS had deleted where ovsnet kept them
TALLY = {"compared": 0, "ovs_flows": 0, "ovs_deleted_ovsnet_kept": 0, "ovs_stale": 0}

_STATS_RE = re.compile(r", packets:\d+, bytes:\d+, used:[^,]+(?:, flags:[^,]+)?")


def frame(src: int, dst: int, ip_dst: str, dport: int) -> bytes:
    return bytes(Ether(src=f"50:54:00:00:00:{src:02x}", dst=f"50:54:00:00:00:{dst:02x}")
                 / IP(src="10.0.0.1", dst=ip_dst) / TCP(dport=dport))


def normalized(dump: str) -> list[str]:
    """Dump lines as (masked match, actions), without stats, with runs of plain output
    ports sorted (NORMAL floods in hash order).

    The match is parsed and printed again with its key masked: the userspace
    datapath keeps the upcall's whole key and prints its wildcarded bits
    (``tcp(dst=80/0xffc0)``), ovsnet's megaflow table keeps the masked key
    (``tcp(dst=64/0xffc0)``), as the kernel does.
    """
    out = []
    for line in dump.splitlines():
        if "actions:" not in line:
            continue
        match, actions = _STATS_RE.sub("", line).rsplit("actions:", 1)
        key, mask = odp.parse_flow(match.strip().rstrip(","))
        masked = bytes(a & b for a, b in zip(key, mask, strict=True))
        parts = actions.split(",")
        if all(p.isdigit() for p in parts):
            actions = ",".join(sorted(parts, key=int))
        out.append(f"{odp.format_flow(masked, mask)} actions:{actions}")
    return sorted(out)


def flow_line(datapath, f) -> str:
    """One flow of ovsnet's datapath as :func:`normalized` prints a dump line of it."""
    line = odp.format_dump_line(f.key, f.mask, f.actions, f.packets, f.bytes, f.used_ms,
                                datapath.clock(), f.tcp_flags, datapath="netdev")
    return normalized(line)[0]


def ours_for(flows: list[str], fail_mode: str) -> Vswitchd:
    ports = [PortConfig("br0", (IfaceConfig("br0", "internal", dp_port=100),))]
    ports += [PortConfig(f"p{n}", (IfaceConfig(f"p{n}", "dummy", ofport_request=n, dp_port=n),))
              for n in PORTS]
    config = HostConfig(bridges=(BridgeConfig("br0", fail_mode=fail_mode, datapath_type="netdev",
                                              ports=tuple(ports)),))
    return Vswitchd(config, flows={"br0": flows}, clock=lambda: 0)


class Pair:
    """The real switch and ours, driven together."""

    def __init__(self, oracle: OfprotoOracle, flows: list[str], fail_mode: str):
        self.oracle, self.sb = oracle, oracle.sb
        oracle.configure(PORTS, flows=flows, fail_mode=fail_mode, ovs_config=OVS_CONFIG)
        # start from an empty datapath: flows and their ukeys (dpctl/del-flows would
        # leave ukeys behind, and a flow whose ukey exists is not installed again)
        self.sb.pause_revalidators()
        self.sb.purge_datapath()
        self.sb.appctl("revalidator/resume")
        self.sb.paused = False
        self.ours = ours_for(flows, fail_mode)
        #: flows OVS deleted where ovsnet kept or modified them
        self.ovs_deleted = 0

    def receive(self, port: int, data: bytes) -> None:
        self.sb.receive(f"p{port}", data)
        self.ours.receive_frames(f"p{port}", [data])

    def stale_in_ovs(self, line: str) -> bool:
        """Whether a datapath flow of OVS's (a :func:`normalized` line) has other
        actions than OVS's own translation of its packets gives now.

        ovs-vswitchd's upcalls and revalidators run on their own threads; now
        and then a flow translated just before a flow-table change outlives
        every later revalidation round with its old actions. Such a flow is
        OVS's, not a revalidation ovsnet should copy: it is counted apart.
        """
        match, actions = line.rsplit(" actions:", 1)
        key, mask = odp.parse_flow(match)
        masked = bytes(a & b for a, b in zip(key, mask, strict=True))
        trace = self.oracle.trace(odp_packet(masked))
        now = trace.datapath_actions or "drop"
        parts = now.split(",")
        if all(p.isdigit() for p in parts):
            now = ",".join(sorted(parts, key=int))
        if now == actions:
            return False
        TALLY["ovs_stale"] += 1
        return True

    def compare(self, what: str) -> list[str]:
        """What differs between the two datapaths after a revalidation round.

        Every flow OVS has must be in ovsnet's datapath with the same actions,
        unless OVS itself now translates its packets otherwise
        (:meth:`stale_in_ovs`).
        OVS may have deleted a flow that ovsnet kept: revalidation allows both
        (a deletion is never wrong, the next packet is an upcall), and OVS
        now and then deletes, after ``replace-flows``, a flow its own
        ``revalidate_ukey__`` rule would keep; such a flow of ovsnet's must
        still equal a fresh translation of its key, and is then deleted from
        ovsnet's datapath too, so that the next packets are upcalls in both.
        """
        self.sb.appctl("revalidator/wait")
        theirs = normalized(self.sb.appctl("dpctl/dump-flows"))
        mine = normalized(dump_flows(self.ours.datapath))
        problems = []
        missing = [line for line in sorted(set(theirs) - set(mine))
                   if not self.stale_in_ovs(line)]
        if missing:
            problems.append(f"{what}:\n  ovs:   {theirs}\n  ovsnet: {mine}")
        handler = self.ours.handler
        for f in self.ours.datapath.flows():
            bridge, flow = handler.flow_of_key(handler.ukeys[bytes(f.ufid)].key)
            fresh = xlate(bridge, flow, datapath_type="netdev")
            wider = int.from_bytes(wc_to_key_mask(fresh.wc), "little") & ~int.from_bytes(
                bytes(f.mask), "little")
            if fresh.datapath_actions != bytes(f.actions) or wider:
                problems.append(f"{what}: stale megaflow {odp.format_flow(f.key, f.mask)}")
        gone = set(mine) - set(theirs)
        self.ovs_deleted += len(gone)
        TALLY["compared"] += 1
        TALLY["ovs_flows"] += len(theirs)
        TALLY["ovs_deleted_ovsnet_kept"] += len(gone)
        # Follow OVS's extra deletions, so that the next packets meet the same
        # datapath in both: a packet OVS upcalls must not hit a flow ovsnet kept.
        datapath = self.ours.datapath
        for f in list(datapath.flows()):
            if flow_line(datapath, f) in gone:
                datapath.flow_del(bytes(f.ufid))
                handler.ukeys.pop(bytes(f.ufid), None)
        return problems


oracle = oracle_fixture("revalidation-oracle")


CATCH_ALL = "priority=0,actions=drop"
MATCHES = ["ip", "tcp,tp_dst=22", "in_port=2", "ip,nw_dst=10.0.0.3", "in_port=1,ip",
           "dl_src=50:54:00:00:00:01", "tcp,tp_dst=80", "ip,nw_dst=10.0.0.0/31"]
ACTIONS = ["output:1", "output:2", "output:3", "drop", "output:2,output:3",
           "mod_nw_dst:10.0.0.9,output:2", "mod_dl_src:50:54:00:00:00:09,output:3"]


def random_packet(rng: random.Random) -> tuple[int, bytes]:
    return rng.choice(PORTS), frame(rng.randint(1, 3), rng.randint(1, 3),
                                    f"10.0.0.{rng.randint(1, 3)}", rng.choice((22, 80)))


@pytest.mark.real_ovs
@pytest.mark.parametrize("seed", SEEDS)
def test_flow_table_edits(oracle, seed):
    rng = random.Random(seed)
    flows = [f"priority={rng.randint(1, 30)},{rng.choice(MATCHES)},actions={rng.choice(ACTIONS)}"
             for _ in range(rng.randint(1, 4))] + [CATCH_ALL]
    pair = Pair(oracle, flows, "secure")
    problems = []
    for step in range(6):
        for _ in range(3):
            pair.receive(*random_packet(rng))
        problems += pair.compare(f"step {step} after packets")
        kind = rng.random()
        if kind < 0.75:
            flow = (f"priority={rng.randint(1, 30)},{rng.choice(MATCHES)},"
                    f"actions={rng.choice(ACTIONS)}")
            pair.sb.ofctl("add-flow", "br0", flow)
            pair.ours.add_flow("br0", flow)
            what = f"add-flow {flow}"
        elif kind < 0.9:
            port, word = rng.choice(PORTS), rng.choice(["no-forward", "forward"])
            pair.sb.ofctl("mod-port", "br0", f"p{port}", word)
            pair.ours.mod_port("br0", f"p{port}", word.replace("-", ""))
            what = f"mod-port p{port} {word}"
        else:
            # every table keeps a catch-all: on a table miss OVS picks its miss rule by
            # whether an OpenFlow 1.0 connection (ovs-ofctl's own) is open at that moment
            with open(pair.sb.root + "/catch-all.txt", "w") as f:
                f.write(CATCH_ALL + "\n")
            pair.sb.ofctl("--bundle", "replace-flows", "br0", pair.sb.root + "/catch-all.txt")
            pair.ours.bridge("br0").del_flows()
            pair.ours.add_flow("br0", CATCH_ALL)
            what = "del-flows, then the catch-all (one bundle)"
        problems += pair.compare(f"step {step} after {what}")
    for port in PORTS:  # leave the ports as the next case expects them
        pair.sb.ofctl("mod-port", "br0", f"p{port}", "forward")
    assert not problems, f"flows {flows}\n" + "\n".join(problems)


@pytest.mark.real_ovs
@pytest.mark.parametrize("seed", SEEDS)
def test_mac_learning_revalidates_normal_flows(oracle, seed):
    """A standalone bridge (NORMAL): learning a MAC turns flooding megaflows into unicast."""
    rng = random.Random(1000 + seed)
    pair = Pair(oracle, [], "standalone")
    problems = []
    for step in range(8):
        src = rng.randint(1, 3)
        dst = rng.choice([d for d in (1, 2, 3) if d != src])
        # host N sits behind port N, so what is learned never moves
        pair.receive(src, frame(src, dst, f"10.0.0.{dst}", 80))
        problems += pair.compare(f"step {step}: {src} -> {dst}")
    pair.sb.appctl("fdb/flush", "br0")
    assert not problems, "\n".join(problems)
