"""Tests of ovsnet.datapath.actions: the kernel's datapath actions on packet bytes.

Every test body runs against both implementations through the ``impl``
fixture: the pure-Python reference and the compiled ``ovsnet._actions``
(skipped when not built, except under ``CI=true``, where that fails).
Checksums are checked by letting scapy recompute them from scratch; the
hypothesis tests throw random packets and random valid action lists at both
implementations and require identical results, and check that the in-flight
key of a recirculation is the key extracted from the recirculated packet.
"""

from __future__ import annotations

import os
import random
import socket
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6, IPv6ExtHdrFragment, IPv6ExtHdrRouting
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.layers.sctp import SCTP

from ovsnet.datapath import actions as A
from ovsnet.datapath import flow_key as FK
from ovsnet.datapath.flow_key import KEY_SIZE, FlowKey, Tunnel
from ovsnet.datapath.odp_attrs import (
    ActionAttr,
    CheckPktLenAttr,
    KeyAttr,
    SampleAttr,
    TunnelAttr,
    UserspaceAttr,
    nla,
    nla_u32,
)
from ovsnet.errors import DatapathError

IN_CI = os.environ.get("CI") == "true"
MAC_A, MAC_B = "00:1b:21:3c:4d:5e", "52:54:00:ab:cd:ef"
IP_A, IP_B = "192.0.2.1", "198.51.100.7"
V6_A, V6_B = "2001:db8::1", "2001:db8::2"


@pytest.fixture(scope="module", params=["python", "cython"])
def impl(request):
    if request.param == "python":
        return A.reference
    if A.native is None:
        if IN_CI:
            pytest.fail("ovsnet._actions is not built: CI must build the extensions")
        pytest.skip("ovsnet._actions is not built (pip install -e .)")
    return A.native


# ---------------------------------------------------------------------------
# Action builders (the netlink encoding userspace sends the kernel)
# ---------------------------------------------------------------------------


def output(port: int) -> bytes:
    return nla_u32(ActionAttr.OUTPUT, port)


def set_key(attr: int, value: bytes) -> bytes:
    return nla(ActionAttr.SET, nla(attr, value))


def set_masked(attr: int, value: bytes, mask: bytes) -> bytes:
    value = bytes(v & m for v, m in zip(value, mask, strict=True))
    return nla(ActionAttr.SET_MASKED, nla(attr, value + mask))


def ipv4_key(src="0.0.0.0", dst="0.0.0.0", proto=0, tos=0, ttl=0, frag=0) -> bytes:
    return socket.inet_aton(src) + socket.inet_aton(dst) + bytes((proto, tos, ttl, frag))


def ipv4_mask(src=0, dst=0, tos=0, ttl=0) -> bytes:
    return struct.pack("!II", src, dst) + bytes((0, tos, ttl, 0))


def ipv6_key(src="::", dst="::", label=0, tclass=0, hlimit=0) -> bytes:
    return (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
            + struct.pack("!I", label) + bytes((0, tclass, hlimit, 0)))


def ipv6_mask(src=False, dst=False, label=0, tclass=0, hlimit=0) -> bytes:
    return (bytes([0xFF if src else 0] * 16) + bytes([0xFF if dst else 0] * 16)
            + struct.pack("!I", label) + bytes((0, tclass, hlimit, 0)))


def ports_key(src=0, dst=0) -> bytes:
    return struct.pack("!HH", src, dst)


def push_vlan(vid: int, tpid: int = 0x8100, pcp: int = 0) -> bytes:
    return nla(ActionAttr.PUSH_VLAN, struct.pack("!HH", tpid, (pcp << 13) | 0x1000 | vid))


POP_VLAN = nla(ActionAttr.POP_VLAN)
CT_CLEAR = nla(ActionAttr.CT_CLEAR)


def push_mpls(label: int, ethertype: int = 0x8847, ttl: int = 64) -> bytes:
    return nla(ActionAttr.PUSH_MPLS, struct.pack("!IH", (label << 12) | 0x100 | ttl, ethertype) + bytes(2))


def pop_mpls(ethertype: int) -> bytes:
    return nla(ActionAttr.POP_MPLS, struct.pack("!H", ethertype))


def trunc(n: int) -> bytes:
    return nla_u32(ActionAttr.TRUNC, n)


def recirc(n: int) -> bytes:
    return nla_u32(ActionAttr.RECIRC, n)


def hash_(alg: int, basis: int) -> bytes:
    return nla(ActionAttr.HASH, struct.pack("=II", alg, basis))


def clone(*acts: bytes) -> bytes:
    return nla(ActionAttr.CLONE, b"".join(acts))


def sample(prob: int, *acts: bytes) -> bytes:
    return nla(ActionAttr.SAMPLE, nla_u32(SampleAttr.PROBABILITY, prob)
               + nla(SampleAttr.ACTIONS, b"".join(acts)))


def check_pkt_len(size: int, gt: bytes, le: bytes) -> bytes:
    return nla(ActionAttr.CHECK_PKT_LEN, nla(CheckPktLenAttr.PKT_LEN, struct.pack("=H", size))
               + nla(CheckPktLenAttr.ACTIONS_IF_GREATER, gt)
               + nla(CheckPktLenAttr.ACTIONS_IF_LESS_EQUAL, le))


def userspace(pid: int, userdata: bytes | None = None, tun_port: int | None = None,
              with_actions: bool = False) -> bytes:
    body = nla_u32(UserspaceAttr.PID, pid)
    if userdata is not None:
        body += nla(UserspaceAttr.USERDATA, userdata)
    if tun_port is not None:
        body += nla_u32(UserspaceAttr.EGRESS_TUN_PORT, tun_port)
    if with_actions:
        body += nla(UserspaceAttr.ACTIONS)
    return nla(ActionAttr.USERSPACE, body)


def set_tunnel(tun_id=5001, dst="10.0.0.2", src="10.0.0.1", ttl=64, tp_dst=4789, df=True) -> bytes:
    body = (nla(TunnelAttr.ID, struct.pack("!Q", tun_id))
            + nla(TunnelAttr.IPV4_SRC, socket.inet_aton(src))
            + nla(TunnelAttr.IPV4_DST, socket.inet_aton(dst))
            + nla(TunnelAttr.TTL, bytes((ttl,)))
            + nla(TunnelAttr.TP_DST, struct.pack("!H", tp_dst)))
    if df:
        body += nla(TunnelAttr.DONT_FRAGMENT)
    return set_key(KeyAttr.TUNNEL, body)


DROP = nla_u32(ActionAttr.DROP, 0)
PCP_MAX = 0xFFFFFFFF


