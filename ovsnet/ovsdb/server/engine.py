"""The database engine of ovsnet's embedded ovsdb-server.

Mirrors ``struct ovsdb`` (``ovsdb/ovsdb.c``) and the entry point of
``ovsdb/execution.c``/``ovsdb/trigger.c`` that a ``transact`` request
reaches: :meth:`Database.transact` takes the operations of one request
(the JSON-RPC params after the database name) and answers exactly what
ovsdb-server 3.1 would put in the reply's ``result`` -- one element per
operation, C's error objects, ``null`` for operations not run after a
failure, and one extra error element when the commit itself fails.

Module map: :mod:`.schema` (schemas and types), :mod:`.datum` (values and
errors), :mod:`.execution` (operations), :mod:`.commit` (what happens at
commit time), :mod:`.storage` (the on-disk log).

A transaction whose ``wait`` is not yet satisfied is *pending*: the server
keeps it and runs it again, with the total time elapsed, after every commit
to this database and when ``pending_ms`` has passed (then the ``wait``
fails with C's "timed out" error).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .cjson import shash_reorder
from .commit import Commit, TableInfo, Txn, apply
from .datum import OpError, syntax_error
from .execution import Execution, execute
from .schema import schema_from_json

log = logging.getLogger("ovsnet.ovsdb.server")


@dataclass
class TransactResult:
    """The outcome of :meth:`Database.transact`.

    ``result`` is the reply's result array (None while pending).
    ``commit`` is set when the transaction changed the database.
    ``pending_ms`` is None for a finished transaction; for one waiting on a
    ``wait`` operation it is the number of milliseconds until the earliest
    ``wait`` timeout, or ``math.inf`` when no such operation has a timeout.
    """

    result: list | None
    commit: Commit | None = None
    pending_ms: float | None = None
    durable: bool = False
    comment: str | None = None

    @property
    def pending(self) -> bool:
        return self.pending_ms is not None


class Database:
    """One OVSDB database in memory: a schema, its tables, and transactions on them.

    ``tables`` maps table name -> row UUID (:class:`uuid.UUID`) -> row, each
    row ``{column: JSON datum}`` with every column; it is kept up to date by
    commits and must be treated as read-only. ``schema_json`` is the schema
    as ``get_schema`` returns it: C's normalised form, with object members in
    the order C writes them.

    ``schema_json`` is checked like ``ovsdb-tool create`` does (errors raise
    :class:`.schema.OvsdbSchemaError`). ``stored=True`` says it is the first
    record of a database file, taken as is.
    """

    def __init__(self, schema_json: dict, *, stored: bool = False):
        if not stored:
            # As ovsdb-tool create writes the schema and ovsdb-server reads it back:
            # C's column order (which decides which of several errors is reported)
            # follows from the text order of the schema in the database file.
            schema_json = shash_reorder(schema_from_json(schema_json).to_json())
        self.schema = schema_from_json(schema_json)
        # get_schema's reply, members in the order C writes them.
        self.schema_json = shash_reorder(self.schema.to_json())
        self.name = self.schema.name
        self._info = {name: TableInfo(ts) for name, ts in self.schema.tables.items()}
        names = list(self._info)
        self._rows: dict[str, dict[str, dict]] = {n: {} for n in names}
        self._json: dict[str, dict[str, dict]] = {n: {} for n in names}
        self.tables: dict = {n: {} for n in names}
        self._nrefs: dict[str, dict[str, int]] = {n: {} for n in names}
        self._natoms: dict[str, dict[str, int]] = {n: {} for n in names}
        #: atoms in the whole database (C's ``db->n_atoms``), kept by commits
        self.n_atoms = 0
        self._indexes = {n: [{} for _ in self._info[n].indexes] for n in names}
        self._weak_in: dict[str, dict] = {n: {} for n in names}
        self._uuid_objs: dict = {}
        self._callbacks: list = []

    # -- schema ----------------------------------------------------------------------

    def table_schema(self, name: str):
        """The :class:`.schema.TableSchema` of table ``name`` (KeyError if unknown)."""
        return self.schema.tables[name]

    # -- commits ---------------------------------------------------------------------

    def on_commit(self, callback) -> None:
        """Calls ``callback(commit)`` after every successful commit, in registration order."""
        self._callbacks.append(callback)

    def _committed(self, commit: Commit) -> None:
        for callback in self._callbacks:
            callback(commit)

    # -- transactions ----------------------------------------------------------------

    def transact(self, params, session=None, elapsed_ms: int = 0,
                 read_only: bool = False) -> TransactResult:
        """Runs one ``transact`` request's operations (the params after the database name).

        ``session`` answers ``holds_lock(name)`` for ``assert``; None means the
        server itself is transacting (then the rule that forbids changing a
        database whose name starts with ``_`` does not apply). ``elapsed_ms``
        is how long ago the request arrived, for ``wait`` timeouts.
        """
        if type(params) is not list:
            return TransactResult([syntax_error(params, None, "array expected").to_json()])
        elapsed_ms = int(elapsed_ms)
        txn = Txn(self)
        x = Execution(self, txn, session, elapsed_ms)
        try:
            results, error, pending = execute(x, params, read_only, session is not None)
        except Exception:  # a bug here must not take the server down: nothing was applied
            log.exception("%s: transaction failed unexpectedly", self.name)
            return TransactResult([{"error": "internal error",
                                    "details": "unexpected failure executing the transaction"}])
        if pending:
            return TransactResult(None, pending_ms=(
                float("inf") if x.timeout_ms == (1 << 63) - 1
                else max(0, x.timeout_ms - elapsed_ms)))
        if error is not None:
            return TransactResult(results, durable=x.durable)
        comment = "\n".join(txn.comments) if txn.comments else None
        try:
            changed = txn.precommit()
        except OpError as e:
            results.append(e.to_json())
            return TransactResult(results, durable=x.durable, comment=comment)
        except Exception:  # as above: the committed state is untouched until apply()
            log.exception("%s: commit failed unexpectedly", self.name)
            results.append({"error": "internal error",
                            "details": "unexpected failure committing the transaction"})
            return TransactResult(results, durable=x.durable, comment=comment)
        if not changed:
            return TransactResult(results, durable=x.durable, comment=comment)
        commit = apply(txn, comment, x.durable)
        if not commit.changes:  # e.g. only rows inserted and collected as garbage
            return TransactResult(results, durable=x.durable, comment=comment)
        self._committed(commit)
        return TransactResult(results, commit, durable=x.durable, comment=comment)

    def replay(self, record: dict, is_diff: bool) -> Commit | None:
        """Applies one transaction record of a database file (``ovsdb_file_txn_from_json``).

        Raises :class:`OpError` if the record does not fit the database (C then
        stops reading the file) or if committing it fails (C logs and skips it).
        """
        from .storage import replay_into
        txn = Txn(self)
        replay_into(self, txn, record, is_diff)
        if not txn.precommit():
            return None
        comment = record.get("_comment")
        commit = apply(txn, comment if type(comment) is str else None, False)
        if not commit.changes:
            return None
        self._committed(commit)
        return commit

    def __repr__(self) -> str:
        rows = sum(len(t) for t in self._rows.values())
        return f"<Database {self.name}: {len(self._rows)} tables, {rows} rows>"
