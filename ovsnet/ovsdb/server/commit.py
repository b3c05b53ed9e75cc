"""A transaction's changes and what happens to them at commit time.

Mirrors ``ovsdb/transaction.c``. While operations execute, a :class:`Txn`
is an overlay on the committed tables: one :class:`TxnRow` (old row, new
row, reference count) per row the transaction touched, so later operations
see earlier ones. ``precommit`` then runs C's ``ovsdb_txn_precommit`` steps
in C's order, each over every transaction row including rows pulled in by an
earlier step:

1. ``determine_changes``: drop rows that did not really change;
2. ``update_ref_counts``: count strong references ("references nonexistent
   row"), then refuse to delete rows still referenced ("cannot delete ...
   because of N remaining reference(s)");
3. ``collect_garbage``: delete rows of non-root tables that nothing strongly
   references any more, recursively;
4. ``check_max_rows``;
5. ``assess_weak_refs``: drop weak references to rows that do not exist,
   failing if that empties a column that must not be empty;
6. ``check_index_uniqueness``, with C's long explanation of the duplicate;
7. ``update_version``: a fresh ``_version`` for every modified row.

:func:`apply` makes the result the committed state and returns the
:class:`Commit` that monitors and storage consume. Rows are dicts of
canonical datums (see :mod:`.datum`); the committed state also keeps each
row's JSON form, which is what :attr:`Database.tables` shows.
"""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass, field

from .datum import ZERO_UUID, OpError, datum_compare, datum_to_string, new_uuid

#: ``TxnRow.changed`` of an inserted or deleted row: every column
ALL = None


@dataclass(eq=False)
class Commit:
    """One committed transaction, as monitors and storage see it.

    ``changes`` maps table -> row UUID -> ``(old, new)``: rows as
    ``{column: JSON datum}`` with every column (``_uuid`` and ``_version``
    included); ``old`` is None for an insert, ``new`` None for a delete. The
    row dicts are shared with :attr:`Database.tables` and must not be modified.
    """

    #: the transaction's id, as lowercase text (:attr:`txn_id` is the same as a UUID)
    txn_text: str
    changes: dict[str, dict[uuidlib.UUID, tuple[dict | None, dict | None]]]
    comment: str | None = None
    durable: bool = False
    #: C's ``txn->n_atoms`` (atoms in the old and new versions of the changed rows,
    #: map values counted too) and ``n_atoms_diff`` (new minus old), which
    #: ovsdb-server uses to bound its transaction history
    n_atoms: int = 0
    n_atoms_diff: int = 0
    #: (table, uuid, old row, new row, columns, new JSON row) with rows in canonical
    #: form; columns are the changed ones of a modified row, those that may differ
    #: from their defaults for an inserted row, None for a deleted row
    entries: list = field(default_factory=list, repr=False)

    @property
    def txn_id(self) -> uuidlib.UUID:
        return _uuid_obj(self.txn_text)


