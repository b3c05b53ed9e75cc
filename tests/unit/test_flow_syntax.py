"""Unit tests of ovsnet.ofproto's flow syntax (ovs-ofctl add-flow) parser and printer."""

from __future__ import annotations

from pathlib import Path

import pytest

from ovsnet.errors import OfprotoError
from ovsnet.ofproto import FlowSyntaxError, Match, field_by_name, parse_flow, parse_flows_file
from ovsnet.ofproto.flow_syntax import parse_flows_text
from ovsnet.ofproto.ofp_actions import Output, Resubmit, SetField
from ovsnet.ofproto.ofp_fields import OFPP_LOCAL, format_match

DATA = Path(__file__).parent / "data"
PORTS = {"vm1": 1, "vm2": 2}


@pytest.mark.parametrize("text,printed", [
    ("actions=drop", "actions=drop"),
    ("priority=32768,actions=drop", "actions=drop"),
    ("table=2,priority=5,cookie=0x10,idle_timeout=3,hard_timeout=4,actions=NORMAL",
     "table:2 priority=5 cookie:0x10 idle:3 hard:4 actions=NORMAL"),
    ("dl_type=0x0800,nw_proto=6,actions=drop", "tcp actions=drop"),
    ("ip6,nw_proto=58,actions=drop", "icmp6 actions=drop"),
    ("tcp,tcp_dst=80,actions=drop", "tcp,tp_dst=80 actions=drop"),
    ("udp,udp_src=0x10/0xf0,actions=drop", "udp,tp_src=0x10/0xf0 actions=drop"),
    ("ip,ip_src=10.1.2.3/16,actions=drop", "ip,nw_src=10.1.0.0/16 actions=drop"),
    ("arp,arp_spa=10.0.0.1,arp_op=2,actions=drop", "arp,arp_spa=10.0.0.1,arp_op=2 actions=drop"),
    ("dl_vlan=5000,actions=drop", "dl_vlan=904 actions=drop"),
    ("dl_vlan=0xffff,actions=drop", "vlan_tci=0x0000 actions=drop"),
    ("ip,ip_dscp=70,actions=drop", "ip,nw_tos=24 actions=drop"),
    ("xreg0=1,actions=drop", "reg0=0,reg1=0x1 actions=drop"),
    ("tcp,tcp_flags=+syn-ack,actions=drop", "tcp,tcp_flags=+syn-ack actions=drop"),
    ("tcp,tcp_flags=syn|ack,actions=drop", "tcp,tcp_flags=syn|ack actions=drop"),
    ("icmp6,icmpv6_type=135,nd_target=::1,actions=drop",
     "icmp6,icmp_type=135,nd_target=::1 actions=drop"),
    ("ipv6,ipv6_src=2001:db8::1/ffff::ff,actions=drop",
     "ipv6,ipv6_src=2001::1/ffff::ff actions=drop"),
    ("actions=set_field:1->reg1,load:5->NXM_NX_REG0[0..3],load:0->NXM_NX_REG2[]",
     "actions=set_field:0x1->reg1,load:0x5->NXM_NX_REG0[0..3],load:0->NXM_NX_REG2[]"),
    ("actions=controller,controller(reason=no_match),output:controller",
     "actions=CONTROLLER:65535,controller(reason=no_match),CONTROLLER:65535"),
    ("actions=resubmit:3,resubmit(,4),resubmit(vm1,5)",
     "actions=resubmit:3,resubmit(,4),resubmit(1,5)"),
    ("actions=set_tunnel:0x123456789,set_tunnel64:1,pop_vlan,mod_vlan_vid:3",
     "actions=set_tunnel64:0x123456789,set_tunnel64:0x1,pop_vlan,mod_vlan_vid:3"),
    ("actions=note:01.02,clone(clone(drop)),write_metadata:1/0xff,goto_table:2",
     "actions=note:01.02,clone(clone(drop)),write_metadata:0x1/0xff,goto_table:2"),
    ("ip,actions=mod_nw_ecn:1,mod_nw_ttl:9,dec_ttl(1,2),push_mpls:0x8847",
     "ip actions=mod_nw_ecn:1,mod_nw_ttl:9,dec_ttl(1,2),push_mpls:0x8847"),
])
def test_canonical_printing(text, printed):
    assert parse_flow(text, PORTS).format() == printed


def test_model_fields():
    fm = parse_flow("table=1,in_port=vm1,tcp,nw_dst=10.0.0.0/8,tp_dst=80,"
                    "actions=load:1->NXM_NX_REG0[3],vm2,resubmit(LOCAL,2)", PORTS)
    assert fm.table == 1 and fm.priority == 32768
    assert fm.match.get("in_port") == (1, 0xFFFF)
    assert fm.match.get("nw_dst") == (0x0A000000, 0xFF000000)
    assert fm.match.get_field(field_by_name("tcp_dst")) == (80, 0xFFFF)
    assert fm.match.get_field(field_by_name("tp_dst")) == (80, 0xFFFF)
    assert fm.actions[0] == SetField(field_by_name("reg0"), 8, 8, is_load=True)
    assert fm.actions[1] == Output(2)
    assert fm.actions[2] == Resubmit(OFPP_LOCAL, 2)
    assert fm.format(PORTS) == ("table:1 tcp,in_port=vm1,nw_dst=10.0.0.0/8,tp_dst=80 "
                                "actions=load:0x1->NXM_NX_REG0[3],output:vm2,"
                                "resubmit(LOCAL,2)")


def test_aliases_set_the_same_member():
    a = parse_flow("tcp,tp_src=5,dl_src=00:00:00:00:00:01,nw_src=1.2.3.4,actions=drop")
    b = parse_flow("tcp,tcp_src=5,eth_src=00:00:00:00:00:01,ip_src=1.2.3.4,actions=drop")
    assert a.match == b.match


