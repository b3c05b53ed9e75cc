"""The topology as plain data: hosts, NICs, bridges, ports, VMs, links, checks.

A :class:`Topology` is what a topology YAML file describes after loading and
validation (see :mod:`ovsnet.topology.loader`). It never touches OVSDB: the
OVSDB layer (:mod:`ovsnet.ovsdb.desired`) turns a host of it into rows, the
way ``ovs-vsctl`` and libvirt would write them.

Naming scheme (as in the YAML file): hosts, VMs, bridges and ports are named
by their mapping keys; a port's name is also the name of its single
Interface, except for bonds whose member interfaces are listed in
``interfaces``. A VM NIC is addressed as ``vm:nic`` and a host NIC in a link
as ``host:nic``. Every object keeps the :class:`Position` of its key in the
file so later layers can point back at the source.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

#: datapath kinds of a host and the Bridge.datapath_type each one implies
DATAPATH_TYPES = {"kernel": "system", "netdev": "netdev"}

#: Interface types ovsnet knows how to configure, as OVS spells them
#: ("" is a system port: a NIC or an existing Linux netdev).
PORT_TYPES = (
    "",
    "system",
    "internal",
    "tap",
    "dummy",
    "dummy-internal",
    "patch",
    "vxlan",
    "geneve",
    "gre",
    "erspan",
    "stt",
    "dpdk",
    "dpdkvhostuser",
    "dpdkvhostuserclient",
)
TUNNEL_TYPES = ("vxlan", "geneve", "gre", "erspan", "stt")
#: default UDP destination port of each tunnel type (gre/erspan have none)
TUNNEL_DEFAULT_DST_PORT = {"vxlan": 4789, "geneve": 6081, "stt": 7471}

VLAN_MODES = ("access", "trunk", "native-tagged", "native-untagged", "dot1q-tunnel")
BOND_MODES = ("active-backup", "balance-slb", "balance-tcp")
LACP_MODES = ("active", "passive", "off")
FAIL_MODES = ("secure", "standalone")
VM_BACKENDS = ("vhost-net", "vhost-user")
OPENFLOW_VERSIONS = tuple(f"OpenFlow1{n}" for n in range(6))

#: the owner tag ovsnet writes on every Bridge, Port and Interface it creates
OWNER_KEY = "ovsnet-owner"
#: external_ids key holding the requested datapath port number of an Interface
DP_PORT_KEY = "ovsnet-dp-port"

#: bytes a unix socket path may hold (sizeof(sun_path) minus the final NUL)
UNIX_PATH_MAX = 107


@dataclass(frozen=True)
class Position:
    """Where something was written: file and 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


NOWHERE = Position("<memory>", 0, 0)


@dataclass
class HostNic:
    """A physical NIC of a host (``hosts.H.nics.N``)."""

    name: str
    mac: str | None = None
    mtu: int = 1500
    pci: str | None = None  # PCI address, becomes dpdk-devargs on a netdev host
    speed_gbps: float | None = None
    pos: Position = NOWHERE


@dataclass
class Underlay:
    """A host's underlay address: the IP tunnels are sourced from."""

    nic: str
    ip: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    gateway: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    pos: Position = NOWHERE


@dataclass
class Interface:
    """One OVSDB Interface: a port's only interface, or one member of a bond."""

    name: str
    type: str = ""
    options: dict[str, str] = field(default_factory=dict)
    ofport: int | None = None  # -> Interface.ofport_request
    mtu: int | None = None  # -> Interface.mtu_request
    dp_port: int | None = None  # datapath port number (odp_port); see allocate_dp_ports
    other_config: dict[str, str] = field(default_factory=dict)
    external_ids: dict[str, str] = field(default_factory=dict)
    pos: Position = NOWHERE


