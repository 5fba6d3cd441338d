"""The v2 replay's windowed peak (auditor.v2_adl: change points and a monotone deque) equals
the plain definition (auditor.adl_rules.peak_of over the whole series) at every index, on
seeded random series with repeated times, flat runs, ties and a window that changes."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import pytest

from auditor.adl_rules import peak_of
from auditor.v2_adl import AdlBook


def time_of(seconds: int) -> str:
    day, rest = divmod(seconds, 86400)
    return f"2026-01-{1 + day:02d}T{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}Z"


@pytest.mark.parametrize("seed", range(6))
def test_the_windowed_peak_is_the_plain_definitions(seed: int) -> None:
    rng = random.Random(seed)
    stub: Any = SimpleNamespace(times=[], micros=[], decimals={"USDT": 2})
    book = AdlBook(stub)
    first = 3  # the pool is created at index 3
    clock, balance = 0, 0
    series: list[tuple[str, int]] = []
    for index in range(400):
        clock += rng.choice([0, 0, 1, 7, 60, 600, 3600])
        stub.times.append(time_of(clock))
        stub.micros.append(clock * 1_000_000)  # as the replay keeps it: tau in microseconds
        if index < first:
            continue
        if index == first:
            book.created("main", first)
        elif rng.random() < 0.6:
            balance = max(0, balance + rng.choice([-300, -50, 0, 50, 50, 200, 1000]))
            book.changed("main", "USDT", index, balance)
        series.append((stub.times[index], balance))
        window = 7200 if index < 250 else rng.choice([600, 7200, 86400])
        assert book._window("main", "USDT", window, index) == peak_of(series, first, window), index
