"""The ten OVSDB operations, their conditions and mutations.

Mirrors ``ovsdb/execution.c`` (insert, select, update, mutate, delete, wait,
commit, abort, comment, assert: which members each reads, in which order,
and the errors), ``ovsdb/condition.c`` (``where`` clauses: the eight
functions plus the boolean constants, how each relaxes the column type of
its argument, how it compares), ``ovsdb/mutation.c`` (the seven mutators,
C's overflow checks and its "domain error"/"range error"/"constraint
violation" results), ``ovsdb/row.c`` (a row from JSON, members in C's hash
order) and ``ovsdb/column.c`` (column sets).

Every operation reads and writes through the transaction overlay
(:class:`.commit.Txn`), so later operations see the effect of earlier ones.
"""

from __future__ import annotations

from functools import cmp_to_key

from .cjson import INT64_MAX, INT64_MIN, UINT_MAX, c_integer, shash_order
from .datum import (
    DBL_MAX,
    OpError,
    datum_compare,
    is_uuid_string,
    new_uuid,
    symbol_lookup,
    syntax_error,
)
from .parser import ARRAY, BOOLEAN, ID, INTEGER, MISSING, OBJECT, STRING, Parser

FUNCTIONS = ("==", "includes", "<=", "<", ">=", ">", "excludes", "!=")
MUTATORS = ("+=", "-=", "*=", "/=", "%=", "insert", "delete")
_ORDERING = ("<", "<=", ">", ">=")
_ARITHMETIC = ("+=", "-=", "*=", "/=", "%=")
LLONG_MAX = (1 << 63) - 1


class Execution:
    """``struct ovsdb_execution``: the state of one ``transact`` request."""

    __slots__ = ("db", "session", "txn", "symtab", "durable", "elapsed_ms", "timeout_ms")

    def __init__(self, db, txn, session, elapsed_ms: int):
        self.db = db
        self.session = session
        self.txn = txn
        self.symtab: dict = {}
        self.durable = False
        self.elapsed_ms = elapsed_ms
        self.timeout_ms = LLONG_MAX


# -- rows and column sets (row.c, column.c) ------------------------------------------

def row_from_json(ti, j, symtab, row: dict, included: list | None = None) -> None:
    """``ovsdb_row_from_json``: parses the members of ``j`` into ``row``."""
    if type(j) is not dict:
        raise syntax_error(j, None, "row must be JSON object")
    columns = ti.schema.columns
    for name in (shash_order(j) if len(j) > 1 else j):
        column = columns.get(name)
        if column is None:
            raise syntax_error(j, "unknown column", f"No column {name} in table {ti.name}.")
        row[name] = column.type.parse(j[name], symtab)
        if included is not None:
            included.append(column)


def column_set_from_json(j, ti) -> list[str]:
    """``ovsdb_column_set_from_json``: ``MISSING`` means every column."""
    if j is MISSING:
        return [c.name for c in ti.columns]
    names: list[str] = []
    if type(j) is list:
        columns = ti.schema.columns
        for e in j:
            if type(e) is not str:
                break
            if e not in columns:
                raise syntax_error(j, None, f"{e} is not a valid column name")
            if e in names:
                break
            names.append(e)
        else:
            return names
    raise syntax_error(j, None, "array of distinct column names expected")


# -- conditions (condition.c) ---------------------------------------------------------

