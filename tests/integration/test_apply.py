"""Topology -> OVSDB on a real ovsdb-server: round trip, idempotence, diffs, ownership."""

from __future__ import annotations

import glob
import subprocess
import sys
import textwrap

import pytest

from ovsnet.errors import ForeignObjectError, OvsdbTransactionError
from ovsnet.ovsdb import OvsdbApi, RealServer, apply_host, bring_up, plan, show, vsctl_args
from ovsnet.ovsdb import desired as desired_mod
from ovsnet.topology import load_topology, load_topology_text
from ovsnet.topology.model import OWNER_KEY
from tests.conftest import Vsctl, require_real_ovs

EXAMPLES = sorted(glob.glob("topologies/*.yaml"))

BASE = """
name: t1
hosts:
  h1:
    nics: {eth1: {mac: "02:00:00:00:00:01"}}
    vms:
      vm1: {nics: {eth0: {mac: "52:54:00:00:00:01", ip: 10.0.0.1/24}}}
    bridges:
      br0:
        fail_mode: secure
        other_config: {mac-aging-time: 300}
        ports:
          p1: {tag: 10}
          p2: {trunks: [10, 12], vlan_mode: native-untagged, ofport: 2}
          vm1-eth0: {vm: vm1}
          eth1: {}
          vx0: {type: vxlan, remote_ip: 192.0.2.2, key: 100}
          bond0: {interfaces: [eth2, eth3], bond_mode: active-backup}
"""


def topo_from(text: str, name: str = "t.yaml"):
    return load_topology_text(textwrap.dedent(text), name)


def db_state(server) -> dict:
    """Bridge/Port/Interface rows by name, references as names, UUIDs dropped."""
    with OvsdbApi.connect(server.remote) as api:
        idl = api.idl
        state = {}
        for table in ("Bridge", "Port", "Interface"):
            for row in idl.tables[table].rows.values():
                cols = {}
                for column in idl.tables[table].columns:
                    value = getattr(row, column)
                    if column in ("ports", "interfaces"):
                        value = sorted(r.name for r in value)
                    elif hasattr(value, "uuid") or (
                            isinstance(value, list) and value and hasattr(value[0], "uuid")):
                        continue
                    cols[column] = value
                state[(table, row.name)] = cols
        ovs = next(iter(idl.tables["Open_vSwitch"].rows.values()))
        state[("Open_vSwitch", ".")] = {"bridges": sorted(b.name for b in ovs.bridges),
                                         "next_cfg": ovs.next_cfg}
        return state


@pytest.fixture
def server():
    require_real_ovs()
    with RealServer("apply") as s:
        yield s


@pytest.mark.parametrize("path", EXAMPLES)
def test_examples_round_trip_yaml_ovsdb_show(path):
    """Every example: brought up on real servers, read back, equal to the model."""
    require_real_ovs()
    topo = load_topology(path)
    with bring_up(topo, "real") as dep:
        for name, db in dep.hosts.items():
            host = topo.hosts[name]
            vsctl = Vsctl(db.server)
            assert db.show() == vsctl("show")
            want = desired_mod.desired_host(topo, host)
            assert sorted(vsctl("list-br").split()) == sorted(b.name for b in want)
            for b in want:
                ports = [p.name for p in b.ports if p.name != b.name]
                assert vsctl("list-ports", b.name).split() == sorted(ports)
                for p in b.ports:
                    for iface in p.interfaces:
                        got = vsctl("get", "Interface", iface.name, "type").strip().strip('"')
                        assert got == iface.columns["type"]
                    tag = vsctl("get", "Port", p.name, "tag").strip()
                    assert tag == (str(p.columns["tag"][0]) if p.columns["tag"] else "[]")
            # Applying the same file again changes nothing.
            assert apply_host(db.api, topo, host) == []


