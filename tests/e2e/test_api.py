"""The Python API of ledger/__init__.py and auditor/__init__.py, end to end: the ledger side
imports, exports and publishes; the auditor side gives the verdicts `backstop-audit` gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import auditor
import ledger
from ledger.cli.main import main
from ledger.service.signing import generate_signer
from tests.audit_world import build_world
from tests.factories import TIME, crash_records, fund_config, write_jsonl


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_world(tmp_path_factory.mktemp("audit-world"))


def test_the_auditor_api_verifies_what_the_cli_verifies(world: dict[str, Any]) -> None:
    base, keys = world["base"], [world["op"]]
    snapshot_b = base / "b" / "snapshot.json"
    assert auditor.verify_snapshot(snapshot_b, keys).exit_code == 0
    replayed = auditor.replay_export(base / "b" / "events.jsonl", snapshot_b, keys)
    assert (replayed.verified, replayed.exit_code) == (True, 0)
    assert auditor.verify_event_proof(base / "event-7.json", snapshot_b, keys).exit_code == 0
    # The witness key did not sign the snapshot: verification fails (1), it is not an error.
    assert auditor.verify_snapshot(snapshot_b, [world["witness"]]).exit_code == 1
    # A missing file is an input error (2).
    assert auditor.verify_snapshot(base / "nope.json", keys).exit_code == 2


def test_the_ledger_api_imports_exports_and_publishes(tmp_path: Path) -> None:
    db = ledger.Ledger(f"sqlite:///{tmp_path / 'api.sqlite'}")
    try:
        db.open_fund(fund_config(), TIME)
        report = ledger.import_file(db, "main", write_jsonl(tmp_path / "f.jsonl", crash_records()))
        size = db.get_fund("main").log_size
        exported = ledger.write_export(db, "main", tmp_path / "events.jsonl", size)
        signer = generate_signer("example.com/backstop")
        ledger.publish(db, "main", signer, tmp_path / "public", time="2020-03-13T00:00:00Z")
        shown = ledger.balances(db, "main")
    finally:
        db.close()
    assert exported == size == report.events + 2  # fund_opened and policy_set, then the facts
    printed = CliRunner().invoke(main, ["balances", "--json", "--db",
                                        f"sqlite:///{tmp_path / 'api.sqlite'}"])
    assert printed.exit_code == 0 and json.loads(printed.output) == shown
    assert shown["log_size"] == size and shown["fund"] == "main"
    public, keys = tmp_path / "public", [signer.verifier_key()]
    assert auditor.verify_snapshot(public / "snapshot.json", keys).exit_code == 0
    assert auditor.replay_export(tmp_path / "events.jsonl", public / "snapshot.json",
                                 keys).exit_code == 0
