"""Translation (ovsnet.ofproto.xlate) on hand-written bridges, with OVS 3.1's expected results.

The expectations follow ofproto-dpif-xlate.c as described in each test; the
differential suite (tests/differential/test_xlate_real.py) checks the same
machinery against a real ovs-vswitchd.
"""

from __future__ import annotations

import pytest

from ovsnet.datapath import odp
from ovsnet.datapath.datapath import Datapath, Upcall
from ovsnet.errors import OfprotoError
from ovsnet.ofproto import ofp_actions as A
from ovsnet.ofproto.bridge import Bridge, connect_patch
from ovsnet.ofproto.of_flow import OfFlow
from ovsnet.ofproto.ofp_fields import OFPP_LOCAL
from ovsnet.ofproto.upcall import XlateHandler, wc_to_key_mask
from ovsnet.ofproto.xlate import MAX_DEPTH, MAX_RESUBMITS, execute_action_set, xlate

IP, IPV6, TCP, ICMP = 0x0800, 0x86DD, 6, 1


def bridge(*flows: str, ports=(1, 2, 3, 4)) -> Bridge:
    br = Bridge("br0", local_odp_port=100)
    for n in ports:
        br.add_port(f"p{n}", n, n + 10)  # odp_port differs from ofport on purpose
    br.add_flows(flows)
    return br


def icmp(**kw) -> OfFlow:
    members = dict(dl_src=0x505400000005, dl_dst=0x505400000007, dl_type=IP,
                   nw_src=0xC0A80001, nw_dst=0xC0A80002, nw_proto=ICMP, nw_ttl=64, tp_src=8)
    members.update(kw)
    return OfFlow(**members)


def tcp(**kw) -> OfFlow:
    return icmp(nw_proto=TCP, tp_src=1234, tp_dst=80, **kw)


def actions(result) -> str:
    return odp.format_actions(result.datapath_actions)


def test_output_uses_datapath_port_numbers():
    r = xlate(bridge("in_port=1,actions=output:2,output:3"), icmp(), in_port=1)
    assert actions(r) == "12,13"
    assert r.error is None and not r.errors


def test_table_miss_drops_and_says_no_match():
    r = xlate(bridge("in_port=2,actions=output:3"), icmp(), in_port=1)
    assert actions(r) == "drop"
    assert [s.line() for s in r.trace] == [" 0. No match."]
    assert r.trace[0].actions == ["drop"]
    # in_port, dl_type, nw_frag and recirc_id are always un-wildcarded; nw_proto was
    # never looked at, so the megaflow says "ip"
    assert r.megaflow() == "recirc_id=0,eth,ip,in_port=1,nw_frag=no"


def test_output_to_input_port_is_skipped_but_in_port_action_outputs():
    r = xlate(bridge("actions=output:1,in_port,output:2"), icmp(), in_port=1)
    assert actions(r) == "11,12"
    assert "skipping output to input port" in r.trace[0].actions


def test_output_to_local_and_to_a_missing_port():
    r = xlate(bridge("actions=LOCAL,output:9"), icmp(), in_port=1)
    assert actions(r) == "100"
    assert "Nonexistent output port" in r.trace[0].actions


def test_resubmit_order_and_trace_nesting():
    br = bridge("in_port=1,actions=output:2,resubmit(,1),output:4",
                "table=1,actions=output:3,resubmit(3,2)",
                "table=2,in_port=3,actions=output:1")
    r = xlate(br, icmp(), in_port=1)
    # the resubmit to port 3 in table 2 outputs to port 1, which is not the input port there
    # (flow.in_port is restored after the lookup, so it is still 1: skipped)
    assert actions(r) == "12,13,14"
    assert [(s.table, s.depth) for s in r.trace] == [(0, 0), (1, 1), (2, 2)]
    assert r.trace[2].actions[-1] == "skipping output to input port"


def test_a_miss_in_a_later_table_drops_and_translation_goes_on():
    for action in ("resubmit(,1)", "goto_table:1"):
        br = bridge(f"in_port=1,actions=output:4,{action}", "table=3,actions=output:2")
        r = xlate(br, icmp(), in_port=1)
        # the default table-miss behaviour does not continue to table 3
        assert actions(r) == "14"
        assert r.trace[-1].line() == " 1. No match."


def test_recursion_limit():
    r = xlate(bridge("actions=resubmit:1,resubmit:2,output:3"), icmp(), in_port=1)
    assert r.error == "Recursion too deep"
    assert r.errors == [f"over max translation depth {MAX_DEPTH}"]
    assert actions(r) == "drop"
    assert len(r.trace) == MAX_DEPTH + 1


