"""Parsing ODP syntax into netlink attributes.

The parsing half of Open vSwitch's ``lib/odp-util.c``: :func:`parse_key` is
``odp_flow_from_string`` (key and mask attributes from text such as
``in_port(1),eth_type(0x0800),ipv4(src=10.0.0.0/255.0.0.0,frag=no)``) and
:func:`parse_actions` is ``odp_actions_from_string``. They accept what OVS
accepts and build the same attributes, with the same rules: a field named
without a ``/mask`` is exact, a field not named is wildcarded, ``set()`` of a
partially masked key becomes ``OVS_ACTION_ATTR_SET_MASKED``.

Where OVS only says "syntax error at <rest of string>", these raise
:class:`~ovsnet.errors.DatapathError` with the column, what was expected and
a caret line under the text.

Numbers follow C's ``%i``: decimal, ``0x`` hexadecimal or ``0`` octal. Unlike
``sscanf``, a number too large for its field is an error instead of being
silently truncated.
"""

from __future__ import annotations

import ipaddress
import math
import re
import struct
from collections.abc import Callable, Mapping

from ovsnet.datapath.odp_attrs import (
    ActionAttr,
    CheckPktLenAttr,
    KeyAttr,
    SampleAttr,
    TunnelAttr,
    UserspaceAttr,
    nla,
)
from ovsnet.datapath.odp_format import CT_STATE_NAMES, TCP_FLAG_NAMES, TNL_FLAG_NAMES
from ovsnet.errors import DatapathError

__all__ = ["ACTION_NAMES", "KEY_NAMES", "parse_actions", "parse_key"]

DELIMITERS = ", \t\r\n"
#: nesting limit of the parsers (``MAX_ODP_NESTED``)
MAX_NESTED = 32

_INT_RE = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_MAC_RE = re.compile(r"[0-9a-fA-F]{1,2}(?::[0-9a-fA-F]{1,2}){5}")
_IP4_RE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_IP6_RE = re.compile(r"[0-9a-fA-F:.]+")
_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEX_RE = re.compile(r"(?:0[xX])?[0-9a-fA-F]+")

#: key attribute names the parser knows, in the order it tries them
KEY_NAMES = ("skb_priority", "skb_mark", "recirc_id", "dp_hash", "ct_state", "ct_zone",
             "ct_mark", "ct_label", "tunnel", "in_port", "eth", "vlan", "eth_type", "mpls",
             "ipv4", "ipv6", "tcp", "tcp_flags", "udp", "sctp", "icmp", "icmpv6", "arp", "nd",
             "nd_ext", "packet_type", "encap")
#: action names the parser knows (besides a bare port number or name)
ACTION_NAMES = ("output", "trunc", "recirc", "userspace", "set", "push_vlan", "pop_vlan",
                "meter", "sample", "clone", "pop_nsh", "tnl_pop", "ct_clear",
                "check_pkt_len", "add_mpls", "push_mpls", "pop_mpls", "hash", "lb_output",
                "pop_eth", "push_eth", "drop")


class Scanner:
    """A cursor over one string that raises position-aware errors."""

    def __init__(self, text: str, what: str):
        self.s = text
        self.pos = 0
        self.what = what

    def error(self, message: str, pos: int | None = None) -> DatapathError:
        pos = self.pos if pos is None else pos
        return DatapathError(f"{self.what}: column {pos + 1}: {message}\n"
                             f"  {self.s}\n  {' ' * pos}^")

    def peek(self, n: int = 1) -> str:
        return self.s[self.pos:self.pos + n]

    def at(self, lit: str) -> bool:
        return self.s.startswith(lit, self.pos)

    def take(self, lit: str) -> bool:
        if self.s.startswith(lit, self.pos):
            self.pos += len(lit)
            return True
        return False

    def expect(self, lit: str, what: str | None = None) -> None:
        if not self.take(lit):
            found = self.s[self.pos:self.pos + 12] or "end of input"
            raise self.error(f"expected {what or repr(lit)}, found {found!r}")

    def skip_delims(self) -> None:
        while self.pos < len(self.s) and self.s[self.pos] in DELIMITERS:
            self.pos += 1

    def word(self) -> str:
        m = _WORD_RE.match(self.s, self.pos)
        return m.group(0) if m else ""

    def integer(self, bits: int, what: str = "number") -> int:
        """C ``%i`` into an unsigned field of ``bits`` bits (negatives wrap, like scanf)."""
        m = _INT_RE.match(self.s, self.pos)
        if not m:
            raise self.error(f"expected {what} (decimal, 0x hex or 0 octal)")
        text = m.group(0)
        sign = -1 if text[0] == "-" else 1
        body = text.lstrip("+-")
        value = sign * int(body, 0 if body[:2].lower() == "0x" else (8 if body[:1] == "0" and len(body) > 1 else 10))
        limit = 1 << bits
        if not -limit < value < limit:
            raise self.error(f"{what} {text} does not fit in {bits} bits")
        self.pos = m.end()
        return value % limit

    def masked_int(self, bits: int, what: str = "number") -> tuple[int, int]:
        value = self.integer(bits, what)
        if self.take("/"):
            return value, self.integer(bits, f"{what} mask")
        return value, (1 << bits) - 1

    def _addr(self, regex: re.Pattern, conv: Callable[[str], bytes], what: str) -> bytes:
        m = regex.match(self.s, self.pos)
        if not m:
            raise self.error(f"expected {what}")
        try:
            value = conv(m.group(0))
        except ValueError:
            raise self.error(f"invalid {what} {m.group(0)!r}") from None
        self.pos = m.end()
        return value

    def masked_addr(self, kind: str) -> tuple[bytes, bytes]:
        regex, conv, what = _ADDR[kind]
        value = self._addr(regex, conv, what)
        if self.take("/"):
            return value, self._addr(regex, conv, what + " mask")
        return value, b"\xff" * len(value)


