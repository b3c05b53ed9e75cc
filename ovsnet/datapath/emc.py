"""The exact-match cache (EMC) of the userspace datapath, in front of the megaflow table.

What this models: ``dpif-netdev``'s per-PMD exact-match cache
(``lib/dpif-netdev-private-dfc.h``: ``emc_lookup``, ``emc_entry_alive``;
``lib/dpif-netdev.c``: ``emc_insert``, ``emc_change_entry``,
``emc_probabilistic_insert``, ``emc_cache_slow_sweep``):

* :data:`ENTRIES` (8192, ``EM_FLOW_HASH_ENTRIES``) entries, each a full flow
  key, its 32-bit hash and a reference to the megaflow it matched. A key can
  sit at :data:`HASH_SEGS` (2) positions: the low 13 bits of the hash, then
  the next 13 (``EMC_FOR_EACH_POS_WITH_HASH``). The hash is the packet's RSS
  hash or its key hash, chosen by the caller.
* A lookup compares hash, liveness and the whole key; a flow removed from its
  table (dead) is never returned, although the entry keeps a reference until
  it is overwritten or swept.
* An insert updates the entry that already holds the key, else replaces an
  entry whose flow is not alive, else the one with the smaller hash.
* Inserts are probabilistic: ``emc_insert_min = UINT32_MAX / inv_prob`` and an
  insert happens when ``random_uint32() <= emc_insert_min``
  (``other_config:emc-insert-inv-prob``, default 100; 1 = always, 0 = never).
  The random numbers are OVS's xorshift32 (``lib/random.c``), its state
  seeded with ``hash_uint64(seed)`` (or 1 if that is 0), so runs repeat.
* ``sweep()`` is one step of ``emc_cache_slow_sweep``: drop the flow of one
  entry if it is dead, the sweep index moving round the table.

The compiled cache stores keys compactly, like a miniflow (a bitmap of the
non-zero words and those words). :class:`ReferenceExactMatchCache` is plain
Python; :data:`ExactMatchCache` is the compiled ``ovsnet._emc`` when built
(:data:`IMPLEMENTATION` ``"cython"``). A cache only holds flows of the same
implementation's megaflow table.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ovsnet.datapath.megaflow import (
    FlowView,
    ReferenceMegaflowTable,
    _uint,
    as_key,
)
from ovsnet.datapath.packet import hash_uint64
from ovsnet.errors import DatapathError

__all__ = [
    "DEFAULT_INV_PROB",
    "ENTRIES",
    "HASH_SEGS",
    "HASH_SHIFT",
    "IMPLEMENTATION",
    "ExactMatchCache",
    "ReferenceExactMatchCache",
    "insert_min",
    "native",
    "rng_seed",
]

#: Entries in the cache (EM_FLOW_HASH_ENTRIES).
ENTRIES = 8192
#: Bits of the hash per position (EM_FLOW_HASH_SHIFT) and positions per key (EM_FLOW_HASH_SEGS).
HASH_SHIFT = 13
HASH_SEGS = 2
#: Default of other_config:emc-insert-inv-prob (DEFAULT_EM_FLOW_INSERT_INV_PROB).
DEFAULT_INV_PROB = 100

_U32 = 0xFFFFFFFF

def insert_min(inv_prob: int) -> int:
    """emc_insert_min for an inverse probability (dpif_netdev_set_config)."""
    return 0 if inv_prob == 0 else _U32 // inv_prob


def rng_seed(seed: int) -> int:
    """The xorshift32 state for ``seed``: hash_uint64(seed), never 0."""
    return hash_uint64(seed & ((1 << 64) - 1)) or 1


class ReferenceExactMatchCache:
    """Pure-Python exact-match cache over a :class:`ReferenceMegaflowTable`."""

    def __init__(self, inv_prob: int = DEFAULT_INV_PROB, seed: int = 0):
        self.inv_prob = inv_prob
        self._rng = rng_seed(_uint("seed", seed, (1 << 64) - 1))
        # [hash, key bytes or None (never written), flow or None] per entry.
        self._entries: list[list[Any]] = [[0, None, None] for _ in range(ENTRIES)]
        self._sweep_idx = 0
        self.lookups = 0
        self.hits = 0
        #: emc_insert calls (probabilistic inserts that passed the draw, and forced ones)
        self.inserts = 0

    @property
    def inv_prob(self) -> int:
        """Insert with probability 1/inv_prob; 0 = never."""
        return self._inv_prob

    @inv_prob.setter
    def inv_prob(self, value: int) -> None:
        self._inv_prob = _uint("inv_prob", value, _U32)
        self._insert_min = insert_min(self._inv_prob)

    @staticmethod
    def _alive(entry: list[Any]) -> bool:
        return entry[2] is not None and not entry[2].dead

    def _positions(self, hash: int) -> list[list[Any]]:
        return [self._entries[(hash >> (HASH_SHIFT * i)) & (ENTRIES - 1)] for i in range(HASH_SEGS)]

    def _random(self) -> int:
        x = self._rng
        x ^= (x << 13) & _U32
        x ^= x >> 17
        x ^= (x << 5) & _U32
        self._rng = x
        return x

    def lookup(self, key: Any, hash: int) -> FlowView | None:
        """The live flow cached for ``key`` with this 32-bit hash, or None (emc_lookup)."""
        k = as_key("key", key)
        h = _uint("hash", hash, _U32)
        self.lookups += 1
        for entry in self._positions(h):
            if entry[0] == h and self._alive(entry) and entry[1] == k:
                self.hits += 1
                return entry[2].view()
        return None

    def _flow(self, table: Any, ufid: Any) -> Any:
        if not isinstance(table, ReferenceMegaflowTable):
            raise DatapathError(
                f"the reference ExactMatchCache caches flows of ReferenceMegaflowTable, "
                f"not of {type(table).__name__}"
            )
        return table._flow_object(ufid)

    def _insert(self, k: bytes, h: int, flow: Any) -> None:
        self.inserts += 1
        victim = None
        for entry in self._positions(h):
            if entry[0] == h and entry[1] == k:  # netdev_flow_key_equal
                entry[2] = flow
                return
            if (victim is None or (self._alive(victim) and not self._alive(entry))
                    or entry[0] < victim[0]):
                victim = entry
        assert victim is not None
        victim[0], victim[1], victim[2] = h, k, flow

    def insert(self, key: Any, hash: int, table: Any, ufid: Any) -> None:
        """Cache the flow ``ufid`` of ``table`` for ``key`` (emc_insert)."""
        k = as_key("key", key)
        h = _uint("hash", hash, _U32)
        self._insert(k, h, self._flow(table, ufid))

    def probabilistic_insert(self, key: Any, hash: int, table: Any, ufid: Any) -> bool:
        """emc_probabilistic_insert; returns whether the random draw allowed the insert."""
        k = as_key("key", key)
        h = _uint("hash", hash, _U32)
        flow = self._flow(table, ufid)
        if self._insert_min and self._random() <= self._insert_min:
            self._insert(k, h, flow)
            return True
        return False

    def sweep(self, n: int = 1) -> None:
        """``n`` steps of emc_cache_slow_sweep (one entry each)."""
        for _ in range(_uint("n", n, _U32)):
            entry = self._entries[self._sweep_idx]
            if not self._alive(entry):
                entry[2] = None  # emc_clear_entry: the key stays
            self._sweep_idx = (self._sweep_idx + 1) & (ENTRIES - 1)

    def clear(self) -> None:
        """Drop every entry's flow reference."""
        for entry in self._entries:
            entry[2] = None

    def __len__(self) -> int:
        """Entries holding a live flow."""
        return sum(1 for e in self._entries if self._alive(e))

    def __repr__(self) -> str:
        return (f"<ReferenceExactMatchCache {len(self)} live entries, "
                f"{self.hits}/{self.lookups} hits, inv_prob={self._inv_prob}>")


native: ModuleType | None
try:
    import ovsnet._emc as native
except ModuleNotFoundError as error:
    # Only a missing extension falls back; a broken build raises.
    if error.name != "ovsnet._emc":
        raise
    native = None

#: ``"cython"`` when :data:`ExactMatchCache` is compiled, else ``"python"``.
IMPLEMENTATION = "python"
#: The exact-match cache to use: compiled when built, else the reference.
ExactMatchCache: Any = ReferenceExactMatchCache

if native is not None:
    IMPLEMENTATION = "cython"
    ExactMatchCache = native.ExactMatchCache
