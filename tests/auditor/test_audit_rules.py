"""auditor.rules: liquidation outcomes re-derived from the contract, hand-computed numbers."""

from __future__ import annotations

from fractions import Fraction

import pytest

from auditor import rules
from auditor.rules import RuleError, settle

USDT = 2


def policy(**over):
    doc = {
        "version": 1,
        "minimum_reserve": {"USDT": "0.00"},
        "fee_cap_rate": "0.005",
        "fund_share": {"fixed": "1"},
        "socialization": "pro_rata_profit",
    }
    doc.update(over)
    return doc


def liq(side="long", entry="60000", collateral="900", fill="56100", size="0.1", cps=None, mark=None):
    return {
        "account": "acct-1", "market": "BTC-PERP", "side": side, "size": size,
        "entry_price": entry, "collateral": collateral, "fill_price": fill,
        "mark_price": mark or fill, "counterparties": cps or [], "asset": "USDT",
        "policy_version": 1,
    }


def cp(account, pnl, size="1", entry="50000", collateral="1000"):
    return {"account": account, "size": size, "entry_price": entry,
            "unrealized_pnl": pnl, "collateral": collateral}


# ------------------------------------------------------------------ surplus


@pytest.mark.parametrize(
    "fill, fee, remainder",
    [("56100", "28.05", "481.95"),   # delta 510.00, cap 0.5% * 5610 = 28.05
     ("51051", "5.10", "0.00"),      # delta 5.10 < cap 25.5255
     ("51000", "0.00", "0.00")],     # exactly at bankruptcy: nothing
)
def test_long_surplus_fee(fill, fee, remainder):
    s = settle(liq(fill=fill), policy(), 0, USDT)
    assert s.outcome["fee"] == fee
    assert s.outcome["remainder"] == remainder
    assert s.bankruptcy == 51000
    assert s.outcome["bankruptcy_price"] == "51000.00000000"
    assert s.outcome["deficit"] == "0.00"
    expected_events = [] if fee == "0.00" else [("fee_inflow", {
        "kind": "liquidation_fee", "asset": "USDT", "amount": fee, "account": "acct-1"})]
    assert s.events == expected_events


def test_long_deficit_fund_pays():
    # delta = 900 + (50490 - 60000) * 0.1 = -51.00
    s = settle(liq(fill="50490"), policy(), 10_000_00, USDT)
    assert s.delta == Fraction(-51)
    assert (s.deficit, s.fund_payment, s.socialized, s.unresolved) == (5100, 5100, 0, 0)
    assert s.outcome["delta"] == "-51.00"
    assert s.outcome["fund_payment"] == "51.00"
    assert s.events == [("deficit_covered", {"asset": "USDT", "amount": "51.00", "account": "acct-1"})]


def test_short_surplus_fee():
    # bankruptcy 40000 + 900/0.1 = 49000; delta = 900 + (40000 - 44100) * 0.1 = 490
    s = settle(liq(side="short", entry="40000", fill="44100"), policy(), 0, USDT)
    assert s.bankruptcy == 49000
    assert s.outcome["fee"] == "22.05"
    assert s.outcome["remainder"] == "467.95"


def test_higher_cap_rate():
    p = policy(fee_cap_rate="0.025")
    assert settle(liq(fill="56100"), p, 0, USDT).outcome["fee"] == "140.25"
    assert settle(liq(side="short", entry="40000", fill="44100"), p, 0, USDT).outcome["fee"] == "110.25"


def test_fee_floors_and_dust_stays_with_trader():
    # delta = 900 + (51000.123 - 60000) * 0.1 = 0.0123; fee = floor(0.0123 * 0.5) = 0.00
    s = settle(liq(fill="51000.123"), policy(fund_share={"fixed": "0.5"}), 0, USDT)
    assert (s.fee, s.remainder) == (0, 1)
    assert rules.conservation_error(s.outcome, s.delta, USDT) is None


def test_share_scales_fee():
    # min(510, 28.05) * 0.5 = 14.025 -> floor 14.02
    s = settle(liq(fill="56100"), policy(fund_share={"fixed": "0.5"}), 0, USDT)
    assert s.outcome["fee"] == "14.02"
    assert s.outcome["remainder"] == "495.98"
    assert s.outcome["share"] == "0.500000000000"


# ------------------------------------------------------------------ deficit and socialization


def test_deficit_ceil_to_unit():
    # delta = 900 + (50999.99 - 60000)*0.1 = -0.001 -> D = 0.01
    s = settle(liq(fill="50999.99"), policy(), 100, USDT)
    assert s.deficit == 1 and s.fund_payment == 1


