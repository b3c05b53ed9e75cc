"""Revalidation: installed megaflows follow flow-table, port and MAC-table changes."""

from __future__ import annotations

import random

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from ovsnet.datapath import odp
from ovsnet.ofproto.upcall import wc_to_key_mask
from ovsnet.ofproto.xlate import xlate
from ovsnet.ovsdb import bring_up
from ovsnet.topology.loader import load_topology_text
from ovsnet.vswitchd import Vswitchd

TOPO = """
name: reval
hosts:
  h:
    bridges:
      br0:
        fail_mode: secure
        ports:
          p1: {ofport: 1}
          p2: {ofport: 2}
          p3: {ofport: 3}
        flows:
          - priority=10,in_port=p1,ip,nw_dst=10.0.0.2,actions=output:p2
          - priority=0,actions=drop
"""


def make(text: str = TOPO, **kwargs) -> Vswitchd:
    with bring_up(load_topology_text(text), hosts=["h"]) as net:
        return Vswitchd.from_hostdb(net["h"], clock=lambda: 1000, **kwargs)


def frame(src=1, dst=2, ip_dst="10.0.0.2", dport=80) -> bytes:
    return bytes(Ether(src=f"00:00:00:00:00:{src:02x}", dst=f"00:00:00:00:00:{dst:02x}")
                 / IP(src="10.0.0.1", dst=ip_dst) / TCP(dport=dport))


def flows(vs: Vswitchd) -> list[str]:
    names = vs.port_names()
    return sorted(odp.format_actions(f.actions, names) for f in vs.datapath.flows())


def out_names(vs: Vswitchd, result) -> list[str]:
    return sorted(vs.datapath.port(o.port).name for o in result.outputs)


def test_flow_edit_modifies_installed_megaflow():
    vs = make()
    assert out_names(vs, vs.receive_frames("p1", [frame()])) == ["p2"]
    assert flows(vs) == ["p2"]
    # same match and priority, new actions: the megaflow keeps its mask, actions change
    stats = vs.add_flow("br0", "priority=10,in_port=p1,ip,nw_dst=10.0.0.2,actions=output:p3")
    assert (stats.checked, stats.modified, stats.deleted) == (1, 1, 0)
    assert flows(vs) == ["p3"]
    r = vs.receive_frames("p1", [frame()])
    assert r.hit == 1 and out_names(vs, r) == ["p3"]


def test_higher_priority_rule_needing_more_bits_deletes_megaflow():
    vs = make()
    vs.receive_frames("p1", [frame(dport=80), frame(dport=22)])
    assert len(vs.datapath.flows()) == 1  # tp_dst wildcarded: one megaflow for both
    stats = vs.add_flow("br0", "priority=20,in_port=p1,tcp,tp_dst=22,actions=output:p3")
    assert stats.deleted == 1 and not vs.datapath.flows()
    assert out_names(vs, vs.receive_frames("p1", [frame(dport=22)])) == ["p3"]
    assert out_names(vs, vs.receive_frames("p1", [frame(dport=80)])) == ["p2"]


def test_del_flows_and_mod_port():
    vs = make()
    vs.receive_frames("p1", [frame()])
    vs.mod_port("br0", "p2", "noforward")
    assert flows(vs) == ["drop"]
    vs.mod_port("br0", "p2", "forward")
    assert flows(vs) == ["p2"]
    vs.del_flows("br0")
    assert flows(vs) == ["drop"]


def test_unchanged_flows_are_kept():
    vs = make()
    vs.receive_frames("p1", [frame()])
    stats = vs.add_flow("br0", "priority=5,in_port=p3,actions=output:p1")
    assert (stats.kept, stats.modified, stats.deleted) == (1, 0, 0)


