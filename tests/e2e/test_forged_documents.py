"""Forged documents: each alters one published document in a way the spec forbids, re-signing
with the operator's own key wherever a signature would otherwise hide a missing check. Every
one must fail with exit 1 and a verdict line naming the rule."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditor.cli import main as audit
from auditor.verify.keys import SIG_PREFIX, Signer, sign_document
from tests.audit_world import build_world

Forgery = Callable[["Pub"], list[Any]]  # alters files, returns the CLI arguments to run


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_world(tmp_path_factory.mktemp("audit-world"))


class Pub:
    """A private copy of the published world, with helpers to read, alter and re-sign."""

    def __init__(self, root: Path, op_vkey: str) -> None:
        self.root, self.op_vkey = root, op_vkey
        self.op = Signer.from_pem((root / "op.key").read_bytes())

    def read(self, rel: str) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((self.root / rel).read_text())
        return doc

    def write(self, rel: str, doc: dict[str, Any]) -> Path:
        (self.root / rel).write_text(json.dumps(doc))
        return self.root / rel

    def resign(self, rel: str, change: Callable[[dict[str, Any]], None]) -> Path:
        """Apply `change` to a snapshot and sign it afresh with the operator's key."""
        snap = self.read(rel)
        change(snap)
        snap["signatures"] = [sign_document(snap, self.op)]
        return self.write(rel, snap)

    def account(self, d: str) -> str:
        return f"{d}/accounts/{sorted((self.root / d / 'accounts').iterdir())[0].name}"

    def consistency_proof(self) -> Path:
        """A genuine a -> b consistency-proof document (from b's previous link)."""
        a, b = self.read("a/snapshot.json"), self.read("b/snapshot.json")
        return self.write("a-b.json", {
            "format": "backstop-consistency-proof/1",
            "old": {k: a["log"][k] for k in ("size", "root")},  # not the log's origin
            "new": {k: b["log"][k] for k in ("size", "root")},
            "proof": b["previous"]["consistency"]})

    def key(self) -> list[str]:
        return ["--key", self.op_vkey]


def garbage_sig(entry: dict[str, str]) -> dict[str, str]:
    raw = bytearray(base64.b64decode(entry["sig"]))
    raw[0] ^= 1
    return {"key": entry["key"], "sig": base64.b64encode(bytes(raw)).decode()}


def sigs(order: str) -> Forgery:
    def forge(p: Pub) -> list[Any]:
        snap = p.read("a/snapshot.json")
        good = snap["signatures"][0]
        snap["signatures"] = [good, garbage_sig(good)] if order == "valid-first" else \
            [garbage_sig(good), good]
        return ["snapshot", p.write("a/snapshot.json", snap), *p.key()]
    return forge


def note_sigs(order: str) -> Forgery:
    def forge(p: Pub) -> list[Any]:
        path = p.root / "a" / "checkpoint"
        body, _, line = path.read_text().rpartition("\n\n")
        name, b64 = line[len(SIG_PREFIX):].split()
        raw = bytearray(base64.b64decode(b64))
        raw[-1] ^= 1  # the signature, not the key id: still "by the same key"
        bad = f"{SIG_PREFIX}{name} {base64.b64encode(bytes(raw)).decode()}\n"
        path.write_text(body + "\n\n" + (line + bad if order == "valid-first" else bad + line))
        return ["checkpoint", path, *p.key()]
    return forge


def proof_root(side: str) -> Forgery:
    def forge(p: Pub) -> list[Any]:
        proof = p.consistency_proof()
        doc = p.read(proof.name)
        doc[side]["root"] = "ab" * 32
        p.write(proof.name, doc)
        return ["consistency", p.root / "a/snapshot.json", p.root / "b/snapshot.json", *p.key(),
                "--proof", proof]
    return forge


def account_field(field: str, value: Any) -> Forgery:
    def forge(p: Pub) -> list[Any]:
        rel = p.account("b")
        doc = p.read(rel)
        assert field in doc  # published proofs name their snapshot
        doc[field] = value
        return ["account", p.write(rel, doc), "--snapshot", p.root / "b/snapshot.json", *p.key()]
    return forge


def forged_accounts_root(seed: bool) -> Forgery:
    def forge(p: Pub) -> list[Any]:
        snap = p.resign("a/snapshot.json", lambda s: s["accounts"].update(root="cd" * 32))
        if not seed:  # withheld: the root cannot be rebuilt, which is no pass
            (p.root / "a/account-seed").unlink()
        return ["replay", p.root / "a/events.jsonl", "--snapshot", snap, *p.key()]
    return forge


def forged_accounts_root_with_proof(p: Pub) -> list[Any]:
    snap = p.resign("a/snapshot.json", lambda s: s["accounts"].update(root="cd" * 32))
    return ["account", p.root / p.account("a"), "--snapshot", snap, *p.key()]


def forged_previous_link(p: Pub) -> list[Any]:
    snap = p.resign("b/snapshot.json", lambda s: s["previous"].update(log_root="ef" * 32))
    return ["snapshot", snap, *p.key()]


