"""The datapath object: one per host, shared by all of the host's bridges.

What this models:

* **The kernel datapath** (``type="system"``, named ``ovs-system``):
  ``ovs_vport_receive`` -> ``ovs_flow_key_extract`` -> ``ovs_flow_tbl_lookup_stats``
  (megaflow table with the mask cache keyed by the packet hash) -> on a hit
  ``ovs_execute_actions``, on a miss an upcall (``OVS_PACKET_CMD_MISS``) to
  ``ovs-vswitchd`` (net/openvswitch/datapath.c, ``ovs_dp_process_packet``).
  Counters as ``struct ovs_dp_stats``: ``hit``, ``missed``, ``lost``,
  ``mask_hit``; ``masks`` and ``flows`` as ``ovs-dpctl show`` prints them.
* **The userspace datapath** (``type="netdev"``, named ``ovs-netdev``):
  ``dp_netdev_input`` (lib/dpif-netdev.c) puts an exact-match cache in front of
  the same megaflow table (which dpif-netdev calls dpcls), with the counters of
  ``dpif-netdev/pmd-stats-show``: ``emc_hit``, ``megaflow_hit``, ``miss``
  (upcalls), ``lost``.
* **Upcalls**: misses are collected over a whole batch and handed up once, as
  ``ovs-vswitchd``'s handler threads read them in batches
  (ofproto-dpif-upcall.c ``recv_upcalls``). The handler returns actions and a
  mask per miss; the datapath installs the megaflow (``OVS_FLOW_CMD_NEW``,
  unless the flow limit is reached, as ``should_install_flow`` refuses) and
  executes the packet (``OVS_PACKET_CMD_EXECUTE``). ``userspace()`` actions
  produce ``action`` upcalls (``OVS_PACKET_CMD_ACTION``) the same way.
* **Vports** (``ovs_vport_receive`` and ``ovs_vport_send``, datapath.c and
  vport.c): :meth:`Datapath.receive_frame` hands a frame to its port's
  vport first -- a tunnel vport decapsulates it and its tunnel metadata
  becomes part of the flow key, as ``ovs_flow_key_extract`` copies the skb's
  ``ip_tunnel_info`` -- and with ``deliver=True`` every output goes to the
  output port's vport, which sends it (a tunnel vport encapsulates with the
  egress tunnel key of ``set(tunnel(...))``). An output to a port number the
  datapath does not have is dropped, as ``do_output`` frees the skb when
  ``ovs_vport_rcu`` finds no vport; the kernel counts that nowhere, ovsnet
  counts it in :attr:`DatapathStats.tx_no_port`.
* **Revalidation of idle flows**: :meth:`Datapath.expire` deletes megaflows idle
  longer than ``max_idle_ms``, as ``ovs-vswitchd``'s revalidators do with
  ``other_config:max-idle`` (default 10 s).

Two implementations of the fast path sit behind one :class:`Datapath` API:
the compiled core (``ovsnet._datapath``: extraction, EMC, megaflow lookup and
actions for a whole batch in one C loop without the GIL) and a pure-Python
reference built from the reference flow-key extractor, megaflow table, EMC and
action executor. Tests run one body against both.

Ports are datapath port numbers (``odp_port``), not OpenFlow ``ofport``s: port
0 is the datapath's own internal port (named after the datapath), the others
are numbered as :mod:`ovsnet.topology.dpports` assigns them.
"""

from __future__ import annotations

import ipaddress
import operator
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import numpy as np

from ovsnet.datapath import actions as _actions
from ovsnet.datapath import emc as _emc
from ovsnet.datapath import flow_key as _fk
from ovsnet.datapath import megaflow as _mf
from ovsnet.datapath.actions import flow_hash_5tuple
from ovsnet.datapath.flow_key import FIELD_BY_NAME, KEY_SIZE, KEY_WORDS, FlowKey, Tunnel
from ovsnet.datapath.packet import DEFAULT_SLOT_SIZE, NETDEV_MAX_BURST, PacketBatch
from ovsnet.errors import DatapathError, PacketError

__all__ = [
    "DATAPATH_TYPES",
    "BatchResult",
    "Datapath",
    "DatapathStats",
    "DropHandler",
    "Output",
    "OutputHandler",
    "Transmit",
    "Upcall",
    "UpcallReply",
    "flow_hash_5tuple",
    "mask_of",
    "tunnel_of_key",
]

#: datapath type -> the name OVS gives the datapath (and its local port 0)
DATAPATH_TYPES = {"system": "ovs-system", "netdev": "ovs-netdev"}

#: how many recirculation passes one batch may take before the rest is dropped
#: (a loop guard: ovs-vswitchd never installs recirculation loops, and the
#: kernel bounds recursion with OVS_RECURSION_LIMIT)
MAX_RECIRC_PASSES = 32



# ---------------------------------------------------------------------------
# Helpers shared by both cores
# ---------------------------------------------------------------------------


def _tcp_flags(key: bytes) -> int:
    if key[83] == 6 and key[44:46] in (b"\x08\x00", b"\x86\xdd"):
        return int.from_bytes(key[92:94], "big")
    return 0


