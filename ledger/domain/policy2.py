"""Policy/2 (`backstop-policy/2`): the fund-wide terms of policy/1 plus rules per pool.

V2-CONTRACT.md "Policy/2" and docs/FORMAT-V2-DRAFT.md section 3: `fee_cap_rate`, `fund_share`,
`socialization` as policy/1; per pool an optional `minimum_reserve`, `per_event_cap`,
`backstop {pool, limit}` and `adl` rule; `assets`, the valuation terms per asset
(ledger.domain.valuation); `layers` is `[]`. The parse gives the per-pool waterfall's inputs
(`PoolTerms`, `Backstop`), the ADL rule and each asset's haircut, price source and floor.
Pure; amounts in integer minor units.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from fractions import Fraction
from functools import cached_property
from types import MappingProxyType
from typing import Any

from auditor.formats.schemas import first_error
from auditor.formats.wire import WireError, parse_amount, parse_decimal
from ledger.domain.adltrigger import AdlRule
from ledger.domain.errors import PolicyError
from ledger.domain.policy import FixedShare, VolatilityCurve, policy_hash
from ledger.domain.policy import _amounts as amounts_of  # one amount-map rule for both formats
from ledger.domain.policy import _fund_share as fund_share_of
from ledger.domain.policy import _unit_rate as unit_rate_of
from ledger.domain.pools import Backstop, PoolTerms
from ledger.domain.valuation import AssetTerms

POLICY_V2 = "backstop-policy/2"


@dataclass(frozen=True)
class PoolRules:
    """One pool's rules (an absent pool: reserve 0, no cap, no backstop, no ADL rule)."""

    minimum_reserve: Mapping[str, int]
    per_event_cap: Mapping[str, int]
    backstop_pool: str | None
    backstop_limit: Mapping[str, int]
    adl: AdlRule | None


_NO_RULES = PoolRules(MappingProxyType({}), MappingProxyType({}), None, MappingProxyType({}),
                      None)


@dataclass(frozen=True)
class PolicyV2:
    """A parsed, checked policy/2 document."""

    version: int
    fee_cap_rate: Fraction
    fund_share: FixedShare | VolatilityCurve
    socialization: str
    hash: str
    pools: Mapping[str, PoolRules]
    assets: Mapping[str, AssetTerms] = dataclass_field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_document(cls, doc: Any, decimals: Mapping[str, int],
                      pools: Collection[str]) -> PolicyV2:
        """Parse `doc` for a fund with assets `decimals` and existing `pools`; PolicyError
        names the field (without the `policy.` prefix the fund adds)."""
        if not isinstance(doc, dict) or "format" not in doc:
            raise PolicyError(f"format: a format 2 fund takes {POLICY_V2}")
        problem = first_error("policy", doc) or _float_integer(doc)
        if problem is not None:
            raise PolicyError(problem)
        parsed = {pool: _pool_rules(pool, raw, decimals, pools)
                  for pool, raw in doc["pools"].items()}
        return cls(version=doc["version"], fee_cap_rate=unit_rate_of(doc["fee_cap_rate"],
                                                                     "fee_cap_rate"),
                   fund_share=fund_share_of(doc["fund_share"]),
                   socialization=doc["socialization"], hash=policy_hash(doc),
                   pools=MappingProxyType(parsed),
                   assets=MappingProxyType(_asset_terms(doc["assets"], decimals)))

    def rules(self, pool: str) -> PoolRules:
        """The pool's rules (none when the policy does not name it)."""
        return self.pools.get(pool, _NO_RULES)

    def share(self, prices: Sequence[Fraction]) -> tuple[Fraction, Fraction]:
        """`(share, volatility)` given the mark prices observed before the liquidation."""
        return self.fund_share.share(prices)

    def terms(self, pool: str, asset: str, balance: int, in_adl: bool) -> PoolTerms:
        """The waterfall's view of `pool` in `asset`."""
        return PoolTerms(pool, balance, self.rules(pool).minimum_reserve.get(asset, 0), in_adl)

    def cap(self, pool: str, asset: str) -> int | None:
        """The pool's per-event cap in `asset` (None: no cap)."""
        return self.rules(pool).per_event_cap.get(asset)

    def backstop(self, pool: str, asset: str, balance_of: Mapping[str, int],
                 adl: Collection[str]) -> Backstop | None:
        """The pool's backstop in `asset`, when its rule's limit names the asset
        (`balance_of`: each pool's balance of `asset`; `adl`: the pools in ADL)."""
        rules = self.rules(pool)
        q = rules.backstop_pool
        if q is None or asset not in rules.backstop_limit:
            return None
        return Backstop(self.terms(q, asset, balance_of.get(q, 0), q in adl),
                        rules.backstop_limit[asset])

    def adl_rule(self, pool: str) -> AdlRule | None:
        """The pool's ADL trigger rule, if any."""
        return self.rules(pool).adl

    @cached_property
    def adl_pools(self) -> frozenset[str]:
        """The pools with an ADL rule (most policies: none, and the trigger has nothing to
        evaluate after a fact)."""
        return frozenset(pool for pool, rules in self.pools.items() if rules.adl is not None)


