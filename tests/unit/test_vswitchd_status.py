"""The simulated ovs-vswitchd writes back what ovs-vswitchd owns: ofport, status, cur_cfg."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from ovsnet.ofproto.ofp_fields import OFPP_LOCAL
from ovsnet.ovsdb import bring_up
from ovsnet.ovsdb.backends import find_binary
from ovsnet.ovsdb.rows import find_row
from ovsnet.topology import load_topology
from ovsnet.topology.loader import load_topology_text
from ovsnet.vswitchd import DatabaseLoop, Vswitchd
from ovsnet.vswitchd.netdev import (
    bridge_mac,
    datapath_id,
    eth_addr_from_string,
    open_error,
    uuid_mac,
)
from ovsnet.vswitchd.status import OWNED_COLUMNS, wait_cur_cfg
from tests.conftest import Vsctl, require_vsctl

TOPOLOGIES = "topologies"

HOST = """
name: status
hosts:
  h:
    nics:
      eth1: {mac: "00:1b:21:12:34:56", mtu: 9000, speed_gbps: 25}
      eth2: {mac: "02:00:00:00:00:02"}
    bridges:
      br0:
        ports:
          eth1: {}
          a: {ofport: 7}
          b: {type: internal}
      br1:
        other_config: {datapath-id: "00000000000000ab"}
        ports:
          eth2: {}
          c: {type: internal, mtu: 1400}
