"""The size bounds of format v1.1 (schemas/README.md, "Limits" and "Large liquidations").

Wire kernel: the ledger checks facts against these at the door, so that every event it
records fits one C2SP tlog-tiles entry; the auditor checks the v1.1 events against the same
numbers. Nothing here imports anything above `auditor.formats`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from auditor.formats.wire import canonical_bytes, sha256_hex

# A tlog-tiles entry is prefixed by a big-endian uint16 length: no event line may be longer.
MAX_EVENT_LINE = 0xFFFF
MAX_DECIMAL_CHARS = 64          # any decimal string: price, size, rate, amount
MAX_COUNTERPARTIES = 100_000    # per liquidation
MAX_ASSETS = 64                 # per fund
MAX_MARKETS = 512               # per fund
CHUNK_COUNTERPARTIES = 32       # per counterparties_listed event

LARGE_HEAD = "large_liquidation_settled"
CHUNK = "counterparties_listed"


class BoundError(ValueError):
    """A fact or document is beyond a bound; the message is `field: reason`."""


def line_length(event: Mapping[str, Any]) -> int:
    """Bytes of an exported event's line (its RFC 8785 serialization, without newline)."""
    return len(canonical_bytes(event))


def check_line(event: Mapping[str, Any], field: str) -> None:
    """Refuse an event whose line would not fit a tlog-tiles entry, naming `field` (the part
    of the fact that makes it long)."""
    size = line_length(event)
    if size > MAX_EVENT_LINE:
        raise BoundError(f"{field}: its {event['type']} event would be {size:,} bytes, over the "
                         f"{MAX_EVENT_LINE:,} bytes a tlog-tiles entry holds")


def counterparties_digest(counterparties: Sequence[Any]) -> str:
    """`counterparties_sha256`: SHA-256 (hex) of the RFC 8785 bytes of the whole list."""
    return sha256_hex(canonical_bytes(list(counterparties)))


def chunk_count(count: int) -> int:
    """How many counterparties_listed events a large liquidation of `count` has."""
    return math.ceil(count / CHUNK_COUNTERPARTIES)


def chunk_length(count: int, chunk: int) -> int:
    """How many counterparties chunk number `chunk` of a list of `count` holds."""
    return min(CHUNK_COUNTERPARTIES, count - chunk * CHUNK_COUNTERPARTIES)
