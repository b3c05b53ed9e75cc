"""Printing datapath flow keys, masks and actions in ODP syntax.

This is the formatting half of Open vSwitch's ``lib/odp-util.c``: it reads
netlink attributes (kernel encoding, see :mod:`ovsnet.datapath.odp_attrs`)
and writes the text that ``ovs-appctl dpctl/dump-flows`` prints. Each
function names the C function it mirrors, so the two can be read side by
side: :func:`format_key` is ``odp_flow_format``, :func:`format_key_attr` is
``format_odp_key_attr__``, :func:`format_actions` is ``format_odp_actions``.

Attributes this module does not model (NSH, conntrack original tuples, VXLAN
GBP, ERSPAN, GTP-U, ``ct``, ``tnl_push``, ``push_nsh``...) are printed in
OVS's generic forms (``key<N>(...)``, ``action<N>(...)``) rather than
guessed at.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Mapping

from ovsnet.datapath.odp_attrs import (
    TUNNEL_ATTR_LEN,
    ActionAttr,
    CheckPktLenAttr,
    HashAlg,
    KeyAttr,
    SampleAttr,
    TunnelAttr,
    UserspaceAttr,
    iter_nla,
)

__all__ = [
    "TNL_FLAG_NAMES",
    "TCP_FLAG_NAMES",
    "CT_STATE_NAMES",
    "format_actions",
    "format_key",
    "format_key_attr",
    "format_tcp_flags_stats",
]

Ports = Mapping[int, str] | None

# Payload sizes of fixed-size key attributes (``ovs_flow_key_attr_lens``);
# None marks nested or variable-size attributes.
KEY_ATTR_LEN: dict[int, int | None] = {
    KeyAttr.ENCAP: None,
    KeyAttr.PRIORITY: 4,
    KeyAttr.IN_PORT: 4,
    KeyAttr.ETHERNET: 12,
    KeyAttr.VLAN: 2,
    KeyAttr.ETHERTYPE: 2,
    KeyAttr.IPV4: 12,
    KeyAttr.IPV6: 40,
    KeyAttr.TCP: 4,
    KeyAttr.UDP: 4,
    KeyAttr.ICMP: 2,
    KeyAttr.ICMPV6: 2,
    KeyAttr.ARP: 24,
    KeyAttr.ND: 28,
    KeyAttr.SKB_MARK: 4,
    KeyAttr.TUNNEL: None,
    KeyAttr.SCTP: 4,
    KeyAttr.TCP_FLAGS: 2,
    KeyAttr.DP_HASH: 4,
    KeyAttr.RECIRC_ID: 4,
    KeyAttr.MPLS: None,
    KeyAttr.CT_STATE: 4,
    KeyAttr.CT_ZONE: 2,
    KeyAttr.CT_MARK: 4,
    KeyAttr.CT_LABELS: 16,
    KeyAttr.CT_ORIG_TUPLE_IPV4: 16,
    KeyAttr.CT_ORIG_TUPLE_IPV6: 40,
    KeyAttr.NSH: None,
    KeyAttr.PACKET_TYPE: 4,
    KeyAttr.ND_EXTENSIONS: 8,
}

TUN_ATTR_LEN = TUNNEL_ATTR_LEN

#: ODP names of key attributes (``ovs_key_attr_to_string``)
KEY_ATTR_NAMES: dict[int, str] = {
    KeyAttr.ENCAP: "encap",
    KeyAttr.PRIORITY: "skb_priority",
    KeyAttr.SKB_MARK: "skb_mark",
    KeyAttr.CT_STATE: "ct_state",
    KeyAttr.CT_ZONE: "ct_zone",
    KeyAttr.CT_MARK: "ct_mark",
    KeyAttr.CT_LABELS: "ct_label",
    KeyAttr.CT_ORIG_TUPLE_IPV4: "ct_tuple4",
    KeyAttr.CT_ORIG_TUPLE_IPV6: "ct_tuple6",
    KeyAttr.TUNNEL: "tunnel",
    KeyAttr.IN_PORT: "in_port",
    KeyAttr.ETHERNET: "eth",
    KeyAttr.VLAN: "vlan",
    KeyAttr.ETHERTYPE: "eth_type",
    KeyAttr.IPV4: "ipv4",
    KeyAttr.IPV6: "ipv6",
    KeyAttr.TCP: "tcp",
    KeyAttr.TCP_FLAGS: "tcp_flags",
    KeyAttr.UDP: "udp",
    KeyAttr.SCTP: "sctp",
    KeyAttr.ICMP: "icmp",
    KeyAttr.ICMPV6: "icmpv6",
    KeyAttr.ARP: "arp",
    KeyAttr.ND: "nd",
    KeyAttr.ND_EXTENSIONS: "nd_ext",
    KeyAttr.MPLS: "mpls",
    KeyAttr.DP_HASH: "dp_hash",
    KeyAttr.RECIRC_ID: "recirc_id",
    KeyAttr.PACKET_TYPE: "packet_type",
    KeyAttr.NSH: "nsh",
}

#: flow tunnel flag bits (``FLOW_TNL_F_*``) and their names
TNL_FLAG_NAMES = {0x1: "oam", 0x2: "df", 0x4: "csum", 0x8: "key"}
TNL_FLAGS_MASK = 0xF
#: TCP flag bits (``packet_tcp_flag_to_string``)
TCP_FLAG_NAMES = {
    0x001: "fin", 0x002: "syn", 0x004: "rst", 0x008: "psh", 0x010: "ack", 0x020: "urg",
    0x040: "ece", 0x080: "cwr", 0x100: "ns", 0x200: "[200]", 0x400: "[400]", 0x800: "[800]",
}
TCP_FLAGS_MASK = 0x0FFF
#: conntrack state bits (``odp_ct_state_to_string``, ``OVS_CS_F_*``)
CT_STATE_NAMES = {
    0x01: "new", 0x02: "est", 0x04: "rel", 0x08: "rpl",
    0x10: "inv", 0x20: "trk", 0x40: "snat", 0x80: "dnat",
}

_FRAG_NAMES = {0: "no", 1: "first", 2: "later"}


# ---------------------------------------------------------------------------
# Small formatters (the format_* helpers near the top of odp-util.c)
# ---------------------------------------------------------------------------


def _mac(b: bytes | memoryview) -> str:
    return ":".join(f"{x:02x}" for x in bytes(b))


def _ip4(b: bytes | memoryview) -> str:
    return ".".join(str(x) for x in bytes(b))


def _ip6(b: bytes | memoryview) -> str:
    return str(ipaddress.IPv6Address(bytes(b)))


def put_hex(b: bytes | memoryview) -> str:
    """``ds_put_hex``: ``0x`` and the bytes as one big-endian number, or ``0``."""
    raw = bytes(b).lstrip(b"\0")
    if not raw:
        return "0"
    return f"0x{raw[0]:x}" + raw[1:].hex()


def format_flags(names: Mapping[int, str], flags: int, sep: str = "|") -> str:
    """``format_flags``: named bits lowest first, unknown bits as one hex number."""
    if not flags:
        return "0"
    out = []
    bad = 0
    bit = 1
    while flags:
        if flags & bit:
            if bit in names:
                out.append(names[bit])
            else:
                bad |= bit
            flags &= ~bit
        bit <<= 1
    if bad:
        out.append(f"0x{bad:x}")
    return sep.join(out)


def format_flags_masked(names: Mapping[int, str], flags: int, mask: int, max_mask: int) -> str:
    """``format_flags_masked``: ``+name-name`` for each bit in the mask."""
    if mask == max_mask:
        return format_flags(names, flags)
    if not mask:
        return "0/0"
    out = []
    bit = 1
    while mask:
        if mask & bit:
            out.append(("+" if flags & bit else "-") + names.get(bit, "[Unknown]"))
            mask &= ~bit
        bit <<= 1
    return "".join(out)


def _hexs(v: int) -> str:
    """C's ``%#x``: ``0`` for zero, else ``0x...``."""
    return f"{v:#x}" if v else "0"


