"""The OpenFlow flow classifier with OVS's wildcard tracking (one per flow table).

Mirrors Open vSwitch 3.1's ``lib/classifier.c`` and ``lib/classifier-private.h``:

* Rules are grouped in **subtables**, one per distinct mask. A subtable's rules
  are indexed by their masked values; rules with the same mask and values but
  different priorities form a list, highest priority first
  (``classifier_replace``). A rule with the same match *and* priority as an
  existing one replaces it.
* :meth:`Classifier.lookup` visits the subtables in descending order of their
  highest rule priority (OVS keeps them in a ``pvector``) and stops once the
  best match found so far has a priority >= the next subtable's maximum
  (``classifier_lookup__``). Subtables with equal maxima are visited in their
  ``pvector`` order, which this module tracks as OVS does (insertions append,
  removals move the last entry into the hole, then a stable sort). Among
  overlapping rules of equal priority the one in the subtable visited first
  wins; OpenFlow leaves that case undefined, OVS is deterministic.
* **Wildcard tracking** (``find_match_wc``): a :class:`FlowWildcards` collects
  the bits the lookup looked at, which become the megaflow mask. Each subtable
  is searched in stages (``flow_segment_u64s``: metadata, L2, L3, L4 -- the
  ``struct flow`` ranges ending at ``dl_dst``, ``nw_src`` and ``nd_target``),
  each with an index of the rules' masked values so far; a stage that matches
  no rule ends the search and only the mask bits of the stages already hashed
  are un-wildcarded. A miss in the last stage un-wildcards the whole mask,
  except that when the subtable matches on transport ports the **ports trie**
  picks the port bits that prove the miss (with the fix OVS released as
  CVE-2023-5366, which Debian's 3.1.0 carries). A hit un-wildcards the
  subtable's whole mask.
* **Prefix tries** (``trie_lookup``, ``check_tries``): for each configured
  prefix field (``prefixes=ip_dst,ip_src`` by default, ofproto.c
  ``default_prefix_fields``) a binary trie of the CIDR prefixes of every rule
  whose subtable masks that field with a prefix. Before hashing the stage that
  holds the field, the trie decides whether any rule of the subtable's prefix
  length can match; if none can, only the prefix bits the trie needed
  (``maskbits``) are un-wildcarded and the subtable is skipped.

Hash collisions in OVS's stage indices (which would make it search a stage
further than needed) are not modelled: the indices here are exact. Conjunctive
matches and rule versions are not modelled either.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from operator import attrgetter
from typing import Any

from ovsnet.errors import OfprotoError
from ovsnet.ofproto.of_flow import OF_MEMBERS, WORD_OF, OfFlow
from ovsnet.ofproto.ofp_fields import MEMBERS, Match

__all__ = [
    "DEFAULT_PREFIXES",
    "PREFIX_FIELDS",
    "STAGE_OF_MEMBER",
    "Classifier",
    "ClsRule",
    "FlowWildcards",
    "PrefixTrie",
]

# --------------------------------------------------------------------------------------
# Stages (lib/flow.h FLOW_SEGMENT_*_ENDS_AT, ofproto.c flow_segment_u64s)

#: the lookup stage of each matchable ``struct flow`` member: 0 metadata
#: (before ``dl_dst``), 1 L2 (before ``nw_src``), 2 L3 (before ``nd_target``), 3 L4
STAGE_OF_MEMBER: dict[str, int] = {
    **{m: 0 for m in ("tun_id", "tun_src", "tun_dst", "metadata", "skb_priority",
                      "pkt_mark", "dp_hash", "in_port", "recirc_id", "conj_id",
                      *(f"reg{i}" for i in range(16)))},
    **{m: 1 for m in ("dl_dst", "dl_src", "dl_type", "vlan_tci", "mpls_lse")},
    **{m: 2 for m in ("nw_src", "nw_dst", "ipv6_src", "ipv6_dst", "ipv6_label", "nw_frag",
                      "nw_tos", "nw_ttl", "nw_proto")},
    **{m: 3 for m in ("nd_target", "arp_sha", "arp_tha", "tcp_flags", "tp_src", "tp_dst")},
}
assert set(STAGE_OF_MEMBER) == set(MEMBERS)

# struct flow member order, so subtable masks and printed wildcards are canonical
_ORDER = {m: i for i, m in enumerate(sorted(MEMBERS, key=lambda m: (STAGE_OF_MEMBER[m],
                                                                    list(MEMBERS).index(m))))}

# --------------------------------------------------------------------------------------
# Prefix fields (classifier_set_prefix_fields; bridge.c accepts fields with a
# flow offset that are maskable; these are the ones the Match model has)

ETH_TYPE_IP, ETH_TYPE_IPV6 = 0x0800, 0x86DD

#: prefix-lookup field name -> (flow member, width, required dl_type or None)
PREFIX_FIELDS: dict[str, tuple[str, int, int | None]] = {
    "ip_dst": ("nw_dst", 32, ETH_TYPE_IP), "nw_dst": ("nw_dst", 32, ETH_TYPE_IP),
    "ip_src": ("nw_src", 32, ETH_TYPE_IP), "nw_src": ("nw_src", 32, ETH_TYPE_IP),
    "ipv6_dst": ("ipv6_dst", 128, ETH_TYPE_IPV6), "ipv6_src": ("ipv6_src", 128, ETH_TYPE_IPV6),
    "tun_dst": ("tun_dst", 32, None), "tun_src": ("tun_src", 32, None),
}
#: OVS 3.1's default ``prefixes`` of every flow table
DEFAULT_PREFIXES = ("ip_dst", "ip_src")
#: CLS_MAX_TRIES
MAX_TRIES = 3

_native: Any
try:
    import ovsnet._classifier as _native
except ImportError:  # not built: the pure-Python lookup only
    _native = None

#: classifier implementations available here: ``"python"`` (the reference) always,
#: ``"cython"`` (the compiled lookup of native/_classifier.pyx) when built
IMPLEMENTATIONS: tuple[str, ...] = ("python",) if _native is None else ("python", "cython")
#: the implementation new classifiers use unless told otherwise
DEFAULT_IMPLEMENTATION = IMPLEMENTATIONS[-1]


def _prefix_len(mask: int, width: int) -> int:
    """The CIDR length of ``mask``, or 0 if it is not a prefix (``minimask_get_prefix_len``)."""
    if not mask:
        return 0
    inv = ~mask & ((1 << width) - 1)
    if inv & (inv + 1):
        return 0
    return width - inv.bit_length()


def _prefix_mask(n: int, width: int) -> int:
    return ((1 << n) - 1) << (width - n) if n else 0


# --------------------------------------------------------------------------------------
# Wildcards (struct flow_wildcards)

#: every bit of each member (the matchable ones and those only translation reads)
ALL_ONES = {m: (1 << w) - 1 for m, w in OF_MEMBERS.items()}


class FlowWildcards:
    """A mask per ``struct flow`` member: the bits a lookup (or translation) examined.

    ``wc.masks`` maps member names to integer masks (absent = 0). It starts
    all-wildcarded (``flow_wildcards_init_catchall``).
    """

    __slots__ = ("masks",)

    def __init__(self, masks: dict[str, int] | None = None):
        self.masks: dict[str, int] = dict(masks) if masks else {}

    def get(self, member: str) -> int:
        return self.masks.get(member, 0)

    def unwildcard(self, member: str, mask: int | None = None) -> None:
        """Mark ``mask`` (default: all) bits of ``member`` as examined."""
        if mask is None:
            mask = ALL_ONES[member]
        if mask:
            masks = self.masks
            masks[member] = masks.get(member, 0) | mask

    def fold(self, items: Iterable[tuple[str, int]]) -> None:
        """OR ``(member, mask)`` pairs in (``flow_wildcards_fold_minimask``)."""
        masks = self.masks
        for member, mask in items:
            masks[member] = masks.get(member, 0) | mask

    def copy(self) -> FlowWildcards:
        return FlowWildcards(self.masks)

    def to_match(self, flow: OfFlow) -> Match:
        """The megaflow: ``flow``'s values under these masks, as a :class:`Match`."""
        match = Match()
        for member in sorted(self.masks, key=_ORDER.__getitem__):
            mask = self.masks[member]
            if mask:
                match.set_member(member, getattr(flow, member) & mask, mask)
        return match

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FlowWildcards):
            return NotImplemented
        return {k: v for k, v in self.masks.items() if v} == \
            {k: v for k, v in other.masks.items() if v}

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(f"{m}={self.masks[m]:#x}" for m in
                          sorted(self.masks, key=_ORDER.__getitem__) if self.masks[m])
        return f"FlowWildcards({shown})"


