# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled packet-buffer helpers: Internet checksum, OVS hash, batch loops.

Private: import the public API from :mod:`ovsnet.datapath.packet`, which holds
a pure-Python reference implementation of every function here under the same
name and signature, and the documentation of what each one models (the
kernel's ``csum_*`` helpers in include/net/checksum.h, Open vSwitch's
lib/hash.h and lib/hash.c, and a userspace ``dp_packet_batch``).

Arguments are validated at Python level, raising the same exceptions as the
reference; the C loops then run ``with nogil`` and cannot fail.
"""

from operator import index as _index

import numpy as np

from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

_U16_MAX = 0xFFFF
_U32_MAX = 0xFFFFFFFF
_U64_MAX = 0xFFFFFFFFFFFFFFFF


# ---------------------------------------------------------------------------
# C-level implementations declared in ovsnet/_packet.pxd (under native/)
# ---------------------------------------------------------------------------

cdef uint16_t inet_csum_partial(const uint8_t *p, size_t n,
                                uint32_t initial) noexcept nogil:
    # Summing big-endian 32-bit words into 64 bits cannot overflow before
    # 2**32 words, and 2**16 == 1 in ones'-complement arithmetic, so one
    # final fold gives the same result as adding 16-bit words one by one.
    cdef uint64_t s = initial
    cdef size_t i = 0
    while i + 4 <= n:
        s += ((<uint32_t>p[i] << 24) | (<uint32_t>p[i + 1] << 16)
              | (<uint32_t>p[i + 2] << 8) | <uint32_t>p[i + 3])
        i += 4
    if i + 2 <= n:
        s += (<uint32_t>p[i] << 8) | <uint32_t>p[i + 1]
        i += 2
    if i < n:
        s += <uint32_t>p[i] << 8
    return inet_csum_fold16(s)


cdef uint16_t inet_pseudo_csum_v6(const uint8_t *src, const uint8_t *dst,
                                  uint8_t proto, uint32_t length) noexcept nogil:
    cdef uint64_t s = inet_csum_partial(src, 16, 0)
    s += inet_csum_partial(dst, 16, 0)
    s += (length >> 16) + (length & 0xFFFF)
    s += proto
    return inet_csum_fold16(s)


cdef inline uint32_t _load_le32(const uint8_t *p) noexcept nogil:
    # Compilers turn this into one unaligned load on little-endian hosts.
    return (<uint32_t>p[0] | (<uint32_t>p[1] << 8)
            | (<uint32_t>p[2] << 16) | (<uint32_t>p[3] << 24))


cdef uint32_t ovs_hash_bytes(const uint8_t *p, size_t n, uint32_t basis) noexcept nogil:
    cdef uint32_t hash = basis
    cdef uint32_t tail = 0
    cdef size_t i = 0
    cdef size_t k
    while i + 4 <= n:
        hash = ovs_hash_add(hash, _load_le32(p + i))
        i += 4
    if i < n:
        for k in range(n - i):
            tail |= <uint32_t>p[i + k] << (8 * k)
        hash = ovs_hash_add(hash, tail)
    # OVS passes the size_t length to a uint32_t parameter: it truncates.
    return ovs_hash_finish(hash, <uint32_t>n)


cdef uint32_t ovs_hash_words(const uint32_t *p, size_t n, uint32_t basis) noexcept nogil:
    cdef uint32_t hash = basis
    cdef size_t i
    for i in range(n):
        hash = ovs_hash_add(hash, p[i])
    return ovs_hash_finish(hash, <uint32_t>(n * 4))


# ---------------------------------------------------------------------------
# Argument checks (Python level, before any nogil section)
# ---------------------------------------------------------------------------

cdef object _check_uint(str name, object value, object maximum):
    """Return ``value`` as a Python int in 0..maximum, or raise like the reference."""
    cdef object v = _index(value)
    if v < 0 or v > maximum:
        raise ValueError(f"{name}={value!r} is out of range: must be an int in 0..{maximum:#x}")
    return v


cdef inline const uint8_t *_ptr(const uint8_t[::1] buf) noexcept nogil:
    return &buf[0] if buf.shape[0] else NULL


cdef object _check_lengths(const uint8_t[:, ::1] data, const int32_t[::1] lengths):
    """Raise ValueError unless there is a slot for every length and each fits its slot."""
    cdef Py_ssize_t n = lengths.shape[0]
    cdef Py_ssize_t slot = data.shape[1]
    cdef Py_ssize_t i, bad = -1
    if n > data.shape[0]:
        raise ValueError(f"batch has {n} lengths but only {data.shape[0]} slots")
    with nogil:
        for i in range(n):
            if lengths[i] < 0 or lengths[i] > slot:
                bad = i
                break
    if bad >= 0:
        raise ValueError(
            f"packet {bad} of the batch has length {lengths[bad]}: "
            f"must be in 0..{slot} (the slot size)"
        )


# ---------------------------------------------------------------------------
# Internet checksum
# ---------------------------------------------------------------------------

def csum(const uint8_t[::1] buf not None, initial=0):
    """Ones'-complement sum of buf plus the 32-bit partial sum initial, folded, not complemented."""
    cdef uint32_t init = _check_uint("initial", initial, _U32_MAX)
    cdef uint16_t r
    with nogil:
        r = inet_csum_partial(_ptr(buf), <size_t>buf.shape[0], init)
    return r


