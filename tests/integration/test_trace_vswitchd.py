"""The simulated vswitchd over a real ovsdb-server, and ``ovsnet trace`` end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ovsnet.ovsdb import bring_up
from ovsnet.topology import load_topology
from ovsnet.vswitchd import Vswitchd
from tests.conftest import require_real_ovs

TOPOLOGIES = ["single-bridge", "two-hosts-vxlan", "three-hosts-geneve", "dpdk-vhost-user"]


def snapshot(vs: Vswitchd) -> dict:
    """What a vswitchd built: bridges with ports (ofport, odp port, VLAN mode and VID),
    flows per table, settings, and the datapath's ports."""
    out = {"datapath": vs.port_names()}
    for name, br in vs.bridges.items():
        out[name] = {
            "ports": [(p.name, p.ofport, p.odp_port, p.peer, br.vlan_config(p.ofport).mode.value,
                       br.vlan_config(p.ofport).vlan) for p in br.ports],
            "flows": {t: len(c) for t, c in br.tables.items()},
            "settings": (br.vlan_limit, br.forward_bpdu, br.mac_learning.idle_time,
                         br.mac_learning.max_entries),
        }
    return out


@pytest.mark.parametrize("name", TOPOLOGIES)
def test_real_and_embedded_ovsdb_give_the_same_switch(name):
    """The vswitchd reads only the database: Debian's ovsdb-server and the embedded
    one, configured from the same topology, yield the same bridges and datapath."""
    require_real_ovs()
    topo = load_topology(f"topologies/{name}.yaml")
    host = next(iter(topo.hosts))
    built = {}
    for backend in ("real", "embedded"):
        with bring_up(topo, backend, hosts=[host]) as dep:
            built[backend] = snapshot(Vswitchd.from_hostdb(dep[host], strict_flows=False))
    assert built["real"] == built["embedded"]
    assert len(built["real"]) > 1


def test_trace_command_end_to_end():
    """`python -m ovsnet trace` on a two-bridge host: a VM's broadcast enters br-int on its
    access VLAN, floods through the patch port to br-tun, whose tables send it into the
    VXLAN tunnel with VNI 100."""
    flow = ("in_port(tapvm1-eth0),eth(src=fa:16:3e:00:01:01,dst=ff:ff:ff:ff:ff:ff),"
            "eth_type(0x0806),arp(sip=10.0.1.11,tip=10.0.1.12,op=1,sha=fa:16:3e:00:01:01,"
            "tha=00:00:00:00:00:00)")
    r = subprocess.run([sys.executable, "-m", "ovsnet", "trace", "topologies/two-hosts-vxlan.yaml",
                        "--bridge", "br-int", "--host", "hv1", "--format", "json", flow],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (doc,) = json.loads(r.stdout)
    assert doc["bridge"] == "br-int"
    assert [t["bridge"] for t in doc["tables"]][:2] == ["br-int", "br-int"]
    assert "br-tun" in {t["bridge"] for t in doc["tables"]}
    assert "set(tunnel(tun_id=0x64" in doc["datapath_actions"]
    assert doc["ports"]["5"] == "vxlan_sys_4789"
