"""`backstop follow` under faults of issue 21, against the real NATS server, SQLite and
PostgreSQL: a stream deleted and created again, a database connection killed, a dead-letter
stream gone or slow. Each ends, where facts went in, by comparing the export with a file
import's (tests/ledger/service/test_follow.py)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from ledger.service.backoff import CAP, FIRST, schedule
from ledger.store.dburl import normalize_url
from ledger.store.tables import follow_cursors
from tests.bus import NATS_SERVER, Bus, free_port, jetstream_reason, silent_listener, start_nats
from tests.factories import fee, write_jsonl
from tests.following import Running, imported_export, init, lines, position, sim_facts
from tests.processes import export_bytes, pg_terminate, run, wait_for

pytestmark = pytest.mark.slow  # each runs `backstop` processes against the real bus


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


def stored(url: str, bus: Bus) -> tuple[int, str | None]:
    """(position, stream_created) stored for the test's stream."""
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as connection:
            row = connection.execute(select(
                follow_cursors.c.position, follow_cursors.c.stream_created).where(
                follow_cursors.c.stream == bus.stream)).one()
            return int(row[0]), row[1]
    finally:
        engine.dispose()


def downgrade(url: str) -> None:
    """Make the cursor table as the version before issue 21 made it: no stream identity."""
    engine = create_engine(normalize_url(url))
    try:
        with engine.begin() as connection:
            connection.execute(text(
                "ALTER TABLE backstop_follow_cursors DROP COLUMN stream_created"))
    finally:
        engine.dispose()


def follow_once(url: str, bus: Bus, *extra: str) -> tuple[int, str, str]:
    """`backstop follow` run to its end (it must refuse): exit code, stdout, stderr."""
    result = run(url, "follow", "--stream", bus.stream, "--durable", bus.durable,
                 "--dead-letter", bus.dead_letter, "--servers", bus.url, *extra)
    return result.returncode, result.stdout, result.stderr


def refusal(bus: Bus, reason: str) -> str:
    return (f"Error: --stream {bus.stream} {reason}; nothing was acked. To follow the stream "
            "as it is now from its first message, run once with --reanchor (facts already "
            "recorded are recognised by their ids)\n")


def test_a_stream_created_again_is_refused_until_reanchored(
        db_url: str, tmp_path: Path, bus: Bus) -> None:
    """5 facts followed (position 5). The stream is deleted and created again while the
    follower runs, and 3 new facts published: sequences 1 to 3, at or below the stored
    position. The running follower exits 2 with one line, and so does a new one: no consumer
    created (nothing acked), nothing recorded. `--reanchor` follows the new stream from its
    first message: 3 facts recorded, the export equal to a file import of all 8; a second
    `--reanchor` changes nothing."""
    url = db_url
    facts = sim_facts(tmp_path)
    init(url, tmp_path)
    payloads = lines(facts)
    bus.publish(payloads[:5])
    old = bus.created()
    first = Running(url, bus, tmp_path / "first.log", "--max-latency", "0.05")
    first.until(lambda: position(url, bus) == 5, "sequence 5 committed")
    assert stored(url, bus) == (5, old)
    before = export_bytes(url, tmp_path / "before.jsonl")
    bus.recreate()
    new = bus.created()
    assert new != old
    assert bus.publish(payloads[5:8]) == [1, 2, 3]
    assert first.process.wait(timeout=60) == 2
    first.stderr.close()
    reason = (f"was created again at {new} (the stored position 5 counts in the stream "
              f"created at {old})")
    assert first.log.read_text().splitlines()[-1] == refusal(bus, reason).rstrip("\n")
    assert follow_once(url, bus) == (2, "", refusal(bus, reason))
    assert bus.consumers() == []  # refused before subscribing: nothing delivered or acked
    assert stored(url, bus) == (5, old)
    assert export_bytes(url, tmp_path / "after.jsonl") == before

    again = Running(url, bus, tmp_path / "again.log", "--reanchor", "--max-latency", "0.05")
    again.until(lambda: position(url, bus) == 3 and bus.consumer() == (0, 0),
                "the new stream's 3 messages committed and acked")
    summary = again.stop()
    assert "to position 3: 3 facts recorded, 0 already recorded, 0 dead-lettered" in summary
    [event] = again.events("reanchored")
    assert (event["old_position"], event["position"], event["stream_created"]) == (5, 0, new)
    assert stored(url, bus) == (3, new)
    eight = write_jsonl(tmp_path / "eight.jsonl", [json.loads(p) for p in payloads[:8]])
    assert export_bytes(url, tmp_path / "events.jsonl") == imported_export(tmp_path, eight)
    once_more = Running(url, bus, tmp_path / "once-more.log", "--reanchor")
    once_more.until(lambda: once_more.events("started"), "the follower up")
    assert "to position 3: 0 facts recorded" in once_more.stop()
    assert once_more.events("reanchor_unneeded") and not once_more.events("reanchored")


