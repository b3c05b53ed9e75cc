"""One OVSDB transaction made of commands: all of them commit, or none does.

Mirrors ovsdbapp's ``Transaction``: commands are collected in a ``with``
block and run against the IDL when the block ends. The IDL transaction is
committed with a deadline; ``try again`` (the replica was stale, or the
connection dropped before the reply) re-runs every command on fresh data, as
ovs-vsctl does. Any error raises :class:`OvsdbTransactionError` and leaves the
database as it was.
"""

from __future__ import annotations

import time

import ovs.db.idl

from ..errors import OvsdbError, OvsdbTransactionError

Txn = ovs.db.idl.Transaction


class Transaction:
    """Collects commands; ``commit()`` runs and commits them atomically."""

    def __init__(self, api, check_error: bool = True, timeout: float | None = None,
                 comment: str | None = None):
        self.api = api
        self.check_error = check_error
        self.timeout = api.connection.timeout if timeout is None else timeout
        self.comment = comment
        self.commands: list = []
        #: final status: "success", "unchanged" or the error text
        self.status: str | None = None
        self.error: OvsdbError | None = None

    def add(self, command):
        self.commands.append(command)
        return command

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()

    def commit(self):
        """Runs the commands and commits; returns the list of their results."""
        conn = self.api.connection
        deadline = time.monotonic() + self.timeout
        try:
            while True:
                conn.wait_for_sync(timeout=max(0.0, deadline - time.monotonic()))
                status, txn = self._attempt(deadline)
                if status == Txn.TRY_AGAIN:
                    if time.monotonic() >= deadline:
                        raise OvsdbTransactionError(
                            f"{conn.remote}: transaction could not commit within "
                            f"{self.timeout:g} s (database kept changing or connection lost)"
                        )
                    continue
                break
            if status in (Txn.SUCCESS, Txn.UNCHANGED):
                for command in self.commands:
                    command.post_commit(txn)
                self.status = "success" if status == Txn.SUCCESS else "unchanged"
                return [c.result for c in self.commands]
            raise OvsdbTransactionError(
                f"{conn.remote}: transaction failed: {txn.get_error()}"
            )
        except OvsdbError as e:
            self.status = str(e)
            self.error = e
            if self.check_error:
                raise
            return None

    def _attempt(self, deadline: float):
        conn = self.api.connection
        idl = conn.idl
        txn = Txn(idl)
        if self.comment:
            txn.add_comment(self.comment)
        try:
            for command in self.commands:
                command.run_idl(txn)
        except BaseException:
            txn.abort()
            raise
        while True:
            status = txn.commit()
            if status != Txn.INCOMPLETE:
                return status, txn
            if time.monotonic() >= deadline:
                txn.abort()
                raise OvsdbError(
                    f"{conn.remote}: no reply to the transaction within {self.timeout:g} s; "
                    "it may or may not have been committed"
                )
            idl.run()
            conn._block(deadline, txn)
