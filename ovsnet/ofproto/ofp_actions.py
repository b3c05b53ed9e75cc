"""OpenFlow actions and instructions: the ``ofpact`` model, its parser and printer.

Mirrors Open vSwitch 3.1's ``lib/ofp-actions.c`` (``ofpacts_parse__``, the
``parse_<ACTION>`` and ``format_<ACTION>`` functions, ``ofpacts_verify``'s
instruction order) and ``lib/nx-match.c`` (subfield syntax ``NXM_NX_REG0[0..3]``,
``move``, ``push``/``pop``). Each action is a small frozen dataclass whose
``format()`` returns what ``ofpacts_format`` prints for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ovsnet.ofproto.ofp_fields import (
    OFPP_ALL,
    OFPP_CONTROLLER,
    OFPP_FLOOD,
    OFPP_IN_PORT,
    OFPP_LOCAL,
    OFPP_MAX,
    Match,
    MFField,
    _c_int,
    _Err,
    field_by_name,
    field_by_subfield_name,
    format_field_value,
    format_ipv4,
    format_mac,
    format_port,
    parse_field_value,
    parse_int_string,
    parse_ipv4,
    parse_mac,
    parse_port,
    str_to_u64,
    str_to_uint,
    subfield_name,
)

# --------------------------------------------------------------------------------------
# Subfields


@dataclass(frozen=True)
class Subfield:
    """Bits ``ofs .. ofs + n_bits - 1`` of a field (``struct mf_subfield``)."""

    field: MFField
    ofs: int
    n_bits: int

    def format(self) -> str:
        name = subfield_name(self.field)
        if self.ofs == 0 and self.n_bits == self.field.n_bits:
            return name + "[]"
        if self.n_bits == 1:
            return f"{name}[{self.ofs}]"
        return f"{name}[{self.ofs}..{self.ofs + self.n_bits - 1}]"


def parse_subfield_prefix(s: str) -> tuple[Subfield, int]:
    """``mf_parse_subfield__``: a subfield at the start of ``s`` and the length read."""
    n = len(re.match(r"[^\[\-]*", s).group(0))
    name = s[:n]
    fld = field_by_subfield_name(name)
    if fld is None:
        raise _Err(f"{s}: unknown field `{name}'", 0, max(n, 1))
    start, end = 0, fld.n_bits - 1
    i = n
    if s[i:i + 1] == "[":
        m = re.match(r"\[\]|\[(\d+)\.\.(\d+)\]|\[(\d+)\]", s[i:])
        if not m:
            raise _Err(f"{s}: syntax error expecting [] or [<bit>] or [<start>..<end>]",
                       i, len(s) - i)
        if m.group(1) is not None:
            start, end = int(m.group(1)), int(m.group(2))
        elif m.group(3) is not None:
            start = end = int(m.group(3))
        i += m.end()
    if start > end:
        raise _Err(f"{s}: starting bit {start} is after ending bit {end}", 0, i)
    if start >= fld.n_bits:
        raise _Err(f"{s}: starting bit {start} is not valid because field is only "
                   f"{fld.n_bits} bits wide", 0, i)
    if end >= fld.n_bits:
        raise _Err(f"{s}: ending bit {end} is not valid because field is only "
                   f"{fld.n_bits} bits wide", 0, i)
    return Subfield(fld, start, end - start + 1), i


def parse_subfield(s: str) -> Subfield:
    sf, n = parse_subfield_prefix(s)
    if n != len(s):
        raise _Err("unexpected input following field syntax", n, len(s) - n)
    return sf


# --------------------------------------------------------------------------------------
# Actions


class Action:
    """Base of every action; ``format(port_map)`` is ``ofpact_format``'s text."""

    name = ""

    def format(self, port_map: dict[str, int] | None = None) -> str:  # pragma: no cover
        raise NotImplementedError


@dataclass(frozen=True)
class Output(Action):
    """``output:PORT`` or a reserved port (``NORMAL``, ``FLOOD``, ``CONTROLLER:max_len``)."""

    port: int
    max_len: int = 0
    name = "output"

    def format(self, port_map=None):
        s = ("output:" if self.port < OFPP_MAX else "") + format_port(self.port, port_map)
        if self.port == OFPP_CONTROLLER:
            s += f":{self.max_len}"
        return s


@dataclass(frozen=True)
class OutputReg(Action):
    """``output:NXM_NX_REG0[0..15]``: output to the port a subfield holds."""

    src: Subfield
    max_len: int = 0xFFFF
    name = "output_reg"

    def format(self, port_map=None):
        return "output:" + self.src.format()


@dataclass(frozen=True)
class Enqueue(Action):
    """``enqueue:PORT:QUEUE``: output to a port through one of its queues."""

    port: int
    queue: int
    name = "enqueue"

    def format(self, port_map=None):
        return f"enqueue:{format_port(self.port, port_map)}:{self.queue}"


@dataclass(frozen=True)
class SetQueue(Action):
    """``set_queue:QUEUE``: later outputs use this queue (``pop_queue`` restores it)."""

    queue: int
    name = "set_queue"

    def format(self, port_map=None):
        return f"set_queue:{self.queue}"


@dataclass(frozen=True)
class Controller(Action):
    """``controller(...)`` with a reason, id, userdata, pause or meter (else it is an Output)."""

    max_len: int = 0xFFFF
    reason: str = "action"
    controller_id: int = 0
    userdata: bytes = b""
    pause: bool = False
    meter_id: int | None = None
    name = "controller"

    def format(self, port_map=None):
        parts = []
        if self.reason != "action":
            parts.append(f"reason={self.reason}")
        if self.max_len != 0xFFFF:
            parts.append(f"max_len={self.max_len}")
        if self.controller_id:
            parts.append(f"id={self.controller_id}")
        if self.userdata:
            parts.append("userdata=" + ".".join(f"{b:02x}" for b in self.userdata))
        if self.pause:
            parts.append("pause")
        if self.meter_id is not None:
            parts.append(f"meter_id={self.meter_id}")
        return "controller(" + ",".join(parts) + ")"


