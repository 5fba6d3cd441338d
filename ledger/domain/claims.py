"""Claim caps: the most insurance pays for one market, in total and per period.

schemas/README.md, "Format v2 (pools)", "Claim caps and periods". A market's claims are the
amounts of its `deficit_covered/2` and `backstop_drawn/1` events; they never reset. Amounts
are integer minor units of the market's settlement asset; `None` stands for "no limit" (∞).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from ledger.domain.errors import FundRuleError
from ledger.domain.instants import epoch_seconds

MAX_PERIOD_SECONDS = 31_622_400  # 366 days, the contract's limit


@dataclass(frozen=True)
class Claim:
    """One payment insurance made for a market: the event's index, time and amount (units)."""

    index: int
    time: str
    amount: int


@dataclass(frozen=True)
class ClaimCap:
    """A market's cap as set by `claim_cap_set/1` at `index` (None: that part has no limit)."""

    index: int
    total: int | None = None
    per_period: int | None = None
    period_seconds: int | None = None

    def __post_init__(self) -> None:
        if (self.per_period is None) != (self.period_seconds is None):
            raise FundRuleError("per_period: per_period and period_seconds go together")
        if self.period_seconds is not None and not 1 <= self.period_seconds <= MAX_PERIOD_SECONDS:
            raise FundRuleError(f"period_seconds: {self.period_seconds} is not in 1..{MAX_PERIOD_SECONDS}")
        for name in ("total", "per_period"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise FundRuleError(f"{name}: must not be negative")

    @property
    def limits(self) -> bool:
        """Whether the cap limits anything (a cap with neither total nor per_period is none)."""
        return self.total is not None or self.per_period is not None


def period_number(time: str, period_seconds: int) -> int:
    """k of the period `[k·P, (k+1)·P)` holding `time`: epoch-aligned, start inclusive."""
    seconds: Fraction = epoch_seconds(time)
    return seconds.numerator // (seconds.denominator * period_seconds)  # floor, exactly


def remaining_claim(cap: ClaimCap | None, claims: Iterable[Claim], time: str) -> int | None:
    """R before a liquidation of the market at `time`: what its cap still lets insurance pay.

    `claims` are all of the market's claims so far (any pool, any earlier cap). None means
    no limit (no cap, or a cap without total and per_period). Never below 0.
    """
    if cap is None or not cap.limits:
        return None
    history = list(claims)
    terms: list[int] = []
    if cap.total is not None:
        terms.append(cap.total - sum(c.amount for c in history))
    if cap.per_period is not None and cap.period_seconds is not None:
        k = period_number(time, cap.period_seconds)
        in_period = sum(c.amount for c in history
                        if c.index > cap.index and period_number(c.time, cap.period_seconds) == k)
        terms.append(cap.per_period - in_period)
    return max(0, min(terms))
