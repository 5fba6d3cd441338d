"""A format v2 fund recorded through the CLI, for the e2e v2 suites (tests/e2e/test_v2_log.py,
test_v2_snapshot.py): the worked logs E1 and T1 (schemas/README.md "Format v2 (pools)")
initialised and imported into a SQLite file of the test's own, exported, published; and the
auditor's JSON verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from auditor.cli import main as audit
from ledger.cli.main import main as backstop
from tests.factories import write_jsonl
from tests.v2fixture import T0, example_config, example_facts, t1_config, t1_facts


def e1(tmp: Path) -> Fund:
    return Fund(tmp, example_config(), example_facts())


def t1(tmp: Path) -> Fund:
    return Fund(tmp, t1_config(), t1_facts())


class Fund:
    """A v2 fund recorded from a config and its facts, in a SQLite file of the test's own."""

    def __init__(self, tmp: Path, config: dict[str, Any], facts: list[dict[str, Any]]) -> None:
        self.tmp = tmp
        self.env = {"BACKSTOP_DB": f"sqlite:///{tmp / 'fund.sqlite'}"}
        (tmp / "fund.json").write_text(json.dumps(config))
        self.run("init", str(tmp / "fund.json"), "--time", T0)
        self.run("import", str(write_jsonl(tmp / "facts.jsonl", facts)))

    def run(self, *args: str, code: int = 0) -> str:
        result = CliRunner().invoke(backstop, list(args), env=self.env, catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    def events(self) -> list[dict[str, Any]]:
        out = self.tmp / "events.jsonl"
        self.run("export", str(out), "--force")
        return [json.loads(line) for line in out.read_text().splitlines()]

    def publish(self) -> tuple[Path, str]:
        """A signed one-directory publication and the verifier key."""
        key = self.tmp / "op.key"
        vkey = self.run("keygen", "ops.example/v2", "--out", str(key)).strip().splitlines()[-1]
        out = self.tmp / "public"
        self.run("snapshot", "publish", "--key", str(key), "--out", str(out))
        return out, vkey


def audit_json(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(audit, [*args, "--json"])
    return result.exit_code, json.loads(result.output)