def _relaxed(column, use: str):
    """The type C parses an argument of a clause (``use`` is the function) or of a
    mutation (``use`` is "arithmetic", "insert", "delete" or "delete-keys") with."""
    t = column.relaxed_types.get(use)
    if t is None:
        ct = column.type
        if use in _ORDERING:
            t = ct.relaxed(n_min=1)
        elif use == "excludes" and not ct.is_scalar():
            t = ct.relaxed(n_min=0, n_max=UINT_MAX)
        elif use == "includes" and not ct.is_scalar():
            t = ct.relaxed(n_min=0)
        elif use == "arithmetic":
            t = ct.relaxed(key=ct.key.without_constraints(), n_min=1, n_max=1)
        elif use == "insert":
            t = ct.relaxed(n_min=0)
        elif use == "delete":
            t = ct.relaxed(n_min=0, n_max=UINT_MAX)
        elif use == "delete-keys":
            t = ct.relaxed(value=None, n_min=0, n_max=UINT_MAX)
        else:
            t = ct
        column.relaxed_types[use] = t
    return t


def parse_condition(ti, where: list, symtab) -> tuple[list, str | None, tuple | None]:
    """``ovsdb_condition_from_json``: (predicates, UUID of a ``_uuid ==`` clause or None,
    (index number, key) of an ``==`` clause on a one-column index or None)."""
    preds = []
    uuid_eq = None
    index_eq = None
    for cj in where:
        if cj is True or cj is False:
            if cj is False:
                preds.append(_false)
            continue
        name, function, column = _column_triple(ti, cj, "condition")
        if function not in FUNCTIONS:
            # C also knows "true" and "false" here and then aborts; refuse them instead.
            raise OpError("unknown function", f"No function named {function}.")
        ct = column.type
        if function in _ORDERING and (
                not (ct.is_scalar() or ct.is_optional_scalar())
                or ct.key.type not in ("integer", "real")):
            raise syntax_error(cj, None, f'Type mismatch: "{function}" operator may not be '
                                         f"applied to column {name} of type {ct.to_english()}.")
        arg = _relaxed(column, function).parse(cj[2], symtab)
        if function == "==":
            if name == "_uuid":
                uuid_eq = arg[0]
            elif index_eq is None:
                i = ti.single_indexes.get(name)
                if i is not None:
                    index_eq = (i, (arg,))
        preds.append(_clause(name, function, arg))
    return preds, uuid_eq, index_eq


def _false(row) -> bool:
    return False


def _clause(name: str, function: str, arg: tuple):
    """``ovsdb_clause_evaluate`` for one clause, specialised."""
    if function == "==":
        return lambda row: row[name] == arg
    if function == "!=":
        return lambda row: row[name] != arg
    if function == "includes":
        if len(arg) == 1:
            a0 = arg[0]
            return lambda row: a0 in row[name]
        return lambda row: all(a in row[name] for a in arg)
    if function == "excludes":
        if len(arg) == 1:
            a0 = arg[0]
            return lambda row: a0 not in row[name]
        return lambda row: not any(a in row[name] for a in arg)
    a = arg[0]
    if function == "<":
        return lambda row: bool(row[name]) and row[name][0] < a
    if function == "<=":
        return lambda row: bool(row[name]) and row[name][0] <= a
    if function == ">":
        return lambda row: bool(row[name]) and row[name][0] > a
    return lambda row: bool(row[name]) and row[name][0] >= a


def query(x: Execution, ti, where: list) -> list:
    """``ovsdb_query``: the current rows matching ``where`` (already parsed)."""
    preds, uuid_eq, index_eq = where
    txn = x.txn
    if uuid_eq is not None:
        row = txn.get(ti.name, uuid_eq)
        if row is None or not all(p(row) for p in preds):
            return []
        return [row]
    if index_eq is not None:
        # Same rows as the linear scan C does, found through the index.
        i, key = index_eq
        match = preds[0] if len(preds) == 1 else (lambda row: all(p(row) for p in preds))
        return txn.index_lookup(ti.name, i, key, match)
    if not preds:
        return txn.scan(ti.name, None)
    if len(preds) == 1:
        return txn.scan(ti.name, preds[0])
    return txn.scan(ti.name, lambda row: all(p(row) for p in preds))


# -- mutations (mutation.c) -----------------------------------------------------------

