"""Format v2 (pools) inputs shared by the ledger's v2 tests: the contract's hand-worked
example (/work/wt/V2-CONTRACT.md "Hand-worked log example"), vector T1's fund, and a builder
of the example's event export for the auditor's side (`example_export`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.factories import write_jsonl
from tests.importing import run

DAY = "2026-01-01"
T0 = f"{DAY}T00:00:00Z"


def at(clock: str) -> str:
    """A time on 2026-01-01 (`HH:MM:SS`)."""
    return f"{DAY}T{clock}Z"


def policy2(version: int = 1, **pools: Any) -> dict[str, Any]:
    """A policy/2 document with the example's fund-wide terms and the given pool rules."""
    return {"format": "backstop-policy/2", "version": version, "fee_cap_rate": "0.005",
            "fund_share": {"fixed": "0.5"}, "socialization": "pro_rata_profit",
            "pools": pools, "assets": {}, "layers": []}


def example_policy() -> dict[str, Any]:
    """The example's policy/2, version 1."""
    return policy2(alt={"minimum_reserve": {"USDT": "10.00"},
                        "per_event_cap": {"USDT": "80.00"},
                        "backstop": {"pool": "shared", "limit": {"USDT": "25.00"}}},
                   shared={"minimum_reserve": {"USDT": "100.00"}})


def example_config() -> dict[str, Any]:
    """Fund `v2demo`: pools shared, alt, btc; ETH-PERP, ALT-PERP linear, XBTUSD inverse."""
    return {"format": 2, "fund": "v2demo",
            "assets": {"USDT": {"decimals": 2}, "XBT": {"decimals": 8}},
            "valuation": {"currency": "USD", "decimals": 2},
            "pools": {"shared": {"kind": "shared"}, "alt": {"kind": "isolated"},
                      "btc": {"kind": "isolated"}},
            "markets": {"ETH-PERP": {"kind": "linear", "settlement": "USDT", "pool": "shared"},
                        "ALT-PERP": {"kind": "linear", "settlement": "USDT", "pool": "alt"},
                        "XBTUSD": {"kind": "inverse", "settlement": "XBT",
                                   "quote_currency": "USD", "face_value": "1", "pool": "btc"}},
            "policy": example_policy()}


def capital2(id_: str, amount: str, asset: str, pool: str, time: str = T0,
             direction: str = "inject") -> dict[str, Any]:
    """A `capital` fact of a v2 fund."""
    return {"type": "capital", "id": id_, "time": time, "direction": direction,
            "asset": asset, "amount": amount, "source": "operator", "pool": pool}


def example_facts() -> list[dict[str, Any]]:
    """Steps 1-4 of the example, in order."""
    return [
        capital2("cap-1", "1000.00", "USDT", "shared"),
        capital2("cap-2", "30.00", "USDT", "alt"),
        capital2("cap-3", "0.00150000", "XBT", "btc"),
        {"type": "claim_cap", "id": "cc-1", "time": T0, "market": "ALT-PERP",
         "per_period": "100.00", "period_seconds": 86400},
        {"type": "liquidation", "id": "liq-7", "time": at("01:00:00"), "account": "acct-9",
         "market": "ALT-PERP", "side": "long", "size": "2", "entry_price": "30000",
         "collateral": "3000.00", "fill_price": "28440", "mark_price": "28440",
         "counterparties": []},
        {"type": "liquidation", "id": "liq-8", "time": at("02:00:00"), "account": "acct-1",
         "market": "XBTUSD", "side": "long", "size": "10000", "entry_price": "50000",
         "collateral": "0.002", "fill_price": "49000", "mark_price": "49000",
         "counterparties": [
             {"account": "A", "size": "5000", "entry_price": "52000",
              "unrealized_pnl": "0.00588697", "collateral": "0.01"},
             {"account": "B", "size": "20000", "entry_price": "50500",
              "unrealized_pnl": "0.01212366", "collateral": "0.1"}]},
    ]


def init_fund(url: str, folder: Path, config: dict[str, Any], time: str = T0) -> None:
    """`backstop init` of `config` on `url` (asserting success)."""
    path = folder / f"{config['fund']}.json"
    path.write_text(json.dumps(config))
    result = run(["init", str(path), "--time", time], url)
    assert result.exit_code == 0, result.output


def import_facts(url: str, path: Path, facts: list[dict[str, Any]], fund: str) -> None:
    """`backstop import` of `facts` into `fund` (asserting success)."""
    result = run(["import", str(write_jsonl(path, facts)), "--fund", fund], url)
    assert result.exit_code == 0, result.output


def example_export(url: str, folder: Path) -> Path:
    """The contract's example recorded on `url` and exported: `folder/events.jsonl`."""
    init_fund(url, folder, example_config())
    import_facts(url, folder / "facts.jsonl", example_facts(), "v2demo")
    out = folder / "events.jsonl"
    result = run(["export", str(out), "--fund", "v2demo"], url)
    assert result.exit_code == 0, result.output
    return out


def t1_config() -> dict[str, Any]:
    """Vector T1's fund: pool `main` (shared) with the rule USDT, 8 h, -0.3 / -0.25, 100.00."""
    rule = {"asset": "USDT", "window_seconds": 28800, "start_ratio": "-0.3",
            "stop_ratio": "-0.25", "minimum_balance": "100.00"}
    return {"format": 2, "fund": "t1", "assets": {"USDT": {"decimals": 2}},
            "valuation": {"currency": "USD", "decimals": 2},
            "pools": {"main": {"kind": "shared"}},
            "markets": {"M-PERP": {"kind": "linear", "settlement": "USDT", "pool": "main"}},
            "policy": policy2(main={"adl": rule})}


def t1_loss(id_: str, time: str, fill: str) -> dict[str, Any]:
    """A long of 1 at 1000 with no collateral filled at `fill`: a deficit of 1000 - fill."""
    return {"type": "liquidation", "id": id_, "time": time, "account": "acct-1",
            "market": "M-PERP", "side": "long", "size": "1", "entry_price": "1000",
            "collateral": "0", "fill_price": fill, "mark_price": fill, "counterparties": []}


def t1_facts() -> list[dict[str, Any]]:
    """T1's facts after the opening: 1000.00 in, deficits 200.00 and 150.00, a fee of 60.00,
    two observations (indexes 2-10 of the log; the ADL events are 7 and 11)."""
    def observation(id_: str, time: str) -> dict[str, Any]:
        return {"type": "observation", "id": id_, "time": time, "market": "M-PERP",
                "mark_price": "900", "open_interest": "10"}

    return [capital2("in-1", "1000.00", "USDT", "main"),
            t1_loss("liq-1", at("02:00:00"), "800"),
            t1_loss("liq-2", at("03:00:00"), "850"),
            {"type": "fee", "id": "fee-1", "time": at("05:00:00"), "kind": "trading_fee_share",
             "asset": "USDT", "amount": "60.00", "pool": "main"},
            observation("obs-1", at("08:00:00")),
            observation("obs-2", at("10:30:00"))]
