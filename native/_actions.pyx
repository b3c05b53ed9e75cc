# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled datapath action execution: the kernel's net/openvswitch/actions.c.

Private: use :mod:`ovsnet.datapath.actions`, which documents what every
action does (and where ovsnet differs from the kernel) and holds the
pure-Python reference this module must agree with byte for byte. The C-level
API (``act_ctx``, ``act_execute``) is declared in ovsnet/_actions.pxd for the
datapath's nogil batch loop.

Packets are copied lazily: a state reads the caller's bytes (or its parent's)
until an action writes, and only then copies them into a scratch buffer of
its nesting level with headroom for pushed headers. A plain ``output`` costs
one copy into the record area. Keys are copied the same way.
"""

from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, realloc
from libc.string cimport memcmp, memcpy, memmove, memset

from ovsnet._flow_key cimport FLOW_KEY_SIZE, flow_key, flow_key_extract_md
from ovsnet._packet cimport ovs_hash_add, ovs_hash_finish

cdef enum:
    _HEADROOM = 64
    _NONE = -1

cdef enum:
    # enum ovs_action_attr
    A_OUTPUT = 1
    A_USERSPACE = 2
    A_SET = 3
    A_PUSH_VLAN = 4
    A_POP_VLAN = 5
    A_SAMPLE = 6
    A_RECIRC = 7
    A_HASH = 8
    A_PUSH_MPLS = 9
    A_POP_MPLS = 10
    A_SET_MASKED = 11
    A_TRUNC = 13
    A_CT_CLEAR = 16
    A_METER = 19
    A_CLONE = 20
    A_CHECK_PKT_LEN = 21
    A_DROP = 25

cdef enum:
    # enum ovs_key_attr
    K_PRIORITY = 2
    K_ETHERNET = 4
    K_IPV4 = 7
    K_IPV6 = 8
    K_TCP = 9
    K_UDP = 10
    K_SKB_MARK = 15
    K_TUNNEL = 16
    K_SCTP = 17
    K_MPLS = 21

cdef uint32_t _IDX_NONE = 0xFFFFFFFF


# ---------------------------------------------------------------------------
# Byte access
# ---------------------------------------------------------------------------

cdef inline uint16_t _rd16(const uint8_t *p) noexcept nogil:
    return (<uint16_t>p[0] << 8) | p[1]


cdef inline void _wr16(uint8_t *p, uint16_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 8)
    p[1] = <uint8_t>v


cdef inline uint32_t _rd32(const uint8_t *p) noexcept nogil:
    return ((<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3])


cdef inline uint32_t _h32(const uint8_t *p) noexcept nogil:
    """A host-order u32 netlink payload."""
    cdef uint32_t v
    memcpy(&v, p, 4)
    return v


cdef inline uint16_t _h16(const uint8_t *p) noexcept nogil:
    cdef uint16_t v
    memcpy(&v, p, 2)
    return v


cdef inline uint32_t _le32(const uint8_t *p) noexcept nogil:
    return (<uint32_t>p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16)
            | (<uint32_t>p[3] << 24))


cdef inline uint64_t _le64(const uint8_t *p) noexcept nogil:
    return <uint64_t>_le32(p) | (<uint64_t>_le32(p + 4) << 32)


cdef inline bint _is_vlan(uint16_t t) noexcept nogil:
    return t == 0x8100 or t == 0x88A8


cdef inline bint _is_mpls(uint16_t t) noexcept nogil:
    return t == 0x8847 or t == 0x8848


cdef inline bint _tagged(const uint8_t *p, uint32_t n) noexcept nogil:
    # The kernel keeps the outer tag in skb->vlan_tci, outside skb->len.
    return n >= 18 and _is_vlan(_rd16(p + 12))


cdef inline int _l3(const uint8_t *p, uint32_t n, uint16_t *eth_type) noexcept nogil:
    """Offset of the L3 header after up to two VLAN tags, or -1 without L2."""
    cdef uint32_t o = 12
    cdef int i
    if n < 14:
        eth_type[0] = 0
        return -1
    for i in range(2):
        if not _is_vlan(_rd16(p + o)) or n - o < 6:
            break
        o += 4
    eth_type[0] = _rd16(p + o)
    return <int>(o + 2)


cdef inline int _ipv4_l4(const uint8_t *p, uint32_t n, int l3) noexcept nogil:
    cdef uint32_t ihl = (p[l3] & 0x0F) * 4
    if ihl < 20 or <uint32_t>l3 + ihl > n or (_rd16(p + l3 + 6) & 0x1FFF):
        return -1
    return l3 + <int>ihl


cdef inline bint _ipv6_ext(uint8_t t) noexcept nogil:
    return t == 0 or t == 43 or t == 60 or t == 51 or t == 44


cdef int _ipv6_l4(const uint8_t *p, uint32_t n, int l3, int *proto) noexcept nogil:
    cdef uint8_t nh = p[l3 + 6]
    cdef uint64_t o = <uint64_t>l3 + 40
    cdef uint64_t hlen
    while _ipv6_ext(nh):
        if n < o + 8:
            return -1
        if nh == 44:
            if _rd16(p + o + 2) & 0xFFF8:
                return -1
            nh = p[o]
            o += 8
            continue
        if nh == 51:
            hlen = (<uint64_t>p[o + 1] + 2) * 4
        else:
            hlen = (<uint64_t>p[o + 1] + 1) * 8
        nh = p[o]
        o += hlen
        if o > n:
            return -1
    proto[0] = nh
    return <int>o


cdef bint _ipv6_has_routing(const uint8_t *p, uint32_t n, int l3) noexcept nogil:
    """ipv6_find_hdr(skb, .., NEXTHDR_ROUTING, NULL, IP6_FH_F_SKIP_RH) == NEXTHDR_ROUTING."""
    cdef uint8_t nh = p[l3 + 6]
    cdef uint64_t start = <uint64_t>l3 + 40
    cdef uint64_t hlen
    cdef bint found
    while True:
        found = nh == 43
        if not _ipv6_ext(nh):
            return False
        if n < start + 2:
            return False
        if nh == 43:
            if n < start + 4:
                return False
            if p[start + 3] == 0:
                found = False
        if nh == 44:
            if n < start + 4:
                return False
            if _rd16(p + start + 2) & 0xFFF8:
                return False
            hlen = 8
        elif nh == 51:
            hlen = (<uint64_t>p[start + 1] + 2) * 4
        else:
            hlen = (<uint64_t>p[start + 1] + 1) * 8
        if found:
            return True
        nh = p[start]
        start += hlen


# ---------------------------------------------------------------------------
# Kernel checksum arithmetic (see the reference for the zero rules)
# ---------------------------------------------------------------------------

cdef inline uint32_t _fold(uint64_t s) noexcept nogil:
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return <uint32_t>s


cdef inline uint16_t _csum_replace2(uint16_t check, uint16_t old, uint16_t new) noexcept nogil:
    return <uint16_t>(~_fold(<uint64_t>(~check & 0xFFFF) + (~old & 0xFFFF) + new) & 0xFFFF)


cdef inline uint16_t _csum_replace_words(uint16_t check, const uint8_t *old,
                                         const uint8_t *new, int n) noexcept nogil:
    cdef uint64_t s = ~check & 0xFFFF
    cdef int i
    cdef uint32_t r
    for i in range(0, n, 2):
        s += (~_rd16(old + i) & 0xFFFF) + _rd16(new + i)
    r = _fold(s)
    if r == 0:
        r = 0xFFFF
    return <uint16_t>(~r & 0xFFFF)


cdef uint32_t _crc_table[256]


cdef void _crc_init() noexcept nogil:
    cdef uint32_t i, c
    cdef int j
    for i in range(256):
        c = i
        for j in range(8):
            c = (c >> 1) ^ 0x82F63B78u if c & 1 else c >> 1
        _crc_table[i] = c


_crc_init()


cdef uint32_t _sctp_csum(const uint8_t *p, uint32_t n, int l4) noexcept nogil:
    """CRC32c of the SCTP packet with its checksum field zero (sctp_compute_cksum)."""
    cdef uint32_t c = 0xFFFFFFFFu
    cdef uint32_t i
    cdef uint8_t b
    for i in range(<uint32_t>l4, n):
        b = 0 if (i >= <uint32_t>l4 + 8 and i < <uint32_t>l4 + 12) else p[i]
        c = _crc_table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFFu


# ---------------------------------------------------------------------------
# OVS flow hashes of the key (lib/flow.c)
# ---------------------------------------------------------------------------

cdef inline uint32_t _hash_add64(uint32_t h, uint64_t w) noexcept nogil:
    return ovs_hash_add(ovs_hash_add(h, <uint32_t>w), <uint32_t>(w >> 32))


cdef uint32_t act_flow_hash_5tuple(const flow_key *k, uint32_t basis) noexcept nogil:
    cdef const uint8_t *b = <const uint8_t *>k
    cdef uint32_t h = basis
    cdef uint16_t dl_type = _rd16(b + 44)
    cdef int o
    cdef uint8_t proto
    if dl_type == 0x86DD:
        for o in range(104, 136, 8):
            h = _hash_add64(h, _le64(b + o))
    elif dl_type == 0x0800 or dl_type == 0x0806:
        h = ovs_hash_add(ovs_hash_add(h, _le32(b + 72)), _le32(b + 76))
    else:
        return ovs_hash_finish(h, 42)
    proto = b[83]
    h = ovs_hash_add(h, proto)
    if proto == 6 or proto == 17 or proto == 132 or proto == 1 or proto == 58:
        h = ovs_hash_add(h, _le32(b + 88))
    return ovs_hash_finish(h, 42)


cdef uint32_t _hash_sym_l3l4(const flow_key *k, uint32_t basis) noexcept nogil:
    cdef const uint8_t *b = <const uint8_t *>k
    cdef uint32_t h = basis
    cdef uint16_t dl_type = _rd16(b + 44)
    cdef uint8_t w[12]
    cdef int i
    cdef uint8_t proto
    if dl_type == 0x0800:
        h = ovs_hash_add(h, _le32(b + 72) ^ _le32(b + 76))
    elif dl_type == 0x86DD:
        h = _hash_add64(h, _le64(b + 104) ^ _le64(b + 120))
        h = _hash_add64(h, _le64(b + 112) ^ _le64(b + 128))
    else:
        # flow_hash_symmetric_l2
        w[0] = b[44]
        w[1] = b[45]
        w[2] = (b[50] ^ b[54]) & 0x0F
        w[3] = b[51] ^ b[55]
        for i in range(6):
            w[4 + i] = b[32 + i] ^ b[38 + i]
        w[10] = 0
        w[11] = 0
        for i in range(0, 12, 4):
            h = ovs_hash_add(h, _le32(w + i))
        return ovs_hash_finish(h, basis)
    proto = b[83]
    h = ovs_hash_add(h, proto)
    if not (b[80] & 3) and (proto == 6 or proto == 132):
        h = ovs_hash_add(h, (<uint32_t>b[88] | (<uint32_t>b[89] << 8))
                         ^ (<uint32_t>b[90] | (<uint32_t>b[91] << 8)))
    return ovs_hash_finish(h, basis)


# ---------------------------------------------------------------------------
# Context and output buffers
# ---------------------------------------------------------------------------

cdef act_ctx *act_ctx_new() noexcept nogil:
    return <act_ctx *>calloc(1, sizeof(act_ctx))


cdef void act_ctx_free(act_ctx *ctx) noexcept nogil:
    cdef int i
    if ctx == NULL:
        return
    free(ctx.recs)
    free(ctx.data)
    free(ctx.keys)
    for i in range(ACT_SLOTS):
        free(ctx.scratch[i].p)
    for i in range(ACT_FIFO_CAPACITY):
        free(ctx.fifo[i].buf.p)
    free(ctx)


cdef void act_ctx_reset(act_ctx *ctx) noexcept nogil:
    ctx.n_recs = 0
    ctx.data_len = 0
    ctx.n_keys = 0
    ctx.n_dropped_recursion = 0
    ctx.n_dropped_deferred = 0
    ctx.n_dropped_deferred_recirc = 0
    ctx.n_dropped_explicit = 0


cdef inline bint _nla_next(const uint8_t *buf, uint32_t buf_len, uint32_t *ofs, uint16_t *kind,
                           const uint8_t **payload, uint32_t *plen) noexcept nogil:
    """The netlink attribute at *ofs: its type, payload and payload length;
    *ofs moves past it (and its padding). False at the end of the buffer or at
    a malformed header, which ends the list as nla_for_each_attr does."""
    cdef uint32_t o = ofs[0], n
    if o + 4 > buf_len:
        return False
    n = _h16(buf + o)
    if n < 4 or o + n > buf_len:
        return False
    kind[0] = _h16(buf + o + 2)
    payload[0] = buf + o + 4
    plen[0] = n - 4
    ofs[0] = o + ((n + 3) & ~3u)
    return True


cdef int _grow(uint8_t **buf, uint32_t *cap, uint64_t need, uint64_t first) noexcept nogil:
    """Room for 'need' bytes in a realloc'ed buffer, doubling from 'first'."""
    cdef uint64_t n
    cdef uint8_t *p
    if need <= cap[0]:
        return 0
    if need > 0xFFFFFFF0u:
        return -1
    n = cap[0] * 2 if cap[0] else first
    while n < need:
        n *= 2
    if n > 0xFFFFFFF0u:
        n = need
    p = <uint8_t *>realloc(buf[0], n)
    if p == NULL:
        return -1
    buf[0] = p
    cap[0] = <uint32_t>n
    return 0


