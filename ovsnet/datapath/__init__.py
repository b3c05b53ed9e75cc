"""The datapath model: what the Linux kernel's ``net/openvswitch/`` module does.

One concept per module, as in the kernel: :mod:`ovsnet.datapath.packet` holds
the packet-buffer helpers (checksums, OVS hashes, packet batches, address
parsing); :mod:`ovsnet.datapath.flow_key` extracts the flat flow key from
packet bytes (the kernel's ``flow.c``; field semantics of OVS's userspace
``flow_extract``); :mod:`ovsnet.datapath.flow_format` prints a key in OVS's
flow syntax; :mod:`ovsnet.datapath.pcap` reads and writes capture files.
Hot loops live in private compiled modules (``ovsnet._packet``); every one of
them has a pure-Python reference implementation behind the same public API.
"""
