"""Intervals, path-count warnings and the sensitivity table (ledger.risk.uncertainty,
ledger.risk.sensitivity, and their place in the report)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from ledger.risk import sizing, uncertainty
from tests.ledger.risk.helpers import make_fund, position, risk, write_lines

LEVELS = (Fraction(99, 100), Fraction(999, 1000))


def test_min_paths_and_warnings() -> None:
    assert uncertainty.min_paths(LEVELS[0]) == 1000
    assert uncertainty.min_paths(LEVELS[1]) == 10_000
    # 201 paths: ceil(2.01) = 3 tail paths at 99%, ceil(0.201) = 1 at 99.9%.
    assert uncertainty.warnings(201, LEVELS) == [
        ("99% figures rest on 3 paths of 201: at least 1,000 paths (10 in the tail) for a 99% "
         "figure to mean much"),
        ("99.9% figures rest on 1 path of 201: at least 10,000 paths (10 in the tail) for a "
         "99.9% figure to mean much")]
    assert uncertainty.warnings(9_999, LEVELS) == []  # ceil(9.999) = 10 tail paths
    assert uncertainty.warnings(9_000, LEVELS)[0].startswith("99.9% figures rest on 9 paths")


def test_interval_ends_are_the_2_5_and_97_5_percent_order_statistics() -> None:
    # B = 200: the ceil(5)-th and ceil(195)-th smallest.
    assert uncertainty._ends(list(range(1, 201)), 200) == (5, 195)
    # B = 10: ceil(0.25) = 1st and ceil(9.75) = 10th.
    assert uncertainty._ends(list(range(10, 0, -1)), 10) == (1, 10)


@pytest.mark.parametrize("values", [
    [5, 1, 9, 9, 2, 7, 0, 3, 8, 4, 6, 1],
    [10**30, 3, 10**25, 7, 0, 10**30 + 1, 5],  # beyond int64: Python integers
])
def test_resample_statistic_is_the_reports(values: list[int]) -> None:
    array = uncertainty._array(values)
    for level in (Fraction(1, 2), *LEVELS, Fraction(3, 4)):
        assert uncertainty._var_es(array, level) == sizing.var_es(values, level)


def test_a_constant_sample_has_a_point_interval_and_is_reproducible() -> None:
    out = uncertainty.bootstrap([700] * 50, [900] * 50, [[0] * 49 + [1]], LEVELS,
                                Fraction(1, 5), 3, 40)
    assert out["deficits"][LEVELS[1]] == {"var": (700, 700), "es": (700, 700)}
    assert out["cover_2"] == (900, 900)
    assert out["recommended_size"] == (1080, 1080)  # ceil(900 x 1.2)
    lo, hi = out["probability_of_socialization"][0]
    assert lo <= Fraction(1, 50) <= hi
    again = uncertainty.bootstrap([700] * 50, [900] * 50, [[0] * 49 + [1]], LEVELS,
                                  Fraction(1, 5), 3, 40)
    assert again == out


def test_the_interval_covers_a_known_quantile() -> None:
    # 20,000 uniform integers 0..9999: the true 99% VaR is 9899 (P(X <= 9899) = 0.99); the
    # 95% interval holds it and is narrow.
    rng = np.random.default_rng(5)
    values = [int(v) for v in rng.integers(0, 10_000, 20_000)]
    out = uncertainty.bootstrap(values, values, [values], LEVELS, Fraction(0), 1, 200)
    lo, hi = out["deficits"][LEVELS[0]]["var"]
    assert lo <= 9899 <= hi and hi - lo < 100


@pytest.fixture
def url(tmp_path: Path) -> str:
    return make_fund(tmp_path, "500.00")


def test_report_intervals_and_sensitivity(tmp_path: Path, url: str) -> None:
    book = write_lines(tmp_path / "book.jsonl", [
        position(), position(account="bob", side="short", collateral="500.00")])
    result = risk(url, "--positions", str(book), "--paths", "60", "--horizon", "100",
                  "--scenario", "stochastic", "--scenario", "btc-2020-03-12",
                  "--slippage", "0", "--sensitivity", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    u = doc["uncertainty"]
    assert (u["method"], u["resamples"], u["seed"], u["confidence"]) == \
        ("bootstrap over paths", 200, 1, "0.95")
    assert u["min_paths"] == {"99.0": 1000, "99.9": 10000}
    for level in ("99.0", "99.9"):
        for key in ("var", "es"):
            lo, hi = (float(x) for x in u["deficits"][level][key])
            assert 0 <= lo <= hi
    assert len(doc["warnings"]) == 2  # 61 paths
    rows = {(r["input"], r["factor"]): r for r in doc["sensitivity"]}
    assert len(rows) == 8
    # Fills at the mark (--slippage 0): depth changes nothing, exactly.
    for factor in ("0.5", "2"):
        row = rows[("depth", factor)]
        assert row["es_999_deficits"] == doc["deficits"]["99.9"]["es"]
        assert row["recommended_size"] == doc["recommended_size"]
    assert rows[("vol", "2")]["value"] == "0.08"
    text = risk(url, "--positions", str(book), "--paths", "60", "--horizon", "100",
                "--scenario", "stochastic", "--scenario", "btc-2020-03-12",
                "--slippage", "0", "--sensitivity").output
    assert "95% intervals (bootstrap over the paths, 200 resamples, seed 1)" in text
    assert "WARNING: 99.9% figures rest on 1 path of 61" in text
    assert f"    base: {doc['deficits']['99.9']['es']}, {doc['recommended_size']}, " in text
    depth = rows[("depth", "2")]
    assert f"    depth x 2 (x2): {depth['es_999_deficits']}, {depth['recommended_size']}" in text


def test_no_bootstrap(tmp_path: Path, url: str) -> None:
    book = write_lines(tmp_path / "book.jsonl", [position()])
    doc = json.loads(risk(url, "--positions", str(book), "--paths", "5", "--horizon", "10",
                          "--scenario", "stochastic", "--bootstrap", "0", "--json").output)
    assert "deficits" not in doc["uncertainty"] and doc["uncertainty"]["resamples"] == 0


def test_shapes_do_not_use_the_stochastic_inputs(tmp_path: Path, url: str) -> None:
    book = write_lines(tmp_path / "book.jsonl", [position()])
    doc = json.loads(risk(url, "--positions", str(book), "--horizon", "200", "--scenario",
                          "btc-2020-03-12", "--shape-paths", "5", "--sensitivity",
                          "--json").output)
    for row in doc["sensitivity"]:
        if row["input"] != "depth":
            assert row["es_999_deficits"] == doc["deficits"]["99.9"]["es"], row
            assert row["recommended_size"] == doc["recommended_size"], row


def test_path_reverse_stress_hand_case(tmp_path: Path, url: str) -> None:
    # One 10x long of 1 BTC at 10000 (collateral 1000), fills at the mark (--slippage 0), a
    # fund of 500 with no reserve. A path 10000 -> 8000 scaled by k reaches 10000 x 0.8^k;
    # below 9000 the deficit is 9000 - p (no fee is left), above 500 when p <= 8499.99, i.e.
    # (half-up to the cent) 10000 x 0.8^k < 8499.995: k > ln(0.8499995) / ln(0.8) =
    # 0.7283182, the smallest whole ppm above it 0.728319 (ln(0.85) / ln(0.8) = 0.7283156
    # leaves exactly 500.00, all covered).
    (tmp_path / "gap.csv").write_text("gap\n10000\n8000\n8000\n")
    book = write_lines(tmp_path / "book.jsonl", [position()])
    doc = json.loads(risk(url, "--positions", str(book), "--scenario",
                          str(tmp_path / "gap.csv"), "--horizon", "2", "--slippage", "0",
                          "--json").output)
    k = doc["policies"][0]["reverse_stress_paths"]["gap.csv:gap"]
    assert k == "0.728319"
    # A path that never exhausts the fund: none up to 10x.
    (tmp_path / "calm.csv").write_text("calm\n10000\n9999\n10000\n")
    doc = json.loads(risk(url, "--positions", str(book), "--scenario",
                          str(tmp_path / "calm.csv"), "--horizon", "2", "--json").output)
    assert doc["policies"][0]["reverse_stress_paths"] == {"calm.csv:calm": None}
