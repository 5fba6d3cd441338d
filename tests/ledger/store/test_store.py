"""Store conformance suite: every test runs on SQLite and on PostgreSQL (see conftest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from ledger.service import application
from ledger.service.application import Ledger
from ledger.service.exporting import write_export
from ledger.service.importer import RecordError, import_file, restore_export
from ledger.service.queries import rebuild_projections
from ledger.store.tables import accounts, exchange_ids
from tests.factories import TIME, capital, crash_records, fee, fund_config, write_jsonl


def balances(ledger: Ledger, fund: str = "main") -> dict[str, int]:
    return dict(ledger.get_fund(fund).balances)


def id_count(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(exchange_ids)).scalar_one()


def test_crash_scenario_balances(db_url: str, make_ledger, tmp_path: Path) -> None:
    ledger = make_ledger(db_url)
    ledger.open_fund(fund_config(), TIME)
    report = import_file(ledger, "main", write_jsonl(tmp_path / "f.jsonl", crash_records()))
    assert (report.recorded, report.events) == (4, 9)
    assert balances(ledger) == {"USDT": 150}
    account_totals = rebuild_projections(ledger, "main")
    assert account_totals["unchanged"] and account_totals["log_root_matches"]


def test_reimport_same_file_changes_nothing(db_url: str, make_ledger, tmp_path: Path) -> None:
    ledger = make_ledger(db_url)
    ledger.open_fund(fund_config(), TIME)
    facts = write_jsonl(tmp_path / "f.jsonl", crash_records())
    import_file(ledger, "main", facts)
    first = write_export(ledger, "main", tmp_path / "a.jsonl", ledger.get_fund("main").log_size)
    again = import_file(ledger, "main", facts)
    assert (again.recorded, again.already_recorded, again.events) == (0, 4, 0)
    write_export(ledger, "main", tmp_path / "b.jsonl", ledger.get_fund("main").log_size)
    assert first == 11
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_same_id_different_fields_is_a_conflict(db_url: str, make_ledger, tmp_path: Path) -> None:
    ledger = make_ledger(db_url)
    ledger.open_fund(fund_config(), TIME)
    import_file(ledger, "main", write_jsonl(tmp_path / "a.jsonl", [fee("f1", "1.50")]))
    with pytest.raises(RecordError, match=r"^line 2: id: fee 'f1' is already recorded with "
                                          r"different fields \(conflict\)$"):
        import_file(ledger, "main", write_jsonl(tmp_path / "b.jsonl",
                                                [fee("f2", "2.00"), fee("f1", "1.51")]))
    assert balances(ledger) == {"USDT": 150}
    assert ledger.get_fund("main").log_size == 3


@pytest.mark.parametrize("parallel", [False, True], ids=["inline", "worker"])
def test_invalid_5000th_record_writes_nothing(db_url: str, make_ledger, tmp_path: Path,
                                              parallel: bool) -> None:
    ledger = make_ledger(db_url)
    ledger.open_fund(fund_config(), TIME)
    records = [fee(f"f{i}", "0.01") for i in range(1, 5000)]
    bad = fee("f5000", "0.01")
    bad["amount"] = 0.01  # a float amount: the schema requires a decimal string
    records.append(bad)
    path = write_jsonl(tmp_path / "big.jsonl", records)
    with pytest.raises(RecordError, match=r"^line 5000: amount: 0.01 is not of type 'string'$"):
        import_file(ledger, "main", path, batch_size=1000, parallel=parallel)
    assert ledger.get_fund("main").log_size == 2
    assert balances(ledger) == {"USDT": 0}
    assert id_count(ledger) == 1  # only the initial policy's slot
    assert rebuild_projections(ledger, "main")["unchanged"]


def test_rule_violation_rolls_back_whole_file(db_url: str, make_ledger, tmp_path: Path) -> None:
    ledger = make_ledger(db_url)
    ledger.open_fund(fund_config(), TIME)
    path = write_jsonl(tmp_path / "w.jsonl",
                       [capital("c1", "10.00"), capital("w1", "10.01", direction="withdraw")])
    with pytest.raises(RecordError, match=r"^line 2: amount: 10.01 USDT exceeds the fund "
                                          r"balance 10.00 USDT$"):
        import_file(ledger, "main", path, batch_size=1)
    assert ledger.get_fund("main").log_size == 2
    assert id_count(ledger) == 1  # only the initial policy's slot


@pytest.mark.parametrize("parallel", [False, True], ids=["inline", "worker"])
def test_batch_commit_keeps_earlier_batches_and_resumes(db_url: str, make_ledger,
                                                        tmp_path: Path, parallel: bool) -> None:
    ledger = make_ledger(db_url)
    ledger.open_fund(fund_config(), TIME)
    records = [fee(f"f{i}", "1.00") for i in range(10)]
    records[7]["amount"] = "-1"
    path = write_jsonl(tmp_path / "b.jsonl", records)
    with pytest.raises(RecordError, match="^line 8: amount: "):
        import_file(ledger, "main", path, batch_size=3, batch_commit=True, parallel=parallel)
    assert balances(ledger) == {"USDT": 600}  # batches [0..2] and [3..5] committed
    records[7]["amount"] = "1"
    report = import_file(ledger, "main", write_jsonl(path, records), batch_commit=True)
    assert (report.recorded, report.already_recorded) == (4, 6)
    assert balances(ledger) == {"USDT": 1000}


def test_replay_from_zero_equals_incremental(db_url: str, make_ledger, tmp_path: Path) -> None:
    ledger = make_ledger(db_url)
    ledger.open_fund(fund_config(), TIME)
    for n in range(3):  # several imports, so projections were built incrementally
        import_file(ledger, "main", write_jsonl(tmp_path / f"{n}.jsonl",
                                                [fee(f"f{n}-{i}", "0.10", f"acct{i % 7}")
                                                 for i in range(40)]))
    import_file(ledger, "main", write_jsonl(tmp_path / "c.jsonl", crash_records()))
    report = rebuild_projections(ledger, "main")
    assert report == {"events": 2 + 120 + 9, "unchanged": True, "log_root_matches": True}


def test_export_then_restore_gives_identical_export(db_url: str, make_ledger,
                                                    tmp_path: Path) -> None:
    source = make_ledger(f"sqlite:///{tmp_path / 'source.sqlite'}")
    source.open_fund(fund_config(), TIME)
    import_file(source, "main", write_jsonl(tmp_path / "f.jsonl", crash_records()))
    size = source.get_fund("main").log_size
    write_export(source, "main", tmp_path / "one.jsonl", size)
    target = make_ledger(db_url)
    restore_export(target, tmp_path / "one.jsonl", batch_size=4)
    write_export(target, "main", tmp_path / "two.jsonl", size)
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()


def test_restore_rejects_a_tampered_outcome(db_url: str, make_ledger, tmp_path: Path) -> None:
    source = make_ledger(f"sqlite:///{tmp_path / 'source.sqlite'}")
    source.open_fund(fund_config(), TIME)
    import_file(source, "main", write_jsonl(tmp_path / "f.jsonl", crash_records()))
    write_export(source, "main", tmp_path / "one.jsonl", source.get_fund("main").log_size)
    lines = (tmp_path / "one.jsonl").read_bytes().splitlines(keepends=True)
    lines[4] = lines[4].replace(b'"amount":"28.05"', b'"amount":"28.06"')  # L1's fee
    (tmp_path / "bad.jsonl").write_bytes(b"".join(lines))
    target = make_ledger(db_url)
    with pytest.raises(RecordError, match=r"^line 5: data.amount: differs from the event "
                                          r"re-derived from the facts$"):
        restore_export(target, tmp_path / "bad.jsonl")
    assert not target.fund_exists("main")


def test_loading_uses_snapshots(db_url: str, make_ledger, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(application, "SNAPSHOT_INTERVAL", 50)
    ledger = make_ledger(db_url)
    ledger.open_fund(fund_config(), TIME)
    import_file(ledger, "main", write_jsonl(tmp_path / "f.jsonl",
                                            [fee(f"f{i}", "0.01") for i in range(120)]),
                batch_size=25)
    assert ledger.snapshots is not None
    snapshots = list(ledger.snapshots.get(ledger.get_fund("main").id))
    assert [s.originator_version for s in snapshots] == [52, 102]
    loaded = ledger.get_fund("main")
    assert (loaded.version, loaded.balances) == (122, {"USDT": 120})


@pytest.mark.parametrize("batch_size", [1, 2, 100])
def test_duplicates_inside_one_file(db_url: str, make_ledger, tmp_path: Path,
                                    batch_size: int) -> None:
    ledger = make_ledger(db_url)
    ledger.open_fund(fund_config(), TIME)
    same = [fee("f1", "1.00"), fee("f2", "2.00"), fee("f1", "1"), fee("f3", "3.00")]
    report = import_file(ledger, "main", write_jsonl(tmp_path / "a.jsonl", same),
                         batch_size=batch_size)
    assert (report.recorded, report.already_recorded) == (3, 1)  # "1" is the same as "1.00"
    assert balances(ledger) == {"USDT": 600}
    clash = [fee("g1", "1.00"), fee("g2", "2.00"), fee("g1", "1.01")]
    with pytest.raises(RecordError, match=r"^line 3: id: fee 'g1' is already recorded"):
        import_file(ledger, "main", write_jsonl(tmp_path / "b.jsonl", clash),
                    batch_size=batch_size)
    assert balances(ledger) == {"USDT": 600}


def test_derived_state_catches_up_with_the_log(db_url: str, make_ledger, tmp_path: Path) -> None:
    """Projections and log tiles that lag the log (wiped here) are caught up on the next write."""
    from ledger.store.logtree import log_tiles
    from ledger.store.projections import PROJECTION_TABLES

    ledger = make_ledger(db_url)
    ledger.open_fund(fund_config(), TIME)
    import_file(ledger, "main", write_jsonl(tmp_path / "a.jsonl", crash_records()))
    with ledger.transaction() as connection:
        for table in (*PROJECTION_TABLES, log_tiles):
            connection.execute(table.delete())
    import_file(ledger, "main", write_jsonl(tmp_path / "b.jsonl", [fee("f9", "0.25")]))
    with ledger.engine.connect() as connection:
        assert ledger.log_tree(connection, "main").size() == 12
    assert rebuild_projections(ledger, "main") == {"events": 12, "unchanged": True,
                                                   "log_root_matches": True}
    assert balances(ledger) == {"USDT": 175}


@pytest.mark.parametrize("batch_commit", [False, True])
def test_account_totals_after_a_rolled_back_import(db_url: str, make_ledger, tmp_path: Path,
                                                   batch_commit: bool) -> None:
    """A failed import must not leave in-process state behind (the account cache)."""
    ledger = make_ledger(db_url)
    ledger.open_fund(fund_config(), TIME)
    import_file(ledger, "main", write_jsonl(tmp_path / "a.jsonl", [fee("a1", "1.00", "x")]))
    failing = [fee("b1", "2.00", "x"), fee("b2", "4.00", "x"), {**fee("b3", "1.00"), "amount": "?"}]
    with pytest.raises(RecordError, match="^line 3: amount: "):
        import_file(ledger, "main", write_jsonl(tmp_path / "b.jsonl", failing), batch_size=2,
                    batch_commit=batch_commit)
    import_file(ledger, "main", write_jsonl(tmp_path / "c.jsonl", [fee("c1", "8.00", "x")]))
    expected = 100 + (600 if batch_commit else 0) + 800  # batch [b1, b2] committed on its own
    with ledger.engine.connect() as connection:
        row = connection.execute(select(accounts.c.fees).where(accounts.c.account == "x")).one()
    assert int(row.fees) == expected
    assert rebuild_projections(ledger, "main")["unchanged"]


def test_fund_events_are_stored_as_their_export_lines(db_url: str, make_ledger,
                                                      tmp_path: Path) -> None:
    """ledger.store.mapper: the stored bytes are the RFC 8785 export line (checked with the rfc8785
    package), and decoding them gives events equal to the ones that were recorded."""
    import rfc8785
    from eventsourcing.persistence import MapperDeserialisationError, StoredEvent

    ledger = make_ledger(db_url)
    opened = ledger.open_fund(fund_config(), TIME)
    fund = ledger.get_fund("main")
    fund.record_fee({**fee("f1", "1.5"), "time": "2020-03-12T01:02:03.25Z"})
    recorded = list(fund.pending_events)
    with ledger.transaction() as connection:
        ledger.record(fund, connection)
    stored = ledger.recorder.select_events(fund.id)
    assert [s.topic for s in stored] == ["backstop:fund_opened/1", "backstop:policy_set/1",
                                         "backstop:fee_inflow/1"]
    assert stored[2].state == rfc8785.dumps({
        "index": 2, "type": "fee_inflow", "version": 1, "fund": "main",
        "time": "2020-03-12T01:02:03.25Z", "ref": "f1",
        "data": {"kind": "trading_fee_share", "asset": "USDT", "amount": "1.50",
                 "account": "carol"}})
    assert list(ledger.log_lines("main")) == [s.state for s in stored]
    decoded = [ledger.mapper.to_domain_event(s) for s in stored]
    assert [vars(e) for e in decoded[2:]] == [vars(e) for e in recorded]
    assert str(decoded[2].timestamp) == "2020-03-12 01:02:03.250000+00:00"
    assert ledger.get_fund("main") == fund
    assert opened.created_on == decoded[0].timestamp
    # A fund event cannot go through the library's generic encoding (it lacks the name).
    with pytest.raises(TypeError, match="stored by Ledger.record"):
        ledger.mapper.to_stored_event(recorded[0])
    moved = StoredEvent(stored[2].originator_id, 5, stored[2].topic, stored[2].state)
    with pytest.raises(MapperDeserialisationError, match="index 2 is not version 5 - 1"):
        ledger.mapper.to_domain_event(moved)


def test_import_restores_the_gc_settings(db_url: str, make_ledger, tmp_path: Path) -> None:
    """An import leaves the process's GC settings as they were (it used to tune them: the
    ~4% it bought was not worth a process-wide side effect), also on an error."""
    import gc

    before = (gc.get_threshold(), gc.get_freeze_count())
    ledger = make_ledger(db_url)
    ledger.open_fund(fund_config(), TIME)
    import_file(ledger, "main", write_jsonl(tmp_path / "a.jsonl", [fee("f1", "1.00")]))
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
    with pytest.raises(RecordError):
        import_file(ledger, "main", write_jsonl(tmp_path / "b.jsonl", [fee("f1", "2.00")]))
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
    gc.freeze()  # a host that froze its own objects keeps them frozen, and its thresholds
    try:
        import_file(ledger, "main", write_jsonl(tmp_path / "c.jsonl", [fee("f2", "1.00")]))
        assert gc.get_threshold() == before[0] and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_a_time_that_is_no_real_instant_is_refused(db_url: str, make_ledger,
                                                   tmp_path: Path) -> None:
    """The schema checks a time's shape; February 30 has that shape but is refused, naming the
    field, and nothing is written."""
    ledger = make_ledger(db_url)
    ledger.open_fund(fund_config(), TIME)
    bad = {**fee("f2", "2.00"), "time": "2024-02-30T00:00:00Z"}
    with pytest.raises(RecordError, match=r"^line 2: time: '2024-02-30T00:00:00Z' is not a "
                                          r"valid UTC date-time \(day is out of range"):
        import_file(ledger, "main", write_jsonl(tmp_path / "a.jsonl", [fee("f1", "1.00"), bad]))
    assert ledger.get_fund("main").log_size == 2
    assert id_count(ledger) == 1


def test_compressing_or_encrypting_fund_events_is_refused(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Fund events are stored as their canonical lines: the library's compressor (or cipher)
    setting cannot apply to them, so a Ledger refuses to start with one."""
    monkeypatch.setenv("COMPRESSOR_TOPIC", "eventsourcing.compressor:ZlibCompressor")
    with pytest.raises(ValueError, match="^CIPHER_TOPIC / COMPRESSOR_TOPIC: fund events"):
        Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
