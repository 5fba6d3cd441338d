"""Read models kept beside the event store: balances, account totals, running totals, ids.

A `Projector` folds fund events into in-memory deltas and writes them with one statement per
table per batch, inside the caller's transaction. Each fund's projection records the log
position it has applied, so it can catch up incrementally or be rebuilt from zero.
Amounts are stored as decimal strings of integer minor units: exact at any size, on both
backends.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    Select,
    Table,
    delete,
    select,
    text,
)

from ledger.domain.bookkeeping import ACCOUNT_TOTALS, FUND, moves
from ledger.domain.facts import fact_key_of_event
from ledger.store.bulk import insert_rows, pipelined, read_all
from ledger.store.tables import (
    PROJECTION_TABLES,
    TOTAL_FIELDS,
    accounts,
    balances,
    counts,
    exchange_ids,
    positions,
    totals,
)


def select_where_in(connection: Connection, table: Table, fixed: Mapping[str, Any],
                    column: str | tuple[str, ...], values: Sequence[Any]) -> list[Any]:
    """Rows of `table` matching `fixed` (column = value) whose `column` is one of `values`;
    `column` may be a tuple of columns, `values` then tuples of theirs.

    The values travel as one JSON parameter, unnested by the database: PostgreSQL's
    `json_array_elements` (orjson writes it many times faster than psycopg dumps text
    arrays), SQLite's `json_each` (per distinct value of the first column when there are
    several). A long IN list would cost a bound parameter per value. On
    PostgreSQL each value is looked up on its own (a LATERAL subquery that
    `OFFSET 0` keeps the planner from flattening): inside a big freshly written transaction
    the table's statistics still say it is empty, and a plain join was planned as a scan of
    every row matching `fixed` (all of a fund's fee ids), which grows with the fund. The
    index lookups cost the same per value however large the table is.
    """
    if not values:
        return []
    columns = (column,) if isinstance(column, str) else column
    if connection.dialect.name == "postgresql":
        return _select_where_in_pg(connection, table, fixed, columns,
                                   [(v,) for v in values] if isinstance(column, str)
                                   else values)
    if len(columns) > 1:  # SQLite: no round trips to save, one statement per first value
        by_first: dict[Any, list[Any]] = {}
        for value in values:
            by_first.setdefault(value[0], []).append(value[1:])
        found: list[Any] = []
        for first, rest in by_first.items():
            found += select_where_in(connection, table, {**fixed, columns[0]: first},
                                     columns[1:] if len(columns) > 2 else columns[1],
                                     rest if len(columns) > 2 else [r[0] for r in rest])
        return found
    where = " AND ".join(f"t.{name} = :{name}" for name in fixed)
    sql = text(f"SELECT t.* FROM {table.name} AS t WHERE {where} AND t.{columns[0]} IN "
               "(SELECT value FROM json_each(:values))")
    return list(connection.execute(sql, {**fixed, "values": json.dumps(list(values))}))


@lru_cache(maxsize=32)
def _where_in_statement(table: Table, fixed: tuple[str, ...], columns: tuple[str, ...]) -> str:
    # The values travel as one JSON array of [value, ...] rows: orjson writes it many times
    # faster than psycopg dumps text arrays, and `->>` gives each value back as its text.
    where = " AND ".join([*(f"t.{name} = %s" for name in fixed),
                          *(f"t.{name} = (v.r ->> {i})" for i, name in enumerate(columns))])
    return ("SELECT t.* FROM json_array_elements(%s::json) AS v(r) CROSS JOIN "
            f"LATERAL (SELECT * FROM {table.name} AS t WHERE {where} OFFSET 0) AS t")


def _select_where_in_pg(connection: Connection, table: Table, fixed: Mapping[str, Any],
                        columns: tuple[str, ...], rows: Sequence[Sequence[Any]]) -> list[Any]:
    from psycopg.rows import namedtuple_row  # PostgreSQL only: not imported for SQLite

    driver = connection.connection.driver_connection
    assert driver is not None
    sql = _where_in_statement(table, tuple(fixed), columns)
    with driver.cursor(row_factory=namedtuple_row) as cursor:
        cursor.execute(sql, [orjson.dumps(rows).decode(), *fixed.values()])
        found: list[Any] = cursor.fetchall()
        return found


class AccountCache:
    """Account rows as this process last wrote them, valid at one log position.

    Writes to a fund are serialized by its event stream (a writer whose events were saved at
    position P was the only one to extend the log from P), so rows cached at P are still the
    database's rows when the next batch starts at P; any other start reads them afresh.
    """

    def __init__(self) -> None:
        self.position = -1
        self.rows: dict[tuple[str, str], tuple[int, ...]] = {}

    def valid_at(self, position: int) -> bool:
        """Whether the cached rows are the database's rows at `position`."""
        if self.position != position:
            self.rows.clear()
        return self.position == position


class Projector:
    """Applies exported fund events to the projection tables of one fund."""

    def __init__(self, connection: Connection, fund: str, decimals: Mapping[str, int],
                 cache: AccountCache | None = None) -> None:
        self.connection = connection
        self.fund = fund
        self.decimals = dict(decimals)
        self.cache = cache or AccountCache()

    def position(self) -> int:
        """How many events of the fund's log the projections include."""
        return self.position_of(self.connection.execute(self.position_statement()))

    def position_statement(self) -> Select[Any]:
        """The SELECT behind `position`, for a caller that sends it together with its own
        reads (ledger.store.bulk.read_all); `position_of` reads its rows."""
        return select(positions.c.position).where(positions.c.fund == self.fund)

    @staticmethod
    def position_of(rows: Iterable[Sequence[Any]]) -> int:
        """The position in `position_statement`'s rows (0 before any)."""
        for row in rows:
            return int(row[0])
        return 0

    def reset(self) -> None:
        """Forget everything projected for this fund (before a rebuild from zero)."""
        for table in PROJECTION_TABLES:
            self.connection.execute(delete(table).where(table.c.fund == self.fund))

    def apply(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Fold exported events (in log order) into the tables; return the new position."""
        balance: dict[str, int] = defaultdict(int)
        account: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        start: int | None = None
        total: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(TOTAL_FIELDS, 0))
        per_type: dict[str, int] = defaultdict(int)
        ids: list[tuple[str, str, str, int]] = []
        position: int | None = None
        for event in events:
            position = event["index"] + 1
            if start is None:
                start = event["index"]
            kind, data = event["type"], event["data"]
            per_type[kind] += 1
            if kind == "fund_opened":
                for asset, spec in data["assets"].items():
                    self.decimals[asset] = spec["decimals"]
                    balance[asset] += 0
                    total[asset]["inflow"] += 0
                continue
            key = fact_key_of_event(event)
            if key is not None:
                ids.append((self.fund, key[0], key[1], event["index"]))
            self._fold(kind, data, balance, account, total)
        if position is None or start is None:
            return self.position()
        self._write(balance, account, total, per_type, ids, start, position)
        return position

    def _fold(self, kind: str, data: Mapping[str, Any], balance: dict[str, int],
              account: dict[tuple[str, str], list[int]],
              total: dict[str, dict[str, int]]) -> None:
        for asset, name, units, holder in moves(kind, data, self.decimals):
            if name == FUND:
                balance[asset] += units
            elif holder is not None:
                account[(holder, asset)][ACCOUNT_TOTALS.index(name)] += units
            else:
                total[asset][name] += units

    def _write(self, balance: dict[str, int], account: dict[tuple[str, str], list[int]],
               total: dict[str, dict[str, int]], per_type: dict[str, int],
               ids: list[tuple[str, str, str, int]], start: int, position: int) -> None:
        # Reads go out together, then writes, so that a batch waits for PostgreSQL a few
        # times rather than once per statement (ledger.store.bulk.pipelined).
        conn, fund = self.connection, self.fund
        balance_rows, total_rows, count_rows = read_all(conn, [
            select(balances.c.asset, balances.c.units).where(balances.c.fund == fund),
            select(totals.c.asset, *(totals.c[f] for f in TOTAL_FIELDS))
            .where(totals.c.fund == fund),
            select(counts.c.type, counts.c.count).where(counts.c.fund == fund)])
        old_balance = {asset: int(units) for asset, units in balance_rows}
        old_totals = {row[0]: dict(zip(TOTAL_FIELDS, map(int, row[1:]), strict=True))
                      for row in total_rows}
        old_counts: dict[str, int] = {kind: n for kind, n in count_rows}
        known = self.cache.rows if self.cache.valid_at(start) else {}
        stored = self._existing_accounts([k for k in account if k not in known])
        updated: dict[tuple[str, str], tuple[int, ...]] = {}
        for key, delta in account.items():
            old = known.get(key) or stored.get(key) or (0, 0, 0)
            updated[key] = (old[0] + delta[0], old[1] + delta[1], old[2] + delta[2])
        with pipelined(conn):
            insert_rows(conn, balances, [(fund, a, str(old_balance.get(a, 0) + d))
                                         for a, d in balance.items()], replace=True)
            insert_rows(conn, totals, [
                (fund, a, *(str(old_totals.get(a, {}).get(f, 0) + d[f]) for f in TOTAL_FIELDS))
                for a, d in total.items()], replace=True)
            insert_rows(conn, accounts, [
                (fund, key[0], key[1], str(value[0]), str(value[1]), str(value[2]))
                for key, value in updated.items()], replace=True)
            insert_rows(conn, counts, [(fund, t, old_counts.get(t, 0) + n)
                                       for t, n in per_type.items()], replace=True)
            insert_rows(conn, positions, [(fund, position)], replace=True)
        # New ids only: the importer checked them, a rebuild starts empty (COPY: not in a
        # pipeline).
        insert_rows(conn, exchange_ids, ids)
        # Only now, with every row written, may the cache speak for position `position`.
        self.cache.rows.update(stored)
        self.cache.rows.update(updated)
        self.cache.position = position

    def _existing_accounts(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, ...]]:
        if not keys:
            return {}
        wanted = set(keys)
        rows = select_where_in(self.connection, accounts, {"fund": self.fund}, "account",
                               sorted({account for account, _ in wanted}))
        return {(r.account, r.asset): (int(r.fees), int(r.payouts), int(r.clawbacks))
                for r in rows if (r.account, r.asset) in wanted}
