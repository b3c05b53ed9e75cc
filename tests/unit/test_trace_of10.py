"""Flows as ovs-vswitchd decodes them from ovs-ofctl (ovsnet.ofproto.ofp_roundtrip), and
``ovsnet trace``'s text with them.

The expected texts are what OVS 3.1 prints (``ovs-ofctl dump-flows``,
``ofproto/trace``) for flows added with ``ovs-ofctl -O VERSION``, as
ofp-actions.c's ``encode_*``/``decode_*`` functions and nx-match.c's
``nx_put_raw`` produce them; tests/differential/test_trace_text_real.py checks the
same against a real ovs-vswitchd.
"""

from __future__ import annotations

import pytest

from ovsnet.errors import DatapathError
from ovsnet.ofproto.bridge import Bridge
from ovsnet.ofproto.flow_syntax import parse_flow
from ovsnet.ofproto.of_flow import OfFlow
from ovsnet.ofproto.ofp_actions import format_actions
from ovsnet.ofproto.ofp_fields import format_match
from ovsnet.ofproto.ofp_roundtrip import (
    decoded_actions,
    decoded_match,
    default_protocol,
    version_of,
)
from ovsnet.ofproto.trace import trace_text
from ovsnet.ofproto.xlate import xlate


def decoded(flow: str, protocol: str | None = None) -> str:
    fm = parse_flow(flow)
    match = format_match(decoded_match(fm.match, protocol), fm.priority)
    return " ".join(filter(None, (match, "actions=" + format_actions(
        decoded_actions(fm.actions, protocol, fm.match)))))


@pytest.mark.parametrize("flow, protocol, want", [
    # OpenFlow 1.0: no Set-Field; legacy actions where there is one, else reg_load
    ("ip,actions=set_field:0x2a->tun_id,set_field:10.0.0.9->tun_dst", "OpenFlow10",
     "ip actions=load:0x2a->NXM_NX_TUN_ID[],load:0xa000009->NXM_NX_TUN_IPV4_DST[]"),
    ("ip,actions=set_field:1.2.3.4->ip_src,set_field:00:11:22:33:44:55->eth_dst", None,
     "ip actions=mod_nw_src:1.2.3.4,mod_dl_dst:00:11:22:33:44:55"),
    ("tcp,actions=set_field:80->tcp_src,set_field:8->ip_dscp,mod_nw_ecn:2,mod_nw_ttl:9",
     "OpenFlow10", "tcp actions=mod_tp_src:80,mod_nw_tos:32,load:0x2->NXM_NX_IP_ECN[],"
     "load:0x9->NXM_NX_IP_TTL[]"),
    ("actions=set_field:0x1005->vlan_tci,set_field:0->vlan_tci,set_vlan_pcp:2", None,
     "actions=mod_vlan_vid:5,mod_vlan_pcp:0,strip_vlan,mod_vlan_pcp:2"),
    ("sctp,actions=set_field:5->sctp_src,pop_vlan", None,
     "sctp actions=load:0x5->OXM_OF_SCTP_SRC[],strip_vlan"),
    # a reg_load writes at most 64 bits
    ("actions=set_field:0x11223344556677889900aabbccddeeff->xxreg1", None,
     "actions=load:0x9900aabbccddeeff->NXM_NX_XXREG1[0..63],"
     "load:0x1122334455667788->NXM_NX_XXREG1[64..127]"),
    ("actions=load:0x5->NXM_NX_REG0[4..7],note:01,note:0102030405060708", None,
     "actions=load:0x5->NXM_NX_REG0[4..7],note:01.00.00.00.00.00,"
     "note:01.02.03.04.05.06.07.08.00.00.00.00.00.00"),
    ("actions=goto_table:1", "OpenFlow10", "actions=resubmit(,1)"),
    # OpenFlow 1.2 to 1.4: Set-Field without a mask; the 1.0 actions become Set-Field
    ("ip,actions=set_field:0x2a->tun_id,load:0x5->NXM_NX_REG0[4..7],set_tunnel:6", "OpenFlow13",
     "ip actions=set_field:0x2a->tun_id,load:0x5->NXM_NX_REG0[4..7],set_field:0x6->tun_id"),
    ("actions=set_field:0x1201/0x1fff->vlan_tci", "OpenFlow13",
     "actions=load:0x1201->NXM_OF_VLAN_TCI[0..12]"),
    ("tcp,actions=mod_nw_tos:16,mod_tp_dst:81,mod_nw_ttl:9,mod_dl_src:00:01:02:03:04:05",
     "OpenFlow12", "tcp actions=set_field:4->ip_dscp,set_field:81->tcp_dst,mod_nw_ttl:9,"
     "set_field:00:01:02:03:04:05->eth_src"),
    ("vlan_tci=0x1000/0x1000,actions=mod_vlan_vid:9,set_vlan_pcp:2", "OpenFlow13",
     "vlan_tci=0x1000/0x1000 actions=set_field:4105->vlan_vid,set_field:2->vlan_pcp"),
    ("actions=mod_vlan_vid:9,mod_vlan_pcp:2,strip_vlan", "OpenFlow13",
     "actions=push_vlan:0x8100,set_field:4105->vlan_vid,set_field:2->vlan_pcp,pop_vlan"),
    ("udp,actions=enqueue:1:2", "OpenFlow13", "udp actions=set_queue:2,output:1,pop_queue"),
    ("vlan_tci=0,actions=drop", "OpenFlow13", "vlan_tci=0x0000/0x1fff actions=drop"),
    ("vlan_tci=0x2000/0xe000,actions=drop", "OpenFlow13", "actions=drop"),
    ("vlan_tci=0,actions=drop", "OpenFlow10", "vlan_tci=0x0000 actions=drop"),
    # OpenFlow 1.5: Set-Field only, masked where a load wrote part of a field
    ("actions=load:0x5->NXM_NX_REG0[4..7],load:0x1->xreg0", "OpenFlow15",
     "actions=set_field:0x50/0xf0->reg0,set_field:0x1->xreg0"),
])
def test_decoded_flow(flow, protocol, want):
    assert decoded(flow, protocol) == want