"""


def _get(api, table: str, record: str, column: str):
    api.connection.run()
    return getattr(find_row(api.idl, table, record), column)


def _config_columns(api) -> dict:
    """Every column of Bridge/Port/Interface/Open_vSwitch that ovs-vswitchd does not own."""
    api.connection.run()
    out = {}
    for table in ("Open_vSwitch", "Bridge", "Port", "Interface"):
        owned = OWNED_COLUMNS.get(table, ())
        for row in api.idl.tables[table].rows.values():
            for column in row._table.columns:
                if column not in owned and not (table == "Bridge" and column == "status"):
                    value = getattr(row, column)
                    out[(table, str(row.uuid), column)] = repr(value)
    return out


class _Counting:
    """Counts the transactions an OvsdbApi starts."""

    def __init__(self, api, monkeypatch):
        self.n = 0
        real = api.transaction

        def transaction(*args, **kwargs):
            self.n += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(api, "transaction", transaction)


@pytest.fixture
def host():
    with bring_up(load_topology_text(HOST), hosts=["h"]) as net:
        db = net["h"]
        yield db, Vswitchd.from_hostdb(db)


def test_ofports_and_cur_cfg_after_construction(host):
    db, vs = host
    api = db.api
    for name, br in vs.bridges.items():
        for port in br.ports:
            want = OFPP_LOCAL if port.name == name else port.ofport
            assert _get(api, "Interface", port.name, "ofport") == [want]
            assert _get(api, "Interface", port.name, "error") == []
    assert _get(api, "Interface", "a", "ofport") == [7]
    root = find_row(api.idl, "Open_vSwitch", ".")
    assert root.next_cfg >= 1 and root.cur_cfg == root.next_cfg
    assert "system" in root.datapath_types and "vxlan" in root.iface_types
    assert root.dpdk_initialized is False


def test_device_columns(host):
    db, vs = host
    api = db.api
    assert _get(api, "Interface", "eth1", "mac_in_use") == ["00:1b:21:12:34:56"]
    assert _get(api, "Interface", "eth1", "link_speed") == [25_000_000_000]
    assert _get(api, "Interface", "eth1", "duplex") == ["full"]
    assert _get(api, "Interface", "eth1", "mtu") == [9000]
    assert _get(api, "Interface", "a", "admin_state") == ["up"]
    assert _get(api, "Interface", "a", "link_state") == ["up"]
    # br0: eth1 has the only universally administered address, so the bridge takes it
    assert _get(api, "Bridge", "br0", "datapath_id") == ["0000001b21123456"]
    assert _get(api, "Interface", "br0", "mac_in_use") == ["00:1b:21:12:34:56"]
    # internal ports without mtu_request follow the least MTU of the other ports
    assert _get(api, "Interface", "b", "mtu") == [1500]
    assert _get(api, "Interface", "br0", "mtu") == [1500]
    # br1: other_config:datapath-id wins; its NIC's address is locally administered
    assert _get(api, "Bridge", "br1", "datapath_id") == ["00000000000000ab"]
    br1 = find_row(api.idl, "Bridge", "br1")
    assert _get(api, "Interface", "br1", "mac_in_use") == [
        ":".join(f"{b:02x}" for b in uuid_mac(br1.uuid).to_bytes(6, "big"))]
    assert _get(api, "Interface", "c", "mtu") == [1400]
    assert _get(api, "Bridge", "br1", "datapath_version") == "<unknown>"


def test_rerun_writes_nothing(host, monkeypatch):
    db, vs = host
    counter = _Counting(db.api, monkeypatch)
    assert vs.bridge_run() == []
    assert vs.write_status() == []
    assert counter.n == 0


def test_never_touches_configuration(host):
    db, vs = host
    before = _config_columns(db.api)
    with db.api.transaction() as txn:
        txn.add(db.api.add_port("br0", "d"))
        txn.add(db.api.increment_next_cfg())
    after_client = _config_columns(db.api)
    assert wait_cur_cfg(db.api, vs) == find_row(db.api.idl, "Open_vSwitch", ".").next_cfg
    assert _config_columns(db.api) == after_client
    assert len(after_client) > len(before)  # the client's new rows are there, untouched


def test_wait_cur_cfg_applies_a_client_change(host, monkeypatch):
    db, vs = host
    api = db.api
    with api.transaction() as txn:
        txn.add(api.add_port("br0", "d"))
        txn.add(api.increment_next_cfg())
    root = find_row(api.idl, "Open_vSwitch", ".")
    assert root.cur_cfg < root.next_cfg
    counter = _Counting(api, monkeypatch)
    assert wait_cur_cfg(api, vs, timeout=10) == root.next_cfg
    assert counter.n == 1  # ofport, status and cur_cfg in one transaction
    d = vs.bridge("br0").port_by_name("d")
    assert d is not None and _get(api, "Interface", "d", "ofport") == [d.ofport]
    assert d.ofport not in (7, vs.bridge("br0").port_by_name("eth1").ofport)


def test_wait_cur_cfg_times_out_without_vswitchd(host):
    db, _vs = host
    with db.api.transaction() as txn:  # the IDL increments next_cfg only along a change
        txn.add(db.api.add_port("br0", "d"))
        txn.add(db.api.increment_next_cfg())
    with pytest.raises(Exception, match="did not apply configuration"):
        wait_cur_cfg(db.api, None, timeout=0.2)


@pytest.mark.parametrize("columns, error", [
    ({"type": "foo"}, "could not open network device x (Address family not supported by "
                      "protocol)"),
    ({"type": "vxlan"}, "x: vxlan type requires valid 'remote_ip' argument"),
    ({"type": "geneve", "options": {"remote_ip": "nowhere"}},
     "x: bad geneve 'remote_ip'\nx: geneve type requires valid 'remote_ip' argument"),
    ({"type": "patch"}, "x: patch type requires valid 'peer' argument"),
    ({"type": "patch", "options": {"peer": "x"}}, "x: patch peer must not be self"),
])
def test_failed_interface_and_recovery(host, columns, error):
    db, vs = host
    api = db.api
    with api.transaction() as txn:
        txn.add(api.add_port("br0", "x", iface_columns=columns))
        txn.add(api.increment_next_cfg())
    wait_cur_cfg(api, vs)
    assert _get(api, "Interface", "x", "ofport") == [-1]
    assert _get(api, "Interface", "x", "error") == [error]
    assert _get(api, "Interface", "x", "admin_state") == []
    assert vs.bridge("br0").port_by_name("x") is None
    assert "x" in vs.iface_failures
    # the other ports are unaffected, and a fixed interface is added, its error cleared
    assert _get(api, "Interface", "a", "ofport") == [7]
    with api.transaction() as txn:
        txn.add(api.db_set("Interface", "x", ("type", "internal"), ("options", {})))
        txn.add(api.increment_next_cfg())
    wait_cur_cfg(api, vs)
    x = vs.bridge("br0").port_by_name("x")
    assert x is not None and _get(api, "Interface", "x", "ofport") == [x.ofport]
    assert _get(api, "Interface", "x", "error") == []
    assert _get(api, "Interface", "x", "link_state") == ["up"]


def test_reserved_name_fails_without_error(host):
    db, vs = host
    with db.api.transaction() as txn:
        txn.add(db.api.add_port("br0", "vxlan_sys_4789"))
        txn.add(db.api.increment_next_cfg())
    wait_cur_cfg(db.api, vs)
    assert _get(db.api, "Interface", "vxlan_sys_4789", "ofport") == [-1]
    assert _get(db.api, "Interface", "vxlan_sys_4789", "error") == []


def test_topology_host_taps_and_tunnels():
    topo = load_topology(f"{TOPOLOGIES}/two-hosts-vxlan.yaml")
    with bring_up(topo, hosts=["hv1"]) as net:
        db = net["hv1"]
        vs = Vswitchd.from_hostdb(db)
        api = db.api
        # libvirt's TAP address: the guest's with the first byte fe
        assert _get(api, "Interface", "tapvm1-eth0", "mac_in_use") == ["fe:16:3e:00:01:01"]
        assert _get(api, "Interface", "tapvm1-eth0", "status")["driver_name"] == "tun"
        assert _get(api, "Interface", "vxlan-c0000202", "status") == {
            "tunnel_egress_iface": "eth0", "tunnel_egress_iface_carrier": "up"}
        assert _get(api, "Interface", "vxlan-c0000202", "mtu") == []
        assert _get(api, "Interface", "patch-tun", "ofport") == [100]
        assert _get(api, "Interface", "patch-tun", "ifindex") == [0]
        # a kernel netdev's ifindex: unique on the host
        ifindexes = [_get(api, "Interface", n, "ifindex")[0]
                     for n in ("br-int", "br-tun", "tapvm1-eth0", "tapvm2-eth0")]
        assert len(set(ifindexes)) == 4 and min(ifindexes) > 1
        assert vs.bridge_run() == []


def test_ovs_vsctl_reads_the_status(host):
    """The real ovs-vsctl sees the ofport and waits on cur_cfg like against a real host."""
    require_vsctl()
    db, vs = host
    vsctl = Vsctl(db.server)
    assert vsctl("get", "Interface", "a", "ofport").strip() == "7"
    assert vsctl("get", "Interface", "br0", "ofport").strip() == str(OFPP_LOCAL)
    out = vsctl("--timeout=5", "wait-until", "Open_vSwitch", ".",
                f"cur_cfg={find_row(db.api.idl, 'Open_vSwitch', '.').next_cfg}")
    assert out == ""
    dpid = vsctl("get", "Bridge", "br0", "datapath_id").strip().strip('"')
    assert len(dpid) == 16 and int(dpid, 16) == 0x001B21123456


# -- the device model -------------------------------------------------------------------

def test_uuid_mac_as_ovs_derives_the_default_bridge_address():
    # observed: ovs-vswitchd 3.1 gave the bridge of this Bridge row datapath_id 0000e2e318460e4b
    assert uuid_mac(uuid.UUID("4618e3e0-69bf-4b0e-8a00-38b10fcb14fd")) == 0xE2E318460E4B


@pytest.mark.parametrize("text, mac, want", [
    ("00000000000000ab", 0x0200000000AA, 0xAB),
    ("0x1f", 0x0200000000AA, 0x1F),
    ("0000000000000000", 0x0200000000AA, 0x0200000000AA),   # zero is invalid
    ("00000000000000abc", 0x0200000000AA, 0x0200000000AA),  # 17 digits
    ("00000000000000xy", 0x0200000000AA, 0x0200000000AA),
    (None, 0x525400000001, 0x525400000001),
])
def test_datapath_id(text, mac, want):
    assert datapath_id(text, mac) == want


def test_bridge_mac_rules():
    u = uuid.UUID(int=1 << 120)
    assert bridge_mac("00:11:22:33:44:55", u, [0x000000000001]) == 0x001122334455
    assert bridge_mac("01:00:00:00:00:01", u, []) == uuid_mac(u)  # multicast refused
    assert bridge_mac(None, u, [0x001B21000009, 0x001B21000003, 0x020000000001]) == 0x001B21000003
    assert bridge_mac(None, u, [0x00E02B000000, 0x020000000001, None]) == uuid_mac(u)
    assert eth_addr_from_string("a:b:c:d:e:f") == 0x0A0B0C0D0E0F


@pytest.mark.parametrize("name, type_, options, failed", [
    ("eth0", "", {}, False),
    ("t", "tap", {}, False),
    ("v", "vxlan", {"remote_ip": "flow"}, False),
    ("v", "vxlan", {"remote_ip": "2001:db8::1"}, False),
    ("v", "vxlan", {"remote_ip": "224.0.0.1"}, True),
    ("l", "lisp", {"remote_ip": "192.0.2.1"}, True),
    ("p", "patch", {"peer": "q", "extra": "1"}, True),
    ("ovs-system", "internal", {}, True),
    ("genev_sys_6081", "", {}, True),
])
def test_open_error(name, type_, options, failed):
    assert open_error(name, type_, options)[0] is failed


def test_database_loop_serves_a_real_ovs_vsctl(host):
    """With the loop running, the real ovs-vsctl (waiting for cur_cfg, no --no-wait) adds
    a port and returns; the status is there for the next ovs-vsctl."""
    require_vsctl()
    db, vs = host
    remote = db.server.remote
    with DatabaseLoop(vs) as loop:
        proc = subprocess.run([find_binary("ovs-vsctl"), f"--db={remote}", "--timeout=20",
                               "add-port", "br0", "e", "--", "set", "Interface", "e",
                               "type=internal"], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        ofport = Vsctl(db.server)("get", "Interface", "e", "ofport").strip()
        with vs.lock:
            assert int(ofport) == vs.bridge("br0").port_by_name("e").ofport
        assert loop.api is vs.api
    assert vs.api is db.api
    assert wait_cur_cfg(db.api, timeout=5) == find_row(db.api.idl, "Open_vSwitch", ".").next_cfg


def test_a_restarted_vswitchd_keeps_the_ofports_in_the_database(host):
    """iface_pick_ofport: without a request, the number in the ofport column, if free."""
    db, vs = host
    api = db.api
    free = max(p.ofport for p in vs.bridge("br0").ports if p.ofport != OFPP_LOCAL) + 30
    with api.transaction() as txn:  # as an earlier ovs-vswitchd left it
        txn.add(api.db_set("Interface", "b", ("ofport", free)))
        txn.add(api.db_set("Interface", "eth1", ("ofport", 7)))  # taken by a's request
    again = Vswitchd.from_hostdb(db)
    br0 = again.bridge("br0")
    assert br0.port_by_name("b").ofport == free
    assert br0.port_by_name("a").ofport == 7
    assert br0.port_by_name("eth1").ofport not in (7, free)
    assert _get(api, "Interface", "eth1", "ofport") == [br0.port_by_name("eth1").ofport]


def _apply(api, vs, *commands) -> None:
    with api.transaction() as txn:
        for command in commands:
            txn.add(command)
        txn.add(api.increment_next_cfg())
    wait_cur_cfg(api, vs)


def test_datapath_ports_keep_their_numbers(host):
    """Interfaces added by a client have no recorded datapath port; the ones that exist
    keep theirs when others come and go (ifindex follows the datapath port)."""
    db, vs = host
    api = db.api
    _apply(api, vs, api.add_port("br0", "zz"))
    before = {no: name for no, name in vs.port_names().items()}
    ifindex = _get(api, "Interface", "zz", "ifindex")
    _apply(api, vs, api.add_port("br0", "aa"), api.add_port("br1", "ab"))
    after = vs.port_names()
    assert all(after[no] == name for no, name in before.items())
    assert _get(api, "Interface", "zz", "ifindex") == ifindex
    assert len(set(after)) == len(after) == len(before) + 2


def test_patch_port_without_usable_peer(host):
    db, vs = host
    api = db.api
    _apply(api, vs, api.add_port("br0", "pp", iface_columns={
        "type": "patch", "options": {"peer": "nowhere"}}))
    pp = vs.bridge("br0").port_by_name("pp")
    assert _get(api, "Interface", "pp", "ofport") == [pp.ofport]
    assert _get(api, "Interface", "pp", "error") == [
        "No usable peer 'nowhere' exists in 'system' datapath."]
    _apply(api, vs, api.add_port("br1", "nowhere", iface_columns={
        "type": "patch", "options": {"peer": "pp"}}))
    assert _get(api, "Interface", "pp", "error") == []
    assert _get(api, "Interface", "nowhere", "error") == []


def test_internal_port_mtu_follows_ofproto_history():
    """update_mtu: internal ports take the bridge's least MTU when it changes; one added
    later keeps its 1500 if that is below it."""
    topo = load_topology_text("""
