"""Publishing: snapshots, checkpoints and proofs made by the ledger verify with the auditor's
kernel; two snapshots 1,000 events apart are consistent, a rewritten history is not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main as audit
from auditor.keys import Signer, open_note, parse_checkpoint, verify_document
from auditor.merkle import ProofError, leaf_hash, verify_consistency, verify_inclusion
from auditor.sumtree import account_leaf_hash, verify_sum_proof
from auditor.wire import canonical_bytes, parse_amount
from ledger.importer import import_file
from ledger.publish import PublishError, consistency_proof, event_proof, publish
from tests.factories import TIME, capital, crash_records, fee, fund_config, write_jsonl

SIGNER = Signer.generate("test.backstop.example")


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
    assert parse_checkpoint(body) == ("backstop/main", 11, bytes.fromhex(doc["log"]["root"]))
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
