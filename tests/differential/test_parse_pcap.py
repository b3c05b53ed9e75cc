"""``ovsnet parse-pcap`` against the real ``ovs-ofctl parse-pcap``, line by line.

The corpus is built with scapy: every protocol the flow key covers, normal and
odd (VLAN/QinQ, MPLS stacks, IPv4 options and fragments, IPv6 extension
headers and fragments, ND with options, ARP/RARP, IGMP, LLC/SNAP and 802.3),
each one also cut short at every length, mutated at random (seeded) and mixed
with random frames. The corpus goes into one pcap file; Open vSwitch 3.1's
``ovs-ofctl parse-pcap`` and ovsnet (both extraction implementations, and the
CLI end to end) print a flow per packet, and the lines must be equal.

Every known disagreement is listed in ``KNOWN_DIFFERENCES`` with its reason;
the agreement figures are printed (``pytest -s``) and must be 100% on the rest.

Without ``ovs-ofctl`` the tests skip, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys

import pytest
from scapy.contrib.mpls import MPLS
from scapy.contrib.nsh import NSH
from scapy.layers.igmp import IGMP, IGMPv3_MQ, IGMPv3_MR, IGMPv3_MR_Group
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP, IPOption_Router_Alert, IPOption_RR
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptMTU,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.ipsec import AH
from scapy.layers.l2 import ARP, LLC, SNAP, STP, Dot1AD, Dot1Q, Dot3, Ether
from scapy.layers.sctp import SCTP
from scapy.packet import Raw

from ovsnet.cli import main as cli_main
from ovsnet.datapath import flow_key as FK
from ovsnet.datapath.flow_format import format_flow
from ovsnet.datapath.pcap import PcapError, PcapRecord, iter_pcap, read_pcap, write_pcap
from ovsnet.ovsdb.backends import find_binary

IN_CI = os.environ.get("CI") == "true"
OFPP_ANY = 0xFFFF
SEED = 20240501

MAC_A, MAC_B = "00:1b:21:3c:4d:5e", "52:54:00:ab:cd:ef"
IP_A, IP_B = "192.0.2.1", "198.51.100.7"
V6_A, V6_B = "2001:db8::1", "fe80::5054:ff:feab:cdef"


def require_ofctl() -> str:
    """The path of ovs-ofctl; skip without it, or fail under CI=true."""
    path = find_binary("ovs-ofctl")
    if path is None:
        reason = "ovs-ofctl not found (apt-get install openvswitch-switch)"
        if IN_CI:
            pytest.fail(f"CI=true and the real Open vSwitch binaries are missing: {reason}")
        pytest.skip(reason)
    return path


# ---------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------


def _e(**kw) -> Ether:
    return Ether(**{"src": MAC_A, "dst": MAC_B, **kw})


def _ip(**kw) -> IP:
    return IP(**{"src": IP_A, "dst": IP_B, **kw})


def _ip6(**kw) -> IPv6:
    return IPv6(**{"src": V6_A, "dst": V6_B, **kw})


def _raw_ipv4(ihl: int, tot_len: int, payload: bytes = b"", proto: int = 6) -> bytes:
    """An IPv4 header with arbitrary IHL and total length (scapy would fix them)."""
    hdr = struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, tot_len, 1, 0, 64, proto, 0,
                      bytes([192, 0, 2, 1]), bytes([198, 51, 100, 7]))
    return hdr + bytes(max(0, ihl * 4 - 20)) + payload


def base_packets() -> list[tuple[str, bytes]]:
    """Named, well-formed or deliberately odd frames, one per interesting case."""
    tcp_payload = b"GET / HTTP/1.1\r\n"
    p: list[tuple[str, object]] = [
        # --- IPv4 and its transports
        ("tcp-syn", _e() / _ip() / TCP(sport=40000, dport=80, flags="S")),
        ("tcp-data", _e() / _ip(tos=0xB8) / TCP(flags="PA") / tcp_payload),
        ("tcp-all-flags", _e() / _ip() / TCP(flags=0xFFF)),
        ("tcp-ns-cwr-ece", _e() / _ip() / TCP(flags="NCE")),
        ("tcp-no-flags", _e() / _ip() / TCP(flags=0)),
        ("tcp-options", _e() / _ip() / TCP(options=[("MSS", 1460), ("SAckOK", b""),
                                                    ("WScale", 7), ("Timestamp", (1, 2))])),
        ("tcp-dataofs-4", _e() / _ip() / TCP(dataofs=4)),
        ("tcp-dataofs-15-short", _e() / _ip() / TCP(dataofs=15) / (b"x" * 8)),
        ("tcp-dataofs-15-full", _e() / _ip() / TCP(dataofs=15) / (b"x" * 40)),
        ("udp", _e() / _ip() / UDP(sport=5353, dport=53) / b"query"),
        ("udp-vxlan-port", _e() / _ip() / UDP(sport=49152, dport=4789) / bytes(16)),
        ("sctp", _e() / _ip() / SCTP(sport=2905, dport=2905)),
        ("icmp-echo", _e() / _ip() / ICMP(type=8, code=0) / b"ping"),
        ("icmp-unreach", _e() / _ip() / ICMP(type=3, code=13) / bytes(_ip() / UDP())),
        ("igmp-v2-report", _e() / _ip(ttl=1) / IGMP(type=0x16, gaddr="239.1.2.3")),
        ("igmp-v2-query", _e() / _ip(ttl=1) / IGMP(type=0x11, mrcode=100)),
        ("igmp-v3-query", _e() / _ip(ttl=1) / IGMPv3_MQ(gaddr="239.9.9.9")),
        ("igmp-v3-report", _e() / _ip(ttl=1)
         / IGMPv3_MR(records=[IGMPv3_MR_Group(maddr="239.1.1.1")])),
        ("ip-gre", _e() / _ip(proto=47) / bytes(8)),
        ("ip-esp", _e() / _ip(proto=50) / bytes(16)),
        ("ip-proto-255", _e() / _ip(proto=255) / bytes(4)),
        ("ip-proto-0", _e() / _ip(proto=0)),
        ("ip-icmpv6-in-ipv4", _e() / _ip(proto=58)
         / bytes(ICMPv6ND_NS(cksum=0, tgt=V6_B) / ICMPv6NDOptSrcLLAddr(lladdr=MAC_A))),
        ("ip-tos-ecn", _e() / _ip(tos=0xFF, ttl=255) / UDP()),
        ("ip-options-rr", _e() / _ip(options=[IPOption_RR()]) / TCP()),
        ("ip-options-ra", _e() / _ip(options=[IPOption_Router_Alert()]) / IGMP()),
        ("ip-options-nop", _e() / _ip(options=[IPOption_NOP()] * 4) / UDP()),
        ("ip-ihl-15", _e() / _raw_ipv4(15, 60 + 8, bytes(UDP())[:8], 17)),
        ("ip-ihl-4", _e() / _raw_ipv4(4, 40, bytes(20))),
        ("ip-ihl-0", _e() / _raw_ipv4(0, 40, bytes(20))),
        ("ip-totlen-short", _e() / _raw_ipv4(5, 19, bytes(TCP()))),
        ("ip-totlen-header-only", _e() / _raw_ipv4(5, 20, bytes(TCP()))),
        ("ip-totlen-cuts-tcp", _e() / _raw_ipv4(5, 30, bytes(TCP()))),
        ("ip-totlen-too-long", _e() / _raw_ipv4(5, 1500, bytes(TCP()))),
        ("ip-totlen-with-padding", _e() / _raw_ipv4(5, 28, bytes(UDP()) + bytes(30), 17)),
        ("ip-version-6-in-ipv4", _e(type=0x0800) / _ip6() / UDP()),
        ("ip-df", _e() / _ip(flags="DF") / TCP()),
        ("ip-evil-bit", _e() / _ip(flags="evil") / TCP()),
        ("ip-frag-first", _e() / _ip(flags="MF", frag=0) / UDP() / bytes(16)),
        ("ip-frag-middle", _e() / _ip(flags="MF", frag=3) / bytes(24)),
        ("ip-frag-last", _e() / _ip(frag=185, proto=6) / bytes(24)),
        ("ip-frag-later-icmp", _e() / _ip(frag=1, proto=1) / bytes(8)),
        ("ip-frag-first-truncated-l4", _e() / _ip(flags="MF", proto=6) / bytes(8)),
        # --- IPv6 and its extension headers
        ("ipv6-tcp", _e() / _ip6(tc=0x2E, fl=0xABCDE) / TCP(flags="SA")),
        ("ipv6-udp", _e() / _ip6(hlim=1) / UDP(sport=546, dport=547)),
        ("ipv6-sctp", _e() / _ip6() / SCTP()),
        ("ipv6-icmp-echo", _e() / _ip6() / ICMPv6EchoRequest()),
        ("ipv6-no-next", _e() / _ip6(nh=59)),
        ("ipv6-proto-1", _e() / _ip6(nh=1) / bytes(ICMP())),
        ("ipv6-proto-2", _e() / _ip6(nh=2) / bytes(IGMP())),
        ("ipv6-hbh", _e() / _ip6() / IPv6ExtHdrHopByHop() / UDP()),
        ("ipv6-routing", _e() / _ip6() / IPv6ExtHdrRouting(addresses=[V6_A, V6_B]) / TCP()),
        ("ipv6-destopt", _e() / _ip6() / IPv6ExtHdrDestOpt() / TCP()),
        ("ipv6-chain", _e() / _ip6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt()
         / IPv6ExtHdrRouting() / IPv6ExtHdrDestOpt() / UDP()),
        ("ipv6-ah", _e() / _ip6() / AH(nh=6, payloadlen=4, icv=bytes(12)) / TCP()),
        ("ipv6-frag-first", _e() / _ip6() / IPv6ExtHdrFragment(m=1, offset=0, id=7) / UDP()),
        ("ipv6-frag-later", _e() / _ip6() / IPv6ExtHdrFragment(m=1, offset=100, nh=17)
         / bytes(16)),
        ("ipv6-frag-last", _e() / _ip6() / IPv6ExtHdrFragment(m=0, offset=3, nh=6) / bytes(8)),
        ("ipv6-frag-atomic", _e() / _ip6() / IPv6ExtHdrFragment(m=0, offset=0) / TCP()),
        ("ipv6-frag-res-bits", _e() / _ip6() / IPv6ExtHdrFragment(m=0, offset=0, res2=2)
         / TCP()),
        ("ipv6-frag-then-hbh", _e() / _ip6() / IPv6ExtHdrFragment(m=1)
         / IPv6ExtHdrDestOpt() / ICMPv6EchoRequest()),
        ("ipv6-two-frags", _e() / _ip6() / IPv6ExtHdrFragment(m=1)
         / IPv6ExtHdrFragment(m=0, offset=2) / UDP()),
        ("ipv6-hbh-len-overrun", _e() / _ip6() / IPv6ExtHdrHopByHop(len=5) / bytes(8)),
        ("ipv6-plen-short", _e() / IPv6(src=V6_A, dst=V6_B, plen=4) / UDP()),
        ("ipv6-plen-long", _e() / IPv6(src=V6_A, dst=V6_B, plen=200) / UDP()),
        ("ipv6-with-padding", _e() / _ip6() / UDP() / Raw(b"") / bytes(0)),
        # --- Neighbor Discovery
        ("nd-ns-sll", _e() / _ip6(hlim=255) / ICMPv6ND_NS(tgt=V6_B)
         / ICMPv6NDOptSrcLLAddr(lladdr=MAC_A)),
        ("nd-na-tll", _e() / _ip6(hlim=255) / ICMPv6ND_NA(tgt=V6_B, R=1, S=1, O=1)
         / ICMPv6NDOptDstLLAddr(lladdr=MAC_B)),
        ("nd-ns-no-opts", _e() / _ip6() / ICMPv6ND_NS(tgt="::ffff:192.0.2.1")),
        ("nd-ns-sll-tll", _e() / _ip6() / ICMPv6ND_NS(tgt=V6_B)
         / ICMPv6NDOptDstLLAddr(lladdr=MAC_B) / ICMPv6NDOptSrcLLAddr(lladdr=MAC_A)),
        ("nd-ns-dup-sll", _e() / _ip6() / ICMPv6ND_NS(tgt=V6_B)
         / ICMPv6NDOptSrcLLAddr(lladdr=MAC_A) / ICMPv6NDOptSrcLLAddr(lladdr=MAC_B)),
        ("nd-na-dup-tll", _e() / _ip6() / ICMPv6ND_NA(tgt=V6_B)
         / ICMPv6NDOptDstLLAddr(lladdr=MAC_A) / ICMPv6NDOptDstLLAddr(lladdr=MAC_B)),
        ("nd-ns-zero-sll-twice", _e() / _ip6() / ICMPv6ND_NS(tgt=V6_B)
         / ICMPv6NDOptSrcLLAddr(lladdr="00:00:00:00:00:00")
         / ICMPv6NDOptSrcLLAddr(lladdr=MAC_B)),
        ("nd-ns-mtu-then-sll", _e() / _ip6() / ICMPv6ND_NS(tgt=V6_B) / ICMPv6NDOptMTU()
         / ICMPv6NDOptSrcLLAddr(lladdr=MAC_A)),
        ("nd-ns-opt-len-0", _e() / _ip6() / ICMPv6ND_NS(tgt=V6_B)
         / ICMPv6NDOptSrcLLAddr(len=0, lladdr=MAC_A)),
        ("nd-ns-opt-len-2", _e() / _ip6() / ICMPv6ND_NS(tgt=V6_B)
         / ICMPv6NDOptSrcLLAddr(len=2, lladdr=MAC_A) / bytes(8)),
        ("nd-ns-opt-overrun", _e() / _ip6() / ICMPv6ND_NS(tgt=V6_B)
         / ICMPv6NDOptSrcLLAddr(len=3, lladdr=MAC_A)),
        ("nd-ns-code-1", _e() / _ip6() / ICMPv6ND_NS(code=1, tgt=V6_B)),
        ("nd-rs", _e() / _ip6() / ICMPv6ND_RS() / ICMPv6NDOptSrcLLAddr(lladdr=MAC_A)),
        ("nd-ra", _e() / _ip6() / ICMPv6ND_RA()),
        ("nd-ns-after-hbh", _e() / _ip6() / IPv6ExtHdrHopByHop() / ICMPv6ND_NS(tgt=V6_B)
         / ICMPv6NDOptSrcLLAddr(lladdr=MAC_A)),
        # --- ARP and RARP
        ("arp-request", _e(dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=MAC_A, psrc=IP_A,
                                                          pdst=IP_B)),
        ("arp-reply", _e() / ARP(op=2, hwsrc=MAC_B, psrc=IP_B, hwdst=MAC_A, pdst=IP_A)),
        ("arp-op-255", _e() / ARP(op=255, psrc=IP_A, pdst=IP_B)),
        ("arp-op-256", _e() / ARP(op=256, psrc=IP_A, pdst=IP_B)),
        ("arp-hwtype-6", _e() / ARP(hwtype=6, psrc=IP_A, pdst=IP_B)),
        ("arp-ptype-v6", _e() / ARP(ptype=0x86DD, plen=4, psrc=IP_A, pdst=IP_B)),
        ("arp-hwlen-8", _e(type=0x0806) / (bytes.fromhex("0001080008040001") + bytes(28))),
        ("rarp", _e(type=0x8035) / ARP(op=3, hwsrc=MAC_A, hwdst=MAC_A)),
        # --- VLANs
        ("vlan", _e() / Dot1Q(vlan=100, prio=5) / _ip() / UDP()),
        ("vlan-dei", _e() / Dot1Q(vlan=4095, prio=7, dei=1) / _ip() / TCP()),
        ("vlan-0", _e() / Dot1Q(vlan=0, prio=0) / _ip6() / ICMPv6EchoRequest()),
        ("qinq-88a8", _e() / Dot1AD(vlan=10) / Dot1Q(vlan=20, prio=3) / _ip() / TCP()),
        ("qinq-8100-8100", _e() / Dot1Q(vlan=10) / Dot1Q(vlan=20) / ARP(psrc=IP_A)),
        ("vlan-triple", _e() / Dot1AD(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / _ip()),
        ("vlan-then-llc", _e() / Dot1Q(vlan=7, type=0x30) / LLC() / SNAP() / _ip() / UDP()),
        ("vlan-then-mpls", _e() / Dot1Q(vlan=7) / MPLS(label=99, s=1, ttl=5) / _ip()),
        # --- MPLS
        ("mpls-1", _e() / MPLS(label=16, cos=5, s=1, ttl=64) / _ip() / TCP()),
        ("mpls-2", _e() / MPLS(label=16, s=0) / MPLS(label=1048575, s=1, ttl=1) / _ip()),
        ("mpls-3", _e() / MPLS(label=1, s=0) / MPLS(label=2, s=0) / MPLS(label=3, s=1)),
        ("mpls-4", _e() / MPLS(label=1, s=0) / MPLS(label=2, s=0) / MPLS(label=3, s=0)
         / MPLS(label=4, s=1) / bytes(20)),
        ("mpls-no-bos", _e() / MPLS(label=5, s=0) / MPLS(label=6, s=0)),
        ("mpls-mcast", _e(type=0x8848) / MPLS(label=77, s=1)),
        # --- 802.3, LLC, SNAP
        ("snap-ipv4", Dot3(src=MAC_A, dst=MAC_B) / LLC() / SNAP() / _ip() / UDP()),
        ("snap-arp", Dot3(src=MAC_A, dst=MAC_B) / LLC() / SNAP(code=0x0806) / ARP(psrc=IP_A)),
        ("snap-cisco-oui", Dot3(src=MAC_A, dst=MAC_B) / LLC() / SNAP(OUI=0x00000C, code=0x2000)),
        ("snap-type-small", Dot3(src=MAC_A, dst=MAC_B) / LLC() / SNAP(code=0x0100)),
        ("llc-stp", Dot3(src=MAC_A, dst="01:80:c2:00:00:00") / LLC(dsap=0x42, ssap=0x42, ctrl=3)
         / STP()),
        ("dot3-len-only", Dot3(src=MAC_A, dst=MAC_B, len=4) / b"abcd"),
        ("ethertype-0x05ff", _e(type=0x05FF) / bytes(10)),
        ("ethertype-0x0600", _e(type=0x0600) / bytes(10)),
        ("ethertype-unknown", _e(type=0x88CC) / bytes(30)),
        ("nsh-md1", _e() / NSH(mdtype=1, nextproto=1, spi=42, si=255, ttl=5, oam=1) / _ip()),
        ("nsh-md2", _e() / NSH(mdtype=2, length=2, nextproto=3, spi=0xABCDEF, si=3) / _e()),
        ("nsh-md2-tlv", _e() / NSH(mdtype=2, length=4, nextproto=3) / bytes(8) / _e()),
        ("nsh-md1-bad-len", _e() / NSH(mdtype=1, length=2, nextproto=1) / _ip()),
        ("nsh-version-1", _e() / NSH(ver=1, mdtype=1, nextproto=1) / _ip()),
        ("nsh-mdtype-15", _e() / NSH(mdtype=15, length=2, nextproto=1) / bytes(8)),
        ("eth-only", _e(type=0x0800)),
        ("eth-min-padded", _e() / _ip() / UDP() / bytes(6)),
        ("broadcast", Ether(src=MAC_A, dst="ff:ff:ff:ff:ff:ff") / _ip(dst="255.255.255.255")
         / UDP(sport=68, dport=67)),
    ]
    return [(name, bytes(pkt)) for name, pkt in p]


def random_frames(rng: random.Random, n: int) -> list[tuple[str, bytes]]:
    """Random bytes: whole frames, and random payloads behind real headers."""
    out = []
    heads = {
        "eth": bytes(_e(type=0x0800))[:12],
        "ipv4": bytes(_e() / _ip(proto=rng.choice([1, 2, 6, 17, 58, 132])))[:34],
        "ipv6": bytes(_e() / _ip6())[:14],
        "vlan": bytes(_e() / Dot1Q(vlan=3))[:16],
    }
    for i in range(n):
        kind = rng.choice(["whole", *heads])
        size = rng.choice([rng.randrange(0, 80), rng.randrange(0, 200)])
        body = bytes(rng.getrandbits(8) for _ in range(size))
        if kind == "whole":
            out.append((f"random-{i}", body or b"\0"))
        elif kind == "ipv6":
            # A believable IPv6 header so the random part hits the extension chain.
            nxt = rng.choice([0, 43, 44, 51, 60, 58, 6, 17])
            hdr = struct.pack(">IHBB", 0x60000000 | rng.getrandbits(28), len(body), nxt, 64)
            out.append((f"random-{kind}-{i}", heads[kind] + b"\x86\xdd" + hdr + bytes(32) + body))
        else:
            out.append((f"random-{kind}-{i}", heads[kind] + body))
    return out


def random_nd(rng: random.Random, n: int) -> list[tuple[str, bytes]]:
    """ND messages with random option lists: SLL, TLL, others, odd lengths, zero MACs."""
    out = []
    macs = [bytes(6), *(bytes(rng.getrandbits(8) for _ in range(6)) for _ in range(4))]
    for i in range(n):
        opts = b""
        for _ in range(rng.randrange(5)):
            kind = rng.choice([1, 1, 2, 2, 3, 5, 14])
            units = rng.choice([1, 1, 1, 0, 2, 3])
            body = rng.choice(macs) + bytes(max(0, units * 8 - 8))
            opts += bytes([kind, units]) + body[: max(0, units * 8 - 2)]
        icmp_type = rng.choice([135, 136, 135, 136, 133, 134, 137])
        msg = bytes([icmp_type, rng.choice([0, 0, 0, 1]), 0, 0]) + bytes(
            [rng.getrandbits(8), 0, 0, 0]) + rng.randbytes(16) + opts
        msg = msg[: rng.choice([len(msg), len(msg), rng.randrange(len(msg) + 1)])]
        ip6 = struct.pack(">IHBB", 0x60000000, len(msg), 58, 255) + bytes(31) + b"\x01"
        out.append((f"random-nd-{i}", bytes(_e(type=0x86DD)) + ip6 + msg))
    return out


def random_ipv4(rng: random.Random, n: int) -> list[tuple[str, bytes]]:
    """IPv4 headers with random IHL, total length, fragment field and protocol."""
    out = []
    for i in range(n):
        ihl = rng.choice([5, 5, 6, 15, rng.randrange(16)])
        body = bytes(rng.getrandbits(8) for _ in range(rng.randrange(60)))
        tot = rng.choice([ihl * 4 + len(body), rng.randrange(80), 0xFFFF])
        frag = rng.choice([0, 0x2000, 0x4000, 0x8000, rng.getrandbits(16)])
        proto = rng.choice([1, 2, 6, 17, 58, 132, rng.getrandbits(8)])
        hdr = struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, rng.getrandbits(8), tot, 0, frag, 9,
                          proto, 0, bytes(4), bytes(4))
        opts = bytes(rng.getrandbits(8) for _ in range(max(0, ihl * 4 - 20)))
        out.append((f"random-ipv4-{i}", bytes(_e(type=0x0800)) + hdr + opts + body))
    return out


def mutations(base: list[tuple[str, bytes]], rng: random.Random, per_packet: int):
    """Each base packet with 1 to 3 random bytes replaced, ``per_packet`` times."""
    out = []
    for name, pkt in base:
        for j in range(per_packet):
            if not pkt:
                break
            b = bytearray(pkt)
            for _ in range(rng.randint(1, 3)):
                # Mostly the headers: that is where the decisions are.
                pos = rng.randrange(min(len(b), 80))
                b[pos] = rng.getrandbits(8)
            out.append((f"{name}~mut{j}", bytes(b)))
    return out


def corpus() -> list[tuple[str, bytes]]:
    rng = random.Random(SEED)
    base = base_packets()
    packets = list(base)
    for name, pkt in base:
        # Cut short at every length: every header boundary and every byte in
        # between. Not at 0: ovs-ofctl stops reading at an empty record (its
        # fread of 0 bytes looks like the end of the file).
        packets += [(f"{name}[:{n}]", pkt[:n]) for n in range(1, len(pkt))]
    packets += mutations(base, rng, 40)
    packets += random_frames(rng, 3000)
    packets += random_nd(rng, 1500)
    packets += random_ipv4(rng, 1500)
    return packets


#: Packets where ovsnet prints something else than OVS, on purpose, by base name.
KNOWN_DIFFERENCES: dict[str, str] = {}


def _known(name: str) -> str | None:
    base = name.split("[", 1)[0].split("~", 1)[0]
    return KNOWN_DIFFERENCES.get(base)


# ---------------------------------------------------------------------------
# Running both sides
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(corpus, OVS's lines, a function giving ovsnet's lines) for one pcap file."""
    ofctl = require_ofctl()
    packets = corpus()
    path = tmp_path_factory.mktemp("pcap") / "corpus.pcap"
    write_pcap(path, [pkt for _, pkt in packets])
    proc = subprocess.run([ofctl, "parse-pcap", str(path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    theirs = proc.stdout.splitlines()
    assert len(theirs) == len(packets), "ovs-ofctl printed one line per packet"

    def ours(impl) -> list[str]:
        return [format_flow(impl.extract(pkt, OFPP_ANY)) for _, pkt in packets]

    return path, packets, theirs, ours


def _compare(packets, theirs, ours, label: str) -> None:
    agree = known = 0
    unexpected = []
    for (name, pkt), want, got in zip(packets, theirs, ours, strict=True):
        if want == got:
            agree += 1
        elif _known(name):
            known += 1
        else:
            unexpected.append(f"{name} ({pkt.hex()}):\n  ovs:    {want}\n  ovsnet: {got}")
    total = len(packets)
    print(f"\nparse-pcap agreement ({label}): {agree}/{total} = {100 * agree / total:.3f}% "
          f"identical; {known} known differences; {len(unexpected)} unexpected")
    assert not unexpected, f"{len(unexpected)} lines differ, first ones:\n" + "\n".join(
        unexpected[:10])


@pytest.mark.real_ovs
def test_compiled_extraction_prints_what_ovs_prints(run):
    if FK.native is None:
        if IN_CI:
            pytest.fail("ovsnet._flow_key is not built: CI must build the extensions")
        pytest.skip("ovsnet._flow_key is not built")
    _, packets, theirs, ours = run
    _compare(packets, theirs, ours(FK.native), "compiled")


@pytest.mark.real_ovs
def test_reference_extraction_prints_what_ovs_prints(run):
    _, packets, theirs, ours = run
    _compare(packets, theirs, ours(FK.reference), "reference")


@pytest.mark.real_ovs
def test_cli_end_to_end(run):
    path, packets, theirs, _ = run
    proc = subprocess.run([sys.executable, "-m", "ovsnet", "parse-pcap", str(path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = proc.stdout.splitlines()
    for (name, _pkt), want, line in zip(packets, theirs, got, strict=True):
        assert line == want or _known(name), name


@pytest.mark.real_ovs
@pytest.mark.parametrize("byteorder", ["little", "big"])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_every_pcap_variant_reads_like_ovs(tmp_path, byteorder, nanosecond):
    ofctl = require_ofctl()
    packets = [pkt for name, pkt in base_packets() if not _known(name)]
    path = tmp_path / "variant.pcap"
    write_pcap(path, packets, byteorder=byteorder, nanosecond=nanosecond)
    proc = subprocess.run([ofctl, "parse-pcap", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    ours = subprocess.run([sys.executable, "-m", "ovsnet", "parse-pcap", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == proc.stdout


@pytest.mark.real_ovs
def test_linux_sll_capture_reads_like_ovs(tmp_path):
    ofctl = require_ofctl()
    frames = [pkt for name, pkt in base_packets() if name in ("tcp-syn", "arp-reply", "ipv6-udp")]
    path = tmp_path / "sll.pcap"
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 113))
        for frame in frames:
            # packet type, ARPHRD_ETHER, address length, address (8 bytes), protocol
            sll = struct.pack(">HHH8sH", 0, 1, 6, frame[6:12] + b"\0\0", struct.unpack(
                ">H", frame[12:14])[0])
            rec = sll + frame[14:]
            f.write(struct.pack("<IIII", 1, 2, len(rec), len(rec)) + rec)
    want = subprocess.run([ofctl, "parse-pcap", str(path)], capture_output=True, text=True,
                          timeout=60)
    got = subprocess.run([sys.executable, "-m", "ovsnet", "parse-pcap", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert want.returncode == 0 and got.returncode == 0, (want.stderr, got.stderr)
    assert got.stdout == want.stdout


def test_known_differences_name_real_packets():
    names = {name for name, _ in base_packets()}
    assert set(KNOWN_DIFFERENCES) <= names



# ---------------------------------------------------------------------------
# The pcap reader and writer, and the CLI's errors (no Open vSwitch needed)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("byteorder", ["little", "big"])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_pcap_round_trip(tmp_path, byteorder, nanosecond):
    frames = [pkt for _, pkt in base_packets()[:20]] + [b""]
    records = [PcapRecord(f, ts_sec=1700000000 + i, ts_nsec=123456000 + i * 1000)
               for i, f in enumerate(frames)]
    path = tmp_path / "x.pcap"
    assert write_pcap(path, records, byteorder=byteorder, nanosecond=nanosecond) == len(frames)
    got = list(iter_pcap(path))
    assert [r.data for r in got] == frames == read_pcap(path)
    assert [(r.ts_sec, r.ts_nsec) for r in got] == [(r.ts_sec, r.ts_nsec) for r in records]
    assert [r.orig_len for r in got] == [len(f) for f in frames]


def _header(magic=0xA1B2C3D4, linktype=1, order="<"):
    return struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)


BAD_FILES = [
    ("empty", b"", r"not a pcap file: 0 bytes, shorter than the 24-byte pcap header"),
    ("short-header", _header()[:10], r"not a pcap file: 10 bytes"),
    ("pcapng", bytes.fromhex("0a0d0d0a") + bytes(20),
     r"bad magic number 0x0a0d0d0a at offset 0: expected a1b2c3d4 or a1b23c4d .*pcapng"),
    ("linktype-raw-ip", _header(linktype=101),
     r"link type 101 is not supported: expected 1 \(Ethernet\) or 113 \(Linux SLL\)"),
    ("record-header-cut", _header() + struct.pack("<IIII", 0, 0, 4, 4) + b"abcd" + bytes(7),
     r"packet 1 at offset 44: record header cut short \(7 of 16 bytes\)"),
    ("record-data-cut", _header(order=">") + struct.pack(">IIII", 0, 0, 60, 60) + bytes(20),
     r"packet 0 at offset 24: cut short: 20 of 60 bytes"),
    ("record-huge", _header() + struct.pack("<IIII", 0, 0, 1 << 20, 1 << 20),
     r"packet 0 at offset 24: captured length 1048576 is more than 262144"),
    ("sll-short", _header(linktype=113) + struct.pack("<IIII", 0, 0, 8, 8) + bytes(8),
     r"8 bytes is too short for a 16-byte Linux SLL header"),
    ("sll-address-len", _header(linktype=113) + struct.pack("<IIII", 0, 0, 16, 16)
     + struct.pack(">HHH8sH", 0, 1, 8, bytes(8), 0x800),
     r"Linux SLL address length 8: only 6-byte \(Ethernet\) addresses are supported"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_unreadable_pcap_files_say_why(tmp_path, name, content, message):
    path = tmp_path / f"{name}.pcap"
    path.write_bytes(content)
    with pytest.raises(PcapError, match=message) as info:
        read_pcap(path)
    assert str(info.value).startswith(f"{path}: ")
    assert info.value.exit_code == 2


def test_missing_pcap_file(tmp_path):
    with pytest.raises(PcapError, match=r"nope.pcap: cannot open: No such file or directory"):
        read_pcap(tmp_path / "nope.pcap")


def test_write_pcap_refuses_what_it_cannot_write(tmp_path):
    with pytest.raises(PcapError, match="byteorder='middle'"):
        write_pcap(tmp_path / "x.pcap", [], byteorder="middle")
    with pytest.raises(PcapError, match="packet 0 is 70 bytes: more than the snap length 64"):
        write_pcap(tmp_path / "x.pcap", [bytes(70)], snaplen=64)


def test_cli_prints_flows_then_fails_on_a_cut_record(tmp_path, capsys):
    good = tmp_path / "good.pcap"
    write_pcap(good, [pkt for name, pkt in base_packets() if name in ("tcp-syn", "arp-reply")])
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(good.read_bytes()[:-5])
    assert cli_main(["parse-pcap", str(good), str(bad)]) == 2
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 3 and lines[0] == lines[2] and lines[0].startswith("tcp,in_port=ANY,")
    assert lines[1].startswith("arp,in_port=ANY,")
    assert err == f"ovsnet: error: {bad}: packet 1 at offset 94: cut short: 37 of 42 bytes\n"


def test_cli_needs_a_file(capsys):
    assert cli_main(["parse-pcap"]) == 2
    assert "Missing argument" in capsys.readouterr().err
