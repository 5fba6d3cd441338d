"""Incremental audit vs full replay: the time to audit snapshot N+1 of a tiled log from the
state saved after snapshot N (`replay --resume-state`), against a full replay of the same
snapshot, at a few log sizes with the same number of new facts each time.

Two logs (--log). `fees` (the default): the import benchmark's facts (fees, observations and
surplus liquidations over 5,000 accounts, one exchange id per fact), so the log, and the
exchange ids a state holds, grow while the accounts stay fixed; sizes are --sizes facts.
`crash`: the simulated crash day (--traders/--steps), sizes --fractions of the day; there
a few thousand liquidation facts each derive dozens of events, and the accounts grow.

At each measured size L a snapshot is published --new facts before L and another at L. The
state after the first is saved (not timed); then the full replay, the resumed one, and the
resumed one that also saves its next state (what the witness does each poll) of the
snapshot at L are timed alternately, median of --rounds; the state's load alone is timed
too. Target: the resumed time stays flat (proportional to the new events) while the full
replay grows with the log.

--ids K,...: then the last state is grown to K exchange ids each (synthetic ids added to
its replayer, saved), and what a resume does with the state is timed without a log: load
it, add --new new ids (and look up one it holds), save it again. This reaches a million ids
without importing and publishing a million facts.

Usage: python bench/incremental_audit.py [--log fees] [--sizes 100000,300000,1000000]
           [--new 250] [--rounds 3] [--ids 100000,300000,1000000]
       python bench/incremental_audit.py --log crash [--traders 6000] [--steps 288]
           [--fractions 0.125,0.25,0.5,1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from crash_day import crash_day  # bench/ is the script's folder, first on sys.path
from import_throughput import FUND, write_facts

from auditor.checks import execute, verify_replay
from auditor.state import read_state, write_state
from ledger.service.application import Ledger
from ledger.service.importer import import_file
from ledger.service.signing import generate_signer
from ledger.service.tilepub import publish_tiles


def audit(root: Path, vkey: str, size: int, **state: str) -> float:
    """Seconds for one `backstop-audit replay ROOT --snapshot SIZE` (must verify)."""
    t0 = time.perf_counter()
    report = execute("replay", verify_replay, events=str(root), snapshot=str(size),
                     keys=(vkey,), require=1, seed=None, **state)
    elapsed = time.perf_counter() - t0
    if not report.verified:
        raise SystemExit(f"audit of {size} failed: {report.reason or report.error}")
    return elapsed


def grow_state(state: Path, work: Path, ids: int, new: int,
               rounds: int) -> tuple[int, float, float, float, int]:
    """(ids, load, add, save seconds, bytes) of `state` grown to `ids` exchange ids."""
    replayer = read_state(state).replayer
    have = len(replayer.refs.keys())
    for i in range(ids - have):  # ids the log never had: any resume must still find them
        replayer.refs.add(f"fee\x00grown-{i:09d}")
    big = work / f"grown-{ids}"
    write_state(big, replayer)
    replayer.refs.close()
    loads, adds, saves = [], [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        resumed = read_state(big).replayer
        t1 = time.perf_counter()
        for i in range(new):
            if not resumed.refs.add(f"fee\x00new-{i:06d}"):
                raise SystemExit("a new id was taken for a duplicate")
        if resumed.refs.add(f"fee\x00grown-{(ids - have) // 2:09d}"):
            raise SystemExit("an id of the state was not found")
        t2 = time.perf_counter()
        write_state(work / "grown-next", resumed)
        t3 = time.perf_counter()
        resumed.refs.close()
        loads.append(t1 - t0)
        adds.append(t2 - t1)
        saves.append(t3 - t2)
    return (ids, statistics.median(loads), statistics.median(adds), statistics.median(saves),
            big.stat().st_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log", choices=("fees", "crash"), default="fees")
    parser.add_argument("--sizes", default="100000,300000,1000000",
                        help="--log fees: the measured sizes in facts (comma-separated)")
    parser.add_argument("--traders", type=int, default=6000)
    parser.add_argument("--steps", type=int, default=288)
    parser.add_argument("--fractions", default="0.125,0.25,0.5,1",
                        help="--log crash: the measured sizes as fractions of the day")
    parser.add_argument("--new", type=int, default=250, help="new facts per snapshot N+1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ids", default="",
                        help="then grow the last state to these many exchange ids and time "
                             "its load, --new additions and save (comma-separated)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="incremental-audit-") as scratch:
        work = Path(scratch)
        if args.log == "crash":
            day = crash_day(work, args.traders, args.steps)
            lines, ledger, fund, signer = day.lines, day.ledger, day.fund, day.signer
            ends = [int(len(lines) * float(f)) for f in args.fractions.split(",")]
            what = f"simulated crash day ({args.traders} traders, {args.steps} steps)"
        else:
            ends = [int(s) for s in args.sizes.split(",")]
            write_facts(work / "facts.jsonl", max(ends))
            lines = (work / "facts.jsonl").read_bytes().splitlines(keepends=True)
            ledger, fund = Ledger(f"sqlite:///{work / 'ledger.sqlite'}"), FUND["fund"]
            ledger.open_fund(FUND, "2020-03-12T00:00:00Z")
            signer = generate_signer("bench.backstop.example")
            what = "import-benchmark facts (5,000 accounts, one exchange id each)"
        vkey = signer.verifier_key()
        root = work / "published"
        done, hour = 0, 0
        rows = []

        def grow_and_publish(upto: int) -> int:
            nonlocal done, hour
            chunk = work / f"{upto}.jsonl"
            chunk.write_bytes(b"".join(lines[done:upto]))
            import_file(ledger, fund, chunk)
            done, hour = upto, hour + 1
            pub = publish_tiles(ledger, fund, signer, root,
                                f"2020-03-{13 + hour // 24:02d}T{hour % 24:02d}:00:00Z")
            return int(pub.document["log"]["size"])

        for end in ends:
            before = grow_and_publish(end - args.new)
            size = grow_and_publish(end)
            state = work / f"state-{before}"
            audit(root, vkey, before, save_state=str(state))
            full, resumed, saved, loads = [], [], [], []
            for _ in range(args.rounds):
                full.append(audit(root, vkey, size))
                resumed.append(audit(root, vkey, size, resume_state=str(state)))
                saved.append(audit(root, vkey, size, resume_state=str(state),
                                   save_state=str(work / "next-state")))
                t0 = time.perf_counter()
                read_state(state).replayer.refs.close()
                loads.append(time.perf_counter() - t0)
            rows.append((size, size - before, statistics.median(full),
                         statistics.median(resumed), statistics.median(saved),
                         statistics.median(loads), state.stat().st_size))
            print(f"measured log size {size:,}", flush=True)
        ledger.close()
        grown = [grow_state(state, work, int(k), args.new, args.rounds)
                 for k in args.ids.split(",") if k]
    print(f"{len(lines):,} facts: {what}; {args.new} new facts per snapshot N+1; "
          f"medians of {args.rounds}")
    print(f"{'log size':>9} {'new events':>10} {'full (s)':>9} {'resumed (s)':>11} "
          f"{'resumed+save (s)':>16} {'of which state load':>19} {'state bytes':>11} "
          f"{'resumed/full':>12}")
    for size, new, full_s, resumed_s, saved_s, load_s, state_bytes in rows:
        print(f"{size:>9,} {new:>10,} {full_s:>9.3f} {resumed_s:>11.3f} {saved_s:>16.3f} "
              f"{load_s:>19.3f} {state_bytes:>11,} {100 * resumed_s / full_s:>11.1f}%")
    if grown:
        print(f"the last state grown to K exchange ids: load, {args.new} new ids added (and "
              "one it holds looked up), saved again")
        print(f"{'ids':>9} {'load (s)':>9} {'add (s)':>8} {'save (s)':>9} {'state bytes':>11}")
        for ids, load_s, add_s, save_s, state_bytes in grown:
            print(f"{ids:>9,} {load_s:>9.3f} {add_s:>8.3f} {save_s:>9.3f} {state_bytes:>11,}")
    first, last = rows[0], rows[-1]
    print(f"log grew {last[0] / first[0]:.1f}x: full replay {last[2] / first[2]:.1f}x slower, "
          f"resumed audit {last[3] / first[3]:.2f}x, resumed+save {last[4] / first[4]:.2f}x "
          f"(new events {last[1] / first[1]:.1f}x)")


if __name__ == "__main__":
    main()
