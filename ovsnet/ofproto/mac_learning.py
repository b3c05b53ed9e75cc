"""The MAC learning table of the NORMAL action, modelled on Open vSwitch 3.1.

Mirrors ``lib/mac-learning.c`` / ``lib/mac-learning.h`` and the ``fdb/*``
commands of ``ofproto/ofproto-dpif.c``:

* An entry maps (MAC, VLAN) to a port (OVS stores the ``ofbundle``; here any
  hashable port key, normally the bundle's ofport). Multicast sources are
  never learned, and VLANs listed in the bridge's ``flood_vlans`` are neither
  learned nor looked up (``mac_learning_may_learn``, ``is_learning_vlan``).
* Every learned entry expires ``idle_time`` seconds after it was last
  (re)learned (``other_config:mac-aging-time``, default 300 s, clamped to
  15..3600 by ``normalize_idle_time``). Entries sit in one LRU list, oldest
  first; that is also the order ``fdb/show`` prints them in.
* The table holds at most ``max_entries`` entries
  (``other_config:mac-table-size``, default 8192, clamped to 10..1,000,000).
  Learning a new entry in a full table evicts "fairly"
  (``evict_mac_entry_fairly``): among the ports with the most entries, the one
  at the top of OVS's binary max-heap (``lib/heap.c``) loses its least
  recently learned entry. The heap is reproduced, so ties between equally
  loaded ports resolve as OVS resolves them.
* Gratuitous ARP lock (``mac_entry_set_grat_arp_lock``): a gratuitous ARP
  received on a non-bond port locks the entry for 5 s
  (``MAC_GRAT_ARP_LOCK_TIME``); while it is locked, gratuitous ARPs arriving
  over a bond (reflected back by its members) do not move the entry.
* Static entries (``fdb/add``) never age and are not flushed by
  ``fdb/flush``; learning never moves them. As in OVS they count towards
  their port's load and can be evicted on overflow.

There is no wall clock inside: every method that depends on time takes
``now`` (seconds, OVS's ``time_now()``, which counts whole seconds; fractions
are dropped). :meth:`MacLearning.run` is ``mac_learning_run``: call it before
using the table at a new time so that idle entries expire, as ofproto-dpif's
main loop does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field

from ovsnet.errors import OfprotoError

#: ``MAC_ENTRY_DEFAULT_IDLE_TIME``
DEFAULT_IDLE_TIME = 300
#: ``MAC_DEFAULT_MAX``
DEFAULT_MAX_ENTRIES = 8192
#: ``MAC_GRAT_ARP_LOCK_TIME``
GRAT_ARP_LOCK_TIME = 5
#: OpenFlow's OFPP_LOCAL, printed as ``LOCAL`` by ``fdb/show``
OFPP_LOCAL = 0xFFFE

FDB_SHOW_HEADER = " port  VLAN  MAC                Age"


def normalize_idle_time(idle_time: int) -> int:
    """``normalize_idle_time``: an aging time clamped to 15..3600 seconds."""
    return 15 if idle_time < 15 else 3600 if idle_time > 3600 else idle_time


def normalize_max_entries(max_entries: int) -> int:
    """``mac_learning_set_max_entries``: a table size clamped to 10..1,000,000."""
    return 10 if max_entries < 10 else 1_000_000 if max_entries > 1_000_000 else max_entries


def _smap_get_int(config: Mapping[str, str], key: str) -> int:
    """``smap_get_int(config, key, 0)``: a decimal integer, 0 when absent or malformed."""
    text = config.get(key)
    if text is None:
        return 0
    try:
        value = int(str(text).strip(), 10)
    except ValueError:
        return 0
    return value if -2**31 <= value < 2**31 else 0


def _parse_mac(mac: str | bytes | int) -> int:
    """A MAC address as a 48-bit integer (``aa:bb:cc:dd:ee:ff``, 6 bytes or an int)."""
    if isinstance(mac, int):
        if not 0 <= mac < 1 << 48:
            raise OfprotoError(f"MAC address {mac:#x} is out of range: expected 48 bits")
        return mac
    if isinstance(mac, bytes):
        if len(mac) != 6:
            raise OfprotoError(f"MAC address {mac!r} has {len(mac)} bytes: expected 6")
        return int.from_bytes(mac, "big")
    parts = mac.split(":")
    if len(parts) != 6 or not all(1 <= len(p) <= 2 for p in parts):
        raise OfprotoError(f"bad MAC address {mac!r}: expected xx:xx:xx:xx:xx:xx")
    try:
        return int("".join(p.zfill(2) for p in parts), 16)
    except ValueError:
        raise OfprotoError(f"bad MAC address {mac!r}: expected hex digits "
                           "as xx:xx:xx:xx:xx:xx") from None


def format_mac(mac: int) -> str:
    """``ETH_ADDR_FMT``: ``50:54:00:00:00:05``."""
    return ":".join(f"{b:02x}" for b in mac.to_bytes(6, "big"))


def _is_multicast(mac: int) -> bool:
    return bool(mac >> 40 & 1)


def _check_vlan(vlan: int) -> int:
    if not isinstance(vlan, int) or not 0 <= vlan <= 4095:
        raise OfprotoError(f"VLAN {vlan!r} is out of range: expected 0..4095")
    return vlan


def _seconds(now: float) -> int:
    return math.floor(now)


@dataclass(eq=False)
class MacEntry:
    """One learned (or static) entry; ``expires`` is None for a static entry."""

    mac: int
    vlan: int
    port: Hashable | None = None
    expires: int | None = 0
    grat_arp_lock: int = -2**63

    @property
    def is_static(self) -> bool:
        return self.expires is None

    def age(self, idle_time: int, now: float) -> int | None:
        """``mac_entry_age``: seconds since last learned, None for a static entry."""
        if self.expires is None:
            return None
        return idle_time - (self.expires - _seconds(now))

    def is_grat_arp_locked(self, now: float) -> bool:
        """``mac_entry_is_grat_arp_locked``."""
        return _seconds(now) < self.grat_arp_lock


@dataclass(eq=False)
class _PortUsage:
    """``struct mac_learning_port``: a port's entries, least recently learned first."""

    port: Hashable
    entries: dict[MacEntry, None] = field(default_factory=dict)
    idx: int = 0  # position in the heap array, 1-based as lib/heap.c

    @property
    def priority(self) -> int:
        return len(self.entries)


