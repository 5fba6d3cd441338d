"""`liquidation_settled/2` of a v2 fund (ledger/domain/poolsettle.py) through the aggregate's
v2 commands, without a database: inverse vectors I2, I4, I5, W6 (the backstop in ADL draws
nothing) and a large liquidation. Expected values are the contract's hand computations."""

from __future__ import annotations

from typing import Any

from ledger.domain.fund import Fund, export_event
from ledger.domain.poolfund import COMMANDS, open_fund, pool_balances
from tests.v2fixture import T0, at, capital2, example_config, policy2


def opened(**config: Any) -> Fund:
    fund = open_fund({**example_config(), **config}, T0)
    fund.collect_events()
    return fund


def record(fund: Fund, *facts: dict[str, Any]) -> list[dict[str, Any]]:
    for fact in facts:
        COMMANDS[fact["type"]](fund, fact)
    return [export_event(e, fund.name) for e in fund.collect_events()]


def xbt_long(fill: str, **fields: Any) -> dict[str, Any]:
    """I1's position (long 10000 XBTUSD at 50000, C 0.002) filled at `fill`."""
    return {"type": "liquidation", "id": "liq-1", "time": at("01:00:00"), "account": "acct-1",
            "market": "XBTUSD", "side": "long", "size": "10000", "entry_price": "50000",
            "collateral": "0.002", "fill_price": fill, "mark_price": fill,
            "counterparties": [], **fields}


def test_i2_an_inverse_surplus_pays_its_fee_into_the_pool() -> None:
    fund = opened()
    log = record(fund, xbt_long("49600"))
    outcome = log[0]["data"]["outcome"]
    # delta = 0.002 - 10000 (1/50000 - 1/49600) = 3/7750; fee floor(3/7750 / 2 * 1e8) = 19354
    assert (outcome["delta"], outcome["fee"], outcome["remainder"], outcome["deficit"]) == (
        "0.00038709", "0.00019354", "0.00019355", "0.00000000")
    assert outcome["bankruptcy_price"] == "49504.95049505"
    assert [(e["type"], e["version"], e["data"]) for e in log[1:]] == [
        ("fee_inflow", 2, {"pool": "btc", "kind": "liquidation_fee", "asset": "XBT",
                           "amount": "0.00019354", "account": "acct-1"})]
    assert pool_balances(fund)["btc"]["XBT"] == "0.00019354"
    assert fund.balances["XBT"] == 19354


def test_i4_a_short_that_cannot_go_bankrupt() -> None:
    fund = opened()
    fact = {**xbt_long("100000"), "side": "short", "size": "1000", "collateral": "0.03"}
    outcome = record(fund, fact)[0]["data"]["outcome"]
    # C E = 1500 >= n F = 1000; delta = 0.03 - 0.01 = 0.02; cap 0.005 * 1000 / 100000
    # = 0.00005 < delta, fee floor(0.00005 / 2 * 1e8) = 2500 sat, remainder 2000000 - 2500.
    assert (outcome["bankruptcy_price"], outcome["delta"], outcome["fee"],
            outcome["remainder"]) == (None, "0.02000000", "0.00002500", "0.01997500")


def test_i5_adl_socialization_in_the_coin() -> None:
    fund = opened(policy={**policy2(), "socialization": "adl"})
    record(fund, capital2("cap-3", "0.00150000", "XBT", "btc"))
    counterparties = [
        {"account": "A", "size": "5000", "entry_price": "52000",
         "unrealized_pnl": "0.00588697", "collateral": "0.01"},
        {"account": "B", "size": "20000", "entry_price": "50500",
         "unrealized_pnl": "0.01212366", "collateral": "0.1"}]
    log = record(fund, xbt_long("49000", counterparties=counterparties))
    outcome = log[0]["data"]["outcome"]
    assert (outcome["deficit"], outcome["fund_payment"], outcome["socialized"],
            outcome["unresolved"], outcome["method"]) == (
        "0.00208164", "0.00150000", "0.00058164", "0.00000000", "adl")
    # A scores 0.39324 > B's 0.11144: A pays 58164 sat, 0.00058164 / (51/245000000) contracts
    # = 2794.1529411... floored to 8 places, at the bankruptcy price.
    assert [e["data"] for e in log if e["type"] == "clawback_charged"] == [
        {"pool": "btc", "market": "XBTUSD", "asset": "XBT", "account": "A",
         "amount": "0.00058164", "method": "adl", "adl_quantity": "2794.15294117",
         "adl_price": "49504.95049505"}]


def test_w6_a_backstop_in_adl_is_not_drawn() -> None:
    fund = opened()
    record(fund, capital2("cap-1", "1000.00", "USDT", "shared"),
           capital2("cap-2", "30.00", "USDT", "alt"))
    fund.v2["adl"]["shared"] = "USDT"  # shared in ADL (as an adl_started/1 would leave it)
    log = record(fund, {"type": "liquidation", "id": "liq-7", "time": at("01:00:00"),
                        "account": "acct-9", "market": "ALT-PERP", "side": "long",
                        "size": "2", "entry_price": "30000", "collateral": "3000.00",
                        "fill_price": "28440", "mark_price": "28440", "counterparties": []})
    outcome = log[0]["data"]["outcome"]
    assert (outcome["fund_payment"], outcome["backstop_payment"], outcome["backstop_pool"],
            outcome["socialized"], outcome["adl_mode"]) == ("20.00", "0.00", None, "100.00",
                                                            False)
    assert [e["type"] for e in log] == ["liquidation_settled", "deficit_covered",
                                        "socialized_loss_assessed", "adl_ended"]
    # shared has no rule in the policy: its ADL ends after the fact, reason policy.
    assert log[-1]["data"] == {
        "pool": "shared", "asset": "USDT", "balance": "1000.00", "peak": None,
        "peak_index": None, "peak_time": None, "window_seconds": None, "ratio": None,
        "stop_ratio": None, "reason": "policy", "policy_version": 1}


def test_a_large_liquidation_in_v2() -> None:
    fund = opened()
    counterparties = [{"account": f"account-{i:05d}-" + "x" * 60, "size": "1",
                       "entry_price": "40000", "unrealized_pnl": "1.00", "collateral": "1000"}
                      for i in range(700)]
    fact = {"type": "liquidation", "id": "liq-big", "time": at("01:00:00"), "account": "acct-9",
            "market": "ETH-PERP", "side": "long", "size": "1", "entry_price": "3000",
            "collateral": "100", "fill_price": "3000", "mark_price": "3000",
            "counterparties": counterparties}
    log = record(fund, fact)
    # 700 counterparties of ~130 bytes pass 65,535 bytes: a head and ceil(700 / 32) = 22 chunks
    assert [(e["type"], e["version"]) for e in log[:2]] == [
        ("large_liquidation_settled", 2), ("counterparties_listed", 1)]
    assert len(log) == 1 + 22 + 1  # and the surplus's fee_inflow/2
    head = log[0]["data"]
    assert head["pool"] == "shared" and head["counterparty_count"] == 700
    assert "counterparties" not in head
    assert (log[-1]["type"], log[-1]["version"], log[-1]["data"]["pool"]) == (
        "fee_inflow", 2, "shared")
