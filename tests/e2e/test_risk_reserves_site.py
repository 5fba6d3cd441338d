"""Issues 14, 15 and 16 together, through the CLIs: a fund publishes snapshots that carry BOTH
a proof of reserves (backstop-snapshot/2 holdings) and its sizing figures (`snapshot publish
--risk` with a real `backstop risk --out` report), in both layouts; `backstop-audit snapshot`
and `backstop-audit reserves` verify them (and say the risk figures cannot be recomputed); the
site's verifier (ledger/site_assets/verify.mjs under Node.js) agrees; `backstop site build`
shows the exact published sizing figures.

The fund is tests/reserves_kit.py's: 1000.00 USDT and 2.00000000 ETH. The risk report is the
hand case of tests/ledger/risk (one 10x long of 1 BTC at 10000 with 1000.00 collateral, one
scenario path 10000 -> 9500 -> 8000, no slippage): the long is liquidated at 8000, a deficit
of 1 x (10000 - 8000) - 1000.00 = 1000.00, so ES 99.9% = cover-2 = 1000.00, recommended size
1000.00 x 1.2 = 1200.00, and today's balance 1000.00 covers 1000.00 / 1200.00 = 0.833333.
Holdings (each snapshot): USDT 600.00 at A (token, block 5), USDT 500.00 at the custodian, ETH
2.00000000 at B; the auditor's balances (block 5 at 00:59:00, one minute before the first
round's 01:00:00): A 650 USDT, B 2.5 ETH. The second snapshot (after 1.00 USDT more capital:
reserve 1001.00) is published at 01:30:00, block 6 at 01:29:00.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditor.cli import main as audit_main
from ledger.cli.main import main as backstop
from ledger.service.site import flatten
from tests.e2e.site_world import data_of
from tests.reserves_kit import (
    ADDRESS_A,
    ADDRESS_B,
    CHAIN,
    ROUND_TIME,
    TOKEN,
    Kit,
    capital,
    tokens_file,
)

ROOT = Path(__file__).resolve().parents[2]
VERIFY_MJS = ROOT / "ledger" / "site_assets" / "verify.mjs"
RUNNER = Path(__file__).with_name("verdicts.mjs")
SECOND_TIME = "2020-03-12T01:30:00Z"
HEADLINE = {"asset": "USDT", "es_999_deficits": "1000.00", "cover_2": "1000.00",
            "recommended_size": "1200.00", "balance": "1000.00", "coverage": "0.833333",
            "paths": 1}


class Published:
    """The fund's folder and what was published: a tiled log and a directory snapshot."""

    def __init__(self, kit: Kit) -> None:
        self.kit = kit
        self.vkey = (kit.folder / "ops.pub").read_text().strip()
        self.tiled = kit.folder / "log"
        self.directory = kit.folder / "dir"
        self.tiled_snapshot = self.tiled / "snapshots" / "4" / "snapshot.json"
        self.directory_snapshot = self.directory / "snapshot.json"

    def doc(self, path: Path) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(path.read_text())
        return loaded


def _round(kit: Kit, time: str, block: int) -> None:
    kit.ok("reserves", "challenge", "--time", time)
    result = kit.add(kit.onchain("a", ADDRESS_A, "USDT", "600.00", TOKEN, block=block),
                     kit.custodian_line(),
                     kit.onchain("b", ADDRESS_B, "ETH", "2.00000000", None, block=block))
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    kit = Kit(tmp_path_factory.mktemp("risk-reserves-site"))
    kit.create()
    book = kit.folder / "book.jsonl"
    book.write_text(json.dumps({
        "account": "alice", "market": "BTC-PERP", "side": "long", "size": "1",
        "entry_price": "10000", "collateral": "1000.00", "maintenance_margin_rate": "0.005",
        "mark_price": "10000"}) + "\n")
    (kit.folder / "path.csv").write_text("crash\n10000\n9500\n8000\n")
    report = kit.folder / "risk.json"
    kit.ok("risk", "--positions", str(book), "--scenario", str(kit.folder / "path.csv"),
           "--horizon", "2", "--slippage", "0", "--out", str(report))
    world = Published(kit)
    key = str(kit.folder / "ops.key")
    _round(kit, ROUND_TIME, 5)
    kit.ok("snapshot", "publish", "--key", key, "--out", str(world.tiled), "--layout", "tiles",
           "--risk", str(report))
    kit.import_facts(capital("c3", "USDT", "1.00"))
    _round(kit, SECOND_TIME, 6)
    kit.ok("snapshot", "publish", "--key", key, "--out", str(world.directory),
           "--layout", "directory", "--risk", str(report))
    return world


