"""The MAC learning table against the behaviour of OVS 3.1's lib/mac-learning.c.

The scenarios restate "ofproto-dpif - MAC learning", "MAC table overflow" and
"MAC table overflow fairness" of OVS's tests/ofproto-dpif.at as data: the
expected fdb/show contents come from those tests, the clock steps from their
``time/warp 1000`` calls.
"""

from __future__ import annotations

import pytest

from ovsnet.errors import OfprotoError
from ovsnet.ofproto.mac_learning import (
    DEFAULT_IDLE_TIME,
    DEFAULT_MAX_ENTRIES,
    FDB_SHOW_HEADER,
    OFPP_LOCAL,
    MacLearning,
    format_mac,
)


def rows(ml: MacLearning) -> list[tuple[object, int, str]]:
    return [(e.port, e.vlan, format_mac(e.mac)) for e in ml]


def test_defaults():
    ml = MacLearning()
    assert (ml.idle_time, ml.max_entries) == (DEFAULT_IDLE_TIME, DEFAULT_MAX_ENTRIES) == (300, 8192)


@pytest.mark.parametrize("config, idle, size", [
    ({}, 300, 8192),
    ({"mac-aging-time": "0", "mac-table-size": "0"}, 300, 8192),
    ({"mac-aging-time": "5"}, 15, 8192),
    ({"mac-aging-time": "100000"}, 3600, 8192),
    ({"mac-aging-time": "60", "mac-table-size": "10"}, 60, 10),
    ({"mac-table-size": "3"}, 300, 10),
    ({"mac-table-size": "2000000"}, 300, 1_000_000),
    ({"mac-aging-time": "junk", "mac-table-size": "12x"}, 300, 8192),
    ({"mac-aging-time": "-1", "mac-table-size": "-5"}, 3600, 1_000_000),
])
def test_other_config(config, idle, size):
    ml = MacLearning.from_other_config(config)
    assert (ml.idle_time, ml.max_entries) == (idle, size)


def test_mac_learning_scenario():
    """ofproto-dpif - MAC learning: learn, look up, move (the move goes to the LRU tail)."""
    ml = MacLearning()
    assert ml.learn("50:54:00:00:00:05", 0, 3, now=0) is True
    assert rows(ml) == [(3, 0, "50:54:00:00:00:05")]
    assert ml.lookup_port("50:54:00:00:00:05", 0) == 3
    assert ml.learn("50:54:00:00:00:06", 0, 1, now=0) is True
    assert rows(ml) == [(3, 0, "50:54:00:00:00:05"), (1, 0, "50:54:00:00:00:06")]
    assert ml.learn("50:54:00:00:00:05", 0, 2, now=0) is True
    assert rows(ml) == [(1, 0, "50:54:00:00:00:06"), (2, 0, "50:54:00:00:00:05")]
    assert ml.total_moved == 1
    # deleting port 1 forgets its entries
    assert ml.flush_port(1) == 1
    assert rows(ml) == [(2, 0, "50:54:00:00:00:05")]


def test_per_vlan_tables():
    ml = MacLearning()
    ml.learn("00:00:00:00:00:01", 10, 1, now=0)
    ml.learn("00:00:00:00:00:01", 20, 2, now=0)
    assert ml.lookup_port("00:00:00:00:00:01", 10) == 1
    assert ml.lookup_port("00:00:00:00:00:01", 20) == 2
    assert ml.lookup_port("00:00:00:00:00:01", 0) is None


def test_multicast_and_flood_vlans_not_learned():
    ml = MacLearning(flood_vlans={7})
    assert ml.learn("01:00:5e:00:00:01", 0, 1, now=0) is False
    assert ml.learn("00:00:00:00:00:01", 7, 1, now=0) is False
    assert len(ml) == 0
    ml.learn("00:00:00:00:00:01", 8, 1, now=0)
    assert ml.set_flood_vlans({8}) is True
    assert ml.lookup("00:00:00:00:00:01", 8) is None  # flood VLANs are never looked up
    assert ml.lookup("ff:ff:ff:ff:ff:ff", 0) is None


def test_relearn_same_port_reports_no_change():
    ml = MacLearning()
    assert ml.learn("00:00:00:00:00:01", 0, 1, now=0) is True
    assert ml.learn("00:00:00:00:00:01", 0, 1, now=10) is False
    assert ml.lookup("00:00:00:00:00:01", 0).age(ml.idle_time, 10) == 0


@pytest.mark.parametrize("aging, learned_at, alive_until", [
    (300, 0, 299), (60, 5, 64), (15, 100, 114),
])
def test_aging_with_explicit_clock(aging, learned_at, alive_until):
    ml = MacLearning(idle_time=aging)
    ml.learn("00:00:00:00:00:01", 0, 1, now=learned_at)
    ml.run(alive_until)
    assert ml.lookup_port("00:00:00:00:00:01", 0) == 1
    assert ml.next_expiry() == alive_until + 1
    ml.run(alive_until + 1)
    assert ml.lookup_port("00:00:00:00:00:01", 0) is None
    assert ml.total_expired == 1


def test_relearning_refreshes_age():
    ml = MacLearning(idle_time=60)
    ml.learn("00:00:00:00:00:01", 0, 1, now=0)
    ml.learn("00:00:00:00:00:01", 0, 1, now=50)
    ml.run(100)
    assert len(ml) == 1
    ml.run(110)
    assert len(ml) == 0


def test_set_idle_time_shifts_expiry():
    ml = MacLearning(idle_time=300)
    ml.learn("00:00:00:00:00:01", 0, 1, now=0)
    ml.set_idle_time(60)
    assert ml.next_expiry() == 60