@dataclass(frozen=True)
class SetVlanVid(Action):
    vid: int
    push_vlan_if_needed: bool = True
    name = "set_vlan_vid"

    def format(self, port_map=None):
        return f"{'mod_vlan_vid' if self.push_vlan_if_needed else 'set_vlan_vid'}:{self.vid}"


@dataclass(frozen=True)
class SetVlanPcp(Action):
    pcp: int
    push_vlan_if_needed: bool = True
    name = "set_vlan_pcp"

    def format(self, port_map=None):
        return f"{'mod_vlan_pcp' if self.push_vlan_if_needed else 'set_vlan_pcp'}:{self.pcp}"


@dataclass(frozen=True)
class StripVlan(Action):
    """``strip_vlan`` (or ``pop_vlan``, the same ofpact spelled the OF1.1 way)."""

    pop_vlan: bool = False
    name = "strip_vlan"

    def format(self, port_map=None):
        return "pop_vlan" if self.pop_vlan else "strip_vlan"


@dataclass(frozen=True)
class PushVlan(Action):
    ethertype: int = 0x8100
    name = "push_vlan"

    def format(self, port_map=None):
        return f"push_vlan:{self.ethertype:#x}"


@dataclass(frozen=True)
class SetEth(Action):
    """``mod_dl_src``/``mod_dl_dst`` (``which`` is ``src`` or ``dst``)."""

    which: str
    mac: int
    name = "mod_dl"

    def format(self, port_map=None):
        return f"mod_dl_{self.which}:{format_mac(self.mac)}"


@dataclass(frozen=True)
class SetIPv4(Action):
    which: str
    ip: int
    name = "mod_nw"

    def format(self, port_map=None):
        return f"mod_nw_{self.which}:{format_ipv4(self.ip)}"


@dataclass(frozen=True)
class SetIpDscp(Action):
    """``mod_nw_tos``: the DSCP bits, written as a TOS byte with ECN bits zero."""

    tos: int
    name = "mod_nw_tos"

    def format(self, port_map=None):
        return f"mod_nw_tos:{self.tos}"


@dataclass(frozen=True)
class SetIpEcn(Action):
    ecn: int
    name = "mod_nw_ecn"

    def format(self, port_map=None):
        return f"mod_nw_ecn:{self.ecn}"


@dataclass(frozen=True)
class SetIpTtl(Action):
    ttl: int
    name = "mod_nw_ttl"

    def format(self, port_map=None):
        return f"mod_nw_ttl:{self.ttl}"


@dataclass(frozen=True)
class SetL4Port(Action):
    which: str
    port: int
    name = "mod_tp"

    def format(self, port_map=None):
        return f"mod_tp_{self.which}:{self.port}"


@dataclass(frozen=True)
class DecTtl(Action):
    """``dec_ttl`` or ``dec_ttl(id,...)`` (controller ids for the TTL-exceeded packet-in)."""

    controller_ids: tuple[int, ...] | None = None
    name = "dec_ttl"

    def format(self, port_map=None):
        if self.controller_ids is None:
            return "dec_ttl"
        return "dec_ttl(" + ",".join(map(str, self.controller_ids)) + ")"


@dataclass(frozen=True)
class SetField(Action):
    """``set_field:V[/M]->FIELD``; ``load:V->SUBFIELD`` parses to this with ``is_load``.

    ``value`` and ``mask`` are in field units (full field width).
    """

    field: MFField
    value: int
    mask: int
    is_load: bool = False
    name = "set_field"

    def format(self, port_map=None):
        if self.is_load:
            return ",".join(f"load:{v:#x}->{sf.format()}" if v else f"load:0->{sf.format()}"
                            for sf, v in self.load_segments())
        full = (1 << (8 * self.field.n_bytes)) - 1
        m = None if self.mask == full else self.mask
        return (f"set_field:{format_field_value(self.field, self.value, m, port_map)}"
                f"->{self.field.name}")

    def load_segments(self) -> list[tuple[Subfield, int]]:
        """``next_load_segment``: the mask's runs of one bits, lowest first."""
        segs = []
        mask, ofs = self.mask, 0
        while mask >> ofs:
            while not (mask >> ofs) & 1:
                ofs += 1
            end = ofs
            while (mask >> end) & 1:
                end += 1
            n = end - ofs
            segs.append((Subfield(self.field, ofs, n), (self.value >> ofs) & ((1 << n) - 1)))
            ofs = end
        return segs


@dataclass(frozen=True)
class RegMove(Action):
    src: Subfield
    dst: Subfield
    name = "move"

    def format(self, port_map=None):
        return f"move:{self.src.format()}->{self.dst.format()}"


@dataclass(frozen=True)
class StackPush(Action):
    subfield: Subfield
    name = "push"

    def format(self, port_map=None):
        return f"push:{self.subfield.format()}"


@dataclass(frozen=True)
class StackPop(Action):
    subfield: Subfield
    name = "pop"

    def format(self, port_map=None):
        return f"pop:{self.subfield.format()}"


@dataclass(frozen=True)
class Resubmit(Action):
    """``resubmit:PORT`` / ``resubmit([PORT],[TABLE][,ct])``; IN_PORT/255 mean "unchanged"."""

    in_port: int = OFPP_IN_PORT
    table: int = 255
    with_ct_orig: bool = False
    name = "resubmit"

    def format(self, port_map=None):
        if self.in_port != OFPP_IN_PORT and self.table == 255:
            return "resubmit:" + format_port(self.in_port, port_map)
        s = "resubmit("
        if self.in_port != OFPP_IN_PORT:
            s += format_port(self.in_port, port_map)
        s += ","
        if self.table != 255:
            s += str(self.table)
        if self.with_ct_orig:
            s += ",ct"
        return s + ")"


