"""A single position whose figures are worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

from tests.ledger.risk.helpers import make_fund, position, risk, write_lines


def test_single_long_deficit_reverse_stress_and_cover(tmp_path: Path) -> None:
    """Long 1 BTC at 10,000.00 with 1,000.00 collateral (10x), maintenance 0.5%; the fund holds
    500.00 USDT, reserve 0, no per-event cap, fixed share 1. Slippage 0: fills at the mark.

    Maintenance: 1000 + (p - 10000) < 0.005 p  <=>  p < 9000 / 0.995 = 9045.2261..., so the
    position is liquidated at the first price <= 9045.22.
    Path (CSV) 10000, 9500, 8000: 9500 is above the level; at 8000 it is liquidated, fill
    8000.00: delta = 1000 + (8000 - 10000) x 1 = -1000.00, a deficit of 1,000.00.
    The fund pays its 500.00, and 500.00 is socialized. One path: VaR = ES = 1,000.00.
    Cover-1 = cover-2 = 1,000.00 (alice is the only account).
    Recommended = max(ES 1,000.00, cover-2 1,000.00) x (1 + 0.2) = 1,200.00; coverage
    500 / 1200 = 0.416667 (6 decimals, half-even).
    Reverse stress down: an instant move of x ppm puts the price at 1,000,000 - x cents; the
    deficit is 9000 - p, which exceeds the fund's 500.00 when p < 8500.00, i.e. at 8499.99:
    x = 150,001 ppm = 0.150001 (at exactly 8500.00 the fund pays 500.00 and nothing is
    socialized). Up: a long is never liquidated on a rise: none.
    """
    url = make_fund(tmp_path, "500.00")
    book = write_lines(tmp_path / "book.jsonl", [position()])
    (tmp_path / "path.csv").write_text("crash\n10000\n9500\n8000\n")
    result = risk(url, "--positions", str(book), "--scenario", str(tmp_path / "path.csv"),
                  "--horizon", "2", "--slippage", "0", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["deficits"]["99.9"] == {"var": "1000.00", "es": "1000.00"}
    assert doc["cover_1"] == "1000.00"
    assert doc["cover_2"] == "1000.00"
    assert doc["recommended_size"] == "1200.00"
    assert doc["coverage"] == "0.416667"
    [active] = doc["policies"]
    assert active["socialized"]["99.0"] == {"var": "500.00", "es": "500.00"}
    assert active["drawdown"]["99.0"] == {"var": "500.00", "es": "500.00"}
    assert active["probability_of_socialization"] == "1.000000"
    assert active["reverse_stress"] == {"down": "0.150001", "up": None}


def test_affiliate_group_counts_as_one_for_cover(tmp_path: Path) -> None:
    """alice and bob (group g) each lose 1,000.00 on the same path as above (same position);
    carol (no group) too. Cover-1 is group g: 2,000.00; cover-2 adds carol: 3,000.00."""
    url = make_fund(tmp_path, "500.00")
    book = write_lines(tmp_path / "book.jsonl", [
        position(account="alice", affiliate_group="g"),
        position(account="bob", affiliate_group="g"),
        position(account="carol")])
    (tmp_path / "path.csv").write_text("crash\n10000\n9500\n8000\n")
    result = risk(url, "--positions", str(book), "--scenario", str(tmp_path / "path.csv"),
                  "--horizon", "2", "--slippage", "0", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert (doc["cover_1"], doc["cover_2"]) == ("2000.00", "3000.00")
