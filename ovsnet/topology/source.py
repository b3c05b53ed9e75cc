"""A YAML document as plain data plus the position of every key and value.

ruamel.yaml's composer gives a node tree in which every node knows where it
was written; its constructor would stop at the first duplicate key. This
module walks the node tree itself and produces:

* ``Document.data``: plain ``dict``/``list``/scalars, the shape JSON Schema
  validates (mapping keys are always the key's text);
* ``Document.keys`` / ``Document.values``: for every path (a tuple of mapping
  keys and list indices) the 1-based line/column of the key and of the value;
* a :class:`~ovsnet.errors.Diagnostic` for each syntax error, duplicate key,
  non-scalar key and recursive alias, all at once.

Merge keys (``<<: *anchor``) are honoured: explicit keys win over merged ones,
and merged values keep the position of the anchor they came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..errors import Diagnostic
from .model import Position

Path = tuple  # of str (mapping keys) and int (list indices)

_CORE = "tag:yaml.org,2002:"
_CONSTRUCTED = {"int", "float", "bool", "null"}


def format_path(path: Path) -> str:
    """``("hosts", "hv1", "links", 0)`` -> ``hosts.hv1.links[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class Document:
    """Plain data of one YAML file with the positions of its keys and values."""

    file: str
    data: Any = None
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    #: paths whose value the JSON schema rejected: the model builder ignores them
    bad: set[Path] = field(default_factory=set)
    #: where each model object came from: id(obj) (or another key) -> path
    origin: dict[Any, Path] = field(default_factory=dict)

    def where(self, path: Path, at: str = "value") -> tuple[int, int]:
        """Line and column of ``path``'s key (``at="key"``) or value.

        A path that does not exist (a missing key) falls back to its
        nearest existing parent, so a diagnostic always has a position.
        """
        path = tuple(path)
        while True:
            first, second = (self.keys, self.values) if at == "key" else (self.values, self.keys)
            if path in first:
                return first[path]
            if path in second:
                return second[path]
            if not path:
                return (1, 1)
            path = path[:-1]
            at = "key"

    def position(self, path: Path, at: str = "key") -> Position:
        line, column = self.where(path, at)
        return Position(self.file, line, column)

    def diag(self, path: Path, message: str, at: str = "value") -> Diagnostic:
        line, column = self.where(path, at)
        return Diagnostic(self.file, line, column, format_path(path), message)

    def is_bad(self, path: Path) -> bool:
        return tuple(path) in self.bad

    def tainted(self, path: Path) -> bool:
        """Whether the schema rejected ``path`` or a parent of it, so what is there is unknown.

        Cross-reference checks skip such places: "no NIC eth0" after "nics: expected a
        mapping" would only repeat the first diagnostic.
        """
        path = tuple(path)
        return any(path[:i] in self.bad for i in range(len(path) + 1))

    def get(self, path: Path, types: type | tuple[type, ...] = object, default: Any = None) -> Any:
        """The value at ``path`` if it exists, has one of ``types`` and passed the schema."""
        node = self.data
        for i, part in enumerate(path):
            if tuple(path[: i + 1]) in self.bad:
                return default
            if isinstance(part, int) and isinstance(node, list) and part < len(node):
                node = node[part]
            elif isinstance(part, str) and isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return default
        wanted = types if isinstance(types, tuple) else (types,)
        if isinstance(node, bool) and not (bool in wanted or object in wanted):
            return default  # YAML true is not an integer here, whatever Python thinks
        return node if isinstance(node, types) else default

    def mapping(self, path: Path) -> dict:
        """The mapping at ``path``; an absent, null or rejected one is ``{}``."""
        value = self.get(path, dict)
        return value if value is not None else {}


def _mark(node: Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _tag(node: Node) -> str:
    tag = node.tag
    return str(getattr(tag, "value", tag) or "")


class _Walker:
    def __init__(self, yaml: YAML, doc: Document, diags: list[Diagnostic]):
        self.constructor = yaml.constructor
        self.doc = doc
        self.diags = diags
        self.active: set[int] = set()  # nodes being converted: catches recursive aliases
        self.reported: set[tuple[int, int]] = set()

    def report(self, node: Node, path: Path, message: str) -> None:
        mark = _mark(node)
        if mark not in self.reported:  # an aliased node is walked once per alias
            self.reported.add(mark)
            self.diags.append(Diagnostic(self.doc.file, *mark, format_path(path), message))

    def convert(self, node: Node, path: Path) -> Any:
        self.doc.values[path] = _mark(node)
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if id(node) in self.active:
            self.report(node, path, "recursive alias: a value cannot contain itself")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, MappingNode):
                return self.mapping(node, path)
        finally:
            self.active.discard(id(node))
        return None

    def scalar(self, node: ScalarNode) -> Any:
        tag = _tag(node)
        if tag.startswith(_CORE) and tag[len(_CORE) :] in _CONSTRUCTED:
            return self.constructor.construct_object(node, deep=True)
        return node.value  # str, timestamps and unknown tags stay text

    def mapping(self, node: MappingNode, path: Path) -> dict:
        result: dict[str, Any] = {}
        # merged keys first so that explicit keys (and their positions) win
        for key_node, value_node in node.value:
            if _tag(key_node) != _CORE + "merge":
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, MappingNode) or id(source) in self.active:
                    self.report(
                        source, path, "a merge key '<<' takes a mapping or a list of mappings"
                    )
                    continue
                self.active.add(id(source))
                try:
                    for key, value in self.mapping(source, path).items():
                        result.setdefault(key, value)
                finally:
                    self.active.discard(id(source))
        first_seen: dict[str, tuple[int, int]] = {}
        for key_node, value_node in node.value:
            if _tag(key_node) == _CORE + "merge":
                continue
            if not isinstance(key_node, ScalarNode):
                self.report(
                    key_node, path, "mapping keys must be plain names, not lists or mappings"
                )
                continue
            key = str(key_node.value)
            if key in first_seen:
                line, column = first_seen[key]
                self.report(
                    key_node,
                    (*path, key),
                    f"duplicate key {key!r} (first defined at line {line}, column {column}); "
                    "each key may appear once in a mapping",
                )
                continue
            first_seen[key] = _mark(key_node)
            self.doc.keys[(*path, key)] = _mark(key_node)
            result[key] = self.convert(value_node, (*path, key))
        return result


def parse_document(text: str, file: str) -> tuple[Document, list[Diagnostic]]:
    """Parse YAML ``text``; the document plus every problem found in it."""
    doc = Document(file)
    yaml = YAML(typ="safe", pure=True)
    try:
        root = yaml.compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = f"YAML syntax error: {exc.problem or exc.context}"
        if exc.problem and exc.problem.startswith("but found another document"):
            return doc, [
                Diagnostic(
                    file,
                    line,
                    column,
                    "",
                    "a topology file holds one YAML document; "
                    "remove the '---' and what follows, or split the file",
                )
            ]
        if exc.context and exc.problem and exc.context_mark is not None:
            where = f"line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
            message += f" ({exc.context} at {where})"
        elif exc.context and exc.problem:
            message += f" ({exc.context})"
        return doc, [Diagnostic(file, line, column, "", message)]
    except YAMLError as exc:  # e.g. a reader error for a non-printable character
        return doc, [Diagnostic(file, 1, 1, "", f"YAML error: {exc}")]
    if root is None:
        return doc, [Diagnostic(file, 1, 1, "", "empty document: a topology needs at least 'name'")]
    diags: list[Diagnostic] = []
    doc.data = _Walker(yaml, doc, diags).convert(root, ())
    return doc, diags
