"""Translation (xlate): from a flow that missed the datapath to datapath actions and a megaflow.

Modelled on Open vSwitch 3.1's ``ofproto/ofproto-dpif-xlate.c`` (``xlate_actions``,
``do_xlate_actions``, ``xlate_table_action``, ``xlate_output_action``,
``compose_output_action__``), ``rule_dpif_lookup_from_table`` in
``ofproto/ofproto-dpif.c`` and ``commit_odp_actions`` in ``lib/odp-util.c``,
with the CVE-2023-1668 fix (``nw_proto`` is always un-wildcarded by actions that
rewrite IP headers) that Debian's 3.1.0 and upstream 3.1.1 carry.

:func:`xlate` starts in table 0 of a :class:`~ovsnet.ofproto.bridge.Bridge`
and runs the OpenFlow actions of each matched rule on an in-flight copy of the
flow. Header rewrites are not emitted when they happen: like OVS, they are
*committed* as ``set``/``set_masked`` datapath actions (comparing the flow with
the "base flow" the datapath already has) just before an action that needs the
packet as modified, here an ``output``. The :class:`FlowWildcards` collect every
bit the classifier lookups and the actions looked at; with the fields OVS
always un-wildcards (``xlate_wc_init``) and its final clean-up
(``xlate_wc_finish``) that is the megaflow mask.

Supported: output (to a port, ``IN_PORT``, ``LOCAL``, ``TABLE``, ``NONE``,
``FLOOD``, ``ALL``, ``NORMAL``, ``CONTROLLER``, patch ports, tunnel ports), output
to a register, resubmit and goto_table (with OVS's depth and resubmit limits and
messages), set_field/load/move (registers, xregs and xxregs too), push/pop,
mod_dl_*, mod_nw_*, mod_tp_*, dec_ttl (at TTL 1 a packet-in per controller id),
VLAN push/pop/modify, the MPLS actions (push_mpls, pop_mpls, set_mpls_label/tc/ttl,
dec_mpls_ttl; after a pop to a non-MPLS type, actions that read L3 headers
recirculate), controller(...), enqueue/set_queue/pop_queue, write_metadata,
note, exit, clone, the action set (write_actions/clear_actions).

The ``controller`` action becomes a datapath ``userspace`` action whose
:class:`ControllerCookie` names the packet-in (``xlate_controller_action``); the
packet is not sent (``dont_send``) unless the translation has side effects.
OVS 3.1 does not slow-path such flows: the datapath hands the packet up itself.

NORMAL (``xlate_normal``) uses each port's
:class:`~ovsnet.ofproto.vlan.VlanConfig` (one bundle per port) and the
bridge's :class:`~ovsnet.ofproto.mac_learning.MacLearning`: it learns the
source MAC only when :func:`xlate` runs with ``generate`` (side effects
allowed, as for an upcall or ``ofproto/trace -generate``), then outputs to the
learned port or floods the packet's VLAN, with each port's tags. Bonds,
mirrors, multicast snooping and STP/RSTP are not modelled.

Not yet: conntrack, learn, groups, meters (``controller(meter_id=...)``),
``controller(pause)``, the datapath ``clone`` action that irreversible actions
inside clone or behind a patch port need, and a recirculation that starts inside a
clone or behind a patch port; they are reported in
:attr:`XlateResult.unsupported`.
"""

from __future__ import annotations

import re
import struct
import sys
from dataclasses import dataclass, field
from operator import itemgetter

from ovsnet.datapath import odp
from ovsnet.datapath.odp_attrs import ActionAttr, KeyAttr, UserspaceAttr, nla, nla_u32
from ovsnet.ofproto import ofp_actions as A
from ovsnet.ofproto import tunnel as tnl
from ovsnet.ofproto.bridge import Bridge
from ovsnet.ofproto.classifier import ALL_ONES, FlowWildcards
from ovsnet.ofproto.flow_syntax import FlowMod
from ovsnet.ofproto.of_flow import OF_MEMBERS, OfFlow
from ovsnet.ofproto.ofp_fields import (
    ETH_TYPE_ARP,
    ETH_TYPE_IP,
    ETH_TYPE_IPV6,
    ETH_TYPE_MPLS,
    ETH_TYPE_MPLS_MCAST,
    ETH_TYPE_RARP,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_SCTP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    MEMBERS,
    OFPP_ALL,
    OFPP_CONTROLLER,
    OFPP_FLOOD,
    OFPP_IN_PORT,
    OFPP_LOCAL,
    OFPP_MAX,
    OFPP_NONE,
    OFPP_NORMAL,
    OFPP_TABLE,
    VLAN_CFI,
    Match,
    MFField,
    format_field_value,
    format_match,
    format_port,
    port_from_ofp11,
    port_to_ofp11,
)
from ovsnet.ofproto.vlan import PriorityTags, VlanConfig, XVlan

__all__ = ["ACTION_SET", "MAX_DEPTH", "MAX_RESUBMITS", "ControllerCookie", "TraceStep", "XlateResult",
           "execute_action_set", "format_datapath_actions", "format_megaflow",
           "queue_to_priority", "xlate"]

#: ofproto-dpif-xlate.c MAX_DEPTH and MAX_RESUBMITS
MAX_DEPTH = 64
MAX_RESUBMITS = MAX_DEPTH * MAX_DEPTH
#: ``nl_attr_oversized``: actions longer than this cannot be a netlink attribute
_MAX_ACTIONS_LEN = 0xFFFF
#: Linux's default net.core.netdev_max_backlog: ``too_many_output_actions`` slow-paths
#: a flow with this many outputs (OVS reads the sysctl; the default is assumed here)
NETDEV_MAX_BACKLOG = 1000

FRAG_ANY, FRAG_LATER = 1, 2
ETH_TYPE_VLAN = 0x8100

#: xlate_strerror() texts of the errors this model raises
ERROR_TEXT = {"recursion": "Recursion too deep", "resubmits": "Too many resubmits"}

#: :attr:`TraceStep.table` of the step that executes the action set
ACTION_SET = -1

#: ``enum ofp_packet_in_reason`` (include/openflow/openflow-common.h), with OVS's
#: ``OFPR_EXPLICIT_MISS`` after the standard ones
OFPR_NO_MATCH, OFPR_ACTION, OFPR_INVALID_TTL, OFPR_ACTION_SET, OFPR_GROUP = 0, 1, 2, 3, 4
OFPR_PACKET_OUT, OFPR_EXPLICIT_MISS = 5, 6
_REASONS = {"no_match": OFPR_NO_MATCH, "action": OFPR_ACTION, "invalid_ttl": OFPR_INVALID_TTL,
            "action_set": OFPR_ACTION_SET, "group": OFPR_GROUP, "packet_out": OFPR_PACKET_OUT}
#: ``USER_ACTION_COOKIE_CONTROLLER`` (lib/odp-util.h ``enum user_action_cookie_type``)
USER_ACTION_COOKIE_CONTROLLER = 5
_COOKIE_LEN = 48


@dataclass(frozen=True)
class ControllerCookie:
    """The ``struct user_action_cookie`` of a ``controller`` userspace action (lib/odp-util.h).

    ``put_controller_user_action`` (ofproto-dpif-xlate.c) fills it: the
    packet-in reason, ``dont_send`` (the translation had no side effects, as
    a plain ``ofproto/trace``), the recirculation id of the frozen state the
    packet-in resumes from, the cookie of the rule being translated, the
    controller id and the byte limit. Layout (48 bytes, host order except the
    rule cookie): type u16, in_port u16 (``OFPP_NONE``), ofproto uuid (16 bytes),
    dont_send u8, continuation u8, reason u16, recirc_id u32, rule_cookie be64,
    controller_id u16, max_len u16, padding.
    """

    reason: int
    dont_send: bool
    recirc_id: int
    rule_cookie: int
    controller_id: int = 0
    max_len: int = 0xFFFF
    continuation: bool = False
    ofproto_uuid: bytes = bytes(16)

    def encode(self) -> bytes:
        head = struct.pack("=HH16sBBHI", USER_ACTION_COOKIE_CONTROLLER, OFPP_NONE,
                           self.ofproto_uuid, self.dont_send, self.continuation, self.reason,
                           self.recirc_id)
        tail = struct.pack("=HH", self.controller_id, self.max_len)
        return (head + self.rule_cookie.to_bytes(8, "big") + tail).ljust(_COOKIE_LEN, b"\0")

    @classmethod
    def decode(cls, data: bytes) -> ControllerCookie | None:
        """The cookie in a userspace action's userdata, or None if it is not one."""
        if len(data) != _COOKIE_LEN:
            return None
        kind, _port, uuid, dont_send, cont, reason, recirc_id = struct.unpack_from(
            "=HH16sBBHI", data)
        if kind != USER_ACTION_COOKIE_CONTROLLER:
            return None
        cid, max_len = struct.unpack_from("=HH", data, 36)
        return cls(reason, bool(dont_send), recirc_id, int.from_bytes(data[28:36], "big"),
                   cid, max_len, bool(cont), uuid)

    def format(self) -> str:
        """As ``format_odp_userspace_action`` prints it (``controller(reason=1,...)``)."""
        cookie = f"{self.rule_cookie:#x}" if self.rule_cookie else "0"
        return (f"controller(reason={self.reason},dont_send={int(self.dont_send)},"
                f"continuation={int(self.continuation)},recirc_id={self.recirc_id},"
                f"rule_cookie={cookie},controller_id={self.controller_id},"
                f"max_len={self.max_len})")


_USERDATA_RE = re.compile(r",userdata\(([0-9a-f]{" + str(2 * _COOKIE_LEN) + r"})\)")


def format_datapath_actions(actions: bytes, ports=None) -> str:
    """:func:`ovsnet.datapath.odp.format_actions` with controller cookies decoded.

    OVS's ``format_odp_userspace_action`` prints a userspace action's
    ``struct user_action_cookie`` by type; this prints the ``controller(...)``
    cookies translation produces the same way and leaves other userdata as hex.
    """
    def cookie(m: re.Match) -> str:
        c = ControllerCookie.decode(bytes.fromhex(m.group(1)))
        return m.group(0) if c is None else "," + c.format()
    return _USERDATA_RE.sub(cookie, odp.format_actions(actions, ports))


def queue_to_priority(queue_id: int, datapath_type: str = "system") -> int | None:
    """``dpif_queue_to_priority``: the ``skb_priority`` that selects an output queue.

    The Linux datapath (dpif-netlink) uses the tc class ``1:(queue+1)`` and
    has no priority for queues from 0xf000 up (None: enqueue falls back to
    plain output); the userspace and dummy datapaths (dpif-netdev) use the
    queue number itself.
    """
    if datapath_type in ("netdev", "dummy"):
        return queue_id
    if queue_id < 0xF000:
        return (1 << 16) | (queue_id + 1)
    return None

# ofp-actions.c ACTION_SET_ORDER (one slot each, in this order) and
# ACTION_SET_FINAL_PRIORITY (only the last-ranked final action runs)
_SLOT_ORDER = (A.StripVlan, A.PopMpls, A.PushMpls, A.PushVlan, A.DecTtl)
_FINAL_ORDER = (A.Resubmit, A.Output)
_SET_OR_MOVE = (A.SetField, A.RegMove, A.SetEth, A.SetIpDscp, A.SetIpEcn, A.SetIpTtl,
                A.SetIPv4, A.SetL4Port, A.SetMplsLabel, A.SetMplsTc, A.SetMplsTtl,
                A.SetTunnel, A.SetVlanPcp, A.SetVlanVid)


