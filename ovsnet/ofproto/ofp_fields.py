"""OpenFlow match fields: the meta-flow field table, value syntax and ``Match``.

Mirrors Open vSwitch 3.1's ``include/openvswitch/meta-flow.h`` (field names,
aliases, widths, maskability, prerequisites, NXM/OXM names), ``lib/meta-flow.c``
(``mf_parse``: how each field's value is written), ``lib/match.c``
(``match_set_*`` and ``match_format``) and ``lib/ofp-port.c`` (port names).

Like OVS's ``struct match``, a :class:`Match` stores values and masks per *flow
member* (``struct flow`` member: ``tp_src``, ``nw_tos``, ``vlan_tci`` ...), not per
field: ``tcp_src``, ``udp_src`` and ``icmp_type`` all set ``tp_src``; ``nw_tos``,
``ip_dscp`` and ``nw_ecn`` set bits of ``nw_tos``; ``dl_vlan``, ``vlan_vid``,
``dl_vlan_pcp`` and ``vlan_tci`` set bits of ``vlan_tci``. Values are plain
integers in host order; a member's bits outside its mask are zero.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ovsnet.errors import OfprotoError

# --------------------------------------------------------------------------------------
# Errors


class FlowSyntaxError(OfprotoError, ValueError):
    """An OpenFlow flow, match or action string could not be parsed.

    ``column`` is 1-based in ``text``; ``str()`` shows the text with a caret line
    under the offending token, prefixed by ``source:line:column`` when known.
    """

    exit_code = 2

    def __init__(self, message: str, text: str | None = None, offset: int | None = None,
                 length: int = 1, source: str | None = None, line: int | None = None):
        self.message = message
        self.text = text
        self.offset = offset
        self.length = max(1, length)
        self.source = source
        self.line = line
        super().__init__(self._render())

    @property
    def column(self) -> int | None:
        return None if self.offset is None else self.offset + 1

    @property
    def token(self) -> str | None:
        if self.text is None or self.offset is None:
            return None
        return self.text[self.offset:self.offset + self.length]

    def located(self, text: str, offset: int, source: str | None = None,
                line: int | None = None) -> FlowSyntaxError:
        """The same error placed in an enclosing ``text`` at ``offset``."""
        inner = self.offset or 0
        return FlowSyntaxError(self.message, text, offset + inner, self.length, source, line)

    def _render(self) -> str:
        where = ""
        if self.source is not None:
            where = f"{self.source}:{self.line}:{self.column}: "
        elif self.column is not None:
            where = f"column {self.column}: "
        out = where + self.message
        if self.text is not None and self.offset is not None:
            out += "\n  " + self.text + "\n  " + " " * self.offset + "^" * self.length
        return out


class _Err(Exception):
    """Internal: a parse error relative to the current token (offset, length)."""

    def __init__(self, message: str, offset: int = 0, length: int = 0):
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.length = length


# --------------------------------------------------------------------------------------
# Ports (lib/ofp-port.c, include/openvswitch/ofp-port.h)

OFPP_MAX = 0xFF00
OFPP_IN_PORT = 0xFFF8
OFPP_TABLE = 0xFFF9
OFPP_NORMAL = 0xFFFA
OFPP_FLOOD = 0xFFFB
OFPP_ALL = 0xFFFC
OFPP_CONTROLLER = 0xFFFD
OFPP_LOCAL = 0xFFFE
OFPP_ANY = 0xFFFF
OFPP_NONE = OFPP_ANY

#: reserved port names in OFPUTIL_NAMED_PORTS order (matched case-insensitively)
RESERVED_PORTS = {
    "IN_PORT": OFPP_IN_PORT, "TABLE": OFPP_TABLE, "NORMAL": OFPP_NORMAL,
    "FLOOD": OFPP_FLOOD, "ALL": OFPP_ALL, "CONTROLLER": OFPP_CONTROLLER,
    "LOCAL": OFPP_LOCAL, "ANY": OFPP_ANY, "NONE": OFPP_NONE,
}
_RESERVED_NAME = {v: k for k, v in reversed(RESERVED_PORTS.items())}
_OFPP11_OFFSET = 0xFFFF0000 - 0xFF00


def parse_port(s: str, port_map: dict[str, int] | None = None) -> int | None:
    """An OpenFlow 1.0 port number from ``s``, or None (``ofputil_port_from_string``).

    ``s`` is a decimal number, a reserved name (``LOCAL``, ``in_port`` ...), or a
    port name from ``port_map`` (optionally in double quotes).
    """
    if s.startswith("-"):
        return None
    if s.isdigit():
        n = int(s)
        if n <= 0xFFFF:
            return n
        if 0xFFFFFF00 <= n <= 0xFFFFFFFF:
            return n - _OFPP11_OFFSET
        return None
    up = s.upper()
    if up in RESERVED_PORTS:
        return RESERVED_PORTS[up]
    if port_map:
        name = s
        if len(s) > 1 and s[0] == '"' and s[-1] == '"':
            name = s[1:-1]
        if name in port_map:
            return port_map[name]
    return None


def port_to_ofp11(port: int) -> int:
    """``ofputil_port_to_ofp11``: a 16-bit OpenFlow 1.0 port as OpenFlow 1.1+'s 32 bits."""
    return port if port < OFPP_MAX else port + _OFPP11_OFFSET


def port_from_ofp11(port: int) -> int | None:
    """``ofputil_port_from_ofp11``: the 16-bit port of a 32-bit one (None if invalid)."""
    if port < OFPP_MAX:
        return port
    if port >= 0xFFFFFF00:
        return port - _OFPP11_OFFSET
    return None


def format_port(port: int, port_map: dict[str, int] | None = None) -> str:
    """``ofputil_format_port``: a reserved name, the mapped port name, or the number."""
    if port >= OFPP_MAX and port in _RESERVED_NAME:
        return _RESERVED_NAME[port]
    if port_map:
        for name, number in port_map.items():
            if number == port:
                return name if re.fullmatch(r"[A-Za-z0-9_.-]+", name) and not name.isdigit() \
                    else '"' + name.replace('"', '\\"') + '"'
    return str(port)


# --------------------------------------------------------------------------------------
# Flow members (struct flow) with their widths in bits

MEMBERS: dict[str, int] = {
    "pkt_mark": 32, "recirc_id": 32, "dp_hash": 32, "conj_id": 32, "skb_priority": 32,
    **{f"reg{i}": 32 for i in range(16)},
    "tun_id": 64, "tun_src": 32, "tun_dst": 32, "metadata": 64, "in_port": 16,
    "vlan_tci": 16, "dl_src": 48, "dl_dst": 48, "dl_type": 16,
    "ipv6_src": 128, "ipv6_dst": 128, "ipv6_label": 32, "nw_src": 32, "nw_dst": 32,
    "nw_proto": 8, "arp_sha": 48, "arp_tha": 48, "nw_tos": 8, "nw_ttl": 8,
    "mpls_lse": 32, "nw_frag": 8, "tp_src": 16, "tp_dst": 16, "nd_target": 128,
    "tcp_flags": 16,
}