def _type_mismatch(column, mutator: str, j) -> OpError:
    return syntax_error(j, None, f'Type mismatch: "{mutator}" operator may not be applied to '
                                 f"column {column.name} of type {column.type.to_english()}.")


def _column_triple(ti, item, what: str):
    """``[column, function-or-mutator, argument]`` of a condition or mutation:
    (name, operator, column schema), with C's errors for a bad shape or column."""
    if not (type(item) is list and len(item) == 3 and type(item[0]) is str
            and type(item[1]) is str):
        raise syntax_error(item, None, f"Parse error in {what}.")
    name = item[0]
    column = ti.schema.columns.get(name)
    if column is None:
        raise syntax_error(item, "unknown column", f"No column {name} in table {ti.name}.")
    return name, item[1], column


def parse_mutations(ti, mutations: list, symtab) -> list:
    """``ovsdb_mutation_set_from_json``: [(column, mutator, argument, delete-by-keys)]."""
    out = []
    for mj in mutations:
        name, mutator, column = _column_triple(ti, mj, "mutation")
        if not column.mutable:
            raise syntax_error(mj, "constraint violation",
                               f"Cannot mutate immutable column {name} in table {ti.name}.")
        if mutator not in MUTATORS:
            raise OpError("unknown mutator", f"No mutator named {mutator}.")
        ct = column.type
        by_keys = False
        if mutator in _ARITHMETIC:
            if ((not ct.is_scalar() and not ct.is_set())
                    or ct.key.type not in ("integer", "real")
                    or (mutator == "%=" and ct.key.type == "real")):
                raise _type_mismatch(column, mutator, mj)
            arg = _relaxed(column, "arithmetic").parse(mj[2], symtab)
        else:
            if not ct.is_set() and not ct.is_map():
                raise _type_mismatch(column, mutator, mj)
            if mutator == "insert":
                arg = _relaxed(column, "insert").parse(mj[2], symtab)
            else:
                try:
                    arg = _relaxed(column, "delete").parse(mj[2], symtab)
                except OpError:
                    if not ct.is_map():
                        raise
                    arg = _relaxed(column, "delete-keys").parse(mj[2], symtab)
                    by_keys = True
        out.append((column, mutator, arg, by_keys))
    return out


def _cdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _wrap64(v: int) -> int:
    return ((v + (1 << 63)) & ((1 << 64) - 1)) - (1 << 63)


def _int_op(mutator: str, x: int, y: int) -> int:
    """One integer mutation with C's overflow checks (``add_int``, ``mul_int``, ...)."""
    if mutator == "+=":
        r = x + y
        if r < INT64_MIN or r > INT64_MAX:
            raise _range(mutator)
        return r
    if mutator == "-=":
        r = x - y
        if r < INT64_MIN or r > INT64_MAX:
            raise _range(mutator)
        return r
    if mutator == "*=":
        # mul_int's test, quirks included (it is stricter than exact overflow).
        if x > 0:
            bad = x >= _cdiv(INT64_MAX, y) if y > 0 else y < _cdiv(INT64_MIN, x)
        elif y > 0:
            bad = x < _cdiv(INT64_MIN, y)
        else:
            bad = x != 0 and y != 0 and y < _cdiv(INT64_MAX, y)
        if bad:
            raise _range(mutator)
        return _wrap64(x * y)
    if y == 0:
        raise OpError("domain error", "Division by zero.")
    if x == INT64_MIN and y == -1:
        raise _range(mutator)
    q = _cdiv(x, y)
    return q if mutator == "/=" else x - q * y


def _real_op(mutator: str, x: float, y: float) -> float:
    if mutator == "+=":
        r = x + y
    elif mutator == "-=":
        r = x - y
    elif mutator == "*=":
        r = x * y
    else:
        if y == 0:
            raise OpError("domain error", "Division by zero.")
        r = x / y
    if not (-DBL_MAX <= r <= DBL_MAX):
        raise _range(mutator)
    return r


