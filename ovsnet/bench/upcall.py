"""``ovsnet bench upcall``: datapath misses translated and installed per second, and trace latency.

The pipeline is a 1000-rule, 4-table bridge shaped like a cloud host's
integration bridge (the tables OVN or Neutron's OVS agent program, reduced to
plain OpenFlow):

* **table 0, port security** (300 rules + default drop): one rule per VM,
  ``in_port`` and ``dl_src`` exact; it loads the VM's tenant into ``reg1`` and
  goes on to the ACL table. Anything else is dropped.
* **table 1, ACL** (270 rules, 9 masks): denies by source prefix (/8,
  /12, /16) and by L4 port (SSH, NetBIOS, telnet), per-tenant allows of
  services (``reg1``, destination /24, TCP port), DNS to the resolvers'
  subnet, ICMP, and a per-tenant default allow.
* **table 2, L3 forwarding** (420 rules, longest prefix as priority):
  /32 host routes for every reachable VM, /24 subnet routes, /16 aggregate
  routes. A route decrements the TTL, rewrites the Ethernet addresses as a
  router does, loads the next hop's port into ``reg0`` and goes to table 3.
* **table 3, L2/output** (one rule per port): ``reg0`` -> ``output``.

The traffic is VM to VM: each packet comes from one of the 300 VMs and goes
to one of the host routes, and no two packets share the (source VM,
destination host) pair. Within a tenant it is a TCP SYN to a random port;
across tenants a SYN to a published service or, one time in five, an ICMP
echo, so the megaflows come in several masks. Every megaflow matches the
input port and Ethernet source exactly (table 0) and the destination address
exactly (the /32 route), so each packet is a miss that no megaflow installed
before it can match: the benchmark checks that the datapath ends with as many
installed flows as upcalls.

Each packet goes through a real :class:`~ovsnet.datapath.datapath.Datapath`
(its compiled core when built) in bursts of 32: extraction, a megaflow
lookup that misses, the upcall to an
:class:`~ovsnet.ofproto.upcall.XlateHandler` (flow key to ``OfFlow``,
translation with side effects, the mask in the flow-key layout), the megaflow
install and the execution of the packet. All of that runs in the calling
thread, on one core, as one handler thread of ``ovs-vswitchd`` would.
"""

from __future__ import annotations

import os
import random
import struct
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..datapath.datapath import Datapath
from ..datapath.flow_key import extract
from ..datapath.odp import format_actions
from ..ofproto import classifier as _cls
from ..ofproto.bridge import Bridge
from ..ofproto.of_flow import OfFlow
from ..ofproto.upcall import XlateHandler
from ..ofproto.xlate import xlate
from .ovsdb import machine

#: datapath ports (odp port = OpenFlow port) of the bridge
N_PORTS = 8
N_VMS = 300
N_TENANTS = 16
BURST = 32
FRAME = 64
#: services each tenant allows (TCP destination ports)
SERVICES = (80, 443, 8080, 5432, 6379, 3306)
GOAL_UPCALLS_PER_S = 50_000


def _vm_mac(i: int) -> int:
    return 0xFA163E000000 | i


