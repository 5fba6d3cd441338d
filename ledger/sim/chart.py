"""A PNG of a crash: price, insurance-fund balance and coverage ratio over time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from fractions import Fraction
from typing import Any

from auditor.formats.wire import parse_instant

Number = str | int | Fraction

SERIES = ("price", "fund balance", "coverage ratio")


def _float(value: Number) -> float:
    # Only for plotting: the exact values never come back from here.
    return float(Fraction(value) if isinstance(value, str) else value)


def _time(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return parse_instant(value)


def write_chart(path: str, times: Sequence[str | datetime], prices: Sequence[Number],
                fund_balances: Sequence[Number], coverage_ratios: Sequence[Number],
                title: str = "Insurance fund through the crash",
                on_figure: Callable[[Any], None] | None = None) -> None:
    """Write a PNG with the price (top) and the fund balance with its coverage ratio
    (fund / open-interest notional, on a twin axis) below it.

    All series have one value per time; values may be decimal strings, Fractions or ints.
    `on_figure`, if given, is called with the matplotlib Figure before it is saved.
    """
    if not (len(times) == len(prices) == len(fund_balances) == len(coverage_ratios)):
        raise ValueError("write_chart: times and the three series must have equal lengths")
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede the pyplot import
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    when = [_time(t) for t in times]
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 6.5),
                                      gridspec_kw={"height_ratios": [1, 1]})
    try:
        top.plot(when, [_float(p) for p in prices], color="tab:blue", lw=1.2, label=SERIES[0])
        top.set_ylabel("mark price")
        top.grid(alpha=0.3)
        top.legend(loc="upper right")
        top.set_title(title)

        bottom.plot(when, [_float(f) for f in fund_balances], color="tab:green", lw=1.4,
                    label=SERIES[1])
        bottom.set_ylabel("fund balance")
        bottom.set_ylim(bottom=0)
        bottom.grid(alpha=0.3)
        ratio_axis = bottom.twinx()
        ratio_axis.plot(when, [_float(r) * 100 for r in coverage_ratios], color="tab:red",
                        lw=1.0, ls="--", label=SERIES[2])
        ratio_axis.set_ylabel("coverage ratio (% of OI notional)")
        ratio_axis.set_ylim(bottom=0)
        # One legend for both axes of the lower panel.
        handles = bottom.get_legend_handles_labels()[0] + ratio_axis.get_legend_handles_labels()[0]
        bottom.legend(handles, [h.get_label() for h in handles], loc="upper right")
        date_format = mdates.DateFormatter("%m-%d %H:%M")  # type: ignore[no-untyped-call]
        bottom.xaxis.set_major_formatter(date_format)
        fig.autofmt_xdate()
        fig.tight_layout()
        if on_figure is not None:
            on_figure(fig)
        fig.savefig(path, format="png", dpi=110, metadata={"Software": None})
    finally:
        plt.close(fig)