@dataclass(frozen=True)
class SetTunnel(Action):
    tun_id: int
    is64: bool = False
    name = "set_tunnel"

    def format(self, port_map=None):
        wide = self.is64 or self.tun_id > 0xFFFFFFFF
        return f"set_tunnel{'64' if wide else ''}:{self.tun_id:#x}" if self.tun_id else \
            f"set_tunnel{'64' if wide else ''}:0"


@dataclass(frozen=True)
class PushMpls(Action):
    ethertype: int
    name = "push_mpls"

    def format(self, port_map=None):
        return f"push_mpls:0x{self.ethertype:04x}"


@dataclass(frozen=True)
class PopMpls(Action):
    ethertype: int
    name = "pop_mpls"

    def format(self, port_map=None):
        return f"pop_mpls:0x{self.ethertype:04x}"


@dataclass(frozen=True)
class SetMplsLabel(Action):
    label: int
    name = "set_mpls_label"

    def format(self, port_map=None):
        return f"set_mpls_label({self.label})"


@dataclass(frozen=True)
class SetMplsTc(Action):
    tc: int
    name = "set_mpls_tc"

    def format(self, port_map=None):
        return f"set_mpls_tc({self.tc})"


@dataclass(frozen=True)
class SetMplsTtl(Action):
    ttl: int
    name = "set_mpls_ttl"

    def format(self, port_map=None):
        return f"set_mpls_ttl({self.ttl})"


@dataclass(frozen=True)
class Simple(Action):
    """An action without arguments: ``dec_mpls_ttl``, ``exit``, ``clear_actions``,
    ``pop_queue``."""

    name: str = "exit"  # type: ignore[assignment]

    def format(self, port_map=None):
        return self.name


@dataclass(frozen=True)
class Note(Action):
    data: bytes
    name = "note"

    def format(self, port_map=None):
        return "note:" + ".".join(f"{b:02x}" for b in self.data)


@dataclass(frozen=True)
class Clone(Action):
    actions: tuple[Action, ...] = field(default_factory=tuple)
    name = "clone"

    def format(self, port_map=None):
        return f"clone({format_actions(self.actions, port_map)})"


@dataclass(frozen=True)
class LearnSpec:
    """One ``struct ofpact_learn_spec``: ``kind`` is ``match``, ``load`` or ``output``.

    The source is the subfield ``src`` of the packet's flow or, when ``src``
    is None, the immediate ``imm`` (``n_bits`` wide, at bit 0); ``dst`` is
    the learned flow's match field or the field its ``load`` writes (None for
    ``output``).
    """

    kind: str
    dst: Subfield | None
    src: Subfield | None
    imm: int = 0

    @property
    def n_bits(self) -> int:
        return (self.src or self.dst).n_bits

    def format(self, port_map=None) -> str:
        """As ``learn_format`` prints the spec."""
        imm = f"{self.imm:#x}" if self.imm else "0"
        if self.kind == "match":
            if self.src is None:
                d = self.dst
                if d.ofs == 0 and d.n_bits == d.field.n_bits:
                    return f"{d.field.name}={format_field_value(d.field, self.imm, None, port_map)}"
                return f"{d.format()}={imm}"
            text = self.dst.format()
            if self.src.field != self.dst.field or self.src.ofs != self.dst.ofs:
                text += "=" + self.src.format()
            return text
        if self.kind == "load":
            return f"load:{imm if self.src is None else self.src.format()}->{self.dst.format()}"
        return f"output:{self.src.format()}"


@dataclass(frozen=True)
class Learn(Action):
    """``learn(...)`` (``struct ofpact_learn``): add or modify a flow from the packet.

    Not supported in translation: ``fin_idle_timeout``/``fin_hard_timeout``
    (kept and printed), ``delete_learned``, ``limit`` and ``result_dst``.
    """

    specs: tuple[LearnSpec, ...] = ()
    table: int = 1
    priority: int = 32768
    idle_timeout: int = 0
    hard_timeout: int = 0
    fin_idle_timeout: int = 0
    fin_hard_timeout: int = 0
    cookie: int = 0
    send_flow_rem: bool = False
    delete_learned: bool = False
    limit: int = 0
    result_dst: Subfield | None = None
    name = "learn"

    def format(self, port_map=None):
        out = f"learn(table={self.table}"
        for key in ("idle_timeout", "hard_timeout", "fin_idle_timeout", "fin_hard_timeout"):
            if getattr(self, key):
                out += f",{key}={getattr(self, key)}"
        if self.priority != 32768:
            out += f",priority={self.priority}"
        if self.send_flow_rem:
            out += ",send_flow_rem"
        if self.delete_learned:
            out += ",delete_learned"
        if self.cookie:
            out += f",cookie={self.cookie:#x}"
        if self.limit:
            out += f",limit={self.limit}"
        if self.result_dst is not None:
            out += f",result_dst={self.result_dst.format()}"
        for spec in self.specs:
            out += "," + spec.format(port_map)
        return out + ")"

    def learned_actions(self, read) -> tuple[Action, ...]:
        """The learned flow's actions (``learn_execute``); ``read(subfield)`` reads the
        packet's flow. An output to a port that cannot be one is left out."""
        acts: list[Action] = []
        for spec in self.specs:
            value = spec.imm if spec.src is None else read(spec.src)
            if spec.kind == "load":
                d = spec.dst
                acts.append(SetField(d.field, value << d.ofs,
                                     ((1 << d.n_bits) - 1) << d.ofs, is_load=True))
            elif spec.kind == "output" and (spec.n_bits <= 16 or value <= 0xFFFF):
                port = value & 0xFFFF
                if port < OFPP_MAX or port in (OFPP_IN_PORT, OFPP_FLOOD, OFPP_LOCAL, OFPP_ALL):
                    acts.append(Output(port))
        return tuple(acts)

    def learned_match(self, read) -> Match:
        """The learned flow's match (``learn_execute``: ``mf_write_subfield`` per spec)."""
        match = Match()
        for spec in self.specs:
            if spec.kind != "match":
                continue
            value = spec.imm if spec.src is None else read(spec.src)
            d = spec.dst
            bits = ((1 << d.n_bits) - 1) << d.ofs
            v, m = match.get_field(d.field)
            match.set_field(d.field, (v & ~bits) | ((value << d.ofs) & bits), m | bits)
        return match


