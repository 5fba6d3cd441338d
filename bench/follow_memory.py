"""Backpressure: the follower's peak memory with a million messages pending on the stream,
beside the same follower with only the messages it commits pending.

Each run publishes PENDING fee facts to a fresh stream, starts `backstop follow` as a
process on a fresh SQLite database, lets it commit the first --commit facts, stops it with
SIGTERM and reads its peak RSS (getrusage of the child). Bounded fetches (--batch-size) and
the consumer's max_ack_pending keep that peak flat: target <= 1.2x the baseline's.

    python bench/follow_memory.py [--pending 1000000] [--commit 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats
from sqlalchemy import create_engine, text

from ledger.sim.bus import publish_lines

SERVERS = os.environ.get("BACKSTOP_TEST_NATS_URL", "nats://127.0.0.1:4222")
FUND = {"fund": "bench", "assets": {"USDT": {"decimals": 2}},
        "markets": {"BTC-PERP": {"quote": "USDT"}},
        "policy": {"version": 1, "minimum_reserve": {"USDT": "0.00"}, "fee_cap_rate": "0.005",
                   "fund_share": {"fixed": "1"}, "socialization": "pro_rata_profit"}}


def facts(count: int):  # type: ignore[no-untyped-def]
    for i in range(count):
        yield json.dumps({"type": "fee", "id": f"f{i}", "time": "2020-03-12T00:00:00Z",
                          "kind": "trading_fee_share", "asset": "USDT",
                          "amount": f"{i % 100}.{i % 97:02d}",
                          "account": f"acct-{i % 5000}"}).encode()


async def streams(tag: str, create: bool) -> None:
    nc = await nats.connect(SERVERS)
    js = nc.jetstream()
    for name, subject in ((f"MEM_{tag}", f"mem.{tag}"), (f"MEMDEAD_{tag}", f"mem.{tag}.dead")):
        with contextlib.suppress(nats.js.errors.NotFoundError):  # already gone
            await js.delete_stream(name)
        if create:
            await js.add_stream(name=name, subjects=[subject])
    await nc.close()


def position(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(
                "SELECT max(position) FROM backstop_follow_cursors")).scalar() or 0)
    except Exception:  # the table appears when the follower starts
        return 0
    finally:
        engine.dispose()


def peak_rss(folder: Path, tag: str, pending: int, commit: int) -> tuple[float, float]:
    """(peak RSS in MiB of a follower committing `commit` facts with `pending` on the stream,
    seconds it took)."""
    asyncio.run(streams(tag, create=True))
    started = time.perf_counter()
    asyncio.run(publish_lines(facts(pending), servers=SERVERS, subject=f"mem.{tag}"))
    print(f"  published {pending} messages in {time.perf_counter() - started:.0f} s",
          flush=True)
    url = f"sqlite:///{folder / f'{tag}.sqlite'}"
    config = folder / "fund.json"
    config.write_text(json.dumps(FUND))
    cli = [sys.executable, "-c", "from ledger.cli.main import main; main()"]
    subprocess.run([*cli, "init", str(config), "--db", url], check=True, capture_output=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    follower = subprocess.Popen([*cli, "follow", "--stream", f"MEM_{tag}", "--dead-letter",
                                 f"mem.{tag}.dead", "--servers", SERVERS, "--db", url],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.perf_counter()
    deadline = time.monotonic() + 600
    while position(url) < commit and time.monotonic() < deadline:
        time.sleep(0.2)  # polling a condition, with a deadline
    seconds = time.perf_counter() - started
    follower.send_signal(signal.SIGTERM)
    follower.wait(timeout=120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    asyncio.run(streams(tag, create=False))
    if after <= before:
        print("  (peak below an earlier child's: the figure is that earlier peak)")
    return after / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument("--commit", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # Baseline first: RUSAGE_CHILDREN keeps the largest peak of any child so far.
        base, base_s = peak_rss(Path(tmp), f"{os.getpid()}_base", args.commit, args.commit)
        print(f"baseline: {args.commit} pending, peak RSS {base:.0f} MiB ({base_s:.1f} s)")
        big, big_s = peak_rss(Path(tmp), f"{os.getpid()}_big", args.pending, args.commit)
        print(f"follow:   {args.pending} pending, peak RSS {big:.0f} MiB ({big_s:.1f} s) "
              f"| ratio {big / base:.2f}x (target <= 1.2x)")


if __name__ == "__main__":
    main()