def test_port_attributes_land_where_ovs_vsctl_puts_them(server):
    topo = topo_from(BASE)
    with OvsdbApi.connect(server.remote) as api:
        apply_host(api, topo, "h1")
    v = Vsctl(server)
    assert v("get", "Port", "p2", "trunks").strip() == "[10, 12]"
    assert v("get", "Port", "p2", "vlan_mode").strip() == "native-untagged"
    assert v("get", "Interface", "p2", "ofport_request").strip() == "2"
    assert v("get", "Interface", "vx0", "options").strip() == '{key="100", remote_ip="192.0.2.2"}'
    assert v("get", "Port", "bond0", "bond_mode").strip() == "active-backup"
    assert v("get", "Bridge", "br0", "other_config:mac-aging-time").strip() == '"300"'
    ext = v("get", "Interface", "vm1-eth0", "external_ids").strip()
    for key in ("attached-mac=\"52:54:00:00:00:01\"", "iface-id=", "vm-id=",
                "iface-status=active", f"{OWNER_KEY}=t1"):
        assert key in ext
    assert v("get", "Interface", "vm1-eth0", "type").strip() == "tap"
    for table, name in [("Bridge", "br0"), ("Port", "br0"), ("Interface", "br0"),
                        ("Port", "bond0"), ("Interface", "eth2")]:
        assert v("get", table, name, f"external_ids:{OWNER_KEY}").strip() == "t1"


def test_reapply_is_a_no_op(server):
    topo = topo_from(BASE)
    with OvsdbApi.connect(server.remote) as api:
        assert apply_host(api, topo, "h1")
        before = db_state(server)
        assert apply_host(api, topo, "h1") == []
    assert db_state(server) == before  # next_cfg included: no empty transaction either


EDITED = BASE.replace("p1: {tag: 10}", "p1: {tag: 11}") \
    .replace("          eth1: {}\n", "          p3: {}\n") \
    .replace("fail_mode: secure", "fail_mode: standalone")


def test_an_edited_file_changes_only_the_difference(server):
    with OvsdbApi.connect(server.remote) as api:
        apply_host(api, topo_from(BASE), "h1")
        before = db_state(server)
        changes = apply_host(api, topo_from(EDITED), "h1")
    after = db_state(server)
    kinds = sorted((type(c).__name__, getattr(c, "name", None) or c.spec.name) for c in changes)
    assert kinds == [("CreatePort", "p3"), ("DeletePort", "eth1"),
                     ("SetColumns", "br0"), ("SetColumns", "p1")]
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed == {("Port", "p1"), ("Bridge", "br0"), ("Port", "eth1"),
                       ("Interface", "eth1"), ("Port", "p3"), ("Interface", "p3"),
                       ("Open_vSwitch", ".")}
    assert after[("Port", "p1")]["tag"] == [11]
    assert after[("Bridge", "br0")]["fail_mode"] == []


def test_dry_run_commands_do_what_apply_does(server):
    """The printed ovs-vsctl commands, run by the real ovs-vsctl, give apply's result."""
    require_real_ovs()
    with RealServer("twin") as twin:
        for text in (BASE, EDITED):
            topo = topo_from(text)
            with OvsdbApi.connect(twin.remote) as api:
                changes = apply_host(api, topo, "h1", dry_run=True)
                commands = vsctl_args(api.idl, changes)
            Vsctl(twin).run(*[w for c in commands for w in ("--", *c)])
            with OvsdbApi.connect(server.remote) as api:
                apply_host(api, topo, "h1")
            ours, theirs = db_state(server), db_state(twin)
            for state in (ours, theirs):
                state.pop(("Open_vSwitch", "."))
            assert ours == theirs


def test_dry_run_writes_nothing(server):
    Vsctl(server)("init")
    before = db_state(server)
    with OvsdbApi.connect(server.remote) as api:
        assert apply_host(api, topo_from(BASE), "h1", dry_run=True)
    assert db_state(server) == before