def _vm_ip(i: int) -> int:
    """VM ``i``'s address: 10.<tenant>.<i // tenants>.<i % 251 + 2>."""
    return (10 << 24) | ((i % N_TENANTS) << 16) | ((i // N_TENANTS) << 8) | (i % 251 + 2)


def _ip(a: int) -> str:
    return ".".join(str(b) for b in a.to_bytes(4, "big"))


def _mac(m: int) -> str:
    return ":".join(f"{b:02x}" for b in m.to_bytes(6, "big"))


ROUTER_MAC = 0xFA163EFFFF01


def pipeline(seed: int = 7) -> tuple[list[str], list[int]]:
    """The flows of the 4 tables (``ovs-ofctl add-flow`` syntax) and the host-route targets.

    Returns ``(flows, host_ips)``: ``host_ips`` are the destinations with a /32
    route, the ones the benchmark's packets go to.
    """
    rng = random.Random(seed)
    flows: list[str] = []
    # table 0: port security
    for i in range(N_VMS):
        port = i % N_PORTS + 1
        flows.append(f"table=0,priority=100,in_port={port},dl_src={_mac(_vm_mac(i))},"
                     f"actions=load:{i % N_TENANTS}->NXM_NX_REG1[],goto_table:1")
    flows.append("table=0,priority=0,actions=drop")
    # table 1: ACL
    for i in range(12):  # deny whole foreign ranges (/8, /12, /16)
        plen = (8, 12, 16)[i % 3]
        net = (rng.choice((11, 100, 172, 192, 198, 203)) << 24) | (rng.getrandbits(24) & ~0xFF)
        net &= ((1 << plen) - 1) << (32 - plen)
        flows.append(f"table=1,priority=3000,ip,nw_src={_ip(net)}/{plen},actions=drop")
    for port in (22, 23, 137, 138, 139, 445):  # deny management and NetBIOS ports
        flows.append(f"table=1,priority=2500,tcp,tp_dst={port},actions=drop")
        flows.append(f"table=1,priority=2500,udp,tp_dst={port},actions=drop")
    for t in range(N_TENANTS):  # per-tenant service allows
        for s, svc in enumerate(SERVICES):
            for k in range(2):
                net = (10 << 24) | (t << 16) | ((s * 2 + k) << 8)
                flows.append(f"table=1,priority=2000,reg1={t},tcp,nw_dst={_ip(net)}/24,"
                             f"tp_dst={svc},actions=goto_table:2")
    for svc in SERVICES:  # services published to every tenant
        flows.append(f"table=1,priority=1500,tcp,nw_dst=10.0.0.0/8,tp_dst={svc},"
                     f"actions=goto_table:2")
    for t in range(N_TENANTS):
        flows.append(f"table=1,priority=1900,reg1={t},udp,nw_dst=10.{t}.255.0/24,tp_dst=53,"
                     f"actions=goto_table:2")
        flows.append(f"table=1,priority=1800,reg1={t},icmp,actions=goto_table:2")
        flows.append(f"table=1,priority=1000,reg1={t},ip,nw_dst=10.{t}.0.0/16,"
                     f"actions=goto_table:2")
    flows.append("table=1,priority=0,actions=drop")
    # table 2: L3 forwarding (longest prefix first)
    hosts = list(range(N_VMS))
    rng.shuffle(hosts)
    host_ips = []
    for i in hosts:
        ip = _vm_ip(i)
        host_ips.append(ip)
        flows.append(f"table=2,priority=32,ip,nw_dst={_ip(ip)},actions=dec_ttl,"
                     f"mod_dl_src:{_mac(ROUTER_MAC)},mod_dl_dst:{_mac(_vm_mac(i))},"
                     f"load:{i % N_PORTS + 1}->NXM_NX_REG0[],goto_table:3")
    for t in range(N_TENANTS):
        for sub in range(5):
            net = (10 << 24) | (t << 16) | ((16 + sub) << 8)
            flows.append(f"table=2,priority=24,ip,nw_dst={_ip(net)}/24,actions=dec_ttl,"
                         f"mod_dl_src:{_mac(ROUTER_MAC)},mod_dl_dst:{_mac(ROUTER_MAC + 1 + t)},"
                         f"load:{(t + sub) % N_PORTS + 1}->NXM_NX_REG0[],goto_table:3")
    for t in range(N_TENANTS * 2 + 7):
        net = (10 << 24) | ((32 + t) << 16)
        flows.append(f"table=2,priority=16,ip,nw_dst={_ip(net)}/16,actions=dec_ttl,"
                     f"mod_dl_src:{_mac(ROUTER_MAC)},mod_dl_dst:{_mac(ROUTER_MAC + 0x100 + t)},"
                     f"load:{t % N_PORTS + 1}->NXM_NX_REG0[],goto_table:3")
    flows.append("table=2,priority=0,actions=drop")
    # table 3: output
    for port in range(1, N_PORTS + 1):
        flows.append(f"table=3,priority=100,reg0={port},actions=output:{port}")
    flows.append("table=3,priority=0,actions=drop")
    return flows, host_ips


def make_bridge(flows: list[str]) -> Bridge:
    br = Bridge("br-int", local_odp_port=100)
    for port in range(1, N_PORTS + 1):
        br.add_port(f"vm{port}", port, port)
    br.add_flows(flows)
    return br


def _ip_frame(src_mac: int, dst_mac: int, src: int, dst: int, proto: int, l4: bytes,
              ttl: int = 64) -> bytes:
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(l4), 0, 0x4000, ttl, proto, 0, src, dst)
    frame = dst_mac.to_bytes(6, "big") + src_mac.to_bytes(6, "big") + b"\x08\x00" + ip + l4
    return frame + bytes(FRAME - len(frame))


def _tcp_syn(sport: int, dport: int) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 65535, 0, 0)


