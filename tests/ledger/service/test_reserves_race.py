"""Issue 21 item 3: two concurrent `backstop reserves add` must not lose a holding.

The first add runs in this process and is held inside its transaction, after it has read the
round, while it reads its holdings (`lines` is read lazily, inside the transaction); the second
is a real `backstop reserves add` subprocess on its own connection, run at exactly that point.
Before the fix the second recorded its holding and exited 0, then the first wrote back the
round it had read: the second's holding was gone."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.service.reserves import add_holdings
from tests.conftest import _pg_admin
from tests.processes import run, start, wait_for
from tests.reserves_kit import ADDRESS_A, ADDRESS_B, ROUND_TIME, TOKEN, Kit


def open_kit(folder: Path, url: str) -> Kit:
    kit = Kit(folder, url)
    kit.create()
    kit.ok("reserves", "challenge", "--time", ROUND_TIME)
    return kit


@pytest.fixture
def kit(db_url: str, tmp_path: Path) -> Kit:
    return open_kit(tmp_path, db_url)


def recorded(kit: Kit) -> list[str]:
    holdings: list[dict[str, Any]] = json.loads(kit.ok("reserves", "show", "--json"))["holdings"]
    return [h["address"] for h in holdings]


def holding_lines(kit: Kit) -> tuple[bytes, Path]:
    """The first add's line (A's USDT) and the second's file (B's ETH)."""
    first = json.dumps(kit.onchain("a", ADDRESS_A, "USDT", "600.00", TOKEN)).encode()
    second = kit.folder / "second.jsonl"
    second.write_text(json.dumps(kit.onchain("b", ADDRESS_B, "ETH", "2.00000000", None)) + "\n")
    return first, second


def test_the_second_add_gives_up_busy_while_the_first_holds_the_round(kit: Kit,
                                                                      make_ledger) -> None:
    first, second = holding_lines(kit)
    competitor: dict[str, Any] = {}

    def lines() -> Iterator[bytes]:
        yield first
        # The first add's transaction is open here, the round read and A's line checked.
        competitor["run"] = run(kit.url, "reserves", "add", str(second), "--lock-timeout", "0.5")

    updated = add_holdings(make_ledger(kit.url), "main", lines(), [])
    loser = competitor["run"]
    assert (loser.returncode, loser.stdout) == (3, ""), loser.stderr  # before: 0, "recorded; …"
    assert loser.stderr.count("\n") == 1 and "Traceback" not in loser.stderr
    assert loser.stderr.endswith(" tries (--lock-timeout or BACKSTOP_LOCK_TIMEOUT sets the wait)\n")
    if kit.url.startswith("sqlite"):
        assert loser.stderr.startswith(
            f"Error: fund 'main' is busy: another writer holds the SQLite file "
            f"{kit.folder / 'ledger.sqlite'} (an import or rebuild still running?); wait for "
            "it to finish, then retry; gave up after ")
    else:
        assert loser.stderr.startswith("Error: fund 'main' is busy: PostgreSQL session pid ")
        assert f"(application 'backstop pid {os.getpid()}', idle in transaction since " \
            in loser.stderr
    assert len(updated.holdings) == 1 and recorded(kit) == [ADDRESS_A]
    # Nothing of the loser's was written: run again, it adds to the first's holding.
    again = run(kit.url, "reserves", "add", str(second))
    assert again.returncode == 0, again.stderr
    assert again.stdout == "recorded; the round at log size 4 now has 2 holding(s)\n"
    assert recorded(kit) == [ADDRESS_A, ADDRESS_B]


@pytest.mark.postgres
def test_the_second_add_waits_and_then_adds_to_the_first(fresh_pg_url: str, tmp_path: Path,
                                                         make_ledger) -> None:
    kit = open_kit(tmp_path, fresh_pg_url)
    first, second = holding_lines(kit)
    waiter = None

    def lines() -> Iterator[bytes]:
        nonlocal waiter
        yield first
        waiter = start(kit.url, "reserves", "add", str(second), "--lock-timeout", "60")
        with _pg_admin(kit.url) as watcher:  # its wait for the lock, seen from outside
            wait_for(lambda: watcher.execute(
                "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE NOT "
                "l.granted AND a.application_name = %s", (f"backstop pid {waiter.pid}",))
                .fetchall(), "the second add to wait for the fund's write lock")

    add_holdings(make_ledger(kit.url), "main", lines(), [])
    assert waiter is not None
    out, err = waiter.communicate(timeout=60)
    assert (waiter.returncode, err) == (0, "")
    assert out == "recorded; the round at log size 4 now has 2 holding(s)\n"
    assert recorded(kit) == [ADDRESS_A, ADDRESS_B]


def test_a_retried_transaction_replays_the_lines_read_so_far() -> None:
    """A retry (lock wait given up, lost race) sees every line once more, the source is read
    once."""
    reads: list[bytes] = []

    def source() -> Iterator[bytes]:
        for line in (b"1", b"2", b"3"):
            reads.append(line)
            yield line

    from ledger.service.reserves import _Rereadable

    lines = _Rereadable(source())
    assert next(iter(lines)) == b"1"  # an attempt that failed after one line
    assert list(lines) == [b"1", b"2", b"3"] == list(lines)
    assert reads == [b"1", b"2", b"3"]
