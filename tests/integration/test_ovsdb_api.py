"""The command API against a real ovsdb-server, checked with the real ovs-vsctl."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from ovsnet.errors import OvsdbError, OvsdbTransactionError
from ovsnet.ovsdb import OvsdbApi, RealServer, get_schema, show
from ovsnet.ovsdb.commands import Command
from ovsnet.ovsdb.rows import index_of


def _populate(api):
    with api.transaction() as txn:
        txn.add(api.add_br("br-int", fail_mode="secure", datapath_type="netdev"))
        txn.add(api.add_port("br-int", "vm1", port_columns={"tag": 10, "trunks": [1, 2]},
                             iface_columns={"type": "dpdkvhostuserclient",
                                            "options": {"vhost-server-path": "/run/vm1.sock"},
                                            "mtu_request": 9000}))
        txn.add(api.add_bond("br-int", "bond0", ["eth2", "eth3"],
                             port_columns={"bond_mode": "balance-tcp", "lacp": "active"}))
        txn.add(api.add_port("br-int", "vx0", iface_columns={
            "type": "vxlan", "options": {"remote_ip": "192.0.2.2", "key": "100"}}))
        txn.add(api.add_br("br-tun"))
        txn.add(api.add_port("br-tun", "patch-int", iface_columns={
            "type": "patch", "options": {"peer": "patch-tun"}}))


def test_schema_comes_from_the_server(ovsdb_server):
    schema = get_schema(ovsdb_server.remote)
    assert schema["name"] == "Open_vSwitch"
    assert "Bridge" in schema["tables"]


def test_show_is_byte_identical_to_ovs_vsctl(api, vsctl):
    _populate(api)
    vsctl("set", "Open_vSwitch", ".", "ovs_version=3.1.0", "--", "set-manager", "ptcp:6640",
          "--", "set", "Bridge", "br-tun", 'external_ids:note="a b"')
    api.connection.run()
    api.connection.wait_for_sync()
    ours = show(api.idl)
    assert ours == vsctl("show")
    assert "Bridge br-int" in ours and "type: dpdkvhostuserclient" in ours


def test_queries_agree_with_ovs_vsctl(api, vsctl):
    _populate(api)
    assert api.list_br().execute() == vsctl("list-br").split()
    assert api.list_ports("br-int").execute() == vsctl("list-ports", "br-int").split()
    assert api.port_to_br("bond0").execute() == vsctl("port-to-br", "bond0").strip()
    assert api.br_exists("br-tun").execute() is True
    assert api.br_exists("nope").execute() is False
    assert vsctl.run("br-exists", "nope", check=False).returncode == 2
    assert api.db_get("Port", "vm1", "tag").execute() == [10]
    assert vsctl("get", "Port", "vm1", "tag").strip() == "10"
    found = api.db_find("Interface", ("type", "vxlan"), columns=["name"]).execute()
    assert [r["name"] for r in found] == vsctl(
        "--bare", "--columns=name", "find", "Interface", "type=vxlan").split()


def test_changes_made_by_ovs_vsctl_are_seen(api, vsctl):
    _populate(api)
    vsctl("add-port", "br-tun", "gre0", "--", "set", "Interface", "gre0", "type=gre",
          "options:remote_ip=192.0.2.9")
    # The next transaction syncs the replica before it runs.
    assert "gre0" in api.list_ports("br-tun").execute()


def test_generic_commands(api, vsctl):
    _populate(api)
    with api.transaction() as txn:
        txn.add(api.db_set("Port", "vm1", ("tag", 20), ("external_ids", {"a": "1"})))
        txn.add(api.db_add("Port", "vm1", "trunks", 7))
        txn.add(api.db_remove("Port", "vm1", "trunks", 1))
        txn.add(api.db_set("Bridge", "br-int", ("other_config", {"x": "y"})))
        txn.add(api.db_clear("Bridge", "br-int", "fail_mode"))
    assert vsctl("get", "Port", "vm1", "tag").strip() == "20"
    assert vsctl("get", "Port", "vm1", "trunks").strip() == "[2, 7]"
    assert vsctl("get", "Port", "vm1", "external_ids").strip() == '{a="1"}'
    assert vsctl("get", "Bridge", "br-int", "fail_mode").strip() == "[]"
    uuid = api.db_create("QoS", type="linux-htb").execute()
    assert vsctl("get", "QoS", str(uuid), "type").strip() == "linux-htb"
    api.db_destroy("QoS", str(uuid)).execute()
    assert vsctl("list", "QoS").strip() == ""
    rows = api.db_list("Bridge", columns=["name"]).execute()
    assert sorted(r["name"] for r in rows) == ["br-int", "br-tun"]


# (ovs-vsctl arguments that fail, the same operation through the API)
ERROR_CASES = [
    (["add-br", "br-int"], lambda api: api.add_br("br-int")),
    (["add-port", "br-int", "vm1"], lambda api: api.add_port("br-int", "vm1")),
    (["add-port", "br-tun", "vm1"], lambda api: api.add_port("br-tun", "vm1")),
    (["add-br", "vm1"], lambda api: api.add_br("vm1")),
    (["del-br", "nope"], lambda api: api.del_br("nope")),
    (["del-port", "nope"], lambda api: api.del_port("nope")),
    (["del-port", "br-int"], lambda api: api.del_port("br-int")),
    (["del-port", "br-tun", "vm1"], lambda api: api.del_port("vm1", bridge="br-tun")),
    (["add-port", "nope", "p9"], lambda api: api.add_port("nope", "p9")),
    (["--may-exist", "add-port", "br-tun", "vm1"],
     lambda api: api.add_port("br-tun", "vm1", may_exist=True)),
    (["set", "Port", "nope", "tag=1"], lambda api: api.db_set("Port", "nope", ("tag", 1))),
    (["get", "Port", "nope", "tag"], lambda api: api.db_get("Port", "nope", "tag")),
    (["port-to-br", "nope"], lambda api: api.port_to_br("nope")),
]


@pytest.mark.parametrize("argv,make", ERROR_CASES, ids=[" ".join(a) for a, _ in ERROR_CASES])
def test_error_messages_match_ovs_vsctl(api, vsctl, argv, make):
    _populate(api)
    before = vsctl("show")
    proc = vsctl.run(*argv, check=False)
    assert proc.returncode != 0
    expected = proc.stderr.strip().removeprefix("ovs-vsctl: ")
    with pytest.raises(OvsdbTransactionError) as exc:
        make(api).execute()
    assert str(exc.value) == expected
    assert vsctl("show") == before


def test_may_exist_and_if_exists_are_idempotent(api, vsctl):
    _populate(api)
    before = vsctl("show")
    api.add_br("br-int", may_exist=True).execute()
    api.add_port("br-int", "vm1", may_exist=True).execute()
    api.del_br("nope", if_exists=True).execute()
    api.del_port("nope", if_exists=True).execute()
    api.db_set("Port", "nope", ("tag", 1), if_exists=True).execute()
    assert vsctl("show") == before


@pytest.mark.parametrize("column,value", [
    ("tag", 4096), ("tag", -1), ("vlan_mode", "bogus"), ("bond_mode", "round-robin"),
    ("trunks", [1, 5000]), ("nope", 1),
])
def test_invalid_values_are_rejected_and_nothing_is_written(api, vsctl, column, value):
    _populate(api)
    before = vsctl("show")
    with pytest.raises(OvsdbTransactionError) as exc:
        with api.transaction() as txn:
            txn.add(api.add_br("br-new"))
            txn.add(api.db_set("Port", "vm1", (column, value)))
    assert column in str(exc.value)
    assert vsctl("show") == before
    assert "br-new" not in vsctl("list-br")


def test_a_failing_command_aborts_the_whole_transaction(api, vsctl):
    with pytest.raises(OvsdbTransactionError, match="no bridge named missing"):
        with api.transaction() as txn:
            txn.add(api.add_br("br0"))
            txn.add(api.add_port("br0", "p1"))
            txn.add(api.add_port("missing", "p2"))
    assert vsctl("list-br").strip() == ""


def test_server_side_errors_are_reported_and_nothing_is_written(api, vsctl):
    api.init().execute()
    with pytest.raises(OvsdbTransactionError, match="constraint violation"):
        with api.transaction() as txn:
            txn.add(api.add_br("br0"))
            txn.add(api.db_create("Open_vSwitch"))  # the table holds at most one row
    assert vsctl("list-br").strip() == ""


class _RacingCommand(Command):
    """Reads the bridge's ports, then lets ovs-vsctl change them before committing."""

    def __init__(self, api, vsctl):
        super().__init__(api)
        self.vsctl = vsctl
        self.attempts = 0

    def run_idl(self, txn):
        self.attempts += 1
        bridge = index_of(txn).find("Bridge", "br0")
        bridge.verify("ports")
        if self.attempts == 1:
            self.vsctl("add-port", "br0", "sneaky")
        bridge.external_ids = {"ports-seen": str(len(bridge.ports))}
        self.result = len(bridge.ports)


