"""Inverse (coin-margined) markets: PnL, bankruptcy, surplus, deficit and ADL in the coin.

schemas/README.md, "Format v2 (pools)", "Inverse (coin-margined) markets". A contract is worth
`face_value` units of the quote currency; margin, PnL and every amount are in the settlement
coin. Prices and sizes are exact Fractions; amounts are integer minor units of the coin
(`decimals`), and the roundings are the ones named: `floor` to units for the fee, the
remainder and the displayed delta, `ceil` for the deficit, `floor_8` for an ADL quantity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from ledger.domain.waterfall import ADL_QUANTITY_PLACES, Clawback, Counterparty, LiquidationFact


@dataclass(frozen=True)
class InversePosition:
    """A liquidated inverse position: the fact's exact numbers and the market's face value."""

    side: str
    size: Fraction
    entry_price: Fraction
    collateral: Fraction
    fill_price: Fraction
    face_value: Fraction

    @classmethod
    def of(cls, fact: LiquidationFact, face_value: Fraction) -> InversePosition:
        """The position of a liquidation fact (already checked: positive prices and size)."""
        if face_value <= 0:
            raise ValueError("face_value must be positive")
        return cls(fact.side, fact.size, fact.entry_price, fact.collateral, fact.fill_price,
                   face_value)

    @property
    def contracts_value(self) -> Fraction:
        """n·F, the position's size in the quote currency."""
        return self.size * self.face_value

    def pnl(self, price: Fraction) -> Fraction:
        """Exact PnL in coin when closed at `price`: long n·F·(1/E - 1/P), short mirrored."""
        gain = self.contracts_value * (1 / self.entry_price - 1 / price)
        return gain if self.side == "long" else -gain

    @property
    def delta(self) -> Fraction:
        """Equity left at the fill, in coin: C + PnL(X). Positive is a surplus."""
        return self.collateral + self.pnl(self.fill_price)

    @property
    def bankruptcy_price(self) -> Fraction | None:
        """The price where delta is 0; None for a short whose collateral covers n·F/E."""
        nf, ce = self.contracts_value, self.collateral * self.entry_price
        if self.side == "long":
            return nf * self.entry_price / (nf + ce)
        if ce >= nf:  # its loss stays below n·F/E <= C at every price
            return None
        return nf * self.entry_price / (nf - ce)


def surplus(position: InversePosition, fee_cap_rate: Fraction, share: Fraction,
            decimals: int) -> tuple[int, int]:
    """`(fee, remainder)` in units for a surplus (delta >= 0): the fee is floored from
    min(delta, rate · n·F/X) · share; the remainder is floor(delta) - fee (dust stays)."""
    delta = position.delta
    if delta < 0:
        raise ValueError("not a surplus")
    scale = 10**decimals
    cap = fee_cap_rate * position.contracts_value / position.fill_price  # notional in coin
    fee = math.floor(min(delta, cap) * share * scale)
    return fee, math.floor(delta * scale) - fee


def deficit(position: InversePosition, decimals: int) -> int:
    """D = ceil_u(-delta) in units (0 when there is none): the winning side is paid whole."""
    scale: int = 10**decimals
    return max(0, math.ceil(-position.delta * scale))


def displayed_delta(position: InversePosition, decimals: int) -> int:
    """The outcome's delta in units: floor_u, as v1 (so it is fee + remainder, or -D)."""
    scale: int = 10**decimals
    return math.floor(position.delta * scale)


def adl_score(cp: Counterparty, face_value: Fraction, mark_price: Fraction, decimals: int) -> Fraction:
    """Profit % x effective leverage in coin: (p/(n·F/E)) · ((n·F/M)/(C + p)), p floored pnl."""
    pnl = Fraction(cp.unrealized_pnl, 10**decimals)
    notional = cp.size * face_value
    return (pnl / (notional / cp.entry_price)) * ((notional / mark_price) / (cp.collateral + pnl))


def adl_clawbacks(position: InversePosition, counterparties: Sequence[Counterparty],
                  mark_price: Fraction, amount: int, decimals: int) -> tuple[Clawback, ...]:
    """The ADL ranking for `amount` units: highest score first (ties by account id), each
    paying min(remaining, pnl); quantity floor_8(min(n_i, paid / (F·|1/X - 1/B|))) at B."""
    bankruptcy = position.bankruptcy_price
    if bankruptcy is None:
        raise ValueError("a position without a bankruptcy price has no deficit to deleverage")
    eligible = [cp for cp in counterparties if cp.unrealized_pnl > 0]
    eligible.sort(key=lambda cp: (-adl_score(cp, position.face_value, mark_price, decimals),
                                  cp.account))
    loss_per_contract = position.face_value * abs(1 / position.fill_price - 1 / bankruptcy)
    places = 10**ADL_QUANTITY_PLACES
    out: list[Clawback] = []
    remaining = amount
    for cp in eligible:
        if remaining == 0:
            break
        paid = min(remaining, cp.unrealized_pnl)
        quantity = min(cp.size, Fraction(paid, 10**decimals) / loss_per_contract)
        out.append(Clawback(cp.account, paid, Fraction(math.floor(quantity * places), places),
                            bankruptcy))
        remaining -= paid
    return tuple(out)
