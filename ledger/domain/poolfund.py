"""A format 2 fund (pools): its events and commands, beside the v1 aggregate.

V2-CONTRACT.md and schemas/README.md "Format v2 (pools)". A fund opened by `fund_opened/2`
is the same `Fund` aggregate (ledger.domain.fund) holding its v2 state in `fund.v2`
(ledger.domain.poolstate); its facts run the commands here instead of the aggregate's v1
methods (the import picks the command table once per batch), so a v1 fund runs none of this.
Every command checks the fact's time against the log's last event, triggers the fact's own
and derived events, then evaluates the ADL trigger of the pools with a rule.
Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import Any, ClassVar

from eventsourcing.utils import register_topic

from auditor.formats.clip import clip
from auditor.formats.wire import format_amount, format_decimal, parse_amount_lenient, parse_decimal
from ledger.domain.adltrigger import BalanceSeries, evaluate
from ledger.domain.claims import Claim, ClaimCap, remaining_claim
from ledger.domain.errors import FundRuleError, PolicyError
from ledger.domain.eventsize import check_fund_config, check_policy_line, liquidation_events
from ledger.domain.facts import LIQUIDATION_FIELDS
from ledger.domain.fund import UNITS_LIMIT, Fund, instant
from ledger.domain.instants import epoch_seconds
from ledger.domain.inverse import InversePosition, adl_clawbacks, deficit, displayed_delta, surplus
from ledger.domain.policy import policy_hash
from ledger.domain.policy2 import PolicyV2
from ledger.domain.pools import POOL_KINDS, split_deficit
from ledger.domain.poolstate import after_event, pool_balance
from ledger.domain.waterfall import Clawback, LiquidationFact, _adl, pro_rata

INITIAL_POLICY_REF = "init"


def _registered(cls: type[Any]) -> type[Any]:
    """Register an event class's explicit topic (the library does it only for classes
    defined in the aggregate's body)."""
    register_topic(cls.TOPIC, cls)
    return cls


@_registered
class FundOpened2(Fund.Created):
    """`fund_opened/2`: the config without `format` (Fund.__init__ opens the v2 state)."""

    TOPIC = "backstop:fund_opened/2"
    VERSION: ClassVar[int] = 2


class _V2Event(Fund.Event):
    """An event of a v2 log: booked per pool (ledger.domain.poolstate.after_event)."""

    TOPIC = "backstop:v2:event"

    def apply(self, fund: Fund) -> None:
        after_event(fund, self)


register_topic(_V2Event.TOPIC, _V2Event)


def _event(topic: str, kind: str, version: int,
           apply: Callable[[Any, Fund], None] | None = None) -> type[Any]:
    """A v2 event class of wire type `kind`/`version`; `apply` runs before the booking."""
    def applied(self: Any, fund: Fund) -> None:
        if apply is not None:
            apply(self, fund)
        after_event(fund, self)

    cls = type(f"V2_{kind}_{version}", (_V2Event,),
               {"TOPIC": topic, "TYPE": kind, "VERSION": version, "apply": applied,
                "__module__": __name__, "__qualname__": f"V2_{kind}_{version}"})
    return _registered(cls)


def _set_policy(event: Any, fund: Any) -> None:
    fund.policy = event.data["policy"]
    fund.policy_version = event.data["policy_version"]
    fund.policy_hash = event.data["policy_hash"]


def _pool_created(event: Any, fund: Any) -> None:
    pool, index = event.data["pool"], event.originator_version - 1
    fund.v2["pools"][pool] = event.data["kind"]
    fund.v2["created"][pool] = index
    fund.v2["balances"][pool] = {}


def _assigned(event: Any, fund: Any) -> None:
    data = event.data
    if data["spec"] is not None:
        fund.v2["specs"][data["market"]] = data["spec"]
        fund.markets[data["market"]] = data["spec"]["settlement"]
    fund.v2["assignment"][data["market"]] = data["pool"]


def _cap_set(event: Any, fund: Any) -> None:
    data = event.data
    decimals = fund.assets[data["asset"]]

    def units(text: str | None) -> int | None:
        return None if text is None else parse_amount_lenient(text, decimals)

    fund.v2["caps"][data["market"]] = [event.originator_version - 1, units(data["total"]),
                                       units(data["per_period"]), data["period_seconds"]]


def _observed(event: Any, fund: Any) -> None:
    Fund.MarketObserved.apply(event, fund)  # the v1 price window, as v1


def _adl_started(event: Any, fund: Any) -> None:
    fund.v2["adl"][event.data["pool"]] = event.data["asset"]


