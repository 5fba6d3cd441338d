"""`backstop risk`: every bad input ends in one line naming the line and field, exit 2, and
nothing written; the same seed gives the same report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ledger.risk.helpers import make_fund, position, risk, write_lines

BAD_POSITIONS = [
    (["{not json"], "line 1: "),
    ([position(), position(size=None)], "line 2: size: "),
    ([position(side="flat")], "line 1: side: "),
    ([position(market="ETH-PERP")], "line 1: market: 'ETH-PERP' is not a market of the fund"),
    ([position(collateral="1000.001")], "line 1: collateral: more than 2 decimals"),
    ([position(), position(mark_price="9000")],
     "line 2: mark_price: BTC-PERP was given another mark price"),
    ([position(maintenance_margin_rate="1.5")], "line 1: maintenance_margin_rate: "),
    ([position(extra="x")], "line 1: extra: "),
    ([position(size="-1")], "line 1: size: "),
    ([position(size=1)], "line 1: size: "),
    ([], "line 1: (file): no positions"),
]


@pytest.fixture
def url(tmp_path: Path) -> str:
    return make_fund(tmp_path, "500.00")


def _one_line_exit_2(result, expected: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("records", "expected"), BAD_POSITIONS)
def test_bad_positions(tmp_path: Path, url: str, records: list, expected: str) -> None:
    book = write_lines(tmp_path / "book.jsonl", records)
    out = tmp_path / "report.json"
    result = risk(url, "--positions", str(book), "--scenario", "btc-2020-03-12",
                  "--horizon", "10", "--out", str(out))
    _one_line_exit_2(result, f"book.jsonl: {expected}")
    assert not out.exists()


BAD_CSV = [
    ("", "line 1: header: empty"),
    ("a,b\n1,2\n3\n4,5\n", "line 3: has 1 values, the header names 2 paths"),
    ("a\n1\nx\n2\n", "line 3: a: 'x' is not a positive price"),
    ("a\n1\n0\n2\n", "line 3: a: '0' is not a positive price"),
    ("a\n1\n2\n", "line 3: has 2 price rows, the horizon needs 3"),
    ("a,\n1,2\n", "line 1: column 2: empty path name"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_CSV)
def test_bad_csv(tmp_path: Path, url: str, text: str, expected: str) -> None:
    book = write_lines(tmp_path / "book.jsonl", [position()])
    (tmp_path / "paths.csv").write_text(text)
    out = tmp_path / "report.json"
    result = risk(url, "--positions", str(book), "--scenario", str(tmp_path / "paths.csv"),
                  "--horizon", "2", "--out", str(out))
    _one_line_exit_2(result, f"paths.csv: {expected}")
    assert not out.exists()


def test_a_path_beyond_the_checked_range(tmp_path: Path, url: str) -> None:
    """A CSV path that rises 65x: refused before any output (the int64 room is checked for
    64x today's price)."""
    book = write_lines(tmp_path / "book.jsonl", [position()])
    (tmp_path / "paths.csv").write_text("a\n1\n2\n65\n")
    out = tmp_path / "report.json"
    result = risk(url, "--positions", str(book), "--scenario", str(tmp_path / "paths.csv"),
                  "--horizon", "2", "--out", str(out))
    _one_line_exit_2(result, "paths.csv:a: a path rises above 64x today's price")
    assert not out.exists()


@pytest.mark.parametrize(("args", "expected"), [
    (["--slippage", "abc"], "--slippage: "),
    (["--slippage", "0.5"], "--slippage: must be between 0 and 0.15"),
    (["--buffer", "-1"], "--buffer: "),
    (["--scenario", "dot-com"], "--scenario dot-com: unknown"),
    (["--scenario", "missing.csv"], "missing.csv: cannot read"),
    (["--vol", "-1"], "--vol: must be between 0 and 5"),
    (["--tail-df", "2"], "--tail-df: must be above 2"),
])
def test_bad_options(tmp_path: Path, url: str, args: list[str], expected: str) -> None:
    book = write_lines(tmp_path / "book.jsonl", [position()])
    out = tmp_path / "report.json"
    result = risk(url, "--positions", str(book), "--horizon", "10", "--paths", "3",
                  "--out", str(out), *args)
    _one_line_exit_2(result, expected)
    assert not out.exists()


def test_bad_policy_files(tmp_path: Path, url: str) -> None:
    book = write_lines(tmp_path / "book.jsonl", [position()])
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "invalid.json").write_text(json.dumps({"version": 1}))
    for name, expected in (("broken.json", "not a readable JSON file"),
                           ("invalid.json", "invalid.json: minimum_reserve")):
        result = risk(url, "--positions", str(book), "--scenario", "btc-2020-03-12",
                      "--horizon", "10", "--policy", str(tmp_path / name))
        _one_line_exit_2(result, expected)


