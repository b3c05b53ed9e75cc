"""Datapath actions: what the kernel module does to a packet after a flow hit.

What this models, and where in Open vSwitch and Linux it comes from:

* **The executor** mirrors ``do_execute_actions`` and friends in the kernel
  module's ``net/openvswitch/actions.c`` (Open vSwitch carried a copy as
  ``datapath/actions.c`` until 2.17): it walks a list of ``OVS_ACTION_ATTR_*``
  netlink attributes (the encoding of :mod:`ovsnet.datapath.odp_attrs`) over a
  copy of the packet and reports what leaves: packets sent to ``odp_port``\\ s
  (with the egress tunnel metadata a preceding ``set(tunnel(...))`` gave
  them), upcalls of ``userspace`` actions and packets to recirculate. Header
  rewrites (``set``/``set_masked`` of ethernet, ipv4, ipv6, tcp, udp, sctp,
  mpls, skb_mark, priority) update checksums exactly as the kernel's
  ``set_ipv4``/``set_ip_addr``/``update_ip_l4_checksum``/``set_ipv6``/
  ``set_tp_port``/``set_udp``/``set_sctp`` do, including which way a ones'-
  complement zero comes out (see :func:`_csum_replace4`), UDP's "checksum 0
  stays 0, a computed 0 becomes 0xffff" and IPv6's routing-header rule.
  VLAN, MPLS, ``trunc``, ``clone``, ``sample``, ``check_pkt_len``, ``hash``,
  ``recirc``, ``ct_clear``, ``meter`` and ``drop`` follow the kernel too.

* **The in-flight flow key** is updated the way the kernel updates its
  ``sw_flow_key`` after every action, so a later ``hash``, ``userspace`` or
  ``recirc`` sees the rewritten fields; ``push_mpls``, ``pop_mpls`` and VLAN
  pushes/pops on an already tagged packet mark it invalid, and ``recirc`` and
  ``hash`` re-extract it from the packet with the metadata kept
  (``ovs_flow_key_update``). A ``userspace`` action sends the key as it is,
  stale or not, as the kernel does.

* **Limits**: nested ``clone``/``sample``/``check_pkt_len`` lists that may
  change the key run with a copy of it at the next execution level while the
  level is at most ``OVS_DEFERRED_ACTION_THRESHOLD`` (3); deeper ones are
  deferred into a per-packet FIFO and run after the top-level list, as are
  recirculations from deep levels. The FIFO holds
  ``DEFERRED_ACTION_FIFO_SIZE - 1`` = 9 entries (``action_fifo_put`` refuses
  the tenth); past that the packet copy is dropped and counted, with the
  kernel's log line. An execution entered at a level above
  ``OVS_RECURSION_LIMIT`` (5) drops the packet, as ``ovs_execute_actions``
  does. Nested lists deeper than ``OVS_COPY_ACTIONS_MAX_DEPTH`` (16) are
  refused at validation.

* **Hardware-accelerated VLAN**: the kernel keeps a packet's outer VLAN tag
  in ``skb->vlan_tci``, outside ``skb->len``. Packets here always carry their
  tags inline, and the lengths ``check_pkt_len`` and ``trunc`` measure are the
  kernel's: the frame length minus 4 when the frame is VLAN tagged. A
  truncated output keeps the tag (``trunc(100)`` on a tagged frame sends 104
  bytes), an upcall gets ``frame length - cutlen`` bytes, as
  ``queue_userspace_packet`` sends them.

* **Hash**: the kernel hashes with ``skb_get_hash`` (the stack's flow
  dissector and jhash), which userspace cannot reproduce; ovsnet computes
  what ``dpif-netdev`` computes (``odp_execute_actions`` in
  ``lib/odp-execute.c``): ``flow_hash_5tuple`` for ``OVS_HASH_ALG_L4`` and
  ``flow_hash_symmetric_l3l4(flow, basis, false)`` for ``SYM_L4``
  (``lib/flow.c``), over the in-flight key, then the kernel's "0 becomes 1".

Where the kernel's flow validation would refuse actions that do not fit the
flow's key (``set(ipv4)`` on a flow that is not IPv4, ``pop_mpls`` on a
non-MPLS flow, ...), an action whose header is missing from the packet, or
is cut short, leaves packet and key alone, as ``odp-execute.c`` does.

Every function has two implementations with the same behaviour, byte for
byte: the pure-Python reference here and the compiled ``ovsnet._actions``
(``native/_actions.pyx``), whose C-level ``act_execute`` the datapath's
batch loop calls without the GIL. :func:`execute` and :func:`validate_actions`
are the public API; :data:`reference` and :data:`native` hold both
implementations' ``execute``.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass, field
from types import ModuleType, SimpleNamespace
from typing import Any

from ovsnet.datapath import flow_key as _fk
from ovsnet.datapath.flow_key import KEY_SIZE, FlowKey
from ovsnet.datapath.odp_attrs import (
    DEFERRED_ACTION_FIFO_SIZE,
    MAX_ACTIONS_DEPTH,
    NLA_HDRLEN,
    RECURSION_LIMIT,
    TUNNEL_ATTR_LEN,
    ActionAttr,
    CheckPktLenAttr,
    HashAlg,
    KeyAttr,
    SampleAttr,
    TunnelAttr,
    UserspaceAttr,
    nla_align,
)
from ovsnet.datapath.packet import _hash_add, _hash_finish
from ovsnet.errors import DatapathError

__all__ = [
    "DEFERRED_THRESHOLD",
    "FIFO_CAPACITY",
    "IMPLEMENTATION",
    "ExecResult",
    "Output",
    "Recirc",
    "Upcall",
    "execute",
    "flow_hash_5tuple",
    "flow_hash_symmetric_l3l4",
    "native",
    "reference",
    "validate_actions",
]

#: ``OVS_DEFERRED_ACTION_THRESHOLD``: deepest level that still gets a key copy
DEFERRED_THRESHOLD = RECURSION_LIMIT - 2
#: entries the deferred-action FIFO really holds (``action_fifo_put`` stops at SIZE - 1)
FIFO_CAPACITY = DEFERRED_ACTION_FIFO_SIZE - 1
#: ``DP_MAX_PORTS``: output ports must be below this
DP_MAX_PORTS = 65536

_HOST = sys.byteorder
_U16 = struct.Struct("=H")
_U32 = struct.Struct("=I")
_BE16 = struct.Struct("!H")
_BE32 = struct.Struct("!I")

_ETH_IP, _ETH_IPV6 = 0x0800, 0x86DD
_ETH_VLAN = (0x8100, 0x88A8)
_ETH_MPLS = (0x8847, 0x8848)
_VLAN_CFI = 0x1000
_PROTO_TCP, _PROTO_UDP, _PROTO_SCTP, _PROTO_ICMPV6 = 6, 17, 132, 58

# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


class Output(tuple):
    """``(port, packet, egress_tunnel)``: a packet sent to an ``odp_port``.

    ``egress_tunnel`` is ``None``, or a :data:`KEY_SIZE`-byte key whose tunnel
    fields hold the metadata of the last ``set(tunnel(...))`` before the
    output (everything else zero); a tunnel vport encapsulates with it.
    """

    __slots__ = ()

    def __new__(cls, port: int, packet: bytes, egress_tunnel: bytes | None) -> Output:
        return tuple.__new__(cls, (port, packet, egress_tunnel))

    port = property(lambda self: self[0])
    packet = property(lambda self: self[1])
    egress_tunnel = property(lambda self: self[2])


class Upcall(tuple):
    """``(pid, userdata, key, packet)``: an ``OVS_PACKET_CMD_ACTION`` upcall.

    Unpacks as that 4-tuple; also has ``egress_tun_port`` (the
    ``OVS_USERSPACE_ATTR_EGRESS_TUN_PORT`` value or ``None``),
    ``egress_tunnel`` (the egress tunnel key when that attribute is present
    and a tunnel was set, else ``None``) and ``actions`` (the action list the
    userspace action is in, when ``OVS_USERSPACE_ATTR_ACTIONS`` asks for it).
    ``userdata`` is ``None`` without ``OVS_USERSPACE_ATTR_USERDATA``.
    """

    def __new__(cls, pid: int, userdata: bytes | None, key: bytes, packet: bytes,
                egress_tun_port: int | None = None, egress_tunnel: bytes | None = None,
                actions: bytes | None = None) -> Upcall:
        self = tuple.__new__(cls, (pid, userdata, key, packet))
        self.egress_tun_port = egress_tun_port
        self.egress_tunnel = egress_tunnel
        self.actions = actions
        return self

    pid = property(lambda self: self[0])
    userdata = property(lambda self: self[1])
    key = property(lambda self: self[2])
    packet = property(lambda self: self[3])

    def full(self) -> tuple:
        """Every field, extras included (``==`` compares only the 4-tuple)."""
        return (*self, self.egress_tun_port, self.egress_tunnel, self.actions)


class Recirc(tuple):
    """``(key, packet)``: a packet to run through the datapath again.

    ``key`` has ``recirc_id`` set. ``level`` is the execution level at which
    the kernel would run the recirculated packet's actions (pass it to
    :func:`execute`), ``deferred`` the deferred-FIFO entries this packet's
    processing has used so far.
    """

    def __new__(cls, key: bytes, packet: bytes, level: int = 2, deferred: int = 0) -> Recirc:
        self = tuple.__new__(cls, (key, packet))
        self.level = level
        self.deferred = deferred
        return self

    key = property(lambda self: self[0])
    packet = property(lambda self: self[1])

    def full(self) -> tuple:
        return (*self, self.level, self.deferred)


@dataclass
class ExecResult:
    """What executing one action list on one packet produced."""

    outputs: list[Output] = field(default_factory=list)
    upcalls: list[Upcall] = field(default_factory=list)
    recircs: list[Recirc] = field(default_factory=list)
    #: executions refused at a level above ``OVS_RECURSION_LIMIT``
    dropped_recursion: int = 0
    #: nested action lists and recirculations dropped with the deferred FIFO full
    dropped_deferred: int = 0
    #: of ``dropped_deferred``, how many were recirculations
    dropped_deferred_recirc: int = 0
    #: packets ended by an explicit ``drop`` action
    dropped_explicit: int = 0

    @property
    def log(self) -> list[str]:
        """The lines the kernel logs for these drops (``net_crit_ratelimited``/``pr_warn``)."""
        dp = "ovs-system"
        n_actions = self.dropped_deferred - self.dropped_deferred_recirc
        return (
            [f"ovs: recursion limit reached on datapath {dp}, probable configuration error"]
            * self.dropped_recursion
            + [f"{dp}: deferred action limit reached, drop sample action"] * n_actions
            + [f"{dp}: deferred action limit reached, drop recirc action"]
            * self.dropped_deferred_recirc
        )

    def full(self) -> tuple:
        """Everything, extras of upcalls and recirculations included, for comparisons."""
        return (list(self.outputs), [u.full() for u in self.upcalls],
                [r.full() for r in self.recircs], self.dropped_recursion,
                self.dropped_deferred, self.dropped_deferred_recirc, self.dropped_explicit)


# ---------------------------------------------------------------------------
# Validation (flow_netlink.c: __ovs_nla_copy_actions and the validate_* helpers)
# ---------------------------------------------------------------------------

#: payload sizes of the fixed-size actions (``action_lens`` in flow_netlink.c)
_ACTION_LENS = {
    ActionAttr.OUTPUT: 4,
    ActionAttr.RECIRC: 4,
    ActionAttr.PUSH_MPLS: 8,  # struct ovs_action_push_mpls, padded
    ActionAttr.POP_MPLS: 2,
    ActionAttr.PUSH_VLAN: 4,
    ActionAttr.POP_VLAN: 0,
    ActionAttr.HASH: 8,
    ActionAttr.CT_CLEAR: 0,
    ActionAttr.TRUNC: 4,
    ActionAttr.METER: 4,
    ActionAttr.DROP: 4,
}

#: key attributes a set/set_masked may carry, with their sizes (0: n * 4 bytes)
_SET_KEY_LENS = {
    KeyAttr.PRIORITY: 4,
    KeyAttr.SKB_MARK: 4,
    KeyAttr.ETHERNET: 12,
    KeyAttr.IPV4: 12,
    KeyAttr.IPV6: 40,
    KeyAttr.TCP: 4,
    KeyAttr.UDP: 4,
    KeyAttr.SCTP: 4,
    KeyAttr.MPLS: 0,
}

_UNSUPPORTED = {
    ActionAttr.CT: "ct (connection tracking) is not modelled by ovsnet",
    ActionAttr.PUSH_ETH: "push_eth (layer 3 packets) is not modelled by ovsnet",
    ActionAttr.POP_ETH: "pop_eth (layer 3 packets) is not modelled by ovsnet",
    ActionAttr.PUSH_NSH: "push_nsh is not modelled by ovsnet",
    ActionAttr.POP_NSH: "pop_nsh is not modelled by ovsnet",
    ActionAttr.ADD_MPLS: "add_mpls is not modelled by ovsnet",
    ActionAttr.TUNNEL_PUSH: "tnl_push is a userspace-datapath action; the kernel refuses it",
    ActionAttr.TUNNEL_POP: "tnl_pop is a userspace-datapath action; the kernel refuses it",
    ActionAttr.LB_OUTPUT: "lb_output is a userspace-datapath action; the kernel refuses it",
}

#: the tunnel attributes ovsnet models (fixed length; geneve options apart)
_TUNNEL_LENS = {t: n for t, n in TUNNEL_ATTR_LEN.items() if n is not None and t != TunnelAttr.PAD}
_GENEVE_OPTS_MAX = 252  # IP_TUNNEL_OPTS_MAX (255) rounded down to whole 4-byte words


class _Attrs:
    """Walks a netlink attribute stream, raising DatapathError with absolute offsets."""

    def __init__(self, buf: bytes, base: int, where: str):
        self.buf, self.base, self.where = buf, base, where

    def __iter__(self):
        buf, ofs, end = self.buf, 0, len(self.buf)
        while ofs < end:
            if end - ofs < NLA_HDRLEN:
                raise DatapathError(
                    f"{self.where}: {end - ofs} stray bytes at offset {self.base + ofs}, "
                    f"an attribute needs a {NLA_HDRLEN}-byte header")
            length, attr_type = struct.unpack_from("=HH", buf, ofs)
            if length < NLA_HDRLEN or ofs + length > end:
                raise DatapathError(
                    f"{self.where}: attribute at offset {self.base + ofs} has length {length}, "
                    f"valid is {NLA_HDRLEN}..{end - ofs}")
            nxt = ofs + nla_align(length)
            yield attr_type, buf[ofs + NLA_HDRLEN: ofs + length], self.base + ofs, nxt >= end
            ofs = nxt


def _fail(ofs: int, msg: str) -> DatapathError:
    return DatapathError(f"actions: {msg} (attribute at offset {ofs})")


def _name(t: int, enum: Any) -> str:
    try:
        return enum(t).name.lower()
    except ValueError:
        return f"type {t}"


def _validate_tunnel(payload: bytes, base: int) -> None:
    seen_v4 = seen_v6 = ttl = False
    dst4 = dst6 = False
    for t, p, ofs, _ in _Attrs(payload, base, "set(tunnel)"):
        if t == TunnelAttr.GENEVE_OPTS:
            _check_geneve(p, ofs)
            continue
        if t == TunnelAttr.PAD:
            continue
        if t not in _TUNNEL_LENS:
            raise _fail(ofs, f"tunnel attribute {_name(t, TunnelAttr)} is not supported: "
                             "ovsnet models id, ipv4/ipv6 src and dst, tos, ttl, tp_src, "
                             "tp_dst, df, csum, oam and geneve options")
        if len(p) != _TUNNEL_LENS[t]:
            raise _fail(ofs, f"tunnel attribute {_name(t, TunnelAttr)} has {len(p)} bytes, "
                             f"must have {_TUNNEL_LENS[t]}")
        if t in (TunnelAttr.IPV4_SRC, TunnelAttr.IPV4_DST):
            seen_v4 = True
            dst4 = dst4 or (t == TunnelAttr.IPV4_DST and p != bytes(4))
        elif t in (TunnelAttr.IPV6_SRC, TunnelAttr.IPV6_DST):
            seen_v6 = True
            dst6 = dst6 or (t == TunnelAttr.IPV6_DST and p != bytes(16))
        elif t == TunnelAttr.TTL:
            ttl = True
    # ip_tun_from_nlattr's checks for a tunnel key (not a mask)
    if seen_v4 and seen_v6:
        raise _fail(base, "set(tunnel) mixes IPv4 and IPv6 addresses")
    if not ttl:
        raise _fail(base, "set(tunnel) needs a ttl (the kernel: 'IP tunnel TTL not specified')")
    if not (dst4 or dst6):
        raise _fail(base, "set(tunnel) needs a non-zero ipv4_dst or ipv6_dst")


def _check_geneve(p: bytes, ofs: int) -> None:
    if len(p) % 4 or len(p) > _GENEVE_OPTS_MAX:
        raise _fail(ofs, f"geneve options are {len(p)} bytes: must be a multiple of 4, "
                         f"at most {_GENEVE_OPTS_MAX}")
    o = 0
    while o < len(p):
        if len(p) - o < 4 or o + 4 + (p[o + 3] & 0x1F) * 4 > len(p):
            raise _fail(ofs, f"geneve option at byte {o} overruns the options")
        o += 4 + (p[o + 3] & 0x1F) * 4


def _validate_set(payload: bytes, base: int, masked: bool) -> None:
    attrs = list(_Attrs(payload, base + NLA_HDRLEN, "set"))
    what = "set_masked" if masked else "set"
    if len(attrs) != 1 or nla_align(NLA_HDRLEN + len(attrs[0][1])) != nla_align(len(payload)):
        raise _fail(base, f"{what} must carry exactly one key attribute")
    t, p, ofs, _ = attrs[0]
    if t == KeyAttr.TUNNEL:
        if masked:
            raise _fail(ofs, "set_masked(tunnel) is not supported by the kernel: use set(tunnel)")
        _validate_tunnel(p, ofs + NLA_HDRLEN)
        return
    if t not in _SET_KEY_LENS:
        raise _fail(ofs, f"{what} of key attribute {_name(t, KeyAttr)} is not supported; "
                         "valid: priority, skb_mark, eth, ipv4, ipv6, tcp, udp, sctp, mpls, tunnel")
    size = len(p) // 2 if masked else len(p)
    want = _SET_KEY_LENS[t]
    if (masked and len(p) % 2) or (want and size != want) or (not want and (size == 0 or size % 4)):
        need = f"{want}" if want else "a non-zero multiple of 4"
        raise _fail(ofs, f"{what}({_name(t, KeyAttr)}) has {len(p)} payload bytes: the key "
                         f"is {need} bytes{', followed by a mask of the same size' if masked else ''}")
    value = p[:size]
    if masked:
        mask = p[size:]
        if any(v & ~m & 0xFF for v, m in zip(value, mask, strict=True)):
            raise _fail(ofs, f"set_masked({_name(t, KeyAttr)}) sets bits outside its mask")
        if t == KeyAttr.IPV4 and (mask[8] or mask[11]):
            raise _fail(ofs, "set_masked(ipv4) cannot change proto or frag")
        if t == KeyAttr.IPV6 and (mask[36] or mask[39]):
            raise _fail(ofs, "set_masked(ipv6) cannot change proto or frag")
        if t == KeyAttr.IPV6 and _BE32.unpack_from(mask, 32)[0] & 0xFFF00000:
            raise _fail(ofs, "set_masked(ipv6) label mask has bits above the 20-bit flow label")
    if t == KeyAttr.IPV6 and _BE32.unpack_from(value, 32)[0] & 0xFFF00000:
        raise _fail(ofs, f"{what}(ipv6) label has bits above the 20-bit flow label")


def _validate_list(buf: bytes, base: int, depth: int, where: str) -> None:
    if depth > MAX_ACTIONS_DEPTH:
        raise _fail(base, f"actions nested deeper than {MAX_ACTIONS_DEPTH} levels "
                          "(the kernel's OVS_COPY_ACTIONS_MAX_DEPTH)")
    for t, p, ofs, last in _Attrs(buf, base, where):
        if t in _UNSUPPORTED:
            raise _fail(ofs, _UNSUPPORTED[t])
        want = _ACTION_LENS.get(t)
        if want is not None and len(p) != want:
            raise _fail(ofs, f"{_name(t, ActionAttr)} has {len(p)} payload bytes, must have {want}")
        inner = ofs + NLA_HDRLEN
        if t == ActionAttr.OUTPUT:
            port = _U32.unpack(p)[0]
            if port >= DP_MAX_PORTS:
                raise _fail(ofs, f"output to port {port}: ports are 0..{DP_MAX_PORTS - 1}")
        elif t == ActionAttr.TRUNC:
            if _U32.unpack(p)[0] < 14:
                raise _fail(ofs, f"trunc to {_U32.unpack(p)[0]} bytes: at least 14 (an Ethernet header)")
        elif t == ActionAttr.HASH:
            alg = _U32.unpack_from(p)[0]
            if alg not in (HashAlg.L4, HashAlg.SYM_L4):
                raise _fail(ofs, f"hash algorithm {alg}: valid are 0 (l4) and 1 (sym_l4)")
        elif t == ActionAttr.PUSH_VLAN:
            tpid, tci = _BE16.unpack_from(p)[0], _BE16.unpack_from(p, 2)[0]
            if tpid not in _ETH_VLAN:
                raise _fail(ofs, f"push_vlan tpid {tpid:#06x}: valid are 0x8100 and 0x88a8")
            if not tci & _VLAN_CFI:
                raise _fail(ofs, "push_vlan tci must have the CFI bit (0x1000) set")
        elif t == ActionAttr.PUSH_MPLS:
            if _BE16.unpack_from(p, 4)[0] not in _ETH_MPLS:
                raise _fail(ofs, "push_mpls ethertype must be 0x8847 or 0x8848")
        elif t == ActionAttr.DROP:
            if not last:
                raise _fail(ofs, "drop must be the last action of its list")
        elif t == ActionAttr.USERSPACE:
            pid = None
            for ut, up, uofs, _ in _Attrs(p, inner, "userspace"):
                if ut in (UserspaceAttr.PID, UserspaceAttr.EGRESS_TUN_PORT) and len(up) != 4:
                    raise _fail(uofs, f"userspace {_name(ut, UserspaceAttr)} has {len(up)} bytes, must have 4")
                if ut == UserspaceAttr.PID:
                    pid = _U32.unpack(up)[0]
            if not pid:
                raise _fail(ofs, "userspace needs a non-zero pid")
        elif t in (ActionAttr.SET, ActionAttr.SET_MASKED):
            _validate_set(p, ofs, t == ActionAttr.SET_MASKED)
        elif t == ActionAttr.SAMPLE:
            seen: dict[int, tuple[bytes, int]] = {}
            for st, sp, sofs, _ in _Attrs(p, inner, "sample"):
                if st not in (SampleAttr.PROBABILITY, SampleAttr.ACTIONS) or st in seen:
                    raise _fail(sofs, f"sample: unexpected or repeated attribute {_name(st, SampleAttr)}")
                seen[st] = (sp, sofs)
            if SampleAttr.PROBABILITY not in seen or len(seen[SampleAttr.PROBABILITY][0]) != 4:
                raise _fail(ofs, "sample needs a 4-byte probability")
            if SampleAttr.ACTIONS not in seen:
                raise _fail(ofs, "sample needs an actions attribute")
            sp, sofs = seen[SampleAttr.ACTIONS]
            _validate_list(sp, sofs + NLA_HDRLEN, depth + 1, "sample actions")
        elif t == ActionAttr.CLONE:
            _validate_list(p, inner, depth + 1, "clone actions")
        elif t == ActionAttr.CHECK_PKT_LEN:
            seen = {}
            for ct, cp, cofs, _ in _Attrs(p, inner, "check_pkt_len"):
                if ct not in (1, 2, 3) or ct in seen:
                    raise _fail(cofs, "check_pkt_len: unexpected or repeated attribute "
                                      f"{_name(ct, CheckPktLenAttr)}")
                seen[ct] = (cp, cofs)
            size = seen.get(CheckPktLenAttr.PKT_LEN, (b"", 0))[0]
            if len(size) != 2 or not _U16.unpack(size)[0]:
                raise _fail(ofs, "check_pkt_len needs a non-zero 2-byte pkt_len")
            for branch in (CheckPktLenAttr.ACTIONS_IF_GREATER, CheckPktLenAttr.ACTIONS_IF_LESS_EQUAL):
                if branch not in seen:
                    raise _fail(ofs, f"check_pkt_len needs {CheckPktLenAttr(branch).name.lower()}")
                cp, cofs = seen[branch]
                _validate_list(cp, cofs + NLA_HDRLEN, depth + 1, "check_pkt_len actions")
        elif want is None and t not in (ActionAttr.USERSPACE,):
            raise _fail(ofs, f"unknown action {_name(t, ActionAttr)}")


def validate_actions(actions: bytes) -> None:
    """Check an action list as the kernel's ``ovs_nla_copy_actions`` would.

    Raises :class:`DatapathError` naming the offset of the bad attribute and
    what would be valid. The checks that need the flow's key (``set(ipv4)``
    only on IPv4 flows, ...) are not made: executing such an action on a
    packet without the header does nothing. Actions ovsnet does not model
    (``ct``, NSH, ``push_eth``/``pop_eth``, ``add_mpls``) and the userspace
    datapath's own actions are refused.
    """
    if not isinstance(actions, (bytes, bytearray, memoryview)):
        raise TypeError(f"actions must be bytes, not {type(actions).__name__}")
    _validate_list(bytes(actions), 0, 0, "actions")


# ---------------------------------------------------------------------------
# Kernel checksum arithmetic (include/net/checksum.h, net/core/utils.c)
# ---------------------------------------------------------------------------


def _masked_bytes(value: bytes, mask: bytes, old: bytes) -> bytes:
    """``old`` with the bits of ``mask`` taken from ``value`` (a set_masked field)."""
    return bytes((v & m) | (o & ~m & 0xFF) for v, m, o in zip(value, mask, old, strict=True))


def _fold(s: int) -> int:
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def _csum_replace2(check: int, old: int, new: int) -> int:
    """``csum_replace2``: 16-bit ones'-complement adds; all-zero terms give 0xffff."""
    return ~_fold((~check & 0xFFFF) + (~old & 0xFFFF) + new) & 0xFFFF


