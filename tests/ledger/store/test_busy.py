"""Issue 11 items 3 and 4: a busy database is waited for, within bounds, then named in one line;
a lost race is recognised from the driver's codes; a rollback leaves no stale cache."""

from __future__ import annotations

import inspect
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from eventsourcing.persistence import IntegrityError
from sqlalchemy import text

from auditor.formats.wire import TIME as WIRE_TIME
from auditor.formats.wire import parse_time
from ledger.cli.main import main
from ledger.domain.records import RecordError
from ledger.service.importer import import_file
from ledger.service.queries import rebuild_projections
from ledger.store import busy
from ledger.store.busy import ConcurrentWriteError, DatabaseBusy, FundBusy
from tests.conftest import _pg_admin
from tests.factories import TIME, fee, fund_config, write_jsonl
from tests.processes import event_count, fund_file, start, wait_for


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def funded(url: str, tmp_path: Path) -> Path:
    """A fund in `url`, and a small fact file for it (2 fees)."""
    assert invoke("init", str(fund_file(tmp_path / "fund.json")), "--time", TIME,
                  "--db", url).exit_code == 0
    return write_jsonl(tmp_path / "facts.jsonl", [fee("f1", "1.00", "x"), fee("f2", "2", "y")])


# -- giving up: one line naming the holder, exit 3, nothing written -------------------------

