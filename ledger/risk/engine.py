"""The vectorized stress engine: liquidations on price paths, then the policy's waterfall.

Exact in integer minor units at any size. Per path, the largest mark the path reaches and the
book's largest size, entry and collateral (exact Python integers) bound every product formed
below; when the bounds fit int64 (below 2^62, and 2^61 for the two terms of a delta) the path
runs on int64 arrays, otherwise on object arrays of Python integers: the same numpy
expressions, exact, and slower (`bench/risk_paths.py` measures both). The crossing search
(prices and triggers) is always int64: prices are bounded by `positions.PRICE_ROOM` and
triggers clamped. The fees and the waterfall choose the same way from their own bounds.
Per path:

1. Crossing: a long is liquidated at the first step whose price is <= its trigger. Only the
   running minimum matters and it is monotone, so with the triggers sorted once, one
   `np.searchsorted` of the running extreme gives how many positions are down after each step,
   and the liquidation order (step, market, longs then shorts, deepest first: the simulator's
   margin engine order) falls out of the sort.
2. Fills: the simulator's slippage model in integer parts per million: base slippage plus the
   notional already liquidated on that side in that step over the book depth / 100, capped at
   15%; the reference price is the mark of the step that crossed (a gap fills beyond the level,
   which is the loss a fund exists for). Rounded to the price unit against the trader.
   Slippage 0: the fill is that mark.
3. Deficits and fees per event, vectorized; the waterfall (fee in, deficit out, minimum
   reserve, per-event cap) is sequential only where the fund runs short: it is first assumed
   to pay every deficit in full (a cumulative sum), and walked event by event in Python only
   from the first event where that assumption fails.

The fee of a volatility-curve share is computed in float64 and kept only when it is not
within 1e-5 of an integer (float error is below 1e-7 there); those rare events are recomputed
exactly with Fractions, the way `ledger.domain.waterfall.settle` does (on a wide path, every
such fee is: past 2^53 a float guess means nothing). Fixed (and clamped curve) shares are pure
integers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ledger.domain.policy import FixedShare, Policy, VolatilityCurve, interpolate, volatility
from ledger.risk.positions import Book, max_abs

PPM = 1_000_000
MAX_SLIPPAGE_PPM = 150_000  # the simulator's max_slippage
ROOM = 2**62  # int64 products stay below this; beyond, Python ints (object arrays)


@dataclass(frozen=True)
class Slippage:
    """The fill model: base slippage in ppm (0 disables the model: fills at the mark)."""

    base_ppm: int = 1000  # the simulator's base_slippage, 0.1%
    max_ppm: int = MAX_SLIPPAGE_PPM

    @classmethod
    def from_rate(cls, rate: Fraction) -> Slippage:
        """From a decimal rate (0.001 = 0.1%); it must be a whole number of ppm."""
        ppm = rate * PPM
        if ppm.denominator != 1 or not 0 <= ppm <= MAX_SLIPPAGE_PPM:
            raise ValueError("must be between 0 and 0.15 with at most 6 decimals")
        return cls(int(ppm))


@dataclass
class Events:
    """One path's liquidations in time order (policy independent)."""

    position: np.ndarray
    step: np.ndarray
    mark: np.ndarray
    fill: np.ndarray
    delta_x: np.ndarray  # exact delta in units of 1/DK minor units
    deficit: np.ndarray  # minor units (0 on a surplus)


@dataclass
class Outcome:
    """One path under one policy. Amounts in minor units."""

    fees: int
    deficits: int
    paid: int
    socialized: int
    final: int
    lowest: int
    required: int  # smallest starting balance with no socialization (ignoring `forced`)
    forced: bool  # a deficit above the per-event cap: socialized whatever the fund's size


@dataclass
class Prepared:
    """Per-book constants the per-path work reuses. `wide`: None chooses int64 or Python
    integers per path from the bounds; True forces Python integers (the tests and the
    benchmark compare the two)."""

    book: Book
    dk: int
    mz: int
    sides: list[tuple[int, bool, np.ndarray, np.ndarray]] = field(default_factory=list)
    wide: bool | None = None
    size_max: int = 0
    size_total: int = 0
    entry_max: int = 0
    collateral_max: int = 0
    depth_min: int = 1
    narrow_book: bool = True  # every per-position array is int64


