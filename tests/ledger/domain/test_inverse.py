"""Inverse (coin-margined) markets against the hand-worked XBTUSD vectors I1-I5 of
schemas/README.md "Format v2 (pools)" and BitMEX's documented arithmetic, and their invariants."""

from __future__ import annotations

from fractions import Fraction as F

from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.formats.wire import format_amount, format_decimal
from ledger.domain.inverse import (
    InversePosition,
    adl_clawbacks,
    adl_score,
    deficit,
    displayed_delta,
    surplus,
)
from ledger.domain.pools import PoolTerms, split_deficit
from ledger.domain.waterfall import Counterparty, LiquidationFact

XBT = 8
ONE_USD = F(1)


def position(side: str, n: str, entry: str, collateral: str, fill: str) -> InversePosition:
    fact = LiquidationFact.from_record({
        "id": "liq", "account": "trader", "market": "XBTUSD", "side": side, "size": n,
        "entry_price": entry, "collateral": collateral, "fill_price": fill, "mark_price": fill,
    }, XBT)
    return InversePosition.of(fact, ONE_USD)


def test_bitmex_futures_example() -> None:
    # Long 100,000 contracts at 10,000 sold at 10,500: 100000 * (1/10000 - 1/10500) = 10/21 XBT.
    p = position("long", "100000", "10000", "0", "10500")
    assert p.pnl(F(10500)) == F(10, 21)
    assert displayed_delta(p, XBT) == 47619047  # 0.47619047 XBT, floored (BitMEX: ~0.4762)


def test_i1_long_deficit() -> None:
    p = position("long", "10000", "50000", "0.002", "49000")
    # 1/B = 1/50000 + 0.002/10000 = 0.0000202: B = 5000000/101.
    assert p.bankruptcy_price == F(5000000, 101)
    assert format_decimal(p.bankruptcy_price, 8) == "49504.95049505"
    assert p.pnl(F(49000)) == F(2, 10) - F(10, 49) == F(-1, 245)
    assert p.delta == F(2, 1000) - F(1, 245) == F(-51, 24500)
    assert format_amount(displayed_delta(p, XBT), XBT) == "-0.00208164"  # floor of -208163.27
    assert deficit(p, XBT) == 208164                                       # ceil of 208163.27
    # Cross-check: n·F·(1/X - 1/B) = 10000 * (1/49000 - 101/5000000) = 51/24500.
    assert 10000 * (F(1, 49000) - F(101, 5000000)) == -p.delta


def test_i2_long_surplus() -> None:
    p = position("long", "10000", "50000", "0.002", "49600")
    assert p.delta == F(2, 1000) - F(1, 620) == F(3, 7750)
    # Fee cap 0.005 * 10000/49600 = 1/992 > delta: fee = floor(3/7750 / 2 * 1e8) = 19354.
    assert F(5, 1000) * 10000 / 49600 == F(1, 992) > p.delta
    assert surplus(p, F(5, 1000), F(1, 2), XBT) == (19354, 38709 - 19354)
    assert format_amount(displayed_delta(p, XBT), XBT) == "0.00038709"


def test_i3_short_deficit() -> None:
    p = position("short", "10000", "50000", "0.002", "51000")
    assert p.bankruptcy_price == F(5000000, 99)  # C·E = 100 < 10000: 1/B = 0.0000198
    assert format_decimal(p.bankruptcy_price, 8) == "50505.05050505"
    assert p.delta == F(2, 1000) - F(1, 255)
    assert deficit(p, XBT) == 192157  # ceil(192156.86...)


def test_i4_a_short_with_enough_collateral_has_no_bankruptcy_price() -> None:
    p = position("short", "1000", "50000", "0.03", "100000")  # C·E = 1500 >= n·F = 1000
    assert p.bankruptcy_price is None
    assert p.pnl(F(100000)) == F(-1, 100) and p.delta == F(2, 100)
    assert deficit(p, XBT) == 0 and displayed_delta(p, XBT) == 2000000


