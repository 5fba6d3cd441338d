"""One path's liquidations as exchange facts: the records `backstop import` takes.

Importing them (after a capital injection of the starting balance, into a fund with the same
policy) must give the engine's balance and socialized total to the minor unit; the tests
reconcile sampled paths that way. An observation per market and step comes first, as the
simulator writes it, so a volatility-curve share sees the same prices.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from auditor.formats.wire import format_amount, format_time
from ledger.risk.engine import Events
from ledger.risk.positions import Book

STEP = timedelta(minutes=1)


def path_facts(book: Book, prices: np.ndarray, ev: Events, start: datetime,
               path: int = 0) -> list[dict[str, Any]]:
    """Observations and liquidations of one path, in time order."""
    pd, sd, qd = book.price_decimals, book.size_decimals, book.quote_decimals
    by_step: dict[int, list[int]] = {}
    for e, k in enumerate(ev.step.tolist()):
        by_step.setdefault(k, []).append(e)
    out: list[dict[str, Any]] = []
    for k in range(prices.shape[1]):
        time = format_time(start + k * STEP)
        for m, market in enumerate(book.markets):
            out.append({"type": "observation", "id": f"obs-{path}-{k}-{m}", "time": time,
                        "market": market, "mark_price": format_amount(int(prices[m, k]), pd),
                        "open_interest": "0"})
        for e in by_step.get(k, []):
            i = int(ev.position[e])
            pos = book.positions[i]
            out.append({"type": "liquidation", "id": f"liq-{path}-{e}", "time": time,
                        "account": pos.account, "market": pos.market,
                        "side": "long" if pos.long else "short",
                        "size": format_amount(int(book.size[i]), sd),
                        "entry_price": format_amount(int(book.entry[i]), pd),
                        "collateral": format_amount(int(book.collateral[i]), qd),
                        "fill_price": format_amount(int(ev.fill[e]), pd),
                        "mark_price": format_amount(int(ev.mark[e]), pd)})
    return out


def epoch() -> datetime:
    """A fixed start time for replayed paths."""
    return datetime(2026, 1, 1, tzinfo=UTC)
