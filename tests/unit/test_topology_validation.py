"""Each validation rule of topology files: one bad snippet, one precise diagnostic."""

from __future__ import annotations

from pathlib import Path

import pytest

from ovsnet.errors import Diagnostic, TopologyError
from ovsnet.topology import load_topology, load_topology_text, validate_file
from ovsnet.topology.loader import analyse_text

DATA = Path(__file__).parent / "data"
LONG = "x" * 100

HOST_PORT = "name: x\nhosts:\n  hv1:\n    bridges:\n      br0:\n        ports:\n          {}\n"
VM1 = "      vm1: {nics: {eth0: {mac: '52:54:00:00:00:01'}}}\n"


def port(spec: str) -> str:
    """A one-host, one-bridge file whose only port line (line 7, column 11) is ``spec``."""
    return HOST_PORT.format(spec)


# (id, yaml, "line:column", dotted path, message substring)
CASES = [
    # --- YAML level -------------------------------------------------------------
    ("syntax", "name: x\nhosts: [a, b\n", "3:1", "", "expected ',' or ']'"),
    ("multi-document", "name: x\n---\nname: y\n", "2:1", "", "one YAML document"),
    ("empty", "", "1:1", "", "empty document"),
    (
        "duplicate-key",
        "name: x\nhosts:\n  hv1: {}\n  hv1: {}\n",
        "4:3",
        "hosts.hv1",
        "duplicate key 'hv1' (first defined at line 3, column 3)",
    ),
    (
        "recursive-alias",
        "name: x\nhosts: &h\n  hv1:\n    bridges: *h\n",
        "2:8",
        "hosts.hv1.bridges",
        "recursive alias",
    ),
    # --- shape (JSON schema) ------------------------------------------------------
    ("root-not-mapping", "- name: x\n", "1:1", "", "expected a mapping, got a list"),
    ("missing-name", "hosts: {}\n", "1:1", "", "missing required key 'name'"),
    (
        "unknown-key",
        port("p1: {tga: 10}"),
        "7:16",
        "hosts.hv1.bridges.br0.ports.p1.tga",
        "unknown key 'tga' (did you mean 'tag'?); allowed keys: type, vm, nic, tag,",
    ),
    ("unknown-top-key", "name: x\nhostz: {}\n", "2:1", "hostz", "did you mean 'hosts'?"),
    (
        "wrong-type",
        port("p1: {tag: ten}"),
        "7:21",
        "hosts.hv1.bridges.br0.ports.p1.tag",
        "expected an integer, got string 'ten'",
    ),
    (
        "wrong-type-list",
        "name: x\nhosts:\n  hv1: {bridges: [br0]}\n",
        "3:18",
        "hosts.hv1.bridges",
        "expected a mapping, got a list",
    ),
    (
        "missing-required",
        "name: x\nhosts:\n  hv1:\n    vms:\n      vm1:\n        nics:\n"
        "          eth0: {ip: 10.0.0.1/24}\n",
        "7:11",
        "hosts.hv1.vms.vm1.nics.eth0",
        "missing required key 'mac'",
    ),
    (
        "missing-required-several",
        "name: x\nchecks:\n  - tcp: {from: a}\n",
        "3:5",
        "checks[0].tcp",
        "missing required keys 'to', 'dst_port'",
    ),
    (
        "enum",
        "name: x\nhosts:\n  hv1: {datapath: dpdk}\n",
        "3:19",
        "hosts.hv1.datapath",
        "'dpdk' is not a valid datapath; use one of: kernel, netdev",
    ),
    (
        "enum-suggestion",
        "name: x\nhosts:\n  hv1:\n    bridges:\n      br0: {fail_mode: secur}\n",
        "5:24",
        "hosts.hv1.bridges.br0.fail_mode",
        "(did you mean 'secure'?); use one of: secure, standalone",
    ),
    (
        "bad-name",
        "name: x\nhosts:\n  hv/1: {}\n",
        "3:3",
        "hosts.hv/1",
        "'hv/1' is not a valid name",
    ),
    (
        "tag-range",
        port("p1: {tag: 4096}"),
        "7:21",
        "hosts.hv1.bridges.br0.ports.p1.tag",
        "VLAN id 4096 is out of range 0..4095",
    ),
    (
        "trunks-range",
        port("p1: {trunks: [10, 5000]}"),
        "7:29",
        "hosts.hv1.bridges.br0.ports.p1.trunks[1]",
        "VLAN id 5000 is out of range 0..4095",
    ),
    (
        "trunks-duplicate",
        port("p1: {trunks: [10, 10]}"),
        "7:29",
        "hosts.hv1.bridges.br0.ports.p1.trunks[1]",
        "10 is listed twice",
    ),
    (
        "ofport-range",
        port("p1: {ofport: 65280}"),
        "7:24",
        "hosts.hv1.bridges.br0.ports.p1.ofport",
        "OpenFlow port number 65280 is out of range 1..65279",
    ),
    (
        "dp-port-zero",
        port("p1: {dp_port: 0}"),
        "7:25",
        "hosts.hv1.bridges.br0.ports.p1.dp_port",
        "out of range 1..65535 (0 is the datapath's local port)",
    ),
    (
        "mtu-range",
        "name: x\nhosts:\n  hv1:\n    nics:\n      eth0: {mtu: 67}\n",
        "5:19",
        "hosts.hv1.nics.eth0.mtu",
        "MTU 67 is out of range 68..65535",
    ),
    (
        "bad-mac",
        "name: x\nhosts:\n  hv1:\n    nics:\n      eth0: {mac: '02:00:00:00:01'}\n",
        "5:19",
        "hosts.hv1.nics.eth0.mac",
        "'02:00:00:00:01' is not a valid MAC address",
    ),
    (
        "unknown-port-type",
        port("vx0: {type: vxlan4, remote_ip: 192.0.2.2}"),
        "7:23",
        "hosts.hv1.bridges.br0.ports.vx0.type",
        "'vxlan4' is not a valid port type (did you mean 'vxlan'?); "
        "use one of: '', system, internal, tap,",
    ),
    (
        "tunnel-key-text",
        port("vx0: {type: vxlan, remote_ip: 192.0.2.2, key: abc}"),
        "7:57",
        "hosts.hv1.bridges.br0.ports.vx0.key",
        "'abc' is not a valid tunnel key",
    ),
    (
        "check-unknown-kind",
        "name: x\nchecks:\n  - icmp: {from: vm1, to: vm2}\n",
        "3:5",
        "checks[0].icmp",
        "unknown check kind 'icmp'; use one of: ping, tcp, udp",
    ),
    (
        "check-two-kinds",
        "name: x\nchecks:\n  - ping: {from: a, to: b}\n    tcp: {from: a, to: b, dst_port: 1}\n",
        "3:5",
        "checks[0]",
        "a check has exactly one kind, got 2: ping, tcp",
    ),
    ("check-empty", "name: x\nchecks:\n  - {}\n", "3:5", "checks[0]", "empty check"),
    (
        "check-expect",
        "name: x\nhosts:\n  hv1:\n    vms:\n"
        + VM1
        + "checks:\n  - ping: {from: vm1, to: 10.0.0.9, expect: maybe}\n",
        "7:45",
        "checks[0].ping.expect",
        "use one of: reachable, unreachable",
    ),
    (
        "nic-without-vm",
        port("p1: {nic: eth0}"),
        "7:16",
        "hosts.hv1.bridges.br0.ports.p1.nic",
        "'nic' needs 'vm' as well",
    ),
    (
        "bond-mode-without-interfaces",
        port("p1: {bond_mode: balance-slb}"),
        "7:16",
        "hosts.hv1.bridges.br0.ports.p1.bond_mode",
        "'bond_mode' needs 'interfaces' as well",
    ),
    (
        "bond-one-member",
        port("bond0: {interfaces: [eth1]}"),
        "7:31",
        "hosts.hv1.bridges.br0.ports.bond0.interfaces",
        "a bond needs at least 2 interfaces, got 1",
    ),
    (
        "link-one-endpoint",
        "name: x\nhosts:\n  hv1: {nics: {eth0: {}}}\nlinks:\n  - [hv1:eth0]\n",
        "5:5",
        "links[0]",
        "a link needs at least 2 host NICs, got 1",
    ),
    (
        "link-endpoint-form",
        "name: x\nhosts:\n  hv1: {nics: {eth0: {}}}\nlinks:\n  - [hv1, hv1:eth0]\n",
        "5:6",
        "links[0][0]",
        "'hv1' is not a valid link endpoint (host:nic",
    ),
    # --- values and cross references (validate.py) -----------------------------------
    (
        "cidr-no-prefix",
        "name: x\nhosts:\n  hv1:\n    vms:\n      vm1:\n        nics:\n"
        "          eth0: {mac: '52:54:00:00:00:01', ip: 10.0.0.1}\n",
        "7:48",
        "hosts.hv1.vms.vm1.nics.eth0.ip",
        "'10.0.0.1' has no prefix length",
    ),
    (
        "bad-ip",
        "name: x\nhosts:\n  hv1:\n    underlay: {nic: eth0, ip: 192.0.2.300/24}\n    nics: {eth0: {}}\n",
        "4:31",
        "hosts.hv1.underlay.ip",
        "'192.0.2.300/24' is not an IP address with prefix",
    ),
    (
        "ipv6-in-ip",
        "name: x\nhosts:\n  hv1:\n    vms:\n      vm1:\n        nics:\n"
        "          eth0: {mac: '52:54:00:00:00:01', ip: 'fd00::1/64'}\n",
        "7:48",
        "hosts.hv1.vms.vm1.nics.eth0.ip",
        "is an IPv6 address; this key takes IPv4, use 'ipv6'",
    ),
    (
        "broadcast-address",
        "name: x\nhosts:\n  hv1:\n    vms:\n"
        "      vm1: {nics: {eth0: {mac: '52:54:00:00:00:01', ip: 10.0.0.255/24}}}\n",
        "5:57",
        "hosts.hv1.vms.vm1.nics.eth0.ip",
        "broadcast address of 10.0.0.0/24",
    ),
    (
        "gateway-outside",
        "name: x\nhosts:\n  hv1:\n    underlay: {nic: eth0, ip: 192.0.2.1/24, gateway: 198.51.100.1}\n"
        "    nics: {eth0: {}}\n",
        "4:54",
        "hosts.hv1.underlay.gateway",
        "gateway 198.51.100.1 is outside 192.0.2.0/24",
    ),
    (
        "overlapping-ip",
        "name: x\nhosts:\n  hv1:\n    underlay: {nic: eth0, ip: 10.0.0.1/24}\n    nics: {eth0: {}}\n"
        "    vms:\n      vm1: {nics: {eth0: {mac: '52:54:00:00:00:01', ip: 10.0.0.1/16}}}\n",
        "7:57",
        "hosts.hv1.vms.vm1.nics.eth0.ip",
        "address 10.0.0.1 is already used by the underlay of host hv1 (line 4)",
    ),
    (
        "duplicate-port-name",
        "name: x\nhosts:\n  hv1:\n    bridges:\n      br0:\n        ports: {p1: {}}\n"
        "      br1:\n        ports: {p1: {}}\n",
        "8:17",
        "hosts.hv1.bridges.br1.ports.p1",
        "name 'p1' is already used by a port of bridge br0 (line 6)",
    ),
    (
        "bridge-named-like-port",
        "name: x\nhosts:\n  hv1:\n    bridges:\n      br0:\n        ports: {br1: {}}\n"
        "      br1: {}\n",
        "6:17",
        "hosts.hv1.bridges.br0.ports.br1",
        "name 'br1' is already used by bridge br1",
    ),
    (
        "bond-member-duplicate",
        "name: x\nhosts:\n  hv1:\n    nics: {eth1: {}, eth2: {}}\n    bridges:\n      br0:\n"
        "        ports:\n          eth1: {}\n          bond0: {interfaces: [eth1, eth2]}\n",
        "9:32",
        "hosts.hv1.bridges.br0.ports.bond0.interfaces[0]",
        "name 'eth1' is already used by a port of bridge br0",
    ),
    (
        "vm-on-two-hosts",
        "name: x\nhosts:\n  hv1:\n    vms: {vm1: {}}\n  hv2:\n    vms: {vm1: {}}\n",
        "6:11",
        "hosts.hv2.vms.vm1",
        "VM 'vm1' is already defined on host hv1 (line 4)",
    ),
    (
        "link-missing-host",
        "name: x\nhosts:\n  hv1: {nics: {eth0: {}}}\nlinks:\n  - [hv1:eth0, hv2:eth0]\n",
        "5:16",
        "links[0][1]",
        "no host 'hv2' (hosts: hv1)",
    ),
    (
        "link-missing-nic",
        "name: x\nhosts:\n  hv1: {nics: {eth0: {}}}\n  hv2: {nics: {eth0: {}}}\nlinks:\n"
        "  - [hv1:eth0, hv2:eth1]\n",
        "6:16",
        "links[0][1]",
        "host hv2 has no NIC 'eth1' (NICs: eth0)",
    ),
    (
        "nic-in-two-links",
        "name: x\nhosts:\n  hv1: {nics: {eth0: {}}}\n  hv2: {nics: {eth0: {}}}\n"
        "  hv3: {nics: {eth0: {}}}\nlinks:\n  - [hv1:eth0, hv2:eth0]\n  - {name: sw2, endpoints: [hv3:eth0, hv1:eth0]}\n",
        "8:39",
        "links[1].endpoints[1]",
        "hv1:eth0 is already in a link (line 7)",
    ),
    (
        "port-missing-vm",
        port("tap0: {vm: vm1}"),
        "7:22",
        "hosts.hv1.bridges.br0.ports.tap0.vm",
        "no VM 'vm1' on host hv1 (VMs: none)",
    ),
    (
        "port-vm-other-host",
        port("tap0: {vm: vm1}") + "  hv2:\n    vms:\n" + VM1,
        "7:22",
        "hosts.hv1.bridges.br0.ports.tap0.vm",
        "VM 'vm1' runs on host hv2",
    ),
    (
        "port-missing-vm-nic",
        "name: x\nhosts:\n  hv1:\n    vms:\n" + VM1 + "    bridges:\n      br0:\n        ports:\n"
        "          tap0: {vm: vm1, nic: eth1}\n",
        "9:32",
        "hosts.hv1.bridges.br0.ports.tap0.nic",
        "VM vm1 has no NIC 'eth1' (NICs: eth0)",
    ),
    (
        "vm-nic-ambiguous",
        "name: x\nhosts:\n  hv1:\n    vms:\n"
        "      vm1: {nics: {eth0: {mac: '52:54:00:00:00:01'}, eth1: {mac: '52:54:00:00:00:02'}}}\n"
        "    bridges:\n      br0:\n        ports:\n          tap0: {vm: vm1}\n",
        "9:22",
        "hosts.hv1.bridges.br0.ports.tap0.vm",
        "VM vm1 has 2 NICs (eth0, eth1); say which one",
    ),
    (
        "vm-nic-attached-twice",
        "name: x\nhosts:\n  hv1:\n    vms:\n" + VM1 + "    bridges:\n      br0:\n        ports:\n"
        "          tap0: {vm: vm1}\n          tap1: {vm: vm1, nic: eth0}\n",
        "10:11",
        "hosts.hv1.bridges.br0.ports.tap1",
        "VM NIC vm1:eth0 is already attached to another port (line 9)",
    ),
    (
        "vm-port-wrong-type",
        "name: x\nhosts:\n  hv1:\n    vms:\n" + VM1 + "    bridges:\n      br0:\n        ports:\n"
        "          p1: {vm: vm1, type: internal}\n",
        "9:31",
        "hosts.hv1.bridges.br0.ports.p1.type",
        "uses vhost-net, which needs a 'tap' port, not 'internal'",
    ),
    (
        "nic-port-wrong-type",
        "name: x\nhosts:\n  hv1:\n    nics: {eth0: {}}\n    bridges:\n      br0:\n        ports:\n"
        "          eth0: {type: internal}\n",
        "8:11",
        "hosts.hv1.bridges.br0.ports.eth0",
        "'eth0' is a NIC of host hv1; its port type must be '' (system), not 'internal'",
    ),
    (
        "patch-peer-missing",
        port("patch0: {peer: patch9}"),
        "7:26",
        "hosts.hv1.bridges.br0.ports.patch0.peer",
        "no port 'patch9' on host hv1",
    ),
    (
        "patch-peer-not-back",
        "name: x\nhosts:\n  hv1:\n    bridges:\n      br0:\n        ports:\n          pa: {peer: pb}\n"
        "      br1:\n        ports:\n          pb: {peer: pc}\n          pc: {peer: pb}\n",
        "7:22",
        "hosts.hv1.bridges.br0.ports.pa.peer",
        "peer 'pb' points back at 'pc', not at 'pa'",
    ),
    (
        "patch-peer-not-patch",
        port("pa: {peer: p2}\n          p2: {}"),
        "7:22",
        "hosts.hv1.bridges.br0.ports.pa.peer",
        "peer 'p2' is a '' (system) port, not a patch port",
    ),
    (
        "patch-without-peer",
        port("patch0: {type: patch}"),
        "7:11",
        "hosts.hv1.bridges.br0.ports.patch0",
        "a patch port needs 'peer'",
    ),
    (
        "patch-dp-port",
        port("pa: {peer: pb, dp_port: 3}\n          pb: {peer: pa}"),
        "7:35",
        "hosts.hv1.bridges.br0.ports.pa.dp_port",
        "a patch port has no datapath port",
    ),
    (
        "vhost-path-too-long",
        "name: x\nhosts:\n  hv1:\n    datapath: netdev\n    vms:\n      vm1:\n        nics:\n"
        f"          eth0: {{mac: '52:54:00:00:00:01', vhost_server_path: /var/run/{LONG}}}\n    bridges:\n      br0:\n"
        "        ports:\n          vhu0: {vm: vm1}\n",
        "8:63",
        "hosts.hv1.vms.vm1.nics.eth0.vhost_server_path",
        "is 109 bytes; a unix socket path holds at most 107 (UNIX_PATH_MAX)",
    ),
    (
        "vhost-dir-too-long",
        f"name: x\nhosts:\n  hv1:\n    datapath: netdev\n    vhost_sock_dir: /{LONG}\n    vms:\n"
        + VM1
        + "    bridges:\n      br0:\n        ports:\n          vhu-vm1-eth0: {vm: vm1}\n",
        "11:11",
        "hosts.hv1.bridges.br0.ports.vhu-vm1-eth0",
        "is 114 bytes; a unix socket path holds at most 107",
    ),
    (
        "tunnel-without-remote-ip",
        port("vx0: {type: vxlan, key: 5}"),
        "7:11",
        "hosts.hv1.bridges.br0.ports.vx0",
        "a vxlan port needs remote_ip",
    ),
    (
        "tunnel-bad-remote-ip",
        port("vx0: {type: vxlan, remote_ip: 192.0.2.x}"),
        "7:41",
        "hosts.hv1.bridges.br0.ports.vx0.remote_ip",
        "'192.0.2.x' is not a valid IP address",
    ),
    (
        "vni-24-bits",
        port("gnv0: {type: geneve, remote_ip: 192.0.2.2, key: 16777216}"),
        "7:59",
        "hosts.hv1.bridges.br0.ports.gnv0.key",
        "geneve key 16777216 is out of range 0..16777215",
    ),
    (
        "gre-dst-port",
        port("gre0: {type: gre, remote_ip: 192.0.2.2, dst_port: 4789}"),
        "7:51",
        "hosts.hv1.bridges.br0.ports.gre0.dst_port",
        "gre has no UDP destination port",
    ),
    (
        "shorthand-contradicts-options",
        port("vx0: {type: vxlan, remote_ip: 192.0.2.2, options: {remote_ip: 192.0.2.3}}"),
        "7:41",
        "hosts.hv1.bridges.br0.ports.vx0.remote_ip",
        "contradicts options:remote_ip='192.0.2.3'",
    ),
    (
        "tunnel-setting-on-internal",
        port("p1: {type: internal, remote_ip: 192.0.2.2}"),
        "7:32",
        "hosts.hv1.bridges.br0.ports.p1.remote_ip",
        "'remote_ip' applies to tunnel ports only; this port's type is 'internal'",
    ),
    (
        "bond-interface-setting",
        port("bond0: {interfaces: [a, b], ofport: 3}"),
        "7:39",
        "hosts.hv1.bridges.br0.ports.bond0.ofport",
        "'ofport' is an interface setting",
    ),
    (
        "backend-vhost-user-on-kernel",
        "name: x\nhosts:\n  hv1:\n    vms:\n"
        "      vm1: {nics: {eth0: {mac: '52:54:00:00:00:01', backend: vhost-user}}}\n",
        "5:62",
        "hosts.hv1.vms.vm1.nics.eth0.backend",
        "backend 'vhost-user' needs a netdev host",
    ),
    (
        "backend-vhost-net-on-netdev",
        "name: x\nhosts:\n  hv1:\n    datapath: netdev\n    vms:\n"
        "      vm1: {nics: {eth0: {mac: '52:54:00:00:00:01', backend: vhost-net}}}\n",
        "6:62",
        "hosts.hv1.vms.vm1.nics.eth0.backend",
        "backend 'vhost-net' needs a kernel host",
    ),
    (
        "ifnamsiz",
        "name: x\nhosts:\n  hv1:\n    vms:\n" + VM1 + "    bridges:\n      br0:\n        ports:\n"
        "          tap-vm1-eth0-long: {vm: vm1}\n",
        "9:11",
        "hosts.hv1.bridges.br0.ports.tap-vm1-eth0-long",
        "tap interface name 'tap-vm1-eth0-long' is 17 bytes; a Linux interface name holds at most 15 (IFNAMSIZ)",
    ),
    (
        "ifnamsiz-bridge",
        "name: x\nhosts:\n  hv1:\n    bridges:\n      br-int-underlay0: {}\n",
        "5:7",
        "hosts.hv1.bridges.br-int-underlay0",
        "bridge name 'br-int-underlay0' is 16 bytes",
    ),
    (
        "underlay-nic-unknown",
        "name: x\nhosts:\n  hv1:\n    underlay: {nic: eth1, ip: 192.0.2.1/24}\n    nics: {eth0: {}}\n",
        "4:21",
        "hosts.hv1.underlay.nic",
        "'eth1' is not a NIC of host hv1 (NICs: eth0)",
    ),
    (
        "underlay-on-bridged-nic",
        "name: x\nhosts:\n  hv1:\n    underlay: {nic: eth0, ip: 192.0.2.1/24}\n    nics: {eth0: {}}\n"
        "    bridges:\n      br-ex:\n        ports: {eth0: {}}\n",
        "4:21",
        "hosts.hv1.underlay.nic",
        "NIC 'eth0' is a port of bridge br-ex, so the host stack never sees its packets; "
        "put the underlay address on br-ex instead",
    ),
    (
        "vhost-server-path-on-server-port",
        "name: x\nhosts:\n  hv1:\n    datapath: netdev\n    vms:\n"
        "      vm1: {nics: {eth0: {mac: '52:54:00:00:00:01', vhost_server_path: /tmp/s}}}\n"
        "    bridges:\n      br0:\n        ports:\n          vhu0: {vm: vm1, type: dpdkvhostuser}\n",
        "6:72",
        "hosts.hv1.vms.vm1.nics.eth0.vhost_server_path",
        "OVS creates its socket at /var/run/openvswitch/vhu0",
    ),
    (
        "flows-file-missing",
        "name: x\nhosts:\n  hv1:\n    bridges:\n      br0: {flows_file: no-such-flows.txt}\n",
        "5:25",
        "hosts.hv1.bridges.br0.flows_file",
        "flows_file 'no-such-flows.txt' not found",
    ),
    (
        "flows-and-flows-file",
        "name: x\nhosts:\n  hv1:\n    bridges:\n      br0:\n        flows: ['actions=NORMAL']\n"
        "        flows_file: f.txt\n",
        "7:9",
        "hosts.hv1.bridges.br0.flows_file",
        "either 'flows' or 'flows_file'",
    ),
    (
        "flow-split-by-yaml",
        "name: x\nhosts:\n  hv1:\n    bridges:\n      br0:\n        flows: [table=0,actions=NORMAL]\n",
        "6:17",
        "hosts.hv1.bridges.br0.flows[0]",
        "flow 'table=0' has no 'actions='",
    ),
    (
        "check-unknown-vm",
        "name: x\nhosts:\n  hv1:\n    vms:\n" + VM1 + "checks:\n  - ping: {from: vm1, to: vm2}\n",
        "7:27",
        "checks[0].ping.to",
        "no VM 'vm2' (VMs: vm1)",
    ),
    (
        "check-unknown-vm-nic",
        "name: x\nhosts:\n  hv1:\n    vms:\n"
        + VM1
        + "checks:\n  - udp: {from: vm1:eth3, to: 10.0.0.9, dst_port: 53}\n",
        "7:17",
        "checks[0].udp.from",
        "VM vm1 has no NIC 'eth3'",
    ),
    (
        "dpdk-without-pci",
        "name: x\nhosts:\n  hv1:\n    datapath: netdev\n    nics: {dpdk0: {}}\n    bridges:\n      br0:\n"
        "        ports:\n          dpdk0: {}\n",
        "9:11",
        "hosts.hv1.bridges.br0.ports.dpdk0",
        "dpdk interface 'dpdk0' needs a PCI address: give pci on hosts.hv1.nics.dpdk0",
    ),
    (
        "dpdk-on-kernel",
        port("d0: {type: dpdk, dpdk_devargs: '0000:01:00.0'}"),
        "7:22",
        "hosts.hv1.bridges.br0.ports.d0.type",
        "type 'dpdk' needs a netdev (DPDK) host",
    ),
    (
        "dp-port-conflict",
        port("p1: {dp_port: 7}\n          p2: {dp_port: 7}"),
        "8:25",
        "hosts.hv1.bridges.br0.ports.p2.dp_port",
        "dp_port 7 is already used by p1 on host hv1",
    ),
    (
        "tunnel-dp-port-conflict",
        port(
            "vx1: {type: vxlan, remote_ip: 192.0.2.2, dp_port: 5}\n"
            "          vx2: {type: vxlan, remote_ip: 192.0.2.3, dp_port: 6}"
        ),
        "8:61",
        "hosts.hv1.bridges.br0.ports.vx2.dp_port",
        "vxlan_sys_4789 already has dp_port 5",
    ),
    (
        "ofport-duplicate",
        port("p1: {ofport: 3}\n          p2: {ofport: 3}"),
        "8:24",
        "hosts.hv1.bridges.br0.ports.p2.ofport",
        "ofport 3 is already used on bridge br0 (line 7)",
    ),
    (
        "datapath-type-mismatch",
        "name: x\nhosts:\n  hv1:\n    bridges:\n      br0: {datapath_type: netdev}\n",
        "5:28",
        "hosts.hv1.bridges.br0.datapath_type",
        "does not match host hv1's kernel datapath ('system')",
    ),
]


