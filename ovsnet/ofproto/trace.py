"""``ofproto/trace`` output: the text ``ovs-appctl ofproto/trace`` prints, and a JSON form.

Modelled on Open vSwitch 3.1's ``ofproto/ofproto-dpif-trace.c``
(``ofproto_trace__``, ``oftrace_node_print_details``): translation reports
a tree of nodes (bridges, tables, actions, details ``->``, warnings ``>>``,
errors ``>>>> ... <<<<``); a node is indented one level more than its
parent unless it is the last non-terminal node of its list, which is how a
resubmit at the end of a rule's actions prints its table at the same
indentation. Then come ``Final flow:``, ``Megaflow:``, ``Datapath
actions:`` and, if need be, the slow-path explanation or the translation
failure.

:func:`~ovsnet.ofproto.xlate.xlate` records a flat list of
:class:`~ovsnet.ofproto.xlate.TraceStep` (table lookups with their nesting
depth and action lines); :func:`trace_tree` rebuilds OVS's tree from it: a
nested table hangs after the ``resubmit``/``goto_table`` line that caused
it, a patch peer's tables under their ``bridge("...")`` line, and the action
set's execution at the end of the table that ran last. Lines are classified
as OVS's node types by their text. Rules and actions print as ovs-vswitchd
holds them after decoding the flow_mods ``ovs-ofctl`` sent
(:mod:`ovsnet.ofproto.ofp_roundtrip`), and the action set as
``xlate_report_action_set`` prints it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ovsnet.datapath.flow_format import format_flow
from ovsnet.datapath.flow_key import KEY_SIZE, FlowKey
from ovsnet.ofproto import ofp_actions as A
from ovsnet.ofproto.of_flow import KEY_MEMBERS, OfFlow
from ovsnet.ofproto.ofp_fields import format_match, format_port
from ovsnet.ofproto.ofp_roundtrip import (
    ActionDecoder,
    decoded_actions,
    decoded_match,
    default_protocol,
)
from ovsnet.ofproto.xlate import (
    ACTION_SET,
    TraceStep,
    XlateResult,
    execute_action_set,
    format_datapath_actions,
)

__all__ = ["TraceNode", "flow_text", "trace_json", "trace_text", "trace_tree"]

#: node types of ofproto-dpif-trace.h (``enum oftrace_node_type``)
BRIDGE, TABLE, ACTION, DETAIL, WARN, ERROR = "bridge", "table", "action", "detail", "warn", "error"
_TERMINAL = {ACTION, DETAIL, WARN, ERROR}

#: messages translation reports as OFT_DETAIL (``->``) in ofproto-dpif-xlate.c
_DETAILS = ("no learned MAC for destination, flooding", "forwarding to learned port",
            "learned port is input port, dropping",
            "packet has reserved destination MAC, dropping", "OFPPC_NO_FWD set, skipping output",
            "output to kernel tunnel", "output to native tunnel")
_SUBFIELD_DETAIL_RE = re.compile(r"^(\S+ is now \S+|output port is \d+)$")
_DETAIL_PREFIXES = ("learned that ", "action set ", "queue = ")
#: the flow a ``learn`` action adds, as ``xlate_learn_action`` reports it
_LEARNED_RE = re.compile(r"^table=\d+ .*\bactions=")
#: messages reported as OFT_WARN (``>>``), ``xlate_report_info`` among them
_WARNS = ("no input bundle, dropping", "partial VLAN tag, dropping",
          "IPv4 decrement TTL exception", "IPv6 decrement TTL exception",
          "MPLS decrement TTL exception", "suppressing side effects, so learn action ignored",
          "Not tunneling to our own address",
          "disallowed VLAN VID for this input port, dropping", "learned port is unknown, dropping",
          "Nonexistent output port", "skipping output to input port")
_WARN_RE = re.compile(r"^(unmet prerequisites for .*|output port \d+ is out of range"
                      r"|patch port .* has no peer, skipping output)$")
#: action lines after which translation goes on in another table (a child node)
_TRIGGER_RE = re.compile(r'^(resubmit[(:]|goto_table:|bridge\(")')
#: a port name in an action: after ``output:``, ``resubmit(``, ``enqueue:``, ``in_port=`` ...
_PORT_TOKEN_RE = re.compile(r"(?<=[:(,=])([A-Za-z][A-Za-z0-9_.-]*)(?=[,):]|$)")

#: ``port_maps`` argument: bridge name -> {port name: ofport}
PortMaps = Mapping[str, Mapping[str, int]]
#: ``protocols`` argument: one OpenFlow version for every bridge, or per bridge name
#: (``OpenFlow10`` ... ``OpenFlow15``); None or a missing bridge: :func:`default_protocol`
Protocols = str | Mapping[str, str | None] | None
_ACTION_SET_RE = re.compile(r"^action set (is|was) (.*)$")


@dataclass(eq=False)
class TraceNode:
    """One node of the trace tree (``struct oftrace_node``)."""

    kind: str
    text: str
    children: list[TraceNode] = field(default_factory=list)


def _line_kind(text: str) -> tuple[str, str]:
    if text.startswith(">>>> ") and text.endswith(" <<<<"):
        inner = text[5:-5]
        return (WARN if inner in _WARNS else ERROR), inner
    if text.startswith('bridge("'):
        return BRIDGE, text
    if (text in _DETAILS or text.startswith(_DETAIL_PREFIXES) or _LEARNED_RE.match(text)
            or _SUBFIELD_DETAIL_RE.match(text)):
        return DETAIL, text
    if text in _WARNS or _WARN_RE.match(text):
        return WARN, text
    return ACTION, text


def _numbered(text: str, ports: Mapping[str, int]) -> str:
    """An action's text with port names as numbers (``ofpacts_format`` without a port map)."""
    return _PORT_TOKEN_RE.sub(
        lambda m: format_port(ports[m.group(1)]) if m.group(1) in ports else m.group(1), text)


