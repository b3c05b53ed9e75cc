"""Packet-buffer helpers of the datapath model: checksums, OVS hashes, batches.

What this models, and which part of Open vSwitch or Linux it mirrors:

* **Internet checksum** (RFC 1071) as the kernel computes it for the
  openvswitch module's set actions (``include/net/checksum.h``):
  :func:`csum` is ``csum_partial`` folded to 16 bits, :func:`csum_fold` and
  :func:`checksum` give the complemented value written into a header, and
  :func:`csum_replace2`/:func:`csum_replace4` are the RFC 1624 incremental
  updates of ``csum_replace2``/``csum_replace4`` (the same arithmetic as
  ``inet_proto_csum_replace4``, which ``set_ip_addr`` in
  ``net/openvswitch/actions.c`` applies to TCP/UDP checksums when an address
  in the pseudo-header changes). :func:`l4_pseudo_csum_v4` and
  :func:`l4_pseudo_csum_v6` sum the pseudo-headers of RFC 793/768 and
  RFC 8200 section 8.1 so a TCP/UDP checksum is
  ``csum_fold(csum(l4_bytes, l4_pseudo_csum_v4(...)))``. Every 16-bit value is
  a host int equal to the big-endian reading of the wire bytes (``0x4500``
  is ``45 00``). UDP's rule that a computed 0 is sent as 0xffff
  (``CSUM_MANGLED_0``) is the caller's to apply.

* **Open vSwitch's hash** (``lib/hash.h``, ``lib/hash.c``) in its portable
  murmur3-based variant, the one OVS uses unless built with SSE4.2 or ARM
  CRC32 instructions: :func:`hash_add`, :func:`hash_finish`,
  :func:`hash_bytes`, :func:`hash_words`, :func:`hash_uint64` and friends,
  bit-exact with OVS on little-endian hosts. The mask cache and ``dp_hash``
  of the datapath model key on these.

* **PacketBatch**, a preallocated batch of packets in the spirit of
  ``struct dp_packet_batch`` (``lib/dp-packet.h``; at most
  ``NETDEV_MAX_BURST`` = 32 packets by default): one numpy ``uint8`` buffer
  of ``capacity`` slots of ``slot_size`` bytes, with the packet lengths and
  ``odp_port`` input ports beside it. :func:`batch_hash` stands in for the
  skb hash the kernel datapath computes per packet; :func:`batch_csum` sums a
  byte range of every packet.

* **Address helpers** (:func:`mac_to_bytes`, :func:`bytes_to_mac`,
  :func:`ipv4_to_int`, ...) that read and print addresses the way OVS does
  (``ETH_ADDR_FMT`` is lowercase hex with colons).

Every checksum, hash and batch function has two implementations with the same
name and signature: the pure-Python reference here (straightforward, obviously
correct, slow) and the compiled private module ``ovsnet._packet`` (typed
memoryviews, loops ``with nogil``). The public names of this module are the
compiled ones when ``ovsnet._packet`` is built (:data:`IMPLEMENTATION` is then
``"cython"``), else the reference ones (``"python"``). :data:`reference` and
:data:`native` expose both so tests can run one test body against each.
Both raise the same exceptions: ``TypeError`` for an argument of the wrong
type, ``ValueError`` for one out of range.
"""

from __future__ import annotations

import ipaddress
import operator
import re
from collections.abc import Iterable, Iterator, Sequence
from types import ModuleType, SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ovsnet.errors import PacketError

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "DEFAULT_SLOT_SIZE",
    "IMPLEMENTATION",
    "NETDEV_MAX_BURST",
    "PacketBatch",
    "PacketError",
    "batch_csum",
    "batch_hash",
    "bytes_to_mac",
    "checksum",
    "csum",
    "csum_fold",
    "csum_replace2",
    "csum_replace4",
    "hash_2words",
    "hash_3words",
    "hash_add",
    "hash_add64",
    "hash_bytes",
    "hash_finish",
    "hash_int",
    "hash_uint64",
    "hash_words",
    "int_to_ipv4",
    "ipv4_to_int",
    "ipv6_to_bytes",
    "l4_pseudo_csum_v4",
    "l4_pseudo_csum_v6",
    "mac_to_bytes",
    "native",
    "reference",
]

_U8_MAX = 0xFF
_U16_MAX = 0xFFFF
_U32_MAX = 0xFFFFFFFF
_U64_MAX = 0xFFFFFFFFFFFFFFFF
_I32_MAX = 0x7FFFFFFF

