# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled datapath fast path: extract -> (EMC) -> megaflow lookup -> actions.

Private: use :class:`ovsnet.datapath.datapath.Datapath`, which documents what
this models and holds the pure-Python reference it must agree with. This
module is the loop of the kernel's ``ovs_vport_receive`` ->
``ovs_dp_process_packet`` -> ``ovs_execute_actions`` (net/openvswitch/
datapath.c), and of ``dp_netdev_input`` (lib/dpif-netdev.c) when an
exact-match cache fronts the megaflow table: one call runs a whole batch of
packets through extraction, lookup and actions without the GIL, and leaves
the misses for the caller to hand up once per batch.

Packets received on a tunnel vport carry metadata: ``md`` gives each packet
of a batch (or the whole batch) a metadata key, whose tunnel fields, conntrack
state and marks ``flow_key_extract_md`` copies before it parses the packet, as
``ovs_flow_key_extract`` copies the skb's ``ip_tunnel_info``.

Recirculation, upcall replies and ``OVS_PACKET_CMD_EXECUTE`` go through
:meth:`DatapathCore.execute` and :meth:`DatapathCore.recirculate`; both append
to the same action context, so the records of one batch (outputs, userspace
upcalls, recirculations) stay in order.
"""

cimport numpy as cnp
from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memset

from ovsnet._actions cimport (
    ACT_REC_OUTPUT,
    ACT_REC_RECIRC,
    ACT_REC_USERSPACE,
    act_ctx,
    act_ctx_free,
    act_ctx_new,
    act_ctx_reset,
    act_flow_hash_5tuple,
    act_execute,
    act_execute_at,
    act_record,
)
from ovsnet._emc cimport ExactMatchCache, emc_cache, emc_lookup, emc_probabilistic_insert
from ovsnet._flow_key cimport (
    FLOW_KEY_SIZE,
    FLOW_KEY_WORDS,
    check_array,
    check_lengths,
    flow_key,
    flow_key_extract_md,
    flow_key_extract_reuse,
)
from ovsnet._megaflow cimport MegaflowTable, mf_flow, mf_flow_used, mf_lookup, mf_quiesce, mf_table
from ovsnet._packet cimport ovs_hash_add, ovs_hash_add64, ovs_hash_finish

from ovsnet.errors import DatapathError as _DatapathError
from ovsnet.errors import PacketError as _PacketError

cnp.import_array()

cdef extern from * nogil:
    """
    #define _ovsnet_prefetch(p) __builtin_prefetch((p))
    """
    void _prefetch "_ovsnet_prefetch"(const void *p)

cdef enum:
    _ETH_TYPE_IP = 0x0008     # 0x0800 as read from a be16 field on a little-endian host
    _ETH_TYPE_IPV6 = 0xDD86
    _IPPROTO_TCP = 6


cdef inline uint16_t _bswap16(uint16_t v) noexcept nogil:
    return <uint16_t>((v >> 8) | (v << 8))


def flow_hash_5tuple(const uint8_t[::1] key not None, uint32_t basis=0):
    """OVS's flow_hash_5tuple of a KEY_SIZE-byte key, as the datapath computes
    a packet's hash (for tests)."""
    if key.shape[0] != FLOW_KEY_SIZE:
        raise _DatapathError(f"key is {key.shape[0]} bytes: a flow key is {FLOW_KEY_SIZE} bytes")
    cdef flow_key k
    memcpy(&k, &key[0], FLOW_KEY_SIZE)
    return act_flow_hash_5tuple(&k, basis)


cdef inline uint16_t _tcp_flags_host(const flow_key *k) noexcept nogil:
    if k.nw_proto == _IPPROTO_TCP and (k.dl_type == _ETH_TYPE_IP or k.dl_type == _ETH_TYPE_IPV6):
        return _bswap16(k.tcp_flags)
    return 0


