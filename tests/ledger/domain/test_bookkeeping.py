"""ledger/domain/bookkeeping.py: each event type's balance moves, hand-computed, in exact
minor units (USDT with 2 decimals, BTC with 8, JPY with none)."""

from __future__ import annotations

import pytest

from ledger.domain.bookkeeping import (
    ACCOUNT_TOTALS,
    FUND,
    MOVING,
    TOTALS,
    UNMOVING,
    Move,
    moves,
)
from ledger.domain.fund import EVENT_CLASSES
from ledger.domain.poolevents import V2_EVENT_CLASSES

DECIMALS = {"USDT": 2, "BTC": 8, "JPY": 0}


def move(asset: str, name: str, units: int, account: str | None = None) -> Move:
    """A move as the tuple `moves` gives (asset, name, units, account)."""
    return (asset, name, units, account)


def test_a_fee_with_an_account_credits_the_fund_its_inflow_and_the_accounts_fees() -> None:
    data = {"kind": "liquidation_fee", "asset": "USDT", "amount": "12.34", "account": "alice"}
    assert moves("fee_inflow", data, DECIMALS) == (
        move("USDT", FUND, 1234), move("USDT", "inflow", 1234),
        move("USDT", "fees", 1234, "alice"))


def test_a_fee_without_an_account_is_no_accounts() -> None:
    data = {"kind": "trading_fee_share", "asset": "BTC", "amount": "0.00000001", "account": None}
    assert moves("fee_inflow", data, DECIMALS) == (move("BTC", FUND, 1), move("BTC", "inflow", 1))


def test_a_covered_deficit_debits_the_fund_and_is_the_accounts_payout() -> None:
    data = {"asset": "USDT", "amount": "1000.05", "account": "bob"}
    assert moves("deficit_covered", data, DECIMALS) == (
        move("USDT", FUND, -100005), move("USDT", "covered", 100005),
        move("USDT", "payouts", 100005, "bob"))


def test_a_socialized_loss_moves_only_the_running_totals() -> None:
    data = {"asset": "USDT", "amount": "50.00", "method": "pro_rata_profit",
            "unresolved": "0.07"}
    assert moves("socialized_loss_assessed", data, DECIMALS) == (
        move("USDT", "socialized", 5000), move("USDT", "unresolved", 7))


def test_a_clawback_is_the_accounts_and_leaves_the_fund_balance() -> None:
    data = {"asset": "JPY", "amount": "300", "account": "carol", "method": "adl",
            "adl_quantity": "0.5", "adl_price": "600"}
    assert moves("clawback_charged", data, DECIMALS) == (
        move("JPY", "clawed_back", 300), move("JPY", "clawbacks", 300, "carol"))


def test_capital_in_and_out() -> None:
    injected = {"asset": "BTC", "amount": "2.50000000", "source": "operator"}
    assert moves("capital_injected", injected, DECIMALS) == (
        move("BTC", FUND, 250_000_000), move("BTC", "injected", 250_000_000))
    withdrawn = {"asset": "BTC", "amount": "0.10000000", "source": "underwriter"}
    assert moves("capital_withdrawn", withdrawn, DECIMALS) == (
        move("BTC", FUND, -10_000_000), move("BTC", "withdrawn", 10_000_000))


def test_a_rebalance_debits_one_asset_and_credits_the_other() -> None:
    data = {"from_asset": "USDT", "from_amount": "65000.00", "to_asset": "BTC",
            "to_amount": "0.99990000"}
    assert moves("reserve_rebalanced", data, DECIMALS) == (
        move("USDT", FUND, -6_500_000), move("USDT", "rebalanced_out", 6_500_000),
        move("BTC", FUND, 99_990_000), move("BTC", "rebalanced_in", 99_990_000))


def test_a_huge_amount_stays_exact() -> None:
    data = {"asset": "USDT", "amount": "3402823669209384634633746074317682114.55",
            "source": "operator"}  # 2**128 - 1 minor units
    assert moves("capital_injected", data, DECIMALS)[0] == move("USDT", FUND, 2**128 - 1)


@pytest.mark.parametrize("kind", [*sorted(UNMOVING), "an_unknown_type"])
def test_types_that_move_nothing(kind: str) -> None:
    assert moves(kind, {"asset": "USDT", "amount": "1.00"}, DECIMALS) == ()


def test_every_fund_event_type_is_classified() -> None:
    """A new event type must say here whether it moves a balance (else it silently moves
    none)."""
    types = {cls.TYPE for cls in (*EVENT_CLASSES, *V2_EVENT_CLASSES)}
    assert types == MOVING | UNMOVING, types ^ (MOVING | UNMOVING)
    assert not MOVING & UNMOVING


def test_every_name_is_a_fund_balance_a_total_or_an_accounts() -> None:
    data = {"asset": "USDT", "amount": "1.00", "account": "a", "unresolved": "0.00",
            "from_asset": "USDT", "from_amount": "1.00", "to_asset": "BTC",
            "to_amount": "1.00000000"}
    for kind in MOVING:
        for _, name, _, account in moves(kind, data, DECIMALS):
            assert (name == FUND or name in TOTALS) == (account is None)
            assert account is None or name in ACCOUNT_TOTALS


def test_an_amount_not_in_the_assets_exact_form_is_refused() -> None:
    with pytest.raises(ValueError, match="exactly 2 decimals"):
        moves("capital_injected", {"asset": "USDT", "amount": "1.5"}, DECIMALS)


def test_an_unknown_asset_or_missing_field_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="ETH"):
        moves("capital_injected", {"asset": "ETH", "amount": "1.00"}, DECIMALS)
    with pytest.raises(KeyError, match="account"):
        moves("deficit_covered", {"asset": "USDT", "amount": "1.00"}, DECIMALS)
