"""The liquidation waterfall: fee on a surplus; fund, then socialization, on a deficit.

Pure functions over exact numbers, implementing schemas/README.md "Liquidation rules" for
linear perpetuals. Amounts are integer minor units of the market's quote asset; prices, sizes
and the unrounded delta are Fractions. Nothing here does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from auditor.formats.wire import WireError, format_amount, format_decimal, parse_decimal
from ledger.domain.errors import LiquidationError
from ledger.domain.policy import Policy

SIDES = ("long", "short")
ADL_QUANTITY_PLACES = 8


@dataclass(frozen=True)
class Counterparty:
    """A profitable or opposite-side account at the time of the liquidation.

    `unrealized_pnl` is in minor units of the quote asset, floored (see `from_record`).
    """

    account: str
    size: Fraction
    entry_price: Fraction
    unrealized_pnl: int
    collateral: Fraction


@dataclass(frozen=True)
class LiquidationFact:
    """A liquidation as reported by the exchange, in exact numbers."""

    id: str
    account: str
    market: str
    side: str
    size: Fraction
    entry_price: Fraction
    collateral: Fraction
    fill_price: Fraction
    mark_price: Fraction
    counterparties: tuple[Counterparty, ...] = ()

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise LiquidationError(f"side: must be 'long' or 'short', got {self.side!r}")
        for name in ("size", "entry_price", "fill_price", "mark_price"):
            if getattr(self, name) <= 0:
                raise LiquidationError(f"{name}: must be positive")
        if self.collateral < 0:
            raise LiquidationError("collateral: must not be negative")
        seen: set[str] = set()
        for i, cp in enumerate(self.counterparties):
            where = f"counterparties.{i}"
            if cp.account == self.account:
                raise LiquidationError(f"{where}.account: is the liquidated account {cp.account!r}")
            if cp.account in seen:
                raise LiquidationError(f"{where}.account: duplicate account {cp.account!r}")
            seen.add(cp.account)
            if cp.size <= 0 or cp.entry_price <= 0:
                raise LiquidationError(f"{where}: size and entry_price must be positive")
            if cp.collateral < 0:
                raise LiquidationError(f"{where}.collateral: must not be negative")

    @classmethod
    def from_record(cls, record: Mapping[str, Any], decimals: int) -> LiquidationFact:
        """Build a fact from its wire dict (a `liquidation` exchange fact).

        Prices, sizes and collateral are exact decimal strings. A counterparty's
        `unrealized_pnl` is converted to minor units of the quote asset (`decimals`) by
        **floor**, as the contract's eligibility rule says ("in units, floored"); any sub-unit
        part is ignored. `type` and `time` are not part of the fact and are ignored.
        """
        counterparties = tuple(
            Counterparty(
                account=_text(cp, "account", f"counterparties.{i}"),
                size=_decimal(cp, "size", f"counterparties.{i}"),
                entry_price=_decimal(cp, "entry_price", f"counterparties.{i}"),
                unrealized_pnl=math.floor(
                    _decimal(cp, "unrealized_pnl", f"counterparties.{i}") * 10**decimals
                ),
                collateral=_decimal(cp, "collateral", f"counterparties.{i}"),
            )
            for i, cp in enumerate(_list(record, "counterparties"))
        )
        return cls(
            id=_text(record, "id"),
            account=_text(record, "account"),
            market=_text(record, "market"),
            side=_text(record, "side"),
            size=_decimal(record, "size"),
            entry_price=_decimal(record, "entry_price"),
            collateral=_decimal(record, "collateral"),
            fill_price=_decimal(record, "fill_price"),
            mark_price=_decimal(record, "mark_price"),
            counterparties=counterparties,
        )

    @property
    def bankruptcy_price(self) -> Fraction:
        """Exact price at which the position's equity is zero."""
        per_contract = self.collateral / self.size
        if self.side == "long":
            return self.entry_price - per_contract
        return self.entry_price + per_contract

    @property
    def delta(self) -> Fraction:
        """Exact equity left at the fill: positive is a surplus, negative a deficit."""
        move = self.fill_price - self.entry_price
        if self.side == "short":
            move = -move
        return self.collateral + move * self.size


