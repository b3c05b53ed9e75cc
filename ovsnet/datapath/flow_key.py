"""Flow keys: the fixed-size record the datapath extracts from every packet.

What this models, and which parts of Open vSwitch and Linux it mirrors:

* **The key layout** is a flat, 8-byte-aligned C struct like the kernel's
  ``struct sw_flow_key`` (``net/openvswitch/flow.h``): :data:`KEY_SIZE` bytes,
  compared, masked and hashed as :data:`KEY_WORDS` uint64 words over a byte
  range, so a megaflow table ANDs key and mask word by word. Its fields are
  the ones of Open vSwitch's userspace ``struct flow``
  (``include/openvswitch/flow.h``), with the same sharing: ``nw_src``/``nw_dst``
  hold IPv4 addresses or ARP SPA/TPA, ``nw_proto`` holds the ARP opcode,
  ``arp_sha``/``arp_tha`` the ND SLL/TLL, ``tcp_flags`` the ND option type and
  ``igmp_group_ip4`` the ND reserved word. Fields read from the packet are in
  network byte order, as on the wire; metadata (``in_port``, ``recirc_id``,
  ``dp_hash``, ``skb_mark``, ``priority``, ``ct_*``, ``tun_flags``) is in host
  byte order, as in the kernel. The 256-byte Geneve option area comes last,
  so lookups that do not match on options never touch it. :data:`FIELDS` is
  the layout table (name, offset, size, kind); ``docs/datapath.md`` draws it.

* **Extraction** follows OVS's userspace ``miniflow_extract()`` /
  ``flow_extract()`` (``lib/flow.c``) -- what ``ovs-ofctl parse-pcap`` and the
  ``dpif-netdev`` datapath use -- including what it keeps and what it zeroes
  when a packet is truncated or malformed: a frame shorter than 14 bytes has
  an all-zero key (``dl_type`` 0); up to two 802.1Q/802.1ad tags, each with
  the CFI bit (0x1000) set in ``tci`` to mean "present"; 802.3 length frames
  get ``dl_type`` 0x05ff unless they carry LLC/SNAP with an Ethernet OUI; at
  most three MPLS label stack entries; an IPv4 header that fails the length
  checks, or an IPv6 header whose payload length overruns the frame, leaves
  every L3 field zero; an IPv6 extension header chain that is cut short keeps
  the addresses but zeroes ``nw_proto``/``nw_tos``/``nw_ttl``/``nw_frag`` and
  the flow label; later fragments have no L4 fields (and IPv6 ones get
  ``nw_proto`` 44); a TCP header with a bad data offset, or any L4 header cut
  short, leaves the L4 fields zero; ND options are parsed as OVS does,
  including its rule that a repeated SLL or TLL option invalidates target and
  addresses; NSH base headers with MD type 1 contexts, as ``parse_nsh``.

Every function has two implementations behind one API: a pure-Python
reference here (slow, written to be read next to ``lib/flow.c``) and the
compiled private module ``ovsnet._flow_key`` (``native/_flow_key.pyx``), whose
C-level ``flow_key_extract`` a megaflow table can cimport. :func:`extract` and
:func:`extract_batch` are the compiled ones when the extension is built
(:data:`IMPLEMENTATION` is then ``"cython"``); :data:`reference` and
:data:`native` expose both for tests and benchmarks.
"""

from __future__ import annotations

import ipaddress
import operator
import socket
import struct
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType, SimpleNamespace
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ovsnet.errors import PacketError

if TYPE_CHECKING:
    from typing_extensions import Buffer

    from ovsnet.datapath.packet import PacketBatch

__all__ = [
    "FIELDS",
    "FIELD_BY_NAME",
    "FRAG_ANY",
    "FRAG_LATER",
    "GENEVE_OPTS_MAX",
    "IMPLEMENTATION",
    "KEY_SIZE",
    "KEY_WORDS",
    "TNL_F_CSUM",
    "TNL_F_DONT_FRAGMENT",
    "TNL_F_KEY",
    "TNL_F_OAM",
    "Field",
    "FlowKey",
    "Tunnel",
    "extract",
    "extract_batch",
    "metadata_template",
    "native",
    "reference",
]

# ---------------------------------------------------------------------------
# Layout
# ---------------------------------------------------------------------------


class Field(NamedTuple):
    """One field of the key: ``size`` bytes at byte ``offset``.

    ``kind`` says how the bytes read: ``u8``/``u16``/``u32`` are host-order
    integers (metadata), ``be16``/``be32``/``be64``/``be128`` network-order
    integers, ``mac``/``ipv4``/``ipv6`` addresses (read as strings) and
    ``bytes`` raw bytes.
    """

    name: str
    offset: int
    size: int
    kind: str
    doc: str


