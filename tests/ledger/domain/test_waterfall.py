"""The liquidation waterfall, against hand-computed numbers and invariants (schemas/README.md)."""

from __future__ import annotations

from fractions import Fraction as F

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.formats.wire import format_amount, parse_amount
from ledger.domain.policy import Policy
from ledger.domain.waterfall import (
    Clawback,
    Counterparty,
    LiquidationError,
    LiquidationFact,
    adl_score,
    pro_rata,
    settle,
)

USDT = 2
BIG = 10**12  # a fund balance that never limits anything


def policy(fee_cap="0.005", share=None, reserve="0.00", cap=None, socialization="pro_rata_profit"):
    document = {
        "version": 1,
        "minimum_reserve": {"USDT": reserve},
        "fee_cap_rate": fee_cap,
        "fund_share": share or {"fixed": "1"},
        "socialization": socialization,
    }
    if cap is not None:
        document["per_event_cap"] = {"USDT": cap}
    return Policy.from_document(document, {"USDT": USDT})


def fact(fill, side="long", size="0.1", entry="60000", collateral="900", mark=None, cps=()):
    """A liquidation record (wire strings) turned into a fact; cps = (account, pnl[, size,
    entry, collateral]) tuples."""
    record = {
        "id": "liq-1", "time": "2020-03-12T00:00:00Z", "account": "trader", "market": "BTC-PERP",
        "side": side, "size": size, "entry_price": entry, "collateral": collateral,
        "fill_price": fill, "mark_price": mark or fill,
        "counterparties": [
            {"account": c[0], "unrealized_pnl": c[1], "size": c[2] if len(c) > 2 else "1",
             "entry_price": c[3] if len(c) > 3 else "50000",
             "collateral": c[4] if len(c) > 4 else "1000"}
            for c in cps
        ],
    }
    return LiquidationFact.from_record(record, USDT)


def run(liq, pol=None, balance=BIG, prices=()):
    return settle(liq, pol or policy(), balance, USDT, prices, asset="USDT")


# --- surplus: the liquidation fee ----------------------------------------------------------
# 0.1 BTC long, entry 60,000, collateral 900: bankruptcy = 60,000 - 900/0.1 = 51,000.
# delta = 900 + (fill - 60,000) * 0.1; fee cap = rate * fill * 0.1.

@pytest.mark.parametrize(
    ("fill", "fee", "remainder"),
    [
        ("56100", 2805, 48195),  # delta 510.00, cap 0.005 * 5,610 = 28.05
        ("51051", 510, 0),       # delta 5.10 < cap 25.5255: the fee takes the whole surplus
        ("51000", 0, 0),         # at bankruptcy: nothing to share, nothing owed
        ("56101", 2805, 48205),  # cap 28.0505 -> 28.05; remainder 510.10 - 28.05 = 482.05
    ],
)
def test_long_fee(fill, fee, remainder):
    s = run(fact(fill))
    assert s.bankruptcy_price == 51000
    assert (s.fee, s.remainder) == (fee, remainder)
    assert (s.deficit, s.fund_payment, s.unresolved) == (0, 0, 0)
    assert s.clawbacks == ()


def test_short_fee():
    # 0.1 short, entry 40,000, collateral 900: bankruptcy 49,000; delta at 44,100 = 490.00;
    # cap 0.005 * 4,410 = 22.05
    s = run(fact("44100", side="short", entry="40000"))
    assert s.bankruptcy_price == 49000
    assert s.delta == 490
    assert (s.fee, s.remainder) == (2205, 46795)


def test_higher_fee_cap():
    pol = policy(fee_cap="0.025")
    assert run(fact("56100"), pol).fee == 14025  # 0.025 * 5,610 = 140.25
    assert run(fact("44100", side="short", entry="40000"), pol).fee == 11025  # 0.025 * 4,410


def test_half_share_rounds_down():
    pol = policy(share={"fixed": "0.5"})
    assert run(fact("56100"), pol).fee == 1402  # 28.05 / 2 = 14.025 -> 14.02
    # cap 0.005 * 5,630 = 28.15, halved 14.075: floor 14.07 (half-even or half-up: 14.08)
    s = run(fact("56300"), pol)
    assert s.fee == 1407
    assert s.remainder == 53000 - 1407  # delta 900 - 370 = 530.00