def test_mac_table_overflow():
    """MAC table overflow: with mac-table-size=10 the 11th MAC pushes out the oldest."""
    ml = MacLearning.from_other_config({"mac-table-size": "10"})
    for i in range(10):
        ml.learn(f"50:54:00:00:00:0{i}", 0, 3, now=i)
    ml.learn("50:54:00:00:00:10", 0, 3, now=10)
    macs = sorted(mac for _, _, mac in rows(ml))
    assert macs == [f"50:54:00:00:00:0{i}" for i in range(1, 10)] + ["50:54:00:00:00:10"]
    assert ml.total_evicted == 1


def test_mac_table_overflow_fairness():
    """MAC table overflow fairness: a port with most entries loses its oldest, ties as lib/heap.c."""
    ml = MacLearning(max_entries=10)
    t = 0
    for i in range(10):
        ml.learn(f"50:54:00:00:00:0{i}", 0, i // 2 + 1, now=t)
        t += 1
    for d in "0123456789abcdef":
        ml.learn(f"50:54:00:00:0{d}:ff", 0, 6, now=t)
        t += 1
    expected = [
        (1, "50:54:00:00:00:01"), (2, "50:54:00:00:00:03"), (3, "50:54:00:00:00:04"),
        (3, "50:54:00:00:00:05"), (4, "50:54:00:00:00:07"), (5, "50:54:00:00:00:08"),
        (5, "50:54:00:00:00:09"), (6, "50:54:00:00:0d:ff"), (6, "50:54:00:00:0e:ff"),
        (6, "50:54:00:00:0f:ff"),
    ]
    assert sorted((p, mac) for p, _, mac in rows(ml)) == expected
    assert [ml.port_entry_count(p) for p in range(1, 7)] == [1, 1, 2, 1, 2, 3]


def test_shrinking_max_entries_expires_oldest_at_run():
    ml = MacLearning(max_entries=20)
    for i in range(15):
        ml.learn(f"00:00:00:00:00:{i:02x}", 0, 1, now=0)
    ml.set_max_entries(10)
    ml.run(1)
    assert len(ml) == 10
    assert ml.lookup("00:00:00:00:00:04", 0) is None
    assert ml.lookup("00:00:00:00:00:05", 0) is not None


def test_grat_arp_lock_blocks_bond_moves():
    """A gratuitous ARP on a non-bond port locks the entry for 5 s against bond reflections."""
    ml = MacLearning()
    mac = "00:00:00:00:00:aa"
    ml.learn(mac, 0, 1, now=100, is_grat_arp=True)
    entry = ml.lookup(mac, 0)
    assert entry.is_grat_arp_locked(104) and not entry.is_grat_arp_locked(105)
    # reflected back over the bond within the lock: ignored
    assert ml.learn(mac, 0, "bond0", now=103, is_grat_arp=True, is_bond=True) is False
    assert ml.lookup_port(mac, 0) == 1
    # after the lock the bond may take it
    assert ml.learn(mac, 0, "bond0", now=106, is_grat_arp=True, is_bond=True) is True
    assert ml.lookup_port(mac, 0) == "bond0"


def test_non_grat_arp_moves_even_when_locked():
    ml = MacLearning()
    ml.learn("00:00:00:00:00:aa", 0, 1, now=0, is_grat_arp=True)
    assert ml.learn("00:00:00:00:00:aa", 0, "bond0", now=1, is_bond=True) is True


def test_static_entries():
    """static-mac add/del/flush: static entries survive flush and aging and do not move."""
    ml = MacLearning(idle_time=15)
    ml.add_static("50:54:00:00:00:01", 0, 1)
    ml.learn("50:54:00:00:00:02", 0, 2, now=0)
    assert ml.learn("50:54:00:00:00:01", 0, 2, now=1) is False
    assert ml.lookup_port("50:54:00:00:00:01", 0) == 1
    ml.run(1000)
    assert rows(ml) == [(1, 0, "50:54:00:00:00:01")]
    ml.learn("50:54:00:00:00:02", 0, 2, now=1000)
    ml.flush()
    assert rows(ml) == [(1, 0, "50:54:00:00:00:01")]
    assert ml.del_static("50:54:00:00:00:01", 0) is True
    assert ml.del_static("50:54:00:00:00:01", 0) is False
    assert len(ml) == 0


def test_fdb_show_text():
    ml = MacLearning()
    ml.learn("50:54:00:00:00:05", 0, 3, now=10)
    ml.learn("50:54:00:00:00:06", 12, OFPP_LOCAL, now=12)
    ml.add_static("50:54:00:00:00:07", 4095, 17)
    assert ml.format_fdb(now=15) == (
        f"{FDB_SHOW_HEADER}\n"
        "    3     0  50:54:00:00:00:05    5\n"
        "LOCAL    12  50:54:00:00:00:06    3\n"
        "   17  4095  50:54:00:00:00:07  static\n")


def test_flush_signals_revalidation():
    ml = MacLearning()
    ml.learn("00:00:00:00:00:01", 0, 1, now=0)
    assert ml.run(0) is True
    assert ml.run(0) is False
    ml.flush()
    assert ml.run(0) is True and len(ml) == 0


@pytest.mark.parametrize("mac, vlan, message", [
    ("00:00:00:00:00", 0, "expected xx:xx:xx:xx:xx:xx"),
    ("00:00:00:00:00:zz", 0, "hex digits"),
    (b"\x00" * 5, 0, "expected 6"),
    ("00:00:00:00:00:01", 4096, "0..4095"),
])
def test_bad_input(mac, vlan, message):
    with pytest.raises(OfprotoError, match=message):
        MacLearning().learn(mac, vlan, 1, now=0)