def test_mac_learning_changes_revalidate_flooded_flows():
    text = TOPO.replace("fail_mode: secure", "fail_mode: standalone").replace(
        "        flows:\n          - priority=10,in_port=p1,ip,nw_dst=10.0.0.2,actions=output:p2\n"
        "          - priority=0,actions=drop\n", "")
    vs = make(text)
    # 1 -> 2 floods (2 unknown); then 2 -> 1 teaches the bridge where 2 is
    assert out_names(vs, vs.receive_frames("p1", [frame(1, 2)])) == ["br0", "p2", "p3"]
    vs.receive_frames("p2", [frame(2, 1)])
    # the flooding megaflow for 1 -> 2 was revalidated to unicast
    assert flows(vs) == ["p1", "p2"]
    r = vs.receive_frames("p1", [frame(1, 2)])
    assert r.hit == 1 and out_names(vs, r) == ["p2"]


def test_reconfigure_from_ovsdb():
    topo = load_topology_text(TOPO)
    with bring_up(topo, hosts=["h"]) as net:
        db = net["h"]
        vs = Vswitchd.from_hostdb(db, clock=lambda: 1000)
        vs.receive_frames("p1", [frame()])
        with db.api.transaction() as txn:
            txn.add(db.api.db_set("Port", "p2", ("tag", 5)))
            txn.add(db.api.add_port("br0", "p4", iface_columns={"ofport_request": 4}))
        db.api.connection.run()
        vs.reload(db.api.idl)
    assert vs.bridge("br0").port_by_name("p4").ofport == 4
    assert vs.bridge("br0").vlan_config(2).vlan == 5
    assert vs.bridge("br0").n_flows() == 2  # OpenFlow flows survive
    assert flows(vs) == ["p2"]
    assert "p4" in vs.port_names().values()


def test_random_edits_never_leave_stale_megaflows():
    """After every random flow edit, each installed megaflow equals a fresh translation."""
    rng = random.Random(5)
    vs = make()
    br = vs.bridge("br0")
    for step in range(40):
        for _ in range(3):
            vs.receive_frames(f"p{rng.randint(1, 3)}",
                              [frame(rng.randint(1, 3), rng.randint(1, 3),
                                     f"10.0.0.{rng.randint(1, 3)}", rng.choice((22, 80)))])
        prio = rng.randint(1, 30)
        match = rng.choice(["ip", "tcp,tp_dst=22", "in_port=p2", "ip,nw_dst=10.0.0.3",
                            "dl_src=00:00:00:00:00:01"])
        action = rng.choice(["output:p1", "output:p2", "output:p3", "drop", "output:p2,output:p3"])
        vs.add_flow("br0", f"priority={prio},{match},actions={action}")
        for f in vs.datapath.flows():
            bridge, flow = vs.handler.flow_of_key(vs.handler.ukeys[bytes(f.ufid)].key)
            fresh = xlate(bridge, flow)
            assert bytes(f.actions) == fresh.datapath_actions, step
            new_mask = int.from_bytes(wc_to_key_mask(fresh.wc), "little")
            assert not new_mask & ~int.from_bytes(bytes(f.mask), "little"), step
    assert br.n_flows() > 2


def test_compiled_core_and_python_revalidate_alike():
    """Upcalls and revalidation through the compiled core leave the same datapath
    flows as the Python translation alone, edit after edit."""
    rng = random.Random(9)
    fast, slow = make(), make()
    slow.handler.fast = False
    for step in range(40):
        for _ in range(3):
            port = f"p{rng.randint(1, 3)}"
            data = frame(rng.randint(1, 3), rng.randint(1, 3), f"10.0.0.{rng.randint(1, 3)}",
                         rng.choice((22, 80)))
            fast.receive_frames(port, [data])
            slow.receive_frames(port, [data])
        flow = (f"priority={rng.randint(1, 30)},"
                f"{rng.choice(['ip', 'tcp,tp_dst=22', 'in_port=p2', 'ip,nw_dst=10.0.0.3'])},"
                f"actions={rng.choice(['output:p1', 'output:p3', 'drop', 'dec_ttl,output:p2'])}")
        fast.add_flow("br0", flow)
        slow.add_flow("br0", flow)
        assert sorted((bytes(f.key), bytes(f.mask), bytes(f.actions))
                      for f in fast.datapath.flows()) == \
            sorted((bytes(f.key), bytes(f.mask), bytes(f.actions))
                   for f in slow.datapath.flows()), step
    assert fast.handler.n_fast > 0 and fast.handler.n_python == 0
    assert slow.handler.n_fast == 0 and slow.handler.n_python > 0


