"""A simulated OpenFlow bridge: its ports and its flow tables.

Models what Open vSwitch 3.1's ofproto layer keeps per bridge and what
translation (:mod:`ovsnet.ofproto.xlate`) reads: the ports with their
OpenFlow port number (``ofport``), datapath port number (``odp_port``) and
name (``struct ofport_dpif``, ``ofp_port_to_odp_port``,
``odp_port_to_ofp_port`` in ofproto/ofproto-dpif.c), and the OpenFlow tables,
one :class:`~ovsnet.ofproto.classifier.Classifier` each (``struct oftable``).
The bridge's internal port is ``LOCAL`` (OpenFlow port 0xfffe).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from ovsnet.errors import OfprotoError
from ovsnet.ofproto.classifier import DEFAULT_PREFIXES, Classifier, ClsRule
from ovsnet.ofproto.flow_syntax import FlowMod, parse_flow
from ovsnet.ofproto.mac_learning import MacLearning
from ovsnet.ofproto.of_flow import OfFlow
from ovsnet.ofproto.ofp_fields import OFPP_LOCAL, OFPP_MAX
from ovsnet.ofproto.vlan import DEFAULT_VLAN_LIMIT, VlanConfig, effective_vlan_limit

__all__ = ["N_TABLES", "TBL_INTERNAL", "Bridge", "BridgePort", "connect_patch"]

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
    :func:`connect_patch`.
    """

    name: str
    ofport: int
    odp_port: int | None
    no_flood: bool = False
    no_fwd: bool = False
    peer: str | None = None


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
        self._add(BridgePort(name, OFPP_LOCAL, local_odp_port))

    # -- ports ---------------------------------------------------------------

    def add_port(self, name: str, ofport: int, odp_port: int) -> BridgePort:
        """Add a port; names, OpenFlow and datapath numbers must be unused."""
        if not 1 <= ofport < OFPP_MAX:
            raise OfprotoError(f"bridge {self.name}: port {name!r} ofport {ofport} is out of "
                               f"range: must be 1..{OFPP_MAX - 1}")
        return self._add(BridgePort(name, ofport, odp_port))

    def _add(self, port: BridgePort) -> BridgePort:
        for what, index, key in (("name", self._by_name, port.name),
                                 ("ofport", self._by_ofport, port.ofport),
                                 ("odp_port", self._by_odp, port.odp_port)):
            if key is not None and key in index:
                raise OfprotoError(f"bridge {self.name}: {what} {key!r} of port "
                                   f"{port.name!r} is already used by port "
                                   f"{index[key].name!r}")
        self._by_name[port.name] = port
        self._by_ofport[port.ofport] = port
        if port.odp_port is not None:
            self._by_odp[port.odp_port] = port
        self.version += 1
        return port

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
        if effective_vlan_limit(self.vlan_limit) < 2 and out.vlan1_tci & 0x1000:
            out.set("dl_type", out.vlan1_tpid or 0x8100)
            out.set("vlan1_tpid", 0)
            out.set("vlan1_tci", 0)
        return out

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
        if new.odp_port is not None:
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
        """Datapath port -> name, for printing datapath actions."""
        return {p.odp_port: p.name for p in self._by_ofport.values() if p.odp_port is not None}

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
