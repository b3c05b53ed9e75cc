"""Port VLAN modes and NORMAL's VLAN translation (ovsnet.ofproto.vlan).

Expectations come from OVS 3.1's documentation of the Port table
(vswitchd/vswitch.xml: vlan_mode, tag, trunks, cvlans, qinq-ethtype,
priority-tags, Open_vSwitch vlan-limit) and from the "ofproto-dpif - VLAN
handling" test of tests/ofproto-dpif.at, restated in data/vlan_handling.txt.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ovsnet.errors import OfprotoError
from ovsnet.ofproto.vlan import (
    ETH_TYPE_VLAN_8021AD,
    ETH_TYPE_VLAN_8021Q,
    PriorityTags,
    VlanConfig,
    VlanMode,
    VlanTag,
    XVlan,
    effective_vlan_limit,
    flood_vlans,
    parse_vlans,
    vlan_limit_from_config,
)

DATA = Path(__file__).parent / "data" / "vlan_handling.txt"
_PUSH_RE = re.compile(r"push_vlan\((?:tpid=(0x[0-9a-f]+),)?vid=(\d+),pcp=(\d+)\)")


def split_actions(actions: str) -> list[str]:
    """Top-level comma-separated datapath actions."""
    out, depth, cur = [], 0, ""
    for ch in actions:
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        depth += (ch == "(") - (ch == ")")
        cur += ch
    if cur:
        out.append(cur)
    return out


def apply_vlan_actions(tags: tuple[VlanTag, ...], actions: str) -> dict[int, tuple[VlanTag, ...]]:
    """Run ``output``/``push_vlan``/``pop_vlan`` datapath actions on a frame's tag stack.

    Returns the tag stack of the copy each output port receives (the frame's
    whole stack: the datapath pops and pushes the outermost header).
    """
    if actions.strip() == "drop":
        return {}
    stack = list(tags)
    outputs: dict[int, tuple[VlanTag, ...]] = {}
    for act in split_actions(actions.strip()):
        if act == "pop_vlan":
            stack.pop(0)
        elif (m := _PUSH_RE.fullmatch(act)) is not None:
            tpid = int(m.group(1), 16) if m.group(1) else ETH_TYPE_VLAN_8021Q
            stack.insert(0, VlanTag(int(m.group(2)), int(m.group(3)), tpid))
        elif act.isdigit():
            outputs[int(act)] = tuple(stack)
        else:
            raise AssertionError(f"unexpected datapath action {act!r} in {actions!r}")
    return outputs


def _config(words: list[str]) -> VlanConfig:
    cols: dict = {}
    oc = {}
    for w in words:
        k, v = w.split("=", 1)
        if k in ("priority-tags", "qinq-ethtype"):
            oc[k] = v
        elif k in ("trunks", "cvlans"):
            cols[k] = [int(x) for x in v.split(",")]
        elif k == "tag":
            cols[k] = int(v)
        else:
            cols[k] = v
    return VlanConfig.configure(**cols, other_config=oc)


def load_vlan_handling():
    ports: dict[int, VlanConfig] = {}
    traces = []
    for line in DATA.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        words = line.split()
        if words[0] == "port":
            ports[int(words[1])] = _config(words[2:])
        else:
            in_port, vid, pcp, actions = words
            tags = () if vid == "none" else (VlanTag(int(vid), int(pcp)),)
            traces.append((int(in_port), tags, actions))
    return ports, traces


PORTS, TRACES = load_vlan_handling()


@pytest.mark.parametrize("in_port, tags, actions", TRACES,
                         ids=[f"p{p}-{t[0].vid if t else 'none'}-{t[0].pcp if t else 0}"
                              for p, t, _ in TRACES])
def test_ofproto_dpif_vlan_handling(in_port, tags, actions):
    expected = apply_vlan_actions(tags, actions)
    result = flood_vlans(PORTS, in_port, tags)
    assert result.outputs == expected


def test_vlan_handling_corpus_size():
    assert len(PORTS) == 13 and len(TRACES) == 90


# -- configuration as bridge.c / bundle_set apply it ----------------------------------

ALL = frozenset(range(4096))


@pytest.mark.parametrize("columns, mode, vlan, trunks, cvlans", [
    ({}, VlanMode.TRUNK, -1, None, None),
    ({"trunks": [10, 20]}, VlanMode.TRUNK, -1, {10, 20}, None),
    ({"tag": 10}, VlanMode.ACCESS, 10, None, None),
    # vlan_mode empty + tag: access, trunks and cvlans ignored
    ({"tag": 10, "trunks": [20]}, VlanMode.ACCESS, 10, None, None),
    ({"vlan_mode": "access"}, VlanMode.ACCESS, 0, None, None),
    ({"vlan_mode": "access", "trunks": [5]}, VlanMode.ACCESS, 0, None, None),
    # tag is ignored on a trunk port
    ({"vlan_mode": "trunk", "tag": 7}, VlanMode.TRUNK, -1, None, None),
    # native: trunks all VLANs but 0 when trunks is empty; always trunks the native VLAN
    ({"vlan_mode": "native-tagged", "tag": 10}, VlanMode.NATIVE_TAGGED, 10, ALL - {0}, None),
    ({"vlan_mode": "native-untagged", "tag": 10, "trunks": [20]}, VlanMode.NATIVE_UNTAGGED, 10,
     {10, 20}, None),
    ({"vlan_mode": "native-untagged", "tag": 10, "trunks": [0, 10]}, VlanMode.NATIVE_UNTAGGED,
     10, {10}, None),
    ({"vlan_mode": "native-tagged", "tag": 10, "trunks": [10, 12]}, VlanMode.NATIVE_TAGGED, 10,
     {10, 12}, None),
    # native VLAN 0 (no tag): trunks kept as given
    ({"vlan_mode": "native-tagged"}, VlanMode.NATIVE_TAGGED, 0, None, None),
    ({"vlan_mode": "dot1q-tunnel", "tag": 5, "trunks": [1], "cvlans": [7, 8]},
     VlanMode.DOT1Q_TUNNEL, 5, None, {7, 8}),
    ({"vlan_mode": "trunk", "cvlans": [7]}, VlanMode.TRUNK, -1, None, None),
])
def test_configure(columns, mode, vlan, trunks, cvlans):
    cfg = VlanConfig.configure(**columns)
    assert (cfg.mode, cfg.vlan, cfg.trunks, cfg.cvlans) == (mode, vlan, trunks, cvlans)


def test_implicit_access_warns_about_trunks():
    cfg = VlanConfig.configure(tag=3, trunks=[4], port="p1")
    assert cfg.warnings == ("port p1: ignoring trunks in favor of implicit vlan",)
    assert VlanConfig.configure(vlan_mode="access", tag=3, trunks=[4]).warnings == ()


@pytest.mark.parametrize("other_config, qinq, prio", [
    ({}, ETH_TYPE_VLAN_8021AD, PriorityTags.NEVER),
    ({"qinq-ethtype": "802.1q"}, ETH_TYPE_VLAN_8021Q, PriorityTags.NEVER),
    ({"qinq-ethtype": "802.1ad"}, ETH_TYPE_VLAN_8021AD, PriorityTags.NEVER),
    ({"qinq-ethtype": "bogus"}, ETH_TYPE_VLAN_8021AD, PriorityTags.NEVER),
    ({"priority-tags": "if-nonzero"}, ETH_TYPE_VLAN_8021AD, PriorityTags.IF_NONZERO),
    ({"priority-tags": "true"}, ETH_TYPE_VLAN_8021AD, PriorityTags.IF_NONZERO),
    ({"priority-tags": "always"}, ETH_TYPE_VLAN_8021AD, PriorityTags.ALWAYS),
    ({"priority-tags": "never"}, ETH_TYPE_VLAN_8021AD, PriorityTags.NEVER),
    ({"priority-tags": "false"}, ETH_TYPE_VLAN_8021AD, PriorityTags.NEVER),
])
def test_other_config_keys(other_config, qinq, prio):
    cfg = VlanConfig.configure(vlan_mode="dot1q-tunnel", tag=1, other_config=other_config)
    assert (cfg.qinq_ethtype, cfg.priority_tags) == (qinq, prio)


@pytest.mark.parametrize("columns, message", [
    ({"vlan_mode": "hybrid"}, "unknown vlan_mode 'hybrid': expected one of access, trunk"),
    ({"tag": 4096}, "tag 4096 is out of range: expected 0..4095"),
    ({"tag": -1}, "tag -1 is out of range"),
    ({"trunks": [1, 5000]}, "trunks value 5000 is out of range"),
    ({"cvlans": ["x"]}, "cvlans value 'x' is out of range"),
])
def test_configure_errors(columns, message):
    with pytest.raises(OfprotoError, match=re.escape(message)):
        VlanConfig.configure(**columns)


@pytest.mark.parametrize("kwargs, message", [
    ({"vid": 4096}, "vid=4096"), ({"vid": 1, "pcp": 8}, "pcp=8"),
])
def test_bad_tag(kwargs, message):
    with pytest.raises(OfprotoError, match=message):
        VlanTag(**kwargs)


# -- admission (input_vid_is_valid), from vswitch.xml's mode descriptions -------------

@pytest.mark.parametrize("columns, vid, ok", [
    # access: any nonzero VID is dropped, even the port's own
    ({"tag": 10}, 0, True), ({"tag": 10}, 10, False), ({"tag": 10}, 11, False),
    # trunk: untagged is VLAN 0; only trunked VLANs enter
    ({}, 0, True), ({}, 4095, True),
    ({"trunks": [10, 12]}, 0, False), ({"trunks": [10, 12]}, 12, True),
    ({"trunks": [0, 10]}, 0, True), ({"trunks": [10, 12]}, 11, False),
    # native: untagged always enters (the native VLAN)
    ({"vlan_mode": "native-tagged", "tag": 10, "trunks": [12]}, 0, True),
    ({"vlan_mode": "native-tagged", "tag": 10, "trunks": [12]}, 10, True),
    ({"vlan_mode": "native-untagged", "tag": 10, "trunks": [12]}, 13, False),
    # dot1q-tunnel: cvlans restrict the customer VLAN (0 = untagged)
    ({"vlan_mode": "dot1q-tunnel", "tag": 10}, 0, True),
    ({"vlan_mode": "dot1q-tunnel", "tag": 10}, 99, True),
    ({"vlan_mode": "dot1q-tunnel", "tag": 10, "cvlans": [10, 12]}, 12, True),
    ({"vlan_mode": "dot1q-tunnel", "tag": 10, "cvlans": [10, 12]}, 0, False),
    ({"vlan_mode": "dot1q-tunnel", "tag": 10, "cvlans": [10, 12]}, 11, False),
])
def test_input_vid_is_valid(columns, vid, ok):
    assert VlanConfig.configure(**columns).input_vid_is_valid(vid) is ok


@pytest.mark.parametrize("columns, vid, message", [
    ({"tag": 10}, 5, "dropping VLAN 5 tagged packet received on port p2 configured as "
                     "VLAN 10 access port"),
    ({"trunks": [10]}, 11, "dropping VLAN 11 packet received on port p2 not configured for "
                           "trunking VLAN 11"),
    ({"vlan_mode": "dot1q-tunnel", "tag": 1, "cvlans": [3]}, 4,
     "dropping VLAN 4 packet received on dot1q-tunnel port p2 that excludes this VLAN"),
])
def test_input_drop_messages(columns, vid, message):
    assert VlanConfig.configure(**columns).input_vid_error(vid, "p2") == message


# -- translation ---------------------------------------------------------------------

def tag(vid, pcp=0, tpid=ETH_TYPE_VLAN_8021Q):
    return VlanTag(vid, pcp, tpid)


@pytest.mark.parametrize("columns, tags, vlan, cvlan, outer_tpid", [
    ({"tag": 10}, (), 10, 0, ETH_TYPE_VLAN_8021Q),
    ({"tag": 10}, (tag(0, 3),), 10, 0, ETH_TYPE_VLAN_8021Q),  # priority tag keeps its PCP
    ({}, (tag(20),), 20, 0, ETH_TYPE_VLAN_8021Q),
    ({}, (), 0, 0, 0),
    ({"vlan_mode": "native-tagged", "tag": 10}, (), 10, 0, ETH_TYPE_VLAN_8021Q),
    ({"vlan_mode": "native-untagged", "tag": 10}, (tag(30),), 30, 0, ETH_TYPE_VLAN_8021Q),
    ({"vlan_mode": "dot1q-tunnel", "tag": 10}, (tag(30),), 10, 30, ETH_TYPE_VLAN_8021AD),
    ({"vlan_mode": "dot1q-tunnel", "tag": 10}, (), 10, 0, ETH_TYPE_VLAN_8021AD),
    ({"vlan_mode": "dot1q-tunnel", "tag": 10, "other_config": {"qinq-ethtype": "802.1q"}},
     (tag(30),), 10, 30, ETH_TYPE_VLAN_8021Q),
])
def test_input_translate(columns, tags, vlan, cvlan, outer_tpid):
    x = VlanConfig.configure(**columns).input_translate(XVlan.from_tags(tags))
    assert (x.vlan, x.cvlan, x.outer[0]) == (vlan, cvlan, outer_tpid)


S10 = XVlan((ETH_TYPE_VLAN_8021AD, 10, 0), (ETH_TYPE_VLAN_8021Q, 30, 2))  # service 10, customer 30
V10 = XVlan((ETH_TYPE_VLAN_8021Q, 10, 5))


@pytest.mark.parametrize("columns, xvlan, included, out", [
    # access: only its VLAN, single-tagged inside the bridge; leaves untagged
    ({"tag": 10}, V10, True, ()),
    ({"tag": 10}, S10, False, None),
    ({"tag": 11}, V10, False, None),
    # trunk keeps both tags
    ({}, S10, True, (tag(10, 0, ETH_TYPE_VLAN_8021AD), tag(30, 2))),
    ({"trunks": [11]}, V10, False, None),
    # native-tagged always tags; native-untagged strips the native VLAN only
    ({"vlan_mode": "native-tagged", "tag": 10}, V10, True, (tag(10, 5),)),
    ({"vlan_mode": "native-untagged", "tag": 10}, V10, True, ()),
    ({"vlan_mode": "native-untagged", "tag": 10}, S10, True, (tag(30, 2),)),
    ({"vlan_mode": "native-untagged", "tag": 12}, V10, True, (tag(10, 5),)),
    # dot1q-tunnel: outer must be the service VLAN, which is removed on egress
    ({"vlan_mode": "dot1q-tunnel", "tag": 10}, S10, True, (tag(30, 2),)),
    ({"vlan_mode": "dot1q-tunnel", "tag": 10}, V10, True, ()),
    ({"vlan_mode": "dot1q-tunnel", "tag": 10, "cvlans": [31]}, S10, False, None),
    ({"vlan_mode": "dot1q-tunnel", "tag": 10, "cvlans": [0]}, V10, True, ()),
    ({"vlan_mode": "dot1q-tunnel", "tag": 11}, S10, False, None),
])
def test_includes_and_output(columns, xvlan, included, out):
    cfg = VlanConfig.configure(**columns)
    assert cfg.includes(xvlan) is included
    if included:
        assert cfg.output_tags(xvlan) == out


@pytest.mark.parametrize("mode_cols, flow_pcp, out", [
    # never (default): no priority tags
    ({"tag": 10}, 3, ()),
    # if-nonzero: a priority tag with the flow's PCP, only when nonzero
    ({"tag": 10, "other_config": {"priority-tags": "if-nonzero"}}, 3, (tag(0, 3),)),
    ({"tag": 10, "other_config": {"priority-tags": "if-nonzero"}}, 0, ()),
    # always: an access port's slot has no TPID after translation, so still nothing
    ({"tag": 10, "other_config": {"priority-tags": "always"}}, 0, ()),
    # native-untagged popping a single tag leaves an empty slot, as on access ports
    ({"vlan_mode": "native-untagged", "tag": 10, "other_config": {"priority-tags": "if-nonzero"}},
     6, (tag(0, 6),)),
    # trunk with if-nonzero: the outer PCP is the flow's
    ({"other_config": {"priority-tags": "if-nonzero"}}, 1, (tag(10, 1),)),
])
def test_priority_tags(mode_cols, flow_pcp, out):
    assert VlanConfig.configure(**mode_cols).output_tags(V10, flow_pcp) == out


def test_priority_tags_always_keeps_vid0_tag_on_trunk():
    """``always`` writes a header for a slot with a TPID even when VID and PCP are 0."""
    x = XVlan((ETH_TYPE_VLAN_8021Q, 0, 0))
    always = VlanConfig.configure(other_config={"priority-tags": "always"})
    assert always.output_tags(x, 0) == (tag(0, 0),)
    assert VlanConfig.configure().output_tags(x, 0) == ()


# -- vlan-limit ---------------------------------------------------------------------

@pytest.mark.parametrize("config, limit", [
    ({}, 1), ({"vlan-limit": "0"}, 0), ({"vlan-limit": "2"}, 2), ({"vlan-limit": "x"}, 1),
])
def test_vlan_limit_from_config(config, limit):
    assert vlan_limit_from_config(config) == limit


def test_vlan_depth_limit():
    """VLAN depth limit: by default (1) the inner tag is payload; vlan-limit=0 parses both."""
    qinq = (tag(16), tag(17))
    assert parse_vlans(qinq) == ((tag(16),), (tag(17),))
    assert parse_vlans(qinq, 0) == (qinq, ())
    assert parse_vlans(qinq, 5) == (qinq, ())
    assert effective_vlan_limit(-3) == 2
    assert parse_vlans((tag(1, 0, 0x9100),), 2) == ((), (tag(1, 0, 0x9100),))


DOT1Q_PORTS = {
    1: VlanConfig.configure(vlan_mode="dot1q-tunnel", tag=100, cvlans=[10]),
    2: VlanConfig.configure(trunks=[100]),
    3: VlanConfig.configure(vlan_mode="dot1q-tunnel", tag=100),
}


@pytest.mark.parametrize("limit, tags, outputs", [
    # single customer tag: service tag 100 (802.1ad) pushed towards the trunk
    (1, (tag(10),), {2: (tag(100, 0, ETH_TYPE_VLAN_8021AD), tag(10)), 3: (tag(10),)}),
    # double-tagged with vlan-limit 1: the inner tag is payload and rides along
    (1, (tag(10), tag(20)), {2: (tag(100, 0, ETH_TYPE_VLAN_8021AD), tag(10), tag(20)),
                             3: (tag(10), tag(20))}),
    # with vlan-limit 2 both are parsed, and pushing the service tag onto xvlan's two
    # slots pushes the innermost out: the copies lose tag 20 (commit_vlan_action pops
    # both headers and pushes the flow's)
    (2, (tag(10), tag(20)), {2: (tag(100, 0, ETH_TYPE_VLAN_8021AD), tag(10)),
                             3: (tag(10),)}),
    # customer VLAN 11 is not in port 1's cvlans
    (1, (tag(11),), {}),
])
def test_dot1q_tunnel_flood(limit, tags, outputs):
    assert flood_vlans(DOT1Q_PORTS, 1, tags, vlan_limit=limit).outputs == outputs


def test_flood_drop_reason_and_floodable():
    ports = {1: VlanConfig.configure(tag=5), 2: VlanConfig.configure(tag=5),
             3: VlanConfig.configure()}
    r = flood_vlans(ports, 1, (tag(5),), port_names={1: "p1"})
    assert r.drop_reason == ("dropping VLAN 5 tagged packet received on port p1 configured "
                             "as VLAN 5 access port")
    assert r.outputs == {}
    r = flood_vlans(ports, 1, (), floodable=[3])
    assert r.drop_reason is None and r.xvlan.vlan == 5
    assert r.outputs == {3: (tag(5),)}


@pytest.mark.parametrize("columns, masks", [
    ({"vlan_mode": "dot1q-tunnel", "tag": 1, "cvlans": [2]}, True),
    ({"vlan_mode": "dot1q-tunnel", "tag": 1}, False),
    ({"trunks": [2]}, False),
    ({"tag": 1, "cvlans": [2]}, False),
])
def test_output_masks_inner_tci(columns, masks):
    assert VlanConfig.configure(**columns).output_masks_inner_tci is masks
