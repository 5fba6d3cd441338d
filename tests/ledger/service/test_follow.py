"""`backstop follow` against a real NATS JetStream server (issue 17).

Each test has streams of its own (tests.bus), runs the follower as a subprocess like an
operator would, and ends by comparing `backstop export` with the export of a file import of
the same facts: equal bytes mean every fact was recorded once, in stream order. Waits poll
the database's committed stream position or the follower's JSON log, with deadlines.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bus import NATS_SERVER, Bus, free_port, make_bus, start_nats
from tests.factories import fee, write_jsonl
from tests.following import Running, imported_export, init, lines, position, sim_facts
from tests.processes import export_bytes, run, wait_for

pytestmark = pytest.mark.slow  # each runs several `backstop` processes (CI runs them all)


def test_redelivered_and_duplicated_messages_are_recorded_once(
        db_url: str, tmp_path: Path, bus: Bus) -> None:
    """152 facts, then the first 20 published again (new stream sequences, same ids). Before
    the follower starts, another consumer instance holds 30 messages unacked (redelivered after
    1 s; the follower reads them from the stream by sequence first) and naks the next 30
    (redelivered at once). The export equals the file import's; 20 duplicates are counted."""
    facts = sim_facts(tmp_path)
    init(db_url, tmp_path)
    payloads = lines(facts)
    sequences = bus.publish(payloads + payloads[:20])
    assert sequences == list(range(1, 173))
    assert bus.hold(30, nak=False) == list(range(1, 31))  # ack_wait 1 s: redelivered later
    assert bus.hold(30, nak=True) == list(range(31, 61))  # redelivered at once
    follower = Running(db_url, bus, tmp_path / "follow.log", "--batch-size", "25")
    follower.until(lambda: position(db_url, bus) == 172, "the follower to commit sequence 172")
    follower.until(lambda: bus.consumer() == (0, 0), "every message acked")
    summary = follower.stop()
    assert "152 facts recorded, 20 already recorded, 0 dead-lettered" in summary
    assert export_bytes(db_url, tmp_path / "events.jsonl") == imported_export(tmp_path, facts)


def test_kill_9_mid_batch_then_restart_loses_and_doubles_nothing(
        db_url: str, tmp_path: Path, bus: Bus) -> None:
    """25 facts on the bus; the follower (batches of 10, waiting up to 30 s to fill one)
    commits 1-10 and 11-20, then holds 21-25 in an open batch: killed with SIGKILL there.
    The other 127 facts are published and a new follower resumes from position 20 at once
    (the dead one's 5 unacked messages are read from the stream by sequence): the export
    equals the file import's, nothing lost, nothing twice."""
    url = db_url
    facts = sim_facts(tmp_path)
    init(url, tmp_path)
    payloads = lines(facts)
    bus.publish(payloads[:25])
    first = Running(url, bus, tmp_path / "first.log", "--batch-size", "10",
                    "--max-latency", "30", "--ack-wait", "30")
    first.until(lambda: len(first.events("committed")) == 2
                and len(first.events("batch_open")) == 3 and bus.consumer() == (0, 5),
                "two commits and an open batch of 5")
    first.kill()
    assert position(url, bus) == 20
    assert bus.consumer() == (0, 5)  # the open batch: delivered, never acked
    bus.publish(payloads[25:])
    second = Running(url, bus, tmp_path / "second.log", "--batch-size", "10",
                     "--max-latency", "0.05")
    second.until(lambda: position(url, bus) == 152, "the restarted follower to catch up")
    summary = second.stop()
    assert "132 facts recorded, 0 already recorded, 0 dead-lettered" in summary
    assert export_bytes(url, tmp_path / "events.jsonl") == imported_export(tmp_path, facts)


def test_a_poison_message_is_dead_lettered_with_its_reason_and_the_stream_goes_on(
        tmp_path: Path, bus: Bus) -> None:
    """Sequences 2 (not JSON) and 4 (amount not a decimal) are refused with the import's
    wording; 1, 3 and 5 are recorded: 3 events after the 2 of the opening."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    init(url, tmp_path)
    good = [fee("f1", "1.50"), fee("f2", "2.00"), fee("f3", "0.25")]
    bad_amount = json.dumps(fee("f9", "x1")).encode()
    bus.publish([json.dumps(good[0]).encode(), b"{not json", json.dumps(good[1]).encode(),
                 bad_amount, json.dumps(good[2]).encode()])
    follower = Running(url, bus, tmp_path / "follow.log")
    follower.until(lambda: position(url, bus) == 5, "sequence 5 committed")
    follower.until(lambda: bus.consumer() == (0, 0), "every message acked")
    summary = follower.stop()
    assert "3 facts recorded, 0 already recorded, 2 dead-lettered" in summary
    dead = bus.dead_letters()
    assert [(sequence, payload) for _, sequence, payload in dead] == [
        ("2", b"{not json"), ("4", bad_amount)]
    assert dead[0][0].startswith("stream sequence 2: (record): not valid JSON: ")
    assert dead[1][0].startswith("stream sequence 4: amount: ")
    facts = write_jsonl(tmp_path / "good.jsonl", good)
    assert export_bytes(url, tmp_path / "events.jsonl") == imported_export(tmp_path, facts)


def test_a_conflict_is_dead_lettered_and_the_rest_of_its_batch_commits_in_order(
        tmp_path: Path, bus: Bus) -> None:
    """f1 1.50, then f1 2.00 (same id, other amount), then f2 0.50, in one batch: the
    batch is split, f1 and f2 are recorded (fund 2.00), sequence 2 is dead-lettered."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    init(url, tmp_path)
    records = [fee("f1", "1.50"), fee("f1", "2.00"), fee("f2", "0.50")]
    bus.publish([json.dumps(r).encode() for r in records])
    follower = Running(url, bus, tmp_path / "follow.log", "--max-latency", "0.5")
    follower.until(lambda: position(url, bus) == 3, "sequence 3 committed")
    summary = follower.stop()
    assert "2 facts recorded, 0 already recorded, 1 dead-lettered in 1 batches" in summary
    assert [reason for reason, _, _ in bus.dead_letters()] == [
        "stream sequence 2: id: fee 'f1' is already recorded with different fields (conflict)"]
    balances = json.loads(run(url, "balances", "--json").stdout)
    assert balances["assets"]["USDT"]["balance"] == "2.00"  # 1.50 + 0.50
    facts = write_jsonl(tmp_path / "good.jsonl", [records[0], records[2]])
    assert export_bytes(url, tmp_path / "events.jsonl") == imported_export(tmp_path, facts)


