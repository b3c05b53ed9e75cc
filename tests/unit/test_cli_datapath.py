"""`ovsnet dump-flows` and `ovsnet bench datapath` from the command line."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from netaddr import EUI
from ovs.flow.odp import ODPFlow
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from ovsnet.datapath.pcap import write_pcap
from ovsnet.topology import load_topology
from ovsnet.topology.dpports import plan_dp_ports

TOPO = "topologies/two-hosts-vxlan.yaml"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ovsnet", *args], capture_output=True,
                          text=True, timeout=300)


def frame(src_mac: str, dst_mac: str, dport: int) -> bytes:
    return bytes(Ether(src=src_mac, dst=dst_mac) / IP(src="10.0.1.11", dst="10.0.1.12")
                 / UDP(sport=5000, dport=dport) / (b"p" * 20))


@pytest.fixture
def pcap(tmp_path):
    pairs = [("fa:16:3e:00:01:01", "fa:16:3e:00:02:01"), ("fa:16:3e:00:01:01", "ff:ff:ff:ff:ff:ff"),
             ("fa:16:3e:00:01:02", "fa:16:3e:00:02:01")]
    frames = [frame(*pairs[i % 3], dport=1000 + i) for i in range(40)]
    path = tmp_path / "in.pcap"
    write_pcap(path, frames)
    return path, frames, pairs


def dp_ports():
    plan = plan_dp_ports(load_topology(TOPO).hosts["hv1"])
    return {name: no for no, name in plan.ports.items()}


def test_dump_flows_shows_the_megaflows_the_handler_installed(pcap):
    path, frames, pairs = pcap
    ports = dp_ports()
    r = run("dump-flows", TOPO, "--host", "hv1", "--pcap", f"tapvm1-eth0={path}",
            "--handler", "output:tapvm2-eth0", "--show")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "system@ovs-system:"
    hit, missed, lost = map(int, re.match(r"  lookups: hit:(\d+) missed:(\d+) lost:(\d+)",
                                          lines[1]).groups())
    # The pcap goes in as rx bursts of 32: every packet of the first burst
    # misses (the megaflows are installed once the burst's upcalls are
    # answered), every packet of the second hits one of the 3 megaflows.
    assert (hit, missed, lost) == (len(frames) - 32, 32, 0)
    assert f"  port {ports['tapvm1-eth0']}: tapvm1-eth0 (tap)" in lines
    flows = [ln for ln in lines if ln.startswith("recirc_id(") or ln.startswith("in_port(")]
    assert len(flows) == len(pairs)
    seen = set()
    total = 0
    for line in flows:
        parsed = ODPFlow(line)
        info = parsed.info
        total += info["packets"]
        assert parsed.match["in_port"] == ports["tapvm1-eth0"]
        eth = parsed.match["eth"]
        seen.add((str(EUI(str(eth["src"]))), str(EUI(str(eth["dst"])))))
        assert parsed.actions == [{"output": {"port": ports["tapvm2-eth0"]}}]
    assert total == len(frames) - 32  # upcalled packets are not counted in flows
    assert seen == {(str(EUI(a)), str(EUI(b))) for a, b in pairs}


def test_dump_flows_with_names_and_drop_handler(pcap):
    path, frames, _pairs = pcap
    r = run("dump-flows", TOPO, "--host", "hv1", "--pcap", f"tapvm1-eth0={path}", "--names",
            "--handler", "drop")
    assert r.returncode == 0, r.stderr
    (line,) = r.stdout.splitlines()  # the drop handler's mask is in_port only
    assert "in_port(tapvm1-eth0)" in line and line.endswith("actions:drop")
    assert f"packets:{len(frames) - 32}," in line


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--pcap", "nofile"], "expected PORT=FILE"),
        (["--pcap", "nosuchport=x.pcap"], "no port named 'nosuchport'"),
        (["--handler", "flood"], "valid are xlate, drop and output:PORT"),
        (["--host", "hv9"], "no host 'hv9'"),
    ],
)
def test_dump_flows_bad_input_exits_2(args, needle):
    r = run("dump-flows", TOPO, *args)
    assert r.returncode == 2
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_bench_datapath_json_has_the_four_workloads(tmp_path):
    out = tmp_path / "dp.json"
    r = run("bench", "datapath", "--quick", "--json", "--out", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert json.loads(out.read_text()) == doc
    assert {"cpu", "cores", "python"} <= set(doc["machine"])
    units = {w["name"]: w["unit"] for w in doc["workloads"]}
    assert units == {"W1": "Mpps", "W2": "Mpps", "W3": "M lookups/s", "W4": "bytes per megaflow"}
    for w in doc["workloads"]:
        assert w["value"] > 0 and w["reference_value"] > 0
