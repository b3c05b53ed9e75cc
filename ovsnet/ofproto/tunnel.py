"""Tunnel ports of a bridge: configuration, receive-side mapping and send-side metadata.

Models Open vSwitch 3.1 for the kernel datapath, i.e. without native
tunnelling (``tnl_push``/``tnl_pop``):

* :func:`parse_tunnel_config` reads an Interface's ``type`` and ``options``
  column as ``set_tunnel_config`` in ``lib/netdev-vport.c`` does (remote_ip,
  local_ip, key/in_key/out_key, dst_port, tos, ttl, df_default, csum,
  egress_pkt_mark, GRE's seq) into a :class:`TunnelConfig` (``struct
  netdev_tunnel_config``). Unlike OVS, which only logs a warning for some bad
  values and unknown keys, every bad option raises :class:`OfprotoError`
  naming the option and what would be valid. :meth:`TunnelConfig.describe`
  and :func:`tnl_port_format` print a port as ``dpif/show``
  (``get_tunnel_config``) and ``ofproto/list-tunnels`` do.
* Every tunnel port of one kind and UDP port shares one datapath vport
  (``vxlan_sys_4789``, ``genev_sys_6081``, ``gre_sys``: the names
  :func:`vport_name` gives, as ``netdev_vport_get_dpif_port`` and
  :mod:`ovsnet.topology.dpports` do).
* :func:`tnl_port_receive` maps a packet that arrived on a tunnel vport to its
  OpenFlow tunnel port by the packet's tunnel metadata, trying the twelve
  match kinds of ``ofproto/tunnel.c`` (``tnl_find``) in OVS's order: a fixed
  key before ``key=flow``, a fixed remote before ``remote_ip=flow``, and a
  configured ``local_ip`` before any local address before ``local_ip=flow``.
  :func:`wc_init` and :func:`process_ecn` are ``tnl_wc_init`` and
  ``tnl_process_ecn``: the megaflow of a tunnelled packet matches its tunnel
  ID, addresses, TOS and DF/CSUM/KEY flags, and an outer ECN CE mark is copied
  into the inner packet (or the packet is dropped if it is not ECN-capable).
* :func:`tnl_port_send` sets a flow's tunnel metadata for output to a tunnel
  port (``tnl_port_send``), and :func:`commit_tunnel` emits the
  ``set(tunnel(...))`` datapath action when that metadata differs from what
  the datapath already has (``commit_odp_tunnel_action`` and
  ``tun_key_to_attr`` in ``lib/odp-util.c``); :func:`tos_commit_mask` is the
  ECN rule of ``commit_set_ipv4_action``/``commit_set_ipv6_action`` once
  egress tunnel metadata is set.
* :func:`megaflow_tokens` prints the tunnel fields of a megaflow that
  ``format_match`` does not (``tun_tos``, ``tun_flags`` ...), as
  ``format_flow_tunnel`` in ``lib/match.c`` does.

:mod:`ovsnet.ofproto.bridge` keeps the ports (``Bridge.add_tunnel_port``) and
:mod:`ovsnet.ofproto.xlate` calls the receive and send hooks.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ovsnet.datapath.odp_attrs import ActionAttr, KeyAttr, TunnelAttr, nla
from ovsnet.datapath.odp_format import TNL_FLAG_NAMES, format_flags_masked
from ovsnet.errors import OfprotoError

__all__ = [
    "DEFAULT_DST_PORT", "DEFAULT_TTL", "TUNNEL_MEMBERS", "TUNNEL_TYPES", "TunnelConfig",
    "commit_tunnel", "insert_megaflow_tokens", "megaflow_tokens", "parse_tunnel_config", "process_ecn",
    "restore_tunnel", "save_tunnel", "tnl_port_format", "tnl_match_key", "tnl_port_receive", "tnl_port_send",
    "tos_commit_mask", "tunnel_dst", "tunnel_key_attr", "vport_name", "wc_init",
]

#: the tunnel Interface types modelled
TUNNEL_TYPES = ("vxlan", "geneve", "gre")
#: UDP destination port of the UDP tunnels when ``options:dst_port`` is not set
DEFAULT_DST_PORT = {"vxlan": 4789, "geneve": 6081}
#: netdev-vport.c DEFAULT_TTL
DEFAULT_TTL = 64
#: dpif port base names (``netdev_vport_get_dpif_port``; geneve's is cut for IFNAMSIZ)
_VPORT_BASE = {"vxlan": "vxlan_sys", "geneve": "genev_sys", "gre": "gre_sys"}

# FLOW_TNL_F_* (include/openvswitch/packets.h)
TNL_F_OAM, TNL_F_DONT_FRAGMENT, TNL_F_CSUM, TNL_F_KEY = 0x1, 0x2, 0x4, 0x8
_TNL_F_MASK = 0xF
#: FLOW_TNL_PUB_F_MASK: the flag OpenFlow may set, which output keeps
_TNL_PUB_F_MASK = TNL_F_OAM

IP_DSCP_MASK, IP_ECN_MASK = 0xFC, 0x03
IP_ECN_NOT_ECT, IP_ECN_ECT_0, IP_ECN_CE = 0x00, 0x02, 0x03
_ETH_TYPE_IP, _ETH_TYPE_IPV6 = 0x0800, 0x86DD

#: the OfFlow members of ``struct flow_tnl`` (Geneve options are not carried)
TUNNEL_MEMBERS = ("tun_id", "tun_src", "tun_dst", "tun_ipv6_src", "tun_ipv6_dst",
                  "tun_flags", "tun_tos", "tun_ttl", "tun_tp_src", "tun_tp_dst")

#: option keys ``set_tunnel_config`` accepts for every tunnel type modelled
_OPTIONS = ("remote_ip", "local_ip", "key", "in_key", "out_key", "dst_port", "tos", "ttl",
            "df_default", "csum", "egress_pkt_mark", "packet_type")
#: keys ovs-monitor-ipsec reads; ovs-vswitchd ignores them
_IGNORED_OPTIONS = ("remote_cert", "remote_name", "psk")

#: IPv4-mapped IPv6 prefix (::ffff:0:0/96), how OVS stores IPv4 tunnel addresses
_MAPPED = 0xFFFF << 32


@dataclass(frozen=True)
class TunnelConfig:
    """``struct netdev_tunnel_config`` of one tunnel Interface.

    Addresses are 128-bit integers in OVS's form (an IPv4 address IPv4-mapped,
    0 when unset); ``*_flow`` means the value comes from the flow
    (``remote_ip=flow``, ``key=flow`` ...).
    """

    type: str
    #: UDP destination port (0 for GRE)
    dst_port: int = 0
    remote_ip: int = 0
    remote_flow: bool = False
    local_ip: int = 0
    local_flow: bool = False
    in_key: int = 0
    in_key_present: bool = False
    in_key_flow: bool = False
    out_key: int = 0
    out_key_present: bool = False
    out_key_flow: bool = False
    ttl: int = DEFAULT_TTL
    ttl_inherit: bool = False
    tos: int = 0
    tos_inherit: bool = False
    dont_fragment: bool = True
    csum: bool = False
    #: ``options:egress_pkt_mark`` (None: not set)
    egress_pkt_mark: int | None = None
    #: GRE ``options:seq`` (sequence numbers; no effect on translation)
    seq: bool = False

    @property
    def vport(self) -> str:
        """The shared datapath vport's name (``vxlan_sys_4789`` ...)."""
        return vport_name(self.type, self.dst_port)

    def describe(self) -> str:
        """The port's settings as ``ovs-appctl dpif/show`` prints them
        (``get_tunnel_config``, keys sorted)."""
        out: dict[str, str] = {}
        if self.remote_flow or self.remote_ip:
            out["remote_ip"] = "flow" if self.remote_flow else _addr_text(self.remote_ip)
        if self.local_flow or self.local_ip:
            out["local_ip"] = "flow" if self.local_flow else _addr_text(self.local_ip)
        if self.in_key_flow and self.out_key_flow:
            out["key"] = "flow"
        elif self.in_key_present and self.out_key_present and self.in_key == self.out_key \
                and not (self.in_key_flow or self.out_key_flow):
            out["key"] = str(self.in_key)
        else:
            for name, present, flow, key in (
                    ("in_key", self.in_key_present, self.in_key_flow, self.in_key),
                    ("out_key", self.out_key_present, self.out_key_flow, self.out_key)):
                if present:
                    out[name] = "flow" if flow else str(key)
        if self.ttl_inherit:
            out["ttl"] = "inherit"
        elif self.ttl != DEFAULT_TTL:
            out["ttl"] = str(self.ttl)
        if self.tos_inherit:
            out["tos"] = "inherit"
        elif self.tos:
            out["tos"] = f"{self.tos:#x}"
        if self.type in DEFAULT_DST_PORT and self.dst_port != DEFAULT_DST_PORT[self.type]:
            out["dst_port"] = str(self.dst_port)
        if self.csum:
            out["csum"] = "true"
        if self.seq:
            out["seq"] = "true"
        if not self.dont_fragment:
            out["df_default"] = "false"
        if self.egress_pkt_mark is not None:
            out["egress_pkt_mark"] = str(self.egress_pkt_mark)
        return ", ".join(f"{k}={v}" for k, v in sorted(out.items()))


