"""``ovs-vsctl show`` from an IDL replica, byte for byte.

Follows ``cmd_show()`` in ``lib/db-ctl-base.c`` with the table list of
``utilities/ovs-vsctl.c``: starting at the Open_vSwitch row, each row prints
``Table name`` (or its UUID when the table has no name column), then its
non-default columns as ``column: value``; reference columns recurse into the
referenced rows, in the order of the datum (sorted by UUID), four spaces per
level, and a table is never entered twice on one path.
"""

from __future__ import annotations

from .vsctl_format import atom_to_string, column_to_string, is_default

#: (table, name column, shown columns) as ovs-vsctl 3.1 declares them
SHOW_TABLES = {
    "Open_vSwitch": (None, ("manager_options", "bridges", "ovs_version")),
    "Bridge": ("name", ("controller", "fail_mode", "datapath_type", "ports")),
    "Port": ("name", ("tag", "trunks", "interfaces")),
    "Interface": ("name", ("type", "options", "error", "bfd_status")),
    "Controller": ("target", ("is_connected",)),
    "Manager": ("target", ("is_connected",)),
}


def show(idl) -> str:
    """The text ``ovs-vsctl show`` prints for the database in ``idl``."""
    out: list[str] = []
    shown: set[str] = set()
    rows = sorted(idl.tables["Open_vSwitch"].rows.values(), key=lambda r: str(r.uuid))
    for row in rows:
        _show_row(idl, "Open_vSwitch", row, 0, shown, out)
    return "".join(out)


def _show_row(idl, table_name: str, row, level: int, shown: set, out: list) -> None:
    name_column, columns = SHOW_TABLES[table_name]
    table = idl.tables[table_name]
    indent = " " * (level * 4)
    if name_column:
        name = getattr(row, name_column)
        out.append(f"{indent}{table_name} {column_to_string(table.columns[name_column], name)}\n")
    else:
        out.append(f"{indent}{row.uuid}\n")
    if table_name in shown:
        return
    shown.add(table_name)
    for column_name in columns:
        column = table.columns.get(column_name)
        if column is None:
            continue
        value = getattr(row, column_name)
        ref_table = _ref_table(column, key=True)
        if ref_table in SHOW_TABLES:
            refs = value if isinstance(value, list) else [value]
            for ref in sorted(refs, key=lambda r: str(r.uuid)):
                _show_row(idl, ref_table, ref, level + 1, shown, out)
            continue
        ref_table = _ref_table(column, key=False)
        if column.type.is_map() and ref_table in SHOW_TABLES and SHOW_TABLES[ref_table][0]:
            ref_name = SHOW_TABLES[ref_table][0]
            out.append(f"{' ' * ((level + 1) * 4)}{column_name}:\n")
            for key in sorted(value, key=lambda k: (str(k))):
                ref = value[key]
                text = column_to_string(idl.tables[ref_table].columns[ref_name], getattr(ref, ref_name)) if ref is not None else '"<null>"'
                out.append(f"{' ' * ((level + 2) * 4)}{atom_to_string(key)}={text}\n")
            continue
        if not is_default(column, value):
            out.append(f"{' ' * ((level + 1) * 4)}{column_name}: {column_to_string(column, value)}\n")
    shown.discard(table_name)


def _ref_table(column, key: bool) -> str | None:
    base = column.type.key if key else column.type.value
    if base is None:
        return None
    return getattr(base, "ref_table_name", None)
