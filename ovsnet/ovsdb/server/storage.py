"""The standalone OVSDB database file, as ovsdb-server and ovsdb-tool read and write it.

Mirrors ``ovsdb/log.c`` (records: ``OVSDB JSON <length> <sha1>\\n`` then
``<length>`` bytes of JSON ending in a new-line; a lock file
``.<name>.~lock~`` held while the file is open for writing; atomic
replacement through ``<name>.tmp`` and ``rename``), ``ovsdb/file.c`` (the
first record is the schema, every other one a transaction: table -> row
UUID -> the row's non-default persistent columns for an insert, the diff of
each changed persistent column for a modify (``"_is_diff": true``), ``null``
for a delete, plus ``_date`` and ``_comment``) and the reading loop of
``ovsdb/ovsdb-server.c``: replay every record; a record that is torn or
corrupt (bad header, short body, wrong SHA-1, not JSON) or that does not fit
the database ends the log there -- :func:`open_database` truncates it, as C
does on its next write -- while a record whose commit fails is logged and
skipped.

Compaction (``ovsdb_snapshot``) rewrites the file as the schema plus one
record holding every row, when the log has grown past 10 MB and to more than
twice its size after the last compaction, with at least 100 records, as
``ovsdb_log_grew_lots`` and ``ovsdb_storage_should_snapshot`` decide.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import time
from pathlib import Path

from ...errors import OvsdbError
from .cjson import c_integer, dumps, shash_order
from .commit import Txn
from .datum import OpError, datum_apply_diff, datum_diff, is_uuid_string, syntax_error
from .engine import Database
from .protocol import dumps as fast_dumps
from .protocol import encode_value
from .schema import OvsdbSchemaError, load_schema, schema_from_json

log = logging.getLogger("ovsnet.ovsdb.server")

MAGIC = "JSON"
_HEADER = f"OVSDB {MAGIC} %d %s\n".encode()
_HEADER_RE = re.compile(rb"OVSDB ([^ \n]*) ([0-9]+) ([0-9a-fA-F]{40})\n")
#: ovsdb_log_grew_lots: at least this big, and twice the size after the last snapshot
COMPACT_MIN_BYTES = 10 * 1024 * 1024
COMPACT_MIN_RECORDS = 100


class StorageError(OvsdbError):
    """A database file that cannot be opened, read or written."""


class _RecordError(Exception):
    """A transaction record that does not fit the database (C stops reading there)."""

    def __init__(self, error: OpError):
        super().__init__(str(error))
        self.error = error


# -- records (log.c) ------------------------------------------------------------------

def compose_record(text: str) -> bytes:
    """``ovsdb_log_compose_record``: header plus data line for one JSON text."""
    return _compose((text + "\n").encode("utf-8", "surrogatepass"))


def _compose(data: bytes) -> bytes:
    """Header plus ``data`` (one JSON text and its new-line, in UTF-8)."""
    return _HEADER % (len(data), hashlib.sha1(data).hexdigest().encode()) + data


def read_records(data: bytes, name: str = "database"):
    """Parses log records: (list of (offset, json), offset of the end of the last good
    record, error message or None)."""
    records = []
    offset = 0
    end = len(data)
    while offset < end:
        nl = data.find(b"\n", offset, offset + 127)
        header = data[offset:nl + 1] if nl >= 0 else data[offset:offset + 127]
        m = _HEADER_RE.fullmatch(header)
        if m is None or m.group(1).decode("ascii", "replace") != MAGIC or int(m.group(2)) == 0:
            shown = header.split(b"\n")[0].decode("utf-8", "replace")
            return records, offset, (f"{name}: parse error at offset {offset} in header line "
                                     f'"{shown}"')
        length = int(m.group(2))
        start = nl + 1
        body = data[start:start + length]
        if len(body) != length:
            return records, offset, (f"{name}: error reading {length} bytes starting at "
                                     f"offset {start} (End of file)")
        if hashlib.sha1(body).hexdigest() != m.group(3).decode().lower():
            return records, offset, (f"{name}: {length} bytes starting at offset {start} "
                                     "have the wrong SHA-1 hash")
        try:
            value = json.loads(body.decode("utf-8", "surrogateescape"))
        except ValueError as e:
            return records, offset, (f"{name}: {length} bytes starting at offset {start} "
                                     f"are not valid JSON ({e})")
        if type(value) is not dict:
            return records, offset, (f"{name}: {length} bytes starting at offset {start} "
                                     "are not a JSON object")
        records.append((offset, value))
        offset = start + length
    return records, offset, None


# -- transactions as records (file.c) -------------------------------------------------

def _record_text(db: Database, record: dict, tables) -> str:
    """JSON text as C writes it: json.dumps does, unless reals are involved (C: %.15g)."""
    info = db._info
    if any(info[name].has_real for name in tables):
        return dumps(record, sort_keys=False)
    return fast_dumps(record)


def _record_data(db: Database, record: dict, tables) -> bytes:
    """``_record_text`` plus new-line, in UTF-8 as :func:`compose_record` encodes it."""
    info = db._info
    for name in tables:
        if info[name].has_real:
            return (dumps(record, sort_keys=False) + "\n").encode("utf-8", "surrogatepass")
    return encode_value(record, "surrogatepass") + b"\n"


def commit_record(db: Database, commit) -> str | None:
    """``ovsdb_file_txn_to_json`` + ``ovsdb_file_txn_annotate``: the record's JSON text,
    or None when no persistent column changed (C then writes nothing)."""
    record = _commit_json(db, commit)
    return None if record is None else _record_text(db, *record)


def _commit_json(db: Database, commit) -> tuple[dict, list] | None:
    """The record of :func:`commit_record` and the tables in it, or None."""
    record: dict = {}
    info = db._info
    for name, u, old, new, columns, new_json in commit.entries:
        ti = info[name]
        if new is None:
            row = None
        elif old is None:
            persistent, defaults = ti.persistent, ti.defaults
            row = {c: new_json[c] for c in columns
                   if c in persistent and new[c] != defaults[c]}
        else:
            row = {}
            persistent = ti.persistent
            for c in columns:
                column = persistent.get(c)
                if column is not None:
                    if column.type.n_max <= 1:
                        row[c] = new_json[c]
                    else:
                        row[c] = ti.to_json[c](datum_diff(old[c], new[c], column.type))
            if not row:
                continue
        table = record.get(name)
        if table is None:
            table = record[name] = {}
        table[u] = row
    if not record:
        return None
    tables = list(record)
    if commit.comment is not None:
        record["_comment"] = commit.comment
    record["_is_diff"] = True
    record["_date"] = int(time.time() * 1000)
    return record, tables


def snapshot_record(db: Database, comment: str | None = "compacting database online") -> str:
    """``ovsdb_to_txn_json``: every row as an insert, for a compacted file."""
    record: dict = {}
    for name, ti in db._info.items():
        jrows = db._json[name]
        if not jrows:
            continue
        persistent = list(ti.persistent)
        defaults_json = ti.defaults_json
        record[name] = {u: {c: j[c] for c in persistent if j[c] != defaults_json[c]}
                        for u, j in jrows.items()}
    tables = list(record)
    if comment is not None:
        record["_comment"] = comment
    record["_is_diff"] = True
    record["_date"] = int(time.time() * 1000)
    return _record_text(db, record, tables)


def replay_into(db: Database, txn: Txn, record: dict, is_diff: bool) -> None:
    """``ovsdb_file_txn_from_json``: stages one record's changes in ``txn``."""
    try:
        _replay(db, txn, record, is_diff)
    except OpError as e:
        raise _RecordError(e) from None


