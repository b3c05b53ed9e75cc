"""Print a flow key the way Open vSwitch prints a packet's flow.

:func:`format_flow` gives, for a :class:`~ovsnet.datapath.flow_key.FlowKey`,
the line ``ovs-ofctl parse-pcap`` prints for the packet: OVS's
``flow_format()`` (lib/flow.c), which builds a match whose mask covers the
fields that make sense for the packet (``flow_wildcards_init_for_packet``),
drops the all-zero metadata, and prints it with ``match_format()``
(lib/match.c). So the fields, their order and their formatting are OVS's:

* metadata first (``pkt_mark``, ``recirc_id``, ``dp_hash``, ``skb_mark`` as
  ``skb_priority``, conntrack fields), each only when nonzero; a nonzero
  ``recirc_id`` makes the match a megaflow, which adds ``eth``;
* a protocol shorthand (``tcp``, ``udp6``, ``arp``, ``mpls``, ...) in place
  of ``dl_type`` and ``nw_proto`` where one exists;
* tunnel fields when the key has a tunnel destination, then ``in_port``:
  OVS prints the low 16 bits of the odp_port as an OpenFlow port, with the
  reserved names (``in_port=ANY`` for 0xffff, which parse-pcap uses), and
  leaves it out when they are zero;
* the first VLAN header always (``vlan_tci=0x0000`` when untagged,
  ``dl_vlan``/``dl_vlan_pcp`` when tagged), the second one when the first is
  present, then addresses, L3 and L4 fields as the packet type calls for.

NSH packets get their ``nsh_*`` fields, and, as in OVS, the (zero) IP
fields too. Geneve options are not printed: OVS shows them only through a tunnel
metadata table (``tun_metadataN``), which a datapath key does not carry.
"""

from __future__ import annotations

import socket

from ovsnet.datapath.flow_key import FRAG_ANY, FRAG_LATER, TNL_F_KEY, FlowKey

__all__ = ["OFPP_NAMES", "format_flow", "format_port"]

#: Reserved OpenFlow port numbers and their names (ofputil_port_get_reserved_name).
OFPP_NAMES = {
    0xFFF7: "UNSET",
    0xFFF8: "IN_PORT",
    0xFFF9: "TABLE",
    0xFFFA: "NORMAL",
    0xFFFB: "FLOOD",
    0xFFFC: "ALL",
    0xFFFD: "CONTROLLER",
    0xFFFE: "LOCAL",
    0xFFFF: "ANY",
}

_TCP_FLAG_NAMES = {
    0x001: "fin", 0x002: "syn", 0x004: "rst", 0x008: "psh", 0x010: "ack", 0x020: "urg",
    0x040: "ece", 0x080: "cwr", 0x100: "ns", 0x200: "[200]", 0x400: "[400]", 0x800: "[800]",
}
_CT_STATE_NAMES = {
    0x01: "new", 0x02: "est", 0x04: "rel", 0x08: "rpl",
    0x10: "inv", 0x20: "trk", 0x40: "snat", 0x80: "dnat",
}
_TUN_FLAG_NAMES = {0x1: "oam", 0x2: "df", 0x4: "csum", 0x8: "key"}

_IP, _IPV6, _ARP, _RARP = 0x0800, 0x86DD, 0x0806, 0x8035
_MPLS, _MPLS_MCAST, _NSH = 0x8847, 0x8848, 0x894F
_L4_PROTOS = (1, 2, 6, 17, 58, 132)  # ICMP, IGMP, TCP, UDP, ICMPv6, SCTP


def _alt_hex(value: int) -> str:
    """C's ``%#x``: ``0x`` prefix except for zero."""
    return f"{value:#x}" if value else "0"


def _flags(value: int, names: dict[int, str]) -> str:
    """OVS format_flags with '|': names of the set bits, lowest first; unknown bits in hex."""
    if not value:
        return "0"
    out, bad = [], 0
    bit = 1
    while bit <= value:
        if value & bit:
            if bit in names:
                out.append(names[bit])
            else:
                bad |= bit
        bit <<= 1
    if bad:
        out.append(f"{bad:#x}")
    return "|".join(out)


def _ipv4(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET, raw)


def _ipv6(raw: bytes) -> str:
    # glibc's inet_ntop, as OVS uses: "::ffff:1.2.3.4", "::1.2.3.4", "::".
    return socket.inet_ntop(socket.AF_INET6, raw)


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def format_port(port: int) -> str:
    """An OpenFlow port number as OVS prints it: a reserved name or the number."""
    return OFPP_NAMES.get(port, str(port))


