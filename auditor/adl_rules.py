"""The auditor's own ADL trigger (format v2): recomputes every start and stop from the log.

Written from schemas/README.md ("Format v2 (pools)", "ADL trigger") alone. Deliberately the
plain definition over the whole series, index by index (no runs, no pruning), so that it
checks the ledger's compressed series rather than repeating it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from auditor.formats.wire import format_amount, format_decimal, parse_decimal
from auditor.pool_rules import tau


@dataclass(frozen=True)
class Rule:
    """A pool's `adl` rule as the policy document gives it (amount already in units)."""

    asset: str
    window_seconds: int
    start_ratio: str
    stop_ratio: str
    minimum_balance: int


@dataclass(frozen=True)
class Verdict:
    """An ADL event the rule calls for: its type and `data` (as the log must hold it)."""

    type: str
    data: dict[str, Any]
    ratio: Fraction | None  # exact, for the failure message


def peak_of(series: Sequence[tuple[str, int]], first: int, window: int) -> tuple[int, int, str]:
    """(peak, peak_index, peak_time) of the window ending at the series' last entry.

    `series[k]` is (time, balance) of event `first + k`: the pool's watched balance after
    every event from its creation index `first` on.
    """
    j = len(series) - 1
    bound = tau(series[j][0]) - window
    s = 0
    for k in range(j, -1, -1):  # the largest index whose time is at or before t - W
        if tau(series[k][0]) <= bound:
            s = k
            break
    best = s
    for k in range(s, j + 1):
        if series[k][1] > series[best][1]:
            best = k
    return series[best][1], first + best, series[best][0]


def judge(pool: str, asset: str, rule: Rule | None, in_adl: bool,
          series: Sequence[tuple[str, int]], first: int, decimals: int,
          policy_version: int) -> Verdict | None:
    """What the trigger calls for after a fact whose last event is the series' last entry.

    `asset` is the watched asset: the rule's, or (rule gone) the former rule's, whose series
    gives the balance an `adl_ended` with reason `policy` records."""
    window = peak_of(series, first, rule.window_seconds) if rule is not None else None
    return verdict(pool, asset, rule, in_adl, series[-1][1], window, decimals, policy_version)


def verdict(pool: str, asset: str, rule: Rule | None, in_adl: bool, balance: int,
            window: tuple[int, int, str] | None, decimals: int,
            policy_version: int) -> Verdict | None:
    """`judge` once the balance B(j) and the window's (peak, peak_index, peak_time) are known
    (`window` is None only without a rule)."""
    def units(x: int) -> str:
        return format_amount(x, decimals)

    if rule is None:
        if not in_adl:
            return None
        return Verdict("adl_ended", {
            "pool": pool, "asset": asset, "balance": units(balance), "peak": None, "peak_index": None,
            "peak_time": None, "window_seconds": None, "ratio": None, "stop_ratio": None,
            "reason": "policy", "policy_version": policy_version}, None)
    assert window is not None
    peak, peak_index, peak_time = window
    ratio = Fraction(balance - peak) / peak if peak > 0 else None
    shown = None if ratio is None else format_decimal(ratio, 12)
    common = {"pool": pool, "asset": rule.asset, "balance": units(balance), "peak": units(peak),
              "peak_index": peak_index, "peak_time": peak_time,
              "window_seconds": rule.window_seconds, "ratio": shown}
    above_minimum = balance > rule.minimum_balance
    if not in_adl:
        if ratio is not None and above_minimum and ratio < parse_decimal(rule.start_ratio):
            return Verdict("adl_started", {**common, "start_ratio": rule.start_ratio,
                                           "minimum_balance": units(rule.minimum_balance),
                                           "policy_version": policy_version}, ratio)
        return None
    if ratio is None or not above_minimum:
        reason = "below_minimum"
    elif ratio > parse_decimal(rule.stop_ratio):
        reason = "recovered"
    else:
        return None
    return Verdict("adl_ended", {**common, "stop_ratio": rule.stop_ratio, "reason": reason,
                                 "policy_version": policy_version}, ratio)
