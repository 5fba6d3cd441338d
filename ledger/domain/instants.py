"""Exact instants: an event time as an exact number of seconds since the Unix epoch.

schemas/README.md, "Format v2 (pools)": claim periods and the ADL window compare times exactly
(`τ(t)`, fraction digits included), so nothing here goes through a float timestamp.
"""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction

from auditor.formats.wire import TIME

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_seconds(time: str) -> Fraction:
    """τ(time): seconds from 1970-01-01T00:00:00Z to a wire time, exactly (ValueError if the
    text is not a wire time or not a real instant)."""
    if not TIME.fullmatch(time):
        raise ValueError(f"time: {time!r} is not an RFC 3339 UTC time")
    whole, _, fraction = time[:-1].partition(".")
    moment = datetime.fromisoformat(whole).replace(tzinfo=UTC)  # refuses February 30
    delta = moment - _EPOCH
    seconds = delta.days * 86400 + delta.seconds  # exact integers, no float timestamp
    return seconds + Fraction(int(fraction or "0"), 10 ** len(fraction))
