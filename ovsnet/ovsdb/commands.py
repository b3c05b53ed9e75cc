"""ovsdbapp-style commands: each keeps its arguments, ``run_idl(txn)`` does the work.

Nothing happens when a command is created. A :class:`~.transaction.Transaction`
runs the commands of one ``with api.transaction():`` block against the IDL
replica and commits them together; if the server reports that the replica
was stale (``try again``), every command runs again on fresh data, so
``run_idl`` must derive everything from the IDL and its arguments.

Semantics and error messages follow ``ovs-vsctl`` (``utilities/ovs-vsctl.c``):
``may_exist`` makes a create idempotent, ``if_exists`` makes a delete or a
change of a missing record a no-op; otherwise a missing or duplicate record
is an error. Unlike ovsdbapp, errors raise by default.
"""

from __future__ import annotations

from collections.abc import Iterable

import ovs.db.idl

from ..errors import OvsdbTransactionError
from .rows import check_value, get_column, get_table, index_of, set_column


class Command:
    """One step of a transaction; ``result`` holds its answer after commit."""

    def __init__(self, api):
        self.api = api
        self.result = None

    def run_idl(self, txn: ovs.db.idl.Transaction) -> None:
        raise NotImplementedError

    def post_commit(self, txn: ovs.db.idl.Transaction) -> None:
        """Called after a successful commit (e.g. to map inserted UUIDs)."""

    def execute(self, check_error: bool = True):
        """Runs this command alone in its own transaction and returns its result."""
        with self.api.transaction(check_error=check_error) as txn:
            txn.add(self)
        return self.result

    @property
    def idl(self):
        return self.api.idl

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k not in ("api", "result"))
        return f"{type(self).__name__}({args})"


# --- helpers shared by the commands -------------------------------------------------


def open_vswitch_row(idl, txn, create: bool = True):
    """The root row of Open_vSwitch, created (as ``ovs-vsctl init`` does) if absent."""
    rows = list(idl.tables["Open_vSwitch"].rows.values())
    if len(rows) > 1:
        raise OvsdbTransactionError(
            f"database has {len(rows)} Open_vSwitch rows; expected exactly one"
        )
    if rows:
        return rows[0]
    if not create:
        raise OvsdbTransactionError("database has no Open_vSwitch row (run `init` first)")
    return txn.insert(idl.tables["Open_vSwitch"])


def find(txn, table: str, record):
    return index_of(txn).find(table, record)


def must_find(txn, table: str, record):
    row = index_of(txn).find(table, record)
    if row is None:
        raise OvsdbTransactionError(f'no row "{record}" in table {table}')
    return row


def bridge_of_port(txn, port_row):
    return index_of(txn).parent("Port", port_row)


def apply_columns(row, columns: dict) -> None:
    for column, value in columns.items():
        set_column(row, column, value)


def insert_row(idl, txn, table: str, columns: dict):
    t = get_table(idl, table)
    # check everything before inserting anything
    checked = {column: check_value(t, column, value) for column, value in columns.items()}
    row = txn.insert(t)
    for column, value in checked.items():
        setattr(row, column, value)
    if "name" in columns:
        index_of(txn).added(table, row, columns["name"])
    return row


def delete_row(txn, table: str, row) -> None:
    index = index_of(txn)
    if "name" in row._table.columns:
        index.removed(table, row, row.name)
    row.delete()


def add_port_to_bridge(txn, bridge, port) -> None:
    bridge.addvalue("ports", port.uuid)
    index_of(txn).set_parent("Port", port, bridge)


def remove_port(txn, port) -> None:
    """Detaches a port from its bridge and deletes it with its interfaces."""
    owner = index_of(txn).parent("Port", port)
    if owner is not None:
        owner.delvalue("ports", port.uuid)
    for iface in port.interfaces:
        delete_row(txn, "Interface", iface)
    delete_row(txn, "Port", port)


