"""Fixtures for differential tests of the OVSDB engine against a real ovsdb-server."""

from __future__ import annotations

import json

import pytest

from tests.differential.ovsdb_real import TEST_SCHEMA, RealOvsdb, require_real_server


@pytest.fixture(scope="session")
def test_schema_path(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("schema") / "test.ovsschema"
    path.write_text(json.dumps(TEST_SCHEMA))
    return str(path)


@pytest.fixture(scope="session")
def real_servers(test_schema_path):
    """{"Open_vSwitch": server, "Test": server}; started once per session."""
    require_real_server()
    from ovsnet.ovsdb.server import VSWITCH_SCHEMA_PATH
    servers = {}
    try:
        servers["Open_vSwitch"] = RealOvsdb(str(VSWITCH_SCHEMA_PATH))
        servers["Test"] = RealOvsdb(test_schema_path)
        yield servers
    finally:
        for s in servers.values():
            s.close()
