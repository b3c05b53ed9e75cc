"""A model of ovs-vswitchd's ofproto layer: OpenFlow flow tables and their syntax.

:mod:`ovsnet.ofproto.flow_syntax` parses and prints ``ovs-ofctl add-flow`` flows
(match fields, instructions and actions) as Open vSwitch 3.1 does; the flow
classifier, translation (xlate) and NORMAL consume its :class:`FlowMod` model.
"""

from ovsnet.ofproto.flow_syntax import (
    FlowMod,
    FlowSyntaxError,
    format_flow_mod,
    parse_flow,
    parse_flows_file,
    parse_flows_text,
)
from ovsnet.ofproto.ofp_fields import FIELDS, Match, field_by_name

__all__ = [
    "FIELDS",
    "FlowMod",
    "FlowSyntaxError",
    "Match",
    "field_by_name",
    "format_flow_mod",
    "parse_flow",
    "parse_flows_file",
    "parse_flows_text",
]