#: The layout of the key, in offset order. The gaps are padding, always zero.
FIELDS: tuple[Field, ...] = tuple(
    Field(*row)
    for row in (
        # Metadata: words 0-3.
        ("in_port", 0, 4, "u32", "input odp_port (a datapath port number, not an ofport)"),
        ("recirc_id", 4, 4, "u32", "recirculation id, 0 for packets from a port"),
        ("dp_hash", 8, 4, "u32", "hash computed by a datapath hash action"),
        ("skb_mark", 12, 4, "u32", "skb->mark (OpenFlow pkt_mark)"),
        ("priority", 16, 4, "u32", "skb->priority (OpenFlow skb_priority)"),
        ("ct_zone", 20, 2, "u16", "conntrack zone"),
        ("ct_state", 22, 1, "u8", "conntrack state bits (CS_* of lib/packets.h)"),
        ("ct_mark", 24, 4, "u32", "conntrack mark"),
        # Ethernet, VLAN, MPLS: words 4-8.
        ("dl_dst", 32, 6, "mac", "Ethernet destination"),
        ("dl_src", 38, 6, "mac", "Ethernet source"),
        ("dl_type", 44, 2, "be16", "ethertype after VLAN tags; 0x05ff for 802.3 without SNAP"),
        ("vlan_tpid", 48, 2, "be16", "outer VLAN TPID (0x8100 or 0x88a8), 0 if untagged"),
        ("vlan_tci", 50, 2, "be16", "outer VLAN TCI with the CFI bit 0x1000 set if present"),
        ("vlan1_tpid", 52, 2, "be16", "inner VLAN TPID"),
        ("vlan1_tci", 54, 2, "be16", "inner VLAN TCI with 0x1000 set if present"),
        ("mpls_lse0", 56, 4, "be32", "first (outermost) MPLS label stack entry"),
        ("mpls_lse1", 60, 4, "be32", "second MPLS label stack entry"),
        ("mpls_lse2", 64, 4, "be32", "third MPLS label stack entry"),
        # IPv4, L4: words 9-12, what a 5-tuple megaflow needs.
        ("nw_src", 72, 4, "ipv4", "IPv4 source or ARP SPA"),
        ("nw_dst", 76, 4, "ipv4", "IPv4 destination or ARP TPA"),
        ("nw_frag", 80, 1, "u8", "FRAG_ANY | FRAG_LATER"),
        ("nw_tos", 81, 1, "u8", "IPv4 TOS or IPv6 traffic class (DSCP and ECN)"),
        ("nw_ttl", 82, 1, "u8", "IPv4 TTL or IPv6 hop limit"),
        ("nw_proto", 83, 1, "u8", "IP protocol (IPv6: after extension headers); ARP opcode"),
        ("ipv6_label", 84, 4, "be32", "IPv6 flow label (20 bits)"),
        ("tp_src", 88, 2, "be16", "TCP/UDP/SCTP source port; ICMP/ICMPv6/IGMP type"),
        ("tp_dst", 90, 2, "be16", "TCP/UDP/SCTP destination port; ICMP/ICMPv6/IGMP code"),
        ("tcp_flags", 92, 2, "be16", "TCP flags (12 bits); ND: first link-layer option type"),
        ("igmp_group_ip4", 96, 4, "be32", "IGMP group address; ND: the reserved (R/S/O) word"),
        # IPv6, ND, ARP addresses: words 13-20.
        ("ipv6_src", 104, 16, "ipv6", "IPv6 source"),
        ("ipv6_dst", 120, 16, "ipv6", "IPv6 destination"),
        ("nd_target", 136, 16, "ipv6", "Neighbor Discovery target"),
        ("arp_sha", 152, 6, "mac", "ARP SHA; ND source link-layer address option"),
        ("arp_tha", 158, 6, "mac", "ARP THA; ND target link-layer address option"),
        # NSH: words 21-23.
        ("nsh_flags", 168, 1, "u8", "NSH flags (2 bits)"),
        ("nsh_ttl", 169, 1, "u8", "NSH TTL (6 bits)"),
        ("nsh_mdtype", 170, 1, "u8", "NSH metadata type byte"),
        ("nsh_np", 171, 1, "u8", "NSH next protocol"),
        ("nsh_path_hdr", 172, 4, "be32", "NSH service path id (24 bits) and index (8 bits)"),
        ("nsh_c1", 176, 4, "be32", "NSH MD type 1 context header 1"),
        ("nsh_c2", 180, 4, "be32", "NSH MD type 1 context header 2"),
        ("nsh_c3", 184, 4, "be32", "NSH MD type 1 context header 3"),
        ("nsh_c4", 188, 4, "be32", "NSH MD type 1 context header 4"),
        # Conntrack label and tunnel: words 24-33.
        ("ct_label", 192, 16, "be128", "conntrack label"),
        ("tun_id", 208, 8, "be64", "tunnel key (VNI, GRE key)"),
        ("tun_ipv4_src", 216, 4, "ipv4", "outer IPv4 source"),
        ("tun_ipv4_dst", 220, 4, "ipv4", "outer IPv4 destination"),
        ("tun_ipv6_src", 224, 16, "ipv6", "outer IPv6 source"),
        ("tun_ipv6_dst", 240, 16, "ipv6", "outer IPv6 destination"),
        ("tun_tp_src", 256, 2, "be16", "outer UDP source port"),
        ("tun_tp_dst", 258, 2, "be16", "outer UDP destination port"),
        ("tun_flags", 260, 2, "u16", "TNL_F_OAM | TNL_F_DONT_FRAGMENT | TNL_F_CSUM | TNL_F_KEY"),
        ("tun_tos", 262, 1, "u8", "outer TOS"),
        ("tun_ttl", 263, 1, "u8", "outer TTL"),
        ("tun_opts_len", 264, 1, "u8", "bytes of Geneve options in tun_opts"),
        # Geneve options: words 34-65, last so most lookups never touch them.
        ("tun_opts", 272, 256, "bytes", "Geneve options as on the wire (TLVs)"),
    )
)

