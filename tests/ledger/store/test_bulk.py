"""ledger.store.bulk on both backends: COPY and array upserts on PostgreSQL, executemany on
SQLite, with the same results, the same all-or-nothing transactions and the same reading of a
duplicate key as a lost race (ledger.store.busy)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ledger.store import busy
from ledger.store.bulk import execute, insert_rows, pipelined, read_all
from ledger.store.tables import counts, exchange_ids, log_tiles, metadata


@pytest.fixture
def engine(db_url: str):  # type: ignore[no-untyped-def]
    eng = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    metadata.create_all(eng)
    yield eng
    eng.dispose()


def _ids(engine: sa.Engine) -> list[tuple[str, str, str, int]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.select(exchange_ids).order_by(exchange_ids.c.exchange_id))]


def test_new_rows_and_upserts_are_written_exactly(engine: sa.Engine) -> None:
    """Plain rows (COPY on PostgreSQL) arrive as given, text, integers and bytes alike; an
    upsert repeating a key within one call keeps the last row, as row-by-row upserts would:
    fee ends at 7 (3, then 5, then 7), observation at 2."""
    with engine.begin() as conn:
        insert_rows(conn, exchange_ids, [("f", "fee", "a\tb\\c\n", 0), ("f", "fee", "é", 2**40)])
        insert_rows(conn, log_tiles, [("f", 0, 3, b"\x00\\\n" * 11)])
        insert_rows(conn, counts, [("f", "fee", 3), ("f", "observation", 2),
                                   ("f", "fee", 5)], replace=True)
    with engine.begin() as conn:
        insert_rows(conn, counts, [("f", "fee", 7)], replace=True)
    assert _ids(engine) == [("f", "fee", "a\tb\\c\n", 0), ("f", "fee", "é", 2**40)]
    with engine.connect() as conn:
        assert conn.execute(sa.select(log_tiles.c.hashes)).scalar_one() == b"\x00\\\n" * 11
        assert sorted(conn.execute(sa.select(counts.c.type, counts.c.count))) == [
            ("fee", 7), ("observation", 2)]


def test_duplicate_key_is_a_lost_race_and_writes_nothing(engine: sa.Engine) -> None:
    """A new row whose key exists (what a second writer of the same event version meets)
    raises the driver's unique-violation error, read as ConcurrentWriteError; the transaction
    rolls back, so its other rows are not written either."""
    with engine.begin() as conn:
        insert_rows(conn, exchange_ids, [("f", "fee", "x", 0)])
    with pytest.raises(Exception) as caught, engine.begin() as conn:
        insert_rows(conn, exchange_ids, [("f", "fee", "y", 1)])
        insert_rows(conn, exchange_ids, [("f", "fee", "z", 2), ("f", "fee", "x", 3)])
    assert busy.classify(caught.value) is busy.ConcurrentWriteError
    assert _ids(engine) == [("f", "fee", "x", 0)]


def test_pipelined_writes_fail_whole(engine: sa.Engine) -> None:
    """A failing statement inside `pipelined` raises (at the end at the latest) and the
    transaction writes none of the block's statements."""
    with pytest.raises(Exception) as caught, engine.begin() as conn, pipelined(conn):
        insert_rows(conn, counts, [("f", "fee", 1)], replace=True)
        execute(conn, exchange_ids.insert().values(fund="f", kind="fee", exchange_id="q",
                                                     position=1))
        execute(conn, exchange_ids.insert().values(fund="f", kind="fee", exchange_id="q",
                                                     position=2))
    assert busy.classify(caught.value) is busy.ConcurrentWriteError
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(counts)).scalar_one() == 0
    assert _ids(engine) == []


def test_read_all_answers_each_statement_in_order(engine: sa.Engine) -> None:
    """Several SELECTs sent together come back as plain tuples, one list per statement,
    including an empty one; writes in the same transaction are visible to them."""
    with engine.begin() as conn:
        insert_rows(conn, counts, [("f", "fee", 4), ("f", "policy_set", 1), ("g", "fee", 9)])
        fee, nothing, funds = read_all(conn, [
            sa.select(counts.c.type, counts.c.count).where(counts.c.fund == "f")
            .order_by(counts.c.type),
            sa.select(counts.c.count).where(counts.c.fund == "none"),
            sa.select(counts.c.fund).distinct().order_by(counts.c.fund)])
    assert fee == [("fee", 4), ("policy_set", 1)]
    assert nothing == []
    assert funds == [("f",), ("g",)]
