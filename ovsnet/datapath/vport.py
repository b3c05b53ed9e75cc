"""Datapath ports (vports): where packets enter and leave the datapath.

What this models, and which parts of the kernel module and Open vSwitch it
mirrors (``datapath/vport.c``, ``vport-netdev.c``, ``vport-internal_dev.c``
of OVS 2.17's kernel module, which match ``net/openvswitch/`` in Linux):

* Every vport has a datapath port number (``port_no``, an ``odp_port``: not
  an OpenFlow ``ofport``; :mod:`ovsnet.topology.dpports` allocates them), a
  name, a type and counters like ``struct ovs_vport_stats``. One interface
  for all: :meth:`Vport.send` is the datapath's output action
  (``ovs_vport_send``) and returns what leaves the port; :meth:`Vport.receive`
  is a frame entering the datapath (``ovs_vport_receive``) and returns the
  frame and its tunnel metadata, or None when the port drops it.

* **MTU** (``packet_length`` in ``ovs_vport_send``): a frame whose length
  minus the 14-byte Ethernet header -- and minus 4 more when its outer
  ethertype is 802.1Q or 802.1ad, since drivers allow one tag beyond the MTU
  (``is_skb_forwardable``) -- exceeds the device MTU is dropped and counted in
  ``tx_errors``. GSO is not modelled, so no frame is exempt. vhost-user ports
  use netdev-dpdk's rule instead (``netdev_dpdk_filter_packet_len``: drop
  when longer than MTU + 14 + 4, i.e. ``MTU_TO_FRAME_LEN``), counted in
  ``tx_dropped``.

* Types: ``netdev`` is a physical NIC (``vport-netdev.c``); ``internal`` a
  port into the host's IP stack (``vport-internal_dev.c``; dp port 0, the
  datapath's own port, is one; a frame sent to a port whose device is down
  is dropped as ``internal_dev_recv`` drops it); ``tap`` the TAP device of a
  vhost-net VM backend and ``vhost-user`` an OVS-DPDK vhost-user port, both
  endpoints with bounded queues: the guest-bound queue is the tun device's
  ``tx_queue_len`` (500, ``TUN_READQ_SIZE``) or the guest's RX virtqueue
  (256, QEMU's default size), and a full queue drops (``tx_dropped``, as
  ``tun_net_xmit`` and ``netdev_dpdk_vhost_send``); the queue from the guest
  is its TX virtqueue (256). ``vxlan``, ``geneve`` and ``gre`` are the shared
  flow-based tunnel vports (``vxlan_sys_4789``, ``genev_sys_6081``,
  ``gre_sys``) whose headers :mod:`ovsnet.datapath.tunnel` builds and checks.
  Their device MTU is 65000, what ``dpif_netlink_rtnl_create`` gives them.

* Counters are kept from the datapath's point of view (rx = into the
  datapath, tx = out of it), which is how ``ovs-vsctl list Interface``
  shows them (netdev-linux swaps an internal device's host-side counters
  back). Byte counts are of the Ethernet frames the datapath sees; the Linux
  tunnel drivers count slightly different lengths (VXLAN and Geneve receive
  count without the inner Ethernet header, ``iptunnel_xmit_stats`` from the
  inner L3 header). Besides the eight counters every vport keeps ``drops``,
  a :class:`collections.Counter` of drop reasons, so each dropped packet is
  accounted for by name; the kernel counts many of these only in SNMP MIBs
  (IP, UDP) or not at all.
"""

from __future__ import annotations

import collections
import ipaddress
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ovsnet.datapath import tunnel as tnl
from ovsnet.datapath.flow_key import TNL_F_DONT_FRAGMENT, Tunnel, extract
from ovsnet.datapath.odp_attrs import VportType
from ovsnet.datapath.packet import NETDEV_MAX_BURST
from ovsnet.errors import DatapathError, PacketError

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "ETH_HLEN",
    "TUNNEL_MTU",
    "VLAN_HLEN",
    "VPORT_TYPES",
    "GeneveVport",
    "GreVport",
    "InternalVport",
    "NetdevVport",
    "QueuedVport",
    "TapVport",
    "TunnelVport",
    "VhostUserVport",
    "Vport",
    "VportStats",
    "VxlanVport",
    "make_vport",
    "packet_length",
]

