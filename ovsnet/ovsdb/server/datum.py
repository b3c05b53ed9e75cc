"""Atoms and datums of the OVSDB data model, with the C server's errors.

Mirrors ``lib/ovsdb-data.c`` (``ovsdb_atom_from_json``,
``ovsdb_datum_from_json``, ``ovsdb_atom_check_constraints``, the
``*_to_string`` forms used in error messages, ``ovsdb_datum_compare_3way``)
and ``lib/ovsdb-error.c`` (:class:`OpError`, the ``{"error", "details",
"syntax"}`` objects).

Representation (the "canonical datum"): a datum is a tuple, sorted and
without duplicate keys -- of atoms for a scalar or set column, of
``(key, value)`` pairs for a map column. Atoms are plain Python values:
``int`` (integer), ``float`` (real), ``bool``, ``str`` (string) and the
lowercase 36-character ``str`` of a UUID; the column type says which. With
UUIDs as lowercase hex strings, Python's ordering of every atom kind is C's
(``uuid_compare_3way`` compares the same digits as unsigned words, ``strcmp``
orders UTF-8 bytes as code points), so ``sorted()`` gives C's order and
tuple equality is ``ovsdb_datum_equals``.
"""

from __future__ import annotations

import os
import re
import sys
from operator import itemgetter

from .cjson import UINT_MAX, c_integer, dumps, format_real

DBL_MAX = sys.float_info.max
ZERO_UUID = "00000000-0000-0000-0000-000000000000"

_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ID_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_first = itemgetter(0)


class _NoJson:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_JSON"


#: "there is no JSON to quote" (C's NULL json pointer), unlike JSON null (None)
NO_JSON = _NoJson()


class OpError(Exception):
    """An ``ovsdb_error``: what the C server puts in a result array.

    ``tag`` is the ``error`` member, ``details`` and ``syntax`` (the offending
    JSON, as C prints it) are optional members.
    """

    def __init__(self, tag: str, details: str | None = None, syntax: str | None = None):
        super().__init__(tag, details, syntax)
        self.tag = tag
        self.details = details
        self.syntax = syntax

    def to_json(self) -> dict:
        out = {"error": self.tag}
        if self.details is not None:
            out["details"] = self.details
        if self.syntax is not None:
            out["syntax"] = self.syntax
        return out

    def __str__(self) -> str:  # ovsdb_error_to_string
        s = f'syntax "{self.syntax}": ' if self.syntax is not None else ""
        s += self.tag
        if self.details is not None:
            s += f": {self.details}"
        return s


def syntax_error(json, tag: str | None, details: str) -> OpError:
    """``ovsdb_syntax_error(json, tag, details)``: tag defaults to "syntax error"."""
    return OpError(tag or "syntax error", details, None if json is NO_JSON else dumps(json))


def is_id(s) -> bool:
    """``ovsdb_parser_is_id``: ``[_a-zA-Z][_a-zA-Z0-9]*``."""
    # For ASCII text, Python's identifier rule is exactly that.
    return type(s) is str and s.isascii() and s.isidentifier()


def is_uuid_string(s: str) -> bool:
    return _UUID_RE.fullmatch(s) is not None


_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}
_pool = [b"", 0]


def _reset_pool() -> None:
    _pool[0], _pool[1] = b"", 0


os.register_at_fork(after_in_child=_reset_pool)


def new_uuid() -> str:
    """A random (version 4) UUID as C's ``uuid_generate`` makes, in lowercase text."""
    pool, pos = _pool
    if pos + 16 > len(pool):
        pool = _pool[0] = os.urandom(4096)
        pos = 0
    _pool[1] = pos + 16
    h = pool[pos:pos + 16].hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


class Symbol:
    """A named UUID of one transaction (``struct ovsdb_symbol``)."""

    __slots__ = ("uuid", "created")

    def __init__(self, uuid: str, created: bool = False):
        self.uuid = uuid
        self.created = created


def symbol_lookup(symtab: dict, name: str) -> Symbol:
    """``ovsdb_symbol_table_insert``: the symbol, created with a fresh UUID if new."""
    sym = symtab.get(name)
    if sym is None:
        sym = symtab[name] = Symbol(new_uuid())
    return sym


# -- atoms -----------------------------------------------------------------------