def format_flow(key: FlowKey) -> str:
    """The line OVS's ``flow_format`` prints for ``key`` (what ``parse-pcap`` shows)."""
    fb = key.field_bytes
    out: list[str] = []

    # Metadata (match_format prints these before the protocol shorthand).
    if key.skb_mark:
        out.append(f"pkt_mark={_alt_hex(key.skb_mark)}")
    megaflow = bool(key.recirc_id)
    if megaflow:
        out.append(f"recirc_id={_alt_hex(key.recirc_id)}")
    if key.dp_hash:
        out.append(f"dp_hash={_alt_hex(key.dp_hash)}")
    if key.priority:
        out.append(f"skb_priority={_alt_hex(key.priority)}")
    if key.ct_state:
        out.append(f"ct_state={_flags(key.ct_state, _CT_STATE_NAMES)}")
    if key.ct_zone:
        out.append(f"ct_zone={key.ct_zone}")
    if key.ct_mark:
        out.append(f"ct_mark={_alt_hex(key.ct_mark)}")
    if key.ct_label:
        out.append(f"ct_label={key.ct_label:#x}")
    if megaflow:
        out.append("eth")  # packet_type=(0,0), printed for megaflows

    dl_type = key.dl_type
    nw_proto = key.nw_proto
    is_ip = dl_type == _IP
    is_ipv6 = dl_type == _IPV6
    is_arp = dl_type in (_ARP, _RARP)

    # Protocol shorthand: replaces dl_type, and nw_proto for the named ones.
    skip_type = skip_proto = True
    if is_ip:
        name = {1: "icmp", 6: "tcp", 17: "udp", 132: "sctp"}.get(nw_proto)
        out.append(name or "ip")
        skip_proto = name is not None
    elif is_ipv6:
        name = {58: "icmp6", 6: "tcp6", 17: "udp6", 132: "sctp6"}.get(nw_proto)
        out.append(name or "ipv6")
        skip_proto = name is not None
    elif dl_type in (_ARP, _RARP, _MPLS, _MPLS_MCAST):
        out.append({_ARP: "arp", _RARP: "rarp", _MPLS: "mpls", _MPLS_MCAST: "mplsm"}[dl_type])
        skip_proto = False
    else:
        skip_type = skip_proto = False

    out.extend(_format_tunnel(key))

    port = key.in_port & 0xFFFF  # OVS prints the ofp_port half of the in_port union
    if port:
        out.append(f"in_port={format_port(port)}")

    # VLANs: the first header always, the second when the first is present.
    for i, prefix in enumerate(("vlan", "vlan1")):
        tci = getattr(key, f"{prefix}_tci")
        suffix = "" if i == 0 else "1"
        if tci & 0x1000:
            out.append(f"dl_vlan{suffix}={tci & 0x0FFF}")
            out.append(f"dl_vlan_pcp{suffix}={tci >> 13}")
        else:
            out.append(f"vlan_tci{suffix}=0x{tci:04x}")
        if tci == 0:
            break

    out.append(f"dl_src={_mac(fb('dl_src'))}")
    out.append(f"dl_dst={_mac(fb('dl_dst'))}")
    if not skip_type:
        out.append(f"dl_type=0x{dl_type:04x}")

    if is_ipv6:
        out.append(f"ipv6_src={_ipv6(fb('ipv6_src'))}")
        out.append(f"ipv6_dst={_ipv6(fb('ipv6_dst'))}")
        out.append(f"ipv6_label=0x{key.ipv6_label:05x}")
    elif is_arp:
        out.append(f"arp_spa={_ipv4(fb('nw_src'))}")
        out.append(f"arp_tpa={_ipv4(fb('nw_dst'))}")
    elif dl_type == _NSH:
        out.extend(_format_nsh(key))
    elif is_ip:
        out.append(f"nw_src={_ipv4(fb('nw_src'))}")
        out.append(f"nw_dst={_ipv4(fb('nw_dst'))}")

    if is_arp:
        out.append(f"arp_op={nw_proto}")
        out.append(f"arp_sha={_mac(fb('arp_sha'))}")
        out.append(f"arp_tha={_mac(fb('arp_tha'))}")
    elif dl_type in (_MPLS, _MPLS_MCAST):
        out.extend(_format_mpls(key))
    elif is_ip or is_ipv6 or dl_type == _NSH:
        # OVS masks the IP fields of NSH packets too (they are all zero).
        out.extend(_format_l3_l4(key, is_ipv6, skip_proto))
    return ",".join(out)


