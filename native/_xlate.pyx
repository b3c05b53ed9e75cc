# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The compiled translation core: ``xlate_actions`` for the common pipeline.

Private: use :mod:`ovsnet.ofproto.fastpath`, which documents what this core
translates and when it hands a packet back to the Python translation
(:func:`ovsnet.ofproto.xlate.xlate`, the reference it must agree with, action
byte for action byte and megaflow bit for megaflow bit).

The flow, the datapath's view of it (``base``), the flow translation started
from and the wildcards are C arrays of 64-bit words laid out by
``of_flow.WORD_OF`` (one word per member, two for 128-bit members, high word
first). The classifier's lookup runs on those words over the classifier's own
Python indices (the ``fast`` tuples of ``_Subtable``); each rule's actions are
compiled once into a program of small integer tuples
(``fastpath.compile_actions``) and interpreted here.

Nothing in this module has side effects on the bridge: a packet that needs
anything outside the compiled vocabulary (NORMAL, learning, patch or tunnel
ports, VLAN or MPLS changes, the controller, a resource limit, ...) makes the
translation return ``None`` before any state outside its own C context has
changed, and the caller translates the packet again in Python.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE, PyTuple_New, PyTuple_SET_ITEM
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, realloc
from libc.string cimport memcpy, memset

from ovsnet._classifier cimport _trie_lookup, _ufid_hash

DEF MAXW = 80           # words of a flow (of_flow.N_WORDS must not exceed it)
DEF MAX_ODP = 4096      # datapath action bytes translated here; more go to Python
DEF KEY_BYTES = 528
DEF MAX_KEY_MEMBERS = 64
DEF MAX_LIST = 32

# what a step returns: go on, or hand the packet to the Python translation
DEF OK = 0
DEF FALLBACK = 1

# the opcodes of a compiled action program (fastpath.compile_actions)
DEF OP_OUTPUT = 1
DEF OP_RESUBMIT = 2
DEF OP_GOTO = 3
DEF OP_SET_WORD = 4
DEF OP_SET_ETH = 5
DEF OP_SET_IPV4 = 6
DEF OP_SET_TOS = 7
DEF OP_SET_TTL = 8
DEF OP_SET_L4 = 9
DEF OP_DEC_TTL = 10
DEF OP_WRITE_METADATA = 11
DEF OP_MOVE = 12
DEF OP_OUTPUT_REG = 13
DEF OP_PUSH = 14
DEF OP_POP = 15
DEF MAX_STACK = 64
DEF MAX_TRIES = 8

DEF ETH_TYPE_IP = 0x0800
DEF ETH_TYPE_IPV6 = 0x86DD
DEF ETH_TYPE_ARP = 0x0806
DEF ETH_TYPE_MPLS = 0x8847
DEF ETH_TYPE_MPLS_MCAST = 0x8848
DEF IPPROTO_ICMP = 1
DEF IPPROTO_ICMPV6 = 58
DEF VLAN_CFI = 0x1000
DEF FRAG_ANY = 1
DEF FRAG_LATER = 2
DEF OFPP_MAX = 0xFF00
DEF OFPP_IN_PORT = 0xFFF8
DEF OFPP_TABLE = 0xFFF9
DEF OFPP_LOCAL = 0xFFFE
DEF OFPP_NONE = 0xFFFF
DEF MAX_DEPTH = 64
DEF MAX_RESUBMITS = 4096

cdef uint64_t M64 = 0xFFFFFFFFFFFFFFFFULL
cdef object _M64 = (1 << 64) - 1


cdef struct xctx:
    uint64_t flow[MAXW]    # ctx->xin->flow as translation changes it
    uint64_t base[MAXW]    # ctx->base_flow: the packet as the datapath has it
    uint64_t orig[MAXW]    # the flow translation started from
    uint64_t wc[MAXW]      # ctx->wc
    uint8_t odp[MAX_ODP]   # the datapath actions
    int odp_len
    int depth
    int resubmits
    int table_id
    bint slow
    uint64_t stack[MAX_STACK]  # ctx->stack, for the subfields of at most 64 bits
    int n_stack


# ------------------------------------------------------------------------------
# Layout (fastpath.configure)

cdef bint _configured = False
cdef int _n_words = 0
# words of the members the translation reads by name
cdef int W_IN_PORT, W_DL_TYPE, W_NW_FRAG, W_RECIRC, W_NW_PROTO, W_NW_TTL, W_NW_TOS
cdef int W_TP_SRC, W_TP_DST, W_TUN_DST, W_TUN_IPV6_DST, W_VLAN_TCI, W_VLAN1_TCI
cdef int W_VLAN_TPID, W_VLAN1_TPID, W_METADATA
# all-ones of each word's member (both words of a 128-bit member: all 64 bits)
cdef uint64_t _ones[MAXW]
# members xlate_wc_finish clears (non-packet, MPLS label stack, tunnel)
cdef int _n_nonpacket = 0
cdef int _nonpacket[MAX_LIST]
cdef int _n_lse = 0
cdef int _lse[MAX_LIST]
cdef int _n_tun = 0
cdef int _tun[MAX_LIST]
# what a patch port's peer sees cleared, and the tunnel wildcards it keeps apart
cdef int _n_patch_cleared = 0
cdef int _patch_cleared[MAX_LIST * 2]
cdef int _n_tunnel_wc = 0
cdef int _tunnel_wc[MAX_LIST]
# words commit_odp_actions compares, and those of its VLAN, MPLS and metadata checks
cdef int _n_commit = 0
cdef int _commit_words[MAX_LIST * 2]
cdef int _n_vlan = 0
cdef int _vlan_words[MAX_LIST]
cdef int _n_mpls = 0
cdef int _mpls_words[MAX_LIST]
cdef int _n_meta = 0
cdef int _meta_words[MAX_LIST]
# the flow key's members: word, offset, size, big-endian, 128 bits wide
cdef int _n_key = 0
cdef int _key_word[MAX_KEY_MEMBERS]
cdef int _key_off[MAX_KEY_MEMBERS]
cdef int _key_size[MAX_KEY_MEMBERS]
cdef bint _key_big[MAX_KEY_MEMBERS]
cdef bint _key_wide[MAX_KEY_MEMBERS]
# every member: (name, word, wide), to read and write OfFlow dictionaries
cdef tuple _members = ()
# commit groups: (attr, fields, use_masked, big) with fields (word, bytes, writable,
# wide, full mask low word, full mask high word)
cdef tuple _G_ETH, _G_IPV4, _G_IPV6, _G_ND, _G_ARP, _G_PRIORITY, _G_MARK
cdef dict _G_PORTS = {}
cdef dict _G_ICMP = {}
cdef int _A_OUTPUT, _A_SET, _A_SET_MASKED
# rule actions -> compiled program
cdef object _compile = None
cdef dict _programs = {}
DEF PROGRAM_CACHE_MAX = 65536


