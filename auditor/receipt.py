"""`backstop-audit receipt FILE`: check one event's receipt (a C2SP tlog-proof) offline.

Order (schemas/README.md "Receipts"): the text's format (exit 2 if it is not a receipt); the
checkpoint's signature by the pinned operator key(s); each pinned witness's cosignature; the
entry's inclusion at its index; then what the entry says (one canonical event of this log, at
this index). The inclusion is checked on the entry's raw bytes before they are parsed, so a
tampered event is a failed proof (exit 1), whatever the tampering did to its JSON.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from auditor.formats.clip import clip
from auditor.formats.schemas import first_error
from auditor.formats.wire import WireError, canonical_bytes, load_document
from auditor.loaders import load_verifiers, read_bytes
from auditor.report import InputError, Report
from auditor.snapshot_checks import check_checkpoint
from auditor.verify.keys import SIG_PREFIX
from auditor.verify.merkle import ProofError, leaf_hash, verify_inclusion
from auditor.verify.origin import origins_of
from auditor.verify.receipt import MAX_RECEIPT, ReceiptError, parse_receipt
from auditor.witness import COSIGNATURE_ALG, cosigner_key_id

__all__ = ["parse_witness_key", "verify_receipt"]

_RECEIPT_TYPES = {"deficit_covered": "payout", "clawback_charged": "clawback"}


def parse_witness_key(text: str) -> tuple[str, bytes, bytes]:
    """A witness's cosignature/v1 verifier key `name+hex(id)+base64(0x04 || key)`:
    (name, key id, public key); InputError otherwise."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
        raise InputError(f"--witness-key {clip(text)}: not name+keyid+key")
    name, kid_hex, key_b64 = parts
    try:
        key = base64.b64decode(key_b64, validate=True)
    except ValueError:
        raise InputError(f"--witness-key {clip(text)}: the key is not base64") from None
    if len(key) != 33 or key[0] != COSIGNATURE_ALG:
        raise InputError(f"--witness-key {clip(text)}: not a cosignature/v1 key (0x04 + 32 "
                         "bytes)")
    if cosigner_key_id(name, key[1:]).hex() != kid_hex:
        raise InputError(f"--witness-key {clip(text)}: the key id does not match the key")
    return name, bytes.fromhex(kid_hex), key[1:]


def _cosigned(note: str, body: str, witness: tuple[str, bytes, bytes]) -> int | None:
    """The time of `witness`'s valid cosignature of `body` in `note`, or None if it has none."""
    name, kid, public = witness
    for line in note[len(body) + 1:].splitlines():
        if not line.startswith(f"{SIG_PREFIX}{name} "):
            continue
        try:
            blob = base64.b64decode(line.rsplit(" ", 1)[1], validate=True)
        except ValueError:
            continue
        if len(blob) != 4 + 8 + 64 or blob[:4] != kid:
            continue
        timestamp = int.from_bytes(blob[4:12], "big")
        message = f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode("utf-8")
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(blob[12:], message)
        except InvalidSignature:
            continue
        return timestamp
    return None


def verify_receipt(report: Report, receipt: str, keys: tuple[str, ...], require: int,
                   witness_keys: tuple[str, ...] = ()) -> None:
    """Check the receipt at path `receipt` against the pinned keys (module docstring)."""
    verifiers = load_verifiers(keys)
    witnesses = [parse_witness_key(k) for k in witness_keys]
    raw = read_bytes(receipt, "receipt", MAX_RECEIPT)
    try:
        parsed = parse_receipt(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"receipt {receipt}: not UTF-8") from None
    except ReceiptError as exc:
        raise InputError(f"receipt {receipt}: {exc}") from None
    report.ok("receipt format", f"c2sp.org/tlog-proof@v1, index {parsed.index}, "
                                f"{len(parsed.proof)} proof hash(es)")
    body, names, origin, size, root = check_checkpoint(report, parsed.checkpoint, verifiers, require)
    for witness in witnesses:
        when = _cosigned(parsed.checkpoint, body, witness)
        if when is None:
            raise report.fail("cosignature", f"no valid cosignature by the pinned witness "
                                             f"{witness[0]}+{witness[1].hex()}")
        report.ok("cosignature", f"{witness[0]} at {when}")
    try:
        verify_inclusion(leaf_hash(parsed.entry), parsed.index, size, parsed.proof, root)
    except ProofError as exc:
        raise report.fail("inclusion", str(exc)) from None
    report.ok("inclusion", f"entry {parsed.index} is in the log of {size} events")
    event = _event(report, parsed.entry)
    if event.get("index") != parsed.index:
        raise report.fail("event", f"the event's index {event.get('index')} is not the "
                                   f"receipt's {parsed.index}")
    signers = [(v.name, v.public_key) for v in verifiers if v.name in names]
    if origin not in origins_of(event["fund"], signers):
        raise report.fail("origin", f"{clip(origin)} is not a log of fund "
                                    f"{clip(event['fund'])} under the pinned key (schemas/"
                                    "README.md, Origin)")
    kind = _RECEIPT_TYPES.get(event["type"])
    report.ok("event", f"{kind or event['type']} at index {parsed.index}")
    figures: dict[str, Any] = {"origin": origin, "log_size": size, "index": parsed.index,
                               "type": event["type"], "time": event["time"], "ref": event["ref"]}
    if kind is not None:
        data = event["data"]
        figures.update({"account": data["account"], "asset": data["asset"],
                        "amount": data["amount"]})
    report.figures.update(figures)


def _event(report: Report, entry: bytes) -> dict[str, Any]:
    """The included entry as an event: canonical JSON matching event.schema.json."""
    try:
        event = load_document(entry)
    except WireError as exc:
        raise report.fail("event", f"the entry is not JSON: {exc}") from None
    error = first_error("event", event)
    if error is not None or not isinstance(event, dict):
        raise report.fail("event", f"the entry is not an event: {error}")
    if canonical_bytes(event) != entry:
        raise report.fail("event", "the entry is not the event's canonical (RFC 8785) line")
    return event
