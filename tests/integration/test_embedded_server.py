"""The embedded ovsdb-server, side by side with Debian's C ovsdb-server 3.1.

- The client-side suites (``test_ovsdb_api.py`` through the parametrized
  ``ovsdb_server`` fixture of ``tests/conftest.py``, and ``test_apply.py``
  re-collected here with its ``server`` fixture pointing at an embedded
  server) run against both servers.
- The real ``ovs-vsctl`` runs the same command sequences against a C server
  and an embedded one: stdout, stderr and exit status must match, UUIDs
  normalised (and ``list``/``find`` records compared as a set, since their
  order follows UUID hashes).
- ``ovsdb-client`` (``monitor``, ``dump``, ``list-dbs``, ...) prints the same.
- The ``ovs`` package's IDL tracks what another client changes.
- ``ovsnet ovsdb-server DBFILE`` killed with SIGKILL in the middle of a
  stream of commits keeps every commit it acknowledged.
"""

from __future__ import annotations

import glob
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from ovsnet.ovsdb import Connection, OvsdbApi, bring_up
from ovsnet.ovsdb import desired as desired_mod
from ovsnet.ovsdb.backends import EmbeddedServer, find_binary
from ovsnet.ovsdb.server.protocol import Framer
from ovsnet.topology import load_topology
from tests.conftest import Vsctl, make_server, require_real_ovs, require_vsctl

# test_apply.py's tests, collected again here with ``server`` = an embedded server.
from tests.integration.test_apply import (  # noqa: F401
    test_an_edited_file_changes_only_the_difference,
    test_apply_is_atomic_when_a_step_fails,
    test_cli_apply_dry_run_and_foreign_refusal,
    test_dry_run_commands_do_what_apply_does,
    test_dry_run_writes_nothing,
    test_foreign_objects_are_never_touched,
    test_objects_of_another_topology_are_foreign,
    test_plan_is_empty_only_when_everything_matches,
    test_port_attributes_land_where_ovs_vsctl_puts_them,
    test_reapply_is_a_no_op,
    test_unrelated_foreign_objects_survive_apply_and_reapply,
)

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def server():
    """The fixture test_apply's tests ask for, here an embedded server."""
    require_vsctl()
    with EmbeddedServer("apply") as s:
        yield s


@pytest.mark.parametrize("path", sorted(glob.glob("topologies/*.yaml")))
def test_examples_round_trip_on_embedded_servers(path):
    require_vsctl()
    topo = load_topology(path)
    with bring_up(topo, "embedded") as dep:
        for name, db in dep.hosts.items():
            assert isinstance(db.server, EmbeddedServer)
            vsctl = Vsctl(db.server)
            assert db.show() == vsctl("show")
            want = desired_mod.desired_host(topo, topo.hosts[name])
            assert sorted(vsctl("list-br").split()) == sorted(b.name for b in want)


# ----------------------------------------------------------------------------
# ovs-vsctl, side by side.

def normalise(text: str, records: bool = False) -> str:
    """UUIDs replaced; with ``records``, list/find records compared as a set."""
    text = UUID_RE.sub("<uuid>", text)
    if records:
        blocks = [b.strip("\n") for b in text.split("\n\n") if b.strip()]
        return "\n\n".join(sorted(blocks))
    return text


def normalise_tree(text: str) -> str:
    """``show`` output with siblings sorted: bridges and ports come in UUID-hash order."""
    lines = UUID_RE.sub("<uuid>", text).splitlines()

    def subtree(i: int, depth: int) -> tuple[list[str], int]:
        nodes = []
        while i < len(lines):
            indent = len(lines[i]) - len(lines[i].lstrip(" "))
            if indent < depth:
                break
            head = lines[i]
            children, i = subtree(i + 1, indent + 1)
            nodes.append("\n".join([head, *children]))
        return sorted(nodes), i

    nodes, _ = subtree(0, 0)
    return "\n".join(nodes)


VHOST = ["--", "set", "Interface", "vm1", "type=dpdkvhostuserclient",
         "options:vhost-server-path=/run/vm1.sock", "mtu_request=9000"]
