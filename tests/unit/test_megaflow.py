"""Tests of ovsnet.datapath.megaflow: tuple-space search, mask cache, flow lifetime.

Every test body runs against both implementations through the ``impl``
fixture: the pure-Python ReferenceMegaflowTable and the compiled
``ovsnet._megaflow``. The compiled one is skipped when the extension is not
built, except under ``CI=true``, where a missing extension fails. Hypothesis
runs random operation sequences against both side by side and requires the
same answers, including masks probed and mask order.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ovsnet.datapath import megaflow as MF
from ovsnet.datapath.flow_key import FIELD_BY_NAME, KEY_SIZE, KEY_WORDS, FlowKey
from ovsnet.datapath.odp_attrs import ActionAttr, nla_u32
from ovsnet.datapath.packet import hash_2words
from ovsnet.errors import DatapathError

IN_CI = os.environ.get("CI") == "true"

OUT1 = nla_u32(ActionAttr.OUTPUT, 1)
OUT2 = nla_u32(ActionAttr.OUTPUT, 2)


def _native_or_skip():
    if MF.native is None:
        if IN_CI:
            pytest.fail("ovsnet._megaflow is not built: CI must build the extensions first")
        pytest.skip("ovsnet._megaflow is not built (pip install -e .)")
    return MF.native.MegaflowTable


@pytest.fixture(params=["python", "cython"])
def impl(request):
    """A megaflow table class: the reference or the compiled one."""
    return MF.ReferenceMegaflowTable if request.param == "python" else _native_or_skip()


def key(**fields: int | bytes) -> bytes:
    """A key with the named fields set (ints in the field's byte order), the rest zero."""
    buf = bytearray(KEY_SIZE)
    for name, value in fields.items():
        f = FIELD_BY_NAME[name]
        if isinstance(value, int):
            order = "big" if f.kind.startswith("be") or f.kind in ("ipv4", "mac", "ipv6") else "little"
            value = value.to_bytes(f.size, order)
        buf[f.offset : f.offset + f.size] = value
    return bytes(buf)


def mask(*names: str) -> bytes:
    """A mask with every bit of the named fields set."""
    buf = bytearray(KEY_SIZE)
    for name in names:
        f = FIELD_BY_NAME[name]
        buf[f.offset : f.offset + f.size] = b"\xff" * f.size
    return bytes(buf)


def masked(k: bytes, m: bytes) -> bytes:
    return bytes(a & b for a, b in zip(k, m, strict=True))


M_PORT = mask("in_port")
M_PORT_DST = mask("in_port", "nw_dst")
M_5T = mask("in_port", "dl_type", "nw_src", "nw_dst", "nw_proto", "tp_src", "tp_dst")


# ---------------------------------------------------------------------------
# Insert, lookup, views
# ---------------------------------------------------------------------------


def test_insert_masks_the_key_and_derives_the_ufid(impl):
    t = impl()
    k = key(in_port=3, nw_dst=0x0A000001, nw_src=0x0A000002, tp_dst=80)
    ufid = t.insert(k, M_PORT_DST, OUT1, now_ms=5)
    assert ufid == MF.derive_ufid(masked(k, M_PORT_DST), M_PORT_DST)
    assert len(t) == 1 and t.n_masks == 1 and t.masks() == [M_PORT_DST]
    (view,) = list(t.flows())
    assert view == MF.FlowView(ufid, masked(k, M_PORT_DST), M_PORT_DST, OUT1, 0, 0, 0, 0, 5)
    assert t.get(ufid) == view
    # Any key that agrees on the masked bits matches; others do not.
    other = key(in_port=3, nw_dst=0x0A000001, nw_src=0x01020304, tp_dst=22)
    assert t.lookup(other) == (view, 1)
    assert t.lookup(key(in_port=3, nw_dst=0x0A000009)) == (None, 1)


def test_key_formats(impl):
    t = impl()
    k = key(in_port=1, nw_dst=7)
    ufid = t.insert(FlowKey(k), np.frombuffer(M_PORT_DST, dtype=np.uint64).copy(), bytearray(OUT1))
    assert t.lookup(np.frombuffer(k, dtype=np.uint8).copy())[0].ufid == ufid
    assert t.lookup(memoryview(k))[0].ufid == ufid


def test_first_mask_in_order_wins_and_n_mask_hit_counts_probes(impl):
    t = impl()
    k = key(in_port=1, nw_dst=9, tp_dst=80)
    t.insert(key(in_port=2), M_PORT, OUT1)  # mask 0, no match for k
    u_dst = t.insert(k, M_PORT_DST, OUT1)  # mask 1, matches
    u_port = t.insert(key(in_port=1), M_PORT, OUT2)  # mask 0, matches too (overlap)
    assert t.masks() == [M_PORT, M_PORT_DST]
    view, n = t.lookup(k)
    assert (view.ufid, n) == (u_port, 1)
    t.remove(u_port)
    view, n = t.lookup(k)
    assert (view.ufid, n) == (u_dst, 2)
    assert t.lookup(key(in_port=5)) == (None, 2)


def test_mask_goes_with_its_last_flow_and_the_last_mask_takes_its_slot(impl):
    t = impl()
    masks = [mask("in_port"), mask("nw_dst"), mask("tp_dst"), mask("nw_src")]
    ufids = [t.insert(key(in_port=1, nw_dst=2, tp_dst=3, nw_src=4), m, OUT1) for m in masks]
    extra = t.insert(key(in_port=9), masks[0], OUT1)
    assert t.n_masks == 4
    t.remove(ufids[0])
    assert t.masks() == masks  # mask 0 still has a flow
    t.remove(extra)
    assert t.masks() == [masks[3], masks[1], masks[2]]
    t.remove(ufids[2])
    assert t.masks() == [masks[3], masks[1]]
    assert len(t) == 2


def test_duplicates_are_refused(impl):
    t = impl()
    k = key(in_port=1, nw_dst=5)
    ufid = t.insert(k, M_PORT_DST, OUT1)
    # Same masked key and mask, different bits outside the mask.
    with pytest.raises(MF.FlowExistsError, match="masked key and mask exists") as err:
        t.insert(key(in_port=1, nw_dst=5, tp_dst=99), M_PORT_DST, OUT2, ufid=b"x" * 16)
    assert err.value.errno == 17
    with pytest.raises(MF.FlowExistsError, match=f"ufid {ufid.hex()} exists"):
        t.insert(key(in_port=2), M_PORT, OUT1, ufid=ufid)
    assert len(t) == 1


def test_remove_get_and_exact(impl):
    t = impl()
    k = key(in_port=4, nw_dst=1)
    ufid = t.insert(k, M_PORT_DST, OUT1, ufid=bytes(range(16)))
    assert ufid == bytes(range(16))
    assert t.find_exact(key(in_port=4, nw_dst=1, tp_src=5), M_PORT_DST).ufid == ufid
    assert t.find_exact(k, M_PORT) is None
    with pytest.raises(MF.FlowNotFoundError):
        t.remove_exact(k, M_PORT)
    view = t.remove_exact(k, M_PORT_DST)
    assert view.ufid == ufid and len(t) == 0 and t.n_masks == 0
    assert t.get(ufid) is None
    with pytest.raises(MF.FlowNotFoundError, match="no flow has ufid"):
        t.remove(ufid)
    assert t.lookup(k) == (None, 0)
    t.quiesce()


def test_flush(impl):
    t = impl()
    for i in range(200):
        t.insert(key(in_port=i, nw_dst=i * 7), M_PORT_DST if i % 3 else M_PORT, OUT1)
    assert len(t) == 200
    t.flush()
    assert len(t) == 0 and t.n_masks == 0 and list(t.flows()) == []
    t.quiesce()


def test_set_actions_and_stats(impl):
    t = impl()
    ufid = t.insert(key(in_port=1), M_PORT, OUT1)
    t.account(ufid, 100, tcp_flags=0x002, now_ms=10)
    t.account(ufid, 60, tcp_flags=0x010, now_ms=20)
    v = t.get(ufid)
    assert (v.packets, v.bytes, v.used_ms, v.tcp_flags) == (2, 160, 20, 0x012)
    t.set_actions(ufid, OUT2)
    v = t.get(ufid)
    assert v.actions == OUT2 and v.packets == 2
    assert t.lookup(key(in_port=1))[0].actions == OUT2
    t.set_actions(ufid, clear_stats=True)
    v = t.get(ufid)
    assert (v.actions, v.packets, v.bytes, v.used_ms, v.tcp_flags) == (OUT2, 0, 0, 0, 0)
    t.quiesce()
    assert t.get(ufid).actions == OUT2
    with pytest.raises(MF.FlowNotFoundError):
        t.account(b"\0" * 16, 1)


def test_empty_actions_and_empty_mask(impl):
    t = impl()
    ufid = t.insert(key(in_port=1), bytes(KEY_SIZE), b"")
    view, n = t.lookup(key(in_port=77, nw_dst=3))
    assert view.ufid == ufid and view.actions == b"" and view.key == bytes(KEY_SIZE) and n == 1


# ---------------------------------------------------------------------------
# Mask cache and rebalance
# ---------------------------------------------------------------------------


def test_mask_cache_remembers_the_mask(impl):
    t = impl()
    extra = ("dl_dst", "dl_src", "dl_type", "vlan_tci", "tp_src")
    for i in range(5):
        t.insert(key(in_port=100 + i, nw_dst=i), mask("in_port", "recirc_id", "nw_dst", extra[i]),
                 OUT1)
    t.insert(key(in_port=104, nw_dst=4, recirc_id=3),
             mask("in_port", "recirc_id", "nw_dst", extra[4]), OUT2)
    k = key(in_port=104, nw_dst=4)
    assert t.lookup(k, skb_hash=0x1234)[1] == 5  # full walk, remembered
    assert t.mask_cache_hits == 0
    assert t.lookup(k, skb_hash=0x1234)[1] == 1  # the cached mask first
    assert t.mask_cache_hits == 1
    assert t.lookup(k)[1] == 5  # no hash: no cache
    # The same skb_hash after recirculation is rehashed with recirc_id: its
    # own cache entry, so a full walk first.
    k_recirc = key(in_port=104, nw_dst=4, recirc_id=3)
    view, n = t.lookup(k_recirc, skb_hash=0x1234)
    assert (view.actions, n) == (OUT2, 5)
    assert t.lookup(k_recirc, skb_hash=0x1234)[1] == 1
    assert t.lookup(k, skb_hash=0x1234)[1] == 1
    assert t.mask_cache_hits == 3
    assert hash_2words(0x1234, 3) != 0x1234


def test_mask_cache_entry_cleared_on_miss(impl):
    t = impl()
    u0 = t.insert(key(in_port=1), M_PORT, OUT1)
    t.insert(key(in_port=2, nw_dst=2), M_PORT_DST, OUT1)
    k = key(in_port=2, nw_dst=2)
    assert t.lookup(k, skb_hash=77)[1] == 2
    assert t.lookup(k, skb_hash=77)[1] == 1
    # A different key with the same hash: the cached mask misses, the walk misses.
    assert t.lookup(key(in_port=9), skb_hash=77) == (None, 2)
    hits = t.mask_cache_hits
    # The entry was cleared (skb_hash 0), so this is a cache miss; the cleared
    # entry is the replacement candidate (smallest skb_hash) and the kernel
    # tries the mask index it still holds first: one probe, no cache hit.
    assert t.lookup(k, skb_hash=77)[1] == 1
    assert t.mask_cache_hits == hits
    t.remove(u0)
    # The cached index is stale now (1, past the end): a walk, no harm.
    view, n = t.lookup(k, skb_hash=77)
    assert view is not None and n == 1


def test_rebalance_sorts_masks_by_use(impl):
    t = impl()
    masks = [mask("in_port"), mask("nw_dst"), mask("tp_dst")]
    for i, m in enumerate(masks):
        t.insert(key(in_port=i + 1, nw_dst=i + 1, tp_dst=i + 1), m, OUT1)
    for _ in range(3):
        t.lookup(key(tp_dst=3))
    t.lookup(key(nw_dst=2))
    assert t.mask_usage() == [0, 1, 3]
    t.rebalance()
    assert t.masks() == [masks[2], masks[1], masks[0]]
    assert t.mask_usage() == [0, 0, 0]
    assert t.lookup(key(tp_dst=3))[1] == 1


# ---------------------------------------------------------------------------
# Flow limit and expiry
# ---------------------------------------------------------------------------


def test_flow_limit(impl):
    t = impl(flow_limit=3)
    for i in range(3):
        t.insert(key(in_port=i), M_PORT, OUT1)
    with pytest.raises(MF.FlowLimitError, match="flow_limit=3"):
        t.insert(key(in_port=9), M_PORT, OUT1)
    assert len(t) == 3
    t.flow_limit = 4
    t.insert(key(in_port=9), M_PORT, OUT1)
    assert issubclass(MF.FlowLimitError, DatapathError)


def test_expire_idle_flows(impl):
    t = impl(max_idle_ms=1000)
    old_unused = t.insert(key(in_port=1), M_PORT, OUT1, now_ms=0)
    young_unused = t.insert(key(in_port=2), M_PORT, OUT1, now_ms=600)
    used = t.insert(key(in_port=3), M_PORT, OUT1, now_ms=0)
    t.account(used, 64, now_ms=900)
    assert t.expire(500) == []
    assert t.expire(1000) == []  # used < now - max_idle is strict
    assert t.expire(1001) == [old_unused]
    assert sorted(t.expire(1901)) == sorted([young_unused, used])
    assert len(t) == 0 and t.n_masks == 0


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: t.insert(b"\0" * 10, M_PORT, OUT1), "key is 10 bytes: must be a FlowKey"),
        (lambda t: t.insert(key(), b"\0" * 529, OUT1), "mask is 529 bytes"),
        (lambda t: t.insert(np.zeros(66, dtype=np.int64), M_PORT, OUT1), "dtype int64"),
        (lambda t: t.insert("abc", M_PORT, OUT1), "got str"),
        (lambda t: t.insert(key(), M_PORT, b"\x08\x00\x01"), "actions: 3 stray bytes at offset 0"),
        (lambda t: t.insert(key(), M_PORT, b"\x40\x00\x01\x00"), "attribute at offset 0 has length 64"),
        (lambda t: t.insert(key(), M_PORT, 5), "actions must be bytes"),
        (lambda t: t.insert(key(), M_PORT, OUT1, ufid=b"short"), "ufid is 5 bytes: must be 16"),
        (lambda t: t.insert(key(), M_PORT, OUT1, now_ms=-1), "now_ms is -1"),
        (lambda t: t.lookup(key(), skb_hash=1 << 32), "skb_hash is 4294967296"),
        (lambda t: t.get(b"1234"), "ufid is 4 bytes"),
        (lambda t: t.account(b"\0" * 16, -1), "no flow has ufid"),
        (lambda t: t.lookup_loop(np.zeros((2, 5), np.uint64), np.zeros(1, np.uint32)), "keys must be"),
        (lambda t: t.lookup_loop(np.zeros((2, KEY_WORDS), np.uint64), np.array([2], np.uint32)),
         "order names row 2"),
    ],
)
def test_bad_input(impl, call, message):
    t = impl()
    with pytest.raises(DatapathError, match=message):
        call(t)
    assert len(t) == 0


