"""Published bytes per event: a tiled log (`snapshot publish --layout tiles`) after many
snapshots of a growing log, against the event export's own size measured in the same run.

The simulated crash day (`backstop demo`'s facts, or --traders/--steps) is imported in
--snapshots equal slices, publishing after each, like hourly snapshots of a growing log.
Then the bytes under ROOT are split into: the log (tile/ and checkpoint), the account-proof
shards (snapshots/*/accounts/), and the rest of the snapshot folders (a constant each).
Target: log <= 1.2x the export (one canonical JSON line per event), plus the shards.

Usage: python bench/publish_bytes.py [--snapshots 100] [--traders 3000] [--steps 288]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from crash_day import crash_day  # bench/ is the script's folder, first on sys.path

from ledger.service.importer import import_file
from ledger.service.tilepub import publish_tiles


def tree_bytes(paths: list[Path]) -> int:
    """Bytes of the files under each of `paths` (files themselves count too)."""
    total = 0
    for path in paths:
        found = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        total += sum(p.stat().st_size for p in found)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snapshots", type=int, default=100)
    parser.add_argument("--traders", type=int, default=3000)
    parser.add_argument("--steps", type=int, default=288)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="publish-bytes-") as scratch:
        work = Path(scratch)
        day = crash_day(work, args.traders, args.steps)
        lines, ledger, fund, signer = day.lines, day.ledger, day.fund, day.signer
        root = work / "published"
        started = time.perf_counter()
        publish_seconds = 0.0
        step = -(-len(lines) // args.snapshots)
        for n in range(args.snapshots):
            chunk = work / f"{n:03d}.jsonl"
            chunk.write_bytes(b"".join(lines[n * step:(n + 1) * step]))
            import_file(ledger, fund, chunk)
            t0 = time.perf_counter()
            publication = publish_tiles(ledger, fund, signer, root,
                                        f"2020-03-12T{n // 60 % 24:02d}:{n % 60:02d}:00Z")
            publish_seconds += time.perf_counter() - t0
        size = publication.document["log"]["size"]
        export = sum(len(line) + 1 for line in ledger.log_lines(fund, 0, size))
        ledger.close()
        folders = sorted((root / "snapshots").iterdir())
        log = tree_bytes([root / "tile", root / "checkpoint"])
        shards = tree_bytes([f / "accounts" for f in folders])
        rest = tree_bytes(folders) - shards
        total = tree_bytes([root])
    print(f"{len(folders)} snapshots of a log growing to {size:,} events "
          f"({publication.document['accounts']['count']:,} accounts), "
          f"{time.perf_counter() - started:.0f} s ({publish_seconds:.1f} s publishing)")
    print(f"  export (baseline)      {export:>12,} bytes  {export / size:8.1f} per event")
    print(f"  log: tiles + bundles   {log:>12,} bytes  {log / size:8.1f} per event")
    print(f"  account shards         {shards:>12,} bytes  {shards / len(folders):10,.0f} per snapshot")
    print(f"  rest of the snapshots  {rest:>12,} bytes  {rest / len(folders):10,.0f} per snapshot")
    print(f"  whole tree             {total:>12,} bytes")
    print(f"ratio log / export = {log / export:.3f} (target <= 1.2); "
          f"(total - shards) / export = {(total - shards) / export:.3f}")


if __name__ == "__main__":
    main()
