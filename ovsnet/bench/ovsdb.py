"""``ovsnet bench ovsdb``: the OVSDB client, with ``ovs-vsctl`` as the same-run baseline.

Workloads (each against fresh private ``ovsdb-server`` processes):

- ``ports_1000``: one bridge and 1000 ports (tag + interface type) in ONE
  transaction, three ways: the command API (``OvsdbApi``), the topology
  path (``ApplyHostCommand`` on a 1000-port topology), and the C client
  ``ovs-vsctl`` given the same commands in one invocation (the baseline).
- ``up_100x10``: a 100-host topology with 10 VMs per host (br-int with 10
  tap ports on VLANs, br-tun with patch and VXLAN ports) brought up: load
  and validate the YAML, start one ovsdb-server per host, apply each host
  in one transaction. The baseline applies the same per-host changes with
  one ``ovs-vsctl`` invocation per host against equally fresh servers.

Times are wall-clock seconds, best of ``repeat`` for the small workloads.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time

from ..ovsdb import OvsdbApi, RealServer, apply_host, plan, vsctl_args
from ..ovsdb.backends import find_binary, real_ovs_available
from ..topology import load_topology_text


def machine() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ovs_version = ""
    vsctl = find_binary("ovs-vsctl")
    if vsctl:
        out = subprocess.run([vsctl, "--version"], capture_output=True, text=True).stdout
        ovs_version = out.splitlines()[0] if out else ""
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "ovs": ovs_version,
    }


def ports_topology(n: int) -> str:
    ports = {f"p{i}": {"tag": i % 4094 + 1, "type": "internal"} for i in range(n)}
    doc = {"name": "bench-ports", "hosts": {"h1": {"bridges": {"br0": {"ports": ports}}}}}
    return json.dumps(doc)  # JSON is YAML


def cloud_topology(n_hosts: int, vms_per_host: int) -> str:
    hosts = {}
    for h in range(n_hosts):
        name = f"hv{h}"
        vms, int_ports = {}, {"patch-tun": {"type": "patch", "peer": "patch-int"}}
        for v in range(vms_per_host):
            vm = f"vm{h}-{v}"
            vms[vm] = {"nics": {"eth0": {
                "mac": f"52:54:00:{h >> 8:02x}:{h & 0xff:02x}:{v:02x}",
                "ip": f"10.{h >> 8}.{h & 0xff}.{v + 1}/8",
            }}}
            int_ports[f"tap{h}-{v}"] = {"vm": vm, "tag": v % 4 + 1}
        tun_ports = {"patch-int": {"type": "patch", "peer": "patch-tun"}}
        for peer in (h - 1, h + 1):
            if 0 <= peer < n_hosts:
                tun_ports[f"vx{peer}"] = {"type": "vxlan", "key": "flow",
                                          "remote_ip": f"192.168.{peer >> 8}.{(peer & 0xff) + 1}"}
        hosts[name] = {
            "underlay": {"nic": "eth0", "ip": f"192.168.{h >> 8}.{(h & 0xff) + 1}/16"},
            "nics": {"eth0": {}},
            "bridges": {
                "br-int": {"fail_mode": "secure", "ports": int_ports},
                "br-tun": {"fail_mode": "secure", "ports": tun_ports},
            },
            "vms": vms,
        }
    return json.dumps({"name": "bench-cloud", "hosts": hosts})


def _vsctl(server: RealServer, commands: list[list[str]]) -> None:
    argv = [find_binary("ovs-vsctl"), "--no-wait", f"--db={server.remote}"]
    for words in commands:
        argv += ["--", *words]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"ovs-vsctl failed: {proc.stderr.strip()}")


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        times.append(fn())
    return min(times)


def bench_ports(n: int, repeat: int) -> dict:
    topo = load_topology_text(ports_topology(n), "bench-ports.yaml")
    host = topo.host("h1")

    def api_run() -> float:
        with RealServer("bench") as server, OvsdbApi.connect(server.remote) as api:
            t = time.perf_counter()
            with api.transaction() as txn:
                txn.add(api.add_br("br0"))
                for i in range(n):
                    txn.add(api.add_port("br0", f"p{i}", port_columns={"tag": i % 4094 + 1},
                                         iface_columns={"type": "internal"}))
            return time.perf_counter() - t

    def apply_run() -> float:
        with RealServer("bench") as server, OvsdbApi.connect(server.remote) as api:
            t = time.perf_counter()
            apply_host(api, topo, host)
            return time.perf_counter() - t

    with RealServer("bench") as server, OvsdbApi.connect(server.remote) as api:
        commands = vsctl_args(api.idl, plan(api.idl, topo, host))
    simple = [["add-br", "br0"]]
    for i in range(n):
        simple += [["add-port", "br0", f"p{i}", f"tag={i % 4094 + 1}"],
                   ["set", "Interface", f"p{i}", "type=internal"]]

    def vsctl_run(cmds) -> float:
        with RealServer("bench") as server:
            t = time.perf_counter()
            _vsctl(server, cmds)
            return time.perf_counter() - t

    return {
        "ports_1000_s": _best(api_run, repeat),
        "ports_1000_apply_s": _best(apply_run, repeat),
        "ports_1000_s_vsctl": _best(lambda: vsctl_run(simple), repeat),
        "ports_1000_apply_s_vsctl": _best(lambda: vsctl_run(commands), repeat),
        "ports": n,
    }


def bench_up(n_hosts: int, vms: int) -> dict:
    text = cloud_topology(n_hosts, vms)
    t0 = time.perf_counter()
    topo = load_topology_text(text, "bench-cloud.yaml")
    t_load = time.perf_counter() - t0

    servers, apis = [], []
    try:
        t0 = time.perf_counter()
        for name in topo.hosts:
            servers.append(RealServer(f"b{name}"))
        t_start = time.perf_counter() - t0
        t0 = time.perf_counter()
        for server, host in zip(servers, topo.hosts.values(), strict=True):
            api = OvsdbApi.connect(server.remote)
            apis.append(api)
            apply_host(api, topo, host)
        t_apply = time.perf_counter() - t0
        per_host_cmds = []
        for api, host in zip(apis, topo.hosts.values(), strict=True):
            api.connection.run()
            per_host_cmds.append(len(plan(api.idl, topo, host)))
        assert not any(per_host_cmds), "re-planning after bring-up must find nothing to do"
    finally:
        for api in apis:
            api.close()
        for server in servers:
            server.stop()

    # Baseline: the same per-host changes through ovs-vsctl, one invocation per host.
    servers = []
    try:
        for name in topo.hosts:
            servers.append(RealServer(f"c{name}"))
        first = servers[0]
        with OvsdbApi.connect(first.remote) as api:
            cmds = [vsctl_args(api.idl, plan(api.idl, topo, h)) for h in topo.hosts.values()]
        t0 = time.perf_counter()
        for server, c in zip(servers, cmds, strict=True):
            _vsctl(server, c)
        t_vsctl = time.perf_counter() - t0
    finally:
        for server in servers:
            server.stop()
    ports = sum(len(b.ports) for h in topo.hosts.values() for b in h.bridges.values())
    return {
        "up_100x10_s": t_load + t_start + t_apply,
        "up_100x10_load_s": t_load,
        "up_100x10_servers_s": t_start,
        "up_100x10_apply_s": t_apply,
        "up_100x10_apply_s_vsctl": t_vsctl,
        "up_hosts": len(topo.hosts),
        "up_ports": ports,
    }


def run(quick: bool = False, echo=print) -> dict:
    reason = real_ovs_available()
    if reason:
        from ..errors import BackendError

        raise BackendError(f"bench ovsdb needs a real ovsdb-server and ovs-vsctl: {reason}")
    n_ports, n_hosts, repeat = (200, 10, 1) if quick else (1000, 100, 3)
    result: dict = {"machine": machine(), "quick": quick}
    t = bench_ports(n_ports, repeat)
    result.update(t)
    if echo:
        echo(f"ports_1000 ({n_ports} ports, one transaction, best of {repeat}):")
        echo(f"  ovsnet OvsdbApi        {t['ports_1000_s']:.3f} s")
        echo(f"  ovsnet apply topology  {t['ports_1000_apply_s']:.3f} s")
        echo(f"  ovs-vsctl (baseline)   {t['ports_1000_s_vsctl']:.3f} s   "
             f"ratio {t['ports_1000_s'] / t['ports_1000_s_vsctl']:.2f}x")
        echo(f"  ovs-vsctl same as apply {t['ports_1000_apply_s_vsctl']:.3f} s   "
             f"ratio {t['ports_1000_apply_s'] / t['ports_1000_apply_s_vsctl']:.2f}x")
    u = bench_up(n_hosts, 10)
    result.update(u)
    if echo:
        echo(f"up_100x10 ({u['up_hosts']} hosts, {u['up_ports']} ports):")
        echo(f"  load+validate YAML     {u['up_100x10_load_s']:.3f} s")
        echo(f"  start ovsdb-servers    {u['up_100x10_servers_s']:.3f} s")
        echo(f"  apply (ovsnet)         {u['up_100x10_apply_s']:.3f} s")
        echo(f"  apply (ovs-vsctl)      {u['up_100x10_apply_s_vsctl']:.3f} s   "
             f"ratio {u['up_100x10_apply_s'] / u['up_100x10_apply_s_vsctl']:.2f}x")
        echo(f"  total                  {u['up_100x10_s']:.3f} s")
    return result
