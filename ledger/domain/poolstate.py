"""A format 2 fund's state: its structure, balances per pool, claims, caps, ADL state.

Kept as plain JSON values in one attribute of the aggregate, `fund.v2` (aggregate snapshots
store the fund's attributes as JSON), and changed only by events: `open_state` by
`fund_opened/2` (from `Fund.__init__`), `after_event` by every event of a v2 log (from its
class's `apply`, ledger.domain.poolfund). A v1 fund has no `v2` attribute and runs none of
this. Pure: no I/O, and no import of the aggregate (which imports this).
"""

from __future__ import annotations

from bisect import bisect_right
from fractions import Fraction
from typing import Any

from auditor.formats.wire import parse_decimal
from ledger.domain.adltrigger import MAX_WINDOW_SECONDS
from ledger.domain.bookkeeping import pool_moves
from ledger.domain.errors import FundRuleError
from ledger.domain.instants import epoch_seconds
from ledger.domain.policy import policy_hash
from ledger.domain.policy2 import PolicyV2

# Parsed policy/2 documents by (hash, assets, pools): parsed once, not per liquidation.
_POLICIES: dict[tuple[str, tuple[tuple[str, int], ...], tuple[str, ...]], PolicyV2] = {}

# Every so many events, times and balance changes older than any window can reach are
# dropped, so that the state (and each aggregate snapshot of it) stays bounded.
PRUNE_EVERY = 4096

# Events that are claims of their market (V2-CONTRACT.md: what insurance paid for it).
CLAIMS = ("deficit_covered", "backstop_drawn")


def open_state(fund: Any, time: str, data: dict[str, Any]) -> None:
    """Set up a fund opened by `fund_opened/2` with `data` at `time` (index 0): each pool
    created and each market assigned at index 0 (V2-CONTRACT.md)."""
    fund.name = data["fund"]
    fund.assets = {a: spec["decimals"] for a, spec in data["assets"].items()}
    fund.markets = {m: spec["settlement"] for m, spec in data["markets"].items()}
    fund.balances = {asset: 0 for asset in fund.assets}
    fund.committed = {asset: [0, 0, 0] for asset in fund.assets}
    fund.policy = None
    fund.policy_version = 0
    fund.policy_hash = None
    fund.prices = {}
    fund.observed = {}
    fund.v2 = {
        "pools": {pool: spec["kind"] for pool, spec in data["pools"].items()},
        "created": {pool: 0 for pool in data["pools"]},
        "specs": {m: {k: v for k, v in spec.items() if k != "pool"}
                  for m, spec in data["markets"].items()},
        "assignment": {m: spec["pool"] for m, spec in data["markets"].items()},
        "balances": {pool: {} for pool in data["pools"]},
        # pool -> asset -> [[index, balance after it], ...]: the balance series' changes
        "changes": {},
        "claims": {},   # market -> [[index, time, units], ...]
        "caps": {},     # market -> [index, total, per_period, period_seconds] (units / None)
        "adl": {},      # pool in ADL -> the asset its rule watched
        "times": [time],  # every event's time from index `times_base` on
        "times_base": 0,
        "valuation": data["valuation"],  # {currency, decimals}
        "prices": {},   # asset -> [value, index] of its last kind-price asset_priced/1
        "ratios": {},   # asset -> underlying -> [value, index] of its last ratio
    }


def after_event(fund: Any, event: Any) -> None:
    """Book one event of a v2 log: its time, its pool and fund balance moves, its claim."""
    state = fund.v2
    index = event.originator_version - 1
    state["times"].append(event.time)
    if index % PRUNE_EVERY == 0 and len(state["times"]) > PRUNE_EVERY:
        _prune(state)
    kind, data = event.TYPE, event.data
    for pool, asset, units in pool_moves(kind, data, fund.assets):
        held = state["balances"][pool]
        balance = held[asset] = held.get(asset, 0) + units
        assert balance >= 0, "commands must refuse what takes a pool below zero"
        state["changes"].setdefault(pool, {}).setdefault(asset, []).append([index, balance])
    if kind in CLAIMS:
        units = pool_moves(kind, data, fund.assets)[0][2]
        state["claims"].setdefault(data["market"], []).append([index, event.time, -units])
    fund._book(event)


def _prune(state: dict[str, Any]) -> None:
    """Drop what no ADL window can read: times before the last one at or before
    τ(last) - 366 days (that one may be carried into a window), and each balance's changes
    before the last one at or before it (its balance then)."""
    times: list[str] = state["times"]
    horizon = epoch_seconds(times[-1]) - MAX_WINDOW_SECONDS
    low, high = 0, len(times)  # the first position after the horizon (times never decrease)
    while low < high:
        middle = (low + high) // 2
        if epoch_seconds(times[middle]) <= horizon:
            low = middle + 1
        else:
            high = middle
    keep = low - 1  # the last at or before the horizon
    if keep <= 0:
        return
    del times[:keep]
    base = state["times_base"] = state["times_base"] + keep
    for assets in state["changes"].values():
        for changes in assets.values():
            carried = bisect_right([change[0] for change in changes], base) - 1
            if carried > 0:
                del changes[:carried]


def pool_balance(fund: Any, pool: str, asset: str) -> int:
    """The pool's balance of `asset` now, in units."""
    return int(fund.v2["balances"].get(pool, {}).get(asset, 0))



def is_v2(fund: Any) -> bool:
    """Whether the fund was opened by `fund_opened/2`."""
    return getattr(fund, "v2", None) is not None


def active_policy(fund: Any) -> PolicyV2:
    """The parsed active policy/2."""
    if fund.policy is None:
        raise FundRuleError("policy: the fund has no policy yet")
    pools = tuple(fund.v2["pools"])
    key = (fund.policy_hash or policy_hash(fund.policy), tuple(sorted(fund.assets.items())), pools)
    policy = _POLICIES.get(key)
    if policy is None:
        if len(_POLICIES) >= 64:
            _POLICIES.clear()
        policy = _POLICIES[key] = PolicyV2.from_document(fund.policy, fund.assets, pools)
    return policy


def market_spec(fund: Any, market: str) -> dict[str, Any]:
    """A listed market's spec (without its pool), or FundRuleError naming `market`."""
    spec = fund.v2["specs"].get(market)
    if spec is None:
        raise FundRuleError(f"market: unknown market {market}")
    return spec  # type: ignore[no-any-return]


def price_records(fund: Any) -> tuple[dict[str, list[Any]], dict[str, dict[str, list[Any]]]]:
    """The recorded price book: (asset -> [value as recorded, index] of its last kind-`price`
    `asset_priced/1`, asset -> underlying -> [value, index] of its last kind-`ratio` one)."""
    return fund.v2.get("prices", {}), fund.v2.get("ratios", {})


def price_book(fund: Any) -> tuple[dict[str, Fraction], dict[tuple[str, str], Fraction]]:
    """The price book as exact values, the inputs of ledger.domain.valuation.valuation_price:
    (last price per asset, last ratio per (asset, underlying))."""
    prices, ratios = price_records(fund)
    return ({asset: parse_decimal(value) for asset, (value, _) in prices.items()},
            {(asset, underlying): parse_decimal(value)
             for asset, by in ratios.items() for underlying, (value, _) in by.items()})