ETH_HLEN = 14
VLAN_HLEN = 4
#: MTU OVS gives the tunnel devices it creates (``dpif_netlink_rtnl_create``)
TUNNEL_MTU = 65000
#: Ethernet MTU of a device nobody configured
DEFAULT_MTU = 1500
_VLAN_TPIDS = (b"\x81\x00", b"\x88\xa8")
_MAX_MTU = 65535  # ETH_MAX_MTU


def packet_length(frame: bytes) -> int:
    """The length ``ovs_vport_send`` compares with the MTU (``packet_length`` in vport.c).

    The frame minus its Ethernet header, minus one VLAN tag when the outer
    ethertype is 802.1Q/802.1ad (a second tag counts against the MTU), and
    never below 0.
    """
    length = len(frame) - ETH_HLEN
    if frame[12:14] in _VLAN_TPIDS:
        length -= VLAN_HLEN
    return max(length, 0)


@dataclass
class VportStats:
    """``struct ovs_vport_stats``, from the datapath's point of view."""

    rx_packets: int = 0
    tx_packets: int = 0
    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_errors: int = 0
    tx_errors: int = 0
    rx_dropped: int = 0
    tx_dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _frame(name: str, packet: Any) -> bytes:
    if isinstance(packet, bytes):
        return packet
    if packet is None:
        raise TypeError(f"{name} must be a bytes-like object, not None")
    view = memoryview(packet)
    if view.ndim != 1 or view.itemsize != 1:
        raise PacketError(f"{name} must be a 1-D buffer of bytes, got format {view.format!r}")
    return view.tobytes()


class Vport:
    """A datapath port. Subclasses set :attr:`type` and :attr:`odp_type`."""

    #: the port type as ovsnet names it
    type: ClassVar[str] = ""
    #: ``enum ovs_vport_type`` of the kernel vport behind it
    odp_type: ClassVar[VportType] = VportType.NETDEV
    default_mtu: ClassVar[int] = DEFAULT_MTU

    def __init__(self, port_no: int, name: str, *, mtu: int | None = None):
        if not isinstance(port_no, int) or not 0 <= port_no <= 0xFFFFFFFF:
            raise DatapathError(f"vport {name!r}: port_no={port_no!r} must be an int in 0..2**32-1")
        if not isinstance(name, str) or not name:
            raise DatapathError(f"vport name must be a non-empty str, got {name!r}")
        mtu = self.default_mtu if mtu is None else mtu
        if not isinstance(mtu, int) or not 68 <= mtu <= _MAX_MTU:
            raise DatapathError(f"vport {name!r}: mtu={mtu!r} must be an int in 68..{_MAX_MTU}")
        self.port_no = port_no
        self.name = name
        self.mtu = mtu
        self.stats = VportStats()
        #: dropped packets by reason (see the module docstring)
        self.drops: collections.Counter[str] = collections.Counter()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(port_no={self.port_no}, name={self.name!r}, mtu={self.mtu})"

    # -- accounting ---------------------------------------------------------

    def _drop_tx(self, reason: str, counter: str = "tx_dropped") -> list[bytes]:
        setattr(self.stats, counter, getattr(self.stats, counter) + 1)
        self.drops[reason] += 1
        return []

    def _count_tx(self, frame: bytes) -> None:
        self.stats.tx_packets += 1
        self.stats.tx_bytes += len(frame)

    def _count_rx(self, frame: bytes) -> None:
        self.stats.rx_packets += 1
        self.stats.rx_bytes += len(frame)

    def _over_mtu(self, frame: bytes) -> bool:
        return packet_length(frame) > self.mtu

    # -- the datapath's side -----------------------------------------------

    def send(self, packet: Buffer, egress_tunnel: Tunnel | None = None, *,
             flow_hash: int | None = None) -> list[bytes]:
        """Output ``packet`` on this port (``ovs_vport_send``): the frames that leave it.

        An empty list means the port dropped it (counted in :attr:`stats` and
        :attr:`drops`). ``egress_tunnel`` and ``flow_hash`` matter only to
        tunnel vports; a non-tunnel device ignores tunnel info, as the kernel
        does.
        """
        frame = _frame("packet", packet)
        if self._over_mtu(frame):
            return self._drop_tx("mtu", "tx_errors")
        out = self._transmit(frame, egress_tunnel, flow_hash)
        if out:
            self._count_tx(frame)
        return out

    def _transmit(self, frame: bytes, egress_tunnel: Tunnel | None,
                  flow_hash: int | None) -> list[bytes]:
        return [frame]

    def receive(self, frame: Buffer) -> tuple[bytes, Tunnel | None] | None:
        """A frame entering the datapath through this port (``ovs_vport_receive``).

        Returns the frame and its tunnel metadata (None for non-tunnel ports),
        or None when the port drops it.
        """
        data = _frame("frame", frame)
        self._count_rx(data)
        return data, None


