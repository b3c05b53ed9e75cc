"""Read and write classic pcap files (not pcapng), as Open vSwitch does.

Models ``lib/pcap-file.c`` of Open vSwitch, the reader behind
``ovs-ofctl parse-pcap``: a 24-byte global header whose magic number gives the
byte order and the timestamp resolution (0xa1b2c3d4 microseconds, 0xa1b23c4d
nanoseconds, either byte order), then records of a 16-byte header and the
captured bytes. Two link types are read: Ethernet (1), and Linux "cooked"
captures (SLL, 113), which, as OVS does, become Ethernet frames with an
all-zero destination, the SLL source address and the SLL protocol.

Unlike OVS, which stops silently at a record cut short and guesses each
record's byte order from its length, this reader trusts the magic number and
raises :class:`PcapError` -- naming the file, the byte offset, what was found
and what would be valid -- for anything it cannot read: a truncated file or
record, a bad magic number, an unknown link type, a record longer than
:data:`MAX_RECORD` bytes.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from ovsnet.errors import PacketError

__all__ = [
    "LINKTYPE_ETHERNET",
    "LINKTYPE_LINUX_SLL",
    "MAX_RECORD",
    "PcapError",
    "PcapRecord",
    "iter_pcap",
    "read_pcap",
    "write_pcap",
]

LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113
#: Longest record accepted: libpcap's largest snap length (MAXIMUM_SNAPLEN).
MAX_RECORD = 262144

_MAGIC_USEC = 0xA1B2C3D4
_MAGIC_NSEC = 0xA1B23C4D
_GLOBAL_LEN = 24
_RECORD_LEN = 16
_SLL_LEN = 16


class PcapError(PacketError):
    """A pcap file cannot be read (or a packet cannot be written to one)."""


@dataclass(frozen=True)
class PcapRecord:
    """One packet of a pcap file: its bytes (as Ethernet) and capture details."""

    data: bytes
    ts_sec: int = 0
    ts_nsec: int = 0  # nanoseconds, whatever the file's resolution
    orig_len: int = 0  # length on the wire; len(data) when not truncated by the capture


def _read_exact(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    return data if data is not None else b""


def iter_pcap(path: str | os.PathLike[str]) -> Iterator[PcapRecord]:
    """The records of the pcap file at ``path``, one at a time.

    Raises :class:`PcapError` at the first problem (a file that cannot be
    opened included), after yielding every record before it.
    """
    name = os.fspath(path)
    try:
        f = open(name, "rb")  # noqa: SIM115 -- closed by the with below
    except OSError as error:
        raise PcapError(f"{name}: cannot open: {error.strerror or error}") from error
    with f:
        head = _read_exact(f, _GLOBAL_LEN)
        if len(head) < _GLOBAL_LEN:
            raise PcapError(
                f"{name}: not a pcap file: {len(head)} bytes, shorter than the "
                f"{_GLOBAL_LEN}-byte pcap header"
            )
        for order in ("<", ">"):
            magic = struct.unpack_from(order + "I", head)[0]
            if magic in (_MAGIC_USEC, _MAGIC_NSEC):
                break
        else:
            raise PcapError(
                f"{name}: bad magic number 0x{struct.unpack_from('>I', head)[0]:08x} at offset 0: "
                "expected a1b2c3d4 or a1b23c4d in either byte order (pcapng is not supported)"
            )
        nsec = magic == _MAGIC_NSEC
        linktype = struct.unpack_from(order + "I", head, 20)[0]
        if linktype not in (LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL):
            raise PcapError(
                f"{name}: link type {linktype} is not supported: expected "
                f"{LINKTYPE_ETHERNET} (Ethernet) or {LINKTYPE_LINUX_SLL} (Linux SLL)"
            )
        record = struct.Struct(order + "IIII")
        offset = _GLOBAL_LEN
        index = 0
        while True:
            rh = _read_exact(f, _RECORD_LEN)
            if not rh:
                return
            if len(rh) < _RECORD_LEN:
                raise PcapError(
                    f"{name}: packet {index} at offset {offset}: record header cut short "
                    f"({len(rh)} of {_RECORD_LEN} bytes)"
                )
            ts_sec, ts_frac, incl_len, orig_len = record.unpack(rh)
            # The snap length is not checked: writers put 0 or nonsense there.
            if incl_len > MAX_RECORD:
                raise PcapError(
                    f"{name}: packet {index} at offset {offset}: captured length {incl_len} "
                    f"is more than {MAX_RECORD}, the longest a pcap record can be"
                )
            data = _read_exact(f, incl_len)
            if len(data) < incl_len:
                raise PcapError(
                    f"{name}: packet {index} at offset {offset}: cut short: "
                    f"{len(data)} of {incl_len} bytes"
                )
            if linktype == LINKTYPE_LINUX_SLL:
                data = _sll_to_ethernet(name, index, offset, data)
            ts_nsec = ts_frac if nsec else ts_frac * 1000
            yield PcapRecord(data, ts_sec, ts_nsec, orig_len)
            offset += _RECORD_LEN + incl_len
            index += 1


def _sll_to_ethernet(name: str, index: int, offset: int, data: bytes) -> bytes:
    """An Ethernet frame for a Linux SLL record, as ovs_pcap_read builds it."""
    if len(data) < _SLL_LEN:
        raise PcapError(
            f"{name}: packet {index} at offset {offset}: {len(data)} bytes is too short "
            f"for a {_SLL_LEN}-byte Linux SLL header"
        )
    lla_len = struct.unpack_from(">H", data, 4)[0]
    if lla_len != 6:
        raise PcapError(
            f"{name}: packet {index} at offset {offset}: Linux SLL address length "
            f"{lla_len}: only 6-byte (Ethernet) addresses are supported"
        )
    return bytes(6) + data[6:12] + data[14:16] + data[_SLL_LEN:]


def read_pcap(path: str | os.PathLike[str]) -> list[bytes]:
    """The packets of a pcap file, as Ethernet frames."""
    return [r.data for r in iter_pcap(path)]


def write_pcap(
    path: str | os.PathLike[str],
    packets: Iterable[bytes | PcapRecord],
    *,
    byteorder: str = "little",
    nanosecond: bool = False,
    snaplen: int = 65535,
) -> int:
    """Write Ethernet frames to a pcap file; return how many were written.

    Items are bytes-like (timestamped now) or :class:`PcapRecord`.
    ``byteorder`` ("little" or "big") and ``nanosecond`` choose the header
    variant, so tests can produce every kind of file a reader may meet.
    """
    if byteorder not in ("little", "big"):
        raise PcapError(f"byteorder={byteorder!r}: must be 'little' or 'big'")
    if not 0 < snaplen <= MAX_RECORD:
        raise PcapError(f"snaplen={snaplen}: must be in 1..{MAX_RECORD}")
    order = "<" if byteorder == "little" else ">"
    magic = _MAGIC_NSEC if nanosecond else _MAGIC_USEC
    record = struct.Struct(order + "IIII")
    now = time.time_ns()
    count = 0
    with open(os.fspath(path), "wb") as f:
        f.write(struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET))
        for item in packets:
            if isinstance(item, PcapRecord):
                data, sec, ns = item.data, item.ts_sec, item.ts_nsec
                orig = item.orig_len or len(item.data)
            else:
                data, sec, ns = bytes(item), now // 10**9, now % 10**9
                orig = len(data)
            if len(data) > snaplen:
                raise PcapError(
                    f"packet {count} is {len(data)} bytes: more than the snap length {snaplen}"
                )
            frac = ns if nanosecond else ns // 1000
            f.write(record.pack(sec, frac, len(data), max(orig, len(data))))
            f.write(data)
            count += 1
    return count
