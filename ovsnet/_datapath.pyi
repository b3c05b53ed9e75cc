"""Type stubs of the private compiled module built from native/_datapath.pyx.

Use :class:`ovsnet.datapath.datapath.Datapath`: it documents what the fast
path models and holds the pure-Python reference core with this interface.
"""

from typing import Any

import numpy as np
import numpy.typing as npt
from typing_extensions import Buffer

# OVS's flow_hash_5tuple of a KEY_SIZE-byte flow key.
def flow_hash_5tuple(key: Buffer, basis: int = 0) -> int: ...

class DatapathCore:
    # counters of ovs_dp_stats and dpif-netdev's pmd stats
    n_hit: int
    n_missed: int
    n_mask_hit: int
    n_emc_hit: int
    n_megaflow_hit: int
    n_packets: int
    n_recirc: int

    def __init__(self, table: Any, emc: Any = None) -> None: ...
    # Packets 0..n-1 of (slots, slot_size) uint8 data, int32 lengths, uint32
    # in_ports; optional uint32 NIC hashes and metadata keys. Returns the misses.
    def process(
        self,
        data: npt.NDArray[np.uint8],
        lengths: npt.NDArray[np.int32],
        in_ports: npt.NDArray[np.uint32],
        n: int = -1,
        now_ms: int = 0,
        rss_hashes: npt.NDArray[np.uint32] | None = None,
        md: Any = None,
    ) -> int: ...
    # data[order[start:]] in bursts; returns (next_start, outputs, stopped).
    def run_bursts(
        self,
        data: npt.NDArray[np.uint8],
        lengths: npt.NDArray[np.int32],
        in_ports: npt.NDArray[np.uint32],
        order: npt.NDArray[np.uint32],
        start: int = 0,
        burst: int = 32,
        now_ms: int = 0,
        rss_hashes: npt.NDArray[np.uint32] | None = None,
        md: Any = None,
    ) -> tuple[int, int, bool]: ...
    # [(slot, key bytes, hash), ...] of the last batch's misses.
    def misses(self) -> list[tuple[int, bytes, int]]: ...
    def execute(self, packet: Buffer, key: Buffer, actions: Buffer) -> None: ...
    def reset(self) -> None: ...
    # [(key bytes, packet bytes, hash), ...] of recirculated packets that missed.
    def recirculate(self, now_ms: int = 0) -> list[tuple[bytes, bytes, int]]: ...
    @property
    def pending_recirc(self) -> int: ...
    @property
    def n_dropped_recursion(self) -> int: ...
    @property
    def n_dropped_deferred(self) -> int: ...
    @property
    def n_records(self) -> int: ...
    def count_outputs(self) -> int: ...
    # ("output", port, packet, tunnel key | None), ("userspace", pid, packet,
    # key, userdata), ("recirc", packet, key), in order.
    def records(self) -> list[tuple[Any, ...]]: ...
