"""The compiled UFID helpers (native/_classifier.pyx) against the pure-Python reference."""

from __future__ import annotations

import random

import pytest

from ovsnet.datapath import megaflow
from ovsnet.datapath.flow_key import KEY_SIZE
from ovsnet.datapath.packet import hash_bytes
from ovsnet.datapath.packet import reference as packet_reference
from ovsnet.errors import DatapathError

native = pytest.importorskip("ovsnet._classifier")
ref = megaflow.ufid_reference


def _random_mask(rng: random.Random) -> bytes:
    """A mask as megaflows have them: a few fields exact, some bits of others, zero elsewhere."""
    mask = bytearray(KEY_SIZE)
    for _ in range(rng.randrange(0, 12)):
        start = rng.randrange(KEY_SIZE)
        for i in range(start, min(KEY_SIZE, start + rng.randrange(1, 17))):
            mask[i] = rng.choice((0xFF, 0xFF, rng.getrandbits(8)))
    return bytes(mask)


@pytest.mark.parametrize("hash_impl", ["public", "reference"])
def test_reference_is_the_documented_hash(hash_impl):
    hb = hash_bytes if hash_impl == "public" else packet_reference.hash_bytes
    key, mask = bytes(range(256)) * 2 + bytes(16), b"\xff" * KEY_SIZE
    words = [hb(key + mask, i).to_bytes(4, "little") for i in range(4)]
    assert ref.derive_ufid(key, mask) == b"".join(words)
    assert ref.masked_ufid(key, mask) == b"".join(words)


@pytest.mark.parametrize("seed", range(5))
def test_native_matches_reference_on_random_keys_and_masks(seed):
    rng = random.Random(seed)
    seen, flows = set(), set()
    for _ in range(200):
        key = rng.randbytes(KEY_SIZE)
        mask = _random_mask(rng) if rng.random() < 0.8 else rng.randbytes(KEY_SIZE)
        masked = bytes(a & b for a, b in zip(key, mask, strict=True))
        expected = ref.derive_ufid(masked, mask)
        assert len(expected) == megaflow.UFID_SIZE
        assert native.derive_ufid(masked, mask) == expected
        assert native.masked_ufid(key, mask) == expected
        assert ref.masked_ufid(key, mask) == expected
        seen.add(expected)
        flows.add((masked, mask))
    assert len(seen) == len(flows)  # distinct flows, distinct UFIDs


@pytest.mark.parametrize("n_key, n_mask", [(0, 0), (1, 0), (0, 3), (5, 2), (7, 9), (64, 64)])
def test_native_derive_ufid_any_lengths(n_key, n_mask):
    """The tail word (lengths not a multiple of 4) and empty buffers hash alike."""
    rng = random.Random(n_key * 100 + n_mask)
    a, b = rng.randbytes(n_key), rng.randbytes(n_mask)
    assert native.derive_ufid(a, b) == ref.derive_ufid(a, b)
    assert native.derive_ufid(bytearray(a), memoryview(b)) == ref.derive_ufid(a, b)


def test_masked_ufid_ignores_masked_out_bits():
    rng = random.Random(3)
    key, mask = rng.randbytes(KEY_SIZE), _random_mask(rng)
    other = bytes(k ^ (~m & 0xFF) for k, m in zip(key, mask, strict=True))
    assert native.masked_ufid(key, mask) == native.masked_ufid(other, mask)


@pytest.mark.parametrize("impl", ["native", "reference"])
def test_masked_ufid_length_mismatch(impl):
    fn = native.masked_ufid if impl == "native" else ref.masked_ufid
    with pytest.raises(DatapathError, match="mask is 527 bytes: must be as long as the key"):
        fn(bytes(KEY_SIZE), bytes(KEY_SIZE - 1))


def test_public_names_are_the_compiled_ones_and_tables_agree():
    assert megaflow.derive_ufid is native.derive_ufid
    assert megaflow.masked_ufid is native.masked_ufid
    rng = random.Random(9)
    key, mask = rng.randbytes(KEY_SIZE), _random_mask(rng)
    expected = ref.masked_ufid(key, mask)
    for table in (megaflow.ReferenceMegaflowTable(), megaflow.MegaflowTable()):
        assert table.insert(key, mask, b"") == expected


def _outcome(table, key, mask, actions, ufid=None, now_ms=0):
    try:
        return ("ok", table.insert(key, mask, actions, ufid, now_ms))
    except DatapathError as e:
        return (type(e).__name__, str(e))


def test_compiled_insert_checks_arguments_as_the_reference():
    """The compiled insert checks bytes arguments in C (the upcall path's
    case) and must accept and reject exactly what the reference does, with
    the same errors."""
    if megaflow.native is None:
        pytest.skip("ovsnet._megaflow is not built")
    rng = random.Random(5)
    key, mask = rng.randbytes(KEY_SIZE), _random_mask(rng)
    kinds = set()
    for _ in range(400):
        n = rng.randrange(0, 24)
        actions = bytearray(rng.randbytes(n))
        for ofs in range(0, n - 1, 4):  # mostly plausible netlink lengths
            if rng.random() < 0.7:
                actions[ofs:ofs + 2] = rng.randrange(0, 12).to_bytes(2, "little")
        args = (key, mask, bytes(actions))
        expected = _outcome(megaflow.ReferenceMegaflowTable(), *args)
        assert _outcome(megaflow.native.MegaflowTable(), *args) == expected, actions.hex()
        kinds.add("ok" if expected[0] == "ok" else
                  "stray" if "stray bytes" in expected[1] else "length")
    assert kinds == {"ok", "stray", "length"}  # accepted, and both kinds of malformed
    odd = [(bytes(KEY_SIZE - 1), mask, b""), (key, bytearray(mask), b""),
           (key, mask, b"", b"\x01" * 15), (key, mask, b"", bytearray(16)),
           (key, mask, b"", None, -1), (key, mask, b"", None, True), (key, mask, b"", None, 1 << 64)]
    for args in odd:
        expected = _outcome(megaflow.ReferenceMegaflowTable(), *args)
        assert _outcome(megaflow.native.MegaflowTable(), *args) == expected
