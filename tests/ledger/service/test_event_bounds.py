"""Format v1.1's bounds at the door of `backstop import` and `backstop init`, on SQLite and
PostgreSQL: a fact whose event line would pass 65,535 bytes (a policy of thousands of
breakpoints), more than 100,000 counterparties, a decimal of more than 64 characters, a
fund of more than 64 assets or 512 markets: one line naming the record and field, exit 2,
nothing written. A liquidation of 650 counterparties is recorded, split, and re-imported as
a no-op; the same id with one counterparty changed is a conflict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.service.application import Ledger
from tests.factories import TIME, capital, fund_config, liquidation, policy, write_jsonl
from tests.importing import database_rows, fund_db, refused, run

__all__ = ["fund_db"]  # the fixture, from tests.importing


def test_a_policy_whose_event_line_would_be_too_long_is_refused(fund_db: str,
                                                                tmp_path: Path) -> None:
    points = [[f"0.{i:020d}", "0.5"] for i in range(1, 3001)]  # ~29 bytes each: ~87 KB
    doc = policy(version=2, fund_share={"volatility": {"window": 10, "breakpoints": points}})
    path = write_jsonl(tmp_path / "p.jsonl", [
        capital("c1", "1.00"), {"type": "policy", "id": "p2", "time": TIME, "policy": doc}])
    message = refused(fund_db, path)
    assert message.startswith("line 2: policy: its policy_set event would be ")
    assert message.endswith(" bytes, over the 65,535 bytes a tlog-tiles entry holds")


@pytest.mark.slow  # a 9 MB line: the import's record walk takes seconds before the bound
def test_more_than_100000_counterparties_are_refused(fund_db: str, tmp_path: Path) -> None:
    cps = [(f"a{i}", "1.00") for i in range(100_001)]
    path = write_jsonl(tmp_path / "l.jsonl", [liquidation("L1", "49000", counterparties=cps)])
    assert refused(fund_db, path) == ("line 1: counterparties: 100,001 counterparties "
                                      "(at most 100,000 items)")


def test_a_decimal_of_65_characters_is_refused(fund_db: str, tmp_path: Path) -> None:
    fact = liquidation("L1", "49000", counterparties=[("x", "1." + "0" * 63)])
    message = refused(fund_db, write_jsonl(tmp_path / "d.jsonl", [fact]))
    assert message.startswith("line 1: counterparties.0.unrealized_pnl: ")
    assert message.endswith("is too long (at most 64 characters)")


def init_refused(db_url: str, tmp_path: Path, config: dict) -> str:
    path = tmp_path / "fund.json"
    path.write_text(json.dumps(config))
    result = run(["init", str(path), "--time", TIME], db_url)
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1, result.output
    assert not any(database_rows(db_url).values())  # the tables, if created, hold no row
    return result.output.removeprefix(f"Error: {path}: ").rstrip("\n")


def test_a_fund_of_65_assets_or_513_markets_is_refused(db_url: str, tmp_path: Path) -> None:
    config = fund_config()
    many = {**config, "assets": {f"A{i}": {"decimals": 2} for i in range(65)}}
    assert init_refused(db_url, tmp_path, many).startswith("assets: ")
    assert init_refused(db_url, tmp_path, many).endswith("(at most 64 members)")
    markets = {**config, "markets": {f"M{i}": {"quote": "USDT"} for i in range(513)}}
    assert init_refused(db_url, tmp_path, markets).endswith("(at most 512 members)")


def test_a_large_liquidation_is_recorded_split_and_reimported_as_a_no_op(
        fund_db: str, tmp_path: Path) -> None:
    cps = [(f"acct-{i:04d}", "10.00") for i in range(650)]
    facts = [capital("c1", "100.00"), liquidation("L1", "49000", account="bob",
                                                  counterparties=cps)]
    path = write_jsonl(tmp_path / "big.jsonl", facts)
    result = run(["import", str(path)], fund_db)
    assert result.exit_code == 0, result.output
    ledger = Ledger(fund_db)
    try:
        kinds = [e["type"] for e in ledger.log_events("main")]
        assert kinds[3:5] == ["large_liquidation_settled", "counterparties_listed"]
        assert len(kinds) == 3 + 1 + 21 + 2 + 650
        assert max(len(line) for line in ledger.log_lines("main")) < 65_535
    finally:
        ledger.close()
        ledger.engine.dispose()
    before = database_rows(fund_db)
    again = run(["import", str(path), "--json"], fund_db)
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["already_recorded"] == 2
    assert database_rows(fund_db) == before
    changed = json.loads(json.dumps(facts))
    changed[1]["counterparties"][640]["unrealized_pnl"] = "10.01"  # in the last chunk
    message = refused(fund_db, write_jsonl(tmp_path / "changed.jsonl", changed))
    assert message == ("line 2: id: liquidation 'L1' is already recorded with different "
                       "fields (conflict)")
