"""The auditor's v1 liquidation rules in exact integers, for the replay's common case.

`rules.settle` re-derives an outcome on Fractions; this module gives the same Settlement with
the numbers kept as integers over powers of ten (a decimal "12.50" is 1250 over 10^2), so
the contract's comparisons are integer cross-multiplications and its roundings floor
divisions. Counterparties are checked on their strings for every liquidation (the contract
refuses a malformed list whatever the outcome) and turned into numbers only when a shortfall
is shared. Whatever these checks do not accept goes to `rules.settle`, which names the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from auditor import rules
from auditor.formats.wire import format_amount, format_decimal

_NUMBER = re.compile(r"(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?")
_LONGEST = 1000  # longer strings go to the reference (it owns the digit-limit errors)
_TENS: list[int] = [10**i for i in range(80)]


def _ten(n: int) -> int:
    return _TENS[n] if n < 80 else 10**n


def _exact(text: Any) -> tuple[int, int] | None:
    """(n, k) for the decimal n / 10^k that `text` spells, or None."""
    if type(text) is not str or len(text) > _LONGEST:
        return None
    found = _NUMBER.fullmatch(text)
    if found is None:
        return None
    sign, whole, frac = found.groups()
    n = int(whole + frac) if frac else int(whole)
    return (-n if sign else n), (len(frac) if frac else 0)


def _listed(raw: Any, liquidated: str) -> list[tuple[str, int, int]] | None:
    """(account, pnl numerator, its places) per counterparty when the list is well formed."""
    if type(raw) is not list:
        return None
    out: list[tuple[str, int, int]] = []
    seen: set[str] = set()
    for item in raw:
        if type(item) is not dict or item.keys() != rules.COUNTERPARTY_FIELDS:
            return None
        account = item["account"]
        if type(account) is not str or not 0 < len(account) <= rules.MAX_ID_LENGTH \
                or account == liquidated or account in seen:
            return None
        seen.add(account)
        size, entry = _exact(item["size"]), _exact(item["entry_price"])
        pnl, collateral = _exact(item["unrealized_pnl"]), _exact(item["collateral"])
        if size is None or entry is None or pnl is None or collateral is None \
                or size[0] <= 0 or entry[0] <= 0 or collateral[0] < 0:
            return None
        out.append((account, pnl[0], pnl[1]))
    return out


def settle(
    data: Mapping[str, Any], policy: rules.Policy | Mapping[str, Any], balance: int,
    decimals: int, prices: Sequence[Any] = (),
) -> rules.Settlement:
    """`rules.settle(data, policy, balance, decimals, prices)`, the same result, in integers."""
    if not isinstance(policy, rules.Policy):
        policy = rules.parse_policy(policy)
    fast = _fast(data, policy, balance, decimals, prices)
    return fast if fast is not None else rules.settle(data, policy, balance, decimals, prices)


def _fast(
    data: Mapping[str, Any], policy: rules.Policy, balance: int, decimals: int,
    prices: Sequence[Any],
) -> rules.Settlement | None:
    asset, account, side = data.get("asset"), data.get("account"), data.get("side")
    if type(asset) is not str or not asset or side not in ("long", "short") \
            or type(account) is not str or not 0 < len(account) <= rules.MAX_ID_LENGTH:
        return None
    size, entry = _exact(data.get("size")), _exact(data.get("entry_price"))
    collateral, fill = _exact(data.get("collateral")), _exact(data.get("fill_price"))
    mark = _exact(data.get("mark_price"))
    if size is None or entry is None or collateral is None or fill is None or mark is None:
        return None
    s, a = size
    e, b = entry
    c, k = collateral
    f, g = fill
    if s <= 0 or e <= 0 or f <= 0 or mark[0] <= 0 or c < 0:
        return None
    listed = _listed(data.get("counterparties"), account)
    if listed is None:
        return None

    # delta = collateral + (fill - entry) * size (long; short: entry - fill), over 10^m.
    places = max(g, b)
    move = f * _ten(places - g) - e * _ten(places - b)
    if side == "short":
        move = -move
    m = max(k, places + a)
    delta_num, delta_den = c * _ten(m - k) + move * s * _ten(m - places - a), _ten(m)
    # bankruptcy = entry -+ collateral / size, over size * 10^(b+k).
    per_contract = c * _ten(a + b)
    bank_num = e * s * _ten(k) + (per_contract if side == "short" else -per_contract)
    bank_den = s * _ten(b + k)
    share, vol = rules._share(policy, prices)  # one Fraction pair per policy (or per window)
    unit = _ten(decimals)
    floored = (delta_num * unit) // delta_den
    st = rules.Settlement({}, [], Fraction(delta_num, delta_den), Fraction(bank_num, bank_den),
                          share, vol)

    if delta_num > 0:
        rate = policy.fee_cap_rate
        cap_num, cap_den = rate.numerator * f * s, rate.denominator * _ten(g + a)
        low_num, low_den = (delta_num, delta_den) if delta_num * cap_den <= cap_num * delta_den \
            else (cap_num, cap_den)
        st.fee = (low_num * share.numerator * unit) // (low_den * share.denominator)
        st.remainder = floored - st.fee  # the dust stays with the trader
        if st.fee > 0:
            st.events.append(("fee_inflow", {
                "kind": "liquidation_fee", "asset": asset,
                "amount": format_amount(st.fee, decimals), "account": account}))
    elif delta_num < 0:
        st.deficit = -floored
        payment = min(st.deficit, max(0, balance - policy.minimum_reserve_units(asset, decimals)))
        cap = policy.cap_units(asset, decimals)
        if cap is not None:
            payment = min(payment, cap)
        st.fund_payment, st.socialized = payment, st.deficit - payment
        if payment > 0:
            st.events.append(("deficit_covered", {
                "asset": asset, "amount": format_amount(payment, decimals), "account": account}))
        if st.socialized > 0:
            method = policy.socialization
            paid: list[tuple[str, int, str | None]] = []
            if method == "adl":  # counterparties parsed now, for the shortfall only
                paid = _adl(st, data["counterparties"], fill, (bank_num, bank_den), decimals)
            elif method == "pro_rata_profit":
                paid = _pro_rata(st, listed, decimals)
            else:
                st.unresolved = st.socialized
            _charge(st, method, paid, asset, decimals)

    st.outcome = {
        "bankruptcy_price": format_decimal(st.bankruptcy, rules.PRICE_PLACES),
        "delta": format_amount(floored, decimals),
        "fee": format_amount(st.fee, decimals),
        "remainder": format_amount(st.remainder, decimals),
        "share": format_decimal(share, rules.RATE_PLACES),
        "volatility": format_decimal(vol, rules.RATE_PLACES),
        "deficit": format_amount(st.deficit, decimals),
        "fund_payment": format_amount(st.fund_payment, decimals),
        "socialized": format_amount(st.socialized, decimals),
        "unresolved": format_amount(st.unresolved, decimals),
        "method": policy.socialization,
    }
    return st


def _pro_rata(st: rules.Settlement, listed: Sequence[tuple[str, int, int]],
              decimals: int) -> list[tuple[str, int, str | None]]:
    """Who pays `st.socialized` pro rata over profits floored to units (sets unresolved)."""
    shortfall = st.socialized
    unit = _ten(decimals)
    profits = {acct: (n * unit) // _ten(k) for acct, n, k in listed}
    ordered = sorted(acct for acct, p in profits.items() if p > 0)
    total = sum(profits[acct] for acct in ordered)
    if shortfall >= total:
        st.unresolved = shortfall - total
        return [(acct, profits[acct], None) for acct in ordered]
    parts = {acct: shortfall * profits[acct] // total for acct in ordered}
    left = shortfall - sum(parts.values())
    # Left-over units to the largest remainders, ties by ascending account id.
    for acct in sorted(ordered, key=lambda x: (-(shortfall * profits[x] % total), x))[:left]:
        parts[acct] += 1
    return [(acct, parts[acct], None) for acct in ordered]


class _Score:
    """Sort key: the ADL score num/den descending (by cross-multiplication), then account."""

    __slots__ = ("account", "den", "num")

    def __init__(self, num: int, den: int, account: str) -> None:
        self.num, self.den, self.account = num, den, account

    def __lt__(self, other: _Score) -> bool:
        mine, theirs = self.num * other.den, other.num * self.den
        return mine > theirs if mine != theirs else self.account < other.account


def _adl(st: rules.Settlement, raw: Sequence[Mapping[str, Any]], fill: tuple[int, int],
         bankruptcy: tuple[int, int], decimals: int) -> list[tuple[str, int, str | None]]:
    """Who pays `st.socialized` by ADL (sets unresolved).

    The contract's score (pnl / (entry*size)) * (mark*size / (collateral + pnl)) is
    pnl * mark / (entry * (collateral + pnl)); size cancels and mark is the same for all, so
    with pnl = P/10^d, entry = E/10^x, collateral = C/10^y it ranks as
    P * 10^(x+y) / (E * (C*10^d + P*10^y)).
    """
    unit = _ten(decimals)
    ranked = []
    for item in raw:
        n, k = _exact(item["unrealized_pnl"]) or (0, 0)  # all checked by _listed
        pnl = (n * unit) // _ten(k)
        if pnl <= 0:
            continue
        e, x = _exact(item["entry_price"]) or (1, 0)
        c, y = _exact(item["collateral"]) or (0, 0)
        key = _Score(pnl * _ten(x + y), e * (c * unit + pnl * _ten(y)), item["account"])
        ranked.append((key, pnl, _exact(item["size"]) or (1, 0)))
    ranked.sort(key=lambda row: row[0])
    bank_num, bank_den = bankruptcy
    f, g = fill
    # |fill - bankruptcy| as gap_num / gap_den (> 0 whenever there is a deficit)
    gap_num, gap_den = abs(f * bank_den - bank_num * _ten(g)), bank_den * _ten(g)
    qty_unit = _ten(rules.QTY_PLACES)
    remaining = st.socialized
    paid: list[tuple[str, int, str | None]] = []
    for key, pnl, (s, a) in ranked:
        if remaining == 0:
            break
        units = min(remaining, pnl)
        remaining -= units
        # min(units/10^d / gap, size), floored to 8 decimals
        qty = min((units * gap_den * qty_unit) // (unit * gap_num), (s * qty_unit) // _ten(a))
        paid.append((key.account, units, format_amount(qty, rules.QTY_PLACES)))
    st.unresolved = remaining
    return paid


def _charge(st: rules.Settlement, method: str, paid: Sequence[tuple[str, int, str | None]],
            asset: str, decimals: int) -> None:
    """Append the shortfall's events: its assessment, then each positive charge in order."""
    st.events.append(("socialized_loss_assessed", {
        "asset": asset, "amount": format_amount(st.socialized, decimals), "method": method,
        "unresolved": format_amount(st.unresolved, decimals)}))
    adl_price = format_decimal(st.bankruptcy, rules.PRICE_PLACES) if method == "adl" else None
    for acct, units, qty in paid:
        if units > 0:
            st.clawbacks[acct] = units
            st.events.append(("clawback_charged", {
                "asset": asset, "account": acct, "amount": format_amount(units, decimals),
                "method": method, "adl_quantity": qty, "adl_price": adl_price}))
