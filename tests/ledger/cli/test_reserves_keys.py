"""`backstop reserves add --custodian-key`: pinned keys are read as the auditor reads its
`--key` (auditor.verify.keys.parse_verifiers): a verifier key, or a regular file of them (one
per line, at most MAX_KEY_FILE bytes, UTF-8, at least one key). Every refusal is one line,
exit 2, and records nothing; the message is the auditor's, word for word."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from auditor.loaders import load_verifiers
from auditor.report import InputError
from auditor.verify.reads import MAX_KEY_FILE
from tests.reserves_kit import ROUND_TIME, Kit


@pytest.fixture
def kit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Kit:
    monkeypatch.chdir(tmp_path)  # key files by short relative names: messages quote them whole
    kit = Kit(tmp_path)
    kit.create()
    kit.ok("reserves", "challenge", "--time", ROUND_TIME)
    return kit


def recorded(kit: Kit) -> list[dict[str, Any]]:
    holdings: list[dict[str, Any]] = json.loads(kit.ok("reserves", "show", "--json"))["holdings"]
    return holdings


def add_with(kit: Kit, key: str) -> tuple[int, str]:
    """`reserves add` of one custodian holding signed by acme, with `--custodian-key key`."""
    path = kit.folder / "holdings.jsonl"
    path.write_text(json.dumps(kit.custodian_line()) + "\n")
    result = kit.run("reserves", "add", str(path), "--custodian-key", key)
    return result.exit_code, result.output


def the_auditors_message(key: str) -> str:
    """What `backstop-audit` says of the same value given as a pinned key."""
    with pytest.raises(InputError) as refused:
        load_verifiers([key], "--custodian-key")
    return str(refused.value)


def test_a_file_of_several_keys_with_blank_lines_pins_each(kit: Kit) -> None:
    both = kit.folder / "both.pub"
    both.write_text("\n" + (kit.folder / "acme-other.pub").read_text() + "\n\n"
                    + (kit.folder / "acme.pub").read_text())
    assert add_with(kit, "both.pub") == (0, ("recorded; the round at log size 4 now has 1 "
                                            "holding(s)\n"))
    assert [h["amount"] for h in recorded(kit)] == ["500.00"]


def test_a_verifier_key_given_directly_pins_it(kit: Kit) -> None:
    code, _ = add_with(kit, kit.custodian.verifier_key())
    assert code == 0
    assert len(recorded(kit)) == 1


def _refusals(folder: Path) -> list[tuple[str, str]]:
    """(value of --custodian-key, the one-line error), the files written into `folder`."""
    (folder / "empty.pub").write_text("\n  \n")
    (folder / "latin1.pub").write_bytes(b"acme-custody+\xe9\n")
    (folder / "big.pub").write_bytes(b" " * (MAX_KEY_FILE + 1))
    good = (folder / "acme.pub").read_text()
    (folder / "bad.pub").write_text(good + "\nacme+00000000+AAAA\n")
    os.mkfifo(folder / "fifo.pub")
    (folder / "dir.pub").mkdir()

    def unread(name: str, why: str) -> str:
        return (f"--custodian-key '{name}': not a verifier key (verifier key '{name}' must be "
                f"name+keyid+key) nor a readable key file ({why})")

    return [
        ("missing.pub", unread("missing.pub", "No such file or directory")),
        # Before: an empty file pinned nothing, and the holding failed later for want of a key.
        ("empty.pub", "--custodian-key 'empty.pub': file holds no verifier key"),
        ("latin1.pub", unread("latin1.pub", "not UTF-8")),
        # Before: read whole, whatever its size.
        ("big.pub", unread("big.pub", "larger than the 1,048,576-byte limit for this file")),
        ("bad.pub", ("--custodian-key 'bad.pub': line 3: verifier key for 'acme' is not an "
                    "Ed25519 key (0x01 + 32 bytes)")),
        # Before: a FIFO was opened for reading and blocked until a writer came.
        ("fifo.pub", unread("fifo.pub", "not a regular file (a FIFO)")),
        ("dir.pub", unread("dir.pub", "not a regular file (a directory)")),
        ("acme+00000000+AAAA", unread("acme+00000000+AAAA", "No such file or directory")
         .replace("(verifier key 'acme+00000000+AAAA' must be name+keyid+key)",
                  "(verifier key for 'acme' is not an Ed25519 key (0x01 + 32 bytes))")),
    ]


def test_each_refused_key_is_one_line_exit_2_nothing_recorded_as_the_auditor_says(
        kit: Kit) -> None:
    for key, error in _refusals(kit.folder):
        assert add_with(kit, key) == (2, f"Error: {error}\n"), key
        assert the_auditors_message(key) == error, key
        assert recorded(kit) == [], key
