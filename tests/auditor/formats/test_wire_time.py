"""The wire time is written in one place (auditor.formats.wire.format_time / parse_time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from auditor.formats.wire import TIME, format_instant, format_time, parse_instant, parse_time


def test_format_time_writes_utc_whole_seconds_and_parse_time_reads_it_back() -> None:
    moment = datetime(2020, 3, 12, 1, 2, 3, 999_999, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(moment) == "2020-03-11T23:02:03Z"
    assert TIME.fullmatch(format_time(moment))
    assert parse_time("2020-03-11T23:02:03Z") == datetime(2020, 3, 11, 23, 2, 3, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_time("2020-03-11 23:02:03")


def test_format_instant_keeps_a_fraction_and_is_format_time_without_one() -> None:
    assert format_instant(datetime(2020, 3, 12, 0, 59, 0, 500_000, tzinfo=UTC)) == \
        "2020-03-12T00:59:00.500000Z"
    assert format_instant(datetime(2020, 3, 12, 2, 59, 0, 7, tzinfo=timezone(timedelta(hours=2)))) \
        == "2020-03-12T00:59:00.000007Z"
    assert format_instant(datetime(2020, 3, 12, 0, 59, tzinfo=UTC)) == "2020-03-12T00:59:00Z"


@pytest.mark.parametrize(("text", "expected"), [
    ("2020-03-12T00:59:00Z", datetime(2020, 3, 12, 0, 59, tzinfo=UTC)),
    ("2020-03-12T00:59:00.5Z", datetime(2020, 3, 12, 0, 59, 0, 500_000, tzinfo=UTC)),
    ("2020-03-12T00:59:00.000007Z", datetime(2020, 3, 12, 0, 59, 0, 7, tzinfo=UTC)),
    ("2024-02-29T23:59:59Z", datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)),
])
def test_parse_instant_reads_every_wire_time(text: str, expected: datetime) -> None:
    assert parse_instant(text) == expected
    assert parse_instant(text).utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", [
    "2020-02-30T00:00:00Z",  # no such day
    "2020-03-12T24:00:00Z", "2020-03-12T23:59:60Z",  # hour 24, a leap second
    "2020-03-12T00:59:00", "2020-03-12T00:59:00+00:00", "2020-03-12 00:59:00Z",  # not the form
    "2020-03-12T00:59:00.1234567Z", "2020-03-12T00:59Z", "", None, 1583974740,
])
def test_parse_instant_refuses_anything_else(text: object) -> None:
    with pytest.raises(ValueError):
        parse_instant(text)