cdef inline int _buf_reserve(act_buf *b, uint64_t need) noexcept nogil:
    return _grow(&b.p, &b.cap, need, 256)


cdef act_record *_new_rec(act_ctx *ctx) noexcept nogil:
    cdef uint32_t cap
    cdef act_record *r
    if ctx.n_recs == ctx.cap_recs:
        cap = ctx.cap_recs * 2 if ctx.cap_recs else 64
        r = <act_record *>realloc(ctx.recs, cap * sizeof(act_record))
        if r == NULL:
            return NULL
        ctx.recs = r
        ctx.cap_recs = cap
    r = &ctx.recs[ctx.n_recs]
    ctx.n_recs += 1
    memset(r, 0, sizeof(act_record))
    r.key_idx = _IDX_NONE
    r.tun_idx = _IDX_NONE
    return r


cdef int _put_data(act_ctx *ctx, const uint8_t *p, uint32_t n, uint32_t *ofs) noexcept nogil:
    if _grow(&ctx.data, &ctx.data_cap, <uint64_t>ctx.data_len + n, 4096) != 0:
        return -1
    if n:
        memcpy(ctx.data + ctx.data_len, p, n)
    ofs[0] = ctx.data_len
    ctx.data_len += n
    return 0


cdef int _put_key(act_ctx *ctx, const flow_key *k, uint32_t *idx) noexcept nogil:
    cdef uint32_t cap
    cdef flow_key *ks
    if ctx.n_keys == ctx.cap_keys:
        cap = ctx.cap_keys * 2 if ctx.cap_keys else 16
        ks = <flow_key *>realloc(ctx.keys, cap * sizeof(flow_key))
        if ks == NULL:
            return -1
        ctx.keys = ks
        ctx.cap_keys = cap
    if k != NULL:
        memcpy(&ctx.keys[ctx.n_keys], k, sizeof(flow_key))
    else:
        memset(&ctx.keys[ctx.n_keys], 0, sizeof(flow_key))
    idx[0] = ctx.n_keys
    ctx.n_keys += 1
    return 0