def tnl_port_format(name: str, odp_port: int, config: TunnelConfig) -> str:
    """One line of ``ovs-appctl ofproto/list-tunnels`` (``tnl_port_format``)."""
    if not config.remote_flow:
        match = f"{_addr_text(config.local_ip)}->{_addr_text(config.remote_ip)}"
    elif not config.local_flow:
        match = f"{_addr_text(config.local_ip)}->flow"
    else:
        match = "flow->flow"
    match += ", key=flow" if config.in_key_flow else f", key={_hex(config.in_key)}"
    out = [f"port {odp_port}: {name} ({config.type}: {match}, legacy_l2, dp port={odp_port}"]
    if (config.out_key, config.out_key_present, config.out_key_flow) != (
            config.in_key, config.in_key_present, config.in_key_flow):
        out.append("out_key=" + ("none" if not config.out_key_present else
                                 "flow" if config.out_key_flow else _hex(config.out_key)))
    out.append("ttl=inherit" if config.ttl_inherit else f"ttl={config.ttl}")
    if config.tos_inherit:
        out.append("tos=inherit")
    elif config.tos:
        out.append(f"tos={config.tos:#x}")
    if not config.dont_fragment:
        out.append("df=false")
    if config.csum:
        out.append("csum=true")
    return ", ".join(out) + ")"