class TableInfo:
    """What the engine precomputes about one table (``struct ovsdb_table`` + schema)."""

    def __init__(self, ts):
        self.schema = ts
        self.name = ts.name
        self.columns = list(ts.columns.values())  # C's iteration order
        self.is_root = ts.is_root
        self.max_rows = ts.max_rows
        self.indexes = ts.indexes
        self.single_indexes = {index[0]: i for i, index in enumerate(ts.indexes)
                               if len(index) == 1}
        self.to_json = {c.name: c.type.to_json_datum for c in self.columns}
        self.defaults = {c.name: c.type.default for c in self.columns}
        self.defaults_json = {c.name: c.type.to_json_datum(c.type.default) for c in self.columns}
        #: persistent columns written to storage (not ``_uuid``, which is the row's key)
        self.persistent = {c.name: c for c in self.columns if c.persistent and c.name != "_uuid"}
        #: atoms per element of each column (2 for a map: key and value)
        self.weights = {c.name: 1 if c.type.value is None else 2 for c in self.columns}
        self.default_atoms = sum(len(c.type.default) * self.weights[c.name]
                                 for c in self.columns)
        self.has_real = any(c.type.key.type == "real"
                            or (c.type.value is not None and c.type.value.type == "real")
                            for c in self.columns)
        self.strong = self._refs(lambda b: b.is_strong_ref())
        self.weak = self._refs(lambda b: b.is_weak_ref())
        #: columns that may hold references (strong or weak)
        self.ref_columns = tuple(dict.fromkeys(c.name for c, _, _ in self.strong + self.weak))
        #: an inserted row of this table whose ref_columns are empty is left alone by
        #: every precommit step but check_max_rows (see Txn.precommit)
        self.plain_inserts = self.is_root and not self.indexes
        # Defaults that violate their column's constraints, in C's column order
        # (ovsdb_execute_insert checks every 1-element datum).
        self.default_violations: list[tuple[str, OpError]] = []
        for c in self.columns:
            d = c.type.default
            if len(d) != 1:
                continue
            try:
                if c.type.value is None:
                    c.type.key.parse(c.type.to_json_datum(d), None)
                else:
                    k, v = d[0]
                    c.type.key.parse(_atom_json(k, c.type.key.type), None)
                    c.type.value.parse(_atom_json(v, c.type.value.type), None)
            except OpError as e:
                e.__traceback__ = None  # keep no frames alive from a long-lived table
                self.default_violations.append((c.name, e))

    def _refs(self, pred) -> list[tuple]:
        """(column, key ref table or None, value ref table or None) for matching columns."""
        out = []
        for c in self.columns:
            k = c.type.key.ref_table_name if pred(c.type.key) else None
            v = (c.type.value.ref_table_name
                 if c.type.value is not None and pred(c.type.value) else None)
            if k or v:
                out.append((c, k, v))
        return out


def _atom_json(atom, atype):
    return ["uuid", atom] if atype == "uuid" else atom


class TxnRow:
    """``struct ovsdb_txn_row``: one row touched by the transaction."""

    __slots__ = ("table", "uuid", "old", "new", "n_refs", "changed", "touched", "dead")

    def __init__(self, table: str, uuid: str, old, new, n_refs: int, touched=None):
        self.table = table
        self.uuid = uuid
        self.old = old
        self.new = new
        self.n_refs = n_refs
        self.changed = set() if old is not None and new is not None else ALL
        # Columns of ``new`` that may differ from ``old`` (or, for an insert, from
        # the column's default): the only ones commit time needs to look at.
        self.touched: set = touched if touched is not None else set()
        self.dead = False


def _ref_atoms(datum: tuple, key_ref, value_ref):
    """The UUIDs a datum's key and/or value atoms reference (pairs for maps)."""
    if key_ref and value_ref:
        for k, v in datum:
            yield key_ref, k
            yield value_ref, v
    elif value_ref:
        for _, v in datum:
            yield value_ref, v
    elif datum and type(datum[0]) is tuple:
        for k, _ in datum:
            yield key_ref, k
    else:
        for k in datum:
            yield key_ref, k


