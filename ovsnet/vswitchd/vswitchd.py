"""The simulated ovs-vswitchd of one host: OVSDB rows in, ofproto bridges and a datapath out.

Configuration flows one way, as in Open vSwitch: the topology YAML becomes an
OVSDB transaction (:mod:`ovsnet.ovsdb`), and :class:`Vswitchd` reads the
database back (:func:`~ovsnet.vswitchd.config.read_host_config`) the way
``vswitchd/bridge.c`` (``bridge_reconfigure``) does:

- one :class:`~ovsnet.ofproto.bridge.Bridge` per Bridge row, its local port
  being the Interface named like the bridge;
- each Interface becomes an OpenFlow port: its ``ofport_request`` if it has
  one (those are added first, as ``bridge_add_ports`` does), otherwise the
  next number of ``alloc_ofp_port`` (ofproto.c: counting up from 1, below
  32768, skipping numbers in use; OVS walks new ports in hash order, ovsnet by
  name); its datapath port is the one :mod:`ovsnet.topology.dpports`
  assigned (``external_ids:ovsnet-dp-port``); patch Interfaces whose
  ``options:peer`` name each other are joined; tunnel Interfaces become
  tunnel ports sharing their kind's vport;
- the Port columns ``vlan_mode``, ``tag``, ``trunks``, ``cvlans`` and
  ``other_config:qinq-ethtype``/``priority-tags`` configure NORMAL's bundles;
  Open_vSwitch ``other_config:vlan-limit`` and Bridge ``other_config``
  ``mac-aging-time``, ``mac-table-size`` and ``forward-bpdu`` the bridges;
- a ``standalone`` bridge (the default ``fail_mode``) without controllers gets
  the ``priority=0,actions=NORMAL`` flow that ``connmgr_flushed`` adds; a
  ``secure`` one starts empty;
- an Interface whose device cannot be opened (:func:`~ovsnet.vswitchd.netdev.open_error`:
  an unknown type, a patch port without ``peer``, a tunnel without
  ``remote_ip``) is left out, as ``iface_create`` leaves it out, and listed
  in :attr:`Vswitchd.iface_failures`.

A vswitchd attached to its database (:meth:`Vswitchd.from_hostdb`) writes
back what ovs-vswitchd owns -- ``ofport``, the Interface status columns,
``datapath_id``, ``cur_cfg`` -- after every reconfiguration
(:mod:`ovsnet.vswitchd.status`); :meth:`Vswitchd.bridge_run` is one pass of
ovs-vswitchd's database loop.

OpenFlow flows are not in OVSDB: :meth:`Vswitchd.from_hostdb` loads each
bridge's ``flows`` from the topology as ``ovs-ofctl add-flows`` would. All
bridges share one datapath (:func:`~ovsnet.datapath.host.datapath_from_ports`)
whose upcalls one :class:`~ovsnet.ofproto.upcall.XlateHandler` answers.
Every change made through the vswitchd (flows, port flags, a new database
state) is followed by revalidation of the installed megaflows.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ovsnet.datapath import odp
from ovsnet.datapath.datapath import BatchResult, Datapath
from ovsnet.datapath.host import datapath_from_ports
from ovsnet.datapath.tunnel import Resolver
from ovsnet.errors import OfprotoError
from ovsnet.ofproto.bridge import Bridge, BridgePort, connect_patch
from ovsnet.ofproto.flow_syntax import FlowMod, parse_flow
from ovsnet.ofproto.mac_learning import MacLearning
from ovsnet.ofproto.of_flow import OfFlow
from ovsnet.ofproto.ofp_fields import OFPP_LOCAL, OFPP_MAX, OFPP_NONE
from ovsnet.ofproto.upcall import RevalidationStats, XlateHandler
from ovsnet.ofproto.vlan import VlanConfig, vlan_limit_from_config
from ovsnet.ofproto.xlate import XlateResult, xlate
from ovsnet.topology.dpports import DATAPATH_NAMES, vport_name
from ovsnet.topology.model import TUNNEL_TYPES, Interface, Position
from ovsnet.vswitchd.config import (
    BridgeConfig,
    HostConfig,
    IfaceConfig,
    PortConfig,
    read_host_config,
    read_ofports,
)
from ovsnet.vswitchd.netdev import open_error
from ovsnet.vswitchd.status import ColumnChange, write_status

__all__ = ["FlowSource", "OfportAllocator", "Vswitchd", "allocate_ofports"]

#: ``alloc_ofp_port`` hands out numbers below this (the upper half is for controllers)
_AUTO_OFPORT_LIMIT = 32768
#: what ``connmgr_flushed`` installs on a standalone bridge without controllers
STANDALONE_FLOW = "priority=0,actions=NORMAL"

#: (flow text, where it was written or None)
FlowSource = tuple[str, Position | None]

#: an ODP flow starts with a key attribute: ``in_port(1),...``, ``recirc_id(0),...``
_ODP_FLOW_RE = re.compile(r"^\s*[a-z_0-9]+\(")


def is_odp_flow(text: str) -> bool:
    """Whether a trace FLOW is in ODP syntax (``in_port(1),eth(...)``) rather than OpenFlow's."""
    return _ODP_FLOW_RE.match(text) is not None


