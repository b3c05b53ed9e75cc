"""Translation of xxreg fields, queues, the controller action and TTL exceptions.

Expected results follow OVS 3.1's ofproto-dpif-xlate.c (``xlate_enqueue_action``,
``xlate_controller_action``, ``compose_dec_ttl``) and lib/odp-util.c
(``format_odp_userspace_action``); tests/differential/test_xlate_real.py checks
the same translations against a real ovs-vswitchd.
"""

from __future__ import annotations

import pytest

from ovsnet.ofproto import ofp_actions as A
from ovsnet.ofproto.bridge import Bridge
from ovsnet.ofproto.flow_syntax import parse_flow
from ovsnet.ofproto.of_flow import OfFlow
from ovsnet.ofproto.ofp_fields import FlowSyntaxError, field_by_name
from ovsnet.ofproto.xlate import ControllerCookie, format_datapath_actions, queue_to_priority, xlate


def bridge(*flows: str) -> Bridge:
    br = Bridge("br0", local_odp_port=100)
    for n in (1, 2, 3, 4):
        br.add_port(f"p{n}", n, n)
    br.add_flows(flows)
    return br


def ip(**kw) -> OfFlow:
    members = dict(in_port=1, dl_src=0x505400000005, dl_dst=0x505400000007, dl_type=0x0800,
                   nw_src=0xC0A80001, nw_dst=0xC0A80002, nw_proto=111, nw_ttl=64)
    members.update(kw)
    return OfFlow(**members)


def acts(r) -> str:
    return format_datapath_actions(r.datapath_actions)


# -- xxreg ---------------------------------------------------------------------------


def test_xxreg_spans_four_registers_most_significant_first():
    fld = field_by_name("xxreg1")
    assert fld.n_bits == 128 and fld.nxm == "NXM_NX_XXREG1"
    assert fld.reg_parts == (("reg4", 96), ("reg5", 64), ("reg6", 32), ("reg7", 0))
    assert parse_flow("xxreg1=0x1/0xff,actions=drop").format() == "reg7=0x1/0xff actions=drop"


def test_load_into_xxreg_is_matched_register_by_register():
    br = bridge("table=0,actions=load:0x0123456789abcdeffedcba9876543210->NXM_NX_XXREG1[],"
                "resubmit(,1)",
                "table=1,reg4=0x01234567,reg5=0x89abcdef,reg6=0xfedcba98,reg7=0x76543210,"
                "actions=2",
                "table=1,priority=0,actions=3")
    assert acts(xlate(br, ip())) == "2"


def test_xxreg_subfield_bounds_are_checked():
    with pytest.raises(FlowSyntaxError, match="only 128 bits wide"):
        parse_flow("actions=load:1->NXM_NX_XXREG0[128]")


# -- queues --------------------------------------------------------------------------


def test_queue_priorities_follow_the_datapath():
    assert queue_to_priority(1, "dummy") == 1
    assert queue_to_priority(1, "system") == 0x10002  # tc class 1:2
    assert queue_to_priority(0xF000, "system") is None


def test_enqueue_sets_priority_around_the_output_and_skips_the_input_port():
    br = bridge("actions=enqueue:2:1,enqueue:1:1,enqueue:3:2,output:4")
    r = xlate(br, ip(), datapath_type="dummy")
    assert acts(r) == ("set(skb_priority(0x1)),2,set(skb_priority(0x2)),3,"
                       "set(skb_priority(0)),4")
    assert r.megaflow().startswith("recirc_id=0,skb_priority=0,eth,")


def test_enqueue_beyond_the_kernel_queues_is_a_plain_output():
    r = xlate(bridge("actions=enqueue:2:61440"), ip())
    assert acts(r) == "2"


def test_set_queue_and_pop_queue():
    r = xlate(bridge("actions=set_queue:5,output:2,pop_queue,output:3"), ip(),
              datapath_type="netdev")
    assert acts(r) == "set(skb_priority(0x5)),2,set(skb_priority(0)),3"


def test_enqueue_syntax():
    fm = parse_flow("actions=enqueue(2,3),enqueue:LOCAL:1", {"p2": 2})
    assert fm.format({"p2": 2}) == "actions=enqueue:p2:3,enqueue:LOCAL:1"
    with pytest.raises(FlowSyntaxError, match="OFPBAC_BAD_OUT_PORT"):
        parse_flow("actions=enqueue:65300:1")
    with pytest.raises(FlowSyntaxError, match='syntax is "enqueue:PORT:QUEUE"'):
        parse_flow("actions=enqueue:1")


# -- controller ----------------------------------------------------------------------


def test_controller_cookie_round_trips_and_prints_as_ovs():
    c = ControllerCookie(reason=1, dont_send=True, recirc_id=7, rule_cookie=0xAB,
                         controller_id=3, max_len=128)
    data = c.encode()
    assert len(data) == 48 and ControllerCookie.decode(data) == c
    assert c.format() == ("controller(reason=1,dont_send=1,continuation=0,recirc_id=7,"
                          "rule_cookie=0xab,controller_id=3,max_len=128)")
    assert ControllerCookie.decode(bytes(48)) is None