def test_surplus_dust_stays_with_the_trader():
    # size 0.0001234 long at 56,100: delta = 900 - 3,900 * 0.0001234 = 899.51874;
    # cap = 0.005 * 56,100 * 0.0001234 = 0.0346137 -> fee 0.03; remainder floor(899.48874) = 899.48
    s = run(fact("56100", size="0.0001234"))
    assert s.delta == F("899.51874")
    assert (s.fee, s.remainder) == (3, 89948)
    assert s.outcome(USDT)["delta"] == "899.51"  # shown rounded down = fee + remainder


def test_surplus_outcome_on_the_wire():
    assert run(fact("56100")).outcome(USDT) == {
        "bankruptcy_price": "51000.00000000", "delta": "510.00", "fee": "28.05",
        "remainder": "481.95", "share": "1.000000000000", "volatility": "0.000000000000",
        "deficit": "0.00", "fund_payment": "0.00", "socialized": "0.00", "unresolved": "0.00",
        "method": "pro_rata_profit",
    }


def test_volatility_share_applies_to_the_fee():
    curve = {"window": 20, "breakpoints": [["0.00", "0.5"], ["0.02", "1"]]}
    pol = policy(share={"volatility": curve})
    # vol of 100 -> 102 -> 99.96 -> 100.9596 = (0.02 + 0.02 + 0.01) / 3 = 1/60; share 11/12
    prices = [F("100"), F("102"), F("99.96"), F("100.9596")]
    s = run(fact("56100"), pol, prices=prices)
    assert (s.share, s.volatility) == (F(11, 12), F(1, 60))
    assert s.fee == 2571  # 28.05 * 11 / 12 = 25.7125 -> 25.71
    out = s.outcome(USDT)
    assert (out["share"], out["volatility"]) == ("0.916666666667", "0.016666666667")


# --- deficit: the fund ---------------------------------------------------------------------

def test_fund_covers_a_deficit():
    s = run(fact("50490"))  # delta = 900 - 951 = -51.00
    assert (s.delta, s.deficit, s.fund_payment) == (-51, 5100, 5100)
    assert (s.socialized, s.unresolved) == (0, 0)
    assert s.outcome(USDT) == {
        "bankruptcy_price": "51000.00000000", "delta": "-51.00", "fee": "0.00",
        "remainder": "0.00", "share": "1.000000000000", "volatility": "0.000000000000",
        "deficit": "51.00", "fund_payment": "51.00", "socialized": "0.00", "unresolved": "0.00",
        "method": "pro_rata_profit",
    }


def test_fractional_deficit_rounds_up_and_displays_rounded_down():
    # 0.3 long, entry 60,000, collateral 1,000: bankruptcy 56,666.666...;
    # fill 56,000.55: delta = 1,000 - 3,999.45 * 0.3 = -199.835 -> D = 199.84
    s = run(fact("56000.55", size="0.3", collateral="1000"))
    assert s.bankruptcy_price == F(170000, 3)
    assert s.delta == F("-199.835")
    assert s.deficit == 19984
    out = s.outcome(USDT)
    assert (out["bankruptcy_price"], out["delta"], out["deficit"]) == (
        "56666.66666667", "-199.84", "199.84")


@pytest.mark.parametrize(
    ("balance", "reserve", "cap", "paid"),
    [
        (3000, "0.00", None, 3000),        # limited by the balance
        (3000, "10.00", None, 2000),       # by balance - minimum reserve
        (BIG, "0.00", "15.00", 1500),      # by the per-event cap
        (BIG, "0.00", "0.00", 0),          # a zero cap
        (500, "10.00", None, 0),           # balance below the reserve: nothing
        (1000, "10.00", None, 0),          # balance exactly at the reserve: nothing
        (BIG, "100.00", "1000.00", 5100),  # nothing limits: D itself
    ],
)
def test_fund_payment_limits(balance, reserve, cap, paid):
    s = run(fact("50490"), policy(reserve=reserve, cap=cap, socialization="none"), balance)
    assert s.deficit == 5100
    assert s.fund_payment == paid
    assert s.socialized == s.unresolved == 5100 - paid
    assert s.method == "none"
    assert s.clawbacks == ()


# --- socialization: pro rata of profit -----------------------------------------------------
# 1 BTC long, entry 60,000, collateral 9,000 (bankruptcy 51,000); the fund is empty.

def deficit_fact(fill, cps, **kwargs):
    return fact(fill, size="1", collateral="9000", cps=cps, **kwargs)


def test_pro_rata_shortfall_split_by_profit():
    s = run(deficit_fact("50900", [("p", "70.00"), ("q", "30.00")]), balance=0)
    assert (s.deficit, s.fund_payment, s.socialized, s.unresolved) == (10000, 0, 10000, 0)
    assert s.clawbacks == (Clawback("p", 7000), Clawback("q", 3000))