def _icmp_echo(ident: int) -> bytes:
    return struct.pack("!BBHHH", 8, 0, 0, ident, 1)


def traffic(host_ips: list[int], n: int, seed: int = 11) -> tuple[np.ndarray, np.ndarray,
                                                                     np.ndarray]:
    """``n`` first packets of connections, each a (source VM, destination host) pair of its own.

    Within a tenant a TCP SYN to a random port (the tenant's default allow);
    across tenants a SYN to a published service, or one ICMP echo in five.
    Returns the frame array (n, FRAME) uint8, lengths (int32) and input ports
    (uint32).
    """
    if n > N_VMS * len(host_ips):
        raise ValueError(f"at most {N_VMS * len(host_ips)} distinct packets, asked for {n}")
    rng = random.Random(seed)
    pairs = rng.sample(range(N_VMS * len(host_ips)), n)
    data = np.zeros((n, FRAME), dtype=np.uint8)
    in_ports = np.empty(n, dtype=np.uint32)
    for row, pair in enumerate(pairs):
        vm, host = divmod(pair, len(host_ips))
        src, dst = _vm_ip(vm), host_ips[host]
        if (src >> 16) == (dst >> 16):  # same tenant
            l4, proto = _tcp_syn(rng.randrange(32768, 61000), rng.randrange(1024, 32768)), 6
        elif rng.random() < 0.2:
            l4, proto = _icmp_echo(rng.randrange(1 << 16)), 1
        else:
            l4, proto = _tcp_syn(rng.randrange(32768, 61000), rng.choice(SERVICES)), 6
        frame = _ip_frame(_vm_mac(vm), ROUTER_MAC, src, dst, proto, l4)
        data[row] = np.frombuffer(frame, dtype=np.uint8)
        in_ports[row] = vm % N_PORTS + 1
    return data, np.full(n, FRAME, dtype=np.int32), in_ports


@contextmanager
def classifier_implementation(name: str):
    """Build classifiers with implementation ``name`` inside the block."""
    old = _cls.DEFAULT_IMPLEMENTATION
    _cls.DEFAULT_IMPLEMENTATION = name
    try:
        yield
    finally:
        _cls.DEFAULT_IMPLEMENTATION = old


