"""Declarative topologies: YAML files of hosts, OVS bridges, ports, VMs and links.

``load_topology(path)`` turns a file (format: ``docs/topology.md``, shape:
``topology.schema.json``) into the plain dataclasses of :mod:`.model`, with
everything OVS, libvirt and Neutron would derive already filled in; it
raises :class:`~ovsnet.errors.TopologyError` carrying every problem of the
file at once. ``validate_file(path)`` returns those problems instead.
"""

from .dpports import allocate_dp_ports, plan_dp_ports
from .graph import topology_graph
from .loader import load_topology, load_topology_text, validate_file
from .model import (
    Bridge,
    Check,
    Host,
    HostNic,
    Interface,
    Link,
    Port,
    Position,
    Topology,
    Underlay,
    Vm,
    VmNic,
)
from .schema import SCHEMA, schema_path

__all__ = [
    "SCHEMA",
    "Bridge",
    "Check",
    "Host",
    "HostNic",
    "Interface",
    "Link",
    "Port",
    "Position",
    "Topology",
    "Underlay",
    "Vm",
    "VmNic",
    "allocate_dp_ports",
    "load_topology",
    "load_topology_text",
    "plan_dp_ports",
    "schema_path",
    "topology_graph",
    "validate_file",
]
