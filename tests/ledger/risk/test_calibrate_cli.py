"""`backstop risk calibrate`: candles and the ledger's marks in, a model file out, and
`backstop risk --model` sizing with it (its hash in the model parameters)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from auditor.formats.schemas import validator
from ledger.cli.main import main
from tests.ledger.risk.helpers import make_fund, position, risk, write_lines


@pytest.fixture
def url(tmp_path: Path) -> str:
    return make_fund(tmp_path, "500.00")


def calibrate(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["risk", "calibrate", "--db", url, *args])
    return result.exit_code, result.output


def candles(path: Path, market: str = "BTC-PERP") -> Path:
    # 0.1% a minute for 2,000 minutes, then 3 planted jumps of -5%, +5%, -5%.
    r = np.where(np.arange(2000) % 2 == 0, 0.001, -0.001)
    r[[500, 1000, 1500]] = [-0.05, 0.05, -0.05]
    prices = 10_000 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
    rows = ["time,market,open,high,low,close,volume"]
    rows += [f"{1_600_000_020 + 60 * i},{market},1,1,1,{float(p)!r},0" for i, p in enumerate(prices)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_candles_to_model_to_risk(tmp_path: Path, url: str) -> None:
    csv = candles(tmp_path / "btc.csv")
    out = tmp_path / "model.json"
    code, output = calibrate(url, "--candles", str(csv), "--out", str(out), "--floor-vol", "0")
    assert code == 0, output
    doc = json.loads(out.read_text())
    assert validator("risk-model").is_valid(doc)
    btc = doc["markets"]["BTC-PERP"]
    assert btc["full"]["jumps"] == 3
    assert btc["full"]["jump_size"] == pytest.approx(0.05, rel=1e-9)
    assert btc["sigma_per_minute"] == pytest.approx(0.001, rel=1e-9)
    assert btc["resolution_seconds"] == 60
    # The 1,440-minute window with the largest sum of r^2 holds all three jumps (1,000
    # minutes apart from first to last): 3 jumps in 1,440 minutes beat 3 in 2,000.
    assert btc["stressed"]["jumps"] == 3
    assert btc["jump_rate_per_minute"] == pytest.approx(3 / 1440, rel=1e-9)
    assert doc["sources"] == [{"kind": "candles", "name": "btc.csv", "markets": ["BTC-PERP"],
                               "sha256": hashlib.sha256(csv.read_bytes()).hexdigest()}]
    assert doc["co_movement"] is None  # one market
    book = write_lines(tmp_path / "book.jsonl", [position()])
    result = risk(url, "--positions", str(book), "--model", str(out), "--paths", "20",
                  "--horizon", "100", "--scenario", "stochastic", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    params = report["model"]["parameters"]
    assert params["model_file_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    # Per-minute rates over a 100-step horizon: vol 0.001 x 10, intensity (3/1440) x 100.
    assert float(params["stochastic"]["vol"]) == pytest.approx(0.01, rel=1e-9)
    assert float(params["stochastic"]["jump_intensity"]) == pytest.approx(300 / 1440, rel=1e-9)
    assert float(params["stochastic"]["jump_size"]) == pytest.approx(0.05, rel=1e-9)


def test_the_ledgers_marks(tmp_path: Path, url: str) -> None:
    # Five-minute marks 100, 101, 100, 101, 100, 50, 50.25 (the estimators' hand case).
    marks = [100, 101, 100, 101, 100, 50, "50.25"]
    facts = write_lines(tmp_path / "obs.jsonl", [
        {"type": "observation", "id": f"obs-{i}", "time": f"2020-03-12T00:{5 * i:02d}:00Z",
         "market": "BTC-PERP", "mark_price": str(m), "open_interest": "10"}
        for i, m in enumerate(marks)])
    assert CliRunner().invoke(main, ["import", str(facts), "--db", url]).exit_code == 0
    out = tmp_path / "model.json"
    code, output = calibrate(url, "--out", str(out), "--window", "10", "--floor-vol", "0")
    assert code == 0, output
    btc = json.loads(out.read_text())["markets"]["BTC-PERP"]
    assert btc["source"] == "main" and btc["resolution_seconds"] == 300
    assert btc["full"]["jumps"] == 1
    assert btc["jump_size"] == pytest.approx(math.log(2), rel=1e-12)
    # ln 1.01 over each 5-minute step: sigma per minute ln(1.01) / sqrt(5).
    assert btc["stressed"]["sigma_per_minute"] == pytest.approx(math.log(1.01) / math.sqrt(5),
                                                                rel=1e-12)
    assert btc["stressed_window"] == ["2020-03-12T00:15:00Z", "2020-03-12T00:25:00Z"]
    assert "BTC-PERP (main, 7 prices every 300 s)" in output


@pytest.mark.parametrize(("text", "expected"), [
    ("time,close\n1,2\n", "btc.csv: line 1: header: no 'market' column"),
    ("time,market,close\n0,BTC-PERP,1\n60,BTC-PERP,-1\n", "btc.csv: line 3: close: '-1' is not"),
    ("time,market,close\nnoon,BTC-PERP,1\n", "btc.csv: line 2: time: 'noon' is not"),
    ("time,market,close\n0,BTC-PERP,1\n0,BTC-PERP,2\n", "btc.csv: line 3: time: BTC-PERP has two"),
    ("time,market,close\n0,BTC-PERP,1\n60,BTC-PERP,2\n",
     "market BTC-PERP (btc.csv): needs at least 3 prices, has 2"),
])
def test_bad_candles_write_nothing(tmp_path: Path, url: str, text: str, expected: str) -> None:
    (tmp_path / "btc.csv").write_text(text)
    out = tmp_path / "model.json"
    code, output = calibrate(url, "--candles", str(tmp_path / "btc.csv"), "--out", str(out))
    assert code == 2, output
    assert len(output.strip().splitlines()) == 1 and expected in output, output
    assert not out.exists()


def test_a_market_missing_from_the_model(tmp_path: Path, url: str) -> None:
    out = tmp_path / "model.json"
    assert calibrate(url, "--candles", str(candles(tmp_path / "e.csv", "ETH-PERP")), "--out",
                     str(out))[0] == 0
    book = write_lines(tmp_path / "book.jsonl", [position()])
    result = risk(url, "--positions", str(book), "--model", str(out))
    assert result.exit_code == 2
    assert "--model: markets: BTC-PERP (a market of the book) is not calibrated" in result.output
    result = risk(url, "--positions", str(book), "--model", str(out), "--vol", "0.1")
    assert result.exit_code == 2 and "--vol: not with --model" in result.output


def test_the_headline_carries_the_model_files_hash(tmp_path: Path, url: str) -> None:
    from ledger.risk.headline import risk_metrics

    out = tmp_path / "model.json"
    assert calibrate(url, "--candles", str(candles(tmp_path / "b.csv")), "--out", str(out))[0] == 0
    book = write_lines(tmp_path / "book.jsonl", [position()])
    result = risk(url, "--positions", str(book), "--model", str(out), "--paths", "5",
                  "--horizon", "10", "--scenario", "stochastic", "--json")
    report = json.loads(result.output)
    headline = risk_metrics(report, "main", {"USDT": 2})
    assert headline["model"]["parameters"]["model_file_sha256"] == \
        hashlib.sha256(out.read_bytes()).hexdigest()


def test_intervals_do_not_change_the_model_or_the_headline(tmp_path: Path, url: str) -> None:
    book = write_lines(tmp_path / "book.jsonl", [position()])
    args = ["--positions", str(book), "--paths", "30", "--horizon", "50", "--json"]
    one = json.loads(risk(url, *args, "--bootstrap", "0").output)
    two = json.loads(risk(url, *args, "--bootstrap", "50").output)
    assert "model_file_sha256" not in one["model"]["parameters"]
    for key in ("deficits", "cover_2", "recommended_size", "policies", "model"):
        assert one[key] == two[key]


def test_coarse_data_is_flagged(tmp_path: Path, url: str) -> None:
    # Hourly candles: the estimators run (per-minute by each return's span) and say so.
    rows = ["time,market,close"] + [f"2017-04-19T{h:02d}:00:00Z,EURUSD,{1 + 0.001 * (h % 2)}"
                                     for h in range(12)]
    (tmp_path / "eur.csv").write_text("\n".join(rows) + "\n")
    code, output = calibrate(url, "--candles", str(tmp_path / "eur.csv"), "--out",
                             str(tmp_path / "m.json"))
    assert code == 0, output
    assert "warning: EURUSD is sampled every 3600 s" in output


def test_candles_alone_open_no_database(tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # No --db and no fund: the default ./backstop.sqlite is never created, on success or on
    # a bad file.
    work, here = tmp_path / "work", tmp_path / "here"
    work.mkdir()
    here.mkdir()
    csv = candles(work / "btc.csv")
    (work / "bad.csv").write_text("time,market,close\n0,BTC-PERP,x\n")
    monkeypatch.chdir(here)
    monkeypatch.delenv("BACKSTOP_DB", raising=False)
    runner = CliRunner()
    bad = runner.invoke(main, ["risk", "calibrate", "--candles", str(work / "bad.csv"),
                               "--out", "m.json"])
    assert bad.exit_code == 2 and "bad.csv: line 2: close: 'x'" in bad.output
    assert sorted(p.name for p in here.iterdir()) == []
    good = runner.invoke(main, ["risk", "calibrate", "--candles", str(csv), "--out", "m.json"])
    assert good.exit_code == 0, good.output
    assert sorted(p.name for p in here.iterdir()) == ["m.json"]
