"""What ovs-vswitchd writes back to its database: ``ofport``, status columns, ``cur_cfg``.

OVSDB clients learn what ovs-vswitchd did from the columns it owns.
``vswitchd/bridge.c`` writes them in two places:

- ``bridge_run`` -> ``bridge_reconfigure``: each Interface's ``ofport``
  (``iface_set_ofport``; -1 and the ``error`` text for one that could not be
  created, ``iface_clear_db_record``), each Bridge's ``datapath_id``
  (``bridge_configure_datapath_id``), then ``Open_vSwitch:cur_cfg`` =
  ``next_cfg`` and the ``datapath_types``/``iface_types`` it supports
  (``discover_types``), all in one transaction. ``ovs-vsctl`` (without
  ``--no-wait``) waits for ``cur_cfg`` to reach the ``next_cfg`` it set;
- ``run_status_update``: per Interface what the device reports
  (``iface_refresh_netdev_status``: ``admin_state``, ``link_state``,
  ``link_resets``, ``link_speed``, ``duplex``, ``mtu``, ``mac_in_use``,
  ``ifindex``, ``status``), per Bridge ``datapath_version``
  (``br_refresh_datapath_info``), and ``dpdk_initialized``/``dpdk_version``
  (``dpdk_status``; a build without DPDK writes false and ``none``, which is
  what a kernel host gets; a netdev host stands for a DPDK build).

:func:`write_status` computes all of them from a :class:`~ovsnet.vswitchd.Vswitchd`
and writes the ones that differ from the database in one transaction of
the project's OVSDB client, or none when nothing differs. Nothing else is
touched: the configuration columns belong to the clients.
``ovs_version``, ``db_version``, ``system_type`` and ``system_version`` are
not written: ovs-vswitchd does not replicate them (``bridge_init`` omits
them); the init script (``ovs-ctl``) sets them with ``ovs-vsctl``.

The device facts come from :mod:`ovsnet.vswitchd.netdev`: MAC addresses of
NICs from the topology, of VM TAPs from ``external_ids:attached-mac`` (libvirt
gives the TAP the guest's address with the first byte ``fe``), of the rest
derived from the row's UUID; MTUs from ``mtu_request``, the topology's NIC or
1500, internal ports the least MTU of their bridge's other ports
(``ofproto.c`` ``find_min_mtu``); ``ifindex`` a stable stand-in (2 + the
datapath port number) for devices the kernel would number.

:func:`wait_cur_cfg` is ``ovs-vsctl``'s wait: it returns once ``cur_cfg``
has caught up with ``next_cfg``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ovsnet.errors import OvsdbError
from ovsnet.ovsdb.commands import Command
from ovsnet.ovsdb.connection import rpc
from ovsnet.ovsdb.rows import set_column
from ovsnet.topology.model import TUNNEL_TYPES
from ovsnet.vswitchd.config import BridgeConfig, IfaceConfig
from ovsnet.vswitchd.netdev import (
    DPIF_TYPES,
    IFACE_TYPES,
    bridge_mac,
    datapath_id,
    eth_addr_from_string,
    format_mac,
    uuid_mac,
)

if TYPE_CHECKING:
    from ovsnet.vswitchd.vswitchd import Vswitchd

__all__ = ["OWNED_COLUMNS", "ColumnChange", "WriteStatusCommand", "daemon_status",
           "status_changes", "wait_cur_cfg", "write_status"]

#: the columns ovs-vswitchd writes (of those ovsnet models), by table
OWNED_COLUMNS = {
    "Open_vSwitch": ("cur_cfg", "datapath_types", "iface_types", "dpdk_initialized",
                     "dpdk_version"),
    "Bridge": ("datapath_id", "datapath_version"),
    "Interface": ("ofport", "error", "admin_state", "link_state", "link_resets", "link_speed",
                  "duplex", "mtu", "mac_in_use", "ifindex", "status", "statistics"),
}

#: the Ethernet MTU ovs-vswitchd falls back to (``ETH_PAYLOAD_MAX``)
_DEFAULT_MTU = 1500
#: what a TUN/TAP device reports through ethtool (``netdev_linux_get_status``, features)
_TAP_STATUS = {"driver_name": "tun", "driver_version": "1.6", "firmware_version": ""}
_TAP_BPS = 10_000_000_000
#: ``rte_version()`` of the DPDK release OVS 3.1 is built against (its NEWS)
_DPDK_VERSION = "DPDK 22.11.1"
#: types whose device has no MTU (``netdev_get_mtu`` fails: netdev-vport has no ``get_mtu``)
_NO_MTU = ("patch", *TUNNEL_TYPES)
_INTERNAL = ("internal", "dummy-internal")
_NICS = ("", "system", "dpdk")


@dataclass
class _MtuState:
    """One bridge's ofproto ``min_mtu`` (``INT_MAX`` when created) and the MTUs its
    overridden ports were given."""

    bridge: Any
    min_mtu: int = 2**31 - 1
    mtus: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ColumnChange:
    """One column written: the row (table and name, ``.`` for Open_vSwitch), old and new
    value in the IDL's Python form."""

    table: str
    record: str
    column: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.table} {self.record} {self.column}: {self.old!r} -> {self.new!r}"


