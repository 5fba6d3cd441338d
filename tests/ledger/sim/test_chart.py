"""The crash chart: a real PNG with the three named series."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import pytest

from ledger.sim.chart import SERIES, write_chart

TIMES = [f"2020-03-12T{h:02d}:00:00Z" for h in range(6)]
PRICES = ["7938.0", "7650.5", "6900.0", "5900.0", "4644.0", "4750.5"]
FUND = [100000, 98000, 40000, 0, 0, 1500]
RATIOS = [Fraction(45, 10000), "0.0044", "0.0019", 0, Fraction(0), "0.0001"]


def test_writes_a_png_with_three_labelled_series(tmp_path: Path) -> None:
    legends: list[list[str]] = []

    def collect(figure) -> None:
        for axes in figure.axes:
            legend = axes.get_legend()
            if legend is not None:
                legends.append([text.get_text() for text in legend.get_texts()])

    path = tmp_path / "crash.png"
    write_chart(str(path), TIMES, PRICES, FUND, RATIOS, title="test", on_figure=collect)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, chunk = struct.unpack(">I4s", data[8:16])
    assert chunk == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    assert width > 400 and height > 300
    assert sorted(label for legend in legends for label in legend) == sorted(SERIES)
    assert set(SERIES) == {"price", "fund balance", "coverage ratio"}


def test_series_of_different_lengths_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="equal lengths"):
        write_chart(str(tmp_path / "x.png"), TIMES, PRICES[:-1], FUND, RATIOS)
    assert not (tmp_path / "x.png").exists()
