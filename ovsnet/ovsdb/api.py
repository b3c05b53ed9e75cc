"""The command API over one OVSDB connection, shaped like ovsdbapp's ``Backend``.

Every method returns a :mod:`command <ovsnet.ovsdb.commands>` and does nothing
by itself::

    api = OvsdbApi.connect("unix:/run/openvswitch/db.sock")
    with api.transaction() as txn:
        txn.add(api.add_br("br-int", may_exist=True, fail_mode="secure"))
        txn.add(api.add_port("br-int", "tap0", port_columns={"tag": 10}))
    api.br_exists("br-int").execute()   # a one-command transaction

Failures raise :class:`~ovsnet.errors.OvsdbTransactionError` (pass
``check_error=False`` to get ``None`` and ``txn.status`` instead).
"""

from __future__ import annotations

from . import commands as cmd
from .connection import DEFAULT_TIMEOUT, Connection
from .transaction import Transaction


class OvsdbApi:
    def __init__(self, connection: Connection):
        self.connection = connection

    @classmethod
    def connect(cls, remote: str, timeout: float = DEFAULT_TIMEOUT) -> OvsdbApi:
        return cls(Connection(remote, timeout=timeout))

    @property
    def idl(self):
        return self.connection.idl

    def close(self) -> None:
        self.connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def transaction(self, check_error: bool = True, timeout: float | None = None,
                    comment: str | None = None) -> Transaction:
        return Transaction(self, check_error=check_error, timeout=timeout, comment=comment)

    # Open_vSwitch
    def init(self):
        return cmd.InitCommand(self)

    def increment_next_cfg(self):
        return cmd.IncrementNextCfgCommand(self)

    # bridges
    def add_br(self, name: str, may_exist: bool = False, **columns):
        return cmd.AddBridgeCommand(self, name, may_exist=may_exist, **columns)

    def del_br(self, name: str, if_exists: bool = False):
        return cmd.DelBridgeCommand(self, name, if_exists=if_exists)

    def br_exists(self, name: str):
        return cmd.BridgeExistsCommand(self, name)

    def list_br(self):
        return cmd.ListBridgesCommand(self)

    # ports
    def add_port(self, bridge: str, name: str, may_exist: bool = False,
                 port_columns: dict | None = None, iface_columns: dict | None = None):
        return cmd.AddPortCommand(self, bridge, name, may_exist=may_exist,
                                  port_columns=port_columns, iface_columns=iface_columns)

    def add_bond(self, bridge: str, name: str, interfaces, may_exist: bool = False,
                 port_columns: dict | None = None, iface_columns: dict | None = None):
        return cmd.AddPortCommand(self, bridge, name, may_exist=may_exist,
                                  interfaces=interfaces, port_columns=port_columns,
                                  iface_columns=iface_columns)

    def del_port(self, name: str, bridge: str | None = None, if_exists: bool = False):
        return cmd.DelPortCommand(self, name, bridge=bridge, if_exists=if_exists)

    def list_ports(self, bridge: str):
        return cmd.ListPortsCommand(self, bridge)

    def port_to_br(self, name: str):
        return cmd.PortToBridgeCommand(self, name)

    # generic database commands
    def db_create(self, table: str, **columns):
        return cmd.DbCreateCommand(self, table, **columns)

    def db_destroy(self, table: str, record: str, if_exists: bool = False):
        return cmd.DbDestroyCommand(self, table, record, if_exists=if_exists)

    def db_set(self, table: str, record: str, *col_values, if_exists: bool = False):
        return cmd.DbSetCommand(self, table, record, *col_values, if_exists=if_exists)

    def db_clear(self, table: str, record: str, column: str):
        return cmd.DbClearCommand(self, table, record, column)

    def db_add(self, table: str, record: str, column: str, *values):
        return cmd.DbAddCommand(self, table, record, column, *values)

    def db_remove(self, table: str, record: str, column: str, *values, if_exists=False):
        return cmd.DbRemoveCommand(self, table, record, column, *values, if_exists=if_exists)

    def db_get(self, table: str, record: str, column: str):
        return cmd.DbGetCommand(self, table, record, column)

    def db_list(self, table: str, records=None, columns=None, if_exists: bool = False):
        return cmd.DbListCommand(self, table, records=records, columns=columns,
                                 if_exists=if_exists)

    def db_find(self, table: str, *conditions, columns=None):
        return cmd.DbFindCommand(self, table, *conditions, columns=columns)
