"""Megaflow table workloads for ``ovsnet bench datapath``: W3 (lookups) and W4 (memory).

Each function returns a dict ``{"name", "value", "unit", "reference_value", "detail"}``:
``value`` is the compiled table, ``reference_value`` the pure-Python
ReferenceMegaflowTable measured in the same run on a smaller count (rates are
per second, so the smaller count does not flatter it; see each docstring).

W3 ``w3_classifier``: the workload of OVS's ``ovstest test-classifier
benchmark 1000 1 30 1 N`` (tests/test-classifier.c, ``benchmark()``), with the
same random draws (OVS's xorshift32 ``random_uint32``, seed 1):

* 13 fields with 2 values each (``values[][]``), mapped onto our key as
  tun_id, skb_mark (OpenFlow ``metadata`` has no datapath key field; its low
  32 bits are used), nw_src, nw_dst, in_port (ofport 1 and LOCAL become
  odp_ports 1 and 0), vlan_tci (TCI 101 with the CFI bit our key sets for a
  present tag), dl_type, tp_src, tp_dst, dl_src, dl_dst, nw_proto and the DSCP
  bits of nw_tos (mask 0xfc);
* 30 distinct random field subsets (``wcfs``) as masks; 1000 rules, each a
  random subset and a random value pattern, inserted as megaflows (duplicates
  skipped, as ``classifier_find_rule_exactly`` skips them);
* 8192 lookup flows drawn as OVS draws them, and each lookup a uniform random
  one of them (indices drawn up front, from OVS's generator reseeded with 1 as
  ``lookup_classifier`` does).

Note: OVS's ``make_rule()`` sets the mask of all 13 fields whatever
``wc_fields`` says, so OVS's own benchmark runs with a single subtable. W3
follows the workload as specified (30 masks); ``detail["one_mask"]`` is the
same lookups against OVS's actual rule set (every rule exact on 13 fields).

Lookups run ``mf_lookup`` in a C loop (``MegaflowTable.lookup_loop``). The
skb_hash of each lookup flow is computed once, when the lookup flows are
made: OVS's ``hash_bytes`` over the whole key, as dpif-netdev hashes a
miniflow when the NIC gives no RSS hash (never 0). The figure is reported
with that hash (mask cache in use) and with skb_hash 0 (no mask cache). One
warm-up pass and one ``rebalance()`` come first, as the kernel rebalances
every 4 s.

W4 ``w4_memory``: bytes per megaflow with 1M megaflows (quick: 100k) over 5
masks (a 5-tuple, a 5-tuple with TCP flags, an L3 destination, an L2 pair and
a source-address ACL one), each with one of 8 short ``output`` actions. Measured
by the table's own malloc accounting (``malloc_usable_size`` + 8-byte chunk
header per allocation: flows, masks, index arrays, interned actions), with
the process RSS growth as a cross-check in ``detail``. The reference figure
is ``tracemalloc``'s count for ReferenceMegaflowTable with a tenth as many flows.
"""

from __future__ import annotations

import gc
import os
import time
import tracemalloc
from typing import Any

import numpy as np

from ovsnet.datapath import megaflow as MF
from ovsnet.datapath.flow_key import FIELD_BY_NAME, KEY_SIZE, KEY_WORDS
from ovsnet.datapath.odp_attrs import ActionAttr, nla_u32
from ovsnet.datapath.packet import hash_bytes

__all__ = ["w3_classifier", "w4_memory"]


class _OvsRandom:
    """lib/random.c: xorshift32 random_uint32 and random_range."""

    def __init__(self, seed: int):
        self.state = seed

    def uint32(self) -> int:
        x = self.state
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.state = x
        return x

    def range(self, n: int) -> int:
        return self.uint32() % n


def _be(n: int, v: int) -> bytes:
    return v.to_bytes(n, "big")


