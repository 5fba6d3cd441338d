"""A `liquidation_settled/2` re-derived (schemas/README.md "Format v2 (pools)"; draft
sections 4 and 6): the outcome/2 and the derived events, from the market's kind (linear:
v1's arithmetic; inverse: `auditor.inverse_rules`), the pool's waterfall and backstop
(`auditor.pool_rules`), the claim cap and the pools' ADL states."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from itertools import islice
from typing import Any

from auditor import inverse_rules, rules
from auditor.formats.clip import clip
from auditor.formats.wire import (
    WireError,
    format_amount,
    format_decimal,
    parse_amount,
    parse_decimal,
)
from auditor.pool_rules import Side, Split, claim_room, expected_events, split_error, waterfall
from auditor.replay import _Fail

# The v2 replayer (auditor.replay_v2.V2Replayer) is typed Any here: importing it, even only
# for the type checker, would close an import cycle (tests/test_layers.py).
V2Replayer = Any

V2_OUTCOME_FIELDS = (*rules.OUTCOME_FIELDS, "pool", "adl_mode", "claim_remaining",
                     "backstop_pool", "backstop_payment", "layers")
_AMOUNTS = ("fee", "remainder", "deficit", "fund_payment", "socialized", "unresolved",
            "backstop_payment")
PRICE_PLACES, RATE_PLACES = 8, 12


def _floor(x: Fraction, d: int) -> int:
    scale: int = 10**d
    return (x.numerator * scale) // x.denominator


def _ceil(x: Fraction, d: int) -> int:
    scale: int = 10**d
    return -((-x.numerator * scale) // x.denominator)


def _dec(data: dict[str, Any], key: str, positive: bool = True) -> Fraction:
    try:
        value = parse_decimal(data[key])
    except WireError as exc:
        raise _Fail(f"data.{key}: {exc}") from None
    if value < 0 or (positive and value == 0):
        raise _Fail(f"data.{key}: {clip(data[key])} is not {'positive' if positive else '>= 0'}")
    return value


def _share(policy: rules.Policy, prices: Sequence[str]) -> tuple[Fraction, Fraction]:
    if policy.fixed_share is not None:
        return policy.fixed_share, Fraction(0)
    assert policy.window is not None
    tail = [parse_decimal(p) for p in prices[-(policy.window + 1):]]
    vol = rules.volatility(tail, policy.window)
    return rules.interpolate_share(policy.breakpoints, vol), vol


def settle_v2(r: V2Replayer, ev: dict[str, Any], data: dict[str, Any],
              at: int) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Any]]:
    """(derived events in log order, the group the derived events are checked against)."""
    policy = r.policy
    if policy is None:
        raise _Fail("liquidation before any policy_set")
    if data["policy_version"] != policy.version or type(data["policy_version"]) is not int:
        raise _Fail(f"data.policy_version: expected {policy.version} (the active policy), "
                    f"got {clip(data['policy_version'])}")
    st = r.structure
    market = st.market(data)
    spec = st.specs[market]
    asset = spec["settlement"]
    if data["asset"] != asset:
        raise _Fail(f"data.asset: expected {asset} (the settlement asset of {market}), "
                    f"got {clip(data['asset'])}")
    p = st.market_pool[market]
    if data["pool"] != p:
        raise _Fail(f"data.pool: expected {p} (the pool of {market} at this index), "
                    f"got {clip(data['pool'])}")
    d = r.decimals[asset]
    account = rules.account_id(data["account"], "data.account")
    side = data["side"]
    if side not in ("long", "short"):
        raise _Fail(f"data.side: {clip(side)} is not long or short")
    size, entry, fill, mark = (_dec(data, k) for k in ("size", "entry_price", "fill_price",
                                                       "mark_price"))
    collateral = _dec(data, "collateral", positive=False)
    cps = rules.counterparties(data["counterparties"], account)
    prices: list[str] = []
    if policy.window is not None:
        prices = list(islice(reversed(r.prices[market]), policy.window + 1))[::-1]
    share, vol = _share(policy, prices)

    inverse = spec["kind"] == "inverse"
    face = parse_decimal(spec["face_value"]) if inverse else Fraction(1)
    bankruptcy: Fraction | None
    if inverse:
        inv = inverse_rules.derive(side, size, face, entry, collateral, fill, d)
        delta, bankruptcy = inv.delta, inv.bankruptcy
    elif side == "long":
        bankruptcy = entry - collateral / size
        delta = collateral + (fill - entry) * size
    else:
        bankruptcy = entry + collateral / size
        delta = collateral + (entry - fill) * size

    fee = remainder = 0
    events: list[tuple[str, dict[str, Any]]] = []
    pp = st.pool_policy.get(p)
    in_adl = r.adl.in_adl.get(p, False)
    room = claim_room(st.caps.get(market), st.claims[market], ev["time"])
    split = Split(0, method="adl" if in_adl else policy.socialization)
    cap: int | None = None
    backstop: tuple[Side, int] | None = None
    payer = Side(p, st.pools[p][asset], pp.reserve.get(asset, 0) if pp else 0, in_adl)
    if delta > 0:
        if inverse:
            fee, remainder = inverse_rules.fee_split(inv, size, face, fill, policy.fee_cap_rate,
                                                     share, d)
        else:
            fee = _floor(min(delta, policy.fee_cap_rate * fill * size) * share, d)
            remainder = _floor(delta, d) - fee
        if fee > 0:
            events.append(("fee_inflow", {"pool": p, "kind": "liquidation_fee", "asset": asset,
                                          "amount": format_amount(fee, d), "account": account}))
    elif delta < 0:
        deficit = _ceil(-delta, d)
        cap = pp.cap.get(asset) if pp else None
        limit: int | None = None
        if pp is not None and pp.backstop is not None and asset in pp.backstop[1]:
            q, limits = pp.backstop
            qp = st.pool_policy.get(q)
            limit = limits[asset]
            backstop = (Side(q, st.pools[q][asset], qp.reserve.get(asset, 0) if qp else 0,
                             r.adl.in_adl.get(q, False)), limit)
        quantities: dict[str, str | None] = {}
        assert bankruptcy is not None  # a deficit always has a bankruptcy price

        def clawbacks(units: int, method: str) -> list[tuple[str, int]]:
            if inverse and method == "adl":
                holders = [inverse_rules.Holder(c.account, c.size, c.entry_price, c.collateral,
                                                c.unrealized_pnl) for c in cps]
                out = inverse_rules.deleverage(holders, units, face, mark, fill, bankruptcy, d)
                for who, _, exact in out:
                    quantities[who] = format_decimal(exact, inverse_rules.QTY_PLACES)
                return [(who, u) for who, u, _ in out]
            paid, _ = rules.spread(method, cps, units, mark, fill, bankruptcy, d)
            for who, _, shown in paid:
                quantities[who] = shown
            return [(who, u) for who, u, _ in paid]

        split = waterfall(deficit, payer, policy.socialization, clawbacks, cap=cap, room=room,
                          backstop=backstop)
        price = format_decimal(bankruptcy, PRICE_PLACES)
        adl = [(quantities[who] or "", price) for who, _ in split.paid]
        events = expected_events(split, pool=p, market=market, asset=asset, account=account,
                                 decimals=d, limit=limit, adl=adl)
    elif in_adl:
        split.method = "adl"

    def amt(units: int) -> str:
        return format_amount(units, d)

    outcome: dict[str, Any] = {
        "bankruptcy_price": None if bankruptcy is None else format_decimal(bankruptcy, PRICE_PLACES),
        "delta": amt(_floor(delta, d)), "fee": amt(fee), "remainder": amt(remainder),
        "share": format_decimal(share, RATE_PLACES), "volatility": format_decimal(vol, RATE_PLACES),
        "deficit": amt(split.deficit), "fund_payment": amt(split.fund_payment),
        "socialized": amt(split.socialized), "unresolved": amt(split.unresolved),
        "method": split.method, "pool": p, "adl_mode": in_adl,
        "claim_remaining": None if room is None else amt(room),
        "backstop_pool": split.backstop_pool, "backstop_payment": amt(split.backstop_payment),
        "layers": [],
    }
    recorded = data["outcome"]
    # `True == 1` in Python: the one boolean must be a JSON boolean, not only equal to one.
    if recorded != outcome or type(recorded.get("adl_mode")) is not bool:
        _diagnose(recorded, outcome, split, payer, market, d, cap, room, backstop, pp, asset)
    group = {"index": at, "time": ev["time"], "asset": asset, "market": market,
             "deficit": split.deficit, "paid": 0, "socialized": split.socialized, "clawed": 0,
             "unresolved": split.unresolved}
    return events, group


def _diagnose(recorded: Any, outcome: dict[str, Any], split: Split, payer: Side, market: str,
              d: int, cap: int | None, room: int | None, backstop: tuple[Side, int] | None,
              pp: Any, asset: str) -> None:
    """Say why a recorded outcome/2 differs: a broken limit first (claim cap, backstop),
    then the first field that differs."""
    if not isinstance(recorded, dict):
        raise _Fail("data.outcome: not an object")
    units: dict[str, int] = {}
    for key in _AMOUNTS:
        try:
            units[key] = parse_amount(recorded.get(key), d)
        except WireError:
            units = {}
            break
    if units and split.deficit:
        got = Split(units["deficit"], units["fund_payment"], units["backstop_payment"],
                    recorded.get("backstop_pool"), units["socialized"], units["unresolved"])
        # The clawbacks are the derived events' to check, one by one, after this one.
        got.paid = [("", units["socialized"] - units["unresolved"])]
        if room is not None and got.fund_payment + got.backstop_payment > room:
            raise _Fail(f"data.outcome.fund_payment: market {market}'s claim would exceed its "
                        f"cap (remaining {format_amount(room, d)})")
        if got.backstop_payment and not split.backstop_payment:
            raise _Fail("backstop_drawn: not called for: " + _no_draw(split, payer, backstop,
                                                                      pp, asset, d))
        error = split_error(got, payer, cap=cap, room=room, backstop=backstop)
        if error and error.startswith("backstop_drawn"):
            raise _Fail(error)
        if error:
            raise _Fail(f"data.outcome: {error}")
    for key in V2_OUTCOME_FIELDS:
        where = f"data.outcome.{key}"
        if key not in recorded:
            raise _Fail(f"{where}: missing")
        got_v, want = recorded[key], outcome[key]
        if got_v != want or type(got_v) is not type(want):
            raise _Fail(f"{where}: expected {clip(want)}, got {clip(got_v)}")
    extra = sorted(set(recorded) - set(V2_OUTCOME_FIELDS))
    raise _Fail(f"data.outcome.{extra[0]}: unexpected field" if extra else "data.outcome: differs")


def _no_draw(split: Split, payer: Side, backstop: tuple[Side, int] | None, pp: Any,
             asset: str, d: int) -> str:
    """Why the rules call for no backstop draw at this liquidation."""
    if backstop is None:
        return f"pool {payer.pool} has no backstop in {asset}"
    q = backstop[0]
    free = max(0, payer.balance - payer.reserve)
    owed = split.deficit - sum(u for _, u in split.paid) if payer.adl else split.deficit
    if split.fund_payment >= owed:
        return f"pool {payer.pool} paid the whole deficit"
    if split.fund_payment != free:
        return (f"pool {payer.pool} is not exhausted (fund_payment "
                f"{format_amount(split.fund_payment, d)}, available {format_amount(free, d)})")
    if q.adl:
        return f"backstop pool {q.pool} is in ADL"
    return f"backstop pool {q.pool} has nothing available above its reserve"
