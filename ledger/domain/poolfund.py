"""A format 2 fund (pools): opening it, and the command of each of its fact types.

V2-CONTRACT.md and schemas/README.md "Format v2 (pools)". A fund opened by `fund_opened/2`
is the same `Fund` aggregate (ledger.domain.fund) holding its v2 state in `fund.v2`
(ledger.domain.poolstate); its facts run the commands here instead of the aggregate's v1
methods (the import picks the command table once per batch: `COMMANDS`), so a v1 fund runs
none of this. Every command checks the fact's time against the log's last event, triggers the
fact's own and derived events (events: ledger.domain.poolevents; a liquidation:
ledger.domain.poolsettle), then evaluates the ADL trigger (ledger.domain.pooladl).
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from auditor.formats.clip import clip
from auditor.formats.wire import format_amount, parse_amount_lenient
from ledger.domain.claims import ClaimCap
from ledger.domain.errors import FactError, FundRuleError, PolicyError
from ledger.domain.eventsize import check_fund_config, check_policy_line
from ledger.domain.fund import UNITS_LIMIT, Fund, instant
from ledger.domain.policy import policy_hash
from ledger.domain.policy2 import PolicyV2
from ledger.domain.pooladl import evaluate_adl
from ledger.domain.poolevents import (
    CapitalInjected2,
    CapitalTransferred,
    CapitalWithdrawn2,
    ClaimCapSet,
    FeeInflow2,
    FundOpened2,
    MarketAssigned,
    MarketObservedV2,
    PolicySet2,
    PoolCreated,
)
from ledger.domain.pools import POOL_KINDS
from ledger.domain.poolsettle import record_liquidation
from ledger.domain.poolstate import is_v2, market_spec, pool_balance
from ledger.domain.poolvalue import pool_values, record_conversion, record_price, valuation_inputs

__all__ = ["COMMANDS", "is_v2", "not_v1", "open_from_data", "open_fund", "pool_balances",
           "pool_values", "valuation_inputs"]

INITIAL_POLICY_REF = "init"


# -- opening ------------------------------------------------------------------------------

def config_data(config: Mapping[str, Any]) -> dict[str, Any]:
    """`fund_opened/2`'s data from a schema-checked v2 config (the config without `format`
    and `policy`), after the rules a schema cannot state; FundRuleError names the field."""
    assets, pools = config["assets"], config["pools"]
    held: dict[str, str] = {}
    for market, spec in config["markets"].items():
        if spec["pool"] not in pools:
            raise FundRuleError(f"markets.{market}.pool: unknown pool {spec['pool']}")
        if spec["settlement"] not in assets:
            raise FundRuleError(f"markets.{market}.settlement: unknown asset "
                                f"{spec['settlement']!r}")
        if pools[spec["pool"]]["kind"] == "isolated":
            if spec["pool"] in held:
                raise FundRuleError(f"markets.{market}.pool: isolated pool {spec['pool']} "
                                    f"already holds market {held[spec['pool']]}")
            held[spec["pool"]] = market
    return {key: config[key] for key in ("fund", "assets", "valuation", "pools", "markets")}


def open_fund(config: Mapping[str, Any], time: str) -> Fund:
    """A new v2 fund (pending `fund_opened/2`, then the config's policy as `policy_set/2`
    with ref `init`, and any ADL events it calls for)."""
    data = config_data(config)
    check_fund_config(data, time)
    fund = open_from_data(time, data)
    set_policy(fund, {"type": "policy", "id": INITIAL_POLICY_REF, "time": time,
                      "policy": config["policy"]})
    return fund


def open_from_data(time: str, data: dict[str, Any]) -> Fund:
    """A fund with `fund_opened/2` of `data` pending (restoring an export starts so)."""
    return Fund._create(FundOpened2, time=time, ref=None, data=data)


# -- queries ------------------------------------------------------------------------------

def pool_balances(fund: Fund) -> dict[str, dict[str, str]]:
    """Every pool's balance of every fund asset, as amounts (pools in creation order)."""
    return {pool: {asset: format_amount(pool_balance(fund, pool, asset), decimals)
                   for asset, decimals in fund.assets.items()}
            for pool in fund.v2["pools"]}


# -- commands -----------------------------------------------------------------------------

def _checked_time(fund: Fund, time: str) -> None:
    """Times of a v2 log are non-decreasing."""
    instant(time)  # the shape and a real instant, named as v1 names them
    last = fund.v2["times"][-1]
    if time != last and _order_key(time) < _order_key(last):
        raise FundRuleError(f"time: {time} is earlier than the log's last event ({last})")


