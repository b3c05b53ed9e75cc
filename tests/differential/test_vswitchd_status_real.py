"""The status columns ovsnet's vswitchd writes against those real ovs-vswitchd writes.

A topology host is written into a private ovsdb-server with the same code
as ``ovsnet apply``; then Debian's ovs-vswitchd runs on that database with
``--enable-dummy=override`` (every system, tap and tunnel device becomes a
dummy netdev, so no root is needed) and writes its status. ovsnet's
:class:`~ovsnet.vswitchd.Vswitchd` reads the same database and
:func:`~ovsnet.vswitchd.daemon_status` says what it would write; the two
are compared column by column.

Compared exactly: ``cur_cfg``, ``ofport`` (requested numbers and ``LOCAL``
per interface; numbers ``alloc_ofp_port`` hands out as a set, because OVS
walks new ports in hash order and ovsnet by name), ``error``,
``admin_state``, ``link_state``, ``link_resets``, ``datapath_id``,
the bridges' own ``mac_in_use``, ``mtu`` (except tunnels), ``dpdk_*``, and
``datapath_types``/``iface_types`` (up to the dummy types and what ovsnet
models). A vswitchd built on the database OVS wrote takes OVS's numbers
(``iface_pick_ofport`` reads the ``ofport`` column), as a restarted
ovs-vswitchd would. Not compared, because the dummy devices differ from the system
devices ovsnet describes: ``ifindex`` (dummy: 0), ``status`` (no driver
info, no tunnel routes with ``--disable-system-route``), other devices'
``mac_in_use`` (dummy: ``aa:55:aa:55:00:NN``; random for patch ports),
tunnels' ``mtu`` (a dummy has 1500, a tunnel vport none), ``link_speed``
and ``datapath_version`` (dpif-netdev's ``<built-in>`` for every bridge).

A second case adds broken Interfaces with the real ovs-vsctl (plain
``--enable-dummy``, so tunnel and patch netdevs are the real classes) and
compares ``ofport`` -1 and the ``error`` texts. A third runs one session of
ovs-vsctl commands (each waiting for ``cur_cfg``, as ovs-vsctl does by
default) against real ovs-vswitchd and against ovsnet's vswitchd serving an
embedded ovsdb-server through a :class:`~ovsnet.vswitchd.DatabaseLoop`, and
compares what a client sees after every step: ``ofport`` (requested,
allocated, not reused after a delete, moved by a new request), ``error``
(failed and fixed Interfaces, a patch port whose peer is missing), the
link states, MTUs (``mtu_request`` and internal ports following the
bridge's least MTU as ofproto's history leaves them), ``datapath_id``
(``other_config:datapath-id`` and ``hwaddr``), ``datapath_version`` (of a
``dummy`` bridge) and ``cur_cfg``.
"""

from __future__ import annotations

import os
import time

import pytest

from ovsnet.ofproto.ofp_fields import OFPP_LOCAL
from ovsnet.ovsdb import OvsdbApi, apply_host
from ovsnet.ovsdb.backends import EmbeddedServer, find_schema
from ovsnet.topology import load_topology
from ovsnet.vswitchd import DatabaseLoop, Vswitchd, daemon_status
from tests.differential.ovs_sandbox import DEADLINE, OvsSandbox

CASES = [("two-hosts-vxlan.yaml", "hv1"), ("single-bridge.yaml", "host1"),
         ("three-hosts-geneve.yaml", "node-a")]
_EXACT = ("error", "admin_state", "link_state", "link_resets")
_TUNNELS = ("vxlan", "geneve", "gre", "erspan", "stt")


def _rows(api) -> dict:
    api.connection.run()
    return {(t, getattr(r, "name", ".")): r for t in ("Open_vSwitch", "Bridge", "Interface")
            for r in api.idl.tables[t].rows.values()}


@pytest.fixture
def sandbox(tmp_path):
    sb = OvsSandbox(str(tmp_path))
    yield sb
    sb.stop()


def _start_on_topology(sb: OvsSandbox, path: str, host: str):
    """ovsdb-server with the host applied as ``ovsnet apply`` does, then ovs-vswitchd."""
    db = os.path.join(sb.root, "conf.db")
    sb.run("ovsdb-tool", "create", db, find_schema())
    sb.run("ovsdb-server", "--detach", "--no-chdir", "--pidfile", "--log-file",
           f"--remote=punix:{sb.root}/db.sock", db)
    sb.started.append("ovsdb-server")
    topo = load_topology(path)
    with OvsdbApi.connect(f"unix:{sb.root}/db.sock", timeout=30) as api:
        apply_host(api, topo, host)
    # --detach returns once the first configuration's transaction (cur_cfg) committed
    sb.run("ovs-vswitchd", "--enable-dummy=override", "--disable-system",
           "--disable-system-route", "--detach", "--no-chdir", "--pidfile", "--log-file")
    sb.started.append("ovs-vswitchd")
    return topo.hosts[host]