class NetdevVport(Vport):
    """A physical NIC (``vport-netdev.c``): frames go to and come from the wire."""

    type = "netdev"
    odp_type = VportType.NETDEV


class InternalVport(Vport):
    """A port into the host's IP stack (``vport-internal_dev.c``), e.g. a bridge's local port.

    Sending to it hands the frame to the host stack (``internal_dev_recv``),
    which drops it when the device is down (:attr:`up` False).
    """

    type = "internal"
    odp_type = VportType.INTERNAL

    def __init__(self, port_no: int, name: str, *, mtu: int | None = None, up: bool = True):
        super().__init__(port_no, name, mtu=mtu)
        self.up = up

    def _transmit(self, frame: bytes, egress_tunnel: Tunnel | None,
                  flow_hash: int | None) -> list[bytes]:
        if not self.up:
            return self._drop_tx("down")
        return [frame]


class QueuedVport(Vport):
    """A VM-facing endpoint with a bounded queue each way.

    :meth:`send` puts a frame on the guest-bound queue (dropped when full);
    the guest takes it with :meth:`guest_receive`. The guest transmits with
    :meth:`guest_send` (refused when its queue is full) and the datapath
    takes up to a burst with :meth:`poll`, which calls :meth:`receive` for
    each frame.
    """

    default_to_guest: ClassVar[int] = 256
    default_from_guest: ClassVar[int] = 256

    def __init__(self, port_no: int, name: str, *, mtu: int | None = None,
                 to_guest_len: int | None = None, from_guest_len: int | None = None):
        super().__init__(port_no, name, mtu=mtu)
        self.to_guest_len = self._qlen("to_guest_len", to_guest_len, self.default_to_guest)
        self.from_guest_len = self._qlen("from_guest_len", from_guest_len,
                                         self.default_from_guest)
        self.to_guest: collections.deque[bytes] = collections.deque()
        self.from_guest: collections.deque[bytes] = collections.deque()

    def _qlen(self, what: str, value: int | None, default: int) -> int:
        value = default if value is None else value
        if not isinstance(value, int) or value < 1:
            raise DatapathError(f"vport {self.name!r}: {what}={value!r} must be an int >= 1")
        return value

    def _transmit(self, frame: bytes, egress_tunnel: Tunnel | None,
                  flow_hash: int | None) -> list[bytes]:
        if len(self.to_guest) >= self.to_guest_len:
            return self._drop_tx("tx_queue_full")
        self.to_guest.append(frame)
        return [frame]

    def guest_receive(self, max_frames: int | None = None) -> list[bytes]:
        """The guest takes up to ``max_frames`` (all if None) frames queued for it."""
        n = len(self.to_guest) if max_frames is None else min(max_frames, len(self.to_guest))
        return [self.to_guest.popleft() for _ in range(n)]

    def guest_send(self, frame: Buffer) -> bool:
        """The guest transmits ``frame``; False (and ``rx_dropped``) when its queue is full."""
        data = _frame("frame", frame)
        if len(self.from_guest) >= self.from_guest_len:
            self.stats.rx_dropped += 1
            self.drops["rx_queue_full"] += 1
            return False
        self.from_guest.append(data)
        return True

    def poll(self, burst: int = NETDEV_MAX_BURST) -> list[tuple[bytes, Tunnel | None]]:
        """The datapath takes up to ``burst`` frames the guest sent (``netdev_rxq_recv``)."""
        if not isinstance(burst, int) or burst < 1:
            raise DatapathError(f"poll burst={burst!r} must be an int >= 1")
        out = []
        while self.from_guest and len(out) < burst:
            got = self.receive(self.from_guest.popleft())
            if got is not None:
                out.append(got)
        return out