def prepare(book: Book, wide: bool | None = None) -> Prepared:
    """Sort each (market, side)'s triggers once; the exact bounds the per-path choice uses."""
    k = book.price_decimals + book.size_decimals - book.quote_decimals
    arrays = (book.size, book.entry, book.collateral, book.depth)
    prep = Prepared(book=book, dk=10 ** max(k, 0), mz=10 ** max(-k, 0), wide=wide,
                    size_max=book.size_max, size_total=book.size_total,
                    entry_max=book.entry_max, collateral_max=book.collateral_max,
                    narrow_book=all(a.dtype != object for a in arrays))
    for m in range(len(book.markets)):
        for long in (True, False):
            idx = np.flatnonzero((book.market == m) & (book.long == long))
            if not len(idx):
                continue
            rank = book.level_rank[idx]
            # Longs go down deepest (highest exact level) first, shorts lowest level first,
            # as the simulator's heaps pop them; ties by file order (a stable sort). The
            # integer triggers follow the same order, so the searchsorted counts match it.
            order = idx[np.argsort(-rank if long else rank, kind="stable")]
            prep.sides.append((m, long, order, np.sort(book.trigger[idx])))
    return prep


def path_is_wide(prep: Prepared, mark_max: int, slip: Slippage) -> bool:
    """Whether a path whose marks are at most `mark_max` needs Python integers: some product
    below could reach 2^62 in int64 (exact bounds in Python integers; cheap)."""
    if prep.wide is not None:
        return prep.wide
    if not prep.narrow_book:
        return True
    half = ROOM // 2
    fill_max = 2 * mark_max + 1  # a fill is at most 15% above the mark, rounded up
    move_max = max(fill_max, prep.entry_max)
    return not (mark_max * (PPM + slip.max_ppm) < ROOM  # the slipped fill
                and mark_max * prep.size_max * prep.mz < ROOM  # one notional
                # the running sum of notionals, scaled by 10^4 for the slippage
                and mark_max * prep.size_total * prep.mz // prep.dk * 10_000 < ROOM
                and move_max * prep.size_max * prep.mz < half  # the two terms of the delta
                and prep.collateral_max * prep.dk < half)