# (our key field, the two values as key bytes, mask bytes) per CLS_FIELD, in
# test-classifier.c's CLS_F_IDX order.
_CLS_FIELDS: tuple[tuple[str, tuple[bytes, bytes], bytes], ...] = (
    ("tun_id", (_be(8, 0), _be(8, 0xFEDCBA9876543210)), b"\xff" * 8),
    ("skb_mark", ((0).to_bytes(4, "little"), (0x76543210).to_bytes(4, "little")), b"\xff" * 4),
    ("nw_src", (_be(4, 0xC0A80001), _be(4, 0xC0A04455)), b"\xff" * 4),
    ("nw_dst", (_be(4, 0xC0A80002), _be(4, 0xC0A04455)), b"\xff" * 4),
    ("in_port", ((1).to_bytes(4, "little"), (0).to_bytes(4, "little")), b"\xff" * 4),
    ("vlan_tci", (_be(2, 0x1000 | 101), _be(2, 0)), b"\xff" * 2),
    ("dl_type", (_be(2, 0x0800), _be(2, 0x0806)), b"\xff" * 2),
    ("tp_src", (_be(2, 49362), _be(2, 80)), b"\xff" * 2),
    ("tp_dst", (_be(2, 6667), _be(2, 22)), b"\xff" * 2),
    ("dl_src", (bytes.fromhex("0002e30f80a4"), bytes.fromhex("5e337f5f1e99")), b"\xff" * 6),
    ("dl_dst", (bytes.fromhex("4a2771ae64c1"), bytes.fromhex("ffffffffffff")), b"\xff" * 6),
    ("nw_proto", (b"\x06", b"\x01"), b"\xff"),
    ("nw_tos", (b"\x30", b"\x00"), b"\xfc"),
)
_N_FIELDS = len(_CLS_FIELDS)
# The order in which benchmark() draws the values of a lookup flow.
_LOOKUP_DRAW_ORDER = (2, 3, 0, 1, 4, 5, 6, 7, 8, 9, 10, 11, 12)
_N_FLOW_VALUES = 2 ** 12  # N_FLOW_VALUES: every field but metadata


def _put(buf: bytearray, name: str, value: bytes) -> None:
    off = FIELD_BY_NAME[name].offset
    buf[off : off + len(value)] = value


def _rule(fields: int, value_pat: int) -> tuple[bytes, bytes]:
    """make_rule as specified: the fields in ``fields`` matched, values by ``value_pat``."""
    key, mask = bytearray(KEY_SIZE), bytearray(KEY_SIZE)
    for i, (name, values, m) in enumerate(_CLS_FIELDS):
        _put(key, name, values[(value_pat >> i) & 1])
        if fields >> i & 1:
            _put(mask, name, m)
    return bytes(key), bytes(mask)


def _classifier_workload(n_rules: int, n_tables: int) -> dict[str, Any]:
    """The draws of test-classifier.c benchmark() with n_priorities = 1."""
    rnd = _OvsRandom(1)
    wcfs: list[int] = []
    while len(wcfs) < n_tables:
        w = rnd.uint32() & ((1 << _N_FIELDS) - 1)
        if w not in wcfs:
            wcfs.append(w)
    # shuffle(priorities, 1) draws nothing. Lookup flows:
    n_lookup_flows = 2 * _N_FLOW_VALUES
    keys = np.zeros((n_lookup_flows, KEY_WORDS), dtype=np.uint64)
    for row in range(n_lookup_flows):
        x = rnd.range(_N_FLOW_VALUES)
        buf = bytearray(KEY_SIZE)
        for f_idx in _LOOKUP_DRAW_ORDER:
            name, values, _ = _CLS_FIELDS[f_idx]
            _put(buf, name, values[x % 2])
            x //= 2
        keys[row] = np.frombuffer(bytes(buf), dtype=np.uint64)
    rules = []
    for _ in range(n_rules):
        rnd.range(1)  # priorities[random_range(n_priorities)]
        wcf = wcfs[rnd.range(n_tables)]
        value_pat = rnd.uint32() & ((1 << _N_FIELDS) - 1)
        rules.append((wcf, value_pat))
    hashes = np.array([hash_bytes(keys[r].tobytes()) or 1 for r in range(n_lookup_flows)],
                      dtype=np.uint32)
    return {"wcfs": wcfs, "keys": keys, "rules": rules, "hashes": hashes}


