"""Publishing: snapshots, checkpoints and proofs made by the ledger verify with the auditor's
kernel; two snapshots 1,000 events apart are consistent, a rewritten history is not; a
publication is all or nothing (written, renamed into place, recorded) and replaces a
non-empty directory only with --force."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from auditor.cli import main as audit
from auditor.formats.wire import canonical_bytes, parse_amount
from auditor.verify.keys import open_note, parse_checkpoint, verify_document
from auditor.verify.merkle import ProofError, leaf_hash, verify_consistency, verify_inclusion
from auditor.verify.sumtree import account_leaf_hash, verify_sum_proof
from ledger.cli.main import main as backstop
from ledger.service import publish as publish_module
from ledger.service.importer import import_file
from ledger.service.publish import PublishError, consistency_proof, event_proof, publish
from ledger.service.signing import generate_signer
from ledger.store.tables import published
from tests.factories import (
    TIME,
    capital,
    cli_crash_fund,
    crash_records,
    fee,
    fund_config,
    write_jsonl,
)
from tests.publishing import MAIN_ORIGIN, SIGNER, audit_directory


def fees(prefix: str, count: int) -> list[dict]:
    return [fee(f"{prefix}{i}", "0.01", f"acct-{i % 13}") for i in range(count)]


@pytest.fixture
def ledger(db_url: str, make_ledger):  # type: ignore[no-untyped-def]
    ledger = make_ledger(db_url)
    ledger.open_fund(fund_config(), TIME)
    return ledger


def test_published_directory_verifies_piece_by_piece(ledger, tmp_path: Path) -> None:
    import_file(ledger, "main", write_jsonl(tmp_path / "f.jsonl", crash_records()))
    out = tmp_path / "pub"
    doc = publish(ledger, "main", SIGNER, out, "2020-03-13T00:00:00Z").document
    assert verify_document(doc, [SIGNER.verifier()]) == [SIGNER.name]
    assert doc["log"]["size"] == 11 and doc["reserves"] == {"USDT": "1.50"}
    assert doc["accounts"]["count"] == 5  # alice, bob, carol, x, y
    assert doc["accounts"]["totals"]["USDT"] == {"fees": "29.55", "payouts": "128.05",
                                                 "clawbacks": "71.95"}
    body, names = open_note((out / "checkpoint").read_text(), [SIGNER.verifier()])
    assert names == [SIGNER.name]
    assert parse_checkpoint(body) == (MAIN_ORIGIN, 11, bytes.fromhex(doc["log"]["root"]))
    assert doc["log"]["origin"] == MAIN_ORIGIN
    lines = (out / "events.jsonl").read_bytes().splitlines()
    for index in (0, 4, 10):
        proof = event_proof(ledger, "main", index, 11)
        assert canonical_bytes(proof["event"]) == lines[index]
        verify_inclusion(leaf_hash(lines[index]), index, 11, [bytes.fromhex(h) for h in
                                                             proof["proof"]],
                         bytes.fromhex(doc["log"]["root"]))
    root, totals = bytes.fromhex(doc["accounts"]["root"]), []
    for asset in doc["accounts"]["assets"]:
        totals += [parse_amount(doc["accounts"]["totals"][asset][f], 2)
                   for f in ("fees", "payouts", "clawbacks")]
    for path in sorted((out / "accounts").iterdir()):
        proof = json.loads(path.read_text())
        sums = [parse_amount(proof["totals"]["USDT"][f], 2)
                for f in ("fees", "payouts", "clawbacks")]
        leaf = account_leaf_hash(bytes.fromhex(proof["nonce"]), proof["account"], sums)
        assert path.stem == leaf.hex()
        verify_sum_proof(leaf, sums, proof["index"], proof["count"],
                         [(bytes.fromhex(p["hash"]), [parse_amount(p["sums"]["USDT"][f], 2)
                                                      for f in ("fees", "payouts", "clawbacks")])
                          for p in proof["path"]], root, totals)


def test_snapshots_1000_events_apart_are_consistent_and_a_rewrite_is_not(
        ledger, make_ledger, tmp_path: Path) -> None:
    first_facts = [capital("c1", "10.00")] + fees("f", 100)
    import_file(ledger, "main", write_jsonl(tmp_path / "1.jsonl", first_facts))
    old = publish(ledger, "main", SIGNER, tmp_path / "old", "2020-03-13T00:00:00Z").document
    import_file(ledger, "main", write_jsonl(tmp_path / "2.jsonl", fees("g", 1000)))
    new = publish(ledger, "main", SIGNER, tmp_path / "new", "2020-03-14T00:00:00Z").document
    assert (old["log"]["size"], new["log"]["size"]) == (103, 1103)
    link = new["previous"]
    assert (link["log_size"], link["log_root"]) == (103, old["log"]["root"])
    verify_consistency(103, 1103, [bytes.fromhex(h) for h in link["consistency"]],
                       bytes.fromhex(old["log"]["root"]), bytes.fromhex(new["log"]["root"]))
    vkey = SIGNER.verifier_key()
    result = CliRunner().invoke(audit, ["consistency", str(tmp_path / "old" / "snapshot.json"),
                                        str(tmp_path / "new" / "snapshot.json"), "--key", vkey])
    assert result.exit_code == 0, result.output

    # The same operator key over a history whose 51st fee was rewritten.
    other = make_ledger(f"sqlite:///{tmp_path / 'rewritten.sqlite'}")
    other.open_fund(fund_config(), TIME)
    rewritten = [capital("c1", "10.00")] + fees("f", 100)
    rewritten[51]["amount"] = "0.02"
    import_file(other, "main", write_jsonl(tmp_path / "r1.jsonl", rewritten))
    import_file(other, "main", write_jsonl(tmp_path / "r2.jsonl", fees("g", 1000)))
    forged = consistency_proof(other, "main", 103, 1103)
    with pytest.raises(ProofError):
        verify_consistency(103, 1103, [bytes.fromhex(h) for h in forged["proof"]],
                           bytes.fromhex(old["log"]["root"]),
                           bytes.fromhex(forged["new"]["root"]))
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    publish(other, "main", SIGNER, tmp_path / "forged", "2020-03-14T00:00:00Z")
    result = CliRunner().invoke(audit, [
        "consistency", str(tmp_path / "old" / "snapshot.json"),
        str(tmp_path / "forged" / "snapshot.json"), "--key", vkey,
        "--proof", str(tmp_path / "forged.json")])
    assert result.exit_code == 1, result.output


def test_publishing_twice_at_the_same_size_is_refused(ledger, tmp_path: Path) -> None:
    publish(ledger, "main", SIGNER, tmp_path / "a", TIME)
    with pytest.raises(PublishError, match="already published"):
        publish(ledger, "main", SIGNER, tmp_path / "b", TIME)


# ------------------------------------------------------------------ atomic publication


def recorded_sizes(ledger) -> list[int]:  # type: ignore[no-untyped-def]
    """Log sizes of the snapshots recorded for fund main, oldest first."""
    with ledger.engine.connect() as connection:
        return list(connection.execute(select(published.c.log_size).where(
            published.c.fund == "main").order_by(published.c.log_size)).scalars())


def leaves_of(out: Path) -> set[str]:
    return {path.name for path in (out / "accounts").iterdir()}


def stray_files(folder: Path, *keep: str) -> list[str]:
    """Names in `folder` other than `keep` and SQLite's files (staging leftovers, say)."""
    return sorted(p.name for p in folder.iterdir()
                  if p.name not in keep and ".sqlite" not in p.name)