ETH_TYPE_IP, ETH_TYPE_IPV6, ETH_TYPE_ARP, ETH_TYPE_RARP = 0x0800, 0x86DD, 0x0806, 0x8035
ETH_TYPE_MPLS, ETH_TYPE_MPLS_MCAST = 0x8847, 0x8848
IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, IPPROTO_ICMPV6 = 1, 6, 17, 132, 58
VLAN_CFI = 0x1000
FRAG_ANY, FRAG_LATER = 1, 2

#: protocol shorthands (ofp_parse_protocol in lib/ofp-parse.c): name -> (dl_type, nw_proto)
PROTOCOLS: dict[str, tuple[int, int]] = {
    "ip": (ETH_TYPE_IP, 0), "ipv4": (ETH_TYPE_IP, 0), "ip4": (ETH_TYPE_IP, 0),
    "arp": (ETH_TYPE_ARP, 0), "icmp": (ETH_TYPE_IP, IPPROTO_ICMP),
    "tcp": (ETH_TYPE_IP, IPPROTO_TCP), "udp": (ETH_TYPE_IP, IPPROTO_UDP),
    "sctp": (ETH_TYPE_IP, IPPROTO_SCTP), "ipv6": (ETH_TYPE_IPV6, 0), "ip6": (ETH_TYPE_IPV6, 0),
    "icmp6": (ETH_TYPE_IPV6, IPPROTO_ICMPV6), "tcp6": (ETH_TYPE_IPV6, IPPROTO_TCP),
    "udp6": (ETH_TYPE_IPV6, IPPROTO_UDP), "sctp6": (ETH_TYPE_IPV6, IPPROTO_SCTP),
    "rarp": (ETH_TYPE_RARP, 0), "mpls": (ETH_TYPE_MPLS, 0), "mplsm": (ETH_TYPE_MPLS_MCAST, 0),
}


# --------------------------------------------------------------------------------------
# The field table (meta-flow.h)


@dataclass(frozen=True)
class MFField:
    """One meta-flow field: ``mff`` is OVS's ``MFF_*`` id, ``name`` its canonical name.

    The field's value occupies ``bits`` of flow member ``member`` after a left
    shift by ``shift``; the extended registers ``xreg<N>`` and ``xxreg<N>`` span
    two and four 32-bit registers instead (:attr:`reg_parts`).
    ``fmt`` is the value syntax (meta-flow.h "Formatting"), ``prereq`` the
    prerequisite (meta-flow.h "Prerequisites"), ``nxm`` the NXM/OXM name printed
    in subfield syntax (``NXM_NX_REG0[0..3]``).
    """

    mff: str
    name: str
    aliases: tuple[str, ...]
    n_bits: int
    maskable: bool
    fmt: str
    prereq: str
    member: str
    shift: int = 0
    bits: int = -1
    nxm: str | None = None
    writable: bool = True
    size: int = 0

    @property
    def n_bytes(self) -> int:
        """The width of the field's value in bytes (meta-flow.h "Type")."""
        return self.size or (self.n_bits + 7) // 8

    @property
    def reg_parts(self) -> tuple[tuple[str, int], ...] | None:
        """For ``xreg<N>``/``xxreg<N>``: ``(register member, shift in the value)`` per
        32-bit register, most significant first (``flow_get_xreg``/``flow_get_xxreg``:
        ``xreg<N>`` is ``reg<2N>`` then ``reg<2N+1>``, ``xxreg<N>`` ``reg<4N>`` to
        ``reg<4N+3>``); None for any other field."""
        if not self.name.startswith(("xreg", "xxreg")):
            return None
        lo, n = int(self.member[3:]), self.n_bits // 32
        return tuple((f"reg{lo + i}", 32 * (n - 1 - i)) for i in range(n))

    @property
    def member_bits(self) -> int:
        if self.bits == -2:  # the whole member (ipv6_label's mask is 32 bits wide)
            return (1 << MEMBERS[self.member]) - 1
        return self.bits if self.bits >= 0 else ((1 << self.n_bits) - 1) << self.shift


def _f(mff, name, aliases, n_bits, maskable, fmt, prereq, member, shift=0, bits=-1,
       nxm=None, writable=True, size=0):
    return MFField(mff, name, tuple(aliases), n_bits, maskable, fmt, prereq, member, shift,
                   bits, nxm, writable, size)