# --------------------------------------------------------------------------------------
# Prefix tries (classifier.c trie_*)


class PrefixTrie:
    """The set of prefixes OVS keeps in a ``struct cls_trie`` (or a ports trie).

    OVS stores them in a path-compressed binary trie; :meth:`lookup` returns
    exactly what its ``trie_lookup_value`` returns for that trie shape, computed
    from the prefix sets: ``covered[d]`` counts the ``d``-bit prefixes of every
    stored prefix at least ``d`` bits long, ``stored[l]`` the stored prefixes of
    length ``l``. Prefixes are counted, so equal prefixes from different rules
    are inserted and removed independently (``n_rules`` of a trie node).
    """

    __slots__ = ("n_bits", "_covered", "_stored", "_n", "version")

    def __init__(self, n_bits: int):
        self.n_bits = n_bits
        self._covered: list[dict[int, int]] = [{} for _ in range(n_bits + 1)]
        self._stored: dict[int, dict[int, int]] = {}
        self._n = 0
        #: bumped by every insert and removal (the compiled core rebuilds its
        #: copy of the trie when it changes)
        self.version = 0

    def __len__(self) -> int:
        return self._n

    def insert(self, value: int, plen: int) -> None:
        """Add the ``plen``-bit prefix of ``value`` (``trie_insert_prefix``); plen > 0."""
        n = self.n_bits
        for d in range(plen + 1):
            cov = self._covered[d]
            key = value >> (n - d)
            cov[key] = cov.get(key, 0) + 1
        stored = self._stored.setdefault(plen, {})
        key = value >> (n - plen)
        stored[key] = stored.get(key, 0) + 1
        self._n += 1
        self.version += 1

    def remove(self, value: int, plen: int) -> None:
        """Remove one copy of the prefix (``trie_remove_prefix``)."""
        n = self.n_bits
        key = value >> (n - plen)
        stored = self._stored.get(plen)
        if not stored or key not in stored:
            raise OfprotoError(f"prefix {value:#x}/{plen} is not in the trie")
        _dec(stored, key)
        if not stored:
            del self._stored[plen]
        for d in range(plen + 1):
            _dec(self._covered[d], value >> (n - d))
        self._n -= 1
        self.version += 1

    def lookup(self, value: int) -> tuple[int, int]:
        """``trie_lookup_value``: ``(maskbits, plens)`` for ``value``.

        ``plens`` has bit ``l`` set for every stored prefix of length ``l`` that
        ``value`` starts with. ``maskbits`` is how many leading bits of
        ``value`` prove that no other stored prefix can match: the common prefix
        with the trie plus the first differing bit, except when the walk ends on a
        leaf exactly, or ``n_bits`` on a full-length match, 0 for an empty trie.
        """
        n = self.n_bits
        plens = 0
        for plen, stored in self._stored.items():
            if (value >> (n - plen)) in stored:
                plens |= 1 << plen
        if not self._n:
            return 0, plens
        covered = self._covered
        lo, hi = 0, n  # covered[lo] holds value's prefix; find the largest such depth
        while lo < hi:
            mid = (lo + hi + 1) >> 1
            if (value >> (n - mid)) in covered[mid]:
                lo = mid
            else:
                hi = mid - 1
        depth = lo
        if depth >= n:
            return n, plens
        here = value >> (n - depth)
        stored = self._stored.get(depth)
        if stored is not None and here in stored:
            other = (value >> (n - depth - 1)) ^ 1
            if other not in covered[depth + 1]:
                return depth, plens  # ended on a leaf
        return depth + 1, plens