def _pool_rules(pool: str, raw: Mapping[str, Any], decimals: Mapping[str, int],
                pools: Collection[str]) -> PoolRules:
    where = f"pools.{pool}"
    if pool not in pools:
        raise PolicyError(f"{where}: unknown pool {pool}")
    reserve = amounts_of(raw.get("minimum_reserve", {}), f"{where}.minimum_reserve", decimals)
    cap = amounts_of(raw.get("per_event_cap", {}), f"{where}.per_event_cap", decimals)
    backstop_pool, limit = None, amounts_of({}, "", decimals)
    if "backstop" in raw:
        backstop_pool = raw["backstop"]["pool"]
        if backstop_pool not in pools:
            raise PolicyError(f"{where}.backstop.pool: unknown pool {backstop_pool}")
        if backstop_pool == pool:
            raise PolicyError(f"{where}.backstop.pool: a pool cannot be its own backstop")
        limit = amounts_of(raw["backstop"]["limit"], f"{where}.backstop.limit", decimals)
    return PoolRules(reserve, cap, backstop_pool, limit, _adl(where, raw.get("adl"), decimals))


def _adl(where: str, raw: Mapping[str, Any] | None, decimals: Mapping[str, int]) -> AdlRule | None:
    if raw is None:
        return None
    asset = raw["asset"]
    if asset not in decimals:
        raise PolicyError(f"{where}.adl.asset: unknown asset {asset!r}")
    try:
        minimum = parse_amount(raw["minimum_balance"], decimals[asset])
    except WireError as error:
        raise PolicyError(f"{where}.adl.minimum_balance: {error}") from None
    try:
        return AdlRule(asset, raw["window_seconds"], raw["start_ratio"], raw["stop_ratio"],
                       minimum)
    except PolicyError as error:  # AdlRule names `adl.FIELD`
        raise PolicyError(f"{where}.{error}") from None


def _asset_terms(raw: Mapping[str, Any], decimals: Mapping[str, int]) -> dict[str, AssetTerms]:
    """`assets`, checked against the fund: each a fund asset; an underlying only for
    `redemption_ratio`, a fund asset valued `par` or `oracle`; a floor only for
    `redemption_ratio` (the README's decision Q7)."""
    out = {}
    for asset, spec in raw.items():
        where = f"assets.{asset}"
        if asset not in decimals:
            raise PolicyError(f"{where}: unknown asset {asset!r}")
        source, underlying = spec["source"], spec.get("underlying")
        if source == "redemption_ratio":
            base = raw.get(underlying)
            if underlying not in decimals or base is None or base["source"] == source:
                raise PolicyError(f"{where}.underlying: {underlying!r} is not a fund asset "
                                  "valued par or oracle in assets")
        elif underlying is not None:
            raise PolicyError(f"{where}.underlying: only a redemption_ratio asset has one")
        if "floor" in spec and source != "redemption_ratio":
            raise PolicyError(f"{where}.floor: only a redemption_ratio asset may have a floor")
        floor = parse_decimal(spec["floor"]) if "floor" in spec else None
        out[asset] = AssetTerms(unit_rate_of(spec["haircut"], f"{where}.haircut"),
                                spec["haircut"], source, underlying, floor)
    return out


def _float_integer(doc: Mapping[str, Any]) -> str | None:
    """JSON Schema counts 2.0 as an integer; the wire does not (as policy/1)."""
    values: list[tuple[str, Any]] = [("version", doc["version"])]
    values.append(("fund_share.volatility.window",
                   doc["fund_share"].get("volatility", {}).get("window")))
    for pool, raw in doc["pools"].items():
        if "adl" in raw:
            values.append((f"pools.{pool}.adl.window_seconds", raw["adl"]["window_seconds"]))
    for field, value in values:
        if isinstance(value, float):
            return f"{field}: {value!r} is not an integer (no fraction or exponent)"
    return None