@dataclass(frozen=True)
class WriteActions(Action):
    actions: tuple[Action, ...] = field(default_factory=tuple)
    name = "write_actions"

    def format(self, port_map=None):
        return f"write_actions({format_actions(self.actions, port_map)})"


@dataclass(frozen=True)
class WriteMetadata(Action):
    metadata: int
    mask: int = (1 << 64) - 1
    name = "write_metadata"

    def format(self, port_map=None):
        s = f"write_metadata:{_hexc(self.metadata)}"
        if self.mask != (1 << 64) - 1:
            s += f"/{_hexc(self.mask)}"
        return s


@dataclass(frozen=True)
class GotoTable(Action):
    table: int
    name = "goto_table"

    def format(self, port_map=None):
        return f"goto_table:{self.table}"


def _hexc(v: int) -> str:
    return f"{v:#x}" if v else "0"


def format_actions(actions, port_map: dict[str, int] | None = None) -> str:
    """``ofpacts_format``: comma-separated actions, ``drop`` for none."""
    if not actions:
        return "drop"
    return ",".join(a.format(port_map) for a in actions)


# --------------------------------------------------------------------------------------
# Parsing

#: instruction kinds in the order OpenFlow 1.1+ requires (ovs_instruction_type)
_INSTRUCTION_ORDER = {"apply_actions": 1, "clear_actions": 2, "write_actions": 3,
                      "write_metadata": 4, "goto_table": 5}
_PACKET_IN_REASONS = ("no_match", "action", "invalid_ttl", "action_set", "group",
                      "packet_out")

#: every action keyword this parser accepts (for "what would be valid" messages)
ACTION_NAMES = sorted([
    "output", "controller", "set_field", "load", "move", "push", "pop",
    "mod_vlan_vid", "mod_vlan_pcp", "set_vlan_vid", "set_vlan_pcp", "strip_vlan", "pop_vlan",
    "push_vlan", "mod_dl_src", "mod_dl_dst", "mod_nw_src", "mod_nw_dst", "mod_nw_tos",
    "mod_nw_ecn", "mod_nw_ttl", "set_nw_ttl", "mod_tp_src", "mod_tp_dst", "dec_ttl",
    "set_mpls_label", "set_mpls_tc", "set_mpls_ttl", "dec_mpls_ttl", "push_mpls",
    "pop_mpls", "set_tunnel", "set_tunnel64", "resubmit", "note", "exit", "clone",
    "drop", "clear_actions", "write_actions", "write_metadata", "goto_table", "enqueue",
    "set_queue", "pop_queue", "learn",
])


def split_key_values(s: str, base: int = 0) -> list[tuple[str, str, int, int]]:
    """``ofputil_parse_key_value`` over all of ``s``.

    Returns ``(key, value, key_offset, value_offset)`` per pair; offsets are
    relative to ``s`` plus ``base``. A ``key(value)`` form keeps nested parentheses.
    """
    out = []
    i, n = 0, len(s)
    while True:
        while i < n and s[i] in ", \t\r\n":
            i += 1
        if i >= n:
            return out
        k0 = i
        while i < n and s[i] not in ":=(, \t\r\n":
            i += 1
        key = s[k0:i]
        delim = s[i] if i < n else ""
        i += 1 if delim else 0
        if delim in (":", "="):
            delims = ", \t\r\n"
        elif delim == "(":
            delims = ")"
        else:
            out.append((key, "", base + k0, base + i))
            continue
        v0 = i
        vlen = _value_len(s, i, delims)
        if delim == "(" and s[i + vlen:i + vlen + 3] == ")->":
            vlen += _value_len(s, i + vlen, ", \t\r\n")
        value = s[v0:v0 + vlen]
        i = v0 + vlen + (1 if v0 + vlen < n else 0)
        out.append((key, value, base + k0, base + v0))


def _value_len(s: str, i: int, delims: str) -> int:
    """``parse_value``: length of a value up to a delimiter, skipping balanced parens."""
    n = 0
    while i + n < len(s) and s[i + n] not in delims:
        if s[i + n] == "(":
            level = 0
            while True:
                if i + n >= len(s):
                    return n
                c = s[i + n]
                if c == "(":
                    level += 1
                elif c == ")":
                    level -= 1
                n += 1
                if level <= 0:
                    break
        else:
            n += 1
    return n