@dataclass
class OfportAllocator:
    """A bridge's ``alloc_ofp_port`` state: the last number handed out (the next
    search starts after it) and every number ever used (``ofport_get_usage``)."""

    last: int = 0
    used: set[int] = field(default_factory=set)


def allocate_ofports(bridge: BridgeConfig, current: Mapping[str, int] | None = None,
                     allocator: OfportAllocator | None = None) -> dict[str, int]:
    """Interface name -> OpenFlow port for the bridge's interfaces (the local one excluded).

    Requested numbers (``ofport_request``, 1..65279) come first, in name
    order; a request that is out of range or already taken is treated as no
    request, as ``ofport_install`` falls back to allocation. An interface in
    ``current`` (the numbers it has now) keeps its number if that is still
    free, as an existing ``struct ofport`` does. The others get
    ``alloc_ofp_port``'s number: the next one after the last handed out,
    below 32768, that was never used; only when every number was used, a
    free one that was (OVS takes the least recently used, and forgets a
    deleted port's number after an hour). ``allocator`` carries that state
    from one call to the next and is updated.
    """
    state = allocator if allocator is not None else OfportAllocator()
    out: dict[str, int] = {}
    taken: set[int] = set()
    ifaces = [i for p in bridge.ports for i in p.interfaces if i.name != bridge.name]
    for iface in ifaces:
        req = iface.ofport_request
        if req is not None and 1 <= req < OFPP_MAX and req not in taken:
            out[iface.name] = req
            taken.add(req)
    for iface in ifaces:
        have = (current or {}).get(iface.name)
        if iface.name not in out and have is not None and have not in taken:
            out[iface.name] = have
            taken.add(have)
    for iface in ifaces:
        if iface.name in out:
            continue
        for avoid in (taken | state.used, taken):
            for _ in range(_AUTO_OFPORT_LIMIT):
                state.last = state.last + 1 if state.last + 1 < _AUTO_OFPORT_LIMIT else 1
                if state.last not in avoid:
                    break
            else:
                continue
            break
        else:
            raise OfprotoError(f"bridge {bridge.name}: no free OpenFlow port number for "
                               f"{iface.name}")
        out[iface.name] = state.last
        taken.add(state.last)
    state.used.update(out.values())
    return out


def _dp_ports(config: HostConfig, datapath: str,
              current: Mapping[str, int] | None = None) -> dict[str, int]:
    """vport name -> datapath port: recorded numbers first, then the number a vport
    already has (a datapath port keeps its number while it exists, as in
    ``dpif_port_add``), then the lowest free ones."""
    numbers: dict[str, int] = {DATAPATH_NAMES.get(datapath, "ovs-system"): 0}
    pending: list[str] = []
    for br in config.bridges:
        for port in br.ports:
            for iface in port.interfaces:
                name = vport_name(Interface(iface.name, iface.type, iface.options))
                if name is None or name in numbers:
                    continue
                if iface.dp_port is not None and iface.dp_port not in numbers.values():
                    numbers[name] = iface.dp_port
                elif name not in pending:
                    pending.append(name)
    taken = set(numbers.values())
    for name in pending:
        have = (current or {}).get(name)
        if name not in numbers and have is not None and have not in taken:
            numbers[name] = have
            taken.add(have)
    no = 1
    for name in pending:
        if name in numbers:
            continue
        while no in taken:
            no += 1
        numbers[name] = no
        taken.add(no)
    return numbers


