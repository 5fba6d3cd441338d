"""The integer liquidation path records the same bytes as the Fraction path it replaced:
fixtures/crash-small.jsonl and a simulated crash (pro-rata and ADL shortfalls), imported once
through the ledger's integer waterfall and once through the Fraction reference
(`waterfall.settle`, swapped in for this test), export to byte-identical files (same SHA-256);
and the auditor's replay, on its integer rules and on its Fraction rules, gives the same
result (no discrepancy) on both."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditor import int_rules, rules
from auditor.replay import replay
from ledger.cli.main import main as operator
from ledger.domain import fund as fund_module
from ledger.domain.policy import Policy
from ledger.domain.waterfall import LiquidationFact, Settlement, settle

ROOT = Path(__file__).resolve().parents[2]
TIME = "2020-03-12T00:00:00Z"


def reference(record: Mapping[str, Any], policy: Policy, balance: int, decimals: int,
              prices: Sequence[Fraction] = (), *, asset: str) -> Settlement:
    """The Fraction path, as fund.py called it before the integer path."""
    return settle(LiquidationFact.from_record(dict(record), decimals), policy, balance,
                  decimals, prices, asset=asset)


def export_sha(tmp: Path, config: Path, facts: Path, name: str) -> tuple[str, Path]:
    url = f"sqlite:///{tmp / name}.sqlite"
    runner = CliRunner()
    for args in (["init", str(config), "--time", TIME], ["import", str(facts)],
                 ["export", str(tmp / f"{name}.jsonl")]):
        result = runner.invoke(operator, [*args, "--db", url], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    out = tmp / f"{name}.jsonl"
    return hashlib.sha256(out.read_bytes()).hexdigest(), out


def simulated(tmp: Path, method: str) -> tuple[Path, Path]:
    facts, config = tmp / f"sim-{method}.jsonl", tmp / f"sim-{method}.fund.json"
    result = CliRunner().invoke(operator, ["simulate", "--traders", "300", "--steps", "60", "--initial-fund", "0.01",
                                           "--out", str(facts), "--fund-config", str(config)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    doc = json.loads(config.read_text())
    doc["policy"]["socialization"] = method
    config.write_text(json.dumps(doc))
    return config, facts


@pytest.mark.parametrize("case", ["crash-small", "pro_rata_profit", "adl"])
def test_the_integer_path_exports_the_fraction_paths_bytes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    if case == "crash-small":
        config, facts = ROOT / "fixtures/crash-small.fund.json", ROOT / "fixtures/crash-small.jsonl"
    else:
        config, facts = simulated(tmp_path, case)
    new_sha, new = export_sha(tmp_path, config, facts, "integer")
    with monkeypatch.context() as patch:
        patch.setattr(fund_module, "settle_record", reference)
        old_sha, _ = export_sha(tmp_path, config, facts, "fraction")
    assert new_sha == old_sha
    lines = new.read_text().splitlines()
    assert any('"liquidation_settled"' in line for line in lines)
    if case != "crash-small":
        assert any('"clawback_charged"' in line for line in lines)
    raw = new.read_bytes().splitlines()
    ours = replay(raw)  # raises Discrepancy on any difference from the rules
    with monkeypatch.context() as patch:
        patch.setattr(int_rules, "settle", rules.settle)
        theirs = replay(raw)
    assert (ours.balances, ours.accounts, ours.log_root) == (theirs.balances, theirs.accounts,
                                                            theirs.log_root)
    assert ours.liquidations == sum('"liquidation_settled"' in line for line in lines)