def _split(columns: dict | None, table) -> dict:
    """Only the keyword arguments that are columns of ``table``; others are errors."""
    columns = {k: v for k, v in (columns or {}).items() if v is not None}
    for column in columns:
        get_column(table, column)
    return columns


# --- Open_vSwitch ------------------------------------------------------------------------


class InitCommand(Command):
    """``ovs-vsctl init``: make sure the Open_vSwitch root row exists."""

    def run_idl(self, txn):
        open_vswitch_row(self.idl, txn)


class IncrementNextCfgCommand(Command):
    """Bump ``next_cfg`` so ovs-vswitchd reconfigures (as ovs-vsctl does without --no-wait)."""

    def run_idl(self, txn):
        row = open_vswitch_row(self.idl, txn)
        row.increment("next_cfg")


# --- bridges -----------------------------------------------------------------------------


class AddBridgeCommand(Command):
    """``ovs-vsctl [--may-exist] add-br NAME [-- set Bridge NAME col=val...]``.

    Creates the bridge with its local Port and Interface (type internal),
    both named like the bridge, and adds it to Open_vSwitch.bridges.
    """

    def __init__(self, api, name: str, may_exist: bool = False, **columns):
        super().__init__(api)
        self.name = name
        self.may_exist = may_exist
        self.columns = columns

    def run_idl(self, txn):
        idl = self.idl
        columns = _split(self.columns, idl.tables["Bridge"])
        existing = find(txn, "Bridge", self.name)
        if existing is not None:
            if not self.may_exist:
                raise OvsdbTransactionError(
                    f"cannot create a bridge named {self.name} because a bridge named "
                    f"{self.name} already exists"
                )
            apply_columns(existing, columns)
            self.result = existing.uuid
            return
        port = find(txn, "Port", self.name)
        if port is not None:
            owner = bridge_of_port(txn, port)
            where = f" on bridge {owner.name}" if owner is not None else ""
            raise OvsdbTransactionError(
                f"cannot create a bridge named {self.name} because a port named "
                f"{self.name} already exists{where}"
            )
        if find(txn, "Interface", self.name) is not None:
            raise OvsdbTransactionError(
                f"cannot create a bridge named {self.name} because an interface named "
                f"{self.name} already exists"
            )
        iface = insert_row(idl, txn, "Interface", {"name": self.name, "type": "internal"})
        port = insert_row(idl, txn, "Port", {"name": self.name, "interfaces": [iface]})
        bridge = insert_row(idl, txn, "Bridge", {"name": self.name, "ports": [port], **columns})
        index_of(txn).set_parent("Port", port, bridge)
        open_vswitch_row(idl, txn).addvalue("bridges", bridge.uuid)
        self.result = bridge.uuid
        self._inserted = bridge.uuid

    def post_commit(self, txn):
        if getattr(self, "_inserted", None) is not None and self.result == self._inserted:
            self.result = txn.get_insert_uuid(self._inserted) or self.result


class DelBridgeCommand(Command):
    """``ovs-vsctl [--if-exists] del-br NAME``: the bridge, its ports and interfaces."""

    def __init__(self, api, name: str, if_exists: bool = False):
        super().__init__(api)
        self.name = name
        self.if_exists = if_exists

    def run_idl(self, txn):
        bridge = find(txn, "Bridge", self.name)
        if bridge is None:
            if self.if_exists:
                return
            raise OvsdbTransactionError(f"no bridge named {self.name}")
        for port in bridge.ports:
            for iface in port.interfaces:
                delete_row(txn, "Interface", iface)
            delete_row(txn, "Port", port)
        open_vswitch_row(self.idl, txn).delvalue("bridges", bridge.uuid)
        delete_row(txn, "Bridge", bridge)


class BridgeExistsCommand(Command):
    def __init__(self, api, name: str):
        super().__init__(api)
        self.name = name

    def run_idl(self, txn):
        self.result = find(txn, "Bridge", self.name) is not None


class ListBridgesCommand(Command):
    def run_idl(self, txn):
        self.result = sorted(row.name for row in self.idl.tables["Bridge"].rows.values())


