"""Reading the log (issue 28 item 6): `Ledger.log_lines` (what export, publishing and the log
tree read) over every event of a fund, against a raw SELECT of the same bytes on the driver's
own connection, in the same run, alternated; SQLite, and PostgreSQL unless --no-pg.

    python bench/export_lines.py [--facts 100000] [--rounds 3] [--pg URL | --no-pg]

The fund is the import bench's (bench/import_throughput.py), imported once per backend.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import import_throughput as imports  # noqa: E402  (the bench's facts and databases)

from ledger.service.application import Ledger  # noqa: E402
from ledger.service.importer import import_file  # noqa: E402


def ours(ledger: Ledger) -> tuple[int, int, float]:
    start = time.perf_counter()
    count = size = 0
    for line in ledger.log_lines("bench"):
        count += 1
        size += len(line)
    return count, size, time.perf_counter() - start


def raw(ledger: Ledger) -> tuple[int, int, float]:
    """The floor: one SELECT of every state, in order, on the DBAPI connection."""
    start = time.perf_counter()
    name = ledger.recorder.events_table_name  # type: ignore[attr-defined]
    with ledger.engine.connect() as connection:
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(f"SELECT state FROM {name} ORDER BY originator_version")
        rows = cursor.fetchall()
        cursor.close()
    size = sum(len(bytes(state)) for state, in rows)
    return len(rows), size, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg", default=os.environ.get("BACKSTOP_TEST_PG_URL", imports.DEFAULT_PG))
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        facts = Path(tmp) / "facts.jsonl"
        imports.write_facts(facts, args.facts)
        urls = [("sqlite", f"sqlite:///{tmp}/export.sqlite")]
        if not args.no_pg:
            prefix = os.environ.get("BACKSTOP_BENCH_DB_PREFIX", f"backstop_bench_{os.getpid()}")
            url = imports.fresh_pg(args.pg, f"{prefix}_export")
            if url is not None:
                urls.append(("postgres", url))
        for kind, url in urls:
            ledger = Ledger(url)
            ledger.open_fund(imports.FUND, "2020-03-12T00:00:00Z")
            import_file(ledger, "bench", facts)
            ratios = []
            for _ in range(args.rounds):
                count, size, ours_s = ours(ledger)
                raw_count, raw_size, raw_s = raw(ledger)
                assert (count, size) == (raw_count, raw_size), "not the same bytes"
                ratios.append(ours_s / raw_s)
                print(f"{kind:9} log_lines {ours_s:.3f} s | raw SELECT {raw_s:.3f} s "
                      f"({count} events, {size / 1e6:.1f} MB) | ratio {ours_s / raw_s:.2f}x",
                      flush=True)
            print(f"{kind:9} median ratio over {len(ratios)} rounds: "
                  f"{statistics.median(ratios):.2f}x (issue 28: <= 3x)", flush=True)
            ledger.close()
            if kind == "postgres":
                imports.drop_pg(url)


if __name__ == "__main__":
    main()