cdef void _fill(int *dst, int *n, object words, int limit) except *:
    cdef int i = 0
    for w in words:
        if i >= limit:
            raise ValueError("compiled translation core: too many words in a list")
        dst[i] = w
        i += 1
    n[0] = i


def configure(dict cfg):
    """Take the flow layout and the constants from :mod:`ovsnet.ofproto.fastpath`."""
    global _configured, _n_words, _members, _compile, _n_key
    global W_IN_PORT, W_DL_TYPE, W_NW_FRAG, W_RECIRC, W_NW_PROTO, W_NW_TTL, W_NW_TOS
    global W_TP_SRC, W_TP_DST, W_TUN_DST, W_TUN_IPV6_DST, W_VLAN_TCI, W_VLAN1_TCI
    global W_VLAN_TPID, W_VLAN1_TPID, W_METADATA
    global _G_ETH, _G_IPV4, _G_IPV6, _G_ND, _G_ARP, _G_PRIORITY, _G_MARK, _G_PORTS, _G_ICMP
    global _A_OUTPUT, _A_SET, _A_SET_MASKED
    cdef int i
    _n_words = cfg["n_words"]
    if _n_words > MAXW:
        raise ValueError(f"compiled translation core: {_n_words} flow words, at most {MAXW}")
    w = cfg["words"]
    W_IN_PORT, W_DL_TYPE, W_NW_FRAG, W_RECIRC = w["in_port"], w["dl_type"], w["nw_frag"], w["recirc_id"]
    W_NW_PROTO, W_NW_TTL, W_NW_TOS = w["nw_proto"], w["nw_ttl"], w["nw_tos"]
    W_TP_SRC, W_TP_DST, W_TUN_DST, W_TUN_IPV6_DST = w["tp_src"], w["tp_dst"], w["tun_dst"], w["tun_ipv6_dst"]
    W_VLAN_TCI, W_VLAN1_TCI, W_VLAN_TPID, W_VLAN1_TPID = w["vlan_tci"], w["vlan1_tci"], w["vlan_tpid"], w["vlan1_tpid"]
    W_METADATA = w["metadata"]
    memset(_ones, 0, sizeof(_ones))
    for i, v in enumerate(cfg["ones"]):
        _ones[i] = v
    _fill(_nonpacket, &_n_nonpacket, cfg["nonpacket"], MAX_LIST)
    _fill(_lse, &_n_lse, cfg["lse"], MAX_LIST)
    _fill(_tun, &_n_tun, cfg["tun"], MAX_LIST)
    _fill(_patch_cleared, &_n_patch_cleared, cfg["patch_cleared"], MAX_LIST * 2)
    _fill(_tunnel_wc, &_n_tunnel_wc, cfg["tunnel_wc"], MAX_LIST)
    _fill(_commit_words, &_n_commit, cfg["commit_words"], MAX_LIST * 2)
    _fill(_vlan_words, &_n_vlan, cfg["vlan_words"], MAX_LIST)
    _fill(_mpls_words, &_n_mpls, cfg["mpls_words"], MAX_LIST)
    _fill(_meta_words, &_n_meta, cfg["meta_words"], MAX_LIST)
    keys = cfg["key"]
    if len(keys) > MAX_KEY_MEMBERS:
        raise ValueError("compiled translation core: too many flow-key members")
    for i, (word, off, size, big, wide) in enumerate(keys):
        _key_word[i] = word
        _key_off[i] = off
        _key_size[i] = size
        _key_big[i] = big
        _key_wide[i] = wide
    _n_key = len(keys)
    _members = tuple(cfg["members"])
    g = cfg["groups"]
    _G_ETH, _G_IPV4, _G_IPV6, _G_ND, _G_ARP = g["eth"], g["ipv4"], g["ipv6"], g["nd"], g["arp"]
    _G_PRIORITY, _G_MARK = g["priority"], g["mark"]
    _G_PORTS = dict(g["ports"])
    _G_ICMP = dict(g["icmp"])
    _A_OUTPUT, _A_SET, _A_SET_MASKED = cfg["attrs"]
    _compile = cfg["compile"]
    _programs.clear()
    _configured = True


cdef void _check_configured() except *:
    if not _configured:
        raise RuntimeError("ovsnet._xlate is not configured: import ovsnet.ofproto.fastpath, "
                           "which configures it")


# ------------------------------------------------------------------------------
# Words as Python integers

cdef inline object _get(const uint64_t *w, int s, bint wide):
    if wide:
        return (<object>w[s] << 64) | <object>w[s + 1]
    return <object>w[s]


cdef inline void _or_obj(uint64_t *w, int s, bint wide, object value) except *:
    if wide:
        w[s] |= <uint64_t>(value >> 64)
        w[s + 1] |= <uint64_t>(value & _M64)
    else:
        w[s] |= <uint64_t>value


cdef inline void _or_item(uint64_t *w, tuple item) except *:
    """``masks[member] |= mask`` for a ``(word, mask, wide)`` item."""
    cdef int s = <int><object>PyTuple_GET_ITEM(item, 0)
    if <bint><object>PyTuple_GET_ITEM(item, 2):
        _or_obj(w, s, True, <object>PyTuple_GET_ITEM(item, 1))
    else:
        w[s] |= <uint64_t><object>PyTuple_GET_ITEM(item, 1)


cdef inline void _fold(uint64_t *w, tuple items) except *:
    cdef Py_ssize_t j
    for j in range(PyTuple_GET_SIZE(items)):
        _or_item(w, <tuple>PyTuple_GET_ITEM(items, j))


cdef inline object _prefix_mask(int n, int width):
    if n <= 0:
        return 0
    return ((<object>1 << n) - 1) << (width - n)


# ------------------------------------------------------------------------------
# The classifier's lookup on words (classifier.Classifier.lookup, the same walk
# as native/_classifier.pyx's lookup_wc over the same indices)