def _table_line(step: TraceStep, protocol: str) -> str:
    """``xlate_report_table``'s line, the rule's match as ovs-vswitchd decoded it."""
    if step.table == ACTION_SET or step.match is None:
        return step.line()
    rule = format_match(decoded_match(step.match, protocol))
    text = rule + (", " if rule else "") + f"priority {step.priority}"
    if step.cookie:
        text += f", cookie {step.cookie:#x}"
    return f"{step.table:2d}. {text}"


def _step_items(step: TraceStep, port_maps: PortMaps | None) -> list[tuple[Any, str, Any]]:
    """``(action or None, text, port map)`` per line under ``step``.

    Translation keeps an executed OpenFlow action as ``(action, bridge)``
    (:attr:`TraceStep.items`); a line reported as text that reads as an
    action is parsed back with the bridge's port names from ``port_maps``,
    and stays text when that fails.
    """
    raw = step.items
    names = (port_maps or {}).get(step.bridge) or next(
        (item[1].port_map for item in raw if item.__class__ is tuple), None)
    items = []
    for item in raw:
        if item.__class__ is tuple:
            items.append((item[0], "", item[1].port_map))
            continue
        action = None
        if _line_kind(item)[0] == ACTION:
            try:
                parsed = A.ActionParser(dict(names) if names else None).parse(item)
            except Exception:  # not an action ovs-ofctl syntax can say: keep the text
                parsed = []
            action = parsed[0] if len(parsed) == 1 else None
        items.append((action, item, names))
    return items


def _step_lines(step: TraceStep, protocols: Protocols,
                port_maps: PortMaps | None = None) -> tuple[str, list[str]]:
    """The table line and the lines under it, actions as ovs-vswitchd holds them
    after decoding the flow_mod (:mod:`ovsnet.ofproto.ofp_roundtrip`).

    The actions are decoded in order for the protocol of the step's bridge
    (``protocols``), or by default the one ``ovs-ofctl`` would use for the
    rule's actions. ``action set is/was`` details become OVS's ``action set
    is: ...`` of the decoded action set after ``ofpacts_execute_action_set``
    (or ``action set is empty``).
    """
    items = _step_items(step, port_maps)
    actions = [a for a, _text, _names in items if a is not None]
    if isinstance(protocols, str):
        protocol = protocols
    else:
        protocol = (protocols or {}).get(step.bridge) or (
            # the action set holds what write_actions (OpenFlow 1.1+) wrote
            "OpenFlow13" if step.table == ACTION_SET else default_protocol(actions))
    decoder = ActionDecoder(protocol, step.match)
    lines = []
    for action, text, names in items:
        if action is not None:
            lines += [d.format(names) for d in decoder.decode(action)]
            continue
        m = _ACTION_SET_RE.match(text)
        if m:
            text = _action_set_line(m.group(1), m.group(2), protocol, names)
        lines.append(text)
    return _table_line(step, protocol), lines


