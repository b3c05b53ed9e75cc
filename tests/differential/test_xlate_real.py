"""ovsnet's translation (xlate) against Open vSwitch 3.1's ``ofproto/trace``.

The cases of tests/differential/data/ofproto_dpif_cases.yaml (OVS's
tests/ofproto-dpif.at restated as data) that use only what
:mod:`ovsnet.ofproto.xlate` supports are loaded into a real ovs-vswitchd (via
tests/differential/ofproto_oracle.py) and into an :class:`ovsnet.ofproto.bridge.Bridge`
with the same ports (``pN`` is OpenFlow and datapath port N, ``LOCAL`` is
datapath port 100), and every trace is translated by both. Compared:

* ``Datapath actions``: ours printed with :func:`ovsnet.datapath.odp.format_actions`,
  both normalised with ``ovs-dpctl normalize-actions`` as the oracle does;
* ``Megaflow``: our wildcards printed as OVS's ``match_format``;
* the ``Translation failed (...)`` reason, when OVS gives one;
* whether the flow is slow-pathed for actions the datapath cannot do.

Cases are selected by name in :data:`SUPPORTED`; :data:`NOT_YET` lists the
others with what they need.
"""

from __future__ import annotations

import re

import pytest

from ovsnet.datapath import odp
from ovsnet.ofproto.bridge import Bridge, connect_patch
from ovsnet.ofproto.flow_syntax import parse_flow
from ovsnet.ofproto.of_flow import OfFlow
from ovsnet.ofproto.ofp_fields import OFPP_NONE
from ovsnet.ofproto.xlate import XlateResult, xlate
from tests.differential.ofproto_oracle import (
    OfprotoOracle,
    TraceResult,
    is_odp_flow,
    normalize_actions,
    vlan_context,
)
from tests.differential.ovs_sandbox import OvsSandbox, require_binaries
from tests.differential.test_ofproto_oracle import CASES, configure, expand_flows

LOCAL_ODP_PORT = 100

#: corpus cases whose every action this model translates (trace indices: all)
SUPPORTED = [
    "resubmit", "goto-table-64", "registers", "extended-registers", "copy-field-xreg",
    "masked-set-field-metadata", "push-pop", "output",
    "multi-vlan-actions-1", "multi-vlan-actions-2", "multi-vlan-actions-3",
    "multi-vlan-actions-4", "multi-vlan-actions-5", "multi-vlan-actions-6",
    "multi-vlan-actions-7", "multi-vlan-actions-8",
    "forward-resubmit", "backward-resubmit", "infinite-resubmit",
    "exponential-resubmit-chain", "too-many-output-actions", "icmpv6-type-match",
    "megaflow-set-dl-dst", "write-actions", "clear-actions",
    "output-flood-flags-1", "output-flood-flags-2", "output-flood-flags-3",
    "output-flood-flags-4", "patch-ports-from-br0", "patch-ports-from-br1", "modify-nd",
]

#: cases not run yet, with what they need
NOT_YET = {
    "extended-extended-registers": "xxreg fields (the flow syntax lacks them)",
    "dec-ttl": "dec_ttl at TTL 1 (packet-in to the controller)",
    "output-ofpp-none-ingress": "NORMAL",
    "output-flood-flags-5": "enqueue",
    "vlan-depth-limit-1": "other_config:vlan-limit (the flow key parses both tags)",
    "vlan-depth-limit-unlimited": "other_config:vlan-limit",
}
NOT_YET.update({c["name"]: "NORMAL and VLAN modes" for c in CASES
                if c["name"].startswith("vlan-handling-")})

_BY_NAME = {c["name"]: c for c in CASES}

#: flows ovsnet leaves out of a supported case (OVS still has them), by substring, and why
#: that cannot change the result
OMITTED_FLOWS = {
    name: ("enqueue:", "the flow syntax has no enqueue yet; the flow matches in_port=4 only, "
                       "with the same mask as the case's other flows, and no trace enters there")
    for name in ("output-flood-flags-1", "output-flood-flags-2", "output-flood-flags-3",
                 "output-flood-flags-4")
}


