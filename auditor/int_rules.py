"""The auditor's v1 liquidation rules in exact integers, for the replay's common case.

`rules.settle` re-derives an outcome on Fractions; this module gives the same Settlement with
the numbers kept as integers over powers of ten (a decimal "12.50" is 1250 over 10^2), so
the contract's comparisons are integer cross-multiplications and its roundings floor
divisions. Counterparties are checked on their strings for every liquidation (the contract
refuses a malformed list whatever the outcome) and turned into numbers only when a shortfall
is shared. Whatever these checks do not accept goes to `rules.settle`, which names the field;
an ADL shortfall too (rare; its scores stay on the reference's Fractions).
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
            if method == "adl":  # the reference's Fractions, counterparties parsed now
                cps = rules.counterparties(data["counterparties"], account)
                rules._socialize(st, method, cps, rules._dec(data, "mark_price"),
                                 rules._dec(data, "fill_price"), asset, decimals)
            else:
                _share_out(st, method, listed, asset, decimals)

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


def _share_out(st: rules.Settlement, method: str, listed: Sequence[tuple[str, int, int]],
               asset: str, decimals: int) -> None:
    """Spread `st.socialized` pro rata over profits floored to units (or not at all: none)."""
    shortfall = st.socialized
    paid: list[tuple[str, int]] = []
    if method == "pro_rata_profit":
        unit = _ten(decimals)
        profits = {acct: (n * unit) // _ten(k) for acct, n, k in listed}
        ordered = sorted(acct for acct, p in profits.items() if p > 0)
        total = sum(profits[acct] for acct in ordered)
        if shortfall >= total:
            paid = [(acct, profits[acct]) for acct in ordered]
            st.unresolved = shortfall - total
        else:
            parts = {acct: shortfall * profits[acct] // total for acct in ordered}
            left = shortfall - sum(parts.values())
            # Left-over units to the largest remainders, ties by ascending account id.
            for acct in sorted(ordered, key=lambda x: (-(shortfall * profits[x] % total), x))[:left]:
                parts[acct] += 1
            paid = [(acct, parts[acct]) for acct in ordered]
    else:
        st.unresolved = shortfall
    st.events.append(("socialized_loss_assessed", {
        "asset": asset, "amount": format_amount(shortfall, decimals), "method": method,
        "unresolved": format_amount(st.unresolved, decimals)}))
    for acct, units in paid:
        if units > 0:
            st.clawbacks[acct] = units
            st.events.append(("clawback_charged", {
                "asset": asset, "account": acct, "amount": format_amount(units, decimals),
                "method": method, "adl_quantity": None, "adl_price": None}))