@contextmanager
def sqlite_writer(path: Path) -> Iterator[None]:
    """Another process's write transaction on the SQLite file (a ledger's: in WAL mode)."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.rollback()
        holder.close()


@pytest.mark.parametrize("command", ["import", "rebuild"])
def test_sqlite_writer_held_too_long_is_one_line_and_exit_3(tmp_path: Path,
                                                             command: str) -> None:
    url = f"sqlite:///{tmp_path / 'busy.sqlite'}"
    facts = funded(url, tmp_path)
    args = [command, str(facts)] if command == "import" else [command]
    with sqlite_writer(tmp_path / "busy.sqlite"):
        result = invoke(*args, "--db", url, "--lock-timeout", "0.3")
    assert result.exit_code == busy.BUSY_EXIT_CODE
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert "fund 'main' is busy: another writer holds the SQLite file" in result.output
    assert "gave up after 0 s and " in result.output and "--lock-timeout" in result.output
    assert event_count(url) == 2  # nothing of the file was written


def test_a_command_that_does_not_retry_also_ends_in_one_line(tmp_path: Path,
                                                             make_ledger) -> None:
    url = f"sqlite:///{tmp_path / 'busy.sqlite'}"
    make_ledger(url)  # the tables exist; no fund yet
    with sqlite_writer(tmp_path / "busy.sqlite"):
        result = invoke("init", str(fund_file(tmp_path / "fund.json")), "--time", TIME,
                        "--db", url, "--lock-timeout", "0.2")
    assert result.exit_code == busy.BUSY_EXIT_CODE
    assert result.output.count("\n") == 1
    assert result.output.startswith("Error: the database is busy: another writer holds")
    assert event_count(url) == 0


@pytest.mark.postgres
def test_postgres_lock_held_too_long_names_the_holding_session(fresh_pg_url: str,
                                                                tmp_path: Path) -> None:
    facts = funded(fresh_pg_url, tmp_path)
    began = datetime.now(UTC).replace(microsecond=0)
    with _pg_admin(fresh_pg_url + "?application_name=h3-holder") as holder:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE backstop_events IN EXCLUSIVE MODE")
        pid = holder.info.backend_pid
        result = invoke("import", str(facts), "--db", fresh_pg_url, "--lock-timeout", "0.5")
        holder.execute("ROLLBACK")
    ended = datetime.now(UTC)
    assert result.exit_code == busy.BUSY_EXIT_CODE
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert (f"PostgreSQL session pid {pid} (application 'h3-holder', idle in transaction "
            "since ") in result.output
    since = re.search(r"idle in transaction since (\S+)\)", result.output)
    assert since is not None and WIRE_TIME.fullmatch(since[1]), result.output  # the wire time
    assert began <= parse_time(since[1]) <= ended  # when the holder's transaction began
    assert f"SELECT pg_terminate_backend({pid})" in result.output
    assert event_count(fresh_pg_url) == 2


@pytest.mark.postgres
def test_postgres_import_waits_for_the_lock_and_then_records(fresh_pg_url: str,
                                                             tmp_path: Path) -> None:
    facts = funded(fresh_pg_url, tmp_path)
    with _pg_admin(fresh_pg_url) as holder, _pg_admin(fresh_pg_url) as watcher:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE backstop_events IN EXCLUSIVE MODE")
        importer = start(fresh_pg_url, "import", str(facts), "--lock-timeout", "60")
        # (pg_stat_activity is a snapshot per transaction: watch from outside the holder's)
        waiting = wait_for(lambda: watcher.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE NOT l.granted AND l.relation = to_regclass('backstop_events')").fetchall(),
            "the import to wait for the lock")
        holder.execute("COMMIT")
    assert waiting == [(f"backstop pid {importer.pid}",)]  # how a give-up message names it
    out, err = importer.communicate(timeout=60)
    assert importer.returncode == 0, err
    assert out.startswith("2 facts recorded")
    assert event_count(fresh_pg_url) == 4


def test_lock_waits_last_the_lock_timeout(db_url: str, make_ledger) -> None:
    """SQLite's busy handler gave up after sqlite3's default 5 s, PostgreSQL never did."""
    ledger = make_ledger(db_url)
    ledger.lock_timeout = 42.0
    with ledger.transaction() as connection:
        if connection.dialect.name == "sqlite":
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 42_000
        else:
            assert connection.exec_driver_sql("SHOW lock_timeout").scalar() == "42s"


# -- recognising a lost race from codes, not words ------------------------------------------

def _insert_event(connection: Any, oid: Any, topic: str | None) -> None:
    connection.execute(text("INSERT INTO backstop_events (originator_id, originator_version, "
                            "topic, state) VALUES (:o, 1, :t, :s)"),
                       {"o": oid, "t": topic, "s": b"x"})


def test_a_duplicate_event_version_is_a_concurrent_write(db_url: str, make_ledger) -> None:
    ledger = make_ledger(db_url)
    ledger.open_fund(fund_config(), TIME)
    from ledger.domain.fund import fund_id

    oid = fund_id("main")
    if ledger.engine.dialect.name == "sqlite":
        oid = oid.bytes
    with pytest.raises(ConcurrentWriteError), ledger.transaction() as connection:
        _insert_event(connection, oid, "x")  # version 1 exists: another writer's


def test_other_integrity_errors_on_the_event_table_are_not_races(db_url: str,
                                                                 make_ledger) -> None:
    """The old check looked for `backstop_events` in the message: a NOT NULL violation on that
    table was taken for a lost race and retried."""
    ledger = make_ledger(db_url)
    ledger.open_fund(fund_config(), TIME)
    from ledger.domain.fund import fund_id

    oid = fund_id("other")
    if ledger.engine.dialect.name == "sqlite":
        oid = oid.bytes
    with pytest.raises(Exception) as caught, ledger.transaction() as connection:
        _insert_event(connection, oid, None)
    assert "backstop_events" in str(caught.value)
    assert busy.classify(caught.value) is None
    assert isinstance(caught.value, IntegrityError)  # the library's error, passed on as it is


def test_real_sqlite_errors_are_classified_by_their_codes(tmp_path: Path) -> None:
    """517 (BUSY_SNAPSHOT: a read snapshot went stale), 5 (BUSY), 1555 and 2067 (unique)."""
    path = tmp_path / "codes.sqlite"
    a = sqlite3.connect(path, isolation_level=None, timeout=0)
    b = sqlite3.connect(path, isolation_level=None, timeout=0)
    a.execute("PRAGMA journal_mode=WAL")
    a.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)")
    a.execute("CREATE TABLE u (k UNIQUE)")
    found: list[tuple[int, object]] = []

    def failing(connection: sqlite3.Connection, sql: str) -> None:
        with pytest.raises(sqlite3.Error) as caught:
            connection.execute(sql)
        found.append((caught.value.sqlite_errorcode, busy.classify(caught.value)))

    a.execute("BEGIN")
    a.execute("SELECT * FROM t").fetchall()
    b.execute("INSERT INTO t VALUES (1)")
    failing(a, "INSERT INTO t VALUES (2)")
    a.execute("ROLLBACK")
    b.execute("BEGIN IMMEDIATE")
    failing(a, "INSERT INTO t VALUES (3)")
    b.execute("ROLLBACK")
    failing(a, "INSERT INTO t VALUES (1)")
    a.execute("INSERT INTO u VALUES (1)")
    failing(a, "INSERT INTO u VALUES (1)")
    assert found == [(517, DatabaseBusy), (5, DatabaseBusy), (1555, ConcurrentWriteError),
                     (2067, ConcurrentWriteError)]


def test_postgres_codes_are_classified() -> None:
    from psycopg import errors

    assert busy.classify(errors.LockNotAvailable("x")) is DatabaseBusy
    assert busy.classify(errors.DeadlockDetected("x")) is DatabaseBusy
    assert busy.classify(errors.SerializationFailure("x")) is DatabaseBusy
    assert busy.classify(errors.UniqueViolation("x")) is ConcurrentWriteError
    assert busy.classify(errors.NotNullViolation("x")) is None


def test_messages_alone_classify_nothing() -> None:
    assert busy.classify(sqlite3.OperationalError("database is locked")) is None
    assert busy.classify(RuntimeError("UNIQUE constraint failed: backstop_events")) is None


# -- the retry loop ---------------------------------------------------------------------------

def test_retry_backs_off_with_jitter_then_succeeds() -> None:
    pauses: list[float] = []
    failures = iter([DatabaseBusy("locked"), ConcurrentWriteError("lost"), DatabaseBusy("x")])

    def action() -> str:
        for error in failures:
            raise error
        return "done"

    seen: list[str] = []
    assert busy.retry(action, timeout=60, holder=lambda: "h", sleep=pauses.append,
                      on_retry=lambda e: seen.append(type(e).__name__)) == "done"
    assert seen == ["DatabaseBusy", "ConcurrentWriteError", "DatabaseBusy"]
    bounds = [(0.025, 0.05), (0.05, 0.1), (0.1, 0.2)]  # halves to wholes of a doubling pause
    assert all(low <= p <= high for p, (low, high) in zip(pauses, bounds, strict=True))


def test_retry_gives_up_at_the_timeout_with_the_holder_named() -> None:
    def action() -> None:
        raise DatabaseBusy("locked")

    with pytest.raises(FundBusy) as caught:
        busy.retry(action, timeout=0, holder=lambda: "fund 'main' is busy: X", sleep=pytest.fail)
    assert str(caught.value).startswith("fund 'main' is busy: X; gave up after 0 s and 1 tries")


def test_a_bad_record_is_not_retried(tmp_path: Path, make_ledger) -> None:
    ledger = make_ledger(f"sqlite:///{tmp_path / 'l.sqlite'}")
    ledger.open_fund(fund_config(), TIME)
    bad = write_jsonl(tmp_path / "bad.jsonl", [fee("f1", "1"), {"type": "fee"}])
    with pytest.raises(RecordError):
        import_file(ledger, "main", bad)


def test_lock_timeout_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(busy.LOCK_TIMEOUT_ENV, "2.5")
    assert busy.lock_timeout() == 2.5
    assert busy.lock_timeout(7) == 7
    monkeypatch.setenv(busy.LOCK_TIMEOUT_ENV, "soon")
    with pytest.raises(ValueError, match="BACKSTOP_LOCK_TIMEOUT: 'soon' is not a number"):
        busy.lock_timeout()


# -- the library internals ledger/sqlstore.py relies on ------------------------------------

def test_the_overridden_recorder_internals_are_unchanged() -> None:
    """ledger.store.sqlstore overrides `_insert_stored_events` and calls `_lock_table`,
    `_notify_channel` and `events_record_cls`; ledger.service.application calls `transaction`. A new
    eventsourcing-sqlalchemy that renames or reshapes them must fail here, not in production."""
    from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
    from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
    from eventsourcing_sqlalchemy.recorders import (
        SQLAlchemyAggregateRecorder,
        SQLAlchemyApplicationRecorder,
        SQLAlchemyRecorder,
    )

    from ledger.store.sqlstore import BulkApplicationRecorder, Factory

    def sig(function: Any) -> str:
        return str(inspect.signature(function))

    base = SQLAlchemyApplicationRecorder
    assert sig(base._insert_stored_events) == (
        "(self, session: 'Session', stored_events: 'Sequence[StoredEvent]', **kwargs: 'Any') "
        "-> 'Sequence[int]'")
    assert sig(BulkApplicationRecorder._insert_stored_events) == sig(base._insert_stored_events)
    assert sig(SQLAlchemyAggregateRecorder._lock_table) == "(self, session: 'Session') -> 'None'"
    assert sig(base._notify_channel) == "(self, session: 'Session') -> 'None'"
    assert sig(base.insert_events) == ("(self, stored_events: 'Sequence[StoredEvent]', *, "
                                       "session: 'Optional[Session]' = None, **kwargs: 'Any') "
                                       "-> 'Optional[Sequence[int]]'")
    assert sig(SQLAlchemyRecorder.transaction) == "(self, commit: 'bool' = True) -> 'Transaction'"
    assert sig(SQLAlchemyDatastore.transaction) == "(self, commit: 'bool') -> 'Transaction'"
    assert "events_record_cls" in inspect.getsource(SQLAlchemyAggregateRecorder.__init__)
    assert SQLAlchemyFactory.application_recorder_class is base
    assert Factory.application_recorder_class is BulkApplicationRecorder


# -- item 4: a rollback must not leave a stale account cache --------------------------------

def test_rolled_back_import_leaves_no_stale_account_projection(tmp_path: Path,
                                                                make_ledger) -> None:
    """Positions: fund_opened 0, policy_set 1; each fee below is one event.

    A's file records fee a1 (1.00 to x) at position 2 — its projection now says x = 100 at
    position 3 — then fails at line 2 and rolls back. B records b1 (3.00 to x) at position 2:
    x = 300 at position 3. A records a2 (3.00 to x): x = 300 + 300 = 600 units. A stale cache
    (x = 100 at position 3) gave 100 + 300 = 400."""
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    a, b = make_ledger(url), make_ledger(url)
    a.open_fund(fund_config(), TIME)
    failing = write_jsonl(tmp_path / "a1.jsonl", [fee("a1", "1.00", "x"), {"type": "fee"}])
    with pytest.raises(RecordError, match=r"^line 2: "):
        import_file(a, "main", failing, batch_size=1)
    import_file(b, "main", write_jsonl(tmp_path / "b1.jsonl", [fee("b1", "3.00", "x")]))
    import_file(a, "main", write_jsonl(tmp_path / "a2.jsonl", [fee("a2", "3.00", "x")]))
    with a.engine.connect() as conn:
        fees = conn.execute(text("SELECT fees FROM backstop_accounts WHERE account = 'x'"))
        assert [row[0] for row in fees] == ["600"]
    assert rebuild_projections(a, "main")["unchanged"] is True
