"""The compiled translation core (native/_xlate.pyx): upcalls of the common pipeline in C.

:func:`ovsnet.ofproto.xlate.xlate` is the translation: every action, NORMAL,
patch and tunnel ports, the trace. It is also, per upcall, tens of
microseconds of Python. Most upcalls of a production pipeline only look rules
up, load registers and metadata, rewrite addresses, decrement the TTL, go to
other tables and output to datapath ports; this module translates exactly
those (and moves, output to a register's port and the stack, on plain
fields, and patch ports into other bridges) in compiled code:

- the flow, the datapath's copy of it (``base``), the wildcards and the
  datapath actions are C arrays (the flow as 64-bit words, laid out by
  :data:`~ovsnet.ofproto.of_flow.WORD_OF`);
- the classifier's lookup walks the classifier's own subtables, indices and
  prefix tries (the same staged lookup, trie checks and wildcard folding);
- each rule's actions are compiled once by :func:`compile_actions` into a
  tuple of small integer operations;
- committing header changes (``commit_odp_actions``) and ``xlate_wc_finish``
  are the Python translation's, written over words.

Anything else makes the core give up, before it has changed anything outside
its own C context: :func:`translate` and :func:`translate_key` then return
``None`` and the caller runs the Python translation on the same flow. The
core gives up on

- a rule whose actions :func:`compile_actions` refuses (NORMAL, FLOOD, ALL,
  CONTROLLER, learn, clone, VLAN, MPLS and tunnel actions, write_actions,
  enqueue, a set_field, move or stack pop writing a field with
  prerequisites or a member outside :data:`SETTABLE`, a move, output or
  stack push reading a field with prerequisites or the extended registers
  ...);
- output to a tunnel port, a packet with tunnel metadata or an inner
  802.1Q header (``vlan-limit``), an MPLS or VLAN change to commit;
- a TTL exception, the depth or resubmit limits, more than 4 kB of actions,
  a stack deeper than 64 entries or a pop from an empty one,
  and a translation that ends slow-pathed (ND, ARP or ICMP rewrites).

So side effects (MAC learning, learned flows) only ever happen in Python.
The two translations must agree exactly on datapath actions and megaflow:
``tests/unit/test_fastpath.py`` checks them against each other on the upcall
benchmark's pipeline and on random flow tables.
"""

from __future__ import annotations

from typing import Any

from ovsnet.datapath.odp_attrs import ActionAttr
from ovsnet.ofproto import ofp_actions as A
from ovsnet.ofproto import tunnel as tnl
from ovsnet.ofproto import xlate as _x
from ovsnet.ofproto.bridge import Bridge
from ovsnet.ofproto.classifier import ALL_ONES
from ovsnet.ofproto.of_flow import KEY_MEMBERS, N_WORDS, OF_MEMBERS, WORD_OF, OfFlow
from ovsnet.ofproto.ofp_fields import (
    OFPP_IN_PORT,
    OFPP_LOCAL,
    OFPP_MAX,
    OFPP_NONE,
    OFPP_TABLE,
)

__all__ = ["AVAILABLE", "SETTABLE", "compile_actions", "translate", "translate_key",
           "translate_upcall"]

_native: Any
try:
    from ovsnet import _xlate as _native
except ImportError:  # not built: the Python translation only
    _native = None

#: whether the compiled core is built here
AVAILABLE = _native is not None

#: members a set_field or load may write in the compiled core: registers,
#: metadata, the packet mark and the Ethernet addresses (no prerequisites, no
#: effect on other members, committed with one ``set``)
SETTABLE = frozenset(("metadata", "pkt_mark", "dl_src", "dl_dst",
                      *(f"reg{i}" for i in range(16))))

# opcodes of a compiled program (native/_xlate.pyx has the same numbers)
OP_OUTPUT = 1
OP_RESUBMIT = 2
OP_GOTO = 3
OP_SET_WORD = 4
OP_SET_ETH = 5
OP_SET_IPV4 = 6
OP_SET_TOS = 7
OP_SET_TTL = 8
OP_SET_L4 = 9
OP_DEC_TTL = 10
OP_WRITE_METADATA = 11
OP_MOVE = 12
OP_OUTPUT_REG = 13
OP_PUSH = 14
OP_POP = 15