def test_resubmit_limit():
    flows = [f"in_port={i},actions=resubmit:{i + 1},resubmit:{i + 1},local"
             for i in range(1, 65)]
    r = xlate(bridge(*flows, "in_port=65,actions=local", ports=(1,)), OfFlow(), in_port=1)
    assert r.error == "Too many resubmits"
    assert r.errors == [f"over {MAX_RESUBMITS} resubmit actions"]
    assert actions(r) == "drop"


def test_goto_table_does_not_deepen_forwards():
    flows = [f"table={i},actions=goto_table:{i + 1}" for i in range(0, 100)]
    r = xlate(bridge(*flows, "table=100,actions=output:2"), icmp(), in_port=1)
    assert actions(r) == "12" and r.error is None


def test_header_changes_are_committed_before_output_only():
    r = xlate(bridge("actions=mod_dl_dst:50:54:00:00:00:0a,mod_nw_src:10.0.0.1,output:2,"
                     "mod_nw_dst:10.0.0.2"), icmp(), in_port=1)
    # the rewrite after the last output never reaches the datapath
    assert actions(r) == "set(eth(dst=50:54:00:00:00:0a)),set(ipv4(src=10.0.0.1)),12"
    assert r.final_flow.nw_dst == 0x0A000002
    # the rewritten fields and nw_proto (CVE-2023-1668 fix) are in the megaflow
    assert r.wc.get("dl_dst") == (1 << 48) - 1 and r.wc.get("nw_proto") == 0xFF


def test_unchanged_value_is_not_committed():
    r = xlate(bridge("actions=mod_dl_dst:50:54:00:00:00:07,output:2"), icmp(), in_port=1)
    assert actions(r) == "12"
    assert "dl_dst=50:54:00:00:00:07" in r.megaflow()


def test_set_masked_payload_carries_only_changed_fields():
    r = xlate(bridge("actions=dec_ttl,output:2,dec_ttl,output:3"), icmp(nw_ttl=3), in_port=1)
    assert actions(r) == "set(ipv4(ttl=2)),12,set(ipv4(ttl=1)),13"
    assert r.megaflow() == "recirc_id=0,eth,icmp,in_port=1,nw_ttl=3,nw_frag=no"


def test_dec_ttl_ipv6():
    flow = OfFlow(dl_type=IPV6, ipv6_src=1, ipv6_dst=2, nw_proto=10, nw_ttl=128)
    r = xlate(bridge("actions=dec_ttl,output:2"), flow, in_port=1)
    assert actions(r) == "set(ipv6(hlimit=127)),12"


def test_transport_port_rewrite():
    r = xlate(bridge("tcp,actions=mod_tp_src:91,output:2"), tcp(), in_port=1)
    assert actions(r) == "set(tcp(src=91)),12"
    assert "tp_src=1234" in r.megaflow()


def test_registers_steer_later_tables_but_stay_out_of_the_megaflow():
    br = bridge("table=0,actions=load:0x2->NXM_NX_REG0[0..15],resubmit(,1)",
                "table=1,reg0=2,actions=output:NXM_NX_REG0[0..15]",
                "table=1,priority=0,actions=output:4")
    r = xlate(br, icmp(), in_port=1)
    assert actions(r) == "12"
    assert "reg0" not in r.megaflow()


def test_move_and_stack():
    br = bridge("actions=move:NXM_OF_ETH_SRC[0..7]->NXM_NX_REG1[0..7],push:NXM_NX_REG1[0..7],"
                "load:0->NXM_NX_REG1[],pop:NXM_NX_REG2[0..7],output:NXM_NX_REG2[0..7]")
    r = xlate(br, icmp(dl_src=0x505400000003), in_port=1)
    assert actions(r) == "13"
    # the source bits moved from dl_src are part of the megaflow
    assert r.wc.get("dl_src") == 0xFF


def test_stack_underflow_is_reported():
    r = xlate(bridge("actions=pop:NXM_NX_REG0[],output:2"), icmp(), in_port=1)
    assert r.errors == ["stack underflow"] and actions(r) == "12"


