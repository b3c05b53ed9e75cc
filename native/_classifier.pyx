# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled lookup of the OpenFlow classifier, with OVS's wildcard tracking.

Private: use :class:`ovsnet.ofproto.classifier.Classifier`, which documents
what is modelled (lib/classifier.c ``classifier_lookup__``, ``find_match_wc``,
``check_tries``, ``trie_lookup_value``) and holds the pure-Python reference
this module must agree with, rule for rule and wildcard bit for wildcard bit.

The classifier's own Python structures are shared, not copied: every
subtable carries a ``fast`` tuple (built by ``_Subtable.refresh_fast``) of

    (n_indices, stage_no, stage_items, indices, rules, trie_plen,
     ports_mask, ports_mask_len, ports_trie, mask)

whose dicts and lists are the very objects insertion and removal update, and
the classifier passes its subtables in lookup order with their maximum
priorities. Only the lookup is compiled; insertion, removal and the tries'
contents stay in Python.
"""

from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE, PyTuple_New, PyTuple_SET_ITEM


cdef inline object _dget(dict d, object key):
    """``d.get(key, 0)``."""
    cdef PyObject *p = PyDict_GetItem(d, key)
    if p == NULL:
        return 0
    return <object>p


cdef inline void _or_into(dict masks, object member, object mask):
    """``masks[member] = masks.get(member, 0) | mask`` (``flow_wildcards`` OR)."""
    cdef PyObject *p = PyDict_GetItem(masks, member)
    if p == NULL:
        PyDict_SetItem(masks, member, mask)
    else:
        PyDict_SetItem(masks, member, (<object>p) | mask)


cdef inline void _fold_stages(tuple stage_items, Py_ssize_t n_stages, dict masks):
    """``no_match:``: OR in the mask bits of the first ``n_stages`` stages."""
    cdef Py_ssize_t i, j
    cdef tuple items, item
    for i in range(n_stages):
        items = <tuple>PyTuple_GET_ITEM(stage_items, i)
        for j in range(PyTuple_GET_SIZE(items)):
            item = <tuple>PyTuple_GET_ITEM(items, j)
            _or_into(masks, <object>PyTuple_GET_ITEM(item, 0), <object>PyTuple_GET_ITEM(item, 1))


cdef object _ONE = 1


cdef inline object _prefix_mask(int n, int width):
    """The first ``n`` bits of a ``width``-bit field (a Python int: fields reach 128 bits)."""
    cdef unsigned long long m
    if n <= 0:
        return 0
    if width <= 64:
        m = 0xFFFFFFFFFFFFFFFFULL if n >= 64 else ((1ULL << n) - 1)
        return m << (width - n)
    return ((_ONE << n) - 1) << (width - n)


def trie_lookup(object trie, object value):
    """``PrefixTrie.lookup`` (``trie_lookup_value``): ``(maskbits, plens)`` for ``value``."""
    return _trie_lookup(trie, value)


cdef tuple _trie_lookup(object trie, object value):
    cdef int n = trie.n_bits
    cdef list covered = trie._covered
    cdef dict stored_by_len = trie._stored
    cdef dict stored
    cdef object plens = 0
    cdef int plen, lo, hi, mid, depth
    for plen_obj, stored_obj in stored_by_len.items():
        plen = plen_obj
        if (value >> (n - plen)) in <dict>stored_obj:
            plens |= _ONE << plen
    if not trie._n:
        return 0, plens
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi + 1) >> 1
        if (value >> (n - mid)) in <dict>covered[mid]:
            lo = mid
        else:
            hi = mid - 1
    depth = lo
    if depth >= n:
        return n, plens
    here = value >> (n - depth)
    stored_obj = stored_by_len.get(depth)
    if stored_obj is not None and here in <dict>stored_obj:
        other = (value >> (n - depth - 1)) ^ 1
        if other not in <dict>covered[depth + 1]:
            return depth, plens
    return depth + 1, plens


def lookup_wc(list pvector, list priorities, tuple tries, dict flow, dict masks):
    """``classifier_lookup__`` with wildcard tracking; returns the rule or None.

    ``pvector`` holds the subtables' ``fast`` tuples in lookup order and
    ``priorities`` their maximum priorities; ``tries`` the classifier's tries
    as ``(member, width, dl_type, stage, PrefixTrie)``; ``flow`` an
    ``OfFlow``'s member dict; ``masks`` a ``FlowWildcards``' dict, updated in
    place.
    """
    cdef Py_ssize_t n_tries = PyTuple_GET_SIZE(tries)
    cdef list trie_ctx = [None] * n_tries
    cdef object hard = None
    cdef long hard_pri = -1
    cdef long max_pri
    cdef Py_ssize_t k, n_sub = len(pvector)
    cdef tuple fast, stage_no, stage_items, items, item, trie_plen, trie, ctx, acc, grown
    cdef list indices
    cdef Py_ssize_t n_acc
    cdef dict rules_by_value
    cdef Py_ssize_t n, i, j, m, n_stages
    cdef int stage, plen, maskbits, width, ports_mask_len
    cdef bint skipped
    cdef object rules, member, pm, plens, value
    cdef unsigned long ports_mask, pvalue, bits
    for k in range(n_sub):
        max_pri = priorities[k]
        if max_pri <= hard_pri:
            break
        fast = <tuple>pvector[k]
        n = fast[0]
        stage_no = fast[1]
        stage_items = fast[2]
        indices = fast[3]
        rules_by_value = fast[4]
        trie_plen = fast[5]
        acc = ()
        rules = None
        n_stages = -1  # >= 0: the subtable cannot match; un-wildcard this many stages
        i = 0
        while True:
            # check_tries before hashing stage i (the final stage when i == n)
            if n_tries:
                stage = stage_no[i]
                skipped = False
                for j in range(n_tries):
                    plen = trie_plen[j]
                    trie = <tuple>PyTuple_GET_ITEM(tries, j)
                    if not plen or <int>trie[3] != stage:
                        continue
                    ctx = trie_ctx[j]
                    if ctx is None:
                        if trie[2] is None or flow["dl_type"] == trie[2]:
                            ctx = _trie_lookup(trie[4], flow[trie[0]])
                        else:
                            ctx = (0, -1)  # prerequisites not met: every length, never skip
                        trie_ctx[j] = ctx
                    plens = ctx[1]
                    if not (plens >> plen) & 1:
                        maskbits = ctx[0]
                        width = trie[1]
                        pm = _prefix_mask(maskbits, width)
                        if maskbits <= plen:
                            if pm:
                                _or_into(masks, trie[0], pm)
                            skipped = True
                            break
                        if _dget(masks, trie[0]) & pm == pm:
                            skipped = True
                            break
                if skipped:
                    n_stages = i
                    break
            # the masked values hashed so far, this stage's appended
            items = <tuple>PyTuple_GET_ITEM(stage_items, i)
            n_acc = PyTuple_GET_SIZE(acc)
            grown = PyTuple_New(n_acc + PyTuple_GET_SIZE(items))
            for m in range(n_acc):
                value = <object>PyTuple_GET_ITEM(acc, m)
                Py_INCREF(value)
                PyTuple_SET_ITEM(grown, m, value)
            for m in range(PyTuple_GET_SIZE(items)):
                item = <tuple>PyTuple_GET_ITEM(items, m)
                value = (flow[<object>PyTuple_GET_ITEM(item, 0)]
                         & <object>PyTuple_GET_ITEM(item, 1))
                Py_INCREF(value)
                PyTuple_SET_ITEM(grown, n_acc + m, value)
            acc = grown
            if i < n:
                if acc not in <dict>indices[i]:
                    n_stages = i + 1
                    break
                i += 1
                continue
            rules = rules_by_value.get(acc)
            if rules is None:
                ports_mask_len = fast[7]
                if ports_mask_len:
                    # final-stage miss with the ports trie (CVE-2023-5366 fix)
                    ports_mask = fast[6]
                    pvalue = ((<unsigned long>flow["tp_src"] << 16)
                              | <unsigned long>flow["tp_dst"]) & ports_mask
                    maskbits = _trie_lookup(fast[8], pvalue)[0]
                    bits = ports_mask & (<unsigned long>_prefix_mask(maskbits, 32))
                    src_bits = (bits >> 16) | _dget(masks, "tp_src")
                    dst_bits = (bits & 0xFFFF) | _dget(masks, "tp_dst")
                    _fold_stages(stage_items, n + 1, masks)
                    masks["tp_src"] = src_bits
                    masks["tp_dst"] = dst_bits
                    break
            # a hit, or a final-stage miss without ports: the whole mask counts
            for item in <tuple>fast[9]:
                _or_into(masks, <object>PyTuple_GET_ITEM(item, 0),
                         <object>PyTuple_GET_ITEM(item, 1))
            break
        if n_stages >= 0:
            _fold_stages(stage_items, n_stages, masks)
            continue
        if rules is not None:
            match = (<list>rules)[0]
            if <long>match.priority > hard_pri:
                hard = match
                hard_pri = match.priority
    return hard


# ------------------------------------------------------------------------------
# Flow-key conversions of ovsnet.ofproto.of_flow (OfFlow.from_flow_key,
# key_mask_of): the same layout table, read or written in one C loop.

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_Copy
from libc.stdint cimport uint64_t
from libc.string cimport memset

DEF MAX_KEY_MEMBERS = 64
DEF KEY_BYTES = 528

cdef int _n_key = 0
cdef int _key_off[MAX_KEY_MEMBERS]
cdef int _key_size[MAX_KEY_MEMBERS]
cdef bint _key_big[MAX_KEY_MEMBERS]
cdef tuple _key_names = ()
cdef dict _key_index = {}
cdef dict _zero = {}
cdef object _M64 = (1 << 64) - 1


def set_key_layout(tuple members, dict zero):
    """Register ``of_flow.KEY_MEMBERS`` ((member, offset, size, byte order), ...)
    and the all-zero member dict a new flow starts from."""
    global _n_key, _key_names, _key_index, _zero
    cdef int i
    if len(members) > MAX_KEY_MEMBERS:
        raise ValueError(f"at most {MAX_KEY_MEMBERS} key members, got {len(members)}")
    for i, (name, off, size, order) in enumerate(members):
        if size not in (1, 2, 4, 6, 8, 16) or off < 0 or off + size > KEY_BYTES:
            raise ValueError(f"key member {name}: offset {off} size {size} is not supported")
        _key_off[i] = off
        _key_size[i] = size
        _key_big[i] = order == "big"
    _n_key = len(members)
    _key_names = tuple(m[0] for m in members)
    _key_index = {m[0]: i for i, m in enumerate(members)}
    _zero = dict(zero)


cdef inline uint64_t _read(const unsigned char *p, int size, bint big):
    cdef uint64_t v = 0
    cdef int k
    if big:
        for k in range(size):
            v = (v << 8) | p[k]
    else:
        for k in range(size - 1, -1, -1):
            v = (v << 8) | p[k]
    return v


cdef inline void _write(unsigned char *p, int size, bint big, uint64_t v):
    cdef int k
    if big:
        for k in range(size - 1, -1, -1):
            p[k] = v & 0xFF
            v >>= 8
    else:
        for k in range(size):
            p[k] = v & 0xFF
            v >>= 8


def key_members(bytes raw):
    """The member dict of ``OfFlow.from_flow_key`` for a 528-byte key (in_port not set)."""
    if len(raw) != KEY_BYTES:
        raise ValueError(f"a datapath flow key is {KEY_BYTES} bytes, got {len(raw)}")
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(raw)
    cdef dict d = PyDict_Copy(_zero)
    cdef int i, off, size
    cdef object value
    for i in range(_n_key):
        off = _key_off[i]
        size = _key_size[i]
        if size == 16:
            value = ((<object>_read(p + off, 8, True)) << 64) | _read(p + off + 8, 8, True)
        else:
            value = _read(p + off, size, _key_big[i])
        PyDict_SetItem(d, <object>PyTuple_GET_ITEM(_key_names, i), value)
    return d


def key_mask(dict masks):
    """``of_flow.key_mask_of``: per-member masks as a 528-byte flow-key mask."""
    cdef bytes out = PyBytes_FromStringAndSize(NULL, KEY_BYTES)
    cdef unsigned char *p = <unsigned char *>PyBytes_AS_STRING(out)
    cdef PyObject *idx
    cdef int i, off, size
    memset(p, 0, KEY_BYTES)
    for member, bits in masks.items():
        if not bits:
            continue
        idx = PyDict_GetItem(_key_index, member)
        if idx == NULL:
            if member == "in_port":
                memset(p, 0xFF, 4)
            continue
        i = <object>idx
        off = _key_off[i]
        size = _key_size[i]
        if size == 16:
            _write(p + off, 8, True, (bits >> 64) & _M64)
            _write(p + off + 8, 8, True, bits & _M64)
        else:
            _write(p + off, size, _key_big[i], bits & ((<object>1 << (8 * size)) - 1))
    return out


# ------------------------------------------------------------------------------
# Megaflow UFIDs of ovsnet.datapath.megaflow (derive_ufid, masked_ufid), which
# holds their pure-Python reference and exports these when built: the upcall
# handler names every flow it installs by one.

from libc.stdint cimport uint8_t, uint32_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from ovsnet._packet cimport ovs_hash_add, ovs_hash_finish

from ovsnet.errors import DatapathError as _DatapathError


cdef inline uint32_t _load_le32(const uint8_t *p) noexcept nogil:
    return (<uint32_t>p[0] | (<uint32_t>p[1] << 8)
            | (<uint32_t>p[2] << 16) | (<uint32_t>p[3] << 24))


cdef void _ufid_hash(const uint8_t *p, size_t n, uint8_t *out) noexcept nogil:
    """OVS ``hash_bytes(p, n, i)`` for i in 0..3, each stored little-endian in
    ``out[4*i:4*i+4]``: the four hashes run side by side in one pass."""
    cdef uint32_t h[4]
    cdef uint32_t w, tail = 0
    cdef size_t i = 0
    cdef size_t k
    cdef int j
    for j in range(4):
        h[j] = <uint32_t>j
    while i + 4 <= n:
        w = _load_le32(p + i)
        for j in range(4):
            h[j] = ovs_hash_add(h[j], w)
        i += 4
    if i < n:
        for k in range(n - i):
            tail |= <uint32_t>p[i + k] << (8 * k)
        for j in range(4):
            h[j] = ovs_hash_add(h[j], tail)
    for j in range(4):
        # hash_bytes passes the size_t length to a uint32_t: it truncates.
        w = ovs_hash_finish(h[j], <uint32_t>n)
        out[4 * j] = w & 0xFF
        out[4 * j + 1] = (w >> 8) & 0xFF
        out[4 * j + 2] = (w >> 16) & 0xFF
        out[4 * j + 3] = w >> 24


def derive_ufid(const uint8_t[::1] masked_key not None, const uint8_t[::1] mask not None):
    """``megaflow.derive_ufid``: the four words ``hash_bytes(masked_key + mask, i)``."""
    cdef Py_ssize_t nk = masked_key.shape[0]
    cdef Py_ssize_t nm = mask.shape[0]
    cdef uint8_t out[16]
    cdef uint8_t *buf = <uint8_t *>malloc(<size_t>(nk + nm) if nk + nm else 1)
    if buf == NULL:
        raise MemoryError()
    with nogil:
        if nk:
            memcpy(buf, &masked_key[0], <size_t>nk)
        if nm:
            memcpy(buf + nk, &mask[0], <size_t>nm)
        _ufid_hash(buf, <size_t>(nk + nm), out)
    free(buf)
    return PyBytes_FromStringAndSize(<const char *>out, 16)


def masked_ufid(const uint8_t[::1] key not None, const uint8_t[::1] mask not None):
    """``megaflow.masked_ufid``: ``derive_ufid(key & mask, mask)`` without
    building the masked key as a Python object."""
    cdef Py_ssize_t n = key.shape[0]
    cdef Py_ssize_t i
    cdef uint8_t out[16]
    cdef uint8_t *buf
    if mask.shape[0] != n:
        raise _DatapathError(f"mask is {mask.shape[0]} bytes: must be as long as the key "
                             f"({n} bytes)")
    buf = <uint8_t *>malloc(<size_t>(2 * n) if n else 1)
    if buf == NULL:
        raise MemoryError()
    with nogil:
        for i in range(n):
            buf[i] = key[i] & mask[i]
        if n:
            memcpy(buf + n, &mask[0], <size_t>n)
        _ufid_hash(buf, <size_t>(2 * n), out)
    free(buf)
    return PyBytes_FromStringAndSize(<const char *>out, 16)