def _subfield(sf: A.Subfield, dst: bool) -> tuple[int, ...] | None:
    """A subfield in the core's terms: ``(word, field bits of the member, the
    field's shift in the member, offset, all-ones of its width, its wildcard
    bits)``; None unless it is part of one member of at most 64 bits (no
    ``xreg``/``xxreg``, no ``in_port_oxm``) whose field needs no
    prerequisite, and, as a destination, a member of :data:`SETTABLE`."""
    fld = sf.field
    parts = _x._field_parts(fld)
    if (len(parts) != 1 or parts[0][1] != 0 or fld.name == "in_port_oxm"
            or fld.prereq not in ("none", "ethernet")):
        return None
    member, _shift, bits = parts[0]
    if OF_MEMBERS[member] > 64 or dst and member not in SETTABLE:
        return None
    ones = (1 << sf.n_bits) - 1
    return WORD_OF[member], bits, fld.shift, sf.ofs, ones, ((ones << sf.ofs) << fld.shift) & bits

#: reserved ports the core outputs to itself
_OUTPUT_PORTS = frozenset((OFPP_IN_PORT, OFPP_TABLE, OFPP_LOCAL, OFPP_NONE))


#: the actions on one subfield: (opcode, the subfield's attribute, written to)
_ONE_SUBFIELD = {A.OutputReg: (OP_OUTPUT_REG, "src", False),
                 A.StackPush: (OP_PUSH, "subfield", False),
                 A.StackPop: (OP_POP, "subfield", True)}


def compile_actions(actions: tuple[A.Action, ...]) -> tuple[tuple[int, ...], ...] | None:
    """A rule's actions as the core's program, or None if any is not compiled.

    Each operation does what the Python translation's handler of that action
    does (:mod:`ovsnet.ofproto.xlate`), including the wildcards it sets.
    """
    ops: list[tuple[int, ...]] = []
    for a in actions:
        kind = a.__class__
        if kind is A.Output:
            if a.port >= OFPP_MAX and a.port not in _OUTPUT_PORTS:
                return None
            ops.append((OP_OUTPUT, a.port))
        elif kind is A.Resubmit:
            if a.with_ct_orig:
                return None
            ops.append((OP_RESUBMIT, -1 if a.in_port == OFPP_IN_PORT else a.in_port,
                        -1 if a.table == 255 else a.table))
        elif kind is A.GotoTable:
            ops.append((OP_GOTO, a.table))
        elif kind is A.SetField:
            plan = _x._set_field_plan(a)
            if plan is None:
                return None
            for member, wc, keep, value in plan:
                if member not in SETTABLE:
                    return None
                ops.append((OP_SET_WORD, WORD_OF[member], wc, keep, value))
        elif kind is A.SetEth:
            ops.append((OP_SET_ETH, WORD_OF["dl_src" if a.which == "src" else "dl_dst"], a.mac))
        elif kind is A.SetIPv4:
            ops.append((OP_SET_IPV4, WORD_OF["nw_src" if a.which == "src" else "nw_dst"], a.ip))
        elif kind is A.SetIpDscp:
            ops.append((OP_SET_TOS, 0xFC, a.tos))
        elif kind is A.SetIpEcn:
            ops.append((OP_SET_TOS, 0x03, a.ecn))
        elif kind is A.SetIpTtl:
            ops.append((OP_SET_TTL, a.ttl))
        elif kind is A.SetL4Port:
            ops.append((OP_SET_L4, WORD_OF["tp_src" if a.which == "src" else "tp_dst"], a.port))
        elif kind is A.DecTtl:
            ops.append((OP_DEC_TTL,))
        elif kind is A.WriteMetadata:
            ops.append((OP_WRITE_METADATA, a.metadata, a.mask))
        elif kind is A.RegMove:
            src, dst = _subfield(a.src, False), _subfield(a.dst, True)
            if src is None or dst is None:
                return None
            ops.append((OP_MOVE, *src, *dst))
        elif kind in _ONE_SUBFIELD:
            op, attr, dst = _ONE_SUBFIELD[kind]
            sf = _subfield(getattr(a, attr), dst)
            if sf is None:
                return None
            ops.append((op, *sf))
        elif kind is A.Note:
            continue
        else:
            return None
    return tuple(ops)


def _words(members) -> list[int]:
    out = []
    for m in members:
        out.append(WORD_OF[m])
        if OF_MEMBERS[m] > 64:
            out.append(WORD_OF[m] + 1)
    return out


