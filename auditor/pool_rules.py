"""The auditor's own per-pool rules (format v2): claim caps, the waterfall, transfers.

Written from schemas/README.md ("Format v2 (pools)") alone, never from the ledger's code, so
the two check each other (tests/e2e/test_pools_differential.py). Amounts are integer units;
`None` is "no limit". Replay will feed these from the log: the balances it keeps per pool,
the claims it counts per market, the ADL states of `auditor/adl_rules.py`.
"""

from __future__ import annotations

import calendar
import time as _time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from auditor.formats.wire import TIME, format_amount

# Who pays a socialized amount: (units, method) -> [(account, units)] in payment order.
Clawbacks = Callable[[int, str], Sequence[tuple[str, int]]]


def tau(t: str) -> Fraction:
    """Seconds from the Unix epoch to the event time `t`, exactly (fraction digits kept)."""
    if TIME.fullmatch(t) is None:
        raise ValueError(f"{t!r} is not an event time")
    head, _, tail = t.rstrip("Z").partition(".")
    whole = calendar.timegm(_time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
    return Fraction(whole) + (Fraction(int(tail), 10 ** len(tail)) if tail else 0)


@dataclass(frozen=True)
class Cap:
    """A `claim_cap_set/1` in force: set at event `index`; None parts do not limit."""

    index: int
    total: int | None
    per_period: int | None
    period_seconds: int | None


def claim_room(cap: Cap | None, claims: Sequence[tuple[int, str, int]], t: str) -> int | None:
    """R before a liquidation at `t`; `claims` = (index, time, units) of the market's
    `deficit_covered/2` and `backstop_drawn/1` so far. None: no cap (R is ∞)."""
    if cap is None or (cap.total is None and cap.per_period is None):
        return None
    room: int | None = None
    if cap.total is not None:
        room = cap.total - sum(units for _, _, units in claims)
    if cap.per_period is not None:
        if cap.period_seconds is None:
            raise ValueError("per_period without period_seconds")
        size = cap.period_seconds
        start = (tau(t) // size) * size  # the period [start, start + P) holding t
        spent = sum(units for index, when, units in claims
                    if index > cap.index and start <= tau(when) < start + size)
        left = cap.per_period - spent
        room = left if room is None else min(room, left)
    assert room is not None
    return max(0, room)


@dataclass(frozen=True)
class Side:
    """A pool in the deficit's asset: id, balance, minimum reserve, whether it is in ADL."""

    pool: str
    balance: int
    reserve: int
    adl: bool


@dataclass
class Split:
    """What the rules say one deficit must produce (units)."""

    deficit: int
    fund_payment: int = 0
    backstop_payment: int = 0
    backstop_pool: str | None = None
    socialized: int = 0
    unresolved: int = 0
    method: str = "none"
    paid: list[tuple[str, int]] = field(default_factory=list)


def _min(values: Sequence[int | None]) -> int:
    return min(v for v in values if v is not None)


def waterfall(deficit: int, payer: Side, method: str, clawbacks: Clawbacks, *,
              cap: int | None, room: int | None,
              backstop: tuple[Side, int] | None) -> Split:
    """The split of `deficit` (> 0) paid by pool `payer`. `backstop` is (pool q, limit in the
    deficit's asset) when the payer's rule names that asset, else None."""
    out = Split(deficit, method="adl" if payer.adl else method)
    owed = deficit
    if payer.adl:  # the ranking first, on the whole deficit; the pool pays what is left
        out.paid = [(a, u) for a, u in clawbacks(deficit, "adl") if u > 0]
        owed = deficit - sum(u for _, u in out.paid)
    if owed > 0:
        free = payer.balance - payer.reserve
        free = max(0, free)
        out.fund_payment = _min([owed, free, cap, room])
        exhausted = out.fund_payment == free and out.fund_payment < owed
        if backstop is not None and exhausted and not backstop[0].adl:
            q, limit = backstop
            q_free = q.balance - q.reserve
            out.backstop_payment = _min([
                owed - out.fund_payment,
                None if room is None else room - out.fund_payment,
                limit,
                max(0, q_free),
            ])
            if out.backstop_payment > 0:
                out.backstop_pool = q.pool
    if payer.adl:
        out.unresolved = owed - out.fund_payment - out.backstop_payment
        out.socialized = deficit - owed + out.unresolved
        return out
    out.socialized = deficit - out.fund_payment - out.backstop_payment
    if out.socialized > 0:
        out.paid = [(a, u) for a, u in clawbacks(out.socialized, method) if u > 0]
    out.unresolved = out.socialized - sum(u for _, u in out.paid)
    return out


def split_error(s: Split, payer: Side, *, cap: int | None, room: int | None,
                backstop: tuple[Side, int] | None) -> str | None:
    """The first conservation or limit a recorded split breaks (schemas/README.md), or None."""
    free = max(0, payer.balance - payer.reserve)
    checks = [
        (s.fund_payment + s.backstop_payment + s.socialized == s.deficit,
         "fund_payment + backstop_payment + socialized != deficit"),
        (sum(u for _, u in s.paid) + s.unresolved == s.socialized,
         "clawbacks + unresolved != socialized"),
        (min(s.fund_payment, s.backstop_payment, s.unresolved) >= 0, "a negative amount"),
        (s.fund_payment <= free, "fund_payment exceeds the pool's available balance"),
        (cap is None or s.fund_payment <= cap, "fund_payment exceeds the per-event cap"),
        (room is None or s.fund_payment + s.backstop_payment <= room,
         f"the market's claim would exceed its cap (remaining {room})"),
    ]
    if s.backstop_payment:
        if backstop is None:
            return "backstop_drawn: the pool has no backstop in this asset"
        q, limit = backstop
        checks += [(s.backstop_payment <= limit, "backstop_drawn: above its limit"),
                   (s.backstop_payment <= max(0, q.balance - q.reserve),
                    "backstop_drawn: above the backstop's available balance")]
    for holds, reason in checks:
        if not holds:
            return reason
    return None


def transfer_error(balances: Mapping[str, Mapping[str, int]], from_pool: str, to_pool: str,
                   asset: str, units: int) -> str | None:
    """Why a `capital_transferred/1` is refused (`field: reason`), or None."""
    if from_pool not in balances:
        return f"from_pool: unknown pool {from_pool}"
    if to_pool not in balances:
        return f"to_pool: unknown pool {to_pool}"
    if from_pool == to_pool:
        return f"to_pool: the same pool as from_pool ({from_pool})"
    if units <= 0:
        return "amount: not positive"
    if units > balances[from_pool].get(asset, 0):
        return f"amount: takes pool {from_pool} below zero in {asset}"
    return None


def expected_events(s: Split, *, pool: str, market: str, asset: str, account: str,
                    decimals: int, limit: int | None,
                    adl: Sequence[tuple[str, str]] = ()) -> list[tuple[str, dict[str, object]]]:
    """The derived events a deficit's split calls for, in log order, each only when its amount
    is > 0. `adl` gives, per paying account, its (adl_quantity, adl_price) strings when the
    method is `adl` (pro rata and none: null)."""
    def amt(units: int) -> str:
        return format_amount(units, decimals)

    where: dict[str, object] = {"pool": pool, "market": market, "asset": asset}
    events: list[tuple[str, dict[str, object]]] = []
    if s.fund_payment:
        events.append(("deficit_covered", where | {"amount": amt(s.fund_payment), "account": account}))
    if s.backstop_payment:
        events.append(("backstop_drawn", {
            "pool": s.backstop_pool, "for_pool": pool, "market": market, "asset": asset,
            "amount": amt(s.backstop_payment), "account": account,
            "limit": None if limit is None else amt(limit)}))
    if s.socialized:
        events.append(("socialized_loss_assessed", where | {
            "amount": amt(s.socialized), "method": s.method, "unresolved": amt(s.unresolved)}))
    for k, (who, units) in enumerate(s.paid):
        qty, price = adl[k] if s.method == "adl" and k < len(adl) else (None, None)
        events.append(("clawback_charged", where | {
            "account": who, "amount": amt(units), "method": s.method,
            "adl_quantity": qty, "adl_price": price}))
    return events
