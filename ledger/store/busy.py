"""A busy database: which driver errors mean "wait and retry", the retry loop, and who is busy.

Two writers on one fund meet in two ways. A lock wait: SQLite's single writer lock
(`database is locked`, result code 5 and its extended codes such as 517), PostgreSQL's
`LOCK TABLE` on the event table or a row lock (SQLSTATE 55P03 when `lock_timeout` expires,
40P01 for a deadlock, 40001 for a serialization failure). Or a lost race: both loaded the fund at
version V and the second insert of version V+1 breaks the event table's unique index (SQLite
2067/1555, SQLSTATE 23505). Both are recognised from the codes on the driver's exception,
never from its message, and both are retried with exponential backoff and jitter until the
lock timeout is spent; then one line says who holds the fund and what to do.
"""

from __future__ import annotations

import contextvars
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Engine, text

from auditor.formats.wire import format_time

LOCK_TIMEOUT_ENV = "BACKSTOP_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 60.0  # seconds a command waits for another writer before giving up
BUSY_EXIT_CODE = 3  # the CLI's exit code when it gave up waiting (README, --help)
FIRST_PAUSE = 0.05  # seconds before the first retry; doubles up to MAX_PAUSE
MAX_PAUSE = 2.0

SQLITE_BUSY = 5  # primary result code; extended codes (517 BUSY_SNAPSHOT, ...) share its low byte
SQLITE_UNIQUE = frozenset({2067, 1555})  # SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
PG_BUSY = frozenset({"55P03", "40P01", "40001"})  # lock_not_available, deadlock, serialization
PG_UNIQUE = "23505"

T = TypeVar("T")

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("_deadline",
                                                                         default=None)


class ConcurrentWriteError(RuntimeError):
    """Another writer appended to the fund first; the caller may reload and retry."""


class DatabaseBusy(RuntimeError):
    """A lock wait gave up (timeout, deadlock): the transaction may be retried."""


class FundBusy(RuntimeError):
    """Retries ran out of time. The message is one line: who holds the fund, what to do."""


def lock_timeout(value: float | str | None = None) -> float:
    """Seconds to wait for another writer: `value`, else $BACKSTOP_LOCK_TIMEOUT, else 60."""
    raw = value if value is not None else os.environ.get(LOCK_TIMEOUT_ENV)
    if raw is None or raw == "":
        return DEFAULT_LOCK_TIMEOUT
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"{LOCK_TIMEOUT_ENV}: {str(raw)[:40]!r} is not a number of "
                         "seconds") from None
    if not 0 <= seconds <= 86_400:
        raise ValueError(f"{LOCK_TIMEOUT_ENV}: {seconds:g} is not between 0 and 86400 seconds")
    return seconds


def driver_error(error: BaseException) -> BaseException | None:
    """The DBAPI driver's exception behind `error` (SQLAlchemy's `.orig`, or a cause)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sqlite3.Error) or hasattr(current, "sqlstate"):
            return current
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else (
            current.__cause__ or current.__context__)
    return None


def classify(error: BaseException) -> type[ConcurrentWriteError] | type[DatabaseBusy] | None:
    """ConcurrentWriteError or DatabaseBusy when `error` is one of those, else None."""
    if isinstance(error, (ConcurrentWriteError, DatabaseBusy)):
        return type(error)
    found = driver_error(error)
    if found is None:
        return None
    code = getattr(found, "sqlite_errorcode", None)
    if isinstance(code, int):
        if code in SQLITE_UNIQUE:
            return ConcurrentWriteError
        return DatabaseBusy if code & 0xFF == SQLITE_BUSY else None
    state = getattr(found, "sqlstate", None)
    if state == PG_UNIQUE:
        return ConcurrentWriteError
    return DatabaseBusy if state in PG_BUSY else None


def wait_seconds(timeout: float) -> float:
    """How long one lock wait may last: what is left of the current retry loop's time, or
    `timeout` outside one (a small floor so a last try can still take a free lock)."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    return max(0.05, deadline - time.monotonic())


@contextmanager
def _until(deadline: float) -> Iterator[None]:
    token = _deadline.set(deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


def retry(action: Callable[[], T], *, timeout: float, holder: Callable[[], str],
          on_retry: Callable[[BaseException], None] | None = None,
          sleep: Callable[[float], None] = time.sleep) -> T:
    """Run `action` until it succeeds; a ConcurrentWriteError or DatabaseBusy is retried
    after a jittered, doubling pause while `timeout` seconds have not passed (lock waits
    inside the database count against them). Then FundBusy, worded by `holder()`."""
    started = time.monotonic()
    pause = FIRST_PAUSE
    tries = 0
    with _until(started + timeout):
        while True:
            tries += 1
            try:
                return action()
            except (ConcurrentWriteError, DatabaseBusy) as error:
                left = started + timeout - time.monotonic()
                if left <= 0:
                    raise FundBusy(f"{holder()}; gave up after {time.monotonic() - started:.0f} s "
                                   f"and {tries} tries (--lock-timeout or {LOCK_TIMEOUT_ENV} "
                                   "sets the wait)") from error
                if on_retry is not None:
                    on_retry(error)
                sleep(min(left, random.uniform(pause / 2, pause)))  # jitter: writers spread out
                pause = min(pause * 2, MAX_PAUSE)


_PG_HOLDERS = text("""
    SELECT DISTINCT a.pid, a.application_name, a.state,
           a.xact_start AS since
    FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid
    WHERE l.granted AND a.pid <> pg_backend_pid() AND a.datname = current_database()
      AND l.mode IN ('ExclusiveLock', 'RowExclusiveLock', 'AccessExclusiveLock')
      AND l.relation IN (SELECT oid FROM pg_class WHERE relname LIKE 'backstop\\_%')
    ORDER BY a.pid
""")


def describe_holder(engine: Engine, fund: str | None) -> str:
    """`fund 'x' is busy: <who holds it>. <what to do>` for the one-line give-up message."""
    what = f"fund {fund!r}" if fund else "the database"
    if engine.dialect.name == "sqlite":
        return (f"{what} is busy: another writer holds the SQLite file "
                f"{engine.url.database} (an import or rebuild still running?); wait for it to "
                "finish, then retry")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SET LOCAL statement_timeout = '5s'")
            rows = list(connection.execute(_PG_HOLDERS))
    except Exception as error:  # the one-line message must still be printed
        return (f"{what} is busy: another PostgreSQL session holds it (could not list it: "
                f"{type(error).__name__}); wait for it to finish, then retry")
    if not rows:
        return (f"{what} is busy: other writers kept appending to it; "
                "retry when they are done")
    sessions = ", ".join(f"pid {r.pid} (application {r.application_name or '?'!r}, "
                         f"{r.state or '?'} since {format_time(r.since) if r.since else '?'})"
                         for r in rows[:3])
    return (f"{what} is busy: PostgreSQL session {sessions} holds its tables; wait for it to "
            f"finish, or if its process is gone end it with "
            f"SELECT pg_terminate_backend({rows[0].pid}), then retry")