# lib/unicode.c: (first byte range, continuation byte ranges) of valid UTF-8.
_UTF8_SEQUENCES = (
    ((0xC2, 0xDF), ((0x80, 0xBF),)),
    ((0xE0, 0xE0), ((0xA0, 0xBF), (0x80, 0xBF))),
    ((0xE1, 0xEC), ((0x80, 0xBF), (0x80, 0xBF))),
    ((0xED, 0xED), ((0x80, 0x9F), (0x80, 0xBF))),
    ((0xEE, 0xEF), ((0x80, 0xBF), (0x80, 0xBF))),
    ((0xF0, 0xF0), ((0x90, 0xBF), (0x80, 0xBF), (0x80, 0xBF))),
    ((0xF1, 0xF3), ((0x80, 0xBF), (0x80, 0xBF), (0x80, 0xBF))),
    ((0xF4, 0xF4), ((0x80, 0x8F), (0x80, 0xBF), (0x80, 0xBF))),
)


def _c_bytes(s: str) -> bytes:
    """The bytes C holds for ``s``: raw undecodable input bytes travel as
    U+DC80..U+DCFF (surrogateescape), other surrogates as their 3-byte form."""
    out = bytearray()
    for ch in s:
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:
            out.append(o - 0xDC00)
        else:
            out += ch.encode("utf-8", "surrogatepass")
    return bytes(out)


def check_utf8(s: str) -> None:
    """``utf8_validate`` as ``check_string_constraints`` applies it to every string."""
    try:
        s.encode("utf-8")
        return
    except UnicodeEncodeError:
        pass
    b = _c_bytes(s) + b"\0"
    i = 0
    while b[i]:
        c = b[i]
        if c < 0x80:
            i += 1
            continue
        rest = next((r for (lo, hi), r in _UTF8_SEQUENCES if lo <= c <= hi), None)
        if rest is None:
            _invalid_utf8(b[i:i + 1])
        for n, (lo, hi) in enumerate(rest, 1):
            if not lo <= b[i + n] <= hi:
                _invalid_utf8(b[i:i + n + 1])
        i += 1 + len(rest)


def _invalid_utf8(seq: bytes):
    raise OpError("constraint violation", "not a valid UTF-8 string: invalid UTF-8 sequence"
                  + "".join(f" 0x{x:02x}" for x in seq))


def parse_uuid_atom(j, symtab):
    """``ovsdb_atom_parse_uuid``: ["uuid", "..."] or, with a symbol table, ["named-uuid", "id"]."""
    if type(j) is list and len(j) == 2 and type(j[1]) is str:
        if j[0] == "uuid":
            s = j[1]
            if _UUID_RE.fullmatch(s) is None:
                raise syntax_error(j, None, f'"{s}" is not a valid UUID')
            return s.lower()
        if symtab is not None and j[0] == "named-uuid":
            name = j[1]
            if not is_id(name):
                raise syntax_error(j, None, "named-uuid string is not a valid <id>")
            return symbol_lookup(symtab, name).uuid
    raise syntax_error(j, None, 'expected ["uuid", <string>]')


def _string_needs_quotes(s: str) -> bool:
    if not s:
        return True
    c = s[0]
    if not (c == "_" or (c.isascii() and c.isalpha())):
        return True
    for c in s[1:]:
        if not (c.isascii() and (c.isalnum() or c in "_-.")):
            return True
    return s in ("true", "false") or is_uuid_string(s)


def atom_to_string(atom, atype: str) -> str:
    """``ovsdb_atom_to_string``: the ovs-vsctl form of one atom."""
    if atype == "string":
        return dumps(atom) if _string_needs_quotes(atom) else atom
    if atype == "real":
        return format_real(atom)
    if atype == "boolean":
        return "true" if atom else "false"
    return str(atom)


def datum_to_string(datum: tuple, dtype) -> str:
    """``ovsdb_datum_to_string``: e.g. ``[a, b]``, ``{k=v}`` or a bare atom."""
    key, value = dtype.key.type, dtype.value
    if value is not None:
        body = ", ".join(f"{atom_to_string(k, key)}={atom_to_string(v, value.type)}"
                         for k, v in datum)
    else:
        body = ", ".join(atom_to_string(a, key) for a in datum)
    if dtype.n_max > 1 or not datum:
        return "{" + body + "}" if value is not None else "[" + body + "]"
    return body


def atom_to_json(atom, atype: str):
    return ["uuid", atom] if atype == "uuid" else atom