#: Bytes in a key; a multiple of 8.
KEY_SIZE = 528
#: uint64 words in a key: the second dimension of ``extract_batch``'s output.
KEY_WORDS = KEY_SIZE // 8
#: Size of the Geneve option area (OVS's TUN_METADATA_TOT_OPT_SIZE).
GENEVE_OPTS_MAX = 256

FIELD_BY_NAME: Mapping[str, Field] = {f.name: f for f in FIELDS}

#: Byte ranges that group the fields, for masks and for the documentation.
SEGMENTS: Mapping[str, tuple[int, int]] = {
    "metadata": (0, 32),
    "l2": (32, 72),
    "l3l4": (72, 104),
    "ipv6_nd_arp": (104, 168),
    "nsh": (168, 192),
    "ct_label_tunnel": (192, 272),
    "tun_opts": (272, 528),
}

#: ``nw_frag`` bits (FLOW_NW_FRAG_* of include/openvswitch/flow.h).
FRAG_ANY = 1
FRAG_LATER = 2

#: ``tun_flags`` bits (FLOW_TNL_F_* of include/openvswitch/packets.h).
TNL_F_OAM = 1 << 0
TNL_F_DONT_FRAGMENT = 1 << 1
TNL_F_CSUM = 1 << 2
TNL_F_KEY = 1 << 3

_U8, _U16, _U32 = 0xFF, 0xFFFF, 0xFFFFFFFF
_U64, _U128 = (1 << 64) - 1, (1 << 128) - 1
_HOST = sys.byteorder

# Metadata the caller supplies is copied from a template key: these ranges.
_MD_RANGES = ((0, 32), (192, KEY_SIZE))

# ---------------------------------------------------------------------------
# FlowKey
# ---------------------------------------------------------------------------


def _decode(f: Field, raw: bytes) -> Any:
    b = raw[f.offset : f.offset + f.size]
    kind = f.kind
    if kind in ("u8", "u16", "u32"):
        return int.from_bytes(b, _HOST)
    if kind.startswith("be"):
        return int.from_bytes(b, "big")
    if kind == "mac":
        return ":".join(f"{x:02x}" for x in b)
    if kind == "ipv4":
        return socket.inet_ntop(socket.AF_INET, b)
    if kind == "ipv6":
        return socket.inet_ntop(socket.AF_INET6, b)
    if f.name == "tun_opts":
        return b[: raw[FIELD_BY_NAME["tun_opts_len"].offset]]
    return b