def test_bad_constructor_arguments(impl):
    with pytest.raises(DatapathError, match="flow_limit is -1"):
        impl(flow_limit=-1)
    with pytest.raises(DatapathError, match="max_idle_ms must be an integer"):
        impl(max_idle_ms="10")


# ---------------------------------------------------------------------------
# Compiled table: deferred reclamation and memory accounting
# ---------------------------------------------------------------------------


def test_removed_flow_memory_comes_back_at_quiesce():
    cls = _native_or_skip()
    t = cls()

    def cycle() -> int:
        ufids = [t.insert(key(in_port=i, nw_dst=i), M_PORT_DST, OUT1 if i % 2 else OUT2)
                 for i in range(1000)]
        detail = t.memory_detail()
        assert detail["flows"] == 1000 and detail["action_lists"] == 2
        for u in ufids:
            t.set_actions(u, OUT1)
            t.remove(u)
        assert t.memory_detail()["deferred_flows"] == 1000
        assert t.memory_detail()["deferred_actions"] == 1000
        t.quiesce()
        after = t.memory_detail()
        assert after["deferred_flows"] == 0 and after["action_lists"] == 0 and after["masks"] == 0
        return t.memory_bytes()

    base = t.memory_bytes()
    first = cycle()
    # What stays are the grown arrays (UFID index, deferred lists): no leak.
    assert first - base < 1000 * 40
    assert cycle() == first


