"""Valued assets (schemas/README.md "Format v2 (pools)", "Valued assets and conversions"):
policy/2's `assets` terms, the valuation price π of an asset, a pool's value raw and after
haircut, and the bound a conversion must keep. Pure and exact (`Fraction`); values are
integers of the valuation currency's minor unit (`10^-v`), rounded down (assets) or up
(liabilities). The auditor has its own (auditor/valuation_rules.py);
tests/e2e/test_valuation_differential.py checks that the two agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from auditor.formats.wire import format_amount, format_decimal

SOURCES = ("par", "oracle", "redemption_ratio")


@dataclass(frozen=True)
class AssetTerms:
    """One asset's valuation terms in policy/2 (`haircut` exact, `haircut_text` as given)."""

    haircut: Fraction
    haircut_text: str
    source: str
    underlying: str | None = None
    floor: Fraction | None = None


def valuation_price(asset: str, terms: Mapping[str, AssetTerms],
                    prices: Mapping[str, Fraction],
                    ratios: Mapping[tuple[str, str], Fraction]) -> Fraction | None:
    """π(asset), or None when unknown. `prices`: the last kind-`price` value per asset;
    `ratios`: the last kind-`ratio` value per (asset, underlying). `par` is 1; `oracle` the
    last price; `redemption_ratio` the last ratio to the policy's underlying times
    π(underlying), then clamped up to `floor` (Q7: a floor is a clamp, and only a
    redemption_ratio asset may have one). Unknown when the asset has no terms or a needed
    value was never recorded (a floor does not make an unknown price known)."""
    term = terms.get(asset)
    if term is None:
        return None
    if term.source == "par":
        return Fraction(1)
    if term.source == "oracle":
        return prices.get(asset)
    assert term.underlying is not None, "policy/2 requires an underlying"
    ratio = ratios.get((asset, term.underlying))
    if ratio is None:
        return None
    base = valuation_price(term.underlying, terms, prices, ratios)
    if base is None:
        return None
    value = ratio * base
    return value if term.floor is None else max(value, term.floor)


def valuation_prices(terms: Mapping[str, AssetTerms], prices: Mapping[str, Fraction],
                     ratios: Mapping[tuple[str, str], Fraction]) -> dict[str, Fraction]:
    """π of every asset of `terms` whose price is known (absent: unknown)."""
    out = {}
    for asset in terms:
        value = valuation_price(asset, terms, prices, ratios)
        if value is not None:
            out[asset] = value
    return out


def floor_v(value: Fraction, v: int) -> int:
    """`value` rounded toward minus infinity to `v` decimals, in units of `10^-v`."""
    return int(value.numerator * 10**v) // int(value.denominator)


def ceil_v(value: Fraction, v: int) -> int:
    """`value` rounded toward plus infinity to `v` decimals, in units of `10^-v`."""
    return -(int(-value.numerator * 10**v) // int(value.denominator))


def asset_value(units: int, decimals: int, price: Fraction, haircut: Fraction,
                v: int) -> tuple[int, int]:
    """(raw, after haircut) of `units` of an asset of `decimals` at π `price`, each
    `floor_v` of the exact product (after haircut from the exact raw, not the rounded)."""
    exact = Fraction(units, 10**decimals) * price
    return floor_v(exact, v), floor_v(exact * (1 - haircut), v)


def pool_value(balances: Mapping[str, int], prices: Mapping[str, Fraction],
               haircuts: Mapping[str, Fraction], decimals: Mapping[str, int],
               v: int) -> tuple[int, int, list[str]]:
    """A pool's value: (raw, after haircut, unvalued). `balances` in each asset's units;
    `prices` the known π (an asset absent is unknown); `haircuts` per valued asset. Values
    are units of `10^-v`: the sums of each asset's rounded-down values. `unvalued`: the
    assets with a balance > 0 and no π, sorted; they add 0."""
    raw = after = 0
    unvalued = []
    for asset, units in balances.items():
        price = prices.get(asset)
        if price is None:
            if units > 0:
                unvalued.append(asset)
            continue
        r, a = asset_value(units, decimals[asset], price, haircuts[asset], v)
        raw, after = raw + r, after + a
    return raw, after, sorted(unvalued)


def total_value(values: Mapping[str, tuple[int, int, list[str]]]) -> tuple[int, int, list[str]]:
    """The fund's value: the sums of its pools' `pool_value`s, unvalued assets merged."""
    raw = sum(value[0] for value in values.values())
    after = sum(value[1] for value in values.values())
    unvalued = sorted({asset for value in values.values() for asset in value[2]})
    return raw, after, unvalued


def format_value(units: int, v: int) -> str:
    """A value in units of `10^-v` as an amount of the valuation currency (`v` decimals)."""
    return format_amount(units, v)


def canonical(value: Fraction) -> str:
    """The canonical decimal of an exact terminating decimal (`3150`, `0.9995`, `-0.1125`):
    no exponent, no leading zeros, no trailing zeros, no point when integral."""
    places = 0
    while (value * 10**places).denominator != 1:
        places += 1
        if places > 64:
            raise ValueError(f"{value} is not a terminating decimal")
    if places == 0:
        return str(value.numerator)
    return format_amount(int(value * 10**places), places).rstrip("0")


def conversion_bounds(from_units: int, from_decimals: int, from_price: Fraction,
                      from_haircut: Fraction, to_decimals: int, to_price: Fraction,
                      to_haircut: Fraction) -> tuple[int, int | None]:
    """[L, U] of a conversion's `to_amount`, in units of the asset received (U None: no
    upper bound, a haircut of 1). Exactly `V_to >= V_from·(1 - h_from)` and
    `V_to·(1 - h_to) <= V_from` with `V = amount · π`: L rounds up, U down."""
    value = Fraction(from_units, 10**from_decimals) * from_price
    scale = 10**to_decimals
    low = value * (1 - from_haircut) / to_price * scale
    lower = -((-low.numerator) // low.denominator)
    if to_haircut == 1:
        return lower, None
    high = value / (to_price * (1 - to_haircut)) * scale
    return lower, high.numerator // high.denominator


def conversion_rate(from_units: int, from_decimals: int, to_units: int,
                    to_decimals: int) -> str:
    """A conversion's `rate`: `he_12(to_amount / from_amount)` (display only)."""
    return format_decimal(Fraction(to_units * 10**from_decimals,
                                   from_units * 10**to_decimals), 12)