FIELDS: list[MFField] = [
    _f("MFF_DP_HASH", "dp_hash", (), 32, True, "hex", "none", "dp_hash", nxm="NXM_NX_DP_HASH",
       writable=False),
    _f("MFF_RECIRC_ID", "recirc_id", (), 32, False, "dec", "none", "recirc_id",
       nxm="NXM_NX_RECIRC_ID", writable=False),
    _f("MFF_CONJ_ID", "conj_id", (), 32, False, "dec", "none", "conj_id",
       nxm="NXM_NX_CONJ_ID", writable=False),
    _f("MFF_TUN_ID", "tun_id", ("tunnel_id",), 64, True, "hex", "none", "tun_id",
       nxm="NXM_NX_TUN_ID"),
    _f("MFF_TUN_SRC", "tun_src", (), 32, True, "ipv4", "none", "tun_src",
       nxm="NXM_NX_TUN_IPV4_SRC"),
    _f("MFF_TUN_DST", "tun_dst", (), 32, True, "ipv4", "none", "tun_dst",
       nxm="NXM_NX_TUN_IPV4_DST"),
    _f("MFF_METADATA", "metadata", (), 64, True, "hex", "none", "metadata",
       nxm="OXM_OF_METADATA"),
    _f("MFF_IN_PORT", "in_port", (), 16, False, "port", "none", "in_port",
       nxm="NXM_OF_IN_PORT"),
    _f("MFF_IN_PORT_OXM", "in_port_oxm", (), 32, False, "port11", "none", "in_port",
       bits=0xFFFF, nxm="OXM_OF_IN_PORT"),
    _f("MFF_SKB_PRIORITY", "skb_priority", (), 32, False, "hex", "none", "skb_priority",
       writable=False),
    _f("MFF_PKT_MARK", "pkt_mark", (), 32, True, "hex", "none", "pkt_mark",
       nxm="NXM_NX_PKT_MARK"),
    *[_f(f"MFF_REG{i}", f"reg{i}", (), 32, True, "hex", "none", f"reg{i}",
         nxm=f"NXM_NX_REG{i}") for i in range(16)],
    *[_f(f"MFF_XREG{i}", f"xreg{i}", (), 64, True, "hex", "none", f"reg{2 * i}",
         nxm=f"OXM_OF_PKT_REG{i}") for i in range(8)],
    *[_f(f"MFF_XXREG{i}", f"xxreg{i}", (), 128, True, "hex", "none", f"reg{4 * i}",
         nxm=f"NXM_NX_XXREG{i}") for i in range(4)],
    _f("MFF_ETH_SRC", "eth_src", ("dl_src",), 48, True, "mac", "ethernet", "dl_src",
       nxm="NXM_OF_ETH_SRC"),
    _f("MFF_ETH_DST", "eth_dst", ("dl_dst",), 48, True, "mac", "ethernet", "dl_dst",
       nxm="NXM_OF_ETH_DST"),
    _f("MFF_ETH_TYPE", "eth_type", ("dl_type",), 16, False, "hex", "ethernet", "dl_type",
       nxm="NXM_OF_ETH_TYPE", writable=False),
    _f("MFF_VLAN_TCI", "vlan_tci", (), 16, True, "hex", "ethernet", "vlan_tci",
       nxm="NXM_OF_VLAN_TCI"),
    _f("MFF_DL_VLAN", "dl_vlan", (), 12, False, "dec", "ethernet", "vlan_tci", size=2),
    _f("MFF_VLAN_VID", "vlan_vid", (), 12, True, "dec", "ethernet", "vlan_tci",
       nxm="OXM_OF_VLAN_VID", size=2),
    _f("MFF_DL_VLAN_PCP", "dl_vlan_pcp", (), 3, False, "dec", "ethernet", "vlan_tci", 13),
    _f("MFF_VLAN_PCP", "vlan_pcp", (), 3, False, "dec", "vlan_vid", "vlan_tci", 13,
       nxm="OXM_OF_VLAN_PCP"),
    _f("MFF_MPLS_LABEL", "mpls_label", (), 20, False, "dec", "mpls", "mpls_lse", 12,
       nxm="OXM_OF_MPLS_LABEL", size=4),
    _f("MFF_MPLS_TC", "mpls_tc", (), 3, False, "dec", "mpls", "mpls_lse", 9,
       nxm="OXM_OF_MPLS_TC"),
    _f("MFF_MPLS_BOS", "mpls_bos", (), 1, False, "dec", "mpls", "mpls_lse", 8,
       nxm="OXM_OF_MPLS_BOS", writable=False),
    _f("MFF_MPLS_TTL", "mpls_ttl", (), 8, False, "dec", "mpls", "mpls_lse", 0,
       nxm="NXM_NX_MPLS_TTL"),
    _f("MFF_IPV4_SRC", "ip_src", ("nw_src",), 32, True, "ipv4", "ipv4", "nw_src",
       nxm="NXM_OF_IP_SRC"),
    _f("MFF_IPV4_DST", "ip_dst", ("nw_dst",), 32, True, "ipv4", "ipv4", "nw_dst",
       nxm="NXM_OF_IP_DST"),
    _f("MFF_IPV6_SRC", "ipv6_src", (), 128, True, "ipv6", "ipv6", "ipv6_src",
       nxm="NXM_NX_IPV6_SRC"),
    _f("MFF_IPV6_DST", "ipv6_dst", (), 128, True, "ipv6", "ipv6", "ipv6_dst",
       nxm="NXM_NX_IPV6_DST"),
    _f("MFF_IPV6_LABEL", "ipv6_label", (), 20, True, "hex", "ipv6", "ipv6_label", bits=-2,
       nxm="NXM_NX_IPV6_LABEL", size=4),
    _f("MFF_IP_PROTO", "nw_proto", ("ip_proto",), 8, False, "dec", "ip_any", "nw_proto",
       nxm="NXM_OF_IP_PROTO", writable=False),
    _f("MFF_IP_DSCP", "nw_tos", (), 8, False, "dec", "ip_any", "nw_tos", 0, 0xFC,
       nxm="NXM_OF_IP_TOS"),
    _f("MFF_IP_DSCP_SHIFTED", "ip_dscp", (), 6, False, "dec", "ip_any", "nw_tos", 2,
       nxm="OXM_OF_IP_DSCP"),
    _f("MFF_IP_ECN", "nw_ecn", ("ip_ecn",), 2, False, "dec", "ip_any", "nw_tos", 0,
       nxm="NXM_NX_IP_ECN"),
    _f("MFF_IP_TTL", "nw_ttl", (), 8, False, "dec", "ip_any", "nw_ttl", nxm="NXM_NX_IP_TTL"),
    _f("MFF_IP_FRAG", "ip_frag", ("nw_frag",), 2, True, "frag", "ip_any", "nw_frag",
       nxm="NXM_NX_IP_FRAG", writable=False),
    _f("MFF_ARP_OP", "arp_op", (), 16, False, "dec", "arp", "nw_proto", bits=0xFF,
       nxm="NXM_OF_ARP_OP"),
    _f("MFF_ARP_SPA", "arp_spa", (), 32, True, "ipv4", "arp", "nw_src", nxm="NXM_OF_ARP_SPA"),
    _f("MFF_ARP_TPA", "arp_tpa", (), 32, True, "ipv4", "arp", "nw_dst", nxm="NXM_OF_ARP_TPA"),
    _f("MFF_ARP_SHA", "arp_sha", (), 48, True, "mac", "arp", "arp_sha", nxm="NXM_NX_ARP_SHA"),
    _f("MFF_ARP_THA", "arp_tha", (), 48, True, "mac", "arp", "arp_tha", nxm="NXM_NX_ARP_THA"),
    _f("MFF_TCP_SRC", "tcp_src", ("tp_src",), 16, True, "dec", "tcp", "tp_src",
       nxm="NXM_OF_TCP_SRC"),
    _f("MFF_TCP_DST", "tcp_dst", ("tp_dst",), 16, True, "dec", "tcp", "tp_dst",
       nxm="NXM_OF_TCP_DST"),
    _f("MFF_TCP_FLAGS", "tcp_flags", (), 12, True, "tcp_flags", "tcp", "tcp_flags",
       nxm="NXM_NX_TCP_FLAGS", writable=False, size=2),
    _f("MFF_UDP_SRC", "udp_src", (), 16, True, "dec", "udp", "tp_src", nxm="NXM_OF_UDP_SRC"),
    _f("MFF_UDP_DST", "udp_dst", (), 16, True, "dec", "udp", "tp_dst", nxm="NXM_OF_UDP_DST"),
    _f("MFF_SCTP_SRC", "sctp_src", (), 16, True, "dec", "sctp", "tp_src",
       nxm="OXM_OF_SCTP_SRC"),
    _f("MFF_SCTP_DST", "sctp_dst", (), 16, True, "dec", "sctp", "tp_dst",
       nxm="OXM_OF_SCTP_DST"),
    _f("MFF_ICMPV4_TYPE", "icmp_type", (), 8, False, "dec", "icmpv4", "tp_src",
       nxm="NXM_OF_ICMP_TYPE"),
    _f("MFF_ICMPV4_CODE", "icmp_code", (), 8, False, "dec", "icmpv4", "tp_dst",
       nxm="NXM_OF_ICMP_CODE"),
    _f("MFF_ICMPV6_TYPE", "icmpv6_type", (), 8, False, "dec", "icmpv6", "tp_src",
       nxm="NXM_NX_ICMPV6_TYPE"),
    _f("MFF_ICMPV6_CODE", "icmpv6_code", (), 8, False, "dec", "icmpv6", "tp_dst",
       nxm="NXM_NX_ICMPV6_CODE"),
    _f("MFF_ND_TARGET", "nd_target", (), 128, True, "ipv6", "nd", "nd_target",
       nxm="NXM_NX_ND_TARGET"),
    _f("MFF_ND_SLL", "nd_sll", (), 48, True, "mac", "nd_solicit", "arp_sha",
       nxm="NXM_NX_ND_SLL"),
    _f("MFF_ND_TLL", "nd_tll", (), 48, True, "mac", "nd_advert", "arp_tha",
       nxm="NXM_NX_ND_TLL"),
]

