"""Loading topology files: the examples, and what the loader derives."""

from __future__ import annotations

import ipaddress
import uuid
from pathlib import Path

import pytest

from ovsnet.topology import Position, Topology, load_topology, load_topology_text
from ovsnet.topology.loader import OVSNET_UUID_NAMESPACE

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "topologies").glob("*.yaml"))
DATA = Path(__file__).parent / "data"


def load(text: str) -> Topology:
    return load_topology_text(text, "t.yaml")


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_loads(path):
    topo = load_topology(path)
    assert topo.name == path.stem
    assert topo.source == str(path)
    assert topo.hosts
    for host in topo.hosts.values():
        for port in host.ports():
            for iface in port.interfaces:
                assert (iface.dp_port is None) == (iface.type == "patch"), (host.name, iface.name)


def test_required_examples_exist():
    names = {p.name for p in EXAMPLES}
    assert {"single-bridge.yaml", "two-hosts-vxlan.yaml", "dpdk-vhost-user.yaml"} <= names


def test_single_bridge_example():
    topo = load_topology(ROOT / "topologies" / "single-bridge.yaml")
    (host,) = topo.hosts.values()
    (bridge,) = host.bridges.values()
    assert bridge.name == "br0"
    assert list(bridge.ports) == ["p1", "p2", "p3", "p4"]
    assert [p.type for p in bridge.ports.values()] == ["", "", "", ""]
    assert bridge.flows == ["table=0,priority=0,actions=NORMAL"]
    assert bridge.datapath_type == "system" and bridge.fail_mode == "standalone"


@pytest.mark.parametrize(
    "text",
    [
        "name: tiny\nhosts:\n  h1: {}\n",
        "name: tiny\nhosts:\n  h1:\n",
        "name: tiny\nhosts:\n  h1:\n    bridges:\n      br0:\n        ports:\n          p1: {}\n          p2:\n",
        "name: tiny\n",
    ],
    ids=["empty-host", "null-host", "plain-ports", "no-hosts"],
)
def test_minimal_files_are_valid(text):
    topo = load(text)
    assert topo.name == "tiny"


def test_two_hosts_vxlan_example():
    topo = load_topology(ROOT / "topologies" / "two-hosts-vxlan.yaml")
    hv1 = topo.host("hv1")
    assert hv1.underlay.ip == ipaddress.ip_interface("192.0.2.1/24")
    assert hv1.underlay.gateway == ipaddress.ip_address("192.0.2.254")
    br_int, br_tun = hv1.bridges["br-int"], hv1.bridges["br-tun"]
    assert br_int.fail_mode == "secure" and br_int.protocols == ["OpenFlow10", "OpenFlow13"]
    tap = br_int.ports["tapvm1-eth0"]
    assert (tap.type, tap.tag, tap.vm, tap.vm_nic) == ("tap", 1, "vm1", "eth0")
    assert br_int.ports["tapvm2-eth0"].vm_nic == "eth0"  # nic omitted: the VM's only NIC
    assert br_tun.ports["patch-int"].interfaces[0].options == {"peer": "patch-tun"}
    vx = br_tun.ports["vxlan-c0000202"].interfaces[0]
    assert vx.type == "vxlan"
    assert vx.options == {"remote_ip": "192.0.2.2", "local_ip": "192.0.2.1", "key": "flow"}
    assert topo.links[0].endpoints == [("hv1", "eth0"), ("hv2", "eth0")]
    assert [(c.kind, c.src, c.dst, c.expect) for c in topo.checks][:3] == [
        ("ping", "vm1", "vm3", "reachable"),
        ("ping", "vm2", "vm4", "reachable"),
        ("ping", "vm1", "vm4", "unreachable"),
    ]
    assert topo.checks[3].params == {"dst_port": 22}
    assert topo.vm("vm3").host == "hv2"


# --- interface types ------------------------------------------------------------------

TYPE_HOST = """name: t
hosts:
  h:
    datapath: {datapath}
    nics: {{eth1: {{pci: "0000:03:00.0"}}}}
    vms:
      vm1: {{nics: {{eth0: {{mac: "52:54:00:00:00:01"}}}}}}
    bridges:
      br0:
        ports:
          p: {spec}
"""