# --- ports -------------------------------------------------------------------------------


class AddPortCommand(Command):
    """``ovs-vsctl [--may-exist] add-port BRIDGE PORT`` and ``add-bond``.

    ``interfaces`` lists the interface names (default: one named like the
    port); ``port_columns`` and ``iface_columns`` are written on the Port and
    on every Interface.
    """

    def __init__(
        self,
        api,
        bridge: str,
        name: str,
        may_exist: bool = False,
        interfaces: Iterable[str] | None = None,
        port_columns: dict | None = None,
        iface_columns: dict | None = None,
    ):
        super().__init__(api)
        self.bridge = bridge
        self.name = name
        self.may_exist = may_exist
        self.interfaces = list(interfaces) if interfaces else [name]
        self.port_columns = dict(port_columns or {})
        self.iface_columns = dict(iface_columns or {})

    def run_idl(self, txn):
        idl = self.idl
        bridge = find(txn, "Bridge", self.bridge)
        if bridge is None:
            raise OvsdbTransactionError(f"no bridge named {self.bridge}")
        existing = find(txn, "Port", self.name)
        if existing is not None:
            owner = bridge_of_port(txn, existing)
            if not self.may_exist:
                where = f" on bridge {owner.name}" if owner is not None else ""
                raise OvsdbTransactionError(
                    f"cannot create a port named {self.name} because a port named "
                    f"{self.name} already exists{where}"
                )
            if owner is None or owner.uuid != bridge.uuid:
                actual = owner.name if owner is not None else "(none)"
                raise OvsdbTransactionError(
                    f'"--may-exist add-port {self.bridge} {self.name}" but {self.name} is '
                    f"actually attached to bridge {actual}"
                )
            have = sorted(i.name for i in existing.interfaces)
            if have != sorted(self.interfaces):
                raise OvsdbTransactionError(
                    f'"--may-exist add-port {self.bridge} {self.name}" but {self.name} '
                    f"actually has interface(s) {', '.join(have)}"
                )
            self.result = existing.uuid
            return
        for iface_name in self.interfaces:
            if find(txn, "Interface", iface_name) is not None:
                raise OvsdbTransactionError(
                    f"cannot create an interface named {iface_name} because an interface "
                    f"named {iface_name} already exists"
                )
        ifaces = [
            insert_row(idl, txn, "Interface", {"name": n, **_split(self.iface_columns, idl.tables["Interface"])})
            for n in self.interfaces
        ]
        port = insert_row(
            idl,
            txn,
            "Port",
            {"name": self.name, "interfaces": ifaces, **_split(self.port_columns, idl.tables["Port"])},
        )
        add_port_to_bridge(txn, bridge, port)
        self.result = port.uuid


class DelPortCommand(Command):
    """``ovs-vsctl [--if-exists] del-port [BRIDGE] PORT``."""

    def __init__(self, api, name: str, bridge: str | None = None, if_exists: bool = False):
        super().__init__(api)
        self.name = name
        self.bridge = bridge
        self.if_exists = if_exists

    def run_idl(self, txn):
        port = find(txn, "Port", self.name)
        if port is None:
            if self.if_exists:
                return
            raise OvsdbTransactionError(f"no port named {self.name}")
        owner = bridge_of_port(txn, port)
        if owner is not None and owner.name == port.name:
            raise OvsdbTransactionError(
                f"cannot delete port {self.name} because it is the local port for bridge "
                f"{owner.name} (deleting this port requires deleting the entire bridge)"
            )
        if self.bridge is not None and (owner is None or owner.name != self.bridge):
            raise OvsdbTransactionError(f"bridge {self.bridge} does not have a port {self.name}")
        remove_port(txn, port)


