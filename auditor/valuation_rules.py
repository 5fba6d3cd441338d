"""The auditor's own valuation arithmetic (schemas/README.md "Format v2 (pools)", "Valued
assets and conversions"), written from the README and never from the ledger: the valuation
price π, a pool's value raw and after haircut, the unvalued assets, and a conversion's bound.
Exact rationals; values in units of the valuation currency's `10^-v`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Terms:
    """policy/2 `assets.A`: haircut (exact and as written), source, underlying, floor."""

    haircut: Fraction
    haircut_text: str
    source: str
    underlying: str | None = None
    floor: Fraction | None = None


def pi(asset: str, terms: Mapping[str, Terms], prices: Mapping[str, Fraction],
       ratios: Mapping[tuple[str, str], Fraction]) -> Fraction | None:
    """π(asset) under `terms`; None when unknown. A floor clamps a redemption_ratio price
    (the only source that may have one) and never makes an unknown price known."""
    t = terms.get(asset)
    if t is None:
        return None
    if t.source == "par":
        return Fraction(1)
    if t.source == "oracle":
        return prices.get(asset)
    if t.underlying is None or (asset, t.underlying) not in ratios:
        return None
    under = pi(t.underlying, terms, prices, ratios)
    if under is None:
        return None
    price = ratios[(asset, t.underlying)] * under
    if t.floor is not None and price < t.floor:
        return t.floor
    return price


def known_prices(terms: Mapping[str, Terms], prices: Mapping[str, Fraction],
                 ratios: Mapping[tuple[str, str], Fraction]) -> dict[str, Fraction]:
    """π of each asset of `terms` that has one."""
    found = {a: pi(a, terms, prices, ratios) for a in terms}
    return {a: p for a, p in found.items() if p is not None}


def _down(x: Fraction, v: int) -> int:
    scale: int = 10**v
    return int(x.numerator) * scale // int(x.denominator)


def _up(x: Fraction, v: int) -> int:
    scale: int = 10**v
    n, d = int(x.numerator) * scale, int(x.denominator)
    return n // d + (1 if n % d else 0)


def floor_v(x: Fraction, v: int) -> int:
    """floor of `x` at `v` decimals, in units of 10^-v."""
    return _down(x, v)


def ceil_v(x: Fraction, v: int) -> int:
    """ceil of `x` at `v` decimals, in units of 10^-v."""
    return _up(x, v)


def pool_value(balances: Mapping[str, int], prices: Mapping[str, Fraction],
               haircuts: Mapping[str, Fraction], decimals: Mapping[str, int],
               v: int) -> tuple[int, int, list[str]]:
    """(raw, after haircut, unvalued) of one pool: per asset `floor_v(b·10^-d·π)` and
    `floor_v(b·10^-d·π·(1 - h))`, summed; an asset held (> 0) without π is unvalued."""
    raw = 0
    after = 0
    missing: set[str] = set()
    for asset in sorted(balances):
        b = balances[asset]
        if asset not in prices:
            if b > 0:
                missing.add(asset)
            continue
        exact = Fraction(b * prices[asset].numerator,
                         10**decimals[asset] * prices[asset].denominator)
        raw += _down(exact, v)
        after += _down(exact - exact * haircuts[asset], v)
    return raw, after, sorted(missing)


def total_value(values: Mapping[str, tuple[int, int, list[str]]]) -> tuple[int, int, list[str]]:
    """The fund's (raw, after haircut, unvalued): sums over its pools."""
    raw, after, missing = 0, 0, set()
    for r, a, m in values.values():
        raw += r
        after += a
        missing.update(m)
    return raw, after, sorted(missing)


def canonical(x: Fraction) -> str:
    """The canonical decimal of a terminating `x` (`60000`, `0.9995`, `-0.1125`)."""
    d, twos, fives = x.denominator, 0, 0
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    if d != 1:
        raise ValueError(f"{x} is not a terminating decimal")
    places = max(twos, fives)
    n = abs(x.numerator) * 10**places // x.denominator
    sign = "-" if x < 0 else ""
    whole, frac = divmod(n, 10**places)
    if not places:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:0{places}d}".rstrip("0").rstrip(".")


def bounds(from_units: int, from_decimals: int, from_price: Fraction, from_haircut: Fraction,
           to_decimals: int, to_price: Fraction, to_haircut: Fraction) -> tuple[int, int | None]:
    """The accepted `to_amount` units [L, U] (U None when `h_to` is 1): the least amount
    with `V_to >= V_from·(1 - h_from)` and the greatest with `V_to·(1 - h_to) <= V_from`."""
    v_from = Fraction(from_units, 10**from_decimals) * from_price
    lower = _up(v_from * (1 - from_haircut) / to_price, to_decimals)
    if to_haircut == 1:
        return lower, None
    return lower, _down(v_from / (to_price * (1 - to_haircut)), to_decimals)
