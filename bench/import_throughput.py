"""Import throughput (events/s) on a SQLite file and on PostgreSQL, beside a baseline.

Baseline (same run, same database kind): the stock eventsourcing pattern, saving 1,000
freshly created aggregates (one event each) per `app.save` call, through the same
eventsourcing-sqlalchemy persistence. Target: `backstop import` at >= 2x the baseline's
events/s on SQLite, and on PostgreSQL (issue 17: where a venue runs the ledger).

This machine's speed drifts by up to 2x within tens of seconds, so baseline and import are
interleaved finely: the facts are split into `--slices` files, and each round alternates one
baseline slice (as many aggregates) with one `import_file` of a slice, into the same two
databases. Each side's events/s is its total over the round; the median ratio over rounds
is reported.

Floor (issue 28: a floor, not only a baseline): the least any importer must do with the same
file, interleaved the same way: orjson of each line, SHA-256 of its RFC 8785 bytes, and one
batched insert of the rows (id, hash, bytes) into a plain table in one transaction (sqlite3's
executemany; COPY on PostgreSQL). The import's distance from it is its time over the
floor's, for the same facts.

    python bench/import_throughput.py [--facts 100000] [--slices 10] [--rounds 3]
                                      [--pg URL | --no-pg] [--format 1|2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate

from auditor.formats.wire import canonical_bytes
from ledger.service.application import Ledger
from ledger.service.importer import import_file

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
FUND = {"fund": "bench", "assets": {"USDT": {"decimals": 2}},
        "markets": {"BTC-PERP": {"quote": "USDT"}},
        "policy": {"version": 1, "minimum_reserve": {"USDT": "0.00"}, "fee_cap_rate": "0.005",
                   "fund_share": {"fixed": "1"}, "socialization": "pro_rata_profit"}}
# `--format 2`: the same fund as a format 2 fund of one shared pool, with no pool rules (a venue
# that adopts the format without its features must not pay for them: issue 23).
FUND_V2 = {"format": 2, "fund": "bench", "assets": {"USDT": {"decimals": 2}},
           "valuation": {"currency": "USD", "decimals": 2}, "pools": {"main": {"kind": "shared"}},
           "markets": {"BTC-PERP": {"kind": "linear", "settlement": "USDT", "pool": "main"}},
           "policy": {"format": "backstop-policy/2", "version": 1, "fee_cap_rate": "0.005",
                      "fund_share": {"fixed": "1"}, "socialization": "pro_rata_profit",
                      "pools": {}, "assets": {}, "layers": []}}


class Trade(Aggregate):
    """Baseline aggregate: one created event carrying a fee-like payload."""

    TOPIC = "bench:Trade"

    class Created(Aggregate.Created):
        TOPIC = "bench:Trade.Created"
        time: str
        ref: str
        data: dict[str, Any]

    def __init__(self, time: str, ref: str, data: dict[str, Any]) -> None:
        self.time, self.ref, self.data = time, ref, data


class Baseline(Application[Any]):
    name = "baseline"
    env = {"PERSISTENCE_MODULE": "eventsourcing_sqlalchemy"}


def write_facts(path: Path, count: int, pool: str | None = None) -> None:
    """`count` facts: 1 capital injection, then fees (80%), observations (15%) and surplus
    liquidations (5%, two events each); fees and capital name `pool` when given (format 2)."""
    where = {} if pool is None else {"pool": pool}
    with path.open("w") as out:
        out.write(json.dumps({"type": "capital", "id": "c0", "time": "2020-03-12T00:00:00Z",
                              "direction": "inject", "asset": "USDT", "amount": "100000",
                              "source": "operator", **where}) + "\n")
        for i in range(1, count):
            t = f"2020-03-12T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}Z"
            if i % 20 == 0:
                fact = {"type": "liquidation", "id": f"l{i}", "time": t,
                        "account": f"acct-{i % 5000}", "market": "BTC-PERP", "side": "long",
                        "size": "0.1", "entry_price": "60000", "collateral": "900",
                        "fill_price": str(52000 + i % 5000), "mark_price": "52000"}
            elif i % 7 == 0:
                fact = {"type": "observation", "id": f"o{i}", "time": t, "market": "BTC-PERP",
                        "mark_price": str(50000 + i % 1000), "open_interest": "1200.5"}
            else:
                fact = {"type": "fee", "id": f"f{i}", "time": t, "kind": "trading_fee_share",
                        "asset": "USDT", "amount": f"{i % 100}.{i % 97:02d}",
                        "account": f"acct-{i % 5000}", **where}
            out.write(json.dumps(fact) + "\n")


def split(facts: Path, parts: int) -> list[Path]:
    """The facts file cut into `parts` files of consecutive lines."""
    lines = facts.read_bytes().splitlines(keepends=True)
    size = -(-len(lines) // parts)
    paths = []
    for part in range(parts):
        path = facts.with_name(f"{facts.stem}.{part}.jsonl")
        path.write_bytes(b"".join(lines[part * size:(part + 1) * size]))
        paths.append(path)
    return paths


def baseline_slice(app: Baseline, first: int, count: int) -> tuple[int, float]:
    start = time.perf_counter()
    for low in range(first, first + count, 1000):
        app.save(*[Trade(time="2020-03-12T00:00:00Z", ref=f"t{i}",
                         data={"kind": "trading_fee_share", "asset": "USDT", "amount": "1.00",
                               "account": f"acct-{i % 5000}"})
                   for i in range(low, min(low + 1000, first + count))])
    return count, time.perf_counter() - start


def import_slice(ledger: Ledger, facts: Path) -> tuple[int, float]:
    start = time.perf_counter()
    report = import_file(ledger, "bench", facts)
    return report.events, time.perf_counter() - start


class Floor:
    """The parse-hash-persist floor: a plain table, one transaction per slice."""

    def __init__(self, url: str) -> None:
        self.postgres = url.startswith("postgresql")
        if self.postgres:
            import psycopg

            self.conn: Any = psycopg.connect(url.replace("+psycopg", ""))
            self.conn.execute("CREATE TABLE floor (id TEXT, hash BYTEA, line BYTEA)")
        else:
            self.conn = sqlite3.connect(url.removeprefix("sqlite:///"))
            self.conn.execute("CREATE TABLE floor (id TEXT, hash BLOB, line BLOB)")
        self.conn.commit()

    def slice(self, facts: Path) -> tuple[int, float]:
        start = time.perf_counter()
        rows = []
        with facts.open("rb") as lines:
            for line in lines:
                fact = orjson.loads(line)
                body = canonical_bytes(fact)
                rows.append((fact["id"], hashlib.sha256(b"\x00" + body).digest(), body))
        if self.postgres:
            with self.conn.cursor() as cur, cur.copy("COPY floor (id, hash, line) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            self.conn.executemany("INSERT INTO floor VALUES (?, ?, ?)", rows)
        self.conn.commit()
        return len(rows), time.perf_counter() - start

    def close(self) -> None:
        self.conn.close()


Measure = tuple[int, float]  # (events or facts, seconds)


def run_round(base_url: str, ours_url: str, floor_url: str, slices: list[Path], count: int,
              fund: dict[str, Any]) -> tuple[Measure, Measure, Measure]:
    """(events, seconds) of the baseline and of the import, and (facts, seconds) of the
    floor, slices interleaved."""
    app = Baseline(env={"SQLALCHEMY_URL": base_url})
    ledger = Ledger(ours_url)
    ledger.open_fund(fund, "2020-03-12T00:00:00Z")
    floor = Floor(floor_url)
    base, ours, least = [0, 0.0], [0, 0.0], [0, 0.0]
    per_slice = -(-count // len(slices))
    for number, path in enumerate(slices):
        for total, (events, seconds) in (
                (base, baseline_slice(app, number * per_slice,
                                      min(per_slice, count - number * per_slice))),
                (ours, import_slice(ledger, path)),
                (least, floor.slice(path))):
            total[0] += events
            total[1] += seconds
    app.close()
    ledger.close()
    floor.close()
    return (int(base[0]), base[1]), (int(ours[0]), ours[1]), (int(least[0]), least[1])


def fresh_pg(url: str, name: str) -> str | None:
    try:
        import psycopg

        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as error:  # whatever the failure: report it and skip the backend
        print(f"PostgreSQL skipped: {error}")
        return None
    return url.rsplit("/", 1)[0] + "/" + name


def drop_pg(url: str) -> None:
    """Drop a database made by `fresh_pg` (names are per run, so they would pile up)."""
    import psycopg

    server, name = url.rsplit("/", 1)
    try:
        with psycopg.connect(f"{server}/postgres".replace("+psycopg", ""),
                             autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception as error:  # a leftover database is harmless: say so and go on
        print(f"could not drop {name}: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=100_000)
    parser.add_argument("--pg", default=os.environ.get("BACKSTOP_TEST_PG_URL", DEFAULT_PG))
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--format", type=int, choices=(1, 2), default=1,
                        help="the fund's format: 2 imports the same facts into a one-pool fund")
    parser.add_argument("--slices", type=int, default=10,
                        help="baseline and import alternate slice by slice within a round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds per backend, each on fresh databases (median ratio)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        facts = Path(tmp) / "facts.jsonl"
        write_facts(facts, args.facts, None if args.format == 1 else "main")
        fund = FUND if args.format == 1 else FUND_V2
        slices = split(facts, max(1, min(args.slices, args.facts)))
        backends = [("sqlite", lambda tag: f"sqlite:///{tmp}/{tag}.sqlite")]
        if not args.no_pg:
            # Names unique to this run: another process may be benchmarking on the same server.
            prefix = os.environ.get("BACKSTOP_BENCH_DB_PREFIX", f"backstop_bench_{os.getpid()}")
            backends.append(("postgres", lambda tag: fresh_pg(args.pg, f"{prefix}_{tag}")))
        print(f"{args.facts} facts in {len(slices)} slices, a format {args.format} fund; baseline = 1,000 fresh aggregates "
              "per app.save")
        for kind, make_url in backends:
            ratios, distances = [], []
            for round_ in range(args.rounds):
                urls = [make_url(f"{tag}{round_}") for tag in ("baseline", "import", "floor")]
                if None in urls:
                    break
                base_url, ours_url, floor_url = (str(url) for url in urls)
                (base_events, base_s), (events, ours_s), (_, floor_s) = run_round(
                    base_url, ours_url, floor_url, slices, args.facts, fund)
                if kind == "postgres":
                    for url in (base_url, ours_url, floor_url):
                        drop_pg(url)
                base_rate, rate = base_events / base_s, events / ours_s
                ratios.append(rate / base_rate)
                distances.append(ours_s / floor_s)
                print(f"{kind:9} baseline {base_rate:7.0f} events/s ({base_events} in "
                      f"{base_s:.1f} s) | backstop import {rate:7.0f} events/s ({events} in "
                      f"{ours_s:.1f} s) | ratio {rate / base_rate:.2f}x | floor {floor_s:.2f} s, "
                      f"import {ours_s / floor_s:.1f}x the floor", flush=True)
            if ratios:
                print(f"{kind:9} median ratio over {len(ratios)} rounds: "
                      f"{statistics.median(ratios):.2f}x (target >= 2x); the import at "
                      f"{statistics.median(distances):.1f}x the floor's time", flush=True)


if __name__ == "__main__":
    main()
