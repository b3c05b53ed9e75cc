"""Flows as ovs-vswitchd holds them after receiving them from ``ovs-ofctl``.

``ovs-ofctl add-flow`` encodes a flow for the OpenFlow version it talks to the
switch (OpenFlow 1.0 with Nicira extensions unless ``-O`` says otherwise),
and ovs-vswitchd decodes it into its own ``ofpact``/``match``. That round
trip changes how some actions and matches print (``ofproto/trace``,
``ovs-ofctl dump-flows``):

- OpenFlow 1.0 and 1.1 have no Set-Field: ``set_field`` becomes the legacy
  action for the field (``mod_vlan_vid``, ``mod_dl_src``, ``mod_nw_src``,
  ``mod_nw_tos``, ``mod_tp_src`` ... ; on ``vlan_tci`` ``mod_vlan_vid`` +
  ``mod_vlan_pcp`` or ``strip_vlan``) or ``NXAST_REG_LOAD`` actions
  (``load:0x2a->NXM_NX_TUN_ID[]``);
- OpenFlow 1.2 to 1.4 Set-Field cannot carry a mask: a masked ``set_field``
  becomes ``load`` actions (``load:0x1201->NXM_OF_VLAN_TCI[0..12]``), and the
  OpenFlow 1.0 actions that 1.2 dropped become Set-Field
  (``mod_nw_src`` is ``set_field:...->ip_src``, ``mod_vlan_vid`` is
  ``push_vlan`` if needed and ``set_field:4196->vlan_vid``);
- ``set_tunnel`` is a Set-Field of ``tun_id`` in 1.2+, ``enqueue`` is
  ``set_queue``, ``output``, ``pop_queue`` in 1.1+;
- OpenFlow 1.0 has no instructions: ``goto_table:N`` is ``resubmit(,N)``,
  ``write_actions`` and ``clear_actions`` are lost (and ``push_vlan``);
- OpenFlow 1.5 has no ``reg_load`` at all: every ``load`` is a (masked)
  Set-Field;
- one ``NXAST_REG_LOAD`` writes at most 64 bits, so a wider ``load`` is
  several ``load`` actions; ``note`` bytes are padded with zeros to a
  multiple of 8 bytes of action; ``strip_vlan`` and ``pop_vlan`` are the same
  action, printed as the version's encoding names it;
- OXM (OpenFlow 1.2+) matches VLANs with ``OXM_OF_VLAN_VID`` and
  ``OXM_OF_VLAN_PCP``: ``vlan_tci=0`` comes back as
  ``vlan_tci=0x0000/0x1fff``.

Mirrors Open vSwitch 3.1's ``lib/ofp-actions.c`` (``encode_SET_FIELD``,
``set_field_to_legacy_openflow``, ``set_field_to_nxast``,
``next_load_segment``, ``encode_<ACTION>`` and the matching ``decode_*``
functions, ``format_SET_FIELD``, ``format_STRIP_VLAN``) and
``lib/nx-match.c`` (``nx_put_raw``'s 802.1Q part).
"""

from __future__ import annotations

from ovsnet.errors import DatapathError
from ovsnet.ofproto import ofp_actions as A
from ovsnet.ofproto.ofp_fields import (
    IPPROTO_SCTP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    Match,
    MFField,
    field_by_name,
)

__all__ = ["VERSIONS", "ActionDecoder", "decoded_actions", "decoded_match", "default_protocol", "version_of"]

#: OpenFlow version names as ``ovs-ofctl -O`` takes them -> wire version number
VERSIONS = {f"OpenFlow1{n}": n + 1 for n in range(6)}
OF10, OF11, OF12, OF15 = 1, 2, 3, 6

VLAN_CFI = 0x1000
#: ``OFPVID12_PRESENT``: the VLAN-present bit of OXM_OF_VLAN_VID
OFPVID_PRESENT = 0x1000

#: instructions and actions only OpenFlow 1.1+ can carry (``usable_protocols``
#: OFPUTIL_P_OF11_UP in their ``parse_*``)
_OF11_ONLY = (A.GotoTable, A.WriteActions, A.PushVlan)