def _e(**kw) -> Ether:
    return Ether(**{"src": MAC_A, "dst": MAC_B, **kw})


def frame(p) -> bytes:
    return bytes(p)


def run(impl, packet, actions: bytes, in_port: int = 1, **kw) -> A.ExecResult:
    raw = bytes(packet)
    return impl.execute(raw, FK.extract(raw, in_port), actions, **kw)


def only_output(res: A.ExecResult) -> bytes:
    assert len(res.outputs) == 1, res
    return res.outputs[0].packet


def rechecked(pkt: bytes):
    """The frame with every checksum scapy knows recomputed from scratch."""
    p = Ether(pkt)
    for layer in (IP, TCP, UDP, ICMP, SCTP):
        if layer in p:
            attr = "chksum"
            if layer is UDP and p[UDP].chksum == 0:
                continue  # no checksum: nothing to recompute
            if hasattr(p[layer], attr):
                delattr(p[layer], attr)
    if IPv6 in p:
        for layer in p[IPv6].layers():
            if hasattr(layer, "cksum"):
                delattr(p[IPv6].getlayer(layer), "cksum")
    return Ether(bytes(p))


def assert_checksums_valid(pkt: bytes) -> None:
    got, want = Ether(pkt), rechecked(pkt)
    for layer in (IP, TCP, UDP, ICMP, SCTP):
        if layer in got:
            name = "chksum"
            a, b = getattr(got[layer], name), getattr(want[layer], name)
            if layer is UDP and a == 0:
                continue
            # 0x0000 and 0xffff are the same ones'-complement zero for TCP/IP
            assert a == b or {a, b} == {0, 0xFFFF} and layer is not UDP, (layer.__name__, hex(a), hex(b))
    for layer in got[IPv6].layers() if IPv6 in got else ():
        if hasattr(layer, "cksum"):
            a, b = got[IPv6].getlayer(layer).cksum, want[IPv6].getlayer(layer).cksum
            assert a == b or {a, b} == {0, 0xFFFF}, (layer.__name__, hex(a), hex(b))


# ---------------------------------------------------------------------------
# Output, empty list, drop
# ---------------------------------------------------------------------------


def test_output_copies_the_packet(impl):
    pkt = frame(_e() / IP(src=IP_A, dst=IP_B) / UDP(sport=1, dport=2) / b"payload")
    res = run(impl, pkt, output(3) + output(7))
    assert [(o.port, o.packet, o.egress_tunnel) for o in res.outputs] == [(3, pkt, None), (7, pkt, None)]
    assert not res.upcalls and not res.recircs


def test_empty_action_list_and_explicit_drop(impl):
    pkt = frame(_e() / IP() / UDP())
    res = run(impl, pkt, b"")
    assert res.full() == A.ExecResult().full()
    res = run(impl, pkt, output(1) + DROP)
    assert len(res.outputs) == 1 and res.dropped_explicit == 1
    res = run(impl, pkt, clone(output(2), DROP) + output(3))
    assert [o.port for o in res.outputs] == [2, 3] and res.dropped_explicit == 1


def test_meter_passes(impl):
    pkt = frame(_e() / IP() / UDP())
    assert only_output(run(impl, pkt, nla_u32(ActionAttr.METER, 3) + output(1))) == pkt


# ---------------------------------------------------------------------------
# set / set_masked: IPv4
# ---------------------------------------------------------------------------

L4_V4 = {
    "tcp": lambda: TCP(sport=40000, dport=80, flags="S") / b"hello",
    "udp": lambda: UDP(sport=5000, dport=53) / b"query",
    "icmp": lambda: ICMP() / b"ping",
}


@pytest.mark.parametrize("l4", sorted(L4_V4))
@pytest.mark.parametrize("field", ["src", "dst", "both", "ttl", "tos", "all"])
def test_set_ipv4_checksums(impl, l4, field):
    pkt = frame(_e() / IP(src=IP_A, dst=IP_B, ttl=64, tos=0x10) / L4_V4[l4]())
    value = ipv4_key(src="10.1.2.3", dst="172.16.9.8", tos=0xB8, ttl=17)
    masks = {
        "src": ipv4_mask(src=0xFFFFFFFF), "dst": ipv4_mask(dst=0xFFFFFF00),
        "both": ipv4_mask(src=0xFFFFFFFF, dst=0xFFFFFFFF), "ttl": ipv4_mask(ttl=0xFF),
        "tos": ipv4_mask(tos=0xFC), "all": ipv4_mask(0xFFFFFFFF, 0xFFFFFFFF, 0xFF, 0xFF),
    }
    res = run(impl, pkt, set_masked(KeyAttr.IPV4, value, masks[field]) + output(1))
    out = Ether(only_output(res))
    assert_checksums_valid(bytes(out))
    if field in ("src", "both", "all"):
        assert out[IP].src == "10.1.2.3"
    if field == "dst":
        assert out[IP].dst == "172.16.9.7"  # /24 mask keeps the host byte
    if field in ("ttl", "all"):
        assert out[IP].ttl == 17
    if field == "tos":
        assert out[IP].tos == 0xB8 | 0x10 & 0x03
    assert len(bytes(out)) == len(pkt)


def test_set_ipv4_unmasked_sets_every_writable_field(impl):
    pkt = frame(_e() / IP(src=IP_A, dst=IP_B, ttl=64, tos=3) / TCP() / b"x")
    res = run(impl, pkt, set_key(KeyAttr.IPV4, ipv4_key("1.2.3.4", "5.6.7.8", 6, 0x20, 9)) + output(1))
    out = Ether(only_output(res))
    assert (out[IP].src, out[IP].dst, out[IP].tos, out[IP].ttl) == ("1.2.3.4", "5.6.7.8", 0x20, 9)
    assert_checksums_valid(bytes(out))


def test_udp_checksum_zero_stays_zero(impl):
    p = _e() / IP(src=IP_A, dst=IP_B) / UDP(sport=1, dport=2, chksum=0) / b"abc"
    res = run(impl, p, set_masked(KeyAttr.IPV4, ipv4_key("9.9.9.9"), ipv4_mask(src=0xFFFFFFFF))
              + set_masked(KeyAttr.UDP, ports_key(7, 8), ports_key(0xFFFF, 0xFFFF)) + output(1))
    out = Ether(only_output(res))
    assert out[UDP].chksum == 0 and (out[UDP].sport, out[UDP].dport) == (7, 8)
    assert_checksums_valid(bytes(out))


