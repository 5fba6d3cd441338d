"""Shared builders for the risk tests: a fund in a fresh SQLite database, position files,
three fund policies."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from ledger.cli.main import main
from tests.factories import capital, fund_config

# Three fund policies that exercise the engine's arithmetic (the exactness and property tests).
POLICIES: dict[str, dict[str, Any]] = {
    "fixed, reserve and cap": {
        "version": 1, "minimum_reserve": {"USDT": "1000.00"},
        "per_event_cap": {"USDT": "5000.00"}, "fee_cap_rate": "0.005",
        "fund_share": {"fixed": "0.5"}, "socialization": "pro_rata_profit"},
    "volatility curve": {
        "version": 1, "minimum_reserve": {"USDT": "0.00"}, "fee_cap_rate": "0.01",
        "fund_share": {"volatility": {"window": 12,
                                      "breakpoints": [["0.001", "0.2"], ["0.01", "0.9"]]}},
        "socialization": "pro_rata_profit"},
    "long fee rate": {  # d = 10^13: the fee base leaves int64, Python integers take over
        "version": 1, "minimum_reserve": {"USDT": "0.00"}, "fee_cap_rate": "0.0012345678901",
        "fund_share": {"fixed": "0.333333333333"}, "socialization": "pro_rata_profit"},
}


def make_fund(tmp_path: Path, balance: str, **policy: Any) -> str:
    """A fund `main` (USDT, BTC-PERP) holding `balance`; returns its database URL."""
    url = f"sqlite:///{tmp_path / 'risk.sqlite'}"
    config = tmp_path / "fund.json"
    config.write_text(json.dumps(fund_config(**policy)))
    runner = CliRunner()
    assert runner.invoke(main, ["init", str(config), "--db", url]).exit_code == 0
    facts = tmp_path / "capital.jsonl"
    facts.write_text(json.dumps(capital("cap-1", balance)) + "\n")
    assert runner.invoke(main, ["import", str(facts), "--db", url]).exit_code == 0
    return url


def write_lines(path: Path, records: Iterable[Any]) -> Path:
    """One JSON document (or raw string) per line."""
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n"
                            for r in records))
    return path


def position(**fields: Any) -> dict[str, Any]:
    """A 10x long of 1 BTC at 10000 (the hand-computed case), with overrides."""
    record = {"account": "alice", "market": "BTC-PERP", "side": "long", "size": "1",
              "entry_price": "10000", "collateral": "1000.00",
              "maintenance_margin_rate": "0.005", "mark_price": "10000"}
    record.update(fields)
    return {k: v for k, v in record.items() if v is not None}


def risk(url: str, *args: str) -> Result:
    """Run `backstop risk` on the fund at `url`."""
    return CliRunner().invoke(main, ["risk", "--db", url, *args])
