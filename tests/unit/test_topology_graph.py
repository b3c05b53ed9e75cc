"""The networkx view of a topology."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import networkx as nx

from ovsnet.topology import load_topology, topology_graph

ROOT = Path(__file__).resolve().parents[2]


def edges_of(g, kind):
    return {frozenset((u, v)) for u, v, d in g.edges(data=True) if d["kind"] == kind}


def test_two_hosts_vxlan_graph():
    topo = load_topology(ROOT / "topologies" / "two-hosts-vxlan.yaml")
    g = topology_graph(topo)
    assert isinstance(g, nx.MultiGraph)
    kinds = Counter(d["kind"] for _, d in g.nodes(data=True))
    assert kinds == {"host": 2, "nic": 2, "bridge": 4, "port": 10, "vm": 4, "vm_nic": 4, "link": 1}
    assert (
        g.nodes[("port", "hv1", "tapvm1-eth0")]["obj"]
        is topo.host("hv1").bridges["br-int"].ports["tapvm1-eth0"]
    )
    assert edges_of(g, "patch") == {
        frozenset({("port", "hv1", "patch-tun"), ("port", "hv1", "patch-int")}),
        frozenset({("port", "hv2", "patch-tun"), ("port", "hv2", "patch-int")}),
    }
    assert edges_of(g, "tunnel") == {
        frozenset({("port", "hv1", "vxlan-c0000202"), ("host", "hv2")}),
        frozenset({("port", "hv2", "vxlan-c0000201"), ("host", "hv1")}),
    }
    assert edges_of(g, "link") == {
        frozenset({("link", 0), ("nic", "hv1", "eth0")}),
        frozenset({("link", 0), ("nic", "hv2", "eth0")}),
    }
    assert frozenset({("port", "hv1", "tapvm1-eth0"), ("vm_nic", "vm1", "eth0")}) in edges_of(
        g, "attached"
    )
    assert frozenset({("host", "hv1"), ("bridge", "hv1", "br-int")}) in edges_of(g, "contains")
    # a VM on hv1 reaches a VM on hv2 only through the tunnel and the other host
    path = nx.shortest_path(g, ("vm", "vm1"), ("vm", "vm3"))
    assert ("port", "hv1", "vxlan-c0000202") in path


def test_bond_members_and_underlay_switch():
    g = topology_graph(load_topology(ROOT / "topologies" / "dpdk-vhost-user.yaml"))
    attached = edges_of(g, "attached")
    assert frozenset({("port", "compute1", "bond0"), ("nic", "compute1", "dpdk1")}) in attached
    assert frozenset({("port", "compute1", "bond0"), ("nic", "compute1", "dpdk2")}) in attached
    assert frozenset({("port", "compute1", "dpdk0"), ("nic", "compute1", "dpdk0")}) in attached
    assert not edges_of(g, "tunnel")

    g3 = topology_graph(load_topology(ROOT / "topologies" / "three-hosts-geneve.yaml"))
    assert g3.degree(("link", 0)) == 3
    assert g3.nodes[("link", 0)]["name"] == "tor1"
    assert len(edges_of(g3, "tunnel")) == 6
