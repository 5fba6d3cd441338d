"""Receipts: one log entry as a C2SP tlog-proof (https://c2sp.org/tlog-proof), text both ways.

The format is schemas/README.md "Receipts": the header line, `extra` (base64 of the event's
canonical line), `index`, the inclusion proof (base64, one hash a line), an empty line, the
checkpoint note verbatim. This module writes and parses that text; it checks nothing
cryptographic (auditor.receipt does, and the operator's `backstop prove receipt` writes it).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from auditor.formats.clip import clip

__all__ = ["HEADER", "MAX_PROOF_HASHES", "MAX_RECEIPT", "Receipt", "ReceiptError",
           "format_receipt", "parse_receipt"]

HEADER = "c2sp.org/tlog-proof@v1"
MAX_RECEIPT = 256 * 1024  # an event line is at most 65,535 bytes: base64 and a checkpoint fit
MAX_PROOF_HASHES = 64  # a tree of 2^64 leaves has 64 levels
_INDEX = re.compile(r"index (0|[1-9][0-9]{0,19})")


class ReceiptError(ValueError):
    """The text is not a Backstop receipt (the reason names the line)."""


@dataclass(frozen=True)
class Receipt:
    """A parsed receipt: the entry's bytes, its index, its inclusion proof and the checkpoint."""

    entry: bytes
    index: int
    proof: tuple[bytes, ...]
    checkpoint: str  # the signed note, verbatim (ends with a newline)


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def format_receipt(entry: bytes, index: int, proof: Sequence[bytes], checkpoint: str) -> str:
    """The receipt text of log entry `index` (its bytes `entry`) under a signed `checkpoint`."""
    if not checkpoint.endswith("\n"):
        raise ValueError("the checkpoint note must end with a newline")
    lines = [HEADER, "extra " + base64.b64encode(entry).decode(), f"index {index}"]
    lines += [base64.b64encode(h).decode() for h in proof]
    return "\n".join(lines) + "\n\n" + checkpoint


def parse_receipt(text: str) -> Receipt:
    """Parse a receipt; ReceiptError naming the line (1-based) that is wrong."""
    lines = text.split("\n")
    if lines[0] != HEADER:
        raise ReceiptError(f"line 1: expected {HEADER!r}, got {clip(lines[0])}")
    if len(lines) < 2 or not lines[1].startswith("extra "):
        raise ReceiptError("line 2: expected 'extra ' and the event's line in base64 (a "
                           "Backstop receipt carries its event)")
    entry = _b64(lines[1][len("extra "):])
    if not entry:
        raise ReceiptError("line 2: extra: not base64 of a non-empty event line")
    match = _INDEX.fullmatch(lines[2]) if len(lines) > 2 else None
    if match is None:
        raise ReceiptError(f"line 3: expected 'index N' (decimal, no leading zero), got "
                           f"{clip(lines[2] if len(lines) > 2 else '')}")
    proof: list[bytes] = []
    number = 3
    while number < len(lines) and lines[number] != "":
        digest = _b64(lines[number])
        if digest is None or len(digest) != 32:
            raise ReceiptError(f"line {number + 1}: not a base64 SHA-256 hash of the "
                               "inclusion proof")
        proof.append(digest)
        number += 1
        if len(proof) > MAX_PROOF_HASHES:
            raise ReceiptError(f"line {number}: more than {MAX_PROOF_HASHES} proof hashes")
    if number >= len(lines):
        raise ReceiptError(f"line {number + 1}: no empty line before the checkpoint")
    checkpoint = "\n".join(lines[number + 1:])
    if not checkpoint.strip():
        raise ReceiptError(f"line {number + 2}: no checkpoint after the empty line")
    if not checkpoint.endswith("\n"):
        raise ReceiptError("the checkpoint does not end with a newline")
    return Receipt(entry, int(match.group(1)), tuple(proof), checkpoint)