def _mac_bytes(s: str) -> bytes:
    return bytes(int(x, 16) for x in s.split(":"))


def _ip4_bytes(s: str) -> bytes:
    parts = [int(x) for x in s.split(".")]
    if any(p > 255 for p in parts):
        raise ValueError(s)
    return bytes(parts)


def _ip6_bytes(s: str) -> bytes:
    return ipaddress.IPv6Address(s).packed


_ADDR = {
    "eth": (_MAC_RE, _mac_bytes, "Ethernet address"),
    "ipv4": (_IP4_RE, _ip4_bytes, "IPv4 address"),
    "in6": (_IP6_RE, _ip6_bytes, "IPv6 address"),
}


def _scan_flags(sc: Scanner, names: Mapping[int, str], allowed: int, end: str,
                masked: bool) -> tuple[int, int]:
    """``parse_flags``: ``a|b``, ``+a-b`` or ``value/mask``; stops before ``end``."""
    start = sc.pos
    if masked:
        m = re.compile(r"([-+]?(?:0[xX][0-9a-fA-F]+|[0-9]+))/([-+]?(?:0[xX][0-9a-fA-F]+|[0-9]+))").match(sc.s, sc.pos)
        if m:
            flags, mask = int(m.group(1), 0), int(m.group(2), 0)
            if flags & ~allowed or mask & ~allowed:
                raise sc.error("flags outside the valid set", start)
            sc.pos = m.end()
            return flags, mask
    by_name = {v: k for k, v in names.items()}
    valid = ", ".join(names[b] for b in sorted(names) if b & allowed)
    if masked and sc.peek() in "+-" and sc.peek():
        flags = mask = 0
        while not sc.at(end):
            sign = sc.peek()
            if sign not in "+-" or not sign:
                raise sc.error("each flag must be preceded by '+' (set) or '-' (not set)")
            sc.pos += 1
            m = re.compile(r"[^-+" + re.escape(end) + r"]*").match(sc.s, sc.pos)
            name = m.group(0)
            bit = by_name.get(name)
            if bit is None or not bit & allowed:
                raise sc.error(f"unknown flag {name!r} (valid: {valid})")
            if mask & bit:
                raise sc.error(f"flag {name!r} given twice")
            if sign == "+":
                flags |= bit
            mask |= bit
            sc.pos = m.end()
        return flags, mask
    result = 0
    while not sc.at(end):
        if sc.pos >= len(sc.s):
            raise sc.error(f"expected {end!r}")
        m = _INT_RE.match(sc.s, sc.pos)
        if m:
            value = int(m.group(0), 0) if not m.group(0).startswith("0") or len(m.group(0)) == 1 \
                or m.group(0)[:2].lower() == "0x" else int(m.group(0), 8)
            if value & ~allowed:
                raise sc.error(f"flags {m.group(0)} outside the valid set")
            result |= value
            sc.pos = m.end()
        else:
            m = re.compile(r"[^|" + re.escape(end) + r"]*").match(sc.s, sc.pos)
            name = m.group(0)
            bit = by_name.get(name)
            if bit is None or not bit & allowed:
                raise sc.error(f"unknown flag {name!r} (valid: {valid})")
            result |= bit
            sc.pos = m.end()
        sc.take("|")
    return result, 0xFFFFFFFF


# ---------------------------------------------------------------------------
# Flow keys (parse_odp_key_mask_attr__)
# ---------------------------------------------------------------------------