def _lookup_order(n_lookups: int, n_flows: int) -> np.ndarray:
    """lookup_classifier's draws: random_set_seed(1), then random_range per lookup."""
    rnd = _OvsRandom(1)
    return np.fromiter((rnd.range(n_flows) for _ in range(n_lookups)), dtype=np.uint32,
                       count=n_lookups)


def _build(cls: Any, rules: list[tuple[int, int]], all_fields: bool) -> Any:
    table = cls()
    actions = nla_u32(ActionAttr.OUTPUT, 1)
    for wcf, value_pat in rules:
        key, mask = _rule((1 << _N_FIELDS) - 1 if all_fields else wcf, value_pat)
        try:
            table.insert(key, mask, actions)
        except MF.FlowExistsError:
            pass
    return table


def _rate(table: Any, keys: np.ndarray, order: np.ndarray, hashes: np.ndarray | None,
          repeat: int) -> tuple[float, int, int]:
    """Best-of-``repeat`` M lookups/s, with hits and masks probed of the last run."""
    best = float("inf")
    hits = probed = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        hits, probed = table.lookup_loop(keys, order, hashes)
        best = min(best, time.perf_counter() - t0)
    return len(order) / best / 1e6, hits, probed


def _measure(cls: Any, work: dict[str, Any], order: np.ndarray, all_fields: bool,
             repeat: int) -> dict[str, Any]:
    table = _build(cls, work["rules"], all_fields)
    keys, hashes = work["keys"], work["hashes"]
    warm = order[: min(len(order), 100_000)]
    _, warm_probed = table.lookup_loop(keys, warm, hashes)  # masks in insertion order
    table.rebalance()
    with_hash, hits, probed = _rate(table, keys, order, hashes, repeat)
    no_hash, hits0, probed0 = _rate(table, keys, order, None, repeat)
    return {
        "rules": len(table),
        "masks": table.n_masks,
        "mlookups_per_s": with_hash,
        "mlookups_per_s_no_mask_cache": no_hash,
        "hit_rate": hits / len(order),
        "masks_probed_per_lookup": probed / len(order),
        "masks_probed_per_lookup_no_mask_cache": probed0 / len(order),
        "masks_probed_per_lookup_before_rebalance": warm_probed / len(warm),
        "mask_cache_hits": table.mask_cache_hits,
    }


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def w3_classifier(quick: bool) -> dict[str, Any]:
    """W3: megaflow lookups/s on test-classifier's benchmark (1000 rules, 30 masks)."""
    n_lookups = 1_000_000 if quick else 10_000_000
    work = _classifier_workload(1000, 30)
    order = _lookup_order(n_lookups, len(work["keys"]))
    table_cls = MF.MegaflowTable
    compiled = _measure(table_cls, work, order, False, 3)
    one_mask = _measure(table_cls, work, order, True, 3)
    ref_order = order[: 20_000 if quick else 100_000]
    reference = _measure(MF.ReferenceMegaflowTable, work, ref_order, False, 1)
    return {
        "name": "W3",
        "value": round(compiled["mlookups_per_s"], 3),
        "unit": "M lookups/s",
        "reference_value": round(reference["mlookups_per_s"], 4),
        "detail": {
            "implementation": MF.IMPLEMENTATION,
            "lookups": n_lookups,
            "reference_lookups": len(ref_order),
            "compiled": compiled,
            "one_mask": one_mask,
            "reference": reference,
            "goal": ">= 18 M lookups/s (OVS's C classifier, test-classifier benchmark)",
            "skb_hash": "hash_bytes(key) per lookup flow, computed once; 0 = no mask cache",
            "loadavg": _load(),
        },
    }