def test_a_database_made_before_the_stream_identity_is_upgraded(
        db_url: str, tmp_path: Path, bus: Bus) -> None:
    """A cursor table without the stream identity column (as the previous version made it)
    at position 5: the follower adds the column, records the stream's creation time and goes
    on (8 facts, the export equal to a file import's). Made old again, with the stream
    created again below the stored position: refused, exit 2, nothing recorded."""
    url = db_url
    facts = sim_facts(tmp_path)
    init(url, tmp_path)
    payloads = lines(facts)
    bus.publish(payloads[:5])
    first = Running(url, bus, tmp_path / "first.log", "--max-latency", "0.05")
    first.until(lambda: position(url, bus) == 5, "sequence 5 committed")
    first.stop()
    downgrade(url)
    bus.publish(payloads[5:8])
    second = Running(url, bus, tmp_path / "second.log", "--max-latency", "0.05")
    second.until(lambda: position(url, bus) == 8, "sequence 8 committed")
    assert "to position 8: 3 facts recorded" in second.stop()
    assert stored(url, bus) == (8, bus.created())
    eight = write_jsonl(tmp_path / "eight.jsonl", [json.loads(p) for p in payloads[:8]])
    followed = export_bytes(url, tmp_path / "events.jsonl")
    assert followed == imported_export(tmp_path, eight)

    downgrade(url)
    bus.recreate()
    bus.publish(payloads[8:11])
    reason = "ends at sequence 3, before the stored position 8: it was created again"
    assert follow_once(url, bus) == (2, "", refusal(bus, reason))
    assert bus.consumers() == []
    assert stored(url, bus) == (8, None)
    assert export_bytes(url, tmp_path / "after.jsonl") == followed


def test_the_nats_password_never_appears_in_errors_or_logs(tmp_path: Path) -> None:
    """A NATS server of this test's own wants user alice and a password. A wrong password:
    refused at once in one line, exit 2, the URL shown as nats://alice:***@...; the right
    one and a missing stream: that line masks it too. Neither password is in any output."""
    secret_never_shown(tmp_path, ["--user", "alice", "--pass", "r1ghtpass"],
                       ("alice:r1ghtpass", "alice:wr0ngpass"), "alice:***",
                       "(Error: nats: 'Authorization Violation')")


def test_a_nats_token_never_appears_in_errors_or_logs(tmp_path: Path) -> None:
    """A server that wants a token (nats://TOKEN@host): the token is shown as *** whole, in
    the refusal of a wrong one and in the missing-stream line of the right one."""
    secret_never_shown(tmp_path, ["--auth", "r1ghttoken"], ("r1ghttoken", "wr0ngtoken"), "***",
                       None)


def secret_never_shown(tmp_path: Path, server_args: list[str], userinfo: tuple[str, str],
                       masked_userinfo: str, reason: str | None) -> None:
    """Follow a server of our own with the right and the wrong `userinfo`: the wrong one is
    refused (exit 2, a last line naming the refusal and its `reason`, any reason in brackets
    when None), the right one meets no stream (exit 2); the URL is shown with
    `masked_userinfo`, and neither secret appears in any output."""
    if not os.access(NATS_SERVER, os.X_OK):
        pytest.skip(f"{NATS_SERVER} is not installed (needed to run a server of our own)")
    port = free_port()
    server = start_nats(port, tmp_path / "store", *server_args)
    try:
        right, wrong = (f"nats://{u}@127.0.0.1:{port}" for u in userinfo)
        wait_for(lambda: jetstream_reason(right) is None, "our NATS server up", 30)
        url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        init(url, tmp_path)
        masked = f"nats://{masked_userinfo}@127.0.0.1:{port}"
        refused = f"Error: --servers {masked}: the server refused the credentials "
        for servers, line in (
                (wrong, refused + (reason or "")),
                (right, f"Error: --stream NO_SUCH_H21: no such stream on {masked}")):
            result = run(url, "follow", "--stream", "NO_SUCH_H21", "--dead-letter", "x.dead",
                         "--servers", servers, "--log-format", "json", timeout=60)
            output = result.stdout + result.stderr
            last = result.stderr.splitlines()[-1]
            if servers == wrong and reason is None:
                assert (result.returncode, last[:len(line) + 1], last[-1]) == (2, line + "(", ")")
            else:
                assert (result.returncode, last) == (2, line)
            assert not any(u.split(":")[-1] in output for u in userinfo)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_backoff_doubles_up_to_its_cap() -> None:
    assert (FIRST, CAP) == (0.5, 30.0)
    assert schedule(9) == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def rolled_back(follower: Running) -> list[dict[str, object]]:
    return [e for e in follower.events("bus_error") if "rolled back" in str(e["reason"])]