def test_existing_out_is_refused(tmp_path: Path, url: str) -> None:
    book = write_lines(tmp_path / "book.jsonl", [position()])
    out = tmp_path / "report.json"
    out.write_text("keep")
    result = risk(url, "--positions", str(book), "--scenario", "btc-2020-03-12",
                  "--horizon", "10", "--out", str(out))
    _one_line_exit_2(result, "--out")
    assert out.read_text() == "keep"


@pytest.mark.parametrize("option", ["--out", "--png"])
def test_a_symlink_output_is_refused_with_force_too(tmp_path: Path, url: str, option: str) -> None:
    book = write_lines(tmp_path / "book.jsonl", [position()])
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    link = tmp_path / "link"
    link.symlink_to(victim)
    result = risk(url, "--positions", str(book), "--scenario", "btc-2020-03-12",
                  "--horizon", "10", option, str(link), "--force")
    assert (result.exit_code, result.output) == (
        2, f"Error: {option} {link} is a symlink; refusing to write through it (remove it, "
           "or name the file it points to)\n")
    assert victim.read_text() == "keep" and link.is_symlink()


def test_same_seed_same_numbers(tmp_path: Path, url: str) -> None:
    """Two runs with seed 5 give byte-identical reports; seed 6 gives another."""
    from ledger.sim.positions import opening_positions
    from ledger.sim.simulate import SimulationConfig

    records = [{**r, "mark_price": r["mark_price"]} for r in
               opening_positions(SimulationConfig(traders=200))]
    book = write_lines(tmp_path / "book.jsonl", records)
    args = ["--positions", str(book), "--scenario", "stochastic", "--paths", "40",
            "--horizon", "60", "--vol", "0.2", "--json"]
    first = risk(url, *args, "--seed", "5")
    second = risk(url, *args, "--seed", "5")
    other = risk(url, *args, "--seed", "6")
    assert first.exit_code == second.exit_code == other.exit_code == 0, first.output
    assert first.output == second.output
    assert json.loads(first.output)["deficits"] != json.loads(other.output)["deficits"]


def test_text_report_and_png(tmp_path: Path, url: str) -> None:
    """The committee text names the recommendation; --png writes a PNG; --out the JSON."""
    book = write_lines(tmp_path / "book.jsonl", [position()])
    out, png = tmp_path / "report.json", tmp_path / "risk.png"
    result = risk(url, "--positions", str(book), "--scenario", "btc-2020-03-12",
                  "--horizon", "30", "--out", str(out), "--png", str(png), "--slippage", "0")
    assert result.exit_code == 0, result.output
    assert "Recommended size: " in result.output
    assert json.loads(out.read_text())["format"] == "backstop-risk/1"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_curve_at_todays_balance_is_the_simulated_probability(tmp_path: Path) -> None:
    """Two computations agree: the share of paths that socialized with today's balance, and
    the curve's share of paths whose required starting balance is above it."""
    from ledger.sim.positions import opening_positions
    from ledger.sim.simulate import SimulationConfig

    url = make_fund(tmp_path, "20000.00")
    book = write_lines(tmp_path / "book.jsonl", opening_positions(SimulationConfig(traders=200)))
    result = risk(url, "--positions", str(book), "--scenario", "stochastic", "--paths", "60",
                  "--horizon", "60", "--vol", "0.2", "--json")
    assert result.exit_code == 0, result.output
    [active] = json.loads(result.output)["policies"]
    at_balance = dict(active["socialization_curve"])["20000.00"]
    assert at_balance == active["probability_of_socialization"]
    assert 0 < float(at_balance) < 1


def test_an_output_that_cannot_be_written_leaves_no_output(tmp_path: Path, url: str) -> None:
    """--out into a missing folder: exit 2 in one line, and the PNG written first is gone."""
    book = write_lines(tmp_path / "book.jsonl", [position()])
    png, out = tmp_path / "risk.png", tmp_path / "missing" / "report.json"
    result = risk(url, "--positions", str(book), "--scenario", "btc-2020-03-12",
                  "--horizon", "10", "--png", str(png), "--out", str(out))
    _one_line_exit_2(result, f"--out {out}: cannot write")
    assert not png.exists() and not out.exists()
