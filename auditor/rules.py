"""Independent re-derivation of a liquidation's outcome from its recorded facts.

Written from schemas/README.md ("Liquidation rules") only, never from the ledger's code, so
that the two implementations check each other. Money is exact: integer minor units ("units")
and Fractions; the only roundings are the ones the contract names.

Over 400 lines on purpose: the whole liquidation contract in one module, to be read top to
bottom beside schemas/README.md; split, the waterfall steps the contract states together
would sit apart.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from auditor.formats.clip import clip
from auditor.formats.wire import (
    MAX_SAFE_INTEGER,
    WireError,
    format_amount,
    format_decimal,
    parse_amount,
    parse_decimal,
)

__all__ = [
    "COUNTERPARTY_FIELDS",
    "MAX_ID_LENGTH",
    "MAX_SAFE_INTEGER",
    "MAX_WINDOW",
    "METHODS",
    "OUTCOME_FIELDS",
    "Counterparty",
    "Policy",
    "RuleError",
    "Settlement",
    "account_id",
    "conservation_error",
    "counterparties",
    "derived_mismatch",
    "fields_error",
    "interpolate_share",
    "outcome_mismatch",
    "parse_policy",
    "settle",
    "spread",
    "volatility",
]

METHODS = ("pro_rata_profit", "adl", "none")
OUTCOME_FIELDS = (
    "bankruptcy_price", "delta", "fee", "remainder", "share", "volatility",
    "deficit", "fund_payment", "socialized", "unresolved", "method",
)
MAX_WINDOW = 4096                # the contract's largest volatility window
MAX_ID_LENGTH = 200              # exchange and account ids
COUNTERPARTY_FIELDS = frozenset({"account", "size", "entry_price", "unrealized_pnl", "collateral"})
# Display precisions named by the contract.
PRICE_PLACES = 8
RATE_PLACES = 12
QTY_PLACES = 8


class RuleError(ValueError):
    """The recorded facts or the policy cannot be evaluated; the message names the field."""


# ---------------------------------------------------------------- parsing


def _dec(data: Mapping[str, Any], key: str, prefix: str = "") -> Fraction:
    """Exact decimal field `key` of `data`, or RuleError naming it."""
    if key not in data:
        raise RuleError(f"{prefix}{key}: missing")
    try:
        return parse_decimal(data[key])
    except WireError as exc:
        raise RuleError(f"{prefix}{key}: {exc}") from None


def _positive(data: Mapping[str, Any], key: str, prefix: str = "") -> Fraction:
    """Exact decimal field `key` that the contract requires to be positive."""
    value = _dec(data, key, prefix)
    if value <= 0:
        raise RuleError(f"{prefix}{key}: {clip(data[key])} is not positive")
    return value


def _non_negative(data: Mapping[str, Any], key: str, prefix: str = "") -> Fraction:
    """Exact decimal field `key` that the contract requires to be >= 0."""
    value = _dec(data, key, prefix)
    if value < 0:
        raise RuleError(f"{prefix}{key}: {clip(data[key])} is negative")
    return value


def account_id(value: Any, where: str) -> str:
    """An account id: a string of 1 to 200 characters, or RuleError naming `where`."""
    if type(value) is not str or not 0 < len(value) <= MAX_ID_LENGTH:
        raise RuleError(f"{where}: {clip(value)} is not an account id (1 to {MAX_ID_LENGTH} characters)")
    return value


def _policy_amount(value: Any, decimals: int, where: str) -> int:
    """A policy amount in units, with exactly the asset's decimals (as every amount)."""
    try:
        units = parse_amount(value, decimals)
    except WireError as exc:
        raise RuleError(f"{where}: {exc}") from None
    if units < 0:
        raise RuleError(f"{where}: {clip(value)} is negative")
    return units


@dataclass(frozen=True)
class Policy:
    """A parsed policy document; amounts stay per asset and are converted on use."""

    version: int
    fee_cap_rate: Fraction
    fixed_share: Fraction | None
    window: int | None
    breakpoints: tuple[tuple[Fraction, Fraction], ...]
    socialization: str
    minimum_reserve: Mapping[str, Any] = field(default_factory=dict)
    per_event_cap: Mapping[str, Any] | None = None

    def minimum_reserve_units(self, asset: str, decimals: int) -> int:
        """The minimum reserve of `asset` in units (0 when the policy names none)."""
        value = self.minimum_reserve.get(asset)
        if value is None:
            return 0
        return _policy_amount(value, decimals, f"policy.minimum_reserve.{asset}")

    def cap_units(self, asset: str, decimals: int) -> int | None:
        """The per-event cap of `asset` in units, or None (absent = no cap)."""
        if not self.per_event_cap or self.per_event_cap.get(asset) is None:
            return None
        return _policy_amount(self.per_event_cap[asset], decimals, f"policy.per_event_cap.{asset}")


