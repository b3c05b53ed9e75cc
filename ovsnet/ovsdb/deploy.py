"""Configuration flowing down: topology YAML -> one OVSDB transaction per host.

:func:`bring_up` gives every host of a topology its own OVSDB server (see
:mod:`.backends`) and writes the host's part of the topology into it with
:class:`~.desired.ApplyHostCommand`: one transaction per host, all or
nothing. The simulated ovs-vswitchd of later layers reads its configuration
back from these databases, never from the YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..topology.model import Host, Topology
from .api import OvsdbApi
from .backends import Server, open_server
from .desired import ApplyHostCommand, Change
from .show import show


@dataclass
class HostDb:
    """One host's OVSDB: the server, a client connection, the last changes applied."""

    host: Host
    server: Server
    api: OvsdbApi
    changes: list[Change] = field(default_factory=list)

    def show(self) -> str:
        self.api.connection.run()
        return show(self.api.idl)

    def close(self) -> None:
        self.api.close()
        self.server.stop()


class Deployment:
    """The OVSDB side of a running topology; behaves like a mapping host -> HostDb."""

    def __init__(self, topology: Topology):
        self.topology = topology
        self.hosts: dict[str, HostDb] = {}

    def __getitem__(self, host: str) -> HostDb:
        return self.hosts[host]

    def __iter__(self):
        return iter(self.hosts)

    def __len__(self) -> int:
        return len(self.hosts)

    def show(self) -> str:
        """``ovs-vsctl show`` of every host, each under a ``Host NAME`` header."""
        return "".join(f"Host {name}\n{db.show()}" for name, db in self.hosts.items())

    def close(self) -> None:
        for db in self.hosts.values():
            db.close()
        self.hosts.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def apply_host(api: OvsdbApi, topology: Topology, host: Host | str,
               dry_run: bool = False) -> list[Change]:
    """Writes one host of the topology to the database behind ``api`` (one transaction)."""
    with api.transaction(comment=f"ovsnet apply {topology.name}") as txn:
        command = txn.add(ApplyHostCommand(api, topology, host, dry_run=dry_run))
    return command.result


def bring_up(topology: Topology, ovsdb: str = "embedded", hosts=None) -> Deployment:
    """Starts (or connects to) each host's OVSDB and configures it from the topology."""
    deployment = Deployment(topology)
    try:
        for name, host in topology.hosts.items():
            if hosts is not None and name not in hosts:
                continue
            server = open_server(ovsdb, name)
            try:
                api = OvsdbApi.connect(server.remote)
            except BaseException:
                server.stop()
                raise
            db = deployment.hosts[name] = HostDb(host, server, api)
            db.changes = apply_host(api, topology, host)
    except BaseException:
        deployment.close()
        raise
    return deployment
