# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled exact-match cache: dpif-netdev's EMC in front of the megaflow table.

Private: use :mod:`ovsnet.datapath.emc`, which documents what is modelled
(lib/dpif-netdev-private-dfc.h emc_lookup, lib/dpif-netdev.c emc_insert,
emc_probabilistic_insert, emc_cache_slow_sweep) and holds the pure-Python
reference this module must agree with entry for entry. Declarations and the
C-level contract are in ovsnet/_emc.pxd.
"""

from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy

from cpython.bytes cimport PyBytes_AS_STRING

from ovsnet._flow_key cimport FLOW_KEY_WORDS, flow_key
from ovsnet._megaflow cimport (
    MegaflowTable, mf_flow, mf_flow_ref, mf_flow_unref, mf_flow_view,
)
from ovsnet._packet cimport ovs_hash_uint64_basis

ENTRIES = EMC_ENTRIES
HASH_SEGS = EMC_HASH_SEGS
HASH_SHIFT = EMC_HASH_SHIFT


cdef object _api_mod = None


cdef object _mf_mod = None


cdef object _api():
    """ovsnet.datapath.emc (imported lazily: it imports this module)."""
    global _api_mod
    if _api_mod is None:
        import ovsnet.datapath.emc as mod
        _api_mod = mod
    return _api_mod


cdef object _mf():
    """ovsnet.datapath.megaflow: errors and argument checks shared with the reference."""
    global _mf_mod
    if _mf_mod is None:
        import ovsnet.datapath.megaflow as mod
        _mf_mod = mod
    return _mf_mod


# ---------------------------------------------------------------------------
# Entries
# ---------------------------------------------------------------------------

cdef inline bint _alive(const emc_entry *e) noexcept nogil:
    """emc_entry_alive: a flow that was not removed."""
    return e.flow != NULL and not e.flow.dead


cdef inline bint _key_equal(const emc_entry *e, const uint64_t *kw) noexcept nogil:
    """The stored compact key equals the full key 'kw'."""
    cdef const uint64_t *w = e.ext if e.ext != NULL else e.words
    cdef uint64_t diff = 0, m = e.map
    cdef uint32_t i, j = 0
    for i in range(64):
        if (m >> i) & 1:
            diff |= kw[i] ^ w[j]
            j += 1
        else:
            diff |= kw[i]
    for i in range(64, FLOW_KEY_WORDS):
        if (e.map_hi >> (i - 64)) & 1:
            diff |= kw[i] ^ w[j]
            j += 1
        else:
            diff |= kw[i]
    return diff == 0


cdef inline void _set_flow(emc_entry *e, mf_flow *flow) noexcept nogil:
    """emc_change_entry's reference swap."""
    if e.flow != flow:
        if e.flow != NULL:
            mf_flow_unref(e.flow)
        if flow != NULL:
            mf_flow_ref(flow)
        e.flow = flow


cdef void _set_key(emc_entry *e, const uint64_t *kw, uint32_t hash) noexcept nogil:
    cdef uint64_t m = 0
    cdef uint8_t m_hi = 0
    cdef uint32_t i, n = 0
    cdef uint64_t *w
    for i in range(FLOW_KEY_WORDS):
        if kw[i]:
            if i < 64:
                m |= (<uint64_t>1) << i
            else:
                m_hi |= <uint8_t>(1 << (i - 64))
            n += 1
    if e.ext != NULL:
        free(e.ext)
        e.ext = NULL
    w = e.words
    if n > EMC_INLINE_WORDS:
        e.ext = <uint64_t *>malloc(n * sizeof(uint64_t))
        if e.ext == NULL:
            # Out of memory: leave the entry empty rather than wrong.
            _set_flow(e, NULL)
            e.written = 0
            return
        w = e.ext
    n = 0
    for i in range(FLOW_KEY_WORDS):
        if kw[i]:
            w[n] = kw[i]
            n += 1
    e.map = m
    e.map_hi = m_hi
    e.n_words = <uint8_t>n
    e.hash = hash
    e.written = 1


cdef void _clear(emc_entry *e) noexcept nogil:
    """emc_clear_entry: drop the flow; the key stays, as in OVS."""
    _set_flow(e, NULL)


# ---------------------------------------------------------------------------
# C entry points
# ---------------------------------------------------------------------------

cdef mf_flow *emc_lookup(emc_cache *c, const flow_key *key, uint32_t hash) noexcept nogil:
    cdef const uint64_t *kw = <const uint64_t *>key
    cdef uint32_t seg, h = hash
    cdef emc_entry *e
    c.lookups += 1
    for seg in range(EMC_HASH_SEGS):
        e = &c.entries[h & (EMC_ENTRIES - 1)]
        if e.hash == hash and _alive(e) and _key_equal(e, kw):
            c.hits += 1
            return e.flow
        h >>= EMC_HASH_SHIFT
    return NULL


cdef void emc_insert(emc_cache *c, const flow_key *key, uint32_t hash,
                     mf_flow *flow) noexcept nogil:
    cdef const uint64_t *kw = <const uint64_t *>key
    cdef uint32_t seg, h = hash
    cdef emc_entry *e
    cdef emc_entry *victim = NULL
    c.inserts += 1
    for seg in range(EMC_HASH_SEGS):
        e = &c.entries[h & (EMC_ENTRIES - 1)]
        # netdev_flow_key_equal: same hash and same key. An entry never
        # written has no flow and may not stand for the all-zero key.
        if e.hash == hash and e.written and _key_equal(e, kw):
            _set_flow(e, flow)
            return
        # Replacement: an entry that is not alive, else the smaller hash.
        if (victim == NULL or (_alive(victim) and not _alive(e))
                or e.hash < victim.hash):
            victim = e
        h >>= EMC_HASH_SHIFT
    _set_flow(victim, flow)
    _set_key(victim, kw, hash)


