"""The whole text of ``ovsnet trace`` against Open vSwitch 3.1's ``ofproto/trace``.

Every trace of the corpus cases that translation supports (the selection of
test_xlate_real.py: tests/differential/data/ofproto_dpif_cases.yaml, single
bridges and patch-port pairs) is printed by :func:`ovsnet.ofproto.trace.trace_text`
(rules and actions as ovs-vswitchd decodes them from the flow_mods of the case's
``ovs-ofctl -O`` protocol, OpenFlow 1.0 by default) and compared line by line with what real ovs-vswitchd prints for the same
bridge and flow: ``Flow:``, the ``bridge("...")`` blocks with their table and
action lines and indentation, ``Final flow:``, ``Megaflow:``, ``Datapath
actions:`` and the failure or slow-path explanation. Only the ``Datapath
actions`` line is compared after ``ovs-dpctl normalize-actions`` (NORMAL and
FLOOD output in hash-map order in OVS). Cases whose text still differs are
listed in :data:`TEXT_DIFFERENCES` with the reason; they are strict xfails, so
one that starts to agree must leave the list. The tunnel cases of
test_tunnel_xlate_real.py (OVS's tunnel.at) are compared the same way
(:data:`TUNNEL_TEXT_DIFFERENCES`).
"""

from __future__ import annotations

import os

import pytest

from ovsnet.ofproto.trace import trace_text
from ovsnet.ofproto.xlate import xlate
from tests.differential.ofproto_oracle import (
    OfprotoOracle,
    normalize_actions,
    oracle_fixture,
    vlan_context,
)
from tests.differential.test_ofproto_oracle import configure
from tests.differential.test_xlate_real import (
    _BY_NAME,
    DATAPATH_TYPE,
    SUPPORTED,
    build_bridge,
    ovs_output_order,
    renumber_recirc_ids,
    trace_flow,
)

#: cases whose trace text differs from OVS's, and why
TEXT_DIFFERENCES: dict[str, str] = {
}

_ACTIONS = "Datapath actions: "


oracle = oracle_fixture("trace-text-oracle")


def _normalized(text: str, flow: str | None) -> str:
    """``text`` with its first ``Datapath actions:`` line normalised and recirculation
    ids numbered by first appearance (OVS counts them over the daemon's lifetime)."""
    lines = text.rstrip("\n").split("\n")
    for i, line in enumerate(lines):
        if line.startswith(_ACTIONS):
            actions = line[len(_ACTIONS):]
            try:
                actions = normalize_actions(vlan_context(flow), actions)
            except AssertionError:  # too long for normalize-actions: keep it as printed
                pass
            lines[i] = _ACTIONS + renumber_recirc_ids(actions)
            break
    return "\n".join(lines)


def case_differences(oracle: OfprotoOracle, name: str) -> list[str]:
    """For each trace of case ``name`` whose text differs: a unified description."""
    case = _BY_NAME[name]
    configure(oracle, case)
    bridge = build_bridge(case)
    bridges = (bridge, *bridge.patch_bridges)
    port_maps = {b.name: b.port_map for b in bridges}
    problems = []
    for want in case["traces"]:
        generate = want.get("generate", False)
        ovs = oracle.trace(want["flow"], generate=generate, normalize=False)
        assert ovs.error is None, ovs.error
        bridge.bundle_order = ovs_output_order(ovs, bridge)
        entry, flow = trace_flow(bridge, want["flow"])
        ours = trace_text(entry.name, xlate(entry, flow, generate=generate,
                                            datapath_type=DATAPATH_TYPE), port_maps,
                          case.get("protocol"))
        theirs_n, ours_n = _normalized(ovs.raw, ovs.flow), _normalized(ours, ovs.flow)
        if theirs_n != ours_n:
            a, b = theirs_n.split("\n"), ours_n.split("\n")
            k = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                     min(len(a), len(b)))
            problems.append(f"{want['flow'][:80]}: line {k + 1}: ovs {a[k] if k < len(a) else None!r}"
                            f" != ours {b[k] if k < len(b) else None!r}")
    return problems


@pytest.mark.real_ovs
@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=TEXT_DIFFERENCES[n]))
    if n in TEXT_DIFFERENCES else n
    for n in SUPPORTED
])
def test_trace_text_agrees_with_ovs(oracle, name):
    problems = case_differences(oracle, name)
    assert not problems, "\n".join(problems)


def test_differences_are_supported_cases():
    assert set(TEXT_DIFFERENCES) <= set(SUPPORTED)


# ---------------------------------------------------------------------------------
# Tunnel ports (the cases of test_tunnel_xlate_real.py, restated from OVS's tunnel.at)

#: tunnel cases whose trace text differs from OVS's, and why
TUNNEL_TEXT_DIFFERENCES: dict[str, str] = {}


