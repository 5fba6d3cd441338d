"""Prices and conversions in a format v2 log, checked event by event (schemas/README.md
"Format v2 (pools)", "Valued assets and conversions"): policy/2's `assets` terms, the price
book `asset_priced/1` builds, and each `asset_converted/1` against it (its prices, haircuts,
rate and bound recomputed). State for `auditor.replay_v2`; arithmetic: auditor.valuation_rules.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from auditor.formats.bounds import MAX_DECIMAL_CHARS
from auditor.formats.clip import clip
from auditor.formats.wire import WireError, format_amount, format_decimal, parse_decimal
from auditor.replay import _Fail
from auditor.valuation_rules import Terms, bounds, canonical, known_prices, pi, pool_value

# The replayer (auditor.replay_v2.V2Replayer) is typed Any here: importing it would close an
# import cycle (tests/test_layers.py).
V2Replayer = Any

SOURCES = ("par", "oracle", "redemption_ratio")
TERM_KEYS = frozenset({"haircut", "source", "floor", "underlying"})


def _text(value: Any, where: str) -> str:
    if type(value) is not str or not 0 < len(value) <= 200:
        raise _Fail(f"{where}: {clip(value)} is not 1 to 200 characters")
    return value


def _positive(value: Any, where: str) -> Fraction:
    if isinstance(value, str) and len(value) > MAX_DECIMAL_CHARS:
        raise _Fail(f"{where}: more than {MAX_DECIMAL_CHARS} characters")
    try:
        number = parse_decimal(value)
    except WireError as exc:
        raise _Fail(f"{where}: {exc}") from None
    if number <= 0:
        raise _Fail(f"{where}: {clip(value)} is not positive")
    return number


def asset_terms(raw: Any, decimals: dict[str, int]) -> dict[str, Terms]:
    """policy/2 `assets`, checked: fund assets; haircut in [0, 1]; an underlying (a fund asset
    valued par or oracle) for and only for redemption_ratio; a floor only for
    redemption_ratio (decision Q7)."""
    if not isinstance(raw, dict):
        raise _Fail("data.policy.assets: not an object")
    out = {}
    for asset, spec in raw.items():
        if asset not in decimals:
            raise _Fail(f"data.policy.assets.{clip(asset)}: not an asset of the fund")
        where = f"data.policy.assets.{asset}"
        if not isinstance(spec, dict) or not {"haircut", "source"} <= set(spec) <= TERM_KEYS:
            raise _Fail(f"{where}: must be {{haircut, source[, underlying][, floor]}}")
        try:
            haircut = parse_decimal(spec["haircut"])
        except WireError as exc:
            raise _Fail(f"{where}.haircut: {exc}") from None
        if not 0 <= haircut <= 1:
            raise _Fail(f"{where}.haircut: {clip(spec['haircut'])} is not in [0, 1]")
        source, underlying = spec["source"], spec.get("underlying")
        if source not in SOURCES:
            raise _Fail(f"{where}.source: {clip(source)} is not one of {', '.join(SOURCES)}")
        if source == "redemption_ratio":
            base = raw.get(underlying) if type(underlying) is str else None
            if underlying not in decimals or not isinstance(base, dict) or \
                    base.get("source") not in ("par", "oracle"):
                raise _Fail(f"{where}.underlying: {clip(underlying)} is not a fund asset "
                            "valued par or oracle")
        elif underlying is not None:
            raise _Fail(f"{where}.underlying: only a redemption_ratio asset has one")
        floor = None
        if "floor" in spec:
            if source != "redemption_ratio":
                raise _Fail(f"{where}.floor: only a redemption_ratio asset may have a floor")
            floor = _positive(spec["floor"], f"{where}.floor")
        out[asset] = Terms(haircut, spec["haircut"], source, underlying, floor)
    return out


class ValueBook:
    """The fund's valuation currency, the policy's terms and the last recorded values."""

    def __init__(self, r: V2Replayer) -> None:
        self.r = r
        self.currency = ""
        self.decimals = 0  # the valuation currency's `v`
        self.terms: dict[str, Terms] = {}
        # asset -> (value, value as recorded, index) of its last kind-price asset_priced/1
        self.prices: dict[str, tuple[Fraction, str, int]] = {}
        # (asset, underlying) -> (value, as recorded, index) of the last kind-ratio one
        self.ratios: dict[tuple[str, str], tuple[Fraction, str, int]] = {}

    def exact(self) -> tuple[dict[str, Fraction], dict[tuple[str, str], Fraction]]:
        """The book's values alone, the inputs of auditor.valuation_rules.pi."""
        return ({a: v[0] for a, v in self.prices.items()},
                {k: v[0] for k, v in self.ratios.items()})

    def known(self) -> dict[str, Fraction]:
        """π of every asset the policy values and the book prices."""
        return known_prices(self.terms, *self.exact())

    def pool_values(self, pools: dict[str, dict[str, int]],
                    decimals: dict[str, int]) -> dict[str, tuple[int, int, list[str]]]:
        """Each pool's (raw, after haircut, unvalued) at the book's prices, in units of
        `10^-v` (auditor.valuation_rules.pool_value; the fund's: total_value of these)."""
        known = self.known()
        haircuts = {a: t.haircut for a, t in self.terms.items()}
        return {pool: pool_value(held, known, haircuts, decimals, self.decimals)
                for pool, held in pools.items()}

    def priced(self, ev: dict[str, Any]) -> None:
        """`asset_priced/1`: a price in the valuation currency or a ratio to an underlying."""
        r = self.r
        r._unique(ev)
        data = ev["data"]
        asset, kind = data["asset"], data["kind"]
        if asset not in r.decimals:
            raise _Fail(f"data.asset: {clip(asset)} is not an asset of the fund")
        value = _positive(data["value"], "data.value")
        _text(data["source"], "data.source")
        currency, underlying = data["currency"], data["underlying"]
        if kind == "price":
            if currency != self.currency:
                raise _Fail(f"data.currency: {clip(currency)} is not the valuation currency "
                            f"{self.currency}")
            if underlying is not None:
                raise _Fail("data.underlying: must be null for kind price")
            self.prices[asset] = (value, data["value"], r.count)
        elif kind == "ratio":
            if currency is not None:
                raise _Fail("data.currency: must be null for kind ratio")
            if underlying not in r.decimals or underlying == asset:
                raise _Fail(f"data.underlying: {clip(underlying)} is not another asset of "
                            "the fund")
            self.ratios[(asset, underlying)] = (value, data["value"], r.count)
        else:
            raise _Fail(f"data.kind: {clip(kind)} is not price or ratio")

    def converted(self, ev: dict[str, Any]) -> None:
        """`asset_converted/1`: its recorded prices, haircuts and rate equal the log's, and
        its `to_amount` is within the bound; then the pool's two balances move."""
        r = self.r
        r._unique(ev)
        data = ev["data"]
        pool, source, target = data["pool"], data["from_asset"], data["to_asset"]
        if pool not in r.structure.pools:
            raise _Fail(f"data.pool: unknown pool {clip(pool)}")
        for key in ("from_asset", "to_asset"):
            if data[key] not in r.decimals:
                raise _Fail(f"data.{key}: {clip(data[key])} is not an asset of the fund")
        if source == target:
            raise _Fail(f"data.to_asset: is from_asset {source}")
        out, into = r.amount(data, "from_amount", source), r.amount(data, "to_amount", target)
        for key, units in (("from_amount", out), ("to_amount", into)):
            if units <= 0:
                raise _Fail(f"data.{key}: must be positive")
        _text(data["venue"], "data.venue")
        prices, ratios = self.exact()
        found = {}
        for side, asset in (("from", source), ("to", target)):
            price = pi(asset, self.terms, prices, ratios)
            if price is None:
                raise _Fail(f"data.{side}_asset: no valuation price for {asset}")
            found[side] = price
            if data[f"{side}_price"] != canonical(price):
                raise _Fail(f"data.{side}_price: expected {canonical(price)} (π of {asset} at "
                            f"this index), got {clip(data[f'{side}_price'])}")
            haircut = self.terms[asset].haircut_text
            if data[f"{side}_haircut"] != haircut:
                raise _Fail(f"data.{side}_haircut: expected {haircut} (the policy's haircut "
                            f"of {asset}), got {clip(data[f'{side}_haircut'])}")
        d_from, d_to = r.decimals[source], r.decimals[target]
        rate = format_decimal(Fraction(into * 10**d_from, out * 10**d_to), 12)
        if data["rate"] != rate:
            raise _Fail(f"data.rate: expected {rate}, got {clip(data['rate'])}")
        low, high = bounds(out, d_from, found["from"], self.terms[source].haircut, d_to,
                           found["to"], self.terms[target].haircut)
        if into < low or (high is not None and into > high):
            upper = "∞" if high is None else format_amount(high, d_to)
            raise _Fail(f"data.to_amount: {data['to_amount']} is outside "
                        f"[{format_amount(low, d_to)}, {upper}] for the recorded prices and "
                        "haircuts")
        r.move(pool, source, -out, "data.pool")
        r.move(pool, target, into, "data.pool")
