"""C2SP tlog-cosignature (https://c2sp.org/tlog-cosignature): Ed25519 ``cosignature/v1``.

A witness's verifier key is ``name+hex(keyid)+base64(0x04 || public key)``, keyid =
SHA-256(name || 0x0A || 0x04 || public key)[:4]. A cosignature is a note signature line
``— name base64(keyid || uint64 big-endian time || signature)``, the Ed25519 signature over
``cosignature/v1\\ntime <time>\\n`` followed by the checkpoint body. The operator's side keeps
the lines of the witnesses it trusts (schemas/README.md, "Witness cosignatures"); a witness
(`backstop-audit follow`) writes them.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from auditor.formats.clip import clip
from auditor.verify.keys import SIG_PREFIX, KeyFormatError, Signer
from auditor.verify.reads import MAX_KEY_FILE, read_regular

__all__ = ["COSIGNATURE_ALG", "CosignerKey", "add_cosignatures", "cosignature_line",
           "cosigner_key_id", "cosigner_vkey", "parse_cosigner_keys", "verify_cosignature"]

COSIGNATURE_ALG = 0x04
_BLOB = 4 + 8 + 64  # key id, timestamp, signature


def cosigner_key_id(name: str, public_key: bytes) -> bytes:
    """SHA-256(name || "\\n" || 0x04 || public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([COSIGNATURE_ALG]) + public_key).digest()[:4]


def cosigner_vkey(signer: Signer) -> str:
    """A witness's verifier key for cosignature/v1."""
    pub = signer.public_key
    return (f"{signer.name}+{cosigner_key_id(signer.name, pub).hex()}+"
            f"{base64.b64encode(bytes([COSIGNATURE_ALG]) + pub).decode()}")


def _message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode("utf-8")


def cosignature_line(signer: Signer, body: str, timestamp: int) -> str:
    """The note signature line cosigning checkpoint `body` at POSIX time `timestamp`."""
    blob = (cosigner_key_id(signer.name, signer.public_key) + timestamp.to_bytes(8, "big")
            + signer.sign(_message(body, timestamp)))
    return f"{SIG_PREFIX}{signer.name} {base64.b64encode(blob).decode()}\n"


@dataclass(frozen=True)
class CosignerKey:
    """A witness's cosignature/v1 public key."""

    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def from_vkey(cls, text: str) -> CosignerKey:
        """Parse ``name+hex(keyid)+base64(0x04 || key)``; checks the algorithm and key id."""
        parts = text.strip().split("+", 2)
        if len(parts) != 3 or not parts[0] or any(c.isspace() for c in parts[0]):
            raise KeyFormatError(f"witness key {clip(text)} must be name+keyid+key")
        name, kid_hex, key_b64 = parts
        try:
            key = base64.b64decode(key_b64, validate=True)
            kid = bytes.fromhex(kid_hex)
        except ValueError:
            raise KeyFormatError(f"witness key {clip(text)}: key id or key not hex/base64") \
                from None
        if len(key) != 33 or key[0] != COSIGNATURE_ALG:
            raise KeyFormatError(f"witness key for {clip(name)} is not a cosignature/v1 key "
                                 "(0x04 + 32 bytes)")
        if cosigner_key_id(name, key[1:]) != kid:
            raise KeyFormatError(f"witness key id {kid_hex} does not match the key for "
                                 f"{clip(name)}")
        return cls(name, kid, key[1:])


def parse_cosigner_keys(values: Iterable[str], option: str) -> list[CosignerKey]:
    """Witness keys: each value a key, or a file of keys one a line (blank lines skipped)."""
    out: list[CosignerKey] = []
    for value in values:
        try:
            out.append(CosignerKey.from_vkey(value))
            continue
        except KeyFormatError as exc:
            direct = exc
        try:
            text = read_regular(value, MAX_KEY_FILE).decode("utf-8")
        except (OSError, ValueError):
            raise KeyFormatError(f"{option} {clip(value)}: {direct}") from None
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    out.append(CosignerKey.from_vkey(line))
                except KeyFormatError as exc:
                    raise KeyFormatError(f"{option} {clip(value)}: line {number}: {exc}") \
                        from None
    return out


def verify_cosignature(keys: Iterable[CosignerKey], body: str, line: str) -> CosignerKey | None:
    """The key among `keys` whose valid cosignature of checkpoint `body` `line` is (one note
    signature line, with or without its newline); None for an unknown key or a bad line."""
    if not line.startswith(SIG_PREFIX):
        return None
    name, _, b64 = line[len(SIG_PREFIX):].rstrip("\n").partition(" ")
    try:
        blob = base64.b64decode(b64, validate=True)
    except ValueError:
        return None
    if len(blob) != _BLOB:
        return None
    for key in keys:
        if key.name == name and key.key_id == blob[:4]:
            try:
                Ed25519PublicKey.from_public_bytes(key.public_key).verify(
                    blob[12:], _message(body, int.from_bytes(blob[4:12], "big")))
            except InvalidSignature:
                return None
            return key
    return None


def add_cosignatures(note: str, lines: Iterable[str]) -> str:
    """`note` with the signature `lines` appended; a line by the same key name and key id as
    one already in the note replaces it (a witness's newer cosignature)."""
    def ident(line: str) -> tuple[str, bytes]:
        name, _, b64 = line[len(SIG_PREFIX):].rstrip("\n").partition(" ")
        try:
            return name, base64.b64decode(b64, validate=True)[:4]
        except ValueError:
            return name, b""

    new = [line if line.endswith("\n") else line + "\n" for line in lines]
    replaced = {ident(line) for line in new}
    split = note.rfind("\n\n")
    head, block = note[:split + 2], note[split + 2:]
    kept = [line + "\n" for line in block.rstrip("\n").split("\n")
            if line and ident(line) not in replaced]
    return head + "".join(kept) + "".join(new)