def test_lookup_loop_agrees_with_lookup(impl):
    def fill(table):
        for i in range(50):
            try:
                table.insert(key(in_port=i % 7, nw_dst=i), [M_PORT, M_PORT_DST, M_5T][i % 3], OUT1)
            except MF.FlowExistsError:
                pass
        return table

    t = fill(impl())
    rng = np.random.default_rng(1)
    keys = np.zeros((20, KEY_WORDS), np.uint64)
    for r in range(20):
        keys[r] = np.frombuffer(key(in_port=int(rng.integers(9)), nw_dst=int(rng.integers(60))),
                                np.uint64)
    order = rng.integers(0, 20, 200).astype(np.uint32)
    hashes = rng.integers(1, 1 << 32, 20).astype(np.uint32)
    expect_hits = expect_probed = 0
    twin = fill(impl())
    for row in order.tolist():
        view, n = twin.lookup(keys[row], int(hashes[row]))
        expect_hits += view is not None
        expect_probed += n
    assert t.lookup_loop(keys, order, hashes) == (expect_hits, expect_probed)
    assert t.mask_usage() == twin.mask_usage()


def test_check_overlap_in_the_reference():
    t = MF.ReferenceMegaflowTable(check_overlap=True)
    t.insert(key(in_port=1, nw_dst=2), M_PORT_DST, OUT1)
    t.insert(key(in_port=1, nw_dst=3), M_PORT_DST, OUT1)  # disjoint: nw_dst differs
    t.insert(key(in_port=2), M_PORT, OUT1)  # disjoint: in_port differs
    with pytest.raises(MF.FlowOverlapError, match="overlaps"):
        t.insert(key(in_port=1), M_PORT, OUT1)  # matches every in_port=1 packet
    with pytest.raises(MF.FlowOverlapError):
        t.insert(key(nw_dst=2), mask("nw_dst"), OUT1)


