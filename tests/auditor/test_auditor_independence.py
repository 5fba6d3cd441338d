"""The auditor must not share the operator's code: no module of auditor/ imports ledger."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

AUDITOR = Path(__file__).resolve().parents[2] / "auditor"


def _is_ledger(name: str | None) -> bool:
    return name is not None and (name == "ledger" or name.startswith("ledger."))


def test_no_auditor_module_imports_ledger() -> None:
    modules = sorted(AUDITOR.rglob("*.py"))
    assert len(modules) >= 8
    offenders = []
    for path in modules:
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                offenders += [(path.name, node.lineno) for a in node.names if _is_ledger(a.name)]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and _is_ledger(node.module):
                offenders.append((path.name, node.lineno))
            elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", ""))
                  in ("import_module", "__import__") and node.args
                  and isinstance(node.args[0], ast.Constant) and _is_ledger(str(node.args[0].value))):
                offenders.append((path.name, node.lineno))
    assert offenders == []


def test_importing_the_auditor_cli_loads_no_ledger_module() -> None:
    code = ("import auditor.cli, auditor.report, auditor.replay, sys; "
            "bad = [m for m in sys.modules if m == 'ledger' or m.startswith('ledger.')]; "
            "assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
