"""Hypothesis generators of format 2 (pools) inputs shared by the v2 differential tests
(tests/e2e/test_pools_differential.py: the pure rules; tests/e2e/test_v2_differential.py:
both whole implementations): event times in half seconds and ADL rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

START = datetime(2026, 1, 1, tzinfo=UTC)
T0_TEXT = "2026-01-01T00:00:00Z"  # the funds' opening time


def stamp(half_seconds: int) -> str:
    """A wire time `half_seconds / 2` after 2026-01-01T00:00:00Z (some with a .5 fraction)."""
    moment = START + timedelta(seconds=half_seconds // 2)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (".5Z" if half_seconds % 2 else "Z")


@st.composite
def adl_rule(draw: st.DrawFn) -> tuple[int, str, str, int] | None:
    """None (a quarter of the time) or `(window_seconds, start_ratio, stop_ratio,
    minimum_balance in units)` with -1 <= start < stop <= 0 in hundredths."""
    if draw(st.integers(0, 3)) == 0:
        return None
    start = draw(st.integers(-100, -1))
    stop = draw(st.integers(start + 1, 0))
    return (draw(st.sampled_from([60, 3600, 28800, 86400])), f"{start / 100:.2f}",
            f"{stop / 100:.2f}", draw(st.integers(0, 2000)))


# ---------------------------------------------------------------- whole v2 funds and facts

#: The fund's assets and decimals: linear markets settle in USDT or USDC, inverse in XBT or ETH.
ASSETS = {"USDT": 2, "USDC": 6, "XBT": 8, "ETH": 4}
#: Units of one "step" of money per asset (1.00 USDT, 1.000000 USDC, 0.0001 XBT, 0.01 ETH).
STEP = {"USDT": 100, "USDC": 10**6, "XBT": 10**4, "ETH": 100}
#: Inverse markets: quote currency, face value and the price around which they trade.
INVERSE = {"XBT": ("USD", 1, 50000), "ETH": ("USD", 10, 3000)}
KINDS = ("isolated", "shared", "new_listing")
ACCOUNTS = ("alice", "bob", "carol", "dave", "erin")


def units_text(units: int, decimals: int) -> str:
    """Minor units as a decimal string with exactly `decimals` places."""
    sign, units = ("-", -units) if units < 0 else ("", units)
    if decimals == 0:
        return f"{sign}{units}"
    whole, frac = divmod(units, 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}"


def money(draw: st.DrawFn, asset: str, low: int, high: int) -> str:
    """`low..high` steps of `asset` plus a few odd units, as a decimal string."""
    units = draw(st.integers(low, high)) * STEP[asset] + draw(st.integers(0, 3))
    return units_text(units, ASSETS[asset])


def market_spec(draw: st.DrawFn) -> dict[str, Any]:
    """A market spec without its pool: linear in USDT/USDC or inverse in XBT/ETH."""
    if draw(st.booleans()):
        return {"kind": "linear", "settlement": draw(st.sampled_from(["USDT", "USDC"]))}
    coin = draw(st.sampled_from(sorted(INVERSE)))
    quote, face, _ = INVERSE[coin]
    return {"kind": "inverse", "settlement": coin, "quote_currency": quote,
            "face_value": str(face)}


def pool_policy(draw: st.DrawFn, pool: str, pools: list[str], watched: str) -> dict[str, Any]:
    """One pool's rules in a policy/2: reserves, a per-event cap, a backstop, an ADL rule on
    `watched` (each sometimes absent)."""
    rules: dict[str, Any] = {}
    assets = sorted(ASSETS)
    if draw(st.booleans()):
        rules["minimum_reserve"] = {a: money(draw, a, 0, 60) for a in assets
                                    if draw(st.booleans())}
    if draw(st.booleans()):
        rules["per_event_cap"] = {a: money(draw, a, 1, 400) for a in assets
                                  if draw(st.booleans())}
    others = [p for p in pools if p != pool]
    if draw(st.integers(0, 2)):
        rules["backstop"] = {"pool": draw(st.sampled_from(others)),
                             "limit": {a: money(draw, a, 0, 300) for a in assets
                                       if draw(st.integers(0, 3))}}
    rule = draw(adl_rule())
    if rule is not None:
        window, start, stop, minimum = rule
        if draw(st.booleans()):  # shallow starts, so that the generated deficits reach them
            start = draw(st.sampled_from(["-0.05", "-0.1", "-0.2"]))
            stop = draw(st.sampled_from(["-0.04", "-0.02", "0"]))
        rules["adl"] = {"asset": watched, "window_seconds": window, "start_ratio": start,
                        "stop_ratio": stop,
                        "minimum_balance": units_text(minimum * STEP[watched] // 100,
                                                      ASSETS[watched])}
    return rules


def policy_doc(draw: st.DrawFn, version: int, pools: list[str],
               watch: dict[str, str]) -> dict[str, Any]:
    """A policy/2 document over `pools` (some with no rules at all)."""
    chosen = {p: pool_policy(draw, p, pools, watch[p]) for p in pools if draw(st.integers(0, 4))}
    return {"format": "backstop-policy/2", "version": version,
            "fee_cap_rate": draw(st.sampled_from(["0.005", "0.01", "0.0025"])),
            "fund_share": {"fixed": draw(st.sampled_from(["0.5", "1", "0.25"]))},
            "socialization": draw(st.sampled_from(["pro_rata_profit", "adl", "none"])),
            "pools": chosen, "assets": {}, "layers": []}


@st.composite
def v2_funds(draw: st.DrawFn) -> dict[str, Any]:
    """A format 2 fund config: 2-4 pools (the first shared, the others of any kind), 2-5
    markets, linear and inverse, in pools an isolated one holds at most one of; a policy/2."""
    pools = [f"p{i}" for i in range(draw(st.integers(2, 4)))]
    kinds = {p: "shared" if i == 0 else draw(st.sampled_from(KINDS)) for i, p in enumerate(pools)}
    markets: dict[str, Any] = {}
    held: set[str] = set()
    for i in range(draw(st.integers(2, 5))):
        free = [p for p in pools if kinds[p] != "isolated" or p not in held]
        pool = draw(st.sampled_from(free))
        held.add(pool)
        markets[f"M{i}"] = {**market_spec(draw), "pool": pool}
    watch = {p: next((m["settlement"] for m in markets.values() if m["pool"] == p), "USDT")
             for p in pools}
    return {"format": 2, "fund": "diff", "assets": {a: {"decimals": d} for a, d in ASSETS.items()},
            "valuation": {"currency": "USD", "decimals": 2},
            "pools": {p: {"kind": kinds[p]} for p in pools}, "markets": markets,
            "policy": policy_doc(draw, 1, pools, watch)}


def linear_position(draw: st.DrawFn, asset: str) -> dict[str, Any]:
    """A linear position whose delta (C + n * (X - E), long) is a deficit or a surplus of up
    to a few hundred steps."""
    size, entry = draw(st.integers(1, 3)), draw(st.integers(1000, 3000))
    move = draw(st.integers(-500, 300))
    fill = entry + move if draw(st.booleans()) else entry - move
    side = "long" if fill <= entry + 300 and draw(st.booleans()) else "short"
    return {"side": side, "size": str(size), "entry_price": str(entry),
            "collateral": money(draw, asset, 0, 400), "fill_price": str(max(1, fill)),
            "mark_price": str(max(1, fill + draw(st.integers(-20, 20))))}


def inverse_position(draw: st.DrawFn, coin: str) -> dict[str, Any]:
    """An inverse position: n contracts of F around the coin's price, fill within 6%."""
    _, face, price = INVERSE[coin]
    entry = price + draw(st.integers(-price // 10, price // 10))
    notional = draw(st.integers(1, 80)) * STEP[coin] * 50 / 10 ** ASSETS[coin]  # in coin
    size = max(1, round(notional * entry / face))
    fill = entry + draw(st.integers(-entry * 6 // 100, entry * 6 // 100))
    return {"side": draw(st.sampled_from(["long", "short"])), "size": str(size),
            "entry_price": str(entry), "collateral": money(draw, coin, 0, 60),
            "fill_price": str(max(1, fill)), "mark_price": str(max(1, fill))}


def counterparties(draw: st.DrawFn, spec: dict[str, Any], fill: str) -> list[dict[str, Any]]:
    """0-3 counterparties with profits (and some losses) in the settlement asset."""
    asset = spec["settlement"]
    names = draw(st.lists(st.sampled_from(ACCOUNTS), unique=True, max_size=3))
    out = []
    for name in names:
        pnl = draw(st.integers(-20, 200)) * STEP[asset] + draw(st.integers(0, 9))
        size = (draw(st.integers(1, 5)) if spec["kind"] == "linear"
                else draw(st.integers(100, 20000)))
        out.append({"account": name, "size": str(size),
                    "entry_price": str(int(fill) + draw(st.integers(-200, 200)) or 1),
                    "unrealized_pnl": units_text(pnl, ASSETS[asset]),
                    "collateral": money(draw, asset, 0, 100)})
    return out


#: Gaps between facts, in half seconds: none, a little, a window's length, or up to (or half a
#: second short of) the next hour or day: the bounds of windows and claim periods.
GAPS = (0, 0, 0, 1, 120, 7200, 57600, 172800, "hour", "hour-", "day", "day-")


def advance(clock: int, gap: int | str) -> int:
    """The clock (half seconds) after `gap`."""
    if isinstance(gap, int):
        return clock + gap
    span = 7200 if gap.startswith("hour") else 172800
    target = (clock // span + 1) * span
    return target - 1 if gap.endswith("-") and target - 1 >= clock else target


@st.composite
def v2_facts(draw: st.DrawFn, config: dict[str, Any]) -> list[tuple[dict[str, Any], str | None]]:
    """A fact stream for `config`: `(fact, field)` pairs, `field` naming what the ledger must
    refuse the fact for (None: it may or may not be recorded). Every pool is funded at the
    start; then liquidations most often, capital, fees, transfers, listings and moves, caps,
    observations and policies adding and removing ADL rules, times non-decreasing."""
    pools = sorted(config["pools"])
    specs = {m: dict(s) for m, s in config["markets"].items()}
    version = 1
    out: list[tuple[dict[str, Any], str | None]] = []
    clock = 0

    def fact(type_: str, must_refuse: str | None = None, **fields: Any) -> None:
        out.append(({"type": type_, "id": f"x{len(out)}", "time": stamp(clock), **fields},
                    must_refuse))

    for p in pools:
        for asset in sorted(ASSETS):
            if draw(st.integers(0, 3)):
                fact("capital", direction="inject", asset=asset,
                     amount=money(draw, asset, 20, 1500 if p == "p0" else 300),
                     source="operator", pool=p)
    for _ in range(draw(st.integers(12, 30))):
        clock = advance(clock, draw(st.sampled_from(GAPS)))
        step = draw(st.sampled_from(
            ["liq"] * 8 + ["inject", "withdraw", "fee", "fee-no-pool", "transfer", "transfer",
                           "transfer-huge", "listing", "move", "cap", "cap", "observe",
                           "policy", "policy", "pool", "again", "short-safe", "big"]))
        asset = draw(st.sampled_from(sorted(ASSETS)))
        market = draw(st.sampled_from(sorted(specs)))
        spec = specs[market]
        if step == "pool":  # a pool created mid-stream: its ADL series starts here
            new = f"q{len(out)}"
            fact("pool", pool=new, kind=draw(st.sampled_from(KINDS)))
            pools.append(new)
        elif step == "again" and out:  # a fact sent again: a no-op if it was recorded, else
            out.append((draw(st.sampled_from(out))[0], None))  # refused, maybe for its time
        elif step == "short-safe":  # an inverse short with C * E >= n * F: never bankrupt
            coins = [m for m, sp in specs.items() if sp["kind"] == "inverse"]
            if coins:
                market = draw(st.sampled_from(sorted(coins)))
                coin = specs[market]["settlement"]
                _, face, price = INVERSE[coin]
                size = draw(st.integers(1, 50))
                fact("liquidation", account="acct-3", market=market, side="short",
                     size=str(size), entry_price=str(price),
                     collateral=units_text(-(-size * face * 10 ** ASSETS[coin] // price)
                                           + draw(st.integers(0, 5)), ASSETS[coin]),
                     fill_price=str(price * draw(st.integers(1, 3))), mark_price=str(price),
                     counterparties=[])
        elif step == "big":  # a line over 65,535 bytes: a head and counterparty chunks
            position = (linear_position(draw, spec["settlement"]) if spec["kind"] == "linear"
                        else inverse_position(draw, spec["settlement"]))
            crowd = [{**c, "account": f"{c['account']}-{k:04d}".ljust(120, "z")}
                     for k, c in enumerate(counterparties(draw, spec, position["fill_price"])
                                           * 200)]
            fact("liquidation", account="acct-4", market=market, **position,
                 counterparties=crowd)
        elif step == "liq":
            position = (linear_position(draw, spec["settlement"]) if spec["kind"] == "linear"
                        else inverse_position(draw, spec["settlement"]))
            fact("liquidation", account=draw(st.sampled_from(["acct-1", "acct-2"])),
                 market=market, **position,
                 counterparties=counterparties(draw, spec, position["fill_price"]))
        elif step in ("inject", "withdraw"):
            fact("capital", direction=step, asset=asset, amount=money(draw, asset, 1, 600),
                 source="operator", pool=draw(st.sampled_from(pools)))
        elif step == "fee":
            fact("fee", kind="trading_fee_share", asset=asset,
                 amount=money(draw, asset, 1, 100), pool=draw(st.sampled_from(pools)))
        elif step == "fee-no-pool":
            fact("fee", "pool", kind="trading_fee_share", asset=asset,
                 amount=money(draw, asset, 1, 100))
        elif step.startswith("transfer"):
            source, target = draw(st.lists(st.sampled_from(pools), min_size=2, max_size=2,
                                           unique=True))
            huge = step == "transfer-huge"
            fact("transfer", "amount" if huge else None, from_pool=source, to_pool=target,
                 asset=asset, amount=money(draw, asset, 10**7, 10**7) if huge
                 else money(draw, asset, 1, 200),
                 authority=draw(st.sampled_from(["operator", "risk-committee"])),
                 reason=draw(st.sampled_from(["rebalance", "replenish", "other"])))
        elif step == "listing":
            new = f"N{len(out)}"
            spec = market_spec(draw)
            specs[new] = spec
            fact("assignment", market=new, pool=draw(st.sampled_from(pools)),
                 reason="listing", spec=spec)
        elif step == "move":
            fact("assignment", market=market, pool=draw(st.sampled_from(pools)),
                 reason=draw(st.sampled_from(["ejection", "regrouping"])))
        elif step == "cap":
            coin = spec["settlement"]
            tight = draw(st.booleans())  # often low enough to bind the next deficits
            total = draw(st.one_of(st.none(), st.just(money(draw, coin, 0, 60 if tight
                                                            else 1500))))
            period = draw(st.one_of(st.none(), st.sampled_from([3600, 86400])))
            fields = {"total": total} if total is not None else {}
            if period is not None:
                fields |= {"per_period": money(draw, coin, 0, 30 if tight else 500),
                           "period_seconds": period}
            fact("claim_cap", market=market, **fields)
        elif step == "observe":
            fact("observation", market=market, mark_price=str(draw(st.integers(1, 60000))),
                 open_interest=str(draw(st.integers(0, 500))))
        else:
            version += draw(st.integers(1, 2))
            watch = {p: draw(st.sampled_from(sorted(ASSETS))) for p in pools}
            fact("policy", policy=policy_doc(draw, version, pools, watch))
    return out
