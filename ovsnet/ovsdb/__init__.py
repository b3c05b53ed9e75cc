"""The OVSDB layer: client (the ``ovs`` package's IDL), commands, servers.

Configuration flows one way, as in Open vSwitch: a topology becomes one OVSDB
transaction per host (:mod:`.desired`, :mod:`.deploy`); the simulated
ovs-vswitchd reads it back from the database.
"""

from .api import OvsdbApi
from .backends import EmbeddedServer, RealServer, RemoteServer, open_server, real_ovs_available
from .connection import Connection, get_schema
from .deploy import Deployment, HostDb, apply_host, bring_up
from .desired import ApplyHostCommand, desired_host, plan, vsctl_args
from .show import show

__all__ = [
    "ApplyHostCommand",
    "Connection",
    "Deployment",
    "EmbeddedServer",
    "HostDb",
    "OvsdbApi",
    "RealServer",
    "RemoteServer",
    "apply_host",
    "bring_up",
    "desired_host",
    "get_schema",
    "open_server",
    "plan",
    "real_ovs_available",
    "show",
    "vsctl_args",
]