@dataclass
class TraceStep:
    """One table lookup, as ``ofproto/trace`` prints it (``xlate_report_table``).

    ``rule`` is the matched rule's match text (``in_port=1,ip``; ``""`` for a
    catch-all) or None for "No match.", formatted only when asked for; ``depth`` the resubmit nesting;
    ``actions`` the lines printed under it (actions, ``>>>> error <<<<``).
    ``table`` is :data:`ACTION_SET` for the execution of the action set.
    """

    table: int
    #: the matched rule's :class:`Match` (formatted on first use of :attr:`rule`)
    match: Match | None
    priority: int | None
    cookie: int
    depth: int
    #: the lines under the table; an OpenFlow action is kept as ``(action, bridge)``
    #: and formatted only when :attr:`actions` is read
    _lines: list = field(default_factory=list, repr=False)
    #: the bridge whose table this is (patch ports lead to other bridges)
    bridge: str = ""
    _rule: str | None = field(default=None, repr=False, compare=False)

    @property
    def items(self) -> list:
        """The lines under the table as recorded: text, or an executed OpenFlow
        action as ``(action, bridge)``."""
        return list(self._lines)

    @property
    def actions(self) -> list[str]:
        """The lines printed under the table line (actions, ``>>>> error <<<<``)."""
        return [line[0].format(line[1].port_map) if line.__class__ is tuple else line
                for line in self._lines]

    @property
    def rule(self) -> str | None:
        """The matched rule's match text (``format_match``), or None for "No match."."""
        if self._rule is None and self.match is not None:
            self._rule = format_match(self.match)
        return self._rule

    def line(self) -> str:
        if self.table == ACTION_SET:
            return "--. Executing action set:"
        if self.rule is None:
            return f"{self.table:2d}. No match."
        text = self.rule + (", " if self.rule else "") + f"priority {self.priority}"
        if self.cookie:
            text += f", cookie {self.cookie:#x}"
        return f"{self.table:2d}. {text}"


@dataclass
class XlateResult:
    """What :func:`xlate` produced.

    ``datapath_actions`` are netlink-encoded (``b""`` is drop), ``wc`` the
    megaflow mask over :attr:`flow` (the flow as translation received it),
    ``final_flow`` the flow after the actions, ``error`` a xlate_strerror text
    when translation failed (then the actions are a drop), ``errors`` every
    ``>>>>`` message, ``unsupported`` the actions this model skipped.
    """

    flow: OfFlow
    final_flow: OfFlow
    datapath_actions: bytes
    wc: FlowWildcards
    trace: list[TraceStep]
    errors: list[str]
    error: str | None = None
    unsupported: list[str] = field(default_factory=list)
    #: the flow needs the userspace slow path (``SLOW_ACTION``: ND, ARP or ICMP rewrites,
    #: oversized actions or too many outputs)
    slow: bool = False

    def megaflow(self) -> str:
        """The ``Megaflow:`` line of ``ofproto/trace``."""
        return format_megaflow(self.wc, self.flow)

    def trace_text(self) -> str:
        """The table part of ``ofproto/trace`` (table lines and their actions)."""
        out = []
        for step in self.trace:
            pad = "    " * step.depth
            out.append(pad + step.line())
            out.extend(pad + "    " + a for a in step.actions)
        return "\n".join(out)


def format_megaflow(wc: FlowWildcards, flow: OfFlow) -> str:
    """``match_format`` of ``flow`` under ``wc`` as ``ofproto/trace`` prints the megaflow.

    OVS prints the packet type (``eth``: xlate always un-wildcards it) after
    the metadata fields (``recirc_id`` ...) and before the protocol.
    """
    match = FlowWildcards({m: v for m, v in wc.masks.items() if m in MEMBERS}).to_match(flow)
    head, rest = Match(), Match()
    for member, (value, mask) in match.members().items():
        target = head if member in ("pkt_mark", "recirc_id", "dp_hash", "skb_priority") else rest
        target.set_member(member, value, mask)
    body = tnl.insert_megaflow_tokens(format_match(rest), wc.masks, flow)
    inner_mask = wc.get("vlan1_tci") if wc.get("vlan_tci") else 0
    if inner_mask:
        # match_format prints each VLAN header in turn: dl_vlan1 follows dl_vlan
        outer = _vlan_text(flow.vlan_tci, wc.get("vlan_tci"), "")
        inner = _vlan_text(flow.vlan1_tci & inner_mask, inner_mask, "1")
        tokens = body.split(",")
        n = len(outer.split(","))
        for i in range(len(tokens) - n + 1):
            if ",".join(tokens[i:i + n]) == outer:
                tokens[i + n:i + n] = [inner]
                break
        body = ",".join(tokens)
    # match_format prints the second and third MPLS label stack entries after the
    # first one's fields, before nw_frag and the L4 fields
    lse = [f"mpls_lse{i}=" + (str(getattr(flow, f"mpls_lse{i}")) if m == 0xFFFFFFFF else
                              f"0x{getattr(flow, f'mpls_lse{i}') & m:08x}/0x{m:08x}")
           for i in (1, 2) if (m := wc.masks.get(f"mpls_lse{i}", 0))]
    if lse:
        tokens = body.split(",") if body else []
        at = next((i for i, t in enumerate(tokens) if t.startswith(_AFTER_MPLS)), len(tokens))
        body = ",".join(tokens[:at] + lse + tokens[at:])
    parts = [format_match(head), "eth", body]
    return ",".join(p for p in parts if p)


#: what match_format prints after the MPLS fields
_AFTER_MPLS = ("nw_frag=", "icmp_type=", "icmp_code=", "tp_src=", "tp_dst=", "nd_target=",
               "nd_sll=", "nd_tll=", "tcp_flags=")


def _vlan_text(tci: int, mask: int, suffix: str) -> str:
    """One VLAN header as ``match_format`` prints it (``dl_vlan1=...`` for the inner one)."""
    vid_m, pcp_m = mask & 0x0FFF, mask & 0xE000
    if (mask & VLAN_CFI and tci & VLAN_CFI and vid_m in (0, 0x0FFF) and pcp_m in (0, 0xE000)
            and (vid_m or pcp_m)):
        out = []
        if vid_m:
            out.append(f"dl_vlan{suffix}={tci & 0x0FFF}")
        if pcp_m:
            out.append(f"dl_vlan_pcp{suffix}={tci >> 13}")
        return ",".join(out)
    if mask == 0xFFFF:
        return f"vlan_tci{suffix}=0x{tci:04x}"
    return f"vlan_tci{suffix}=0x{tci:04x}/0x{mask:04x}"


def _is_ip(flow: OfFlow) -> bool:
    return flow.dl_type in (ETH_TYPE_IP, ETH_TYPE_IPV6)


class _Ctx:
    """``struct xlate_ctx``: the state of one translation."""

    __slots__ = ("bridge", "tracing", "generate", "now", "datapath_type", "rule", "rule_cookie",
                 "in_action_set", "recirc_ids", "orig_skb_priority", "was_mpls", "freezing",
                 "learned", "flow", "base", "wc", "masks", "odp", "depth", "resubmits",
                 "table_id", "exit", "error", "errors", "unsupported", "stack", "action_set",
                 "slow", "trace", "step", "orig_tunnel_dst", "mask")

    def __init__(self, bridge: Bridge, flow: OfFlow, generate: bool = False,
                 now: float = 0, datapath_type: str = "system", tracing: bool = True):
        self.bridge = bridge
        #: record the trace (table steps and their lines); off for upcalls
        self.tracing = tracing
        self.generate = generate
        self.now = now
        self.datapath_type = datapath_type
        #: the rule being translated and its cookie (``ctx->rule``, ``ctx->rule_cookie``)
        self.rule = None
        self.rule_cookie = (1 << 64) - 1
        self.in_action_set = False
        #: frozen states (``recirc_alloc_id_ctx``): equal states share an id
        self.recirc_ids: dict[tuple, int] = {}
        self.orig_skb_priority = flow.skb_priority
        #: an MPLS packet became a non-MPLS one (``ctx->was_mpls``): reading its
        #: L3 headers needs a recirculation
        self.was_mpls = False
        #: translation stopped to recirculate (``ctx->freezing``)
        self.freezing = False
        #: rules the learn actions added (by id): (rule, the rule it replaced or None)
        self.learned: dict[int, tuple] = {}
        self.flow = flow.copy()
        self.base = flow.copy()
        self.wc = FlowWildcards()
        #: ``wc.masks``, the dictionary :attr:`mask` ORs into
        self.masks = self.wc.masks
        #: ``mask(member, bits=None)``: un-wildcard ``bits`` (default: every bit)
        #: of ``member``; the bound method itself, so a call costs no extra frame
        self.mask = self.wc.unwildcard
        self.odp = bytearray()
        self.depth = 0
        self.resubmits = 0
        self.table_id = 0
        self.exit = False
        self.error: str | None = None
        self.errors: list[str] = []
        self.unsupported: list[str] = []
        self.stack: list[tuple[int, int]] = []
        self.action_set: list[A.Action] = []
        self.slow = False
        self.trace: list[TraceStep] = []
        self.step: TraceStep | None = None
        #: ``orig_tunnel_ipv6_dst``: where the packet was tunnelled to (0: not tunnelled)
        self.orig_tunnel_dst = tnl.tunnel_dst(flow)

    # -- reporting ----------------------------------------------------------

    def report(self, text: str) -> None:
        if self.step is not None:
            self.step._lines.append(text)

    def report_action(self, action: A.Action) -> None:
        """Report an OpenFlow action; its text is made only if the trace is read."""
        if self.step is not None:
            self.step._lines.append((action, self.bridge))

    def report_error(self, text: str) -> None:
        self.errors.append(text)
        self.report(f">>>> {text} <<<<")


# ---------------------------------------------------------------------------------
# Field access in field units (mf_get_value / mf_set_flow_value_masked)


#: bound of the caches below (cleared when full)
_CACHE_MAX = 1 << 16


def _cached(cache: dict, obj, make):
    """``make(obj)``, remembered in ``cache`` for this very object.

    Fields and actions are immutable, so what is derived from one stays true;
    the cache is keyed by identity (frozen dataclasses hash all their fields,
    which costs more than the derivation saves) and holds the object, so its
    id cannot be reused while the entry exists.
    """
    entry = cache.get(id(obj))
    if entry is None or entry[0] is not obj:
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        entry = cache[id(obj)] = (obj, make(obj))
    return entry[1]


def _make_field_parts(fld: MFField) -> tuple[tuple[str, int, int], ...]:
    parts = fld.reg_parts
    if parts is not None:
        return tuple((member, shift, 0xFFFFFFFF) for member, shift in parts)
    return ((fld.member, 0, fld.member_bits),)


_FIELD_PARTS: dict[int, tuple] = {}


def _field_parts(fld: MFField) -> tuple[tuple[str, int, int], ...]:
    """(member, shift within the field value, member bits) pieces of a field."""
    return _cached(_FIELD_PARTS, fld, _make_field_parts)


def _get_field(flow: OfFlow, fld: MFField) -> int:
    if fld.name == "in_port_oxm":  # OpenFlow 1.1+'s 32-bit port numbers
        return port_to_ofp11(flow.in_port)
    value = 0
    for member, shift, bits in _field_parts(fld):
        value |= ((getattr(flow, member) & bits) >> fld.shift) << shift
    return value


