"""How sure the tail figures are: bootstrap intervals over the paths, and the path counts a
tail figure needs.

Bootstrap (seeded, so a report is reproducible): `resamples` times, draw n of the run's n
paths with replacement (numpy's default_rng([seed, BOOTSTRAP_STREAM]), a stream no scenario
uses) and recompute, exactly as the report does, VaR and ES of total deficits at 99% and
99.9%, cover-2, the recommended size and each policy's probability of socialization. An
interval's ends are the ceil(0.025 B)-th and ceil(0.975 B)-th smallest of the B resampled
figures (the report's VaR rule at 2.5% and 97.5%): a 95% percentile interval. It measures the
sampling error of the paths (how much the figure would move with other paths of the same
model), not the model's error: the sensitivity table is for that.
A figure at level q rests on the ceil((1 - q) n) worst paths; below MIN_TAIL_PATHS of them it
is flagged (10 tail paths: 1,000 paths for 99%, 10,000 for 99.9%).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

BOOTSTRAP_STREAM = 3_000_000  # the random stream of the resampling (scenario blocks use others)
MIN_TAIL_PATHS = 10
CONFIDENCE = Fraction(95, 100)
INT64_SAFE = 2**62


def min_paths(level: Fraction) -> int:
    """The fewest paths whose tail at `level` holds MIN_TAIL_PATHS paths."""
    return math.ceil(MIN_TAIL_PATHS / (1 - level))


def warnings(paths: int, levels: tuple[Fraction, ...]) -> list[str]:
    """One sentence per level whose tail rests on fewer than MIN_TAIL_PATHS paths."""
    out = []
    for level in levels:
        tail = max(1, math.ceil((1 - level) * paths))
        if tail < MIN_TAIL_PATHS:
            pct = f"{float(level * 100):g}%"
            out.append(f"{pct} figures rest on {tail} path{'s' if tail > 1 else ''} of {paths}: "
                       f"at least {min_paths(level):,} paths ({MIN_TAIL_PATHS} in the tail) "
                       f"for a {pct} figure to mean much")
    return out


def _array(values: list[int]) -> np.ndarray:
    """int64 when every sum the statistics take fits, else Python integers (exact either way)."""
    top = max((abs(v) for v in values), default=0)
    if top * max(1, len(values)) < INT64_SAFE:
        return np.array(values, dtype=np.int64)
    return np.array(values, dtype=object)


def _var_es(sample: np.ndarray, level: Fraction) -> tuple[int, int]:
    """The report's VaR and ES (sizing.var_es) of a resample."""
    n = len(sample)
    k = math.ceil(level * n) - 1
    tail = max(1, math.ceil((1 - level) * n))
    if sample.dtype == object:
        ordered = sorted(sample.tolist())
        return ordered[k], -(-sum(ordered[n - tail:]) // tail)
    var = int(np.partition(sample, k)[k])
    worst = np.partition(sample, n - tail)[n - tail:]
    return var, -(-sum(worst.tolist()) // tail)


def _ends(values: list[int] | list[Fraction], resamples: int) -> tuple[Any, Any]:
    ordered = sorted(values)
    low = math.ceil((1 - CONFIDENCE) / 2 * resamples) - 1
    high = math.ceil((1 + CONFIDENCE) / 2 * resamples) - 1
    return ordered[max(0, low)], ordered[high]


def bootstrap(deficits: list[int], cover2: list[int], socialized: list[list[int]],
              levels: tuple[Fraction, ...], buffer: Fraction, seed: int,
              resamples: int) -> dict[str, Any]:
    """Raw intervals (integers and exact fractions; the report formats them):
    {"deficits": {level: {"var": (lo, hi), "es": (lo, hi)}}, "cover_2", "recommended_size",
    "probability_of_socialization": [(lo, hi) per policy]}."""
    n = len(deficits)
    rng = np.random.default_rng([seed, BOOTSTRAP_STREAM])
    d, c2 = _array(deficits), _array(cover2)
    hits = [np.array([s > 0 for s in policy], dtype=bool) for policy in socialized]
    stats: dict[str, list[Any]] = {"cover_2": [], "recommended_size": []}
    for level in levels:
        stats[f"var {level}"], stats[f"es {level}"] = [], []
    probs: list[list[Fraction]] = [[] for _ in socialized]
    for _ in range(resamples):
        pick = rng.integers(0, n, size=n)
        sample = d[pick]
        es_top = 0
        for level in levels:
            var, es = _var_es(sample, level)
            stats[f"var {level}"].append(var)
            stats[f"es {level}"].append(es)
            es_top = es
        cover = int(c2[pick].max())
        stats["cover_2"].append(cover)
        stats["recommended_size"].append(math.ceil(max(es_top, cover) * (1 + buffer)))
        for store, hit in zip(probs, hits, strict=True):
            store.append(Fraction(int(hit[pick].sum()), n))
    return {
        "deficits": {level: {"var": _ends(stats[f"var {level}"], resamples),
                             "es": _ends(stats[f"es {level}"], resamples)} for level in levels},
        "cover_2": _ends(stats["cover_2"], resamples),
        "recommended_size": _ends(stats["recommended_size"], resamples),
        "probability_of_socialization": [_ends(p, resamples) for p in probs],
    }
