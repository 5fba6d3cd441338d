"""auditor.verify.keys against the published golang.org/x/mod/sumdb/note vectors, plus tamper cases."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditor.verify.keys import (
    KeyFormatError,
    NoteError,
    SignatureError,
    Signer,
    Verifier,
    checkpoint_body,
    open_note,
    parse_checkpoint,
    sign_document,
    sign_note,
    verify_document,
)
from ledger.service.signing import generate_signer, key_file

# Vectors from golang.org/x/mod sumdb/note/note_test.go (TestSign, TestOpen).
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqd"
    "ngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGw"
    "nWLox33WWd1RvMc+QQ=\n"
)


def go_signer() -> Signer:
    """Decode Go's private key format PRIVATE+KEY+name+hash+base64(0x01 || seed)."""
    _, _, name, kid_hex, b64 = GO_SKEY.split("+", 4)
    raw = base64.b64decode(b64)
    assert raw[0] == 1 and len(raw) == 33
    signer = Signer(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
    assert signer.key_id.hex() == kid_hex
    return signer


def test_go_vector_sign_byte_for_byte() -> None:
    signer = go_signer()
    assert signer.verifier_key() == GO_VKEY
    assert sign_note(GO_TEXT, [signer]) == GO_TEXT + "\n" + PETER_SIG


def test_go_vector_open() -> None:
    peter, enoch = Verifier.from_vkey(GO_VKEY), Verifier.from_vkey(ENOCH_VKEY)
    note = GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert open_note(note, [peter]) == (GO_TEXT, ["PeterNeumann"])
    assert open_note(note, [peter, enoch]) == (GO_TEXT, ["PeterNeumann", "EnochRoot"])
    with pytest.raises(NoteError, match="no verifiable"):
        open_note(note, [])


def test_verifier_key_parse_and_keyid_check() -> None:
    v = Verifier.from_vkey(GO_VKEY)
    assert v.name == "PeterNeumann" and v.key_id.hex() == "c74f20a3"
    pub = base64.b64decode(GO_VKEY.split("+", 2)[2])[1:]
    assert hashlib.sha256(b"PeterNeumann\n\x01" + pub).digest()[:4] == v.key_id
    # Go's own rejected manglings: wrong-length key and unknown algorithm (with adjusted hash).
    for bad in [
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # key id off by one
        "PeterNeuman+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # other name
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3",
    ]:
        with pytest.raises(KeyFormatError):
            Verifier.from_vkey(bad)


def test_note_tampering() -> None:
    peter = Verifier.from_vkey(GO_VKEY)
    good = GO_TEXT + "\n" + PETER_SIG
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(good.replace("cryptography", "Cryptography"), [peter])
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(GO_TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:], [peter])
    other = generate_signer("PeterNeumann").verifier()  # same name, different key
    with pytest.raises(NoteError, match="no verifiable"):
        open_note(good, [other])
    # Go's malformed-note cases.
    for bad in [
        GO_TEXT,
        GO_TEXT + "\n",
        GO_TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + GO_TEXT + "\n" + PETER_SIG,
        GO_TEXT + "\n" + "\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
        GO_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
    ]:
        with pytest.raises(NoteError):
            open_note(bad, [peter])
    with pytest.raises(NoteError):
        sign_note("no newline", [go_signer()])


def test_checkpoint_round_trip() -> None:
    root = hashlib.sha256(b"x").digest()
    body = checkpoint_body("backstop/main", 1234, root)
    assert body == f"backstop/main\n1234\n{base64.b64encode(root).decode()}\n"
    signer = generate_signer("operator")
    body2, names = open_note(sign_note(body, [signer]), [signer.verifier()])
    assert names == ["operator"]
    assert parse_checkpoint(body2) == ("backstop/main", 1234, root)
    for bad in ["o\n01\n" + base64.b64encode(root).decode() + "\n", "o\n1\nAAAA\n", "o\n1\n"]:
        with pytest.raises(NoteError):
            parse_checkpoint(bad)


def test_document_signatures() -> None:
    op, aud = generate_signer("operator"), generate_signer("auditor")
    doc = {"format": "backstop-snapshot/1", "fund": "main", "log": {"size": 3}, "signatures": []}
    doc["signatures"].append(sign_document(doc, op))
    doc["signatures"].append(sign_document(doc, aud))  # cosignature over the same bytes
    assert doc["signatures"][0]["key"] == f"operator+{op.key_id.hex()}"
    vs = [op.verifier(), aud.verifier()]
    assert verify_document(doc, vs, require=2) == ["operator", "auditor"]
    assert verify_document(doc, [op.verifier()]) == ["operator"]
    with pytest.raises(SignatureError, match="1 known key"):
        verify_document(doc, [op.verifier()], require=2)
    with pytest.raises(SignatureError, match="0 known key"):
        verify_document(doc, [generate_signer("operator").verifier()])
    tampered = dict(doc, log={"size": 4})
    with pytest.raises(SignatureError, match="does not verify"):
        verify_document(tampered, vs)
    # A repeated signature from one key counts once.
    doubled = dict(doc, signatures=[doc["signatures"][0]] * 2)
    with pytest.raises(SignatureError):
        verify_document(doubled, vs, require=2)


def test_key_file_round_trip_with_passphrase() -> None:
    signer = generate_signer("operator")
    data = key_file(signer, b"correct horse")
    assert data.startswith(b"# backstop-signer: operator\n-----BEGIN ENCRYPTED PRIVATE KEY-----")
    back = Signer.from_pem(data, passphrase=b"correct horse")
    assert back.name == "operator" and back.verifier_key() == signer.verifier_key()
    with pytest.raises(KeyFormatError):
        Signer.from_pem(data, passphrase=b"wrong")
    with pytest.raises(KeyFormatError, match="not 'other'"):
        Signer.from_pem(data, "other", passphrase=b"correct horse")
    plain = Signer.from_pem(key_file(signer, None))
    assert plain.sign(b"m") == signer.sign(b"m")  # Ed25519 is deterministic


def test_mismatched_key_id_detected() -> None:
    a, b = generate_signer("operator"), generate_signer("operator")
    vkey = a.verifier_key()
    name, kid, _ = vkey.split("+", 2)  # base64 may contain "+": split only twice
    forged = "+".join([name, kid, b.verifier_key().split("+", 2)[2]])
    with pytest.raises(KeyFormatError, match="does not match"):
        Verifier.from_vkey(forged)


def test_verifier_key_whose_base64_contains_plus_parses() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from auditor.verify.keys import Signer, Verifier

    for seed in range(200):  # deterministic search for a key whose base64 has a "+"
        signer = Signer("plus.example", Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32))
        if "+" in signer.verifier_key().split("+", 2)[2]:
            break
    else:
        raise AssertionError("no seed gave a '+' in base64")
    verifier = Verifier.from_vkey(signer.verifier_key())
    assert (verifier.name, verifier.public_key) == ("plus.example", signer.public_key)