@pytest.mark.parametrize(
    ("text", "where", "path", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rule(text, where, path, message, tmp_path):
    _topo, diags = analyse_text(text, "t.yaml", base_dir=tmp_path)
    assert len(diags) == 1, "\n".join(map(str, diags))
    (diag,) = diags
    assert f"{diag.line}:{diag.column}" == where, str(diag)
    assert diag.path == path
    assert message in diag.message
    assert diag.file == "t.yaml"


def test_case_ids_are_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))


def test_all_problems_of_a_file_at_once():
    path = DATA / "many-errors.yaml"
    diags = validate_file(path)
    got = [(d.line, d.column, d.path) for d in diags]
    assert got == [
        (5, 15, "hosts.hv1.datapath"),
        (14, 34, "hosts.hv1.bridges.br-int.ports.tapvm1.tag"),
        (15, 11, "hosts.hv1.bridges.br-int.ports.vx0"),
        (16, 42, "hosts.hv1.bridges.br-int.ports.patch-tun.peer"),
        (19, 7, "hosts.hv2.vms.vm1"),
        (20, 53, "hosts.hv2.vms.vm1.nics.eth0.ip"),
        (22, 16, "links[0][1]"),
        (24, 27, "checks[0].ping.to"),
    ]
    assert all(d.file == str(path) for d in diags)
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    assert info.value.diagnostics == diags
    assert info.value.exit_code == 2
    text = str(info.value)
    assert text.startswith("8 errors in topology\n")
    assert (
        f"{path}:5:15: hosts.hv1.datapath: 'kernal' is not a valid datapath (did you mean 'kernel'?)"
        in text
    )