def _replay(db: Database, txn: Txn, record: dict, is_diff: bool) -> None:
    for table_name in shash_order(record):
        j = record[table_name]
        ti = db._info.get(table_name)
        if ti is None:
            if table_name == "_date" and c_integer(j) is not None:
                continue
            if table_name == "_is_diff" and type(j) is bool:
                continue
            if table_name == "_comment":
                continue
            raise syntax_error(record, "unknown table", f"No table named {table_name}.")
        if type(j) is not dict:
            raise syntax_error(j, None, "object expected")
        for key in shash_order(j):
            if not is_uuid_string(key):
                raise syntax_error(j, None, f'"{key}" is not a valid UUID')
            u = key.lower()
            row_json = j[key]
            current = txn.get(table_name, u)
            if row_json is None:
                if current is None:
                    raise OpError("syntax error",
                                  f"transaction deletes row {u} that does not exist")
                txn.delete(table_name, current)
            elif current is not None:
                if type(row_json) is not dict:
                    raise syntax_error(row_json, None, "row must be JSON object")
                _update_row(ti, txn.modify(table_name, current, row_json), row_json, is_diff)
            else:
                row = dict(ti.defaults)
                row["_uuid"] = (u,)
                _update_row(ti, row, row_json, is_diff)
                txn.insert(table_name, u, row, set(row_json))