cdef inline uint64_t _rng_next(act_ctx *ctx) noexcept nogil:
    cdef uint64_t z
    ctx.rng_state += 0x9E3779B97F4A7C15u
    z = ctx.rng_state
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu
    z ^= z >> 31
    return z >> 32


# ---------------------------------------------------------------------------
# Execution state: one per action list being run
# ---------------------------------------------------------------------------

cdef struct _st:
    const uint8_t *p        # the packet bytes
    uint32_t len
    int slot                # scratch slot this list copies into
    bint own                # p is ctx.scratch[slot].p + head, writable
    uint32_t head
    flow_key *key           # writable key, or NULL while ckey is read
    const flow_key *ckey
    bint key_valid
    uint32_t tun_idx        # ctx.keys index of the egress tunnel key, or _IDX_NONE
    uint32_t cutlen
    uint32_t level


cdef inline const flow_key *_rkey(_st *st) noexcept nogil:
    return st.key if st.key != NULL else st.ckey


cdef inline flow_key *_wkey(act_ctx *ctx, _st *st) noexcept nogil:
    if st.key == NULL:
        st.key = &ctx.kscratch[st.slot]
        if st.ckey != st.key:
            memcpy(st.key, st.ckey, sizeof(flow_key))
    return st.key


cdef uint8_t *_own(act_ctx *ctx, _st *st, uint32_t headroom) noexcept nogil:
    """Make the packet writable with 'headroom' free bytes before it; NULL on OOM."""
    cdef act_buf *b = &ctx.scratch[st.slot]
    if st.own and st.head >= headroom:
        return b.p + st.head
    if st.own:
        if _buf_reserve(b, <uint64_t>st.len + 2 * _HEADROOM + headroom) < 0:
            return NULL
        memmove(b.p + _HEADROOM + headroom, b.p + st.head, st.len)
    else:
        if _buf_reserve(b, <uint64_t>st.len + 2 * _HEADROOM + headroom) < 0:
            return NULL
        if st.len:
            memcpy(b.p + _HEADROOM + headroom, st.p, st.len)
    st.own = True
    st.head = _HEADROOM + headroom
    st.p = b.p + st.head
    return b.p + st.head


cdef inline uint8_t *_insert4(act_ctx *ctx, _st *st, uint32_t at) noexcept nogil:
    """Open 4 bytes at offset 'at' (moving the bytes before it); NULL on OOM."""
    cdef uint8_t *w = _own(ctx, st, 4)
    if w == NULL:
        return NULL
    memmove(w - 4, w, at)
    st.head -= 4
    st.len += 4
    st.p = w - 4
    return w - 4


cdef inline uint8_t *_remove4(act_ctx *ctx, _st *st, uint32_t at) noexcept nogil:
    cdef uint8_t *w = _own(ctx, st, 0)
    if w == NULL:
        return NULL
    memmove(w + 4, w, at)
    st.head += 4
    st.len -= 4
    st.p = w + 4
    return w + 4


cdef int _fresh_key(act_ctx *ctx, _st *st) noexcept nogil:
    cdef flow_key *k
    if not st.key_valid:
        k = _wkey(ctx, st)
        flow_key_extract_md(st.p, st.len, k, k)
        st.key_valid = True
    return 0


cdef uint32_t _emit_len(_st *st, bint upcall) noexcept nogil:
    """Bytes a pending trunc leaves: do_output() trims to skb->len - cutlen but not
    below the Ethernet header; queue_userspace_packet() sends len - cutlen."""
    cdef int64_t tag
    if st.cutlen == 0:
        return st.len
    if upcall:
        return st.len - st.cutlen if st.len > st.cutlen else 0
    tag = 4 if _tagged(st.p, st.len) else 0
    if <int64_t>st.len - tag - <int64_t>st.cutlen > 14:
        return st.len - st.cutlen
    return <uint32_t>(14 + tag) if st.len >= 14 + tag else st.len


