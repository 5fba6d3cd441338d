"""Pools: the fund's structure, its balances per pool, transfers, and the per-pool waterfall.

schemas/README.md, "Format v2 (pools)". Pure values and functions: amounts are integer minor
units, `None` is "no limit" (∞). How a shortfall is spread over counterparties (pro rata, the
ADL ranking, linear or inverse) is the caller's `socialize` callable, so one waterfall serves
both market kinds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from auditor.formats.wire import format_amount
from ledger.domain.errors import FundRuleError
from ledger.domain.waterfall import Clawback

POOL_KINDS = ("isolated", "shared", "new_listing")
MARKET_KINDS = ("linear", "inverse")
POOL_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")  # the fund-id pattern

# What the waterfall asks of the caller: clawbacks for `amount` units under `method`.
Socialize = Callable[[int, str], Sequence[Clawback]]


@dataclass(frozen=True)
class Pool:
    """A pool's identity; its balances live in `PoolBalances`."""

    id: str
    kind: str

    def __post_init__(self) -> None:
        if not POOL_ID.fullmatch(self.id):
            raise FundRuleError(f"pool: {self.id!r} is not a pool id")
        if self.kind not in POOL_KINDS:
            raise FundRuleError(f"kind: {self.kind!r} is not one of {', '.join(POOL_KINDS)}")


@dataclass(frozen=True)
class MarketSpec:
    """A market as listed: linear (v1's `quote` is `settlement`) or inverse (coin-settled)."""

    kind: str
    settlement: str
    quote_currency: str | None = None
    face_value: Fraction | None = None

    def __post_init__(self) -> None:
        if self.kind not in MARKET_KINDS:
            raise FundRuleError(f"kind: {self.kind!r} is not linear or inverse")
        if self.kind == "inverse" and (self.quote_currency is None or self.face_value is None
                                       or self.face_value <= 0):
            raise FundRuleError("face_value: an inverse market needs a quote currency and a positive face value")


@dataclass(frozen=True)
class Structure:
    """Which pools exist and which pool holds each listed market (at one index)."""

    pools: Mapping[str, Pool] = field(default_factory=dict)
    markets: Mapping[str, MarketSpec] = field(default_factory=dict)
    assignment: Mapping[str, str] = field(default_factory=dict)

    def add_pool(self, pool: Pool) -> Structure:
        """The structure with `pool` created (pool ids are never reused)."""
        if pool.id in self.pools:
            raise FundRuleError(f"pool: pool {pool.id} exists")
        return Structure({**self.pools, pool.id: pool}, self.markets, self.assignment)

    def markets_of(self, pool: str) -> list[str]:
        """The markets `pool` holds, sorted."""
        return sorted(m for m, p in self.assignment.items() if p == pool)

    def assign(self, market: str, pool: str, spec: MarketSpec | None = None) -> Structure:
        """List `market` in `pool` (with its `spec`) or, without a spec, move it there."""
        if pool not in self.pools:
            raise FundRuleError(f"pool: unknown pool {pool}")
        if spec is not None and market in self.markets:
            raise FundRuleError(f"market: market {market} is already listed")
        if spec is None and market not in self.markets:
            raise FundRuleError(f"market: unknown market {market}")
        if spec is None and self.assignment[market] == pool:
            raise FundRuleError(f"pool: market {market} is already in pool {pool}")
        held = self.markets_of(pool)
        if self.pools[pool].kind == "isolated" and held:
            raise FundRuleError(f"pool: isolated pool {pool} already holds market {held[0]}")
        markets = self.markets if spec is None else {**self.markets, market: spec}
        return Structure(self.pools, markets, {**self.assignment, market: pool})


@dataclass(frozen=True)
class PoolBalances:
    """Every pool's balance per asset, in units. No balance is ever below 0."""

    balances: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def of(self, pool: str, asset: str) -> int:
        return self.balances.get(pool, {}).get(asset, 0)

    def fund_total(self, asset: str) -> int:
        """The fund's balance of `asset`: the sum of its pools' balances."""
        return sum(assets.get(asset, 0) for assets in self.balances.values())

    def change(self, pool: str, asset: str, units: int) -> PoolBalances:
        """The balances with `units` (signed) added to `pool`'s `asset`; refused below 0."""
        after = self.of(pool, asset) + units
        if after < 0:
            raise FundRuleError(f"amount: takes pool {pool} below zero in {asset}")
        inner = {**self.balances.get(pool, {}), asset: after}
        return PoolBalances(MappingProxyType({**self.balances, pool: MappingProxyType(inner)}))

    def transfer(self, from_pool: str, to_pool: str, asset: str, amount: int) -> PoolBalances:
        """Move `amount` units from one pool to another: one amount, so no money is created."""
        if from_pool == to_pool:
            raise FundRuleError(f"to_pool: is from_pool {from_pool}")
        if amount <= 0:
            raise FundRuleError("amount: must be positive")
        held = self.of(from_pool, asset)
        if amount > held:
            raise FundRuleError(f"amount: {amount} units exceed pool {from_pool}'s balance {held} of {asset}")
        return self.change(from_pool, asset, -amount).change(to_pool, asset, amount)


@dataclass(frozen=True)
class PoolTerms:
    """One pool as the waterfall sees it, in the deficit's asset, before the liquidation."""

    pool: str
    balance: int
    reserve: int = 0
    in_adl: bool = False

    @property
    def available(self) -> int:
        return max(0, self.balance - self.reserve)


