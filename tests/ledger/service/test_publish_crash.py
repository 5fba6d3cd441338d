"""Issue 21: publishers killed with SIGKILL (real subprocesses, killed at a hook point) leave a
state the next `snapshot publish` must repair and clean, on SQLite and PostgreSQL.

- Killed after the snapshot's commit, before ROOT/checkpoint is replaced: the snapshot is
  recorded and ROOT/snapshots/N/ is in place, but ROOT/checkpoint still names the previous
  size (or is absent after a first publish). Every later publish refused ("already
  published", or "holds something other than ... tiled log"): now it repairs.
- Killed while a tile is written (`.NAME.PID.new`) or a snapshot folder is staged
  (`snapshots/.N.PID.*.partial`, or `.OUT.PID.*.partial` beside a one-directory publication):
  those stayed, and were served. Now the next publish removes them, and only them: a live
  process's files stay.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from auditor.cli import main as audit
from auditor.verify.keys import parse_checkpoint
from ledger.service.signing import key_file
from tests.factories import capital, fee, write_jsonl
from tests.processes import init_fund, killed_at, run
from tests.publishing import SIGNER, audit_directory

VKEY = SIGNER.verifier_key()

# Where each publisher dies (tests.processes.killed_at).
BEFORE_CHECKPOINT = """
from ledger.service import tilepub
_write = tilepub.write_file
def write_file(path, *args, **kwargs):
    if path.name == "checkpoint":  # ROOT/checkpoint: the last write, after the commit
        die()
    return _write(path, *args, **kwargs)
tilepub.write_file = write_file
"""
BEFORE_TILE_RENAME = """
_replace = os.replace
def replace(source, target, *args, **kwargs):
    if "/tile/" in str(target):  # a tile written beside its name, not yet renamed
        die()
    return _replace(source, target, *args, **kwargs)
os.replace = replace
"""
TILES_STAGED = "from ledger.service import tilepub\ntilepub.sync_tree = lambda root: die()\n"
DIRECTORY_STAGED = "from ledger.service import publish\npublish.sync_tree = lambda root: die()\n"


@pytest.fixture
def key(db_url: str, tmp_path: Path) -> Path:
    """A fund in `db_url` (2 events), and the operator's key file."""
    init_fund(db_url, tmp_path)
    path = tmp_path / "op.key"
    path.write_bytes(key_file(SIGNER))
    return path


def grow(url: str, folder: Path, prefix: str, count: int) -> None:
    facts = [capital(f"{prefix}c", "10.00")] + [fee(f"{prefix}{i}", "0.01", f"acct-{i % 13}")
                                                for i in range(count - 1)]
    result = run(url, "import", str(write_jsonl(folder / f"{prefix}.jsonl", facts)))
    assert result.returncode == 0, result.stderr


def tiles_args(key: Path, root: Path) -> list[str]:
    return ["snapshot", "publish", "--key", str(key), "--out", str(root), "--layout", "tiles"]


def recorded(url: str) -> list[int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(
                "SELECT log_size FROM backstop_published ORDER BY log_size")).scalars())
    finally:
        engine.dispose()


def checkpoint_size(root: Path) -> int | None:
    if not (root / "checkpoint").exists():
        return None
    note = (root / "checkpoint").read_text()
    return parse_checkpoint(note.split("\n\n", 1)[0] + "\n")[1]


def replay(root: Path) -> tuple[int, int]:
    """`backstop-audit replay ROOT --key K`: exit code and the events it replayed."""
    result = CliRunner().invoke(audit, ["replay", str(root), "--key", VKEY, "--json"])
    return result.exit_code, json.loads(result.output).get("events")


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*"))