def _dec(d: dict[int, int], key: int) -> None:
    c = d[key] - 1
    if c:
        d[key] = c
    else:
        del d[key]


# --------------------------------------------------------------------------------------
# Rules and subtables


class ClsRule:
    """A classifier rule (``struct cls_rule``): a match, a priority and a payload.

    The payload is whatever the owner keeps with the rule (the OpenFlow table
    keeps its flow's actions there). A rule belongs to at most one classifier.
    """

    __slots__ = ("match", "priority", "payload", "_items", "_subtable")

    def __init__(self, match: Match, priority: int, payload: Any = None):
        if not isinstance(priority, int) or not 0 <= priority <= 0xFFFF:
            raise OfprotoError(f"rule priority {priority!r} is out of range: must be 0..65535")
        self.match = match
        self.priority = priority
        self.payload = payload
        self._items = tuple(sorted(match.members().items(), key=lambda kv: _ORDER[kv[0]]))
        self._subtable: _Subtable | None = None

    def mask_key(self) -> tuple[tuple[str, int], ...]:
        return tuple((m, vm[1]) for m, vm in self._items)

    def matches(self, flow: OfFlow) -> bool:
        """Whether ``flow`` matches this rule (no wildcard tracking)."""
        return all(getattr(flow, m) & mask == value for m, (value, mask) in self._items)

    def __repr__(self) -> str:
        return f"ClsRule(priority={self.priority}, {self.match!r})"