cdef inline uint32_t _random(emc_cache *c) noexcept nogil:
    """random_uint32 of lib/random.c: xorshift32."""
    cdef uint32_t x = c.rng
    x ^= x << 13
    x ^= x >> 17
    x ^= x << 5
    c.rng = x
    return x


cdef void emc_probabilistic_insert(emc_cache *c, const flow_key *key, uint32_t hash,
                                   mf_flow *flow) noexcept nogil:
    if c.insert_min and _random(c) <= c.insert_min:
        emc_insert(c, key, hash, flow)


cdef void emc_slow_sweep(emc_cache *c) noexcept nogil:
    cdef emc_entry *e = &c.entries[c.sweep_idx]
    if not _alive(e):
        _clear(e)
    c.sweep_idx = (c.sweep_idx + 1) & (EMC_ENTRIES - 1)


# ---------------------------------------------------------------------------
# The Python class
# ---------------------------------------------------------------------------

cdef class ExactMatchCache:
    """Compiled exact-match cache; the same API as ReferenceExactMatchCache.

    Caches flows of the compiled :class:`MegaflowTable` only.
    """

    def __cinit__(self):
        self.c = <emc_cache *>calloc(1, sizeof(emc_cache))
        if self.c == NULL:
            raise MemoryError()

    def __init__(self, inv_prob=100, seed=0):
        api = _api()
        self.inv_prob = inv_prob
        self.c.rng = api.rng_seed(_mf()._uint("seed", seed, 0xFFFFFFFFFFFFFFFF))

    def __dealloc__(self):
        cdef uint32_t i
        if self.c != NULL:
            for i in range(EMC_ENTRIES):
                _clear(&self.c.entries[i])
                free(self.c.entries[i].ext)
            free(self.c)
            self.c = NULL

    @property
    def inv_prob(self):
        """Insert with probability 1/inv_prob (other_config:emc-insert-inv-prob); 0 = never."""
        return self._inv_prob

    @inv_prob.setter
    def inv_prob(self, value):
        api = _api()
        self._inv_prob = _mf()._uint("inv_prob", value, 0xFFFFFFFF)
        self.c.insert_min = api.insert_min(self._inv_prob)

    cdef mf_flow *_flow(self, object table, object ufid) except NULL:
        api = _api()
        if not isinstance(table, MegaflowTable):
            raise _mf().DatapathError(
                f"the compiled ExactMatchCache caches flows of the compiled MegaflowTable, "
                f"not of {type(table).__name__}"
            )
        cdef bytes u = _mf().as_ufid(ufid)
        cdef mf_flow *f = (<MegaflowTable>table)._find_ufid(u)
        if f == NULL:
            raise _mf().FlowNotFoundError(f"no flow has ufid {u.hex()} (ENOENT)")
        return f

    def lookup(self, key, hash):
        """The live flow cached for ``key`` with this 32-bit hash, or None."""
        api = _api()
        cdef bytes k = _mf().as_key("key", key)
        cdef uint32_t h = _mf()._uint("hash", hash, 0xFFFFFFFF)
        cdef mf_flow *f = emc_lookup(self.c, <const flow_key *>PyBytes_AS_STRING(k), h)
        return mf_flow_view(f) if f != NULL else None

    def insert(self, key, hash, table, ufid):
        """Cache the flow ``ufid`` of ``table`` for ``key`` (emc_insert)."""
        api = _api()
        cdef bytes k = _mf().as_key("key", key)
        cdef uint32_t h = _mf()._uint("hash", hash, 0xFFFFFFFF)
        cdef mf_flow *f = self._flow(table, ufid)
        emc_insert(self.c, <const flow_key *>PyBytes_AS_STRING(k), h, f)

    def probabilistic_insert(self, key, hash, table, ufid):
        """emc_probabilistic_insert; returns whether the random draw allowed the insert."""
        api = _api()
        cdef bytes k = _mf().as_key("key", key)
        cdef uint32_t h = _mf()._uint("hash", hash, 0xFFFFFFFF)
        cdef mf_flow *f = self._flow(table, ufid)
        if self.c.insert_min and _random(self.c) <= self.c.insert_min:
            emc_insert(self.c, <const flow_key *>PyBytes_AS_STRING(k), h, f)
            return True
        return False

    def sweep(self, n=1):
        """``n`` steps of emc_cache_slow_sweep (one entry each)."""
        cdef uint32_t i
        for i in range(_mf()._uint("n", n, 0xFFFFFFFF)):
            emc_slow_sweep(self.c)

    def clear(self):
        """Empty every entry, dropping its flow reference."""
        cdef uint32_t i
        for i in range(EMC_ENTRIES):
            _clear(&self.c.entries[i])

    def __len__(self):
        """Entries holding a live flow."""
        cdef uint32_t i, n = 0
        for i in range(EMC_ENTRIES):
            n += _alive(&self.c.entries[i])
        return n

    @property
    def lookups(self):
        return self.c.lookups

    @property
    def hits(self):
        return self.c.hits

    @property
    def inserts(self):
        """emc_insert calls (probabilistic inserts that passed the draw, and forced ones)."""
        return self.c.inserts

    def __repr__(self):
        return (f"<ExactMatchCache {len(self)} live entries, {self.c.hits}/{self.c.lookups} hits, "
                f"inv_prob={self._inv_prob}>")
