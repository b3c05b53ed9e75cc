"""The published JSON Schema of topology files and its errors as diagnostics.

``topology.schema.json`` (draft 2020-12, shipped as package data) describes
the *shape* of a topology file: which keys exist, their types, enums, ranges
and name/MAC/PCI patterns. Editors can use it as is. Everything that needs
more than one value at a time (references, duplicates, datapath rules) is
checked by :mod:`ovsnet.topology.validate`.

The schema avoids ``oneOf``/``anyOf`` on purpose, so that each problem yields
one error: alternatives are written as a type list whose other keywords only
apply to one of the types (``{"type": ["integer", "string"], "maximum": ..,
"pattern": "^flow$"}``). Messages are built here, not taken from jsonschema,
using the schema's ``title`` and the ovsnet-specific ``x-hint`` annotation.
"""

from __future__ import annotations

import difflib
import json
from collections import defaultdict
from functools import lru_cache
from pathlib import Path as FsPath
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator

from ..errors import Diagnostic

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

    from .source import Document

_SCHEMA_FILE = "topology.schema.json"


def schema_path() -> FsPath:
    """Path of the shipped ``topology.schema.json``."""
    return FsPath(__file__).with_name(_SCHEMA_FILE)


SCHEMA: dict[str, Any] = json.loads(schema_path().read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(SCHEMA)


_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true/false)",
    "null": "nothing",
}


def _yaml_type(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value}"
    return f"string {value!r}"


def _words(items: list[str], conj: str = "or") -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conj} {items[-1]}"


def _choices(values: list[Any]) -> str:
    return ", ".join(repr(v) if v == "" else str(v) for v in values)


def _suggest(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _hint(schema: dict) -> str:
    return f" ({schema['x-hint']})" if "x-hint" in schema else ""


def _range_text(schema: dict) -> str:
    """``is out of range 0..4095`` or ``must be >= 1``, from the schema's bounds."""
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        return f"is out of range {low}..{high}"
    if "exclusiveMinimum" in schema:
        return f"must be greater than {schema['exclusiveMinimum']}"
    return f"must be >= {low}" if low is not None else f"must be <= {high}"


class _Messages:
    """Turns each jsonschema error into at most a few crisp diagnostics."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.out: list[Diagnostic] = []
        self.missing: dict[tuple, list[str]] = defaultdict(list)

    def add(self, path: tuple, message: str, at: str = "value", bad: bool = True) -> None:
        self.out.append(self.doc.diag(path, message, at))
        if bad:
            self.doc.bad.add(path)

    def error(self, err: ValidationError) -> None:
        path = tuple(err.absolute_path)
        schema = err.schema if isinstance(err.schema, dict) else {}
        kind = err.validator
        title = schema.get("title", "value")
        value = err.instance
        if "propertyNames" in err.absolute_schema_path:
            self.key_name(path, value, err)
        elif kind == "type":
            types = [
                t
                for t in (
                    err.validator_value
                    if isinstance(err.validator_value, list)
                    else [err.validator_value]
                )
                if t != "null"
            ]
            expected = _words([_TYPE_WORDS[t] for t in types])
            self.add(path, f"expected {expected}{_hint(schema)}, got {_yaml_type(value)}")
        elif kind == "enum":
            choices = [str(c) for c in err.validator_value]
            self.add(
                path,
                f"{value!r} is not a valid {title}"
                + (_suggest(value, choices) if isinstance(value, str) else "")
                + f"; use one of: {_choices(err.validator_value)}",
            )
        elif kind == "const":
            self.add(path, f"{title} must be {err.validator_value!r}, got {value!r}")
        elif kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            self.add(path, f"{title} {value} {_range_text(schema)}{_hint(schema)}")
        elif kind == "pattern":
            self.add(path, f"{value!r} is not a valid {title}{_hint(schema)}")
        elif kind == "minLength":
            self.add(path, f"{title} must not be empty")
        elif kind in ("minItems", "minProperties") and title in ("link", "bond"):
            what = "host NICs" if title == "link" else "interfaces"
            self.add(
                path, f"a {title} needs at least {err.validator_value} {what}, got {len(value)}"
            )
        elif kind == "minProperties" and title == "check":
            kinds = _choices(list(SCHEMA["$defs"]["check"]["properties"]))
            self.add(path, f"empty check: give one of {kinds}", at="value", bad=True)
        elif kind == "maxProperties" and title == "check":
            self.add(
                path,
                f"a check has exactly one kind, got {len(value)}: {', '.join(value)}; write one list item per check",
            )
        elif kind in ("minItems", "minProperties", "maxProperties"):
            self.add(path, f"{err.message}")
        elif kind == "uniqueItems":
            self.duplicate_item(path, value)
        elif kind == "required":
            missing = [m for m in err.validator_value if isinstance(value, dict) and m not in value]
            self.missing[path].extend(m for m in missing if m not in self.missing[path])
        elif kind == "additionalProperties":
            self.unknown_keys(path, value, schema)
        elif kind == "dependentRequired":
            for key, needs in err.validator_value.items():
                for need in needs:
                    if key in value and need not in value:
                        self.add(
                            (*path, key), f"{key!r} needs {need!r} as well", at="key", bad=False
                        )
        else:  # a keyword this module has no wording for: still report it, plainly
            self.add(path, err.message)

    def key_name(self, path: tuple, key: Any, err: ValidationError) -> None:
        schema = err.schema if isinstance(err.schema, dict) else {}
        if err.validator == "enum":
            title = schema.get("title", "key")
            self.add(
                (*path, key),
                f"unknown {title} {key!r}"
                + _suggest(str(key), [str(c) for c in err.validator_value])
                + f"; use one of: {_choices(err.validator_value)}",
                at="key",
            )
        else:
            self.add(
                (*path, key), f"{key!r} is not a valid name{_hint(schema)}", at="key", bad=False
            )

    def unknown_keys(self, path: tuple, value: Any, schema: dict) -> None:
        allowed = list(schema.get("properties", {}))
        for key in value:
            if key in allowed:
                continue
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            if close and close[0] not in value:
                self.doc.bad.add((*path, close[0]))  # a misspelt key: what it names is unknown
            self.add(
                (*path, key),
                f"unknown key {key!r}{_suggest(key, allowed)}; allowed keys: {', '.join(allowed)}",
                at="key",
            )

    def duplicate_item(self, path: tuple, items: list) -> None:
        seen: list[Any] = []
        for i, item in enumerate(items):
            if item in seen:
                self.add((*path, i), f"{item!r} is listed twice", bad=False)
            else:
                seen.append(item)
        self.doc.bad.add(path)

    def finish(self) -> list[Diagnostic]:
        for path, keys in self.missing.items():
            names = ", ".join(repr(k) for k in keys)
            plural = "s" if len(keys) > 1 else ""
            self.out.append(self.doc.diag(path, f"missing required key{plural} {names}", at="key"))
        return self.out


def schema_diagnostics(doc: Document) -> list[Diagnostic]:
    """Validate ``doc.data`` against :data:`SCHEMA`; marks rejected paths in ``doc.bad``."""
    messages = _Messages(doc)
    errors = sorted(
        _validator().iter_errors(doc.data), key=lambda e: list(map(str, e.absolute_path))
    )
    for err in errors:
        messages.error(err)
    return messages.finish()