def test_load_text_raises_with_every_diagnostic():
    with pytest.raises(TopologyError) as info:
        load_topology_text(port("p1: {tag: 4096, ofport: 0}"), "inline.yaml")
    assert [(d.line, d.column) for d in info.value.diagnostics] == [(7, 21), (7, 35)]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "absent.yaml", "no such file"),
        (lambda tmp: tmp, "cannot read file"),
    ],
    ids=["missing", "directory"],
)
def test_unreadable_file_is_a_diagnostic(tmp_path, make, message):
    path = make(tmp_path)
    diags = validate_file(path)
    assert diags == [Diagnostic(str(path), 1, 1, "", diags[0].message)]
    assert message in diags[0].message
    with pytest.raises(TopologyError):
        load_topology(path)


def test_not_utf8_is_a_diagnostic(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    (diag,) = validate_file(path)
    assert "not UTF-8" in diag.message


def test_schema_errors_do_not_cascade():
    # a rejected type must not also trigger "remote_ip applies to tunnel ports only"
    _t, diags = analyse_text(port("vx0: {type: vxlam, remote_ip: 192.0.2.2}"), "t.yaml")
    assert [d.path for d in diags] == ["hosts.hv1.bridges.br0.ports.vx0.type"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: x\nhosts:\n  h:\n    nics: {eth0: {speed_gbps: 0}}\n",
            "link speed 0 must be greater than 0",
        ),
        (
            "name: x\nhosts:\n  h:\n    vms:\n"
            + VM1
            + "checks:\n  - ping: {from: vm1, to: 10.0.0.1, count: 0}\n",
            "count 0 must be >= 1",
        ),
        ("name: x\nhosts:\n  h: {vhost_sock_dir: ''}\n", "path must not be empty"),
        (
            "name: x\nhosts:\n  h:\n    bridges: {br0: {protocols: [OpenFlow16]}}\n",
            "'OpenFlow16' is not a valid OpenFlow version",
        ),
        (
            "name: x\nhosts:\n  h:\n    bridges: {br0: {ports: {p: {key: [1]}}}}\n",
            "expected an integer or a string (an integer 0..4294967295",
        ),
        ("name: x\nversion: 2\n", "schema version must be 1, got 2"),
    ],
    ids=["exclusive-minimum", "minimum-only", "min-length", "enum-in-list", "type-list", "const"],
)
def test_schema_message_wording(text, message):
    _t, diags = analyse_text(text, "t.yaml")
    assert len(diags) == 1 and message in diags[0].message, diags