def _set_field(flow: OfFlow, fld: MFField, value: int, mask: int) -> None:
    if fld.name == "in_port_oxm":
        new = (port_to_ofp11(flow.in_port) & ~mask) | (value & mask)
        port = port_from_ofp11(new)
        flow.set("in_port", OFPP_NONE if port is None else port)
        return
    for member, shift, bits in _field_parts(fld):
        v = ((value >> shift) << fld.shift) & bits
        m = ((mask >> shift) << fld.shift) & bits
        old = getattr(flow, member)
        flow.set(member, ((old & ~m) | (v & m)) & ((1 << OF_MEMBERS[member]) - 1))


def _mask_field(ctx: _Ctx, fld: MFField, mask: int) -> None:
    if fld.name == "in_port_oxm":
        if mask:
            ctx.mask("in_port")
        return
    for member, shift, bits in _field_parts(fld):
        ctx.mask(member, ((mask >> shift) << fld.shift) & bits)


def _prereqs_ok(prereq: str, flow: OfFlow, ctx: _Ctx) -> bool:
    """``mf_are_prereqs_ok`` with the wildcards it examines un-wildcarded."""
    if prereq in ("none", "ethernet"):
        return True
    if prereq == "vlan_vid":
        ctx.mask("vlan_tci", VLAN_CFI)
        return bool(flow.vlan_tci & VLAN_CFI)
    dl = flow.dl_type
    if prereq == "ipv4":
        return dl == ETH_TYPE_IP
    if prereq == "ipv6":
        return dl == ETH_TYPE_IPV6
    if prereq == "ip_any":
        return dl in (ETH_TYPE_IP, ETH_TYPE_IPV6)
    if prereq == "arp":
        return dl in (ETH_TYPE_ARP, ETH_TYPE_RARP)
    if prereq == "mpls":
        return dl in (0x8847, 0x8848)
    if not _is_ip(flow):
        return False
    ctx.mask("nw_proto")
    proto = flow.nw_proto
    if prereq in ("tcp", "udp", "sctp"):
        # a later fragment has no L4 header (read, not un-wildcarded, as in OVS)
        return (proto == {"tcp": IPPROTO_TCP, "udp": IPPROTO_UDP, "sctp": IPPROTO_SCTP}[prereq]
                and not flow.nw_frag & FRAG_LATER)
    if prereq == "icmpv4":
        return dl == ETH_TYPE_IP and proto == IPPROTO_ICMP
    if dl != ETH_TYPE_IPV6 or proto != IPPROTO_ICMPV6:
        return False
    if prereq == "icmpv6":
        return True
    ctx.mask("tp_src", 0xFF)
    ctx.mask("tp_dst", 0xFF)
    want = {"nd": (135, 136), "nd_solicit": (135,), "nd_advert": (136,)}[prereq]
    return flow.tp_src in want and flow.tp_dst == 0


#: fields whose setting also un-wildcards nw_proto (mf_set_mask_l3_prereqs, 3.1.1)
_L3_FIELDS = {"ip_src", "ip_dst", "ipv6_src", "ipv6_dst", "ipv6_label", "nw_tos", "ip_dscp",
              "nw_ecn", "nw_ttl", "arp_op", "arp_spa", "arp_tpa", "arp_sha", "arp_tha"}


# ---------------------------------------------------------------------------------
# Committing header changes (lib/odp-util.c commit_odp_actions)


def _b(value: int, n: int) -> bytes:
    return value.to_bytes(n, "big")


class _CommitGroup:
    """One datapath key attribute ``commit`` may set: its ``(member, bytes,
    writable, all-ones of the bytes)`` fields in struct order, the payload's
    byte order, and whether a partial change may be ``set_masked``."""

    __slots__ = ("attr", "fields", "get", "use_masked", "order", "size", "pad")

    def __init__(self, attr: int, fields: list[tuple[str, int, bool]], use_masked: bool = True,
                 order: str = "big", pad: int = 0):
        # the payload is packed as one integer: fields in big-endian order, or one field
        assert order == "big" or len(fields) == 1
        self.attr = attr
        #: (member, bits in the payload, writable, all-ones of those bits)
        self.fields = tuple((m, 8 * n, w, (1 << (8 * n)) - 1) for m, n, w in fields)
        #: the fields' values of a flow's member dictionary, as one tuple
        self.get = itemgetter(*(m for m, _n, _w in fields))
        self.use_masked = use_masked
        self.order = order
        self.size = sum(n for _m, n, _w in fields)
        #: zero bytes after the fields: the kernel struct's tail padding
        #: (``struct ovs_key_arp`` is 24 bytes for 22 bytes of fields)
        self.pad = b"\0" * pad


_NLA_HDR = struct.Struct("=HH")
_NLA_PAD = (b"", b"\0", b"\0\0", b"\0\0\0")


def _nested(outer: int, inner: int, payload: bytes) -> bytes:
    """``nla(outer, nla(inner, payload))`` (a ``set``/``set_masked`` of one key attribute)."""
    n = 4 + len(payload)
    pad = -n & 3
    return _NLA_HDR.pack(n + pad + 4, outer) + _NLA_HDR.pack(n, inner) + payload + _NLA_PAD[pad]


_OUTPUT = struct.Struct("=HHI")


def _commit(ctx: _Ctx, group: _CommitGroup) -> bool:
    """``commit``: a set/set_masked of ``group.attr`` for the fields that changed (keycmp_mask).

    A partly masked change becomes ``set_masked`` (value, then the wildcard
    bits of the changed fields) unless ``group.use_masked`` is false; then
    OVS writes the whole header with ``set`` and matches all of it. Returns
    whether anything was committed.
    """
    flow, base = ctx.flow, ctx.base
    fd, bd = flow.__dict__, base.__dict__
    get = group.get
    if get(fd) == get(bd):
        return False  # nothing changed: nothing to emit or match
    masks_get = ctx.masks.get
    key = mask = 0  # the payload's fields, packed
    fully = True
    for member, bits, writable, ones in group.fields:
        v = fd[member]
        if v == bd[member]:
            m = 0
        elif writable:
            m = masks_get(member, 0)
            if member == "nw_tos":  # the tunnel's ECN bits are left alone
                m &= tnl.tos_commit_mask(flow, base)
        else:
            m = 0
        if m != ones:
            fully = False
            m &= ones
        key = (key << bits) | v
        mask = (mask << bits) | m
    size, order = group.size, group.order
    if not fully and group.use_masked:
        # commit_masked_set_action: the value's unmasked bits are cleared
        pad = group.pad
        ctx.odp += _nested(ActionAttr.SET_MASKED, group.attr, (key & mask).to_bytes(size, order)
                           + pad + mask.to_bytes(size, order) + pad)
    else:
        ctx.odp += _nested(ActionAttr.SET, group.attr, key.to_bytes(size, order) + group.pad)
        if not fully:
            for member, bits, _w, _ones in group.fields:
                ctx.mask(member, (1 << min(bits, OF_MEMBERS[member])) - 1)
    for member, _n, _w, _ones in group.fields:
        bd[member] = fd[member]
    return True


def _vlan_stack(f: OfFlow) -> list[tuple[int, int]]:
    """The VLAN headers (tpid, tci), outermost first (flow_count_vlan_headers)."""
    out = []
    for tpid, tci in (("vlan_tpid", "vlan_tci"), ("vlan1_tpid", "vlan1_tci")):
        if not getattr(f, tci) & VLAN_CFI:
            break
        out.append((getattr(f, tpid) or ETH_TYPE_VLAN, getattr(f, tci)))
    return out


def _commit_vlan(ctx: _Ctx) -> None:
    """``commit_vlan_action``: pop the base's tags that differ, push the flow's."""
    base, flow = _vlan_stack(ctx.base), _vlan_stack(ctx.flow)
    bn, fn = len(base), len(flow)
    while bn and fn and base[bn - 1] == flow[fn - 1]:  # flow_skip_common_vlan_headers
        bn -= 1
        fn -= 1
    for i in range(bn - 1, -1, -1):
        ctx.odp += nla(ActionAttr.POP_VLAN)
        for member in (("vlan_tpid", "vlan_tci"), ("vlan1_tpid", "vlan1_tci"))[i]:
            ctx.mask(member)
    for i in range(fn - 1, -1, -1):
        tpid, tci = flow[i]
        ctx.odp += nla(ActionAttr.PUSH_VLAN, _b(tpid, 2) + _b(tci, 2))
    for member in ("vlan_tpid", "vlan_tci", "vlan1_tpid", "vlan1_tci"):
        ctx.base.set(member, getattr(ctx.flow, member))


_MPLS_TYPES = (ETH_TYPE_MPLS, ETH_TYPE_MPLS_MCAST)
_LSE = ("mpls_lse", "mpls_lse1", "mpls_lse2")
_MPLS_BOS = 0x100


def _mpls_stack(f: OfFlow) -> list[int]:
    """``flow_count_mpls_labels``: the label stack entries, outermost first."""
    if f.dl_type not in _MPLS_TYPES:
        return []
    out = []
    for member in _LSE:
        lse = getattr(f, member)
        out.append(lse)
        if lse & _MPLS_BOS:
            return out
    return [lse for lse in out if lse]


def _count_mpls(ctx: _Ctx) -> int:
    """``flow_count_mpls_labels`` with its wildcarding (the BOS bits it reads)."""
    flow = ctx.flow
    if flow.dl_type not in _MPLS_TYPES:
        return 0
    for i, member in enumerate(_LSE):
        ctx.mask(member, _MPLS_BOS)
        if getattr(flow, member) & _MPLS_BOS:
            return i + 1
    return len([m for m in _LSE if getattr(flow, m)])


def _set_mpls_stack(f: OfFlow, dl_type: int, stack: list[int]) -> None:
    for member, lse in zip(_LSE, stack + [0] * (3 - len(stack)), strict=True):
        setattr(f, member, lse)
    f.dl_type = dl_type


def _commit_mpls(ctx: _Ctx) -> None:
    """``commit_mpls_action``: pop the base's entries that differ, ``set(mpls)`` the
    top one where one entry differs, push the flow's extra ones."""
    flow, base = ctx.flow, ctx.base
    fs, bs = _mpls_stack(flow), _mpls_stack(base)
    common = 0
    for a, b in zip(reversed(fs), reversed(bs), strict=False):  # from the bottom up
        if a != b:
            break
        common += 1
    while len(bs) > common:
        if len(bs) - 1 == common and len(fs) > common:
            lse = fs[len(fs) - len(bs)]
            ctx.odp += nla(ActionAttr.SET, nla(KeyAttr.MPLS, _b(lse, 4)))
            bs[0] = lse
            common += 1
        else:
            # popping all entries from below the top: the ethertype stays MPLS
            # until the last pop, which gives the packet the flow's ethertype
            dl_type = ETH_TYPE_MPLS if flow.dl_type not in _MPLS_TYPES and len(bs) > 1 \
                else flow.dl_type
            ctx.odp += nla(ActionAttr.POP_MPLS, _b(dl_type, 2))
            bs.pop(0)
            base.dl_type = flow.dl_type
    while len(bs) < len(fs):
        lse = fs[len(fs) - len(bs) - 1]
        ctx.odp += nla(ActionAttr.PUSH_MPLS, _b(lse, 4) + _b(flow.dl_type, 2) + bytes(2))
        bs.insert(0, lse)
        base.dl_type = flow.dl_type
    _set_mpls_stack(base, base.dl_type, bs)


_COMMIT_ETH = _CommitGroup(KeyAttr.ETHERNET, [("dl_src", 6, True), ("dl_dst", 6, True)])
_COMMIT_IPV4 = _CommitGroup(KeyAttr.IPV4, [("nw_src", 4, True), ("nw_dst", 4, True),
                                           ("nw_proto", 1, False), ("nw_tos", 1, True),
                                           ("nw_ttl", 1, True), ("nw_frag", 1, False)])
