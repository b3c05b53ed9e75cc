"""A topology as a networkx multigraph, for path finding, drawing and notebooks.

Node ids are tuples that start with the node's kind, so names never clash
across kinds:

=================================  ==========================================
``("host", host)``                  a hypervisor / bare-metal host
``("nic", host, nic)``              a physical NIC of a host
``("bridge", host, bridge)``        an OVS bridge
``("port", host, port)``            an OVS port (port names are unique per host)
``("vm", vm)``                      a VM (VM names are unique per topology)
``("vm_nic", vm, nic)``             a virtio NIC of a VM
``("link", index)``                 an L2 segment joining host NICs
=================================  ==========================================

Every node has ``kind``, ``name``, ``label`` (short text to draw) and ``obj``
(the model object). Edges have a ``kind``:

* ``contains``: host-nic, host-bridge, bridge-port, host-vm, vm-vm_nic;
* ``attached``: a port and what it carries (the VM NIC of a vhost port, the
  host NIC of a NIC port or of a bond member; ``interface`` names it);
* ``link``: a host NIC and the link it belongs to;
* ``patch``: the two ports of a patch pair (once per pair);
* ``tunnel``: a tunnel port and the host whose underlay address is the
  port's ``remote_ip`` (absent for ``remote_ip=flow`` or unknown addresses).
"""

from __future__ import annotations

import ipaddress

import networkx as nx

from .model import TUNNEL_TYPES, Topology


def _remote_host(topo: Topology, remote: str | None) -> str | None:
    if not remote:
        return None
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return None
    for host in topo.hosts.values():
        if host.underlay is not None and host.underlay.ip.ip == address:
            return host.name
    return None


def topology_graph(topo: Topology) -> nx.MultiGraph:
    """Hosts, NICs, bridges, ports, VMs, VM NICs and links, with their relations."""
    g = nx.MultiGraph(name=topo.name)
    for host in topo.hosts.values():
        hid = ("host", host.name)
        g.add_node(hid, kind="host", name=host.name, label=host.name, obj=host)
        for nic in host.nics.values():
            nid = ("nic", host.name, nic.name)
            g.add_node(
                nid,
                kind="nic",
                name=nic.name,
                host=host.name,
                label=f"{host.name}:{nic.name}",
                obj=nic,
            )
            g.add_edge(hid, nid, kind="contains")
        for vm in host.vms.values():
            vid = ("vm", vm.name)
            g.add_node(vid, kind="vm", name=vm.name, host=host.name, label=vm.name, obj=vm)
            g.add_edge(hid, vid, kind="contains")
            for nic in vm.nics.values():
                nid = ("vm_nic", vm.name, nic.name)
                g.add_node(
                    nid,
                    kind="vm_nic",
                    name=nic.name,
                    vm=vm.name,
                    host=host.name,
                    label=f"{vm.name}:{nic.name}",
                    obj=nic,
                )
                g.add_edge(vid, nid, kind="contains")
        for bridge in host.bridges.values():
            bid = ("bridge", host.name, bridge.name)
            g.add_node(
                bid, kind="bridge", name=bridge.name, host=host.name, label=bridge.name, obj=bridge
            )
            g.add_edge(hid, bid, kind="contains")
            for port in bridge.ports.values():
                pid = ("port", host.name, port.name)
                g.add_node(
                    pid,
                    kind="port",
                    name=port.name,
                    host=host.name,
                    bridge=bridge.name,
                    type=port.type,
                    label=port.name,
                    obj=port,
                )
                g.add_edge(bid, pid, kind="contains")

    for host in topo.hosts.values():
        for port in host.ports():
            pid = ("port", host.name, port.name)
            if (
                port.vm is not None
                and port.vm_nic is not None
                and ("vm_nic", port.vm, port.vm_nic) in g
            ):
                g.add_edge(
                    pid, ("vm_nic", port.vm, port.vm_nic), kind="attached", interface=port.name
                )
            for iface in port.interfaces:
                if iface.name in host.nics and (port.is_bond or port.host_nic == iface.name):
                    g.add_edge(
                        pid, ("nic", host.name, iface.name), kind="attached", interface=iface.name
                    )
                if iface.type == "patch":
                    peer = ("port", host.name, iface.options.get("peer", ""))
                    if peer in g and peer != pid and not g.has_edge(pid, peer):
                        g.add_edge(pid, peer, kind="patch")
                elif iface.type in TUNNEL_TYPES:
                    remote = _remote_host(topo, iface.options.get("remote_ip"))
                    if remote is not None:
                        g.add_edge(
                            pid,
                            ("host", remote),
                            kind="tunnel",
                            interface=iface.name,
                            remote_ip=iface.options["remote_ip"],
                        )

    for index, link in enumerate(topo.links):
        lid = ("link", index)
        g.add_node(
            lid,
            kind="link",
            name=link.name or f"link{index}",
            label=link.name or f"link{index}",
            obj=link,
        )
        for host, nic in link.endpoints:
            g.add_edge(lid, ("nic", host, nic), kind="link")
    return g