def test_sigterm_during_a_batch_commits_it_acks_it_and_exits_0(
        tmp_path: Path, bus: Bus) -> None:
    """A batch waits up to 60 s for more messages; SIGTERM ends the wait: the 40 messages
    held are committed and acked, exit 0, well before the 60 s."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    facts = sim_facts(tmp_path)
    subset = write_jsonl(tmp_path / "first40.jsonl",
                         [json.loads(line) for line in lines(facts)[:40]])
    init(url, tmp_path)
    bus.publish(lines(subset))
    follower = Running(url, bus, tmp_path / "follow.log", "--max-latency", "60")
    follower.until(lambda: follower.events("batch_open") and bus.consumer() == (0, 40),
                   "an open batch holding all 40 messages")
    assert position(url, bus) == 0
    summary = follower.stop()
    assert "40 facts recorded" in summary
    assert position(url, bus) == 40
    assert bus.consumer() == (0, 0)
    assert export_bytes(url, tmp_path / "events.jsonl") == imported_export(tmp_path, subset)


def test_two_followers_on_one_durable_consumer_count_each_fact_once(
        db_url: str, tmp_path: Path, bus: Bus) -> None:
    """Two followers share the durable consumer while the facts arrive; together they
    record 152 facts, and the export equals the file import's (stream order kept)."""
    facts = sim_facts(tmp_path)
    init(db_url, tmp_path)
    one = Running(db_url, bus, tmp_path / "one.log", "--batch-size", "8", "--max-latency",
                  "0.05")
    two = Running(db_url, bus, tmp_path / "two.log", "--batch-size", "8", "--max-latency",
                  "0.05")
    one.until(lambda: one.events("started") and two.events("started"), "both followers up")
    payloads = lines(facts)
    for start in range(0, len(payloads), 16):
        bus.publish(payloads[start:start + 16])
    one.until(lambda: position(db_url, bus) == 152, "sequence 152 committed", 120)
    totals = [one.stop(), two.stop()]
    recorded = sum(int(s.split(": ", 1)[1].split(" facts recorded")[0]) for s in totals)
    assert recorded == 152, totals
    assert export_bytes(db_url, tmp_path / "events.jsonl") == imported_export(tmp_path, facts)


def test_the_bus_restarting_mid_stream_loses_and_doubles_nothing(
        tmp_path: Path, nats_server: str) -> None:
    """A NATS server of this test's own is stopped while the follower runs (after sequence
    30 committed), and started again on the same storage; the follower reconnects by itself,
    the rest of the facts are published, and the export equals the file import's."""
    import os

    from tests.bus import jetstream_reason

    if not os.access(NATS_SERVER, os.X_OK):
        pytest.skip(f"{NATS_SERVER} is not installed (needed to restart a server of our own)")
    port = free_port()
    server = start_nats(port, tmp_path / "store")
    url_nats = f"nats://127.0.0.1:{port}"
    try:
        wait_for(lambda: jetstream_reason(url_nats) is None, "our NATS server up", 30)
        bus = make_bus(url_nats)
        url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        facts = sim_facts(tmp_path)
        init(url, tmp_path)
        payloads = lines(facts)
        bus.publish(payloads[:80])
        follower = Running(url, bus, tmp_path / "follow.log", "--batch-size", "10",
                           "--max-latency", "0.05", "--ack-wait", "2")
        follower.until(lambda: position(url, bus) >= 30, "sequence 30 committed")
        server.terminate()
        server.wait(timeout=30)
        server = start_nats(port, tmp_path / "store")
        wait_for(lambda: jetstream_reason(url_nats) is None, "our NATS server back", 30)
        bus.publish(payloads[80:])
        follower.until(lambda: position(url, bus) == 152, "sequence 152 committed", 120)
        summary = follower.stop()
        # Redelivered messages are at or below the committed position: acked, not applied.
        assert "152 facts recorded, 0 already recorded, 0 dead-lettered" in summary
        assert follower.events("bus_error")  # the follower did see the server go
        assert export_bytes(url, tmp_path / "events.jsonl") == imported_export(tmp_path, facts)
    finally:
        server.terminate()
        server.wait(timeout=30)
