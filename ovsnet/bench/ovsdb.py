"""``ovsnet bench ovsdb``: OVSDB client and servers, each against a same-run baseline.

Client workloads (real ``ovsdb-server``; the C client ``ovs-vsctl`` is the baseline):

- ``client_ports_1000``: one bridge and 1000 ports (tag + interface type) in
  ONE transaction through ``OvsdbApi``; ``ovs-vsctl`` given the same commands
  in one invocation. ``apply_ports_1000``: the same through the topology path
  (plan + ``ApplyHostCommand``) vs ``ovs-vsctl`` running the dry-run commands.
- ``up_100x10``: a 100-host topology with 10 VMs per host (br-int with 10
  tap ports on VLANs, br-tun with patch and VXLAN ports) brought up: load
  and validate the YAML, start one ovsdb-server per host, apply each host
  in one transaction; baseline: the same per-host changes with one
  ``ovs-vsctl`` invocation per host against equally fresh servers.

Server workloads (the same clients against ``ovsnet ovsdb-server`` in a child
process and against the real ``ovsdb-server``, both with a database file):

- ``ports_1000``: the 1000-port transaction above, through the IDL client.
- ``small_txn``: 10,000 one-row transactions from one raw JSON-RPC client,
  each waiting for its reply (transactions per second).
- ``idl_100_clients``: 100 Python IDL clients monitoring the whole database
  while one client commits 50 transactions: seconds until every IDL has seen
  every commit.

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
        with RealServer("bench") as server:
            return _ports_txn(server.remote, n)

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
        "client_ports_1000_s": _best(api_run, repeat),
        "client_ports_1000_s_vsctl": _best(lambda: vsctl_run(simple), repeat),
        "apply_ports_1000_s": _best(apply_run, repeat),
        "apply_ports_1000_s_vsctl": _best(lambda: vsctl_run(commands), repeat),
        "client_ports": n,
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


def run(quick: bool = False, echo=print, parts=("client", "servers")) -> dict:
    reason = real_ovs_available()
    if reason:
        from ..errors import BackendError

        raise BackendError(f"bench ovsdb needs a real ovsdb-server and ovs-vsctl: {reason}")
    n_ports, n_hosts, repeat = (200, 10, 1) if quick else (1000, 100, 3)
    result: dict = {"machine": machine(), "quick": quick}
    say = echo or (lambda _line: None)
    if "client" in parts:
        t = bench_ports(n_ports, repeat)
        result.update(t)
        say(f"client: {n_ports} ports in one transaction, real ovsdb-server, best of {repeat}")
        say(f"  ovsnet OvsdbApi          {t['client_ports_1000_s']:.3f} s   ovs-vsctl "
            f"{t['client_ports_1000_s_vsctl']:.3f} s   ratio "
            f"{t['client_ports_1000_s'] / t['client_ports_1000_s_vsctl']:.2f}x")
        say(f"  ovsnet apply (plan+txn)  {t['apply_ports_1000_s']:.3f} s   ovs-vsctl "
            f"{t['apply_ports_1000_s_vsctl']:.3f} s   ratio "
            f"{t['apply_ports_1000_s'] / t['apply_ports_1000_s_vsctl']:.2f}x")
        u = bench_up(n_hosts, 10)
        result.update(u)
        say(f"client: up {u['up_hosts']} hosts x 10 VMs ({u['up_ports']} ports), real servers")
        say(f"  load+validate {u['up_100x10_load_s']:.3f} s, start servers "
            f"{u['up_100x10_servers_s']:.3f} s, apply {u['up_100x10_apply_s']:.3f} s "
            f"(ovs-vsctl {u['up_100x10_apply_s_vsctl']:.3f} s, ratio "
            f"{u['up_100x10_apply_s'] / u['up_100x10_apply_s_vsctl']:.2f}x), "
            f"total {u['up_100x10_s']:.3f} s")
    if "servers" in parts:
        v = bench_servers(quick)
        result.update(v)
        say("servers: embedded (ovsnet ovsdb-server) vs real ovsdb-server, same clients")
        say(f"  {v['servers_ports']} ports, one transaction   embedded {v['ports_1000_s']:.3f} s"
            f"   real {v['ports_1000_s_real']:.3f} s   ratio "
            f"{v['ports_1000_s'] / v['ports_1000_s_real']:.2f}x")
        say(f"  {v['servers_small_txns']} small transactions  embedded "
            f"{v['small_txn_per_s']:.0f}/s   real {v['small_txn_per_s_real']:.0f}/s   ratio "
            f"{v['small_txn_per_s_real'] / v['small_txn_per_s']:.2f}x slower")
        say(f"  {v['servers_idl_clients']} IDL clients see {v['servers_idl_writes']} commits  "
            f"embedded {v['idl_100_clients_s']:.3f} s   real {v['idl_100_clients_s_real']:.3f} s"
            f"   ratio {v['idl_100_clients_s'] / v['idl_100_clients_s_real']:.2f}x")
    return result


# --- embedded vs real server (issue: embedded OVSDB server) --------------------------------


class EmbeddedProcess:
    """``ovsnet ovsdb-server`` in a child process, as a user would run it.

    Both servers then get a core's worth of time of their own and the same
    clients; the child announces each listening remote on stderr, which is
    what we wait for (no polling).
    """

    def __init__(self, name: str):
        import sys
        import tempfile

        self.dir = tempfile.mkdtemp(prefix=f"ovsnet-{name}-", dir="/tmp")
        self.sock = os.path.join(self.dir, "db.sock")
        self.remote = f"unix:{self.sock}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ovsnet", "ovsdb-server", f"--remote=punix:{self.sock}",
             os.path.join(self.dir, "conf.db")],
            stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"embedded ovsdb-server did not start: {line.strip()}")

    def stop(self) -> None:
        import shutil

        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class RawClient:
    """A minimal JSON-RPC client on a unix socket: one request, one reply."""

    def __init__(self, remote: str):
        import socket

        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(remote.removeprefix("unix:"))
        self.decoder = json.JSONDecoder()
        self.buf = ""
        self.next_id = 0

    def call(self, method: str, params: list):
        self.next_id += 1
        self.sock.sendall(json.dumps({"id": self.next_id, "method": method,
                                      "params": params}).encode())
        while True:
            text = self.buf.lstrip()
            if text:
                try:
                    msg, end = self.decoder.raw_decode(text)
                except json.JSONDecodeError:
                    pass
                else:
                    self.buf = text[end:]
                    if msg.get("id") == self.next_id:
                        return msg
                    continue
            data = self.sock.recv(65536)
            if not data:
                raise RuntimeError("server closed the connection")
            self.buf += data.decode()

    def close(self) -> None:
        self.sock.close()


def _small_txns(remote: str, n: int) -> float:
    """n one-row transactions (insert a QoS row, as small as a transaction gets)."""
    client = RawClient(remote)
    try:
        t = time.perf_counter()
        for i in range(n):
            reply = client.call("transact", ["Open_vSwitch", {
                "op": "insert", "table": "QoS",
                "row": {"type": "linux-htb", "external_ids": ["map", [["n", str(i)]]]}}])
            result = reply["result"]
            if not isinstance(result, list) or "error" in result[0]:
                raise RuntimeError(f"transaction failed: {reply}")
        return n / (time.perf_counter() - t)
    finally:
        client.close()


def _ports_txn(remote: str, n: int) -> float:
    with OvsdbApi.connect(remote) as api:
        t = time.perf_counter()
        with api.transaction() as txn:
            txn.add(api.add_br("br0"))
            for i in range(n):
                txn.add(api.add_port("br0", f"p{i}", port_columns={"tag": i % 4094 + 1},
                                     iface_columns={"type": "internal"}))
        return time.perf_counter() - t


def _idl_fanout(remote: str, n_clients: int, n_writes: int) -> float:
    """Seconds until n_clients IDLs monitoring everything have seen n_writes commits."""
    import ovs.db.idl
    import ovs.poller

    from ..ovsdb.connection import get_schema

    schema = get_schema(remote)
    idls = []
    for _ in range(n_clients):
        helper = ovs.db.idl.SchemaHelper(schema_json=schema)
        helper.register_all()
        idls.append(ovs.db.idl.Idl(remote, helper, probe_interval=0))

    def pump(done) -> None:
        deadline = time.monotonic() + 120
        while True:
            for idl in idls:
                idl.run()
            if all(done(idl) for idl in idls):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("IDL clients did not catch up within 120 s")
            poller = ovs.poller.Poller()
            for idl in idls:
                idl.wait(poller)
            poller.timer_wait(1000)
            poller.block()

    pump(lambda idl: idl.state == idl.IDL_S_MONITORING)
    client = RawClient(remote)
    try:
        t = time.perf_counter()
        for i in range(n_writes):
            client.call("transact", ["Open_vSwitch", {
                "op": "insert", "table": "QoS",
                "row": {"type": "linux-htb", "external_ids": ["map", [["n", str(i)]]]}}])
        pump(lambda idl: len(idl.tables["QoS"].rows) == n_writes)
        return time.perf_counter() - t
    finally:
        client.close()
        for idl in idls:
            idl.close()


def bench_servers(quick: bool = False) -> dict:
    """The same client workloads against the embedded and the real server."""
    n_ports, n_small, n_clients, n_writes = (
        (200, 1000, 10, 20) if quick else (1000, 10_000, 100, 50))
    out: dict = {}
    for suffix, factory in (("", lambda: EmbeddedProcess("emb")),
                            ("_real", lambda: RealServer("real"))):
        with factory() as server:
            out[f"ports_1000_s{suffix}"] = _ports_txn(server.remote, n_ports)
        with factory() as server:
            out[f"small_txn_per_s{suffix}"] = _small_txns(server.remote, n_small)
        with factory() as server:
            out[f"idl_100_clients_s{suffix}"] = _idl_fanout(server.remote, n_clients, n_writes)
    out.update(servers_ports=n_ports, servers_small_txns=n_small,
               servers_idl_clients=n_clients, servers_idl_writes=n_writes)
    return out
