"""Cross-reference and OVS/kernel rules of a topology, beyond its JSON shape.

The schema (:mod:`.schema`) checks one value at a time; this module checks
what needs several: names unique per host (OVS keeps one namespace of port
and interface names per ``ovs-vswitchd``, and a bridge's local port is named
like the bridge), references (a port's VM and VM NIC, patch peers, link
endpoints, check endpoints), addresses used twice, and the rules the
datapath imposes: vhost-user needs the netdev (DPDK) datapath and vhost-net
the kernel one, Linux netdev names fit ``IFNAMSIZ`` (16 bytes with the NUL),
unix socket paths fit ``sun_path`` (108 bytes with the NUL), tunnels need a
``remote_ip`` and VXLAN/Geneve VNIs are 24 bits.

Every check reads the model the loader built and reports at the position of
the key or value the :class:`~ovsnet.topology.source.Document` recorded.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from ..errors import Diagnostic
from .model import DATAPATH_TYPES, TUNNEL_TYPES, UNIX_PATH_MAX, Host, Interface, Port, Topology

if TYPE_CHECKING:
    from .source import Document, Path

IFNAMSIZ = 16  # including the terminating NUL
#: interface types that are Linux netdevs on a kernel host, and so obey IFNAMSIZ
NETDEV_TYPES = ("", "system", "internal", "tap")
VHOST_USER_TYPES = ("dpdkvhostuser", "dpdkvhostuserclient")
DPDK_TYPES = ("dpdk", *VHOST_USER_TYPES)
#: VM NIC backend -> the port types that can serve it
BACKEND_PORT_TYPES = {"vhost-net": ("tap",), "vhost-user": VHOST_USER_TYPES}
BACKEND_DATAPATH = {"vhost-net": "kernel", "vhost-user": "netdev"}
NIC_TYPES = ("", "system", "dpdk", "dummy")
TUNNEL_KEYS = ("remote_ip", "local_ip", "key", "dst_port", "tos", "ttl")
VNI_MAX = 2**24 - 1


def _listing(names, limit: int = 8) -> str:
    names = list(names)
    if not names:
        return "none"
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _type_name(port_type: str) -> str:
    return repr(port_type) if port_type else "'' (system)"


class _Validator:
    def __init__(self, topo: Topology, doc: Document):
        self.topo = topo
        self.doc = doc
        self.diags: list[Diagnostic] = []

    def err(self, path: Path, message: str, at: str = "value") -> None:
        self.diags.append(self.doc.diag(path, message, at))

    def path(self, obj: object) -> Path:
        return self.doc.origin.get(id(obj), ())

    def given(self, path: Path) -> bool:
        """Whether the file sets ``path`` to a value the schema accepted."""
        return self.doc.get(path) is not None

    def unsure(self, *paths: Path) -> bool:
        """Whether the schema rejected one of ``paths`` (or a parent): nothing to cross-check."""
        return any(self.doc.tainted(p) for p in paths)

    def ports_unsure(self, host: Host) -> bool:
        hpath = self.path(host)
        return self.unsure((*hpath, "bridges")) or any(
            self.unsure((*self.path(b), "ports")) for b in host.bridges.values()
        )

    def vms_unsure(self) -> bool:
        return self.unsure(("hosts",)) or any(
            self.unsure((*self.path(h), "vms")) for h in self.topo.hosts.values()
        )

    def line(self, path: Path, at: str = "key") -> str:
        line, column = self.doc.where(path, at)
        return f"line {line}"

    def run(self) -> list[Diagnostic]:
        self.vm_names()
        self.addresses()
        for host in self.topo.hosts.values():
            self.host(host)
        self.links()
        self.checks()
        return self.diags

    # -- names -------------------------------------------------------------------

    def vm_names(self) -> None:
        seen: dict[str, tuple[str, Path]] = {}
        for host in self.topo.hosts.values():
            for vm in host.vms.values():
                if vm.name in seen:
                    other, where = seen[vm.name]
                    self.err(
                        self.path(vm),
                        f"VM {vm.name!r} is already defined on host {other} "
                        f"({self.line(where)}); VM names are unique in a topology",
                        at="key",
                    )
                else:
                    seen[vm.name] = (host.name, self.path(vm))

    def host_names(self, host: Host) -> None:
        """One namespace per host for bridges, ports and interfaces (as ovs-vsctl enforces)."""
        seen: dict[str, tuple[str, Path]] = {}

        def claim(name: str, what: str, path: Path) -> None:
            if name in seen:
                other, where = seen[name]
                self.err(
                    path,
                    f"name {name!r} is already used by {other} ({self.line(where)}); "
                    f"bridge, port and interface names are unique per host",
                    at="key",
                )
            else:
                seen[name] = (what, path)

        for bridge in host.bridges.values():
            claim(bridge.name, f"bridge {bridge.name}", self.path(bridge))
        for port in host.ports():
            ppath = self.path(port)
            claim(port.name, f"a port of bridge {port.bridge}", ppath)
            if port.is_bond or self.given((*ppath, "interfaces")):
                for iface in port.interfaces:
                    claim(
                        iface.name, f"a member of bond {port.name}", self.member_path(port, iface)
                    )

    def member_path(self, port: Port, iface: Interface) -> Path:
        ppath = self.path(port)
        members = self.doc.get((*ppath, "interfaces"), (list, dict))
        if isinstance(members, dict):
            return (*ppath, "interfaces", iface.name)
        if isinstance(members, list) and iface.name in members:
            return (*ppath, "interfaces", members.index(iface.name))
        return ppath

    def ifnamsiz(self, host: Host) -> None:
        if host.datapath != "kernel":
            return
        limit = IFNAMSIZ - 1

        def check(name: str, what: str, path: Path) -> None:
            if len(name.encode()) > limit:
                self.err(
                    path,
                    f"{what} name {name!r} is {len(name.encode())} bytes; a Linux interface "
                    f"name holds at most {limit} (IFNAMSIZ)",
                    at="key",
                )

        hpath = self.path(host)
        for nic in host.nics:
            check(nic, "NIC", (*hpath, "nics", nic))
        for bridge in host.bridges.values():
            check(bridge.name, "bridge", self.path(bridge))
        for port in host.ports():
            for iface in port.interfaces:
                if iface.type in NETDEV_TYPES and iface.name not in host.nics:
                    path = self.member_path(port, iface) if port.is_bond else self.path(port)
                    check(iface.name, f"{iface.type or 'system'} interface", path)

    # -- addresses ---------------------------------------------------------------

    def addresses(self) -> None:
        seen: dict[object, tuple[str, Path]] = {}

        def claim(address, owner: str, path: Path) -> None:
            if address in seen:
                other, where = seen[address]
                self.err(
                    path,
                    f"address {address} is already used by {other} ({self.line(where, 'value')})",
                )
            else:
                seen[address] = (owner, path)

        for host in self.topo.hosts.values():
            if host.underlay is not None:
                claim(
                    host.underlay.ip.ip,
                    f"the underlay of host {host.name}",
                    (*self.path(host), "underlay", "ip"),
                )
            for vm in host.vms.values():
                for nic in vm.nics.values():
                    for key in ("ip", "ipv6"):
                        value = getattr(nic, key)
                        if value is not None:
                            claim(value.ip, f"{vm.name}:{nic.name}", (*self.path(nic), key))

    # -- hosts, bridges, ports -------------------------------------------------------

    def host(self, host: Host) -> None:
        hpath = self.path(host)
        self.host_names(host)
        # a rejected datapath leaves the default one: rules that depend on it would mislead
        sure_dp = not self.unsure((*hpath, "datapath"))
        if sure_dp:
            self.ifnamsiz(host)
        nic = self.doc.get((*hpath, "underlay", "nic"), str)
        if nic is not None and not (self.unsure((*hpath, "nics")) or self.ports_unsure(host)):
            internal = {p.name for p in host.ports() if p.type == "internal"}
            if nic not in host.nics and nic not in host.bridges and nic not in internal:
                self.err(
                    (*hpath, "underlay", "nic"),
                    f"{nic!r} is not a NIC of host {host.name} "
                    f"(NICs: {_listing(host.nics)}), nor one of its bridges or internal ports",
                )
            else:
                owner = next(
                    (p for p in host.ports() if nic in (i.name for i in p.interfaces)), None
                )
                if nic in host.nics and owner is not None:
                    # OVS's rx_handler takes every packet of a port's netdev: an address on it is dead
                    self.err(
                        (*hpath, "underlay", "nic"),
                        f"NIC {nic!r} is a port of bridge {owner.bridge}, so the host stack never "
                        f"sees its packets; put the underlay address on {owner.bridge} instead",
                    )
        for vm in host.vms.values():
            for nic in vm.nics.values():
                npath = self.path(nic)
                needed = BACKEND_DATAPATH.get(nic.backend)
                if (
                    sure_dp
                    and needed
                    and needed != host.datapath
                    and self.given((*npath, "backend"))
                ):
                    self.err(
                        (*npath, "backend"),
                        f"backend {nic.backend!r} needs a {needed} host, but host "
                        f"{host.name} has datapath {host.datapath!r} (which serves VMs through "
                        f"{ {'kernel': 'vhost-net', 'netdev': 'vhost-user'}[host.datapath] })",
                    )
        attached: dict[tuple[str, str], Path] = {}
        for bridge in host.bridges.values():
            bpath = self.path(bridge)
            expected = DATAPATH_TYPES.get(host.datapath)
            if (
                sure_dp
                and self.given((*bpath, "datapath_type"))
                and bridge.datapath_type != expected
            ):
                self.err(
                    (*bpath, "datapath_type"),
                    f"datapath_type {bridge.datapath_type!r} does not match "
                    f"host {host.name}'s {host.datapath} datapath ({expected!r}); all bridges of a host "
                    "share one datapath",
                )
            ofports: dict[int, Path] = {}
            for port in bridge.ports.values():
                self.port(host, port, attached, sure_dp)
                for iface in port.interfaces:
                    if iface.ofport is None:
                        continue
                    ipath = self.member_path(port, iface) if port.is_bond else self.path(port)
                    if iface.ofport in ofports:
                        self.err(
                            (*ipath, "ofport"),
                            f"ofport {iface.ofport} is already used on bridge "
                            f"{bridge.name} ({self.line(ofports[iface.ofport])})",
                        )
                    else:
                        ofports[iface.ofport] = ipath

    def port(self, host: Host, port: Port, attached: dict, sure_dp: bool) -> None:
        path = self.path(port)
        if port.vm is not None:
            self.vm_port(host, port, path, attached, sure_dp)
        if port.is_bond or self.given((*path, "interfaces")):
            return
        if self.unsure((*path, "type")) or not (sure_dp or self.given((*path, "type"))):
            return  # the type is unknown: type-specific rules would only echo the schema
        iface = port.interfaces[0]
        kind = iface.type
        if kind in DPDK_TYPES and host.datapath != "netdev":
            if not sure_dp:
                return
            self.err(
                (*path, "type"),
                f"type {kind!r} needs a netdev (DPDK) host; host {host.name} has "
                f"datapath {host.datapath!r}",
            )
            return
        if port.name in host.nics and kind not in NIC_TYPES:
            self.err(
                path,
                f"{port.name!r} is a NIC of host {host.name}; its port type must be "
                f"{_type_name(NIC_TYPES[0] if host.datapath == 'kernel' else 'dpdk')}, not "
                f"{_type_name(kind)}",
                at="key",
            )
        misplaced = [(key, "tunnel", TUNNEL_TYPES) for key in TUNNEL_KEYS]
        misplaced += [
            ("peer", "patch", ("patch",)),
            ("vhost_server_path", "dpdkvhostuserclient", ("dpdkvhostuserclient",)),
            ("dpdk_devargs", "dpdk", ("dpdk",)),
            ("n_rxq", "dpdk and vhost-user", DPDK_TYPES),
        ]
        wrong: dict[str, list[str]] = {}
        for key, what, types in misplaced:
            if self.given((*path, key)) and kind not in types:
                wrong.setdefault(what, []).append(key)
        for what, keys in wrong.items():
            first = min(keys, key=lambda k: self.doc.where((*path, k), "key"))
            names = ", ".join(repr(k) for k in keys)
            self.err(
                (*path, first),
                f"{names} {'applies' if len(keys) == 1 else 'apply'} to {what} ports only; "
                f"this port's type is {_type_name(kind)}",
                at="key",
            )
        if kind in TUNNEL_TYPES:
            self.tunnel(port, iface, path)
        elif kind == "patch":
            self.patch(host, port, iface, path)
        if kind in VHOST_USER_TYPES:
            self.socket_length(host, port, iface, path)

    def vm_port(self, host: Host, port: Port, path: Path, attached: dict, sure_dp: bool) -> None:
        vm = host.vms.get(port.vm)
        if vm is None and self.unsure((*self.path(host), "vms")):
            return
        if vm is None:
            elsewhere = [h.name for h in self.topo.hosts.values() if port.vm in h.vms]
            if elsewhere:
                message = (
                    f"VM {port.vm!r} runs on host {elsewhere[0]}; a port can only attach a VM "
                    f"of its own host ({host.name})"
                )
            else:
                message = f"no VM {port.vm!r} on host {host.name} (VMs: {_listing(host.vms)})"
            self.err((*path, "vm"), message)
            return
        if self.unsure((*self.path(vm), "nics")):
            return
        if self.given((*path, "nic")):
            if port.vm_nic not in vm.nics:
                self.err(
                    (*path, "nic"),
                    f"VM {vm.name} has no NIC {port.vm_nic!r} (NICs: {_listing(vm.nics)})",
                )
                return
        elif port.vm_nic is None:
            if not self.unsure((*path, "nic")):
                self.err(
                    (*path, "vm"),
                    f"VM {vm.name} has {len(vm.nics)} NICs ({_listing(vm.nics)}); "
                    "say which one this port serves with 'nic'"
                    if vm.nics
                    else f"VM {vm.name} has no NICs; define them under its 'nics'",
                )
            return
        key = (vm.name, port.vm_nic)
        if key in attached:
            self.err(
                path,
                f"VM NIC {vm.name}:{port.vm_nic} is already attached to another port "
                f"({self.line(attached[key])}); a VM NIC has one backend port",
                at="key",
            )
            return
        attached[key] = path
        nic = vm.nics[port.vm_nic]
        if (
            not sure_dp
            or BACKEND_DATAPATH.get(nic.backend) != host.datapath
            or self.unsure((*path, "type"), (*self.path(nic), "backend"))
        ):
            return  # reported on the VM NIC, or the type itself was rejected
        kind = port.type
        if kind not in BACKEND_PORT_TYPES[nic.backend] and not (
            kind in DPDK_TYPES and host.datapath != "netdev"
        ):
            wanted = " or ".join(repr(t) for t in BACKEND_PORT_TYPES[nic.backend])
            self.err(
                (*path, "type"),
                f"VM NIC {vm.name}:{nic.name} uses {nic.backend}, which needs a "
                f"{wanted} port, not {_type_name(kind)}",
            )
        elif kind == "dpdkvhostuser" and self.given((*self.path(nic), "vhost_server_path")):
            self.err(
                (*self.path(nic), "vhost_server_path"),
                f"port {port.name} is a dpdkvhostuser port: OVS creates its socket at "
                f"{host.vhost_sock_dir.rstrip('/')}/{port.name}; vhost_server_path applies to "
                "dpdkvhostuserclient ports",
            )

    def tunnel(self, port: Port, iface: Interface, path: Path) -> None:
        options = iface.options
        if "remote_ip" not in options and not self.unsure((*path, "remote_ip"), (*path, "options")):
            self.err(
                path, f"a {iface.type} port needs remote_ip (an IP address or 'flow')", at="key"
            )
        for key in ("remote_ip", "local_ip"):
            value = options.get(key)
            if value is None or value == "flow":
                continue
            try:
                ipaddress.ip_address(value)
            except ValueError:
                where = (*path, key) if self.given((*path, key)) else (*path, "options", key)
                self.err(where, f"{value!r} is not a valid IP address (or 'flow')")
        key = options.get("key")
        if (
            iface.type in ("vxlan", "geneve")
            and key is not None
            and key.isdigit()
            and int(key) > VNI_MAX
        ):
            where = (*path, "key") if self.given((*path, "key")) else (*path, "options", "key")
            self.err(where, f"{iface.type} key {key} is out of range 0..{VNI_MAX} (a 24-bit VNI)")
        if iface.type in ("gre", "erspan") and self.given((*path, "dst_port")):
            self.err((*path, "dst_port"), f"{iface.type} has no UDP destination port", at="key")

    def patch(self, host: Host, port: Port, iface: Interface, path: Path) -> None:
        peer = iface.options.get("peer")
        if peer is None and self.unsure((*path, "peer"), (*path, "options")):
            return
        if peer is None:
            self.err(
                path,
                "a patch port needs 'peer': the name of the patch port it connects to",
                at="key",
            )
            return
        where = (*path, "peer") if self.given((*path, "peer")) else (*path, "options", "peer")
        if peer == port.name:
            self.err(where, "a patch port cannot be its own peer")
            return
        other = next((p for p in host.ports() if p.name == peer), None)
        if other is None and self.ports_unsure(host):
            return
        if other is not None and self.unsure(
            (*self.path(other), "type"), (*self.path(other), "peer"), (*self.path(other), "options")
        ):
            return
        if other is None:
            self.err(
                where,
                f"no port {peer!r} on host {host.name}; a patch peer is a patch port of the same host",
            )
        elif other.type != "patch":
            self.err(where, f"peer {peer!r} is a {_type_name(other.type)} port, not a patch port")
        elif other.interfaces[0].options.get("peer") != port.name:
            back = other.interfaces[0].options.get("peer")
            self.err(
                where,
                f"peer {peer!r} points back at {back!r}, not at {port.name!r}"
                if back
                else f"peer {peer!r} has no peer; set its peer to {port.name!r}",
            )

    def socket_length(self, host: Host, port: Port, iface: Interface, path: Path) -> None:
        sock = (
            iface.options.get("vhost-server-path")
            or f"{host.vhost_sock_dir.rstrip('/')}/{port.name}"
        )
        size = len(sock.encode())
        if size <= UNIX_PATH_MAX:
            return
        candidates = [(*path, "vhost_server_path"), (*path, "options", "vhost-server-path")]
        if port.vm is not None and port.vm_nic is not None and port.vm in host.vms:
            nic = host.vms[port.vm].nics.get(port.vm_nic)
            if nic is not None:
                candidates.append((*self.path(nic), "vhost_server_path"))
        where = next((c for c in candidates if self.given(c)), path)
        self.err(
            where,
            f"vhost-user socket path {sock!r} is {size} bytes; a unix socket path holds at most "
            f"{UNIX_PATH_MAX} (UNIX_PATH_MAX)",
            at="value" if where is not path else "key",
        )

    # -- links and checks ----------------------------------------------------------

    def links(self) -> None:
        used: dict[tuple[str, str], Path] = {}
        for link in self.topo.links:
            for j, (host, nic) in enumerate(link.endpoints):
                path = self.doc.origin.get((id(link), j), self.path(link))
                if host not in self.topo.hosts:
                    if not self.unsure(("hosts",)):
                        self.err(path, f"no host {host!r} (hosts: {_listing(self.topo.hosts)})")
                elif self.unsure((*self.path(self.topo.hosts[host]), "nics", nic)):
                    continue
                elif nic not in self.topo.hosts[host].nics:
                    self.err(
                        path,
                        f"host {host} has no NIC {nic!r} (NICs: {_listing(self.topo.hosts[host].nics)})",
                    )
                elif (host, nic) in used:
                    self.err(
                        path,
                        f"{host}:{nic} is already in a link ({self.line(used[(host, nic)], 'value')}); "
                        "a NIC joins one L2 segment",
                    )
                else:
                    used[(host, nic)] = path

    def vm_ref(self, text: str, path: Path) -> None:
        name, _, nic = text.partition(":")
        try:
            vm = self.topo.vm(name)
        except KeyError:
            if not self.vms_unsure():
                vms = sorted({v for h in self.topo.hosts.values() for v in h.vms})
                self.err(path, f"no VM {name!r} (VMs: {_listing(vms)})")
            return
        if self.unsure((*self.path(vm), "nics", nic) if nic else (*self.path(vm), "nics")):
            return
        if nic and nic not in vm.nics:
            self.err(path, f"VM {vm.name} has no NIC {nic!r} (NICs: {_listing(vm.nics)})")
        elif not vm.nics:
            self.err(path, f"VM {vm.name} has no NICs")

    def checks(self) -> None:
        for check in self.topo.checks:
            path = self.path(check)
            self.vm_ref(check.src, (*path, "from"))
            try:
                ipaddress.ip_address(check.dst)
            except ValueError:
                self.vm_ref(check.dst, (*path, "to"))


def validate_topology(topo: Topology, doc: Document) -> list[Diagnostic]:
    """Every cross-reference problem of ``topo``, positioned in ``doc``."""
    return _Validator(topo, doc).run()