# ---------------------------------------------------------------------------
# Actions
# ---------------------------------------------------------------------------

cdef int _output(act_ctx *ctx, _st *st, uint32_t port) noexcept nogil:
    cdef act_record *r = _new_rec(ctx)
    if r == NULL:
        return -1
    r.kind = ACT_REC_OUTPUT
    r.port = port
    r.data_len = _emit_len(st, False)
    r.key_idx = st.tun_idx
    return _put_data(ctx, st.p, r.data_len, &r.data_ofs)


cdef int _userspace(act_ctx *ctx, _st *st, const uint8_t *a, uint32_t alen,
                    const uint8_t *list_p, uint32_t list_len) noexcept nogil:
    cdef uint32_t ofs = 0, plen, pid = 0, tun_port = 0, flags = 0, n
    cdef uint16_t t
    cdef const uint8_t *q
    cdef const uint8_t *ud = NULL
    cdef uint32_t ud_len = 0
    cdef act_record *r
    cdef uint32_t idx
    while _nla_next(a, alen, &ofs, &t, &q, &plen):
        if t == 1 and plen >= 4:
            pid = _h32(q)
        elif t == 2:
            ud = q
            ud_len = plen
            flags |= ACT_F_USERDATA
        elif t == 3 and plen >= 4:
            tun_port = _h32(q)
            flags |= ACT_F_EGRESS_TUN
        elif t == 4:
            flags |= ACT_F_ACTIONS
    # The kernel sends the in-flight key as it is, even when it is stale.
    r = _new_rec(ctx)
    if r == NULL:
        return -1
    r.kind = ACT_REC_USERSPACE
    r.port = pid
    r.flags = flags
    r.egress_tun_port = tun_port
    if flags & ACT_F_EGRESS_TUN:
        r.tun_idx = st.tun_idx
    n = _emit_len(st, True)
    r.data_len = n
    if _put_data(ctx, st.p, n, &r.data_ofs) < 0:
        return -1
    r.userdata_len = ud_len
    if _put_data(ctx, ud, ud_len, &r.userdata_ofs) < 0:
        return -1
    if flags & ACT_F_ACTIONS:
        r.actions_len = list_len
        if _put_data(ctx, list_p, list_len, &r.actions_ofs) < 0:
            return -1
    if _put_key(ctx, _rkey(st), &idx) < 0:
        return -1
    ctx.recs[ctx.n_recs - 1].key_idx = idx
    return 0


cdef int _recirc(act_ctx *ctx, _st *st, uint32_t recirc_id) noexcept nogil:
    cdef uint32_t level, idx
    cdef act_record *r
    _fresh_key(ctx, st)
    if st.level <= ACT_DEFERRED_THRESHOLD:
        level = st.level + 1
    elif ctx.fifo_used < ACT_FIFO_CAPACITY:
        ctx.fifo_used += 1
        level = 2
    else:
        ctx.n_dropped_deferred += 1
        ctx.n_dropped_deferred_recirc += 1
        return 0
    if _put_key(ctx, _rkey(st), &idx) < 0:
        return -1
    ctx.keys[idx].recirc_id = recirc_id
    r = _new_rec(ctx)
    if r == NULL:
        return -1
    r.kind = ACT_REC_RECIRC
    r.key_idx = idx
    r.level = level
    r.deferred = ctx.fifo_used
    r.data_len = st.len
    return _put_data(ctx, st.p, st.len, &r.data_ofs)


cdef bint _may_change_flow(const uint8_t *a, uint32_t alen) noexcept nogil:
    cdef uint32_t ofs = 0, plen
    cdef uint16_t t
    cdef const uint8_t *q
    while _nla_next(a, alen, &ofs, &t, &q, &plen):
        if t != A_OUTPUT and t != A_RECIRC and t != A_TRUNC and t != A_USERSPACE:
            return True
    return False


cdef int _nested(act_ctx *ctx, _st *st, const uint8_t *acts, uint32_t alen, bint last) noexcept nogil:
    """clone_execute() for clone, sample and check_pkt_len."""
    cdef _st sub
    cdef bint clone_key = not last and _may_change_flow(acts, alen)
    cdef act_deferred *d
    cdef int err
    if last and not clone_key:
        # The kernel runs the list on the skb and key themselves.
        return _run(ctx, st, acts, alen)
    sub = st[0]
    sub.own = False
    sub.slot = st.slot + 1
    if not clone_key:
        # Shared key: such a list can only re-extract an invalid key (recirc).
        if not st.key_valid:
            _wkey(ctx, st)
        sub.key = st.key
        sub.ckey = st.ckey
        err = _run(ctx, &sub, acts, alen)
        st.key_valid = sub.key_valid
        return err
    if st.level <= ACT_DEFERRED_THRESHOLD:
        sub.key = NULL
        sub.ckey = _rkey(st)
        sub.level = st.level + 1
        return _run(ctx, &sub, acts, alen)
    if ctx.fifo_used >= ACT_FIFO_CAPACITY:
        ctx.n_dropped_deferred += 1
        return 0
    ctx.fifo_used += 1
    d = &ctx.fifo[ctx.n_fifo]
    if _buf_reserve(&d.buf, st.len if st.len else 1) < 0:
        return -1
    ctx.n_fifo += 1
    if st.len:
        memcpy(d.buf.p, st.p, st.len)
    d.len = st.len
    memcpy(&d.key, _rkey(st), sizeof(flow_key))
    d.key_valid = st.key_valid
    d.tun_idx = st.tun_idx
    d.cutlen = st.cutlen
    d.actions = acts
    d.actions_len = alen
    return 0


cdef int _sample(act_ctx *ctx, _st *st, const uint8_t *a, uint32_t alen, bint last) noexcept nogil:
    cdef uint32_t ofs = 0, plen, prob = 0, acts_len = 0
    cdef uint16_t t
    cdef const uint8_t *q
    cdef const uint8_t *acts = NULL
    while _nla_next(a, alen, &ofs, &t, &q, &plen):
        if t == 1 and plen >= 4:
            prob = _h32(q)
        elif t == 2:
            acts = q
            acts_len = plen
    if prob != 0xFFFFFFFFu:
        if prob == 0:
            return 0
        if _rng_next(ctx) > prob:
            return 0
    return _nested(ctx, st, acts, acts_len, last)