def _adl_ended(event: Any, fund: Any) -> None:
    fund.v2["adl"].pop(event.data["pool"], None)


PolicySet2 = _event("backstop:policy_set/2", "policy_set", 2, _set_policy)
PoolCreated = _event("backstop:pool_created/1", "pool_created", 1, _pool_created)
MarketAssigned = _event("backstop:market_assigned/1", "market_assigned", 1, _assigned)
CapitalTransferred = _event("backstop:capital_transferred/1", "capital_transferred", 1)
ClaimCapSet = _event("backstop:claim_cap_set/1", "claim_cap_set", 1, _cap_set)
CapitalInjected2 = _event("backstop:capital_injected/2", "capital_injected", 2)
CapitalWithdrawn2 = _event("backstop:capital_withdrawn/2", "capital_withdrawn", 2)
FeeInflow2 = _event("backstop:fee_inflow/2", "fee_inflow", 2)
MarketObservedV2 = _event("backstop:v2:market_observed/1", "market_observed", 1, _observed)
LiquidationSettled2 = _event("backstop:liquidation_settled/2", "liquidation_settled", 2)
LargeLiquidationSettled2 = _event("backstop:large_liquidation_settled/2",
                                  "large_liquidation_settled", 2)
CounterpartiesListedV2 = _event("backstop:v2:counterparties_listed/1", "counterparties_listed", 1)
DeficitCovered2 = _event("backstop:deficit_covered/2", "deficit_covered", 2)
BackstopDrawn = _event("backstop:backstop_drawn/1", "backstop_drawn", 1)
SocializedLossAssessed2 = _event("backstop:socialized_loss_assessed/2",
                                 "socialized_loss_assessed", 2)
ClawbackCharged2 = _event("backstop:clawback_charged/2", "clawback_charged", 2)
AdlStarted = _event("backstop:adl_started/1", "adl_started", 1, _adl_started)
AdlEnded = _event("backstop:adl_ended/1", "adl_ended", 1, _adl_ended)

# Every event class of a v2 log (the store maps them by topic: ledger.store.mapper).
V2_EVENT_CLASSES: tuple[type[Any], ...] = (
    FundOpened2, PolicySet2, PoolCreated, MarketAssigned, CapitalTransferred, ClaimCapSet,
    CapitalInjected2, CapitalWithdrawn2, FeeInflow2, MarketObservedV2, LiquidationSettled2,
    LargeLiquidationSettled2, CounterpartiesListedV2, DeficitCovered2, BackstopDrawn,
    SocializedLossAssessed2, ClawbackCharged2, AdlStarted, AdlEnded)
_LIQUIDATION = {"liquidation_settled": LiquidationSettled2,
                "large_liquidation_settled": LargeLiquidationSettled2,
                "counterparties_listed": CounterpartiesListedV2}
_DERIVED = {"fee_inflow": FeeInflow2, "deficit_covered": DeficitCovered2,
            "backstop_drawn": BackstopDrawn, "socialized_loss_assessed": SocializedLossAssessed2,
            "clawback_charged": ClawbackCharged2}

# Parsed policy/2 documents by (hash, assets, pools): parsed once, not per liquidation.
_POLICIES: dict[tuple[str, tuple[tuple[str, int], ...], tuple[str, ...]], PolicyV2] = {}


def is_v2(fund: Fund) -> bool:
    """Whether the fund was opened by `fund_opened/2`."""
    return getattr(fund, "v2", None) is not None


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
    return Fund._create(FundOpened2, time=time, ref=None, data=data)  # type: ignore[no-any-return]


# -- queries ------------------------------------------------------------------------------

def active_policy(fund: Fund) -> PolicyV2:
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
    if epoch_seconds(time) < epoch_seconds(last):
        raise FundRuleError(f"time: {time} is earlier than the log's last event ({last})")


def _pool(fund: Fund, record: Mapping[str, Any], field: str = "pool") -> str:
    pool = record.get(field)
    if pool is None:
        raise FundRuleError(f"{field}: required in a format 2 fund")
    if pool not in fund.v2["pools"]:
        raise FundRuleError(f"{field}: unknown pool {pool}")
    return str(pool)


def _market(fund: Fund, market: str) -> dict[str, Any]:
    spec = fund.v2["specs"].get(market)
    if spec is None:
        raise FundRuleError(f"market: unknown market {market}")
    return spec  # type: ignore[no-any-return]


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
        _market(fund, market)
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
    asset = _market(fund, market)["settlement"]
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
    _market(fund, record["market"])
    data = {"market": record["market"], "mark_price": record["mark_price"],
            "open_interest": record["open_interest"]}
    fund.trigger_event(MarketObservedV2, time=record["time"], ref=record["id"], data=data)


