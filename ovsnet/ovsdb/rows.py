"""Reading and writing rows of the IDL replica, with ovs-vsctl's rules.

Records are named as ``ovs-vsctl`` names them (``lib/db-ctl-base.c``): by
UUID, by ``.`` for the single row of ``Open_vSwitch``, by the ``name`` column
for Bridge, Port, Interface and friends, by ``target`` for Manager and
Controller. Values are checked against the column type from the server's
schema *before* they reach the IDL, which would otherwise log and drop a bad
value silently.
"""

from __future__ import annotations

import uuid as uuidlib

import ovs.db.data
import ovs.db.error
import ovs.db.idl

from ..errors import OvsdbTransactionError

#: how ovs-vsctl names the records of a table (column holding the name)
RECORD_NAME_COLUMN = {
    "Bridge": "name",
    "Port": "name",
    "Interface": "name",
    "Mirror": "name",
    "Flow_Table": "name",
    "Manager": "target",
    "Controller": "target",
}
SINGLETON_TABLES = ("Open_vSwitch", "SSL")


def get_table(idl: ovs.db.idl.Idl, table: str):
    try:
        return idl.tables[table]
    except KeyError:
        known = ", ".join(sorted(idl.tables))
        raise OvsdbTransactionError(
            f"unknown table {table!r}; the database has: {known}"
        ) from None


def get_column(table, column: str):
    try:
        return table.columns[column]
    except KeyError:
        known = ", ".join(sorted(table.columns))
        raise OvsdbTransactionError(
            f"table {table.name} has no column {column!r}; its columns are: {known}"
        ) from None


def _as_uuid(record: str) -> uuidlib.UUID | None:
    try:
        return uuidlib.UUID(record)
    except (ValueError, AttributeError, TypeError):
        return None


def find_row(idl: ovs.db.idl.Idl, table: str, record: str):
    """The row of ``table`` that ``record`` names, or None."""
    t = get_table(idl, table)
    if isinstance(record, ovs.db.idl.Row):
        return record
    if table in SINGLETON_TABLES and record == ".":
        rows = list(t.rows.values())
        return rows[0] if len(rows) == 1 else None
    uid = _as_uuid(record)
    if uid is not None and uid in t.rows:
        return t.rows[uid]
    column = RECORD_NAME_COLUMN.get(table)
    if column is None and "name" in t.columns:
        column = "name"
    if column is None:
        return None
    for row in t.rows.values():
        if getattr(row, column) == record:
            return row
    return None


def check_value(table, column_name: str, value):
    """Converts ``value`` to what the IDL expects for the column, or raises.

    Optional scalar columns (min 0, max 1) accept a bare scalar or None.
    """
    column = get_column(table, column_name)
    ctype = column.type
    if not ctype.is_map() and ctype.n_max == 1 and ctype.n_min == 0:
        if value is None:
            value = []
        elif not isinstance(value, (list, tuple, set)):
            value = [value]
    if isinstance(value, tuple):
        value = list(value)
    try:
        datum = ovs.db.data.Datum.from_python(ctype, value, _row_to_uuid)
        datum.check_constraints()
    except ovs.db.error.Error as e:
        raise OvsdbTransactionError(
            f"{table.name}.{column_name}: {value!r} is not valid: {e.args[0] if e.args else e}"
        ) from None
    except (TypeError, ValueError, AttributeError) as e:
        raise OvsdbTransactionError(
            f"{table.name}.{column_name}: {value!r} is not valid: {e}"
        ) from None
    return value


def _row_to_uuid(value):
    if isinstance(value, ovs.db.idl.Row):
        return value.uuid
    return value


def set_column(row, column_name: str, value) -> None:
    """Writes one column of a row in the current IDL transaction, checked."""
    value = check_value(row._table, column_name, value)
    setattr(row, column_name, value)


class RowIndex:
    """Name and parent lookups for one attempt of a transaction.

    Built lazily from the IDL replica and kept current by the commands as
    they insert, delete and re-parent rows, so a transaction of N commands
    costs O(N) lookups instead of N table scans.
    """

    def __init__(self, idl):
        self.idl = idl
        self._by_name: dict[str, dict[str, ovs.db.idl.Row]] = {}
        self._parent: dict[str, dict[uuidlib.UUID, ovs.db.idl.Row]] = {}

    def names(self, table: str) -> dict[str, ovs.db.idl.Row]:
        index = self._by_name.get(table)
        if index is None:
            column = RECORD_NAME_COLUMN.get(table, "name")
            rows = get_table(self.idl, table).rows.values()
            index = self._by_name[table] = {getattr(r, column): r for r in rows}
        return index

    def find(self, table: str, record):
        """Like :func:`find_row`, served from the index for named tables."""
        if table in RECORD_NAME_COLUMN and isinstance(record, str) and _as_uuid(record) is None:
            return self.names(table).get(record)
        return find_row(self.idl, table, record)

    def added(self, table: str, row, name: str) -> None:
        if table in self._by_name:
            self._by_name[table][name] = row

    def removed(self, table: str, row, name: str) -> None:
        if table in self._by_name:
            self._by_name[table].pop(name, None)
        parents = self._parent.get(table)
        if parents is not None:
            parents.pop(row.uuid, None)

    _CHILDREN = {"Port": ("Bridge", "ports"), "Interface": ("Port", "interfaces")}

    def parent(self, table: str, row):
        """The Bridge holding a Port, or the Port holding an Interface (or None)."""
        parents = self._parent.get(table)
        if parents is None:
            parent_table, column = self._CHILDREN[table]
            parents = self._parent[table] = {}
            for p in get_table(self.idl, parent_table).rows.values():
                for child in getattr(p, column):
                    parents[child.uuid] = p
        return parents.get(row.uuid)

    def set_parent(self, table: str, row, parent) -> None:
        if table in self._parent:
            if parent is None:
                self._parent[table].pop(row.uuid, None)
            else:
                self._parent[table][row.uuid] = parent


def index_of(txn) -> RowIndex:
    """The :class:`RowIndex` of an IDL transaction attempt (created on first use)."""
    index = txn.__dict__.get("_ovsnet_index")
    if index is None:
        index = txn.__dict__["_ovsnet_index"] = RowIndex(txn.idl)
    return index
