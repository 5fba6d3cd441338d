"""The v1 liquidation waterfall in exact integers, straight from a fact's wire dict.

The same rules as `waterfall.settle` (schemas/README.md, "Liquidation rules"), computed on
integers of minor units and decimals kept as (integer, number of decimals): every rational of
the rules is a numerator over a power of ten (or over `size`), so comparisons are integer
cross-multiplications and the contract's roundings explicit floor divisions. Counterparties
are checked (cheaply, on their strings) for every fact but parsed into numbers only when a
shortfall is shared. `waterfall.settle` stays the reference: any input the fast checks do not
accept (a malformed field, an unusual spelling such as "-0") goes through it, so errors and
results are the reference's by construction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any, TypeGuard

from ledger.domain.policy import Policy
from ledger.domain.waterfall import (
    ADL_QUANTITY_PLACES,
    Clawback,
    LiquidationFact,
    Settlement,
    pro_rata,
    settle,
)

_DECIMAL = re.compile(r"(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?")
# A positive, resp. non-negative, decimal as _DECIMAL spells it ("-0" takes the reference).
_POSITIVE = re.compile(r"0\.[0-9]*[1-9][0-9]*|[1-9][0-9]*(?:\.[0-9]+)?")
_NON_NEGATIVE = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_MAX_TEXT = 1000  # longer decimals take the reference path (its digit-limit errors included)
_POW10: list[int] = [10**i for i in range(80)]


def _pow10(n: int) -> int:
    return _POW10[n] if n < 80 else 10**n


def _scaled(text: Any) -> tuple[int, int] | None:
    """(n, k) with value n / 10^k for a plain decimal string, else None (reference path)."""
    if type(text) is not str or len(text) > _MAX_TEXT:
        return None
    match = _DECIMAL.fullmatch(text)
    if match is None:
        return None
    sign, whole, frac = match.groups()
    if frac is None:
        n = int(whole)
        return (-n if sign else n), 0
    n = int(whole + frac)
    return (-n if sign else n), len(frac)


def _name(value: Any) -> TypeGuard[str]:
    return type(value) is str and value != ""


def _counterparties_ok(raw: Any, liquidated: str) -> bool:
    """Whether the reference would accept these counterparties (checked on their strings:
    no numbers are built, that waits for a shortfall)."""
    if type(raw) is not list:
        return False
    seen: set[str] = set()
    positive, non_negative, decimal = _POSITIVE.fullmatch, _NON_NEGATIVE.fullmatch, _DECIMAL.fullmatch
    for cp in raw:
        if type(cp) is not dict:
            return False
        account = cp.get("account")
        if not _name(account) or account == liquidated or account in seen:
            return False
        seen.add(account)
        size, entry = cp.get("size"), cp.get("entry_price")
        pnl, collateral = cp.get("unrealized_pnl"), cp.get("collateral")
        if type(size) is not str or type(entry) is not str or type(pnl) is not str \
                or type(collateral) is not str \
                or len(size) + len(entry) + len(pnl) + len(collateral) > _MAX_TEXT:
            return False
        if positive(size) is None or positive(entry) is None or decimal(pnl) is None \
                or non_negative(collateral) is None:
            return False
    return True


def settle_record(
    record: Mapping[str, Any],
    policy: Policy,
    balance: int,
    decimals: int,
    prices: Sequence[Fraction] = (),
    *,
    asset: str,
) -> Settlement:
    """`waterfall.settle(LiquidationFact.from_record(record, decimals), ...)`, in integers.

    Same arguments as `waterfall.settle`, with the fact's wire dict in place of the fact;
    the same Settlement (or the same LiquidationError) results.
    """
    fast = _settle_fast(record, policy, balance, decimals, prices, asset)
    if fast is not None:
        return fast
    fact = LiquidationFact.from_record(record, decimals)
    return settle(fact, policy, balance, decimals, prices, asset=asset)


def _settle_fast(
    record: Mapping[str, Any], policy: Policy, balance: int, decimals: int,
    prices: Sequence[Fraction], asset: str,
) -> Settlement | None:
    """The settlement, or None when the reference must decide (it parses and reports)."""
    side = record.get("side")
    liquidated = record.get("account")
    if side not in ("long", "short") or not _name(liquidated) or not _name(record.get("id")) \
            or not _name(record.get("market")):
        return None
    size, entry = _scaled(record.get("size")), _scaled(record.get("entry_price"))
    collateral, fill = _scaled(record.get("collateral")), _scaled(record.get("fill_price"))
    mark = _scaled(record.get("mark_price"))
    if size is None or entry is None or collateral is None or fill is None or mark is None:
        return None
    s, a = size
    e, b = entry
    c, k = collateral
    f, g = fill
    if s <= 0 or e <= 0 or f <= 0 or mark[0] <= 0 or c < 0:
        return None
    raw = record.get("counterparties") or []
    if not _counterparties_ok(raw, liquidated):
        return None

    # delta = c/10^k + sign * (f/10^g - e/10^b) * s/10^a, as dnum / 10^m.
    top = max(g, b)
    move = f * _pow10(top - g) - e * _pow10(top - b)
    if side == "short":
        move = -move
    m = max(k, top + a)
    dnum = c * _pow10(m - k) + move * s * _pow10(m - top - a)
    dden = _pow10(m)
    # bankruptcy = e/10^b -+ c*10^a / (s*10^k), over s * 10^(b+k).
    per_contract = c * _pow10(a + b)
    bnum = e * s * _pow10(k) + (-per_contract if side == "long" else per_contract)
    bden = s * _pow10(b + k)
    scale = _pow10(decimals)
    share, vol = policy.share(prices)

    def settlement(**amounts: Any) -> Settlement:
        return Settlement(bankruptcy_price=Fraction(bnum, bden), delta=Fraction(dnum, dden),
                          share=share, volatility=vol, method=policy.socialization, **amounts)

    floored = (dnum * scale) // dden
    if dnum >= 0:
        # min(delta, fee_cap_rate * f*s / 10^(g+a)) by cross-multiplication, then * share.
        rate = policy.fee_cap_rate
        cap_num, cap_den = rate.numerator * f * s, rate.denominator * _pow10(g + a)
        if dnum * cap_den <= cap_num * dden:
            low_num, low_den = dnum, dden
        else:
            low_num, low_den = cap_num, cap_den
        fee = (low_num * share.numerator * scale) // (low_den * share.denominator)
        return settlement(fee=fee, remainder=floored - fee, deficit=0, fund_payment=0,
                          socialized=0, unresolved=0)

    deficit = -floored  # ceil of -delta in units: the winning side is paid in full units
    fund_payment = min(deficit, max(0, balance - policy.reserve(asset)))
    cap = policy.cap(asset)
    if cap is not None:
        fund_payment = min(fund_payment, cap)
    shortfall = deficit - fund_payment

    clawbacks: tuple[Clawback, ...] = ()
    if shortfall > 0 and policy.socialization == "pro_rata_profit":
        profits = {cp["account"]: _floor_units(cp["unrealized_pnl"], scale) for cp in raw}
        clawbacks = tuple(Clawback(acct, amount) for acct, amount in pro_rata(shortfall, profits))
    elif shortfall > 0 and policy.socialization == "adl":
        clawbacks = _adl(raw, mark, fill, (bnum, bden), shortfall, decimals)
    return settlement(fee=0, remainder=0, deficit=deficit, fund_payment=fund_payment,
                      socialized=shortfall,
                      unresolved=shortfall - sum(claw.amount for claw in clawbacks),
                      clawbacks=clawbacks)


def _floor_units(text: str, scale: int) -> int:
    """A checked decimal string in units of 1/`scale`, floored (the eligibility rule)."""
    n, k = _scaled(text) or (0, 0)  # checked by _counterparties_ok
    return (n * scale) // _pow10(k)


def _adl(
    raw: Sequence[Mapping[str, Any]], mark: tuple[int, int], fill: tuple[int, int],
    bankruptcy: tuple[int, int], shortfall: int, decimals: int,
) -> tuple[Clawback, ...]:
    """`waterfall._adl` in integers: charge by descending ADL score until `shortfall` is paid.

    score = (pnl / (entry*size)) * (mark*size / (collateral + pnl)) = pnl*mark /
    (entry * (collateral + pnl)): the size cancels; with pnl = P/10^d, entry = E/10^x,
    collateral = C/10^y, mark = M/10^w it is P*M*10^(x+y) / (E * (C*10^d + P*10^y) * 10^w),
    and 10^w is common to all, so the sort key compares numerators over denominators.
    """
    scale = _pow10(decimals)
    rows = []
    for cp in raw:
        pnl = _floor_units(cp["unrealized_pnl"], scale)
        if pnl <= 0:
            continue
        e, x = _scaled(cp["entry_price"]) or (1, 0)
        c, y = _scaled(cp["collateral"]) or (0, 0)
        num = pnl * _pow10(x + y)
        den = e * (c * scale + pnl * _pow10(y))
        rows.append((num, den, cp["account"], pnl, _scaled(cp["size"]) or (1, 0)))
    rows.sort(key=_AdlKey)
    bnum, bden = bankruptcy
    f, g = fill
    # |fill - bankruptcy| = |f*bden - bnum*10^g| / (bden*10^g), > 0 whenever there is a deficit
    gap_num, gap_den = abs(f * bden - bnum * _pow10(g)), bden * _pow10(g)
    places = _pow10(ADL_QUANTITY_PLACES)
    price = Fraction(bnum, bden)
    clawbacks = []
    remaining = shortfall
    for _num, _den, account, pnl, (s, a) in rows:
        if remaining == 0:
            break
        paid = min(remaining, pnl)
        # min(size, paid/10^d / gap), rounded down to 8 decimals, all over integers.
        by_loss = (paid * gap_den * places) // (scale * gap_num)
        by_size = (s * places) // _pow10(a)
        clawbacks.append(Clawback(account, paid, Fraction(min(by_loss, by_size), places), price))
        remaining -= paid
    return tuple(clawbacks)


class _AdlKey:
    """Sort key: descending score num/den (cross-multiplied), then ascending account id."""

    __slots__ = ("account", "den", "num")

    def __init__(self, row: tuple[int, int, str, int, tuple[int, int]]) -> None:
        self.num, self.den, self.account = row[0], row[1], row[2]

    def __lt__(self, other: _AdlKey) -> bool:
        left, right = self.num * other.den, other.num * self.den
        if left != right:
            return left > right
        return self.account < other.account