def tunnel_case_differences(oracle: OfprotoOracle, name: str) -> list[str]:
    from ovsnet.datapath import odp
    from tests.differential.test_tunnel_xlate_real import _BY_NAME as TUNNEL_CASES
    from tests.differential.test_tunnel_xlate_real import build_bridge as build_tunnel_bridge
    from tests.differential.test_tunnel_xlate_real import configure_oracle, unordered_outputs

    case = TUNNEL_CASES[name]
    bridge = build_tunnel_bridge(case, configure_oracle(oracle, case))
    port_maps = {b.name: b.port_map for b in (bridge, *bridge.patch_bridges)}
    problems = []
    for packet in case["traces"]:
        ovs = oracle.trace(packet, normalize=False)
        key, _mask = odp.parse_flow(packet)
        try:
            entry, flow = bridge.flow_from_key(key)
        except Exception:  # refused by both: compared by test_tunnel_xlate_real.py
            continue
        ours = trace_text(entry.name, xlate(entry, flow), port_maps)
        a, b = ovs.raw.rstrip("\n").split("\n"), ours.rstrip("\n").split("\n")
        if case.get("unordered"):
            # FLOOD and NORMAL output in OVS's hash order: the outputs are compared as a
            # set of (output, what it sends)
            vports = {str(p.odp_port) for p in bridge.tunnel_ports}
            for lines in (a, b):
                for i, line in enumerate(lines):
                    if line.startswith(_ACTIONS):
                        lines[i] = _ACTIONS + repr(unordered_outputs(line[len(_ACTIONS):],
                                                                     vports))
        if a != b:
            k = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                     min(len(a), len(b)))
            problems.append(f"{packet[:80]}: line {k + 1}: ovs {a[k] if k < len(a) else None!r}"
                            f" != ours {b[k] if k < len(b) else None!r}")
    return problems


def _tunnel_case_names() -> list[str]:
    from tests.differential.test_tunnel_xlate_real import _BY_NAME as TUNNEL_CASES

    return list(TUNNEL_CASES)


@pytest.mark.real_ovs
@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=TUNNEL_TEXT_DIFFERENCES[n]))
    if n in TUNNEL_TEXT_DIFFERENCES else n
    for n in _tunnel_case_names()
])
def test_tunnel_trace_text_agrees_with_ovs(oracle, name):
    problems = tunnel_case_differences(oracle, name)
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------
# Seeded random flow tables (the generator of test_xlate_real.py)

#: seeds run by default; TRACE_TEXT_SEEDS=N runs seeds 0..N-1 instead
TEXT_SEEDS = range(int(os.environ.get("TRACE_TEXT_SEEDS", "6")))


def random_text_differences(oracle: OfprotoOracle, seed: int,
                            normal: bool = False) -> tuple[int, int, list[str]]:
    """(traces compared, identical, unexplained differences) for one random table,
    or with ``normal`` one random NORMAL bridge (VLAN modes, learning)."""
    from tests.differential.test_xlate_real import RANDOM_PORTS, normal_case, random_case

    if normal:
        port_config, vlan_limit, packets = normal_case(seed)
        case = {"name": f"normal-{seed}", "ports": list(RANDOM_PORTS), "flows": [],
                "fail_mode": "standalone", "port_config": port_config,
                "ovs_config": {"vlan-limit": vlan_limit}}
    else:
        flows, packets = random_case(seed)
        case = {"name": f"random-{seed}", "ports": list(RANDOM_PORTS), "flows": flows}
    configure(oracle, case)
    bridge = build_bridge(case)
    port_maps = {bridge.name: bridge.port_map}
    generate = normal or seed % 2 == 1
    compared = same = 0
    problems = []
    for packet in packets:
        ovs = oracle.trace(packet, generate=generate, normalize=False)
        if ovs.error is not None:
            continue
        bridge.bundle_order = ovs_output_order(ovs, bridge)
        entry, flow = trace_flow(bridge, packet)
        result = xlate(entry, flow, generate=generate, datapath_type=DATAPATH_TYPE)
        if result.unsupported:
            continue
        compared += 1
        a = _normalized(ovs.raw, ovs.flow).split("\n")
        b = _normalized(trace_text(entry.name, result, port_maps), ovs.flow).split("\n")
        if a == b:
            same += 1
            continue
        k = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                 min(len(a), len(b)))
        theirs = a[k] if k < len(a) else ""
        problems.append(f"{packet[:80]}: line {k + 1}: ovs {theirs!r} != ours "
                        f"{b[k] if k < len(b) else None!r}")
    return compared, same, problems


@pytest.mark.real_ovs
@pytest.mark.parametrize("seed", TEXT_SEEDS)
def test_random_tables_trace_text(oracle, seed):
    """Every trace prints as OVS's."""
    compared, _same, problems = random_text_differences(oracle, seed)
    assert compared, "no trace without unsupported actions"
    assert not problems, "\n".join(problems)


@pytest.mark.real_ovs
@pytest.mark.parametrize("seed", TEXT_SEEDS)
def test_random_normal_bridges_trace_text(oracle, seed):
    """NORMAL with mixed VLAN modes and MAC learning (``-generate``) prints as OVS."""
    compared, same, problems = random_text_differences(oracle, seed, normal=True)
    assert compared and not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------