def version_of(protocol: str | int | None) -> int:
    """The wire version of ``protocol`` (``OpenFlow13``, a number, None for 1.0)."""
    if protocol is None:
        return OF10
    if isinstance(protocol, int):
        if OF10 <= protocol <= OF15:
            return protocol
        raise DatapathError(f"OpenFlow version {protocol} is not one of 1 (1.0) to 6 (1.5)")
    try:
        return VERSIONS[protocol]
    except KeyError:
        raise DatapathError(f"unknown OpenFlow version {protocol!r} "
                            f"(expected one of {', '.join(VERSIONS)})") from None


def default_protocol(actions) -> str:
    """The version a flow with ``actions`` reaches ovs-vswitchd in when loaded with
    ``ovs-ofctl`` as usually done: its default OpenFlow 1.0 (with Nicira
    extensions), or ``-O OpenFlow13`` when an action or instruction needs 1.1+
    (``goto_table``, ``write_actions``, ``clear_actions``, ``push_vlan``)."""
    for a in _walk(actions):
        if isinstance(a, _OF11_ONLY) or (isinstance(a, A.Simple)
                                          and a.name == "clear_actions"):
            return "OpenFlow13"
    return "OpenFlow10"


def _walk(actions):
    for a in actions:
        yield a
        if isinstance(a, (A.Clone, A.WriteActions)):
            yield from _walk(a.actions)


# ---------------------------------------------------------------------------------
# Matches


def decoded_match(match: Match, protocol: str | int | None = None) -> Match:
    """``match`` as ovs-vswitchd decodes it from a flow_mod of ``protocol``.

    OpenFlow 1.0 (standard or NXM match) carries every match ovs-ofctl sends
    it as is. OXM (1.2+) puts the VLAN as ``OXM_OF_VLAN_VID`` (VID and CFI
    bits) plus, if the VID value is not zero and PCP bits are matched, an
    exact ``OXM_OF_VLAN_PCP`` (``nx_put_raw``); decoding gives back only those
    bits (``match_set_any_pcp`` adds CFI with the PCP).
    """
    if version_of(protocol) < OF12:
        return match
    value, mask = match.get("vlan_tci")
    if not mask:
        return match
    vid_mask = mask & 0x1FFF
    vid = value & vid_mask
    new_v, new_m = vid, vid_mask
    if vid and (mask >> 13) & 7:
        new_v |= (value & 0xE000) | VLAN_CFI
        new_m |= 0xE000 | VLAN_CFI
    if (new_v, new_m) == (value, mask):
        return match
    out = match.copy()
    out.set_member("vlan_tci", new_v, new_m)
    return out


# ---------------------------------------------------------------------------------
# Actions


def decoded_actions(actions, protocol: str | int | None = None,
                    match: Match | None = None) -> list[A.Action]:
    """``actions`` of a flow with ``match`` as ovs-vswitchd holds them after
    ``ovs-ofctl`` sent them encoded for ``protocol`` (None: OpenFlow 1.0).

    One action can become several (a wide ``load``, ``set_field`` on
    ``vlan_tci`` in OpenFlow 1.0, ``mod_vlan_vid`` with a ``push_vlan`` in
    1.1+); ``clone`` and ``write_actions`` are converted inside.
    """
    decoder = ActionDecoder(protocol, match)
    return [x for a in actions for x in decoder.decode(a)]


class ActionDecoder:
    """Decodes the actions of one flow in order (:func:`decoded_actions`), keeping
    what ``ofpacts_check`` learns on the way: whether the flow has a VLAN tag
    by then (``flow_has_vlan``) and the match's ``nw_proto``."""

    def __init__(self, protocol: str | int | None = None, match: Match | None = None):
        self.version = version_of(protocol)
        vlan = (match.get("vlan_tci")[0] & VLAN_CFI) != 0 if match is not None else False
        proto = match.get("nw_proto") if match is not None else (0, 0)
        self._state = {"vlan": vlan, "nw_proto": proto[0] if proto[1] == 0xFF else None}

    def decode(self, action: A.Action) -> list[A.Action]:
        """The action(s) ``action`` becomes."""
        return _decode(action, self.version, self._state)