cdef class _CTrie:
    """A C copy of a :class:`~ovsnet.ofproto.classifier.PrefixTrie` of at most
    63 bits: a binary trie of the stored prefixes' bits, one node per covered
    prefix (``covered[d]`` holds the node's ``d``-bit prefix), marked where a
    stored prefix ends. Built from the trie's ``_stored`` sets, rebuilt when
    the trie's ``version`` changes."""

    cdef int n
    cdef int n_nodes
    cdef int cap
    cdef int *child  # 2 per node, -1: none
    cdef uint8_t *stored
    cdef object version

    def __dealloc__(self):
        free(self.child)
        free(self.stored)

    cdef int _node(self) except -1:
        cdef int i
        if self.n_nodes == self.cap:
            self.cap = self.cap * 2 if self.cap else 64
            self.child = <int *>realloc(self.child, 2 * self.cap * sizeof(int))
            self.stored = <uint8_t *>realloc(self.stored, self.cap)
            if self.child == NULL or self.stored == NULL:
                raise MemoryError()
        i = self.n_nodes
        self.child[2 * i] = self.child[2 * i + 1] = -1
        self.stored[i] = 0
        self.n_nodes += 1
        return i

    cdef int build(self, object trie) except -1:
        cdef int plen, d, node, bit, nxt
        cdef uint64_t prefix
        self.n = trie.n_bits
        self.n_nodes = 0
        self._node()  # the root: covered[0] when anything is stored
        for plen_obj, stored_obj in (<dict>trie._stored).items():
            plen = plen_obj
            for key in <dict>stored_obj:
                prefix = <uint64_t>key
                node = 0
                for d in range(plen):
                    bit = (prefix >> (plen - 1 - d)) & 1
                    nxt = self.child[2 * node + bit]
                    if nxt < 0:
                        nxt = self._node()
                        self.child[2 * node + bit] = nxt
                    node = nxt
                self.stored[node] = 1
        self.version = trie.version
        return 0

    cdef inline int lookup(self, uint64_t value, uint64_t *plens):
        """``trie_lookup_value``: the mask length; ``plens`` gets bit ``l`` for
        every stored prefix of length ``l`` that ``value`` starts with."""
        cdef int depth = 0, node = 0, nxt
        cdef int n = self.n
        plens[0] = 0
        if self.n_nodes == 1 and not self.stored[0]:
            return 0  # an empty trie
        while True:
            if self.stored[node]:
                plens[0] |= 1ULL << depth
            if depth >= n:
                return n
            nxt = self.child[2 * node + ((value >> (n - 1 - depth)) & 1)]
            if nxt < 0:
                break
            node = nxt
            depth += 1
        # the walk ended at ``depth``: on a leaf (a stored prefix without
        # children), that many bits tell this value from every prefix
        if self.stored[node] and self.child[2 * node] < 0 and self.child[2 * node + 1] < 0:
            return depth
        return depth + 1


#: id(PrefixTrie) -> (the trie, its _CTrie)
cdef dict _ctries = {}


cdef _CTrie _ctrie(object trie):
    """The C copy of ``trie`` (at most 63 bits), rebuilt if the trie changed."""
    cdef object key = <object>(<Py_ssize_t><void *>trie)
    cdef PyObject *p = PyDict_GetItem(_ctries, key)
    cdef _CTrie ct
    if p != NULL and <object>PyTuple_GET_ITEM(<tuple>p, 0) is trie:
        ct = <_CTrie>PyTuple_GET_ITEM(<tuple>p, 1)
        if ct.version == trie.version:
            return ct
    else:
        ct = _CTrie()
        if len(_ctries) >= PROGRAM_CACHE_MAX:
            _ctries.clear()
        _ctries[key] = (trie, ct)  # holds the trie: its address stays its own
    ct.build(trie)
    return ct


cdef object _lookup(object cls, const uint64_t *flow, uint64_t *wc):
    """``classifier_lookup__`` with wildcard tracking, on words.

    The subtables' word indices (``_Subtable.word_indices``/``word_rules``)
    are keyed by the masked values packed as 64-bit host-order words, stage
    after stage, so each stage's probe is one bytes object built from a C
    buffer.
    """
    cdef tuple view = cls._word_view
    cdef list pvector = <list>PyTuple_GET_ITEM(view, 0)
    cdef list priorities = <list>PyTuple_GET_ITEM(view, 1)
    cdef tuple tries = <tuple>PyTuple_GET_ITEM(view, 2)
    cdef Py_ssize_t n_tries = PyTuple_GET_SIZE(tries)
    cdef list trie_ctx = None  # the contexts of 128-bit tries, made on first use
    cdef object hard = None
    cdef long hard_pri = -1
    cdef Py_ssize_t k, n_sub = len(pvector)
    cdef tuple fast, stage_no, stage_items, items, item, trie_plen, trie, ctx
    cdef list indices
    cdef Py_ssize_t n, i, j, m, n_stages
    cdef int stage, plen, maskbits, width, ports_mask_len, s, tword, pos
    cdef bint skipped, twide
    cdef object rules, pm, plens, probe, mask
    cdef uint64_t ports_mask, pvalue, bits, src_bits, dst_bits, v
    cdef uint64_t buf[2 * MAXW]
    # per trie: looked up yet, its mask length and prefix lengths (C tries)
    cdef bint t_done[MAX_TRIES]
    cdef int t_bits[MAX_TRIES]
    cdef uint64_t t_plens[MAX_TRIES]
    cdef uint64_t port_plens
    if n_tries > MAX_TRIES:
        raise ValueError("compiled translation core: too many prefix tries")
    for j in range(n_tries):
        t_done[j] = False
    for k in range(n_sub):
        if <long>priorities[k] <= hard_pri:
            break
        fast = <tuple>pvector[k]
        n = fast[0]
        stage_no = fast[1]
        stage_items = fast[10]
        indices = fast[12]
        trie_plen = fast[5]
        pos = 0
        rules = None
        n_stages = -1  # >= 0: the subtable cannot match; un-wildcard this many stages
        i = 0
        while True:
            if n_tries:  # check_tries before hashing stage i
                stage = stage_no[i]
                skipped = False
                for j in range(n_tries):
                    plen = trie_plen[j]
                    trie = <tuple>PyTuple_GET_ITEM(tries, j)
                    if not plen or <int>trie[3] != stage:
                        continue
                    tword = trie[5]
                    width = trie[1]
                    twide = width > 63
                    if not twide:  # the C copy of the trie, the context in C
                        if not t_done[j]:
                            t_done[j] = True
                            if trie[2] is None or <object>flow[W_DL_TYPE] == trie[2]:
                                t_bits[j] = _ctrie(trie[4]).lookup(flow[tword], &t_plens[j])
                            else:
                                t_bits[j] = 0  # prerequisites not met: never skip
                                t_plens[j] = M64
                        if not (t_plens[j] >> plen) & 1:
                            maskbits = t_bits[j]
                            bits = (((1ULL << maskbits) - 1) << (width - maskbits)
                                    if maskbits else 0)
                            if maskbits <= plen:
                                wc[tword] |= bits
                                skipped = True
                                break
                            if wc[tword] & bits == bits:
                                skipped = True
                                break
                        continue
                    if trie_ctx is None:
                        trie_ctx = [None] * n_tries
                    ctx = trie_ctx[j]
                    if ctx is None:
                        if trie[2] is None or <object>flow[W_DL_TYPE] == trie[2]:
                            ctx = _trie_lookup(trie[4], _get(flow, tword, True))
                        else:
                            ctx = (0, -1)  # prerequisites not met: never skip
                        trie_ctx[j] = ctx
                    plens = ctx[1]
                    if not (plens >> plen) & 1:
                        maskbits = ctx[0]
                        pm = _prefix_mask(maskbits, width)
                        if maskbits <= plen:
                            if pm:
                                _or_obj(wc, tword, twide, pm)
                            skipped = True
                            break
                        if _get(wc, tword, twide) & pm == pm:
                            skipped = True
                            break
                if skipped:
                    n_stages = i
                    break
            # this stage's masked values, after the earlier stages' ones
            items = <tuple>PyTuple_GET_ITEM(stage_items, i)
            for m in range(PyTuple_GET_SIZE(items)):
                item = <tuple>PyTuple_GET_ITEM(items, m)
                s = <int><object>PyTuple_GET_ITEM(item, 0)
                mask = <object>PyTuple_GET_ITEM(item, 1)
                if <bint><object>PyTuple_GET_ITEM(item, 2):
                    buf[pos] = flow[s] & <uint64_t>(mask >> 64)
                    buf[pos + 1] = flow[s + 1] & <uint64_t>(mask & _M64)
                    pos += 2
                else:
                    buf[pos] = flow[s] & <uint64_t>mask
                    pos += 1
            probe = PyBytes_FromStringAndSize(<char *>buf, pos * 8)
            if i < n:
                if PyDict_GetItem(<dict>indices[i], probe) == NULL:
                    n_stages = i + 1
                    break
                i += 1
                continue
            rules = (<dict>fast[13]).get(probe)
            if rules is None:
                ports_mask_len = fast[7]
                if ports_mask_len:
                    # final-stage miss with the ports trie (CVE-2023-5366 fix)
                    ports_mask = <uint64_t>fast[6]
                    pvalue = ((flow[W_TP_SRC] << 16) | flow[W_TP_DST]) & ports_mask
                    maskbits = _ctrie(fast[8]).lookup(pvalue, &port_plens)
                    bits = ports_mask & <uint64_t>_prefix_mask(maskbits, 32)
                    src_bits = (bits >> 16) | wc[W_TP_SRC]
                    dst_bits = (bits & 0xFFFF) | wc[W_TP_DST]
                    for j in range(n + 1):
                        _fold(wc, <tuple>PyTuple_GET_ITEM(stage_items, j))
                    wc[W_TP_SRC] = src_bits
                    wc[W_TP_DST] = dst_bits
                    break
            _fold(wc, <tuple>fast[11])  # a hit, or a miss without ports: all of it
            break
        if n_stages >= 0:
            for j in range(n_stages):
                _fold(wc, <tuple>PyTuple_GET_ITEM(stage_items, j))
            continue
        if rules is not None:
            match = (<list>rules)[0]
            if <long>match.priority > hard_pri:
                hard = match
                hard_pri = match.priority
    return hard


