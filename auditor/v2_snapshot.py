"""A `backstop-snapshot/3` as the v2 replay expects it, and the comparison that names the
first member that differs (schemas/README.md "Format v2 (pools)", "Snapshot
`backstop-snapshot/3`"; docs/FORMAT-V2-DRAFT.md section 13).

`expected_members` is computed once, at the end of a v2 replay, from the replayer's own state
(auditor.v2_structure, auditor.v2_adl, the price book of auditor.v2_value, whose arithmetic is
auditor.valuation_rules); `compare` walks it against the snapshot's members and
says `path: expected X, got Y` for each leaf that differs. `pool_sums` is the snapshot's own
arithmetic: its pools add up to its reserves."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from auditor.formats.clip import clip
from auditor.formats.wire import (
    WireError,
    format_amount,
    format_canonical,
    format_decimal,
    format_time,
    parse_amount,
    parse_decimal,
)
from auditor.pool_rules import tau
from auditor.valuation_rules import canonical, ceil_v, floor_v, total_value

# The v2 replayer (auditor.replay_v2.V2Replayer) is typed Any here: importing it would close
# an import cycle (tests/test_layers.py).
V2Replayer = Any

FORMAT_POOLS = "backstop-snapshot/3"
MEMBERS = ("structure", "pools", "claims", "valuation")  # beside `metrics`
PLACES = 12  # fund_to_oi and the ADL ratio: he_12
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def expected_members(r: V2Replayer) -> dict[str, Any]:
    """The `/3` members the replayed log calls for: structure, pools (with their values),
    claims, valuation and metrics (without `risk`, which is the operator's)."""
    s = r.structure
    assets = sorted(r.decimals)
    markets = sorted(s.market_pool)
    book = r.value
    v = book.decimals
    values = book.pool_values({p: {a: s.pools[p].get(a, 0) for a in assets} for p in s.pools},
                              r.decimals)
    metrics = {m: _market(r, m) for m in sorted(r.metrics)}
    return {
        "structure": {
            "valuation": dict(s.valuation),
            "pools": {p: {"kind": s.kinds[p],
                          "markets": sorted(m for m in markets if s.market_pool[m] == p)}
                      for p in sorted(s.pools)},
            "markets": {m: {**s.specs[m], "pool": s.market_pool[m]} for m in markets}},
        "pools": {p: {"balances": {a: format_amount(s.pools[p][a], r.decimals[a]) for a in assets},
                      "value": _value(values[p], v)} for p in sorted(s.pools)},
        "claims": {m: _claims(r, m) for m in markets},
        "valuation": {"currency": book.currency, "decimals": v, "prices": _prices(book),
                      "haircuts": {a: t.haircut_text for a, t in sorted(book.terms.items())},
                      "total": _value(total_value(values), v)},
        "metrics": {"markets": {m: {**shown, **_worth(worth, values[shown["pool"]][1], v)}
                                for m, (shown, worth) in metrics.items()},
                    "pools": {p: {**_worth(_pool_worth(p, metrics), values[p][1], v),
                                  "adl": _adl(r, p)} for p in sorted(s.pools)}},
    }


def _value(value: tuple[int, int, list[str]], v: int) -> dict[str, Any]:
    raw, after, unvalued = value
    return {"raw": format_amount(raw, v), "after_haircut": format_amount(after, v),
            "unvalued": list(unvalued)}


def _prices(book: Any) -> dict[str, dict[str, Any]]:
    """`valuation.prices`: π canonical, its source, the index that set it (a ratio's for a
    redemption_ratio asset, with the ratio as recorded and its underlying; null for par)."""
    out: dict[str, dict[str, Any]] = {}
    for asset, price in sorted(book.known().items()):
        t = book.terms[asset]
        entry: dict[str, Any] = {"price": canonical(price), "source": t.source}
        if t.source == "par":
            entry["index"] = None
        elif t.source == "oracle":
            entry["index"] = book.prices[asset][2]
        else:
            _, text, index = book.ratios[(asset, t.underlying)]
            entry |= {"ratio": text, "underlying": t.underlying, "index": index}
        out[asset] = entry
    return out


def _pool_worth(pool: str, metrics: dict[str, tuple[dict[str, Any], Fraction | None]]
                ) -> Fraction | None:
    """The exact notional value of a pool's observed markets; None when it has none or a
    settlement asset's π is unknown."""
    worths = [worth for shown, worth in metrics.values() if shown["pool"] == pool]
    if not worths or any(w is None for w in worths):
        return None
    return sum((w for w in worths if w is not None), Fraction(0))


def _worth(worth: Fraction | None, after: int, v: int) -> dict[str, str | None]:
    """`open_interest_value` = ceil_v(worth) (a liability) and `fund_to_oi_after_haircut` =
    floor_12(after · 10^-v / worth); null when `worth` is unknown (the ratio: or 0)."""
    if worth is None:
        return {"open_interest_value": None, "fund_to_oi_after_haircut": None}
    return {"open_interest_value": format_amount(ceil_v(worth, v), v),
            "fund_to_oi_after_haircut": None if worth == 0 else
            format_amount(floor_v(Fraction(after, 10**v) / worth, PLACES), PLACES)}


def _claims(r: V2Replayer, market: str) -> dict[str, Any] | None:
    s = r.structure
    cap = s.caps.get(market)
    if cap is None or (cap.total is None and cap.per_period is None):
        return None  # no cap, or one that limits nothing
    asset = r.markets[market]
    d = r.decimals[asset]
    claims = s.claims[market]
    shown: dict[str, Any] = {
        "asset": asset, "total": None if cap.total is None else format_amount(cap.total, d),
        "per_period": None if cap.per_period is None else format_amount(cap.per_period, d),
        "period_seconds": cap.period_seconds,
        "claimed_total": format_amount(sum(units for _, _, units in claims), d),
        "claimed_period": None, "period_start": None}
    if cap.period_seconds is not None:
        size = cap.period_seconds
        start = (tau(r.times[-1]) // size) * size  # the period of the last event's time
        shown["claimed_period"] = format_amount(
            sum(units for index, when, units in claims
                if index > cap.index and start <= tau(when) < start + size), d)
        shown["period_start"] = format_time(_EPOCH + timedelta(seconds=int(start)))
    return shown


def _market(r: V2Replayer, market: str) -> tuple[dict[str, Any], Fraction | None]:
    """A market's v1 figures over its pool and the exact notional value (None: π unknown)."""
    s = r.structure
    mark_s, oi_s = r.metrics[market]
    spec, pool = s.specs[market], s.market_pool[market]
    mark, oi = parse_decimal(mark_s), parse_decimal(oi_s)
    if spec["kind"] == "linear":
        exact = mark * oi
        shown = format_canonical(exact)
    else:  # inverse: in coin, he_12 then canonical
        exact = oi * parse_decimal(spec["face_value"]) / mark if mark else Fraction(0)
        shown = format_canonical(parse_decimal(format_decimal(exact, PLACES)))
    asset = spec["settlement"]
    held = Fraction(s.pools[pool][asset], 10 ** r.decimals[asset])
    price = r.value.known().get(asset)
    return ({"mark_price": mark_s, "open_interest": oi_s, "open_interest_notional": shown,
             "fund_to_oi": None if exact == 0 else format_decimal(held / exact, PLACES),
             "pool": pool}, None if price is None else exact * price)


def _adl(r: V2Replayer, pool: str) -> dict[str, Any] | None:
    policy = r.structure.pool_policy.get(pool)
    rule = policy.adl if policy is not None else None
    judged = r.adl.last.get(pool)
    if rule is None or judged is None or judged.rule is None:
        return None
    d = judged.decimals
    in_adl = r.adl.in_adl.get(pool, False)
    return {"state": "adl" if in_adl else "normal",
            "since": r.adl.since.get(pool) if in_adl else None,
            "balance": format_amount(judged.balance, d),
            "peak": format_amount(judged.peak or 0, d),
            "peak_index": judged.peak_index, "peak_time": judged.peak_time,
            "ratio": None if judged.ratio is None else format_decimal(judged.ratio, PLACES)}


def pool_sums(snapshot: Mapping[str, Any]) -> str | None:
    """The first asset whose pools in a `/3` do not add up to its `reserves`, as
    `pools: A sums to X, reserves.A is Y` (None when they all do)."""
    reserves = snapshot["reserves"]
    for asset in sorted(reserves):
        d = len(reserves[asset].partition(".")[2])
        try:
            total = sum(parse_amount(pool["balances"].get(asset, "missing"), d)
                        for pool in snapshot["pools"].values())
        except WireError as exc:
            return f"pools: {asset}: {exc}"
        if format_amount(total, d) != reserves[asset]:
            return f"pools: {asset} sums to {format_amount(total, d)}, reserves.{asset} is {reserves[asset]}"
    return None


def compare(expected: Mapping[str, Any], snapshot: Mapping[str, Any]) -> list[str]:
    """Every member of a `/3` that differs from the replay's: `path: expected X, got Y`
    (`path: missing`, `path: not expected`), the pools' sum first."""
    problems = [p for p in (pool_sums(snapshot),) if p is not None]
    for member in MEMBERS:
        problems.extend(_walk(member, expected[member], snapshot.get(member, _MISSING)))
    metrics = {k: v for k, v in snapshot["metrics"].items() if k != "risk"}
    problems.extend(_walk("metrics", expected["metrics"], metrics))
    risk = snapshot["metrics"].get("risk")
    if isinstance(risk, dict):
        problems.extend(_walk("metrics.risk.coverage_after_haircut",
                              _coverage(expected["valuation"], risk),
                              risk.get("coverage_after_haircut", _MISSING)))
    return problems


def _coverage(valuation: Mapping[str, Any], risk: Mapping[str, Any]) -> str | None:
    """The operator's risk headline's `coverage_after_haircut`: `floor_6(the fund's value
    after haircut / (recommended_size · π(asset)))`; None when π is unknown or the size 0."""
    price = valuation["prices"].get(risk.get("asset"))
    try:
        size = parse_decimal(risk.get("recommended_size"))
    except WireError:
        return None  # the schema refuses it first
    if price is None or size == 0:
        return None
    v = valuation["decimals"]
    after = Fraction(parse_amount(valuation["total"]["after_haircut"], v), 10**v)
    return format_amount(floor_v(after / (size * parse_decimal(price["price"])), 6), 6)


_MISSING = object()


def _walk(path: str, want: Any, got: Any) -> Iterator[str]:
    if got is _MISSING:
        yield f"{path}: missing"
        return
    if isinstance(want, dict) and isinstance(got, dict):
        for key in sorted(set(want) | set(got)):
            if key not in want:
                yield f"{path}.{key}: not expected"
            else:
                yield from _walk(f"{path}.{key}", want[key], got.get(key, _MISSING))
        return
    if want != got or type(want) is not type(got):
        yield f"{path}: expected {_shown(want)}, got {_shown(got)}"


def _shown(value: Any) -> str:
    """A value as section 13 writes it: a string bare, anything else as JSON (clipped)."""
    if isinstance(value, str) and value.isprintable() and len(value) <= 80:
        return value
    if isinstance(value, str):
        return clip(value)
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return text if len(text) <= 240 else f"{text[:240]}... ({len(text)} chars)"