_BY_NAME: dict[str, MFField] = {}
_BY_NXM: dict[str, MFField] = {}
for _fld in FIELDS:
    for _n in (_fld.name, *_fld.aliases):
        _BY_NAME[_n] = _fld
    if _fld.nxm:
        _BY_NXM[_fld.nxm] = _fld
# OXM and NXM names that print differently but name the same field
for _alias, _target in {
    "OXM_OF_ETH_SRC": "eth_src", "OXM_OF_ETH_DST": "eth_dst",
    "OXM_OF_ETH_TYPE": "eth_type", "OXM_OF_IPV4_SRC": "ip_src", "OXM_OF_IPV4_DST": "ip_dst",
    "OXM_OF_IP_PROTO": "nw_proto", "OXM_OF_IP_ECN": "nw_ecn", "OXM_OF_TCP_SRC": "tcp_src",
    "OXM_OF_TCP_DST": "tcp_dst", "OXM_OF_UDP_SRC": "udp_src", "OXM_OF_UDP_DST": "udp_dst",
    "OXM_OF_TUNNEL_ID": "tun_id", "OXM_OF_ARP_OP": "arp_op", "OXM_OF_ARP_SPA": "arp_spa",
    "OXM_OF_ARP_TPA": "arp_tpa", "OXM_OF_ARP_SHA": "arp_sha", "OXM_OF_ARP_THA": "arp_tha",
    "OXM_OF_IPV6_SRC": "ipv6_src", "OXM_OF_IPV6_DST": "ipv6_dst",
    "OXM_OF_IPV6_FLABEL": "ipv6_label", "OXM_OF_ICMPV4_TYPE": "icmp_type",
    "OXM_OF_ICMPV4_CODE": "icmp_code", "OXM_OF_ICMPV6_TYPE": "icmpv6_type",
    "OXM_OF_ICMPV6_CODE": "icmpv6_code", "OXM_OF_IPV6_ND_TARGET": "nd_target",
    "OXM_OF_IPV6_ND_SLL": "nd_sll", "OXM_OF_IPV6_ND_TLL": "nd_tll",
}.items():
    _BY_NXM[_alias] = _BY_NAME[_target]


def field_by_name(name: str) -> MFField | None:
    """``mf_from_name``: the field called ``name`` (canonical name or alias), or None."""
    return _BY_NAME.get(name)


def field_by_subfield_name(name: str) -> MFField | None:
    """The field for a name in subfield syntax: NXM/OXM name (``_W`` allowed) or field name."""
    if name.endswith("_W") and name[:-2] in _BY_NXM:
        return _BY_NXM[name[:-2]]
    return _BY_NXM.get(name) or _BY_NAME.get(name)


def subfield_name(field: MFField) -> str:
    """The name ``mf_format_subfield`` prints: NXM name, else OXM name, else field name."""
    return field.nxm or field.name


def field_names() -> list[str]:
    """Every accepted match field name, sorted (for "what would be valid" messages)."""
    return sorted(_BY_NAME)


# --------------------------------------------------------------------------------------
# Value syntax (mf_parse and friends)


def parse_int_string(s: str, n_bytes: int) -> int:
    """``parse_int_string``: decimal or ``0x`` hexadecimal (hex may exceed 64 bits)."""
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", s):
        v = int(s, 16)
    elif re.fullmatch(r"[0-9]+", s):
        v = int(s, 10)
        if v >= 1 << 64:
            raise OverflowError
    else:
        raise ValueError(s)
    if v >= 1 << (8 * n_bytes):
        raise OverflowError
    return v


def str_to_uint(s: str, bits: int, name: str) -> int:
    """``str_to_u8``/``str_to_u16`` (strtol base 0): 'invalid NAME "S"' on failure."""
    try:
        v = _c_int(s)
    except ValueError:
        raise _Err(f'invalid {name} "{s}"', 0, len(s)) from None
    if v < 0 or v >= 1 << bits:
        raise _Err(f'invalid {name} "{s}"', 0, len(s))
    return v


def str_to_u64(s: str) -> int:
    """``str_to_u64``: strtoull base 0, the whole string."""
    if not s:
        raise _Err("missing required numeric argument")
    try:
        v = _c_int(s)
    except ValueError:
        raise _Err(f"invalid numeric format {s}", 0, len(s)) from None
    if not -(1 << 64) < v < 1 << 64:  # strtoull: ERANGE beyond 64 bits either way
        raise _Err(f"invalid numeric format {s}", 0, len(s))
    return v & ((1 << 64) - 1)  # strtoull wraps negative numbers, so -1 is all ones


