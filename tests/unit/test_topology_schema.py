"""The published JSON Schema of topology files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

from ovsnet.topology import SCHEMA, schema_path
from ovsnet.topology.model import BOND_MODES, FAIL_MODES, LACP_MODES, PORT_TYPES, VLAN_MODES

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "topologies").glob("*.yaml"))


def test_published_file_is_the_schema():
    path = schema_path()
    assert path.name == "topology.schema.json" and path.is_file()
    assert json.loads(path.read_text()) == SCHEMA
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_schema_is_valid_draft_2020_12():
    Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_validate_against_the_schema(path):
    data = YAML(typ="safe", pure=True).load(path.read_text())
    Draft202012Validator(SCHEMA).validate(data)


def test_schema_enums_match_the_model():
    defs = SCHEMA["$defs"]
    port = defs["port"]["properties"]
    assert tuple(defs["port_type"]["enum"]) == PORT_TYPES
    assert tuple(port["vlan_mode"]["enum"]) == VLAN_MODES
    assert tuple(port["bond_mode"]["enum"]) == BOND_MODES
    assert tuple(port["lacp"]["enum"]) == LACP_MODES
    assert tuple(defs["bridge"]["properties"]["fail_mode"]["enum"]) == FAIL_MODES


def test_schema_avoids_alternatives():
    """No oneOf/anyOf: each problem must give one error, not one per branch."""
    text = schema_path().read_text()
    assert '"oneOf"' not in text and '"anyOf"' not in text