def _rows_by_name(idl, table: str) -> dict[str, Any]:
    return {row.name: row for row in idl.tables[table].rows.values()}


def _linux_device(iface_type: str, netdev_host: bool) -> bool:
    """Whether the Interface is a Linux network device the kernel gives an ifindex."""
    if iface_type in ("", "system", "internal", "tap"):
        return True
    return iface_type in TUNNEL_TYPES and not netdev_host


class _Devices:
    """The device facts of one bridge's Interfaces (see the module docstring)."""

    def __init__(self, vs: Vswitchd, bc: BridgeConfig, usable: BridgeConfig,
                 iface_rows: dict[str, Any], port_rows: dict[str, Any], bridge_row: Any):
        host = vs.topology_host
        self.vs = vs
        self.bridge = bc.name
        self.datapath_type = bc.datapath_type
        self.nics = dict(host.nics) if host is not None else {}
        self.rows = iface_rows
        self.netdev_host = vs.datapath_kind == "netdev"
        # find_local_hw_addr: each port's Port.mac, else the address of its interface
        # first by name; the bridge's own port does not count
        port_macs: list[int | None] = []
        for port in usable.ports:
            prow = port_rows.get(port.name)
            requested = eth_addr_from_string(_opt(prow.mac)) if prow is not None else None
            if requested is not None:
                port_macs.append(requested)
                continue
            first = min(port.interfaces, key=lambda i: i.name)
            if first.name != bc.name:
                port_macs.append(self.device_mac(first))
        self.bridge_ea = bridge_mac(bc.other_config.get("hwaddr"), bridge_row.uuid, port_macs)
        self.dpid = datapath_id(bc.other_config.get("datapath-id"), self.bridge_ea)
        self.overridden_mtus = self._update_mtus(vs, usable)

    def _update_mtus(self, vs: Vswitchd, usable: BridgeConfig) -> dict[str, int]:
        """The MTUs of the bridge's internal ports without ``mtu_request``, as ofproto's
        ``update_mtu`` leaves them: a new one keeps its 1500 unless that exceeds the
        bridge's ``min_mtu``; when ``min_mtu`` (the least MTU of the other ports,
        ``find_min_mtu``) changes, every one of them takes it. That depends on
        history, so the vswitchd keeps each bridge's state (:attr:`Vswitchd.mtu_state`)."""
        bridge = vs.bridges[self.bridge]
        state = vs.mtu_state.get(self.bridge)
        if state is None or state.bridge is not bridge:
            state = vs.mtu_state[self.bridge] = _MtuState(bridge)
        ifaces = [i for p in usable.ports for i in p.interfaces if i.type not in _NO_MTU]
        overridden = {i.name for i in ifaces if self._mtu_overridden(i)}
        for name in [n for n in state.mtus if n not in overridden]:
            del state.mtus[name]
        for name in sorted(overridden - state.mtus.keys()):
            state.mtus[name] = min(_DEFAULT_MTU, state.min_mtu)
        others = [self.own_mtu(i) for i in ifaces if i.name not in overridden]
        min_mtu = min((m for m in others if m is not None), default=_DEFAULT_MTU)
        if min_mtu != state.min_mtu:
            state.min_mtu = min_mtu
            state.mtus = dict.fromkeys(state.mtus, min_mtu)
        return state.mtus

    def device_mac(self, iface: IfaceConfig) -> int:
        """The device's Ethernet address (the bridge's own port: the bridge's address)."""
        if iface.name == self.bridge:
            return self.bridge_ea
        row = self.rows.get(iface.name)
        if iface.type in _INTERNAL and row is not None:
            mac = eth_addr_from_string(_opt(row.mac))
            if mac is not None and mac != 0 and not (mac >> 40) & 1:
                return mac  # iface_set_mac
        if iface.type == "tap" and row is not None:
            guest = eth_addr_from_string(dict(row.external_ids).get("attached-mac"))
            if guest is not None:
                return (0xFE << 40) | (guest & 0xFF_FFFF_FFFF)
        nic = self.nics.get(iface.name)
        if iface.type in _NICS and nic is not None and nic.mac:
            mac = eth_addr_from_string(nic.mac)
            if mac is not None:
                return mac
        return uuid_mac(row.uuid) if row is not None else 0

    def _mtu_requested(self, iface: IfaceConfig) -> int | None:
        row = self.rows.get(iface.name)
        return _opt(row.mtu_request) if row is not None else None

    def _mtu_overridden(self, iface: IfaceConfig) -> bool:
        """``ofport_is_mtu_overridden``: internal and patch ports without ``mtu_request``."""
        return ((iface.type in _INTERNAL or iface.name == self.bridge or iface.type == "patch")
                and self._mtu_requested(iface) is None)

    def own_mtu(self, iface: IfaceConfig) -> int | None:
        if iface.type in _NO_MTU:
            return None
        requested = self._mtu_requested(iface)
        if requested is not None:
            return requested
        nic = self.nics.get(iface.name)
        if iface.type in _NICS and nic is not None:
            return nic.mtu
        return _DEFAULT_MTU

    def mtu(self, iface: IfaceConfig) -> int | None:
        if iface.type in _NO_MTU:
            return None
        return self.overridden_mtus.get(iface.name) or self.own_mtu(iface)

    def iface_status(self, iface: IfaceConfig) -> dict[str, Any]:
        """``iface_set_ofport`` and ``iface_refresh_netdev_status`` for a created Interface."""
        kind = iface.type or "system"
        nic = self.nics.get(iface.name)
        speed = None
        if kind == "tap":
            speed = _TAP_BPS
        elif kind in _NICS and nic is not None and nic.speed_gbps:
            speed = int(nic.speed_gbps * 1_000_000_000)
        status: dict[str, str] = {}
        if kind == "tap":
            status = dict(_TAP_STATUS)
        elif kind in TUNNEL_TYPES:
            host = self.vs.topology_host
            remote = iface.options.get("remote_ip")
            if host is not None and host.underlay is not None and remote not in (None, "flow"):
                status = {"tunnel_egress_iface": host.underlay.nic,
                          "tunnel_egress_iface_carrier": "up"}
        dp_port = self.vs.dp_port_of(iface)
        ifindex = (2 + dp_port if dp_port is not None
                   and _linux_device(iface.type if iface.name != self.bridge else "internal",
                                     self.netdev_host) else 0)
        return {
            "ofport": self.vs.ofport_of(self.bridge, iface.name),
            "error": self._ofproto_error(iface),
            "admin_state": "up",
            "link_state": "up",
            "link_resets": 0,
            "link_speed": speed,
            "duplex": "full" if speed else None,
            "mtu": self.mtu(iface),
            "mac_in_use": format_mac(self.device_mac(iface)),
            "ifindex": ifindex,
            "status": status,
        }


    def _ofproto_error(self, iface: IfaceConfig) -> str | None:
        """``iface_refresh_ofproto_status``: a patch port whose peer does not point back
        gets ofproto-dpif's ``vport_get_status`` error."""
        if iface.type != "patch":
            return None
        br = self.vs.bridges[self.bridge]
        port = br.port_by_name(iface.name)
        if port is None or br.peer_of(port) is not None:
            return None
        dp_type = self.datapath_type or "system"
        return f"No usable peer '{iface.options.get('peer')}' exists in '{dp_type}' datapath."