def test_publishing_under_a_regular_file_fails_in_one_line_and_a_retry_succeeds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = cli_crash_fund(tmp_path)
    key = tmp_path / "op.key"
    assert CliRunner().invoke(backstop, ["keygen", "op.example", "--out", str(key)]).exit_code == 0
    (tmp_path / "afile").write_text("not a directory\n")

    failed = CliRunner().invoke(backstop, ["snapshot", "publish", "--key", str(key), "--out",
                                           "afile/sub"], env=env, catch_exceptions=False)
    assert failed.exit_code == 2
    assert failed.output == "Error: afile/sub: afile is not a directory\n"
    assert (tmp_path / "afile").read_text() == "not a directory\n"
    assert stray_files(tmp_path, "afile", "fund.json", "facts.jsonl", "op.key",
                       "op.key.pub") == []
    nothing = CliRunner().invoke(backstop, ["prove", "account", "x"], env=env)
    assert nothing.exit_code == 2 and "no snapshot published" in nothing.output

    retry = CliRunner().invoke(backstop, ["snapshot", "publish", "--key", str(key), "--out",
                                          "pub"], env=env, catch_exceptions=False)
    assert retry.exit_code == 0, retry.output
    assert retry.output.startswith("published snapshot of fund main at log size 11 ")
    assert audit_directory(tmp_path / "pub", (tmp_path / "op.key.pub").read_text().strip()) == 8


