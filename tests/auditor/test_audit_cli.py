"""backstop-audit end to end: published directories made by `backstop`, verified by
`backstop-audit`, with exact exit codes (0 verified, 1 failed, 2 input error)."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditor.cli import main as audit
from ledger.service.signing import generate_signer
from tests.audit_world import build_world

ROOT = Path(__file__).resolve().parents[2]
@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_world(tmp_path_factory.mktemp("audit-world"))


@pytest.fixture
def pub(world: dict[str, Any], tmp_path: Path) -> Path:
    """A private copy of the whole world (published dirs a, b, c and the keys)."""
    dst = tmp_path / "w"
    shutil.copytree(world["base"], dst, ignore=shutil.ignore_patterns("*.sqlite*"))
    return dst


def run(*args: Any) -> tuple[int, str]:
    result = CliRunner().invoke(audit, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def run_json(*args: Any) -> tuple[int, dict[str, Any]]:
    code, out = run(*args, "--json")
    return code, json.loads(out)


def one_account(d: Path) -> Path:
    return sorted((d / "accounts").iterdir())[0]


# ------------------------------------------------------------------ each command, untouched


def test_snapshot_verifies(pub: Path, world: dict[str, Any]) -> None:
    code, doc = run_json("snapshot", pub / "a" / "snapshot.json", "--key", world["op"])
    assert code == 0 and doc["verified"] is True and doc["reason"] is None
    snap = json.loads((pub / "a" / "snapshot.json").read_text())
    assert doc["log_size"] == snap["log"]["size"] and doc["log_root"] == snap["log"]["root"]
    assert doc["reserves"] == snap["reserves"] and doc["accounts"] == snap["accounts"]["count"]
    assert all(c["ok"] is not False for c in doc["checks"])
    # the second snapshot's previous link is verified too, and a key file works as --key
    code, doc = run_json("snapshot", pub / "b" / "snapshot.json", "--key", pub / "b" / "verifier-key")
    assert code == 0
    assert any(c["check"] == "previous.consistency" and c["ok"] for c in doc["checks"])
    code, out = run("snapshot", pub / "b" / "snapshot.json", "--key", world["op"])
    assert code == 0 and out.rstrip().endswith("VERIFIED")


def test_replay_verifies_with_exact_figures(pub: Path, world: dict[str, Any]) -> None:
    d = pub / "b"
    code, doc = run_json("replay", d / "events.jsonl", "--snapshot", d / "snapshot.json",
                         "--key", world["op"])
    assert code == 0, doc
    snap = json.loads((d / "snapshot.json").read_text())
    assert doc["events"] == snap["log"]["size"]
    assert doc["balances"] == snap["reserves"]
    assert doc["accounts"] == snap["accounts"]["count"]
    assert doc["totals"] == snap["accounts"]["totals"]
    assert doc["liquidations"] == sum(
        1 for line in (d / "events.jsonl").read_text().splitlines() if '"liquidation_settled"' in line)
    assert any(c["check"] == "accounts.root" and c["ok"] is True for c in doc["checks"])


def test_replay_without_seed_fails_unless_skipped(pub: Path, world: dict[str, Any]) -> None:
    d = pub / "a"
    (d / "account-seed").unlink()
    args = ("replay", d / "events.jsonl", "--snapshot", d / "snapshot.json", "--key", world["op"])
    code, out = run(*args)
    assert code == 1
    assert out.rstrip().splitlines()[-1] == (
        "FAILED: accounts.root: not verified: no account seed (pass --seed FILE, or "
        "--skip-accounts to accept a verdict without it)")
    code, doc = run_json(*args, "--skip-accounts")
    assert code == 0 and doc["verified"] is True and doc["skipped"] == ["accounts.root"]
    assert any(c["check"] == "accounts.root" and c["ok"] is None for c in doc["checks"])
    code, out = run(*args, "--skip-accounts")
    assert code == 0
    assert out.rstrip().splitlines()[-1] == "VERIFIED (not checked, as asked: accounts.root)"
    # a wrong seed is caught
    (pub / "seed").write_text("00" * 32)
    code, out = run("replay", d / "events.jsonl", "--snapshot", d / "snapshot.json",
                    "--key", world["op"], "--seed", pub / "seed")
    assert code == 1 and "FAILED: snapshot vs replay: accounts.root" in out


def test_replay_of_longer_export_fails_naming_the_first_extra_line(
        pub: Path, world: dict[str, Any]) -> None:
    """Lines beyond the snapshot's log size are not silently ignored."""
    size = json.loads((pub / "a" / "snapshot.json").read_text())["log"]["size"]
    code, out = run("replay", pub / "b" / "events.jsonl", "--snapshot", pub / "a" / "snapshot.json",
                    "--key", world["op"], "--seed", pub / "a" / "account-seed")
    assert code == 1, out
    assert out.rstrip().splitlines()[-1] == (
        f"FAILED: replay: event {size}: line {size + 1}: the export continues after the "
        f"snapshot's log size {size}; it must end there")