def _range(mutator: str) -> OpError:
    return OpError("range error", f'Result of "{mutator}" operation is out of range.')


def execute_mutations(row: dict, mutations: list) -> None:
    """``ovsdb_mutation_set_execute`` on a writable row."""
    for column, mutator, arg, by_keys in mutations:
        name = column.name
        ct = column.type
        dst = row[name]
        if mutator in _ARITHMETIC:
            if not dst:
                continue
            y = arg[0]
            op = _int_op if ct.key.type == "integer" else _real_op
            new = [op(mutator, x, y) for x in dst]
            check = ct.key.check
            if check is not None:
                for v in new:
                    check(v)
            new.sort()
            for i in range(len(new) - 1):
                if new[i] == new[i + 1]:
                    raise OpError("constraint violation",
                                  f'Result of "{mutator}" operation contains duplicates.')
            row[name] = tuple(new)
            continue
        if ct.value is None:
            if mutator == "insert":
                s = set(dst)
                add = [a for a in arg if a not in s]
                new = tuple(sorted(dst + tuple(add))) if add else dst
            else:
                s = set(arg)
                new = tuple(a for a in dst if a not in s)
        elif mutator == "insert":
            d = dict(dst)
            add = [(k, v) for k, v in arg if k not in d]
            new = tuple(sorted(dst + tuple(add), key=_key)) if add else dst
        elif by_keys:
            s = set(arg)
            new = tuple(p for p in dst if p[0] not in s)
        else:
            s = set(arg)
            new = tuple(p for p in dst if p not in s)
        if not (ct.n_min <= len(new) <= ct.n_max):
            raise OpError("constraint violation",
                          f"Attempted to store {len(new)} elements in {ct.to_english()}.")
        row[name] = new


def _key(pair):
    return pair[0]


# -- operations (execution.c) ----------------------------------------------------------

def _parse_table(x: Execution, p: Parser, member: str = "table"):
    j = p.member(member, ID)
    if j is MISSING:
        return None
    ti = x.db._info.get(j)
    if ti is None:
        p.raise_error(f"No table named {j}.")
    return ti


def _check(p: Parser) -> None:
    if p.error is not None:
        raise p.error


def execute_insert(x: Execution, p: Parser, result: dict) -> None:
    ti = _parse_table(x, p)
    uuid_json = p.member("uuid", STRING, optional=True)
    uuid_name = p.member("uuid-name", ID, optional=True)
    row_json = p.member("row", OBJECT)
    _check(p)
    txn = x.txn
    if uuid_json is not MISSING:
        if not is_uuid_string(uuid_json):
            raise syntax_error(uuid_json, None, "bad uuid")
        row_uuid = uuid_json.lower()
        if not txn.may_create_row(ti.name, row_uuid):
            raise syntax_error(uuid_json, "duplicate uuid",
                               "This UUID would duplicate a UUID already present within the "
                               "table or deleted within the same transaction.")
    if uuid_name is not MISSING:
        symbol = symbol_lookup(x.symtab, uuid_name)
        if symbol.created:
            raise syntax_error(uuid_name, "duplicate uuid-name",
                               'This "uuid-name" appeared on an earlier "insert" operation.')
        if uuid_json is not MISSING:
            symbol.uuid = row_uuid
        else:
            row_uuid = symbol.uuid
        symbol.created = True
    elif uuid_json is MISSING:
        row_uuid = new_uuid()
    row = dict(ti.defaults)
    row_from_json(ti, row_json, x.symtab, row)
    for name, error in ti.default_violations:
        if name not in row_json:
            raise error
    row["_uuid"] = (row_uuid,)
    txn.insert(ti.name, row_uuid, row, set(row_json))
    result["uuid"] = ["uuid", row_uuid]