@dataclass(frozen=True)
class Clawback:
    """One account's charge towards a socialized loss, in payment order."""

    account: str
    amount: int
    adl_quantity: Fraction | None = None
    adl_price: Fraction | None = None

    def data(self, decimals: int) -> dict[str, Any]:
        """Wire fields of `clawback_charged` owned by the waterfall (amount string, ADL fill).

        `adl_quantity` is already rounded down to 8 decimals; `adl_price` (the exact
        bankruptcy price) is shown rounded half-even to 8 decimals, like `bankruptcy_price`.
        """
        qty, price = self.adl_quantity, self.adl_price
        adl = qty is not None and price is not None
        return {
            "account": self.account,
            "amount": format_amount(self.amount, decimals),
            "adl_quantity": format_decimal(qty, 8) if qty is not None and adl else None,
            "adl_price": format_decimal(price, 8) if price is not None and adl else None,
        }


@dataclass(frozen=True)
class Settlement:
    """The computed outcome of one liquidation. Amounts are minor units of the quote asset."""

    bankruptcy_price: Fraction
    delta: Fraction
    fee: int
    remainder: int
    share: Fraction
    volatility: Fraction
    deficit: int
    fund_payment: int
    socialized: int
    unresolved: int
    method: str
    clawbacks: tuple[Clawback, ...] = ()

    def outcome(self, decimals: int) -> dict[str, Any]:
        """The wire `outcome` object of `liquidation_settled`.

        Amounts are amount strings with `decimals` decimals. `delta` is shown **rounded down
        (toward minus infinity) to units**, so the displayed value is exactly
        `fee + remainder` on a surplus and exactly `-deficit` on a deficit; the exact delta is
        recomputable from the fact. `bankruptcy_price` is rounded half-even to 8 decimals,
        `share` and `volatility` half-even to 12 (display only).
        """
        return {
            "bankruptcy_price": format_decimal(self.bankruptcy_price, 8),
            "delta": format_amount(math.floor(self.delta * 10**decimals), decimals),
            "fee": format_amount(self.fee, decimals),
            "remainder": format_amount(self.remainder, decimals),
            "share": format_decimal(self.share, 12),
            "volatility": format_decimal(self.volatility, 12),
            "deficit": format_amount(self.deficit, decimals),
            "fund_payment": format_amount(self.fund_payment, decimals),
            "socialized": format_amount(self.socialized, decimals),
            "unresolved": format_amount(self.unresolved, decimals),
            "method": self.method,
        }

    def events(self, asset: str, account: str, decimals: int) -> list[tuple[str, dict[str, Any]]]:
        """The events derived from the liquidation, as `(type, data)` in log order: its fee
        inflow, or the fund's payment, the socialized loss and each clawback (schemas/README.md,
        "Events"). `account` is the liquidated account."""
        def amount(units: int) -> str:
            return format_amount(units, decimals)

        out: list[tuple[str, dict[str, Any]]] = []
        if self.fee > 0:
            out.append(("fee_inflow", {"kind": "liquidation_fee", "asset": asset,
                                       "amount": amount(self.fee), "account": account}))
        if self.fund_payment > 0:
            out.append(("deficit_covered", {"asset": asset, "amount": amount(self.fund_payment),
                                            "account": account}))
        if self.socialized > 0:
            out.append(("socialized_loss_assessed", {
                "asset": asset, "amount": amount(self.socialized), "method": self.method,
                "unresolved": amount(self.unresolved)}))
        out.extend(("clawback_charged", {"asset": asset, **claw.data(decimals), "method": self.method})
                   for claw in self.clawbacks)
        return out


def settle(
    fact: LiquidationFact,
    policy: Policy,
    balance: int,
    decimals: int,
    prices: Sequence[Fraction] = (),
    *,
    asset: str,
) -> Settlement:
    """Apply `policy` to `fact`.

    `asset` is the market's quote asset (it selects the policy's minimum reserve and per-event
    cap), `decimals` its decimals, `balance` the fund's current balance of it in minor units,
    and `prices` the market's observed mark prices before the liquidation (oldest first; used
    only by a volatility fund share). `method` is always the policy's socialization method.
    The result does not depend on the order of `fact.counterparties`.
    """
    scale = 10**decimals
    delta = fact.delta
    share, vol = policy.share(prices)

    def settlement(**amounts: Any) -> Settlement:
        return Settlement(bankruptcy_price=fact.bankruptcy_price, delta=delta, share=share,
                          volatility=vol, method=policy.socialization, **amounts)

    if delta >= 0:
        fee_cap = policy.fee_cap_rate * fact.fill_price * fact.size
        fee = math.floor(min(delta, fee_cap) * share * scale)
        remainder = math.floor(delta * scale) - fee  # sub-unit dust stays with the trader
        return settlement(fee=fee, remainder=remainder, deficit=0, fund_payment=0,
                          socialized=0, unresolved=0)

    deficit = math.ceil(-delta * scale)  # the winning side is paid in full units
    limits = [deficit, max(0, balance - policy.reserve(asset))]
    cap = policy.cap(asset)
    if cap is not None:
        limits.append(cap)
    fund_payment = min(limits)
    shortfall = deficit - fund_payment

    clawbacks: tuple[Clawback, ...] = ()
    if shortfall > 0 and policy.socialization == "pro_rata_profit":
        profits = {cp.account: cp.unrealized_pnl for cp in fact.counterparties}
        clawbacks = tuple(Clawback(a, amount) for a, amount in pro_rata(shortfall, profits))
    elif shortfall > 0 and policy.socialization == "adl":
        clawbacks = _adl(fact, shortfall, decimals)
    return settlement(fee=0, remainder=0, deficit=deficit, fund_payment=fund_payment,
                      socialized=shortfall,
                      unresolved=shortfall - sum(c.amount for c in clawbacks),
                      clawbacks=clawbacks)