# (offset, size, kind) of each field of the fixed-size key structs.
_STRUCTS: dict[str, tuple[int, int, dict[str, tuple[int, str]]]] = {
    "eth(": (KeyAttr.ETHERNET, 12, {"src=": (0, "eth"), "dst=": (6, "eth")}),
    "ipv4(": (KeyAttr.IPV4, 12, {"src=": (0, "ipv4"), "dst=": (4, "ipv4"), "proto=": (8, "u8"),
                                 "tos=": (9, "u8"), "ttl=": (10, "u8"), "frag=": (11, "frag")}),
    "ipv6(": (KeyAttr.IPV6, 40, {"src=": (0, "in6"), "dst=": (16, "in6"), "label=": (32, "label"),
                                 "proto=": (36, "u8"), "tclass=": (37, "u8"),
                                 "hlimit=": (38, "u8"), "frag=": (39, "frag")}),
    "tcp(": (KeyAttr.TCP, 4, {"src=": (0, "be16"), "dst=": (2, "be16")}),
    "udp(": (KeyAttr.UDP, 4, {"src=": (0, "be16"), "dst=": (2, "be16")}),
    "sctp(": (KeyAttr.SCTP, 4, {"src=": (0, "be16"), "dst=": (2, "be16")}),
    "icmp(": (KeyAttr.ICMP, 2, {"type=": (0, "u8"), "code=": (1, "u8")}),
    "icmpv6(": (KeyAttr.ICMPV6, 2, {"type=": (0, "u8"), "code=": (1, "u8")}),
    "arp(": (KeyAttr.ARP, 24, {"sip=": (0, "ipv4"), "tip=": (4, "ipv4"), "op=": (8, "be16"),
                               "sha=": (10, "eth"), "tha=": (16, "eth")}),
    "nd(": (KeyAttr.ND, 28, {"target=": (0, "in6"), "sll=": (16, "eth"), "tll=": (22, "eth")}),
    "nd_ext(": (KeyAttr.ND_EXTENSIONS, 8, {"nd_reserved=": (0, "be32"),
                                           "nd_options_type=": (4, "u8")}),
    "packet_type(": (KeyAttr.PACKET_TYPE, 4, {"ns=": (0, "be16"), "id=": (2, "be16")}),
}

_FRAGS = {"no": 0, "first": 1, "later": 2}
_INT_KINDS = {"u8": (8, 1), "be16": (16, 2), "be32": (32, 4)}


def _scan_field(sc: Scanner, kind: str, key: bytearray, mask: bytearray, ofs: int) -> None:
    if kind in _INT_KINDS:
        bits, size = _INT_KINDS[kind]
        v, m = sc.masked_int(bits)
        key[ofs:ofs + size] = v.to_bytes(size, "big")
        mask[ofs:ofs + size] = m.to_bytes(size, "big")
    elif kind in _ADDR:
        v, m = sc.masked_addr(kind)
        key[ofs:ofs + len(v)] = v
        mask[ofs:ofs + len(m)] = m
    elif kind == "frag":
        m = re.compile(r"[a-z]{1,7}").match(sc.s, sc.pos)
        if not m or m.group(0) not in _FRAGS:
            raise sc.error("expected frag type (valid: no, first, later)")
        sc.pos = m.end()
        key[ofs] = _FRAGS[m.group(0)]
        mask[ofs] = 0xFF
    elif kind == "label":
        start = sc.pos
        v = sc.integer(32, "flow label")
        if v & ~0xFFFFF:
            raise sc.error("flow label wider than 20 bits", start)
        m = 0xFFFFF
        if sc.take("/"):
            start = sc.pos
            m = sc.integer(32, "flow label mask")
            if m & ~0xFFFFF:
                raise sc.error("flow label mask wider than 20 bits", start)
        key[ofs:ofs + 4] = v.to_bytes(4, "big")
        mask[ofs:ofs + 4] = m.to_bytes(4, "big")
    else:  # pragma: no cover - table error
        raise AssertionError(kind)


def _scan_fields(sc: Scanner, name: str, fields: Mapping[str, object],
                 scan_one: Callable[[str], None]) -> None:
    """The SCAN_BEGIN ... SCAN_FINISH loop: ``field=value`` items up to ``)``."""
    valid = ", ".join(f.rstrip("=(") for f in fields)
    while True:
        if sc.take(")"):
            return
        for f in fields:
            if sc.take(f):
                scan_one(f)
                break
        else:
            word = sc.word()
            if word:
                raise sc.error(f"unknown field {word!r} in {name}(...) (valid: {valid})")
            raise sc.error(f"expected a field of {name}(...) or ')'")
        if not sc.take(","):
            sc.expect(")", f"',' or ')' in {name}(...)")
            return


def _bitfield(sc: Scanner, bits: int, shift: int, total: int, key: int, mask: int,
              what: str) -> tuple[int, int]:
    """``scan_be16_bf``/``scan_be32_bf``: set a bit field of key and mask."""
    field = ((1 << bits) - 1) << shift
    start = sc.pos
    v = sc.integer(total, what)
    if v >> bits:
        raise sc.error(f"{what} {v} wider than {bits} bits", start)
    key = (key & ~field) | (v << shift)
    if sc.take("/"):
        start = sc.pos
        m = sc.integer(total, f"{what} mask")
        if m >> bits:
            raise sc.error(f"{what} mask wider than {bits} bits", start)
        mask = (mask & ~field) | (m << shift)
    else:
        mask |= field
    return key, mask


