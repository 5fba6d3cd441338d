"""Bulk row writes straight to the driver: COPY and array upserts on PostgreSQL, one
executemany on SQLite.

SQLAlchemy processes every parameter of every row in Python before the driver sees it; for
the thousands of rows an import batch writes, that costs more than the database's own insert
(bench/import_throughput.py). `insert_rows` takes rows as tuples in column order and sends
them unchanged, so they are only for columns whose values the driver takes as they are:
text, integers and bytes (`_PLAIN_TYPES`); anything else is refused when the statement is
built.

On PostgreSQL (psycopg 3) a row-by-row executemany is a protocol message per row even when
pipelined, so new rows go in by `COPY ... FROM STDIN` and upserts by one
`INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO UPDATE` per table: one statement
whatever the row count. Both run in the caller's transaction, so a failed batch still writes
nothing, and a unique-index violation raises the driver's usual error (SQLSTATE 23505), which
`ledger.store.busy` reads as a lost race with another writer. SQLite keeps `executemany`
(`INSERT ... ON CONFLICT ... DO UPDATE` for an upsert): its rows never leave the process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Connection,
    Dialect,
    Executable,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

# A failed pipeline logs "error ignored terminating" at WARNING besides raising the error the
# caller handles; without a handler Python would print it to stderr after the one-line message.
logging.getLogger("psycopg").addHandler(logging.NullHandler())

_PLAIN_TYPES = (String, Text, Integer, BigInteger, LargeBinary)
_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
# PostgreSQL array types of the plain column types, for the unnest upsert (most specific first:
# BigInteger is an Integer, Text a String).
_PG_ARRAYS = ((BigInteger, "bigint[]"), (Integer, "integer[]"), (LargeBinary, "bytea[]"),
              (String, "text[]"))


def _check(table: Table, columns: tuple[str, ...], converted: frozenset[str]) -> None:
    for name in columns:
        if name not in converted and not isinstance(table.c[name].type, _PLAIN_TYPES):
            raise TypeError(f"{table.name}.{name}: {table.c[name].type} needs bind processing")


def _conflict_clause(table: Table, columns: tuple[str, ...], dialect: Dialect) -> str:
    quote = dialect.identifier_preparer.quote
    keys = [c.name for c in table.primary_key.columns]
    updates = [f"{quote(name)} = excluded.{quote(name)}" for name in columns if name not in keys]
    return f" ON CONFLICT ({', '.join(map(quote, keys))}) DO UPDATE SET {', '.join(updates)}"


@lru_cache(maxsize=64)
def _statement(table: Table, columns: tuple[str, ...], dialect: Dialect, replace: bool,
               converted: frozenset[str]) -> str:
    """The executemany INSERT (SQLite)."""
    _check(table, columns, converted)
    if dialect.paramstyle not in _MARKS:
        raise ValueError(f"{dialect.name}: paramstyle {dialect.paramstyle!r} not supported")
    quote = dialect.identifier_preparer.quote
    mark = _MARKS[dialect.paramstyle]
    sql = (f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
           f"({', '.join(map(quote, columns))}) VALUES ({', '.join([mark] * len(columns))})")
    return sql + _conflict_clause(table, columns, dialect) if replace else sql


@lru_cache(maxsize=64)
def _copy_statement(table: Table, columns: tuple[str, ...], dialect: Dialect,
                    converted: frozenset[str]) -> str:
    """COPY of new rows (PostgreSQL); `converted` columns are dumped by psycopg as they are."""
    _check(table, columns, converted)
    quote = dialect.identifier_preparer.quote
    return (f"COPY {dialect.identifier_preparer.format_table(table)} "
            f"({', '.join(map(quote, columns))}) FROM STDIN")


@lru_cache(maxsize=64)
def _unnest_statement(table: Table, columns: tuple[str, ...], dialect: Dialect) -> str:
    """One upsert of all rows, each column passed as one typed array (PostgreSQL)."""
    _check(table, columns, frozenset())
    arrays = []
    for name in columns:
        column_type = table.c[name].type
        # %b: binary arrays, which psycopg dumps several times faster than array literals.
        arrays.append(next(f"%b::{array}" for kind, array in _PG_ARRAYS
                           if isinstance(column_type, kind)))
    quote = dialect.identifier_preparer.quote
    return (f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
            f"({', '.join(map(quote, columns))}) SELECT * FROM unnest({', '.join(arrays)})"
            + _conflict_clause(table, columns, dialect))


@lru_cache(maxsize=64)
def _json_statement(table: Table, columns: tuple[str, ...], dialect: Dialect) -> str | None:
    """One upsert of all rows sent as a single JSON array of row arrays (PostgreSQL), or
    None for a table with a bytea column (JSON has no bytes). psycopg dumps typed arrays in
    Python, element by element; orjson writes the same rows in a fraction of that time, and
    the server reads each value back as its text (`->>`), cast to the column's type."""
    _check(table, columns, frozenset())
    values = []
    for i, name in enumerate(columns):
        column_type = table.c[name].type
        if isinstance(column_type, LargeBinary):
            return None
        array = next(array for kind, array in _PG_ARRAYS if isinstance(column_type, kind))
        values.append(f"(r ->> {i})::{array.removesuffix('[]')}")
    quote = dialect.identifier_preparer.quote
    return (f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
            f"({', '.join(map(quote, columns))}) SELECT {', '.join(values)} "
            "FROM json_array_elements(%s::json) AS j(r)"
            + _conflict_clause(table, columns, dialect))


