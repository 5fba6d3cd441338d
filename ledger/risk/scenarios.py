"""Scenarios: relative price paths (1.0 = today's price) for the stress engine.

- Historical shapes shipped in `shapes.json` (sources written down there): one path each.
- A seeded stochastic generator: Student-t diffusion (fat tails) plus Poisson jumps.
- A user's CSV file of price paths.

Paths are float64 relative moves; `market_prices` turns them into integer prices (half-up to
the price unit), the only rounding, before anything touches money. Every market follows the
same relative path (full correlation: the stress case).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

CHUNK = 256  # paths per random block: the seed of block b is (seed, b), whatever the caller's batch
# A block of CHUNK paths is computed whole in float64, several arrays of CHUNK x horizon at once
# (measured peak: about 180 MB above the interpreter's at the bound, 26 MB at 1,440 steps): the
# longest horizon is a week of minutes, so a block's memory stays bounded whatever --paths is.
MAX_HORIZON = 10_080


class ScenarioError(ValueError):
    """A bad scenario name, parameter or CSV file (one line, for exit code 2)."""


@cache
def shapes() -> dict[str, Any]:
    """The shipped historical shapes (name -> anchors, summary, sources)."""
    text = resources.files("ledger.risk").joinpath("shapes.json").read_text("utf-8")
    doc: dict[str, Any] = json.loads(text)["shapes"]
    return doc


def shape_path(name: str, steps: int) -> np.ndarray:
    """The shape's anchors placed at fractions of `steps`, joined log-linearly: (1, steps+1)."""
    anchors = shapes()[name]["anchors"]
    span, first = anchors[-1][0], anchors[0][1]
    xs = np.array([hour / span * steps for hour, _ in anchors])
    ys = np.log(np.array([price / first for _, price in anchors]))
    path: np.ndarray = np.exp(np.interp(np.arange(steps + 1), xs, ys))[None, :]
    return path


def shape_variants(name: str, steps: int, count: int, noise: float, tail_df: float,
                   seed: int) -> np.ndarray:
    """The smooth shape, then `count - 1` seeded variants with gaps: Student-t log noise of
    per-step scale `noise`, bridged so every variant still passes through every anchor (the
    documented magnitudes hold; the path between them is rough, as real crashes are).
    All in one array: for a few paths (shape_blocks is what a run uses)."""
    return np.vstack(list(shape_blocks(name, steps, count, noise, tail_df, seed)))


def shape_blocks(name: str, steps: int, count: int, noise: float, tail_df: float,
                 seed: int) -> Iterator[np.ndarray]:
    """shape_variants' paths, at most CHUNK at a time (bounded memory whatever `count`): the
    generator draws its numbers in the same order, so the paths do not depend on the blocks."""
    smooth = shape_path(name, steps)
    if count <= 1:
        yield smooth
        return
    anchors = shapes()[name]["anchors"]
    span = anchors[-1][0]
    at = sorted({min(steps, round(hour / span * steps)) for hour, _ in anchors} | {0, steps})
    index = sorted(shapes()).index(name)
    rng = np.random.default_rng([seed, 1_000_000 + index])
    grid = np.arange(steps + 1)
    begin = 0
    while begin < count - 1:
        rows = min(CHUNK - (1 if begin == 0 else 0), count - 1 - begin)
        shocks = rng.standard_t(tail_df, size=(rows, steps)) * noise \
            * math.sqrt((tail_df - 2) / tail_df)
        walk = np.zeros((rows, steps + 1))
        walk[:, 1:] = np.cumsum(shocks, axis=1)
        pinned = np.array([np.interp(grid, at, row[at]) for row in walk])
        variants = smooth * np.exp(walk - pinned)
        yield np.vstack([smooth, variants]) if begin == 0 else variants
        begin += rows


