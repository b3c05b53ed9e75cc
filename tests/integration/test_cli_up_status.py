"""`ovsnet up` runs each host's simulated ovs-vswitchd: a real client then sees the
status columns the daemon owns (cur_cfg, ofport, datapath_id) in the kept database."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys

from ovsnet.ovsdb.backends import find_binary
from tests.conftest import require_real_ovs

TOPO = "topologies/two-hosts-vxlan.yaml"


def test_up_keep_leaves_the_status_ovs_vswitchd_writes():
    require_real_ovs()
    proc = subprocess.run([sys.executable, "-m", "ovsnet", "up", TOPO, "--ovsdb", "real",
                           "--host", "hv1", "--keep"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    m = re.search(r"^hv1: (unix:\S+) \(ovsdb-server pid (\d+), files in (\S+);",
                  proc.stdout, re.M)
    assert m, proc.stdout
    remote, pid, workdir = m.group(1), int(m.group(2)), m.group(3)
    try:
        def get(*args: str) -> str:
            out = subprocess.run([find_binary("ovs-vsctl"), f"--db={remote}", "--no-wait",
                                  "get", *args], capture_output=True, text=True, timeout=30)
            assert out.returncode == 0, out.stderr
            return out.stdout.strip()

        assert get("Open_vSwitch", ".", "cur_cfg") == get("Open_vSwitch", ".", "next_cfg") != "0"
        # the topology requests these OpenFlow ports; LOCAL is 65534
        assert get("Interface", "tapvm1-eth0", "ofport") == "1"
        assert get("Interface", "patch-tun", "ofport") == "100"
        assert get("Interface", "vxlan-c0000202", "ofport") == "2"
        assert get("Interface", "br-int", "ofport") == "65534"
        assert re.fullmatch(r'"[0-9a-f]{16}"', get("Bridge", "br-int", "datapath_id"))
        assert get("Interface", "tapvm1-eth0", "link_state") == "up"
    finally:
        os.kill(pid, signal.SIGTERM)
        shutil.rmtree(workdir, ignore_errors=True)
