"""The ofproto/trace parser of the differential harness, on outputs captured from OVS 3.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.differential.ofproto_oracle import is_odp_flow, parse_trace, vlan_context

DATA = Path(__file__).parent / "data"


def load(name: str):
    return parse_trace((DATA / f"trace_{name}.txt").read_text())


def test_resubmit_blocks():
    t = load("resubmit")
    assert t.flow.startswith("tcp,in_port=1,vlan_tci=0x0000,")
    assert t.bridges == ["br0"]
    assert [(s.table, s.rule, s.priority) for s in t.tables] == [
        (0, "in_port=1", 32768), (1, "ip,nw_dst=10.0.0.0/8", 32768)]
    assert t.tables[0].actions == ["resubmit(,1)"]
    assert t.tables[1].actions == ["output:2", "output:3"]
    assert t.final_flow == "unchanged"
    assert t.megaflow == "recirc_id=0,eth,ip,in_port=1,nw_dst=10.0.0.0/8,nw_frag=no"
    assert t.datapath_actions == "2,3"
    assert t.messages == [] and t.error is None


def test_normal_catch_all_rule_and_flood_note():
    t = load("normal_vlan")
    step, = t.tables
    assert step.rule == "" and step.priority == 32768
    assert step.actions == ["NORMAL", "-> no learned MAC for destination, flooding"]
    assert t.datapath_actions == "pop_vlan,2,push_vlan(vid=10,pcp=0),3,100"


def test_recursion_limit_messages():
    t = load("recursion")
    assert len(t.tables) == 66
    assert t.tables[-1].actions[-1] == ">>>> over max translation depth 64 <<<<"
    assert t.messages == [">>>> over max translation depth 64 <<<<",
                          "Translation failed (Recursion too deep), packet is dropped."]
    assert t.datapath_actions == "drop"
    assert t.megaflows == [t.megaflow]


def test_patch_port_second_bridge():
    t = load("patch")
    assert t.bridges == ["br0", "br1"]
    assert [(s.bridge, s.table, s.actions) for s in t.tables] == [
        ("br0", 0, ["output:3"]), ("br1", 0, ["dec_ttl", "output:7"])]
    assert t.datapath_actions == "set(ipv4(ttl=127)),7"


@pytest.mark.parametrize("flow, context", [
    ("in_port=1,vlan_tci=0x0000,dl_src=00:00:00:00:00:01",
     "eth(src=00:00:00:00:00:00,dst=00:00:00:00:00:00),eth_type(0x1234)"),
    ("in_port=1,dl_vlan=10,dl_vlan_pcp=3,vlan_tci1=0x0000",
     "eth(src=00:00:00:00:00:00,dst=00:00:00:00:00:00),eth_type(0x8100),vlan(vid=10,pcp=3),"
     "encap(eth_type(0x1234))"),
    ("in_port=1,dl_vlan=10,dl_vlan_pcp=0,vlan_tci1=0x1005",
     "eth(src=00:00:00:00:00:00,dst=00:00:00:00:00:00),eth_type(0x8100),vlan(vid=10,pcp=0),"
     "encap(eth_type(0x8100),vlan(vid=5,pcp=0),encap(eth_type(0x1234)))"),
])
def test_vlan_context(flow, context):
    assert vlan_context(flow) == context


def test_flow_kinds():
    assert is_odp_flow("in_port(1),eth(src=50:54:00:00:00:05,dst=50:54:00:00:00:07)")
    assert not is_odp_flow("in_port=p1,tcp,nw_dst=10.0.0.1")
    assert not is_odp_flow("eth_dst=ff:ff:ff:ff:ff:ff")