def _u(out, name, key, mask, full, verbose):
    if verbose or mask is None or mask:
        s = f"{name}={key}"
        if mask is not None and mask != full:
            s += "/" + _hexs(mask)
        out.append(s)


def _x(out, name, key, mask, full, verbose):
    if verbose or mask is None or mask:
        s = f"{name}={_hexs(key)}"
        if mask is not None and mask != full:
            s += "/" + _hexs(mask)
        out.append(s)


def _eth(out, name, key, mask, verbose):
    """``format_eth``."""
    if verbose or mask is None or any(mask):
        if mask is None or bytes(mask) == b"\xff" * 6:
            out.append(f"{name}={_mac(key)}")
        else:
            out.append(f"{name}={_mac(key)}/{_mac(mask)}")


def _ipv4(out, name, key, mask, verbose):
    """``format_ipv4``."""
    if verbose or mask is None or any(mask):
        s = f"{name}={_ip4(key)}"
        if mask is not None and bytes(mask) != b"\xff" * 4:
            s += "/" + _ip4(mask)
        out.append(s)


def _in6(out, name, key, mask, verbose):
    """``format_in6_addr``."""
    if verbose or mask is None or any(mask):
        s = f"{name}={_ip6(key)}"
        if mask is not None and bytes(mask) != b"\xff" * 16:
            s += "/" + _ip6(mask)
        out.append(s)


def _frag(out, key, mask):
    """``format_frag``: an enumeration, so partial masks are an error."""
    if mask is not None and mask not in (0, 0xFF):
        out.append(f"error: partial mask not supported for frag ({_hexs(mask)})")
    elif mask is None or mask:
        out.append(f"frag={_FRAG_NAMES.get(key, '<error>')}")