@dataclass(frozen=True)
class Stochastic:
    """Student-t diffusion with Poisson jumps over the horizon.

    `vol`: standard deviation of the diffusion's log move over the whole horizon;
    `jump_intensity`: expected number of jumps per horizon; `jump_size`: standard deviation of
    one jump's log move (mean 0: crashes and squeezes); `tail_df`: Student-t degrees of freedom.
    """

    vol: float = 0.04
    jump_intensity: float = 0.5
    jump_size: float = 0.05
    tail_df: float = 3.0

    def __post_init__(self) -> None:
        if not 0 <= self.vol <= 5:
            raise ScenarioError("--vol: must be between 0 and 5")
        if not 0 <= self.jump_intensity <= 1000:
            raise ScenarioError("--jump-intensity: must be between 0 and 1000")
        if not 0 <= self.jump_size <= 5:
            raise ScenarioError("--jump-size: must be between 0 and 5")
        if not 2 < self.tail_df <= 1000:
            raise ScenarioError("--tail-df: must be above 2 (finite variance) and at most 1000")

    def params(self) -> dict[str, float]:
        """The parameters, for the report."""
        return asdict(self)

    def block(self, seed: int, index: int, count: int, steps: int) -> np.ndarray:
        """`count` paths (count <= CHUNK) of block `index`: (count, steps + 1)."""
        rng = np.random.default_rng([seed, index])
        sigma = self.vol / math.sqrt(steps)
        t = rng.standard_t(self.tail_df, size=(CHUNK, steps))[:count]
        diffusion = sigma * t * math.sqrt((self.tail_df - 2) / self.tail_df)
        jumps_n = rng.poisson(self.jump_intensity / steps, size=(CHUNK, steps))[:count]
        jump = rng.normal(0.0, 1.0, size=(CHUNK, steps))[:count] * self.jump_size \
            * np.sqrt(jumps_n)  # the sum of n normal jumps
        log_moves = diffusion + jump - 0.5 * sigma**2
        out = np.ones((count, steps + 1))
        out[:, 1:] = np.exp(np.cumsum(log_moves, axis=1))
        return out

    def paths(self, seed: int, count: int, steps: int, batch: int = CHUNK) -> Iterator[np.ndarray]:
        """All `count` paths, CHUNK at a time (the same paths whatever the caller does)."""
        for index, begin in enumerate(range(0, count, CHUNK)):
            yield self.block(seed, index, min(CHUNK, count - begin), steps)


def read_csv(path: Path, steps: int) -> tuple[list[str], np.ndarray]:
    """User paths: a header of path names, then one row per step of positive prices; each
    column is scaled by its first value. Rows beyond the horizon are ignored, and a file with
    fewer rows than `steps + 1` is refused. ScenarioError: `FILE: line N: column: reason`."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioError(f"{path}: cannot read ({getattr(error, 'strerror', None) or error})"
                            ) from None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ScenarioError(f"{path}: line 1: header: empty (expected path names)")
    names = [cell.strip() for cell in rows[0]]
    for i, name in enumerate(names):
        if not name:
            raise ScenarioError(f"{path}: line 1: column {i + 1}: empty path name")
    if len(rows) < steps + 2:
        raise ScenarioError(f"{path}: line {len(rows)}: has {len(rows) - 1} price rows, the "
                            f"horizon needs {steps + 1} (--horizon {steps})")
    values = np.empty((len(names), steps + 1))
    for r, row in enumerate(rows[1:steps + 2], start=2):
        if len(row) != len(names):
            raise ScenarioError(f"{path}: line {r}: has {len(row)} values, the header names "
                                f"{len(names)} paths")
        for c, cell in enumerate(row):
            try:
                value = float(cell)
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or value <= 0:
                raise ScenarioError(f"{path}: line {r}: {names[c]}: {cell.strip()[:40]!r} is not "
                                    "a positive price")
            values[c, r - 2] = value
    return names, values / values[:, :1]


def market_prices(relative: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Integer prices (paths, markets, steps + 1): each market's start times the path,
    rounded half-up to the price unit, at least 1."""
    raw = relative[:, None, :] * start[None, :, None].astype(np.float64)
    prices: np.ndarray = np.maximum(1, np.floor(raw + 0.5)).astype(np.int64)
    return prices


def instant_move(start: np.ndarray, ppm: int, down: bool) -> np.ndarray:
    """One path that jumps at step 1 by `ppm` parts per million (down or up), every market:
    (markets, 2) integer prices (the new price rounded half-up, at least 1)."""
    factor = (10**6 - ppm) if down else (10**6 + ppm)
    moved = [max(1, (int(s) * factor + 500_000) // 10**6) for s in start]
    return np.array([[int(s), m] for s, m in zip(start, moved, strict=True)], dtype=np.int64)
