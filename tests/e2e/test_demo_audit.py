"""The demo counts an audit as verified only when the auditor ran, exited 0 and said VERIFIED."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from ledger.sim import demo
from tests.audit_world import build_world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_world(tmp_path_factory.mktemp("audit-world"))


def fake_auditor(monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    monkeypatch.setattr(demo, "_auditor_command", lambda: [sys.executable, "-c", code])


def test_empty_output_with_exit_0_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_auditor(monkeypatch, "pass")  # what `python -m auditor.cli` did without a __main__
    code, reason = demo._audit(["replay", "x"])
    assert code == 1 and reason == "no verdict from the auditor (no output)"


def test_exit_0_without_verified_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_auditor(monkeypatch, "print('{\"verified\": false, \"reason\": \"replay: odd\"}')")
    assert demo._audit(["replay", "x"]) == (1, "replay: odd")
    fake_auditor(monkeypatch, "print('[]')")
    assert demo._audit(["replay", "x"]) == (1, "no verdict from the auditor ([])")


def test_non_zero_exit_is_a_failure_even_with_verified(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_auditor(monkeypatch, "import sys; print('{\"verified\": true}'); sys.exit(3)")
    assert demo._audit(["replay", "x"])[0] == 3


@pytest.mark.parametrize("module", ["auditor", "auditor.cli"])
def test_the_module_fallbacks_give_real_verdicts(module: str, world: dict[str, Any],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "_auditor_command", lambda: [sys.executable, "-m", module])
    d: Path = world["base"] / "a"
    args = ["replay", str(d / "events.jsonl"), "--snapshot", str(d / "snapshot.json"),
            "--key", world["op"]]
    assert demo._audit(args) == (0, "")
    wrong = world["witness"]
    code, reason = demo._audit([*args[:-1], wrong])
    assert code == 1 and reason == "snapshot signatures: 0 known key(s) verified, 1 required"


def test_fallback_is_python_m_auditor(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))  # no backstop-audit beside
    assert demo._auditor_command() == [str(tmp_path / "python"), "-m", "auditor"]
