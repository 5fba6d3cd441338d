"""Issue 11 item 1: a killed import must not leave its parser worker, or its session, behind.

The worker is forked for files of 1 MiB or more while the import holds an open transaction;
before the fix it outlived a kill -9 of its parent with the parent's PostgreSQL socket, and
the session stayed `idle in transaction` holding the event table's lock.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.processes import (
    alive,
    assert_all_dead,
    big_fact_file,
    children,
    init_fund,
    kill_and_reap,
    pg_event_lock_holders,
    pg_sessions,
    run,
    sockets_of,
    start,
    wait_for,
)

FACTS = 2400


@pytest.mark.slow
def test_kill_9_mid_import_leaves_no_worker_and_no_open_session(db_url: str,
                                                                tmp_path: Path) -> None:
    postgres = db_url.startswith("postgresql")
    big = big_fact_file(tmp_path / "big.jsonl", FACTS)
    init_fund(db_url, tmp_path)
    importer = start(db_url, "import", str(big), "--batch-size", "100")
    try:
        workers = wait_for(lambda: children(importer.pid), "the parser worker to start")
        if postgres:
            wait_for(lambda: pg_event_lock_holders(db_url), "the import to lock the log")
            # The import's transaction is open now: its worker must not share the session.
            assert [sockets_of(worker) for worker in workers] == [[] for _ in workers]
        assert all(alive(worker) for worker in workers)
    finally:
        kill_and_reap(importer)
    assert importer.returncode == -9
    assert_all_dead(workers)
    if postgres:
        wait_for(lambda: not pg_sessions(db_url, "idle in transaction"),
                 "the killed import's session to end")
    again = run(db_url, "import", str(big), "--lock-timeout", "30", "--json")
    assert again.returncode == 0, again.stderr
    assert '"recorded": 2400' in again.stdout
