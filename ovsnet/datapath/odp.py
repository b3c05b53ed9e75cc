"""ODP syntax: datapath flows and actions as ``ovs-appctl dpctl/dump-flows`` prints them.

A megaflow is a (key, mask) pair of flat 528-byte keys
(:mod:`ovsnet.datapath.flow_key`); its actions are netlink attributes
(:mod:`ovsnet.datapath.odp_attrs`). This module turns both into the text
Open vSwitch prints and back, following ``lib/odp-util.c``:

* :func:`format_flow` converts the flat key and mask into netlink key and
  mask attributes the way the datapath reports them in a flow dump, then
  prints them with ``odp_flow_format`` (:mod:`ovsnet.datapath.odp_format`):
  attributes whose mask is all zero are left out unless ``verbose``,
  partially masked fields get a ``/mask``.
* :func:`parse_flow` is ``odp_flow_from_string`` followed by
  ``odp_flow_key_to_flow``/``odp_flow_key_to_mask``
  (:mod:`ovsnet.datapath.odp_parse`): a field given without a mask is exact,
  a field not given is wildcarded.
* :func:`format_actions` / :func:`parse_actions` are ``format_odp_actions`` /
  ``odp_actions_from_string``.
* :func:`format_dump_line` is one line of ``dpctl/dump-flows``
  (``format_dpif_flow`` in ``lib/dpctl.c``, ``dpif_flow_stats_format`` in
  ``lib/dpif.c``).

Two datapaths, two attribute layouts. The kernel module reports a flow with
``__ovs_nla_put_key`` (``net/openvswitch/flow_netlink.c``):
``recirc_id, dp_hash, skb_priority, tunnel, in_port, skb_mark, ct_*, eth,
vlan, eth_type, l3, l4`` with ``tcp_flags`` always beside ``tcp``. The
userspace datapath (``dpif-netdev``, also behind ``--enable-dummy``) uses
``odp_flow_key_from_flow``: ``skb_priority, tunnel, skb_mark, ct_*,
recirc_id, dp_hash, in_port, packet_type, eth...``, with ``tcp_flags`` only
when matched and ``nd`` only for an exactly matched ICMPv6 type and code.
``datapath="kernel"`` (the default, what ``ovs-dpctl dump-flows`` shows on a
Linux host) and ``datapath="netdev"`` select between them; the printed
attributes are the same, only their order and a few of them differ.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Literal

from ovsnet.datapath import odp_format, odp_parse
from ovsnet.datapath.flow_key import FIELD_BY_NAME, KEY_SIZE
from ovsnet.datapath.odp_attrs import KeyAttr, TunnelAttr, iter_nla, nla
from ovsnet.errors import DatapathError

__all__ = [
    "Datapath",
    "flow_to_attrs",
    "attrs_to_flow",
    "format_actions",
    "format_dump_line",
    "format_flow",
    "parse_actions",
    "parse_flow",
]

Datapath = Literal["kernel", "netdev"]
PortNames = Mapping[int, str] | None

_ETH_TYPE_MIN = 0x600
_VLAN_TPIDS = (0x8100, 0x88A8)
_MPLS_TYPES = (0x8847, 0x8848)
_FRAG_ANY, _FRAG_LATER = 1, 2
_TNL_F_OAM, _TNL_F_DF, _TNL_F_CSUM, _TNL_F_KEY = 1, 2, 4, 8


class _Flat:
    """Field access to one flat key (or mask) by name."""

    __slots__ = ("b",)

    def __init__(self, raw: bytes | bytearray):
        self.b = raw

    def raw(self, name: str) -> bytes:
        f = FIELD_BY_NAME[name]
        return bytes(self.b[f.offset:f.offset + f.size])

    def __getattr__(self, name: str) -> int:
        f = FIELD_BY_NAME[name]
        data = self.b[f.offset:f.offset + f.size]
        if f.kind.startswith("u"):
            return int.from_bytes(data, "little")
        return int.from_bytes(data, "big")


def _set(buf: bytearray, name: str, value: int | bytes) -> None:
    f = FIELD_BY_NAME[name]
    if isinstance(value, int):
        value = value.to_bytes(f.size, "little" if f.kind.startswith("u") else "big")
    buf[f.offset:f.offset + f.size] = value


def _or(buf: bytearray, name: str, value: int) -> None:
    f = FIELD_BY_NAME[name]
    order = "little" if f.kind.startswith("u") else "big"
    old = int.from_bytes(buf[f.offset:f.offset + f.size], order)
    buf[f.offset:f.offset + f.size] = (old | value).to_bytes(f.size, order)


# ---------------------------------------------------------------------------
# Flat key -> netlink attributes
# ---------------------------------------------------------------------------


def _odp_frag(nw_frag: int, is_mask: bool) -> int:
    """``ovs_to_odp_frag``."""
    if is_mask:
        return 0xFF if nw_frag & _FRAG_ANY else 0
    if not nw_frag & _FRAG_ANY:
        return 0
    return 2 if nw_frag & _FRAG_LATER else 1


def _tunnel_attr(data: _Flat, flow: _Flat) -> bytes:
    """``tun_key_to_attr`` (the kernel's ``ip_tun_to_nlattr`` emits the same set)."""
    out = []
    flags = data.tun_flags
    if data.tun_id or flags & _TNL_F_KEY:
        out.append(nla(TunnelAttr.ID, data.raw("tun_id")))
    for name, attr in (("tun_ipv4_src", TunnelAttr.IPV4_SRC), ("tun_ipv4_dst", TunnelAttr.IPV4_DST),
                       ("tun_ipv6_src", TunnelAttr.IPV6_SRC), ("tun_ipv6_dst", TunnelAttr.IPV6_DST)):
        if any(data.raw(name)):
            out.append(nla(attr, data.raw(name)))
    if data.tun_tos:
        out.append(nla(TunnelAttr.TOS, bytes([data.tun_tos])))
    out.append(nla(TunnelAttr.TTL, bytes([data.tun_ttl])))
    if flags & _TNL_F_DF:
        out.append(nla(TunnelAttr.DONT_FRAGMENT))
    if flags & _TNL_F_CSUM:
        out.append(nla(TunnelAttr.CSUM))
    if data.tun_tp_src:
        out.append(nla(TunnelAttr.TP_SRC, data.raw("tun_tp_src")))
    if data.tun_tp_dst:
        out.append(nla(TunnelAttr.TP_DST, data.raw("tun_tp_dst")))
    if flags & _TNL_F_OAM:
        out.append(nla(TunnelAttr.OAM))
    n = flow.tun_opts_len
    if n:
        out.append(nla(TunnelAttr.GENEVE_OPTS, data.raw("tun_opts")[:n]))
    return nla(KeyAttr.TUNNEL, b"".join(out))


def _count_mpls(flow: _Flat) -> int:
    """``flow_count_mpls_labels``."""
    count = 0
    for i in range(3):
        lse = getattr(flow, f"mpls_lse{i}")
        if lse & 0x100:
            return i + 1
        if lse:
            count += 1
    return count


def _l2_l4(flow: _Flat, data: _Flat, is_mask: bool, datapath: Datapath) -> bytes:
    """Ethernet and everything after it, with VLAN encapsulation."""
    out: list[bytes] = [nla(KeyAttr.ETHERNET, data.raw("dl_src") + data.raw("dl_dst"))]
    dl_type = flow.dl_type
    vlans = ((flow.vlan_tpid, flow.vlan_tci, data.vlan_tci),
             (flow.vlan1_tpid, flow.vlan1_tci, data.vlan1_tci))
    # Build from the innermost level outwards: levels[i] is the attribute list
    # inside the i-th encap.
    levels: list[list[bytes]] = [out]
    done = False
    for tpid, tci, dtci in vlans:
        if tci == 0:
            if dl_type in _VLAN_TPIDS:
                tpid = dl_type
            else:
                break
        levels[-1].append(nla(KeyAttr.ETHERTYPE, struct.pack("!H", 0xFFFF if is_mask else tpid)))
        levels[-1].append(nla(KeyAttr.VLAN, struct.pack("!H", dtci)))
        inner: list[bytes] = []
        levels.append(inner)
        if tci == 0:
            done = True
            break
    cur = levels[-1]
    if not done:
        cur.extend(_l3_l4(flow, data, is_mask, datapath))
    # close the encaps
    for i in range(len(levels) - 1, 0, -1):
        levels[i - 1].append(nla(KeyAttr.ENCAP, b"".join(levels[i])))
    return b"".join(out)


def _l3_l4(flow: _Flat, data: _Flat, is_mask: bool, datapath: Datapath) -> list[bytes]:
    out: list[bytes] = []
    dl_type = flow.dl_type
    if dl_type < _ETH_TYPE_MIN:
        # 802.3 frames: no ethertype in the key, an exact one in the mask.
        if is_mask:
            if datapath == "netdev":
                out.append(nla(KeyAttr.ETHERTYPE, b"\xff\xff"))
            elif data.dl_type:
                out.append(nla(KeyAttr.ETHERTYPE, data.raw("dl_type")))
        return out
    out.append(nla(KeyAttr.ETHERTYPE, data.raw("dl_type")))
    if dl_type in _VLAN_TPIDS:
        return out
    if dl_type == 0x0800:
        out.append(nla(KeyAttr.IPV4, data.raw("nw_src") + data.raw("nw_dst") + bytes(
            [data.nw_proto, data.nw_tos, data.nw_ttl, _odp_frag(data.nw_frag, is_mask)])))
    elif dl_type == 0x86DD:
        out.append(nla(KeyAttr.IPV6, data.raw("ipv6_src") + data.raw("ipv6_dst")
                       + data.raw("ipv6_label") + bytes(
                           [data.nw_proto, data.nw_tos, data.nw_ttl,
                            _odp_frag(data.nw_frag, is_mask)])))
    elif dl_type in (0x0806, 0x8035):
        op = 0xFFFF if data.nw_proto == 0xFF and datapath == "netdev" else data.nw_proto
        out.append(nla(KeyAttr.ARP, data.raw("nw_src") + data.raw("nw_dst") + struct.pack("!H", op)
                       + data.raw("arp_sha") + data.raw("arp_tha") + b"\0\0"))
    elif dl_type in _MPLS_TYPES:
        n = _count_mpls(flow)
        out.append(nla(KeyAttr.MPLS, b"".join(data.raw(f"mpls_lse{i}") for i in range(n))))
    if dl_type in (0x0800, 0x86DD) and not flow.nw_frag & _FRAG_LATER:
        proto = flow.nw_proto
        if proto == 6:
            out.append(nla(KeyAttr.TCP, data.raw("tp_src") + data.raw("tp_dst")))
            if datapath == "kernel" or data.tcp_flags or (is_mask and data.tcp_flags):
                out.append(nla(KeyAttr.TCP_FLAGS, data.raw("tcp_flags")))
        elif proto == 17:
            out.append(nla(KeyAttr.UDP, data.raw("tp_src") + data.raw("tp_dst")))
        elif proto == 132:
            out.append(nla(KeyAttr.SCTP, data.raw("tp_src") + data.raw("tp_dst")))
        elif dl_type == 0x0800 and proto == 1:
            out.append(nla(KeyAttr.ICMP, bytes([data.tp_src & 0xFF, data.tp_dst & 0xFF])))
        elif dl_type == 0x86DD and proto == 58:
            out.append(nla(KeyAttr.ICMPV6, bytes([data.tp_src & 0xFF, data.tp_dst & 0xFF])))
            if datapath == "kernel":
                is_nd = flow.tp_src in (135, 136)
            else:
                is_nd = (flow.tp_dst == 0 and flow.tp_src in (135, 136)
                         and (not is_mask or (data.tp_src == 0xFF and data.tp_dst == 0xFF)))
            if is_nd:
                out.append(nla(KeyAttr.ND, data.raw("nd_target") + data.raw("arp_sha")
                               + data.raw("arp_tha")))
                if datapath == "netdev" and (data.igmp_group_ip4 or data.tcp_flags):
                    out.append(nla(KeyAttr.ND_EXTENSIONS, data.raw("igmp_group_ip4")
                                   + bytes([data.tcp_flags & 0xFF]) + b"\0\0\0"))
    return out


def _ct_label(data: _Flat) -> bytes:
    # ovs_u128 in host order, as ovs-vswitchd sends and the kernel echoes it
    return data.raw("ct_label")[::-1]


def flow_to_attrs(key: bytes, mask: bytes, export_mask: bool,
                  datapath: Datapath = "kernel") -> bytes:
    """Netlink key (``export_mask`` False) or mask attributes of a megaflow.

    ``datapath="netdev"`` is ``odp_flow_key_from_flow``/``odp_flow_key_from_mask``
    (``lib/odp-util.c``); ``"kernel"`` is ``__ovs_nla_put_key``
    (``net/openvswitch/flow_netlink.c``).
    """
    flow = _Flat(key)
    data = _Flat(mask if export_mask else key)
    tun_present = any(any(flow.raw(n)) for n in ("tun_ipv4_src", "tun_ipv4_dst",
                                                  "tun_ipv6_src", "tun_ipv6_dst"))
    u32 = lambda attr, v: nla(attr, struct.pack("=I", v))  # noqa: E731
    out: list[bytes] = []
    ct = [u32(KeyAttr.CT_STATE, data.ct_state),
          nla(KeyAttr.CT_ZONE, struct.pack("=H", data.ct_zone)),
          u32(KeyAttr.CT_MARK, data.ct_mark),
          nla(KeyAttr.CT_LABELS, _ct_label(data))]
    if datapath == "kernel":
        out.append(u32(KeyAttr.RECIRC_ID, data.recirc_id))
        out.append(u32(KeyAttr.DP_HASH, data.dp_hash))
        out.append(u32(KeyAttr.PRIORITY, data.priority))
        if tun_present or export_mask:
            out.append(_tunnel_attr(data, flow))
        # 16-bit port numbers; a mask's upper half is all ones
        port = (0xFFFF0000 if export_mask else 0) | (data.in_port & 0xFFFF)
        out.append(u32(KeyAttr.IN_PORT, port))
        out.append(u32(KeyAttr.SKB_MARK, data.skb_mark))
        out.extend(ct)
    else:
        out.append(u32(KeyAttr.PRIORITY, data.priority))
        if tun_present or export_mask:
            out.append(_tunnel_attr(data, flow))
        out.append(u32(KeyAttr.SKB_MARK, data.skb_mark))
        out.extend(ct)
        out.append(u32(KeyAttr.RECIRC_ID, data.recirc_id))
        out.append(u32(KeyAttr.DP_HASH, data.dp_hash))
        out.append(u32(KeyAttr.IN_PORT, data.in_port))
        # ovsnet keys are always Ethernet: packet_type (ns=0,id=0), wildcarded
        out.append(nla(KeyAttr.PACKET_TYPE, bytes(4)))
    out.append(_l2_l4(flow, data, export_mask, datapath))
    return b"".join(out)


# ---------------------------------------------------------------------------
# Netlink attributes -> flat key and mask (odp_flow_key_to_flow / _to_mask)
# ---------------------------------------------------------------------------


def _attrs(buf: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for t, p in iter_nla(buf, "flow key"):
        if t in out:
            raise DatapathError(f"flow key: attribute {odp_format.KEY_ATTR_NAMES.get(t, t)} "
                                "given twice")
        out[t] = bytes(p)
    return out


def _put_tunnel(buf: bytearray, p: bytes) -> None:
    flags = 0
    for t, q in iter_nla(p, "tunnel"):
        q = bytes(q)
        if t == TunnelAttr.ID:
            _set(buf, "tun_id", q)
            flags |= _TNL_F_KEY
        elif t == TunnelAttr.IPV4_SRC:
            _set(buf, "tun_ipv4_src", q)
        elif t == TunnelAttr.IPV4_DST:
            _set(buf, "tun_ipv4_dst", q)
        elif t == TunnelAttr.IPV6_SRC:
            _set(buf, "tun_ipv6_src", q)
        elif t == TunnelAttr.IPV6_DST:
            _set(buf, "tun_ipv6_dst", q)
        elif t == TunnelAttr.TOS:
            _set(buf, "tun_tos", q[0])
        elif t == TunnelAttr.TTL:
            _set(buf, "tun_ttl", q[0])
        elif t == TunnelAttr.TP_SRC:
            _set(buf, "tun_tp_src", q)
        elif t == TunnelAttr.TP_DST:
            _set(buf, "tun_tp_dst", q)
        elif t == TunnelAttr.DONT_FRAGMENT:
            flags |= _TNL_F_DF
        elif t == TunnelAttr.CSUM:
            flags |= _TNL_F_CSUM
        elif t == TunnelAttr.OAM:
            flags |= _TNL_F_OAM
        elif t == TunnelAttr.GENEVE_OPTS:
            f = FIELD_BY_NAME["tun_opts"]
            if len(q) > f.size:
                raise DatapathError(f"Geneve options of {len(q)} bytes, at most {f.size} fit")
            buf[f.offset:f.offset + len(q)] = q
            _set(buf, "tun_opts_len", len(q))
        else:
            raise DatapathError(f"tunnel attribute {t} is not supported by ovsnet's flow key")
    _set(buf, "tun_flags", flags)


def _put_level(key: bytearray, mask: bytearray, ka: dict[int, bytes], ma: dict[int, bytes],
               vlan_level: int) -> None:
    """Ethertype, VLAN/encap, L3 and L4 attributes of one encapsulation level."""
    def m_of(t: int) -> bytes:
        return ma.get(t, bytes(len(ka[t])))

    if KeyAttr.ETHERTYPE in ka:
        dl_type = int.from_bytes(ka[KeyAttr.ETHERTYPE], "big")
        if dl_type < _ETH_TYPE_MIN:
            raise DatapathError(f"flow key: invalid Ethertype {dl_type}")
        dl_mask = int.from_bytes(m_of(KeyAttr.ETHERTYPE), "big")
    else:
        dl_type = (0x0800 if KeyAttr.IPV4 in ka else 0x86DD if KeyAttr.IPV6 in ka
                   else 0x8847 if KeyAttr.MPLS in ka else 0x05FF)
        if KeyAttr.ETHERTYPE in ma:
            dl_mask = int.from_bytes(ma[KeyAttr.ETHERTYPE], "big")
        else:
            dl_mask = 0xFFFF if dl_type != 0x05FF or vlan_level else 0
    if KeyAttr.VLAN in ka and dl_type in _VLAN_TPIDS:
        if vlan_level >= 2:
            raise DatapathError("flow key: more than two VLAN headers")
        tpid_f, tci_f = ("vlan_tpid", "vlan_tci") if vlan_level == 0 else ("vlan1_tpid", "vlan1_tci")
        _set(key, tpid_f, dl_type)
        _set(mask, tpid_f, dl_mask)
        _set(key, tci_f, ka[KeyAttr.VLAN])
        _set(mask, tci_f, m_of(KeyAttr.VLAN))
        if KeyAttr.ENCAP not in ka:
            raise DatapathError("flow key: vlan(...) without encap(...)")
        inner_k = _attrs(ka[KeyAttr.ENCAP])
        inner_m = _attrs(ma[KeyAttr.ENCAP]) if KeyAttr.ENCAP in ma else {}
        _put_level(key, mask, inner_k, inner_m, vlan_level + 1)
        return
    _set(key, "dl_type", dl_type)
    _set(mask, "dl_type", dl_mask)
    if KeyAttr.IPV4 in ka or KeyAttr.IPV6 in ka:
        ip6 = KeyAttr.IPV6 in ka
        t = KeyAttr.IPV6 if ip6 else KeyAttr.IPV4
        for buf, p, is_mask in ((key, ka[t], False), (mask, m_of(t), True)):
            if ip6:
                _set(buf, "ipv6_src", p[0:16])
                _set(buf, "ipv6_dst", p[16:32])
                _set(buf, "ipv6_label", p[32:36])
                proto, tos, ttl, frag = p[36:40]
            else:
                _set(buf, "nw_src", p[0:4])
                _set(buf, "nw_dst", p[4:8])
                proto, tos, ttl, frag = p[8:12]
            _set(buf, "nw_proto", proto)
            _set(buf, "nw_tos", tos)
            _set(buf, "nw_ttl", ttl)
            if is_mask:
                _set(buf, "nw_frag", 3 if frag == 0xFF else 0)
            else:
                if frag > 2:
                    raise DatapathError(f"flow key: invalid frag type {frag}")
                _set(buf, "nw_frag", (0, _FRAG_ANY, _FRAG_ANY | _FRAG_LATER)[frag])
    if KeyAttr.ARP in ka:
        for buf, p in ((key, ka[KeyAttr.ARP]), (mask, m_of(KeyAttr.ARP))):
            _set(buf, "nw_src", p[0:4])
            _set(buf, "nw_dst", p[4:8])
            _set(buf, "nw_proto", int.from_bytes(p[8:10], "big") & 0xFF)
            _set(buf, "arp_sha", p[10:16])
            _set(buf, "arp_tha", p[16:22])
    if KeyAttr.MPLS in ka:
        for buf, p in ((key, ka[KeyAttr.MPLS]), (mask, m_of(KeyAttr.MPLS))):
            if len(p) > 12 or len(p) % 4:
                raise DatapathError(f"flow key: MPLS attribute of {len(p)} bytes")
            for i in range(len(p) // 4):
                _set(buf, f"mpls_lse{i}", p[4 * i:4 * i + 4])
    for t in (KeyAttr.TCP, KeyAttr.UDP, KeyAttr.SCTP):
        if t in ka:
            for buf, p in ((key, ka[t]), (mask, m_of(t))):
                _set(buf, "tp_src", p[0:2])
                _set(buf, "tp_dst", p[2:4])
    if KeyAttr.TCP_FLAGS in ka:
        _set(key, "tcp_flags", ka[KeyAttr.TCP_FLAGS])
        _set(mask, "tcp_flags", m_of(KeyAttr.TCP_FLAGS))
    for t in (KeyAttr.ICMP, KeyAttr.ICMPV6):
        if t in ka:
            for buf, p in ((key, ka[t]), (mask, m_of(t))):
                _set(buf, "tp_src", p[0])
                _set(buf, "tp_dst", p[1])
    if KeyAttr.ND in ka:
        for buf, p in ((key, ka[KeyAttr.ND]), (mask, m_of(KeyAttr.ND))):
            _set(buf, "nd_target", p[0:16])
            _set(buf, "arp_sha", p[16:22])
            _set(buf, "arp_tha", p[22:28])
    if KeyAttr.ND_EXTENSIONS in ka:
        for buf, p in ((key, ka[KeyAttr.ND_EXTENSIONS]), (mask, m_of(KeyAttr.ND_EXTENSIONS))):
            _set(buf, "igmp_group_ip4", p[0:4])
            _set(buf, "tcp_flags", p[4])


_SCALARS = {
    KeyAttr.PRIORITY: ("priority", "=I"), KeyAttr.SKB_MARK: ("skb_mark", "=I"),
    KeyAttr.RECIRC_ID: ("recirc_id", "=I"), KeyAttr.DP_HASH: ("dp_hash", "=I"),
    KeyAttr.IN_PORT: ("in_port", "=I"), KeyAttr.CT_STATE: ("ct_state", "=I"),
    KeyAttr.CT_ZONE: ("ct_zone", "=H"), KeyAttr.CT_MARK: ("ct_mark", "=I"),
}
_UNSUPPORTED = {KeyAttr.CT_ORIG_TUPLE_IPV4, KeyAttr.CT_ORIG_TUPLE_IPV6, KeyAttr.NSH,
                KeyAttr.TUNNEL_INFO, KeyAttr.UNSPEC}


def attrs_to_flow(key_attrs: bytes, mask_attrs: bytes) -> tuple[bytes, bytes]:
    """Flat (key, mask) of netlink key and mask attributes.

    Mirrors ``odp_flow_key_to_flow`` and ``odp_flow_key_to_mask``: an
    attribute missing from the mask is wildcarded, an ``ipv4``/``ipv6`` frag
    mask of 0xff becomes ``FRAG_ANY|FRAG_LATER``, ICMP type and code go to
    ``tp_src``/``tp_dst``, an ARP opcode to ``nw_proto``.
    """
    key = bytearray(KEY_SIZE)
    mask = bytearray(KEY_SIZE)
    ka = _attrs(key_attrs)
    ma = _attrs(mask_attrs)
    for t in ka:
        if t in _UNSUPPORTED:
            raise DatapathError(f"flow key: {odp_format.KEY_ATTR_NAMES.get(t, f'key{t}')}(...) is "
                                "not supported by ovsnet's flow key")
    for t, (name, fmt) in _SCALARS.items():
        if t in ka:
            v = struct.unpack(fmt, ka[t])[0]
            if t == KeyAttr.CT_STATE:
                v &= 0xFF
            _set(key, name, v)
            if t in ma:
                mv = struct.unpack(fmt, ma[t])[0]
                _set(mask, name, mv & 0xFF if t == KeyAttr.CT_STATE else mv)
    if KeyAttr.CT_LABELS in ka:
        _set(key, "ct_label", ka[KeyAttr.CT_LABELS][::-1])
        if KeyAttr.CT_LABELS in ma:
            _set(mask, "ct_label", ma[KeyAttr.CT_LABELS][::-1])
    if KeyAttr.TUNNEL in ka:
        _put_tunnel(key, ka[KeyAttr.TUNNEL])
        if KeyAttr.TUNNEL in ma:
            _put_tunnel(mask, ma[KeyAttr.TUNNEL])
        if not any(key[216:256]):
            raise DatapathError("flow key: tunnel(...) needs dst= or ipv6_dst=")
    if KeyAttr.ETHERNET in ka:
        p = ka[KeyAttr.ETHERNET]
        _set(key, "dl_src", p[0:6])
        _set(key, "dl_dst", p[6:12])
        if KeyAttr.ETHERNET in ma:
            _set(mask, "dl_src", ma[KeyAttr.ETHERNET][0:6])
            _set(mask, "dl_dst", ma[KeyAttr.ETHERNET][6:12])
    _put_level(key, mask, ka, ma, 0)
    if KeyAttr.IN_PORT not in ka:
        raise DatapathError("flow key: in_port(...) is required")
    return bytes(key), bytes(mask)


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def _check_key(buf: bytes, what: str) -> bytes:
    raw = bytes(buf)
    if len(raw) != KEY_SIZE:
        raise DatapathError(f"{what} must be {KEY_SIZE} bytes, got {len(raw)}")
    return raw


def format_flow(key: bytes, mask: bytes, *, ports: PortNames = None, verbose: bool = False,
                datapath: Datapath = "kernel") -> str:
    """The megaflow (``key``, ``mask``) as ``dpctl/dump-flows`` prints it.

    ``ports`` maps datapath port numbers to names (``dump-flows --names``);
    ``verbose`` is ``dump-flows -m`` (every attribute, wildcards as ``/0``).
    """
    key = _check_key(key, "flow key")
    mask = _check_key(mask, "flow mask")
    k = flow_to_attrs(key, mask, False, datapath)
    m = flow_to_attrs(key, mask, True, datapath)
    return odp_format.format_key(k, m, ports=ports, verbose=verbose)


def parse_flow(text: str, *, ports: PortNames = None) -> tuple[bytes, bytes]:
    """(key, mask) of a flow in ODP syntax, like ``odp_flow_from_string``.

    A field written without ``/mask`` is matched exactly; a field or
    attribute not written is wildcarded. ``ports`` maps port numbers to
    names, so ``in_port(p1)`` works. Raises :class:`DatapathError` with the
    column of the first error.
    """
    names = {v: k for k, v in ports.items()} if ports else None
    k, m = odp_parse.parse_key(text, names)
    return attrs_to_flow(k, m)


def format_actions(actions: bytes, ports: PortNames = None) -> str:
    """Datapath actions (netlink attributes) in ODP syntax; ``drop`` when empty."""
    return odp_format.format_actions(bytes(actions), ports)


def parse_actions(text: str, ports: PortNames = None) -> bytes:
    """The netlink encoding of datapath actions written in ODP syntax."""
    names = {v: k for k, v in ports.items()} if ports else None
    return odp_parse.parse_actions(text, names)


def format_dump_line(key: bytes, mask: bytes, actions: bytes, packets: int, bytes: int,
                     used_ms: int, now_ms: int, tcp_flags: int, ufid: str | None = None,
                     show_ufid: bool = False, ports: PortNames = None, *,
                     verbose: bool = False, datapath: Datapath = "kernel") -> str:
    """One line of ``ovs-appctl dpctl/dump-flows`` (``format_dpif_flow``).

    ``used_ms`` is the time of the last hit (0: never) on the same clock as
    ``now_ms``; ``tcp_flags`` is the OR of the flags seen. ``ufid`` (a UUID
    string) is printed first when ``show_ufid`` (OVS does so with ``-m``).
    """
    head = f"ufid:{ufid}, " if show_ufid and ufid else ""
    used = f"{(now_ms - used_ms) / 1000.0:.3f}s" if used_ms else "never"
    stats = f"packets:{packets}, bytes:{bytes}, used:{used}"
    if tcp_flags:
        stats += ", flags:" + odp_format.format_tcp_flags_stats(tcp_flags)
    flow = format_flow(key, mask, ports=ports, verbose=verbose, datapath=datapath)
    return f"{head}{flow}, {stats}, actions:{format_actions(actions, ports)}"
