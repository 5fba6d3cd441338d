"""The risk model file (`schemas/risk-model.schema.json`): written by `backstop risk calibrate`,
read by `backstop risk --model FILE`.

The engine drives every market with one relative path (full correlation), so a run takes,
over the book's markets, the largest sigma, jump rate and jump size of the file: the
envelope of the markets, the conservative choice under full correlation. Per-minute rates
become per-horizon ones for a run of `steps` one-minute steps: vol = sigma x sqrt(steps),
jump intensity = rate x steps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import numpy as np
from jsonschema import Draft202012Validator

from auditor.formats.schemas import load_schema
from auditor.formats.wire import format_time
from ledger.risk import calibrate
from ledger.risk.scenarios import ScenarioError, Stochastic

FORMAT = "backstop-risk-model/1"


def _time(seconds: float) -> str:
    return format_time(datetime.fromtimestamp(int(seconds), UTC))


def build(series: dict[str, tuple[np.ndarray, np.ndarray]], origin: dict[str, str],
          sources: list[dict[str, Any]], window_minutes: float,
          floor: calibrate.Floor) -> dict[str, Any]:
    """The model document from each market's (times in seconds, prices) and its source name.
    CalibrationError names the market whose series cannot be used."""
    markets = {}
    for name in sorted(series):
        times, prices = series[name]
        try:
            fit = calibrate.fit(times, prices, window_minutes, floor)
        except calibrate.CalibrationError as error:
            raise calibrate.CalibrationError(f"market {name} ({origin[name]}): {error}") from None
        markets[name] = {
            "source": origin[name], "observations": len(times),
            "first": _time(times[0]), "last": _time(times[-1]),
            "resolution_seconds": max(1, fit.resolution_seconds), "scale": fit.scale,
            "full": fit.full.as_dict(), "stressed": fit.stressed.as_dict(),
            "stressed_window": [_time(fit.window[0]), _time(fit.window[1])],
            "sigma_per_minute": fit.sigma_per_minute,
            "jump_rate_per_minute": fit.jump_rate_per_minute,
            "jump_size": fit.jump_size,
        }
    return {"format": FORMAT, "jump_threshold": calibrate.JUMP_THRESHOLD,
            "stress_window_minutes": window_minutes,
            "floor": {"sigma_per_minute": floor.sigma_per_minute,
                      "jump_rate_per_minute": floor.jump_rate_per_minute,
                      "jump_size": floor.jump_size},
            "sources": sources, "markets": markets,
            "co_movement": calibrate.co_movement(series)}


def check(document: Any) -> None:
    """ScenarioError (`--model: field: reason`) unless `document` is a model file."""
    schema = load_schema("risk-model")
    problem = next(iter(sorted(Draft202012Validator(schema).iter_errors(document),
                               key=lambda e: list(e.path))), None)
    if problem is not None:
        where = ".".join(str(p) for p in problem.path) or "(file)"
        raise ScenarioError(f"--model: {where}: {problem.message[:200]}")


def stochastic(document: dict[str, Any], markets: Iterable[str], steps: int,
               tail_df: float) -> Stochastic:
    """The run's stochastic model from a checked model file: the envelope over `markets`
    (module docstring). ScenarioError names a book market the file does not calibrate."""
    fitted = document["markets"]
    rows = []
    for market in markets:
        if market not in fitted:
            raise ScenarioError(f"--model: markets: {market} (a market of the book) is not "
                                "calibrated in the file")
        rows.append(fitted[market])
    sigma = max(float(r["sigma_per_minute"]) for r in rows)
    rate = max(float(r["jump_rate_per_minute"]) for r in rows)
    size = max(float(r["jump_size"]) for r in rows)
    return Stochastic(vol=sigma * math.sqrt(steps), jump_intensity=rate * steps,
                      jump_size=size, tail_df=tail_df)