class FlowKey:
    """An immutable flow key: :data:`KEY_SIZE` bytes with a field per attribute.

    ``key.dl_type`` is an int, ``key.nw_src`` a dotted quad, ``key.dl_src``
    a MAC string (see :class:`Field` for the kinds); ``key.raw`` the bytes,
    ``key.words()`` the uint64 words. Keys compare and hash by their bytes.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: Buffer):
        data = bytes(raw)
        if len(data) != KEY_SIZE:
            raise PacketError(f"a flow key is {KEY_SIZE} bytes, got {len(data)}")
        self._raw = data

    @classmethod
    def from_words(cls, words: Any) -> FlowKey:
        """The key held in a row of :data:`KEY_WORDS` uint64 (e.g. of ``extract_batch``)."""
        arr = np.asarray(words)
        if arr.dtype != np.uint64 or arr.shape != (KEY_WORDS,):
            raise PacketError(
                f"a flow key is {KEY_WORDS} uint64 words, got shape {arr.shape} dtype {arr.dtype}"
            )
        return cls(np.ascontiguousarray(arr).tobytes())

    @property
    def raw(self) -> bytes:
        """The key's bytes."""
        return self._raw

    def words(self) -> np.ndarray:
        """The key as a read-only array of :data:`KEY_WORDS` native-order uint64."""
        return np.frombuffer(self._raw, dtype=np.uint64)

    def field_bytes(self, name: str) -> bytes:
        """The raw bytes of field ``name``."""
        f = FIELD_BY_NAME[name]
        return self._raw[f.offset : f.offset + f.size]

    def __getattr__(self, name: str) -> Any:
        try:
            f = FIELD_BY_NAME[name]
        except KeyError:
            raise AttributeError(
                f"FlowKey has no field {name!r}; fields: {', '.join(FIELD_BY_NAME)}"
            ) from None
        return _decode(f, self._raw)

    def to_dict(self) -> dict[str, Any]:
        """Every field, in layout order, decoded as by attribute access."""
        return {f.name: _decode(f, self._raw) for f in FIELDS}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FlowKey):
            return NotImplemented
        return self._raw == other._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:
        zero = bytes(KEY_SIZE)
        shown = [
            f"{f.name}={_decode(f, self._raw)!r}"
            for f in FIELDS
            if self._raw[f.offset : f.offset + f.size] != zero[: f.size]
        ]
        return f"FlowKey({', '.join(shown)})"


# ---------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Tunnel:
    """Tunnel metadata of a decapsulated packet (the kernel's ``ip_tunnel_key``).

    As in ``miniflow_extract``, a tunnel needs a destination (``ipv4_dst`` or
    ``ipv6_dst``); addresses are strings or ints (IPv4) / 16 bytes (IPv6).
    """

    tun_id: int = 0
    ipv4_src: str | int = 0
    ipv4_dst: str | int = 0
    ipv6_src: str | bytes = b""
    ipv6_dst: str | bytes = b""
    tos: int = 0
    ttl: int = 0
    tp_src: int = 0
    tp_dst: int = 0
    flags: int = 0
    geneve_opts: bytes = b""


def _uint(name: str, value: Any, maximum: int) -> int:
    v = operator.index(value)
    if not 0 <= v <= maximum:
        raise PacketError(f"{name}={value!r} is out of range: must be an int in 0..{maximum:#x}")
    return v


def _ipv4(name: str, value: str | int) -> bytes:
    if isinstance(value, str):
        try:
            return ipaddress.IPv4Address(value).packed
        except ValueError:
            raise PacketError(f"{name}={value!r} is not an IPv4 address like '192.0.2.1'") from None
    return _uint(name, value, _U32).to_bytes(4, "big")


def _ipv6(name: str, value: str | bytes) -> bytes:
    if isinstance(value, str):
        try:
            return ipaddress.IPv6Address(value).packed
        except ValueError:
            raise PacketError(f"{name}={value!r} is not an IPv6 address like '2001:db8::1'") from None
    raw = bytes(value)
    if raw == b"":
        return bytes(16)
    if len(raw) != 16:
        raise PacketError(f"{name} is {len(raw)} bytes: an IPv6 address is 16 bytes")
    return raw


def _put(buf: bytearray, name: str, value: bytes) -> None:
    f = FIELD_BY_NAME[name]
    buf[f.offset : f.offset + len(value)] = value


def _put_host(buf: bytearray, name: str, value: int) -> None:
    f = FIELD_BY_NAME[name]
    buf[f.offset : f.offset + f.size] = value.to_bytes(f.size, _HOST)


