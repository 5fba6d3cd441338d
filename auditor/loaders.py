"""The auditor's loaders: every input a command reads from a file, read the one way (bounded,
auditor.verify.reads) and refused the one way (`InputError`, exit 2, naming what and where):
JSON documents checked against their schema, pinned verifier keys, the account-tree seed, the
witness's signing key. The checks (auditor.checks, auditor.tiled_audit, auditor.witness,
auditor.reserves) import these; this module imports none of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from auditor.formats.schemas import first_error
from auditor.formats.wire import WireError, load_document
from auditor.report import InputError
from auditor.verify.keys import PASSPHRASE_ENV, KeyFormatError, Signer, Verifier, parse_verifiers
from auditor.verify.reads import (
    MAX_DOCUMENT,
    MAX_KEY_FILE,
    MAX_SEED,
    MAX_SNAPSHOT,
    ReadError,
    read_regular,
)

__all__ = [
    "find_seed",
    "load_json",
    "load_seed",
    "load_verifiers",
    "load_witness",
    "parse_json",
    "parse_seed",
    "read_bytes",
]


def read_bytes(path: str | Path, what: str, cap: int = MAX_DOCUMENT) -> bytes:
    """The regular file at `path`, at most `cap` bytes (auditor.verify.reads); InputError
    naming `what` and the path otherwise (missing, a FIFO or device, too large)."""
    try:
        return read_regular(path, cap)
    except FileNotFoundError as exc:
        raise InputError(f"{what} {path}: cannot read ({exc.strerror or exc})") from None
    except ReadError as exc:
        raise InputError(f"{what} {path}: {exc}") from None


def load_json(path: str | Path, what: str, schema: str | None) -> dict[str, Any]:
    """Parse a JSON document and validate it against `schema` (InputError otherwise); a
    snapshot is read with its own cap, any other document with MAX_DOCUMENT."""
    cap = MAX_SNAPSHOT if schema == "snapshot" else MAX_DOCUMENT
    return parse_json(read_bytes(path, what, cap), path, what, schema)


def parse_json(raw: bytes, path: str | Path, what: str, schema: str | None) -> dict[str, Any]:
    """Parse the bytes of a JSON document read from `path` (see load_json)."""
    try:
        doc = load_document(raw)
    except WireError as exc:  # strict: depth, integers, UTF-8, duplicates (auditor.formats.wire)
        raise InputError(f"{what} {path}: {exc}") from None
    if schema is not None:
        error = first_error(schema, doc)
        if error is not None:
            raise InputError(f"{what} {path}: does not match {schema}.schema.json: {error}")
    if not isinstance(doc, dict):
        raise InputError(f"{what} {path}: expected a JSON object")
    return doc


def load_verifiers(values: Iterable[str], option: str = "--key",
                   required: bool = True) -> list[Verifier]:
    """The pinned verifier keys: each value is a verifier key, or a file holding one (or
    several, one per line); the rules are `auditor.verify.keys.parse_verifiers`, which the
    operator's `--custodian-key` shares. InputError (exit 2) otherwise, or when `required`
    and none was given."""
    try:
        out = parse_verifiers(values, option)
    except KeyFormatError as exc:
        raise InputError(str(exc)) from None
    if not out and required:
        raise InputError(f"no verifier key given ({option})")
    return out


def load_seed(path: str | Path) -> bytes:
    return parse_seed(read_bytes(path, "seed file", MAX_SEED), f"seed file {path}")


def parse_seed(raw: bytes, where: str) -> bytes:
    """The 32-byte account-tree seed written as hex in `raw` (read from `where`)."""
    text = raw.decode("ascii", "replace").strip()
    try:
        seed = bytes.fromhex(text)
    except ValueError:
        raise InputError(f"{where}: not hex") from None
    if len(seed) != 32:
        raise InputError(f"{where}: {len(seed)} bytes, expected 32")
    return seed


def find_seed(seed_path: str | None, snapshot_path: str) -> bytes | None:
    if seed_path is not None:
        return load_seed(seed_path)
    beside = Path(snapshot_path).parent / "account-seed"
    return load_seed(beside) if beside.is_file() else None


def load_witness(path: str) -> Signer:
    """The witness's signing key (backstop keygen; passphrase from the environment)."""
    passphrase = os.environ.get(PASSPHRASE_ENV)
    try:
        return Signer.from_pem(read_bytes(path, "witness key", MAX_KEY_FILE),
                               passphrase=passphrase.encode() if passphrase else None)
    except (KeyFormatError, UnicodeDecodeError) as exc:
        raise InputError(f"witness key {path}: {exc}") from None
