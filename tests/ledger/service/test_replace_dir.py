"""outputs.replace_dir: a directory output replaced all or nothing, never through a symlink."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ledger.service.outputs import OutputExists, replace_dir


def fill_with(text: str):  # type: ignore[no-untyped-def]
    def fill(stage: Path) -> None:
        (stage / "index.html").write_text(text)
    return fill


def test_a_failing_fill_leaves_the_old_folder_and_nothing_beside_it(tmp_path: Path) -> None:
    out = tmp_path / "site"
    replace_dir(out, fill_with("old"), force=False)

    def broken(stage: Path) -> None:
        (stage / "index.html").write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        replace_dir(out, broken, force=True)
    assert (out / "index.html").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_taken_needs_force_and_force_replaces(tmp_path: Path) -> None:
    out = tmp_path / "site"
    replace_dir(out, fill_with("one"), force=False)
    with pytest.raises(OutputExists, match="is not empty; pass --force"):
        replace_dir(out, fill_with("two"), force=False)
    assert (out / "index.html").read_text() == "one"
    replace_dir(out, fill_with("two"), force=True)
    assert [p.name for p in out.iterdir()] == ["index.html"]
    assert (out / "index.html").read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_a_symlink_is_replaced_itself(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "index.html").write_text("theirs")
    link = tmp_path / "site"
    link.symlink_to(target)
    with pytest.raises(OutputExists, match="already exists"):
        replace_dir(link, fill_with("mine"), force=False)
    replace_dir(link, fill_with("mine"), force=True)
    assert not link.is_symlink() and (link / "index.html").read_text() == "mine"
    assert (target / "index.html").read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site", "target"]


def test_this_process_s_own_staging_is_kept(tmp_path: Path) -> None:
    """Another thread of this process may be building: its folders are not stale."""
    mine = tmp_path / f".site.{os.getpid()}.other.partial"
    mine.mkdir()
    replace_dir(tmp_path / "site", fill_with("x"), force=False)
    assert mine.is_dir()