@pytest.mark.parametrize("first", [True, False], ids=["first-publish", "later-publish"])
def test_a_publisher_killed_before_the_checkpoint_is_repaired_by_the_next(
        db_url: str, tmp_path: Path, key: Path, first: bool) -> None:
    root = tmp_path / "log"
    grow(db_url, tmp_path, "f", 298)  # log size 300
    if not first:
        assert run(db_url, *tiles_args(key, root)).returncode == 0
        grow(db_url, tmp_path, "g", 300)  # 600
    size, behind = (300, 0) if first else (600, 300)
    killed_at(db_url, BEFORE_CHECKPOINT, *tiles_args(key, root))
    # What the crash leaves: recorded, its folder in place, ROOT/checkpoint the previous one.
    assert recorded(db_url) == ([300] if first else [300, 600])
    assert (root / "snapshots" / str(size) / "snapshot.json").is_file()
    assert checkpoint_size(root) == (None if first else 300)

    result = run(db_url, *tiles_args(key, root))
    assert (result.returncode, result.stderr) == (0, "")  # before: 2, "already published"
    assert result.stdout == (
        f"repaired {root}: its checkpoint was at log size {behind}, behind the snapshot "
        f"recorded at {size}; re-wrote that snapshot's tiles and checkpoint\n"
        f"nothing new to publish: the log has {size} events\n")
    assert (root / "checkpoint").read_bytes() == \
        (root / "snapshots" / str(size) / "checkpoint").read_bytes()
    assert replay(root) == (0, size)
    assert leftovers(root) == []

    grow(db_url, tmp_path, "h", 10)  # and publishing goes on
    result = run(db_url, *tiles_args(key, root))
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(f" to {root}/snapshots/{size + 10}\n")
    assert replay(root) == (0, size + 10)
    assert recorded(db_url)[-2:] == [size, size + 10]


@pytest.fixture
def live_pid() -> Iterator[int]:
    """A process that is alive for the test (it waits for its stdin to close)."""
    process = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                               stdin=subprocess.PIPE)
    yield process.pid
    assert process.stdin is not None
    process.stdin.close()
    process.wait(timeout=30)


def test_what_killed_tile_publishers_left_is_removed_and_a_live_ones_kept(
        db_url: str, tmp_path: Path, key: Path, live_pid: int) -> None:
    root = tmp_path / "log"
    grow(db_url, tmp_path, "f", 298)
    assert run(db_url, *tiles_args(key, root)).returncode == 0
    grow(db_url, tmp_path, "g", 300)  # 600: tile/0/001 and 002.p/88 and their bundles are new
    tile_writer = killed_at(db_url, BEFORE_TILE_RENAME, *tiles_args(key, root))
    stager = killed_at(db_url, TILES_STAGED, *tiles_args(key, root))
    # A live publisher's (the same naming scheme, a process that is alive): never touched.
    live = [f"snapshots/.600.{live_pid}.abcd1234.partial", f"tile/0/.002.{live_pid}.new"]
    (root / live[0]).mkdir()
    (root / live[1]).write_bytes(b"being written")
    dead = [f"snapshots/{name}" for name in leftovers(root / "snapshots")
            if f".{stager}." in name]
    assert leftovers(root) == sorted([f"tile/entries/.001.{tile_writer}.new", *dead, *live])
    assert len(dead) == 1 and dead[0].startswith(f"snapshots/.600.{stager}.")
    assert dead[0].endswith(".partial") and checkpoint_size(root) == 300

    result = run(db_url, *tiles_args(key, root))
    assert result.returncode == 0, result.stderr
    assert leftovers(root) == sorted(live)  # before: the dead ones stayed, and were served
    assert replay(root) == (0, 600)


def test_a_killed_directory_publishers_staging_folder_is_removed(db_url: str, tmp_path: Path,
                                                                  key: Path,
                                                                  live_pid: int) -> None:
    grow(db_url, tmp_path, "f", 10)
    out = tmp_path / "pub"
    args = ["snapshot", "publish", "--key", str(key), "--out", str(out)]
    stager = killed_at(db_url, DIRECTORY_STAGED, *args)
    staged = sorted(p.name for p in tmp_path.glob(".pub.*"))
    assert len(staged) == 1 and staged[0].startswith(f".pub.{stager}.")
    live = tmp_path / f".pub.{live_pid}.abcd1234.partial"
    live.mkdir()
    others = tmp_path / f".other.{stager}.abcd1234.partial"  # staged for another folder
    others.mkdir()

    result = run(db_url, *args)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.glob(".*.partial")) == sorted([live.name,
                                                                         others.name])
    assert audit_directory(out, VKEY) > 3


def test_the_temporary_names_a_publisher_owns() -> None:
    from ledger.service.leftovers import owner

    assert owner(".600.4242.abcd1234.partial") == ("600", 4242, "partial")
    assert owner(".my.pub.4242.12345678.old") == ("my.pub", 4242, "old")
    assert owner(".002.4242.new") == ("002", 4242, "new")
    assert owner(".check.point.4242.new") == ("check.point", 4242, "new")
    # Not of the scheme (an older version's random names, the site's, anyone's): never removed.
    for name in (".600.abcd1234.partial", ".pub.x1.abcd1234.partial", ".site.4242.old",
                 "000.4242.new", ".4242.new", ".a.0.new", ".a.4242.tmp"):
        assert owner(name) is None, name
