"""VLAN handling of the NORMAL action: port VLAN modes and tag translation.

Models Open vSwitch 3.1's per-port (bundle) VLAN configuration and the pure
VLAN logic of its NORMAL action:

* :meth:`VlanConfig.configure` turns the Port columns ``vlan_mode``, ``tag``,
  ``trunks``, ``cvlans`` and ``other_config:qinq-ethtype`` /
  ``other_config:priority-tags`` into what the ``ofbundle`` holds, as
  ``vswitchd/bridge.c`` (``port_configure``) and ``ofproto/ofproto-dpif.c``
  (``bundle_set``) do: the default mode, the native VLAN forced into (and VLAN
  0 out of) a native port's trunks, ignored columns.
* :func:`parse_vlans` is flow extraction's view of a packet's 802.1Q headers
  under ``Open_vSwitch other_config:vlan-limit`` (``lib/flow.c``,
  ``flow_limit_vlans``): headers beyond the limit are payload.
* The rest mirrors ``ofproto/ofproto-dpif-xlate.c``: whether a packet's VID
  may enter a port (``input_vid_is_valid``), the VLANs a packet has inside the
  bridge (``xvlan_input_translate``), whether an output port carries them
  (``xbundle_includes_vlan``), and the tags it leaves with
  (``xvlan_output_translate``, the priority-tag rule of ``output_normal``,
  ``xvlan_put``). :func:`flood_vlans` combines them into the per-port result
  of ``xlate_normal_flood``.

Tags are :class:`VlanTag` (TPID, VID, PCP as 0..7), outermost first. The
module holds no state; translation (xlate) calls it with its flow's tags.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from ovsnet.errors import OfprotoError

ETH_TYPE_VLAN_8021Q = 0x8100
ETH_TYPE_VLAN_8021AD = 0x88A8
#: ``FLOW_MAX_VLAN_HEADERS``
MAX_VLAN_HEADERS = 2
#: ``LEGACY_MAX_VLAN_HEADERS``, the default of ``other_config:vlan-limit``
DEFAULT_VLAN_LIMIT = 1
_ALL_VIDS = range(4096)


class VlanMode(Enum):
    """``enum port_vlan_mode`` with the Port ``vlan_mode`` spellings."""

    ACCESS = "access"
    TRUNK = "trunk"
    NATIVE_TAGGED = "native-tagged"
    NATIVE_UNTAGGED = "native-untagged"
    DOT1Q_TUNNEL = "dot1q-tunnel"


class PriorityTags(Enum):
    """``enum port_priority_tags_mode`` (Port ``other_config:priority-tags``)."""

    NEVER = "never"
    IF_NONZERO = "if-nonzero"
    ALWAYS = "always"


@dataclass(frozen=True)
class VlanTag:
    """One 802.1Q/802.1ad header: TPID, VLAN ID (0..4095), priority (0..7)."""

    vid: int
    pcp: int = 0
    tpid: int = ETH_TYPE_VLAN_8021Q

    def __post_init__(self) -> None:
        if not 0 <= self.vid <= 4095:
            raise OfprotoError(f"VLAN tag vid={self.vid} is out of range: expected 0..4095")
        if not 0 <= self.pcp <= 7:
            raise OfprotoError(f"VLAN tag pcp={self.pcp} is out of range: expected 0..7")
        if not 0 <= self.tpid <= 0xFFFF:
            raise OfprotoError(f"VLAN tag tpid={self.tpid:#x} is out of range: expected 16 bits")

    def __str__(self) -> str:
        tpid = "" if self.tpid == ETH_TYPE_VLAN_8021Q else f"tpid=0x{self.tpid:04x},"
        return f"vlan({tpid}vid={self.vid},pcp={self.pcp})"


@dataclass(frozen=True)
class XVlan:
    """``struct xvlan``: up to two VLAN slots; an all-zero slot is "no VLAN".

    NORMAL's notion of "the packet's VLAN" is ``outer.vid`` (0 for none).
    """

    outer: tuple[int, int, int] = (0, 0, 0)  # (tpid, vid, pcp)
    inner: tuple[int, int, int] = (0, 0, 0)

    @classmethod
    def from_tags(cls, tags: Sequence[VlanTag]) -> XVlan:
        """``xvlan_extract`` of the tags the flow holds (at most two)."""
        slots = [(t.tpid, t.vid, t.pcp) for t in tags[:MAX_VLAN_HEADERS]]
        slots += [(0, 0, 0)] * (MAX_VLAN_HEADERS - len(slots))
        return cls(slots[0], slots[1])

    @property
    def vlan(self) -> int:
        """The VLAN NORMAL learns and forwards in (``xvlan.v[0].vid``)."""
        return self.outer[1]

    @property
    def cvlan(self) -> int:
        return self.inner[1]

    def push(self, tpid: int, vid: int, pcp: int) -> XVlan:
        """``xvlan_push_uninit`` + the new outer slot."""
        return XVlan((tpid, vid, pcp), self.outer)

    def pop(self) -> XVlan:
        """``xvlan_pop``."""
        return XVlan(self.inner, (0, 0, 0))


def vlan_limit_from_config(other_config: Mapping[str, str]) -> int:
    """``Open_vSwitch other_config:vlan-limit`` as bridge.c reads it (``smap_get_int``)."""
    text = other_config.get("vlan-limit")
    if text is None:
        return DEFAULT_VLAN_LIMIT
    try:
        return int(str(text).strip(), 10)
    except ValueError:
        return DEFAULT_VLAN_LIMIT


def effective_vlan_limit(vlan_limit: int) -> int:
    """``flow_limit_vlans``: 0 (or less) means the maximum, 2."""
    return MAX_VLAN_HEADERS if vlan_limit <= 0 else min(vlan_limit, MAX_VLAN_HEADERS)


def parse_vlans(tags: Sequence[VlanTag],
                vlan_limit: int = DEFAULT_VLAN_LIMIT) -> tuple[tuple[VlanTag, ...], tuple[VlanTag, ...]]:
    """Split a packet's tags into (what the flow holds, what stays payload).

    ``parse_vlan``/``miniflow_extract`` read headers while the ethertype is
    802.1Q or 802.1ad, up to ``vlan-limit`` of them; the rest are payload and
    the flow's ``dl_type`` is then the next TPID.
    """
    limit = effective_vlan_limit(vlan_limit)
    n = 0
    while n < len(tags) and n < limit and tags[n].tpid in (ETH_TYPE_VLAN_8021Q, ETH_TYPE_VLAN_8021AD):
        n += 1
    return tuple(tags[:n]), tuple(tags[n:])


def _vid_set(values: Iterable[int] | None, column: str) -> frozenset[int] | None:
    """``vlan_bitmap_from_array``: None (meaning "all") for an empty column."""
    if values is None:
        return None
    out = set()
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v not in _ALL_VIDS:
            raise OfprotoError(f"Port {column} value {v!r} is out of range: expected integers "
                               "0..4095")
        out.add(v)
    return frozenset(out) or None


@dataclass(frozen=True)
class VlanConfig:
    """A bundle's effective VLAN settings (the VLAN members of ``struct ofbundle``).

    ``vlan`` is -1 for a trunk port, else the access/native/service VLAN (0
    when ``tag`` is empty). ``trunks`` and ``cvlans`` are None for "every
    VLAN" (OVS's NULL bitmap).
    """

    mode: VlanMode = VlanMode.TRUNK
    vlan: int = -1
    trunks: frozenset[int] | None = None
    cvlans: frozenset[int] | None = None
    qinq_ethtype: int = ETH_TYPE_VLAN_8021AD
    priority_tags: PriorityTags = PriorityTags.NEVER
    #: what ovs-vswitchd would log while applying the configuration
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def configure(cls, *, vlan_mode: str | VlanMode | None = None, tag: int | None = None,
                  trunks: Iterable[int] | None = None, cvlans: Iterable[int] | None = None,
                  other_config: Mapping[str, str] | None = None,
                  port: str = "port") -> VlanConfig:
        """The bundle settings for these Port columns (``port_configure`` + ``bundle_set``).

        Values the OVSDB schema refuses (an unknown ``vlan_mode``, ``tag`` or
        ``trunks``/``cvlans`` outside 0..4095) raise :class:`OfprotoError`.
        Everything else is accepted as ovs-vswitchd accepts it: an empty
        ``vlan_mode`` means access if ``tag`` is set (then ``trunks`` and
        ``cvlans`` are ignored, with OVS's warning) and trunk otherwise;
        ``tag`` is ignored on a trunk port, ``trunks`` on access and
        dot1q-tunnel ports, ``cvlans`` except on dot1q-tunnel ports; a native
        port always trunks its native VLAN and never VLAN 0 (unless its
        native VLAN is 0); ``qinq-ethtype`` other than ``802.1q`` means
        802.1ad; ``priority-tags`` is ``if-nonzero`` (or ``true``),
        ``always``, or else never.
        """
        oc = other_config or {}
        if tag is not None and (isinstance(tag, bool) or not isinstance(tag, int)
                                or tag not in _ALL_VIDS):
            raise OfprotoError(f"Port {port}: tag {tag!r} is out of range: expected 0..4095")
        trunk_set = _vid_set(trunks, "trunks")
        cvlan_set = _vid_set(cvlans, "cvlans")
        warnings: list[str] = []
        if isinstance(vlan_mode, VlanMode):
            mode = vlan_mode
        elif vlan_mode:
            try:
                mode = VlanMode(vlan_mode)
            except ValueError:
                valid = ", ".join(m.value for m in VlanMode)
                raise OfprotoError(f"Port {port}: unknown vlan_mode {vlan_mode!r}: expected one "
                                   f"of {valid}") from None
        elif tag is not None:
            mode = VlanMode.ACCESS
            if trunk_set or cvlan_set:
                warnings.append(f"port {port}: ignoring trunks in favor of implicit vlan")
        else:
            mode = VlanMode.TRUNK

        vlan = -1 if mode is VlanMode.TRUNK else (tag if tag is not None else 0)
        eff_trunks: frozenset[int] | None = None
        if mode is VlanMode.TRUNK:
            eff_trunks = trunk_set
        elif mode in (VlanMode.NATIVE_TAGGED, VlanMode.NATIVE_UNTAGGED):
            if vlan != 0 and (trunk_set is None or vlan not in trunk_set or 0 in trunk_set):
                base = trunk_set if trunk_set is not None else frozenset(_ALL_VIDS)
                eff_trunks = (base | {vlan}) - {0}
            else:
                eff_trunks = trunk_set
        eff_cvlans = cvlan_set if mode is VlanMode.DOT1Q_TUNNEL else None
        qinq = ETH_TYPE_VLAN_8021Q if oc.get("qinq-ethtype") == "802.1q" else ETH_TYPE_VLAN_8021AD
        pt = oc.get("priority-tags", "")
        prio = (PriorityTags.IF_NONZERO if pt in ("if-nonzero", "true")
                else PriorityTags.ALWAYS if pt == "always" else PriorityTags.NEVER)
        return cls(mode, vlan, eff_trunks, eff_cvlans, qinq, prio, tuple(warnings))

    # -- membership (xbundle_trunks_vlan, xbundle_allows_cvlan, xbundle_includes_vlan) --

    def trunks_vlan(self, vid: int) -> bool:
        """``xbundle_trunks_vlan``: a non-access port whose trunks include ``vid``."""
        return self.mode is not VlanMode.ACCESS and (self.trunks is None or vid in self.trunks)

    def allows_cvlan(self, vid: int) -> bool:
        """``xbundle_allows_cvlan``."""
        return self.cvlans is None or vid in self.cvlans

    def includes(self, xvlan: XVlan) -> bool:
        """``xbundle_includes_vlan``: whether NORMAL may send a packet in ``xvlan`` here."""
        if self.mode is VlanMode.ACCESS:
            return xvlan.vlan == self.vlan and xvlan.cvlan == 0
        if self.mode is VlanMode.DOT1Q_TUNNEL:
            return xvlan.vlan == self.vlan and self.allows_cvlan(xvlan.cvlan)
        return self.trunks_vlan(xvlan.vlan)

    @property
    def output_masks_inner_tci(self) -> bool:
        """``check_and_set_cvlan_mask``: output here un-wildcards the inner tag's whole TCI.

        A dot1q-tunnel port with ``cvlans`` decides on the customer VLAN, so
        each NORMAL output to it adds ``vlan_tci1=0xffff`` to the megaflow mask.
        """
        return self.mode is VlanMode.DOT1Q_TUNNEL and self.cvlans is not None

    # -- input ---------------------------------------------------------------

    def input_vid_error(self, vid: int, port: str = "port") -> str | None:
        """Why ``input_vid_is_valid`` refuses a packet whose outer VID is ``vid``, else None.

        ``vid`` is 0 for an untagged (or priority-tagged) packet. The text is
        the error OVS reports for the drop.
        """
        if self.mode is VlanMode.ACCESS:
            if vid:
                return (f"dropping VLAN {vid} tagged packet received on port {port} "
                        f"configured as VLAN {self.vlan} access port")
            return None
        if self.mode is VlanMode.DOT1Q_TUNNEL:
            if not self.allows_cvlan(vid):
                return (f"dropping VLAN {vid} packet received on dot1q-tunnel port {port} "
                        "that excludes this VLAN")
            return None
        if self.mode is not VlanMode.TRUNK and not vid:
            return None  # a native port always carries its native VLAN
        if not self.trunks_vlan(vid):
            return (f"dropping VLAN {vid} packet received on port {port} not configured "
                    f"for trunking VLAN {vid}")
        return None

    def input_vid_is_valid(self, vid: int) -> bool:
        """``input_vid_is_valid``."""
        return self.input_vid_error(vid) is None

    def input_translate(self, in_xvlan: XVlan) -> XVlan:
        """``xvlan_input_translate``: the packet's VLANs inside the bridge."""
        tpid, vid, pcp = in_xvlan.outer
        if self.mode is VlanMode.ACCESS:
            return XVlan((tpid or ETH_TYPE_VLAN_8021Q, self.vlan, pcp))
        if self.mode is VlanMode.TRUNK:
            return in_xvlan
        if self.mode is VlanMode.DOT1Q_TUNNEL:
            return in_xvlan.push(self.qinq_ethtype, self.vlan, 0)
        if not vid:  # native: untagged or priority-tagged means the native VLAN
            return XVlan((tpid or ETH_TYPE_VLAN_8021Q, self.vlan, pcp), in_xvlan.inner)
        return in_xvlan

    # -- output --------------------------------------------------------------

    def output_translate(self, xvlan: XVlan) -> XVlan:
        """``xvlan_output_translate``: the VLANs the packet should carry out of this port."""
        if self.mode is VlanMode.ACCESS:
            return XVlan()
        if self.mode is VlanMode.NATIVE_UNTAGGED:
            return xvlan.pop() if xvlan.vlan == self.vlan else xvlan
        if self.mode is VlanMode.DOT1Q_TUNNEL:
            return xvlan.pop()
        return xvlan

    def output_tags(self, xvlan: XVlan, flow_pcp: int = 0) -> tuple[VlanTag, ...]:
        """The 802.1Q headers a packet in ``xvlan`` leaves this port with, outermost first.

        ``output_normal``: after :meth:`output_translate`, a port with
        ``priority-tags`` set takes the outer PCP from the flow's current
        outer tag (``flow_pcp``, 0 if untagged); then ``xvlan_put`` writes a
        slot as a header if its VID or PCP is nonzero (or, with ``always``,
        if the slot has a TPID), and the flow's VLAN headers end at the first
        slot without one (``flow_count_vlan_headers``).
        """
        out = self.output_translate(xvlan)
        if self.priority_tags is not PriorityTags.NEVER:
            out = XVlan((out.outer[0], out.outer[1], flow_pcp), out.inner)
        tags: list[VlanTag] = []
        for tpid, vid, pcp in (out.outer, out.inner):
            if not (vid or pcp or (self.priority_tags is PriorityTags.ALWAYS and tpid)):
                break
            tags.append(VlanTag(vid, pcp, tpid or ETH_TYPE_VLAN_8021Q))
        return tuple(tags)


@dataclass(frozen=True)
class NormalVlanResult:
    """What NORMAL's VLAN logic decides for one packet (before MAC learning's lookup)."""

    #: None if the packet may enter; otherwise OVS's reason for dropping it
    drop_reason: str | None
    #: the VLANs inside the bridge (``xvlan``); NORMAL learns MACs in ``xvlan.vlan``
    xvlan: XVlan | None = None
    #: output port -> the full tag stack the copy leaves with (unparsed tags included)
    outputs: dict[Hashable, tuple[VlanTag, ...]] = field(default_factory=dict)


def flood_vlans(ports: Mapping[Hashable, VlanConfig], in_port: Hashable,
                tags: Sequence[VlanTag], *, vlan_limit: int = DEFAULT_VLAN_LIMIT,
                port_names: Mapping[Hashable, str] | None = None,
                floodable: Iterable[Hashable] | None = None) -> NormalVlanResult:
    """The VLAN side of ``xlate_normal`` + ``xlate_normal_flood`` for a flooded packet.

    ``ports`` maps every port (bundle) of the bridge to its configuration, in
    the bridge's order; ``tags`` is the packet's whole tag stack, outermost
    first. Returns the drop reason if ``input_vid_is_valid`` refuses the
    packet, else each port other than ``in_port`` that carries the packet's
    VLAN (and is ``floodable``, all by default) with the tag stack of its
    copy: the translated headers followed by any tags the flow did not parse
    under ``vlan_limit``. As in OVS, a packet whose two parsed tags enter a
    dot1q-tunnel port loses its innermost tag: ``xvlan`` has two slots, and
    ``commit_vlan_action`` pops the old headers and pushes the flow's.
    """
    parsed, payload = parse_vlans(tags, vlan_limit)
    in_cfg = ports[in_port]
    in_xvlan = XVlan.from_tags(parsed)
    name = (port_names or {}).get(in_port, str(in_port))
    reason = in_cfg.input_vid_error(in_xvlan.vlan, name)
    if reason is not None:
        return NormalVlanResult(reason)
    xvlan = in_cfg.input_translate(in_xvlan)
    allowed = None if floodable is None else set(floodable)
    flow_pcp = parsed[0].pcp if parsed else 0
    outputs = {}
    for port, cfg in ports.items():
        if port == in_port or (allowed is not None and port not in allowed):
            continue
        if cfg.includes(xvlan):
            outputs[port] = cfg.output_tags(xvlan, flow_pcp) + payload
    return NormalVlanResult(None, xvlan, outputs)
