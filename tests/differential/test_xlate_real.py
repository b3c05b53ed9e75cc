"""ovsnet's translation (xlate) against Open vSwitch 3.1's ``ofproto/trace``.

The cases of tests/differential/data/ofproto_dpif_cases.yaml (OVS's
tests/ofproto-dpif.at restated as data) that use only what
:mod:`ovsnet.ofproto.xlate` supports are loaded into a real ovs-vswitchd (via
tests/differential/ofproto_oracle.py) and into an :class:`ovsnet.ofproto.bridge.Bridge`
with the same ports (``pN`` is OpenFlow and datapath port N, ``LOCAL`` is
datapath port 100), and every trace is translated by both. Compared:

* ``Datapath actions``: ours printed with :func:`ovsnet.ofproto.xlate.format_datapath_actions`,
  both normalised with ``ovs-dpctl normalize-actions`` as the oracle does, and the
  recirculation ids of ``controller`` cookies numbered by first appearance (OVS
  counts them over the daemon's lifetime);
* ``Megaflow``: our wildcards printed as OVS's ``match_format``;
* the ``Translation failed (...)`` reason, when OVS gives one;
* whether the flow is slow-pathed for actions the datapath cannot do;
* the table lookups of the trace (bridge, table, rule, priority).

Cases are selected by name in :data:`SUPPORTED`; :data:`NOT_YET` lists the
others with what they need.
"""

from __future__ import annotations

import json
import os
import random
import re
from dataclasses import dataclass, field

import pytest

from ovsnet.datapath import odp
from ovsnet.ofproto.bridge import Bridge, connect_patch
from ovsnet.ofproto.flow_syntax import parse_flow
from ovsnet.ofproto.of_flow import OfFlow
from ovsnet.ofproto.ofp_fields import OFPP_NONE
from ovsnet.ofproto.vlan import VlanConfig, vlan_limit_from_config
from ovsnet.ofproto.xlate import ACTION_SET, XlateResult, format_datapath_actions, xlate
from tests.differential.ofproto_oracle import (
    OfprotoOracle,
    TraceResult,
    is_odp_flow,
    normalize_actions,
    oracle_fixture,
    vlan_context,
)
from tests.differential.test_ofproto_oracle import CASES, configure, expand_flows

LOCAL_ODP_PORT = 100

#: corpus cases whose every action this model translates (trace indices: all)
SUPPORTED = [
    "resubmit", "goto-table-64", "registers", "extended-registers", "copy-field-xreg",
    "masked-set-field-metadata", "push-pop", "output",
    "multi-vlan-actions-1", "multi-vlan-actions-2", "multi-vlan-actions-3",
    "multi-vlan-actions-4", "multi-vlan-actions-5", "multi-vlan-actions-6",
    "multi-vlan-actions-7", "multi-vlan-actions-8",
    "forward-resubmit", "backward-resubmit", "infinite-resubmit",
    "exponential-resubmit-chain", "too-many-output-actions", "icmpv6-type-match",
    "megaflow-set-dl-dst", "write-actions", "clear-actions",
    "output-flood-flags-1", "output-flood-flags-2", "output-flood-flags-3",
    "output-flood-flags-4", "patch-ports-from-br0", "patch-ports-from-br1", "modify-nd",
    "output-ofpp-none-ingress", "vlan-depth-limit-1", "vlan-depth-limit-unlimited",
    "extended-extended-registers", "dec-ttl", "output-flood-flags-5",
    "learn-vlan-mac", "learn-tcp-ports", "learn-br-tun-table-10",
    *(c["name"] for c in CASES if c["name"].startswith("vlan-handling-")),
]

#: cases not run yet, with what they need
NOT_YET: dict[str, str] = {}

_BY_NAME = {c["name"]: c for c in CASES}

#: the datapath of the oracle's bridges (``datapath_type=dummy``): it maps queues to
#: priorities as dpif-netdev does
DATAPATH_TYPE = "dummy"


