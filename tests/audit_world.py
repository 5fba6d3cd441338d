"""The audit tests' world, built once per session through the `backstop` CLI: two published
snapshots of fixtures/crash-small.jsonl, a rewritten history signed by the same key, an
event proof and a consistency proof (tests/auditor/test_audit_cli.py and the e2e tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
FUND = ROOT / "fixtures" / "crash-small.fund.json"
FACTS = ROOT / "fixtures" / "crash-small.jsonl"
T0 = "2020-03-12T00:00:00Z"
_WORLD: dict[str, Any] = {}


def backstop(*args: str) -> str:
    """Run the operator CLI in-process; fail the test on a non-zero exit."""
    from ledger.cli.main import main as operator

    result = CliRunner().invoke(operator, list(args), catch_exceptions=False)
    assert result.exit_code == 0, (args, result.output)
    return result.output


def build_world(base: Path) -> dict[str, Any]:
    """Built once per session (shared by the audit test modules):

    a/  first snapshot (first 300 facts), b/ second snapshot (all facts; previous -> a),
    c/  a rewritten history in a fresh db (facts 0-199 then 300-451), same operator key,
    op.key / wit.key signing keys, event and consistency proofs.
    """
    if _WORLD:
        return _WORLD
    lines = FACTS.read_text().splitlines(keepends=True)
    first, rewritten = base / "first.jsonl", base / "rewritten.jsonl"
    first.write_text("".join(lines[:300]))
    rewritten.write_text("".join(lines[:200] + lines[300:]))
    db1, db2 = f"sqlite:///{base / 'one.sqlite'}", f"sqlite:///{base / 'two.sqlite'}"
    op_vkey = backstop("keygen", "op", "--out", str(base / "op.key")).strip().splitlines()[-1]
    wit_vkey = backstop("keygen", "witness", "--out", str(base / "wit.key")).strip().splitlines()[-1]
    backstop("init", str(FUND), "--db", db1, "--time", T0)
    backstop("import", str(first), "--db", db1)
    backstop("snapshot", "publish", "--key", str(base / "op.key"), "--out", str(base / "a"),
             "--db", db1, "--time", "2020-03-13T00:00:00Z")
    backstop("import", str(FACTS), "--db", db1)
    backstop("snapshot", "publish", "--key", str(base / "op.key"), "--out", str(base / "b"),
             "--db", db1, "--time", "2020-03-14T00:00:00Z")
    (base / "event-7.json").write_text(backstop("prove", "event", "7", "--db", db1))
    backstop("init", str(FUND), "--db", db2, "--time", T0)
    backstop("import", str(rewritten), "--db", db2)
    backstop("snapshot", "publish", "--key", str(base / "op.key"), "--out", str(base / "c"),
             "--db", db2, "--time", "2020-03-14T00:00:00Z")
    size_a = json.loads((base / "a" / "snapshot.json").read_text())["log"]["size"]
    size_c = json.loads((base / "c" / "snapshot.json").read_text())["log"]["size"]
    (base / "rewrite-proof.json").write_text(
        backstop("prove", "consistency", str(size_a), str(size_c), "--db", db2))
    _WORLD.update(base=base, op=op_vkey, witness=wit_vkey)
    return _WORLD