def _scan_geneve(sc: Scanner) -> tuple[bytes, bytes]:
    """``scan_geneve``: ``{class=,type=,len=,data[/mask]}...`` up to ``)``."""
    key = bytearray()
    mask = bytearray()
    remain = 252
    while sc.at("{") and remain >= 4:
        sc.pos += 1
        remain -= 4
        hk = bytearray(4)
        # OVS starts from an all-ones mask, zeroes class and type when they
        # are not given and the reserved bits always: the length stays 0x1f.
        hm = bytearray(b"\0\0\0\x1f")
        data_len = 0
        if sc.take("class="):
            v, m = sc.masked_int(16, "option class")
            hk[0:2], hm[0:2] = v.to_bytes(2, "big"), m.to_bytes(2, "big")
        sc.take(",")
        if sc.take("type="):
            v, m = sc.masked_int(8, "option type")
            hk[2], hm[2] = v, m
        sc.take(",")
        if sc.take("len="):
            start = sc.pos
            v, m = sc.masked_int(8, "option length")
            if v > 124 or v % 4 or v > remain:
                raise sc.error("option length must be a multiple of 4, at most 124", start)
            hk[3] = v // 4
            hm[3] = m & 0x1F  # the 5-bit length field; r1..r3 stay zero
            data_len = v
        data = bytes(data_len)
        dmask = b"\xff" * data_len
        if sc.take(","):
            data = _scan_hex_exact(sc, data_len)
        if sc.take("/"):
            dmask = _scan_hex_exact(sc, data_len)
        sc.expect("}", "'}' closing a Geneve option")
        key += hk + data
        mask += hm + dmask
        remain -= data_len
    sc.expect(")", "')' closing geneve(...)")
    return bytes(key), bytes(mask)


def _scan_hex_exact(sc: Scanner, size: int) -> bytes:
    """``parse_int_string``: a number written into ``size`` big-endian bytes."""
    m = _HEX_RE.match(sc.s, sc.pos)
    if not m:
        raise sc.error("expected a hexadecimal number")
    text = m.group(0)
    value = int(text, 16) if text[:2].lower() == "0x" else int(text, 0 if text[:1] != "0" else 16)
    if value.bit_length() > 8 * size:
        raise sc.error(f"{text} does not fit in {size} bytes")
    sc.pos = m.end()
    return value.to_bytes(size, "big")


def _parse_tunnel(sc: Scanner, ctx: _Ctx) -> tuple[bytes, bytes]:
    key: list[bytes] = []
    mask: list[bytes] = []

    def put(attr: int, k: bytes, m: bytes) -> None:
        key.append(nla(attr, k))
        mask.append(nla(attr, m))

    fields = ("tun_id=", "src=", "dst=", "ipv6_src=", "ipv6_dst=", "tos=", "ttl=", "tp_src=",
              "tp_dst=", "geneve(", "flags(")

    def one(f: str) -> None:
        if f == "tun_id=":
            v, m = sc.masked_int(64, "tunnel id")
            put(TunnelAttr.ID, v.to_bytes(8, "big"), m.to_bytes(8, "big"))
        elif f in ("src=", "dst="):
            v, m = sc.masked_addr("ipv4")
            put(TunnelAttr.IPV4_SRC if f == "src=" else TunnelAttr.IPV4_DST, v, m)
        elif f in ("ipv6_src=", "ipv6_dst="):
            v, m = sc.masked_addr("in6")
            put(TunnelAttr.IPV6_SRC if f == "ipv6_src=" else TunnelAttr.IPV6_DST, v, m)
        elif f in ("tos=", "ttl="):
            v, m = sc.masked_int(8, f[:-1])
            put(TunnelAttr.TOS if f == "tos=" else TunnelAttr.TTL, bytes([v]), bytes([m]))
        elif f in ("tp_src=", "tp_dst="):
            v, m = sc.masked_int(16, f[:-1])
            put(TunnelAttr.TP_SRC if f == "tp_src=" else TunnelAttr.TP_DST,
                v.to_bytes(2, "big"), m.to_bytes(2, "big"))
        elif f == "geneve(":
            k, m = _scan_geneve(sc)
            put(TunnelAttr.GENEVE_OPTS, k, m)
        elif f == "flags(":
            flags, fmask = _scan_flags(sc, TNL_FLAG_NAMES, 0xF, ")", True)
            sc.expect(")")
            for bit, attr in ((0x2, TunnelAttr.DONT_FRAGMENT), (0x4, TunnelAttr.CSUM),
                              (0x1, TunnelAttr.OAM)):
                if flags & bit:
                    key.append(nla(attr))
                if fmask & 0xFFFF & bit:
                    mask.append(nla(attr))

    _scan_fields(sc, "tunnel", dict.fromkeys(fields), one)
    return b"".join(key), b"".join(mask)