# ---------------------------------------------------------------------------
# Both implementations side by side
# ---------------------------------------------------------------------------

# A small universe of fields and values so that random operations collide.
_FIELDS = ("in_port", "recirc_id", "dl_type", "nw_src", "nw_dst", "tp_dst", "tun_id", "tun_opts")
_VALUES = (0, 1, 2)


def _mk_key(values: tuple[int, ...]) -> bytes:
    fields = {}
    for name, v in zip(_FIELDS, values, strict=True):
        if name == "tun_opts":
            fields[name] = bytes([v]) * 256
        else:
            fields[name] = v
    return key(**fields)


def _mk_mask(bits: int) -> bytes:
    return mask(*(name for i, name in enumerate(_FIELDS) if bits >> i & 1))


_key_values = st.tuples(*(st.sampled_from(_VALUES) for _ in _FIELDS))
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), _key_values, st.integers(0, 255), st.integers(0, 3)),
        st.tuples(st.just("lookup"), _key_values, st.sampled_from([0, 1, 77, 0x12345678, 0xFFFFFFFF])),
        st.tuples(st.just("remove"), st.integers(0, 50)),
        st.tuples(st.just("set"), st.integers(0, 50), st.booleans()),
        st.tuples(st.just("account"), st.integers(0, 50), st.integers(0, 2000)),
        st.tuples(st.just("expire"), st.integers(0, 3000)),
        st.tuples(st.just("rebalance")),
    ),
    max_size=60,
)


