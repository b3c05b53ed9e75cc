"""ovs-vswitchd's main loop on a background thread, for clients in other processes.

Inside one Python process nothing needs to run in the background:
:func:`~ovsnet.vswitchd.status.wait_cur_cfg` runs the vswitchd's
:meth:`~ovsnet.vswitchd.Vswitchd.bridge_run` until ``cur_cfg`` catches up.
A client in another process -- the real ``ovs-vsctl`` without
``--no-wait``, ``ovs-vsctl wait-until``, a script polling ``ofport`` --
needs the daemon to react by itself, as ``ovs-vswitchd``'s main loop does
(``vswitchd/ovs-vswitchd.c``: ``bridge_run``, then ``bridge_wait`` and
``poll_block`` until the database or something else changes).
:class:`DatabaseLoop` does that on a thread of its own with a connection of
its own::

    with DatabaseLoop(vs):
        subprocess.run(["ovs-vsctl", f"--db={remote}", "add-port", "br-int", "tap9"])

While the loop runs, code that drives the same vswitchd (packets, flows)
must hold ``vs.lock``, which every pass of the loop holds, and waits for
``cur_cfg`` with ``wait_cur_cfg(api)`` (no vswitchd: the loop applies the
change).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

import ovs.poller

from ovsnet.ovsdb.api import OvsdbApi

if TYPE_CHECKING:
    from ovsnet.vswitchd.vswitchd import Vswitchd

__all__ = ["DatabaseLoop"]


class DatabaseLoop:
    """Run ``vswitchd``'s database loop on a background thread until :meth:`stop`.

    The loop opens its own connection to the vswitchd's database (``remote``,
    by default the one of ``vswitchd.api``), so the caller's connection is
    never used from two threads; the vswitchd writes through it while the
    loop runs and through its own connection again afterwards. An error in
    a pass stops the loop and is raised by :meth:`stop`.
    """

    def __init__(self, vswitchd: Vswitchd, remote: str | None = None):
        if remote is None:
            remote = vswitchd._attached_api().connection.remote
        self.vswitchd = vswitchd
        self.api = OvsdbApi.connect(remote)
        self.error: BaseException | None = None
        self._stopping = False
        self._wake_r, self._wake_w = os.pipe()
        self._saved_api = vswitchd.api
        vswitchd.api = self.api
        self._thread = threading.Thread(target=self._run, name="ovs-vswitchd", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        idl = self.api.idl
        try:
            while not self._stopping:
                with self.vswitchd.lock:
                    self.vswitchd.bridge_run()
                poller = ovs.poller.Poller()
                idl.wait(poller)
                poller.fd_wait(self._wake_r, ovs.poller.POLLIN)
                poller.block()
        except BaseException as e:  # reported by stop()
            self.error = e

    def stop(self) -> None:
        """End the loop, give the vswitchd its own connection back, raise a pass's error."""
        if self._stopping:
            return
        self._stopping = True
        os.write(self._wake_w, b"x")
        self._thread.join()
        os.close(self._wake_r)
        os.close(self._wake_w)
        self.vswitchd.api = self._saved_api
        self.api.close()
        if self.error is not None:
            raise self.error

    def __enter__(self) -> DatabaseLoop:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
