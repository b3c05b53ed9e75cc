# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled megaflow table: the kernel datapath's tuple-space search.

Private: use :mod:`ovsnet.datapath.megaflow`, which documents what is
modelled (net/openvswitch/flow_table.c: mask list, per-mask lookup, mask
cache, mask rebalance) and holds the pure-Python reference this module must
agree with, probe for probe. The C structs and entry points are declared in
ovsnet/_megaflow.pxd, with the lifetime rules for C callers.

Layout choices (what differs from the kernel's structures, not its results):

* A mask keeps only the words it covers (word index + mask bits), like
  dpcls' miniflows, instead of the kernel's byte range: a mask over in_port
  and tun_id hashes 2 words, not 27.
* Each mask has its own open-addressing table (buckets of eight 32-bit
  hashes, 0 = empty, with per-bucket overflow counters) instead of the
  kernel's one chained table for all flows, so a probe that misses touches
  one cache line, no flow, and takes no unpredictable branch.
* A flow is one allocation: the struct, then its masked key words. Equal
  action lists are interned and refcounted. UFIDs are indexed by their first
  word.
* Memory is accounted per allocation as malloc_usable_size() plus the 8-byte
  chunk header of glibc's malloc, in mf_table.mem_bytes.

Every Python-level method validates its arguments with the same helpers as
the reference (so errors carry the same messages) before any C code runs.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcmp, memcpy, memset

cimport numpy as cnp

from ovsnet._flow_key cimport FLOW_KEY_SIZE, FLOW_KEY_WORDS, flow_key
from ovsnet._packet cimport ovs_hash_2words, ovs_hash_bytes

cnp.import_array()

cdef extern from "<malloc.h>" nogil:
    size_t malloc_usable_size(void *ptr)

cdef extern from * nogil:
    """
    #define _ovsnet_ctz(x) ((unsigned)__builtin_ctz(x))
    """
    uint32_t _ctz "_ovsnet_ctz"(uint32_t x)

cdef enum:
    _BUCKET = 8               # slots per bucket of a mask's table
    _MIN_SLOTS = 8            # one bucket
    _MASKS_MIN = 16           # MASK_ARRAY_SIZE_MIN
    _CHUNK_OVERHEAD = 8       # glibc malloc chunk header


cdef bint _nla_stream_ok(const uint8_t *p, size_t end) noexcept nogil:
    """Whether ``odp_attrs.iter_nla`` would walk these bytes without an error:
    every byte in a netlink attribute of length >= 4 (host-order u16 header),
    the last one's padding optional. Accepts exactly what it accepts."""
    cdef size_t ofs = 0
    cdef uint16_t length
    while ofs < end:
        if end - ofs < 4:
            return False
        memcpy(&length, p + ofs, 2)
        if length < 4 or ofs + length > end:
            return False
        ofs += (<size_t>length + 3) & ~(<size_t>3)
    return True


# The Python side (errors, FlowView, argument checks) lives in
# ovsnet.datapath.megaflow, which imports this module: look it up lazily.
cdef object _api_mod = None


cdef object _api():
    global _api_mod
    if _api_mod is None:
        import ovsnet.datapath.megaflow as mod
        _api_mod = mod
    return _api_mod


# Bytes of flows whose table let go of them while exact-match cache entries
# still held them (orphans); freed with their last reference.
cdef uint64_t _orphan_bytes = 0


def orphan_bytes():
    """Bytes held by removed flows that only cache references keep alive."""
    return _orphan_bytes


# ---------------------------------------------------------------------------
# Allocation with accounting
# ---------------------------------------------------------------------------

cdef inline size_t _chunk(void *p) noexcept nogil:
    return malloc_usable_size(p) + _CHUNK_OVERHEAD


cdef inline void *_alloc(mf_table *t, size_t n) noexcept nogil:
    cdef void *p = malloc(n)
    if p != NULL:
        t.mem_bytes += _chunk(p)
    return p


cdef inline void *_zalloc(mf_table *t, size_t n) noexcept nogil:
    cdef void *p = calloc(1, n)
    if p != NULL:
        t.mem_bytes += _chunk(p)
    return p


cdef inline void _free(mf_table *t, void *p) noexcept nogil:
    if p != NULL:
        t.mem_bytes -= _chunk(p)
        free(p)


# ---------------------------------------------------------------------------
# Hashing of masked keys. Internal to this module (the kernel uses jhash2 over
# the mask's range, dpcls hash_add64 over miniflow words); 0 is reserved for
# empty slots.
# ---------------------------------------------------------------------------

cdef inline uint64_t _hmix(uint64_t h, uint64_t w) noexcept nogil:
    # Each word is scrambled on its own and summed: no dependency between the
    # words, so the multiplications of a probe overlap instead of forming one
    # long chain (a lookup probes many masks; their hashes are the hot path).
    w *= <uint64_t>0x87C37B91114253D5
    return h + ((w << 31) | (w >> 33))


cdef inline uint32_t _hfinish(uint64_t h) noexcept nogil:
    # Every word was scrambled (multiply, rotate) before the sum, so a fold of
    # the halves is enough for a bucket index and a 32-bit tag.
    cdef uint32_t r = <uint32_t>(h ^ (h >> 32))
    return r if r != 0 else 1


cdef inline uint32_t _hash_words(const uint64_t *w, uint32_t n) noexcept nogil:
    cdef uint64_t h = n
    cdef uint32_t j
    for j in range(n):
        h = _hmix(h, w[j])
    return _hfinish(h)


# ---------------------------------------------------------------------------
# Per-mask flow tables
# ---------------------------------------------------------------------------

# A mask's table is an array of buckets of _BUCKET slots: 32-bit hashes (0 =
# empty) and, in a parallel array, flow pointers. A flow lives in its home
# bucket (hash & bucket mask) or, when that is full, in the first bucket after
# it with room; every bucket it passes counts it in its overflow counter, so a
# lookup stops at the first bucket whose counter is 0. A probe that misses
# compares one bucket's eight hashes at once (the compiler vectorises it) and
# takes no data-dependent branch: at a load factor of at most 3/4 overflow is
# rare. The counters sit after the hashes, one uint32 per bucket.

cdef extern from * nogil:
    """
    /* Bit k set when slot k of an 8-slot bucket holds tag 'sh'. */
    #if defined(__SSE2__)
    #include <emmintrin.h>
    static inline unsigned ovsnet_bucket_matches(const uint32_t *hb, uint32_t sh)
    {
        __m128i k = _mm_set1_epi32((int) sh);
        __m128i lo = _mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *) hb), k);
        __m128i hi = _mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *) (hb + 4)), k);
        return (unsigned) _mm_movemask_ps(_mm_castsi128_ps(lo))
               | ((unsigned) _mm_movemask_ps(_mm_castsi128_ps(hi)) << 4);
    }
    #else
    static inline unsigned ovsnet_bucket_matches(const uint32_t *hb, uint32_t sh)
    {
        unsigned bits = 0;
        for (int k = 0; k < 8; k++) {
            bits |= (unsigned) (hb[k] == sh) << k;
        }
        return bits;
    }
    #endif
    """
    uint32_t _bucket_matches "ovsnet_bucket_matches"(const uint32_t *hb, uint32_t sh)


cdef inline mf_flow *_masked_lookup(const mf_mask *m, const uint64_t *kw) noexcept nogil:
    """masked_flow_lookup: AND, hash, probe, compare."""
    cdef uint32_t n = m.n_words, j, k, sh, bits
    cdef uint32_t nbm = (m.cap_mask + 1) // _BUCKET - 1
    cdef const uint32_t *ovf = m.hashes + m.cap_mask + 1
    cdef uint64_t h = n, w, diff
    cdef const uint64_t *fk
    cdef mf_flow *f
    cdef uint32_t b
    for j in range(n):
        h = _hmix(h, kw[m.idx[j]] & m.bits[j])
    sh = _hfinish(h)
    b = sh & nbm
    while True:
        bits = _bucket_matches(m.hashes + b * _BUCKET, sh)
        while bits:
            k = _ctz(bits)
            bits &= bits - 1
            f = m.slots[b * _BUCKET + k]
            fk = mf_flow_key(f)
            diff = 0
            for j in range(n):
                diff |= fk[j] ^ (kw[m.idx[j]] & m.bits[j])
            if diff == 0:
                return f
        if ovf[b] == 0:
            return NULL
        b = (b + 1) & nbm


cdef void _bucket_put(uint32_t *hashes, mf_flow **slots, uint32_t nbm, uint32_t sh,
                      mf_flow *f) noexcept nogil:
    """Store f in its home bucket or the first later one with room."""
    cdef uint32_t *ovf = hashes + (nbm + 1) * _BUCKET
    cdef uint32_t b = sh & nbm, k
    while True:
        for k in range(_BUCKET):
            if hashes[b * _BUCKET + k] == 0:
                hashes[b * _BUCKET + k] = sh
                slots[b * _BUCKET + k] = f
                return
        ovf[b] += 1
        b = (b + 1) & nbm


cdef int _mask_table_resize(mf_table *t, mf_mask *m, uint32_t n_slots) noexcept nogil:
    cdef uint32_t nb = n_slots // _BUCKET
    cdef uint32_t *hashes = <uint32_t *>_zalloc(t, (n_slots + nb) * sizeof(uint32_t))
    cdef mf_flow **slots = <mf_flow **>_zalloc(t, n_slots * sizeof(mf_flow *))
    cdef uint32_t i
    if hashes == NULL or slots == NULL:
        _free(t, hashes)
        _free(t, slots)
        return -1
    if m.hashes != NULL:
        for i in range(m.cap_mask + 1):
            if m.hashes[i]:
                _bucket_put(hashes, slots, nb - 1, m.hashes[i], m.slots[i])
        _free(t, m.hashes)
        _free(t, m.slots)
    m.hashes = hashes
    m.slots = slots
    m.cap_mask = n_slots - 1
    return 0


cdef inline int _mask_table_reserve(mf_table *t, mf_mask *m) noexcept nogil:
    """Room for one more flow at a load factor of at most 3/4."""
    if (m.n_live + 1) * 4 > (m.cap_mask + 1) * 3:
        return _mask_table_resize(t, m, (m.cap_mask + 1) * 2)
    return 0


cdef void _mask_table_add(mf_mask *m, mf_flow *f) noexcept nogil:
    _bucket_put(m.hashes, m.slots, (m.cap_mask + 1) // _BUCKET - 1,
                _hash_words(mf_flow_key(f), m.n_words), f)
    m.n_live += 1


cdef void _mask_table_del(mf_mask *m, mf_flow *f) noexcept nogil:
    cdef uint32_t nbm = (m.cap_mask + 1) // _BUCKET - 1
    cdef uint32_t *ovf = m.hashes + m.cap_mask + 1
    cdef uint32_t b = _hash_words(mf_flow_key(f), m.n_words) & nbm, k
    while True:
        for k in range(_BUCKET):
            if m.slots[b * _BUCKET + k] == f:
                m.hashes[b * _BUCKET + k] = 0
                m.slots[b * _BUCKET + k] = NULL
                m.n_live -= 1
                return
        ovf[b] -= 1  # f had overflowed past this bucket
        b = (b + 1) & nbm


# ---------------------------------------------------------------------------
# Masks and the mask list
# ---------------------------------------------------------------------------

cdef void _mask_compact(const uint64_t *mask, mf_mask *out) noexcept nogil:
    cdef uint32_t i, n = 0
    for i in range(FLOW_KEY_WORDS):
        if mask[i]:
            out.idx[n] = <uint8_t>i
            out.bits[n] = mask[i]
            n += 1
    out.n_words = n


cdef mf_mask *_mask_find(mf_table *t, const mf_mask *probe) noexcept nogil:
    """flow_mask_find: the mask in the list with the same words."""
    cdef uint32_t i
    cdef mf_mask *m
    for i in range(t.n_masks):
        m = t.masks[i]
        if (m.n_words == probe.n_words
                and memcmp(m.idx, probe.idx, probe.n_words) == 0
                and memcmp(m.bits, probe.bits, probe.n_words * sizeof(uint64_t)) == 0):
            return m
    return NULL


cdef mf_mask *_mask_new(mf_table *t, const mf_mask *probe) noexcept nogil:
    """flow_mask_insert for a new mask: appended to the mask list."""
    cdef mf_mask **grown
    cdef mf_mask *m
    cdef uint32_t cap
    if t.n_masks == t.masks_cap:
        cap = t.masks_cap + _MASKS_MIN
        grown = <mf_mask **>_alloc(t, cap * sizeof(mf_mask *))
        if grown == NULL:
            return NULL
        if t.masks != NULL:
            memcpy(grown, t.masks, t.n_masks * sizeof(mf_mask *))
            _free(t, t.masks)
        t.masks = grown
        t.masks_cap = cap
    m = <mf_mask *>_zalloc(t, sizeof(mf_mask))
    if m == NULL:
        return NULL
    m.n_words = probe.n_words
    memcpy(m.idx, probe.idx, probe.n_words)
    memcpy(m.bits, probe.bits, probe.n_words * sizeof(uint64_t))
    if _mask_table_resize(t, m, _MIN_SLOTS) != 0:
        _free(t, m)
        return NULL
    t.masks[t.n_masks] = m
    t.n_masks += 1
    return m


cdef void _mask_free(mf_table *t, mf_mask *m) noexcept nogil:
    _free(t, m.hashes)
    _free(t, m.slots)
    _free(t, m)


cdef void _mask_list_del(mf_table *t, mf_mask *m) noexcept nogil:
    """tbl_mask_array_del_mask: the last mask takes the removed one's slot."""
    cdef uint32_t i
    for i in range(t.n_masks):
        if t.masks[i] == m:
            t.n_masks -= 1
            t.masks[i] = t.masks[t.n_masks]
            t.masks[t.n_masks] = NULL
            return


cdef void _mask_unref(mf_table *t, mf_mask *m) noexcept nogil:
    m.refcnt -= 1
    if m.refcnt == 0:
        _mask_free(t, m)


# ---------------------------------------------------------------------------
# UFID index (open addressing by ufid[0], pointers only)
# ---------------------------------------------------------------------------

cdef inline bint _ufid_eq(const mf_flow *f, const uint32_t *u) noexcept nogil:
    return (f.ufid[0] == u[0] and f.ufid[1] == u[1] and f.ufid[2] == u[2]
            and f.ufid[3] == u[3])


cdef mf_flow *_ufid_find(const mf_table *t, const uint32_t *u) noexcept nogil:
    cdef uint32_t i = u[0] & t.ufid_cap_mask
    cdef mf_flow *f
    while True:
        f = t.ufids[i]
        if f == NULL or _ufid_eq(f, u):
            return f
        i = (i + 1) & t.ufid_cap_mask


# ---------------------------------------------------------------------------
# Pointer sets: open addressing with linear probing, NULL = empty, backward-
# shift deletion, at most 3/4 full. The UFID index and the action intern table
# are two of them; 'home' gives an item's hash.
# ---------------------------------------------------------------------------

ctypedef uint32_t (*_home_fn)(const void *item) noexcept nogil


cdef int _pset_reserve(mf_table *t, void ***slots, uint32_t *cap_mask, uint32_t n_items,
                       _home_fn home) noexcept nogil:
    """Room for one more item: double the table when it would pass 3/4."""
    cdef uint32_t n_slots, i
    cdef void **grown
    if (n_items + 1) * 4 <= (cap_mask[0] + 1) * 3:
        return 0
    n_slots = (cap_mask[0] + 1) * 2
    grown = <void **>_zalloc(t, n_slots * sizeof(void *))
    if grown == NULL:
        return -1
    for i in range(cap_mask[0] + 1):
        if slots[0][i] != NULL:
            _pset_put(grown, n_slots - 1, slots[0][i], home(slots[0][i]))
    _free(t, slots[0])
    slots[0] = grown
    cap_mask[0] = n_slots - 1
    return 0


cdef inline void _pset_put(void **slots, uint32_t cm, void *item, uint32_t h) noexcept nogil:
    cdef uint32_t i = h & cm
    while slots[i] != NULL:
        i = (i + 1) & cm
    slots[i] = item


cdef void _pset_del(void **slots, uint32_t cm, const void *item, _home_fn home) noexcept nogil:
    cdef uint32_t i = home(item) & cm, j, h
    while slots[i] != item:
        i = (i + 1) & cm
    # Backward-shift deletion keeps every probe sequence unbroken.
    j = i
    while True:
        j = (j + 1) & cm
        if slots[j] == NULL:
            break
        h = home(slots[j]) & cm
        if ((i < j) and (i < h <= j)) or ((i > j) and (h > i or h <= j)):
            continue
        slots[i] = slots[j]
        i = j
    slots[i] = NULL


cdef uint32_t _ufid_home(const void *item) noexcept nogil:
    return (<const mf_flow *>item).ufid[0]


cdef uint32_t _acts_home(const void *item) noexcept nogil:
    return (<const mf_actions *>item).hash


cdef inline int _ufid_reserve(mf_table *t) noexcept nogil:
    return _pset_reserve(t, <void ***>&t.ufids, &t.ufid_cap_mask, t.n_flows, _ufid_home)


cdef inline void _ufid_add(mf_table *t, mf_flow *f) noexcept nogil:
    _pset_put(<void **>t.ufids, t.ufid_cap_mask, f, f.ufid[0])


cdef inline void _ufid_del(mf_table *t, mf_flow *f) noexcept nogil:
    _pset_del(<void **>t.ufids, t.ufid_cap_mask, f, _ufid_home)


# ---------------------------------------------------------------------------
# Interned action lists
# ---------------------------------------------------------------------------

cdef inline const uint8_t *_acts_data(const mf_actions *a) noexcept nogil:
    return <const uint8_t *>(a + 1)


cdef inline mf_actions *_acts_of(const uint8_t *data) noexcept nogil:
    return (<mf_actions *>data) - 1


cdef inline int _acts_reserve(mf_table *t) noexcept nogil:
    return _pset_reserve(t, <void ***>&t.acts, &t.acts_cap_mask, t.n_acts, _acts_home)


cdef mf_actions *_acts_intern(mf_table *t, const uint8_t *data, uint32_t n) noexcept nogil:
    """A reference to the shared copy of these actions (NULL: out of memory)."""
    cdef uint32_t h = ovs_hash_bytes(data, n, 0)
    cdef uint32_t i = h & t.acts_cap_mask
    cdef mf_actions *a
    while t.acts[i] != NULL:
        a = t.acts[i]
        if a.hash == h and a.len == n and memcmp(_acts_data(a), data, n) == 0:
            a.refcnt += 1
            return a
        i = (i + 1) & t.acts_cap_mask
    if _acts_reserve(t) != 0:
        return NULL
    a = <mf_actions *>_alloc(t, sizeof(mf_actions) + n)
    if a == NULL:
        return NULL
    a.refcnt = 1
    a.len = n
    a.hash = h
    if n:
        memcpy(<uint8_t *>(a + 1), data, n)
    _pset_put(<void **>t.acts, t.acts_cap_mask, a, h)
    t.n_acts += 1
    return a


cdef void _acts_unref(mf_table *t, mf_actions *a) noexcept nogil:
    a.refcnt -= 1
    if a.refcnt:
        return
    _pset_del(<void **>t.acts, t.acts_cap_mask, a, _acts_home)
    t.n_acts -= 1
    _free(t, a)


# ---------------------------------------------------------------------------
# Deferred reclamation (the kernel's RCU, dpif-netdev's ovsrcu_postpone)
# ---------------------------------------------------------------------------

cdef int _grow_ptrs(mf_table *t, void ***arr, uint32_t *cap, uint32_t need) noexcept nogil:
    cdef uint32_t n = cap[0] if cap[0] else 16
    cdef void **grown
    if need <= cap[0]:
        return 0
    while n < need:
        n *= 2
    grown = <void **>_alloc(t, n * sizeof(void *))
    if grown == NULL:
        return -1
    if arr[0] != NULL:
        memcpy(grown, arr[0], cap[0] * sizeof(void *))
        _free(t, arr[0])
    arr[0] = grown
    cap[0] = n
    return 0


cdef void _reclaim_flow(mf_table *t, mf_flow *f) noexcept nogil:
    """The table lets go of a dead flow: actions, mask and its own reference."""
    global _orphan_bytes
    cdef size_t size
    _acts_unref(t, _acts_of(f.actions))
    f.actions = NULL
    f.actions_len = 0
    _mask_unref(t, f.mask)
    f.mask = NULL
    f.refcnt -= 1
    if f.refcnt == 0:
        _free(t, f)
    else:
        size = _chunk(f)
        t.mem_bytes -= size
        _orphan_bytes += size
        f.orphan = 1


cdef void mf_flow_unref(mf_flow *f) noexcept nogil:
    global _orphan_bytes
    f.refcnt -= 1
    if f.refcnt == 0:
        # Only an orphan can lose its last reference here: a flow its table
        # still knows holds the table's reference.
        _orphan_bytes -= _chunk(f)
        free(f)


cdef void mf_quiesce(mf_table *t) noexcept nogil:
    cdef uint32_t i
    for i in range(t.n_dead_flows):
        _reclaim_flow(t, t.dead_flows[i])
    t.n_dead_flows = 0
    for i in range(t.n_dead_acts):
        _acts_unref(t, t.dead_acts[i])
    t.n_dead_acts = 0


cdef void _unlink(mf_table *t, mf_flow *f) noexcept nogil:
    """ovs_flow_tbl_remove. The caller reserved room in dead_flows."""
    cdef mf_mask *m = f.mask
    _mask_table_del(m, f)
    _ufid_del(t, f)
    f.dead = 1
    t.n_flows -= 1
    if m.n_live == 0:
        _mask_list_del(t, m)
    t.dead_flows[t.n_dead_flows] = f
    t.n_dead_flows += 1


# ---------------------------------------------------------------------------
# Lookup (flow_lookup, ovs_flow_tbl_lookup_stats)
# ---------------------------------------------------------------------------

cdef inline mf_flow *_flow_lookup(mf_table *t, const uint64_t *kw, uint32_t *n_mask_hit,
                                  uint32_t *index, bint *cached) noexcept nogil:
    cdef uint32_t i, idx = index[0], n = t.n_masks, probed = 0
    cdef mf_mask **masks = t.masks
    cdef mf_flow *f
    cached[0] = False
    if idx < n:
        probed += 1
        f = _masked_lookup(masks[idx], kw)
        if f != NULL:
            masks[idx].usage += 1
            cached[0] = True
            n_mask_hit[0] += probed
            return f
    for i in range(n):
        if i == idx:
            continue
        probed += 1
        f = _masked_lookup(masks[i], kw)
        if f != NULL:
            masks[i].usage += 1
            index[0] = i
            n_mask_hit[0] += probed
            return f
    n_mask_hit[0] += probed
    return NULL


cdef mf_flow *mf_lookup(mf_table *t, const flow_key *key, uint32_t skb_hash,
                        uint32_t *n_mask_hit) noexcept nogil:
    cdef const uint64_t *kw = <const uint64_t *>key
    cdef uint32_t zero_index = 0, h, seg
    cdef bint cached
    cdef mf_mc_entry *e
    cdef mf_mc_entry *ce = NULL
    cdef mf_flow *f
    n_mask_hit[0] = 0
    if skb_hash == 0:
        return _flow_lookup(t, kw, n_mask_hit, &zero_index, &cached)
    if key.recirc_id:
        skb_hash = ovs_hash_2words(skb_hash, key.recirc_id)
    h = skb_hash
    for seg in range(MF_MC_SEGS):
        e = &t.mc[h & (MF_MC_ENTRIES - 1)]
        if e.skb_hash == skb_hash:
            f = _flow_lookup(t, kw, n_mask_hit, &e.mask_index, &cached)
            if f == NULL:
                e.skb_hash = 0
            elif cached:
                t.mask_cache_hits += 1
            return f
        if ce == NULL or e.skb_hash < ce.skb_hash:
            ce = e
        h >>= MF_MC_SHIFT
    f = _flow_lookup(t, kw, n_mask_hit, &ce.mask_index, &cached)
    if f != NULL:
        ce.skb_hash = skb_hash
    return f


# ---------------------------------------------------------------------------
# Views
# ---------------------------------------------------------------------------

cdef object _expand(const uint8_t *idx, const uint64_t *words, uint32_t n):
    """KEY_SIZE bytes with words[j] at word idx[j], zeros elsewhere."""
    cdef object out = PyBytes_FromStringAndSize(NULL, FLOW_KEY_SIZE)
    cdef uint64_t *w = <uint64_t *>PyBytes_AS_STRING(out)
    cdef uint32_t j
    memset(w, 0, FLOW_KEY_SIZE)
    for j in range(n):
        w[idx[j]] = words[j]
    return out


cdef object mf_flow_view(mf_flow *f):
    cdef mf_mask *m = f.mask
    return _api().FlowView(
        PyBytes_FromStringAndSize(<const char *>f.ufid, 16),
        _expand(m.idx, mf_flow_key(f), m.n_words),
        _expand(m.idx, m.bits, m.n_words),
        PyBytes_FromStringAndSize(<const char *>f.actions, f.actions_len),
        f.packets, f.bytes, f.used_ms, f.tcp_flags, f.created_ms,
    )


# ---------------------------------------------------------------------------
# The Python class
# ---------------------------------------------------------------------------

cdef mf_flow *_flow_by_ufid(mf_table *t, object ufid) except NULL:
    cdef bytes u = _api().as_ufid(ufid)
    cdef mf_flow *f = _ufid_find(t, <const uint32_t *>PyBytes_AS_STRING(u))
    if f == NULL:
        raise _api().FlowNotFoundError(f"no flow has ufid {u.hex()} (ENOENT)")
    return f


cdef int _reserve_dead(mf_table *t, uint32_t n) except -1:
    if _grow_ptrs(t, <void ***>&t.dead_flows, &t.dead_flows_cap, t.n_dead_flows + n) != 0:
        raise MemoryError()
    return 0


cdef mf_flow *_find_exact(mf_table *t, bytes key, bytes mask) noexcept:
    cdef mf_mask probe
    cdef mf_mask *m
    _mask_compact(<const uint64_t *>PyBytes_AS_STRING(mask), &probe)
    m = _mask_find(t, &probe)
    if m == NULL:
        return NULL
    return _masked_lookup(m, <const uint64_t *>PyBytes_AS_STRING(key))


cdef void _drop_new_mask(mf_table *t, mf_mask *m, bint new_mask) noexcept:
    if new_mask:
        _mask_list_del(t, m)
        _mask_free(t, m)


cdef class MegaflowTable:
    """Compiled megaflow table; the same API as ReferenceMegaflowTable.

    ``flow_limit`` and ``max_idle_ms`` are ovs-vswitchd's ``flow-limit`` and
    ``max-idle`` (assignable). See :mod:`ovsnet.datapath.megaflow`.
    """

    def __cinit__(self):
        cdef mf_table *t = <mf_table *>calloc(1, sizeof(mf_table))
        if t == NULL:
            raise MemoryError()
        t.mem_bytes = _chunk(t)
        t.ufids = <mf_flow **>_zalloc(t, _MIN_SLOTS * sizeof(mf_flow *))
        t.ufid_cap_mask = _MIN_SLOTS - 1
        t.acts = <mf_actions **>_zalloc(t, _MIN_SLOTS * sizeof(mf_actions *))
        t.acts_cap_mask = _MIN_SLOTS - 1
        self.c = t
        if t.ufids == NULL or t.acts == NULL:
            raise MemoryError()

    def __init__(self, flow_limit=200000, max_idle_ms=10000):
        api = _api()
        self.flow_limit = api._uint("flow_limit", flow_limit, 0xFFFFFFFF)
        self.max_idle_ms = api._uint("max_idle_ms", max_idle_ms, 0xFFFFFFFFFFFFFFFF)

    def __dealloc__(self):
        cdef mf_table *t = self.c
        cdef uint32_t i
        if t == NULL:
            return
        mf_quiesce(t)
        for i in range(t.ufid_cap_mask + 1 if t.ufids != NULL else 0):
            if t.ufids[i] != NULL:
                t.ufids[i].dead = 1
                _reclaim_flow(t, t.ufids[i])
        # Every mask lost its last flow above and was freed with it.
        for i in range(t.acts_cap_mask + 1 if t.acts != NULL else 0):
            if t.acts[i] != NULL:
                free(t.acts[i])
        free(t.ufids)
        free(t.acts)
        free(t.masks)
        free(t.dead_flows)
        free(t.dead_acts)
        free(t)
        self.c = NULL

    cdef mf_flow *_find_ufid(self, bytes ufid):
        return _ufid_find(self.c, <const uint32_t *>PyBytes_AS_STRING(ufid))

    # -- lookup -----------------------------------------------------------------

    def lookup(self, key, skb_hash=0):
        """(the megaflow matching ``key`` or None, number of masks probed)."""
        api = _api()
        cdef bytes k = api.as_key("key", key)
        cdef uint32_t h = api._uint("skb_hash", skb_hash, 0xFFFFFFFF)
        cdef uint32_t n_mask_hit = 0
        cdef mf_flow *f = mf_lookup(self.c, <const flow_key *>PyBytes_AS_STRING(k), h,
                                    &n_mask_hit)
        return (mf_flow_view(f) if f != NULL else None), n_mask_hit

    def lookup_loop(self, keys, order, skb_hashes=None):
        """Look up ``keys[order[i]]`` for every i, with ``skb_hashes[order[i]]`` or 0.

        ``keys`` is a C-contiguous (n, KEY_WORDS) uint64 array, ``order`` a
        uint32 array of row indices, ``skb_hashes`` None or n uint32. Returns
        (lookups that found a flow, total masks probed). The loop runs in C
        without the GIL: the benchmark's inner loop.
        """
        cdef cnp.ndarray karr, oarr, harr
        cdef const uint64_t *kp
        cdef const uint32_t *op
        cdef const uint32_t *hp = NULL
        cdef uint64_t hits = 0, probed = 0
        cdef uint32_t n_mask_hit, row
        cdef size_t i, n_order
        api = _api()
        api.check_lookup_loop(keys, order, skb_hashes)
        karr = keys
        oarr = order
        n_order = oarr.shape[0]
        kp = <const uint64_t *>cnp.PyArray_DATA(karr)
        op = <const uint32_t *>cnp.PyArray_DATA(oarr)
        if skb_hashes is not None:
            harr = skb_hashes
            hp = <const uint32_t *>cnp.PyArray_DATA(harr)
        cdef mf_table *t = self.c
        with nogil:
            for i in range(n_order):
                row = op[i]
                if mf_lookup(t, <const flow_key *>(kp + <size_t>row * FLOW_KEY_WORDS),
                             hp[row] if hp != NULL else 0, &n_mask_hit) != NULL:
                    hits += 1
                probed += n_mask_hit
        return hits, probed

    # -- installation and removal ----------------------------------------------

    def insert(self, key, mask, actions, ufid=None, now_ms=0):
        """Install a megaflow; returns its UFID. See ReferenceMegaflowTable.insert.

        Arguments of the usual types (``bytes`` of the right size, well-formed
        actions, a Python int) are checked here in C; anything else goes
        through the reference's helpers, which convert or raise.
        """
        api = _api()
        cdef mf_table *t = self.c
        cdef bytes key_b, mask_b, actions_b
        cdef uint64_t now
        if type(key) is bytes and len(<bytes>key) == FLOW_KEY_SIZE:
            key_b = key
        else:
            key_b = api.as_key("key", key)
        if type(mask) is bytes and len(<bytes>mask) == FLOW_KEY_SIZE:
            mask_b = mask
        else:
            mask_b = api.as_key("mask", mask)
        if (type(actions) is bytes and len(<bytes>actions) <= 0xFFFFFFFF
                and _nla_stream_ok(<const uint8_t *>PyBytes_AS_STRING(actions),
                                   <size_t>len(<bytes>actions))):
            actions_b = actions
        else:
            actions_b = api.as_actions(actions)
        if type(now_ms) is int and 0 <= now_ms <= 0xFFFFFFFFFFFFFFFF:
            now = now_ms
        else:
            now = api._uint("now_ms", now_ms, 0xFFFFFFFFFFFFFFFF)
        cdef uint64_t buf[2 * FLOW_KEY_WORDS]
        cdef const uint64_t *kw = <const uint64_t *>PyBytes_AS_STRING(key_b)
        cdef const uint64_t *mw = <const uint64_t *>PyBytes_AS_STRING(mask_b)
        cdef uint32_t u[4]
        cdef uint32_t i, j
        cdef bytes ufid_b
        cdef mf_mask probe
        cdef mf_mask *m
        cdef mf_flow *f
        cdef mf_actions *a
        cdef bint new_mask = False
        for i in range(FLOW_KEY_WORDS):
            buf[i] = kw[i] & mw[i]
            buf[FLOW_KEY_WORDS + i] = mw[i]
        if ufid is None:
            for i in range(4):
                u[i] = ovs_hash_bytes(<const uint8_t *>buf, 2 * FLOW_KEY_SIZE, i)
            ufid_b = PyBytes_FromStringAndSize(<const char *>u, 16)
        else:
            if type(ufid) is bytes and len(<bytes>ufid) == 16:
                ufid_b = ufid
            else:
                ufid_b = api.as_ufid(ufid)
            memcpy(u, PyBytes_AS_STRING(ufid_b), 16)
        if t.n_flows >= self.flow_limit:
            raise api.FlowLimitError(f"the table holds flow_limit={self.flow_limit} flows")
        if _ufid_find(t, u) != NULL:
            raise api.FlowExistsError(f"a flow with ufid {ufid_b.hex()} exists (EEXIST)")
        _mask_compact(mw, &probe)
        m = _mask_find(t, &probe)
        if m != NULL:
            f = _masked_lookup(m, buf)
            if f != NULL:
                raise api.FlowExistsError(
                    f"a flow with this masked key and mask exists, ufid "
                    f"{PyBytes_FromStringAndSize(<const char *>f.ufid, 16).hex()} (EEXIST)"
                )
        # Allocate everything before linking anything.
        if _ufid_reserve(t) != 0:
            raise MemoryError()
        if m == NULL:
            m = _mask_new(t, &probe)
            if m == NULL:
                raise MemoryError()
            new_mask = True
        if _mask_table_reserve(t, m) != 0:
            _drop_new_mask(t, m, new_mask)
            raise MemoryError()
        a = _acts_intern(t, <const uint8_t *>PyBytes_AS_STRING(actions_b), len(actions_b))
        if a == NULL:
            _drop_new_mask(t, m, new_mask)
            raise MemoryError()
        f = <mf_flow *>_zalloc(t, sizeof(mf_flow) + m.n_words * sizeof(uint64_t))
        if f == NULL:
            _acts_unref(t, a)
            _drop_new_mask(t, m, new_mask)
            raise MemoryError()
        f.actions = _acts_data(a)
        f.actions_len = a.len
        f.refcnt = 1
        f.mask = m
        f.created_ms = now
        memcpy(f.ufid, u, 16)
        for j in range(m.n_words):
            mf_flow_key(f)[j] = buf[m.idx[j]]
        _mask_table_add(m, f)
        m.refcnt += 1
        _ufid_add(t, f)
        t.n_flows += 1
        return ufid_b

    def get(self, ufid):
        """The flow with this UFID, or None."""
        cdef mf_flow *f = self._find_ufid(_api().as_ufid(ufid))
        return mf_flow_view(f) if f != NULL else None

    def find_exact(self, key, mask):
        """The flow with exactly this masked key and mask, or None."""
        api = _api()
        cdef mf_flow *f = _find_exact(self.c, api.as_key("key", key), api.as_key("mask", mask))
        return mf_flow_view(f) if f != NULL else None

    def remove(self, ufid):
        """Remove the flow with this UFID; returns its last view."""
        cdef mf_flow *f = _flow_by_ufid(self.c, ufid)
        _reserve_dead(self.c, 1)
        view = mf_flow_view(f)
        _unlink(self.c, f)
        return view

    def remove_exact(self, key, mask):
        """Remove the flow with this masked key and mask."""
        api = _api()
        cdef mf_flow *f = _find_exact(self.c, api.as_key("key", key), api.as_key("mask", mask))
        if f == NULL:
            raise api.FlowNotFoundError("no flow has this masked key and mask (ENOENT)")
        _reserve_dead(self.c, 1)
        view = mf_flow_view(f)
        _unlink(self.c, f)
        return view

    def flush(self):
        """Remove every flow."""
        cdef mf_table *t = self.c
        cdef uint32_t i
        _reserve_dead(self.c, t.n_flows)
        i = 0
        while t.n_flows:
            if t.ufids[i] != NULL:
                _unlink(t, t.ufids[i])  # the slot may now hold another flow
            else:
                i = (i + 1) & t.ufid_cap_mask

    def set_actions(self, ufid, actions=None, clear_stats=False):
        """OVS_FLOW_CMD_SET: new actions (None keeps them); clear_stats as OVS_FLOW_ATTR_CLEAR."""
        cdef mf_table *t = self.c
        cdef mf_flow *f = _flow_by_ufid(self.c, ufid)
        cdef mf_actions *a
        cdef bytes actions_b
        if actions is not None:
            actions_b = _api().as_actions(actions)
            if _grow_ptrs(t, <void ***>&t.dead_acts, &t.dead_acts_cap, t.n_dead_acts + 1) != 0:
                raise MemoryError()
            a = _acts_intern(t, <const uint8_t *>PyBytes_AS_STRING(actions_b), len(actions_b))
            if a == NULL:
                raise MemoryError()
            t.dead_acts[t.n_dead_acts] = _acts_of(f.actions)
            t.n_dead_acts += 1
            f.actions = _acts_data(a)
            f.actions_len = a.len
        if clear_stats:
            f.packets = f.bytes = f.used_ms = 0
            f.tcp_flags = 0

    def account(self, ufid, nbytes, tcp_flags=0, now_ms=0):
        """ovs_flow_stats_update: one packet of ``nbytes`` bytes used the flow at ``now_ms``."""
        api = _api()
        cdef mf_flow *f = _flow_by_ufid(self.c, ufid)
        mf_flow_used(f, api._uint("nbytes", nbytes, 0xFFFFFFFF),
                     api._uint("tcp_flags", tcp_flags, 0xFFFF),
                     api._uint("now_ms", now_ms, 0xFFFFFFFFFFFFFFFF))

    def expire(self, now_ms):
        """Remove flows idle for more than max_idle_ms; returns their UFIDs (any order)."""
        cdef uint64_t now = _api()._uint("now_ms", now_ms, 0xFFFFFFFFFFFFFFFF)
        cdef mf_table *t = self.c
        cdef uint32_t i
        cdef mf_flow *f
        cdef uint64_t used
        cdef list gone = []
        cdef list out = []
        # now - max_idle may be negative: then nothing is old enough.
        if now < self.max_idle_ms:
            return out
        for i in range(t.ufid_cap_mask + 1):
            f = t.ufids[i]
            if f != NULL:
                used = f.used_ms if f.used_ms else f.created_ms
                if used < now - self.max_idle_ms:
                    gone.append(PyBytes_FromStringAndSize(<const char *>f.ufid, 16))
        _reserve_dead(self.c, len(gone))
        for u in gone:
            _unlink(t, self._find_ufid(u))
            out.append(u)
        return out

    def quiesce(self):
        """Reclaim the memory of flows removed and actions replaced since the last call."""
        mf_quiesce(self.c)

    # -- masks ------------------------------------------------------------------

    def rebalance(self):
        """ovs_flow_masks_rebalance: most used masks first (stable), then reset the counts."""
        cdef mf_table *t = self.c
        cdef uint32_t i, n = t.n_masks
        usage = [t.masks[i].usage for i in range(n)]
        order = sorted(range(n), key=lambda j: -usage[j])
        ptrs = [<size_t>t.masks[j] for j in order]
        for i in range(n):
            t.masks[i] = <mf_mask *><size_t>ptrs[i]
            t.masks[i].usage = 0

    @property
    def n_masks(self):
        """Masks in the mask list."""
        return self.c.n_masks

    def masks(self):
        """The masks, in probe order."""
        cdef mf_mask *m
        cdef uint32_t i
        out = []
        for i in range(self.c.n_masks):
            m = self.c.masks[i]
            out.append(_expand(m.idx, m.bits, m.n_words))
        return out

    def mask_usage(self):
        """Uses of each mask (in probe order) since the last rebalance."""
        return [self.c.masks[i].usage for i in range(self.c.n_masks)]

    @property
    def mask_cache_hits(self):
        """Lookups answered by the mask a cache entry named (the kernel's n_cache_hit)."""
        return self.c.mask_cache_hits

    @mask_cache_hits.setter
    def mask_cache_hits(self, value):
        self.c.mask_cache_hits = value

    # -- dumps and accounting ------------------------------------------------------

    def flows(self):
        """A snapshot of every flow (any order)."""
        cdef mf_table *t = self.c
        cdef uint32_t i
        return iter([mf_flow_view(t.ufids[i]) for i in range(t.ufid_cap_mask + 1)
                     if t.ufids[i] != NULL])

    def memory_bytes(self):
        """Bytes of every allocation the table holds, as malloc sized them (+ chunk headers)."""
        return self.c.mem_bytes

    def memory_detail(self):
        """Counts behind memory_bytes: flows, masks, action lists, slots, deferred frees."""
        cdef mf_table *t = self.c
        return {
            "bytes": t.mem_bytes,
            "flows": t.n_flows,
            "masks": t.n_masks,
            "action_lists": t.n_acts,
            "ufid_slots": t.ufid_cap_mask + 1,
            "mask_slots": sum(t.masks[i].cap_mask + 1 for i in range(t.n_masks)),
            "deferred_flows": t.n_dead_flows,
            "deferred_actions": t.n_dead_acts,
        }

    def __len__(self):
        return self.c.n_flows

    def __repr__(self):
        return f"<MegaflowTable {self.c.n_flows} flows, {self.c.n_masks} masks>"