# ------------------------------------------------------------------------------
# Datapath actions

cdef inline int _put_u16(xctx *c, uint16_t v) except -1:
    memcpy(&c.odp[c.odp_len], &v, 2)  # host order, as struct nlattr
    c.odp_len += 2
    return 0


cdef inline void _put_be(uint8_t *p, int n, uint64_t hi, uint64_t lo):
    """``n`` bytes (up to 16) of the value ``hi:lo``, big-endian."""
    cdef int i
    for i in range(n - 1, -1, -1):
        p[i] = <uint8_t>(lo & 0xFF)
        lo = (lo >> 8) | ((hi & 0xFF) << 56)
        hi >>= 8


cdef inline void _put_le(uint8_t *p, int n, uint64_t lo):
    cdef int i
    for i in range(n):
        p[i] = <uint8_t>(lo & 0xFF)
        lo >>= 8


cdef int _emit_nested(xctx *c, int outer, int inner, const uint8_t *payload, int size) except -1:
    """``nla(outer, nla(inner, payload))``; FALLBACK if the buffer is full."""
    cdef int n = 4 + size
    cdef int pad = (-n) & 3
    if c.odp_len + n + pad + 4 > MAX_ODP:
        return FALLBACK
    _put_u16(c, <uint16_t>(n + pad + 4))
    _put_u16(c, <uint16_t>outer)
    _put_u16(c, <uint16_t>n)
    _put_u16(c, <uint16_t>inner)
    memcpy(&c.odp[c.odp_len], payload, size)
    c.odp_len += size
    memset(&c.odp[c.odp_len], 0, pad)
    c.odp_len += pad
    return OK


