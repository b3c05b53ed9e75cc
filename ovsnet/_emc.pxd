# cython: language_level=3
"""C-level declarations of ovsnet._emc, for other Cython modules to cimport.

    from ovsnet._emc cimport emc_cache, emc_lookup, emc_probabilistic_insert, ExactMatchCache

dpif-netdev's exact-match cache (lib/dpif-netdev-private-dfc.h,
lib/dpif-netdev.c): 8192 entries, each a full flow key and a reference to the
megaflow it matched, found at two positions taken from the packet's 32-bit
hash. ovsnet/datapath/emc.py documents what is modelled and holds the
pure-Python reference.

An entry holds a reference to its flow (mf_flow_ref), so a flow removed from
its table stays allocated while an entry points at it; emc_lookup never
returns a dead flow. Nothing here raises.
"""

from libc.stdint cimport uint8_t, uint32_t, uint64_t

from ovsnet._flow_key cimport flow_key
from ovsnet._megaflow cimport mf_flow

cdef enum:
    EMC_HASH_SHIFT = 13       # EM_FLOW_HASH_SHIFT
    EMC_ENTRIES = 8192        # EM_FLOW_HASH_ENTRIES
    EMC_HASH_SEGS = 2         # EM_FLOW_HASH_SEGS
    EMC_INLINE_WORDS = 16     # key words stored in the entry itself


# A key is stored compactly, like a miniflow: a bitmap of its non-zero
# uint64 words (66 of them: 64 in 'map', 2 in 'map_hi') and those words, in
# the entry or, past EMC_INLINE_WORDS, in a separate allocation.
cdef struct emc_entry:
    mf_flow *flow             # NULL = empty
    uint64_t map
    uint32_t hash
    uint8_t map_hi
    uint8_t n_words
    uint8_t written           # a key was stored (a new entry matches no key)
    uint64_t *ext             # NULL unless n_words > EMC_INLINE_WORDS
    uint64_t words[EMC_INLINE_WORDS]


cdef struct emc_cache:
    emc_entry entries[EMC_ENTRIES]
    uint32_t insert_min       # emc_insert_min: 0 = never insert
    uint32_t rng              # xorshift32 state (lib/random.c)
    uint32_t sweep_idx
    uint64_t lookups
    uint64_t hits
    uint64_t inserts


# The live flow cached for 'key' with this hash, or NULL (emc_lookup).
cdef mf_flow *emc_lookup(emc_cache *c, const flow_key *key, uint32_t hash) noexcept nogil

# emc_probabilistic_insert: with probability 1/inv_prob cache 'flow' for 'key'.
cdef void emc_probabilistic_insert(emc_cache *c, const flow_key *key, uint32_t hash,
                                   mf_flow *flow) noexcept nogil

# emc_insert: always cache 'flow' for 'key'.
cdef void emc_insert(emc_cache *c, const flow_key *key, uint32_t hash,
                     mf_flow *flow) noexcept nogil

# emc_cache_slow_sweep: clear one entry if its flow is dead; call once per
# datapath iteration.
cdef void emc_slow_sweep(emc_cache *c) noexcept nogil


cdef class ExactMatchCache:
    cdef emc_cache *c
    cdef object _inv_prob
    cdef mf_flow *_flow(self, object table, object ufid) except NULL