def test_controller_is_a_userspace_action_after_committed_changes():
    br = bridge("cookie=0x12,actions=mod_dl_src:50:54:00:00:00:09,CONTROLLER:100,output:2")
    r = xlate(br, ip())
    assert acts(r) == ("set(eth(src=50:54:00:00:00:09)),userspace(pid=0,controller(reason=1,"
                       "dont_send=1,continuation=0,recirc_id=1,rule_cookie=0x12,"
                       "controller_id=0,max_len=100)),2")
    assert not r.slow and not r.unsupported
    # with side effects (an upcall, or ofproto/trace -generate) the packet-in is sent
    assert "dont_send=0" in acts(xlate(br, ip(), generate=True))


def test_controller_reasons():
    # an action of a table-miss rule (priority 0, matching everything) is an explicit miss
    assert "reason=6," in acts(xlate(bridge("priority=0,actions=controller"), ip()))
    assert "reason=3," in acts(xlate(bridge("actions=write_actions(CONTROLLER)"), ip()))
    r = xlate(bridge("actions=controller(reason=invalid_ttl,id=4,userdata=01.02)"), ip())
    assert "reason=2," in acts(r) and "controller_id=4," in acts(r)


def test_equal_frozen_states_share_a_recirculation_id():
    r = xlate(bridge("actions=controller,controller,load:1->NXM_NX_REG0[],controller"), ip())
    assert [int(p.split(",")[0]) for p in acts(r).split("recirc_id=")[1:]] == [1, 1, 2]


def test_dec_ttl_at_ttl_1_sends_to_each_controller_and_stops_the_table():
    br = bridge("in_port=1,actions=dec_ttl(1,2),output:2",
                "in_port=3,actions=resubmit(1,0),output:4")
    r = xlate(br, ip(nw_ttl=1))
    assert acts(r).count("reason=2,") == 2 and "controller_id=2," in acts(r)
    assert not acts(r).endswith(",2")
    assert ">>>> IPv4 decrement TTL exception <<<<" in r.trace[0].actions
    # back in the resubmitting table, translation goes on
    assert acts(xlate(br, ip(nw_ttl=1, in_port=3))).endswith(",4")
    assert "nw_ttl=1" in r.megaflow()


# -- MPLS ----------------------------------------------------------------------------


def mpls(**kw) -> OfFlow:
    members = dict(in_port=1, dl_src=0x505400000005, dl_dst=0x505400000007, dl_type=0x8847,
                   mpls_lse=(100 << 12) | (3 << 9) | 0x100 | 5)
    members.update(kw)
    return OfFlow(**members)


def test_push_mpls_on_ip_takes_tc_and_ttl_from_the_ip_header():
    r = xlate(bridge("actions=mod_nw_dst:9.9.9.9,push_mpls:0x8847,output:2"),
              ip(nw_tos=32, nw_ttl=9))
    assert acts(r) == ("set(ipv4(dst=9.9.9.9)),push_mpls(label=0,tc=0,ttl=9,bos=1,"
                       "eth_type=0x8847),2")
    assert "nw_tos=32,nw_ttl=9" in r.megaflow()


def test_second_push_copies_the_top_entry_and_pops_commit_in_order():
    r = xlate(bridge("actions=push_mpls:0x8847,push_mpls:0x8847,set_mpls_label(7),output:2,"
                     "pop_mpls:0x8847,pop_mpls:0x8847,output:3,pop_mpls:0x0800,output:4"),
              mpls())
    assert acts(r) == ("push_mpls(label=100,tc=3,ttl=5,bos=0,eth_type=0x8847),"
                       "push_mpls(label=7,tc=3,ttl=5,bos=0,eth_type=0x8847),2,"
                       "pop_mpls(eth_type=0x8847),pop_mpls(eth_type=0x8847),3,"
                       "pop_mpls(eth_type=0x800),4")
    assert r.megaflow().endswith("mpls_bos=1,mpls_lse1=0,mpls_lse2=0")


def test_mpls_field_changes_are_one_set_of_the_top_entry():
    r = xlate(bridge("mpls,actions=set_mpls_label(5),set_mpls_tc(1),dec_mpls_ttl,output:2"),
              mpls())
    assert acts(r) == "set(mpls(label=5,tc=1,ttl=4,bos=1)),2"
    assert "mpls_label=100,mpls_tc=3,mpls_ttl=5" in r.megaflow()


def test_dec_mpls_ttl_exceptions_stop_the_table():
    r = xlate(bridge("actions=dec_mpls_ttl,output:2"), mpls(mpls_lse=(100 << 12) | 0x101))
    assert "reason=2," in acts(r) and not acts(r).endswith(",2")
    # OVS stops the table for a packet without MPLS too, without a packet-in
    r = xlate(bridge("actions=dec_mpls_ttl,output:2"), ip())
    assert acts(r) == "drop" and ">>>> MPLS decrement TTL exception <<<<" in r.trace[0].actions


