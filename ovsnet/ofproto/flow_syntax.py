"""``ovs-ofctl add-flow`` syntax: parse flows into :class:`FlowMod` and print them back.

Mirrors Open vSwitch 3.1's ``parse_ofp_str`` (lib/ofp-flow.c): the text before
``actions=`` is a list of ``key=value`` pairs (table, priority, cookie, timeouts,
flags, protocol shorthands such as ``tcp``, and match fields by name or alias,
see :mod:`ovsnet.ofproto.ofp_fields`); the text after it is the instruction and
action list (:mod:`ovsnet.ofproto.ofp_actions`). :func:`format_flow_mod`
prints what ``ovs-ofctl parse-flow`` prints after ``ADD``
(``ofputil_flow_mod_format``: match by ``match_format``, then cookie and
timeouts, then ``actions=`` by ``ofpacts_format``).

Match fields given without their prerequisites (``tp_dst=80`` without
``tcp``) are parsed as OVS parses them and then left out of the flow, as OVS's
match encoding leaves them out (the flow matches every packet); the dropped
fields are listed in :attr:`FlowMod.dropped_fields`. Pass ``strict=True`` to
refuse such flows instead. Actions whose fields lack prerequisites are refused
as ``ofpacts_check`` refuses them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ovsnet.ofproto.ofp_actions import (
    ACTION_NAMES,
    Action,
    ActionParser,
    Clone,
    Enqueue,
    Learn,
    Output,
    OutputReg,
    PopMpls,
    PushMpls,
    RegMove,
    Resubmit,
    SetField,
    StackPop,
    StackPush,
    WriteActions,
    _table,
    format_actions,
    split_key_values,
)
from ovsnet.ofproto.ofp_fields import (
    OFPP_ANY,
    OFPP_MAX,
    PROTOCOLS,
    FlowSyntaxError,
    Match,
    _Err,
    field_by_name,
    field_names,
    format_match,
    parse_field_value,
    str_to_u64,
    str_to_uint,
)

OFP_DEFAULT_PRIORITY = 32768

_COMMANDS = {"add", "modify", "modify_strict", "delete", "delete_strict"}


@dataclass
class FlowMod:
    """One parsed flow (``struct ofputil_flow_mod``).

    ``table`` is None when the flow names no table (OVS's 0xff: table 0 for an
    add). ``cookie_mask`` is nonzero only for modify/delete commands that match
    on a cookie. ``actions`` is the instruction and action list.
    """

    match: Match = field(default_factory=Match)
    actions: tuple[Action, ...] = ()
    table: int | None = None
    priority: int = OFP_DEFAULT_PRIORITY
    cookie: int = 0
    cookie_mask: int = 0
    idle_timeout: int = 0
    hard_timeout: int = 0
    importance: int = 0
    command: str = "add"
    out_port: int = OFPP_ANY
    flags: tuple[str, ...] = ()
    #: match members that OVS leaves out because their prerequisites are missing
    dropped_fields: tuple[str, ...] = ()

    def format(self, port_map: dict[str, int] | None = None) -> str:
        return format_flow_mod(self, port_map)


def format_flow_mod(fm: FlowMod, port_map: dict[str, int] | None = None) -> str:
    """What ``ovs-ofctl parse-flow`` prints after ``ADD`` (``ofputil_flow_mod_format``)."""
    parts = []
    if fm.table:  # OVS leaves out table 0 (and "no table", 255, without the tid extension)
        parts.append(f"table:{fm.table}")
    m = format_match(fm.match, fm.priority, port_map)
    if m:
        parts.append(m)
    if fm.cookie:
        parts.append(f"cookie:{fm.cookie:#x}")
    if fm.idle_timeout:
        parts.append(f"idle:{fm.idle_timeout}")
    if fm.hard_timeout:
        parts.append(f"hard:{fm.hard_timeout}")
    if fm.importance:
        parts.append(f"importance:{fm.importance}")
    for flag in fm.flags:
        parts.append(flag)
    parts.append("actions=" + format_actions(fm.actions, port_map))
    return " ".join(parts)


def parse_flow(text: str, port_map: dict[str, int] | None = None, command: str = "add",
               strict: bool = False) -> FlowMod:
    """Parse one flow in ``ovs-ofctl add-flow`` syntax (``parse_ofp_str``).

    ``port_map`` maps port names to OpenFlow port numbers (what ``ovs-ofctl``
    learns from the switch). Raises :class:`FlowSyntaxError` with the column of
    the offending token.
    """
    try:
        return _parse_flow(text, port_map, command, strict)
    except _Err as e:
        raise FlowSyntaxError(e.message, text, e.offset, e.length or 1) from None


def _parse_flow(text, port_map, command, strict):
    if command not in _COMMANDS:
        raise _Err(f"unknown command {command!r} (valid: {', '.join(sorted(_COMMANDS))})")
    fm = FlowMod(command=command)
    with_actions = command in ("add", "modify", "modify_strict")
    pos = text.find("action")
    if with_actions:
        eq = text.find("=", pos + 1) if pos >= 0 else -1
        if pos < 0 or eq < 0:
            raise _Err("must specify an action", len(text.rstrip()), 1)
        match_part, act_part, act_base = text[:pos], text[eq + 1:], eq + 1
    else:
        match_part, act_part, act_base = text, None, 0
    match = Match()
    flags = []
    for key, value, kofs, vofs in split_key_values(match_part):
        try:
            _parse_match_pair(fm, match, flags, key, value, port_map)
        except _Err as e:
            if e.length:
                anchor = kofs if e.offset < 0 else vofs
                raise _Err(e.message, anchor + max(e.offset, 0), e.length) from None
            raise _Err(e.message, vofs if value else kofs,
                       len(value) if value else len(key)) from None
    fm.flags = tuple(flags)
    if act_part is not None:
        parser = ActionParser(port_map)
        acts = parser.parse(act_part, act_base)
        _check_actions(acts, match.copy(), act_part, act_base)
        fm.actions = tuple(acts)
    if strict:
        bad = match.unmet_prerequisites()
        if bad:
            raise _Err(f"match field {bad[0]} lacks its prerequisites (OVS would ignore it; "
                       "add the protocol, e.g. tcp, ip or ipv6)", 0, len(match_part) or 1)
    fm.dropped_fields = tuple(match.normalize())
    refused = match.unmet_prerequisites(encoding=False)
    if refused:  # nx_pull_raw: mf_are_match_prereqs_ok fails for what was sent
        raise _Err(f"match field {refused[0]} cannot be matched on later fragments "
                   "(ip_frag=later has no L4 header): the switch refuses the flow with "
                   "OFPBMC_BAD_PREREQ; match ip_frag=first or no, or drop the L4 field",
                   0, len(match_part) or 1)
    fm.match = match
    return fm


def _parse_match_pair(fm, match, flags, key, value, port_map):
    if key in PROTOCOLS:
        dl_type, proto = PROTOCOLS[key]
        match.set_field(field_by_name("dl_type"), dl_type)
        if proto:
            match.set_field(field_by_name("nw_proto"), proto)
        return
    if key in ("eth", "no_readonly_table", "allow_hidden_fields"):
        return
    if key in ("send_flow_rem", "check_overlap", "reset_counts", "no_packet_counts",
               "no_byte_counts") and fm.command != "delete" and fm.command != "delete_strict":
        flags.append(key)
        return
    fld = field_by_name(key)
    if fld is not None:
        v, m = parse_field_value(fld, value if value else "0/0", port_map)
        match.set_field(fld, v, m)
        return
    if not value:
        if key in ("table", "priority", "idle_timeout", "hard_timeout", "importance",
                   "cookie", "out_port"):
            raise _Err(f"field {key} missing value", -1, len(key))
        raise _Err(_unknown_keyword(key), -1, len(key))
    if key == "table":
        t = _table(value)
        if t is None:
            raise _Err(f'unknown table "{value}"', 0, len(value))
        fm.table = None if t == 255 else t
    elif key == "priority":
        fm.priority = str_to_uint(value, 16, "priority")
    elif key in ("idle_timeout", "hard_timeout", "importance"):
        setattr(fm, key, str_to_uint(value, 16, key))
    elif key == "cookie":
        v, slash, m = value.partition("/")
        if slash:
            if fm.command == "add":
                raise _Err("flow additions cannot use a cookie mask", 0, len(value))
            fm.cookie, fm.cookie_mask = str_to_u64(v), str_to_u64(m)
        else:
            if fm.command.startswith("delete"):
                raise _Err(f"cannot set cookie (to match on a cookie, specify a mask, e.g. "
                           f"cookie={value}/-1)", 0, len(value))
            fm.cookie = str_to_u64(value)
    elif key == "out_port" and fm.command.startswith("delete"):
        from ovsnet.ofproto.ofp_fields import parse_port
        p = parse_port(value, port_map)
        if p is None:
            raise _Err(f"{value} is not a valid OpenFlow port", 0, len(value))
        fm.out_port = p
    elif key in ("duration", "n_packets", "n_bytes", "idle_age", "hard_age"):
        pass  # ignored so that dump-flows output can be fed back, as OVS does
    else:
        raise _Err(_unknown_keyword(key), -1, len(key))


def _unknown_keyword(key: str) -> str:
    close = [n for n in field_names() if n.startswith(key[:3])][:6]
    hint = f" (match fields include {', '.join(close)})" if close else \
        " (expected a match field such as in_port, dl_src, nw_dst, tp_dst, a protocol " \
        "such as ip or tcp, or table/priority/cookie/idle_timeout/hard_timeout)"
    return f"unknown keyword {key}{hint}"


# -- ofpacts_check: fields an action reads or writes need their prerequisites --------

def _check_actions(acts, match: Match, text: str, base: int) -> None:
    """``ofpacts_check``: ``match`` follows the packet through the actions (push_mpls and
    pop_mpls change its ``dl_type``, as ``check_PUSH_MPLS``/``check_POP_MPLS`` do), so a
    field is judged by the packet at that point; nested actions work on a copy."""
    for a in acts:
        fields = []
        if isinstance(a, PushMpls):
            # the MPLS payload is opaque: nothing can be assumed about nw_proto
            match.set_member("dl_type", a.ethertype, 0xFFFF)
            match.set_member("nw_proto", 0, 0)
            continue
        if isinstance(a, PopMpls):
            match.set_member("dl_type", a.ethertype, 0xFFFF)
            continue
        if isinstance(a, SetField):
            fields.append(a.field)
        elif isinstance(a, RegMove):
            fields += [a.src.field, a.dst.field]
        elif isinstance(a, (StackPush, StackPop)):
            fields.append(a.subfield.field)
        elif isinstance(a, OutputReg):
            fields.append(a.src.field)
        elif isinstance(a, Learn):  # learn_check: the sources are read from the packet
            fields += [spec.src.field for spec in a.specs if spec.src is not None]
        elif isinstance(a, Enqueue):
            if a.port >= OFPP_MAX and a.port not in (0xFFF8, 0xFFFE):  # IN_PORT, LOCAL
                raise _Err("actions are invalid with specified match (OFPBAC_BAD_OUT_PORT)",
                           base, len(text))
        elif isinstance(a, Output):
            if OFPP_MAX <= a.port < 0xFFF8 or a.port == OFPP_ANY:
                raise _Err("actions are invalid with specified match (OFPBAC_BAD_OUT_PORT)",
                           base, len(text))
        elif isinstance(a, Resubmit) and a.with_ct_orig:
            # resubmit(...,ct) needs a tracked connection (ct_state=+trk), which this
            # model does not match on, so OVS's check always fails here
            raise _Err("actions are invalid with specified match "
                       "(OFPBAC_MATCH_INCONSISTENT): resubmit ct needs ct_state=+trk",
                       base, len(text))
        elif isinstance(a, (Clone, WriteActions)):
            _check_actions(a.actions, match.copy(), text, base)
        for f in fields:
            if not match.prereq_ok(f.prereq):
                raise _Err("actions are invalid with specified match "
                           f"(OFPBAC_MATCH_INCONSISTENT): {f.name} lacks correct "
                           "prerequisites", base, len(text))


# -- files ---------------------------------------------------------------------------

def parse_flows_text(text: str, source: str = "<flows>",
                     port_map: dict[str, int] | None = None, strict: bool = False
                     ) -> list[FlowMod]:
    """Parse a flows file's contents: one flow per line; blank lines and ``#`` comments skipped.

    Errors name ``source:line:column``.
    """
    flows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        command = "add"
        body, shift = line, 0
        first = stripped.split(None, 1)[0].split(",", 1)[0]
        if first in _COMMANDS:
            idx = line.index(first) + len(first)
            body, shift = line[idx:], idx
            command = first
        try:
            flows.append(parse_flow(body, port_map, command, strict))
        except FlowSyntaxError as e:
            raise FlowSyntaxError(e.message, line, (e.offset or 0) + shift, e.length,
                                  source, lineno) from None
    return flows


def parse_flows_file(path: str | os.PathLike, port_map: dict[str, int] | None = None,
                     strict: bool = False) -> list[FlowMod]:
    """Read ``ovs-ofctl add-flows`` input from a file (see :func:`parse_flows_text`)."""
    with open(path, encoding="utf-8") as f:
        return parse_flows_text(f.read(), os.fspath(path), port_map, strict)


__all__ = ["ACTION_NAMES", "FlowMod", "FlowSyntaxError", "format_flow_mod", "parse_flow",
           "parse_flows_file", "parse_flows_text"]
