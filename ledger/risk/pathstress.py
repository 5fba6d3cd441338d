"""Path-dependent reverse stress: how much larger a stress path's move must be to exhaust the
fund (each relative price r_t becomes r_t^k; the smallest such k, to the ppm)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ledger.domain.policy import Policy
from ledger.risk import engine, scenarios
from ledger.risk.positions import MAX_RISE

MAX_PATH_SCALE_PPM = 10_000_000  # path reverse stress looks for a scaling of at most 10x


def reverse(prep: engine.Prepared, policy: Policy, balance: int,
                        slip: engine.Slippage, relative: np.ndarray) -> int | None:
    """Smallest scaling k (ppm) of a stress path's log move, every step's relative price
    r_t becoming r_t^k, that leaves a socialized loss; None when none up to 10x does (or up to
    the scaling whose highest price reaches MAX_RISE). Bisection as `reverse_stress`: the loss
    generally grows with k (every move is larger, gaps are deeper), so the answer is a k that
    exhausts the fund while 1 ppm less does not."""
    logs = np.log(relative)
    top = float(logs.max())
    hi = MAX_PATH_SCALE_PPM
    if top > 0:
        hi = min(hi, math.floor(math.log(MAX_RISE) / top * 10**6))

    def exhausted(ppm: int) -> bool:
        path = np.exp(logs * (ppm / 10**6))[None, :]
        prices = scenarios.market_prices(path, prep.book.start)[0]
        return engine.run_path(prep, prices, slip, [(policy, balance)])[1][0].socialized > 0

    return smallest_exhausting(exhausted, 0, hi)


def smallest_exhausting(exhausted: Callable[[int], bool], lo: int, hi: int) -> int | None:
    """The smallest step in [lo, hi] at which `exhausted` (monotone: false, then true) holds,
    by bisection: `lo` itself when it holds there, None when it does not hold even at `hi`."""
    if exhausted(lo):
        return lo
    if not exhausted(hi):
        return None
    while hi - lo > 1:  # invariant: not exhausted at lo, exhausted at hi
        mid = (lo + hi) // 2
        if exhausted(mid):
            hi = mid
        else:
            lo = mid
    return hi


def stress_paths(names: tuple[str, ...], horizon: int) -> Iterator[tuple[str, np.ndarray]]:
    """The deterministic stress paths of a run of scenarios `names`, for path reverse
    stress: each selected historical shape (smooth) and each path of a CSV file."""
    for name in names:
        if name in scenarios.shapes():
            yield name, scenarios.shape_path(name, horizon)[0]
        elif name.endswith(".csv"):
            labels, values = scenarios.read_csv(Path(name), horizon)
            for label, row in zip(labels, values, strict=True):
                yield f"{Path(name).name}:{label}", row
