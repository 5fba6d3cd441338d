"""One batch of the bus follower (ledger.service.follow), on the database side: check each
message as an import line, commit the good ones in stream order together with the new stream
position, and dead-letter the others.

A dead letter is published (and stored by the bus) before the transaction that moves the
position past its message begins, never inside it: a slow bus delays this follower only, and
holds no lock on the fund. A batch redone after a crash publishes it again under the same
message id, which the dead-letter stream drops (its duplicate window).

A conflict or a fact the fund's rules refuse is found while the batch is applied; the batch
is rolled back, its dead letter published, and the batch redone without it (the import
raises at the first bad record, so each redo removes one, and a refused record stays refused:
only the records before it decide). The good messages still commit in stream order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ledger.domain.fund import Fund
from ledger.domain.records import RecordError, parse_line
from ledger.service.application import Ledger
from ledger.service.importer import ImportReport, commit_facts
from ledger.store.cursors import advance_cursor

# (stream sequence, message bytes, the stream's receive time in epoch seconds)
Item = tuple[int, bytes, float]
# A message decoded and checked as an import line: its record, or why it is refused.
Parsed = dict[str, Any] | str


@dataclass
class Batch:
    """What one committed batch did (given to `on_batch` observers)."""

    first: int
    last: int  # the stream position now committed
    report: ImportReport
    dead: list[tuple[int, str]]
    published: list[float]  # the stream's receive times (epoch seconds) of its new messages
    committed: float  # epoch seconds of the commit


def reason(error: RecordError, sequence: int) -> str:
    """The import's `line N: field: reason`, naming the stream sequence instead."""
    return f"stream sequence {sequence}: {str(error).removeprefix(f'line {error.line}: ')}"


def parse_items(items: Iterable[tuple[int, bytes]]) -> dict[int, Parsed]:
    """Each (sequence, bytes) decoded and checked (`records.parse_line`): the record, or
    the dead letter's reason. Pure: the follower runs it for the next batch while the one
    before commits (the database's waits release the interpreter)."""
    parsed: dict[int, Parsed] = {}
    for sequence, data in items:
        try:
            parsed[sequence] = parse_line(sequence, data)
        except RecordError as error:
            parsed[sequence] = reason(error, sequence)
    return parsed


def commit_batch(ledger: Ledger, fund_name: str, stream: str, fund: Fund | None,
                 position: int, items: list[Item],
                 dead_letter: Callable[[list[tuple[int, str]], dict[int, bytes]], None],
                 created: str | None = None,
                 parsed: Mapping[int, Parsed] | None = None) -> tuple[Batch, Fund | None]:
    """Commit `items` (sorted by sequence, all past `position`) and move the stream position
    (in the stream created at `created`) from `position` to the last one's, in one
    transaction; `dead_letter(dead, data)` publishes the refused ones first, outside it.
    Returns the batch and the fund to use next (None: reload it).

    `parsed`: what `parse_items` made of some of the items already (the others are parsed here).

    Raises CursorMoved when another follower moved the position first (nothing written)."""
    last = items[-1][0]
    dead: list[tuple[int, str]] = []
    records: list[tuple[int, dict[str, Any]]] = []
    known = parsed or {}
    missing = parse_items((s, d) for s, d, _ in items if s not in known)
    for sequence, _, _ in items:
        outcome = known[sequence] if sequence in known else missing[sequence]
        if isinstance(outcome, str):
            dead.append((sequence, outcome))
        else:
            records.append((sequence, outcome))

    payloads = {s: d for s, d, _ in items}
    stored: set[int] = set()

    def inside(connection: Any) -> None:
        advance_cursor(connection, fund_name, stream, position, last, created)

    while True:
        new = [d for d in dead if d[0] not in stored]
        if new:  # stored by the bus before the position can pass them
            dead_letter(new, payloads)
            stored.update(sequence for sequence, _ in new)
        current = fund or ledger.get_fund(fund_name)
        try:
            fund, report = commit_facts(ledger, current, records, inside=inside)
            break
        except RecordError as error:  # a conflict or a refused fact: split it out
            fund = None  # the fund object may hold what was rolled back
            records = [(s, r) for s, r in records if s != error.line]
            dead.append((error.line, reason(error, error.line)))
            dead.sort()
    return Batch(first=items[0][0], last=last, report=report, dead=dead,
                 published=[t for s, _, t in items if s > position],
                 committed=time.time()), fund