class Vswitchd:
    """One host's ovs-vswitchd: :attr:`bridges` (by name), the shared :attr:`datapath`
    and its upcall :attr:`handler`.

    Build it with :meth:`from_hostdb` (a host of a running
    :class:`~ovsnet.ovsdb.deploy.Deployment`), :meth:`from_idl` or directly
    from a :class:`HostConfig`. ``flows`` maps a bridge name to its OpenFlow
    flows (text, or ``(text, Position)`` pairs for error messages). A flow
    ovsnet cannot parse raises :class:`~ovsnet.errors.OfprotoError` unless
    ``strict_flows`` is false; then it is skipped and listed in
    :attr:`warnings`. ``clock`` returns seconds (MAC learning), ``dp_clock``
    milliseconds (the datapath's flow timestamps). ``topology_host`` (a
    :class:`~ovsnet.topology.model.Host`) tells the status columns what the
    host's NICs and underlay are. :attr:`api` is the
    :class:`~ovsnet.ovsdb.api.OvsdbApi` the status is written through (set by
    :meth:`from_hostdb`; None: nothing is written). ``ofport_hints`` maps
    Interface names to the ``ofport`` the database already holds: a new
    OpenFlow port without a usable ``ofport_request`` takes that number if
    it is free (``iface_pick_ofport``); :meth:`from_idl` and :meth:`reload`
    read them from the database.
    """

    def __init__(self, config: HostConfig, *, host_name: str = "host",
                 flows: Mapping[str, Sequence[str | FlowSource]] | None = None,
                 strict_flows: bool = True,
                 clock: Callable[[], float] | None = None,
                 dp_clock: Callable[[], int] | None = None,
                 implementation: str | None = None,
                 resolver: Resolver | None = None,
                 underlay_ip: str | None = None,
                 topology_host: Any = None,
                 ofport_hints: Mapping[str, int] | None = None):
        self.host_name = host_name
        self.ofport_hints: dict[str, int] = dict(ofport_hints or {})
        self.topology_host = topology_host
        self.api: Any = None
        #: held by every :meth:`bridge_run` (a :class:`~ovsnet.vswitchd.loop.DatabaseLoop`
        #: runs them on its own thread)
        self.lock = threading.RLock()
        #: per bridge: the MTU state of its internal ports (:mod:`ovsnet.vswitchd.status`)
        self.mtu_state: dict[str, Any] = {}
        #: Interface name -> the error ovs-vswitchd records for it (None: only logged)
        self.iface_failures: dict[str, str | None] = {}
        self.clock = clock or (lambda: int(time.monotonic()))
        self.strict_flows = strict_flows
        self.warnings: list[str] = []
        self.config = config
        self.datapath_kind = ("netdev" if any(b.datapath_type == "netdev" for b in config.bridges)
                              else "kernel")
        config = self._usable = self._without_failures(config)
        self.bridges: dict[str, Bridge] = {}
        #: per bridge, per interface: what its OpenFlow port was made from
        self._specs: dict[str, dict[str, tuple]] = {}
        self._allocators: dict[str, OfportAllocator] = {}
        self._dp_numbers = _dp_ports(config, self.datapath_kind)
        self._apply(config, None, flows or {})
        self.datapath: Datapath = datapath_from_ports(
            host_name, self.datapath_kind, self._vport_table(config),
            implementation=implementation, clock=dp_clock, resolver=resolver,
            underlay_ip=underlay_ip)
        self.handler = XlateHandler(list(self.bridges.values()) or [Bridge("(none)")],
                                    clock=self.clock)
        self.datapath.handler = self.handler

    # -- construction ------------------------------------------------------------

    @classmethod
    def from_idl(cls, idl, *, host=None, strict_flows: bool = True, **kwargs: Any) -> Vswitchd:
        """The vswitchd of the database behind an IDL replica; ``host`` (a
        :class:`~ovsnet.topology.model.Host`) supplies the OpenFlow flows,
        the name and the underlay address."""
        config = read_host_config(idl)
        kwargs.setdefault("ofport_hints", read_ofports(idl))
        if host is not None:
            kwargs.setdefault("host_name", host.name)
            kwargs.setdefault("topology_host", host)
            kwargs.setdefault("flows", {
                name: list(zip(br.flows, br.flows_pos or [None] * len(br.flows), strict=False))
                for name, br in host.bridges.items()})
            if host.underlay is not None:
                kwargs.setdefault("underlay_ip", str(host.underlay.ip.ip))
        return cls(config, strict_flows=strict_flows, **kwargs)

    @classmethod
    def from_hostdb(cls, hostdb, **kwargs: Any) -> Vswitchd:
        """The vswitchd of one host of a :class:`~ovsnet.ovsdb.deploy.Deployment`, attached
        to the host's database: it has written its status there when this returns."""
        hostdb.api.connection.run()
        vs = cls.from_idl(hostdb.api.idl, host=hostdb.host, **kwargs)
        vs.api = hostdb.api
        vs.write_status()
        return vs

    def _without_failures(self, config: HostConfig) -> HostConfig:
        """``config`` without the Interfaces whose devices do not open (and Ports left
        with none); :attr:`iface_failures` lists them."""
        self.iface_failures = {}
        bridges = []
        for bc in config.bridges:
            ports = []
            for port in bc.ports:
                ifaces = []
                for iface in port.interfaces:
                    failed, error = open_error(iface.name, iface.type, iface.options)
                    if failed:
                        self.iface_failures[iface.name] = error
                        self._warn(f"bridge {bc.name}: interface {iface.name} not added"
                                   + (f": {error.splitlines()[-1]}" if error else
                                      ": the name is reserved"))
                    else:
                        ifaces.append(iface)
                if ifaces:
                    ports.append(replace(port, interfaces=tuple(ifaces)))
            bridges.append(replace(bc, ports=tuple(ports)))
        return replace(config, bridges=tuple(bridges))

    @property
    def applied_config(self) -> HostConfig:
        """:attr:`config` without the Interfaces that failed: what the bridges are made of."""
        return self._usable

    def ofport_of(self, bridge: str, iface: str) -> int:
        """The OpenFlow port of Interface ``iface`` of ``bridge``: ``OFPP_LOCAL`` for the
        bridge's own, -1 for one that failed (``iface_set_ofport`` with ``OFPP_NONE``)."""
        if iface in self.iface_failures:
            return -1
        if iface == bridge:
            return OFPP_LOCAL
        spec = self._specs.get(bridge, {}).get(iface)
        if spec is None:
            raise OfprotoError(f"bridge {bridge} has no interface {iface!r}")
        return spec[1]

    def dp_port_of(self, iface: IfaceConfig) -> int | None:
        """The datapath port behind an Interface (a tunnel's shared vport), or None
        (patch ports, failed Interfaces)."""
        name = vport_name(Interface(iface.name, iface.type, iface.options))
        return None if name is None else self._dp_numbers.get(name)

    def _vport_table(self, config: HostConfig) -> dict[int, tuple[str, str, dict[str, str]]]:
        ports: dict[int, tuple[str, str, dict[str, str]]] = {}
        for br in config.bridges:
            for port in br.ports:
                for iface in port.interfaces:
                    name = vport_name(Interface(iface.name, iface.type, iface.options))
                    if name is None:
                        continue
                    no = self._dp_numbers[name]
                    if no not in ports:
                        kind = "internal" if iface.name == br.name and not iface.type else iface.type
                        ports[no] = (name, kind, iface.options)
        return ports

    def _apply(self, config: HostConfig, old_config: HostConfig | None,
               flows: Mapping[str, Sequence[str | FlowSource]]) -> None:
        """Make :attr:`bridges` what ``config`` describes, editing existing bridges in
        place (``bridge_reconfigure``): ports whose Interface changed are deleted
        and added again, new ones added, VLAN settings and bridge settings
        applied. A new bridge loads its ``flows``."""
        vlan_limit = vlan_limit_from_config(config.other_config)
        old_modes = {} if old_config is None else {b.name: b.fail_mode
                                                   for b in old_config.bridges}
        wanted = {bc.name for bc in config.bridges}
        for name in [n for n in self.bridges if n not in wanted]:
            del self.bridges[name]
            self._specs.pop(name, None)
        patches: list[tuple[Bridge, str, int, str]] = []
        new_bridges: list[Bridge] = []
        for bc in config.bridges:
            br = self.bridges.get(bc.name)
            if br is None:
                br = Bridge(bc.name, local_odp_port=self._dp_numbers.get(bc.name, 0))
                self.bridges[bc.name] = br
                new_bridges.append(br)
            br.patch_bridges[:] = [b for b in br.patch_bridges if b in self.bridges.values()]
            oc = bc.other_config
            table = MacLearning.from_other_config(oc)
            br.mac_learning.set_idle_time(table.idle_time)
            br.mac_learning.set_max_entries(table.max_entries)
            br.forward_bpdu = oc.get("forward-bpdu", "false") == "true"
            br.vlan_limit = vlan_limit
            self._apply_ports(bc, br, patches)
            # connmgr adds the fail-open flow when a bridge becomes standalone, not again
            # on every reconfiguration (a del-flows'd standalone bridge stays empty)
            if bc.fail_mode != "secure" and old_modes.get(bc.name, "secure") == "secure":
                br.add_flow(STANDALONE_FLOW)
        self._connect_patches(patches)
        for br in new_bridges:  # after every port exists, so flows may name them
            self._load_flows(br, flows.get(br.name, ()))

    def _apply_ports(self, bc: BridgeConfig, br: Bridge,
                     patches: list[tuple[Bridge, str, int, str]]) -> None:
        current = {**self.ofport_hints,
                   **{p.name: p.ofport for p in br.ports if p.name != bc.name}}
        ofports = allocate_ofports(bc, current,
                                   self._allocators.setdefault(bc.name, OfportAllocator()))
        specs: dict[str, tuple] = {}
        ports_of: dict[str, PortConfig] = {}
        for port in bc.ports:
            if len(port.interfaces) > 1:
                self._warn(f"bridge {bc.name}: bond {port.name}: bonds are not "
                           "modelled; its interfaces are independent ports")
            for iface in port.interfaces:
                if iface.name == bc.name:
                    continue
                ofport = ofports[iface.name]
                vport = vport_name(Interface(iface.name, iface.type, iface.options))
                odp = self._dp_numbers[vport] if vport is not None else None
                if iface.type == "patch":
                    spec: tuple = ("patch", ofport, iface.options.get("peer", ""))
                elif iface.type in TUNNEL_TYPES:
                    spec = ("tunnel", ofport, odp, iface.type, tuple(sorted(iface.options.items())))
                else:
                    spec = ("port", ofport, odp)
                specs[iface.name] = spec
                ports_of[iface.name] = port
        old = self._specs.get(bc.name, {})
        for name, spec in old.items():
            if specs.get(name) != spec and br.port_by_name(name) is not None:
                self._del_port(br, name)
        for name, spec in specs.items():
            kind, ofport = spec[0], spec[1]
            if kind == "patch":
                patches.append((br, name, ofport, spec[2]))
            elif br.port_by_name(name) is None:
                if kind == "tunnel":
                    br.add_tunnel_port(name, ofport, spec[3], dict(spec[4]), odp_port=spec[2])
                else:
                    br.add_port(name, ofport, spec[2])
            port = ports_of[name]
            vlan = (VlanConfig.configure(vlan_mode=port.vlan_mode, tag=port.tag,
                                         trunks=port.trunks, cvlans=port.cvlans,
                                         other_config=port.other_config, port=port.name)
                    if port.has_vlan_config else VlanConfig())
            if br.port_by_name(name) is not None and br.vlan_config(ofport) != vlan:
                br.set_vlan_config(name, vlan)
                br.mac_learning.flush_port(ofport)  # bundle_set's need_flush
        self._specs[bc.name] = specs

    @staticmethod
    def _del_port(br: Bridge, name: str) -> None:
        """Delete a port and forget the MAC addresses learned on it; a patch port's
        peer goes too (it is joined again when both ends are wanted)."""
        port = br.port_by_name(name)
        peer = br.peer_of(port) if port is not None else None
        old = br.del_port(name)
        br.mac_learning.flush_port(old.ofport)  # bundle_destroy -> bundle_flush_macs
        if peer is not None:
            peer[0].del_port(peer[1].name)
            peer[0].mac_learning.flush_port(peer[1].ofport)

    def _connect_patches(self, patches: list[tuple[Bridge, str, int, str]]) -> None:
        """Join the wanted patch ports: pairs whose ``options:peer`` name each other.

        A pair already joined between these bridges stays as it is; an end
        that changed is deleted (with its peer) and the pair joined again.
        """
        by_name = {name: (br, name, ofport, peer) for br, name, ofport, peer in patches}
        done: set[str] = set()
        for br, name, ofport, peer in patches:
            if name in done:
                continue
            other = by_name.get(peer)
            mine = br.port_by_name(name)
            if other is not None and other[3] == name and other[0] is not br:
                done.update((name, peer))
                joined = mine is not None and br.peer_of(mine)
                if joined and joined[0] is other[0] and joined[1].ofport == other[2] \
                        and mine.ofport == ofport:
                    continue
                for b, n in ((br, name), (other[0], peer)):
                    if b.port_by_name(n) is not None:
                        self._del_port(b, n)
                connect_patch(br, name, ofport, other[0], peer, other[2])
            else:
                # ovs-vswitchd creates the port; output to it goes nowhere
                done.add(name)
                self._warn(f"bridge {br.name}: patch port {name}: peer {peer!r} is "
                                     "not a patch port pointing back")
                if mine is not None:
                    if mine.ofport == ofport and br.peer_of(mine) is None:
                        continue
                    self._del_port(br, name)
                br._add(BridgePort(name, ofport, None, peer=peer or None))

    def _warn(self, message: str) -> None:
        """Note what ovs-vswitchd would log (once per message)."""
        if message not in self.warnings:
            self.warnings.append(message)

    def _load_flows(self, bridge: Bridge, flows: Iterable[str | FlowSource]) -> None:
        for item in flows:
            text, pos = (item, None) if isinstance(item, str) else item
            try:
                bridge.add_flow(text)
            except OfprotoError as e:
                where = f"{pos}: " if pos is not None else ""
                message = f"{where}bridge {bridge.name}: flow not loaded: {e}"
                if self.strict_flows:
                    raise OfprotoError(message) from None
                self._warn(message.splitlines()[0])

    # -- changes (each followed by revalidation) ------------------------------------

    def bridge(self, name: str) -> Bridge:
        try:
            return self.bridges[name]
        except KeyError:
            known = ", ".join(self.bridges) or "none"
            raise OfprotoError(f"no bridge {name!r} on host {self.host_name} "
                               f"(bridges: {known})") from None

    def add_flow(self, bridge: str, flow: FlowMod | str) -> RevalidationStats:
        """``ovs-ofctl add-flow BRIDGE FLOW``, then revalidation."""
        self.bridge(bridge).add_flow(flow)
        return self.revalidate()

    def add_flows(self, bridge: str, flows: Iterable[FlowMod | str]) -> RevalidationStats:
        self.bridge(bridge).add_flows(flows)
        return self.revalidate()

    def del_flows(self, bridge: str) -> RevalidationStats:
        """``ovs-ofctl del-flows BRIDGE``, then revalidation."""
        self.bridge(bridge).del_flows()
        return self.revalidate()

    def mod_port(self, bridge: str, port: int | str, action: str) -> RevalidationStats:
        """``ovs-ofctl mod-port BRIDGE PORT ACTION``, then revalidation."""
        self.bridge(bridge).mod_port(port, action)
        return self.revalidate()

    def reconfigure(self, config: HostConfig) -> RevalidationStats:
        """Apply a new database state (``bridge_reconfigure``), then revalidate.

        Bridges are edited in place: a port whose Interface changed (type,
        options, OpenFlow or datapath number) is deleted and added again, new
        ports are added and removed ones deleted, VLAN and bridge settings are
        applied; OpenFlow flows and MAC tables stay. A new bridge gets the
        standalone NORMAL flow or nothing. Datapath ports come and go with
        their interfaces.
        """
        self.config = config
        old_config, config = self._usable, self._without_failures(config)
        self._usable = config
        self._dp_numbers = _dp_ports(config, self.datapath_kind, self._dp_numbers)
        self._apply(config, old_config, {})
        wanted = self._vport_table(config)
        dp = self.datapath
        for no, port in list(dp.ports.items()):
            if no != 0 and (no not in wanted or wanted[no][0] != port.name):
                dp.del_port(no)
        if any(no not in dp.ports for no in wanted if no):
            fresh = datapath_from_ports(self.host_name, self.datapath_kind, wanted)
            for no, port in fresh.ports.items():
                if no and no not in dp.ports:
                    dp.add_port(port.name, port.type, port_no=no, vport=port.vport)
        self.handler.set_bridges(list(self.bridges.values()) or [Bridge("(none)")])
        return self.revalidate()

    def reload(self, idl) -> RevalidationStats:
        """Read the database behind ``idl`` again and apply it (:meth:`reconfigure`);
        a vswitchd attached to that database then writes its status."""
        self.ofport_hints = read_ofports(idl)
        stats = self.reconfigure(read_host_config(idl))
        if self.api is not None and self.api.idl is idl:
            self.write_status()
        return stats

    # -- the database loop -------------------------------------------------------------

    def _attached_api(self):
        if self.api is None:
            raise OfprotoError(f"the vswitchd of host {self.host_name} is not attached to a "
                               "database (build it with Vswitchd.from_hostdb, or set .api)")
        return self.api

    def write_status(self) -> list[ColumnChange]:
        """Write what ovs-vswitchd owns (:func:`~ovsnet.vswitchd.status.write_status`)
        through :attr:`api`: one transaction, or none when nothing differs."""
        return write_status(self, self._attached_api())

    def bridge_run(self) -> list[ColumnChange]:
        """One pass of ovs-vswitchd's database loop (``bridge_run``): take what the server
        sent, reconfigure if the configuration (or ``next_cfg``) changed, then write the
        status. Returns the columns written (none when nothing changed)."""
        with self.lock:
            api = self._attached_api()
            api.connection.run()
            config = read_host_config(api.idl)
            if config != self.config:
                self.ofport_hints = read_ofports(api.idl)
                self.reconfigure(config)
            return write_status(self, api)

    # -- packets and housekeeping ----------------------------------------------------

    def receive_frames(self, port: int | str, frames: Iterable[bytes], *,
                       deliver: bool = True) -> BatchResult:
        """Frames arriving on a datapath port, then one main-loop pass (:meth:`run`)."""
        result = self.datapath.receive_frames(port, frames, deliver=deliver)
        self.run()
        return result

    def run(self, now: float | None = None) -> RevalidationStats | None:
        """One main-loop pass: MAC expiry, and revalidation if anything changed."""
        return self.handler.run(self.datapath, now)

    def revalidate(self) -> RevalidationStats:
        """Revalidate every installed megaflow now."""
        return self.handler.revalidate(self.datapath)

    def port_names(self) -> dict[int, str]:
        """Datapath port number -> name, the local ports included."""
        return self.datapath.port_names()

    # -- ofproto/trace -------------------------------------------------------------

    def trace_flow(self, bridge: str, text: str) -> tuple[Bridge, OfFlow]:
        """The bridge a trace FLOW enters and its flow (``parse_flow_and_packet``).

        ``text`` is OpenFlow-style as ``ofproto/trace`` takes it
        (``in_port=p1,tcp,nw_dst=10.0.0.1``; ports by name or number, fields
        not given are zero, no ``in_port`` is ``NONE``) and enters ``bridge``;
        or an ODP flow (``in_port(1),eth(...),...``), which enters the bridge
        owning its datapath input port (a tunnel port found by its metadata).
        Bad syntax raises :class:`~ovsnet.ofproto.ofp_fields.FlowSyntaxError`
        or :class:`~ovsnet.errors.DatapathError` pointing at the token.
        """
        br = self.bridge(bridge)
        if is_odp_flow(text):
            key, _mask = odp.parse_flow(text, ports=self.port_names())
            return self.handler.flow_of_key(key)
        fm = parse_flow(text + ",actions=drop", br.port_map)
        flow = OfFlow.from_match(fm.match)
        if not fm.match.get("in_port")[1]:
            flow.set("in_port", OFPP_NONE)
        return br, flow

    def trace(self, bridge: str, text: str, *, generate: bool = False) -> tuple[Bridge, XlateResult]:
        """``ofproto/trace BRIDGE FLOW [-generate]``: the bridge entered and the translation
        (with its trace; :func:`ovsnet.ofproto.trace.trace_text` prints it). With
        ``generate`` the translation has side effects (MAC learning, learn)."""
        entry, flow = self.trace_flow(bridge, text)
        return entry, xlate(entry, flow, generate=generate, now=self.clock(),
                            datapath_type=self.datapath.type)
