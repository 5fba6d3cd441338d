"""Calibration: the stochastic model's parameters estimated from price history.

Pure estimators over one market's (time, price) series; the estimators are stated exactly in
schemas/README.md ("Risk model file"). Floats throughout: these are model parameters and
statistics, never money.

Per market, with times t_k in seconds and prices p_k > 0 (k = 0..n):
- returns r_k = ln(p_k / p_(k-1)) over dt_k = (t_k - t_(k-1)) / 60 minutes (any spacing: the
  ledger's marks are 5-minute, candles may be 1-minute); standardised z_k = r_k / sqrt(dt_k);
- robust scale s = 1.4826 x median |z_k| over the nonzero z_k (a jump does not move a median;
  an unchanged price is not evidence of the scale);
- a jump is a return with |z_k| > JUMP_THRESHOLD x s;
- sigma per minute = sqrt(sum r_k^2 over non-jumps / sum dt_k over non-jumps);
- jump rate per minute = jumps / sum dt_k over all returns;
- jump size = sqrt(mean r_j^2 over jumps) (the model's jump is normal with mean 0: this is
  the maximum-likelihood scale), 0 without jumps; the mean signed jump is reported too.
The stressed window is the `window` minutes of the data with the largest sum of r_k^2 (the
worst period: jumps included); the same estimators run on its returns with the full-sample
threshold. Each parameter is the largest of the full sample, the stressed window and the floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

JUMP_THRESHOLD = 5.0  # standardised returns beyond 5 robust standard deviations are jumps
MAD_TO_SIGMA = 1.4826  # median |z| of a normal is 0.6745 sigma: 1 / 0.6745


class CalibrationError(ValueError):
    """A series the estimators cannot use (one line, for exit code 2)."""


@dataclass(frozen=True)
class Estimate:
    """The estimators on one set of returns."""

    sigma_per_minute: float
    jump_rate_per_minute: float
    jump_size: float
    jumps: int
    jump_mean: float
    returns: int
    minutes: float

    def as_dict(self) -> dict[str, float | int]:
        """For the model file."""
        return {"sigma_per_minute": self.sigma_per_minute,
                "jump_rate_per_minute": self.jump_rate_per_minute,
                "jump_size": self.jump_size, "jumps": self.jumps, "jump_mean": self.jump_mean,
                "returns": self.returns, "minutes": self.minutes}


@dataclass(frozen=True)
class Floor:
    """The smallest parameters a calibration may give (per minute, as the estimates)."""

    sigma_per_minute: float = 0.02 / math.sqrt(1440)  # 2% a day
    jump_rate_per_minute: float = 0.0
    jump_size: float = 0.0


@dataclass(frozen=True)
class MarketFit:
    """One market's calibration: both estimates, the window, and the parameters used."""

    full: Estimate
    stressed: Estimate
    window: tuple[int, int]  # seconds: the stressed window's first and last time
    scale: float  # robust scale s of the standardised returns
    sigma_per_minute: float
    jump_rate_per_minute: float
    jump_size: float
    resolution_seconds: int  # the median spacing of the series


