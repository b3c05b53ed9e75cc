"""The NORMAL action in translation (ovsnet.ofproto.xlate), with OVS 3.1's expected results.

Each expectation follows ofproto-dpif-xlate.c's ``xlate_normal`` as the test
describes; tests/differential/test_xlate_real.py runs ofproto-dpif.at's
"VLAN handling" cases through a real ovs-vswitchd as well.
"""

from __future__ import annotations

import pytest

from ovsnet.datapath import odp
from ovsnet.errors import OfprotoError
from ovsnet.ofproto.bridge import Bridge
from ovsnet.ofproto.of_flow import OfFlow
from ovsnet.ofproto.ofp_fields import OFPP_NONE
from ovsnet.ofproto.vlan import VlanConfig
from ovsnet.ofproto.xlate import xlate

IP, ARP, ICMP = 0x0800, 0x0806, 1
MAC_A, MAC_B = 0x505400000001, 0x505400000002
BROADCAST = 0xFFFFFFFFFFFF


def bridge(configs: dict[int, VlanConfig] | None = None, ports=(1, 2, 3, 4)) -> Bridge:
    br = Bridge("br0", local_odp_port=100)
    for n in ports:
        br.add_port(f"p{n}", n, n + 10)  # odp_port differs from ofport on purpose
    for n, cfg in (configs or {}).items():
        br.set_vlan_config(n, cfg)
    br.add_flow("actions=NORMAL")
    return br


def frame(src=MAC_A, dst=BROADCAST, vid: int | None = None, pcp: int = 0, **kw) -> OfFlow:
    members = dict(dl_src=src, dl_dst=dst, dl_type=IP, nw_src=0x0A000001, nw_dst=0x0A000002,
                   nw_proto=ICMP, nw_ttl=64, tp_src=8)
    if vid is not None:
        members.update(vlan_tpid=0x8100, vlan_tci=0x1000 | vid | (pcp << 13))
    members.update(kw)
    return OfFlow(**members)


def actions(result) -> str:
    return odp.format_actions(result.datapath_actions)


def access(tag: int) -> VlanConfig:
    return VlanConfig.configure(tag=tag)


def test_broadcast_floods_every_port_but_the_input_in_its_vlan():
    # ports 1, 2 access VLAN 10, 3 access VLAN 20, 4 and LOCAL trunks: the VLAN 10
    # copies to trunks get the tag, in bridge (bundle) order
    br = bridge({1: access(10), 2: access(10), 3: access(20)})
    r = xlate(br, frame(), in_port=1)
    assert actions(r) == "12,push_vlan(vid=10,pcp=0),14,100"
    assert r.trace[0].actions == ["NORMAL", "no learned MAC for destination, flooding"]
    # xlate_normal matches both Ethernet addresses and the VLAN ID with CFI
    assert r.wc.get("dl_src") == r.wc.get("dl_dst") == 0xFFFFFFFFFFFF
    r = xlate(br, frame(vid=10, pcp=5), in_port=4)
    assert actions(r) == "pop_vlan,11,12,push_vlan(vid=10,pcp=5),100"
    assert r.wc.get("vlan_tci") & 0x1FFF == 0x1FFF


def test_tagged_frame_on_access_port_is_dropped_with_ovs_message():
    r = xlate(bridge({1: access(10)}), frame(vid=20), in_port=1)
    assert actions(r) == "drop"
    assert r.errors == ["dropping VLAN 20 tagged packet received on port p1 configured as "
                        "VLAN 10 access port"]
    assert "disallowed VLAN VID for this input port, dropping" in r.trace[0].actions


def test_trunk_port_outside_its_trunks_drops():
    br = bridge({1: VlanConfig.configure(trunks=[10])})
    assert actions(xlate(br, frame(vid=10), in_port=1)) == "12,13,14,100"
    assert actions(xlate(br, frame(vid=11), in_port=1)) == "drop"


def test_plain_trace_learns_nothing():
    br = bridge()
    xlate(br, frame(), in_port=1)
    assert len(br.mac_learning) == 0


def test_generate_learns_and_unicasts_to_the_learned_port():
    br = bridge()
    r = xlate(br, frame(src=MAC_A, dst=MAC_B), in_port=1, generate=True, now=5)
    assert actions(r) == "12,13,14,100"
    assert br.mac_learning.lookup_port(MAC_A, 0) == 1
    assert "learned that 50:54:00:00:00:01 is on port p1 in VLAN 0" in r.trace[0].actions
    # the reply from port 3 goes to port 1 only
    r = xlate(br, frame(src=MAC_B, dst=MAC_A), in_port=3)
    assert actions(r) == "11"
    assert "forwarding to learned port" in r.trace[0].actions
    # a frame to MAC_A from port 1 itself goes nowhere
    r = xlate(br, frame(src=MAC_B, dst=MAC_A), in_port=1)
    assert actions(r) == "drop"
    assert "learned port is input port, dropping" in r.trace[0].actions


