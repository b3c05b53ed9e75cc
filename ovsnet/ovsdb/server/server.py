"""The embedded ovsdb-server: databases, remotes and the JSON-RPC methods.

Mirrors ``ovsdb/jsonrpc-server.c`` (method dispatch, triggers, monitors,
error replies word for word), ``ovsdb/trigger.c`` (every ``transact`` is a
trigger: one whose ``wait`` is not yet satisfied is retried after each commit
to its database and when its timeout passes), the main loop of
``ovsdb/ovsdb-server.c`` and its ``_Server`` database (one ``Database`` row
per served database, model ``standalone``, connected and leader, with the
schema as a sorted compact JSON string and no cid/sid/index, as C writes
them for a standalone database).

Everything runs on one thread around a ``selectors`` loop; the only blocking
call is the wait for socket readiness or the next timer. Methods:
``list_dbs``, ``get_schema``, ``get_server_id``, ``transact``, ``cancel``,
``monitor``, ``monitor_cond``, ``monitor_cond_since``,
``monitor_cond_change``, ``monitor_cancel``, ``lock``, ``steal``,
``unlock``, ``set_db_change_aware``, ``echo``; anything else is answered
``{"error": "unknown method"}``.

A commit is written to the database's storage (when it has one) before the
reply to its transaction is queued, and before any client is told about it.

Deliberate differences from a standalone ovsdb-server 3.1:

- A bounded history of commits (C keeps one only for clustered and relay
  databases) lets ``monitor_cond_since`` answer ``found`` with just the
  difference, and ``update3`` carries real transaction ids;
  ``OvsdbServer(txn_history=False)`` restores C's standalone answers (zero
  ids, always a full dump).
- ``convert`` (schema conversion) is answered with a "not supported" error;
  only ``punix:`` and ``ptcp:`` remotes exist (no SSL, no active or ``db:``
  remotes, no unixctl, replication, clustering or RBAC).
- Update notifications of several monitors of one client go out in the order
  the monitors were created, not in C's hash order of their ids.
- Requests that make C abort or read out of bounds (a ``"true"``/``"false"``
  function inside a three-element condition, a ``monitor`` with fewer than
  three params, ``monitor_cond_change`` without ``where``) get a syntax error
  or an empty condition; an exception in the engine costs one request
  (``internal error``), not the process.
"""

from __future__ import annotations

import logging
import os
import re
import selectors
import socket
import stat
import time
import uuid as uuidlib
from pathlib import Path

from ...errors import BackendError
from . import protocol
from .monitor import V1, V2, V3, ZERO_UUID, History, Monitor, MonitorError, schema_tables
from .parser import ARRAY, MISSING, Parser
from .protocol import NO_SYNTAX, Message, syntax_error
from .session import (
    DEFAULT_PROBE_INTERVAL_MS,
    RECV_CHUNK,
    REQUESTS_PER_RUN,
    LockTable,
    Session,
    json_key,
)

log = logging.getLogger("ovsnet.ovsdb.server")

SERVER_SCHEMA_PATH = Path(__file__).with_name("_server.ovsschema")
SERVER_DB = "_Server"
UNIX_PATH_MAX = 107
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                      r"[0-9a-fA-F]{12}$")
_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ServedDb:
    """One database the server serves: engine, storage, monitors, triggers."""

    def __init__(self, name: str, db, storage=None, history: bool = True):
        self.name = name
        self.db = db
        self.storage = storage
        self.schema = schema_tables(db)
        self.history = History() if history else None
        self.monitors: list[Monitor] = []
        self.triggers: list[Trigger] = []
        self.run_triggers = False
        self.update_cache: dict = {}
        self.last_txn_id = ZERO_UUID


class Trigger:
    """``struct ovsdb_jsonrpc_trigger``: a transaction not answered yet."""

    __slots__ = ("session", "served", "request", "key", "created", "deadline")

    def __init__(self, session: Session, served: ServedDb, request: Message, now: int):
        self.session = session
        self.served = served
        self.request = request
        self.key: str | None = None   # json_key(request.id), once it waits
        self.created = now
        self.deadline: int | None = None


