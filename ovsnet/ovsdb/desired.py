"""What a host of a topology should look like in OVSDB, and how to get there.

:func:`desired_host` turns one host of a :class:`~ovsnet.topology.model.Topology`
into the Bridge, Port and Interface rows ``ovs-vsctl`` would have written
for it (the bridge's local port included). :func:`plan` compares that with
the live database and returns the smallest list of changes: create, set,
clear or delete. Each change runs inside one IDL transaction
(:class:`ApplyHostCommand`) and renders as ``ovs-vsctl`` arguments for a dry
run.

Ownership: everything ovsnet creates carries ``external_ids:ovsnet-owner=
<topology name>``. A bridge, port or interface with a wanted name that lacks
that tag belongs to someone else; the plan refuses to touch it
(:class:`~ovsnet.errors.ForeignObjectError`), and ovsnet never deletes what it
does not own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ForeignObjectError
from ..topology import allocate_dp_ports
from ..topology.model import DP_PORT_KEY, OWNER_KEY, Host, Topology
from .commands import (
    Command,
    add_port_to_bridge,
    delete_row,
    insert_row,
    open_vswitch_row,
    remove_port,
)
from .rows import RowIndex, index_of, set_column
from .vsctl_format import datum_to_string

# Columns ovsnet manages; everything else on a row (ofport, status, ...) is
# ovs-vswitchd's or someone else's and is never written.
BRIDGE_COLUMNS = ("fail_mode", "datapath_type", "protocols", "other_config", "external_ids")
PORT_COLUMNS = ("tag", "trunks", "vlan_mode", "bond_mode", "lacp", "other_config", "external_ids")
IFACE_COLUMNS = ("type", "options", "ofport_request", "mtu_request", "other_config",
                 "external_ids")


@dataclass
class RowSpec:
    """Desired managed columns of one named row, as the IDL reads them."""

    name: str
    columns: dict


@dataclass
class PortSpec(RowSpec):
    interfaces: list[RowSpec] = field(default_factory=list)


@dataclass
class BridgeSpec(RowSpec):
    ports: list[PortSpec] = field(default_factory=list)


def _opt(value) -> list:
    return [] if value is None else [value]


def _strs(mapping: dict) -> dict[str, str]:
    return {str(k): str(v) for k, v in mapping.items()}


def desired_host(topology: Topology, host: Host) -> list[BridgeSpec]:
    """The OVSDB rows of ``host``, bridges and ports in file order."""
    owner = {OWNER_KEY: topology.name}
    dp_port_of = {name: number for number, name in allocate_dp_ports(host).items()}
    bridges = []
    for bridge in host.bridges.values():
        local_iface = RowSpec(bridge.name, {**_iface_defaults(), "type": "internal",
                                            "external_ids": dict(owner)})
        local = PortSpec(bridge.name, {**_port_defaults(), "external_ids": dict(owner)},
                         [local_iface])
        if bridge.name in dp_port_of:
            local_iface.columns["external_ids"][DP_PORT_KEY] = str(dp_port_of[bridge.name])
        spec = BridgeSpec(
            bridge.name,
            {
                "fail_mode": [] if bridge.fail_mode == "standalone" else [bridge.fail_mode],
                "datapath_type": bridge.datapath_type,
                "protocols": list(bridge.protocols),
                "other_config": _strs(bridge.other_config),
                "external_ids": {**_strs(bridge.external_ids), **owner},
            },
            [local],
        )
        for port in bridge.ports.values():
            ifaces = []
            for iface in port.interfaces:
                ext = {**_strs(iface.external_ids), **owner}
                if iface.dp_port is not None:
                    ext[DP_PORT_KEY] = str(iface.dp_port)
                ifaces.append(RowSpec(iface.name, {
                    "type": iface.type,
                    "options": _strs(iface.options),
                    "ofport_request": _opt(iface.ofport),
                    "mtu_request": _opt(iface.mtu),
                    "other_config": _strs(iface.other_config),
                    "external_ids": ext,
                }))
            spec.ports.append(PortSpec(port.name, {
                "tag": _opt(port.tag),
                "trunks": sorted(port.trunks),
                "vlan_mode": _opt(port.vlan_mode),
                "bond_mode": _opt(port.bond_mode),
                "lacp": _opt(port.lacp),
                "other_config": _strs(port.other_config),
                "external_ids": {**_strs(port.external_ids), **owner},
            }, ifaces))
        bridges.append(spec)
    return bridges


def _port_defaults() -> dict:
    return {"tag": [], "trunks": [], "vlan_mode": [], "bond_mode": [], "lacp": [],
            "other_config": {}}


def _iface_defaults() -> dict:
    return {"options": {}, "ofport_request": [], "mtu_request": [], "other_config": {}}


# --- the plan ----------------------------------------------------------------------------


@dataclass
class Change:
    """One step of a plan; ``vsctl()`` gives the equivalent ovs-vsctl arguments."""

    def apply(self, txn, idl) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def vsctl(self, idl) -> list[list[str]]:  # pragma: no cover - abstract
        raise NotImplementedError


def _set_args(idl, table: str, name: str, columns: dict) -> list[list[str]]:
    """``set TABLE NAME col=value ...`` plus ``clear`` for emptied columns."""
    t = idl.tables[table]
    sets, clears = [], []
    for column, value in columns.items():
        ctype = t.columns[column].type
        empty = value in ([], {}, None) and (ctype.is_map() or ctype.n_min == 0)
        if empty:
            clears.append(["clear", table, name, column])
        else:
            sets.append(f"{column}={datum_to_string(value, ctype.is_map(), ctype.n_max)}")
    out = [["set", table, name, *sets]] if sets else []
    return out + clears


def _nondefault(columns: dict) -> dict:
    return {k: v for k, v in columns.items() if v not in ([], {}, "", None)}


@dataclass
class CreateBridge(Change):
    spec: BridgeSpec

    def apply(self, txn, idl):
        local = self.spec.ports[0]
        iface = insert_row(idl, txn, "Interface", {"name": local.interfaces[0].name,
                                                   **_nondefault(local.interfaces[0].columns)})
        port = insert_row(idl, txn, "Port", {"name": local.name, "interfaces": [iface],
                                             **_nondefault(local.columns)})
        bridge = insert_row(idl, txn, "Bridge", {"name": self.spec.name, "ports": [port],
                                                 **_nondefault(self.spec.columns)})
        index_of(txn).set_parent("Port", port, bridge)
        open_vswitch_row(idl, txn).addvalue("bridges", bridge.uuid)

    def vsctl(self, idl):
        local = self.spec.ports[0]
        return [
            ["add-br", self.spec.name],
            *_set_args(idl, "Bridge", self.spec.name, _nondefault(self.spec.columns)),
            *_set_args(idl, "Port", local.name, _nondefault(local.columns)),
            *_set_args(idl, "Interface", local.interfaces[0].name,
                       _nondefault(local.interfaces[0].columns)),
        ]


@dataclass
class DeleteBridge(Change):
    name: str

    def apply(self, txn, idl):
        bridge = index_of(txn).find("Bridge", self.name)
        for port in bridge.ports:
            for iface in port.interfaces:
                delete_row(txn, "Interface", iface)
            delete_row(txn, "Port", port)
        open_vswitch_row(idl, txn).delvalue("bridges", bridge.uuid)
        delete_row(txn, "Bridge", bridge)

    def vsctl(self, idl):
        return [["del-br", self.name]]


@dataclass
class CreatePort(Change):
    bridge: str
    spec: PortSpec

    def apply(self, txn, idl):
        index = index_of(txn)
        ifaces = [insert_row(idl, txn, "Interface", {"name": i.name, **_nondefault(i.columns)})
                  for i in self.spec.interfaces]
        port = insert_row(idl, txn, "Port", {"name": self.spec.name, "interfaces": ifaces,
                                             **_nondefault(self.spec.columns)})
        add_port_to_bridge(txn, index.find("Bridge", self.bridge), port)

    def vsctl(self, idl):
        names = [i.name for i in self.spec.interfaces]
        if len(names) > 1:
            head = ["add-bond", self.bridge, self.spec.name, *names]
        else:
            head = ["add-port", self.bridge, self.spec.name]
        out = [head, *_set_args(idl, "Port", self.spec.name, _nondefault(self.spec.columns))]
        for iface in self.spec.interfaces:
            out += _set_args(idl, "Interface", iface.name, _nondefault(iface.columns))
        return out


@dataclass
class DeletePort(Change):
    bridge: str
    name: str

    def apply(self, txn, idl):
        remove_port(txn, index_of(txn).find("Port", self.name))

    def vsctl(self, idl):
        return [["del-port", self.bridge, self.name]]


@dataclass
class SetColumns(Change):
    table: str
    name: str
    columns: dict  # column -> new value

    def apply(self, txn, idl):
        row = index_of(txn).find(self.table, self.name)
        for column, value in self.columns.items():
            set_column(row, column, value)

    def vsctl(self, idl):
        return _set_args(idl, self.table, self.name, self.columns)


def _owner(row) -> str | None:
    return row.external_ids.get(OWNER_KEY)


def _diff(row, spec: RowSpec) -> dict:
    changed = {}
    for column, want in spec.columns.items():
        have = getattr(row, column)
        if isinstance(have, list) and isinstance(want, list):
            same = sorted(map(str, have)) == sorted(map(str, want))
        else:
            same = have == want
        if not same:
            changed[column] = want
    return changed


def plan(idl, topology: Topology, host: Host, index=None) -> list[Change]:
    """The changes that make the database match ``host``; [] when it already does.

    Raises ForeignObjectError (listing every conflict) when a wanted name is
    held by an object that the topology does not own.
    """
    owner = topology.name
    want = desired_host(topology, host)
    index = index if index is not None else RowIndex(idl)
    names = {t: index.names(t) for t in ("Bridge", "Port", "Interface")}

    conflicts = []

    def check(table: str, name: str):
        row = names[table].get(name)
        if row is not None and _owner(row) != owner:
            tag = _owner(row)
            why = f"owned by topology {tag!r}" if tag else f"not tagged external_ids:{OWNER_KEY}"
            conflicts.append(f"{table} {name} already exists and is {why}")
        return row

    wanted_bridges = {b.name for b in want}
    wanted_ports = {p.name: b.name for b in want for p in b.ports}
    for b in want:
        check("Bridge", b.name)
        for p in b.ports:
            check("Port", p.name)
            for i in p.interfaces:
                check("Interface", i.name)
    if conflicts:
        raise ForeignObjectError(
            f"refusing to change host {host.name}: "
            + "; ".join(conflicts)
            + ". ovsnet only modifies and deletes objects it created; rename them in the "
            "topology or remove the existing ones yourself."
        )

    changes: list[Change] = []
    # Deletions first, so names they free can be reused by creations below.
    for name, row in sorted(names["Bridge"].items()):
        if _owner(row) == owner and name not in wanted_bridges:
            changes.append(DeleteBridge(name))
    for name, row in sorted(names["Port"].items()):
        if _owner(row) != owner:
            continue
        parent = index.parent("Port", row)
        bridge_name = parent.name if parent is not None else None
        if bridge_name is None or bridge_name not in wanted_bridges or name == bridge_name:
            continue  # gone with its bridge, or a bridge's local port
        if (wanted_ports.get(name) != bridge_name
                or _interfaces_differ(row, want, bridge_name, name)):
            changes.append(DeletePort(bridge_name, name))
    deleted_ports = {c.name for c in changes if isinstance(c, DeletePort)}

    for b in want:
        row = names["Bridge"].get(b.name)
        if row is None or _owner(row) != owner:
            changes.append(CreateBridge(b))
            for p in b.ports[1:]:
                changes.append(CreatePort(b.name, p))
            continue
        diff = _diff(row, b)
        if diff:
            changes.append(SetColumns("Bridge", b.name, diff))
        for p in b.ports:
            prow = names["Port"].get(p.name)
            if prow is None or p.name in deleted_ports:
                changes.append(CreatePort(b.name, p))
                continue
            diff = _diff(prow, p)
            if diff:
                changes.append(SetColumns("Port", p.name, diff))
            for i in p.interfaces:
                irow = names["Interface"][i.name]
                diff = _diff(irow, i)
                if diff:
                    changes.append(SetColumns("Interface", i.name, diff))
    return changes


def _interfaces_differ(port_row, want: list[BridgeSpec], bridge: str, name: str) -> bool:
    for b in want:
        if b.name != bridge:
            continue
        for p in b.ports:
            if p.name == name:
                return sorted(i.name for i in port_row.interfaces) != sorted(
                    i.name for i in p.interfaces)
    return True


def vsctl_args(idl, changes: list[Change]) -> list[list[str]]:
    """The ovs-vsctl commands (one list of words each) equivalent to ``changes``."""
    needs_init = not idl.tables["Open_vSwitch"].rows
    out = [["init"]] if needs_init and changes else []
    for change in changes:
        out += change.vsctl(idl)
    return out


class ApplyHostCommand(Command):
    """Makes one host's database match the topology, in the caller's transaction.

    ``result`` is the list of changes made (empty when nothing differed).
    The plan is recomputed on every attempt, so a retried transaction still
    applies exactly the difference.
    """

    def __init__(self, api, topology: Topology, host: Host | str, dry_run: bool = False):
        super().__init__(api)
        self.topology = topology
        self.host = topology.host(host) if isinstance(host, str) else host
        self.dry_run = dry_run

    def run_idl(self, txn):
        idl = self.idl
        changes = plan(idl, self.topology, self.host, index_of(txn))
        self.result = changes
        if self.dry_run or not changes:
            return
        open_vswitch_row(idl, txn)
        for change in changes:
            change.apply(txn, idl)
        open_vswitch_row(idl, txn).increment("next_cfg")
