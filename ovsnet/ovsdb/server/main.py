"""``ovsnet ovsdb-server``: the embedded server as a foreground process.

Mirrors the command line of ``ovsdb/ovsdb-server.c`` for what a test or a
sandbox needs: ``ovsdb-server [--remote=punix:SOCK|ptcp:PORT[:IP]]...
[DBFILE]``. Differences, each deliberate:

- one database file at most; without one the ``Open_vSwitch`` database lives
  in memory only. A missing DBFILE is created with the ``Open_vSwitch``
  schema (``ovsdb-tool create`` is not needed).
- ``ptcp:PORT`` listens on 127.0.0.1 unless an address is given (C listens
  on every address); unix sockets are created with mode 0600.
- it stays in the foreground until SIGTERM or SIGINT (no ``--detach``);
  ``--unixctl``, ``--log-file`` and ``--no-chdir`` are accepted and ignored,
  ``--pidfile`` is written. Once every remote listens, one line per remote
  goes to stderr (``listening on unix:PATH``), so a caller can wait for it
  instead of polling.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from pathlib import Path


def open_database_file(dbfile: str | None):
    """(db, storage) for a file, created with the Open_vSwitch schema if absent;
    (in-memory db, None) without a file."""
    from . import Database, load_schema

    if dbfile is None:
        return Database(load_schema()), None
    from .storage import open_database

    return open_database(dbfile)


def serve(dbfile: str | None, remotes: list[str], pidfile: str | None = None,
          announce=None) -> int:
    """Runs the server until SIGTERM/SIGINT; returns the exit status."""
    from .server import OvsdbServer

    os.umask(0o077)
    db, storage = open_database_file(dbfile)
    # The engine makes no reference cycles: move what is loaded out of the
    # collector's way and collect rarely, or its pauses show up as latency.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    server = OvsdbServer()
    try:
        server.add_database(db, storage)
        listening = [server.add_remote(spec) for spec in remotes]
        if pidfile:
            Path(pidfile).write_text(f"{os.getpid()}\n")
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: server.stop())
        say = announce or (lambda line: print(line, file=sys.stderr, flush=True))
        for remote in listening:
            say(f"listening on {remote.address}")
        server.run()
    finally:
        server.close()
        if storage is not None:
            storage.close()
        if pidfile:
            try:
                os.unlink(pidfile)
            except OSError:
                pass
    return 0
