"""A log's origin: the first line of its checkpoints (schemas/README.md, "Origin").

A snapshot's optional `log.origin` names it; a snapshot without one belongs to a log published
before origins were configurable, whose origin is `backstop/<fund>` for good. Both sides use
these: the publisher to write checkpoints, the auditor to compare them with the snapshot.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["ORIGIN_PATTERN", "check_origin", "derived_origin", "legacy_origin", "origins_of",
           "snapshot_origin"]

# A schema-less URL prefix (C2SP tlog-checkpoint) that is also a signed-note key name.
ORIGIN_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9._~:@%!-]|/(?!/))*(?<!/)$"
_MAX_ORIGIN = 255


def legacy_origin(fund: str) -> str:
    """The origin of a log whose snapshots carry no `log.origin`."""
    return f"backstop/{fund}"


def derived_origin(fund: str, public_key: bytes) -> str:
    """A new log's default origin: unique per operator key (16 hex digits of its SHA-256)."""
    return f"backstop/{fund}/{hashlib.sha256(public_key).hexdigest()[:16]}"


def check_origin(origin: str) -> str | None:
    """None when `origin` is a valid origin, else the reason (one phrase)."""
    if not origin or len(origin) > _MAX_ORIGIN:
        return f"must be 1 to {_MAX_ORIGIN} characters"
    if "://" in origin:
        return "must be a schema-less URL prefix (no scheme://)"
    if not re.fullmatch(ORIGIN_PATTERN, origin):
        return ("must start with a letter or digit and hold only A-Z a-z 0-9 - . _ ~ / : @ % !, "
                "with no '//' and no trailing '/'")
    return None


def snapshot_origin(snapshot: dict[str, Any]) -> str:
    """The origin every checkpoint of `snapshot`'s log names."""
    origin = snapshot["log"].get("origin")
    return origin if isinstance(origin, str) else legacy_origin(snapshot["fund"])


def origins_of(fund: str, keys: Iterable[tuple[str, bytes]]) -> set[str]:
    """The origins a log of `fund` signed by `keys` ((name, public key) pairs) may have when no
    snapshot names it (a receipt): the legacy one, the derived one under each key, and each
    key's name (C2SP: a log's key is named its origin)."""
    found = {legacy_origin(fund)}
    for name, public in keys:
        found |= {derived_origin(fund, public), name}
    return found
