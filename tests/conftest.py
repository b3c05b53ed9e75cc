"""Shared fixtures: private ovsdb-servers (real and embedded) and the ovs-vsctl oracle.

``ovsdb_server`` (and ``api`` on top of it) runs each test twice: against a
private C ovsdb-server (``real``) and against ovsnet's pure-Python one
(``embedded``), so the client-side tests double as a differential test of the
server. Tests that need Debian's openvswitch binaries skip with the reason
when they are absent -- except under CI=true, where the binaries are part of
the contract and their absence fails the test instead.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from ovsnet.ovsdb import OvsdbApi, RealServer, real_ovs_available
from ovsnet.ovsdb.backends import EmbeddedServer, find_binary

IN_CI = os.environ.get("CI") == "true"


def require_real_ovs() -> None:
    reason = real_ovs_available() or (
        None if find_binary("ovs-vsctl") else "ovs-vsctl not found (apt-get install openvswitch-switch)")
    if reason:
        if IN_CI:
            pytest.fail(f"CI=true and the real Open vSwitch binaries are missing: {reason}")
        pytest.skip(reason)


def require_vsctl() -> None:
    if find_binary("ovs-vsctl") is None:
        reason = "ovs-vsctl not found (apt-get install openvswitch-switch)"
        if IN_CI:
            pytest.fail(f"CI=true and the real Open vSwitch binaries are missing: {reason}")
        pytest.skip(reason)


SERVER_KINDS = ["real", "embedded"]


def make_server(kind: str, name: str = "test"):
    if kind == "real":
        require_real_ovs()
        return RealServer(name)
    return EmbeddedServer(name)


@pytest.fixture(params=SERVER_KINDS)
def ovsdb_server(request):
    """A fresh private ovsdb-server (C or embedded) with an empty Open_vSwitch database."""
    with make_server(request.param) as server:
        yield server


@pytest.fixture
def api(ovsdb_server):
    with OvsdbApi.connect(ovsdb_server.remote, timeout=10) as api:
        yield api


class Vsctl:
    """Runs the real ovs-vsctl against one server (``--no-wait``: no vswitchd here)."""

    def __init__(self, server):
        self.server = server

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        argv = [find_binary("ovs-vsctl"), "--no-wait", f"--db={self.server.remote}", *args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if check and proc.returncode != 0:
            raise AssertionError(f"ovs-vsctl {' '.join(args)} failed: {proc.stderr}")
        return proc

    def __call__(self, *args: str) -> str:
        return self.run(*args).stdout


@pytest.fixture
def vsctl(ovsdb_server):
    require_vsctl()
    return Vsctl(ovsdb_server)