def vlan_config(columns: dict, port: str) -> VlanConfig:
    """The bundle settings for a case's ``port_config`` Port columns."""
    def vids(text):
        return None if text is None else [int(v) for v in str(text).strip("[]").split(",") if v]
    oc = {k.split(":", 1)[1]: str(v) for k, v in columns.items() if k.startswith("other_config:")}
    tag = columns.get("tag")
    return VlanConfig.configure(vlan_mode=columns.get("vlan_mode"),
                                tag=None if tag is None else int(tag),
                                trunks=vids(columns.get("trunks")),
                                cvlans=vids(columns.get("cvlans")), other_config=oc, port=port)


def build_bridge(case: dict) -> Bridge:
    """br0 as the oracle builds it, and br1 behind patch ports when the case has one.

    With ``fail_mode: standalone`` and no controller, ovs-vswitchd adds a
    priority 0 flow with the NORMAL action (connmgr's fail-open flow).
    """
    bridge = Bridge("br0", local_odp_port=LOCAL_ODP_PORT)
    for n in case.get("ports", ()):
        bridge.add_port(f"p{n}", n, n)
    for n, columns in (case.get("port_config") or {}).items():
        bridge.set_vlan_config(int(n), vlan_config(columns, f"p{n}"))
    bridge.vlan_limit = vlan_limit_from_config(case.get("ovs_config") or {})
    if case.get("fail_mode") == "standalone":
        bridge.add_flow("priority=0,actions=NORMAL")
    patch = case.get("patch")
    if patch is not None:
        other = Bridge("br1", local_odp_port=LOCAL_ODP_PORT + 1)
        for n in patch.get("ports", ()):
            other.add_port(f"p{n}", n, n)
        connect_patch(bridge, patch.get("local", "patch-br1"), patch["local_ofport"],
                      other, patch.get("remote", "patch-br0"), patch["remote_ofport"])
        for text in expand_flows(patch.get("flows")):
            other.add_flow(parse_flow(text, other.port_map))
    for port, flag in (case.get("mod_port") or {}).items():
        bridge.mod_port(int(port), flag)
    for text in expand_flows(case.get("flows")):
        bridge.add_flow(parse_flow(text, bridge.port_map))
    return bridge


def trace_flow(bridge: Bridge, text: str) -> tuple[Bridge, OfFlow]:
    """The bridge and flow ``ofproto/trace`` would translate for ``text``.

    An ODP flow enters the bridge owning its datapath input port (br0 or a
    patch peer); an OpenFlow flow enters br0.
    """
    if is_odp_flow(text):
        key, _mask = odp.parse_flow(text)
        odp_port = int(re.search(r"in_port\((\d+)\)", text).group(1))
        for br in (bridge, *bridge.patch_bridges):
            if odp_port in br.dp_port_names:
                return br, br.limit_vlans(OfFlow.from_flow_key(key, br.ofport_of_odp))
        return bridge, bridge.limit_vlans(OfFlow.from_flow_key(key, bridge.ofport_of_odp))
    fm = parse_flow(text + ",actions=drop", bridge.port_map)
    flow = OfFlow.from_match(fm.match)
    if not fm.match.get("in_port")[1]:
        flow.set("in_port", OFPP_NONE)
    return bridge, flow


def ovs_output_order(ovs: TraceResult, bridge: Bridge) -> list[int]:
    """The OpenFlow ports in the order OVS's datapath actions output to them.

    NORMAL floods in the order of OVS's bundle list, which depends on memory
    addresses; where a flood mixes tag pushes and pops, the megaflow's VLAN
    mask depends on that order, so ours follows OVS's.
    """
    by_odp = {p.odp_port: p.ofport for p in bridge.ports if p.odp_port is not None}
    order = []
    for m in re.finditer(r"(?:^|,)(\d+)(?=,|$)", ovs.datapath_actions or ""):
        ofport = by_odp.get(int(m.group(1)))
        if ofport is not None and ofport not in order:
            order.append(ofport)
    return order


