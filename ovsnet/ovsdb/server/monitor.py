"""Monitors: what ovsdb-server tells each client about changes to a database.

Mirrors ``ovsdb/monitor.c`` and the request parsing of
``ovsdb/jsonrpc-server.c`` for the three protocol generations:

- ``monitor`` (RFC 7047, :data:`V1`): ``update`` notifications whose rows
  carry ``old`` (the changed columns, or every column of a deleted row) and
  ``new`` (every monitored column).
- ``monitor_cond`` (:data:`V2`): ``update2`` with ``initial``/``insert``
  (columns that differ from their default), ``modify`` (a diff per changed
  column: the new value of a scalar, the symmetric difference of a set, the
  added, removed and changed pairs of a map) and ``delete``; per-table
  conditions (``where``) whose clauses are OR-ed, changed later with
  ``monitor_cond_change``, and which turn a modify into an insert or a delete
  when a row starts or stops matching (``condition.c``).
- ``monitor_cond_since`` (:data:`V3`): ``update3``, with the id of the last
  transaction included, and an initial reply ``[found, last-txn-id, updates]``
  that holds only what changed after the client's last transaction when
  :class:`History` still knows it.

Like C, changes are accumulated per monitor between flushes (a row changed
twice is reported once, a row inserted and deleted not at all), and a monitor
is only flushed when its client has no unsent output (see :mod:`.session`).
Rows are the engine's JSON rows (``{column: datum}``, including ``_uuid`` and
``_version``); the default column set is every column but ``_uuid``.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from .cjson import UINT_MAX
from .datum import OpError
from .parser import ARRAY, BOOLEAN, MISSING, OBJECT, Parser
from .protocol import NO_SYNTAX, protocol_error, syntax_error

V1, V2, V3 = 1, 2, 3
ZERO_UUID = "00000000-0000-0000-0000-000000000000"

INITIAL, INSERT, DELETE, MODIFY = 1, 2, 4, 8
_SELECT_NAMES = (("initial", INITIAL), ("insert", INSERT), ("delete", DELETE),
                 ("modify", MODIFY))

_FUNCTIONS = ("<", "<=", "==", "!=", ">=", ">", "includes", "excludes")


class MonitorError(Exception):
    """A monitor request the server answers with a JSON-RPC error."""

    def __init__(self, error: dict):
        super().__init__(error.get("details", error["error"]))
        self.error = error


# --------------------------------------------------------------------------
# Column types: the engine's (schema.py), seen through JSON datums.

class ColumnType:
    """A column's type as monitors need it: JSON datum helpers, and the
    engine's :class:`.schema.Type` for parsing condition arguments."""

    __slots__ = ("key", "value", "n_min", "n_max", "default", "engine")

    def __init__(self, engine_type):
        self.engine = engine_type
        self.key = engine_type.key.type
        self.value = engine_type.value.type if engine_type.value is not None else None
        self.n_min = engine_type.n_min
        self.n_max = float("inf") if engine_type.n_max == UINT_MAX else engine_type.n_max
        self.default = engine_type.to_json_datum(engine_type.default)

    @property
    def is_map(self) -> bool:
        return self.value is not None

    @property
    def is_composite(self) -> bool:
        return self.n_max > 1

    @property
    def is_scalar(self) -> bool:
        return self.n_min == 1 and self.n_max == 1 and not self.is_map

    @property
    def is_optional_scalar(self) -> bool:
        return self.n_min == 0 and self.n_max == 1 and not self.is_map

    def elements(self, datum) -> list:
        """The atoms of a set datum, or the [key, value] pairs of a map datum."""
        if isinstance(datum, list) and datum and datum[0] in ("set", "map") and (
                len(datum) == 2 and isinstance(datum[1], list)):
            return datum[1]
        return [datum]

    def to_json(self, elements: list):
        """``ovsdb_datum_to_json``: maps always wrapped, one-atom sets bare."""
        if self.is_map:
            return ["map", elements]
        if len(elements) == 1:
            return elements[0]
        return ["set", elements]

    def diff(self, old, new):
        """``ovsdb_datum_diff`` as update2 sends it."""
        if not self.is_composite:
            return new
        if self.is_map:
            o = {_atom_key(k): (k, v) for k, v in self.elements(old)}
            n = {_atom_key(k): (k, v) for k, v in self.elements(new)}
            out = [list(o[k]) for k in o.keys() - n.keys()]
            out += [list(n[k]) for k in n.keys() - o.keys()]
            out += [list(n[k]) for k in o.keys() & n.keys() if o[k][1] != n[k][1]]
            out.sort(key=lambda kv: _atom_key(kv[0]))
        else:
            o = {_atom_key(a): a for a in self.elements(old)}
            n = {_atom_key(a): a for a in self.elements(new)}
            out = [o[k] for k in o.keys() - n.keys()] + [n[k] for k in n.keys() - o.keys()]
            out.sort(key=_atom_key)
        return self.to_json(out)