def test_vlan_push_modify_and_strip():
    r = xlate(bridge("actions=mod_vlan_vid:10,output:2,strip_vlan,output:3"), icmp(),
              in_port=1)
    assert actions(r) == "push_vlan(vid=10,pcp=0),12,pop_vlan,13"
    tagged = icmp(vlan_tci=0x1000 | 20, vlan_tpid=0x8100)
    r = xlate(bridge("actions=pop_vlan,output:2"), tagged, in_port=1)
    assert actions(r) == "pop_vlan,12"
    # commit_vlan_action un-wildcards the popped header
    assert r.megaflow() == "recirc_id=0,eth,ip,in_port=1,dl_vlan=20,dl_vlan_pcp=0,nw_frag=no"
    r = xlate(bridge("actions=push_vlan:0x88a8,set_field:0x1202/0x1fff->vlan_tci,output:2"),
              icmp(), in_port=1)
    assert actions(r) == "push_vlan(tpid=0x88a8,vid=514,pcp=0),12"


def test_ipv4_rewrite_of_an_ipv6_packet_is_ignored():
    flow = OfFlow(dl_type=IPV6, ipv6_src=1, ipv6_dst=2, nw_proto=TCP, nw_ttl=64)
    r = xlate(bridge("ipv6,actions=mod_nw_src:10.0.0.1,output:2"), flow, in_port=1)
    assert actions(r) == "12"
    assert r.wc.get("nw_src") == 0


def test_icmp_megaflow_keeps_only_the_low_byte_of_type_and_code():
    r = xlate(bridge("icmp,icmp_type=8,actions=output:2"), icmp(), in_port=1)
    assert r.wc.get("tp_src") == 0xFF
    # OVS prints the 8-bit mask of the 16-bit member: icmp_type=0x8/0xff
    assert r.megaflow() == "recirc_id=0,eth,icmp,in_port=1,nw_frag=no,icmp_type=0x8/0xff"


def test_later_fragments_never_match_on_ports():
    r = xlate(bridge("tcp,tp_dst=80,actions=output:2", "priority=0,actions=output:3"),
              tcp(nw_frag=3), in_port=1)
    # frag handling "normal": a later fragment's ports count as 0 for the lookup
    assert actions(r) == "13"
    assert r.wc.get("tp_src") == 0 and r.wc.get("tp_dst") == 0


def test_metadata_write_and_note_and_exit():
    br = bridge("actions=note:01.02,write_metadata:0x5/0xff,goto_table:1",
                "table=1,metadata=0x5,actions=output:2,exit,output:3")
    r = xlate(br, icmp(), in_port=1)
    assert actions(r) == "12"
    assert "metadata" not in r.megaflow()


def test_unsupported_actions_are_reported():
    r = xlate(bridge("actions=controller(pause),output:2"), icmp(), in_port=1)
    assert r.unsupported and "pause" in r.unsupported[0] and actions(r) == "12"


def test_trace_text_matches_ofproto_trace_layout():
    br = bridge("in_port=1,ip,actions=resubmit(,1)", "table=1,cookie=0x5,actions=output:2")
    text = xlate(br, icmp(), in_port=1).trace_text()
    assert text.splitlines() == [
        " 0. ip,in_port=1, priority 32768",
        "    resubmit(,1)",
        "     1. priority 32768, cookie 0x5",
        "        output:p2",
    ]


def test_bridge_port_bookkeeping():
    br = bridge()
    assert br.port(OFPP_LOCAL).odp_port == 100
    assert br.ofport_of_odp(12) == 2
    assert br.port_map["p3"] == 3
    with pytest.raises(OfprotoError, match="already used"):
        br.add_port("p9", 2, 99)
    with pytest.raises(OfprotoError, match="no datapath port 55"):
        br.ofport_of_odp(55)
    with pytest.raises(OfprotoError, match="not a flow table"):
        br.add_flow("table=254,actions=drop")
    br.add_flow("actions=output:2")
    assert br.n_flows() == 1
    br.add_flow("actions=output:3")  # same match and priority: replaced
    assert br.n_flows() == 1
    br.del_flows()
    assert br.n_flows() == 0


def test_action_set_runs_at_the_end_in_ofpacts_execute_action_set_order():
    br = bridge("in_port=1,ip,actions=output(2),write_actions(mod_nw_src:10.0.0.9,output(3)),"
                "goto_table(1)",
                "table=1,ip,actions=write_actions(output(4)),goto_table(2)",
                "table=2,ip,actions=mod_nw_src:10.0.0.1,output(2)")
    r = xlate(br, icmp(), in_port=1)
    # output:4 replaced output:3 (one final action); the set runs before it
    assert actions(r) == "12,set(ipv4(src=10.0.0.1)),12,set(ipv4(src=10.0.0.9)),14"
    assert r.trace[-1].line() == "--. Executing action set:"


