"""`backstop import`: exchange facts from JSONL into the fund, in batches, all or nothing.

By default the whole file is one transaction, written in batches of `batch_size` facts (one
`Ledger.record` per batch): any bad record rolls everything back. With `batch_commit` each batch commits
on its own, so a huge file can be resumed: re-importing skips what is already recorded.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Connection

from auditor.formats.bounds import CHUNK, LARGE_HEAD, chunk_count
from auditor.formats.clip import clip, shorten
from auditor.formats.schemas import first_def_error, first_error
from auditor.formats.wire import canonical_bytes
from ledger.domain import poolfund
from ledger.domain.errors import FactError
from ledger.domain.facts import joined_liquidation, normal_form, normal_form_of_event
from ledger.domain.fund import Fund, export_event
from ledger.domain.records import RecordError, decode_json, numbered_lines
from ledger.service.application import Ledger
from ledger.service.factfile import parsed_batches
from ledger.store.projections import select_where_in
from ledger.store.tables import exchange_ids

DEFAULT_BATCH_SIZE = 2000
NEARBY = 256  # collided positions this close are read back from the log in one range


@dataclass
class ImportReport:
    """What an import did."""

    lines: int = 0
    recorded: int = 0
    already_recorded: int = 0
    events: int = 0
    batches: int = 0
    retries: int = 0  # transactions redone because another writer held or won the fund
    by_type: dict[str, int] = field(default_factory=dict)

    def merge(self, other: ImportReport) -> None:
        """Add another report's counts to this one."""
        for name in ("lines", "recorded", "already_recorded", "events", "batches", "retries"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for kind, count in other.by_type.items():
            self.by_type[kind] = self.by_type.get(kind, 0) + count


# (line number, record, (fact type, exchange id))
_Parsed = tuple[int, dict[str, Any], tuple[str, str]]


_COMMANDS: dict[str, Callable[[Fund, dict[str, Any]], None]] = {
    "liquidation": Fund.record_liquidation,
    "fee": Fund.record_fee,
    "capital": Fund.record_capital,
    "rebalance": Fund.record_rebalance,
    "observation": Fund.record_observation,
    "policy": lambda fund, r: fund.set_policy(r["policy"], time=r["time"], ref=r["id"]),
}
_NOT_V1 = poolfund.not_v1  # a format 2 fact given to a v1 fund


def _recorded_positions(connection: Connection, fund: str,
                        keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Log positions of the events recorded for those of `keys` already seen: one lookup
    of (fund, kind, id), the table's primary key, for all of them."""
    rows = select_where_in(connection, exchange_ids, {"fund": fund}, ("kind", "exchange_id"),
                           keys)
    return {(row.kind, row.exchange_id): row.position for row in rows}


def _recorded_facts(ledger: Ledger, fund: str, positions: Iterable[int]) -> dict[int, Any]:
    """The normal form of the fact behind each event at `positions`, read back from the log
    in runs of nearby positions (a re-imported file collides on one long run)."""
    wanted_set = set(positions)
    wanted = sorted(wanted_set)
    facts: dict[int, Any] = {}
    run_start = 0
    for i, position in enumerate(wanted):
        if i + 1 == len(wanted) or wanted[i + 1] - position > NEARBY:
            for event in ledger.log_events(fund, wanted[run_start], position + 1):
                if event["index"] in wanted_set:
                    facts[event["index"]] = normal_form_of_event(_with_chunks(ledger, fund,
                                                                              event))
            run_start = i + 1
    return facts


def _with_chunks(ledger: Ledger, fund: str, event: dict[str, Any]) -> dict[str, Any]:
    """A large liquidation's head joined with its chunks, which follow it in the log (format
    v1.1); any other event as it is."""
    if event["type"] != LARGE_HEAD:
        return event
    start = event["index"] + 1
    chunks = list(ledger.log_events(fund, start,
                                    start + chunk_count(event["data"]["counterparty_count"])))
    return joined_liquidation(event, chunks)


def import_file(ledger: Ledger, fund: str, path: Path, *, batch_size: int = DEFAULT_BATCH_SIZE,
                batch_commit: bool = False, progress: Callable[[int], None] | None = None,
                parallel: bool | None = None) -> ImportReport:
    """Import a JSONL file of exchange facts; `progress` gets the bytes consumed so far.

    `parallel` decodes and checks records in a worker process (default: for large files,
    see ledger.service.factfile).

    A concurrent writer on the same fund makes the loser wait for it or start over
    (idempotency turns what the winner already recorded into no-ops), with backoff, for up to
    the ledger's lock timeout; then `busy.FundBusy` says who holds the fund.
    """
    retries = 0

    def attempt() -> ImportReport:
        with path.open("rb") as stream:
            return _import_stream(ledger, fund, stream, batch_size=batch_size,
                                  batch_commit=batch_commit, progress=progress,
                                  parallel=parallel)

    def count(_: BaseException) -> None:
        nonlocal retries
        retries += 1

    report = ledger.retry(fund, attempt, on_retry=count)
    report.retries += retries
    return report


def _import_stream(ledger: Ledger, fund_name: str, stream: BinaryIO, *, batch_size: int,
                   batch_commit: bool, progress: Callable[[int], None] | None,
                   parallel: bool | None) -> ImportReport:
    report = ImportReport()
    with ExitStack() as stack:
        outer = None if batch_commit else stack.enter_context(ledger.transaction())
        fund = ledger.get_fund(fund_name)
        for records, consumed in parsed_batches(stream, batch_size, parallel=parallel):
            parsed = [(number, record, (record["type"], record["id"]))
                      for number, record in records]
            with _collector_paused():
                if outer is not None:
                    _apply_batch(ledger, fund, outer, parsed, report)
                else:
                    fund = _commit_batch(ledger, fund, parsed, report)
            if progress is not None:
                progress(consumed)
    return report


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while one batch is applied and written.

    A batch allocates some ten objects per fact (records, events, export lines, rows) that
    live until it is written; the collector's passes over them (and, in its full passes,
    over every module's objects) took about 15% of an import. Reference counting still frees
    the batch's objects when they go; cyclic garbage, if any, waits for the collector's next
    pass after the batch, as allocations during the batch still count towards it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _commit_batch(ledger: Ledger, fund: Fund, parsed: list[_Parsed], report: ImportReport,
                  inside: Callable[[Connection], None] | None = None) -> Fund:
    """Apply and commit one batch on its own; when another writer held or won the fund,
    reload it (the other writer's events are in it now) and redo the batch. `inside` runs in
    the batch's transaction, after the batch is recorded."""
    current = fund

    def attempt() -> Fund:
        batch_report = ImportReport()
        with ledger.transaction() as connection:
            _apply_batch(ledger, current, connection, parsed, batch_report)
            if inside is not None:
                inside(connection)
        report.merge(batch_report)
        return current

    def reload(_: BaseException) -> None:
        nonlocal current
        report.retries += 1
        current = ledger.get_fund(fund.name)

    return ledger.retry(fund.name, attempt, on_retry=reload)


def commit_facts(ledger: Ledger, fund: Fund, records: list[tuple[int, dict[str, Any]]], *,
                 inside: Callable[[Connection], None] | None = None) -> tuple[Fund, ImportReport]:
    """Apply checked records ((number, record) from `records.parse_line`) to `fund` and
    commit them as one batch, as `import --batch-commit` commits each of its batches.

    `inside(connection)` runs in the same transaction once the batch is recorded, before the
    commit (the bus follower moves its stream position there). A bad record raises
    RecordError with its number and nothing is written; the fund object may then hold
    uncommitted changes, so the caller reloads it. Returns the fund to use next and the report.
    """
    parsed = [(number, record, (record["type"], record["id"])) for number, record in records]
    report = ImportReport()
    with _collector_paused():
        return _commit_batch(ledger, fund, parsed, report, inside), report


def _apply_batch(ledger: Ledger, fund: Fund, connection: Connection, parsed: list[_Parsed],
                 report: ImportReport) -> None:
    """Run each new fact's command on the fund and record the batch in `connection`.

    Facts of earlier batches are found in the idempotency index (written in the same
    transaction, or committed); facts earlier in this batch are in `seen`. Normal forms are
    only computed for an id seen again: a new fact's command checks its fields itself.
    """
    recorded = _recorded_positions(connection, fund.name, [key for _, _, key in parsed])
    earlier = _recorded_facts(ledger, fund.name, recorded.values()) if recorded else {}
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    # The fund's format picks its commands once (a v1 fund runs no v2 code per fact).
    commands, markets = ((poolfund.COMMANDS, fund.markets) if poolfund.is_v2(fund)
                         else (_COMMANDS, None))
    for number, record, key in parsed:
        report.lines += 1
        if key in seen or key in recorded:
            try:
                normal = normal_form(record, fund.assets, markets)
                first = (normal_form(seen[key], fund.assets, markets) if key in seen
                         else earlier[recorded[key]])
            except FactError as error:
                raise RecordError(number, str(error)) from None
            if first != normal:
                raise RecordError(number, f"id: {key[0]} {key[1]!r} is already "
                                  "recorded with different fields (conflict)")
            report.already_recorded += 1
            continue
        try:
            commands.get(record["type"], _NOT_V1)(fund, record)
        except ValueError as error:
            raise RecordError(number, str(error)) from None
        seen[key] = record
        report.recorded += 1
        report.by_type[record["type"]] = report.by_type.get(record["type"], 0) + 1
    report.events += ledger.record(fund, connection)
    report.batches += 1


def restore_export(ledger: Ledger, path: Path, *, batch_size: int = DEFAULT_BATCH_SIZE,
                   progress: Callable[[int], None] | None = None) -> ImportReport:
    """Rebuild a fund in this database from an event export, in one transaction.

    Each fact is re-applied through the fund's rules (the waterfall re-derives every outcome)
    and every regenerated event must equal the export's line byte for byte: a restore is also
    a check of the export.
    """
    report = ImportReport()
    consumed = 0
    with path.open("rb") as stream, ledger.transaction() as connection:
        lines = numbered_lines(stream)
        fund: Fund | None = None
        expected: list[tuple[int, bytes, dict[str, Any]]] = []
        large: list[dict[str, Any]] = []  # a large liquidation's head and chunks so far

        def flush() -> None:
            assert fund is not None
            for (number, raw, exported), event in zip(expected, fund.pending_events,
                                                      strict=True):
                derived = export_event(event, fund.name)
                if canonical_bytes(derived) != raw.rstrip(b"\r\n"):
                    _check_event_schema(number, exported)  # a malformed field, named
                    field = _first_difference(exported, derived)
                    raise RecordError(number, f"{field}: differs from the event re-derived "
                                      "from the facts" if field is not None else
                                      "(record): not in canonical form (RFC 8785)")
            report.events += ledger.record(fund, connection)
            report.batches += 1
            expected.clear()

        for number, raw in lines:
            consumed += len(raw)
            event = _parse_event(number, raw)
            report.lines += 1
            if event["index"] != report.lines - 1:
                raise RecordError(number, f"index: expected {report.lines - 1}, "
                                  f"got {event['index']!r}")
            if fund is None:
                fund = _open_from_export(ledger, number, event)
            elif event["type"] == LARGE_HEAD or (large and event["type"] == CHUNK):
                large.append(event)  # re-applied once the last chunk is read
                count = _large_count(number, large[0])
                if len(large) == 1 + chunk_count(count):
                    _reapply(fund, number, joined_liquidation(large[0], large[1:]), report)
                    large.clear()
            else:
                _reapply(fund, number, event, report)
            expected.append((number, raw, event))
            # Flush only between facts: a liquidation's derived events come in one piece.
            if len(expected) >= batch_size and len(fund.pending_events) == len(expected):
                flush()
                if progress is not None:
                    progress(consumed)
        if fund is None:
            raise RecordError(0, "(file): the export is empty")
        if len(fund.pending_events) != len(expected):
            raise RecordError(number, "(file): the export ends inside a liquidation's events")
        flush()
    return report


def _large_count(number: int, head: dict[str, Any]) -> int:
    """A large liquidation head's counterparty count, or RecordError naming the field."""
    count = head["data"].get("counterparty_count") if isinstance(head["data"], dict) else None
    if type(count) is not int or count < 1:
        _check_event_schema(number, head)
        raise RecordError(number, "data.counterparty_count: not a positive integer")
    return count


def _parse_event(number: int, raw: bytes) -> dict[str, Any]:
    event = decode_json(number, raw)
    if not isinstance(event, dict):
        raise RecordError(number, "(record): not an exported event (not a JSON object)")
    for key in ("index", "type", "data", "time", "ref"):
        if key not in event:
            raise RecordError(number, f"{key}: missing, so not an exported event")
    return event


def _first_difference(given: Any, derived: Any, path: str = "") -> str | None:
    """The path of the first field where an export line and the re-derived event differ."""
    if isinstance(given, dict) and isinstance(derived, dict):
        for key in sorted(set(given) | set(derived), key=str):
            if key not in given or key not in derived:
                return f"{path}{key}"
            found = _first_difference(given[key], derived[key], f"{path}{key}.")
            if found is not None:
                return found
        return None
    if type(given) is not type(derived) or given != derived:
        return path.removesuffix(".") or "(record)"
    return None


def _check_event_schema(number: int, event: dict[str, Any]) -> None:
    """Raise RecordError naming the first field of `event` that breaks event.schema.json.

    Interpreting the schema per event would dominate a restore's time, and re-deriving
    each event checks it byte for byte anyway, so the schema is consulted for the opening
    event and to word the error once something went wrong."""
    problem = first_error("event", event)
    if problem is not None:
        raise RecordError(number, problem)


def _open_from_export(ledger: Ledger, number: int, event: dict[str, Any]) -> Fund:
    if event["type"] != "fund_opened":
        raise RecordError(number, f"type: an export starts with fund_opened, not "
                          f"{clip(event['type'])}")
    if event.get("version") == 2:  # not yet in event.schema.json: checked as its config
        data = event["data"]
        problem = first_def_error("fund", "fund_v2", {**data, "format": 2, "policy": {}}
                                  if isinstance(data, dict) else data)
        if problem is not None:
            raise RecordError(number, f"data.{problem}")
    else:
        _check_event_schema(number, event)
    if ledger.fund_exists(event["data"]["fund"]):
        raise RecordError(number, f"data.fund: a fund named {event['data']['fund']!r} "
                          "already exists in this database")
    try:
        if event.get("version") == 2:  # fund_opened/2: a v2 log
            return poolfund.open_from_data(event["time"], event["data"])
        return Fund(time=event["time"], ref=event["ref"], data=event["data"])
    except ValueError as error:
        raise RecordError(number, str(error)) from None


def _reapply(fund: Fund, number: int, event: dict[str, Any], report: ImportReport) -> None:
    """Re-apply the fact behind an exported event; derived events are regenerated, not read."""
    try:
        fact = normal_form_of_event(event)
        if fact is None:
            return
        table = poolfund.COMMANDS if poolfund.is_v2(fund) else _COMMANDS
        table.get(fact["type"], _NOT_V1)(fund, fact)
    except (KeyError, TypeError, AttributeError) as error:
        _check_event_schema(number, event)
        raise RecordError(number, f"data: malformed event ({shorten(str(error), 80)})") from None
    except ValueError as error:
        _check_event_schema(number, event)
        raise RecordError(number, str(error)) from None
    report.recorded += 1
    report.by_type[fact["type"]] = report.by_type.get(fact["type"], 0) + 1