class _Ctx:
    def __init__(self, ports: Mapping[str, int] | None):
        self.ports = ports
        self.depth = 0


def _parse_key_attr(sc: Scanner, ctx: _Ctx, key: list[bytes], mask: list[bytes]) -> None:
    """``parse_odp_key_mask_attr``: one attribute at the cursor."""
    ctx.depth += 1
    try:
        if ctx.depth >= MAX_NESTED:
            raise sc.error(f"nested more than {MAX_NESTED} deep")
        _parse_key_attr__(sc, ctx, key, mask)
    finally:
        ctx.depth -= 1


_SINGLE_U = {
    "skb_priority(": (KeyAttr.PRIORITY, 32), "skb_mark(": (KeyAttr.SKB_MARK, 32),
    "recirc_id(": (KeyAttr.RECIRC_ID, 32), "dp_hash(": (KeyAttr.DP_HASH, 32),
    "ct_zone(": (KeyAttr.CT_ZONE, 16), "ct_mark(": (KeyAttr.CT_MARK, 32),
}


def _parse_key_attr__(sc: Scanner, ctx: _Ctx, key: list[bytes], mask: list[bytes]) -> None:
    start = sc.pos

    def put(attr: int, k: bytes, m: bytes) -> None:
        key.append(nla(attr, k))
        mask.append(nla(attr, m))

    for name, (attr, bits) in _SINGLE_U.items():
        if sc.take(name):
            fmt = "=I" if bits == 32 else "=H"
            if attr == KeyAttr.RECIRC_ID:  # SCAN_SINGLE_FULLY_MASKED: no mask allowed
                v, m = sc.integer(bits, "recirc_id"), 0xFFFFFFFF
            else:
                v, m = sc.masked_int(bits, name[:-1])
            sc.expect(")", f"')' closing {name[:-1]}(...)")
            put(attr, struct.pack(fmt, v), struct.pack(fmt, m))
            return
    if sc.take("ct_state("):
        v, m = _scan_flags(sc, CT_STATE_NAMES, 0xFF, ")", True)
        sc.expect(")")
        put(KeyAttr.CT_STATE, struct.pack("=I", v), struct.pack("=I", m))
        return
    if sc.take("ct_label("):
        v = _scan_hex_exact(sc, 16)
        m = _scan_hex_exact(sc, 16) if sc.take("/") else b"\xff" * 16
        sc.expect(")", "')' closing ct_label(...)")
        # ovs_u128 in host (little-endian) order, as ovs-vswitchd sends it
        put(KeyAttr.CT_LABELS, v[::-1], m[::-1])
        return
    if sc.take("tunnel("):
        k, m = _parse_tunnel(sc, ctx)
        put(KeyAttr.TUNNEL, k, m)
        return
    if sc.take("in_port("):
        m_ = _INT_RE.match(sc.s, sc.pos)
        if m_:
            v, m = sc.masked_int(32, "port number")
        else:
            end = sc.s.find(")", sc.pos)
            name = sc.s[sc.pos:end if end >= 0 else len(sc.s)]
            if not ctx.ports or name not in ctx.ports:
                known = f" (known: {', '.join(sorted(ctx.ports))})" if ctx.ports else ""
                raise sc.error(f"unknown port {name!r}{known}")
            v, m = ctx.ports[name], 0xFFFFFFFF
            sc.pos += len(name)
        sc.expect(")", "')' closing in_port(...)")
        put(KeyAttr.IN_PORT, struct.pack("=I", v), struct.pack("=I", m))
        return
    if sc.take("vlan("):
        state = {"k": 0x1000, "m": 0x1000}
        spec = {"vid=": (12, 0), "pcp=": (3, 13), "cfi=": (1, 12)}

        def one(f: str) -> None:
            bits, shift = spec[f]
            state["k"], state["m"] = _bitfield(sc, bits, shift, 16, state["k"], state["m"], f[:-1])

        _scan_fields(sc, "vlan", spec, one)
        put(KeyAttr.VLAN, state["k"].to_bytes(2, "big"), state["m"].to_bytes(2, "big"))
        return
    if sc.take("eth_type("):
        v, m = sc.masked_int(16, "Ethertype")
        sc.expect(")", "')' closing eth_type(...)")
        put(KeyAttr.ETHERTYPE, v.to_bytes(2, "big"), m.to_bytes(2, "big"))
        return
    if sc.take("mpls("):
        lses = [[0, 0] for _ in range(3)]
        spec = {"label=": (20, 12), "tc=": (3, 9), "ttl=": (8, 0), "bos=": (1, 8)}
        state = {"idx": 0, "seen": set()}

        def one(f: str) -> None:
            if f in state["seen"]:
                state["seen"] = set()
                state["idx"] += 1
                if state["idx"] == 3:
                    raise sc.error("more than 3 MPLS label stack entries")
            bits, shift = spec[f]
            lse = lses[state["idx"]]
            lse[0], lse[1] = _bitfield(sc, bits, shift, 32, lse[0], lse[1], f[:-1])
            state["seen"].add(f)

        _scan_fields(sc, "mpls", spec, one)
        n = state["idx"] + 1
        put(KeyAttr.MPLS, b"".join(x[0].to_bytes(4, "big") for x in lses[:n]),
            b"".join(x[1].to_bytes(4, "big") for x in lses[:n]))
        return
    if sc.take("tcp_flags("):
        v, m = _scan_flags(sc, TCP_FLAG_NAMES, 0x0FFF, ")", True)
        sc.expect(")")
        put(KeyAttr.TCP_FLAGS, v.to_bytes(2, "big"), (m & 0xFFFF).to_bytes(2, "big"))
        return
    for name, (attr, size, fields) in _STRUCTS.items():
        if sc.take(name):
            k = bytearray(size)
            m = bytearray(size)
            _scan_fields(sc, name[:-1], fields,
                         lambda f, k=k, m=m, fields=fields: _scan_field(sc, fields[f][1], k, m,
                                                                        fields[f][0]))
            put(attr, bytes(k), bytes(m))
            return
    if sc.take("encap("):
        k_in: list[bytes] = []
        m_in: list[bytes] = []
        while True:
            sc.skip_delims()
            if sc.pos >= len(sc.s):
                raise sc.error("expected ')' closing encap(...)")
            if sc.take(")"):
                break
            _parse_key_attr(sc, ctx, k_in, m_in)
        put(KeyAttr.ENCAP, b"".join(k_in), b"".join(m_in))
        return
    word = sc.word()
    raise sc.error(f"unknown flow key field {word!r} (valid: {', '.join(KEY_NAMES)})"
                   if word else f"expected a flow key field (valid: {', '.join(KEY_NAMES)})",
                   start)