class Txn:
    """``struct ovsdb_txn``: an overlay of changes on the committed database."""

    def __init__(self, db):
        self.db = db
        self.tables: dict[str, dict[str, TxnRow]] = {}
        self.order: list[TxnRow] = []
        self.comments: list[str] = []

    # -- reading the current state -------------------------------------------------

    def get(self, table: str, uuid: str):
        """The row as the transaction sees it, or None."""
        ov = self.tables.get(table)
        if ov:
            tr = ov.get(uuid)
            if tr is not None:
                return tr.new
        return self.db._rows[table].get(uuid)

    def exists(self, table: str, uuid: str) -> bool:
        ov = self.tables.get(table)
        if ov:
            tr = ov.get(uuid)
            if tr is not None:
                return tr.new is not None
        return uuid in self.db._rows[table]

    def scan(self, table: str, match) -> list:
        """Every current row of ``table`` for which ``match(row)`` (None: all rows)."""
        committed = self.db._rows[table]
        ov = self.tables.get(table)
        if not ov:
            if match is None:
                return list(committed.values())
            return [r for r in committed.values() if match(r)]
        out = []
        for u, r in committed.items():
            tr = ov.get(u)
            if tr is not None:
                r = tr.new
                if r is None:
                    continue
            if match is None or match(r):
                out.append(r)
        for tr in ov.values():
            if tr.old is None and tr.new is not None and (match is None or match(tr.new)):
                out.append(tr.new)
        return out

    def may_create_row(self, table: str, uuid: str) -> bool:
        """``ovsdb_txn_may_create_row``: not present now, nor touched by this transaction."""
        ov = self.tables.get(table)
        if ov and uuid in ov:
            return False
        return uuid not in self.db._rows[table]

    # -- changing it -----------------------------------------------------------------

    def _table(self, table: str) -> dict[str, TxnRow]:
        ov = self.tables.get(table)
        if ov is None:
            ov = self.tables[table] = {}
        return ov

    def _add(self, tr: TxnRow) -> TxnRow:
        self._table(tr.table)[tr.uuid] = tr
        self.order.append(tr)
        return tr

    def insert(self, table: str, uuid: str, row: dict, touched: set) -> None:
        """``ovsdb_txn_row_insert`` (the caller has set ``_uuid``; ``_version`` is new).

        ``touched`` names every column the caller set (the rest have defaults).
        """
        row["_version"] = (new_uuid(),)
        touched.add("_uuid")
        touched.add("_version")
        self._add(TxnRow(table, uuid, None, row, 0, touched))

    def modify(self, table: str, row: dict, columns) -> dict:
        """``ovsdb_txn_row_modify``: the writable version of a current row, whose
        ``columns`` the caller is about to change."""
        uuid = row["_uuid"][0]
        ov = self.tables.get(table)
        if ov:
            tr = ov.get(uuid)
            if tr is not None:
                tr.touched.update(columns)
                return tr.new
        new = dict(row)
        self._add(TxnRow(table, uuid, row, new, self.db._nrefs[table].get(uuid, 0),
                         set(columns)))
        return new

    def delete(self, table: str, row: dict) -> None:
        """``ovsdb_txn_row_delete``."""
        uuid = row["_uuid"][0]
        ov = self._table(table)
        tr = ov.get(uuid)
        if tr is None:
            self._add(TxnRow(table, uuid, row, None, self.db._nrefs[table].get(uuid, 0)))
        elif tr.old is not None:
            tr.new = None
            tr.changed = ALL
        else:
            tr.dead = True
            del ov[uuid]

    def _find_or_make(self, table: str, uuid: str) -> TxnRow | None:
        """``find_or_make_txn_row``: the transaction row, pulling a committed row in."""
        ov = self.tables.get(table)
        if ov:
            tr = ov.get(uuid)
            if tr is not None:
                return tr
        row = self.db._rows[table].get(uuid)
        if row is None:
            return None
        return self._add(TxnRow(table, uuid, row, dict(row), self.db._nrefs[table].get(uuid, 0)))

    def _rounds(self):
        """``for_each_txn_row``: batches of live rows -- every row, table by table in
        the order the transaction first touched them, then the rows added meanwhile."""
        batch = [tr for ov in self.tables.values() for tr in ov.values()]
        mark = len(self.order)
        while batch:
            yield batch
            if len(self.order) == mark:
                return
            added = [tr for tr in self.order[mark:] if not tr.dead]
            mark = len(self.order)
            position = {name: i for i, name in enumerate(self.tables)}
            added.sort(key=lambda tr: position.get(tr.table, len(position)))
            batch = added

    def index_lookup(self, table: str, i: int, key: tuple, match) -> list:
        """Current rows whose index ``i`` has ``key`` and for which ``match(row)``."""
        out = []
        u = self.db._indexes[table][i].get(key)
        ov = self.tables.get(table)
        if u is not None and not (ov and u in ov):
            row = self.db._rows[table][u]
            if match(row):
                out.append(row)
        if ov:
            for tr in ov.values():
                if tr.new is not None and match(tr.new):
                    out.append(tr.new)
        return out

    # -- precommit -------------------------------------------------------------------

    def precommit(self) -> bool:
        """Runs C's precommit checks; False if nothing changed. Raises :class:`OpError`."""
        db = self.db
        info = db._info
        # Only inserts into root tables without indexes, referencing nothing? Then
        # every step below but check_max_rows has nothing to do (the common small
        # transaction): no references to count, no garbage (root rows are kept),
        # no weak references, no index, no modified row to give a new version.
        plain = True
        # determine_changes
        for tr in self.order:
            if tr.dead:
                continue
            if tr.old is None:
                if plain:
                    ti = info[tr.table]
                    if ti.plain_inserts:
                        new = tr.new
                        for c in ti.ref_columns:
                            if new[c]:
                                plain = False
                                break
                    else:
                        plain = False
                continue
            plain = False
            if tr.new is not None:
                old, new = tr.old, tr.new
                changed = {c for c in tr.touched if old[c] is not new[c] and old[c] != new[c]}
                if changed:
                    tr.changed = changed
                else:
                    tr.dead = True
                    del self.tables[tr.table][tr.uuid]
        for name in [t for t, ov in self.tables.items() if not ov]:
            del self.tables[name]
        if not self.tables:
            return False
        self.order = [tr for tr in self.order if not tr.dead]
        if plain:
            self._check_max_rows()
            return True

        # update_ref_counts
        for batch in self._rounds():
            for tr in batch:
                ti = info[tr.table]
                if ti.strong and not tr.dead:
                    self._update_row_ref_count(tr, ti)
        for batch in self._rounds():
            for tr in batch:
                if tr.new is None and tr.n_refs:
                    raise OpError("referential integrity violation",
                                  f"cannot delete {tr.table} row {tr.uuid} because of "
                                  f"{tr.n_refs} remaining reference(s)")

        # collect_garbage
        for batch in self._rounds():
            for tr in batch:
                if tr.new is not None and not tr.n_refs:
                    self._delete_garbage_row(tr)

        self._check_max_rows()

        # assess_weak_refs
        weak_in = db._weak_in
        for batch in self._rounds():
            for tr in batch:
                if tr.new is None:
                    if tr.old is not None:
                        sources = weak_in[tr.table].get(tr.uuid)
                        if sources:
                            for src_table, src_uuid in list(sources):
                                self._find_or_make(src_table, src_uuid)
                    continue
                ti = info[tr.table]
                if ti.weak:
                    self._assess_weak_refs(tr, ti)

        # check_index_uniqueness
        txn_indexes: dict[tuple, dict] = {}
        for batch in self._rounds():
            for tr in batch:
                if tr.new is None:
                    continue
                ti = info[tr.table]
                if not ti.indexes:
                    continue
                committed = db._indexes[tr.table]
                for i, index in enumerate(ti.indexes):
                    new = tr.new
                    key = (new[index[0]],) if len(index) == 1 else tuple(new[c] for c in index)
                    seen = txn_indexes.get((tr.table, i))
                    if seen is None:
                        seen = txn_indexes[(tr.table, i)] = {}
                    other = seen.get(key)
                    if other is not None:
                        raise self._duplicate(ti, index, (other.new, other), (new, tr))
                    u = committed[i].get(key)
                    if u is not None and u not in self.tables[tr.table]:
                        raise self._duplicate(ti, index, (db._rows[tr.table][u], None),
                                              (new, tr))
                    seen[key] = tr

        # update_version
        for tr in self.order:
            if (not tr.dead and tr.old is not None and tr.new is not None and tr.changed):
                tr.new["_version"] = (new_uuid(),)
                tr.changed.add("_version")
        return True

    def _check_max_rows(self) -> None:
        """``check_max_rows``."""
        db = self.db
        for name, ov in self.tables.items():
            ti = db._info[name]
            if ti.max_rows >= len(db._rows[name]) + len(ov):
                continue
            n = len(db._rows[name])
            for tr in ov.values():
                if tr.old is None:
                    n += tr.new is not None
                elif tr.new is None:
                    n -= 1
            if n > ti.max_rows:
                raise OpError("constraint violation",
                              f'transaction causes "{name}" table to contain {n} rows, '
                              f"greater than the schema-defined limit of {ti.max_rows} row(s)")

    def _update_row_ref_count(self, tr: TxnRow, ti: TableInfo) -> None:
        old, new, changed = tr.old, tr.new, tr.changed
        for column, key_ref, value_ref in ti.strong:
            name = column.name
            if changed is not ALL and name not in changed:
                continue
            if new is None:
                if old[name]:
                    self._adjust_refs(tr, old, column, old[name], key_ref, value_ref, -1)
            elif old is None:
                if new[name]:
                    self._adjust_refs(tr, new, column, new[name], key_ref, value_ref, 1)
            else:
                a, b = old[name], new[name]
                if column.type.n_max > 1:
                    sa, sb = set(a), set(b)
                    removed = tuple(x for x in a if x not in sb)
                    added = tuple(x for x in b if x not in sa)
                else:
                    removed, added = a, b
                self._adjust_refs(tr, old, column, removed, key_ref, value_ref, -1)
                self._adjust_refs(tr, new, column, added, key_ref, value_ref, 1)

    def _adjust_refs(self, tr, row, column, datum, key_ref, value_ref, delta: int) -> None:
        """``ovsdb_txn_adjust_row_refs``."""
        own = tr.uuid
        for ref_table, u in _ref_atoms(datum, key_ref, value_ref):
            if u == own:
                continue  # self-references don't count
            target = self._find_or_make(ref_table, u)
            if target is None:
                if delta < 0:
                    raise OpError("internal error", "error decreasing refcount")
                raise OpError("referential integrity violation",
                              f"Table {tr.table} column {column.name} row {own} references "
                              f"nonexistent row {u} in table {ref_table}.")
            target.n_refs += delta

    def _delete_garbage_row(self, tr: TxnRow) -> None:
        """``delete_garbage_row``: deletes an unreferenced non-root row and what it alone holds."""
        ti = self.db._info[tr.table]
        if ti.is_root:
            return
        row = tr.new
        tr.new = None
        tr.changed = ALL
        for column, key_ref, value_ref in ti.strong:
            datum = row[column.name]
            if not datum:
                continue
            for ref_table, u in _ref_atoms(datum, key_ref, value_ref):
                if u == tr.uuid:
                    continue
                target = self._find_or_make(ref_table, u)
                if target is None or not target.n_refs or target.new is None:
                    raise OpError("internal error", "strong ref target missing")
                target.n_refs -= 1
                if not target.n_refs:
                    self._delete_garbage_row(target)

    def _assess_weak_refs(self, tr: TxnRow, ti: TableInfo) -> None:
        """``assess_weak_refs`` for a row that survives the transaction."""
        new = tr.new
        exists = self.exists
        for column, key_ref, value_ref in ti.weak:
            name = column.name
            datum = new[name]
            if not datum:
                continue
            if column.type.value is None:
                kept = tuple(a for a in datum if exists(key_ref, a))
                gone = [a for a in datum if a not in kept] if len(kept) != len(datum) else ()
            else:
                kept = tuple(p for p in datum
                             if (not key_ref or exists(key_ref, p[0]))
                             and (not value_ref or exists(value_ref, p[1])))
                gone = ()
                if len(kept) != len(datum):
                    gone = [u for p in datum if p not in kept
                            for u in ((p[0],) if key_ref else ()) + ((p[1],) if value_ref else ())]
            if len(kept) == len(datum):
                continue
            new[name] = kept
            tr.touched.add(name)
            if tr.changed is not ALL:
                tr.changed.add(name)
            if len(kept) < column.type.n_min:
                if tr.old is None and ZERO_UUID in gone:
                    raise OpError(
                        "constraint violation",
                        f'Weak reference column "{name}" in "{tr.table}" row {tr.uuid} '
                        "(inserted within this transaction) contained all-zeros UUID "
                        "(probably as the default value for this column) but deleting this "
                        "value caused a constraint volation because this column is not "
                        "allowed to be empty.")
                raise OpError(
                    "constraint violation",
                    f"Deletion of {len(datum) - len(kept)} weak reference(s) to deleted (or "
                    f'never-existing) rows from column "{name}" in "{tr.table}" row {tr.uuid} '
                    f"{'' if tr.old is not None else '(inserted within this transaction) '}"
                    "caused this column to become empty, but constraints on this column "
                    "disallow an empty column.")

    def _duplicate(self, ti: TableInfo, index, a, b) -> OpError:
        """``duplicate_index_row``: the two rows in C's order, each explained."""
        if _row_compare(ti, a[0], b[0]) < 0:
            a, b = b, a
        types = {c.name: c.type for c in ti.columns}
        values = _columns_to_string(a[0], index, types)
        if len(index) == 1:
            cols = f'column "{index[0]}"'
        else:
            cols = "columns " + "".join(f'{_delimiter(i, len(index))}"{c}"'
                                        for i, c in enumerate(index))
        return OpError(
            "constraint violation",
            f'Transaction causes multiple rows in "{ti.name}" table to have identical values '
            f"({values}) for index on {cols}.  {_describe(index, a, 'First', types)}  "
            f"{_describe(index, b, 'Second', types)}")


