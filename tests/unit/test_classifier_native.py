"""The compiled classifier lookup (native/_classifier.pyx) against the pure-Python reference.

Both implementations get the same rules, inserted and removed in the same
order, and must return the same rule and leave exactly the same wildcards for
every flow, starting from the same partly un-wildcarded mask, over several
tables in a row (as translation looks them up) and after the prefix fields
change. The OVS testsuite cases of test_classifier.py also run on the
reference here (that module runs them on the default implementation).
"""

from __future__ import annotations

import random

import pytest
import test_classifier as T  # the sibling module: its case data and generators
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ovsnet.ofproto import classifier as C
from ovsnet.ofproto import of_flow as F
from ovsnet.ofproto.classifier import Classifier, ClsRule, FlowWildcards, PrefixTrie
from ovsnet.ofproto.ofp_fields import MEMBERS

pytestmark = pytest.mark.skipif("cython" not in C.IMPLEMENTATIONS,
                                reason="the compiled classifier is not built")


def _pair(seed: int) -> tuple[random.Random, list[Classifier], list[Classifier]]:
    """Random tables (as test_classifier builds them), each as (python, cython) twins."""
    rng = random.Random(seed)
    py_tables, cy_tables = [], []
    for _ in range(rng.randint(1, 3)):
        prefixes = rng.choice([("ip_dst", "ip_src"), (), ("ipv6_dst", "ip_src", "ip_dst"),
                               ("ip_src",)])
        py, cy = Classifier(prefixes, "python"), Classifier(prefixes, "cython")
        pool = rng.sample(range(0, 200), rng.randint(1, 8))
        pairs = []
        for i in range(rng.randint(0, 60)):
            rule = T._random_rule(rng, pool)
            if py.find_exact(rule.match, rule.priority) is not None:
                continue
            twin = ClsRule(rule.match.copy(), rule.priority, i)
            rule.payload = i
            py.insert(rule)
            cy.insert(twin)
            pairs.append((rule, twin))
        for a, b in rng.sample(pairs, len(pairs) // 4):
            assert py.remove(a) and cy.remove(b)
            pairs.remove((a, b))
        if rng.random() < 0.2:  # prefix fields changed with rules present
            new = rng.choice([("ip_dst",), ("ipv6_dst", "ip_dst"), ()])
            py.set_prefix_fields(new)
            cy.set_prefix_fields(new)
        py_tables.append(py)
        cy_tables.append(cy)
    return rng, py_tables, cy_tables


def _start_wc(rng: random.Random, flow) -> FlowWildcards:
    wc = FlowWildcards()
    wc.unwildcard("dl_type")
    for member in rng.sample(sorted(T._VALUES), rng.randint(0, 3)):
        width = MEMBERS[member]
        n = rng.randint(1, width)
        wc.unwildcard(member, ((1 << n) - 1) << (width - n))
    return wc


_SETTINGS = settings(max_examples=300, deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(st.integers(0, 2**32 - 1))
def test_same_rule_and_same_wildcards(seed: int) -> None:
    rng, py_tables, cy_tables = _pair(seed)
    rules = [r for t in py_tables for r in t]
    for _ in range(25):
        flow = T._random_flow(rng, rules)
        wc_py = _start_wc(rng, flow)
        wc_cy = FlowWildcards(wc_py.masks)
        for py, cy in zip(py_tables, cy_tables, strict=True):
            a, b = py.lookup(flow, wc_py), cy.lookup(flow, wc_cy)
            assert (a and (a.priority, a.payload)) == (b and (b.priority, b.payload))
            assert wc_py.masks == wc_cy.masks, (flow, py.subtables())
            assert cy.lookup(flow) is b  # without wildcard tracking


@pytest.mark.parametrize(
    ("case", "item"),
    [(c, f) for c in T.CASES for f in c["flows"]],
    ids=[f"{c['name']}:{f['lineno']}" for c in T.CASES for f in c["flows"]],
)
def test_ovs_testsuite_cases_on_the_reference(monkeypatch, case: dict, item: dict) -> None:
    monkeypatch.setattr(C, "DEFAULT_IMPLEMENTATION", "python")
    assert Classifier().implementation == "python"
    T.test_ovs_testsuite_megaflows(case, item)


@pytest.mark.parametrize("prefixes", [[], [(0x0A000000, 8)], [(0x0A000000, 8), (0x0A010000, 16)],
                                      [(0x0A000000, 8), (0x0A800000, 9), (0x0A000001, 32)]])
def test_trie_lookup_matches_the_reference(prefixes) -> None:
    trie = PrefixTrie(32)
    for v, n in prefixes:
        trie.insert(v, n)
    rng = random.Random(5)
    values = [v for v, _ in prefixes] + [rng.getrandbits(32) for _ in range(200)]
    values += [v ^ (1 << rng.randrange(32)) for v, _ in prefixes]
    for value in values:
        assert C._native.trie_lookup(trie, value) == trie.lookup(value)


def test_unknown_implementation_is_refused() -> None:
    with pytest.raises(C.OfprotoError, match="choose from python, cython"):
        Classifier(implementation="fortran")


# --------------------------------------------------------------------------------------
# The flow-key conversions of of_flow (compiled when built)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.binary(min_size=528, max_size=528))
def test_key_members_match_the_reference(raw: bytes) -> None:
    assert F._read_key is not F._key_members
    assert F._read_key(raw) == F._key_members(raw)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.dictionaries(st.sampled_from(sorted(F.OF_MEMBERS)), st.integers(0, 2**128 - 1),
                       max_size=30))
def test_key_mask_matches_the_reference(masks: dict[str, int]) -> None:
    masks = {m: v & ((1 << F.OF_MEMBERS[m]) - 1) for m, v in masks.items()}
    assert F.key_mask_of is not F._key_mask_of
    assert F.key_mask_of(masks) == F._key_mask_of(masks)


def test_key_mask_round_trip() -> None:
    # every key member's bits land where from_flow_key reads them back
    masks = {m: (1 << F.OF_MEMBERS[m]) - 1 for m, _o, _s, _b in F.KEY_MEMBERS}
    raw = F.key_mask_of({**masks, "in_port": 1, "reg0": 5, "metadata": 1})
    assert raw[:4] == b"\xff" * 4
    flow = F.OfFlow.from_flow_key(raw, lambda _odp: 1)
    for member, _off, size, _order in F.KEY_MEMBERS:
        assert getattr(flow, member) == masks[member] & ((1 << (8 * size)) - 1), member
    assert flow.reg0 == 0 and flow.metadata == 0