def returns(times: np.ndarray, prices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log returns, their spans in minutes) of a series sorted by time."""
    if len(times) < 3:
        raise CalibrationError(f"needs at least 3 prices, has {len(times)}")
    dt = np.diff(times.astype(np.float64)) / 60.0
    if not np.all(dt > 0):
        raise CalibrationError("times must increase strictly")
    if not np.all(np.isfinite(prices)) or not np.all(prices > 0):
        raise CalibrationError("prices must be positive")
    return np.diff(np.log(prices.astype(np.float64))), dt


def robust_scale(r: np.ndarray, dt: np.ndarray) -> float:
    """s = 1.4826 x median |r_k / sqrt(dt_k)| over the nonzero returns (an unchanged price, a
    minute without a trade, says nothing of the scale: counting them, a quiet market's median
    would be 0 and every move a jump); 0 when no price moves."""
    z = np.abs(r / np.sqrt(dt))
    z = z[z > 0]
    return float(MAD_TO_SIGMA * np.median(z)) if len(z) else 0.0


def estimate(r: np.ndarray, dt: np.ndarray, scale: float) -> Estimate:
    """The estimators (module docstring) on returns `r` over spans `dt`, threshold from `scale`."""
    jump = np.abs(r / np.sqrt(dt)) > JUMP_THRESHOLD * scale
    calm = ~jump
    calm_minutes = float(dt[calm].sum())
    sigma = math.sqrt(float(np.sum(r[calm] ** 2)) / calm_minutes) if calm_minutes > 0 else 0.0
    minutes = float(dt.sum())
    count = int(jump.sum())
    size = math.sqrt(float(np.mean(r[jump] ** 2))) if count else 0.0
    mean = float(np.mean(r[jump])) if count else 0.0
    return Estimate(sigma, count / minutes, size, count, mean, len(r), minutes)


def worst_window(times: np.ndarray, r: np.ndarray, window_minutes: float) -> tuple[int, int]:
    """Indices [a, b) of the returns whose end times lie within `window_minutes` of the first's
    start, maximising sum r^2 (ties: the earliest window)."""
    ends = times[1:].astype(np.float64)
    starts = times[:-1].astype(np.float64)
    cum = np.concatenate([[0.0], np.cumsum(r ** 2)])
    stop = np.searchsorted(ends, starts + window_minutes * 60.0, side="right")
    a = np.arange(len(r))
    totals = cum[stop] - cum[a]
    best = int(np.argmax(totals))
    return best, int(stop[best])


def fit(times: np.ndarray, prices: np.ndarray, window_minutes: float, floor: Floor) -> MarketFit:
    """One market's calibration (module docstring)."""
    r, dt = returns(times, prices)
    scale = robust_scale(r, dt)
    full = estimate(r, dt, scale)
    a, b = worst_window(times, r, window_minutes)
    stressed = estimate(r[a:b], dt[a:b], scale)
    return MarketFit(
        full=full, stressed=stressed, window=(int(times[a]), int(times[b])), scale=scale,
        sigma_per_minute=max(full.sigma_per_minute, stressed.sigma_per_minute,
                             floor.sigma_per_minute),
        jump_rate_per_minute=max(full.jump_rate_per_minute, stressed.jump_rate_per_minute,
                                 floor.jump_rate_per_minute),
        jump_size=max(full.jump_size, stressed.jump_size, floor.jump_size),
        resolution_seconds=int(np.median(np.diff(times))))


def co_movement(series: dict[str, tuple[np.ndarray, np.ndarray]]
                ) -> dict[str, object] | None:
    """Correlation matrix of the markets' log returns between their common times, and each
    market's beta to the equal-weight factor f = mean of the markets' returns
    (beta_i = cov(r_i, f) / var(f)); None for fewer than 2 markets or 3 common returns."""
    names = sorted(series)
    if len(names) < 2:
        return None
    common = series[names[0]][0]
    for name in names[1:]:
        common = np.intersect1d(common, series[name][0])
    if len(common) < 4:
        return None
    matrix = []
    for name in names:
        times, prices = series[name]
        matrix.append(np.diff(np.log(prices[np.searchsorted(times, common)])))
    rets = np.vstack(matrix)
    factor = rets.mean(axis=0)
    var_f = float(np.var(factor, ddof=1))
    corr = np.corrcoef(rets) if np.all(rets.std(axis=1) > 0) else None
    return {
        "markets": names, "returns": int(rets.shape[1]),
        "correlation": None if corr is None else [[float(x) for x in row] for row in corr],
        "beta": {n: (float(np.cov(rets[i], factor, ddof=1)[0, 1] / var_f) if var_f > 0 else None)
                 for i, n in enumerate(names)},
    }
