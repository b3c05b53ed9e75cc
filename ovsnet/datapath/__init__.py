"""The datapath model: what the Linux kernel's ``net/openvswitch/`` module does.

One concept per module, as in the kernel: :mod:`ovsnet.datapath.packet` holds
the packet-buffer helpers (checksums, OVS hashes, packet batches, address
parsing) the flow-key extraction, masked flow table and actions build on.
Hot loops live in private compiled modules (``ovsnet._packet``); every one of
them has a pure-Python reference implementation behind the same public API.
"""
