"""Load a topology YAML file into the :mod:`~ovsnet.topology.model` dataclasses.

The pipeline, each stage reporting every problem it finds:

1. :mod:`.source` parses the YAML into plain data with positions (syntax
   errors, duplicate keys);
2. :mod:`.schema` checks the shape against the published JSON Schema;
3. this module builds the model and derives what ``ovs-vsctl``, libvirt and
   Neutron would fill in (interface types, ``external_ids`` marks of VM
   ports, vhost-user socket paths, ``dpdk-devargs``, tunnel options), leaving
   out values the schema rejected;
4. :mod:`.validate` checks cross references and OVS/kernel rules;
5. :mod:`.dpports` numbers the datapath ports of each host.

Only a file with no diagnostic at all becomes a :class:`Topology`;
otherwise :class:`~ovsnet.errors.TopologyError` carries all of them.
"""

from __future__ import annotations

import ipaddress
import os
import uuid
from pathlib import Path as FsPath
from typing import Any

from ..errors import Diagnostic, TopologyError
from .dpports import plan_dp_ports
from .model import (
    DATAPATH_TYPES,
    Bridge,
    Check,
    Host,
    HostNic,
    Interface,
    Link,
    Port,
    Position,
    Topology,
    Underlay,
    Vm,
    VmNic,
)
from .schema import schema_diagnostics
from .source import Document, parse_document
from .validate import validate_topology

#: namespace of the derived iface-id / vm-id UUIDs (uuid5 of topology/host/vm[/nic])
OVSNET_UUID_NAMESPACE = uuid.UUID("bf7bfa51-dfcb-4a11-b377-c357e51c4770")

#: port keys that are shorthands for Interface.options, and the option they set
OPTION_SHORTHANDS = {
    "remote_ip": "remote_ip",
    "local_ip": "local_ip",
    "key": "key",
    "dst_port": "dst_port",
    "tos": "tos",
    "ttl": "ttl",
    "peer": "peer",
    "vhost_server_path": "vhost-server-path",
    "n_rxq": "n_rxq",
    "dpdk_devargs": "dpdk-devargs",
}
#: port keys that configure an Interface, not a Port: meaningless on a bond
INTERFACE_KEYS = ("type", "vm", "nic", "ofport", "dp_port", "mtu", "options", *OPTION_SHORTHANDS)

DEFAULT_VHOST_SOCK_DIR = "/var/run/openvswitch"
VM_PORT_TYPES = {"kernel": "tap", "netdev": "dpdkvhostuserclient"}
NIC_PORT_TYPES = {"kernel": "", "netdev": "dpdk"}
VM_BACKENDS_BY_DATAPATH = {"kernel": "vhost-net", "netdev": "vhost-user"}