def format_vlan_tci(tci: int, mask: int, verbose: bool) -> str:
    """``format_vlan_tci``."""
    out = []
    vid, mvid = tci & 0xFFF, mask & 0xFFF
    pcp, mpcp = tci >> 13, mask >> 13
    if verbose or vid or mvid:
        s = f"vid={vid}"
        if mvid != 0xFFF:
            s += f"/0x{mvid:x}"
        out.append(s)
    if verbose or pcp or mpcp:
        s = f"pcp={pcp}"
        if mpcp != 7:
            s += f"/0x{mpcp:x}"
        out.append(s)
    if not tci & 0x1000:
        out.append("cfi=0")
    return ",".join(out)


def format_mpls_lse(lse: int) -> str:
    """``format_mpls_lse``."""
    return f"label={lse >> 12},tc={(lse >> 9) & 7},ttl={lse & 0xFF},bos={(lse >> 8) & 1}"


def _generic(payload: bytes | memoryview) -> str:
    """``format_generic_odp_key``: payload bytes in hex."""
    return bytes(payload).hex()


# ---------------------------------------------------------------------------
# Mask classification (odp_mask_is_constant__)
# ---------------------------------------------------------------------------


def _mask_is_constant(attr: int, mask: bytes, exact: bool) -> bool:
    byte = 0xFF if exact else 0
    if attr in (KeyAttr.UNSPEC, KeyAttr.ENCAP, KeyAttr.TUNNEL_INFO) or attr not in KEY_ATTR_NAMES:
        return False
    if attr == KeyAttr.TCP_FLAGS:
        return (int.from_bytes(mask[:2], "big") & TCP_FLAGS_MASK) == (TCP_FLAGS_MASK if exact else 0)
    if attr == KeyAttr.IPV6:
        label = int.from_bytes(mask[32:36], "big") & 0xFFFFF
        return (label == (0xFFFFF if exact else 0)
                and all(b == byte for b in mask[:32]) and all(b == byte for b in mask[36:40]))
    if attr == KeyAttr.ARP:
        mask = mask[:22]
    elif attr == KeyAttr.CT_ORIG_TUPLE_IPV4:
        mask = mask[:13]
    elif attr == KeyAttr.CT_ORIG_TUPLE_IPV6:
        mask = mask[:37]
    return all(b == byte for b in mask)


def mask_is_wildcard(attr: int, mask: bytes) -> bool:
    """``odp_mask_attr_is_wildcard``."""
    return _mask_is_constant(attr, mask, False)


def mask_is_exact(attr: int, mask: bytes) -> bool:
    """``odp_mask_attr_is_exact``."""
    return _mask_is_constant(attr, mask, True)


def _find(buf: bytes | None, attr_type: int) -> bytes | None:
    """``nl_attr_find__``: payload of the first attribute of a type."""
    if not buf:
        return None
    for t, payload in iter_nla(buf):
        if t == attr_type:
            return bytes(payload)
    return None


def _zero_mask(attr_type: int, payload: bytes, table: Mapping[int, int | None],
               nested: bool) -> bytes:
    """``generate_all_wildcard_mask``: an all-zero mask shaped like ``payload``."""
    if not nested:
        return bytes(len(payload))
    from ovsnet.datapath.odp_attrs import nla
    out = []
    for t, p in iter_nla(payload):
        out.append(nla(t, bytes(len(p))))
    return b"".join(out)


# ---------------------------------------------------------------------------
# Key attributes
# ---------------------------------------------------------------------------


def _check_len(a_type: int, payload: bytes, mask: bytes | None,
               table: Mapping[int, int | None], need_key: bool) -> str | None:
    """``check_attr_len``: None if fine, else the text OVS prints instead."""
    if a_type not in table:
        return None
    expected = table[a_type]
    if expected is None:
        return None
    bad_key = len(payload) != expected
    bad_mask = mask is not None and len(mask) != expected
    if not (bad_key or bad_mask):
        return None
    s = f"key{a_type}" if need_key else ""
    if bad_key:
        s += f"(bad key length {len(payload)}, expected {expected})("
    s += _generic(payload)
    if mask is not None:
        s += "/"
        if bad_mask:
            s += f"(bad mask length {len(mask)}, expected {expected})("
        s += _generic(mask)
    return s + ")"


