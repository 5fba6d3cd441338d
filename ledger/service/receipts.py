"""Receipts (`backstop prove receipt`): an event with its inclusion proof under a signed
checkpoint, as a C2SP tlog-proof (schemas/README.md "Receipts").

The checkpoint is one the operator already published (or a witness cosigned): it is used
verbatim, after checking that its size and root are this log's, so its cosignatures carry
over. Or, with a signing key, a fresh checkpoint of the given size is signed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from sqlalchemy import Connection

from auditor.verify.keys import NoteError, Signer, checkpoint_body, parse_checkpoint, sign_note
from auditor.verify.origin import legacy_origin, snapshot_origin
from auditor.verify.receipt import format_receipt
from ledger.service.application import Ledger
from ledger.service.publish import PublishError, latest

__all__ = ["RECEIPT_TYPES", "account_receipt_indexes", "checkpoint_size", "event_receipt",
           "signed_checkpoint_at"]

# a payout to the account, a clawback charged to it: what a trader keeps a receipt of
RECEIPT_TYPES = ("deficit_covered", "clawback_charged")


def checkpoint_size(ledger: Ledger, fund: str, note: str) -> int:
    """The size of a signed checkpoint `note`, once its origin, size and root are checked to be
    this fund's log (PublishError otherwise). Its signatures are the verifier's business."""
    split = note.rfind("\n\n")
    try:
        if split < 0:
            raise NoteError("no blank line before the signatures")
        origin, size, root = parse_checkpoint(note[:split + 1])
    except NoteError as error:
        raise PublishError(f"--checkpoint: not a signed checkpoint ({error})") from None
    with ledger.engine.connect() as connection:
        mine = fund_origin(connection, fund)
        if origin != mine:
            raise PublishError(f"--checkpoint: origin {origin!r} is not this fund's {mine!r}")
        tree = ledger.log_tree(connection, fund)
        if not 0 < size <= tree.size():
            raise PublishError(f"--checkpoint: size {size}, the log has {tree.size()} events")
        if tree.root(size) != root:
            raise PublishError(f"--checkpoint: its root at size {size} is not this log's")
    return size


def signed_checkpoint_at(ledger: Ledger, fund: str, size: int, signer: Signer) -> str:
    """A checkpoint of the log at `size`, signed now by `signer`."""
    with ledger.engine.connect() as connection:
        tree = ledger.log_tree(connection, fund)
        if not 0 < size <= tree.size():
            raise PublishError(f"log size {size}: the log has {tree.size()} events")
        return sign_note(checkpoint_body(fund_origin(connection, fund), size, tree.root(size)),
                         [signer])


def fund_origin(connection: Connection, fund: str) -> str:
    """The origin of the fund's log: its snapshots' (schemas/README.md, "Origin"); the legacy
    one before any snapshot."""
    row = latest(connection, fund)
    return legacy_origin(fund) if row is None else snapshot_origin(json.loads(row["document"]))


def event_receipt(ledger: Ledger, fund: str, index: int, checkpoint: str) -> str:
    """The receipt of event `index` under `checkpoint` (checked with `checkpoint_size`)."""
    size = checkpoint_size(ledger, fund, checkpoint)
    if not 0 <= index < size:
        raise PublishError(f"event {index} is not in the checkpoint's log of {size} events")
    entry = next(iter(ledger.log_lines(fund, index, index + 1)))
    with ledger.engine.connect() as connection:
        proof = ledger.log_tree(connection, fund).inclusion_proof(index, size)
    return format_receipt(entry, index, proof, checkpoint)


def account_receipt_indexes(ledger: Ledger, fund: str, account: str, size: int) -> Iterator[int]:
    """The indexes below `size` of the payouts to and clawbacks from `account`, in log order."""
    for event in ledger.log_events(fund, 0, size):
        if event["type"] in RECEIPT_TYPES and event["data"]["account"] == account:
            yield event["index"]
