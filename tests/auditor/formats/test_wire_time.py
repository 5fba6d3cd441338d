"""The wire time is written in one place (auditor.formats.wire.format_time / parse_time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from auditor.formats.wire import TIME, format_time, parse_time


def test_format_time_writes_utc_whole_seconds_and_parse_time_reads_it_back() -> None:
    moment = datetime(2020, 3, 12, 1, 2, 3, 999_999, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(moment) == "2020-03-11T23:02:03Z"
    assert TIME.fullmatch(format_time(moment))
    assert parse_time("2020-03-11T23:02:03Z") == datetime(2020, 3, 11, 23, 2, 3, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_time("2020-03-11 23:02:03")
