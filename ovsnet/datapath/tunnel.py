"""Tunnel encapsulation and decapsulation with real headers: VXLAN, Geneve, GRE.

What this models, and which parts of Linux and Open vSwitch it mirrors:

* **Encapsulation** is what the Linux tunnel drivers do when the kernel
  datapath outputs a packet to a flow-based ("collect_md") tunnel vport with
  egress tunnel info from a ``set(tunnel(...))`` action: ``vxlan_xmit_one``
  (``drivers/net/vxlan.c``), ``geneve_xmit_skb`` (``drivers/net/geneve.c``) and
  ``gre_fb_xmit``/``ip_md_tunnel_xmit`` (``net/ipv4/ip_gre.c``,
  ``net/ipv4/ip_tunnel.c``), then ``udp_tunnel_xmit_skb``/``iptunnel_xmit``
  and the neighbour layer. Open vSwitch's userspace datapath builds the same
  headers in ``lib/netdev-native-tnl.c`` (``*_build_header`` and
  ``*_push_header``). The outer header fields:

  - Ethernet: source and destination MAC from a :data:`Resolver` (the route
    and neighbour lookup; :class:`StaticRoutes` is a simple table).
  - IPv4: version 4, IHL 5, TOS from the tunnel info with the ECN bits taken
    from the inner packet (``ip_tunnel_ecn_encap``: inner CE becomes ECT(0)),
    identification from a per-vport counter, DF when ``TNL_F_DONT_FRAGMENT``
    is set, TTL from the tunnel info (0 means ``ip4_dst_hoplimit``, i.e. 64;
    GRE's ``ip_md_tunnel_xmit`` instead inherits an IP inner packet's TTL),
    header checksum. IPv6 outer headers (VXLAN and Geneve only): traffic class
    as the TOS above, flow label 0, hop limit as the TTL.
  - UDP: source port from a hash of the inner flow (:func:`udp_src_port`),
    destination port from the tunnel info (VXLAN) or the vport (Geneve), and
    a checksum only when ``TNL_F_CSUM`` is set (``udp_tunnel_xmit_skb``'s
    ``nocheck``); a computed 0 is sent as 0xffff.
  - VXLAN (RFC 7348): flags 0x08 (I), 24-bit VNI = the low 24 bits of
    ``tun_id``, reserved fields 0.
  - Geneve (RFC 8926): version 0, ``opt_len`` in 4-byte words, O bit from
    ``TNL_F_OAM``, C bit when any option type has its critical bit (0x80, as
    the kernel's ``validate_geneve_opts`` sets ``TUNNEL_CRIT_OPT``), protocol
    0x6558, VNI, then the options from the key's Geneve option area.
  - GRE (RFC 2784/2890, "gretap"): C bit and checksum when ``TNL_F_CSUM`` is
    set, K bit and the low 32 bits of ``tun_id`` when ``TNL_F_KEY`` is set,
    protocol 0x6558 (Transparent Ethernet Bridging).

  An outer IPv4 packet longer than the underlay MTU is fragmented
  (``ip_fragment``) unless DF is set, in which case it is dropped.

* **Decapsulation** checks the outer headers as the kernel's receive path
  does (``ip_rcv_core``, ``__udp4_lib_rcv`` and ``udp_queue_rcv_one_skb``,
  ``vxlan_rcv``, ``geneve_udp_encap_recv``/``geneve_rx``, ``gre_parse_header``
  and ``__ipgre_rcv``) and fills the tunnel metadata as ``ip_tun_rx_dst`` /
  ``udp_tun_rx_dst`` fill ``ip_tunnel_info`` and ``ovs_flow_key_extract``
  copies it into the flow key: outer addresses, TOS and TTL; UDP ports;
  ``tun_id`` from the VNI or GRE key; flags ``TNL_F_KEY`` (VXLAN and Geneve
  always, GRE when K is set), ``TNL_F_CSUM`` (a non-zero UDP checksum, or
  GRE's C bit) and ``TNL_F_OAM`` (Geneve's O bit). Neither the kernel nor
  OVS's userspace datapath sets ``TNL_F_DONT_FRAGMENT`` from a received
  outer header, and neither does this module. ECN is decapsulated as
  ``INET_ECN_decapsulate``: an outer CE marks an ECN-capable inner IP packet
  CE (fixing its checksum), and is dropped when the inner packet is not
  ECN-capable.

A packet the receive path would drop raises :class:`TunnelDrop`, whose
``reason`` is one of :data:`DROP_REASONS`; vports count those reasons.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ovsnet.datapath import packet as P
from ovsnet.datapath.flow_key import (
    TNL_F_CSUM,
    TNL_F_DONT_FRAGMENT,
    TNL_F_KEY,
    TNL_F_OAM,
    FlowKey,
    Tunnel,
    extract,
    metadata_template,
)
from ovsnet.errors import DatapathError, PacketError

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "DEFAULT_TTL",
    "DROP_REASONS",
    "ETH_P_TEB",
    "GENEVE_PORT",
    "KERNEL_GENEVE_PORT_RANGE",
    "KERNEL_VXLAN_PORT_RANGE",
    "TUNNEL_KINDS",
    "USERSPACE_PORT_RANGE",
    "VXLAN_PORT",
    "NextHop",
    "Resolver",
    "StaticRoutes",
    "TunnelDrop",
    "decapsulate",
    "encapsulate",
    "fragment_ipv4",
    "geneve_options_valid",
    "hash_5tuple",
    "udp_src_port",
]

#: the tunnel kinds this module builds and parses
TUNNEL_KINDS = ("vxlan", "geneve", "gre")
#: IANA UDP ports (the ports of ``vxlan_sys_4789`` and ``genev_sys_6081``)
VXLAN_PORT = 4789
GENEVE_PORT = 6081
#: ethertype of an Ethernet frame inside a tunnel (Transparent Ethernet Bridging)
ETH_P_TEB = 0x6558
#: ``net.ipv4.ip_default_ttl``: the TTL ``ip4_dst_hoplimit`` gives a tunnel TTL of 0
DEFAULT_TTL = 64
#: VXLAN's source port range when none is configured: ``inet_get_local_port_range``
#: (``net.ipv4.ip_local_port_range`` defaults to 32768-60999)
KERNEL_VXLAN_PORT_RANGE = (32768, 60999)
#: Geneve asks ``udp_flow_src_port`` for the range 1..USHRT_MAX
KERNEL_GENEVE_PORT_RANGE = (1, 65535)
#: OVS userspace's ``tnl_udp_port_min``/``tnl_udp_port_max`` (``ovs-appctl
#: tnl/egress_port_range``), used for every UDP tunnel
USERSPACE_PORT_RANGE = (32768, 61000)

#: Why a received outer frame was dropped, and where the kernel drops it.
DROP_REASONS: dict[str, str] = {
    "outer_short": "frame shorter than an Ethernet header",
    "not_ip": "outer ethertype is neither IPv4 nor IPv6 (ip_rcv never sees it)",
    "ip_header": "bad IPv4 version, IHL or total length (ip_rcv_core)",
    "ip_csum": "bad IPv4 header checksum (ip_rcv_core)",
    "ip_fragment": "outer IPv4 fragment (the kernel reassembles; not modelled)",
    "ipv6_header": "bad IPv6 version or payload length (ipv6_rcv)",
    "not_local": "outer destination is not an address of this host",
    "wrong_proto": "outer protocol is not UDP (VXLAN, Geneve) or GRE",
    "udp_header": "UDP header cut short or bad UDP length (__udp4_lib_rcv)",
    "udp_csum": "bad UDP checksum (udp_queue_rcv_one_skb)",
    "udp_port": "UDP destination port is not this vport's",
    "vxlan_short": "VXLAN header cut short",
    "vxlan_flags": "VXLAN I flag clear (vxlan_rcv)",
    "vxlan_reserved": "VXLAN reserved bits set (vxlan_rcv: unparsed flags or VNI bits)",
    "geneve_short": "Geneve header or its options cut short",
    "geneve_version": "Geneve version is not 0 (geneve_udp_encap_recv)",
    "geneve_proto": "Geneve protocol is not 0x6558 (geneve_udp_encap_recv)",
    "gre_short": "GRE header cut short (gre_parse_header)",
    "gre_flags": "GRE version or routing bits set (gre_parse_header)",
    "gre_csum": "bad GRE checksum (gre_parse_header)",
    "gre_proto": "GRE protocol is not 0x6558 (no gretap device takes it)",
    "inner_short": "inner frame shorter than an Ethernet header (iptunnel_pull_header)",
    "loop": "inner source MAC is the tunnel device's own (vxlan_set_mac, geneve_rx)",
    "ecn": "outer CE on a not-ECN-capable inner packet (INET_ECN_decapsulate)",
}

_ETH_IP, _ETH_IPV6 = 0x0800, 0x86DD
_PROTO_UDP, _PROTO_GRE = 17, 47
_IP_DF, _IP_MF, _IP_OFFMASK = 0x4000, 0x2000, 0x1FFF
_GRE_CSUM, _GRE_ROUTING, _GRE_KEY, _GRE_SEQ, _GRE_VERSION = 0x8000, 0x4000, 0x2000, 0x1000, 0x0007
_VXLAN_I = 0x08000000
_GENEVE_CRIT = 0x80
_ECN_MASK, _ECN_ECT0, _ECN_CE = 3, 2, 3

_ip4 = struct.Struct(">BBHHHBBH4s4s")
_udp = struct.Struct(">HHHH")
_be16 = struct.Struct(">H")
_be32 = struct.Struct(">I")


def _as_bytes(name: str, buf: Buffer) -> bytes:
    if isinstance(buf, bytes):
        return buf
    view = memoryview(buf)  # TypeError for objects without the buffer protocol
    if view.ndim != 1 or view.itemsize != 1:
        raise PacketError(f"{name} must be a 1-D buffer of bytes, got format {view.format!r}")
    return view.tobytes()


class TunnelDrop(DatapathError):
    """A received outer frame that the kernel's receive path would drop.

    ``reason`` is a key of :data:`DROP_REASONS`; the message says what was
    wrong and at which byte offset of the outer frame.
    """

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


# ---------------------------------------------------------------------------
# Routes and neighbours
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NextHop:
    """What the route and neighbour lookup for an outer destination gives.

    ``src_ip`` is the source address the route picks (used unless the tunnel
    info names one), ``src_mac`` the underlay device's MAC, ``dst_mac`` the
    neighbour's (ARP/ND) MAC and ``mtu`` the underlay device's MTU.
    """

    src_ip: str
    src_mac: str
    dst_mac: str
    mtu: int = 1500


#: A route and neighbour lookup: outer destination address -> next hop, or
#: None when there is no route (the packet is dropped).
Resolver = Callable[[str], "NextHop | None"]


class StaticRoutes:
    """A longest-prefix-match route table with static neighbours: a :data:`Resolver`.

    >>> routes = StaticRoutes()
    >>> routes.add("192.0.2.0/24", src_ip="192.0.2.1", src_mac="02:00:00:00:00:01",
    ...            dst_mac="02:00:00:00:00:02")
    >>> routes("192.0.2.7").dst_mac
    '02:00:00:00:00:02'
    """

    def __init__(self) -> None:
        self._routes: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, NextHop]] = []

    def add(self, prefix: str, *, src_ip: str, src_mac: str, dst_mac: str,
            mtu: int = 1500) -> None:
        """Route ``prefix`` (e.g. ``"192.0.2.0/24"``) via a neighbour with MAC ``dst_mac``."""
        try:
            net = ipaddress.ip_network(prefix, strict=False)
            src = ipaddress.ip_address(src_ip)
        except ValueError as error:
            raise DatapathError(f"route {prefix!r} via {src_ip!r}: {error}") from None
        if net.version != src.version:
            raise DatapathError(
                f"route {prefix!r} has an IPv{net.version} prefix but source {src_ip!r}: "
                "both must be the same IP version"
            )
        P.mac_to_bytes(src_mac)
        P.mac_to_bytes(dst_mac)
        if not 68 <= mtu <= 65535:
            raise DatapathError(f"route {prefix!r}: mtu={mtu} must be in 68..65535")
        self._routes.append((net, NextHop(str(src), src_mac, dst_mac, mtu)))
        self._routes.sort(key=lambda r: r[0].prefixlen, reverse=True)

    def __call__(self, dst: str) -> NextHop | None:
        addr = ipaddress.ip_address(dst)
        for net, hop in self._routes:
            if addr.version == net.version and addr in net:
                return hop
        return None


# ---------------------------------------------------------------------------
# Source port, ECN
# ---------------------------------------------------------------------------

_HASHED_PROTOS = (6, 17, 132, 1, 58)  # TCP, UDP, SCTP, ICMP, ICMPv6


def hash_5tuple(key: FlowKey, basis: int = 0) -> int:
    """OVS's ``miniflow_hash_5tuple`` (``lib/flow.c``) of a flow key.

    This is the RSS hash the userspace datapath gives a packet that arrives
    without one (``dpif_netdev_packet_get_rss_hash``). Fields are read as OVS
    reads them from ``struct flow`` memory: network-order bytes taken as
    little-endian host words.
    """
    raw = key.raw
    dl_type = key.dl_type
    h = basis
    if dl_type == _ETH_IPV6:
        for off in range(104, 136, 8):
            h = P.hash_add64(h, int.from_bytes(raw[off : off + 8], "little"))
    elif dl_type in (_ETH_IP, 0x0806):
        h = P.hash_add(h, int.from_bytes(raw[72:76], "little"))
        h = P.hash_add(h, int.from_bytes(raw[76:80], "little"))
    else:
        return P.hash_finish(h, 42)
    proto = raw[83]
    h = P.hash_add(h, proto)
    if proto in _HASHED_PROTOS:
        h = P.hash_add(h, int.from_bytes(raw[88:92], "little"))
    return P.hash_finish(h, 42)


def udp_src_port(flow_hash: int, port_range: tuple[int, int], *, obfuscate: bool = True) -> int:
    """The UDP source port for a flow hash: ``udp_flow_src_port`` (``include/net/udp.h``).

    The kernel first folds the hash (``hash ^= hash << 16``, "obfuscate a
    bit"), then scales it into ``[lo, hi)``. OVS userspace's
    ``netdev_tnl_get_src_port`` scales without folding (``obfuscate=False``).
    """
    lo, hi = port_range
    h = flow_hash & 0xFFFFFFFF
    if obfuscate:
        h = (h ^ (h << 16)) & 0xFFFFFFFF
    return ((h * (hi - lo)) >> 32) + lo


def _ecn_encapsulate(tos: int, inner_dsfield: int) -> int:
    """``INET_ECN_encapsulate``: the outer TOS takes the inner ECN bits (CE -> ECT(0))."""
    inner = inner_dsfield & _ECN_MASK
    return (tos & ~_ECN_MASK & 0xFF) | (_ECN_ECT0 if inner == _ECN_CE else inner)


def _inner_dsfield(inner: bytes) -> tuple[int, int] | None:
    """(offset of the DS byte, its value) of an untagged IPv4/IPv6 inner frame, else None.

    The receive path looks at ``skb->protocol`` right after ``eth_type_trans``,
    i.e. the ethertype at offset 12, before any VLAN tag is taken off.
    """
    if len(inner) < 14:
        return None
    ethertype = _be16.unpack_from(inner, 12)[0]
    if ethertype == _ETH_IP and len(inner) >= 34 and inner[14] >> 4 == 4:
        return 15, inner[15]
    if ethertype == _ETH_IPV6 and len(inner) >= 54 and inner[14] >> 4 == 6:
        return 14, ((inner[14] & 0x0F) << 4) | (inner[15] >> 4)
    return None


def _ecn_decapsulate(outer_tos: int, inner: bytes) -> bytes:
    """``INET_ECN_decapsulate``: drop or mark the inner packet CE for an outer CE."""
    where = _inner_dsfield(inner)
    if where is None:
        return inner
    off, dsfield = where
    outer_ecn = outer_tos & _ECN_MASK
    if dsfield & _ECN_MASK == 0:  # inner not ECN-capable
        if outer_ecn == _ECN_CE:
            raise TunnelDrop(
                "ecn", f"outer TOS {outer_tos:#04x} is CE but the inner packet is not ECN-capable"
            )
        return inner
    if outer_ecn != _ECN_CE or dsfield & _ECN_MASK == _ECN_CE:
        return inner
    out = bytearray(inner)
    if off == 15:  # IPv4: IP_ECN_set_ce, with the incremental checksum update
        old_word = _be16.unpack_from(out, 14)[0]
        out[15] |= _ECN_CE
        new_word = _be16.unpack_from(out, 14)[0]
        check = _be16.unpack_from(out, 24)[0]
        _be16.pack_into(out, 24, P.csum_replace2(check, old_word, new_word))
    else:  # IPv6: IP6_ECN_set_ce (no header checksum)
        out[15] |= _ECN_CE << 4
    return bytes(out)


# ---------------------------------------------------------------------------
# Encapsulation
# ---------------------------------------------------------------------------


def geneve_options_valid(opts: bytes) -> tuple[bool, bool]:
    """(well formed, any critical option) for a Geneve option area.

    Each option is a 4-byte header (class, type, 5-bit length in 4-byte
    words) and its data; they must exactly fill the area, as the kernel's
    ``validate_geneve_opts`` requires when it accepts a ``set(tunnel())``.
    """
    off, crit = 0, False
    while off < len(opts):
        if len(opts) - off < 4:
            return False, crit
        crit |= bool(opts[off + 2] & _GENEVE_CRIT)
        off += 4 + (opts[off + 3] & 0x1F) * 4
    return off == len(opts), crit


def _ipv4_header(tos: int, total: int, ident: int, frag: int, ttl: int, proto: int,
                 src: bytes, dst: bytes) -> bytes:
    hdr = bytearray(_ip4.pack(0x45, tos, total, ident, frag, ttl, proto, 0, src, dst))
    _be16.pack_into(hdr, 10, P.checksum(hdr))
    return bytes(hdr)


def _udp_header(sport: int, dport: int, payload: bytes, csum: bool,
                pseudo: Callable[[int], int]) -> bytes:
    length = 8 + len(payload)
    if length > 0xFFFF:
        raise DatapathError(f"UDP payload of {len(payload)} bytes does not fit a UDP datagram")
    if not csum:
        return _udp.pack(sport, dport, length, 0)
    hdr = _udp.pack(sport, dport, length, 0)
    check = P.csum_fold(P.csum(payload, P.csum(hdr, pseudo(length))))
    return _udp.pack(sport, dport, length, check or 0xFFFF)


def _tunnel_addrs(tunnel: Tunnel) -> tuple[int, bytes, bytes]:
    """(IP version, source, destination) of the outer header the tunnel info asks for."""
    key = FlowKey(_template(tunnel))
    dst4, dst6 = key.field_bytes("tun_ipv4_dst"), key.field_bytes("tun_ipv6_dst")
    if dst4 != bytes(4):
        return 4, key.field_bytes("tun_ipv4_src"), dst4
    return 6, key.field_bytes("tun_ipv6_src"), dst6


def _template(tunnel: Tunnel) -> bytes:
    if not isinstance(tunnel, Tunnel):
        raise TypeError(f"egress tunnel info must be a Tunnel, not {type(tunnel).__name__}")
    try:
        return metadata_template(tunnel=tunnel)
    except PacketError as error:
        raise DatapathError(f"egress tunnel info: {error}") from None


def encapsulate(
    kind: str,
    inner: Buffer,
    tunnel: Tunnel,
    next_hop: NextHop,
    *,
    dst_port: int | None = None,
    src_port: int = 0,
    ip_id: int = 0,
    inner_key: FlowKey | None = None,
) -> bytes:
    """The outer Ethernet frame carrying ``inner`` through a ``kind`` tunnel.

    ``tunnel`` is the egress tunnel info (``ipv4_dst`` or ``ipv6_dst`` must be
    set; an unset source takes ``next_hop.src_ip``). ``dst_port`` is the UDP
    destination port (VXLAN uses ``tunnel.tp_dst`` when it is set, as
    ``vxlan_xmit_one``); ``src_port`` and ``ip_id`` are chosen by the caller
    (see :class:`~ovsnet.datapath.vport.TunnelVport`). ``inner_key`` is the
    inner packet's flow key if the caller has it. Raises
    :class:`~ovsnet.errors.DatapathError` for tunnel info the kernel would
    refuse (GRE over IPv6, malformed Geneve options) or a frame too large for
    one outer datagram; fragmentation is :func:`fragment_ipv4`'s job.
    """
    if kind not in TUNNEL_KINDS:
        raise DatapathError(f"tunnel kind {kind!r} is not one of {', '.join(TUNNEL_KINDS)}")
    payload = _as_bytes("inner", inner)
    version, src, dst = _tunnel_addrs(tunnel)
    if version == 6 and kind == "gre":
        raise DatapathError("a gre vport carries IPv4 only (ip6gre is a separate vport type)")
    if src == bytes(len(src)):
        src = ipaddress.ip_address(next_hop.src_ip).packed
        if len(src) != len(dst):
            raise DatapathError(
                f"next hop source {next_hop.src_ip} is not an IPv{version} address "
                "like the tunnel destination"
            )
    key = inner_key if inner_key is not None else extract(payload)
    flags = tunnel.flags
    inner_ds = key.nw_tos if key.dl_type in (_ETH_IP, _ETH_IPV6) else 0
    tos = _ecn_encapsulate(tunnel.tos, inner_ds)
    ttl = tunnel.ttl
    if ttl == 0:
        ttl = DEFAULT_TTL
        if kind == "gre" and key.dl_type in (_ETH_IP, _ETH_IPV6):
            ttl = key.nw_ttl  # ip_md_tunnel_xmit inherits the inner TTL
    vni = tunnel.tun_id & 0xFFFFFF

    if kind == "gre":
        gre_flags = (_GRE_CSUM if flags & TNL_F_CSUM else 0) | (_GRE_KEY if flags & TNL_F_KEY else 0)
        hdr = bytearray(_be16.pack(gre_flags) + _be16.pack(ETH_P_TEB))
        if gre_flags & _GRE_CSUM:
            hdr += bytes(4)
        if gre_flags & _GRE_KEY:
            hdr += _be32.pack(tunnel.tun_id & 0xFFFFFFFF)
        l4 = bytes(hdr) + payload
        if gre_flags & _GRE_CSUM:
            l4 = l4[:4] + _be16.pack(P.checksum(l4)) + l4[6:]
        proto = _PROTO_GRE
    else:
        if kind == "vxlan":
            tun_hdr = _be32.pack(_VXLAN_I) + _be32.pack(vni << 8)
            port = tunnel.tp_dst or dst_port or VXLAN_PORT
        else:
            opts = bytes(tunnel.geneve_opts)
            ok, crit = geneve_options_valid(opts)
            if not ok:
                raise DatapathError(
                    f"Geneve options {opts.hex()} are malformed: each option is a 4-byte "
                    "header (class, type, length in 4-byte words) and its data, exactly "
                    "filling the option area"
                )
            first = (len(opts) // 4) & 0x3F
            second = (0x80 if flags & TNL_F_OAM else 0) | (0x40 if crit else 0)
            tun_hdr = bytes((first, second)) + _be16.pack(ETH_P_TEB) + _be32.pack(vni << 8) + opts
            port = dst_port or GENEVE_PORT
        body = tun_hdr + payload
        if version == 4:
            def pseudo(length: int) -> int:
                return P.l4_pseudo_csum_v4(int.from_bytes(src, "big"),
                                           int.from_bytes(dst, "big"), _PROTO_UDP, length)
        else:
            def pseudo(length: int) -> int:
                return P.l4_pseudo_csum_v6(src, dst, _PROTO_UDP, length)
        l4 = _udp_header(src_port, port, body, bool(flags & TNL_F_CSUM), pseudo) + body
        proto = _PROTO_UDP

    if version == 4:
        total = 20 + len(l4)
        if total > 0xFFFF:
            raise DatapathError(f"inner frame of {len(payload)} bytes does not fit an IPv4 packet")
        frag = _IP_DF if flags & TNL_F_DONT_FRAGMENT else 0
        l3 = _ipv4_header(tos, total, ip_id & 0xFFFF, frag, ttl, proto, src, dst) + l4
        ethertype = _ETH_IP
    else:
        if len(l4) > 0xFFFF:
            raise DatapathError(f"inner frame of {len(payload)} bytes does not fit an IPv6 packet")
        l3 = (_be32.pack((6 << 28) | (tos << 20)) + _be16.pack(len(l4))
              + bytes((proto, ttl)) + src + dst + l4)
        ethertype = _ETH_IPV6
    return (P.mac_to_bytes(next_hop.dst_mac) + P.mac_to_bytes(next_hop.src_mac)
            + _be16.pack(ethertype) + l3)


def fragment_ipv4(frame: bytes, mtu: int) -> list[bytes]:
    """Split an Ethernet+IPv4 frame into fragments of at most ``mtu`` IP bytes (``ip_fragment``).

    Every fragment but the last carries a multiple of 8 payload bytes and MF;
    the Ethernet header is copied. A frame that fits is returned alone.
    """
    ihl = (frame[14] & 0x0F) * 4
    total = _be16.unpack_from(frame, 16)[0]
    if total <= mtu:
        return [frame]
    eth, hdr, data = frame[:14], frame[14 : 14 + ihl], frame[14 + ihl : 14 + total]
    chunk = (mtu - ihl) // 8 * 8
    if chunk <= 0:
        raise DatapathError(f"mtu {mtu} cannot hold an IPv4 header of {ihl} bytes and 8 data bytes")
    base_off = _be16.unpack_from(hdr, 6)[0]
    out = []
    for start in range(0, len(data), chunk):
        piece = data[start : start + chunk]
        more = start + chunk < len(data) or base_off & _IP_MF
        frag = (base_off & _IP_OFFMASK) + start // 8 | (_IP_MF if more else 0)
        h = bytearray(hdr)
        _be16.pack_into(h, 2, ihl + len(piece))
        _be16.pack_into(h, 6, frag | (base_off & _IP_DF))
        _be16.pack_into(h, 10, 0)
        _be16.pack_into(h, 10, P.checksum(h))
        out.append(eth + bytes(h) + piece)
    return out


# ---------------------------------------------------------------------------
# Decapsulation
# ---------------------------------------------------------------------------


def _drop(reason: str, message: str) -> TunnelDrop:
    return TunnelDrop(reason, message)


def decapsulate(
    kind: str,
    frame: Buffer,
    *,
    dst_port: int | None = None,
    local_addrs: frozenset[str] | None = None,
    device_mac: str | None = None,
) -> tuple[bytes, Tunnel]:
    """The inner frame and tunnel metadata of an outer Ethernet ``frame``.

    ``dst_port`` is the vport's UDP port (default: the IANA port of ``kind``);
    ``local_addrs``, if given, are the host's addresses (a frame for another
    destination is not delivered to the tunnel); ``device_mac`` is the tunnel
    device's MAC for the loop check of VXLAN and Geneve. Raises
    :class:`TunnelDrop` where the kernel would drop the frame.
    """
    if kind not in TUNNEL_KINDS:
        raise DatapathError(f"tunnel kind {kind!r} is not one of {', '.join(TUNNEL_KINDS)}")
    p = _as_bytes("frame", frame)
    if len(p) < 14:
        raise _drop("outer_short", f"outer frame is {len(p)} bytes: an Ethernet header needs 14")
    ethertype = _be16.unpack_from(p, 12)[0]
    o = 14
    if ethertype == _ETH_IP:
        avail = len(p) - o
        if avail < 20 or p[o] >> 4 != 4 or (p[o] & 0x0F) < 5:
            raise _drop("ip_header", f"offset {o}: not an IPv4 header (need version 4, IHL >= 5)")
        ihl = (p[o] & 0x0F) * 4
        if avail < ihl:
            raise _drop("ip_header", f"offset {o}: IHL says {ihl} bytes, {avail} present")
        if P.checksum(p[o : o + ihl]) != 0:
            raise _drop("ip_csum", f"offset {o + 10}: IPv4 header checksum is wrong")
        total = _be16.unpack_from(p, o + 2)[0]
        if total < ihl or total > avail:
            raise _drop("ip_header", f"offset {o + 2}: IPv4 total length {total} is not in "
                                     f"{ihl}..{avail} (header .. bytes present)")
        frag = _be16.unpack_from(p, o + 6)[0]
        if frag & (_IP_MF | _IP_OFFMASK):
            raise _drop("ip_fragment", f"offset {o + 6}: outer IPv4 fragment "
                                       "(reassembly is not modelled)")
        tos, ttl, proto = p[o + 1], p[o + 8], p[o + 9]
        src, dst = p[o + 12 : o + 16], p[o + 16 : o + 20]
        end = o + total
        o += ihl
        version = 4
    elif ethertype == _ETH_IPV6:
        avail = len(p) - o
        if avail < 40 or p[o] >> 4 != 6:
            raise _drop("ipv6_header", f"offset {o}: not an IPv6 header")
        plen = _be16.unpack_from(p, o + 4)[0]
        if plen + 40 > avail:
            raise _drop("ipv6_header", f"offset {o + 4}: IPv6 payload length {plen} exceeds "
                                       f"the {avail - 40} bytes present")
        tos = (_be32.unpack_from(p, o)[0] >> 20) & 0xFF
        proto, ttl = p[o + 6], p[o + 7]
        src, dst = p[o + 8 : o + 24], p[o + 24 : o + 40]
        end = o + 40 + plen
        o += 40
        version = 6
    else:
        raise _drop("not_ip", f"offset 12: outer ethertype {ethertype:#06x} is not IPv4 or IPv6")
    dst_text = str(ipaddress.ip_address(dst))
    if local_addrs is not None and dst_text not in local_addrs:
        raise _drop("not_local", f"outer destination {dst_text} is not a local address")
    if version == 6 and kind == "gre":
        raise _drop("wrong_proto", "a gre vport receives IPv4 only")

    want_proto = _PROTO_GRE if kind == "gre" else _PROTO_UDP
    if proto != want_proto:
        raise _drop("wrong_proto", f"outer protocol {proto} is not {want_proto} ({kind})")

    flags = 0
    tp_src = tp_dst = 0
    opts = b""
    if kind == "gre":
        if end - o < 4:
            raise _drop("gre_short", f"offset {o}: GRE header needs 4 bytes, {end - o} present")
        gflags, gproto = _be16.unpack_from(p, o)[0], _be16.unpack_from(p, o + 2)[0]
        if gflags & (_GRE_VERSION | _GRE_ROUTING):
            raise _drop("gre_flags", f"offset {o}: GRE flags {gflags:#06x} have version or "
                                     "routing bits set (must be 0)")
        hlen = 4 + 4 * sum(bool(gflags & b) for b in (_GRE_CSUM, _GRE_KEY, _GRE_SEQ))
        if end - o < hlen:
            raise _drop("gre_short", f"offset {o}: GRE header needs {hlen} bytes, {end - o} present")
        opt = o + 4
        if gflags & _GRE_CSUM:
            if P.checksum(p[o:end]) != 0:
                raise _drop("gre_csum", f"offset {opt}: GRE checksum is wrong")
            flags |= TNL_F_CSUM
            opt += 4
        tun_id = 0
        if gflags & _GRE_KEY:
            tun_id = _be32.unpack_from(p, opt)[0]
            flags |= TNL_F_KEY
        if gproto != ETH_P_TEB:
            raise _drop("gre_proto", f"offset {o + 2}: GRE protocol {gproto:#06x} is not "
                                     f"{ETH_P_TEB:#06x} (Transparent Ethernet Bridging)")
        o += hlen
    else:
        if end - o < 8:
            raise _drop("udp_header", f"offset {o}: UDP header needs 8 bytes, {end - o} present")
        tp_src, tp_dst, ulen, check = _udp.unpack_from(p, o)
        if ulen < 8 or ulen > end - o:
            raise _drop("udp_header", f"offset {o + 4}: UDP length {ulen} is not in 8..{end - o}")
        end = o + ulen
        if check:
            if version == 4:
                pseudo = P.l4_pseudo_csum_v4(int.from_bytes(src, "big"),
                                             int.from_bytes(dst, "big"), _PROTO_UDP, ulen)
            else:
                pseudo = P.l4_pseudo_csum_v6(src, dst, _PROTO_UDP, ulen)
            if P.csum_fold(P.csum(p[o:end], pseudo)) != 0:
                raise _drop("udp_csum", f"offset {o + 6}: UDP checksum is wrong")
            flags |= TNL_F_CSUM
        port = dst_port or (VXLAN_PORT if kind == "vxlan" else GENEVE_PORT)
        if tp_dst != port:
            raise _drop("udp_port", f"offset {o + 2}: UDP destination port {tp_dst} is not "
                                    f"this vport's {port}")
        o += 8
        if kind == "vxlan":
            if end - o < 8:
                raise _drop("vxlan_short", f"offset {o}: VXLAN header needs 8 bytes")
            vflags, vni_word = _be32.unpack_from(p, o)[0], _be32.unpack_from(p, o + 4)[0]
            if not vflags & _VXLAN_I:
                raise _drop("vxlan_flags", f"offset {o}: VXLAN flags {vflags >> 24:#04x} lack "
                                           "the I flag 0x08")
            if vflags != _VXLAN_I or vni_word & 0xFF:
                raise _drop("vxlan_reserved", f"offset {o}: VXLAN reserved bits set "
                                              f"(flags word {vflags:#010x}, VNI word "
                                              f"{vni_word:#010x}); only 0x08000000 and a "
                                              "24-bit VNI are valid")
            tun_id = vni_word >> 8
            o += 8
        else:
            if end - o < 8:
                raise _drop("geneve_short", f"offset {o}: Geneve header needs 8 bytes")
            ver = p[o] >> 6
            if ver != 0:
                raise _drop("geneve_version", f"offset {o}: Geneve version {ver} is not 0")
            gproto = _be16.unpack_from(p, o + 2)[0]
            if gproto != ETH_P_TEB:
                raise _drop("geneve_proto", f"offset {o + 2}: Geneve protocol {gproto:#06x} "
                                            f"is not {ETH_P_TEB:#06x}")
            opt_len = (p[o] & 0x3F) * 4
            if end - o < 8 + opt_len:
                raise _drop("geneve_short", f"offset {o}: Geneve options of {opt_len} bytes "
                                            f"overrun the {end - o - 8} bytes present")
            if p[o + 1] & 0x80:
                flags |= TNL_F_OAM
            tun_id = _be32.unpack_from(p, o + 4)[0] >> 8
            opts = p[o + 8 : o + 8 + opt_len]
            o += 8 + opt_len
        flags |= TNL_F_KEY

    inner = p[o:end]
    if len(inner) < 14:
        raise _drop("inner_short", f"offset {o}: inner frame is {len(inner)} bytes, an "
                                   "Ethernet header needs 14")
    if device_mac is not None and kind != "gre" and inner[6:12] == P.mac_to_bytes(device_mac):
        raise _drop("loop", f"offset {o + 6}: inner source MAC is the device's own {device_mac}")
    inner = _ecn_decapsulate(tos, inner)
    src_text = str(ipaddress.ip_address(src))
    if version == 4:
        tunnel = Tunnel(tun_id=tun_id, ipv4_src=src_text, ipv4_dst=dst_text, tos=tos, ttl=ttl,
                        tp_src=tp_src, tp_dst=tp_dst, flags=flags, geneve_opts=opts)
    else:
        tunnel = Tunnel(tun_id=tun_id, ipv6_src=src_text, ipv6_dst=dst_text, tos=tos, ttl=ttl,
                        tp_src=tp_src, tp_dst=tp_dst, flags=flags, geneve_opts=opts)
    return inner, tunnel