cdef const flow_key *_check_md(object md, Py_ssize_t rows, str what,
                               Py_ssize_t *stride) except? NULL:
    # The checks and messages of _check_md in ovsnet/datapath/datapath.py.
    cdef cnp.ndarray a
    if not isinstance(md, cnp.ndarray):
        raise _PacketError(f"md must be a numpy array of dtype uint64, got {type(md).__name__}")
    a = <cnp.ndarray>md
    if a.descr.kind != b'u' or a.descr.itemsize != 8 or not cnp.PyArray_ISNOTSWAPPED(a):
        raise _PacketError(f"md has dtype {a.dtype}: must be uint64")
    if cnp.PyArray_NDIM(a) not in (1, 2):
        raise _PacketError(f"md has {cnp.PyArray_NDIM(a)} dimension(s): must have 1 (one "
                           f"metadata key for every packet) or 2 (a key per {what})")
    if not cnp.PyArray_IS_C_CONTIGUOUS(a):
        raise _PacketError("md must be C-contiguous")
    if cnp.PyArray_DIM(a, cnp.PyArray_NDIM(a) - 1) != FLOW_KEY_WORDS:
        raise _PacketError(f"md has shape {tuple(md.shape)}: a metadata key is {FLOW_KEY_WORDS} "
                           f"uint64 words")
    if cnp.PyArray_NDIM(a) == 2 and cnp.PyArray_DIM(a, 0) < rows:
        raise _PacketError(f"md has {cnp.PyArray_DIM(a, 0)} rows for {rows} {what}s")
    stride[0] = 1 if cnp.PyArray_NDIM(a) == 2 else 0
    return <const flow_key *>cnp.PyArray_DATA(a)


cdef cnp.ndarray _check_rss(object rss_hashes, Py_ssize_t n, str what):
    cdef cnp.ndarray rh = check_array("rss_hashes", rss_hashes, b'u', 4, 1, "uint32")
    if cnp.PyArray_DIM(rh, 0) < n:
        raise _PacketError(f"rss_hashes has {cnp.PyArray_DIM(rh, 0)} entries for {n} {what}")
    return rh