@pytest.mark.parametrize("how", ["address", "port"])
def test_udp_checksum_that_becomes_zero_is_sent_as_ffff(impl, how):
    """A rewrite whose checksum comes out as zero must be sent as 0xffff (CSUM_MANGLED_0)."""
    base = _e() / IP(src=IP_A, dst=IP_B) / UDP(sport=1000, dport=2000) / b"0123456789"
    # Find a new source port / address whose full checksum is the zero class.
    for n in range(1, 1 << 16):
        cand = base.copy()
        if how == "port":
            cand[UDP].sport = n
        else:
            cand[IP].src = f"10.0.{n >> 8}.{n & 0xFF}"
        del cand[UDP].chksum
        if Ether(bytes(cand))[UDP].chksum == 0xFFFF:
            break
    else:
        pytest.fail("no candidate found")
    if how == "port":
        acts = set_masked(KeyAttr.UDP, ports_key(n, 0), ports_key(0xFFFF, 0))
    else:
        acts = set_masked(KeyAttr.IPV4, ipv4_key(f"10.0.{n >> 8}.{n & 0xFF}"), ipv4_mask(src=0xFFFFFFFF))
    out = Ether(only_output(run(impl, base, acts + output(1))))
    assert out[UDP].chksum == 0xFFFF


def test_ipv4_later_fragment_keeps_l4_bytes_first_fragment_updates_them(impl):
    payload = bytes(range(64))
    first = _e() / IP(src=IP_A, dst=IP_B, flags="MF", frag=0, proto=6) / TCP(sport=1, dport=2) / payload
    later = _e() / IP(src=IP_A, dst=IP_B, frag=3, proto=6) / payload
    acts = set_masked(KeyAttr.IPV4, ipv4_key("10.9.8.7"), ipv4_mask(src=0xFFFFFFFF)) + output(1)
    out = only_output(run(impl, later, acts))
    assert out[34:] == bytes(later)[34:] and Ether(out)[IP].src == "10.9.8.7"
    assert_checksums_valid(out)
    out = Ether(only_output(run(impl, first, acts)))
    # the whole datagram is not here; the incremental update must equal the
    # change a full recomputation over the fragment would see
    assert out[TCP].chksum != Ether(bytes(first))[TCP].chksum
    assert_checksums_valid(bytes(out))


def test_set_on_a_packet_without_that_header_does_nothing(impl):
    arp = frame(_e() / ARP(psrc=IP_A, pdst=IP_B))
    acts = (set_masked(KeyAttr.IPV4, ipv4_key("1.1.1.1"), ipv4_mask(src=0xFFFFFFFF))
            + set_masked(KeyAttr.TCP, ports_key(1, 1), ports_key(0xFFFF, 0xFFFF))
            + set_masked(KeyAttr.IPV6, ipv6_key(src="::1"), ipv6_mask(src=True))
            + pop_mpls(0x0800) + output(1))
    assert only_output(run(impl, arp, acts)) == arp
    assert only_output(run(impl, b"\x01\x02", acts + push_vlan(3) + POP_VLAN)) == b"\x01\x02"


# ---------------------------------------------------------------------------
# IPv6
# ---------------------------------------------------------------------------

L4_V6 = {
    "tcp": lambda: TCP(sport=40000, dport=443) / b"data",
    "udp": lambda: UDP(sport=5353, dport=5353) / b"mdns",
    "icmpv6": lambda: ICMPv6EchoRequest(data=b"ping"),
}


@pytest.mark.parametrize("l4", sorted(L4_V6))
@pytest.mark.parametrize("field", ["src", "dst", "tclass", "label", "hlimit"])
def test_set_ipv6(impl, l4, field):
    pkt = frame(_e() / IPv6(src=V6_A, dst=V6_B, tc=0x11, fl=0x12345, hlim=64) / L4_V6[l4]())
    value = ipv6_key(src="2001:db8:ffff::9", dst="fe80::1", label=0xABCDE, tclass=0xB8, hlimit=3)
    mask = {"src": ipv6_mask(src=True), "dst": ipv6_mask(dst=True), "tclass": ipv6_mask(tclass=0xFC),
            "label": ipv6_mask(label=0xFFFFF), "hlimit": ipv6_mask(hlimit=0xFF)}[field]
    res = run(impl, pkt, set_masked(KeyAttr.IPV6, value, mask) + output(1))
    out = Ether(only_output(res))
    assert_checksums_valid(bytes(out))
    want = {"src": ("src", "2001:db8:ffff::9"), "dst": ("dst", "fe80::1"),
            "tclass": ("tc", 0xB8 | 0x11 & 3), "label": ("fl", 0xABCDE), "hlimit": ("hlim", 3)}[field]
    assert getattr(out[IPv6], want[0]) == want[1]


@pytest.mark.parametrize("segleft", [0, 1])
def test_ipv6_dst_behind_a_routing_header(impl, segleft):
    """set_ipv6: with a routing header still to visit, the L4 checksum is left alone."""
    p = (_e() / IPv6(src=V6_A, dst=V6_B) / IPv6ExtHdrRouting(addresses=["2001:db8::99"], segleft=segleft)
         / UDP(sport=1, dport=2) / b"data")
    before = Ether(bytes(p))[UDP].chksum
    out = Ether(only_output(run(impl, p, set_masked(KeyAttr.IPV6, ipv6_key(dst="2001:db8::77"),
                                                   ipv6_mask(dst=True)) + output(1))))
    assert out[IPv6].dst == "2001:db8::77"
    if segleft:
        assert out[UDP].chksum == before
    else:
        assert out[UDP].chksum != before
        assert_checksums_valid(bytes(out))


# ---------------------------------------------------------------------------
# L4 ports, SCTP, Ethernet, metadata
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("proto", ["tcp", "udp", "sctp"])
@pytest.mark.parametrize("ipv", [4, 6])
def test_set_ports(impl, proto, ipv):
    l4 = {"tcp": TCP(sport=1111, dport=2222) / b"abc", "udp": UDP(sport=1111, dport=2222) / b"abc",
          "sctp": SCTP(sport=1111, dport=2222) / b"abcd"}[proto]
    l3 = IP(src=IP_A, dst=IP_B) if ipv == 4 else IPv6(src=V6_A, dst=V6_B)
    pkt = frame(_e() / l3 / l4)
    attr = {"tcp": KeyAttr.TCP, "udp": KeyAttr.UDP, "sctp": KeyAttr.SCTP}[proto]
    res = run(impl, pkt, set_masked(attr, ports_key(3333, 0x1234), ports_key(0xFFFF, 0xFF00))
              + userspace(9) + output(1))
    out = Ether(only_output(res))
    layer = {"tcp": TCP, "udp": UDP, "sctp": SCTP}[proto]
    assert (out[layer].sport, out[layer].dport) == (3333, 0x1200 | (2222 & 0xFF))
    assert_checksums_valid(bytes(out))
    key = FlowKey(res.upcalls[0].key)
    assert (key.tp_src, key.tp_dst) == (3333, 0x1200 | (2222 & 0xFF))