def test_account_verifies(pub: Path, world: dict[str, Any]) -> None:
    d = pub / "b"
    proof_path = one_account(d)
    proof = json.loads(proof_path.read_text())
    code, doc = run_json("account", proof_path, "--snapshot", d / "snapshot.json", "--key", world["op"])
    assert code == 0, doc
    assert doc["account"] == proof["account"] and doc["totals"] == proof["totals"]
    # the proof of snapshot a does not fit snapshot b
    code, out = run("account", one_account(pub / "a"), "--snapshot", d / "snapshot.json",
                    "--key", world["op"])
    assert code == 1 and "FAILED: root" in out


def test_event_verifies(pub: Path, world: dict[str, Any]) -> None:
    proof = pub / "event-7.json"
    code, doc = run_json("event", proof, "--snapshot", pub / "b" / "snapshot.json", "--key", world["op"])
    assert code == 0, doc
    assert doc["index"] == 7
    # against the older snapshot: different log size, a clear failure
    code, out = run("event", proof, "--snapshot", pub / "a" / "snapshot.json", "--key", world["op"])
    assert code == 1 and "FAILED: log_size" in out
    # an altered event is not in the log
    doc = json.loads(proof.read_text())
    doc["event"]["time"] = "2020-03-12T00:00:01Z"
    proof.write_text(json.dumps(doc))
    code, out = run("event", proof, "--snapshot", pub / "b" / "snapshot.json", "--key", world["op"])
    assert code == 1 and "FAILED: inclusion: root mismatch" in out


def test_checkpoint_verifies(pub: Path, world: dict[str, Any]) -> None:
    d = pub / "b"
    code, doc = run_json("checkpoint", d / "checkpoint", "--key", world["op"],
                         "--snapshot", d / "snapshot.json")
    assert code == 0, doc
    snap = json.loads((d / "snapshot.json").read_text())
    assert doc["size"] == snap["log"]["size"] and doc["root"] == snap["log"]["root"]
    public = base64.b64decode(world["op"].split("+", 2)[2])[1:]  # derived: "Origin"
    assert doc["origin"] == f"backstop/{snap['fund']}/" + hashlib.sha256(public).hexdigest()[:16]
    code, out = run("checkpoint", d / "checkpoint", "--key", world["op"],
                    "--snapshot", pub / "a" / "snapshot.json")
    assert code == 1 and "FAILED: size" in out


def test_consistency_between_real_snapshots(pub: Path, world: dict[str, Any]) -> None:
    code, doc = run_json("consistency", pub / "a" / "snapshot.json", pub / "b" / "snapshot.json",
                         "--key", world["op"])
    assert code == 0, doc
    a = json.loads((pub / "a" / "snapshot.json").read_text())
    assert doc["old"] == {"size": a["log"]["size"], "root": a["log"]["root"]}


def test_rewritten_history_fails_consistency(pub: Path, world: dict[str, Any]) -> None:
    old, new = pub / "a" / "snapshot.json", pub / "c" / "snapshot.json"
    # same operator key, validly signed, yet not an extension of a's log
    assert run("snapshot", new, "--key", world["op"])[0] == 0
    code, out = run("consistency", old, new, "--key", world["op"], "--proof", pub / "rewrite-proof.json")
    assert code == 1 and "FAILED: consistency: old root mismatch" in out
    code, out = run("consistency", old, new, "--key", world["op"])
    assert code == 1 and "FAILED: previous" in out


# ------------------------------------------------------------------ keys and signatures


def test_wrong_key_fails_every_command(pub: Path, world: dict[str, Any]) -> None:
    d, wrong = pub / "b", world["witness"]
    for args in (["snapshot", d / "snapshot.json"],
                 ["replay", d / "events.jsonl", "--snapshot", d / "snapshot.json"],
                 ["account", one_account(d), "--snapshot", d / "snapshot.json"],
                 ["event", pub / "event-7.json", "--snapshot", d / "snapshot.json"],
                 ["checkpoint", d / "checkpoint"],
                 ["consistency", pub / "a" / "snapshot.json", d / "snapshot.json"]):
        code, doc = run_json(*args, "--key", wrong)
        assert code == 1, (args, doc)
        assert doc["verified"] is False and doc["reason"], doc


