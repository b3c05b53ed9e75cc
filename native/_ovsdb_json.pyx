# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled fast paths for the JSON of ovsnet's embedded ovsdb-server.

Two functions, each covering the common case and declining everything else
so that the caller's general (pure-Python) code decides, with the exact
behaviour of ``lib/json.c`` that :mod:`ovsnet.ovsdb.server.protocol`
implements:

- :func:`decode_prefix` parses one complete top-level object or array at the
  start of a bytearray when it is plain: ASCII strings without escapes,
  integers that fit in 64 bits, no reals, nesting up to 100 levels. Anything
  else -- including incomplete or malformed input -- returns None.
- :func:`encode` writes a value as compact JSON in UTF-8 bytes, as
  ``json.dumps(value, ensure_ascii=False, separators=(",", ":"))`` followed
  by ``.encode("utf-8", errors)`` would (control characters as ``\\u00XX``,
  everything else verbatim). It raises :class:`Unsupported` for values it
  does not handle (non-finite reals, dict keys that are not strings, types
  other than str, int, float, bool, None, list, tuple and dict, or nesting
  deeper than 500 levels); the caller then uses the standard library.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.math cimport isfinite
from libc.stdint cimport int64_t, uint64_t
from libc.stdio cimport snprintf
from libc.string cimport memcpy


cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object)
    Py_ssize_t PyUnicode_GET_LENGTH(object)
    void *PyUnicode_DATA(object)
    object PyUnicode_DecodeASCII(const char *, Py_ssize_t, const char *)
    long long PyLong_AsLongLongAndOverflow(object, int *) except? -1


class Unsupported(Exception):
    """The value needs the general encoder."""


# -- decoding ------------------------------------------------------------------------

cdef object _NO = object()      # "not the plain case": the caller falls back
cdef int MAX_FAST_DEPTH = 100

cdef struct Cursor:
    const unsigned char *s
    Py_ssize_t pos
    Py_ssize_t n


cdef inline void _skip_space(Cursor *c) noexcept:
    cdef unsigned char ch
    while c.pos < c.n:
        ch = c.s[c.pos]
        if ch == 32 or ch == 10 or ch == 13 or ch == 9:
            c.pos += 1
        else:
            return


cdef object _string(Cursor *c):
    """A string without escapes or control or non-ASCII characters (c.pos at the quote)."""
    cdef Py_ssize_t start = c.pos + 1
    cdef Py_ssize_t i = start
    cdef unsigned char ch
    while i < c.n:
        ch = c.s[i]
        if ch == 34:
            c.pos = i + 1
            return PyUnicode_DecodeASCII(<const char *>c.s + start, i - start, NULL)
        if ch == 92 or ch < 32 or ch >= 128:
            return _NO
        i += 1
    return _NO


cdef object _integer(Cursor *c):
    """An integer (no fraction or exponent) of at most 18 digits."""
    cdef Py_ssize_t i = c.pos
    cdef bint negative = False
    cdef int64_t value = 0
    cdef int digits = 0
    if c.s[i] == 45:  # '-'
        negative = True
        i += 1
    if i >= c.n or not (48 <= c.s[i] <= 57):
        return _NO
    if c.s[i] == 48 and i + 1 < c.n and 48 <= c.s[i + 1] <= 57:
        return _NO  # leading zero: a syntax error for the general parser to report
    while i < c.n and 48 <= c.s[i] <= 57:
        value = value * 10 + (c.s[i] - 48)
        digits += 1
        if digits > 18:
            return _NO
        i += 1
    if i >= c.n or c.s[i] == 46 or c.s[i] == 101 or c.s[i] == 69:  # end, '.', 'e', 'E'
        return _NO
    c.pos = i
    return -value if negative else value


cdef inline bint _word(Cursor *c, const char *word, Py_ssize_t n) noexcept:
    cdef Py_ssize_t k
    if c.pos + n > c.n:
        return False
    for k in range(n):
        if c.s[c.pos + k] != <unsigned char>word[k]:
            return False
    c.pos += n
    return True