#: Most packets OVS userspace moves in one batch (``lib/dp-packet.h``).
NETDEV_MAX_BURST = 32
#: Default bytes per :class:`PacketBatch` slot: a 1500-byte MTU frame plus
#: room for encapsulation headers, rounded to a power of two.
DEFAULT_SLOT_SIZE = 2048


# ---------------------------------------------------------------------------
# Argument checks shared by the reference functions (the compiled module makes
# the same checks with the same messages)
# ---------------------------------------------------------------------------


def _uint(name: str, value: Any, maximum: int) -> int:
    v = operator.index(value)  # TypeError for floats, str, None, ...
    if v < 0 or v > maximum:
        raise ValueError(f"{name}={value!r} is out of range: must be an int in 0..{maximum:#x}")
    return v


def _buffer(name: str, buf: Any) -> bytes:
    """The bytes of a 1-D, C-contiguous buffer of unsigned bytes."""
    if buf is None:
        raise TypeError(f"Argument '{name}' must not be None")
    view = memoryview(buf)  # TypeError for objects without the buffer protocol
    if view.ndim != 1 or view.format != "B" or not view.c_contiguous:
        raise ValueError(
            f"{name} must be a 1-D C-contiguous buffer of unsigned bytes, got "
            f"format {view.format!r} with {view.ndim} dimension(s)"
        )
    return view.tobytes()


# ---------------------------------------------------------------------------
# Internet checksum (reference)
# ---------------------------------------------------------------------------


def _fold16(total: int) -> int:
    # End-around carry: in ones'-complement arithmetic 0x10000 == 1.
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _csum(data: bytes, total: int) -> int:
    if len(data) % 2:
        data += b"\x00"
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
    return _fold16(total)


# The reference functions call each other only through these private helpers:
# the public names may be rebound to the compiled functions at the end.


def csum(buf: Buffer, initial: int = 0) -> int:
    """Ones'-complement sum of ``buf`` plus the 32-bit partial sum ``initial``.

    The result is folded to 16 bits but not complemented, so it can be passed
    on as ``initial`` of a following call. An odd last byte counts as the high
    byte of a 16-bit word whose low byte is zero.
    """
    return _csum(_buffer("buf", buf), _uint("initial", initial, _U32_MAX))


def csum_fold(partial: int) -> int:
    """The checksum to store in a header for a 32-bit partial sum (kernel ``csum_fold``)."""
    return ~_fold16(_uint("partial", partial, _U32_MAX)) & 0xFFFF


def checksum(buf: Buffer) -> int:
    """The Internet checksum of ``buf`` as stored in a header: ``csum_fold(csum(buf))``.

    A buffer that includes a correct checksum field sums to 0xffff, so its
    ``checksum`` is 0.
    """
    return ~_csum(_buffer("buf", buf), 0) & 0xFFFF


def csum_replace2(check: int, old: int, new: int) -> int:
    """Update header checksum ``check`` for a 16-bit field changed from ``old`` to ``new``.

    RFC 1624 eqn. 3, ``HC' = ~(~HC + ~m + m')``, as the kernel's ``csum_replace2``.
    """
    check = _uint("check", check, _U16_MAX)
    old = _uint("old", old, _U16_MAX)
    new = _uint("new", new, _U16_MAX)
    return ~_fold16((~check & 0xFFFF) + (~old & 0xFFFF) + new) & 0xFFFF


def csum_replace4(check: int, old: int, new: int) -> int:
    """Update header checksum ``check`` for a 32-bit field changed from ``old`` to ``new``.

    RFC 1624 eqn. 3 applied to both 16-bit halves, as the kernel's
    ``csum_replace4`` and ``inet_proto_csum_replace4``.
    """
    check = _uint("check", check, _U16_MAX)
    old = _uint("old", old, _U32_MAX)
    new = _uint("new", new, _U32_MAX)
    total = (~check & 0xFFFF) + (~(old >> 16) & 0xFFFF) + (~old & 0xFFFF)
    total += (new >> 16) + (new & 0xFFFF)
    return ~_fold16(total) & 0xFFFF


def l4_pseudo_csum_v4(src: int, dst: int, proto: int, length: int) -> int:
    """Folded sum of the IPv4 pseudo-header of a TCP or UDP checksum.

    ``src`` and ``dst`` are addresses as ints (see :func:`ipv4_to_int`),
    ``length`` the TCP/UDP header plus payload length in bytes.
    """
    src = _uint("src", src, _U32_MAX)
    dst = _uint("dst", dst, _U32_MAX)
    proto = _uint("proto", proto, _U8_MAX)
    length = _uint("length", length, _U16_MAX)
    pseudo = (
        src.to_bytes(4, "big")
        + dst.to_bytes(4, "big")
        + bytes([0, proto])
        + length.to_bytes(2, "big")
    )
    return _csum(pseudo, 0)


