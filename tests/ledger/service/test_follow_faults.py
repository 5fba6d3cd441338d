"""`backstop follow` under faults of issue 21, against the real NATS server, SQLite and
PostgreSQL: a stream deleted and created again, a database connection killed, a dead-letter
stream gone or slow. Each ends, where facts went in, by comparing the export with a file
import's (tests/ledger/service/test_follow.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bus import Bus, make_bus
from tests.ledger.service.test_follow import (
    Running,
    imported_export,
    init,
    lines,
    position,
    sim_facts,
)
from tests.processes import export_bytes, pg_terminate

pytestmark = pytest.mark.slow  # each runs `backstop` processes against the real bus


@pytest.fixture
def bus(nats_server: str) -> Iterator[Bus]:
    created = make_bus(nats_server)
    yield created
    created.delete()


def test_a_killed_database_connection_is_reconnected_and_nothing_is_lost(
        fresh_pg_url: str, tmp_path: Path, bus: Bus) -> None:
    """Every session of the follower's PostgreSQL database is terminated after sequence 30
    committed (pg_terminate_backend, from another connection); the follower logs db_error,
    reconnects and goes on: all 152 facts recorded once, the export equal to a file
    import's."""
    url = fresh_pg_url
    facts = sim_facts(tmp_path)
    init(url, tmp_path)
    payloads = lines(facts)
    bus.publish(payloads[:60])
    follower = Running(url, bus, tmp_path / "follow.log", "--batch-size", "10",
                       "--max-latency", "0.05")
    follower.until(lambda: position(url, bus) >= 30, "sequence 30 committed")
    assert pg_terminate(url)
    bus.publish(payloads[60:])
    follower.until(lambda: position(url, bus) == 152, "sequence 152 committed", 120)
    summary = follower.stop()
    assert follower.events("db_error")
    assert "152 facts recorded, 0 already recorded, 0 dead-lettered" in summary
    assert export_bytes(url, tmp_path / "events.jsonl") == imported_export(tmp_path, facts)