def execute_select(x: Execution, p: Parser, result: dict) -> None:
    ti = _parse_table(x, p)
    where = p.member("where", ARRAY)
    columns_json = p.member("columns", ARRAY, optional=True)
    sort_json = p.member("sort", ARRAY, optional=True)
    _check(p)
    cond = parse_condition(ti, where, x.symtab)
    columns = column_set_from_json(columns_json, ti)
    sort = column_set_from_json(sort_json, ti) if sort_json is not MISSING else []
    rows = query(x, ti, cond)
    if columns_json is not MISSING and "_uuid" not in columns:
        distinct: dict = {}
        for row in rows:
            distinct.setdefault(tuple(row[c] for c in columns), row)
        rows = list(distinct.values())
    if sort and len(rows) > 1:
        _sort_rows(rows, sort, ti)
    all_columns = columns_json is MISSING
    committed = x.db._rows[ti.name]
    jrows = x.db._json[ti.name]
    to_json = ti.to_json
    out = []
    for row in rows:
        u = row["_uuid"][0]
        if committed.get(u) is row:
            j = jrows[u]
            out.append(dict(j) if all_columns else {c: j[c] for c in columns})
        else:
            out.append({c: to_json[c](row[c]) for c in columns})
    result["rows"] = out


def _sort_rows(rows: list, columns: list, ti) -> None:
    """``ovsdb_row_set_sort``: by the given columns, in ``ovsdb_datum_compare_3way`` order."""
    is_map = {c.name: c.type.value is not None for c in ti.columns}

    def cmp(a, b):
        for c in columns:
            r = datum_compare(a[c], b[c], is_map[c])
            if r:
                return r
        return 0
    rows.sort(key=cmp_to_key(cmp))


def execute_update(x: Execution, p: Parser, result: dict) -> None:
    ti = _parse_table(x, p)
    where = p.member("where", ARRAY)
    row_json = p.member("row", OBJECT)
    _check(p)
    update: dict = {}
    included: list = []
    row_from_json(ti, row_json, x.symtab, update, included)
    for column in included:
        if not column.mutable:
            raise syntax_error(p.json, "constraint violation",
                               f"Cannot update immutable column {column.name} in table "
                               f"{ti.name}.")
    cond = parse_condition(ti, where, x.symtab)
    rows = query(x, ti, cond)
    txn = x.txn
    names = [c.name for c in included]
    for row in rows:
        for name in names:
            if row[name] != update[name]:
                new = txn.modify(ti.name, row, names)
                for n in names:
                    new[n] = update[n]
                break
    result["count"] = len(rows)


def execute_mutate(x: Execution, p: Parser, result: dict) -> None:
    ti = _parse_table(x, p)
    where = p.member("where", ARRAY)
    mutations_json = p.member("mutations", ARRAY)
    _check(p)
    mutations = parse_mutations(ti, mutations_json, x.symtab)
    cond = parse_condition(ti, where, x.symtab)
    rows = query(x, ti, cond)
    txn = x.txn
    columns = {m[0].name for m in mutations}
    for row in rows:
        execute_mutations(txn.modify(ti.name, row, columns), mutations)
    result["count"] = len(rows)


def execute_delete(x: Execution, p: Parser, result: dict) -> None:
    where = p.member("where", ARRAY)
    ti = _parse_table(x, p)
    _check(p)
    cond = parse_condition(ti, where, x.symtab)
    rows = query(x, ti, cond)
    txn = x.txn
    for row in rows:
        txn.delete(ti.name, row)
    result["count"] = len(rows)


