"""`snapshot publish --risk`: the headline in the signed metrics, checked by the auditor."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from auditor.cli import main as audit
from ledger.cli.main import main as backstop
from tests.ledger.risk.helpers import make_fund, position, risk, write_lines


def _setup(tmp_path: Path) -> tuple[str, Path, Path, str]:
    url = make_fund(tmp_path, "500.00")
    book = write_lines(tmp_path / "book.jsonl", [position()])
    (tmp_path / "path.csv").write_text("crash\n10000\n9500\n8000\n")
    report = tmp_path / "risk.json"
    result = risk(url, "--positions", str(book), "--scenario", str(tmp_path / "path.csv"),
                  "--horizon", "2", "--slippage", "0", "--out", str(report))
    assert result.exit_code == 0, result.output
    key = tmp_path / "op.key"
    assert CliRunner().invoke(backstop, ["keygen", "op.example", "--out", str(key)]).exit_code == 0
    return url, report, key, (tmp_path / "op.key.pub").read_text().strip()


def test_published_headline_verifies_with_a_plain_note(tmp_path: Path) -> None:
    """The hand case's figures (see test_hand_case): ES 99.9% 1000.00, cover-2 1000.00,
    recommended 1200.00, coverage 0.416667, P(socialization) 1."""
    url, report, key, vkey = _setup(tmp_path)
    out = tmp_path / "pub"
    result = CliRunner().invoke(backstop, ["snapshot", "publish", "--db", url, "--key", str(key),
                                           "--out", str(out), "--risk", str(report)])
    assert result.exit_code == 0, result.output
    snap = json.loads((out / "snapshot.json").read_text())
    headline = snap["metrics"]["risk"]
    assert {k: headline[k] for k in ("asset", "es_999_deficits", "cover_2", "recommended_size",
                                     "balance", "coverage", "probability_of_socialization",
                                     "paths")} == {
        "asset": "USDT", "es_999_deficits": "1000.00", "cover_2": "1000.00",
        "recommended_size": "1200.00", "balance": "500.00", "coverage": "0.416667",
        "probability_of_socialization": "1.000000", "paths": 1}
    verdict = CliRunner().invoke(audit, ["snapshot", str(out / "snapshot.json"), "--key", vkey,
                                         "--json"])
    assert verdict.exit_code == 0, verdict.output
    checks = {c["check"]: c for c in json.loads(verdict.output)["checks"]}
    assert checks["metrics.risk"]["ok"] is None
    assert "cannot be recomputed without the exchange's positions snapshot" in \
        checks["metrics.risk"]["detail"]
    replay = CliRunner().invoke(audit, ["replay", str(out / "events.jsonl"), "--snapshot",
                                        str(out / "snapshot.json"), "--key", vkey, "--json",
                                        "--skip-accounts"])
    assert replay.exit_code == 0, replay.output
    notes = [c for c in json.loads(replay.output)["checks"] if c["check"] == "metrics.risk"]
    assert len(notes) == 1 and notes[0]["ok"] is None


def test_bad_risk_reports_are_refused(tmp_path: Path) -> None:
    url, report, key, _ = _setup(tmp_path)
    doc = json.loads(report.read_text())
    cases = {
        "not-json.json": ("{", "not a readable JSON file"),
        "other-fund.json": (json.dumps({**doc, "fund": "other"}), "fund: the report is of fund"),
        "tampered.json": (json.dumps({**doc, "model": {**doc["model"], "parameters": {
            **doc["model"]["parameters"], "paths": 5}}}), "model.hash: is not the SHA-256"),
        "no-format.json": (json.dumps({"fund": "main"}), "format: not a `backstop risk`"),
    }
    for name, (text, expected) in cases.items():
        (tmp_path / name).write_text(text)
        out = tmp_path / f"pub-{name}"
        result = CliRunner().invoke(backstop, ["snapshot", "publish", "--db", url, "--key",
                                               str(key), "--out", str(out), "--risk",
                                               str(tmp_path / name)])
        assert result.exit_code == 2, result.output
        assert expected in result.output and len(result.output.strip().splitlines()) == 1
        assert not out.exists()


def _audit_tampered(tmp_path: Path, tamper: Callable[[dict[str, Any]], None]) -> Result:
    """Publish the hand case's headline changed by `tamper`, signed by the operator's own
    key (as a dishonest operator could), and audit the snapshot."""
    from ledger.service.signing import load_signer
    from ledger.risk.headline import risk_metrics
    from ledger.service.application import Ledger
    from ledger.service.publish import publish

    url, report, key, vkey = _setup(tmp_path)
    headline = risk_metrics(json.loads(report.read_text()), "main", {"USDT": 2})
    assert (headline["balance"], headline["recommended_size"], headline["coverage"]) == (
        "500.00", "1200.00", "0.416667")
    tamper(headline)
    ledger = Ledger(url)
    try:
        publish(ledger, "main", load_signer(key), tmp_path / "pub", "2026-01-01T00:00:00Z",
                risk=headline)
    finally:
        ledger.close()
    return CliRunner().invoke(audit, ["snapshot", str(tmp_path / "pub" / "snapshot.json"),
                                      "--key", vkey])


def test_a_tampered_model_hash_fails_the_audit(tmp_path: Path) -> None:
    """A snapshot signed with a model hash that is not its parameters' fails (exit 1)."""
    from auditor.formats.wire import canonical_bytes, sha256_hex

    def rehash(headline: dict[str, Any]) -> None:
        headline["model"]["hash"] = sha256_hex(canonical_bytes({"other": 1}))

    verdict = _audit_tampered(tmp_path, rehash)
    assert verdict.exit_code == 1, verdict.output
    assert "metrics.risk" in verdict.output


