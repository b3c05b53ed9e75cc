# cython: language_level=3
"""C-level declarations of ovsnet._flow_key, for other Cython modules to cimport.

    from ovsnet._flow_key cimport flow_key, FLOW_KEY_WORDS, flow_key_extract

The flow key is a flat, 8-byte-aligned struct in the spirit of the kernel's
``struct sw_flow_key`` (net/openvswitch/flow.h), holding the fields of Open
vSwitch's userspace ``struct flow``. A megaflow table treats it as
``FLOW_KEY_WORDS`` uint64 words: AND with a mask word by word over a byte
range, hash the result with OVS's hash_words (ovsnet._packet), compare.

Byte order: fields read from the packet (dl_*, vlan*, mpls_lse, nw_*, ipv6_*,
tp_*, tcp_flags, igmp_group_ip4, nd_target, arp_*, nsh_path_hdr, nsh_c) are in
network byte order,
as on the wire, so that a mask is the same bytes as the header it covers.
Metadata (in_port, recirc_id, dp_hash, skb_mark, priority, ct_zone, ct_state,
ct_mark, tun_flags, tun_tos, tun_ttl, tun_opts_len) is in host byte order;
ct_label, tun_id and the tunnel addresses and ports are network order.

Every padding byte is zero in an extracted key. The layout table that
describes this struct to Python is FIELDS in ovsnet/datapath/flow_key.py;
ovsnet._flow_key checks at import time that the two agree.

Nothing here raises: callers validate their buffers first.
"""

from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t, uint64_t

# Bytes and uint64 words of a key; bytes of Geneve options it can hold.
cdef enum:
    FLOW_KEY_SIZE = 528
    FLOW_KEY_WORDS = 66
    FLOW_KEY_GENEVE_OPTS_MAX = 256

# nw_frag bits (FLOW_NW_FRAG_* of include/openvswitch/flow.h).
cdef enum:
    FLOW_FRAG_ANY = 1
    FLOW_FRAG_LATER = 2

# Byte ranges of the key: metadata [0, 32), packet fields [32, 192),
# ct_label and tunnel [192, 272), Geneve options [272, 528).
cdef enum:
    FLOW_KEY_PACKET_OFS = 32
    FLOW_KEY_PACKET_END = 192
    FLOW_KEY_TUN_OPTS_OFS = 272


cdef struct flow_key:
    # --- metadata (words 0-3) -------------------------------------------
    uint32_t in_port            #   0  odp_port the packet came in on
    uint32_t recirc_id          #   4
    uint32_t dp_hash            #   8
    uint32_t skb_mark           #  12
    uint32_t priority           #  16
    uint16_t ct_zone            #  20
    uint8_t ct_state            #  22
    uint8_t pad0                #  23
    uint32_t ct_mark            #  24
    uint32_t pad1               #  28
    # --- Ethernet, VLAN, MPLS (words 4-8) -------------------------------
    uint8_t dl_dst[6]           #  32
    uint8_t dl_src[6]           #  38
    uint16_t dl_type            #  44  be16
    uint16_t pad2               #  46
    uint16_t vlan_tpid          #  48  be16, outer tag
    uint16_t vlan_tci           #  50  be16, 0x1000 (CFI) set when present
    uint16_t vlan1_tpid         #  52  be16, inner tag
    uint16_t vlan1_tci          #  54
    uint32_t mpls_lse[3]        #  56  be32 each, outermost first
    uint32_t pad3               #  68
    # --- IPv4 and L4 (words 9-12) ---------------------------------------
    uint32_t nw_src             #  72  be32, IPv4 src / ARP SPA
    uint32_t nw_dst             #  76  be32, IPv4 dst / ARP TPA
    uint8_t nw_frag             #  80  FLOW_FRAG_*
    uint8_t nw_tos              #  81
    uint8_t nw_ttl              #  82
    uint8_t nw_proto            #  83  also the ARP opcode (if <= 255)
    uint32_t ipv6_label         #  84  be32
    uint16_t tp_src             #  88  be16; ICMP/IGMP type
    uint16_t tp_dst             #  90  be16; ICMP/IGMP code
    uint16_t tcp_flags          #  92  be16; ND: option type
    uint16_t pad4               #  94
    uint32_t igmp_group_ip4     #  96  be32; ND: reserved word
    uint32_t pad5               # 100
    # --- IPv6, ND, ARP addresses (words 13-20) --------------------------
    uint8_t ipv6_src[16]        # 104
    uint8_t ipv6_dst[16]        # 120
    uint8_t nd_target[16]       # 136
    uint8_t arp_sha[6]          # 152  also ND SLL
    uint8_t arp_tha[6]          # 158  also ND TLL
    uint32_t pad6               # 164
    # --- NSH (words 21-23) ----------------------------------------------
    uint8_t nsh_flags           # 168
    uint8_t nsh_ttl             # 169
    uint8_t nsh_mdtype          # 170
    uint8_t nsh_np              # 171
    uint32_t nsh_path_hdr       # 172  be32: SPI << 8 | SI
    uint32_t nsh_c[4]           # 176  be32 each, MD type 1 contexts
    # --- conntrack label, tunnel (words 24-33) --------------------------
    uint8_t ct_label[16]        # 192  big-endian 128-bit
    uint64_t tun_id             # 208  be64
    uint32_t tun_ipv4_src       # 216  be32
    uint32_t tun_ipv4_dst       # 220  be32
    uint8_t tun_ipv6_src[16]    # 224
    uint8_t tun_ipv6_dst[16]    # 240
    uint16_t tun_tp_src         # 256  be16
    uint16_t tun_tp_dst         # 258  be16
    uint16_t tun_flags          # 260  FLOW_TNL_F_*
    uint8_t tun_tos             # 262
    uint8_t tun_ttl             # 263
    uint8_t tun_opts_len        # 264
    uint8_t pad7[7]             # 265
    # --- Geneve options (words 34-65), last -----------------------------
    uint8_t tun_opts[256]       # 272


# Extract the key of the 'size'-byte Ethernet frame at 'data' into 'key'
# (every byte of it written), with in_port as the only metadata. 'data' may
# be NULL when size == 0. Mirrors OVS's miniflow_extract (lib/flow.c).
cdef void flow_key_extract(const uint8_t *data, size_t size, uint32_t in_port,
                           flow_key *key) noexcept nogil

# The same, except that the Geneve option area [272, 528) is not written: for
# a caller that reuses its own key buffers and knows that area is zero (it
# zeroed them once and fills them only with this function). Saves zeroing a
# third of the key per packet.
cdef void flow_key_extract_reuse(const uint8_t *data, size_t size, uint32_t in_port,
                                 flow_key *key) noexcept nogil

# The same with all metadata (the first 32 bytes and bytes 192..528, i.e.
# metadata, ct_label, tunnel and Geneve options) copied from 'md', e.g. the
# key of a packet before recirculation. 'md' and 'key' may be the same key.
cdef void flow_key_extract_md(const uint8_t *data, size_t size, const flow_key *md,
                              flow_key *key) noexcept nogil


# The batch-array checks of the Python API (dtype kind and size, native byte
# order, dimensions, C-contiguity), raising PacketError with the messages of
# ovsnet/datapath/flow_key.py's _check_array; for every compiled batch entry.
# Returns the array (a numpy.ndarray; typed object so that this file needs no
# numpy headers).
cdef object check_array(str name, object arr, char kind, int itemsize, int ndim, str want)

# Raise PacketError unless every one of the n lengths is in 0..slot (the
# packets of a batch fit their slots).
cdef int check_lengths(const int32_t *lens, Py_ssize_t n, Py_ssize_t slot) except -1
