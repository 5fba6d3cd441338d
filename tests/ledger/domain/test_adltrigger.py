"""The ADL trigger against the hand-worked vectors T1 and T2 of schemas/README.md "Format v2
(pools)", and its edge rules: the closed window, strict comparisons, the minimum balance."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain.adltrigger import AdlRule, BalanceSeries, evaluate
from ledger.domain.errors import PolicyError

RULE = AdlRule(asset="USDT", window_seconds=28800, start_ratio="-0.3", stop_ratio="-0.25",
               minimum_balance=10000)


def at(hhmm: str) -> str:
    return f"2026-01-01T{hhmm}:00Z"


def test_t1() -> None:
    series, in_adl, log = BalanceSeries(), False, []

    def fact(time: str, *balances: int) -> None:
        """Record a fact's events, then evaluate; an ADL event is appended at the fact's time."""
        nonlocal in_adl
        for b in balances:
            series.record(len(log), time, b)
            log.append(b)
        change = evaluate(RULE, in_adl, series)
        if change is not None:
            events.append((len(log), change.type, change.data("main", "USDT", 2, 1)))
            series.record(len(log), time, log[-1])
            log.append(log[-1])
            in_adl = change.type == "adl_started"

    events: list = []
    fact(at("00:00"), 0)            # 0 fund_opened/2
    fact(at("00:00"), 0)            # 1 policy_set/2 (the rule)
    fact(at("00:00"), 100000)       # 2 capital_injected/2 1000.00
    assert series.window(28800).ratio == 0
    fact(at("02:00"), 100000, 80000)  # 3, 4: -200/1000 = -0.2: not below -0.3
    assert series.window(28800).ratio == Fraction(-1, 5) and events == []
    fact(at("03:00"), 80000, 65000)   # 5, 6: -350/1000 = -0.35 < -0.3 and 650 > 100
    assert events == [(7, "adl_started", {
        "pool": "main", "asset": "USDT", "balance": "650.00", "peak": "1000.00", "peak_index": 2,
        "peak_time": "2026-01-01T00:00:00Z", "window_seconds": 28800, "ratio": "-0.350000000000",
        "start_ratio": "-0.3", "minimum_balance": "100.00", "policy_version": 1})]
    fact(at("05:00"), 71000)          # 8: -290/1000 = -0.29, not above -0.25
    w = series.window(28800)
    assert (w.peak, w.peak_index, w.ratio) == (100000, 2, Fraction(-29, 100))
    fact(at("08:00"), 71000)          # 9: t - W = 00:00, inclusive: s = 2 (last of 0-2)
    w = series.window(28800)
    assert (w.peak, w.peak_index, w.peak_time) == (100000, 2, at("00:00"))
    assert len(events) == 1
    fact(at("10:30"), 71000)          # 10: t - W = 02:30: s = 4, peak 800.00
    assert events[1:] == [(11, "adl_ended", {
        "pool": "main", "asset": "USDT", "balance": "710.00", "peak": "800.00", "peak_index": 4,
        "peak_time": "2026-01-01T02:00:00Z", "window_seconds": 28800, "ratio": "-0.112500000000",
        "stop_ratio": "-0.25", "reason": "recovered", "policy_version": 1})]
    assert in_adl is False


def series_of(*points: tuple[str, int]) -> BalanceSeries:
    s = BalanceSeries()
    for i, (time, balance) in enumerate(points):
        s.record(i, time, balance)
    return s


def test_t2_at_or_below_the_minimum_balance_no_start_and_adl_ends() -> None:
    s = series_of((at("00:00"), 100000), (at("01:00"), 9000))  # 90.00 under peak 1000.00
    assert s.window(28800).ratio == Fraction(-91, 100)           # -0.91, far below -0.3
    assert evaluate(RULE, False, s) is None                      # but 90.00 <= 100.00
    ended = evaluate(RULE, True, s)
    assert ended is not None and (ended.type, ended.reason) == ("adl_ended", "below_minimum")
    exactly = series_of((at("00:00"), 100000), (at("01:00"), 10000))  # 100.00 is not above
    assert evaluate(RULE, False, exactly) is None


def test_the_comparisons_are_strict() -> None:
    at_start = series_of((at("00:00"), 100000), (at("01:00"), 70000))  # ratio exactly -0.3
    assert evaluate(RULE, False, at_start) is None
    at_stop = series_of((at("00:00"), 100000), (at("01:00"), 75000))   # exactly -0.25
    assert evaluate(RULE, True, at_stop) is None
    empty = series_of((at("00:00"), 0))                                  # peak 0: undefined
    assert evaluate(RULE, False, empty) is None
    ended = evaluate(RULE, True, empty)
    assert ended is not None and ended.reason == "below_minimum"
    assert ended.data("main", "USDT", 2, 3)["ratio"] is None


def test_a_rule_gone_ends_adl_with_reason_policy() -> None:
    s = series_of((at("00:00"), 100000), (at("01:00"), 50000))
    assert evaluate(None, False, s) is None
    ended = evaluate(None, True, s)
    assert ended is not None and ended.data("main", "USDT", 2, 4) == {
        "pool": "main", "asset": "USDT", "balance": "500.00", "peak": None, "peak_index": None,
        "peak_time": None, "window_seconds": None, "ratio": None, "stop_ratio": None,
        "reason": "policy", "policy_version": 4}


def test_the_carried_in_balance_is_the_last_event_at_or_before_the_window_start() -> None:
    # 1000.00 from index 0 (00:00); index 1 at 01:00 leaves it (another pool's event); a loss at
    # 05:00. Window 4 h at 05:00 starts at 01:00: s = 1, so the peak is dated index 1, 01:00.
    s = series_of((at("00:00"), 100000), (at("01:00"), 100000), (at("05:00"), 60000))
    w = s.window(4 * 3600)
    assert (w.peak, w.peak_index, w.peak_time, w.ratio) == (100000, 1, at("01:00"), Fraction(-2, 5))
    # Window 4 h 30 min starts at 00:30: s = 0.
    assert s.window(4 * 3600 + 1800).peak_index == 0
    # Window 3 h starts at 02:00: s = 1 still (its balance is carried in).
    assert s.window(3 * 3600).peak_index == 1


def test_fraction_seconds_are_exact() -> None:
    s = series_of(("2026-01-01T00:00:00.5Z", 100000), ("2026-01-01T00:00:10.5Z", 50000))
    assert s.window(10).peak_index == 0      # 00:00:00.5 <= 00:00:10.5 - 10: carried in
    s2 = series_of(("2026-01-01T00:00:00.500001Z", 100000), ("2026-01-01T00:00:10.5Z", 50000))
    assert s2.window(10).peak_index == 0     # none at or before: the window starts at c


def test_the_rule_is_checked() -> None:
    with pytest.raises(PolicyError, match="start_ratio"):
        AdlRule("USDT", 60, "-0.2", "-0.3", 0)
    with pytest.raises(PolicyError, match="window_seconds"):
        AdlRule("USDT", 0, "-0.3", "-0.2", 0)


def test_times_may_not_go_back_and_indexes_not_skip() -> None:
    s = series_of((at("01:00"), 1))
    with pytest.raises(ValueError, match="earlier"):
        s.record(1, at("00:59"), 1)
    with pytest.raises(ValueError, match="expected index 1"):
        s.record(2, at("02:00"), 1)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400 * 86400), st.integers(0, 1000)), min_size=1,
                max_size=120), st.integers(1, 31_622_400))
def test_pruning_old_runs_never_changes_a_window(steps, window) -> None:
    # Steps far apart (up to 400 days) make the series drop runs; a fresh series fed only the
    # events since the window's carried-in index must agree with it.
    times, balances, t = [], [], 1767225600
    for dt, b in steps:
        t += dt
        times.append(t)
        balances.append(b)
    def stamp(seconds: int) -> str:
        from datetime import UTC, datetime
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    full = BalanceSeries()
    for i, (sec, b) in enumerate(zip(times, balances, strict=True)):
        full.record(i, stamp(sec), b)
    w = full.window(window)
    j = len(times) - 1
    s = max([i for i in range(j + 1) if times[i] <= times[j] - window], default=0)
    peak = max(balances[s:])
    assert (w.peak, w.peak_index) == (peak, balances.index(peak, s))