def test_tiled_publication_carries_the_headline(tmp_path: Path) -> None:
    """--layout tiles: the snapshot under snapshots/SIZE/ has metrics.risk; a tiled replay
    verifies and notes it once."""
    url, report, key, vkey = _setup(tmp_path)
    root = tmp_path / "log"
    result = CliRunner().invoke(backstop, ["snapshot", "publish", "--db", url, "--key", str(key),
                                           "--out", str(root), "--layout", "tiles",
                                           "--risk", str(report)])
    assert result.exit_code == 0, result.output
    [folder] = (root / "snapshots").iterdir()
    snap = json.loads((folder / "snapshot.json").read_text())
    assert snap["metrics"]["risk"]["recommended_size"] == "1200.00"
    verdict = CliRunner().invoke(audit, ["replay", str(root), "--key", vkey, "--json"])
    assert verdict.exit_code == 0, verdict.output
    notes = [c for c in json.loads(verdict.output)["checks"] if c["check"] == "metrics.risk"]
    assert len(notes) == 1 and "cannot be recomputed" in notes[0]["detail"]


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("asset", "XYZ", "metrics.risk.asset: 'XYZ' is not an asset of the snapshot's reserves"),
    ("probability_of_socialization", "7.5",
     "metrics.risk.probability_of_socialization: 7.5 is not a probability (0 to 1)"),
    # the hand case: balance 500.00, recommended 1200.00: 500 / 1200 = 0.41666.. -> 0.416667
    ("coverage", "999.000000", ("metrics.risk.coverage: 999.000000 is not balance / "
                                "recommended size (500.00 / 1200.00 = 0.416667)")),
])
def test_risk_figures_the_snapshot_itself_contradicts_fail(tmp_path: Path, field: str,
                                                            value: str, reason: str) -> None:
    """Signed by the operator's key, yet impossible: an asset the fund does not hold, a
    probability above 1, a coverage that is not balance / recommended size."""
    verdict = _audit_tampered(tmp_path, lambda headline: headline.update({field: value}))
    assert verdict.exit_code == 1, verdict.output
    assert verdict.output.splitlines()[-1] == f"FAILED: {reason}", verdict.output
