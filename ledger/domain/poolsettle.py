"""A liquidation of a format 2 fund: `liquidation_settled/2` through its pool's waterfall.

schemas/README.md "Format v2 (pools)" and V2-CONTRACT.md: the market's kind gives the delta,
bankruptcy price, surplus and deficit (linear as v1, inverse in the coin: ledger.domain.inverse);
a deficit goes through the per-pool waterfall (ledger.domain.pools.split_deficit: claims,
per-event cap, backstop draw, ADL mode); the outcome is outcome/2 and the derived events are
`fee_inflow/2`, or `deficit_covered/2`, `backstop_drawn/1`, `socialized_loss_assessed/2`,
`clawback_charged/2`. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from auditor.formats.wire import format_amount, format_decimal, parse_decimal
from ledger.domain.claims import Claim, ClaimCap, remaining_claim
from ledger.domain.errors import FundRuleError
from ledger.domain.eventsize import liquidation_events
from ledger.domain.facts import LIQUIDATION_FIELDS
from ledger.domain.fund import UNITS_LIMIT, Fund
from ledger.domain.inverse import InversePosition, adl_clawbacks, deficit, displayed_delta, surplus
from ledger.domain.poolevents import DERIVED_EVENTS, LIQUIDATION_EVENTS
from ledger.domain.pools import split_deficit
from ledger.domain.poolstate import active_policy, market_spec, pool_balance
from ledger.domain.waterfall import Clawback, LiquidationFact, _adl, pro_rata


def record_liquidation(fund: Fund, record: Mapping[str, Any]) -> None:
    """Settle a liquidation through its pool's waterfall (`liquidation_settled/2`)."""
    market = record["market"]
    spec = market_spec(fund, market)
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
        fund.trigger_event(LIQUIDATION_EVENTS[kind], time=time, ref=ref, data=payload)
    for kind, payload in derived:
        fund.trigger_event(DERIVED_EVENTS[kind], time=time, ref=ref, data=payload)


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