def test_pro_rata_tie_goes_to_the_lowest_account_id():
    s = run(deficit_fact("50999", [("c", "1.00"), ("b", "1.00"), ("a", "1.00")]), balance=0)
    assert s.socialized == 100
    assert s.clawbacks == (Clawback("a", 34), Clawback("b", 33), Clawback("c", 33))


def test_pro_rata_largest_remainder():
    # S = 7 units over profits 50, 30, 20: 3.5, 2.1, 1.4 -> 3, 2, 1 and the spare unit goes
    # to the largest remainder (z: 0.5), not to the lowest id.
    s = run(deficit_fact("50999.93", [("z", "0.50"), ("a", "0.30"), ("m", "0.20")]), balance=0)
    assert s.socialized == 7
    assert s.clawbacks == (Clawback("a", 2), Clawback("m", 1), Clawback("z", 4))


def test_pro_rata_shortfall_beyond_profits_is_unresolved():
    cps = [("p", "30.00"), ("q", "20.00"), ("loser", "-5.00"), ("flat", "0")]
    s = run(deficit_fact("50900", cps), balance=2000)  # fund pays 20.00 of D = 100.00
    assert (s.fund_payment, s.socialized) == (2000, 8000)
    assert s.clawbacks == (Clawback("p", 3000), Clawback("q", 2000))
    assert s.unresolved == 3000


def test_pro_rata_without_counterparties_leaves_it_unresolved():
    s = run(deficit_fact("50900", []), balance=0)
    assert (s.socialized, s.unresolved, s.clawbacks) == (10000, 10000, ())


def test_pro_rata_function():
    assert pro_rata(100, {"a": 100, "b": 100, "c": 100}) == [("a", 34), ("b", 33), ("c", 33)]
    assert pro_rata(1, {"b": 5, "a": 5}) == [("a", 1)]  # non-payers are not listed
    assert pro_rata(0, {"a": 5}) == []
    assert pro_rata(9, {"a": 4, "b": 0, "c": -3}) == [("a", 4)]


# --- socialization: auto-deleveraging ------------------------------------------------------
# Mark 50,000. score = (pnl / (entry*size)) * (mark*size / (collateral + pnl)):
#   a: (5000/55000) * (50000/10000)       = 1/11 * 5    = 5/11  (0.4545)
#   b: (1000/10400) * (10000/2000)        = 5/52 * 5    = 25/52 (0.4808)
#   c: (2000/102000) * (100000/50000)     = 1/51 * 2    = 2/51  (0.0392)
#   d: a loss, not eligible.
ADL_CPS = [
    ("a", "5000.00", "1", "55000", "5000"),
    ("c", "2000.00", "2", "51000", "48000"),
    ("b", "1000.00", "0.2", "52000", "1000"),
    ("d", "-300.00", "1", "45000", "1000"),
]


def test_adl_scores():
    liq = deficit_fact("48000", ADL_CPS, mark="50000")
    scores = {cp.account: adl_score(cp, liq.mark_price, USDT) for cp in liq.counterparties[:3]}
    assert scores == {"a": F(5, 11), "b": F(25, 52), "c": F(2, 51)}


def test_adl_charges_by_score():
    # fill 48,000: delta = 9,000 - 12,000 = -3,000.00; loss per contract |48,000 - 51,000| = 3,000
    s = run(deficit_fact("48000", ADL_CPS, mark="50000"), policy(socialization="adl"), balance=0)
    assert (s.deficit, s.socialized, s.unresolved, s.method) == (300000, 300000, 0, "adl")
    assert s.clawbacks == (
        Clawback("b", 100000, F("0.2"), F(51000)),          # 1000/3000 = 0.333, capped at 0.2
        Clawback("a", 200000, F("0.66666666"), F(51000)),   # 2000/3000, rounded down
    )
    assert s.clawbacks[1].data(USDT) == {
        "account": "a", "amount": "2000.00", "adl_quantity": "0.66666666",
        "adl_price": "51000.00000000"}


def test_adl_after_a_partial_fund_payment():
    s = run(deficit_fact("48000", ADL_CPS, mark="50000"), policy(socialization="adl"),
            balance=250000)
    assert (s.fund_payment, s.socialized) == (250000, 50000)
    assert s.clawbacks == (Clawback("b", 50000, F("0.16666666"), F(51000)),)  # 500/3000


