"""Datapath (ODP) netlink attribute numbers and the netlink attribute codec.

A datapath flow's key, mask and actions travel between ``ovs-vswitchd`` and
the kernel module as netlink attributes: a 4-byte header (``u16`` length
including the header, ``u16`` type, host byte order) followed by the payload,
padded to a multiple of 4 bytes. ovsnet keeps that encoding as its own
interchange format: the ODP parser (:mod:`ovsnet.datapath.odp`) produces it,
the megaflow table stores actions as these bytes, and the action executors
(compiled and reference) walk them. The numbers are those of the kernel's
uapi header ``include/uapi/linux/openvswitch.h`` (Open vSwitch carries a copy
as ``include/linux/openvswitch.h``), including the userspace-only actions
after ``ADD_MPLS``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from enum import IntEnum

from ovsnet.errors import DatapathError

#: bytes of a netlink attribute header; payloads are padded to this alignment
NLA_HDRLEN = 4
NLA_ALIGNTO = 4

_HDR = struct.Struct("=HH")


class ActionAttr(IntEnum):
    """``enum ovs_action_attr``."""

    UNSPEC = 0
    OUTPUT = 1  # u32 odp port
    USERSPACE = 2  # nested UserspaceAttr
    SET = 3  # one nested KeyAttr
    PUSH_VLAN = 4  # struct ovs_action_push_vlan {be16 tpid; be16 tci}
    POP_VLAN = 5  # no argument
    SAMPLE = 6  # nested SampleAttr
    RECIRC = 7  # u32 recirc_id
    HASH = 8  # struct ovs_action_hash {u32 alg; u32 basis}
    PUSH_MPLS = 9  # struct ovs_action_push_mpls {be32 lse; be16 ethertype}
    POP_MPLS = 10  # be16 ethertype
    SET_MASKED = 11  # one nested KeyAttr: value then mask
    CT = 12  # nested CT attributes
    TRUNC = 13  # u32 max_len
    PUSH_ETH = 14
    POP_ETH = 15
    CT_CLEAR = 16
    PUSH_NSH = 17
    POP_NSH = 18
    METER = 19  # u32 meter id
    CLONE = 20  # nested actions (kernel: preceded by OVS_CLONE_ATTR_EXEC)
    CHECK_PKT_LEN = 21  # nested CheckPktLenAttr
    ADD_MPLS = 22  # struct ovs_action_add_mpls {be32 lse; be16 ethertype; u16 tun_flags}
    # userspace datapath only
    TUNNEL_PUSH = 23
    TUNNEL_POP = 24
    DROP = 25  # u32 xlate_error
    LB_OUTPUT = 26


class KeyAttr(IntEnum):
    """``enum ovs_key_attr``."""

    UNSPEC = 0
    ENCAP = 1
    PRIORITY = 2  # u32
    IN_PORT = 3  # u32
    ETHERNET = 4  # struct ovs_key_ethernet {u8 src[6]; u8 dst[6]}
    VLAN = 5  # be16 tci
    ETHERTYPE = 6  # be16
    IPV4 = 7  # struct ovs_key_ipv4 {be32 src, dst; u8 proto, tos, ttl, frag}
    IPV6 = 8  # struct ovs_key_ipv6 {src[16], dst[16]; be32 label; u8 proto, tclass, hlimit, frag}
    TCP = 9  # {be16 src, dst}
    UDP = 10
    ICMP = 11  # {u8 type, code}
    ICMPV6 = 12
    ARP = 13  # {be32 sip, tip; be16 op; u8 sha[6], tha[6]}
    ND = 14  # {u8 target[16]; u8 sll[6], tll[6]}
    SKB_MARK = 15  # u32
    TUNNEL = 16  # nested TunnelAttr
    SCTP = 17
    TCP_FLAGS = 18  # be16
    DP_HASH = 19  # u32
    RECIRC_ID = 20  # u32
    MPLS = 21  # array of be32 lse
    CT_STATE = 22  # u32
    CT_ZONE = 23  # u16
    CT_MARK = 24  # u32
    CT_LABELS = 25  # 16 bytes
    CT_ORIG_TUPLE_IPV4 = 26
    CT_ORIG_TUPLE_IPV6 = 27
    NSH = 28
    PACKET_TYPE = 29  # be32, userspace only
    ND_EXTENSIONS = 30  # userspace only
    TUNNEL_INFO = 31  # kernel internal


class TunnelAttr(IntEnum):
    """``enum ovs_tunnel_key_attr``."""

    ID = 0  # be64
    IPV4_SRC = 1
    IPV4_DST = 2
    TOS = 3  # u8
    TTL = 4  # u8
    DONT_FRAGMENT = 5  # flag
    CSUM = 6  # flag
    OAM = 7  # flag
    GENEVE_OPTS = 8  # bytes
    TP_SRC = 9  # be16
    TP_DST = 10  # be16
    VXLAN_OPTS = 11  # nested
    IPV6_SRC = 12
    IPV6_DST = 13
    PAD = 14
    ERSPAN_OPTS = 15
    GTPU_OPTS = 16


class UserspaceAttr(IntEnum):
    """``enum ovs_userspace_attr``."""

    UNSPEC = 0
    PID = 1  # u32
    USERDATA = 2  # bytes
    EGRESS_TUN_PORT = 3  # u32
    ACTIONS = 4  # flag


class SampleAttr(IntEnum):
    """``enum ovs_sample_attr``."""

    UNSPEC = 0
    PROBABILITY = 1  # u32, UINT32_MAX is always
    ACTIONS = 2  # nested actions


class CheckPktLenAttr(IntEnum):
    """``enum ovs_check_pkt_len_attr``."""

    UNSPEC = 0
    PKT_LEN = 1  # u16
    ACTIONS_IF_GREATER = 2  # nested actions
    ACTIONS_IF_LESS_EQUAL = 3  # nested actions


class HashAlg(IntEnum):
    """``enum ovs_hash_alg``."""

    L4 = 0
    SYM_L4 = 1


class FragType(IntEnum):
    """``enum ovs_frag_type`` as carried in the ipv4/ipv6 key attributes."""

    NONE = 0
    FIRST = 1
    LATER = 2


class VportType(IntEnum):
    """``enum ovs_vport_type``."""

    UNSPEC = 0
    NETDEV = 1
    INTERNAL = 2
    GRE = 3
    VXLAN = 4
    GENEVE = 5


#: payload length of each tunnel key attribute (``ovs_tun_key_lens`` of the
#: kernel's flow_netlink.c); None = variable length
TUNNEL_ATTR_LEN: dict[int, int | None] = {
    TunnelAttr.ID: 8,
    TunnelAttr.IPV4_SRC: 4,
    TunnelAttr.IPV4_DST: 4,
    TunnelAttr.TOS: 1,
    TunnelAttr.TTL: 1,
    TunnelAttr.DONT_FRAGMENT: 0,
    TunnelAttr.CSUM: 0,
    TunnelAttr.OAM: 0,
    TunnelAttr.GENEVE_OPTS: None,
    TunnelAttr.TP_SRC: 2,
    TunnelAttr.TP_DST: 2,
    TunnelAttr.VXLAN_OPTS: None,
    TunnelAttr.IPV6_SRC: 16,
    TunnelAttr.IPV6_DST: 16,
    TunnelAttr.ERSPAN_OPTS: None,
    TunnelAttr.GTPU_OPTS: None,
}

#: Open vSwitch's ``OVS_CLONE_ATTR_EXEC``: first attribute of a kernel clone
CLONE_ATTR_EXEC = 0

#: the datapath's limit on nested actions (kernel ``OVS_COPY_ACTIONS_MAX_DEPTH``)
MAX_ACTIONS_DEPTH = 16
#: the kernel's recursion limit for recirculation and nested execution
#: (``OVS_RECURSION_LIMIT`` in net/openvswitch/actions.c)
RECURSION_LIMIT = 5
#: deferred actions the kernel queues per CPU (``DEFERRED_ACTION_FIFO_SIZE``)
DEFERRED_ACTION_FIFO_SIZE = 10


def nla_align(n: int) -> int:
    """``n`` rounded up to the netlink alignment."""
    return (n + NLA_ALIGNTO - 1) & ~(NLA_ALIGNTO - 1)


def nla(attr_type: int, payload: bytes = b"") -> bytes:
    """One attribute: header, payload, zero padding."""
    length = NLA_HDRLEN + len(payload)
    if length > 0xFFFF:
        raise DatapathError(f"netlink attribute type {attr_type} too long: {length} bytes")
    return _HDR.pack(length, attr_type) + payload + bytes(nla_align(length) - length)


def nla_u8(attr_type: int, value: int) -> bytes:
    return nla(attr_type, struct.pack("=B", value))


def nla_u16(attr_type: int, value: int) -> bytes:
    return nla(attr_type, struct.pack("=H", value))


def nla_be16(attr_type: int, value: int) -> bytes:
    return nla(attr_type, struct.pack("!H", value))


def nla_u32(attr_type: int, value: int) -> bytes:
    return nla(attr_type, struct.pack("=I", value))


def nla_be32(attr_type: int, value: int) -> bytes:
    return nla(attr_type, struct.pack("!I", value))


def nla_be64(attr_type: int, value: int) -> bytes:
    return nla(attr_type, struct.pack("!Q", value))


def nla_nested(attr_type: int, *children: bytes) -> bytes:
    return nla(attr_type, b"".join(children))


def iter_nla(buf: bytes | memoryview, where: str = "attributes") -> Iterator[tuple[int, memoryview]]:
    """(type, payload) of each attribute in ``buf``; raises on a malformed stream.

    Stricter than the kernel's ``nla_for_each_attr``, which silently stops at
    the first bad header: every byte of ``buf`` must belong to an attribute.
    """
    view = memoryview(buf).cast("B")
    ofs = 0
    end = len(view)
    while ofs < end:
        if end - ofs < NLA_HDRLEN:
            raise DatapathError(f"{where}: {end - ofs} stray bytes at offset {ofs}")
        length, attr_type = _HDR.unpack_from(view, ofs)
        if length < NLA_HDRLEN or ofs + length > end:
            raise DatapathError(
                f"{where}: attribute at offset {ofs} has length {length}, "
                f"valid is {NLA_HDRLEN}..{end - ofs}"
            )
        yield attr_type, view[ofs + NLA_HDRLEN : ofs + length]
        ofs += nla_align(length)  # the last attribute's padding may be missing