cdef class DatapathCore:
    """The per-datapath state of the fast path: lookup structures, counters,
    the action context that collects a batch's results, and key scratch space.

    ``emc`` is None for the kernel datapath (``system``) and an
    :class:`~ovsnet._emc.ExactMatchCache` for the userspace one (``netdev``).
    Not thread-safe: the owning :class:`Datapath` serialises calls.
    """

    cdef MegaflowTable table
    cdef ExactMatchCache emc
    cdef act_ctx *ctx
    cdef flow_key *keys
    cdef uint32_t *hashes
    cdef uint32_t *miss_idx
    cdef uint32_t *miss_slots
    cdef Py_ssize_t capacity
    cdef uint32_t n_misses
    cdef uint32_t recirc_scan
    # keys[] Geneve option areas hold metadata of an md batch (the plain
    # extraction leaves that area alone, so it is cleared before the next one)
    cdef bint opts_dirty
    # counters of ovs_dp_stats / dpif-netdev's pmd stats
    cdef readonly uint64_t n_hit
    cdef readonly uint64_t n_missed
    cdef readonly uint64_t n_mask_hit
    cdef readonly uint64_t n_emc_hit
    cdef readonly uint64_t n_megaflow_hit
    cdef readonly uint64_t n_packets
    cdef readonly uint64_t n_recirc
    # packets the action executor dropped at the kernel's limits
    cdef uint64_t dropped_recursion_done
    cdef uint64_t dropped_deferred_done

    def __cinit__(self, MegaflowTable table not None, ExactMatchCache emc=None):
        self.table = table
        self.emc = emc
        self.ctx = act_ctx_new()
        if self.ctx == NULL:
            raise MemoryError()
        self.keys = NULL
        self.hashes = NULL
        self.miss_idx = NULL
        self.miss_slots = NULL
        self.capacity = 0

    def __dealloc__(self):
        if self.ctx != NULL:
            act_ctx_free(self.ctx)
        free(self.keys)
        free(self.hashes)
        free(self.miss_idx)
        free(self.miss_slots)

    cdef void _reset_ctx(self) noexcept nogil:
        # The executor's counters restart with each batch; keep the totals here.
        self.dropped_recursion_done += self.ctx.n_dropped_recursion
        self.dropped_deferred_done += self.ctx.n_dropped_deferred
        act_ctx_reset(self.ctx)

    cdef int _reserve(self, Py_ssize_t n) except -1:
        cdef flow_key *keys
        cdef uint32_t *hashes
        cdef uint32_t *misses
        if n <= self.capacity:
            return 0
        keys = <flow_key *>realloc(self.keys, n * sizeof(flow_key))
        if keys == NULL:
            raise MemoryError()
        # Extraction with _reuse never writes the Geneve option area: zero it once.
        memset(keys + self.capacity, 0, (n - self.capacity) * sizeof(flow_key))
        self.keys = keys
        hashes = <uint32_t *>realloc(self.hashes, n * sizeof(uint32_t))
        if hashes == NULL:
            raise MemoryError()
        self.hashes = hashes
        misses = <uint32_t *>realloc(self.miss_idx, n * sizeof(uint32_t))
        if misses == NULL:
            raise MemoryError()
        self.miss_idx = misses
        misses = <uint32_t *>realloc(self.miss_slots, n * sizeof(uint32_t))
        if misses == NULL:
            raise MemoryError()
        self.miss_slots = misses
        self.capacity = n
        return 0

    cdef void _clear_opts(self, Py_ssize_t n) noexcept nogil:
        cdef Py_ssize_t i
        for i in range(n):
            memset(self.keys[i].tun_opts, 0, sizeof(self.keys[i].tun_opts))

    def process(self, data, lengths, in_ports, Py_ssize_t n=-1, uint64_t now_ms=0,
                rss_hashes=None, md=None):
        """Run packets ``0..n-1`` of a batch through the datapath.

        ``data`` is a C-contiguous (slots, slot_size) uint8 array, ``lengths``
        int32 and ``in_ports`` uint32 arrays with at least ``n`` entries
        (``n = len(lengths)`` by default), ``rss_hashes`` optional uint32
        hashes as a NIC would supply (else the 5-tuple hash is computed).
        ``md`` optional metadata keys: a C-contiguous uint64 array of shape
        (KEY_WORDS,) for every packet or (>= n, KEY_WORDS) with a row per
        packet; the key of a packet is its row's metadata (everything outside
        the packet fields) with ``in_port`` from ``in_ports``.
        Everything is checked before the C loop runs. Returns the number of
        misses; their indices, keys and hashes stay available (:meth:`misses`)
        until the next call, and so do the action records.
        """
        cdef cnp.ndarray d = check_array("data", data, b'u', 1, 2, "uint8")
        cdef cnp.ndarray ls = check_array("lengths", lengths, b'i', 4, 1, "int32")
        cdef cnp.ndarray ps = check_array("in_ports", in_ports, b'u', 4, 1, "uint32")
        cdef cnp.ndarray rh = None
        cdef Py_ssize_t slot = cnp.PyArray_DIM(d, 1)
        cdef Py_ssize_t i
        cdef const flow_key *mdp = NULL
        cdef Py_ssize_t md_stride = 0
        if n < 0:
            n = cnp.PyArray_DIM(ls, 0)
        if n > cnp.PyArray_DIM(ls, 0) or n > cnp.PyArray_DIM(ps, 0) or n > cnp.PyArray_DIM(d, 0):
            raise _PacketError(
                f"n={n} packets, but the batch has {cnp.PyArray_DIM(d, 0)} slots, "
                f"{cnp.PyArray_DIM(ls, 0)} lengths and {cnp.PyArray_DIM(ps, 0)} in_ports"
            )
        if rss_hashes is not None:
            rh = _check_rss(rss_hashes, n, "packets")
        if md is not None:
            mdp = _check_md(md, n, "packet", &md_stride)
        cdef const int32_t *lens = <const int32_t *>cnp.PyArray_DATA(ls)
        check_lengths(lens, n, slot)
        self._reserve(n)
        self._reset_ctx()
        mf_quiesce(self.table.c)  # no flow pointer is held between batches
        self.recirc_scan = 0
        cdef const uint8_t *base = <const uint8_t *>cnp.PyArray_DATA(d)
        cdef const uint32_t *ports = <const uint32_t *>cnp.PyArray_DATA(ps)
        cdef const uint32_t *given = <const uint32_t *>cnp.PyArray_DATA(rh) if rh is not None else NULL
        cdef emc_cache *emc = self.emc.c if self.emc is not None else NULL
        cdef mf_table *tbl = self.table.c
        cdef int rc = 0
        with nogil:
            self._prepare_keys(mdp)
            rc = self._run(tbl, emc, base, slot, lens, ports, given, mdp, md_stride, NULL, n,
                           now_ms)
        if rc < 0:
            raise MemoryError("datapath: out of memory while executing actions")
        return self.n_misses

    cdef void _prepare_keys(self, const flow_key *md) noexcept nogil:
        if md != NULL:
            self.opts_dirty = True
        elif self.opts_dirty:
            self._clear_opts(self.capacity)
            self.opts_dirty = False

    cdef int _run(self, mf_table *tbl, emc_cache *emc, const uint8_t *base, Py_ssize_t slot,
                  const int32_t *lens, const uint32_t *ports, const uint32_t *given,
                  const flow_key *md, Py_ssize_t md_stride, const uint32_t *idx, Py_ssize_t n,
                  uint64_t now_ms) noexcept nogil:
        # Packet i of the batch is slot idx[i] of the buffers (slot i without idx);
        # its metadata key, if any, is md[s * md_stride].
        cdef Py_ssize_t i, s
        cdef flow_key *k
        cdef const uint8_t *pkt
        cdef uint32_t h, n_mask_hit, nmiss = 0
        cdef mf_flow *flow
        for i in range(n):
            s = idx[i] if idx != NULL else i
            k = self.keys + i
            pkt = base + s * slot
            if i + 2 < n:
                # The next packets' headers, while this one is looked up (as
                # dp_netdev_input and the NIC drivers prefetch).
                _prefetch(base + (idx[i + 2] if idx != NULL else i + 2) * slot)
            if md != NULL:
                flow_key_extract_md(pkt, <size_t>lens[s], md + s * md_stride, k)
                k.in_port = ports[s]
            else:
                flow_key_extract_reuse(pkt, <size_t>lens[s], ports[s], k)
            h = given[s] if given != NULL else act_flow_hash_5tuple(k, 0)
            self.hashes[i] = h
            flow = NULL
            if emc != NULL:
                flow = emc_lookup(emc, k, h)
                if flow != NULL:
                    self.n_emc_hit += 1
            if flow == NULL:
                n_mask_hit = 0
                flow = mf_lookup(tbl, k, h, &n_mask_hit)
                self.n_mask_hit += n_mask_hit
                if flow != NULL:
                    self.n_megaflow_hit += 1
                    if emc != NULL:
                        emc_probabilistic_insert(emc, k, h, flow)
            if flow == NULL:
                self.miss_idx[nmiss] = <uint32_t>i
                self.miss_slots[nmiss] = <uint32_t>s
                nmiss += 1
                continue
            mf_flow_used(flow, <uint32_t>lens[s], _tcp_flags_host(k), now_ms)
            if act_execute(self.ctx, pkt, <uint32_t>lens[s], k, flow.actions,
                           flow.actions_len) < 0:
                self.n_misses = nmiss
                return -1
        self.n_packets += n
        self.n_hit += n - nmiss
        self.n_missed += nmiss
        self.n_misses = nmiss
        return 0

    cdef bint _only_outputs(self) noexcept nogil:
        cdef uint32_t r
        for r in range(self.ctx.n_recs):
            if self.ctx.recs[r].kind != ACT_REC_OUTPUT:
                return False
        return True

    cdef uint32_t _count_outputs(self) noexcept nogil:
        cdef uint32_t r, c = 0
        for r in range(self.ctx.n_recs):
            if self.ctx.recs[r].kind == ACT_REC_OUTPUT:
                c += 1
        return c

    def run_bursts(self, data, lengths, in_ports, order, Py_ssize_t start=0,
                   Py_ssize_t burst=32, uint64_t now_ms=0, rss_hashes=None, md=None):
        """Feed the packets ``data[order[start:]]`` to the datapath ``burst`` at a
        time, as a poll-mode thread feeds its rx bursts: all in one C loop.

        Each burst's records are counted and dropped (its outputs
        "transmitted"). Stops after the first burst that needs the slow path
        (misses, ``userspace`` or ``recirc`` records) and leaves that burst's
        records in place for the caller (:meth:`misses` gives the misses'
        slots in ``data``). ``rss_hashes`` (uint32 per slot) are the hashes a
        NIC computes in hardware, used instead of computing the 5-tuple hash;
        ``md`` metadata keys as for :meth:`process`, one row per slot.
        Returns ``(next_start, outputs, stopped)``.
        """
        cdef cnp.ndarray d = check_array("data", data, b'u', 1, 2, "uint8")
        cdef cnp.ndarray ls = check_array("lengths", lengths, b'i', 4, 1, "int32")
        cdef cnp.ndarray ps = check_array("in_ports", in_ports, b'u', 4, 1, "uint32")
        cdef cnp.ndarray od = check_array("order", order, b'u', 4, 1, "uint32")
        cdef cnp.ndarray rh = None
        cdef Py_ssize_t slots = cnp.PyArray_DIM(d, 0)
        cdef Py_ssize_t slot = cnp.PyArray_DIM(d, 1)
        cdef Py_ssize_t total = cnp.PyArray_DIM(od, 0)
        cdef Py_ssize_t i, pos, m
        cdef const flow_key *mdp = NULL
        cdef Py_ssize_t md_stride = 0
        cdef const int32_t *lens = <const int32_t *>cnp.PyArray_DATA(ls)
        cdef const uint32_t *idx = <const uint32_t *>cnp.PyArray_DATA(od)
        if cnp.PyArray_DIM(ls, 0) < slots or cnp.PyArray_DIM(ps, 0) < slots:
            raise _PacketError(f"data has {slots} slots but lengths/in_ports are shorter")
        if rss_hashes is not None:
            rh = _check_rss(rss_hashes, slots, "slots")
        if md is not None:
            mdp = _check_md(md, slots, "slot", &md_stride)
        if burst < 1 or not 0 <= start <= total:
            raise _PacketError(f"burst={burst} start={start}: burst must be >= 1, start in 0..{total}")
        check_lengths(lens, slots, slot)
        for i in range(total):
            if idx[i] >= <uint32_t>slots:
                raise _PacketError(f"order[{i}] = {idx[i]}: data has {slots} slots")
        self._reserve(burst)
        cdef emc_cache *emc = self.emc.c if self.emc is not None else NULL
        cdef mf_table *tbl = self.table.c
        cdef const uint8_t *base = <const uint8_t *>cnp.PyArray_DATA(d)
        cdef const uint32_t *ports = <const uint32_t *>cnp.PyArray_DATA(ps)
        cdef const uint32_t *given = <const uint32_t *>cnp.PyArray_DATA(rh) if rh is not None else NULL
        cdef uint64_t outputs = 0
        cdef int rc = 0
        cdef bint stopped = False
        pos = start
        with nogil:
            self._prepare_keys(mdp)
            while pos < total:
                m = burst if total - pos > burst else total - pos
                self._reset_ctx()
                mf_quiesce(tbl)
                self.recirc_scan = 0
                rc = self._run(tbl, emc, base, slot, lens, ports, given, mdp, md_stride, idx + pos,
                               m, now_ms)
                pos += m
                if rc < 0:
                    break
                if self.n_misses or not self._only_outputs():
                    stopped = True
                    break
                outputs += self._count_outputs()
        if rc < 0:
            raise MemoryError("datapath: out of memory while executing actions")
        return pos, outputs, stopped

    def misses(self):
        """``[(slot, key bytes, hash), ...]`` of the last batch's misses; ``slot``
        indexes the ``data`` buffer the batch came from."""
        cdef uint32_t j, i
        out = []
        for j in range(self.n_misses):
            i = self.miss_idx[j]
            out.append((self.miss_slots[j], (<char *>(self.keys + i))[:FLOW_KEY_SIZE], self.hashes[i]))
        return out

    def execute(self, const uint8_t[::1] packet not None, const uint8_t[::1] key not None,
                const uint8_t[::1] actions not None):
        """Execute validated ``actions`` on one packet with its ``key``, appending
        to this batch's records (``OVS_PACKET_CMD_EXECUTE``, upcall replies)."""
        if key.shape[0] != FLOW_KEY_SIZE:
            raise _DatapathError(f"key is {key.shape[0]} bytes: a flow key is {FLOW_KEY_SIZE} bytes")
        cdef flow_key k
        memcpy(&k, &key[0], FLOW_KEY_SIZE)
        cdef const uint8_t *p = &packet[0] if packet.shape[0] else NULL
        cdef const uint8_t *a = &actions[0] if actions.shape[0] else NULL
        cdef int rc
        with nogil:
            rc = act_execute(self.ctx, p, <uint32_t>packet.shape[0], &k, a,
                             <uint32_t>actions.shape[0])
        if rc < 0:
            raise MemoryError("datapath: out of memory while executing actions")

    def reset(self):
        """Forget the records of the current batch (start a new one)."""
        self._reset_ctx()
        self.recirc_scan = 0
        self.n_misses = 0

    def recirculate(self, uint64_t now_ms=0):
        """Look up every packet recirculated since the last call (``recirc``
        records not yet processed): hits execute their flow's actions (which
        may recirculate again), misses are returned as ``[(key bytes, packet
        bytes, hash), ...]`` for an upcall. Call until :attr:`pending_recirc`
        is 0."""
        cdef uint32_t end = self.ctx.n_recs
        cdef uint32_t r
        cdef act_record rec
        cdef flow_key k
        cdef uint32_t h, n_mask_hit
        cdef mf_flow *flow
        cdef bytes pkt
        misses = []
        r = self.recirc_scan
        while r < end:
            rec = self.ctx.recs[r]
            r += 1
            if rec.kind != ACT_REC_RECIRC:
                continue
            pkt = (<char *>(self.ctx.data + rec.data_ofs))[:rec.data_len]
            flow_key_extract_md(<const uint8_t *>pkt, rec.data_len, self.ctx.keys + rec.key_idx, &k)
            h = act_flow_hash_5tuple(&k, 0)
            self.n_recirc += 1
            self.n_packets += 1
            n_mask_hit = 0
            flow = mf_lookup(self.table.c, &k, h, &n_mask_hit)
            self.n_mask_hit += n_mask_hit
            if flow == NULL:
                self.n_missed += 1
                misses.append(((<char *>&k)[:FLOW_KEY_SIZE], pkt, h))
                continue
            self.n_hit += 1
            self.n_megaflow_hit += 1
            mf_flow_used(flow, rec.data_len, _tcp_flags_host(&k), now_ms)
            if act_execute_at(self.ctx, <const uint8_t *>pkt, rec.data_len, &k, flow.actions,
                              flow.actions_len, rec.level, rec.deferred) < 0:
                raise MemoryError("datapath: out of memory while executing actions")
        self.recirc_scan = end
        return misses

    @property
    def pending_recirc(self):
        """Recirculation records not yet looked up."""
        cdef uint32_t r, n = 0
        for r in range(self.recirc_scan, self.ctx.n_recs):
            if self.ctx.recs[r].kind == ACT_REC_RECIRC:
                n += 1
        return n

    @property
    def n_dropped_recursion(self):
        """Executions refused above the kernel's OVS_RECURSION_LIMIT."""
        return self.dropped_recursion_done + self.ctx.n_dropped_recursion

    @property
    def n_dropped_deferred(self):
        """Packets dropped because the deferred-action FIFO was full."""
        return self.dropped_deferred_done + self.ctx.n_dropped_deferred

    @property
    def n_records(self):
        return self.ctx.n_recs

    def count_outputs(self):
        """Number of ``output`` records of the current batch (cheap; for benchmarks)."""
        return self._count_outputs()

    def records(self):
        """The current batch's records as Python tuples, in order:
        ``("output", port, packet, tunnel_key or None)``,
        ``("userspace", pid, packet, key, userdata)``,
        ``("recirc", packet, key)``."""
        cdef uint32_t r
        cdef act_record rec
        out = []
        for r in range(self.ctx.n_recs):
            rec = self.ctx.recs[r]
            pkt = (<char *>(self.ctx.data + rec.data_ofs))[:rec.data_len]
            key = None
            if rec.key_idx != 0xFFFFFFFF:
                key = (<char *>(self.ctx.keys + rec.key_idx))[:FLOW_KEY_SIZE]
            if rec.kind == ACT_REC_OUTPUT:
                out.append(("output", rec.port, pkt, key))
            elif rec.kind == ACT_REC_USERSPACE:
                ud = (<char *>(self.ctx.data + rec.userdata_ofs))[:rec.userdata_len]
                out.append(("userspace", rec.port, pkt, key, ud))
            elif rec.kind == ACT_REC_RECIRC:
                out.append(("recirc", pkt, key))
        return out