def execute_wait(x: Execution, p: Parser, result: dict) -> None:
    timeout = p.member("timeout", INTEGER, optional=True)
    where = p.member("where", ARRAY)
    columns_json = p.member("columns", ARRAY, optional=True)
    until = p.member("until", STRING)
    rows_json = p.member("rows", ARRAY)
    ti = _parse_table(x, p)
    _check(p)
    cond = parse_condition(ti, where, x.symtab)
    columns = column_set_from_json(columns_json, ti)
    if timeout is not MISSING:
        timeout_ms = c_integer(timeout)
        if timeout_ms < 0:
            raise syntax_error(timeout, None, "timeout must be nonnegative")
        if timeout_ms < x.timeout_ms:
            x.timeout_ms = timeout_ms
    else:
        timeout_ms = LLONG_MAX
    if until not in ("==", "!="):
        raise syntax_error(until, None, '"until" must be "==" or "!="')
    expected = set()
    for rj in rows_json:
        row = dict(ti.defaults)
        row_from_json(ti, rj, x.symtab, row)
        expected.add(tuple(row[c] for c in columns))
    actual = set()
    equal = True
    for row in query(x, ti, cond):
        key = tuple(row[c] for c in columns)
        if key not in expected:
            equal = False
            break
        actual.add(key)
    if equal:
        equal = len(actual) == len(expected)
    if (until == "==") != equal:
        if timeout is not MISSING and x.elapsed_ms >= timeout_ms:
            if x.elapsed_ms:
                raise OpError("timed out", f'"wait" timed out after {x.elapsed_ms} ms')
            raise OpError("timed out", '"where" clause test failed')
        raise OpError("not supported", "triggers not supported")


def execute_commit(x: Execution, p: Parser, result: dict) -> None:
    durable = p.member("durable", BOOLEAN)
    if durable is True:
        x.durable = True


def execute_abort(x: Execution, p: Parser, result: dict) -> None:
    raise OpError("aborted", "aborted by request")


def execute_comment(x: Execution, p: Parser, result: dict) -> None:
    comment = p.member("comment", STRING)
    if comment is not MISSING:
        x.txn.comments.append(comment)


def execute_assert(x: Execution, p: Parser, result: dict) -> None:
    lock = p.member("lock", ID)
    if lock is MISSING:
        return
    session = x.session
    if session is not None and session.holds_lock(lock):
        return
    raise OpError("not owner", f"Asserted lock {lock} not held.")


#: name -> (executor, read-only)
EXECUTORS = {
    "insert": (execute_insert, False),
    "select": (execute_select, True),
    "update": (execute_update, False),
    "mutate": (execute_mutate, False),
    "delete": (execute_delete, False),
    "wait": (execute_wait, True),
    "commit": (execute_commit, False),
    "abort": (execute_abort, True),
    "comment": (execute_comment, True),
    "assert": (execute_assert, True),
}


def execute(x: Execution, operations: list, read_only: bool, check_reserved: bool):
    """``ovsdb_execute_compose``: runs the operations.

    Returns (results, error-or-None, pending) where ``pending`` is True when
    an unsatisfied ``wait`` asks for the transaction to be retried later.
    """
    results: list = []
    n = len(operations)
    error = None
    db_name = x.db.name
    for i, operation in enumerate(operations, 1):
        p = Parser(operation, ("ovsdb operation %d of %d", (i, n)))
        result: dict = {}
        error = None
        read_only_op = False
        op_name = p.member("op", ID)
        if op_name is not MISSING:
            entry = EXECUTORS.get(op_name)
            if entry is not None:
                executor, read_only_op = entry
                try:
                    executor(x, p, result)
                except OpError as e:
                    error = e
            else:
                p.raise_error(f'No operation "{op_name}"')
        parse_error = p.finish()
        if parse_error is not None:
            error = parse_error
        if not read_only_op and error is None:
            if read_only:
                error = OpError("not allowed", f"{op_name} operation not allowed when "
                                               "database server is in read only mode")
            elif check_reserved and db_name.startswith("_"):
                error = OpError("not allowed", f"{op_name} operation not allowed on table in "
                                               f"reserved database {db_name}")
        if error is not None:
            results.append(error.to_json())
            if error.tag == "not supported":
                return results, error, True
            break
        results.append(result)
    while len(results) < n:
        results.append(None)
    return results, error, False
