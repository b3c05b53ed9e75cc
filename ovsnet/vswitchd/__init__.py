"""The simulated ovs-vswitchd: a host's OVSDB in, ofproto bridges and the host datapath out.

:class:`Vswitchd` reads the Open_vSwitch, Bridge, Port and Interface rows of
one host (:func:`read_host_config`), builds an ofproto
:class:`~ovsnet.ofproto.bridge.Bridge` per bridge and the host's shared
datapath, answers the datapath's upcalls with translation and revalidates
the installed megaflows after every change. Attached to its database
(:meth:`Vswitchd.from_hostdb`) it writes back the columns ovs-vswitchd owns
(:mod:`ovsnet.vswitchd.status`): ``ofport``, the Interface status,
``datapath_id`` and ``cur_cfg``.
"""

from ovsnet.vswitchd.config import (
           BridgeConfig,
           HostConfig,
           IfaceConfig,
           PortConfig,
           read_host_config,
)
from ovsnet.vswitchd.loop import DatabaseLoop
from ovsnet.vswitchd.status import ColumnChange, daemon_status, wait_cur_cfg, write_status
from ovsnet.vswitchd.vswitchd import STANDALONE_FLOW, OfportAllocator, Vswitchd, allocate_ofports

__all__ = ["STANDALONE_FLOW", "BridgeConfig", "ColumnChange", "DatabaseLoop", "HostConfig",
           "IfaceConfig", "OfportAllocator", "PortConfig", "Vswitchd", "allocate_ofports",
           "daemon_status", "read_host_config", "wait_cur_cfg", "write_status"]