cdef int _commit(xctx *c, tuple g, bint *committed) except -1:
    """``commit``: a set/set_masked of one key attribute for the fields that changed.

    ``g`` is ``(attr, fields, use_masked, big, padding)``, each field ``(word, bytes,
    writable, wide, full mask low, full mask high)`` (xlate._commit).
    """
    cdef tuple fields = <tuple>g[1]
    cdef Py_ssize_t nf = PyTuple_GET_SIZE(fields), i
    cdef tuple f
    cdef int s, nb, pos = 0, size
    cdef bint wide, writable, same, fully = True, changed = False, big = g[3]
    cdef uint64_t vhi, vlo, mhi, mlo, ohi, olo
    cdef uint8_t key[48]
    cdef uint8_t msk[48]
    cdef uint8_t payload[96]
    committed[0] = False
    for i in range(nf):
        f = <tuple>PyTuple_GET_ITEM(fields, i)
        s = f[0]
        if c.flow[s] != c.base[s] or (f[3] and c.flow[s + 1] != c.base[s + 1]):
            changed = True
            break
    if not changed:
        return OK
    for i in range(nf):
        f = <tuple>PyTuple_GET_ITEM(fields, i)
        s = f[0]
        nb = f[1]
        writable = f[2]
        wide = f[3]
        if wide:
            vhi, vlo = c.flow[s], c.flow[s + 1]
            same = vhi == c.base[s] and vlo == c.base[s + 1]
        else:
            vhi, vlo = 0, c.flow[s]
            same = vlo == c.base[s]
        if same or not writable:
            mhi = mlo = 0
        elif wide:
            mhi, mlo = c.wc[s], c.wc[s + 1]
        else:
            mhi, mlo = 0, c.wc[s]
        # the payload field's all-ones, and the mask cut to it
        if nb >= 16:
            ohi, olo = M64, M64
        elif nb > 8:
            ohi, olo = (1ULL << (8 * (nb - 8))) - 1, M64
        elif nb == 8:
            ohi, olo = 0, M64
        else:
            ohi, olo = 0, (1ULL << (8 * nb)) - 1
        if mhi != ohi or mlo != olo:
            fully = False
            mhi &= ohi
            mlo &= olo
        if big:
            _put_be(&key[pos], nb, vhi, vlo)
            _put_be(&msk[pos], nb, mhi, mlo)
        else:
            _put_le(&key[pos], nb, vlo)
            _put_le(&msk[pos], nb, mlo)
        pos += nb
    for i in range(<int>g[4]):  # the kernel struct's tail padding
        key[pos] = msk[pos] = 0
        pos += 1
    size = pos
    if not fully and g[2]:
        # commit_masked_set_action: the value's unmasked bits are cleared
        for i in range(size):
            payload[i] = key[i] & msk[i]
        memcpy(&payload[size], msk, size)
        if _emit_nested(c, _A_SET_MASKED, g[0], payload, 2 * size):
            return FALLBACK
    else:
        if _emit_nested(c, _A_SET, g[0], key, size):
            return FALLBACK
        if not fully:
            for i in range(nf):
                f = <tuple>PyTuple_GET_ITEM(fields, i)
                s = f[0]
                if f[3]:
                    c.wc[s] |= <uint64_t>f[5]
                    c.wc[s + 1] |= <uint64_t>f[4]
                else:
                    c.wc[s] |= <uint64_t>f[4]
    for i in range(nf):
        f = <tuple>PyTuple_GET_ITEM(fields, i)
        s = f[0]
        c.base[s] = c.flow[s]
        if f[3]:
            c.base[s + 1] = c.flow[s + 1]
    committed[0] = True
    return OK


cdef inline bint _differ(xctx *c, const int *words, int n):
    cdef int i
    for i in range(n):
        if c.flow[words[i]] != c.base[words[i]]:
            return True
    return False


cdef inline bint _is_mpls(uint64_t dl_type):
    return dl_type == ETH_TYPE_MPLS or dl_type == ETH_TYPE_MPLS_MCAST


cdef inline bint _is_ip(uint64_t dl_type):
    return dl_type == ETH_TYPE_IP or dl_type == ETH_TYPE_IPV6


cdef int _commit_actions(xctx *c) except -1:
    """``commit_odp_actions`` (xlate._commit_actions) for what this core changes."""
    cdef bint done, slow = False
    cdef uint64_t proto
    if not _differ(c, _commit_words, _n_commit):
        return OK
    if _commit(c, _G_ETH, &done):
        return FALLBACK
    if _is_mpls(c.base[W_DL_TYPE]) and not _is_mpls(c.flow[W_DL_TYPE]):
        return FALLBACK  # an MPLS pop: the Python translation commits it
    proto = c.flow[W_NW_PROTO]
    if proto:
        if c.base[W_DL_TYPE] == ETH_TYPE_IP:
            if _commit(c, _G_IPV4, &done):
                return FALLBACK
        elif c.base[W_DL_TYPE] == ETH_TYPE_IPV6:
            if _commit(c, _G_IPV6, &done):
                return FALLBACK
            if c.base[W_NW_PROTO] == IPPROTO_ICMPV6:
                if _commit(c, _G_ND, &done):
                    return FALLBACK
                slow |= done
        elif c.base[W_DL_TYPE] == ETH_TYPE_ARP:
            if _commit(c, _G_ARP, &done):
                return FALLBACK
            slow |= done
        if _is_ip(c.base[W_DL_TYPE]):
            g = _G_PORTS.get(<object>proto)
            if g is not None and _commit(c, <tuple>g, &done):
                return FALLBACK
    g = _G_ICMP.get((<object>c.flow[W_DL_TYPE], <object>proto))
    if g is not None:
        if _commit(c, <tuple>g, &done):
            return FALLBACK
        slow |= done
    if _differ(c, _mpls_words, _n_mpls) or _differ(c, _vlan_words, _n_vlan):
        return FALLBACK  # MPLS and VLAN changes are the Python translation's
    if _differ(c, _meta_words, _n_meta):
        if _commit(c, _G_PRIORITY, &done) or _commit(c, _G_MARK, &done):
            return FALLBACK
    if slow:
        c.slow = True
    return OK


# ------------------------------------------------------------------------------
# Translation

cdef int _compose_output(xctx *c, object bridge, uint64_t ofport) except -1:
    """``compose_output_action__`` for a plain datapath port."""
    cdef PyObject *p = PyDict_GetItem(bridge._by_ofport, <object>ofport)
    cdef uint32_t odp
    if p == NULL:
        return OK  # "Nonexistent output port"
    port = <object>p
    if port.no_fwd:
        return OK  # "OFPPC_NO_FWD set, skipping output"
    if port.peer is not None:
        return _patch_output(c, bridge, port)
    if port.tunnel is not None or port.odp_port is None:
        return FALLBACK  # tunnel ports are the Python translation's
    if _commit_actions(c):
        return FALLBACK
    if c.odp_len + 8 > MAX_ODP:
        return FALLBACK
    odp = port.odp_port
    _put_u16(c, 8)
    _put_u16(c, <uint16_t>_A_OUTPUT)
    memcpy(&c.odp[c.odp_len], &odp, 4)
    c.odp_len += 4
    return OK


cdef int _patch_output(xctx *c, object bridge, object port) except -1:
    """``patch_port_output`` (xlate._patch_output): translate on in the peer
    bridge from table 0, the packet entering on the peer port with metadata,
    registers and tunnel metadata cleared and a fresh stack; then the flow,
    the stack and the tunnel wildcards are restored. The base flow keeps what
    the peer committed."""
    cdef uint64_t saved_flow[MAXW]
    cdef uint64_t saved_stack[MAX_STACK]
    cdef uint64_t saved_tnl_wc[MAX_LIST]
    cdef int saved_n_stack = c.n_stack, i, r
    peer = bridge.peer_of(port)
    if peer is None:
        return OK  # "patch port ... has no peer, skipping output"
    peer_bridge, peer_port = peer
    memcpy(saved_flow, c.flow, sizeof(saved_flow))
    memcpy(saved_stack, c.stack, sizeof(saved_stack))
    c.n_stack = 0
    c.flow[W_IN_PORT] = <uint64_t>peer_port.ofport
    for i in range(_n_patch_cleared):
        c.flow[_patch_cleared[i]] = 0
    for i in range(_n_tunnel_wc):
        saved_tnl_wc[i] = c.wc[_tunnel_wc[i]]
        c.wc[_tunnel_wc[i]] = 0
    r = _table_action(c, peer_bridge, c.flow[W_IN_PORT], 0)
    for i in range(_n_tunnel_wc):  # the calling bridge's tunnel wildcards come back
        c.wc[_tunnel_wc[i]] = saved_tnl_wc[i]
    memcpy(c.flow, saved_flow, sizeof(saved_flow))
    memcpy(c.stack, saved_stack, sizeof(saved_stack))
    c.n_stack = saved_n_stack
    return r


