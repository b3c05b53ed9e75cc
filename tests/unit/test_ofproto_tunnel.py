"""Tunnel ports of the OpenFlow layer: configuration, receive mapping, output translation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ovsnet.datapath import odp
from ovsnet.errors import OfprotoError
from ovsnet.ofproto.bridge import Bridge, connect_patch
from ovsnet.ofproto.of_flow import OfFlow
from ovsnet.ofproto.tunnel import (
    DEFAULT_TTL,
    TunnelConfig,
    megaflow_tokens,
    parse_tunnel_config,
    vport_name,
)
from ovsnet.ofproto.xlate import xlate

ETH = "eth(src=50:54:00:00:00:05,dst=50:54:00:00:00:07)"


def tcp4(in_port: int, tunnel: str | None = None, tos: int = 0, ttl: int = 64) -> str:
    head = f"tunnel({tunnel})," if tunnel else ""
    return (f"{head}in_port({in_port}),{ETH},eth_type(0x0800),ipv4(src=192.168.0.1,"
            f"dst=192.168.0.2,proto=6,tos={tos},ttl={ttl},frag=no),tcp(src=8,dst=9)")


def trace(bridge: Bridge, packet: str):
    key, _mask = odp.parse_flow(packet)
    entry, flow = bridge.flow_from_key(key)
    result = xlate(entry, flow)
    return result, odp.format_actions(result.datapath_actions)


# -- configuration ------------------------------------------------------------------


def test_defaults_follow_netdev_vport():
    cfg = parse_tunnel_config("vxlan", {"remote_ip": "1.1.1.1"})
    assert cfg.dst_port == 4789 and cfg.ttl == DEFAULT_TTL and cfg.dont_fragment
    assert not cfg.csum and not cfg.in_key_present and not cfg.out_key_present
    assert parse_tunnel_config("geneve", {"remote_ip": "1.1.1.1"}).dst_port == 6081
    assert parse_tunnel_config("gre", {"remote_ip": "1.1.1.1"}).dst_port == 0
    assert cfg.vport == "vxlan_sys_4789"
    assert vport_name("geneve", 5000) == "genev_sys_5000" and vport_name("gre") == "gre_sys"


def test_key_options():
    cfg = parse_tunnel_config("gre", {"remote_ip": "1.1.1.1", "key": "0x10"})
    assert (cfg.in_key, cfg.out_key, cfg.in_key_present, cfg.out_key_present) == (16, 16, True,
                                                                                  True)
    cfg = parse_tunnel_config("gre", {"remote_ip": "1.1.1.1", "in_key": "2", "out_key": "flow"})
    assert (cfg.in_key, cfg.in_key_flow, cfg.out_key_flow, cfg.out_key_present) == (2, False,
                                                                                    True, True)
    # key stands in for whichever of in_key/out_key is missing
    cfg = parse_tunnel_config("gre", {"remote_ip": "1.1.1.1", "key": "7", "out_key": "9"})
    assert (cfg.in_key, cfg.out_key) == (7, 9)


def test_addresses_and_flags():
    cfg = parse_tunnel_config("vxlan", {"remote_ip": "2001:db8::1", "local_ip": "2001:db8::2",
                                        "tos": "inherit", "ttl": "inherit", "csum": "true",
                                        "df_default": "false", "dst_port": "5000"})
    assert cfg.remote_ip == 0x20010DB8000000000000000000000001
    assert cfg.tos_inherit and cfg.ttl_inherit and cfg.csum and not cfg.dont_fragment
    assert cfg.describe() == ("csum=true, df_default=false, dst_port=5000, "
                              "local_ip=2001:db8::2, remote_ip=2001:db8::1, tos=inherit, "
                              "ttl=inherit")
    flow = parse_tunnel_config("gre", {"remote_ip": "flow", "local_ip": "flow", "ttl": "0"})
    assert flow.remote_flow and flow.local_flow and flow.ttl == DEFAULT_TTL
    assert parse_tunnel_config("gre", {"remote_ip": "1.1.1.1", "in_key": "2",
                                       "out_key": "3"}).describe() == (
        "in_key=2, out_key=3, remote_ip=1.1.1.1")


@pytest.mark.parametrize(("type_", "options", "words"), [
    ("stt", {"remote_ip": "1.1.1.1"}, ["type 'stt'", "vxlan, geneve, gre"]),
    ("gre", {}, ["requires valid 'remote_ip'"]),
    ("gre", {"remote_ip": "1.1.1"}, ["options:remote_ip='1.1.1'", "IPv4 or IPv6 address"]),
    ("gre", {"remote_ip": "224.0.0.1"}, ["remote_ip", "multicast"]),
    ("gre", {"remote_ip": "1.1.1.1", "local_ip": "flow"}, ["'remote_ip=flow' with 'local_ip=flow'"]),
    ("gre", {"remote_ip": "1.1.1.1", "local_ip": "::1"}, ["same address family"]),
    ("gre", {"remote_ip": "1.1.1.1", "tos": "3"}, ["options:tos='3'", "ECN bits clear"]),
    ("gre", {"remote_ip": "1.1.1.1", "tos": "high"}, ["options:tos='high'", "0..255"]),
    ("gre", {"remote_ip": "1.1.1.1", "ttl": "300"}, ["options:ttl='300'", "0..255"]),
    ("gre", {"remote_ip": "1.1.1.1", "dst_port": "4789"}, ["dst_port", "UDP tunnels"]),
    ("vxlan", {"remote_ip": "1.1.1.1", "dst_port": "0"}, ["options:dst_port='0'", "1..65535"]),
    ("vxlan", {"remote_ip": "1.1.1.1", "csum": "yes"}, ["options:csum='yes'", "'true' or 'false'"]),
    ("vxlan", {"remote_ip": "1.1.1.1", "key": "-1"}, ["options:key='-1'"]),
    ("vxlan", {"remote_ip": "1.1.1.1", "out_key": "x"}, ["options:out_key='x'"]),
    ("vxlan", {"remote_ip": "1.1.1.1", "packet_type": "ptap"}, ["packet_type", "legacy_l2"]),
    ("vxlan", {"remote_ip": "1.1.1.1", "remote": "x"}, ["unknown vxlan option 'remote'",
                                                        "remote_ip, local_ip"]),
])
def test_bad_options_say_which_and_what_is_valid(type_, options, words):
    with pytest.raises(OfprotoError) as e:
        parse_tunnel_config(type_, options, name="t9")
    assert "'t9'" in str(e.value)
    for word in words:
        assert word in str(e.value)


def test_gre_seq_is_accepted_for_gre_only():
    assert parse_tunnel_config("gre", {"remote_ip": "1.1.1.1", "seq": "true"}).type == "gre"
    with pytest.raises(OfprotoError, match="unknown vxlan option 'seq'"):
        parse_tunnel_config("vxlan", {"remote_ip": "1.1.1.1", "seq": "true"})


def test_describe_as_dpif_show():
    cfg = parse_tunnel_config("gre", {"remote_ip": "1.1.1.1", "in_key": "flow", "out_key": "7",
                                      "tos": "16", "seq": "true", "egress_pkt_mark": "9",
                                      "local_ip": "2.2.2.2"})
    assert cfg.describe() == ("egress_pkt_mark=9, in_key=flow, local_ip=2.2.2.2, out_key=7, "
                              "remote_ip=1.1.1.1, seq=true, tos=0x10")


def test_ipsec_keys_are_ignored():
    cfg = parse_tunnel_config("gre", {"remote_ip": "1.1.1.1", "psk": "secret"})
    assert cfg == TunnelConfig("gre", remote_ip=parse_tunnel_config(
        "gre", {"remote_ip": "1.1.1.1"}).remote_ip)


# -- ports on a bridge ----------------------------------------------------------------


def test_tunnel_ports_share_a_vport():
    br = Bridge("br0", local_odp_port=100)
    br.add_port("p1", 1, 1)
    version = br.version
    a = br.add_tunnel_port("a", 5, "vxlan", {"remote_ip": "1.1.1.1"})
    b = br.add_tunnel_port("b", 6, "vxlan", {"remote_ip": "2.2.2.2"})
    g = br.add_tunnel_port("g", 7, "gre", {"remote_ip": "2.2.2.2", "key": 3}, odp_port=50)
    assert a.odp_port == b.odp_port == 2  # lowest free datapath port, then shared
    assert g.odp_port == 50 and br.version == version + 3
    assert br.dp_port_names == {100: "br0", 1: "p1", 2: "vxlan_sys_4789", 50: "gre_sys"}
    assert [p.name for p in br.tunnel_ports] == ["a", "b", "g"]
    with pytest.raises(OfprotoError, match="vxlan_sys_4789 is datapath port 2, not 3"):
        br.add_tunnel_port("c", 8, "vxlan", {"remote_ip": "3.3.3.3"}, odp_port=3)
    with pytest.raises(OfprotoError, match="already used by port 'p1'"):
        br.add_tunnel_port("c", 8, "geneve", {"remote_ip": "3.3.3.3"}, odp_port=1)
    with pytest.raises(OfprotoError, match="already the tunnel vport gre_sys"):
        br.add_tunnel_port("c", 8, "geneve", {"remote_ip": "3.3.3.3"}, odp_port=50)
    with pytest.raises(OfprotoError, match="already used by the tunnel vport"):
        br.add_port("p2", 2, 2)
    with pytest.raises(OfprotoError, match="same receive match as port 'a'"):
        br.add_tunnel_port("c", 8, "vxlan", {"remote_ip": "1.1.1.1", "ttl": 5})
    with pytest.raises(OfprotoError, match="tunnel vport vxlan_sys_4789"):
        br.ofport_of_odp(2)
    # a different key or UDP port is a different receive match
    assert br.add_tunnel_port("c", 8, "vxlan", {"remote_ip": "1.1.1.1", "key": 1}).ofport == 8
    assert br.add_tunnel_port("d", 9, "vxlan", {"remote_ip": "1.1.1.1",
                                                "dst_port": 4790}).odp_port == 3


def test_reconfigure_tunnel_port():
    br = Bridge("br0")
    br.add_tunnel_port("t", 1, "gre", {"remote_ip": "1.1.1.1"}, odp_port=1)
    br.add_tunnel_port("u", 2, "gre", {"remote_ip": "2.2.2.2"}, odp_port=1)
    version = br.version
    port = br.reconfigure_tunnel_port("t", "gre", {"remote_ip": "3.3.3.3", "csum": "true"})
    assert port.tunnel.csum and port.ofport == 1 and port.odp_port == 1
    assert br.version > version
    with pytest.raises(OfprotoError, match="same receive match as port 'u'"):
        br.reconfigure_tunnel_port("t", "gre", {"remote_ip": "2.2.2.2"})
    assert br.port_by_name("t").tunnel.remote_ip == port.tunnel.remote_ip  # unchanged
    with pytest.raises(OfprotoError, match="no tunnel port 'x'"):
        br.reconfigure_tunnel_port("x", "gre", {"remote_ip": "2.2.2.2"})


def test_del_port():
    br = Bridge("br0", local_odp_port=100)
    br.add_port("p1", 1, 1)
    br.add_tunnel_port("t", 2, "vxlan", {"remote_ip": "1.1.1.1"}, odp_port=4789)
    br.add_tunnel_port("u", 3, "vxlan", {"remote_ip": "2.2.2.2"})
    version = br.version
    assert br.del_port("t").name == "t" and br.version == version + 1
    assert br.dp_port_names[4789] == "vxlan_sys_4789"  # still used by u
    key, _ = odp.parse_flow(tcp4(4789, "src=1.1.1.1,dst=9.9.9.9,ttl=64,flags()"))
    with pytest.raises(OfprotoError, match="no OpenFlow tunnel port"):
        br.flow_from_key(key)
    br.del_port(3)
    assert 4789 not in br.dp_port_names
    br.add_tunnel_port("t", 2, "vxlan", {"remote_ip": "1.1.1.1"}, odp_port=7)  # renumbered
    br.del_port("p1")
    assert br.add_port("p1", 1, 1).ofport == 1
    with pytest.raises(OfprotoError, match="LOCAL port 'br0' cannot be deleted"):
        br.del_port("br0")
    with pytest.raises(OfprotoError, match="no port 9"):
        br.del_port(9)


def test_receive_follows_ovs_match_order():
    """tnl_find: fixed key before key=flow, fixed remote before remote_ip=flow,
    configured local_ip before any before local_ip=flow."""
    br = Bridge("br0")
    for name, ofport, opts in (("cfg", 1, {"remote_ip": "1.1.1.1", "local_ip": "2.2.2.2"}),
                               ("any", 2, {"remote_ip": "1.1.1.1"}),
                               ("rflow", 3, {"remote_ip": "flow"}),
                               ("kflow", 4, {"remote_ip": "1.1.1.1", "key": "flow"}),
                               ("all", 5, {"remote_ip": "flow", "local_ip": "flow",
                                           "key": "flow"})):
        br.add_tunnel_port(name, ofport, "gre", opts, odp_port=1)

    def port_of(tunnel: str) -> str:
        key, _ = odp.parse_flow(tcp4(1, tunnel))
        try:
            return br.lookup_input(1, OfFlow.from_flow_key(key))[1].name
        except OfprotoError as e:
            return str(e)

    assert port_of("src=1.1.1.1,dst=2.2.2.2,ttl=64,flags()") == "cfg"
    assert port_of("src=1.1.1.1,dst=2.2.2.9,ttl=64,flags()") == "any"
    assert port_of("src=6.6.6.6,dst=2.2.2.2,ttl=64,flags()") == "rflow"
    assert port_of("tun_id=0x5,src=1.1.1.1,dst=2.2.2.9,ttl=64,flags(key)") == "kflow"
    assert port_of("tun_id=0x5,src=6.6.6.6,dst=2.2.2.9,ttl=64,flags(key)") == "all"
    # another vport: no tunnel port
    key, _ = odp.parse_flow(tcp4(7, "src=1.1.1.1,dst=2.2.2.2,ttl=64,flags()"))
    with pytest.raises(OfprotoError, match="no OpenFlow tunnel port for this packet"):
        br.lookup_input(7, OfFlow.from_flow_key(key))


def test_receive_across_patch_ports():
    br0, br1 = Bridge("br0", local_odp_port=100), Bridge("br1", local_odp_port=101)
    connect_patch(br0, "patch-br1", 9, br1, "patch-br0", 9)
    br1.add_tunnel_port("t1", 3, "vxlan", {"remote_ip": "1.1.1.1"}, odp_port=4789)
    with pytest.raises(OfprotoError, match="same receive match"):
        br0.add_tunnel_port("t0", 3, "vxlan", {"remote_ip": "1.1.1.1"})
    assert br0.add_tunnel_port("t0", 3, "vxlan", {"remote_ip": "2.2.2.2"}).odp_port == 4789
    key, _ = odp.parse_flow(tcp4(4789, "src=1.1.1.1,dst=9.9.9.9,ttl=64,flags()"))
    bridge, flow = br0.flow_from_key(key)
    assert bridge is br1 and flow.in_port == 3


# -- translation ------------------------------------------------------------------------


def output_bridge(**options) -> Bridge:
    br = Bridge("br0", local_odp_port=100)
    br.add_port("p2", 2, 2)
    br.add_port("p3", 3, 3)
    br.add_tunnel_port("t1", 1, "gre", {"remote_ip": "1.1.1.1", **options}, odp_port=1)
    return br


def test_output_sets_tunnel_then_outputs_to_the_vport():
    br = output_bridge(local_ip="2.2.2.2", key=5)
    br.add_flow("actions=output:1,output:2,output:1")
    result, actions = trace(br, tcp4(3, tos=4, ttl=128))
    # the second output to the tunnel finds the datapath's tunnel metadata unchanged
    assert actions == ("set(tunnel(tun_id=0x5,src=2.2.2.2,dst=1.1.1.1,ttl=64,flags(df|key))),"
                       "1,2,1")
    assert result.megaflow() == "recirc_id=0,eth,ip,in_port=3,nw_ecn=0,nw_frag=no"
    assert result.final_flow.tun_dst == 0  # the port's metadata is not visible afterwards


def test_ecn_and_inheritance():
    br = output_bridge(tos="inherit", ttl="inherit")
    br.add_flow("actions=output:1")
    result, actions = trace(br, tcp4(2, tos=0x15, ttl=9))
    assert actions == "set(tunnel(dst=1.1.1.1,tos=0x15,ttl=9,flags(df))),1"
    assert "nw_tos=20,nw_ecn=1,nw_ttl=9" in result.megaflow()
    _result, actions = trace(br, tcp4(2, tos=0x03))  # CE is sent as ECT(0)
    assert actions == "set(tunnel(dst=1.1.1.1,tos=0x2,ttl=64,flags(df))),1"


def test_set_tunnel_with_flow_key_and_flow_remote():
    br = Bridge("br0", local_odp_port=100)
    br.add_port("p2", 2, 2)
    br.add_tunnel_port("t1", 1, "vxlan", {"remote_ip": "flow", "key": "flow", "csum": "true"},
                       odp_port=4789)
    br.add_flow("actions=output:1,set_tunnel:9,set_field:3.3.3.3->tun_dst,output:1")
    result, actions = trace(br, tcp4(2))
    assert actions == "set(tunnel(tun_id=0x9,dst=3.3.3.3,ttl=64,tp_dst=4789,flags(df|csum|key))),4789"
    assert "Not tunneling to our own address" in result.trace[0].actions


def test_tunnel_receive_megaflow_and_ecn_drop():
    br = output_bridge()
    br.add_flow("in_port=1,actions=output:2")
    result, actions = trace(br, tcp4(1, "src=1.1.1.1,dst=2.2.2.2,tos=0x3,ttl=64,flags(csum)",
                                     tos=1))
    assert actions == "set(ipv4(tos=0x3/0x3)),2"
    assert result.megaflow() == ("recirc_id=0,eth,ip,tun_id=0,tun_src=1.1.1.1,"
                                 "tun_dst=2.2.2.2,tun_tos=3,tun_flags=-df+csum-key,in_port=1,"
                                 "nw_ecn=1,nw_frag=no")
    result, actions = trace(br, tcp4(1, "src=1.1.1.1,dst=2.2.2.2,tos=0x3,ttl=64,flags()"))
    # as ofproto/trace shows it: the table lookup, no actions run
    assert result.datapath_actions == b"" and result.trace[0].actions == []


def test_patch_port_keeps_the_callers_tunnel_wildcards():
    br0, br1 = Bridge("br0", local_odp_port=100), Bridge("br1", local_odp_port=101)
    br0.add_tunnel_port("t1", 1, "gre", {"remote_ip": "1.1.1.1"}, odp_port=1)
    br1.add_port("p5", 5, 5)
    connect_patch(br0, "patch-br1", 9, br1, "patch-br0", 9)
    br0.add_flow("actions=output:9")
    br1.add_flow("actions=output:5")
    result, actions = trace(br0, tcp4(1, "src=1.1.1.1,dst=2.2.2.2,ttl=64,flags()"))
    assert actions == "5"
    assert "tun_src=1.1.1.1,tun_dst=2.2.2.2,tun_tos=0,tun_flags=-df-csum-key" in result.megaflow()


def test_megaflow_tokens():
    flow = OfFlow(tun_ipv6_src=1, tun_tos=0x12, tun_ttl=5, tun_flags=0xA)
    assert megaflow_tokens({"tun_ipv6_src": (1 << 128) - 1, "tun_tos": 0xFF, "tun_ttl": 0xFF,
                            "tun_flags": 0xF}, flow) == [
        "tun_ipv6_src=::1", "tun_tos=12", "tun_ttl=5", "tun_flags=df|key"]
    assert megaflow_tokens({"tun_flags": 0x6}, flow) == ["tun_flags=+df-csum"]
    assert megaflow_tokens({}, flow) == []


def _inner_frame(tos: int = 0) -> bytes:
    """An Ethernet/IPv4/UDP frame (checksums left zero: extraction ignores them)."""
    ip = bytes([0x45, tos, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0, 192, 168, 0, 1, 192, 168, 0, 2])
    udp = bytes([0, 8, 0, 9, 0, 8, 0, 0])
    return bytes.fromhex("505400000007505400000005") + b"\x08\x00" + ip + udp


def test_decapsulated_packet_reaches_its_port_and_leaves_encapsulated():
    """The datapath's VXLAN decapsulation, this module's receive mapping and
    translation, and the datapath's execution of the set(tunnel(...)) it emits."""
    from ovsnet.datapath.actions import execute
    from ovsnet.datapath.flow_key import Tunnel, extract
    from ovsnet.datapath.tunnel import NextHop, decapsulate, encapsulate

    br = Bridge("br0", local_odp_port=100)
    br.add_port("p2", 2, 2)
    br.add_tunnel_port("vx", 1, "vxlan", {"remote_ip": "10.0.0.1", "local_ip": "10.0.0.2",
                                          "key": 77}, odp_port=4)
    br.add_tunnel_port("gn", 3, "geneve", {"remote_ip": "10.0.0.3", "key": "flow",
                                           "csum": "true"}, odp_port=5)
    br.add_flow("in_port=1,actions=set_tunnel:9,output:3")
    hop = NextHop(src_ip="10.0.0.1", src_mac="02:00:00:00:00:01", dst_mac="02:00:00:00:00:02")
    outer = encapsulate("vxlan", _inner_frame(), Tunnel(tun_id=77, ipv4_src="10.0.0.1",
                                                        ipv4_dst="10.0.0.2", ttl=64), hop)
    inner, tunnel = decapsulate("vxlan", outer)
    key = extract(inner, 4, tunnel=tunnel)
    bridge, flow = br.flow_from_key(key)
    assert flow.in_port == 1 and flow.tun_id == 77
    result = xlate(bridge, flow)
    assert result.megaflow().startswith("recirc_id=0,eth,ip,tun_id=0x4d,tun_src=10.0.0.1,"
                                        "tun_dst=10.0.0.2,tun_tos=0,tun_flags=-df-csum+key,")
    assert odp.format_actions(result.datapath_actions) == (
        "set(tunnel(tun_id=0x9,dst=10.0.0.3,ttl=64,tp_dst=6081,flags(df|csum|key))),5")
    (out,) = execute(inner, key.raw, result.datapath_actions).outputs
    assert out.port == 5 and out.packet == inner
    egress = OfFlow.from_flow_key(out.egress_tunnel)
    assert (egress.tun_id, egress.tun_dst, egress.tun_tp_dst) == (9, 0x0A000003, 6081)


