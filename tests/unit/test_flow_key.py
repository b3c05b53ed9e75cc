"""Tests of ovsnet.datapath.flow_key: the key layout, extraction, the batch API.

Every extraction test body runs against both implementations through the
``impl`` fixture: the pure-Python reference and the compiled
``ovsnet._flow_key``. The compiled one is skipped when the extension is not
built, except under ``CI=true``, where a missing extension fails. Hypothesis
throws random, truncated and mutated frames at both and requires the same
key; the guard-page tests put each frame right before an inaccessible page,
so a compiled read past the end of a packet crashes the test run instead of
passing unnoticed.

What OVS itself prints for these packets is checked in
tests/differential/test_parse_pcap.py.
"""

from __future__ import annotations

import ast
import ctypes
import ctypes.util
import mmap
import os
import struct
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.contrib.mpls import MPLS
from scapy.contrib.nsh import NSH
from scapy.layers.igmp import IGMP
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import ARP, LLC, SNAP, STP, Dot1AD, Dot1Q, Dot3, Ether
from scapy.layers.sctp import SCTP

from ovsnet.datapath import flow_key as FK
from ovsnet.datapath.flow_format import format_flow
from ovsnet.datapath.flow_key import FIELDS, KEY_SIZE, KEY_WORDS, FlowKey, Tunnel
from ovsnet.datapath.packet import PacketBatch
from ovsnet.errors import PacketError

IN_CI = os.environ.get("CI") == "true"

MAC_A, MAC_B = "00:1b:21:3c:4d:5e", "52:54:00:ab:cd:ef"
IP_A, IP_B = "192.0.2.1", "198.51.100.7"
V6_A, V6_B = "2001:db8::1", "fe80::5054:ff:feab:cdef"
ZERO = FlowKey(bytes(KEY_SIZE)).to_dict()
PORT = 7
_PROT_NONE = 0  # <sys/mman.h>; Python's mmap module does not export it


def _native_or_skip():
    if FK.native is None:
        if IN_CI:
            pytest.fail("ovsnet._flow_key is not built: CI must run setup.py build_ext first")
        pytest.skip("ovsnet._flow_key is not built (pip install -e .)")
    return FK.native


@pytest.fixture(scope="module", params=["python", "cython"])
def impl(request):
    """The reference or the compiled implementation: same names, same behaviour."""
    return FK.reference if request.param == "python" else _native_or_skip()


@pytest.fixture(scope="module")
def native():
    return _native_or_skip()


def _e(**kw) -> Ether:
    return Ether(**{"src": MAC_A, "dst": MAC_B, **kw})


def _ip(**kw) -> IP:
    return IP(**{"src": IP_A, "dst": IP_B, **kw})


def _ip6(**kw) -> IPv6:
    return IPv6(**{"src": V6_A, "dst": V6_B, **kw})


# ---------------------------------------------------------------------------
# Layout
# ---------------------------------------------------------------------------


def test_layout_is_flat_aligned_and_without_overlap():
    assert KEY_SIZE % 8 == 0 and KEY_WORDS == KEY_SIZE // 8
    end = 0
    for f in FIELDS:
        assert f.offset >= end, f"{f.name} overlaps the field before it"
        assert f.offset % min(f.size, 8) == 0 or f.kind in ("mac", "bytes", "ipv6"), f.name
        end = f.offset + f.size
    assert end == KEY_SIZE, "the Geneve options are the last field"
    assert FIELDS[-1].name == "tun_opts" and FIELDS[-1].size == FK.GENEVE_OPTS_MAX
    assert len({f.name for f in FIELDS}) == len(FIELDS)


def test_segments_tile_the_key():
    spans = sorted(FK.SEGMENTS.values())
    assert spans[0][0] == 0 and spans[-1][1] == KEY_SIZE
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert all(s % 8 == 0 and e % 8 == 0 for s, e in spans)


def test_compiled_struct_matches_the_field_table(native):
    import ovsnet._flow_key as compiled

    assert compiled.KEY_SIZE == KEY_SIZE and compiled.KEY_WORDS == KEY_WORDS
    assert compiled.field_offsets() == {f.name: (f.offset, f.size) for f in FIELDS}


def test_public_names_are_the_selected_implementation():
    chosen = FK.native if FK.native is not None else FK.reference
    assert FK.extract is chosen.extract and FK.extract_batch is chosen.extract_batch
    assert FK.IMPLEMENTATION == ("cython" if FK.native is not None else "python")
    if IN_CI:
        assert FK.IMPLEMENTATION == "cython"


def test_stub_lists_the_compiled_functions(native):
    import ovsnet._flow_key as compiled

    stub = Path(FK.__file__).parents[1] / "_flow_key.pyi"
    tree = ast.parse(stub.read_text())
    stubbed = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    public = {n for n in dir(compiled) if not n.startswith("_") and callable(getattr(compiled, n))}
    assert stubbed == public
    assert set(vars(FK.reference)) == set(vars(native))


# ---------------------------------------------------------------------------
# Extraction: what is kept, what is zeroed (one table, both implementations)
# ---------------------------------------------------------------------------

