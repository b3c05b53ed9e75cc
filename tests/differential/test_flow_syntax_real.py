"""Differential tests of the flow syntax against ``ovs-ofctl parse-flow(s)`` of OVS 3.1.

``ovs-ofctl`` prints a flow after encoding it for the protocol it chooses and
decoding it again, so each case says which protocol shows OVS's parsed flow
unchanged: OpenFlow 1.0 with NXM (the default; keeps ``mod_*`` and ``load``) or
OpenFlow 1.3 (keeps instructions and ``set_field``). Only the framing
(``NXT_FLOW_MOD (xid=0x1): ADD``) is removed before comparing.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess

import pytest

from ovsnet.ofproto import FlowSyntaxError, parse_flow
from tests.conftest import require_real_ovs

PORTS = {"vm1": 1, "vm2": 2, "uplink": 7, "br-int": 0xFFFE}

# (flow as we parse it, with port names) -- OpenFlow 1.0 + NXM
OF10_CORPUS = [
    "in_port=1,actions=output:2",
    "in_port=vm1,actions=vm2",
    "in_port=LOCAL,actions=NORMAL",
    "priority=0,actions=drop",
    "table=3,priority=65535,cookie=0x1234,idle_timeout=30,hard_timeout=60,actions=FLOOD",
    "dl_src=00:11:22:33:44:55,dl_dst=ff:ff:ff:ff:ff:ff,actions=ALL",
    "eth_src=00:11:22:33:44:55/ff:ff:ff:00:00:00,eth_dst=01:00:00:00:00:00/01:00:00:00:00:00,"
    "actions=LOCAL",
    "dl_type=0x0800,actions=CONTROLLER",
    "dl_type=0x88cc,actions=controller:128",
    "ip,actions=in_port",
    "ipv4,nw_src=10.0.0.0/8,nw_dst=192.168.1.1,actions=output:3",
    "ip,ip_src=10.1.2.3/255.255.0.255,ip_dst=10.0.0.0/255.255.255.0,actions=drop",
    "tcp,tp_src=1024,tp_dst=80,actions=mod_tp_dst:8080",
    "tcp,tcp_src=0x400/0xfc00,tcp_dst=443,actions=mod_tp_src:1",
    "udp,udp_src=53,udp_dst=0x1000/0xf000,actions=output:vm1",
    "sctp,sctp_src=9,sctp_dst=10,actions=drop",
    "icmp,icmp_type=8,icmp_code=0,actions=output:2",
    "arp,arp_op=1,arp_spa=10.0.0.1,arp_tpa=10.0.0.0/24,actions=NORMAL",
    "arp,arp_sha=00:00:00:00:00:01,arp_tha=00:00:00:00:00:00/ff:00:00:00:00:00,actions=drop",
    "rarp,arp_op=3,actions=drop",
    "ipv6,ipv6_src=2001:db8::/32,ipv6_dst=fe80::1,actions=drop",
    "ipv6,ipv6_label=0x12345,actions=drop",
    "ipv6,ipv6_label=0x00001/0x000ff,actions=drop",
    "tcp6,tp_dst=22,actions=drop",
    "udp6,udp_dst=546,actions=drop",
    "sctp6,sctp_dst=1,actions=drop",
    "icmp6,icmpv6_type=135,nd_target=2001:db8::1,nd_sll=00:11:22:33:44:55,actions=drop",
    "icmp6,icmpv6_type=136,icmpv6_code=0,nd_target=::1/64,nd_tll=00:11:22:33:44:55,"
    "actions=drop",
    "icmp6,icmp_type=128,actions=drop",
    "dl_vlan=10,actions=strip_vlan,output:2",
    "dl_vlan=0xffff,actions=mod_vlan_vid:100",
    "dl_vlan=5,dl_vlan_pcp=3,actions=mod_vlan_pcp:7",
    "dl_vlan_pcp=2,actions=drop",
    "vlan_tci=0x1000/0x1000,actions=drop",
    "vlan_tci=0,actions=drop",
    "vlan_tci=0x5005,actions=drop",
    "vlan_vid=0x1005,actions=drop",
    "vlan_vid=0x1000/0x1000,vlan_pcp=4,actions=drop",
    "ip,nw_proto=89,actions=drop",
    "ip,nw_tos=32,nw_ecn=2,nw_ttl=64,actions=mod_nw_tos:16",
    "ip,ip_dscp=46,actions=drop",
    "ip,nw_frag=no,actions=drop",
    "ip,nw_frag=yes,actions=drop",
    "ip,nw_frag=first,actions=drop",
    "ip,nw_frag=later,actions=drop",
    "ip,nw_frag=not_later,actions=drop",
    "tcp,tcp_flags=+syn-ack,actions=drop",
    "tcp,tcp_flags=syn|ack,actions=drop",
    "tcp,tcp_flags=0x12/0xff,actions=drop",
    "tcp,tcp_flags=0,actions=drop",
    "metadata=0x10/0xf0,actions=drop",
    "metadata=0xfedcba9876543210,actions=drop",
    "reg0=5,reg1=0x10/0xff,reg15=0xffffffff,actions=drop",
    "xreg0=1,xreg3=0x100000000/0xffffffff00000000,actions=drop",
    "tun_id=0x5,tun_src=1.1.1.1,tun_dst=2.2.2.0/24,actions=drop",
    "tunnel_id=0x10/0xff,actions=drop",
    "pkt_mark=0,actions=drop",
    "pkt_mark=0x20/0xf0,actions=drop",
    "mpls,mpls_label=5,mpls_tc=2,mpls_bos=1,mpls_ttl=4,actions=pop_mpls:0x0800",
    "mplsm,mpls_label=1048575,actions=drop",
    "ip,actions=push_mpls:0x8847,output:2",
    "tp_dst=80,actions=drop",
    "ip,tp_dst=80,actions=drop",
    "nw_src=10.0.0.1,actions=drop",
    "nd_target=::1,actions=drop",
    "udp,tcp_flags=+syn,actions=drop",
    "arp,nw_tos=4,actions=drop",
    "dl_type=0x1234,dl_src=aa:bb:cc:dd:ee:ff,actions=drop",
    "actions=mod_dl_src:00:11:22:33:44:55,mod_dl_dst:66:77:88:99:aa:bb,output:1",
    "ip,actions=mod_nw_src:1.2.3.4,mod_nw_dst:5.6.7.8",
    "ip,actions=dec_ttl,output:1",
    "ip,actions=dec_ttl(1,2,3)",
    "actions=load:0x5->NXM_NX_REG0[0..3],load:0->NXM_NX_REG1[],load:1->NXM_NX_REG2[31]",
    "actions=load:0xffff->NXM_OF_VLAN_TCI[],load:0x123456789->NXM_NX_TUN_ID[0..47]",
    "actions=load:0x1->OXM_OF_METADATA[5]",
    "actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],move:NXM_NX_REG0[0..15]->NXM_NX_REG1[16..31]",
    "actions=move:reg3[]->tun_id[0..31]",
    "actions=push:NXM_NX_REG0[],pop:NXM_NX_REG1[0..7]",
    "actions=output:NXM_NX_REG0[]",
    "actions=output:NXM_NX_REG1[0..15]",
    "actions=resubmit:3,resubmit(,5),resubmit(vm1,2)",
    "actions=resubmit(2)",
    "actions=set_tunnel:0x5,set_tunnel64:0x6,set_tunnel:0x123456789",
    "actions=note:01.02.03.04.05.06",
    "actions=clone(output:1,clone(mod_vlan_vid:5,output:2)),output:3",
    "actions=clone(drop)",
    "actions=controller(reason=no_match,max_len=100)",
    "actions=controller(id=5,userdata=01.02.03)",
    "actions=controller(pause)",
    "actions=controller(reason=invalid_ttl)",
    "actions=output:65279",
    "actions=output:0",
    "actions=TABLE",
    "actions=output:controller",
    "actions=normal,local,flood,all,in_port",
    "actions=exit",
    "ip,actions=output:1,,output:2",
    "ip,nw_src=10.0.0.300,actions=drop",
    "send_flow_rem,actions=drop",
    "duration=5.2s,n_packets=3,n_bytes=100,actions=drop",
    "in_port=uplink,dl_vlan=100,actions=resubmit(,1)",
    "in_port=br-int,actions=output:uplink",
]

# OpenFlow 1.3 (instructions and set_field survive its encoding unchanged)
OF13_CORPUS = [
    "actions=output:1,goto_table:3",
    "actions=write_metadata:0x5/0xff,goto_table:3",
    "actions=write_metadata:0x1",
    "actions=clear_actions,write_actions(output:1),goto_table:2",
    "actions=resubmit(,2),write_actions(output:1,set_field:00:11:22:33:44:55->eth_dst)",
    "actions=set_field:0x1->reg1,set_field:0x5->reg2",
    "actions=set_field:0x10->tun_id,set_field:1.1.1.1->tun_dst",
    "ip,actions=set_field:10.0.0.0->ip_dst",
    "tcp,actions=set_field:80->tcp_dst",
    "udp6,actions=set_field:53->udp_src",
    "ipv6,actions=set_field:2001:db8::1->ipv6_src",
    "actions=set_field:0x1000->vlan_tci",
    "actions=push_vlan:0x8100,set_field:4101->vlan_vid",
    "dl_vlan=5,actions=pop_vlan",
    "ip,actions=set_field:10.0.0.1->ip_src",
    "actions=set_field:00:11:22:33:44:55->eth_src",
    "metadata=0x5/0xff,actions=goto_table:1",
    "actions=note:aa.bb.cc.dd.ee.ff.00.11.22.33.44.55.66.77",
]

# Flows both must refuse; the second element is the token our message must point at
ERROR_CORPUS = [
    ("foo=1,actions=drop", "foo"),
    ("ip,actions=bogus", "bogus"),
    ("ip", None),
    ("in_port=5/3,actions=drop", "5/3"),
    ("in_port=nosuch,actions=drop", "nosuch"),
    ("dl_src=00:11:22:33:44,actions=drop", "00:11:22:33:44"),
    ("nw_src=10.0.0,actions=drop", "10.0.0"),
    ("ip,nw_src=10.0.0.1/33,actions=drop", "10.0.0.1/33"),
    ("tcp,tp_dst=0x10000,actions=drop", "0x10000"),
    ("tcp,tp_dst=abc,actions=drop", "abc"),
    ("ip,nw_proto=1/0x0f,actions=drop", "1/0x0f"),
    ("ip,nw_frag=bogus,actions=drop", "bogus"),
    ("tcp,tcp_flags=+foo,actions=drop", "+foo"),
    ("priority=70000,actions=drop", "70000"),
    ("idle_timeout=-1,actions=drop", "-1"),
    ("table=300,actions=drop", "300"),
    ("cookie=0x1/0x1,actions=drop", "0x1/0x1"),
    ("actions=output:nosuch", "nosuch"),
    ("actions=output:65280", None),
    ("actions=resubmit:IN_PORT", "IN_PORT"),
    ("actions=resubmit(,1,foo)", "foo"),
    ("actions=mod_vlan_vid:4096", "4096"),
    ("actions=mod_vlan_pcp:8", "8"),
    ("actions=mod_nw_tos:3", "3"),
    ("actions=mod_nw_ecn:4", "4"),
    ("actions=mod_dl_src:zz", "zz"),
    ("actions=mod_nw_src:1.2.3", "1.2.3"),
    ("actions=push_vlan:0x0800", "0x0800"),
    ("actions=set_field:1->foo", "foo"),
    ("actions=set_field:5->nw_proto", "nw_proto"),
    ("actions=set_field:1", "1"),
    ("ip,actions=set_field:1->tcp_dst", None),
    ("actions=set_field:1.2.3.4->ip_src", None),
    ("actions=load:5->NXM_NX_REG0[0..1]", "5"),
    ("actions=load:5->NXM_NX_FOO[]", "NXM_NX_FOO"),
    ("actions=load:5->NXM_NX_REG0[40]", None),
    ("actions=move:NXM_NX_REG0[0..3]->NXM_NX_REG1[0..4]", None),
    ("actions=move:NXM_NX_REG0[]", None),
    ("actions=push:mpls_ttl[]", None),
    ("actions=note:xyz", None),
    ("actions=output:1,drop", "drop"),
    ("actions=goto_table:1,output:2", "output"),
    ("actions=goto_table:1,goto_table:2", "goto_table"),
    ("actions=clone(goto_table:1)", "goto_table"),
    ("actions=apply_actions(output:1)", "apply_actions"),
    ("actions=controller(foo=1)", "foo"),
    ("actions=controller(reason=bogus)", "bogus"),
    ("actions=dec_ttl(,)", None),
    ("actions=resubmit(LOCAL,2,ct)", None),
]


def _ofctl(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "OVS_RUNDIR": str(tmp_path),
           "OVS_LOGDIR": str(tmp_path), "OVS_DBDIR": str(tmp_path)}
    return subprocess.run(["ovs-ofctl", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def _oracle_text(flow: str) -> str:
    """The flow as ovs-ofctl (which has no port map) must be given it: names as numbers."""
    for name, number in sorted(PORTS.items(), key=lambda kv: -len(kv[0])):
        flow = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", str(number), flow)
    return flow


def _strip_framing(line: str) -> str:
    """Drop ``NXT_FLOW_MOD (xid=0x1): ADD`` and ``table:255`` (the "no table" OVS
    prints once any flow in the file names a table)."""
    line = re.sub(r"^.*?FLOW_MOD.*?\(xid=0x[0-9a-f]+\): ADD ", "", line)
    return re.sub(r"^table:255 ", "", line)


def _oracle_many(flows: list[str], tmp_path, protocol: str | None) -> list[str]:
    path = tmp_path / "flows.txt"
    path.write_text("".join(_oracle_text(f) + "\n" for f in flows))
    args = (["-O", protocol] if protocol else []) + ["parse-flows", str(path)]
    r = _ofctl(args, tmp_path)
    assert r.returncode == 0, r.stderr
    lines = [_strip_framing(ln) for ln in r.stdout.splitlines() if "FLOW_MOD" in ln]
    assert len(lines) == len(flows), r.stdout
    return lines


@pytest.fixture(scope="module")
def ofctl_ready():
    require_real_ovs()
    if shutil.which("ovs-ofctl") is None:
        pytest.fail("ovs-ofctl missing although the OVS binaries were found")


def _compare(flows, tmp_path, protocol):
    theirs = _oracle_many(flows, tmp_path, protocol)
    ours = [parse_flow(f, PORTS).format() for f in flows]
    diffs = [(f, o, t) for f, o, t in zip(flows, ours, theirs, strict=True) if o != t]
    return len(flows) - len(diffs), diffs


def test_of10_corpus_identical(ofctl_ready, tmp_path):
    same, diffs = _compare(OF10_CORPUS, tmp_path, None)
    assert not diffs, "\n".join(f"{f}\n  ours:   {o}\n  theirs: {t}" for f, o, t in diffs)
    assert same == len(OF10_CORPUS)


def test_of13_corpus_identical(ofctl_ready, tmp_path):
    same, diffs = _compare(OF13_CORPUS, tmp_path, "OpenFlow13")
    assert not diffs, "\n".join(f"{f}\n  ours:   {o}\n  theirs: {t}" for f, o, t in diffs)


@pytest.mark.parametrize("flow,token", ERROR_CORPUS, ids=[f for f, _ in ERROR_CORPUS])
def test_both_refuse(ofctl_ready, tmp_path, flow, token):
    r = _ofctl(["parse-flow", _oracle_text(flow)], tmp_path)
    assert r.returncode != 0, f"ovs-ofctl accepted {flow!r}: {r.stdout}"
    with pytest.raises(FlowSyntaxError) as info:
        parse_flow(flow, PORTS)
    if token is not None:
        assert info.value.token == token, str(info.value)
    # whatever token OVS's message names, ours names too
    named = re.match(r"ovs-ofctl: ([^:\s]+): ", r.stderr.splitlines()[-1])
    if named:
        assert named.group(1) in info.value.message, (r.stderr, str(info.value))


# -- seeded random flows ----------------------------------------------------------------

def _random_flow(rng: random.Random) -> str:
    proto = rng.choice(["", "ip", "tcp", "udp", "icmp", "arp", "ipv6", "tcp6", "udp6",
                        "icmp6", "sctp", "mpls", "dl_type=0x88cc"])
    parts = [proto] if proto else []
    if rng.random() < 0.3:
        parts.append(f"table={rng.randrange(0, 255)}")
    if rng.random() < 0.5:
        parts.append(f"priority={rng.randrange(0, 65536)}")
    if rng.random() < 0.3:
        parts.append(f"cookie={rng.randrange(1 << 64):#x}")
    if rng.random() < 0.2:
        parts.append(f"idle_timeout={rng.randrange(65536)}")
    if rng.random() < 0.4:
        parts.append(f"in_port={rng.choice(['1', '2', 'vm1', 'uplink', 'LOCAL', '100'])}")
    mac = lambda: ":".join(f"{rng.randrange(256):02x}" for _ in range(6))  # noqa: E731
    ip4 = lambda: ".".join(str(rng.randrange(256)) for _ in range(4))  # noqa: E731
    cands = [
        lambda: f"dl_src={mac()}", lambda: f"dl_dst={mac()}/{mac()}",
        lambda: f"dl_vlan={rng.randrange(4096)}", lambda: f"dl_vlan_pcp={rng.randrange(8)}",
        lambda: f"vlan_tci={rng.randrange(65536):#06x}/{rng.randrange(65536):#06x}",
        lambda: f"reg{rng.randrange(16)}={rng.randrange(1 << 32):#x}/{rng.randrange(1 << 32):#x}",
        lambda: f"metadata={rng.randrange(1 << 64):#x}",
        lambda: f"tun_id={rng.randrange(1 << 64):#x}/{rng.randrange(1 << 64):#x}",
        lambda: f"pkt_mark={rng.randrange(1 << 32):#x}",
        lambda: f"tun_src={ip4()}/{rng.randrange(33)}",
        lambda: f"xreg{rng.randrange(8)}={rng.randrange(1 << 64):#x}",
    ]
    if proto in ("ip", "tcp", "udp", "icmp", "sctp"):
        cands += [lambda: f"nw_src={ip4()}/{rng.randrange(33)}", lambda: f"nw_dst={ip4()}",
                  lambda: f"nw_tos={rng.randrange(64) * 4}", lambda: f"nw_ecn={rng.randrange(4)}",
                  lambda: f"nw_ttl={rng.randrange(256)}",
                  # later fragments with L4 fields: OVS's own NXM round trip fails
                  lambda: f"nw_frag={rng.choice(['no', 'yes', 'first', 'not_later'])}"]
    if proto in ("ipv6", "tcp6", "udp6", "icmp6"):
        cands += [lambda: f"ipv6_src=2001:db8::{rng.randrange(65536):x}/{rng.randrange(129)}",
                  lambda: f"ipv6_label={rng.randrange(1 << 20):#x}"]
    if proto in ("tcp", "udp", "sctp", "tcp6", "udp6"):
        cands += [lambda: f"tp_src={rng.randrange(65536)}",
                  lambda: f"tp_dst={rng.randrange(65536):#x}/{rng.randrange(1, 65536):#x}"]
    if proto in ("tcp", "tcp6"):
        cands.append(lambda: f"tcp_flags={rng.randrange(4096):#x}/{rng.randrange(4096):#x}")
    if proto in ("icmp", "icmp6"):
        cands += [lambda: f"icmp_type={rng.randrange(256)}", lambda: f"icmp_code={rng.randrange(256)}"]
    if proto == "arp":
        cands += [lambda: f"arp_op={rng.randrange(256)}", lambda: f"arp_spa={ip4()}",
                  lambda: f"arp_tha={mac()}"]
    if proto == "mpls":
        cands += [lambda: f"mpls_label={rng.randrange(1 << 20)}", lambda: f"mpls_tc={rng.randrange(8)}",
                  lambda: f"mpls_ttl={rng.randrange(256)}"]
    for make in rng.sample(cands, k=min(len(cands), rng.randrange(0, 5))):
        parts.append(make())
    acts = [
        lambda: f"output:{rng.randrange(1, 65280)}", lambda: "NORMAL", lambda: "vm2",
        lambda: f"mod_dl_src:{mac()}", lambda: f"mod_vlan_vid:{rng.randrange(4096)}",
        lambda: f"mod_vlan_pcp:{rng.randrange(8)}", lambda: "strip_vlan",
        lambda: f"load:{rng.randrange(1 << 16):#x}->NXM_NX_REG{rng.randrange(16)}[0..15]",
        lambda: f"move:NXM_NX_REG{rng.randrange(16)}[]->NXM_NX_REG{rng.randrange(16)}[]",
        lambda: f"resubmit(,{rng.randrange(255)})", lambda: f"set_tunnel:{rng.randrange(1 << 40):#x}",
        lambda: f"push:NXM_NX_REG{rng.randrange(16)}[]", lambda: f"controller:{rng.randrange(65536)}",
        lambda: f"note:{'.'.join(f'{rng.randrange(256):02x}' for _ in range(6))}",
        lambda: f"clone(output:{rng.randrange(1, 100)})",
    ]
    if proto in ("ip", "tcp", "udp", "icmp", "sctp"):
        acts += [lambda: f"mod_nw_dst:{ip4()}", lambda: "dec_ttl",
                 lambda: f"mod_nw_tos:{rng.randrange(64) * 4}"]
    if proto in ("tcp", "udp"):
        acts.append(lambda: f"mod_tp_dst:{rng.randrange(65536)}")
    chosen = [rng.choice(acts)() for _ in range(rng.randrange(0, 4))]
    parts.append("actions=" + (",".join(chosen) if chosen else "drop"))
    return ",".join(parts)


def random_flows(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    return [_random_flow(rng) for _ in range(n)]


def test_random_flows_identical(ofctl_ready, tmp_path):
    flows = random_flows(20260101, 300)
    same, diffs = _compare(flows, tmp_path, None)
    assert not diffs, f"{same}/{len(flows)} identical\n" + "\n".join(
        f"{f}\n  ours:   {o}\n  theirs: {t}" for f, o, t in diffs[:20])
