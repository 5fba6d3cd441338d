"""auditor.verify.cosign: cosignature/v1 keys and lines (c2sp.org/tlog-cosignature), and how
a checkpoint note keeps them (schemas/README.md, "Witness cosignatures")."""

from __future__ import annotations

import base64
import hashlib

import pytest

from auditor.verify.cosign import (
    CosignerKey,
    add_cosignatures,
    cosignature_line,
    cosigner_vkey,
    verify_cosignature,
)
from auditor.verify.keys import KeyFormatError, checkpoint_body, open_note, sign_note
from ledger.service.signing import generate_signer

LOG = generate_signer("log.example/main")
W1, W2 = generate_signer("w1.example"), generate_signer("w2.example")
BODY = checkpoint_body("log.example/main", 7, bytes(range(32)))


def test_a_line_is_the_key_id_the_time_and_the_signature() -> None:
    line = cosignature_line(W1, BODY, 1_700_000_000)
    name, blob = line[2:-1].split(" ")
    raw = base64.b64decode(blob)
    assert (line[:2], name, len(raw)) == ("\u2014 ", "w1.example", 76)
    assert raw[:4] == hashlib.sha256(b"w1.example\n\x04" + W1.public_key).digest()[:4]
    assert int.from_bytes(raw[4:12], "big") == 1_700_000_000
    key = CosignerKey.from_vkey(cosigner_vkey(W1))
    assert verify_cosignature([key], BODY, line) == key
    assert verify_cosignature([key], BODY.replace("7", "8"), line) is None  # another body
    assert verify_cosignature([CosignerKey.from_vkey(cosigner_vkey(W2))], BODY, line) is None


def test_a_witness_key_must_be_a_cosignature_key() -> None:
    with pytest.raises(KeyFormatError, match="is not a cosignature/v1 key"):
        CosignerKey.from_vkey(W1.verifier_key())  # an 0x01 signed-note key


def test_cosignatures_join_the_note_and_a_newer_one_replaces_its_own() -> None:
    note = sign_note(BODY, [LOG])
    first = add_cosignatures(note, [cosignature_line(W1, BODY, 1), cosignature_line(W2, BODY, 2)])
    again = add_cosignatures(first, [cosignature_line(W1, BODY, 3)])
    lines = again.split("\n\n", 1)[1].splitlines()
    assert [line.split(" ")[1] for line in lines] == ["log.example/main", "w2.example",
                                                      "w1.example"]
    assert int.from_bytes(base64.b64decode(lines[2].split(" ")[2])[4:12], "big") == 3
    assert open_note(again, [LOG.verifier()]) == (BODY, ["log.example/main"])