def _csum_replace_words(check: int, old: bytes, new: bytes) -> int:
    """``csum_replace4``/``inet_proto_csum_replace{2,4,16}`` with CHECKSUM_NONE.

    The kernel starts from ``~csum_unfold(check)``, a 32-bit value that is
    never zero, so the folded sum is never zero either: a result that is a
    ones'-complement zero comes out as checksum 0x0000, never 0xffff.
    """
    s = ~check & 0xFFFF
    for i in range(0, len(old), 2):
        s += (~((old[i] << 8) | old[i + 1]) & 0xFFFF) + ((new[i] << 8) | new[i + 1])
    r = _fold(s)
    return ~(r or 0xFFFF) & 0xFFFF


def _ipv4_change_dsfield(check: int, tos: int, mask: int, value: int) -> tuple[int, int]:
    """``ipv4_change_dsfield`` (include/net/dsfield.h), its own checksum update."""
    dsfield = (tos & mask) | value
    c = check + tos
    if (c + 1) >> 16:
        c = (c + 1) & 0xFFFF
    c = (c - dsfield) & 0xFFFFFFFF
    c += c >= 0xFFFF
    return c & 0xFFFF, dsfield


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def _crc32c(data: bytes | bytearray) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC32C[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _sctp_csum(p: bytearray, l4: int) -> bytes:
    """``sctp_compute_cksum`` over the rest of the packet, checksum field zero, as stored."""
    return _crc32c(bytes(p[l4: l4 + 8]) + bytes(4) + bytes(p[l4 + 12:])).to_bytes(4, "little")


# ---------------------------------------------------------------------------
# OVS hashes of the in-flight key (lib/flow.c)
# ---------------------------------------------------------------------------

def _le32(k: bytes, o: int) -> int:
    return int.from_bytes(k[o:o + 4], "little")


def flow_hash_5tuple(key: bytes, basis: int = 0) -> int:
    """OVS ``flow_hash_5tuple`` of a flow key (what dpif-netdev's hash action uses)."""
    add, finish = _hash_add, _hash_finish
    h = basis
    dl_type = _BE16.unpack_from(key, 44)[0]
    if dl_type == _ETH_IPV6:
        for o in range(104, 136, 8):
            w = int.from_bytes(key[o:o + 8], "little")
            h = add(add(h, w & 0xFFFFFFFF), w >> 32)
    elif dl_type in (_ETH_IP, 0x0806):
        h = add(add(h, _le32(key, 72)), _le32(key, 76))
    else:
        return finish(h, 42)
    proto = key[83]
    h = add(h, proto)
    if proto in (_PROTO_TCP, _PROTO_UDP, _PROTO_SCTP, 1, _PROTO_ICMPV6):
        h = add(h, _le32(key, 88))
    return finish(h, 42)


def flow_hash_symmetric_l3l4(key: bytes, basis: int = 0, inc_udp_ports: bool = False) -> int:
    """OVS ``flow_hash_symmetric_l3l4`` (falls back to ``flow_hash_symmetric_l2``)."""
    add, finish = _hash_add, _hash_finish
    h = basis
    dl_type = _BE16.unpack_from(key, 44)[0]
    if dl_type == _ETH_IP:
        h = add(h, _le32(key, 72) ^ _le32(key, 76))
    elif dl_type == _ETH_IPV6:
        for o in (104, 112):
            w = int.from_bytes(key[o:o + 8], "little") ^ int.from_bytes(key[o + 16:o + 24], "little")
            h = add(add(h, w & 0xFFFFFFFF), w >> 32)
    else:
        eth = bytes(a ^ b for a, b in zip(key[32:38], key[38:44], strict=True))
        tci = bytes(((key[50] ^ key[54]) & 0x0F, key[51] ^ key[55]))
        words = key[44:46] + tci + eth + bytes(2)
        for o in range(0, 12, 4):
            h = add(h, _le32(words, o))
        return finish(h, basis)
    proto = key[83]
    h = add(h, proto)
    if not key[80] & 3 and (proto in (_PROTO_TCP, _PROTO_SCTP) or (inc_udp_ports and proto == _PROTO_UDP)):
        h = add(h, int.from_bytes(key[88:90], "little") ^ int.from_bytes(key[90:92], "little"))
    return finish(h, basis)


# ---------------------------------------------------------------------------
# Reference executor (net/openvswitch/actions.c)
# ---------------------------------------------------------------------------


def _rng_next(state: int) -> tuple[int, int]:
    """splitmix64; the draw is the high 32 bits. Both implementations use it."""
    state = (state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    z ^= z >> 31
    return state, z >> 32


def _tagged(p: bytearray) -> bool:
    """Whether the kernel holds an outer VLAN tag outside skb->len (hwaccel)."""
    return len(p) >= 18 and _BE16.unpack_from(p, 12)[0] in _ETH_VLAN


def _l3(p: bytearray) -> tuple[int, int]:
    """(ethertype, offset of the L3 header) after up to two VLAN tags; (0, -1) if no L2."""
    n = len(p)
    if n < 14:
        return 0, -1
    o = 12
    for _ in range(2):
        if _BE16.unpack_from(p, o)[0] not in _ETH_VLAN or n - o < 6:
            break
        o += 4
    return _BE16.unpack_from(p, o)[0], o + 2


def _ipv4_l4(p: bytearray, l3: int) -> int:
    """Offset of the L4 header of an IPv4 packet, or -1 (bad IHL, later fragment)."""
    ihl = (p[l3] & 0x0F) * 4
    if ihl < 20 or l3 + ihl > len(p) or _BE16.unpack_from(p, l3 + 6)[0] & 0x1FFF:
        return -1
    return l3 + ihl


_IPV6_EXT = (0, 43, 60, 51, 44)


def _ipv6_l4(p: bytearray, l3: int) -> tuple[int, int]:
    """(protocol, offset) of the IPv6 upper-layer header, or (-1, -1)."""
    n = len(p)
    proto, o = p[l3 + 6], l3 + 40
    while proto in _IPV6_EXT:
        if n - o < 8:
            return -1, -1
        if proto == 44:
            if _BE16.unpack_from(p, o + 2)[0] & 0xFFF8:
                return -1, -1  # a later fragment has no L4 header
            proto, o = p[o], o + 8
            continue
        hlen = (p[o + 1] + 2) * 4 if proto == 51 else (p[o + 1] + 1) * 8
        proto, o = p[o], o + hlen
        if o > n:
            return -1, -1
    return proto, o


def _ipv6_has_routing(p: bytearray, l3: int) -> bool:
    """``ipv6_find_hdr(.., NEXTHDR_ROUTING, .., IP6_FH_F_SKIP_RH) == NEXTHDR_ROUTING``."""
    n = len(p)
    nexthdr, start = p[l3 + 6], l3 + 40
    while True:
        found = nexthdr == 43
        if nexthdr not in _IPV6_EXT or nexthdr == 59:
            return False
        if n - start < 2:
            return False
        if nexthdr == 43:
            if n - start < 4:
                return False
            if p[start + 3] == 0:
                found = False
        if nexthdr == 44:
            if n - start < 4:
                return False
            if _BE16.unpack_from(p, start + 2)[0] & 0xFFF8:
                return False
            hlen = 8
        elif nexthdr == 51:
            hlen = (p[start + 1] + 2) * 4
        else:
            hlen = (p[start + 1] + 1) * 8
        if found:
            return True
        nexthdr, start = p[start], start + hlen


class _Key:
    """The in-flight key and whether it still describes the packet."""

    __slots__ = ("raw", "valid")

    def __init__(self, raw: bytearray, valid: bool):
        self.raw, self.valid = raw, valid

    def copy(self) -> _Key:
        return _Key(bytearray(self.raw), self.valid)


class _State:
    __slots__ = ("pkt", "key", "tunnel", "cutlen", "level")

    def __init__(self, pkt: bytearray, key: _Key, tunnel: bytes | None, cutlen: int, level: int):
        self.pkt, self.key, self.tunnel, self.cutlen, self.level = pkt, key, tunnel, cutlen, level


def _may_change_flow(actions: bytes) -> bool:
    """``actions_may_change_flow``: anything but output, recirc, trunc, userspace."""
    for t, _p, _o, _l in _Attrs(actions, 0, "actions"):
        if t not in (ActionAttr.OUTPUT, ActionAttr.RECIRC, ActionAttr.TRUNC, ActionAttr.USERSPACE):
            return True
    return False


def _tunnel_key(payload: bytes) -> bytes:
    """A key holding the egress tunnel metadata of set(tunnel(...)) (validated)."""
    k = bytearray(KEY_SIZE)
    flags = 0
    for t, p, _o, _l in _Attrs(payload, 0, "tunnel"):
        if t == TunnelAttr.ID:
            k[208:216] = p
            flags |= _fk.TNL_F_KEY
        elif t == TunnelAttr.IPV4_SRC:
            k[216:220] = p
        elif t == TunnelAttr.IPV4_DST:
            k[220:224] = p
        elif t == TunnelAttr.IPV6_SRC:
            k[224:240] = p
        elif t == TunnelAttr.IPV6_DST:
            k[240:256] = p
        elif t == TunnelAttr.TP_SRC:
            k[256:258] = p
        elif t == TunnelAttr.TP_DST:
            k[258:260] = p
        elif t == TunnelAttr.DONT_FRAGMENT:
            flags |= _fk.TNL_F_DONT_FRAGMENT
        elif t == TunnelAttr.CSUM:
            flags |= _fk.TNL_F_CSUM
        elif t == TunnelAttr.OAM:
            flags |= _fk.TNL_F_OAM
        elif t == TunnelAttr.TOS:
            k[262] = p[0]
        elif t == TunnelAttr.TTL:
            k[263] = p[0]
        elif t == TunnelAttr.GENEVE_OPTS:
            k[264] = len(p)
            k[272:272 + len(p)] = p
    k[260:262] = flags.to_bytes(2, _HOST)
    return bytes(k)


class _Exec:
    """One top-level execution: results, counters, RNG and the deferred FIFO."""

    def __init__(self, seed: int, fifo_used: int):
        self.res = ExecResult()
        self.rng = seed & 0xFFFFFFFFFFFFFFFF
        self.fifo_used = fifo_used
        self.fifo: list[tuple[_State, bytes]] = []

    # -- helpers -------------------------------------------------------------

    def _fresh_key(self, st: _State) -> None:
        if not st.key.valid:
            st.key.raw[:] = _fk._ref_extract(bytes(st.pkt), 0, bytes(st.key.raw))
            st.key.valid = True

    def _emit_packet(self, st: _State, upcall: bool) -> bytes:
        p = st.pkt
        if st.cutlen:
            tag = 4 if _tagged(p) else 0
            if upcall:
                return bytes(p[: max(0, len(p) - st.cutlen)])
            if len(p) - tag - st.cutlen > 14:
                return bytes(p[: len(p) - st.cutlen])
            return bytes(p[: 14 + tag])
        return bytes(p)

    def _nested(self, st: _State, actions: bytes, last: bool, clone_key: bool) -> None:
        """``clone_execute`` for clone, sample and check_pkt_len."""
        pkt = st.pkt if last else bytearray(st.pkt)
        if not clone_key:
            self._run(_State(pkt, st.key, st.tunnel, st.cutlen, st.level), actions)
            return
        if st.level <= DEFERRED_THRESHOLD:
            self._run(_State(pkt, st.key.copy(), st.tunnel, st.cutlen, st.level + 1), actions)
            return
        if self.fifo_used < FIFO_CAPACITY:
            self.fifo_used += 1
            self.fifo.append((_State(pkt, st.key.copy(), st.tunnel, st.cutlen, 1), actions))
        else:
            self.res.dropped_deferred += 1

    # -- the action loop -----------------------------------------------------

    def _run(self, st: _State, actions: bytes) -> None:
        for t, a, _ofs, last in _Attrs(actions, 0, "actions"):
            if t == ActionAttr.OUTPUT:
                self.res.outputs.append(Output(_U32.unpack(a)[0], self._emit_packet(st, False), st.tunnel))
                if last:
                    return
                st.cutlen = 0
            elif t == ActionAttr.TRUNC:
                max_len = _U32.unpack(a)[0]
                klen = len(st.pkt) - (4 if _tagged(st.pkt) else 0)
                if klen > max_len:
                    st.cutlen = klen - max_len
            elif t == ActionAttr.USERSPACE:
                self._userspace(st, a, actions)
                st.cutlen = 0
            elif t == ActionAttr.HASH:
                self._fresh_key(st)
                alg, basis = _U32.unpack_from(a)[0], _U32.unpack_from(a, 4)[0]
                k = bytes(st.key.raw)
                h = flow_hash_5tuple(k, basis) if alg == HashAlg.L4 else flow_hash_symmetric_l3l4(k, basis)
                st.key.raw[8:12] = (h or 1).to_bytes(4, _HOST)
            elif t == ActionAttr.PUSH_MPLS:
                self._push_mpls(st, a)
            elif t == ActionAttr.POP_MPLS:
                self._pop_mpls(st, a)
            elif t == ActionAttr.PUSH_VLAN:
                self._push_vlan(st, a)
            elif t == ActionAttr.POP_VLAN:
                self._pop_vlan(st)
            elif t == ActionAttr.RECIRC:
                self._recirc(st, _U32.unpack(a)[0])
                if last:
                    return
            elif t in (ActionAttr.SET, ActionAttr.SET_MASKED):
                self._set(st, a, t == ActionAttr.SET_MASKED)
            elif t == ActionAttr.SAMPLE:
                self._sample(st, a, last)
                if last:
                    return
            elif t == ActionAttr.CLONE:
                self._nested(st, a, last, not (last or not _may_change_flow(a)))
                if last:
                    return
            elif t == ActionAttr.CHECK_PKT_LEN:
                self._check_pkt_len(st, a, last)
                if last:
                    return
            elif t == ActionAttr.CT_CLEAR:
                k = st.key.raw
                k[20:24] = bytes(4)  # ct_zone, ct_state, pad
                k[24:28] = bytes(4)  # ct_mark
                k[192:208] = bytes(16)  # ct_label
            elif t == ActionAttr.DROP:
                self.res.dropped_explicit += 1
                return
            # METER: ovsnet has no meters; the packet passes

    def _userspace(self, st: _State, a: bytes, actions: bytes) -> None:
        pid, userdata, tun_port, want_actions = 0, None, None, False
        for ut, up, _o, _l in _Attrs(a, 0, "userspace"):
            if ut == UserspaceAttr.PID:
                pid = _U32.unpack(up)[0]
            elif ut == UserspaceAttr.USERDATA:
                userdata = bytes(up)
            elif ut == UserspaceAttr.EGRESS_TUN_PORT:
                tun_port = _U32.unpack(up)[0]
            elif ut == UserspaceAttr.ACTIONS:
                want_actions = True
        tunnel = st.tunnel if tun_port is not None else None
        self.res.upcalls.append(Upcall(pid, userdata, bytes(st.key.raw), self._emit_packet(st, True),
                                       tun_port, tunnel, bytes(actions) if want_actions else None))

    def _recirc(self, st: _State, recirc_id: int) -> None:
        self._fresh_key(st)
        key = bytearray(st.key.raw)
        key[4:8] = recirc_id.to_bytes(4, _HOST)
        if st.level <= DEFERRED_THRESHOLD:
            level = st.level + 1
        elif self.fifo_used < FIFO_CAPACITY:
            self.fifo_used += 1
            level = 2
        else:
            self.res.dropped_deferred += 1
            self.res.dropped_deferred_recirc += 1
            return
        self.res.recircs.append(Recirc(bytes(key), bytes(st.pkt), level, self.fifo_used))

    def _sample(self, st: _State, a: bytes, last: bool) -> None:
        prob, acts = 0, b""
        for t, p, _o, _l in _Attrs(a, 0, "sample"):
            if t == SampleAttr.PROBABILITY:
                prob = _U32.unpack(p)[0]
            else:
                acts = bytes(p)
        if prob != 0xFFFFFFFF:
            if prob == 0:
                return
            self.rng, draw = _rng_next(self.rng)
            if draw > prob:
                return
        self._nested(st, acts, last, not (last or not _may_change_flow(acts)))

    def _check_pkt_len(self, st: _State, a: bytes, last: bool) -> None:
        parts = {t: bytes(p) for t, p, _o, _l in _Attrs(a, 0, "check_pkt_len")}
        limit = _U16.unpack(parts[CheckPktLenAttr.PKT_LEN])[0]
        klen = len(st.pkt) - (4 if _tagged(st.pkt) else 0)
        branch = (CheckPktLenAttr.ACTIONS_IF_LESS_EQUAL if klen <= limit
                  else CheckPktLenAttr.ACTIONS_IF_GREATER)
        acts = parts[branch]
        self._nested(st, acts, last, not (last or not _may_change_flow(acts)))

    # -- VLAN and MPLS -------------------------------------------------------

    def _push_vlan(self, st: _State, a: bytes) -> None:
        p = st.pkt
        if len(p) < 14:
            return
        was_tagged = _tagged(p)
        tci = _BE16.unpack_from(a, 2)[0]
        p[12:12] = a[0:2] + _BE16.pack(tci & ~_VLAN_CFI)
        if was_tagged:
            st.key.valid = False
        else:
            st.key.raw[48:52] = a[0:4]

    def _pop_vlan(self, st: _State) -> None:
        p = st.pkt
        if _tagged(p):
            del p[12:16]
        if _tagged(p):
            st.key.valid = False
        else:
            st.key.raw[48:52] = bytes(4)

    def _push_mpls(self, st: _State, a: bytes) -> None:
        p = st.pkt
        _, l3 = _l3(p)
        if l3 < 0:
            return
        p[l3:l3] = a[0:4]
        p[l3 - 2:l3] = a[4:6]
        st.key.valid = False

    def _pop_mpls(self, st: _State, a: bytes) -> None:
        p = st.pkt
        eth_type, l3 = _l3(p)
        if eth_type not in _ETH_MPLS or len(p) < l3 + 4:
            return
        del p[l3:l3 + 4]
        p[l3 - 2:l3] = a[0:2]
        st.key.valid = False

    # -- set / set_masked ----------------------------------------------------

    def _set(self, st: _State, a: bytes, masked: bool) -> None:
        t = _U16.unpack_from(a, 2)[0]
        body = bytes(a[NLA_HDRLEN:_U16.unpack_from(a, 0)[0]])
        if t == KeyAttr.TUNNEL:
            st.tunnel = _tunnel_key(body)
            return
        if masked:
            half = len(body) // 2
            value, mask = body[:half], body[half:]
        else:
            value = body
            mask = b"\xff" * len(body)
            if t == KeyAttr.IPV6:
                mask = mask[:32] + _BE32.pack(0xFFFFF) + mask[36:]
        k = st.key.raw
        if t == KeyAttr.PRIORITY or t == KeyAttr.SKB_MARK:
            o = 16 if t == KeyAttr.PRIORITY else 12
            old = int.from_bytes(k[o:o + 4], _HOST)
            v, m = _U32.unpack_from(value)[0], _U32.unpack_from(mask)[0]
            k[o:o + 4] = ((v & m) | (old & ~m & 0xFFFFFFFF)).to_bytes(4, _HOST)
        elif t == KeyAttr.ETHERNET:
            p = st.pkt
            if len(p) < 14:
                return
            # struct ovs_key_ethernet is {src, dst}; the frame is {dst, src}
            for pkt_o, key_o in ((6, 0), (0, 6)):
                for i in range(6):
                    m = mask[key_o + i]
                    p[pkt_o + i] = (value[key_o + i] & m) | (p[pkt_o + i] & ~m & 0xFF)
            k[32:44] = p[0:12]
        elif t == KeyAttr.IPV4:
            self._set_ipv4(st, value, mask)
        elif t == KeyAttr.IPV6:
            self._set_ipv6(st, value, mask)
        elif t in (KeyAttr.TCP, KeyAttr.UDP, KeyAttr.SCTP):
            self._set_l4(st, t, value, mask)
        elif t == KeyAttr.MPLS:
            p = st.pkt
            eth_type, l3 = _l3(p)
            if eth_type not in _ETH_MPLS or len(p) < l3 + 4:
                return
            for i in range(4):
                p[l3 + i] = (value[i] & mask[i]) | (p[l3 + i] & ~mask[i] & 0xFF)
            k[56:60] = p[l3:l3 + 4]

    def _set_ipv4(self, st: _State, value: bytes, mask: bytes) -> None:
        p = st.pkt
        eth_type, l3 = _l3(p)
        if eth_type != _ETH_IP or len(p) < l3 + 20:
            return
        k = st.key.raw
        for i, ko in ((0, 72), (4, 76)):
            m = mask[i:i + 4]
            if m == bytes(4):
                continue
            old = bytes(p[l3 + 12 + i:l3 + 16 + i])
            new = _masked_bytes(value[i:i + 4], m, old)
            if new != old:
                self._set_ip_addr(p, l3, old, new, l3 + 12 + i)
                k[ko:ko + 4] = new
        if mask[9]:
            check = _BE16.unpack_from(p, l3 + 10)[0]
            check, tos = _ipv4_change_dsfield(check, p[l3 + 1], ~mask[9] & 0xFF, value[9])
            p[l3 + 10:l3 + 12] = _BE16.pack(check)
            p[l3 + 1] = tos
            k[81] = tos
        if mask[10]:
            old_ttl = p[l3 + 8]
            ttl = (value[10] & mask[10]) | (old_ttl & ~mask[10] & 0xFF)
            check = _csum_replace2(_BE16.unpack_from(p, l3 + 10)[0], old_ttl << 8, ttl << 8)
            p[l3 + 10:l3 + 12] = _BE16.pack(check)
            p[l3 + 8] = ttl
            k[82] = ttl

    def _set_ip_addr(self, p: bytearray, l3: int, old: bytes, new: bytes, at: int) -> None:
        """``set_ip_addr`` with ``update_ip_l4_checksum``."""
        l4 = _ipv4_l4(p, l3)
        if l4 >= 0:
            proto, tlen = p[l3 + 9], len(p) - l4
            if proto == _PROTO_TCP and tlen >= 20:
                c = _csum_replace_words(_BE16.unpack_from(p, l4 + 16)[0], old, new)
                p[l4 + 16:l4 + 18] = _BE16.pack(c)
            elif proto == _PROTO_UDP and tlen >= 8:
                c = _BE16.unpack_from(p, l4 + 6)[0]
                if c:
                    c = _csum_replace_words(c, old, new) or 0xFFFF
                    p[l4 + 6:l4 + 8] = _BE16.pack(c)
        c = _csum_replace_words(_BE16.unpack_from(p, l3 + 10)[0], old, new)
        p[l3 + 10:l3 + 12] = _BE16.pack(c)
        p[at:at + 4] = new

    def _set_ipv6(self, st: _State, value: bytes, mask: bytes) -> None:
        p = st.pkt
        eth_type, l3 = _l3(p)
        if eth_type != _ETH_IPV6 or len(p) < l3 + 40:
            return
        k = st.key.raw
        for i, ko in ((0, 104), (16, 120)):
            m = mask[i:i + 16]
            if m == bytes(16):
                continue
            old = bytes(p[l3 + 8 + i:l3 + 24 + i])
            new = _masked_bytes(value[i:i + 16], m, old)
            if new == old:
                continue
            recalc = True
            if i == 16 and p[l3 + 6] in _IPV6_EXT + (59,):
                recalc = not _ipv6_has_routing(p, l3)
            if recalc:
                proto, l4 = _ipv6_l4(p, l3)
                tlen = len(p) - l4
                if proto == _PROTO_TCP and tlen >= 20:
                    c = _csum_replace_words(_BE16.unpack_from(p, l4 + 16)[0], old, new)
                    p[l4 + 16:l4 + 18] = _BE16.pack(c)
                elif proto == _PROTO_UDP and tlen >= 8:
                    c = _BE16.unpack_from(p, l4 + 6)[0]
                    if c:
                        c = _csum_replace_words(c, old, new) or 0xFFFF
                        p[l4 + 6:l4 + 8] = _BE16.pack(c)
                elif proto == _PROTO_ICMPV6 and tlen >= 8:
                    c = _csum_replace_words(_BE16.unpack_from(p, l4 + 2)[0], old, new)
                    p[l4 + 2:l4 + 4] = _BE16.pack(c)
            p[l3 + 8 + i:l3 + 24 + i] = new
            k[ko:ko + 16] = new
        if mask[37]:
            m, v = mask[37], value[37]
            word = _BE16.unpack_from(p, l3)[0]
            tclass = (word >> 4) & 0xFF
            tclass = (tclass & ~m & 0xFF) | v
            p[l3:l3 + 2] = _BE16.pack((word & 0xF00F) | (tclass << 4))
            k[81] = tclass
        label_mask = _BE32.unpack_from(mask, 32)[0]
        if label_mask:
            label = _BE32.unpack_from(value, 32)[0]
            for j, sh in ((1, 16), (2, 8), (3, 0)):
                mm = (label_mask >> sh) & 0xFF
                p[l3 + j] = ((label >> sh) & 0xFF & mm) | (p[l3 + j] & ~mm & 0xFF)
            k[84:88] = _BE32.pack(_BE32.unpack_from(p, l3)[0] & 0xFFFFF)
        if mask[38]:
            hl = (value[38] & mask[38]) | (p[l3 + 7] & ~mask[38] & 0xFF)
            p[l3 + 7] = hl
            k[82] = hl

    def _set_l4(self, st: _State, t: int, value: bytes, mask: bytes) -> None:
        p = st.pkt
        eth_type, l3 = _l3(p)
        if eth_type == _ETH_IP and len(p) >= l3 + 20:
            proto, l4 = p[l3 + 9], _ipv4_l4(p, l3)
        elif eth_type == _ETH_IPV6 and len(p) >= l3 + 40:
            proto, l4 = _ipv6_l4(p, l3)
        else:
            return
        want = {KeyAttr.TCP: _PROTO_TCP, KeyAttr.UDP: _PROTO_UDP, KeyAttr.SCTP: _PROTO_SCTP}[t]
        hlen = {KeyAttr.TCP: 20, KeyAttr.UDP: 8, KeyAttr.SCTP: 12}[t]
        if proto != want or l4 < 0 or len(p) < l4 + hlen:
            return
        k = st.key.raw
        ports = []
        for i in (0, 2):
            v, m = _BE16.unpack_from(value, i)[0], _BE16.unpack_from(mask, i)[0]
            ports.append((v & m) | (_BE16.unpack_from(p, l4 + i)[0] & ~m & 0xFFFF))
        if t == KeyAttr.SCTP:
            old_csum = bytes(p[l4 + 8:l4 + 12])
            old_correct = _sctp_csum(p, l4)
            p[l4:l4 + 4] = _BE16.pack(ports[0]) + _BE16.pack(ports[1])
            new_correct = _sctp_csum(p, l4)
            p[l4 + 8:l4 + 12] = bytes(a ^ b ^ c for a, b, c in zip(old_csum, old_correct, new_correct, strict=True))
            k[88:92] = p[l4:l4 + 4]
            return
        csum_at = l4 + (16 if t == KeyAttr.TCP else 6)
        check = _BE16.unpack_from(p, csum_at)[0]
        if t == KeyAttr.UDP and not check:
            p[l4:l4 + 4] = _BE16.pack(ports[0]) + _BE16.pack(ports[1])
            k[88:92] = p[l4:l4 + 4]
            return
        for i, new in zip((0, 2), ports, strict=True):
            old = _BE16.unpack_from(p, l4 + i)[0]
            if new != old:
                check = _csum_replace_words(check, _BE16.pack(old), _BE16.pack(new))
                p[l4 + i:l4 + i + 2] = _BE16.pack(new)
                k[88 + i:90 + i] = _BE16.pack(new)
        if t == KeyAttr.UDP and not check:
            check = 0xFFFF
        p[csum_at:csum_at + 2] = _BE16.pack(check)

    # -- entry ---------------------------------------------------------------

    def execute(self, packet: bytes, key: bytes, actions: bytes, level: int) -> ExecResult:
        if level > RECURSION_LIMIT:
            self.res.dropped_recursion += 1
            return self.res
        self._run(_State(bytearray(packet), _Key(bytearray(key), True), None, 0, level), actions)
        # process_deferred_actions: in FIFO order, at level 1
        i = 0
        while i < len(self.fifo):
            st, acts = self.fifo[i]
            self._run(st, acts)
            i += 1
        return self.res


def _ref_execute(packet: bytes, key: bytes, actions: bytes, seed: int, level: int,
                 deferred: int) -> ExecResult:
    return _Exec(seed, deferred).execute(packet, key, actions, level)


# ---------------------------------------------------------------------------
# Public API over either implementation
# ---------------------------------------------------------------------------


def _key_bytes(key: Any) -> bytes:
    if isinstance(key, FlowKey):
        return key.raw
    raw = bytes(key)
    if len(raw) != KEY_SIZE:
        raise DatapathError(f"key is {len(raw)} bytes: a flow key is {KEY_SIZE} bytes")
    return raw


def _make_execute(impl: Any) -> Any:
    def execute(packet: Any, key: Any, actions: Any, *, seed: int = 0, level: int = 1,
                deferred: int = 0) -> ExecResult:
        """Execute ``actions`` on a copy of ``packet`` whose extracted key is ``key``.

        ``key`` is a :class:`FlowKey` or its bytes; ``seed`` seeds the RNG of
        ``sample``; ``level`` and ``deferred`` are the execution level and
        deferred-FIFO use to start from (a :class:`Recirc`'s ``level`` and
        ``deferred`` for a recirculated packet; 1 and 0 for a packet from a
        port). Raises :class:`DatapathError` for malformed actions.
        """
        data = _fk._packet_bytes(packet)
        raw = _key_bytes(key)
        acts = bytes(actions)
        validate_actions(acts)
        if not 1 <= level <= 0xFFFF or not 0 <= deferred <= FIFO_CAPACITY:
            raise DatapathError(f"level={level} deferred={deferred}: level must be >= 1, "
                                f"deferred in 0..{FIFO_CAPACITY}")
        return impl(data, raw, acts, seed & 0xFFFFFFFFFFFFFFFF, level, deferred)

    return execute


#: the pure-Python reference implementation
reference = SimpleNamespace(execute=_make_execute(_ref_execute))

_native_module: ModuleType | None
try:
    import ovsnet._actions as _native_module
except ModuleNotFoundError as error:
    if error.name != "ovsnet._actions":
        raise
    _native_module = None


def _native_execute(packet: bytes, key: bytes, actions: bytes, seed: int, level: int,
                    deferred: int) -> ExecResult:
    assert _native_module is not None
    outs, ups, recs, counters = _native_module.execute_raw(packet, key, actions, seed, level, deferred)
    res = ExecResult()
    res.outputs = [Output(*o) for o in outs]
    res.upcalls = [Upcall(*u) for u in ups]
    res.recircs = [Recirc(*r) for r in recs]
    (res.dropped_recursion, res.dropped_deferred, res.dropped_deferred_recirc,
     res.dropped_explicit) = counters
    return res


#: the compiled implementation (``None`` when ``ovsnet._actions`` is not built)
native: SimpleNamespace | None = None
#: ``"cython"`` when :func:`execute` is the compiled one, else ``"python"``
IMPLEMENTATION = "python"
if _native_module is not None:
    native = SimpleNamespace(execute=_make_execute(_native_execute))
    IMPLEMENTATION = "cython"

execute = (native or reference).execute