def _c_int(s: str) -> int:
    """An integer as C's strtol with base 0 reads it (0x hex, 0 octal, decimal)."""
    m = re.fullmatch(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", s)
    if not m:
        raise ValueError(s)
    body = m.group(2)
    if body[:2] in ("0x", "0X"):
        v = int(body, 16)
    elif body.startswith("0"):
        v = int(body, 8)
    else:
        v = int(body)
    return -v if m.group(1) == "-" else v


_MAC_RE = re.compile(r"([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):"
                     r"([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})")


def parse_mac(s: str) -> int | None:
    m = _MAC_RE.fullmatch(s)
    if not m:
        return None
    v = 0
    for g in m.groups():
        v = (v << 8) | int(g, 16)
    return v


def format_mac(v: int) -> str:
    return ":".join(f"{(v >> (40 - 8 * i)) & 0xFF:02x}" for i in range(6))


def parse_ipv4(s: str, wrap: bool = False) -> int | None:
    """A dotted-quad address; ``wrap`` reads octets as ``IP_SCAN_FMT``'s ``%hhu`` (mod 256)."""
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)\.(\d+)", s)
    if not m or (not wrap and any(int(g) > 255 for g in m.groups())):
        return None
    return int.from_bytes(bytes(int(g) & 0xFF for g in m.groups()), "big")


def format_ipv4(v: int) -> str:
    return ".".join(str((v >> s) & 0xFF) for s in (24, 16, 8, 0))


def _ipv4_masked(s: str) -> tuple[int, int]:
    """``ip_parse_masked``: ``A.B.C.D``, ``A.B.C.D/N`` or ``A.B.C.D/M.M.M.M``."""
    addr, _, mask = s.partition("/")
    ip = parse_ipv4(addr, wrap=True)
    if ip is None:
        raise _Err(f"{s}: invalid IP address", 0, len(s))
    if not _:
        return ip, 0xFFFFFFFF
    if re.fullmatch(r"\d+", mask):
        n = int(mask)
        if n > 32:
            raise _Err(f"{s}: network prefix bits not between 0 and 32", 0, len(s))
        return ip, (0xFFFFFFFF << (32 - n)) & 0xFFFFFFFF
    m = parse_ipv4(mask)
    if m is None:
        raise _Err(f"{s}: invalid IP address", 0, len(s))
    return ip, m


def parse_ipv6(s: str) -> int | None:
    try:
        return int(ipaddress.IPv6Address(s))
    except ValueError:
        return None


def format_ipv6(v: int) -> str:
    a = ipaddress.IPv6Address(v)
    if a.ipv4_mapped is not None:
        return f"::ffff:{a.ipv4_mapped}"
    return a.compressed


def _ipv6_masked(s: str) -> tuple[int, int]:
    addr, slash, mask = s.partition("/")
    ip = parse_ipv6(addr)
    if ip is None:
        raise _Err(f"{s}: invalid IPv6 address", 0, len(s))
    full = (1 << 128) - 1
    if not slash:
        return ip, full
    if re.fullmatch(r"\d+", mask):
        n = int(mask)
        if n > 128:
            raise _Err(f"{s}: IPv6 network prefix bits not between 0 and 128", 0, len(s))
        return ip, (full << (128 - n)) & full
    m = parse_ipv6(mask)
    if m is None:
        raise _Err(f"{s}: invalid IPv6 address", 0, len(s))
    return ip, m


def _cidr_len(mask: int, bits: int) -> int | None:
    inv = ~mask & ((1 << bits) - 1)
    if inv & (inv + 1):
        return None
    return bits - inv.bit_length()


def format_ipv4_masked(v: int, m: int) -> str:
    if m == 0xFFFFFFFF:
        return format_ipv4(v)
    n = _cidr_len(m, 32)
    return f"{format_ipv4(v)}/{n}" if n is not None else f"{format_ipv4(v)}/{format_ipv4(m)}"


def format_ipv6_masked(v: int, m: int) -> str:
    if m == (1 << 128) - 1:
        return format_ipv6(v)
    n = _cidr_len(m, 128)
    return f"{format_ipv6(v)}/{n}" if n is not None else f"{format_ipv6(v)}/{format_ipv6(m)}"


def format_mac_masked(v: int, m: int) -> str:
    return format_mac(v) if m == (1 << 48) - 1 else f"{format_mac(v)}/{format_mac(m)}"


TCP_FLAG_NAMES = {0x001: "fin", 0x002: "syn", 0x004: "rst", 0x008: "psh", 0x010: "ack",
                  0x020: "urg", 0x040: "ece", 0x080: "cwr", 0x100: "ns", 0x200: "[200]",
                  0x400: "[400]", 0x800: "[800]"}


def _parse_tcp_flags(s: str) -> tuple[int, int]:
    """``parse_flags`` for TCP flags: ``0xV/0xM``, ``+syn-ack`` or ``syn|ack``."""
    m = re.fullmatch(r"(0[xX][0-9a-fA-F]+|\d+)/(0[xX][0-9a-fA-F]+|\d+)", s)
    if m:
        v, mk = _c_int(m.group(1)), _c_int(m.group(2))
        if v & ~0xFFF or mk & ~0xFFF:
            raise _Err(f"{s}: unknown TCP flag(s)", 0, len(s))
        return v, mk
    if s[:1] in ("+", "-"):
        flags = mask = 0
        i = 0
        while i < len(s):
            if s[i] not in "+-":
                raise _Err(f"{s[i:]}: TCP must be preceded by '+' (for SET) or '-' (NOT SET)",
                           i, len(s) - i)
            sign = s[i]
            i += 1
            for bit, name in TCP_FLAG_NAMES.items():
                if s.startswith(name, i) and (i + len(name) == len(s) or s[i + len(name)] in "+-"):
                    if mask & bit:
                        raise _Err(f"{s[i - 1:]}: Each TCP flag can be specified only once",
                                   i - 1, len(s) - i + 1)
                    mask |= bit
                    if sign == "+":
                        flags |= bit
                    i += len(name)
                    break
            else:
                raise _Err(f"{s[i - 1:]}: unknown TCP flag(s)", i - 1, len(s) - i + 1)
        return flags, mask
    flags = 0
    for part in s.split("|"):
        names = {n: b for b, n in TCP_FLAG_NAMES.items()}
        if part in names:
            flags |= names[part]
            continue
        try:
            v = _c_int(part)
        except ValueError:
            raise _Err(f"{s}: unknown TCP flag(s)", 0, len(s)) from None
        if v & ~0xFFF or v < 0:
            raise _Err(f"{s}: unknown TCP flag(s)", 0, len(s))
        flags |= v
    return flags, 0xFFFF


def format_tcp_flags(v: int, m: int) -> str:
    """``format_flags_masked`` for TCP flags (12 bits)."""
    m &= 0xFFF
    if m == 0xFFF:
        names = [TCP_FLAG_NAMES[b] for b in TCP_FLAG_NAMES if v & b]
        return "|".join(names) if names else "0"
    if not m:
        return "0/0"
    return "".join(("+" if v & b else "-") + n for b, n in TCP_FLAG_NAMES.items() if m & b)


#: nw_frag keywords (mf_from_frag_string): name -> [(mask, value)] (first for 'no'/'later')
_FRAGS = [("no", 3, 0), ("first", 3, 1), ("later", 3, 3), ("no", 1, 0), ("yes", 1, 1),
          ("not_later", 2, 0), ("later", 2, 2)]