cdef object _value(Cursor *c, int depth):
    cdef unsigned char ch
    _skip_space(c)
    if c.pos >= c.n:
        return _NO
    ch = c.s[c.pos]
    if ch == 123:  # {
        return _object(c, depth + 1)
    if ch == 91:  # [
        return _array(c, depth + 1)
    if ch == 34:
        return _string(c)
    if ch == 45 or 48 <= ch <= 57:
        return _integer(c)
    if ch == 116:
        return True if _word(c, "true", 4) else _NO
    if ch == 102:
        return False if _word(c, "false", 5) else _NO
    if ch == 110:
        return None if _word(c, "null", 4) else _NO
    return _NO


cdef object _object(Cursor *c, int depth):
    cdef dict out = {}
    cdef object key, value
    if depth > MAX_FAST_DEPTH:
        return _NO
    c.pos += 1
    _skip_space(c)
    if c.pos < c.n and c.s[c.pos] == 125:
        c.pos += 1
        return out
    while True:
        _skip_space(c)
        if c.pos >= c.n or c.s[c.pos] != 34:
            return _NO
        key = _string(c)
        if key is _NO:
            return _NO
        _skip_space(c)
        if c.pos >= c.n or c.s[c.pos] != 58:  # ':'
            return _NO
        c.pos += 1
        value = _value(c, depth)
        if value is _NO:
            return _NO
        out[key] = value
        _skip_space(c)
        if c.pos >= c.n:
            return _NO
        if c.s[c.pos] == 44:  # ','
            c.pos += 1
        elif c.s[c.pos] == 125:  # '}'
            c.pos += 1
            return out
        else:
            return _NO


cdef object _array(Cursor *c, int depth):
    cdef list out = []
    cdef object value
    if depth > MAX_FAST_DEPTH:
        return _NO
    c.pos += 1
    _skip_space(c)
    if c.pos < c.n and c.s[c.pos] == 93:
        c.pos += 1
        return out
    while True:
        value = _value(c, depth)
        if value is _NO:
            return _NO
        out.append(value)
        _skip_space(c)
        if c.pos >= c.n:
            return _NO
        if c.s[c.pos] == 44:
            c.pos += 1
        elif c.s[c.pos] == 93:  # ']'
            c.pos += 1
            return out
        else:
            return _NO


def decode_prefix(bytearray buf):
    """``(value, end)`` for a plain object or array at the start of ``buf`` (after
    whitespace), ``end`` being the offset just past it; None otherwise."""
    cdef Cursor c
    c.s = <const unsigned char *>PyByteArray_AS_STRING(buf)
    c.n = PyByteArray_GET_SIZE(buf)
    c.pos = 0
    _skip_space(&c)
    if c.pos >= c.n or (c.s[c.pos] != 123 and c.s[c.pos] != 91):
        return None
    value = _value(&c, 0)
    if value is _NO:
        return None
    return value, c.pos


# -- encoding ------------------------------------------------------------------------

cdef int MAX_ENCODE_DEPTH = 500

cdef struct Out:
    char *data
    Py_ssize_t length
    Py_ssize_t capacity


cdef int _reserve(Out *o, Py_ssize_t extra) except -1:
    cdef Py_ssize_t want = o.length + extra
    cdef Py_ssize_t capacity
    cdef char *data
    if want <= o.capacity:
        return 0
    capacity = o.capacity * 2
    if capacity < want:
        capacity = want
    data = <char *>PyMem_Realloc(o.data, capacity)
    if data == NULL:
        raise MemoryError()
    o.data = data
    o.capacity = capacity
    return 0


cdef inline int _put(Out *o, const char *s, Py_ssize_t n) except -1:
    if o.length + n > o.capacity:
        _reserve(o, n)
    memcpy(o.data + o.length, s, n)
    o.length += n
    return 0


cdef const char *_HEX = "0123456789abcdef"


