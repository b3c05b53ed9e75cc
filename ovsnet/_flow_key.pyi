"""Type stubs of the private compiled module built from native/_flow_key.pyx.

Use :mod:`ovsnet.datapath.flow_key`: it documents the key layout and
extraction, and holds the pure-Python reference implementation.
"""

from typing import Any

import numpy as np
import numpy.typing as npt
from typing_extensions import Buffer

KEY_SIZE: int
KEY_WORDS: int

# {field name: (offset, size)} of the compiled struct flow_key.
def field_offsets() -> dict[str, tuple[int, int]]: ...

# The key of one Ethernet frame as KEY_SIZE bytes; md is None or the bytes of
# a key whose metadata, ct_label, tunnel and Geneve options are copied.
def extract(packet: Buffer, in_port: int, md: bytes | None = None) -> bytes: ...

# Keys of every packet of a PacketBatch (duck-typed: .data, .lengths, .in_ports)
# into the rows of keys_out, a C-contiguous (n, KEY_WORDS) uint64 array.
def extract_batch(batch: Any, keys_out: npt.NDArray[np.uint64]) -> None: ...
