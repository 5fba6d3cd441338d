"""Ed25519 keys, C2SP signed notes and tlog-checkpoints, and detached document signatures.

Verifier key (C2SP signed-note): ``name+hex(keyid)+base64(0x01 || public key)`` with
keyid = SHA-256(name || 0x0A || 0x01 || public key)[:4].

Signing-key file format (`Signer.to_pem` / `Signer.from_pem`): one header line
``# backstop-signer: <name>`` followed by the PKCS#8 PEM of the Ed25519 private key
(``ENCRYPTED PRIVATE KEY`` when a passphrase is given). The header carries the key's name,
which is part of its key id, so the name cannot get separated from the key.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from auditor.formats.clip import clip
from auditor.formats.wire import canonical_bytes
from auditor.verify.reads import MAX_KEY_FILE, read_regular

__all__ = [
    "PASSPHRASE_ENV",
    "KeyFormatError",
    "NoteError",
    "SignatureError",
    "Signer",
    "Verifier",
    "checkpoint_body",
    "key_id",
    "open_note",
    "parse_checkpoint",
    "parse_verifiers",
    "sign_document",
    "sign_note",
    "verify_document",
]

ALG_ED25519 = 0x01
# Where `backstop keygen --encrypt` and `backstop-audit cosign` read an encrypted key's passphrase.
PASSPHRASE_ENV = "BACKSTOP_KEY_PASSPHRASE"
SIG_PREFIX = "\u2014 "  # em dash + space starts every signature line
KEY_HEADER = "# backstop-signer: "
_MAX_SIGNATURES = 100  # as golang.org/x/mod/sumdb/note
_MAX_TREE_SIZE = 2**64 - 1  # a checkpoint's size is a uint64 (C2SP tlog-checkpoint)


class KeyFormatError(ValueError):
    """A key, verifier key or key file is malformed or inconsistent."""


class NoteError(ValueError):
    """A signed note is malformed or carries no verifying signature from a known key."""


class SignatureError(ValueError):
    """A signed document lacks the required valid signatures."""


def _b64decode(text: Any) -> bytes | None:
    """Strict base64 decoding, or None for anything else (a non-ASCII or non-string value
    included: the input is untrusted)."""
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, TypeError):  # binascii.Error is a ValueError
        return None


def _valid_name(name: str) -> bool:
    # C2SP signed-note: non-empty, no "+", no whitespace (Unicode), no control characters.
    return bool(name) and "+" not in name and not any(c.isspace() or ord(c) < 0x20 for c in name)


def key_id(name: str, public_key: bytes) -> bytes:
    """C2SP key id: first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key)."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class Signer:
    """A named Ed25519 signing key."""

    name: str
    private_key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        if not _valid_name(self.name):
            raise KeyFormatError(f"invalid key name {clip(self.name)} (no '+', spaces or control chars)")

    @property
    def public_key(self) -> bytes:
        """Raw 32-byte Ed25519 public key."""
        return _raw_public(self.private_key.public_key())

    @property
    def key_id(self) -> bytes:
        """4-byte C2SP key id."""
        return key_id(self.name, self.public_key)

    @property
    def key_name(self) -> str:
        """``name+hex(keyid)``: how documents name this key."""
        return f"{self.name}+{self.key_id.hex()}"

    def verifier_key(self) -> str:
        """C2SP verifier key ``name+hex(keyid)+base64(0x01 || public key)``."""
        pub = base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode()
        return f"{self.key_name}+{pub}"

    def verifier(self) -> Verifier:
        """The matching Verifier."""
        return Verifier(self.name, self.key_id, self.public_key)

    def sign(self, message: bytes) -> bytes:
        """Raw 64-byte Ed25519 signature of `message`."""
        return self.private_key.sign(message)

    @classmethod
    def from_pem(cls, data: bytes, name: str | None = None, passphrase: bytes | None = None) -> Signer:
        """Load a key file written by `to_pem`.

        The name comes from the header; if `name` is also given it must match (a bare PEM
        without header needs `name`).
        """
        text = data.decode("utf-8")
        file_name = None
        if text.startswith(KEY_HEADER):
            header, _, text = text.partition("\n")
            file_name = header[len(KEY_HEADER):].strip()
        if file_name is not None and name is not None and file_name != name:
            raise KeyFormatError(f"key file is for {clip(file_name)}, not {clip(name)}")
        chosen = file_name if file_name is not None else name
        if chosen is None:
            raise KeyFormatError("key file has no name header and no name was given")
        try:
            key = serialization.load_pem_private_key(text.encode(), password=passphrase)
        except (ValueError, TypeError) as exc:
            raise KeyFormatError(f"cannot load private key for {clip(chosen)}: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFormatError(f"key for {clip(chosen)} is not an Ed25519 key")
        return cls(chosen, key)


@dataclass(frozen=True)
class Verifier:
    """A named Ed25519 public key with its C2SP key id."""

    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def from_vkey(cls, text: str) -> Verifier:
        """Parse a C2SP verifier key; checks the name, algorithm, length and key id."""
        text = text.strip()
        parts = text.split("+", 2)  # the base64 key may itself contain "+"
        if len(parts) != 3:
            raise KeyFormatError(f"verifier key {clip(text)} must be name+keyid+key")
        name, kid_hex, key_b64 = parts
        if not _valid_name(name):
            raise KeyFormatError(f"verifier key has invalid name {clip(name)}")
        if not re.fullmatch(r"[0-9a-f]{8}", kid_hex):
            raise KeyFormatError(f"verifier key id {clip(kid_hex)} is not 8 lowercase hex digits")
        key = _b64decode(key_b64)
        if key is None:
            raise KeyFormatError(f"verifier key for {clip(name)} is not valid base64")
        if len(key) != 33 or key[0] != ALG_ED25519:
            raise KeyFormatError(f"verifier key for {clip(name)} is not an Ed25519 key (0x01 + 32 bytes)")
        kid = bytes.fromhex(kid_hex)
        if key_id(name, key[1:]) != kid:
            raise KeyFormatError(f"verifier key id {kid_hex} does not match the key for {clip(name)}")
        return cls(name, kid, key[1:])

    @property
    def key_name(self) -> str:
        """``name+hex(keyid)``."""
        return f"{self.name}+{self.key_id.hex()}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True iff `signature` is a valid Ed25519 signature of `message` by this key."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


def _unwrapped(reason: str) -> str:
    """`cannot read (X)` -> `X`; any other read refusal as it is (`not a regular file (a
    FIFO)` keeps its own parenthesis)."""
    if reason.startswith("cannot read (") and reason.endswith(")"):
        return reason[len("cannot read ("):-1]
    return reason


def parse_verifiers(values: Iterable[str], option: str) -> list[Verifier]:
    """The verifier keys named by `values` (the command-line `option` they came from): each
    value is a verifier key, or a key file holding one or more, one per line (blank lines
    skipped). A file is read as any input is (auditor.verify.reads: a regular file, at most
    MAX_KEY_FILE bytes), must be UTF-8 and must hold at least one key. KeyFormatError, one
    line naming the option, the value (clipped) and the line, otherwise. Both sides pin keys
    with this: the auditor's --key, the operator's --custodian-key."""
    out: list[Verifier] = []
    for value in values:
        try:
            out.append(Verifier.from_vkey(value))
            continue
        except KeyFormatError as exc:
            direct_error = exc
        shown = clip(value)
        try:
            text = read_regular(value, MAX_KEY_FILE).decode("utf-8")
        except (OSError, ValueError) as exc:  # no such file, a FIFO, too large, not UTF-8
            why = ((exc.strerror or "cannot read") if isinstance(exc, OSError) else
                   "not UTF-8" if isinstance(exc, UnicodeError) else _unwrapped(str(exc)))
            raise KeyFormatError(f"{option} {shown}: not a verifier key ({direct_error}) "
                                 f"nor a readable key file ({why})") from None
        found = 0
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(Verifier.from_vkey(line))
            except KeyFormatError as exc:
                raise KeyFormatError(f"{option} {shown}: line {number}: {exc}") from None
            found += 1
        if not found:
            raise KeyFormatError(f"{option} {shown}: file holds no verifier key")
    return out


# --- C2SP signed notes -------------------------------------------------------------------


def sign_note(body: str, signers: Sequence[Signer]) -> str:
    """Sign `body` (must end in newline) as a C2SP signed note with every signer."""
    _check_body(body)
    if not signers:
        raise NoteError("need at least one signer")
    lines = []
    for s in signers:
        sig = base64.b64encode(s.key_id + s.sign(body.encode("utf-8"))).decode()
        lines.append(f"{SIG_PREFIX}{s.name} {sig}\n")
    return body + "\n" + "".join(lines)


def _check_body(body: str) -> None:
    if not body.endswith("\n"):
        raise NoteError("note body must end with a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in body):
        raise NoteError("note body contains a control character")
    if "\n\n" in body:
        raise NoteError("note body contains a blank line")


def open_note(note: str, verifiers: Iterable[Verifier]) -> tuple[str, list[str]]:
    """Parse and verify a signed note; return (body, names of the keys that verified).

    Signatures by unknown keys are ignored. Every signature line by a known key must verify,
    wherever it stands and however often the key appears (one rule, in any order); a key
    counts once. A malformed note or no verified known signature raises NoteError.
    """
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise NoteError("malformed note: control character")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no blank line before the signatures")
    body, sig_block = note[: split + 1], note[split + 2:]
    if not sig_block or not sig_block.endswith("\n"):
        raise NoteError("malformed note: signature block missing or not newline-terminated")
    known: dict[tuple[str, bytes], Verifier] = {}
    for v in verifiers:
        known[(v.name, v.key_id)] = v
    message = body.encode("utf-8")
    verified: list[str] = []
    seen: set[tuple[str, bytes]] = set()
    lines = sig_block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise NoteError(f"malformed note: more than {_MAX_SIGNATURES} signatures")
    for number, line in enumerate(lines, 1):
        if not line.startswith(SIG_PREFIX):
            raise NoteError(f"malformed note: signature line {number} does not start with '\u2014 '")
        name, space, b64 = line[len(SIG_PREFIX):].partition(" ")
        raw = _b64decode(b64) or b""
        if not space or not _valid_name(name) or len(raw) < 5:
            raise NoteError(f"malformed note: signature line {number} is not 'name base64'")
        kid, sig = raw[:4], raw[4:]
        signer = known.get((name, kid))
        if signer is None:
            continue
        if not signer.verify(message, sig):
            raise NoteError(f"invalid signature for key {name}+{kid.hex()} (signature line {number})")
        if (name, kid) not in seen:
            seen.add((name, kid))
            verified.append(name)
    if not verified:
        raise NoteError("note has no verifiable signatures from a known key")
    return body, verified


# --- C2SP tlog-checkpoint ----------------------------------------------------------------


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    """tlog-checkpoint body: ``origin\\nsize\\nbase64(root)\\n``."""
    if not origin or "\n" in origin:
        raise ValueError(f"invalid checkpoint origin {clip(origin)}")
    if size < 0 or len(root) != 32:
        raise ValueError("checkpoint needs size >= 0 and a 32-byte root")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def parse_checkpoint(body: str) -> tuple[str, int, bytes]:
    """Parse a checkpoint body into (origin, size, root); extension lines are ignored."""
    if not body.endswith("\n"):
        raise NoteError("checkpoint body must end with a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError(f"checkpoint has {len(lines)} lines, expected at least 3")
    origin, size_text, root_text = lines[:3]
    if not origin:
        raise NoteError("checkpoint origin is empty")
    if not re.fullmatch(r"0|[1-9][0-9]{0,19}", size_text) or int(size_text) > _MAX_TREE_SIZE:
        raise NoteError(f"checkpoint size {clip(size_text)} is not a decimal uint64")
    root = _b64decode(root_text)
    if root is None:
        raise NoteError(f"checkpoint root {clip(root_text)} is not base64")
    if len(root) != 32:
        raise NoteError(f"checkpoint root is {len(root)} bytes, expected 32")
    return origin, int(size_text), root


# --- detached document signatures --------------------------------------------------------


def _signed_bytes(doc: dict[str, Any]) -> bytes:
    return canonical_bytes({k: v for k, v in doc.items() if k != "signatures"})


def sign_document(doc: dict[str, Any], signer: Signer) -> dict[str, str]:
    """Signature entry ``{"key": "name+keyidhex", "sig": base64}`` over the RFC 8785 bytes of
    `doc` without its "signatures" member. The caller appends it to doc["signatures"]."""
    sig = signer.sign(_signed_bytes(doc))
    return {"key": signer.key_name, "sig": base64.b64encode(sig).decode()}


def verify_document(doc: dict[str, Any], verifiers: Iterable[Verifier], require: int = 1) -> list[str]:
    """Names of distinct known keys whose signature on `doc` verifies.

    Unknown keys are ignored. Every entry by a known key must verify, wherever it stands and
    however often the key appears (so ``[valid, garbage]`` and ``[garbage, valid]`` by one key
    both fail: one rule, in any order); a key counts once towards `require`. Fewer than
    `require` verified keys raises too.
    """
    by_key = {v.key_name: v for v in verifiers}
    entries = doc.get("signatures")
    if not isinstance(entries, list):
        raise SignatureError("document has no signatures list")
    message = _signed_bytes(doc)
    verified: list[str] = []
    seen: set[str] = set()
    for pos, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise SignatureError(f"signature {pos} is malformed")
        v = by_key.get(entry["key"])
        if v is None:
            continue
        sig = _b64decode(entry.get("sig", ""))
        if sig is None:
            raise SignatureError(f"signature {pos} by {entry['key']} is not base64")
        if not v.verify(message, sig):
            raise SignatureError(f"signature {pos} by {entry['key']} does not verify")
        if v.key_name not in seen:
            seen.add(v.key_name)
            verified.append(v.name)
    if len(verified) < require:
        raise SignatureError(
            f"{len(verified)} known key(s) verified, {require} required"
            + (f" (verified: {', '.join(verified)})" if verified else "")
        )
    return verified
