"""Values printed and parsed the way ``ovs-vsctl`` does.

``ovs-vsctl`` prints a column with ``ovsdb_datum_to_string()``
(``lib/ovsdb-data.c``): sets in ``[...]``, maps in ``{k=v, ...}``, atoms
sorted, a string bare when it looks like an identifier and JSON-quoted
otherwise. The same text is what ``ovs-vsctl set`` accepts, so the dry-run of
``ovsnet apply`` uses it to write commands an operator can paste.

The rule for bare strings is OVS 3.1's C rule (letters, digits, ``_-.``,
starting with a letter or ``_``, not ``true``/``false``, not a UUID); the
Python ``ovs`` package's copy of it is older and quotes digits.
"""

from __future__ import annotations

import json
import re
import uuid as uuidlib

_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")


def string_needs_quotes(s: str) -> bool:
    if not _BARE.match(s) or s in ("true", "false"):
        return True
    return bool(_UUID.match(s))


def quote_json_string(s: str) -> str:
    """A JSON string literal as OVS's json_to_ds writes it (UTF-8 kept as is)."""
    return json.dumps(s, ensure_ascii=False)


def atom_to_string(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.15g}"
    if isinstance(value, uuidlib.UUID):
        return str(value)
    if hasattr(value, "uuid") and isinstance(value.uuid, uuidlib.UUID):
        return str(value.uuid)  # an IDL Row used as a reference
    s = str(value)
    return quote_json_string(s) if string_needs_quotes(s) else s


def _sort_key(value):
    if isinstance(value, str):
        return (1, value.encode())
    if hasattr(value, "uuid") and isinstance(value.uuid, uuidlib.UUID):
        return (2, str(value.uuid))
    if isinstance(value, uuidlib.UUID):
        return (2, str(value))
    return (0, value)


def datum_to_string(value, is_map: bool, n_max: int) -> str:
    """Formats an IDL value (scalar, list or dict) of a column with this shape."""
    if is_map:
        items = sorted(value.items(), key=lambda kv: _sort_key(kv[0]))
        body = ", ".join(f"{atom_to_string(k)}={atom_to_string(v)}" for k, v in items)
        return "{" + body + "}"
    values = value if isinstance(value, list) else [value]
    values = sorted(values, key=_sort_key)
    body = ", ".join(atom_to_string(v) for v in values)
    if n_max > 1 or not values:
        return "[" + body + "]"
    return body


def column_to_string(column, value) -> str:
    """Formats ``value`` of an ``ovs.db.idl`` column exactly as ovs-vsctl prints it."""
    ctype = column.type
    return datum_to_string(value, ctype.is_map(), ctype.n_max)


def is_default(column, value) -> bool:
    """True if ``value`` is the column's default (ovs-vsctl show skips those)."""
    ctype = column.type
    if ctype.is_map() or ctype.n_min == 0:
        return not value
    if isinstance(value, bool):
        return value is False
    if isinstance(value, (int, float)):
        return value == 0
    if isinstance(value, str):
        return value == ""
    return False
