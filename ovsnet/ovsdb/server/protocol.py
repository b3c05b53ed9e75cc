"""JSON-RPC 1.0 over a byte stream, exactly as ovsdb-server reads and writes it.

Mirrors three pieces of Open vSwitch:

- ``lib/json.c``: the incremental parser. A stream is a sequence of top-level
  JSON objects or arrays, optionally separated by whitespace; anything else at
  the top level, bad syntax, a nesting depth over 1000, a ``\\u0000`` escape
  or an unpaired high surrogate is an error. Numbers follow C's rules: an
  integral value that fits in 64 bits is an integer (``1.0`` and ``1e2`` are
  integers), anything else a real, printed with 15 significant digits (so
  reals are rounded to that on input here; see :func:`_c_number`).
  Bytes that are not UTF-8 are carried through unchanged, as C does.
- ``lib/jsonrpc.c``: ``jsonrpc_msg_from_json`` and ``jsonrpc_msg_is_valid``
  (which members each message type must have, ``null`` meaning absent) and
  ``jsonrpc_msg_to_json`` (what a reply, an error and a notification look
  like on the wire). Any framing or validity error makes the server close the
  connection; :class:`ProtocolError` carries the reason C logs.
- the compact serialisation of ``json_to_ds``: no spaces, UTF-8 unescaped,
  control characters as ``\\uXXXX``.

:class:`Framer` scans raw bytes for the structural characters only (quotes,
backslashes, brackets), so a 100 MB string costs one pass of a C-speed
search; the complete value is then decoded once by the standard library.
"""

from __future__ import annotations

import codecs
import json
import re
import sys
from decimal import Decimal, InvalidOperation

#: deepest nesting of arrays and objects lib/json.c accepts
MAX_DEPTH = 1000

_STRUCTURE = re.compile(rb'["\\{}\[\]]')
_IN_STRING = re.compile(rb'["\\]')
_NOT_SPACE = re.compile(rb"[^ \t\r\n]")
# A \uD800-\uDBFF escape (preceded by an even number of backslashes) that is
# not followed by a \uDC00-\uDFFF escape: C rejects it, Python would not.
_LONE_HIGH_SURROGATE = re.compile(
    rb"(?<!\\)(?:\\\\)*\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})")
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1

try:  # compiled fast paths for plain values (native/_ovsdb_json.pyx)
    from ... import _ovsdb_json as _native
except ImportError:  # pragma: no cover - not built: the pure-Python paths do everything
    _native = None

# The standard library's decoder and encoder recurse once per nesting level:
# leave room for 1000 levels below whatever stack the caller already uses.
if sys.getrecursionlimit() < 5000:
    sys.setrecursionlimit(5000)


class ProtocolError(Exception):
    """The peer broke JSON or JSON-RPC; the connection must be closed."""


def _c_real(text: str):
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ProtocolError("number outside valid range")
    if value == 0:
        return 0.0
    return float(f"{value:.15g}")


def _c_number(text: str):
    """A JSON number as lib/json.c's ``json_lex_number`` classifies it."""
    try:
        exact = Decimal(text)
    except InvalidOperation:  # pragma: no cover - json already validated it
        raise ProtocolError("syntax error in number") from None
    if exact == 0:
        return 0
    if exact == exact.to_integral_value() and _INT64_MIN <= exact <= _INT64_MAX:
        return int(exact)
    return _c_real(text)


def _c_int(text: str):
    value = int(text)
    if _INT64_MIN <= value <= _INT64_MAX:
        return value
    return _c_real(text)


def _no_constant(name: str):
    raise ProtocolError(f"invalid keyword '{name}'")


_decoder = json.JSONDecoder(parse_float=_c_number, parse_int=_c_int,
                            parse_constant=_no_constant, strict=True)


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


