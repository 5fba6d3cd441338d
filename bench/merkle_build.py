"""Merkle build benchmark: persisted log tree, streaming root, sum tree and pymerkle against
a plain hashlib RFC 6962 loop measured in the same run.

Usage: python bench/merkle_build.py [--leaves N] [--batch 5000] [--pymerkle-cap 100000]
                                   [--pragmas ledger|sqlite|fast] [--repeat 2]
Leaf i's data is i.to_bytes(8, "big") * 8 (64 bytes). Every timed variant includes hashing
the leaf data, so the ratios compare like with like. Wall and CPU seconds are both shown:
on a shared machine CPU time is the steadier figure, but only wall time includes the
per-batch fsync of the SQLite commit (default pragmas: rollback journal, synchronous=FULL;
--pragmas: `ledger` (default) is what the ledger's SQLite store runs with, journal_mode=WAL
and synchronous=FULL; `sqlite` is SQLite's own default, a rollback journal; `fast` is WAL with
synchronous=NORMAL).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from auditor.verify.merkle import CompactRange
from auditor.verify.sumtree import SumTree
from ledger.store.logtree import LogTree, log_tiles


def leaf_data(n: int) -> list[bytes]:
    """Deterministic 64-byte leaf payloads."""
    return [i.to_bytes(8, "big") * 8 for i in range(n)]


def baseline(data: list[bytes]) -> bytes:
    """Plain hashlib: leaf hashes, then pair level by level (odd node carried up)."""
    sha = hashlib.sha256
    row = [sha(b"\x00" + d).digest() for d in data]
    while len(row) > 1:
        nxt = [sha(b"\x01" + row[i] + row[i + 1]).digest() for i in range(0, len(row) - 1, 2)]
        if len(row) % 2:
            nxt.append(row[-1])
        row = nxt
    return row[0] if row else sha(b"").digest()


PRAGMAS = {"ledger": ("WAL", "FULL"), "sqlite": ("DELETE", "FULL"), "fast": ("WAL", "NORMAL")}


def logtree(data: list[bytes], batch: int, path: Path, pragmas: str,
            commit_each_batch: bool = True) -> bytes:
    """Append in batches to a SQLite file, then read the root. With `commit_each_batch` every
    batch is its own transaction, as in an import (where the commit is shared with the
    batch's events); without, one transaction holds them all: the tree's own cost."""
    sha = hashlib.sha256
    engine = sa.create_engine(f"sqlite:///{path}")
    journal, synchronous = PRAGMAS[pragmas]

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record) -> None:
        dbapi_conn.execute(f"PRAGMA journal_mode={journal}")
        dbapi_conn.execute(f"PRAGMA synchronous={synchronous}")

    log_tiles.create(engine)

    def leaves(first: int, end: int) -> list[bytes]:  # the log recomputes bottom tiles, as
        return [sha(b"\x00" + d).digest() for d in data[first:end]]  # the ledger does

    with engine.begin() as outer:
        for start in range(0, len(data), batch):
            hashes = [sha(b"\x00" + d).digest() for d in data[start : start + batch]]
            if commit_each_batch:
                with engine.begin() as conn:
                    LogTree(conn, "bench", leaves=leaves).append(hashes)
            else:
                LogTree(outer, "bench", leaves=leaves).append(hashes)
    with engine.connect() as conn:
        root = LogTree(conn, "bench", leaves=leaves).root()
    engine.dispose()
    return root


def compact(data: list[bytes]) -> bytes:
    """Streaming root with CompactRange.append, one leaf at a time (auditor replay)."""
    sha = hashlib.sha256
    cr = CompactRange()
    append = cr.append
    for d in data:
        append(sha(b"\x00" + d).digest())
    return cr.root()


def compact_batched(data: list[bytes], batch: int) -> bytes:
    """Streaming root with CompactRange.extend over batches."""
    sha = hashlib.sha256
    cr = CompactRange()
    for start in range(0, len(data), batch):
        cr.extend([sha(b"\x00" + d).digest() for d in data[start : start + batch]])
    return cr.root()


def sumtree(n: int) -> bytes:
    """SumTree.build over n accounts, one asset (3 sum components), fixed nonces."""
    nonce = bytes(32)
    entries = ((f"acct-{i}", nonce, (i, i % 7, i % 11)) for i in range(n))
    return SumTree.build(entries, width=3).root


def pymerkle_root(data: list[bytes]) -> bytes:
    """pymerkle's in-memory tree (default: SHA-256 with 0x00/0x01 prefixes = RFC 6962)."""
    from pymerkle import InmemoryTree

    tree = InmemoryTree(algorithm="sha256")
    for d in data:
        tree.append_entry(d)
    return tree.get_root() if hasattr(tree, "get_root") else tree.get_state()


def timed(fn, *args, repeat: int = 1):
    """(wall seconds, CPU seconds, result), each the minimum over `repeat` runs."""
    best_w = best_c = float("inf")
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn(*args)
        best_w = min(best_w, time.perf_counter() - w0)
        best_c = min(best_c, time.process_time() - c0)
    return best_w, best_c, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leaves", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--pymerkle-cap", type=int, default=100_000,
                    help="run pymerkle on at most this many leaves and extrapolate linearly")
    ap.add_argument("--pragmas", choices=sorted(PRAGMAS), default="ledger",
                    help="SQLite journal/synchronous settings (default: the ledger's own)")
    ap.add_argument("--repeat", type=int, default=2, help="runs of the cheap variants (best kept)")
    args = ap.parse_args()
    n = args.leaves
    data = leaf_data(n)
    print(f"leaves: {n:,}  (64-byte payloads; LogTree batches of {args.batch:,})")

    # The machine is shared and its speed drifts: the baseline and the two tree variants run
    # interleaved, round after round, and each ratio is the median of per-round ratios.
    r = args.repeat
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(r):
            t_b, c_b, root = timed(baseline, data)
            t_l, c_l, r_log = timed(logtree, data, args.batch, Path(tmp) / f"batch{k}.db",
                                    args.pragmas)
            t_o, c_o, r_one = timed(logtree, data, args.batch, Path(tmp) / f"one{k}.db",
                                    args.pragmas, False)
            assert r_log == root and r_one == root, "LogTree root differs from baseline"
            rounds.append((t_b, c_b, t_l, c_l, t_o, c_o))
        size_mb = (Path(tmp) / "batch0.db").stat().st_size / 1e6
    best = [min(column) for column in zip(*rounds)]
    t_base, c_base, t_log, c_log, t_one, c_one = best
    mode = "journal %s, synchronous %s" % PRAGMAS[args.pragmas]
    rows = [("baseline hashlib loop (no storage)", t_base, c_base, f"best of {r} rounds"),
            ("LogTree, one transaction per batch", t_log, c_log, f"{mode}, db {size_mb:.1f} MB"),
            ("LogTree, one transaction", t_one, c_one, "the tree's own cost")]

    def median_ratio(i: int, base: int) -> float:
        return statistics.median(rnd[i] / rnd[base] for rnd in rounds)

    t_cr, c_cr, r_cr = timed(compact, data, repeat=r)
    assert r_cr == root, "CompactRange root differs from baseline"
    rows.append(("CompactRange.append (per leaf)", t_cr, c_cr, ""))
    t_cb, c_cb, r_cb = timed(compact_batched, data, args.batch, repeat=r)
    assert r_cb == root, "CompactRange root differs from baseline"
    rows.append(("CompactRange.extend (batches)", t_cb, c_cb, ""))

    t_sum, c_sum, _ = timed(sumtree, n)
    rows.append((f"SumTree.build ({n:,} accounts, 1 asset)", t_sum, c_sum, ""))

    pm_row = None
    try:
        m = min(n, args.pymerkle_cap)
        t_pm, c_pm, r_pm = timed(pymerkle_root, data[:m])
        assert r_pm == baseline(data[:m]), "pymerkle root differs from RFC 6962 root"
        note = "" if m == n else f"measured on {m:,} leaves, x{n / m:g} linear extrapolation"
        pm_row = ("pymerkle InmemoryTree", t_pm * n / m, c_pm * n / m, note)
        rows.append(pm_row)
    except ImportError:
        print("pymerkle not installed (pip install -e '.[bench]'): skipped")

    print(f"{'variant':42} {'wall s':>7} {'x base':>7} {'cpu s':>7} {'x base':>7}")
    for name, wall, cpu, note in rows:
        print(f"{name:42} {wall:7.2f} {wall / t_base:7.2f} {cpu:7.2f} {cpu / c_base:7.2f}  {note}")
    print(f"root: {root.hex()}")
    print(f"LogTree / baseline (median of {r} interleaved rounds): wall {median_ratio(4, 0):.2f}x, "
          f"cpu {median_ratio(5, 1):.2f}x in one transaction; wall {median_ratio(2, 0):.2f}x, "
          f"cpu {median_ratio(3, 1):.2f}x committing each batch (target <= 1.5x)")
    if pm_row:
        print(f"pymerkle / LogTree: wall {pm_row[1] / t_log:.1f}x, cpu {pm_row[2] / c_log:.1f}x (target >= 5x)")

if __name__ == "__main__":
    main()
