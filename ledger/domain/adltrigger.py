"""The ADL trigger: a pool's drawdown from its peak over a trailing window, as state.

schemas/README.md, "Format v2 (pools)", "ADL trigger". `BalanceSeries` keeps one pool's
balance of the watched asset after every event (compressed: consecutive events at one time
with one balance are one run); `evaluate` is the state machine run after each fact. Exact
throughout: balances in units, times as exact epoch seconds, the ratio a Fraction.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from auditor.formats.wire import WireError, format_amount, format_decimal, parse_decimal
from ledger.domain.errors import PolicyError
from ledger.domain.instants import epoch_seconds

MAX_WINDOW_SECONDS = 31_622_400  # 366 days: no rule looks further back, so older runs go
RATIO_PLACES = 12


@dataclass(frozen=True)
class AdlRule:
    """A pool's `adl` policy rule; the ratios keep their strings, as the events record them."""

    asset: str
    window_seconds: int
    start_ratio: str
    stop_ratio: str
    minimum_balance: int

    def __post_init__(self) -> None:
        if not 1 <= self.window_seconds <= MAX_WINDOW_SECONDS:
            raise PolicyError(f"adl.window_seconds: {self.window_seconds} is not in 1..{MAX_WINDOW_SECONDS}")
        if not -1 <= self.start < self.stop <= 0:
            raise PolicyError("adl.start_ratio: must satisfy -1 <= start_ratio < stop_ratio <= 0")
        if self.minimum_balance < 0:
            raise PolicyError("adl.minimum_balance: must not be negative")

    @property
    def start(self) -> Fraction:
        return _ratio(self.start_ratio, "start_ratio")

    @property
    def stop(self) -> Fraction:
        return _ratio(self.stop_ratio, "stop_ratio")


def _ratio(text: str, name: str) -> Fraction:
    try:
        return parse_decimal(text)
    except WireError as exc:
        raise PolicyError(f"adl.{name}: {exc}") from None


@dataclass
class _Run:
    """Events `first..last`, all at time `time` (τ `seconds`) with the pool's balance `balance`."""

    first: int
    last: int
    time: str
    seconds: Fraction
    balance: int


@dataclass(frozen=True)
class Window:
    """The trailing window after event `index`: its balance, peak and ratio (None: peak 0)."""

    index: int
    balance: int
    peak: int
    peak_index: int
    peak_time: str
    ratio: Fraction | None


@dataclass
class BalanceSeries:
    """One pool's balance of one asset after each event from the pool's creation index on.

    `record` must be called for every event index in order (events of other pools too: their
    times place the window's start). Runs older than the largest window are dropped.
    """

    runs: list[_Run] = field(default_factory=list)
    _seconds: list[Fraction] = field(default_factory=list)  # runs' τ, for the window search

    def record(self, index: int, time: str, balance: int) -> None:
        """B(index) = `balance` at event time `time` (non-decreasing, as the v2 log's)."""
        if self.runs and index != self.runs[-1].last + 1:
            raise ValueError(f"event {index}: expected index {self.runs[-1].last + 1}")
        last = self.runs[-1] if self.runs else None
        if last is not None and last.time == time and last.balance == balance:
            last.last = index
            return
        seconds = epoch_seconds(time)
        if last is not None and seconds < last.seconds:
            raise ValueError(f"event {index}: time: earlier than event {index - 1}")
        self.runs.append(_Run(index, index, time, seconds, balance))
        self._seconds.append(seconds)
        self._prune(seconds - MAX_WINDOW_SECONDS)

    def _prune(self, horizon: Fraction) -> None:
        # Keep the last run at or before the horizon: it may be carried into any window.
        keep = bisect.bisect_right(self._seconds, horizon) - 1
        if keep > 64:  # in batches, so the list is not shifted on every event
            del self.runs[:keep], self._seconds[:keep]

    @property
    def last_balance(self) -> int:
        """B(j), the balance after the last recorded event."""
        if not self.runs:
            raise ValueError("no balance recorded")
        return self.runs[-1].balance

    def window(self, window_seconds: int) -> Window:
        """The window `[t - W, t]` after the last recorded event `j` (t its time)."""
        if not self.runs:
            raise ValueError("no balance recorded")
        end = self.runs[-1]
        start = bisect.bisect_right(self._seconds, end.seconds - window_seconds) - 1
        if start < 0:  # nothing at or before t - W: the window starts at the first event
            start, carried = 0, self.runs[0].first
        else:  # s is the largest index at or before t - W: the last of that run
            carried = self.runs[start].last
        peak, peak_index, peak_time = self.runs[start].balance, carried, self.runs[start].time
        for run in self.runs[start + 1:]:
            if run.balance > peak:  # strictly: the smallest index with the peak wins
                peak, peak_index, peak_time = run.balance, run.first, run.time
        ratio = Fraction(end.balance - peak, peak) if peak > 0 else None
        return Window(end.last, end.balance, peak, peak_index, peak_time, ratio)


@dataclass(frozen=True)
class Transition:
    """An `adl_started` or `adl_ended` the rule calls for after a fact."""

    type: str                 # "adl_started" or "adl_ended"
    reason: str | None        # adl_ended: recovered, below_minimum or policy
    balance: int              # B(j), of the rule's asset (for "policy": the former rule's)
    window: Window | None     # None for reason "policy" (no rule, no window)
    rule: AdlRule | None

    def data(self, pool: str, asset: str, decimals: int, policy_version: int) -> dict[str, Any]:
        """The event's `data`: `asset` is the watched one (for "policy", the former rule's),
        amounts with its decimals, the ratio half-even to 12 decimals."""
        w, rule = self.window, self.rule

        def amount(units: int) -> str:
            return format_amount(units, decimals)

        data: dict[str, Any] = {
            "pool": pool, "asset": asset, "balance": amount(self.balance),
            "peak": amount(w.peak) if w else None,
            "peak_index": w.peak_index if w else None,
            "peak_time": w.peak_time if w else None,
            "window_seconds": rule.window_seconds if rule else None,
            "ratio": format_decimal(w.ratio, RATIO_PLACES) if w and w.ratio is not None else None,
        }
        if self.type == "adl_started":
            assert rule is not None
            data |= {"start_ratio": rule.start_ratio,
                     "minimum_balance": amount(rule.minimum_balance)}
        else:
            data |= {"stop_ratio": rule.stop_ratio if rule else None, "reason": self.reason}
        return data | {"policy_version": policy_version}


def evaluate(rule: AdlRule | None, in_adl: bool, series: BalanceSeries) -> Transition | None:
    """The state machine after one fact: the transition the rule calls for, or None.

    `rule` is the pool's rule in the policy in force after the fact (None: none); `in_adl`
    the pool's state before; `series` its watched balance (when the rule is gone, the series
    of the former rule's asset, whose last balance the `adl_ended` records).
    """
    if rule is None:
        if not in_adl:
            return None
        return Transition("adl_ended", "policy", series.last_balance, None, None)
    w = series.window(rule.window_seconds)
    if not in_adl:
        if w.ratio is not None and w.balance > rule.minimum_balance and w.ratio < rule.start:
            return Transition("adl_started", None, w.balance, w, rule)
        return None
    if w.ratio is None or w.balance <= rule.minimum_balance:
        return Transition("adl_ended", "below_minimum", w.balance, w, rule)
    if w.ratio > rule.stop:
        return Transition("adl_ended", "recovered", w.balance, w, rule)
    return None