def test_clone_and_write_actions_are_decoded_inside():
    assert decoded("ip,actions=clone(set_field:1.2.3.4->ip_src)") == \
        "ip actions=clone(mod_nw_src:1.2.3.4)"
    assert decoded("ip,actions=write_actions(mod_nw_src:1.2.3.4,output:1)", "OpenFlow13") == \
        "ip actions=write_actions(set_field:1.2.3.4->ip_src,output:1)"
    assert decoded("actions=clear_actions,write_actions(output:1)", "OpenFlow10") == "actions=drop"


def test_protocols():
    assert version_of(None) == 1 and version_of("OpenFlow13") == 4 and version_of(6) == 6
    with pytest.raises(DatapathError, match="OpenFlow16.*expected one of OpenFlow10"):
        version_of("OpenFlow16")
    with pytest.raises(DatapathError, match="1 \\(1.0\\) to 6"):
        version_of(7)
    assert default_protocol(parse_flow("actions=load:1->NXM_NX_REG0[]").actions) == "OpenFlow10"
    for flow in ("actions=goto_table:1", "actions=clear_actions",
                 "actions=clone(push_vlan:0x8100)"):
        assert default_protocol(parse_flow(flow).actions) == "OpenFlow13", flow


def _bridge(*flows: str) -> Bridge:
    br = Bridge("br0", local_odp_port=100)
    for n in (1, 2, 3):
        br.add_port(f"p{n}", n, n)
    br.add_flows(flows)
    return br


def _ip(**kw) -> OfFlow:
    return OfFlow(in_port=1, dl_type=0x0800, nw_src=0xC0A80001, nw_dst=0xC0A80002, nw_ttl=64,
                  **kw)


