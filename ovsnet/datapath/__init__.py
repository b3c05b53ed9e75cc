"""The datapath model: what the Linux kernel's ``net/openvswitch/`` module does.

One concept per module, as in the kernel:

* :mod:`~ovsnet.datapath.packet`: packet-buffer helpers (checksums, OVS
  hashes, packet batches, address parsing);
* :mod:`~ovsnet.datapath.flow_key`: the flat flow key extracted from packet
  bytes (the kernel's ``flow.c``; field semantics of OVS's ``flow_extract``),
  :mod:`~ovsnet.datapath.flow_format` prints it in OVS's flow syntax;
* :mod:`~ovsnet.datapath.megaflow`: the megaflow table (``flow_table.c``),
  :mod:`~ovsnet.datapath.emc`: dpif-netdev's exact-match cache;
* :mod:`~ovsnet.datapath.actions`: actions on packet bytes (``actions.c``);
* :mod:`~ovsnet.datapath.vport` and :mod:`~ovsnet.datapath.tunnel`: ports and
  tunnel encapsulation (``vport*.c`` and the tunnel drivers);
* :mod:`~ovsnet.datapath.datapath`: the datapath object, its batch loop and
  upcalls (``datapath.c``), :mod:`~ovsnet.datapath.host` a host's datapath
  from its topology and the ``dpctl`` views;
* :mod:`~ovsnet.datapath.odp_attrs` and :mod:`~ovsnet.datapath.odp`: the
  netlink encoding and the ODP text syntax of flows and actions;
* :mod:`~ovsnet.datapath.pcap`: capture files.

Hot loops live in private compiled modules (``native/*.pyx`` built as
``ovsnet._*``); every one of them has a pure-Python reference implementation
behind the same public API.
"""