def _format_geneve(key: bytes, mask: bytes | None, verbose: bool) -> str:
    """``format_odp_tun_geneve`` / ``format_geneve_opts``."""
    if mask is not None and len(mask) != len(key):
        return f"value len {len(key)} different from mask len {len(mask)}"
    out = []
    ofs = 0
    while ofs < len(key):
        left = len(key) - ofs
        if left < 4:
            out.append(f"opt len {left} less than minimum 4")
            break
        data_len = (key[ofs + 3] & 0x1F) * 4
        if mask is not None:
            mlen = mask[ofs + 3] & 0x1F
            data_len_mask = 0xFF if mlen == 0x1F else mlen
        total = 4 + data_len
        if total > left:
            out.append(f"opt len {total} greater than remaining {left}")
            break
        parts: list[str] = []
        cls = int.from_bytes(key[ofs:ofs + 2], "big")
        _x(parts, "class", cls, None if mask is None else int.from_bytes(mask[ofs:ofs + 2], "big"),
           0xFFFF, verbose)
        _x(parts, "type", key[ofs + 2], None if mask is None else mask[ofs + 2], 0xFF, verbose)
        _u(parts, "len", data_len, None if mask is None else data_len_mask, 0xFF, verbose)
        data = key[ofs + 4:ofs + total]
        mdata = None if mask is None else mask[ofs + 4:ofs + total]
        body = ",".join(parts)
        if data_len and (verbose or mdata is None or any(mdata)):
            body += ("," if parts else "") + put_hex(data)
            if mdata is not None and mdata != b"\xff" * data_len:
                body += "/" + put_hex(mdata)
        out.append("{" + body + "}")
        ofs += total
    return "".join(out)


def format_tunnel(key: bytes, mask: bytes | None, verbose: bool) -> str:
    """``format_odp_tun_attr``: the inside of ``tunnel(...)``."""
    out: list[str] = []
    flags = mask_flags = 0
    for t, p in iter_nla(key):
        p = bytes(p)
        ma = None
        if mask is not None:
            ma = _find(mask, t)
            if ma is None:
                ma = bytes(len(p)) if TUN_ATTR_LEN.get(t, -1) is not None else b""
        bad = _check_len(t, p, ma, TUN_ATTR_LEN, True)
        if bad is not None:
            out.append(bad)
            continue
        if t == TunnelAttr.ID:
            v = int.from_bytes(p, "big")
            m = None if ma is None else int.from_bytes(ma, "big")
            if verbose or m is None or m:
                s = f"tun_id=0x{v:x}"
                if m is not None and m != (1 << 64) - 1:
                    s += "/" + _hexs(m)
                out.append(s)
            flags |= 0x8
            if ma is not None:
                mask_flags |= 0x8
        elif t in (TunnelAttr.IPV4_SRC, TunnelAttr.IPV4_DST):
            _ipv4(out, "src" if t == TunnelAttr.IPV4_SRC else "dst", p, ma, verbose)
        elif t in (TunnelAttr.IPV6_SRC, TunnelAttr.IPV6_DST):
            _in6(out, "ipv6_src" if t == TunnelAttr.IPV6_SRC else "ipv6_dst", p, ma, verbose)
        elif t == TunnelAttr.TOS:
            _x(out, "tos", p[0], None if ma is None else ma[0], 0xFF, verbose)
        elif t == TunnelAttr.TTL:
            _u(out, "ttl", p[0], None if ma is None else ma[0], 0xFF, verbose)
        elif t == TunnelAttr.DONT_FRAGMENT:
            flags |= 0x2
        elif t == TunnelAttr.CSUM:
            flags |= 0x4
        elif t == TunnelAttr.OAM:
            flags |= 0x1
        elif t in (TunnelAttr.TP_SRC, TunnelAttr.TP_DST):
            _u(out, "tp_src" if t == TunnelAttr.TP_SRC else "tp_dst", int.from_bytes(p, "big"),
               None if ma is None else int.from_bytes(ma, "big"), 0xFFFF, verbose)
        elif t == TunnelAttr.GENEVE_OPTS:
            out.append("geneve(" + _format_geneve(p, ma, verbose) + ")")
        elif t == TunnelAttr.PAD:
            pass
        else:
            s = f"key{t}(" + _generic(p)
            if ma is not None and not all(b == 0xFF for b in ma):
                s += "/" + _generic(ma)
            out.append(s + ")")
    if mask is not None:
        for t, _ in iter_nla(mask):
            mask_flags |= {TunnelAttr.DONT_FRAGMENT: 0x2, TunnelAttr.CSUM: 0x4,
                           TunnelAttr.OAM: 0x1}.get(t, 0)
    # format_tun_flags
    if verbose or mask is None or mask_flags:
        if mask is not None:
            out.append("flags(" + format_flags_masked(TNL_FLAG_NAMES, flags,
                                                      mask_flags & TNL_FLAGS_MASK,
                                                      TNL_FLAGS_MASK) + ")")
        else:
            out.append("flags(" + format_flags(TNL_FLAG_NAMES, flags) + ")")
    return ",".join(out)