# The decoded forms against ``ovs-ofctl dump-flows``

#: flows whose actions and match print differently once encoded for an OpenFlow
#: version and decoded by ovs-vswitchd (see ovsnet.ofproto.ofp_roundtrip)
DECODE_FLOWS = (
    "priority=1,ip,actions=set_field:0x2a->tun_id,set_field:10.0.0.9->tun_dst,"
    "load:0x5->NXM_NX_REG0[4..7]",
    "priority=2,ip,actions=set_field:1.2.3.4->ip_src,mod_nw_dst:5.6.7.8,"
    "mod_dl_src:00:01:02:03:04:05,set_field:00:11:22:33:44:55->eth_dst",
    "priority=3,tcp,actions=set_field:80->tcp_src,mod_tp_dst:81,mod_nw_tos:16,"
    "set_field:8->ip_dscp,mod_nw_ecn:2,set_field:1->nw_ecn,mod_nw_ttl:9,set_field:7->nw_ttl",
    "priority=4,vlan_tci=0x1000/0x1000,actions=set_field:0x1005->vlan_tci,"
    "set_field:7->vlan_vid,set_field:3->vlan_pcp,mod_vlan_vid:9,set_vlan_pcp:2",
    "priority=5,actions=mod_vlan_vid:9,mod_vlan_pcp:2,strip_vlan,set_field:0->vlan_tci",
    "priority=6,actions=note:01,note:0102030405060708,"
    "set_field:0x11223344556677889900aabbccddeeff->xxreg1,load:0x1->xreg0,"
    "set_field:0x5->metadata,set_field:0x3/0xf->reg3,set_field:0x1201/0x1fff->vlan_tci",
    "priority=7,dl_type=0x8847,actions=set_mpls_label(5),set_mpls_tc(3),set_mpls_ttl(9),"
    "dec_mpls_ttl,dec_ttl",
    "priority=8,ipv6,actions=set_field:::1->ipv6_src,set_field:0x12345->ipv6_label,"
    "set_field:0x5->pkt_mark,move:NXM_NX_REG0[]->NXM_NX_REG1[],set_tunnel:5,set_tunnel64:6",
    "priority=9,udp,actions=set_field:5->udp_src,mod_tp_src:7,output:NXM_NX_REG0[0..15],"
    "enqueue:1:2,set_queue:3,pop_queue,controller,controller:100",
    "priority=10,sctp,actions=set_field:5->sctp_src,mod_tp_src:7,clone(mod_nw_ttl:3,pop_vlan)",
    "priority=11,vlan_tci=0,actions=drop",
    "priority=12,vlan_tci=0x2000/0xe000,actions=drop",
    "priority=13,vlan_tci=0x1005/0xf0ff,actions=drop",
    "priority=14,vlan_tci=0x0005/0x0fff,ip,nw_tos=16,nw_ecn=1,actions=drop",
    "priority=15,ip,actions=write_actions(set_field:1.2.3.4->ip_src,mod_nw_ttl:3,output:1),"
    "goto_table:1",
)


@pytest.mark.real_ovs
@pytest.mark.parametrize("protocol", ["OpenFlow10", "OpenFlow12", "OpenFlow13", "OpenFlow15"])
def test_decoded_flows_agree_with_dump_flows(oracle, protocol):
    """Each flow of :data:`DECODE_FLOWS` that ``ovs-ofctl -O PROTOCOL`` accepts prints
    in ``dump-flows`` as :mod:`ovsnet.ofproto.ofp_roundtrip` decodes it."""
    from ovsnet.ofproto.flow_syntax import parse_flow
    from ovsnet.ofproto.ofp_actions import format_actions
    from ovsnet.ofproto.ofp_fields import format_match
    from ovsnet.ofproto.ofp_roundtrip import decoded_actions, decoded_match

    oracle.configure((1, 2))
    compared, problems = 0, []
    for text in DECODE_FLOWS:
        oracle.sb.ofctl("del-flows", "br0")
        try:
            oracle.sb.ofctl("-O", protocol, "add-flow", "br0", text)
        except AssertionError:  # not expressible in this version (ovs-ofctl says why)
            continue
        dump = oracle.sb.ofctl("-O", protocol, "dump-flows", "--no-stats", "br0")
        theirs = [line.strip() for line in dump.splitlines()
                  if "actions=" in line and "reply" not in line]
        fm = parse_flow(text)
        ours = (format_match(decoded_match(fm.match, protocol), fm.priority) + " actions="
                + format_actions(decoded_actions(fm.actions, protocol, fm.match)))
        compared += 1
        if theirs != [ours]:
            problems.append(f"{text}:\n  ovs  {theirs}\n  ours {ours!r}")
    assert compared >= 12, f"ovs-ofctl -O {protocol} took only {compared} flows"
    assert not problems, "\n".join(problems)