_COMMIT_IPV6 = _CommitGroup(KeyAttr.IPV6, [("ipv6_src", 16, True), ("ipv6_dst", 16, True),
                                           ("ipv6_label", 4, True), ("nw_proto", 1, False),
                                           ("nw_tos", 1, True), ("nw_ttl", 1, True),
                                           ("nw_frag", 1, False)])
_COMMIT_ND = _CommitGroup(KeyAttr.ND, [("nd_target", 16, True), ("arp_sha", 6, True),
                                       ("arp_tha", 6, True)])
_COMMIT_ARP = _CommitGroup(KeyAttr.ARP, [("nw_src", 4, True), ("nw_dst", 4, True),
                                         ("nw_proto", 2, True), ("arp_sha", 6, True),
                                         ("arp_tha", 6, True)], pad=2)
_COMMIT_PORTS = {proto: _CommitGroup(attr, [("tp_src", 2, True), ("tp_dst", 2, True)])
                 for proto, attr in ((IPPROTO_TCP, KeyAttr.TCP), (IPPROTO_UDP, KeyAttr.UDP),
                                     (IPPROTO_SCTP, KeyAttr.SCTP))}
#: commit_set_icmp_action: never masked
_COMMIT_ICMP = {key: _CommitGroup(attr, [("tp_src", 1, True), ("tp_dst", 1, True)], False)
                for key, attr in (((ETH_TYPE_IP, IPPROTO_ICMP), KeyAttr.ICMP),
                                  ((ETH_TYPE_IPV6, IPPROTO_ICMPV6), KeyAttr.ICMPV6))}
_COMMIT_PRIORITY = _CommitGroup(KeyAttr.PRIORITY, [("skb_priority", 4, True)],
                                order=sys.byteorder)
_COMMIT_MARK = _CommitGroup(KeyAttr.SKB_MARK, [("pkt_mark", 4, True)], order=sys.byteorder)
#: every member :func:`_commit_actions` compares: when the flow and the base
#: agree on all of them there is nothing to commit
COMMIT_MEMBERS = (
    "dl_src", "dl_dst", "dl_type", "vlan_tpid", "vlan_tci", "vlan1_tpid", "vlan1_tci",
    "mpls_lse", "mpls_lse1", "mpls_lse2", "nw_src", "nw_dst", "nw_proto", "nw_tos", "nw_ttl",
    "nw_frag", "ipv6_src", "ipv6_dst", "ipv6_label", "nd_target", "arp_sha", "arp_tha",
    "tp_src", "tp_dst", "skb_priority", "pkt_mark")
#: the members of the VLAN, MPLS and metadata checks of :func:`_commit_actions`
VLAN_MEMBERS = ("vlan_tpid", "vlan_tci", "vlan1_tpid", "vlan1_tci")
MPLS_MEMBERS = ("dl_type", "mpls_lse", "mpls_lse1", "mpls_lse2")
META_MEMBERS = ("skb_priority", "pkt_mark")
_COMMIT_MEMBERS = itemgetter(*COMMIT_MEMBERS)
_VLAN_MEMBERS = itemgetter(*VLAN_MEMBERS)
_MPLS_MEMBERS = itemgetter(*MPLS_MEMBERS)
_META_MEMBERS = itemgetter(*META_MEMBERS)


def _commit_actions(ctx: _Ctx) -> None:
    """``commit_odp_actions`` for the headers this model rewrites, in OVS's order."""
    flow, base = ctx.flow, ctx.base
    fd, bd = flow.__dict__, base.__dict__
    if _COMMIT_MEMBERS(fd) == _COMMIT_MEMBERS(bd):
        return  # the datapath's packet is the flow already
    _commit(ctx, _COMMIT_ETH)
    # an MPLS packet becomes the non-MPLS one before its L3/L4 changes are committed
    mpls_done = base.dl_type in _MPLS_TYPES and flow.dl_type not in _MPLS_TYPES
    if mpls_done:
        _commit_mpls(ctx)
    slow = False
    if flow.nw_proto:  # commit_set_nw_action: only with an L3 header
        if base.dl_type == ETH_TYPE_IP:
            _commit(ctx, _COMMIT_IPV4)
        elif base.dl_type == ETH_TYPE_IPV6:
            _commit(ctx, _COMMIT_IPV6)
            if base.nw_proto == IPPROTO_ICMPV6:
                slow |= _commit(ctx, _COMMIT_ND)
        elif base.dl_type == ETH_TYPE_ARP:
            slow |= _commit(ctx, _COMMIT_ARP)
    if flow.nw_proto and _is_ip(base):  # commit_set_port_action
        group = _COMMIT_PORTS.get(flow.nw_proto)
        if group is not None:
            _commit(ctx, group)
    group = _COMMIT_ICMP.get((flow.dl_type, flow.nw_proto))
    if group is not None:  # commit_set_icmp_action
        slow |= _commit(ctx, group)
    if not mpls_done and _MPLS_MEMBERS(fd) != _MPLS_MEMBERS(bd):
        _commit_mpls(ctx)
    if _VLAN_MEMBERS(fd) != _VLAN_MEMBERS(bd):
        _commit_vlan(ctx)
    if _META_MEMBERS(fd) != _META_MEMBERS(bd):
        _commit(ctx, _COMMIT_PRIORITY)
        _commit(ctx, _COMMIT_MARK)
    if slow:
        # the datapath cannot be trusted with these rewrites (SLOW_ACTION)
        ctx.slow = True


# ---------------------------------------------------------------------------------
# Tables


def _lookup_from_table(ctx: _Ctx, table_id: int, in_port: int):
    """``rule_dpif_lookup_from_table``: (rule or None, table it was found in).

    The lookup uses ``in_port`` as the input port and restores the flow's
    afterwards. A miss is OVS's ``no_packet_in_rule`` (drop): with the
    default table-miss configuration OVS goes on to the next table only for
    tables configured ``continue`` (not modelled), and there are no
    controllers to send a packet-in to.
    """
    flow = ctx.flow
    old_in_port, old_src, old_dst = flow.in_port, flow.tp_src, flow.tp_dst
    if flow.nw_frag & FRAG_ANY:  # frag_handling "normal": ports are unavailable
        flow.tp_src = flow.tp_dst = 0
    flow.in_port = in_port
    try:
        cls = ctx.bridge.tables.get(table_id)  # Bridge.lookup
        rule = None if cls is None else cls.lookup(flow, ctx.wc)
        if ctx.learned:
            while rule is not None and id(rule) in ctx.learned:
                rule = _past_learned(ctx, table_id, flow, rule)
    finally:
        flow.in_port, flow.tp_src, flow.tp_dst = old_in_port, old_src, old_dst
    return rule, table_id


def _past_learned(ctx: _Ctx, table_id: int, flow: OfFlow, rule):
    """The rule a lookup finds instead of ``rule``, a flow this translation learned.

    OVS's translation sees the tables of the version it started with: the
    learned rule's subtable is searched (its fields stay in the megaflow) but
    the rule is invisible, so the lookup goes on, or finds the rule it
    replaced.
    """
    displaced = ctx.learned[id(rule)][1]
    if displaced is not None:
        return displaced
    cls = ctx.bridge.tables[table_id]
    cls.remove(rule)
    try:
        return ctx.bridge.lookup(table_id, flow, ctx.wc)
    finally:
        cls.replace(rule)


def _resource_check(ctx: _Ctx) -> bool:
    """``xlate_resubmit_resource_check``."""
    if ctx.depth >= MAX_DEPTH:
        ctx.report_error(f"over max translation depth {MAX_DEPTH}")
        ctx.error = ERROR_TEXT["recursion"]
    elif ctx.resubmits >= MAX_RESUBMITS:
        ctx.report_error(f"over {MAX_RESUBMITS} resubmit actions")
        ctx.error = ERROR_TEXT["resubmits"]
    elif len(ctx.odp) > _MAX_ACTIONS_LEN:
        ctx.report_error("resubmits yielded over 64 kB of actions")
        ctx.exit = True
    elif len(ctx.stack) >= 65536 // 16:
        ctx.report_error("resubmits yielded over 64 kB of stack")
        ctx.error = "Stack too deep"
    else:
        return True
    return False


