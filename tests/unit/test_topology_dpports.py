"""Datapath port numbering: one datapath per host, shared tunnel vports, no patch ports."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ovsnet.errors import TopologyError
from ovsnet.topology import (
    Bridge,
    Host,
    Interface,
    Port,
    allocate_dp_ports,
    load_topology,
    load_topology_text,
    plan_dp_ports,
)
from ovsnet.topology.dpports import vport_name

ROOT = Path(__file__).resolve().parents[2]


def host_of(text: str, name: str = "h") -> Host:
    return load_topology_text(text, "t.yaml").host(name)


def dp_ports_of(host: Host) -> dict[str, int | None]:
    return {i.name: i.dp_port for p in host.ports() for i in p.interfaces}


def test_two_hosts_vxlan_numbering():
    topo = load_topology(ROOT / "topologies" / "two-hosts-vxlan.yaml")
    hv1 = topo.host("hv1")
    assert allocate_dp_ports(hv1) == {
        0: "ovs-system",
        1: "br-int",
        2: "tapvm1-eth0",
        3: "tapvm2-eth0",
        4: "br-tun",
        5: "vxlan_sys_4789",
    }
    assert dp_ports_of(hv1) == {
        "tapvm1-eth0": 2,
        "tapvm2-eth0": 3,
        "patch-tun": None,
        "patch-int": None,
        "vxlan-c0000202": 5,
    }


def test_tunnel_vports_are_shared_per_type_and_udp_port():
    host = host_of("""name: t
hosts:
  h:
    bridges:
      br-tun:
        ports:
          vx1: {type: vxlan, remote_ip: 192.0.2.1}
          gnv1: {type: geneve, remote_ip: 192.0.2.1}
          vx2: {type: vxlan, remote_ip: 192.0.2.2, key: 7}
          vx3: {type: vxlan, remote_ip: 192.0.2.3, dst_port: 8472}
          gre1: {type: gre, remote_ip: 192.0.2.4}
          gre2: {type: gre, remote_ip: 192.0.2.5}
          gnv2: {type: geneve, remote_ip: 192.0.2.2}
""")
    assert allocate_dp_ports(host) == {
        0: "ovs-system",
        1: "br-tun",
        2: "vxlan_sys_4789",
        3: "genev_sys_6081",
        4: "vxlan_sys_8472",
        5: "gre_sys",
    }
    assert dp_ports_of(host) == {
        "vx1": 2,
        "gnv1": 3,
        "vx2": 2,
        "vx3": 4,
        "gre1": 5,
        "gre2": 5,
        "gnv2": 3,
    }


def test_explicit_numbers_are_reserved_first():
    host = host_of("""name: t
hosts:
  h:
    datapath: netdev
    bridges:
      br0:
        ports:
          a: {}
          b: {dp_port: 2}
          c: {type: internal}
          vx: {type: vxlan, remote_ip: 192.0.2.1, dp_port: 1}
          vx2: {type: vxlan, remote_ip: 192.0.2.2}
""")
    assert allocate_dp_ports(host) == {
        0: "ovs-netdev",
        1: "vxlan_sys_4789",
        2: "b",
        3: "br0",
        4: "a",
        5: "c",
    }
    assert dp_ports_of(host) == {"a": 4, "b": 2, "c": 5, "vx": 1, "vx2": 1}


def test_allocation_is_deterministic_and_idempotent():
    path = ROOT / "topologies" / "dpdk-vhost-user.yaml"
    first = allocate_dp_ports(load_topology(path).host("compute1"))
    host = load_topology(path).host("compute1")
    assert allocate_dp_ports(host) == first
    assert allocate_dp_ports(host) == first  # numbers already set are kept
    assert first[0] == "ovs-netdev"
    assert dp_ports_of(host)["dpdk1"] == 7 and dp_ports_of(host)["dpdk2"] == 8


def test_allocate_on_a_hand_built_host():
    port = Port("p1", "br0", [Interface("p1")])
    patch = Port("x", "br0", [Interface("x", type="patch", options={"peer": "y"})])
    host = Host("h", bridges={"br0": Bridge("br0", "h", ports={"p1": port, "x": patch})})
    assert allocate_dp_ports(host) == {0: "ovs-system", 1: "br0", 2: "p1"}
    assert port.interfaces[0].dp_port == 2 and patch.interfaces[0].dp_port is None


def test_allocate_raises_on_conflicting_requests():
    ports = {n: Port(n, "br0", [Interface(n, dp_port=3)]) for n in ("p1", "p2")}
    host = Host("h", bridges={"br0": Bridge("br0", "h", ports=ports)})
    with pytest.raises(TopologyError, match="dp_port 3 is already used by p1 on host h"):
        allocate_dp_ports(host)


KINDS = ["", "internal", "tap", "patch", "vxlan", "geneve", "gre"]


@given(
    st.lists(
        st.tuples(
            st.integers(0, 2), st.sampled_from(KINDS), st.one_of(st.none(), st.integers(1, 40))
        ),
        min_size=1,
        max_size=25,
    )
)
def test_numbering_properties(specs):
    """Unique numbers per vport, shared per tunnel kind, none for patch, explicit ones honoured."""
    bridges = {f"br{b}": Bridge(f"br{b}", "h") for b in range(3)}
    for n, (b, kind, wanted) in enumerate(specs):
        options = {"peer": "x"} if kind == "patch" else {}
        iface = Interface(f"i{n}", type=kind, options=options, dp_port=wanted)
        bridges[f"br{b}"].ports[f"i{n}"] = Port(f"i{n}", f"br{b}", [iface])
    host = Host("h", bridges=bridges)
    plan = plan_dp_ports(host)
    assert len(set(plan.ports.values())) == len(plan.ports)
    assert plan.ports[0] == "ovs-system"
    by_name = {name: number for number, name in plan.ports.items()}
    conflicted = {c.iface.name for c in plan.conflicts}
    for port in host.ports():
        (iface,) = port.interfaces
        number = plan.by_interface.get(iface.name)
        if iface.type == "patch":
            assert number is None
            continue
        assert plan.ports[number] == vport_name(iface)
        assert by_name[vport_name(iface)] == number
        if iface.dp_port is not None and iface.name not in conflicted:
            assert number == iface.dp_port
    assert plan_dp_ports(host) == plan  # deterministic