def _format_tunnel(key: FlowKey) -> list[str]:
    """format_flow_tunnel for the mask flow_wildcards_init_for_packet gives."""
    fb = key.field_bytes
    if fb("tun_ipv4_dst") == bytes(4) and fb("tun_ipv6_dst") == bytes(16):  # no tunnel
        return [f"tun_id={key.tun_id:#x}"] if key.tun_id else []
    out = []
    if key.tun_flags & TNL_F_KEY:
        out.append(f"tun_id={_alt_hex(key.tun_id)}")
    out += [
        f"tun_src={_ipv4(fb('tun_ipv4_src'))}",
        f"tun_dst={_ipv4(fb('tun_ipv4_dst'))}",
        f"tun_ipv6_src={_ipv6(fb('tun_ipv6_src'))}",
        f"tun_ipv6_dst={_ipv6(fb('tun_ipv6_dst'))}",
        # Fields a datapath key does not carry are zero, and OVS prints them.
        "tun_gbp_id=0",
        "tun_gbp_flags=0",
        f"tun_tos={key.tun_tos:x}",
        f"tun_ttl={key.tun_ttl}",
        "tun_erspan_ver=0",
        "gtpu_flags=0",
        "gtpu_msgtype=0",
        f"tun_flags={_flags(key.tun_flags & 0xF, _TUN_FLAG_NAMES)}",
    ]
    return out


def _format_mpls(key: FlowKey) -> list[str]:
    """The label stack entries OVS masks: up to and including the bottom of stack."""
    lse0 = key.mpls_lse0
    out = [
        f"mpls_label={lse0 >> 12}",
        f"mpls_tc={(lse0 >> 9) & 7}",
        f"mpls_ttl={lse0 & 0xFF}",
        f"mpls_bos={(lse0 >> 8) & 1}",
    ]
    if not lse0 & 0x100:
        out.append(f"mpls_lse1={key.mpls_lse1}")
        if not key.mpls_lse1 & 0x100:
            out.append(f"mpls_lse2={key.mpls_lse2}")
    return out


def _format_nsh(key: FlowKey) -> list[str]:
    """format_nsh_masked with every NSH field masked."""
    path = key.nsh_path_hdr
    out = [
        f"nsh_flags={key.nsh_flags}",
        f"nsh_ttl={key.nsh_ttl}",
        f"nsh_mdtype={key.nsh_mdtype}",
        f"nsh_np={key.nsh_np}",
        f"nsh_spi=0x{path >> 8:x}",
        f"nsh_si={path & 0xFF}",
    ]
    if key.nsh_mdtype == 1:
        out += [f"nsh_c{i}=0x{getattr(key, f'nsh_c{i}'):x}" for i in range(1, 5)]
    return out


def _format_l3_l4(key: FlowKey, is_ipv6: bool, skip_proto: bool) -> list[str]:
    fb = key.field_bytes
    nw_proto, nw_frag, nw_tos = key.nw_proto, key.nw_frag, key.nw_tos
    out = []
    if not skip_proto:
        out.append(f"nw_proto={nw_proto}")
    out.append(f"nw_tos={nw_tos & 0xFC}")
    out.append(f"nw_ecn={nw_tos & 0x03}")
    out.append(f"nw_ttl={key.nw_ttl}")
    if nw_frag & FRAG_ANY:
        frag = "later" if nw_frag & FRAG_LATER else "first"
    else:
        frag = "<error>" if nw_frag & FRAG_LATER else "no"
    out.append(f"nw_frag={frag}")

    # Transport fields are in the mask only for known protocols and not in
    # later fragments; ND fields whenever the ICMPv6 type and code say ND.
    l4 = not nw_frag & FRAG_LATER and nw_proto in _L4_PROTOS
    tp_src, tp_dst = key.tp_src, key.tp_dst
    if not is_ipv6 and nw_proto == 1:
        if l4:
            out += [f"icmp_type={tp_src}", f"icmp_code={tp_dst}"]
    elif is_ipv6 and nw_proto == 58:
        if l4:
            out += [f"icmp_type={tp_src}", f"icmp_code={tp_dst}"]
        if tp_dst == 0 and tp_src in (135, 136):
            out += [
                f"nd_target={_ipv6(fb('nd_target'))}",
                f"nd_sll={_mac(fb('arp_sha'))}",
                f"nd_tll={_mac(fb('arp_tha'))}",
            ]
    elif l4:
        out += [f"tp_src={tp_src}", f"tp_dst={tp_dst}"]
    if l4 and nw_proto == 6:
        out.append(f"tcp_flags={_flags(key.tcp_flags & 0x0FFF, _TCP_FLAG_NAMES)}")
    return out