class _UsageHeap:
    """The binary max-heap of ``lib/heap.c`` keyed on each port's entry count.

    Reproduced node for node (1-based array, ``float_up`` on ties stops,
    ``float_down`` takes the larger child, removal moves the last node into the
    hole) because which of several equally loaded ports loses an entry on
    overflow depends on it.
    """

    def __init__(self) -> None:
        self.array: list[_PortUsage | None] = [None]

    def __len__(self) -> int:
        return len(self.array) - 1

    def max(self) -> _PortUsage:
        node = self.array[1]
        assert node is not None
        return node

    def _put(self, node: _PortUsage, i: int) -> None:
        self.array[i] = node
        node.idx = i

    def _prio(self, i: int) -> int:
        node = self.array[i]
        assert node is not None
        return node.priority

    def _swap(self, i: int, j: int) -> None:
        a, b = self.array[i], self.array[j]
        assert a is not None and b is not None
        self._put(b, i)
        self._put(a, j)

    def _float_up(self, i: int) -> bool:
        moved = False
        while i > 1:
            parent = i // 2
            if self._prio(parent) >= self._prio(i):
                break
            self._swap(parent, i)
            moved = True
            i = parent
        return moved

    def _float_down(self, i: int) -> None:
        n = len(self)
        while 2 * i <= n:
            left, right, best = 2 * i, 2 * i + 1, i
            if self._prio(left) > self._prio(best):
                best = left
            if right <= n and self._prio(right) > self._prio(best):
                best = right
            if best == i:
                break
            self._swap(best, i)
            i = best

    def insert(self, node: _PortUsage) -> None:
        self.array.append(None)
        self._put(node, len(self))
        self._float_up(node.idx)

    def changed(self, node: _PortUsage) -> None:
        if not self._float_up(node.idx):
            self._float_down(node.idx)

    def remove(self, node: _PortUsage) -> None:
        i, n = node.idx, len(self)
        if i < n:
            last = self.array[n]
            assert last is not None
            self._put(last, i)
        self.array.pop()
        if i <= len(self):
            self.changed(self.array[i])  # type: ignore[arg-type]