def decode_value(data: bytes):
    """One complete JSON text (bytes) -> Python value, with lib/json.c's rules."""
    text = data.decode("utf-8", "surrogateescape")
    try:
        value, end = _decoder.raw_decode(text)
    except json.JSONDecodeError as e:
        raise ProtocolError(f"line {e.lineno - 1}, column {e.colno - 1}, byte {e.pos}: "
                            f"{e.msg}") from None
    except RecursionError:
        raise ProtocolError(f"input exceeds maximum nesting depth {MAX_DEPTH}") from None
    if text[end:].strip(" \t\r\n"):
        raise ProtocolError("trailing garbage at end of input")
    return _check_escapes(value, data)


def _check_escapes(value, data: bytes):
    """What lib/json.c refuses in \\u escapes that Python's json accepts."""
    if b"\\u" in data:
        if (b"\\u0000" in data or b"\\U0000" in data) and _has_nul(value):
            raise ProtocolError("null bytes not supported in quoted strings")
        if _LONE_HIGH_SURROGATE.search(data):
            raise ProtocolError("invalid UTF-16 surrogate pair")
    return value


def _encode_error(err: UnicodeEncodeError):
    """Lone surrogates: raw bytes that came in undecodable go out unchanged
    (surrogateescape); any other surrogate is written as its 3-byte form, as
    C's UTF-8 writer does."""
    out = bytearray()
    for ch in err.object[err.start:err.end]:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(code - 0xDC00)
        else:
            out += ch.encode("utf-8", "surrogatepass")
    return bytes(out), err.end


codecs.register_error("ovsnet-ovsdb", _encode_error)


def _no_default(value):
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _make_encoder(sort_keys: bool):
    """A reusable compact encoder (``json.dumps`` builds a new one per call)."""
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                               sort_keys=sort_keys, check_circular=False)
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:  # pragma: no cover - CPython always has the C encoder
        return encoder.encode
    scan = c_make_encoder(None, _no_default, json.encoder.encode_basestring, None, ":", ",",
                          sort_keys, False, False)
    join = "".join

    def encode(value) -> str:
        return join(scan(value, 0))
    return encode


_encode = _make_encoder(False)
_encode_sorted = _make_encoder(True)


def dumps(value, sort_keys: bool = False) -> str:
    """Compact JSON text as ``json_to_string`` writes it (``JSSF_SORT`` = sort_keys)."""
    return _encode_sorted(value) if sort_keys else _encode(value)


def encode_value(value, errors: str = "ovsnet-ovsdb") -> bytes:
    """``dumps(value)`` in UTF-8 (lone surrogates as ``errors`` says)."""
    if _native is not None:
        try:
            return _native.encode(value, errors)
        except _native.Unsupported:
            pass
    return _encode(value).encode("utf-8", errors)


def encode_reply(result, id) -> bytes:
    """``reply(result, id).encode()``, without building the message object."""
    if _native is not None:
        try:
            return _native.encode_reply(result, id, "ovsnet-ovsdb")
        except _native.Unsupported:
            pass
    return ('{"id":' + _encode(id) + ',"result":' + _encode(result)
            + ',"error":null}').encode("utf-8", "ovsnet-ovsdb")


_FAST_LIMIT = 1 << 16


