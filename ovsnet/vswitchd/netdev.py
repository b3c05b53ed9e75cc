"""The network devices behind a host's Interfaces: which ones open, and what they report.

ovs-vswitchd opens a ``struct netdev`` for every Interface
(``iface_do_create`` in ``vswitchd/bridge.c``) and later reads back what the
device reports (``iface_refresh_netdev_status``): its Ethernet address,
MTU, ifindex, link speed and status. ovsnet has no devices, so this module
says what they would be:

- :func:`open_error` is ``iface_do_create``'s verdict: a reserved name, a
  type no netdev class provides, a patch port without a usable ``peer``
  (``set_patch_config``) or a tunnel without a valid ``remote_ip``
  (``set_tunnel_config``, ``lib/netdev-vport.c``) fails, and the Interface
  gets ``ofport`` -1 and the error text OVS writes.
- :func:`uuid_mac` is the address OVS derives from a row's UUID
  (``bridge_create``: the UUID's first six bytes, marked locally
  administered); ovsnet gives the same kind of address to the devices the
  kernel would give a random one (internal, patch and tunnel ports).
- :func:`bridge_mac` and :func:`datapath_id` are ``bridge_pick_local_hw_addr``
  and ``bridge_pick_datapath_id``.
"""

from __future__ import annotations

import ipaddress
import re
import uuid as uuidlib
from collections.abc import Iterable

from ovsnet.topology.model import TUNNEL_TYPES

__all__ = ["DPIF_TYPES", "IFACE_TYPES", "eth_addr_from_string", "is_candidate_mac", "open_error",
           "uuid_mac", "bridge_mac", "datapath_id", "format_mac"]

#: Interface types the simulation can open ("" is a system device), what
#: ``Open_vSwitch:iface_types`` lists
IFACE_TYPES = ("dpdk", "dpdkvhostuser", "dpdkvhostuserclient", "dummy", "dummy-internal",
               "internal", "patch", "system", "tap", *TUNNEL_TYPES)
#: types a Debian ovs-vswitchd opens that ovsnet does not model
_UNMODELLED_TYPES = ("afxdp", "afxdp-nonpmd", "bareudp", "gtpu", "ip6erspan", "ip6gre", "lisp")
#: the kernel device name prefixes of the shared tunnel vports (``vport_classes`` of
#: netdev-vport.c): ``netdev_is_reserved_name`` refuses Interfaces named like them
_DPIF_PORT_PREFIXES = ("genev_sys", "gre_sys", "vxlan_sys", "lisp_sys", "stt_sys", "erspan_sys",
                       "ip6erspan_sys", "ip6gre_sys", "gtpu_sys", "udp_sys")
#: ``Open_vSwitch:datapath_types`` of a Linux ovs-vswitchd (dpif-netlink, dpif-netdev)
DPIF_TYPES = ("netdev", "system")
#: unicast addresses ``eth_addr_is_reserved`` lists (Extreme EDP/EAPS); the rest are multicast
_RESERVED_UNICAST = (0x00e02b000000, 0x00e02b000004, 0x00e02b000006)

_MAC_RE = re.compile(r"^([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):"
                     r"([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})")


def open_error(name: str, type_: str, options: dict[str, str]) -> tuple[bool, str | None]:
    """Whether opening the Interface fails, and the ``error`` text OVS records (None when
    OVS only logs, as for a reserved name)."""
    if name.startswith(_DPIF_PORT_PREFIXES) or name in (f"ovs-{t}" for t in DPIF_TYPES):
        return True, None
    if type_ == "":
        return False, None
    if type_ in _UNMODELLED_TYPES:
        return True, (f"could not open network device {name} (type {type_} is not modelled "
                      "by ovsnet)")
    if type_ not in IFACE_TYPES:
        return True, (f"could not open network device {name} "
                      "(Address family not supported by protocol)")
    if type_ == "patch":
        peer = options.get("peer")
        if peer is None:
            return True, f"{name}: patch type requires valid 'peer' argument"
        if len(options) > 1:
            return True, f"{name}: patch type takes only a 'peer' argument"
        if peer == name:
            return True, f"{name}: patch peer must not be self"
    elif type_ in TUNNEL_TYPES:
        remote = options.get("remote_ip")
        required = f"{name}: {type_} type requires valid 'remote_ip' argument"
        if remote is None:
            return True, required
        if remote != "flow":
            try:
                address = ipaddress.ip_address(remote)
            except ValueError:
                return True, f"{name}: bad {type_} 'remote_ip'\n{required}"
            if address.is_multicast:
                return True, f"{name}: multicast remote_ip={remote} not allowed"
    return False, None


def eth_addr_from_string(text: str | None) -> int | None:
    """An Ethernet address as a 48-bit number (``eth_addr_from_string``), or None."""
    m = _MAC_RE.match(text or "")
    if m is None:
        return None
    value = 0
    for part in m.groups():
        value = (value << 8) | int(part, 16)
    return value


def format_mac(value: int) -> str:
    return ":".join(f"{b:02x}" for b in value.to_bytes(6, "big"))


def uuid_mac(row_uuid: uuidlib.UUID | str) -> int:
    """The first six bytes of ``struct uuid`` (four host-order 32-bit words, little-endian
    on x86), multicast bit cleared and local bit set (``eth_addr_mark_random``)."""
    u = row_uuid if isinstance(row_uuid, uuidlib.UUID) else uuidlib.UUID(str(row_uuid))
    raw = b"".join(u.bytes[i:i + 4][::-1] for i in range(0, 16, 4))
    first = (raw[0] & 0xFE) | 0x02
    return int.from_bytes(bytes([first]) + raw[1:6], "big")


def is_candidate_mac(value: int) -> bool:
    """What ``find_local_hw_addr`` accepts for a bridge address: not multicast, not
    locally administered, not reserved, not zero."""
    first = value >> 40
    return (value != 0 and not first & 0x01 and not first & 0x02
            and value not in _RESERVED_UNICAST)


def bridge_mac(hwaddr: str | None, bridge_uuid, port_macs: Iterable[int | None]) -> int:
    """``bridge_pick_local_hw_addr``: ``other_config:hwaddr`` if it is a usable address,
    else the least acceptable address among the bridge's other ports, else the address
    derived from the Bridge row's UUID."""
    requested = eth_addr_from_string(hwaddr)
    if requested is not None and requested != 0 and not (requested >> 40) & 0x01:
        return requested
    candidates = [m for m in port_macs if m is not None and is_candidate_mac(m)]
    return min(candidates) if candidates else uuid_mac(bridge_uuid)


def datapath_id(requested: str | None, mac: int) -> int:
    """``bridge_pick_datapath_id``: ``other_config:datapath-id`` (16 hex digits, or 0x
    and up to 16, not zero; ``dpid_from_string``), else the bridge's address."""
    text = requested or ""
    digits = None
    if len(text) == 16:
        digits = text
    elif len(text) <= 18 and text[:2] in ("0x", "0X"):
        digits = text[2:]
    if digits and all(c in "0123456789abcdefABCDEF" for c in digits):
        value = int(digits, 16)
        if value:
            return value
    return mac