def parse_key(text: str, ports: Mapping[str, int] | None = None) -> tuple[bytes, bytes]:
    """``odp_flow_from_string``: (key attributes, mask attributes) of a flow string."""
    sc = Scanner(text, "flow")
    ctx = _Ctx(ports)
    key: list[bytes] = []
    mask: list[bytes] = []
    while True:
        sc.skip_delims()
        if sc.pos >= len(sc.s):
            return b"".join(key), b"".join(mask)
        if sc.take("ufid:"):
            m = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                           r"[0-9a-fA-F]{12}").match(sc.s, sc.pos)
            if not m:
                raise sc.error("expected a UUID after 'ufid:'")
            sc.pos = m.end()
            sc.take(" ")
        _parse_key_attr(sc, ctx, key, mask)


# ---------------------------------------------------------------------------
# Actions (parse_odp_action__)
# ---------------------------------------------------------------------------


def _take_drop(sc: Scanner, end: str | None) -> bool:
    """A whole action list written ``drop`` (what ``format_odp_actions`` prints for none).

    Consumes ``drop`` when it is followed by ``end`` (``)`` inside a nested
    list; None: the end of the text, at the top) so that every list OVS prints
    reads back, e.g. ``clone(drop)``; OVS's own parser accepts ``drop`` only
    for a whole flow's actions and inside ``check_pkt_len``.
    """
    m = re.compile(r"drop[ \t\r\n]*", re.IGNORECASE).match(sc.s, sc.pos)
    if not m:
        return False
    if m.end() != len(sc.s) if end is None else not sc.s.startswith(end, m.end()):
        return False
    sc.pos = m.end()
    return True


def _parse_action_list(sc: Scanner, ctx: _Ctx, out: list[bytes]) -> None:
    """``parse_action_list``: actions up to (not including) a ``)``; ``drop`` is none."""
    sc.skip_delims()
    if _take_drop(sc, ")"):
        return
    while True:
        sc.skip_delims()
        if sc.at(")"):
            return
        if sc.pos >= len(sc.s):
            raise sc.error("expected ')' closing the action list")
        _parse_action(sc, ctx, out)


def _parse_action(sc: Scanner, ctx: _Ctx, out: list[bytes]) -> None:
    ctx.depth += 1
    try:
        if ctx.depth >= MAX_NESTED:
            raise sc.error(f"actions nested more than {MAX_NESTED} deep")
        _parse_action__(sc, ctx, out)
    finally:
        ctx.depth -= 1


def _u32(attr: int, v: int) -> bytes:
    return nla(attr, struct.pack("=I", v))


def _call_int(sc: Scanner, name: str, bits: int = 32) -> int:
    sc.expect(name + "(")
    v = sc.integer(bits, f"{name} argument")
    sc.expect(")", f"')' closing {name}(...)")
    return v