def _failed_status(error: str | None) -> dict[str, Any]:
    """``iface_clear_db_record``: ``ofport`` -1, the error, every status column cleared."""
    return {"ofport": -1, "error": error, "admin_state": None, "link_state": None,
            "link_speed": None, "duplex": None, "mtu": None, "mac_in_use": None,
            "ifindex": None, "status": {}, "statistics": {}}


def _opt(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value


def daemon_status(vs: Vswitchd, idl) -> dict[tuple[str, str], tuple[Any, dict[str, Any]]]:
    """(table, record) -> (row, {column: value}) of everything ovs-vswitchd would write now.

    Only the rows of the configuration the vswitchd has applied: a row the
    database gained since is written after the next reconfiguration, as OVS
    writes status only for its own ``struct iface``\\ s.
    """
    out: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}
    roots = list(idl.tables["Open_vSwitch"].rows.values())
    if len(roots) != 1:
        return out
    out[("Open_vSwitch", ".")] = (roots[0], {
        "cur_cfg": vs.config.next_cfg,
        "datapath_types": list(DPIF_TYPES),
        "iface_types": sorted(IFACE_TYPES),
        **_dpdk_status(vs),
    })
    bridge_rows = _rows_by_name(idl, "Bridge")
    port_rows = _rows_by_name(idl, "Port")
    iface_rows = _rows_by_name(idl, "Interface")
    usable = {b.name: b for b in vs.applied_config.bridges}
    for bc in vs.config.bridges:
        brow = bridge_rows.get(bc.name)
        if brow is None or bc.name not in vs.bridges:
            continue
        devices = _Devices(vs, bc, usable[bc.name], iface_rows, port_rows, brow)
        out[("Bridge", bc.name)] = (brow, {
            "datapath_id": f"{devices.dpid:016x}",
            "datapath_version": ("<unknown>" if bc.datapath_type in ("", "system")
                                 else "<built-in>"),
        })
        for port in bc.ports:
            for iface in port.interfaces:
                row = iface_rows.get(iface.name)
                if row is None:
                    continue
                if iface.name in vs.iface_failures:
                    values = _failed_status(vs.iface_failures[iface.name])
                else:
                    values = devices.iface_status(iface)
                out[("Interface", iface.name)] = (row, values)
    return out