def test_clear_actions_and_an_action_set_without_output():
    br = bridge("actions=write_actions(output(3)),goto_table(1)",
                "table=1,actions=output(2),clear_actions")
    assert actions(xlate(br, icmp(), in_port=1)) == "12"
    assert execute_action_set([A.StripVlan(), A.SetEth("dst", 1)]) == []
    acts = [A.Output(3), A.SetEth("dst", 1), A.PushVlan(), A.StripVlan(), A.Output(4)]
    assert execute_action_set(acts) == [A.StripVlan(), A.PushVlan(), A.SetEth("dst", 1),
                                        A.Output(4)]


def test_flood_and_all_honour_port_flags():
    br = bridge("in_port=1,actions=flood", "in_port=2,actions=all", "in_port=3,actions=output:4")
    br.mod_port(3, "noflood")
    br.mod_port("p4", "noforward")
    # FLOOD: not the input port, not no_flood ports; no_fwd ports never get output
    assert actions(xlate(br, icmp(), in_port=1)) == "12,100"
    assert actions(xlate(br, icmp(), in_port=2)) == "11,13,100"
    r = xlate(br, icmp(), in_port=3)
    assert actions(r) == "drop" and "OFPPC_NO_FWD set, skipping output" in r.trace[0].actions
    br.mod_port(4, "forward")
    assert actions(xlate(br, icmp(), in_port=3)) == "14"
    with pytest.raises(OfprotoError, match="unknown action"):
        br.mod_port(4, "nostp")


def test_patch_port_continues_in_the_peer_bridge_and_restores_the_flow():
    br0 = bridge("actions=load:7->NXM_NX_REG0[],mod_dl_dst:50:54:00:00:00:0a,output:5,"
                 "output:4", ports=(2, 4))
    br1 = Bridge("br1", local_odp_port=101)
    br1.add_port("p3", 3, 3)
    connect_patch(br0, "patch-br1", 5, br1, "patch-br0", 1)
    # the peer sees in_port=1 and cleared registers; its rewrite stays in the datapath
    br1.add_flows(["in_port=1,reg0=0,actions=mod_nw_src:10.0.0.1,output:3,output:LOCAL"])
    r = xlate(br0, icmp(), in_port=2)
    assert actions(r) == ("set(eth(dst=50:54:00:00:00:0a)),set(ipv4(src=10.0.0.1)),3,101,"
                          "set(ipv4(src=192.168.0.1)),14")
    assert [(s.bridge, s.table) for s in r.trace] == [("br0", 0), ("br1", 0)]
    assert r.final_flow.nw_src == 0xC0A80001 and r.final_flow.reg0 == 7


def test_clone_restores_the_flow():
    r = xlate(bridge("actions=clone(mod_dl_src:00:00:00:00:00:01,output:2),output:3"), icmp(),
              in_port=1)
    assert actions(r) == ("set(eth(src=00:00:00:00:00:01)),12,"
                          "set(eth(src=50:54:00:00:00:05)),13")


def test_icmp_rewrite_is_a_full_set_and_slow_pathed():
    r = xlate(bridge("icmp,actions=set_field:0->icmp_type,output:2"), icmp(), in_port=1)
    assert actions(r) == "set(icmp(type=0,code=0)),12"
    assert r.slow
    assert "icmp_code=0x0/0xff" in r.megaflow()  # the whole header is matched


def test_nd_rewrite_is_masked_and_slow_pathed():
    flow = OfFlow(dl_type=IPV6, ipv6_src=1, ipv6_dst=2, nw_proto=58, nw_ttl=255, tp_src=135,
                  nd_target=0x2020, arp_sha=0x665544332211)
    r = xlate(bridge("icmp6,icmpv6_type=135,actions=set_field:fe80::4->nd_target,output:2"),
              flow, in_port=1)
    assert actions(r) == "set(nd(target=fe80::4)),12"
    assert r.slow


def test_many_outputs_are_slow_pathed():
    flows = [f"in_port={i},actions=resubmit:{i + 1},resubmit:{i + 1}" for i in range(1, 11)]
    r = xlate(bridge(*flows, "in_port=11,actions=output:2", ports=(1, 2)), icmp(), in_port=1)
    assert actions(r) == ",".join(["12"] * 1024)
    assert r.slow and r.error is None


def _udp_frame(src="10.0.0.1", dst="10.0.0.2", sport=1000):
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
                 IP(src=src, dst=dst, ttl=64) / UDP(sport=sport, dport=53) / b"x")


