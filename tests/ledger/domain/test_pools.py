"""Pools, transfers, claim caps and the per-pool waterfall, against the hand-worked examples of
schemas/README.md "Format v2 (pools)" (vectors C1, W1-W6, L1) and their invariants."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain.claims import Claim, ClaimCap, period_number, remaining_claim
from ledger.domain.errors import FundRuleError
from ledger.domain.pools import (
    Backstop,
    MarketSpec,
    Pool,
    PoolBalances,
    PoolTerms,
    Structure,
    split_deficit,
)
from ledger.domain.waterfall import Clawback, pro_rata

# 2026-01-01T00:00:00Z: 56 years after 1970 with 14 leap days (1972..2024) = 20454 days.
DAY_2026 = 20454
JAN1 = DAY_2026 * 86400  # 1767225600


def nobody(amount: int, method: str) -> list[Clawback]:
    """No counterparties listed: nothing is clawed back."""
    return []


# --- claim caps and periods (C1) -----------------------------------------------------------

def test_c1_the_period_is_epoch_aligned_start_inclusive_end_exclusive() -> None:
    assert JAN1 == 1767225600
    cap = ClaimCap(index=5, per_period=6000, period_seconds=86400)  # 60.00 USDT a day
    claims = [Claim(8, "2026-01-01T18:00:00Z", 4500)]               # 45.00 at 18:00
    # 18:00 is tau = JAN1 + 64800: k = floor(tau / 86400) = 20454.
    assert period_number("2026-01-01T18:00:00Z", 86400) == DAY_2026
    # 23:59:59.5Z: tau = JAN1 + 86399.5, still k = 20454: R = 60.00 - 45.00.
    assert period_number("2026-01-01T23:59:59.5Z", 86400) == DAY_2026
    assert remaining_claim(cap, claims, "2026-01-01T23:59:59.5Z") == 1500
    # 2026-01-02T00:00:00Z: tau = 20455 * 86400 exactly, the next period's first instant.
    assert period_number("2026-01-02T00:00:00Z", 86400) == DAY_2026 + 1
    assert remaining_claim(cap, claims, "2026-01-02T00:00:00Z") == 6000


def test_claims_never_reset_but_a_new_cap_starts_its_own_period_count() -> None:
    claims = [Claim(3, "2026-01-01T01:00:00Z", 4000), Claim(9, "2026-01-01T02:00:00Z", 1000)]
    # A cap set at index 6: the total counts both claims (50.00), the period only index 9.
    cap = ClaimCap(index=6, total=7000, per_period=3000, period_seconds=3600 * 24)
    assert remaining_claim(cap, claims, "2026-01-01T03:00:00Z") == min(7000 - 5000, 3000 - 1000)
    lowered = ClaimCap(index=10, total=4500)  # below the 50.00 claimed: R = 0, never negative
    assert remaining_claim(lowered, claims, "2026-01-01T03:00:00Z") == 0
    assert remaining_claim(None, claims, "2026-01-01T03:00:00Z") is None
    assert remaining_claim(ClaimCap(index=10), claims, "2026-01-01T03:00:00Z") is None


def test_a_cap_needs_per_period_and_period_seconds_together() -> None:
    with pytest.raises(FundRuleError, match="per_period"):
        ClaimCap(index=1, per_period=100)
    with pytest.raises(FundRuleError, match="period_seconds"):
        ClaimCap(index=1, per_period=100, period_seconds=31_622_401)


# --- the per-pool waterfall (W1-W6) ---------------------------------------------------------
# USDT (2 decimals): pool alt, reserve 10.00, per-event cap 80.00; backstop shared with limit
# 25.00, balance 1000.00, reserve 100.00; deficit D = 120.00; no counterparties.

D = 12000
SHARED = PoolTerms("shared", balance=100000, reserve=10000)


def alt_split(balance: int, remaining: int | None, *, alt_adl: bool = False,
              shared_adl: bool = False, socialize=nobody, method: str = "pro_rata_profit"):
    backstop = Backstop(PoolTerms("shared", 100000, 10000, in_adl=shared_adl), limit=2500)
    return split_deficit(D, PoolTerms("alt", balance, 1000, in_adl=alt_adl), method=method,
                         socialize=socialize, cap=8000, remaining=remaining, backstop=backstop)


@pytest.mark.parametrize(("vector", "balance", "remaining", "fund", "draw", "socialized"), [
    # available 90.00; min(120, 90, 80, 40) = 40.00 stops at R, not at 90: not exhausted.
    ("W1", 10000, 4000, 4000, 0, 8000),
    # available 20.00 = min(120, 20, 80, 100): exhausted; draw min(100, 80, 25, 900) = 25.00.
    ("W2", 3000, 10000, 2000, 2500, 7500),
    # R 30.00: draw min(120 - 20, 30 - 20, 25, 900) = 10.00.
    ("W3", 3000, 3000, 2000, 1000, 9000),
    # available 490.00, the cap binds at 80.00 (80 != 490): no draw.
    ("W4", 50000, None, 8000, 0, 4000),
])
def test_w1_to_w4(vector, balance, remaining, fund, draw, socialized) -> None:
    s = alt_split(balance, remaining)
    assert (s.fund_payment, s.backstop_payment, s.socialized, s.unresolved) \
        == (fund, draw, socialized, socialized)
    assert s.backstop_pool == ("shared" if draw else None)
    assert s.method == "pro_rata_profit" and s.adl_mode is False


def test_w5_a_pool_in_adl_claws_back_first_then_pays_the_rest() -> None:
    def one_counterparty(amount: int, method: str) -> list[Clawback]:
        assert (amount, method) == (D, "adl")  # the ranking runs on the whole deficit
        return [Clawback("cp", min(amount, 5000))]  # pnl 50.00

    s = alt_split(10000, None, alt_adl=True, socialize=one_counterparty)
    # clawback 50.00, rest 70.00 = min(70, 90, 80): 70 != 90, no draw.
    assert (s.fund_payment, s.backstop_payment, s.unresolved, s.socialized) == (7000, 0, 0, 5000)
    assert s.method == "adl" and s.adl_mode is True
    assert [(c.account, c.amount) for c in s.clawbacks] == [("cp", 5000)]


def test_w6_a_backstop_in_adl_is_not_drawn() -> None:
    s = alt_split(3000, 10000, shared_adl=True)
    assert (s.fund_payment, s.backstop_payment, s.socialized) == (2000, 0, 10000)


def test_w2_events_and_balances() -> None:
    s = alt_split(3000, 10000)
    assert s.events(pool="alt", market="ALT-PERP", asset="USDT", account="acct-9", decimals=2,
                    limit=2500) == [
        ("deficit_covered", {"pool": "alt", "market": "ALT-PERP", "asset": "USDT",
                             "amount": "20.00", "account": "acct-9"}),
        ("backstop_drawn", {"pool": "shared", "for_pool": "alt", "market": "ALT-PERP",
                            "asset": "USDT", "amount": "25.00", "account": "acct-9",
                            "limit": "25.00"}),
        ("socialized_loss_assessed", {"pool": "alt", "market": "ALT-PERP", "asset": "USDT",
                                      "amount": "75.00", "method": "pro_rata_profit",
                                      "unresolved": "75.00"}),
    ]
    before = PoolBalances({"alt": {"USDT": 3000}, "shared": {"USDT": 100000}})
    after = s.apply(before, "alt", "USDT")
    assert (after.of("alt", "USDT"), after.of("shared", "USDT")) == (1000, 97500)  # 10.00, 975.00
    assert after.fund_total("USDT") == 103000 - 2000 - 2500


def test_l1_linear_numbers_are_v1s_in_pool_default() -> None:
    # D 200.00, pool 150.00: S 50.00 pro rata over A 33.33 and B 66.67 (P = 100.00):
    # A 5000*3333 = 1666*10000 + 5000, B 5000*6667 = 3333*10000 + 5000; the one unit left
    # goes to the tied remainders' first account by id: A 16.67, B 33.33.
    def by_profit(amount: int, method: str) -> list[Clawback]:
        return [Clawback(a, u) for a, u in pro_rata(amount, {"A": 3333, "B": 6667})]

    s = split_deficit(20000, PoolTerms("default", 15000), method="pro_rata_profit",
                      socialize=by_profit)
    assert (s.fund_payment, s.socialized, s.unresolved) == (15000, 5000, 0)
    assert [(c.account, c.amount) for c in s.clawbacks] == [("A", 1667), ("B", 3333)]
    assert s.claim_remaining is None and s.backstop_pool is None


def test_an_empty_pool_is_exhausted_and_draws() -> None:
    s = split_deficit(500, PoolTerms("alt", 0), method="none", socialize=nobody,
                      backstop=Backstop(PoolTerms("shared", 300), limit=1000))
    assert (s.fund_payment, s.backstop_payment, s.socialized) == (0, 300, 200)


# --- structure and transfers ----------------------------------------------------------------

def test_an_isolated_pool_holds_one_market_and_markets_move() -> None:
    s = Structure().add_pool(Pool("shared", "shared")).add_pool(Pool("alt", "isolated"))
    s = s.assign("ALT-PERP", "alt", MarketSpec("linear", "USDT"))
    with pytest.raises(FundRuleError, match="isolated pool alt already holds market ALT-PERP"):
        s.assign("DOGE-PERP", "alt", MarketSpec("linear", "USDT"))
    moved = s.assign("ALT-PERP", "shared")
    assert moved.assignment == {"ALT-PERP": "shared"} and moved.markets_of("alt") == []
    with pytest.raises(FundRuleError, match="pool: pool alt exists"):
        s.add_pool(Pool("alt", "shared"))
    with pytest.raises(FundRuleError, match="market: unknown market BTC-PERP"):
        s.assign("BTC-PERP", "shared")
    with pytest.raises(FundRuleError, match="kind"):
        Pool("x", "private")


def test_a_transfer_moves_one_amount() -> None:
    b = PoolBalances({"shared": {"USDT": 100000}, "alt": {"USDT": 0}})
    after = b.transfer("shared", "alt", "USDT", 50000)
    assert (after.of("shared", "USDT"), after.of("alt", "USDT")) == (50000, 50000)
    assert after.fund_total("USDT") == 100000
    with pytest.raises(FundRuleError, match="amount: 100001 units exceed pool shared's balance"):
        b.transfer("shared", "alt", "USDT", 100001)
    with pytest.raises(FundRuleError, match="to_pool"):
        b.transfer("alt", "alt", "USDT", 1)
    with pytest.raises(FundRuleError, match="below zero"):
        b.change("alt", "USDT", -1)


# --- invariants -----------------------------------------------------------------------------

limits = st.one_of(st.none(), st.integers(0, 10**6))


@st.composite
def waterfalls(draw: st.DrawFn):
    p = PoolTerms("p", draw(st.integers(0, 10**6)), draw(st.integers(0, 10**5)),
                  in_adl=draw(st.booleans()))
    backstop = None
    if draw(st.booleans()):
        backstop = Backstop(PoolTerms("q", draw(st.integers(0, 10**6)), draw(st.integers(0, 10**5)),
                                      in_adl=draw(st.booleans())), draw(st.integers(0, 10**6)))
    profits = draw(st.dictionaries(st.sampled_from("abcdef"), st.integers(-100, 10**6), max_size=5))
    return (draw(st.integers(1, 2 * 10**6)), p, backstop, draw(limits), draw(limits), profits,
            draw(st.sampled_from(["pro_rata_profit", "adl", "none"])))


@settings(max_examples=400, deadline=None)
@given(waterfalls())
def test_splits_conserve_respect_every_limit_and_keep_pools_non_negative(case) -> None:
    deficit, p, backstop, cap, remaining, profits, method = case

    def socialize(amount: int, how: str) -> list[Clawback]:
        if how == "none":
            return []
        if how == "pro_rata_profit":
            return [Clawback(a, u) for a, u in pro_rata(amount, profits)]
        out, left = [], amount  # a greedy ranking, as the ADL method pays
        for account in sorted(profits):
            if left and profits[account] > 0:
                out.append(Clawback(account, min(left, profits[account])))
                left -= out[-1].amount
        return out

    s = split_deficit(deficit, p, method=method, socialize=socialize, cap=cap,
                      remaining=remaining, backstop=backstop)
    assert s.fund_payment + s.backstop_payment + s.socialized == deficit
    assert sum(c.amount for c in s.clawbacks) + s.unresolved == s.socialized
    assert min(s.fund_payment, s.backstop_payment, s.unresolved) >= 0
    assert s.fund_payment <= p.available
    assert cap is None or s.fund_payment <= cap
    assert remaining is None or s.fund_payment + s.backstop_payment <= remaining  # claims
    if s.backstop_payment:
        assert backstop is not None and not backstop.terms.in_adl
        assert s.backstop_payment <= min(backstop.limit, backstop.terms.available)
        assert s.fund_payment == p.available  # only an exhausted pool draws
    balances = PoolBalances({"p": {"A": p.balance}, "q": {"A": backstop.terms.balance if backstop else 0}})
    after = s.apply(balances, "p", "A")  # raises if a pool went below zero
    assert after.fund_total("A") == balances.fund_total("A") - s.fund_payment - s.backstop_payment


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("abc"), st.integers(-5, 500)),
                max_size=30), st.integers(0, 1000))
def test_transfers_create_no_money(moves, start) -> None:
    b = PoolBalances({"a": {"A": start}, "b": {"A": 0}, "c": {"A": 0}})
    for src, dst, amount in moves:
        try:
            b = b.transfer(src, dst, "A", amount)
        except FundRuleError:
            continue  # refused: nothing changed
        assert min(b.of(x, "A") for x in "abc") >= 0
    assert b.fund_total("A") == start


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.integers(0, 5000)), st.integers(0, 3000),
       st.sampled_from([60, 3600, 86400]),
       st.lists(st.tuples(st.integers(0, 5000), st.integers(1, 4000)), min_size=1, max_size=25))
def test_a_markets_claims_never_exceed_its_cap(total, per_period, period, deficits) -> None:
    # A rich pool with a small reserve and a backstop: only the cap limits what is paid.
    cap = ClaimCap(index=0, total=total, per_period=per_period, period_seconds=period)
    claims: list[Claim] = []
    seconds = JAN1
    for gap, deficit in deficits:
        seconds += gap
        when = f"2026-01-{1 + (seconds - JAN1) // 86400:02d}T" + \
            "{:02d}:{:02d}:{:02d}Z".format(*divmod_hms((seconds - JAN1) % 86400))
        room = remaining_claim(cap, claims, when)
        s = split_deficit(deficit, PoolTerms("p", 10**6, 100), method="none", socialize=nobody,
                          remaining=room, backstop=Backstop(PoolTerms("q", 10**6), 10**6))
        index = len(claims) + 1
        claims += [Claim(index, when, x) for x in (s.fund_payment, s.backstop_payment) if x]
    assert total is None or sum(c.amount for c in claims) <= total
    by_period: dict[int, int] = {}
    for c in claims:
        k = period_number(c.time, period)
        by_period[k] = by_period.get(k, 0) + c.amount
    assert all(spent <= per_period for spent in by_period.values())


def divmod_hms(seconds: int) -> tuple[int, int, int]:
    hours, rest = divmod(seconds, 3600)
    return hours, *divmod(rest, 60)
