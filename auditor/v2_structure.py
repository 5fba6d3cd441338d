"""The structure of a format v2 log, checked event by event: pools, market assignments,
transfers, claim caps, capital and fees per pool, and policy/2 (schemas/README.md "Format
v2 (pools)"; docs/FORMAT-V2-DRAFT.md sections 2 and 3). State for `auditor.replay_v2`."""

from __future__ import annotations

import re
from collections import deque
from typing import Any

from auditor import rules
from auditor.formats.clip import clip
from auditor.formats.wire import WireError, parse_decimal
from auditor.pool_rules import Cap, transfer_error
from auditor.replay import FEES, _Fail, _schema
from auditor.v2_policy import MAX_SECONDS, POLICY_FORMAT, POLICY_KEYS, PoolPolicy, pool_policies
from auditor.v2_value import asset_terms

# The v2 replayer (auditor.replay_v2.V2Replayer) is typed Any here: importing it, even only
# for the type checker, would close an import cycle (tests/test_layers.py).
V2Replayer = Any

# The (type, version) pairs a v2 region admits (draft section 1; V2-CONTRACT).
V2_VERSIONS = {
    "fund_opened": 2, "policy_set": 2, "pool_created": 1, "market_assigned": 1,
    "capital_transferred": 1, "claim_cap_set": 1, "capital_injected": 2, "capital_withdrawn": 2,
    "fee_inflow": 2, "market_observed": 1, "liquidation_settled": 2,
    "large_liquidation_settled": 2, "counterparties_listed": 1, "deficit_covered": 2,
    "backstop_drawn": 1, "socialized_loss_assessed": 2, "clawback_charged": 2,
    "adl_started": 1, "adl_ended": 1, "asset_priced": 1, "asset_converted": 1,
}
# Types with no version in a v2 region (v1's, and those of later sessions: draft section 1).
OTHER_TYPES = frozenset({"reserve_rebalanced", "fund_upgraded"})
V2_FAMILIES = {
    "liquidation_settled": "liquidation", "large_liquidation_settled": "liquidation",
    "fee_inflow": "fee", "capital_injected": "capital", "capital_withdrawn": "capital",
    "market_observed": "observation", "policy_set": "policy", "pool_created": "pool",
    "market_assigned": "assignment", "capital_transferred": "transfer",
    "claim_cap_set": "claim_cap", "asset_priced": "price", "asset_converted": "conversion",
}
_LIQ = frozenset({
    "account", "market", "side", "size", "entry_price", "collateral", "fill_price",
    "mark_price", "counterparties", "asset", "policy_version", "outcome", "pool"})
_CAPITAL = frozenset({"asset", "amount", "source", "pool"})
_ADL = frozenset({"pool", "asset", "balance", "peak", "peak_index", "peak_time",
                  "window_seconds", "ratio", "policy_version"})
V2_DATA_FIELDS = {
    "fund_opened": frozenset({"fund", "assets", "valuation", "pools", "markets"}),
    "policy_set": frozenset({"policy_version", "policy", "policy_hash"}),
    "pool_created": frozenset({"pool", "kind"}),
    "market_assigned": frozenset({"market", "pool", "from", "reason", "spec"}),
    "capital_transferred": frozenset({"from_pool", "to_pool", "asset", "amount", "authority",
                                      "reason"}),
    "claim_cap_set": frozenset({"market", "asset", "total", "per_period", "period_seconds"}),
    "capital_injected": _CAPITAL,
    "capital_withdrawn": _CAPITAL,
    "fee_inflow": frozenset({"pool", "kind", "asset", "amount", "account"}),
    "market_observed": frozenset({"market", "mark_price", "open_interest"}),
    "liquidation_settled": _LIQ,
    "large_liquidation_settled": (_LIQ - {"counterparties"})
    | {"counterparty_count", "counterparties_sha256"},
    "counterparties_listed": frozenset({"chunk", "counterparties"}),
    "deficit_covered": frozenset({"pool", "market", "asset", "amount", "account"}),
    "backstop_drawn": frozenset({"pool", "for_pool", "market", "asset", "amount", "account",
                                 "limit"}),
    "socialized_loss_assessed": frozenset({"pool", "market", "asset", "amount", "method",
                                           "unresolved"}),
    "clawback_charged": frozenset({"pool", "market", "asset", "account", "amount", "method",
                                   "adl_quantity", "adl_price"}),
    "adl_started": _ADL | {"start_ratio", "minimum_balance"},
    "adl_ended": _ADL | {"stop_ratio", "reason"},
    "asset_priced": frozenset({"asset", "kind", "value", "currency", "underlying", "source"}),
    "asset_converted": frozenset({"pool", "from_asset", "from_amount", "to_asset", "to_amount",
                                  "venue", "rate", "from_price", "to_price", "from_haircut",
                                  "to_haircut"}),
}
POOL_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
CURRENCY = re.compile(r"[A-Z][A-Z0-9]{0,15}")
POOL_KINDS = ("isolated", "shared", "new_listing")
REASONS = ("listing", "ejection", "regrouping")
TRANSFER_REASONS = ("rebalance", "replenish", "ejection", "wind_down", "other")
FEE_KINDS = ("trading_fee_share", "other")
SOURCES = ("operator", "underwriter")