cdef int _check_pkt_len(act_ctx *ctx, _st *st, const uint8_t *a, uint32_t alen,
                        bint last) noexcept nogil:
    cdef uint32_t ofs = 0, plen, gt_len = 0, le_len = 0, klen
    cdef uint16_t t, limit = 0
    cdef const uint8_t *q
    cdef const uint8_t *gt = NULL
    cdef const uint8_t *le = NULL
    while _nla_next(a, alen, &ofs, &t, &q, &plen):
        if t == 1 and plen >= 2:
            limit = _h16(q)
        elif t == 2:
            gt = q
            gt_len = plen
        elif t == 3:
            le = q
            le_len = plen
    klen = st.len - (4 if _tagged(st.p, st.len) else 0)
    if klen <= limit:
        return _nested(ctx, st, le, le_len, last)
    return _nested(ctx, st, gt, gt_len, last)


cdef int _push_vlan(act_ctx *ctx, _st *st, const uint8_t *a) noexcept nogil:
    cdef bint was_tagged
    cdef uint8_t *w
    cdef flow_key *k
    if st.len < 14:
        return 0
    was_tagged = _tagged(st.p, st.len)
    w = _insert4(ctx, st, 12)
    if w == NULL:
        return -1
    w[12] = a[0]
    w[13] = a[1]
    _wr16(w + 14, _rd16(a + 2) & ~0x1000)
    if was_tagged:
        st.key_valid = False
    else:
        k = _wkey(ctx, st)
        memcpy(&k.vlan_tpid, a, 4)
    return 0


cdef int _pop_vlan(act_ctx *ctx, _st *st) noexcept nogil:
    cdef flow_key *k
    if _tagged(st.p, st.len):
        if _remove4(ctx, st, 12) == NULL:
            return -1
    if _tagged(st.p, st.len):
        st.key_valid = False
    else:
        k = _wkey(ctx, st)
        memset(&k.vlan_tpid, 0, 4)
    return 0


cdef int _push_mpls(act_ctx *ctx, _st *st, const uint8_t *a) noexcept nogil:
    cdef uint16_t eth_type
    cdef int l3 = _l3(st.p, st.len, &eth_type)
    cdef uint8_t *w
    if l3 < 0:
        return 0
    w = _insert4(ctx, st, <uint32_t>l3)
    if w == NULL:
        return -1
    memcpy(w + l3, a, 4)
    w[l3 - 2] = a[4]
    w[l3 - 1] = a[5]
    st.key_valid = False
    return 0


cdef int _pop_mpls(act_ctx *ctx, _st *st, const uint8_t *a) noexcept nogil:
    cdef uint16_t eth_type
    cdef int l3 = _l3(st.p, st.len, &eth_type)
    cdef uint8_t *w
    if not _is_mpls(eth_type) or st.len < <uint32_t>l3 + 4:
        return 0
    w = _remove4(ctx, st, <uint32_t>l3)
    if w == NULL:
        return -1
    w[l3 - 2] = a[0]
    w[l3 - 1] = a[1]
    st.key_valid = False
    return 0


cdef inline uint8_t _m8(uint8_t old, uint8_t v, uint8_t m) noexcept nogil:
    return (v & m) | (old & ~m)


cdef void _set_ip_addr(uint8_t *p, uint32_t n, int l3, const uint8_t *old,
                       const uint8_t *new, int at) noexcept nogil:
    cdef int l4 = _ipv4_l4(p, n, l3)
    cdef uint8_t proto
    cdef uint32_t tlen
    cdef uint16_t c
    if l4 >= 0:
        proto = p[l3 + 9]
        tlen = n - <uint32_t>l4
        if proto == 6 and tlen >= 20:
            _wr16(p + l4 + 16, _csum_replace_words(_rd16(p + l4 + 16), old, new, 4))
        elif proto == 17 and tlen >= 8:
            c = _rd16(p + l4 + 6)
            if c:
                c = _csum_replace_words(c, old, new, 4)
                _wr16(p + l4 + 6, c if c else 0xFFFF)
    _wr16(p + l3 + 10, _csum_replace_words(_rd16(p + l3 + 10), old, new, 4))
    memcpy(p + at, new, 4)


cdef int _set_ipv4(act_ctx *ctx, _st *st, const uint8_t *v, const uint8_t *m) noexcept nogil:
    cdef uint16_t eth_type, check
    cdef int l3 = _l3(st.p, st.len, &eth_type)
    cdef uint8_t *p
    cdef uint8_t old[4]
    cdef uint8_t new[4]
    cdef int i, j
    cdef uint32_t c
    cdef uint8_t ds, ttl, old_ttl
    cdef flow_key *k
    cdef uint8_t *kb
    if eth_type != 0x0800 or st.len < <uint32_t>l3 + 20:
        return 0
    p = _own(ctx, st, 0)
    if p == NULL:
        return -1
    k = _wkey(ctx, st)
    kb = <uint8_t *>k
    for i in range(0, 8, 4):
        if (m[i] | m[i + 1] | m[i + 2] | m[i + 3]) == 0:
            continue
        memcpy(old, p + l3 + 12 + i, 4)
        for j in range(4):
            new[j] = _m8(old[j], v[i + j], m[i + j])
        if memcmp(old, new, 4) != 0:
            _set_ip_addr(p, st.len, l3, old, new, l3 + 12 + i)
            memcpy(kb + 72 + i, new, 4)
    if m[9]:
        # ipv4_change_dsfield (include/net/dsfield.h)
        c = _rd16(p + l3 + 10)
        ds = (p[l3 + 1] & ~m[9]) | v[9]
        c += p[l3 + 1]
        if (c + 1) >> 16:
            c = (c + 1) & 0xFFFF
        c -= ds
        c += c >= 0xFFFF
        _wr16(p + l3 + 10, <uint16_t>c)
        p[l3 + 1] = ds
        k.nw_tos = ds
    if m[10]:
        old_ttl = p[l3 + 8]
        ttl = _m8(old_ttl, v[10], m[10])
        _wr16(p + l3 + 10, _csum_replace2(_rd16(p + l3 + 10), <uint16_t>old_ttl << 8,
                                          <uint16_t>ttl << 8))
        p[l3 + 8] = ttl
        k.nw_ttl = ttl
    return 0


