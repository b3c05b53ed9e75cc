"""A host's datapath built from its topology, and the ``dpctl`` views of it.

``ovs-vswitchd`` creates one datapath per host and datapath type and adds a
vport for every bridge's local port and every non-patch interface
(``dpif_port_add``); tunnel interfaces of one kind share a vport.
:func:`host_datapath` does the same from a :class:`~ovsnet.topology.model.Host`,
with the port numbers :mod:`ovsnet.topology.dpports` assigns. Its tunnel
vports accept outer frames for the host's underlay address and route outer
packets with the ``resolver`` given (the host's route table and neighbour
cache); without one every encapsulated send is dropped as ``no_route``.
:func:`dpctl_show` and :func:`dump_flows` print what ``ovs-appctl dpctl/show``
and ``ovs-appctl dpctl/dump-flows`` print.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from ovsnet.datapath import odp
from ovsnet.datapath.datapath import Datapath, UpcallHandler
from ovsnet.datapath.tunnel import Resolver
from ovsnet.datapath.vport import VPORT_TYPES, TunnelVport, make_vport
from ovsnet.errors import DatapathError
from ovsnet.topology.dpports import plan_dp_ports, vport_name
from ovsnet.topology.model import TUNNEL_TYPES, Host

#: OVS Interface type -> vport type of the datapath port behind it
_VPORT_OF_IFACE = {
    "": "netdev",
    "system": "netdev",
    "dummy": "netdev",
    "dpdk": "netdev",
    "internal": "internal",
    "dummy-internal": "internal",
    "tap": "tap",
    "dpdkvhostuser": "vhost-user",
    "dpdkvhostuserclient": "vhost-user",
    "vxlan": "vxlan",
    "geneve": "geneve",
    "gre": "gre",
}

#: vport type -> the dpif port type ``dpctl/show`` prints ("system" is not printed)
_DPIF_TYPE = {
    "netdev": "system",
    "internal": "internal",
    "tap": "tap",
    "vhost-user": "dpdkvhostuserclient",
    "vxlan": "vxlan",
    "geneve": "geneve",
    "gre": "gre",
}


def host_datapath(
    host: Host,
    *,
    handler: UpcallHandler | None = None,
    implementation: str | None = None,
    clock: Callable[[], int] | None = None,
    resolver: Resolver | None = None,
) -> Datapath:
    """The datapath of ``host`` with a vport per datapath port.

    Tunnel vports take their UDP port from the interfaces' ``dst_port``
    option, accept outer frames addressed to ``host.underlay``'s IP (any
    address when the host has no underlay) and look up outer destinations
    with ``resolver``.
    """
    plan = plan_dp_ports(host)
    if plan.conflicts:
        c = plan.conflicts[0]
        raise DatapathError(f"host {host.name}: port {c.port.name}: {c.message}")
    ifaces: dict[str, tuple[str, dict[str, str]]] = {}
    for bridge in host.bridges.values():
        ifaces[bridge.name] = ("internal", {})
        for port in bridge.ports.values():
            for iface in port.interfaces:
                name = vport_name(iface)
                if name is not None:
                    ifaces[name] = (iface.type, iface.options)
    ports = {no: (name, *ifaces.get(name, ("", {}))) for no, name in plan.ports.items()}
    return datapath_from_ports(
        host.name, host.datapath, ports, handler=handler, implementation=implementation,
        clock=clock, resolver=resolver,
        underlay_ip=None if host.underlay is None else str(host.underlay.ip.ip))


def datapath_from_ports(
    host_name: str,
    datapath: str,
    ports: dict[int, tuple[str, str, dict[str, str]]],
    *,
    handler: UpcallHandler | None = None,
    implementation: str | None = None,
    clock: Callable[[], int] | None = None,
    resolver: Resolver | None = None,
    underlay_ip: str | None = None,
) -> Datapath:
    """A ``datapath`` (``kernel`` or ``netdev``) datapath with these ports.

    ``ports`` maps each datapath port number to (vport name, OVS Interface
    type, Interface options); port 0, the datapath's own, is skipped. This is
    what :func:`host_datapath` builds from a topology, and what the simulated
    vswitchd (:mod:`ovsnet.vswitchd`) builds from a host's OVSDB.
    """
    dp_type = "netdev" if datapath == "netdev" else "system"
    dp = Datapath(dp_type, handler=handler, implementation=implementation, clock=clock)
    for port_no, (name, iface_type, iface_options) in sorted(ports.items()):
        if port_no == 0:
            continue
        if iface_type not in _VPORT_OF_IFACE and iface_type not in TUNNEL_TYPES:
            raise DatapathError(
                f"host {host_name}: interface {name}: type {iface_type!r} has no "
                f"datapath model (modelled: {', '.join(sorted(_VPORT_OF_IFACE))})"
            )
        kind = _VPORT_OF_IFACE.get(iface_type, iface_type)
        options: dict[str, Any] = {}
        if issubclass(VPORT_TYPES.get(kind, object), TunnelVport):
            options = _tunnel_options(host_name, iface_options, resolver, underlay_ip)
        dp.add_port(name, kind, port_no=port_no, vport=make_vport(kind, port_no, name, **options))
    return dp


def _tunnel_options(host_name: str, iface_options: dict[str, str],
                    resolver: Resolver | None, underlay_ip: str | None) -> dict[str, Any]:
    """The options of a shared tunnel vport (``vxlan_sys_4789``, ...) on ``host``."""
    out: dict[str, Any] = {"resolver": resolver}
    if "dst_port" in iface_options:
        text = iface_options["dst_port"]
        if not text.isdigit():
            raise DatapathError(f"host {host_name}: tunnel option dst_port={text!r} is not a "
                                "UDP port number (1..65535)")
        out["dst_port"] = int(text)
    if underlay_ip is not None:
        out["local_addrs"] = [underlay_ip]
    return out


def dpctl_show(dp: Datapath) -> str:
    """``ovs-appctl dpctl/show`` of ``dp`` (without per-port configuration)."""
    s = dp.stats()
    lookups = s.hit + s.missed
    lines = [
        f"{dp.type}@{dp.name}:",
        f"  lookups: hit:{s.hit} missed:{s.missed} lost:{s.lost}",
        f"  flows: {s.flows}",
        f"  masks: hit:{s.mask_hit} total:{s.masks} "
        f"hit/pkt:{s.mask_hit / lookups if lookups else 0.0:.2f}",
    ]
    for port_no, port in dp.ports.items():
        kind = "internal" if port_no == 0 else _DPIF_TYPE.get(port.type, port.type)
        if dp.type == "netdev" and kind == "system":
            kind = "dpdk"
        lines.append(f"  port {port_no}: {port.name}" + ("" if kind == "system" else f" ({kind})"))
    return "\n".join(lines) + "\n"


def dump_flows(dp: Datapath, *, verbose: bool = False, names: bool = False,
               now_ms: int | None = None) -> str:
    """``ovs-appctl dpctl/dump-flows [-m] [--names]`` of ``dp``."""
    now = dp.clock() if now_ms is None else now_ms
    ports = dp.port_names() if names else None
    layout = "netdev" if dp.type == "netdev" else "kernel"
    out = []
    for f in dp.flows():
        out.append(
            odp.format_dump_line(
                f.key, f.mask, f.actions, f.packets, f.bytes, f.used_ms, now, f.tcp_flags,
                ufid=_ufid_text(f.ufid), show_ufid=verbose, ports=ports, verbose=verbose,
                datapath=layout,
            )
        )
    return "".join(line + "\n" for line in out)


def _ufid_text(ufid: bytes) -> str:
    """A UFID as OVS prints it (``odp_format_ufid``): its four 32-bit words, as
    stored in memory on a little-endian host, in UUID form."""
    w0, w1, w2, w3 = struct.unpack("<4I", ufid)
    return f"{w0:08x}-{w1 >> 16:04x}-{w1 & 0xFFFF:04x}-{w2 >> 16:04x}-{w2 & 0xFFFF:04x}{w3:08x}"
