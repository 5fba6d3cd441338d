"""Two writer processes on one fund: optimistic concurrency must never lose an update."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from ledger.service.importer import import_file
from tests.factories import TIME, fee, fund_config, write_jsonl


def _writer(url: str, path: str) -> None:
    from ledger.service.application import Ledger

    ledger = Ledger(url)
    try:
        import_file(ledger, "main", Path(path), batch_size=5, batch_commit=True)
    finally:
        ledger.close()


def test_two_processes_on_postgres_end_with_the_exact_sum(fresh_pg_url: str, make_ledger,
                                                          tmp_path: Path) -> None:
    ledger = make_ledger(fresh_pg_url)
    ledger.open_fund(fund_config(), TIME)
    # Writer A adds 0.01 x 150, writer B 1.00 x 150: any lost batch shows in the sum.
    a = write_jsonl(tmp_path / "a.jsonl", [fee(f"a{i}", "0.01", "acct-a") for i in range(150)])
    b = write_jsonl(tmp_path / "b.jsonl", [fee(f"b{i}", "1.00", "acct-b") for i in range(150)])
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(fresh_pg_url, str(p))) for p in (a, b)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]
    fund = ledger.get_fund("main")
    assert fund.balances == {"USDT": 150 * 1 + 150 * 100}
    assert fund.log_size == 2 + 300