def test_sctp_checksum_error_is_carried_through(impl):
    good = _e() / IP(src=IP_A, dst=IP_B) / SCTP(sport=1, dport=2) / b"data"
    bad = good.copy()
    bad[SCTP].chksum = Ether(bytes(good))[SCTP].chksum ^ 0x5A
    acts = set_masked(KeyAttr.SCTP, ports_key(9, 0), ports_key(0xFFFF, 0)) + output(1)
    g = Ether(only_output(run(impl, good, acts)))
    b = Ether(only_output(run(impl, bad, acts)))
    assert g[SCTP].chksum ^ b[SCTP].chksum == 0x5A
    assert_checksums_valid(bytes(g))


def test_set_ethernet_and_metadata(impl):
    pkt = frame(_e() / IP() / UDP())
    eth = bytes.fromhex("aabbccddeeff") + bytes.fromhex("112233445566")  # src, dst
    acts = (set_masked(KeyAttr.ETHERNET, eth, bytes([0xFF] * 6 + [0, 0, 0, 0, 0, 0xFF]))
            + set_key(KeyAttr.SKB_MARK, struct.pack("=I", 0x1234))
            + set_masked(KeyAttr.PRIORITY, struct.pack("=I", 0x50), struct.pack("=I", 0xF0))
            + userspace(5) + output(2))
    res = run(impl, pkt, acts)
    out = Ether(only_output(res))
    assert out.src == "aa:bb:cc:dd:ee:ff" and out.dst == MAC_B[:-2] + "66"
    key = FlowKey(res.upcalls[0].key)
    assert (key.dl_src, key.dl_dst, key.skb_mark, key.priority) == (out.src, out.dst, 0x1234, 0x50)


def test_ct_clear(impl):
    pkt = frame(_e() / IP() / UDP())
    key = FK.extract(pkt, 1, ct_state=0x21, ct_zone=5, ct_mark=7, ct_label=99)
    res = impl.execute(pkt, key, userspace(1) + CT_CLEAR + userspace(2))
    before, after = FlowKey(res.upcalls[0].key), FlowKey(res.upcalls[1].key)
    assert (before.ct_state, before.ct_zone, before.ct_mark, before.ct_label) == (0x21, 5, 7, 99)
    assert (after.ct_state, after.ct_zone, after.ct_mark, after.ct_label) == (0, 0, 0, 0)


# ---------------------------------------------------------------------------
# VLAN and MPLS
# ---------------------------------------------------------------------------


def test_push_and_pop_vlan(impl):
    inner = IP(src=IP_A, dst=IP_B) / UDP() / b"x"
    pkt = frame(_e() / inner)
    res = run(impl, pkt, push_vlan(10, pcp=5) + output(1) + push_vlan(20, tpid=0x88A8) + output(2)
              + POP_VLAN + output(3) + POP_VLAN + output(4) + POP_VLAN + output(5))
    outs = [o.packet for o in res.outputs]
    assert outs[0] == frame(_e() / Dot1Q(vlan=10, prio=5) / inner)
    assert outs[1] == frame(_e(type=0x88A8) / Dot1AD(vlan=20, type=0x8100) / Dot1Q(vlan=10, prio=5) / inner)
    assert outs[2] == outs[0] and outs[3] == pkt and outs[4] == pkt


def test_vlan_key_updates_and_invalidation(impl):
    pkt = frame(_e() / IP() / UDP())
    res = run(impl, pkt, push_vlan(10) + userspace(1) + push_vlan(20) + userspace(2) + recirc(1))
    k1, k2 = FlowKey(res.upcalls[0].key), FlowKey(res.upcalls[1].key)
    assert (k1.vlan_tpid, k1.vlan_tci) == (0x8100, 0x100A)
    # a second tag invalidates the key: the upcall sends it stale, recirc re-extracts
    assert k2 == k1
    rk = FlowKey(res.recircs[0].key)
    assert (rk.vlan_tci, rk.vlan1_tci, rk.recirc_id, rk.in_port) == (0x1014, 0x100A, 1, 1)
    assert rk.raw == FK.extract(res.recircs[0].packet, 1, recirc_id=1).raw


def test_push_pop_mpls(impl):
    inner = IP(src=IP_A, dst=IP_B) / UDP() / b"x"
    pkt = frame(_e() / Dot1Q(vlan=7) / inner)
    res = run(impl, pkt, push_mpls(100) + output(1) + push_mpls(200, 0x8848) + output(2)
              + pop_mpls(0x8847) + output(3) + pop_mpls(0x0800) + output(4) + recirc(5))
    o = [x.packet for x in res.outputs]
    lse = lambda label: MPLS(label=label, s=1, ttl=64)  # noqa: E731
    assert o[0] == frame(_e() / Dot1Q(vlan=7, type=0x8847) / lse(100) / inner)
    assert o[1][:18] == frame(_e() / Dot1Q(vlan=7, type=0x8848))[:18]
    assert o[1][18:22] == frame(lse(200)) and o[2] == o[0] and o[3] == pkt
    assert res.recircs[0].key == FK.extract(pkt, 1, recirc_id=5).raw


def test_set_mpls(impl):
    pkt = frame(_e() / MPLS(label=5, ttl=9, s=1) / IP() / UDP())
    res = run(impl, pkt, set_masked(KeyAttr.MPLS, struct.pack("!I", 77 << 12), struct.pack("!I", 0xFFFFF000))
              + userspace(1) + output(1))
    out = Ether(only_output(res))
    assert (out[MPLS].label, out[MPLS].ttl) == (77, 9)
    assert FlowKey(res.upcalls[0].key).mpls_lse0 == (77 << 12) | 0x100 | 9


# ---------------------------------------------------------------------------
# trunc, check_pkt_len (kernel lengths: the outer VLAN tag is not counted)
# ---------------------------------------------------------------------------


def test_trunc_applies_to_the_next_output_only(impl):
    pkt = frame(_e() / IP() / UDP() / bytes(100))
    res = run(impl, pkt, trunc(60) + output(1) + output(2) + trunc(20) + userspace(3) + output(4))
    assert [len(o.packet) for o in res.outputs] == [60, len(pkt), len(pkt)]
    assert res.outputs[0].packet == pkt[:60] and res.upcalls[0].packet == pkt[:20]