class _Subtable:
    """``struct cls_subtable``: the rules sharing one mask, with staged indices."""

    __slots__ = ("mask", "stage_items", "stage_members", "stage_masks", "stage_get", "stage_no",
                 "n_indices", "indices", "rules", "word_indices", "word_rules", "trie_plen", "ports_mask",
                 "ports_mask_len", "ports_trie", "max_priority", "n_rules", "fast")

    def __init__(self, mask: tuple[tuple[str, int], ...], tries: list[_Trie]):
        self.mask = mask
        # index stages: one per non-empty segment, the last one doubling as the
        # final stage when the L4 segment is empty (insert_subtable)
        segs: list[list[tuple[str, int]]] = [[], [], [], []]
        for member, m in mask:
            segs[STAGE_OF_MEMBER[member]].append((member, m))
        stages = [(i, segs[i]) for i in range(3) if segs[i]]
        if segs[3] or not stages:
            stages.append((3, segs[3]))
        self.n_indices = len(stages) - 1
        self.stage_no = tuple(i for i, _ in stages)
        self.stage_items = tuple(tuple(s) for _, s in stages)
        self.stage_members = tuple(tuple(m for m, _ in s) for _, s in stages)
        self.stage_masks = tuple(tuple(mk for _, mk in s) for _, s in stages)
        self.stage_get = tuple(_getter(ms) for ms in self.stage_members)
        self.indices: list[dict[tuple[int, ...], int]] = [{} for _ in range(self.n_indices)]
        self.rules: dict[tuple[int, ...], list[ClsRule]] = {}
        # The same indices and rule lists keyed by the masked values as the
        # compiled translation core packs them (:func:`_pack_words`): each
        # member's value as 64-bit words in host order, high word first.
        self.word_indices: list[dict[bytes, int]] = [{} for _ in range(self.n_indices)]
        self.word_rules: dict[bytes, list[ClsRule]] = {}
        self.trie_plen: list[int] = []
        self.set_tries(tries)
        md = dict(mask)
        self.ports_mask = (md.get("tp_src", 0) << 16) | md.get("tp_dst", 0)
        pm = self.ports_mask
        # 32 - ctz32(ports mask): the length up to the last port bit matched
        self.ports_mask_len = 32 - ((pm & -pm).bit_length() - 1) if pm else 0
        self.ports_trie = PrefixTrie(32)
        self.max_priority = -1
        self.n_rules = 0
        self.refresh_fast()

    def set_tries(self, tries: list[_Trie]) -> None:
        md = dict(self.mask)
        self.trie_plen = [_prefix_len(md.get(t.member, 0), t.width) for t in tries]
        if hasattr(self, "ports_trie"):
            self.refresh_fast()

    def refresh_fast(self) -> None:
        """The tuple the compiled lookup reads (see native/_classifier.pyx)."""
        self.fast = (self.n_indices, self.stage_no, self.stage_items, self.indices,
                     self.rules, tuple(self.trie_plen), self.ports_mask, self.ports_mask_len,
                     self.ports_trie, self.mask,
                     # the same items by word of the compiled translation core's
                     # flow (native/_xlate.pyx): (word, mask, 128 bits wide)
                     tuple(_word_items(items) for items in self.stage_items),
                     _word_items(self.mask), self.word_indices, self.word_rules)

    def stage_values(self, i: int, flow: Any) -> tuple[int, ...]:
        vals = self.stage_get[i](flow)
        return tuple(v & m for v, m in zip(vals, self.stage_masks[i], strict=True))

    def rule_stage_words(self, values: list[tuple[int, ...]]) -> list[bytes]:
        """:meth:`rule_stage_values`' tuples packed as the compiled core packs them."""
        members = [m for ms in self.stage_members for m in ms]  # the values' order
        return [_pack_words(acc, members) for acc in values]

    def rule_stage_values(self, rule: ClsRule) -> list[tuple[int, ...]]:
        """The rule's masked values, cumulatively per stage (what OVS hashes)."""
        md = {m: v for m, (v, _mk) in rule._items}
        out: list[tuple[int, ...]] = []
        acc: tuple[int, ...] = ()
        for members in self.stage_members:
            acc = acc + tuple(md[m] for m in members)
            out.append(acc)
        return out


