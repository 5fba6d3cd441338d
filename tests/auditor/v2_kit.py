"""Hand-built format v2 logs for the auditor's tests (no ledger: every event is written out
here), a signed snapshot over them, and `backstop-audit replay` through click's CliRunner.

Not a test module: the v2 replay tests share it as tests/audit_world.py is shared."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditor.cli import main as audit
from auditor.formats.wire import canonical_bytes, sha256_hex
from auditor.verify import merkle
from auditor.verify.keys import Signer, sign_document

Event = tuple[str, int, str, Any, dict[str, Any]]  # (type, version, time, ref, data)
DAY = "2026-01-01T"


def policy_event(doc: dict[str, Any], ref: str = "init") -> tuple[str, int, str | None, dict[str, Any]]:
    """(type, version, ref, data) of the `policy_set/2` of `doc`."""
    return ("policy_set", 2, ref, {"policy_version": doc["version"], "policy": doc,
                                   "policy_hash": sha256_hex(canonical_bytes(doc))})


def lines(events: list[Event], fund: str) -> list[bytes]:
    """The export's lines: each event's RFC 8785 bytes, indexed in order."""
    out = []
    for i, (typ, version, time, ref, data) in enumerate(events):
        out.append(canonical_bytes({"index": i, "type": typ, "version": version, "fund": fund,
                                    "time": time, "ref": ref, "data": data}) + b"\n")
    return out


def write(tmp: Path, events: list[Event], fund: str, *, reserves: dict[str, str],
          totals: dict[str, dict[str, str]], accounts: int, policy: dict[str, Any],
          metrics: dict[str, Any] | None = None) -> tuple[Path, Path, str]:
    """events.jsonl and a signed backstop-snapshot/1 of all of it; (events, snapshot, key)."""
    body = lines(events, fund)
    events_path = tmp / "events.jsonl"
    events_path.write_bytes(b"".join(body))
    log = merkle.CompactRange()
    for line in body:
        log.append(merkle.leaf_hash(line[:-1]))
    signer = Signer("op", Ed25519PrivateKey.generate())
    snap: dict[str, Any] = {
        "format": "backstop-snapshot/1", "fund": fund, "time": events[-1][2],
        "log": {"size": len(body), "root": log.root().hex()},
        "reserves": reserves,
        "accounts": {"assets": sorted(totals), "root": "00" * 32, "count": accounts,
                     "totals": totals},
        "metrics": {"markets": metrics or {}},
        "policy": {"version": policy["version"], "hash": sha256_hex(canonical_bytes(policy))},
        "previous": None,
        "signatures": [],
    }
    snap["signatures"] = [sign_document(snap, signer)]
    snap_path = tmp / "snapshot.json"
    snap_path.write_text(json.dumps(snap), "utf-8")
    return events_path, snap_path, signer.verifier_key()


def replay(events: Path, snapshot: Path, key: str) -> tuple[int, dict[str, Any]]:
    """`backstop-audit replay EVENTS --snapshot S --key K --skip-accounts --json`."""
    result = CliRunner().invoke(audit, ["replay", str(events), "--snapshot", str(snapshot),
                                        "--key", key, "--skip-accounts", "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.output)