def forged_log_root_for_event(p: Pub) -> list[Any]:
    snap = p.resign("b/snapshot.json", lambda s: s["log"].update(root="01" * 32))
    doc = p.read("event-7.json")
    doc["log_root"] = "01" * 32
    return ["event", p.write("event-7.json", doc), "--snapshot", snap, *p.key()]


def forged_reserves_cosign(p: Pub) -> list[Any]:
    snap = p.resign("b/snapshot.json", lambda s: s["reserves"].update(USDT="1000000.00"))
    return ["cosign", snap, *p.key(), "--witness-key", p.root / "wit.key",
            "--events", p.root / "b/events.jsonl"]


# name: (forgery, how the verdict line starts after "FAILED: ")
FORGERIES: dict[str, tuple[Forgery, str]] = {
    "snapshot sigs [valid, garbage] by one key": (
        sigs("valid-first"), "snapshot signatures: signature 1 by op+"),
    "snapshot sigs [garbage, valid] by one key": (
        sigs("garbage-first"), "snapshot signatures: signature 0 by op+"),
    "checkpoint sigs [valid, garbage] by one key": (
        note_sigs("valid-first"), "checkpoint signature: invalid signature for key op+"),
    "checkpoint sigs [garbage, valid] by one key": (
        note_sigs("garbage-first"), "checkpoint signature: invalid signature for key op+"),
    "consistency proof old.root": (proof_root("old"), "proof old.root: proof names root abab"),
    "consistency proof new.root": (proof_root("new"), "proof new.root: proof names root abab"),
    "account proof fund": (account_field("fund", "other-fund"),
                           "fund: proof is for fund 'other-fund', snapshot is of 'demo'"),
    "account proof log_size": (account_field("log_size", 1), "log_size: proof is for log size 1"),
    "re-signed accounts.root, replay without seed": (
        forged_accounts_root(seed=False), "accounts.root: not verified: no account seed"),
    "re-signed accounts.root, replay with seed": (
        forged_accounts_root(seed=True), "snapshot vs replay: accounts.root: expected"),
    "re-signed accounts.root, account proof": (forged_accounts_root_with_proof,
                                               "root: proof is for account root"),
    "re-signed previous.log_root": (forged_previous_link, "previous.consistency: "),
    "re-signed log.root, event proof": (forged_log_root_for_event, "inclusion: "),
    "re-signed reserves, cosign": (forged_reserves_cosign,
                                   "snapshot vs replay: reserves.USDT: expected"),
}


@pytest.fixture
def pub(world: dict[str, Any], tmp_path: Path) -> Pub:
    shutil.copytree(world["base"], tmp_path / "w", ignore=shutil.ignore_patterns("*.sqlite*"))
    return Pub(tmp_path / "w", world["op"])


def invoke(args: list[Any]) -> tuple[int, str]:
    result = CliRunner().invoke(audit, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_forged_document_fails_naming_the_rule(name: str, pub: Pub) -> None:
    forge, rule = FORGERIES[name]
    args = forge(pub)
    before = {p: p.read_bytes() for p in pub.root.rglob("*") if p.is_file()}
    code, out = invoke(args)
    assert code == 1, out
    assert out.rstrip().splitlines()[-1].startswith(f"FAILED: {rule}"), out
    # nothing written (a refused cosign in particular)
    assert {p: p.read_bytes() for p in pub.root.rglob("*") if p.is_file()} == before


def test_the_untouched_documents_verify(pub: Pub) -> None:
    """The same commands on the genuine documents exit 0 (so each failure above is the forgery)."""
    r = pub.root
    proof = pub.consistency_proof()
    for args in (["snapshot", r / "a/snapshot.json"], ["checkpoint", r / "a/checkpoint"],
                 ["consistency", r / "a/snapshot.json", r / "b/snapshot.json", "--proof", proof],
                 ["account", r / pub.account("b"), "--snapshot", r / "b/snapshot.json"],
                 ["replay", r / "a/events.jsonl", "--snapshot", r / "a/snapshot.json"],
                 ["event", r / "event-7.json", "--snapshot", r / "b/snapshot.json"],
                 ["snapshot", r / "b/snapshot.json"]):
        code, out = invoke([*args, *pub.key()])
        assert code == 0 and out.rstrip().endswith("VERIFIED"), (args, out)
    # a re-signed but unaltered snapshot verifies: the re-signing helper itself is sound
    pub.resign("a/snapshot.json", lambda s: None)
    assert invoke(["snapshot", r / "a/snapshot.json", *pub.key()])[0] == 0
    # the same valid signature twice by one key: every line verifies, the key counts once
    snap = pub.read("a/snapshot.json")
    snap["signatures"] *= 2
    code, out = invoke(["snapshot", pub.write("a/snapshot.json", snap), *pub.key(), "--require", "2"])
    assert code == 1 and "1 known key(s) verified, 2 required" in out
