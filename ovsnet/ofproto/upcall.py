"""Translation as the datapath's upcall handler: a miss in, datapath actions and a megaflow out.

Plays the part of ``ofproto/ofproto-dpif-upcall.c`` (``process_upcall`` ->
``upcall_xlate`` -> ``ukey_create_from_upcall``) for one bridge: the packet's
flow key becomes an :class:`~ovsnet.ofproto.of_flow.OfFlow` (its datapath
input port mapped to the bridge's OpenFlow port), :func:`~ovsnet.ofproto.xlate.xlate`
translates it, and the reply carries the actions plus the megaflow mask as a
528-byte key-shaped buffer (:mod:`ovsnet.datapath.flow_key`). As in OVS, a
slow-pathed translation is executed but not installed (no mask), and a packet
from a port the bridge does not know is dropped without installing anything.
Revalidation after flow-table changes is not modelled here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from ovsnet.datapath.datapath import Upcall, UpcallReply
from ovsnet.datapath.flow_key import KEY_SIZE
from ovsnet.errors import OfprotoError
from ovsnet.ofproto.bridge import Bridge
from ovsnet.ofproto.classifier import FlowWildcards
from ovsnet.ofproto.of_flow import KEY_MEMBERS, OfFlow
from ovsnet.ofproto.xlate import XlateResult, xlate

__all__ = ["XlateHandler", "wc_to_key_mask"]

#: the flow key's in_port: offset 0, 4 bytes, host order (flow_key.FIELDS)
_IN_PORT_OFFSET, _IN_PORT_SIZE = 0, 4


def wc_to_key_mask(wc: FlowWildcards) -> bytes:
    """The megaflow mask of ``wc`` in the datapath flow key layout.

    Each :class:`OfFlow` member maps to its flow-key field (the inverse of
    ``OfFlow.from_flow_key``); a masked ``in_port`` matches the datapath port
    exactly.
    """
    mask = bytearray(KEY_SIZE)
    for member, offset, size, order in KEY_MEMBERS:
        bits = wc.get(member)
        if bits:
            mask[offset:offset + size] = (bits & ((1 << (8 * size)) - 1)).to_bytes(size, order)
    if wc.get("in_port"):
        mask[_IN_PORT_OFFSET:_IN_PORT_OFFSET + _IN_PORT_SIZE] = b"\xff" * _IN_PORT_SIZE
    return bytes(mask)


class XlateHandler:
    """An upcall handler (:class:`~ovsnet.datapath.datapath.UpcallHandler`) for one bridge.

    A real upcall translates with side effects, so NORMAL learns MAC addresses
    (at the time ``clock()`` returns, in seconds). ``last`` keeps the most
    recent :class:`XlateResult` (for tracing).
    """

    def __init__(self, bridge: Bridge, clock: Callable[[], float] | None = None):
        self.bridge = bridge
        self.clock = clock or (lambda: int(time.monotonic()))  # whole seconds, as time_now()
        self.last: XlateResult | None = None

    def handle(self, upcall: Upcall) -> UpcallReply | None:
        if upcall.kind != "miss":
            return None
        try:
            flow = OfFlow.from_flow_key(upcall.key, self.bridge.ofport_of_odp)
        except OfprotoError:
            return UpcallReply(b"", None)
        result = xlate(self.bridge, flow, generate=True, now=self.clock())
        self.last = result
        mask = None if result.slow else wc_to_key_mask(result.wc)
        return UpcallReply(result.datapath_actions, mask)

    def __call__(self, upcalls: Sequence[Upcall]) -> list[UpcallReply | None]:
        return [self.handle(u) for u in upcalls]