class Framer:
    """Splits a byte stream into complete top-level JSON values.

    ``feed()`` appends bytes; ``next()`` returns the next complete value,
    ``None`` when more bytes are needed, or raises :class:`ProtocolError`.
    After an error the stream is unusable (the server closes it).
    """

    def __init__(self):
        self._buf = bytearray()
        self._pos = 0          # where scanning resumes
        self._start = -1       # offset of the current value's first byte, -1 if none yet
        self._depth = 0
        self._in_string = False
        self._escape = False
        self.received = 0      # total bytes fed (``jsonrpc_get_received_bytes``)

    def feed(self, data: bytes) -> None:
        self._buf += data
        self.received += len(data)

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a value."""
        return len(self._buf)

    def has_partial(self) -> bool:
        """True if part of a value (not just whitespace) is buffered."""
        return _NOT_SPACE.search(self._buf) is not None

    def next(self):
        if not self._buf:
            return None
        if self._start < 0:
            fast = self._fast_value()
            if fast is not None:
                return fast[0]
        end = self._scan()
        if end < 0:
            return None
        data = bytes(self._buf[self._start:end])
        del self._buf[:end]
        self._pos = 0
        self._start = -1
        return decode_value(data)

    def _fast_value(self):
        """``(value,)`` for a complete value at the start of the buffer, else None.

        The common case -- a whole small ASCII request in the buffer -- is
        decoded in one pass, by the compiled parser when the value is plain
        (see ``native/_ovsdb_json.pyx``), else by the C json scanner with
        lib/json.c's number and keyword rules, without the byte-by-byte scan.
        Anything unusual (incomplete, too large, non-ASCII, maybe too deep)
        returns None and :meth:`_scan` decides.
        """
        buf = self._buf
        if len(buf) > _FAST_LIMIT:
            return None
        if _native is not None:
            plain = _native.decode_prefix(buf)
            if plain is not None:
                value, end = plain
                if end == len(buf):
                    buf.clear()
                else:
                    del buf[:end]
                self._pos = 0
                return (value,)
        if not buf.isascii():
            return None
        text = buf.decode("ascii")
        i = len(text) - len(text.lstrip())
        if i == len(text) or text[i] not in "{[":
            return None
        if text.count("[") + text.count("{") > MAX_DEPTH:  # maybe too deep: let _scan judge
            return None
        try:
            value, end = _decoder.raw_decode(text, i)
        except (json.JSONDecodeError, RecursionError):
            return None
        if "\\u" in text:
            value = _check_escapes(value, bytes(buf[i:end]))
        if end == len(text):
            buf.clear()
        else:
            del buf[:end]
        self._pos = 0
        return (value,)

    def _scan(self) -> int:
        """Offset just past the end of the current value, or -1 if incomplete."""
        buf, i, n = self._buf, self._pos, len(self._buf)
        if self._start < 0:
            m = _NOT_SPACE.search(buf, i)
            if m is None:
                del buf[:]
                self._pos = 0
                return -1
            i = m.start()
            c = buf[i]
            if c not in b"{[":
                if c in b"]}:,-0123456789\"" or chr(c).isalpha():
                    raise ProtocolError("syntax error at beginning of input")
                raise ProtocolError(f"invalid character U+{c:04x}" if not 32 < c < 127
                                    else f"invalid character '{chr(c)}'")
            self._start = i
        while i < n:
            if self._escape:
                self._escape = False
                i += 1
                continue
            if self._in_string:
                m = _IN_STRING.search(buf, i)
                if m is None:
                    i = n
                    break
                i = m.end()
                if buf[m.start()] == 0x5C:  # backslash
                    self._escape = True
                else:
                    self._in_string = False
                continue
            m = _STRUCTURE.search(buf, i)
            if m is None:
                i = n
                break
            c = buf[m.start()]
            i = m.end()
            if c == 0x22:  # quote
                self._in_string = True
            elif c in (0x7B, 0x5B):  # { [
                self._depth += 1
                if self._depth > MAX_DEPTH:
                    raise ProtocolError(f"input exceeds maximum nesting depth {MAX_DEPTH}")
            elif c in (0x7D, 0x5D):  # } ]
                self._depth -= 1
                if self._depth == 0:
                    self._pos = i
                    return i
            # a backslash outside a string: the decoder reports the syntax error
        self._pos = i
        return -1


# Message types, as lib/jsonrpc.h numbers them.
REQUEST, NOTIFY, REPLY, ERROR = "request", "notification", "reply", "error"

# (method, params, result, error, id) each required (True) or forbidden (False)
_PATTERNS = {
    REQUEST: (True, True, False, False, True),
    NOTIFY: (True, True, False, False, False),
    REPLY: (False, False, True, False, True),
    ERROR: (False, False, False, True, True),
}
_MEMBERS = ("method", "params", "result", "error", "id")


class Message:
    """One JSON-RPC message; ``None`` members are absent (``null`` on the wire)."""

    __slots__ = ("type", "method", "params", "result", "error", "id")

    def __init__(self, type, method=None, params=None, result=None, error=None, id=None):
        self.type = type
        self.method = method
        self.params = params
        self.result = result
        self.error = error
        self.id = id

    @classmethod
    def from_json(cls, value) -> Message:
        """``jsonrpc_msg_from_json``: raises ProtocolError with C's reason."""
        if type(value) is dict and len(value) == 3:
            # The common case: a request with exactly its three members.
            method, params, id = value.get("method"), value.get("params"), value.get("id")
            if type(method) is str and type(params) is list and id is not None:
                return cls(REQUEST, method, params, None, None, id)
        if not isinstance(value, dict):
            raise ProtocolError("received bad JSON-RPC message: message is not a JSON object")
        members = dict(value)
        method = members.pop("method", None)
        if "method" in value and not isinstance(method, str):
            raise ProtocolError("received bad JSON-RPC message: method is not a JSON string")
        params = members.pop("params", None)
        result = members.pop("result", None)
        error = members.pop("error", None)
        id = members.pop("id", None)
        if members:
            raise ProtocolError("received bad JSON-RPC message: message has unexpected "
                                f'member "{next(iter(members))}"')
        kind = (REPLY if result is not None else ERROR if error is not None
                else REQUEST if id is not None else NOTIFY)
        msg = cls(kind, method, params, result, error, id)
        problem = msg.invalid()
        if problem:
            raise ProtocolError(f"received bad JSON-RPC message: {problem}")
        return msg

    def invalid(self) -> str | None:
        """``jsonrpc_msg_is_valid``: why this message is malformed, or None."""
        if self.params is not None and not isinstance(self.params, list):
            return '"params" must be JSON array'
        for name, required in zip(_MEMBERS, _PATTERNS[self.type], strict=True):
            if (getattr(self, name) is not None) != required:
                return f'{self.type} must{"" if required else " not"} have "{name}"'
        return None

    def to_json(self) -> dict:
        """``jsonrpc_msg_to_json``, members in the order ovsdb-server writes them."""
        if self.type == REPLY:
            return {"id": self.id, "result": self.result, "error": None}
        if self.type == ERROR:
            return {"id": self.id, "error": self.error}
        if self.type == NOTIFY:
            return {"id": None, "method": self.method, "params": self.params}
        return {"id": self.id, "method": self.method, "params": self.params}

    def encode(self) -> bytes:
        return encode_value(self.to_json())

    def __repr__(self) -> str:
        return f"Message({self.to_json()!r})"