def test_i5_adl_in_xbt() -> None:
    p = position("long", "10000", "50000", "0.002", "49000")
    mark = F(49000)
    # A: 5000 * (1/49000 - 1/52000) = 15/2548 XBT -> 588697 sat; B: 60/4949 -> 1212366 sat.
    assert 5000 * (F(1, 49000) - F(1, 52000)) == F(15, 2548)
    assert 20000 * (F(1, 49000) - F(1, 50500)) == F(60, 4949)
    a = Counterparty("A", F(5000), F(52000), 588697, F(1, 100))
    b = Counterparty("B", F(20000), F(50500), 1212366, F(1, 10))
    pa, pb = F(588697, 10**8), F(1212366, 10**8)
    score_a = (pa / F(5000, 52000)) * (F(5000, 49000) / (F(1, 100) + pa))
    score_b = (pb / F(20000, 50500)) * (F(20000, 49000) / (F(1, 10) + pb))
    assert adl_score(a, ONE_USD, mark, XBT) == score_a
    assert adl_score(b, ONE_USD, mark, XBT) == score_b
    assert F(39323, 100000) < score_a < F(39325, 100000) and F(11143, 100000) < score_b < F(11145, 100000)

    def ranking(amount: int, method: str):
        return adl_clawbacks(p, [b, a], mark, amount, XBT)

    s = split_deficit(deficit(p, XBT), PoolTerms("btc", 150000), method="adl", socialize=ranking)
    assert (s.deficit, s.fund_payment, s.socialized, s.unresolved) == (208164, 150000, 58164, 0)
    (claw,) = s.clawbacks  # A ranks first and covers it all; B pays nothing
    # quantity 0.00058164 / (51/245000000) = 237503/85 = 2794.152941..., floored to 8 decimals.
    assert F(58164, 10**8) / F(51, 245000000) == F(237503, 85)
    assert claw.data(XBT) == {"account": "A", "amount": "0.00058164",
                              "adl_quantity": "2794.15294117", "adl_price": "49504.95049505"}


sizes = st.integers(1, 10**6).map(F)
prices = st.integers(1000, 200000).map(F)
collaterals = st.integers(0, 10**8).map(lambda u: F(u, 10**XBT))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["long", "short"]), sizes, prices, collaterals, prices,
       st.integers(0, 100).map(lambda r: F(r, 1000)), st.integers(0, 4).map(lambda s: F(s, 4)))
def test_roundings_bound_the_exact_delta(side, n, entry, collateral, fill, rate, share) -> None:
    p = InversePosition(side, n, entry, collateral, fill, ONE_USD)
    scaled = p.delta * 10**XBT
    if p.delta >= 0:
        fee, remainder = surplus(p, rate, share, XBT)
        assert fee >= 0 and fee + remainder <= scaled < fee + remainder + 1
        assert fee + remainder == displayed_delta(p, XBT)
    else:
        d = deficit(p, XBT)
        assert d - 1 < -scaled <= d and displayed_delta(p, XBT) == -d
    b = p.bankruptcy_price
    if b is None:  # such a short never has a deficit, at any fill
        assert side == "short" and collateral * entry >= n and p.delta > 0
    else:  # delta = n·F·(1/B - 1/X) (long), n·F·(1/X - 1/B) (short)
        gap = n * (1 / b - 1 / fill)
        assert p.delta == (gap if side == "long" else -gap)


def test_l2_linear_markets_keep_v1s_rules() -> None:
    from ledger.domain.policy import Policy
    from ledger.domain.waterfall import settle

    # Long 2 at 30000, collateral 3000.00, fill 29800: delta = 3000 + (29800 - 30000) * 2 =
    # 2600.00; fee cap 0.005 * 29800 * 2 = 298 -> fee floor(298 * 0.5) = 149.00.
    fact = LiquidationFact.from_record({
        "id": "l2", "account": "t", "market": "BTC-PERP", "side": "long", "size": "2",
        "entry_price": "30000", "collateral": "3000", "fill_price": "29800",
        "mark_price": "29800"}, 2)
    policy = Policy.from_document({"version": 1, "minimum_reserve": {}, "fee_cap_rate": "0.005",
                                   "fund_share": {"fixed": "0.5"},
                                   "socialization": "pro_rata_profit"}, {"USDT": 2})
    s = settle(fact, policy, 0, 2, asset="USDT")
    assert (s.delta, s.fee, s.remainder) == (2600, 14900, 260000 - 14900)