def parse_field_value(field: MFField, s: str, port_map: dict[str, int] | None = None
                      ) -> tuple[int, int]:
    """``mf_parse``: ``(value, mask)`` of field ``field`` written as ``s``.

    Raises :class:`_Err` with OVS's message (``mf_parse``'s wording).
    """
    full = (1 << (8 * field.n_bytes)) - 1
    if s == "*":
        return 0, 0
    fmt = field.fmt
    if fmt in ("dec", "hex"):
        value_s, slash, mask_s = s.partition("/")
        what = "value"
        try:
            v = parse_int_string(value_s, field.n_bytes)
            what = "mask"
            m = parse_int_string(mask_s, field.n_bytes) if slash else full
        except OverflowError:
            raise _Err(f"{s}: {what} too large for {field.n_bytes}-byte field {field.name}",
                       0, len(s)) from None
        except ValueError:
            raise _Err(f"{s}: bad syntax for {field.name} {what}", 0, len(s)) from None
    elif fmt == "mac":
        a, slash, b = s.partition("/")
        v, m = parse_mac(a), (parse_mac(b) if slash else full)
        if v is None or m is None:
            raise _Err(f"{s}: invalid Ethernet address", 0, len(s))
    elif fmt == "ipv4":
        v, m = _ipv4_masked(s)
    elif fmt == "ipv6":
        v, m = _ipv6_masked(s)
    elif fmt in ("port", "port11"):
        p = parse_port(s, port_map)
        if p is None:
            raise _Err(f"{s}: invalid or unknown port for {field.name}", 0, len(s))
        v, m = (p, 0xFFFF) if fmt == "port" else (port_to_ofp11(p), 0xFFFFFFFF)
    elif fmt == "frag":
        for name, mk, val in _FRAGS:
            if s.lower() == name:
                v, m = val, mk | 0xFC
                break
        else:
            raise _Err(f'{s}: unknown fragment type (valid types are "no", "yes", "first", '
                       f'"later", "not_later"', 0, len(s))
    elif fmt == "tcp_flags":
        v, m = _parse_tcp_flags(s)
    else:  # pragma: no cover - table is closed
        raise AssertionError(fmt)
    if not field.maskable and m not in (0, full):
        raise _Err(f"{s}: invalid mask for field {field.name}", 0, len(s))
    return v, m


def format_field_value(field: MFField, v: int, m: int | None = None,
                       port_map: dict[str, int] | None = None) -> str:
    """``mf_format``: the value (and mask, when not exact) as OVS prints it."""
    full = (1 << (8 * field.n_bytes)) - 1
    exact = m is None or m == full
    fmt = field.fmt
    if fmt in ("dec", "hex"):
        out = f"{v:#x}" if fmt == "hex" else str(v)
        if fmt == "hex" and v == 0:
            out = "0"
        return out if exact else f"{out}/{m:#x}"
    if fmt == "mac":
        return format_mac(v) if exact else f"{format_mac(v)}/{format_mac(m)}"
    if fmt == "ipv4":
        return format_ipv4_masked(v, full if exact else m)
    if fmt == "ipv6":
        return format_ipv6_masked(v, full if exact else m)
    if fmt == "port":
        return format_port(v, port_map)
    if fmt == "port11":
        port = port_from_ofp11(v)
        return format_port(v if port is None else port, port_map)
    if fmt == "tcp_flags":
        return format_tcp_flags(v, 0xFFF if exact else m)
    return str(v)


# --------------------------------------------------------------------------------------
# Match


