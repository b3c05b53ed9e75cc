"""Reading the members of one JSON object the way ``lib/ovsdb-parser.c`` does.

Every OVSDB request object (an operation, a schema, a table, a column, a
type) is read through a ``struct ovsdb_parser``: each member is looked up
with the JSON kinds it may have, the *first* problem is remembered and
reported as ``Parsing <what> failed: <problem>`` (a syntax error quoting the
whole object), and :meth:`Parser.finish` complains about members nobody
asked for -- naming the first one in C's hash order.
"""

from __future__ import annotations

from .cjson import kind, shash_order
from .datum import NO_JSON, OpError, is_id, syntax_error

MISSING = object()

# Member kinds (enum ovsdb_parser_types); "id" is a string that is an <id>.
ID = frozenset({"id"})
STRING = frozenset({"string"})
OBJECT = frozenset({"object"})
ARRAY = frozenset({"array"})
INTEGER = frozenset({"integer"})
NUMBER = frozenset({"integer", "real"})
BOOLEAN = frozenset({"true", "false"})
ANY = frozenset({"null", "true", "false", "object", "array", "integer", "real", "string"})


class Parser:
    """``struct ovsdb_parser`` for one JSON object named ``name`` in messages.

    ``name`` may be a (format, args) pair, formatted only if an error needs it.
    """

    __slots__ = ("name", "json", "used", "error")

    def __init__(self, json, name):
        self.name = name
        self.used: set[str] = set()
        self.error: OpError | None = None
        self.json = json if type(json) is dict else None
        if self.json is None:
            self.raise_error("Object expected.")

    def member(self, name: str, kinds: frozenset, optional: bool = False):
        """The member's value, or :data:`MISSING` (recording an error unless optional)."""
        obj = self.json
        if obj is None:
            return MISSING
        if name not in obj:
            if not optional:
                self.raise_error(f"Required '{name}' member is missing.")
            return MISSING
        value = obj[name]
        t = type(value)
        if t is str:
            ok = "string" in kinds or ("id" in kinds and is_id(value))
        elif t is dict:
            ok = "object" in kinds
        elif t is list:
            ok = "array" in kinds
        else:
            ok = kind(value) in kinds
        if ok:
            self.used.add(name)
            return value
        self.raise_error(f"Type mismatch for member '{name}'.")
        return MISSING

    def raise_error(self, message: str) -> None:
        if self.error is None:
            name = self.name if type(self.name) is str else self.name[0] % self.name[1]
            self.error = syntax_error(self.json if self.json is not None else NO_JSON, None,
                                      f"Parsing {name} failed: {message}")

    def finish(self) -> OpError | None:
        """``ovsdb_parser_finish``: the first error, including unexpected members."""
        if self.error is None:
            obj = self.json
            n_unused = len(obj) - len(self.used)
            if n_unused:
                for name in shash_order(obj):
                    if name not in self.used:
                        if n_unused > 1:
                            self.raise_error(
                                f"Member '{name}' and {n_unused - 1} other member"
                                f"{'s' if n_unused > 2 else ''} are present but not "
                                "allowed here.")
                        else:
                            self.raise_error(
                                f"Member '{name}' is present but not allowed here.")
                        break
        return self.error