class ListPortsCommand(Command):
    """``ovs-vsctl list-ports BRIDGE``: port names, sorted, without the local port."""

    def __init__(self, api, bridge: str):
        super().__init__(api)
        self.bridge = bridge

    def run_idl(self, txn):
        bridge = find(txn, "Bridge", self.bridge)
        if bridge is None:
            raise OvsdbTransactionError(f"no bridge named {self.bridge}")
        self.result = sorted(p.name for p in bridge.ports if p.name != bridge.name)


class PortToBridgeCommand(Command):
    """``ovs-vsctl port-to-br PORT``."""

    def __init__(self, api, name: str):
        super().__init__(api)
        self.name = name

    def run_idl(self, txn):
        port = find(txn, "Port", self.name)
        owner = bridge_of_port(txn, port) if port is not None else None
        if owner is None:
            raise OvsdbTransactionError(f"no port named {self.name}")
        self.result = owner.name


# --- generic database commands -----------------------------------------------------------


class DbCreateCommand(Command):
    """``ovs-vsctl create TABLE col=val...``; result is the new row's UUID."""

    def __init__(self, api, table: str, **columns):
        super().__init__(api)
        self.table = table
        self.columns = columns

    def run_idl(self, txn):
        row = insert_row(self.idl, txn, self.table, self.columns)
        self._inserted = row.uuid
        self.result = row.uuid

    def post_commit(self, txn):
        self.result = txn.get_insert_uuid(self._inserted) or self.result


class DbDestroyCommand(Command):
    def __init__(self, api, table: str, record: str, if_exists: bool = False):
        super().__init__(api)
        self.table, self.record, self.if_exists = table, record, if_exists

    def run_idl(self, txn):
        row = find(txn, self.table, self.record)
        if row is None:
            if self.if_exists:
                return
            raise OvsdbTransactionError(f'no row "{self.record}" in table {self.table}')
        delete_row(txn, self.table, row)


class DbSetCommand(Command):
    """``ovs-vsctl set TABLE RECORD col=val...``.

    A dict given for a map column sets those keys and keeps the others (as
    ``col:key=value`` does); use :class:`DbClearCommand` first to replace a map.
    """

    def __init__(self, api, table: str, record: str, *col_values, if_exists: bool = False):
        super().__init__(api)
        self.table, self.record, self.if_exists = table, record, if_exists
        self.col_values = col_values

    def run_idl(self, txn):
        row = find(txn, self.table, self.record)
        if row is None:
            if self.if_exists:
                return
            raise OvsdbTransactionError(f'no row "{self.record}" in table {self.table}')
        for column, value in self.col_values:
            ctype = get_column(row._table, column).type
            if ctype.is_map() and isinstance(value, dict):
                merged = dict(getattr(row, column))
                merged.update(value)
                set_column(row, column, merged)
            else:
                set_column(row, column, value)


class DbClearCommand(Command):
    def __init__(self, api, table: str, record: str, column: str):
        super().__init__(api)
        self.table, self.record, self.column = table, record, column

    def run_idl(self, txn):
        row = must_find(txn, self.table, self.record)
        ctype = get_column(row._table, self.column).type
        if ctype.n_min > 0:
            raise OvsdbTransactionError(
                f'"clear" operation cannot be applied to column {self.column} of table '
                f"{self.table}, which is not allowed to be empty"
            )
        set_column(row, self.column, {} if ctype.is_map() else [])


class DbAddCommand(Command):
    """``ovs-vsctl add TABLE RECORD COLUMN VALUE...``: add to a set or map."""

    def __init__(self, api, table: str, record: str, column: str, *values):
        super().__init__(api)
        self.table, self.record, self.column, self.values = table, record, column, values

    def run_idl(self, txn):
        row = must_find(txn, self.table, self.record)
        ctype = get_column(row._table, self.column).type
        current = getattr(row, self.column)
        if ctype.is_map():
            merged = dict(current)
            for value in self.values:
                for k, v in value.items():
                    merged.setdefault(k, v)  # ovs-vsctl add never replaces a key
            set_column(row, self.column, merged)
        else:
            items = list(current) if isinstance(current, list) else [current]
            for value in self.values:
                for v in value if isinstance(value, (list, tuple, set)) else [value]:
                    if v not in items:
                        items.append(v)
            set_column(row, self.column, items)