def test_a_failed_rename_records_nothing_and_leaves_no_files(
        ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import_file(ledger, "main", write_jsonl(tmp_path / "f.jsonl", crash_records()))

    def refuse(stage: Path, out: Path, aside: Path) -> None:
        raise PermissionError(13, "Permission denied", str(out))

    monkeypatch.setattr(publish_module, "move_into_place", refuse)
    with pytest.raises(PublishError, match=r"/out: cannot write: Permission denied \(.*/out\)$"):
        publish(ledger, "main", SIGNER, tmp_path / "out", TIME)
    assert recorded_sizes(ledger) == []
    assert stray_files(tmp_path, "f.jsonl") == []
    monkeypatch.undo()
    publish(ledger, "main", SIGNER, tmp_path / "out", TIME)
    assert recorded_sizes(ledger) == [11]
    assert audit_directory(tmp_path / "out", SIGNER.verifier_key()) == 8


def test_a_failed_commit_puts_the_old_directory_back(
        ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import_file(ledger, "main", write_jsonl(tmp_path / "f.jsonl", crash_records()))
    out = tmp_path / "out"
    first = publish(ledger, "main", SIGNER, out, TIME).document
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    import_file(ledger, "main", write_jsonl(tmp_path / "g.jsonl", fees("g", 3)))
    real = ledger.transaction

    @contextmanager
    def commit_fails():  # type: ignore[no-untyped-def]
        with real() as connection:
            yield connection
            raise RuntimeError("commit failed")  # raised inside: the transaction rolls back

    monkeypatch.setattr(ledger, "transaction", commit_fails)
    with pytest.raises(RuntimeError, match="commit failed"):
        publish(ledger, "main", SIGNER, out, "2020-03-13T00:00:00Z", force=True)
    monkeypatch.undo()
    assert recorded_sizes(ledger) == [first["log"]["size"]] == [11]
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert stray_files(tmp_path, "out", "f.jsonl", "g.jsonl") == []


def test_a_non_empty_directory_is_refused_and_force_replaces_it_whole(
        ledger, tmp_path: Path) -> None:
    import_file(ledger, "main", write_jsonl(tmp_path / "f.jsonl", crash_records()))
    out = tmp_path / "pub"
    publish(ledger, "main", SIGNER, out, TIME)
    old_leaves = leaves_of(out)
    import_file(ledger, "main", write_jsonl(tmp_path / "g.jsonl",
                                            [fee(f"n{i}", "0.01", f"new-{i}") for i in range(3)]))
    other = generate_signer("other.backstop.example")

    with pytest.raises(PublishError, match=r"pub is not empty; pass --force to replace it$"):
        publish(ledger, "main", other, out, "2020-03-13T00:00:00Z")
    assert recorded_sizes(ledger) == [11]
    assert (out / "verifier-key").read_text() == SIGNER.verifier_key() + "\n"

    doc = publish(ledger, "main", other, out, "2020-03-13T00:00:00Z", force=True).document
    assert recorded_sizes(ledger) == [11, 14] and doc["log"]["size"] == 14
    assert (out / "verifier-key").read_text() == other.verifier_key() + "\n"
    # Every proof file is the new snapshot's: 5 old accounts (new nonces) + 3 new ones.
    assert len(leaves_of(out)) == doc["accounts"]["count"] == 8
    assert leaves_of(out).isdisjoint(old_leaves)
    assert audit_directory(out, other.verifier_key()) == 3 + 8
    assert stray_files(tmp_path, "pub", "f.jsonl", "g.jsonl") == []


def test_cli_refuses_a_non_empty_directory_without_force(tmp_path: Path) -> None:
    env = cli_crash_fund(tmp_path)
    key = tmp_path / "op.key"
    assert CliRunner().invoke(backstop, ["keygen", "op.example", "--out", str(key)]).exit_code == 0
    out = tmp_path / "site"
    out.mkdir()
    (out / "index.html").write_text("hello\n")
    command = ["snapshot", "publish", "--key", str(key), "--out", str(out)]
    refused = CliRunner().invoke(backstop, command, env=env, catch_exceptions=False)
    assert refused.exit_code == 2
    assert refused.output == f"Error: --out {out} is not empty; pass --force to replace it\n"
    assert stray_files(out) == ["index.html"]
    forced = CliRunner().invoke(backstop, [*command, "--force"], env=env, catch_exceptions=False)
    assert forced.exit_code == 0, forced.output
    assert stray_files(out) == ["account-seed", "accounts", "checkpoint", "events.jsonl",
                                "policy.json", "snapshot.json", "verifier-key"]
    assert audit_directory(out, key.with_name("op.key.pub").read_text().strip()) == 3 + 5