def pro_rata(shortfall: int, profits: Mapping[str, int]) -> list[tuple[str, int]]:
    """Split `shortfall` units over positive `profits` (units) by largest remainder.

    Returns ``(account, amount)`` for each paying account, by ascending account id. When the
    shortfall reaches the total profit, everyone pays their whole profit (the caller counts
    the rest as unresolved). Left-over units go one each to the largest remainders
    ``(S * p_i) mod P``, ties by ascending account id; nobody pays more than their profit.
    """
    eligible = {a: p for a, p in profits.items() if p > 0}
    total = sum(eligible.values())
    if shortfall <= 0 or total == 0:
        return []
    if shortfall >= total:
        return sorted(eligible.items())
    amounts = {a: shortfall * p // total for a, p in eligible.items()}
    left_over = shortfall - sum(amounts.values())
    by_remainder = sorted(eligible, key=lambda a: (-(shortfall * eligible[a] % total), a))
    for account in by_remainder[:left_over]:
        amounts[account] += 1
    return [(a, amounts[a]) for a in sorted(amounts) if amounts[a] > 0]


def adl_score(cp: Counterparty, mark_price: Fraction, decimals: int) -> Fraction:
    """Profit % x effective leverage: ``(pnl/(entry*size)) * (mark*size/(collateral+pnl))``.

    `pnl` is the floored unrealized profit in quote currency; only call for pnl > 0.
    """
    pnl = Fraction(cp.unrealized_pnl, 10**decimals)
    return (pnl / (cp.entry_price * cp.size)) * (mark_price * cp.size / (cp.collateral + pnl))


def _adl(fact: LiquidationFact, shortfall: int, decimals: int) -> tuple[Clawback, ...]:
    """Charge profitable accounts by descending ADL score until `shortfall` is covered."""
    eligible = [cp for cp in fact.counterparties if cp.unrealized_pnl > 0]
    eligible.sort(key=lambda cp: (-adl_score(cp, fact.mark_price, decimals), cp.account))
    bankruptcy = fact.bankruptcy_price
    loss_per_contract = abs(fact.fill_price - bankruptcy)  # > 0 whenever there is a deficit
    places = 10**ADL_QUANTITY_PLACES
    clawbacks = []
    remaining = shortfall
    for cp in eligible:
        if remaining == 0:
            break
        paid = min(remaining, cp.unrealized_pnl)
        quantity = min(cp.size, Fraction(paid, 10**decimals) / loss_per_contract)
        quantity = Fraction(math.floor(quantity * places), places)  # rounded down, as recorded
        clawbacks.append(Clawback(cp.account, paid, quantity, bankruptcy))
        remaining -= paid
    return tuple(clawbacks)


def _text(record: Mapping[str, Any], key: str, where: str = "") -> str:
    path = f"{where}.{key}" if where else key
    if key not in record:
        raise LiquidationError(f"{path}: missing")
    value = record[key]
    if not isinstance(value, str) or not value:
        raise LiquidationError(f"{path}: must be a non-empty string")
    return value


def _decimal(record: Mapping[str, Any], key: str, where: str = "") -> Fraction:
    path = f"{where}.{key}" if where else key
    if key not in record:
        raise LiquidationError(f"{path}: missing")
    try:
        return parse_decimal(record[key])
    except WireError as exc:
        raise LiquidationError(f"{path}: {exc}") from None


def _list(record: Mapping[str, Any], key: str) -> list[Any]:
    value = record.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise LiquidationError(f"{key}: must be a list of objects")
    return value