def _balances(world: Published) -> Path:
    path = world.kit.folder / "balances.json"
    entries = []
    for block, when in ((5, "2020-03-12T00:59:00Z"), (6, "2020-03-12T01:29:00Z")):
        entries += [{"chain": CHAIN, "address": ADDRESS_A, "token": TOKEN, "block": block,
                     "balance": str(650 * 10**6), "block_time": when},
                    {"chain": CHAIN, "address": ADDRESS_B, "token": None, "block": block,
                     "balance": str(25 * 10**17), "block_time": when}]
    path.write_text(json.dumps({"format": "backstop-balances/1", "balances": entries}))
    return path


def _audit(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(audit_main, [*args, "--json"])
    verdict: dict[str, Any] = json.loads(result.output)
    return result.exit_code, verdict


def _risk_note(verdict: dict[str, Any]) -> str:
    [note] = [c for c in verdict["checks"] if c["check"] == "metrics.risk"]
    assert note["ok"] is None  # a note, neither passed nor failed: nothing was recomputed
    return str(note["detail"])


def test_both_layouts_carry_holdings_and_the_sizing_figures(published: Published) -> None:
    for path, size, reserve in ((published.tiled_snapshot, 4, "1000.00"),
                                (published.directory_snapshot, 5, "1001.00")):
        doc = published.doc(path)
        assert doc["format"] == "backstop-snapshot/2"
        assert doc["log"]["size"] == size
        assert doc["reserves"] == {"ETH": "2.00000000", "USDT": reserve}
        assert [h["kind"] for h in doc["holdings"]] == ["onchain", "custodian", "onchain"]
        risk = doc["metrics"]["risk"]
        assert {k: risk[k] for k in HEADLINE} == HEADLINE


@pytest.mark.parametrize("which", ["tiled_snapshot", "directory_snapshot"])
def test_the_auditor_verifies_both_and_cannot_recompute_the_risk(published: Published,
                                                                  which: str) -> None:
    """`snapshot` and `reserves` both verify (exit 0), each with the metrics.risk note.
    Reserves: USDT (600 + 500) / 1000.00 = 1.100000 for the first, 1100.00 / 1001.00 =
    1.0989010... -> 1.098901 for the second; ETH 2 / 2 = 1.000000."""
    path = str(getattr(published, which))
    code, verdict = _audit("snapshot", path, "--key", published.vkey)
    assert code == 0, verdict
    note = _risk_note(verdict)
    assert note == ("schema, signature and model hash checked; the figures (ES 99.9% 1000.00, "
                    "recommended size 1200.00 USDT, coverage 0.833333) cannot be recomputed "
                    "without the exchange's positions snapshot")
    code, verdict = _audit("reserves", path, "--key", published.vkey,
                           "--balances", str(_balances(published)),
                           "--tokens", str(tokens_file(published.kit.folder / "tokens.json")),
                           "--custodian-key", str(published.kit.folder / "acme.pub"))
    assert code == 0, verdict
    assert _risk_note(verdict) == note
    usdt = "1.100000" if which == "tiled_snapshot" else "1.098901"
    assert verdict["reserve_ratio"] == {"ETH": "1.000000", "USDT": usdt}


def test_the_site_shows_the_exact_published_sizing_figures(published: Published,
                                                           tmp_path: Path) -> None:
    out = tmp_path / "site"
    result = CliRunner().invoke(backstop, [
        "site", "build", "--published", str(published.tiled), str(published.directory),
        "--out", str(out), "--key", published.vkey])
    assert result.exit_code == 0, result.output
    data = data_of(out)
    tiled, directory = (published.doc(published.tiled_snapshot),
                        published.doc(published.directory_snapshot))
    assert data["risk"] == [
        {"size": 4, "time": ROUND_TIME, "figures": flatten(tiled["metrics"]["risk"])},
        {"size": 5, "time": SECOND_TIME, "figures": flatten(directory["metrics"]["risk"])}]
    rows = dict(data["risk"][0]["figures"])
    assert {k: rows[k] for k in ("es_999_deficits", "cover_2", "recommended_size", "balance",
                                 "coverage", "asset")} == {
        "es_999_deficits": "1000.00", "cover_2": "1000.00", "recommended_size": "1200.00",
        "balance": "1000.00", "coverage": "0.833333", "asset": "USDT"}
    assert rows["model.hash"] == tiled["metrics"]["risk"]["model"]["hash"]
    # the site's copies are the signed snapshots, holdings and all
    assert [s["doc"] for s in data["snapshots"]] == [tiled, directory]
    assert json.loads((out / "snapshots" / "4" / "snapshot.json").read_text()) == tiled


def test_the_sites_verifier_agrees(published: Published, node: str, tmp_path: Path) -> None:
    """verify.mjs (WebCrypto and the @noble fallbacks) and `backstop-audit snapshot` reach the
    same verdict: both snapshots verify (the site notes metrics.risk as the auditor does); a
    holding's amount changed without re-signing fails both with the same reason; a model
    hash that is not its parameters' (re-signed by the operator) fails both with the same
    reason; a /1 snapshot carrying holdings, or a /2 without them, is an input error to both."""
    kit = published.kit
    directory = published.doc(published.directory_snapshot)
    unsigned = json.loads(json.dumps(directory))
    unsigned["holdings"][1]["amount"] = "5000.00"
    (tmp_path / "unsigned.json").write_text(json.dumps(unsigned))
    rehashed = json.loads(json.dumps(directory))
    rehashed["metrics"]["risk"]["model"]["hash"] = "ab" * 32
    contradicted = {}  # figures the snapshot itself contradicts, re-signed by the operator
    for field, value in (("asset", "XYZ"), ("probability_of_socialization", "7.5"),
                         ("coverage", "999.000000"), ("coverage", None)):
        changed = json.loads(json.dumps(directory))
        changed["metrics"]["risk"][field] = value
        name = f"risk-{field}-{value}"
        contradicted[name] = kit.resign(changed, f"{name}.json")
    as_v1 = dict(directory, format="backstop-snapshot/1")
    no_holdings = {k: v for k, v in directory.items() if k != "holdings"}
    files = {"tiled": published.tiled_snapshot, "directory": published.directory_snapshot,
             "unsigned": tmp_path / "unsigned.json",
             "rehashed": kit.resign(rehashed, "rehashed.json"),
             "v1-with-holdings": kit.resign(as_v1, "v1-with-holdings.json"),
             "v2-without-holdings": kit.resign(no_holdings, "v2-without-holdings.json"),
             **contradicted}
    expected = {"tiled": 0, "directory": 0, "unsigned": 1, "rehashed": 1,
                "v1-with-holdings": 2, "v2-without-holdings": 2, **dict.fromkeys(contradicted, 1)}
    cases = [{"name": name, "kind": "snapshot", "key": published.vkey,
              "files": {"snapshot": str(path)}} for name, path in files.items()]
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    auditor = {name: _audit("snapshot", str(path), "--key", published.vkey)
               for name, path in files.items()}
    assert {name: code for name, (code, _) in auditor.items()} == expected
    assert auditor["rehashed"][1]["reason"] == (
        "metrics.risk: model.hash is not the SHA-256 of the RFC 8785 bytes of model.parameters")
    assert auditor["risk-coverage-None"][1]["reason"].startswith(
        "metrics.risk.coverage: None is not balance / recommended size (")
    assert auditor["unsigned"][1]["reason"].startswith(
        "snapshot signatures: signature 0 by ops.example/fund+")
    for engine in ("webcrypto", "noble"):
        run = subprocess.run([node, str(RUNNER), str(VERIFY_MJS), str(tmp_path / "cases.json"),
                              engine], capture_output=True, text=True, check=True, timeout=120)
        site = {v["name"]: v for v in json.loads(run.stdout)["verdicts"]}
        for name, (code, verdict) in auditor.items():
            js = site[name]
            if code == 0:
                assert js["ok"] is True, (engine, name, js)
            elif code == 1:
                assert (js["ok"], js["input"], js["reason"]) == (False, False, verdict["reason"]), \
                    (engine, name)
            else:
                assert (js["ok"], js["input"]) == (False, True), (engine, name, js)
