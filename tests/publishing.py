"""Publishing helpers shared by the publication tests (tests/ledger/service/test_publish*.py,
test_tilepub.py and the e2e tests): the test operator's key, growing a ledger with facts,
publishing it as tiles, auditing a published directory (the `served_log` fixture, a log
folder served over HTTP, is in tests/conftest.py).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from click.testing import CliRunner

from auditor.cli import main as audit
from ledger.service.importer import import_file
from ledger.service.signing import generate_signer
from ledger.service.tilepub import publish_tiles
from tests.factories import capital, fee, liquidation, write_jsonl

SIGNER = generate_signer("test.backstop.example")
# The derived origin of fund main's new log under SIGNER (schemas/README.md, "Origin"),
# computed here by the rule's own words: 16 hex digits of SHA-256(the public key).
MAIN_ORIGIN = "backstop/main/" + hashlib.sha256(SIGNER.public_key).hexdigest()[:16]


def grow(ledger, tmp_path: Path, prefix: str, count: int) -> None:  # type: ignore[no-untyped-def]
    """Append `count` fee events (one fact each) spread over 13 accounts."""
    facts = [fee(f"{prefix}{i}", "0.01", f"acct-{i % 13}") for i in range(count)]
    import_file(ledger, "main", write_jsonl(tmp_path / f"{prefix}.jsonl", facts))


def at_300(ledger, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """The log of 300 entries (2 opening events, 1 capital, 297 fees) published as tiles
    under tmp_path/log."""
    import_file(ledger, "main", write_jsonl(tmp_path / "c.jsonl", [capital("c1", "10.00")]))
    grow(ledger, tmp_path, "f", 297)
    root = tmp_path / "log"
    assert publish_tiles(ledger, "main", SIGNER, root, "2020-03-13T00:00:00Z") \
        .document["log"]["size"] == 300
    return root


def add(ledger, tmp_path: Path, name: str, facts: list[dict]) -> None:  # type: ignore[no-untyped-def]
    """Import `facts` into fund main (through a file tmp_path/`name`.jsonl)."""
    import_file(ledger, "main", write_jsonl(tmp_path / f"{name}.jsonl", facts))


def batch(prefix: str, count: int) -> list[dict]:
    """Fees over 11 accounts, with a liquidation every 50 facts (some with a deficit)."""
    facts: list[dict] = []
    for i in range(count):
        if i % 50 == 7:
            facts.append(liquidation(f"{prefix}-l{i}", "51000" if i % 100 == 7 else "59000",
                                     account=f"t{i % 5}", counterparties=[("bob", "500")]))
        else:
            facts.append(fee(f"{prefix}-f{i}", "0.03", f"acct-{i % 11}"))
    return facts


def publish_day(ledger, root: Path, day: int) -> int:  # type: ignore[no-untyped-def]
    """Publish the tiled log under `root` on 2020-03-`day`; its log size."""
    pub = publish_tiles(ledger, "main", SIGNER, root, f"2020-03-{day:02d}T00:00:00Z")
    return int(pub.document["log"]["size"])


def audit_directory(out: Path, vkey: str) -> int:
    """Run backstop-audit over a published directory: snapshot, checkpoint, full replay and
    every account proof. Returns how many runs verified (each must exit 0)."""
    snapshot = str(out / "snapshot.json")
    runs = [["snapshot", snapshot], ["checkpoint", str(out / "checkpoint"), "--snapshot", snapshot],
            ["replay", str(out / "events.jsonl"), "--snapshot", snapshot]]
    runs += [["account", str(proof), "--snapshot", snapshot]
             for proof in sorted((out / "accounts").iterdir())]
    for args in runs:
        result = CliRunner().invoke(audit, [*args, "--key", vkey])
        assert result.exit_code == 0, (args, result.output)
    return len(runs)
