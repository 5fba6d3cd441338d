"""The auditor's own v2 rules against the hand-worked vectors of schemas/README.md "Format v2
(pools)": C1, W1-W6, T1/T2 and the strict comparisons, I1-I5 (the ledger's are checked against
the same numbers in tests/ledger/domain/, and against these in tests/e2e/test_pools_differential.py)."""

from __future__ import annotations

from fractions import Fraction as F

import pytest

from auditor.adl_rules import Rule, judge, peak_of
from auditor.inverse_rules import Holder, deleverage, derive, fee_split
from auditor.pool_rules import Cap, Side, claim_room, split_error, tau, transfer_error, waterfall

RULE = Rule("USDT", 28800, "-0.3", "-0.25", 10000)


def none(amount: int, method: str) -> list[tuple[str, int]]:
    return []


def test_tau_and_c1() -> None:
    assert tau("2026-01-01T00:00:00Z") == 20454 * 86400  # 56 years, 14 leap days
    assert tau("2026-01-01T23:59:59.5Z") == 20454 * 86400 + F(172799, 2)
    cap = Cap(5, None, 6000, 86400)
    claims = [(8, "2026-01-01T18:00:00Z", 4500)]
    assert claim_room(cap, claims, "2026-01-01T23:59:59.5Z") == 1500
    assert claim_room(cap, claims, "2026-01-02T00:00:00Z") == 6000
    assert claim_room(Cap(9, 4000, None, None), claims, "2026-01-02T00:00:00Z") == 0


@pytest.mark.parametrize(("balance", "room", "p_adl", "q_adl", "fund", "draw", "social"), [
    (10000, 4000, False, False, 4000, 0, 8000),    # W1
    (3000, 10000, False, False, 2000, 2500, 7500),  # W2
    (3000, 3000, False, False, 2000, 1000, 9000),   # W3
    (50000, None, False, False, 8000, 0, 4000),     # W4
    (3000, 10000, False, True, 2000, 0, 10000),     # W6
])
def test_w_vectors(balance, room, p_adl, q_adl, fund, draw, social) -> None:
    payer, backstop = Side("alt", balance, 1000, p_adl), (Side("shared", 100000, 10000, q_adl), 2500)
    s = waterfall(12000, payer, "pro_rata_profit", none, cap=8000, room=room, backstop=backstop)
    assert (s.fund_payment, s.backstop_payment, s.socialized, s.unresolved) == (fund, draw, social, social)
    assert split_error(s, payer, cap=8000, room=room, backstop=backstop) is None


def test_w5_and_what_split_error_refuses() -> None:
    payer = Side("alt", 10000, 1000, True)
    s = waterfall(12000, payer, "none", lambda amount, m: [("cp", min(amount, 5000))],
                  cap=8000, room=None, backstop=None)
    assert (s.paid, s.fund_payment, s.unresolved, s.socialized, s.method) == (
        [("cp", 5000)], 7000, 0, 5000, "adl")
    s.fund_payment = 9001  # a forged payment beyond the 90.00 available
    s.socialized -= 2001
    assert split_error(s, payer, cap=None, room=None, backstop=None) is not None
    assert transfer_error({"a": {"USDT": 5}, "b": {}}, "a", "b", "USDT", 6) == \
        "amount: takes pool a below zero in USDT"


def at(hhmm: str) -> str:
    return f"2026-01-01T{hhmm}:00Z"


def test_t1_and_t2() -> None:
    series = [(at("00:00"), 0), (at("00:00"), 0), (at("00:00"), 100000), (at("02:00"), 100000),
              (at("02:00"), 80000), (at("03:00"), 80000), (at("03:00"), 65000)]
    started = judge("main", "USDT", RULE, False, series, 0, 2, 1)
    assert started is not None and started.type == "adl_started"
    assert (started.data["peak_index"], started.data["ratio"]) == (2, "-0.350000000000")
    series += [(at("03:00"), 65000), (at("05:00"), 71000), (at("08:00"), 71000)]
    assert peak_of(series, 0, 28800) == (100000, 2, at("00:00"))  # t - W = 00:00 is inside
    assert judge("main", "USDT", RULE, True, series, 0, 2, 1) is None
    series.append((at("10:30"), 71000))
    ended = judge("main", "USDT", RULE, True, series, 0, 2, 1)
    assert ended is not None and ended.data["reason"] == "recovered"
    assert (ended.data["peak"], ended.data["peak_index"], ended.data["ratio"]) == (
        "800.00", 4, "-0.112500000000")
    low = [(at("00:00"), 100000), (at("01:00"), 9000)]  # T2: -0.91 but 90.00 <= 100.00
    assert judge("main", "USDT", RULE, False, low, 0, 2, 1) is None
    assert judge("main", "USDT", RULE, True, low, 0, 2, 1).data["reason"] == "below_minimum"


def test_the_comparisons_are_strict() -> None:
    assert judge("m", "USDT", RULE, False, [(at("00:00"), 100000), (at("01:00"), 70000)], 0, 2, 1) is None
    assert judge("m", "USDT", RULE, True, [(at("00:00"), 100000), (at("01:00"), 75000)], 0, 2, 1) is None
    assert judge("m", "USDT", RULE, False, [(at("00:00"), 100000), (at("01:00"), 69999)], 0, 2, 1) is not None


def test_i1_to_i5() -> None:
    i1 = derive("long", F(10000), F(1), F(50000), F(2, 1000), F(49000), 8)
    assert (i1.bankruptcy, i1.delta, i1.delta_units, i1.deficit) == (
        F(5000000, 101), F(-51, 24500), -208164, 208164)
    i2 = derive("long", F(10000), F(1), F(50000), F(2, 1000), F(49600), 8)
    assert fee_split(i2, F(10000), F(1), F(49600), F(5, 1000), F(1, 2), 8) == (19354, 19355)
    i3 = derive("short", F(10000), F(1), F(50000), F(2, 1000), F(51000), 8)
    assert (i3.bankruptcy, i3.deficit) == (F(5000000, 99), 192157)
    i4 = derive("short", F(1000), F(1), F(50000), F(3, 100), F(100000), 8)
    assert (i4.bankruptcy, i4.delta) == (None, F(2, 100))
    a = Holder("A", F(5000), F(52000), F(1, 100), F(15, 2548))
    b = Holder("B", F(20000), F(50500), F(1, 10), F(60, 4949))
    assert deleverage([b, a], 208164 - 150000, F(1), F(49000), F(49000), i1.bankruptcy, 8) == [
        ("A", 58164, F(279415294117, 10**8))]