def build_bridge(case: dict) -> Bridge:
    """br0 as the oracle builds it, and br1 behind patch ports when the case has one."""
    bridge = Bridge("br0", local_odp_port=LOCAL_ODP_PORT)
    for n in case.get("ports", ()):
        bridge.add_port(f"p{n}", n, n)
    patch = case.get("patch")
    if patch is not None:
        other = Bridge("br1", local_odp_port=LOCAL_ODP_PORT + 1)
        for n in patch.get("ports", ()):
            other.add_port(f"p{n}", n, n)
        connect_patch(bridge, patch.get("local", "patch-br1"), patch["local_ofport"],
                      other, patch.get("remote", "patch-br0"), patch["remote_ofport"])
        for text in expand_flows(patch.get("flows")):
            other.add_flow(parse_flow(text, other.port_map))
    for port, flag in (case.get("mod_port") or {}).items():
        bridge.mod_port(int(port), flag)
    omit = OMITTED_FLOWS.get(case["name"], (None, ""))[0]
    for text in expand_flows(case.get("flows")):
        if omit is not None and omit in text:
            continue
        bridge.add_flow(parse_flow(text, bridge.port_map))
    return bridge


def trace_flow(bridge: Bridge, text: str) -> tuple[Bridge, OfFlow]:
    """The bridge and flow ``ofproto/trace`` would translate for ``text``.

    An ODP flow enters the bridge owning its datapath input port (br0 or a
    patch peer); an OpenFlow flow enters br0.
    """
    if is_odp_flow(text):
        key, _mask = odp.parse_flow(text)
        odp_port = int(re.search(r"in_port\((\d+)\)", text).group(1))
        for br in (bridge, *bridge.patch_bridges):
            if odp_port in br.dp_port_names:
                return br, OfFlow.from_flow_key(key, br.ofport_of_odp)
        return bridge, OfFlow.from_flow_key(key, bridge.ofport_of_odp)
    fm = parse_flow(text + ",actions=drop", bridge.port_map)
    flow = OfFlow.from_match(fm.match)
    if not fm.match.get("in_port")[1]:
        flow.set("in_port", OFPP_NONE)
    return bridge, flow


_FAILED_RE = re.compile(r"Translation failed \((.*)\), packet is dropped\.")


def differences(ovs: TraceResult, ours: XlateResult, bridge: Bridge) -> dict[str, str]:
    """What differs, by aspect (``actions``, ``megaflow``, ``slow path``, ``error``)."""
    out: dict[str, str] = {}
    text = odp.format_actions(ours.datapath_actions)
    theirs = ovs.datapath_actions or ""
    if ovs.normalized_actions is not None:
        mine = normalize_actions(vlan_context(ovs.flow), text)
        if mine != ovs.normalized_actions:
            out["actions"] = f"ours {text!r} != ovs {theirs!r}"
    elif text != theirs:
        out["actions"] = f"ours {text[:200]!r} != ovs {theirs[:200]!r}"
    if ovs.megaflow is not None and ours.megaflow() != ovs.megaflow:
        out["megaflow"] = f"ours {ours.megaflow()!r} != ovs {ovs.megaflow!r}"
    ovs_slow = "Uses action(s) not supported by datapath" in ovs.raw
    if ovs_slow != ours.slow:
        out["slow path"] = f"ours {ours.slow} != ovs {ovs_slow}"
    m = _FAILED_RE.search(ovs.raw)
    if (m.group(1) if m else None) != ours.error:
        out["error"] = f"ours {ours.error!r} != ovs {m.group(1) if m else None!r}"
    return out


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    require_binaries()
    sandbox = OvsSandbox(tmp_path_factory.mktemp("xlate-oracle"))
    try:
        sandbox.start()
        yield OfprotoOracle(sandbox)
    finally:
        sandbox.stop()


def test_selection_covers_corpus():
    """Every corpus case is either run here or listed with what it still needs."""
    names = set(_BY_NAME)
    assert set(SUPPORTED) <= names
    assert set(NOT_YET) <= names
    assert not set(SUPPORTED) & set(NOT_YET)
    assert set(SUPPORTED) | set(NOT_YET) == names


@pytest.mark.real_ovs
@pytest.mark.parametrize("name", SUPPORTED)
def test_xlate_agrees_with_ovs(oracle, name):
    case = _BY_NAME[name]
    configure(oracle, case)
    bridge = build_bridge(case)
    problems = []
    for want in case["traces"]:
        ovs = oracle.trace(want["flow"], generate=want.get("generate", False))
        assert ovs.error is None, ovs.error
        ours = xlate(*trace_flow(bridge, want["flow"]))
        assert not ours.unsupported, f"{name} uses unsupported actions: {ours.unsupported}"
        for aspect, text in differences(ovs, ours, bridge).items():
            problems.append(f"{want['flow']}: {aspect}: {text}")
    assert not problems, "\n".join(problems)
