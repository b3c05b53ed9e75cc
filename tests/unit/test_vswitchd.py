"""The simulated vswitchd: bridges, ports and the datapath built from a host's OVSDB."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from ovsnet.datapath import odp
from ovsnet.errors import OfprotoError
from ovsnet.ofproto.ofp_fields import OFPP_LOCAL
from ovsnet.ovsdb import bring_up
from ovsnet.topology import load_topology
from ovsnet.topology.loader import load_topology_text
from ovsnet.vswitchd import (
    BridgeConfig,
    IfaceConfig,
    OfportAllocator,
    PortConfig,
    Vswitchd,
    allocate_ofports,
)

TOPOLOGIES = "topologies"


def vswitchd_of(text_or_path: str, host: str, **kwargs) -> Vswitchd:
    topo = (load_topology(text_or_path) if text_or_path.endswith(".yaml")
            else load_topology_text(text_or_path))
    with bring_up(topo, hosts=[host]) as net:
        return Vswitchd.from_hostdb(net[host], **kwargs)


def frame(src="00:00:00:00:00:01", dst="00:00:00:00:00:02", ip_dst="10.0.0.2", dport=80) -> bytes:
    return bytes(Ether(src=src, dst=dst) / IP(src="10.0.0.1", dst=ip_dst) / TCP(dport=dport))


VLANS = """
name: vlans
hosts:
  h:
    bridges:
      br0:
        other_config: {mac-aging-time: "60", forward-bpdu: "true"}
        ports:
          a: {ofport: 7, tag: 10}
          b: {vlan_mode: trunk, trunks: [10, 20]}
          c: {}
          pa: {type: patch, peer: pb}
      br1:
        fail_mode: secure
        ports:
          pb: {type: patch, peer: pa, ofport: 5}
          d: {ofport: 1}
        flows:
          - in_port=pb,actions=output:d
