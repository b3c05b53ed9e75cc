"""JSON as Open vSwitch's C code sees it: value kinds, text form, member order.

Mirrors three details of ``lib/json.c``, ``lib/shash.c`` and ``lib/hmap.c``
that leak into what ovsdb-server answers:

- **Kinds.** C's parser makes every integral number that fits in 64 bits an
  integer (``1.0`` and ``1e2`` are integers) and anything else a real.
  :func:`kind` classifies a Python value the same way, so a ``1.0`` that
  reached us as a Python float still counts as an integer.
- **Text.** ``json_to_string``: compact, object members optionally sorted by
  byte value, reals printed with ``%.15g``, control characters escaped as
  ``\\uXXXX`` (except ``\\b \\t \\n \\f \\r``), everything else -- non-ASCII
  included -- verbatim. Error objects carry such text in their ``syntax``
  member (:func:`dumps`).
- **Member order.** A JSON object in C is a ``shash``: a hash map keyed by
  ``hash_string(name, 0)`` (murmur-style ``mhash`` as built on generic
  x86-64) whose buckets are walked in index order, newest node first, and
  which doubles when it holds more than twice as many nodes as buckets. Which
  of several bad columns or members C reports first is decided by that order;
  :func:`shash_order` reproduces it from the insertion order.
"""

from __future__ import annotations

from functools import lru_cache

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
UINT_MAX = (1 << 32) - 1

_M32 = 0xFFFFFFFF


def kind(value) -> str:
    """The C ``json_type`` name of ``value``: null, false, true, object, array, integer, real, string."""
    t = type(value)
    if t is str:
        return "string"
    if t is int:
        return "integer" if INT64_MIN <= value <= INT64_MAX else "real"
    if t is bool:
        return "true" if value else "false"
    if t is list:
        return "array"
    if t is dict:
        return "object"
    if value is None:
        return "null"
    if t is float:
        return "integer" if value.is_integer() and INT64_MIN <= value <= INT64_MAX else "real"
    if isinstance(value, (list, tuple)):
        return "array"
    return "<invalid>"


def c_integer(value):
    """``value`` as a C JSON integer (an int), or None if C would not see an integer."""
    t = type(value)
    if t is int:
        return value if INT64_MIN <= value <= INT64_MAX else None
    if t is float and value.is_integer() and INT64_MIN <= value <= INT64_MAX:
        return int(value)
    return None


def format_real(value: float) -> str:
    """``%.15g``, as C prints a real (DBL_DIG digits)."""
    return f"{value:.15g}"


_ESCAPES = {i: f"\\u{i:04x}" for i in range(0x20)}
_ESCAPES.update({0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r",
                 0x22: '\\"', 0x5C: "\\\\"})


def dump_string(s: str) -> str:
    """A JSON string literal exactly as ``json_serialize_string`` writes it."""
    return '"' + s.translate(_ESCAPES) + '"'


def dumps(value, sort_keys: bool = True, shash: bool = False) -> str:
    """``json_to_string(value, sort_keys ? JSSF_SORT : 0)``: compact C-style text.

    With ``shash`` (and not ``sort_keys``), object members come in the order
    C would write an object whose members were added in the dict's order.
    """
    out: list[str] = []
    _dump(value, "sort" if sort_keys else ("shash" if shash else None), out)
    return "".join(out)


def shash_reorder(value):
    """``value`` with every object's members in C's iteration order (as if written
    by C and read back)."""
    if type(value) is dict:
        return {k: shash_reorder(value[k]) for k in shash_order(value)}
    if type(value) is list:
        return [shash_reorder(v) for v in value]
    return value


def _dump(value, sort_keys, out: list) -> None:
    t = type(value)
    if t is str:
        out.append(dump_string(value))
    elif t is bool:
        out.append("true" if value else "false")
    elif value is None:
        out.append("null")
    elif t is int or t is float:
        i = c_integer(value)
        out.append(str(i) if i is not None else format_real(float(value)))
    elif t is dict:
        out.append("{")
        keys = (sorted(value) if sort_keys == "sort"
                else shash_order(value) if sort_keys == "shash" else list(value))
        for n, k in enumerate(keys):
            if n:
                out.append(",")
            out.append(dump_string(k))
            out.append(":")
            _dump(value[k], sort_keys, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for n, v in enumerate(value):
            if n:
                out.append(",")
            _dump(v, sort_keys, out)
        out.append("]")
    else:
        out.append(dump_string(str(value)))


# -- shash / hmap iteration order (lib/hash.c, lib/hmap.c) ----------------------

def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _M32


def _mhash_add(h: int, data: int) -> int:
    if data:
        data = (data * 0xCC9E2D51) & _M32
        data = _rot(data, 15)
        data = (data * 0x1B873593) & _M32
        h ^= data
    h = _rot(h, 13)
    return (h * 5 + 0xE6546B64) & _M32


def _mhash_finish(h: int) -> int:
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _M32
    h ^= h >> 16
    return h


def hash_bytes(data: bytes, basis: int = 0) -> int:
    """``hash_bytes()`` of lib/hash.c (the mhash variant, little-endian words)."""
    h = basis
    n = len(data)
    full = n & ~3
    for i in range(0, full, 4):
        h = _mhash_add(h, int.from_bytes(data[i:i + 4], "little"))
    if n & 3:
        h = _mhash_add(h, int.from_bytes(data[full:], "little"))
    return _mhash_finish(h ^ n)


def hash_string(s: str, basis: int = 0) -> int:
    return hash_bytes(s.encode("utf-8", "surrogatepass"), basis)


def _calc_mask(capacity: int) -> int:
    mask = capacity // 2
    for shift in (1, 2, 4, 8, 16, 32):
        mask |= mask >> shift
    mask |= (mask & 1) << 1
    return mask


@lru_cache(maxsize=4096)
def _shash_order(names: tuple) -> tuple:
    mask = 0
    buckets: list[list] = [[]]
    for n, name in enumerate(names, 1):
        h = hash_string(name)
        buckets[h & mask].insert(0, (h, name))
        if n // 2 > mask:
            new_mask = _calc_mask(n)
            if new_mask > mask:
                resized: list[list] = [[] for _ in range(new_mask + 1)]
                for bucket in buckets:
                    for node in bucket:
                        resized[node[0] & new_mask].insert(0, node)
                buckets, mask = resized, new_mask
    return tuple(name for bucket in buckets for _, name in bucket)


def shash_order(names) -> tuple:
    """The order in which C iterates a shash built by adding ``names`` in this order."""
    names = tuple(names)
    if len(names) < 2:
        return names
    return _shash_order(names)
