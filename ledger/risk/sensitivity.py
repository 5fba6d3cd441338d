"""The sensitivity table: the headline figures again with one model input scaled.

Each row reruns every selected scenario with the same seed (the same random streams: common
random numbers, so a row's difference from the base is the input's effect, not new noise)
and one input multiplied by a factor: the stochastic model's volatility, jump size or jump
intensity (the historical shapes and CSV paths do not use them), or every market's book
depth (the fills of every scenario do). Depth scales exactly: floor(depth x factor), at least
1 minor unit.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np

from auditor.formats.wire import format_amount, format_decimal
from ledger.risk import sizing
from ledger.risk.positions import Book
from ledger.risk.scenarios import ScenarioError

FACTORS = (Fraction(1, 2), Fraction(2))
INPUTS = ("vol", "jump_size", "jump_intensity", "depth")


def _plain(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else repr(float(value))


def _scaled_depth(book: Book, factor: Fraction) -> Book:
    depth = [max(1, int(d) * factor.numerator // factor.denominator) for d in book.depth]
    dtype = np.int64 if max(depth) < 2**62 else object
    return dataclasses.replace(book, depth=np.array(depth, dtype=dtype))


def _row(book: Book, policies: list[sizing.NamedPolicy], balance: int,
         config: sizing.RiskConfig) -> dict[str, Any]:
    res = sizing.simulate(book, policies, balance, config)
    n = len(res.labels)
    es999 = sizing.var_es(res.deficits, sizing.LEVELS[1])[1]
    cover2 = max(res.cover2)
    hits = sum(1 for s in res.per_policy[0]["socialized"] if s > 0)
    qd = book.quote_decimals
    return {"es_999_deficits": format_amount(es999, qd),
            "recommended_size": format_amount(math.ceil(max(es999, cover2) *
                                                        (1 + config.buffer)), qd),
            "probability_of_socialization": format_decimal(Fraction(hits, n), 6)}


def table(book: Book, policies: list[sizing.NamedPolicy], balance: int,
          config: sizing.RiskConfig,
          progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """One row per input and factor (the first policy's probability of socialization)."""
    rows = []
    for name in INPUTS:
        for factor in FACTORS:
            run_book, run_config = book, config
            if name == "depth":
                run_book = _scaled_depth(book, factor)
                value = "x" + _plain(factor)
            else:
                base = float(getattr(config.stochastic, name))
                try:
                    scaled = dataclasses.replace(config.stochastic,
                                                 **{name: base * float(factor)})
                except ScenarioError as error:  # beyond the model's range: say so, go on
                    rows.append({"input": name, "factor": _plain(factor),
                                 "value": repr(base * float(factor)), "skipped": str(error)})
                    continue
                run_config = dataclasses.replace(config, stochastic=scaled)
                value = repr(base * float(factor))
            row = {"input": name, "factor": _plain(factor), "value": value}
            row.update(_row(run_book, policies, balance, run_config))
            rows.append(row)
            if progress is not None:
                progress(1)
    return rows
