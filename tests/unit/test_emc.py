"""Tests of ovsnet.datapath.emc: dpif-netdev's exact-match cache over a megaflow table.

Every test body runs against both implementations (the reference cache over
the reference table, the compiled cache over the compiled table) through the
``impl`` fixture; hypothesis runs random operations against both and requires
the same answers, entry placement and random draws included.
"""

from __future__ import annotations

import gc
import os
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ovsnet.datapath import emc as EMC
from ovsnet.datapath import megaflow as MF
from ovsnet.datapath.flow_key import FIELD_BY_NAME, KEY_SIZE
from ovsnet.datapath.odp_attrs import ActionAttr, nla_u32
from ovsnet.errors import DatapathError

IN_CI = os.environ.get("CI") == "true"

OUT1 = nla_u32(ActionAttr.OUTPUT, 1)
OUT2 = nla_u32(ActionAttr.OUTPUT, 2)


def _native_or_skip():
    if EMC.native is None or MF.native is None:
        if IN_CI:
            pytest.fail("ovsnet._emc / ovsnet._megaflow are not built")
        pytest.skip("ovsnet._emc is not built (pip install -e .)")
    return SimpleNamespace(table=MF.native.MegaflowTable, cache=EMC.native.ExactMatchCache)


_REFERENCE = SimpleNamespace(table=MF.ReferenceMegaflowTable, cache=EMC.ReferenceExactMatchCache)


@pytest.fixture(params=["python", "cython"])
def impl(request):
    """table and cache classes of one implementation."""
    return _REFERENCE if request.param == "python" else _native_or_skip()


def key(in_port: int = 0, nw_dst: int = 0, tp_dst: int = 0, tun_opts: bytes = b"") -> bytes:
    buf = bytearray(KEY_SIZE)
    buf[0:4] = in_port.to_bytes(4, "little")
    buf[76:80] = nw_dst.to_bytes(4, "big")
    buf[90:92] = tp_dst.to_bytes(2, "big")
    buf[272 : 272 + len(tun_opts)] = tun_opts
    return bytes(buf)


M_PORT = bytearray(KEY_SIZE)
M_PORT[0:4] = b"\xff" * 4
M_PORT = bytes(M_PORT)
assert FIELD_BY_NAME["in_port"].offset == 0


def test_lookup_after_insert_needs_the_exact_key(impl):
    t, c = impl.table(), impl.cache(inv_prob=1)
    k = key(in_port=1, nw_dst=5, tp_dst=80)
    ufid = t.insert(k, M_PORT, OUT1)
    assert c.lookup(k, 0xABCDE) is None
    c.insert(k, 0xABCDE, t, ufid)
    assert c.lookup(k, 0xABCDE).ufid == ufid
    assert c.lookup(key(in_port=1, nw_dst=5, tp_dst=81), 0xABCDE) is None  # same megaflow, other key
    assert c.lookup(k, 0xABCDF) is None  # another hash
    assert (c.lookups, c.hits, c.inserts, len(c)) == (4, 1, 1, 1)


def test_long_keys(impl):
    """A key with more non-zero words than an entry holds inline."""
    t, c = impl.table(), impl.cache()
    opts = bytes(range(1, 201))
    k = key(in_port=2, tun_opts=opts)
    ufid = t.insert(k, M_PORT, OUT1)
    c.insert(k, 7, t, ufid)
    assert c.lookup(k, 7).ufid == ufid
    assert c.lookup(key(in_port=2, tun_opts=opts[:-1] + b"\0"), 7) is None
    c.insert(key(in_port=2), 7, t, ufid)  # same positions: overwrites or takes the other one
    assert c.lookup(key(in_port=2), 7).ufid == ufid


def test_removed_flow_is_never_returned(impl):
    t, c = impl.table(), impl.cache()
    k = key(in_port=1)
    ufid = t.insert(k, M_PORT, OUT1)
    c.insert(k, 99, t, ufid)
    t.remove(ufid)
    assert c.lookup(k, 99) is None
    t.quiesce()  # the compiled table lets go; the cache's reference keeps the flow
    assert c.lookup(k, 99) is None
    assert len(c) == 0
    # A new flow for the same key replaces the dead one in place.
    ufid2 = t.insert(k, M_PORT, OUT2, ufid=b"n" * 16)
    c.insert(k, 99, t, ufid2)
    assert c.lookup(k, 99).actions == OUT2


