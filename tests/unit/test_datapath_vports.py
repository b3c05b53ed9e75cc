"""The datapath with its vports: frames in through a vport, outputs out through one.

Two datapaths ("hosts") in one process exchange real VXLAN, Geneve and GRE
frames: a VM's frame enters host A through its tap, a flow sets the tunnel
and outputs to the tunnel vport, which encapsulates; host B's tunnel vport
decapsulates the wire frame, the tunnel metadata is part of B's flow key, and
B's flow delivers the inner frame to its VM. One body per test for both
cores (``impl`` fixture); the metadata-key array (``md``) is checked the same
way by both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scapy.layers.inet import GRE, IP, UDP
from scapy.layers.l2 import Ether

from ovsnet.datapath import odp
from ovsnet.datapath.datapath import (
    IMPLEMENTATIONS,
    Datapath,
    Transmit,
    UpcallReply,
    mask_of,
    tunnel_of_key,
)
from ovsnet.datapath.flow_key import (
    KEY_SIZE,
    KEY_WORDS,
    TNL_F_KEY,
    Tunnel,
    extract,
    metadata_template,
)
from ovsnet.datapath.host import host_datapath
from ovsnet.datapath.odp_attrs import ActionAttr, nla_u32
from ovsnet.datapath.packet import PacketBatch
from ovsnet.datapath.tunnel import StaticRoutes
from ovsnet.datapath.vport import TapVport, make_vport
from ovsnet.errors import DatapathError, PacketError
from ovsnet.topology import load_topology

ROOT = Path(__file__).resolve().parents[2]

IP_A, IP_B = "192.0.2.1", "192.0.2.2"
MAC_A, MAC_B = "02:aa:00:00:00:01", "02:bb:00:00:00:01"
TAP, TUN, TAP2 = 1, 2, 3
VNI = 0x2A
GENEVE_OPT = "geneve({class=0x102,type=0x80,len=4,0xa1b2c3d4})"
UDP_PORT = {"vxlan": 4789, "geneve": 6081}


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request):
    return request.param


class Recorder:
    """An upcall handler that records the upcalls and answers ``reply``."""

    def __init__(self, reply):
        self.reply = reply
        self.upcalls = []

    def __call__(self, upcalls):
        self.upcalls.extend(upcalls)
        return [self.reply if u.kind == "miss" else None for u in upcalls]


def vm_frame(n=0, size=5):
    return bytes(Ether(src="52:54:00:00:00:01", dst="52:54:00:00:00:02")
                 / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000 + n, dport=53)
                 / (b"v" * size))


def make_host(impl, kind, ip, mac, peer_ip, peer_mac, handler=None):
    dp = Datapath(handler=handler, implementation=impl)
    routes = StaticRoutes()
    routes.add(f"{peer_ip}/32", src_ip=ip, src_mac=mac, dst_mac=peer_mac)
    tap, tap2 = TapVport(TAP, "tap0"), TapVport(TAP2, "tap1")
    tun = make_vport(kind, TUN, f"{kind}_sys", resolver=routes, local_addrs=[ip], mac=mac)
    dp.add_port("tap0", "tap", port_no=TAP, vport=tap)
    dp.add_port(tun.name, kind, port_no=TUN, vport=tun)
    dp.add_port("tap1", "tap", port_no=TAP2, vport=tap2)
    return dp, tap, tun, tap2


def set_tunnel(kind, tun_id=VNI, out=TUN):
    opt = f",{GENEVE_OPT}" if kind == "geneve" else ""
    return odp.parse_actions(f"set(tunnel(tun_id={tun_id:#x},src={IP_A},dst={IP_B},ttl=64{opt},"
                             f"flags(df|key))),{out}")


def tunnel_match(kind, tun_id=VNI):
    opt = f",{GENEVE_OPT}" if kind == "geneve" else ""
    return odp.parse_flow(f"tunnel(tun_id={tun_id:#x},src={IP_A},dst={IP_B}{opt},flags(+key)),"
                          f"in_port({TUN}),eth(),eth_type(0x0800),ipv4(frag=no)")


def encap_host_a(impl, kind):
    a, tap_a, tun_a, _ = make_host(impl, kind, IP_A, MAC_A, IP_B, MAC_B)
    a.flow_put(*odp.parse_flow(f"in_port({TAP}),eth(),eth_type(0x0800),ipv4(frag=no)"),
               set_tunnel(kind))
    return a, tap_a, tun_a


# --- end to end --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["vxlan", "geneve", "gre"])
def test_vm_to_vm_across_a_tunnel(impl, kind):
    a, tap_a, tun_a = encap_host_a(impl, kind)
    key_b, mask_b = tunnel_match(kind)
    recorder = Recorder(UpcallReply(nla_u32(ActionAttr.OUTPUT, TAP), mask_b))
    b, tap_b, tun_b, _ = make_host(impl, kind, IP_B, MAC_B, IP_A, MAC_A, recorder)

    frames = [vm_frame(0), vm_frame(0, size=40)]
    for i, frame in enumerate(frames):
        sent = a.receive_frame("tap0", frame)
        assert sent.hit == 1 and sent.tx_dropped == 0
        (port, wire), = sent.transmitted
        assert port == TUN
        outer = Ether(wire)
        assert (outer.src, outer.dst) == (MAC_A, MAC_B)
        assert (outer[IP].src, outer[IP].dst, outer[IP].ttl) == (IP_A, IP_B, 64)
        assert outer[IP].flags.DF
        if kind == "gre":
            assert outer[IP].proto == 47 and outer[GRE].key == VNI
        else:
            assert outer[UDP].dport == UDP_PORT[kind]
            # the VNI sits in bytes 4..6 of the VXLAN and of the Geneve header
            assert int.from_bytes(bytes(outer[UDP].payload)[4:7], "big") == VNI
        assert wire.endswith(frame)

        got = b.receive_frame(kind + "_sys", wire)
        assert got.rx_dropped == 0 and got.tx_dropped == 0
        assert got.transmitted == [Transmit(TAP, frame)]
        assert tap_b.guest_receive() == [frame]
        # the first frame missed (upcall, install), the second hit the megaflow
        assert (got.missed, got.hit, got.installed) == ((1, 0, 1) if i == 0 else (0, 1, 0))

    (up,) = recorder.upcalls
    assert up.packet == frames[0]
    k = up.key
    assert (k.tun_id, k.tun_ipv4_src, k.tun_ipv4_dst, k.in_port) == (VNI, IP_A, IP_B, TUN)
    assert k.tun_flags & TNL_F_KEY and k.tun_ttl == 64
    if kind == "geneve":
        assert k.tun_opts[: k.tun_opts_len] == bytes.fromhex("01028001a1b2c3d4")
    # B's key is what extract gives the inner frame with that tunnel metadata
    assert k.raw == extract(frames[0], TUN, tunnel=tunnel_of_key(k)).raw
    assert (tun_a.stats.tx_packets, tun_b.stats.rx_packets) == (2, 2)
    assert (tap_a.stats.rx_packets, tap_b.stats.tx_packets) == (2, 2)
    assert [f.packets for f in b.flows()] == [1]


@pytest.mark.parametrize("kind", ["vxlan", "geneve", "gre"])
def test_tunnel_fields_decide_the_flow(impl, kind):
    """Frames of one receive batch with different VNIs take different flows (a
    metadata row per packet), and an unknown VNI misses."""
    a, _, _ = encap_host_a(impl, kind)
    a.flow_put(*odp.parse_flow(f"in_port({TAP2}),eth(),eth_type(0x0800),ipv4(frag=no)"),
               set_tunnel(kind, tun_id=7))
    a.add_port("tap9", "tap", port_no=9, vport=TapVport(9, "tap9"))
    a.flow_put(*odp.parse_flow("in_port(9),eth(),eth_type(0x0800),ipv4(frag=no)"),
               set_tunnel(kind, tun_id=8))
    wires = []
    for port in (TAP, TAP2, 9, TAP):
        (tx,) = a.receive_frame(port, vm_frame(port)).transmitted
        wires.append(tx.frame)

    recorder = Recorder(None)
    b, tap_b, _, tap2_b = make_host(impl, kind, IP_B, MAC_B, IP_A, MAC_A, recorder)
    b.flow_put(*tunnel_match(kind, VNI), nla_u32(ActionAttr.OUTPUT, TAP))
    b.flow_put(*tunnel_match(kind, 7), nla_u32(ActionAttr.OUTPUT, TAP2))
    got = b.receive_frames(TUN, wires)
    assert (got.hit, got.missed, got.lost) == (3, 1, 1)
    assert tap_b.guest_receive() == [vm_frame(TAP), vm_frame(TAP)]
    assert tap2_b.guest_receive() == [vm_frame(TAP2)]
    (up,) = recorder.upcalls
    assert up.key.tun_id == 8 and up.packet == vm_frame(9)


def test_topology_hosts_exchange_vxlan(impl):
    """host_datapath: tunnel vports know the underlay address and take the resolver."""
    topo = load_topology(ROOT / "topologies" / "two-hosts-vxlan.yaml")
    routes = {}
    for name, peer in (("hv1", "hv2"), ("hv2", "hv1")):
        h, p = topo.host(name), topo.host(peer)
        r = StaticRoutes()
        r.add("192.0.2.0/24", src_ip=str(h.underlay.ip.ip), src_mac=h.nics["eth0"].mac,
              dst_mac=p.nics["eth0"].mac)
        routes[name] = r
    hv1 = host_datapath(topo.host("hv1"), implementation=impl, resolver=routes["hv1"])
    hv2 = host_datapath(topo.host("hv2"), implementation=impl, resolver=routes["hv2"])
    names = {dp: {v: k for k, v in dp.port_names().items()} for dp in (hv1, hv2)}
    vx1, vx2 = names[hv1]["vxlan_sys_4789"], names[hv2]["vxlan_sys_4789"]
    tap1, tap3 = names[hv1]["tapvm1-eth0"], names[hv2]["tapvm3-eth0"]
    hv1.flow_put(*odp.parse_flow(f"in_port({tap1}),eth(),eth_type(0x0800),ipv4(frag=no)"),
                 odp.parse_actions("set(tunnel(tun_id=0x64,src=192.0.2.1,dst=192.0.2.2,ttl=64,"
                                   f"flags(df|key))),{vx1}"))
    hv2.flow_put(*odp.parse_flow(f"tunnel(tun_id=0x64,src=192.0.2.1,dst=192.0.2.2),"
                                 f"in_port({vx2}),eth(),eth_type(0x0800),ipv4(frag=no)"),
                 nla_u32(ActionAttr.OUTPUT, tap3))
    frame = vm_frame()
    (tx,) = hv1.receive_frame("tapvm1-eth0", frame).transmitted
    assert Ether(tx.frame).dst == "02:00:00:00:02:00"
    assert hv2.receive_frame(vx2, tx.frame).transmitted == [Transmit(tap3, frame)]
    # hv1's own vport refuses a frame for hv2's address
    assert hv1.receive_frame(vx1, tx.frame).rx_dropped == 1
    assert hv1.port(vx1).vport.drops == {"not_local": 1}


def test_guest_queue_is_polled(impl):
    a, tap_a, tun_a = encap_host_a(impl, "vxlan")
    for n in range(3):
        assert tap_a.guest_send(vm_frame(n))
    got = a.poll("tap0", burst=2)
    assert got.hit == 2 and [t.port for t in got.transmitted] == [TUN, TUN]
    assert a.poll("tap0").hit == 1 and a.poll("tap0").hit == 0
    with pytest.raises(DatapathError, match="no guest queue to poll"):
        a.poll(TUN)


# --- drops ---------------------------------------------------------------------


def _bad_checksum(wire):
    b = bytearray(wire)
    b[24] ^= 0xFF
    return bytes(b)


def _wrong_udp_port(wire):
    b = bytearray(wire)
    b[36:38] = (9999).to_bytes(2, "big")
    return bytes(b)


@pytest.mark.parametrize(("mangle", "reason"), [
    (_bad_checksum, "ip_csum"),
    (_wrong_udp_port, "udp_port"),
    (lambda wire: wire[:40], "ip_header"),
])
def test_bad_outer_header_is_dropped_on_the_vport(impl, mangle, reason):
    a, _, _ = encap_host_a(impl, "vxlan")
    (tx,) = a.receive_frame("tap0", vm_frame()).transmitted
    recorder = Recorder(None)
    b, _, tun_b, _ = make_host(impl, "vxlan", IP_B, MAC_B, IP_A, MAC_A, recorder)
    got = b.receive_frames(TUN, [mangle(tx.frame), tx.frame])
    assert got.rx_dropped == 1
    assert tun_b.drops == {reason: 1} and tun_b.stats.rx_dropped == 1
    assert tun_b.stats.rx_packets == 1
    assert b.stats().packets == 1 and len(recorder.upcalls) == 1


def test_outputs_to_missing_or_unmodelled_ports(impl):
    dp = Datapath(implementation=impl)
    tap = TapVport(1, "tap0")
    dp.add_port("tap0", "tap", port_no=1, vport=tap)
    dp.add_port("bare", "netdev", port_no=2)  # numbered only: no vport object
    actions = nla_u32(ActionAttr.OUTPUT, 7) + nla_u32(ActionAttr.OUTPUT, 2) + nla_u32(
        ActionAttr.OUTPUT, 1)
    dp.flow_put(extract(vm_frame(), 1), mask_of("in_port"), actions)

    quiet = dp.receive(vm_frame(), 1)  # deliver=False: outputs only, no vport touched
    assert [o.port for o in quiet.outputs] == [7, 2, 1]
    assert quiet.transmitted == [] and tap.stats.tx_packets == 0 and dp.stats().tx_no_port == 0

    got = dp.receive_frame("tap0", vm_frame())
    assert [o.port for o in got.outputs] == [7, 2, 1]
    assert got.transmitted == [Transmit(2, vm_frame()), Transmit(1, vm_frame())]
    assert got.tx_dropped == 1 and dp.stats().tx_no_port == 1
    assert tap.guest_receive() == [vm_frame()]


def test_tunnel_vport_drops_are_counted(impl):
    dp, _, tun, _ = make_host(impl, "vxlan", IP_A, MAC_A, IP_B, MAC_B)
    no_info = nla_u32(ActionAttr.OUTPUT, TUN)
    no_route = odp.parse_actions(f"set(tunnel(tun_id=0x1,src={IP_A},dst=198.51.100.9,ttl=64,"
                                f"flags(key))),{TUN}")
    for actions in (no_info, no_route):
        got = dp.execute(vm_frame(), actions, in_port=TAP, deliver=True)
        assert got.transmitted == [] and got.tx_dropped == 1
    assert tun.drops == {"no_tunnel_info": 1, "no_route": 1}
    assert dp.stats().tx_no_port == 0


def test_deliver_needs_collect(impl):
    dp = Datapath(implementation=impl)
    with pytest.raises(DatapathError, match="deliver=True needs collect=True"):
        dp.process(PacketBatch.from_packets([vm_frame()], 0), collect=False, deliver=True)


# --- metadata keys (md) --------------------------------------------------------


def _misses(impl, packets, ports, md=None, *, bursts=False):
    recorder = Recorder(None)
    dp = Datapath(handler=recorder, implementation=impl)
    batch = PacketBatch.from_packets(packets, ports)
    if bursts:
        order = np.arange(len(packets), dtype=np.uint32)
        dp.run_bursts(batch.data, batch._lengths, batch._in_ports, order, burst=2, md=md)
    else:
        dp.process(batch, md=md)
    return dp, recorder


TUNNELS = [Tunnel(tun_id=5, ipv4_src=IP_A, ipv4_dst=IP_B, ttl=9, flags=TNL_F_KEY),
           Tunnel(tun_id=6, ipv6_src="2001:db8::1", ipv6_dst="2001:db8::2", tp_dst=6081,
                  geneve_opts=bytes.fromhex("0102800100000001"))]


@pytest.mark.parametrize("bursts", [False, True])
def test_md_rows_and_template_give_the_keys_extract_gives(impl, bursts):
    packets = [vm_frame(n) for n in range(3)]
    ports = [4, 5, 6]
    # a row per packet: its metadata, in_port from the batch (row in_ports are ignored)
    rows = np.stack([np.frombuffer(metadata_template(99, skb_mark=n, tunnel=TUNNELS[n % 2]),
                                   np.uint64) for n in range(3)])
    _, rec = _misses(impl, packets, ports, rows, bursts=bursts)
    assert [u.key.raw for u in rec.upcalls] == [
        extract(p, port, skb_mark=n, tunnel=TUNNELS[n % 2]).raw
        for n, (p, port) in enumerate(zip(packets, ports, strict=True))]
    # one template for every packet
    for template in (metadata_template(tunnel=TUNNELS[1]),
                     np.frombuffer(metadata_template(tunnel=TUNNELS[1]), np.uint64)):
        _, rec = _misses(impl, packets, ports, template, bursts=bursts)
        assert [u.key.raw for u in rec.upcalls] == [
            extract(p, port, tunnel=TUNNELS[1]).raw for p, port in zip(packets, ports, strict=True)]


def test_plain_batch_after_an_md_batch_has_no_tunnel_left(impl):
    dp = Datapath(handler=(rec := Recorder(None)), implementation=impl)
    batch = PacketBatch.from_packets([vm_frame(n) for n in range(4)], 3)
    dp.process(batch, md=metadata_template(tunnel=TUNNELS[1]))
    dp.process(batch)
    assert [u.key.raw for u in rec.upcalls[4:]] == [extract(vm_frame(n), 3).raw for n in range(4)]


def test_receive_with_tunnel_metadata(impl):
    dp = Datapath(handler=(rec := Recorder(None)), implementation=impl)
    dp.receive(vm_frame(), 3, tunnel=TUNNELS[0])
    assert rec.upcalls[0].key.raw == extract(vm_frame(), 3, tunnel=TUNNELS[0]).raw


def _md(shape, dtype=np.uint64):
    return np.zeros(shape, dtype=dtype)


BAD_MD = [
    ([[0] * KEY_WORDS] * 3, "md must be a numpy array of dtype uint64, got list"),
    (_md((3, KEY_WORDS), np.int64), "md has dtype int64: must be uint64"),
    (_md((3, KEY_WORDS)).astype(">u8"), "md has dtype >u8: must be uint64"),
    (_md((3, 1, KEY_WORDS)), r"md has 3 dimension\(s\): must have 1 \(one metadata key for every "
                             r"packet\) or 2 \(a key per packet\)"),
    (_md((3, 2 * KEY_WORDS))[:, ::2], "md must be C-contiguous"),
    (_md((3, KEY_WORDS - 1)), rf"md has shape \(3, {KEY_WORDS - 1}\): a metadata key is "
                              rf"{KEY_WORDS} uint64 words"),
    (_md(KEY_WORDS + 1), rf"md has shape \({KEY_WORDS + 1},\): a metadata key is"),
    (_md((2, KEY_WORDS)), "md has 2 rows for 3 packets"),
]


@pytest.mark.parametrize(("md", "message"), BAD_MD, ids=range(len(BAD_MD)))
def test_md_is_checked_before_the_loop(impl, md, message):
    dp = Datapath(implementation=impl)
    batch = PacketBatch.from_packets([vm_frame(n) for n in range(3)], 1)
    # the core's own checks (the same in both), and through the Datapath
    with pytest.raises(PacketError, match=message):
        dp._core.process(batch.data, batch._lengths, batch._in_ports, 3, 0, None, md)
    if isinstance(md, np.ndarray):
        with pytest.raises(PacketError, match=message):
            dp.process_arrays(batch.data, batch._lengths, batch._in_ports, 3, md=md)
    assert dp.stats().packets == 0


def test_md_rows_cover_every_slot_in_run_bursts(impl):
    dp = Datapath(implementation=impl)
    batch = PacketBatch.from_packets([vm_frame(n) for n in range(3)], 1)
    order = np.array([0, 1], dtype=np.uint32)
    with pytest.raises(PacketError, match="md has 2 rows for 3 slots"):
        dp.run_bursts(batch.data, batch._lengths, batch._in_ports, order, md=_md((2, KEY_WORDS)))


def test_md_of_the_wrong_size_or_type(impl):
    dp = Datapath(implementation=impl)
    batch = PacketBatch.from_packets([vm_frame()], 1)
    with pytest.raises(DatapathError, match=f"md is 12 bytes: a flow key is {KEY_SIZE} bytes"):
        dp.process(batch, md=bytes(12))
    with pytest.raises(PacketError, match="md must be a numpy array of dtype uint64 or a FlowKey"):
        dp.process(batch, md=42)


# --- egress tunnel key -> Tunnel ------------------------------------------------


@pytest.mark.parametrize("tunnel", TUNNELS + [Tunnel(tun_id=1, ipv4_dst="10.9.9.9")])
def test_tunnel_of_key_reads_back_the_metadata(tunnel):
    key = metadata_template(tunnel=tunnel)
    again = tunnel_of_key(key)
    assert metadata_template(tunnel=again) == key


def test_tunnel_of_key_without_destination_is_none():
    assert tunnel_of_key(extract(vm_frame(), 1)) is None