def following_without_dead_letters(url: str, bus: Bus, tmp_path: Path
                                   ) -> tuple[Running, list[dict[str, str]], bytes]:
    """A fund and its running follower whose dead-letter stream was then deleted; two good
    facts and one bad message (its bytes) for the test to publish."""
    init(url, tmp_path)
    follower = Running(url, bus, tmp_path / "follow.log", "--max-latency", "0.05",
                       "--ack-wait", "2")  # messages committed by catch-up: acked sooner
    follower.until(lambda: follower.events("started"), "the follower up")
    bus.delete_dead_stream()
    return follower, [fee("g1", "1.00"), fee("g2", "2.00")], json.dumps(fee("b1", "x")).encode()


def test_a_missing_dead_letter_stream_is_retried_with_a_growing_delay(
        tmp_path: Path, bus: Bus) -> None:
    """The dead-letter stream is deleted while the follower runs; a batch with a bad message
    cannot store its dead letter: rolled back, nothing acked, and tried again after 0.5, 1,
    2 s (4 attempts over at least 3.5 s, where it used to try 4 times a second). The stream
    is added back: the next attempt stores the dead letter once and commits the rest."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    follower, good, bad = following_without_dead_letters(url, bus, tmp_path)
    bus.publish([json.dumps(good[0]).encode(), bad, json.dumps(good[1]).encode()])
    follower.until(lambda: rolled_back(follower), "a batch rolled back")
    first = time.monotonic()
    follower.until(lambda: len(rolled_back(follower)) >= 4, "four attempts")
    window = time.monotonic() - first
    assert [e["retry_in"] for e in rolled_back(follower)[:4]] == [0.5, 1.0, 2.0, 4.0]
    assert window >= 0.5 + 1.0 + 2.0 - 0.1  # between the first and the fourth attempt
    assert position(url, bus) == 0
    assert bus.consumer()[1] == 3  # delivered, none acked
    bus.add_dead_stream()
    follower.until(lambda: position(url, bus) == 3 and bus.consumer() == (0, 0),
                   "the batch committed once the dead letter is stored", 30)
    assert "2 facts recorded, 0 already recorded, 1 dead-lettered" in follower.stop()
    assert [(s, p) for _, s, p in bus.dead_letters()] == [("2", bad)]
    facts = write_jsonl(tmp_path / "good.jsonl", good)
    assert export_bytes(url, tmp_path / "events.jsonl") == imported_export(tmp_path, facts)


def test_a_slow_dead_letter_publish_does_not_hold_the_fund(
        db_url: str, tmp_path: Path, bus: Bus) -> None:
    """The dead-letter subject is answered by nobody (its stream deleted, a silent listener
    on it): the follower's publish waits for an ack that never comes. Meanwhile `backstop
    import --lock-timeout 1` writes to the fund at once (exit 0): the wait holds no lock (it
    was inside the batch's transaction, 10 s per message: exit 3). The stream is added back:
    the follower stores the dead letter, commits the rest after the import's fact."""
    url = db_url
    follower, good, bad = following_without_dead_letters(url, bus, tmp_path)
    with silent_listener(bus.url, bus.dead_letter) as received:
        bus.publish([json.dumps(good[0]).encode(), bad, json.dumps(good[1]).encode()])
        follower.until(lambda: received, "the follower waiting on its dead letter's ack")
        other = write_jsonl(tmp_path / "other.jsonl", [fee("o1", "5.00")])
        imported = run(url, "import", str(other), "--lock-timeout", "1")
        assert (imported.returncode, imported.stderr) == (0, "")
        assert not rolled_back(follower)  # the import ran while the follower still waited
    bus.add_dead_stream()
    follower.until(lambda: position(url, bus) == 3 and bus.consumer() == (0, 0),
                   "the batch committed once the dead letter is stored", 60)
    assert "2 facts recorded, 0 already recorded, 1 dead-lettered" in follower.stop()
    assert [(s, p) for _, s, p in bus.dead_letters()] == [("2", bad)]
    facts = write_jsonl(tmp_path / "all.jsonl", [fee("o1", "5.00"), *good])
    assert export_bytes(url, tmp_path / "events.jsonl") == imported_export(tmp_path, facts)
