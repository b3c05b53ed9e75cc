"""``ovsnet trace``: ofproto/trace text and JSON on a topology's switch; errors exit 2."""

from __future__ import annotations

import json

import pytest

from ovsnet.cli import main
from ovsnet.ofproto.bridge import Bridge, connect_patch
from ovsnet.ofproto.of_flow import OfFlow
from ovsnet.ofproto.trace import trace_text, trace_tree
from ovsnet.ofproto.xlate import xlate

SINGLE = "topologies/single-bridge.yaml"
VXLAN = "topologies/two-hosts-vxlan.yaml"


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_text_has_ofproto_trace_blocks(capsys):
    code, out, err = run(capsys, "trace", SINGLE, "--bridge", "br0", "in_port=p1,tcp,nw_dst=10.0.0.1")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("Flow: tcp,in_port=1,vlan_tci=0x0000,")
    assert lines[1:4] == ["", 'bridge("br0")', "-------------"]
    assert lines[4] == " 0. priority 0" and lines[5] == "    NORMAL"
    assert lines[6] == "     -> no learned MAC for destination, flooding"
    assert "Final flow: unchanged" in lines
    assert any(x.startswith("Megaflow: recirc_id=0,eth,") for x in lines)
    # flooded to p2, p3, p4 and LOCAL (datapath ports 3, 4, 5, 1)
    assert lines[-1] == "Datapath actions: 3,4,5,1"


def test_generate_learns_across_flows_json(capsys):
    a, b = "00:00:00:00:00:0a", "00:00:00:00:00:0b"
    flows = [f"in_port=p1,dl_src={a},dl_dst={b}", f"in_port=p2,dl_src={b},dl_dst={a}"]
    code, out, _ = run(capsys, "trace", SINGLE, "--bridge", "br0", "--format", "json",
                       "--generate", *flows)
    assert code == 0
    docs = json.loads(out)
    assert len(docs) == 2
    assert docs[0]["datapath_actions"] == "3,4,5,1"
    assert docs[1]["datapath_actions"] == "2"  # p1 was learned by the first trace
    assert docs[1]["ports"] == {"0": "ovs-system", "1": "br0", "2": "p1", "3": "p2",
                                "4": "p3", "5": "p4"}
    assert {"flow", "megaflow", "bridge", "tables", "final_flow", "errors", "slow"} <= set(docs[0])
    # without --generate nothing is learned
    code, out, _ = run(capsys, "trace", SINGLE, "--bridge", "br0", "--format", "json", *flows)
    assert json.loads(out)[1]["datapath_actions"] == "2,4,5,1"  # floods from p2


def test_odp_flow_enters_the_bridge_owning_its_port(capsys):
    # hv1: datapath port 2 is tapvm1-eth0 on br-int (access VLAN 1), through the patch to br-tun
    flow = ("in_port(2),eth(src=fa:16:3e:00:01:01,dst=ff:ff:ff:ff:ff:ff),eth_type(0x0800),"
            "ipv4(src=10.0.1.11,dst=10.0.1.12,proto=1,tos=0,ttl=64,frag=no),icmp(type=8,code=0)")
    code, out, err = run(capsys, "trace", VXLAN, "--bridge", "br-int", "--host", "hv1",
                         "--format", "json", flow)
    assert code == 0, err
    (doc,) = json.loads(out)
    assert doc["bridge"] == "br-int" and doc["flow"].startswith("icmp,in_port=1,")
    assert {t["bridge"] for t in doc["tables"]} == {"br-int", "br-tun"}


@pytest.mark.parametrize("args, needle", [
    (["--bridge", "br9", "in_port=1"], "no host of"),
    (["--bridge", "br0", "--host", "hostX", "in_port=1"], "no host 'hostX'"),
    (["--bridge", "br0", "in_port=p9"], "FLOW 1 (OpenFlow syntax)"),
    (["--bridge", "br0", "in_port=1,ip,nw_dst=zz"], "^^"),
    (["--bridge", "br0", "in_port(1),eth(src=zz)"], "FLOW 1 (ODP syntax)"),
    (["--bridge", "br0", "in_port(77),eth_type(0x0800)"], "no bridge has datapath port 77"),
])
def test_bad_input_exits_2(capsys, args, needle):
    code, _out, err = run(capsys, "trace", SINGLE, *args)
    assert code == 2
    assert needle in err and "Traceback" not in err


def test_tree_indents_like_ofproto_trace():
    """A table reached by a resubmit that more actions follow is indented one level
    more, with its actions two more; a patch peer's bridge block hangs under the output
    (oftrace_node_print_details). The expected text is what ovs-vswitchd 3.1 prints for
    the same tables; without port maps, ports in actions keep their names."""
    br = Bridge("br0", local_odp_port=100)
    for n in (1, 2, 3):
        br.add_port(f"p{n}", n, n)
    br1 = Bridge("br1", local_odp_port=101)
    br1.add_port("p4", 4, 4)
    connect_patch(br, "patch-br1", 9, br1, "patch-br0", 9)
    br1.add_flow("actions=output:4")
    br.add_flow("in_port=1,actions=resubmit(,1),output:2")
    br.add_flow("table=1,actions=output:3,resubmit(,2)")
    br.add_flow("table=2,actions=output:9")
    result = xlate(br, OfFlow(in_port=1))
    maps = {b.name: b.port_map for b in (br, br1)}
    assert trace_text("br0", result, maps) == """\
Flow: in_port=1,vlan_tci=0x0000,dl_src=00:00:00:00:00:00,dl_dst=00:00:00:00:00:00,dl_type=0x0000

bridge("br0")
-------------
 0. in_port=1, priority 32768
    resubmit(,1)
     1. priority 32768
            output:3
            resubmit(,2)
         2. priority 32768
            output:9

        bridge("br1")
        -------------
         0. priority 32768
            output:4
    output:2

Final flow: unchanged
Megaflow: recirc_id=0,eth,in_port=1,dl_type=0x0000
Datapath actions: 3,4,2
"""
    assert "    output:p2\n" in trace_text("br0", result)
    assert trace_tree("br0", result.trace)[0].children[0].text.startswith(" 0.")


def test_syntax_error_shows_the_flow_as_given(capsys):
    code, _out, err = run(capsys, "trace", SINGLE, "--bridge", "br0", "in_port=p1,tcp,tp_dst=zz")
    assert code == 2
    assert "column 23: zz" in err and "in_port=p1,tcp,tp_dst=zz\n" in err and "actions" not in err


def test_bridge_on_several_hosts_needs_host(capsys):
    code, _out, err = run(capsys, "trace", VXLAN, "--bridge", "br-int", "in_port=1")
    assert code == 2 and "choose one with --host" in err