cdef int _set_ipv6(act_ctx *ctx, _st *st, const uint8_t *v, const uint8_t *m) noexcept nogil:
    cdef uint16_t eth_type
    cdef int l3 = _l3(st.p, st.len, &eth_type)
    cdef uint8_t *p
    cdef uint8_t old[16]
    cdef uint8_t new[16]
    cdef int i, j, l4, proto = -1
    cdef bint any_m, recalc
    cdef uint32_t tlen, label, label_mask
    cdef uint16_t c, word
    cdef uint8_t tclass, mm
    cdef flow_key *k
    cdef uint8_t *kb
    if eth_type != 0x86DD or st.len < <uint32_t>l3 + 40:
        return 0
    p = _own(ctx, st, 0)
    if p == NULL:
        return -1
    k = _wkey(ctx, st)
    kb = <uint8_t *>k
    for i in range(0, 32, 16):
        any_m = False
        for j in range(16):
            if m[i + j]:
                any_m = True
        if not any_m:
            continue
        memcpy(old, p + l3 + 8 + i, 16)
        for j in range(16):
            new[j] = _m8(old[j], v[i + j], m[i + j])
        if memcmp(old, new, 16) == 0:
            continue
        recalc = True
        if i == 16 and (_ipv6_ext(p[l3 + 6]) or p[l3 + 6] == 59):
            recalc = not _ipv6_has_routing(p, st.len, l3)
        if recalc:
            l4 = _ipv6_l4(p, st.len, l3, &proto)
            if l4 >= 0:
                tlen = st.len - <uint32_t>l4
                if proto == 6 and tlen >= 20:
                    _wr16(p + l4 + 16, _csum_replace_words(_rd16(p + l4 + 16), old, new, 16))
                elif proto == 17 and tlen >= 8:
                    c = _rd16(p + l4 + 6)
                    if c:
                        c = _csum_replace_words(c, old, new, 16)
                        _wr16(p + l4 + 6, c if c else 0xFFFF)
                elif proto == 58 and tlen >= 8:
                    _wr16(p + l4 + 2, _csum_replace_words(_rd16(p + l4 + 2), old, new, 16))
        memcpy(p + l3 + 8 + i, new, 16)
        memcpy(kb + 104 + i, new, 16)
    if m[37]:
        word = _rd16(p + l3)
        tclass = (word >> 4) & 0xFF
        tclass = (tclass & ~m[37]) | v[37]
        _wr16(p + l3, (word & 0xF00F) | (<uint16_t>tclass << 4))
        k.nw_tos = tclass
    label_mask = _rd32(m + 32)
    if label_mask:
        label = _rd32(v + 32)
        for j in range(1, 4):
            mm = <uint8_t>(label_mask >> (8 * (3 - j)))
            p[l3 + j] = (<uint8_t>(label >> (8 * (3 - j))) & mm) | (p[l3 + j] & ~mm)
        label = _rd32(p + l3) & 0xFFFFF
        kb[84] = <uint8_t>(label >> 24)
        kb[85] = <uint8_t>(label >> 16)
        kb[86] = <uint8_t>(label >> 8)
        kb[87] = <uint8_t>label
    if m[38]:
        p[l3 + 7] = _m8(p[l3 + 7], v[38], m[38])
        k.nw_ttl = p[l3 + 7]
    return 0


cdef int _set_l4(act_ctx *ctx, _st *st, uint16_t t, const uint8_t *v, const uint8_t *m) noexcept nogil:
    cdef uint16_t eth_type
    cdef int l3 = _l3(st.p, st.len, &eth_type)
    cdef int l4 = -1, proto = -1, want, i
    cdef uint32_t hlen, csum_at, oc, nc
    cdef uint16_t ports[2]
    cdef uint16_t check, old, vv, mm
    cdef uint8_t ob[2]
    cdef uint8_t nb[2]
    cdef uint8_t *p
    cdef uint8_t *kb
    if eth_type == 0x0800 and st.len >= <uint32_t>l3 + 20:
        proto = st.p[l3 + 9]
        l4 = _ipv4_l4(st.p, st.len, l3)
    elif eth_type == 0x86DD and st.len >= <uint32_t>l3 + 40:
        l4 = _ipv6_l4(st.p, st.len, l3, &proto)
    else:
        return 0
    if t == K_TCP:
        want, hlen = 6, 20
    elif t == K_UDP:
        want, hlen = 17, 8
    else:
        want, hlen = 132, 12
    if proto != want or l4 < 0 or st.len < <uint32_t>l4 + hlen:
        return 0
    p = _own(ctx, st, 0)
    if p == NULL:
        return -1
    kb = <uint8_t *>_wkey(ctx, st)
    for i in range(2):
        vv = _rd16(v + 2 * i)
        mm = _rd16(m + 2 * i)
        ports[i] = (vv & mm) | (_rd16(p + l4 + 2 * i) & ~mm)
    if t == K_SCTP:
        oc = _sctp_csum(p, st.len, l4)
        _wr16(p + l4, ports[0])
        _wr16(p + l4 + 2, ports[1])
        nc = _sctp_csum(p, st.len, l4)
        oc ^= nc
        # stored little-endian: XOR byte by byte
        p[l4 + 8] ^= <uint8_t>oc
        p[l4 + 9] ^= <uint8_t>(oc >> 8)
        p[l4 + 10] ^= <uint8_t>(oc >> 16)
        p[l4 + 11] ^= <uint8_t>(oc >> 24)
        memcpy(kb + 88, p + l4, 4)
        return 0
    csum_at = <uint32_t>l4 + (16 if t == K_TCP else 6)
    check = _rd16(p + csum_at)
    if t == K_UDP and check == 0:
        _wr16(p + l4, ports[0])
        _wr16(p + l4 + 2, ports[1])
        memcpy(kb + 88, p + l4, 4)
        return 0
    for i in range(2):
        old = _rd16(p + l4 + 2 * i)
        if ports[i] != old:
            _wr16(ob, old)
            _wr16(nb, ports[i])
            check = _csum_replace_words(check, ob, nb, 2)
            _wr16(p + l4 + 2 * i, ports[i])
            _wr16(kb + 88 + 2 * i, ports[i])
    if t == K_UDP and check == 0:
        check = 0xFFFF
    _wr16(p + csum_at, check)
    return 0