@pytest.mark.parametrize("path, host", CASES)
def test_status_columns_as_ovs_vswitchd_writes_them(sandbox, path, host):
    topo_host = _start_on_topology(sandbox, f"topologies/{path}", host)
    api = OvsdbApi.connect(f"unix:{sandbox.root}/db.sock", timeout=30)
    try:
        rows = _rows(api)
        names = [n for (t, n) in rows if t == "Interface"]
        for name in names:  # the status transaction comes after cur_cfg's
            sandbox.vsctl("--timeout=30", "wait-until", "Interface", name, "link_state=up")
        rows = _rows(api)
        # allocated afresh, not read back from the ofport column OVS wrote
        vs = Vswitchd.from_idl(api.idl, host=topo_host, strict_flows=False, ofport_hints={})
        ours = {key: values for key, (_row, values) in daemon_status(vs, api.idl).items()}
        # as ovs-vswitchd restarting on this database would, ovsnet keeps OVS's numbers
        restarted = Vswitchd.from_idl(api.idl, host=topo_host, strict_flows=False)
        again = {key: values["ofport"] for key, (_row, values)
                 in daemon_status(restarted, api.idl).items() if key[0] == "Interface"}
    finally:
        api.close()
    assert again == {key: rows[key].ofport[0] for key in again}

    root, mine = rows[("Open_vSwitch", ".")], ours[("Open_vSwitch", ".")]
    assert root.cur_cfg == root.next_cfg == mine["cur_cfg"]
    assert set(root.datapath_types) - {"dummy"} == set(mine["datapath_types"])
    dpdk = {"dpdk", "dpdkvhostuser", "dpdkvhostuserclient"}
    assert set(mine["iface_types"]) - dpdk <= set(root.iface_types)
    assert (root.dpdk_initialized, root.dpdk_version) == (
        mine["dpdk_initialized"], [mine["dpdk_version"]])

    auto_real, auto_ours = set(), set()
    for (table, name), values in ours.items():
        row = rows[(table, name)]
        if table == "Bridge":
            assert row.datapath_id == [values["datapath_id"]], name
            assert rows[("Interface", name)].mac_in_use == [
                ":".join(values["datapath_id"][4:][i:i + 2] for i in range(0, 12, 2))], name
            continue
        if table != "Interface":
            continue
        for column in _EXACT:
            want = values[column]
            assert getattr(row, column) == ([] if want is None else [want]), (name, column)
        if row.type not in _TUNNELS:
            want = values["mtu"]
            assert row.mtu == ([] if want is None else [want]), name
        if row.ofport_request or values["ofport"] == OFPP_LOCAL:
            assert row.ofport == [values["ofport"]], name
        else:
            auto_real.update(row.ofport)
            auto_ours.add(values["ofport"])
    assert auto_real == auto_ours


BROKEN = [
    ("foo", ["type=foo"]),
    ("vx", ["type=vxlan"]),
    ("gnv", ["type=geneve", "options:remote_ip=nowhere"]),
    ("pp", ["type=patch"]),
    ("ps", ["type=patch", "options:peer=ps"]),
    ("pq", ["type=patch", "options:peer=p1", "options:x=1"]),
    ("vxlan_sys_4789", ["type=dummy"]),
]


def test_failed_interfaces_as_ovs_vswitchd_records_them(sandbox):
    sb = sandbox.start()
    sb.vsctl("add-br", "br0", "--", "set", "Bridge", "br0", "datapath_type=dummy")
    sb.vsctl("add-port", "br0", "p1", "--", "set", "Interface", "p1", "type=dummy",
             "ofport_request=1")
    for name, settings in BROKEN:
        # ovs-vsctl reports the error (exit status 0) once ovs-vswitchd recorded it
        sb.run("ovs-vsctl", "add-port", "br0", name, "--", "set", "Interface", name,
               *settings, check=False)
    api = OvsdbApi.connect(f"unix:{sb.root}/db.sock", timeout=30)
    try:
        rows = _rows(api)
        vs = Vswitchd.from_idl(api.idl, strict_flows=False)
        ours = {key: values for key, (_row, values) in daemon_status(vs, api.idl).items()}
    finally:
        api.close()
    for name, _settings in BROKEN:
        row, values = rows[("Interface", name)], ours[("Interface", name)]
        assert row.ofport == [-1] == [values["ofport"]], name
        assert row.error == ([] if values["error"] is None else [values["error"]]), name
    assert rows[("Interface", "p1")].ofport == [1] == [ours[("Interface", "p1")]["ofport"]]