def parse_policy(doc: Mapping[str, Any]) -> Policy:
    """Parse and check a policy document (the checks a schema cannot make included)."""
    if not isinstance(doc, Mapping):
        raise RuleError("policy: not an object")
    version = doc.get("version")
    if type(version) is not int or not 1 <= version <= MAX_SAFE_INTEGER:
        raise RuleError(f"policy.version: {clip(version)} is not an integer in 1..2^53-1")
    fee_cap_rate = _dec(doc, "fee_cap_rate", "policy.")
    share = doc.get("fund_share")
    if not isinstance(share, Mapping) or len(share) != 1:
        raise RuleError("policy.fund_share: must have exactly one of 'fixed' or 'volatility'")
    fixed: Fraction | None = None
    window: int | None = None
    points: list[tuple[Fraction, Fraction]] = []
    if "fixed" in share:
        fixed = _dec(share, "fixed", "policy.fund_share.")
    elif "volatility" in share and isinstance(share["volatility"], Mapping):
        vol = share["volatility"]
        window = vol.get("window")
        if type(window) is not int or not 1 <= window <= MAX_WINDOW:
            raise RuleError(f"policy.fund_share.volatility.window: {clip(window)} is not an "
                            f"integer in 1..{MAX_WINDOW} (the contract's limit)")
        raw = vol.get("breakpoints")
        if not isinstance(raw, list) or not raw:
            raise RuleError("policy.fund_share.volatility.breakpoints: must be a non-empty list")
        for i, pair in enumerate(raw):
            where = f"policy.fund_share.volatility.breakpoints.{i}"
            if not isinstance(pair, list) or len(pair) != 2:
                raise RuleError(f"{where}: must be a [vol, share] pair")
            try:
                point = (parse_decimal(pair[0]), parse_decimal(pair[1]))
            except WireError as exc:
                raise RuleError(f"{where}: {exc}") from None
            if points and point[0] <= points[-1][0]:
                raise RuleError(f"{where}: vol must be strictly increasing")
            points.append(point)
    else:
        raise RuleError("policy.fund_share: must have exactly one of 'fixed' or 'volatility'")
    method = doc.get("socialization")
    if method not in METHODS:
        raise RuleError(f"policy.socialization: {clip(method)} is not one of {', '.join(METHODS)}")
    for key in ("minimum_reserve", "per_event_cap"):
        if key in doc and not isinstance(doc[key], Mapping):
            raise RuleError(f"policy.{key}: not an object")
    return Policy(
        version=version,
        fee_cap_rate=fee_cap_rate,
        fixed_share=fixed,
        window=window,
        breakpoints=tuple(points),
        socialization=method,
        minimum_reserve=doc.get("minimum_reserve") or {},
        per_event_cap=doc.get("per_event_cap"),
    )


@dataclass(frozen=True)
class Counterparty:
    """One profitable / opposite-side account at liquidation time (exact values)."""

    account: str
    size: Fraction
    entry_price: Fraction
    unrealized_pnl: Fraction
    collateral: Fraction


def _counterparties(raw: Any, liquidated: str) -> list[Counterparty]:
    if not isinstance(raw, list):
        raise RuleError("counterparties: not a list")
    out: list[Counterparty] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"counterparties.{i}."
        if not isinstance(item, Mapping):
            raise RuleError(f"counterparties.{i}: not an object")
        if item.keys() != COUNTERPARTY_FIELDS:
            raise RuleError(fields_error(item, COUNTERPARTY_FIELDS, where))
        account = account_id(item["account"], f"{where}account")
        if account in seen or account == liquidated:
            raise RuleError(f"{where}account: {clip(account)} is listed twice or is the liquidated account")
        seen.add(account)
        out.append(Counterparty(
            account,
            _positive(item, "size", where),
            _positive(item, "entry_price", where),
            _dec(item, "unrealized_pnl", where),
            _non_negative(item, "collateral", where),
        ))
    return out