class DbRemoveCommand(Command):
    """``ovs-vsctl remove TABLE RECORD COLUMN KEY|VALUE|KEY=VALUE...``."""

    def __init__(self, api, table: str, record: str, column: str, *values, if_exists=False):
        super().__init__(api)
        self.table, self.record, self.column, self.values = table, record, column, values
        self.if_exists = if_exists

    def run_idl(self, txn):
        row = find(txn, self.table, self.record)
        if row is None:
            if self.if_exists:
                return
            raise OvsdbTransactionError(f'no row "{self.record}" in table {self.table}')
        ctype = get_column(row._table, self.column).type
        current = getattr(row, self.column)
        if ctype.is_map():
            remaining = dict(current)
            for value in self.values:
                if isinstance(value, dict):
                    for k, v in value.items():
                        if remaining.get(k) == v:
                            del remaining[k]
                else:
                    remaining.pop(value, None)
            set_column(row, self.column, remaining)
        else:
            items = list(current) if isinstance(current, list) else [current]
            drop = []
            for value in self.values:
                drop.extend(value if isinstance(value, (list, tuple, set)) else [value])
            set_column(row, self.column, [v for v in items if v not in drop])


class DbGetCommand(Command):
    def __init__(self, api, table: str, record: str, column: str):
        super().__init__(api)
        self.table, self.record, self.column = table, record, column

    def run_idl(self, txn):
        row = must_find(txn, self.table, self.record)
        get_column(row._table, self.column)
        value = getattr(row, self.column) if self.column != "_uuid" else row.uuid
        self.result = value


class DbListCommand(Command):
    """``ovs-vsctl list TABLE [RECORD...]``; result: list of {column: value} dicts."""

    def __init__(self, api, table: str, records=None, columns=None, if_exists: bool = False):
        super().__init__(api)
        self.table, self.records, self.columns = table, records, columns
        self.if_exists = if_exists

    def run_idl(self, txn):
        t = get_table(self.idl, self.table)
        columns = self.columns or ["_uuid", *sorted(t.columns)]
        for c in columns:
            if c != "_uuid":
                get_column(t, c)
        if self.records is None:
            rows = sorted(t.rows.values(), key=lambda r: str(r.uuid))
        else:
            rows = []
            for record in self.records:
                row = find(txn, self.table, record)
                if row is None:
                    if self.if_exists:
                        continue
                    raise OvsdbTransactionError(f'no row "{record}" in table {self.table}')
                rows.append(row)
        self.result = [
            {c: (row.uuid if c == "_uuid" else getattr(row, c)) for c in columns} for row in rows
        ]


class DbFindCommand(Command):
    """``ovs-vsctl find TABLE COLUMN=VALUE...``: rows whose columns equal the values.

    A condition's value for a map column matches when the row's map contains
    every given key with that value (as ``ovs-vsctl find ... external_ids:k=v``).
    """

    def __init__(self, api, table: str, *conditions, columns=None):
        super().__init__(api)
        self.table, self.conditions, self.columns = table, conditions, columns

    def run_idl(self, txn):
        t = get_table(self.idl, self.table)
        columns = self.columns or ["_uuid", *sorted(t.columns)]
        for column, _value in self.conditions:
            get_column(t, column)

        def matches(row) -> bool:
            for column, value in self.conditions:
                have = getattr(row, column)
                if isinstance(value, dict):
                    if any(have.get(k) != v for k, v in value.items()):
                        return False
                elif isinstance(have, list) and not isinstance(value, list):
                    if have != [value]:
                        return False
                elif have != value:
                    return False
            return True

        rows = sorted((r for r in t.rows.values() if matches(r)), key=lambda r: str(r.uuid))
        self.result = [
            {c: (row.uuid if c == "_uuid" else getattr(row, c)) for c in columns} for row in rows
        ]
