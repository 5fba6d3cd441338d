"""Auditor replay benchmark: `auditor.replay.replay` over an exported stream of N events
against a baseline measured in the same run (read + json.loads + sha256 per line, nothing
else), and against the floor (the same with orjson), with the peak RSS of each measured in a child process, at N and at N/4 events.

Usage: python bench/audit_replay.py [--events 1000000] [--accounts 5000] [--regen] [--rounds 3]
The streams are generated once under bench/out/ (git-ignored) as canonical JSONL lines:
fund_opened, policy_set (ref "init"), capital_injected, then mostly market_observed and
trading-fee fee_inflow, ~5% surplus liquidations with their liquidation fee, and a few
deficits with pro-rata clawbacks (outcomes computed with auditor.rules.settle).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from auditor import rules
from auditor.formats.wire import canonical_bytes, format_amount, sha256_hex

OUT = Path(__file__).resolve().parent / "out"
POLICY = {"version": 1, "minimum_reserve": {"USDT": "0.00"}, "fee_cap_rate": "0.005",
          "fund_share": {"fixed": "1"}, "socialization": "pro_rata_profit"}


def generate(path: Path, n: int, accounts: int, seed: int = 7) -> None:
    """Write an N-event export that replays cleanly."""
    rng = random.Random(seed)
    policy = rules.parse_policy(POLICY)
    balance = 0
    index = 0
    t0 = 1584000000
    price = 8000.0

    with path.open("wb") as out:
        def emit(typ: str, ref: str | None, data: dict, secs: int | None = None) -> None:
            nonlocal index
            secs = t0 + index if secs is None else secs  # derived events: their liquidation's
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(secs))
            out.write(canonical_bytes({"index": index, "type": typ, "version": 1, "fund": "bench",
                                       "time": stamp, "ref": ref, "data": data}) + b"\n")
            index += 1

        emit("fund_opened", None, {"fund": "bench", "assets": {"USDT": {"decimals": 2}},
                                   "markets": {"BTC-PERP": {"quote": "USDT"}}})
        emit("policy_set", "init", {"policy_version": 1, "policy": POLICY,
                                    "policy_hash": sha256_hex(canonical_bytes(POLICY))})
        emit("capital_injected", "cap-1", {"asset": "USDT", "amount": "1000000.00", "source": "operator"})
        balance += 100000000
        k = 0
        while index < n:
            k += 1
            r = rng.random()
            mark = f"{price:.1f}"
            if r < 0.45:
                price = max(1000.0, price * (1 + rng.uniform(-0.002, 0.002)))
                emit("market_observed", f"obs-{k}", {"market": "BTC-PERP", "mark_price": f"{price:.1f}",
                                                     "open_interest": f"{rng.uniform(100, 900):.3f}"})
            elif r < 0.95 or n - index < 12 or 0 <= n // 4 - index < 12:  # N/4: a whole log too
                units = rng.randrange(1, 100000)
                balance += units
                emit("fee_inflow", f"fee-{k}", {"kind": "trading_fee_share", "asset": "USDT",
                                                "amount": format_amount(units, 2),
                                                "account": f"acct-{rng.randrange(accounts):06d}"})
            else:
                who = rng.sample(range(accounts), 4)  # the liquidated one, then counterparties
                account = f"acct-{who[0]:06d}"
                entry = rng.randrange(7000, 9000)
                size = f"{rng.randrange(1, 500) / 100:.2f}"
                collateral = f"{rng.randrange(100, 5000)}.{rng.randrange(100):02d}"
                deficit = rng.random() < 0.02
                # long: delta = collateral + (fill - entry) * size
                b = entry - float(collateral) / float(size)
                fill = b - rng.uniform(1, 20) if deficit else b + rng.uniform(1, 200)
                fill = max(fill, 1.0)  # prices are positive (a bankruptcy price may not be)
                data = {"account": account, "market": "BTC-PERP", "side": "long", "size": size,
                        "entry_price": str(entry), "collateral": collateral,
                        "fill_price": f"{fill:.1f}", "mark_price": mark,
                        "counterparties": [
                            {"account": f"acct-{other:06d}", "size": "1",
                             "entry_price": "7000", "unrealized_pnl": f"{rng.randrange(1, 900)}.00",
                             "collateral": "1000"} for other in who[1:]] if deficit else [],
                        "asset": "USDT", "policy_version": 1}
                s = rules.settle(data, policy, balance, 2)
                data["outcome"] = s.outcome
                ref, secs = f"liq-{k}", t0 + index
                emit("liquidation_settled", ref, data)
                for typ, payload in s.events:
                    emit(typ, ref, payload, secs)
                balance += s.fee - s.fund_payment
    assert index >= n


def baseline(path: str, limit: int, loads: Callable[[bytes], object] = json.loads) -> int:
    """Read, parse and hash every line; nothing else."""
    sha = hashlib.sha256
    count = 0
    with open(path, "rb") as handle:
        for line in handle:
            loads(line)
            sha(b"\x00" + line[:-1]).digest()
            count += 1
            if count == limit:
                break
    return count


def floor(path: str, limit: int) -> int:
    """The floor (issue 28): the baseline with orjson, the fastest parser on PyPI."""
    import orjson

    return baseline(path, limit, orjson.loads)


def do_replay(path: str, limit: int) -> int:
    from auditor.replay import replay

    with open(path, "rb") as handle:
        return replay(handle, at_size=limit, allow_longer=True).count


def child(mode: str, path: Path, limit: int) -> tuple[float, int]:
    """Run one measurement in a fresh process: (seconds, its peak RSS in KiB via getrusage)."""
    code = (f"import sys, time, resource; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import audit_replay as b; t = time.perf_counter(); "
            f"b.{mode}({str(path)!r}, {limit}); "
            f"print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    secs, rss = out.stdout.split()
    return float(secs), int(rss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--accounts", type=int, default=5000)
    ap.add_argument("--regen", action="store_true")
    ap.add_argument("--rounds", type=int, default=3, help="baseline/replay pairs (median ratio)")
    args = ap.parse_args()
    n = args.events
    OUT.mkdir(exist_ok=True)
    path = OUT / f"export-{n}-{args.accounts}.jsonl"
    if args.regen or not path.exists():
        t = time.perf_counter()
        generate(path, n, args.accounts)
        print(f"generated {path} in {time.perf_counter() - t:.1f} s")
    total = sum(1 for _ in path.open("rb"))
    print(f"stream: {total:,} events, {path.stat().st_size / 1e6:.0f} MB")
    ratios, floors, times = [], [], []
    for _ in range(args.rounds):  # alternated: this machine's speed drifts within a minute
        b_s, b_rss = child("baseline", path, total)
        r_s, r_rss = child("do_replay", path, total)
        f_s, _ = child("floor", path, total)
        ratios.append(r_s / b_s)
        floors.append(r_s / f_s)
        times.append((b_s, r_s))
        print(f"round: baseline {b_s:.2f} s, replay {r_s:.2f} s, ratio {r_s / b_s:.2f}x; "
              f"floor (orjson) {f_s:.2f} s, replay {r_s / f_s:.2f}x the floor", flush=True)
    b_s, r_s = times[ratios.index(statistics.median_low(ratios))]
    q = total // 4
    _, r_rss_q = child("do_replay", path, q)
    _, b_rss_q = child("baseline", path, q)
    print(f"baseline (read+json+sha256): {b_s:7.2f} s  {total / b_s:12,.0f} events/s  peak RSS {b_rss / 1024:.0f} MiB")
    print(f"auditor replay:              {r_s:7.2f} s  {total / r_s:12,.0f} events/s  peak RSS {r_rss / 1024:.0f} MiB")
    print(f"ratio replay/baseline, median of {len(ratios)} alternated rounds: "
          f"{statistics.median(ratios):.2f}x (target <= 3x); replay/floor (orjson) "
          f"{statistics.median(floors):.2f}x (issue 28's goal <= 3x)")
    print(f"peak RSS at N/4 = {q:,}: replay {r_rss_q / 1024:.0f} MiB, baseline {b_rss_q / 1024:.0f} MiB; "
          f"at N = {total:,}: replay {r_rss / 1024:.0f} MiB, baseline {b_rss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