def l4_pseudo_csum_v6(src: Buffer, dst: Buffer, proto: int, length: int) -> int:
    """Folded sum of the IPv6 pseudo-header (RFC 8200 section 8.1).

    ``src`` and ``dst`` are 16-byte addresses (see :func:`ipv6_to_bytes`),
    ``proto`` the upper-layer protocol, ``length`` the upper-layer length.
    """
    src_b = _buffer("src", src)
    dst_b = _buffer("dst", dst)
    if len(src_b) != 16:
        raise ValueError(f"src is {len(src_b)} bytes: an IPv6 address is 16 bytes")
    if len(dst_b) != 16:
        raise ValueError(f"dst is {len(dst_b)} bytes: an IPv6 address is 16 bytes")
    proto = _uint("proto", proto, _U8_MAX)
    length = _uint("length", length, _U32_MAX)
    return _csum(src_b + dst_b + length.to_bytes(4, "big") + bytes([0, 0, 0, proto]), 0)


# ---------------------------------------------------------------------------
# Open vSwitch hash, murmur3-based variant (reference)
# ---------------------------------------------------------------------------


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _U32_MAX


def _hash_add(hash: int, data: int) -> int:
    data = (data * 0xCC9E2D51) & _U32_MAX
    data = _rot(data, 15)
    data = (data * 0x1B873593) & _U32_MAX
    hash = _rot(hash ^ data, 13)
    return (hash * 5 + 0xE6546B64) & _U32_MAX


def _hash_finish(hash: int, final: int) -> int:
    hash ^= final
    hash ^= hash >> 16
    hash = (hash * 0x85EBCA6B) & _U32_MAX
    hash ^= hash >> 13
    hash = (hash * 0xC2B2AE35) & _U32_MAX
    hash ^= hash >> 16
    return hash


def hash_add(hash: int, data: int) -> int:
    """Mix the 32-bit word ``data`` into ``hash`` (one murmur3 round); needs :func:`hash_finish`."""
    return _hash_add(_uint("hash", hash, _U32_MAX), _uint("data", data, _U32_MAX))


def hash_add64(hash: int, data: int) -> int:
    """Mix a 64-bit word into ``hash``: its low 32 bits, then its high 32 bits."""
    hash = _uint("hash", hash, _U32_MAX)
    data = _uint("data", data, _U64_MAX)
    return _hash_add(_hash_add(hash, data & _U32_MAX), data >> 32)


def hash_finish(hash: int, final: int) -> int:
    """Finish a hash built with :func:`hash_add`; ``final`` is by convention the byte count."""
    return _hash_finish(_uint("hash", hash, _U32_MAX), _uint("final", final, _U32_MAX))


def hash_bytes(data: Buffer, basis: int = 0) -> int:
    """OVS ``hash_bytes``: the bytes as little-endian 32-bit words, then a zero-padded tail.

    Unlike MurmurHash3_x86_32, the tail word goes through a full
    :func:`hash_add`; for lengths that are a multiple of 4 the two agree.
    """
    return _hash_bytes(_buffer("data", data), _uint("basis", basis, _U32_MAX))


def _hash_bytes(buf: bytes, hash: int) -> int:
    n = len(buf)
    whole = n - n % 4
    for i in range(0, whole, 4):
        hash = _hash_add(hash, int.from_bytes(buf[i : i + 4], "little"))
    if n % 4:
        hash = _hash_add(hash, int.from_bytes(buf[whole:], "little"))
    return _hash_finish(hash, n & _U32_MAX)


def hash_words(words: Iterable[int], basis: int = 0) -> int:
    """OVS ``hash_words``: hash 32-bit words (a sequence of ints or a uint32 array)."""
    hash = _uint("basis", basis, _U32_MAX)
    n = 0
    for i, word in enumerate(words):
        hash = _hash_add(hash, _uint(f"words[{i}]", word, _U32_MAX))
        n += 1
    return _hash_finish(hash, (n * 4) & _U32_MAX)