def test_minimum_reserve_and_cap_limit_payment():
    p = policy(minimum_reserve={"USDT": "20.00"}, per_event_cap={"USDT": "25.00"})
    # balance 60.00, available 40.00, cap 25.00 -> pays 25.00 of 51.00, socializes 26.00
    s = settle(liq(fill="50490", cps=[cp("x", "100.00")]), p, 6000, USDT)
    assert (s.fund_payment, s.socialized, s.unresolved) == (2500, 2600, 0)
    assert [t for t, _ in s.events] == ["deficit_covered", "socialized_loss_assessed", "clawback_charged"]
    # balance below the minimum reserve: nothing available
    s = settle(liq(fill="50490"), p, 1000, USDT)
    assert s.fund_payment == 0 and s.unresolved == 5100


def test_pro_rata_exact_split():
    cps = [cp("a", "70.00"), cp("b", "30.00"), cp("loser", "-5.00")]
    s = settle(liq(entry="61000", fill="51000", cps=cps), policy(), 0, USDT)  # delta -100.00
    assert s.socialized == 10000
    assert s.clawbacks == {"a": 7000, "b": 3000}
    assert s.events[0] == ("socialized_loss_assessed", {
        "asset": "USDT", "amount": "100.00", "method": "pro_rata_profit", "unresolved": "0.00"})
    assert s.events[1][1] == {"asset": "USDT", "account": "a", "amount": "70.00",
                              "method": "pro_rata_profit", "adl_quantity": None, "adl_price": None}


def test_pro_rata_largest_remainder_ties_by_account():
    cps = [cp("c", "1.00"), cp("b", "1.00"), cp("a", "1.00")]
    # delta = 900 + (50990 - 60000) * 0.1 = -1.00
    s = settle(liq(fill="50990", cps=cps), policy(), 0, USDT)
    assert s.socialized == 100
    assert [(d["account"], d["amount"]) for t, d in s.events if t == "clawback_charged"] == [
        ("a", "0.34"), ("b", "0.33"), ("c", "0.33")]


def test_pro_rata_profit_exhausted_leaves_unresolved():
    cps = [cp("a", "0.40"), cp("b", "0.209")]  # b floors to 0.20
    s = settle(liq(fill="50990", cps=cps), policy(), 0, USDT)
    assert s.clawbacks == {"a": 40, "b": 20}
    assert s.unresolved == 40
    assert s.outcome["unresolved"] == "0.40"


def test_adl_ranking_and_quantities():
    # score = pnl/(entry*size) * mark*size/(collateral+pnl), mark 51000
    cps = [
        cp("low", "100.00", size="1", entry="50000", collateral="10000"),   # 0.002*51000/10100
        cp("high", "60.00", size="1", entry="50000", collateral="100"),     # 0.0012*51000/160
    ]
    p = policy(socialization="adl")
    # long entry 60000 coll 900 size 0.1 fill 50000 -> delta = -100.00; bankruptcy 51000
    s = settle(liq(fill="50000", mark="51000", cps=cps), p, 0, USDT)
    assert s.socialized == 10000
    claws = [d for t, d in s.events if t == "clawback_charged"]
    assert [(d["account"], d["amount"]) for d in claws] == [("high", "60.00"), ("low", "40.00")]
    # qty = paid / |50000 - 51000| -> 0.06 and 0.04, at price 51000
    assert [d["adl_quantity"] for d in claws] == ["0.06000000", "0.04000000"]
    assert all(d["adl_price"] == "51000.00000000" for d in claws)
    assert s.unresolved == 0


def test_adl_quantity_capped_at_size_and_unresolved():
    cps = [cp("a", "100.00", size="0.01", entry="50000", collateral="1")]
    s = settle(liq(fill="50000", cps=cps), policy(socialization="adl"), 0, USDT)
    claw = [d for t, d in s.events if t == "clawback_charged"][0]
    assert claw["amount"] == "100.00" and claw["adl_quantity"] == "0.01000000"
    assert s.unresolved == 0


def test_adl_ties_by_account_id():
    cps = [cp("b", "10.00"), cp("a", "10.00")]
    s = settle(liq(fill="50990", cps=cps), policy(socialization="adl"), 0, USDT)
    assert [d["account"] for t, d in s.events if t == "clawback_charged"] == ["a"]
    assert s.clawbacks == {"a": 100}


def test_none_socialization():
    s = settle(liq(fill="50490", cps=[cp("a", "100.00")]), policy(socialization="none"), 0, USDT)
    assert s.events == [("socialized_loss_assessed", {
        "asset": "USDT", "amount": "51.00", "method": "none", "unresolved": "51.00"})]


# ------------------------------------------------------------------ volatility share


VOL_POLICY = {"volatility": {"window": 2, "breakpoints": [["0.00", "0.5"], ["0.02", "1"]]}}


