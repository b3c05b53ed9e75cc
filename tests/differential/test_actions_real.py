"""ovsnet's action executor against Open vSwitch 3.1 executing the same datapath actions.

A private sandbox (ovsdb-server + ovs-vswitchd with the dummy datapath) gets
OpenFlow flows chosen to produce the datapath actions under test (set of
ipv4/ipv6/tcp/udp/sctp/eth, push/pop VLAN and MPLS, dec_ttl, trunc,
check_pkt_len, clone, several outputs). A packet is injected with
``netdev-dummy/receive``; the datapath actions OVS installed are read back
with ``dpctl/dump-flows`` and parsed into their netlink encoding; ovsnet
executes them on the same packet and must produce the bytes OVS wrote to
each port's ``tx_pcap``.

Revalidators stay paused and every case purges the datapath first, so the
one megaflow in the dump is the one this packet installed; ``receive`` returns
once OVS has processed the packet (see tests/differential/ovs_sandbox.py).
Each case runs in OVS once; both implementations are compared with it.

OVS here is dpif-netdev, the userspace datapath, which ovsnet does not
model: the agreement checked is on the cases where it and the kernel module
do the same thing (everything below). Where they differ (the kernel keeps the
outer VLAN tag outside ``skb->len`` for trunc and check_pkt_len; the kernel's
hash is skb_get_hash) the unit tests cover the kernel's behaviour.

Without the binaries the tests skip, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os

import pytest
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.sctp import SCTP

from ovsnet.datapath import actions as A
from ovsnet.datapath import flow_key as FK
from ovsnet.datapath.pcap import read_pcap
from tests.differential.ovs_sandbox import OvsSandbox

odp = pytest.importorskip("ovsnet.datapath.odp")

MAC_A, MAC_B = "00:1b:21:3c:4d:5e", "52:54:00:ab:cd:ef"
PORTS = (1, 2, 3)
PAYLOAD = bytes(range(40))


def _udp(**kw):
    return Ether(src=MAC_A, dst=MAC_B) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000, dport=2000, **kw) / PAYLOAD


def _tcp():
    return Ether(src=MAC_A, dst=MAC_B) / IP(src="10.0.0.1", dst="10.0.0.2", ttl=64) / TCP(sport=1000, dport=80) / PAYLOAD


def _v6(l4):
    return Ether(src=MAC_A, dst=MAC_B) / IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=64) / l4


#: name -> (OpenFlow flows, packet); the first flow's table 0 matches in_port=1
CASES = {
    "ipv4_src_udp_dst": (["ip,actions=mod_nw_src:10.9.9.9,mod_tp_dst:99,output:2"], _udp()),
    "ipv4_src_udp_no_csum": (["ip,actions=mod_nw_src:10.9.9.9,mod_tp_src:7,output:2"], _udp(chksum=0)),
    "ipv4_dst_tos_ttl_tcp": (["ip,actions=mod_nw_dst:172.16.0.9,mod_nw_tos:184,dec_ttl,output:2"], _tcp()),
    "tcp_ports": (["tcp,actions=mod_tp_src:4444,mod_tp_dst:5555,output:2"], _tcp()),
    "icmp_addr": (["ip,actions=mod_nw_src:10.7.7.7,output:2"],
                  Ether(src=MAC_A, dst=MAC_B) / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP() / PAYLOAD),
    "sctp_port": (["sctp,actions=set_field:5000->sctp_dst,output:2"],
                  Ether(src=MAC_A, dst=MAC_B) / IP(src="10.0.0.1", dst="10.0.0.2") / SCTP(sport=1, dport=2) / PAYLOAD),
    "eth_addrs": (["actions=mod_dl_src:aa:bb:cc:dd:ee:ff,mod_dl_dst:11:22:33:44:55:66,output:2"], _udp()),
    "push_vlan": (["actions=mod_vlan_vid:10,mod_vlan_pcp:5,output:2"], _udp()),
    "strip_vlan": (["actions=strip_vlan,output:2"],
                   Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=7) / IP() / UDP() / PAYLOAD),
    "push_qinq": (["actions=push_vlan:0x88a8,set_field:4097->vlan_vid,output:2"],
                  Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=7) / IP() / UDP() / PAYLOAD),
    "push_mpls": (["ip,actions=push_mpls:0x8847,set_field:100->mpls_label,output:2"], _udp()),
    "pop_mpls": (["mpls,actions=pop_mpls:0x0800,output:2"],
                 Ether(src=MAC_A, dst=MAC_B, type=0x8847) / MPLS(label=20, s=1, ttl=9) / IP() / UDP() / PAYLOAD),
    "ipv6_tcp": (["ipv6,actions=set_field:2001:db8::99->ipv6_src,set_field:2001:db8::77->ipv6_dst,output:2"],
                 _v6(TCP(sport=1, dport=2) / PAYLOAD)),
    "ipv6_udp_label_hlimit": (["ipv6,actions=set_field:2001:db8::99->ipv6_src,set_field:0x12345->ipv6_label,"
                               "dec_ttl,output:2"], _v6(UDP(sport=1, dport=2) / PAYLOAD)),
    "ipv6_icmp": (["ipv6,actions=set_field:2001:db8::55->ipv6_dst,output:2"],
                  _v6(ICMPv6EchoRequest(data=PAYLOAD))),
    "two_outputs": (["ip,actions=mod_nw_src:10.1.1.1,output:2,mod_nw_src:10.2.2.2,mod_tp_dst:7,output:3"], _udp()),
    "trunc": (["actions=output(port=2,max_len=60),output:3"], _udp()),
    "check_pkt_len": (["actions=check_pkt_larger(80)->NXM_NX_REG0[0],resubmit(,1)",
                       "table=1,reg0=1,actions=output:2", "table=1,reg0=0,actions=mod_tp_dst:1,output:3"],
                      _udp()),
    "check_pkt_len_small": (["actions=check_pkt_larger(200)->NXM_NX_REG0[0],resubmit(,1)",
                             "table=1,reg0=1,actions=output:2", "table=1,reg0=0,actions=mod_tp_dst:1,output:3"],
                            _udp()),
    "clone": (["ip,actions=clone(mod_nw_src:10.5.5.5,output:2),output:3"], _udp()),
    "drop": (["ip,actions=drop"], _udp()),
    "check_pkt_len_drop_branch": (["actions=check_pkt_larger(80)->NXM_NX_REG0[0],resubmit(,1)",
                                   "table=1,reg0=1,actions=drop", "table=1,reg0=0,actions=output:3"],
                                  _udp()),
}
#: the cases whose datapath actions send nothing
SEND_NOTHING = {"drop", "check_pkt_len_drop_branch"}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    sb = OvsSandbox(str(tmp_path_factory.mktemp("ovs")))
    try:
        sb.start()
        args = ["add-br", "br0", "--", "set", "bridge", "br0", "datapath-type=dummy",
                "fail-mode=secure", "protocols=OpenFlow10,OpenFlow13"]
        for n in PORTS:
            args += ["--", "add-port", "br0", f"p{n}", "--", "set", "Interface", f"p{n}", "type=dummy",
                     f"ofport_request={n}", f"options:tx_pcap={_pcap(sb, n)}"]
        sb.vsctl(*args)
        # With the revalidators parked, the datapath flows are exactly those
        # the test's own packets install: none is deleted, modified or left
        # behind from the previous case by a revalidator running concurrently.
        sb.pause_revalidators()
        yield sb
    finally:
        sb.stop()


def _pcap(sb: OvsSandbox, n: int) -> str:
    return os.path.join(sb.root, f"p{n}-tx.pcap")


def _sent(sb: OvsSandbox) -> dict[int, list[bytes]]:
    return {n: read_pcap(_pcap(sb, n)) if os.path.exists(_pcap(sb, n)) else [] for n in PORTS}


@pytest.fixture(scope="module")
def ovs_results(sandbox):
    """case -> (datapath actions text, frames OVS sent per port); each case runs in OVS once."""
    results: dict[str, tuple[str, dict[int, list[bytes]]]] = {}

    def get(case: str) -> tuple[str, dict[int, list[bytes]]]:
        if case not in results:
            results[case] = _run_in_ovs(sandbox, *CASES[case])
        return results[case]
    return get


def _run_in_ovs(sb: OvsSandbox, flows: list[str], packet) -> tuple[str, dict[int, list[bytes]]]:
    sb.ofctl("del-flows", "br0")
    for i, flow in enumerate(flows):
        # push_vlan needs OpenFlow 1.1+; mod_nw_src and friends exist only in 1.0
        proto = ["-O", "OpenFlow13"] if "push_vlan:" in flow else []
        sb.ofctl(*proto, "add-flow", "br0", flow if i else f"in_port=1,{flow}")
    # No datapath flow of the previous case may catch the packet.
    sb.purge_datapath()
    assert "actions:" not in sb.appctl("dpctl/dump-flows")
    before = _sent(sb)
    sb.receive("p1", bytes(packet))
    after = _sent(sb)
    dump = [line for line in sb.appctl("dpctl/dump-flows").splitlines() if "actions:" in line]
    assert len(dump) == 1, dump
    return dump[0].split("actions:", 1)[1].strip(), {n: after[n][len(before[n]):] for n in PORTS}


@pytest.mark.real_ovs
@pytest.mark.parametrize(("case", "flows", "packet"), [(name, *c) for name, c in CASES.items()],
                         ids=list(CASES))
@pytest.mark.parametrize("impl_name", ["python", "cython"])
def test_same_bytes_as_ovs(ovs_results, case, flows, packet, impl_name):
    impl = A.reference if impl_name == "python" else A.native
    if impl is None:
        pytest.skip("ovsnet._actions is not built")
    packet = bytes(packet)
    text, theirs = ovs_results(case)
    actions = odp.parse_actions(text)
    res = impl.execute(packet, FK.extract(packet, 1), actions)
    ours = {n: [o.packet for o in res.outputs if o.port == n] for n in PORTS}
    assert ours == theirs, f"datapath actions: {text}"
    if case in SEND_NOTHING:
        assert "drop" in text and not any(theirs.values()), f"datapath actions: {text}"
    else:
        assert any(theirs.values()), "the case sent nothing: it tests nothing"
