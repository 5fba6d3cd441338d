"""The bus follower's position: the last stream sequence whose fact is committed (or was
dead-lettered by a committed batch), kept in the same transaction as the batch's events.

Moving it is a compare-and-set, so two followers of one stream never both commit the same
range: the loser's transaction rolls back (CursorMoved) and it starts again from the new
position.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from ledger.store.tables import follow_cursors


class CursorMoved(RuntimeError):
    """Another follower committed past the position this batch started from."""


def read_cursor(engine: Engine, fund: str, stream: str) -> int:
    """The committed position of `fund` on `stream`; 0 (and a row created) when new."""
    where = (follow_cursors.c.fund == fund) & (follow_cursors.c.stream == stream)
    with engine.connect() as connection:
        found = connection.execute(select(follow_cursors.c.position).where(where)).scalar()
    if found is not None:
        return int(found)
    try:
        with engine.begin() as connection:
            connection.execute(insert(follow_cursors).values(fund=fund, stream=stream,
                                                             position=0))
    except IntegrityError:  # another follower created it first
        return read_cursor(engine, fund, stream)
    return 0


def advance_cursor(connection: Connection, fund: str, stream: str, old: int, new: int) -> None:
    """Move the position from `old` to `new` in `connection`'s transaction, or raise
    CursorMoved when it is no longer `old` (the row lock orders concurrent followers)."""
    result = connection.execute(
        update(follow_cursors)
        .where((follow_cursors.c.fund == fund) & (follow_cursors.c.stream == stream)
               & (follow_cursors.c.position == old))
        .values(position=new))
    if result.rowcount != 1:
        raise CursorMoved(f"fund {fund!r} on stream {stream!r} moved past {old}")