SETUP = [
    ["init"],
    ["add-br", "br-int", "--", "set", "Bridge", "br-int", "fail_mode=secure",
     "datapath_type=netdev"],
    ["add-port", "br-int", "vm1", "tag=10", "trunks=1,2", "vlan_mode=native-untagged", *VHOST],
    ["add-port", "br-int", "dpdk0", "--", "set", "Interface", "dpdk0", "type=dpdk",
     "options:dpdk-devargs=0000:01:00.0"],
    ["add-bond", "br-int", "bond0", "eth2", "eth3", "bond_mode=balance-tcp", "lacp=active"],
    ["add-port", "br-int", "vx0", "--", "set", "Interface", "vx0", "type=vxlan",
     "options:remote_ip=192.0.2.2", "options:key=100"],
    ["add-br", "br-tun"],
    ["add-port", "br-tun", "patch-int", "--", "set", "Interface", "patch-int", "type=patch",
     "options:peer=patch-tun"],
    ["add-port", "br-int", "patch-tun", "--", "set", "Interface", "patch-tun", "type=patch",
     "options:peer=patch-int"],
]

# Each step: (records?, ovs-vsctl arguments). records=True compares list/find
# output as a set of records; ``show`` is compared as a tree with sorted siblings.
SEQUENCES = {
    "setup-and-show": [(False, a) for a in SETUP] + [(False, ["show"])],
    "queries": [(False, a) for a in SETUP] + [
        (False, ["list-br"]), (False, ["list-ports", "br-int"]), (False, ["list-ifaces", "br-int"]),
        (False, ["br-exists", "br-int"]), (False, ["br-exists", "nope"]),
        (False, ["port-to-br", "bond0"]), (False, ["iface-to-br", "eth3"]),
        (False, ["br-to-vlan", "br-int"]), (False, ["br-to-parent", "br-int"]),
        (False, ["get", "Port", "vm1", "tag", "trunks", "vlan_mode"]),
        (False, ["get", "Interface", "vm1", "options", "mtu_request", "type"]),
        (False, ["get", "Interface", "vx0", "options:remote_ip"]),
        (False, ["--if-exists", "get", "Interface", "vx0", "options:nope"]),
        (False, ["get", "Bridge", "br-int", "name", "fail_mode", "datapath_type"]),
        (True, ["list", "Bridge"]), (True, ["list", "Port", "vm1"]),
        (True, ["--columns=name,type", "list", "Interface"]),
        (False, ["--bare", "--columns=name", "find", "Interface", "type=vxlan"]),
        (True, ["--columns=name,options", "find", "Interface", "type=patch"]),
        (True, ["find", "Port", "tag=10"]),
        (False, ["--bare", "--columns=_uuid,name", "list", "Bridge", "br-tun"]),
        (False, ["--format=json", "--columns=name,tag", "find", "Port", "name=vm1"]),
        (False, ["--format=csv", "--columns=name,ofport_request", "list", "Interface", "vx0"]),
    ],
    "generic-writes": [(False, a) for a in SETUP] + [
        (False, ["set", "Port", "vm1", "tag=20", "external_ids:a=1"]),
        (False, ["add", "Port", "vm1", "trunks", "7", "8"]),
        (False, ["remove", "Port", "vm1", "trunks", "1"]),
        (False, ["set", "Bridge", "br-int", "other_config:x=y", "other_config:z=w"]),
        (False, ["remove", "Bridge", "br-int", "other_config", "z"]),
        (False, ["clear", "Bridge", "br-int", "fail_mode"]),
        (False, ["--", "--id=@q", "create", "QoS", "type=linux-htb", "--", "set", "Port",
                 "vm1", "qos=@q"]),
        (False, ["get", "Port", "vm1", "tag", "trunks", "external_ids"]),
        (False, ["get", "Bridge", "br-int", "other_config", "fail_mode"]),
        (False, ["--bare", "--columns=type", "list", "QoS"]),
        (False, ["clear", "Port", "vm1", "qos"]),
        (False, ["--all", "destroy", "QoS"]),
        (False, ["list", "QoS"]),
        (False, ["set", "Open_vSwitch", ".", "external_ids:system-id=host1",
                 "other_config:dpdk-init=true"]),
        (False, ["get", "Open_vSwitch", ".", "external_ids", "other_config", "next_cfg"]),
        (False, ["set-manager", "ptcp:6640"]), (False, ["get-manager"]),
        (False, ["set-controller", "br-int", "tcp:127.0.0.1:6653"]),
        (False, ["get-controller", "br-int"]), (False, ["del-controller", "br-int"]),
        (False, ["set-fail-mode", "br-tun", "standalone"]), (False, ["get-fail-mode", "br-tun"]),
        (False, ["show"]),
    ],
    "deletes": [(False, a) for a in SETUP] + [
        (False, ["del-port", "vx0"]), (False, ["--if-exists", "del-port", "vx0"]),
        (False, ["del-port", "br-int", "bond0"]), (False, ["--with-iface", "del-port", "eth2"]),
        (False, ["--may-exist", "add-port", "br-int", "vm1"]),
        (False, ["--may-exist", "add-br", "br-tun"]),
        (False, ["del-br", "br-tun"]), (False, ["--if-exists", "del-br", "br-tun"]),
        (False, ["show"]), (False, ["list-br"]),
        (False, ["add-br", "br-tun"]), (False, ["list-ports", "br-tun"]),
        (False, ["emer-reset"]), (False, ["show"]),
    ],
    "errors": [(False, a) for a in SETUP] + [
        (False, ["add-br", "br-int"]), (False, ["add-port", "br-int", "vm1"]),
        (False, ["add-port", "br-tun", "vm1"]), (False, ["add-br", "vm1"]),
        (False, ["del-br", "nope"]), (False, ["del-port", "nope"]),
        (False, ["del-port", "br-int"]), (False, ["del-port", "br-tun", "vm1"]),
        (False, ["add-port", "nope", "p9"]), (False, ["--may-exist", "add-port", "br-tun", "vm1"]),
        (False, ["set", "Port", "nope", "tag=1"]), (False, ["get", "Port", "nope", "tag"]),
        (False, ["port-to-br", "nope"]), (False, ["set", "Port", "vm1", "tag=4096"]),
        (False, ["set", "Port", "vm1", "vlan_mode=bogus"]),
        (False, ["set", "Port", "vm1", "nope=1"]), (False, ["set", "Nope", "x", "a=1"]),
        (False, ["add-bond", "br-int", "bond1", "eth9"]),
        (False, ["set", "Port", "vm1", "bond_mode=round-robin"]),
        (False, ["set", "Interface", "vm1", "ofport_request=70000"]),
        (False, ["create", "Open_vSwitch"]),
        (False, ["--", "--id=@q", "create", "QoS", "type=x"]),
        (False, ["set", "Bridge", "br-int", "ports=[]"]),
        (False, ["remove", "Port", "vm1", "name", "vm1"]),
        (False, ["get", "Interface", "vm1", "options:nope"]),
        (False, ["wait-until", "Bridge", "br-int", "fail_mode=secure"]),
        (False, ["show"]),
    ],
}


