"""Small builders for test inputs: fund configs and exchange facts (wire dicts)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

TIME = "2020-03-12T00:00:00Z"


def policy(**overrides: Any) -> dict[str, Any]:
    doc = {"version": 1, "minimum_reserve": {"USDT": "0.00"}, "fee_cap_rate": "0.005",
           "fund_share": {"fixed": "1"}, "socialization": "pro_rata_profit"}
    doc.update(overrides)
    return doc


def fund_config(name: str = "main", **policy_overrides: Any) -> dict[str, Any]:
    return {"fund": name, "assets": {"USDT": {"decimals": 2}},
            "markets": {"BTC-PERP": {"quote": "USDT"}}, "policy": policy(**policy_overrides)}


def capital(id_: str, amount: str, direction: str = "inject") -> dict[str, Any]:
    return {"type": "capital", "id": id_, "time": TIME, "direction": direction,
            "asset": "USDT", "amount": amount, "source": "operator"}


def fee(id_: str, amount: str, account: str | None = "carol") -> dict[str, Any]:
    record = {"type": "fee", "id": id_, "time": TIME, "kind": "trading_fee_share",
              "asset": "USDT", "amount": amount}
    if account is not None:
        record["account"] = account
    return record


def liquidation(id_: str, fill: str, *, account: str = "alice", side: str = "long",
                entry: str = "60000", collateral: str = "900", size: str = "0.1",
                counterparties: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
    """A liquidation; counterparties as (account, unrealized pnl) pairs."""
    return {"type": "liquidation", "id": id_, "time": TIME, "account": account,
            "market": "BTC-PERP", "side": side, "size": size, "entry_price": entry,
            "collateral": collateral, "fill_price": fill, "mark_price": fill,
            "counterparties": [{"account": a, "size": "1", "entry_price": "40000",
                                "unrealized_pnl": pnl, "collateral": "1000"}
                               for a, pnl in counterparties]}


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    with path.open("w") as stream:
        for record in records:
            stream.write(json.dumps(record) + "\n")
    return path


def crash_records() -> list[dict[str, Any]]:
    """Hand-computed scenario (USDT, 2 decimals):

    inject 100.00; L1 long 0.1 @60000 collateral 900 (bankruptcy 51000) filled 56100:
    surplus 510.00, fee = min(510, 0.5% * 56100 * 0.1 = 28.05) = 28.05 -> fund 128.05;
    L2 same position filled 49000: deficit 200.00, fund pays all it has, 128.05 -> fund 0;
    S = 71.95 split over profits 70/30: 50.365 / 21.585 -> 50.36 + 21.58 = 71.94, the left-over
    unit goes to the larger remainder (a tie, 0.5 each) by account id: x -> 50.37, y 21.58;
    fee f1 1.50 from carol -> fund 1.50.
    """
    return [capital("c1", "100"), liquidation("L1", "56100"),
            liquidation("L2", "49000", account="bob",
                        counterparties=[("x", "70.00"), ("y", "30.00")]),
            fee("f1", "1.5")]


def cli_crash_fund(folder: Path) -> dict[str, str]:
    """Through the `backstop` CLI: a SQLite database in `folder` with fund main (fund_config)
    holding crash_records() (11 events, 5 accounts). Returns the env naming that database."""
    from click.testing import CliRunner

    from ledger.cli.main import main

    env = {"BACKSTOP_DB": f"sqlite:///{folder / 'cli.sqlite'}"}
    config = folder / "fund.json"
    config.write_text(json.dumps(fund_config()))
    facts = write_jsonl(folder / "facts.jsonl", crash_records())
    for args in (["init", str(config), "--time", TIME], ["import", str(facts)]):
        result = CliRunner().invoke(main, args, env=env)
        assert result.exit_code == 0, result.output
    return env