# ---------------------------------------------------------------------------
# W4
# ---------------------------------------------------------------------------

_W4_MASKS = (
    ("in_port", "recirc_id", "dl_type", "nw_src", "nw_dst", "nw_proto", "tp_src", "tp_dst"),
    ("in_port", "recirc_id", "dl_type", "nw_src", "nw_dst", "nw_proto", "tp_src", "tp_dst",
     "tcp_flags"),
    ("in_port", "recirc_id", "dl_type", "nw_dst", "nw_frag"),
    ("in_port", "recirc_id", "dl_src", "dl_dst", "dl_type"),
    ("in_port", "recirc_id", "dl_type", "nw_src", "nw_proto"),
)


def _w4_mask(names: tuple[str, ...]) -> bytes:
    buf = bytearray(KEY_SIZE)
    for name in names:
        f = FIELD_BY_NAME[name]
        buf[f.offset : f.offset + f.size] = b"\xff" * f.size
    return bytes(buf)


def _w4_fill(table: Any, n: int) -> None:
    masks = [_w4_mask(m) for m in _W4_MASKS]
    actions = [nla_u32(ActionAttr.OUTPUT, p) for p in range(1, 9)]
    buf = bytearray(KEY_SIZE)
    _put(buf, "dl_type", b"\x08\x00")
    _put(buf, "nw_proto", b"\x06")
    for i in range(n):
        _put(buf, "in_port", (i % 16 + 1).to_bytes(4, "little"))
        _put(buf, "nw_src", (0x0A000000 + i).to_bytes(4, "big"))
        _put(buf, "nw_dst", (0xC0000000 + (i * 7919) % (1 << 24)).to_bytes(4, "big"))
        _put(buf, "tp_src", (1024 + i % 60000).to_bytes(2, "big"))
        _put(buf, "dl_src", (0x020000000000 + i).to_bytes(6, "big"))
        table.insert(bytes(buf), masks[i % len(masks)], actions[i % len(actions)])


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def w4_memory(quick: bool) -> dict[str, Any]:
    """W4: bytes per megaflow with 1M (quick: 100k) 5-tuple-ish megaflows installed."""
    n = 100_000 if quick else 1_000_000
    gc.collect()
    rss0 = _rss_bytes()
    table = MF.MegaflowTable(flow_limit=n)
    base = table.memory_bytes() if hasattr(table, "memory_bytes") else 0
    t0 = time.perf_counter()
    _w4_fill(table, n)
    insert_s = time.perf_counter() - t0
    rss = _rss_bytes() - rss0
    accounted = table.memory_bytes() - base if hasattr(table, "memory_bytes") else None
    detail: dict[str, Any] = {
        "implementation": MF.IMPLEMENTATION,
        "megaflows": len(table),
        "masks": table.n_masks,
        "method": "table's malloc accounting (malloc_usable_size + 8 per allocation)",
        "rss_bytes_per_megaflow": round(rss / n, 1),
        "insert_us_per_flow": round(insert_s / n * 1e6, 2),
        "goal": "<= 256 bytes per megaflow",
    }
    if hasattr(table, "memory_detail"):
        detail["table"] = table.memory_detail()
    del table
    gc.collect()

    n_ref = n // 10
    tracemalloc.start()
    ref = MF.ReferenceMegaflowTable(flow_limit=n_ref)
    _w4_fill(ref, n_ref)
    ref_bytes, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    detail["reference_megaflows"] = n_ref
    detail["reference_method"] = "tracemalloc, ReferenceMegaflowTable"
    value = accounted / n if accounted is not None else rss / n
    return {
        "name": "W4",
        "value": round(value, 1),
        "unit": "bytes per megaflow",
        "reference_value": round(ref_bytes / n_ref, 1),
        "detail": detail,
    }
