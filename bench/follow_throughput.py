"""Bus to ledger: `backstop follow` facts/s beside `backstop import` of the same facts, and
the follower's lag at a steady publishing rate, on a SQLite file and on PostgreSQL.

Throughput: the facts are published to a fresh JetStream stream first; the follower's time
runs from its start until the stream position of the last fact is committed. The baseline
(same run, same facts, same database kind, fresh databases) is `import_file`, what `backstop
import` does. Rounds alternate the two (this machine's speed drifts); the median ratio is
reported. Target: follow >= 0.7x the import (bench/README.md); goal (issue 28): >= 0.9x.

The CPU ratio beside it (import CPU seconds over the follower's, both in this process; the
servers' CPU not counted) drifts far less than wall time when the machine is shared.

Lag: a publisher process sends facts at a steady --rate (2,000/s) while the follower runs
with its defaults (--batch-size 1000, --max-latency 0.2); each fact's lag is its batch's
commit time minus the stream's receive time of its message. p50 and p99 are reported.

    python bench/follow_throughput.py [--facts 50000] [--rounds 3] [--rate 2000]
                                      [--lag-seconds 15] [--pg URL | --no-pg]

PostgreSQL databases are named $BACKSTOP_BENCH_DB_PREFIX (default backstop_bench_<pid>) plus
a tag, as in bench/import_throughput.py, and so are the JetStream streams (BENCH_<prefix>_<tag>,
subjects <prefix>.<tag>); each database and stream is dropped once measured, also when a run
fails or is interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats
from import_throughput import DEFAULT_PG, FUND, drop_pg, fresh_pg, write_facts

from ledger.service.application import Ledger
from ledger.service.follow import FollowConfig, Follower
from ledger.service.followbatch import Batch
from ledger.service.importer import import_file
from ledger.sim.bus import publish_lines

SERVERS = os.environ.get("BACKSTOP_TEST_NATS_URL", "nats://127.0.0.1:4222")
FOLLOW_BATCH = 2000  # the import's default batch size, so both write the same batches
# Names unique to this run: another process may be benchmarking on the same servers.
PREFIX = os.environ.get("BACKSTOP_BENCH_DB_PREFIX", f"backstop_bench_{os.getpid()}")


def names(tag: str) -> tuple[str, str, str, str]:
    """(facts stream, its subject, dead-letter stream, its subject) of one measurement."""
    base = f"{PREFIX}_{tag}"
    return (f"BENCH_{base}", f"{PREFIX}.{tag}", f"BENCHDEAD_{base}", f"{PREFIX}.{tag}.dead")


async def make_streams(tag: str) -> None:
    nc = await nats.connect(SERVERS)
    js = nc.jetstream()
    stream, facts, dead_stream, dead_subject = names(tag)
    for name, subject in ((stream, facts), (dead_stream, dead_subject)):
        with contextlib.suppress(Exception):  # already gone
            await js.delete_stream(name)
        await js.add_stream(name=name, subjects=[subject])
    await nc.close()


async def drop_streams(tag: str) -> None:
    nc = await nats.connect(SERVERS)
    js = nc.jetstream()
    for name in names(tag)[::2]:
        with contextlib.suppress(Exception):  # already gone
            await js.delete_stream(name)
    await nc.close()


def follow_until(url: str, tag: str, last: int, batch_size: int,
                 max_latency: float) -> tuple[float, list[float], float]:
    """Run a follower until stream position `last` is committed: (seconds, per-fact lags,
    this process's CPU seconds)."""
    ledger = Ledger(url)
    stream, _, _, dead_subject = names(tag)
    config = FollowConfig(fund="bench", stream=stream, durable="bench",
                          dead_letter=dead_subject, servers=SERVERS,
                          batch_size=batch_size, max_latency=max_latency)
    lags: list[float] = []

    def on_batch(batch: Batch) -> None:
        lags.extend(batch.committed - t for t in batch.published)
        if batch.last >= last:
            follower.stop()

    follower = Follower(ledger, config, on_batch=on_batch)
    start, cpu = time.perf_counter(), time.process_time()
    asyncio.run(follower.run())
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    ledger.close()
    return seconds, lags, cpu


def dropped(url: str | None) -> None:
    """Drop a PostgreSQL database made for a measurement (SQLite files go with the tmp dir)."""
    if url is not None and url.startswith("postgresql"):
        drop_pg(url)


def throughput_round(kind: str, make_url: object, facts: Path, count: int,
                     round_: int) -> tuple[float, float] | None:
    """One round: import, then follow, on fresh databases (dropped after); the ratio."""
    import_url = make_url(f"fimport{round_}")  # type: ignore[operator]
    follow_url = make_url(f"ffollow{round_}")  # type: ignore[operator]
    try:
        if import_url is None or follow_url is None:
            return None
        return _throughput(kind, import_url, follow_url, facts, count, round_)
    finally:
        dropped(import_url)
        dropped(follow_url)


def _throughput(kind: str, import_url: str, follow_url: str, facts: Path, count: int,
                round_: int) -> tuple[float, float]:
    ledger = Ledger(import_url)
    ledger.open_fund(FUND, "2020-03-12T00:00:00Z")
    start, cpu = time.perf_counter(), time.process_time()
    report = import_file(ledger, "bench", facts)
    import_s, import_cpu = time.perf_counter() - start, time.process_time() - cpu
    ledger.close()
    tag = f"r{round_}"
    asyncio.run(make_streams(tag))
    try:
        asyncio.run(publish_lines(facts.read_bytes().splitlines(), servers=SERVERS,
                                  subject=names(tag)[1]))
        ledger = Ledger(follow_url)
        ledger.open_fund(FUND, "2020-03-12T00:00:00Z")
        ledger.close()
        follow_s, _, follow_cpu = follow_until(follow_url, tag, count, FOLLOW_BATCH, 0.2)
    finally:
        asyncio.run(drop_streams(tag))
    import_rate, follow_rate = count / import_s, count / follow_s
    print(f"{kind:9} import {import_rate:7.0f} facts/s ({report.events} events in "
          f"{import_s:.1f} s) | follow {follow_rate:7.0f} facts/s ({follow_s:.1f} s) | "
          f"ratio {follow_rate / import_rate:.2f}x | CPU of this process: import "
          f"{import_cpu:.2f} s, follow {follow_cpu:.2f} s ({import_cpu / follow_cpu:.2f}x)",
          flush=True)
    return follow_rate / import_rate, import_cpu / follow_cpu


def lag_run(kind: str, url: str | None, facts: Path, rate: float, seconds: float) -> None:
    """Publish at `rate` from another process while following; print lag p50 and p99."""
    if url is None:
        return
    try:
        _lag(kind, url, facts, rate, seconds)
    finally:
        dropped(url)


def _lag(kind: str, url: str, facts: Path, rate: float, seconds: float) -> None:
    count = int(rate * seconds)
    lines = facts.read_bytes().splitlines()[:count]
    part = facts.with_name(f"lag-{kind}.jsonl")
    part.write_bytes(b"\n".join(lines) + b"\n")
    tag = f"lag_{kind}"
    asyncio.run(make_streams(tag))
    try:
        ledger = Ledger(url)
        ledger.open_fund(FUND, "2020-03-12T00:00:00Z")
        ledger.close()
        publisher = subprocess.Popen([sys.executable, "-c", (
            "import asyncio, sys; from ledger.sim.bus import publish_lines; "
            f"asyncio.run(publish_lines(open({str(part)!r}, 'rb').read().splitlines(), "
            f"servers={SERVERS!r}, subject={names(tag)[1]!r}, rate={rate}))")])
        try:
            _, lags, _ = follow_until(url, tag, len(lines), 1000, 0.2)
            publisher.wait(timeout=120)
        finally:
            if publisher.poll() is None:  # the follower failed: stop publishing
                publisher.kill()
                publisher.wait()
    finally:
        asyncio.run(drop_streams(tag))
    lags.sort()
    p50 = lags[len(lags) // 2]
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
    print(f"{kind:9} lag at {rate:.0f} facts/s over {len(lags)} facts: p50 {p50 * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--lag-seconds", type=float, default=15)
    parser.add_argument("--pg", default=os.environ.get("BACKSTOP_TEST_PG_URL", DEFAULT_PG))
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        facts = Path(tmp) / "facts.jsonl"
        write_facts(facts, max(args.facts, int(args.rate * args.lag_seconds)))
        if args.facts < int(args.rate * args.lag_seconds):
            throughput_facts = facts.with_name("throughput.jsonl")
            throughput_facts.write_bytes(b"".join(
                facts.read_bytes().splitlines(keepends=True)[:args.facts]))
        else:
            throughput_facts = facts
        backends: list[tuple[str, object]] = [
            ("sqlite", lambda tag: f"sqlite:///{tmp}/{tag}.sqlite")]
        if not args.no_pg:
            backends.append(("postgres", lambda tag: fresh_pg(args.pg, f"{PREFIX}_{tag}")))
        print(f"{args.facts} facts; baseline = `backstop import` of the same file "
              f"(batch {FOLLOW_BATCH}); follow --batch-size {FOLLOW_BATCH}")
        for kind, make_url in backends:
            rounds = [r for r in (throughput_round(kind, make_url, throughput_facts,
                                                   args.facts, n)
                                  for n in range(args.rounds)) if r is not None]
            if rounds:
                print(f"{kind:9} median ratio over {len(rounds)} rounds: "
                      f"{statistics.median(r for r, _ in rounds):.2f}x (target >= 0.7x, "
                      f"goal >= 0.9x); CPU ratio {statistics.median(c for _, c in rounds):.2f}x",
                      flush=True)
            lag_run(kind, make_url("flag"), facts, args.rate, args.lag_seconds)  # type: ignore[operator]


if __name__ == "__main__":
    main()
