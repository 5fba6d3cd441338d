"""A clone alone is enough: no test or document points outside the repository, the files
the README names exist, and every Makefile target the README names has a recipe."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_nothing_points_outside_the_repository() -> None:
    texts = [ROOT / "README.md", ROOT / "docs" / "DESIGN.md", *ROOT.glob("tests/**/*.py"),
             *ROOT.glob("bench/*.py")]
    offenders = [p.name for p in texts if "../shared" in p.read_text("utf-8")
                 and p.name != Path(__file__).name]
    assert offenders == []


def test_paths_the_readme_names_exist() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    named = set(re.findall(r"`((?:docs|schemas|tests|ledger|auditor|bench)/[\w./-]+)`", readme))
    assert "docs/DESIGN.md" in named
    assert sorted(path for path in named if not (ROOT / path).exists()) == []


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_fast_runs_the_suite_without_slow_tests() -> None:
    # Not as a sub-make of `make test`: its flags would leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    dry = subprocess.run(["make", "-n", "--no-print-directory", "test-fast"], cwd=ROOT,
                         env=env, capture_output=True, text=True, check=True)
    assert dry.stdout.splitlines()[-1] == '.venv/bin/python -m pytest -q -m "not slow"'