def _last_per_key(table: Table, columns: tuple[str, ...],
                  rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """`rows` with only the last of each primary key: one upsert statement may not touch a
    row twice, and the last one is what row-by-row upserts would have left."""
    at = [columns.index(c.name) for c in table.primary_key.columns]
    return list({tuple(row[i] for i in at): row for row in rows}.values())


@contextmanager
def pipelined(connection: Connection) -> Iterator[None]:
    """On PostgreSQL, statements sent by `insert_rows` (upserts), `execute` and `read_all`
    inside wait for the server once, at the end, instead of once each (psycopg's pipeline
    mode); an error is raised there at the latest. COPY cannot run inside. Elsewhere a no-op."""
    if connection.dialect.name != "postgresql":
        yield
        return
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.pipeline():
        yield


def _compiled(connection: Connection, statement: Executable) -> tuple[str, Any]:
    compiled = statement.compile(dialect=connection.dialect)  # type: ignore[attr-defined]
    return str(compiled), compiled.params


def execute(connection: Connection, statement: Executable) -> None:
    """Run a statement whose result is not needed (pipeline-safe on PostgreSQL)."""
    if connection.dialect.name != "postgresql":
        connection.execute(statement)
        return
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:
        cursor.execute(*_compiled(connection, statement))


def read_all(connection: Connection, statements: Sequence[Executable]) -> list[list[tuple[Any, ...]]]:
    """The rows (plain tuples) of each SELECT; on PostgreSQL all are sent before the first
    answer is awaited: one round trip instead of one per statement."""
    if connection.dialect.name != "postgresql":
        return [[tuple(row) for row in connection.execute(s)] for s in statements]
    driver = connection.connection.driver_connection
    assert driver is not None
    cursors = []
    with driver.pipeline():
        for statement in statements:
            cursor = driver.cursor()
            cursor.execute(*_compiled(connection, statement))
            cursors.append(cursor)
    try:
        return [list(cursor.fetchall()) for cursor in cursors]
    finally:
        for cursor in cursors:
            cursor.close()


def insert_rows(connection: Connection, table: Table, rows: Sequence[tuple[Any, ...]], *,
                columns: Sequence[str] | None = None, replace: bool = False,
                converted: frozenset[str] = frozenset()) -> None:
    """Insert `rows` (tuples in the order of `columns`, default all of the table's columns)
    in the caller's transaction; with `replace`, a row whose primary key exists overwrites it.
    Values of `converted` columns are already in the driver's form (see bind_processor)."""
    if not rows:
        return
    names = tuple(columns) if columns is not None else tuple(c.name for c in table.columns)
    dialect = connection.dialect
    if dialect.name == "postgresql":
        driver = connection.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor:
            if replace:
                unique = _last_per_key(table, names, rows)
                as_json = _json_statement(table, names, dialect)
                if as_json is not None:
                    cursor.execute(as_json, [orjson.dumps(unique).decode()])
                else:
                    cursor.execute(_unnest_statement(table, names, dialect),
                                   [list(values) for values in zip(*unique, strict=True)])
            else:
                with cursor.copy(_copy_statement(table, names, dialect, converted)) as copy:
                    for row in rows:
                        copy.write_row(row)
        return
    sql = _statement(table, names, dialect, replace, converted)
    connection.exec_driver_sql(sql, list(rows))
