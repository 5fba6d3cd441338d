"""The plain per-path reference: a Python loop per position and step, and the domain's own
`settle` for every liquidation. Slow on purpose; the tests hold the vectorized engine to it
and the benchmark measures against it."""

from __future__ import annotations

from fractions import Fraction

from ledger.domain.policy import MAX_WINDOW, Policy
from ledger.domain.waterfall import LiquidationFact, settle
from ledger.risk.engine import PPM, Outcome, Slippage
from ledger.risk.positions import Book


def liquidations(book: Book, prices: list[list[int]],
                 slip: Slippage) -> list[tuple[int, int, int, int]]:
    """(position, step, mark, fill) in time order: per step, per market, longs then shorts,
    deepest first (the simulator's margin engine), by walking every position's path."""
    crossing: dict[int, int] = {}
    for i in range(book.count):
        m, trig, long = int(book.market[i]), int(book.trigger[i]), bool(book.long[i])
        for k, price in enumerate(prices[m]):
            if (price <= trig) if long else (price >= trig):
                crossing[i] = k
                break
    def order(i: int) -> tuple[int, int, int, int, int]:
        long = bool(book.long[i])
        rank = int(book.level_rank[i])
        return (crossing[i], int(book.market[i]), 0 if long else 1, -rank if long else rank, i)
    out = []
    liquidated: dict[tuple[int, int, bool], int] = {}
    scale = 10 ** (book.price_decimals + book.size_decimals)
    for i in sorted(crossing, key=order):
        m, k, long = int(book.market[i]), crossing[i], bool(book.long[i])
        mark = prices[m][k]
        fill = mark
        if slip.base_ppm:
            notional = mark * int(book.size[i]) * 10**book.quote_decimals // scale
            liquidated[(k, m, long)] = liquidated.get((k, m, long), 0) + notional
            ppm = min(slip.max_ppm, slip.base_ppm + liquidated[(k, m, long)] * 10_000
                      // int(book.depth[m]))
            fill = mark * (PPM - ppm) // PPM if long else -((-mark * (PPM + ppm)) // PPM)
            fill = max(1, fill)
        out.append((i, k, mark, fill))
    return out


def run_path(book: Book, prices: list[list[int]], slip: Slippage, policy: Policy,
             start: int) -> Outcome:
    """One path through the domain waterfall, one `settle` per liquidation."""
    pd, sd = book.price_decimals, book.size_decimals
    qd, asset = book.quote_decimals, book.asset
    balance, lowest = start, start
    fees = deficits = paid = 0
    for i, k, mark, fill in liquidations(book, prices, slip):
        pos = book.positions[i]
        m = int(book.market[i])
        fact = LiquidationFact(id="x", account=pos.account, market=pos.market,
                               side="long" if pos.long else "short",
                               size=Fraction(int(book.size[i]), 10**sd),
                               entry_price=Fraction(int(book.entry[i]), 10**pd),
                               collateral=Fraction(int(book.collateral[i]), 10**qd),
                               fill_price=Fraction(fill, 10**pd),
                               mark_price=Fraction(mark, 10**pd))
        seen = [Fraction(p, 10**pd) for p in prices[m][max(0, k - MAX_WINDOW):k + 1]]
        result = settle(fact, policy, balance, qd, seen, asset=asset)
        balance += result.fee - result.fund_payment
        fees += result.fee
        deficits += result.deficit
        paid += result.fund_payment
        lowest = min(lowest, balance)
    return Outcome(fees, deficits, paid, deficits - paid, balance, lowest, 0, False)