def test_modified_flow_returns_new_actions(impl):
    t, c = impl.table(), impl.cache()
    k = key(in_port=3)
    ufid = t.insert(k, M_PORT, OUT1)
    c.insert(k, 5, t, ufid)
    t.set_actions(ufid, OUT2)
    t.quiesce()
    assert c.lookup(k, 5).actions == OUT2


def test_sweep_drops_dead_flows(impl):
    t, c = impl.table(), impl.cache()
    ufid = t.insert(key(in_port=1), M_PORT, OUT1)
    c.insert(key(in_port=1), 3, t, ufid)
    c.insert(key(in_port=1, nw_dst=1), 4, t, ufid)
    t.remove(ufid)
    t.quiesce()
    c.sweep(3)  # entries 0, 1, 2
    c.sweep(2)  # entries 3, 4
    assert len(c) == 0
    c.clear()


def test_orphaned_flow_is_freed_with_its_last_reference():
    cls = _native_or_skip()
    t, c = cls.table(), cls.cache()
    ufid = t.insert(key(in_port=1), M_PORT, OUT1)
    c.insert(key(in_port=1), 3, t, ufid)
    orphans = MF.native.orphan_bytes
    before = orphans()
    t.remove(ufid)
    t.quiesce()
    assert orphans() > before
    c.sweep(4)
    assert orphans() == before


def test_table_freed_before_the_cache():
    cls = _native_or_skip()
    t, c = cls.table(), cls.cache()
    for i in range(100):
        ufid = t.insert(key(in_port=i), M_PORT, OUT1)
        c.insert(key(in_port=i), i * 7919, t, ufid)
    assert len(c) == 100
    del t
    gc.collect()
    assert len(c) == 0
    assert all(c.lookup(key(in_port=i), i * 7919) is None for i in range(100))
    del c


def test_replacement_prefers_dead_then_smaller_hash(impl):
    t, c = impl.table(), impl.cache()
    ufids = [t.insert(key(in_port=i), M_PORT, OUT1) for i in range(4)]
    # Hashes whose two positions are entries 1 and 2.
    h_a = 1 | (2 << 13)
    h_b = 1 | (2 << 13) | (1 << 30)
    h_c = 2 | (1 << 13)
    c.insert(key(in_port=0), h_b, t, ufids[0])  # entry 1 (first empty candidate)
    c.insert(key(in_port=1), h_c, t, ufids[1])  # entry 2
    # Both positions alive: the entry with the smaller hash (entry 2) goes.
    c.insert(key(in_port=2), h_a, t, ufids[2])
    assert c.lookup(key(in_port=1), h_c) is None
    assert c.lookup(key(in_port=0), h_b).ufid == ufids[0]
    # Positions 2 then 1: entry 2 is alive with the smaller hash, entry 1's
    # flow is dead, so entry 1 goes although its hash is larger.
    t.remove(ufids[0])
    h_d = 2 | (1 << 13) | (1 << 31)
    c.insert(key(in_port=3), h_d, t, ufids[3])
    assert c.lookup(key(in_port=2), h_a).ufid == ufids[2]
    assert c.lookup(key(in_port=3), h_d).ufid == ufids[3]
    # OVS's rule is "the first position, unless the next one is dead while it
    # is alive, or has a smaller hash": with entry 1 (dead, larger hash)
    # first, entry 2 (alive, smaller hash) is the one replaced.
    t.remove(ufids[3])
    c.insert(key(in_port=1), h_b | (1 << 31), t, ufids[1])
    assert c.lookup(key(in_port=2), h_a) is None
    assert c.lookup(key(in_port=1), h_b | (1 << 31)).ufid == ufids[1]


@pytest.mark.parametrize(("inv_prob", "low", "high"), [(1, 1000, 1000), (0, 0, 0), (100, 3, 25)])
def test_insert_probability(impl, inv_prob, low, high):
    t, c = impl.table(), impl.cache(inv_prob=inv_prob, seed=4)
    ufid = t.insert(key(in_port=1), M_PORT, OUT1)
    done = sum(c.probabilistic_insert(key(in_port=1), i, t, ufid) for i in range(1000))
    assert low <= done <= high
    assert c.inserts == done


