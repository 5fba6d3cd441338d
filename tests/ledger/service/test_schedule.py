"""Scheduled publishing (ledger.service.schedule): dated folders, consistency from the previous
run, the `latest` symlink replaced by rename, nothing published when nothing is new."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from auditor.verify.merkle import verify_consistency
from ledger.service.application import Ledger
from ledger.service.importer import import_file
from ledger.service.schedule import point_latest, publish_dated, rebuild_site
from ledger.service.signing import generate_signer
from tests.factories import cli_crash_fund, fee, write_jsonl


def test_runs_chain_by_consistency_and_latest_names_the_newest(tmp_path: Path) -> None:
    """crash_records() make 11 events; a run at 11, none while nothing is new, then 2 more
    fees make 13: the second folder proves 11 -> 13, and `latest` points at it."""
    env = cli_crash_fund(tmp_path)
    ledger = Ledger(env["BACKSTOP_DB"])
    signer = generate_signer("example.com/backstop")
    out = tmp_path / "public"
    first = publish_dated(ledger, "main", signer, out, "2026-01-01T00:00:00Z")
    assert first is not None and (first.previous_size, first.size) == (0, 11)
    assert first.folder.name == "20260101T000000Z-11"
    assert publish_dated(ledger, "main", signer, out, "2026-01-01T01:00:00Z") is None
    import_file(ledger, "main", write_jsonl(tmp_path / "more.jsonl",
                                            [fee("f2", "1"), fee("f3", "2")]))
    second = publish_dated(ledger, "main", signer, out, "2026-01-01T02:00:00Z")
    assert second is not None and (second.previous_size, second.size) == (11, 13)
    assert os.readlink(out / "latest") == "20260101T020000Z-13"
    proof = json.loads((out / "latest" / "consistency.json").read_text())
    old = json.loads((first.folder / "snapshot.json").read_text())["log"]
    new = json.loads((second.folder / "snapshot.json").read_text())["log"]
    # a consistency proof names size and root (the snapshots' log also names its origin)
    assert proof["old"] == {"size": old["size"], "root": old["root"]}
    assert proof["new"] == {"size": new["size"], "root": new["root"]}
    verify_consistency(11, 13, [bytes.fromhex(h) for h in proof["proof"]],
                       bytes.fromhex(old["root"]), bytes.fromhex(new["root"]))
    assert sorted(p.name for p in out.iterdir()) == [
        "20260101T000000Z-11", "20260101T020000Z-13", "latest", "log"]  # no staging left
    ledger.close()


def test_latest_is_replaced_by_rename(tmp_path: Path) -> None:
    """The link is swapped whole: its inode changes, no temporary name is left behind."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    point_latest(tmp_path, "a")
    before = os.lstat(tmp_path / "latest").st_ino
    point_latest(tmp_path, "b")
    assert os.readlink(tmp_path / "latest") == "b"
    assert os.lstat(tmp_path / "latest").st_ino != before
    assert sorted(os.listdir(tmp_path)) == ["a", "b", "latest"]


def test_the_site_is_rebuilt_from_the_log_and_swapped_whole(tmp_path: Path) -> None:
    """After each run the site shows every snapshot so far (11, then 11 and 13); `site` is a
    symlink moved by rename, and the previous build is removed."""
    env = cli_crash_fund(tmp_path)
    ledger = Ledger(env["BACKSTOP_DB"])
    signer = generate_signer("example.com/backstop")
    out = tmp_path / "public"
    publish_dated(ledger, "main", signer, out, "2026-01-01T00:00:00Z")
    first = rebuild_site(out)
    assert first == out / "site" and (first / "index.html").is_file()
    assert sorted(p.name for p in (first / "snapshots").iterdir()) == ["11"]
    old_build = os.readlink(first)
    import_file(ledger, "main", write_jsonl(tmp_path / "more.jsonl",
                                            [fee("f2", "1"), fee("f3", "2")]))
    publish_dated(ledger, "main", signer, out, "2026-01-01T02:00:00Z")
    rebuild_site(out)
    assert sorted(p.name for p in (out / "site" / "snapshots").iterdir()) == ["11", "13"]
    assert os.readlink(out / "site") != old_build and not (out / old_build).exists()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [
        os.readlink(out / "site")]
    ledger.close()


def test_a_run_removes_what_killed_runs_left(tmp_path: Path) -> None:
    """Leftovers of a run killed with SIGKILL (a dead pid in their names: a staged dated
    folder, a staged site, a new `latest` link) are removed by the next run; this process's
    own staging, and names outside the scheme, are kept."""
    finished = subprocess.Popen([sys.executable, "-c", "pass"])  # its pid: one now dead
    assert finished.wait() == 0
    pid, own = finished.pid, os.getpid()
    env = cli_crash_fund(tmp_path)
    ledger = Ledger(env["BACKSTOP_DB"])
    out = tmp_path / "public"
    out.mkdir()
    stale = [f".20250101T000000Z-11.{pid}.abc123.partial", f".site.{pid}.def456.partial"]
    for name in stale:
        (out / name).mkdir()
        (out / name / "snapshot.json").write_text("half")
    (out / f".latest.{pid}.new").symlink_to("20250101T000000Z-11")
    kept = [f".20250101T000000Z-11.{own}.ghi789.partial", ".site-unrelated"]
    for name in kept:
        (out / name).mkdir()
    publish_dated(ledger, "main", generate_signer("example.com/backstop"), out,
                  "2026-01-01T00:00:00Z")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*kept, "20260101T000000Z-11", "latest", "log"])
    ledger.close()