def test_adl_shortfall_beyond_profits():
    # fill 40,000: D = 11,000.00, loss per contract 11,000
    s = run(deficit_fact("40000", ADL_CPS, mark="50000"), policy(socialization="adl"), balance=0)
    assert s.clawbacks == (
        Clawback("b", 100000, F("0.09090909"), F(51000)),
        Clawback("a", 500000, F("0.45454545"), F(51000)),
        Clawback("c", 200000, F("0.18181818"), F(51000)),
    )
    assert s.unresolved == 1100000 - 800000


def test_adl_ties_by_account_id():
    cps = [("y", "10.00"), ("x", "10.00")]
    s = run(deficit_fact("50990", cps), policy(socialization="adl"), balance=0)  # D = 10.00
    assert [(c.account, c.amount) for c in s.clawbacks] == [("x", 1000)]


# --- the wire record -----------------------------------------------------------------------

def test_from_record_floors_unrealized_pnl():
    liq = fact("50000", cps=[("a", "12.349"), ("b", "-0.001")])
    assert liq.counterparties == (
        Counterparty("a", F(1), F(50000), 1234, F(1000)),
        Counterparty("b", F(1), F(50000), -1, F(1000)),
    )
    assert (liq.id, liq.account, liq.market, liq.side) == ("liq-1", "trader", "BTC-PERP", "long")
    assert (liq.size, liq.entry_price, liq.collateral) == (F("0.1"), F(60000), F(900))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"side": "buy"}, "side: must be 'long' or 'short', got 'buy'"),
        ({"size": "0"}, "size: must be positive"),
        ({"size": "1e3"}, "size: not a decimal string: '1e3'"),
        ({"fill_price": 50000}, "fill_price: not a decimal string: 50000"),
        ({"fill_price": None}, "fill_price: missing"),
        ({"collateral": "-1"}, "collateral: must not be negative"),
        ({"account": ""}, "account: must be a non-empty string"),
        ({"counterparties": [{"account": "a", "size": "1", "entry_price": "1",
                              "unrealized_pnl": "x", "collateral": "0"}]},
         "counterparties.0.unrealized_pnl: not a decimal string: 'x'"),
        ({"counterparties": [{"account": "trader", "size": "1", "entry_price": "1",
                              "unrealized_pnl": "1", "collateral": "0"}]},
         "counterparties.0.account: is the liquidated account 'trader'"),
        ({"counterparties": [{"account": "a", "size": "1", "entry_price": "1",
                              "unrealized_pnl": "1", "collateral": "0"}] * 2},
         "counterparties.1.account: duplicate account 'a'"),
    ],
)
def test_from_record_errors_name_the_field(change, message):
    record = {"id": "liq-1", "account": "trader", "market": "BTC-PERP", "side": "long",
              "size": "0.1", "entry_price": "60000", "collateral": "900", "fill_price": "50000",
              "mark_price": "50000"}
    for key, value in change.items():
        if value is None:
            record.pop(key)
        else:
            record[key] = value
    with pytest.raises(LiquidationError) as info:
        LiquidationFact.from_record(record, USDT)
    assert str(info.value) == message


# --- properties ----------------------------------------------------------------------------

def decimal_text(units: int, places: int) -> str:
    return format_amount(units, places)


prices_st = st.integers(1, 10**9).map(lambda n: decimal_text(n, 3))  # 0.001 .. 1,000,000
counterparty_st = st.tuples(
    st.integers(-10**6, 10**12).map(lambda n: decimal_text(n, 4)),  # pnl, sub-unit digits
    st.integers(1, 10**6).map(lambda n: decimal_text(n, 3)),       # size
    prices_st,                                                      # entry
    st.integers(0, 10**9).map(lambda n: decimal_text(n, 2)),       # collateral
)