def refuse(fund: Fund, record: Mapping[str, Any]) -> None:
    """A fact type a v2 fund does not take (V2-CONTRACT.md: later sessions)."""
    raise FundRuleError(f"type: {record['type']} is not a fact of a format 2 fund")


@_command
def record_liquidation(fund: Fund, record: Mapping[str, Any]) -> None:
    """Settle a liquidation through its pool's waterfall (`liquidation_settled/2`)."""
    market = record["market"]
    spec = _market(fund, market)
    asset = spec["settlement"]
    decimals = fund.assets[asset]
    pool = fund.v2["assignment"][market]
    policy = active_policy(fund)
    fact = LiquidationFact.from_record(dict(record), decimals)
    observed = fund.prices.get(market, [])
    window = getattr(policy.fund_share, "window", 1)
    share, vol = policy.share([parse_decimal(p) for p in
                               observed[max(0, len(observed) - window - 1):]])
    adl = fund.v2["adl"]
    in_adl = pool in adl
    method = "adl" if in_adl else policy.socialization
    remaining = _remaining(fund, market, record["time"])
    scale = 10**decimals
    socialize: Callable[[int, str], Sequence[Clawback]]
    if spec["kind"] == "inverse":
        position = InversePosition.of(fact, parse_decimal(spec["face_value"]))
        bankruptcy = position.bankruptcy_price
        shown_delta, owed = displayed_delta(position, decimals), deficit(position, decimals)
        fee, remainder = (surplus(position, policy.fee_cap_rate, share, decimals)
                          if owed == 0 else (0, 0))

        def socialize(amount: int, how: str) -> Sequence[Clawback]:
            if how == "adl":
                return adl_clawbacks(position, fact.counterparties, fact.mark_price, amount,
                                     decimals)
            return _pro_rata(fact, amount, how)
    else:
        exact = fact.delta
        bankruptcy = fact.bankruptcy_price
        shown_delta = math.floor(exact * scale)
        owed = max(0, math.ceil(-exact * scale))
        fee = remainder = 0
        if owed == 0:
            cap = policy.fee_cap_rate * fact.fill_price * fact.size
            fee = math.floor(min(exact, cap) * share * scale)
            remainder = shown_delta - fee

        def socialize(amount: int, how: str) -> Sequence[Clawback]:
            return _adl(fact, amount, decimals) if how == "adl" else _pro_rata(fact, amount, how)

    amounts = {"fund_payment": 0, "backstop_payment": 0, "socialized": 0, "unresolved": 0}
    derived: list[tuple[str, dict[str, Any]]] = []
    backstop_pool: str | None = None
    clawed = 0
    if owed > 0:
        balance_of = {p: pool_balance(fund, p, asset) for p in fund.v2["pools"]}
        backstop = policy.backstop(pool, asset, balance_of, adl)
        split = split_deficit(owed, policy.terms(pool, asset, balance_of[pool], in_adl),
                              method=policy.socialization, socialize=socialize,
                              cap=policy.cap(pool, asset), remaining=remaining,
                              backstop=backstop)
        amounts = {"fund_payment": split.fund_payment,
                   "backstop_payment": split.backstop_payment,
                   "socialized": split.socialized, "unresolved": split.unresolved}
        method, backstop_pool = split.method, split.backstop_pool
        clawed = sum(c.amount for c in split.clawbacks)
        derived = split.events(pool=pool, market=market, asset=asset, account=record["account"],
                               decimals=decimals,
                               limit=None if backstop is None else backstop.limit)
    elif fee > 0:
        derived = [("fee_inflow", {"pool": pool, "kind": "liquidation_fee", "asset": asset,
                                   "amount": format_amount(fee, decimals),
                                   "account": record["account"]})]
    _check_amounts(fund, asset, fee, owed, amounts, clawed)

    def text(units: int) -> str:
        return format_amount(units, decimals)

    outcome = {
        "bankruptcy_price": None if bankruptcy is None else format_decimal(bankruptcy, 8),
        "delta": text(shown_delta), "fee": text(fee), "remainder": text(remainder),
        "share": format_decimal(share, 12), "volatility": format_decimal(vol, 12),
        "deficit": text(owed), "fund_payment": text(amounts["fund_payment"]),
        "socialized": text(amounts["socialized"]), "unresolved": text(amounts["unresolved"]),
        "method": method, "pool": pool, "adl_mode": in_adl,
        "claim_remaining": None if remaining is None else text(remaining),
        "backstop_pool": backstop_pool, "backstop_payment": text(amounts["backstop_payment"]),
        "layers": []}
    time, ref = record["time"], record["id"]
    facts = {key: record[key] for key in LIQUIDATION_FIELDS}
    facts["counterparties"] = list(record.get("counterparties") or [])
    data = {**facts, "asset": asset, "policy_version": fund.policy_version, "outcome": outcome,
            "pool": pool}
    for kind, payload in liquidation_events(fund.version, fund.name, time, ref, data):
        fund.trigger_event(_LIQUIDATION[kind], time=time, ref=ref, data=payload)
    for kind, payload in derived:
        fund.trigger_event(_DERIVED[kind], time=time, ref=ref, data=payload)