def mask_of(*fields: str, **partial: int | bytes) -> bytes:
    """A megaflow mask matching the named key fields exactly.

    ``mask_of("in_port", "dl_dst", nw_dst=0xFFFFFF00)`` matches ``in_port`` and
    ``dl_dst`` exactly and the first 24 bits of ``nw_dst``. Integer values of
    ``partial`` are written in the field's byte order.
    """
    mask = bytearray(KEY_SIZE)
    for name in fields:
        f = _field(name)
        mask[f.offset : f.offset + f.size] = b"\xff" * f.size
    for name, value in partial.items():
        f = _field(name)
        if isinstance(value, int):
            order = "little" if f.kind in ("u8", "u16", "u32") else "big"
            value = value.to_bytes(f.size, order)
        if len(value) != f.size:
            raise DatapathError(f"mask for {name} is {len(value)} bytes: the field is {f.size}")
        mask[f.offset : f.offset + f.size] = value
    return bytes(mask)


def _field(name: str):
    try:
        return FIELD_BY_NAME[name]
    except KeyError:
        raise DatapathError(
            f"unknown flow key field {name!r}; fields: {', '.join(FIELD_BY_NAME)}"
        ) from None


def tunnel_of_key(key: Any) -> Tunnel | None:
    """The tunnel fields of a flow key as :class:`~ovsnet.datapath.flow_key.Tunnel`.

    None when the key has no tunnel destination (no tunnel metadata). This is
    how an output's egress tunnel key (:attr:`Output.tunnel`) becomes the
    ``ip_tunnel_info`` a tunnel vport encapsulates with.
    """
    raw = _key_bytes("key", key)
    f = FIELD_BY_NAME

    def get(name: str) -> bytes:
        return raw[f[name].offset : f[name].offset + f[name].size]

    def host(name: str) -> int:
        return int.from_bytes(get(name), sys.byteorder)

    dst4, dst6 = get("tun_ipv4_dst"), get("tun_ipv6_dst")
    if dst4 == bytes(4) and dst6 == bytes(16):
        return None
    opts = get("tun_opts")[: host("tun_opts_len")]
    common = dict(tun_id=int.from_bytes(get("tun_id"), "big"), tos=host("tun_tos"),
                  ttl=host("tun_ttl"), tp_src=int.from_bytes(get("tun_tp_src"), "big"),
                  tp_dst=int.from_bytes(get("tun_tp_dst"), "big"), flags=host("tun_flags"),
                  geneve_opts=opts)
    if dst4 != bytes(4):
        return Tunnel(ipv4_src=str(ipaddress.IPv4Address(get("tun_ipv4_src"))),
                      ipv4_dst=str(ipaddress.IPv4Address(dst4)), **common)
    return Tunnel(ipv6_src=str(ipaddress.IPv6Address(get("tun_ipv6_src"))),
                  ipv6_dst=str(ipaddress.IPv6Address(dst6)), **common)


def _key_bytes(name: str, key: Any) -> bytes:
    if isinstance(key, FlowKey):
        return key.raw
    try:
        raw = bytes(key)
    except TypeError:
        raise DatapathError(f"{name} must be a FlowKey or {KEY_SIZE} bytes") from None
    if len(raw) != KEY_SIZE:
        raise DatapathError(f"{name} is {len(raw)} bytes: a flow key is {KEY_SIZE} bytes")
    return raw


# ---------------------------------------------------------------------------
# Upcalls
# ---------------------------------------------------------------------------


class Upcall(NamedTuple):
    """A packet handed from the datapath to ``ovs-vswitchd``.

    ``kind`` is ``"miss"`` (no megaflow matched: ``OVS_PACKET_CMD_MISS``) or
    ``"action"`` (a ``userspace()`` action: ``OVS_PACKET_CMD_ACTION``, with the
    action's ``pid`` and ``userdata``).
    """

    kind: str
    packet: bytes
    key: FlowKey
    hash: int
    pid: int = 0
    userdata: bytes | None = None


@dataclass(frozen=True)
class UpcallReply:
    """What the handler decided for a miss.

    ``actions`` are netlink-encoded datapath actions (see
    :mod:`ovsnet.datapath.odp_attrs`); ``mask`` the megaflow mask to install
    with the packet's key, or ``None`` to execute the packet without
    installing anything (a slow-pathed flow); ``ufid`` an optional 16-byte
    flow id.
    """

    actions: bytes
    mask: bytes | None
    ufid: bytes | None = None


class UpcallHandler(Protocol):
    def __call__(self, upcalls: Sequence[Upcall]) -> Sequence[UpcallReply | None]: ...


def _output_actions(port: int | None) -> bytes:
    from ovsnet.datapath.odp_attrs import ActionAttr, nla_u32

    return b"" if port is None else nla_u32(ActionAttr.OUTPUT, port)


class OutputHandler:
    """A trivial upcall handler: every miss gets ``output:PORT``.

    The megaflow matches ``mask_fields`` exactly (by default ``in_port`` and
    the Ethernet header, as a MAC-learning switch would). ``action`` upcalls
    are ignored. The OpenFlow pipeline replaces this handler.
    """

    def __init__(self, port: int, mask_fields: Iterable[str] = ("in_port", "dl_dst", "dl_src", "dl_type")):
        self.port = operator.index(port)
        self.mask = mask_of(*mask_fields)
        self.actions = _output_actions(self.port)

    def __call__(self, upcalls: Sequence[Upcall]) -> list[UpcallReply | None]:
        return [
            UpcallReply(self.actions, self.mask) if u.kind == "miss" else None for u in upcalls
        ]


class DropHandler(OutputHandler):
    """A trivial upcall handler: every miss gets a drop megaflow on ``mask_fields``."""

    def __init__(self, mask_fields: Iterable[str] = ("in_port",)):
        self.port = None
        self.mask = mask_of(*mask_fields)
        self.actions = b""


# ---------------------------------------------------------------------------
# Results and statistics
# ---------------------------------------------------------------------------


