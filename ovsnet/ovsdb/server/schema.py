"""OVSDB schemas: parsing and checking them as ``ovsdb-tool``/``ovsdb-server`` do.

Mirrors ``lib/ovsdb-types.c`` (atomic, base and column types with their
constraints), ``ovsdb/column.c``, ``ovsdb/table.c`` (tables, the implicit
``_uuid`` and ``_version`` columns, ``maxRows``, ``isRoot``, ``indexes``)
and ``ovsdb/ovsdb.c`` (the database schema, the "every table is a root if
none is" rule, ``refTable`` checks, strong references to non-root tables
forced persistent, weak references forced mutable), with C's error texts.

Columns keep C's iteration order (:func:`.cjson.shash_order`), because that
order decides which of several problems C reports first. The attribute names
follow the ``ovs`` package's ``ovs.db.schema``/``ovs.db.types`` (``columns``,
``max_rows``, ``is_root``, ``indexes``, ``type.key``, ``type.n_min``, ...).

:func:`load_schema` reads ``vswitch.ovsschema`` as shipped with this package
(a copy of Open vSwitch 3.1.0's; see ``ovsnet/ovsdb/schemas/README.md``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ...errors import OvsdbError
from .cjson import INT64_MAX, INT64_MIN, UINT_MAX, c_integer, shash_order
from .datum import (
    DBL_MAX,
    OpError,
    is_id,
    make_atom_parser,
    make_constraint_checker,
    make_datum_parser,
    make_datum_to_json,
    syntax_error,
)
from .parser import ANY, ARRAY, BOOLEAN, ID, INTEGER, MISSING, NUMBER, OBJECT, STRING, Parser

VSWITCH_SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "vswitch.ovsschema"

ATOMIC_TYPES = ("integer", "real", "boolean", "string", "uuid")
_VERSION_RE = re.compile(r"\d+\.\d+\.\d+")


class OvsdbSchemaError(OvsdbError):
    """A schema that ovsdb-tool would reject; ``error`` is the C error (tag/details/syntax)."""

    exit_code = 2

    def __init__(self, error: OpError, where: str | None = None):
        self.error = error
        text = str(error)
        super().__init__(f"{where}: {text}" if where else text)


def load_schema(path: str | Path | None = None) -> dict:
    """The JSON of a schema file: the shipped ``Open_vSwitch`` schema by default."""
    path = Path(path) if path is not None else VSWITCH_SCHEMA_PATH
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise OvsdbError(f"cannot read schema {path}: {e.strerror}") from e
    except ValueError as e:
        raise OvsdbSchemaError(OpError("failed to read schema",
                                       f'"{path}" could not be read as JSON ({e})')) from e


# -- types (lib/ovsdb-types.c) -------------------------------------------------------

class BaseType:
    """``struct ovsdb_base_type``: an atomic type and its constraints."""

    __slots__ = ("type", "enum", "enum_sorted", "min", "max", "min_len", "max_len",
                 "ref_table_name", "ref_type", "parse", "check")

    def __init__(self, atype: str):
        self.type = atype
        self.enum: frozenset | None = None
        self.enum_sorted: tuple = ()
        self.min = INT64_MIN if atype == "integer" else -DBL_MAX
        self.max = INT64_MAX if atype == "integer" else DBL_MAX
        self.min_len, self.max_len = 0, UINT_MAX
        self.ref_table_name: str | None = None
        self.ref_type = "strong"
        self.parse = None
        self.check = None

    def finalize(self) -> BaseType:
        self.parse = make_atom_parser(self)
        self.check = make_constraint_checker(self)
        return self

    @property
    def ref_table(self) -> str | None:
        return self.ref_table_name

    def is_ref(self) -> bool:
        return self.type == "uuid" and self.ref_table_name is not None

    def is_strong_ref(self) -> bool:
        return self.is_ref() and self.ref_type == "strong"

    def is_weak_ref(self) -> bool:
        return self.is_ref() and self.ref_type == "weak"

    def has_constraints(self) -> bool:
        if self.enum is not None:
            return True
        if self.type == "integer":
            return self.min != INT64_MIN or self.max != INT64_MAX
        if self.type == "real":
            return self.min != -DBL_MAX or self.max != DBL_MAX
        if self.type == "string":
            return self.min_len != 0 or self.max_len != UINT_MAX
        if self.type == "uuid":
            return self.ref_table_name is not None
        return False

    def to_json(self):
        """``ovsdb_base_type_to_json``."""
        if not self.has_constraints():
            return self.type
        out: dict = {"type": self.type}
        if self.enum is not None:
            out["enum"] = Type(self.without_constraints(), None, 1, UINT_MAX).to_json_datum(
                self.enum_sorted)
        if self.type == "integer":
            if self.min != INT64_MIN:
                out["minInteger"] = self.min
            if self.max != INT64_MAX:
                out["maxInteger"] = self.max
        elif self.type == "real":
            if self.min != -DBL_MAX:
                out["minReal"] = self.min
            if self.max != DBL_MAX:
                out["maxReal"] = self.max
        elif self.type == "string":
            if self.min_len != 0:
                out["minLength"] = self.min_len
            if self.max_len != UINT_MAX:
                out["maxLength"] = self.max_len
        elif self.type == "uuid" and self.ref_table_name is not None:
            out["refTable"] = self.ref_table_name
            if self.ref_type == "weak":
                out["refType"] = "weak"
        return out

    def without_constraints(self) -> BaseType:
        return BaseType(self.type).finalize()


class Type:
    """``struct ovsdb_type``: key and optional value base types, ``n_min``..``n_max`` elements."""

    __slots__ = ("key", "value", "n_min", "n_max", "parse", "to_json_datum", "default")

    def __init__(self, key: BaseType, value: BaseType | None, n_min: int, n_max: int):
        self.key = key
        self.value = value
        self.n_min = n_min
        self.n_max = n_max
        self.parse = make_datum_parser(self)
        self.to_json_datum = make_datum_to_json(self)
        self.default = _default_datum(self)

    def is_scalar(self) -> bool:
        return self.value is None and self.n_min == 1 and self.n_max == 1

    def is_optional_scalar(self) -> bool:
        return self.value is None and self.n_min == 0 and self.n_max == 1

    def is_set(self) -> bool:
        return self.value is None and (self.n_min != 1 or self.n_max != 1)

    def is_map(self) -> bool:
        return self.value is not None

    def is_composite(self) -> bool:
        return self.n_max > 1

    def relaxed(self, key: BaseType | None = None, value=MISSING, n_min: int | None = None,
                n_max: int | None = None) -> Type:
        """A copy with some parts replaced (as C relaxes a type for conditions and mutations)."""
        return Type(self.key if key is None else key,
                    self.value if value is MISSING else value,
                    self.n_min if n_min is None else n_min,
                    self.n_max if n_max is None else n_max)

    def to_english(self) -> str:
        """``ovsdb_type_to_english``."""
        key = self.key.type
        if self.is_scalar():
            return key
        s = "set" if self.value is None else "map"
        if self.n_max == UINT_MAX:
            s += f" of {self.n_min} or more" if self.n_min else " of"
        elif self.n_min:
            s += f" of {self.n_min} to {self.n_max}"
        else:
            s += f" of up to {self.n_max}"
        if self.value is None:
            return f"{s} {key}s"
        return f"{s} ({key}, {self.value.type}) pairs"

    def to_json(self):
        """``ovsdb_type_to_json``."""
        if self.is_scalar() and not self.key.has_constraints():
            return self.key.to_json()
        out: dict = {"key": self.key.to_json()}
        if self.value is not None:
            out["value"] = self.value.to_json()
        if self.n_min != 1:
            out["min"] = self.n_min
        if self.n_max == UINT_MAX:
            out["max"] = "unlimited"
        elif self.n_max != 1:
            out["max"] = self.n_max
        return out


_DEFAULT_ATOM = {"integer": 0, "real": 0.0, "boolean": False, "string": "",
                 "uuid": "00000000-0000-0000-0000-000000000000"}


def _default_datum(t: Type) -> tuple:
    """``ovsdb_datum_init_default``: empty, or one default key (and value)."""
    if t.n_min == 0:
        return ()
    if t.value is None:
        return (_DEFAULT_ATOM[t.key.type],)
    return ((_DEFAULT_ATOM[t.key.type], _DEFAULT_ATOM[t.value.type]),)


def _atomic_type_from_json(j) -> str:
    if type(j) is str:
        if j in ATOMIC_TYPES:
            return j
        raise syntax_error(j, None, f'"{j}" is not an atomic-type')
    raise syntax_error(j, None, "atomic-type expected")


def _optional_uint(p: Parser, name: str, default: int) -> int:
    j = p.member(name, INTEGER, optional=True)
    if j is MISSING:
        return default
    v = c_integer(j)
    if v < 0 or v > UINT_MAX:
        raise syntax_error(j, None, f"{name} out of valid range 0 to {UINT_MAX}")
    return v


def base_type_from_json(j) -> BaseType:
    """``ovsdb_base_type_from_json``."""
    if type(j) is str:
        return BaseType(_atomic_type_from_json(j)).finalize()
    p = Parser(j, "ovsdb type")
    type_json = p.member("type", STRING)
    if p.error is not None:
        raise p.finish()
    base = BaseType(_atomic_type_from_json(type_json))
    error = None
    try:
        enum = p.member("enum", ANY, optional=True)
        if enum is not MISSING:
            enum_type = Type(BaseType(base.type).finalize(), None, 1, UINT_MAX)
            datum = enum_type.parse(enum, None)
            base.enum = frozenset(datum)
            base.enum_sorted = datum
        elif base.type == "integer":
            lo = p.member("minInteger", INTEGER, optional=True)
            hi = p.member("maxInteger", INTEGER, optional=True)
            base.min = INT64_MIN if lo is MISSING else c_integer(lo)
            base.max = INT64_MAX if hi is MISSING else c_integer(hi)
            if base.min > base.max:
                raise syntax_error(j, None, "minInteger exceeds maxInteger")
        elif base.type == "real":
            lo = p.member("minReal", NUMBER, optional=True)
            hi = p.member("maxReal", NUMBER, optional=True)
            base.min = -DBL_MAX if lo is MISSING else float(lo)
            base.max = DBL_MAX if hi is MISSING else float(hi)
            if base.min > base.max:
                raise syntax_error(j, None, "minReal exceeds maxReal")
        elif base.type == "string":
            base.min_len = _optional_uint(p, "minLength", 0)
            base.max_len = _optional_uint(p, "maxLength", UINT_MAX)
            if base.min_len > base.max_len:
                raise syntax_error(j, None, "minLength exceeds maxLength")
        elif base.type == "uuid":
            ref_table = p.member("refTable", ID, optional=True)
            if ref_table is not MISSING:
                base.ref_table_name = ref_table
                ref_type = p.member("refType", ID, optional=True)
                if ref_type is not MISSING:
                    if ref_type not in ("strong", "weak"):
                        raise syntax_error(j, None, 'refType must be "strong" or "weak" '
                                                    f'(not "{ref_type}")')
                    base.ref_type = ref_type
    except OpError as e:
        error = e
    finish = p.finish()
    if error is not None:
        raise error
    if finish is not None:
        raise finish
    return base.finalize()


def _n_from_json(j, default: int) -> int:
    if j is MISSING:
        return default
    v = c_integer(j)
    if v is None or v < 0 or v >= UINT_MAX:
        raise syntax_error(j, None, "bad min or max value")
    return v


def type_from_json(j) -> Type:
    """``ovsdb_type_from_json``."""
    if type(j) is str:
        return Type(base_type_from_json(j), None, 1, 1)
    if type(j) is not dict:
        raise syntax_error(j, None, "ovsdb type expected")
    p = Parser(j, "ovsdb type")
    key = p.member("key", STRING | OBJECT)
    value = p.member("value", STRING | OBJECT, optional=True)
    n_min = p.member("min", INTEGER, optional=True)
    n_max = p.member("max", INTEGER | STRING, optional=True)
    error = p.finish()
    if error is not None:
        raise error
    key_type = base_type_from_json(key)
    value_type = base_type_from_json(value) if value is not MISSING else None
    lo = _n_from_json(n_min, 1)
    if n_max == "unlimited":
        hi = UINT_MAX
    else:
        hi = _n_from_json(n_max, 1)
    if not (lo <= 1 and hi >= 1 and key_type.min <= key_type.max
            and key_type.min_len <= key_type.max_len):
        raise syntax_error(j, None, "ovsdb type fails constraint checks")
    return Type(key_type, value_type, lo, hi)


# -- columns, tables, databases ---------------------------------------------------

class Column:
    """``struct ovsdb_column``."""

    __slots__ = ("name", "index", "type", "mutable", "persistent", "relaxed_types")

    def __init__(self, name: str, index: int, ctype: Type, mutable: bool, persistent: bool):
        self.name = name
        self.index = index
        self.type = ctype
        self.mutable = mutable
        self.persistent = persistent
        #: cache of the relaxed types conditions and mutations parse arguments with
        self.relaxed_types: dict[str, Type] = {}

    def to_json(self) -> dict:
        out: dict = {}
        if not self.mutable:
            out["mutable"] = False
        if not self.persistent:
            out["ephemeral"] = True
        out["type"] = self.type.to_json()
        return out


_UUID_TYPE = Type(BaseType("uuid").finalize(), None, 1, 1)


def column_from_json(j, name: str, index: int) -> Column:
    """``ovsdb_column_from_json``."""
    p = Parser(j, f"schema for column {name}")
    mutable = p.member("mutable", BOOLEAN, optional=True)
    ephemeral = p.member("ephemeral", BOOLEAN, optional=True)
    type_json = p.member("type", STRING | OBJECT)
    error = p.finish()
    if error is not None:
        raise error
    ctype = type_from_json(type_json)
    is_mutable = mutable is MISSING or mutable is True
    if not is_mutable and (ctype.key.is_weak_ref()
                           or (ctype.value is not None and ctype.value.is_weak_ref())):
        is_mutable = True  # a weak reference must be able to lose deleted rows
    return Column(name, index, ctype, is_mutable, ephemeral is MISSING or ephemeral is False)


class TableSchema:
    """``struct ovsdb_table_schema``; ``columns`` iterate in C's order."""

    def __init__(self, name: str, mutable: bool, max_rows: int, is_root: bool):
        self.name = name
        self.mutable = mutable
        self.max_rows = max_rows
        self.is_root = is_root
        self.columns: dict[str, Column] = {}
        self.indexes: list[tuple[str, ...]] = []
        self._add(Column("_uuid", 0, _UUID_TYPE, False, True))
        self._add(Column("_version", 1, _UUID_TYPE, False, False))

    def _add(self, column: Column) -> None:
        self.columns[column.name] = column

    def _finish_order(self) -> None:
        self.columns = {n: self.columns[n] for n in shash_order(self.columns)}

    def to_json(self, default_is_root: bool) -> dict:
        out: dict = {}
        if not self.mutable:
            out["mutable"] = False
        if default_is_root != self.is_root:
            out["isRoot"] = self.is_root
        out["columns"] = {c.name: c.to_json() for c in self.columns.values()
                          if not c.name.startswith("_")}
        if self.max_rows != UINT_MAX:
            out["maxRows"] = self.max_rows
        if self.indexes:
            out["indexes"] = [list(index) for index in self.indexes]
        return out