def make_atom_parser(base):
    """A function ``(json, symtab) -> atom`` for ``base`` that checks its constraints.

    Raises :class:`OpError` exactly as ``ovsdb_atom_from_json`` fails.
    """
    atype = base.type
    check = make_constraint_checker(base)

    if atype == "integer":
        def parse(j, symtab):
            if type(j) is int and -(1 << 63) <= j < (1 << 63):
                v = j
            else:
                v = c_integer(j)
                if v is None:
                    raise syntax_error(j, None, "expected integer")
            if check is not None:
                check(v)
            return v
    elif atype == "real":
        def parse(j, symtab):
            t = type(j)
            if t is float or t is int:
                v = float(j)
            else:
                raise syntax_error(j, None, "expected real")
            if check is not None:
                check(v)
            return v
    elif atype == "boolean":
        def parse(j, symtab):
            if type(j) is not bool:
                raise syntax_error(j, None, "expected boolean")
            if check is not None:
                check(j)
            return j
    elif atype == "string":
        def parse(j, symtab):
            if type(j) is not str:
                raise syntax_error(j, None, "expected string")
            if check is not None:
                check(j)
            elif not j.isascii():
                check_utf8(j)
            return j
    else:
        def parse(j, symtab):
            v = parse_uuid_atom(j, symtab)
            if check is not None:
                check(v)
            return v
    return parse


def make_constraint_checker(base):
    """``ovsdb_atom_check_constraints`` for ``base``, or None if it has no constraints."""
    atype = base.type
    if base.enum is not None:
        enum = base.enum
        valid = "[" + ", ".join(atom_to_string(a, atype) for a in base.enum_sorted) + "]"

        def check_enum(v):
            if v not in enum:
                raise OpError("constraint violation",
                              f"{atom_to_string(v, atype)} is not one of the allowed "
                              f"values ({valid})")
        return check_enum
    if atype == "integer":
        lo, hi = base.min, base.max
        if lo == -(1 << 63) and hi == (1 << 63) - 1:
            return None

        def check_int(v):
            if lo <= v <= hi:
                return
            if lo != -(1 << 63):
                if hi != (1 << 63) - 1:
                    msg = f"{v} is not in the valid range {lo} to {hi} (inclusive)"
                else:
                    msg = f"{v} is less than minimum allowed value {lo}"
            else:
                msg = f"{v} is greater than maximum allowed value {hi}"
            raise OpError("constraint violation", msg)
        return check_int
    if atype == "real":
        lo, hi = base.min, base.max
        if lo == -DBL_MAX and hi == DBL_MAX:
            return None

        def check_real(v):
            if lo <= v <= hi:
                return
            f = format_real
            if lo != -DBL_MAX:
                if hi != DBL_MAX:
                    msg = f"{f(v)} is not in the valid range {f(lo)} to {f(hi)} (inclusive)"
                else:
                    msg = f"{f(v)} is less than minimum allowed value {f(lo)}"
            else:
                msg = f"{f(v)} is greater than maximum allowed value {f(hi)}"
            raise OpError("constraint violation", msg)
        return check_real
    if atype == "string":
        lo, hi = base.min_len, base.max_len
        if lo == 0 and hi == UINT_MAX:
            return None

        def check_string(v):
            if not v.isascii():
                check_utf8(v)
            n = len(v)
            if n < lo:
                raise OpError("constraint violation",
                              f'"{v}" length {n} is less than minimum allowed length {lo}')
            if n > hi:
                raise OpError("constraint violation",
                              f'"{v}" length {n} is greater than maximum allowed length {hi}')
        return check_string
    return None


# -- datums ----------------------------------------------------------------------