def test_trunc_on_a_vlan_frame_keeps_the_tag_and_never_cuts_into_the_header(impl):
    pkt = frame(_e() / Dot1Q(vlan=3) / IP() / UDP() / bytes(100))
    res = run(impl, pkt, trunc(60) + output(1) + trunc(14) + output(2) + trunc(60) + userspace(9))
    assert [len(o.packet) for o in res.outputs] == [64, 18]
    assert len(res.upcalls[0].packet) == 64


def test_trunc_survives_into_clone(impl):
    pkt = frame(_e() / IP() / UDP() / bytes(100))
    res = run(impl, pkt, trunc(50) + clone(output(1)) + output(2))
    assert [len(o.packet) for o in res.outputs] == [50, 50]


@pytest.mark.parametrize("tagged", [False, True])
def test_check_pkt_len(impl, tagged):
    l2 = _e() / Dot1Q(vlan=1) if tagged else _e()
    pkt = frame(l2 / IP() / UDP() / bytes(58))   # 100 bytes untagged, 104 tagged
    klen = len(pkt) - (4 if tagged else 0)
    assert klen == 100
    for size, port in ((99, 1), (100, 2), (101, 2)):
        res = run(impl, pkt, check_pkt_len(size, output(1), output(2)))
        assert [o.port for o in res.outputs] == [port], size


def test_check_pkt_len_branch_changes_do_not_leak(impl):
    pkt = frame(_e() / IP(src=IP_A) / UDP())
    change = set_masked(KeyAttr.IPV4, ipv4_key("7.7.7.7"), ipv4_mask(src=0xFFFFFFFF))
    res = run(impl, pkt, check_pkt_len(10, change + output(1), output(2)) + userspace(3) + output(4))
    assert Ether(res.outputs[0].packet)[IP].src == "7.7.7.7"
    assert res.outputs[1].packet == pkt and FlowKey(res.upcalls[0].key).nw_src == IP_A


# ---------------------------------------------------------------------------
# clone, sample
# ---------------------------------------------------------------------------


def test_clone_isolates_packet_key_and_tunnel(impl):
    pkt = frame(_e() / IP(src=IP_A, dst=IP_B) / TCP())
    inner = (set_tunnel() + set_masked(KeyAttr.IPV4, ipv4_key("1.1.1.1"), ipv4_mask(src=0xFFFFFFFF))
             + push_vlan(9) + output(1) + recirc(3))
    res = run(impl, pkt, clone(inner) + output(2) + recirc(4))
    assert Ether(res.outputs[0].packet)[IP].src == "1.1.1.1" and res.outputs[0].egress_tunnel
    assert res.outputs[1] == (2, pkt, None)
    k_in, k_out = FlowKey(res.recircs[0].key), FlowKey(res.recircs[1].key)
    assert (k_in.nw_src, k_in.vlan_tci, k_in.recirc_id) == ("1.1.1.1", 0x1009, 3)
    assert (k_out.nw_src, k_out.vlan_tci, k_out.recirc_id) == (IP_A, 0, 4)


