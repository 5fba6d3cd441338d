"""The main job end to end on a small seeded crash: simulate, import, publish hourly, audit
with the auditor CLI in separate processes, and check the money against an independent
calculation from the simulator's own facts."""

from __future__ import annotations

import json
import math
import struct
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.formats.wire import format_decimal
from ledger.cli.main import main
from ledger.sim.demo import report, run_demo
from ledger.sim.simulate import SimulationConfig


def expected_final_balance(facts: Path) -> tuple[int, int, int]:
    """(final balance, fee inflows, payouts) in cents, by the contract's rules for this
    demo's policy (fee cap 0.5%, share 1, no reserve, no cap), written out independently."""
    balance = inflows = payouts = 0
    for line in facts.read_text().splitlines():
        fact = json.loads(line)
        if fact["type"] == "capital":
            balance += int(Fraction(fact["amount"]) * 100)
        elif fact["type"] == "fee":
            cents = int(Fraction(fact["amount"]) * 100)
            balance, inflows = balance + cents, inflows + cents
        elif fact["type"] == "liquidation":
            size, entry, fill = (Fraction(fact[k]) for k in ("size", "entry_price", "fill_price"))
            move = fill - entry if fact["side"] == "long" else entry - fill
            delta = Fraction(fact["collateral"]) + move * size
            if delta > 0:
                cents = math.floor(min(delta, Fraction(5, 1000) * fill * size) * 100)
                balance, inflows = balance + cents, inflows + cents
            elif delta < 0:
                paid = min(math.ceil(-delta * 100), balance)
                balance, payouts = balance - paid, payouts + paid
    return balance, inflows, payouts


@pytest.mark.slow
def test_small_crash_demo_is_audited_and_adds_up(tmp_path: Path) -> None:
    config = SimulationConfig(seed=11, traders=300, steps=72, initial_fund="3000.00")
    result = run_demo(tmp_path / "demo", config, say=lambda _: None)
    failures = [(what, reason) for what, code, reason in result.audits if code != 0]
    assert failures == []
    assert len(result.published) >= 6 and len(result.audits) == 2 * len(result.published) - 1
    balance, inflows, payouts = expected_final_balance(tmp_path / "demo" / "facts.jsonl")
    assert result.final_balance == balance
    assert result.final_balance == result.initial_balance + inflows - payouts
    assert result.covered == payouts
    assert result.socialized > 0, "the crash must run the fund dry"
    assert result.socialized == result.clawbacks  # nothing left unresolved in this crash
    # proof of reserves: every snapshot checked; the last one's holdings are 3/4 of the reserve
    # on chain + the rest + a 1,000.00 USDT buffer at the custodian: ratio (R + 1000.00) / R
    assert [code for _, code, _ in result.reserve_audits] == [0] * len(result.published)
    # ... with each block's time in the balances file, so the block age is checked too
    entries = json.loads((tmp_path / "demo" / "reserves" / "balances.json").read_text())
    assert len(entries["balances"]) == len(result.published)
    assert all(entry["block_time"] == entry_time for entry, entry_time in zip(
        entries["balances"], [json.loads((p / "snapshot.json").read_text())["time"]
                              for p in result.published], strict=True))
    assert result.reserve_ratios == {"USDT": format_decimal(
        Fraction(result.final_balance + 100_000, result.final_balance), 6)}
    png = result.chart.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert width > 400 and height > 300
    # The transparency site, built from every snapshot, and the command that serves it.
    assert result.site is not None
    site = (result.site / "data.js").read_text()
    assert site.count('"file":"snapshots/') == len(result.published)
    assert f"python -m http.server -d {result.site}" in report(result)


def test_demo_without_matplotlib_stops_before_any_work(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    workdir = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--workdir", str(workdir)],
                                catch_exceptions=False)
    assert result.exit_code == 2
    assert result.output == ("Error: backstop demo draws its chart with matplotlib, which is "
                             "not installed: pip install 'backstop[chart]'\n")
    assert not workdir.exists()
