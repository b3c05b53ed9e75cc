"""The error hierarchy of ovsnet.

Every error ovsnet raises on purpose derives from :class:`OvsnetError`, with one
subclass per layer. The CLI prints ``str(error)`` to stderr and exits with
``error.exit_code`` (2 for bad input, 1 for a check or operation that failed).
Messages say what was wrong, where, and what would be valid.
"""

from __future__ import annotations

from dataclasses import dataclass


class OvsnetError(Exception):
    """Root of every error ovsnet raises deliberately."""

    #: exit status of the CLI when this error ends a command
    exit_code = 1


class UsageError(OvsnetError):
    """A command was called with arguments that cannot work."""

    exit_code = 2


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem found in an input file, at a 1-based line and column."""

    file: str
    line: int
    column: int
    path: str  # dotted path of the offending key, e.g. hosts.hv1.bridges.br-int
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class TopologyError(OvsnetError):
    """A topology file is malformed or inconsistent; carries every problem found."""

    exit_code = 2

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = sorted(diagnostics)
        n = len(self.diagnostics)
        head = f"{n} error{'s' if n != 1 else ''} in topology"
        super().__init__("\n".join([head, *(str(d) for d in self.diagnostics)]))


class OvsdbError(OvsnetError):
    """Talking to an OVSDB server failed (connection, timeout, protocol)."""


class OvsdbTransactionError(OvsdbError):
    """A transaction was rejected by the server or by a command inside it.

    Nothing of the transaction was written.
    """


class ForeignObjectError(OvsdbTransactionError):
    """ovsnet was asked to modify or delete an object it does not own."""

    exit_code = 2


class BackendError(OvsdbError):
    """An OVSDB server backend could not be started or is not available."""


class DatapathError(OvsnetError):
    """The datapath model was given something it cannot process."""


class PacketError(DatapathError, ValueError):
    """A packet, batch or address given to the datapath model is invalid."""

    exit_code = 2


class OfprotoError(OvsnetError):
    """The OpenFlow layer (ofproto) was given something it cannot process."""

    exit_code = 2