def format_key_attr(a_type: int, key: bytes, mask: bytes | None, ports: Ports,
                    verbose: bool) -> str:
    """``format_odp_key_attr__``: one attribute, ``name(...)``.

    ``mask`` None means exact (as for ``set`` actions), otherwise it is the
    mask attribute's payload, of the same length.
    """
    is_exact = True if mask is None else mask_is_exact(a_type, mask)
    name = KEY_ATTR_NAMES.get(a_type, f"key{a_type}")
    out: list[str] = []
    body: str
    m = mask
    if a_type == KeyAttr.ENCAP:
        if m is not None and len(m) and len(key):
            body = format_key(key, m, ports=None, verbose=verbose)
        elif len(key):
            body = format_key(key, None, ports=None, verbose=verbose)
        else:
            body = ""
    elif a_type in (KeyAttr.PRIORITY, KeyAttr.SKB_MARK, KeyAttr.DP_HASH, KeyAttr.RECIRC_ID):
        body = _hexs(struct.unpack("=I", key)[0])
        if not is_exact:
            body += "/" + _hexs(struct.unpack("=I", m)[0])
    elif a_type == KeyAttr.CT_MARK:
        body = ""
        if verbose or (m is not None and any(m)) or m is None:
            body = _hexs(struct.unpack("=I", key)[0])
            if not is_exact:
                body += "/" + _hexs(struct.unpack("=I", m)[0])
    elif a_type == KeyAttr.CT_STATE:
        v = struct.unpack("=I", key)[0]
        mv = 0 if m is None or not any(m) else struct.unpack("=I", m)[0]
        if verbose:
            body = _hexs(v)
            if not is_exact:
                body += "/" + _hexs(mv)
        elif not is_exact:
            body = format_flags_masked(CT_STATE_NAMES, v, mv, 0xFFFFFFFF)
        else:
            body = format_flags(CT_STATE_NAMES, v)
    elif a_type == KeyAttr.CT_ZONE:
        body = ""
        if verbose or m is None or any(m):
            body = _hexs(struct.unpack("=H", key)[0])
            if not is_exact:
                body += "/" + _hexs(struct.unpack("=H", m)[0])
    elif a_type == KeyAttr.CT_LABELS:
        # format_u128: the value is a host-order u128, printed big-endian.
        body = ""
        if verbose or (m is not None and any(m)):
            body = put_hex(key[::-1])
            if m is not None and m != b"\xff" * 16:
                body += "/" + put_hex(m[::-1])
    elif a_type == KeyAttr.TUNNEL:
        body = format_tunnel(key, m, verbose)
    elif a_type == KeyAttr.IN_PORT:
        port = struct.unpack("=I", key)[0]
        if is_exact:
            body = ports[port] if ports and port in ports else str(port)
        else:
            body = f"{port}/{_hexs(struct.unpack('=I', m)[0])}"
    elif a_type == KeyAttr.PACKET_TYPE:
        v = int.from_bytes(key, "big")
        mv = 0xFFFFFFFF if m is None else int.from_bytes(m, "big")
        _u(out, "ns", v >> 16, mv >> 16, 0xFFFF, verbose)
        _x(out, "id", v & 0xFFFF, mv & 0xFFFF, 0xFFFF, verbose)
        body = ",".join(out)
    elif a_type == KeyAttr.ETHERNET:
        _eth(out, "src", key[0:6], None if m is None else m[0:6], verbose)
        _eth(out, "dst", key[6:12], None if m is None else m[6:12], verbose)
        body = ",".join(out)
    elif a_type == KeyAttr.VLAN:
        body = format_vlan_tci(int.from_bytes(key, "big"),
                               0xFFFF if m is None else int.from_bytes(m, "big"), verbose)
    elif a_type == KeyAttr.MPLS:
        if not len(key) or len(key) % 4:
            return f"{name}((bad key length {len(key)}))"
        lses = [int.from_bytes(key[i:i + 4], "big") for i in range(0, len(key), 4)]
        if is_exact:
            body = ",".join(format_mpls_lse(x) for x in lses)
        else:
            if len(m) != len(key):
                return f"{name}((key length {len(key)} != mask length {len(m)}))"
            parts = []
            for i, k in enumerate(lses):
                mk = int.from_bytes(m[4 * i:4 * i + 4], "big")
                parts.append(f"label={k >> 12}/0x{mk >> 12:x},tc={(k >> 9) & 7}/{(mk >> 9) & 7:x},"
                             f"ttl={k & 0xFF}/0x{mk & 0xFF:x},bos={(k >> 8) & 1}/{(mk >> 8) & 1:x}")
            body = ",".join(parts)
    elif a_type == KeyAttr.ETHERTYPE:
        body = f"0x{int.from_bytes(key, 'big'):04x}"
        if not is_exact:
            body += f"/0x{int.from_bytes(m, 'big'):04x}"
    elif a_type == KeyAttr.IPV4:
        _ipv4(out, "src", key[0:4], None if m is None else m[0:4], verbose)
        _ipv4(out, "dst", key[4:8], None if m is None else m[4:8], verbose)
        _u(out, "proto", key[8], None if m is None else m[8], 0xFF, verbose)
        _x(out, "tos", key[9], None if m is None else m[9], 0xFF, verbose)
        _u(out, "ttl", key[10], None if m is None else m[10], 0xFF, verbose)
        _frag(out, key[11], None if m is None else m[11])
        body = ",".join(out)
    elif a_type == KeyAttr.IPV6:
        _in6(out, "src", key[0:16], None if m is None else m[0:16], verbose)
        _in6(out, "dst", key[16:32], None if m is None else m[16:32], verbose)
        label = int.from_bytes(key[32:36], "big")
        mlabel = None if m is None else int.from_bytes(m[32:36], "big")
        if verbose or mlabel is None or mlabel:
            s = f"label={_hexs(label)}"
            if mlabel is not None and (mlabel & 0xFFFFF) != 0xFFFFF:
                s += "/" + _hexs(mlabel)
            out.append(s)
        _u(out, "proto", key[36], None if m is None else m[36], 0xFF, verbose)
        _x(out, "tclass", key[37], None if m is None else m[37], 0xFF, verbose)
        _u(out, "hlimit", key[38], None if m is None else m[38], 0xFF, verbose)
        _frag(out, key[39], None if m is None else m[39])
        body = ",".join(out)
    elif a_type in (KeyAttr.TCP, KeyAttr.UDP, KeyAttr.SCTP):
        _u(out, "src", int.from_bytes(key[0:2], "big"),
           None if m is None else int.from_bytes(m[0:2], "big"), 0xFFFF, verbose)
        _u(out, "dst", int.from_bytes(key[2:4], "big"),
           None if m is None else int.from_bytes(m[2:4], "big"), 0xFFFF, verbose)
        body = ",".join(out)
    elif a_type == KeyAttr.TCP_FLAGS:
        v = int.from_bytes(key, "big")
        if not is_exact:
            body = format_flags_masked(TCP_FLAG_NAMES, v, int.from_bytes(m, "big") & TCP_FLAGS_MASK,
                                       TCP_FLAGS_MASK)
        else:
            body = format_flags(TCP_FLAG_NAMES, v)
    elif a_type in (KeyAttr.ICMP, KeyAttr.ICMPV6):
        _u(out, "type", key[0], None if m is None else m[0], 0xFF, verbose)
        _u(out, "code", key[1], None if m is None else m[1], 0xFF, verbose)
        body = ",".join(out)
    elif a_type == KeyAttr.ARP:
        _ipv4(out, "sip", key[0:4], None if m is None else m[0:4], verbose)
        _ipv4(out, "tip", key[4:8], None if m is None else m[4:8], verbose)
        _u(out, "op", int.from_bytes(key[8:10], "big"),
           None if m is None else int.from_bytes(m[8:10], "big"), 0xFFFF, verbose)
        _eth(out, "sha", key[10:16], None if m is None else m[10:16], verbose)
        _eth(out, "tha", key[16:22], None if m is None else m[16:22], verbose)
        body = ",".join(out)
    elif a_type == KeyAttr.ND:
        _in6(out, "target", key[0:16], None if m is None else m[0:16], verbose)
        _eth(out, "sll", key[16:22], None if m is None else m[16:22], verbose)
        _eth(out, "tll", key[22:28], None if m is None else m[22:28], verbose)
        body = ",".join(out)
    elif a_type == KeyAttr.ND_EXTENSIONS:
        # format_be32_masked with an exact mask, then format_u8u
        out.append(f"nd_reserved={_hexs(int.from_bytes(key[0:4], 'big'))}")
        _u(out, "nd_options_type", key[4], None if m is None else m[4], 0xFF, verbose)
        body = ",".join(out)
    else:
        body = _generic(key)
        if not is_exact:
            body += "/" + _generic(m)
    return f"{name}({body})"