class Output(NamedTuple):
    """A packet the datapath sent to a port; ``tunnel`` is the egress tunnel key
    (a flow key whose tunnel fields a ``set(tunnel(...))`` filled) or None."""

    port: int
    packet: bytes
    tunnel: FlowKey | None = None


class Transmit(NamedTuple):
    """A frame that left the datapath through port ``port``'s vport (``deliver=True``):
    for a tunnel vport an encapsulated wire frame (one per fragment)."""

    port: int
    frame: bytes


@dataclass
class BatchResult:
    """What one call of :meth:`Datapath.process` (or a ``receive_*`` method) did.

    ``outputs`` are what the actions output, per port; with ``deliver=True``
    ``transmitted`` holds what the vports sent for them, and ``tx_dropped``
    counts outputs of which nothing left (dropped by the vport, counted in
    its ``stats``/``drops``, or sent to a port number the datapath lacks).
    ``rx_dropped`` counts frames the receiving vport dropped before the
    datapath saw them (bad outer headers of a tunnel, ...).
    """

    outputs: list[Output] = field(default_factory=list)
    upcalls: list[Upcall] = field(default_factory=list)
    hit: int = 0
    missed: int = 0
    lost: int = 0
    installed: int = 0
    transmitted: list[Transmit] = field(default_factory=list)
    tx_dropped: int = 0
    rx_dropped: int = 0


@dataclass(frozen=True)
class DatapathStats:
    """``ovs-dpctl show`` counters, plus dpif-netdev's for a netdev datapath."""

    hit: int
    missed: int
    lost: int
    mask_hit: int
    masks: int
    flows: int
    emc_hit: int = 0
    megaflow_hit: int = 0
    upcalls: int = 0
    flow_limit_hit: int = 0
    recirculations: int = 0
    packets: int = 0
    #: outputs to a port number without a port (delivered runs only; ovsnet's
    #: own count: the kernel frees those packets without counting them)
    tx_no_port: int = 0

    @property
    def masks_hit_per_pkt(self) -> float:
        """``masks: hit:H total:T hit/pkt:X`` of ``ovs-dpctl show``."""
        lookups = self.hit + self.missed
        return self.mask_hit / lookups if lookups else 0.0


# ---------------------------------------------------------------------------
# The pure-Python reference core (same interface as ovsnet._datapath.DatapathCore)
# ---------------------------------------------------------------------------


class _ReferenceCore:
    """The fast path in plain Python, written to be read next to
    ``ovs_dp_process_packet`` and ``dp_netdev_input``."""

    def __init__(self, table: Any, emc: Any | None):
        self.table = table
        self.emc = emc
        self.n_hit = self.n_missed = self.n_mask_hit = 0
        self.n_emc_hit = self.n_megaflow_hit = self.n_packets = self.n_recirc = 0
        self.n_dropped_recursion = self.n_dropped_deferred = 0
        self._records: list[tuple] = []
        self._misses: list[tuple[int, bytes, int]] = []
        self._recirc_scan = 0

    def _lookup(self, key: bytes, h: int) -> Any:
        flow = None
        if self.emc is not None:
            flow = self.emc.lookup(key, h)
            if flow is not None:
                self.n_emc_hit += 1
        if flow is None:
            flow, n_mask_hit = self.table.lookup(key, h)
            self.n_mask_hit += n_mask_hit
            if flow is not None:
                self.n_megaflow_hit += 1
                if self.emc is not None:
                    self.emc.probabilistic_insert(key, h, self.table, flow.ufid)
        return flow

    def _run_actions(self, packet: bytes, key: bytes, actions: bytes, level: int = 1,
                     deferred: int = 0) -> None:
        result = _actions.reference.execute(packet, key, actions, level=level, deferred=deferred)
        self.n_dropped_recursion += result.dropped_recursion
        self.n_dropped_deferred += result.dropped_deferred
        for port, data, tunnel in result.outputs:
            self._records.append(("output", port, data, tunnel))
        for pid, userdata, ukey, data in result.upcalls:
            self._records.append(("userspace", pid, data, ukey, userdata))
        for r in result.recircs:
            self._records.append(("recirc", r.packet, r.key, r.level, r.deferred))

    def process(self, data, lengths, in_ports, n=-1, now_ms=0, rss_hashes=None, md=None) -> int:
        data, lengths, in_ports, n, rss = _check_arrays(data, lengths, in_ports, n, rss_hashes)
        if md is not None:
            md = _check_md(md, n, "packet")
        self.reset()
        self.table.quiesce()
        for i in range(n):
            length = int(lengths[i])
            packet = data[i, :length].tobytes()
            port = int(in_ports[i])
            if md is None:
                key = _fk._ref_extract(packet, port, None)
            else:
                # the row's metadata, with in_port from in_ports (as the compiled core)
                row = md[i] if md.ndim == 2 else md
                key = _fk._ref_extract(packet, port, row.tobytes())
                key = port.to_bytes(4, sys.byteorder) + key[4:]
            h = int(rss[i]) if rss is not None else flow_hash_5tuple(key)
            flow = self._lookup(key, h)
            if flow is None:
                self._misses.append((i, key, h))
                continue
            self.table.account(flow.ufid, length, _tcp_flags(key), now_ms)
            self._run_actions(packet, key, flow.actions)
        self.n_packets += n
        self.n_hit += n - len(self._misses)
        self.n_missed += len(self._misses)
        return len(self._misses)

    def misses(self) -> list[tuple[int, bytes, int]]:
        return list(self._misses)

    def run_bursts(self, data, lengths, in_ports, order, start=0, burst=32, now_ms=0,
                   rss_hashes=None, md=None):
        order = _fk._check_array("order", order, "u", 4, 1)
        if md is not None:
            md = _check_md(md, data.shape[0], "slot")
        total = order.shape[0]
        if burst < 1 or not 0 <= start <= total:
            raise PacketError(f"burst={burst} start={start}: burst must be >= 1, start in 0..{total}")
        if total and int(order.max()) >= data.shape[0]:
            raise PacketError(f"order has a slot >= {data.shape[0]}: data has {data.shape[0]} slots")
        outputs = 0
        pos = start
        while pos < total:
            sel = order[pos : pos + burst]
            pos += len(sel)
            rss = None if rss_hashes is None else np.ascontiguousarray(rss_hashes[sel])
            rows = md if md is None or md.ndim == 1 else np.ascontiguousarray(md[sel])
            self.process(data[sel], lengths[sel], in_ports[sel], -1, now_ms, rss, rows)
            self._misses = [(int(sel[i]), key, h) for i, key, h in self._misses]
            if self._misses or any(rec[0] != "output" for rec in self._records):
                return pos, outputs, True
            outputs += self.count_outputs()
        return pos, outputs, False

    def execute(self, packet: bytes, key: bytes, actions: bytes) -> None:
        self._run_actions(bytes(packet), bytes(key), bytes(actions))

    def reset(self) -> None:
        self._records = []
        self._misses = []
        self._recirc_scan = 0

    def recirculate(self, now_ms: int = 0) -> list[tuple[bytes, bytes, int]]:
        end = len(self._records)
        misses = []
        for rec in self._records[self._recirc_scan : end]:
            if rec[0] != "recirc":
                continue
            _, packet, md, level, deferred = rec
            key = _fk._ref_extract(packet, 0, md)
            h = flow_hash_5tuple(key)
            self.n_recirc += 1
            self.n_packets += 1
            flow, n_mask_hit = self.table.lookup(key, h)
            self.n_mask_hit += n_mask_hit
            if flow is None:
                self.n_missed += 1
                misses.append((key, packet, h))
                continue
            self.n_hit += 1
            self.n_megaflow_hit += 1
            self.table.account(flow.ufid, len(packet), _tcp_flags(key), now_ms)
            self._run_actions(packet, key, flow.actions, level, deferred)
        self._recirc_scan = end
        return misses

    @property
    def pending_recirc(self) -> int:
        return sum(1 for rec in self._records[self._recirc_scan :] if rec[0] == "recirc")

    @property
    def n_records(self) -> int:
        return len(self._records)

    def count_outputs(self) -> int:
        return sum(1 for rec in self._records if rec[0] == "output")

    def records(self) -> list[tuple]:
        return [rec[:3] if rec[0] == "recirc" else rec for rec in self._records]


