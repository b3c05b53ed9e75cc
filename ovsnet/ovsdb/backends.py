"""Where a simulated host's OVSDB server comes from.

``--ovsdb`` picks one per run:

- ``real``: a private Debian/upstream ``ovsdb-server`` per host, started in a
  temporary directory with the ``Open_vSwitch`` schema the package ships, on
  a unix socket only its owner can open, and stopped when the run ends.
- ``unix:PATH`` / ``tcp:IP:PORT``: an existing server (every host of the
  topology shares it, so it only makes sense for one-host runs or ``apply``).
- ``embedded``: ovsnet's own pure-Python ovsdb-server
  (:mod:`ovsnet.ovsdb.server`), run inside this process on a background
  thread and reached through a unix socket in a private directory, so clients
  use exactly the protocol path they would use with the C server.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import weakref
from pathlib import Path

from ..errors import BackendError, UsageError

SCHEMA_SEARCH_PATH = (
    "/usr/share/openvswitch/vswitch.ovsschema",
    "/usr/local/share/openvswitch/vswitch.ovsschema",
)
BACKENDS = ("embedded", "real")


def find_binary(name: str) -> str | None:
    """``name`` on PATH, or in the sbin directories where Debian installs daemons."""
    path = shutil.which(name)
    if path:
        return path
    for d in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
        candidate = os.path.join(d, name)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def find_schema() -> str | None:
    env = os.environ.get("OVSNET_VSWITCH_SCHEMA")
    if env:
        return env
    for path in SCHEMA_SEARCH_PATH:
        if os.path.exists(path):
            return path
    return None


def real_ovs_available() -> str | None:
    """None when a real ovsdb-server can be started here, else the reason why not."""
    missing = [b for b in ("ovsdb-server", "ovsdb-tool") if find_binary(b) is None]
    if missing:
        return (f"{' and '.join(missing)} not found; install Debian's openvswitch-switch "
                "(apt-get install openvswitch-switch)")
    if find_schema() is None:
        return "vswitch.ovsschema not found (set OVSNET_VSWITCH_SCHEMA or install openvswitch-common)"
    return None


class Server:
    """A server ovsnet can connect to; ``remote`` is its OVSDB address."""

    remote: str

    def _make_dir(self, name: str, workdir: str | None) -> None:
        """The server's own 0700 directory (a fresh short /tmp path unless given).

        Short, because a unix socket path holds at most 107 bytes.
        """
        self._own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix=f"ovsnet-{name[:20]}-", dir="/tmp"))
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self.sock = self.dir / "db.sock"
        self.remote = f"unix:{self.sock}"

    def stop(self) -> None:
        """Stops the server if ovsnet started it."""

    def detach(self) -> str:
        """Leaves the server running after ovsnet exits; returns how to stop it."""
        return ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class RemoteServer(Server):
    """An existing server ovsnet does not own (``unix:`` or ``tcp:`` address)."""

    def __init__(self, remote: str):
        self.remote = remote


class RealServer(Server):
    """A private ``ovsdb-server`` in its own directory, started in the foreground.

    ``--detach`` makes ovsdb-server return only once it is listening, so no
    polling or sleeping is needed before the first connection.
    """

    def __init__(self, name: str = "ovsdb", workdir: str | None = None):
        reason = real_ovs_available()
        if reason:
            raise BackendError(f"cannot start a real ovsdb-server: {reason}")
        self.name = name
        self._make_dir(name, workdir)
        self.db = self.dir / "conf.db"
        self.pidfile = self.dir / "ovsdb-server.pid"
        self.pid: int | None = None
        self.start()

    def _run(self, argv: list[str]) -> None:
        env = dict(os.environ, OVS_RUNDIR=str(self.dir), OVS_LOGDIR=str(self.dir),
                   OVS_DBDIR=str(self.dir))
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, umask=0o077)
        if proc.returncode != 0:
            raise BackendError(
                f"{' '.join(argv[:2])} failed (exit {proc.returncode}): "
                f"{proc.stderr.strip() or proc.stdout.strip()}"
            )

    def start(self) -> None:
        """Starts the server on the database file (created first if absent)."""
        if not self.db.exists():
            self._run([find_binary("ovsdb-tool"), "create", str(self.db), find_schema()])
        self._run([
            find_binary("ovsdb-server"), str(self.db),
            f"--remote=punix:{self.sock}",
            f"--pidfile={self.pidfile}",
            f"--unixctl={self.dir / 'ovsdb-server.ctl'}",
            f"--log-file={self.dir / 'ovsdb-server.log'}",
            "--detach", "--no-chdir",
        ])
        self.pid = int(self.pidfile.read_text().strip())

    def wait_stopped(self) -> None:
        """Blocks until the server process has exited (after a signal)."""
        if self.pid is not None:
            _wait_gone(self.pid)
            self.pid = None

    def stop(self) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            self.wait_stopped()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def detach(self) -> str:
        pid, self.pid, self._own_dir = self.pid, None, False
        return f"ovsdb-server pid {pid}, files in {self.dir}; stop with: kill {pid}"

    def __del__(self):
        try:
            self.stop()
        except Exception:
            pass


class EmbeddedServer(Server):
    """ovsnet's pure-Python ovsdb-server on a thread of this process.

    It listens on ``db.sock`` (mode 0600) in a private 0700 directory; the
    database is in memory unless ``dbfile`` names a file (created with the
    ``Open_vSwitch`` schema if absent). The socket listens before the
    constructor returns, so clients can connect at once. :meth:`stop` shuts
    the server down and joins its thread.
    """

    def __init__(self, name: str = "ovsdb", workdir: str | None = None,
                 dbfile: str | None = None):
        from .server.main import open_database_file
        from .server.server import OvsdbServer

        self.name = name
        self._make_dir(name, workdir)
        self.pid = None
        self._thread = None
        # The directory goes away with the process even if stop() is never called.
        self._remove_dir = weakref.finalize(self, shutil.rmtree, str(self.dir),
                                            ignore_errors=True) if self._own_dir else None
        self.storage = None
        try:
            db, self.storage = open_database_file(dbfile)
            self.server = OvsdbServer()
            self.server.add_database(db, self.storage)
            self.server.add_remote(f"punix:{self.sock}")
        except BaseException:
            self.stop()
            raise
        self.db = db
        # The thread must not refer to self, so that a forgotten server is
        # stopped when it is garbage-collected.
        self._thread = threading.Thread(target=_serve, args=(self.server,),
                                        name=f"ovsnet-ovsdb-{name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.server.stop()
            self._thread.join()
            self._thread = None
        if self.storage is not None:
            self.storage.close()
            self.storage = None
        if self._remove_dir is not None:
            self._remove_dir()

    def detach(self) -> str:
        return "embedded server: it runs inside ovsnet and stops when ovsnet exits"

    def __del__(self):
        try:
            self.stop()
        except Exception:
            pass


def _serve(server) -> None:
    try:
        server.run()
    finally:
        server.close()


def _wait_gone(pid: int) -> None:
    """Waits for a detached daemon to exit (it is not our child, so no waitpid)."""
    import select

    try:
        fd = os.pidfd_open(pid)
    except (ProcessLookupError, AttributeError, OSError):
        return
    try:
        select.select([fd], [], [], 10)
    finally:
        os.close(fd)


def open_server(spec: str, host: str) -> Server:
    """A running server for ``host`` according to ``--ovsdb SPEC``."""
    if spec.startswith(("unix:", "tcp:", "ssl:")):
        return RemoteServer(spec)
    if spec == "real":
        return RealServer(host)
    if spec == "embedded":
        return EmbeddedServer(host)
    raise UsageError(
        f"invalid --ovsdb {spec!r}: expected embedded, real, unix:PATH or tcp:IP:PORT"
    )