def format_key(key: bytes, mask: bytes | None, *, ports: Ports = None,
               verbose: bool = False) -> str:
    """``odp_flow_format``: a flow key (and optional mask) in ODP syntax.

    Without a mask every attribute prints as exact. With one, attributes
    whose mask is all-zero are left out unless ``verbose`` (an all-wildcard
    ``eth`` still prints as ``eth()`` when no ``packet_type`` is shown, and a
    mask ``eth_type`` without a key one prints as ``eth_type(0/0x...)``).
    """
    if not key:
        return "<empty>"
    out: list[str] = []
    has_ethtype = False
    has_packet_type = False
    for t, p in iter_nla(key):
        p = bytes(p)
        ma = _find(mask, t) if mask else None
        bad = _check_len(t, p, ma, KEY_ATTR_LEN, False)
        if bad is not None:
            out.append(bad)
            continue
        if t == KeyAttr.ETHERTYPE:
            has_ethtype = True
        elif t == KeyAttr.PACKET_TYPE:
            has_packet_type = True
        nested = t in (KeyAttr.ENCAP, KeyAttr.TUNNEL, KeyAttr.NSH)
        is_wildcard = False
        if mask:
            is_wildcard = mask_is_wildcard(t, ma) if ma is not None else True
        if verbose or not is_wildcard or nested:
            if is_wildcard and ma is None:
                ma = _zero_mask(t, p, KEY_ATTR_LEN, nested)
            out.append(format_key_attr(t, p, ma, ports, verbose))
        elif t == KeyAttr.ETHERNET and not has_packet_type:
            out.append("eth()")
        elif t == KeyAttr.PACKET_TYPE and is_wildcard:
            has_packet_type = False
    text = ",".join(out)
    if not has_ethtype and mask:
        ma = _find(mask, KeyAttr.ETHERTYPE)
        if ma is not None:
            text += f",eth_type(0/0x{int.from_bytes(ma, 'big'):04x})"
    return text