class TapVport(QueuedVport):
    """The TAP device of a vhost-net VM backend (a netdev vport in the kernel datapath)."""

    type = "tap"
    odp_type = VportType.NETDEV
    default_to_guest = 500  # TUN_READQ_SIZE, the tun device's tx_queue_len


class VhostUserVport(QueuedVport):
    """An OVS-DPDK vhost-user port (userspace datapath), rings of 256 descriptors each."""

    type = "vhost-user"
    odp_type = VportType.NETDEV

    def _over_mtu(self, frame: bytes) -> bool:
        # netdev_dpdk_filter_packet_len: max_packet_len = MTU + 14 + 4 (CRC).
        return len(frame) > self.mtu + ETH_HLEN + 4

    def send(self, packet: Buffer, egress_tunnel: Tunnel | None = None, *,
             flow_hash: int | None = None) -> list[bytes]:
        frame = _frame("packet", packet)
        if self._over_mtu(frame):
            return self._drop_tx("mtu")  # netdev-dpdk counts tx_mtu_exceeded_drops as drops
        out = self._transmit(frame, egress_tunnel, flow_hash)
        if out:
            self._count_tx(frame)
        return out


class TunnelVport(Vport):
    """A flow-based tunnel vport: encapsulates on :meth:`send`, decapsulates on :meth:`receive`.

    ``resolver`` maps an outer destination to a :class:`~ovsnet.datapath.tunnel.NextHop`
    (route, source address, MACs, underlay MTU); without one every send is
    dropped as ``no_route``. ``local_addrs`` are the host's addresses (frames
    for others are not delivered; None accepts any), ``mac`` the tunnel
    device's MAC (loop check). ``src_port_mode`` picks how the UDP source port
    is derived from the inner flow hash: ``"kernel"`` (``udp_flow_src_port``
    with the driver's range) or ``"userspace"`` (``netdev_tnl_get_src_port``).
    The IPv4 identification comes from a per-vport counter starting at
    ``ip_id``; the kernel's ``__ip_select_ident`` draws it from a hashed
    per-destination counter, and OVS userspace always sends 0.
    """

    kind: ClassVar[str] = ""
    default_mtu = TUNNEL_MTU
    default_dst_port: ClassVar[int | None] = None
    kernel_port_range: ClassVar[tuple[int, int]] = tnl.KERNEL_VXLAN_PORT_RANGE

    def __init__(self, port_no: int, name: str, *, mtu: int | None = None,
                 dst_port: int | None = None, resolver: tnl.Resolver | None = None,
                 local_addrs: Iterable[str] | None = None, mac: str | None = None,
                 src_port_mode: str = "kernel", ip_id: int = 0):
        super().__init__(port_no, name, mtu=mtu)
        if dst_port is not None and self.default_dst_port is None:
            raise DatapathError(f"vport {name!r}: a {self.type} vport has no UDP port")
        port = self.default_dst_port if dst_port is None else dst_port
        if port is not None and not (isinstance(port, int) and 1 <= port <= 0xFFFF):
            raise DatapathError(f"vport {name!r}: dst_port={port!r} must be an int in 1..65535")
        if src_port_mode not in ("kernel", "userspace"):
            raise DatapathError(
                f"vport {name!r}: src_port_mode={src_port_mode!r} must be 'kernel' or 'userspace'"
            )
        if not isinstance(ip_id, int) or not 0 <= ip_id <= 0xFFFF:
            raise DatapathError(f"vport {name!r}: ip_id={ip_id!r} must be an int in 0..65535")
        self.dst_port = port
        self.resolver: tnl.Resolver = resolver if resolver is not None else tnl.StaticRoutes()
        self.local_addrs = None if local_addrs is None else frozenset(local_addrs)
        self.mac = mac
        self.src_port_mode = src_port_mode
        self._ip_id = ip_id

    def src_port(self, flow_hash: int) -> int:
        """The UDP source port for an inner flow with OVS 5-tuple hash ``flow_hash``."""
        if self.src_port_mode == "userspace":
            return tnl.udp_src_port(flow_hash, tnl.USERSPACE_PORT_RANGE, obfuscate=False)
        return tnl.udp_src_port(flow_hash, self.kernel_port_range)

    def _transmit(self, frame: bytes, egress_tunnel: Tunnel | None,
                  flow_hash: int | None) -> list[bytes]:
        if egress_tunnel is None:
            # A collect_md device drops packets without egress tunnel info.
            return self._drop_tx("no_tunnel_info")
        hop = self.resolver(_outer_dst(self.name, egress_tunnel))
        if hop is None:
            return self._drop_tx("no_route", "tx_errors")
        key = extract(frame)
        sport = 0
        if self.kind != "gre":
            sport = self.src_port(tnl.hash_5tuple(key) if flow_hash is None else flow_hash)
        outer = tnl.encapsulate(self.kind, frame, egress_tunnel, hop, dst_port=self.dst_port,
                                src_port=sport, ip_id=self._ip_id, inner_key=key)
        ip_len = len(outer) - ETH_HLEN
        if ip_len > hop.mtu:
            if outer[12:14] != b"\x08\x00" or egress_tunnel.flags & TNL_F_DONT_FRAGMENT:
                return self._drop_tx("underlay_mtu", "tx_errors")
            self._ip_id = (self._ip_id + 1) & 0xFFFF
            return tnl.fragment_ipv4(outer, hop.mtu)
        if outer[12:14] == b"\x08\x00":
            self._ip_id = (self._ip_id + 1) & 0xFFFF
        return [outer]

    def receive(self, frame: Buffer) -> tuple[bytes, Tunnel | None] | None:
        """Decapsulate an outer frame addressed to this vport; None if dropped.

        Drops are counted by reason in :attr:`drops`; an ECN drop counts as
        ``rx_errors`` (the drivers' ``rx_frame_errors``), the others as
        ``rx_dropped``.
        """
        try:
            inner, meta = tnl.decapsulate(self.kind, frame, dst_port=self.dst_port,
                                          local_addrs=self.local_addrs, device_mac=self.mac)
        except tnl.TunnelDrop as drop:
            if drop.reason == "ecn":
                self.stats.rx_errors += 1
            else:
                self.stats.rx_dropped += 1
            self.drops[drop.reason] += 1
            return None
        self._count_rx(inner)
        return inner, meta


