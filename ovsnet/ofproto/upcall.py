"""Translation as the datapath's upcall handler, and revalidation of what it installed.

Plays the part of ``ofproto/ofproto-dpif-upcall.c`` for the bridges of one
host, which share one datapath:

- an upcall (``process_upcall`` -> ``upcall_xlate``): the packet's flow key
  becomes an :class:`~ovsnet.ofproto.of_flow.OfFlow` of the bridge that owns
  its datapath input port (the odp port mapped to that bridge's OpenFlow
  port, ``odp_port_to_ofp_port``), :func:`~ovsnet.ofproto.xlate.xlate`
  translates it with side effects (NORMAL learns MACs), and the reply carries
  the actions, the megaflow mask as a 528-byte key-shaped buffer
  (:mod:`ovsnet.datapath.flow_key`) and the flow's UFID. As in OVS, a
  slow-pathed translation is executed but not installed (no mask), and a
  packet from a port no bridge knows is dropped without installing anything;
- a *ukey* per installed megaflow (``ukey_create_from_upcall``): the upcall's
  whole flow key, the mask and actions installed, and the configuration
  generation it was translated at;
- revalidation (``revalidate`` -> ``revalidate_ukey``): after a change to any
  bridge (:attr:`Bridge.version <ovsnet.ofproto.bridge.Bridge.version>`) or
  to a MAC table, every installed megaflow's key is translated again
  (without side effects) and the datapath flow is deleted when the new
  translation needs bits its mask wildcards or goes to the slow path, and
  its actions replaced when only they differ. So an edit of the flow tables,
  ports or VLAN settings never leaves a stale megaflow behind.

Everything is deterministic: revalidation runs when :meth:`XlateHandler.run`
or :meth:`XlateHandler.revalidate` is called, never in the background.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ovsnet.datapath.datapath import Datapath, Upcall, UpcallReply
from ovsnet.datapath.megaflow import masked_ufid
from ovsnet.errors import OfprotoError
from ovsnet.ofproto import fastpath
from ovsnet.ofproto.bridge import Bridge
from ovsnet.ofproto.classifier import FlowWildcards
from ovsnet.ofproto.of_flow import OfFlow, key_mask_of
from ovsnet.ofproto.xlate import XlateResult, xlate

__all__ = ["RevalidationStats", "Ukey", "XlateHandler", "wc_to_key_mask"]

#: the flow key's in_port: offset 0, 4 bytes, host order (flow_key.FIELDS)
_IN_PORT_OFFSET, _IN_PORT_SIZE = 0, 4


def wc_to_key_mask(wc: FlowWildcards) -> bytes:
    """The megaflow mask of ``wc`` in the datapath flow key layout.

    Each :class:`OfFlow` member maps to its flow-key field (the inverse of
    ``OfFlow.from_flow_key``); a masked ``in_port`` matches the datapath port
    exactly.
    """
    return key_mask_of(wc.masks)


@dataclass
class Ukey:
    """What the handler remembers of one installed megaflow (``struct udpif_key``).

    ``key`` is the flow key of the packet that was translated (not the
    masked key the datapath holds).
    """

    ufid: bytes
    key: bytes
    mask: bytes
    actions: bytes
    bridge: str


@dataclass
class RevalidationStats:
    """What one :meth:`XlateHandler.revalidate` pass did to the datapath's flows."""

    checked: int = 0
    kept: int = 0
    modified: int = 0
    deleted: int = 0


