"""A positions snapshot: parsing, checking, and the integer book the risk engine works on.

One JSON object per line (schemas/positions.schema.json). Errors are the import's:
`line N: field: reason` (a RecordError). Everything the engine needs is turned into integers
here, once: prices in units of 10^-price_decimals, sizes in units of 10^-size_decimals,
collateral in minor units of the quote asset, and each position's integer trigger price.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, BinaryIO

import numpy as np

from auditor.formats.schemas import first_error
from auditor.formats.wire import WireError, parse_amount_lenient, parse_decimal
from ledger.domain.records import RecordError, decode_json, numbered_lines

MAX_PRICE_DECIMALS = 8
MIN_PRICE_DECIMALS = 2  # paths move in steps no coarser than a cent of the quote
INT64_ROOM = 2**62  # an integer array is int64 when every value is below this, else Python ints
MAX_RISE = 64  # paths may rise to this multiple of today's price (the room is checked for it)
# Price paths are int64: a start price times MAX_RISE (with float rounding) stays below 2^62.
PRICE_ROOM = INT64_ROOM // MAX_RISE // 2
# A trigger beyond every price a path can reach acts the same as any larger one: clamped here
# so the sorted triggers stay int64 (a long this deep is down at step 0, a short never).
TRIGGER_CAP = INT64_ROOM


@dataclass(frozen=True)
class Position:
    """One open position as given (exact)."""

    line: int
    account: str
    market: str
    long: bool
    size: Fraction
    entry_price: Fraction
    collateral: int  # minor units of the quote asset
    mm_rate: Fraction
    group: str  # the affiliate group, or the account itself
    mark_price: Fraction | None


@dataclass
class Book:
    """The snapshot as integer arrays (one entry per position, in file order).

    `trigger[i]`: a long is below maintenance at integer price p when p <= trigger (0: never);
    a short when p >= trigger. Strict, as the simulator's margin engine: equity < mm * notional.
    """

    positions: list[Position]
    markets: list[str]  # sorted
    asset: str
    quote_decimals: int
    price_decimals: int
    size_decimals: int
    start: np.ndarray  # per market: start price (integer price units)
    depth: np.ndarray  # per market: book depth (quote minor units) that moves fills by 1%
    market: np.ndarray  # per position: market index
    long: np.ndarray  # bool
    size: np.ndarray  # size units: int64, or Python ints (object) when one is beyond int64
    entry: np.ndarray  # price units: int64 or object, as `size`
    collateral: np.ndarray  # minor units: int64 or object, as `size`
    trigger: np.ndarray  # int64 price units, clamped to [0, TRIGGER_CAP]
    level_rank: np.ndarray  # int64: rank of the exact maintenance level (equal levels, equal rank)
    group: np.ndarray  # int64 group index
    groups: list[str]

    @property
    def count(self) -> int:
        """Number of positions."""
        return len(self.positions)

    @property
    def size_max(self) -> int:
        """The largest size (exact)."""
        return max_abs(self.size)

    @property
    def size_total(self) -> int:
        """The sum of all sizes (exact)."""
        return sum(self.size.tolist())

    @property
    def collateral_max(self) -> int:
        """The largest |collateral| (exact)."""
        return max_abs(self.collateral)

    @property
    def entry_max(self) -> int:
        """The largest entry price (exact)."""
        return max_abs(self.entry)


def max_abs(values: np.ndarray) -> int:
    """The largest |value| of an integer array, exact (0 when empty)."""
    return max((abs(int(v)) for v in (values.max(), values.min())), default=0) if len(values) \
        else 0


def int_array(values: list[int]) -> np.ndarray:
    """int64 when every value fits the engine's int64 room (below 2^62), else an object array
    of Python ints: exact at any size, slower."""
    if all(-INT64_ROOM < v < INT64_ROOM for v in values):
        return np.array(values, dtype=np.int64)
    return np.array(values, dtype=object)


def read_positions(stream: BinaryIO) -> list[Position]:
    """Parse a positions snapshot; raise RecordError (`line N: field: reason`) on bad input."""
    out: list[Position] = []
    for number, raw in numbered_lines(stream):
        record = decode_json(number, raw, unique_keys=True)
        problem = first_error("positions", record)
        if problem is not None:
            raise RecordError(number, problem)
        out.append(_position(number, record))
    if not out:
        raise RecordError(1, "(file): no positions (one JSON object per line)")
    return out


def _position(number: int, record: Mapping[str, Any]) -> Position:
    def decimal(field: str) -> Fraction:
        try:
            return parse_decimal(record[field])
        except WireError as error:  # the schema's pattern already holds; keep the rule local
            raise RecordError(number, f"{field}: {error}") from None

    mm = decimal("maintenance_margin_rate")
    if not 0 <= mm < 1:
        raise RecordError(number, "maintenance_margin_rate: must be at least 0 and below 1")
    return Position(line=number, account=record["account"], market=record["market"],
                    long=record["side"] == "long", size=decimal("size"),
                    entry_price=decimal("entry_price"),
                    collateral=_collateral(number, record["collateral"]), mm_rate=mm,
                    group=record.get("affiliate_group", record["account"]),
                    mark_price=decimal("mark_price") if "mark_price" in record else None)


_QUOTE_DECIMALS_PLACEHOLDER = 18  # collateral is re-scaled when the fund's decimals are known


def _collateral(number: int, text: str) -> int:
    try:
        return parse_amount_lenient(text, _QUOTE_DECIMALS_PLACEHOLDER)
    except WireError as error:
        raise RecordError(number, f"collateral: {error}") from None


def _places(value: Fraction) -> int:
    """Decimals needed to write `value` exactly (it came from a decimal string, so its
    denominator is 2^a 5^b and the answer is max(a, b)): counted from the denominator, not by
    multiplying by 10 until it is whole (quadratic in the digits of a long fraction)."""
    denominator = value.denominator
    twos = (denominator & -denominator).bit_length() - 1
    fives, rest = 0, denominator >> twos
    while rest % 5 == 0:
        rest //= 5
        fives += 1
    return max(twos, fives)


def _price_fits(line: int, field: str, value: int, unit: str) -> int:
    """`value` when a path from it fits int64 price arithmetic (below PRICE_ROOM: a path may
    rise MAX_RISE times), else RecordError. Sizes, collateral and every product the engine
    forms have no such bound (they are Python integers where int64 would overflow)."""
    if not 0 < value < PRICE_ROOM:
        raise RecordError(line, f"{field}: too large for the engine's 64-bit integer "
                                f"price paths ({len(str(abs(value)))} digits in {unit}; the "
                                f"bound is 2^62 / {2 * MAX_RISE}, a path may rise "
                                f"{MAX_RISE}x)")
    return value


def build_book(positions: list[Position], markets: Mapping[str, str],
               decimals: Mapping[str, int], *, depth_share: Fraction = Fraction(5, 100)) -> Book:
    """Check the positions against the fund (`markets`: market -> quote asset, `decimals`:
    asset -> decimals) and turn them into integer arrays. RecordError names the line."""
    assets = set()
    for p in positions:
        if p.market not in markets:
            known = ", ".join(sorted(markets)) or "none"
            raise RecordError(p.line, f"market: {p.market!r} is not a market of the fund "
                                      f"(markets: {known})")
        assets.add(markets[p.market])
        if len(assets) > 1:
            raise RecordError(p.line, f"market: {p.market!r} is quoted in {markets[p.market]}, "
                                      f"an earlier one in {min(assets - {markets[p.market]})}"
                                      "; a snapshot is sized for one asset at a time")
    asset = assets.pop()
    qd = decimals[asset]
    scale_down = 10 ** (_QUOTE_DECIMALS_PLACEHOLDER - qd)
    for p in positions:
        if p.collateral % scale_down:
            raise RecordError(p.line, f"collateral: more than {qd} decimals (the decimals of "
                                      f"{asset})")
    names = sorted({p.market for p in positions})
    index = {m: i for i, m in enumerate(names)}
    marks: dict[str, Fraction] = {}
    for p in positions:
        if p.mark_price is not None and marks.setdefault(p.market, p.mark_price) != p.mark_price:
            raise RecordError(p.line, f"mark_price: {p.market} was given another mark price "
                                      "on an earlier line")
    pd = max(MIN_PRICE_DECIMALS, *(_places(p.entry_price) for p in positions),
             *(_places(m) for m in marks.values()))
    if pd > MAX_PRICE_DECIMALS:
        for p in positions:  # the first line with too many, entry or mark price
            for field, price in (("entry_price", p.entry_price), ("mark_price", p.mark_price)):
                if price is not None and _places(price) > MAX_PRICE_DECIMALS:
                    raise RecordError(p.line, f"{field}: more than {MAX_PRICE_DECIMALS} decimals")
    sd = max(_places(p.size) for p in positions)
    start = []
    for m in names:
        if m in marks:
            start.append(int(marks[m] * 10**pd))
        else:  # size-weighted mean entry, rounded to the price grid
            mine = [p for p in positions if p.market == m]
            mean = sum((p.entry_price * p.size for p in mine), Fraction(0)) / sum(
                (p.size for p in mine), Fraction(0))
            start.append(max(1, math.floor(mean * 10**pd + Fraction(1, 2))))
    # The units are the finest decimals of any line: name that line, which may be another.
    widest_price = max(positions, key=lambda p: max(
        _places(p.entry_price), _places(p.mark_price) if p.mark_price is not None else 0))
    price_unit = f"units of 10^-{pd}" + (f", the decimals of line {widest_price.line}"
                                         if pd > MIN_PRICE_DECIMALS else "")
    for m, value in zip(names, start, strict=True):  # the mark's line, or the top entry's
        mine = [p for p in positions if p.market == m]
        origin = next((p for p in mine if p.mark_price is not None), None) or max(
            mine, key=lambda p: p.entry_price)
        _price_fits(origin.line, "mark_price" if m in marks else "entry_price", value,
                    price_unit)
    size = [int(p.size * 10**sd) for p in positions]
    entry = [int(p.entry_price * 10**pd) for p in positions]
    collateral = [p.collateral // scale_down for p in positions]
    levels = [_level(p, z, e, c, pd, sd, qd) for p, z, e, c in
              zip(positions, size, entry, collateral, strict=True)]
    trigger = [min(TRIGGER_CAP, max(0, math.ceil(lv) - 1) if p.long else math.floor(lv) + 1)
               for p, lv in zip(positions, levels, strict=True)]
    distinct = {lv: r for r, lv in enumerate(sorted(set(levels)))}
    depth = []
    for i, m in enumerate(names):
        longs = sum(z for p, z in zip(positions, size, strict=True) if p.market == m and p.long)
        shorts = sum(z for p, z in zip(positions, size, strict=True)
                     if p.market == m and not p.long)
        notional = Fraction(start[i] * max(longs, shorts) * 10**qd, 10 ** (pd + sd))
        depth.append(max(1, math.floor(notional * depth_share)))
    groups = sorted({p.group for p in positions})
    group_index = {g: i for i, g in enumerate(groups)}
    book = Book(positions=positions, markets=names, asset=asset, quote_decimals=qd,
                price_decimals=pd, size_decimals=sd, start=np.array(start, dtype=np.int64),
                depth=int_array(depth),
                market=np.array([index[p.market] for p in positions], dtype=np.int64),
                long=np.array([p.long for p in positions], dtype=bool),
                size=int_array(size), entry=int_array(entry),
                collateral=int_array(collateral),
                trigger=np.array(trigger, dtype=np.int64),
                level_rank=np.array([distinct[lv] for lv in levels], dtype=np.int64),
                group=np.array([group_index[p.group] for p in positions], dtype=np.int64),
                groups=groups)
    return book


def _level(p: Position, z: int, e: int, c: int, pd: int, sd: int, qd: int) -> Fraction:
    """The exact maintenance level L in price units; the integer trigger follows from it.

    Long: C + (p - E) Z < mm p Z  <=>  p < (E Z - C') / ((1 - mm) Z) = L, trigger ceil(L) - 1
    (below maintenance at p <= trigger); short: C + (E - p) Z < mm p Z  <=>
    p > (E Z + C') / ((1 + mm) Z) = L, trigger floor(L) + 1 (at p >= trigger). C' is the
    collateral in price units x size units. Strict, as the simulator's margin engine.
    """
    c_units = Fraction(c * 10 ** (pd + sd), 10**qd)
    if p.long:
        return (e * z - c_units) / ((1 - p.mm_rate) * z)
    return (e * z + c_units) / ((1 + p.mm_rate) * z)
