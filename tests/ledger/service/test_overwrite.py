"""Outputs are never replaced without --force, and keygen never writes through a symlink:
`keygen`, `export` and `simulate` each refuse in one line with exit 2 and write nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.verify.keys import Signer
from ledger.cli.main import main
from tests.factories import cli_crash_fund


def run(args: list[str], env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def refused(path: Path, option: str = "--out") -> str:
    return f"Error: {option} {path} already exists; pass --force to replace it\n"


def test_keygen_never_writes_through_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "authorized_keys"
    victim.write_text("precious\n")
    key = tmp_path / "op.key"
    (tmp_path / "op.key.pub").symlink_to(victim)
    result = run(["keygen", "ops.example", "--out", str(key)])
    assert result.exit_code == 2
    assert result.output == refused(tmp_path / "op.key.pub")
    assert victim.read_text() == "precious\n" and not key.exists()

    # --force replaces the link itself, never the file it points to.
    forced = run(["keygen", "ops.example", "--out", str(key), "--force"])
    assert forced.exit_code == 0, forced.output
    public = tmp_path / "op.key.pub"
    assert not public.is_symlink() and public.read_text() == forced.output
    assert victim.read_text() == "precious\n"


def test_keygen_refuses_a_dangling_symlink_as_the_private_key(tmp_path: Path) -> None:
    key = tmp_path / "op.key"
    key.symlink_to(tmp_path / "elsewhere.pem")
    result = run(["keygen", "ops.example", "--out", str(key)])
    assert result.exit_code == 2 and result.output == refused(key)
    assert not (tmp_path / "elsewhere.pem").exists() and not (tmp_path / "op.key.pub").exists()


def test_keygen_replaces_an_existing_key_pair_only_with_force(tmp_path: Path) -> None:
    key = tmp_path / "op.key"
    first = run(["keygen", "ops.example", "--out", str(key)]).output
    pem = key.read_bytes()
    again = run(["keygen", "ops.example", "--out", str(key)])
    assert again.exit_code == 2 and again.output == refused(key)
    assert key.read_bytes() == pem
    # A lone .pub is protected too, and nothing is written when it is refused.
    key.unlink()
    lone = run(["keygen", "ops.example", "--out", str(key)])
    assert lone.exit_code == 2 and lone.output == refused(tmp_path / "op.key.pub")
    assert not key.exists() and (tmp_path / "op.key.pub").read_text() == first

    key.write_bytes(pem)
    key.chmod(0o644)  # the replacement gets 0600 whatever the old file had
    forced = run(["keygen", "ops.example", "--out", str(key), "--force"])
    assert forced.exit_code == 0 and forced.output != first
    assert key.stat().st_mode & 0o777 == 0o600
    assert Signer.from_pem(key.read_bytes()).verifier_key() + "\n" == forced.output
    assert (tmp_path / "op.key.pub").read_text() == forced.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["op.key", "op.key.pub"]


def test_export_replaces_an_existing_file_only_with_force(tmp_path: Path) -> None:
    env = cli_crash_fund(tmp_path)
    out = tmp_path / "events.jsonl"
    out.write_text("mine\n")
    result = run(["export", str(out)], env)
    assert result.exit_code == 2 and result.output == refused(out, "FILE")
    assert out.read_text() == "mine\n"
    forced = run(["export", str(out), "--force"], env)
    assert forced.output == f"exported 11 events to {out}\n"
    assert len(out.read_bytes().splitlines()) == 11
    assert run(["export", "-"], env).output.count("\n") == 11  # stdout needs no --force


def test_simulate_replaces_existing_outputs_only_with_force(tmp_path: Path) -> None:
    facts, config = tmp_path / "facts.jsonl", tmp_path / "fund.json"
    config.write_text("mine\n")
    args = ["simulate", "--traders", "20", "--steps", "12", "--out", str(facts),
            "--fund-config", str(config)]
    result = run(args)
    assert result.exit_code == 2 and result.output == refused(config, "--fund-config")
    assert not facts.exists() and config.read_text() == "mine\n"  # checked before writing
    forced = run([*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert json.loads(config.read_text())["fund"] and facts.stat().st_size > 0
    facts_bytes = facts.read_bytes()
    again = run(args[:-2])
    assert again.exit_code == 2 and again.output == refused(facts)
    assert facts.read_bytes() == facts_bytes


@pytest.mark.parametrize("option", ["--out", "--fund-config"])
def test_simulate_never_writes_through_a_symlink(tmp_path: Path, option: str) -> None:
    """A symlink at either output is refused with --force too; the file it points to and the
    other output are untouched (checked before simulating)."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    paths = {"--out": tmp_path / "facts.jsonl", "--fund-config": tmp_path / "fund.json"}
    paths[option].symlink_to(victim)
    result = run(["simulate", "--traders", "20", "--steps", "12", "--force",
                  *(arg for o, p in paths.items() for arg in (o, str(p)))])
    assert result.exit_code == 2
    assert result.output == (f"Error: {option} {paths[option]} is a symlink; refusing to write "
                             "through it (remove it, or name the file it points to)\n")
    assert victim.read_text() == "keep me\n"
    assert [p.name for p in tmp_path.iterdir() if p != victim] == [paths[option].name]


def test_simulate_writes_both_outputs_or_neither(tmp_path: Path) -> None:
    """--fund-config in a folder that does not exist: the facts file is not left behind."""
    facts, config = tmp_path / "facts.jsonl", tmp_path / "missing" / "fund.json"
    result = run(["simulate", "--traders", "20", "--steps", "12", "--out", str(facts),
                  "--fund-config", str(config)])
    assert result.exit_code == 2
    assert result.output == f"Error: {config}: cannot write (No such file or directory)\n"
    assert list(tmp_path.iterdir()) == []