class XlateHandler:
    """An upcall handler (:class:`~ovsnet.datapath.datapath.UpcallHandler`) for the
    bridges of one datapath.

    ``XlateHandler(br0)`` or ``XlateHandler([br-int, br-tun])``: each upcall
    goes to the bridge owning its datapath input port. A real upcall
    translates with side effects, so NORMAL learns MAC addresses (at the
    time ``clock()`` returns, in seconds). Upcalls and revalidation translate
    without recording a trace (``xlate(trace=False)``, as ovs-vswitchd traces
    only for ``ofproto/trace``). Upcalls go to the compiled translation core
    (:mod:`~ovsnet.ofproto.fastpath`) when it is built and can translate them,
    to the Python translation otherwise (``fast=False``: always). ``last``
    keeps the most recent
    :class:`XlateResult` (actions, megaflow, errors), :attr:`ukeys` one :class:`Ukey` per
    megaflow installed (by UFID). With ``track_ukeys=False`` nothing is
    remembered and :meth:`revalidate` checks the datapath's own masked keys.
    """

    def __init__(self, bridges: Bridge | Iterable[Bridge],
                 clock: Callable[[], float] | None = None, *, track_ukeys: bool = True,
                 fast: bool | None = None):
        self.bridges: list[Bridge] = [bridges] if isinstance(bridges, Bridge) else list(bridges)
        if not self.bridges:
            raise OfprotoError("an upcall handler needs at least one bridge")
        self.clock = clock or (lambda: int(time.monotonic()))  # whole seconds, as time_now()
        self.track_ukeys = track_ukeys
        #: translate with the compiled core (:mod:`~ovsnet.ofproto.fastpath`)
        #: where it can; the Python translation does the rest
        self.fast = fastpath.AVAILABLE if fast is None else fast and fastpath.AVAILABLE
        #: upcalls translated by the compiled core and by the Python translation
        self.n_fast = 0
        self.n_python = 0
        self._last: XlateResult | None = None
        #: the flow key of the last upcall if the compiled core translated it
        self._last_fast: bytes | None = None
        self.ukeys: dict[bytes, Ukey] = {}
        #: the bridges' versions at the last revalidation
        self._versions: tuple[int, ...] = ()
        self._odp_map: dict[int, Bridge] = {}
        #: odp port -> the bridges whose tunnel ports may receive on it (its
        #: owner first), for the tunnel vports several bridges share
        self._candidates: dict[int, list[Bridge]] = {}
        #: odp port -> (owner bridge, OpenFlow port) for the plain (non-tunnel) ports
        self._plain_inputs: dict[int, tuple[Bridge, int]] = {}
        self._map_versions: tuple[int, ...] | None = None
        self._dirty = False
        self._versions = self._current_versions()

    def set_bridges(self, bridges: Iterable[Bridge]) -> None:
        """Serve a new set of bridges (after a reconfiguration); everything
        installed needs revalidation."""
        self.bridges = list(bridges)
        if not self.bridges:
            raise OfprotoError("an upcall handler needs at least one bridge")
        self._map_versions = None
        self._dirty = True

    @property
    def bridge(self) -> Bridge:
        """The first bridge (the only one of a single-bridge handler)."""
        return self.bridges[0]

    # -- upcalls -------------------------------------------------------------

    def _current_versions(self) -> tuple[int, ...]:
        return tuple([b.version for b in self.bridges])

    def bridge_of_odp(self, odp_port: int) -> Bridge | None:
        """The bridge whose port is datapath port ``odp_port`` (None if none is)."""
        versions = self._current_versions()
        if versions != self._map_versions:
            self._odp_map = {}
            ports = [(br, br.dp_port_names) for br in self.bridges]
            for br, names in ports:
                for no in names:
                    self._odp_map.setdefault(no, br)
            self._candidates = {
                no: [owner, *(b for b, names in ports if b is not owner and no in names)]
                for no, owner in self._odp_map.items()}
            self._plain_inputs = {}
            for no, owner in self._odp_map.items():
                port = owner._by_odp.get(no)
                if port is not None and port.tunnel is None:
                    self._plain_inputs[no] = owner, port.ofport
            self._map_versions = versions
        return self._odp_map.get(odp_port)

    def flow_of_key(self, key) -> tuple[Bridge, OfFlow]:
        """The bridge and flow translation starts from for a datapath flow key
        (``xlate_lookup_ofproto`` + ``odp_flow_key_to_flow``); the flow is seen
        under the bridge's ``vlan-limit``. Raises :class:`OfprotoError` for an
        input port no bridge has."""
        raw = key.raw if hasattr(key, "raw") else bytes(key)
        odp_port = int.from_bytes(raw[_IN_PORT_OFFSET:_IN_PORT_OFFSET + _IN_PORT_SIZE],
                                  sys.byteorder)
        bridge = self.bridge_of_odp(odp_port)
        if bridge is None:
            known = ", ".join(str(p) for p in sorted(self._odp_map)) or "none"
            raise OfprotoError(f"no bridge has datapath port {odp_port} (known: {known})")
        # tunnel vports are shared: a tunnelled packet's port is found by its
        # tunnel metadata, on whichever bridge has a matching tunnel port
        error: OfprotoError | None = None
        for br in self._candidates[odp_port]:
            try:
                return br.flow_from_key(raw)
            except OfprotoError as e:
                error = error or e
        raise error  # type: ignore[misc]

    @property
    def last(self) -> XlateResult | None:
        """The :class:`XlateResult` of the most recent upcall (None before the first).

        An upcall the compiled core translated has no result object; it is
        made here by the Python translation of the same flow without side
        effects (the core has none), which agrees with the core as long as the
        bridge has not changed since.
        """
        if self._last is None and self._last_fast is not None:
            bridge, flow = self.flow_of_key(self._last_fast)
            self._last = xlate(bridge, flow, generate=False, trace=False)
        return self._last

    def _fast_input(self, raw: bytes) -> tuple[Bridge, int] | None:
        """The bridge and OpenFlow input port of a key the compiled core may
        translate: one from a plain datapath port (not a tunnel vport)."""
        odp_port = int.from_bytes(raw[_IN_PORT_OFFSET:_IN_PORT_OFFSET + _IN_PORT_SIZE],
                                  sys.byteorder)
        if self.bridge_of_odp(odp_port) is None:
            return None
        return self._plain_inputs.get(odp_port)

    def handle(self, upcall: Upcall) -> UpcallReply | None:
        if upcall.kind != "miss":
            return None
        key = upcall.key.raw if hasattr(upcall.key, "raw") else bytes(upcall.key)
        if self.fast:
            where = self._fast_input(key)
            if where is not None:
                out = fastpath.translate_upcall(where[0], key, where[1])
                if out is not None:
                    actions, mask, ufid = out
                    self.n_fast += 1
                    self._last = None
                    self._last_fast = key
                    return self._reply(key, actions, mask, where[0].name, ufid)
        try:
            bridge, flow = self.flow_of_key(key)
        except OfprotoError:
            return UpcallReply(b"", None)
        result = xlate(bridge, flow, generate=True, now=self.clock(), trace=False)
        self.n_python += 1
        self._last, self._last_fast = result, None
        if result.slow:
            return UpcallReply(result.datapath_actions, None)
        return self._reply(key, result.datapath_actions, wc_to_key_mask(result.wc), bridge.name)

    def _reply(self, key: bytes, actions: bytes, mask: bytes, bridge: str,
               ufid: bytes | None = None) -> UpcallReply:
        """Install ``actions`` under ``mask`` (``ukey_create_from_upcall``);
        ``ufid`` is the megaflow's, if already known."""
        if not self.track_ukeys:
            return UpcallReply(actions, mask)
        if ufid is None:
            ufid = masked_ufid(key, mask)
        self.ukeys[ufid] = Ukey(ufid, key, mask, actions, bridge)
        return UpcallReply(actions, mask, ufid)

    def __call__(self, upcalls: Sequence[Upcall]) -> list[UpcallReply | None]:
        return [self.handle(u) for u in upcalls]

    # -- revalidation ----------------------------------------------------------

    def need_revalidate(self) -> bool:
        """Whether a bridge or a MAC table changed since the last revalidation
        (``backer->need_revalidate``)."""
        return (self._dirty or self._current_versions() != self._versions
                or any(b.mac_learning.need_revalidate for b in self.bridges))

    def run(self, dp: Datapath, now: float | None = None) -> RevalidationStats | None:
        """One pass of ofproto-dpif's main loop: expire idle MAC entries
        (``mac_learning_run``) and, if anything changed, revalidate ``dp``'s
        flows. Returns the revalidation's counts, or None if none was needed."""
        t = self.clock() if now is None else now
        changed = False
        for b in self.bridges:
            changed |= b.mac_learning.run(t)
        if changed or self._dirty or self._current_versions() != self._versions:
            return self.revalidate(dp, now=t)
        return None

    def _retranslate(self, key: bytes, now: float) -> tuple[bytes, bytes, str] | None:
        """A revalidation's translation of ``key`` without side effects:
        ``(actions, flow-key mask, bridge name)``, or None when the flow must
        go (no bridge has its port, or the translation is slow-pathed or
        fails). The compiled core translates it when it can."""
        if self.fast:
            where = self._fast_input(key)
            if where is not None:
                out = fastpath.translate_key(where[0], key, where[1])
                if out is not None:
                    return out[0], out[1], where[0].name
        try:
            bridge, flow = self.flow_of_key(key)
        except OfprotoError:
            return None
        result = xlate(bridge, flow, generate=False, now=now, trace=False)
        if result.slow or result.error is not None:
            return None
        return result.datapath_actions, wc_to_key_mask(result.wc), bridge.name

    def revalidate(self, dp: Datapath, now: float | None = None) -> RevalidationStats:
        """Translate every megaflow of ``dp`` again and fix the stale ones (``revalidate_ukey``).

        A flow is deleted when the new translation is slow-pathed, fails, or
        un-wildcards a bit the installed mask wildcards (the flow would match
        packets the new translation does not cover); otherwise its actions are
        replaced if they changed. Ukeys of flows the datapath no longer has
        are dropped. Like upcalls, the translations go to the compiled core
        where it can take them.
        """
        t = self.clock() if now is None else now
        self._versions = self._current_versions()
        self._dirty = False
        for b in self.bridges:
            b.mac_learning.need_revalidate = False
        stats = RevalidationStats()
        present: set[bytes] = set()
        for f in dp.flows():
            stats.checked += 1
            ufid = bytes(f.ufid)
            present.add(ufid)
            mask = bytes(f.mask)
            actions = bytes(f.actions)
            ukey = self.ukeys.get(ufid)
            key = ukey.key if ukey is not None else bytes(f.key)
            fresh = self._retranslate(key, t)
            if fresh is None:
                dp.flow_del(ufid)
                self.ukeys.pop(ufid, None)
                stats.deleted += 1
                continue
            new_actions, new_mask, bridge_name = fresh
            needs_more = (int.from_bytes(new_mask, "little") & ~int.from_bytes(mask, "little"))
            if needs_more:
                dp.flow_del(ufid)
                self.ukeys.pop(ufid, None)
                stats.deleted += 1
                continue
            if new_actions != actions:
                dp.flow_set(new_actions, ufid)
                stats.modified += 1
            else:
                stats.kept += 1
            if self.track_ukeys:
                self.ukeys[ufid] = Ukey(ufid, key, mask, new_actions, bridge_name)
        for ufid in [u for u in self.ukeys if u not in present]:
            del self.ukeys[ufid]
        return stats
