"""The megaflow table: masked flows found by tuple-space search, as the kernel datapath does.

What this models, and which parts of Open vSwitch and Linux it mirrors:

* **Tuple-space search** as in the kernel module's ``net/openvswitch/flow_table.c``
  (the out-of-tree copy is ``datapath/flow_table.c`` in OVS before 3.0). A
  megaflow is a flow key, a mask of the same shape (bit set = bit matters,
  see :mod:`ovsnet.datapath.flow_key`) and netlink-encoded actions. Flows
  sharing a mask share one hash table; the masks form an ordered list (the
  kernel's ``mask_array``). A lookup walks the masks in order: AND the key
  with the mask, hash, probe that mask's table, compare; the first match wins
  (``flow_lookup``/``masked_flow_lookup``). ``n_mask_hit`` counts the masks
  probed, as the kernel reports it in ``OVS_DP_ATTR_MEGAFLOW_STATS``.
* **The mask cache** of ``ovs_flow_tbl_lookup_stats``: 256 entries
  (``MC_DEFAULT_HASH_ENTRIES``) of (skb_hash, mask index), probed at the four
  8-bit segments of the packet's hash; a hit tries the cached mask first, a
  full walk remembers where it found the flow, an entry whose lookup missed
  is cleared, a miss replaces the candidate with the smallest skb_hash.
  ``skb_hash`` 0 means "no hash": a plain walk from mask 0. A packet with a
  non-zero ``recirc_id`` has its skb_hash rehashed with it first (the kernel
  uses ``jhash_1word``; we use OVS's ``hash_2words(skb_hash, recirc_id)``).
  The cache is not kept consistent with the mask list, as in the kernel:
  an entry may name a stale index, which only costs a probe.
* **Mask usage and rebalance**: every lookup that finds a flow counts a use
  of its mask; :meth:`rebalance` sorts the masks by uses since the last
  rebalance, most used first, as ``ovs_flow_masks_rebalance`` does every 4 s
  (``DP_MASKS_REBALANCE_INTERVAL``). Ties keep their order (the kernel's
  heapsort does not promise that). New masks are appended; a mask goes when
  its last flow goes, the last mask taking its slot (``tbl_mask_array_del_mask``).
* **Flow limit and idle expiry** as ovs-vswitchd sets them for its
  revalidators (``ofproto/ofproto-dpif-upcall.c``): ``other_config:flow-limit``
  (default 200000) refuses new flows at the limit (:class:`FlowLimitError`,
  which the upcall path counts like ``upcall_flow_limit_hit``), and
  ``other_config:max-idle`` (default 10000 ms) expires a flow whose last use,
  or creation if it was never used, is older than ``now - max_idle``.
* **Flow identity**: each flow has a 16-byte UFID (``OVS_FLOW_ATTR_UFID``).
  Without one, :func:`derive_ufid` makes it from the masked key and the mask:
  four 32-bit words ``hash_bytes(masked_key + mask, basis=i)`` for ``i`` in
  0..3 (OVS's ``hash_bytes``, :mod:`ovsnet.datapath.packet`), each stored
  little-endian. Inserting a flow whose UFID, or whose masked key and mask,
  is already present raises :class:`FlowExistsError` (``EEXIST`` of
  ``ovs_flow_cmd_new``).

Keeping megaflows from overlapping is ovs-vswitchd's job, as in OVS; the
reference table can check it (``check_overlap=True``) for tests.

Two implementations share this API: :class:`ReferenceMegaflowTable` here, plain
Python written to be read next to ``flow_table.c`` (a dict of flows per mask,
keyed by the masked key bytes), and the compiled ``ovsnet._megaflow``
(``native/_megaflow.pyx``), whose C-level ``mf_lookup`` the datapath's batch
loop cimports. :data:`MegaflowTable` is the compiled one when the extension is
built (:data:`IMPLEMENTATION` is then ``"cython"``). Flows are returned as
:class:`FlowView` snapshots.

Removal in the compiled table is RCU-like, as in the kernel and in
``dpif-netdev``: a removed flow is marked dead at once (no lookup returns it
again, nor does the exact-match cache, :mod:`ovsnet.datapath.emc`), but its
memory, and action blobs replaced by :meth:`set_actions`, are reclaimed only
by :meth:`quiesce`, which the datapath calls between batches, when it holds
no flow pointers. The reference table relies on Python's garbage collector.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace
from typing import Any, NamedTuple

import numpy as np

from ovsnet.datapath.flow_key import KEY_SIZE, FlowKey
from ovsnet.datapath.odp_attrs import iter_nla
from ovsnet.datapath.packet import hash_2words, hash_bytes
from ovsnet.errors import DatapathError

__all__ = [
    "DEFAULT_FLOW_LIMIT",
    "DEFAULT_MAX_IDLE_MS",
    "IMPLEMENTATION",
    "MC_HASH_ENTRIES",
    "MC_HASH_SEGS",
    "MC_HASH_SHIFT",
    "UFID_SIZE",
    "FlowExistsError",
    "FlowLimitError",
    "FlowNotFoundError",
    "FlowOverlapError",
    "FlowView",
    "MegaflowTable",
    "ReferenceMegaflowTable",
    "derive_ufid",
    "masked_ufid",
    "native",
    "ufid_reference",
]

#: Entries of the mask cache (the kernel's MC_DEFAULT_HASH_ENTRIES).
MC_HASH_ENTRIES = 256
#: Bits of skb_hash per cache probe (MC_HASH_SHIFT) and probes per lookup (MC_HASH_SEGS).
MC_HASH_SHIFT = 8
MC_HASH_SEGS = 4
#: ovs-vswitchd's other_config:flow-limit default (ofproto.h OFPROTO_FLOW_LIMIT_DEFAULT).
DEFAULT_FLOW_LIMIT = 200_000
#: ovs-vswitchd's other_config:max-idle default (OFPROTO_MAX_IDLE_DEFAULT), in ms.
DEFAULT_MAX_IDLE_MS = 10_000
#: Bytes in a UFID (OVS_FLOW_ATTR_UFID, 128 bits).
UFID_SIZE = 16

_U32 = 0xFFFFFFFF
_U64 = (1 << 64) - 1


# ---------------------------------------------------------------------------
# Errors and flow views
# ---------------------------------------------------------------------------


class FlowExistsError(DatapathError):
    """The flow is already installed: same UFID, or same masked key and mask (EEXIST)."""

    errno = errno.EEXIST


class FlowNotFoundError(DatapathError):
    """No flow has that UFID, or that masked key and mask (ENOENT)."""

    errno = errno.ENOENT


class FlowLimitError(DatapathError):
    """The table holds ``flow_limit`` flows: ovs-vswitchd would not install another."""

    errno = errno.ENOSPC


class FlowOverlapError(DatapathError):
    """A new megaflow would match a packet an installed one matches (``check_overlap``)."""

    errno = errno.EEXIST


class FlowView(NamedTuple):
    """A read-only snapshot of one megaflow, as a flow dump reports it.

    ``key`` is the masked key and ``mask`` the mask, both :data:`KEY_SIZE`
    bytes; ``actions`` the netlink-encoded actions; ``used_ms`` 0 means never
    used; ``tcp_flags`` is the OR of the TCP flags seen (host order);
    ``created_ms`` the ``now_ms`` given to insert.
    """

    ufid: bytes
    key: bytes
    mask: bytes
    actions: bytes
    packets: int
    bytes: int
    used_ms: int
    tcp_flags: int
    created_ms: int


# ---------------------------------------------------------------------------
# Argument checks, shared by both implementations
# ---------------------------------------------------------------------------

_VALID_KEY = (
    f"a FlowKey, {KEY_SIZE} bytes, or a C-contiguous numpy array of "
    f"{KEY_SIZE} uint8 or {KEY_SIZE // 8} uint64"
)


def as_key(name: str, obj: Any) -> bytes:
    """``obj`` (a key or mask) as :data:`KEY_SIZE` bytes, or DatapathError saying what is valid."""
    if isinstance(obj, bytes):
        data = obj
    elif isinstance(obj, FlowKey):
        data = obj.raw
    elif isinstance(obj, np.ndarray):
        if obj.dtype not in (np.uint8, np.uint64) or obj.ndim != 1 or not obj.flags.c_contiguous:
            raise DatapathError(
                f"{name} is a numpy array of dtype {obj.dtype} and shape {obj.shape}: "
                f"must be {_VALID_KEY}"
            )
        data = obj.tobytes()
    elif isinstance(obj, (bytearray, memoryview)):
        view = memoryview(obj)
        if view.ndim != 1 or view.itemsize != 1:
            raise DatapathError(f"{name} must be {_VALID_KEY}, got a buffer of format {view.format!r}")
        data = view.tobytes()
    else:
        raise DatapathError(f"{name} must be {_VALID_KEY}, got {type(obj).__name__}")
    if len(data) != KEY_SIZE:
        raise DatapathError(f"{name} is {len(data)} bytes: must be {_VALID_KEY}")
    return data


def as_ufid(obj: Any) -> bytes:
    """``obj`` as a 16-byte UFID, or DatapathError."""
    if not isinstance(obj, (bytes, bytearray, memoryview)):
        raise DatapathError(f"ufid must be {UFID_SIZE} bytes, got {type(obj).__name__}")
    data = bytes(obj)
    if len(data) != UFID_SIZE:
        raise DatapathError(f"ufid is {len(data)} bytes: must be {UFID_SIZE}")
    return data


def as_actions(obj: Any) -> bytes:
    """Netlink-encoded actions as bytes; the top-level attribute stream must be well formed."""
    if not isinstance(obj, (bytes, bytearray, memoryview)):
        raise DatapathError(
            f"actions must be bytes of netlink attributes (OVS_ACTION_ATTR_*), "
            f"got {type(obj).__name__}"
        )
    data = bytes(obj)
    if len(data) > _U32:
        raise DatapathError(f"actions are {len(data)} bytes: at most {_U32}")
    for _ in iter_nla(data, "actions"):
        pass
    return data


def derive_ufid(masked_key: bytes, mask: bytes) -> bytes:
    """The UFID of a flow inserted without one: 4 words of ``hash_bytes(masked_key + mask, i)``.

    Pure Python; the public name is bound to the compiled version (in
    ``ovsnet._classifier``) when that is built (:data:`ufid_reference` keeps this one).
    """
    return _derive_ufid(masked_key, mask)


def _derive_ufid(masked_key: bytes, mask: bytes) -> bytes:
    data = masked_key + mask
    return b"".join(hash_bytes(data, i).to_bytes(4, "little") for i in range(4))


def masked_ufid(key: bytes, mask: bytes) -> bytes:
    """``derive_ufid(key & mask, mask)``: the UFID :meth:`MegaflowTable.insert`
    gives ``key`` installed under ``mask`` without a UFID. ``key`` and ``mask``
    must be the same length (DatapathError otherwise).

    Pure Python, like :func:`derive_ufid`, and replaced by the compiled version
    in the same way.
    """
    if len(mask) != len(key):
        raise DatapathError(f"mask is {len(mask)} bytes: must be as long as the key "
                            f"({len(key)} bytes)")
    masked = (int.from_bytes(key, "little") & int.from_bytes(mask, "little")).to_bytes(
        len(key), "little")
    return _derive_ufid(masked, bytes(mask))


#: The pure-Python UFID functions: the reference the compiled ones must agree with.
ufid_reference = SimpleNamespace(derive_ufid=derive_ufid, masked_ufid=masked_ufid)

try:
    from ovsnet import _classifier as _ufid_native
except ModuleNotFoundError as error:
    # Only a missing extension falls back; a broken build raises.
    if error.name != "ovsnet._classifier":
        raise
else:
    derive_ufid = _ufid_native.derive_ufid  # noqa: F811
    masked_ufid = _ufid_native.masked_ufid  # noqa: F811


def check_lookup_loop(keys: Any, order: Any, skb_hashes: Any) -> None:
    """The arguments of ``lookup_loop``: DatapathError unless well formed and in range."""
    if (not isinstance(keys, np.ndarray) or keys.dtype != np.uint64 or keys.ndim != 2
            or keys.shape[1] != KEY_SIZE // 8 or not keys.flags.c_contiguous):
        raise DatapathError(
            f"keys must be a C-contiguous (n, {KEY_SIZE // 8}) uint64 array, got "
            f"{getattr(keys, 'dtype', type(keys).__name__)} {getattr(keys, 'shape', '')}"
        )
    n = keys.shape[0]
    for name, arr in (("order", order), ("skb_hashes", skb_hashes)):
        if arr is None and name == "skb_hashes":
            continue
        if (not isinstance(arr, np.ndarray) or arr.dtype != np.uint32 or arr.ndim != 1
                or not arr.flags.c_contiguous):
            raise DatapathError(f"{name} must be a C-contiguous 1-D uint32 array")
    if skb_hashes is not None and skb_hashes.shape[0] != n:
        raise DatapathError(f"skb_hashes has {skb_hashes.shape[0]} entries: must have {n} (one per key)")
    if order.shape[0] and int(order.max()) >= n:
        raise DatapathError(f"order names row {int(order.max())}: keys has {n} rows")


def _uint(name: str, value: Any, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DatapathError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if not 0 <= value <= maximum:
        raise DatapathError(f"{name} is {value}: must be in 0..{maximum}")
    return value


def _apply_mask(key: bytes, mask: bytes) -> bytes:
    return (int.from_bytes(key, "little") & int.from_bytes(mask, "little")).to_bytes(
        KEY_SIZE, "little"
    )


# ---------------------------------------------------------------------------
# Reference implementation
# ---------------------------------------------------------------------------


class _RefMask:
    """A ``sw_flow_mask`` and the flows that use it, keyed by masked key bytes."""

    __slots__ = ("raw", "value", "flows", "usage")

    def __init__(self, raw: bytes):
        self.raw = raw
        self.value = int.from_bytes(raw, "little")
        self.flows: dict[bytes, _RefFlow] = {}
        self.usage = 0  # lookups that found a flow here since the last rebalance

    def probe(self, key_int: int) -> _RefFlow | None:
        return self.flows.get((key_int & self.value).to_bytes(KEY_SIZE, "little"))


class _RefFlow:
    """A ``sw_flow``: masked key, mask, actions and stats; ``dead`` once removed."""

    __slots__ = (
        "ufid", "key", "mask", "actions", "packets", "bytes", "used_ms", "tcp_flags",
        "created_ms", "dead",
    )

    def __init__(self, ufid: bytes, key: bytes, mask: _RefMask, actions: bytes, now_ms: int):
        self.ufid = ufid
        self.key = key
        self.mask = mask
        self.actions = actions
        self.packets = 0
        self.bytes = 0
        self.used_ms = 0
        self.tcp_flags = 0
        self.created_ms = now_ms
        self.dead = False

    def view(self) -> FlowView:
        return FlowView(
            self.ufid, self.key, self.mask.raw, self.actions, self.packets, self.bytes,
            self.used_ms, self.tcp_flags, self.created_ms,
        )


class ReferenceMegaflowTable:
    """Pure-Python megaflow table; see the module docstring for what it models.

    ``flow_limit`` and ``max_idle_ms`` are ovs-vswitchd's ``flow-limit`` and
    ``max-idle``; ``check_overlap`` (reference only) makes :meth:`insert`
    refuse a megaflow that matches a packet some installed megaflow matches.
    """

    def __init__(
        self,
        flow_limit: int = DEFAULT_FLOW_LIMIT,
        max_idle_ms: int = DEFAULT_MAX_IDLE_MS,
        *,
        check_overlap: bool = False,
    ):
        self.flow_limit = _uint("flow_limit", flow_limit, _U32)
        self.max_idle_ms = _uint("max_idle_ms", max_idle_ms, _U64)
        self.check_overlap = bool(check_overlap)
        self._masks: list[_RefMask] = []  # the mask_array, in probe order
        self._by_ufid: dict[bytes, _RefFlow] = {}
        # Mask cache: [skb_hash, mask_index] per entry (struct mask_cache_entry).
        self._mc = [[0, 0] for _ in range(MC_HASH_ENTRIES)]
        #: lookups answered by the mask a cache entry named (the kernel's n_cache_hit)
        self.mask_cache_hits = 0

    # -- lookup (flow_lookup, ovs_flow_tbl_lookup_stats) -----------------------

    def _flow_lookup(self, key_int: int, index: int) -> tuple[_RefFlow | None, int, int, bool]:
        """Try mask ``index`` first, then every other mask in order.

        Returns (flow, index of its mask or the unchanged ``index``, masks probed,
        whether the first try found it).
        """
        masks = self._masks
        probed = 0
        if index < len(masks):
            mask = masks[index]
            probed += 1
            flow = mask.probe(key_int)
            if flow is not None:
                mask.usage += 1
                return flow, index, probed, True
        for i, mask in enumerate(masks):
            if i == index:
                continue
            probed += 1
            flow = mask.probe(key_int)
            if flow is not None:
                mask.usage += 1
                return flow, i, probed, False
        return None, index, probed, False

    def _lookup(self, key: bytes, skb_hash: int) -> tuple[_RefFlow | None, int]:
        key_int = int.from_bytes(key, "little")
        if skb_hash == 0:
            flow, _, probed, _ = self._flow_lookup(key_int, 0)
            return flow, probed
        recirc_id = int.from_bytes(key[4:8], "little")
        if recirc_id:
            skb_hash = hash_2words(skb_hash, recirc_id)
        candidate = None
        h = skb_hash
        for _ in range(MC_HASH_SEGS):
            entry = self._mc[h & (MC_HASH_ENTRIES - 1)]
            if entry[0] == skb_hash:
                flow, entry[1], probed, cached = self._flow_lookup(key_int, entry[1])
                if flow is None:
                    entry[0] = 0
                elif cached:
                    self.mask_cache_hits += 1
                return flow, probed
            if candidate is None or entry[0] < candidate[0]:
                candidate = entry
            h >>= MC_HASH_SHIFT
        assert candidate is not None
        flow, candidate[1], probed, cached = self._flow_lookup(key_int, candidate[1])
        if flow is not None:
            candidate[0] = skb_hash
        return flow, probed

    def lookup(self, key: Any, skb_hash: int = 0) -> tuple[FlowView | None, int]:
        """(the megaflow matching ``key`` or None, number of masks probed).

        Counts a use of the matching flow's mask and updates the mask cache,
        but not the flow's stats (see :meth:`account`).
        """
        flow, probed = self._lookup(as_key("key", key), _uint("skb_hash", skb_hash, _U32))
        return (flow.view() if flow is not None else None), probed

    def lookup_loop(
        self, keys: np.ndarray, order: np.ndarray, skb_hashes: np.ndarray | None = None
    ) -> tuple[int, int]:
        """Look up ``keys[order[i]]`` for every i, with ``skb_hashes[order[i]]`` or 0.

        ``keys`` is a C-contiguous (n, KEY_WORDS) uint64 array, ``order`` a uint32
        array of row indices. Returns (lookups that found a flow, masks probed).
        """
        check_lookup_loop(keys, order, skb_hashes)
        rows = [keys[i].tobytes() for i in range(keys.shape[0])]
        hashes = skb_hashes.tolist() if skb_hashes is not None else [0] * len(rows)
        hits = probed = 0
        for row in order.tolist():
            flow, n = self._lookup(rows[row], hashes[row])
            hits += flow is not None
            probed += n
        return hits, probed

    # -- flow installation and removal ----------------------------------------

    def insert(
        self, key: Any, mask: Any, actions: Any, ufid: Any = None, now_ms: int = 0
    ) -> bytes:
        """Install a megaflow; returns its UFID.

        ``key`` is masked first. Raises :class:`FlowLimitError` when the table
        holds ``flow_limit`` flows, :class:`FlowExistsError` for a duplicate
        UFID or masked key and mask, :class:`FlowOverlapError` when
        ``check_overlap`` finds an overlapping megaflow.
        """
        key_b = as_key("key", key)
        mask_b = as_key("mask", mask)
        actions_b = as_actions(actions)
        now_ms = _uint("now_ms", now_ms, _U64)
        masked = _apply_mask(key_b, mask_b)
        ufid_b = derive_ufid(masked, mask_b) if ufid is None else as_ufid(ufid)
        if len(self._by_ufid) >= self.flow_limit:
            raise FlowLimitError(f"the table holds flow_limit={self.flow_limit} flows")
        if ufid_b in self._by_ufid:
            raise FlowExistsError(f"a flow with ufid {ufid_b.hex()} exists (EEXIST)")
        m = next((m for m in self._masks if m.raw == mask_b), None)
        if m is not None and masked in m.flows:
            raise FlowExistsError(
                f"a flow with this masked key and mask exists, ufid "
                f"{m.flows[masked].ufid.hex()} (EEXIST)"
            )
        if self.check_overlap:
            self._check_overlap(masked, mask_b)
        if m is None:  # flow_mask_insert: a new mask goes at the end
            m = _RefMask(mask_b)
            self._masks.append(m)
        flow = _RefFlow(ufid_b, masked, m, actions_b, now_ms)
        m.flows[masked] = flow
        self._by_ufid[ufid_b] = flow
        return ufid_b

    def _check_overlap(self, masked: bytes, mask: bytes) -> None:
        k = int.from_bytes(masked, "little")
        m = int.from_bytes(mask, "little")
        for other in self._masks:
            common = m & other.value
            for okey, flow in other.flows.items():
                if (k ^ int.from_bytes(okey, "little")) & common == 0:
                    raise FlowOverlapError(
                        f"the new megaflow overlaps the one with ufid {flow.ufid.hex()}: "
                        f"some packet would match both"
                    )

    def _unlink(self, flow: _RefFlow) -> FlowView:
        """ovs_flow_tbl_remove: unhash the flow; its mask goes with its last flow."""
        m = flow.mask
        del m.flows[flow.key]
        del self._by_ufid[flow.ufid]
        flow.dead = True
        if not m.flows:  # tbl_mask_array_del_mask: the last mask takes its slot
            i = self._masks.index(m)
            last = self._masks.pop()
            if i < len(self._masks):
                self._masks[i] = last
        return flow.view()

    def _flow(self, ufid: Any) -> _RefFlow:
        ufid_b = as_ufid(ufid)
        flow = self._by_ufid.get(ufid_b)
        if flow is None:
            raise FlowNotFoundError(f"no flow has ufid {ufid_b.hex()} (ENOENT)")
        return flow

    def get(self, ufid: Any) -> FlowView | None:
        """The flow with this UFID (ovs_flow_tbl_lookup_ufid), or None."""
        flow = self._by_ufid.get(as_ufid(ufid))
        return flow.view() if flow is not None else None

    def find_exact(self, key: Any, mask: Any) -> FlowView | None:
        """The flow with exactly this masked key and mask, or None."""
        key_b, mask_b = as_key("key", key), as_key("mask", mask)
        for m in self._masks:
            if m.raw == mask_b:
                flow = m.flows.get(_apply_mask(key_b, mask_b))
                return flow.view() if flow is not None else None
        return None

    def remove(self, ufid: Any) -> FlowView:
        """Remove the flow with this UFID; returns its last view. FlowNotFoundError if none."""
        return self._unlink(self._flow(ufid))

    def remove_exact(self, key: Any, mask: Any) -> FlowView:
        """Remove the flow with this masked key and mask (flow_cmd_del without UFID)."""
        found = self.find_exact(key, mask)
        if found is None:
            raise FlowNotFoundError("no flow has this masked key and mask (ENOENT)")
        return self._unlink(self._by_ufid[found.ufid])

    def flush(self) -> None:
        """Remove every flow (ovs_flow_tbl_flush)."""
        for flow in list(self._by_ufid.values()):
            self._unlink(flow)

    def set_actions(self, ufid: Any, actions: Any = None, clear_stats: bool = False) -> None:
        """OVS_FLOW_CMD_SET: new actions (None keeps them); ``clear_stats`` as OVS_FLOW_ATTR_CLEAR."""
        flow = self._flow(ufid)
        if actions is not None:
            flow.actions = as_actions(actions)
        if clear_stats:  # ovs_flow_stats_clear
            flow.packets = flow.bytes = flow.used_ms = flow.tcp_flags = 0

    def account(self, ufid: Any, nbytes: int, tcp_flags: int = 0, now_ms: int = 0) -> None:
        """ovs_flow_stats_update: one packet of ``nbytes`` bytes used the flow at ``now_ms``."""
        flow = self._flow(ufid)
        flow.packets += 1
        flow.bytes += _uint("nbytes", nbytes, _U32)
        flow.used_ms = _uint("now_ms", now_ms, _U64)
        flow.tcp_flags |= _uint("tcp_flags", tcp_flags, 0xFFFF)

    def expire(self, now_ms: int) -> list[bytes]:
        """Remove flows idle for more than ``max_idle_ms``; returns their UFIDs (any order).

        As the revalidators do (revalidate_ukey): a never-used flow counts as
        used when it was created; it expires when ``used < now_ms - max_idle_ms``.
        """
        now_ms = _uint("now_ms", now_ms, _U64)
        limit = now_ms - self.max_idle_ms
        gone = [f for f in self._by_ufid.values() if (f.used_ms or f.created_ms) < limit]
        for flow in gone:
            self._unlink(flow)
        return [f.ufid for f in gone]

    def quiesce(self) -> None:
        """Reclaim memory of removed flows: nothing to do here, Python's GC does it."""

    # -- masks ----------------------------------------------------------------

    def rebalance(self) -> None:
        """ovs_flow_masks_rebalance: most used masks first, then reset the use counts."""
        order = sorted(range(len(self._masks)), key=lambda i: -self._masks[i].usage)
        self._masks = [self._masks[i] for i in order]
        for m in self._masks:
            m.usage = 0

    @property
    def n_masks(self) -> int:
        """Masks in the mask list (ovs_flow_tbl_num_masks)."""
        return len(self._masks)

    def masks(self) -> list[bytes]:
        """The masks, in probe order."""
        return [m.raw for m in self._masks]

    def mask_usage(self) -> list[int]:
        """Uses of each mask (in probe order) since the last rebalance."""
        return [m.usage for m in self._masks]

    # -- dumps ----------------------------------------------------------------

    def flows(self) -> Iterator[FlowView]:
        """A snapshot of every flow (any order)."""
        return iter([f.view() for f in self._by_ufid.values()])

    def __len__(self) -> int:
        return len(self._by_ufid)

    def __repr__(self) -> str:
        return f"<ReferenceMegaflowTable {len(self)} flows, {self.n_masks} masks>"

    # -- access for the reference exact-match cache ----------------------------

    def _flow_object(self, ufid: Any) -> _RefFlow:
        return self._flow(ufid)


# ---------------------------------------------------------------------------
# Implementation selection
# ---------------------------------------------------------------------------

native: ModuleType | None
try:
    import ovsnet._megaflow as native
except ModuleNotFoundError as error:
    # Only a missing extension falls back; a broken build raises.
    if error.name != "ovsnet._megaflow":
        raise
    native = None

#: ``"cython"`` when :data:`MegaflowTable` is the compiled table, else ``"python"``.
IMPLEMENTATION = "python"
#: The megaflow table to use: compiled when built, else the reference.
MegaflowTable: Any = ReferenceMegaflowTable

if native is not None:
    IMPLEMENTATION = "cython"
    MegaflowTable = native.MegaflowTable