def hash_uint64(x: int, basis: int = 0) -> int:
    """OVS ``hash_uint64_basis`` (``hash_uint64`` when ``basis`` is 0)."""
    x = _uint("x", x, _U64_MAX)
    hash = _uint("basis", basis, _U32_MAX)
    return _hash_finish(_hash_add(_hash_add(hash, x & _U32_MAX), x >> 32), 8)


def hash_2words(x: int, y: int) -> int:
    """OVS ``hash_2words``."""
    x = _uint("x", x, _U32_MAX)
    y = _uint("y", y, _U32_MAX)
    return _hash_finish(_hash_add(_hash_add(x, 0), y), 8)


def hash_3words(x: int, y: int, z: int) -> int:
    """OVS ``hash_3words``."""
    x = _uint("x", x, _U32_MAX)
    y = _uint("y", y, _U32_MAX)
    z = _uint("z", z, _U32_MAX)
    return _hash_finish(_hash_add(_hash_add(_hash_add(x, 0), y), z), 12)


def hash_int(x: int, basis: int = 0) -> int:
    """OVS ``hash_int``, which is ``hash_2words(x, basis)``."""
    x = _uint("x", x, _U32_MAX)
    basis = _uint("basis", basis, _U32_MAX)
    return _hash_finish(_hash_add(_hash_add(x, 0), basis), 8)


# ---------------------------------------------------------------------------
# PacketBatch (one Python class for both implementations) and its loops
# ---------------------------------------------------------------------------


class PacketBatch:
    """Up to ``capacity`` packets of at most ``slot_size`` bytes, in preallocated arrays.

    Packet ``i`` is ``data[i, :lengths[i]]`` and arrived on ``odp_port``
    ``in_ports[i]``. :attr:`data` is the whole buffer (bytes past a packet's
    length are unspecified), :attr:`lengths` and :attr:`in_ports` are
    read-only views of the first ``len(batch)`` entries, and :meth:`view`
    gives a writable view of one packet: none of them copy.
    """

    __slots__ = ("_count", "_data", "_in_ports", "_lengths")

    def __init__(self, capacity: int = NETDEV_MAX_BURST, slot_size: int = DEFAULT_SLOT_SIZE):
        capacity = operator.index(capacity)
        slot_size = operator.index(slot_size)
        if capacity < 0:
            raise PacketError(f"capacity={capacity} is invalid: must be 0 or more packets")
        if not 1 <= slot_size <= _I32_MAX:
            raise PacketError(f"slot_size={slot_size} is invalid: must be in 1..{_I32_MAX} bytes")
        self._data = np.zeros((capacity, slot_size), dtype=np.uint8)
        self._lengths = np.zeros(capacity, dtype=np.int32)
        self._in_ports = np.zeros(capacity, dtype=np.uint32)
        self._count = 0

    @classmethod
    def from_packets(
        cls,
        packets: Iterable[Buffer],
        in_ports: int | Sequence[int],
        *,
        slot_size: int = DEFAULT_SLOT_SIZE,
        capacity: int | None = None,
    ) -> PacketBatch:
        """A batch holding ``packets``, from one input port or one port per packet.

        ``capacity`` defaults to the number of packets.
        """
        packets = list(packets)
        try:
            ports = [operator.index(in_ports)] * len(packets)  # type: ignore[arg-type]
        except TypeError:
            ports = list(in_ports)  # type: ignore[arg-type]
            if len(ports) != len(packets):
                raise PacketError(
                    f"got {len(packets)} packets but {len(ports)} in_ports: "
                    "give one port per packet, or a single int for all of them"
                ) from None
        batch = cls(len(packets) if capacity is None else capacity, slot_size)
        if len(packets) > batch.capacity:
            raise PacketError(
                f"got {len(packets)} packets for a batch of capacity {batch.capacity}"
            )
        for k, (packet, port) in enumerate(zip(packets, ports, strict=True)):
            try:
                batch.append(packet, port)
            except (TypeError, ValueError) as error:
                kind = TypeError if isinstance(error, TypeError) else PacketError
                raise kind(f"packets[{k}]: {error}") from error
        return batch

    @property
    def capacity(self) -> int:
        """How many packets the batch can hold."""
        return self._data.shape[0]

    @property
    def slot_size(self) -> int:
        """The longest packet the batch can hold, in bytes."""
        return self._data.shape[1]

    @property
    def data(self) -> npt.NDArray[np.uint8]:
        """The whole ``(capacity, slot_size)`` uint8 buffer (no copy)."""
        return self._data

    @property
    def lengths(self) -> npt.NDArray[np.int32]:
        """Read-only int32 view of the lengths of the packets in the batch."""
        view = self._lengths[: self._count]
        view.flags.writeable = False
        return view

    @property
    def in_ports(self) -> npt.NDArray[np.uint32]:
        """Read-only uint32 view of the input ``odp_port`` of each packet."""
        view = self._in_ports[: self._count]
        view.flags.writeable = False
        return view

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[bytes]:
        for i in range(self._count):
            yield self.packet(i)

    def __repr__(self) -> str:
        return f"<PacketBatch {self._count}/{self.capacity} packets, slot_size={self.slot_size}>"

    def append(self, packet: Buffer, in_port: int) -> int:
        """Copy ``packet`` into the next free slot and return its index."""
        if packet is None:
            raise TypeError("packet must be a bytes-like object, not None")
        payload = np.frombuffer(packet, dtype=np.uint8)
        if payload.size > self.slot_size:
            raise PacketError(
                f"packet of {payload.size} bytes does not fit: slot_size is {self.slot_size} bytes"
            )
        port = _uint("in_port", in_port, _U32_MAX)
        if self._count == self.capacity:
            raise PacketError(f"batch is full: all {self.capacity} slots are in use")
        i = self._count
        self._data[i, : payload.size] = payload
        self._lengths[i] = payload.size
        self._in_ports[i] = port
        self._count += 1
        return i

    def clear(self) -> None:
        """Empty the batch, keeping its buffers."""
        self._count = 0

    def _slot(self, i: int) -> int:
        index = operator.index(i)
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(f"packet index {i} out of range for a batch of {self._count}")
        return index

    def packet(self, i: int) -> bytes:
        """A copy of packet ``i`` (negative ``i`` counts from the end)."""
        index = self._slot(i)
        return self._data[index, : self._lengths[index]].tobytes()

    def view(self, i: int) -> npt.NDArray[np.uint8]:
        """Writable uint8 view of packet ``i``, for rewriting headers in place."""
        index = self._slot(i)
        return self._data[index, : self._lengths[index]]