@pytest.mark.parametrize(
    ("datapath", "name", "spec", "port_type", "extra"),
    [
        ("kernel", "p", "{vm: vm1}", "tap", {}),
        (
            "netdev",
            "p",
            "{vm: vm1}",
            "dpdkvhostuserclient",
            {"vhost-server-path": "/var/run/openvswitch/p"},
        ),
        ("kernel", "eth1", "{}", "", {}),
        ("netdev", "eth1", "{}", "dpdk", {"dpdk-devargs": "0000:03:00.0"}),
        (
            "netdev",
            "eth1",
            "{dpdk_devargs: 'net_af_packet0,iface=eth1'}",
            "dpdk",
            {"dpdk-devargs": "net_af_packet0,iface=eth1"},
        ),
        ("kernel", "p", "{peer: q}\n          q: {peer: p}", "patch", {"peer": "q"}),
        ("kernel", "p", "{}", "", {}),
        ("kernel", "p", "{type: internal}", "internal", {}),
        ("netdev", "p", "{vm: vm1, type: dpdkvhostuser}", "dpdkvhostuser", {}),
    ],
    ids=[
        "vm-kernel",
        "vm-netdev",
        "nic-kernel",
        "nic-netdev",
        "nic-devargs",
        "peer",
        "plain",
        "explicit",
        "vhostuser-server",
    ],
)
def test_derived_port_type(datapath, name, spec, port_type, extra):
    topo = load(
        TYPE_HOST.format(datapath=datapath, spec=spec).replace("          p:", f"          {name}:")
    )
    port = topo.host("h").bridges["br0"].ports[name]
    assert port.type == port_type
    assert port.interfaces[0].options == extra
    assert port.host_nic == (name if name == "eth1" else None)


def test_vm_port_marks_and_derived_ids():
    topo = load(TYPE_HOST.format(datapath="kernel", spec="{vm: vm1, nic: eth0}"))
    iface = topo.host("h").bridges["br0"].ports["p"].interfaces[0]
    vm = topo.vm("vm1")
    nic = vm.nics["eth0"]
    assert vm.vm_id == str(uuid.uuid5(OVSNET_UUID_NAMESPACE, "t/h/vm1"))
    assert nic.iface_id == str(uuid.uuid5(OVSNET_UUID_NAMESPACE, "t/h/vm1/eth0"))
    assert iface.external_ids == {
        "attached-mac": "52:54:00:00:00:01",
        "iface-id": nic.iface_id,
        "vm-id": vm.vm_id,
        "iface-status": "active",
    }
    assert nic.backend == "vhost-net" and nic.vhost_server_path is None


def test_vm_port_marks_use_explicit_ids_and_lowercase_mac():
    topo = load("""name: t
hosts:
  h:
    vms:
      vm1:
        vm_id: 9B0E6A4C-0000-4000-8000-000000000001
        nics: {eth0: {mac: "52:54:00:AB:CD:EF", iface_id: port-1234}}
    bridges:
      br0:
        ports:
          tap1: {vm: vm1, external_ids: {owner: me}}
""")
    ext = topo.host("h").bridges["br0"].ports["tap1"].interfaces[0].external_ids
    assert ext == {
        "attached-mac": "52:54:00:ab:cd:ef",
        "iface-id": "port-1234",
        "vm-id": "9b0e6a4c-0000-4000-8000-000000000001",
        "iface-status": "active",
        "owner": "me",
    }


def test_vhost_user_socket_paths():
    topo = load("""name: t
hosts:
  h:
    datapath: netdev
    vhost_sock_dir: /run/vhost/
    vms:
      vm1: {nics: {eth0: {mac: "52:54:00:00:00:01", queues: 4}}}
      vm2: {nics: {eth0: {mac: "52:54:00:00:00:02", vhost_server_path: /tmp/vm2.sock}}}
    bridges:
      br0:
        ports:
          vhu1: {vm: vm1}
          vhu2: {vm: vm2}
""")
    host = topo.host("h")
    ports = host.bridges["br0"].ports
    assert ports["vhu1"].interfaces[0].options == {"vhost-server-path": "/run/vhost/vhu1"}
    assert ports["vhu2"].interfaces[0].options == {"vhost-server-path": "/tmp/vm2.sock"}
    assert host.vms["vm1"].nics["eth0"].vhost_server_path == "/run/vhost/vhu1"
    assert host.vms["vm1"].nics["eth0"].backend == "vhost-user"
    assert host.vms["vm1"].nics["eth0"].queues == 4
    assert host.bridges["br0"].datapath_type == "netdev"


def test_option_shorthands_and_string_maps():
    topo = load("""name: t
hosts:
  h:
    bridges:
      br0:
        other_config: {disable-in-band: true, flow-limit: 1000}
        external_ids: {bridge-id: br0}
        ports:
          vx: {type: vxlan, remote_ip: 192.0.2.2, local_ip: 192.0.2.1, key: 5000, dst_port: 4790,
               tos: inherit, ttl: 64, options: {csum: true}, ofport: 10, mtu: 1450, dp_port: 40,
               other_config: {tx-steering: thread}}
""")
    iface = topo.host("h").bridges["br0"].ports["vx"].interfaces[0]
    assert iface.options == {
        "csum": "true",
        "remote_ip": "192.0.2.2",
        "local_ip": "192.0.2.1",
        "key": "5000",
        "dst_port": "4790",
        "tos": "inherit",
        "ttl": "64",
    }
    assert (iface.ofport, iface.mtu, iface.dp_port) == (10, 1450, 40)
    assert iface.other_config == {"tx-steering": "thread"}
    bridge = topo.host("h").bridges["br0"]
    assert bridge.other_config == {"disable-in-band": "true", "flow-limit": "1000"}
    assert bridge.external_ids == {"bridge-id": "br0"}