def test_learning_is_per_vlan():
    br = bridge({1: access(10), 2: access(20)})
    xlate(br, frame(src=MAC_A, dst=MAC_B), in_port=1, generate=True)
    assert br.mac_learning.lookup_port(MAC_A, 10) == 1
    assert br.mac_learning.lookup_port(MAC_A, 0) is None
    # from trunk port 3 in VLAN 10 the learned port is used, and the tag removed
    assert actions(xlate(br, frame(src=MAC_B, dst=MAC_A, vid=10), in_port=3)) == "pop_vlan,11"
    # in VLAN 20 it is unknown: flood VLAN 20's ports
    assert actions(xlate(br, frame(src=MAC_B, dst=MAC_A, vid=20), in_port=3)) == \
        "pop_vlan,12,push_vlan(vid=20,pcp=0),14,100"


def test_reserved_multicast_is_dropped_unless_forward_bpdu():
    br = bridge()
    r = xlate(br, frame(dst=0x0180C2000000), in_port=1)
    assert actions(r) == "drop"
    assert "packet has reserved destination MAC, dropping" in r.trace[0].actions
    br.forward_bpdu = True
    assert actions(xlate(br, frame(dst=0x0180C2000000), in_port=1)) == "12,13,14,100"


def test_ofpp_none_ingress_floods_everywhere_and_learns_nothing():
    br = bridge()
    r = xlate(br, frame(), in_port=OFPP_NONE, generate=True)
    assert actions(r) == "11,12,13,14,100"
    assert len(br.mac_learning) == 0
    # is_admissible needs an input port: a reserved destination is flooded too
    assert actions(xlate(br, frame(dst=0x0180C2000000), in_port=OFPP_NONE)) == \
        "11,12,13,14,100"


def test_no_flood_ports_are_skipped():
    br = bridge()
    br.mod_port(2, "noflood")
    assert actions(xlate(br, frame(), in_port=1)) == "13,14,100"


def test_gratuitous_arp_check_unwildcards_arp_addresses():
    arp = dict(dl_type=ARP, nw_proto=1, nw_src=0x0A000001, nw_dst=0x0A000001, tp_src=0)
    r = xlate(bridge(), frame(**arp), in_port=1)
    assert r.wc.get("nw_src") == r.wc.get("nw_dst") == 0xFFFFFFFF
    # not broadcast: is_gratuitous_arp stops at dl_dst
    r = xlate(bridge(), frame(dst=MAC_B, **arp), in_port=1)
    assert not r.wc.get("nw_src")


def test_priority_tags_keep_the_pcp_on_an_access_port():
    # an access port with priority-tags sends a VLAN 0 tag carrying the frame's PCP
    cfg = VlanConfig.configure(tag=10, other_config={"priority-tags": "if-nonzero"})
    br = bridge({2: cfg})
    # (the trunks after it get VLAN 10 back: commit_vlan_action pops and pushes)
    assert actions(xlate(br, frame(vid=10, pcp=3), in_port=1)) == \
        "pop_vlan,push_vlan(vid=0,pcp=3),12,pop_vlan,push_vlan(vid=10,pcp=3),13,14,100"
    # without priority-tags the access port gets the frame untagged
    br = bridge({2: access(10)})
    assert actions(xlate(br, frame(vid=10, pcp=3), in_port=1)) == "pop_vlan,12,push_vlan(vid=10,pcp=3),13,14,100"


def test_dot1q_tunnel_pushes_the_service_tag():
    cfg = VlanConfig.configure(vlan_mode="dot1q-tunnel", tag=100,
                               other_config={"qinq-ethtype": "802.1q"})
    br = bridge({1: cfg, 2: access(100)})
    r = xlate(br, frame(vid=5), in_port=1)
    # trunks carry both tags; the access port of VLAN 100 cannot carry a customer VLAN
    assert actions(r) == "push_vlan(vid=100,pcp=0),13,14,100"


def test_bundle_order_sets_the_flood_order():
    br = bridge()
    br.bundle_order = [3, 1]
    assert actions(xlate(br, frame(), in_port=2)) == "13,11,14,100"


def test_unknown_input_port_is_an_error():
    r = xlate(bridge(), frame(), in_port=9)
    assert actions(r) == "drop"
    assert r.errors == ["received packet on unknown port 9"]


def test_set_vlan_config_needs_a_port():
    with pytest.raises(OfprotoError, match="no port 7"):
        bridge().set_vlan_config(7, access(1))


def test_limit_vlans_leaves_the_inner_tag_as_payload():
    br = bridge()
    qinq = frame(vid=16, vlan1_tpid=0x8100, vlan1_tci=0x1011, dl_type=0xABCD)
    limited = br.limit_vlans(qinq)  # vlan-limit 1, OVS's default
    assert (limited.dl_type, limited.vlan1_tci, limited.vlan_tci) == (0x8100, 0, 0x1010)
    assert qinq.vlan1_tci == 0x1011  # the argument is unchanged
    br.vlan_limit = 0  # unlimited: both tags stay in the flow
    assert br.limit_vlans(qinq).vlan1_tci == 0x1011