cdef int _output(xctx *c, object bridge, uint64_t port) except -1:
    """``xlate_output_action`` for ports, IN_PORT, TABLE, LOCAL and NONE."""
    cdef uint64_t in_port = c.flow[W_IN_PORT]
    if port < OFPP_MAX or port == OFPP_LOCAL:
        if port != in_port:
            return _compose_output(c, bridge, port)
        return OK  # "skipping output to input port"
    if port == OFPP_IN_PORT:
        return _compose_output(c, bridge, in_port)
    if port == OFPP_TABLE:
        return _table_action(c, bridge, in_port, 0)
    if port == OFPP_NONE:
        return OK
    return FALLBACK


cdef object _program(object rule):
    """The rule's compiled actions (None: not translatable here), remembered
    by the rule's payload (the flow, whose actions never change)."""
    payload = rule.payload
    cdef object key = <object>(<Py_ssize_t><void *>payload)
    cdef PyObject *p = PyDict_GetItem(_programs, key)
    if p != NULL and <object>PyTuple_GET_ITEM(<tuple>p, 0) is payload:
        return <object>PyTuple_GET_ITEM(<tuple>p, 1)
    program = _compile(payload.actions)
    if len(_programs) >= PROGRAM_CACHE_MAX:
        _programs.clear()
    _programs[key] = (payload, program)  # holds the payload: its address stays its own
    return program


cdef inline void _mask_all(xctx *c, int s):
    c.wc[s] |= _ones[s]


cdef inline uint64_t _sf_get(xctx *c, tuple op, int at):
    """The value of the subfield ``op[at:at + 6]`` (fastpath._subfield)."""
    cdef int s = op[at]
    cdef uint64_t bits = <uint64_t>op[at + 1]
    cdef int shift = op[at + 2], ofs = op[at + 3]
    return (((c.flow[s] & bits) >> shift) >> ofs) & <uint64_t>op[at + 4]


cdef inline void _sf_mask(xctx *c, tuple op, int at):
    c.wc[<int>op[at]] |= <uint64_t>op[at + 5]


cdef inline void _sf_set(xctx *c, tuple op, int at, uint64_t value):
    """``_set_subfield``: write ``value`` into the subfield ``op[at:at + 6]``."""
    cdef int s = op[at]
    cdef int shift = op[at + 2], ofs = op[at + 3]
    cdef uint64_t m = <uint64_t>op[at + 5]
    cdef uint64_t v = ((value << ofs) << shift) & <uint64_t>op[at + 1]
    c.flow[s] = ((c.flow[s] & ~m) | (v & m)) & _ones[s]


cdef int _do_actions(xctx *c, object bridge, object rule) except -1:
    """``do_xlate_actions`` on a compiled program."""
    cdef object program
    cdef tuple op
    cdef Py_ssize_t i, n
    cdef int code, s
    cdef uint64_t dl_type, v, keep
    cdef int r = OK
    if rule is None:
        return OK  # a miss drops
    program = _program(rule)
    if program is None:
        return FALLBACK
    n = PyTuple_GET_SIZE(program)
    for i in range(n):
        op = <tuple>PyTuple_GET_ITEM(program, i)
        code = <int><object>PyTuple_GET_ITEM(op, 0)
        dl_type = c.flow[W_DL_TYPE]
        if code == OP_SET_WORD:  # a set_field/load of a plain member
            s = op[1]
            c.wc[s] |= <uint64_t>op[2]
            keep = <uint64_t>op[3]
            c.flow[s] = (c.flow[s] & keep) | <uint64_t>op[4]
        elif code == OP_GOTO:
            r = _table_action(c, bridge, c.flow[W_IN_PORT], op[1])
        elif code == OP_OUTPUT:
            r = _output(c, bridge, <uint64_t>op[1])
        elif code == OP_RESUBMIT:
            r = _table_action(c, bridge,
                              c.flow[W_IN_PORT] if op[1] < 0 else <uint64_t>op[1],
                              c.table_id if op[2] < 0 else <int>op[2])
        elif code == OP_SET_ETH:
            s = op[1]
            c.wc[s] |= _ones[s]
            c.flow[s] = <uint64_t>op[2]
        elif code == OP_DEC_TTL:
            _mask_all(c, W_NW_TTL)
            _mask_all(c, W_NW_PROTO)
            if _is_ip(dl_type):
                if c.flow[W_NW_TTL] > 1:
                    c.flow[W_NW_TTL] -= 1
                else:
                    return FALLBACK  # the TTL exception goes to the controller
        elif code == OP_SET_IPV4:
            if dl_type == ETH_TYPE_IP:
                s = op[1]
                _mask_all(c, s)
                _mask_all(c, W_NW_PROTO)
                c.flow[s] = <uint64_t>op[2]
        elif code == OP_SET_TOS:
            if _is_ip(dl_type):
                v = <uint64_t>op[1]  # the bits
                _mask_all(c, W_NW_PROTO)
                c.wc[W_NW_TOS] |= v
                c.flow[W_NW_TOS] = (c.flow[W_NW_TOS] & ~v & 0xFF) | <uint64_t>op[2]
        elif code == OP_SET_TTL:
            if _is_ip(dl_type):
                _mask_all(c, W_NW_PROTO)
                _mask_all(c, W_NW_TTL)
                c.flow[W_NW_TTL] = <uint64_t>op[1]
        elif code == OP_SET_L4:
            if _is_ip(dl_type) and not c.flow[W_NW_FRAG] & FRAG_LATER:
                s = op[1]
                _mask_all(c, W_NW_PROTO)
                _mask_all(c, s)
                c.flow[s] = <uint64_t>op[2]
        elif code == OP_WRITE_METADATA:
            keep = <uint64_t>op[2]  # the mask
            c.flow[W_METADATA] = (c.flow[W_METADATA] & ~keep) | (<uint64_t>op[1] & keep)
        elif code == OP_MOVE:  # source at op[1:7], destination at op[7:13]
            v = _sf_get(c, op, 1)
            _sf_mask(c, op, 1)
            _sf_mask(c, op, 7)
            _sf_set(c, op, 7, v)
        elif code == OP_OUTPUT_REG:
            v = _sf_get(c, op, 1)
            if v <= 0xFFFF:
                _sf_mask(c, op, 1)
                r = _output(c, bridge, v)
        elif code == OP_PUSH:
            if c.n_stack >= MAX_STACK:
                return FALLBACK
            _sf_mask(c, op, 1)
            c.stack[c.n_stack] = _sf_get(c, op, 1)
            c.n_stack += 1
        elif code == OP_POP:
            if c.n_stack == 0:
                return FALLBACK  # "stack underflow" is the Python translation's error
            c.n_stack -= 1
            _sf_mask(c, op, 1)
            _sf_set(c, op, 1, c.stack[c.n_stack] & <uint64_t>op[5])
        else:
            return FALLBACK
        if r:
            return r
    return OK