def make_datum_parser(dtype):
    """A function ``(json, symtab) -> datum`` implementing ``ovsdb_datum_from_json``."""
    key_parse = dtype.key.parse
    value_parse = dtype.value.parse if dtype.value is not None else None
    is_map = value_parse is not None
    cls = "map" if is_map else "set"
    n_min, n_max = dtype.n_min, dtype.n_max
    if n_min == 1 and n_max == 1:
        def count_error(j, n):
            return syntax_error(j, None, f"{cls} must have exactly one member but {n} are present")
    else:
        def count_error(j, n):
            return syntax_error(j, None, f"{cls} must have {n_min} to {n_max} members "
                                         f"but {n} are present")

    def parse(j, symtab):
        if type(j) is list and j and (is_map or j[0] == "set"):
            if not (len(j) == 2 and j[0] == cls and type(j[1]) is list):
                raise syntax_error(j, None, f'expected ["{cls}", <array>]')
            inner = j[1]
            n = len(inner)
            if n < n_min or n > n_max:
                raise count_error(j, n)
            if is_map:
                pairs = []
                for e in inner:
                    if type(e) is not list or len(e) != 2:
                        raise syntax_error(e, None, "expected 2-element array")
                    pairs.append((key_parse(e[0], symtab), value_parse(e[1], symtab)))
                if n < 2:
                    return tuple(pairs)
                pairs.sort(key=_first)
                for i in range(n - 1):
                    if pairs[i][0] == pairs[i + 1][0]:
                        raise OpError("ovsdb error", "map contains duplicate key")
                return tuple(pairs)
            atoms = [key_parse(e, symtab) for e in inner]
            if n < 2:
                return tuple(atoms)
            atoms.sort()
            for i in range(n - 1):
                if atoms[i] == atoms[i + 1]:
                    raise OpError("ovsdb error", "set contains duplicate")
            return tuple(atoms)
        if is_map:
            raise syntax_error(j, None, 'expected ["map", <array>]')
        return (key_parse(j, symtab),)
    return parse


def c_real(x: float) -> float:
    """The real C prints (``%.15g``) and reads back, as a Python float."""
    return float(f"{x:.15g}")


def make_datum_to_json(dtype):
    """A function ``datum -> json`` implementing ``ovsdb_datum_to_json``.

    Reals come out as C prints them (15 significant digits): the value in
    memory keeps full precision, as in C.
    """
    if dtype.key.type == "real" or (dtype.value is not None and dtype.value.type == "real"):
        base = _make_datum_to_json(dtype)
        kreal = dtype.key.type == "real"
        vreal = dtype.value is not None and dtype.value.type == "real"
        if dtype.value is not None:
            return lambda d: base(tuple((c_real(k) if kreal else k, c_real(v) if vreal else v)
                                        for k, v in d))
        return lambda d: base(tuple(c_real(a) for a in d))
    return _make_datum_to_json(dtype)


def _make_datum_to_json(dtype):
    ktype = dtype.key.type
    if dtype.value is not None:
        vtype = dtype.value.type
        if ktype == "uuid" or vtype == "uuid":
            return lambda d: ["map", [[atom_to_json(k, ktype), atom_to_json(v, vtype)]
                                      for k, v in d]]
        return lambda d: ["map", [[k, v] for k, v in d]]
    if ktype == "uuid":
        def to_json_uuid(d):
            if len(d) == 1:
                return ["uuid", d[0]]
            return ["set", [["uuid", a] for a in d]]
        return to_json_uuid

    def to_json(d):
        if len(d) == 1:
            return d[0]
        return ["set", list(d)]
    return to_json


def datum_compare(a: tuple, b: tuple, is_map: bool) -> int:
    """``ovsdb_datum_compare_3way``: by size, then keys, then values."""
    if len(a) != len(b):
        return -1 if len(a) < len(b) else 1
    if is_map:
        ka, kb = [k for k, _ in a], [k for k, _ in b]
        if ka != kb:
            return -1 if ka < kb else 1
        va, vb = [v for _, v in a], [v for _, v in b]
        return 0 if va == vb else (-1 if va < vb else 1)
    return 0 if a == b else (-1 if a < b else 1)


def datum_diff(old: tuple, new: tuple, dtype) -> tuple:
    """``ovsdb_datum_diff``: what turns ``old`` into ``new`` when applied as a diff.

    For a scalar or optional column (``n_max`` 1) that is ``new`` itself; for
    a set, the symmetric difference; for a map, the removed pairs, the added
    pairs and, for a changed value, the new pair.
    """
    if dtype.n_max <= 1:
        return new
    if dtype.value is None:
        return tuple(sorted(set(old).symmetric_difference(new)))
    o, n = dict(old), dict(new)
    out = [(k, v) for k, v in old if k not in n]
    out.extend((k, v) for k, v in new if o.get(k, _MISSING) != v)
    out.sort(key=_first)
    return tuple(out)


_MISSING = object()


def datum_apply_diff(current: tuple, diff: tuple, dtype) -> tuple:
    """``ovsdb_datum_apply_diff_in_place`` (sizes are checked by the caller)."""
    if dtype.n_max <= 1:
        return diff
    if dtype.value is None:
        return tuple(sorted(set(current).symmetric_difference(diff)))
    d = dict(current)
    for k, v in diff:
        if k in d and d[k] == v:
            del d[k]
        else:
            d[k] = v
    return tuple(sorted(d.items(), key=_first))
