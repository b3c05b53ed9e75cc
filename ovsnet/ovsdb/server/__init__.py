"""ovsnet's embedded, pure-Python ovsdb-server (RFC 7047, as Open vSwitch 3.1 behaves).

The engine (:mod:`.engine`, :mod:`.execution`, :mod:`.commit`, :mod:`.schema`,
:mod:`.datum`) executes transactions; :mod:`.storage` keeps the on-disk log.
"""

from .commit import Commit
from .engine import Database, TransactResult
from .schema import VSWITCH_SCHEMA_PATH, OvsdbSchemaError, load_schema

__all__ = [
    "Commit",
    "Database",
    "OvsdbSchemaError",
    "TransactResult",
    "VSWITCH_SCHEMA_PATH",
    "load_schema",
]

# The protocol side (:mod:`.protocol`, :mod:`.session`, :mod:`.monitor`,
# :mod:`.server`, :mod:`.main`): JSON-RPC, monitors, locks, the main loop.
from .server import OvsdbServer  # noqa: E402

__all__ += ["OvsdbServer"]