def test_require_two_and_cosign(pub: Path, world: dict[str, Any]) -> None:
    snap = pub / "b" / "snapshot.json"
    both = ["--key", world["op"], "--key", world["witness"]]
    code, out = run("snapshot", snap, *both, "--require", "2")
    assert code == 1 and "FAILED: snapshot signatures: 1 known key(s) verified, 2 required" in out
    code, doc = run_json("cosign", snap, "--witness-key", pub / "wit.key",
                         "--events", pub / "b" / "events.jsonl", "--key", world["op"])
    assert code == 0, doc
    assert len(json.loads(snap.read_text())["signatures"]) == 2
    assert run("snapshot", snap, *both, "--require", "2")[0] == 0
    assert run("snapshot", snap, "--key", world["witness"])[0] == 0
    assert run("replay", pub / "b" / "events.jsonl", "--snapshot", snap, *both, "--require", "2")[0] == 0


def test_cosign_refuses_a_bad_export_and_writes_nothing(pub: Path, world: dict[str, Any]) -> None:
    snap = pub / "b" / "snapshot.json"
    before = snap.read_bytes()
    events = pub / "b" / "events.jsonl"
    lines = events.read_bytes().splitlines(keepends=True)
    events.write_bytes(b"".join(lines[:-1]))
    out_path = pub / "cosigned.json"
    code, out = run("cosign", snap, "--witness-key", pub / "wit.key", "--events", events,
                    "--key", world["op"], "--out", out_path)
    assert code == 1 and "FAILED: snapshot vs replay: log.size" in out
    assert snap.read_bytes() == before and not out_path.exists()


# ------------------------------------------------------------------ input errors (exit 2)


def test_input_errors_exit_2(pub: Path, world: dict[str, Any]) -> None:
    bad = pub / "bad.json"
    bad.write_text("{not json")
    code, out = run("snapshot", bad, "--key", world["op"])
    assert code == 2 and "not valid JSON" in out
    code, doc = run_json("account", bad, "--snapshot", pub / "b" / "snapshot.json", "--key", world["op"])
    assert code == 2 and doc["verified"] is False and "not valid JSON" in doc["error"]
    assert run("snapshot", pub / "missing.json", "--key", world["op"])[0] == 2
    assert run("snapshot", pub / "b" / "snapshot.json", "--key", "op+00000000+AAAA")[0] == 2
    schema_bad = json.loads((pub / "b" / "snapshot.json").read_text())
    del schema_bad["log"]
    bad.write_text(json.dumps(schema_bad))
    code, out = run("snapshot", bad, "--key", world["op"])
    assert code == 2 and "snapshot.schema.json" in out
    assert run("snapshot")[0] == 2                      # click usage error
    assert run("replay", pub / "b" / "events.jsonl", "--key", world["op"])[0] == 2


# ------------------------------------------------------------------ entry points, pinned keys, hostile input