def csum_fold(partial):
    """The checksum to store in a header for a 32-bit partial sum (kernel csum_fold)."""
    return inet_csum_fold(_check_uint("partial", partial, _U32_MAX))


def checksum(const uint8_t[::1] buf not None):
    """The Internet checksum of buf as stored in a header: csum_fold(csum(buf))."""
    cdef uint16_t r
    with nogil:
        r = inet_csum_fold(inet_csum_partial(_ptr(buf), <size_t>buf.shape[0], 0))
    return r


def csum_replace2(check, old, new):
    """RFC 1624 update of checksum check for a 16-bit field changed from old to new."""
    return inet_csum_replace2(
        _check_uint("check", check, _U16_MAX),
        _check_uint("old", old, _U16_MAX),
        _check_uint("new", new, _U16_MAX),
    )


def csum_replace4(check, old, new):
    """RFC 1624 update of checksum check for a 32-bit field changed from old to new."""
    return inet_csum_replace4(
        _check_uint("check", check, _U16_MAX),
        _check_uint("old", old, _U32_MAX),
        _check_uint("new", new, _U32_MAX),
    )


def l4_pseudo_csum_v4(src, dst, proto, length):
    """Folded sum of the IPv4 pseudo-header of a TCP or UDP checksum."""
    return inet_pseudo_csum_v4(
        _check_uint("src", src, _U32_MAX),
        _check_uint("dst", dst, _U32_MAX),
        _check_uint("proto", proto, 0xFF),
        _check_uint("length", length, _U16_MAX),
    )


def l4_pseudo_csum_v6(const uint8_t[::1] src not None, const uint8_t[::1] dst not None,
                      proto, length):
    """Folded sum of the IPv6 pseudo-header (RFC 8200 section 8.1)."""
    if src.shape[0] != 16:
        raise ValueError(f"src is {src.shape[0]} bytes: an IPv6 address is 16 bytes")
    if dst.shape[0] != 16:
        raise ValueError(f"dst is {dst.shape[0]} bytes: an IPv6 address is 16 bytes")
    cdef uint8_t p = _check_uint("proto", proto, 0xFF)
    cdef uint32_t n = _check_uint("length", length, _U32_MAX)
    return inet_pseudo_csum_v6(&src[0], &dst[0], p, n)


# ---------------------------------------------------------------------------
# Open vSwitch hash
# ---------------------------------------------------------------------------

def hash_add(hash, data):
    """Mix the 32-bit word data into hash (OVS hash_add); needs hash_finish."""
    return ovs_hash_add(_check_uint("hash", hash, _U32_MAX),
                        _check_uint("data", data, _U32_MAX))


def hash_add64(hash, data):
    """Mix a 64-bit word into hash, low half first (OVS hash_add64)."""
    return ovs_hash_add64(_check_uint("hash", hash, _U32_MAX),
                          _check_uint("data", data, _U64_MAX))


def hash_finish(hash, final):
    """Finish a hash built with hash_add (OVS hash_finish)."""
    return ovs_hash_finish(_check_uint("hash", hash, _U32_MAX),
                           _check_uint("final", final, _U32_MAX))