@dataclass(frozen=True)
class Backstop:
    """The paying pool's backstop rule in the deficit's asset: pool `terms.pool`, `limit`."""

    terms: PoolTerms
    limit: int


@dataclass(frozen=True)
class DeficitSplit:
    """How one deficit `D` splits, exactly: fund + backstop + socialized == D."""

    deficit: int
    fund_payment: int
    backstop_payment: int
    backstop_pool: str | None
    socialized: int
    unresolved: int
    method: str
    adl_mode: bool
    claim_remaining: int | None
    clawbacks: tuple[Clawback, ...] = ()

    def apply(self, balances: PoolBalances, pool: str, asset: str) -> PoolBalances:
        """The pools' balances after the payments (the paying pool, then its backstop)."""
        after = balances.change(pool, asset, -self.fund_payment)
        if self.backstop_pool is not None:
            after = after.change(self.backstop_pool, asset, -self.backstop_payment)
        return after

    def events(self, *, pool: str, market: str, asset: str, account: str, decimals: int,
               limit: int | None) -> list[tuple[str, dict[str, Any]]]:
        """The derived events `(type, data)` in log order, each only when its amount is > 0:
        `deficit_covered/2`, `backstop_drawn/1` (`limit`: the rule's limit), then
        `socialized_loss_assessed/2` and one `clawback_charged/2` per paying account."""
        def amount(units: int) -> str:
            return format_amount(units, decimals)

        head = {"pool": pool, "market": market, "asset": asset}
        out: list[tuple[str, dict[str, Any]]] = []
        if self.fund_payment > 0:
            out.append(("deficit_covered", {**head, "amount": amount(self.fund_payment),
                                            "account": account}))
        if self.backstop_payment > 0 and limit is not None:
            out.append(("backstop_drawn", {
                "pool": self.backstop_pool, "for_pool": pool, "market": market, "asset": asset,
                "amount": amount(self.backstop_payment), "account": account,
                "limit": amount(limit)}))
        if self.socialized > 0:
            out.append(("socialized_loss_assessed", {
                **head, "amount": amount(self.socialized), "method": self.method,
                "unresolved": amount(self.unresolved)}))
        out.extend(("clawback_charged", {**head, **claw.data(decimals), "method": self.method})
                   for claw in self.clawbacks)
        return out


def _least(*limits: int | None) -> int:
    """The smallest of the limits that exist (None is ∞; at least one must exist)."""
    return min(x for x in limits if x is not None)


def _checked(clawbacks: Sequence[Clawback], amount: int) -> int:
    """Their total, which a socializer must keep within `amount` (else money would appear)."""
    total = sum(c.amount for c in clawbacks)
    if total > amount or any(c.amount <= 0 for c in clawbacks):
        raise ValueError(f"clawbacks of {total} units for a shortfall of {amount}")
    return total


def pay(deficit: int, pool: PoolTerms, cap: int | None, remaining: int | None,
        backstop: Backstop | None) -> tuple[int, int]:
    """Steps 1-4 of the normal mode: `(fund_payment, backstop_payment)` for `deficit` units."""
    available = pool.available
    fund = _least(deficit, available, cap, remaining)
    drawn = 0
    # The backstop is drawn only by an exhausted pool: one whose payment stopped at its
    # available balance (a tie with the cap or the claim counts), never by one the cap stopped.
    if backstop is not None and fund == available and fund < deficit and not backstop.terms.in_adl:
        left_in_claim = None if remaining is None else remaining - fund
        drawn = _least(deficit - fund, left_in_claim, backstop.limit, backstop.terms.available)
    return fund, drawn


def split_deficit(deficit: int, pool: PoolTerms, *, method: str, socialize: Socialize,
                  cap: int | None = None, remaining: int | None = None,
                  backstop: Backstop | None = None) -> DeficitSplit:
    """The per-pool waterfall for a deficit of `deficit` units (> 0) of pool `pool`.

    `method` is the policy's socialization method; `cap` the pool's per-event cap and
    `remaining` the market's remaining claim (None: no limit); `backstop` the rule's pool and
    limit, only when the rule names the deficit's asset. In ADL mode (`pool.in_adl`) the ADL
    ranking (`socialize(deficit, "adl")`) runs first and the pool pays what it leaves.
    """
    if deficit <= 0:
        raise ValueError(f"deficit must be positive, got {deficit}")
    if pool.in_adl:
        clawbacks = tuple(socialize(deficit, "adl"))
        clawed = _checked(clawbacks, deficit)
        rest = deficit - clawed
        fund, drawn = pay(rest, pool, cap, remaining, backstop) if rest > 0 else (0, 0)
        unresolved = rest - fund - drawn
        socialized = clawed + unresolved
        method = "adl"
    else:
        fund, drawn = pay(deficit, pool, cap, remaining, backstop)
        socialized = deficit - fund - drawn
        clawbacks = tuple(socialize(socialized, method)) if socialized > 0 else ()
        unresolved = socialized - _checked(clawbacks, socialized)
    return DeficitSplit(
        deficit=deficit, fund_payment=fund, backstop_payment=drawn,
        backstop_pool=backstop.terms.pool if drawn > 0 and backstop is not None else None,
        socialized=socialized, unresolved=unresolved, method=method, adl_mode=pool.in_adl,
        claim_remaining=remaining, clawbacks=clawbacks)