def _word_items(items: Iterable[tuple[str, int]]) -> tuple[tuple[int, int, bool], ...]:
    return tuple((WORD_OF[m], mask, OF_MEMBERS[m] > 64) for m, mask in items)


def _pack_words(values: tuple[int, ...], members: list[str]) -> bytes:
    """Masked values of the first ``len(values)`` of ``members`` as one 8-byte
    host-order word each, two (high first) for 128-bit members."""
    out = []
    for value, member in zip(values, members, strict=False):
        if OF_MEMBERS[member] > 64:
            out.append((value >> 64).to_bytes(8, sys.byteorder))
            value &= (1 << 64) - 1
        out.append(value.to_bytes(8, sys.byteorder))
    return b"".join(out)


def _getter(members: tuple[str, ...]) -> Any:
    if not members:
        return lambda flow: ()
    if len(members) == 1:
        get1 = attrgetter(members[0])
        return lambda flow: (get1(flow),)
    return attrgetter(*members)


class _Trie:
    """``struct cls_trie``: a prefix field and the trie of the rules' prefixes."""

    __slots__ = ("name", "member", "width", "dl_type", "stage", "trie")

    def __init__(self, name: str):
        self.name = name
        self.member, self.width, self.dl_type = PREFIX_FIELDS[name]
        self.stage = STAGE_OF_MEMBER[self.member]
        self.trie = PrefixTrie(self.width)


# --------------------------------------------------------------------------------------
# The classifier


