"""The insurance fund as one event-sourced aggregate: the consistency boundary.

Every event carries the same three fields (`time`, `ref`, `data`) so that its export line is a
plain projection of it (see schemas/README.md, "Events"). Commands check the fund's rules
before any event is triggered: a payout, withdrawal or rebalance that would take a balance
below zero is refused, so the log never holds one.

This module imports no infrastructure; the waterfall and policy it uses are pure.
Over 400 lines: the aggregate, its event classes and its commands are one consistency
boundary, kept in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from auditor.formats.clip import clip
from auditor.formats.wire import (
    TIME,
    format_amount,
    format_time,
    parse_amount_lenient,
    parse_decimal,
    parse_instant,
)
from auditor.verify.sumtree import SUM_LIMIT
from ledger.domain.bookkeeping import ACCOUNT_TOTALS, FUND, moves
from ledger.domain.errors import FundRuleError, PolicyError
from ledger.domain.eventsize import check_policy_line, liquidation_events
from ledger.domain.facts import LIQUIDATION_FIELDS
from ledger.domain.intsettle import settle_record
from ledger.domain.policy import MAX_WINDOW, Policy, policy_hash
from ledger.domain.poolstate import open_state
from ledger.domain.waterfall import Settlement

# Amounts and the running totals a snapshot commits to (each asset's fund balance, and its
# fees, payouts and clawbacks summed over accounts: the account tree's root sums, which bound
# every node's and account's) are unsigned 128-bit numbers of minor units. Facts that would
# take one beyond are refused, so that every recorded log stays publishable.
UNITS_LIMIT = SUM_LIMIT
COMMITTED = ACCOUNT_TOTALS  # per asset, summed over accounts


def fund_id(name: str) -> UUID:
    """The fund aggregate's id, derived from its name so the name is enough to find it."""
    return uuid5(NAMESPACE_URL, f"backstop:fund:{name}")


def utc_now() -> str:
    """The current UTC time in the wire format of a fund event's `time` (whole seconds)."""
    return format_time(datetime.now(UTC))


def instant(time: str) -> datetime:
    """A fund event's eventsourcing timestamp: its own `time`, so that an event (and an
    aggregate rebuilt from events) is fully determined by the event's export line.

    The schemas check the shape of a time; a time of that shape that is not a real instant
    (February 30, a leap second) is refused here, naming the field.
    """
    if not isinstance(time, str) or not TIME.fullmatch(time):  # e.g. a `--time` option
        raise FundRuleError(f"time: {time!r:.40} is not of the form YYYY-MM-DDTHH:MM:SS[.ffffff]Z")
    try:
        return parse_instant(time)
    except ValueError as error:
        raise FundRuleError(f"time: {time!r} is not a valid UTC date-time ({error})") from None


# Event classes that went once through the library's trigger_event, which checks that the
# class's explicit TOPIC is registered to it: a class's topic does not change afterwards.
_CHECKED_CLASSES: set[type[Any]] = set()

# Parsed policies by (policy hash, asset decimals): a policy is parsed once, not per liquidation.
_POLICIES: dict[tuple[str, tuple[tuple[str, int], ...]], Policy] = {}