def _apply(t, op, inserted: list[bytes]):
    kind = op[0]
    try:
        if kind == "insert":
            _, values, mbits, act = op
            ufid = t.insert(_mk_key(values), _mk_mask(mbits), nla_u32(ActionAttr.OUTPUT, act),
                            now_ms=len(inserted))
            inserted.append(ufid)
            return ufid
        if kind == "lookup":
            view, n = t.lookup(_mk_key(op[1]), op[2])
            return view, n
        if kind == "rebalance":
            t.rebalance()
            return t.masks()
        if kind == "expire":
            return sorted(t.expire(op[1]))
        if not inserted:
            return None
        ufid = inserted[op[1] % len(inserted)]
        if kind == "remove":
            return t.remove(ufid)
        if kind == "set":
            t.set_actions(ufid, OUT2, clear_stats=op[2])
            return t.get(ufid)
        if kind == "account":
            t.account(ufid, 64, tcp_flags=op[2] & 0xFF, now_ms=op[2])
            return t.get(ufid)
    except DatapathError as error:
        return type(error).__name__, str(error)
    raise AssertionError(kind)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_ops)
def test_random_operations_agree(ops):
    native_cls = _native_or_skip()
    ref = MF.ReferenceMegaflowTable(flow_limit=25, max_idle_ms=500)
    nat = native_cls(flow_limit=25, max_idle_ms=500)
    ref_ufids: list[bytes] = []
    nat_ufids: list[bytes] = []
    for op in ops:
        assert _apply(ref, op, ref_ufids) == _apply(nat, op, nat_ufids), op
        assert ref.masks() == nat.masks()
        assert ref.mask_usage() == nat.mask_usage()
        assert ref.mask_cache_hits == nat.mask_cache_hits
        assert len(ref) == len(nat)
    assert sorted(ref.flows()) == sorted(nat.flows())
    nat.quiesce()


@settings(max_examples=100, deadline=None)
@given(
    rules=st.lists(st.tuples(_key_values, st.integers(0, 255)), max_size=40),
    probes=st.lists(_key_values, min_size=1, max_size=20),
)
def test_lookup_finds_a_matching_flow_or_none_matches(rules, probes):
    """Whatever the table holds, a hit matches the key and a miss means no flow matches."""
    native_cls = _native_or_skip()
    t = native_cls()
    for values, mbits in rules:
        try:
            t.insert(_mk_key(values), _mk_mask(mbits), OUT1)
        except MF.FlowExistsError:
            pass
    flows = list(t.flows())
    for values in probes:
        k = _mk_key(values)
        view, n = t.lookup(k)
        matching = [f for f in flows if masked(k, f.mask) == f.key]
        assert n == (t.n_masks if view is None else n)
        if view is None:
            assert matching == []
        else:
            assert view in matching