def metadata_template(
    in_port: int = 0,
    *,
    recirc_id: int = 0,
    dp_hash: int = 0,
    skb_mark: int = 0,
    priority: int = 0,
    ct_state: int = 0,
    ct_zone: int = 0,
    ct_mark: int = 0,
    ct_label: int = 0,
    tunnel: Tunnel | None = None,
) -> bytes:
    """A key holding only metadata, checked; :func:`extract` copies its metadata ranges."""
    buf = bytearray(KEY_SIZE)
    _put_host(buf, "in_port", _uint("in_port", in_port, _U32))
    _put_host(buf, "recirc_id", _uint("recirc_id", recirc_id, _U32))
    _put_host(buf, "dp_hash", _uint("dp_hash", dp_hash, _U32))
    _put_host(buf, "skb_mark", _uint("skb_mark", skb_mark, _U32))
    _put_host(buf, "priority", _uint("priority", priority, _U32))
    _put_host(buf, "ct_state", _uint("ct_state", ct_state, _U8))
    _put_host(buf, "ct_zone", _uint("ct_zone", ct_zone, _U16))
    _put_host(buf, "ct_mark", _uint("ct_mark", ct_mark, _U32))
    _put(buf, "ct_label", _uint("ct_label", ct_label, _U128).to_bytes(16, "big"))
    if tunnel is not None:
        if not isinstance(tunnel, Tunnel):
            raise TypeError(f"tunnel must be a Tunnel, not {type(tunnel).__name__}")
        dst4 = _ipv4("tunnel.ipv4_dst", tunnel.ipv4_dst)
        dst6 = _ipv6("tunnel.ipv6_dst", tunnel.ipv6_dst)
        if dst4 == bytes(4) and dst6 == bytes(16):
            # miniflow_extract ignores tunnel metadata without a destination.
            raise PacketError(
                "tunnel metadata needs a destination: set Tunnel.ipv4_dst or Tunnel.ipv6_dst"
            )
        opts = bytes(tunnel.geneve_opts)
        if len(opts) > GENEVE_OPTS_MAX or len(opts) % 4:
            raise PacketError(
                f"Tunnel.geneve_opts is {len(opts)} bytes: Geneve options are a multiple "
                f"of 4 bytes, at most {GENEVE_OPTS_MAX}"
            )
        _put(buf, "tun_id", _uint("tunnel.tun_id", tunnel.tun_id, _U64).to_bytes(8, "big"))
        _put(buf, "tun_ipv4_src", _ipv4("tunnel.ipv4_src", tunnel.ipv4_src))
        _put(buf, "tun_ipv4_dst", dst4)
        _put(buf, "tun_ipv6_src", _ipv6("tunnel.ipv6_src", tunnel.ipv6_src))
        _put(buf, "tun_ipv6_dst", dst6)
        _put(buf, "tun_tp_src", _uint("tunnel.tp_src", tunnel.tp_src, _U16).to_bytes(2, "big"))
        _put(buf, "tun_tp_dst", _uint("tunnel.tp_dst", tunnel.tp_dst, _U16).to_bytes(2, "big"))
        _put_host(buf, "tun_flags", _uint("tunnel.flags", tunnel.flags, _U16))
        _put_host(buf, "tun_tos", _uint("tunnel.tos", tunnel.tos, _U8))
        _put_host(buf, "tun_ttl", _uint("tunnel.ttl", tunnel.ttl, _U8))
        _put_host(buf, "tun_opts_len", len(opts))
        _put(buf, "tun_opts", opts)
    return bytes(buf)


def _packet_bytes(packet: Any) -> bytes:
    if packet is None:
        raise TypeError("packet must be a bytes-like object, not None")
    view = memoryview(packet)  # TypeError for objects without the buffer protocol
    if view.ndim != 1 or view.itemsize != 1 or view.format not in ("B", "b", "c"):
        raise PacketError(
            f"packet must be a 1-D buffer of bytes, got format {view.format!r} "
            f"with {view.ndim} dimension(s)"
        )
    return view.tobytes()


# ---------------------------------------------------------------------------
# Reference extraction (lib/flow.c, miniflow_extract)
# ---------------------------------------------------------------------------

_ETH_TYPE_IP = 0x0800
_ETH_TYPE_ARP = 0x0806
_ETH_TYPE_RARP = 0x8035
_ETH_TYPE_IPV6 = 0x86DD
_ETH_TYPE_NSH = 0x894F
_ETH_TYPE_VLAN = (0x8100, 0x88A8)
_ETH_TYPE_MPLS = (0x8847, 0x8848)
_ETH_TYPE_MIN = 0x600
_DL_TYPE_NONE = 0x05FF
_IPV6_EXT = (0, 43, 60)  # hop-by-hop, routing, destination options
_IPPROTO_AH, _IPPROTO_FRAGMENT = 51, 44
_ND_SOLICIT, _ND_ADVERT = 135, 136
_SNAP = b"\xaa\xaa\x03\x00\x00\x00"

_be16 = struct.Struct(">H")
_be32 = struct.Struct(">I")