def test_vlan_config_change_through_ovsdb_revalidates_floods():
    """Making p2 an access port of VLAN 5 takes it out of VLAN 0's flood: the installed
    flooding megaflow is updated, and the next packet follows the new configuration."""
    text = TOPO.replace("fail_mode: secure", "fail_mode: standalone").replace(
        "        flows:\n          - priority=10,in_port=p1,ip,nw_dst=10.0.0.2,actions=output:p2\n"
        "          - priority=0,actions=drop\n", "")
    with bring_up(load_topology_text(text), hosts=["h"]) as net:
        db = net["h"]
        vs = Vswitchd.from_hostdb(db, clock=lambda: 1000)
        assert out_names(vs, vs.receive_frames("p1", [frame(1, 2)])) == ["br0", "p2", "p3"]
        with db.api.transaction() as txn:
            txn.add(db.api.db_set("Port", "p2", ("tag", 5)))
        db.api.connection.run()
        stats = vs.reload(db.api.idl)
    assert stats.checked == 1 and stats.modified + stats.deleted == 1
    assert all("p2" not in a for a in flows(vs))
    r = vs.receive_frames("p1", [frame(1, 2)])
    assert out_names(vs, r) == ["br0", "p3"]


def test_deleted_port_forgets_its_macs():
    text = TOPO.replace("fail_mode: secure", "fail_mode: standalone").replace(
        "        flows:\n          - priority=10,in_port=p1,ip,nw_dst=10.0.0.2,actions=output:p2\n"
        "          - priority=0,actions=drop\n", "")
    with bring_up(load_topology_text(text), hosts=["h"]) as net:
        db = net["h"]
        vs = Vswitchd.from_hostdb(db, clock=lambda: 1000)
        vs.receive_frames("p2", [frame(2, 1)])
        vs.receive_frames("p3", [frame(3, 1)])
        assert vs.bridge("br0").mac_learning.lookup_port(2, 0) == 2
        with db.api.transaction() as txn:
            txn.add(db.api.del_port("p2"))
        db.api.connection.run()
        vs.reload(db.api.idl)
    ml = vs.bridge("br0").mac_learning
    assert ml.lookup_port(2, 0) is None and ml.lookup_port(3, 0) == 3
    assert "p2" not in vs.port_names().values()
    # 1 -> 2 floods again (to p3 and LOCAL)
    assert out_names(vs, vs.receive_frames("p1", [frame(1, 2)])) == ["br0", "p3"]


PATCHED = """
name: patched
hosts:
  h:
    bridges:
      br0:
        fail_mode: secure
        ports:
          p1: {ofport: 1}
          to-br1: {type: patch, peer: to-br0, ofport: 9}
        flows: ["in_port=p1,actions=output:to-br1"]
      br1:
        fail_mode: secure
        ports:
          to-br0: {type: patch, peer: to-br1, ofport: 9}
          q1: {ofport: 1}
          q2: {ofport: 2}
        flows: ["in_port=to-br0,actions=output:q1"]
"""


def test_edit_on_the_patch_peer_revalidates_the_first_bridges_flows():
    """A megaflow installed for br0's port crosses into br1: editing br1's table (the
    other bridge of the shared datapath) updates it."""
    vs = make(PATCHED)
    assert out_names(vs, vs.receive_frames("p1", [frame()])) == ["q1"]
    stats = vs.add_flow("br1", "in_port=to-br0,actions=output:q2")
    assert stats.modified == 1
    assert flows(vs) == ["q2"]
    r = vs.receive_frames("p1", [frame()])
    assert r.hit == 1 and out_names(vs, r) == ["q2"]