_FAILED_RE = re.compile(r"Translation failed \((.*)\), packet is dropped\.")
_RECIRC_RE = re.compile(r"(?<=,recirc_id=)(\d+)(?=,rule_cookie=)|(?<=recirc\()(0x[0-9a-f]+)(?=\))")


def renumber_recirc_ids(actions: str) -> str:
    """Recirculation ids (of ``recirc(...)`` actions and ``controller(...)`` cookies)
    renumbered 1, 2, ... by first appearance: OVS draws them from one counter over
    the daemon's lifetime."""
    ids: dict[int, int] = {}

    def renumber(m: re.Match) -> str:
        n = ids.setdefault(int(m.group(0), 0), len(ids) + 1)
        return str(n) if m.group(1) else hex(n)
    return _RECIRC_RE.sub(renumber, actions)


def differences(ovs: TraceResult, ours: XlateResult, bridge: Bridge,
                rule_text: bool = True) -> dict[str, str]:
    """What differs, by aspect (``actions``, ``megaflow``, ``slow path``, ``tables``,
    ``error``); empty if nothing."""
    out: dict[str, str] = {}
    text = format_datapath_actions(ours.datapath_actions)
    theirs = ovs.datapath_actions or ""
    if ovs.normalized_actions is not None:
        mine = renumber_recirc_ids(normalize_actions(vlan_context(ovs.flow), text))
        if mine != renumber_recirc_ids(ovs.normalized_actions):
            out["actions"] = f"ours {text!r} != ovs {theirs!r}"
    elif renumber_recirc_ids(text) != renumber_recirc_ids(theirs):
        out["actions"] = f"ours {text[:200]!r} != ovs {theirs[:200]!r}"
    if ovs.megaflow is not None and ours.megaflow() != ovs.megaflow:
        out["megaflow"] = f"ours {ours.megaflow()!r} != ovs {ovs.megaflow!r}"
    ovs_slow = "Uses action(s) not supported by datapath" in ovs.raw
    if ovs_slow != ours.slow:
        out["slow path"] = f"ours {ours.slow} != ovs {ovs_slow}"
    theirs_steps = [(t.bridge, t.table, t.rule if rule_text else t.rule is None, t.priority)
                    for t in ovs.tables]
    our_steps = [(t.bridge, t.table, t.rule if rule_text else t.rule is None, t.priority)
                 for t in ours.trace if t.table != ACTION_SET]
    if theirs_steps != our_steps:
        out["tables"] = f"ours {our_steps[:6]} != ovs {theirs_steps[:6]}"
    m = _FAILED_RE.search(ovs.raw)
    if (m.group(1) if m else None) != ours.error:
        out["error"] = f"ours {ours.error!r} != ovs {m.group(1) if m else None!r}"
    return out


oracle = oracle_fixture("xlate-oracle")


def test_selection_covers_corpus():
    """Every corpus case is either run here or listed with what it still needs."""
    names = set(_BY_NAME)
    assert set(SUPPORTED) <= names and set(NOT_YET) <= names
    assert not set(SUPPORTED) & set(NOT_YET)
    assert set(SUPPORTED) | set(NOT_YET) == names


