"""The bus follower's position: the last stream sequence whose fact is committed (or was
dead-lettered by a committed batch), kept in the same transaction as the batch's events,
with the identity of the stream it counts in (the stream's creation time): a stream deleted
and created again under the same name numbers its messages from 1 again.

Moving it is a compare-and-set on both, so two followers of one stream never both commit the
same range, and none commits into a position re-anchored meanwhile: the loser's transaction
rolls back (CursorMoved) and it starts again from what is stored.

Databases made before the identity was stored lack its column: `upgrade_cursors` adds it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, Engine, insert, inspect, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from ledger.store.tables import follow_cursors

_ADDED = {"stream_created": "VARCHAR(40)"}  # columns newer than the table's first version


class CursorMoved(RuntimeError):
    """Another follower committed past (or re-anchored) the position this batch started from."""


@dataclass(frozen=True)
class Cursor:
    """A stored position and the stream it counts in (None: not recorded yet)."""

    position: int
    created: str | None


def upgrade_cursors(engine: Engine) -> list[str]:
    """Add the columns a database made by an earlier version lacks; the names added. Two
    followers starting together may race: the loser finds the column there."""
    have = {c["name"] for c in inspect(engine).get_columns(follow_cursors.name)}
    added = []
    for name, kind in _ADDED.items():
        if name in have:
            continue
        try:
            with engine.begin() as connection:
                connection.execute(text(
                    f"ALTER TABLE {follow_cursors.name} ADD COLUMN {name} {kind}"))
        except DBAPIError:
            if name not in {c["name"] for c in inspect(engine).get_columns(follow_cursors.name)}:
                raise
            continue
        added.append(name)
    return added


def _where(fund: str, stream: str) -> ColumnElement[bool]:
    return (follow_cursors.c.fund == fund) & (follow_cursors.c.stream == stream)


def load_cursor(engine: Engine, fund: str, stream: str) -> Cursor:
    """The stored position of `fund` on `stream`; position 0 (and a row created) when new."""
    with engine.connect() as connection:
        row = connection.execute(select(follow_cursors.c.position,
                                        follow_cursors.c.stream_created)
                                 .where(_where(fund, stream))).first()
    if row is not None:
        return Cursor(int(row[0]), row[1])
    try:
        with engine.begin() as connection:
            connection.execute(insert(follow_cursors).values(fund=fund, stream=stream,
                                                             position=0))
    except IntegrityError:  # another follower created it first
        return load_cursor(engine, fund, stream)
    return Cursor(0, None)


def read_cursor(engine: Engine, fund: str, stream: str) -> int:
    """The committed position of `fund` on `stream`; 0 (and a row created) when new."""
    return load_cursor(engine, fund, stream).position


def anchor_cursor(engine: Engine, fund: str, stream: str, old: Cursor, new: Cursor) -> None:
    """Replace the stored `old` cursor by `new` (the stream's identity recorded, or the
    position re-anchored in a stream created again), or raise CursorMoved."""
    created = (follow_cursors.c.stream_created.is_(None) if old.created is None
               else follow_cursors.c.stream_created == old.created)
    with engine.begin() as connection:
        result = connection.execute(
            update(follow_cursors)
            .where(_where(fund, stream) & (follow_cursors.c.position == old.position) & created)
            .values(position=new.position, stream_created=new.created))
    if result.rowcount != 1:
        raise CursorMoved(f"fund {fund!r} on stream {stream!r} moved from {old}")


def advance_cursor(connection: Connection, fund: str, stream: str, old: int, new: int,
                   created: str | None = None) -> None:
    """Move the position from `old` to `new` in `connection`'s transaction, or raise
    CursorMoved when it is no longer `old` in the stream created at `created` (the row lock
    orders concurrent followers)."""
    where = _where(fund, stream) & (follow_cursors.c.position == old)
    if created is not None:
        where = where & (follow_cursors.c.stream_created == created)
    result = connection.execute(update(follow_cursors).where(where).values(position=new))
    if result.rowcount != 1:
        raise CursorMoved(f"fund {fund!r} on stream {stream!r} moved past {old}")