def run_vsctl(server, args: list[str]) -> tuple[int, str, str]:
    argv = [find_binary("ovs-vsctl"), "--no-wait", "--timeout=20", f"--db={server.remote}",
            *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_ovs_vsctl_output_is_the_same_as_with_the_c_server(name):
    require_real_ovs()
    with make_server("real", "vsctl-c") as real, make_server("embedded", "vsctl-py") as ours:
        for records, args in SEQUENCES[name]:
            rc_c, out_c, err_c = run_vsctl(real, args)
            rc_py, out_py, err_py = run_vsctl(ours, args)
            step = " ".join(args)
            assert rc_py == rc_c, f"{step}: exit {rc_py} != {rc_c}; stderr {err_py!r}"
            if args[-1] == "show":
                assert normalise_tree(out_py) == normalise_tree(out_c), step
            else:
                assert normalise(out_py, records) == normalise(out_c, records), step
            assert normalise(err_py) == normalise(err_c), step


# ----------------------------------------------------------------------------
# ovsdb-client, side by side.

def run_client(*args: str) -> tuple[int, str, str]:
    proc = subprocess.run([find_binary("ovsdb-client"), "--timeout=20", *args],
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


CLIENT_COMMANDS = [
    ["list-dbs"], ["list-tables", "Open_vSwitch"], ["list-columns", "Open_vSwitch", "Port"],
    ["get-schema-version", "Open_vSwitch"], ["get-schema-cksum", "Open_vSwitch"],
    ["get-schema", "_Server"], ["dump", "Open_vSwitch", "Bridge", "name", "fail_mode"],
    ["query", '["Open_vSwitch",{"op":"select","table":"Port","where":[["name","==","p1"]],'
     '"columns":["name","tag"]}]'],
    ["transact", '["Open_vSwitch",{"op":"comment","comment":"x"}]'],
    ["transact", '["Open_vSwitch",{"op":"insert","table":"Bridge","row":{"name":"br0"}}]'],
    ["transact", '["Open_vSwitch",{"op":"nope"}]'],
    ["transact", '["_Server",{"op":"delete","table":"Database","where":[]}]'],
    ["query", '["_Server",{"op":"select","table":"Database","where":[["name","==","_Server"]],'
     '"columns":["name","model","connected","leader","cid","sid","index"]}]'],
]


@pytest.mark.parametrize("args", CLIENT_COMMANDS, ids=[" ".join(a)[:40] for a in CLIENT_COMMANDS])
def test_ovsdb_client_output_is_the_same_as_with_the_c_server(args):
    require_real_ovs()
    with make_server("real", "client-c") as real, make_server("embedded", "client-py") as ours:
        for s in (real, ours):
            Vsctl(s)("init", "--", "add-br", "br0", "--", "add-port", "br0", "p1", "tag=5")
        rc_c, out_c, err_c = run_client(args[0], real.remote, *args[1:])
        rc_py, out_py, err_py = run_client(args[0], ours.remote, *args[1:])
        assert rc_py == rc_c, err_py
        records = args[0] in ("dump",)
        assert normalise(out_py, records) == normalise(out_c, records)
        assert normalise(err_py) == normalise(err_c)


class Monitor:
    """``ovsdb-client monitor``, whose output is read up to a marker (it flushes
    after each update)."""

    def __init__(self, remote: str, *args: str):
        self.proc = subprocess.Popen([find_binary("ovsdb-client"), "monitor", remote, *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.buf = b""
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)

    def read_until(self, marker: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while marker.encode() not in self.buf:
            left = deadline - time.monotonic()
            assert left > 0 and self.sel.select(left), f"no {marker!r} in {self.buf!r}"
            data = os.read(self.proc.stdout.fileno(), 65536)
            assert data, self.proc.stderr.read().decode()
            self.buf += data
        end = self.buf.index(b"\n", self.buf.index(marker.encode())) + 1
        out, self.buf = self.buf[:end], self.buf[end:]
        return out.decode()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


def normalise_monitor(text: str) -> list[str]:
    """One entry per update, its rows sorted (they come in UUID-hash order)."""
    text = UUID_RE.sub("<uuid>", text)
    blocks = [b for b in text.split("\n\n") if b.strip()]
    out = []
    for block in blocks:
        lines = block.strip("\n").splitlines()
        out.append("\n".join(lines[:2] + sorted(lines[2:])))
    return out


# (table, columns, how to set the marker on a row every step leaves alone)
MONITORS = [
    ("Bridge", "name,ports,external_ids", ["set", "Bridge", "br0"]),
    ("Port", "name,tag,trunks,external_ids", ["set", "Port", "p1"]),
    ("Open_vSwitch", "next_cfg,bridges,external_ids", ["set", "Open_vSwitch", "."]),
]


@pytest.mark.parametrize("table,columns,mark", MONITORS, ids=[m[0] for m in MONITORS])
def test_ovsdb_client_monitor_prints_the_same_updates(table, columns, mark):
    require_real_ovs()
    steps = [["add-br", "br1"], ["add-port", "br1", "p2", "tag=7"],
             ["set", "Port", "p2", "tag=8", "trunks=1,2"], ["set", "Port", "p2", "trunks=3"],
             ["del-port", "p2"], ["del-br", "br1"]]
    outputs = {}
    for kind in ("real", "embedded"):
        with make_server(kind, f"mon-{kind[:4]}") as s:
            v = Vsctl(s)
            v("init", "--", "add-br", "br0", "--", "add-port", "br0", "p1", "tag=5",
              "--", *mark, "external_ids:step=s0")
            mon = Monitor(s.remote, "Open_vSwitch", table, columns)
            try:
                text = mon.read_until("step=s0")
                for i, step in enumerate(steps, 1):
                    v(*step)
                    v(*mark, f"external_ids:step=s{i}")
                    text += mon.read_until(f"step=s{i}")
            finally:
                mon.close()
            outputs[kind] = normalise_monitor(text)
    assert outputs["embedded"] == outputs["real"]


# ----------------------------------------------------------------------------
# The Python IDL.

def wait_until(conn: Connection, predicate, timeout: float = 20):
    import ovs.poller

    deadline = time.monotonic() + timeout
    while True:
        conn.run()
        value = predicate()
        if value:
            return value
        left = deadline - time.monotonic()
        assert left > 0, "the IDL never saw the change"
        poller = ovs.poller.Poller()
        conn.idl.wait(poller)
        poller.timer_wait(int(left * 1000))
        poller.block()


def test_python_idl_tracks_changes_made_by_another_client():
    require_vsctl()
    with EmbeddedServer("idl") as s:
        v = Vsctl(s)
        v("init")
        conn = Connection(s.remote, timeout=10)
        try:
            def bridges():
                return {r.name: r for r in conn.tables["Bridge"].rows.values()}

            v("add-br", "br0", "--", "add-port", "br0", "p1", "tag=10")
            wait_until(conn, lambda: "br0" in bridges())
            ports = {p.name for p in bridges()["br0"].ports}
            assert ports == {"br0", "p1"}
            v("set", "Port", "p1", "tag=11", "external_ids:k=v")
            wait_until(conn, lambda: [p for p in conn.tables["Port"].rows.values()
                                      if p.name == "p1" and p.tag == [11]])
            port = next(p for p in conn.tables["Port"].rows.values() if p.name == "p1")
            assert port.external_ids == {"k": "v"}
            v("del-br", "br0")
            wait_until(conn, lambda: not bridges() and not conn.tables["Port"].rows)
            # and our own transactions come back through the same monitor
            api = OvsdbApi(conn)
            api.add_br("br9").execute()
            assert v("list-br").split() == ["br9"]
            assert "br9" in bridges()
        finally:
            conn.close()


def test_python_idl_reconnects_with_monitor_cond_since_and_gets_only_the_difference():
    require_vsctl()
    with EmbeddedServer("idl2") as s:
        v = Vsctl(s)
        # C keeps no more history than the database holds (in atoms, counting
        # the old and new versions of changed rows): give it some content, and
        # make the IDL's last transaction a small one.
        v("init", "--", "add-br", "br0", "--", "set", "Bridge", "br0",
          *[f"external_ids:k{i}=v" for i in range(200)])
        v("set", "Open_vSwitch", ".", "external_ids:small=txn")
        conn = Connection(s.remote, timeout=10)
        try:
            br0 = next(iter(conn.tables["Bridge"].rows.values()))
            assert conn.idl.last_id != "00000000-0000-0000-0000-000000000000"
            conn.idl.force_reconnect()
            v("add-br", "br1")
            wait_until(conn, lambda: len(conn.tables["Bridge"].rows) == 2 and conn.synced())
            # found=true: the replica was patched, not rebuilt, so br0 is the same object
            assert any(r is br0 for r in conn.tables["Bridge"].rows.values())
        finally:
            conn.close()


def test_server_database_schema_string_is_byte_identical():
    require_real_ovs()
    query = ('["_Server",{"op":"select","table":"Database",'
             '"where":[["name","==","Open_vSwitch"]],"columns":["schema"]}]')
    with make_server("real", "srv-c") as real, make_server("embedded", "srv-py") as ours:
        _, out_c, _ = run_client("query", real.remote, query)
        _, out_py, _ = run_client("query", ours.remote, query)
    assert out_py == out_c and '\\"cksum\\"' in out_c


# ----------------------------------------------------------------------------
# The command line server, killed.

def start_cli_server(dbfile: str | None, *remotes: str) -> tuple[subprocess.Popen, list[str]]:
    """``ovsnet ovsdb-server``, once it says where it listens (no polling)."""
    argv = [sys.executable, "-m", "ovsnet", "ovsdb-server", *([dbfile] if dbfile else []),
            *[f"--remote={r}" for r in remotes]]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    addresses = []
    for _ in remotes:
        line = proc.stderr.readline()
        assert line.startswith("listening on "), line + proc.stderr.read()
        addresses.append(line.split()[-1])
    # keep its stderr drained, so that warnings can never block it
    threading.Thread(target=proc.stderr.read, daemon=True).start()
    return proc, addresses


class _Remote:
    def __init__(self, remote: str):
        self.remote = remote


def test_cli_server_creates_the_database_and_serves_ovs_vsctl(tmp_path):
    require_vsctl()
    db, sock = str(tmp_path / "conf.db"), str(tmp_path / "db.sock")
    proc, addresses = start_cli_server(db, f"punix:{sock}", "ptcp:0")
    try:
        assert addresses[0] == f"unix:{sock}"
        assert re.fullmatch(r"tcp:127\.0\.0\.1:\d+", addresses[1])
        assert os.stat(sock).st_mode & 0o777 == 0o600
        Vsctl(_Remote(addresses[0]))("init", "--", "add-br", "br0")
        assert Vsctl(_Remote(addresses[1]))("list-br").split() == ["br0"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert not os.path.exists(sock)
    proc, _ = start_cli_server(db, f"punix:{sock}")
    try:
        assert Vsctl(_Remote(f"unix:{sock}"))("list-br").split() == ["br0"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def test_cli_server_without_a_file_is_in_memory(tmp_path):
    require_vsctl()
    sock = str(tmp_path / "db.sock")
    proc, (address,) = start_cli_server(None, f"punix:{sock}")
    try:
        Vsctl(_Remote(address))("init", "--", "add-br", "br0")
        assert Vsctl(_Remote(address))("list-br").split() == ["br0"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert os.listdir(tmp_path) == []


def test_kill_9_loses_no_acknowledged_commit(tmp_path):
    N = 2000
    db, sock = str(tmp_path / "conf.db"), str(tmp_path / "db.sock")
    proc, _ = start_cli_server(db, f"punix:{sock}")
    c = socket.socket(socket.AF_UNIX)
    c.settimeout(30)
    c.connect(sock)
    c.sendall(b'{"method":"transact","params":["Open_vSwitch",{"op":"insert",'
              b'"table":"Open_vSwitch","row":{}}],"id":"init"}')
    framer = Framer()
    acked: set[str] = set()
    # A stream of 2000 pipelined commits (sent by a thread: the server, like C's,
    # stops reading from a client that does not read its replies); the server
    # dies after 150 answers.

    def send_all():
        try:
            for i in range(N):
                c.sendall(b'{"method":"transact","params":["Open_vSwitch",{"op":"insert",'
                          b'"table":"Bridge","row":{"name":"br%d"},"uuid-name":"b"},'
                          b'{"op":"mutate","table":"Open_vSwitch","where":[],"mutations":'
                          b'[["bridges","insert",["named-uuid","b"]]]}],"id":%d}' % (i, i))
        except OSError:
            pass   # the server is gone

    writer = threading.Thread(target=send_all)
    writer.start()
    try:
        while True:
            data = c.recv(65536)
            if not data:
                break
            framer.feed(data)
            while (msg := framer.next()) is not None:
                if msg["id"] != "init":
                    assert msg["result"][1] == {"count": 1}, msg
                    acked.add(f"br{msg['id']}")
                if len(acked) == 150 and proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
    except (ConnectionResetError, TimeoutError):
        pass
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        c.close()
        writer.join()
    assert 150 <= len(acked) < N
    proc, _ = start_cli_server(db, f"punix:{sock}")
    try:
        c = socket.socket(socket.AF_UNIX)
        c.settimeout(30)
        c.connect(sock)
        c.sendall(b'{"method":"transact","params":["Open_vSwitch",{"op":"select",'
                  b'"table":"Bridge","where":[],"columns":["name"]}],"id":1}')
        framer = Framer()
        while (msg := framer.next()) is None:
            framer.feed(c.recv(1 << 20))
        names = {r["name"] for r in msg["result"][0]["rows"]}
        assert acked <= names
        assert names <= {f"br{i}" for i in range(N)}
        c.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


# ----------------------------------------------------------------------------
# Raw JSON-RPC, side by side: the same requests, the same answers.

RAW_REQUESTS = [
    ["list_dbs", []], ["get_schema", ["_Server"]], ["get_schema", ["nope"]], ["get_schema", []],
    ["echo", [1, "a", {"b": [None, True]}]], ["foo", []], ["transact", []],
    ["transact", ["Open_vSwitch", {"op": "select", "table": "Open_vSwitch", "where": [],
                                   "columns": ["next_cfg", "bridges"]}]],
    ["transact", ["Open_vSwitch", {"op": "nope"}]],
    ["transact", ["_Server", {"op": "update", "table": "Database", "where": [], "row": {}}]],
    ["monitor", ["_Server", "m1", {"Database": {"columns": ["name", "model", "connected",
                                                           "leader", "cid", "sid", "index"]}}]],
    ["monitor_cond", ["_Server", "m2", {"Database": [{"columns": ["name", "leader"], "where": [
        ["name", "==", "_Server"]]}]}]],
    ["monitor_cond_since", ["_Server", "m3", {"Database": [{"columns": ["name"]}]},
                            "00000000-0000-0000-0000-000000000000"]],
    ["monitor_cond", ["Open_vSwitch", "m4", {"Bridge": [{"columns": ["name"]}],
                                             "Port": {"columns": ["tag"]}}]],
    ["monitor_cond", ["Open_vSwitch", "m1", {"Bridge": [{}]}]],
    ["monitor_cond", ["Open_vSwitch", "x", {"Bridge": [{}]}, 5]],
    ["monitor_cond", ["Open_vSwitch", "x", []]],
    ["monitor_cond", ["Open_vSwitch", "x", {"Nope": [{}]}]],
    ["monitor_cond", ["Open_vSwitch", "x", {"Bridge": [5]}]],
    ["monitor_cond", ["Open_vSwitch", "x", {"Bridge": [{"columns": "name"}]}]],
    ["monitor_cond", ["Open_vSwitch", "x", {"Bridge": [{"columns": ["nope"]}]}]],
    ["monitor_cond", ["Open_vSwitch", "x", {"Bridge": [{"columns": [1]}]}]],
    ["monitor_cond", ["Open_vSwitch", "x", {"Bridge": [{"extra": 1}]}]],
    ["monitor_cond", ["Open_vSwitch", "x", {"Bridge": [{"extra": 1, "more": 2, "columns": []}]}]],
    ["monitor_cond", ["Open_vSwitch", "x", {"Bridge": [{"select": {"initial": 1}}]}]],
    ["monitor_cond", ["Open_vSwitch", "x", {"Bridge": [{"select": {"nope": True}}]}]],
    ["monitor_cond", ["Open_vSwitch", "x", {"Bridge": [{"where": [["nope", "==", 1]]}]}]],
    ["monitor_cond", ["Open_vSwitch", "x", {"Bridge": [{"where": [["name", "~", "a"]]}]}]],
    ["monitor_cond", ["Open_vSwitch", "x", {"Bridge": [{"where": [["name", "<", "a"]]}]}]],
    ["monitor_cond", ["Open_vSwitch", "x", {"Bridge": [{"where": [["name", "==", 1]]}]}]],
    ["monitor_cond", ["Open_vSwitch", "x", {"Bridge": [{"where": [["name"]]}]}]],
    ["monitor_cond", ["Open_vSwitch", "x", {"Port": [{"where": [["tag", "<", "x"]]}]}]],
    ["monitor_cond", ["Open_vSwitch", "x", {"Port": [{"where": [["trunks", "includes",
                                                                  ["set", [1, 2]]]]}]}]],
    ["monitor_cond", ["Open_vSwitch", "y", {"Port": [{"where": [["trunks", "==", 5000]]}]}]],
    ["monitor_cond_change", ["m4", "m4", {"Bridge": [{"where": [True]}]}]],
    ["monitor_cond_change", ["m4"]],
    ["monitor_cond_change", ["nope", "nope", {}]],
    ["monitor_cond_change", ["m4", "m2", {}]],
    ["monitor_cond_change", ["m4", "m4", []]],
    ["monitor_cond_change", ["m4", "m4", {"Nope": []}]],
    ["monitor_cond_change", ["m4", "m4", {"Interface": []}]],
    ["monitor_cond_change", ["m4", "m4", {"Bridge": {}}]],
    ["monitor_cond_change", ["m4", "m4", {"Bridge": [{"columns": []}]}]],
    ["monitor_cond_change", ["m1", "m1", {"Database": [{"where": [False]}]}]],
    ["monitor_cancel", ["m1"]], ["monitor_cancel", ["m1"]], ["monitor_cancel", [1, 2]],
    ["monitor_cond_since", ["Open_vSwitch", "z", {}, 5]],
    ["monitor_cond_since", ["Open_vSwitch", "z", {}, "zz"]],
    ["lock", []], ["lock", ["a b"]], ["lock", ["L"]], ["lock", ["L"]], ["steal", ["L"]],
    ["unlock", ["M"]], ["unlock", ["L"]], ["set_db_change_aware", []],
    ["set_db_change_aware", [False]], ["get_server_id", [1]],
    # updates of the three monitor versions for the same commits
    ["monitor", ["Open_vSwitch", "v1", {"Bridge": {"columns": ["name", "external_ids",
                                                              "flood_vlans", "fail_mode"]},
                                        "Open_vSwitch": {"select": {"modify": False}}}]],
    ["monitor_cond", ["Open_vSwitch", "v2", {"Bridge": [{"columns": [
        "name", "external_ids", "flood_vlans", "fail_mode", "_version"]}]}]],
    ["monitor_cond_since", ["Open_vSwitch", "v3", {"Bridge": [{"where": [
        ["fail_mode", "==", "secure"]], "columns": ["name", "fail_mode"]}]},
                            "00000000-0000-0000-0000-000000000000"]],
    ["transact", ["Open_vSwitch",
                  {"op": "insert", "table": "Bridge", "uuid-name": "b", "row": {
                      "name": "br9", "external_ids": ["map", [["a", "1"], ["b", "2"]]],
                      "flood_vlans": ["set", [1, 2, 3]]}},
                  {"op": "mutate", "table": "Open_vSwitch", "where": [],
                   "mutations": [["bridges", "insert", ["named-uuid", "b"]]]}]],
    ["transact", ["Open_vSwitch", {"op": "update", "table": "Bridge",
                                   "where": [["name", "==", "br9"]],
                                   "row": {"external_ids": ["map", [["a", "9"], ["c", "3"]]],
                                           "flood_vlans": ["set", [2, 4]],
                                           "fail_mode": "secure"}}]],
    ["transact", ["Open_vSwitch", {"op": "mutate", "table": "Bridge",
                                   "where": [["name", "==", "br9"]],
                                   "mutations": [["flood_vlans", "delete", 4]]}]],
    ["transact", ["Open_vSwitch", {"op": "update", "table": "Bridge",
                                   "where": [["name", "==", "br9"]],
                                   "row": {"fail_mode": ["set", []]}}]],
    ["monitor_cond_change", ["v3", "v3", {"Bridge": [{"where": [["name", "!=", "nope"]]}]}]],
    ["transact", ["Open_vSwitch", {"op": "mutate", "table": "Open_vSwitch", "where": [],
                                   "mutations": [["bridges", "delete",
                                                  ["set", []]]]},
                  {"op": "comment", "comment": "nothing"}]],
    ["transact", ["Open_vSwitch", {"op": "update", "table": "Open_vSwitch", "where": [],
                                   "row": {"bridges": ["set", []]}}]],
    ["transact", ["Open_vSwitch", {"op": "wait", "table": "Bridge", "where": [],
                                   "columns": ["name"], "until": "==", "rows": [],
                                   "timeout": 0}]],
]


def _raw_session(remote: str) -> list:
    path = remote[len("unix:"):]
    c = socket.socket(socket.AF_UNIX)
    c.settimeout(20)
    c.connect(path)
    framer = Framer()
    answers = []
    for i, (method, params) in enumerate(RAW_REQUESTS):
        c.sendall(json.dumps({"method": method, "params": params, "id": i}).encode())
        msgs = []
        while not msgs or msgs[-1].get("id") != i:
            while (msg := framer.next()) is None:
                data = c.recv(1 << 20)
                assert data, f"closed after {method} {params}"
                framer.feed(data)
            msgs.append(msg)
        # Notifications of different monitors come in C's hash order of the
        # monitor ids; clients cannot depend on it, so compare them as a set.
        answers.append(sorted(msgs[:-1], key=json.dumps) + msgs[-1:])
    c.close()
    # UUIDs differ between servers; objects keyed by them become sorted pair lists.
    return json.loads(UUID_RE.sub("<uuid>", json.dumps(answers)),
                      object_pairs_hook=lambda pairs: sorted(pairs, key=repr))


def test_raw_json_rpc_answers_are_the_same_as_the_c_server_s():
    require_real_ovs()
    with make_server("real", "raw-c") as real, make_server("embedded", "raw-py") as ours:
        for s in (real, ours):
            Vsctl(s)("init", "--", "add-br", "br0", "--", "add-port", "br0", "p1", "tag=5")
        theirs, mine = _raw_session(real.remote), _raw_session(ours.remote)
    for request, a, b in zip(RAW_REQUESTS, theirs, mine, strict=True):
        assert b == a, request