def _check_arrays(data, lengths, in_ports, n, rss_hashes):
    """The checks the compiled core makes, with its messages."""
    data = _fk._check_array("data", data, "u", 1, 2)
    lengths = _fk._check_array("lengths", lengths, "i", 4, 1)
    in_ports = _fk._check_array("in_ports", in_ports, "u", 4, 1)
    if n < 0:
        n = lengths.shape[0]
    if n > lengths.shape[0] or n > in_ports.shape[0] or n > data.shape[0]:
        raise PacketError(
            f"n={n} packets, but the batch has {data.shape[0]} slots, "
            f"{lengths.shape[0]} lengths and {in_ports.shape[0]} in_ports"
        )
    rss = None
    if rss_hashes is not None:
        rss = _fk._check_array("rss_hashes", rss_hashes, "u", 4, 1)
        if rss.shape[0] < n:
            raise PacketError(f"rss_hashes has {rss.shape[0]} entries for {n} packets")
    slot = data.shape[1]
    for i, length in enumerate(lengths[:n].tolist()):
        if not 0 <= length <= slot:
            raise PacketError(
                f"packet {i} of the batch has length {length}: must be in 0..{slot} (the slot size)"
            )
    return data, lengths, in_ports, n, rss


def _check_md(md, rows: int, what: str) -> np.ndarray:
    """The checks the compiled core makes of a metadata-key array, with its messages."""
    if not isinstance(md, np.ndarray):
        raise PacketError(f"md must be a numpy array of dtype uint64, got {type(md).__name__}")
    if md.dtype.kind != "u" or md.dtype.itemsize != 8 or not md.dtype.isnative:
        raise PacketError(f"md has dtype {md.dtype}: must be uint64")
    if md.ndim not in (1, 2):
        raise PacketError(f"md has {md.ndim} dimension(s): must have 1 (one metadata key for "
                          f"every packet) or 2 (a key per {what})")
    if not md.flags.c_contiguous:
        raise PacketError("md must be C-contiguous")
    if md.shape[-1] != KEY_WORDS:
        raise PacketError(f"md has shape {tuple(md.shape)}: a metadata key is {KEY_WORDS} "
                          f"uint64 words")
    if md.ndim == 2 and md.shape[0] < rows:
        raise PacketError(f"md has {md.shape[0]} rows for {rows} {what}s")
    return md


def _md_array(md: Any) -> np.ndarray | None:
    """``md`` as the cores take it: a FlowKey or KEY_SIZE bytes become one template."""
    if md is None or isinstance(md, np.ndarray):
        return md
    if isinstance(md, (FlowKey, bytes, bytearray, memoryview)):
        return np.frombuffer(_key_bytes("md", md), dtype=np.uint64).copy()
    raise PacketError(f"md must be a numpy array of dtype uint64 or a FlowKey, "
                      f"got {type(md).__name__}")


