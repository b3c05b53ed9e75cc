"""ODP syntax: datapath flows and actions printed and parsed as Open vSwitch does.

Vectors come from Open vSwitch's tests/odp.at (re-expressed as data files),
hand-written cases, and hypothesis; the ``ovs.flow.odp`` parser of OVS's own
Python library checks that what we print reads back with the same fields.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ovsnet.datapath import odp
from ovsnet.datapath.flow_key import FIELD_BY_NAME, KEY_SIZE
from ovsnet.datapath.odp_attrs import ActionAttr, KeyAttr, iter_nla, nla
from ovsnet.errors import DatapathError

DATA = Path(__file__).parent / "data"


def _vectors(name: str) -> list[tuple[str, str]]:
    out = []
    for line in (DATA / name).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        src, _, want = line.partition(" => ")
        out.append((src, want or src))
    return out


KEYS = _vectors("odp_keys_odp_at.txt")
ACTIONS = _vectors("odp_actions_odp_at.txt")


@pytest.mark.parametrize(("text", "want"), KEYS, ids=range(len(KEYS)))
def test_odp_at_keys_round_trip(text, want):
    key, mask = odp.parse_flow(text)
    assert odp.format_flow(key, mask, datapath="netdev") == want


@pytest.mark.parametrize(("text", "want"), ACTIONS, ids=range(len(ACTIONS)))
def test_odp_at_actions_round_trip(text, want):
    assert odp.format_actions(odp.parse_actions(text)) == want


def test_vector_counts():
    assert len(KEYS) >= 100 and len(ACTIONS) >= 50


# --- encodings -------------------------------------------------------------


def test_actions_encoding_is_the_kernel_one():
    acts = odp.parse_actions("2,set(ipv4(src=1.2.3.4/255.255.255.0)),pop_vlan")
    items = [(t, bytes(p)) for t, p in iter_nla(acts)]
    assert items[0] == (ActionAttr.OUTPUT, struct.pack("=I", 2))
    assert items[1][0] == ActionAttr.SET_MASKED
    (kt, kp), = [(t, bytes(p)) for t, p in iter_nla(items[1][1])]
    assert kt == KeyAttr.IPV4 and len(kp) == 24
    assert kp[:4] == bytes([1, 2, 3, 4]) and kp[12:16] == b"\xff\xff\xff\x00"
    assert items[2] == (ActionAttr.POP_VLAN, b"")


def test_fully_masked_set_stays_set():
    acts = odp.parse_actions("set(eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02))")
    assert next(iter_nla(acts))[0] == ActionAttr.SET


def test_drop_and_empty():
    assert odp.parse_actions("drop") == b""
    assert odp.format_actions(b"") == "drop"
    assert odp.format_actions(nla(ActionAttr.DROP, bytes(4))) == "drop"


@pytest.mark.parametrize("text", ["drop", " DROP\n", "clone(drop)", "clone( drop )",
                                  "sample(sample=50.0%,actions(drop))",
                                  "check_pkt_len(size=64,gt(drop),le(drop))", "1,clone(drop),2"])
def test_drop_is_the_empty_list_wherever_a_list_goes(text):
    acts = odp.parse_actions(text)
    # what OVS prints for each empty list reads back to the same bytes
    assert odp.parse_actions(odp.format_actions(acts)) == acts
    assert "drop" in odp.format_actions(acts)


@pytest.mark.parametrize(("text", "column"), [("drop,1", 1), ("1,drop", 3), ("clone(drop,1)", 7),
                                              ("drop()", 1)])
def test_drop_next_to_other_actions_is_refused(text, column):
    with pytest.raises(DatapathError, match=f"column {column}: 'drop' stands alone"):
        odp.parse_actions(text)


@pytest.mark.parametrize(("name", "attr"), [("push_mpls", ActionAttr.PUSH_MPLS),
                                            ("add_mpls", ActionAttr.ADD_MPLS)])
def test_mpls_push_payload_is_the_padded_kernel_struct(name, attr):
    text = f"{name}(label=100,tc=3,ttl=64,bos=1,eth_type=0x8848)"
    (t, p), = [(t, bytes(p)) for t, p in iter_nla(odp.parse_actions(text))]
    # struct ovs_action_push_mpls {__be32 mpls_lse; __be16 mpls_ethertype;}:
    # sizeof == 8 (padding after the be16); add_mpls puts tun_flags there
    assert t == attr and len(p) == 8
    assert p == struct.pack("!IH", 100 << 12 | 3 << 9 | 1 << 8 | 64, 0x8848) + bytes(2)
    assert odp.format_actions(nla(t, p)) == text


def test_push_mpls_of_the_wrong_size_prints_as_bad_length():
    short = nla(ActionAttr.PUSH_MPLS, struct.pack("!IH", 1 << 12 | 64, 0x8847))
    assert odp.format_actions(short).startswith("bad length 6, expected 8 for: action9(")


def test_ports_by_name():
    ports = {1: "p1", 2: "p2"}
    acts = odp.parse_actions("p1,clone(p2)", ports)
    assert odp.format_actions(acts) == "1,clone(2)"
    assert odp.format_actions(acts, ports) == "p1,clone(p2)"
    key, mask = odp.parse_flow("in_port(p2),eth(),eth_type(0x0800),ipv4(frag=no)", ports=ports)
    assert odp.format_flow(key, mask, ports=ports) == "in_port(p2),eth(),eth_type(0x0800),ipv4(frag=no)"


def test_flat_fields_of_a_parsed_flow():
    key, mask = odp.parse_flow("in_port(3),eth(),eth_type(0x0800),"
                               "ipv4(src=10.0.0.0/255.0.0.0,proto=1,frag=later)")
    f = FIELD_BY_NAME
    assert key[f["in_port"].offset] == 3
    assert key[f["nw_src"].offset:f["nw_src"].offset + 4] == bytes([10, 0, 0, 0])
    assert mask[f["nw_src"].offset:f["nw_src"].offset + 4] == b"\xff\0\0\0"
    assert key[f["nw_frag"].offset] == 3 and mask[f["nw_frag"].offset] == 3
    assert mask[f["nw_ttl"].offset] == 0  # not named: wildcarded


def test_kernel_layout_differs_from_netdev_only_in_order_and_tcp_flags():
    key, mask = odp.parse_flow("recirc_id(0),skb_mark(0x1/0xff),in_port(1),eth(),"
                               "eth_type(0x0800),ipv4(proto=6,frag=no),tcp(dst=80)")
    assert odp.format_flow(key, mask, datapath="netdev") == (
        "skb_mark(0x1/0xff),recirc_id(0),in_port(1),eth(),eth_type(0x0800),"
        "ipv4(proto=6,frag=no),tcp(dst=80)")
    assert odp.format_flow(key, mask) == (
        "recirc_id(0),in_port(1),skb_mark(0x1/0xff),eth(),eth_type(0x0800),"
        "ipv4(proto=6,frag=no),tcp(dst=80)")
    verbose = odp.format_flow(key, mask, verbose=True)
    assert "tcp_flags(0/0)" in verbose and "packet_type" not in verbose
    assert "packet_type(ns=0/0,id=0/0)" in odp.format_flow(key, mask, verbose=True,
                                                           datapath="netdev")


def test_dump_line():
    key, mask = odp.parse_flow("recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4(frag=no)")
    acts = odp.parse_actions("2")
    line = odp.format_dump_line(key, mask, acts, 10, 1234, used_ms=9500, now_ms=10000,
                                tcp_flags=0x012)
    assert line == ("recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4(frag=no), "
                    "packets:10, bytes:1234, used:0.500s, flags:S., actions:2")
    never = odp.format_dump_line(key, mask, b"", 0, 0, 0, 5, 0,
                                 ufid="a2350296-1b23-4886-8fd9-19cb9423f7a3", show_ufid=True)
    assert never.startswith("ufid:a2350296-1b23-4886-8fd9-19cb9423f7a3, recirc_id(0)")
    assert never.endswith("packets:0, bytes:0, used:never, actions:drop")


# --- errors ----------------------------------------------------------------


@pytest.mark.parametrize(("text", "column", "words"), [
    ("2,outptu(3)", 3, ["unknown action 'outptu'", "output", "set"]),
    ("set(ipv4(srx=1.2.3.4))", 10, ["unknown field 'srx'", "src"]),
    ("push_vlan(vid=5000,pcp=0)", 15, ["vid"]),
    ("set(ipv4(src=1.2.3))", 14, ["IPv4 address"]),
    ("clone(1", 8, ["')'"]),
    ("1 2x", 4, ["','"]),
])
def test_action_errors_point_at_the_column(text, column, words):
    with pytest.raises(DatapathError) as info:
        odp.parse_actions(text)
    msg = str(info.value)
    assert f"column {column}:" in msg
    for w in words:
        assert w in msg
    caret = msg.splitlines()[-1]
    assert caret.index("^") - 2 == column - 1


@pytest.mark.parametrize(("text", "column", "words"), [
    ("in_port(1),eht()", 12, ["unknown flow key field 'eht'", "eth"]),
    ("in_port(1),ipv4(frag=maybe)", 22, ["no, first, later"]),
    ("in_port(1),vlan(pcp=9)", 21, ["wider than 3 bits"]),
    ("in_port(p9)", 9, ["unknown port 'p9'"]),
    ("in_port(1),tcp_flags(+syn+foo)", 27, ["unknown flag 'foo'"]),
])
def test_flow_errors_point_at_the_column(text, column, words):
    with pytest.raises(DatapathError) as info:
        odp.parse_flow(text)
    msg = str(info.value)
    assert f"column {column}:" in msg
    for w in words:
        assert w in msg


def test_flow_needs_in_port_and_tunnel_dst():
    with pytest.raises(DatapathError, match="in_port"):
        odp.parse_flow("eth(),eth_type(0x0800)")
    with pytest.raises(DatapathError, match="dst"):
        odp.parse_flow("tunnel(tun_id=1,ttl=64),in_port(1)")
    with pytest.raises(DatapathError, match="528"):
        odp.format_flow(b"\0" * 10, bytes(KEY_SIZE))


# --- the ovs.flow.odp parser as an oracle -----------------------------------

ovs_odp = pytest.importorskip("ovs.flow.odp") if os.environ.get("CI") != "true" else None
if ovs_odp is None:  # under CI the library is part of the contract
    import ovs.flow.odp as ovs_odp  # noqa: F811


def _field_view(text: str) -> dict:
    flow = ovs_odp.ODPFlow(text + " actions:drop")
    return {kv.key: str(kv.value) for kv in flow.match_kv}


_macs = st.binary(min_size=6, max_size=6)
_masks6 = st.sampled_from([b"\xff" * 6, b"\0" * 6, b"\xff\xff\xff\0\0\0", b"\x01\0\0\0\0\0"])


@st.composite
def megaflows(draw):
    key = bytearray(KEY_SIZE)
    mask = bytearray(KEY_SIZE)

    def put(name, value, m):
        f = FIELD_BY_NAME[name]
        order = "little" if f.kind.startswith("u") else "big"
        key[f.offset:f.offset + f.size] = value if isinstance(value, bytes) else value.to_bytes(f.size, order)
        mask[f.offset:f.offset + f.size] = m if isinstance(m, bytes) else m.to_bytes(f.size, order)

    put("in_port", draw(st.integers(0, 0xFFFF)), 0xFFFFFFFF)
    put("recirc_id", draw(st.integers(0, 2**32 - 1)), 0xFFFFFFFF)
    if draw(st.booleans()):
        put("skb_mark", draw(st.integers(0, 2**32 - 1)), draw(st.sampled_from([0xFFFFFFFF, 0xFF])))
    m = draw(_masks6)
    put("dl_src", bytes(a & b for a, b in zip(draw(_macs), m, strict=True)), m)
    dl_type = draw(st.sampled_from([0x0800, 0x86DD, 0x0806, 0x1234]))
    put("dl_type", dl_type, 0xFFFF)
    if dl_type == 0x0800:
        m4 = draw(st.sampled_from([b"\xff" * 4, b"\xff\xff\xff\0", b"\0" * 4]))
        put("nw_src", bytes(a & b for a, b in zip(draw(st.binary(min_size=4, max_size=4)), m4,
                                                   strict=True)), m4)
        proto = draw(st.sampled_from([6, 17, 1, 47]))
        put("nw_proto", proto, 0xFF)
        put("nw_ttl", draw(st.integers(0, 255)), draw(st.sampled_from([0, 0xFF])))
        put("nw_frag", 0, 3)
        if proto in (6, 17):
            put("tp_dst", draw(st.integers(0, 0xFFFF)), draw(st.sampled_from([0xFFFF, 0xFF00])))
    elif dl_type == 0x86DD:
        put("ipv6_src", draw(st.binary(min_size=16, max_size=16)), b"\xff" * 16)
        put("nw_frag", 0, 3)
    elif dl_type == 0x0806:
        put("nw_proto", draw(st.integers(1, 2)), 0xFF)
    return bytes(key), bytes(mask)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(megaflows(), st.sampled_from(["kernel", "netdev"]), st.booleans())
def test_printed_flows_parse_back(flow, datapath, verbose):
    key, mask = flow
    text = odp.format_flow(key, mask, datapath=datapath, verbose=verbose)
    # ovs.flow.odp reads every attribute we print
    fields = _field_view(text)
    assert "in_port" in fields and "eth" in fields
    # and our parser gives back the same megaflow
    k2, m2 = odp.parse_flow(text)
    assert odp.format_flow(k2, m2, datapath=datapath, verbose=verbose) == text
    assert bytes(a & b for a, b in zip(k2, m2, strict=True)) == bytes(
        a & b for a, b in zip(key, mask, strict=True)) or dl_type_none(key)


def dl_type_none(key: bytes) -> bool:
    f = FIELD_BY_NAME["dl_type"]
    return int.from_bytes(key[f.offset:f.offset + 2], "big") < 0x600


def _masked_set(t: tuple[int, int]) -> str:
    mask = (0xFFFFFFFF << (32 - t[1])) & 0xFFFFFFFF
    src = ".".join(map(str, (t[0] & mask).to_bytes(4, "big")))
    return f"set(ipv4(src={src}/{'.'.join(map(str, mask.to_bytes(4, 'big')))}))"


_simple_actions = st.one_of(
    st.integers(0, 2**32 - 1).map(str),
    st.integers(0, 4095).flatmap(lambda v: st.integers(0, 7).map(
        lambda p: f"push_vlan(vid={v},pcp={p})")),
    st.just("pop_vlan"),
    st.integers(0, 2**32 - 1).map(lambda r: f"recirc({r:#x})" if r else "recirc(0)"),
    st.integers(0, 2**32 - 1).map(lambda b: f"hash(l4({b}))"),
    st.integers(0, 2**32 - 1).map(lambda n: f"trunc({n})"),
    st.just("ct_clear"),
    st.integers(0, 2**32 - 1).map(lambda n: f"meter({n})"),
    st.binary(min_size=8, max_size=40).map(lambda d: f"userspace(pid=1,userdata({d.hex()}))"),
    st.tuples(st.integers(0, 2**32 - 1), st.integers(1, 32)).map(_masked_set),
)


@st.composite
def action_lists(draw, depth=0):
    items = draw(st.lists(_simple_actions, min_size=1, max_size=4))
    if depth < 2 and draw(st.booleans()):
        inner = draw(action_lists(depth + 1))
        items.append(draw(st.sampled_from([f"clone({inner})",
                                           f"sample(sample=50.0%,actions({inner}))",
                                           f"check_pkt_len(size=100,gt({inner}),le(drop))"])))
    return ",".join(items)


@settings(max_examples=200, deadline=None)
@given(action_lists())
def test_actions_round_trip_and_ovs_parser_reads_them(text):
    encoded = odp.parse_actions(text)
    printed = odp.format_actions(encoded)
    assert odp.parse_actions(printed) == encoded
    flow = ovs_odp.ODPFlow("in_port(1) actions:" + printed)
    assert len(flow.actions_kv) >= 1