def _order_key(time: str) -> tuple[str, str]:
    """A wire time's place in time order, without τ's exact arithmetic: its fixed-width
    `YYYY-MM-DDTHH:MM:SS` and its fraction digits padded to 6 (`.5Z` after `Z`)."""
    return time[:19], time[20:-1].ljust(6, "0")


def _pool(fund: Fund, record: Mapping[str, Any], field: str = "pool") -> str:
    pool = record.get(field)
    if pool is None:
        raise FundRuleError(f"{field}: required in a format 2 fund")
    if pool not in fund.v2["pools"]:
        raise FundRuleError(f"{field}: unknown pool {pool}")
    return str(pool)


def _fmt(fund: Fund, units: int, asset: str) -> str:
    return format_amount(units, fund.assets[asset])


def _covers(fund: Fund, pool: str, asset: str, units: int) -> None:
    held = pool_balance(fund, pool, asset)
    if units > held:
        raise FundRuleError(f"amount: {_fmt(fund, units, asset)} exceeds pool {pool}'s "
                            f"balance {_fmt(fund, held, asset)}")


def _command(body: Callable[[Fund, Mapping[str, Any]], None]
             ) -> Callable[[Fund, Mapping[str, Any]], None]:
    """A v2 fact's command: the time check, the fact's events, then the ADL trigger."""
    def run(fund: Fund, record: Mapping[str, Any]) -> None:
        _checked_time(fund, record["time"])
        start = fund.version
        body(fund, record)
        if fund.version > start:
            evaluate_adl(fund, record["time"], record["id"])
    run.__doc__ = body.__doc__
    return run


@_command
def set_policy(fund: Fund, record: Mapping[str, Any]) -> None:
    """Adopt a policy/2 document (a v2 fund refuses policy/1)."""
    document = record["policy"]
    try:
        PolicyV2.from_document(document, fund.assets, tuple(fund.v2["pools"]))
    except PolicyError as error:
        raise PolicyError(f"policy.{error}") from None
    version = document["version"]
    if version <= fund.policy_version:
        raise FundRuleError(
            f"policy.version: {version} must be greater than the active {fund.policy_version}")
    data = {"policy_version": version, "policy": document, "policy_hash": policy_hash(document)}
    check_policy_line(fund.version, fund.name, record["time"], record["id"], data)
    fund.trigger_event(PolicySet2, time=record["time"], ref=record["id"], data=data)


@_command
def record_pool(fund: Fund, record: Mapping[str, Any]) -> None:
    """Create a pool (`pool_created/1`)."""
    pool, kind = record["pool"], record["kind"]
    if pool in fund.v2["pools"]:
        raise FundRuleError(f"pool: pool {pool} exists")
    if kind not in POOL_KINDS:
        raise FundRuleError(f"kind: {kind!r} is not one of {', '.join(POOL_KINDS)}")
    fund.trigger_event(PoolCreated, time=record["time"], ref=record["id"],
                       data={"pool": pool, "kind": kind})


@_command
def record_assignment(fund: Fund, record: Mapping[str, Any]) -> None:
    """List a market in a pool, or move a listed one (`market_assigned/1`)."""
    market, reason, spec = record["market"], record["reason"], record.get("spec")
    state = fund.v2
    pool = _pool(fund, record)
    if reason == "listing":
        if market in state["specs"]:
            raise FundRuleError(f"market: market {market} is already listed")
        if spec is None:
            raise FundRuleError("spec: required for reason listing")
        if spec["settlement"] not in fund.assets:
            raise FundRuleError(f"spec.settlement: unknown asset {spec['settlement']!r}")
        before = None
    else:
        market_spec(fund, market)
        if spec is not None:
            raise FundRuleError(f"spec: only a listing has a spec (reason {reason})")
        before = state["assignment"][market]
        if before == pool:
            raise FundRuleError(f"pool: market {market} is already in pool {pool}")
    if state["pools"][pool] == "isolated":
        held = sorted(m for m, p in state["assignment"].items() if p == pool)
        if held:
            raise FundRuleError(f"pool: isolated pool {pool} already holds market {held[0]}")
    data = {"market": market, "pool": pool, "from": before, "reason": reason, "spec": spec}
    fund.trigger_event(MarketAssigned, time=record["time"], ref=record["id"], data=data)