class Classifier:
    """One OpenFlow table's rules (``struct classifier``).

    ``prefixes`` are the prefix-lookup fields (``Flow_Table:prefixes``; at most
    three of :data:`PREFIX_FIELDS`, default ``ip_dst,ip_src``; ``()`` for none).
    """

    def __init__(self, prefixes: Iterable[str] = DEFAULT_PREFIXES,
                 implementation: str | None = None):
        impl = implementation or DEFAULT_IMPLEMENTATION
        if impl not in IMPLEMENTATIONS:
            raise OfprotoError(f"classifier implementation {impl!r} is not available here: "
                               f"choose from {', '.join(IMPLEMENTATIONS)}")
        self.implementation = impl
        self._subtables: dict[tuple[tuple[str, int], ...], _Subtable] = {}
        self._pvector: list[_Subtable] = []
        self._tries: list[_Trie] = []
        self._tries_fast: tuple[tuple[str, int, int | None, int, PrefixTrie, int], ...] = ()
        self._pv_fast: list[tuple] = []
        self._pv_pri: list[int] = []
        self._word_view: tuple[list[tuple], list[int], tuple] = ([], [], ())
        self._n_rules = 0
        self.set_prefix_fields(prefixes)

    # -- configuration ------------------------------------------------------------------

    @property
    def prefix_fields(self) -> tuple[str, ...]:
        return tuple(t.name for t in self._tries)

    def set_prefix_fields(self, prefixes: Iterable[str]) -> None:
        """``classifier_set_prefix_fields``: rebuild the tries for these fields."""
        names = list(prefixes)
        if len(names) > MAX_TRIES:
            raise OfprotoError(f"prefixes: {len(names)} fields given, at most {MAX_TRIES} "
                               f"are allowed")
        seen = set()
        for name in names:
            if name not in PREFIX_FIELDS:
                raise OfprotoError(f"prefixes: {name!r} cannot be used for prefix lookup; "
                                   f"valid: {', '.join(PREFIX_FIELDS)}")
            member = PREFIX_FIELDS[name][0]
            if member in seen:
                raise OfprotoError(f"prefixes: {name!r} is given twice")
            seen.add(member)
        self._tries = [_Trie(n) for n in names]
        self._tries_fast = tuple((t.member, t.width, t.dl_type, t.stage, t.trie,
                                  WORD_OF[t.member]) for t in self._tries)
        for st in self._subtables.values():
            st.set_tries(self._tries)
            for rules in st.rules.values():
                self._trie_update(st, rules[0], +1)
        self._publish()

    # -- contents -----------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n_rules

    def __iter__(self) -> Iterator[ClsRule]:
        for st in self._pvector:
            for rules in st.rules.values():
                yield from rules

    def find_exact(self, match: Match, priority: int) -> ClsRule | None:
        """The rule with exactly this match and priority (``classifier_find_match_exactly``)."""
        probe = ClsRule(match, priority)
        st = self._subtables.get(probe.mask_key())
        if st is None:
            return None
        for rule in st.rules.get(tuple(v for _m, (v, _k) in probe._items), ()):
            if rule.priority == priority:
                return rule
        return None

    def insert(self, rule: ClsRule) -> None:
        """Add ``rule``; an identical rule (match and priority) must not exist."""
        if self.find_exact(rule.match, rule.priority) is not None:
            raise OfprotoError(f"classifier already has a rule with priority "
                               f"{rule.priority} and match {rule.match!r}")
        self.replace(rule)

    def replace(self, rule: ClsRule) -> ClsRule | None:
        """Add ``rule``, displacing and returning a rule with the same match and priority.

        As ``classifier_replace``: a new mask makes a new subtable; a new
        match within a subtable enters the stage indices and the tries; an
        equal match with another priority joins that match's list.
        """
        if rule._subtable is not None:
            raise OfprotoError(f"{rule!r} is already in a classifier")
        key = rule.mask_key()
        st = self._subtables.get(key)
        if st is None:
            st = _Subtable(key, self._tries)
            self._subtables[key] = st
        stage_vals = st.rule_stage_values(rule)
        full = stage_vals[-1]
        rules = st.rules.get(full)
        rule._subtable = st
        if rules is None:
            st.rules[full] = [rule]
            words = st.rule_stage_words(stage_vals)
            st.word_rules[words[-1]] = st.rules[full]  # the same list
            self._trie_update(st, rule, +1)
            if st.ports_mask_len:
                st.ports_trie.insert(self._rule_ports(rule), st.ports_mask_len)
            for i in range(st.n_indices):
                idx = st.indices[i]
                idx[stage_vals[i]] = idx.get(stage_vals[i], 0) + 1
                widx = st.word_indices[i]
                widx[words[i]] = widx.get(words[i], 0) + 1
        else:
            for pos, old in enumerate(rules):
                if old.priority == rule.priority:
                    rules[pos] = rule
                    old._subtable = None
                    return old
                if rule.priority > old.priority:
                    rules.insert(pos, rule)
                    break
            else:
                rules.append(rule)
        st.n_rules += 1
        self._n_rules += 1
        if st.n_rules == 1:
            st.max_priority = rule.priority
            self._pvector.append(st)
        elif rule.priority > st.max_priority:
            st.max_priority = rule.priority
        self._publish()
        return None

    def remove(self, rule: ClsRule) -> bool:
        """Remove ``rule``; False if it is not in this classifier (``classifier_remove``)."""
        st = rule._subtable
        if st is None or self._subtables.get(st.mask) is not st:
            return False
        stage_vals = st.rule_stage_values(rule)
        full = stage_vals[-1]
        rules = st.rules[full]
        rules.remove(rule)
        rule._subtable = None
        if not rules:
            del st.rules[full]
            words = st.rule_stage_words(stage_vals)
            del st.word_rules[words[-1]]
            if st.ports_mask_len:
                st.ports_trie.remove(self._rule_ports(rule), st.ports_mask_len)
            self._trie_update(st, rule, -1)
            for i in range(st.n_indices):
                _dec(st.indices[i], stage_vals[i])
                _dec(st.word_indices[i], words[i])
        st.n_rules -= 1
        self._n_rules -= 1
        if st.n_rules == 0:
            del self._subtables[st.mask]
            pos = self._pvector.index(st)
            last = self._pvector.pop()
            if last is not st:
                self._pvector[pos] = last
        elif rule.priority == st.max_priority:
            st.max_priority = max(r[0].priority for r in st.rules.values())
        self._publish()
        return True

    def _publish(self) -> None:
        # pvector_publish: qsort by descending priority (glibc's merge sort is stable)
        self._pvector.sort(key=lambda s: -s.max_priority)
        self._pv_fast = [st.fast for st in self._pvector]
        self._pv_pri = [st.max_priority for st in self._pvector]
        #: what the compiled translation core reads, in one attribute
        self._word_view = (self._pv_fast, self._pv_pri, self._tries_fast)

    def _trie_update(self, st: _Subtable, rule: ClsRule, delta: int) -> None:
        md = rule.match
        for trie, plen in zip(self._tries, st.trie_plen, strict=True):
            if plen:
                value = md.get(trie.member)[0]
                if delta > 0:
                    trie.trie.insert(value, plen)
                else:
                    trie.trie.remove(value, plen)

    @staticmethod
    def _rule_ports(rule: ClsRule) -> int:
        m = rule.match
        return (m.get("tp_src")[0] << 16) | m.get("tp_dst")[0]

    # -- lookup -------------------------------------------------------------------------

    def lookup(self, flow: OfFlow, wc: FlowWildcards | None = None) -> ClsRule | None:
        """The highest-priority rule matching ``flow`` (``classifier_lookup``).

        With ``wc``, OR into it the bits OVS's lookup un-wildcards for this
        flow, so that every flow agreeing with ``flow`` on ``wc``'s bits gets
        the same answer.
        """
        if self.implementation == "cython":
            return _native.lookup_wc(self._pv_fast, self._pv_pri, self._tries_fast,
                                     flow.__dict__, {} if wc is None else wc.masks)
        if wc is None:
            return self._lookup_nowc(flow)
        tries = self._tries
        trie_ctx: list[tuple[int, int] | None] = [None] * len(tries)
        hard: ClsRule | None = None
        hard_pri = -1
        for st in self._pvector:
            if st.max_priority <= hard_pri:
                break
            match = self._find_match_wc(st, flow, trie_ctx, wc)
            if match is not None and match.priority > hard_pri:
                hard, hard_pri = match, match.priority
        return hard

    def _lookup_nowc(self, flow: OfFlow) -> ClsRule | None:
        hard: ClsRule | None = None
        hard_pri = -1
        for st in self._pvector:
            if st.max_priority <= hard_pri:
                break
            acc: tuple[int, ...] = ()
            for i in range(len(st.stage_members)):
                acc += st.stage_values(i, flow)
            rules = st.rules.get(acc)
            if rules is not None and rules[0].priority > hard_pri:
                hard, hard_pri = rules[0], rules[0].priority
        return hard

    def _check_tries(self, st: _Subtable, stage: int, flow: OfFlow,
                     trie_ctx: list[tuple[int, int] | None], wc: FlowWildcards) -> bool:
        """``check_tries``: True if a trie proves the subtable cannot match.

        Only tries whose field the subtable masks with a prefix, and whose
        field lies in the stage about to be hashed, are consulted.
        """
        for j, trie in enumerate(self._tries):
            plen = st.trie_plen[j]
            if not plen or trie.stage != stage:
                continue
            ctx = trie_ctx[j]
            if ctx is None:
                if trie.dl_type is None or flow.dl_type == trie.dl_type:
                    ctx = trie.trie.lookup(getattr(flow, trie.member))
                else:
                    ctx = (0, -1)  # prerequisites not met: every length, never skip
                trie_ctx[j] = ctx
            maskbits, plens = ctx
            if not (plens >> plen) & 1:
                pm = _prefix_mask(maskbits, trie.width)
                if maskbits <= plen:
                    wc.unwildcard(trie.member, pm)
                    return True
                if wc.get(trie.member) & pm == pm:
                    return True
        return False

    def _find_match_wc(self, st: _Subtable, flow: OfFlow,
                       trie_ctx: list[tuple[int, int] | None],
                       wc: FlowWildcards) -> ClsRule | None:
        """``find_match_wc``: search one subtable stage by stage, tracking wildcards."""
        n = st.n_indices
        acc: tuple[int, ...] = ()
        i = 0
        while i < n:
            if self._tries and self._check_tries(st, st.stage_no[i], flow, trie_ctx, wc):
                return self._no_match(st, i, wc)
            acc += st.stage_values(i, flow)
            if acc not in st.indices[i]:
                return self._no_match(st, i + 1, wc)
            i += 1
        if self._tries and self._check_tries(st, st.stage_no[n], flow, trie_ctx, wc):
            return self._no_match(st, n, wc)
        acc += st.stage_values(n, flow)
        rules = st.rules.get(acc)
        if rules is None and st.ports_mask_len:
            # The final stage had ports and missed: all its mask bits count,
            # but of the ports only those the ports trie needs to tell this
            # flow from every rule's ports (plus what was already there).
            # This is the fixed behaviour of OVS commit "classifier: Fix
            # missing masks on a final stage with ports trie" (CVE-2023-5366,
            # in 3.1.1 and in Debian's 3.1.0-2+deb12u1); 3.1.0 itself left the
            # final stage's other fields (tcp_flags, nd_target ...) wildcarded.
            pm = st.ports_mask
            value = ((flow.tp_src << 16) | flow.tp_dst) & pm
            mbits, _ = st.ports_trie.lookup(value)
            bits = pm & _prefix_mask(mbits, 32)
            src_bits = (bits >> 16) | wc.get("tp_src")
            dst_bits = (bits & 0xFFFF) | wc.get("tp_dst")
            self._no_match(st, n + 1, wc)
            wc.masks["tp_src"] = src_bits
            wc.masks["tp_dst"] = dst_bits
            return None
        wc.fold(st.mask)
        return rules[0] if rules is not None else None

    @staticmethod
    def _no_match(st: _Subtable, n_stages: int, wc: FlowWildcards) -> None:
        """Un-wildcard the mask bits of the first ``n_stages`` stages (``no_match:``)."""
        for i in range(n_stages):
            wc.fold(st.stage_items[i])
        return None

    # -- introspection ------------------------------------------------------------------

    def subtables(self) -> list[tuple[int, tuple[tuple[str, int], ...]]]:
        """``(max_priority, mask)`` of each subtable, in lookup order."""
        return [(st.max_priority, st.mask) for st in self._pvector]