def test_sample_probability(impl):
    pkt = frame(_e() / IP() / UDP())
    assert len(run(impl, pkt, sample(0, output(1)) + output(2)).outputs) == 1
    assert len(run(impl, pkt, sample(PCP_MAX, output(1)) + output(2)).outputs) == 2
    half = sample(PCP_MAX // 2, output(1))
    hits = [len(run(impl, pkt, half, seed=s).outputs) for s in range(400)]
    assert 140 < sum(hits) < 260
    assert hits == [len(run(impl, pkt, half, seed=s).outputs) for s in range(400)]


def test_sample_and_clone_are_the_same_in_both_implementations():
    if A.native is None:
        pytest.skip("ovsnet._actions is not built")
    pkt = frame(_e() / IP() / UDP())
    acts = b"".join(sample(PCP_MAX // 3, output(i), sample(PCP_MAX // 2, output(100 + i))) for i in range(20))
    for seed in range(50):
        key = FK.extract(pkt, 1)
        assert (A.native.execute(pkt, key, acts, seed=seed).full()
                == A.reference.execute(pkt, key, acts, seed=seed).full())


# ---------------------------------------------------------------------------
# tunnel, userspace, hash, recirc
# ---------------------------------------------------------------------------


def test_set_tunnel_is_egress_metadata_only(impl):
    pkt = frame(_e() / IP() / UDP())
    res = run(impl, pkt, output(1) + set_tunnel() + output(2) + set_tunnel(7, "10.0.0.9") + output(3)
              + userspace(4, tun_port=3) + userspace(5) + recirc(1))
    assert res.outputs[0].egress_tunnel is None
    assert all(o.packet == pkt for o in res.outputs)
    t2, t3 = FlowKey(res.outputs[1].egress_tunnel), FlowKey(res.outputs[2].egress_tunnel)
    assert (t2.tun_id, t2.tun_ipv4_src, t2.tun_ipv4_dst, t2.tun_ttl, t2.tun_tp_dst) == (
        5001, "10.0.0.1", "10.0.0.2", 64, 4789)
    assert t2.tun_flags == FK.TNL_F_KEY | FK.TNL_F_DONT_FRAGMENT
    assert (t3.tun_id, t3.tun_ipv4_dst) == (7, "10.0.0.9")
    assert t3.raw[:208] == bytes(208)
    up_tun, up_plain = res.upcalls
    assert up_tun.egress_tun_port == 3 and up_tun.egress_tunnel == t3.raw
    assert up_plain.egress_tun_port is None and up_plain.egress_tunnel is None
    # the in-flight key keeps the packet's own tunnel metadata (none)
    assert FlowKey(res.recircs[0].key).tun_ipv4_dst == "0.0.0.0"


def test_userspace_attributes(impl):
    pkt = frame(_e() / IP() / UDP())
    acts = userspace(77, b"cookie!", with_actions=True) + userspace(78, b"") + output(1)
    res = run(impl, pkt, acts, in_port=4)
    a, b = res.upcalls
    assert (a.pid, a.userdata, a.packet, a.actions) == (77, b"cookie!", pkt, acts)
    assert (b.pid, b.userdata, b.actions) == (78, b"", None)
    assert a.key == FK.extract(pkt, 4).raw
    pid, userdata, key, packet = a    # unpacks as the documented 4-tuple
    assert pid == 77


def test_hash_sets_dp_hash(impl):
    fwd = frame(_e() / IP(src=IP_A, dst=IP_B) / TCP(sport=1, dport=2))
    rev = frame(_e() / IP(src=IP_B, dst=IP_A) / TCP(sport=2, dport=1))
    res_f = run(impl, fwd, hash_(0, 7) + recirc(1) + hash_(1, 7) + recirc(2))
    res_r = run(impl, rev, hash_(0, 7) + recirc(1) + hash_(1, 7) + recirc(2))
    l4_f, sym_f = (FlowKey(r.key).dp_hash for r in res_f.recircs)
    l4_r, sym_r = (FlowKey(r.key).dp_hash for r in res_r.recircs)
    key_f = FK.extract(fwd, 1)
    assert l4_f == (A.flow_hash_5tuple(key_f.raw, 7) or 1) and l4_f != l4_r
    assert sym_f == sym_r == (A.flow_hash_symmetric_l3l4(key_f.raw, 7) or 1)


def test_hash_matches_ovs_flow_hash_5tuple():
    """flow_hash_5tuple by hand from lib/flow.c for one IPv4/TCP key."""
    from ovsnet.datapath.packet import hash_add, hash_finish
    key = FK.extract(frame(_e() / IP(src=IP_A, dst=IP_B) / TCP(sport=1, dport=2)), 1)
    raw = key.raw
    h = hash_add(0, int.from_bytes(raw[72:76], "little"))
    h = hash_add(h, int.from_bytes(raw[76:80], "little"))
    h = hash_add(h, 6)
    h = hash_add(h, int.from_bytes(bytes.fromhex("00010002"), "little"))
    assert A.flow_hash_5tuple(raw) == hash_finish(h, 42)


def test_recirc_reextracts_an_invalid_key_keeping_metadata(impl):
    pkt = frame(_e() / IP() / UDP())
    key = FK.extract(pkt, 3, skb_mark=9, tunnel=Tunnel(tun_id=4, ipv4_dst="10.0.0.5"))
    res = impl.execute(pkt, key, push_mpls(16) + recirc(0x10) + pop_mpls(0x0800) + recirc(0x11))
    r1, r2 = res.recircs
    k1 = FlowKey(r1.key)
    assert (k1.dl_type, k1.mpls_lse0 >> 12, k1.recirc_id, k1.skb_mark, k1.tun_id, k1.in_port) == (
        0x8847, 16, 0x10, 9, 4, 3)
    assert FlowKey(r2.key).raw == FK.extract(pkt, 3, recirc_id=0x11, skb_mark=9,
                                             tunnel=Tunnel(tun_id=4, ipv4_dst="10.0.0.5")).raw
    assert (r1.level, r1.deferred) == (2, 0)


# ---------------------------------------------------------------------------
# Limits: deferral past level 3, the 9-entry FIFO, the recursion limit
# ---------------------------------------------------------------------------

MARK = set_key(KeyAttr.SKB_MARK, struct.pack("=I", 1))


def nest(depth: int, leaf: bytes) -> bytes:
    """clone(mark, clone(mark, ... leaf)) with a trailing output so no clone is last."""
    acts = leaf
    for i in range(depth):
        acts = clone(MARK, acts) + output(1000 + i)
    return acts


def test_deep_clones_are_deferred_and_run_after_the_list(impl):
    pkt = frame(_e() / IP() / UDP())
    res = run(impl, pkt, nest(4, output(1)) + output(2))
    ports = [o.port for o in res.outputs]
    # levels 2, 3, 4 run at once; the innermost clone (met at level 4) is deferred
    assert ports == [1000, 1001, 1002, 1003, 2, 1]
    assert res.dropped_deferred == 0


def test_clones_that_cannot_change_the_key_never_defer(impl):
    """actions_may_change_flow(): only output, recirc, trunc and userspace keep the key."""
    pkt = frame(_e() / IP() / UDP())
    res = run(impl, pkt, nest(3, b"".join(clone(output(i), trunc(20)) + output(50) for i in range(12))))
    assert [o.port for o in res.outputs if o.port < 1000] == [p for i in range(12) for p in (i, 50)]
    assert res.dropped_deferred == 0


def test_deferred_fifo_overflow_drops_and_logs(impl):
    pkt = frame(_e() / IP() / UDP())
    deep = nest(3, b"".join(clone(MARK, output(i)) + output(50) for i in range(12)))
    res = run(impl, pkt, deep)
    assert sorted(o.port for o in res.outputs if o.port < 50) == list(range(9))
    assert res.dropped_deferred == 3 and res.dropped_deferred_recirc == 0
    assert res.log == ["ovs-system: deferred action limit reached, drop sample action"] * 3
    deep = nest(3, b"".join(recirc(i) + output(50) for i in range(12)))
    res = run(impl, pkt, deep)
    assert [FlowKey(r.key).recirc_id for r in res.recircs] == list(range(9))
    assert [(r.level, r.deferred) for r in res.recircs][:2] == [(2, 1), (2, 2)]
    assert res.dropped_deferred == res.dropped_deferred_recirc == 3
    assert res.log[-1] == "ovs-system: deferred action limit reached, drop recirc action"


def test_recirc_levels(impl):
    pkt = frame(_e() / IP() / UDP())
    res = run(impl, pkt, recirc(1) + output(1) + clone(MARK, recirc(2)) + output(2))
    assert [(r.level, r.deferred) for r in res.recircs] == [(2, 0), (3, 0)]
    res = run(impl, pkt, recirc(1) + output(1), level=3, deferred=4)
    assert [(r.level, r.deferred) for r in res.recircs] == [(4, 4)]
    res = run(impl, pkt, recirc(1) + output(1), level=4, deferred=4)
    assert [(r.level, r.deferred) for r in res.recircs] == [(2, 5)]


def test_recursion_limit(impl):
    pkt = frame(_e() / IP() / UDP())
    assert len(run(impl, pkt, output(1), level=5).outputs) == 1
    res = run(impl, pkt, output(1), level=6)
    assert not res.outputs and res.dropped_recursion == 1
    assert res.log == ["ovs: recursion limit reached on datapath ovs-system, probable configuration error"]


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------

BAD = [
    (b"\x04\x00\x05\x00\x01", "1 stray bytes at offset 4"),
    (b"\x10\x00\x01\x00\x00\x00\x00\x00", "has length 16"),
    (nla(ActionAttr.OUTPUT, b"\x01\x00"), "output has 2 payload bytes, must have 4"),
    (nla_u32(ActionAttr.OUTPUT, 70000), "ports are 0..65535"),
    (nla_u32(ActionAttr.TRUNC, 13), "at least 14"),
    (hash_(2, 0), "hash algorithm 2"),
    (nla(ActionAttr.PUSH_VLAN, struct.pack("!HH", 0x8100, 5)), "CFI"),
    (nla(ActionAttr.PUSH_VLAN, struct.pack("!HH", 0x0800, 0x1005)), "tpid 0x0800"),
    (nla(ActionAttr.PUSH_MPLS, struct.pack("!IH", 1, 0x0800) + bytes(2)), "0x8847 or 0x8848"),
    (DROP + output(1), "drop must be the last"),
    (nla(ActionAttr.USERSPACE, nla(UserspaceAttr.USERDATA, b"x")), "non-zero pid"),
    (nla(ActionAttr.CT, b""), "ct (connection tracking)"),
    (nla(99), "unknown action type 99"),
    (set_key(KeyAttr.IPV4, bytes(8)), "set(ipv4) has 8 payload bytes"),
    (set_key(KeyAttr.ICMP, bytes(2)), "set of key attribute icmp is not supported"),
    (nla(ActionAttr.SET_MASKED, nla(KeyAttr.TCP, ports_key(1, 2) + ports_key(0xFF00, 0xFFFF))),
     "sets bits outside its mask"),
    (nla(ActionAttr.SET_MASKED, nla(KeyAttr.IPV4, bytes(12) + ipv4_mask() [:8] + b"\xff\x00\x00\x00")),
     "cannot change proto"),
    (set_masked(KeyAttr.IPV6, ipv6_key(label=0x100000), ipv6_mask(label=0x1FFFFF)), "20-bit"),
    (nla(ActionAttr.SET, nla(KeyAttr.TUNNEL, nla(TunnelAttr.IPV4_DST, bytes(4)))), "needs a ttl"),
    (nla(ActionAttr.SET, nla(KeyAttr.TUNNEL, nla(TunnelAttr.TTL, b"\x40"))), "non-zero ipv4_dst"),
    (nla(ActionAttr.SET, nla(KeyAttr.TUNNEL, nla(TunnelAttr.TTL, b"\x40")
                             + nla(TunnelAttr.IPV4_DST, b"\x01\x02\x03\x04")
                             + nla(TunnelAttr.IPV6_SRC, bytes(16)))), "mixes IPv4 and IPv6"),
    (nla(ActionAttr.SET_MASKED, nla(KeyAttr.TUNNEL, b"")), "set_masked(tunnel)"),
    (nla(ActionAttr.SAMPLE, nla(SampleAttr.ACTIONS, output(1))), "4-byte probability"),
    (nla(ActionAttr.CHECK_PKT_LEN, nla(CheckPktLenAttr.PKT_LEN, b"\x10\x00")
                                   + nla(CheckPktLenAttr.ACTIONS_IF_GREATER, b"")), "actions_if_less_equal"),
    (clone(nla(ActionAttr.OUTPUT, b"")), "output has 0 payload bytes"),
]


@pytest.mark.parametrize(("actions", "message"), BAD, ids=[m for _, m in BAD])
def test_malformed_actions_raise_with_the_offset(impl, actions, message):
    with pytest.raises(DatapathError, match=message.replace("(", r"\(").replace(")", r"\)")):
        A.validate_actions(actions)
    with pytest.raises(DatapathError):
        impl.execute(frame(_e() / IP()), FK.extract(frame(_e() / IP())), actions)


def test_validation_message_names_the_offset():
    with pytest.raises(DatapathError, match=r"attribute at offset 12\)"):
        A.validate_actions(output(1) + clone(trunc(3)))


def test_nesting_depth_limit():
    deep = output(1)
    for _ in range(16):
        deep = clone(deep)
    A.validate_actions(deep)
    with pytest.raises(DatapathError, match="deeper than 16"):
        A.validate_actions(clone(deep))


def test_bad_key_and_level():
    pkt = frame(_e() / IP())
    with pytest.raises(DatapathError, match="528"):
        A.execute(pkt, b"short", output(1))
    with pytest.raises(DatapathError, match="level"):
        A.execute(pkt, FK.extract(pkt), output(1), level=0)


def test_public_execute_is_the_compiled_one_when_built():
    assert A.execute is (A.native or A.reference).execute
    if IN_CI:
        assert A.IMPLEMENTATION == "cython"


# ---------------------------------------------------------------------------
# Property tests: both implementations agree; recirc keys are extracted keys
# ---------------------------------------------------------------------------


def _packets() -> list[bytes]:
    pl = b"payload-bytes"
    base = [
        _e() / IP(src=IP_A, dst=IP_B) / TCP(sport=1, dport=2) / pl,
        _e() / IP(src=IP_A, dst=IP_B) / UDP(sport=3, dport=4) / pl,
        _e() / IP(src=IP_A, dst=IP_B) / UDP(sport=3, dport=4, chksum=0) / pl,
        _e() / IP(src=IP_A, dst=IP_B) / SCTP(sport=5, dport=6) / pl,
        _e() / IP(src=IP_A, dst=IP_B, frag=5) / pl,
        _e() / IP(src=IP_A, dst=IP_B) / ICMP() / pl,
        _e() / Dot1Q(vlan=5) / IP(src=IP_A, dst=IP_B) / TCP() / pl,
        _e(type=0x88A8) / Dot1AD(vlan=6, type=0x8100) / Dot1Q(vlan=7) / IP() / UDP() / pl,
        _e() / IPv6(src=V6_A, dst=V6_B) / TCP() / pl,
        _e() / IPv6(src=V6_A, dst=V6_B) / UDP() / pl,
        _e() / IPv6(src=V6_A, dst=V6_B) / ICMPv6EchoRequest() / pl,
        _e() / IPv6(src=V6_A, dst=V6_B) / IPv6ExtHdrFragment(offset=0, m=1) / UDP() / pl,
        _e() / IPv6(src=V6_A, dst=V6_B) / IPv6ExtHdrRouting(addresses=[V6_A], segleft=1) / TCP() / pl,
        _e() / MPLS(label=3, s=1) / IP() / UDP() / pl,
        _e() / ARP(psrc=IP_A, pdst=IP_B),
    ]
    return [bytes(p) for p in base]


PACKETS = _packets()


def _key_attr_action(draw, masked: bool) -> bytes:
    attr = draw(st.sampled_from([KeyAttr.IPV4, KeyAttr.IPV6, KeyAttr.TCP, KeyAttr.UDP, KeyAttr.SCTP,
                                 KeyAttr.ETHERNET, KeyAttr.SKB_MARK, KeyAttr.PRIORITY, KeyAttr.MPLS]))
    size = {KeyAttr.IPV4: 12, KeyAttr.IPV6: 40, KeyAttr.ETHERNET: 12, KeyAttr.MPLS: 4,
            KeyAttr.SKB_MARK: 4, KeyAttr.PRIORITY: 4}.get(attr, 4)
    value = bytearray(draw(st.binary(min_size=size, max_size=size)))
    mask = bytearray(draw(st.binary(min_size=size, max_size=size))) if masked else bytearray(b"\xff" * size)
    if attr == KeyAttr.IPV4:
        mask[8] = mask[11] = 0
        if not masked:
            value[8] = value[11] = 0
    if attr == KeyAttr.IPV6:
        mask[36] = mask[39] = 0
        mask[32], value[32] = 0, 0
        mask[33] &= 0x0F
        value[33] &= 0x0F
        if not masked:
            mask[32:36] = b"\x00\x0f\xff\xff"
    value = bytes(v & m for v, m in zip(value, mask, strict=True))
    if masked:
        return nla(ActionAttr.SET_MASKED, nla(attr, value + bytes(mask)))
    return nla(ActionAttr.SET, nla(attr, value))


@st.composite
def action_lists(draw, depth: int = 0) -> bytes:
    n = draw(st.integers(0, 6))
    out = []
    for _ in range(n):
        kind = draw(st.sampled_from(
            ["output", "set", "set_masked", "push_vlan", "pop_vlan", "push_mpls", "pop_mpls", "trunc",
             "userspace", "hash", "recirc", "ct_clear", "tunnel", "meter"]
            + (["clone", "sample", "cpl"] if depth < 3 else [])))
        if kind == "output":
            out.append(output(draw(st.integers(0, 9))))
        elif kind in ("set", "set_masked"):
            out.append(_key_attr_action(draw, kind == "set_masked"))
        elif kind == "push_vlan":
            out.append(push_vlan(draw(st.integers(0, 4095)), draw(st.sampled_from([0x8100, 0x88A8]))))
        elif kind == "pop_vlan":
            out.append(POP_VLAN)
        elif kind == "push_mpls":
            out.append(push_mpls(draw(st.integers(0, 1 << 20 - 1)), draw(st.sampled_from([0x8847, 0x8848]))))
        elif kind == "pop_mpls":
            out.append(pop_mpls(draw(st.sampled_from([0x0800, 0x86DD, 0x8847]))))
        elif kind == "trunc":
            out.append(trunc(draw(st.integers(14, 120))))
        elif kind == "userspace":
            out.append(userspace(draw(st.integers(1, 5)), draw(st.none() | st.binary(max_size=9)),
                                 draw(st.none() | st.integers(0, 5)), draw(st.booleans())))
        elif kind == "hash":
            out.append(hash_(draw(st.integers(0, 1)), draw(st.integers(0, 0xFFFFFFFF))))
        elif kind == "recirc":
            out.append(recirc(draw(st.integers(0, 0xFFFFFFFF))))
        elif kind == "ct_clear":
            out.append(CT_CLEAR)
        elif kind == "tunnel":
            out.append(set_tunnel(draw(st.integers(0, 1 << 24)), ttl=draw(st.integers(0, 255))))
        elif kind == "meter":
            out.append(nla_u32(ActionAttr.METER, 1))
        elif kind == "clone":
            out.append(clone(draw(action_lists(depth + 1))))
        elif kind == "sample":
            out.append(sample(draw(st.sampled_from([0, PCP_MAX, PCP_MAX // 2, 12345])),
                              draw(action_lists(depth + 1))))
        else:
            out.append(check_pkt_len(draw(st.integers(1, 130)), draw(action_lists(depth + 1)),
                                     draw(action_lists(depth + 1))))
    if draw(st.booleans()):
        out.append(draw(st.sampled_from([DROP, output(1), recirc(7)])))
    return b"".join(out)


@st.composite
def packets(draw) -> bytes:
    p = draw(st.sampled_from(PACKETS))
    how = draw(st.sampled_from(["as is", "as is", "cut", "mutate", "random"]))
    if how == "cut":
        p = p[: draw(st.integers(0, len(p)))]
    elif how == "mutate":
        b = bytearray(p)
        for _ in range(draw(st.integers(1, 4))):
            b[draw(st.integers(0, len(b) - 1))] = draw(st.integers(0, 255))
        p = bytes(b)
    elif how == "random":
        p = draw(st.binary(max_size=90))
    return p


@pytest.mark.skipif(A.native is None, reason="ovsnet._actions is not built")
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pkt=packets(), acts=action_lists(), seed=st.integers(0, 2**64 - 1))
def test_both_implementations_agree(pkt, acts, seed):
    A.validate_actions(acts)
    key = FK.extract(pkt, 2, skb_mark=3)
    ref = A.reference.execute(pkt, key, acts, seed=seed)
    nat = A.native.execute(pkt, key, acts, seed=seed)
    assert nat.full() == ref.full()


@settings(max_examples=400, deadline=None)
@given(idx=st.integers(0, len(PACKETS) - 3), acts=action_lists(depth=3))
def test_recirculated_key_is_the_extracted_key(idx, acts):
    """The kernel's in-place key updates leave the key it would extract."""
    pkt = PACKETS[idx]
    res = A.execute(pkt, FK.extract(pkt, 2), acts if acts.endswith(DROP) else acts + recirc(9))
    for r in res.recircs:
        key = FlowKey(r.key)
        want = FK.extract(r.packet, 2, recirc_id=key.recirc_id, dp_hash=key.dp_hash,
                          skb_mark=key.skb_mark, priority=key.priority)
        assert key.raw == want.raw, (key, want)


@settings(max_examples=300, deadline=None)
@given(idx=st.sampled_from([0, 1, 3, 5, 6, 8, 9, 10]), acts=action_lists(depth=3))
def test_checksums_stay_valid(idx, acts):
    pkt = PACKETS[idx]
    res = A.execute(pkt, FK.extract(pkt, 2), acts)
    for o in res.outputs:
        if len(o.packet) == len(pkt) and FK.extract(o.packet).nw_proto:
            assert_checksums_valid(o.packet)


def test_random_actions_never_crash_on_random_bytes():
    """Structurally valid but arbitrary attribute soup; both sides must agree."""
    rng = random.Random(7)
    types = [t for t in ActionAttr if t not in (ActionAttr.UNSPEC,)]
    for _ in range(3000):
        acts = b"".join(nla(rng.choice(types), rng.randbytes(rng.choice([0, 2, 4, 8, 12])))
                        for _ in range(rng.randint(0, 4)))
        try:
            A.validate_actions(acts)
        except DatapathError:
            continue
        pkt = rng.choice(PACKETS)
        key = FK.extract(pkt)
        ref = A.reference.execute(pkt, key, acts)
        if A.native is not None:
            assert A.native.execute(pkt, key, acts).full() == ref.full()


def test_key_size_constant():
    assert KEY_SIZE == 528
