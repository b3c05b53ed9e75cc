"""Tests of the OpenFlow classifier (ovsnet.ofproto.classifier) and OfFlow.

Three kinds: the megaflows Open vSwitch's own testsuite expects
(tests/unit/data/classifier_cases.txt), property tests on seeded random rule
sets (lookup equals a brute-force search; the un-wildcarded bits decide the
result), and hand-written cases for the parts of ``lib/classifier.c`` the
data does not pin down alone.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ovsnet.datapath.flow_key import FlowKey, extract
from ovsnet.errors import OfprotoError
from ovsnet.ofproto import fastpath, parse_flow
from ovsnet.ofproto.classifier import (
    STAGE_OF_MEMBER,
    Classifier,
    ClsRule,
    FlowWildcards,
    PrefixTrie,
)
from ovsnet.ofproto.of_flow import OfFlow
from ovsnet.ofproto.ofp_fields import MEMBERS, Match

DATA = Path(__file__).parent / "data" / "classifier_cases.txt"


# --------------------------------------------------------------------------------------
# The OVS testsuite cases


def _load_cases() -> list[dict]:
    cases: list[dict] = []
    case: dict | None = None
    for lineno, line in enumerate(DATA.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word == "case":
            case = {"name": rest, "prefixes": None, "rules": [], "tables": [0],
                    "extra": [], "flows": []}
            cases.append(case)
            continue
        assert case is not None, f"{DATA.name}:{lineno}: {word} before any case"
        if word == "source":
            case["source"] = rest
        elif word == "prefixes":
            case["prefixes"] = () if rest == "none" else tuple(rest.split(","))
        elif word == "rule":
            case["rules"].append(rest)
        elif word == "tables":
            case["tables"] = [int(t) for t in rest.split(",")]
        elif word == "extra":
            case["extra"] = rest.split(",")
        elif word == "flow":
            case["flows"].append({"flow": rest, "lineno": lineno})
        elif word == "megaflow":
            case["flows"][-1]["megaflow"] = rest
        elif word == "result":
            case["flows"][-1]["result"] = None if rest == "none" else int(rest)
        else:
            raise AssertionError(f"{DATA.name}:{lineno}: unknown directive {word!r}")
    return cases


CASES = _load_cases()


def _match(text: str) -> Match:
    return parse_flow(text + " actions=drop").match


def _xlate_wc(flow: OfFlow) -> FlowWildcards:
    """What translation un-wildcards before any lookup (xlate_wc_init)."""
    wc = FlowWildcards()
    wc.unwildcard("in_port")
    wc.unwildcard("dl_type")
    if flow.dl_type in (0x0800, 0x86DD):
        wc.unwildcard("nw_frag", 3)
    return wc


def _tables(case: dict) -> dict[int, Classifier]:
    tables: dict[int, Classifier] = {}
    for text in case["rules"]:
        if "action" not in text:
            text += " actions=drop"
        fm = parse_flow(text)
        table = fm.table or 0
        if table not in tables:
            tables[table] = (Classifier() if case["prefixes"] is None
                             else Classifier(case["prefixes"]))
        tables[table].insert(ClsRule(fm.match, fm.priority, text))
    return tables


@pytest.mark.parametrize(
    ("case", "item"),
    [(c, f) for c in CASES for f in c["flows"]],
    ids=[f"{c['name']}:{f['lineno']}" for c in CASES for f in c["flows"]],
)
def test_ovs_testsuite_megaflows(case: dict, item: dict) -> None:
    tables = _tables(case)
    flow = OfFlow.from_match(_match(item["flow"]))
    wc = _xlate_wc(flow)
    for member in case["extra"]:
        wc.unwildcard(member)
    rule = None
    for table in case["tables"]:
        rule = tables[table].lookup(flow, wc)
    assert (rule.priority if rule else None) == item["result"]
    assert wc.to_match(flow) == _match(item["megaflow"]), (
        f"got {wc.to_match(flow)!r}, OVS installs {item['megaflow']}")


def test_case_file_covers_the_ovs_tests() -> None:
    sources = {c["source"] for c in CASES}
    assert len(sources) >= 7
    assert sum(len(c["flows"]) for c in CASES) >= 17


# --------------------------------------------------------------------------------------
# Hand-written cases of classifier.c's wildcard tracking


def _cls(*rules: str, prefixes=("ip_dst", "ip_src")) -> Classifier:
    cls = Classifier(prefixes)
    for text in rules:
        fm = parse_flow(text + " actions=drop")
        cls.insert(ClsRule(fm.match, fm.priority, text))
    return cls


def _flow(text: str) -> OfFlow:
    return OfFlow.from_match(_match(text))


def _lookup(cls: Classifier, text: str) -> tuple[str | None, str]:
    flow = _flow(text)
    wc = FlowWildcards()
    rule = cls.lookup(flow, wc)
    return (rule.payload if rule else None), repr(wc.to_match(flow))


def test_l2_stage_miss_unwildcards_only_metadata_and_l2() -> None:
    # The L2 stage (dl_src) finds no rule: the L3 and L4 fields of the mask
    # (nw_dst, nw_proto, tp_dst) stay wildcarded.
    cls = _cls("priority=5,in_port=1,dl_src=00:00:00:00:00:01,tcp,nw_dst=10.0.0.1,tp_dst=80")
    rule, mega = _lookup(cls, "in_port=1,dl_src=00:00:00:00:00:02,tcp,nw_dst=10.0.0.1,tp_dst=80")
    assert rule is None
    assert mega == "Match('ip,in_port=1,dl_src=00:00:00:00:00:02')"


def test_metadata_stage_miss_unwildcards_only_metadata() -> None:
    cls = _cls("priority=5,reg0=7,dl_dst=00:00:00:00:00:01")
    rule, mega = _lookup(cls, "reg0=8,dl_dst=00:00:00:00:00:01")
    assert rule is None
    assert mega == "Match('reg0=0x8')"


def test_priority_early_exit_skips_lower_subtables() -> None:
    cls = _cls("priority=100,dl_src=00:00:00:00:00:01", "priority=50,ip,nw_dst=10.0.0.1",
               "priority=100,dl_dst=00:00:00:00:00:09")
    rule, mega = _lookup(cls, "dl_src=00:00:00:00:00:01,ip,nw_dst=10.0.0.1")
    assert rule == "priority=100,dl_src=00:00:00:00:00:01"
    # neither the other priority-100 subtable (dl_dst: it cannot beat an equal
    # priority) nor the priority-50 one (nw_dst) is searched
    assert mega == "Match('dl_src=00:00:00:00:00:01')"
    # a flow missing the first subtable searches the next one, down to priority 50
    rule, mega = _lookup(cls, "dl_src=00:00:00:00:00:02,ip,nw_dst=10.0.0.1")
    assert rule == "priority=50,ip,nw_dst=10.0.0.1"
    assert mega == ("Match('ip,dl_src=00:00:00:00:00:02,dl_dst=00:00:00:00:00:00,"
                    "nw_dst=10.0.0.1')")


def test_trie_unwildcards_only_the_needed_prefix_bits() -> None:
    cls = _cls("priority=10,ip,nw_dst=10.0.0.0/8", "priority=20,ip,nw_dst=10.1.0.0/16")
    # 11.x differs from 10.x at bit 7: 8 bits prove no rule can match
    rule, mega = _lookup(cls, "ip,nw_dst=11.2.3.4")
    assert rule is None
    assert mega == "Match('ip,nw_dst=11.0.0.0/8')"
    # the /16 subtable is ruled out by 15 bits (10.2 vs 10.1), then the /8 matches
    rule, mega = _lookup(cls, "ip,nw_dst=10.2.3.4")
    assert rule == "priority=10,ip,nw_dst=10.0.0.0/8"
    assert mega == "Match('ip,nw_dst=10.2.0.0/15')"


def test_without_tries_the_stage_unwildcards_the_whole_field() -> None:
    cls = _cls("priority=10,ip,nw_dst=10.0.0.0/8", "priority=20,ip,nw_dst=10.1.0.0/16",
               prefixes=())
    rule, mega = _lookup(cls, "ip,nw_dst=10.2.3.4")
    assert rule == "priority=10,ip,nw_dst=10.0.0.0/8"
    assert mega == "Match('ip,nw_dst=10.2.0.0/16')"


def test_trie_not_used_when_prerequisite_fails() -> None:
    # ARP's TPA shares nw_dst, but the ip_dst trie only applies to IPv4
    cls = _cls("priority=10,arp,arp_tpa=10.0.0.1")
    rule, mega = _lookup(cls, "arp,arp_tpa=10.0.0.2")
    assert rule is None
    assert mega == "Match('arp,arp_tpa=10.0.0.2')"


def test_ports_trie_on_final_stage_miss() -> None:
    cls = _cls("priority=10,tcp,tp_dst=80", "priority=10,tcp,tp_dst=443")
    rule, mega = _lookup(cls, "tcp,tp_dst=81")
    assert rule is None
    assert mega == "Match('tcp,tp_dst=81')"
    rule, mega = _lookup(cls, "tcp,tp_dst=1024")
    # 1024 = 0x400 shares no prefix beyond bit 5 with 80 or 443
    assert mega == "Match('tcp,tp_dst=0x400/0xfc00')"


def test_same_match_other_priority_and_replace() -> None:
    cls = Classifier()
    m = _match("ip,nw_src=1.2.3.4")
    low, high = ClsRule(m, 10, "low"), ClsRule(m, 20, "high")
    cls.insert(low)
    cls.insert(high)
    flow = _flow("ip,nw_src=1.2.3.4")
    assert cls.lookup(flow).payload == "high"
    new = ClsRule(m.copy(), 20, "new")
    assert cls.replace(new) is high
    assert cls.lookup(flow, FlowWildcards()).payload == "new"
    with pytest.raises(OfprotoError, match="already has a rule"):
        cls.insert(ClsRule(m.copy(), 10, "dup"))
    assert cls.find_exact(m, 10) is low
    assert cls.remove(new) and not cls.remove(new)
    assert cls.lookup(flow).payload == "low"
    assert cls.remove(low) and len(cls) == 0 and cls.subtables() == []
    assert cls.lookup(flow, FlowWildcards()) is None


def test_equal_priority_overlap_goes_to_first_subtable() -> None:
    # OpenFlow leaves this undefined; OVS returns the rule of the subtable
    # first in its pvector (created first, here).
    cls = _cls("priority=10,dl_src=00:00:00:00:00:01", "priority=10,dl_dst=00:00:00:00:00:02")
    rule, _ = _lookup(cls, "dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02")
    assert rule == "priority=10,dl_src=00:00:00:00:00:01"


def test_bad_prefix_configuration() -> None:
    with pytest.raises(OfprotoError, match="at most 3"):
        Classifier(("ip_dst", "ip_src", "tun_dst", "tun_src"))
    with pytest.raises(OfprotoError, match="cannot be used for prefix lookup"):
        Classifier(("ipv6_label",))
    with pytest.raises(OfprotoError, match="twice"):
        Classifier(("nw_dst", "ip_dst"))


def test_prefix_fields_can_change_with_rules_present() -> None:
    cls = _cls("priority=10,ip,nw_dst=10.0.0.0/8", "priority=20,ip,nw_dst=10.1.0.0/16",
               prefixes=())
    assert _lookup(cls, "ip,nw_dst=11.2.3.4")[1] == "Match('ip,nw_dst=11.2.0.0/16')"
    cls.set_prefix_fields(("ip_dst",))
    assert _lookup(cls, "ip,nw_dst=11.2.3.4")[1] == "Match('ip,nw_dst=11.0.0.0/8')"


@pytest.mark.parametrize(("prefixes", "value", "expected"), [
    ([], 0x0A000000, (0, 0)),
    ([(0x0A000000, 8)], 0x0B000000, (8, 0)),              # differs at bit 7
    ([(0x0A000000, 8)], 0x0A010000, (8, 1 << 8)),         # ends on a leaf
    ([(0x0A000000, 8), (0x0A010000, 16)], 0x0A020000, (15, 1 << 8)),
    ([(0x0A000000, 8), (0x0A800000, 9)], 0x0A000000, (9, 1 << 8)),  # other branch exists
    ([(0x0A000001, 32)], 0x0A000001, (32, 1 << 32)),
    ([(0x80000000, 1)], 0x00000000, (1, 0)),
])
def test_prefix_trie_lookup(prefixes, value, expected) -> None:
    trie = PrefixTrie(32)
    for v, n in prefixes:
        trie.insert(v, n)
    assert trie.lookup(value) == expected
    assert fastpath._native.ctrie_lookup(trie, value) == expected  # the core's C copy
    for v, n in prefixes:
        trie.remove(v, n)
    assert trie.lookup(value) == (0, 0)
    assert fastpath._native.ctrie_lookup(trie, value) == (0, 0)


# --------------------------------------------------------------------------------------
# OfFlow


def test_of_flow_from_flow_key() -> None:
    frame = bytes.fromhex(
        "00000000000200000000000181000064" "0800"  # dst, src, 802.1Q vid 100, IPv4
        "45000028000000004006" "0000" "0a000001" "0a000002"
        "0050" "1f90" "00000000" "00000000" "5012" "0000" "0000" "0000")
    key = extract(frame, 5, skb_mark=7)
    flow = OfFlow.from_flow_key(key, {5: 2})
    assert (flow.in_port, flow.pkt_mark, flow.dl_type) == (2, 7, 0x0800)
    assert (flow.dl_src, flow.dl_dst) == (1, 2)
    assert flow.vlan_tci == 0x1000 | 100
    assert (flow.nw_src, flow.nw_dst, flow.nw_proto, flow.nw_ttl) == (0x0A000001, 0x0A000002,
                                                                      6, 64)
    assert (flow.tp_src, flow.tp_dst, flow.tcp_flags) == (80, 8080, 0x012)
    with pytest.raises(OfprotoError, match="known odp_ports: 1"):
        OfFlow.from_flow_key(FlowKey(key.raw), {1: 1})
    assert OfFlow.from_flow_key(key, lambda p: p + 1).in_port == 6


def test_of_flow_checks_members() -> None:
    with pytest.raises(OfprotoError, match="no member"):
        OfFlow(nw_bogus=1)
    with pytest.raises(OfprotoError, match="out of range"):
        OfFlow(in_port=1 << 16)
    f = OfFlow(in_port=3)
    g = f.copy()
    g.set("in_port", 4)
    assert f.in_port == 3 and f != g


# --------------------------------------------------------------------------------------
# Properties on random rule sets

# a small universe so random rules and flows overlap often
_VALUES = {
    "in_port": [1, 2, 3],
    "reg0": [0, 1, 0x80000001],
    "dl_src": [1, 2, 0x0A0000000001],
    "dl_type": [0x0800, 0x86DD, 0x0806],
    "vlan_tci": [0, 0x1064, 0x3065],
    "nw_src": [0x0A000001, 0x0A000102, 0xC0A80001, 0x0A800000],
    "nw_dst": [0x0A000001, 0x0A0001FF, 0xC0A80101, 0x0B000000],
    "ipv6_dst": [1 << 120, (1 << 120) | 5, 0xFE80 << 112],
    "nw_proto": [6, 17, 1],
    "nw_tos": [0, 0x10],
    "tp_src": [80, 81, 1024, 0],
    "tp_dst": [80, 443, 8080, 22],
    "tcp_flags": [0x002, 0x010],
}
_PREFIX_MEMBERS = {"nw_src": 32, "nw_dst": 32, "ipv6_dst": 128}


def _random_rule(rng: random.Random, priority_pool: list[int]) -> ClsRule:
    match = Match()
    for member in rng.sample(sorted(_VALUES), rng.randint(0, 4)):
        width = MEMBERS[member]
        value = rng.choice(_VALUES[member])
        if member in _PREFIX_MEMBERS and rng.random() < 0.7:
            n = rng.choice([1, 7, 8, 16, 23, 24, 31, width])
            mask = ((1 << n) - 1) << (width - n)
        elif member in ("tp_src", "tp_dst") and rng.random() < 0.5:
            mask = rng.choice([0xFFF0, 0xFF00, 0x00FF, 0xFFFF])
        elif rng.random() < 0.15:
            mask = rng.getrandbits(width)
        else:
            mask = (1 << width) - 1
        match.set_member(member, value & mask, mask)
    return ClsRule(match, rng.choice(priority_pool), None)


def _random_flow(rng: random.Random, rules: list[ClsRule]) -> OfFlow:
    flow = OfFlow()
    for member, values in _VALUES.items():
        flow.set(member, rng.choice(values))
    if rules and rng.random() < 0.6:  # start from a rule's values, so it matches often
        for member, (value, mask) in rng.choice(rules).match.members().items():
            flow.set(member, (getattr(flow, member) & ~mask) | value)
    return flow


def _build(seed: int) -> tuple[random.Random, Classifier, list[ClsRule]]:
    rng = random.Random(seed)
    prefixes = rng.choice([("ip_dst", "ip_src"), (), ("ipv6_dst", "ip_src", "ip_dst")])
    cls = Classifier(prefixes)
    pool = rng.sample(range(0, 200), rng.randint(1, 8))
    rules: list[ClsRule] = []
    for _ in range(rng.randint(0, 40)):
        rule = _random_rule(rng, pool)
        if cls.find_exact(rule.match, rule.priority) is None:
            cls.insert(rule)
            rules.append(rule)
    for rule in rng.sample(rules, len(rules) // 4):  # removals exercise the tries too
        assert cls.remove(rule)
        rules.remove(rule)
    return rng, cls, rules


def _brute_force(rules: list[ClsRule], flow: OfFlow) -> list[ClsRule]:
    hits = [r for r in rules if r.matches(flow)]
    best = max((r.priority for r in hits), default=None)
    return [r for r in hits if r.priority == best]


_SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(st.integers(0, 2**32 - 1))
def test_lookup_is_the_highest_priority_match(seed: int) -> None:
    rng, cls, rules = _build(seed)
    assert len(cls) == len(rules)
    for _ in range(20):
        flow = _random_flow(rng, rules)
        best = _brute_force(rules, flow)
        got = cls.lookup(flow, FlowWildcards())
        assert got is cls.lookup(flow)
        if best:
            assert got in best
        else:
            assert got is None


@_SETTINGS
@given(st.integers(0, 2**32 - 1))
def test_unwildcarded_bits_decide_the_result(seed: int) -> None:
    rng, cls, rules = _build(seed)
    for _ in range(10):
        flow = _random_flow(rng, rules)
        wc = FlowWildcards()
        wc.unwildcard("dl_type")  # xlate always does; the tries rely on it
        got = cls.lookup(flow, wc)
        for _ in range(5):
            other = flow.copy()
            for member in STAGE_OF_MEMBER:
                mask = wc.get(member)
                noise = rng.choice(_VALUES.get(member, [0])) if rng.random() < 0.5 \
                    else rng.getrandbits(MEMBERS[member])
                other.set(member, (getattr(flow, member) & mask) | (noise & ~mask
                                                                    & ((1 << MEMBERS[member]) - 1)))
            assert cls.lookup(other) is got, (flow, other, wc)
            wc2 = FlowWildcards()
            wc2.unwildcard("dl_type")
            cls.lookup(other, wc2)


@_SETTINGS
@given(st.integers(0, 2**32 - 1))
def test_compiled_core_lookup_is_the_classifiers(seed: int) -> None:
    # native/_xlate.pyx looks up on flow words over the classifier's word
    # indices: the same rule and the same wildcards as the Python lookup, also
    # after removals and with 128-bit members and their tries
    rng, cls, rules = _build(seed)
    for _ in range(20):
        flow = _random_flow(rng, rules)
        wc = FlowWildcards()
        if rng.random() < 0.5:
            wc.unwildcard("dl_type")
        start = dict(wc.masks)
        want = cls.lookup(flow, wc)
        got, masks = fastpath._native.lookup_flow(cls, flow.__dict__, start)
        assert got is want
        assert masks == {m: v for m, v in wc.masks.items() if v}


@_SETTINGS
@given(st.integers(0, 2**32 - 1))
def test_compiled_core_trie_copy_is_the_trie(seed: int) -> None:
    # the core's C copy of a trie answers as PrefixTrie.lookup, and follows its
    # inserts and removals
    rng = random.Random(seed)
    width = rng.choice([8, 16, 32])
    trie = PrefixTrie(width)
    stored: list[tuple[int, int]] = []
    for _ in range(rng.randint(1, 60)):
        if stored and rng.random() < 0.3:
            trie.remove(*stored.pop(rng.randrange(len(stored))))
        else:
            n = rng.randint(1, width)
            value = rng.getrandbits(n) << (width - n) if rng.random() < 0.5 else \
                (rng.choice(stored)[0] if stored else 0) ^ (1 << rng.randrange(width))
            value &= ((1 << n) - 1) << (width - n)
            trie.insert(value, n)
            stored.append((value, n))
        for _ in range(3):
            probe = rng.getrandbits(width) if rng.random() < 0.5 or not stored else \
                rng.choice(stored)[0] ^ rng.getrandbits(width // 2)
            assert fastpath._native.ctrie_lookup(trie, probe) == trie.lookup(probe)