def events(prep: Prepared, prices: np.ndarray, slip: Slippage) -> Events:
    """Liquidations of one path. `prices`: int64 (markets, steps + 1), price units."""
    book = prep.book
    n_steps = prices.shape[1]
    parts_pos, parts_step, parts_key = [], [], []
    n_markets = len(book.markets)
    for m, long, order, trig_sorted in prep.sides:
        if long:
            extreme = np.minimum.accumulate(prices[m])
            down = len(trig_sorted) - np.searchsorted(trig_sorted, extreme, side="left")
        else:
            extreme = np.maximum.accumulate(prices[m])
            down = np.searchsorted(trig_sorted, extreme, side="right")
        total = int(down[-1])
        if not total:
            continue
        steps = np.repeat(np.arange(n_steps, dtype=np.int64), np.diff(down, prepend=0))
        parts_pos.append(order[:total])
        parts_step.append(steps)
        parts_key.append(steps * (2 * n_markets) + (2 * m + (0 if long else 1)))
    if not parts_pos:
        empty = np.zeros(0, dtype=np.int64)
        return Events(empty, empty, empty, empty, empty, empty)
    pos = np.concatenate(parts_pos)
    step = np.concatenate(parts_step)
    if len(parts_pos) > 1:
        key = np.concatenate(parts_key)
        order = np.argsort(key, kind="stable")
        pos, step, key = pos[order], step[order], key[order]
    else:
        key = parts_key[0]
    market = book.market[pos]
    mark = prices[market, step]
    size, entry, collateral = book.size[pos], book.entry[pos], book.collateral[pos]
    long = book.long[pos]
    if path_is_wide(prep, int(mark.max()), slip):
        mark, size = mark.astype(object), size.astype(object)
        entry, collateral = entry.astype(object), collateral.astype(object)
    if slip.base_ppm == 0:
        fill = mark
    else:
        notional = mark * size * prep.mz // prep.dk
        cum = np.cumsum(notional)
        first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        starts = np.repeat(first, np.diff(np.r_[first, len(key)]))
        cum = cum - cum[starts] + notional[starts]
        ppm = np.minimum(slip.max_ppm, slip.base_ppm + cum * 10_000 // book.depth[market])
        sell = mark * (PPM - ppm) // PPM  # a long is closed by selling: rounded down
        buy = -((-mark * (PPM + ppm)) // PPM)  # a short by buying: rounded up
        fill = np.maximum(1, np.where(long, sell, buy))
    move = np.where(long, fill - entry, entry - fill)
    x = collateral * prep.dk + move * size * prep.mz
    deficit = np.where(x < 0, (-x + prep.dk - 1) // prep.dk, 0)
    return Events(pos, step, mark, fill, x, deficit)


def fees(prep: Prepared, ev: Events, policy: Policy, prices: np.ndarray) -> np.ndarray:
    """The fund's fee on each surplus event (0 on deficits), exactly as `settle` rounds it:
    int64, or an object array of Python integers when the path's amounts are wide."""
    wide = ev.delta_x.dtype == object
    out = np.zeros(len(ev.position), dtype=object if wide else np.int64)
    surplus = np.flatnonzero(ev.delta_x >= 0)
    if not len(surplus):
        return out
    book = prep.book
    rate = policy.fee_cap_rate
    c, d = rate.numerator, rate.denominator
    x = ev.delta_x[surplus]
    fill, size = ev.fill[surplus], book.size[ev.position[surplus]]
    if wide or int(x.max()) * d >= ROOM or \
            c * int(fill.max()) * int(size.max()) * prep.mz >= ROOM:
        # A rate with a long decimal expansion, or a wide path: Python integers (exact).
        x, fill, size = x.astype(object), fill.astype(object), size.astype(object)
    capped = c * fill * size * prep.mz
    base = np.minimum(x * d, capped)  # the fee base, in units of 1/(d * DK) minor units
    denom = d * prep.dk
    share = policy.fund_share
    if isinstance(share, FixedShare):
        out[surplus] = _times_share(base, share.value, denom, wide)
        return out
    vol = _volatility(prices, share.window)[book.market[ev.position[surplus]], ev.step[surplus]]
    first_vol, first_share = share.breakpoints[0]
    last_vol, last_share = share.breakpoints[-1]
    margin = 1e-9
    low = vol <= float(first_vol) - margin
    high = vol >= float(last_vol) + margin
    middle = ~(low | high)
    result = np.zeros(len(surplus), dtype=object if wide else np.int64)
    result[low] = _times_share(base[low], first_share, denom, wide)
    result[high] = _times_share(base[high], last_share, denom, wide)
    if middle.any():
        where = np.flatnonzero(middle)
        if wide:
            # Beyond float64's 53 bits the float guess cannot be trusted: every fee exactly.
            result[middle] = [_exact_fee(prep, ev, int(surplus[j]), share, prices,
                                         int(base[j]), denom) for j in where.tolist()]
        else:
            points = [(float(v), float(s)) for v, s in share.breakpoints]
            s_f = np.interp(vol[middle], [p[0] for p in points], [p[1] for p in points])
            fee_f = base[middle].astype(np.float64) / denom * s_f
            near = np.abs(fee_f - np.round(fee_f)) < 1e-5 + 1e-11 * np.abs(fee_f)
            guess = np.floor(fee_f).astype(np.int64)
            for j in np.flatnonzero(near):
                i = surplus[where[j]]
                guess[j] = _exact_fee(prep, ev, i, share, prices, int(base[where[j]]), denom)
            result[middle] = guess
    out[surplus] = result
    return out


def _exact_fee(prep: Prepared, ev: Events, i: int, share: VolatilityCurve, prices: np.ndarray,
               base: int, denom: int) -> int:
    """The fee of event `i` with the exact volatility (the fund's mark prices up to its step)."""
    book = prep.book
    m, k = int(book.market[ev.position[i]]), int(ev.step[i])
    scale = 10**book.price_decimals
    seen = [Fraction(int(p), scale) for p in prices[m, max(0, k - share.window):k + 1]]
    value = interpolate(share.breakpoints, volatility(seen, share.window))
    return math.floor(Fraction(base, denom) * value)


def _times_share(base: np.ndarray, value: Fraction, denom: int, wide: bool) -> np.ndarray:
    """floor(base * value / denom), exact: int64 when it fits, Python ints otherwise (an
    object array when `wide`)."""
    a, b = value.numerator, value.denominator
    if not len(base):
        return base
    if base.dtype != object and int(np.abs(base).max()) * a < ROOM and denom * b < ROOM:
        return base * a // (denom * b)
    return np.array([int(v) * a // (denom * b) for v in base.tolist()],
                    dtype=object if wide else np.int64)


def _volatility(prices: np.ndarray, window: int) -> np.ndarray:
    """float64 volatility at each step (the mean |return| over the last `window` returns)."""
    p = prices.astype(np.float64)
    ret = np.abs(p[:, 1:] / p[:, :-1] - 1.0)
    cum = np.concatenate([np.zeros((p.shape[0], 1)), np.cumsum(ret, axis=1)], axis=1)
    steps = np.arange(p.shape[1])
    lo = np.maximum(0, steps - window)
    count = steps - lo
    total = cum[:, steps] - cum[:, lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    return out


def waterfall(fee: np.ndarray, deficit: np.ndarray, start: int, reserve: int,
              cap: int | None) -> Outcome:
    """Run the events through the fund: fee in, then deficit paid up to the balance above the
    reserve and the per-event cap. Exact; sequential only from the first event the fund
    cannot pay in full. int64 when every running sum stays below 2^62, else Python ints."""
    n = len(fee)
    if not n:
        return Outcome(0, 0, 0, 0, start, start, 0, False)
    bound = abs(start) + abs(reserve) + (abs(cap) if cap is not None else 0)
    if fee.dtype == object or deficit.dtype == object or \
            bound + n * (int(fee.max()) + int(deficit.max())) >= ROOM:
        fee, deficit = fee.astype(object), deficit.astype(object)
    want = deficit if cap is None else np.minimum(deficit, cap)
    flow = fee - want
    after = start + np.cumsum(flow)
    before_pay = after + want  # balance when the deficit arrives (its fee, 0, is in)
    is_deficit = deficit > 0
    short = np.flatnonzero(is_deficit & (before_pay - reserve < want))
    cum_want_incl = np.cumsum(want)
    cum_fee_before = np.cumsum(fee) - fee
    need = cum_want_incl - cum_fee_before
    required = reserve + int(need[is_deficit].max()) if is_deficit.any() else 0
    forced = cap is not None and bool((deficit > cap).any())
    total_fee, total_deficit = int(fee.sum()), int(deficit.sum())
    if not len(short):
        paid = int(want.sum())
        lowest = min(start, int(after.min())) if len(after) else start
        return Outcome(total_fee, total_deficit, paid, total_deficit - paid, start + total_fee -
                       paid, lowest, required, forced)
    f = int(short[0])
    balance = int(before_pay[f]) - int(fee[f])  # before event f
    paid = int(cum_want_incl[f] - want[f])
    lowest = min(start, int(after[:f].min())) if f else start
    fee_list, def_list = fee[f:].tolist(), deficit[f:].tolist()
    for fe, de in zip(fee_list, def_list, strict=True):
        if de:
            pay = min(de, max(0, balance - reserve))
            if cap is not None:
                pay = min(pay, cap)
            balance -= pay
            paid += pay
        else:
            balance += fe
        lowest = min(lowest, balance)
    return Outcome(total_fee, total_deficit, paid, total_deficit - paid, balance, lowest,
                   required, forced)


def group_deficits(book: Book, ev: Events) -> np.ndarray:
    """Deficit per affiliate group (or account) on this path: int64, or Python ints (object)
    when the path's amounts are wide."""
    hit = ev.deficit > 0
    wide = ev.deficit.dtype == object
    out = np.zeros(len(book.groups), dtype=object if wide else np.int64)
    if not hit.any():
        return out
    groups, amounts = book.group[ev.position[hit]], ev.deficit[hit]
    if wide:
        for g, a in zip(groups.tolist(), amounts.tolist(), strict=True):
            out[g] += a
        return out
    bound = int(amounts.max()) * len(amounts)  # the int64 sums below stay exact under it
    if bound < 2**53:  # float64 sums of integers are exact below 2^53
        return np.rint(np.bincount(groups, weights=amounts.astype(np.float64),
                                   minlength=len(book.groups))).astype(np.int64)
    if bound >= ROOM:
        out = out.astype(object)
        for g, a in zip(groups.tolist(), amounts.tolist(), strict=True):
            out[g] += a
        return out
    np.add.at(out, groups, amounts)
    return out


def total(values: np.ndarray) -> int:
    """The exact sum of an integer array (int64 sums can wrap; then Python ints)."""
    if not len(values):
        return 0
    if values.dtype != object and max_abs(values) * len(values) < ROOM:
        return int(values.sum())
    return sum(values.tolist())


def run_path(prep: Prepared, prices: np.ndarray, slip: Slippage,
             policies: list[tuple[Policy, int]]) -> tuple[Events, list[Outcome]]:
    """One path under each (policy, starting balance)."""
    ev = events(prep, prices, slip)
    asset = prep.book.asset
    outs = [waterfall(fees(prep, ev, pol, prices), ev.deficit, start, pol.reserve(asset),
                      pol.cap(asset)) for pol, start in policies]
    return ev, outs


ProgressFn = Callable[[int], None]
