"""The integer waterfall (`ledger/domain/intsettle.py`) equals the Fraction reference
(`waterfall.settle` over `LiquidationFact.from_record`, kept as the oracle) on generated wire
facts: every field of the Settlement, clawbacks included, or the same error; with extreme
decimals (0 to 30 places, 1 to 40 digits), sizes, every policy kind and malformed spellings."""

from __future__ import annotations

from fractions import Fraction
from random import Random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain.errors import LiquidationError
from ledger.domain.intsettle import settle_record
from ledger.domain.policy import FixedShare, Policy, VolatilityCurve
from ledger.domain.waterfall import LiquidationFact, settle


def number(rng: Random, positive: bool = True) -> str:
    """A decimal string, often extreme: up to 40 digits, up to 30 places, odd spellings."""
    if rng.random() < 0.004:
        return rng.choice(["-0", "0", "0.000", "1e3", " 1", "01", "", "-1.5", "0.0000001"])
    digits = rng.choice([1, 2, 3, 5, 8, 12, 20, 40])
    n = rng.randint(1 if positive else 0, 10**digits)
    places = rng.choice([0, 0, 1, 2, 4, 8, 12, 18, 30])
    whole, frac = divmod(n, 10**places)
    text = f"{whole}.{frac:0{places}d}" if places else str(whole)
    if not positive and rng.random() < 0.3:
        text = "-" + text
    return text


def record(rng: Random, n_cps: int) -> dict[str, Any]:
    cps = [{"account": f"c{i}", "size": number(rng), "entry_price": number(rng),
            "unrealized_pnl": number(rng, positive=False), "collateral": number(rng, False)}
           for i in range(n_cps)]
    if cps and rng.random() < 0.02:
        cps[-1]["account"] = rng.choice(["c0", "trader", ""])
    fact: dict[str, Any] = {
        "type": "liquidation", "id": "x", "time": "t", "account": "trader", "market": "M",
        "side": rng.choice(["long", "short", "long", "short", "up"]) if rng.random() < 0.05
        else rng.choice(["long", "short"]),
        "size": number(rng), "entry_price": number(rng), "collateral": number(rng),
        "fill_price": number(rng), "mark_price": number(rng), "counterparties": cps}
    if rng.random() < 0.3:  # a deficit, often: fill far on the wrong side, little collateral
        entry = Fraction(rng.randint(1, 10**6), 10 ** rng.randint(0, 4))
        fact["entry_price"] = f"{entry.numerator}"
        fact["fill_price"] = number(rng)
        fact["collateral"] = rng.choice(["0", "0.01", "1", number(rng)])
    return fact


def policy(rng: Random, method: str) -> Policy:
    if rng.random() < 0.5:
        share: FixedShare | VolatilityCurve = FixedShare(Fraction(rng.randint(0, 1000), 1000))
    else:
        share = VolatilityCurve(3, ((Fraction(0), Fraction(1, 3)), (Fraction(1, 20), Fraction(7, 9))))
    return Policy(version=1, minimum_reserve={"Q": rng.choice([0, 5, 10**9])},
                  per_event_cap={"Q": rng.randint(0, 10**6)} if rng.random() < 0.5 else {},
                  fee_cap_rate=Fraction(rng.randint(0, 10**8), 10**8), fund_share=share,
                  socialization=method, hash="h")


def outcome(fn: Any) -> Any:
    try:
        return fn()
    except LiquidationError as exc:
        return ("error", str(exc))


@settings(max_examples=1500, deadline=None)
@given(st.randoms(use_true_random=True), st.integers(0, 8), st.sampled_from(
    ["pro_rata_profit", "adl", "none"]), st.integers(0, 18))
def test_integer_path_equals_the_fraction_reference(rng: Random, n_cps: int, method: str,
                                                    decimals: int) -> None:
    fact = record(rng, n_cps)
    pol = policy(rng, method)
    balance = rng.choice([0, 10, 10**6, 10**40])
    prices = [Fraction(rng.randint(1, 10**6), 100) for _ in range(rng.randint(0, 5))]
    want = outcome(lambda: settle(LiquidationFact.from_record(fact, decimals), pol, balance,
                                  decimals, prices, asset="Q"))
    got = outcome(lambda: settle_record(fact, pol, balance, decimals, prices, asset="Q"))
    assert got == want
    if not isinstance(want, tuple):
        assert got.outcome(decimals) == want.outcome(decimals)
        assert got.events("Q", "trader", decimals) == want.events("Q", "trader", decimals)


def test_a_shortfall_by_adl_hand_computed() -> None:
    # long 2 @ 100, collateral 10, fill 90: delta = 10 - 20 = -10 -> D = 1000 units (d=2); no
    # fund: S = 1000. a: pnl 6, entry 50, coll 4 -> score 6/(50*10) = 0.012; b: pnl 8, entry 100,
    # coll 0 -> 8/(100*8) = 0.01. a first pays 600 units; qty 6/|90-95| = 1.2; b pays 400: 0.8.
    fact = {"id": "x", "account": "t", "market": "M", "side": "long", "size": "2",
            "entry_price": "100", "collateral": "10", "fill_price": "90", "mark_price": "90",
            "counterparties": [
                {"account": "b", "size": "3", "entry_price": "100", "unrealized_pnl": "8",
                 "collateral": "0"},
                {"account": "a", "size": "5", "entry_price": "50", "unrealized_pnl": "6.009",
                 "collateral": "4"}]}
    pol = Policy(1, {}, {}, Fraction(0), FixedShare(Fraction(1)), "adl", "h")
    result = settle_record(fact, pol, 0, 2, asset="Q")
    assert (result.deficit, result.socialized, result.unresolved) == (1000, 1000, 0)
    assert [(c.account, c.amount, c.adl_quantity) for c in result.clawbacks] == [
        ("a", 600, Fraction(6, 5)), ("b", 400, Fraction(4, 5))]
    assert result.bankruptcy_price == 95


@pytest.mark.parametrize("bad", [{"size": "0"}, {"side": "up"}, {"counterparties": [{}]}])
def test_bad_facts_fail_with_the_reference_error(bad: dict[str, Any]) -> None:
    fact = {"id": "x", "account": "t", "market": "M", "side": "long", "size": "2",
            "entry_price": "100", "collateral": "10", "fill_price": "90", "mark_price": "90",
            **bad}
    pol = Policy(1, {}, {}, Fraction(0), FixedShare(Fraction(1)), "adl", "h")
    with pytest.raises(LiquidationError) as want:
        LiquidationFact.from_record(fact, 2)
    with pytest.raises(LiquidationError) as got:
        settle_record(fact, pol, 0, 2, asset="Q")
    assert str(got.value) == str(want.value)
