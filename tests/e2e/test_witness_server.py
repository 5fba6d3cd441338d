"""`backstop-audit follow --listen`: the auditor as a tlog-witness server, against the
operator's witness client (`backstop snapshot publish --witness`) and a plain HTTP client for
the refusals (https://c2sp.org/tlog-witness). Real processes, real sockets on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from auditor.cli import main as audit
from auditor.verify.keys import Signer, checkpoint_body, sign_note
from ledger.cli.main import main as backstop
from tests.factories import cli_crash_fund, fee, write_jsonl


def publish(env: dict[str, str], key: Path, root: Path, *extra: str) -> Result:
    return CliRunner().invoke(backstop, ["snapshot", "publish", "--key", str(key), "--out",
                                         str(root), "--layout", "tiles", *extra], env=env)


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.env = cli_crash_fund(tmp_path)
        self.tmp = tmp_path
        self.key = tmp_path / "op.key"
        self.vkey = CliRunner().invoke(backstop, ["keygen", "--fund", "main", "--out",
                                                  str(self.key)]).output.strip()
        self.root = tmp_path / "log"
        assert publish(self.env, self.key, self.root).exit_code == 0  # size 11
        self.state = tmp_path / "witness"
        witness_key = tmp_path / "wit.key"
        assert CliRunner().invoke(backstop, ["keygen", "witness.test/auditor", "--out",
                                             str(witness_key)]).exit_code == 0
        self.process = subprocess.Popen(
            [sys.executable, "-m", "auditor", "follow", str(self.root), "--key", self.vkey,
             "--state", str(self.state), "--cosign", str(witness_key), "--interval", "1h",
             "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        assert first.startswith("witness witness.test/auditor+"), first
        self.witness_vkey = first.split(" ", 1)[1].strip()
        listening = self.process.stdout.readline()
        assert listening.startswith("listening on http://127.0.0.1:"), listening
        self.url = listening.split(" ")[2].rstrip("/")

    def grow(self, name: str, count: int) -> None:
        facts = write_jsonl(self.tmp / f"{name}.jsonl",
                            [fee(f"{name}{i}", "0.01", f"acct-{i}") for i in range(count)])
        assert CliRunner().invoke(backstop, ["import", str(facts)], env=self.env).exit_code == 0


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    try:
        yield w
    finally:
        w.process.terminate()
        assert w.process.wait(timeout=30) == 0  # SIGTERM: a clean stop


def post(url: str, body: bytes) -> tuple[int, str, str]:
    request = urllib.request.Request(url + "/add-checkpoint", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def check_cosignature(vkey: str, note: str) -> None:
    """The witness's line in `note` verifies as a tlog-cosignature, checked by hand."""
    name, kid, key = vkey.split("+", 2)
    public = base64.b64decode(key)[1:]
    assert bytes.fromhex(kid) == hashlib.sha256(name.encode() + b"\n\x04" + public).digest()[:4]
    body = note[:note.rfind("\n\n") + 1]
    line = [x for x in note.split("\n") if x.startswith(f"\u2014 {name} ")]
    assert len(line) == 1, note
    blob = base64.b64decode(line[0].split(" ")[2])
    assert blob[:4] == bytes.fromhex(kid)
    stamp = int.from_bytes(blob[4:12], "big")
    Ed25519PublicKey.from_public_bytes(public).verify(
        blob[12:], f"cosignature/v1\ntime {stamp}\n".encode() + body.encode())


def test_the_client_gets_an_audited_cosignature(world: World) -> None:
    world.grow("more", 3)
    result = publish(world.env, world.key, world.root, "--witness", world.url,
                     "--witness-key", world.witness_vkey)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "cosigned by 1 of 1 witnesses"
    note = (world.root / "snapshots/14/checkpoint").read_text()
    check_cosignature(world.witness_vkey, note)
    assert (world.root / "checkpoint").read_text() == note
    # The witness audited size 14 before cosigning: its own record of it.
    assert (world.state / "cosigned/14").read_text().rsplit("\n", 2)[1] in note
    replay = CliRunner().invoke(audit, ["replay", str(world.root), "--key", world.vkey])
    assert replay.exit_code == 0, replay.output


def test_the_refusals_of_the_spec(world: World) -> None:
    note = (world.root / "checkpoint").read_text()  # size 11, cosigned at start by the poll
    # The witness holds 11; a request from 0 learns it (409, text/x.tlog.size).
    assert post(world.url, b"old 0\n\n" + note.encode()) == (409, "text/x.tlog.size", "11\n")
    # The same size again, the same root: cosigned afresh.
    status, _, text = post(world.url, b"old 11\n\n" + note.encode())
    assert status == 200
    check_cosignature(world.witness_vkey, note + text)
    # Beyond the checkpoint: 400. Not signed by the pinned key: 403.
    assert post(world.url, b"old 12\n\n" + note.encode())[0] == 400
    body = note[:note.rfind("\n\n") + 1]
    stranger = body + "\n\u2014 someone AAAAAQ" + "A" * 86 + "==\n"
    assert post(world.url, b"old 11\n\n" + stranger.encode())[0] == 403
    # Another root for size 11, signed by the operator: a split view (409, not a size).
    operator = Signer.from_pem(world.key.read_bytes())
    forged = sign_note(checkpoint_body(world.vkey.split("+")[0], 11, bytes(32)), [operator])
    status, kind, text = post(world.url, b"old 11\n\n" + forged.encode())
    assert (status, kind, text) == (409, "text/plain; charset=utf-8",
                                    "split view: another root for size 11\n")
    # A proof that does not verify: 422.
    world.grow("more", 3)
    assert publish(world.env, world.key, world.root).exit_code == 0  # size 14, not witnessed
    new = (world.root / "checkpoint").read_text()
    bad = base64.b64encode(bytes(32)).decode()
    answer = post(world.url, f"old 11\n{bad}\n{bad}\n\n{new}".encode())
    assert answer[0] == 422 and answer[2].startswith("consistency proof: "), answer
    assert post(world.url, b"old 11\nnot base64!\n\n" + new.encode())[0] == 400
    assert not (world.state / "cosigned/14").exists()


def test_listening_needs_a_cosigning_key_and_an_address(tmp_path: Path) -> None:
    env = cli_crash_fund(tmp_path)
    key = tmp_path / "op.key"
    vkey = CliRunner().invoke(backstop, ["keygen", "--fund", "main", "--out", str(key)]).output
    assert publish(env, key, tmp_path / "log").exit_code == 0
    base = ["follow", str(tmp_path / "log"), "--key", vkey.strip(), "--state", str(tmp_path / "w")]
    no_key = CliRunner().invoke(audit, [*base, "--listen", "127.0.0.1:0"])
    assert (no_key.exit_code, no_key.output) == (
        2, "ERROR: --listen: needs --cosign, and cannot be --once\n")
    wkey = tmp_path / "wit.key"
    assert CliRunner().invoke(backstop, ["keygen", "w.test", "--out", str(wkey)]).exit_code == 0
    bad = CliRunner().invoke(audit, [*base, "--cosign", str(wkey), "--listen", "nowhere"])
    assert (bad.exit_code, bad.output) == (2, "ERROR: --listen nowhere: expected HOST:PORT\n")
