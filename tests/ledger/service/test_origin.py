"""The log's origin (schemas/README.md, "Origin"): derived by default, --origin on the first
snapshot, fixed for good after it, the legacy `backstop/<fund>` kept by old logs, and the key
named after it by `backstop keygen --origin/--fund`."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main as audit
from auditor.verify.keys import open_note, parse_checkpoint
from ledger.cli.main import main as backstop
from ledger.service.publish import PublishError
from ledger.service.tilepub import publish_tiles
from tests.factories import TIME, cli_crash_fund, fee, fund_config
from tests.publishing import MAIN_ORIGIN, SIGNER, add

VKEY = SIGNER.verifier_key()


@pytest.fixture
def ledger(make_ledger, tmp_path: Path):  # type: ignore[no-untyped-def]
    ledger = make_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.open_fund(fund_config(), TIME)
    return ledger


def origin_of(note_path: Path) -> str:
    body, _ = open_note(note_path.read_text("utf-8"), [SIGNER.verifier()])
    return parse_checkpoint(body)[0]


def grow_and_publish(ledger, tmp_path: Path, root: Path, step: int,  # type: ignore[no-untyped-def]
                     origin: str | None = None) -> int:
    add(ledger, tmp_path, f"s{step}", [fee(f"s{step}-{i}", "0.01", f"acct-{i}") for i in range(3)])
    pub = publish_tiles(ledger, "main", SIGNER, root, f"2020-03-1{step}T00:00:00Z", origin=origin)
    return int(pub.document["log"]["size"])


def replay(root: Path) -> int:
    return CliRunner().invoke(audit, ["replay", str(root), "--key", VKEY]).exit_code


def test_a_new_log_takes_the_derived_origin_and_keeps_it(ledger, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "log"
    first = grow_and_publish(ledger, tmp_path, root, 1)
    second = grow_and_publish(ledger, tmp_path, root, 2)
    assert (first, second) == (5, 8)  # 2 opening events + 3 fees, + 3 more
    for size in (first, second):
        doc = json.loads((root / f"snapshots/{size}/snapshot.json").read_text())
        assert doc["log"]["origin"] == MAIN_ORIGIN
        assert origin_of(root / f"snapshots/{size}/checkpoint") == MAIN_ORIGIN
    assert replay(root) == 0


def test_a_configured_origin_is_recorded_and_a_different_one_refused(ledger, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "log"
    grow_and_publish(ledger, tmp_path, root, 1, origin="log.example.com/backstop/main")
    size = grow_and_publish(ledger, tmp_path, root, 2)  # no --origin: the recorded one
    assert origin_of(root / f"snapshots/{size}/checkpoint") == "log.example.com/backstop/main"
    with pytest.raises(PublishError, match="^--origin other.example/main: fund main's log has "
                                           "origin log.example.com/backstop/main, fixed by its "
                                           "first snapshot"):
        grow_and_publish(ledger, tmp_path, root, 3, origin="other.example/main")
    assert sorted(p.name for p in (root / "snapshots").iterdir()) == ["5", "8"]
    assert replay(root) == 0


def test_an_old_log_keeps_the_legacy_origin_and_verifies(ledger, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A log published before `log.origin`: its snapshots carry none, its checkpoints name
    backstop/main, and every later snapshot keeps that (witnesses know it by that name)."""
    root = tmp_path / "log"
    grow_and_publish(ledger, tmp_path, root, 1, origin="backstop/main")  # as the old code wrote
    size = grow_and_publish(ledger, tmp_path, root, 2)
    for n in (5, size):
        doc = json.loads((root / f"snapshots/{n}/snapshot.json").read_text())
        assert "origin" not in doc["log"]
        assert origin_of(root / f"snapshots/{n}/checkpoint") == "backstop/main"
    assert replay(root) == 0


@pytest.mark.parametrize(("origin", "why"), [
    ("https://log.example.com/x", "must be a schema-less URL prefix (no scheme://)"),
    ("log.example.com/x/", "must start with a letter or digit and hold only A-Z a-z 0-9 - . _ "
                           "~ / : @ % !, with no '//' and no trailing '/'"),
    ("log example", "must start with a letter or digit and hold only A-Z a-z 0-9 - . _ ~ / : @ "
                    "% !, with no '//' and no trailing '/'"),
])
def test_an_invalid_origin_is_refused_and_nothing_written(tmp_path: Path, origin: str,
                                                          why: str) -> None:
    env = cli_crash_fund(tmp_path)
    key = tmp_path / "op.key"
    assert CliRunner().invoke(backstop, ["keygen", "op.example", "--out", str(key)]).exit_code == 0
    out = tmp_path / "log"
    result = CliRunner().invoke(backstop, ["snapshot", "publish", "--key", str(key), "--out",
                                           str(out), "--layout", "tiles", "--origin", origin],
                                env=env)
    assert result.exit_code == 2
    assert result.output == f"Error: --origin {origin!r}: {why}\n"
    assert not out.exists()


def test_keygen_names_the_key_its_origin(tmp_path: Path) -> None:
    given = CliRunner().invoke(backstop, ["keygen", "--origin", "log.example.com/backstop/main",
                                          "--out", str(tmp_path / "a.key")])
    assert given.exit_code == 0, given.output
    assert given.output.startswith("log.example.com/backstop/main+")
    derived = CliRunner().invoke(backstop, ["keygen", "--fund", "main", "--out",
                                            str(tmp_path / "b.key")])
    assert derived.exit_code == 0, derived.output
    vkey = derived.output.strip()
    public = base64.b64decode(vkey.split("+", 2)[2])[1:]
    assert vkey.split("+")[0] == "backstop/main/" + hashlib.sha256(public).hexdigest()[:16]
    both = CliRunner().invoke(backstop, ["keygen", "x", "--fund", "main", "--out",
                                         str(tmp_path / "c.key")])
    assert both.exit_code == 2 and both.output == "Error: NAME, --origin, --fund: give exactly one\n"
    assert not (tmp_path / "c.key").exists()


def test_a_key_named_the_derived_origin_signs_a_log_of_that_origin(tmp_path: Path) -> None:
    env = cli_crash_fund(tmp_path)
    key = tmp_path / "op.key"
    vkey = CliRunner().invoke(backstop, ["keygen", "--fund", "main", "--out", str(key)]).output.strip()
    result = CliRunner().invoke(backstop, ["snapshot", "publish", "--key", str(key), "--out",
                                           str(tmp_path / "log"), "--layout", "tiles"], env=env)
    assert result.exit_code == 0, result.output
    note = (tmp_path / "log" / "checkpoint").read_text()
    assert note.split("\n")[0] == vkey.split("+")[0]
    assert note.split("\n")[4].startswith(f"\u2014 {vkey.split('+')[0]} ")
