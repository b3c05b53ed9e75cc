# cython: language_level=3
"""C-level declarations of ovsnet._packet, for other Cython modules to cimport.

    from ovsnet._packet cimport ovs_hash_bytes, inet_csum_partial

This file ships inside the package (ovsnet/_packet.pxd), not beside
native/_packet.pyx, because Cython looks a module's own .pxd up by its full
name (ovsnet._packet) in the package layout, and so do other packages that
cimport it.

Two OVS/kernel building blocks live here:

* The Internet checksum (RFC 1071) and its incremental update (RFC 1624), as
  the kernel's ``csum_partial``/``csum_fold``/``csum_replace*`` compute them.
  Every 16-bit value is a host integer equal to the big-endian (network order)
  reading of the wire bytes, so ``0x4500`` is the bytes ``45 00``.
* Open vSwitch's portable murmur3-based hash (lib/hash.h, the variant built
  when OVS is compiled without SSE4.2 or ARM CRC32, as distribution packages
  are). Words are read little-endian, which is what OVS does on x86_64 and
  aarch64 hosts, so results are bit-exact with OVS there.

The tiny primitives are ``cdef inline`` and defined here, so that a cimporting
module inlines them into its own loops; the loops over buffers are declared
here and implemented in _packet.pyx. Nothing here raises: every function is
``noexcept nogil`` and its caller validates arguments first.
"""

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t


# ---------------------------------------------------------------------------
# Internet checksum
# ---------------------------------------------------------------------------

cdef inline uint16_t inet_csum_fold16(uint64_t s) noexcept nogil:
    """Ones'-complement fold of a wide sum to 16 bits (not complemented)."""
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return <uint16_t>s


cdef inline uint16_t inet_csum_fold(uint32_t partial) noexcept nogil:
    """The kernel's csum_fold(): fold a 32-bit partial sum and complement it."""
    return <uint16_t>(~inet_csum_fold16(partial) & 0xFFFF)


cdef inline uint16_t inet_csum_replace2(uint16_t check, uint16_t old,
                                        uint16_t new) noexcept nogil:
    """RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), as the kernel's csum_replace2()."""
    cdef uint64_t s = <uint64_t>(~check & 0xFFFF) + (~old & 0xFFFF) + new
    return <uint16_t>(~inet_csum_fold16(s) & 0xFFFF)


cdef inline uint16_t inet_csum_replace4(uint16_t check, uint32_t old,
                                        uint32_t new) noexcept nogil:
    """RFC 1624 eqn. 3 for a 32-bit field, as the kernel's csum_replace4()."""
    cdef uint64_t s = <uint64_t>(~check & 0xFFFF)
    s += (~(old >> 16) & 0xFFFF) + (~old & 0xFFFF)
    s += (new >> 16) + (new & 0xFFFF)
    return <uint16_t>(~inet_csum_fold16(s) & 0xFFFF)


cdef inline uint16_t inet_pseudo_csum_v4(uint32_t src, uint32_t dst, uint8_t proto,
                                         uint16_t length) noexcept nogil:
    """Folded sum of the IPv4 pseudo-header of a TCP/UDP checksum (RFC 793/768)."""
    cdef uint64_t s = (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF)
    s += proto
    s += length
    return inet_csum_fold16(s)


# Folded ones'-complement sum of n bytes at p (odd tail padded with a zero
# byte), added to the 32-bit partial sum `initial`. p may be NULL when n == 0.
cdef uint16_t inet_csum_partial(const uint8_t *p, size_t n,
                                uint32_t initial) noexcept nogil

# Folded sum of the IPv6 pseudo-header (RFC 8200 section 8.1); src and dst
# point at 16 bytes each.
cdef uint16_t inet_pseudo_csum_v6(const uint8_t *src, const uint8_t *dst,
                                  uint8_t proto, uint32_t length) noexcept nogil


# ---------------------------------------------------------------------------
# Open vSwitch hash (lib/hash.h, murmur3-based variant)
# ---------------------------------------------------------------------------

cdef inline uint32_t ovs_hash_rot(uint32_t x, int k) noexcept nogil:
    return (x << k) | (x >> (32 - k))


cdef inline uint32_t ovs_hash_add(uint32_t hash, uint32_t data) noexcept nogil:
    """One murmur3 body round: mix 'data' into 'hash' (OVS hash_add/mhash_add)."""
    data *= 0xCC9E2D51u
    data = ovs_hash_rot(data, 15)
    data *= 0x1B873593u
    hash ^= data
    hash = ovs_hash_rot(hash, 13)
    return hash * 5u + 0xE6546B64u


cdef inline uint32_t ovs_hash_add64(uint32_t hash, uint64_t data) noexcept nogil:
    """Low 32 bits first, then the high 32 bits (OVS hash_add64)."""
    return ovs_hash_add(ovs_hash_add(hash, <uint32_t>data), <uint32_t>(data >> 32))


cdef inline uint32_t ovs_mhash_finish(uint32_t hash) noexcept nogil:
    """The murmur3 finaliser fmix32 (OVS mhash_finish)."""
    hash ^= hash >> 16
    hash *= 0x85EBCA6Bu
    hash ^= hash >> 13
    hash *= 0xC2B2AE35u
    hash ^= hash >> 16
    return hash


cdef inline uint32_t ovs_hash_finish(uint32_t hash, uint32_t final) noexcept nogil:
    """OVS hash_finish: 'final' is usually the number of bytes hashed."""
    return ovs_mhash_finish(hash ^ final)


cdef inline uint32_t ovs_hash_uint64_basis(uint64_t x, uint32_t basis) noexcept nogil:
    return ovs_hash_finish(ovs_hash_add64(basis, x), 8)


cdef inline uint32_t ovs_hash_2words(uint32_t x, uint32_t y) noexcept nogil:
    return ovs_hash_finish(ovs_hash_add(ovs_hash_add(x, 0), y), 8)


cdef inline uint32_t ovs_hash_3words(uint32_t x, uint32_t y, uint32_t z) noexcept nogil:
    return ovs_hash_finish(ovs_hash_add(ovs_hash_add(ovs_hash_add(x, 0), y), z), 12)


# OVS hash_bytes(): n bytes at p as little-endian 32-bit words, a zero-padded
# tail word, finished with n. p may be NULL when n == 0.
cdef uint32_t ovs_hash_bytes(const uint8_t *p, size_t n, uint32_t basis) noexcept nogil

# OVS hash_words(): n 32-bit words at p, finished with 4 * n.
cdef uint32_t ovs_hash_words(const uint32_t *p, size_t n, uint32_t basis) noexcept nogil