def _parse_into(k: bytearray, p: bytes) -> None:
    """Fill the packet fields of k (all zero on entry) from the frame p."""
    size = len(p)
    if size < 14:
        return
    k[32:44] = p[0:12]  # dl_dst, dl_src
    o = 12
    # parse_vlan: at most two tags, each needs 4 bytes plus an ethertype.
    for n in range(2):
        if _be16.unpack_from(p, o)[0] not in _ETH_TYPE_VLAN or size - o < 6:
            break
        k[48 + 4 * n : 52 + 4 * n] = p[o : o + 4]
        k[50 + 4 * n] |= 0x10  # VLAN_CFI: "a tag is present"
        o += 4
    # parse_ethertype
    dl_type = _be16.unpack_from(p, o)[0]
    o += 2
    if dl_type < _ETH_TYPE_MIN:
        if size - o >= 8 and p[o : o + 6] == _SNAP:
            dl_type = _be16.unpack_from(p, o + 6)[0]
            o += 8
            if dl_type < _ETH_TYPE_MIN:
                dl_type = _DL_TYPE_NONE
        else:
            dl_type = _DL_TYPE_NONE
    k[44:46] = _be16.pack(dl_type)

    if dl_type in _ETH_TYPE_MPLS:
        n = 0
        while size - o >= 4:
            if n < 3:
                k[56 + 4 * n : 60 + 4 * n] = p[o : o + 4]
            n += 1
            o += 4
            if p[o - 2] & 1:  # bottom of stack
                break
        return

    if dl_type == _ETH_TYPE_IP:
        avail = size - o
        if avail < 20:
            return
        ip_len = (p[o] & 0x0F) * 4
        if ip_len < 20 or avail < ip_len:
            return
        tot_len = _be16.unpack_from(p, o + 2)[0]
        if tot_len > avail or ip_len > tot_len or avail - tot_len > 0xFFFF:
            return
        end = o + tot_len  # never look at the Ethernet padding
        k[72:80] = p[o + 12 : o + 20]
        nw_tos, nw_ttl, nw_proto = p[o + 1], p[o + 8], p[o + 9]
        frag_off = _be16.unpack_from(p, o + 6)[0]
        nw_frag = 0
        if frag_off & 0x3FFF:
            nw_frag = FRAG_ANY | (FRAG_LATER if frag_off & 0x1FFF else 0)
        o += ip_len
    elif dl_type == _ETH_TYPE_IPV6:
        avail = size - o
        if avail < 40:
            return
        plen = _be16.unpack_from(p, o + 4)[0]
        if plen + 40 > avail or avail - (plen + 40) > 0xFFFF:
            return
        k[104:136] = p[o + 8 : o + 40]
        tc_flow = _be32.unpack_from(p, o)[0]
        nw_tos, nw_ttl, nw_proto = (tc_flow >> 20) & 0xFF, p[o + 7], p[o + 6]
        o += 40
        end = o + plen
        nw_frag = 0
        # parse_ipv6_ext_hdrs__: a chain cut short keeps only the addresses.
        while nw_proto in _IPV6_EXT or nw_proto in (_IPPROTO_AH, _IPPROTO_FRAGMENT):
            if end - o < 8:
                return
            if nw_proto == _IPPROTO_FRAGMENT:
                nw_proto = p[o]
                offlg = _be16.unpack_from(p, o + 2)[0]
                o += 8
                if offlg:
                    nw_frag = FRAG_ANY
                    if offlg & 0xFFF8:
                        nw_frag |= FRAG_LATER
                        nw_proto = _IPPROTO_FRAGMENT
                        break
                continue
            hlen = (p[o + 1] + 1) * 8 if nw_proto != _IPPROTO_AH else (p[o + 1] + 2) * 4
            nw_proto = p[o]
            if end - o < hlen:
                return
            o += hlen
        k[84:88] = _be32.pack(tc_flow & 0xFFFFF)
    elif dl_type in (_ETH_TYPE_ARP, _ETH_TYPE_RARP):
        if (
            size - o >= 28
            and p[o : o + 6] == b"\x00\x01\x08\x00\x06\x04"  # Ethernet/IPv4, 6/4
        ):
            k[72:76] = p[o + 14 : o + 18]
            k[76:80] = p[o + 24 : o + 28]
            op = _be16.unpack_from(p, o + 6)[0]
            if op <= 0xFF:  # OVS matches only the low 8 bits of the opcode
                k[83] = op
            k[152:158] = p[o + 8 : o + 14]
            k[158:164] = p[o + 18 : o + 24]
        return
    elif dl_type == _ETH_TYPE_NSH:
        _parse_nsh(k, p, o, size)
        return
    else:
        return

    k[80:84] = bytes((nw_frag, nw_tos, nw_ttl, nw_proto))
    if nw_frag & FRAG_LATER:
        return
    avail = end - o
    if nw_proto == 6:  # TCP
        if avail >= 20:
            hlen = (p[o + 12] >> 4) * 4
            if hlen >= 20 and avail >= hlen:
                k[88:92] = p[o : o + 4]
                k[92:94] = _be16.pack(_be16.unpack_from(p, o + 12)[0] & 0x0FFF)
    elif nw_proto in (17, 132):  # UDP, SCTP
        if avail >= (8 if nw_proto == 17 else 12):
            k[88:92] = p[o : o + 4]
    elif nw_proto in (1, 2):  # ICMP, IGMP: type and code in tp_src and tp_dst
        if avail >= 8:
            k[89], k[91] = p[o], p[o + 1]
            if nw_proto == 2:
                k[96:100] = p[o + 4 : o + 8]
    elif nw_proto == 58:  # ICMPv6
        if avail >= 8:
            icmp_type, icmp_code = p[o], p[o + 1]
            k[89], k[91] = icmp_type, icmp_code
            if icmp_code == 0 and icmp_type in (_ND_SOLICIT, _ND_ADVERT):
                k[96:100] = p[o + 4 : o + 8]
                _parse_nd(k, p, o + 8, end)