cdef int _table_action(xctx *c, object bridge, uint64_t in_port, int table_id) except -1:
    """``xlate_table_action`` + ``xlate_recursively``."""
    cdef int old_table = c.table_id, deepens, r
    cdef uint64_t old_in_port, old_src, old_dst
    cdef PyObject *p
    if c.depth >= MAX_DEPTH or c.resubmits >= MAX_RESUBMITS:
        return FALLBACK  # the limits' errors and trace are the Python translation's
    # rule_dpif_lookup_from_table: the lookup sees in_port, and no ports in a fragment
    old_in_port, old_src, old_dst = c.flow[W_IN_PORT], c.flow[W_TP_SRC], c.flow[W_TP_DST]
    if c.flow[W_NW_FRAG] & FRAG_ANY:
        c.flow[W_TP_SRC] = 0
        c.flow[W_TP_DST] = 0
    c.flow[W_IN_PORT] = in_port
    p = PyDict_GetItem(bridge.tables, table_id)
    rule = None if p == NULL else _lookup(<object>p, c.flow, c.wc)
    c.flow[W_IN_PORT], c.flow[W_TP_SRC], c.flow[W_TP_DST] = old_in_port, old_src, old_dst
    c.table_id = table_id
    deepens = table_id <= old_table
    c.resubmits += 1
    c.depth += deepens
    r = _do_actions(c, bridge, rule)
    c.depth -= deepens
    c.table_id = old_table
    return r


cdef void _wc_finish(xctx *c):
    """``xlate_wc_finish`` (xlate._wc_finish)."""
    cdef uint64_t *wc = c.wc
    cdef const uint64_t *f = c.orig
    cdef uint64_t dl_type = f[W_DL_TYPE], ethertype
    cdef int i, tpid, tci
    for i in range(_n_nonpacket):
        wc[_nonpacket[i]] = 0
    if (dl_type == ETH_TYPE_IP and f[W_NW_PROTO] == IPPROTO_ICMP
            or dl_type == ETH_TYPE_IPV6 and f[W_NW_PROTO] == IPPROTO_ICMPV6):
        wc[W_TP_SRC] &= 0xFF
        wc[W_TP_DST] &= 0xFF
    if wc[W_VLAN_TCI]:
        wc[W_VLAN_TCI] |= VLAN_CFI
    if wc[W_VLAN1_TCI]:
        wc[W_VLAN1_TCI] |= VLAN_CFI
    if f[W_NW_FRAG] & FRAG_LATER:
        wc[W_TP_SRC] = 0
        wc[W_TP_DST] = 0
    if not _is_mpls(dl_type):
        for i in range(_n_lse):
            wc[_lse[i]] = 0
    for tpid, tci in ((W_VLAN_TPID, W_VLAN_TCI), (W_VLAN1_TPID, W_VLAN1_TCI)):
        ethertype = f[tpid]
        if ethertype != 0x8100 and ethertype != 0x88A8 and not (ethertype == 0 and f[tci] & VLAN_CFI):
            wc[tpid] = 0
            wc[tci] = 0
    if not (f[W_TUN_DST] or f[W_TUN_IPV6_DST] or f[W_TUN_IPV6_DST + 1]):
        for i in range(_n_tun):
            wc[_tun[i]] = 0


cdef int _xlate(xctx *c, object bridge) except -1:
    """``xlate_actions`` for a flow already in ``c.flow``; FALLBACK or OK."""
    cdef uint64_t *wc = c.wc
    if c.flow[W_TUN_DST] or c.flow[W_TUN_IPV6_DST] or c.flow[W_TUN_IPV6_DST + 1]:
        return FALLBACK  # tunnel receive is the Python translation's
    memcpy(c.base, c.flow, sizeof(c.flow))
    memcpy(c.orig, c.flow, sizeof(c.flow))
    memset(wc, 0, sizeof(c.wc))
    c.odp_len = 0
    c.depth = 0
    c.resubmits = 0
    c.table_id = 0
    c.slow = False
    c.n_stack = 0
    # xlate_wc_init
    wc[W_IN_PORT] = _ones[W_IN_PORT]
    wc[W_DL_TYPE] = _ones[W_DL_TYPE]
    wc[W_RECIRC] = _ones[W_RECIRC]
    if _is_ip(c.flow[W_DL_TYPE]):
        wc[W_NW_FRAG] = FRAG_ANY | FRAG_LATER
    # the first lookup: table 0 at depth 0, not counted as a resubmit
    cdef uint64_t old_src = c.flow[W_TP_SRC], old_dst = c.flow[W_TP_DST]
    cdef PyObject *p
    if c.flow[W_NW_FRAG] & FRAG_ANY:
        c.flow[W_TP_SRC] = 0
        c.flow[W_TP_DST] = 0
    p = PyDict_GetItem(bridge.tables, 0)
    rule = None if p == NULL else _lookup(<object>p, c.flow, c.wc)
    c.flow[W_TP_SRC], c.flow[W_TP_DST] = old_src, old_dst
    if _do_actions(c, bridge, rule):
        return FALLBACK
    if c.slow:
        return FALLBACK  # slow-pathed: the Python translation says why
    _wc_finish(c)
    return OK


# ------------------------------------------------------------------------------
# Entry points

cdef void _from_members(xctx *c, dict members) except *:
    cdef tuple m
    cdef int s
    for m in _members:
        s = m[1]
        value = members[m[0]]
        if m[2]:
            c.flow[s] = <uint64_t>(value >> 64)
            c.flow[s + 1] = <uint64_t>(value & _M64)
        else:
            c.flow[s] = <uint64_t>value


cdef dict _to_members(const uint64_t *w):
    cdef dict out = {}
    cdef tuple m
    for m in _members:
        value = _get(w, m[1], m[2])
        if value:
            out[m[0]] = value
    return out


