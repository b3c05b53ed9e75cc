"""One client connection of the embedded ovsdb-server, and the server's locks.

Mirrors ``struct ovsdb_jsonrpc_session`` in ``ovsdb/jsonrpc-server.c`` with
the parts of ``lib/jsonrpc.c`` (output queue, backlog) and ``lib/reconnect.c``
(inactivity probes) that a server-side connection uses, and the locks of
``ovsdb/server.c``:

- Output is queued and written as the socket accepts it; the *backlog* is
  the number of queued bytes not yet written. While it is non-zero the
  session neither reads requests nor flushes its monitors, exactly as
  ``ovsdb_jsonrpc_session_run`` does, so a client that stops reading is
  throttled (TCP pushes back on it) while its monitors keep merging changes
  into one pending update: its memory stays bounded by one message plus the
  size of the database, and no other client waits for it. Like C, such a
  client is never disconnected for it (the server configures no backlog
  threshold).
- Before any message is sent, the session's monitors are flushed, so a
  client sees the update notifications caused by its transaction before the
  transaction's reply.
- A message that is not valid JSON or JSON-RPC, or an unexpected reply or
  error from the client, closes the connection (``EPROTO``), as do end of
  file and socket errors. Complete requests received before end of file are
  still executed.
- Connections from ``ptcp:`` remotes are probed after 5 s of silence with an
  ``echo`` request and dropped 5 s later if nothing arrives; ``punix:``
  connections are never probed (``stream_or_pstream_needs_probes``).
- Locks (``lock``/``steal``/``unlock``) follow ``ovsdb_server_lock``: each
  lock has a queue of waiters whose head owns it; ``steal`` puts the thief at
  the head and notifies the victim (``stolen``); removing a waiter notifies
  the new head (``locked``), including C's notification of an owner that
  already held the lock.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections import deque

from . import protocol
from .protocol import ERROR, REPLY, REQUEST, Message, ProtocolError

log = logging.getLogger("ovsnet.ovsdb.server")

RECV_CHUNK = 1 << 18
#: bytes read from one connection per pass of the event loop
RECV_PER_RUN = 1 << 22
#: requests handled for one connection per pass of the event loop
REQUESTS_PER_RUN = 50
#: ``RECONNECT_DEFAULT_PROBE_INTERVAL``
DEFAULT_PROBE_INTERVAL_MS = 5000


def json_key(value) -> str:
    """A hashable key with ``json_equal`` semantics, for request and monitor ids."""
    return protocol.dumps(value, sort_keys=True)


class LockWaiter:
    __slots__ = ("session", "name", "mode", "lock")

    def __init__(self, session, name: str, mode: str):
        self.session = session
        self.name = name
        self.mode = mode            # "wait" or "steal"
        self.lock: list | None = None   # the lock's waiter queue while queued

    def is_owner(self) -> bool:
        return self.lock is not None and self.lock[0] is self


class LockTable:
    """``struct ovsdb_server``'s locks: name -> queue of waiters, head owns."""

    def __init__(self):
        self.locks: dict[str, list[LockWaiter]] = {}

    def lock(self, session, name: str, mode: str):
        """``ovsdb_server_lock``: returns (waiter, victim session or None)."""
        queue = self.locks.setdefault(name, [])
        victim = queue[0] if mode == "steal" and queue else None
        waiter = LockWaiter(session, name, mode)
        waiter.lock = queue
        if mode == "steal":
            queue.insert(0, waiter)
        else:
            queue.append(waiter)
        if victim is not None and victim.mode == "steal":
            self.remove(victim)
        return waiter, (victim.session if victim is not None else None)

    def remove(self, waiter: LockWaiter):
        """``ovsdb_lock_waiter_remove``: the session now at the head, if any."""
        queue = waiter.lock
        queue.remove(waiter)
        waiter.lock = None
        if not queue:
            del self.locks[waiter.name]
            return None
        return queue[0].session


