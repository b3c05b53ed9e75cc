"""Datapath port numbers (``odp_port``) of a host, as OVS assigns them.

All bridges of a host share one datapath (``ovs-system`` for the kernel
datapath, ``ovs-netdev`` for the user-space one), so datapath port numbers
are unique per host, not per bridge -- unlike OpenFlow port numbers
(``ofport``), which are per bridge. Mirroring ``dpif_port_add()``:

* dp port 0 is the datapath's own local port, named after the datapath;
* each bridge's local ``internal`` port (named like the bridge) gets one;
* every non-patch interface gets one; patch ports are resolved during
  translation and never reach the datapath;
* tunnel interfaces do not get a vport each: OVS creates one vport per tunnel
  type and UDP port (``vxlan_sys_4789``, ``genev_sys_6081``, ``gre_sys``),
  shared by every tunnel interface of that kind (``netdev_vport_get_dpif_port``).

Explicit ``dp_port`` requests are reserved first; the others take the lowest
free number >= 1, walking bridges and then ports in file order, so the same
file always yields the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import Diagnostic, TopologyError
from .model import TUNNEL_DEFAULT_DST_PORT, TUNNEL_TYPES, Host, Interface, Port

#: name of the datapath (and of its local port 0) per host datapath kind
DATAPATH_NAMES = {"kernel": "ovs-system", "netdev": "ovs-netdev"}
#: OVS's dpif port base name per tunnel type (geneve's is shortened for IFNAMSIZ)
_TUNNEL_DPIF_BASE = {
    "vxlan": "vxlan_sys",
    "geneve": "genev_sys",
    "gre": "gre_sys",
    "erspan": "erspan_sys",
    "stt": "stt_sys",
}
MAX_DP_PORT = 65535


def tunnel_vport_name(iface: Interface) -> str:
    """The shared datapath vport a tunnel interface uses, e.g. ``vxlan_sys_4789``."""
    base = _TUNNEL_DPIF_BASE[iface.type]
    if iface.type not in TUNNEL_DEFAULT_DST_PORT:
        return base
    dst_port = iface.options.get("dst_port", str(TUNNEL_DEFAULT_DST_PORT[iface.type]))
    return f"{base}_{dst_port}"


def vport_name(iface: Interface) -> str | None:
    """Name of the datapath port behind ``iface``; None for a patch interface."""
    if iface.type == "patch":
        return None
    if iface.type in TUNNEL_TYPES:
        return tunnel_vport_name(iface)
    return iface.name


@dataclass
class DpConflict:
    """An explicit ``dp_port`` that cannot be honoured."""

    port: Port
    iface: Interface
    message: str


@dataclass
class DpPlan:
    """The datapath ports of one host: number -> vport name, and per interface."""

    ports: dict[int, str] = field(default_factory=dict)
    by_interface: dict[str, int] = field(default_factory=dict)
    conflicts: list[DpConflict] = field(default_factory=list)


def plan_dp_ports(host: Host) -> DpPlan:
    """Number every datapath port of ``host``; does not modify the host."""
    plan = DpPlan()
    local = DATAPATH_NAMES.get(host.datapath, "ovs-system")
    plan.ports[0] = local
    number_of: dict[str, int] = {local: 0}

    # vports in file order: (vport name, interfaces behind it)
    order: list[str] = []
    users: dict[str, list[tuple[Port, Interface]]] = {}
    for bridge in host.bridges.values():
        order.append(bridge.name)
        users.setdefault(bridge.name, [])
        for port in bridge.ports.values():
            for iface in port.interfaces:
                name = vport_name(iface)
                if name is None:
                    if iface.dp_port is not None:
                        plan.conflicts.append(
                            DpConflict(
                                port, iface, "a patch port has no datapath port; remove dp_port"
                            )
                        )
                    continue
                if name not in users:
                    order.append(name)
                    users[name] = []
                users[name].append((port, iface))

    taken: dict[int, str] = {0: local}
    for name in order:
        for port, iface in users[name]:
            if iface.dp_port is None:
                continue
            if name in number_of and number_of[name] != iface.dp_port:
                plan.conflicts.append(
                    DpConflict(
                        port,
                        iface,
                        f"{name} already has dp_port {number_of[name]}; "
                        f"tunnel interfaces of one kind share one datapath port",
                    )
                )
            elif iface.dp_port in taken and taken[iface.dp_port] != name:
                plan.conflicts.append(
                    DpConflict(
                        port,
                        iface,
                        f"dp_port {iface.dp_port} is already used by "
                        f"{taken[iface.dp_port]} on host {host.name}",
                    )
                )
            else:
                number_of[name] = iface.dp_port
                taken[iface.dp_port] = name

    next_free = 1
    for name in order:
        if name in number_of:
            continue
        while next_free in taken:
            next_free += 1
        if next_free > MAX_DP_PORT:
            raise TopologyError(
                [Diagnostic("<memory>", 0, 0, host.name, "more than 65535 datapath ports")]
            )
        number_of[name] = next_free
        taken[next_free] = name

    plan.ports = dict(sorted(taken.items()))
    for name, pairs in users.items():
        for _port, iface in pairs:
            plan.by_interface[iface.name] = number_of[name]
    return plan


def allocate_dp_ports(host: Host) -> dict[int, str]:
    """Datapath port number -> vport name for ``host``, and set ``Interface.dp_port``.

    Raises :class:`~ovsnet.errors.TopologyError` when explicit ``dp_port``
    requests conflict (the loader reports these as diagnostics instead).
    """
    plan = plan_dp_ports(host)
    if plan.conflicts:
        raise TopologyError(
            [
                Diagnostic(
                    c.iface.pos.file,
                    c.iface.pos.line,
                    c.iface.pos.column,
                    f"hosts.{host.name}.bridges.{c.port.bridge}.ports.{c.port.name}",
                    c.message,
                )
                for c in plan.conflicts
            ]
        )
    for port in host.ports():
        for iface in port.interfaces:
            if iface.name in plan.by_interface:
                iface.dp_port = plan.by_interface[iface.name]
    return plan.ports