def _decode(a: A.Action, version: int, state: dict) -> list[A.Action]:
    if version == OF10:
        # OpenFlow 1.0 has no instructions: goto_table goes as NXAST_RESUBMIT_TABLE,
        # write_actions and clear_actions are left out (encode_GOTO_TABLE,
        # encode_WRITE_ACTIONS, encode_CLEAR_ACTIONS), and so is push_vlan, which
        # OpenFlow 1.0 does as a side effect of setting the VID or PCP
        if isinstance(a, A.GotoTable):
            return [A.Resubmit(table=a.table)]
        if isinstance(a, (A.WriteActions, A.PushVlan)) or (isinstance(a, A.Simple)
                                                            and a.name == "clear_actions"):
            return []
    if isinstance(a, (A.Clone, A.WriteActions)):
        inner = dict(state)
        return [type(a)(tuple(x for b in a.actions for x in _decode(b, version, inner)))]
    if isinstance(a, A.SetField):
        return _set_field(a, version, state)
    if isinstance(a, A.Note):
        # NXAST_NOTE: a 10-byte header, the bytes, zeros to a multiple of 8
        size = -(-(10 + len(a.data)) // 8) * 8
        return [A.Note(a.data + bytes(size - 10 - len(a.data)))]
    if isinstance(a, A.StripVlan):
        state["vlan"] = False
        return [A.StripVlan(pop_vlan=version >= OF11)]
    if isinstance(a, A.PushVlan):
        state["vlan"] = True
        return [a]
    if isinstance(a, (A.SetVlanVid, A.SetVlanPcp)):
        return _set_vlan(a, version, state)
    if isinstance(a, A.Enqueue) and version >= OF11:
        # encode_ENQUEUE: OpenFlow 1.1+ has no enqueue action
        return [A.SetQueue(a.queue), A.Output(a.port), A.Simple("pop_queue")]
    if version >= OF12:
        return _to_set_field(a, state)
    if isinstance(a, A.SetIpEcn):
        if version == OF10:  # reg_load of NXM_NX_IP_ECN
            return [_load("nw_ecn", a.ecn)]
        return [a]
    if isinstance(a, A.SetIpTtl) and version == OF10:  # reg_load of NXM_NX_IP_TTL
        return [_load("nw_ttl", a.ttl)]
    return [a]


def _to_set_field(a: A.Action, state: dict) -> list[A.Action]:
    """OpenFlow 1.2+ encodes the OpenFlow 1.0/1.1 field-setting actions as
    Set-Field (``encode_SET_ETH_addr``, ``encode_SET_IPV4_addr``, ...)."""
    if isinstance(a, A.SetEth):
        return [_set(f"eth_{a.which}", a.mac)]
    if isinstance(a, A.SetIPv4):
        return [_set(f"ip_{a.which}", a.ip)]
    if isinstance(a, A.SetIpDscp):
        return [_set("ip_dscp", a.tos >> 2)]
    if isinstance(a, A.SetIpEcn):
        return [_set("nw_ecn", a.ecn)]
    if isinstance(a, A.SetL4Port):
        # the field follows the match's nw_proto (check_SET_L4_SRC_PORT's flow_ip_proto)
        kind = {IPPROTO_TCP: "tcp", IPPROTO_UDP: "udp",
                IPPROTO_SCTP: "sctp"}.get(state["nw_proto"])
        return [_set(f"{kind}_{a.which}", a.port)] if kind else [a]
    if isinstance(a, A.SetTunnel):
        return [_set("tun_id", a.tun_id)]
    if isinstance(a, A.SetMplsLabel):
        return [_set("mpls_label", a.label)]
    if isinstance(a, A.SetMplsTc):
        return [_set("mpls_tc", a.tc)]
    return [a]


def _set_vlan(a, version: int, state: dict) -> list[A.Action]:
    """``encode_SET_VLAN_VID``/``encode_SET_VLAN_PCP`` and their decoding: OpenFlow
    1.0 decodes to the ``mod_vlan_*`` form, 1.1 to ``set_vlan_*``; 1.1+ first
    pushes a tag for the ``mod_`` form when the flow has none
    (``flow_has_vlan``, from the match and the actions before)."""
    has_vlan, state["vlan"] = state["vlan"], True
    is_vid = isinstance(a, A.SetVlanVid)
    if version == OF10:
        return [A.SetVlanVid(a.vid, True) if is_vid else A.SetVlanPcp(a.pcp, True)]
    out: list[A.Action] = []
    if a.push_vlan_if_needed and not has_vlan:
        out.append(A.PushVlan(0x8100))
    if version == OF11:
        out.append(A.SetVlanVid(a.vid, False) if is_vid else A.SetVlanPcp(a.pcp, False))
    elif is_vid:
        out.append(_set("vlan_vid", a.vid | OFPVID_PRESENT))
    else:
        out.append(_set("vlan_pcp", a.pcp))
    return out


def _field(name: str) -> MFField:
    fld = field_by_name(name)
    assert fld is not None, name
    return fld


def _full(fld: MFField) -> int:
    return (1 << (8 * fld.n_bytes)) - 1


def _set(name: str, value: int) -> A.SetField:
    fld = _field(name)
    return A.SetField(fld, value, _full(fld))


def _load(name: str, value: int) -> A.SetField:
    fld = _field(name)
    return A.SetField(fld, value, (1 << fld.n_bits) - 1, is_load=True)


def _set_field(a: A.SetField, version: int, state: dict) -> list[A.Action]:
    """``encode_SET_FIELD`` and the decoding of what it wrote."""
    fld = a.field
    if fld.name in ("vlan_tci", "vlan_vid", "dl_vlan") and a.mask & VLAN_CFI:
        state["vlan"] = bool(a.value & VLAN_CFI) if fld.name == "vlan_tci" else True
    if version >= OF15:  # Set-Field only, with a mask when partial
        return [A.SetField(fld, a.value, a.mask)]
    if a.is_load:  # came in as reg_load, goes out the same way
        return _reg_loads(a)
    if version < OF12:
        return _legacy(a, version)
    if a.mask == _full(fld):
        return [a]
    return _reg_loads(a)


def _reg_loads(a: A.SetField) -> list[A.Action]:
    """``set_field_to_nxast``: one ``NXAST_REG_LOAD`` per run of mask bits, at most 64
    bits each (``next_load_segment``); a field without a 32-bit NXM/OXM header goes
    as ``NXAST_REG_LOAD2``, which decodes to a (masked) Set-Field."""
    fld = a.field
    if fld.nxm is None:
        return [A.SetField(fld, a.value, a.mask)]
    out: list[A.Action] = []
    ofs = 0
    n_bits = fld.n_bits
    while ofs < n_bits:
        if not (a.mask >> ofs) & 1:
            ofs += 1
            continue
        end = ofs + 1
        while end < min(ofs + 64, n_bits) and (a.mask >> end) & 1:
            end += 1
        bits = ((1 << (end - ofs)) - 1) << ofs
        out.append(A.SetField(fld, a.value & bits, bits, is_load=True))
        ofs = end
    return out


def _legacy(a: A.SetField, version: int) -> list[A.Action]:
    """``set_field_to_legacy_openflow``: the OpenFlow 1.0/1.1 action for a whole-field
    ``set_field``, else ``set_field_to_nxast``."""
    name, value = a.field.name, a.value
    if name == "vlan_tci":
        if not value & VLAN_CFI:
            return [A.StripVlan(pop_vlan=version >= OF11)]
        vid, pcp = value & 0xFFF, (value >> 13) & 7
        if version == OF10:
            return [A.SetVlanVid(vid, True), A.SetVlanPcp(pcp, True)]
        return [A.SetVlanVid(vid, False), A.SetVlanPcp(pcp, False)]
    if name == "vlan_vid":
        return [A.SetVlanVid(value & 0xFFF, version == OF10)]
    if name == "vlan_pcp":
        return [A.SetVlanPcp(value & 7, version == OF10)]
    if name in ("eth_src", "eth_dst"):
        return [A.SetEth(name[4:], value)]
    if name in ("ip_src", "ip_dst"):
        return [A.SetIPv4(name[3:], value)]
    if name == "nw_tos":
        return [A.SetIpDscp(value & 0xFC)]
    if name == "ip_dscp":
        return [A.SetIpDscp((value << 2) & 0xFC)]
    if name == "nw_ecn":
        return [_load("nw_ecn", value)] if version == OF10 else [A.SetIpEcn(value)]
    if name in ("tcp_src", "udp_src"):
        return [A.SetL4Port("src", value)]
    if name in ("tcp_dst", "udp_dst"):
        return [A.SetL4Port("dst", value)]
    return _reg_loads(a)
