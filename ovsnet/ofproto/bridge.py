"""A simulated OpenFlow bridge: its ports and its flow tables.

Models what Open vSwitch 3.1's ofproto layer keeps per bridge and what
translation (:mod:`ovsnet.ofproto.xlate`) reads: the ports with their
OpenFlow port number (``ofport``), datapath port number (``odp_port``) and
name (``struct ofport_dpif``, ``ofp_port_to_odp_port``,
``odp_port_to_ofp_port`` in ofproto/ofproto-dpif.c), and the OpenFlow tables,
one :class:`~ovsnet.ofproto.classifier.Classifier` each (``struct oftable``).
The bridge's internal port is ``LOCAL`` (OpenFlow port 0xfffe).

Tunnel ports (:meth:`Bridge.add_tunnel_port`) follow ``ofproto/tunnel.c``:
every tunnel port of one type and UDP port shares one datapath vport, so a
packet from that vport reaches its OpenFlow port by its tunnel metadata
(:meth:`Bridge.lookup_input`, see :mod:`ovsnet.ofproto.tunnel`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ovsnet.errors import OfprotoError
from ovsnet.ofproto.classifier import DEFAULT_PREFIXES, Classifier, ClsRule
from ovsnet.ofproto.flow_syntax import FlowMod, parse_flow
from ovsnet.ofproto.mac_learning import MacLearning
from ovsnet.ofproto.of_flow import OfFlow
from ovsnet.ofproto.ofp_fields import OFPP_LOCAL, OFPP_MAX
from ovsnet.ofproto.tunnel import (
    TunnelConfig,
    parse_tunnel_config,
    tnl_match_key,
    tnl_port_format,
    tnl_port_receive,
    tunnel_dst,
)
from ovsnet.ofproto.vlan import DEFAULT_VLAN_LIMIT, VlanConfig, effective_vlan_limit

__all__ = ["N_TABLES", "TBL_INTERNAL", "Bridge", "BridgePort", "connect_patch"]

_LITTLE = sys.byteorder == "little"


def _low16(odp_port: int) -> int:
    """A datapath port number as the flow's 16-bit ``in_port`` before the
    input port is resolved (:meth:`Bridge.flow_from_key` sets the real one)."""
    return odp_port & 0xFFFF


#: OpenFlow tables of a bridge (ofproto.h N_TABLES), the last one internal
N_TABLES = 255
#: the hidden table of OVS's internal rules (ofproto-dpif.c TBL_INTERNAL)
TBL_INTERNAL = N_TABLES - 1


_DEFAULT_VLAN_CONFIG = VlanConfig()


@dataclass(frozen=True)
class BridgePort:
    """One bridge port: its name, OpenFlow port, datapath port and config flags.

    ``no_flood`` and ``no_fwd`` are OpenFlow's ``OFPPC_NO_FLOOD`` and
    ``OFPPC_NO_FWD`` (set with :meth:`Bridge.mod_port`). A patch port has no
    datapath port (``odp_port`` None) and names its ``peer`` port; see
    :func:`connect_patch`. A tunnel port has its :class:`TunnelConfig` in
    ``tunnel`` and the shared tunnel vport as ``odp_port``.
    """

    name: str
    ofport: int
    odp_port: int | None
    no_flood: bool = False
    no_fwd: bool = False
    peer: str | None = None
    tunnel: TunnelConfig | None = None


class Bridge:
    """An OpenFlow bridge: ports and 255 flow tables (table 254 is internal).

    ``Bridge("br0", local_odp_port=100)`` has just its ``LOCAL`` port named
    like the bridge; :meth:`add_port` adds more. Flows go in with
    :meth:`add_flow` (a :class:`FlowMod` or ``ovs-ofctl add-flow`` text).

    For the NORMAL action each port is its own bundle with a
    :class:`~ovsnet.ofproto.vlan.VlanConfig` (a trunk of every VLAN until
    :meth:`set_vlan_config` says otherwise); the bridge has a
    :class:`~ovsnet.ofproto.mac_learning.MacLearning` table, ``vlan_limit``
    (``Open_vSwitch other_config:vlan-limit``) and ``forward_bpdu`` (Bridge
    ``other_config:forward-bpdu``).
    """

    def __init__(self, name: str, *, local_odp_port: int = 0,
                 prefixes: Iterable[str] = DEFAULT_PREFIXES):
        self.name = name
        self.prefixes = tuple(prefixes)
        self._by_ofport: dict[int, BridgePort] = {}
        self._by_odp: dict[int, BridgePort] = {}
        self._by_name: dict[str, BridgePort] = {}
        self.tables: dict[int, Classifier] = {}
        #: bridges reachable through patch ports (they share this bridge's datapath)
        self.patch_bridges: list[Bridge] = []
        self.vlan_configs: dict[int, VlanConfig] = {}
        self.mac_learning = MacLearning()
        self.vlan_limit = DEFAULT_VLAN_LIMIT
        self.forward_bpdu = False
        #: OpenFlow ports in the order NORMAL floods their bundles (None: ascending
        #: ofport). OVS walks its bundle list, whose order depends on memory
        #: addresses, so tests comparing megaflows with OVS may need to set it.
        self.bundle_order: list[int] | None = None
        #: bumped by every change to ports, port settings or flows; installed
        #: megaflows translated at an older version need revalidation (OVS's
        #: ``need_revalidate`` / ``tables_version``)
        self.version = 0
        #: tunnel vport name -> its datapath port (shared by the tunnel ports behind it)
        self._tunnel_vports: dict[str, int] = {}
        #: ``tnl_match_key`` -> ofport of the tunnel port it selects
        self._tnl_matches: dict[tuple, int] = {}
        self._add(BridgePort(name, OFPP_LOCAL, local_odp_port))

    # -- ports ---------------------------------------------------------------

    def add_port(self, name: str, ofport: int, odp_port: int) -> BridgePort:
        """Add a port; names, OpenFlow and datapath numbers must be unused."""
        if not 1 <= ofport < OFPP_MAX:
            raise OfprotoError(f"bridge {self.name}: port {name!r} ofport {ofport} is out of "
                               f"range: must be 1..{OFPP_MAX - 1}")
        return self._add(BridgePort(name, ofport, odp_port))

    def _add(self, port: BridgePort) -> BridgePort:
        odp = None if port.tunnel is not None else port.odp_port
        for what, index, key in (("name", self._by_name, port.name),
                                 ("ofport", self._by_ofport, port.ofport),
                                 ("odp_port", self._by_odp, odp)):
            if key is not None and key in index:
                raise OfprotoError(f"bridge {self.name}: {what} {key!r} of port "
                                   f"{port.name!r} is already used by port "
                                   f"{index[key].name!r}")
        if odp is not None and odp in self._tunnel_vports.values():
            vport = next(n for n, p in self._tunnel_vports.items() if p == odp)
            raise OfprotoError(f"bridge {self.name}: odp_port {odp} of port {port.name!r} is "
                               f"already used by the tunnel vport {vport}")
        self._by_name[port.name] = port
        self._by_ofport[port.ofport] = port
        if odp is not None:
            self._by_odp[odp] = port
        self.version += 1
        return port

    # -- tunnel ports (ofproto/tunnel.c) ----------------------------------------

    def add_tunnel_port(self, name: str, ofport: int, type_: str,
                        options: Mapping[str, Any] | None = None, *,
                        odp_port: int | None = None) -> BridgePort:
        """Add a tunnel port from an Interface row's ``type`` and ``options`` (``tnl_port_add``).

        ``type_`` is ``vxlan``, ``geneve`` or ``gre``; ``options`` the
        Interface ``options`` column (see
        :func:`~ovsnet.ofproto.tunnel.parse_tunnel_config`; values may be
        numbers or strings). ``odp_port`` is the datapath port of the shared
        tunnel vport (``vxlan_sys_4789`` ...); without it the number the vport
        already has on this bridge or a patch peer is used, else the lowest
        datapath port number this bridge does not use. Raises
        :class:`OfprotoError` for bad options, a vport number that disagrees
        with the vport's existing one, and for a port whose receive match
        (key, addresses) duplicates another tunnel port's, which OVS refuses.
        """
        if not 1 <= ofport < OFPP_MAX:
            raise OfprotoError(f"bridge {self.name}: port {name!r} ofport {ofport} is out of "
                               f"range: must be 1..{OFPP_MAX - 1}")
        config = parse_tunnel_config(type_, {k: str(v) for k, v in (options or {}).items()},
                                     name=name)
        return self._add_tunnel(name, ofport, config, odp_port)

    def _add_tunnel(self, name: str, ofport: int, config: TunnelConfig,
                    odp_port: int | None) -> BridgePort:
        vport = config.vport
        known = self._vport_number(vport)
        if odp_port is None:
            odp_port = known if known is not None else self._free_odp_port()
        elif known is not None and known != odp_port:
            raise OfprotoError(f"bridge {self.name}: tunnel port {name!r}: its vport {vport} "
                               f"is datapath port {known}, not {odp_port} (tunnel ports of "
                               f"one type and UDP port share one datapath port)")
        if odp_port in self._by_odp:
            raise OfprotoError(f"bridge {self.name}: tunnel port {name!r}: odp_port {odp_port} "
                               f"is already used by port {self._by_odp[odp_port].name!r}")
        other = next((n for n, p in self._tunnel_vports.items() if p == odp_port and n != vport),
                     None)
        if other is not None:
            raise OfprotoError(f"bridge {self.name}: tunnel port {name!r}: odp_port {odp_port} "
                               f"is already the tunnel vport {other}")
        key = tnl_match_key(config, odp_port)
        for bridge in (self, *self.patch_bridges):
            clash = bridge._tnl_matches.get(key)
            if clash is not None:
                raise OfprotoError(
                    f"bridge {self.name}: tunnel port {name!r} has the same receive match as "
                    f"port {bridge.port(clash).name!r} of bridge {bridge.name} (same type, "
                    f"UDP port, key and addresses); OVS refuses such a port")
        port = self._add(BridgePort(name, ofport, odp_port, tunnel=config))
        self._tunnel_vports[vport] = odp_port
        self._tnl_matches[key] = ofport
        return port

    def _vport_number(self, vport: str) -> int | None:
        for bridge in (self, *self.patch_bridges):
            if vport in bridge._tunnel_vports:
                return bridge._tunnel_vports[vport]
        return None

    def _free_odp_port(self) -> int:
        used = set(self._by_odp) | set(self._tunnel_vports.values())
        n = 1
        while n in used:
            n += 1
        return n

    def reconfigure_tunnel_port(self, name: str, type_: str,
                                options: Mapping[str, Any] | None = None, *,
                                odp_port: int | None = None) -> BridgePort:
        """Apply new Interface ``type``/``options`` to a tunnel port (``tnl_port_reconfigure``).

        The port keeps its name and ofport; on error it is left unchanged.
        """
        old = self._by_name.get(name)
        if old is None or old.tunnel is None:
            raise OfprotoError(f"bridge {self.name}: no tunnel port {name!r} to reconfigure")
        config = parse_tunnel_config(type_, {k: str(v) for k, v in (options or {}).items()},
                                     name=name)
        self._remove_tunnel(old)
        try:
            return self._add_tunnel(name, old.ofport, config, odp_port)
        except OfprotoError:
            self._add_tunnel(name, old.ofport, old.tunnel, old.odp_port)
            raise

    def del_port(self, port: int | str) -> BridgePort:
        """Remove a port (by ofport or name; not ``LOCAL``), as deleting its
        Interface row does; returns it. A tunnel port's shared vport stays
        while other tunnel ports use it."""
        old = self._by_name.get(port) if isinstance(port, str) else self._by_ofport.get(port)
        if old is None:
            raise OfprotoError(f"bridge {self.name}: del-port: no port {port!r}")
        if old.ofport == OFPP_LOCAL:
            raise OfprotoError(f"bridge {self.name}: del-port: the bridge's LOCAL port "
                               f"{old.name!r} cannot be deleted")
        self.vlan_configs.pop(old.ofport, None)
        if old.tunnel is not None:
            self._remove_tunnel(old)
            return old
        del self._by_name[old.name]
        del self._by_ofport[old.ofport]
        if old.odp_port is not None:
            del self._by_odp[old.odp_port]
        self.version += 1
        return old

    def _remove_tunnel(self, port: BridgePort) -> None:
        assert port.tunnel is not None
        del self._by_name[port.name]
        del self._by_ofport[port.ofport]
        self._tnl_matches.pop(tnl_match_key(port.tunnel, port.odp_port), None)
        vport = port.tunnel.vport
        if not any(p.tunnel is not None and p.tunnel.vport == vport
                   for p in self._by_ofport.values()):
            self._tunnel_vports.pop(vport, None)
        self.version += 1

    def list_tunnels(self) -> str:
        """``ovs-appctl ofproto/list-tunnels`` for this bridge's tunnel ports (by ofport;
        OVS prints them in hash order)."""
        return "".join(tnl_port_format(p.name, p.odp_port, p.tunnel) + "\n"
                       for p in self.tunnel_ports)

    @property
    def tunnel_ports(self) -> list[BridgePort]:
        """The tunnel ports, by ofport."""
        return [p for p in self.ports if p.tunnel is not None]

    def lookup_input(self, odp_port: int, flow: OfFlow) -> tuple[Bridge, BridgePort]:
        """The bridge and port a packet from datapath port ``odp_port`` enters
        (``xlate_lookup_ofproto_``).

        A packet with tunnel metadata (a tunnel destination) is mapped by
        that metadata to a tunnel port of this bridge or of a bridge behind a
        patch port (``tnl_port_receive``); any other by its datapath port.
        Raises :class:`OfprotoError` with OVS's message when there is none
        (OVS then drops the packet).
        """
        if tunnel_dst(flow):
            for bridge in (self, *self.patch_bridges):
                ofport = tnl_port_receive(bridge._tnl_matches, flow, odp_port)
                if ofport is not None:
                    return bridge, bridge._by_ofport[ofport]
            raise OfprotoError("no OpenFlow tunnel port for this packet")
        for bridge in (self, *self.patch_bridges):
            port = bridge._by_odp.get(odp_port)
            if port is not None:
                return bridge, port
        raise OfprotoError(f"no OpenFlow port for datapath port {odp_port}")

    def flow_from_key(self, key) -> tuple[Bridge, OfFlow]:
        """The bridge and :class:`OfFlow` for a datapath flow key, its input port
        resolved by :meth:`lookup_input` (tunnel metadata included)."""
        raw = key.raw if hasattr(key, "raw") else bytes(key)
        flow = OfFlow.from_flow_key(raw, _low16)
        odp_port = int.from_bytes(raw[0:4], "little" if _LITTLE else "big")
        bridge, port = self.lookup_input(odp_port, flow)
        # a port's ofport was range-checked when it was added (add_port)
        flow.in_port = port.ofport
        # the flow is this call's own: limit its VLANs without a copy
        bridge._limit_vlans_in_place(flow)
        return bridge, flow

    def set_vlan_config(self, port: int | str, config: VlanConfig) -> None:
        """Give a port's bundle its VLAN settings (the Port columns ``vlan_mode``,
        ``tag``, ``trunks``, ``cvlans``, ``other_config``), see :meth:`VlanConfig.configure`."""
        bp = self._by_name.get(port) if isinstance(port, str) else self._by_ofport.get(port)
        if bp is None:
            raise OfprotoError(f"bridge {self.name}: no port {port!r} to configure VLANs on")
        self.vlan_configs[bp.ofport] = config
        self.version += 1

    def vlan_config(self, ofport: int) -> VlanConfig:
        """A port's bundle VLAN settings (trunk of every VLAN by default)."""
        return self.vlan_configs.get(ofport) or _DEFAULT_VLAN_CONFIG

    def limit_vlans(self, flow: OfFlow) -> OfFlow:
        """``flow`` as flow extraction sees it under :attr:`vlan_limit` (``flow_limit_vlans``).

        A flow built from a datapath key holds every 802.1Q header it has (up
        to two); with ``vlan-limit`` 1 (OVS's default) ovs-vswitchd parses only
        the outer one, and the inner header's TPID becomes the ``dl_type``.
        Returns a new flow; ``flow`` is unchanged.
        """
        out = flow.copy()
        self._limit_vlans_in_place(out)
        return out

    def _limit_vlans_in_place(self, flow: OfFlow) -> None:
        """:meth:`limit_vlans` on ``flow`` itself. Only a flow with an inner
        802.1Q header (``vlan1_tci`` with CFI/present bit) changes."""
        if flow.vlan1_tci & 0x1000 and effective_vlan_limit(self.vlan_limit) < 2:
            flow.set("dl_type", flow.vlan1_tpid or 0x8100)
            flow.set("vlan1_tpid", 0)
            flow.set("vlan1_tci", 0)

    def peer_of(self, port: BridgePort) -> tuple[Bridge, BridgePort] | None:
        """The bridge and port at the other end of a patch port (None if unconnected)."""
        if port.peer is None:
            return None
        for bridge in self.patch_bridges:
            other = bridge.port_by_name(port.peer)
            if other is not None and other.peer == port.name:
                return bridge, other
        return None

    def mod_port(self, port: int | str, action: str) -> BridgePort:
        """``ovs-ofctl mod-port``: ``flood``/``noflood``/``no-flood``, ``forward``/``noforward``."""
        old = self._by_name.get(port) if isinstance(port, str) else self._by_ofport.get(port)
        if old is None:
            raise OfprotoError(f"bridge {self.name}: mod-port: no port {port!r}")
        word = action.lower()
        negate = word.startswith("no")
        word = word[3:] if word.startswith("no-") else word[2:] if negate else word
        flag = {"flood": "no_flood", "forward": "no_fwd"}.get(word)
        if flag is None:
            raise OfprotoError(f"mod-port: unknown action {action!r} (valid: flood, noflood, "
                               f"forward, noforward)")
        new = replace(old, **{flag: negate})
        self._by_name[new.name] = self._by_ofport[new.ofport] = new
        if new.odp_port is not None and new.tunnel is None:
            self._by_odp[new.odp_port] = new
        self.version += 1
        return new

    def port(self, ofport: int) -> BridgePort | None:
        """The port with this OpenFlow number (``get_ofp_port``), or None."""
        return self._by_ofport.get(ofport)

    def port_by_name(self, name: str) -> BridgePort | None:
        return self._by_name.get(name)

    def ofport_of_odp(self, odp_port: int) -> int:
        """``odp_port_to_ofp_port``: raises :class:`OfprotoError` for an unknown port."""
        port = self._by_odp.get(odp_port)
        if port is None:
            for vport, number in self._tunnel_vports.items():
                if number == odp_port:
                    raise OfprotoError(
                        f"bridge {self.name}: datapath port {odp_port} is the tunnel vport "
                        f"{vport}: its packets reach a tunnel port by their tunnel metadata "
                        f"(use Bridge.lookup_input or Bridge.flow_from_key)")
            known = ", ".join(str(p) for p in sorted(self._by_odp))
            raise OfprotoError(f"bridge {self.name} has no datapath port {odp_port} "
                               f"(known: {known})")
        return port.ofport

    @property
    def ports(self) -> list[BridgePort]:
        return sorted(self._by_ofport.values(), key=lambda p: p.ofport)

    def bundles(self) -> list[BridgePort]:
        """The ports in NORMAL's flood order (:attr:`bundle_order` first, then by ofport)."""
        ports = self.ports
        if not self.bundle_order:
            return ports
        rank = {ofport: i for i, ofport in enumerate(self.bundle_order)}
        return sorted(ports, key=lambda p: (rank.get(p.ofport, len(rank)), p.ofport))

    @property
    def port_map(self) -> dict[str, int]:
        """Port name -> ofport, for the flow parser."""
        return {p.name: p.ofport for p in self._by_ofport.values()}

    @property
    def dp_port_names(self) -> dict[int, str]:
        """Datapath port -> name, for printing datapath actions (tunnel vports by
        their shared name, ``vxlan_sys_4789`` ...)."""
        names = {p.odp_port: p.name for p in self._by_ofport.values()
                 if p.odp_port is not None and p.tunnel is None}
        names.update({number: vport for vport, number in self._tunnel_vports.items()})
        return names

    # -- flows ---------------------------------------------------------------

    def add_flow(self, flow: FlowMod | str) -> ClsRule:
        """Add (or replace, same match and priority) one flow (``add_flow`` in ofproto.c)."""
        fm = parse_flow(flow, self.port_map) if isinstance(flow, str) else flow
        table = 0 if fm.table is None else fm.table
        if not 0 <= table < TBL_INTERNAL:
            raise OfprotoError(f"bridge {self.name}: table {table} is not a flow table "
                               f"(valid: 0..{TBL_INTERNAL - 1})")
        cls = self.tables.get(table)
        if cls is None:
            cls = self.tables[table] = Classifier(self.prefixes)
        rule = ClsRule(fm.match, fm.priority, fm)
        cls.replace(rule)
        self.version += 1
        return rule

    def add_flows(self, flows: Iterable[FlowMod | str]) -> None:
        for flow in flows:
            self.add_flow(flow)

    def del_flows(self) -> None:
        """Delete every flow of every table (``ovs-ofctl del-flows``)."""
        self.tables.clear()
        self.version += 1

    def n_flows(self) -> int:
        return sum(len(c) for c in self.tables.values())

    def lookup(self, table: int, flow: OfFlow, wc=None) -> ClsRule | None:
        """The best rule of one table for ``flow``, tracking wildcards in ``wc``."""
        cls = self.tables.get(table)
        return None if cls is None else cls.lookup(flow, wc)


def connect_patch(a: Bridge, a_name: str, a_ofport: int, b: Bridge, b_name: str,
                  b_ofport: int) -> tuple[BridgePort, BridgePort]:
    """Join two bridges of one datapath by a pair of patch ports (``type=patch``,
    ``options:peer``). Patch ports exist only in OpenFlow: output to one
    continues translation in the peer bridge (``patch_port_output`` in
    ofproto-dpif-xlate.c)."""
    for br, name, ofport in ((a, a_name, a_ofport), (b, b_name, b_ofport)):
        if not 1 <= ofport < OFPP_MAX:
            raise OfprotoError(f"bridge {br.name}: patch port {name!r} ofport {ofport} is "
                               f"out of range: must be 1..{OFPP_MAX - 1}")
    pa = a._add(BridgePort(a_name, a_ofport, None, peer=b_name))
    pb = b._add(BridgePort(b_name, b_ofport, None, peer=a_name))
    if b not in a.patch_bridges:
        a.patch_bridges.append(b)
    if a not in b.patch_bridges:
        b.patch_bridges.append(a)
    return pa, pb
