"""The event classes of a format 2 (pools) log, and how each changes the fund's v2 state.

Each is a `Fund.Event` (ledger.domain.fund) of its wire type and version (V2-CONTRACT.md
"Events of a v2 log"); its `apply` makes its own change (a pool created, a market assigned, a
cap set, the ADL state), then books its money per pool and for the fund
(ledger.domain.poolstate.after_event). `market_observed/1` and `counterparties_listed/1` keep
their v1 wire form under classes of their own (stored topics are internal), so that a v2
log's every event is booked per pool. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from eventsourcing.utils import register_topic

from auditor.formats.wire import parse_amount_lenient
from ledger.domain.fund import Fund
from ledger.domain.poolstate import after_event


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


def _priced(event: Any, fund: Any) -> None:
    """The price book (ledger.domain.poolstate.price_book): the last value of each kind."""
    data, index = event.data, event.originator_version - 1
    if data["kind"] == "price":
        fund.v2.setdefault("prices", {})[data["asset"]] = [data["value"], index]
    else:
        ratios = fund.v2.setdefault("ratios", {}).setdefault(data["asset"], {})
        ratios[data["underlying"]] = [data["value"], index]


def _adl_started(event: Any, fund: Any) -> None:
    fund.v2["adl"][event.data["pool"]] = event.data["asset"]
    # The index of the start in force: a /3 snapshot's metrics.pools.P.adl.since.
    fund.v2.setdefault("adl_since", {})[event.data["pool"]] = event.originator_version - 1


def _adl_ended(event: Any, fund: Any) -> None:
    fund.v2["adl"].pop(event.data["pool"], None)
    fund.v2.setdefault("adl_since", {}).pop(event.data["pool"], None)


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
AssetPriced = _event("backstop:asset_priced/1", "asset_priced", 1, _priced)
AssetConverted = _event("backstop:asset_converted/1", "asset_converted", 1)

# Every event class of a v2 log (the store maps them by topic: ledger.store.mapper).
V2_EVENT_CLASSES: tuple[type[Any], ...] = (
    FundOpened2, PolicySet2, PoolCreated, MarketAssigned, CapitalTransferred, ClaimCapSet,
    CapitalInjected2, CapitalWithdrawn2, FeeInflow2, MarketObservedV2, LiquidationSettled2,
    LargeLiquidationSettled2, CounterpartiesListedV2, DeficitCovered2, BackstopDrawn,
    SocializedLossAssessed2, ClawbackCharged2, AdlStarted, AdlEnded, AssetPriced, AssetConverted)
# A liquidation's own events and its derived ones, by wire type.
LIQUIDATION_EVENTS = {"liquidation_settled": LiquidationSettled2,
                      "large_liquidation_settled": LargeLiquidationSettled2,
                      "counterparties_listed": CounterpartiesListedV2}
DERIVED_EVENTS = {"fee_inflow": FeeInflow2, "deficit_covered": DeficitCovered2,
                  "backstop_drawn": BackstopDrawn,
                  "socialized_loss_assessed": SocializedLossAssessed2,
                  "clawback_charged": ClawbackCharged2}
