"""`backstop risk` refuses what it cannot compute in bounded memory or exactly, in one line
that names the option (or the snapshot's line and field) and the bound, exit 2, nothing
written: each case here ended in a traceback (MemoryError, OverflowError, StopIteration,
ValueError) or was silently accepted before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ledger.risk.helpers import make_fund, position, risk, write_lines


@pytest.fixture
def url(tmp_path: Path) -> str:
    return make_fund(tmp_path, "500.00")


def _refused(result, expected: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert expected in lines[0], lines[0]


OPTIONS = [
    # 256 paths x 1,000,001 steps of float64, several arrays at once: a MemoryError before.
    (["--horizon", "1000000"], "--horizon: 1000000 is not in the range 2<=x<=10080"),
    (["--paths", "10000000"], "--paths: 10000000 is not in the range 1<=x<=1000000"),
    (["--seed", "-1"], "--seed: -1 is not in the range 0<=x<=9007199254740991"),
    (["--seed", str(2**70)], "--seed: 1180591620717411303424 is not in the range"),
    (["--shape-noise", "nan"], "--shape-noise: 'nan' is not a finite number"),
    (["--vol", "nan"], "--vol: 'nan' is not a finite number"),
    (["--vol", "inf"], "--vol: 'inf' is not a finite number"),
    (["--jump-intensity", "-inf"], "--jump-intensity: '-inf' is not a finite number"),
    (["--jump-size", "nan"], "--jump-size: 'nan' is not a finite number"),
    (["--tail-df", "inf"], "--tail-df: 'inf' is not a finite number"),
    # Five shapes x 100,000 rough variants x 1,441 steps: 1.2 GB a shape for each of several
    # arrays, a MemoryError before; now generated 256 at a time, and refused only by the count
    # of outcomes kept: 5 x 100,000 + 600,000 stochastic = 1,100,000 paths.
    (["--shape-paths", "100000", "--paths", "600000"],
     "--paths: 1100000 paths in all (stochastic, shape variants, CSV paths); at most 1000000"),
]


@pytest.mark.parametrize(("args", "expected"), OPTIONS)
def test_unbounded_options_are_refused(tmp_path: Path, url: str, args: list[str],
                                       expected: str) -> None:
    book = write_lines(tmp_path / "book.jsonl", [position()])
    out = tmp_path / "report.json"
    _refused(risk(url, "--positions", str(book), "--out", str(out), *args), expected)
    assert not out.exists()


def test_outcomes_of_every_policy_are_bounded(tmp_path: Path, url: str) -> None:
    """900,000 stochastic paths are allowed alone; under the active policy and four files
    they are 4,500,000 outcomes kept, over the bound of 4,000,000."""
    book = write_lines(tmp_path / "book.jsonl", [position()])
    policy = tmp_path / "p.json"
    policy.write_text(json.dumps(json.loads((tmp_path / "fund.json").read_text())["policy"]))
    result = risk(url, "--positions", str(book), "--scenario", "stochastic", "--paths",
                  "900000", *["--policy", str(policy)] * 4)
    _refused(result, "--policy: 900000 paths x 5 policies; at most 4000000 outcomes")


BIG = "1" + "0" * 399  # 400 digits
FINE = "1." + "0" * 21 + "1"  # 22 decimals

POSITIONS = [
    # Price paths stay int64: a start price of 10^399 cents is refused (numpy's int64
    # conversion raised OverflowError before any bound existed).
    (position(mark_price=BIG), ("line 2: mark_price: too large for the engine's 64-bit "
                                "integer price paths (402 digits in units of 10^-2; the bound "
                                "is 2^62 / 128, a path may rise 64x)")),
    # A mark price with too many decimals (the entry price is fine): StopIteration before.
    (position(mark_price=FINE), "line 2: mark_price: more than 8 decimals"),
    # json keeps the last of a repeated key: the snapshot would size another position.
    ('{"account": "alice", "market": "BTC-PERP", "side": "long", "size": "1", "size": "900",'
     ' "entry_price": "10000", "collateral": "1000.00", "maintenance_margin_rate": "0.005"}',
     "line 2: 'size': the key is repeated in one object (each field may be given once)"),
]


# Beyond int64, sized exactly with Python integers (each was refused as "too large for the
# engine's 64-bit integer arithmetic" before): 10^399 BTC; 22 decimals on line 2, which make
# bob's 1 BTC on line 1 10^22 size units; an entry price and a collateral of 400 digits.
WIDE = [position(size=BIG), position(size=FINE), position(entry_price=BIG),
        position(collateral=BIG)]


@pytest.mark.parametrize("record", WIDE)
def test_positions_beyond_int64_are_sized(tmp_path: Path, url: str, record: object) -> None:
    book = write_lines(tmp_path / "book.jsonl", [position(account="bob", mark_price=None), record])
    out = tmp_path / "report.json"
    result = risk(url, "--positions", str(book), "--scenario", "btc-2020-03-12",
                  "--horizon", "10", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["positions"] == 2


@pytest.mark.parametrize(("record", "expected"), POSITIONS)
def test_positions_beyond_the_engine_are_refused(tmp_path: Path, url: str, record: object,
                                                 expected: str) -> None:
    book = write_lines(tmp_path / "book.jsonl", [position(account="bob", mark_price=None), record])
    out = tmp_path / "report.json"
    result = risk(url, "--positions", str(book), "--scenario", "btc-2020-03-12",
                  "--horizon", "10", "--out", str(out))
    _refused(result, f"book.jsonl: {expected}")
    assert not out.exists()


def test_a_long_horizon_within_the_bound_runs(tmp_path: Path, url: str) -> None:
    """The bound itself (10,080 steps, a week of minutes) is computed: 3 stochastic paths."""
    book = write_lines(tmp_path / "book.jsonl", [position()])
    result = risk(url, "--positions", str(book), "--scenario", "stochastic", "--paths", "3",
                  "--horizon", "10080", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["paths"] == 3


def test_shape_variants_in_blocks_are_the_same_paths() -> None:
    """601 paths come in blocks of at most 256 (smooth + 255, 256, 89); the variants do not
    depend on the blocks: the first 299 of 600 are the 299 variants of a run of 300 (one
    generator, drawn in order), and the first path is the smooth shape."""
    import numpy as np

    from ledger.risk.scenarios import shape_blocks, shape_path, shape_variants

    blocks = list(shape_blocks("ftx-2022-11-08", 50, 601, 0.01, 3.0, seed=2))
    assert [b.shape for b in blocks] == [(256, 51), (256, 51), (89, 51)]
    assert (blocks[0][0] == shape_path("ftx-2022-11-08", 50)[0]).all()
    fewer = shape_variants("ftx-2022-11-08", 50, 300, 0.01, 3.0, seed=2)
    assert (np.vstack(blocks)[:300] == fewer).all()


HAND = [
    # 20.001 BTC long at 60,000.1 (mark too), mm 0, collateral 20.001 x 6,000 = 120,006.00:
    # equity 0 at 54,000.1, so down at the path's 30,000.05 (the CSV halves the price). P&L
    # (30,000.05 - 60,000.10) x 20.001 = -600,031.00005; equity 120,006 - 600,031.00005 =
    # -480,025.00005: a deficit of 480,025.01 (rounded up to the cent). Refused before: 64 x
    # 6,000,010 x 20,001 x 10^6 = 7.7e18 >= 2^62.
    (position(size="20.001", entry_price="60000.1", mark_price="60000.1",
              collateral="120006.00", maintenance_margin_rate="0"), "480025.01",
     "576030.02"),  # 1.2 x 480,025.01 = 576,030.012, rounded up
    # 10^399 BTC long at 10,000 with 10^402 USDT (10%), mm 0: equity 0 at 9,000, down at
    # 5,000: P&L -5,000 x 10^399 = -5 x 10^402; a deficit of 4 x 10^402 USDT.
    (position(size=BIG, collateral="1" + "0" * 402 + ".00", maintenance_margin_rate="0"),
     "4" + "0" * 402 + ".00", "48" + "0" * 401 + ".00"),
]


@pytest.mark.parametrize(("record", "deficit", "recommended"), HAND)
def test_wide_positions_by_hand(tmp_path: Path, url: str, record: object, deficit: str,
                                recommended: str) -> None:
    """Slippage 0 and a CSV path 100, 100, 50: one liquidation at step 2 at half the mark;
    the report's deficits, cover-1 and recommended size (1.2 x the deficit) to the cent, and
    the PNG is drawn."""
    book = write_lines(tmp_path / "book.jsonl", [record])
    path = tmp_path / "half.csv"
    path.write_text("half\n100\n100\n50\n")
    out, png = tmp_path / "report.json", tmp_path / "risk.png"
    result = risk(url, "--positions", str(book), "--scenario", str(path), "--horizon", "2",
                  "--slippage", "0", "--out", str(out), "--png", str(png))
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["deficits"]["99.9"] == {"var": deficit, "es": deficit}
    assert doc["cover_1"] == doc["cover_2"] == deficit
    assert doc["recommended_size"] == recommended
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
