"""`backstop-audit follow`: a witness over several publishes (no sleeps: `--once` between
publishes) cosigns each honest checkpoint, and refuses a forked log, a re-signed rewritten
checkpoint and a checkpoint that moves backwards, with exit 1 and the reason."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from auditor.cli import main as audit
from auditor.verify.keys import checkpoint_body, sign_note
from auditor.witness import cosigner_vkey
from ledger.service.signing import generate_signer, key_file
from ledger.service.tilepub import publish_tiles
from tests.factories import TIME, capital, fund_config
from tests.publishing import MAIN_ORIGIN, SIGNER, add, batch, publish_day

VKEY = SIGNER.verifier_key()
WITNESS = generate_signer("witness.example/w1")


@pytest.fixture
def witness_key(tmp_path: Path) -> Path:
    path = tmp_path / "witness.key"
    path.write_bytes(key_file(WITNESS))
    return path


@pytest.fixture
def ledger(make_ledger, tmp_path: Path):  # type: ignore[no-untyped-def]
    ledger = make_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.open_fund(fund_config(), TIME)
    add(ledger, tmp_path, "c", [capital("c1", "500.00")])
    return ledger


def follow(root: Path | str, state: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(audit, ["follow", str(root), "--key", VKEY, "--state",
                                        str(state), "--once", *extra])
    return result.exit_code, result.output


def cosigned_ok(note: str, public_key: bytes, name: str) -> bool:
    """An independent check of one Ed25519 cosignature/v1 line (c2sp.org/tlog-cosignature)."""
    body, sigs = note.split("\n\n")
    body += "\n"
    key_id = hashlib.sha256(name.encode() + b"\n\x04" + public_key).digest()[:4]
    for line in sigs.splitlines():
        who, b64 = line.removeprefix("\u2014 ").split(" ")
        raw = base64.b64decode(b64)
        if who != name or raw[:4] != key_id or len(raw) != 4 + 8 + 64:
            continue
        message = b"cosignature/v1\ntime %d\n" % int.from_bytes(raw[4:12], "big") + body.encode()
        Ed25519PublicKey.from_public_bytes(public_key).verify(raw[12:], message)  # raises
        return True
    return False


def test_the_witness_cosigns_each_honest_checkpoint(ledger, tmp_path, witness_key) -> None:
    root, state = tmp_path / "log", tmp_path / "witness"
    add(ledger, tmp_path, "b0", batch("b0", 240))
    first = publish_day(ledger, root, 13)
    code, out = follow(root, state, "--cosign", str(witness_key))
    assert code == 0, out
    assert f"snapshot size {first} verified" in out
    # Two publishes between polls: both snapshots are verified, in order, and cosigned.
    add(ledger, tmp_path, "b1", batch("b1", 190))
    second = publish_day(ledger, root, 14)
    add(ledger, tmp_path, "b2", batch("b2", 330))
    third = publish_day(ledger, root, 15)
    code, out = follow(root, state, "--cosign", str(witness_key))
    assert code == 0, out
    assert out.index(f"size {second} verified") < out.index(f"size {third} verified")
    assert f"size {first} verified" not in out
    assert sorted(int(p.name) for p in (state / "cosigned").iterdir()) == [first, second, third]
    for size in (first, second, third):
        note = (state / "cosigned" / str(size)).read_text()
        assert note.startswith((root / f"snapshots/{size}/checkpoint").read_text())
        assert cosigned_ok(note, WITNESS.public_key, WITNESS.name)
        assert not cosigned_ok(note, generate_signer("x").public_key, WITNESS.name)
    # Nothing new: nothing to do, still verified.
    code, out = follow(root, state, "--cosign", str(witness_key))
    assert (code, out) == (0, f"witness {cosigner_vkey(WITNESS)}\n")
    assert (state / "checkpoint").read_bytes() == (root / "checkpoint").read_bytes()


def test_a_forked_log_is_refused(ledger, make_ledger, tmp_path) -> None:
    root, state = tmp_path / "log", tmp_path / "witness"
    add(ledger, tmp_path, "b0", batch("b0", 240))
    publish_day(ledger, root, 13)
    assert follow(root, state)[0] == 0
    other = make_ledger(f"sqlite:///{tmp_path / 'other.sqlite'}")
    other.open_fund(fund_config(), TIME)
    add(other, tmp_path, "oc", [capital("c1", "500.00")])
    add(other, tmp_path, "ob", batch("other", 400))
    publish_tiles(other, "main", SIGNER, root, "2020-03-14T00:00:00Z", force=True)
    before = (state / "state").read_bytes()
    code, out = follow(root, state)
    assert code == 1, out
    assert "FAILED: consistency: the log's first 245 entries fold to root" in out
    assert "the history was rewritten" in out
    assert (state / "state").read_bytes() == before  # the fork left the witness's state alone


def test_a_rewritten_checkpoint_and_a_move_backwards_are_refused(ledger, tmp_path) -> None:
    root, state = tmp_path / "log", tmp_path / "witness"
    add(ledger, tmp_path, "b0", batch("b0", 240))
    first = publish_day(ledger, root, 13)
    add(ledger, tmp_path, "b1", batch("b1", 60))
    second = publish_day(ledger, root, 14)
    assert follow(root, state)[0] == 0
    honest = (root / "checkpoint").read_bytes()
    # The operator re-signs a checkpoint of the same size with another root: a split view.
    forged = sign_note(checkpoint_body(MAIN_ORIGIN, second, bytes(32)), [SIGNER])
    (root / "checkpoint").write_text(forged)
    code, out = follow(root, state)
    assert code == 1, out
    verified_root = json.loads((root / f"snapshots/{second}/snapshot.json").read_text())
    assert out.splitlines()[-1] == (
        f"FAILED: checkpoint: split view: size {second} with root {'00' * 32}, but the "
        f"witness verified root {verified_root['log']['root']} for that size")
    # Back to an older checkpoint: refused.
    (root / "checkpoint").write_bytes((root / f"snapshots/{first}/checkpoint").read_bytes())
    code, out = follow(root, state)
    assert code == 1, out
    assert out.splitlines()[-1] == (f"FAILED: checkpoint: size {first} is smaller than the "
                                    f"{second} already verified: a log never moves backwards")
    (root / "checkpoint").write_bytes(honest)
    assert follow(root, state)[0] == 0


def test_follow_usage_errors_exit_2(tmp_path) -> None:
    code, out = follow(tmp_path / "nothing", tmp_path / "w")
    assert code == 2 and out.startswith("ERROR: ") and "not a tiled log" in out, out
    assert len(out.splitlines()) == 1


def test_sigterm_stops_the_witness_with_exit_0(ledger, tmp_path) -> None:
    root, state = tmp_path / "log", tmp_path / "witness"
    add(ledger, tmp_path, "b0", batch("b0", 20))
    size = publish_day(ledger, root, 13)
    child = subprocess.Popen(
        [sys.executable, "-m", "auditor", "follow", str(root), "--key", VKEY, "--state",
         str(state), "--interval", "1h"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # blocks until the first poll has verified the log
        assert f"snapshot size {size} verified" in line
        child.terminate()
        assert child.wait(timeout=60) == 0
    finally:
        if child.poll() is None:
            child.kill()


def test_the_witness_follows_a_log_over_http(
        ledger, tmp_path, served_log, witness_key) -> None:
    url, root = served_log
    state = tmp_path / "witness"
    add(ledger, tmp_path, "b0", batch("b0", 240))
    publish_day(ledger, root, 13)
    add(ledger, tmp_path, "b1", batch("b1", 60))
    latest = publish_day(ledger, root, 14)
    code, out = follow(url, state, "--cosign", str(witness_key))
    assert code == 0, out
    # Over HTTP the snapshots cannot be listed: the latest one is verified (from scratch).
    assert [p.name for p in (state / "cosigned").iterdir()] == [str(latest)]
    assert cosigned_ok((state / "cosigned" / str(latest)).read_text(), WITNESS.public_key,
                       WITNESS.name)
