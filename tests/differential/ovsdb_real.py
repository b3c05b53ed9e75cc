"""Helpers for differential tests of the OVSDB engine against a real ovsdb-server.

:class:`RealOvsdb` runs Debian's ``ovsdb-server`` on a private unix socket
for any schema (the shipped ``Open_vSwitch`` one or :data:`TEST_SCHEMA`,
which has what ``vswitch.ovsschema`` lacks: reals, string lengths, weak
references that must not be empty, defaults that break constraints, chains
of non-root rows) and talks raw JSON-RPC to it over one connection, so
locks persist between requests. :class:`Normalizer` replaces every UUID by its
order of first appearance so that two servers' answers can be compared.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from ovsnet.ovsdb.backends import find_binary

IN_CI = os.environ.get("CI") == "true"

UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

_ref = {"type": "uuid", "refTable": "Child"}
_weak_target = {"type": "uuid", "refTable": "Target", "refType": "weak"}

#: A schema exercising what the Open_vSwitch schema does not.
TEST_SCHEMA = {
    "name": "Test",
    "version": "1.2.3",
    "tables": {
        "Root": {
            "isRoot": True,
            "indexes": [["name"]],
            "columns": {
                "name": {"type": "string"},
                "i": {"type": "integer"},
                "r": {"type": {"key": {"type": "real", "minReal": -10, "maxReal": 10.5}}},
                "b": {"type": "boolean"},
                "s": {"type": {"key": {"type": "string", "minLength": 0, "maxLength": 5},
                               "min": 0, "max": 1}},
                "e": {"type": {"key": {"type": "string", "enum": ["set", ["x", "y", "z"]]},
                               "min": 0, "max": 1}},
                "ints": {"type": {"key": {"type": "integer", "minInteger": 0,
                                          "maxInteger": 100}, "min": 0, "max": 5}},
                "reals": {"type": {"key": "real", "min": 0, "max": "unlimited"}},
                "m": {"type": {"key": "string", "value": "integer", "min": 0,
                               "max": "unlimited"}},
                "children": {"type": {"key": _ref, "min": 0, "max": "unlimited"}},
                "refmap": {"type": {"key": "integer", "value": _ref, "min": 0,
                                    "max": "unlimited"}},
                "weak": {"type": {"key": _weak_target, "min": 0, "max": "unlimited"}},
                "weakmap": {"type": {"key": "string", "value": _weak_target, "min": 0,
                                     "max": "unlimited"}},
                "fixed": {"type": "integer", "mutable": False},
                "eph": {"type": {"key": "string", "min": 0, "max": 1}, "ephemeral": True},
                "self": {"type": {"key": {"type": "uuid", "refTable": "Root"}, "min": 0,
                                  "max": 1}},
            },
        },
        "Child": {
            "columns": {
                "name": {"type": "string"},
                "kids": {"type": {"key": _ref, "min": 0, "max": "unlimited"}},
                "target": {"type": {"key": _weak_target, "min": 0, "max": 1}},
            },
        },
        "Target": {
            "isRoot": True,
            "columns": {"name": {"type": "string"}},
        },
        "Holder": {
            "isRoot": True,
            "columns": {
                "must": {"type": {"key": _weak_target, "min": 1, "max": 1}},
                "some": {"type": {"key": _weak_target, "min": 1, "max": 3}},
            },
        },
        "Pair": {
            "isRoot": True,
            "indexes": [["a", "b"]],
            "columns": {
                "a": {"type": "integer"},
                "b": {"type": "string"},
                "v": {"type": "integer"},
            },
        },
        "Misc": {
            "isRoot": True,
            "columns": {
                "wk": {"type": {"key": _weak_target, "value": "integer", "min": 0,
                                "max": "unlimited"}},
                "plain": {"type": {"key": "uuid", "min": 0, "max": "unlimited"}},
                "opt": {"type": {"key": {"type": "integer", "minInteger": -5,
                                         "maxInteger": 5}, "min": 0, "max": 1}},
                "flag": {"type": {"key": "boolean", "min": 0, "max": "unlimited"}},
            },
        },
        "Limited": {
            "isRoot": True,
            "maxRows": 2,
            "columns": {"n": {"type": "integer"}},
        },
        "Strict": {
            "isRoot": True,
            "columns": {
                "pos": {"type": {"key": {"type": "integer", "minInteger": 1}}},
                "word": {"type": {"key": {"type": "string", "enum": ["set", ["p", "q"]]}}},
                "free": {"type": "string"},
            },
        },
    },
}


def require_real_server() -> None:
    missing = [b for b in ("ovsdb-server", "ovsdb-tool") if find_binary(b) is None]
    if missing:
        reason = (f"{' and '.join(missing)} not found; install Debian's openvswitch-switch "
                  "(apt-get install openvswitch-switch)")
        if IN_CI:
            pytest.fail(f"CI=true and the real Open vSwitch binaries are missing: {reason}")
        pytest.skip(reason)


class RealOvsdb:
    """A private ovsdb-server for ``schema_path`` and one JSON-RPC connection to it."""

    def __init__(self, schema_path: str, extra_dbs: list[str] = ()):
        self.dir = Path(tempfile.mkdtemp(prefix="ovsnet-diff-", dir="/tmp"))
        self.db = self.dir / "db"
        self.sock = self.dir / "sock"
        self.pid: int | None = None
        subprocess.run([find_binary("ovsdb-tool"), "create", str(self.db), schema_path],
                       check=True, capture_output=True)
        subprocess.run([find_binary("ovsdb-server"), str(self.db), *extra_dbs,
                        f"--remote=punix:{self.sock}", f"--pidfile={self.dir / 'pid'}",
                        f"--unixctl={self.dir / 'ctl'}", f"--log-file={self.dir / 'log'}",
                        "--detach", "--no-chdir"],
                       check=True, capture_output=True)
        self.pid = int((self.dir / "pid").read_text())
        self.conn = RpcClient(str(self.sock))

    def transact(self, ops: list, db: str) -> list:
        return self.conn.call("transact", [db, *ops])["result"]

    def close(self) -> None:
        self.conn.close()
        if self.pid is not None:
            try:
                os.kill(self.pid, 15)
            except ProcessLookupError:
                pass
            self.pid = None
        shutil.rmtree(self.dir, ignore_errors=True)


class RpcClient:
    """Minimal blocking JSON-RPC client over a unix socket."""

    def __init__(self, path: str):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(30)
        self.sock.connect(path)
        self.buf = ""
        self.next_id = 0
        self.decoder = json.JSONDecoder()

    def send(self, method: str, params: list) -> int:
        self.next_id += 1
        msg = {"method": method, "params": params, "id": self.next_id}
        self.sock.sendall(json.dumps(msg).encode())
        return self.next_id

    def wait_reply(self, msg_id: int) -> dict:
        while True:
            text = self.buf.lstrip()
            if text:
                try:
                    obj, end = self.decoder.raw_decode(text)
                except ValueError:
                    obj = None
                if obj is not None:
                    self.buf = text[end:]
                    if obj.get("id") == msg_id and "method" not in obj:
                        return obj
                    continue
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("ovsdb-server closed the connection")
            self.buf += data.decode()

    def call(self, method: str, params: list) -> dict:
        return self.wait_reply(self.send(method, params))

    def close(self) -> None:
        self.sock.close()


class Normalizer:
    """Replaces each distinct UUID by ``<n>``, numbered by first appearance."""

    def __init__(self):
        self.ids: dict[str, str] = {}

    def _sub(self, text: str, assign: bool = True) -> str:
        def repl(m):
            u = m.group(0).lower()
            if u not in self.ids:
                if not assign:
                    return "<?>"
                self.ids[u] = f"<{len(self.ids)}>"
            return self.ids[u]
        return UUID_RE.sub(repl, text)

    def seed(self, value) -> None:
        """Registers the UUIDs a request mentions, in order."""
        self._sub(json.dumps(value))

    def __call__(self, value, assign: bool = True):
        if isinstance(value, str):
            value = self._sub(value, assign)
            return re.sub(r"timed out after \d+ ms", "timed out after N ms", value)
        if isinstance(value, list):
            if (len(value) == 2 and value[0] in ("set", "map") and isinstance(value[1], list)
                    and len(value[1]) > 1):
                # Sets and maps are sorted by UUID, which differs between servers.
                keyed = sorted(value[1], key=lambda v: json.dumps(self(v, assign=False)))
                return [value[0], [self(v, assign) for v in keyed]]
            return [self(v, assign) for v in value]
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if k == "_version":
                    out[k] = "<version>"
                elif k == "rows" and isinstance(v, list):
                    out[k] = self.rows(v, assign)
                else:
                    out[k] = self(v, assign)
            return out
        return value

    def rows(self, rows: list, assign: bool) -> list:
        """Select results in a canonical order (C's order follows its hash table)."""
        keyed = sorted(rows, key=lambda r: json.dumps(self(r, assign=False), sort_keys=True))
        return [self(r, assign) for r in keyed]


# --- transaction operation builders, shared by the engine and differential tests ---


def ins(table, row, name=None, uuid=None, **extra):
    op = {"op": "insert", "table": table, "row": row}
    if name:
        op["uuid-name"] = name
    if uuid:
        op["uuid"] = uuid
    op.update(extra)
    return op


def sel(table, where=(), columns=None, **extra):
    op = {"op": "select", "table": table, "where": list(where)}
    if columns is not None:
        op["columns"] = columns
    op.update(extra)
    return op


def upd(table, where, row):
    return {"op": "update", "table": table, "where": list(where), "row": row}


def mut(table, where, mutations):
    return {"op": "mutate", "table": table, "where": list(where), "mutations": mutations}


def dele(table, where=()):
    return {"op": "delete", "table": table, "where": list(where)}