def reply(result, id) -> Message:
    return Message(REPLY, result=result, id=id)


def error_reply(error, id) -> Message:
    """``jsonrpc_create_error``: an error answer to request ``id``."""
    return Message(ERROR, error=error, id=id)


def notify(method: str, params: list) -> Message:
    return Message(NOTIFY, method=method, params=params)


def request(method: str, params: list, id) -> Message:
    return Message(REQUEST, method=method, params=params, id=id)


NO_SYNTAX = object()


def ovsdb_error(tag: str, details: str | None = None, syntax=NO_SYNTAX) -> dict:
    """``ovsdb_error_to_json``, members in the order ovsdb-server writes them.

    ``syntax`` is the offending JSON, serialised with sorted keys as
    ``ovsdb_syntax_error`` does; leave it out when C passes a NULL json.
    """
    error: dict = {}
    if syntax is not NO_SYNTAX:
        error["syntax"] = dumps(syntax, sort_keys=True)
    if details is not None:
        error["details"] = details
    error["error"] = tag
    return error


def syntax_error(syntax, details: str, tag: str = "syntax error") -> dict:
    """``ovsdb_syntax_error(json, tag, details)``; syntax=NO_SYNTAX for a NULL json."""
    return ovsdb_error(tag, details, syntax)


def protocol_error(error) -> dict:
    """An engine ``OpError`` (tag, details, syntax text) as an error object in C's order."""
    out: dict = {}
    if error.syntax is not None:
        out["syntax"] = error.syntax
    if error.details is not None:
        out["details"] = error.details
    out["error"] = error.tag
    return out