def _upcall_run(flows: list[str], data: np.ndarray, lengths: np.ndarray, in_ports: np.ndarray,
                repeat: int, fast: bool) -> dict[str, Any]:
    """Best of ``repeat`` runs of every packet through a fresh datapath and bridge;
    ``fast``: upcalls go to the compiled translation core (else all to Python)."""
    best = best_cpu = float("inf")
    n = len(lengths)
    order = np.arange(n, dtype=np.uint32)
    for _ in range(repeat):
        bridge = make_bridge(flows)
        handler = XlateHandler(bridge, clock=lambda: 0, fast=fast)
        dp = Datapath("system", handler=handler, flow_limit=10 * n)
        for port in range(1, N_PORTS + 1):
            dp.add_port(f"vm{port}", port_no=port)
        t0, c0 = time.perf_counter(), time.thread_time()
        _packets, outputs = dp.run_bursts(data, lengths, in_ports, order, burst=BURST)
        elapsed, cpu = time.perf_counter() - t0, time.thread_time() - c0
        stats = dp.stats()
        installed = len(dp.table)
        if dp.n_upcalls != n or installed != n or stats.hit:
            raise RuntimeError(f"workload broken: {n} packets gave {dp.n_upcalls} upcalls, "
                               f"{installed} installed megaflows and {stats.hit} hits")
        best = min(best, elapsed)
        best_cpu = min(best_cpu, cpu)
    masks = stats.masks
    return {
        "upcalls_per_s": round(n / best),
        "us_per_upcall": round(best / n * 1e6, 2),
        # the thread's own CPU time: what the rate would be with the core to itself
        "cpu_upcalls_per_s": round(n / best_cpu),
        "packets": n,
        "upcalls": dp.n_upcalls,
        "installed_flows": installed,
        "datapath_hits": stats.hit,
        "outputs": outputs,
        "megaflow_masks": masks,
        "classifier": bridge.tables[0].implementation,
        "datapath": dp.implementation,
        "translated_by_core": handler.n_fast,
        "translated_by_python": handler.n_python,
    }


#: the flow-table edit the revalidation figure follows: a new rule before
#: table 3's output of next hop 1, so every megaflow to it changes its actions
REVALIDATION_EDIT = "table=3,priority=200,reg0=1,actions=output:2"


def _revalidation_run(flows: list[str], data: np.ndarray, lengths: np.ndarray,
                      in_ports: np.ndarray, fast: bool) -> dict[str, Any]:
    """Install a megaflow per packet, edit table 3, and time one revalidation
    of every megaflow (``fast``: through the compiled translation core)."""
    n = len(lengths)
    bridge = make_bridge(flows)
    handler = XlateHandler(bridge, clock=lambda: 0, fast=fast)
    dp = Datapath("system", handler=handler, flow_limit=10 * n)
    for port in range(1, N_PORTS + 1):
        dp.add_port(f"vm{port}", port_no=port)
    dp.run_bursts(data, lengths, in_ports, np.arange(n, dtype=np.uint32), burst=BURST)
    bridge.add_flow(REVALIDATION_EDIT)
    t0 = time.perf_counter()
    stats = handler.revalidate(dp)
    elapsed = time.perf_counter() - t0
    if stats.checked != n or stats.modified == 0:
        raise RuntimeError(f"revalidation workload broken: {stats}")
    return {"us_per_flow": round(elapsed / n * 1e6, 2), "checked": stats.checked,
            "kept": stats.kept, "modified": stats.modified, "deleted": stats.deleted}


