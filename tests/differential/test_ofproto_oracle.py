"""Open vSwitch 3.1 reproduces the trace cases of its own testsuite, as recorded in our corpus.

tests/differential/data/ofproto_dpif_cases.yaml re-expresses the
single-bridge ``ofproto/trace`` cases of OVS's tests/ofproto-dpif.at as data.
Each case is set up in one private ovs-vswitchd (one sandbox for the whole
module; cases reset the bridge rather than restart the daemons) and every
trace must print what the .at file expects. This validates both the corpus
and the harness (tests/differential/ofproto_oracle.py); ovsnet's own
``ovsnet trace`` is checked against the same corpus.

Cases that OVS 3.1 itself no longer reproduces carry a ``skip:`` reason in the
data. Without the binaries the tests skip, except under ``CI=true``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.differential.ofproto_oracle import (
    OfprotoOracle,
    PatchSpec,
    normalize_actions,
    oracle_fixture,
    vlan_context,
)

CORPUS = Path(__file__).parent / "data" / "ofproto_dpif_cases.yaml"


def expand_flows(items) -> list[str]:
    """The corpus's flow list with ``{range: [A, B], line: ...}`` items expanded."""
    flows: list[str] = []
    for item in items or ():
        if isinstance(item, str):
            flows.append(item)
            continue
        first, last = item["range"]
        flows += [item["line"].format(i=i, next=i + 1, prev=i - 1) for i in range(first, last + 1)]
    return flows


def load_cases() -> list[dict]:
    data = YAML(typ="safe").load(CORPUS.read_text())
    return data["cases"]


CASES = load_cases()


oracle = oracle_fixture("ofproto-oracle")


def configure(oracle: OfprotoOracle, case: dict) -> None:
    patch = None
    if "patch" in case:
        p = case["patch"]
        patch = PatchSpec(ports=tuple(p.get("ports", ())), flows=tuple(expand_flows(p.get("flows"))),
                          local=p.get("local", "patch-br1"), remote=p.get("remote", "patch-br0"),
                          local_ofport=p.get("local_ofport"), remote_ofport=p.get("remote_ofport"))
    oracle.configure(
        case.get("ports", ()), flows=expand_flows(case.get("flows")),
        protocol=case.get("protocol"), other_config=case.get("other_config"),
        port_config={int(k): v for k, v in (case.get("port_config") or {}).items()},
        flow_tables={int(k): v for k, v in (case.get("flow_tables") or {}).items()},
        patch=patch, extra_ports=case.get("tunnels"), fail_mode=case.get("fail_mode", "secure"),
        ovs_config=case.get("ovs_config"),
        mod_port={int(k): v for k, v in (case.get("mod_port") or {}).items()})


def check_trace(oracle: OfprotoOracle, want: dict) -> list[str]:
    """The differences between what OVS printed for ``want["flow"]`` and what the case expects."""
    got = oracle.trace(want["flow"], generate=want.get("generate", False))
    where = f"trace {want['flow']}"
    if got.error:
        return [f"{where}: ofproto/trace failed: {got.error}"]
    problems = []
    if "datapath_actions" in want:
        expected, actual = str(want["datapath_actions"]), got.datapath_actions or ""
        how = want.get("compare", "exact")
        if how == "normalized":
            context = vlan_context(got.flow)
            expected, actual = normalize_actions(context, expected), got.normalized_actions
        elif how == "sorted":
            expected, actual = sorted(expected.split(",")), sorted(actual.split(","))
        if expected != actual:
            problems.append(f"{where}: datapath actions {actual!r}, expected {expected!r}")
    for key in ("megaflow", "final_flow"):
        if key in want and getattr(got, key) != want[key]:
            problems.append(f"{where}: {key} {getattr(got, key)!r}, expected {want[key]!r}")
    lines = got.raw.rstrip("\n").splitlines()
    if "last_line" in want and lines[-1] != want["last_line"]:
        problems.append(f"{where}: last line {lines[-1]!r}, expected {want['last_line']!r}")
    for text, n in (want.get("counts") or {}).items():
        found = sum(text in line for line in lines)
        if found != n:
            problems.append(f"{where}: {found} lines contain {text!r}, expected {n}")
    return problems


@pytest.mark.real_ovs
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_ovs_reproduces_case(oracle, case):
    if case.get("skip"):
        pytest.skip(f"OVS 3.1 differs from its .at file: {case['skip']}")
    configure(oracle, case)
    problems = [p for want in case["traces"] for p in check_trace(oracle, want)]
    assert not problems, "\n".join(problems)


def test_corpus_shape():
    """Every case names its source and traces something with at least one expectation."""
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names)), "duplicate case names"
    assert len(CASES) >= 60
    keys = {"datapath_actions", "megaflow", "last_line", "counts", "final_flow"}
    for case in CASES:
        assert case.get("source"), case["name"]
        assert case["traces"], case["name"]
        for want in case["traces"]:
            assert keys & set(want), f"{case['name']}: {want['flow']} checks nothing"