def _table_action(ctx: _Ctx, in_port: int, table_id: int, clone: bool = False) -> None:
    """``xlate_table_action`` + ``xlate_recursively``.

    With ``clone`` the rule's actions run as ``clone_xlate_actions`` runs them
    (for a patch port): then the action set, and the flow, stack and action
    set are restored afterwards. (Every action this model supports is
    "reversible", so no datapath ``clone`` action is needed.)
    """
    if ctx.was_mpls:  # xlate_table_action: recirculate before matching
        _trigger_freeze(ctx)
        return
    if not (ctx.depth < MAX_DEPTH and ctx.resubmits < MAX_RESUBMITS  # the usual case
            and len(ctx.odp) <= _MAX_ACTIONS_LEN and len(ctx.stack) < 65536 // 16) \
            and not _resource_check(ctx):
        return
    old_table = ctx.table_id
    rule, ctx.table_id = _lookup_from_table(ctx, table_id, in_port)
    deepens = table_id <= old_table
    old_step = ctx.step
    if ctx.tracing:
        _report_table(ctx, rule, table_id)
    ctx.resubmits += 1
    ctx.depth += deepens
    old_rule, old_cookie = ctx.rule, ctx.rule_cookie
    if rule is not None:  # xlate_recursively
        ctx.rule, ctx.rule_cookie = rule, rule.payload.cookie
    if clone:
        saved = ctx.flow.copy(), list(ctx.stack), list(ctx.action_set), ctx.was_mpls
        _do_actions(ctx, rule.payload.actions if rule is not None else ())
        if ctx.freezing:  # finished behind the patch port in OVS; not modelled
            ctx.unsupported.append("recirculation behind a patch port")
            ctx.freezing = False
        _xlate_action_set(ctx)
        _restore_flow(ctx.flow, saved[0])
        # popping MPLS in the peer bridge does not affect the calling one
        ctx.stack, ctx.action_set, ctx.was_mpls = saved[1], saved[2], saved[3]
    else:
        _do_actions(ctx, rule.payload.actions if rule is not None else ())
    ctx.rule, ctx.rule_cookie = old_rule, old_cookie
    ctx.depth -= deepens
    ctx.step = old_step
    ctx.table_id = old_table


def _report_table(ctx: _Ctx, rule, table_id: int) -> None:
    """``xlate_report_table``: a trace step for the lookup (only when tracing)."""
    if not ctx.tracing:
        return
    depth = 0 if ctx.step is None else ctx.step.depth + 1
    if rule is None:
        step = TraceStep(table_id, None, None, 0, depth)
    else:
        step = TraceStep(table_id, rule.match, rule.priority, rule.payload.cookie, depth)
    step.bridge = ctx.bridge.name
    ctx.trace.append(step)
    ctx.step = step


# ---------------------------------------------------------------------------------
# Actions


def _output(ctx: _Ctx, port: int, max_len: int = 0xFFFF) -> None:
    """``xlate_output_action``; ``max_len`` is the byte limit for ``CONTROLLER``."""
    flow = ctx.flow
    if port < OFPP_MAX:  # a port number (every reserved port is above OFPP_MAX)
        if port != flow.in_port:
            _compose_output(ctx, port)
        else:
            ctx.report("skipping output to input port")
    elif port == OFPP_IN_PORT:
        _compose_output(ctx, flow.in_port)
    elif port == OFPP_TABLE:
        _table_action(ctx, flow.in_port, 0)
    elif port == OFPP_NONE:
        pass
    elif port == OFPP_CONTROLLER:
        _controller(ctx, max_len, OFPR_ACTION_SET if ctx.in_action_set else OFPR_ACTION)
    elif port in (OFPP_FLOOD, OFPP_ALL):
        _flood(ctx, port == OFPP_ALL)
    elif port == OFPP_NORMAL:
        _normal(ctx)
    elif port == OFPP_LOCAL:
        if port != flow.in_port:
            _compose_output(ctx, port)
        else:
            ctx.report("skipping output to input port")
    else:
        name = format_port(port)
        ctx.unsupported.append(name)
        ctx.report(f">>>> output to {name} is not supported by this model <<<<")


def _flood(ctx: _Ctx, all_ports: bool) -> None:
    """``flood_packets``: every port but the input port (FLOOD: without ``no_flood``).

    OVS walks its port hash map; the order here is by OpenFlow port number,
    which the differential tests normalise away as ``ovs-dpctl
    normalize-actions`` does.
    """
    for port in ctx.bridge.ports:
        if port.ofport == ctx.flow.in_port:
            continue
        if all_ports or not port.no_flood:
            _compose_output(ctx, port.ofport)


# ---------------------------------------------------------------------------------
# NORMAL (ofproto-dpif-xlate.c xlate_normal)

#: ``eth_addr_is_reserved`` (lib/packets.c): 802.1D/802.1Q reserved groups and others
_RESERVED_MACS = frozenset(
    [0x0180C2000000 + i for i in range(16)]  # STP, pause frames, other 802.1 protocols
    + [0x00E02B000000, 0x00E02B000004, 0x00E02B000006]  # Extreme's EDP and EAPS
    + [0x01000C000000, 0x01000CCCCCCC, 0x01000CCCCCCD, 0x01000CCDCDCD]  # Cisco's
    + [0x01000CCCCCC0 + i for i in range(8)])
#: the bundle of OFPP_NONE/OFPP_CONTROLLER, for packets a controller sources
#: (``ofpp_none_bundle``): a trunk of every VLAN that learns nothing
_NONE_BUNDLE = VlanConfig()


def _xvlan_extract(flow: OfFlow) -> XVlan:
    """``xvlan_extract``: the flow's VLAN headers up to the first without CFI."""
    slots = []
    for tpid_m, tci_m in (("vlan_tpid", "vlan_tci"), ("vlan1_tpid", "vlan1_tci")):
        tpid, tci = getattr(flow, tpid_m) or ETH_TYPE_VLAN, getattr(flow, tci_m)
        if tpid not in (ETH_TYPE_VLAN, 0x88A8) or not tci & VLAN_CFI:
            break
        slots.append((tpid, tci & 0x0FFF, tci >> 13))
    slots += [(0, 0, 0)] * (2 - len(slots))
    return XVlan(slots[0], slots[1])


def _is_gratuitous_arp(ctx: _Ctx) -> bool:
    """``is_gratuitous_arp``, un-wildcarding what it examines."""
    flow = ctx.flow
    if flow.dl_type != ETH_TYPE_ARP:
        return False
    ctx.mask("dl_dst")
    if flow.dl_dst != 0xFFFFFFFFFFFF:
        return False
    ctx.mask("nw_proto")
    if flow.nw_proto == 2:
        return True
    if flow.nw_proto == 1:
        ctx.mask("nw_src")
        ctx.mask("nw_dst")
        return flow.nw_src == flow.nw_dst
    return False


def _normal(ctx: _Ctx) -> None:
    """``xlate_normal``: learn the source MAC (only with ``generate``), then send
    to the port the destination was learned on or flood the packet's VLAN.

    Not modelled: bonds, mirrors, multicast snooping, STP/RSTP states.
    """
    flow, bridge = ctx.flow, ctx.bridge
    ctx.mask("dl_src")
    ctx.mask("dl_dst")
    ctx.mask("vlan_tci", 0x0FFF | VLAN_CFI)
    in_ofport = flow.in_port
    in_port = bridge.port(in_ofport)
    if in_port is not None:
        in_cfg, in_name = bridge.vlan_config(in_ofport), in_port.name
    elif in_ofport in (OFPP_NONE, OFPP_CONTROLLER):
        in_cfg, in_name = _NONE_BUNDLE, "ofpp_none"
    else:
        ctx.report_error(f"received packet on unknown port {in_ofport}")
        ctx.report("no input bundle, dropping")
        return
    if flow.dl_type in (ETH_TYPE_VLAN, 0x88A8) and not flow.vlan_tci & VLAN_CFI:
        ctx.report("partial VLAN tag, dropping")
        return
    in_xvlan = _xvlan_extract(flow)
    if in_port is not None:
        reason = in_cfg.input_vid_error(in_xvlan.vlan, in_name)
        if reason is not None:
            ctx.report_error(reason)
            ctx.report("disallowed VLAN VID for this input port, dropping")
            return
    xvlan = in_cfg.input_translate(in_xvlan)
    vlan = xvlan.vlan
    # is_admissible (not for OFPP_NONE's bundle, which has no port)
    if in_port is not None and not bridge.forward_bpdu and flow.dl_dst in _RESERVED_MACS:
        ctx.report("packet has reserved destination MAC, dropping")
        return
    grat_arp = _is_gratuitous_arp(ctx)
    ml = bridge.mac_learning
    if ctx.generate and in_port is not None:
        if ml.learn(flow.dl_src, vlan, in_ofport, ctx.now, is_grat_arp=grat_arp) and ctx.tracing:
            ctx.report(f"learned that {_mac_text(flow.dl_src)} is on port {in_name} "
                       f"in VLAN {vlan}")
    out = ml.lookup_port(flow.dl_dst, vlan)
    if out is None:
        ctx.report("no learned MAC for destination, flooding")
        for port in bridge.bundles():
            if port.ofport == in_ofport or port.no_flood:
                continue
            cfg = bridge.vlan_config(port.ofport)
            if cfg.includes(xvlan):
                _output_normal(ctx, port.ofport, cfg, xvlan)
    elif out == in_ofport:
        ctx.report("learned port is input port, dropping")
    elif bridge.port(out) is None:
        ctx.report("learned port is unknown, dropping")
    else:
        ctx.report("forwarding to learned port")
        _output_normal(ctx, out, bridge.vlan_config(out), xvlan)


def _mac_text(mac: int) -> str:
    return ":".join(f"{b:02x}" for b in mac.to_bytes(6, "big"))


def _output_normal(ctx: _Ctx, ofport: int, cfg: VlanConfig, xvlan: XVlan) -> None:
    """``output_normal``: output with the VLAN headers the port's mode calls for
    (``xvlan_output_translate``, priority tags, ``xvlan_put``), then put the
    flow's headers back."""
    flow = ctx.flow
    if cfg.output_masks_inner_tci:  # check_and_set_cvlan_mask
        ctx.mask("vlan1_tci", 0xFFFF)
    out = cfg.output_translate(xvlan)
    if cfg.priority_tags is not PriorityTags.NEVER:
        out = XVlan((out.outer[0], out.outer[1], flow.vlan_tci >> 13), out.inner)
    saved = flow.vlan_tpid, flow.vlan_tci, flow.vlan1_tpid, flow.vlan1_tci
    for (tpid, vid, pcp), (tpid_m, tci_m) in zip((out.outer, out.inner),
                                                 (("vlan_tpid", "vlan_tci"),
                                                  ("vlan1_tpid", "vlan1_tci")), strict=True):
        tci = vid | (pcp << 13)
        if tci or (cfg.priority_tags is PriorityTags.ALWAYS and tpid):
            tci |= VLAN_CFI
            flow.set(tpid_m, tpid or ETH_TYPE_VLAN)
        flow.set(tci_m, tci)
    _compose_output(ctx, ofport)
    flow.vlan_tpid, flow.vlan_tci, flow.vlan1_tpid, flow.vlan1_tci = saved


def _restore_flow(flow: OfFlow, saved: OfFlow) -> None:
    """Put ``saved``'s members back into ``flow`` (the same object stays in use)."""
    flow.assign(saved)


#: what the peer bridge of a patch port sees cleared: metadata, tunnel metadata, registers
PATCH_CLEARED_MEMBERS = ("metadata", *tnl.TUNNEL_MEMBERS, *(f"reg{i}" for i in range(16)))


def _patch_output(ctx: _Ctx, port) -> None:
    """``patch_port_output``: continue in the peer bridge, then carry on unchanged.

    The peer sees the packet enter on the peer port with metadata, registers
    and tunnel metadata cleared, a fresh stack and action set. Afterwards the
    flow, stack and action set are restored, and neither ``exit`` nor an
    error of the peer bridge propagates back. The datapath's view of the
    packet (the base flow) keeps whatever the peer committed.
    """
    peer = ctx.bridge.peer_of(port)
    if peer is None:
        ctx.report(f"patch port {port.name} has no peer, skipping output")
        return
    peer_bridge, peer_port = peer
    flow = ctx.flow
    saved = flow.copy(), ctx.stack, ctx.action_set, ctx.bridge, ctx.step
    ctx.stack, ctx.action_set = [], []
    flow.in_port = peer_port.ofport
    for name in PATCH_CLEARED_MEMBERS:
        setattr(flow, name, 0)
    tnl_wc = {m: ctx.wc.masks.pop(m) for m in tnl.TUNNEL_MEMBERS if m in ctx.wc.masks}
    ctx.report(f'bridge("{peer_bridge.name}")')
    ctx.bridge = peer_bridge
    _table_action(ctx, flow.in_port, 0, clone=True)
    _xlate_action_set(ctx)
    for m in tnl.TUNNEL_MEMBERS:  # the calling bridge's tunnel wildcards come back
        ctx.wc.masks.pop(m, None)
    ctx.wc.masks.update(tnl_wc)
    _restore_flow(flow, saved[0])
    ctx.stack, ctx.action_set, ctx.bridge, ctx.step = saved[1:]
    ctx.exit = False
    ctx.error = None


def _compose_output(ctx: _Ctx, ofport: int) -> None:
    """``compose_output_action__`` for a port: commit, then ``output`` (or the patch peer)."""
    port = ctx.bridge.port(ofport)
    if port is None:
        ctx.report("Nonexistent output port")
        return
    if port.no_fwd:  # check_output_prerequisites
        ctx.report("OFPPC_NO_FWD set, skipping output")
        return
    if port.peer is not None:
        _patch_output(ctx, port)
        return
    if port.tunnel is not None:
        # the kernel datapath's tunnel output: set(tunnel(...)) before the other commits
        saved_tnl = tnl.save_tunnel(ctx.flow)
        tnl.tnl_port_send(port.tunnel, ctx.flow, ctx.mask)
        if tnl.tunnel_dst(ctx.flow) == ctx.orig_tunnel_dst:
            ctx.report("Not tunneling to our own address")
            return  # as OVS, the flow keeps the port's tunnel metadata
        ctx.report("output to kernel tunnel")
        ctx.odp += tnl.commit_tunnel(ctx.flow, ctx.base)
        tnl.restore_tunnel(ctx.flow, saved_tnl)
    _commit_actions(ctx)
    ctx.odp += _OUTPUT.pack(8, ActionAttr.OUTPUT, port.odp_port)  # nla_u32


def _do_actions(ctx: _Ctx, actions) -> None:
    """``do_xlate_actions``: each action by its handler (:data:`_ACTION_HANDLERS`)."""
    if not actions:
        ctx.report("drop")
        return
    handlers = _ACTION_HANDLERS
    tracing = ctx.tracing
    for a in actions:
        if ctx.error is not None or ctx.exit:
            break
        if ctx.was_mpls and _needs_recirculation(a):  # recirc_for_mpls
            _trigger_freeze(ctx)
            break
        if tracing:
            ctx.report_action(a)
        handler = handlers.get(a.__class__)
        if handler is None:
            handler = _action_handler(a.__class__)
        if handler(ctx, a) is _STOP:
            return  # the rest of this rule's actions are skipped


#: a handler's answer when the rest of the rule's actions are skipped
_STOP = object()


def _act_output(ctx: _Ctx, a: A.Output):
    _output(ctx, a.port, a.max_len)


def _act_output_reg(ctx: _Ctx, a: A.OutputReg):
    port = _get_subfield(ctx.flow, a.src)
    if port <= 0xFFFF:
        if ctx.tracing:
            ctx.report(f"output port is {port}")
        _mask_subfield(ctx, a.src)
        _output(ctx, port)
    else:
        ctx.report(f"output port {port} is out of range")


def _act_resubmit(ctx: _Ctx, a: A.Resubmit):
    in_port = ctx.flow.in_port if a.in_port == OFPP_IN_PORT else a.in_port
    table = ctx.table_id if a.table == 255 else a.table
    if a.with_ct_orig:
        ctx.report_error("resubmit(ct) with non-tracked or non-IP packet!")
        return
    _table_action(ctx, in_port, table)


def _act_goto_table(ctx: _Ctx, a: A.GotoTable):
    _table_action(ctx, ctx.flow.in_port, a.table)


def _act_reg_move(ctx: _Ctx, a: A.RegMove):
    flow = ctx.flow
    if not (_prereqs_ok(a.src.field.prereq, flow, ctx)
            and _prereqs_ok(a.dst.field.prereq, flow, ctx)):
        ctx.report("unmet prerequisites for move, ignored")
        return
    value = _get_subfield(flow, a.src)
    _mask_subfield(ctx, a.src)
    _mask_subfield(ctx, a.dst)
    _set_subfield(flow, a.dst, value)
    _report_subfield(ctx, a.dst)


def _act_stack_push(ctx: _Ctx, a: A.StackPush):
    _mask_subfield(ctx, a.subfield)
    ctx.stack.append((_get_subfield(ctx.flow, a.subfield), a.subfield.n_bits))


def _act_stack_pop(ctx: _Ctx, a: A.StackPop):
    if not ctx.stack:
        ctx.report_error("stack underflow")
        return
    value, _n = ctx.stack.pop()
    _mask_subfield(ctx, a.subfield)
    _set_subfield(ctx.flow, a.subfield, value & ((1 << a.subfield.n_bits) - 1))
    _report_subfield(ctx, a.subfield)


def _report_subfield(ctx: _Ctx, sf: A.Subfield) -> None:
    """``xlate_report_subfield``: the detail ``SUBFIELD is now VALUE`` after a move or
    pop (only when tracing): a whole field as ``mf_format`` prints it, part of
    one as the hex of its bits (``ds_put_hex``: ``0`` when zero)."""
    if not ctx.tracing:
        return
    if sf.ofs == 0 and sf.n_bits >= sf.field.n_bits:
        text = format_field_value(sf.field, _get_field(ctx.flow, sf.field))
    else:
        value = _get_subfield(ctx.flow, sf)
        text = f"{value:#x}" if value else "0"
    ctx.report(f"{sf.format()} is now {text}")


def _act_set_eth(ctx: _Ctx, a: A.SetEth):
    member = "dl_src" if a.which == "src" else "dl_dst"
    ctx.masks[member] = ALL_ONES[member]  # ctx.mask(member): every bit
    ctx.flow.set(member, a.mac)


def _act_set_ipv4(ctx: _Ctx, a: A.SetIPv4):
    flow = ctx.flow
    if flow.dl_type == ETH_TYPE_IP:
        member = "nw_src" if a.which == "src" else "nw_dst"
        ctx.mask(member)
        ctx.mask("nw_proto")
        flow.set(member, a.ip)


def _act_set_ip_tos(ctx: _Ctx, a: A.SetIpDscp | A.SetIpEcn):
    flow = ctx.flow
    if _is_ip(flow):
        dscp = isinstance(a, A.SetIpDscp)
        bits = 0xFC if dscp else 0x03
        value = a.tos if dscp else a.ecn
        ctx.mask("nw_proto")
        ctx.mask("nw_tos", bits)
        flow.set("nw_tos", (flow.nw_tos & ~bits & 0xFF) | value)


def _act_set_ip_ttl(ctx: _Ctx, a: A.SetIpTtl):
    if _is_ip(ctx.flow):
        ctx.mask("nw_proto")
        ctx.mask("nw_ttl")
        ctx.flow.set("nw_ttl", a.ttl)


def _act_set_l4_port(ctx: _Ctx, a: A.SetL4Port):
    flow = ctx.flow
    if _is_ip(flow) and not flow.nw_frag & FRAG_LATER:
        member = "tp_src" if a.which == "src" else "tp_dst"
        ctx.mask("nw_proto")
        ctx.mask(member)
        flow.set(member, a.port)


def _act_dec_ttl(ctx: _Ctx, a: A.DecTtl):
    flow = ctx.flow
    ctx.mask("nw_ttl")
    ctx.mask("nw_proto")
    if _is_ip(flow):  # compose_dec_ttl
        if flow.nw_ttl > 1:
            flow.set("nw_ttl", flow.nw_ttl - 1)
        else:
            for cid in (0,) if a.controller_ids is None else a.controller_ids:
                _controller(ctx, 0xFFFF, OFPR_INVALID_TTL, cid)
            version = 4 if flow.dl_type == ETH_TYPE_IP else 6
            ctx.report(f">>>> IPv{version} decrement TTL exception <<<<")
            return _STOP
    return None


def _act_controller(ctx: _Ctx, a: A.Controller):
    if a.pause or a.meter_id is not None:
        ctx.unsupported.append(a.format())
        ctx.report(">>>> controller with pause or meter_id is not supported by this "
                   "model <<<<")
        return
    _controller(ctx, a.max_len, _REASONS[a.reason], a.controller_id, a.userdata)


def _act_enqueue(ctx: _Ctx, a: A.Enqueue):
    ctx.mask("skb_priority")
    _enqueue(ctx, a)


def _act_set_queue(ctx: _Ctx, a: A.SetQueue):
    ctx.mask("skb_priority")
    priority = queue_to_priority(a.queue, ctx.datapath_type)
    if priority is not None:
        ctx.flow.set("skb_priority", priority)


def _set_vlan_bits(ctx: _Ctx, bits: int, value: int, push_if_needed: bool) -> None:
    """``mod_vlan_vid``/``mod_vlan_pcp``: replace the TCI's ``bits`` with ``value``
    (a tag is pushed first when there is none and the action asks for it)."""
    flow = ctx.flow
    ctx.mask("vlan_tci", bits | VLAN_CFI)
    if flow.vlan_tci & VLAN_CFI or push_if_needed:
        if not flow.vlan_tpid:
            flow.set("vlan_tpid", ETH_TYPE_VLAN)
        flow.set("vlan_tci", (flow.vlan_tci & ~bits & 0xFFFF) | value | VLAN_CFI)


def _act_set_vlan_vid(ctx: _Ctx, a: A.SetVlanVid):
    _set_vlan_bits(ctx, 0x0FFF, a.vid, a.push_vlan_if_needed)


def _act_set_vlan_pcp(ctx: _Ctx, a: A.SetVlanPcp):
    _set_vlan_bits(ctx, 0xE000, a.pcp << 13, a.push_vlan_if_needed)


def _act_write_metadata(ctx: _Ctx, a: A.WriteMetadata):
    flow = ctx.flow
    flow.set("metadata", (flow.metadata & ~a.mask) | (a.metadata & a.mask))


def _act_set_mpls(ctx: _Ctx, a: A.SetMplsLabel | A.SetMplsTc | A.SetMplsTtl):
    flow = ctx.flow
    if flow.dl_type in _MPLS_TYPES:
        if isinstance(a, A.SetMplsLabel):
            mask, value = 0xFFFFF000, a.label << 12
        elif isinstance(a, A.SetMplsTc):
            mask, value = 0xE00, a.tc << 9
        else:
            mask, value = 0xFF, a.ttl
        ctx.mask("mpls_lse", mask)
        flow.set("mpls_lse", (flow.mpls_lse & ~mask & 0xFFFFFFFF) | value)


def _c_hex(value: int) -> str:
    """C's ``%#x``: ``0x`` before a non-zero value, plain ``0`` for zero."""
    return f"{value:#x}" if value else "0"


def _act_simple(ctx: _Ctx, a: A.Simple):
    """The argument-less actions: ``pop_queue``, ``dec_mpls_ttl``, ``exit``,
    ``clear_actions``."""
    flow = ctx.flow
    name = a.name
    if name == "pop_queue":
        ctx.mask("skb_priority")
        if flow.skb_priority != ctx.orig_skb_priority:
            flow.set("skb_priority", ctx.orig_skb_priority)
            ctx.report(f"queue = {_c_hex(flow.skb_priority)}")
    elif name == "dec_mpls_ttl":
        if flow.dl_type in _MPLS_TYPES:  # compose_dec_mpls_ttl_action
            ctx.mask("mpls_lse", 0xFF)
            ttl = flow.mpls_lse & 0xFF
            if ttl > 1:
                flow.set("mpls_lse", flow.mpls_lse - 1)
                return None
            _controller(ctx, 0xFFFF, OFPR_INVALID_TTL)
        # OVS stops the table here for a non-MPLS packet too
        ctx.report(">>>> MPLS decrement TTL exception <<<<")
        return _STOP
    elif name == "exit":
        ctx.exit = True
    elif name == "clear_actions":
        if ctx.tracing:
            ctx.report("action set was " + A.format_actions(ctx.action_set,
                                                            ctx.bridge.port_map))
        ctx.action_set.clear()
    else:
        _act_unsupported(ctx, a)
    return None


def _act_write_actions(ctx: _Ctx, a: A.WriteActions):
    ctx.action_set.extend(a.actions)
    if ctx.tracing:
        ctx.report("action set is " + A.format_actions(ctx.action_set, ctx.bridge.port_map))


def _act_unsupported(ctx: _Ctx, a: A.Action):
    ctx.unsupported.append(a.format())
    ctx.report(f">>>> {a.name} is not supported by this model <<<<")


#: the handler of each action class, in the order ``do_xlate_actions``' switch
#: checks them; a handler returns :data:`_STOP` to skip the rule's other actions
_HANDLER_ORDER: tuple[tuple[type, object], ...] = (
    (A.Output, _act_output),
    (A.OutputReg, _act_output_reg),
    (A.Resubmit, _act_resubmit),
    (A.GotoTable, _act_goto_table),
    (A.SetField, lambda ctx, a: _xlate_set_field(ctx, a)),  # defined below
    (A.RegMove, _act_reg_move),
    (A.StackPush, _act_stack_push),
    (A.StackPop, _act_stack_pop),
    (A.SetEth, _act_set_eth),
    (A.SetIPv4, _act_set_ipv4),
    (A.SetIpDscp, _act_set_ip_tos),
    (A.SetIpEcn, _act_set_ip_tos),
    (A.SetIpTtl, _act_set_ip_ttl),
    (A.SetL4Port, _act_set_l4_port),
    (A.DecTtl, _act_dec_ttl),
    (A.Controller, _act_controller),
    (A.Enqueue, _act_enqueue),
    (A.SetQueue, _act_set_queue),
    (A.SetVlanVid, _act_set_vlan_vid),
    (A.SetVlanPcp, _act_set_vlan_pcp),
    (A.StripVlan, lambda ctx, a: _pop_vlan(ctx)),
    (A.PushVlan, lambda ctx, a: _push_vlan(ctx, a.ethertype)),
    (A.WriteMetadata, _act_write_metadata),
    (A.PushMpls, lambda ctx, a: _push_mpls(ctx, a.ethertype)),
    (A.PopMpls, lambda ctx, a: _pop_mpls(ctx, a.ethertype)),
    (A.SetMplsLabel, _act_set_mpls),
    (A.SetMplsTc, _act_set_mpls),
    (A.SetMplsTtl, _act_set_mpls),
    (A.Simple, _act_simple),
    (A.SetTunnel, lambda ctx, a: ctx.flow.set("tun_id", a.tun_id)),
    (A.Learn, lambda ctx, a: _learn(ctx, a)),
    (A.Note, lambda ctx, a: None),
    (A.Clone, lambda ctx, a: _clone(ctx, a.actions)),
    (A.WriteActions, _act_write_actions),
)
#: action class -> handler, filled in for subclasses on first use
_ACTION_HANDLERS: dict[type, object] = dict(_HANDLER_ORDER)


def _action_handler(cls: type):
    """The handler of an action class not in :data:`_ACTION_HANDLERS` (a subclass
    takes its first base's in :data:`_HANDLER_ORDER`; else unsupported)."""
    handler = next((h for base, h in _HANDLER_ORDER if issubclass(cls, base)), _act_unsupported)
    _ACTION_HANDLERS[cls] = handler
    return handler


#: actions that need no recirculation after a pop_mpls (``recirc_for_mpls``)
_NO_RECIRC = (A.Output, A.OutputReg, A.Enqueue, A.SetVlanVid, A.SetVlanPcp, A.SetEth,
              A.SetTunnel, A.SetQueue)


def _needs_recirculation(a: A.Action) -> bool:
    if isinstance(a, _NO_RECIRC):
        return False
    if isinstance(a, A.SetField):
        return a.field.prereq not in ("none", "ethernet", "vlan_vid") or \
            a.field.name.startswith("mpls")
    return True


def _trigger_freeze(ctx: _Ctx) -> None:
    """``ctx_trigger_freeze``: stop translating here; the packet recirculates (to
    parse the headers under a popped MPLS label) and the rest of the actions run
    on the recirculated packet, in another translation."""
    ctx.exit = True
    ctx.freezing = True


def _finish_freezing(ctx: _Ctx) -> None:
    """``finish_freezing``: commit, then ``recirc`` with the frozen state's id
    (numbered within the translation, as :func:`_controller` explains)."""
    _commit_actions(ctx)
    recirc_id = ctx.recirc_ids.setdefault(("frozen", len(ctx.recirc_ids)),
                                          len(ctx.recirc_ids) + 1)
    ctx.odp += nla_u32(ActionAttr.RECIRC, recirc_id)
    ctx.freezing = False


#: struct flow members from ``nw_src`` on (``FLOW_SEGMENT_2_ENDS_AT``): what
#: flow_push_mpls clears, as the MPLS payload is opaque
_L3_L4_MEMBERS = ("nw_src", "nw_dst", "ipv6_src", "ipv6_dst", "ipv6_label", "nw_frag", "nw_tos",
                  "nw_ttl", "nw_proto", "arp_sha", "arp_tha", "tcp_flags", "tp_src", "tp_dst",
                  "nd_target", "igmp_group_ip4", "dp_hash")


def _push_mpls(ctx: _Ctx, ethertype: int) -> None:
    """``compose_mpls_push_action`` + ``flow_push_mpls``."""
    flow = ctx.flow
    n = _count_mpls(ctx)
    if not n:
        _commit_actions(ctx)
    elif n >= 3:
        ctx.report_error("dropping packet on which an MPLS push action can't be performed "
                         "as it would have more MPLS LSEs than the 3 supported.")
        ctx.error = "Too many MPLS labels"
        return
    stack = _mpls_stack(flow)
    if n:
        for member in _LSE[:n]:
            ctx.mask(member)
        stack.insert(0, stack[0] & ~_MPLS_BOS)
    else:
        label, tc, ttl = (2 if flow.dl_type == ETH_TYPE_IPV6 else 0), 0, 64
        if _is_ip(flow):
            tc = (flow.nw_tos & 0xFC) >> 2
            ctx.mask("nw_tos", 0xFC)
            ctx.mask("nw_ttl")
            ttl = flow.nw_ttl or ttl
        stack = [(label << 12) | ((tc & 7) << 9) | _MPLS_BOS | ttl]
        for member in _L3_L4_MEMBERS:
            setattr(flow, member, 0)
    _set_mpls_stack(flow, ethertype, stack)


def _pop_mpls(ctx: _Ctx, ethertype: int) -> None:
    """``compose_mpls_pop_action`` + ``flow_pop_mpls``."""
    flow = ctx.flow
    n = _count_mpls(ctx)
    if n == 0:
        return
    if n == 3:
        ctx.mask("mpls_lse2", _MPLS_BOS)
        if not flow.mpls_lse2 & _MPLS_BOS:
            ctx.report_error("dropping packet on which an MPLS pop action can't be performed "
                             "as it has more MPLS LSEs than the 3 supported.")
            ctx.error = "Too many MPLS labels"
            ctx.odp.clear()
            return
    for member in _LSE[1:n]:
        ctx.mask(member)
    _set_mpls_stack(flow, ethertype, _mpls_stack(flow)[1:])
    if ethertype not in _MPLS_TYPES:
        ctx.was_mpls = True


def _learn(ctx: _Ctx, a: A.Learn) -> None:
    """``xlate_learn_action``: the megaflow matches every source the learned flow
    is built from (``learn_mask``); with side effects the flow (``learn_execute``)
    is added, or replaces one with the same match and priority, at once, but the
    rest of this translation does not see it (:func:`_past_learned`)."""
    for spec in a.specs:
        if spec.src is not None:
            _mask_subfield(ctx, spec.src)
    if not ctx.generate:
        ctx.report(">>>> suppressing side effects, so learn action ignored <<<<")
        return
    if a.limit or a.result_dst is not None:
        ctx.unsupported.append("learn with limit or result_dst")
    flow = ctx.flow
    match = a.learned_match(lambda sf: _get_subfield(flow, sf))
    actions = a.learned_actions(lambda sf: _get_subfield(flow, sf))
    fm = FlowMod(match=match, actions=actions, table=a.table, priority=a.priority,
                 cookie=a.cookie, idle_timeout=a.idle_timeout, hard_timeout=a.hard_timeout,
                 command="modify_strict")
    if ctx.tracing:
        text = f"table={a.table} " + format_match(match)
        text = text.rstrip(" ") + f" priority={a.priority}"
        if a.cookie:
            text += f" cookie={a.cookie:#x}"
        if a.idle_timeout:
            text += f" idle={a.idle_timeout}"
        if a.hard_timeout:
            text += f" hard={a.hard_timeout}"
        ctx.report(text + " actions=" + A.format_actions(actions))
    cls = ctx.bridge.tables.get(a.table)
    displaced = None if cls is None else cls.find_exact(match, a.priority)
    if displaced is not None and id(displaced) in ctx.learned:  # learned twice here
        displaced = ctx.learned[id(displaced)][1]
    rule = ctx.bridge.add_flow(fm)
    ctx.learned[id(rule)] = (rule, displaced)


def _enqueue(ctx: _Ctx, a: A.Enqueue) -> None:
    """``xlate_enqueue_action``: output with ``skb_priority`` set to the queue's
    priority, or a plain output if the datapath has no priority for the queue."""
    priority = queue_to_priority(a.queue, ctx.datapath_type)
    if priority is None:
        _output(ctx, a.port, 0)
        return
    flow = ctx.flow
    port = a.port
    if port == OFPP_IN_PORT:
        port = flow.in_port
    elif port == flow.in_port:
        return
    saved = flow.skb_priority
    flow.set("skb_priority", priority)
    _compose_output(ctx, port)
    flow.set("skb_priority", saved)


def _controller(ctx: _Ctx, max_len: int, reason: int, controller_id: int = 0,
                userdata: bytes = b"") -> None:
    """``xlate_controller_action``: commit, then a ``userspace`` action whose cookie
    asks ofproto for a packet-in (sent only with side effects: ``dont_send``
    otherwise, as in a plain ``ofproto/trace``).

    The packet-in resumes from a frozen state with its own recirculation id;
    OVS hands ids out from one counter for the daemon's lifetime, here they
    count from 1 within the translation, equal states sharing an id as
    ``recirc_find_equal`` makes them. No controller meter is configured, so
    no ``meter`` action precedes it.
    """
    _commit_actions(ctx)
    rule = ctx.rule
    if (reason == OFPR_ACTION and rule is not None and rule.priority == 0
            and not rule.match.members()):
        reason = OFPR_EXPLICIT_MISS  # an action of a table-miss rule
    flow = ctx.flow
    state = (ctx.bridge.name, ctx.table_id, tuple(ctx.stack), userdata, flow.in_port,
             flow.metadata, *(getattr(flow, f"reg{i}") for i in range(16)),
             *(getattr(flow, m) for m in OF_MEMBERS if m.startswith("tun_")))
    recirc_id = ctx.recirc_ids.setdefault(state, len(ctx.recirc_ids) + 1)
    cookie = ControllerCookie(reason, not ctx.generate, recirc_id, ctx.rule_cookie,
                              controller_id, max_len)
    ctx.odp += nla(ActionAttr.USERSPACE, nla_u32(UserspaceAttr.PID, 0)
                   + nla(UserspaceAttr.USERDATA, cookie.encode()))


def _clone(ctx: _Ctx, actions) -> None:
    """``compose_clone`` for reversible actions: run them, then restore the flow,
    stack and action set (the datapath needs no ``clone`` action for them)."""
    saved = ctx.flow.copy(), list(ctx.stack), list(ctx.action_set), ctx.was_mpls
    _do_actions(ctx, actions)
    if ctx.freezing:
        # clone_xlate_actions finishes the freeze inside the clone; what follows
        # the clone then is not modelled
        ctx.unsupported.append("recirculation inside clone")
        ctx.freezing = False
    _xlate_action_set(ctx)
    _restore_flow(ctx.flow, saved[0])
    ctx.stack, ctx.action_set, ctx.was_mpls = saved[1], saved[2], saved[3]


def _pop_vlan(ctx: _Ctx) -> None:
    """``flow_pop_vlan``: the inner tag (if any) moves out, un-wildcarded."""
    flow = ctx.flow
    n = len(_vlan_stack(flow))
    if n > 1:
        ctx.mask("vlan1_tci")
        ctx.mask("vlan1_tpid")
        flow.set("vlan_tpid", flow.vlan1_tpid)
        flow.set("vlan_tci", flow.vlan1_tci)
        flow.set("vlan1_tpid", 0)
        flow.set("vlan1_tci", 0)
    elif n == 1:
        flow.set("vlan_tpid", 0)
        flow.set("vlan_tci", 0)


def _push_vlan(ctx: _Ctx, tpid: int) -> None:
    """``flow_push_vlan_uninit`` + the new outer tag with only CFI set."""
    flow = ctx.flow
    n = len(_vlan_stack(flow))
    if n:
        ctx.mask("vlan_tci")
        ctx.mask("vlan_tpid")
    if n > 1:
        ctx.mask("vlan1_tci")
        ctx.mask("vlan1_tpid")
    flow.set("vlan1_tpid", flow.vlan_tpid)
    flow.set("vlan1_tci", flow.vlan_tci)
    flow.set("vlan_tpid", tpid)
    flow.set("vlan_tci", VLAN_CFI)


def _set_field_plan(a: A.SetField) -> tuple[tuple[str, int, int, int], ...] | None:
    """What a set_field that needs no prerequisite and has no side effect on
    other members does: per member ``(member, wildcard bits, bits kept, bits
    written)``; None for the others (:func:`_xlate_set_field` handles them)."""
    fld = a.field
    if (fld.prereq not in ("none", "ethernet") or fld.name in _L3_FIELDS
            or fld.name in ("vlan_vid", "dl_vlan", "vlan_pcp", "dl_vlan_pcp", "in_port_oxm")):
        return None
    plan = []
    for member, shift, bits in _field_parts(fld):
        m = ((a.mask >> shift) << fld.shift) & bits
        v = ((a.value >> shift) << fld.shift) & bits
        ones = ALL_ONES[member]
        plan.append((member, m, ~m & ones, v & m & ones))
    return tuple(plan)


_SET_FIELD_PLANS: dict[int, tuple] = {}


def _xlate_set_field(ctx: _Ctx, a: A.SetField) -> None:
    """``OFPACT_SET_FIELD``: set the field only if the packet has it."""
    plan = _cached(_SET_FIELD_PLANS, a, _set_field_plan)
    if plan is not None:  # _mask_field + _set_field, precomputed
        masks, fd = ctx.masks, ctx.flow.__dict__
        for member, m, keep, v in plan:
            if m:
                masks[member] = masks.get(member, 0) | m
            fd[member] = (fd[member] & keep) | v
        return
    fld, flow = a.field, ctx.flow
    if not _prereqs_ok(fld.prereq, flow, ctx):
        ctx.report(f"unmet prerequisites for {fld.name}, set_field ignored")
        return
    if fld.name in _L3_FIELDS and (_is_ip(flow) or flow.dl_type in (ETH_TYPE_ARP,
                                                                      ETH_TYPE_RARP)):
        ctx.mask("nw_proto")
    name = fld.name
    if name in ("vlan_vid", "dl_vlan"):
        # a VID write also sets the CFI bit (mf_set_flow_value: flow_set_vlan_vid)
        ctx.mask("vlan_tci", (a.mask & 0x0FFF) | VLAN_CFI)
        vid_mask = a.mask & 0x0FFF
        tci = (flow.vlan_tci & ~vid_mask & 0xFFFF) | (a.value & vid_mask) | VLAN_CFI
        flow.set("vlan_tci", tci)
        return
    if name in ("vlan_pcp", "dl_vlan_pcp"):
        ctx.mask("vlan_tci", 0xE000 | VLAN_CFI)
        flow.set("vlan_tci", (flow.vlan_tci & 0x1FFF) | ((a.value & 7) << 13) | VLAN_CFI)
        return
    _mask_field(ctx, fld, a.mask)
    _set_field(flow, fld, a.value, a.mask)


def _get_subfield(flow: OfFlow, sf: A.Subfield) -> int:
    return (_get_field(flow, sf.field) >> sf.ofs) & ((1 << sf.n_bits) - 1)


def _set_subfield(flow: OfFlow, sf: A.Subfield, value: int) -> None:
    mask = ((1 << sf.n_bits) - 1) << sf.ofs
    _set_field(flow, sf.field, value << sf.ofs, mask)


def _mask_subfield(ctx: _Ctx, sf: A.Subfield) -> None:
    _mask_field(ctx, sf.field, ((1 << sf.n_bits) - 1) << sf.ofs)


# ---------------------------------------------------------------------------------
# Entry point


#: ``xlate_wc_init``'s wildcards: in_port, dl_type, (nw_frag of IP packets), recirc_id
_WC_INIT = {"in_port": ALL_ONES["in_port"], "dl_type": ALL_ONES["dl_type"],
            "recirc_id": ALL_ONES["recirc_id"]}
_WC_INIT_IP = {"in_port": ALL_ONES["in_port"], "dl_type": ALL_ONES["dl_type"],
               "nw_frag": FRAG_ANY | FRAG_LATER, "recirc_id": ALL_ONES["recirc_id"]}


def xlate(bridge: Bridge, flow: OfFlow, *, in_port: int | None = None,
          generate: bool = False, now: float = 0, datapath_type: str = "system",
          trace: bool = True) -> XlateResult:
    """Translate ``flow`` through ``bridge``'s tables (``xlate_actions``).

    ``in_port`` (an OpenFlow port) overrides ``flow.in_port``. The result has
    the datapath actions, the megaflow mask and the trace. With ``generate``
    translation has side effects (``allow_side_effects``, as for a real
    upcall or ``ofproto/trace -generate``): NORMAL learns the source MAC into
    the bridge's table at time ``now``; without it, as a plain trace, nothing
    is learned. ``datapath_type`` is the datapath's kind as the Bridge table
    names it (``system`` for the Linux datapath, ``netdev`` or ``dummy`` for
    the userspace one): it decides how ``enqueue`` maps a queue to a priority.
    With ``trace=False`` (an upcall or a revalidation: nobody reads the trace)
    no :class:`TraceStep` is recorded and :attr:`XlateResult.trace` is empty;
    the actions, megaflow and errors are the same.
    """
    flow = flow.copy()
    if in_port is not None:
        flow.set("in_port", in_port)
    ctx = _Ctx(bridge, flow, generate, now, datapath_type, trace)
    # xlate_wc_init: what translation always examines
    ctx.masks.update(_WC_INIT_IP if _is_ip(flow) else _WC_INIT)
    tunnelled = ctx.orig_tunnel_dst != 0
    if tunnelled:
        tnl.wc_init(flow, ctx.mask)

    rule, ctx.table_id = _lookup_from_table(ctx, 0, flow.in_port)
    _report_table(ctx, rule, 0)
    if rule is not None:
        ctx.rule, ctx.rule_cookie = rule, rule.payload.cookie
    # tnl_process_ecn: outer CE on a packet that is not ECN-capable drops it (OVS
    # only logs "dropping tunnel packet marked ECN CE but is not ECN capable")
    if not tunnelled or tnl.process_ecn(ctx.flow):
        _do_actions(ctx, rule.payload.actions if rule is not None else ())
    if ctx.error is None and not ctx.freezing:
        _xlate_action_set(ctx)
    if ctx.freezing and ctx.error is None:
        _finish_freezing(ctx)

    # (an output action is 8 bytes: fewer bytes cannot hold that many outputs)
    if len(ctx.odp) > _MAX_ACTIONS_LEN - 4 or (len(ctx.odp) >= 8 * NETDEV_MAX_BACKLOG
                                               and _n_outputs(ctx.odp) >= NETDEV_MAX_BACKLOG):
        ctx.slow = True  # nl_attr_oversized / too_many_output_actions: SLOW_ACTION
    if ctx.error is None:  # a failed translation leaves xlate_actions before xlate_wc_finish
        _wc_finish(ctx, flow)
    actions = bytes(ctx.odp)
    if ctx.error is not None:  # a drop flow, never slow-pathed
        actions = b""
        ctx.slow = False
    return XlateResult(flow=flow, final_flow=ctx.flow, datapath_actions=actions, wc=ctx.wc,
                       trace=ctx.trace, errors=ctx.errors, error=ctx.error,
                       unsupported=ctx.unsupported, slow=ctx.slow)


def execute_action_set(action_set: list[A.Action]) -> list[A.Action]:
    """``ofpacts_execute_action_set``: the action list an action set amounts to.

    Nothing runs unless a final action (resubmit, output) is present; then the
    last action of each slot in slot order, every set/move in the order
    written, and the final action of the highest rank (the last one written).
    """
    slots: dict[type, A.Action] = {}
    set_or_move: list[A.Action] = []
    final, final_rank = None, -1
    for a in action_set:
        kind = type(a)
        if kind in _SLOT_ORDER:
            slots[kind] = a
        elif kind in _FINAL_ORDER:
            rank = _FINAL_ORDER.index(kind)
            if rank >= final_rank:
                final, final_rank = a, rank
        elif isinstance(a, _SET_OR_MOVE):
            set_or_move.append(a)
    if final is None:
        return []
    return [slots[k] for k in _SLOT_ORDER if k in slots] + set_or_move + [final]


def _xlate_action_set(ctx: _Ctx) -> None:
    """``xlate_action_set``: run what the action set holds at the end of the pipeline."""
    if not ctx.action_set:
        return
    actions = execute_action_set(ctx.action_set)
    ctx.action_set = []
    if actions:
        old_step = ctx.step
        if ctx.tracing:
            depth = 0 if old_step is None else old_step.depth
            step = TraceStep(ACTION_SET, None, None, 0, depth, bridge=ctx.bridge.name)
            ctx.trace.append(step)
            ctx.step = step
        in_action_set, ctx.in_action_set = ctx.in_action_set, True
        _do_actions(ctx, actions)
        ctx.in_action_set = in_action_set
        ctx.step = old_step


def _n_outputs(actions: bytes | bytearray) -> int:
    """How many top-level ``output`` actions ``actions`` has."""
    n, i = 0, 0
    while i + 4 <= len(actions):
        length = int.from_bytes(actions[i:i + 2], "little")
        if int.from_bytes(actions[i + 2:i + 4], "little") == ActionAttr.OUTPUT:
            n += 1
        i += max(4, (length + 3) & ~3)
    return n


#: members flow_wildcards_clear_non_packet_fields clears, and the tunnel members
_NON_PACKET = frozenset(("metadata", "conj_id", "actset_output", *(f"reg{i}" for i in range(16))))
_TUN_MEMBERS = frozenset(m for m in OF_MEMBERS if m.startswith("tun_"))
_LSE_SET = frozenset(_LSE)


def _wc_finish(ctx: _Ctx, flow: OfFlow) -> None:
    """``xlate_wc_finish``."""
    masks = ctx.masks
    fd = flow.__dict__
    # flow_wildcards_clear_non_packet_fields
    for member in _NON_PACKET.intersection(masks):
        del masks[member]
    dl_type = fd["dl_type"]
    if (dl_type == ETH_TYPE_IP and fd["nw_proto"] == IPPROTO_ICMP
            or dl_type == ETH_TYPE_IPV6 and fd["nw_proto"] == IPPROTO_ICMPV6):
        for member in ("tp_src", "tp_dst"):
            if member in masks:
                masks[member] &= 0xFF
    if masks.get("vlan_tci"):
        masks["vlan_tci"] |= VLAN_CFI
    if masks.get("vlan1_tci"):
        masks["vlan1_tci"] |= VLAN_CFI
    if fd["nw_frag"] & FRAG_LATER:
        masks.pop("tp_src", None)
        masks.pop("tp_dst", None)
    # Fields the original packet does not have are not matched, even if a
    # push or set_field action un-wildcarded them.
    if dl_type not in (0x8847, 0x8848):
        for member in _LSE_SET.intersection(masks):
            del masks[member]
    for tpid, tci in (("vlan_tpid", "vlan_tci"), ("vlan1_tpid", "vlan1_tci")):
        ethertype = fd[tpid]
        # a flow written in OpenFlow syntax has a tag (CFI) but no TPID: 802.1Q
        if ethertype not in (0x8100, 0x88A8) and not (ethertype == 0 and fd[tci] & VLAN_CFI):
            masks.pop(tpid, None)
            masks.pop(tci, None)
    if not (fd["tun_dst"] or fd["tun_ipv6_dst"]):
        for member in _TUN_MEMBERS.intersection(masks):
            del masks[member]