def _action_set_line(verb: str, text: str, protocol: str, port_map) -> str:
    """``xlate_report_action_set``'s detail for an action set ``text`` printed as
    written (``format_actions``)."""
    try:
        written = A.ActionParser(dict(port_map) if port_map else None).parse(text)
    except Exception:  # not ours to re-read: keep translation's text
        return f"action set {verb}: {text}"
    actions = execute_action_set(decoded_actions(written, protocol))
    if not actions:
        return f"action set {verb} empty"
    return f"action set {verb}: {A.format_actions(actions, port_map)}"


def trace_tree(bridge: str, steps: list[TraceStep], port_maps: PortMaps | None = None,
               protocols: Protocols = None) -> list[TraceNode]:
    """The tree of ``steps`` under a ``bridge("BRIDGE")`` root node.

    With ``port_maps`` port names in action lines are printed as numbers, as
    ``ofproto/trace`` does without ``--names``. Rules and actions print as
    ovs-vswitchd decoded them from ``ovs-ofctl``'s flow_mods of ``protocols``
    (see :func:`_step_lines`).
    """
    root = TraceNode(BRIDGE, f'bridge("{bridge}")')
    #: per depth, the last table node and its line nodes still able to take a child
    open_steps: dict[int, tuple[TraceNode, list[TraceNode], list[int]]] = {}
    for step in steps:
        table_line, texts = _step_lines(step, protocols, port_maps)
        node = TraceNode(TABLE, table_line)
        lines = [TraceNode(*_line_kind(a)) for a in texts]
        ports = (port_maps or {}).get(step.bridge)
        if ports:
            for line in lines:
                if line.kind == ACTION or line.text.startswith("action set "):
                    line.text = _numbered(line.text, ports)
        node.children = list(lines)
        triggers = [i for i, n in enumerate(lines) if _TRIGGER_RE.match(n.text)]
        if step.table == ACTION_SET:
            parent = open_steps.get(step.depth)
            (parent[0].children if parent else root.children).append(node)
            continue
        parent = open_steps.get(step.depth - 1)
        if parent is None:
            root.children.append(node)
        else:
            p_node, p_lines, p_triggers = parent
            if p_triggers:
                i = p_triggers.pop(0)
                trigger = p_lines[i]
                if trigger.kind == BRIDGE:
                    trigger.children.append(node)
                else:
                    # after the trigger line and whatever hangs there already
                    at = next(i for i, n in enumerate(p_node.children) if n is trigger) + 1
                    p_node.children.insert(at, node)
            else:
                p_node.children.append(node)
        open_steps[step.depth] = (node, lines, triggers)
        for d in [d for d in open_steps if d > step.depth]:
            del open_steps[d]
    return [root]


def _print(out: list[str], nodes: list[TraceNode], level: int) -> None:
    """``oftrace_node_print_details``."""
    for k, node in enumerate(nodes):
        if node.kind == BRIDGE:
            out.append("")
        more = k + 1 < len(nodes) or node.kind in _TERMINAL
        pad = " " * ((level + more) * 4)
        if node.kind == DETAIL:
            out.append(f"{pad} -> {node.text}")
        elif node.kind == WARN:
            out.append(f"{pad} >> {node.text}")
        elif node.kind == ERROR:
            out.append(f"{pad} >>>> {node.text} <<<<")
        elif node.kind == BRIDGE:
            out.append(f"{pad}{node.text}")
            out.append(pad + "-" * len(node.text))
        else:
            out.append(f"{pad}{node.text}")
        _print(out, node.children, level + 2 * more)