class Fund(Aggregate):
    """An insurance fund: balances per asset, the active policy, recent market observations."""

    TOPIC = "backstop:Fund"

    if TYPE_CHECKING:  # only for type checkers: a runtime annotation would be the library's
        v2: dict[str, Any]  # a format 2 fund's state (ledger.domain.poolstate); v1: absent

    class Event(Aggregate.Event):
        """Base of every fund event: the wire `type`, `version`, and the three payload fields."""

        TYPE: ClassVar[str] = ""
        VERSION: ClassVar[int] = 1
        time: str
        ref: str | None
        data: dict[str, Any]

        def apply(self, fund: Fund) -> None:  # overridden where the event changes more
            fund._book(self)

    class Created(Aggregate.Created):
        TOPIC = "backstop:fund_opened/1"
        TYPE: ClassVar[str] = "fund_opened"
        VERSION: ClassVar[int] = 1
        time: str
        ref: str | None
        data: dict[str, Any]

    class PolicySet(Event):
        TOPIC = "backstop:policy_set/1"
        TYPE = "policy_set"

        def apply(self, fund: Fund) -> None:
            fund.policy = self.data["policy"]
            fund.policy_version = self.data["policy_version"]
            fund.policy_hash = self.data["policy_hash"]

    class LiquidationSettled(Event):
        TOPIC = "backstop:liquidation_settled/1"
        TYPE = "liquidation_settled"

    class LargeLiquidationSettled(Event):
        """Format v1.1: a liquidation too long for one line, without its counterparties."""

        TOPIC = "backstop:large_liquidation_settled/1"
        TYPE = "large_liquidation_settled"

    class CounterpartiesListed(Event):
        """Format v1.1: the next at most 32 counterparties of a large liquidation."""

        TOPIC = "backstop:counterparties_listed/1"
        TYPE = "counterparties_listed"

    class FeeInflow(Event):
        TOPIC = "backstop:fee_inflow/1"
        TYPE = "fee_inflow"

    class DeficitCovered(Event):
        TOPIC = "backstop:deficit_covered/1"
        TYPE = "deficit_covered"

    class SocializedLossAssessed(Event):
        TOPIC = "backstop:socialized_loss_assessed/1"
        TYPE = "socialized_loss_assessed"

    class ClawbackCharged(Event):
        TOPIC = "backstop:clawback_charged/1"
        TYPE = "clawback_charged"

    class CapitalInjected(Event):
        TOPIC = "backstop:capital_injected/1"
        TYPE = "capital_injected"

    class CapitalWithdrawn(Event):
        TOPIC = "backstop:capital_withdrawn/1"
        TYPE = "capital_withdrawn"

    class ReserveRebalanced(Event):
        TOPIC = "backstop:reserve_rebalanced/1"
        TYPE = "reserve_rebalanced"

    class MarketObserved(Event):
        TOPIC = "backstop:market_observed/1"
        TYPE = "market_observed"

        def apply(self, fund: Fund) -> None:
            market = self.data["market"]
            fund.observed[market] = [self.data["mark_price"], self.data["open_interest"]]
            prices = fund.prices.setdefault(market, [])
            prices.append(self.data["mark_price"])
            # Any later policy may take a window up to the contract's largest, over prices
            # observed before it was set: keep that many, whatever the current policy's window.
            if len(prices) > MAX_WINDOW + 1:
                del prices[: len(prices) - MAX_WINDOW - 1]

    @classmethod
    def create_id(cls, *, data: Mapping[str, Any], **_: Any) -> UUID:
        return fund_id(data["fund"])

    @classmethod
    def _create(cls, event_class: type[Any], **kwargs: Any) -> Fund:
        kwargs.setdefault("timestamp", instant(kwargs["time"]))  # see `instant`
        return super()._create(event_class, **kwargs)

    def __init__(self, *, time: str, ref: str | None, data: dict[str, Any]) -> None:
        if "pools" in data:  # fund_opened/2: a format 2 fund (ledger.domain.poolfund)
            open_state(self, time, data)
            return
        self.name: str = data["fund"]
        self.assets: dict[str, int] = {a: spec["decimals"] for a, spec in data["assets"].items()}
        self.markets: dict[str, str] = {m: spec["quote"] for m, spec in data["markets"].items()}
        self.balances: dict[str, int] = {asset: 0 for asset in self.assets}
        # Per asset: fees, payouts, clawbacks over all accounts (see UNITS_LIMIT).
        self.committed: dict[str, list[int]] = {asset: [0, 0, 0] for asset in self.assets}
        self.policy: dict[str, Any] | None = None
        self.policy_version: int = 0
        self.policy_hash: str | None = None
        self.prices: dict[str, list[str]] = {}
        self.observed: dict[str, list[str]] = {}

    # -- queries --------------------------------------------------------------------------

    @property
    def log_size(self) -> int:
        """Number of events in the fund's log (the aggregate version)."""
        return self.version

    def active_policy(self) -> Policy:
        """The parsed active policy; a fund has one from its second event on."""
        if self.policy is None:
            raise FundRuleError("policy: the fund has no policy yet")
        # A snapshot taken before funds kept the hash has none: compute it then.
        digest = getattr(self, "policy_hash", None) or policy_hash(self.policy)
        key = (digest, tuple(sorted(self.assets.items())))
        policy = _POLICIES.get(key)
        if policy is None:
            if len(_POLICIES) >= 64:  # bounded: policies change rarely
                _POLICIES.clear()
            policy = _POLICIES[key] = Policy.from_document(self.policy, self.assets)
        return policy

    def decimals(self, asset: str, field: str = "asset") -> int:
        """Decimals of a configured asset, or a FundRuleError naming `field`."""
        try:
            return self.assets[asset]
        except KeyError:
            raise FundRuleError(f"{field}: unknown asset {asset!r}") from None

    def quote_asset(self, market: str) -> str:
        """The quote asset of a configured market."""
        try:
            return self.markets[market]
        except KeyError:
            raise FundRuleError(f"market: unknown market {market!r}") from None

    # -- commands -------------------------------------------------------------------------

    def trigger_event(self, event_class: type[Any], **kwargs: Any) -> None:
        kwargs.setdefault("timestamp", instant(kwargs["time"]))
        if event_class not in _CHECKED_CLASSES:  # the library's checks of the class, once
            super().trigger_event(event_class, **kwargs)
            _CHECKED_CLASSES.add(event_class)
            return
        # What the library's trigger_event does, without re-checking the class's topic and
        # copying the arguments on every event (a fifth of a command's time).
        event = event_class(originator_id=self.id, originator_version=self.version + 1,
                            **kwargs)
        event.mutate(self)
        self._pending_events.append(event)

    def collect_events(self) -> list[Any]:
        """The pending events, which are no longer pending (the library pops them one by one
        from the front of the list: quadratic in a batch's thousands of events)."""
        collected = self._pending_events[:]
        self._pending_events.clear()
        return collected

    def set_policy(self, document: dict[str, Any], *, time: str, ref: str | None) -> None:
        """Adopt a new policy version (validated against the fund's assets)."""
        try:
            Policy.from_document(document, self.assets)
        except PolicyError as error:  # name the field as it is in the fact: policy.FIELD
            raise PolicyError(f"policy.{error}") from None
        version = document["version"]
        if version <= self.policy_version:
            raise FundRuleError(
                f"policy.version: {version} must be greater than the active {self.policy_version}"
            )
        data = {"policy_version": version, "policy": document, "policy_hash": policy_hash(document)}
        check_policy_line(self.version, self.name, time, ref, data)
        self.trigger_event(self.PolicySet, time=time, ref=ref, data=data)

    def record_fee(self, record: Mapping[str, Any]) -> None:
        """Record a fee inflow (trading-fee share, liquidation fee paid directly, other)."""
        if "pool" in record:  # format 2's field (facts.schema.json allows it)
            raise FundRuleError("pool: not a field of a format 1 fund")
        asset = record["asset"]
        units = self._units(record["amount"], asset, "amount")
        account = record.get("account")
        self._check_room(asset, "amount", credit=units,
                         fees=units if account is not None else 0)
        data = {"kind": record["kind"], "asset": asset, "amount": self._fmt(units, asset),
                "account": account}
        self.trigger_event(self.FeeInflow, time=record["time"], ref=record["id"], data=data)

    def record_capital(self, record: Mapping[str, Any]) -> None:
        """Inject or withdraw capital; a withdrawal beyond the balance is refused."""
        if "pool" in record:  # format 2's field (facts.schema.json allows it)
            raise FundRuleError("pool: not a field of a format 1 fund")
        asset = record["asset"]
        units = self._units(record["amount"], asset, "amount")
        data = {"asset": asset, "amount": self._fmt(units, asset), "source": record["source"]}
        if record["direction"] == "withdraw":
            self._check_covers(asset, units, "amount")
            event_class: type[Fund.Event] = self.CapitalWithdrawn
        else:
            self._check_room(asset, "amount", credit=units)
            event_class = self.CapitalInjected
        self.trigger_event(event_class, time=record["time"], ref=record["id"], data=data)

    def record_rebalance(self, record: Mapping[str, Any]) -> None:
        """Move reserves between assets (a conversion at the exchange's rate)."""
        source, target = record["from_asset"], record["to_asset"]
        if source == target:
            raise FundRuleError("to_asset: must differ from from_asset")
        out_units = self._units(record["from_amount"], source, "from_amount")
        in_units = self._units(record["to_amount"], target, "to_amount")
        self._check_covers(source, out_units, "from_amount")
        self._check_room(target, "to_amount", credit=in_units)
        data = {"from_asset": source, "from_amount": self._fmt(out_units, source),
                "to_asset": target, "to_amount": self._fmt(in_units, target)}
        self.trigger_event(self.ReserveRebalanced, time=record["time"], ref=record["id"], data=data)

    def record_observation(self, record: Mapping[str, Any]) -> None:
        """Record an observed mark price and open interest of a market."""
        self.quote_asset(record["market"])
        data = {"market": record["market"], "mark_price": record["mark_price"],
                "open_interest": record["open_interest"]}
        self.trigger_event(self.MarketObserved, time=record["time"], ref=record["id"], data=data)

    def record_liquidation(self, record: Mapping[str, Any]) -> None:
        """Settle a liquidation by the active policy and record the outcome and money moves."""
        market = record["market"]
        asset = self.quote_asset(market)
        decimals = self.assets[asset]
        policy = self.active_policy()
        # Only the prices the active policy's window reads are parsed: the fund keeps the
        # contract's largest window (4097 prices), and parsing them all per liquidation
        # dominated an import's time. A fixed share reads none; 1 keeps the old check.
        observed = self.prices.get(market, [])
        window = getattr(policy.fund_share, "window", 1)
        prices = [parse_decimal(p) for p in observed[max(0, len(observed) - window - 1):]]
        balance = self.balances[asset]
        # Integers, counterparties parsed only for a shortfall (waterfall.settle's results).
        result = settle_record(record, policy, balance, decimals, prices, asset=asset)
        self._check_settlement(asset, result)
        time, ref = record["time"], record["id"]
        facts = {key: record[key] for key in LIQUIDATION_FIELDS}
        facts["counterparties"] = list(record.get("counterparties") or [])
        data = {**facts, "asset": asset, "policy_version": self.policy_version,
                "outcome": result.outcome(decimals)}
        recorded = {"liquidation_settled": self.LiquidationSettled,
                    "large_liquidation_settled": self.LargeLiquidationSettled,
                    "counterparties_listed": self.CounterpartiesListed}
        for kind, payload in liquidation_events(self.version, self.name, time, ref, data):
            self.trigger_event(recorded[kind], time=time, ref=ref, data=payload)
        derived = {"fee_inflow": self.FeeInflow, "deficit_covered": self.DeficitCovered,
                   "socialized_loss_assessed": self.SocializedLossAssessed,
                   "clawback_charged": self.ClawbackCharged}
        for kind, payload in result.events(asset, record["account"], decimals):
            # Derived events share the liquidation's time and ref (schemas/README.md).
            self.trigger_event(derived[kind], time=time, ref=ref, data=payload)

    # -- state helpers --------------------------------------------------------------------

    def _units(self, text: str, asset: str, field: str) -> int:
        decimals = self.decimals(asset, field.replace("amount", "asset"))  # its asset field
        try:
            units = parse_amount_lenient(text, decimals)
        except ValueError as error:
            raise FundRuleError(f"{field}: {error}") from None
        if units <= 0:
            raise FundRuleError(f"{field}: must be positive, got {clip(text)}")
        if units >= UNITS_LIMIT:
            raise FundRuleError(f"{field}: {clip(text)} {asset} is {units.bit_length()} bits "
                                "of minor units, beyond the 128 bits snapshots commit to")
        return units

    def _check_room(self, asset: str, field: str, *, credit: int = 0, fees: int = 0,
                    payouts: int = 0, clawbacks: int = 0) -> None:
        """Refuse a command whose events would take the asset's fund balance or a committed
        total beyond 128 bits (UNITS_LIMIT), naming `field`."""
        committed = self._committed(asset)
        for what, before, added in (("the fund balance", self.balances[asset], credit),
                                    ("the fees of all accounts", committed[0], fees),
                                    ("the payouts to all accounts", committed[1], payouts),
                                    ("the clawbacks of all accounts", committed[2], clawbacks)):
            if added and before + added >= UNITS_LIMIT:
                raise FundRuleError(
                    f"{field}: adding {self._fmt(added, asset)} {asset} would take {what} "
                    f"({self._fmt(before, asset)}) beyond the 128 bits snapshots commit to")

    def _check_settlement(self, asset: str, result: Settlement) -> None:
        """A liquidation's derived amounts must fit too; they scale with its `size`."""
        amounts = {"fee": result.fee, "fund_payment": result.fund_payment,
                   "socialized": result.socialized, "unresolved": result.unresolved}
        for name, units in amounts.items():
            if units >= UNITS_LIMIT:
                raise FundRuleError(f"size: the settlement's {name} ({units.bit_length()} bits "
                                    "of minor units) is beyond the 128 bits snapshots commit to")
        self._check_room(asset, "size", credit=result.fee, fees=result.fee,
                         payouts=result.fund_payment,
                         clawbacks=sum(claw.amount for claw in result.clawbacks))

    def _committed(self, asset: str) -> list[int]:
        # A fund loaded from an aggregate snapshot taken before funds kept these totals
        # starts them at zero from there (such databases predate the check).
        committed = self.__dict__.setdefault("committed", {})
        return committed.setdefault(asset, [0, 0, 0])  # type: ignore[no-any-return]

    def _fmt(self, units: int, asset: str) -> str:
        return format_amount(units, self.assets[asset])

    def _check_covers(self, asset: str, units: int, field: str) -> None:
        balance = self.balances[asset]
        if units > balance:
            raise FundRuleError(
                f"{field}: {self._fmt(units, asset)} {asset} exceeds the fund balance "
                f"{self._fmt(balance, asset)} {asset}")

    def _book(self, event: Fund.Event) -> None:
        """Apply an event's balance moves (ledger.domain.bookkeeping): the fund balance
        and the committed totals of each asset."""
        for asset, name, units, account in moves(event.TYPE, event.data, self.assets):
            if name == FUND:
                balance = self.balances[asset] = self.balances[asset] + units
                assert balance >= 0, "commands must refuse what would go negative"
            elif account is not None:
                self._committed(asset)[COMMITTED.index(name)] += units


def _subclasses(cls: type[Any]) -> list[type[Any]]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_subclasses(direct))]


# Every fund event class (eventsourcing makes Fund.Created a subclass of Fund.Event too).
EVENT_CLASSES: tuple[type[Any], ...] = tuple(dict.fromkeys(_subclasses(Fund.Event)))


def export_event(event: Any, fund: str) -> dict[str, Any]:
    """The wire form of a stored fund event (schemas/README.md, "Events")."""
    return {"index": event.originator_version - 1, "type": type(event).TYPE,
            "version": type(event).VERSION, "fund": fund, "time": event.time,
            "ref": event.ref, "data": event.data}