@dataclass
class Port:
    """One OVSDB Port of a bridge, with its interface(s).

    ``vm``/``vm_nic`` are set when the port is a VM's vhost-net TAP or
    vhost-user socket; ``host_nic`` when the port is a physical NIC of the host.
    """

    name: str
    bridge: str
    interfaces: list[Interface]
    tag: int | None = None
    trunks: list[int] = field(default_factory=list)
    vlan_mode: str | None = None
    bond_mode: str | None = None
    lacp: str | None = None
    vm: str | None = None
    vm_nic: str | None = None
    host_nic: str | None = None
    other_config: dict[str, str] = field(default_factory=dict)
    external_ids: dict[str, str] = field(default_factory=dict)
    pos: Position = NOWHERE

    @property
    def type(self) -> str:
        """Interface type of a single-interface port ('' for a bond)."""
        return self.interfaces[0].type if len(self.interfaces) == 1 else ""

    @property
    def is_bond(self) -> bool:
        return len(self.interfaces) > 1


@dataclass
class Bridge:
    """One OVS bridge: its ports (in file order) and its OpenFlow flows."""

    name: str
    host: str
    fail_mode: str = "standalone"
    datapath_type: str = "system"
    protocols: list[str] = field(default_factory=list)
    ports: dict[str, Port] = field(default_factory=dict)
    flows: list[str] = field(default_factory=list)
    flows_pos: list[Position] = field(default_factory=list)  # one per flow line
    other_config: dict[str, str] = field(default_factory=dict)
    external_ids: dict[str, str] = field(default_factory=dict)
    pos: Position = NOWHERE


@dataclass
class VmNic:
    """A virtio-net NIC of a VM."""

    name: str
    vm: str
    mac: str
    ip: ipaddress.IPv4Interface | None = None
    ipv6: ipaddress.IPv6Interface | None = None
    gateway: ipaddress.IPv4Address | None = None
    backend: str = "vhost-net"  # vhost-net (kernel host) | vhost-user (netdev host)
    queues: int = 1
    mtu: int = 1500
    iface_id: str | None = None  # external_ids:iface-id; derived when absent
    vhost_server_path: str | None = None  # vhost-user socket (QEMU is the server)
    pos: Position = NOWHERE


@dataclass
class Vm:
    """A virtual machine on a host: QEMU process, vCPUs, virtio NICs."""

    name: str
    host: str
    nics: dict[str, VmNic] = field(default_factory=dict)
    vcpus: int = 1
    memory_mb: int = 1024
    vm_id: str | None = None  # external_ids:vm-id (libvirt domain UUID); derived when absent
    pos: Position = NOWHERE


@dataclass
class Host:
    """A hypervisor or bare-metal host running one Open vSwitch instance."""

    name: str
    datapath: str = "kernel"  # kernel | netdev
    underlay: Underlay | None = None
    nics: dict[str, HostNic] = field(default_factory=dict)
    bridges: dict[str, Bridge] = field(default_factory=dict)
    vms: dict[str, Vm] = field(default_factory=dict)
    vhost_sock_dir: str = "/var/run/openvswitch"
    pos: Position = NOWHERE

    def ports(self):
        """Every port of every bridge of this host, in file order."""
        for bridge in self.bridges.values():
            yield from bridge.ports.values()


@dataclass
class Link:
    """An L2 segment joining two or more host NICs (``host:nic``)."""

    endpoints: list[tuple[str, str]]
    name: str | None = None
    pos: Position = NOWHERE


@dataclass
class Check:
    """A forwarding check (``ping``, ``tcp``, ``udp``) run by a later layer."""

    kind: str
    src: str  # VM name or vm:nic
    dst: str  # VM name, vm:nic or an IP address
    expect: str = "reachable"  # reachable | unreachable
    params: dict[str, object] = field(default_factory=dict)
    pos: Position = NOWHERE


@dataclass
class Topology:
    """A validated topology: the whole file as plain data."""

    name: str
    hosts: dict[str, Host] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    description: str = ""
    source: str = "<memory>"  # the file it was loaded from

    def host(self, name: str) -> Host:
        """The host called ``name``; KeyError names the hosts that exist."""
        try:
            return self.hosts[name]
        except KeyError:
            known = ", ".join(sorted(self.hosts)) or "none"
            raise KeyError(f"no host {name!r} in topology {self.name!r} (hosts: {known})") from None

    def vm(self, name: str) -> Vm:
        for host in self.hosts.values():
            if name in host.vms:
                return host.vms[name]
        raise KeyError(f"no VM {name!r} in topology {self.name!r}")
