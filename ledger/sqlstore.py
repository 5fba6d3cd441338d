"""Event-store persistence: `eventsourcing-sqlalchemy` with a bulk insert for event batches.

The library's recorder adds one ORM object per event and flushes them; for the ledger's
batches of thousands of events a single Core `INSERT ... VALUES` executemany does the same
work several times faster (see bench/import_throughput.py). Everything else — tables,
transactions, table locking on PostgreSQL, NOTIFY — is the library's own.

Selected with PERSISTENCE_MODULE=ledger.sqlstore; works for every SQLAlchemy URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing_sqlalchemy import factory as _sqlalchemy
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import insert
from sqlalchemy.orm import Session


class BulkApplicationRecorder(SQLAlchemyApplicationRecorder):
    """Inserts a batch of stored events with one executemany statement."""

    def _insert_stored_events(self, session: Session, stored_events: Sequence[StoredEvent],
                              **kwargs: Any) -> Sequence[int]:
        if not stored_events:
            return []
        self._lock_table(session)  # keeps notification ids in commit order (PostgreSQL)
        session.execute(insert(self.events_record_cls.__table__), [
            {"originator_id": e.originator_id, "originator_version": e.originator_version,
             "topic": e.topic, "state": e.state} for e in stored_events])
        self._notify_channel(session)
        return []  # the ledger does not use notification ids of new events


class Factory(_sqlalchemy.SQLAlchemyFactory):
    """The eventsourcing-sqlalchemy factory with the bulk application recorder."""

    application_recorder_class = BulkApplicationRecorder
