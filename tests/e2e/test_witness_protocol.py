"""The witness client (`backstop snapshot publish --witness`) against a tlog-witness written
from the spec by the tests (tests/tlog_witness.py): the round trip, cosignatures stored in
the checkpoint (schemas/README.md, "Witness cosignatures"), the resync on 409, refusals."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from auditor.cli import main as audit
from ledger.cli.main import main as backstop
from tests.factories import cli_crash_fund, fee, write_jsonl
from tests.serving import serving
from tests.tlog_witness import SpecWitness, witness_server


def operator(tmp_path: Path) -> tuple[dict[str, str], Path, str]:
    """Fund main (11 events) in a CLI database, a key named its derived origin, the vkey."""
    env = cli_crash_fund(tmp_path)
    key = tmp_path / "op.key"
    vkey = CliRunner().invoke(backstop, ["keygen", "--fund", "main", "--out", str(key)]).output
    return env, key, vkey.strip()


def log_key(vkey: str) -> tuple[str, bytes]:
    name, _, b64 = vkey.split("+", 2)
    return name, base64.b64decode(b64)[1:]


def publish(env: dict[str, str], key: Path, root: Path, *extra: str) -> Result:
    return CliRunner().invoke(backstop, ["snapshot", "publish", "--key", str(key), "--out",
                                         str(root), "--layout", "tiles", *extra], env=env)


def grow(env: dict[str, str], tmp_path: Path, name: str, count: int) -> None:
    facts = write_jsonl(tmp_path / f"{name}.jsonl",
                        [fee(f"{name}{i}", "0.01", f"acct-{i}") for i in range(count)])
    assert CliRunner().invoke(backstop, ["import", str(facts)], env=env).exit_code == 0


def cosigned_at(witness: SpecWitness, note: str) -> int:
    """The witness's cosignature line in `note`, checked by hand (tlog-cosignature): its
    timestamp."""
    body = note[:note.rfind("\n\n") + 1]
    mine = [line for line in note.split("\n") if line.startswith(f"\u2014 {witness.name} ")]
    assert len(mine) == 1, note
    blob = base64.b64decode(mine[0].split(" ")[2])
    assert blob[:4] == hashlib.sha256(witness.name.encode() + b"\n\x04" + witness.public).digest()[:4]
    stamp = int.from_bytes(blob[4:12], "big")
    Ed25519PublicKey.from_public_bytes(witness.public).verify(
        blob[12:], f"cosignature/v1\ntime {stamp}\n".encode() + body.encode())
    return stamp


def test_round_trip_and_a_second_checkpoint_with_its_proof(tmp_path: Path) -> None:
    env, key, vkey = operator(tmp_path)
    origin = vkey.split("+")[0]
    witness = SpecWitness("witness.test/w1", {origin: log_key(vkey)})
    root = tmp_path / "log"
    with serving(witness_server(witness)) as port:
        url = f"http://127.0.0.1:{port}"
        first = publish(env, key, root, "--witness", url, "--witness-key", witness.vkey())
        assert first.exit_code == 0, first.output
        assert first.stdout.splitlines()[-1] == "cosigned by 1 of 1 witnesses"
        note = (root / "snapshots/11/checkpoint").read_text()
        assert note.split("\n")[:2] == [origin, "11"]
        assert cosigned_at(witness, note) == 1_700_000_001
        assert (root / "checkpoint").read_text() == note  # ROOT/checkpoint is that checkpoint
        head = json.loads((root / "snapshots/11/snapshot.json").read_text())["log"]["root"]
        assert witness.state == {origin: (11, bytes.fromhex(head))}

        grow(env, tmp_path, "more", 3)
        second = publish(env, key, root, "--witness", url, "--witness-key", witness.vkey())
        assert second.exit_code == 0, second.output
        note = (root / "snapshots/14/checkpoint").read_text()
        assert cosigned_at(witness, note) == 1_700_000_002  # old 11, a proof from 11 to 14
        assert witness.answers == [200, 200]
        assert witness.state[origin][0] == 14
    # A cosigned checkpoint is still the operator's signed note: the auditor verifies it.
    replay = CliRunner().invoke(audit, ["replay", str(root), "--key", vkey])
    assert replay.exit_code == 0, replay.output


def test_a_witness_behind_the_log_is_resynced_from_its_size(tmp_path: Path) -> None:
    env, key, vkey = operator(tmp_path)
    origin = vkey.split("+")[0]
    witness = SpecWitness("witness.test/w2", {origin: log_key(vkey)})
    root = tmp_path / "log"
    assert publish(env, key, root).exit_code == 0  # size 11, no witness yet
    grow(env, tmp_path, "more", 3)
    with serving(witness_server(witness)) as port:
        result = publish(env, key, root, "--witness", f"http://127.0.0.1:{port}",
                         "--witness-key", witness.vkey())
    assert result.exit_code == 0, result.output
    # Sent old 11 (the previous snapshot's); the witness holds 0: 409 "0", then old 0.
    assert witness.answers == [409, 200]
    assert cosigned_at(witness, (root / "snapshots/14/checkpoint").read_text()) == 1_700_000_001
    assert "\u2014 witness.test/w2 " not in (root / "snapshots/11/checkpoint").read_text()


def test_a_witness_that_does_not_know_the_log_is_reported(tmp_path: Path) -> None:
    env, key, vkey = operator(tmp_path)
    witness = SpecWitness("witness.test/w3", {"other.example/log": log_key(vkey)})
    root = tmp_path / "log"
    with serving(witness_server(witness)) as port:
        url = f"http://127.0.0.1:{port}"
        listing = tmp_path / "witnesses"
        listing.write_text(f"# the operator's witnesses\n{url} {witness.vkey()}\n")
        result = publish(env, key, root, "--witnesses", str(listing),
                         "--require-cosignatures", "1")
    assert result.exit_code == 1
    assert result.stderr == f"witness {url}: HTTP 404: unknown origin\n"
    assert result.stdout.splitlines()[-1] == "cosigned by 0 of 1 witnesses"
    note = (root / "snapshots/11/checkpoint").read_text()
    assert len(note.rstrip("\n").split("\n\n")[1].split("\n")) == 1  # the operator's line only


def test_a_cosignature_by_an_untrusted_key_is_dropped(tmp_path: Path) -> None:
    env, key, vkey = operator(tmp_path)
    origin = vkey.split("+")[0]
    witness = SpecWitness("witness.test/w4", {origin: log_key(vkey)})
    impostor = SpecWitness("witness.test/w4", {})  # same name, another key
    root = tmp_path / "log"
    with serving(witness_server(witness)) as port:
        url = f"http://127.0.0.1:{port}"
        result = publish(env, key, root, "--witness", url, "--witness-key", impostor.vkey())
    assert result.exit_code == 0
    assert result.stderr == (f"witness {url}: 200, but no cosignature by a trusted key "
                             "verifies\n")
    assert "\u2014 witness.test/w4 " not in (root / "snapshots/11/checkpoint").read_text()


def test_a_bad_witness_list_is_refused_before_anything_is_published(tmp_path: Path) -> None:
    env, key, _ = operator(tmp_path)
    listing = tmp_path / "witnesses"
    listing.write_text("http://127.0.0.1:1/\n")
    root = tmp_path / "log"
    result = publish(env, key, root, "--witnesses", str(listing))
    assert result.exit_code == 2
    assert result.output == f"Error: --witnesses {listing}: line 1: expected 'URL VKEY'\n"
    no_key = publish(env, key, root, "--witness", "http://127.0.0.1:1/")
    assert no_key.exit_code == 2
    assert no_key.output == ("Error: --witness: needs --witness-key (the witnesses' "
                             "cosignature keys)\n")
    assert not root.exists()


def test_a_directory_publication_keeps_its_cosignature_in_its_checkpoint(tmp_path: Path) -> None:
    env, key, vkey = operator(tmp_path)
    witness = SpecWitness("witness.test/w5", {vkey.split("+")[0]: log_key(vkey)})
    out = tmp_path / "pub"
    with serving(witness_server(witness)) as port:
        result = CliRunner().invoke(backstop, [
            "snapshot", "publish", "--key", str(key), "--out", str(out), "--witness",
            f"http://127.0.0.1:{port}/", "--witness-key", witness.vkey()], env=env)
    assert result.exit_code == 0, result.output
    assert cosigned_at(witness, (out / "checkpoint").read_text()) == 1_700_000_001
    checked = CliRunner().invoke(audit, ["checkpoint", str(out / "checkpoint"), "--key", vkey,
                                         "--snapshot", str(out / "snapshot.json")])
    assert checked.exit_code == 0, checked.output


def test_the_auditor_checks_the_pinned_witnesses_cosignatures(tmp_path: Path) -> None:
    env, key, vkey = operator(tmp_path)
    witness = SpecWitness("witness.test/w6", {vkey.split("+")[0]: log_key(vkey)})
    absent = SpecWitness("witness.test/w7", {})
    root = tmp_path / "log"
    with serving(witness_server(witness)) as port:
        assert publish(env, key, root, "--witness", f"http://127.0.0.1:{port}",
                       "--witness-key", witness.vkey()).exit_code == 0
    note = root / "checkpoint"

    def check(*extra: str) -> Result:
        return CliRunner().invoke(audit, ["checkpoint", str(note), "--key", vkey, *extra])

    good = CliRunner().invoke(audit, ["checkpoint", str(note), "--key", vkey, "--cosigner",
                                      witness.vkey(), "--json"])
    assert good.exit_code == 0, good.output
    assert json.loads(good.output)["cosigned_by"] == ["witness.test/w6"]
    both = check("--cosigner", witness.vkey(), "--cosigner", absent.vkey())
    assert both.exit_code == 1
    assert both.output.splitlines()[-1] == ("FAILED: cosignatures: 1 pinned witness(es) "
                                            "cosigned, 2 required")
    assert check("--cosigner", witness.vkey(), "--cosigner", absent.vkey(),
                 "--require-cosignatures", "1").exit_code == 0
    text = note.read_text()
    line = text.rstrip("\n").rsplit("\n", 1)[1]
    blob = bytearray(base64.b64decode(line.split(" ")[2]))
    blob[-1] ^= 1  # the signature's last byte
    note.write_text(text.replace(line, f"{line.rsplit(' ', 1)[0]} "
                                       f"{base64.b64encode(bytes(blob)).decode()}"))
    bad = check("--cosigner", witness.vkey())
    assert bad.exit_code == 1
    assert bad.output.splitlines()[-1] == ("FAILED: cosignatures: the line by witness "
                                           "'witness.test/w6' does not verify")
    assert check().exit_code == 0  # the operator's signature alone still verifies
