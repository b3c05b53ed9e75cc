"""Vports: MTU rules, counters, bounded endpoint queues, tunnel send and receive."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN

from ovsnet.datapath import tunnel as T
from ovsnet.datapath import vport as V
from ovsnet.datapath.flow_key import TNL_F_CSUM, TNL_F_DONT_FRAGMENT, TNL_F_KEY, Tunnel, extract
from ovsnet.datapath.odp_attrs import VportType
from ovsnet.datapath.packet import checksum
from ovsnet.errors import DatapathError


def frame(ip_len: int, *tags) -> bytes:
    """An Ethernet frame whose L3 part (after any tags) is ``ip_len`` bytes."""
    head = Ether(src="00:00:00:00:00:01", dst="00:00:00:00:00:02")
    for tag in tags:
        head = head / tag
    pkt = head / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / bytes(ip_len - 28)
    return bytes(pkt)


def routes(mtu: int = 1500) -> T.StaticRoutes:
    r = T.StaticRoutes()
    r.add("1.1.2.0/24", src_ip="1.1.2.88", src_mac="aa:55:aa:55:00:01",
          dst_mac="aa:55:aa:55:00:00", mtu=mtu)
    return r


TUN = Tunnel(tun_id=42, ipv4_dst="1.1.2.92", ttl=64, flags=TNL_F_KEY)


# ---------------------------------------------------------------------------
# MTU (ovs_vport_send's packet_length rule)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "ip_len", "sent"),
    [
        ((), 1500, True),
        ((), 1501, False),
        ((Dot1Q(vlan=5),), 1500, True),  # one tag is allowed beyond the MTU
        ((Dot1Q(vlan=5),), 1501, False),
        ((Dot1AD(vlan=5),), 1500, True),  # 802.1ad counts as a VLAN ethertype too
        ((Dot1AD(vlan=5), Dot1Q(vlan=6)), 1496, True),  # the second tag counts
        ((Dot1AD(vlan=5), Dot1Q(vlan=6)), 1497, False),
    ],
)
@pytest.mark.parametrize("cls", [V.NetdevVport, V.InternalVport, V.TapVport])
def test_kernel_mtu_rule(cls, tags, ip_len, sent):
    port = cls(3, "p")
    f = frame(ip_len, *tags)
    out = port.send(f)
    assert (out == [f]) == sent
    s = port.stats
    assert (s.tx_packets, s.tx_bytes, s.tx_errors) == ((1, len(f), 0) if sent else (0, 0, 1))
    assert port.drops["mtu"] == (0 if sent else 1)


def test_packet_length():
    assert V.packet_length(b"\x00" * 10) == 0
    assert V.packet_length(frame(100)) == 100
    assert V.packet_length(frame(100, Dot1Q())) == 100


@pytest.mark.parametrize(("size", "sent"), [(1518, True), (1519, False)])
def test_vhost_user_mtu_rule(size, sent):
    port = V.VhostUserVport(4, "vhu0")
    f = bytes(Ether() / bytes(size - 14))
    assert bool(port.send(f)) == sent
    assert port.stats.tx_dropped == (0 if sent else 1)
    assert port.stats.tx_errors == 0


def test_custom_mtu():
    port = V.NetdevVport(1, "eth0", mtu=9000)
    assert port.send(frame(9000)) and not port.send(frame(9001))


# ---------------------------------------------------------------------------
# Types, counters, endpoints
# ---------------------------------------------------------------------------


def test_types_and_factory():
    expect = {"netdev": VportType.NETDEV, "internal": VportType.INTERNAL, "tap": VportType.NETDEV,
              "vhost-user": VportType.NETDEV, "vxlan": VportType.VXLAN,
              "geneve": VportType.GENEVE, "gre": VportType.GRE}
    assert {t: c.odp_type for t, c in V.VPORT_TYPES.items()} == expect
    p = V.make_vport("vxlan", 5, "vxlan_sys_4789")
    assert (p.port_no, p.name, p.type, p.mtu, p.dst_port) == (5, "vxlan_sys_4789", "vxlan", 65000, 4789)
    assert V.make_vport("geneve", 6, "genev_sys_6081").dst_port == 6081
    assert V.make_vport("gre", 7, "gre_sys").dst_port is None
    assert V.make_vport("internal", 0, "ovs-system").mtu == 1500
    with pytest.raises(DatapathError, match="not one of"):
        V.make_vport("patch", 1, "patch0")
    with pytest.raises(DatapathError, match="mtu"):
        V.NetdevVport(1, "eth0", mtu=20)
    with pytest.raises(DatapathError, match="port_no"):
        V.NetdevVport(-1, "eth0")
    with pytest.raises(DatapathError, match="no UDP port"):
        V.GreVport(1, "gre_sys", dst_port=4789)


def test_receive_counts():
    port = V.NetdevVport(1, "eth0")
    f = frame(100)
    assert port.receive(f) == (f, None)
    assert port.receive(bytearray(f)) == (f, None)
    assert port.stats.as_dict() == {"rx_packets": 2, "tx_packets": 0, "rx_bytes": 2 * len(f),
                                    "tx_bytes": 0, "rx_errors": 0, "tx_errors": 0,
                                    "rx_dropped": 0, "tx_dropped": 0}


def test_non_tunnel_ignores_tunnel_info():
    port = V.NetdevVport(1, "eth0")
    assert port.send(frame(64), TUN) == [frame(64)]


def test_internal_port_down_drops():
    port = V.InternalVport(0, "ovs-system", up=False)
    assert port.send(frame(64)) == []
    assert port.stats.tx_dropped == 1 and port.drops["down"] == 1
    port.up = True
    assert port.send(frame(64)) == [frame(64)]


@pytest.mark.parametrize(("cls", "qlen"), [(V.TapVport, 500), (V.VhostUserVport, 256)])
def test_guest_bound_queue_drops_when_full(cls, qlen):
    port = cls(2, "vm0")
    assert port.to_guest_len == qlen
    f = frame(64)
    for _ in range(qlen):
        assert port.send(f) == [f]
    assert port.send(f) == []
    assert port.stats.tx_packets == qlen and port.stats.tx_dropped == 1
    assert port.drops["tx_queue_full"] == 1
    assert len(port.guest_receive(10)) == 10
    assert port.send(f) == [f]
    assert len(port.guest_receive()) == qlen - 9
    assert port.guest_receive() == []


def test_guest_send_and_poll_in_bursts():
    port = V.VhostUserVport(2, "vhu0", from_guest_len=40)
    frames = [frame(64 + i) for i in range(41)]
    accepted = [port.guest_send(f) for f in frames]
    assert accepted == [True] * 40 + [False]
    assert port.stats.rx_dropped == 1 and port.drops["rx_queue_full"] == 1
    first = port.poll()
    assert [f for f, _ in first] == frames[:32]
    assert port.stats.rx_packets == 32
    assert [f for f, _ in port.poll(burst=100)] == frames[32:40]
    assert port.poll() == []
    with pytest.raises(DatapathError, match="burst"):
        port.poll(0)


# ---------------------------------------------------------------------------
# Tunnel vports
# ---------------------------------------------------------------------------


def test_tunnel_send_and_receive_round_trip():
    tx = V.VxlanVport(5, "vxlan_sys_4789", resolver=routes())
    rx = V.VxlanVport(5, "vxlan_sys_4789", local_addrs=["1.1.2.92"])
    inner = frame(200)
    [outer] = tx.send(inner, TUN)
    pkt = Ether(outer)
    assert pkt[VXLAN].vni == 42 and pkt[IP].dst == "1.1.2.92" and pkt[IP].src == "1.1.2.88"
    assert tx.stats.tx_packets == 1 and tx.stats.tx_bytes == len(inner)
    got, meta = rx.receive(outer)
    assert got == inner and meta.tun_id == 42 and meta.flags == TNL_F_KEY
    assert rx.stats.rx_packets == 1 and rx.stats.rx_bytes == len(inner)


def test_tunnel_ip_id_counts_per_datagram():
    tx = V.GeneveVport(6, "genev_sys_6081", resolver=routes(), ip_id=65535)
    ids = [Ether(tx.send(frame(64), TUN)[0])[IP].id for _ in range(3)]
    assert ids == [65535, 0, 1]


@pytest.mark.parametrize(
    ("cls", "mode", "lo", "hi"),
    [(V.VxlanVport, "kernel", 32768, 60999), (V.GeneveVport, "kernel", 1, 65535),
     (V.VxlanVport, "userspace", 32768, 61000)],
)
def test_tunnel_src_port_from_inner_flow(cls, mode, lo, hi):
    tx = cls(5, "t", resolver=routes(), src_port_mode=mode)
    ports = set()
    for sport in range(50):
        inner = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=sport, dport=80))
        out = Ether(tx.send(inner, TUN)[0])
        h = T.hash_5tuple(extract(inner))
        assert out[UDP].sport == T.udp_src_port(h, (lo, hi), obfuscate=mode == "kernel")
        assert lo <= out[UDP].sport < hi
        ports.add(out[UDP].sport)
        # The same flow always gets the same port; the caller may pass its own hash.
        assert Ether(tx.send(inner, TUN)[0])[UDP].sport == out[UDP].sport
        assert Ether(tx.send(inner, TUN, flow_hash=h)[0])[UDP].sport == out[UDP].sport
    assert len(ports) > 40  # flows spread over the range


def test_tunnel_send_drops():
    tx = V.VxlanVport(5, "vxlan_sys_4789", resolver=routes())
    assert tx.send(frame(64)) == []
    assert tx.drops["no_tunnel_info"] == 1 and tx.stats.tx_dropped == 1
    far = Tunnel(tun_id=1, ipv4_dst="203.0.113.9", flags=TNL_F_KEY)
    assert tx.send(frame(64), far) == []
    assert tx.drops["no_route"] == 1 and tx.stats.tx_errors == 1
    assert tx.send(frame(65001), TUN) == []
    assert tx.drops["mtu"] == 1 and tx.stats.tx_errors == 2
    assert tx.stats.tx_packets == 0
    with pytest.raises(DatapathError, match="ipv4_dst or ipv6_dst"):
        tx.send(frame(64), Tunnel(tun_id=1))
    assert V.VxlanVport(5, "x").send(frame(64), TUN) == []  # no resolver: no route


def test_tunnel_underlay_mtu_fragments_or_drops():
    tx = V.VxlanVport(5, "vxlan_sys_4789", resolver=routes(mtu=1500))
    inner = frame(1500)  # 1514-byte frame + 50 bytes of headers: too big for 1500
    frags = tx.send(inner, TUN)
    assert len(frags) == 2
    assert {Ether(f)[IP].id for f in frags} == {0}
    assert all(len(f) - 14 <= 1500 for f in frags)
    assert tx.stats.tx_packets == 1
    df = Tunnel(tun_id=42, ipv4_dst="1.1.2.92", flags=TNL_F_KEY | TNL_F_DONT_FRAGMENT)
    assert tx.send(inner, df) == []
    assert tx.drops["underlay_mtu"] == 1
    assert tx.send(frame(1450), df)  # fits


def test_tunnel_receive_drops_counted_by_reason():
    tx = V.GreVport(7, "gre_sys", resolver=routes())
    rx = V.GreVport(7, "gre_sys")
    ok = tx.send(frame(100), Tunnel(tun_id=3, ipv4_dst="1.1.2.92", flags=TNL_F_KEY | TNL_F_CSUM))[0]
    bad_csum = ok[:-1] + bytes([ok[-1] ^ 0xFF])
    assert rx.receive(bad_csum) is None
    assert rx.receive(ok[:20]) is None
    assert rx.drops == {"gre_csum": 1, "ip_header": 1}
    assert rx.stats.rx_dropped == 2 and rx.stats.rx_packets == 0
    got = rx.receive(ok)
    assert got is not None and got[1].flags == TNL_F_KEY | TNL_F_CSUM and got[1].tun_id == 3


def test_tunnel_ecn_drop_is_an_error():
    tx = V.VxlanVport(5, "vxlan_sys_4789", resolver=routes())
    outer = bytearray(tx.send(frame(64), TUN)[0])
    outer[15] |= 3  # CE on the outer header; the inner packet is Not-ECT
    outer[24:26] = b"\x00\x00"
    outer[24:26] = checksum(bytes(outer[14:34])).to_bytes(2, "big")
    rx = V.VxlanVport(5, "vxlan_sys_4789")
    assert rx.receive(bytes(outer)) is None
    assert rx.stats.rx_errors == 1 and rx.drops["ecn"] == 1


def test_tunnel_udp_csum_flag_on_the_wire():
    tx = V.VxlanVport(5, "vxlan_sys_4789", resolver=routes())
    plain = Ether(tx.send(frame(64), TUN)[0])
    summed = Ether(tx.send(frame(64), Tunnel(tun_id=42, ipv4_dst="1.1.2.92",
                                             flags=TNL_F_KEY | TNL_F_CSUM))[0])
    assert plain[UDP].chksum == 0 and summed[UDP].chksum != 0