def _pro_rata(fact: LiquidationFact, amount: int, how: str) -> Sequence[Clawback]:
    """v1's `pro_rata_profit` (and `none`) on the counterparties' floored profits."""
    if how != "pro_rata_profit":
        return ()
    profits = {cp.account: cp.unrealized_pnl for cp in fact.counterparties}
    return tuple(Clawback(account, units) for account, units in pro_rata(amount, profits))


def _remaining(fund: Fund, market: str, time: str) -> int | None:
    """R before a liquidation of `market` at `time` (None: no cap)."""
    raw = fund.v2["caps"].get(market)
    if raw is None:
        return None
    cap = ClaimCap(raw[0], raw[1], raw[2], raw[3])
    claims = (Claim(index, at, units) for index, at, units in fund.v2["claims"].get(market, []))
    return remaining_claim(cap, claims, time)


def _check_amounts(fund: Fund, asset: str, fee: int, owed: int, amounts: Mapping[str, int],
                   clawed: int) -> None:
    """The settlement's amounts fit the 128 bits snapshots commit to (as v1's)."""
    for name, units in {"fee": fee, "deficit": owed, **amounts}.items():
        if units >= UNITS_LIMIT:
            raise FundRuleError(f"size: the settlement's {name} ({units.bit_length()} bits "
                                "of minor units) is beyond the 128 bits snapshots commit to")
    fund._check_room(asset, "size", credit=fee, fees=fee,
                     payouts=amounts["fund_payment"] + amounts["backstop_payment"],
                     clawbacks=clawed)


# -- the ADL trigger ----------------------------------------------------------------------

def evaluate_adl(fund: Fund, time: str, ref: str | None) -> None:
    """After a fact's events: each pool with a rule (and each in ADL whose rule is gone), in
    ascending id, gets the `adl_started/1` / `adl_ended/1` its rule calls for."""
    if fund.policy is None:
        return
    policy = active_policy(fund)
    state = fund.v2
    j = fund.version - 1  # the fact's last event
    pools = sorted({p for p in state["pools"] if policy.adl_rule(p) is not None} | set(state["adl"]))
    for pool in pools:
        rule = policy.adl_rule(pool)
        asset = rule.asset if rule is not None else state["adl"][pool]
        series = _series(fund, pool, asset, j, rule.window_seconds if rule else None)
        transition = evaluate(rule, pool in state["adl"], series)
        if transition is None:
            continue
        data = transition.data(pool, asset, fund.assets[asset], fund.policy_version)
        event_class = AdlStarted if transition.type == "adl_started" else AdlEnded
        fund.trigger_event(event_class, time=time, ref=ref, data=data)


def _series(fund: Fund, pool: str, asset: str, j: int, window: int | None) -> BalanceSeries:
    """The pool's balance series of `asset` over the window ending at event `j` (from the
    balance carried into it; only event `j` when there is no window)."""
    state = fund.v2
    times: list[str] = state["times"]
    created = state["created"][pool]
    start = j
    if window is not None:
        horizon: Fraction = epoch_seconds(times[j]) - window
        start = created
        for i in range(j, created - 1, -1):  # times never decrease: walk back to t - W
            if epoch_seconds(times[i]) <= horizon:
                start = i
                break
    changes = state["changes"].get(pool, {}).get(asset, [])
    position = 0
    while position < len(changes) and changes[position][0] <= start:
        position += 1
    balance = changes[position - 1][1] if position else 0
    series = BalanceSeries()
    for i in range(start, j + 1):
        while position < len(changes) and changes[position][0] <= i:
            balance = changes[position][1]
            position += 1
        series.record(i, times[i], balance)
    return series


# The command of each fact type in a v2 fund (ledger.service.importer picks this table).
COMMANDS: dict[str, Callable[[Fund, Mapping[str, Any]], None]] = {
    "liquidation": record_liquidation,
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
    "price": refuse,
    "conversion": refuse,
}