def _atom_key(atom):
    """Sort/hash key of an atom in its JSON form (``ovsdb_atom_compare_3way``)."""
    if isinstance(atom, list):  # ["uuid", "..."]
        return atom[1]
    return atom


class TableSchema:
    """A table's columns (``_uuid`` and ``_version`` included) in C's order."""

    __slots__ = ("name", "columns")

    def __init__(self, engine_table):
        self.name = engine_table.name
        self.columns = {name: ColumnType(column.type)
                        for name, column in engine_table.columns.items()}

    def default_columns(self) -> list[str]:
        """What a monitor request without ``columns`` gets: all but ``_uuid``."""
        return [c for c in self.columns if c != "_uuid"]


def schema_tables(db) -> dict[str, TableSchema]:
    """The monitor view of every table of an engine :class:`Database`."""
    return {name: TableSchema(ts) for name, ts in db.schema.tables.items()}


def _fail(error) -> MonitorError:
    """A :class:`MonitorError` from the engine's ``OpError``."""
    return MonitorError(protocol_error(error))


# --------------------------------------------------------------------------
# Conditions (condition.c): parsed, sorted clauses; a row matches if any does.

class Clause:
    __slots__ = ("function", "column", "ctype", "arg", "_atoms")

    def __init__(self, function: str, column: str, ctype: ColumnType | None, arg):
        self.function = function
        self.column = column
        self.ctype = ctype
        self.arg = arg
        self._atoms = None if ctype is None else _datum_value(ctype, arg)

    def sort_key(self):
        # compare_clauses_3way: function order of enum ovsdb_function, then
        # standard columns first, then column name, then argument.
        order = ("false", "true", "==", "includes", "<=", "<", ">=", ">", "excludes", "!=")
        std = 0 if self.column == "_uuid" else 1 if self.column == "_version" else 2
        return (order.index(self.function), std, self.column if std == 2 else "",
                repr(self.arg))

    def evaluate(self, row: dict) -> bool:
        if self.function in ("true", "false"):
            return self.function == "true"
        ctype = self.ctype
        field = row.get(self.column, ctype.default)
        f = self.function
        if ctype.is_scalar or ctype.is_optional_scalar:
            elements = ctype.elements(field)
            args = ctype.elements(self.arg)
            if not elements and f in ("<", "<=", ">", ">="):
                return False
            if len(elements) == 1 and len(args) == 1:
                a, b = _atom_key(elements[0]), _atom_key(args[0])
                return {"<": a < b, "<=": a <= b, "==": a == b, "includes": a == b,
                        "!=": a != b, "excludes": a != b, ">=": a >= b, ">": a > b}[f]
        value = _datum_value(ctype, field)
        arg = self._atoms
        if f == "==":
            return value == arg
        if f == "!=":
            return value != arg
        if ctype.is_map:
            if f == "includes":
                return all(value.get(k, _MISSING) == v for k, v in arg.items())
            return all(value.get(k, _MISSING) != v for k, v in arg.items())
        if f == "includes":
            return arg <= value
        return not (arg & value)


_MISSING = object()


def _datum_value(ctype: ColumnType, datum):
    """A comparable Python value: frozenset of atoms, or dict for maps."""
    elements = ctype.elements(datum)
    if ctype.is_map:
        return {_atom_key(k): _atom_key(v) for k, v in elements}
    return frozenset(_atom_key(a) for a in elements)


