# cython: language_level=3
"""C-level declarations of ovsnet._actions, for other Cython modules to cimport.

    from ovsnet._actions cimport act_ctx, act_record, act_ctx_new, act_execute

The executor of datapath actions (the kernel's net/openvswitch/actions.c);
ovsnet/datapath/actions.py documents the semantics and holds the pure-Python
reference this must agree with byte for byte.

Usage from a nogil batch loop: one ``act_ctx`` per loop, ``act_ctx_reset``
before each batch, ``act_execute`` per packet, then read ``ctx.recs[0 ..
ctx.n_recs)``: packet bytes are ``ctx.data[rec.data_ofs : + rec.data_len]``,
keys ``ctx.keys[rec.key_idx]``. The buffers are realloc'ed as they grow, so
hold offsets and indices, never pointers, across calls.

``act_execute`` trusts its action list: it must have passed
``ovsnet.datapath.actions.validate_actions`` (a megaflow table validates when
a flow is installed). Even so the loop never reads outside the action bytes
or the packet: a malformed attribute ends the list.
"""

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

from ovsnet._flow_key cimport flow_key

# act_record.kind
cdef enum:
    ACT_REC_OUTPUT = 1      # packet sent to odp port 'port'
    ACT_REC_USERSPACE = 2   # upcall: 'port' = pid, userdata in data area, key at key_idx
    ACT_REC_RECIRC = 3      # packet to re-run through the datapath with the key at key_idx

# act_record.flags (USERSPACE)
cdef enum:
    ACT_F_USERDATA = 1      # OVS_USERSPACE_ATTR_USERDATA was given (userdata_len may be 0)
    ACT_F_EGRESS_TUN = 2    # OVS_USERSPACE_ATTR_EGRESS_TUN_PORT was given: egress_tun_port
    ACT_F_ACTIONS = 4       # OVS_USERSPACE_ATTR_ACTIONS: the action list is at actions_ofs

# Limits of net/openvswitch/actions.c and flow_netlink.c.
cdef enum:
    ACT_RECURSION_LIMIT = 5         # OVS_RECURSION_LIMIT
    ACT_DEFERRED_THRESHOLD = 3      # OVS_DEFERRED_ACTION_THRESHOLD
    ACT_FIFO_CAPACITY = 9           # DEFERRED_ACTION_FIFO_SIZE - 1 usable entries
    ACT_MAX_DEPTH = 16              # OVS_COPY_ACTIONS_MAX_DEPTH (checked by validation)
    ACT_SLOTS = 18                  # scratch slots: top level + nesting + one spare


cdef struct act_record:
    uint32_t kind
    uint32_t port           # OUTPUT: odp port; USERSPACE: netlink pid
    uint32_t data_ofs       # packet bytes in ctx.data
    uint32_t data_len
    uint32_t key_idx        # index into ctx.keys, or 0xffffffff; OUTPUT: egress tunnel key or 0xffffffff
    uint32_t userdata_ofs   # USERSPACE only: userdata bytes in ctx.data
    uint32_t userdata_len
    uint32_t flags          # USERSPACE: ACT_F_*
    uint32_t egress_tun_port  # USERSPACE with ACT_F_EGRESS_TUN
    uint32_t tun_idx        # USERSPACE: egress tunnel key (ACT_F_EGRESS_TUN and a tunnel set) or 0xffffffff
    uint32_t actions_ofs    # USERSPACE with ACT_F_ACTIONS: the action list in ctx.data
    uint32_t actions_len
    uint32_t level          # RECIRC: execution level for the recirculated packet's actions
    uint32_t deferred       # RECIRC: deferred-FIFO entries used so far by this packet


cdef struct act_buf:
    uint8_t *p
    uint32_t cap


# A nested action list (or nothing, for a recirculation) deferred to the FIFO.
cdef struct act_deferred:
    act_buf buf
    uint32_t len
    int key_valid
    uint32_t tun_idx
    uint32_t cutlen
    const uint8_t *actions
    uint32_t actions_len
    flow_key key


cdef struct act_ctx:        # growable output buffers (malloc/realloc; nogil-safe), reset per batch
    act_record *recs
    uint32_t n_recs
    uint32_t cap_recs
    uint8_t *data
    uint32_t data_len
    uint32_t data_cap
    flow_key *keys
    uint32_t n_keys
    uint32_t cap_keys
    # counters, cumulative until act_ctx_reset
    uint64_t n_dropped_recursion        # executions refused above OVS_RECURSION_LIMIT
    uint64_t n_dropped_deferred         # copies dropped with the deferred FIFO full
    uint64_t n_dropped_deferred_recirc  # ... of which recirculations
    uint64_t n_dropped_explicit         # packets ended by a drop action
    uint64_t rng_state                  # splitmix64 state of sample's coin
    # per-packet state of act_execute
    uint32_t fifo_used
    uint32_t n_fifo
    act_deferred fifo[9]
    act_buf scratch[18]
    flow_key kscratch[18]


cdef act_ctx *act_ctx_new() noexcept nogil          # NULL on OOM
cdef void act_ctx_free(act_ctx *ctx) noexcept nogil
cdef void act_ctx_reset(act_ctx *ctx) noexcept nogil  # forget records/data/keys and counters, keep capacity

# Execute 'actions' on a copy of the packet; 'key' is the packet's extracted key (not modified).
# Returns 0, or -1 on allocation failure.
cdef int act_execute(act_ctx *ctx, const uint8_t *pkt, uint32_t len, const flow_key *key,
                     const uint8_t *actions, uint32_t actions_len) noexcept nogil

# The same for a packet entering at execution level 'level' (1 for a packet from a port,
# a RECIRC record's 'level' for a recirculated one) with 'deferred' FIFO entries in use.
cdef int act_execute_at(act_ctx *ctx, const uint8_t *pkt, uint32_t len, const flow_key *key,
                        const uint8_t *actions, uint32_t actions_len,
                        uint32_t level, uint32_t deferred) noexcept nogil


# OVS's flow_hash_5tuple (lib/flow.c) over a flow key: the hash action's L4
# hash, and the packet hash of the datapath's mask cache and EMC.
cdef uint32_t act_flow_hash_5tuple(const flow_key *k, uint32_t basis) noexcept nogil
