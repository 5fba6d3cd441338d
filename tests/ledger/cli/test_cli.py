"""The `backstop` CLI through click's CliRunner: exit codes, one-line errors, JSON output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger.cli.main import main
from tests.factories import crash_records, fee, fund_config, write_jsonl


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"BACKSTOP_DB": f"sqlite:///{tmp_path / 'cli.sqlite'}"}


def run(args: list[str], env: dict[str, str]):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


@pytest.fixture
def funded(tmp_path: Path, env: dict[str, str]) -> Path:
    config = tmp_path / "fund.json"
    config.write_text(json.dumps(fund_config()))
    assert run(["init", str(config), "--time", "2020-03-12T00:00:00Z"], env).exit_code == 0
    facts = write_jsonl(tmp_path / "facts.jsonl", crash_records())
    result = run(["import", str(facts)], env)
    assert result.exit_code == 0, result.output
    assert result.output == ("4 facts recorded (1 capital, 1 fee, 2 liquidation), 0 already "
                             "recorded; 9 events in 1 batches\n")
    return facts


def test_balances_json_has_the_hand_computed_numbers(funded: Path, env: dict[str, str]) -> None:
    doc = json.loads(run(["balances", "--json"], env).output)
    usdt = doc["assets"]["USDT"]
    assert (doc["log_size"], doc["policy_version"]) == (11, 1)
    assert (usdt["balance"], usdt["inflow"], usdt["covered"], usdt["socialized"],
            usdt["clawed_back"]) == ("1.50", "29.55", "128.05", "71.95", "71.95")


def test_account_totals(funded: Path, env: dict[str, str]) -> None:
    doc = json.loads(run(["account", "x", "--json"], env).output)
    assert doc["assets"]["USDT"] == {"fees": "0.00", "payouts": "0.00", "clawbacks": "50.37"}
    missing = run(["account", "nobody"], env)
    assert missing.exit_code == 2
    assert "account 'nobody': no fees, payouts or clawbacks recorded" in missing.output


def test_bad_record_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, funded: Path,
                                                          env: dict[str, str]) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", [fee("g1", "1.00"), {**fee("g2", "1.00"),
                                                                     "asset": "usdt"}])
    result = run(["import", str(bad)], env)
    assert result.exit_code == 2
    assert result.output == (f"Error: {bad}: line 2: asset: 'usdt' does not match "
                             "'^[A-Z0-9][A-Z0-9._-]{0,31}$'\n")
    assert json.loads(run(["balances", "--json"], env).output)["log_size"] == 11


def test_reimport_reports_already_recorded(funded: Path, env: dict[str, str]) -> None:
    result = run(["import", str(funded), "--json"], env)
    assert json.loads(result.output)["already_recorded"] == 4


def test_history_pages_and_export_is_canonical(tmp_path: Path, funded: Path,
                                               env: dict[str, str]) -> None:
    page = run(["history", "--page", "2", "--per-page", "5", "--json"], env)
    assert [json.loads(line)["index"] for line in page.output.splitlines()] == [5, 6, 7, 8, 9]
    beyond = run(["history", "--page", "9", "--per-page", "5"], env)
    assert beyond.exit_code == 2 and "the log has 3 pages of 5" in beyond.output
    out = tmp_path / "events.jsonl"
    assert run(["export", str(out)], env).exit_code == 0
    lines = out.read_bytes().splitlines()
    assert len(lines) == 11
    first = json.loads(lines[0])
    assert lines[0] == json.dumps(first, sort_keys=True, separators=(",", ":")).encode()


def test_rebuild_reports_identical_projections(funded: Path, env: dict[str, str]) -> None:
    result = run(["rebuild", "--json"], env)
    assert json.loads(result.output) == {"events": 11, "unchanged": True,
                                         "log_root_matches": True}


def test_the_old_name_replay_still_rebuilds_and_says_it_moved(funded: Path,
                                                              env: dict[str, str]) -> None:
    result = run(["replay"], env)
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "`backstop replay` is now `backstop rebuild` (`backstop-audit replay` is the auditor's "
        "replay of an export)",
        "replayed 11 events of fund main: projections are identical to the incremental ones"]
    listed = run(["--help"], env).output
    assert "  rebuild " in listed and "  replay " not in listed


def test_unknown_fund_and_unsupported_url_are_usage_errors(funded: Path,
                                                           env: dict[str, str]) -> None:
    assert run(["balances", "--fund", "nope"], env).exit_code == 2
    result = run(["balances", "--db", "mysql://x"], env)
    assert result.exit_code == 2 and "unsupported database URL" in result.output


def test_empty_database_says_how_to_start(env: dict[str, str]) -> None:
    result = run(["balances"], env)
    assert result.exit_code == 2
    assert "this database has no fund yet: create one with `backstop init CONFIG`" in result.output


def test_keygen_writes_a_private_file_and_refuses_to_overwrite(tmp_path: Path,
                                                               env: dict[str, str]) -> None:
    from auditor.verify.keys import Signer

    key = tmp_path / "op.key"
    result = run(["keygen", "ops.example/fund", "--out", str(key)], env)
    vkey = result.output.strip()
    assert result.exit_code == 0 and vkey.startswith("ops.example/fund+")
    assert key.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "op.key.pub").read_text().strip() == vkey
    assert Signer.from_pem(key.read_bytes()).verifier_key() == vkey
    again = run(["keygen", "ops.example/fund", "--out", str(key)], env)
    assert again.exit_code == 2 and "already exists; pass --force" in again.output


def test_encrypted_key_needs_its_passphrase_to_publish(tmp_path: Path, funded: Path,
                                                       env: dict[str, str]) -> None:
    key = tmp_path / "enc.key"
    locked = {**env, "BACKSTOP_KEY_PASSPHRASE": "correct horse"}
    assert run(["keygen", "ops.example/fund", "--out", str(key), "--encrypt"], locked) \
        .exit_code == 0
    assert b"ENCRYPTED" in key.read_bytes()
    wrong = run(["snapshot", "publish", "--key", str(key), "--out", str(tmp_path / "p")],
                {**env, "BACKSTOP_KEY_PASSPHRASE": "wrong"})
    assert wrong.exit_code == 2 and f"--key {key}:" in wrong.output
    ok = run(["snapshot", "publish", "--key", str(key), "--out", str(tmp_path / "p")], locked)
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "p" / "snapshot.json").exists()
