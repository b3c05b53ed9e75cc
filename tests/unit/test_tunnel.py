"""Tunnel headers built by ovsnet.datapath.tunnel, dissected with scapy, and decapsulated back."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, GRE, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

from ovsnet.datapath import packet as P
from ovsnet.datapath import tunnel as T
from ovsnet.datapath.flow_key import (
    TNL_F_CSUM,
    TNL_F_DONT_FRAGMENT,
    TNL_F_KEY,
    TNL_F_OAM,
    Tunnel,
    extract,
)
from ovsnet.errors import DatapathError

SRC_MAC, DST_MAC = "aa:55:aa:55:00:01", "aa:55:aa:55:00:00"
HOP = T.NextHop("1.1.2.88", SRC_MAC, DST_MAC)
HOP6 = T.NextHop("2001:db8::88", SRC_MAC, DST_MAC)
OPTS = bytes.fromhex("0102 8001 deadbeef".replace(" ", "")) + bytes.fromhex("ffff0102 0a0b0c0d11121314")


def inner_frame(tos: int = 0, ttl: int = 64, payload: bytes = b"hello") -> bytes:
    return bytes(Ether(src="00:00:00:00:00:01", dst="00:00:00:00:00:02")
                 / IP(src="10.0.0.1", dst="10.0.0.2", tos=tos, ttl=ttl)
                 / UDP(sport=1234, dport=5678) / payload)


def udp_csum_ok(pkt: Ether) -> bool:
    """Recompute the outer UDP checksum with scapy and compare."""
    ip_cls = IP if IP in pkt else IPv6
    raw = bytes(pkt)
    fresh = Ether(raw)
    del fresh[UDP].chksum
    return Ether(bytes(fresh))[UDP].chksum == pkt[UDP].chksum and ip_cls in pkt


# ---------------------------------------------------------------------------
# Field by field, against scapy's dissectors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("csum", [False, True])
@pytest.mark.parametrize("df", [False, True])
def test_vxlan_ipv4_fields(csum, df):
    inner = inner_frame(tos=0xB8)
    flags = TNL_F_KEY | (TNL_F_CSUM if csum else 0) | (TNL_F_DONT_FRAGMENT if df else 0)
    tun = Tunnel(tun_id=0xABCDEF12, ipv4_dst="1.1.2.92", tos=0x20, ttl=33, flags=flags)
    out = T.encapsulate("vxlan", inner, tun, HOP, src_port=49999, ip_id=0x1234)
    pkt = Ether(out)
    assert (pkt.src, pkt.dst, pkt.type) == (SRC_MAC, DST_MAC, 0x0800)
    ip = pkt[IP]
    assert (ip.version, ip.ihl, ip.src, ip.dst, ip.proto) == (4, 5, "1.1.2.88", "1.1.2.92", 17)
    assert ip.tos == 0x20  # inner ECN is Not-ECT, so the outer ECN bits are 0
    assert ip.ttl == 33 and ip.id == 0x1234 and ip.frag == 0
    assert bool(ip.flags.DF) == df and not ip.flags.MF
    assert ip.len == len(out) - 14
    assert P.checksum(out[14:34]) == 0
    udp = pkt[UDP]
    assert (udp.sport, udp.dport, udp.len) == (49999, 4789, len(out) - 34)
    if csum:
        assert udp.chksum != 0 and udp_csum_ok(pkt)
    else:
        assert udp.chksum == 0
    vx = pkt[VXLAN]
    assert vx.flags == 0x08 and vx.vni == 0xEF12 | 0xCD0000  # low 24 bits of tun_id
    assert out[42:50] == bytes.fromhex("08000000") + bytes.fromhex("cdef1200")
    assert bytes(vx.payload) == inner


def test_vxlan_dst_port_from_tunnel_info():
    tun = Tunnel(tun_id=5, ipv4_dst="1.1.2.92", tp_dst=8472, flags=TNL_F_KEY)
    assert Ether(T.encapsulate("vxlan", inner_frame(), tun, HOP))[UDP].dport == 8472
    tun = Tunnel(tun_id=5, ipv4_dst="1.1.2.92", flags=TNL_F_KEY)
    assert Ether(T.encapsulate("vxlan", inner_frame(), tun, HOP, dst_port=4790))[UDP].dport == 4790


@pytest.mark.parametrize("oam", [False, True])
@pytest.mark.parametrize("opts", [b"", OPTS, bytes.fromhex("01020301aabbccdd")])
def test_geneve_fields(oam, opts):
    inner = inner_frame()
    flags = TNL_F_KEY | TNL_F_CSUM | (TNL_F_OAM if oam else 0)
    tun = Tunnel(tun_id=0x123456, ipv4_dst="1.1.2.92", ttl=64, flags=flags, geneve_opts=opts)
    out = T.encapsulate("geneve", inner, tun, HOP, src_port=1, ip_id=9)
    pkt = Ether(out)
    assert pkt[UDP].dport == 6081 and pkt[UDP].sport == 1 and udp_csum_ok(pkt)
    g = pkt[GENEVE]
    assert g.version == 0 and g.optionlen == len(opts) // 4
    assert g.oam == oam
    types = [o.type for o in g.options]
    assert g.critical == any(t & 0x80 for t in types)
    assert g.proto == 0x6558 and g.vni == 0x123456 and g.reserved == 0 and g.reserved2 == 0
    assert out[50 : 50 + len(opts)] == opts
    assert out[50 + len(opts) :] == inner


@pytest.mark.parametrize("flags", [0, TNL_F_KEY, TNL_F_CSUM, TNL_F_KEY | TNL_F_CSUM])
def test_gre_fields(flags):
    inner = inner_frame(payload=b"odd")  # odd length exercises the checksum's last byte
    tun = Tunnel(tun_id=0x1_2345_6789, ipv4_dst="1.1.2.92", ttl=64, flags=flags)
    out = T.encapsulate("gre", inner, tun, HOP, ip_id=3)
    pkt = Ether(out)
    assert pkt[IP].proto == 47
    gre = pkt[GRE]
    assert gre.proto == 0x6558 and gre.version == 0 and gre.routing_present == 0
    assert gre.key_present == bool(flags & TNL_F_KEY)
    assert gre.chksum_present == bool(flags & TNL_F_CSUM)
    assert gre.seqnum_present == 0
    if flags & TNL_F_KEY:
        assert gre.key == 0x2345_6789  # tunnel_id_to_key32: the low 32 bits
    if flags & TNL_F_CSUM:
        assert P.checksum(out[34:]) == 0
        fresh = Ether(out)
        del fresh[GRE].chksum
        assert Ether(bytes(fresh))[GRE].chksum == gre.chksum
    hlen = 4 + 4 * bool(flags & TNL_F_KEY) + 4 * bool(flags & TNL_F_CSUM)
    assert out[34 + hlen :] == inner


@pytest.mark.parametrize("kind", ["vxlan", "geneve"])
def test_ipv6_outer(kind):
    inner = inner_frame(tos=0x02)  # ECT(0)
    tun = Tunnel(tun_id=7, ipv6_dst="2001:db8::92", tos=0x10, ttl=0, flags=TNL_F_KEY | TNL_F_CSUM)
    out = T.encapsulate(kind, inner, tun, HOP6, src_port=40000)
    pkt = Ether(out)
    ip6 = pkt[IPv6]
    assert pkt.type == 0x86DD and ip6.src == "2001:db8::88" and ip6.dst == "2001:db8::92"
    assert ip6.tc == 0x12 and ip6.fl == 0 and ip6.hlim == 64 and ip6.nh == 17
    assert ip6.plen == len(out) - 54
    assert udp_csum_ok(pkt)
    got_inner, meta = T.decapsulate(kind, out)
    assert got_inner == inner
    assert meta.ipv6_src == "2001:db8::88" and meta.ipv6_dst == "2001:db8::92"
    assert (meta.tos, meta.ttl, meta.flags) == (0x12, 64, TNL_F_KEY | TNL_F_CSUM)


def test_gre_ipv6_refused():
    tun = Tunnel(ipv6_dst="2001:db8::92", flags=TNL_F_KEY)
    with pytest.raises(DatapathError, match="IPv4 only"):
        T.encapsulate("gre", inner_frame(), tun, HOP6)


@pytest.mark.parametrize(
    ("inner_tos", "tun_tos", "outer_tos"),
    [(0x00, 0x00, 0x00), (0x01, 0x00, 0x01), (0x02, 0xB8, 0xBA), (0x03, 0x00, 0x02),
     (0x00, 0x03, 0x00), (0xFC, 0x01, 0x00)],
)
def test_ecn_encapsulation(inner_tos, tun_tos, outer_tos):
    tun = Tunnel(tun_id=1, ipv4_dst="1.1.2.92", tos=tun_tos, ttl=64, flags=TNL_F_KEY)
    assert Ether(T.encapsulate("vxlan", inner_frame(tos=inner_tos), tun, HOP))[IP].tos == outer_tos


def test_ecn_of_non_ip_inner_is_cleared():
    arp = bytes(Ether(src="00:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff") / ARP(pdst="10.0.0.2"))
    tun = Tunnel(tun_id=1, ipv4_dst="1.1.2.92", tos=0xB9, flags=TNL_F_KEY)
    assert Ether(T.encapsulate("geneve", arp, tun, HOP))[IP].tos == 0xB8


@pytest.mark.parametrize(("kind", "ttl"), [("vxlan", 64), ("geneve", 64), ("gre", 17)])
def test_ttl_zero(kind, ttl):
    tun = Tunnel(tun_id=1, ipv4_dst="1.1.2.92", ttl=0, flags=TNL_F_KEY)
    assert Ether(T.encapsulate(kind, inner_frame(ttl=17), tun, HOP))[IP].ttl == ttl


def test_tunnel_source_address_overrides_route():
    tun = Tunnel(tun_id=1, ipv4_src="1.1.2.99", ipv4_dst="1.1.2.92", flags=TNL_F_KEY)
    assert Ether(T.encapsulate("vxlan", inner_frame(), tun, HOP))[IP].src == "1.1.2.99"


def test_bad_geneve_options_refused():
    tun = Tunnel(tun_id=1, ipv4_dst="1.1.2.92", flags=TNL_F_KEY, geneve_opts=bytes.fromhex("01020302aabbccdd"))
    with pytest.raises(DatapathError, match="malformed"):
        T.encapsulate("geneve", inner_frame(), tun, HOP)


def test_bad_arguments():
    with pytest.raises(DatapathError, match="tunnel kind"):
        T.encapsulate("stt", inner_frame(), Tunnel(ipv4_dst="1.1.2.92"), HOP)
    with pytest.raises(DatapathError, match="destination"):
        T.encapsulate("vxlan", inner_frame(), Tunnel(tun_id=1), HOP)
    with pytest.raises(TypeError):
        T.encapsulate("vxlan", inner_frame(), "1.1.2.92", HOP)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Source port
# ---------------------------------------------------------------------------


def test_udp_src_port_ranges():
    for h in (0, 1, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF, 0x12345678):
        assert 32768 <= T.udp_src_port(h, T.KERNEL_VXLAN_PORT_RANGE) < 60999
        assert 1 <= T.udp_src_port(h, T.KERNEL_GENEVE_PORT_RANGE) < 65535
        assert 32768 <= T.udp_src_port(h, T.USERSPACE_PORT_RANGE, obfuscate=False) < 61000
    # The kernel folds the low half into the high half before scaling.
    assert T.udp_src_port(0x0000_8000, (0, 65536)) == 0x8000
    assert T.udp_src_port(0x0000_8000, (0, 65536), obfuscate=False) == 0


def test_hash_5tuple_follows_the_flow():
    a = extract(inner_frame())
    b = extract(bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1234, dport=5679)))
    c = extract(bytes(Ether(src="02:00:00:00:00:09") / IP(src="10.0.0.1", dst="10.0.0.2", ttl=3)
                      / UDP(sport=1234, dport=5678) / b"other payload"))
    assert T.hash_5tuple(a) != T.hash_5tuple(b)
    assert T.hash_5tuple(a) == T.hash_5tuple(c)  # MACs, TTL and payload are not hashed
    # Non-IP frames hash to the basis only, as miniflow_hash_5tuple.
    lldp = extract(bytes(Ether(type=0x88CC) / Raw(b"x" * 20)))
    assert T.hash_5tuple(lldp) == P.hash_finish(0, 42)


# ---------------------------------------------------------------------------
# Decapsulation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", T.TUNNEL_KINDS)
def test_round_trip_metadata(kind):
    inner = inner_frame(tos=0x01)
    opts = OPTS if kind == "geneve" else b""
    tun = Tunnel(tun_id=0x55AA, ipv4_dst="1.1.2.92", tos=0x20, ttl=50,
                 flags=TNL_F_KEY | TNL_F_CSUM | TNL_F_DONT_FRAGMENT, geneve_opts=opts)
    out = T.encapsulate(kind, inner, tun, HOP, src_port=50000)
    got, meta = T.decapsulate(kind, out)
    assert got == inner
    assert meta.tun_id == 0x55AA
    assert (meta.ipv4_src, meta.ipv4_dst, meta.tos, meta.ttl) == ("1.1.2.88", "1.1.2.92", 0x21, 50)
    # No receive path sets TNL_F_DONT_FRAGMENT from the outer DF bit.
    assert meta.flags == TNL_F_KEY | TNL_F_CSUM
    assert meta.geneve_opts == opts
    if kind == "gre":
        assert (meta.tp_src, meta.tp_dst) == (0, 0)
    else:
        assert (meta.tp_src, meta.tp_dst) == (50000, 4789 if kind == "vxlan" else 6081)


def test_gre_without_key_has_no_key_flag():
    out = T.encapsulate("gre", inner_frame(), Tunnel(tun_id=9, ipv4_dst="1.1.2.92"), HOP)
    _, meta = T.decapsulate("gre", out)
    assert meta.flags == 0 and meta.tun_id == 0


def _vxlan(**over) -> bytes:
    tun = Tunnel(tun_id=10, ipv4_dst="1.1.2.92", ttl=64, flags=TNL_F_KEY | TNL_F_CSUM)
    return T.encapsulate("vxlan", over.get("inner", inner_frame()), tun, HOP, src_port=40000)


def _patch(frame: bytes, offset: int, data: bytes, fix_ip: bool = True) -> bytes:
    out = bytearray(frame)
    out[offset : offset + len(data)] = data
    if fix_ip and frame[12:14] == b"\x08\x00":
        out[24:26] = b"\x00\x00"
        out[24:26] = struct.pack(">H", P.checksum(out[14:34]))
    return bytes(out)


def _no_udp_csum(frame: bytes) -> bytes:
    return _patch(frame, 40, b"\x00\x00")


VXLAN_BAD = [
    ("outer_short", lambda: _vxlan()[:10]),
    ("not_ip", lambda: _patch(_vxlan(), 12, b"\x08\x06")),
    ("ip_header", lambda: _patch(_vxlan(), 14, b"\x44")),
    ("ip_header", lambda: _patch(_vxlan(), 14, b"\x65")),
    ("ip_header", lambda: _patch(_vxlan(), 16, b"\xff\xff")),
    ("ip_csum", lambda: _patch(_vxlan(), 24, b"\x12\x34", fix_ip=False)),
    ("ip_fragment", lambda: _patch(_vxlan(), 20, b"\x20\x00")),
    ("wrong_proto", lambda: _patch(_vxlan(), 23, b"\x06")),
    ("udp_csum", lambda: _patch(_vxlan(), 60, b"\xff")),
    ("udp_header", lambda: _patch(_vxlan(), 38, b"\x00\x04")),
    ("udp_port", lambda: _no_udp_csum(_patch(_vxlan(), 36, b"\x12\xb6"))),
    ("vxlan_flags", lambda: _no_udp_csum(_patch(_vxlan(), 42, b"\x00"))),
    ("vxlan_reserved", lambda: _no_udp_csum(_patch(_vxlan(), 42, b"\x0c"))),
    ("vxlan_reserved", lambda: _no_udp_csum(_patch(_vxlan(), 49, b"\x01"))),
    ("inner_short", lambda: _vxlan(inner=b"\x00" * 13)),
    ("ecn", lambda: _no_udp_csum(_patch(_vxlan(), 15, b"\x03"))),
]


@pytest.mark.parametrize(("reason", "make"), VXLAN_BAD, ids=[r for r, _ in VXLAN_BAD])
def test_vxlan_malformed_dropped(reason, make):
    with pytest.raises(T.TunnelDrop) as info:
        T.decapsulate("vxlan", make())
    assert info.value.reason == reason
    assert reason in T.DROP_REASONS


def test_vxlan_loop_and_not_local():
    frame = _vxlan()
    with pytest.raises(T.TunnelDrop, match="own") as info:
        T.decapsulate("vxlan", frame, device_mac="00:00:00:00:00:01")
    assert info.value.reason == "loop"
    with pytest.raises(T.TunnelDrop) as info:
        T.decapsulate("vxlan", frame, local_addrs=frozenset({"1.1.2.1"}))
    assert info.value.reason == "not_local"
    assert T.decapsulate("vxlan", frame, local_addrs=frozenset({"1.1.2.92"}))[0] == inner_frame()


def test_vxlan_zero_udp_checksum_means_no_csum_flag():
    _, meta = T.decapsulate("vxlan", _no_udp_csum(_vxlan()))
    assert meta.flags == TNL_F_KEY


def _geneve(opts: bytes = b"") -> bytes:
    tun = Tunnel(tun_id=10, ipv4_dst="1.1.2.92", ttl=64, flags=TNL_F_KEY, geneve_opts=opts)
    return T.encapsulate("geneve", inner_frame(), tun, HOP, src_port=40000)


@pytest.mark.parametrize(
    ("reason", "make"),
    [
        ("geneve_version", lambda: _patch(_geneve(), 42, b"\x40")),
        ("geneve_proto", lambda: _patch(_geneve(), 44, b"\x08\x00")),
        ("geneve_short", lambda: _patch(_geneve(), 42, b"\x3f")),
        ("geneve_short", lambda: _geneve()[:46]),
        ("udp_port", lambda: _patch(_geneve(), 36, b"\x12\xb5")),
        ("wrong_proto", lambda: _patch(_geneve(), 23, b"\x2f")),
    ],
)
def test_geneve_malformed_dropped(reason, make):
    frame = make()
    if reason == "geneve_short" and len(frame) == 46:
        # A cut frame: fix the IP and UDP lengths so that only Geneve is short.
        frame = _patch(_patch(frame, 16, struct.pack(">H", 32)), 38, struct.pack(">H", 12))
    with pytest.raises(T.TunnelDrop) as info:
        T.decapsulate("geneve", frame)
    assert info.value.reason == reason


def test_geneve_critical_options_are_passed_up():
    # A flow-based (collect_md) Geneve device never drops critical options.
    frame = _geneve(OPTS)
    assert frame[43] & 0x40
    inner, meta = T.decapsulate("geneve", frame)
    assert inner == inner_frame() and meta.geneve_opts == OPTS


def _gre(flags: int = TNL_F_KEY | TNL_F_CSUM) -> bytes:
    tun = Tunnel(tun_id=10, ipv4_dst="1.1.2.92", ttl=64, flags=flags)
    return T.encapsulate("gre", inner_frame(), tun, HOP)


@pytest.mark.parametrize(
    ("reason", "make"),
    [
        ("gre_flags", lambda: _patch(_gre(0), 35, b"\x01")),  # version 1
        ("gre_flags", lambda: _patch(_gre(0), 34, b"\x40")),  # routing
        ("gre_csum", lambda: _patch(_gre(), 50, b"\xff")),
        ("gre_proto", lambda: _patch(_gre(0), 36, b"\x08\x00")),
        ("gre_short", lambda: _patch(_gre(0), 34, b"\xb0")),  # C|K|S: 16 bytes, payload too short?
    ],
)
def test_gre_malformed_dropped(reason, make):
    frame = make()
    if reason == "gre_short":
        frame = _patch(frame[:44], 16, struct.pack(">H", 30))
    with pytest.raises(T.TunnelDrop) as info:
        T.decapsulate("gre", frame)
    assert info.value.reason == reason


def test_gre_sequence_number_accepted_and_ignored():
    out = bytearray(_gre(TNL_F_KEY))
    # Insert a sequence number after the key: S bit, 4 more bytes.
    frame = bytes(out[:34]) + b"\x30\x00\x65\x58" + bytes(out[38:42]) + b"\x00\x00\x00\x07" + bytes(out[42:])
    frame = _patch(frame, 16, struct.pack(">H", len(frame) - 14))
    inner, meta = T.decapsulate("gre", frame)
    assert inner == inner_frame() and meta.tun_id == 10 and meta.flags == TNL_F_KEY


def test_ecn_decapsulation_sets_ce():
    tun = Tunnel(tun_id=1, ipv4_dst="1.1.2.92", tos=0x03, ttl=64, flags=TNL_F_KEY)
    frame = T.encapsulate("vxlan", inner_frame(tos=0x01), tun, HOP)
    frame = _patch(frame, 15, b"\x03")  # a router marked the outer packet CE
    inner, meta = T.decapsulate("vxlan", frame)
    assert meta.tos == 0x03
    ip = Ether(inner)[IP]
    assert ip.tos == 0x03
    assert P.checksum(inner[14:34]) == 0  # the inner checksum was updated


def test_fragment_ipv4():
    tun = Tunnel(tun_id=1, ipv4_dst="1.1.2.92", ttl=64, flags=TNL_F_KEY)
    big = T.encapsulate("vxlan", inner_frame(payload=b"z" * 3000), tun, HOP, ip_id=77)
    frags = T.fragment_ipv4(big, 1500)
    assert len(frags) == 3
    data = b""
    for i, f in enumerate(frags):
        ip = Ether(f)[IP]
        assert ip.id == 77 and ip.len <= 1500 and P.checksum(f[14:34]) == 0
        assert ip.frag * 8 == len(data)
        assert bool(ip.flags.MF) == (i < 2)
        data += f[34 : 14 + ip.len]
    assert data == big[34:]
    assert T.fragment_ipv4(big, 9000) == [big]


def test_vlan_tagged_inner_round_trip():
    inner = bytes(Ether() / Dot1Q(vlan=10) / IP() / ICMP())
    tun = Tunnel(tun_id=1, ipv4_dst="1.1.2.92", flags=TNL_F_KEY)
    assert T.decapsulate("vxlan", T.encapsulate("vxlan", inner, tun, HOP))[0] == inner


def test_static_routes():
    r = T.StaticRoutes()
    r.add("0.0.0.0/0", src_ip="192.0.2.1", src_mac=SRC_MAC, dst_mac="02:00:00:00:00:01")
    r.add("192.0.2.0/24", src_ip="192.0.2.1", src_mac=SRC_MAC, dst_mac="02:00:00:00:00:02", mtu=9000)
    r.add("2001:db8::/32", src_ip="2001:db8::1", src_mac=SRC_MAC, dst_mac="02:00:00:00:00:03")
    assert r("192.0.2.9").dst_mac.endswith("02") and r("192.0.2.9").mtu == 9000
    assert r("198.51.100.1").dst_mac.endswith("01")
    assert r("2001:db8::5").dst_mac.endswith("03")
    assert r("2001:db9::5") is None
    with pytest.raises(DatapathError, match="IP version"):
        r.add("10.0.0.0/8", src_ip="2001:db8::1", src_mac=SRC_MAC, dst_mac=SRC_MAC)


# ---------------------------------------------------------------------------
# Property: any inner packet and tunnel parameters survive a round trip
# ---------------------------------------------------------------------------

_inner_st = st.one_of(
    st.builds(lambda sport, dport, tos, pl: bytes(Ether() / IP(tos=tos) / TCP(sport=sport, dport=dport) / pl),
              st.integers(0, 65535), st.integers(0, 65535), st.integers(0, 255), st.binary(max_size=64)),
    st.builds(lambda tc, pl: bytes(Ether() / IPv6(tc=tc) / UDP() / pl),
              st.integers(0, 255), st.binary(max_size=64)),
    st.builds(lambda b: bytes(Ether(type=0x88B5)) + b, st.binary(max_size=80)),
)


def _opts_st():
    opt = st.builds(lambda cls, typ, data: struct.pack(">HBB", cls, typ, len(data) // 4) + data,
                    st.integers(0, 65535), st.integers(0, 255),
                    st.integers(0, 4).map(lambda n: bytes(range(4 * n))))
    return st.lists(opt, max_size=4).map(b"".join)


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(T.TUNNEL_KINDS),
    inner=_inner_st,
    tun_id=st.integers(0, 2**64 - 1),
    tos=st.integers(0, 255),
    ttl=st.integers(1, 255),
    flags=st.integers(0, 15),
    opts=_opts_st(),
    sport=st.integers(1, 65535),
    v6=st.booleans(),
)
def test_round_trip_property(kind, inner, tun_id, tos, ttl, flags, opts, sport, v6):
    v6 = v6 and kind != "gre"
    opts = opts if kind == "geneve" else b""
    if v6:
        tun = Tunnel(tun_id=tun_id, ipv6_dst="2001:db8::92", tos=tos, ttl=ttl, flags=flags,
                     geneve_opts=opts)
        hop = HOP6
    else:
        tun = Tunnel(tun_id=tun_id, ipv4_dst="1.1.2.92", tos=tos, ttl=ttl, flags=flags,
                     geneve_opts=opts)
        hop = HOP
    out = T.encapsulate(kind, inner, tun, hop, src_port=sport, ip_id=sport)
    pkt = Ether(out)
    outer_ip = pkt[IPv6] if v6 else pkt[IP]
    if not v6:
        assert P.checksum(out[14:34]) == 0
        assert bool(outer_ip.flags.DF) == bool(flags & TNL_F_DONT_FRAGMENT)
    got, meta = T.decapsulate(kind, out)
    assert got == inner
    assert meta.ttl == ttl
    assert meta.tos & ~3 == tos & ~3
    if kind == "gre":
        want_flags = flags & (TNL_F_KEY | TNL_F_CSUM)
        assert meta.tun_id == (tun_id & 0xFFFFFFFF if flags & TNL_F_KEY else 0)
    else:
        want_flags = TNL_F_KEY | (flags & TNL_F_CSUM) | (flags & TNL_F_OAM if kind == "geneve" else 0)
        assert meta.tun_id == tun_id & 0xFFFFFF
        assert meta.tp_src == sport
        if flags & TNL_F_CSUM:
            assert udp_csum_ok(pkt)
        else:
            assert pkt[UDP].chksum == 0
    assert meta.flags == want_flags
    assert meta.geneve_opts == opts