def test_trace_prints_rules_and_actions_as_decoded():
    br = _bridge("in_port=1,vlan_tci=0,actions=set_field:0x2a->tun_id,"
                 "set_field:0x11223344556677889900aabbccddeeff->xxreg1,note:01,output:2")
    text = trace_text("br0", xlate(br, _ip()), {"br0": br.port_map})
    assert " 0. in_port=1,vlan_tci=0x0000, priority 32768\n" in text
    assert ("    load:0x2a->NXM_NX_TUN_ID[]\n"
            "    load:0x9900aabbccddeeff->NXM_NX_XXREG1[0..63]\n"
            "    load:0x1122334455667788->NXM_NX_XXREG1[64..127]\n"
            "    note:01.00.00.00.00.00\n"
            "    output:2\n") in text
    text = trace_text("br0", xlate(br, _ip()), protocols="OpenFlow13")
    assert "    output:p2\n" in text  # without port maps, ports by name
    assert " 0. in_port=1,vlan_tci=0x0000/0x1fff, priority 32768\n" in text
    assert "    set_field:0x2a->tun_id\n" in text
    assert "    set_field:0x11223344556677889900aabbccddeeff->xxreg1\n" in text
    # per bridge; a bridge not named gets the default
    assert "load:0x2a" in trace_text("br0", xlate(br, _ip()), protocols={"br1": "OpenFlow13"})


def test_trace_prints_the_action_set_as_it_will_execute():
    """``xlate_report_action_set``: ``ofpacts_execute_action_set`` of the set, after
    ``action set is:``; ``action set is empty`` without a final action."""
    br = _bridge("table=0,in_port=1,ip,actions=write_actions(set_field:10.0.0.1->ip_src,"
                 "output:2),goto_table:1",
                 "table=1,ip,actions=write_actions(output:3),goto_table:2",
                 "table=2,ip,actions=clear_actions,write_actions(mod_nw_ttl:5)")
    text = trace_text("br0", xlate(br, _ip()), {"br0": br.port_map})
    assert "     -> action set is: set_field:10.0.0.1->ip_src,output:2\n" in text
    assert "-> action set is: set_field:10.0.0.1->ip_src,output:3\n" in text
    assert "-> action set was: set_field:10.0.0.1->ip_src,output:3\n" in text
    assert "-> action set is empty\n" in text


def test_the_executed_action_set_prints_as_its_write_actions_were_decoded():
    br = _bridge("in_port=1,ip,actions=write_actions(set_field:10.0.0.1->ip_src,output:2)")
    text = trace_text("br0", xlate(br, _ip()), {"br0": br.port_map})
    assert "-> action set is: set_field:10.0.0.1->ip_src,output:2\n" in text
    assert ("--. Executing action set:\n"
            "    set_field:10.0.0.1->ip_src\n"
            "    output:2\n") in text, text


def test_action_lines_already_formatted_are_read_back():
    """Reading :attr:`TraceStep.actions` before printing changes nothing."""
    flows = ("in_port=1,ip,actions=set_field:0x2a->tun_id,note:01,"
             "write_actions(set_field:10.0.0.1->ip_src,output:p2),goto_table:1",
             "table=1,actions=set_field:0x11223344556677889900aabbccddeeff->xxreg1,output:p3")
    want = trace_text("br0", xlate(_bridge(*flows), _ip()), {"br0": _bridge().port_map})
    result = xlate(_bridge(*flows), _ip())
    for step in result.trace:
        assert all(isinstance(line, str) for line in step.actions)
    assert trace_text("br0", result, {"br0": _bridge().port_map}) == want
    # the first rule needs OpenFlow 1.1+, the second goes as OpenFlow 1.0
    assert "    set_field:0x2a->tun_id\n" in want
    assert "    load:0x9900aabbccddeeff->NXM_NX_XXREG1[0..63]\n" in want