def _column_set_from_json(j, table: TableSchema) -> tuple[str, ...]:
    """``ovsdb_column_set_from_json`` (with a JSON value present)."""
    names: list[str] = []
    if type(j) is list:
        for e in j:
            if type(e) is not str:
                break
            if e not in table.columns:
                raise syntax_error(j, None, f"{e} is not a valid column name")
            if e in names:
                break
            names.append(e)
        else:
            return tuple(names)
    raise syntax_error(j, None, "array of distinct column names expected")


def table_schema_from_json(j, name: str) -> TableSchema:
    """``ovsdb_table_schema_from_json``."""
    p = Parser(j, f"table schema for table {name}")
    columns = p.member("columns", OBJECT)
    mutable = p.member("mutable", BOOLEAN, optional=True)
    max_rows = p.member("maxRows", INTEGER, optional=True)
    is_root = p.member("isRoot", BOOLEAN, optional=True)
    indexes = p.member("indexes", ARRAY, optional=True)
    error = p.finish()
    if error is not None:
        raise error
    if max_rows is not MISSING:
        n_max_rows = c_integer(max_rows)
        if n_max_rows <= 0:
            raise syntax_error(j, None, "maxRows must be at least 1")
    else:
        n_max_rows = UINT_MAX
    if not columns:
        raise syntax_error(j, None, "table must have at least one column")
    ts = TableSchema(name, mutable is MISSING or mutable is True, min(n_max_rows, UINT_MAX),
                     is_root is True)
    for column_name in shash_order(columns):
        if column_name.startswith("_"):
            raise syntax_error(j, None, 'names beginning with "_" are reserved')
        if not is_id(column_name):
            raise syntax_error(j, None, "name must be a valid id")
        ts._add(column_from_json(columns[column_name], column_name, len(ts.columns)))
    ts._finish_order()
    if indexes is not MISSING:
        for index_json in indexes:
            index = _column_set_from_json(index_json, ts)
            if not index:
                raise syntax_error(j, None, "index must have at least one column")
            ts.indexes.append(index)
            for column_name in index:
                if not ts.columns[column_name].persistent:
                    raise syntax_error(j, None, f"ephemeral columns (such as {column_name}) "
                                                "may not be indexed")
    return ts


