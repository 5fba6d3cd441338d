"""The package layout holds: every CLI module imports on its own, and stored snapshots that
name the aggregate by its older class path resolve; mypy is strict on both
packages; no test module imports another (shared helpers live in tests/ helper modules). The
import contract (who may import whom, no cycle at any depth) is tests/test_layers.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts)
                 for package in ("ledger", "auditor") for p in (ROOT / package).rglob("*.py")
                 if p.name != "__main__.py")


def test_the_layout_has_the_layer_folders() -> None:
    assert {p.name for p in (ROOT / "ledger").iterdir() if (p / "__init__.py").exists()} \
        >= {"domain", "store", "service", "cli", "sim"}


@pytest.mark.parametrize("module", [m for m in MODULES if m.startswith("ledger.cli")])
def test_each_cli_module_imports_on_its_own(module: str) -> None:
    # In a fresh interpreter: an import that works only after another module's fails here.
    result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                            text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_the_old_aggregate_topic_resolves_to_the_fund() -> None:
    from eventsourcing.utils import resolve_topic

    from ledger.domain.fund import Fund
    from ledger.store import mapper  # registers the topic

    assert mapper is not None
    assert resolve_topic("ledger.domain:Fund") is Fund


def test_every_package_folder_is_packaged_with_its_py_typed() -> None:
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]
    folders = {".".join(p.parent.relative_to(ROOT).parts)
               for package in ("ledger", "auditor") for p in (ROOT / package).rglob("__init__.py")}
    assert sorted(folders | {"auditor._schemas"}) == sorted(setuptools["packages"])
    for package in ("ledger", "auditor"):
        assert (ROOT / package / "py.typed").exists()
        assert "py.typed" in setuptools["package-data"][package]


def test_the_public_api_names_resolve() -> None:
    import auditor
    import ledger
    from ledger.service.application import Ledger

    assert ledger.Ledger is Ledger
    assert sorted(name for name in ledger.__all__ if callable(getattr(ledger, name))) \
        == sorted(ledger.__all__)
    assert sorted(name for name in auditor.__all__ if callable(getattr(auditor, name))) \
        == sorted(auditor.__all__)


def test_no_module_is_over_400_lines_without_a_reason_at_its_top() -> None:
    long = [f"{package}/{p.relative_to(ROOT / package)}"
            for package in ("ledger", "auditor") for p in (ROOT / package).rglob("*.py")
            if len(p.read_text("utf-8").splitlines()) > 400
            and "Over 400 lines" not in p.read_text("utf-8")[:1500]]
    assert long == []


def test_mypy_is_strict_on_both_packages() -> None:
    # `make lint` (run by .ci/run) runs mypy with these settings: strict for the whole of
    # ledger/ and auditor/, and no per-module section may switch a strict check back off.
    import tomllib

    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["mypy"]
    assert mypy["strict"] is True
    assert sorted(mypy["files"]) == ["auditor", "ledger"]
    for override in mypy.get("overrides", []):
        modules = override["module"]
        modules = modules if isinstance(modules, list) else [modules]
        assert not any(m.split(".")[0] in ("ledger", "auditor") for m in modules), override
    lint = (ROOT / "Makefile").read_text("utf-8").split("\nlint:")[1].split("\n\n")[0]
    assert "$(BIN)/mypy" in lint
    assert "make lint" in (ROOT / ".ci" / "run").read_text("utf-8")



def imports_of_test_modules(source: str, where: str) -> list[str]:
    """The imports in `source` of a test module (`test_*`, named absolutely or relatively):
    what one test module needs of another belongs in a helper module of tests/."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source, filename=where)):
        names: list[tuple[int, str]] = []
        if isinstance(node, ast.Import):
            names = [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [(node.level, f"{node.module or ''}.{alias.name}".strip("."))
                     for alias in node.names]
        for level, name in names:
            parts = name.split(".")
            ours = level > 0 or parts[0] == "tests" or parts[0].startswith("test_")
            if ours and any(part.startswith("test_") for part in parts):
                found.append(f"{where}:{node.lineno}: imports {'.' * level}{name}")
    return found


def test_no_test_module_imports_another() -> None:
    found = [hit for path in sorted((ROOT / "tests").rglob("*.py"))
             for hit in imports_of_test_modules(path.read_text("utf-8"),
                                                str(path.relative_to(ROOT)))]
    assert found == []


def test_an_import_of_a_test_module_is_found_in_every_spelling() -> None:
    source = ("from tests.e2e.test_tamper import SEED\n"
              "from tests.ledger.service import test_tilepub\n"
              "def f():\n    from .test_follow import Running\n"
              "import tests.auditor.test_audit_cli\n"
              "from . import test_publish\n"
              "from tests.publishing import SIGNER\n"
              "from pytest import approx\n")
    assert imports_of_test_modules(source, "t.py") == [
        "t.py:1: imports tests.e2e.test_tamper.SEED",
        "t.py:2: imports tests.ledger.service.test_tilepub",
        "t.py:5: imports tests.auditor.test_audit_cli",
        "t.py:6: imports .test_publish",
        "t.py:4: imports .test_follow.Running",
    ]


def test_layout_md_is_a_map_of_today() -> None:
    # The map says where things are, not where they were: history belongs in git log.
    text = (ROOT / "docs" / "LAYOUT.md").read_text("utf-8").lower()
    for phrase in ("were called", "was called", "came from", "after the move", "before the move",
                   "renamed from", "first sketch", "moved from", "(was "):
        assert phrase not in text, phrase