def _delimiter(i: int, n: int) -> str:
    """``english_list_delimiter``."""
    if i == 0:
        return ""
    if i < n - 1:
        return ", "
    return ", and " if n > 2 else " and "


def _columns_to_string(row: dict, columns, types) -> str:
    return "".join(_delimiter(i, len(columns)) + datum_to_string(row[c], types[c])
                   for i, c in enumerate(columns))


def _describe(index, entry, title: str, types) -> str:
    row, tr = entry
    s = f"{title} row, with UUID {row['_uuid'][0]}, "
    if tr is None or (tr.changed is not ALL and not tr.changed):
        return s + ("existed in the database before this transaction and was not modified "
                    "by the transaction.")
    if tr.old is None:
        return s + "was inserted by this transaction."
    if all(tr.old[c] == tr.new[c] for c in index):
        return s + ("existed in the database before this transaction, which modified some of "
                    "the row's columns but not any columns in this index.")
    return (s + "had the following index values before the transaction: "
            + _columns_to_string(tr.old, index, types) + ".")


def _row_compare(ti: TableInfo, a: dict, b: dict) -> int:
    """``ovsdb_row_compare_columns_3way`` over every column, in C's column order."""
    for c in ti.columns:
        cmp = datum_compare(a[c.name], b[c.name], c.type.value is not None)
        if cmp:
            return cmp
    return 0