def _batch_arrays(batch: PacketBatch) -> tuple[np.ndarray, np.ndarray]:
    """``batch.data`` and ``batch.lengths`` after the checks the compiled loops make."""
    data, lengths = batch.data, batch.lengths
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2):
        raise ValueError("batch.data must be a 2-D uint8 array")
    if not (isinstance(lengths, np.ndarray) and lengths.dtype == np.int32 and lengths.ndim == 1):
        raise ValueError("batch.lengths must be a 1-D int32 array")
    if lengths.shape[0] > data.shape[0]:
        raise ValueError(f"batch has {lengths.shape[0]} lengths but only {data.shape[0]} slots")
    for i, length in enumerate(lengths.tolist()):
        if not 0 <= length <= data.shape[1]:
            raise ValueError(
                f"packet {i} of the batch has length {length}: "
                f"must be in 0..{data.shape[1]} (the slot size)"
            )
    return data, lengths


def batch_hash(batch: PacketBatch, basis: int = 0) -> npt.NDArray[np.uint32]:
    """:func:`hash_bytes` of every packet of ``batch``, as a uint32 array."""
    basis = _uint("basis", basis, _U32_MAX)
    data, lengths = _batch_arrays(batch)
    hashes = [_hash_bytes(data[i, :n].tobytes(), basis) for i, n in enumerate(lengths.tolist())]
    return np.array(hashes, dtype=np.uint32)


def batch_csum(
    batch: PacketBatch, offset: int = 0, length: int | None = None, initial: int = 0
) -> npt.NDArray[np.uint16]:
    """:func:`csum` of ``packet[offset:offset + length]`` for every packet, as uint16.

    ``length=None`` sums to the end of each packet; a range past the end of a
    packet is cut short as a Python slice is. A correct IPv4 header sums to
    0xffff: ``batch_csum(batch, offset=14, length=20)`` checks a batch of
    Ethernet frames carrying IPv4 headers without options.
    """
    offset = _uint("offset", offset, _I32_MAX)
    end_cap = None if length is None else offset + _uint("length", length, _I32_MAX)
    initial = _uint("initial", initial, _U32_MAX)
    data, lengths = _batch_arrays(batch)
    sums = [
        _csum(data[i, :n][offset:end_cap].tobytes(), initial)
        for i, n in enumerate(lengths.tolist())
    ]
    return np.array(sums, dtype=np.uint16)


# ---------------------------------------------------------------------------
# Addresses (pure Python only)
# ---------------------------------------------------------------------------

