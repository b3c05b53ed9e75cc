"""A private ovsdb-server + ovs-vswitchd (dummy datapath) and its synchronisation points.

The differential tests of datapath behaviour drive a real ovs-vswitchd the
way OVS's own testsuite does (tests/ofproto-macros.at, ``OVS_VSWITCHD_START``
with ``--enable-dummy``): a private directory holds the database, sockets,
pidfiles and logs, bridges use ``datapath_type=dummy`` (dpif-netdev) and
packets enter with ``ovs-appctl netdev-dummy/receive``.

Nothing here sleeps. Every step ends at a point where ovs-vswitchd has
provably finished what the test depends on:

* ``ovs-vsctl`` without ``--no-wait`` returns once ovs-vswitchd has applied
  the database change (``next_cfg`` reached ``cur_cfg``), ports and
  ``options:tx_pcap`` files included.
* ``ovs-ofctl`` flow-mods are followed by a barrier (ovs-ofctl sends one
  after its requests and waits for the reply): the new table version is
  what the next translation sees.
* ``revalidator/pause`` returns once every revalidator thread is parked on
  its pause barrier (ofproto-dpif-upcall.c ``udpif_pause_revalidators``), so
  no thread can modify or delete a datapath flow behind the test's back.
  While they are paused ``revalidator/purge`` deletes every datapath flow:
  running, revalidators can hold a ukey's mutex and the purge skips that
  ukey (``revalidator_sweep__`` uses ``ovs_mutex_trylock``).
* ``netdev-dummy/receive`` only queues the packet on the port's rx queue
  and replies; the main thread dequeues it in a later iteration of its loop
  (``dpif_netdev_run`` polls non-PMD ports). :meth:`OvsSandbox.receive` waits
  until the port's rx counter (``dpctl/show -s``) has counted the packet.
  ``netdev_dummy_rxq_recv`` counts it when it dequeues it, and the same call
  chain of the main thread then runs the upcall, executes the actions, sends
  the outputs (``tx-flush-interval`` is 0, so ``dp_netdev_process_rxq_port``
  flushes them before it returns; ``netdev_dummy_send`` fflush()es
  ``tx_pcap`` per packet) and installs the megaflow. unixctl commands run on
  that same thread, so one that sees the count sees all of that done. There
  is no event to wait on, so this is a loop of ``ovs-appctl`` round trips
  with a deadline (OVS's tests use ``OVS_WAIT_UNTIL`` the same way); each
  round trip lets the main loop run, so the first check normally succeeds.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import time

import pytest

from ovsnet.ovsdb.backends import find_binary, find_schema
from tests.conftest import IN_CI, require_real_ovs

BINARIES = ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl", "ovs-ofctl")
#: how long a daemon or a packet may take before the test fails (a loaded CI machine)
DEADLINE = 60.0

_PORT_RX_RE = re.compile(r"^\s*port \d+: (\S+) \([^)]*\)\n\s*RX packets:(\d+)", re.MULTILINE)


def require_binaries() -> dict[str, str]:
    """Paths of the Open vSwitch binaries; skip without them (fail under ``CI=true``)."""
    require_real_ovs()
    paths = {b: find_binary(b) for b in BINARIES}
    missing = [b for b, p in paths.items() if p is None]
    if missing or find_schema() is None:
        reason = f"missing {', '.join(missing) or 'vswitch.ovsschema'} (apt-get install openvswitch-switch)"
        if IN_CI:
            pytest.fail(f"CI=true and the real Open vSwitch binaries are missing: {reason}")
        pytest.skip(reason)
    return paths  # type: ignore[return-value]


class OvsSandbox:
    """ovsdb-server and ovs-vswitchd (``--enable-dummy``) with all their state in ``root``."""

    def __init__(self, root: str):
        self.bins = require_binaries()
        self.root = str(root)
        self.env = {**os.environ, **{k: self.root for k in (
            "OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVS_SYSCONFDIR", "OVS_PKGDATADIR")}}
        self.started: list[str] = []
        self.paused = False

    # -- running the tools ---------------------------------------------------

    def run(self, binary: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([self.bins[binary], *args], capture_output=True, text=True,
                              env=self.env, cwd=self.root, timeout=DEADLINE)
        if check and proc.returncode != 0:
            raise AssertionError(f"{binary} {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    def vsctl(self, *args: str) -> str:
        """``ovs-vsctl``, waiting until ovs-vswitchd has applied the change."""
        return self.run("ovs-vsctl", *args).stdout

    def appctl(self, *args: str) -> str:
        return self.run("ovs-appctl", *args).stdout

    def ofctl(self, *args: str) -> str:
        return self.run("ovs-ofctl", *args).stdout

    # -- life cycle ----------------------------------------------------------

    def start(self) -> OvsSandbox:
        db = os.path.join(self.root, "conf.db")
        self.run("ovsdb-tool", "create", db, find_schema())
        self.run("ovsdb-server", "--detach", "--no-chdir", "--pidfile", "--log-file",
                 f"--remote=punix:{self.root}/db.sock", db)
        self.started.append("ovsdb-server")
        self.run("ovs-vsctl", "--no-wait", "init")
        # --detach returns once the daemon is ready to serve unixctl requests.
        self.run("ovs-vswitchd", "--enable-dummy", "--disable-system", "--disable-system-route",
                 "--detach", "--no-chdir", "--pidfile", "--log-file")
        self.started.append("ovs-vswitchd")
        return self

    def stop(self) -> None:
        """Stop both daemons and wait until they are gone.

        Paused revalidators are resumed first: ``udpif_stop_threads`` joins
        the revalidator threads, and a paused one never returns from its
        pause barrier, so ovs-vswitchd would hang in ``exit`` for ever.
        """
        if self.paused:
            self.run("ovs-appctl", "revalidator/resume", check=False)
            self.paused = False
        for daemon in reversed(self.started):
            pid = self._pid(daemon)
            extra = ("--cleanup",) if daemon == "ovs-vswitchd" else ()
            self.run("ovs-appctl", "-t", daemon, "exit", *extra, check=False)
            if pid is not None and not _wait_exit(pid, DEADLINE):
                os.kill(pid, signal.SIGKILL)
        self.started.clear()

    def _pid(self, daemon: str) -> int | None:
        try:
            with open(os.path.join(self.root, f"{daemon}.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    # -- synchronisation -----------------------------------------------------

    def pause_revalidators(self) -> None:
        """Park every revalidator thread; datapath flows then change only by upcalls and dpctl."""
        self.appctl("revalidator/pause")
        self.paused = True

    def purge_datapath(self) -> None:
        """Delete every datapath flow and its ukey (revalidators must be paused, see above)."""
        assert self.paused, "revalidator/purge skips ukeys a running revalidator holds"
        self.appctl("revalidator/purge")

    def rx_packets(self) -> dict[str, int]:
        """Packets each datapath port has taken off its rx queue, by port name."""
        return {name: int(n) for name, n in _PORT_RX_RE.findall(self.appctl("dpctl/show", "-s"))}

    def receive(self, port: str, *frames: bytes) -> None:
        """Inject ``frames`` on dummy ``port`` and return once ovs-vswitchd has processed them."""
        want = self.rx_packets()[port] + len(frames)
        for frame in frames:
            self.appctl("netdev-dummy/receive", port, frame.hex())
        deadline = time.monotonic() + DEADLINE
        while (got := self.rx_packets()[port]) < want:
            if time.monotonic() > deadline:
                raise AssertionError(f"{port}: ovs-vswitchd dequeued {got} of {want} packets "
                                     f"in {DEADLINE:.0f} s")


def _wait_exit(pid: int, timeout: float) -> bool:
    """Whether process ``pid`` (not our child: the daemons detach) exited within ``timeout``."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)