def apply(txn: Txn, comment: str | None, durable: bool) -> Commit:
    """``ovsdb_txn_complete``: makes the transaction the committed state."""
    db = txn.db
    info = db._info
    changes: dict = {}
    entries: list = []
    uuid_objs = db._uuid_objs
    n_atoms = n_atoms_diff = 0
    for name, ov in txn.tables.items():
        ti = info[name]
        nrefs = db._nrefs[name]
        natoms = db._natoms[name]
        weights = ti.weights
        rows, jrows, public = db._rows[name], db._json[name], db.tables[name]
        to_json = ti.to_json
        indexes = db._indexes[name] if ti.indexes else None
        if indexes is not None:
            # Old index entries go before new ones are added (rows may swap keys).
            for tr in ov.values():
                if tr.old is not None and (tr.new is None or tr.changed):
                    for i, index in enumerate(ti.indexes):
                        key = tuple(tr.old[c] for c in index)
                        if indexes[i].get(key) == tr.uuid:
                            del indexes[i][key]
        table_changes = {}
        for u, tr in ov.items():
            old, new = tr.old, tr.new
            if new is None:
                nrefs.pop(u, None)
                if old is None:
                    continue  # inserted, then collected as garbage
                old_json = jrows.pop(u)
                del rows[u]
                key = uuid_objs.pop(u)
                del public[key]
                new_json = None
                count = natoms.pop(u)
                n_atoms += count
                n_atoms_diff -= count
            else:
                if tr.n_refs:
                    nrefs[u] = tr.n_refs
                elif u in nrefs:
                    del nrefs[u]
                changed = tr.changed
                if old is None:
                    new_json = dict(ti.defaults_json)
                    defaults = ti.defaults
                    count = ti.default_atoms
                    for c in tr.touched:
                        d = new[c]
                        if d is not defaults[c]:
                            new_json[c] = to_json[c](d)
                            count += (len(d) - len(defaults[c])) * weights[c]
                    key = uuid_objs[u] = _uuid_obj(u)
                    old_json = None
                    natoms[u] = count
                    n_atoms += count
                    n_atoms_diff += count
                elif not changed:
                    continue  # pulled in for its reference count only
                else:
                    old_json = jrows[u]
                    new_json = dict(old_json)
                    old_count = count = natoms[u]
                    for c in changed:
                        d = new[c]
                        new_json[c] = to_json[c](d)
                        count += (len(d) - len(old[c])) * weights[c]
                    key = uuid_objs[u]
                    natoms[u] = count
                    n_atoms += old_count + count
                    n_atoms_diff += count - old_count
                rows[u] = new
                jrows[u] = new_json
                public[key] = new_json
                if indexes is not None:
                    for i, index in enumerate(ti.indexes):
                        indexes[i][tuple(new[c] for c in index)] = u
            if ti.weak:
                _update_weak_index(db, ti, name, u, old, new, tr.changed)
            table_changes[key] = (old_json, new_json)
            entries.append((name, u, old, new, tr.touched if old is None else tr.changed,
                            new_json))
        if table_changes:
            changes[name] = table_changes
    db.n_atoms += n_atoms_diff
    return Commit(new_uuid(), changes, comment=comment, durable=durable,
                  entries=entries,
                  n_atoms=n_atoms, n_atoms_diff=n_atoms_diff)


