"""The receipts the site carries: every payout and clawback of the latest checkpointed
snapshot, each a C2SP tlog-proof file (schemas/README.md "Receipts") a trader downloads from
the verify page and checks offline with `backstop-audit receipt`.

Built from what the site already read and checked: the log's event lines (their root is each
snapshot's) and the snapshot's checkpoint note (verified against the pinned key), used
verbatim. The inclusion proofs are computed here from the leaf hashes, memoized by subtree,
so all of them together cost about one pass over the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from auditor.verify import merkle
from auditor.verify.receipt import format_receipt

__all__ = ["RECEIPT_TYPES", "SiteReceipts", "site_receipts"]

RECEIPT_TYPES = ("deficit_covered", "clawback_charged")


@dataclass(frozen=True)
class SiteReceipts:
    """The receipts of one snapshot: `items` for data.js ([index, type, account, asset,
    amount]) and `files` (file name -> receipt text)."""

    size: int
    items: list[list[Any]]
    files: dict[str, str]

    def listing(self) -> dict[str, Any]:
        """What data.js says of them."""
        return {"size": self.size, "items": self.items}


class _Tree:
    """RFC 6962 subtree hashes of a list of leaf hashes, memoized by (start, end)."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.leaves = leaves
        self.memo: dict[tuple[int, int], bytes] = {}

    def hash(self, start: int, end: int) -> bytes:
        if end - start == 1:
            return self.leaves[start]
        found = self.memo.get((start, end))
        if found is None:
            k = merkle.largest_pow2_below(end - start)
            found = merkle.node_hash(self.hash(start, start + k), self.hash(start + k, end))
            self.memo[(start, end)] = found
        return found

    def path(self, index: int, start: int, end: int) -> list[bytes]:
        """The inclusion proof of leaf `index` in the subtree [start, end), leaf upwards."""
        if end - start == 1:
            return []
        k = merkle.largest_pow2_below(end - start)
        if index < start + k:
            return [*self.path(index, start, start + k), self.hash(start + k, end)]
        return [*self.path(index, start + k, end), self.hash(start, start + k)]


def site_receipts(fund: str, size: int, checkpoint: str, lines: list[bytes]) -> SiteReceipts:
    """The receipts of every payout and clawback among the first `size` event `lines`, under
    `checkpoint` (that snapshot's checked note)."""
    tree = _Tree([merkle.leaf_hash(line) for line in lines[:size]])
    items: list[list[Any]] = []
    files: dict[str, str] = {}
    for index, line in enumerate(lines[:size]):
        if b'"clawback_charged"' not in line and b'"deficit_covered"' not in line:
            continue  # cheap pre-filter: most events are neither
        event = orjson.loads(line)
        if event["type"] not in RECEIPT_TYPES:
            continue
        data = event["data"]
        items.append([index, event["type"], data["account"], data["asset"], data["amount"]])
        files[f"{fund}-{index}.tlog-proof"] = format_receipt(
            line, index, tree.path(index, 0, size), checkpoint)
    return SiteReceipts(size, items, files)