class Remote:
    """A listening socket (``punix:`` or ``ptcp:``)."""

    def __init__(self, spec: str, sock: socket.socket, path: str | None = None):
        self.spec = spec
        self.sock = sock
        self.path = path
        self.probe_interval_ms = 0 if path else DEFAULT_PROBE_INTERVAL_MS
        self.n_accepted = 0

    @property
    def address(self) -> str:
        """The address clients connect to (``unix:PATH`` or ``tcp:IP:PORT``)."""
        if self.path:
            return f"unix:{self.path}"
        host, port = self.sock.getsockname()[:2]
        return f"tcp:[{host}]:{port}" if ":" in host else f"tcp:{host}:{port}"


def parse_remote(spec: str) -> tuple[str, object]:
    """``punix:PATH`` -> ("unix", PATH); ``ptcp:PORT[:IP]`` -> ("tcp", (IP, PORT))."""
    if spec.startswith("punix:"):
        path = spec[len("punix:"):]
        if not path:
            raise BackendError(f"{spec}: missing socket path")
        if len(os.fsencode(path)) > UNIX_PATH_MAX:
            raise BackendError(f"{spec}: unix socket path longer than {UNIX_PATH_MAX} bytes")
        return "unix", path
    if spec.startswith("ptcp:"):
        rest = spec[len("ptcp:"):]
        port_s, _, host = rest.partition(":")
        host = host.strip("[]") or "127.0.0.1"
        try:
            port = int(port_s or "6640")
        except ValueError:
            raise BackendError(f"{spec}: bad port number {port_s!r}") from None
        if not 0 <= port <= 65535:
            raise BackendError(f"{spec}: bad port number {port}")
        return "tcp", (host, port)
    raise BackendError(f"unsupported remote {spec!r}: expected punix:PATH or ptcp:PORT[:IP]")