L2 = {"in_port": PORT, "dl_src": MAC_A, "dl_dst": MAC_B}
IP4 = {**L2, "dl_type": 0x0800, "nw_src": IP_A, "nw_dst": IP_B, "nw_ttl": 64}
IP6 = {**L2, "dl_type": 0x86DD, "ipv6_src": V6_A, "ipv6_dst": V6_B, "nw_ttl": 64}


def _lse(label: int, tc: int, bos: int, ttl: int) -> int:
    return label << 12 | tc << 9 | bos << 8 | ttl


def _nd_ns_sll_tll():
    return (_e() / _ip6(hlim=255) / ICMPv6ND_NS(tgt=V6_B)
            / ICMPv6NDOptDstLLAddr(lladdr=MAC_B) / ICMPv6NDOptSrcLLAddr(lladdr=MAC_A))


#: (name, frame, every nonzero field of its key)
CASES = [
    ("empty", b"", {"in_port": PORT}),
    ("13-bytes", bytes(_e())[:13], {"in_port": PORT}),
    ("eth-header-only", bytes(_e(type=0x0800)), {**L2, "dl_type": 0x0800}),
    ("tcp", _e() / _ip(tos=0xB9, ttl=33) / TCP(sport=1234, dport=80, flags="SA"),
     {**IP4, "nw_tos": 0xB9, "nw_ttl": 33, "nw_proto": 6, "tp_src": 1234, "tp_dst": 80,
      "tcp_flags": 0x12}),
    ("tcp-12-flag-bits", _e() / _ip() / TCP(sport=1, dport=2, flags=0x1FF, reserved=7),
     {**IP4, "nw_proto": 6, "tp_src": 1, "tp_dst": 2, "tcp_flags": 0xFFF}),
    ("tcp-data-offset-4", _e() / _ip() / TCP(dataofs=4), {**IP4, "nw_proto": 6}),
    ("tcp-cut-by-tot-len", _e(type=0x0800) / bytes(_ip(len=30) / TCP()),
     {**IP4, "nw_proto": 6}),
    ("udp", _e() / _ip() / UDP(sport=5353, dport=53),
     {**IP4, "nw_proto": 17, "tp_src": 5353, "tp_dst": 53}),
    ("udp-7-bytes", (_e() / _ip(proto=17, len=27) / bytes(7)),
     {**IP4, "nw_proto": 17}),
    ("sctp", _e() / _ip() / SCTP(sport=2905, dport=36412),
     {**IP4, "nw_proto": 132, "tp_src": 2905, "tp_dst": 36412}),
    ("icmp", _e() / _ip() / ICMP(type=3, code=13),
     {**IP4, "nw_proto": 1, "tp_src": 3, "tp_dst": 13}),
    ("igmp", _e() / _ip(ttl=1) / IGMP(type=0x16, mrcode=9, gaddr="239.1.2.3"),
     {**IP4, "nw_ttl": 1, "nw_tos": 0xC0, "nw_proto": 2, "tp_src": 0x16, "tp_dst": 9,
      "igmp_group_ip4": 0xEF010203}),
    ("ipv4-options", _e() / _ip(options=[IPOption_RR()]) / UDP(sport=9, dport=10),
     {**IP4, "nw_proto": 17, "tp_src": 9, "tp_dst": 10}),
    ("ipv4-frag-first", _e() / _ip(flags="MF") / UDP(sport=9, dport=10),
     {**IP4, "nw_proto": 17, "nw_frag": 1, "tp_src": 9, "tp_dst": 10}),
    ("ipv4-frag-later", _e() / _ip(frag=10, proto=17) / bytes(16),
     {**IP4, "nw_proto": 17, "nw_frag": 3}),
    ("ipv4-df-is-no-fragment", _e() / _ip(flags="DF") / UDP(sport=9, dport=10),
     {**IP4, "nw_proto": 17, "tp_src": 9, "tp_dst": 10}),
    ("ipv4-ihl-4", _e(type=0x0800) / (b"\x44" + bytes(39)), {**L2, "dl_type": 0x0800}),
    ("ipv4-tot-len-past-frame", _e() / _ip(len=1000) / UDP(), {**L2, "dl_type": 0x0800}),
    ("ipv4-19-bytes", _e(type=0x0800) / bytes(_ip())[:19], {**L2, "dl_type": 0x0800}),
    ("ipv6-tcp", _e() / _ip6(tc=0xB9, fl=0xABCDE, hlim=3) / TCP(sport=1, dport=2, flags="R"),
     {**IP6, "nw_tos": 0xB9, "ipv6_label": 0xABCDE, "nw_ttl": 3, "nw_proto": 6, "tp_src": 1,
      "tp_dst": 2, "tcp_flags": 4}),
    ("ipv6-ext-chain", _e() / _ip6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting()
     / IPv6ExtHdrDestOpt() / UDP(sport=3, dport=4),
     {**IP6, "nw_proto": 17, "tp_src": 3, "tp_dst": 4}),
    ("ipv6-frag-first", _e() / _ip6() / IPv6ExtHdrFragment(m=1) / UDP(sport=3, dport=4),
     {**IP6, "nw_proto": 17, "nw_frag": 1, "tp_src": 3, "tp_dst": 4}),
    ("ipv6-frag-later", _e() / _ip6() / IPv6ExtHdrFragment(offset=8, nh=17) / bytes(8),
     {**IP6, "nw_proto": 44, "nw_frag": 3}),
    ("ipv6-ext-cut-short", _e() / _ip6(fl=5, tc=8) / IPv6ExtHdrHopByHop(len=3) / bytes(8),
     {**IP6, "nw_ttl": 0}),  # the addresses stay; tos, ttl, proto and label do not
    ("ipv6-plen-past-frame", _e() / _ip6(plen=100) / UDP(), {**L2, "dl_type": 0x86DD}),
    ("icmpv6-echo", _e() / _ip6() / ICMPv6EchoRequest(),
     {**IP6, "nw_proto": 58, "tp_src": 128}),
    ("nd-ns-tll-then-sll", _nd_ns_sll_tll(),
     {**IP6, "nw_ttl": 255, "nw_proto": 58, "tp_src": 135, "nd_target": V6_B,
      "arp_sha": MAC_A, "arp_tha": MAC_B, "tcp_flags": 2}),
    ("nd-na-flags", _e() / _ip6() / ICMPv6ND_NA(tgt=V6_A, R=1, S=0, O=1),
     {**IP6, "nw_ttl": 255, "nw_proto": 58, "tp_src": 136, "nd_target": V6_A,
      "igmp_group_ip4": 0xA0000000}),
    ("nd-duplicate-sll", _e() / _ip6() / ICMPv6ND_NS(tgt=V6_B)
     / ICMPv6NDOptSrcLLAddr(lladdr=MAC_A) / ICMPv6NDOptSrcLLAddr(lladdr=MAC_B),
     {**IP6, "nw_ttl": 255, "nw_proto": 58, "tp_src": 135, "tcp_flags": 1}),
    ("nd-target-cut-short", (_e() / _ip6(plen=16, nh=58) / bytes(ICMPv6ND_NS(tgt=V6_B))[:16]),
     {**IP6, "nw_proto": 58, "tp_src": 135}),
    ("arp", _e() / ARP(op=2, hwsrc=MAC_B, psrc=IP_B, hwdst=MAC_A, pdst=IP_A),
     {**L2, "dl_type": 0x0806, "nw_src": IP_B, "nw_dst": IP_A, "nw_proto": 2,
      "arp_sha": MAC_B, "arp_tha": MAC_A}),
    ("arp-op-256", _e() / ARP(op=256, hwsrc=MAC_B, psrc=IP_B, pdst=IP_A),
     {**L2, "dl_type": 0x0806, "nw_src": IP_B, "nw_dst": IP_A, "arp_sha": MAC_B}),
    ("arp-27-bytes", _e(type=0x0806) / bytes(ARP(psrc=IP_A))[:27], {**L2, "dl_type": 0x0806}),
    ("rarp", _e(type=0x8035) / ARP(op=3, hwsrc=MAC_A, psrc="0.0.0.0", hwdst=MAC_A),
     {**L2, "dl_type": 0x8035, "nw_proto": 3, "arp_sha": MAC_A, "arp_tha": MAC_A}),
    ("qinq", _e() / Dot1AD(vlan=10, prio=1) / Dot1Q(vlan=20, prio=3) / _ip() / UDP(),
     {**IP4, "vlan_tpid": 0x88A8, "vlan_tci": 0x3000 | 10, "vlan1_tpid": 0x8100,
      "vlan1_tci": 0x7000 | 20, "nw_proto": 17, "tp_src": 53, "tp_dst": 53}),
    ("vlan-dei-set", _e() / Dot1Q(vlan=5, dei=1, type=0x88CC),
     {**L2, "vlan_tpid": 0x8100, "vlan_tci": 0x1005, "dl_type": 0x88CC}),
    ("three-tags", _e() / Dot1Q(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / _ip(),
     {**L2, "vlan_tpid": 0x8100, "vlan_tci": 0x1001, "vlan1_tpid": 0x8100,
      "vlan1_tci": 0x1002, "dl_type": 0x8100}),
    ("tag-cut-short", bytes(_e() / Dot1Q(vlan=1))[:17],
     {**L2, "dl_type": 0x8100}),
    ("mpls-4", _e() / MPLS(label=1, cos=2, s=0, ttl=3) / MPLS(label=4, s=0, ttl=5)
     / MPLS(label=6, s=0, ttl=7) / MPLS(label=8, s=1, ttl=9) / _ip(),
     {**L2, "dl_type": 0x8847, "mpls_lse0": _lse(1, 2, 0, 3), "mpls_lse1": _lse(4, 0, 0, 5),
      "mpls_lse2": _lse(6, 0, 0, 7)}),
    ("mpls-mcast-1", _e(type=0x8848) / MPLS(label=77, s=1, ttl=1) / _ip(),
     {**L2, "dl_type": 0x8848, "mpls_lse0": _lse(77, 0, 1, 1)}),
    ("snap-ipv4", Dot3(src=MAC_A, dst=MAC_B) / LLC() / SNAP() / _ip() / UDP(),
     {**IP4, "nw_proto": 17, "tp_src": 53, "tp_dst": 53}),
    ("llc-stp", Dot3(src=MAC_A, dst=MAC_B) / LLC(dsap=0x42, ssap=0x42, ctrl=3) / STP(),
     {**L2, "dl_type": 0x05FF}),
    ("snap-foreign-oui", Dot3(src=MAC_A, dst=MAC_B) / LLC() / SNAP(OUI=12, code=0x2000),
     {**L2, "dl_type": 0x05FF}),
    ("nsh-md1", _e() / NSH(mdtype=1, nextproto=1, spi=42, si=254, ttl=5, oam=1,
                           context_header=struct.pack(">4I", 1, 2, 3, 4)) / _ip(),
     {**L2, "dl_type": 0x894F, "nsh_flags": 2, "nsh_ttl": 5, "nsh_mdtype": 1, "nsh_np": 1,
      "nsh_path_hdr": 42 << 8 | 254, "nsh_c1": 1, "nsh_c2": 2, "nsh_c3": 3, "nsh_c4": 4}),
]


@pytest.mark.parametrize(("name", "frame", "fields"), CASES, ids=[c[0] for c in CASES])
def test_extract_keeps_and_zeroes_fields_as_ovs(impl, name, frame, fields):
    key = impl.extract(bytes(frame), PORT)
    assert key.to_dict() == {**ZERO, **fields}


@pytest.mark.parametrize(("name", "frame", "fields"), CASES, ids=[c[0] for c in CASES])
def test_batch_extract_gives_the_single_packet_keys(impl, name, frame, fields):
    packet = bytes(frame)
    batch = PacketBatch.from_packets([packet, packet[: len(packet) // 2]], PORT,
                                     slot_size=max(len(packet), 1))
    out = np.zeros((2, KEY_WORDS), dtype=np.uint64)
    impl.extract_batch(batch, out)
    assert FlowKey.from_words(out[0]) == impl.extract(packet, PORT)
    assert FlowKey.from_words(out[1]) == impl.extract(packet[: len(packet) // 2], PORT)


def test_extract_accepts_any_byte_buffer(impl):
    frame = bytes(_e() / _ip() / TCP())
    want = impl.extract(frame)
    assert impl.extract(bytearray(frame)) == want
    assert impl.extract(memoryview(frame)) == want
    assert impl.extract(np.frombuffer(frame, dtype=np.uint8)) == want
    with pytest.raises(TypeError):
        impl.extract(None)
    with pytest.raises(TypeError):
        impl.extract("not bytes")
    with pytest.raises(PacketError, match="1-D buffer of bytes"):
        impl.extract(np.zeros(4, dtype=np.uint32))


# ---------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------


def test_metadata_is_copied_and_the_packet_cannot_touch_it(impl):
    frame = bytes(_e() / _ip() / UDP())
    tunnel = Tunnel(tun_id=0x123456, ipv4_src="10.0.0.1", ipv4_dst="10.0.0.2", tos=4, ttl=63,
                    tp_src=50000, tp_dst=6081, flags=FK.TNL_F_KEY | FK.TNL_F_CSUM,
                    geneve_opts=bytes(range(8)))
    key = impl.extract(frame, 0xFFFFFFFF, recirc_id=5, dp_hash=0xDEADBEEF, skb_mark=0x42,
                       priority=7, ct_state=0x21, ct_zone=9, ct_mark=0x99,
                       ct_label=1 << 127 | 5, tunnel=tunnel)
    plain = impl.extract(frame, 0xFFFFFFFF)
    d = key.to_dict()
    assert d["in_port"] == 0xFFFFFFFF and d["recirc_id"] == 5 and d["dp_hash"] == 0xDEADBEEF
    assert (d["skb_mark"], d["priority"], d["ct_state"], d["ct_zone"], d["ct_mark"]) == (
        0x42, 7, 0x21, 9, 0x99)
    assert d["ct_label"] == 1 << 127 | 5
    assert (d["tun_id"], d["tun_ipv4_src"], d["tun_ipv4_dst"]) == (0x123456, "10.0.0.1",
                                                                  "10.0.0.2")
    assert (d["tun_tos"], d["tun_ttl"], d["tun_tp_src"], d["tun_tp_dst"]) == (4, 63, 50000, 6081)
    assert d["tun_flags"] == FK.TNL_F_KEY | FK.TNL_F_CSUM
    assert d["tun_opts_len"] == 8 and d["tun_opts"] == bytes(range(8))
    for f in FIELDS:  # the packet fields are the same with or without metadata
        if 32 <= f.offset < 192:
            assert d[f.name] == plain.to_dict()[f.name], f.name


def test_ipv6_tunnel(impl):
    key = impl.extract(b"", tunnel=Tunnel(ipv6_src=V6_A, ipv6_dst=bytes(15) + b"\x01"))
    assert key.tun_ipv6_src == V6_A and key.tun_ipv6_dst == "::1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"in_port": -1}, "in_port=-1 is out of range"),
        ({"in_port": 1 << 32}, "in_port=4294967296 is out of range"),
        ({"recirc_id": 1 << 32}, "recirc_id"),
        ({"ct_state": 256}, "ct_state"),
        ({"ct_zone": 1 << 16}, "ct_zone"),
        ({"ct_label": 1 << 128}, "ct_label"),
        ({"tunnel": Tunnel(tun_id=5)}, "tunnel metadata needs a destination"),
        ({"tunnel": Tunnel(ipv4_dst="1.2.3.4", geneve_opts=bytes(3))}, "multiple of 4"),
        ({"tunnel": Tunnel(ipv4_dst="1.2.3.4", geneve_opts=bytes(260))}, "at most 256"),
        ({"tunnel": Tunnel(ipv4_dst="1.2.3.400")}, "not an IPv4 address"),
        ({"tunnel": Tunnel(ipv6_dst="1::2::3")}, "not an IPv6 address"),
        ({"tunnel": Tunnel(ipv6_dst=bytes(4))}, "an IPv6 address is 16 bytes"),
        ({"tunnel": Tunnel(ipv4_dst="1.2.3.4", tos=256)}, "tunnel.tos"),
    ],
)
def test_bad_metadata_is_refused(impl, kwargs, message):
    with pytest.raises(PacketError, match=message):
        impl.extract(b"", **kwargs)


def test_tunnel_must_be_a_tunnel(impl):
    with pytest.raises(TypeError, match="Tunnel"):
        impl.extract(b"", tunnel={"ipv4_dst": "1.2.3.4"})


# ---------------------------------------------------------------------------
# The batch API: checks before any C loop, same messages from both
# ---------------------------------------------------------------------------


def _batch(n=3, slot=64):
    return PacketBatch.from_packets([bytes(_e() / _ip() / UDP())] * n, PORT, slot_size=slot)


def _duck(data, lengths, in_ports):
    return SimpleNamespace(data=data, lengths=lengths, in_ports=in_ports)


BAD_BATCHES = [
    ("keys-out-list", lambda: (_batch(), [[0] * KEY_WORDS] * 3),
     "keys_out must be a numpy array of dtype uint64, got list"),
    ("keys-out-float", lambda: (_batch(), np.zeros((3, KEY_WORDS))),
     "keys_out has dtype float64: must be uint64"),
    ("keys-out-int64", lambda: (_batch(), np.zeros((3, KEY_WORDS), dtype=np.int64)),
     "keys_out has dtype int64: must be uint64"),
    ("keys-out-big-endian", lambda: (_batch(), np.zeros((3, KEY_WORDS), dtype=">u8")),
     "keys_out has dtype >u8: must be uint64"),
    ("keys-out-1d", lambda: (_batch(), np.zeros(3 * KEY_WORDS, dtype=np.uint64)),
     "keys_out has 1 dimension"),
    ("keys-out-narrow", lambda: (_batch(), np.zeros((3, KEY_WORDS - 1), dtype=np.uint64)),
     rf"keys_out has shape \(3, {KEY_WORDS - 1}\): must be \(n, {KEY_WORDS}\) with n >= 3"),
    ("keys-out-short", lambda: (_batch(), np.zeros((2, KEY_WORDS), dtype=np.uint64)),
     r"keys_out has shape \(2, 66\): must be \(n, 66\) with n >= 3"),
    ("keys-out-strided", lambda: (_batch(), np.zeros((6, KEY_WORDS), dtype=np.uint64)[::2]),
     "keys_out must be C-contiguous"),
    ("keys-out-fortran", lambda: (_batch(), np.zeros((KEY_WORDS, 3), dtype=np.uint64).T),
     "keys_out must be C-contiguous"),
    ("keys-out-read-only", lambda: (_batch(), np.zeros((3, KEY_WORDS), dtype=np.uint64)
                                    .view()), "keys_out is read-only"),
    ("data-int8", lambda: (_duck(np.zeros((3, 64), np.int8), np.zeros(3, np.int32),
                                 np.zeros(3, np.uint32)), None),
     "batch.data has dtype int8: must be uint8"),
    ("data-1d", lambda: (_duck(np.zeros(64, np.uint8), np.zeros(3, np.int32),
                               np.zeros(3, np.uint32)), None),
     "batch.data has 1 dimension"),
    ("lengths-int64", lambda: (_duck(np.zeros((3, 64), np.uint8), np.zeros(3, np.int64),
                                     np.zeros(3, np.uint32)), None),
     "batch.lengths has dtype int64: must be int32"),
    ("in-ports-list", lambda: (_duck(np.zeros((3, 64), np.uint8), np.zeros(3, np.int32),
                                     [0, 0, 0]), None),
     "batch.in_ports must be a numpy array of dtype uint32, got list"),
    ("in-ports-count", lambda: (_duck(np.zeros((3, 64), np.uint8), np.zeros(3, np.int32),
                                      np.zeros(2, np.uint32)), None),
     "batch has 3 lengths but 2 in_ports"),
    ("more-lengths-than-slots", lambda: (_duck(np.zeros((2, 64), np.uint8),
                                               np.zeros(3, np.int32),
                                               np.zeros(3, np.uint32)), None),
     "batch has 3 lengths but only 2 slots"),
    ("length-past-slot", lambda: (_duck(np.zeros((3, 64), np.uint8),
                                        np.array([1, 65, 1], np.int32),
                                        np.zeros(3, np.uint32)), None),
     r"packet 1 of the batch has length 65: must be in 0\.\.64 \(the slot size\)"),
    ("negative-length", lambda: (_duck(np.zeros((3, 64), np.uint8),
                                       np.array([1, 1, -1], np.int32),
                                       np.zeros(3, np.uint32)), None),
     r"packet 2 of the batch has length -1"),
]


@pytest.mark.parametrize(("name", "make", "message"), BAD_BATCHES, ids=[b[0] for b in BAD_BATCHES])
def test_bad_batches_are_refused_before_the_loop(impl, name, make, message):
    batch, out = make()
    if out is None:
        out = np.full((3, KEY_WORDS), 0xAB, dtype=np.uint64)
    elif name == "keys-out-read-only":
        out.flags.writeable = False
    before = out.copy() if isinstance(out, np.ndarray) else None
    with pytest.raises(PacketError, match=message):
        impl.extract_batch(batch, out)
    if before is not None:
        assert np.array_equal(out, before), "nothing was written"


def test_rows_past_the_batch_are_left_alone(impl):
    out = np.full((8, KEY_WORDS), 0x5A5A5A5A5A5A5A5A, dtype=np.uint64)
    impl.extract_batch(_batch(3), out)
    assert (out[3:] == 0x5A5A5A5A5A5A5A5A).all()
    assert FlowKey.from_words(out[2]) == impl.extract(bytes(_e() / _ip() / UDP()), PORT)


def test_empty_batch(impl):
    out = np.zeros((0, KEY_WORDS), dtype=np.uint64)
    impl.extract_batch(PacketBatch(0, 64), out)


# ---------------------------------------------------------------------------
# FlowKey
# ---------------------------------------------------------------------------


def test_flow_key_object():
    key = FK.reference.extract(bytes(_e() / _ip() / TCP(sport=1, dport=2)), 3)
    assert key.tp_dst == 2 and key.nw_src == IP_A and key.dl_src == MAC_A
    assert list(key.to_dict()) == [f.name for f in FIELDS]
    assert FlowKey.from_words(key.words()) == key and hash(FlowKey(key.raw)) == hash(key)
    assert key.field_bytes("dl_type") == b"\x08\x00"
    assert key.words().dtype == np.uint64 and key.words().shape == (KEY_WORDS,)
    assert repr(key).startswith("FlowKey(in_port=3, dl_dst='52:54:00:ab:cd:ef'")
    assert key != FK.reference.extract(b"", 3) and key != "x"
    with pytest.raises(AttributeError, match="FlowKey has no field 'nw_srcc'"):
        _ = key.nw_srcc
    with pytest.raises(PacketError, match=f"a flow key is {KEY_SIZE} bytes, got 3"):
        FlowKey(b"abc")
    with pytest.raises(PacketError, match="uint64 words"):
        FlowKey.from_words(np.zeros(3, dtype=np.uint64))


def test_padding_is_zero(impl):
    frame = bytes(_nd_ns_sll_tll())
    raw = impl.extract(frame, 1, tunnel=Tunnel(ipv4_dst="1.2.3.4")).raw
    used = bytearray(KEY_SIZE)
    for f in FIELDS:
        used[f.offset : f.offset + f.size] = b"\x01" * f.size
    assert all(raw[i] == 0 for i in range(KEY_SIZE) if not used[i])


# ---------------------------------------------------------------------------
# Property and fuzz tests: random, truncated and mutated frames
# ---------------------------------------------------------------------------

SEEDS = [bytes(frame) for _, frame, _ in CASES if len(bytes(frame)) >= 14] + [
    bytes(_e() / _ip6() / IPv6ExtHdrFragment(m=1) / IPv6ExtHdrDestOpt() / ICMPv6ND_NS(tgt=V6_A)
          / ICMPv6NDOptSrcLLAddr(lladdr=MAC_A) / ICMPv6NDOptDstLLAddr(lladdr=MAC_B)),
    bytes(_e() / Dot1Q(vlan=3) / _ip6() / IPv6ExtHdrRouting(addresses=[V6_A]) / TCP()),
]


@st.composite
def frames(draw):
    """A seed frame, cut short somewhere, with a few bytes replaced; or random bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=160))
    frame = bytearray(draw(st.sampled_from(SEEDS)))
    for pos, value in draw(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)),
                                    max_size=4)):
        if pos < len(frame):
            frame[pos] = value
    return bytes(frame[: draw(st.integers(0, len(frame)))])


@settings(max_examples=1500, deadline=None)
@given(frame=frames(), port=st.integers(0, 0xFFFFFFFF))
def test_compiled_equals_reference_on_any_bytes(frame, port):
    native = _native_or_skip()
    want = FK.reference.extract(frame, port)
    assert native.extract(frame, port) == want
    format_flow(want)  # and any key can be printed


@settings(max_examples=200, deadline=None)
@given(frame=frames(), recirc=st.integers(0, 0xFFFFFFFF), mark=st.integers(0, 0xFFFFFFFF),
       opts=st.binary(max_size=64).map(lambda b: b[: len(b) // 4 * 4]))
def test_compiled_equals_reference_with_metadata(frame, recirc, mark, opts):
    native = _native_or_skip()
    md = {"recirc_id": recirc, "skb_mark": mark,
          "tunnel": Tunnel(tun_id=recirc, ipv4_dst="10.0.0.9", geneve_opts=opts)}
    assert native.extract(frame, 3, **md) == FK.reference.extract(frame, 3, **md)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packets=st.lists(frames(), max_size=40), ports=st.integers(0, 0xFFFFFFFF),
       extra=st.integers(0, 3))
def test_batch_equals_per_packet_reference(packets, ports, extra):
    native = _native_or_skip()
    slot = max([len(p) for p in packets] + [1])
    batch = PacketBatch.from_packets(packets, ports, slot_size=slot + extra)
    out = np.zeros((len(packets), KEY_WORDS), dtype=np.uint64)
    native.extract_batch(batch, out)
    ref = np.zeros_like(out)
    FK.reference.extract_batch(batch, ref)
    assert np.array_equal(out, ref)
    for row, packet in zip(out, packets, strict=True):
        assert FlowKey.from_words(row) == FK.reference.extract(packet, ports)


# ---------------------------------------------------------------------------
# No read past the end of a packet: frames placed right before a PROT_NONE page
# ---------------------------------------------------------------------------


class GuardedBuffer:
    """Two pages; the second one inaccessible. ``place`` puts bytes right before it."""

    def __init__(self):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.page = mmap.PAGESIZE
        self.mm = mmap.mmap(-1, 2 * self.page)
        anchor = ctypes.c_char.from_buffer(self.mm)
        address = ctypes.addressof(anchor)
        del anchor
        if libc.mprotect(ctypes.c_void_p(address + self.page), self.page, _PROT_NONE):
            pytest.skip(f"mprotect failed: errno {ctypes.get_errno()}")
        self.view = memoryview(self.mm)

    def place(self, data: bytes) -> memoryview:
        start = self.page - len(data)
        self.view[start : self.page] = data
        return self.view[start : self.page]

    def as_batch(self, data: bytes):
        """A one-packet batch whose only slot ends at the guard page."""
        self.place(data)
        n = max(len(data), 1)
        arr = np.frombuffer(self.mm, dtype=np.uint8, count=n, offset=self.page - n)
        return _duck(arr.reshape(1, n), np.array([len(data)], np.int32),
                     np.array([1], np.uint32))


@pytest.fixture(scope="module")
def guarded():
    if not sys.platform.startswith("linux"):
        pytest.skip("the guard page needs Linux mprotect")
    return GuardedBuffer()


def test_no_read_past_any_truncated_seed(native, guarded):
    import ovsnet._flow_key as compiled

    out = np.zeros((1, KEY_WORDS), dtype=np.uint64)
    for seed in SEEDS:
        for n in range(len(seed) + 1):
            frame = seed[:n]
            want = FK.reference.extract(frame, 1).raw
            assert compiled.extract(guarded.place(frame), 1, None) == want
            compiled.extract_batch(guarded.as_batch(frame), out)
            assert out.tobytes() == want


@settings(max_examples=1000, deadline=None)
@given(frame=frames())
def test_no_read_past_random_frames(frame):
    import ovsnet._flow_key as compiled

    _native_or_skip()
    if not sys.platform.startswith("linux"):
        pytest.skip("the guard page needs Linux mprotect")
    guarded = _GUARD.setdefault("buffer", GuardedBuffer())
    assert compiled.extract(guarded.place(frame), 1, None) == FK.reference.extract(frame, 1).raw


_GUARD: dict[str, GuardedBuffer] = {}


# ---------------------------------------------------------------------------
# The C-level API, as the megaflow table will use it: cimport from a new module
# ---------------------------------------------------------------------------

_CIMPORT_PYX = '''
# cython: language_level=3
from libc.stdint cimport uint8_t
from ovsnet._flow_key cimport (flow_key, flow_key_extract, flow_key_extract_md,
                               flow_key_extract_reuse, FLOW_KEY_SIZE, FLOW_KEY_WORDS)

def run(const uint8_t[::1] pkt, const uint8_t[::1] md):
    cdef flow_key a, b, c
    cdef size_t i
    for i in range(FLOW_KEY_SIZE):
        (<uint8_t *>&b)[i] = 0xEE if i < 272 else 0    # reuse: options already zero
    flow_key_extract(&pkt[0], pkt.shape[0], 9, &a)
    flow_key_extract_reuse(&pkt[0], pkt.shape[0], 9, &b)
    flow_key_extract_md(&pkt[0], pkt.shape[0], <const flow_key *>&md[0], &c)
    assert FLOW_KEY_WORDS * 8 == FLOW_KEY_SIZE == sizeof(flow_key)
    return ((<char *>&a)[:FLOW_KEY_SIZE], (<char *>&b)[:FLOW_KEY_SIZE],
            (<char *>&c)[:FLOW_KEY_SIZE])
'''


def test_c_api_can_be_cimported(native, tmp_path):
    """Build a module that cimports ovsnet._flow_key, as the megaflow table will."""
    import subprocess

    import ovsnet

    root = Path(ovsnet.__file__).parents[1]
    (tmp_path / "uses_flow_key.pyx").write_text(_CIMPORT_PYX)
    (tmp_path / "setup.py").write_text(
        "from setuptools import setup, Extension\n"
        "from Cython.Build import cythonize\n"
        f"setup(ext_modules=cythonize([Extension('uses_flow_key', ['uses_flow_key.pyx'])],"
        f" include_path=[{str(root)!r}], quiet=True))\n"
    )
    proc = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        if IN_CI:
            pytest.fail(proc.stderr[-2000:])
        pytest.skip(f"cannot build a Cython test module here: {proc.stderr[-300:]}")
    sys.path.insert(0, str(tmp_path))
    try:
        import uses_flow_key
    finally:
        sys.path.remove(str(tmp_path))
    frame = bytes(_nd_ns_sll_tll())
    md = FK.metadata_template(4, recirc_id=3, tunnel=Tunnel(ipv4_dst="10.0.0.1",
                                                            geneve_opts=b"abcd"))
    plain, reused, with_md = uses_flow_key.run(frame, md)
    assert plain == reused == FK.reference.extract(frame, 9).raw
    assert with_md == FK.reference.extract(
        frame, 4, recirc_id=3, tunnel=Tunnel(ipv4_dst="10.0.0.1", geneve_opts=b"abcd")).raw


def test_the_examples_in_the_docs_run():
    """The ```python blocks of docs/datapath.md, in order, in one namespace."""
    import re

    doc = Path(__file__).parents[2] / "docs" / "datapath.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S)
    assert blocks
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(doc), "exec"), namespace)  # noqa: S102


# ---------------------------------------------------------------------------
# Printing metadata (parse-pcap never sets it, so these expectations are read
# from lib/match.c match_format and lib/flow.c flow_format, not from ovs-ofctl)
# ---------------------------------------------------------------------------

_TCP = bytes(_e() / _ip() / TCP(sport=1, dport=2, flags="S"))
_TCP_TAIL = (f"vlan_tci=0x0000,dl_src={MAC_A},dl_dst={MAC_B},nw_src={IP_A},nw_dst={IP_B},"
             "nw_tos=0,nw_ecn=0,nw_ttl=64,nw_frag=no,tp_src=1,tp_dst=2,tcp_flags=syn")

FORMAT_CASES = [
    ("port-any", {"in_port": 0xFFFF}, f"tcp,in_port=ANY,{_TCP_TAIL}"),
    ("port-local", {"in_port": 0xFFFE}, f"tcp,in_port=LOCAL,{_TCP_TAIL}"),
    ("port-zero-not-printed", {"in_port": 0}, f"tcp,{_TCP_TAIL}"),
    # OVS prints the 16-bit ofp_port half of the in_port union.
    ("port-low-16-bits", {"in_port": 0x10005}, f"tcp,in_port=5,{_TCP_TAIL}"),
    ("port-high-bits-only", {"in_port": 0x10000}, f"tcp,{_TCP_TAIL}"),
    ("metadata", {"in_port": 1, "skb_mark": 0x10, "priority": 3, "dp_hash": 7, "ct_state": 0x21,
                  "ct_zone": 5, "ct_mark": 9, "ct_label": 0x1200},
     f"pkt_mark=0x10,dp_hash=0x7,skb_priority=0x3,ct_state=new|trk,ct_zone=5,ct_mark=0x9,"
     f"ct_label=0x1200,tcp,in_port=1,{_TCP_TAIL}"),
    ("recirc-is-a-megaflow", {"in_port": 1, "recirc_id": 0x20},
     f"recirc_id=0x20,eth,tcp,in_port=1,{_TCP_TAIL}"),
    ("tunnel-with-key", {"in_port": 2, "tunnel": Tunnel(
        tun_id=0x64, ipv4_src="10.0.0.1", ipv4_dst="10.0.0.2", tos=0x1C, ttl=64,
        flags=FK.TNL_F_KEY | FK.TNL_F_DONT_FRAGMENT, geneve_opts=bytes(8))},
     "tcp,tun_id=0x64,tun_src=10.0.0.1,tun_dst=10.0.0.2,tun_ipv6_src=::,tun_ipv6_dst=::,"
     "tun_gbp_id=0,tun_gbp_flags=0,tun_tos=1c,tun_ttl=64,tun_erspan_ver=0,gtpu_flags=0,"
     f"gtpu_msgtype=0,tun_flags=df|key,in_port=2,{_TCP_TAIL}"),
    ("tunnel-without-key-flag", {"in_port": 2, "tunnel": Tunnel(tun_id=5, ipv6_dst=V6_A)},
     "tcp,tun_src=0.0.0.0,tun_dst=0.0.0.0,tun_ipv6_src=::,tun_ipv6_dst=2001:db8::1,"
     "tun_gbp_id=0,tun_gbp_flags=0,tun_tos=0,tun_ttl=0,tun_erspan_ver=0,gtpu_flags=0,"
     f"gtpu_msgtype=0,tun_flags=0,in_port=2,{_TCP_TAIL}"),
]


@pytest.mark.parametrize(("name", "md", "line"), FORMAT_CASES, ids=[c[0] for c in FORMAT_CASES])
def test_format_metadata(impl, name, md, line):
    md = dict(md)
    assert format_flow(impl.extract(_TCP, md.pop("in_port"), **md)) == line