"""


def test_single_bridge_from_ovsdb():
    vs = vswitchd_of(f"{TOPOLOGIES}/single-bridge.yaml", "host1")
    br = vs.bridge("br0")
    names = vs.port_names()
    assert [(p.name, p.ofport) for p in br.ports] == [
        ("p1", 1), ("p2", 2), ("p3", 3), ("p4", 4), ("br0", OFPP_LOCAL)]
    # datapath ports as dpports assigns them, the bridge's local port included
    assert {p.name: names[p.odp_port] for p in br.ports} == {p.name: p.name for p in br.ports}
    assert names[0] == "ovs-system"
    assert br.n_flows() == 1  # the file's NORMAL flow replaced the standalone one


def test_ports_vlans_settings_and_patches():
    vs = vswitchd_of(VLANS, "h")
    br0, br1 = vs.bridge("br0"), vs.bridge("br1")
    # requested ofports first, then alloc_ofp_port's next free numbers by name
    assert {p.name: p.ofport for p in br0.ports} == {"a": 7, "b": 1, "c": 2, "pa": 3,
                                                     "br0": OFPP_LOCAL}
    assert br0.port_by_name("pa").odp_port is None
    assert br0.peer_of(br0.port_by_name("pa"))[0] is br1
    assert br0.vlan_config(7).vlan == 10
    assert br0.vlan_config(1).trunks == frozenset({10, 20})
    assert br0.mac_learning.idle_time == 60 and br0.forward_bpdu
    # standalone gets NORMAL, secure only its own flows
    assert br0.n_flows() == 1 and br1.n_flows() == 1
    assert "pa" not in vs.port_names().values()


def test_shared_datapath_handler_enters_the_owning_bridge():
    vs = vswitchd_of(VLANS, "h")
    dp = vs.datapath
    # a packet on br1's port d: secure bridge, no rule for it -> dropped
    r = vs.receive_frames("d", [frame()])
    assert r.installed == 1 and not r.outputs
    # an untagged frame on access port a (VLAN 10) floods to the trunks tagged and through
    # the patch to br1, whose flow outputs it to d
    r = vs.receive_frames("a", [frame()])
    outs = {dp.port(o.port).name for o in r.outputs}
    assert outs == {"b", "c", "br0", "d"}  # every port trunking VLAN 10, LOCAL too
    flows = [odp.format_actions(f.actions, dp.port_names()) for f in dp.flows()]
    assert any("push_vlan(vid=10,pcp=0)" in a for a in flows)


def test_flow_errors_point_at_the_topology():
    text = VLANS.replace("in_port=pb,actions=output:d", "in_port=pb,actions=frobnicate")
    with pytest.raises(OfprotoError, match=r":\d+:\d+: bridge br1: flow not loaded"):
        vswitchd_of(text, "h")
    vs = vswitchd_of(text, "h", strict_flows=False)
    assert vs.bridge("br1").n_flows() == 0
    assert any("frobnicate" in w for w in vs.warnings)


def test_allocate_ofports_continues_after_the_last_number():
    def config(*names):
        return BridgeConfig("br0", ports=tuple(PortConfig(n, (IfaceConfig(n),)) for n in names))
    state = OfportAllocator()
    assert allocate_ofports(config("x", "y", "z"), None, state) == {"x": 1, "y": 2, "z": 3}
    # y goes; w is new: the next number, not y's recently freed 2, nor on coming back
    assert allocate_ofports(config("w", "x", "z"), {"x": 1, "z": 3}, state) == {
        "w": 4, "x": 1, "z": 3}
    assert allocate_ofports(config("w", "x", "y", "z"), {"w": 4, "x": 1, "z": 3},
                            state)["y"] == 5


def test_allocate_ofports_skips_taken_and_bad_requests():
    br = BridgeConfig("br0", ports=(
        PortConfig("x", (IfaceConfig("x", ofport_request=1),)),
        PortConfig("y", (IfaceConfig("y", ofport_request=1),)),
        PortConfig("z", (IfaceConfig("z", ofport_request=70000),)),
        PortConfig("br0", (IfaceConfig("br0", type="internal"),)),
    ))
    assert allocate_ofports(br) == {"x": 1, "y": 2, "z": 3}


def test_unknown_bridge():
    vs = vswitchd_of(f"{TOPOLOGIES}/single-bridge.yaml", "host1")
    with pytest.raises(OfprotoError, match="no bridge 'br9'.*br0"):
        vs.bridge("br9")


def test_dump_flows_with_the_xlate_handler(tmp_path, capsys):
    """`ovsnet dump-flows --handler xlate`: pcap packets go through the host's bridges;
    NORMAL learns, and revalidation turns the first flood into unicast."""
    from scapy.utils import wrpcap

    from ovsnet.cli import main

    a, b = "00:00:00:00:00:0a", "00:00:00:00:00:0b"
    wrpcap(str(tmp_path / "ab.pcap"), [Ether(bytes(frame(a, b)))])
    wrpcap(str(tmp_path / "ba.pcap"), [Ether(bytes(frame(b, a)))])
    code = main(["dump-flows", f"{TOPOLOGIES}/single-bridge.yaml", "--handler", "xlate",
                 "--names", "--pcap", f"p1={tmp_path / 'ab.pcap'}",
                 "--pcap", f"p2={tmp_path / 'ba.pcap'}"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = sorted(out.splitlines())
    assert len(lines) == 2
    assert "in_port(p1)" in lines[0] and lines[0].endswith("actions:p2")
    assert "in_port(p2)" in lines[1] and lines[1].endswith("actions:p1")


def test_reconfigure_fail_mode_and_flows():
    """Flows survive reconfiguration; the standalone NORMAL flow comes only when a bridge
    becomes standalone, not back after a del-flows."""
    topo = load_topology_text(VLANS)
    with bring_up(topo, hosts=["h"]) as net:
        db = net["h"]
        vs = Vswitchd.from_hostdb(db)
        vs.del_flows("br0")
        with db.api.transaction() as txn:
            txn.add(db.api.db_set("Bridge", "br1", ("fail_mode", "standalone")))
            txn.add(db.api.db_set("Port", "c", ("tag", 20)))
        db.api.connection.run()
        vs.reload(db.api.idl)
    assert vs.bridge("br0").n_flows() == 0
    assert vs.bridge("br1").n_flows() == 2  # its own flow and now NORMAL
    assert vs.bridge("br0").vlan_config(2).vlan == 20
    # the patch pair is joined again between the new bridge objects
    br0 = vs.bridge("br0")
    assert br0.peer_of(br0.port_by_name("pa"))[0] is vs.bridge("br1")


def test_reconfigure_edits_bridges_in_place():
    """A reload keeps the Bridge objects, the ofports of existing ports and the flows;
    a deleted Interface leaves the bridge and the datapath, a new one without a request
    takes the next free number."""
    topo = load_topology_text(VLANS)
    with bring_up(topo, hosts=["h"]) as net:
        db = net["h"]
        vs = Vswitchd.from_hostdb(db)
        br0 = vs.bridge("br0")
        before = {p.name: p.ofport for p in br0.ports}
        with db.api.transaction() as txn:
            txn.add(db.api.del_port("c"))
            txn.add(db.api.add_port("br0", "a0"))
        db.api.connection.run()
        vs.reload(db.api.idl)
    assert vs.bridge("br0") is br0
    after = {p.name: p.ofport for p in br0.ports}
    assert "c" not in after and "c" not in vs.port_names().values()
    assert {k: v for k, v in after.items() if k != "a0"} == {
        k: v for k, v in before.items() if k != "c"}
    assert after["a0"] == 4  # alloc_ofp_port goes on after the last number handed out
    assert "a0" in vs.port_names().values()
    assert br0.n_flows() == 1


def test_trace_api_openflow_and_odp_flows():
    """Vswitchd.trace is ofproto/trace: an OpenFlow flow enters the named bridge, an
    ODP flow the bridge of its datapath port; -generate learns for the next trace."""
    from ovsnet.ofproto.ofp_fields import OFPP_NONE, FlowSyntaxError

    vs = vswitchd_of(f"{TOPOLOGIES}/single-bridge.yaml", "host1")
    ports = {name: no for no, name in vs.port_names().items()}
    br, flow = vs.trace_flow("br0", "ip,nw_dst=10.0.0.1")
    assert br.name == "br0" and flow.in_port == OFPP_NONE and flow.nw_dst == 0x0A000001
    # p2 sends first, with side effects: p1 -> p2 afterwards goes to p2 only
    ask = "in_port=p2,dl_src=00:00:00:00:00:02,dl_dst=00:00:00:00:00:01"
    _, first = vs.trace("br0", ask, generate=True)
    assert odp.format_actions(first.datapath_actions).count(",") >= 2  # a flood
    reply = (f"in_port({ports['p1']}),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),"
             "eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto=6,tos=0,ttl=64,frag=no),"
             "tcp(src=1,dst=2)")
    br, result = vs.trace("br0", reply)
    assert br.name == "br0"
    assert odp.format_actions(result.datapath_actions) == str(ports["p2"])
    with pytest.raises(FlowSyntaxError, match="nw_dsst"):
        vs.trace_flow("br0", "ip,nw_dsst=1.2.3.4")
    with pytest.raises(OfprotoError, match="nosuch"):
        vs.trace_flow("nosuch", "ip")