def test_missing_prerequisites_are_dropped_like_ovs():
    fm = parse_flow("tp_dst=80,nw_src=1.2.3.4,actions=drop")
    assert fm.match == Match()
    assert set(fm.dropped_fields) == {"tp_dst", "nw_src"}
    assert parse_flow("ip,tp_dst=80,actions=drop").format() == "ip actions=drop"
    with pytest.raises(FlowSyntaxError, match="tp_dst lacks its prerequisites"):
        parse_flow("tp_dst=80,actions=drop", strict=True)


def test_l4_fields_of_later_fragments_are_refused_like_ovs():
    # ovs-ofctl encodes the flow (the protocol is there) and decoding refuses it
    # (mf_are_match_prereqs_ok: no L4 header on later fragments)
    with pytest.raises(FlowSyntaxError, match="OFPBMC_BAD_PREREQ"):
        parse_flow("tcp,ip_frag=later,tp_dst=22,actions=drop")
    assert parse_flow("tcp,ip_frag=first,tp_dst=22,actions=drop").format() == \
        "tcp,nw_frag=first,tp_dst=22 actions=drop"  # as ovs-ofctl parse-flow prints them
    assert parse_flow("ip,ip_frag=later,actions=drop").format() == \
        "ip,nw_frag=later actions=drop"


def test_vlan_field_interactions():
    m = Match()
    m.set_field(field_by_name("dl_vlan_pcp"), 2)
    m.set_field(field_by_name("dl_vlan"), 5)
    assert format_match(m) == "dl_vlan=5,dl_vlan_pcp=2"
    m.set_field(field_by_name("vlan_tci"), 0, 0)
    assert format_match(m) == ""


@pytest.mark.parametrize("text,message,token", [
    ("foo=1,actions=drop", "unknown keyword foo", "foo"),
    ("ip,actions=bogus", "unknown action bogus", "bogus"),
    ("ip", "must specify an action", None),
    ("in_port=9/3,actions=drop", "9/3: invalid or unknown port for in_port", "9/3"),
    ("nw_src=1.2.3,actions=drop", "1.2.3: invalid IP address", "1.2.3"),
    ("tcp,tp_dst=0x10000,actions=drop", "too large for 2-byte field tcp_dst", "0x10000"),
    ("ip,nw_proto=1/3,actions=drop", "invalid mask for field nw_proto", "1/3"),
    ("ip,nw_frag=maybe,actions=drop", "unknown fragment type", "maybe"),
    ("tcp,tcp_flags=+syn+foo,actions=drop", "+foo: unknown TCP flag(s)", "+foo"),
    ("priority=65536,actions=drop", 'invalid priority "65536"', "65536"),
    ("cookie=1/1,actions=drop", "flow additions cannot use a cookie mask", "1/1"),
    ("actions=output:nowhere", "nowhere: output to unknown port", "nowhere"),
    ("actions=set_field:1->nope", "nope is not a valid OXM field name", "nope"),
    ("actions=set_field:1->nw_proto", "nw_proto is read-only", "nw_proto"),
    ("actions=load:5->NXM_NX_REG0[0..1]", "does not fit into 2 bits", "5"),
    ("actions=load:1->NXM_NX_BAD[]", "unknown field `NXM_NX_BAD'", "NXM_NX_BAD"),
    ("actions=move:NXM_NX_REG0[0..3]->NXM_NX_REG1[0..4]",
     "source field is 4 bits wide but destination is 5 bits wide", None),
    ("actions=output:1,drop", '"drop" must not be accompanied', "drop"),
    ("actions=goto_table:1,output:2", "apply_actions must appear before goto_table",
     "output"),
    ("actions=clone(goto_table:1)", "goto_table instruction not allowed here", "goto_table"),
    ("actions=resubmit:in_port", 'at least one "in_port" or "table"', "in_port"),
    ("actions=mod_vlan_vid:4096", "4096: not a valid VLAN VID", "4096"),
    ("ip,actions=set_field:1->tcp_dst", "OFPBAC_MATCH_INCONSISTENT", None),
    ("actions=output:65280", "OFPBAC_BAD_OUT_PORT", None),
])
def test_errors_point_at_the_token(text, message, token):
    with pytest.raises(FlowSyntaxError) as info:
        parse_flow(text, PORTS)
    err = info.value
    assert isinstance(err, OfprotoError) and err.exit_code == 2
    assert message in err.message
    if token is not None:
        assert err.token == token
        assert err.column == text.index(token, 0 if token != "drop" else text.index(",")) + 1
    rendered = str(err).splitlines()
    assert rendered[1].strip() == text and "^" in rendered[2]


def test_flows_file(tmp_path):
    flows = parse_flows_file(DATA / "ofp_flows.txt", PORTS)
    assert [f.format() for f in flows] == [
        "priority=100,in_port=1 actions=resubmit(,1)",
        "table:1 tcp,tp_dst=80 actions=output:2",
        "table:1 priority=0 actions=NORMAL",
    ]
    bad = tmp_path / "bad.txt"
    bad.write_text("# header\n\nip,actions=output:1\n  ip,nw_dst=1.2.3.4,actions=frob\n")
    with pytest.raises(FlowSyntaxError) as info:
        parse_flows_file(bad)
    err = info.value
    assert (err.source, err.line, err.column) == (str(bad), 4, 29)
    assert str(err).startswith(f"{bad}:4:29: unknown action frob")


def test_flows_text_commands():
    flows = parse_flows_text("modify cookie=0x5,ip,actions=drop\ndelete cookie=1/-1,in_port=3\n")
    assert [f.command for f in flows] == ["modify", "delete"]
    assert flows[1].cookie_mask == (1 << 64) - 1 and flows[1].actions == ()