def _dpdk_status(vs: Vswitchd) -> dict[str, Any]:
    """``dpdk_status``: a host with a userspace (netdev) datapath stands for an OVS built
    with DPDK (``lib/dpdk.c``: initialised when ``other_config:dpdk-init`` asked for it,
    the version of the DPDK OVS 3.1 supports), a kernel host for one without
    (``lib/dpdk-stub.c``: false, ``none``)."""
    if vs.datapath_kind != "netdev":
        return {"dpdk_initialized": False, "dpdk_version": "none"}
    init = vs.config.other_config.get("dpdk-init", "false")
    return {"dpdk_initialized": init in ("true", "try"), "dpdk_version": _DPDK_VERSION}


def _as_idl(column, value: Any) -> Any:
    """``value`` in the form the IDL reads the column back in (for comparison)."""
    ctype = column.type
    if ctype.is_map():
        return dict(value or {})
    if ctype.n_min == 0 and ctype.n_max == 1:
        return [] if value is None else [value]
    if ctype.n_max != 1:
        return sorted(value or [])
    return value


def _differences(vs: Vswitchd, idl) -> list[tuple[Any, ColumnChange]]:
    out = []
    for (table, record), (row, values) in daemon_status(vs, idl).items():
        columns = row._table.columns
        for column, value in values.items():
            if column not in columns:
                continue
            new = _as_idl(columns[column], value)
            old = getattr(row, column)
            if isinstance(old, list) and columns[column].type.n_max != 1:
                old = sorted(old)
            if old != new:
                out.append((row, ColumnChange(table, record, column, old, new)))
    return out


