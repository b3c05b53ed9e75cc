"""The flow the OpenFlow tables classify: the members of OVS's ``struct flow``.

Mirrors Open vSwitch 3.1's ``include/openvswitch/flow.h`` (``struct flow``) as
ofproto-dpif sees a packet after an upcall: ``odp_flow_key_to_flow``
(lib/odp-util.c) turns the datapath flow key into a ``struct flow`` and
``ofproto_dpif`` maps the datapath input port (an ``odp_port``) to the bridge's
OpenFlow port (``odp_port_to_ofp_port``).

:class:`OfFlow` holds one integer per member, in host order, with the same
conventions as :class:`~ovsnet.ofproto.ofp_fields.Match` (``vlan_tci`` with the
CFI bit 0x1000 meaning "tag present", MAC addresses as 48-bit integers, IPv6
addresses as 128-bit integers, ICMP type/code in ``tp_src``/``tp_dst``, the ARP
opcode in ``nw_proto``). Members that no OpenFlow match field reaches in this
model (the inner VLAN, the second and third MPLS labels, most tunnel metadata,
conntrack) are kept too, so translation can carry them; the classifier only
reads the members of :data:`~ovsnet.ofproto.ofp_fields.MEMBERS`.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable, Mapping
from typing import Any

from ovsnet.datapath.flow_key import FIELD_BY_NAME, KEY_SIZE
from ovsnet.errors import OfprotoError
from ovsnet.ofproto.ofp_fields import MEMBERS, Match

__all__ = ["EXTRA_MEMBERS", "N_WORDS", "OF_MEMBERS", "WORD_OF", "OfFlow", "key_mask_of"]

#: members the classifier does not match on but a flow carries
EXTRA_MEMBERS: dict[str, int] = {
    "vlan_tpid": 16, "vlan1_tpid": 16, "vlan1_tci": 16, "mpls_lse1": 32, "mpls_lse2": 32,
    "tun_ipv6_src": 128, "tun_ipv6_dst": 128, "tun_flags": 16, "tun_tos": 8, "tun_ttl": 8,
    "tun_tp_src": 16, "tun_tp_dst": 16, "ct_state": 8, "ct_zone": 16, "ct_mark": 32,
    "ct_label": 128, "igmp_group_ip4": 32, "actset_output": 16,
}

#: every member of an :class:`OfFlow` with its width in bits
OF_MEMBERS: dict[str, int] = {**MEMBERS, **EXTRA_MEMBERS}

_HOST = sys.byteorder


def _word_layout() -> dict[str, int]:
    out, w = {}, 0
    for member, width in OF_MEMBERS.items():
        out[member] = w
        w += 2 if width > 64 else 1
    return out


#: The compiled translation core's flow (native/_xlate.pyx): one 64-bit word
#: per member in :data:`OF_MEMBERS` order, two (high word first) for the
#: 128-bit ones. ``WORD_OF[member]`` is the member's first word.
WORD_OF: dict[str, int] = _word_layout()
#: how many words such a flow (or its wildcards) has
N_WORDS = sum(2 if width > 64 else 1 for width in OF_MEMBERS.values())

# OfFlow member -> datapath flow-key field (ovsnet/datapath/flow_key.py), where
# the names differ; every other member below has the field's own name.
_KEY_FIELD = {
    "pkt_mark": "skb_mark", "skb_priority": "priority", "mpls_lse": "mpls_lse0",
    "mpls_lse1": "mpls_lse1", "mpls_lse2": "mpls_lse2", "tun_src": "tun_ipv4_src",
    "tun_dst": "tun_ipv4_dst",
}
_KEY_MEMBER_NAMES = (
    "recirc_id", "dp_hash", "pkt_mark", "skb_priority", "ct_zone", "ct_state", "ct_mark",
    "dl_dst", "dl_src", "dl_type", "vlan_tpid", "vlan_tci", "vlan1_tpid", "vlan1_tci",
    "mpls_lse", "mpls_lse1", "mpls_lse2", "nw_src", "nw_dst", "nw_frag", "nw_tos", "nw_ttl",
    "nw_proto", "ipv6_label", "tp_src", "tp_dst", "tcp_flags", "igmp_group_ip4", "ipv6_src",
    "ipv6_dst", "nd_target", "arp_sha", "arp_tha", "ct_label", "tun_id", "tun_src", "tun_dst",
    "tun_ipv6_src", "tun_ipv6_dst", "tun_tp_src", "tun_tp_dst", "tun_flags", "tun_tos",
    "tun_ttl",
)


def _key_member(member: str) -> tuple[str, int, int, str]:
    f = FIELD_BY_NAME[_KEY_FIELD.get(member, member)]
    # metadata is host order in the key; single bytes read the same either way
    order = _HOST if f.kind in ("u8", "u16", "u32") else "big"
    return member, f.offset, f.size, order


#: (OfFlow member, flow-key offset, size, byte order): FlowKey -> OfFlow
KEY_MEMBERS: tuple[tuple[str, int, int, str], ...] = tuple(
    _key_member(m) for m in _KEY_MEMBER_NAMES
)

_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}


def _key_struct(members: list[tuple[str, int, int, str]], prefix: str) -> struct.Struct:
    """One ``struct`` format reading ``members`` (sorted by offset) from a flow key."""
    fmt, pos = prefix, 0
    for _name, off, size, _order in members:
        fmt += ("x" * (off - pos)) + _CODES.get(size, f"{size}s")
        pos = off + size
    return struct.Struct(fmt)


# The key's members read with two struct calls: host-order metadata and
# network-order packet fields; members wider than 8 bytes come back as bytes.
_HOST_KEY = sorted((m for m in KEY_MEMBERS if m[3] == _HOST and m[2] > 1), key=lambda m: m[1])
_NET_KEY = sorted((m for m in KEY_MEMBERS if m not in _HOST_KEY), key=lambda m: m[1])
_HOST_STRUCT = _key_struct(_HOST_KEY, "=")
_NET_STRUCT = _key_struct(_NET_KEY, ">")
_HOST_NAMES = tuple(m[0] for m in _HOST_KEY)
_NET_NAMES = tuple(m[0] for m in _NET_KEY)
_WIDE_NAMES = tuple(m[0] for m in _NET_KEY if m[2] not in _CODES)
_IN_PORT = struct.Struct("=I")

#: every member at 0, in ``struct flow`` order: the template of a new flow
_ZERO: dict[str, int] = dict.fromkeys(OF_MEMBERS, 0)
#: member -> 1 << width: values must be below it
_LIMIT: dict[str, int] = {m: 1 << w for m, w in OF_MEMBERS.items()}

#: the flow key's in_port: offset 0, 4 bytes, host order; a masked in_port
#: matches the datapath port exactly
_IN_PORT_MASK = b"\xff" * 4
#: member -> (offset, size, byte order, all-ones of the key field) for key_mask_of
_KEY_PACK: dict[str, tuple[int, int, str, int]] = {
    m: (off, size, order, (1 << (8 * size)) - 1) for m, off, size, order in KEY_MEMBERS
}


def _key_mask_of(masks: Mapping[str, int]) -> bytes:
    """The megaflow mask of per-member ``masks`` (``FlowWildcards.masks``) as a flow-key mask.

    The inverse of :meth:`OfFlow.from_flow_key` for masks: each member's bits
    go to its flow-key field (cut to the field's size), a masked ``in_port``
    matches the datapath port exactly, and members the datapath does not
    have (registers, metadata) are left out (``odp_flow_key_from_mask``).
    """
    buf = bytearray(KEY_SIZE)
    pack = _KEY_PACK.get
    for member, bits in masks.items():
        if not bits:
            continue
        spec = pack(member)
        if spec is not None:
            off, size, order, ones = spec
            buf[off:off + size] = (bits & ones).to_bytes(size, order)  # type: ignore[arg-type]
        elif member == "in_port":
            buf[0:4] = _IN_PORT_MASK
    return bytes(buf)


def _key_members(raw: bytes) -> dict[str, int]:
    """The members read from a flow key (all but ``in_port``), the rest 0."""
    d = _ZERO.copy()
    d.update(zip(_HOST_NAMES, _HOST_STRUCT.unpack_from(raw), strict=True))
    d.update(zip(_NET_NAMES, _NET_STRUCT.unpack_from(raw), strict=True))
    frm = int.from_bytes
    for name in _WIDE_NAMES:
        d[name] = frm(d[name], "big")  # type: ignore[arg-type]
    return d


# The compiled conversions (native/_classifier.pyx) when built; the Python
# ones above are their reference.
try:
    from ovsnet import _classifier as _native
except ImportError:  # not built
    key_mask_of = _key_mask_of
    _read_key = _key_members
else:
    _native.set_key_layout(KEY_MEMBERS, _ZERO)
    key_mask_of = _native.key_mask
    _read_key = _native.key_members
key_mask_of.__doc__ = _key_mask_of.__doc__


class OfFlow:
    """One flow as the OpenFlow pipeline sees it (``struct flow``); members default to 0.

    ``OfFlow(in_port=1, dl_type=0x0800, nw_dst=0x0a000001)`` builds one by hand;
    :meth:`from_flow_key` from a datapath flow key after an upcall;
    :meth:`from_match` from an exact ``ofproto/trace``-style description.
    Flows are mutable (translation rewrites them); :meth:`copy` before editing a
    flow someone else holds.

    The members are plain instance attributes (one per name of
    :data:`OF_MEMBERS`, always all present), so that :meth:`copy` is a single
    dictionary copy: translation copies the flow several times per upcall.
    :meth:`set` checks the name and the width; direct attribute assignment
    does not.
    """

    def __init__(self, **members: int):
        self.__dict__.update(_ZERO)
        for name, value in members.items():
            self.set(name, value)

    def set(self, member: str, value: int) -> None:
        """Set ``member`` to ``value``, checking the name and the width."""
        limit = _LIMIT.get(member)
        if limit is None:
            raise OfprotoError(f"OfFlow has no member {member!r}; members: "
                               f"{', '.join(OF_MEMBERS)}")
        if value.__class__ is not int and not isinstance(value, int) or not 0 <= value < limit:
            raise OfprotoError(f"OfFlow member {member}={value!r} is out of range: "
                               f"must be an int in 0..{limit - 1:#x}")
        self.__dict__[member] = value

    def get(self, member: str) -> int:
        return getattr(self, member)

    def copy(self) -> OfFlow:
        other = object.__new__(OfFlow)
        other.__dict__ = self.__dict__.copy()
        return other

    def assign(self, other: OfFlow) -> None:
        """Make every member equal to ``other``'s (this object stays the one in use)."""
        self.__dict__.update(other.__dict__)

    def to_dict(self) -> dict[str, int]:
        """Every member, in ``struct flow`` order."""
        d = self.__dict__
        return {name: d[name] for name in OF_MEMBERS}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OfFlow):
            return NotImplemented
        a, b = self.__dict__, other.__dict__
        return all(a[n] == b[n] for n in OF_MEMBERS)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        d = self.__dict__
        shown = ", ".join(f"{n}={d[n]:#x}" for n in OF_MEMBERS if d[n])
        return f"OfFlow({shown})"

    @classmethod
    def from_match(cls, match: Match) -> OfFlow:
        """The flow whose members are ``match``'s values (wildcarded members are 0).

        This is how ``ofproto/trace`` reads an OpenFlow-style flow description
        (``parse_ofp_exact_flow``): every field not given is zero.
        """
        flow = cls()
        for member, (value, _mask) in match.members().items():
            flow.set(member, value)
        return flow

    @classmethod
    def from_flow_key(cls, key: Any,
                      in_port_map: Mapping[int, int] | Callable[[int], int] | None = None,
                      ) -> OfFlow:
        """The flow of a datapath flow key (``odp_flow_key_to_flow``).

        ``key`` is a :class:`~ovsnet.datapath.flow_key.FlowKey` (or its 528
        raw bytes). Its ``in_port`` is an ``odp_port``; ``in_port_map`` maps it
        to the bridge's OpenFlow port (``odp_port_to_ofp_port``), as a mapping
        or a callable. Without a map the number is used unchanged. An
        ``odp_port`` the map does not know raises :class:`OfprotoError`.
        """
        raw = key.raw if hasattr(key, "raw") else bytes(key)
        if len(raw) != 528:
            raise OfprotoError(f"a datapath flow key is 528 bytes, got {len(raw)}")
        flow = object.__new__(cls)
        flow.__dict__ = _read_key(raw)
        odp_port = _IN_PORT.unpack_from(raw)[0]
        if in_port_map is None:
            ofport = odp_port
        elif callable(in_port_map):
            ofport = in_port_map(odp_port)
        else:
            try:
                ofport = in_port_map[odp_port]
            except KeyError:
                known = ", ".join(str(p) for p in sorted(in_port_map)) or "none"
                raise OfprotoError(f"flow key in_port {odp_port} is not a port of this "
                                   f"bridge (known odp_ports: {known})") from None
        flow.set("in_port", ofport)
        return flow