def _hex(v: int) -> str:
    """C's ``%#x``."""
    return f"{v:#x}" if v else "0"


def vport_name(type_: str, dst_port: int = 0) -> str:
    """The dpif port shared by tunnel ports of ``type_`` and ``dst_port``."""
    base = _VPORT_BASE[type_]
    return f"{base}_{dst_port}" if type_ in DEFAULT_DST_PORT else base


def _addr_text(addr: int) -> str:
    """``ipv6_format_mapped``: an IPv4-mapped address as dotted quad."""
    if addr >> 32 == 0xFFFF:
        return str(ipaddress.IPv4Address(addr & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address(addr))


def _v4(addr: int) -> int:
    """``in6_addr_get_mapped_ipv4``: the IPv4 address, or 0 if ``addr`` is not mapped."""
    return addr & 0xFFFFFFFF if addr >> 32 == 0xFFFF else 0


def tunnel_dst(flow) -> int:
    """``flow_tnl_dst``: the flow's tunnel destination in mapped form (0: no tunnel)."""
    return _MAPPED | flow.tun_dst if flow.tun_dst else flow.tun_ipv6_dst


def _tunnel_src(flow) -> int:
    """``flow_tnl_src``."""
    return _MAPPED | flow.tun_src if flow.tun_src else flow.tun_ipv6_src


def _bad(where: str, key: str, value: str, valid: str) -> OfprotoError:
    return OfprotoError(f"{where}: options:{key}={value!r} is not valid: {valid}")


def _parse_ip(where: str, key: str, value: str, allow_multicast: bool) -> tuple[int, bool, int]:
    """``parse_tunnel_ip``: (mapped address, from the flow, 4 or 6 or 0 for flow)."""
    if value == "flow":
        return 0, True, 0
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        raise _bad(where, key, value, "an IPv4 or IPv6 address, or 'flow'") from None
    if not allow_multicast and addr.is_multicast:
        raise _bad(where, key, value, "a unicast address (multicast remote_ip is not allowed)")
    if addr.version == 4:
        return _MAPPED | int(addr), False, 4
    return int(addr), False, 6


def _parse_int(where: str, key: str, value: str, lo: int, hi: int) -> int:
    try:
        number = int(value, 0)
    except ValueError:
        number = -1
    if not lo <= number <= hi:
        raise _bad(where, key, value, f"an integer in {lo}..{hi}")
    return number


def _parse_key(where: str, options: Mapping[str, str], name: str) -> tuple[int, bool, bool]:
    """``parse_key``: (key, present, from the flow); ``key`` stands in for in/out_key."""
    text = options.get(name, options.get("key"))
    if text is None:
        return 0, False, False
    if text == "flow":
        return 0, True, True
    which = name if name in options else "key"
    return _parse_int(where, which, text, 0, (1 << 64) - 1), True, False


def parse_tunnel_config(type_: str, options: Mapping[str, str] | None = None, *,
                        name: str = "") -> TunnelConfig:
    """The :class:`TunnelConfig` of an Interface of ``type_`` with ``options`` (``set_tunnel_config``).

    ``options`` is the Interface ``options`` column (strings, as OVSDB holds
    them): ``remote_ip`` (an address or ``flow``; required), ``local_ip``
    (address or ``flow``, which needs ``remote_ip=flow``), ``key``/``in_key``/
    ``out_key`` (a number or ``flow``), ``dst_port`` (UDP tunnels), ``tos``
    (a DSCP value with the ECN bits clear, or ``inherit``), ``ttl`` (1..255 or
    ``inherit``; default 64), ``df_default`` and ``csum`` (``true``/``false``),
    ``egress_pkt_mark``, ``seq`` (GRE; accepted, it does not change
    translation), ``packet_type`` (only ``legacy_l2``). ``name`` is the
    Interface's name, for error messages.
    """
    where = f"tunnel port {name!r}" if name else "tunnel port"
    if type_ not in TUNNEL_TYPES:
        raise OfprotoError(f"{where}: type {type_!r} is not a modelled tunnel type "
                           f"(valid: {', '.join(TUNNEL_TYPES)})")
    options = dict(options or {})
    fields: dict = {"type": type_, "dst_port": DEFAULT_DST_PORT.get(type_, 0)}
    families = {}
    for key, value in options.items():
        value = str(value)
        if key == "remote_ip":
            fields["remote_ip"], fields["remote_flow"], families[key] = _parse_ip(
                where, key, value, allow_multicast=False)
        elif key == "local_ip":
            fields["local_ip"], fields["local_flow"], families[key] = _parse_ip(
                where, key, value, allow_multicast=True)
        elif key == "tos":
            if value == "inherit":
                fields["tos_inherit"] = True
            else:
                tos = _parse_int(where, key, value, 0, 255)
                if tos & ~IP_DSCP_MASK:
                    raise _bad(where, key, value, "'inherit' or a TOS value with the two ECN "
                               "bits clear (a multiple of 4 up to 252)")
                fields["tos"] = tos
        elif key == "ttl":
            if value == "inherit":
                fields["ttl_inherit"] = True
            else:
                # OVS reads 0 (or an unparsable value) as the default TTL
                fields["ttl"] = _parse_int(where, key, value, 0, 255) or DEFAULT_TTL
        elif key == "dst_port":
            if type_ not in DEFAULT_DST_PORT:
                raise OfprotoError(f"{where}: options:dst_port is only valid for UDP tunnels "
                                   f"(vxlan, geneve), not {type_}")
            fields["dst_port"] = _parse_int(where, key, value, 1, 65535)
        elif key in ("csum", "df_default") or (key == "seq" and type_ == "gre"):
            if value not in ("true", "false"):
                raise _bad(where, key, value, "'true' or 'false'")
            if key == "seq":
                fields["seq"] = value == "true"
            elif key == "csum":
                fields["csum"] = value == "true"
            else:
                fields["dont_fragment"] = value != "false"
        elif key == "egress_pkt_mark":
            fields["egress_pkt_mark"] = _parse_int(where, key, value, 0, 0xFFFFFFFF)
        elif key == "packet_type":
            if value != "legacy_l2":
                raise _bad(where, key, value, "'legacy_l2' (legacy_l3 and ptap are not "
                                              "modelled)")
        elif key in ("key", "in_key", "out_key") or key in _IGNORED_OPTIONS:
            pass
        else:
            valid = _OPTIONS + (("seq",) if type_ == "gre" else ())
            raise OfprotoError(f"{where}: unknown {type_} option {key!r} (valid: "
                               f"{', '.join(valid)})")
    if not fields.get("remote_ip") and not fields.get("remote_flow"):
        raise OfprotoError(f"{where}: {type_} type requires valid 'remote_ip' argument "
                           "(an IP address or 'flow')")
    if fields.get("local_flow") and not fields.get("remote_flow"):
        raise OfprotoError(f"{where}: {type_} type requires 'remote_ip=flow' with "
                           "'local_ip=flow'")
    if families.get("remote_ip") and families.get("local_ip") and \
            families["remote_ip"] != families["local_ip"]:
        raise OfprotoError(f"{where}: 'remote_ip' and 'local_ip' has to be of the same "
                           "address family")
    fields["in_key"], fields["in_key_present"], fields["in_key_flow"] = _parse_key(
        where, options, "in_key")
    fields["out_key"], fields["out_key_present"], fields["out_key_flow"] = _parse_key(
        where, options, "out_key")
    return TunnelConfig(**fields)


# ---------------------------------------------------------------------------------
# Receiving (tnl_find, tnl_wc_init, tnl_process_ecn)

#: ``enum ip_src_type``
_IP_SRC_CFG, _IP_SRC_ANY, _IP_SRC_FLOW = 0, 1, 2


def tnl_match_key(config: TunnelConfig, odp_port: int) -> tuple:
    """``struct tnl_match`` of a port: what a received packet must carry to reach it.

    Two tunnel ports with the same key cannot coexist (``tnl_port_add``).
    """
    return (odp_port, 0 if config.in_key_flow else config.in_key,
            0 if config.local_flow else config.local_ip,
            0 if config.remote_flow else config.remote_ip,
            config.in_key_flow, config.remote_flow, config.local_flow)


def _match_type(key: tuple) -> int:
    """``tnl_match_map``: which of the 12 match kinds ``key`` is (OVS's search order)."""
    _odp, _in_key, local, _remote, in_key_flow, ip_dst_flow, ip_src_flow = key
    ip_src = _IP_SRC_FLOW if ip_src_flow else _IP_SRC_CFG if local else _IP_SRC_ANY
    return 6 * in_key_flow + 3 * ip_dst_flow + ip_src


def tnl_port_receive(ports: Mapping[tuple, object], flow, odp_port: int):
    """``tnl_find``: the port (a value of ``ports``, keyed by :func:`tnl_match_key`)
    a tunnelled packet arriving on datapath port ``odp_port`` belongs to, or None.

    The match kinds are tried in OVS's order; "local" and "remote" are
    reversed for a received packet (its source is the port's remote end).
    """
    present = {_match_type(k) for k in ports}
    for i in range(12):
        if i not in present:
            continue
        in_key_flow, rest = divmod(i, 6)
        ip_dst_flow, ip_src = divmod(rest, 3)
        key = (odp_port, 0 if in_key_flow else flow.tun_id,
               tunnel_dst(flow) if ip_src == _IP_SRC_CFG else 0,
               0 if ip_dst_flow else _tunnel_src(flow),
               bool(in_key_flow), bool(ip_dst_flow), ip_src == _IP_SRC_FLOW)
        port = ports.get(key)
        if port is not None:
            return port
    return None


def _is_ip(flow) -> bool:
    return flow.dl_type in (_ETH_TYPE_IP, _ETH_TYPE_IPV6)


def wc_init(flow, mask: Callable[[str, int], None]) -> None:
    """``tnl_wc_init``: what a tunnelled packet's megaflow always matches.

    ``mask(member, bits)`` un-wildcards bits. Nothing for a packet that did
    not come from a tunnel (no tunnel destination).
    """
    if not tunnel_dst(flow):
        return
    mask("tun_id", (1 << 64) - 1)
    if flow.tun_dst:
        mask("tun_src", 0xFFFFFFFF)
        mask("tun_dst", 0xFFFFFFFF)
    else:
        mask("tun_ipv6_src", (1 << 128) - 1)
        mask("tun_ipv6_dst", (1 << 128) - 1)
    mask("tun_flags", TNL_F_DONT_FRAGMENT | TNL_F_CSUM | TNL_F_KEY)
    mask("tun_tos", 0xFF)
    if _is_ip(flow) and flow.tun_tos & IP_ECN_MASK == IP_ECN_CE:
        mask("nw_tos", IP_ECN_MASK)


def process_ecn(flow) -> bool:
    """``tnl_process_ecn``: copy an outer CE mark into the inner IP packet.

    Returns False when the packet must be dropped (outer CE, inner not
    ECN-capable). Modifies ``flow``'s ``nw_tos``.
    """
    if not tunnel_dst(flow):
        return True
    if _is_ip(flow) and flow.tun_tos & IP_ECN_MASK == IP_ECN_CE:
        if flow.nw_tos & IP_ECN_MASK == IP_ECN_NOT_ECT:
            return False
        flow.nw_tos |= IP_ECN_CE
    return True


# ---------------------------------------------------------------------------------
# Sending (tnl_port_send, commit_odp_tunnel_action)


def save_tunnel(flow) -> tuple[int, ...]:
    """The flow's tunnel metadata (``struct flow_tnl``), for :func:`restore_tunnel`."""
    return tuple(getattr(flow, m) for m in TUNNEL_MEMBERS)


def restore_tunnel(flow, saved: tuple[int, ...]) -> None:
    """Put tunnel metadata saved by :func:`save_tunnel` back into ``flow``."""
    for member, value in zip(TUNNEL_MEMBERS, saved, strict=True):
        setattr(flow, member, value)


def tnl_port_send(config: TunnelConfig, flow, mask: Callable[[str, int], None]) -> None:
    """``tnl_port_send``: set ``flow``'s tunnel metadata for output to a port with ``config``.

    The port's configured addresses and key replace the flow's unless they
    are ``flow``-based; TTL and DSCP come from the port or, with ``inherit``,
    from an IP packet; the ECN bits are always inherited (CE as ECT(0)); the
    DF, CSUM and KEY flags follow the port. ``mask`` un-wildcards the inner
    header bits this reads.
    """
    if not config.local_flow:
        src4 = _v4(config.local_ip)
        flow.tun_src = src4
        flow.tun_ipv6_src = 0 if src4 else config.local_ip
    if not config.remote_flow:
        dst4 = _v4(config.remote_ip)
        flow.tun_dst = dst4
        flow.tun_ipv6_dst = 0 if dst4 else config.remote_ip
    flow.tun_tp_dst = config.dst_port
    if not config.out_key_flow:
        flow.tun_id = config.out_key
    ip = _is_ip(flow)
    if config.ttl_inherit and ip:
        mask("nw_ttl", 0xFF)
        flow.tun_ttl = flow.nw_ttl
    else:
        flow.tun_ttl = config.ttl
    if config.tos_inherit and ip:
        mask("nw_tos", IP_DSCP_MASK)
        flow.tun_tos = flow.nw_tos & IP_DSCP_MASK
    else:
        flow.tun_tos = config.tos
    if ip:
        mask("nw_tos", IP_ECN_MASK)
        if flow.nw_tos & IP_ECN_MASK == IP_ECN_CE:
            flow.tun_tos |= IP_ECN_ECT_0
        else:
            flow.tun_tos |= flow.nw_tos & IP_ECN_MASK
    flow.tun_flags &= ~(_TNL_F_MASK & ~_TNL_PUB_F_MASK) & 0xFFFF
    flow.tun_flags |= ((TNL_F_DONT_FRAGMENT if config.dont_fragment else 0)
                       | (TNL_F_CSUM if config.csum else 0)
                       | (TNL_F_KEY if config.out_key_present else 0))
    if config.egress_pkt_mark is not None:
        flow.pkt_mark = config.egress_pkt_mark
        mask("pkt_mark", 0xFFFFFFFF)


def tunnel_key_attr(flow) -> bytes:
    """``tun_key_to_attr``: the ``OVS_KEY_ATTR_TUNNEL`` attribute of ``flow``'s tunnel."""
    out = b""
    if flow.tun_id or flow.tun_flags & TNL_F_KEY:
        out += nla(TunnelAttr.ID, flow.tun_id.to_bytes(8, "big"))
    if flow.tun_src:
        out += nla(TunnelAttr.IPV4_SRC, flow.tun_src.to_bytes(4, "big"))
    if flow.tun_dst:
        out += nla(TunnelAttr.IPV4_DST, flow.tun_dst.to_bytes(4, "big"))
    if flow.tun_ipv6_src:
        out += nla(TunnelAttr.IPV6_SRC, flow.tun_ipv6_src.to_bytes(16, "big"))
    if flow.tun_ipv6_dst:
        out += nla(TunnelAttr.IPV6_DST, flow.tun_ipv6_dst.to_bytes(16, "big"))
    if flow.tun_tos:
        out += nla(TunnelAttr.TOS, bytes([flow.tun_tos]))
    out += nla(TunnelAttr.TTL, bytes([flow.tun_ttl]))
    if flow.tun_flags & TNL_F_DONT_FRAGMENT:
        out += nla(TunnelAttr.DONT_FRAGMENT)
    if flow.tun_flags & TNL_F_CSUM:
        out += nla(TunnelAttr.CSUM)
    if flow.tun_tp_src:
        out += nla(TunnelAttr.TP_SRC, flow.tun_tp_src.to_bytes(2, "big"))
    if flow.tun_tp_dst:
        out += nla(TunnelAttr.TP_DST, flow.tun_tp_dst.to_bytes(2, "big"))
    if flow.tun_flags & TNL_F_OAM:
        out += nla(TunnelAttr.OAM)
    return nla(KeyAttr.TUNNEL, out)


def commit_tunnel(flow, base) -> bytes:
    """``commit_odp_tunnel_action``: ``set(tunnel(...))`` if the flow's tunnel
    metadata differs from the datapath's (``base``, updated), else nothing.

    A tunnel without a destination is not committed.
    """
    if not tunnel_dst(flow):
        return b""
    new = save_tunnel(flow)
    if new == save_tunnel(base):
        return b""
    restore_tunnel(base, new)
    return nla(ActionAttr.SET, tunnel_key_attr(flow))


def tos_commit_mask(flow, base) -> int:
    """The bits of ``nw_tos`` an IPv4/IPv6 ``set`` may write (``commit_set_ipv4_action``).

    Once the datapath has egress tunnel metadata (``base`` has a tunnel
    destination) and the packet's ECN bits are unchanged, they are left out,
    since the tunnel output derives the outer ECN from them.
    """
    if tunnel_dst(base) and not (base.nw_tos ^ flow.nw_tos) & IP_ECN_MASK:
        return 0xFF & ~IP_ECN_MASK
    return 0xFF


# ---------------------------------------------------------------------------------
# Megaflow text (match.c format_flow_tunnel)


def megaflow_tokens(masks: Mapping[str, int], flow) -> list[str]:
    """The tunnel fields ``match_format`` prints after ``tun_dst`` that
    :func:`~ovsnet.ofproto.ofp_fields.format_match` does not know:
    ``tun_ipv6_src``/``tun_ipv6_dst``, ``tun_tos``, ``tun_ttl``, ``tun_flags``."""
    out = []
    for member in ("tun_ipv6_src", "tun_ipv6_dst"):
        m = masks.get(member, 0)
        if m:
            text = str(ipaddress.IPv6Address(getattr(flow, member) & m))
            if m != (1 << 128) - 1:
                text += "/" + str(ipaddress.IPv6Address(m))
            out.append(f"{member}={text}")
    if masks.get("tun_tos"):
        out.append(f"tun_tos={flow.tun_tos:x}")
    if masks.get("tun_ttl"):
        out.append(f"tun_ttl={flow.tun_ttl}")
    fmask = masks.get("tun_flags", 0) & _TNL_F_MASK
    if fmask:
        out.append("tun_flags=" + format_flags_masked(TNL_FLAG_NAMES, flow.tun_flags & _TNL_F_MASK,
                                                      fmask, _TNL_F_MASK))
    return out


def insert_megaflow_tokens(body: str, masks: Mapping[str, int], flow) -> str:
    """``body`` (a ``format_match`` text) with :func:`megaflow_tokens` where
    ``match_format`` puts them: after the tunnel ID and IPv4 addresses, before
    ``metadata`` and ``in_port``."""
    extra = megaflow_tokens(masks, flow)
    if not extra:
        return body
    tokens = body.split(",") if body else []
    at = None
    for i, token in enumerate(tokens):
        if token.startswith(("tun_id=", "tun_src=", "tun_dst=")):
            at = i + 1
    if at is None:
        at = next((i for i, t in enumerate(tokens) if t.startswith(("metadata=", "in_port="))),
                  len(tokens))
    tokens[at:at] = extra
    return ",".join(tokens)