#: ovs-vsctl commands (each waits for cur_cfg) run against both daemons, in order
STEPS = [
    ["add-br", "br0", "--", "set", "Bridge", "br0", "datapath_type=dummy",
     "other_config:datapath-id=0000000000000abc"],
    ["add-port", "br0", "p1", "--", "set", "Interface", "p1", "type=dummy", "ofport_request=1"],
    ["add-port", "br0", "p2", "--", "set", "Interface", "p2", "type=dummy"],
    ["add-port", "br0", "bad", "--", "set", "Interface", "bad", "type=vxlan"],
    ["set", "Interface", "bad", "type=dummy"],
    ["del-port", "br0", "p2"],
    ["add-port", "br0", "p3", "--", "set", "Interface", "p3", "type=dummy"],
    ["set", "Interface", "p1", "ofport_request=10"],
    ["add-port", "br0", "pp", "--", "set", "Interface", "pp", "type=patch"],
    ["set", "Interface", "pp", "options:peer=nowhere"],
    ["add-br", "br1", "--", "set", "Bridge", "br1", "datapath_type=dummy",
     "other_config:hwaddr=00:1b:21:00:00:01"],
    ["add-port", "br1", "q1", "--", "set", "Interface", "q1", "type=dummy", "mtu_request=9000"],
    ["add-port", "br1", "i1", "--", "set", "Interface", "i1", "type=internal"],
]
_SEEN = ("name", "ofport", "error", "admin_state", "link_state", "link_resets", "mtu")


def _observe(vsctl) -> str:
    """What a client sees: the owned columns of every Interface, datapath_id, cur_cfg."""
    ifaces = vsctl("--columns=" + ",".join(_SEEN), "--format=csv", "--no-headings",
                   "list", "Interface")
    bridges = vsctl("--columns=name,datapath_id,datapath_version", "--format=csv", "--no-headings",
                    "list", "Bridge")
    cfg = vsctl("get", "Open_vSwitch", ".", "cur_cfg", "next_cfg")
    return "".join(sorted(ifaces.splitlines(True))) + "".join(sorted(bridges.splitlines(True))) + cfg


def test_ovs_vsctl_session_against_both_daemons(sandbox):
    """The same ovs-vsctl commands, waiting for cur_cfg as they do by default, against real
    ovs-vswitchd and against ovsnet's vswitchd on its own server (DatabaseLoop): after every
    step a client sees the same ofport, error, states, MTUs, datapath_id and cur_cfg."""
    sb = sandbox.start()
    server = EmbeddedServer("status")
    api = None
    try:
        def ours(*args: str) -> str:
            proc = sb.run("ovs-vsctl", f"--db={server.remote}", "--timeout=30", *args,
                          check=False)
            assert proc.returncode == 0, f"ovs-vsctl {' '.join(args)}: {proc.stderr}"
            return proc.stdout

        ours("--no-wait", "init")
        api = OvsdbApi.connect(server.remote, timeout=30)
        vs = Vswitchd.from_idl(api.idl)
        vs.api = api
        vs.write_status()
        with DatabaseLoop(vs):
            for step in STEPS:  # each returns once cur_cfg reached its next_cfg
                # a failed Interface is reported on stderr, with exit status 0
                sb.vsctl("--timeout=30", *step)
                ours(*step)
                mine = _observe(ours)
                # ovs-vsctl returns at cur_cfg; OVS writes the device status (and a patch
                # port's missing peer) in a later transaction of its own: poll until the
                # columns settle, with a deadline, as OVS's OVS_WAIT_UNTIL does
                deadline = time.monotonic() + DEADLINE
                while (theirs := _observe(lambda *a: sb.vsctl(*a))) != mine \
                        and time.monotonic() < deadline:
                    pass
                assert mine == theirs, f"after ovs-vsctl {' '.join(step)}"
    finally:
        if api is not None:
            api.close()
        server.stop()