def ovs_string(value: Any) -> str:
    """A YAML scalar as ovs-vsctl would store it in a string map."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def socket_path(directory: str, name: str) -> str:
    return f"{directory.rstrip('/')}/{name}"


def derived_vm_id(topology: str, host: str, vm: str) -> str:
    return str(uuid.uuid5(OVSNET_UUID_NAMESPACE, f"{topology}/{host}/{vm}"))


def derived_iface_id(topology: str, host: str, vm: str, nic: str) -> str:
    return str(uuid.uuid5(OVSNET_UUID_NAMESPACE, f"{topology}/{host}/{vm}/{nic}"))


class _Builder:
    """Builds the model from a schema-checked document; collects its own diagnostics."""

    def __init__(self, doc: Document, base_dir: FsPath):
        self.doc = doc
        self.base_dir = base_dir
        self.diags: list[Diagnostic] = []

    def err(self, path: tuple, message: str, at: str = "value") -> None:
        self.diags.append(self.doc.diag(path, message, at))

    def smap(self, path: tuple) -> dict[str, str]:
        return {
            str(k): ovs_string(v)
            for k, v in self.doc.mapping(path).items()
            if isinstance(v, (str, int, float)) and not self.doc.is_bad((*path, k))
        }

    # -- addresses ---------------------------------------------------------------

    def interface_address(self, path: tuple, version: int | None = None):
        text = self.doc.get(path, str)
        if text is None:
            return None
        what = {4: "an IPv4", 6: "an IPv6", None: "an IP"}[version]
        example = "fd00::1/64" if version == 6 else "10.0.0.1/24"
        if "/" not in text:
            self.err(
                path,
                f"{text!r} has no prefix length; expected {what} address with prefix, e.g. {example}",
            )
            return None
        try:
            value = ipaddress.ip_interface(text)
        except ValueError:
            self.err(path, f"{text!r} is not {what} address with prefix, e.g. {example}")
            return None
        if version is not None and value.version != version:
            other = "ipv6" if version == 4 else "ip"
            self.err(
                path,
                f"{text!r} is an IPv{value.version} address; this key takes IPv{version}, use {other!r} for it",
            )
            return None
        net = value.network
        if value.version == 4 and net.prefixlen <= 30:
            if value.ip == net.network_address:
                self.err(path, f"{text} is the network address of {net}; use a host address")
                return None
            if value.ip == net.broadcast_address:
                self.err(path, f"{text} is the broadcast address of {net}; use a host address")
                return None
        return value

    def address(self, path: tuple, within=None, version: int | None = None):
        text = self.doc.get(path, str)
        if text is None:
            return None
        try:
            value = ipaddress.ip_address(text)
        except ValueError:
            hint = " (without a prefix length)" if "/" in text else ""
            self.err(path, f"{text!r} is not a valid IP address{hint}")
            return None
        if version is not None and value.version != version:
            self.err(path, f"{text!r} is an IPv{value.version} address; expected IPv{version}")
            return None
        if within is not None and value.version == within.version and value not in within.network:
            self.err(path, f"gateway {value} is outside {within.network}")
        return value

    # -- the tree ----------------------------------------------------------------

    def topology(self) -> Topology:
        d = self.doc
        topo = Topology(
            name=d.get(("name",), str, ""),
            description=d.get(("description",), str, ""),
            source=d.file,
        )
        for name in d.mapping(("hosts",)):
            topo.hosts[name] = self.host(topo.name, name, ("hosts", name))
        for i, _item in enumerate(d.get(("links",), list, [])):
            link = self.link(i)
            if link is not None:
                topo.links.append(link)
        for i, item in enumerate(d.get(("checks",), list, [])):
            if isinstance(item, dict) and len(item) == 1 and not d.is_bad(("checks", i)):
                check = self.check(i, next(iter(item)))
                if check is not None:
                    topo.checks.append(check)
        return topo

    def host(self, topo: str, name: str, path: tuple) -> Host:
        d = self.doc
        host = Host(
            name=name,
            datapath=d.get((*path, "datapath"), str, "kernel"),
            vhost_sock_dir=d.get((*path, "vhost_sock_dir"), str, DEFAULT_VHOST_SOCK_DIR),
            pos=d.position(path),
        )
        d.origin[id(host)] = path
        for nic in d.mapping((*path, "nics")):
            npath = (*path, "nics", nic)
            mac = d.get((*npath, "mac"), str)
            host.nics[nic] = HostNic(
                nic,
                mac=mac.lower() if mac else None,
                mtu=d.get((*npath, "mtu"), int, 1500),
                pci=d.get((*npath, "pci"), str),
                speed_gbps=d.get((*npath, "speed_gbps"), (int, float)),
                pos=d.position(npath),
            )
        upath = (*path, "underlay")
        if d.get(upath, dict) is not None and d.get((*upath, "nic"), str) is not None:
            ip = self.interface_address((*upath, "ip"))
            gateway = self.address((*upath, "gateway"), within=ip)
            if ip is not None:
                host.underlay = Underlay(
                    d.get((*upath, "nic"), str), ip, gateway, pos=d.position(upath)
                )
        for vm in d.mapping((*path, "vms")):
            host.vms[vm] = self.vm(topo, host, vm, (*path, "vms", vm))
        for bridge in d.mapping((*path, "bridges")):
            host.bridges[bridge] = self.bridge(host, bridge, (*path, "bridges", bridge))
        return host

    def vm(self, topo: str, host: Host, name: str, path: tuple) -> Vm:
        d = self.doc
        vm_id = d.get((*path, "vm_id"), str)
        vm = Vm(
            name=name,
            host=host.name,
            vcpus=d.get((*path, "vcpus"), int, 1),
            memory_mb=d.get((*path, "memory_mb"), int, 1024),
            vm_id=vm_id.lower() if vm_id else derived_vm_id(topo, host.name, name),
            pos=d.position(path),
        )
        d.origin[id(vm)] = path
        for nic in d.mapping((*path, "nics")):
            npath = (*path, "nics", nic)
            ip = self.interface_address((*npath, "ip"), version=4)
            vnic = VmNic(
                name=nic,
                vm=name,
                mac=(d.get((*npath, "mac"), str) or "").lower(),
                ip=ip,
                ipv6=self.interface_address((*npath, "ipv6"), version=6),
                gateway=self.address((*npath, "gateway"), within=ip, version=4),
                backend=d.get(
                    (*npath, "backend"),
                    str,
                    VM_BACKENDS_BY_DATAPATH.get(host.datapath, "vhost-net"),
                ),
                queues=d.get((*npath, "queues"), int, 1),
                mtu=d.get((*npath, "mtu"), int, 1500),
                iface_id=d.get((*npath, "iface_id"), str)
                or derived_iface_id(topo, host.name, name, nic),
                vhost_server_path=d.get((*npath, "vhost_server_path"), str),
                pos=d.position(npath),
            )
            d.origin[id(vnic)] = npath
            vm.nics[nic] = vnic
        return vm

    def bridge(self, host: Host, name: str, path: tuple) -> Bridge:
        d = self.doc
        bridge = Bridge(
            name=name,
            host=host.name,
            fail_mode=d.get((*path, "fail_mode"), str, "standalone"),
            datapath_type=d.get(
                (*path, "datapath_type"), str, DATAPATH_TYPES.get(host.datapath, "system")
            ),
            protocols=[p for p in d.get((*path, "protocols"), list, []) if isinstance(p, str)],
            other_config=self.smap((*path, "other_config")),
            external_ids=self.smap((*path, "external_ids")),
            pos=d.position(path),
        )
        d.origin[id(bridge)] = path
        flows = d.get((*path, "flows"), list)
        if flows is not None:
            for i, flow in enumerate(flows):
                if isinstance(flow, str) and flow.strip():
                    self.check_flow(flow, (*path, "flows", i))
                    bridge.flows.append(flow.strip())
                    bridge.flows_pos.append(d.position((*path, "flows", i), at="value"))
        flows_file = d.get((*path, "flows_file"), str)
        if flows_file is not None:
            if flows is not None:
                self.err(
                    (*path, "flows_file"), "give either 'flows' or 'flows_file', not both", at="key"
                )
            else:
                self.read_flows(bridge, flows_file, (*path, "flows_file"))
        for port in d.mapping((*path, "ports")):
            bridge.ports[port] = self.port(host, bridge, port, (*path, "ports", port))
        return bridge

    def check_flow(self, flow: str, path: tuple, file_pos: Position | None = None) -> None:
        """Catch the YAML pitfall of an unquoted flow in ``[...]``, split at each comma."""
        if "actions=" in flow.replace(" ", "").lower():
            return
        message = (
            f"flow {flow.strip()!r} has no 'actions='; every flow needs actions (in a YAML "
            "[...] list, commas split a flow into items: quote it or use one '- ' line per flow)"
        )
        if file_pos is None:
            self.err(path, message)
        else:
            self.diags.append(
                Diagnostic(file_pos.file, file_pos.line, file_pos.column, "", message)
            )

    def read_flows(self, bridge: Bridge, name: str, path: tuple) -> None:
        file = FsPath(name).expanduser()
        if not file.is_absolute():
            file = self.base_dir / file
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            self.err(path, f"flows_file {name!r} not found (looked for {file})")
            return
        except (OSError, UnicodeDecodeError) as exc:
            self.err(path, f"cannot read flows_file {name!r}: {exc}")
            return
        for lineno, line in enumerate(lines, 1):
            text = line.strip()
            if text and not text.startswith("#"):
                bridge.flows.append(text)
                pos = Position(str(file), lineno, len(line) - len(line.lstrip()) + 1)
                self.check_flow(text, path, pos)
                bridge.flows_pos.append(pos)

    # -- ports -------------------------------------------------------------------

    def options(self, path: tuple) -> dict[str, str]:
        options = self.smap((*path, "options"))
        for key, option in OPTION_SHORTHANDS.items():
            value = self.doc.get((*path, key), (str, int))
            if value is None:
                continue
            text = ovs_string(value)
            if option in options and options[option] != text:
                self.err(
                    (*path, key),
                    f"{key}: {text!r} contradicts options:{option}={options[option]!r}",
                )
            options[option] = text
        return options

    def nic_type(self, host: Host, name: str) -> str:
        return NIC_PORT_TYPES.get(host.datapath, "") if name in host.nics else ""

    def dpdk_devargs(self, host: Host, iface: Interface, path: tuple) -> None:
        if iface.type != "dpdk" or "dpdk-devargs" in iface.options:
            return
        nic = host.nics.get(iface.name)
        if nic is not None and nic.pci:
            iface.options["dpdk-devargs"] = nic.pci
            return
        nic_pci = (*self.doc.origin.get(id(host), ()), "nics", iface.name, "pci")
        if any(self.doc.tainted(p) for p in (nic_pci, (*path, "dpdk_devargs"), (*path, "options"))):
            return  # the schema rejected where the address would come from
        where = (
            f"pci on hosts.{host.name}.nics.{iface.name}"
            if nic
            else "a host NIC of that name with pci"
        )
        self.err(
            path,
            f"dpdk interface {iface.name!r} needs a PCI address: give {where}, or dpdk_devargs on the port",
            at="key",
        )

    def port(self, host: Host, bridge: Bridge, name: str, path: tuple) -> Port:
        d = self.doc
        spec = d.mapping(path)
        port = Port(
            name=name,
            bridge=bridge.name,
            interfaces=[],
            tag=d.get((*path, "tag"), int),
            trunks=[t for t in d.get((*path, "trunks"), list, []) if isinstance(t, int)],
            vlan_mode=d.get((*path, "vlan_mode"), str),
            bond_mode=d.get((*path, "bond_mode"), str),
            lacp=d.get((*path, "lacp"), str),
            pos=d.position(path),
        )
        d.origin[id(port)] = path
        members = d.get((*path, "interfaces"), (list, dict))
        if members is not None:
            port.other_config = self.smap((*path, "other_config"))
            port.external_ids = self.smap((*path, "external_ids"))
            for key in INTERFACE_KEYS:
                if key in spec:
                    self.err(
                        (*path, key),
                        f"{key!r} is an interface setting; for a bond give it per member "
                        "under 'interfaces'",
                        at="key",
                    )
            for member in members:
                if isinstance(member, str):
                    port.interfaces.append(
                        self.member(host, member, members, (*path, "interfaces"))
                    )
            return port

        explicit = d.get((*path, "type"), str)
        vm = d.get((*path, "vm"), str)
        iface = Interface(
            name=name,
            options=self.options(path),
            ofport=d.get((*path, "ofport"), int),
            mtu=d.get((*path, "mtu"), int),
            dp_port=d.get((*path, "dp_port"), int),
            other_config=self.smap((*path, "other_config")),
            external_ids=self.smap((*path, "external_ids")),
            pos=port.pos,
        )
        if explicit is not None:
            iface.type = explicit
        elif vm is not None:
            iface.type = VM_PORT_TYPES.get(host.datapath, "tap")
        elif name in host.nics:
            iface.type = self.nic_type(host, name)
        elif "peer" in iface.options:
            iface.type = "patch"
        port.interfaces.append(iface)
        if name in host.nics and iface.type in ("", "system", "dpdk", "dummy"):
            port.host_nic = name
        self.dpdk_devargs(host, iface, path)
        if vm is not None:
            self.attach_vm(host, port, iface, vm, d.get((*path, "nic"), str))
        return port

    def member(self, host: Host, name: str, members: list | dict, path: tuple) -> Interface:
        d = self.doc
        mpath = (*path, name) if isinstance(members, dict) else (*path, members.index(name))
        iface = Interface(name=name, pos=d.position(mpath))
        if isinstance(members, dict):
            iface.type = d.get((*mpath, "type"), str, self.nic_type(host, name))
            iface.ofport = d.get((*mpath, "ofport"), int)
            iface.dp_port = d.get((*mpath, "dp_port"), int)
            iface.mtu = d.get((*mpath, "mtu"), int)
            iface.options = self.smap((*mpath, "options"))
            iface.other_config = self.smap((*mpath, "other_config"))
            iface.external_ids = self.smap((*mpath, "external_ids"))
            devargs = d.get((*mpath, "dpdk_devargs"), str) or d.get((*mpath, "pci"), str)
            if devargs:
                iface.options.setdefault("dpdk-devargs", devargs)
        else:
            iface.type = self.nic_type(host, name)
        self.dpdk_devargs(host, iface, mpath)
        return iface

    def attach_vm(
        self, host: Host, port: Port, iface: Interface, vm_name: str, nic: str | None
    ) -> None:
        """Mark a VM port as libvirt and Neutron do; set the vhost-user socket path."""
        port.vm = vm_name
        vm = host.vms.get(vm_name)
        if vm is None:
            port.vm_nic = nic
            return
        port.vm_nic = (
            nic if nic is not None else (next(iter(vm.nics)) if len(vm.nics) == 1 else None)
        )
        vnic = vm.nics.get(port.vm_nic) if port.vm_nic else None
        if vnic is None:
            return
        marks = {
            "attached-mac": vnic.mac,
            "iface-id": vnic.iface_id or "",
            "vm-id": vm.vm_id or "",
            "iface-status": "active",
        }
        iface.external_ids = {**marks, **iface.external_ids}
        if iface.type == "dpdkvhostuserclient":
            path = (
                iface.options.get("vhost-server-path")
                or vnic.vhost_server_path
                or socket_path(host.vhost_sock_dir, port.name)
            )
            iface.options["vhost-server-path"] = path
            vnic.vhost_server_path = path
        elif iface.type == "dpdkvhostuser" and vnic.vhost_server_path is None:
            vnic.vhost_server_path = socket_path(host.vhost_sock_dir, port.name)

    # -- links and checks ----------------------------------------------------------

    def link(self, i: int) -> Link | None:
        d = self.doc
        path = ("links", i)
        item = d.get(path, (list, dict))
        if isinstance(item, dict):
            name, epath = d.get((*path, "name"), str), (*path, "endpoints")
        else:
            name, epath = None, path
        endpoints = d.get(epath, list)
        if endpoints is None:
            return None
        link = Link(endpoints=[], name=name, pos=d.position(path))
        for j, text in enumerate(endpoints):
            if isinstance(text, str) and ":" in text and not d.is_bad((*epath, j)):
                host, nic = text.split(":", 1)
                d.origin[(id(link), len(link.endpoints))] = (*epath, j)
                link.endpoints.append((host, nic))
        d.origin[id(link)] = path
        return link

    def check(self, i: int, kind: str) -> Check | None:
        d = self.doc
        path = ("checks", i, kind)
        spec = d.get(path, dict)
        src, dst = d.get((*path, "from"), str), d.get((*path, "to"), str)
        if spec is None or src is None or dst is None:
            return None
        params = {
            k: v
            for k, v in spec.items()
            if k not in ("from", "to", "expect") and not d.is_bad((*path, k))
        }
        check = Check(
            kind=kind,
            src=src,
            dst=dst,
            expect=d.get((*path, "expect"), str, "reachable"),
            params=params,
            pos=d.position(("checks", i), at="value"),
        )
        d.origin[id(check)] = path
        return check


def _dp_port_diagnostics(topo: Topology, doc: Document) -> list[Diagnostic]:
    diags = []
    for host in topo.hosts.values():
        plan = plan_dp_ports(host)
        for conflict in plan.conflicts:
            path = doc.origin.get(id(conflict.port), ())
            if doc.get((*path, "interfaces"), dict) is not None:
                path = (*path, "interfaces", conflict.iface.name)
            diags.append(doc.diag((*path, "dp_port"), conflict.message))
        for port in host.ports():
            for iface in port.interfaces:
                iface.dp_port = plan.by_interface.get(iface.name)
    return diags


def analyse_text(
    text: str, filename: str = "<string>", base_dir: str | os.PathLike | None = None
) -> tuple[Topology | None, list[Diagnostic]]:
    """Parse, check and build; the topology (None if unusable) and every diagnostic."""
    doc, diags = parse_document(text, filename)
    if doc.data is None:
        return None, diags
    diags += schema_diagnostics(doc)
    if not isinstance(doc.data, dict):
        return None, diags
    builder = _Builder(doc, FsPath(base_dir) if base_dir is not None else FsPath.cwd())
    topo = builder.topology()
    diags += builder.diags
    diags += validate_topology(topo, doc)
    diags += _dp_port_diagnostics(topo, doc)
    return topo, sorted(set(diags))


def _read(path: str | os.PathLike) -> tuple[str | None, Diagnostic | None]:
    try:
        return FsPath(path).read_text(encoding="utf-8"), None
    except FileNotFoundError:
        return None, Diagnostic(str(path), 1, 1, "", "no such file")
    except UnicodeDecodeError as exc:
        return None, Diagnostic(
            str(path), 1, 1, "", f"not UTF-8 text: {exc.reason} at byte {exc.start}"
        )
    except OSError as exc:
        return None, Diagnostic(str(path), 1, 1, "", f"cannot read file: {exc.strerror or exc}")


def load_topology_text(
    text: str, filename: str = "<string>", base_dir: str | os.PathLike | None = None
) -> Topology:
    """Load a topology from YAML ``text``; ``base_dir`` resolves ``flows_file`` (default: cwd)."""
    topo, diags = analyse_text(text, filename, base_dir)
    if diags or topo is None:
        raise TopologyError(diags)
    return topo


def load_topology(path: str | os.PathLike) -> Topology:
    """Load and validate a topology file; :class:`TopologyError` lists every problem."""
    text, problem = _read(path)
    if problem is not None:
        raise TopologyError([problem])
    return load_topology_text(text, str(path), FsPath(path).parent)


def validate_file(path: str | os.PathLike) -> list[Diagnostic]:
    """Every diagnostic of a topology file; an empty list means it is valid."""
    text, problem = _read(path)
    if problem is not None:
        return [problem]
    return analyse_text(text, str(path), FsPath(path).parent)[1]