class ActionParser:
    """Parses an action list (``ofpacts_parse_instructions``) keeping token offsets."""

    def __init__(self, port_map: dict[str, int] | None = None):
        self.port_map = port_map
        self.depth = 0
        #: protocols the actions restrict OpenFlow to (informational, like usable_protocols)
        self.needs_of11 = False

    def parse(self, s: str, base: int = 0, allow_instructions: bool = True,
              outer: str | None = None) -> list[Action]:
        if self.depth >= 100:
            raise _Err("Action nested too deeply", base, len(s))
        self.depth += 1
        try:
            return self._parse(s, base, allow_instructions, outer)
        finally:
            self.depth -= 1

    def _parse(self, s, base, allow_instructions, outer):
        acts: list[Action] = []
        drop_at = None
        inst = None
        for key, value, kofs, vofs in split_key_values(s, base):
            lk = key.lower()
            before = len(acts)
            try:
                if lk == "drop":
                    drop_at = kofs
                    continue
                if lk == "apply_actions":
                    raise _Err("apply_actions is the default instruction", 0, len(key))
                self._parse_one(lk, key, value, acts, vofs)
            except _Err as e:
                if e.offset >= 0 and e.length:
                    # relative to the value (or key when the message is about the key)
                    anchor = kofs if e.message.startswith(("unknown action",
                                                           "apply_actions")) else vofs
                    raise _Err(e.message, anchor + e.offset, e.length) from None
                raise _Err(e.message, vofs if value else kofs,
                           len(value) if value else len(key)) from None
            for a in acts[before:]:
                kind = _instruction_of(a)
                if inst is not None and (kind < inst if inst == 1 else kind <= inst):
                    names = {v: k for k, v in _INSTRUCTION_ORDER.items()}
                    if kind == inst:
                        msg = (f"duplicate {names[kind]} instruction not allowed, for "
                               "OpenFlow 1.1+ compatibility")
                    else:
                        msg = (f"invalid instruction ordering: {names[kind]} must appear "
                               f"before {names[inst]}, for OpenFlow 1.1+ compatibility")
                    raise _Err(msg, kofs, len(key))
                if kind != 1 and not allow_instructions:
                    names = {v: k for k, v in _INSTRUCTION_ORDER.items()}
                    raise _Err(f"{names[kind]} instruction not allowed here", kofs, len(key))
                inst = kind
        if drop_at is not None and acts:
            raise _Err('"drop" must not be accompanied by any other action or instruction',
                       drop_at, 4)
        return acts

    def _parse_one(self, lk: str, key: str, value: str, acts: list[Action], vofs: int):
        pm = self.port_map
        if lk == "output":
            acts.append(self._output(value))
        elif lk == "controller":
            acts.append(self._controller(value))
        elif lk in ("mod_vlan_vid", "set_vlan_vid"):
            vid = str_to_uint(value, 16, "VLAN VID")
            if vid & ~0xFFF:
                raise _Err(f"{value}: not a valid VLAN VID", 0, len(value))
            acts.append(SetVlanVid(vid, lk == "mod_vlan_vid"))
        elif lk in ("mod_vlan_pcp", "set_vlan_pcp"):
            pcp = str_to_uint(value, 8, "VLAN PCP")
            if pcp & ~7:
                raise _Err(f"{value}: not a valid VLAN PCP", 0, len(value))
            acts.append(SetVlanPcp(pcp, lk == "mod_vlan_pcp"))
        elif lk == "strip_vlan":
            acts.append(StripVlan(False))
        elif lk == "pop_vlan":
            acts.append(StripVlan(True))
        elif lk == "push_vlan":
            et = str_to_uint(value, 16, "ethertype")
            if et not in (0x8100, 0x88A8):
                raise _Err(f"{value}: not a valid VLAN ethertype", 0, len(value))
            self.needs_of11 = True
            acts.append(PushVlan(et))
        elif lk in ("mod_dl_src", "mod_dl_dst"):
            mac = parse_mac(value) if re.match(r"[0-9a-fA-F:]+$", value) else None
            if mac is None:
                mac = _scan_mac_prefix(value)
            if mac is None:
                raise _Err(f"invalid mac address {value}", 0, len(value))
            acts.append(SetEth(lk[-3:], mac))
        elif lk in ("mod_nw_src", "mod_nw_dst"):
            ip = parse_ipv4(value)
            if ip is None:
                raise _Err(f"{value}: could not convert to IP address", 0, len(value))
            acts.append(SetIPv4(lk[-3:], ip))
        elif lk == "mod_nw_tos":
            tos = str_to_uint(value, 8, "TOS")
            if tos & 3:
                raise _Err(f"{value}: not a valid TOS", 0, len(value))
            acts.append(SetIpDscp(tos))
        elif lk == "mod_nw_ecn":
            ecn = str_to_uint(value, 8, "ECN")
            if ecn & ~3:
                raise _Err(f"{value}: not a valid ECN", 0, len(value))
            acts.append(SetIpEcn(ecn))
        elif lk in ("mod_nw_ttl", "set_nw_ttl"):
            acts.append(SetIpTtl(str_to_uint(value, 8, "TTL")))
        elif lk in ("mod_tp_src", "mod_tp_dst"):
            what = "source port" if lk.endswith("src") else "destination port"
            acts.append(SetL4Port(lk[-3:], str_to_uint(value, 16, what)))
        elif lk == "dec_ttl":
            if not value:
                acts.append(DecTtl())
            else:
                ids = tuple(_atoi(x) & 0xFFFF for x in re.split(r"[, ]+", value) if x)
                if not ids:
                    raise _Err("dec_ttl_cnt_ids: expected at least one controller id.")
                acts.append(DecTtl(ids))
        elif lk == "set_field":
            acts.append(self._set_field(value))
        elif lk == "load":
            acts.append(self._load(value))
        elif lk == "move":
            src, n = parse_subfield_prefix(value)
            if value[n:n + 2] != "->":
                raise _Err(f"{value}: missing `->' following source", n, len(value) - n)
            try:
                dst = parse_subfield(value[n + 2:])
            except _Err as e:
                raise _Err(e.message, n + 2 + e.offset, e.length) from None
            if src.n_bits != dst.n_bits:
                raise _Err(f"{value}: source field is {src.n_bits} bits wide but destination "
                           f"is {dst.n_bits} bits wide", 0, len(value))
            acts.append(RegMove(src, dst))
        elif lk in ("push", "pop"):
            sf, n = parse_subfield_prefix(value)
            if n != len(value):
                raise _Err(f"{value[n:]}: trailing garbage following push or pop", n,
                           len(value) - n)
            acts.append(StackPush(sf) if lk == "push" else StackPop(sf))
        elif lk == "resubmit":
            acts.append(self._resubmit(value))
        elif lk == "goto_table":
            t = _table(value)
            if t is None:
                raise _Err(f'unknown table "{value}"', 0, len(value))
            acts.append(GotoTable(t))
        elif lk == "write_metadata":
            v, slash, m = value.partition("/")
            mask = str_to_u64(m) if slash else (1 << 64) - 1
            acts.append(WriteMetadata(str_to_u64(v), mask))
        elif lk in ("set_tunnel", "set_tunnel64"):
            acts.append(SetTunnel(str_to_u64(value), lk == "set_tunnel64"))
        elif lk in ("push_mpls", "pop_mpls"):
            et = str_to_uint(value, 16, lk)
            acts.append(PushMpls(et) if lk == "push_mpls" else PopMpls(et))
        elif lk == "set_mpls_label":
            if not value:
                raise _Err("set_mpls_label: expected label.")
            label = str_to_u64(value)
            if label > 0xFFFFFFFF:
                raise _Err(f"invalid numeric format {value}", 0, len(value))
            if label & ~0xFFFFF:
                raise _Err(f"{value}: not a valid MPLS label", 0, len(value))
            acts.append(SetMplsLabel(label))
        elif lk == "set_mpls_tc":
            if not value:
                raise _Err("set_mpls_tc: expected tc.")
            tc = str_to_uint(value, 8, "MPLS TC")
            if tc & ~7:
                raise _Err(f"{value}: not a valid MPLS TC", 0, len(value))
            acts.append(SetMplsTc(tc))
        elif lk == "set_mpls_ttl":
            if not value:
                raise _Err("set_mpls_ttl: expected ttl.")
            acts.append(SetMplsTtl(str_to_uint(value, 8, "MPLS TTL")))
        elif lk == "enqueue":
            acts.append(self._enqueue(value))
        elif lk == "set_queue":
            acts.append(SetQueue(_str_to_u32(value)))
        elif lk in ("dec_mpls_ttl", "exit", "clear_actions", "pop_queue"):
            acts.append(Simple(lk))
        elif lk == "note":
            acts.append(Note(_parse_hex(value, "bad hex digit in `note' argument")))
        elif lk == "learn":
            acts.append(self._learn(value))
        elif lk == "clone":
            acts.append(Clone(tuple(self.parse(value, 0, False, "clone"))))
        elif lk == "write_actions":
            acts.append(WriteActions(tuple(self.parse(value, 0, False, "write_actions"))))
        else:
            port = parse_port(key, pm)
            if port is None:
                raise _Err(f"unknown action {key} (expected a port number or name, or one of: "
                           f"{', '.join(ACTION_NAMES)})", 0, len(key))
            acts.append(Output(port, 0xFFFF if port == OFPP_CONTROLLER else 0))

    # -- individual actions --

    def _output(self, value: str) -> Action:
        port = parse_port(value, self.port_map)
        if port is not None:
            return Output(port, 0xFFFF if port == OFPP_CONTROLLER else 0)
        try:
            return OutputReg(parse_subfield(value))
        except _Err:
            raise _Err(f"{value}: output to unknown port", 0, len(value)) from None

    def _learn(self, value: str) -> Learn:
        """``learn_parse__`` (lib/learn.c): settings, then match/load/output specs."""
        kw: dict = {}
        specs: list[LearnSpec] = []
        for k, v, kofs, vofs in split_key_values(value):
            try:
                if k == "table":
                    t = _table(v)
                    if t is None:
                        raise _Err(f'unknown table "{v}"', 0, len(v))
                    if t == 255:
                        raise _Err(f"{value}: table id 255 not valid for `learn' action",
                                   0, len(v))
                    kw["table"] = t
                elif k in ("priority", "idle_timeout", "hard_timeout", "fin_idle_timeout",
                           "fin_hard_timeout"):
                    kw[k] = _atoi(v) & 0xFFFF
                elif k == "limit":
                    kw[k] = _atoi(v) & 0xFFFFFFFF
                elif k == "cookie":
                    kw[k] = _strtoull(v)
                elif k in ("send_flow_rem", "delete_learned"):
                    kw[k] = True
                elif k == "result_dst":
                    sf = parse_subfield(v)
                    if not sf.field.writable:
                        raise _Err(f"{v} is read-only", 0, len(v))
                    if sf.n_bits != 1:
                        raise _Err("result_dst in 'learn' action must be a single bit", 0, len(v))
                    kw[k] = sf
                else:
                    specs.append(self._learn_spec(value, k, v))
            except _Err as e:
                anchor = vofs if v and e.offset else kofs
                raise _Err(e.message, anchor + e.offset, e.length or len(k)) from None
        learn = Learn(tuple(specs), **kw)
        _check_learn(learn)
        return learn

    def _learn_spec(self, orig: str, name: str, value: str) -> LearnSpec:
        """``learn_parse_spec``."""
        try:
            dst = parse_subfield(name)
        except _Err:
            dst = None
        if dst is not None:
            if dst.field.nxm is None:
                raise _Err(f"{orig}: experimenter OXM field '{name}' not supported")
            if not value:
                return LearnSpec("match", dst, dst)
            try:
                src = parse_subfield(value)
            except _Err as e:
                src_error = e.message
                src = None
            if src is None:
                full = dst.ofs == 0 and dst.n_bits == dst.field.n_bits
                try:
                    if full:
                        imm, _m = parse_field_value(dst.field, value, self.port_map)
                    else:
                        try:
                            imm = parse_int_string(value, dst.field.n_bytes)
                        except (ValueError, OverflowError):
                            raise _Err(f"{orig}: cannot parse integer value") from None
                        if imm >> dst.n_bits:
                            raise _Err(f"{orig}: value {format_field_value(dst.field, imm)} "
                                       f"does not fit into {dst.n_bits} bits")
                except _Err as e:
                    raise _Err(f"{orig}: {name} value {value} cannot be parsed as a subfield "
                               f"({src_error}) or an immediate value ({e.message})") from None
                return LearnSpec("match", dst, None, imm)
            if src.n_bits != dst.n_bits:
                raise _Err(f"{orig}: bit widths of {name} ({src.n_bits}) and {value} "
                           f"({dst.n_bits}) differ")
            return LearnSpec("match", dst, src)
        if name == "load":
            arrow = value.find("->")
            if arrow == 0:
                raise _Err(f"load: missing source before `->' in `{value}'")
            if arrow < 0:
                raise _Err(f"load: missing `->' in `{value}'")
            m = re.match(r"0[xX][0-9a-fA-F]+|[0-9]+", value)
            if m:
                if m.end() != arrow:
                    raise _Err(f"load: garbage before `->' in `{value}'")
                d = parse_subfield(value[arrow + 2:])
                if d.field.nxm is None:
                    raise _Err(f"{value}: experimenter OXM field '{value[arrow + 2:]}' "
                               "not supported")
                imm = int(m.group(0), 0)
                if imm >> d.n_bits:
                    raise _Err(f"{value}: value does not fit into {d.n_bits} bits")
                return LearnSpec("load", d, None, imm)
            src, n = parse_subfield_prefix(value)
            if value[n:n + 2] != "->":
                raise _Err(f"{value}: missing `->' following source")
            d = parse_subfield(value[n + 2:])
            if src.n_bits != d.n_bits:
                raise _Err(f"{value}: source field is {src.n_bits} bits wide but destination "
                           f"is {d.n_bits} bits wide")
            return LearnSpec("load", d, src)
        if name == "output":
            return LearnSpec("output", None, parse_subfield(value))
        raise _Err(f"{orig}: unknown keyword {name}")

    def _enqueue(self, value: str) -> Enqueue:
        """``parse_ENQUEUE``: ``PORT:QUEUE`` or ``PORT,QUEUE`` (strtok on ``:q,``)."""
        m = re.match(r"[:q,]*([^:q,]+)[:q,]?(.*)", value)
        if m is None or not m.group(2):
            raise _Err('"enqueue" syntax is "enqueue:PORT:QUEUE" or "enqueue(PORT,QUEUE)"',
                       0, len(value))
        port = parse_port(m.group(1), self.port_map)
        if port is None:
            raise _Err(f"{m.group(1)}: enqueue to unknown port", m.start(1), len(m.group(1)))
        try:
            queue = _str_to_u32(m.group(2))
        except _Err as e:
            raise _Err(e.message, m.start(2), len(m.group(2))) from None
        return Enqueue(port, queue)

    def _controller(self, value: str) -> Action:
        max_len, reason, cid, userdata, pause, meter = 0xFFFF, "action", 0, b"", False, None
        if value and value.isdigit():
            max_len = str_to_uint(value, 16, "max_len")
        elif value:
            for k, v, kofs, vofs in split_key_values(value):
                try:
                    if k == "reason":
                        if v not in _PACKET_IN_REASONS:
                            raise _Err(f'unknown reason "{v}"', 0, len(v))
                        reason = v
                    elif k == "max_len":
                        max_len = str_to_uint(v, 16, "max_len")
                    elif k == "id":
                        cid = str_to_uint(v, 16, "id")
                    elif k == "userdata":
                        userdata = _parse_hex(v, "bad hex digit in `controller' action "
                                                 "`userdata'")
                    elif k == "pause":
                        pause = True
                    elif k == "meter_id":
                        meter = str_to_u64(v)
                    else:
                        raise _Err(f'unknown key "{k}" parsing controller action', 0, len(k))
                except _Err as e:
                    anchor = kofs if e.message.startswith("unknown key") else vofs
                    raise _Err(e.message, anchor + e.offset, e.length) from None
        if reason == "action" and not cid and not userdata and not pause and meter is None:
            return Output(OFPP_CONTROLLER, max_len)
        return Controller(max_len, reason, cid, userdata, pause, meter)

    def _set_field(self, value: str) -> SetField:
        arrow = value.find("->")
        if arrow < 0:
            raise _Err(f"{value}: missing `->'", 0, len(value))
        key = value[arrow + 2:]
        if not key:
            raise _Err(f"{value}: missing field name following `->'", 0, len(value))
        fld = field_by_name(key)
        if fld is None:
            raise _Err(f"{key} is not a valid OXM field name", arrow + 2, len(key))
        if not fld.writable:
            raise _Err(f"{key} is read-only", arrow + 2, len(key))
        v, m = parse_field_value(fld, value[:arrow], self.port_map)
        if not _value_valid(fld, v):
            raise _Err(f"{value[:arrow]} is not a valid value for field {key}", 0, arrow)
        return SetField(fld, v & m, m)

    def _load(self, value: str) -> SetField:
        arrow = value.find("->")
        if arrow < 0:
            raise _Err(f"{value}: missing `->'", 0, len(value))
        if not value[arrow + 2:]:
            raise _Err(f"{value}: missing field name following `->'", 0, len(value))
        try:
            dst = parse_subfield(value[arrow + 2:])
        except _Err as e:
            raise _Err(e.message, arrow + 2 + e.offset, e.length) from None
        fld = dst.field
        try:
            v = parse_int_string(value[:arrow], fld.n_bytes)
        except (ValueError, OverflowError):
            raise _Err(f"{value}: cannot parse integer value", 0, arrow) from None
        if v >> dst.n_bits:
            shown = format_field_value(fld, v)
            raise _Err(f"{value}: value {shown} does not fit into {dst.n_bits} bits", 0, arrow)
        mask = ((1 << dst.n_bits) - 1) << dst.ofs
        return SetField(fld, v << dst.ofs, mask, is_load=True)

    def _resubmit(self, value: str) -> Resubmit:
        parts = value.split(",")
        in_port, table, ct = OFPP_IN_PORT, 255, False
        ofs = 0
        if parts[0]:
            p = parse_port(parts[0], self.port_map)
            if p is None:
                raise _Err(f"{parts[0]}: resubmit to unknown port", 0, len(parts[0]))
            in_port = p
        ofs += len(parts[0]) + 1
        if len(parts) > 1 and parts[1]:
            t = _table(parts[1])
            if t is None:
                raise _Err(f"{parts[1]}: resubmit to unknown table", ofs, len(parts[1]))
            table = t
        if len(parts) > 1:
            ofs += len(parts[1]) + 1
        if len(parts) > 2 and parts[2]:
            if parts[2] != "ct":
                raise _Err(f"{parts[2]}: unknown parameter", ofs, len(parts[2]))
            ct = True
        if in_port == OFPP_IN_PORT and table == 255:
            raise _Err('at least one "in_port" or "table" must be specified on resubmit',
                       0, len(value))
        return Resubmit(in_port, table, ct)


