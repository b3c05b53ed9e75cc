"""``ovsnet bench datapath``: the datapath fast path against its pure-Python reference.

Workloads (each also run on the reference implementation, in the same run):

* **W1** forwarding: 1 mask, 1000 megaflows, 64-byte UDP frames drawn from a
  pool of 8192 in random order, bursts of 32: extraction + lookup + ``output``.
* **W2** the same with 30 masks and about 800 megaflows.
* **W3** lookup only, the workload of Open vSwitch's classifier benchmark
  (``ovstest test-classifier benchmark 1000 1 30 1 N``); see
  :mod:`ovsnet.bench.megaflow`.
* **W4** memory: bytes per megaflow with 1M megaflows installed.

Packets-per-second figures are for one core: the datapath runs in the calling
thread, as one poll-mode thread or one softirq context would.
"""

from __future__ import annotations

import random
import struct
import time
from collections.abc import Callable

import numpy as np

from ..datapath.actions import flow_hash_5tuple
from ..datapath.datapath import IMPLEMENTATIONS, Datapath, mask_of
from ..datapath.flow_key import extract
from ..datapath.odp_attrs import ActionAttr, nla_u32
from .megaflow import w3_classifier, w4_memory
from .ovsdb import machine

POOL = 8192
FRAME = 64
BURST = 32


def _udp_frame(
    dl_src: bytes,
    dl_dst: bytes,
    nw_src: int,
    nw_dst: int,
    sport: int,
    dport: int,
    tos: int = 0,
    ip_id: int = 0,
    proto: int = 17,
) -> bytes:
    """A 64-byte Ethernet/IPv4/UDP frame (headers only need to parse)."""
    payload = bytes(FRAME - 14 - 20 - 8)
    ip = struct.pack(
        "!BBHHHBBHII", 0x45, tos, 20 + 8 + len(payload), ip_id, 0, 64, proto, 0, nw_src, nw_dst
    )
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    return dl_dst + dl_src + b"\x08\x00" + ip + udp + payload


def _mac(n: int) -> bytes:
    return b"\x52\x54\x00" + n.to_bytes(3, "big")


