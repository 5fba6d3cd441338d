"""One contract for import and audit (issue 10, item 6): every limit lives in schemas/*.json;
what `backstop import` accepts, `backstop-audit replay` verifies, and what the audit would
refuse the import refuses (line N: field: reason, exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditor.cli import main as audit
from ledger.cli.main import main as operator
from tests.factories import TIME, capital, fund_config, liquidation, policy, write_jsonl

MAX_SAFE = 2**53 - 1


def run(cli: Any, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    config = tmp_path / "fund.json"
    config.write_text(json.dumps(fund_config()))
    assert run(operator, "init", config, "--db", url, "--time", TIME)[0] == 0
    return url


def log_size(db: str) -> int:
    return int(json.loads(run(operator, "balances", "--json", "--db", db)[1])["log_size"])


def observation(id_: str, mark: str, time: str = TIME) -> dict[str, Any]:
    return {"type": "observation", "id": id_, "time": time, "market": "BTC-PERP",
            "mark_price": mark, "open_interest": "10"}


def policy_fact(id_: str, **overrides: Any) -> dict[str, Any]:
    return {"type": "policy", "id": id_, "time": TIME, "policy": policy(**overrides)}


def volatility(window: int) -> dict[str, Any]:
    return {"volatility": {"window": window, "breakpoints": [["0", "0.5"], ["0.02", "1"]]}}


@pytest.mark.parametrize("record, error", [
    (observation("o1", "0.0"), "mark_price: '0.0' does not match"),
    (observation("o1", "0"), "mark_price: '0' does not match"),
    ({**liquidation("L1", "0.000"), "mark_price": "1"}, "fill_price: '0.000' does not match"),
    (policy_fact("p2", version=1e300), "policy.version: 1e+300 is greater than the maximum"),
    (policy_fact("p2", version=MAX_SAFE + 1), f"policy.version: {MAX_SAFE + 1} is beyond the exact integer range"),
    (policy_fact("p2", version=2.0), "policy.version: 2.0 is not an integer"),
    (policy_fact("p2", version=2, fund_share=volatility(5000)),
     "policy.fund_share.volatility.window: 5000 is greater than the maximum of 4096"),
    (observation("o1", "1", time="2020-03-12T00:00:00.1234567Z"), "time: '2020-03-12T00:00:00"),
])
def test_import_refuses_what_the_audit_refuses(tmp_path: Path, db: str, record: dict[str, Any],
                                               error: str) -> None:
    facts = write_jsonl(tmp_path / "facts.jsonl", [capital("c1", "10"), record])
    code, out = run(operator, "import", facts, "--db", db)
    assert code == 2, out
    assert out.startswith(f"Error: {facts}: line 2: ") and error in out, out
    assert len(out.strip().splitlines()) == 1
    assert log_size(db) == 2  # fund_opened and policy_set only: nothing written


def test_what_the_import_accepts_at_the_limits_the_audit_verifies(tmp_path: Path, db: str) -> None:
    """Largest version and window, smallest positive price, six fraction digits: the audit
    of the published directory verifies."""
    facts = write_jsonl(tmp_path / "facts.jsonl", [
        capital("c1", "1000"),
        observation("o1", "0.00000001", time="2020-03-12T00:00:00.123456Z"),
        observation("o2", "50000"),
        policy_fact("p2", version=MAX_SAFE, fund_share=volatility(4096)),
        liquidation("L1", "56100"),
    ])
    assert run(operator, "import", facts, "--db", db)[0] == 0
    key = tmp_path / "op.key"
    code, out = run(operator, "keygen", "op", "--out", key)
    vkey = out.strip().splitlines()[-1]
    out_dir = tmp_path / "pub"
    assert run(operator, "snapshot", "publish", "--key", key, "--out", out_dir, "--db", db,
               "--time", "2020-03-13T00:00:00Z")[0] == 0
    code, out = run(audit, "replay", out_dir / "events.jsonl", "--snapshot",
                    out_dir / "snapshot.json", "--key", vkey)
    assert code == 0, out
    assert out.rstrip().endswith("VERIFIED")


@pytest.mark.parametrize("time", ["2020-03-12", "2020-03-12T00:00:00+00:00",
                                  "2020-03-12T00:00:00.123456789Z"])
def test_init_refuses_a_time_the_audit_refuses(tmp_path: Path, time: str) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    config = tmp_path / "fund.json"
    config.write_text(json.dumps(fund_config()))
    result = CliRunner().invoke(operator, ["init", str(config), "--db", url, "--time", time])
    assert result.exit_code == 2, result.output
    assert f"time: {time!r} is not of the form YYYY-MM-DDTHH:MM:SS[.ffffff]Z" in result.output
    assert len(result.output.strip().splitlines()) == 1
    code, out = run(operator, "balances", "--db", url)
    assert (code, out) == (2, "Error: this database has no fund yet: create one with `backstop init CONFIG`\n")


def test_a_later_volatility_window_reaches_prices_observed_before_it(tmp_path: Path,
                                                                     db: str) -> None:
    """A policy's window covers every observation in the log, also those recorded while an
    earlier policy had a smaller window (or none). Marks 100, 80, 40: the returns are 0.2 and
    0.5, so window 2 gives volatility (0.2 + 0.5) / 2 = 0.35; the ledger once kept only the
    earlier policy's prices and gave 0.5, which the audit rightly refused."""
    facts = write_jsonl(tmp_path / "facts.jsonl", [
        capital("c1", "1000"),
        observation("o1", "100"), observation("o2", "80"), observation("o3", "40"),
        policy_fact("p2", version=2, fund_share=volatility(2)),
        liquidation("L1", "56100"),
    ])
    assert run(operator, "import", facts, "--db", db)[0] == 0
    export = tmp_path / "events.jsonl"
    assert run(operator, "export", export, "--db", db)[0] == 0
    events = [json.loads(line) for line in export.read_text().splitlines()]
    (settled,) = [e for e in events if e["type"] == "liquidation_settled"]
    assert settled["data"]["outcome"]["volatility"] == "0.350000000000"
    key = tmp_path / "op.key"
    vkey = run(operator, "keygen", "op", "--out", key)[1].strip().splitlines()[-1]
    out_dir = tmp_path / "pub"
    assert run(operator, "snapshot", "publish", "--key", key, "--out", out_dir, "--db", db,
               "--time", "2020-03-13T00:00:00Z")[0] == 0
    code, out = run(audit, "replay", out_dir / "events.jsonl", "--snapshot",
                    out_dir / "snapshot.json", "--key", vkey)
    assert code == 0 and out.rstrip().endswith("VERIFIED"), out