def fields_error(obj: Mapping[str, Any], fields: frozenset[str], prefix: str) -> str:
    """`prefix + name: missing` or `: unexpected field` for the first key that is off."""
    missing = sorted(fields - obj.keys())
    if missing:
        return f"{prefix}{missing[0]}: missing"
    extra = sorted(str(k) for k in obj.keys() - fields)
    return f"{prefix}{extra[0]:.60}: unexpected field"


# ---------------------------------------------------------------- rounding


def _floor_units(x: Fraction, decimals: int) -> int:
    return int((x.numerator * 10**decimals) // x.denominator)


def _ceil_units(x: Fraction, decimals: int) -> int:
    return -int((-x.numerator * 10**decimals) // x.denominator)


# ---------------------------------------------------------------- share


def volatility(prices: Sequence[Fraction], window: int) -> Fraction:
    """Mean of |p_k / p_(k-1) - 1| over the last `window` returns; 0 with fewer than 2 prices."""
    recent = list(prices[-(window + 1):])
    if len(recent) < 2:
        return Fraction(0)
    total = Fraction(0)
    for prev, cur in itertools.pairwise(recent):
        if prev <= 0:
            raise RuleError(f"observed mark price {prev} is not positive")
        total += abs(cur / prev - 1)
    return total / (len(recent) - 1)


def interpolate_share(breakpoints: Sequence[tuple[Fraction, Fraction]], vol: Fraction) -> Fraction:
    """Piecewise-linear share at `vol`, clamped to the first/last share outside the range."""
    if vol <= breakpoints[0][0]:
        return breakpoints[0][1]
    for (v0, s0), (v1, s1) in itertools.pairwise(breakpoints):
        if vol <= v1:
            return s0 + (s1 - s0) * (vol - v0) / (v1 - v0)
    return breakpoints[-1][1]


def _share(policy: Policy, prices: Sequence[Any]) -> tuple[Fraction, Fraction]:
    """(share, volatility); a fixed-share policy has no window, so its volatility is 0."""
    if policy.fixed_share is not None:
        return policy.fixed_share, Fraction(0)
    assert policy.window is not None
    window = policy.window
    tail = [p if isinstance(p, Fraction) else parse_decimal(p) for p in prices[-(window + 1):]]
    vol = volatility(tail, window)
    return interpolate_share(policy.breakpoints, vol), vol


# ---------------------------------------------------------------- settlement


@dataclass
class Settlement:
    """What the rules say a liquidation must produce."""

    outcome: dict[str, Any]                 # wire shape of `outcome`
    events: list[tuple[str, dict[str, Any]]]  # derived (type, data), in log order
    delta: Fraction                         # exact delta (outcome.delta is display only)
    bankruptcy: Fraction                    # exact bankruptcy price
    share: Fraction
    volatility: Fraction
    fee: int = 0                            # the rest in units of the quote asset
    remainder: int = 0
    deficit: int = 0
    fund_payment: int = 0
    socialized: int = 0
    unresolved: int = 0
    clawbacks: dict[str, int] = field(default_factory=dict)


def settle(
    data: Mapping[str, Any],
    policy: Policy | Mapping[str, Any],
    balance: int,
    decimals: int,
    prices: Sequence[Any] = (),
) -> Settlement:
    """Re-derive a `liquidation_settled` event's outcome and derived events.

    `data` is the event's data (the fact's fields + asset); `policy` the active policy;
    `balance` the fund's balance of the quote asset just before, in units; `decimals` the
    quote asset's decimals; `prices` the market's observed mark prices before it (oldest
    first; decimal strings or Fractions).
    """
    if not isinstance(policy, Policy):
        policy = parse_policy(policy)
    asset = data.get("asset")
    if not isinstance(asset, str) or not asset:
        raise RuleError("asset: missing")
    account = account_id(data.get("account"), "account")
    side = data.get("side")
    if side not in ("long", "short"):
        raise RuleError(f"side: {clip(side)} is not long or short")
    size = _positive(data, "size")
    entry = _positive(data, "entry_price")
    collateral = _non_negative(data, "collateral")
    fill = _positive(data, "fill_price")
    mark = _positive(data, "mark_price")
    cps = _counterparties(data.get("counterparties"), account)

    if side == "long":
        bankruptcy = entry - collateral / size
        delta = collateral + (fill - entry) * size
    else:
        bankruptcy = entry + collateral / size
        delta = collateral + (entry - fill) * size
    share, vol = _share(policy, prices)
    s = Settlement({}, [], delta, bankruptcy, share, vol)

    if delta > 0:
        cap = policy.fee_cap_rate * fill * size
        s.fee = _floor_units(min(delta, cap) * share, decimals)
        s.remainder = _floor_units(delta, decimals) - s.fee  # dust stays with the trader
        if s.fee > 0:
            s.events.append(("fee_inflow", {
                "kind": "liquidation_fee", "asset": asset,
                "amount": format_amount(s.fee, decimals), "account": account,
            }))
    elif delta < 0:
        s.deficit = _ceil_units(-delta, decimals)
        available = max(0, balance - policy.minimum_reserve_units(asset, decimals))
        payment = min(s.deficit, available)
        cap_units = policy.cap_units(asset, decimals)
        if cap_units is not None:
            payment = min(payment, cap_units)
        s.fund_payment = payment
        s.socialized = s.deficit - payment
        if payment > 0:
            s.events.append(("deficit_covered", {
                "asset": asset, "amount": format_amount(payment, decimals), "account": account,
            }))
        if s.socialized > 0:
            _socialize(s, policy.socialization, cps, mark, fill, asset, decimals)

    s.outcome = {
        "bankruptcy_price": format_decimal(bankruptcy, PRICE_PLACES),
        "delta": format_amount(_floor_units(delta, decimals), decimals),
        "fee": format_amount(s.fee, decimals),
        "remainder": format_amount(s.remainder, decimals),
        "share": format_decimal(share, RATE_PLACES),
        "volatility": format_decimal(vol, RATE_PLACES),
        "deficit": format_amount(s.deficit, decimals),
        "fund_payment": format_amount(s.fund_payment, decimals),
        "socialized": format_amount(s.socialized, decimals),
        "unresolved": format_amount(s.unresolved, decimals),
        "method": policy.socialization,
    }
    return s


def spread(
    method: str, cps: Sequence[Counterparty], S: int, mark: Fraction, fill: Fraction,
    bankruptcy: Fraction, decimals: int,
) -> tuple[list[tuple[str, int, str | None]], int]:
    """Who pays the shortfall `S` (units) by `method`, linear markets: ([(account, units,
    adl quantity or None)] in payment order, unresolved units). Zero payments stay listed."""
    profits = {c.account: _floor_units(c.unrealized_pnl, decimals) for c in cps}
    eligible = [c for c in cps if profits[c.account] > 0]
    paid: list[tuple[str, int, str | None]] = []  # (account, units, adl quantity)
    unresolved = 0
    if method == "pro_rata_profit":
        P = sum(profits[c.account] for c in eligible)
        ordered = sorted(c.account for c in eligible)
        if S >= P:
            paid = [(a, profits[a], None) for a in ordered]
            unresolved = S - P
        else:
            share = {a: S * profits[a] // P for a in ordered}
            left = S - sum(share.values())
            # Left-over units go to the largest remainders, ties by ascending account id.
            by_remainder = sorted(ordered, key=lambda a: (-(S * profits[a] % P), a))
            for a in by_remainder[:left]:
                share[a] += 1
            paid = [(a, share[a], None) for a in ordered]
    elif method == "adl":
        def score(c: Counterparty) -> Fraction:
            # The contract scores the profit floored to units, not the exact profit.
            pnl = Fraction(profits[c.account], 10**decimals)
            notional = c.entry_price * c.size
            equity = c.collateral + pnl
            if notional <= 0 or equity <= 0:
                raise RuleError(f"counterparties: account {clip(c.account)} has no defined ADL score")
            return (pnl / notional) * (mark * c.size / equity)

        ranked = sorted(eligible, key=lambda c: (-score(c), c.account))
        remaining = S
        gap = abs(fill - bankruptcy)
        for c in ranked:
            if remaining == 0:
                break
            units = min(remaining, profits[c.account])
            remaining -= units
            size = min(Fraction(units, 10**decimals) / gap, c.size)
            paid.append((c.account, units, format_amount(_floor_units(size, QTY_PLACES), QTY_PLACES)))
        unresolved = remaining
    else:
        unresolved = S
    return paid, unresolved


def counterparties(raw: Any, liquidated: str) -> list[Counterparty]:
    """The recorded counterparties, checked (RuleError naming the field)."""
    return _counterparties(raw, liquidated)


def _socialize(
    s: Settlement, method: str, cps: list[Counterparty], mark: Fraction, fill: Fraction,
    asset: str, decimals: int,
) -> None:
    """Spread the shortfall `s.socialized` per `method`; append its events to `s.events`."""
    S = s.socialized
    paid, s.unresolved = spread(method, cps, S, mark, fill, s.bankruptcy, decimals)
    s.events.append(("socialized_loss_assessed", {
        "asset": asset, "amount": format_amount(S, decimals), "method": method,
        "unresolved": format_amount(s.unresolved, decimals),
    }))
    adl_price: str | None = format_decimal(s.bankruptcy, PRICE_PLACES) if method == "adl" else None
    for account, units, qty in paid:
        if units <= 0:
            continue
        s.clawbacks[account] = units
        s.events.append(("clawback_charged", {
            "asset": asset, "account": account, "amount": format_amount(units, decimals),
            "method": method, "adl_quantity": qty, "adl_price": adl_price,
        }))


# ---------------------------------------------------------------- comparison

_AMOUNT_FIELDS = ("fee", "remainder", "deficit", "fund_payment", "socialized", "unresolved")


def _differs(where: str, expected: Any, got: Any) -> str:
    return f"{where}: expected {clip(expected)}, got {clip(got)}"


def outcome_mismatch(expected: Settlement, recorded: Any, decimals: int) -> str | None:
    """First field where a recorded `outcome` differs from the rules, or None.

    Every field is pinned by the contract, display roundings included (`delta` toward minus
    infinity to units; prices and rates half-even; `method` always the policy's), so the
    recorded strings must equal the rules' strings exactly.
    """
    if not isinstance(recorded, Mapping):
        return "outcome: not an object"
    if recorded == expected.outcome:
        return None
    for key in OUTCOME_FIELDS:
        where = f"outcome.{key}"
        if key not in recorded:
            return f"{where}: missing"
        got, want = recorded[key], expected.outcome[key]
        if got == want:
            continue
        if key in _AMOUNT_FIELDS or key == "delta":
            try:  # a malformed amount says why, not only that it differs
                parse_amount(got, decimals)
            except WireError as exc:
                return f"{where}: {exc}"
        return _differs(where, want, got)
    extra = sorted(set(recorded) - set(OUTCOME_FIELDS))
    return f"outcome.{extra[0]}: unexpected field" if extra else None


def conservation_error(recorded: Mapping[str, Any], delta: Fraction, decimals: int) -> str | None:
    """Check the contract's conservation on a recorded outcome (amount fields well-formed).

    surplus: fee + remainder <= delta < fee + remainder + unit;
    deficit: fund_payment + socialized == deficit and socialized >= unresolved.
    """
    u = {k: parse_amount(recorded[k], decimals) for k in _AMOUNT_FIELDS}
    scaled = delta * 10**decimals
    if delta > 0:
        kept = u["fee"] + u["remainder"]
        if not kept <= scaled < kept + 1:
            return f"outcome: fee + remainder = {kept} units does not conserve delta {scaled} units"
        if u["deficit"] or u["fund_payment"] or u["socialized"] or u["unresolved"]:
            return "outcome: a surplus liquidation records a deficit amount"
    elif delta < 0:
        if u["fund_payment"] + u["socialized"] != u["deficit"]:
            return "outcome: fund_payment + socialized != deficit"
        if u["unresolved"] > u["socialized"]:
            return "outcome: unresolved exceeds socialized"
        if u["fee"] or u["remainder"]:
            return "outcome: a deficit liquidation records a fee or remainder"
    elif any(u.values()):
        return "outcome: a zero-delta liquidation records a non-zero amount"
    return None


def derived_mismatch(
    expected: Mapping[str, Any], recorded: Any, decimals: int
) -> str | None:
    """First data field where a recorded derived event differs from the rules, or None."""
    if not isinstance(recorded, Mapping):
        return "data: not an object"
    for key, want in expected.items():
        where = f"data.{key}"
        if key not in recorded:
            return f"{where}: missing"
        got = recorded[key]
        if got == want:
            continue
        if key in ("amount", "unresolved"):
            try:
                parse_amount(got, decimals)
            except WireError as exc:
                return f"{where}: {exc}"
        return _differs(where, want, got)
    extra = sorted(set(recorded) - set(expected))
    return f"data.{extra[0]}: unexpected field" if extra else None
