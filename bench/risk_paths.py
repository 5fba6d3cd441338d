"""Risk engine benchmark: paths/s of the vectorized engine against the plain per-path Python
loop (ledger.risk.reference: a loop per position and step, the domain's `settle` per
liquidation) over the same positions and paths, and the time of the full sizing run.

Usage: python bench/risk_paths.py [--positions 10000] [--steps 1440] [--paths 10000]
                                  [--sample 200] [--reference-paths 2] [--wide-paths 20]
                                  [--skip-full]
Positions: the simulator's opening book (`ledger.sim.positions`, seed 7). Paths: the default
stochastic scenario (vol 0.05, 2 jumps of 8% per horizon, Student-t df 3), slippage 0.001,
the demo's policy (fixed share 1, reserve 0). The sample rounds alternate engine and baseline.
The wide line runs the first --wide-paths sample paths with the engine on int64 and forced
onto Python integers (the path books beyond int64 take), alternating path by path in CPU
time, checks every outcome is the same, and gives both rates.
The full run is `ledger.risk.sizing.simulate` over --paths paths (one policy), CPU and wall.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time

from ledger.domain.policy import Policy
from ledger.risk import engine, reference, scenarios, sizing
from ledger.risk.positions import build_book, read_positions
from ledger.sim.positions import opening_positions
from ledger.sim.simulate import SimulationConfig, fund_config

START = 10_000_000  # 100,000.00 USDT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=1440)
    parser.add_argument("--paths", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--reference-paths", type=int, default=2)
    parser.add_argument("--wide-paths", type=int, default=20)
    parser.add_argument("--skip-full", action="store_true")
    args = parser.parse_args()
    config = SimulationConfig(traders=args.positions)
    raw = "".join(json.dumps(r) + "\n" for r in opening_positions(config)).encode()
    book = build_book(read_positions(io.BytesIO(raw)), {"BTC-PERP": "USDT"}, {"USDT": 2})
    policy = Policy.from_document(fund_config(config)["policy"], {"USDT": 2})
    prep = engine.prepare(book)
    slip = engine.Slippage(1000)
    gen = scenarios.Stochastic()
    rel = next(gen.paths(3, min(args.sample, scenarios.CHUNK), args.steps))
    prices = scenarios.market_prices(rel, book.start)
    fast_rates, slow_rates = [], []
    for r in range(args.reference_paths):
        t0 = time.perf_counter()
        for j in range(prices.shape[0]):
            engine.run_path(prep, prices[j], slip, [(policy, START)])
        fast_rates.append(prices.shape[0] / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        slow = reference.run_path(book, prices[r].tolist(), slip, policy, START)
        slow_rates.append(1 / (time.perf_counter() - t0))
        _, (fast,) = engine.run_path(prep, prices[r], slip, [(policy, START)])
        assert (fast.final, fast.socialized) == (slow.final, slow.socialized), "engines differ"
    fast_rate, slow_rate = statistics.median(fast_rates), statistics.median(slow_rates)
    print(f"{args.positions} positions x {args.steps} steps, {prices.shape[0]}-path sample")
    print(f"  vectorized engine   {fast_rate:10.1f} paths/s")
    print(f"  per-path reference  {slow_rate:10.3f} paths/s (median of {args.reference_paths})")
    print(f"  ratio               {fast_rate / slow_rate:10.0f}x (target >= 50x)")
    wide_count = min(args.wide_paths, prices.shape[0])
    if wide_count:
        wide_prep = engine.prepare(book, wide=True)
        narrow, wide = [], []
        narrow_cpu = wide_cpu = 0.0
        for j in range(wide_count):  # alternating, in CPU time: fair on a shared machine
            t0 = time.process_time()
            narrow.append(engine.run_path(prep, prices[j], slip, [(policy, START)])[1])
            t1 = time.process_time()
            wide.append(engine.run_path(wide_prep, prices[j], slip, [(policy, START)])[1])
            narrow_cpu, wide_cpu = narrow_cpu + t1 - t0, wide_cpu + time.process_time() - t1
        narrow_rate, wide_rate = wide_count / narrow_cpu, wide_count / wide_cpu
        assert narrow == wide, "the wide path differs from int64"
        print(f"  wide (Python ints)  {wide_rate:10.1f} paths/s of CPU against int64 "
              f"{narrow_rate:.1f} on the same {wide_count} paths, alternating "
              f"({narrow_rate / wide_rate:.1f}x slower)")
    if args.skip_full:
        return
    run = sizing.RiskConfig(paths=args.paths, horizon=args.steps, seed=3)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    res = sizing.simulate(book, [sizing.NamedPolicy("demo", policy)], START, run)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    print(f"full run: {len(res.labels)} paths x {args.positions} positions x {args.steps} steps"
          f" in {wall:.1f} s wall, {cpu:.1f} s CPU (target < 60 s); "
          f"{sum(res.liquidations) / len(res.labels):.0f} liquidations per path on average")


if __name__ == "__main__":
    main()
