"""The members of a `backstop-snapshot/3`: what a format 2 fund publishes beyond `/2`.

schemas/README.md "Format v2 (pools)", "Snapshot `backstop-snapshot/3`": the structure
(pools, markets, the valuation currency), each pool's balance of every fund asset, each
market's claims under its cap, and the metrics per market (over the balance of its own pool)
and per pool (its ADL state), and the valuation members (`valuation`, each pool's `value`,
`open_interest_value` and the after-haircut metrics: "Valuation" there; arithmetic
ledger.domain.valuation). Read from the fund's state (`fund.v2`, ledger.domain.poolstate);
pure: no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from auditor.formats.wire import (
    format_amount,
    format_canonical,
    format_decimal,
    format_time,
    parse_decimal,
)
from ledger.domain.claims import period_number
from ledger.domain.fund import Fund
from ledger.domain.pooladl import _series as balance_series
from ledger.domain.poolstate import active_policy, pool_balance, price_book, price_records
from ledger.domain.valuation import (
    AssetTerms,
    canonical,
    ceil_v,
    floor_v,
    format_value,
    pool_value,
    total_value,
    valuation_prices,
)

SNAPSHOT_FORMAT_POOLS = "backstop-snapshot/3"
RATIO_PLACES = 12  # fund_to_oi and the ADL ratio: he_12, as v1's fund_to_oi
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def pool_members(fund: Fund, valuation: dict[str, Any]) -> dict[str, Any]:
    """`structure`, `pools`, `claims` and `valuation` of a `/3` of `fund` (a format 2 fund
    after its last event); `valuation` is the `valuation` of its `fund_opened/2`."""
    state = fund.v2
    assets = sorted(fund.assets)
    assignment: dict[str, str] = state["assignment"]
    pools = {pool: {"kind": kind,
                    "markets": sorted(m for m, p in assignment.items() if p == pool)}
             for pool, kind in sorted(state["pools"].items())}
    markets = {m: {**state["specs"][m], "pool": assignment[m]} for m in sorted(assignment)}
    v = int(valuation["decimals"])
    values = values_of(fund)
    return {
        "structure": {"valuation": dict(valuation), "pools": pools, "markets": markets},
        "pools": {pool: {"balances": {a: format_amount(pool_balance(fund, pool, a),
                                                       fund.assets[a]) for a in assets},
                         "value": shown_value(values[pool], v)}
                  for pool in sorted(state["pools"])},
        "claims": {m: claims_of(fund, m) for m in sorted(assignment)},
        "valuation": {"currency": valuation["currency"], "decimals": v,
                      "prices": prices_of(fund),
                      "haircuts": {a: t.haircut_text for a, t in sorted(terms_of(fund).items())},
                      "total": shown_value(total_value(values), v)},
    }


def terms_of(fund: Fund) -> dict[str, AssetTerms]:
    """The policy in force's `assets` terms ({} before the first policy: nothing valued)."""
    return {} if fund.policy is None else dict(active_policy(fund).assets)


def known_of(fund: Fund) -> dict[str, Fraction]:
    """π of every asset with a known valuation price after the fund's last event."""
    return valuation_prices(terms_of(fund), *price_book(fund))


def values_of(fund: Fund) -> dict[str, tuple[int, int, list[str]]]:
    """Each pool's (raw, after haircut, unvalued) in units of `10^-v`."""
    known = known_of(fund)
    haircuts = {a: t.haircut for a, t in terms_of(fund).items()}
    v = int(fund.v2["valuation"]["decimals"])
    return {pool: pool_value({a: pool_balance(fund, pool, a) for a in fund.assets}, known,
                             haircuts, fund.assets, v)
            for pool in fund.v2["pools"]}


def shown_value(value: tuple[int, int, list[str]], v: int) -> dict[str, Any]:
    """`pools.P.value` / `valuation.total`: `{raw, after_haircut, unvalued}`."""
    raw, after, unvalued = value
    return {"raw": format_value(raw, v), "after_haircut": format_value(after, v),
            "unvalued": list(unvalued)}


def prices_of(fund: Fund) -> dict[str, dict[str, Any]]:
    """`valuation.prices`: each asset with a known π, canonical, with the source and the index
    of the `asset_priced/1` that set it (a redemption ratio's: the ratio's, with the ratio as
    recorded and its underlying; par: index null)."""
    terms = terms_of(fund)
    known = known_of(fund)
    recorded, ratios = price_records(fund)
    out: dict[str, dict[str, Any]] = {}
    for asset in sorted(known):
        term = terms[asset]
        entry: dict[str, Any] = {"price": canonical(known[asset]), "source": term.source}
        if term.source == "par":
            entry["index"] = None
        elif term.source == "oracle":
            entry["index"] = recorded[asset][1]
        else:
            assert term.underlying is not None, "policy/2 requires an underlying"
            ratio, index = ratios[asset][term.underlying]
            entry |= {"ratio": ratio, "underlying": term.underlying, "index": index}
        out[asset] = entry
    return out