def test_list_tunnels():
    br = Bridge("br0")
    br.add_tunnel_port("a", 1, "gre", {"remote_ip": "1.1.1.1", "local_ip": "2.2.2.2",
                                       "in_key": 2, "out_key": "flow", "tos": 8,
                                       "df_default": "false"}, odp_port=1)
    br.add_tunnel_port("b", 2, "vxlan", {"remote_ip": "flow", "key": "flow", "ttl": "inherit",
                                         "csum": "true"}, odp_port=4789)
    br.add_tunnel_port("c", 3, "gre", {"remote_ip": "2001:db8::1", "out_key": 5}, odp_port=1)
    assert br.list_tunnels() == (
        "port 1: a (gre: 2.2.2.2->1.1.1.1, key=0x2, legacy_l2, dp port=1, out_key=flow, "
        "ttl=64, tos=0x8, df=false)\n"
        "port 4789: b (vxlan: ::->flow, key=flow, legacy_l2, dp port=4789, ttl=inherit, "
        "csum=true)\n"
        "port 1: c (gre: ::->2001:db8::1, key=0, legacy_l2, dp port=1, out_key=0x5, ttl=64)\n")


_OPTION_VALUES = st.sampled_from(["", "flow", "inherit", "true", "false", "1.1.1.1", "::1",
                                  "224.0.0.9", "0", "4", "64", "300", "0x10", "-1", "abc",
                                  "18446744073709551616", "legacy_l2", "ptap"])
_OPTION_KEYS = st.sampled_from(["remote_ip", "local_ip", "key", "in_key", "out_key",
                                "dst_port", "tos", "ttl", "df_default", "csum", "seq",
                                "egress_pkt_mark", "packet_type", "psk", "bogus"])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["vxlan", "geneve", "gre"]),
       st.dictionaries(_OPTION_KEYS, _OPTION_VALUES, max_size=6))
def test_any_options_give_a_config_or_a_clear_error(type_, options):
    try:
        cfg = parse_tunnel_config(type_, options, name="t")
    except OfprotoError as e:
        assert str(e).startswith("tunnel port 't': ")
        return
    assert cfg.remote_flow or cfg.remote_ip
    br = Bridge("br0")
    port = br.add_tunnel_port("t", 1, type_, options)
    assert br.list_tunnels().startswith(f"port {port.odp_port}: t ({type_}: ")