def hash_bytes(const uint8_t[::1] data not None, basis=0):
    """OVS hash_bytes: little-endian 32-bit words, then a zero-padded tail word."""
    cdef uint32_t b = _check_uint("basis", basis, _U32_MAX)
    cdef uint32_t r
    with nogil:
        r = ovs_hash_bytes(_ptr(data), <size_t>data.shape[0], b)
    return r


def hash_words(words, basis=0):
    """OVS hash_words: hash 32-bit words (a sequence of ints or a uint32 array)."""
    cdef uint32_t b = _check_uint("basis", basis, _U32_MAX)
    cdef const uint32_t[::1] w
    cdef Py_ssize_t i
    cdef uint32_t r
    if isinstance(words, np.ndarray) and words.dtype == np.uint32 and words.ndim == 1:
        w = np.ascontiguousarray(words)
    else:
        w = np.array(
            [_check_uint(f"words[{i}]", x, _U32_MAX) for i, x in enumerate(words)],
            dtype=np.uint32,
        )
    with nogil:
        r = ovs_hash_words(&w[0] if w.shape[0] else NULL, <size_t>w.shape[0], b)
    return r


def hash_uint64(x, basis=0):
    """OVS hash_uint64_basis (hash_uint64 when basis is 0)."""
    return ovs_hash_uint64_basis(_check_uint("x", x, _U64_MAX),
                                 _check_uint("basis", basis, _U32_MAX))


def hash_int(x, basis=0):
    """OVS hash_int, which is hash_2words(x, basis)."""
    return ovs_hash_2words(_check_uint("x", x, _U32_MAX),
                           _check_uint("basis", basis, _U32_MAX))


def hash_2words(x, y):
    """OVS hash_2words."""
    return ovs_hash_2words(_check_uint("x", x, _U32_MAX), _check_uint("y", y, _U32_MAX))


def hash_3words(x, y, z):
    """OVS hash_3words."""
    return ovs_hash_3words(_check_uint("x", x, _U32_MAX), _check_uint("y", y, _U32_MAX),
                           _check_uint("z", z, _U32_MAX))


# ---------------------------------------------------------------------------
# Batch loops over a PacketBatch (duck-typed: .data 2-D uint8, .lengths int32)
# ---------------------------------------------------------------------------

def batch_hash(batch, basis=0):
    """hash_bytes of every packet of batch, as a uint32 array."""
    cdef uint32_t b = _check_uint("basis", basis, _U32_MAX)
    cdef const uint8_t[:, ::1] data = batch.data
    cdef const int32_t[::1] lengths = batch.lengths
    _check_lengths(data, lengths)
    cdef Py_ssize_t n = lengths.shape[0]
    cdef Py_ssize_t i
    out = np.empty(n, dtype=np.uint32)
    cdef uint32_t[::1] o = out
    with nogil:
        for i in range(n):
            o[i] = ovs_hash_bytes(&data[i, 0], <size_t>lengths[i], b)
    return out


def batch_csum(batch, offset=0, length=None, initial=0):
    """csum of packet[offset:offset + length] for every packet of batch, as uint16."""
    cdef int64_t off = _check_uint("offset", offset, 0x7FFFFFFF)
    cdef int64_t cap = (-1 if length is None
                        else <int64_t>_check_uint("length", length, 0x7FFFFFFF))
    cdef uint32_t init = _check_uint("initial", initial, _U32_MAX)
    cdef const uint8_t[:, ::1] data = batch.data
    cdef const int32_t[::1] lengths = batch.lengths
    _check_lengths(data, lengths)
    cdef Py_ssize_t n = lengths.shape[0]
    cdef Py_ssize_t i
    cdef int64_t end
    out = np.empty(n, dtype=np.uint16)
    cdef uint16_t[::1] o = out
    with nogil:
        for i in range(n):
            # Same bounds as the Python slice pkt[off:off + cap].
            end = lengths[i]
            if cap >= 0 and off + cap < end:
                end = off + cap
            if end > off:
                o[i] = inet_csum_partial(&data[i, off], <size_t>(end - off), init)
            else:
                o[i] = inet_csum_fold16(init)
    return out