class Condition:
    """``struct ovsdb_condition`` as monitors use it (clauses OR-ed)."""

    def __init__(self, clauses: list[Clause] | None = None):
        self.clauses = sorted(clauses or [], key=Clause.sort_key)

    @classmethod
    def parse(cls, table: TableSchema, where) -> Condition:
        """``ovsdb_condition_from_json``, with C's errors (the engine parses arguments)."""
        clauses = []
        for item in where:
            if isinstance(item, bool):
                clauses.append(Clause("true" if item else "false", "_uuid", None, None))
                continue
            if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)
                    and isinstance(item[1], str)):
                raise MonitorError(syntax_error(item, "Parse error in condition."))
            column, function, arg = item
            ctype = table.columns.get(column)
            if ctype is None:
                raise MonitorError(syntax_error(
                    item, f"No column {column} in table {table.name}.", "unknown column"))
            if function not in _FUNCTIONS:
                raise MonitorError(syntax_error(
                    NO_SYNTAX, f"No function named {function}.", "unknown function"))
            etype = ctype.engine
            if function in ("<", "<=", ">", ">="):
                if not (ctype.is_scalar or ctype.is_optional_scalar) or (
                        ctype.key not in ("integer", "real")):
                    raise MonitorError(syntax_error(
                        item, f'Type mismatch: "{function}" operator may not be applied to '
                        f"column {column} of type {etype.to_english()}."))
                etype = etype.relaxed(n_min=1)
            elif function == "excludes" and not ctype.is_scalar:
                etype = etype.relaxed(n_min=0, n_max=UINT_MAX)
            elif function == "includes" and not ctype.is_scalar:
                etype = etype.relaxed(n_min=0)
            try:
                datum = etype.parse(arg, None)
            except OpError as e:
                raise _fail(e) from None
            clauses.append(Clause(function, column, ctype, etype.to_json_datum(datum)))
        return cls(clauses)

    @property
    def is_true(self) -> bool:
        c = self.clauses
        return (not c or c[0].function == "true"
                or (len(c) >= 2 and c[1].function == "true"))

    def matches(self, row: dict) -> bool:
        """``ovsdb_condition_empty_or_match_any``."""
        return self.is_true or any(c.evaluate(row) for c in self.clauses)

    def same_as(self, other: Condition) -> bool:
        return [c.sort_key() for c in self.clauses] == [c.sort_key() for c in other.clauses]


# --------------------------------------------------------------------------
# One monitor of one client session.

class MonitorTable:
    __slots__ = ("schema", "columns", "select", "old_condition", "new_condition")

    def __init__(self, schema: TableSchema):
        self.schema = schema
        self.columns: list[tuple[str, int]] = []   # (column, select) in request order
        self.select = 0
        self.old_condition: Condition | None = None
        self.new_condition: Condition | None = None

    def add_column(self, column: str, select: int) -> bool:
        if any(c == column for c, _ in self.columns):
            return False
        self.columns.append((column, select))
        self.select |= select
        return True