def _parse_action__(sc: Scanner, ctx: _Ctx, out: list[bytes]) -> None:
    start = sc.pos
    if _INT_RE.match(sc.s, sc.pos):
        out.append(_u32(ActionAttr.OUTPUT, sc.integer(32, "port number")))
        return
    if sc.at("lb_output("):
        out.append(_u32(ActionAttr.LB_OUTPUT, _call_int(sc, "lb_output")))
        return
    if sc.at("trunc("):
        out.append(_u32(ActionAttr.TRUNC, _call_int(sc, "trunc")))
        return
    if ctx.ports:
        end = sc.pos
        # OVS stops a port name only at a delimiter, so it cannot read back
        # the "clone(p2)" it prints; stopping at ')' as well can.
        while end < len(sc.s) and sc.s[end] not in DELIMITERS + ")":
            end += 1
        name = sc.s[sc.pos:end]
        if name in ctx.ports:
            out.append(_u32(ActionAttr.OUTPUT, ctx.ports[name]))
            sc.pos = end
            return
    if sc.at("recirc("):
        out.append(_u32(ActionAttr.RECIRC, _call_int(sc, "recirc")))
        return
    if sc.take("userspace("):
        out.append(_parse_userspace(sc))
        return
    if sc.take("set("):
        k: list[bytes] = []
        m: list[bytes] = []
        _parse_key_attr(sc, ctx, k, m)
        sc.expect(")", "')' closing set(...)")
        kb, mb = k[0], m[0]
        ksize = struct.unpack_from("=H", kb)[0] - 4
        msize = struct.unpack_from("=H", mb)[0] - 4
        if ksize == msize and mb[4:4 + msize] != b"\xff" * msize:
            kt = struct.unpack_from("=H", kb, 2)[0]
            out.append(nla(ActionAttr.SET_MASKED, nla(kt, kb[4:4 + ksize] + mb[4:4 + msize])))
        else:
            out.append(nla(ActionAttr.SET, kb))
        return
    if sc.take("push_vlan("):
        tpid, cfi = 0x8100, 1
        if sc.take("tpid="):
            tpid = sc.integer(32, "tpid") & 0xFFFF
            sc.expect(",")
        sc.expect("vid=")
        vid_pos = sc.pos
        vid = sc.integer(32, "vid")
        sc.expect(",pcp=")
        pcp_pos = sc.pos
        pcp = sc.integer(32, "pcp")
        if sc.take(",cfi="):
            cfi = sc.integer(32, "cfi")
        sc.expect(")", "')' closing push_vlan(...)")
        if vid & ~0xFFF:
            raise sc.error("vid must be 0..4095", vid_pos)
        if pcp & ~7:
            raise sc.error("pcp must be 0..7", pcp_pos)
        tci = (vid | pcp << 13 | (0x1000 if cfi else 0)) & 0xFFFF
        out.append(nla(ActionAttr.PUSH_VLAN, struct.pack("!HH", tpid, tci)))
        return
    if sc.take("pop_vlan"):
        out.append(nla(ActionAttr.POP_VLAN))
        return
    if sc.at("meter("):
        out.append(_u32(ActionAttr.METER, _call_int(sc, "meter", 64) & 0xFFFFFFFF))
        return
    if sc.take("sample(sample="):
        m_ = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?").match(sc.s, sc.pos)
        if not m_ or not 0.0 <= float(m_.group(0)) <= 100.0:
            raise sc.error("expected a sampling percentage 0..100")
        pct = float(m_.group(0))
        sc.pos = m_.end()
        sc.expect("%,actions(")
        probability = math.floor(0xFFFFFFFF * (pct / 100.0) + 0.5)
        probability = max(0, min(0xFFFFFFFF, probability))
        inner: list[bytes] = []
        _parse_action_list(sc, ctx, inner)
        sc.expect("))", "'))' closing sample(...)")
        out.append(nla(ActionAttr.SAMPLE, _u32(SampleAttr.PROBABILITY, probability)
                       + nla(SampleAttr.ACTIONS, b"".join(inner))))
        return
    if sc.take("clone("):
        inner = []
        _parse_action_list(sc, ctx, inner)
        sc.expect(")")
        out.append(nla(ActionAttr.CLONE, b"".join(inner)))
        return
    if sc.take("pop_nsh()"):
        out.append(nla(ActionAttr.POP_NSH))
        return
    if sc.at("tnl_pop("):
        out.append(_u32(ActionAttr.TUNNEL_POP, _call_int(sc, "tnl_pop")))
        return
    if sc.take("ct_clear"):
        out.append(nla(ActionAttr.CT_CLEAR))
        return
    if sc.take("check_pkt_len(size="):
        size = sc.integer(16, "size")
        sc.expect(",gt(")
        gt: list[bytes] = []
        _parse_action_list(sc, ctx, gt)
        sc.expect("),le(")
        le: list[bytes] = []
        _parse_action_list(sc, ctx, le)
        sc.expect("))", "'))' closing check_pkt_len(...)")
        out.append(nla(ActionAttr.CHECK_PKT_LEN,
                       nla(CheckPktLenAttr.PKT_LEN, struct.pack("=H", size))
                       + nla(CheckPktLenAttr.ACTIONS_IF_GREATER, b"".join(gt))
                       + nla(CheckPktLenAttr.ACTIONS_IF_LESS_EQUAL, b"".join(le))))
        return
    for name, attr in (("add_mpls(", ActionAttr.ADD_MPLS), ("push_mpls(", ActionAttr.PUSH_MPLS)):
        if sc.take(name):
            sc.expect("label=")
            label = sc.integer(32, "label")
            sc.expect(",tc=")
            tc = sc.integer(8, "tc")
            sc.expect(",ttl=")
            ttl = sc.integer(8, "ttl")
            sc.expect(",bos=")
            bos = sc.integer(8, "bos")
            sc.expect(",eth_type=0x")
            m_ = re.compile(r"[0-9a-fA-F]{1,4}").match(sc.s, sc.pos)
            if not m_:
                raise sc.error("expected a hexadecimal Ethertype")
            sc.pos = m_.end()
            sc.expect(")")
            lse = ((label << 12) | (tc << 9) | (ttl << 0) | (bos << 8)) & 0xFFFFFFFF
            # struct ovs_action_push_mpls {__be32 lse; __be16 ethertype;} is
            # padded to 8 bytes by the be32's alignment, and the kernel's
            # action_lens[] wants exactly sizeof(); struct ovs_action_add_mpls
            # fills the same two bytes with tun_flags (0 here, as OVS parses).
            payload = struct.pack("!IHxx", lse, int(m_.group(0), 16))
            out.append(nla(attr, payload))
            return
    if sc.take("pop_mpls(eth_type="):
        v = sc.integer(16, "Ethertype")
        sc.expect(")")
        out.append(nla(ActionAttr.POP_MPLS, struct.pack("!H", v)))
        return
    if sc.take("hash("):
        for alg, name in ((0, "l4("), (1, "sym_l4(")):
            if sc.take(name):
                basis = sc.integer(32, "hash basis")
                sc.expect("))")
                out.append(nla(ActionAttr.HASH, struct.pack("=II", alg, basis)))
                return
        raise sc.error("expected l4(basis) or sym_l4(basis)")
    if sc.take("pop_eth"):
        out.append(nla(ActionAttr.POP_ETH))
        return
    word = sc.word()
    valid = ", ".join(ACTION_NAMES)
    if word.lower() == "drop":
        # The kernel's OVS_ACTION_ATTR_DROP ends the list; OVS prints it (and
        # an empty list) as a lone "drop", never next to other actions.
        raise sc.error("'drop' stands alone for an empty action list "
                       "(write 'drop' by itself, or leave it out)", start)
    if word:
        raise sc.error(f"unknown action {word!r} (valid: a port number"
                       f"{' or name' if ctx.ports else ''}, {valid})", start)
    raise sc.error(f"expected an action (valid: a port number, {valid})", start)