cdef int _set_tunnel(act_ctx *ctx, _st *st, const uint8_t *a, uint32_t alen) noexcept nogil:
    cdef uint32_t ofs = 0, idx, plen
    cdef uint16_t t, flags = 0
    cdef flow_key *k
    cdef uint8_t *kb
    cdef const uint8_t *q
    if _put_key(ctx, NULL, &idx) < 0:
        return -1
    k = &ctx.keys[idx]
    kb = <uint8_t *>k
    while _nla_next(a, alen, &ofs, &t, &q, &plen):
        if t == 0 and plen == 8:
            memcpy(kb + 208, q, 8)
            flags |= 8
        elif t == 1 and plen == 4:
            memcpy(kb + 216, q, 4)
        elif t == 2 and plen == 4:
            memcpy(kb + 220, q, 4)
        elif t == 3 and plen == 1:
            k.tun_tos = q[0]
        elif t == 4 and plen == 1:
            k.tun_ttl = q[0]
        elif t == 5:
            flags |= 2
        elif t == 6:
            flags |= 4
        elif t == 7:
            flags |= 1
        elif t == 8 and plen <= 252:
            k.tun_opts_len = <uint8_t>plen
            memcpy(k.tun_opts, q, plen)
        elif t == 9 and plen == 2:
            memcpy(kb + 256, q, 2)
        elif t == 10 and plen == 2:
            memcpy(kb + 258, q, 2)
        elif t == 12 and plen == 16:
            memcpy(kb + 224, q, 16)
        elif t == 13 and plen == 16:
            memcpy(kb + 240, q, 16)
    k.tun_flags = flags
    st.tun_idx = idx
    return 0


cdef int _set(act_ctx *ctx, _st *st, const uint8_t *a, uint32_t alen, bint masked) noexcept nogil:
    cdef uint16_t klen, t
    cdef uint32_t size, i, old, vv, mm
    cdef const uint8_t *v
    cdef const uint8_t *m
    cdef uint8_t full[40]
    cdef uint8_t *p
    cdef flow_key *k
    cdef uint16_t eth_type
    cdef int l3
    if alen < 4:
        return 0
    klen = _h16(a)
    t = _h16(a + 2)
    if klen < 4 or klen > alen:
        return 0
    if t == K_TUNNEL:
        return _set_tunnel(ctx, st, a + 4, klen - 4u)
    size = (klen - 4u) // 2 if masked else klen - 4u
    v = a + 4
    if masked:
        m = v + size
    else:
        memset(full, 0xFF, sizeof(full))
        if t == K_IPV6:
            full[32] = 0
            full[33] = 0x0F
        m = full    # every consumer reads at most the 40 bytes of ovs_key_ipv6
    if t == K_PRIORITY or t == K_SKB_MARK:
        if size < 4:
            return 0
        k = _wkey(ctx, st)
        vv = _h32(v)
        mm = _h32(m)
        if t == K_PRIORITY:
            k.priority = (vv & mm) | (k.priority & ~mm)
        else:
            k.skb_mark = (vv & mm) | (k.skb_mark & ~mm)
    elif t == K_ETHERNET:
        if size < 12 or st.len < 14:
            return 0
        p = _own(ctx, st, 0)
        if p == NULL:
            return -1
        for i in range(6):
            p[6 + i] = _m8(p[6 + i], v[i], m[i])
            p[i] = _m8(p[i], v[6 + i], m[6 + i])
        k = _wkey(ctx, st)
        memcpy(k.dl_dst, p, 12)
    elif t == K_IPV4:
        if size >= 12:
            return _set_ipv4(ctx, st, v, m)
    elif t == K_IPV6:
        if size >= 40:
            return _set_ipv6(ctx, st, v, m)
    elif t == K_TCP or t == K_UDP or t == K_SCTP:
        if size >= 4:
            return _set_l4(ctx, st, t, v, m)
    elif t == K_MPLS:
        if size < 4:
            return 0
        l3 = _l3(st.p, st.len, &eth_type)
        if not _is_mpls(eth_type) or st.len < <uint32_t>l3 + 4:
            return 0
        p = _own(ctx, st, 0)
        if p == NULL:
            return -1
        for i in range(4):
            p[l3 + i] = _m8(p[l3 + i], v[i], m[i])
        k = _wkey(ctx, st)
        memcpy(&k.mpls_lse[0], p + l3, 4)
    return 0


cdef int _run(act_ctx *ctx, _st *st, const uint8_t *acts, uint32_t alen) noexcept nogil:
    """do_execute_actions(): returns 0, or -1 on allocation failure."""
    cdef uint32_t ofs = 0, plen, max_len, klen, h
    cdef uint16_t t
    cdef const uint8_t *a
    cdef bint last
    cdef flow_key *k
    cdef int err = 0
    while _nla_next(acts, alen, &ofs, &t, &a, &plen):
        last = ofs >= alen
        if t == A_OUTPUT:
            if plen >= 4:
                if _output(ctx, st, _h32(a)) < 0:
                    return -1
            if last:
                return 0
            st.cutlen = 0
        elif t == A_TRUNC:
            if plen >= 4:
                max_len = _h32(a)
                klen = st.len - (4 if _tagged(st.p, st.len) else 0)
                if klen > max_len:
                    st.cutlen = klen - max_len
        elif t == A_USERSPACE:
            if _userspace(ctx, st, a, plen, acts, alen) < 0:
                return -1
            st.cutlen = 0
        elif t == A_HASH:
            if plen >= 8:
                _fresh_key(ctx, st)
                k = _wkey(ctx, st)
                if _h32(a) == 0:
                    h = act_flow_hash_5tuple(k, _h32(a + 4))
                else:
                    h = _hash_sym_l3l4(k, _h32(a + 4))
                k.dp_hash = h if h else 1
        elif t == A_PUSH_MPLS:
            if plen >= 6:
                err = _push_mpls(ctx, st, a)
        elif t == A_POP_MPLS:
            if plen >= 2:
                err = _pop_mpls(ctx, st, a)
        elif t == A_PUSH_VLAN:
            if plen >= 4:
                err = _push_vlan(ctx, st, a)
        elif t == A_POP_VLAN:
            err = _pop_vlan(ctx, st)
        elif t == A_RECIRC:
            if plen >= 4:
                err = _recirc(ctx, st, _h32(a))
            if last:
                return err
        elif t == A_SET:
            err = _set(ctx, st, a, plen, False)
        elif t == A_SET_MASKED:
            err = _set(ctx, st, a, plen, True)
        elif t == A_SAMPLE:
            err = _sample(ctx, st, a, plen, last)
            if last:
                return err
        elif t == A_CLONE:
            err = _nested(ctx, st, a, plen, last)
            if last:
                return err
        elif t == A_CHECK_PKT_LEN:
            err = _check_pkt_len(ctx, st, a, plen, last)
            if last:
                return err
        elif t == A_CT_CLEAR:
            k = _wkey(ctx, st)
            k.ct_zone = 0
            k.ct_state = 0
            k.pad0 = 0
            k.ct_mark = 0
            memset(k.ct_label, 0, 16)
        elif t == A_DROP:
            ctx.n_dropped_explicit += 1
            return 0
        # A_METER: no meters in ovsnet; the packet passes.
        if err < 0:
            return -1
    return 0