class Workload:
    """A pool of frames, the megaflows they hit, and a random packet order."""

    def __init__(self, frames: list[bytes], in_ports: list[int],
                 flows: list[tuple[bytes, bytes, bytes]], seed: int):
        self.data = np.zeros((len(frames), FRAME), dtype=np.uint8)
        for i, f in enumerate(frames):
            self.data[i, : len(f)] = np.frombuffer(f, dtype=np.uint8)
        self.lengths = np.array([len(f) for f in frames], dtype=np.int32)
        self.in_ports = np.array(in_ports, dtype=np.uint32)
        self.flows = flows
        self.masks = len({m for _, m, _ in flows})
        # The hash a NIC computes in hardware (RSS) and the kernel reads from
        # skb->hash: OVS's 5-tuple hash, the value the datapath would compute.
        self.rss = np.array([flow_hash_5tuple(extract(f, p).raw) for f, p in zip(frames, in_ports, strict=True)],
                            dtype=np.uint32)
        self.rng = np.random.default_rng(seed)

    def order(self, n: int) -> np.ndarray:
        reps = -(-n // len(self.lengths))
        return np.concatenate(
            [self.rng.permutation(len(self.lengths)).astype(np.uint32) for _ in range(reps)]
        )[:n]

    def datapath(self, implementation: str) -> Datapath:
        dp = Datapath("system", implementation=implementation, flow_limit=10**7)
        for port in (1, 2, 3, 4):
            dp.add_port(f"p{port}", port_no=port)
        for key, mask, actions in self.flows:
            dp.flow_put(key, mask, actions)
        return dp


def w1_workload(seed: int = 1) -> Workload:
    """1 mask (in_port, Ethernet type, IPv4 5-tuple), 1000 megaflows."""
    mask = mask_of("in_port", "dl_type", "nw_src", "nw_dst", "nw_proto", "nw_frag",
                   "tp_src", "tp_dst")
    rng = random.Random(seed)
    tuples = []
    flows = []
    for f in range(1000):
        t = (0x0A000000 | f, 0x0A010000 | rng.randrange(1 << 16), 1024 + f, 53 + f % 7)
        tuples.append(t)
        key = extract(_udp_frame(_mac(1), _mac(2), *t), 1).raw
        flows.append((key, mask, nla_u32(ActionAttr.OUTPUT, 2 + f % 3)))
    frames = []
    for j in range(POOL):
        t = tuples[j % 1000]
        frames.append(_udp_frame(_mac(rng.randrange(1 << 24)), _mac(2), *t, ip_id=j))
    return Workload(frames, [1] * POOL, flows, seed)


#: fields a W2 mask may add to its base (in_port, dl_type, nw_tos)
_W2_FIELDS = (
    ("dl_src", None), ("dl_dst", None), ("nw_src", 0xFFFFFFFF), ("nw_src", 0xFFFFFF00),
    ("nw_src", 0xFFFF0000), ("nw_dst", 0xFFFFFFFF), ("nw_dst", 0xFFFFFF00),
    ("nw_proto", None), ("tp_src", None), ("tp_dst", None),
)


def w2_workload(seed: int = 2, n_masks: int = 30, n_flows: int = 800,
                every_packet_new: bool = False) -> Workload:
    """30 masks, about 800 megaflows, none overlapping.

    Every mask matches ``nw_tos`` exactly with a value of its own, so
    megaflows of different masks cannot overlap, plus a distinct subset of
    Ethernet addresses, IPv4 prefixes, protocol and ports.

    As in W1, the pool's packets of one megaflow belong to one connection
    (one 5-tuple; the Ethernet source and IP id vary). With
    ``every_packet_new`` every packet of the pool is a connection of its own
    instead (all unmasked address and port bits random): no two packets share
    a packet hash, so the kernel's mask cache cannot help.
    """
    rng = random.Random(seed)
    subsets: list[tuple[int, ...]] = []
    while len(subsets) < n_masks:
        chosen = tuple(sorted(rng.sample(range(len(_W2_FIELDS)), rng.randint(1, 5))))
        names = [_W2_FIELDS[i][0] for i in chosen]
        if len(set(names)) == len(names) and chosen not in subsets:
            subsets.append(chosen)
    flows = []
    per_flow: list[dict] = []
    for m, chosen in enumerate(subsets):
        exact = ["in_port", "dl_type", "nw_tos"]
        partial = {}
        for i in chosen:
            name, bits = _W2_FIELDS[i]
            if bits is None:
                exact.append(name)
            else:
                partial[name] = bits
        mask = mask_of(*exact, **partial)
        count = n_flows // n_masks + (1 if m < n_flows % n_masks else 0)
        seen = set()
        while len(seen) < count:
            values = {
                "dl_src": rng.randrange(1 << 24), "dl_dst": rng.randrange(1 << 24),
                "nw_src": rng.getrandbits(32), "nw_dst": rng.getrandbits(32),
                "proto": rng.choice((6, 17)), "sport": rng.randrange(1 << 16),
                "dport": rng.randrange(1 << 16), "tos": m << 2,
            }
            frame = _flow_frame(values)
            key = extract(frame, 1).raw
            masked = bytes(a & b for a, b in zip(key, mask, strict=True))
            if masked in seen:
                continue
            seen.add(masked)
            flows.append((key, mask, nla_u32(ActionAttr.OUTPUT, 2 + len(flows) % 3)))
            per_flow.append({"values": values, "mask": mask, "chosen": chosen})
    frames = []
    for j in range(POOL):
        spec = per_flow[j % len(per_flow)]
        values = dict(spec["values"])
        fixed = {_W2_FIELDS[i][0]: _W2_FIELDS[i][1] for i in spec["chosen"]}
        if "dl_src" not in fixed:
            values["dl_src"] = rng.randrange(1 << 24)
        if not every_packet_new:
            frames.append(_flow_frame(values, ip_id=j))
            continue
        # Randomise whatever the mask leaves out, keeping the matched bits.
        if "dl_dst" not in fixed:
            values["dl_dst"] = rng.randrange(1 << 24)
        for name in ("nw_src", "nw_dst"):
            keep = fixed.get(name, 0) or 0
            values[name] = (values[name] & keep) | (rng.getrandbits(32) & ~keep & 0xFFFFFFFF)
        if "tp_src" not in fixed:
            values["sport"] = rng.randrange(1 << 16)
        if "tp_dst" not in fixed:
            values["dport"] = rng.randrange(1 << 16)
        if "nw_proto" not in fixed and "tp_src" not in fixed and "tp_dst" not in fixed:
            values["proto"] = rng.choice((6, 17))
        frames.append(_flow_frame(values, ip_id=j))
    return Workload(frames, [1] * POOL, flows, seed)


def _flow_frame(v: dict, ip_id: int = 0) -> bytes:
    return _udp_frame(_mac(v["dl_src"]), _mac(v["dl_dst"]), v["nw_src"], v["nw_dst"],
                      v["sport"], v["dport"], tos=v["tos"], ip_id=ip_id, proto=v["proto"])


def _mpps(dp: Datapath, w: Workload, n: int, repeat: int) -> tuple[float, dict]:
    """Best-of-``repeat`` Mpps of ``n`` packets through ``dp``; checks every packet hit."""
    best = float("inf")
    order = w.order(n)
    for _ in range(repeat):
        before = dp.stats()
        t0 = time.perf_counter()
        packets, outputs = dp.run_bursts(w.data, w.lengths, w.in_ports, order, burst=BURST,
                                         rss_hashes=w.rss)
        elapsed = time.perf_counter() - t0
        after = dp.stats()
        if outputs != n or after.missed != before.missed:
            raise RuntimeError(
                f"workload broken: {n} packets gave {outputs} outputs and "
                f"{after.missed - before.missed} misses"
            )
        best = min(best, elapsed)
    s = dp.stats()
    detail = {
        "packets": n,
        "masks": s.masks,
        "flows": s.flows,
        "mask_hit_per_pkt": round(s.masks_hit_per_pkt, 3),
        "ns_per_packet": round(best / n * 1e9, 1),
    }
    return n / best / 1e6, detail


def _forwarding(name: str, w: Workload, quick: bool) -> dict:
    n = 200_000 if quick else 2_000_000
    n_ref = 2_000 if quick else 20_000
    value = detail = None
    if "cython" in IMPLEMENTATIONS:
        value, detail = _mpps(w.datapath("cython"), w, n, 3)
    ref, ref_detail = _mpps(w.datapath("python"), w, n_ref, 1)
    return {
        "name": name,
        "value": round(value, 3) if value is not None else None,
        "unit": "Mpps",
        "reference_value": round(ref, 5),
        "detail": {"compiled": detail, "reference": ref_detail, "burst": BURST, "pool": POOL,
                   "packet_hash": "RSS hash supplied with each frame, as a NIC does"},
    }


def run(quick: bool = False, echo: Callable[[str], None] | None = print,
        workloads: tuple[str, ...] = ("W1", "W2", "W3", "W4")) -> dict:
    """Run the workloads; returns ``{"machine": ..., "workloads": [...]}``."""
    say = echo or (lambda _line: None)
    out = []
    if "W1" in workloads:
        out.append(_forwarding("W1", w1_workload(), quick))
    if "W2" in workloads:
        w2 = _forwarding("W2", w2_workload(), quick)
        hard = _forwarding("W2", w2_workload(every_packet_new=True), quick)
        w2["detail"]["every_packet_a_new_connection"] = {
            "value": hard["value"], "reference_value": hard["reference_value"],
            "compiled": hard["detail"]["compiled"],
        }
        out.append(w2)
    if "W3" in workloads:
        out.append(w3_classifier(quick))
    if "W4" in workloads:
        out.append(w4_memory(quick))
    goals = {"W1": (">=", 10.0), "W2": (">=", 5.0), "W3": (">=", 18.0), "W4": ("<=", 256.0)}
    for w in out:
        op, goal = goals.get(w["name"], ("", None))
        met = ""
        if goal is not None and w["value"] is not None:
            ok = w["value"] >= goal if op == ">=" else w["value"] <= goal
            met = f"   goal {op} {goal:g}: {'met' if ok else 'NOT met'}"
        say(f"{w['name']}: {w['value']} {w['unit']}   reference (pure Python) "
            f"{w['reference_value']} {w['unit']}{met}")
    return {"machine": machine(), "quick": quick, "workloads": out}
