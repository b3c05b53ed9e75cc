"""The fast JSON stream parser against the ovs package's own parser."""

from __future__ import annotations

import json

import ovs.json
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ovsnet.ovsdb import jsonstream

ORIGINAL = jsonstream._original

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12),
    st.sampled_from(['"', "\\", "{", "}", "[", "]", '\\"', "\\\\\"", "é€😀", "\n\t"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=20,
)
messages = st.one_of(st.lists(values, max_size=4), st.dictionaries(st.text(max_size=6), values, max_size=4))


def split_stream(parser_cls, text: str, cuts: list[int]):
    """Feeds text in pieces as ovs.jsonrpc does; returns the finished values."""
    pieces, last = [], 0
    for cut in sorted(c % (len(text) + 1) for c in cuts):
        pieces.append(text[last:cut])
        last = cut
    pieces.append(text[last:])
    out, parser, pending = [], None, ""
    for piece in pieces:
        pending += piece
        while pending:
            if parser is None:
                parser = parser_cls()
            used = parser.feed(pending)
            pending = pending[used:]
            if parser.is_done():
                out.append(parser.finish())
                parser = None
            elif used == 0:
                break
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(messages, min_size=1, max_size=4), st.lists(st.integers(0, 10**6), max_size=6),
       st.sampled_from([None, 0, 2]))
def test_same_values_as_the_ovs_parser_whatever_the_chunking(msgs, cuts, indent):
    text = "".join(json.dumps(m, indent=indent, ensure_ascii=False) for m in msgs)
    ours = split_stream(jsonstream.StreamParser, text, cuts)
    theirs = split_stream(ORIGINAL, text, cuts)
    # After a syntax error ovs.jsonrpc drops the connection: compare up to it.
    errors = [i for i, v in enumerate(theirs) if isinstance(v, str)]
    if errors:
        k = errors[0]
        assert ours[:k] == theirs[:k] == msgs[:k]
        assert isinstance(ours[k], str)
    else:
        assert ours == theirs == msgs


@pytest.mark.parametrize("text", [
    '{"a": 1', '{"a": tru}', '{"a": "x}', "[1, 2,]", "{]", "nonsense",
])
def test_errors_are_reported_as_strings(text):
    parser = jsonstream.StreamParser()
    parser.feed(text)
    result = parser.finish()
    assert isinstance(result, str)


@pytest.mark.parametrize("text", ["[" * 1001, "[" * 5000 + "]" * 5000])
def test_nesting_limit(text):
    parser = jsonstream.StreamParser()
    parser.feed(text)
    assert "nesting" in parser.finish()


@pytest.mark.parametrize("text", ['5', '{"a": 1} x', '{"a": [1, "b"]}', '"s"', "[1,"])
def test_from_string_keeps_the_original_behaviour(text):
    installed = ovs.json.from_string(text)
    jsonstream.uninstall()
    try:
        original = ovs.json.from_string(text)
    finally:
        jsonstream.install()
    assert installed == original


def test_installed_for_jsonrpc():
    assert ovs.json.Parser is jsonstream.StreamParser or ovs.json.PARSER == ovs.json.PARSER_C
