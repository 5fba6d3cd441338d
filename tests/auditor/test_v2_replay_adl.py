"""Vector T1 (schemas/README.md "ADL trigger") as a whole v2 log (tests/auditor/v2_logs.py):
the auditor re-derives the `adl_started/1` at index 7 and the `adl_ended/1` at index 11."""

from __future__ import annotations

from pathlib import Path

from tests.auditor.v2_kit import lines, replay, write
from tests.auditor.v2_logs import (
    T1_EVENTS,
    T1_FUND,
    T1_METRICS,
    T1_POLICY,
    T1_RESERVES,
    T1_TOTALS,
)


def test_t1_verifies(tmp_path: Path) -> None:
    events, snap, key = write(tmp_path, T1_EVENTS, T1_FUND, reserves=T1_RESERVES,
                              totals=T1_TOTALS, accounts=1, policy=T1_POLICY, metrics=T1_METRICS)
    code, doc = replay(events, snap, key)
    assert (code, doc["reason"]) == (0, None)
    assert doc["pools"] == {"main": {"USDT": "710.00"}}
    assert (doc["events"], doc["liquidations"]) == (12, 2)


def test_t1_ends_out_of_adl_and_in_adl_when_cut_before_the_end() -> None:
    from auditor.replay import replay as run

    assert run(lines(T1_EVENTS, T1_FUND)).adl_pools == []
    assert run(lines(T1_EVENTS[:10], T1_FUND)).adl_pools == ["main"]