# OVS's ETH_ADDR_SCAN_FMT reads six hex octets separated by colons.
_MAC_RE = re.compile(r"[0-9a-fA-F]{1,2}(?::[0-9a-fA-F]{1,2}){5}")


def mac_to_bytes(mac: str) -> bytes:
    """The 6 bytes of a MAC address written like ``"00:1b:21:3c:4d:5e"`` (any case)."""
    if not isinstance(mac, str):
        raise TypeError(f"MAC address must be a str like '00:11:22:33:44:55', not {mac!r}")
    if not _MAC_RE.fullmatch(mac):
        raise PacketError(
            f"invalid MAC address {mac!r}: expected six hex octets separated by ':', "
            "like '00:11:22:33:44:55'"
        )
    return bytes(int(octet, 16) for octet in mac.split(":"))


def bytes_to_mac(data: Buffer) -> str:
    """A 6-byte MAC address as OVS prints it (``ETH_ADDR_FMT``): ``"00:1b:21:3c:4d:5e"``."""
    raw = _buffer("data", data)
    if len(raw) != 6:
        raise PacketError(f"a MAC address is 6 bytes, got {len(raw)}: {raw!r}")
    return ":".join(f"{octet:02x}" for octet in raw)


def ipv4_to_int(addr: str) -> int:
    """A dotted-quad IPv4 address (``"192.0.2.1"``) as an int (``0xC0000201``)."""
    if not isinstance(addr, str):
        raise TypeError(f"IPv4 address must be a str like '192.0.2.1', not {addr!r}")
    try:
        return int(ipaddress.IPv4Address(addr))
    except ValueError:
        raise PacketError(
            f"invalid IPv4 address {addr!r}: expected four decimal octets 0..255 "
            "without leading zeros, like '192.0.2.1'"
        ) from None


def int_to_ipv4(value: int) -> str:
    """The dotted-quad form of an IPv4 address given as an int."""
    return str(ipaddress.IPv4Address(_uint("value", value, _U32_MAX)))


def ipv6_to_bytes(addr: str) -> bytes:
    """The 16 bytes of an IPv6 address in any RFC 4291 text form (``"2001:db8::1"``)."""
    if not isinstance(addr, str):
        raise TypeError(f"IPv6 address must be a str like '2001:db8::1', not {addr!r}")
    try:
        return ipaddress.IPv6Address(addr).packed
    except ValueError:
        raise PacketError(
            f"invalid IPv6 address {addr!r}: expected RFC 4291 text like '2001:db8::1'"
        ) from None


# ---------------------------------------------------------------------------
# Implementation selection
# ---------------------------------------------------------------------------

#: The pure-Python reference implementations, under their public names.
reference = SimpleNamespace(
    csum=csum,
    csum_fold=csum_fold,
    checksum=checksum,
    csum_replace2=csum_replace2,
    csum_replace4=csum_replace4,
    l4_pseudo_csum_v4=l4_pseudo_csum_v4,
    l4_pseudo_csum_v6=l4_pseudo_csum_v6,
    hash_add=hash_add,
    hash_add64=hash_add64,
    hash_finish=hash_finish,
    hash_bytes=hash_bytes,
    hash_words=hash_words,
    hash_uint64=hash_uint64,
    hash_2words=hash_2words,
    hash_3words=hash_3words,
    hash_int=hash_int,
    batch_hash=batch_hash,
    batch_csum=batch_csum,
)

native: ModuleType | None
try:
    import ovsnet._packet as native
except ModuleNotFoundError as error:
    # Only a missing extension falls back; a broken build raises.
    if error.name != "ovsnet._packet":
        raise
    native = None

#: ``"cython"`` when the public names below are the compiled ones, else ``"python"``.
IMPLEMENTATION = "python"

if native is not None:
    IMPLEMENTATION = "cython"
    csum = native.csum
    csum_fold = native.csum_fold
    checksum = native.checksum
    csum_replace2 = native.csum_replace2
    csum_replace4 = native.csum_replace4
    l4_pseudo_csum_v4 = native.l4_pseudo_csum_v4
    l4_pseudo_csum_v6 = native.l4_pseudo_csum_v6
    hash_add = native.hash_add
    hash_add64 = native.hash_add64
    hash_finish = native.hash_finish
    hash_bytes = native.hash_bytes
    hash_words = native.hash_words
    hash_uint64 = native.hash_uint64
    hash_2words = native.hash_2words
    hash_3words = native.hash_3words
    hash_int = native.hash_int
    batch_hash = native.batch_hash
    batch_csum = native.batch_csum