def _instruction_of(a: Action) -> int:
    if isinstance(a, Simple) and a.name == "clear_actions":
        return _INSTRUCTION_ORDER["clear_actions"]
    if isinstance(a, WriteActions):
        return _INSTRUCTION_ORDER["write_actions"]
    if isinstance(a, WriteMetadata):
        return _INSTRUCTION_ORDER["write_metadata"]
    if isinstance(a, GotoTable):
        return _INSTRUCTION_ORDER["goto_table"]
    return _INSTRUCTION_ORDER["apply_actions"]


def _table(s: str) -> int | None:
    """``ofputil_table_from_string`` without a table map: a number 0..254 (255 = all)."""
    try:
        v = _c_int(s)
    except ValueError:
        return None
    return v if 0 <= v <= 255 else None


def _str_to_u32(s: str) -> int:
    """``str_to_u32`` (lib/ofp-parse.c): strtoul base 0 over the whole string, stored
    in 32 bits (so ``-1`` is 0xffffffff, as the unsigned long wraps and is truncated)."""
    return str_to_u64(s) & 0xFFFFFFFF


def _check_learn(learn: Learn) -> None:
    """``learn_check``'s destination half: a matched field's prerequisites must be
    in the learned flow's match (set by earlier immediate specs); a loaded field
    must be writable."""
    dst_match = Match()
    for spec in learn.specs:
        d = spec.dst
        if spec.kind == "match":
            if not dst_match.prereq_ok(d.field.prereq):
                raise _Err("actions are invalid with specified match "
                           f"(OFPBAC_MATCH_INCONSISTENT): learned {d.field.name} lacks "
                           "its prerequisites")
            if spec.src is None:
                bits = ((1 << d.n_bits) - 1) << d.ofs
                v, m = dst_match.get_field(d.field)
                dst_match.set_field(d.field, (v & ~bits) | (spec.imm << d.ofs), m | bits)
        elif spec.kind == "load" and not d.field.writable:
            raise _Err(f"destination field {d.field.name} is not writable")