class Structure:
    """Pools, markets, caps, claims and the pools' policy, kept by the v2 replay."""

    def __init__(self, r: V2Replayer) -> None:
        self.r = r
        self.pools: dict[str, dict[str, int]] = {}   # pool -> asset -> units
        self.kinds: dict[str, str] = {}
        self.created: dict[str, int] = {}            # pool -> creation index (ADL series c)
        self.market_pool: dict[str, str] = {}
        self.specs: dict[str, dict[str, Any]] = {}   # market -> spec without pool
        self.caps: dict[str, Cap] = {}
        self.claims: dict[str, list[tuple[int, str, int]]] = {}
        self.pool_policy: dict[str, PoolPolicy] = {}
        self.valuation: dict[str, Any] = {}          # fund_opened/2's {currency, decimals}

    # ------------------------------------------------------------ helpers

    def _new_pool(self, pool: Any, kind: Any, where: str) -> None:
        if type(pool) is not str or not POOL_ID.fullmatch(pool):
            raise _Fail(f"{where}: {clip(pool)} is not a pool id")
        if pool in self.pools:
            raise _Fail(f"{where}: pool {pool} exists")
        if kind not in POOL_KINDS:
            raise _Fail(f"{where.rsplit('.', 1)[0] if '.' in where else 'data'}.kind: "
                        f"{clip(kind)} is not one of {', '.join(POOL_KINDS)}")
        self.pools[pool] = dict.fromkeys(self.r.decimals, 0)
        self.kinds[pool] = kind
        self.created[pool] = self.r.count
        self.r.adl.created(pool, self.r.count)

    def _holder(self, pool: str) -> str | None:
        return next((m for m, p in self.market_pool.items() if p == pool), None)

    def _assign(self, market: str, pool: Any, where: str) -> None:
        if pool not in self.pools:
            raise _Fail(f"{where}: unknown pool {clip(pool)}")
        if self.kinds[pool] == "isolated":
            held = self._holder(pool)
            if held is not None and held != market:
                raise _Fail(f"{where}: isolated pool {pool} already holds {held}")
        self.market_pool[market] = pool

    def _spec(self, spec: Any, where: str, with_pool: bool) -> dict[str, Any]:
        """A market spec (draft 2.2), checked; returned without its `pool`."""
        if not isinstance(spec, dict):
            raise _Fail(f"{where}: not a market spec")
        kind = spec.get("kind")
        keys = {"kind", "settlement"} | ({"quote_currency", "face_value"} if kind == "inverse"
                                         else set())
        if kind not in ("linear", "inverse"):
            raise _Fail(f"{where}.kind: {clip(kind)} is not linear or inverse")
        keys |= {"pool"} if with_pool else set()
        if set(spec) != keys:
            raise _Fail(rules.fields_error(spec, frozenset(keys), f"{where}."))
        if spec["settlement"] not in self.r.decimals:
            raise _Fail(f"{where}.settlement: {clip(spec['settlement'])} is not an asset of the fund")
        if kind == "inverse":
            if type(spec["quote_currency"]) is not str or not CURRENCY.fullmatch(spec["quote_currency"]):
                raise _Fail(f"{where}.quote_currency: {clip(spec['quote_currency'])} is not a currency")
            try:
                face = parse_decimal(spec["face_value"])
            except WireError as exc:
                raise _Fail(f"{where}.face_value: {exc}") from None
            if face <= 0:
                raise _Fail(f"{where}.face_value: {clip(spec['face_value'])} is not positive")
        return {k: v for k, v in spec.items() if k != "pool"}

    def _list(self, market: Any, spec: dict[str, Any]) -> None:
        self.specs[market] = spec
        self.r.markets[market] = spec["settlement"]
        self.r.prices[market] = deque(maxlen=rules.MAX_WINDOW + 1)
        self.claims[market] = []

    def market(self, data: dict[str, Any], key: str = "market") -> str:
        """A listed market named by `data[key]`."""
        market = data[key]
        if market not in self.specs:
            raise _Fail(f"data.{key}: unknown market {clip(market)}")
        return market  # type: ignore[no-any-return]

    # ------------------------------------------------------------ handlers

    def fund_opened(self, ev: dict[str, Any]) -> None:
        r = self.r
        data = r.open_fund(ev, only_decimals=True)
        valuation = data["valuation"]
        if not isinstance(valuation, dict) or set(valuation) != {"currency", "decimals"}:
            raise _Fail("data.valuation: must be {currency, decimals}")
        if type(valuation["currency"]) is not str or not CURRENCY.fullmatch(valuation["currency"]):
            raise _Fail(f"data.valuation.currency: {clip(valuation['currency'])} is not a currency")
        vd = valuation["decimals"]
        if type(vd) is not int or not 0 <= vd <= 18:
            raise _Fail(f"data.valuation.decimals: {clip(vd)} is not an integer in 0..18")
        r.value.currency, r.value.decimals = valuation["currency"], vd
        self.valuation = dict(valuation)
        pools = data["pools"]
        if not isinstance(pools, dict) or not pools:
            raise _Fail("data.pools: must name at least one pool")
        for pool, spec in pools.items():
            if not isinstance(spec, dict) or set(spec) != {"kind"}:
                raise _Fail(f"data.pools.{clip(pool)}: must be {{kind}}")
            self._new_pool(pool, spec["kind"], f"data.pools.{pool}")
        markets = data["markets"]
        if not isinstance(markets, dict):
            raise _Fail("data.markets: not an object")
        for market, spec in markets.items():
            where = f"data.markets.{market}"
            clean = self._spec(spec, where, with_pool=True)
            self._assign(market, spec["pool"], f"{where}.pool")
            self._list(market, clean)
        r.fund = data["fund"]

    def policy_set(self, ev: dict[str, Any]) -> None:
        r = self.r
        r._unique(ev)
        data = ev["data"]
        doc = data["policy"]
        if isinstance(doc, dict) and doc.get("format") != POLICY_FORMAT:
            raise _Fail("data.policy.format: a format 2 fund takes backstop-policy/2")
        _schema(ev)  # policies are rare: the whole document against the contract's limits
        if not isinstance(doc, dict):
            raise _Fail("data.policy: not an object")
        if doc.get("format") != POLICY_FORMAT:
            raise _Fail("data.policy.format: a format 2 fund takes backstop-policy/2")
        if set(doc) != POLICY_KEYS:
            raise _Fail(rules.fields_error(doc, POLICY_KEYS, "data.policy."))
        policy = r.checked_policy(data, doc)
        if doc["layers"] != []:
            raise _Fail("data.policy.layers: must be [] in format v2")
        terms = asset_terms(doc["assets"], r.decimals)
        parsed = pool_policies(doc["pools"], r.decimals, self.pools)
        r.policy = policy
        r.policy_doc = doc
        r.policy_hash = data["policy_hash"]  # checked equal to the hash of doc
        self.pool_policy = parsed
        r.value.terms = terms

    def pool_created(self, ev: dict[str, Any]) -> None:
        self.r._unique(ev)
        data = ev["data"]
        self._new_pool(data["pool"], data["kind"], "data.pool")

    def market_assigned(self, ev: dict[str, Any]) -> None:
        self.r._unique(ev)
        data = ev["data"]
        market, pool, reason = data["market"], data["pool"], data["reason"]
        if reason not in REASONS:
            raise _Fail(f"data.reason: {clip(reason)} is not one of {', '.join(REASONS)}")
        if type(market) is not str or not market:
            raise _Fail(f"data.market: {clip(market)} is not a market id")
        if reason == "listing":
            if market in self.specs:
                raise _Fail(f"data.market: {market} is already listed")
            if data["from"] is not None:
                raise _Fail(f"data.from: expected null for a listing, got {clip(data['from'])}")
            spec = self._spec(data["spec"], "data.spec", with_pool=False)
            self._assign(market, pool, "data.pool")
            self._list(market, spec)
            return
        current = self.market_pool.get(market)
        if current is None:
            raise _Fail(f"data.market: unknown market {clip(market)}")
        if data["spec"] is not None:
            raise _Fail(f"data.spec: expected null for {reason}, got a spec")
        if data["from"] != current:
            raise _Fail(f"data.from: expected {current} (the market's pool), got {clip(data['from'])}")
        if pool == current:
            raise _Fail(f"data.pool: {market} is already in pool {current}")
        self._assign(market, pool, "data.pool")

    def transferred(self, ev: dict[str, Any]) -> None:
        r = self.r
        r._unique(ev)
        data = ev["data"]
        asset = data["asset"]
        units = r.amount(data, "amount", asset)
        authority = data["authority"]
        if type(authority) is not str or not 0 < len(authority) <= 200:
            raise _Fail(f"data.authority: {clip(authority)} is not 1 to 200 characters")
        if data["reason"] not in TRANSFER_REASONS:
            raise _Fail(f"data.reason: {clip(data['reason'])} is not one of {', '.join(TRANSFER_REASONS)}")
        error = transfer_error(self.pools, data["from_pool"], data["to_pool"], asset, units)
        if error:
            raise _Fail(f"data.{error}")
        r.move(data["from_pool"], asset, -units, "data.from_pool")
        r.move(data["to_pool"], asset, units, "data.to_pool")

    def claim_cap(self, ev: dict[str, Any]) -> None:
        r = self.r
        r._unique(ev)
        data = ev["data"]
        market = self.market(data)
        asset = r.markets[market]
        if data["asset"] != asset:
            raise _Fail(f"data.asset: expected {asset} (the settlement asset of {market}), "
                        f"got {clip(data['asset'])}")
        parts: dict[str, int | None] = {}
        for key in ("total", "per_period"):
            parts[key] = None if data[key] is None else r.amount(data, key, asset)
        seconds = data["period_seconds"]
        if (data["per_period"] is None) != (seconds is None):
            raise _Fail("data.period_seconds: per_period and period_seconds are both given or both null")
        if seconds is not None and (type(seconds) is not int or not 1 <= seconds <= MAX_SECONDS):
            raise _Fail(f"data.period_seconds: {clip(seconds)} is not an integer in 1..{MAX_SECONDS}")
        self.caps[market] = Cap(r.count, parts["total"], parts["per_period"], seconds)

    def capital(self, ev: dict[str, Any]) -> None:
        r = self.r
        r._unique(ev)
        data = ev["data"]
        if data["source"] not in SOURCES:
            raise _Fail(f"data.source: {clip(data['source'])} is not operator or underwriter")
        asset = data["asset"]
        units = r.amount(data, "amount", asset)
        if ev["type"] == "capital_withdrawn":
            units = -units
        r.move(data["pool"], asset, units, "data.pool")

    def fee_inflow(self, ev: dict[str, Any]) -> None:
        r = self.r
        r._unique(ev)
        data = ev["data"]
        kind = data["kind"]
        if kind == "liquidation_fee":
            raise _Fail("data.kind: a liquidation_fee inflow is only ever derived from a "
                        "liquidation (it must follow its liquidation_settled, same ref)")
        if kind not in FEE_KINDS:
            raise _Fail(f"data.kind: {clip(kind)} is not a fee kind")
        asset = data["asset"]
        units = r.amount(data, "amount", asset)
        r.move(data["pool"], asset, units, "data.pool")
        if data["account"] is not None:
            r.account(data["account"], asset, FEES, units)