class Match:
    """A flow match: per flow member, a value and a mask (``struct match``).

    Set fields with :meth:`set_field` (``mf_set`` semantics, including the
    VLAN special cases of ``match_set_dl_vlan``/``match_set_vlan_vid``); read
    members with :meth:`get` or iterate :meth:`members`.
    """

    __slots__ = ("_m",)

    def __init__(self) -> None:
        self._m: dict[str, tuple[int, int]] = {}

    def copy(self) -> Match:
        other = Match()
        other._m = dict(self._m)
        return other

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Match) and self._m == other._m

    def __hash__(self) -> int:
        return hash(frozenset(self._m.items()))

    def __repr__(self) -> str:
        return f"Match({format_match(self)!r})"

    def members(self) -> dict[str, tuple[int, int]]:
        """Every member with a nonzero mask: ``{member: (value, mask)}``."""
        return dict(self._m)

    def get(self, member: str) -> tuple[int, int]:
        """``(value, mask)`` of a flow member; ``(0, 0)`` when wildcarded."""
        return self._m.get(member, (0, 0))

    def set_member(self, member: str, value: int, mask: int, bits: int | None = None) -> None:
        """Set the bits ``bits`` of ``member`` to ``value``/``mask`` (both already shifted)."""
        width = (1 << MEMBERS[member]) - 1
        bits = width if bits is None else bits & width
        old_v, old_m = self._m.get(member, (0, 0))
        new_m = (old_m & ~bits) | (mask & bits)
        new_v = ((old_v & ~bits) | (value & mask & bits)) & new_m
        if new_m:
            self._m[member] = (new_v, new_m)
        else:
            self._m.pop(member, None)

    def set_field(self, field: MFField, value: int, mask: int | None = None) -> None:
        """``mf_set``: match ``field`` on ``value``/``mask`` (mask None = exact)."""
        full = (1 << (8 * field.n_bytes)) - 1
        if mask is None:
            mask = full
        name = field.name
        parts = field.reg_parts
        if parts is not None:
            for member, shift in parts:
                self.set_member(member, (value >> shift) & 0xFFFFFFFF,
                                (mask >> shift) & 0xFFFFFFFF)
            return
        if name == "dl_vlan":
            if mask == 0:
                self.set_member("vlan_tci", 0, 0, 0x1FFF)
            elif value == 0xFFFF:
                self.set_member("vlan_tci", 0, 0xFFFF)
            else:
                self.set_member("vlan_tci", VLAN_CFI | (value & 0xFFF), 0x1FFF, 0x1FFF)
            return
        if name == "vlan_vid":
            mask &= 0x1FFF
            self.set_member("vlan_tci", value & mask, mask, 0x1FFF)
            return
        if name in ("dl_vlan_pcp", "vlan_pcp"):
            if mask == 0:
                v, m = self.get("vlan_tci")
                if m & 0x0FFF:
                    self.set_member("vlan_tci", 0, 0, 0xE000)
                else:
                    self.set_member("vlan_tci", 0, 0)
                return
            self.set_member("vlan_tci", ((value & 7) << 13) | VLAN_CFI, 0xF000, 0xF000)
            return
        if name == "in_port":
            self.set_member("in_port", value, mask)
            return
        if field.member in ("tp_src", "tp_dst") and field.n_bits == 8:
            # match_set_icmp_type/code match the whole 16-bit tp_src/tp_dst member
            self.set_member(field.member, value & 0xFF, 0xFFFF if mask else 0)
            return
        bits = field.member_bits
        self.set_member(field.member, (value << field.shift) & bits,
                        (mask << field.shift) & bits, bits)

    def get_field(self, field: MFField) -> tuple[int, int]:
        """The field's ``(value, mask)`` as read back from its member bits."""
        parts = field.reg_parts
        if parts is not None:
            value = mask = 0
            for member, shift in parts:
                v, m = self.get(member)
                value |= v << shift
                mask |= m << shift
            return value, mask
        v, m = self.get(field.member)
        bits = field.member_bits
        return (v & bits) >> field.shift, (m & bits) >> field.shift

    # -- prerequisites (mf_are_prereqs_ok, applied per member as nx_put_raw does) --

    def _exact(self, member: str) -> int | None:
        v, m = self.get(member)
        full = (1 << MEMBERS[member]) - 1
        return v if m == full else None

    def prereq_ok(self, prereq: str, encoding: bool = False) -> bool:
        """Whether this match satisfies a meta-flow prerequisite (``mf_are_prereqs_ok``).

        TCP, UDP and SCTP fields also need the match not to be for later
        fragments (which have no L4 header), except with ``encoding``: the
        encoder (``nx_put_raw``, ``ofputil_normalize_match``) looks at the
        protocol only, so such a flow is sent and the switch refuses it.
        """
        if prereq in ("tcp", "udp", "sctp") and not encoding \
                and self.get("nw_frag")[0] & FRAG_LATER:
            return False
        dl_type = self._exact("dl_type")
        proto = self._exact("nw_proto")
        ip_any = dl_type in (ETH_TYPE_IP, ETH_TYPE_IPV6)
        if prereq in ("none", "ethernet"):
            return True
        if prereq == "vlan_vid":
            v, m = self.get("vlan_tci")
            return bool(v & VLAN_CFI)
        if prereq == "ipv4":
            return dl_type == ETH_TYPE_IP
        if prereq == "ipv6":
            return dl_type == ETH_TYPE_IPV6
        if prereq == "ip_any":
            return ip_any
        if prereq == "arp":
            return dl_type in (ETH_TYPE_ARP, ETH_TYPE_RARP)
        if prereq == "mpls":
            return dl_type in (ETH_TYPE_MPLS, ETH_TYPE_MPLS_MCAST)
        if prereq == "tcp":
            return ip_any and proto == IPPROTO_TCP
        if prereq == "udp":
            return ip_any and proto == IPPROTO_UDP
        if prereq == "sctp":
            return ip_any and proto == IPPROTO_SCTP
        if prereq == "icmpv4":
            return dl_type == ETH_TYPE_IP and proto == IPPROTO_ICMP
        if prereq == "icmpv6":
            return dl_type == ETH_TYPE_IPV6 and proto == IPPROTO_ICMPV6
        if prereq.startswith("nd"):
            if not (dl_type == ETH_TYPE_IPV6 and proto == IPPROTO_ICMPV6):
                return False
            t, c = self.get("tp_src")[0], self.get("tp_dst")[0]
            want = {"nd": (135, 136), "nd_solicit": (135,), "nd_advert": (136,)}[prereq]
            return t in want and c == 0
        raise AssertionError(prereq)

    def _member_prereq(self, member: str) -> str:
        dl_type = self._exact("dl_type")
        proto = self._exact("nw_proto")
        if member in ("nw_src", "nw_dst"):
            return "arp" if dl_type in (ETH_TYPE_ARP, ETH_TYPE_RARP) else "ipv4"
        if member in ("ipv6_src", "ipv6_dst", "ipv6_label"):
            return "ipv6"
        if member == "nw_proto":
            return "arp" if dl_type in (ETH_TYPE_ARP, ETH_TYPE_RARP) else "ip_any"
        if member in ("nw_tos", "nw_ttl", "nw_frag"):
            return "ip_any"
        if member in ("tp_src", "tp_dst"):
            if proto == IPPROTO_ICMP:
                return "icmpv4"
            if proto == IPPROTO_ICMPV6:
                return "icmpv6"
            return {IPPROTO_UDP: "udp", IPPROTO_SCTP: "sctp"}.get(proto, "tcp")
        if member == "tcp_flags":
            return "tcp"
        if member in ("arp_sha", "arp_tha"):
            if dl_type == ETH_TYPE_IPV6:
                return "nd_solicit" if member == "arp_sha" else "nd_advert"
            return "arp"
        if member == "nd_target":
            return "nd"
        if member == "mpls_lse":
            return "mpls"
        return "none"

    def unmet_prerequisites(self, encoding: bool = True) -> list[str]:
        """Members set without their prerequisites: with ``encoding``, those OVS
        leaves out of the flow it sends; without, those the switch refuses
        (``OFPBMC_BAD_PREREQ``, see :meth:`prereq_ok`)."""
        return [mb for mb in self._m if not self.prereq_ok(self._member_prereq(mb), encoding)]

    def normalize(self) -> list[str]:
        """Drop members whose prerequisites are missing, as OVS's match encoding does.

        ``nx_put_raw`` (lib/nx-match.c) and ``ofputil_normalize_match`` put only
        fields whose prerequisites hold into the flow the switch receives, so a
        ``tp_dst=80`` without ``tcp`` matches every packet. Returns the dropped members.
        """
        dropped = []
        while True:
            bad = self.unmet_prerequisites()
            if not bad:
                return dropped
            for mb in bad:
                del self._m[mb]
            dropped.extend(bad)