# ---------------------------------------------------------------------------
# Actions
# ---------------------------------------------------------------------------

#: payload sizes of fixed-size actions (``odp_action_len``)
ACTION_LEN: dict[int, int | None] = {
    ActionAttr.OUTPUT: 4, ActionAttr.LB_OUTPUT: 4, ActionAttr.TRUNC: 4,
    ActionAttr.TUNNEL_PUSH: None, ActionAttr.TUNNEL_POP: 4, ActionAttr.METER: 4,
    ActionAttr.USERSPACE: None, ActionAttr.PUSH_VLAN: 4, ActionAttr.POP_VLAN: 0,
    ActionAttr.PUSH_MPLS: 8, ActionAttr.POP_MPLS: 2, ActionAttr.RECIRC: 4,
    ActionAttr.HASH: 8, ActionAttr.SET: None, ActionAttr.SET_MASKED: None,
    ActionAttr.SAMPLE: None, ActionAttr.CT: None, ActionAttr.CT_CLEAR: 0,
    ActionAttr.PUSH_ETH: 12, ActionAttr.POP_ETH: 0, ActionAttr.CLONE: None,
    ActionAttr.PUSH_NSH: None, ActionAttr.POP_NSH: 0, ActionAttr.CHECK_PKT_LEN: None,
    ActionAttr.ADD_MPLS: 8, ActionAttr.DROP: 4,
}


def _generic_action(t: int, p: bytes) -> str:
    """``format_generic_odp_action``."""
    s = f"action{t}"
    if p:
        s += "(" + " ".join(f"{b:02x}" for b in p) + ")"
    return s


def _port(port: int, ports: Ports) -> str:
    """``odp_portno_name_format``."""
    return ports[port] if ports and port in ports else str(port)