def flow_text(flow: OfFlow) -> str:
    """``flow_format`` of ``flow`` (the ``Flow:`` line), ports by number.

    The packet fields are printed from the flow's datapath key
    (:func:`~ovsnet.datapath.flow_format.format_flow`); the OpenFlow-only
    ``regN`` and ``metadata`` go where ``match_format`` puts them, after the
    protocol and before the tunnel fields and ``in_port`` respectively, when
    they are not zero.
    """
    raw = bytearray(KEY_SIZE)
    for member, offset, size, order in KEY_MEMBERS:
        value = getattr(flow, member)
        if value:
            raw[offset:offset + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, order)
    raw[0:4] = flow.in_port.to_bytes(4, "little")
    tokens = format_flow(FlowKey(bytes(raw))).split(",")
    regs = [f"reg{i}={getattr(flow, f'reg{i}'):#x}" for i in range(16) if getattr(flow, f"reg{i}")]
    meta = [f"metadata={flow.metadata:#x}"] if flow.metadata else []
    if regs or meta:
        def before(prefixes: tuple[str, ...]) -> int:
            return next((i for i, t in enumerate(tokens) if t.startswith(prefixes)), len(tokens))
        tokens[before(_AFTER_METADATA):before(_AFTER_METADATA)] = meta
        tokens[before(_AFTER_REGS):before(_AFTER_REGS)] = regs
    return ",".join(tokens)


#: the first ``flow_format`` tokens that follow the registers, and the metadata
_AFTER_REGS = ("tun_", "metadata=", "in_port=", "vlan_tci=", "dl_vlan", "dl_src=")
_AFTER_METADATA = ("in_port=", "vlan_tci=", "dl_vlan", "dl_src=")


def trace_text(bridge: str, result: XlateResult, port_maps: PortMaps | None = None,
               protocols: Protocols = None) -> str:
    """The whole ``ofproto/trace`` text of one translation starting on ``bridge``.

    ``port_maps`` (bridge name -> port name -> ofport) turns port names in
    action lines into numbers, as OVS prints them. ``protocols`` is the
    OpenFlow version the flows were loaded with (``ovs-ofctl -O``), for all
    bridges or per bridge name; by default OpenFlow 1.0, or 1.3 for a rule
    that needs 1.1+ (:func:`~ovsnet.ofproto.ofp_roundtrip.default_protocol`).
    """
    out = [f"Flow: {flow_text(result.flow)}"]
    _print(out, trace_tree(bridge, result.trace, port_maps, protocols), 0)
    final = "unchanged" if result.final_flow == result.flow else flow_text(result.final_flow)
    out += ["", f"Final flow: {final}", f"Megaflow: {result.megaflow()}",
            f"Datapath actions: {format_datapath_actions(result.datapath_actions) or 'drop'}"]
    if result.error is not None:
        out.append(f"Translation failed ({result.error}), packet is dropped.")
    elif result.slow:
        out += ["This flow is handled by the userspace slow path because it:",
                "  - Uses action(s) not supported by datapath."]
    return "\n".join(out) + "\n"


def trace_json(bridge: str, result: XlateResult, ports: dict[int, str]) -> dict[str, Any]:
    """One trace as a JSON-ready object (see ``ovsnet trace --format json``)."""
    return {
        "bridge": bridge,
        "flow": flow_text(result.flow),
        "tables": [
            {"bridge": s.bridge, "table": None if s.table == ACTION_SET else s.table,
             "rule": s.rule, "priority": s.priority, "cookie": s.cookie, "depth": s.depth,
             "actions": list(s.actions)}
            for s in result.trace
        ],
        "final_flow": flow_text(result.final_flow),
        "megaflow": result.megaflow(),
        "datapath_actions": format_datapath_actions(result.datapath_actions) or "drop",
        "ports": {str(no): name for no, name in sorted(ports.items())},
        "errors": list(result.errors),
        "error": result.error,
        "slow": result.slow,
        "unsupported": list(result.unsupported),
    }
