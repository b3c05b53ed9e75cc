"""NORMAL's VLAN handling (ovsnet.ofproto.vlan) against real ovs-vswitchd 3.1.

One standalone bridge holds ports in every VLAN mode (access, trunk,
native-tagged, native-untagged, dot1q-tunnel, with and without tags, trunks,
cvlans, qinq-ethtype and priority-tags, plus the implicit-mode and
ignored-column cases of vswitch.xml). A broadcast frame enters each port
untagged, priority-tagged, single-tagged and double-tagged (802.1Q and
802.1ad outer), with ``vlan-limit`` 1 (the default) and 0 (two headers).
``ofproto/trace`` gives OVS's datapath actions; running their
``push_vlan``/``pop_vlan``/``output`` on the frame's tag stack gives the tags
each port's copy leaves with. :func:`ovsnet.ofproto.vlan.flood_vlans` must
predict the same ports with the same tags, and drop what OVS drops.

Without the binaries the tests skip, except under ``CI=true``.
"""

from __future__ import annotations

import pytest

from ovsnet.ofproto.vlan import (
    ETH_TYPE_VLAN_8021AD,
    VlanConfig,
    VlanTag,
    flood_vlans,
)
from tests.differential.ofproto_oracle import oracle_fixture
from tests.unit.test_vlan_modes import apply_vlan_actions

#: Port columns as ovs-vsctl sets them (pN is ofport and datapath port N)
PORT_CONFIG: dict[int, dict[str, str]] = {
    1: {},
    2: {"trunks": "[10,20]"},
    3: {"tag": "10"},
    4: {"tag": "20", "other_config:priority-tags": "if-nonzero"},
    5: {"vlan_mode": "native-tagged", "tag": "10", "trunks": "[20]"},
    6: {"vlan_mode": "native-untagged", "tag": "20", "trunks": "[10,30]"},
    7: {"vlan_mode": "native-untagged", "tag": "10", "other_config:priority-tags": "always"},
    8: {"vlan_mode": "dot1q-tunnel", "tag": "10"},
    9: {"vlan_mode": "dot1q-tunnel", "tag": "20", "cvlans": "[10,30]",
        "other_config:qinq-ethtype": "802.1q"},
    10: {"vlan_mode": "dot1q-tunnel", "tag": "10", "cvlans": "[0,20]",
         "other_config:priority-tags": "if-nonzero"},
    11: {"trunks": "[0,10]", "other_config:priority-tags": "always"},
    12: {"vlan_mode": "access"},
    13: {"vlan_mode": "native-untagged", "trunks": "[0,30]"},
    14: {"tag": "30", "trunks": "[10]"},
    15: {"vlan_mode": "trunk", "tag": "10", "trunks": "[10,30]"},
}
PORTS = tuple(PORT_CONFIG)
#: br0's internal port: a trunk of every VLAN, datapath port 100
LOCAL = 100

AD = ETH_TYPE_VLAN_8021AD
#: input tag stacks, outermost first
INPUTS: list[tuple[VlanTag, ...]] = [
    (),
    (VlanTag(0, 3),),
    (VlanTag(10),),
    (VlanTag(10, 5),),
    (VlanTag(20),),
    (VlanTag(30, 2),),
    (VlanTag(99),),
    (VlanTag(10), VlanTag(20, 1)),
    (VlanTag(20), VlanTag(30)),
    (VlanTag(10, 0, AD), VlanTag(30)),
    (VlanTag(0, 1), VlanTag(10)),
    (VlanTag(20, 4, AD),),
    (VlanTag(30), VlanTag(0)),
]


def vlan_config(columns: dict[str, str], port: str) -> VlanConfig:
    """The ovsnet configuration for the same Port columns."""
    def vids(text: str | None):
        return None if text is None else [int(v) for v in text.strip("[]").split(",") if v]
    oc = {k.split(":", 1)[1]: v for k, v in columns.items() if k.startswith("other_config:")}
    tag = columns.get("tag")
    return VlanConfig.configure(vlan_mode=columns.get("vlan_mode"),
                                tag=None if tag is None else int(tag),
                                trunks=vids(columns.get("trunks")),
                                cvlans=vids(columns.get("cvlans")), other_config=oc, port=port)


CONFIGS = {n: vlan_config(c, f"p{n}") for n, c in PORT_CONFIG.items()}
CONFIGS[LOCAL] = VlanConfig.configure(port="br0")


def odp_flow(in_port: int, tags: tuple[VlanTag, ...]) -> str:
    """A broadcast frame with these tags in ofproto/trace's ODP syntax."""
    inner = "eth_type(0xabcd)"
    for t in reversed(tags):
        inner = f"eth_type(0x{t.tpid:04x}),vlan(vid={t.vid},pcp={t.pcp}),encap({inner})"
    return f"in_port({in_port}),eth(src=50:54:00:00:00:01,dst=ff:ff:ff:ff:ff:ff),{inner}"


def tags_text(tags: tuple[VlanTag, ...]) -> str:
    return "+".join(str(t) for t in tags) or "untagged"


oracle = oracle_fixture("vlan-modes")


@pytest.mark.real_ovs
@pytest.mark.parametrize("vlan_limit", [1, 0])
@pytest.mark.parametrize("in_port", [*PORTS, LOCAL])
def test_flood_vlans_match_ovs(oracle, vlan_limit, in_port):
    oracle.configure(PORTS, port_config=PORT_CONFIG, fail_mode="standalone",
                     ovs_config={"vlan-limit": str(vlan_limit)})
    problems = []
    for tags in INPUTS:
        flow = odp_flow(in_port, tags)
        got = oracle.trace(flow, normalize=False)
        assert got.error is None and got.datapath_actions is not None, got.error or got.raw
        actual = apply_vlan_actions(tags, got.datapath_actions)
        predicted = flood_vlans(CONFIGS, in_port, tags, vlan_limit=vlan_limit).outputs
        if predicted != actual:
            diff = sorted(set(predicted) ^ set(actual)
                          | {p for p in set(predicted) & set(actual) if predicted[p] != actual[p]})
            detail = "; ".join(f"p{p}: ovs {tags_text(actual[p]) if p in actual else '-'}, "
                               f"ovsnet {tags_text(predicted[p]) if p in predicted else '-'}"
                               for p in diff)
            problems.append(f"{flow}: {got.datapath_actions}: {detail}")
    assert not problems, "\n".join(problems)


def test_matrix_covers_every_mode():
    modes = {c.mode for c in CONFIGS.values()}
    assert len(modes) == 5
    assert len(INPUTS) * (len(PORTS) + 1) * 2 >= 300