def _parse_nd(k: bytearray, p: bytes, o: int, end: int) -> None:
    """parse_icmpv6: the ND target and the SLL/TLL options after it."""
    if end - o < 16:
        return
    target = p[o : o + 16]
    o += 16
    sll = tll = bytes(6)
    opt_type = 0
    valid = True
    while end - o >= 8:
        kind, opt_len = p[o], p[o + 1] * 8
        if opt_len == 0 or opt_len > end - o:
            break
        if kind in (1, 2) and opt_len == 8:
            # A second SLL (or TLL) option makes the whole message invalid.
            if (sll if kind == 1 else tll) != bytes(6):
                valid = False
                break
            if kind == 1:
                sll = p[o + 2 : o + 8]
            else:
                tll = p[o + 2 : o + 8]
            if opt_type == 0:
                opt_type = kind
        o += opt_len
    if valid:
        k[136:152] = target
        k[152:158] = sll
        k[158:164] = tll
    k[92:94] = _be16.pack(opt_type)


def _parse_nsh(k: bytearray, p: bytes, o: int, end: int) -> None:
    """parse_nsh: the base and service path headers, MD type 1 contexts."""
    if end - o < 8:
        return
    vftl = _be16.unpack_from(p, o)[0]
    length = (vftl & 0x3F) * 4
    if length > end - o or vftl >> 14 != 0:  # version 0 only
        return
    mdtype = p[o + 2]
    if (mdtype == 1 and length != 24) or (mdtype == 2 and length < 8):
        return
    k[168:172] = bytes(((vftl >> 12) & 3, (vftl >> 6) & 0x3F, mdtype, p[o + 3]))
    k[172:176] = p[o + 4 : o + 8]
    if mdtype == 1:
        k[176:192] = p[o + 8 : o + 24]


def _copy_metadata(k: bytearray, template: bytes) -> None:
    for start, stop in _MD_RANGES:
        k[start:stop] = template[start:stop]


def _ref_extract(packet: bytes, in_port: int, template: bytes | None) -> bytes:
    k = bytearray(KEY_SIZE)
    if template is not None:
        _copy_metadata(k, template)
    else:
        k[0:4] = in_port.to_bytes(4, _HOST)
    _parse_into(k, packet)
    return bytes(k)


# ---------------------------------------------------------------------------
# Batch checks (the compiled module makes the same checks with the same messages)
# ---------------------------------------------------------------------------


def _check_array(name: str, arr: Any, kind: str, itemsize: int, ndim: int) -> np.ndarray:
    want = f"{np.dtype(f'{kind}{itemsize}')}"
    if not isinstance(arr, np.ndarray):
        raise PacketError(f"{name} must be a numpy array of dtype {want}, got {type(arr).__name__}")
    if arr.dtype.kind != kind or arr.dtype.itemsize != itemsize or not arr.dtype.isnative:
        raise PacketError(f"{name} has dtype {arr.dtype}: must be {want}")
    if arr.ndim != ndim:
        raise PacketError(f"{name} has {arr.ndim} dimension(s): must have {ndim}")
    if not arr.flags.c_contiguous:
        raise PacketError(f"{name} must be C-contiguous")
    return arr


