"""The calibration estimators on series whose parameters are known (ledger.risk.calibrate)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ledger.risk import calibrate
from ledger.risk.calibrate import Floor

NO_FLOOR = Floor(0.0, 0.0, 0.0)


def minutes(n: int) -> np.ndarray:
    return np.arange(n + 1, dtype=np.float64) * 60


def prices_from(log_returns: np.ndarray, start: float = 100.0) -> np.ndarray:
    return start * np.exp(np.concatenate([[0.0], np.cumsum(log_returns)]))


def test_hand_case_six_returns() -> None:
    # 100, 101, 100, 101, 100, 50, 50.25 a minute apart: four moves of ln 1.01, one halving,
    # one move of ln 1.005. median |z| = ln 1.01 (the 3rd and 4th of the sorted six), so the
    # threshold is 5 x 1.4826 x ln 1.01 = 0.0738: the halving is the one jump.
    fit = calibrate.fit(minutes(6), np.array([100, 101, 100, 101, 100, 50, 50.25]), 2.0, NO_FLOOR)
    a, h = math.log(1.01), math.log(1.005)
    assert fit.scale == pytest.approx(1.4826 * a, rel=1e-12)
    assert fit.full.jumps == 1
    assert fit.full.jump_size == pytest.approx(math.log(2), rel=1e-12)
    assert fit.full.jump_mean == pytest.approx(-math.log(2), rel=1e-12)
    assert fit.full.jump_rate_per_minute == pytest.approx(1 / 6, rel=1e-12)
    assert fit.full.sigma_per_minute == pytest.approx(math.sqrt((4 * a * a + h * h) / 5),
                                                      rel=1e-12)
    # The 2-minute window with the largest sum of r^2: returns 3 and 4 (101 -> 100 -> 50),
    # from t = 180 s to 300 s; its one calm return is ln 1.01, one jump in 2 minutes.
    assert fit.window == (180, 300)
    assert fit.stressed.returns == 2
    assert fit.stressed.sigma_per_minute == pytest.approx(a, rel=1e-12)
    assert fit.stressed.jump_rate_per_minute == pytest.approx(0.5, rel=1e-12)
    # Each parameter: the larger of the full sample and the stressed window (floor 0): the
    # window's ln 1.01 is above the full sample's sqrt((4 ln^2 1.01 + ln^2 1.005) / 5).
    assert fit.sigma_per_minute == pytest.approx(a, rel=1e-12)
    assert fit.jump_rate_per_minute == pytest.approx(0.5, rel=1e-12)
    assert fit.jump_size == pytest.approx(math.log(2), rel=1e-12)
    assert fit.resolution_seconds == 60


def test_the_floor_binds_when_the_data_is_calmer() -> None:
    fit = calibrate.fit(minutes(6), np.array([100, 101, 100, 101, 100, 50, 50.25]), 2.0,
                        Floor(0.05, 0.9, 1.0))
    assert (fit.sigma_per_minute, fit.jump_rate_per_minute, fit.jump_size) == (0.05, 0.9, 1.0)


def test_seeded_gbm_gives_sigma_within_its_sampling_error() -> None:
    # n normal returns: the RMS estimate's relative standard error is 1 / sqrt(2n); 4 of them.
    n, sigma = 20_000, 0.001
    rng = np.random.default_rng(26)
    r = rng.normal(-0.5 * sigma**2, sigma, n)
    fit = calibrate.fit(minutes(n), prices_from(r), 1440.0, NO_FLOOR)
    assert abs(fit.full.sigma_per_minute / sigma - 1) < 4 / math.sqrt(2 * n)
    assert fit.full.jumps == 0
    assert fit.full.jump_size == 0.0


def test_planted_jumps_on_a_deterministic_diffusion_are_found_exactly() -> None:
    # Calm returns alternate +0.001 / -0.001; three jumps replace three of them.
    n = 1000
    r = np.where(np.arange(n) % 2 == 0, 0.001, -0.001)
    planted = {100: -0.05, 400: 0.08, 901: -0.12}
    for i, size in planted.items():
        r[i] = size
    fit = calibrate.fit(minutes(n), prices_from(r), 1440.0, NO_FLOOR)
    sizes = list(planted.values())
    assert fit.full.jumps == 3
    assert fit.full.jump_mean == pytest.approx(sum(sizes) / 3, rel=1e-9)  # -0.03
    assert fit.full.jump_size == pytest.approx(math.sqrt(sum(s * s for s in sizes) / 3),
                                               rel=1e-9)
    assert fit.full.sigma_per_minute == pytest.approx(0.001, rel=1e-9)
    assert fit.full.jump_rate_per_minute == pytest.approx(3 / n, rel=1e-12)


def test_planted_jumps_on_seeded_gbm_count_exactly() -> None:
    # 12 jumps of +-3% on sigma 0.1% a minute: each is 30 sigma, so all are found and nothing
    # else is; their mean absolute size is within the diffusion's noise (sigma per jump).
    n, sigma = 50_000, 0.001
    rng = np.random.default_rng(7)
    r = rng.normal(0.0, sigma, n)
    at = rng.choice(n, 12, replace=False)
    signs = np.where(np.arange(12) % 2 == 0, 1.0, -1.0)
    r[at] += 0.03 * signs
    fit = calibrate.fit(minutes(n), prices_from(r), 1440.0, NO_FLOOR)
    assert fit.full.jumps == 12
    assert abs(fit.full.jump_size - 0.03) < 4 * sigma
    assert abs(fit.full.sigma_per_minute / sigma - 1) < 4 / math.sqrt(2 * n)
    assert fit.full.jump_rate_per_minute == pytest.approx(12 / n, rel=1e-12)


def test_uneven_spacing_scales_variance_by_the_span() -> None:
    # Returns of 0.002 over 4-minute spans are sigma 0.001 a minute.
    times = np.arange(0, 4 * 60 * 11, 4 * 60, dtype=np.float64)
    r = np.where(np.arange(10) % 2 == 0, 0.002, -0.002)
    fit = calibrate.fit(times, prices_from(r), 1440.0, NO_FLOOR)
    assert fit.full.sigma_per_minute == pytest.approx(0.001, rel=1e-9)
    assert fit.resolution_seconds == 240


def test_co_movement_of_a_doubled_market() -> None:
    # b's log returns are twice a's: correlation 1; factor f = 1.5 a, so beta_a = 1.5/2.25.
    r = np.array([0.01, -0.02, 0.005, 0.0, 0.015])
    times = minutes(5)
    out = calibrate.co_movement({"A": (times, prices_from(r)), "B": (times, prices_from(2 * r))})
    assert out is not None
    assert out["markets"] == ["A", "B"] and out["returns"] == 5
    assert np.allclose(out["correlation"], [[1, 1], [1, 1]])
    beta = out["beta"]
    assert isinstance(beta, dict)
    assert beta["A"] == pytest.approx(2 / 3) and beta["B"] == pytest.approx(4 / 3)
    assert calibrate.co_movement({"A": (times, prices_from(r))}) is None


@pytest.mark.parametrize(("times", "prices", "reason"), [
    ([0, 60], [1, 2], "needs at least 3 prices, has 2"),
    ([0, 60, 60], [1, 2, 3], "times must increase strictly"),
    ([0, 60, 120], [1, 0, 3], "prices must be positive"),
])
def test_unusable_series(times: list[int], prices: list[float], reason: str) -> None:
    with pytest.raises(calibrate.CalibrationError, match=reason):
        calibrate.fit(np.array(times, dtype=np.float64), np.array(prices, dtype=np.float64),
                      1440.0, NO_FLOOR)


def test_unchanged_prices_do_not_make_every_move_a_jump() -> None:
    # 60% of the minutes without a move (a quiet market): the scale comes from the moves,
    # 1.4826 x 0.001, so none of them is a jump; the zeros still count as calm minutes.
    r = np.zeros(1000)
    r[::5] = 0.001
    r[1::5] = -0.001
    fit = calibrate.fit(minutes(1000), prices_from(r), 1440.0, NO_FLOOR)
    assert fit.scale == pytest.approx(1.4826 * 0.001, rel=1e-9)
    assert fit.full.jumps == 0
    assert fit.full.sigma_per_minute == pytest.approx(math.sqrt(400 * 1e-6 / 1000), rel=1e-9)
    flat = calibrate.fit(minutes(5), np.full(6, 100.0), 1440.0, NO_FLOOR)
    assert (flat.scale, flat.full.jumps, flat.full.sigma_per_minute) == (0.0, 0, 0.0)
