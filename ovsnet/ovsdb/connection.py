"""A connection to one OVSDB server through the ``ovs`` package's IDL.

This mirrors what every Open vSwitch client does (``ovs-vsctl``, ovsdbapp,
os-vif): fetch the schema from the server with the ``get_schema`` JSON-RPC
method, build an :class:`ovs.db.idl.Idl` replicating the tables of interest,
and drive it with ``Idl.run()`` plus a poller. Unlike ovsdbapp there is no
background thread: the caller's thread runs the IDL, every wait has a
deadline, and a server that disappears becomes an :class:`OvsdbError` rather
than a hang.
"""

from __future__ import annotations

import errno
import time

import ovs.db.idl
import ovs.jsonrpc
import ovs.poller
import ovs.stream

from ..errors import OvsdbError
from . import jsonstream

jsonstream.install()

DEFAULT_TIMEOUT = 30.0
DB_NAME = "Open_vSwitch"


def _remaining_ms(deadline: float) -> int:
    return max(0, int((deadline - time.monotonic()) * 1000))


def normalize_remote(remote: str) -> str:
    """Checks an OVSDB remote as clients spell it: ``unix:PATH``, ``tcp:IP:PORT``, ``ssl:...``."""
    if remote.startswith(("unix:", "tcp:", "ssl:")):
        return remote
    raise OvsdbError(
        f"invalid OVSDB remote {remote!r}: expected unix:PATH, tcp:IP:PORT or ssl:IP:PORT"
    )


def rpc(remote: str, method: str, params: list, timeout: float = DEFAULT_TIMEOUT):
    """Sends one JSON-RPC request on a fresh connection and returns its result.

    Raises OvsdbError if the server cannot be reached in time, closes the
    connection, or answers with an error.
    """
    remote = normalize_remote(remote)
    deadline = time.monotonic() + timeout
    error, stream = ovs.stream.Stream.open(remote)
    if error:
        raise OvsdbError(f"cannot connect to {remote}: {errno.errorcode.get(error, error)}")
    error, stream = ovs.stream.Stream.open_block((error, stream), timeout=_remaining_ms(deadline))
    if error:
        reason = "timed out" if error == errno.ETIMEDOUT else (
            errno.errorcode.get(error, str(error)) + f" ({_strerror(error)})")
        raise OvsdbError(f"cannot connect to {remote}: {reason}")
    conn = ovs.jsonrpc.Connection(stream)
    try:
        request = ovs.jsonrpc.Message.create_request(method, params)
        error = conn.send(request)
        while not error:
            error, reply = conn.recv()
            if error == errno.EAGAIN:
                if time.monotonic() >= deadline:
                    raise OvsdbError(f"{remote}: no answer to {method} within {timeout:g} s")
                poller = ovs.poller.Poller()
                conn.run()
                conn.wait(poller)
                conn.recv_wait(poller)
                poller.timer_wait(_remaining_ms(deadline))
                poller.block()
                error = 0
                continue
            if error:
                break
            if reply.id != request.id:
                continue  # an echo or notification, not our answer
            if reply.error is not None:
                raise OvsdbError(f"{remote}: {method} failed: {reply.error}")
            return reply.result
        raise OvsdbError(f"{remote}: connection lost during {method}: {_strerror(error)}")
    finally:
        conn.close()


def _strerror(error) -> str:
    import os

    if isinstance(error, int) and error > 0:
        return os.strerror(error)
    return "end of file" if error == -1 or error == ovs.jsonrpc.EOF else str(error)


def get_schema(remote: str, db: str = DB_NAME, timeout: float = DEFAULT_TIMEOUT) -> dict:
    """Fetches the schema of ``db`` from the server (``get_schema``), as JSON."""
    schema = rpc(remote, "get_schema", [db], timeout)
    if not isinstance(schema, dict) or "tables" not in schema:
        raise OvsdbError(f"{remote}: get_schema returned no schema for {db!r}")
    return schema


class Connection:
    """An IDL replica of one server's database, driven synchronously.

    The IDL replicates every table of the schema the server reports (the
    ``Open_vSwitch`` schema is small).
    """

    def __init__(self, remote: str, db: str = DB_NAME, timeout: float = DEFAULT_TIMEOUT):
        self.remote = normalize_remote(remote)
        self.db = db
        self.timeout = timeout
        self.schema_json = get_schema(self.remote, db, timeout)
        helper = ovs.db.idl.SchemaHelper(schema_json=self.schema_json)
        helper.register_all()
        self.idl = ovs.db.idl.Idl(self.remote, helper, probe_interval=0)
        self.wait_for_sync()

    @property
    def tables(self):
        return self.idl.tables

    def run(self) -> bool:
        """Processes what the server has sent; True if the replica changed."""
        return self.idl.run()

    def wait_for_sync(self, timeout: float | None = None) -> None:
        """Blocks until the IDL holds a complete, current copy of the database."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            self.idl.run()
            if self.synced():
                return
            if time.monotonic() >= deadline:
                raise OvsdbError(
                    f"{self.remote}: no complete copy of database {self.db} within "
                    f"{self.timeout:g} s (is the server running?)"
                )
            self._block(deadline)

    def synced(self) -> bool:
        """True when connected and the initial monitor reply has been processed."""
        return self.is_connected() and self.idl.state == self.idl.IDL_S_MONITORING

    def _block(self, deadline: float, txn=None) -> None:
        poller = ovs.poller.Poller()
        self.idl.wait(poller)
        if txn is not None:
            txn.wait(poller)
        poller.timer_wait(_remaining_ms(deadline))
        poller.block()

    def is_connected(self) -> bool:
        return self.idl._session.is_connected()

    def close(self) -> None:
        self.idl.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
