"""A faster drop-in for the ``ovs`` package's pure-Python JSON stream parser.

``ovs.jsonrpc.Connection`` splits the byte stream from an OVSDB server into
JSON-RPC messages with ``ovs.json.Parser``: ``feed(text)`` consumes up to the
end of one complete JSON value and returns how many characters it took,
``is_done()`` says a value is complete, ``finish()`` returns the value (or an
error string). The package uses a C implementation of that parser when it
was built against libopenvswitch (``ovs._json``); PyPI installs usually lack
it and fall back to a character-at-a-time Python lexer, which dominates the
cost of reading large monitor updates.

:class:`StreamParser` keeps that interface but only scans for the structural
characters (quotes, backslashes, brackets) to find where a value ends, then
decodes the whole value with the standard library's C-accelerated ``json``.
:func:`install` makes ``ovs.json.Parser`` this class unless the C parser is
present or ``OVSNET_PURE_JSON=1`` is set. The differential tests feed both
parsers the same streams, cut at random points, and compare.
"""

from __future__ import annotations

import json
import os
import re

import ovs.json

_ORIGINAL_PARSER = ovs.json.Parser
_STRUCTURE = re.compile(r'["\\{}\[\]]')
_IN_STRING = re.compile(r'["\\]')
_SPACE = " \t\r\n"
_decoder = json.JSONDecoder()


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


def _original(check_trailer: bool = False):
    """An instance of the ovs package's own parser, whatever ``ovs.json.Parser`` is now.

    (Its ``__new__`` refers to the module-level name, so it cannot be called
    once that name points here.)
    """
    parser = object.__new__(_ORIGINAL_PARSER)
    parser.__init__(check_trailer=check_trailer)
    return parser


class StreamParser(_ORIGINAL_PARSER):
    """Finds one top-level JSON object or array in a stream of text and decodes it.

    Anything else (a top-level scalar, or ``check_trailer=True`` as
    ``ovs.json.from_string`` asks) is handed to the original parser, so every
    caller of ``ovs.json.Parser`` keeps its exact behaviour. It subclasses the
    original only so that the original's methods, which look their states up
    through the module-level name, keep working after :func:`install`.
    """

    MAX_HEIGHT = 1000

    def __new__(cls, check_trailer: bool = False):
        if check_trailer:
            return _original(check_trailer=True)
        return object.__new__(cls)

    def __init__(self, check_trailer: bool = False):
        self.check_trailer = check_trailer
        self._fallback = None
        self._parts: list[str] = []
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._started = False
        self.done = False
        self.error: str | None = None

    def feed(self, s: str) -> int:
        """Consumes text up to the end of the current value; returns characters used."""
        if self._fallback is not None:
            return self._fallback.feed(s)
        if self.done:
            return 0
        i, n = 0, len(s)
        if not self._started:
            while i < n and s[i] in _SPACE:
                i += 1
            if i == n:
                return i
            if s[i] not in "{[":
                self._fallback = _original()
                return i + self._fallback.feed(s[i:])
            self._started = True
        start = i
        while i < n:
            if self._escape:  # the character after a backslash inside a string
                self._escape = False
                i += 1
                continue
            if self._in_string:
                m = _IN_STRING.search(s, i)
                if m is None:
                    i = n
                    break
                i = m.end()
                if m.group() == "\\":
                    self._escape = True
                else:
                    self._in_string = False
                continue
            m = _STRUCTURE.search(s, i)
            if m is None:
                i = n
                break
            c = m.group()
            i = m.end()
            if c == '"':
                self._in_string = True
            elif c in "{[":
                self._depth += 1
                if self._depth > self.MAX_HEIGHT:
                    self._fail(f"input exceeds maximum nesting depth {self.MAX_HEIGHT}")
                    return i
            elif c in "}]":
                self._depth -= 1
                if self._depth == 0:
                    self._parts.append(s[start:i])
                    self.done = True
                    return i
            else:  # a backslash outside a string is a syntax error json will report
                continue
        self._parts.append(s[start:i])
        return i

    def _fail(self, message: str) -> None:
        self.error = message
        self.done = True

    def is_done(self) -> bool:
        return self._fallback.is_done() if self._fallback is not None else self.done

    def finish(self):
        """The decoded value, or a string describing the syntax error."""
        if self._fallback is not None:
            return self._fallback.finish()
        if self.error is not None:
            return self.error
        if not self._started:
            return "empty input stream"
        if not self.done:
            return "unexpected end of input"
        text = "".join(self._parts)
        try:
            value, end = _decoder.raw_decode(text)
        except json.JSONDecodeError as e:
            return f"line {e.lineno - 1}, column {e.colno - 1}, byte {e.pos}: {e.msg}"
        except RecursionError:
            return f"input exceeds maximum nesting depth {self.MAX_HEIGHT}"
        if text[end:].strip():
            return "trailing garbage at end of input"
        if "\\u0000" in text and _has_nul(value):
            return "null bytes not supported in quoted strings"  # as OVS's parser
        return value



def install() -> bool:
    """Makes ovs.jsonrpc use :class:`StreamParser`; False when not installed."""
    if ovs.json.PARSER == ovs.json.PARSER_C or os.environ.get("OVSNET_PURE_JSON") == "1":
        return False
    ovs.json.Parser = StreamParser
    return True


def uninstall() -> None:
    ovs.json.Parser = _ORIGINAL_PARSER