name: mtu
hosts:
  h:
    bridges:
      br0:
        ports:
          i0: {type: internal}
""")
    with bring_up(topo, hosts=["h"]) as net:
        db = net["h"]
        vs = Vswitchd.from_hostdb(db)
        api = db.api
        assert _get(api, "Interface", "i0", "mtu") == [1500]
        _apply(api, vs, api.add_port("br0", "big", iface_columns={"mtu_request": 9000}))
        assert _get(api, "Interface", "br0", "mtu") == [9000]
        assert _get(api, "Interface", "i0", "mtu") == [9000]
        _apply(api, vs, api.add_port("br0", "i1", iface_columns={"type": "internal"}))
        assert _get(api, "Interface", "i1", "mtu") == [1500]
        _apply(api, vs, api.add_port("br0", "small", iface_columns={"mtu_request": 1400}))
        assert [_get(api, "Interface", n, "mtu") for n in ("br0", "i0", "i1")] == [[1400]] * 3
        _apply(api, vs, api.del_port("small"))
        assert [_get(api, "Interface", n, "mtu") for n in ("br0", "i0", "i1")] == [[9000]] * 3


@pytest.mark.parametrize("dpdk_init, initialized", [(None, False), ("true", True),
                                                    ("try", True), ("false", False)])
def test_dpdk_status_of_a_netdev_host(dpdk_init, initialized):
    topo = load_topology(f"{TOPOLOGIES}/dpdk-vhost-user.yaml")
    with bring_up(topo, hosts=["compute1"]) as net:
        db = net["compute1"]
        if dpdk_init is not None:
            with db.api.transaction() as txn:
                txn.add(db.api.db_set("Open_vSwitch", ".",
                                      ("other_config", {"dpdk-init": dpdk_init})))
        Vswitchd.from_hostdb(db, strict_flows=False)
        assert _get(db.api, "Open_vSwitch", ".", "dpdk_initialized") is initialized
        assert _get(db.api, "Open_vSwitch", ".", "dpdk_version") == ["DPDK 22.11.1"]
        assert _get(db.api, "Bridge", "br-int", "datapath_version") == "<built-in>"
