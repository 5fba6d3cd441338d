"""The auditor's own inverse-market rules (format v2): everything in the settlement coin.

Written from schemas/README.md ("Format v2 (pools)", "Inverse (coin-margined) markets")
alone. Exact rationals; every rounding is integer arithmetic on numerator and denominator,
named where it happens (floor to units, ceil to units, floor to 8 decimals).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

QTY_PLACES = 8


def _floor(x: Fraction, places: int) -> int:
    scale: int = 10**places
    return (x.numerator * scale) // x.denominator


def _ceil(x: Fraction, places: int) -> int:
    scale: int = 10**places
    return -((-x.numerator * scale) // x.denominator)


@dataclass(frozen=True)
class Inverse:
    """What the rules derive from an inverse liquidation (units of the coin; exact B)."""

    pnl: Fraction
    delta: Fraction
    bankruptcy: Fraction | None  # None: a short that cannot go bankrupt
    delta_units: int             # floor_u(delta), the outcome's delta
    deficit: int                 # ceil_u(-delta) when delta < 0, else 0


def derive(side: str, n: Fraction, face: Fraction, entry: Fraction, collateral: Fraction,
           fill: Fraction, decimals: int) -> Inverse:
    """PnL, delta, bankruptcy price and deficit of an inverse position closed at `fill`."""
    if side not in ("long", "short"):
        raise ValueError(f"side: {side!r}")
    nf = n * face
    pnl = nf / entry - nf / fill if side == "long" else nf / fill - nf / entry
    delta = collateral + pnl
    ce = collateral * entry
    bankruptcy: Fraction | None
    if side == "long":
        bankruptcy = nf * entry / (nf + ce)       # 1/B = 1/E + C/(n·F)
    else:
        bankruptcy = nf * entry / (nf - ce) if ce < nf else None  # 1/B = 1/E - C/(n·F)
    return Inverse(pnl, delta, bankruptcy, _floor(delta, decimals),
                   _ceil(-delta, decimals) if delta < 0 else 0)


def fee_split(d: Inverse, n: Fraction, face: Fraction, fill: Fraction, cap_rate: Fraction,
              share: Fraction, decimals: int) -> tuple[int, int]:
    """(fee, remainder) of a surplus: the fee cap is the rate on n·F/X, the notional in coin."""
    cap = cap_rate * n * face / fill
    fee = _floor((min(cap, d.delta)) * share, decimals)
    return fee, _floor(d.delta, decimals) - fee


@dataclass(frozen=True)
class Holder:
    """A counterparty: size in contracts, entry, collateral and pnl in coin (pnl exact)."""

    account: str
    size: Fraction
    entry: Fraction
    collateral: Fraction
    pnl: Fraction


def score(h: Holder, face: Fraction, mark: Fraction, decimals: int) -> Fraction:
    """Profit % x effective leverage with the pnl floored to units, notionals in coin."""
    p = Fraction(_floor(h.pnl, decimals), 10**decimals)
    return (p * h.entry / (h.size * face)) * (h.size * face / mark) / (h.collateral + p)


def deleverage(holders: Sequence[Holder], amount: int, face: Fraction, mark: Fraction,
               fill: Fraction, bankruptcy: Fraction, decimals: int) -> list[tuple[str, int, Fraction]]:
    """(account, units paid, quantity floored to 8 decimals) in ADL order, for `amount` units."""
    ranked = sorted((h for h in holders if _floor(h.pnl, decimals) > 0),
                    key=lambda h: (-score(h, face, mark, decimals), h.account))
    gap = face * abs(Fraction(1) / fill - Fraction(1) / bankruptcy)  # coin per contract
    left, out = amount, []
    for h in ranked:
        if left <= 0:
            break
        units = min(left, _floor(h.pnl, decimals))
        qty = Fraction(units, 10**decimals) / gap
        qty = min(qty, h.size)
        out.append((h.account, units, Fraction(_floor(qty, QTY_PLACES), 10**QTY_PLACES)))
        left -= units
    return out