def _outer_dst(name: str, tunnel: Tunnel) -> str:
    """The outer destination of egress tunnel info as text, for the resolver."""
    if not isinstance(tunnel, Tunnel):
        raise TypeError(f"egress_tunnel must be a Tunnel, not {type(tunnel).__name__}")
    try:
        if tunnel.ipv4_dst not in (0, "", "0.0.0.0"):
            return str(ipaddress.IPv4Address(tunnel.ipv4_dst))
        if tunnel.ipv6_dst not in (b"", ""):
            dst6 = tunnel.ipv6_dst
            return str(ipaddress.IPv6Address(dst6 if isinstance(dst6, str) else bytes(dst6)))
    except ValueError as error:
        raise DatapathError(f"vport {name!r}: egress tunnel destination: {error}") from None
    raise DatapathError(f"vport {name!r}: egress tunnel info needs ipv4_dst or ipv6_dst")


class VxlanVport(TunnelVport):
    """``vxlan_sys_<port>``: VXLAN over UDP (default port 4789)."""

    type = kind = "vxlan"
    odp_type = VportType.VXLAN
    default_dst_port = tnl.VXLAN_PORT
    kernel_port_range = tnl.KERNEL_VXLAN_PORT_RANGE


class GeneveVport(TunnelVport):
    """``genev_sys_<port>``: Geneve over UDP (default port 6081)."""

    type = kind = "geneve"
    odp_type = VportType.GENEVE
    default_dst_port = tnl.GENEVE_PORT
    kernel_port_range = tnl.KERNEL_GENEVE_PORT_RANGE


class GreVport(TunnelVport):
    """``gre_sys``: GRE carrying Ethernet (gretap) over IPv4."""

    type = kind = "gre"
    odp_type = VportType.GRE


#: vport class per type name
VPORT_TYPES: dict[str, type[Vport]] = {
    cls.type: cls
    for cls in (NetdevVport, InternalVport, TapVport, VhostUserVport,
                VxlanVport, GeneveVport, GreVport)
}


def make_vport(type_: str, port_no: int, name: str, **options: Any) -> Vport:
    """A vport of type ``type_`` (a key of :data:`VPORT_TYPES`) with its options."""
    try:
        cls = VPORT_TYPES[type_]
    except KeyError:
        raise DatapathError(
            f"vport {name!r}: type {type_!r} is not one of {', '.join(VPORT_TYPES)}"
        ) from None
    return cls(port_no, name, **options)