class OvsdbServer:
    """The server: add databases and remotes, then :meth:`run` (or :meth:`run_once`)."""

    def __init__(self, txn_history: bool = True):
        from . import Database, load_schema  # the engine (sibling modules)

        self.uuid = uuidlib.uuid4()
        self.txn_history = txn_history
        self.dbs: dict[str, ServedDb] = {}
        self.locks = LockTable()
        self.sessions: list[Session] = []
        self.remotes: list[Remote] = []
        self.selector = selectors.DefaultSelector()
        self._registered: dict[int, int] = {}   # fd -> events
        #: where sessions receive into (recv() would allocate RECV_CHUNK bytes per call)
        self.recv_view = memoryview(bytearray(RECV_CHUNK))
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._stopping = False
        self._busy = False
        self._server_db_changed = False
        self.closed = False
        self._t0 = time.monotonic()
        server_db = Database(load_schema(str(SERVER_SCHEMA_PATH)))
        self._add(SERVER_DB, server_db, None, history=False)

    # -- configuration --------------------------------------------------------

    def now_ms(self) -> int:
        return int((time.monotonic() - self._t0) * 1000)

    def add_database(self, db, storage=None) -> None:
        """Serves ``db`` (its schema's name); commits go to ``storage`` if given."""
        if db.name in self.dbs:
            raise BackendError(f"database {db.name} is already being served")
        self._add(db.name, db, storage, history=self.txn_history)
        self._update_server_status()

    def _add(self, name: str, db, storage, history: bool) -> None:
        served = ServedDb(name, db, storage, history)
        self.dbs[name] = served
        db.on_commit(lambda commit, served=served: self._on_commit(served, commit))
        if name == SERVER_DB:
            self._update_server_status()

    def add_remote(self, spec: str) -> Remote:
        """Listens on ``punix:PATH`` (mode 0600) or ``ptcp:PORT[:IP]``."""
        kind, where = parse_remote(spec)
        if kind == "unix":
            path = where
            try:
                if stat.S_ISSOCK(os.lstat(path).st_mode):
                    os.unlink(path)   # a stale socket, as make_unix_socket() removes it
            except FileNotFoundError:
                pass
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(path)
                os.chmod(path, 0o600)
                sock.listen(128)
            except OSError as e:
                sock.close()
                raise BackendError(f"{spec}: cannot listen: {e.strerror or e}") from None
            remote = Remote(spec, sock, path)
        else:
            host, port = where
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host, port))
                sock.listen(128)
            except OSError as e:
                sock.close()
                raise BackendError(f"{spec}: cannot listen: {e.strerror or e}") from None
            remote = Remote(spec, sock)
        sock.setblocking(False)
        self.remotes.append(remote)
        self.selector.register(sock, selectors.EVENT_READ, remote)
        return remote

    # -- the loop ---------------------------------------------------------------

    def run(self) -> None:
        """Serves until :meth:`stop` is called (from any thread or a signal handler)."""
        while not self._stopping:
            self.run_once()
        self.close()

    def stop(self) -> None:
        """Makes :meth:`run` return soon; safe from other threads and signal handlers."""
        self._stopping = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def run_once(self, timeout: float | None = -1) -> None:
        """One pass of the main loop: wait for sockets or timers, then do the work.

        ``timeout`` in seconds overrides the computed wait (None blocks).
        """
        if timeout == -1:
            timeout = self._timeout()
        self._update_registrations()
        for key, mask in self.selector.select(timeout):
            obj = key.data
            if obj is None:
                self._drain_wakeup()
            elif isinstance(obj, Remote):
                self._accept(obj)
            else:
                if mask & selectors.EVENT_WRITE:
                    obj.write()
                if mask & selectors.EVENT_READ and not obj.closed:
                    obj.read()
        self._busy = False
        now = self.now_ms()
        for s in list(self.sessions):
            try:
                self._run_session(s, now)
            except Exception:  # a bug must cost one connection, not the server
                log.exception("%s: dropping connection after an internal error", s.name)
                s.close("internal error")
        self._run_triggers(now)
        if self._server_db_changed:
            self._server_db_changed = False
            self._update_server_status()
        for s in list(self.sessions):
            if s.monitors and not s.closed and s.backlog == 0 and s.needs_flush():
                s.flush_monitors()

    def _timeout(self) -> float | None:
        if self._busy or self._stopping:
            return 0
        deadlines = []
        for served in self.dbs.values():
            if served.run_triggers:
                return 0
            if served.triggers:
                deadlines += [t.deadline for t in served.triggers if t.deadline is not None]
        for s in self.sessions:
            if s.closed:
                continue
            if s.backlog == 0 and (s.eof or (s.monitors and s.needs_flush())):
                return 0
            if s.probe_interval_ms:
                deadlines.append(s.probe_deadline())
        if not deadlines:
            return None
        # Wake up exactly when now_ms() reaches the deadline, as C's poll loop does.
        return max(0.0, self._t0 + min(deadlines) / 1000 - time.monotonic())

    def _drain_wakeup(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _update_registrations(self) -> None:
        registered = self._registered
        for s in self.sessions:
            # Session.wants_read() and wants_write(), inlined: this runs every pass.
            if s.closed:
                events = 0
            elif s.backlog:
                events = selectors.EVENT_WRITE
            else:
                events = 0 if s.eof else selectors.EVENT_READ
            fd = s.fd
            old = registered.get(fd, 0)
            if events == old:
                continue
            if old and events:
                self.selector.modify(s.sock, events, s)
            elif events:
                self.selector.register(s.sock, events, s)
            else:
                self.selector.unregister(s.sock)
            if events:
                self._registered[fd] = events
            else:
                self._registered.pop(fd, None)

    def _accept(self, remote: Remote) -> None:
        while True:
            try:
                sock, _ = remote.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                log.warning("%s: accept failed: %s", remote.spec, e)
                return
            sock.setblocking(False)
            remote.n_accepted += 1
            kind = "unix" if remote.path else "tcp"
            name = f"{kind}#{remote.n_accepted}"
            self.sessions.append(Session(self, sock, name, remote.probe_interval_ms))

    def session_closed(self, session: Session) -> None:
        """Forgets a closing session: its monitors, locks and triggers
        (``ovsdb_jsonrpc_session_close``), then its socket registration."""
        monitors = list(session.monitors.values())
        for served in self.dbs.values():
            served.monitors = [m for m in served.monitors if m not in monitors]
        for waiter in list(session.waiters.values()):
            self.unlock_waiter(waiter)
        for t in list(session.triggers.values()):
            self._remove_trigger(t)
        if self._registered.pop(session.fd, None):
            self.selector.unregister(session.sock)
        if session in self.sessions:
            self.sessions.remove(session)

    def _run_session(self, s: Session, now: int) -> None:
        """``ovsdb_jsonrpc_session_run``."""
        if s.closed:
            return
        if not (s.backlog or s.eof or s.framer.buffered or s.probe_interval_ms
                or (s.monitors and any(m.pending_txns for m in s.monitors.values()))):
            return   # nothing to do: skip the bookkeeping below
        if s.backlog:
            s.write()
        handled = 0
        while not s.closed and s.backlog == 0:
            s.flush_monitors()
            if handled == REQUESTS_PER_RUN:
                self._busy = True
                break
            msg = s.next_message()
            if msg is None:
                break
            handled += 1
            if msg.type == protocol.REQUEST:
                self._got_request(s, msg)
            elif msg.method == "cancel":
                self._cancel(s, msg)
        if not s.closed:
            s.run_probe(now)

    def close(self) -> None:
        """Closes every connection and listener (storage stays open)."""
        if self.closed:
            return
        self.closed = True
        for s in list(self.sessions):
            s.close("server shutting down")
        for remote in self.remotes:
            try:
                self.selector.unregister(remote.sock)
            except (KeyError, ValueError):
                pass
            remote.sock.close()
            if remote.path:
                try:
                    os.unlink(remote.path)
                except OSError:
                    pass
        self.remotes.clear()
        self.selector.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- commits -------------------------------------------------------------------

    def _on_commit(self, served: ServedDb, commit) -> None:
        txn_id = commit.txn_text
        changes = commit.changes
        if served.history is not None:
            # The engine counts atoms as transaction.c's count_atoms does.
            served.history.append(txn_id, changes, commit.n_atoms, served.db.n_atoms)
            served.last_txn_id = txn_id
        # Cached updates are keyed by the commits they cover: after a new
        # commit, only monitors that flush together again can share one.
        served.update_cache.clear()
        for monitor in served.monitors:
            monitor.add_changes(changes, txn_id)
        served.run_triggers = True
        if served.name == SERVER_DB:
            self._server_db_changed = True

    def update_cache(self, monitor: Monitor) -> dict | None:
        served = self.dbs.get(monitor.db_name)
        return served.update_cache if served is not None else None

    def update_params(self, monitor: Monitor, update) -> tuple[str, list]:
        """The method and params of an update notification for ``monitor``."""
        if monitor.version == V3:
            return "update3", [monitor.id, self.dbs[monitor.db_name].last_txn_id, update]
        return ("update" if monitor.version == V1 else "update2"), [monitor.id, update]

    def _update_server_status(self) -> None:
        """``update_server_status``: one _Server.Database row per served database."""
        server = self.dbs.get(SERVER_DB)
        if server is None:
            return
        rows = server.db.tables.get("Database", {})
        ops = []
        have = set()
        for row_uuid, row in rows.items():
            name = row.get("name")
            if name not in self.dbs:
                ops.append({"op": "delete", "table": "Database",
                            "where": [["_uuid", "==", ["uuid", str(row_uuid)]]]})
                continue
            have.add(name)
            want = self._database_row(name, with_schema=False)
            if any(row.get(k) != v for k, v in want.items()):
                ops.append({"op": "update", "table": "Database",
                            "where": [["_uuid", "==", ["uuid", str(row_uuid)]]], "row": want})
        for name in self.dbs:
            if name not in have:
                ops.append({"op": "insert", "table": "Database",
                            "row": self._database_row(name, with_schema=True)})
        if ops:
            result = server.db.transact(ops, session=None, elapsed_ms=0)
            errors = [r for r in result.result if isinstance(r, dict) and "error" in r]
            if errors:  # pragma: no cover - the engine refused its own bookkeeping
                raise BackendError(f"cannot update the _Server database: {errors[0]}")

    def _database_row(self, name: str, with_schema: bool) -> dict:
        row = {"name": name, "model": "standalone", "connected": True, "leader": True,
               "cid": ["set", []], "sid": ["set", []], "index": ["set", []]}
        if with_schema:
            row["schema"] = protocol.dumps(self.dbs[name].db.schema_json, sort_keys=True)
        return row

    # -- request dispatch (ovsdb_jsonrpc_session_got_request) -------------------

    def _lookup_db(self, s: Session, request: Message) -> ServedDb | None:
        params = request.params
        if not params or not isinstance(params[0], str):
            s.send(protocol.error_reply(syntax_error(
                params, f"{request.method} request params must begin with <db-name>"),
                request.id))
            return None
        served = self.dbs.get(params[0])
        if served is None:
            s.send(protocol.error_reply(syntax_error(
                params, f"{request.method} request specifies unknown database {params[0]}",
                "unknown database"), request.id))
            return None
        return served

    def _got_request(self, s: Session, request: Message) -> None:
        method = request.method
        handler = _METHODS.get(method)
        if handler is None:
            s.send(protocol.error_reply("unknown method", request.id))
            return
        try:
            handler(self, s, request)
        except Exception as e:  # a bug must cost one request, not the server
            log.exception("%s: %s request failed", s.name, method)
            for t in list(s.triggers.values()):
                if t.request is request:
                    self._remove_trigger(t)
            s.send(protocol.error_reply(protocol.ovsdb_error(
                "internal error", f"{type(e).__name__}: {e}"), request.id))

    def _m_transact(self, s: Session, request: Message) -> None:
        served = self._lookup_db(s, request)
        if served is None:
            return
        now = self.now_ms()
        # Only a transaction still waiting can share this one's id: the key is
        # needed when there is one, or when this one has to wait too.
        key = json_key(request.id) if s.triggers else None
        if key is not None and key in s.triggers:
            s.send(_syntax_error_reply(request, "duplicate request ID"))
            return
        t = Trigger(s, served, request, now)
        if not self._try_trigger(t, now):
            t.key = key if key is not None else json_key(request.id)
            s.triggers[t.key] = t
            served.triggers.append(t)

    def _m_convert(self, s: Session, request: Message) -> None:
        if self._lookup_db(s, request) is None:
            return
        s.send(protocol.error_reply(protocol.ovsdb_error(
            "not supported", "the embedded ovsdb-server does not convert database schemas"),
            request.id))

    def _m_monitor(self, s: Session, request: Message) -> None:
        served = self._lookup_db(s, request)
        if served is None:
            return
        version = {"monitor": V1, "monitor_cond": V2, "monitor_cond_since": V3}[request.method]
        try:
            result = self._monitor_create(s, served, request.params, version)
        except MonitorError as e:
            s.send(protocol.error_reply(e.error, request.id))
            return
        s.send(protocol.reply(result, request.id))

    def _monitor_create(self, s: Session, served: ServedDb, params: list, version: int):
        if ((version == V2 and len(params) != 3) or (version == V3 and len(params) != 4)
                or len(params) < 3):
            raise MonitorError(syntax_error(params, "invalid parameters"))
        monitor_id, requests = params[1], params[2]
        if not isinstance(requests, dict):
            raise MonitorError(syntax_error(requests, "monitor-requests must be object"))
        if json_key(monitor_id) in s.monitors:
            raise MonitorError(syntax_error(monitor_id, "duplicate monitor ID"))
        monitor = Monitor.create(monitor_id, version, served.name, served.schema, requests)
        update, found = None, False
        if version == V3:
            last_id = params[3]
            if not isinstance(last_id, str):
                raise MonitorError(syntax_error(last_id, "last-txn-id must be string"))
            if not _UUID_RE.match(last_id):
                raise MonitorError(syntax_error(last_id, "last-txn-id must be UUID format."))
            last_id = last_id.lower()
            if last_id != ZERO_UUID and served.history is not None:
                history = served.history.changes_after(last_id)
                if history is not None:
                    found = True
                    update = monitor.changes_since(history)
        if not found:
            update = monitor.initial(served.db.tables)
        s.monitors[json_key(monitor_id)] = monitor
        served.monitors.append(monitor)
        update = update if update is not None else {}
        if version == V3:
            return [found, served.last_txn_id, update]
        return update

    def _m_monitor_cond_change(self, s: Session, request: Message) -> None:
        params = request.params
        try:
            if len(params) != 3:
                raise MonitorError(syntax_error(params, "invalid parameters"))
            monitor = s.monitors.get(json_key(params[0]))
            if monitor is None:
                raise MonitorError(syntax_error(params[0], "unknown monitor session"))
            new_id = params[1]
            changing = json_key(new_id) != json_key(monitor.id)
            if changing and json_key(new_id) in s.monitors:
                raise MonitorError(syntax_error(new_id, "duplicate monitor ID"))
            requests = params[2]
            if not isinstance(requests, dict):
                raise MonitorError(syntax_error(
                    NO_SYNTAX, "monitor-cond-change-requests must be object"))
            served = self.dbs[monitor.db_name]
            wheres = []
            for table, value in requests.items():
                if table not in served.schema:
                    raise MonitorError(syntax_error(NO_SYNTAX, f"no table named {table}"))
                if table not in monitor.tables:
                    raise MonitorError(syntax_error(
                        NO_SYNTAX, f"no table named {table} in monitor session"))
                if not isinstance(value, list):
                    raise MonitorError(syntax_error(
                        NO_SYNTAX, f"table {table} no monitor-cond-change JSON array"))
                for req in value:
                    wheres.append((table, _parse_cond_change(table, req)))
            for table, where in wheres:
                monitor.set_condition(table, where)
        except MonitorError as e:
            s.send(protocol.error_reply(e.error, request.id))
            return
        if changing:
            del s.monitors[json_key(monitor.id)]
            monitor.id = new_id
            s.monitors[json_key(new_id)] = monitor
        update = (monitor.condition_change_update(served.db.tables)
                  if monitor.version != V1 else None)
        if update is not None:
            s.send_raw(protocol.notify(*self.update_params(monitor, update)))
        s.send(protocol.reply({}, request.id))

    def _m_monitor_cancel(self, s: Session, request: Message) -> None:
        params = request.params
        if len(params) != 1:
            s.send(protocol.error_reply("invalid parameters", request.id))
            return
        monitor = s.monitors.pop(json_key(params[0]), None)
        if monitor is None:
            s.send(protocol.error_reply("unknown monitor", request.id))
            return
        served = self.dbs.get(monitor.db_name)
        if served is not None and monitor in served.monitors:
            served.monitors.remove(monitor)
        s.send(protocol.reply({}, request.id))

    def _m_get_schema(self, s: Session, request: Message) -> None:
        served = self._lookup_db(s, request)
        if served is not None:
            s.send(protocol.reply(served.db.schema_json, request.id))

    def _m_list_dbs(self, s: Session, request: Message) -> None:
        s.send(protocol.reply(sorted(self.dbs), request.id))

    def _m_get_server_id(self, s: Session, request: Message) -> None:
        s.send(protocol.reply(str(self.uuid), request.id))

    def _m_echo(self, s: Session, request: Message) -> None:
        s.send(protocol.reply(request.params, request.id))

    def _m_set_db_change_aware(self, s: Session, request: Message) -> None:
        params = request.params
        if len(params) != 1 or not isinstance(params[0], bool):
            s.send(_syntax_error_reply(request, "true or false parameter expected"))
            return
        s.db_change_aware = params[0]
        s.send(protocol.reply({}, request.id))

    # -- locks ---------------------------------------------------------------------

    def _lock_name(self, request: Message) -> str | None:
        params = request.params
        if len(params) != 1 or not isinstance(params[0], str) or not _ID_RE.match(params[0]):
            return None
        return params[0]

    def _lock_request(self, s: Session, request: Message) -> str | None:
        """The lock name of a lock/steal/unlock request, or None after answering an error."""
        if s.read_only:
            s.send(_READ_ONLY_LOCK(request.id))
            return None
        name = self._lock_name(request)
        if name is None:
            s.send(protocol.error_reply(syntax_error(
                request.params, f"{request.method} request params must be <id>"), request.id))
        return name

    def _m_lock(self, s: Session, request: Message) -> None:
        name = self._lock_request(s, request)
        if name is None:
            return
        if name in s.waiters:
            s.send(protocol.error_reply(syntax_error(
                request.params, f'must issue "unlock" before new "{request.method}"'),
                request.id))
            return
        mode = "steal" if request.method == "steal" else "wait"
        waiter, victim = self.locks.lock(s, name, mode)
        s.waiters[name] = waiter
        if victim is not None:
            victim.send(protocol.notify("stolen", [name]))
        s.send(protocol.reply({"locked": waiter.is_owner()}, request.id))

    def _m_unlock(self, s: Session, request: Message) -> None:
        name = self._lock_request(s, request)
        if name is None:
            return
        waiter = s.waiters.get(name)
        if waiter is None:
            s.send(_syntax_error_reply(request, '"unlock" without "lock" or "steal"'))
            return
        self.unlock_waiter(waiter)
        del s.waiters[name]
        s.send(protocol.reply({}, request.id))

    def unlock_waiter(self, waiter) -> None:
        """``ovsdb_jsonrpc_session_unlock__``: C notifies whoever heads the queue now."""
        if waiter.lock is not None:
            new_owner = self.locks.remove(waiter)
            if new_owner is not None:
                new_owner.send(protocol.notify("locked", [waiter.name]))

    # -- triggers (trigger.c) ------------------------------------------------------

    def _try_trigger(self, t: Trigger, now: int) -> bool:
        """Runs the transaction; True when it completed (and was answered)."""
        served, request = t.served, t.request
        result = served.db.transact(request.params[1:], session=t.session,
                                    elapsed_ms=now - t.created)
        if result.pending_ms is not None:
            pending = result.pending_ms
            t.deadline = None if pending in (None, float("inf")) else now + max(0, int(pending))
            return False
        reply_result = result.result
        if result.commit is not None and served.storage is not None:
            try:
                served.storage.write(result.commit, result.durable)
            except OSError as e:
                log.error("%s: writing transaction failed: %s", served.name, e)
                reply_result = list(reply_result) + [protocol.ovsdb_error(
                    "I/O error", f"{served.name}: writing transaction failed")]
        if t.key is not None:
            self._remove_trigger(t)
        t.session.send_reply(reply_result, request.id)
        return True

    def _run_triggers(self, now: int) -> None:
        """``ovsdb_trigger_run``: retries after commits and at timeouts."""
        for served in self.dbs.values():
            run_all = served.run_triggers
            served.run_triggers = False
            for t in list(served.triggers):
                if t not in served.triggers:
                    continue
                if run_all or (t.deadline is not None and now >= t.deadline):
                    try:
                        self._try_trigger(t, now)
                    except Exception as e:  # a bug must cost one request, not the server
                        log.exception("%s: retrying a transaction failed", t.session.name)
                        self._remove_trigger(t)
                        t.session.send(protocol.error_reply(protocol.ovsdb_error(
                            "internal error", f"{type(e).__name__}: {e}"), t.request.id))

    def _remove_trigger(self, t: Trigger) -> None:
        if t.key is None:
            return   # answered at once, never registered
        if t in t.served.triggers:
            t.served.triggers.remove(t)
        t.session.triggers.pop(t.key, None)

    def _cancel(self, s: Session, msg: Message) -> None:
        """``execute_cancel``: C answers "canceled" only to db-change-aware clients."""
        if len(msg.params) != 1:
            return
        t = s.triggers.get(json_key(msg.params[0]))
        if t is None:
            return
        self._remove_trigger(t)
        if s.db_change_aware:
            s.send(protocol.error_reply("canceled", t.request.id))


def _parse_cond_change(table: str, req):
    """``ovsdb_jsonrpc_parse_monitor_cond_change_request``: the new ``where`` (or None)."""
    parser = Parser(req, f"table {table}")
    columns = parser.member("columns", ARRAY, optional=True)
    where = parser.member("where", ARRAY, optional=True)
    if parser.finish() is not None:
        raise MonitorError(protocol.protocol_error(parser.error))
    if columns is not MISSING:
        raise MonitorError(syntax_error(req, "changing columns is unsupported"))
    return None if where is MISSING else where


def _syntax_error_reply(request: Message, details: str) -> Message:
    """``syntax_error_reply``: "<method>: <details>" about the request's params."""
    return protocol.error_reply(syntax_error(request.params, f"{request.method}: {details}"),
                                request.id)


def _READ_ONLY_LOCK(id) -> Message:
    return protocol.error_reply(
        "lock and unlock methods not allowed, DB server is read only.", id)


_METHODS = {
    "transact": OvsdbServer._m_transact,
    "convert": OvsdbServer._m_convert,
    "monitor": OvsdbServer._m_monitor,
    "monitor_cond": OvsdbServer._m_monitor,
    "monitor_cond_since": OvsdbServer._m_monitor,
    "monitor_cond_change": OvsdbServer._m_monitor_cond_change,
    "monitor_cancel": OvsdbServer._m_monitor_cancel,
    "get_schema": OvsdbServer._m_get_schema,
    "list_dbs": OvsdbServer._m_list_dbs,
    "get_server_id": OvsdbServer._m_get_server_id,
    "lock": OvsdbServer._m_lock,
    "steal": OvsdbServer._m_lock,
    "unlock": OvsdbServer._m_unlock,
    "set_db_change_aware": OvsdbServer._m_set_db_change_aware,
    "echo": OvsdbServer._m_echo,
}
