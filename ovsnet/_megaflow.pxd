# cython: language_level=3
"""C-level declarations of ovsnet._megaflow, for other Cython modules to cimport.

    from ovsnet._megaflow cimport mf_flow, mf_table, mf_lookup, mf_flow_used, MegaflowTable

The megaflow table of the kernel datapath (net/openvswitch/flow_table.c):
masks in probe order, one open-addressing hash table of flows per mask, a
256-entry mask cache keyed by skb_hash. ovsnet/datapath/megaflow.py documents
what is modelled and holds the pure-Python reference.

Lifetime rules for C callers (the datapath's batch loop):

* A flow pointer from mf_lookup stays valid until the next mf_quiesce() on
  its table, even if the flow is removed meanwhile (by an upcall handler in
  Python, say): removal marks it dead and defers the free, like the kernel's
  RCU and dpif-netdev's ovsrcu_postpone. Call mf_quiesce() between batches,
  when no flow pointer is held; Python code may call table.quiesce().
* Its actions pointer is valid under the same rule (set_actions defers the
  release of the old actions the same way).
* Anything holding a flow beyond a quiescent point (the exact-match cache)
  takes a reference with mf_flow_ref() and drops it with mf_flow_unref(), and
  must check 'dead' before using the flow: a dead flow's memory stays until
  its last reference goes, but its actions and mask are released.

Nothing here raises; nothing allocates except where stated.
"""

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

from ovsnet._flow_key cimport FLOW_KEY_WORDS, flow_key

cdef enum:
    MF_MC_ENTRIES = 256       # MC_DEFAULT_HASH_ENTRIES
    MF_MC_SHIFT = 8           # MC_HASH_SHIFT
    MF_MC_SEGS = 4            # MC_HASH_SEGS


cdef struct mf_flow


# An interned action list: flows with equal actions share one. The bytes
# follow the struct.
cdef struct mf_actions:
    uint32_t refcnt
    uint32_t len
    uint32_t hash


# A mask (sw_flow_mask) with the hash table of its flows. Only the words the
# mask covers are stored, as dpcls does with its miniflows: word idx[j] of a
# key is ANDed with bits[j].
cdef struct mf_mask:
    uint32_t n_words
    uint32_t n_live           # flows in the hash table; 0 = out of the mask list
    uint32_t refcnt           # flows pointing here (live and not yet reclaimed)
    uint32_t cap_mask         # slots - 1 (a power of 2 minus 1)
    uint64_t usage            # lookups that found a flow here since the last rebalance
    uint32_t *hashes          # 0 = empty slot; linear probing
    mf_flow **slots
    uint8_t idx[FLOW_KEY_WORDS]
    uint64_t bits[FLOW_KEY_WORDS]


cdef struct mf_mc_entry:
    uint32_t skb_hash
    uint32_t mask_index


cdef struct mf_table:
    mf_mask **masks           # the mask_array, in probe order
    uint32_t n_masks
    uint32_t masks_cap
    mf_mc_entry mc[MF_MC_ENTRIES]
    mf_flow **ufids           # open addressing by ufid[0]; NULL = empty
    uint32_t ufid_cap_mask
    uint32_t n_flows
    mf_actions **acts         # intern table of action lists by content
    uint32_t acts_cap_mask
    uint32_t n_acts
    mf_flow **dead_flows      # removed, reclaimed by mf_quiesce
    uint32_t n_dead_flows
    uint32_t dead_flows_cap
    mf_actions **dead_acts    # replaced, released by mf_quiesce
    uint32_t n_dead_acts
    uint32_t dead_acts_cap
    uint64_t mem_bytes        # bytes of every allocation, as malloc sized it
    uint64_t mask_cache_hits


cdef struct mf_flow:
    uint64_t packets
    uint64_t bytes
    uint64_t used_ms          # 0 = never used
    uint16_t tcp_flags        # OR of TCP flags seen (host order)
    const uint8_t *actions    # netlink-encoded actions (see odp_attrs.py)
    uint32_t actions_len
    # --- private -------------------------------------------------------
    uint32_t refcnt           # 1 for the table until reclaimed + 1 per cache entry
    mf_mask *mask             # NULL once reclaimed
    uint64_t created_ms
    uint32_t ufid[4]          # 16 bytes, as given or derived (host order words)
    uint8_t dead              # removed: never returned again
    uint8_t orphan            # reclaimed by its table, kept alive by references
    # The masked key follows the struct: mask.n_words uint64 words, the
    # words the mask covers (mf_flow_key()).


# Usage counter of a flow: one packet of 'nbytes' bytes at 'now_ms'
# (ovs_flow_stats_update).
cdef inline void mf_flow_used(mf_flow *f, uint32_t nbytes, uint16_t tcp_flags,
                              uint64_t now_ms) noexcept nogil:
    f.packets += 1
    f.bytes += nbytes
    f.used_ms = now_ms
    f.tcp_flags |= tcp_flags


cdef inline uint64_t *mf_flow_key(mf_flow *f) noexcept nogil:
    return <uint64_t *>(f + 1)


# Take / drop a reference to a flow that outlives a quiescent point.
cdef inline void mf_flow_ref(mf_flow *f) noexcept nogil:
    f.refcnt += 1

cdef void mf_flow_unref(mf_flow *f) noexcept nogil


# The flow matching 'key' or NULL; *n_mask_hit = masks probed. skb_hash 0 =
# walk the masks from the first without the mask cache
# (ovs_flow_tbl_lookup_stats). Counts a use of the matching mask.
cdef mf_flow *mf_lookup(mf_table *t, const flow_key *key, uint32_t skb_hash,
                        uint32_t *n_mask_hit) noexcept nogil

# Reclaim flows removed and actions replaced since the last call.
cdef void mf_quiesce(mf_table *t) noexcept nogil

# A FlowView snapshot of a live flow (Python object; needs the GIL).
cdef object mf_flow_view(mf_flow *f)


cdef class MegaflowTable:
    cdef mf_table *c
    cdef public uint32_t flow_limit
    cdef public uint64_t max_idle_ms
    cdef mf_flow *_find_ufid(self, bytes ufid)
