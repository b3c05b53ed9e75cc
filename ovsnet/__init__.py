"""ovsnet: an Open vSwitch integration and datapath simulator.

Configuration flows down as in Open vSwitch: topology YAML
(:mod:`ovsnet.topology`) -> one OVSDB transaction per host (:mod:`ovsnet.ovsdb`)
-> the simulated ovs-vswitchd -> the datapath (:mod:`ovsnet.datapath`).
"""

__version__ = "0.1.0"