def _nested(p: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for t, q in iter_nla(p):
        out[t] = bytes(q)
    return out


def _format_userspace(p: bytes, ports: Ports) -> str:
    """``format_odp_userspace_action`` (cookies other than raw userdata are not decoded)."""
    a = _nested(p)
    if UserspaceAttr.PID not in a or len(a[UserspaceAttr.PID]) != 4:
        return "userspace(error)"
    s = f"userspace(pid={struct.unpack('=I', a[UserspaceAttr.PID])[0]}"
    if UserspaceAttr.USERDATA in a:
        s += f",userdata({a[UserspaceAttr.USERDATA].hex()})"
    if UserspaceAttr.ACTIONS in a:
        s += ",actions"
    if UserspaceAttr.EGRESS_TUN_PORT in a:
        s += ",tunnel_out_port=" + _port(struct.unpack("=I", a[UserspaceAttr.EGRESS_TUN_PORT])[0],
                                         ports)
    return s + ")"


def _format_one(t: int, p: bytes, ports: Ports) -> str:
    """``format_odp_action``."""
    expected = ACTION_LEN.get(t, -1)
    if expected is not None and expected != -1 and len(p) != expected:
        return f"bad length {len(p)}, expected {expected} for: " + _generic_action(t, p)
    if t == ActionAttr.METER:
        return f"meter({struct.unpack('=I', p)[0]})"
    if t == ActionAttr.OUTPUT:
        return _port(struct.unpack("=I", p)[0], ports)
    if t == ActionAttr.LB_OUTPUT:
        return f"lb_output({struct.unpack('=I', p)[0]})"
    if t == ActionAttr.TRUNC:
        return f"trunc({struct.unpack('=I', p)[0]})"
    if t == ActionAttr.TUNNEL_POP:
        return f"tnl_pop({_port(struct.unpack('=I', p)[0], ports)})"
    if t == ActionAttr.USERSPACE:
        return _format_userspace(p, ports)
    if t == ActionAttr.RECIRC:
        return f"recirc({_hexs(struct.unpack('=I', p)[0])})"
    if t == ActionAttr.HASH:
        alg, basis = struct.unpack("=II", p)
        if alg == HashAlg.L4:
            return f"hash(l4({basis}))"
        if alg == HashAlg.SYM_L4:
            return f"hash(sym_l4({basis}))"
        return f"hash(Unknown hash algorithm({alg}))"
    if t == ActionAttr.SET_MASKED:
        (kt, kp), = list(iter_nla(p))[:1] or [(0, b"")]
        kp = bytes(kp)
        size = len(kp) // 2
        if size <= 40:
            key, mask = kp[:size], kp[size:2 * size]
            bad = _check_len(kt, key, mask, KEY_ATTR_LEN, False)
            return "set(" + (bad if bad is not None
                             else format_key_attr(kt, key, mask, None, False)) + ")"
        bad = _check_len(kt, kp, None, KEY_ATTR_LEN, False)
        return "set(" + (bad if bad is not None else format_key_attr(kt, kp, None, None, False)) + ")"
    if t == ActionAttr.SET:
        items = list(iter_nla(p))
        if not items:
            return "set()"
        kt, kp = items[0]
        kp = bytes(kp)
        bad = _check_len(kt, kp, None, KEY_ATTR_LEN, False)
        return "set(" + (bad if bad is not None else format_key_attr(kt, kp, None, None, True)) + ")"
    if t == ActionAttr.PUSH_ETH:
        return f"push_eth(src={_mac(p[0:6])},dst={_mac(p[6:12])})"
    if t == ActionAttr.POP_ETH:
        return "pop_eth"
    if t == ActionAttr.PUSH_VLAN:
        tpid, tci = struct.unpack("!HH", p)
        s = "push_vlan("
        if tpid != 0x8100:
            s += f"tpid=0x{tpid:04x},"
        return s + format_vlan_tci(tci, 0xFFFF, False) + ")"
    if t == ActionAttr.POP_VLAN:
        return "pop_vlan"
    if t in (ActionAttr.PUSH_MPLS, ActionAttr.ADD_MPLS):
        lse, eth_type = struct.unpack("!IH", p[:6])
        name = "push_mpls" if t == ActionAttr.PUSH_MPLS else "add_mpls"
        return f"{name}({format_mpls_lse(lse)},eth_type=0x{eth_type:x})"
    if t == ActionAttr.POP_MPLS:
        return f"pop_mpls(eth_type=0x{struct.unpack('!H', p)[0]:x})"
    if t == ActionAttr.SAMPLE:
        a = _nested(p)
        prob = a.get(SampleAttr.PROBABILITY)
        acts = a.get(SampleAttr.ACTIONS)
        if prob is None or len(prob) != 4 or acts is None:
            return "sample(error)"
        pct = 100.0 * struct.unpack("=I", prob)[0] / 0xFFFFFFFF
        return f"sample(sample={pct:.1f}%,actions({format_actions(acts, ports)}))"
    if t == ActionAttr.CT_CLEAR:
        return "ct_clear"
    if t == ActionAttr.CLONE:
        return f"clone({format_actions(p, ports)})"
    if t == ActionAttr.POP_NSH:
        return "pop_nsh()"
    if t == ActionAttr.CHECK_PKT_LEN:
        a = _nested(p)
        if (CheckPktLenAttr.PKT_LEN not in a or len(a[CheckPktLenAttr.PKT_LEN]) != 2
                or CheckPktLenAttr.ACTIONS_IF_GREATER not in a
                or CheckPktLenAttr.ACTIONS_IF_LESS_EQUAL not in a):
            return "check_pkt_len(error)"
        size = struct.unpack("=H", a[CheckPktLenAttr.PKT_LEN])[0]
        return (f"check_pkt_len(size={size},"
                f"gt({format_actions(a[CheckPktLenAttr.ACTIONS_IF_GREATER], ports)}),"
                f"le({format_actions(a[CheckPktLenAttr.ACTIONS_IF_LESS_EQUAL], ports)}))")
    if t == ActionAttr.DROP:
        return "drop"
    return _generic_action(t, p)


def format_actions(actions: bytes, ports: Ports = None) -> str:
    """``format_odp_actions``: ``drop`` for an empty list."""
    if not actions:
        return "drop"
    return ",".join(_format_one(t, bytes(p), ports) for t, p in iter_nla(actions, "actions"))


def format_tcp_flags_stats(flags: int) -> str:
    """``packet_format_tcp_flags``: the ``flags:`` column of a dump (``SFPRU.ECN``)."""
    if not flags:
        return "none"
    out = ""
    for bit, ch in ((0x002, "S"), (0x001, "F"), (0x008, "P"), (0x004, "R"), (0x020, "U"),
                    (0x010, "."), (0x040, "E"), (0x080, "C"), (0x100, "N"),
                    (0x200, "[200]"), (0x400, "[400]"), (0x800, "[800]")):
        if flags & bit:
            out += ch
    return out