class Monitor:
    """``struct ovsdb_jsonrpc_monitor`` plus its share of ``ovsdb_monitor``."""

    def __init__(self, monitor_id, version: int, db_name: str):
        self.id = monitor_id
        self.version = version
        self.db_name = db_name
        self.tables: dict[str, MonitorTable] = {}
        self.pending: dict[str, dict[str, list]] = {}   # table -> uuid -> [old, new]
        self.pending_txns: list[str] = []                # the commits merged into pending
        self._signature: tuple | None | bool = False     # False: not computed yet

    @classmethod
    def create(cls, monitor_id, version: int, db_name: str,
               schema: dict[str, TableSchema], requests) -> Monitor:
        """Parses ``<monitor-requests>`` as ``ovsdb_jsonrpc_monitor_create`` does."""
        if not isinstance(requests, dict):
            raise MonitorError(syntax_error(requests, "monitor-requests must be object"))
        m = cls(monitor_id, version, db_name)
        for name, value in requests.items():
            table = schema.get(name)
            if table is None:
                raise MonitorError(syntax_error(NO_SYNTAX, f"no table named {name}"))
            mt = m.tables[name] = MonitorTable(table)
            for mr in (value if isinstance(value, list) else [value]):
                m._parse_request(mt, mr)
        return m

    def _parse_request(self, mt: MonitorTable, request) -> None:
        """``ovsdb_jsonrpc_parse_monitor_request``."""
        table = mt.schema
        parser = Parser(request, f"table {table.name}")
        where = parser.member("where", ARRAY, optional=True) if self.version != V1 else MISSING
        columns = parser.member("columns", ARRAY, optional=True)
        select_json = parser.member("select", OBJECT, optional=True)
        if parser.finish() is not None:
            raise _fail(parser.error)
        if select_json is not MISSING:
            select = 0
            sp = Parser(select_json, f"table {table.name} select")
            for key, bit in _SELECT_NAMES:
                if sp.member(key, BOOLEAN, optional=True) is not False:
                    select |= bit
            if sp.finish() is not None:
                raise _fail(sp.error)
        else:
            select = INITIAL | INSERT | DELETE | MODIFY
        mt.select |= select
        if columns is not MISSING:
            for column in columns:
                if not isinstance(column, str):
                    raise MonitorError(syntax_error(columns, "array of column names expected"))
                if column not in table.columns:
                    raise MonitorError(syntax_error(
                        columns, f"{column} is not a valid column name"))
                if not mt.add_column(column, select):
                    raise MonitorError(syntax_error(
                        columns, f"column {column} mentioned more than once"))
        else:
            for column in table.default_columns():
                if not mt.add_column(column, select):
                    raise MonitorError(syntax_error(
                        NO_SYNTAX, f"column {column} mentioned more than once"))
        if self.version != V1:
            cond = Condition.parse(table, where) if where is not MISSING else Condition()
            mt.old_condition = cond
            mt.new_condition = Condition(list(cond.clauses))

    # -- changes --------------------------------------------------------

    def add_changes(self, changes: dict, txn_id: str) -> None:
        """Accumulates commit ``txn_id`` (``ovsdb_monitor_changes_update``)."""
        self.pending_txns.append(txn_id)
        for table, rows in changes.items():
            mt = self.tables.get(table)
            if mt is None:
                continue
            pending = self.pending.setdefault(table, {})
            for row_uuid, (old, new) in rows.items():
                key = str(row_uuid)
                change = pending.get(key)
                if change is None:
                    if old is not None and new is not None and not self._columns_changed(
                            mt, old, new):
                        continue
                    pending[key] = [old, new]
                elif new is not None:
                    change[1] = new
                else:
                    change[1] = None
                    if change[0] is None:
                        del pending[key]

    @staticmethod
    def _columns_changed(mt: MonitorTable, old: dict, new: dict) -> bool:
        """Whether a column C's ``mt->columns`` holds changed: the monitored
        ones and those the conditions read."""
        cols = [c for c, _ in mt.columns]
        if mt.new_condition is not None:
            cols += [c.column for c in mt.new_condition.clauses if c.ctype is not None]
            cols += [c.column for c in mt.old_condition.clauses if c.ctype is not None]
        return any(old.get(c) != new.get(c) for c in cols)

    def needs_flush(self) -> bool:
        return bool(self.pending_txns) and any(self.pending.values())

    def flush(self, cache: dict | None = None) -> list | None:
        """What changed since the last flush: ``[<table-updates>, encoded or None]``, or None.

        Monitors without conditions that watch the same columns and flush
        after the same commits send the same update, so (like C's
        ``json_cache``) it is composed once per database and kept in
        ``cache``, where the caller may also keep its encoded form.
        """
        if not self.pending_txns:
            return None
        pending, txns = self.pending, tuple(self.pending_txns)
        self.pending, self.pending_txns = {}, []
        if not any(pending.values()):
            return None
        key = None
        if cache is not None:
            signature = self.signature()
            if signature is not None:
                key = (signature, txns)
                entry = cache.get(key)
                if entry is not None:
                    return entry
        update = self._compose(pending, initial=False)
        if update is None:
            return None
        entry = [update, None]
        if key is not None:
            cache[key] = entry
        return entry

    def signature(self) -> tuple | None:
        """What the updates of this monitor depend on, or None when its
        conditions make them specific to it."""
        if self._signature is False:
            self._signature = self._compute_signature()
        return self._signature

    def _compute_signature(self) -> tuple | None:
        parts = []
        for name, mt in self.tables.items():
            for cond in (mt.old_condition, mt.new_condition):
                if cond is not None and (not cond.is_true or any(
                        c.ctype is not None for c in cond.clauses)):
                    return None
            parts.append((name, tuple(mt.columns), mt.select))
        return (self.version, tuple(parts))

    def initial(self, db_tables: dict) -> Any:
        """The initial contents (``ovsdb_monitor_get_initial``), or None if empty."""
        pending = {}
        for name, mt in self.tables.items():
            if mt.select & INITIAL:
                pending[name] = {str(u): [None, row] for u, row in db_tables.get(name, {}).items()}
        return self._compose(pending, initial=True)

    def changes_since(self, history: list[dict]) -> Any:
        """Update for the commits after a client's last one (monitor_cond_since, found)."""
        saved = self.pending, self.pending_txns
        self.pending, self.pending_txns = {}, []
        for changes in history:
            self.add_changes(changes, "")
        pending = self.pending
        self.pending, self.pending_txns = saved
        return self._compose(pending, initial=False)

    def _compose(self, pending: dict, initial: bool):
        out: dict = {}
        for name, mt in self.tables.items():
            rows = pending.get(name)
            if not rows:
                continue
            table_json = {}
            for row_uuid, (old, new) in rows.items():
                if self.version == V1:
                    row_json = self._row_update1(mt, old, new, initial)
                else:
                    row_json = self._row_update2(mt, old, new, initial)
                if row_json is not None:
                    table_json[row_uuid] = row_json
            if table_json:
                out[name] = table_json
        return out or None

    @staticmethod
    def _type(old, new, initial: bool) -> int:
        return INITIAL if initial else INSERT if old is None else DELETE if new is None else MODIFY

    def _row_update1(self, mt: MonitorTable, old, new, initial: bool):
        kind = self._type(old, new, initial)
        if not mt.select & kind:
            return None
        if kind == MODIFY:
            changed = {c for c, _ in mt.columns if old.get(c) != new.get(c)}
            if not changed:
                return None
        row: dict = {}
        if kind & (DELETE | MODIFY):
            row["old"] = {}
        if kind & (INITIAL | INSERT | MODIFY):
            row["new"] = {}
        for column, select in mt.columns:
            if not kind & select:
                continue
            default = mt.schema.columns[column].default
            if kind == DELETE or (kind == MODIFY and column in changed):
                row["old"][column] = old.get(column, default)
            if kind != DELETE:
                row["new"][column] = new.get(column, default)
        return row

    def _row_update2(self, mt: MonitorTable, old, new, initial: bool, whole_row=False):
        kind = self._type(old, new, initial)
        old_cond, new_cond = mt.old_condition, mt.new_condition
        o = old is not None and old_cond.matches(old)
        n = new is not None and new_cond.matches(new)
        if not o and not n:
            return None
        if kind in (INITIAL, INSERT):
            if not n:
                return None
        elif kind == MODIFY:
            kind = INSERT if not o else DELETE if not n else MODIFY
        elif not o:
            return None
        if not mt.select & kind:
            return None
        if kind == DELETE:
            return {"delete": None}
        columns = mt.schema.columns
        diff: dict = {}
        if kind == MODIFY:
            for column, select in mt.columns:
                a, b = old.get(column), new.get(column)
                if a != b and kind & select:
                    diff[column] = columns[column].diff(a, b)
            if not diff and not self._columns_changed(mt, old, new):
                return None
            return {"modify": diff}
        for column, select in mt.columns:
            if not kind & select:
                continue
            ctype = columns[column]
            value = new.get(column, ctype.default)
            if value != ctype.default:
                diff[column] = value
        return {"initial" if kind == INITIAL else "insert": diff}

    # -- monitor_cond_change ----------------------------------------------

    def set_condition(self, table: str, where) -> None:
        mt = self.tables[table]
        if mt.new_condition is None:  # a "monitor" (v1) monitor has no conditions
            return
        mt.new_condition = Condition.parse(mt.schema, where if where is not None else [])
        self._signature = False

    def condition_change_update(self, db_tables: dict):
        """Rows that start or stop matching (``ovsdb_monitor_compose_cond_change_update``)."""
        out: dict = {}
        for name, mt in self.tables.items():
            if mt.new_condition is None or mt.old_condition.same_as(mt.new_condition):
                continue
            table_json = {}
            for row_uuid, row in db_tables.get(name, {}).items():
                row_json = self._row_update2(mt, row, row, initial=False)
                if row_json is not None:
                    table_json[str(row_uuid)] = row_json
            if table_json:
                out[name] = table_json
            mt.old_condition = mt.new_condition
        self._signature = False
        return out or None