def _group(group: Any) -> tuple:
    """A commit group of the Python translation in the core's terms:
    ``(attr, fields, use_masked, big, tail padding)``, each field ``(word, bytes, writable,
    128 bits wide, full mask low word, full mask high word)``."""
    fields = []
    for member, bits, writable, _ones in group.fields:
        full = (1 << min(bits, OF_MEMBERS[member])) - 1  # what a whole-header set matches
        fields.append((WORD_OF[member], bits // 8, writable, OF_MEMBERS[member] > 64,
                       full & ((1 << 64) - 1), full >> 64))
    return int(group.attr), tuple(fields), group.use_masked, group.order == "big", len(group.pad)


def _config() -> dict[str, Any]:
    ones = [0] * N_WORDS
    for member, word in WORD_OF.items():
        if OF_MEMBERS[member] > 64:
            ones[word] = ones[word + 1] = (1 << 64) - 1
        else:
            ones[word] = ALL_ONES[member]
    return {
        "n_words": N_WORDS,
        "words": {m: WORD_OF[m] for m in (
            "in_port", "dl_type", "nw_frag", "recirc_id", "nw_proto", "nw_ttl", "nw_tos",
            "tp_src", "tp_dst", "tun_dst", "tun_ipv6_dst", "vlan_tci", "vlan1_tci",
            "vlan_tpid", "vlan1_tpid", "metadata")},
        "ones": ones,
        "nonpacket": _words(sorted(_x._NON_PACKET)),
        "patch_cleared": _words(_x.PATCH_CLEARED_MEMBERS),
        "tunnel_wc": _words(tnl.TUNNEL_MEMBERS),
        "lse": _words(_x._LSE),
        "tun": _words(sorted(_x._TUN_MEMBERS)),
        "commit_words": _words(_x.COMMIT_MEMBERS),
        "vlan_words": _words(_x.VLAN_MEMBERS),
        "mpls_words": _words(_x.MPLS_MEMBERS),
        "meta_words": _words(_x.META_MEMBERS),
        "key": [(WORD_OF[m], off, size, order == "big" or size == 1, OF_MEMBERS[m] > 64)
                for m, off, size, order in KEY_MEMBERS],
        "members": [(m, WORD_OF[m], OF_MEMBERS[m] > 64) for m in OF_MEMBERS],
        "groups": {
            "eth": _group(_x._COMMIT_ETH), "ipv4": _group(_x._COMMIT_IPV4),
            "ipv6": _group(_x._COMMIT_IPV6), "nd": _group(_x._COMMIT_ND),
            "arp": _group(_x._COMMIT_ARP), "priority": _group(_x._COMMIT_PRIORITY),
            "mark": _group(_x._COMMIT_MARK),
            "ports": {proto: _group(g) for proto, g in _x._COMMIT_PORTS.items()},
            "icmp": {key: _group(g) for key, g in _x._COMMIT_ICMP.items()},
        },
        "attrs": (int(ActionAttr.OUTPUT), int(ActionAttr.SET), int(ActionAttr.SET_MASKED)),
        "compile": compile_actions,
    }


if _native is not None:
    _native.configure(_config())


def translate(bridge: Bridge, flow: OfFlow) -> tuple[bytes, dict[str, int]] | None:
    """``xlate(bridge, flow)``'s datapath actions and megaflow masks (the
    non-zero ones, by member), or None if the compiled core does not translate
    this flow (or is not built)."""
    if _native is None:
        return None
    return _native.xlate_flow(bridge, flow.__dict__)


def translate_key(bridge: Bridge, raw: bytes, in_port: int) -> tuple[bytes, bytes] | None:
    """The datapath actions and the megaflow mask (a 528-byte flow-key mask)
    of an upcall's flow key ``raw`` whose input is OpenFlow port ``in_port``
    of ``bridge``; None if the compiled core does not translate it."""
    if _native is None:
        return None
    return _native.xlate_key(bridge, raw, in_port)


def translate_upcall(bridge: Bridge, raw: bytes, in_port: int) -> tuple[bytes, bytes, bytes] | None:
    """:func:`translate_key` plus the megaflow's UFID
    (:func:`~ovsnet.datapath.megaflow.masked_ufid` of ``raw`` and the mask)."""
    if _native is None:
        return None
    return _native.xlate_upcall(bridge, raw, in_port)