_new_object = object.__new__
_set_attr = object.__setattr__
_SAFE_UNKNOWN = uuidlib.SafeUUID.unknown


def _uuid_obj(u: str) -> uuidlib.UUID:
    """``uuid.UUID(u)`` for a well-formed lowercase UUID string, without re-parsing it."""
    obj = _new_object(uuidlib.UUID)
    _set_attr(obj, "int", int(u.replace("-", ""), 16))
    _set_attr(obj, "is_safe", _SAFE_UNKNOWN)
    return obj


def _update_weak_index(db, ti: TableInfo, name: str, u: str, old, new, changed) -> None:
    """Keeps ``db._weak_in`` (target row -> rows weakly referencing it) up to date."""
    src = (name, u)
    weak_in = db._weak_in
    for column, key_ref, value_ref in ti.weak:
        c = column.name
        if changed is not ALL and c not in changed:
            continue
        if old is not None:
            for ref_table, target in _ref_atoms(old[c], key_ref, value_ref):
                refs = weak_in[ref_table].get(target)
                if refs is not None:
                    n = refs.get(src, 0) - 1
                    if n > 0:
                        refs[src] = n
                    else:
                        refs.pop(src, None)
                        if not refs:
                            del weak_in[ref_table][target]
        if new is not None:
            for ref_table, target in _ref_atoms(new[c], key_ref, value_ref):
                refs = weak_in[ref_table].setdefault(target, {})
                refs[src] = refs.get(src, 0) + 1