def claims_of(fund: Fund, market: str) -> dict[str, Any] | None:
    """`claims.M`: None without a cap (or one that limits nothing); else the cap, what the
    market has claimed in all and in the period of the log's last event time."""
    cap = fund.v2["caps"].get(market)
    if cap is None or (cap[1] is None and cap[2] is None):
        return None
    set_at, total, per_period, seconds = cap
    asset = fund.markets[market]
    d = fund.assets[asset]
    claims: list[list[Any]] = fund.v2["claims"].get(market, [])
    shown: dict[str, Any] = {
        "asset": asset, "total": None if total is None else format_amount(total, d),
        "per_period": None if per_period is None else format_amount(per_period, d),
        "period_seconds": seconds,
        "claimed_total": format_amount(sum(units for _, _, units in claims), d),
        "claimed_period": None, "period_start": None}
    if seconds is not None:
        k = period_number(fund.v2["times"][-1], seconds)
        shown["claimed_period"] = format_amount(
            sum(units for index, time, units in claims
                if index > set_at and period_number(time, seconds) == k), d)
        shown["period_start"] = format_time(_EPOCH + timedelta(seconds=k * seconds))
    return shown


def pool_metrics(fund: Fund, risk: dict[str, Any] | None) -> dict[str, Any]:
    """`metrics` of a `/3`: per observed market its v1 figures over its pool's balance and its
    open interest's value, per pool the same summed and its ADL state after the log's last
    fact; `risk` (the operator's headline) with its `coverage_after_haircut`."""
    state = fund.v2
    v = int(state["valuation"]["decimals"])
    known = known_of(fund)
    values = values_of(fund)
    markets = {}
    # pool -> the exact notional values of its observed markets (None: a π unknown)
    owed: dict[str, list[Fraction | None]] = {}
    for market, (mark, open_interest) in sorted(fund.observed.items()):
        spec = state["specs"][market]
        pool = state["assignment"][market]
        asset = spec["settlement"]
        exact, shown = notional(spec, parse_decimal(mark), parse_decimal(open_interest))
        reserve = Fraction(pool_balance(fund, pool, asset), 10 ** fund.assets[asset])
        worth = None if asset not in known else exact * known[asset]
        owed.setdefault(pool, []).append(worth)
        markets[market] = {
            "mark_price": mark, "open_interest": open_interest, "open_interest_notional": shown,
            "fund_to_oi": None if exact == 0 else format_decimal(reserve / exact, RATIO_PLACES),
            "pool": pool, **value_metrics(worth, values[pool][1], v)}
    pools = {}
    for pool in sorted(state["pools"]):
        worths = owed.get(pool, [])
        total = None if not worths or None in worths else sum(w for w in worths if w is not None)
        pools[pool] = {**value_metrics(None if total is None else Fraction(total),
                                       values[pool][1], v),
                       "adl": adl_state(fund, pool)}
    metrics: dict[str, Any] = {"markets": markets, "pools": pools}
    if risk is not None:
        after = total_value(values)[1]
        metrics["risk"] = {**risk, "coverage_after_haircut": coverage_after_haircut(
            after, v, parse_decimal(risk["recommended_size"]), known.get(risk["asset"]))}
    return metrics


def coverage_after_haircut(after: int, v: int, size: Fraction,
                           price: Fraction | None) -> str | None:
    """`metrics.risk.coverage_after_haircut`: `floor_6(fund after haircut / (recommended size
    · π(asset)))`, `after` in units of `10^-v`; None when π is unknown or the size is 0."""
    if price is None or size == 0:
        return None
    return format_value(floor_v(Fraction(after, 10**v) / (size * price), 6), 6)


def value_metrics(worth: Fraction | None, after: int, v: int) -> dict[str, str | None]:
    """`open_interest_value` (the exact notional value `worth`, `ceil_v`: a liability; null
    when unknown) and `fund_to_oi_after_haircut` (`floor_12(after / worth)`, `after` the pool's
    value after haircut in units of `10^-v`; null when `worth` is 0 or unknown)."""
    if worth is None:
        return {"open_interest_value": None, "fund_to_oi_after_haircut": None}
    ratio = None if worth == 0 else format_value(
        floor_v(Fraction(after, 10**v) / worth, RATIO_PLACES), RATIO_PLACES)
    return {"open_interest_value": format_value(ceil_v(worth, v), v),
            "fund_to_oi_after_haircut": ratio}


def notional(spec: dict[str, Any], mark: Fraction, open_interest: Fraction) -> tuple[Fraction, str]:
    """The exact open-interest notional in the settlement asset and its string: linear
    `mark · open_interest` canonical; inverse `open_interest · face_value / mark` (coin),
    he_12 then canonical (0 when the mark is 0: nothing to value)."""
    if spec["kind"] == "linear":
        exact = mark * open_interest
        return exact, format_canonical(exact)
    exact = open_interest * parse_decimal(spec["face_value"]) / mark if mark else Fraction(0)
    return exact, format_canonical(parse_decimal(format_decimal(exact, RATIO_PLACES)))


def adl_state(fund: Fund, pool: str) -> dict[str, Any] | None:
    """`metrics.pools.P.adl`: None without a rule in the policy in force; else the state
    (`since`: the index of the `adl_started/1` in force) and the trailing window as evaluated
    after the last fact (ADL events after it move no balance and share its time, so the
    window after the log's last event is the same)."""
    if fund.policy is None:
        return None
    rule = active_policy(fund).adl_rule(pool)
    if rule is None:
        return None
    state = fund.v2
    d = fund.assets[rule.asset]
    last = fund.log_size - 1
    window = balance_series(fund, pool, rule.asset, last, rule.window_seconds).window(
        rule.window_seconds)
    in_adl = pool in state["adl"]
    return {"state": "adl" if in_adl else "normal",
            "since": state.get("adl_since", {}).get(pool) if in_adl else None,
            "balance": format_amount(window.balance, d), "peak": format_amount(window.peak, d),
            "peak_index": window.peak_index, "peak_time": window.peak_time,
            "ratio": None if window.ratio is None else format_decimal(window.ratio, RATIO_PLACES)}
