"""The contract's hand-worked v2 log (V2-CONTRACT.md, "Hand-worked log example"; its events
and hand computations are in tests/auditor/v2_logs.py), replayed by `backstop-audit replay`:
VERIFIED with every pool's balance, the fund's sums and the account totals computed by hand."""

from __future__ import annotations

from pathlib import Path

from tests.auditor.v2_kit import lines, replay, write
from tests.auditor.v2_logs import EVENTS, FUND, POLICY, RESERVES, TOTALS


def test_the_contract_example_verifies_with_exact_pool_balances(tmp_path: Path) -> None:
    events, snap, key = write(tmp_path, EVENTS, FUND, reserves=RESERVES, totals=TOTALS,
                              accounts=4, policy=POLICY)
    code, doc = replay(events, snap, key)
    assert (code, doc["reason"]) == (0, None)
    assert doc["pools"] == {"alt": {"USDT": "10.00", "XBT": "0.00000000"},
                            "btc": {"USDT": "0.00", "XBT": "0.00000000"},
                            "shared": {"USDT": "975.00", "XBT": "0.00000000"}}
    assert doc["balances"] == RESERVES
    assert doc["totals"] == TOTALS
    assert (doc["events"], doc["liquidations"], doc["accounts"]) == (15, 2, 4)


def test_the_example_replayed_in_python_keeps_claims_and_pools() -> None:
    from auditor.replays import replay as run

    result = run(lines(EVENTS, FUND))
    assert result.format == 2
    assert result.pools == {"shared": {"USDT": 97500, "XBT": 0}, "alt": {"USDT": 1000, "XBT": 0},
                            "btc": {"USDT": 0, "XBT": 0}}
    assert result.balances == {"USDT": 98500, "XBT": 0}
    assert result.market_pools == {"ETH-PERP": "shared", "ALT-PERP": "alt", "XBTUSD": "btc"}
    assert result.account_totals("A") == {"USDT": {"fees": 0, "payouts": 0, "clawbacks": 0},
                                          "XBT": {"fees": 0, "payouts": 0, "clawbacks": 19012}}
    assert result.adl_pools == []


def test_a_v2_replay_state_is_refused_clearly() -> None:
    """auditor.state saves v1 replayers only: saving one for a v2 log is refused up front."""
    import pytest

    from auditor.replay import Discrepancy, Replayer
    from auditor.replays import replay as run

    saving = Replayer()
    saving.keep_refs = True  # as tiled_audit sets it for --save-state (and the witness)
    with pytest.raises(Discrepancy) as caught:
        run(lines(EVENTS, FUND), resume=saving)
    assert str(caught.value) == (
        "event 0: type: a replay state of a format v2 log cannot be saved yet (the saved state "
        "holds v1 logs only): replay it in full, without --save-state")
    assert run(lines(EVENTS, FUND), resume=Replayer()).format == 2  # a fresh one: full replay


def test_structure_events_after_the_example_move_markets_and_money() -> None:
    """A new isolated pool, a listing into it, a transfer of 500.00 from shared (975.00 ->
    475.00), ALT-PERP ejected from alt to a new shared pool: claims and balances follow."""
    from auditor.replays import replay as run
    from tests.auditor.v2_kit import DAY

    at = DAY + "05:00:00Z"
    more = [
        ("pool_created", 1, at, "p-1", {"pool": "new", "kind": "isolated"}),
        ("market_assigned", 1, at, "a-1", {"market": "NEW-PERP", "pool": "new", "from": None,
                                           "reason": "listing",
                                           "spec": {"kind": "linear", "settlement": "USDT"}}),
        ("capital_transferred", 1, at, "t-1", {"from_pool": "shared", "to_pool": "new",
                                               "asset": "USDT", "amount": "500.00",
                                               "authority": "risk-committee",
                                               "reason": "replenish"}),
        ("pool_created", 1, at, "p-2", {"pool": "alt-2", "kind": "shared"}),
        ("market_assigned", 1, at, "a-2", {"market": "ALT-PERP", "pool": "alt-2",
                                           "from": "alt", "reason": "ejection", "spec": None}),
    ]
    # Claims follow the market (Q2): ALT-PERP at 06:00 in alt-2 (empty, no policy): long 1 @
    # 30000, collateral 1000, fill 28990: delta -10.00; R = 100.00 - 45.00 = 55.00 (same
    # period); alt-2 pays 0 (no backstop): all 10.00 socialized, none to claw from.
    liq = {"account": "acct-9", "market": "ALT-PERP", "side": "long", "size": "1",
           "entry_price": "30000", "collateral": "1000", "fill_price": "28990",
           "mark_price": "28990", "counterparties": [], "asset": "USDT", "policy_version": 1,
           "pool": "alt-2",
           "outcome": {"bankruptcy_price": "29000.00000000", "delta": "-10.00", "fee": "0.00",
                       "remainder": "0.00", "share": "0.500000000000",
                       "volatility": "0.000000000000", "deficit": "10.00",
                       "fund_payment": "0.00", "socialized": "10.00", "unresolved": "10.00",
                       "method": "pro_rata_profit", "pool": "alt-2", "adl_mode": False,
                       "claim_remaining": "55.00", "backstop_pool": None,
                       "backstop_payment": "0.00", "layers": []}}
    later = DAY + "06:00:00Z"
    more += [("liquidation_settled", 2, later, "liq-9", liq),
             ("socialized_loss_assessed", 2, later, "liq-9", {
                 "pool": "alt-2", "market": "ALT-PERP", "asset": "USDT", "amount": "10.00",
                 "method": "pro_rata_profit", "unresolved": "10.00"})]
    result = run(lines([*EVENTS, *more], FUND))
    assert {p: b["USDT"] for p, b in result.pools.items()} == {
        "shared": 47500, "alt": 1000, "btc": 0, "new": 50000, "alt-2": 0}
    assert result.balances["USDT"] == 98500  # a transfer creates no money
    assert result.market_pools == {"ETH-PERP": "shared", "ALT-PERP": "alt-2", "XBTUSD": "btc",
                                   "NEW-PERP": "new"}