def _strtoull(s: str) -> int:
    """``strtoull(s, NULL, 0)``: the longest numeric prefix, 0 if none."""
    m = re.match(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", s)
    if not m:
        return 0
    v = int(m.group(2), 0) if not m.group(2).startswith("0") or m.group(2)[:2].lower() == "0x" \
        else int(m.group(2), 8)
    v = min(v, (1 << 64) - 1)
    return (-v if m.group(1) == "-" else v) & ((1 << 64) - 1)


def _atoi(s: str) -> int:
    m = re.match(r"\s*([+-]?\d+)", s)
    return int(m.group(1)) if m else 0


def _scan_mac_prefix(s: str) -> int | None:
    """``ovs_scan`` with ETH_ADDR_SCAN_FMT reads a MAC prefix and ignores the rest."""
    m = re.match(r"([0-9a-fA-F]{1,2}:){5}[0-9a-fA-F]{1,2}", s)
    return parse_mac(m.group(0)) if m else None


def _parse_hex(s: str, error: str) -> bytes:
    """``ofpbuf_put_hex``: pairs of hex digits, optionally separated by dots/spaces."""
    out = bytearray()
    i = 0
    while i < len(s):
        while i < len(s) and s[i] in ". \t":
            i += 1
        if i >= len(s):
            break
        pair = s[i:i + 2]
        if len(pair) < 2 or not re.fullmatch(r"[0-9a-fA-F]{2}", pair):
            raise _Err(error, i, len(s) - i)
        out.append(int(pair, 16))
        i += 2
    return bytes(out)


def _value_valid(fld: MFField, v: int) -> bool:
    """``mf_is_value_valid`` for fields whose values have unused bits."""
    checks = {"nw_tos": lambda x: not x & 3, "ip_dscp": lambda x: not x & ~0x3F,
              "nw_ecn": lambda x: not x & ~3, "dl_vlan": lambda x: not x & 0xF000,
              "vlan_vid": lambda x: not x & 0xE000, "dl_vlan_pcp": lambda x: x <= 7,
              "vlan_pcp": lambda x: x <= 7, "ipv6_label": lambda x: not x & ~0xFFFFF,
              "mpls_label": lambda x: not x & ~0xFFFFF, "mpls_tc": lambda x: x <= 7,
              "arp_op": lambda x: not x & 0xFF00}
    chk = checks.get(fld.name)
    return chk(v) if chk else True