def _check_batch(batch: Any, keys_out: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = _check_array("batch.data", batch.data, "u", 1, 2)
    lengths = _check_array("batch.lengths", batch.lengths, "i", 4, 1)
    in_ports = _check_array("batch.in_ports", batch.in_ports, "u", 4, 1)
    out = _check_array("keys_out", keys_out, "u", 8, 2)
    n = lengths.shape[0]
    if in_ports.shape[0] != n:
        raise PacketError(f"batch has {n} lengths but {in_ports.shape[0]} in_ports")
    if n > data.shape[0]:
        raise PacketError(f"batch has {n} lengths but only {data.shape[0]} slots")
    if out.shape[1] != KEY_WORDS or out.shape[0] < n:
        raise PacketError(
            f"keys_out has shape {tuple(out.shape)}: must be (n, {KEY_WORDS}) "
            f"with n >= {n} (the number of packets)"
        )
    if not out.flags.writeable:
        raise PacketError("keys_out is read-only")
    slot = data.shape[1]
    for i, length in enumerate(lengths.tolist()):
        if not 0 <= length <= slot:
            raise PacketError(
                f"packet {i} of the batch has length {length}: must be in 0..{slot} (the slot size)"
            )
    return data, lengths, in_ports


def _ref_extract_batch(batch: PacketBatch, keys_out: np.ndarray) -> None:
    """Write the key of packet ``i`` of ``batch`` into ``keys_out[i]``.

    ``keys_out`` is a C-contiguous ``(n, KEY_WORDS)`` uint64 array with
    ``n >= len(batch)``; rows past ``len(batch)`` are left alone. The metadata
    is ``batch.in_ports`` and zeros. Everything is checked before the first
    packet is looked at: :class:`PacketError` names what is wrong.
    """
    data, lengths, in_ports = _check_batch(batch, keys_out)
    for i, (length, port) in enumerate(zip(lengths.tolist(), in_ports.tolist(), strict=True)):
        raw = _ref_extract(data[i, :length].tobytes(), port, None)
        keys_out[i] = np.frombuffer(raw, dtype=np.uint64)


# ---------------------------------------------------------------------------
# Public API over either implementation
# ---------------------------------------------------------------------------


def _make_extract(impl_extract: Any) -> Any:
    def extract(
        packet: Buffer,
        in_port: int = 0,
        *,
        recirc_id: int = 0,
        dp_hash: int = 0,
        skb_mark: int = 0,
        priority: int = 0,
        ct_state: int = 0,
        ct_zone: int = 0,
        ct_mark: int = 0,
        ct_label: int = 0,
        tunnel: Tunnel | None = None,
    ) -> FlowKey:
        """The flow key of the Ethernet frame ``packet`` received on odp_port ``in_port``.

        Never fails on packet contents: a short or malformed frame gets the
        key OVS's ``flow_extract`` gives it. Raises ``TypeError`` for a
        non-buffer and :class:`PacketError` for metadata out of range.
        """
        data = _packet_bytes(packet)
        port = _uint("in_port", in_port, _U32)
        template = None
        if (recirc_id or dp_hash or skb_mark or priority or ct_state or ct_zone or ct_mark
                or ct_label or tunnel is not None):
            template = metadata_template(
                port, recirc_id=recirc_id, dp_hash=dp_hash, skb_mark=skb_mark,
                priority=priority, ct_state=ct_state, ct_zone=ct_zone, ct_mark=ct_mark,
                ct_label=ct_label, tunnel=tunnel,
            )
        return FlowKey(impl_extract(data, port, template))

    return extract


#: The pure-Python reference implementation: ``extract`` and ``extract_batch``.
reference = SimpleNamespace(
    extract=_make_extract(_ref_extract), extract_batch=_ref_extract_batch
)

_native_module: ModuleType | None
try:
    import ovsnet._flow_key as _native_module
except ModuleNotFoundError as error:
    # Only a missing extension falls back; a broken build raises.
    if error.name != "ovsnet._flow_key":
        raise
    _native_module = None

#: The compiled implementation (``None`` when ``ovsnet._flow_key`` is not built).
native: SimpleNamespace | None = None
#: ``"cython"`` when :func:`extract` and :func:`extract_batch` are compiled, else ``"python"``.
IMPLEMENTATION = "python"

if _native_module is not None:
    if _native_module.KEY_SIZE != KEY_SIZE or _native_module.field_offsets() != {
        f.name: (f.offset, f.size) for f in FIELDS
    }:
        raise ImportError(
            "ovsnet._flow_key was built from a different key layout than "
            "ovsnet/datapath/flow_key.py describes: rebuild it (pip install -e .)"
        )
    # The compiled batch entry point is used as is: a Python wrapper around
    # it would cost about as much as extracting a batch of 32 packets.
    native = SimpleNamespace(
        extract=_make_extract(_native_module.extract),
        extract_batch=_native_module.extract_batch,
    )
    IMPLEMENTATION = "cython"

_chosen = native if native is not None else reference
extract = _chosen.extract
extract_batch = _chosen.extract_batch