class Session:
    """A connected client: framing, output queue, monitors, triggers, locks."""

    def __init__(self, server, sock: socket.socket, name: str, probe_interval_ms: int = 0):
        self.server = server
        self.sock = sock
        self.fd = sock.fileno()
        self.name = name
        self.framer = protocol.Framer()
        self.out: deque[memoryview] = deque()
        self.backlog = 0
        self.monitors: dict[str, object] = {}      # json_key(id) -> Monitor
        self.triggers: dict[str, object] = {}      # json_key(id) -> Trigger
        self.waiters: dict[str, LockWaiter] = {}   # lock name -> waiter
        self.db_change_aware = False
        self.read_only = False
        self.closed = False
        self.eof = False
        self.error: str | None = None
        self.probe_interval_ms = probe_interval_ms
        now = server.now_ms()
        self.last_activity = now
        self.idle_since: int | None = None   # when an inactivity probe was sent

    # -- what the engine asks ("assert" operations) -------------------------

    def holds_lock(self, name: str) -> bool:
        waiter = self.waiters.get(name)
        return waiter is not None and waiter.is_owner()

    # -- output -------------------------------------------------------------

    def send(self, msg: Message) -> None:
        """``ovsdb_jsonrpc_session_send``: monitors first, then the message."""
        self.flush_monitors()
        self.send_raw(msg)

    def send_reply(self, result, id) -> None:
        """``send(protocol.reply(result, id))``, encoded without a message object."""
        if self.monitors:
            self.flush_monitors()
        if not self.closed:
            self.send_bytes(protocol.encode_reply(result, id))

    def send_raw(self, msg: Message) -> None:
        """``jsonrpc_session_send``."""
        if not self.closed:
            self.send_bytes(msg.encode())

    def send_bytes(self, data: bytes) -> None:
        if self.closed:
            return
        if self.backlog:
            self.out.append(memoryview(data))
            self.backlog += len(data)
            return
        # Nothing queued: write at once, queue what the socket does not take.
        try:
            n = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError as e:
            self.close(f"send error: {e.strerror or e}")
            return
        if n < len(data):
            self.out.append(memoryview(data)[n:])
            self.backlog = len(data) - n

    def write(self, activity: bool = True) -> None:
        """``jsonrpc_run``: writes queued output until the socket is full.

        Draining output that had to wait counts as activity for the
        inactivity probe; output written at once does not (as in C: a stalled
        peer can absorb a lot before the kernel buffers fill up).
        """
        before = self.backlog
        while self.out and not self.closed:
            buf = self.out[0]
            try:
                n = self.sock.send(buf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                self.close(f"send error: {e.strerror or e}")
                return
            self.backlog -= n
            if n == len(buf):
                self.out.popleft()
            else:
                self.out[0] = buf[n:]
        if activity and self.backlog < before and not self.closed:
            self.activity()

    def wants_write(self) -> bool:
        return not self.closed and self.backlog > 0

    def wants_read(self) -> bool:
        return not self.closed and not self.eof and self.backlog == 0

    # -- input --------------------------------------------------------------

    def read(self) -> None:
        """Moves what the socket holds into the framer (bounded per pass)."""
        total = 0
        view = self.server.recv_view   # one buffer for the server's single thread
        while total < RECV_PER_RUN:
            try:
                n = self.sock.recv_into(view)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                if e.errno == errno.ECONNRESET:
                    self.eof = True
                else:
                    self.close(f"receive error: {e.strerror or e}")
                break
            if not n:
                self.eof = True
                break
            self.framer.feed(view[:n])
            total += n
            if n < RECV_CHUNK:
                # Drained: the loop polls level-triggered, so anything that
                # arrives later wakes us again; don't spend a recv on EAGAIN.
                break
        if total:
            self.activity()

    def activity(self) -> None:
        self.last_activity = self.server.now_ms()
        self.idle_since = None

    def next_message(self) -> Message | None:
        """``jsonrpc_session_recv``: the next request or notification, if any.

        Answers echo requests and swallows replies to our own probes here;
        closes the session on a protocol violation or at end of input.
        """
        while not self.closed:
            try:
                value = self.framer.next()
                if value is None:
                    if self.eof:
                        self.close("end of file" if not self.framer.has_partial()
                                   else "end of file in the middle of a message")
                    return None
                msg = Message.from_json(value)
            except ProtocolError as e:
                self.close(f"error parsing stream: {e}", protocol_error=True)
                return None
            if msg.type == REQUEST and msg.method == "echo":
                self.send_raw(protocol.reply(msg.params, msg.id))
                continue
            if msg.type == REPLY and msg.id == "echo":
                continue
            if msg.type in (REPLY, ERROR):
                log.warning("%s: received unexpected %s message", self.name, msg.type)
                self.close(f"received unexpected {msg.type} message", protocol_error=True)
                return None
            return msg
        return None

    # -- monitors and triggers ------------------------------------------------

    def flush_monitors(self) -> None:
        """``ovsdb_jsonrpc_monitor_flush_all``."""
        if not self.monitors:
            return
        for monitor in list(self.monitors.values()):
            entry = monitor.flush(self.server.update_cache(monitor))
            if entry is None:
                continue
            if entry[1] is None:   # encoded once, however many clients get it
                entry[1] = protocol.encode_value(entry[0])
            method, params = self.server.update_params(monitor, entry[0])
            head = [protocol.encode_value(p) for p in params[:-1]]
            self.send_bytes(b'{"id":null,"method":"%s","params":[%s,%s]}' % (
                method.encode(), b",".join(head), entry[1]))

    def needs_flush(self) -> bool:
        return any(m.needs_flush() for m in self.monitors.values())

    # -- inactivity probes (reconnect.c, passive connection) -----------------

    def probe_deadline(self) -> int | None:
        if not self.probe_interval_ms or self.closed:
            return None
        if self.idle_since is None:
            return self.last_activity + self.probe_interval_ms
        return self.idle_since + self.probe_interval_ms

    def run_probe(self, now: int) -> None:
        deadline = self.probe_deadline()
        if deadline is None or now < deadline:
            return
        if self.idle_since is None:
            self.idle_since = now
            self.send_raw(protocol.request("echo", [], "echo"))
        else:
            secs = self.probe_interval_ms // 1000
            self.close(f"no response to inactivity probe after {secs} seconds, disconnecting")

    # -- teardown -------------------------------------------------------------

    def close(self, reason: str = "", protocol_error: bool = False) -> None:
        """``ovsdb_jsonrpc_session_close``: drops monitors, locks and triggers."""
        if self.closed:
            return
        self.closed = True
        self.error = reason
        if protocol_error:
            log.warning("%s: connection dropped (%s)", self.name, reason)
        else:
            log.debug("%s: connection closed (%s)", self.name, reason)
        self.out.clear()
        self.backlog = 0
        self.server.session_closed(self)
        self.monitors.clear()
        self.waiters.clear()
        self.triggers.clear()
        try:
            self.sock.close()
        except OSError:  # pragma: no cover
            pass