cdef int _escaped(Out *o, const unsigned char *s, Py_ssize_t n) except -1:
    """A JSON string literal of UTF-8 bytes, escaped as json.dumps does."""
    cdef Py_ssize_t i, run = 0
    cdef unsigned char ch
    cdef char esc[6]
    _reserve(o, n + 2)
    o.data[o.length] = 34
    o.length += 1
    for i in range(n):
        ch = s[i]
        if ch >= 32 and ch != 34 and ch != 92:
            continue
        _put(o, <const char *>s + run, i - run)
        run = i + 1
        if ch == 34:
            _put(o, "\\\"", 2)
        elif ch == 92:
            _put(o, "\\\\", 2)
        elif ch == 10:
            _put(o, "\\n", 2)
        elif ch == 13:
            _put(o, "\\r", 2)
        elif ch == 9:
            _put(o, "\\t", 2)
        elif ch == 8:
            _put(o, "\\b", 2)
        elif ch == 12:
            _put(o, "\\f", 2)
        else:
            esc[0] = 92
            esc[1] = 117
            esc[2] = 48
            esc[3] = 48
            esc[4] = _HEX[ch >> 4]
            esc[5] = _HEX[ch & 15]
            _put(o, esc, 6)
    _put(o, <const char *>s + run, n - run)
    _put(o, "\"", 1)
    return 0


cdef int _encode(Out *o, object value, int depth, str errors) except -1:
    cdef type t = type(value)
    cdef int overflow = 0
    cdef long long number
    cdef char digits[32]
    cdef int k
    cdef bint first
    cdef bytes data
    if t is str:
        if PyUnicode_IS_ASCII(value):
            _escaped(o, <const unsigned char *>PyUnicode_DATA(value),
                     PyUnicode_GET_LENGTH(value))
        else:
            data = (<str>value).encode("utf-8", errors)
            _escaped(o, <const unsigned char *>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
    elif t is int:
        number = PyLong_AsLongLongAndOverflow(value, &overflow)
        if overflow:
            data = repr(value).encode("ascii")
            _put(o, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
        else:
            k = snprintf(digits, sizeof(digits), "%lld", number)
            _put(o, digits, k)
    elif value is None:
        _put(o, "null", 4)
    elif value is True:
        _put(o, "true", 4)
    elif value is False:
        _put(o, "false", 5)
    elif t is list or t is tuple:
        if depth >= MAX_ENCODE_DEPTH:
            raise Unsupported("nesting too deep")
        _put(o, "[", 1)
        first = True
        for item in value:
            if not first:
                _put(o, ",", 1)
            first = False
            _encode(o, item, depth + 1, errors)
        _put(o, "]", 1)
    elif t is dict:
        if depth >= MAX_ENCODE_DEPTH:
            raise Unsupported("nesting too deep")
        _put(o, "{", 1)
        first = True
        for key, item in (<dict>value).items():
            if type(key) is not str:
                raise Unsupported("dict key that is not a string")
            if not first:
                _put(o, ",", 1)
            first = False
            _encode(o, key, depth + 1, errors)
            _put(o, ":", 1)
            _encode(o, item, depth + 1, errors)
        _put(o, "}", 1)
    elif t is float:
        if not isfinite(<double>value):
            raise Unsupported("non-finite real")
        data = float.__repr__(value).encode("ascii")
        _put(o, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
    else:
        raise Unsupported(f"type {t.__name__}")
    return 0


cdef bytes _finish(Out *o):
    try:
        return PyBytes_FromStringAndSize(o.data, o.length)
    finally:
        PyMem_Free(o.data)
        o.data = NULL


def encode(value, str errors="strict"):
    """Compact JSON of ``value`` in UTF-8 (``errors`` as for ``str.encode``)."""
    cdef Out o
    o.data = <char *>PyMem_Malloc(256)
    if o.data == NULL:
        raise MemoryError()
    o.length = 0
    o.capacity = 256
    try:
        _encode(&o, value, 0, errors)
    except BaseException:
        PyMem_Free(o.data)
        raise
    return _finish(&o)


def encode_reply(result, id, str errors="strict"):
    """``{"id":<id>,"result":<result>,"error":null}``, as :func:`encode` writes it."""
    cdef Out o
    o.data = <char *>PyMem_Malloc(256)
    if o.data == NULL:
        raise MemoryError()
    o.length = 0
    o.capacity = 256
    try:
        _put(&o, "{\"id\":", 6)
        _encode(&o, id, 1, errors)
        _put(&o, ",\"result\":", 10)
        _encode(&o, result, 1, errors)
        _put(&o, ",\"error\":null}", 14)
    except BaseException:
        PyMem_Free(o.data)
        raise
    return _finish(&o)