# --------------------------------------------------------------------------

class History:
    """Recent commits of one database, for ``monitor_cond_since``.

    Bounded as ``ovsdb_txn_history_run`` bounds a clustered database's
    history: at most 100 transactions, and no more atoms (in the old and new
    versions of the changed rows) than the database holds, always keeping the
    latest transaction.
    """

    MAX_TXNS = 100

    def __init__(self):
        self._entries: deque = deque()   # (txn_id, changes, atoms)
        self._atoms = 0

    @property
    def last_txn_id(self) -> str:
        return self._entries[-1][0] if self._entries else ZERO_UUID

    def append(self, txn_id: str, changes: dict, atoms: int, db_atoms: int) -> None:
        self._entries.append((txn_id, changes, atoms))
        self._atoms += atoms
        while len(self._entries) > 1 and (len(self._entries) > self.MAX_TXNS
                                          or self._atoms > db_atoms):
            _, _, dropped = self._entries.popleft()
            self._atoms -= dropped

    def __len__(self) -> int:
        return len(self._entries)

    def changes_after(self, txn_id: str) -> list[dict] | None:
        """The changes of every transaction after ``txn_id``, or None if unknown."""
        for i, (tid, _, _) in enumerate(self._entries):
            if tid == txn_id:
                return [changes for _, changes, _ in list(self._entries)[i + 1:]]
        return None