cdef int act_execute_at(act_ctx *ctx, const uint8_t *pkt, uint32_t len, const flow_key *key,
                        const uint8_t *actions, uint32_t actions_len,
                        uint32_t level, uint32_t deferred) noexcept nogil:
    cdef _st st
    cdef act_deferred *d
    cdef uint32_t i
    if level == 0:
        level = 1
    if level > ACT_RECURSION_LIMIT:
        ctx.n_dropped_recursion += 1
        return 0
    ctx.fifo_used = deferred
    ctx.n_fifo = 0
    st.p = pkt
    st.len = len
    st.slot = 0
    st.own = False
    st.head = 0
    st.key = NULL
    st.ckey = key
    st.key_valid = True
    st.tun_idx = _IDX_NONE
    st.cutlen = 0
    st.level = level
    if _run(ctx, &st, actions, actions_len) < 0:
        return -1
    # process_deferred_actions(): in FIFO order, at level 1.
    i = 0
    while i < ctx.n_fifo:
        d = &ctx.fifo[i]
        st.p = d.buf.p
        st.len = d.len
        st.slot = 0
        st.own = False
        st.head = 0
        st.key = NULL
        st.ckey = &d.key
        st.key_valid = d.key_valid
        st.tun_idx = d.tun_idx
        st.cutlen = d.cutlen
        st.level = 1
        if _run(ctx, &st, d.actions, d.actions_len) < 0:
            return -1
        i += 1
    return 0


cdef int act_execute(act_ctx *ctx, const uint8_t *pkt, uint32_t len, const flow_key *key,
                     const uint8_t *actions, uint32_t actions_len) noexcept nogil:
    return act_execute_at(ctx, pkt, len, key, actions, actions_len, 1, 0)


# ---------------------------------------------------------------------------
# Python-level entry points (validated by ovsnet.datapath.actions)
# ---------------------------------------------------------------------------

if sizeof(act_record) != 56:
    raise ImportError(f"struct act_record is {sizeof(act_record)} bytes, expected 56")


cdef bytes _key_at(act_ctx *ctx, uint32_t idx):
    if idx == _IDX_NONE:
        return None
    return (<char *>&ctx.keys[idx])[:FLOW_KEY_SIZE]


cdef bytes _data(act_ctx *ctx, uint32_t ofs, uint32_t n):
    return (<char *>ctx.data)[ofs:ofs + n] if n else b""


def execute_raw(const uint8_t[::1] packet not None, const uint8_t[::1] key not None,
                const uint8_t[::1] actions not None, uint64_t seed, uint32_t level,
                uint32_t deferred):
    """Run validated actions; returns (outputs, upcalls, recircs, counters) as tuples.

    Private: ovsnet.datapath.actions.execute validates and wraps the results.
    """
    cdef act_ctx *ctx
    cdef int rc
    cdef uint32_t i
    cdef act_record *r
    cdef const uint8_t *pp = &packet[0] if packet.shape[0] else NULL
    cdef const uint8_t *ap = &actions[0] if actions.shape[0] else NULL
    cdef uint32_t plen = <uint32_t>packet.shape[0]
    cdef uint32_t alen = <uint32_t>actions.shape[0]
    if key.shape[0] != FLOW_KEY_SIZE:
        raise ValueError(f"key is {key.shape[0]} bytes, a flow key is {FLOW_KEY_SIZE}")
    ctx = act_ctx_new()
    if ctx == NULL:
        raise MemoryError()
    try:
        ctx.rng_state = seed
        with nogil:
            rc = act_execute_at(ctx, pp, plen, <const flow_key *>&key[0], ap, alen,
                                level, deferred)
        if rc < 0:
            raise MemoryError()
        outs, ups, recs = [], [], []
        for i in range(ctx.n_recs):
            r = &ctx.recs[i]
            if r.kind == ACT_REC_OUTPUT:
                outs.append((r.port, _data(ctx, r.data_ofs, r.data_len), _key_at(ctx, r.key_idx)))
            elif r.kind == ACT_REC_USERSPACE:
                ups.append((
                    r.port,
                    _data(ctx, r.userdata_ofs, r.userdata_len) if r.flags & ACT_F_USERDATA else None,
                    _key_at(ctx, r.key_idx),
                    _data(ctx, r.data_ofs, r.data_len),
                    r.egress_tun_port if r.flags & ACT_F_EGRESS_TUN else None,
                    _key_at(ctx, r.tun_idx),
                    _data(ctx, r.actions_ofs, r.actions_len) if r.flags & ACT_F_ACTIONS else None,
                ))
            else:
                recs.append((_key_at(ctx, r.key_idx), _data(ctx, r.data_ofs, r.data_len),
                             r.level, r.deferred))
        counters = (ctx.n_dropped_recursion, ctx.n_dropped_deferred,
                    ctx.n_dropped_deferred_recirc, ctx.n_dropped_explicit)
        return outs, ups, recs, counters
    finally:
        act_ctx_free(ctx)


def bench_loop(const uint8_t[::1] packet not None, const uint8_t[::1] key not None,
               const uint8_t[::1] actions not None, uint64_t n):
    """Execute the same validated actions n times, resetting the context every 32.

    For timing the C loop without Python overhead; returns the records made.
    """
    cdef act_ctx *ctx = act_ctx_new()
    cdef uint64_t i, total = 0
    cdef int rc = 0
    if ctx == NULL:
        raise MemoryError()
    if key.shape[0] != FLOW_KEY_SIZE:
        act_ctx_free(ctx)
        raise ValueError(f"key is {key.shape[0]} bytes, a flow key is {FLOW_KEY_SIZE}")
    with nogil:
        for i in range(n):
            if (i & 31) == 0:
                total += ctx.n_recs
                act_ctx_reset(ctx)
            rc = act_execute(ctx, &packet[0], <uint32_t>packet.shape[0],
                             <const flow_key *>&key[0], &actions[0], <uint32_t>actions.shape[0])
            if rc < 0:
                break
        total += ctx.n_recs
    act_ctx_free(ctx)
    if rc < 0:
        raise MemoryError()
    return total
