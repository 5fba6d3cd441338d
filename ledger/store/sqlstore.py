"""Event-store persistence: `eventsourcing-sqlalchemy` with a bulk insert for event batches.

The library's recorder adds one ORM object per event and flushes them; for the ledger's
batches of thousands of events one bulk write on the driver (`ledger.store.bulk`: COPY on
PostgreSQL, a single executemany on SQLite) does the same work several times faster (see
bench/import_throughput.py). Everything else — tables, transactions, table locking on
PostgreSQL, NOTIFY — is the library's own. A second writer of the same fund version still
breaks the unique (originator_id, originator_version) index, COPY or not: SQLSTATE 23505,
which `ledger.store.busy` reads as a lost race.

Selected with PERSISTENCE_MODULE=ledger.store.sqlstore, for SQLite and PostgreSQL (psycopg 3): the
backends `ledger.store.dburl` accepts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing_sqlalchemy import factory as _sqlalchemy
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import text
from sqlalchemy.orm import Session

from ledger.store.bulk import execute, insert_rows, pipelined

_EVENT_COLUMNS = ("originator_id", "originator_version", "topic", "state")


class BulkApplicationRecorder(SQLAlchemyApplicationRecorder):
    """Inserts a batch of stored events with one bulk write (ledger.store.bulk)."""

    def _insert_stored_events(self, session: Session, stored_events: Sequence[StoredEvent],
                              **kwargs: Any) -> Sequence[int]:
        if not stored_events:
            return []
        connection = session.connection()
        table = self.events_record_cls.__table__
        if connection.dialect.name == "postgresql":
            # The library's table lock (keeps notification ids in commit order) and NOTIFY
            # (sent at commit whatever its place in the transaction), in one round trip.
            name = ".".join(filter(None, (self.schema_name, self.events_table_name)))
            with pipelined(connection):
                execute(connection, text(f"LOCK TABLE {name} IN EXCLUSIVE MODE"))
                execute(connection, text(f"NOTIFY {self.channel_name}"))
        # The id column's type converts UUIDs for SQLite (16 bytes); psycopg sends a UUID as
        # PostgreSQL's own uuid. Each id is converted once.
        to_db = None if connection.dialect.name == "postgresql" else \
            table.c.originator_id.type.bind_processor(connection.dialect)
        ids = {oid: to_db(oid) if to_db else oid for oid in {e.originator_id for e in stored_events}}
        insert_rows(connection, table, [
            (ids[e.originator_id], e.originator_version, e.topic, e.state) for e in stored_events
        ], columns=_EVENT_COLUMNS, converted=frozenset({"originator_id"}))
        return []  # the ledger does not use notification ids of new events

    def select_states(self, originator_id: Any, gt: int, lte: int) -> list[bytes]:
        """The stored `state` bytes of one aggregate's events with gt < version <= lte, in
        version order: one SELECT on the driver's own cursor, without the ORM objects
        `select_events` builds per row (nine tenths of an export's time, issue 28)."""
        table = self.events_record_cls.__table__
        name = ".".join(filter(None, (self.schema_name, self.events_table_name)))
        # The recorder's own transaction, as select_events': inside an import it is the
        # import's, whose batches written so far it must see.
        with self.transaction(commit=False) as session:
            connection = session.connection()
            dialect = connection.dialect
            # As in _insert_stored_events: psycopg sends a UUID as PostgreSQL's own uuid.
            to_db = None if dialect.name == "postgresql" else \
                table.c.originator_id.type.bind_processor(dialect)
            mark = "?" if dialect.paramstyle == "qmark" else "%s"
            cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(f"SELECT state FROM {name} WHERE originator_id = {mark} AND "
                               f"originator_version > {mark} AND originator_version <= {mark} "
                               "ORDER BY originator_version",
                               (to_db(originator_id) if to_db else originator_id, gt, lte))
                return [bytes(state) for state, in cursor.fetchall()]
            finally:
                cursor.close()


class Factory(_sqlalchemy.SQLAlchemyFactory):
    """The eventsourcing-sqlalchemy factory with the bulk application recorder."""

    application_recorder_class = BulkApplicationRecorder