try:
    from ovsnet import _datapath as _native_core
except ModuleNotFoundError as error:  # the extension is not built
    if error.name != "ovsnet._datapath":
        raise
    _native_core = None

#: implementations available here: always "python", and "cython" when built
IMPLEMENTATIONS = ("python", "cython") if _native_core is not None else ("python",)


# ---------------------------------------------------------------------------
# The datapath
# ---------------------------------------------------------------------------


#: how many distinct validated action lists a datapath remembers
_VALIDATED_MAX = 4096


@dataclass(frozen=True)
class DpPort:
    """A datapath port: ``odp_port`` number, name, vport type, and the vport
    object that carries its packets (None for a port only numbered)."""

    port_no: int
    name: str
    type: str
    vport: Any = None


class Datapath:
    """One host's datapath: ports, megaflow table, (EMC,) counters and upcalls.

    ``dp_type`` is ``"system"`` (kernel, ``ovs-system``) or ``"netdev"``
    (userspace, ``ovs-netdev``, with an EMC in front of the megaflow table).
    ``handler`` receives the misses of each batch (see :class:`Upcall`);
    without one, misses are counted as ``lost`` as when no ``ovs-vswitchd``
    listens. ``implementation`` is ``"cython"`` (default when built) or
    ``"python"`` (the reference). ``clock`` returns milliseconds (default:
    monotonic time) and stamps the flows' ``used`` times.

    Methods are serialised by a lock, so the compiled core can run without
    the GIL while other threads use the same datapath.
    """

    def __init__(
        self,
        dp_type: str = "system",
        *,
        name: str | None = None,
        handler: UpcallHandler | None = None,
        implementation: str | None = None,
        flow_limit: int = 200_000,
        max_idle_ms: int = 10_000,
        emc_insert_inv_prob: int = 100,
        seed: int = 0,
        clock: Callable[[], int] | None = None,
    ):
        if dp_type not in DATAPATH_TYPES:
            raise DatapathError(
                f"datapath type {dp_type!r} is invalid: valid types are {', '.join(DATAPATH_TYPES)}"
            )
        impl = implementation or IMPLEMENTATIONS[-1]
        if impl not in IMPLEMENTATIONS:
            raise DatapathError(
                f"implementation {impl!r} is not available here: choose from {', '.join(IMPLEMENTATIONS)}"
            )
        self.type = dp_type
        self.name = name or DATAPATH_TYPES[dp_type]
        self.implementation = impl
        self.handler = handler
        self.clock = clock or (lambda: time.monotonic_ns() // 1_000_000)
        table_cls = _mf.native.MegaflowTable if impl == "cython" else _mf.ReferenceMegaflowTable
        self.table = table_cls(flow_limit=flow_limit, max_idle_ms=max_idle_ms)
        self.emc = None
        if dp_type == "netdev":
            emc_cls = (_emc.native.ExactMatchCache if impl == "cython"
                       else _emc.ReferenceExactMatchCache)
            self.emc = emc_cls(inv_prob=emc_insert_inv_prob, seed=seed)
        if impl == "cython":
            self._core = _native_core.DatapathCore(self.table, self.emc)
        else:
            self._core = _ReferenceCore(self.table, self.emc)
        self._lock = threading.RLock()
        self._ports: dict[int, DpPort] = {}
        self._by_name: dict[str, int] = {}
        self.n_lost = 0
        self._validated: set[bytes] = set()
        self.n_upcalls = 0
        self.n_flow_limit = 0
        self.n_tx_no_port = 0
        self.add_port(self.name, "internal", port_no=0)

    # -- ports ------------------------------------------------------------

    def add_port(self, name: str, type: str = "netdev", *, port_no: int | None = None,
                 vport: Any = None) -> int:
        """Add a port (``OVS_VPORT_CMD_NEW``); returns its ``odp_port``.

        Without ``port_no`` the lowest free number is taken, as the kernel's
        ``ovs_vport_cmd_new`` does.
        """
        with self._lock:
            if name in self._by_name:
                raise DatapathError(f"{self.name}: port {name!r} already exists "
                                    f"(port {self._by_name[name]})")
            if port_no is None:
                port_no = 0
                while port_no in self._ports:
                    port_no += 1
            port_no = operator.index(port_no)
            if not 0 <= port_no <= 0xFFFF:
                raise DatapathError(f"{self.name}: port number {port_no} is invalid: valid is 0..65535")
            if port_no in self._ports:
                raise DatapathError(f"{self.name}: port number {port_no} is taken by "
                                    f"{self._ports[port_no].name!r}")
            self._ports[port_no] = DpPort(port_no, name, type, vport)
            self._by_name[name] = port_no
            return port_no

    def del_port(self, port: int | str) -> None:
        with self._lock:
            p = self.port(port)
            if p.port_no == 0:
                raise DatapathError(f"{self.name}: the local port 0 cannot be deleted")
            del self._ports[p.port_no]
            del self._by_name[p.name]

    def port(self, port: int | str) -> DpPort:
        """The port with this number or name."""
        with self._lock:
            if isinstance(port, str):
                if port not in self._by_name:
                    raise DatapathError(f"{self.name}: no port named {port!r}; ports: "
                                        f"{', '.join(self._by_name)}")
                return self._ports[self._by_name[port]]
            no = operator.index(port)
            if no not in self._ports:
                raise DatapathError(f"{self.name}: no port {no}; ports: "
                                    f"{', '.join(map(str, sorted(self._ports)))}")
            return self._ports[no]

    @property
    def ports(self) -> dict[int, DpPort]:
        """``odp_port`` -> port, in number order."""
        with self._lock:
            return dict(sorted(self._ports.items()))

    def port_names(self) -> dict[int, str]:
        return {no: p.name for no, p in self.ports.items()}

    # -- flows (OVS_FLOW_CMD_*) -------------------------------------------

    def flow_put(self, key: Any, mask: Any, actions: bytes, *, ufid: bytes | None = None) -> bytes:
        """Install a megaflow (``OVS_FLOW_CMD_NEW``); returns its UFID."""
        actions = bytes(actions)
        _actions.validate_actions(actions)
        with self._lock:
            return self.table.insert(_key_bytes("key", key), _key_bytes("mask", mask), actions,
                                     ufid=ufid, now_ms=self.clock())

    def _flow_ufid(self, ufid: bytes | None, key: Any, mask: Any) -> bytes:
        """The UFID of the flow named by ``ufid``, or by its ``key`` and ``mask``."""
        if (ufid is None) == (key is None or mask is None):
            raise DatapathError("name a flow by ufid, or by key and mask (not both)")
        if ufid is not None:
            return bytes(ufid)
        flow = self.table.find_exact(_key_bytes("key", key), _key_bytes("mask", mask))
        if flow is None:
            raise _mf.FlowNotFoundError("no flow has this key and mask (ENOENT)")
        return flow.ufid

    def flow_get(self, ufid: bytes | None = None, *, key: Any = None, mask: Any = None) -> Any:
        """One megaflow by UFID or by key and mask (``OVS_FLOW_CMD_GET``)."""
        with self._lock:
            u = self._flow_ufid(ufid, key, mask)
            flow = self.table.get(u)
            if flow is None:
                raise _mf.FlowNotFoundError(f"no flow has ufid {u.hex()} (ENOENT)")
            return flow

    def flow_set(self, actions: bytes, ufid: bytes | None = None, *, key: Any = None,
                 mask: Any = None, clear_stats: bool = False) -> None:
        """Replace a megaflow's actions (``OVS_FLOW_CMD_SET``), optionally
        clearing its stats (``OVS_FLOW_ATTR_CLEAR``)."""
        actions = bytes(actions)
        _actions.validate_actions(actions)
        with self._lock:
            self.table.set_actions(self._flow_ufid(ufid, key, mask), actions,
                                   clear_stats=clear_stats)

    def flow_del(self, ufid: bytes | None = None, *, key: Any = None, mask: Any = None) -> None:
        """Delete a megaflow by UFID or by key and mask (``OVS_FLOW_CMD_DEL``)."""
        with self._lock:
            self.table.remove(self._flow_ufid(ufid, key, mask))

    def flow_flush(self) -> int:
        """Delete every megaflow; returns how many there were."""
        with self._lock:
            n = len(self.table)
            self.table.flush()
            return n

    def flows(self) -> list[Any]:
        """Snapshots of the installed megaflows (``OVS_FLOW_CMD_GET`` dump)."""
        with self._lock:
            return list(self.table.flows())

    def expire(self, now_ms: int | None = None) -> list[bytes]:
        """Delete megaflows idle longer than ``max_idle_ms`` (a revalidator pass)."""
        with self._lock:
            return self.table.expire(self.clock() if now_ms is None else now_ms)

    # -- packets ----------------------------------------------------------

    def execute(self, packet: bytes, actions: bytes, *, in_port: int = 0,
                key: Any = None, deliver: bool = False) -> BatchResult:
        """Execute ``actions`` on one packet (``OVS_PACKET_CMD_EXECUTE``).

        With ``deliver`` the outputs go to their ports' vports (see :meth:`process`).
        """
        actions = bytes(actions)
        _actions.validate_actions(actions)
        packet = bytes(packet)
        raw = _key_bytes("key", key) if key is not None else _fk.extract(packet, in_port).raw
        with self._lock:
            self._core.reset()
            self._core.execute(packet, raw, actions)
            result = BatchResult()
            self._finish(result, self.clock(), deliver=deliver)
            return result

    def receive(self, packet: bytes, in_port: int, *, tunnel: Tunnel | None = None,
                deliver: bool = False) -> BatchResult:
        """One packet on ``in_port``, already past its vport, with optional tunnel metadata.

        :meth:`receive_frame` is the same with the port's vport in front.
        """
        md = None
        if tunnel is not None:
            md = _fk.metadata_template(in_port, tunnel=tunnel)
        return self.process(PacketBatch.from_packets([packet], in_port), md=md, deliver=deliver)

    def receive_frame(self, port: int | str, frame: bytes, *, deliver: bool = True) -> BatchResult:
        """A frame arriving on ``port``'s vport (``ovs_vport_receive``); see :meth:`receive_frames`."""
        return self.receive_frames(port, [frame], deliver=deliver)

    def receive_frames(self, port: int | str, frames: Iterable[bytes], *,
                       deliver: bool = True) -> BatchResult:
        """Frames arriving on ``port``, through its vport, processed as one batch.

        The vport takes each frame first (:meth:`Vport.receive
        <ovsnet.datapath.vport.Vport.receive>`): a tunnel vport decapsulates
        it, and its tunnel metadata goes into the packet's flow key (the
        ``tunnel(...)`` fields megaflows match on); frames the vport drops are
        counted on the vport and in :attr:`BatchResult.rx_dropped`. A port
        without a vport object passes frames on unchanged. By default the
        outputs are delivered (``deliver=True``, see :meth:`process`).
        """
        with self._lock:
            p = self.port(port)
            received: list[tuple[bytes, Tunnel | None]] = []
            dropped = 0
            for frame in frames:
                got = (bytes(frame), None) if p.vport is None else p.vport.receive(frame)
                if got is None:
                    dropped += 1
                else:
                    received.append(got)
            result = self._process_received(p.port_no, received, deliver)
            result.rx_dropped += dropped
            return result

    def poll(self, port: int | str, burst: int = NETDEV_MAX_BURST, *,
             deliver: bool = True) -> BatchResult:
        """Take up to ``burst`` frames a guest queued on a tap or vhost-user port
        (:meth:`QueuedVport.poll <ovsnet.datapath.vport.QueuedVport.poll>`, i.e.
        ``netdev_rxq_recv``) and process them as one batch."""
        with self._lock:
            p = self.port(port)
            if not hasattr(p.vport, "poll"):
                raise DatapathError(f"{self.name}: port {p.name!r} ({p.type}) has no guest queue "
                                    "to poll: only tap and vhost-user vports do")
            return self._process_received(p.port_no, p.vport.poll(burst), deliver)

    def _process_received(self, port_no: int, received: list[tuple[bytes, Tunnel | None]],
                          deliver: bool) -> BatchResult:
        """Run packets a vport received as one batch, with their tunnel metadata as ``md``."""
        if not received:
            return BatchResult()
        packets = [pkt for pkt, _ in received]
        tunnels = [tun for _, tun in received]
        slot = max(DEFAULT_SLOT_SIZE, max(len(pkt) for pkt in packets))
        batch = PacketBatch.from_packets(packets, port_no, slot_size=slot)
        md = None
        distinct = set(tunnels)
        if distinct != {None}:
            templates = {t: np.frombuffer(_fk.metadata_template(port_no, tunnel=t), np.uint64)
                         for t in distinct if t is not None}
            if len(distinct) == 1:
                md = templates[tunnels[0]].copy()
            else:
                md = np.zeros((len(packets), KEY_WORDS), dtype=np.uint64)
                for i, t in enumerate(tunnels):
                    if t is not None:
                        md[i] = templates[t]
        return self.process_arrays(batch.data, batch._lengths, batch._in_ports, len(batch),
                                   md=md, deliver=deliver)

    def process(self, batch: PacketBatch, *, collect: bool = True, md: Any = None,
                deliver: bool = False) -> BatchResult:
        """Run a batch through extraction, lookup and actions; hand the misses up once.

        With ``collect=False`` the outputs are counted, not returned (for
        benchmarks): :attr:`BatchResult.outputs` stays empty. ``md`` gives
        the packets metadata (tunnel fields, marks, conntrack state): a
        FlowKey or ``KEY_SIZE`` bytes for every packet, or a uint64 array of
        shape ``(len(batch), KEY_WORDS)`` with a key per packet; only its
        metadata fields count, and ``in_port`` comes from the batch.

        With ``deliver=True`` each output is handed to its port's vport
        (``ovs_vport_send``), which may encapsulate it (tunnel vports, with
        the output's egress tunnel key), queue it for a guest (tap,
        vhost-user) or drop it (MTU, full queue, no route: counted on the
        vport); the frames that leave are :attr:`BatchResult.transmitted`.
        Outputs to a port number the datapath has not are dropped and
        counted (:attr:`DatapathStats.tx_no_port`). A port without a vport
        object transmits the packet unchanged. The default ``deliver=False``
        returns the outputs only, touching no vport.
        """
        return self.process_arrays(batch.data, batch._lengths, batch._in_ports, len(batch),
                                   collect=collect, md=md, deliver=deliver)

    def process_arrays(self, data: np.ndarray, lengths: np.ndarray, in_ports: np.ndarray,
                       n: int = -1, *, rss_hashes: np.ndarray | None = None,
                       md: Any = None, collect: bool = True, deliver: bool = False) -> BatchResult:
        """:meth:`process` on raw arrays: ``data`` (slots, slot_size) uint8,
        ``lengths`` int32, ``in_ports`` uint32, optional NIC ``rss_hashes``
        and metadata keys ``md`` (uint64, ``(KEY_WORDS,)`` for all packets or
        ``(n, KEY_WORDS)``)."""
        if deliver and not collect:
            raise DatapathError("deliver=True needs collect=True: only collected outputs "
                                "can be handed to vports")
        md = _md_array(md)
        with self._lock:
            now = self.clock()
            core = self._core
            hit0, missed0 = core.n_hit, core.n_missed
            n_miss = core.process(data, lengths, in_ports, n, now, rss_hashes, md)
            result = BatchResult()
            if n_miss:
                upcalls = []
                for i, key, h in core.misses():
                    length = int(lengths[i])
                    upcalls.append(Upcall("miss", data[i, :length].tobytes(), FlowKey(key), h))
                self._upcall(upcalls, result, now)
            self._finish(result, now, collect=collect, deliver=deliver)
            result.hit = core.n_hit - hit0
            result.missed = core.n_missed - missed0
            return result

    def run_bursts(self, data: np.ndarray, lengths: np.ndarray, in_ports: np.ndarray,
                   order: np.ndarray, *, burst: int = 32,
                   rss_hashes: np.ndarray | None = None, md: Any = None) -> tuple[int, int]:
        """Feed ``data[order]`` through the datapath ``burst`` packets at a time,
        as a poll-mode thread feeds rx bursts, counting outputs instead of
        returning them; misses go to the handler between bursts.

        ``rss_hashes`` (uint32 per slot of ``data``) stand for the hash a NIC
        computes in hardware and the kernel takes from ``skb->hash``; ``md``
        metadata keys as for :meth:`process_arrays`, a row per slot of ``data``.
        Returns ``(packets, outputs)``. This is the loop ``ovsnet bench
        datapath`` measures.
        """
        md = _md_array(md)
        with self._lock:
            now = self.clock()
            core = self._core
            total = len(order)
            pos = outputs = 0
            while pos < total:
                pos, out, stopped = core.run_bursts(data, lengths, in_ports, order, pos, burst,
                                                    now, rss_hashes, md)
                outputs += out
                if stopped:
                    result = BatchResult()
                    upcalls = [
                        Upcall("miss", data[s, : int(lengths[s])].tobytes(), FlowKey(key), h)
                        for s, key, h in core.misses()
                    ]
                    if upcalls:
                        self._upcall(upcalls, result, now)
                    self._finish(result, now)
                    outputs += len(result.outputs)
            return total, outputs

    def _upcall(self, upcalls: list[Upcall], result: BatchResult, now: int) -> None:
        """Hand misses to the handler; install and execute what it returns."""
        if self.handler is None:
            self.n_lost += len(upcalls)
            result.lost += len(upcalls)
            return
        self.n_upcalls += len(upcalls)
        replies = list(self.handler(upcalls))
        if len(replies) != len(upcalls):
            raise DatapathError(
                f"upcall handler returned {len(replies)} replies for {len(upcalls)} upcalls"
            )
        table, validated, execute = self.table, self._validated, self._core.execute
        for up, reply in zip(upcalls, replies, strict=True):
            if up.kind != "miss":
                continue
            if reply is None:
                self.n_lost += 1
                result.lost += 1
                continue
            actions = reply.actions
            if actions.__class__ is not bytes:
                actions = bytes(actions)
            if actions not in validated:
                # validation depends on the bytes only: each list is checked once
                _actions.validate_actions(actions)
                if len(validated) >= _VALIDATED_MAX:
                    validated.clear()
                validated.add(actions)
            key = up.key.raw
            mask = reply.mask
            if mask is not None:
                if len(table) >= table.flow_limit:
                    self.n_flow_limit += 1
                else:
                    if mask.__class__ is not bytes or len(mask) != KEY_SIZE:
                        mask = _key_bytes("mask", mask)
                    try:
                        table.insert(key, mask, actions, reply.ufid, now)
                        result.installed += 1
                    except _mf.FlowExistsError:
                        # Another miss of the same batch installed it first (the
                        # kernel answers EEXIST; ovs-vswitchd carries on).
                        pass
            execute(up.packet, key, actions)

    def _finish(self, result: BatchResult, now: int, *, collect: bool = True,
                deliver: bool = False) -> None:
        """Run recirculations to completion, then gather outputs and action upcalls
        (and hand the outputs to the vports when ``deliver``)."""
        core = self._core
        passes = 0
        while core.pending_recirc:
            passes += 1
            if passes > MAX_RECIRC_PASSES:
                dropped = core.pending_recirc
                self.n_lost += dropped
                result.lost += dropped
                break
            misses = core.recirculate(now)
            if misses:
                self._upcall([Upcall("miss", pkt, FlowKey(key), h) for key, pkt, h in misses],
                             result, now)
        action_upcalls = []
        if not collect:
            return
        for rec in core.records():
            if rec[0] == "output":
                _, port, packet, tunnel = rec
                result.outputs.append(Output(port, packet, FlowKey(tunnel) if tunnel else None))
            elif rec[0] == "userspace":
                _, pid, packet, key, userdata = rec
                k = FlowKey(key)
                action_upcalls.append(Upcall("action", packet, k, flow_hash_5tuple(key), pid, userdata))
        if deliver:
            self._deliver(result)
        if action_upcalls:
            result.upcalls.extend(action_upcalls)
            if self.handler is not None:
                self.n_upcalls += len(action_upcalls)
                self.handler(action_upcalls)

    def _deliver(self, result: BatchResult) -> None:
        """``do_output`` -> ``ovs_vport_send`` for every output of ``result``, in order."""
        for out in result.outputs:
            port = self._ports.get(out.port)
            if port is None:
                # do_output: no vport behind the number, kfree_skb.
                self.n_tx_no_port += 1
                result.tx_dropped += 1
                continue
            if port.vport is None:
                result.transmitted.append(Transmit(out.port, out.packet))
                continue
            egress = tunnel_of_key(out.tunnel) if out.tunnel is not None else None
            frames = port.vport.send(out.packet, egress)
            if not frames:
                result.tx_dropped += 1
            result.transmitted.extend(Transmit(out.port, frame) for frame in frames)

    # -- statistics -------------------------------------------------------

    def stats(self) -> DatapathStats:
        with self._lock:
            c = self._core
            return DatapathStats(
                hit=c.n_hit,
                missed=c.n_missed,
                lost=self.n_lost,
                mask_hit=c.n_mask_hit,
                masks=self.table.n_masks,
                flows=len(self.table),
                emc_hit=c.n_emc_hit,
                megaflow_hit=c.n_megaflow_hit,
                upcalls=self.n_upcalls,
                flow_limit_hit=self.n_flow_limit,
                recirculations=c.n_recirc,
                packets=c.n_packets,
                tx_no_port=self.n_tx_no_port,
            )