@_command
def record_transfer(fund: Fund, record: Mapping[str, Any]) -> None:
    """Move capital between two pools (`capital_transferred/1`)."""
    source, target = _pool(fund, record, "from_pool"), _pool(fund, record, "to_pool")
    if source == target:
        raise FundRuleError(f"to_pool: is from_pool {source}")
    asset = record["asset"]
    units = fund._units(record["amount"], asset, "amount")
    _covers(fund, source, asset, units)
    data = {"from_pool": source, "to_pool": target, "asset": asset,
            "amount": _fmt(fund, units, asset), "authority": record["authority"],
            "reason": record["reason"]}
    fund.trigger_event(CapitalTransferred, time=record["time"], ref=record["id"], data=data)


def _cap_units(fund: Fund, record: Mapping[str, Any], field: str, asset: str) -> int | None:
    text = record.get(field)
    if text is None:
        return None
    try:
        units = parse_amount_lenient(text, fund.assets[asset])
    except ValueError as error:
        raise FundRuleError(f"{field}: {error}") from None
    if units >= UNITS_LIMIT:
        raise FundRuleError(f"{field}: {clip(text)} is beyond the 128 bits snapshots commit to")
    return units


@_command
def record_claim_cap(fund: Fund, record: Mapping[str, Any]) -> None:
    """Set a market's claim cap (`claim_cap_set/1`), replacing its previous one."""
    market = record["market"]
    asset = market_spec(fund, market)["settlement"]
    total = _cap_units(fund, record, "total", asset)
    per_period = _cap_units(fund, record, "per_period", asset)
    seconds = record.get("period_seconds")
    ClaimCap(fund.version, total, per_period, seconds)  # both or neither, in range

    def text(units: int | None) -> str | None:
        return None if units is None else _fmt(fund, units, asset)

    data = {"market": market, "asset": asset, "total": text(total),
            "per_period": text(per_period), "period_seconds": seconds}
    fund.trigger_event(ClaimCapSet, time=record["time"], ref=record["id"], data=data)


@_command
def record_capital(fund: Fund, record: Mapping[str, Any]) -> None:
    """Inject capital into a pool or withdraw it (within the pool's balance)."""
    pool = _pool(fund, record)
    asset = record["asset"]
    units = fund._units(record["amount"], asset, "amount")
    data = {"asset": asset, "amount": _fmt(fund, units, asset), "source": record["source"],
            "pool": pool}
    if record["direction"] == "withdraw":
        _covers(fund, pool, asset, units)
        event_class = CapitalWithdrawn2
    else:
        fund._check_room(asset, "amount", credit=units)
        event_class = CapitalInjected2
    fund.trigger_event(event_class, time=record["time"], ref=record["id"], data=data)


@_command
def record_fee(fund: Fund, record: Mapping[str, Any]) -> None:
    """Record a fee inflow into a pool (`fee_inflow/2`)."""
    pool = _pool(fund, record)
    asset = record["asset"]
    units = fund._units(record["amount"], asset, "amount")
    account = record.get("account")
    fund._check_room(asset, "amount", credit=units, fees=units if account is not None else 0)
    data = {"pool": pool, "kind": record["kind"], "asset": asset,
            "amount": _fmt(fund, units, asset), "account": account}
    fund.trigger_event(FeeInflow2, time=record["time"], ref=record["id"], data=data)


@_command
def record_observation(fund: Fund, record: Mapping[str, Any]) -> None:
    """Record a market's observed mark price and open interest (`market_observed/1`)."""
    market_spec(fund, record["market"])
    data = {"market": record["market"], "mark_price": record["mark_price"],
            "open_interest": record["open_interest"]}
    fund.trigger_event(MarketObservedV2, time=record["time"], ref=record["id"], data=data)


def refuse(fund: Fund, record: Mapping[str, Any]) -> None:
    """A fact type a v2 fund does not take (V2-CONTRACT.md: later sessions)."""
    raise FundRuleError(f"type: {record['type']} is not a fact of a format 2 fund")


def not_v1(fund: Fund, record: Mapping[str, Any]) -> None:
    """A format 2 fact given to a v1 fund."""
    raise FactError(f"type: {record['type']} is not a fact of a format 1 fund")


# The command of each fact type in a v2 fund (ledger.service.importer picks this table).
COMMANDS: dict[str, Callable[[Fund, Mapping[str, Any]], None]] = {
    "liquidation": _command(record_liquidation),
    "fee": record_fee,
    "capital": record_capital,
    "observation": record_observation,
    "policy": set_policy,
    "pool": record_pool,
    "assignment": record_assignment,
    "transfer": record_transfer,
    "claim_cap": record_claim_cap,
    "rebalance": refuse,
    "upgrade": refuse,
    "price": _command(record_price),
    "conversion": _command(record_conversion),
}