cdef bytes _key_mask(const uint64_t *wc):
    """The wildcards as a flow-key mask (of_flow.key_mask_of)."""
    cdef bytes out = PyBytes_FromStringAndSize(NULL, KEY_BYTES)
    cdef uint8_t *p = <uint8_t *>PyBytes_AS_STRING(out)
    cdef int i, s, size
    memset(p, 0, KEY_BYTES)
    for i in range(_n_key):
        s = _key_word[i]
        size = _key_size[i]
        if _key_wide[i]:
            _put_be(p + _key_off[i], size, wc[s], wc[s + 1])
        elif _key_big[i]:
            _put_be(p + _key_off[i], size, 0, wc[s])
        else:
            _put_le(p + _key_off[i], size, wc[s])
    if wc[W_IN_PORT]:
        memset(p, 0xFF, 4)
    return out


cdef inline uint64_t _read_be(const uint8_t *p, int n):
    cdef uint64_t v = 0
    cdef int i
    for i in range(n):
        v = (v << 8) | p[i]
    return v


cdef inline uint64_t _read_le(const uint8_t *p, int n):
    cdef uint64_t v = 0
    cdef int i
    for i in range(n - 1, -1, -1):
        v = (v << 8) | p[i]
    return v


cdef int _read_key(xctx *c, bytes raw) except -1:
    """The flow of a 528-byte flow key into ``c.flow`` (``in_port`` 0), as
    ``OfFlow.from_flow_key`` reads it."""
    cdef const uint8_t *p
    cdef int i, s, size
    _check_configured()
    if len(raw) != KEY_BYTES:
        raise ValueError(f"a datapath flow key is {KEY_BYTES} bytes, got {len(raw)}")
    p = <const uint8_t *>PyBytes_AS_STRING(raw)
    memset(c.flow, 0, sizeof(c.flow))
    for i in range(_n_key):
        s = _key_word[i]
        size = _key_size[i]
        if _key_wide[i]:
            c.flow[s] = _read_be(p + _key_off[i], size - 8)
            c.flow[s + 1] = _read_be(p + _key_off[i] + size - 8, 8)
        elif _key_big[i]:
            c.flow[s] = _read_be(p + _key_off[i], size)
        else:
            c.flow[s] = _read_le(p + _key_off[i], size)
    return 0


def xlate_flow(object bridge, dict members):
    """Translate an ``OfFlow``'s member dictionary through ``bridge``.

    Returns ``(datapath actions, wildcards as {member: mask})`` with only the
    non-zero masks, or None when the Python translation must do it.
    """
    cdef xctx c
    _check_configured()
    _from_members(&c, members)
    if _xlate(&c, bridge):
        return None
    return PyBytes_FromStringAndSize(<char *>c.odp, c.odp_len), _to_members(c.wc)


def xlate_key(object bridge, bytes raw, int in_port):
    """Translate the flow of a 528-byte datapath flow key whose input port is
    OpenFlow port ``in_port`` of ``bridge``.

    Returns ``(datapath actions, megaflow mask as a flow-key mask)``, or None
    when the Python translation must do it (also for a packet with an inner
    802.1Q header, which ``vlan-limit`` may change).
    """
    cdef xctx c
    _read_key(&c, raw)
    if c.flow[W_VLAN1_TCI] & VLAN_CFI:
        return None
    c.flow[W_IN_PORT] = in_port
    if _xlate(&c, bridge):
        return None
    return PyBytes_FromStringAndSize(<char *>c.odp, c.odp_len), _key_mask(c.wc)


def xlate_upcall(object bridge, bytes raw, int in_port):
    """:func:`xlate_key` for an upcall: ``(datapath actions, megaflow mask,
    UFID)`` with the UFID ``megaflow.masked_ufid(raw, mask)``, or None."""
    cdef uint8_t both[2 * KEY_BYTES]
    cdef uint8_t ufid[16]
    cdef const uint8_t *k
    cdef const uint8_t *m
    cdef int i
    out = xlate_key(bridge, raw, in_port)
    if out is None:
        return None
    mask = <bytes>out[1]
    k = <const uint8_t *>PyBytes_AS_STRING(raw)
    m = <const uint8_t *>PyBytes_AS_STRING(mask)
    for i in range(KEY_BYTES):
        both[i] = k[i] & m[i]
    memcpy(&both[KEY_BYTES], m, KEY_BYTES)
    _ufid_hash(both, 2 * KEY_BYTES, ufid)
    return out[0], mask, PyBytes_FromStringAndSize(<char *>ufid, 16)


def key_words(bytes raw):
    """The words :func:`xlate_key` reads from a flow key (in_port 0), as a dictionary
    of the non-zero members: for tests against ``OfFlow.from_flow_key``."""
    cdef xctx c
    _read_key(&c, raw)
    return _to_members(c.flow)


def key_mask(dict masks):
    """A member mask dictionary as a flow-key mask, through the words (for tests
    against ``of_flow.key_mask_of``)."""
    cdef xctx c
    _check_configured()
    memset(c.wc, 0, sizeof(c.wc))
    _from_members_wc(&c, masks)
    return _key_mask(c.wc)


cdef void _from_members_wc(xctx *c, dict masks) except *:
    cdef tuple m
    cdef int s
    for m in _members:
        value = masks.get(m[0], 0)
        s = m[1]
        if m[2]:
            c.wc[s] = <uint64_t>(value >> 64)
            c.wc[s + 1] = <uint64_t>(value & _M64)
        else:
            c.wc[s] = <uint64_t>value


def lookup_flow(object cls, dict members, dict masks=None):
    """The classifier ``cls``'s lookup of an ``OfFlow``'s members on words,
    starting from the wildcards ``masks``: ``(rule or None, {member: mask} of
    the non-zero wildcards)``, for tests against ``Classifier.lookup``."""
    cdef xctx c
    _check_configured()
    _from_members(&c, members)
    memset(c.wc, 0, sizeof(c.wc))
    if masks:
        _from_members_wc(&c, masks)
    rule = _lookup(cls, c.flow, c.wc)
    return rule, _to_members(c.wc)


def ctrie_lookup(object trie, uint64_t value):
    """``PrefixTrie.lookup`` through the trie's C copy (tries of at most 63
    bits): ``(maskbits, plens)``, for tests."""
    cdef uint64_t plens
    if trie.n_bits > 63:
        raise ValueError(f"the C copy holds tries of at most 63 bits, not {trie.n_bits}")
    cdef int bits = _ctrie(trie).lookup(value, &plens)
    return bits, plens