def test_same_seed_same_draws(impl):
    t = impl.table()
    ufid = t.insert(key(in_port=1), M_PORT, OUT1)
    draws = []
    for seed in (0, 0, 1):
        c = impl.cache(inv_prob=10, seed=seed)
        draws.append([c.probabilistic_insert(key(in_port=1), i, t, ufid) for i in range(300)])
    assert draws[0] == draws[1] != draws[2]
    assert EMC.insert_min(100) == 0xFFFFFFFF // 100 and EMC.insert_min(0) == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t, c, u: c.lookup(b"\0", 1), "key is 1 bytes"),
        (lambda t, c, u: c.lookup(key(), -1), "hash is -1"),
        (lambda t, c, u: c.insert(key(), 1, t, b"\0" * 16), "no flow has ufid"),
        (lambda t, c, u: c.insert(key(), 1, t, b"\0"), "ufid is 1 bytes"),
        (lambda t, c, u: c.insert(key(), 1, object(), u), "caches flows of"),
        (lambda t, c, u: c.insert(key(), 1, t, u) or setattr(c, "inv_prob", -2), "inv_prob is -2"),
    ],
)
def test_bad_input(impl, call, message):
    t, c = impl.table(), impl.cache()
    ufid = t.insert(key(in_port=1), M_PORT, OUT1)
    with pytest.raises(DatapathError, match=message):
        call(t, c, ufid)


def test_wrong_table_implementation():
    cls = _native_or_skip()
    with pytest.raises(DatapathError, match="compiled MegaflowTable"):
        cls.cache().insert(key(), 1, MF.ReferenceMegaflowTable(), b"\0" * 16)
    with pytest.raises(DatapathError, match="ReferenceMegaflowTable"):
        EMC.ReferenceExactMatchCache().insert(key(), 1, cls.table(), b"\0" * 16)


# ---------------------------------------------------------------------------
# Both implementations side by side
# ---------------------------------------------------------------------------

# Few keys and hashes that share positions, so that entries collide.
_HASHES = [1, 1 | (1 << 13), 2 | (1 << 13), 1 | (2 << 13), 8191 | (1 << 13), 5 << 20]
_op = st.one_of(
    st.tuples(st.just("lookup"), st.integers(0, 5), st.sampled_from(_HASHES)),
    st.tuples(st.just("insert"), st.integers(0, 5), st.sampled_from(_HASHES), st.integers(0, 5)),
    st.tuples(st.just("pinsert"), st.integers(0, 5), st.sampled_from(_HASHES), st.integers(0, 5)),
    st.tuples(st.just("remove"), st.integers(0, 5)),
    st.tuples(st.just("readd"), st.integers(0, 5)),
    st.tuples(st.just("sweep"), st.integers(0, 3)),
    st.tuples(st.just("quiesce")),
)


def _run(side, ops):
    t = side.table()
    c = side.cache(inv_prob=3, seed=11)
    ufids = [t.insert(key(in_port=i), M_PORT, nla_u32(ActionAttr.OUTPUT, i)) for i in range(6)]
    out = []
    for op in ops:
        kind = op[0]
        try:
            if kind == "lookup":
                v = c.lookup(key(in_port=op[1], nw_dst=op[1] % 2), op[2])
                out.append(v and v.ufid)
            elif kind in ("insert", "pinsert"):
                k = key(in_port=op[1], nw_dst=op[1] % 2)
                if kind == "insert":
                    c.insert(k, op[2], t, ufids[op[3]])
                else:
                    out.append(c.probabilistic_insert(k, op[2], t, ufids[op[3]]))
            elif kind == "remove":
                t.remove(ufids[op[1]])
            elif kind == "readd":
                t.insert(key(in_port=op[1]), M_PORT, OUT2, ufid=ufids[op[1]])
            elif kind == "sweep":
                c.sweep(op[1] * 4000)
            else:
                t.quiesce()
        except DatapathError as error:
            out.append(type(error).__name__)
        out.append(len(c))
    out.append((c.lookups, c.hits, c.inserts))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(_op, max_size=50))
def test_random_operations_agree(ops):
    native = _native_or_skip()
    assert _run(_REFERENCE, ops) == _run(native, ops)
