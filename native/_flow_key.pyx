# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled flow key extraction: OVS's miniflow_extract over a flat key struct.

Private: use :mod:`ovsnet.datapath.flow_key`, which documents the key layout
and what extraction models (Open vSwitch's userspace ``miniflow_extract`` in
lib/flow.c, into a struct shaped like the kernel's ``sw_flow_key``), and holds
the pure-Python reference implementation this module must agree with byte for
byte. The struct and the C-level entry points are declared in
ovsnet/_flow_key.pxd so that the megaflow table module can cimport them.

Every Python-level function checks its arguments first and raises the same
exceptions as the reference; the C code then runs ``with nogil``, reads only
inside the buffers it was given and cannot fail.
"""

cimport numpy as cnp
from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memset

from ovsnet.errors import PacketError as _PacketError

cnp.import_array()

KEY_SIZE = FLOW_KEY_SIZE
KEY_WORDS = FLOW_KEY_WORDS

cdef enum:
    _ETH_TYPE_IP = 0x0800
    _ETH_TYPE_ARP = 0x0806
    _ETH_TYPE_RARP = 0x8035
    _ETH_TYPE_IPV6 = 0x86DD
    _ETH_TYPE_NSH = 0x894F
    _ETH_TYPE_VLAN_8021Q = 0x8100
    _ETH_TYPE_VLAN_8021AD = 0x88A8
    _ETH_TYPE_MPLS = 0x8847
    _ETH_TYPE_MPLS_MCAST = 0x8848
    _ETH_TYPE_MIN = 0x600
    _DL_TYPE_NONE = 0x05FF


# ---------------------------------------------------------------------------
# Byte access. Packet bytes are read one at a time or with memcpy, so nothing
# depends on alignment; compilers turn these into single loads and stores.
# ---------------------------------------------------------------------------

cdef inline uint16_t _rd16(const uint8_t *p) noexcept nogil:
    return (<uint16_t>p[0] << 8) | p[1]


cdef inline uint32_t _rd32(const uint8_t *p) noexcept nogil:
    return ((<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16)
            | (<uint32_t>p[2] << 8) | p[3])


cdef inline void _st16(void *dst, uint16_t v) noexcept nogil:
    cdef uint8_t *d = <uint8_t *>dst
    d[0] = <uint8_t>(v >> 8)
    d[1] = <uint8_t>v


cdef inline void _st32(void *dst, uint32_t v) noexcept nogil:
    cdef uint8_t *d = <uint8_t *>dst
    d[0] = <uint8_t>(v >> 24)
    d[1] = <uint8_t>(v >> 16)
    d[2] = <uint8_t>(v >> 8)
    d[3] = <uint8_t>v


cdef inline bint _is_zero6(const uint8_t *a) noexcept nogil:
    return (a[0] | a[1] | a[2] | a[3] | a[4] | a[5]) == 0


# ---------------------------------------------------------------------------
# Extraction (lib/flow.c: miniflow_extract, parse_vlan, parse_ethertype,
# parse_mpls, ipv4_sanity_check, ipv6_sanity_check, parse_ipv6_ext_hdrs__,
# parse_icmpv6)
# ---------------------------------------------------------------------------

cdef void _parse_nd(const uint8_t *p, size_t size, flow_key *k) noexcept nogil:
    # p is just past the 8-byte ICMPv6 header of a Neighbor Solicitation or
    # Advertisement with code 0.
    cdef const uint8_t *target
    cdef size_t opt_len
    cdef uint8_t opt_type = 0
    if size < 16:
        return
    target = p
    p += 16
    size -= 16
    while size >= 8:
        opt_len = <size_t>p[1] * 8
        if opt_len == 0 or opt_len > size:
            break
        if opt_len == 8 and (p[0] == 1 or p[0] == 2):
            # A second SLL (or TLL) option invalidates the message: OVS then
            # drops target and both addresses but keeps the option type.
            if p[0] == 1:
                if not _is_zero6(k.arp_sha):
                    memset(k.arp_sha, 0, 12)
                    _st16(&k.tcp_flags, opt_type)
                    return
                memcpy(k.arp_sha, p + 2, 6)
            else:
                if not _is_zero6(k.arp_tha):
                    memset(k.arp_sha, 0, 12)
                    _st16(&k.tcp_flags, opt_type)
                    return
                memcpy(k.arp_tha, p + 2, 6)
            if opt_type == 0:
                opt_type = p[0]
        p += opt_len
        size -= opt_len
    memcpy(k.nd_target, target, 16)
    _st16(&k.tcp_flags, opt_type)


cdef void _parse_nsh(const uint8_t *p, size_t size, flow_key *k) noexcept nogil:
    # parse_nsh: version 0 only; MD type 1 must be 24 bytes and carries four
    # context words, MD type 2 (at least the 8-byte base) is not parsed.
    cdef uint16_t vftl
    cdef size_t length
    cdef uint8_t mdtype
    if size < 8:
        return
    vftl = _rd16(p)
    length = <size_t>(vftl & 0x3F) * 4
    if length > size or (vftl >> 14) != 0:
        return
    mdtype = p[2]
    if (mdtype == 1 and length != 24) or (mdtype == 2 and length < 8):
        return
    k.nsh_flags = (vftl >> 12) & 3
    k.nsh_ttl = (vftl >> 6) & 0x3F
    k.nsh_mdtype = mdtype
    k.nsh_np = p[3]
    memcpy(&k.nsh_path_hdr, p + 4, 4)
    if mdtype == 1:
        memcpy(k.nsh_c, p + 8, 16)


cdef void _parse(const uint8_t *p, size_t size, flow_key *k) noexcept nogil:
    # Fills the packet fields of k, which the caller has zeroed. 'size' is
    # always the number of bytes left at p; every read is checked against it.
    cdef uint16_t eth_type, dl_type, frag_off, offlg, plen, tot_len, op
    cdef uint32_t tc_flow
    cdef size_t ip_len, hlen
    cdef uint8_t nw_frag = 0, nw_tos, nw_ttl, nw_proto, icmp_type, icmp_code
    cdef int n
    cdef bint bos

    if size < 14:
        return
    memcpy(k.dl_dst, p, 12)             # dl_dst and dl_src, as in the frame
    p += 12
    size -= 12

    # parse_vlan: up to two tags, each needing 4 bytes plus an ethertype.
    eth_type = _rd16(p)
    if eth_type == _ETH_TYPE_VLAN_8021Q or eth_type == _ETH_TYPE_VLAN_8021AD:
        if size >= 6:
            memcpy(&k.vlan_tpid, p, 4)
            (<uint8_t *>&k.vlan_tci)[0] |= 0x10     # VLAN_CFI: tag present
            p += 4
            size -= 4
            eth_type = _rd16(p)
            if ((eth_type == _ETH_TYPE_VLAN_8021Q or eth_type == _ETH_TYPE_VLAN_8021AD)
                    and size >= 6):
                memcpy(&k.vlan1_tpid, p, 4)
                (<uint8_t *>&k.vlan1_tci)[0] |= 0x10
                p += 4
                size -= 4

    # parse_ethertype: 802.3 length frames are 0x05ff unless LLC/SNAP.
    dl_type = _rd16(p)
    p += 2
    size -= 2
    if dl_type < _ETH_TYPE_MIN:
        if (size >= 8 and p[0] == 0xAA and p[1] == 0xAA and p[2] == 0x03
                and p[3] == 0 and p[4] == 0 and p[5] == 0):
            dl_type = _rd16(p + 6)
            p += 8
            size -= 8
            if dl_type < _ETH_TYPE_MIN:
                dl_type = _DL_TYPE_NONE
        else:
            dl_type = _DL_TYPE_NONE
    _st16(&k.dl_type, dl_type)

    if dl_type == _ETH_TYPE_IP:
        if size < 20:
            return
        ip_len = <size_t>(p[0] & 0x0F) * 4
        if ip_len < 20 or size < ip_len:
            return
        tot_len = _rd16(p + 2)
        if tot_len > size or ip_len > tot_len or size - tot_len > 0xFFFF:
            return
        size = tot_len                  # never look at Ethernet padding
        memcpy(&k.nw_src, p + 12, 8)    # nw_src and nw_dst
        nw_tos = p[1]
        nw_ttl = p[8]
        nw_proto = p[9]
        frag_off = _rd16(p + 6)
        if frag_off & 0x3FFF:           # more-fragments flag or an offset
            nw_frag = FLOW_FRAG_ANY
            if frag_off & 0x1FFF:
                nw_frag = FLOW_FRAG_ANY | FLOW_FRAG_LATER
        p += ip_len
        size -= ip_len
    elif dl_type == _ETH_TYPE_IPV6:
        if size < 40:
            return
        plen = _rd16(p + 4)
        if <size_t>plen + 40 > size or size - (<size_t>plen + 40) > 0xFFFF:
            return
        memcpy(k.ipv6_src, p + 8, 32)   # ipv6_src and ipv6_dst
        tc_flow = _rd32(p)
        nw_tos = <uint8_t>(tc_flow >> 20)
        nw_ttl = p[7]
        nw_proto = p[6]
        p += 40
        size = plen
        # Extension headers; a chain cut short keeps only the addresses.
        while True:
            if nw_proto == 0 or nw_proto == 43 or nw_proto == 60 or nw_proto == 51:
                if size < 8:
                    return
                if nw_proto == 51:      # AH counts 4-byte units, less 2
                    hlen = (<size_t>p[1] + 2) * 4
                else:
                    hlen = (<size_t>p[1] + 1) * 8
                nw_proto = p[0]
                if size < hlen:
                    return
                p += hlen
                size -= hlen
            elif nw_proto == 44:        # fragment header
                if size < 8:
                    return
                nw_proto = p[0]
                offlg = _rd16(p + 2)
                p += 8
                size -= 8
                if offlg != 0:
                    nw_frag = FLOW_FRAG_ANY
                    if offlg & 0xFFF8:  # only first fragments have L4 headers
                        nw_frag = FLOW_FRAG_ANY | FLOW_FRAG_LATER
                        nw_proto = 44
                        break
            else:
                break
        _st32(&k.ipv6_label, tc_flow & 0xFFFFF)
    elif dl_type == _ETH_TYPE_ARP or dl_type == _ETH_TYPE_RARP:
        if (size >= 28 and p[0] == 0 and p[1] == 1 and p[2] == 0x08 and p[3] == 0
                and p[4] == 6 and p[5] == 4):
            memcpy(&k.nw_src, p + 14, 4)
            memcpy(&k.nw_dst, p + 24, 4)
            op = _rd16(p + 6)
            if op <= 0xFF:              # OVS keeps only an 8-bit opcode
                k.nw_proto = <uint8_t>op
            memcpy(k.arp_sha, p + 8, 6)
            memcpy(k.arp_tha, p + 18, 6)
        return
    elif dl_type == _ETH_TYPE_NSH:
        _parse_nsh(p, size, k)
        return
    elif dl_type == _ETH_TYPE_MPLS or dl_type == _ETH_TYPE_MPLS_MCAST:
        n = 0
        while size >= 4:
            if n < 3:
                memcpy(&k.mpls_lse[n], p, 4)
            n += 1
            bos = p[2] & 1              # bottom of stack
            p += 4
            size -= 4
            if bos:
                break
        return
    else:
        return

    k.nw_frag = nw_frag
    k.nw_tos = nw_tos
    k.nw_ttl = nw_ttl
    k.nw_proto = nw_proto
    if nw_frag & FLOW_FRAG_LATER:
        return
    if nw_proto == 6:                   # TCP
        if size >= 20:
            hlen = <size_t>(p[12] >> 4) * 4
            if hlen >= 20 and size >= hlen:
                memcpy(&k.tp_src, p, 4)
                _st16(&k.tcp_flags, _rd16(p + 12) & 0x0FFF)
    elif nw_proto == 17:                # UDP
        if size >= 8:
            memcpy(&k.tp_src, p, 4)
    elif nw_proto == 132:               # SCTP
        if size >= 12:
            memcpy(&k.tp_src, p, 4)
    elif nw_proto == 1 or nw_proto == 2:    # ICMP, IGMP: type and code
        if size >= 8:
            _st16(&k.tp_src, p[0])
            _st16(&k.tp_dst, p[1])
            if nw_proto == 2:
                memcpy(&k.igmp_group_ip4, p + 4, 4)
    elif nw_proto == 58:                # ICMPv6
        if size >= 8:
            icmp_type = p[0]
            icmp_code = p[1]
            _st16(&k.tp_src, icmp_type)
            _st16(&k.tp_dst, icmp_code)
            if icmp_code == 0 and (icmp_type == 135 or icmp_type == 136):
                memcpy(&k.igmp_group_ip4, p + 4, 4)
                _parse_nd(p + 8, size - 8, k)


cdef void flow_key_extract(const uint8_t *data, size_t size, uint32_t in_port,
                           flow_key *key) noexcept nogil:
    memset(key, 0, sizeof(flow_key))
    key.in_port = in_port
    _parse(data, size, key)


cdef void flow_key_extract_reuse(const uint8_t *data, size_t size, uint32_t in_port,
                                 flow_key *key) noexcept nogil:
    memset(key, 0, FLOW_KEY_TUN_OPTS_OFS)
    key.in_port = in_port
    _parse(data, size, key)


cdef void flow_key_extract_md(const uint8_t *data, size_t size, const flow_key *md,
                              flow_key *key) noexcept nogil:
    if md != key:
        memcpy(key, md, FLOW_KEY_PACKET_OFS)
        memcpy(<uint8_t *>key + FLOW_KEY_PACKET_END, <const uint8_t *>md + FLOW_KEY_PACKET_END,
               FLOW_KEY_SIZE - FLOW_KEY_PACKET_END)
    memset(<uint8_t *>key + FLOW_KEY_PACKET_OFS, 0, FLOW_KEY_PACKET_END - FLOW_KEY_PACKET_OFS)
    _parse(data, size, key)


# ---------------------------------------------------------------------------
# Python-level entry points
# ---------------------------------------------------------------------------

def field_offsets():
    """{field name: (offset, size)} of the compiled struct, for the layout check."""
    cdef flow_key k
    cdef size_t base = <size_t>&k

    def at(size_t addr, size_t size):
        return (addr - base, size)

    return {
        "in_port": at(<size_t>&k.in_port, 4),
        "recirc_id": at(<size_t>&k.recirc_id, 4),
        "dp_hash": at(<size_t>&k.dp_hash, 4),
        "skb_mark": at(<size_t>&k.skb_mark, 4),
        "priority": at(<size_t>&k.priority, 4),
        "ct_zone": at(<size_t>&k.ct_zone, 2),
        "ct_state": at(<size_t>&k.ct_state, 1),
        "ct_mark": at(<size_t>&k.ct_mark, 4),
        "dl_dst": at(<size_t>&k.dl_dst[0], sizeof(k.dl_dst)),
        "dl_src": at(<size_t>&k.dl_src[0], sizeof(k.dl_src)),
        "dl_type": at(<size_t>&k.dl_type, 2),
        "vlan_tpid": at(<size_t>&k.vlan_tpid, 2),
        "vlan_tci": at(<size_t>&k.vlan_tci, 2),
        "vlan1_tpid": at(<size_t>&k.vlan1_tpid, 2),
        "vlan1_tci": at(<size_t>&k.vlan1_tci, 2),
        "mpls_lse0": at(<size_t>&k.mpls_lse[0], 4),
        "mpls_lse1": at(<size_t>&k.mpls_lse[1], 4),
        "mpls_lse2": at(<size_t>&k.mpls_lse[2], 4),
        "nw_src": at(<size_t>&k.nw_src, 4),
        "nw_dst": at(<size_t>&k.nw_dst, 4),
        "nw_frag": at(<size_t>&k.nw_frag, 1),
        "nw_tos": at(<size_t>&k.nw_tos, 1),
        "nw_ttl": at(<size_t>&k.nw_ttl, 1),
        "nw_proto": at(<size_t>&k.nw_proto, 1),
        "ipv6_label": at(<size_t>&k.ipv6_label, 4),
        "tp_src": at(<size_t>&k.tp_src, 2),
        "tp_dst": at(<size_t>&k.tp_dst, 2),
        "tcp_flags": at(<size_t>&k.tcp_flags, 2),
        "igmp_group_ip4": at(<size_t>&k.igmp_group_ip4, 4),
        "ipv6_src": at(<size_t>&k.ipv6_src[0], sizeof(k.ipv6_src)),
        "ipv6_dst": at(<size_t>&k.ipv6_dst[0], sizeof(k.ipv6_dst)),
        "nd_target": at(<size_t>&k.nd_target[0], sizeof(k.nd_target)),
        "arp_sha": at(<size_t>&k.arp_sha[0], sizeof(k.arp_sha)),
        "arp_tha": at(<size_t>&k.arp_tha[0], sizeof(k.arp_tha)),
        "nsh_flags": at(<size_t>&k.nsh_flags, 1),
        "nsh_ttl": at(<size_t>&k.nsh_ttl, 1),
        "nsh_mdtype": at(<size_t>&k.nsh_mdtype, 1),
        "nsh_np": at(<size_t>&k.nsh_np, 1),
        "nsh_path_hdr": at(<size_t>&k.nsh_path_hdr, 4),
        "nsh_c1": at(<size_t>&k.nsh_c[0], 4),
        "nsh_c2": at(<size_t>&k.nsh_c[1], 4),
        "nsh_c3": at(<size_t>&k.nsh_c[2], 4),
        "nsh_c4": at(<size_t>&k.nsh_c[3], 4),
        "ct_label": at(<size_t>&k.ct_label[0], sizeof(k.ct_label)),
        "tun_id": at(<size_t>&k.tun_id, 8),
        "tun_ipv4_src": at(<size_t>&k.tun_ipv4_src, 4),
        "tun_ipv4_dst": at(<size_t>&k.tun_ipv4_dst, 4),
        "tun_ipv6_src": at(<size_t>&k.tun_ipv6_src[0], sizeof(k.tun_ipv6_src)),
        "tun_ipv6_dst": at(<size_t>&k.tun_ipv6_dst[0], sizeof(k.tun_ipv6_dst)),
        "tun_tp_src": at(<size_t>&k.tun_tp_src, 2),
        "tun_tp_dst": at(<size_t>&k.tun_tp_dst, 2),
        "tun_flags": at(<size_t>&k.tun_flags, 2),
        "tun_tos": at(<size_t>&k.tun_tos, 1),
        "tun_ttl": at(<size_t>&k.tun_ttl, 1),
        "tun_opts_len": at(<size_t>&k.tun_opts_len, 1),
        "tun_opts": at(<size_t>&k.tun_opts[0], sizeof(k.tun_opts)),
    }


if sizeof(flow_key) != FLOW_KEY_SIZE:
    raise ImportError(f"struct flow_key is {sizeof(flow_key)} bytes, expected {FLOW_KEY_SIZE}")


def extract(const uint8_t[::1] packet not None, uint32_t in_port, md=None):
    """The key of one frame as KEY_SIZE bytes; md is None or a metadata key (bytes)."""
    cdef flow_key key
    cdef const uint8_t[::1] m
    cdef const uint8_t *data = &packet[0] if packet.shape[0] else NULL
    cdef size_t size = <size_t>packet.shape[0]
    if md is None:
        with nogil:
            flow_key_extract(data, size, in_port, &key)
    else:
        m = md
        if m.shape[0] != FLOW_KEY_SIZE:
            raise _PacketError(f"md is {m.shape[0]} bytes: a flow key is {FLOW_KEY_SIZE} bytes")
        with nogil:
            flow_key_extract_md(data, size, <const flow_key *>&m[0], &key)
    return (<char *>&key)[:FLOW_KEY_SIZE]


cdef object check_array(str name, object arr, char kind, int itemsize, int ndim, str want):
    # The checks and messages of _check_array in ovsnet/datapath/flow_key.py,
    # made with C-level numpy access: they cost nanoseconds, not microseconds.
    cdef cnp.ndarray a
    cdef cnp.dtype dt
    if not isinstance(arr, cnp.ndarray):
        raise _PacketError(f"{name} must be a numpy array of dtype {want}, got {type(arr).__name__}")
    a = <cnp.ndarray>arr
    dt = a.descr
    if dt.kind != kind or dt.itemsize != itemsize or not cnp.PyArray_ISNOTSWAPPED(a):
        raise _PacketError(f"{name} has dtype {a.dtype}: must be {want}")
    if cnp.PyArray_NDIM(a) != ndim:
        raise _PacketError(f"{name} has {cnp.PyArray_NDIM(a)} dimension(s): must have {ndim}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(a):
        raise _PacketError(f"{name} must be C-contiguous")
    return a


cdef int check_lengths(const int32_t *lens, Py_ssize_t n, Py_ssize_t slot) except -1:
    cdef Py_ssize_t i
    for i in range(n):
        if lens[i] < 0 or lens[i] > slot:
            raise _PacketError(
                f"packet {i} of the batch has length {lens[i]}: "
                f"must be in 0..{slot} (the slot size)"
            )
    return 0


def extract_batch(batch, keys_out):
    """Write the key of packet i of batch into keys_out[i] (see flow_key.extract_batch)."""
    cdef cnp.ndarray data = check_array("batch.data", batch.data, b'u', 1, 2, "uint8")
    cdef cnp.ndarray lengths = check_array("batch.lengths", batch.lengths, b'i', 4, 1, "int32")
    cdef cnp.ndarray in_ports = check_array("batch.in_ports", batch.in_ports, b'u', 4, 1, "uint32")
    cdef cnp.ndarray out = check_array("keys_out", keys_out, b'u', 8, 2, "uint64")
    cdef Py_ssize_t n = cnp.PyArray_DIM(lengths, 0)
    cdef Py_ssize_t slot = cnp.PyArray_DIM(data, 1)
    cdef Py_ssize_t i
    cdef const uint8_t *d = <const uint8_t *>cnp.PyArray_DATA(data)
    cdef const int32_t *lens = <const int32_t *>cnp.PyArray_DATA(lengths)
    cdef const uint32_t *ports = <const uint32_t *>cnp.PyArray_DATA(in_ports)
    cdef flow_key *keys = <flow_key *>cnp.PyArray_DATA(out)
    if cnp.PyArray_DIM(in_ports, 0) != n:
        raise _PacketError(f"batch has {n} lengths but {cnp.PyArray_DIM(in_ports, 0)} in_ports")
    if n > cnp.PyArray_DIM(data, 0):
        raise _PacketError(f"batch has {n} lengths but only {cnp.PyArray_DIM(data, 0)} slots")
    if cnp.PyArray_DIM(out, 1) != FLOW_KEY_WORDS or cnp.PyArray_DIM(out, 0) < n:
        raise _PacketError(
            f"keys_out has shape {tuple(keys_out.shape)}: must be (n, {FLOW_KEY_WORDS}) "
            f"with n >= {n} (the number of packets)"
        )
    if not cnp.PyArray_ISWRITEABLE(out):
        raise _PacketError("keys_out is read-only")
    check_lengths(lens, n, slot)
    with nogil:
        for i in range(n):
            flow_key_extract(d + i * slot, <size_t>lens[i], ports[i], keys + i)
