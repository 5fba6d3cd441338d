"""Bulk row writes straight to the DBAPI cursor's `executemany`.

SQLAlchemy processes every parameter of every row in Python before the driver sees it; for
the thousands of rows an import batch writes, that costs more than SQLite's own insert
(bench/import_throughput.py). `insert_rows` takes rows as tuples in column order and sends
them unchanged, so they are only for columns whose values the driver takes as they are:
text, integers and bytes (`_PLAIN_TYPES`); anything else is refused when the statement is
built. Both supported backends speak `INSERT ... ON CONFLICT ... DO UPDATE`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import BigInteger, Connection, Dialect, Integer, LargeBinary, String, Table, Text

_PLAIN_TYPES = (String, Text, Integer, BigInteger, LargeBinary)
_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


@lru_cache(maxsize=64)
def _statement(table: Table, columns: tuple[str, ...], dialect: Dialect, replace: bool,
               converted: frozenset[str]) -> str:
    for name in columns:
        if name not in converted and not isinstance(table.c[name].type, _PLAIN_TYPES):
            raise TypeError(f"{table.name}.{name}: {table.c[name].type} needs bind processing")
    if dialect.paramstyle not in _MARKS:
        raise ValueError(f"{dialect.name}: paramstyle {dialect.paramstyle!r} not supported")
    quote = dialect.identifier_preparer.quote
    mark = _MARKS[dialect.paramstyle]
    sql = (f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
           f"({', '.join(map(quote, columns))}) VALUES ({', '.join([mark] * len(columns))})")
    if replace:
        keys = [c.name for c in table.primary_key.columns]
        updates = [f"{quote(name)} = excluded.{quote(name)}" for name in columns
                   if name not in keys]
        sql += f" ON CONFLICT ({', '.join(map(quote, keys))}) DO UPDATE SET {', '.join(updates)}"
    return sql


def insert_rows(connection: Connection, table: Table, rows: Sequence[tuple[Any, ...]], *,
                columns: Sequence[str] | None = None, replace: bool = False,
                converted: frozenset[str] = frozenset()) -> None:
    """Insert `rows` (tuples in the order of `columns`, default all of the table's columns)
    in one executemany; with `replace`, a row whose primary key exists overwrites it.
    Values of `converted` columns are already in the driver's form (see bind_processor)."""
    if not rows:
        return
    names = tuple(columns) if columns is not None else tuple(c.name for c in table.columns)
    sql = _statement(table, names, connection.dialect, replace, converted)
    connection.exec_driver_sql(sql, list(rows))
