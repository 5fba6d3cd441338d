"""Crash day, live: `backstop simulate --to-nats` feeds a follower that publishes signed
snapshots on a schedule and serves its metrics (issue 17, items 2 to 4), on a real NATS."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.verify.merkle import verify_consistency
from ledger.cli.main import main
from tests.bus import Bus
from tests.following import SIM, Running, imported_export, init, position
from tests.processes import export_bytes, run


def scrape(url: str) -> dict[str, float]:
    """The metric samples at `url` (Prometheus text format), by name."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


@pytest.mark.slow
def test_simulated_crash_day_followed_published_and_measured(tmp_path: Path, bus: Bus) -> None:
    """152 simulated facts go to the bus; the follower records them (export equal to a file
    import's), publishes a snapshot each second while the log grows: every dated folder
    holds a consistency proof from the previous one that verifies, and `latest` names the
    newest. The metrics endpoint reports sequence 152, no dead letters, and /healthz is ok."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    result = CliRunner().invoke(main, [
        "simulate", "--traders", str(SIM.traders), "--steps", str(SIM.steps), "--to-nats",
        bus.subject, "--servers", bus.url, "--fund-config", str(tmp_path / "fund.json")])
    assert result.exit_code == 0, result.output
    assert result.output == f"Published 152 facts to {bus.subject} on {bus.url}.\n"
    init(url, tmp_path)
    key = tmp_path / "key"
    assert CliRunner().invoke(main, ["keygen", "example.com/backstop", "--out",
                                     str(key)]).exit_code == 0
    out = tmp_path / "pub"
    follower = Running(url, bus, tmp_path / "follow.log", "--batch-size", "20",
                       "--publish-every", "1s", "--key", str(key), "--out", str(out),
                       "--metrics-port", "0")
    follower.until(lambda: position(url, bus) == 152, "sequence 152 committed")
    log_size = json.loads(run(url, "balances", "--json").stdout)["log_size"]
    follower.until(lambda: (out / "latest").exists() and json.loads(
        (out / "latest" / "snapshot.json").read_text())["log"]["size"] == log_size,
        "a snapshot of the whole log")
    metrics_url = str(follower.events("metrics")[0]["url"])
    samples = scrape(metrics_url)
    assert samples["backstop_follow_last_committed_sequence"] == 152
    assert samples["backstop_follow_facts_total"] == 152
    assert samples["backstop_follow_dead_letters_total"] == 0
    assert samples["backstop_follow_last_snapshot_timestamp_seconds"] > 0
    with urllib.request.urlopen(metrics_url.replace("/metrics", "/healthz"), timeout=10) as r:
        assert (r.status, r.read()) == (200, b"ok\n")
    follower.stop()

    assert os.readlink(out / "latest") == max(
        p.name for p in out.iterdir() if p.name[0].isdigit())
    runs = sorted((p for p in out.iterdir() if p.name[0].isdigit()),
                  key=lambda p: int(p.name.rsplit("-", 1)[1]))
    assert len(runs) >= 2  # the first run comes after the first batch, the last at 152
    previous = None
    for folder in runs:
        proof = json.loads((folder / "consistency.json").read_text())
        snapshot = json.loads((folder / "snapshot.json").read_text())
        assert proof["new"] == {"size": snapshot["log"]["size"], "root": snapshot["log"]["root"]}
        if previous is None:
            assert proof["old"] is None
        else:
            assert proof["old"] == {"size": previous["log"]["size"],
                                    "root": previous["log"]["root"]}
            verify_consistency(proof["old"]["size"], proof["new"]["size"],
                               [bytes.fromhex(h) for h in proof["proof"]],
                               bytes.fromhex(proof["old"]["root"]),
                               bytes.fromhex(proof["new"]["root"]))
        previous = snapshot
    facts = tmp_path / "facts.jsonl"
    assert CliRunner().invoke(main, ["simulate", "--traders", str(SIM.traders), "--steps",
                                     str(SIM.steps), "--out", str(facts)]).exit_code == 0
    assert export_bytes(url, tmp_path / "events.jsonl") == imported_export(tmp_path, facts)


def test_simulate_needs_one_destination(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["simulate"])
    assert (result.exit_code, result.output) == (
        2, "Error: give one of --out FILE and --to-nats SUBJECT\n")


def test_follow_reads_its_settings_from_the_environment(tmp_path: Path,
                                                        nats_server: str) -> None:
    """BACKSTOP_STREAM, BACKSTOP_DEAD_LETTER and BACKSTOP_NATS_URL stand for the flags: the
    stream named there is looked up (and missing: one line, exit 2)."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    init(url, tmp_path)
    result = CliRunner().invoke(main, ["follow", "--db", url], env={
        "BACKSTOP_STREAM": "NO_SUCH_STREAM_H17", "BACKSTOP_DEAD_LETTER": "x.dead",
        "BACKSTOP_NATS_URL": nats_server})
    assert (result.exit_code, result.output) == (
        2, f"Error: --stream NO_SUCH_STREAM_H17: no such stream on {nats_server}\n")


def test_a_dead_letter_subject_no_stream_keeps_is_refused(tmp_path: Path, bus: Bus) -> None:
    """Dead letters published where no stream stores them would be lost: refused, exit 2."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    init(url, tmp_path)
    result = CliRunner().invoke(main, ["follow", "--db", url, "--stream", bus.stream,
                                       "--dead-letter", "nowhere.h17", "--servers", bus.url])
    assert result.exit_code == 2
    assert result.output.startswith("Error: --dead-letter nowhere.h17: no stream stores this "
                                    "subject, so dead letters would be lost")
    assert result.output.count("\n") == 1


def test_follow_without_a_stream_is_one_line_and_exit_2(tmp_path: Path, nats_server: str) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    init(url, tmp_path)
    result = run(url, "follow", "--stream", "NO_SUCH_STREAM_H17", "--dead-letter", "x.dead",
                 "--servers", nats_server)
    assert result.returncode == 2
    assert result.stderr == f"Error: --stream NO_SUCH_STREAM_H17: no such stream on {nats_server}\n"
