"""Commands that write files end in one line and exit 2 when they cannot write, never in a
traceback (a missing folder), and a key file that is not text is an input error."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ledger.cli.main import main
from tests.factories import TIME, fund_config

MISSING = "/nonexistent-backstop-dir/out"


def run(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_keygen_into_a_missing_folder(tmp_path: Path) -> None:
    code, out = run("keygen", "op", "--out", MISSING)
    assert code == 2 and out.strip().splitlines() == [
        f"Error: --out {MISSING}: cannot write (No such file or directory)"], out


def test_simulate_into_a_missing_folder() -> None:
    code, out = run("simulate", "--traders", "5", "--steps", "3", "--out", MISSING)
    assert code == 2 and out.strip().splitlines() == [
        f"Error: {MISSING}: cannot write (No such file or directory)"], out


def test_export_into_a_missing_folder_and_publish_with_a_binary_key(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    config = tmp_path / "fund.json"
    config.write_text(json.dumps(fund_config()))
    assert run("init", config, "--db", db, "--time", TIME)[0] == 0
    code, out = run("export", MISSING, "--db", db)
    assert code == 2 and out.strip().splitlines() == [
        f"Error: FILE {MISSING}: cannot write (No such file or directory)"], out
    key = tmp_path / "bad.key"
    key.write_bytes(b"\xff\xfe\x00garbage")
    code, out = run("snapshot", "publish", "--key", key, "--out", tmp_path / "pub", "--db", db,
                    "--time", "2020-03-13T00:00:00Z")
    assert code == 2 and len(out.strip().splitlines()) == 1
    assert out.startswith(f"Error: --key {key}: "), out
    assert not (tmp_path / "pub").exists()
    assert list(tmp_path.glob(".*partial")) == []


def test_a_config_or_policy_nested_beyond_the_parser_is_one_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    deep = "[" * 50_000 + "]" * 50_000
    config = tmp_path / "fund.json"
    config.write_text(deep)
    code, out = run("init", config, "--db", db, "--time", TIME)
    assert (code, out) == (2, f"Error: {config}: not valid JSON: nested deeper than 256 levels\n")
    policy = tmp_path / "policy.json"
    policy.write_text(deep)
    config.write_text(json.dumps({**fund_config(), "policy": "policy.json"}))
    code, out = run("init", config, "--db", db, "--time", TIME)
    assert code == 2 and out == (f"Error: {config}: policy: cannot read {policy}: "
                                 "nested deeper than 256 levels\n"), out
    assert run("balances", "--db", db) == (
        2, "Error: this database has no fund yet: create one with `backstop init CONFIG`\n")


def test_every_command_that_signs_names_a_bad_key_file_in_one_line(tmp_path: Path) -> None:
    # The key is loaded by ledger.service.signing.load_signer; the CLI adds its option's name.
    db = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    config = tmp_path / "fund.json"
    config.write_text(json.dumps(fund_config()))
    assert run("init", config, "--db", db, "--time", TIME)[0] == 0
    key = tmp_path / "bad.key"
    key.write_text("not a key\n")
    expected = f"Error: --key {key}: key file has no name header and no name was given\n"
    for command in (["snapshot", "publish", "--out", tmp_path / "pub"],
                    ["reserves", "custodian-sign", "--asset", "USDT", "--account", "c",
                     "--amount", "1.00"],
                    ["follow", "--stream", "s", "--dead-letter", "s.dead", "--publish-every", "1h",
                     "--out", tmp_path / "f"]):
        assert run(*command, "--key", key, "--db", db) == (2, expected), command
    assert not (tmp_path / "pub").exists() and not (tmp_path / "f").exists()
