"""What ovs-vswitchd reads from a host's OVSDB: the Open_vSwitch, Bridge, Port and Interface rows.

``vswitchd/bridge.c`` (``bridge_reconfigure``) walks the database's
Open_vSwitch row, its bridges, their ports and the ports' interfaces and
configures ofproto from them. :func:`read_host_config` takes the same rows from
an IDL replica (:class:`ovs.db.idl.Idl`, e.g. ``OvsdbApi.idl`` of a host
brought up with :func:`~ovsnet.ovsdb.bring_up`) into plain dataclasses, so the
rest of the simulated vswitchd never touches the IDL. Only the columns the
simulation uses are read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ovsnet.errors import OfprotoError
from ovsnet.topology.model import DP_PORT_KEY

__all__ = ["BridgeConfig", "HostConfig", "IfaceConfig", "PortConfig", "read_host_config",
           "read_ofports"]


@dataclass(frozen=True)
class IfaceConfig:
    """One Interface row: ``type``, ``options``, ``ofport_request`` and the datapath port
    number ovsnet recorded in ``external_ids:ovsnet-dp-port``."""

    name: str
    type: str = ""
    options: dict[str, str] = field(default_factory=dict)
    ofport_request: int | None = None
    dp_port: int | None = None


@dataclass(frozen=True)
class PortConfig:
    """One Port row: its interfaces and the VLAN columns NORMAL uses."""

    name: str
    interfaces: tuple[IfaceConfig, ...]
    vlan_mode: str | None = None
    tag: int | None = None
    trunks: tuple[int, ...] = ()
    cvlans: tuple[int, ...] = ()
    other_config: dict[str, str] = field(default_factory=dict)

    @property
    def has_vlan_config(self) -> bool:
        return bool(self.vlan_mode or self.tag is not None or self.trunks or self.cvlans
                     or "qinq-ethtype" in self.other_config
                     or "priority-tags" in self.other_config)


@dataclass(frozen=True)
class BridgeConfig:
    """One Bridge row and its ports (sorted by name)."""

    name: str
    fail_mode: str = "standalone"
    datapath_type: str = "system"
    other_config: dict[str, str] = field(default_factory=dict)
    ports: tuple[PortConfig, ...] = ()


@dataclass(frozen=True)
class HostConfig:
    """A host's whole configuration: Open_vSwitch ``other_config``, the bridges (by name)
    and ``next_cfg``, the configuration number ovs-vswitchd copies to ``cur_cfg`` once it
    has applied it."""

    other_config: dict[str, str] = field(default_factory=dict)
    bridges: tuple[BridgeConfig, ...] = ()
    next_cfg: int = 0

    def bridge(self, name: str) -> BridgeConfig:
        for br in self.bridges:
            if br.name == name:
                return br
        known = ", ".join(b.name for b in self.bridges) or "none"
        raise OfprotoError(f"no bridge {name!r} in the database (bridges: {known})")


def _opt(value: Any) -> Any:
    """An optional column (a list of zero or one values in the IDL) as the value or None."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _dp_port(external_ids: dict[str, str], iface: str) -> int | None:
    text = external_ids.get(DP_PORT_KEY)
    if text is None:
        return None
    if not text.isdigit():
        raise OfprotoError(f"Interface {iface}: external_ids:{DP_PORT_KEY}={text!r} is not a "
                           "datapath port number (0..65535)")
    return int(text)


def read_host_config(idl) -> HostConfig:
    """The configuration in an IDL replica of the Open_vSwitch database.

    The caller makes sure the replica is current (``connection.run()``).
    """
    ovs_rows = list(idl.tables["Open_vSwitch"].rows.values())
    if len(ovs_rows) != 1:
        raise OfprotoError(f"the database has {len(ovs_rows)} Open_vSwitch rows; "
                           "ovs-vswitchd needs exactly one (run ovs-vsctl init)")
    root = ovs_rows[0]
    bridges = []
    for br in sorted(root.bridges, key=lambda r: r.name):
        ports = []
        for port in sorted(br.ports, key=lambda r: r.name):
            ifaces = tuple(
                IfaceConfig(
                    name=iface.name,
                    type=iface.type,
                    options=dict(iface.options),
                    ofport_request=_opt(iface.ofport_request),
                    dp_port=_dp_port(dict(iface.external_ids), iface.name),
                )
                for iface in sorted(port.interfaces, key=lambda r: r.name)
            )
            ports.append(PortConfig(
                name=port.name,
                interfaces=ifaces,
                vlan_mode=_opt(port.vlan_mode),
                tag=_opt(port.tag),
                trunks=tuple(sorted(port.trunks)),
                cvlans=tuple(sorted(port.cvlans)),
                other_config=dict(port.other_config),
            ))
        bridges.append(BridgeConfig(
            name=br.name,
            fail_mode=_opt(br.fail_mode) or "standalone",
            datapath_type=br.datapath_type or "system",
            other_config=dict(br.other_config),
            ports=tuple(ports),
        ))
    return HostConfig(other_config=dict(root.other_config), bridges=tuple(bridges),
                      next_cfg=root.next_cfg)


def read_ofports(idl) -> dict[str, int]:
    """Interface name -> its ``ofport`` column, where that is a valid OpenFlow port.

    ``iface_pick_ofport`` (bridge.c) takes this number for an Interface
    without a usable ``ofport_request``, so an ovs-vswitchd that starts on a
    database another one wrote keeps the ports' numbers. Kept out of
    :class:`IfaceConfig`: it is ovs-vswitchd's own output, not configuration.
    """
    out = {}
    for row in idl.tables["Interface"].rows.values():
        ofport = _opt(row.ofport)
        if ofport is not None and 1 <= ofport < 0xFF00:  # OFPP_MAX
            out[row.name] = ofport
    return out
