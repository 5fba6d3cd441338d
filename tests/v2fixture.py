"""Format v2 (pools) inputs shared by the ledger's v2 tests: the worked log E1 of
schemas/README.md ("Format v2 (pools)", facts in fixtures/v2-e1.*), vector T1's fund and facts,
builders of policy/2 documents and v2 facts, and `example_export` (E1 recorded and exported)."""

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


FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def example_config() -> dict[str, Any]:
    """Example E1's fund `v2demo` (fixtures/v2-e1.fund.json): pools shared, alt, btc;
    ETH-PERP, ALT-PERP linear, XBTUSD inverse; its policy/2 inside."""
    return json.loads((FIXTURES / "v2-e1.fund.json").read_text())  # type: ignore[no-any-return]


def example_policy() -> dict[str, Any]:
    """Example E1's policy/2, version 1."""
    return example_config()["policy"]  # type: ignore[no-any-return]


def capital2(id_: str, amount: str, asset: str, pool: str, time: str = T0,
             direction: str = "inject") -> dict[str, Any]:
    """A `capital` fact of a v2 fund."""
    return {"type": "capital", "id": id_, "time": time, "direction": direction,
            "asset": asset, "amount": amount, "source": "operator", "pool": pool}


def example_facts() -> list[dict[str, Any]]:
    """Example E1's facts (fixtures/v2-e1.jsonl), in order: three capital injections, the
    ALT-PERP claim cap, the liquidations L-alt (02:00) and L-xbt (03:00)."""
    lines = (FIXTURES / "v2-e1.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


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