@st.composite
def scenarios(draw, deficit=False):
    """(fact, policy, balance); `deficit` draws fills beyond bankruptcy and profitable peers."""
    accounts = draw(st.lists(st.sampled_from("abcdefghij"), unique=True, min_size=int(deficit),
                             max_size=6))
    cps = [(a, *draw(counterparty_st)) for a in accounts]
    side = draw(st.sampled_from(["long", "short"]))
    size = draw(st.integers(1, 10**6))  # 0.0001 .. 100
    entry = draw(st.integers(1, 10**9))  # 0.001 .. 1,000,000
    collateral = draw(st.integers(0, 10**8))  # 0.00 .. 1,000,000.00
    if not deficit and draw(st.booleans()):
        fill = draw(st.integers(1, 10**9))
    else:  # near the bankruptcy price, where fees, deficits and socialization all happen
        per_contract = F(collateral, 100) / F(size, 10**4)
        bankruptcy = F(entry, 1000) + (-per_contract if side == "long" else per_contract)
        offset = draw(st.integers(1, 10**7) if deficit else st.integers(-10**7, 10**7))
        if deficit:  # beyond bankruptcy: below it for a long, above it for a short
            offset = -offset if side == "long" else offset
        fill = max(1, int(bankruptcy * 1000) + offset)
    liq = fact(
        decimal_text(fill, 3), side=side, size=decimal_text(size, 4),
        entry=decimal_text(entry, 3), collateral=decimal_text(collateral, 2),
        mark=draw(prices_st), cps=cps,
    )
    pol = policy(
        fee_cap=decimal_text(draw(st.integers(0, 1000)), 3),
        share={"fixed": decimal_text(draw(st.integers(0, 100)), 2)},
        reserve=decimal_text(draw(st.integers(0, 10**7)), 2),
        cap=draw(st.none() | st.integers(0, 10**8).map(lambda n: decimal_text(n, 2))),
        socialization=draw(st.sampled_from(["pro_rata_profit", "adl", "none"])),
    )
    balance = draw(st.just(0) | st.integers(0, 10**8 // (1 + 99 * deficit)))
    return liq, pol, balance


any_scenario = scenarios() | scenarios(deficit=True)


@settings(max_examples=300, deadline=None)
@given(any_scenario)
def test_money_is_conserved_and_bounded(scenario):
    liq, pol, balance = scenario
    s = run(liq, pol, balance)
    unit = F(1, 10**USDT)
    shown_delta = parse_amount(s.outcome(USDT)["delta"], USDT)
    if s.delta >= 0:
        assert (s.fee + s.remainder) * unit <= s.delta < (s.fee + s.remainder + 1) * unit
        assert 0 <= s.fee
        assert s.fee * unit <= pol.fee_cap_rate * liq.fill_price * liq.size
        assert (s.deficit, s.fund_payment, s.socialized, s.unresolved) == (0, 0, 0, 0)
        assert s.clawbacks == ()
        assert shown_delta == s.fee + s.remainder
    else:
        assert s.fee == s.remainder == 0
        assert s.deficit * unit >= -s.delta > (s.deficit - 1) * unit
        assert s.fund_payment + sum(c.amount for c in s.clawbacks) + s.unresolved == s.deficit
        assert s.socialized == s.deficit - s.fund_payment
        assert 0 <= s.fund_payment <= max(0, balance - pol.reserve("USDT"))
        cap = pol.cap("USDT")
        assert cap is None or s.fund_payment <= cap
        assert s.unresolved >= 0
        assert shown_delta == -s.deficit
    profit = {cp.account: cp.unrealized_pnl for cp in liq.counterparties}
    assert len({c.account for c in s.clawbacks}) == len(s.clawbacks)
    for c in s.clawbacks:
        assert 0 < c.amount <= profit[c.account]
        if c.adl_quantity is not None:
            size = next(cp.size for cp in liq.counterparties if cp.account == c.account)
            assert 0 <= c.adl_quantity <= size


@settings(max_examples=150, deadline=None)
@given(any_scenario, st.randoms(use_true_random=False))
def test_counterparty_order_does_not_matter(scenario, rnd):
    liq, pol, balance = scenario
    shuffled = list(liq.counterparties)
    rnd.shuffle(shuffled)
    other = LiquidationFact(**{**liq.__dict__, "counterparties": tuple(shuffled)})
    assert run(other, pol, balance) == run(liq, pol, balance)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**6), st.dictionaries(st.sampled_from("abcdefgh"), st.integers(-50, 10**5)))
def test_pro_rata_is_within_one_unit_of_exact(shortfall, profits):
    paid = dict(pro_rata(shortfall, profits))
    eligible = {a: p for a, p in profits.items() if p > 0}
    total = sum(eligible.values())
    assert sum(paid.values()) == min(shortfall, total)
    for account, amount in paid.items():
        assert 0 < amount <= eligible[account]
        if shortfall < total:
            assert abs(amount - F(shortfall * eligible[account], total)) < 1


@settings(max_examples=150, deadline=None)
@given(scenarios(deficit=True))
def test_adl_pays_in_score_order(scenario):
    liq, _, _ = scenario
    s = run(liq, policy(socialization="adl"), 0)
    by_account = {cp.account: cp for cp in liq.counterparties}
    keys = [(-adl_score(by_account[c.account], liq.mark_price, USDT), c.account)
            for c in s.clawbacks]
    assert keys == sorted(keys)
    # everyone but the last payer pays their whole profit
    for c in s.clawbacks[:-1]:
        assert c.amount == by_account[c.account].unrealized_pnl