def status_changes(vs: Vswitchd, idl) -> list[ColumnChange]:
    """The owned columns whose database value differs from what the vswitchd would write."""
    return [change for _row, change in _differences(vs, idl)]


class WriteStatusCommand(Command):
    """Write the differing owned columns in the caller's transaction; ``result`` lists them.

    Recomputed on every attempt, so a retried transaction writes the
    difference to the fresh replica.
    """

    def __init__(self, api, vswitchd: Vswitchd):
        super().__init__(api)
        self.vswitchd = vswitchd

    def run_idl(self, txn) -> None:
        changes = _differences(self.vswitchd, self.idl)
        for row, change in changes:
            set_column(row, change.column, change.new)
        self.result = [change for _row, change in changes]


def write_status(vs: Vswitchd, api) -> list[ColumnChange]:
    """Bring the columns ovs-vswitchd owns up to date: one transaction through ``api`` (an
    :class:`~ovsnet.ovsdb.api.OvsdbApi`), or none when the database already agrees.
    Returns the columns written."""
    api.connection.run()
    if not status_changes(vs, api.idl):
        return []
    with api.transaction(comment="ovs-vswitchd: status") as txn:
        command = txn.add(WriteStatusCommand(api, vs))
    return list(command.result or [])


def wait_cur_cfg(api, vswitchd: Vswitchd | None = None, timeout: float = 30.0,
                 next_cfg: int | None = None) -> int:
    """Block until ``Open_vSwitch:cur_cfg`` reaches ``next_cfg`` (what ``ovs-vsctl`` does
    after a change unless ``--no-wait``) and return ``cur_cfg``.

    ``next_cfg`` defaults to the server's value when called (asked on a
    separate connection, so a change this client just committed counts even
    if the replica has not seen it yet). With ``vswitchd`` (a simulated
    ovs-vswitchd of the same database) each round runs its database loop
    (:meth:`~ovsnet.vswitchd.Vswitchd.bridge_run`), so the change is applied
    and acknowledged before this returns; without one, it waits for whoever
    serves the database. Raises :class:`~ovsnet.errors.OvsdbError` after
    ``timeout`` seconds.
    """
    conn = api.connection
    deadline = time.monotonic() + timeout
    if next_cfg is None:
        reply = rpc(conn.remote, "transact", [conn.db, {
            "op": "select", "table": "Open_vSwitch", "where": [], "columns": ["next_cfg"]}],
            timeout)
        rows = reply[0].get("rows", []) if reply and isinstance(reply[0], dict) else []
        if len(rows) != 1:
            raise OvsdbError(f"{conn.remote}: the database has {len(rows)} Open_vSwitch rows; "
                             "expected exactly one")
        next_cfg = rows[0]["next_cfg"]
    while True:
        if vswitchd is not None:
            vswitchd.bridge_run()
        conn.run()
        root = next(iter(conn.idl.tables["Open_vSwitch"].rows.values()), None)
        if root is not None and root.cur_cfg >= next_cfg:
            return root.cur_cfg
        if time.monotonic() >= deadline:
            state = "no Open_vSwitch row" if root is None else f"cur_cfg={root.cur_cfg}"
            raise OvsdbError(f"{conn.remote}: ovs-vswitchd did not apply configuration "
                             f"{next_cfg} within {timeout:g} s ({state})")
        conn._block(deadline)