def _trace_ms(bridge: Bridge, flows: list[OfFlow], repeat: int) -> dict[str, Any]:
    """Median latency of one ``ofproto/trace``-style translation with its text.

    Each trace translates without side effects, as ``ofproto/trace`` does, and
    prints the tables with their actions, the megaflow and the datapath
    actions.
    """
    times = []
    text = ""
    ports = bridge.dp_port_names
    for i in range(repeat):
        flow = flows[i % len(flows)]
        t0 = time.perf_counter()
        result = xlate(bridge, flow)
        text = "\n".join((result.trace_text(), "", "Megaflow: " + result.megaflow(),
                          "Datapath actions: " + format_actions(result.datapath_actions, ports)))
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"trace_ms": round(times[len(times) // 2] * 1e3, 4),
            "trace_ms_p90": round(times[int(len(times) * 0.9)] * 1e3, 4),
            "traces": repeat, "example": text}


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def run(quick: bool = False, echo: Callable[[str], None] | None = print) -> dict:
    """Run the benchmark; returns one JSON-ready dict (``upcalls_per_s``, ``trace_ms`` ...)."""
    say = echo or (lambda _line: None)
    flows, host_ips = pipeline()
    n = 3_000 if quick else 60_000
    n_ref = 1_000 if quick else 10_000
    repeat = 1 if quick else 3
    data, lengths, in_ports = traffic(host_ips, n)
    load_before = _load()
    main = _upcall_run(flows, data, lengths, in_ports, repeat, fast=True)
    # the baselines, measured in the same run on the first n_ref packets: the
    # Python translation (with the compiled classifier lookup, when built) and
    # everything in Python
    ref = slice(0, n_ref)
    python = _upcall_run(flows, data[ref], lengths[ref], in_ports[ref], 1, fast=False)
    reference = None
    if python["classifier"] != "python":
        with classifier_implementation("python"):
            reference = _upcall_run(flows, data[ref], lengths[ref], in_ports[ref], 1,
                                    fast=False)
    reval = _revalidation_run(flows, data[ref], lengths[ref], in_ports[ref], fast=True)
    python_reval = _revalidation_run(flows, data[ref], lengths[ref], in_ports[ref], fast=False)
    bridge = make_bridge(flows)
    trace_flows = [OfFlow.from_flow_key(extract(data[i].tobytes(), int(in_ports[i])))
                   for i in range(min(n, 200))]
    trace = _trace_ms(bridge, trace_flows, 200 if quick else 2000)
    tables = {t: len(c) for t, c in sorted(bridge.tables.items())}
    result = {
        "upcalls_per_s": main["upcalls_per_s"],
        "trace_ms": trace["trace_ms"],
        "goal_upcalls_per_s": GOAL_UPCALLS_PER_S,
        "goal_met": main["upcalls_per_s"] >= GOAL_UPCALLS_PER_S,
        "cpu_upcalls_per_s": main["cpu_upcalls_per_s"],
        "translated_by_core": main["translated_by_core"],
        "python_translation_upcalls_per_s": python["upcalls_per_s"],
        "revalidation_us_per_flow": reval["us_per_flow"],
        "python_revalidation_us_per_flow": python_reval["us_per_flow"],
        "reference_upcalls_per_s": reference["upcalls_per_s"] if reference else None,
        "quick": quick,
        "machine": machine(),
        "loadavg": {"before": load_before, "after": _load()},
        "detail": {
            "compiled": main,
            "python_translation": python,
            "revalidation": {"edit": REVALIDATION_EDIT, "compiled": reval,
                             "python": python_reval},
            "reference": reference,
            "trace": trace,
            "burst": BURST,
            "pipeline": {
                "rules": bridge.n_flows(),
                "rules_per_table": tables,
                "subtables_per_table": {t: len(c.subtables())
                                        for t, c in sorted(bridge.tables.items())},
                "tables": ["0 port security: in_port+dl_src per VM -> reg1=tenant",
                           "1 ACL: source-prefix and L4-port denies, per-tenant service "
                           "allows (reg1, nw_dst/20, tcp_dst), DNS, ICMP, default allow",
                           "2 L3: /32 host, /24 subnet and /16 routes (priority = prefix "
                           "length): dec_ttl, MAC rewrite, reg0=next-hop port",
                           "3 output: reg0 -> output"],
                "traffic": "VM to VM, each packet a (source VM, destination host) pair "
                           "of its own, so every packet misses: TCP SYNs to any port "
                           "within a tenant, to published services across tenants, "
                           "and one ICMP echo in five across tenants",
            },
        },
    }
    ref_text = (f", all Python {reference['upcalls_per_s']}/s" if reference else "")
    met = "met" if result["goal_met"] else "NOT met"
    say(f"upcalls: {main['upcalls_per_s']}/s ({main['us_per_upcall']} us each, "
        f"{main['cpu_upcalls_per_s']}/s of thread CPU time, "
        f"{main['installed_flows']} megaflows installed, {main['translated_by_core']} "
        f"translated by the compiled core)   goal >= {GOAL_UPCALLS_PER_S}: {met}")
    say(f"baselines: Python translation {python['upcalls_per_s']}/s{ref_text}")
    say(f"revalidation after a table edit: {reval['us_per_flow']} us per megaflow "
        f"({reval['checked']} checked, {reval['modified']} modified), "
        f"Python translation {python_reval['us_per_flow']} us")
    say(f"trace: {trace['trace_ms']} ms median")
    return result
