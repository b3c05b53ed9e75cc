"""The datapath object: lookup, upcalls, install, execute, counters; both cores.

One test body runs against the compiled core and the pure-Python reference
(``impl`` fixture), and the differential tests feed both the same packets.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether

from ovsnet.datapath.datapath import (
    IMPLEMENTATIONS,
    Datapath,
    DropHandler,
    OutputHandler,
    Upcall,
    UpcallReply,
    flow_hash_5tuple,
    mask_of,
)
from ovsnet.datapath.flow_key import KEY_SIZE, FlowKey, extract
from ovsnet.datapath.odp_attrs import ActionAttr, UserspaceAttr, nla, nla_nested, nla_u32
from ovsnet.datapath.packet import PacketBatch
from ovsnet.errors import DatapathError, PacketError


def test_compiled_core_is_built_in_ci():
    if os.environ.get("CI") == "true":
        assert "cython" in IMPLEMENTATIONS


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request):
    return request.param


def out(port):
    return nla_u32(ActionAttr.OUTPUT, port)


def udp(src="10.0.0.1", dst="10.0.0.2", sport=1000, dport=53, smac="02:00:00:00:00:01"):
    return bytes(Ether(src=smac, dst="02:00:00:00:00:02") / IP(src=src, dst=dst)
                 / UDP(sport=sport, dport=dport) / (b"x" * 18))


class Recorder:
    """An upcall handler that records what it was given and answers ``reply``."""

    def __init__(self, reply):
        self.reply = reply
        self.calls: list[list[Upcall]] = []

    def __call__(self, upcalls):
        self.calls.append(list(upcalls))
        return [self.reply(u) for u in upcalls]


class Clock:
    def __init__(self, now=1000):
        self.now = now

    def __call__(self):
        return self.now


def make_dp(impl, handler=None, **kw):
    dp = Datapath(kw.pop("dp_type", "system"), handler=handler, implementation=impl, **kw)
    for p in (1, 2, 3):
        dp.add_port(f"p{p}", port_no=p)
    return dp


def test_miss_upcall_installs_and_executes_then_hits(impl):
    handler = Recorder(lambda u: UpcallReply(out(2), mask_of("in_port", "nw_dst")))
    dp = make_dp(impl, handler, clock=Clock())
    first = dp.receive(udp(), 1)
    assert [(o.port, o.packet) for o in first.outputs] == [(2, udp())]
    assert (first.hit, first.missed, first.installed) == (0, 1, 1)
    (call,) = handler.calls
    assert call[0].kind == "miss" and call[0].key == extract(udp(), 1)
    # Another source port: same megaflow (only in_port and nw_dst matter).
    second = dp.receive(udp(sport=4242), 1)
    assert [o.port for o in second.outputs] == [2] and second.hit == 1
    assert len(handler.calls) == 1
    s = dp.stats()
    assert (s.hit, s.missed, s.lost, s.flows, s.masks, s.upcalls) == (1, 1, 0, 1, 1, 1)
    (flow,) = dp.flows()
    assert (flow.packets, flow.bytes) == (1, len(udp()))


def test_misses_of_a_batch_are_handed_up_once(impl):
    handler = Recorder(lambda u: UpcallReply(out(3), mask_of("in_port", "nw_src")))
    dp = make_dp(impl, handler)
    packets = [udp(src=f"10.0.0.{i}") for i in range(1, 6)] * 2
    batch = PacketBatch.from_packets(packets, 1)
    result = dp.process(batch)
    # 5 distinct sources: all 10 miss in the same batch, handed up in one call.
    assert len(handler.calls) == 1 and len(handler.calls[0]) == 10
    assert result.missed == 10 and result.installed == 5 and len(result.outputs) == 10
    again = dp.process(batch)
    assert again.hit == 10 and again.missed == 0 and len(handler.calls) == 1


def test_without_handler_misses_are_lost(impl):
    dp = make_dp(impl)
    r = dp.receive(udp(), 1)
    assert r.outputs == [] and r.lost == 1
    assert dp.stats().lost == 1 and dp.stats().flows == 0


def test_drop_handler_installs_a_drop_flow(impl):
    dp = make_dp(impl, DropHandler())
    assert dp.receive(udp(), 1).outputs == []
    assert dp.receive(udp(dst="10.9.9.9"), 1).hit == 1
    (flow,) = dp.flows()
    assert flow.actions == b""


def test_flow_limit_executes_without_installing(impl):
    handler = OutputHandler(2, mask_fields=("in_port", "nw_src"))
    dp = make_dp(impl, handler, flow_limit=2)
    for i in range(4):
        r = dp.receive(udp(src=f"10.0.1.{i}"), 1)
        assert [o.port for o in r.outputs] == [2]
    s = dp.stats()
    assert s.flows == 2 and s.flow_limit_hit == 2 and s.missed == 4


def test_idle_flows_expire(impl):
    clock = Clock(1000)
    dp = make_dp(impl, OutputHandler(2, ("in_port", "nw_src")), clock=clock, max_idle_ms=500)
    dp.receive(udp(src="10.0.0.1"), 1)
    clock.now = 1400
    dp.receive(udp(src="10.0.0.2"), 1)
    clock.now = 1600
    expired = dp.expire()
    assert len(expired) == 1 and len(dp.flows()) == 1
    # The upcalled packet is executed, not counted in the new flow's stats.
    (flow,) = dp.flows()
    assert (flow.created_ms, flow.used_ms, flow.packets) == (1400, 0, 0)


def test_flow_put_get_delete_and_stats(impl):
    dp = make_dp(impl, clock=Clock(5000))
    tcp = bytes(Ether() / IP(dst="10.0.0.9") / TCP(flags="S"))
    ufid = dp.flow_put(extract(tcp, 1), mask_of("in_port", "nw_dst"), out(3))
    assert len(ufid) == 16
    r = dp.receive(tcp, 1)
    assert [o.port for o in r.outputs] == [3]
    (flow,) = dp.flows()
    assert flow.ufid == ufid and flow.tcp_flags == 0x002 and flow.used_ms == 5000
    dp.flow_del(ufid)
    assert dp.flows() == [] and dp.receive(tcp, 1).lost == 1


def test_bad_actions_are_refused_before_install(impl):
    dp = make_dp(impl)
    with pytest.raises(DatapathError):
        dp.flow_put(extract(udp(), 1), mask_of("in_port"), b"\x08\x00\x01")
    assert dp.flows() == []


def test_bad_batches_raise_before_the_loop(impl):
    dp = make_dp(impl, OutputHandler(2))
    data = np.zeros((2, 64), dtype=np.uint8)
    with pytest.raises(PacketError, match="dtype"):
        dp.process_arrays(data, np.zeros(2, dtype=np.int64), np.zeros(2, dtype=np.uint32))
    with pytest.raises(PacketError, match="length 65"):
        dp.process_arrays(data, np.array([64, 65], dtype=np.int32), np.zeros(2, dtype=np.uint32))
    with pytest.raises(PacketError, match="n=3"):
        dp.process_arrays(data, np.zeros(2, dtype=np.int32), np.zeros(2, dtype=np.uint32), 3)
    assert dp.stats().packets == 0


def test_userspace_action_makes_an_action_upcall(impl):
    handler = Recorder(lambda u: None)
    dp = make_dp(impl, handler)
    action = nla_nested(ActionAttr.USERSPACE, nla_u32(UserspaceAttr.PID, 7),
                        nla(UserspaceAttr.USERDATA, b"cookie01"))
    dp.flow_put(extract(udp(), 1), mask_of("in_port"), action + out(2))
    r = dp.receive(udp(), 1)
    assert [o.port for o in r.outputs] == [2]
    (up,) = r.upcalls
    assert (up.kind, up.pid, up.userdata, up.packet) == ("action", 7, b"cookie01", udp())
    assert handler.calls == [[up]]


def test_recirculation_looks_the_packet_up_again(impl):
    dp = make_dp(impl)
    key = extract(udp(), 1)
    dp.flow_put(key, mask_of("in_port", "recirc_id"), nla_u32(ActionAttr.RECIRC, 5))
    rkey = extract(udp(), 1, recirc_id=5)
    dp.flow_put(rkey, mask_of("recirc_id"), out(3))
    r = dp.receive(udp(), 1)
    assert [o.port for o in r.outputs] == [3]
    s = dp.stats()
    assert s.recirculations == 1 and s.hit == 2 and s.flows == 2


def test_netdev_datapath_has_an_emc(impl):
    dp = make_dp(impl, OutputHandler(2, ("in_port", "nw_src")), dp_type="netdev",
                 emc_insert_inv_prob=1)
    assert dp.name == "ovs-netdev" and dp.port(0).name == "ovs-netdev"
    dp.receive(udp(), 1)  # miss, upcall, install
    dp.receive(udp(), 1)  # megaflow hit, inserted into the EMC (probability 1)
    dp.receive(udp(), 1)  # EMC hit
    s = dp.stats()
    assert (s.missed, s.megaflow_hit, s.emc_hit) == (1, 1, 1)


def test_ports_are_numbered_like_the_kernel(impl):
    dp = Datapath(implementation=impl)
    assert dp.port(0).name == "ovs-system"
    assert dp.add_port("eth0") == 1 and dp.add_port("tap0") == 2
    dp.del_port("eth0")
    assert dp.add_port("tap1") == 1
    with pytest.raises(DatapathError, match="already exists"):
        dp.add_port("tap0")
    with pytest.raises(DatapathError, match="taken"):
        dp.add_port("x", port_no=2)


def test_run_bursts_matches_process(impl):
    handler = OutputHandler(2, ("in_port", "nw_src", "tp_src"))
    dp = make_dp(impl, handler)
    frames = [udp(src=f"10.1.0.{i % 7}", sport=1000 + i % 5) for i in range(100)]
    batch = PacketBatch.from_packets(frames, 1, slot_size=128)
    order = np.arange(100, dtype=np.uint32)[::-1].copy()
    packets, outputs = dp.run_bursts(batch.data, batch._lengths, batch._in_ports, order, burst=8)
    assert (packets, outputs) == (100, 100)
    s = dp.stats()
    assert s.missed == 35 and s.hit == 65 and s.flows == 35


def test_flow_hash_5tuple_matches_the_compiled_one():
    if "cython" not in IMPLEMENTATIONS:
        pytest.skip("compiled core not built")  # CI asserts it is built
    from ovsnet import _datapath

    for pkt in (udp(), bytes(Ether() / IP() / ICMP()), bytes(Ether() / ARP()),
                bytes(Ether(type=0x1234) / (b"x" * 30))):
        key = extract(pkt, 1).raw
        assert flow_hash_5tuple(key, 7) == _datapath.flow_hash_5tuple(key, 7)


# ---------------------------------------------------------------------------
# Differential: the compiled core and the reference agree
# ---------------------------------------------------------------------------


def _run_both(batches, handler_fields, dp_type="system"):
    results = {}
    for impl in IMPLEMENTATIONS:
        dp = Datapath(dp_type, handler=OutputHandler(2, handler_fields), implementation=impl,
                      clock=Clock(), emc_insert_inv_prob=1)
        seen = []
        for frames in batches:
            r = dp.process(PacketBatch.from_packets(frames, 1, slot_size=256))
            seen.append(([(o.port, o.packet) for o in r.outputs], r.hit, r.missed, r.installed))
        flows = sorted((f.key, f.mask, f.actions, f.packets, f.bytes) for f in dp.flows())
        s = dp.stats()
        results[impl] = (seen, flows, s.hit, s.missed, s.mask_hit, s.emc_hit, s.flows)
    return results


@pytest.mark.skipif(len(IMPLEMENTATIONS) < 2, reason="compiled core not built")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batches=st.lists(st.lists(st.binary(min_size=0, max_size=200), min_size=1, max_size=40),
                     min_size=1, max_size=4),
    fields=st.sampled_from([("in_port",), ("in_port", "dl_dst"), ("dl_type", "nw_src"),
                            ("in_port", "nw_proto", "tp_dst")]),
    dp_type=st.sampled_from(["system", "netdev"]),
)
def test_random_bytes_same_answer_from_both_cores(batches, fields, dp_type):
    r = _run_both(batches, fields, dp_type)
    assert r["python"] == r["cython"]


@pytest.mark.skipif(len(IMPLEMENTATIONS) < 2, reason="compiled core not built")
def test_realistic_traffic_same_answer_from_both_cores():
    frames = []
    for i in range(300):
        frames.append(udp(src=f"10.0.{i % 3}.{i % 11}", sport=i % 13, smac=f"02:00:00:00:01:{i % 4:02x}"))
        frames.append(bytes(Ether() / IP(dst=f"10.2.0.{i % 5}") / TCP(dport=i % 3, flags="SA")))
        frames.append(bytes(Ether() / ARP(pdst=f"10.3.0.{i % 2}")))
    batches = [frames[k : k + 32] for k in range(0, len(frames), 32)]
    for fields in (("in_port", "nw_src", "tp_src"), ("dl_src", "dl_type")):
        for dp_type in ("system", "netdev"):
            r = _run_both(batches, fields, dp_type)
            assert r["python"] == r["cython"]
            assert r["python"][1], "flows were installed"


def test_keys_in_upcalls_are_flow_keys(impl):
    handler = Recorder(lambda u: None)
    dp = make_dp(impl, handler)
    dp.receive(b"\x01" * 20, 2)
    (up,) = handler.calls[0]
    assert isinstance(up.key, FlowKey) and len(up.key.raw) == KEY_SIZE and up.key.in_port == 2
    assert dp.stats().lost == 1


def test_flows_by_key_and_mask_get_set_delete(impl):
    dp = make_dp(impl, clock=Clock(100))
    key, m = extract(udp(), 1), mask_of("in_port", "nw_dst")
    ufid = dp.flow_put(key, m, out(2))
    assert dp.flow_get(key=key, mask=m).ufid == ufid
    dp.receive(udp(), 1)
    assert dp.flow_get(ufid).packets == 1
    dp.flow_set(out(3), key=key, mask=m)
    assert [o.port for o in dp.receive(udp(), 1).outputs] == [3]
    assert dp.flow_get(ufid).packets == 2
    dp.flow_set(out(2), ufid, clear_stats=True)
    assert dp.flow_get(ufid).packets == 0
    with pytest.raises(DatapathError):
        dp.flow_set(b"\x05\x00", ufid)           # malformed actions: refused, flow unchanged
    assert dp.flow_get(ufid).actions == out(2)
    with pytest.raises(DatapathError, match="ENOENT"):
        dp.flow_del(key=key, mask=mask_of("in_port"))
    with pytest.raises(DatapathError, match="not both"):
        dp.flow_del(ufid, key=key, mask=m)
    dp.flow_del(key=key, mask=m)
    assert dp.flows() == []
    with pytest.raises(DatapathError, match="ENOENT"):
        dp.flow_get(ufid)
    dp.flow_put(key, m, out(2))
    dp.flow_put(key, mask_of("in_port"), out(3))
    assert dp.flow_flush() == 2 and dp.flows() == [] and dp.stats().masks == 0