def format_match(match: Match, priority: int = 32768,
                 port_map: dict[str, int] | None = None) -> str:
    """``match_format``: the canonical match string ``ovs-ofctl`` prints."""
    out: list[str] = []
    g = match.get
    if priority != 32768:
        out.append(f"priority={priority}")

    def u32(name: str, member: str) -> None:
        v, m = g(member)
        if m:
            s = f"{name}={_hexc(v)}"
            if m != 0xFFFFFFFF:
                s += f"/{_hexc(m)}"
            out.append(s)

    u32("pkt_mark", "pkt_mark")
    u32("recirc_id", "recirc_id")
    u32("dp_hash", "dp_hash")
    if g("conj_id")[1]:
        out.append(f"conj_id={g('conj_id')[0]}")
    if g("skb_priority")[1]:
        out.append(f"skb_priority={_hexc(g('skb_priority')[0])}")

    dl_type, dl_mask = g("dl_type")
    proto, proto_mask = g("nw_proto")
    skip_type = skip_proto = False
    if dl_mask:
        skip_type = True
        if dl_type in (ETH_TYPE_IP, ETH_TYPE_IPV6):
            names = ({IPPROTO_ICMP: "icmp", IPPROTO_TCP: "tcp", IPPROTO_UDP: "udp",
                      IPPROTO_SCTP: "sctp"} if dl_type == ETH_TYPE_IP else
                     {IPPROTO_ICMPV6: "icmp6", IPPROTO_TCP: "tcp6", IPPROTO_UDP: "udp6",
                      IPPROTO_SCTP: "sctp6"})
            base = "ip" if dl_type == ETH_TYPE_IP else "ipv6"
            if proto_mask and proto in names:
                out.append(names[proto])
                skip_proto = True
            else:
                out.append(base)
        elif dl_type in _TYPE_NAMES:
            out.append(_TYPE_NAMES[dl_type])
        else:
            skip_type = False
    for i in range(16):
        u32(f"reg{i}", f"reg{i}")
    v, m = g("tun_id")
    if m:
        out.append(f"tun_id={_hexc(v)}" + ("" if m == (1 << 64) - 1 else f"/{_hexc(m)}"))
    for name in ("tun_src", "tun_dst"):
        v, m = g(name)
        if m:
            out.append(f"{name}={format_ipv4_masked(v, m)}")
    v, m = g("metadata")
    if m:
        out.append(f"metadata={_hexc(v)}" + ("" if m == (1 << 64) - 1 else f"/{_hexc(m)}"))
    if g("in_port")[1]:
        out.append(f"in_port={format_port(g('in_port')[0], port_map)}")
    tci, tmask = g("vlan_tci")
    if tmask:
        vid_m, pcp_m, cfi = tmask & 0x0FFF, tmask & 0xE000, tmask & VLAN_CFI
        if (cfi and tci & VLAN_CFI and vid_m in (0, 0x0FFF) and pcp_m in (0, 0xE000)
                and (vid_m or pcp_m)):
            if vid_m:
                out.append(f"dl_vlan={tci & 0xFFF}")
            if pcp_m:
                out.append(f"dl_vlan_pcp={tci >> 13}")
        elif tmask == 0xFFFF:
            out.append(f"vlan_tci=0x{tci:04x}")
        else:
            out.append(f"vlan_tci=0x{tci:04x}/0x{tmask:04x}")
    for name in ("dl_src", "dl_dst"):
        v, m = g(name)
        if m:
            out.append(f"{name}={format_mac_masked(v, m)}")
    if not skip_type and dl_mask:
        out.append(f"dl_type=0x{dl_type:04x}")
    is_arp = dl_type in (ETH_TYPE_ARP, ETH_TYPE_RARP)
    if dl_type == ETH_TYPE_IPV6:
        for name in ("ipv6_src", "ipv6_dst"):
            v, m = g(name)
            if m:
                out.append(f"{name}={format_ipv6_masked(v, m)}")
        v, m = g("ipv6_label")
        if m:
            out.append(f"ipv6_label=0x{v:05x}" + ("" if m == 0xFFFFFFFF else f"/0x{m:05x}"))
    else:
        for name, member in (("arp_spa" if is_arp else "nw_src", "nw_src"),
                             ("arp_tpa" if is_arp else "nw_dst", "nw_dst")):
            v, m = g(member)
            if m:
                out.append(f"{name}={format_ipv4_masked(v, m)}")
    if not skip_proto and proto_mask:
        out.append(f"{'arp_op' if is_arp else 'nw_proto'}={proto}")
    if is_arp:
        for name in ("arp_sha", "arp_tha"):
            v, m = g(name)
            if m:
                out.append(f"{name}={format_mac_masked(v, m)}")
    tos, tos_m = g("nw_tos")
    if tos_m & 0xFC:
        out.append(f"nw_tos={tos & 0xFC}")
    if tos_m & 0x03:
        out.append(f"nw_ecn={tos & 0x03}")
    if g("nw_ttl")[1]:
        out.append(f"nw_ttl={g('nw_ttl')[0]}")
    lse, lse_m = g("mpls_lse")
    if lse_m & 0xFFFFF000:
        out.append(f"mpls_label={lse >> 12}")
    if lse_m & 0x00000E00:
        out.append(f"mpls_tc={(lse >> 9) & 7}")
    if lse_m & 0xFF:
        out.append(f"mpls_ttl={lse & 0xFF}")
    if lse_m & 0x100:
        out.append(f"mpls_bos={(lse >> 8) & 1}")
    fv, fm = g("nw_frag")
    fm &= 3
    if fm == 3:
        out.append("nw_frag=" + (("later" if fv & 2 else "first") if fv & 1 else
                                 ("<error>" if fv & 2 else "no")))
    elif fm == 1:
        out.append("nw_frag=" + ("yes" if fv & 1 else "no"))
    elif fm == 2:
        out.append("nw_frag=" + ("later" if fv & 2 else "not_later"))
    if (dl_type == ETH_TYPE_IP and proto == IPPROTO_ICMP) or (
            dl_type == ETH_TYPE_IPV6 and proto == IPPROTO_ICMPV6):
        _be16(out, "icmp_type", *g("tp_src"))
        _be16(out, "icmp_code", *g("tp_dst"))
        if dl_type == ETH_TYPE_IPV6:
            v, m = g("nd_target")
            if m:
                out.append(f"nd_target={format_ipv6_masked(v, m)}")
            for name, member in (("nd_sll", "arp_sha"), ("nd_tll", "arp_tha")):
                v, m = g(member)
                if m:
                    out.append(f"{name}={format_mac_masked(v, m)}")
    else:
        _be16(out, "tp_src", *g("tp_src"))
        _be16(out, "tp_dst", *g("tp_dst"))
    v, m = g("tcp_flags")
    if dl_type in (ETH_TYPE_IP, ETH_TYPE_IPV6) and proto == IPPROTO_TCP and m:
        out.append(f"tcp_flags={format_tcp_flags(v, m)}")
    return ",".join(out)


_TYPE_NAMES = {ETH_TYPE_ARP: "arp", ETH_TYPE_RARP: "rarp", ETH_TYPE_MPLS: "mpls",
               ETH_TYPE_MPLS_MCAST: "mplsm"}


def _hexc(v: int) -> str:
    """C's ``%#x``: ``0`` for zero, ``0x..`` otherwise."""
    return f"{v:#x}" if v else "0"


def _be16(out: list[str], name: str, v: int, m: int) -> None:
    if m == 0xFFFF:
        out.append(f"{name}={v}")
    elif m:
        out.append(f"{name}={v:#x}/{m:#x}")
