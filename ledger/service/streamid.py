"""Whether the follower's stored position counts in the stream the bus holds now.

A JetStream stream deleted and created again under its name numbers its messages from 1
again: a position stored for the old one would make the follower take the new stream's
first messages for ones it handled, ack them and skip their facts. So the position is stored
with the stream's creation time, and checked, with the stream's first and last sequence,
before anything is acked.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.store.cursors import Cursor

REANCHOR = "--reanchor"


@dataclass(frozen=True)
class StreamState:
    """What stream info says of the stream now."""

    created: str  # ISO 8601 creation time: the stream's identity
    first: int  # first sequence held (0 while empty)
    last: int  # last sequence ever stored (0 while empty)


def mismatch(cursor: Cursor, stream: StreamState) -> str | None:
    """Why `cursor` cannot count in `stream` (the stream was created again, or the messages
    after the position are gone), or None when it can."""
    if cursor.created is not None and cursor.created != stream.created:
        return (f"was created again at {stream.created} (the stored position "
                f"{cursor.position} counts in the stream created at {cursor.created})")
    if cursor.position > stream.last:
        return (f"ends at sequence {stream.last}, before the stored position "
                f"{cursor.position}: it was created again")
    if cursor.position > 0 and stream.first > cursor.position + 1:
        return (f"starts at sequence {stream.first}: messages {cursor.position + 1} to "
                f"{stream.first - 1} were removed before they were applied")
    return None


def refusal(name: str, reason: str) -> str:
    """The one line `follow` exits with (2) on a mismatch: what, and the way out."""
    return (f"--stream {name} {reason}; nothing was acked. To follow the stream as it is "
            f"now from its first message, run once with {REANCHOR} (facts already recorded "
            "are recognised by their ids)")


def reanchored(cursor: Cursor, stream: StreamState) -> Cursor:
    """The cursor `--reanchor` stores: just before the stream's first message, in it."""
    return Cursor(max(0, stream.first - 1), stream.created)