@pytest.mark.real_ovs
@pytest.mark.parametrize("name", SUPPORTED)
def test_xlate_agrees_with_ovs(oracle, name):
    case = _BY_NAME[name]
    configure(oracle, case)
    bridge = build_bridge(case)
    problems = []
    for want in case["traces"]:
        ovs = oracle.trace(want["flow"], generate=want.get("generate", False))
        assert ovs.error is None, ovs.error
        bridge.bundle_order = ovs_output_order(ovs, bridge)
        ours = xlate(*trace_flow(bridge, want["flow"]), generate=want.get("generate", False),
                     datapath_type=DATAPATH_TYPE)
        assert not ours.unsupported, f"{name} uses unsupported actions: {ours.unsupported}"
        # ovs-ofctl sends the flows encoded for the case's protocol, and OVS prints the
        # rule as decoded (vlan_tci=0 is vlan_tci=0x0000/0x1fff in OXM); ovsnet keeps the
        # flow as written, so rule texts are compared for OpenFlow 1.0 cases only
        exact = case.get("protocol") in (None, "OpenFlow10")
        for aspect, text in differences(ovs, ours, bridge, exact).items():
            problems.append(f"{want['flow']}: {aspect}: {text}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------
# Seeded random flow tables and packets

#: seeds run by default (CI); XLATE_RANDOM_SEEDS=N runs seeds 0..N-1 instead
RANDOM_SEEDS = range(int(os.environ.get("XLATE_RANDOM_SEEDS", "12")))
RANDOM_PORTS = (1, 2, 3, 4)


def random_case(seed: int) -> tuple[list[str], list[str]]:
    """Flows (3 tables, each with a catch-all) and ODP packets for one seed.

    Matches draw from in_port, Ethernet addresses, VLAN, IPv4/IPv6 prefixes, MPLS
    labels, the protocol, transport ports, reg0 and xxreg0; actions from
    output, resubmit to a later table, header rewrites consistent with the
    match, register loads (xxreg too), VLAN pop/modify, dec_ttl, move,
    push/pop, clone, exit, NORMAL (every port a trunk; traces do not learn),
    CONTROLLER and controller(...), enqueue/set_queue/pop_queue, the MPLS
    actions and learn (traces have no side effects, so it only matches its
    sources). Packets are IPv4, IPv6 or MPLS, some VLAN-tagged. OVS accepts
    every flow (ovsnet's parser applies the same consistency checks).
    """
    rng = random.Random(seed)
    flows = []
    for table in range(3):
        for k in range(rng.randint(2, 6) + 1):
            match = [f"table={table}", f"priority={rng.randint(1, 5) * 100 if k else 0}"]
            proto = rng.choice([None, "ip", "tcp", "udp", "ipv6", "tcp6", "mpls"]) if k else None
            ipv4 = proto in ("ip", "tcp", "udp")
            if proto:
                match.append(proto)
            if rng.random() < 0.4:
                match.append(f"in_port={rng.choice(RANDOM_PORTS)}")
            if rng.random() < 0.3:
                match.append(f"dl_dst=50:54:00:00:00:0{rng.randint(1, 3)}")
            if rng.random() < 0.2:
                match.append(rng.choice(["vlan_tci=0", "dl_vlan=10", "dl_vlan=20",
                                         "vlan_tci=0x1000/0x1000"]))
            if ipv4 and rng.random() < 0.5:
                plen = rng.choice([8, 16, 24, 32])
                match.append(f"nw_{rng.choice(['src', 'dst'])}=10.0.{rng.randint(0, 1)}."
                             f"{rng.randint(1, 3)}/{plen}")
            elif proto in ("ipv6", "tcp6") and rng.random() < 0.5:
                match.append(f"ipv6_{rng.choice(['src', 'dst'])}=2001:db8::"
                             f"{rng.randint(1, 3)}/{rng.choice([64, 126, 128])}")
            if proto in ("tcp", "udp", "tcp6") and rng.random() < 0.4:
                match.append(f"tp_dst={rng.choice([22, 80, 443])}")
            if proto == "mpls" and rng.random() < 0.6:
                match.append(rng.choice([f"mpls_label={rng.choice([100, 200])}", "mpls_ttl=1",
                                         "mpls_bos=1", "mpls_tc=0"]))
            if table and rng.random() < 0.3:
                match.append(rng.choice([f"reg0={rng.randint(0, 2)}",
                                         f"xxreg0=0x{rng.randint(0, 2)}/0xff"]))
            if not k:  # a catch-all per table, so that most packets reach some actions
                match = match[:2]
            actions = []
            for _ in range(rng.randint(0, 3)):
                kind = rng.randrange(16)
                if kind <= 1:
                    actions.append(f"output:{rng.choice(RANDOM_PORTS)}")
                elif kind == 2 and table < 2:
                    actions.append(f"resubmit(,{rng.randint(table + 1, 2)})")
                elif kind == 3:
                    actions.append(f"load:{rng.randint(0, 2)}->NXM_NX_REG0[]")
                elif kind == 4:
                    actions.append(f"mod_dl_src:50:54:00:00:00:{rng.randint(4, 6):02x}")
                elif kind == 5 and proto:
                    actions.append(rng.choice(["dec_ttl", f"mod_nw_tos:{rng.choice([0, 32])}"]
                                              + [f"mod_nw_dst:10.0.9.{rng.randint(1, 3)}"] * ipv4))
                elif kind == 6 and proto in ("tcp", "udp", "tcp6"):
                    actions.append(f"mod_tp_dst:{rng.choice([80, 8080])}")
                elif kind == 7:
                    actions.append(rng.choice(["mod_vlan_vid:30", "strip_vlan",
                                               "mod_vlan_pcp:3"]))
                elif kind == 8:
                    actions.append("in_port")
                elif kind == 9:
                    actions.append(rng.choice(["move:NXM_OF_ETH_SRC[0..7]->NXM_NX_REG0[0..7]",
                                               "output:NXM_NX_REG0[0..15]"]))
                elif kind == 10:
                    actions.append(rng.choice(["push:NXM_NX_REG0[]", "pop:NXM_NX_REG0[]"]))
                elif kind == 11:
                    actions.append(f"clone(mod_dl_dst:50:54:00:00:00:0{rng.randint(1, 3)},"
                                   f"output:{rng.choice(RANDOM_PORTS)})")
                elif kind == 12:
                    actions.append(rng.choice(["exit", "note:01.02", "output:LOCAL", "NORMAL"]))
                elif kind == 13:
                    actions.append(rng.choice([
                        "CONTROLLER", "controller(reason=invalid_ttl,id=3,max_len=64)",
                        f"enqueue:{rng.choice(RANDOM_PORTS)}:{rng.randint(0, 2)}",
                        f"set_queue:{rng.randint(1, 2)}", "pop_queue"]))
                elif kind == 14:
                    actions.append(rng.choice([
                        f"load:{rng.randint(0, 2)}->NXM_NX_XXREG0[0..7]",
                        "load:0x1122334455667788aabbccddeeff0011->NXM_NX_XXREG1[]",
                        "move:NXM_NX_XXREG1[0..15]->NXM_NX_XXREG0[0..15]",
                        "learn(table=2,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],"
                        "output:OXM_OF_IN_PORT[])"]))
                elif kind == 15:
                    actions.append(rng.choice([
                        "push_mpls:0x8847", "push_mpls:0x8848", "pop_mpls:0x0800",
                        f"set_mpls_label({rng.choice([100, 300])})", "set_mpls_tc(5)",
                        f"set_mpls_ttl({rng.choice([1, 9])})", "dec_mpls_ttl"]))
            if table < 2 and rng.random() < 0.4:
                actions.append(f"resubmit(,{table + 1})")
            flows.append(" ".join(match) + " actions=" + (",".join(actions) or "drop"))
    packets = []
    for _ in range(8):
        proto = rng.choice([6, 17, 1])
        l4 = {6: "tcp", 17: "udp", 1: "icmp"}[proto]
        l4 += ("(type=8,code=0)" if proto == 1 else
               f"(src={rng.randint(1000, 2000)},dst={rng.choice([22, 80, 443, 53])})")
        if rng.random() < 0.15:
            inner = (f"eth_type(0x8847),mpls(label={rng.choice([100, 200])},"
                     f"tc={rng.choice([0, 5])},ttl={rng.choice([1, 64])},bos=1)")
        elif rng.random() < 0.25 and proto != 1:
            inner = (f"eth_type(0x86dd),ipv6(src=2001:db8::{rng.randint(1, 3)},"
                     f"dst=2001:db8::{rng.randint(1, 3)},label=0,proto={proto},"
                     f"tclass={rng.choice([0, 32])},hlimit={rng.choice([2, 64])},frag=no),{l4}")
        else:
            inner = (f"eth_type(0x0800),ipv4(src=10.0.{rng.randint(0, 1)}.{rng.randint(1, 3)},"
                     f"dst=10.0.{rng.randint(0, 1)}.{rng.randint(1, 3)},proto={proto},"
                     f"tos={rng.choice([0, 32])},ttl={rng.choice([2, 64])},frag=no),{l4}")
        if rng.random() < 0.3:
            inner = (f"eth_type(0x8100),vlan(vid={rng.choice([10, 20])},pcp=0),"
                     f"encap({inner})")
        packets.append(f"in_port({rng.choice(RANDOM_PORTS)}),eth(src=50:54:00:00:00:0"
                       f"{rng.randint(1, 3)},dst=50:54:00:00:00:0{rng.randint(1, 3)}),{inner}")
    return flows, packets


@dataclass
class Outcome:
    """One random trace translated by both: what differs (empty if nothing).

    ``unsupported`` lists what ovsnet could not translate; such a trace is
    not compared (``differences`` is then empty).
    """

    packet: str
    ours_actions: str = ""
    ovs_actions: str = ""
    ours_megaflow: str = ""
    ovs_megaflow: str = ""
    differences: dict[str, str] = field(default_factory=dict)
    unsupported: list[str] = field(default_factory=list)


def _outcome(bridge: Bridge, oracle: OfprotoOracle, packet: str, generate: bool) -> Outcome:
    unsupported = xlate(*trace_flow(bridge, packet), datapath_type=DATAPATH_TYPE).unsupported
    if unsupported:  # e.g. a recirculation after pop_mpls
        return Outcome(packet, unsupported=unsupported)
    ovs = oracle.trace(packet, generate=generate)
    assert ovs.error is None, ovs.error
    bridge.bundle_order = ovs_output_order(ovs, bridge)
    ours = xlate(*trace_flow(bridge, packet), generate=generate, datapath_type=DATAPATH_TYPE)
    return Outcome(packet, format_datapath_actions(ours.datapath_actions),
                   ovs.datapath_actions or "", ours.megaflow(), ovs.megaflow or "",
                   differences(ovs, ours, bridge))


def random_table_outcomes(oracle: OfprotoOracle, seed: int) -> tuple[list[str], list[Outcome]]:
    """The flows of :func:`random_case` for ``seed`` and the outcome of each packet.

    Odd seeds trace with side effects (``-generate``), in order: learn actions add
    flows and NORMAL learns MAC addresses for the packets that follow.
    """
    flows, packets = random_case(seed)
    case = {"name": f"random-{seed}", "ports": list(RANDOM_PORTS), "flows": flows}
    configure(oracle, case)
    bridge = build_bridge(case)
    return flows, [_outcome(bridge, oracle, packet, seed % 2 == 1) for packet in packets]


@pytest.mark.real_ovs
@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_random_tables_agree_with_ovs(oracle, seed):
    flows, outcomes = random_table_outcomes(oracle, seed)
    compared = [o for o in outcomes if not o.unsupported]
    assert len(compared) >= len(outcomes) // 2, \
        f"only {len(compared)} packets without unsupported actions"
    problems = [f"{o.packet}: {aspect}: {text}" for o in compared
                for aspect, text in o.differences.items()]
    assert not problems, "flows:\n  " + "\n  ".join(flows) + "\n" + "\n".join(problems)


# ---------------------------------------------------------------------------------
# Seeded random NORMAL bridges: VLAN modes and MAC learning

#: seeds run by default; XLATE_NORMAL_SEEDS=N runs seeds 0..N-1 instead
NORMAL_SEEDS = range(int(os.environ.get("XLATE_NORMAL_SEEDS", "6")))
#: Port columns a random NORMAL bridge's ports draw from ({} is a trunk of every VLAN)
NORMAL_PORT_CHOICES = [
    {}, {"tag": 10}, {"tag": 20}, {"trunks": "[10,20]"},
    {"vlan_mode": "native-untagged", "tag": 10},
    {"vlan_mode": "native-tagged", "tag": 20, "trunks": "[10,20]"},
    {"vlan_mode": "dot1q-tunnel", "tag": 10, "other_config:qinq-ethtype": "802.1q"},
    {"tag": 10, "other_config:priority-tags": "if-nonzero"},
]


def normal_case(seed: int) -> tuple[dict[int, dict], str, list[str]]:
    """Port VLAN settings, ``vlan-limit`` and a sequence of ODP packets for one seed.

    The packets come from 4 MAC addresses (and go to them or to broadcast),
    untagged, priority-tagged, in VLAN 10 or 20 or double-tagged, so that
    later packets find what earlier ones taught the MAC table.
    """
    rng = random.Random(seed)
    vlan_limit = rng.choice(["1", "0"])
    port_config = {}
    for n in RANDOM_PORTS:
        columns = rng.choice(NORMAL_PORT_CHOICES)
        if columns:
            port_config[n] = columns
    packets = []
    for _ in range(16):
        src = rng.randint(1, 4)
        dst = rng.choice(["ff:ff:ff:ff:ff:ff"] + [f"50:54:00:00:00:0{i}" for i in range(1, 5)
                                                  if i != src])
        inner = ("eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto=1,tos=0,ttl=64,"
                 "frag=no),icmp(type=8,code=0)")
        vid = rng.choice([None, None, 0, 10, 20])
        if vid is not None:
            inner = f"eth_type(0x8100),vlan(vid={vid},pcp={rng.choice([0, 3])}),encap({inner})"
            if rng.random() < 0.3:
                tpid = rng.choice(["0x8100", "0x88a8"])
                inner = f"eth_type({tpid}),vlan(vid={rng.choice([10, 20])},pcp=0),encap({inner})"
        port = rng.choice([*RANDOM_PORTS, LOCAL_ODP_PORT])
        packets.append(f"in_port({port}),eth(src=50:54:00:00:00:0{src},dst={dst}),{inner}")
    return port_config, vlan_limit, packets


def normal_bridge_outcomes(oracle: OfprotoOracle, seed: int) -> tuple[str, list[Outcome]]:
    """The bridge of :func:`normal_case` for ``seed`` (described) and the outcome of each
    packet, traced with ``-generate`` so that both learn MAC addresses."""
    port_config, vlan_limit, packets = normal_case(seed)
    case = {"name": f"normal-{seed}", "ports": list(RANDOM_PORTS), "flows": [],
            "fail_mode": "standalone", "port_config": port_config,
            "ovs_config": {"vlan-limit": vlan_limit}}
    configure(oracle, case)
    bridge = build_bridge(case)
    return (f"ports {port_config}, vlan-limit {vlan_limit}",
            [_outcome(bridge, oracle, packet, True) for packet in packets])


@pytest.mark.real_ovs
@pytest.mark.parametrize("seed", NORMAL_SEEDS)
def test_random_normal_bridges_agree_with_ovs(oracle, seed):
    """Each packet is traced with ``-generate`` (so both learn) and compared as above."""
    described, outcomes = normal_bridge_outcomes(oracle, seed)
    assert not any(o.unsupported for o in outcomes)
    problems = [f"{o.packet}: {aspect}: {text}" for o in outcomes
                for aspect, text in o.differences.items()]
    assert not problems, described + "\n" + "\n".join(problems)


@pytest.mark.real_ovs
def test_agreement_tool_prints_the_figures(capsys):
    """``python -m tests.differential.agreement`` over one seed of each generator."""
    from tests.differential import agreement

    assert agreement.main(["--seeds", "1", "--start", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["seeds"] == [3, 3]
    assert result["traces"] == len(random_case(3)[1]) + len(normal_case(3)[2])
    assert result["identical_actions_pct"] == result["identical_megaflows_pct"] == 100.0
    assert result["disagreements"] == []