def test_upcall_handler_installs_the_megaflow_in_a_datapath():
    dp_bridge = Bridge("br0", local_odp_port=0)
    for n in (1, 2, 3):
        dp_bridge.add_port(f"p{n}", n, n)
    dp_bridge.add_flows(["ip,nw_dst=10.0.0.2,actions=mod_nw_dst:10.0.0.9,output:2",
                         "priority=0,actions=output:3"])
    handler = XlateHandler(dp_bridge)
    dp = Datapath(handler=handler)
    for n in (1, 2, 3):
        dp.add_port(f"p{n}", port_no=n)
    first = dp.receive(_udp_frame(), 1)
    assert [o.port for o in first.outputs] == [2] and first.installed == 1
    assert odp.format_actions(handler.last.datapath_actions) == \
        "set(ipv4(dst=10.0.0.9)),2"
    # another source address and port: the megaflow (in_port, dl_type, nw_dst, ...) hits
    second = dp.receive(_udp_frame(src="10.0.0.7", sport=4242), 1)
    assert second.hit == 1 and [o.port for o in second.outputs] == [2]
    third = dp.receive(_udp_frame(dst="10.0.0.3"), 1)
    assert third.missed == 1 and [o.port for o in third.outputs] == [3]
    key, mask = odp.parse_flow("in_port(1),eth_type(0x0800),ipv4(dst=10.0.0.2)")
    assert wc_to_key_mask(handler.last.wc)[:4] == b"\xff" * 4
    assert len(dp.flows()) == 2 and len(key) == len(mask)


def test_upcall_from_an_unknown_port_is_dropped_without_a_flow():
    handler = XlateHandler(bridge())
    key, _ = odp.parse_flow("in_port(77),eth_type(0x0800)")
    (reply,) = handler([Upcall("miss", b"", key, 0)])
    assert reply.actions == b"" and reply.mask is None


def test_upcalls_learn_macs_so_normal_replies_go_unicast():
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    br = Bridge("br0", local_odp_port=0)
    for n in (1, 2, 3):
        br.add_port(f"p{n}", n, n)
    br.add_flows(["actions=NORMAL"])
    handler = XlateHandler(br, clock=lambda: 100)
    dp = Datapath(handler=handler)
    for n in (1, 2, 3):
        dp.add_port(f"p{n}", port_no=n)
    a, b = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
    ping = bytes(Ether(src=a, dst=b) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / b"x")
    pong = bytes(Ether(src=b, dst=a) / IP(src="10.0.0.2", dst="10.0.0.1") / UDP() / b"x")
    # b is unknown: flooded to every other port; the upcall learned a on p1
    assert sorted(o.port for o in dp.receive(ping, 1).outputs) == [0, 2, 3]
    # the reply to a goes to p1 only
    assert [o.port for o in dp.receive(pong, 2).outputs] == [1]


def test_arp_rewrite_sets_the_padded_kernel_struct():
    # struct ovs_key_arp is 24 bytes (22 of fields, 2 of tail padding): OVS 3.1
    # traces this flow as set(arp(sip=10.0.0.9)),2, slow-pathed
    br = Bridge("br0", local_odp_port=100)
    for n in (1, 2):
        br.add_port(f"p{n}", n, n)
    br.add_flow("arp,actions=load:0x0a000009->NXM_OF_ARP_SPA[],output:2")
    flow = OfFlow(in_port=1, dl_src=0x505400000001, dl_dst=0x505400000002, dl_type=0x0806,
                  nw_proto=1, nw_src=0x0A000001, nw_dst=0x0A000002, arp_sha=0x505400000001)
    result = xlate(br, flow)
    assert odp.format_actions(result.datapath_actions) == "set(arp(sip=10.0.0.9)),2"
    assert result.slow
    # a set_masked attribute: header, nested header, 24 bytes of value, 24 of mask
    assert result.datapath_actions[:8] == bytes([56, 0, 11, 0, 52, 0, 13, 0])


def test_tcp_field_actions_see_no_l4_header_on_later_fragments():
    br = Bridge("br0", local_odp_port=100)
    for n in (1, 2):
        br.add_port(f"p{n}", n, n)
    br.add_flow("tcp,actions=move:NXM_OF_TCP_DST[]->NXM_NX_REG0[0..15],output:2")
    later = OfFlow(in_port=1, dl_type=0x0800, nw_proto=6, nw_frag=3, tp_dst=80)
    assert "unmet prerequisites for move, ignored" in xlate(br, later).trace_text()
    first = OfFlow(in_port=1, dl_type=0x0800, nw_proto=6, nw_frag=1, tp_dst=80)
    assert "unmet prerequisites" not in xlate(br, first).trace_text()