def _update_row(ti, row: dict, j, is_diff: bool) -> None:
    """``ovsdb_file_update_row_from_json``."""
    if type(j) is not dict:
        raise syntax_error(j, None, "row must be JSON object")
    columns = ti.schema.columns
    for name in shash_order(j):
        column = columns.get(name)
        if column is None:
            raise syntax_error(j, "unknown column", f"No column {name} in table {ti.name}.")
        datum = column.type.parse(j[name], None)
        if is_diff and row[name] != ti.defaults[name]:
            new = datum_apply_diff(row[name], datum, column.type)
            if not (column.type.n_min <= len(new) <= column.type.n_max):
                raise OpError("ovsdb error", "Datum crated by diff has size error")
            row[name] = new
        else:
            row[name] = datum


# -- the file -------------------------------------------------------------------------

def _lock_path(path: Path) -> Path:
    return path.parent / f".{path.name}.~lock~"


class FileStorage:
    """An open standalone database file: appends one record per commit.

    Holds the file's lock (``.<name>.~lock~``, as ``lockfile_lock``) until
    :meth:`close`, so a real ovsdb-server or ``ovsdb-tool`` cannot write the
    same file meanwhile.
    """

    def __init__(self, path: str | Path, db: Database | None = None):
        self.path = Path(path)
        #: the database whose commits are written (set by :func:`open_database`)
        self.db = db
        self._lock_fd = _acquire_lock(self.path)
        try:
            self._fd = os.open(self.path, os.O_RDWR)
        except OSError as e:
            os.close(self._lock_fd)
            raise StorageError(f"{self.path}: open failed ({e.strerror})") from e
        self.offset = os.fstat(self._fd).st_size
        self.base = self.offset
        self.n_records = 0
        self.compactions = 0

    def write(self, commit, durable: bool = False) -> None:
        """Appends ``commit`` (a no-op if it changed no persistent column).

        Call it before acknowledging the commit; ``durable`` adds an fsync.
        Raises OSError on failure, leaving the file as it was.
        """
        if self._fd is None:
            raise OSError(f"{self.path}: storage is closed")
        if self.db is None:
            raise StorageError(f"{self.path}: no database attached to this storage")
        record = _commit_json(self.db, commit)
        if record is None:
            return
        self._append(_compose(_record_data(self.db, *record)), durable)
        self.n_records += 1
        if self.should_compact():
            try:
                self.compact()
            except OSError as e:
                log.error("%s: compaction failed: %s", self.path, e)

    def _append(self, data: bytes, durable: bool) -> None:
        try:
            n = os.pwrite(self._fd, data, self.offset)
            if n < len(data):
                view = memoryview(data)
                while n < len(data):
                    n += os.pwrite(self._fd, view[n:], self.offset + n)
            if durable:
                os.fdatasync(self._fd)
        except OSError:
            try:
                os.ftruncate(self._fd, self.offset)
            except OSError:
                pass
            raise
        self.offset += len(data)

    def should_compact(self) -> bool:
        """``ovsdb_log_grew_lots`` and at least 100 records (``ovsdb_storage_should_snapshot``)."""
        return (self.n_records >= COMPACT_MIN_RECORDS and self.offset > COMPACT_MIN_BYTES
                and self.offset // 2 > self.base)

    def compact(self) -> None:
        """Rewrites the file as schema + snapshot, atomically (``ovsdb_log_replace``)."""
        if self.db is None:
            raise StorageError(f"{self.path}: no database attached to this storage")
        data = (compose_record(dumps(self.db.schema_json, sort_keys=False))
                + compose_record(snapshot_record(self.db)))
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.rename(tmp, self.path)
        _fsync_dir(self.path.parent)
        os.close(self._fd)
        self._fd = fd
        self.offset = self.base = len(data)
        self.n_records = 0
        self.compactions += 1

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock_fd is not None:
            # Like lockfile_unlock, the lock file stays (unlinking it would race with
            # a process about to lock it).
            _LOCKED.discard(os.path.realpath(_lock_path(self.path)))
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


#: lock files this process holds (fcntl locks do not exclude the process itself)
_LOCKED: set[str] = set()


def _acquire_lock(path: Path) -> int:
    """``lockfile_lock``: an exclusive fcntl lock on ``.<name>.~lock~``."""
    lock = _lock_path(path)
    key = os.path.realpath(lock)
    if key in _LOCKED:
        raise StorageError(f"{path}: failed to lock lockfile (Resource deadlock avoided): "
                           "this process already has the database open")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        raise StorageError(f"{path}: failed to lock lockfile ({e.strerror}): another "
                           "ovsdb-server or ovsdb-tool has the database open") from e
    _LOCKED.add(key)
    return fd


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def create_database(path: str | Path, schema_json: dict | None = None) -> None:
    """``ovsdb-tool create``: a new file holding only the (checked) schema."""
    path = Path(path)
    schema = schema_from_json(schema_json if schema_json is not None else load_schema())
    data = compose_record(dumps(schema.to_json(), sort_keys=False, shash=True))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    _fsync_dir(path.parent)


def open_database(path: str | Path, schema_json: dict | None = None):
    """``(Database, FileStorage)`` for a database file, created first if absent or empty.

    ``schema_json`` (default: the shipped Open_vSwitch schema) is only used
    to create a file. The database holds exactly what the valid records say.
    """
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        if path.exists():
            path.unlink()
        create_database(path, schema_json)
    storage = FileStorage(path)
    try:
        db = _load(storage)
    except BaseException:
        storage.close()
        raise
    storage.db = db
    return db, storage


def _load(storage: FileStorage) -> Database:
    path = storage.path
    with open(path, "rb") as f:
        data = f.read()
    records, good_end, error = read_records(data, str(path))
    if not records:
        raise StorageError(error or f"{path}: unexpected end of file reading schema")
    try:
        db = Database(records[0][1], stored=True)
    except OvsdbSchemaError as e:
        raise StorageError(f"{path}: {e}") from e
    for offset, record in records[1:]:
        try:
            db.replay(record, record.get("_is_diff") is True)
        except _RecordError as e:
            error, good_end = f"{path}: {e}", offset
            break
        except OpError as e:
            log.error("%s: transaction at offset %d not replayed: %s", path, offset, e)
        storage.n_records += 1
    if good_end < len(data):
        log.error("%s", error)
        log.warning("%s: truncating %d bytes of unusable log records at offset %d", path,
                    len(data) - good_end, good_end)
        os.ftruncate(storage._fd, good_end)
    storage.offset = good_end
    # ovsdb_log_mark_base: the size once the first transaction has been read.
    storage.base = records[2][0] if len(records) > 2 else (good_end if len(records) == 2 else 0)
    return db