def _parse_userspace(sc: Scanner) -> bytes:
    """``parse_odp_userspace_action`` for ``pid``, ``userdata``, ``actions``, ``tunnel_out_port``."""
    sc.expect("pid=")
    pid = sc.integer(32, "pid")
    # Without userdata OVS still sends its all-zero 48-byte cookie.
    userdata = bytes(48)
    if sc.take(",userdata("):
        m = re.compile(r"(?:[0-9a-fA-F]{2})*").match(sc.s, sc.pos)
        userdata = bytes.fromhex(m.group(0))
        sc.pos = m.end()
        sc.expect(")", "')' closing userdata(...) (an even number of hex digits)")
    include_actions = sc.take(",actions")
    tunnel_out_port = None
    if sc.take(",tunnel_out_port="):
        tunnel_out_port = sc.integer(32, "tunnel_out_port")
    sc.expect(")", "')' closing userspace(...)")
    body = _u32(UserspaceAttr.PID, pid)
    body += nla(UserspaceAttr.USERDATA, userdata + bytes(max(0, 8 - len(userdata))))
    if tunnel_out_port is not None:
        body += _u32(UserspaceAttr.EGRESS_TUN_PORT, tunnel_out_port)
    if include_actions:
        body += nla(UserspaceAttr.ACTIONS)
    return nla(ActionAttr.USERSPACE, body)


def parse_actions(text: str, ports: Mapping[str, int] | None = None) -> bytes:
    """``odp_actions_from_string``: the actions' netlink encoding.

    ``drop`` (alone) gives the empty list: the kernel datapath has no
    explicit drop action, an empty list drops.
    """
    sc = Scanner(text, "actions")
    sc.skip_delims()
    if _take_drop(sc, None):
        return b""
    ctx = _Ctx(ports)
    out: list[bytes] = []
    while True:
        sc.skip_delims()
        if sc.pos >= len(sc.s):
            return b"".join(out)
        _parse_action(sc, ctx, out)
        if sc.pos < len(sc.s) and sc.s[sc.pos] not in DELIMITERS:
            raise sc.error(f"expected ',' between actions, found {sc.s[sc.pos]!r}")