class DatabaseSchema:
    """``struct ovsdb_schema``; ``tables`` iterate in C's order."""

    def __init__(self, name: str, version: str, cksum: str):
        self.name = name
        self.version = version
        self.cksum = cksum
        self.tables: dict[str, TableSchema] = {}

    def to_json(self) -> dict:
        """``ovsdb_schema_to_json``: the normalised form ``get_schema`` returns."""
        out: dict = {"name": self.name}
        if self.version:
            out["version"] = self.version
        if self.cksum:
            out["cksum"] = self.cksum
        default_is_root = all(t.is_root for t in self.tables.values())
        out["tables"] = {t.name: t.to_json(default_is_root) for t in self.tables.values()}
        return out


def schema_from_json(j) -> DatabaseSchema:
    """``ovsdb_schema_from_json``; raises :class:`OvsdbSchemaError` as ovsdb-tool would fail."""
    try:
        return _schema_from_json(j)
    except OpError as e:
        raise OvsdbSchemaError(e) from None


def _schema_from_json(j) -> DatabaseSchema:
    p = Parser(j, "database schema")
    name = p.member("name", ID)
    version = p.member("version", STRING, optional=True)
    cksum = p.member("cksum", STRING, optional=True)
    tables = p.member("tables", OBJECT)
    error = p.finish()
    if error is not None:
        raise error
    if version is not MISSING:
        if not _VERSION_RE.fullmatch(version):
            raise syntax_error(j, None, f'schema version "{version}" not in format x.y.z')
    else:
        version = ""
    schema = DatabaseSchema(name, version, "" if cksum is MISSING else cksum)
    for table_name in shash_order(tables):
        if table_name.startswith("_"):
            raise syntax_error(j, None, 'names beginning with "_" are reserved')
        if not is_id(table_name):
            raise syntax_error(j, None, "name must be a valid id")
        schema.tables[table_name] = table_schema_from_json(tables[table_name], table_name)
    schema.tables = {n: schema.tables[n] for n in shash_order(schema.tables)}
    if not any(t.is_root for t in schema.tables.values()):
        for t in schema.tables.values():
            t.is_root = True
    for table in schema.tables.values():
        for column in table.columns.values():
            for base, which in ((column.type.key, "key"), (column.type.value, "value")):
                if base is None or not base.is_ref():
                    continue
                ref = schema.tables.get(base.ref_table_name)
                if ref is None:
                    raise OpError("syntax error", f"column {column.name} {which} refers to "
                                                  f"undefined table {base.ref_table_name}")
                if base.is_strong_ref() and not ref.is_root:
                    # Replaying a log must find every row a strong ref points to.
                    column.persistent = True
    return schema