def test_volatility_mean_abs_return_over_window():
    # only the last 2 returns count: 100 -> 101 (+1%), 101 -> 99.99 (-1%) => vol 0.01
    prices = ["50", "100", "101", "99.99"]
    assert rules.volatility([Fraction(p) for p in prices], 2) == Fraction(1, 100)
    s = settle(liq(fill="56100"), policy(fund_share=VOL_POLICY), 0, USDT, prices)
    assert s.share == Fraction(3, 4)                 # halfway between 0.5 and 1
    assert s.outcome["volatility"] == "0.010000000000"
    assert s.outcome["share"] == "0.750000000000"
    assert s.outcome["fee"] == "21.03"               # floor(28.05 * 0.75 = 21.0375)


def test_volatility_clamps_and_needs_two_prices():
    bp = [(Fraction(0), Fraction(1, 2)), (Fraction(2, 100), Fraction(1))]
    assert rules.interpolate_share(bp, Fraction(5, 100)) == 1
    assert rules.volatility([Fraction(100)], 20) == 0
    s = settle(liq(fill="56100"), policy(fund_share=VOL_POLICY), 0, USDT, ["100"])
    assert s.share == Fraction(1, 2) and s.outcome["fee"] == "14.02"


# ------------------------------------------------------------------ comparison helpers


def test_outcome_mismatch_names_field():
    s = settle(liq(fill="56100"), policy(), 0, USDT)
    good = dict(s.outcome)
    assert rules.outcome_mismatch(s, good, USDT) is None
    assert rules.outcome_mismatch(s, {**good, "fee": "28.06"}, USDT) == (
        "outcome.fee: expected '28.05', got '28.06'")
    assert "exactly 2 decimals" in rules.outcome_mismatch(s, {**good, "fee": "28.050"}, USDT)
    # display values are pinned strings too, trailing zeros included
    assert rules.outcome_mismatch(s, {**good, "bankruptcy_price": "51000"}, USDT) == (
        "outcome.bankruptcy_price: expected '51000.00000000', got '51000'")
    assert rules.outcome_mismatch(s, {**good, "delta": "510.01"}, USDT) is not None
    # method is the policy's even when nothing is socialized: null is refused
    assert rules.outcome_mismatch(s, {**good, "method": None}, USDT) == (
        "outcome.method: expected 'pro_rata_profit', got None")


@pytest.mark.parametrize("fill, delta, half_even", [
    ("56100.07", "510.00", "510.01"),   # 900 + (56100.07 - 60000) * 0.1 = 510.007
    ("50490.07", "-51.00", "-50.99"),   # 900 + (50490.07 - 60000) * 0.1 = -50.993
])
def test_delta_is_rounded_toward_minus_infinity(fill, delta, half_even):
    s = settle(liq(fill=fill), policy(), 10_000_00, USDT)
    assert s.outcome["delta"] == delta
    assert rules.outcome_mismatch(s, {**s.outcome, "delta": half_even}, USDT) == (
        f"outcome.delta: expected {delta!r}, got {half_even!r}")


def test_conservation_error():
    s = settle(liq(fill="56100"), policy(), 0, USDT)
    assert rules.conservation_error({**s.outcome, "remainder": "481.96"}, s.delta, USDT)


def test_bad_policy_and_facts_name_field():
    with pytest.raises(RuleError, match="policy.socialization"):
        rules.parse_policy(policy(socialization="lottery"))
    bad_bp = {"volatility": {"window": 3, "breakpoints": [["0.02", "1"], ["0.01", "0.5"]]}}
    with pytest.raises(RuleError, match="breakpoints.1"):
        rules.parse_policy(policy(fund_share=bad_bp))
    with pytest.raises(RuleError, match="fill_price"):
        settle({**liq(), "fill_price": 56100.0}, policy(), 0, USDT)


def test_adl_ranks_by_profit_floored_to_units():
    """Profits 10.001 and 10.009 in a 2-decimal asset both floor to 10.00 units: equal
    scores, so the tie goes to the lower account id, 'a' (the exact profits would put 'b'
    first). Deficit 900 + (50990 - 60000) * 0.1 = -1.00, nothing in the fund: 'a' pays all
    1.00, ADL quantity 1.00 / |50990 - 51000| = 0.1."""
    cps = [cp("b", "10.009"), cp("a", "10.001")]
    s = settle(liq(fill="50990", cps=cps), policy(socialization="adl"), 0, USDT)
    claws = [d for t, d in s.events if t == "clawback_charged"]
    assert [(d["account"], d["amount"], d["adl_quantity"]) for d in claws] == [
        ("a", "1.00", "0.10000000")]
    assert s.clawbacks == {"a": 100} and s.unresolved == 0