def test_actions_reading_l3_after_pop_mpls_recirculate():
    # output and Ethernet rewrites need no recirculation; a table lookup does
    r = xlate(bridge("actions=pop_mpls:0x0800,output:2,mod_dl_dst:00:00:00:00:00:09,output:3,"
                     "mod_dl_src:00:00:00:00:00:08,resubmit(,1),output:4"), mpls())
    assert acts(r) == ("pop_mpls(eth_type=0x800),2,set(eth(dst=00:00:00:00:00:09)),3,"
                       "set(eth(src=00:00:00:00:00:08)),recirc(0x1)")
    assert not r.unsupported
    r = xlate(bridge("actions=pop_mpls:0x0800,dec_ttl,output:2"), mpls())
    assert acts(r) == "pop_mpls(eth_type=0x800),recirc(0x1)"


# -- learn ---------------------------------------------------------------------------

LEARN = ("table=0,actions=learn(table=1,hard_timeout=60,NXM_OF_VLAN_TCI[0..11],"
         "NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0x64->NXM_NX_REG0[],"
         "output:OXM_OF_IN_PORT[]),resubmit(,1)")


def test_learn_syntax_round_trips_as_ovs_prints_it():
    text = ("actions=learn(table=1,idle_timeout=10,hard_timeout=20,priority=10,"
            "cookie=0xfedcba9876543210,in_port=99,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],"
            "NXM_NX_REG3[3..19]=0x10011,load:NXM_OF_IN_PORT[]->NXM_NX_REG1[16..31],"
            "output:OXM_OF_IN_PORT[])")
    assert parse_flow(text).format() == text
    with pytest.raises(FlowSyntaxError, match="unknown keyword foo"):
        parse_flow("actions=learn(foo=1)")
    with pytest.raises(FlowSyntaxError, match="OFPBAC_MATCH_INCONSISTENT"):
        parse_flow("actions=learn(NXM_OF_IP_SRC[]=NXM_OF_IP_DST[])")


def test_learn_without_side_effects_only_matches_its_sources():
    br = bridge(LEARN, "table=1,priority=0,actions=output:2")
    r = xlate(br, ip(in_port=3))
    assert acts(r) == "2" and br.n_flows() == 2
    assert r.megaflow() == "recirc_id=0,eth,ip,in_port=3,dl_src=50:54:00:00:00:05,nw_frag=no"
    assert ">>>> suppressing side effects, so learn action ignored <<<<" in r.trace[0].actions


def test_learned_flow_is_added_but_unseen_by_its_own_translation():
    br = bridge(LEARN, "table=1,priority=0,actions=output:2")
    first = xlate(br, ip(in_port=3, dl_dst=0x505400000005), generate=True)
    # the learned rule matches this very packet, yet the lookup passes it by (as OVS's
    # translation sees the tables' old version) after examining its fields
    assert acts(first) == "2" and br.n_flows() == 3
    assert "dl_dst=50:54:00:00:00:05" in first.megaflow()
    learned = br.lookup(1, ip(dl_dst=0x505400000005))
    assert learned.priority == 32768 and learned.payload.hard_timeout == 60
    assert A.format_actions(learned.payload.actions) == "load:0x64->NXM_NX_REG0[],output:3"
    # the next packet to that MAC takes the learned flow
    assert acts(xlate(br, ip(in_port=1, dl_dst=0x505400000005))) == "3"
    # learning the same MAC elsewhere replaces the flow; until then the old one is used
    again = xlate(br, ip(in_port=2, dl_dst=0x505400000005), generate=True)
    assert acts(again) == "3" and br.n_flows() == 3
    assert acts(xlate(br, ip(in_port=1, dl_dst=0x505400000005))) == "2"


def test_a_fourth_mpls_label_fails_and_keeps_the_unfinished_megaflow():
    br = bridge("table=0,actions=resubmit(,1)",
                "table=1,reg0=0,tcp,tp_dst=2,actions=push_mpls:0x8847,push_mpls:0x8847,"
                "push_mpls:0x8847,push_mpls:0x8847,output:2")
    r = xlate(br, ip(nw_proto=6, tp_src=1, tp_dst=2))
    assert r.error == "Too many MPLS labels" and acts(r) == "drop"
    # xlate_actions leaves before xlate_wc_finish: registers and MPLS masks stay
    assert r.megaflow() == ("recirc_id=0,eth,tcp,reg0=0,in_port=1,nw_tos=0,nw_ttl=64,"
                            "mpls_label=0,mpls_tc=0,mpls_ttl=0,mpls_bos=0,mpls_lse1=0,"
                            "mpls_lse2=0x00000000/0x00000100,nw_frag=no,tp_dst=2")