def test_stale_replica_is_retried_with_fresh_data(api, vsctl):
    api.add_br("br0").execute()
    racing = _RacingCommand(api, vsctl)
    with api.transaction() as txn:
        txn.add(racing)
    assert racing.attempts == 2
    assert racing.result == 2  # the local port and the one ovs-vsctl added
    assert vsctl("get", "Bridge", "br0", "external_ids:ports-seen").strip() == '"2"'


class _KillServer(Command):
    def __init__(self, api, server):
        super().__init__(api)
        self.server = server

    def run_idl(self, txn):
        if self.server.pid is not None:
            os.kill(self.server.pid, signal.SIGKILL)
            self.server.wait_stopped()


def test_server_gone_mid_transaction_is_an_error_and_writes_nothing():
    from tests.conftest import require_real_ovs

    require_real_ovs()
    with RealServer("gone") as server:
        with OvsdbApi.connect(server.remote, timeout=3) as api:
            api.add_br("br0").execute()
            with pytest.raises(OvsdbError):
                with api.transaction() as txn:
                    txn.add(api.add_br("br1"))
                    txn.add(_KillServer(api, server))
        server.start()
        out = subprocess.run(["ovs-vsctl", "--no-wait", f"--db={server.remote}", "list-br"],
                             capture_output=True, text=True, check=True).stdout
        assert out.split() == ["br0"]


def test_unreachable_server_is_a_clear_error(tmp_path):
    with pytest.raises(OvsdbError, match="cannot connect"):
        OvsdbApi.connect(f"unix:{tmp_path}/nothing.sock", timeout=2)
