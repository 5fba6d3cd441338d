"""Calibration and uncertainty benchmark: `ledger.risk.calibrate` on synthetic one-minute
history (seeded GBM with planted jumps, so the estimates can be checked against the truth),
and the bootstrap intervals of `ledger.risk.uncertainty` over many paths.

Usage: python bench/risk_calibrate.py [--markets 10] [--days 30] [--paths 100000]
                                      [--resamples 200]
Prints, per run, the seconds and the estimates next to the true parameters. Under a minute
on a shared 2-core machine at the defaults.
"""

from __future__ import annotations

import argparse
import math
import time
from fractions import Fraction

import numpy as np

from ledger.risk import calibrate, uncertainty


def main() -> None:
    """Run both benchmarks and print their lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=10)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--paths", type=int, default=100_000)
    parser.add_argument("--resamples", type=int, default=200)
    args = parser.parse_args()
    n = args.days * 1440
    rng = np.random.default_rng(26)
    times = np.arange(n + 1, dtype=np.float64) * 60
    series = {}
    truth = {}
    for m in range(args.markets):
        sigma = 0.0005 * (1 + m / 4)
        jumps = 2 * args.days  # two a day of 3%
        r = rng.normal(-0.5 * sigma**2, sigma, n)
        at = rng.choice(n, jumps, replace=False)
        r[at] += 0.03 * np.where(np.arange(jumps) % 2 == 0, 1.0, -1.0)
        series[f"M{m}"] = (times, 100 * np.exp(np.concatenate([[0.0], np.cumsum(r)])))
        truth[f"M{m}"] = (sigma, jumps / n)
    start = time.perf_counter()
    fits = {k: calibrate.fit(t, p, 1440.0, calibrate.Floor(0, 0, 0)) for k, (t, p) in
            series.items()}
    co = calibrate.co_movement(series)
    took = time.perf_counter() - start
    print(f"calibrate: {args.markets} markets x {n:,} one-minute returns in {took:.2f} s "
          f"(co-movement over {co['returns'] if co else 0:,} common returns)")
    tol = 4 / math.sqrt(2 * n)
    for k, fit in fits.items():
        sigma, rate = truth[k]
        print(f"  {k}: sigma {fit.full.sigma_per_minute:.6f} (true {sigma:.6f}, "
              f"tolerance {tol:.2%}), jumps {fit.full.jumps} (planted {round(rate * n)}), "
              f"RMS jump {fit.full.jump_size:.4f} (planted 0.03)")
    deficits = [int(x) for x in rng.pareto(1.5, args.paths) * 1_000_000]
    social = [[max(0, d - 5_000_000) for d in deficits]]
    start = time.perf_counter()
    out = uncertainty.bootstrap(deficits, deficits, social,
                                (Fraction(99, 100), Fraction(999, 1000)), Fraction(1, 5), 1,
                                args.resamples)
    took = time.perf_counter() - start
    print(f"bootstrap: {args.resamples} resamples of {args.paths:,} paths in {took:.2f} s; "
          f"ES 99.9% 95% interval {out['deficits'][Fraction(999, 1000)]['es']}")


if __name__ == "__main__":
    main()