def test_foreign_objects_are_never_touched(server):
    v = Vsctl(server)
    v("add-br", "br0", "--", "add-port", "br0", "p1", "--", "add-br", "br-other",
      "--", "add-port", "br-other", "vx0")
    before = db_state(server)
    with OvsdbApi.connect(server.remote) as api, pytest.raises(ForeignObjectError) as exc:
        apply_host(api, topo_from(BASE), "h1")
    message = str(exc.value)
    for what in ("Bridge br0", "Port p1", "Port vx0", "Interface vx0"):
        assert what in message
    assert db_state(server) == before


def test_objects_of_another_topology_are_foreign(server):
    with OvsdbApi.connect(server.remote) as api:
        apply_host(api, topo_from(BASE.replace("name: t1", "name: other")), "h1")
        before = db_state(server)
        with pytest.raises(ForeignObjectError, match="owned by topology 'other'"):
            apply_host(api, topo_from(BASE), "h1")
    assert db_state(server) == before


def test_unrelated_foreign_objects_survive_apply_and_reapply(server):
    v = Vsctl(server)
    v("add-br", "br-admin", "--", "add-port", "br-admin", "mgmt0")
    with OvsdbApi.connect(server.remote) as api:
        apply_host(api, topo_from(BASE), "h1")
        # someone plugs a port of their own into our bridge
        v("add-port", "br0", "debug0")
        apply_host(api, topo_from(EDITED), "h1")
        apply_host(api, topo_from("name: t1\nhosts: {h1: {}}\n"), "h1")  # remove all of ours
    assert v("list-br").split() == ["br-admin"]
    assert v("list-ports", "br-admin").split() == ["mgmt0"]
    # debug0 went away only because its bridge (ours) was deleted
    assert "debug0" not in v("show")


def test_apply_is_atomic_when_a_step_fails(server, monkeypatch):
    with OvsdbApi.connect(server.remote) as api:
        apply_host(api, topo_from(BASE), "h1")
        before = db_state(server)
        calls = []
        original = desired_mod.CreatePort.apply

        def failing(self, txn, idl):
            calls.append(self.spec.name)
            original(self, txn, idl)
            raise OvsdbTransactionError("injected failure after a write")

        monkeypatch.setattr(desired_mod.CreatePort, "apply", failing)
        with pytest.raises(OvsdbTransactionError, match="injected"):
            apply_host(api, topo_from(EDITED), "h1")
        assert calls == ["p3"]
    assert db_state(server) == before


def test_plan_is_empty_only_when_everything_matches(server):
    topo = topo_from(BASE)
    with OvsdbApi.connect(server.remote) as api:
        apply_host(api, topo, "h1")
        assert plan(api.idl, topo, topo.host("h1")) == []
        Vsctl(server)("set", "Port", "p1", "tag=99")  # drift made behind ovsnet's back
        api.connection.run()
        api.connection.wait_for_sync()
        drift = plan(api.idl, topo, topo.host("h1"))
        assert [(type(c).__name__, c.name, c.columns) for c in drift] == [
            ("SetColumns", "p1", {"tag": [10]})]
        assert show(api.idl).count("tag: 99") == 1


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ovsnet", *args], capture_output=True,
                          text=True, timeout=120)


def test_cli_apply_dry_run_and_foreign_refusal(server, tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent(BASE))
    dry = run_cli("apply", str(path), "--host", "h1", "--db", server.remote, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("ovs-vsctl --db=")
    assert "-- add-br br0" in dry.stdout and "-- add-bond br0 bond0 eth2 eth3" in dry.stdout
    assert not Vsctl(server)("list-br").strip()
    done = run_cli("apply", str(path), "--host", "h1", "--db", server.remote)
    assert done.returncode == 0 and "changes applied" in done.stdout
    again = run_cli("apply", str(path), "--host", "h1", "--db", server.remote)
    assert again.returncode == 0 and "already up to date" in again.stdout
    other = tmp_path / "o.yaml"
    other.write_text(textwrap.dedent(BASE).replace("name: t1", "name: t2"))
    refused = run_cli("apply", str(other), "--host", "h1", "--db", server.remote)
    assert refused.returncode == 2
    assert "refusing to change host h1" in refused.stderr
    assert "Traceback" not in refused.stderr