def test_bonds():
    topo = load("""name: t
hosts:
  h:
    datapath: netdev
    nics:
      dpdk1: {pci: "0000:02:00.0"}
      dpdk2: {pci: "0000:02:00.1"}
    bridges:
      br0:
        ports:
          bond0:
            interfaces: [dpdk1, dpdk2]
            bond_mode: balance-tcp
            lacp: active
            other_config: {lacp-time: fast}
          bond1:
            interfaces:
              m1: {type: dummy, ofport: 7, dp_port: 70, mtu: 9000}
              m2: {pci: "0000:05:00.0", type: dpdk}
            bond_mode: active-backup
""")
    ports = topo.host("h").bridges["br0"].ports
    bond0 = ports["bond0"]
    assert bond0.is_bond and bond0.type == "" and bond0.host_nic is None
    assert [(i.name, i.type, i.options) for i in bond0.interfaces] == [
        ("dpdk1", "dpdk", {"dpdk-devargs": "0000:02:00.0"}),
        ("dpdk2", "dpdk", {"dpdk-devargs": "0000:02:00.1"}),
    ]
    assert (bond0.bond_mode, bond0.lacp, bond0.other_config) == (
        "balance-tcp",
        "active",
        {"lacp-time": "fast"},
    )
    m1, m2 = ports["bond1"].interfaces
    assert (m1.type, m1.ofport, m1.dp_port, m1.mtu) == ("dummy", 7, 70, 9000)
    assert (m2.type, m2.options) == ("dpdk", {"dpdk-devargs": "0000:05:00.0"})


def test_flows_file_is_read_relative_to_the_topology():
    topo = load_topology(DATA / "flows-file.yaml")
    bridge = topo.host("h1").bridges["br0"]
    assert bridge.flows == [
        "table=0,priority=10,in_port=1,actions=output:2",
        "table=0,priority=0,actions=NORMAL",
    ]
    flows_txt = str(DATA / "flows.txt")
    assert bridge.flows_pos == [Position(flows_txt, 2, 1), Position(flows_txt, 4, 3)]


def test_positions_point_at_the_keys():
    topo = load(
        "name: t\nhosts:\n  h:\n    bridges:\n      br0:\n        ports:\n          p1: {}\n"
        "        flows:\n          - actions=NORMAL\n"
    )
    host = topo.host("h")
    assert host.pos == Position("t.yaml", 3, 3)
    assert host.bridges["br0"].pos == Position("t.yaml", 5, 7)
    assert host.bridges["br0"].ports["p1"].pos == Position("t.yaml", 7, 11)
    assert host.bridges["br0"].flows_pos == [Position("t.yaml", 9, 13)]


def test_merge_keys_and_anchors():
    topo = load("""name: t
hosts:
  h:
    bridges:
      br0:
        ports:
          p1: &access {tag: 10, vlan_mode: access}
          p2: {<<: *access, tag: 20}
""")
    ports = topo.host("h").bridges["br0"].ports
    assert (ports["p1"].tag, ports["p2"].tag, ports["p2"].vlan_mode) == (10, 20, "access")


def test_links_in_both_forms():
    topo = load("""name: t
hosts:
  a: {nics: {eth0: {}, eth1: {}}}
  b: {nics: {eth0: {}}}
  c: {nics: {eth0: {}}}
links:
  - [a:eth0, b:eth0]
  - {name: tor, endpoints: [a:eth1, c:eth0]}
""")
    assert [(link.name, link.endpoints) for link in topo.links] == [
        (None, [("a", "eth0"), ("b", "eth0")]),
        ("tor", [("a", "eth1"), ("c", "eth0")]),
    ]


def test_vm_addresses_are_parsed():
    topo = load("""name: t
hosts:
  h:
    vms:
      vm1:
        vcpus: 4
        memory_mb: 8192
        nics: {eth0: {mac: "52:54:00:00:00:01", ip: 10.0.0.5/24, ipv6: "fd00::5/64", gateway: 10.0.0.1, mtu: 9000}}
""")
    vm = topo.vm("vm1")
    nic = vm.nics["eth0"]
    assert (vm.vcpus, vm.memory_mb, vm.host) == (4, 8192, "h")
    assert nic.ip == ipaddress.IPv4Interface("10.0.0.5/24")
    assert nic.ipv6 == ipaddress.IPv6Interface("fd00::5/64")
    assert nic.gateway == ipaddress.IPv4Address("10.0.0.1")
    assert nic.mtu == 9000


def test_loading_is_deterministic():
    path = ROOT / "topologies" / "two-hosts-vxlan.yaml"
    assert load_topology(path) == load_topology(path)


def test_smallest_file_of_the_docs_loads():
    text = (ROOT / "docs" / "topology.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    topo = load(block)
    assert list(topo.host("host1").bridges["br0"].ports) == ["p1", "p2", "p3", "p4"]