@pytest.mark.parametrize("module", ["auditor", "auditor.cli"])
def test_python_m_runs_the_cli(module: str, pub: Path, world: dict[str, Any]) -> None:
    import subprocess
    import sys

    def python_m(*args: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True,
                              text=True, check=False, cwd=ROOT)

    done = python_m("--help")
    assert done.returncode == 0 and "Usage: backstop-audit" in done.stdout
    assert "Exit codes: 0 verified" in done.stdout
    done = python_m("snapshot", pub / "a" / "snapshot.json", "--key", world["op"], "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["verified"] is True
    done = python_m("snapshot", pub / "missing.json", "--key", world["op"])
    assert done.returncode == 2 and done.stdout.rstrip().splitlines()[-1].startswith("ERROR: snapshot")


def test_cosign_trusts_only_the_pinned_key(pub: Path, world: dict[str, Any]) -> None:
    """An attacker who controls the audited directory re-signs the snapshot with their own
    key and puts that key in `verifier-key`: cosign must not take it."""
    from auditor.verify.keys import sign_document

    d = pub / "b"
    mallory = generate_signer("mallory")
    snap = json.loads((d / "snapshot.json").read_text())
    snap["signatures"] = [sign_document(snap, mallory)]
    (d / "snapshot.json").write_text(json.dumps(snap))
    (d / "verifier-key").write_text(mallory.verifier_key() + "\n")
    before = (d / "snapshot.json").read_bytes()
    code, out = run("cosign", d / "snapshot.json", "--witness-key", pub / "wit.key",
                    "--events", d / "events.jsonl", "--key", world["op"])
    assert code == 1
    assert out.rstrip().splitlines()[-1] == "FAILED: snapshot signatures: 0 known key(s) verified, 1 required"
    assert (d / "snapshot.json").read_bytes() == before
    # no pinned key at all: a usage error, not a fallback to the directory's verifier-key
    code, out = run("cosign", d / "snapshot.json", "--witness-key", pub / "wit.key",
                    "--events", d / "events.jsonl")
    assert code == 2 and "Missing option '--key'" in out
    assert (d / "snapshot.json").read_bytes() == before


def last_line(out: str) -> str:
    return out.rstrip().splitlines()[-1]


def test_long_key_value_is_a_one_line_input_error(pub: Path) -> None:
    value = "k" * 5000
    code, out = run("snapshot", pub / "a" / "snapshot.json", "--key", value)
    assert code == 2
    assert last_line(out).startswith(f"ERROR: --key '{'k' * 59}... (5000 chars): not a verifier key")
    assert last_line(out).endswith("nor a readable key file (File name too long)")
    assert len(out) < 400


def test_deeply_nested_documents_are_input_errors(pub: Path, world: dict[str, Any]) -> None:
    deep = pub / "deep.json"
    for depth in (60, 1000, 100_000):
        deep.write_text("[" * depth + "]" * depth)
        code, out = run("snapshot", deep, "--key", world["op"])
        assert code == 2 and last_line(out).endswith("nested deeper than 32 levels"), out
        code, out = run("account", deep, "--snapshot", pub / "a" / "snapshot.json", "--key", world["op"])
        assert code == 2 and last_line(out).endswith("nested deeper than 32 levels"), out


@pytest.mark.parametrize("field", ["log.size", "accounts.count", "policy.version"])
def test_integers_beyond_2_53_are_input_errors(field: str, pub: Path, world: dict[str, Any]) -> None:
    from auditor.formats.schemas import first_error

    path = pub / "a" / "snapshot.json"
    snap = json.loads(path.read_text())
    outer, inner = field.split(".")
    snap[outer][inner] = 2**53  # cannot be signed at all: RFC 8785 has no such integer
    path.write_text(json.dumps(snap))
    code, out = run("snapshot", path, "--key", world["op"])
    assert code == 2
    assert last_line(out) == f"ERROR: snapshot {path}: {field}: integer '9007199254740992' is beyond 2^53-1"
    # the schema says so too (for other validators of the format)
    assert first_error("snapshot", snap) == (
        f"{field}: 9007199254740992 is greater than the maximum of 9007199254740991")


def test_hostile_values_are_never_echoed(pub: Path, world: dict[str, Any]) -> None:
    path = pub / "a" / "snapshot.json"
    snap = json.loads(path.read_text())
    snap["log"]["root"] = "f" * 500_000
    path.write_text(json.dumps(snap))
    code, out = run("snapshot", path, "--key", world["op"])
    assert code == 2 and len(out) < 400, len(out)
    assert last_line(out) == (f"ERROR: snapshot {path}: does not match snapshot.schema.json: "
                              f"log.root: '{'f' * 59}... (500000 chars) does not match "
                              "'^[0-9a-f]{64}$'")


def test_cosign_is_not_stopped_by_a_planted_entry_under_the_witness_name(
        pub: Path, world: dict[str, Any]) -> None:
    """An entry under the witness's key name that does not verify is no "already signed"."""
    snap = pub / "b" / "snapshot.json"
    doc = json.loads(snap.read_text())
    doc["signatures"].append({"key": "+".join(world["witness"].split("+")[:2]), "sig": "AAAA"})
    snap.write_text(json.dumps(doc))
    before = snap.read_bytes()
    code, out = run("cosign", snap, "--witness-key", pub / "wit.key",
                    "--events", pub / "b" / "events.jsonl", "--key", world["op"])
    assert code == 1, out
    assert "FAILED: cosign: the snapshot holds an entry under the witness's key name" in out
    assert "already signed" not in out and snap.read_bytes() == before


@pytest.mark.parametrize("url", ["http://[::1/", "http://127.0.0.1:1/log"])
def test_a_bad_or_unreachable_log_url_is_one_line(url: str, world: dict[str, Any]) -> None:
    code, out = run("replay", url, "--key", world["op"])
    assert code in (1, 2), out
    assert len(out.strip().splitlines()[-1]) < 420 and "cannot fetch" in out, out