class MacLearning:
    """A bridge's MAC learning table (``struct mac_learning``).

    ``port`` arguments are any hashable key identifying a bundle (ofport
    numbers in ovsnet's bridge). Times are seconds on the caller's clock.
    """

    def __init__(self, idle_time: int = DEFAULT_IDLE_TIME,
                 max_entries: int = DEFAULT_MAX_ENTRIES,
                 flood_vlans: frozenset[int] | set[int] = frozenset()):
        self.idle_time = normalize_idle_time(idle_time)
        self.max_entries = normalize_max_entries(max_entries)
        self.flood_vlans = frozenset(_check_vlan(v) for v in flood_vlans)
        self._table: dict[tuple[int, int], MacEntry] = {}
        self._lru: dict[MacEntry, None] = {}  # insertion order = least recently learned first
        self._ports: dict[Hashable, _PortUsage] = {}
        self._heap = _UsageHeap()
        #: set whenever a change could alter NORMAL's decisions (``need_revalidate``)
        self.need_revalidate = False
        self.total_learned = self.total_expired = self.total_evicted = self.total_moved = 0

    @classmethod
    def from_other_config(cls, other_config: Mapping[str, str]) -> MacLearning:
        """A table configured from a Bridge's ``other_config`` as bridge.c does.

        ``mac-aging-time`` and ``mac-table-size`` are read with
        ``smap_get_int``: absent, zero or malformed values mean the defaults,
        and the results are clamped (negative values wrap to huge unsigned
        numbers in OVS, so they clamp to the maximum).
        """
        idle = _smap_get_int(other_config, "mac-aging-time") or DEFAULT_IDLE_TIME
        size = _smap_get_int(other_config, "mac-table-size") or DEFAULT_MAX_ENTRIES
        return cls(idle_time=idle if idle > 0 else 3600,
                   max_entries=size if size > 0 else 1_000_000)

    # -- configuration -----------------------------------------------------

    def set_idle_time(self, idle_time: int) -> None:
        """``mac_learning_set_idle_time``: learned entries' expiry moves by the difference."""
        idle_time = normalize_idle_time(idle_time)
        delta = idle_time - self.idle_time
        if delta:
            for e in self._lru:
                if e.expires is not None:
                    e.expires += delta
            self.idle_time = idle_time

    def set_max_entries(self, max_entries: int) -> None:
        """``mac_learning_set_max_entries``; excess entries go at the next :meth:`run`."""
        self.max_entries = normalize_max_entries(max_entries)

    def set_flood_vlans(self, vlans: set[int] | frozenset[int]) -> bool:
        """``mac_learning_set_flood_vlans``; True if the set changed."""
        new = frozenset(_check_vlan(v) for v in vlans)
        changed = new != self.flood_vlans
        self.flood_vlans = new
        return changed

    # -- queries -----------------------------------------------------------

    def __len__(self) -> int:
        return len(self._table)

    def __iter__(self) -> Iterator[MacEntry]:
        """Entries least recently learned first (the LRU list)."""
        return iter(list(self._lru))

    def is_learning_vlan(self, vlan: int) -> bool:
        return vlan not in self.flood_vlans

    def may_learn(self, mac: str | bytes | int, vlan: int) -> bool:
        """``mac_learning_may_learn``: not a flood VLAN, not a multicast source."""
        return self.is_learning_vlan(vlan) and not _is_multicast(_parse_mac(mac))

    def lookup(self, mac: str | bytes | int, vlan: int) -> MacEntry | None:
        """``mac_learning_lookup``: never for multicast destinations or flood VLANs."""
        m = _parse_mac(mac)
        if _is_multicast(m) or not self.is_learning_vlan(_check_vlan(vlan)):
            return None
        return self._table.get((m, vlan))

    def lookup_port(self, mac: str | bytes | int, vlan: int) -> Hashable | None:
        """The port ``mac`` was learned on in ``vlan``, or None (NORMAL then floods)."""
        e = self.lookup(mac, vlan)
        return None if e is None else e.port

    def port_entry_count(self, port: Hashable) -> int:
        usage = self._ports.get(port)
        return 0 if usage is None else usage.priority

    # -- learning ----------------------------------------------------------

    def _set_port(self, e: MacEntry, port: Hashable | None) -> None:
        """``mac_entry_set_port``: keeps the per-port lists and the usage heap in step."""
        if e.port == port:
            return
        self.need_revalidate = True
        if e.port is not None:
            usage = self._ports[e.port]
            del usage.entries[e]
            if not usage.entries:
                del self._ports[e.port]
                self._heap.remove(usage)
            else:
                self._heap.changed(usage)
        e.port = port
        if port is not None:
            usage = self._ports.get(port)
            if usage is None:
                usage = self._ports[port] = _PortUsage(port)
                usage.entries[e] = None
                self._heap.insert(usage)
            else:
                usage.entries[e] = None
                self._heap.changed(usage)

    def _expire(self, e: MacEntry) -> None:
        """``mac_learning_expire``."""
        self.need_revalidate = True
        self._set_port(e, None)
        del self._table[(e.mac, e.vlan)]
        del self._lru[e]

    def _insert(self, mac: int, vlan: int, now: float, static: bool) -> MacEntry:
        """``mac_learning_insert__``: find or create, mark most recently used."""
        e = self._table.get((mac, vlan))
        if e is None:
            if len(self._table) >= self.max_entries and self._heap:
                usage = self._heap.max()
                victim = next(iter(usage.entries))
                self.total_evicted += 1
                self._expire(victim)
            e = MacEntry(mac, vlan)
            self._table[(mac, vlan)] = e
            if not static:
                self.total_learned += 1
        else:
            del self._lru[e]
        self._lru[e] = None
        if e.port is not None:
            entries = self._ports[e.port].entries
            del entries[e]
            entries[e] = None
        e.expires = None if static else _seconds(now) + self.idle_time
        return e

    def _update_needed(self, mac: int, vlan: int, port: Hashable, now: float,
                       is_grat_arp: bool, is_bond: bool) -> bool:
        """``is_mac_learning_update_needed``: the read-only fast path of :meth:`learn`."""
        e = self._table.get((mac, vlan))
        if e is None:
            return True
        age = e.age(self.idle_time, now)
        if age is None:
            return False
        if age > 0:
            return True
        if is_grat_arp:
            if not is_bond:
                return True
            if e.is_grat_arp_locked(now):
                return False
        return e.port != port

    def learn(self, mac: str | bytes | int, vlan: int, port: Hashable, now: float, *,
              is_grat_arp: bool = False, is_bond: bool = False) -> bool:
        """``mac_learning_update``: learn that ``mac`` in ``vlan`` is on ``port``.

        Refreshes the entry's age and moves it to ``port`` if it was elsewhere
        (a MAC move). A gratuitous ARP on a non-bond port sets the entry's
        5-second lock; a gratuitous ARP over a bond does not move a locked
        entry (within its first second it does not even refresh it, as
        OVS's read-only fast path then stops early). Returns True if the
        entry's port changed (a new entry counts), as OVS does to decide
        whether to revalidate.
        """
        m = _parse_mac(mac)
        _check_vlan(vlan)
        if port is None or not self.may_learn(m, vlan):
            return False
        if not self._update_needed(m, vlan, port, now, is_grat_arp, is_bond):
            return False
        e = self._insert(m, vlan, now, static=False)
        if is_grat_arp:
            if not is_bond:
                e.grat_arp_lock = _seconds(now) + GRAT_ARP_LOCK_TIME
            elif e.is_grat_arp_locked(now):
                return False
        if e.port != port:
            if e.port is not None:
                self.total_moved += 1
            self._set_port(e, port)
            return True
        return False

    def add_static(self, mac: str | bytes | int, vlan: int, port: Hashable, now: float = 0) -> None:
        """``mac_learning_add_static_entry`` (``fdb/add``): an entry that never ages."""
        e = self._insert(_parse_mac(mac), _check_vlan(vlan), now, static=True)
        self._set_port(e, port)

    def del_static(self, mac: str | bytes | int, vlan: int) -> bool:
        """``mac_learning_del_static_entry`` (``fdb/del``); False if there was none."""
        e = self._table.get((_parse_mac(mac), _check_vlan(vlan)))
        if e is None or not e.is_static:
            return False
        self._expire(e)
        return True

    # -- expiry ------------------------------------------------------------

    def _oldest_learned(self) -> MacEntry | None:
        """``get_lru``: the least recently learned non-static entry."""
        return next((e for e in self._lru if not e.is_static), None)

    def run(self, now: float) -> bool:
        """``mac_learning_run``: expire idle entries and any excess over ``max_entries``.

        Returns (and clears) ``need_revalidate``.
        """
        t = _seconds(now)
        while True:
            e = self._oldest_learned()
            if e is None or not (len(self._table) > self.max_entries
                                 or t >= (e.expires or 0)):
                break
            self.total_expired += 1
            self._expire(e)
        need, self.need_revalidate = self.need_revalidate, False
        return need

    def next_expiry(self) -> int | None:
        """When :meth:`run` has work next (``mac_learning_wait``), None if never."""
        e = self._oldest_learned()
        return None if e is None else e.expires

    def flush(self) -> None:
        """``mac_learning_flush`` (``fdb/flush``): every learned entry goes, static ones stay."""
        while (e := self._oldest_learned()) is not None:
            self._expire(e)

    def flush_port(self, port: Hashable) -> int:
        """Forget every entry on ``port`` (``bundle_flush_macs``, a port deleted); the count."""
        usage = self._ports.get(port)
        if usage is None:
            return 0
        victims = list(usage.entries)
        for e in victims:
            self._expire(e)
        return len(victims)

    # -- output ------------------------------------------------------------

    def format_fdb(self, now: float,
                   port_name: Callable[[Hashable], str] | None = None) -> str:
        """The text of ``ovs-appctl fdb/show BRIDGE`` (``ofproto_unixctl_fdb_show``).

        One line per entry in LRU order: port (``ofputil_port_to_string`` of
        the bundle's port: its number, or ``LOCAL``), VLAN, MAC and age in
        seconds or ``static``. ``port_name`` overrides how a port key prints.
        """
        name = port_name or _default_port_name
        lines = [FDB_SHOW_HEADER]
        for e in self._lru:
            age = e.age(self.idle_time, now)
            tail = "static" if age is None else f"{age:3d}"
            lines.append(f"{name(e.port):>5}  {e.vlan:4d}  {format_mac(e.mac)}  {tail}")
        return "\n".join(lines) + "\n"


def _default_port_name(port: Hashable) -> str:
    return "LOCAL" if port == OFPP_LOCAL else str(port)
