"""ovs-vsctl's value syntax (lib/ovsdb-data.c, OVS 3.1)."""

from __future__ import annotations

import uuid

import pytest

from ovsnet.ovsdb.vsctl_format import atom_to_string, datum_to_string, string_needs_quotes


@pytest.mark.parametrize("s,quoted", [
    ("br0", False), ("br-int", False), ("_x.y-z", False), ("vxlan_sys_4789", False),
    ("", True), ("0abc", True), ("true", True), ("false", True), ("a b", True),
    ("1.2.3.4", True), ("52:54:00:00:00:01", True), ("a/b", True), ("é", True),
    (str(uuid.UUID(int=5)), True), ("secure", False),
])
def test_bare_or_quoted_strings(s, quoted):
    assert string_needs_quotes(s) is quoted


@pytest.mark.parametrize("value,text", [
    (10, "10"), (True, "true"), (False, "false"), (1.5, "1.5"),
    ("br0", "br0"), ("a\"b", '"a\\"b"'), ("a\\b", '"a\\\\b"'), ("tab\t", '"tab\\t"'),
])
def test_atoms(value, text):
    assert atom_to_string(value) == text


@pytest.mark.parametrize("value,is_map,n_max,text", [
    ([], False, 1, "[]"),
    ([10], False, 1, "10"),
    ([12, 10], False, 4096, "[10, 12]"),
    ({}, True, 2**32, "{}"),
    ({"remote_ip": "1.2.3.4", "key": "100"}, True, 2**32, '{key="100", remote_ip="1.2.3.4"}'),
    ({"b": "x", "B": "y", "a": "z"}, True, 2**32, "{B=y, a=z, b=x}"),  # byte order, as strcmp
    ("secure", False, 1, "secure"),
])
def test_datums(value, is_map, n_max, text):
    assert datum_to_string(value, is_map, n_max) == text
