"""The Backstop application: one `eventsourcing` Application over one database URL.

Writes go through `Ledger.record()` inside `Ledger.transaction()`: one database transaction in
which the fund's new events, the projections, the log tree and the idempotency index are all
written, or none of them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, TypeVar
from uuid import UUID

import orjson
from eventsourcing.application import Application
from eventsourcing.persistence import Mapper
from sqlalchemy import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError

from auditor.formats.wire import canonical_bytes
from auditor.verify.merkle import leaf_hash
from ledger.domain.errors import FundRuleError
from ledger.domain.eventsize import check_fund_config
from ledger.domain.fund import Fund, export_event, fund_id
from ledger.domain.poolfund import open_fund as open_v2_fund
from ledger.store import busy
from ledger.store.bulk import read_all
from ledger.store.dburl import default_url, normalize_url
from ledger.store.logtree import LogTree
from ledger.store.mapper import FundMapper, stored_fund_events
from ledger.store.projections import AccountCache, Projector
from ledger.store.tables import metadata

SNAPSHOT_INTERVAL = 1_000  # events between aggregate snapshots: loading never replays more
CATCH_UP_PAGE = 5_000  # events per step when derived state catches up with the log
TABLE_ATTEMPTS = 3  # creating missing tables, when other processes create them too
INITIAL_POLICY_REF = "init"  # the exchange-id slot of the policy given to `backstop init`

T = TypeVar("T")


def _named_session(url: str) -> str:
    """`url` with PostgreSQL's application_name set, so a busy fund's holder can be named."""
    if not url.startswith("postgresql"):
        return url
    parsed = make_url(url)
    if "application_name" in parsed.query:
        return url
    return parsed.update_query_dict({"application_name": f"backstop pid {os.getpid()}"}) \
        .render_as_string(hide_password=False)


def event_leaf(event: dict[str, Any]) -> bytes:
    """The RFC 6962 leaf hash of an exported event: its canonical export line, hashed.

    Writes hash the stored lines directly; `backstop rebuild` re-serializes parsed events with
    this, so it also checks that the stored lines are canonical."""
    return leaf_hash(canonical_bytes(event))


class FundNotFound(LookupError):
    """No fund of that name in this database."""


class Ledger(Application[Any]):
    """The operator's application: funds, their event logs and everything derived from them."""

    name = "backstop"
    env: ClassVar[dict[str, str]] = {"PERSISTENCE_MODULE": "ledger.store.sqlstore", "IS_SNAPSHOTTING_ENABLED": "y"}

    def __init__(self, url: str | None = None, *, lock_timeout: float | None = None) -> None:
        self.url = normalize_url(url or default_url())
        self.lock_timeout = busy.lock_timeout(lock_timeout)
        super().__init__(env={"SQLALCHEMY_URL": _named_session(self.url)})
        self._create_tables()
        self._account_caches: dict[str, AccountCache] = {}

    def _create_tables(self) -> None:
        """Create the ledger's tables that are missing. Processes starting together may race
        to create one; the loser's next look finds it there."""
        for attempt in range(1, TABLE_ATTEMPTS + 1):
            try:
                metadata.create_all(self.engine)
                return
            except DBAPIError:
                if attempt == TABLE_ATTEMPTS:
                    raise

    def construct_mapper(self) -> Mapper[UUID]:
        """Fund events are stored as their canonical export lines (see ledger.store.mapper), so
        the library's cipher and compressor settings cannot apply to them: refused."""
        mapper = self.factory.mapper(transcoder=self.construct_transcoder(),
                                     mapper_class=FundMapper)
        if mapper.cipher is not None or mapper.compressor is not None:
            raise ValueError("CIPHER_TOPIC / COMPRESSOR_TOPIC: fund events are stored as their "
                             "canonical export lines and cannot be encrypted or compressed")
        return mapper

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine shared by the event store and the ledger's tables."""
        return self.recorder.datastore.engine  # type: ignore[attr-defined,no-any-return]

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One database transaction for events and derived tables (nested saves join it).

        Lock waits inside it last at most the lock timeout (or what is left of the current
        `retry`). A lost race with another writer raises ConcurrentWriteError, a lock wait that
        gave up DatabaseBusy: both may be retried (see `retry`)."""
        try:
            with self.recorder.transaction(commit=True) as session:  # type: ignore[attr-defined]
                connection = session.connection()
                self._limit_lock_wait(connection)
                yield connection
        except Exception as error:
            # Rolled back: cached rows may describe writes that never happened.
            self._account_caches.clear()
            kind = busy.classify(error)
            if kind is not None and not isinstance(error, kind):
                raise kind(f"{type(error).__name__}: {str(error).splitlines()[0][:200]}") \
                    from error
            raise

    def _limit_lock_wait(self, connection: Connection) -> None:
        wait_ms = max(1, int(busy.wait_seconds(self.lock_timeout) * 1000))  # 0 = no limit
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SET LOCAL lock_timeout = {wait_ms}")
        else:
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {wait_ms}")

    def lock_writes(self, connection: Connection) -> None:
        """Hold the write lock every append takes, for the rest of `connection`'s transaction:
        PostgreSQL's EXCLUSIVE lock on the event table (the recorder's), SQLite's write lock
        on the file (BEGIN IMMEDIATE; reads before the first write would otherwise run outside
        the transaction). Call it first, for a read-check-write that must not lose a
        concurrent write: another writer then waits for this transaction to end. A wait past
        the lock timeout raises DatabaseBusy (see `retry`)."""
        if connection.dialect.name == "postgresql":
            name = ".".join(filter(None, (self.recorder.schema_name,  # type: ignore[attr-defined]
                                          self.recorder.events_table_name)))  # type: ignore[attr-defined]
            connection.exec_driver_sql(f"LOCK TABLE {name} IN EXCLUSIVE MODE")
            return
        driver = connection.connection.driver_connection
        if not getattr(driver, "in_transaction", True):  # a write already holds the lock
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    def retry(self, fund: str | None, action: Callable[[], T],
              on_retry: Callable[[BaseException], None] | None = None) -> T:
        """`action()`, retried while another writer holds or wins the fund, up to the lock
        timeout; then FundBusy with one line naming the holder (ledger.store.busy)."""
        return busy.retry(action, timeout=self.lock_timeout, on_retry=on_retry,
                          holder=lambda: busy.describe_holder(self.engine, fund))

    # -- funds ----------------------------------------------------------------------------

    def get_fund(self, name: str) -> Fund:
        """Load a fund (from its latest snapshot plus later events)."""
        from eventsourcing.application import AggregateNotFoundError

        try:
            return self.repository.get(fund_id(name))
        except AggregateNotFoundError:
            raise FundNotFound(f"no fund named {name!r} in this database "
                               "(create it with `backstop init`)") from None

    def fund_exists(self, name: str) -> bool:
        """Whether a fund of that name exists."""
        return fund_id(name) in self.repository

    def open_fund(self, config: dict[str, Any], time: str) -> Fund:
        """Create a fund with its assets, markets and first policy, in one transaction."""
        if self.fund_exists(config["fund"]):
            raise FundRuleError(f"fund: a fund named {config['fund']!r} already exists")
        if config.get("format") == 2:  # a v2 log: fund_opened/2 (ledger.domain.poolfund)
            fund = open_v2_fund(config, time)
            with self.transaction() as connection:
                self.record(fund, connection)
            return fund
        data = {"fund": config["fund"], "assets": config["assets"], "markets": config["markets"]}
        for market, spec in config["markets"].items():
            if spec["quote"] not in config["assets"]:
                raise FundRuleError(f"markets.{market}.quote: unknown asset {spec['quote']!r}")
        check_fund_config(data, time)
        fund = Fund(time=time, ref=None, data=data)
        fund.set_policy(config["policy"], time=time, ref=INITIAL_POLICY_REF)
        with self.transaction() as connection:
            self.record(fund, connection)
        return fund

    def record(self, fund: Fund, connection: Connection) -> int:
        """Save the fund's pending events and everything derived from them, in `connection`'s
        transaction. Returns the number of events written.

        The events go straight to the recorder rather than through `Application.save`: each is
        stored as its canonical export line, which carries the fund's name (ledger.store.mapper), and
        the same bytes are the log tree's leaves.
        """
        pending = fund.collect_events()
        if not pending:
            return 0
        previous_version = pending[0].originator_version - 1
        exported = [export_event(e, fund.name) for e in pending]
        lines = [canonical_bytes(e) for e in exported]
        self.recorder.insert_events(stored_fund_events(fund.id, pending, lines))
        tree = self.log_tree(connection, fund.name)
        projector = Projector(connection, fund.name, fund.assets, self.account_cache(fund.name))
        # The tree's edge tiles (its size) and the projections' position: one round trip.
        tile_rows, position_rows = read_all(connection, [tree.edges_statement(),
                                                         projector.position_statement()])
        edges: dict[int, tuple[int, bytes]] | None = LogTree.edges(tile_rows)
        tree_size, position = LogTree.size_of(edges or {}), Projector.position_of(position_rows)
        if min(tree_size, position) < previous_version:
            self._catch_up(fund.name, tree, projector, previous_version, tree_size, position)
            edges = None  # moved on: append reads them again
        tree.append([leaf_hash(line) for line in lines], edges)
        projector.apply(exported)
        if previous_version // SNAPSHOT_INTERVAL != fund.version // SNAPSHOT_INTERVAL:
            assert self.snapshots is not None
            self.snapshots.put([Fund.Snapshot.take(fund)])
        return len(pending)

    def _catch_up(self, fund: str, tree: LogTree, projector: Projector, upto: int,
                  tree_size: int, position: int) -> None:
        """Bring the log tree and projections, now at `tree_size` and `position`, up to `upto`
        events if they lag the log (for example after `replay` was interrupted, or tables
        were added to an existing store)."""
        if min(tree_size, position) >= upto:
            return
        start = min(tree_size, position)
        page: list[bytes] = []
        for index, line in enumerate(self.log_lines(fund, start, upto), start=start):
            page.append(line)
            if len(page) == CATCH_UP_PAGE or index == upto - 1:
                first = index + 1 - len(page)
                tree.append([leaf_hash(x) for x in page[max(0, tree_size - first):]])
                projector.apply([orjson.loads(x) for x in page[max(0, position - first):]])
                page = []

    def account_cache(self, fund: str) -> AccountCache:
        """This process's cache of the fund's account rows (see AccountCache)."""
        return self._account_caches.setdefault(fund, AccountCache())

    def log_tree(self, connection: Connection, fund: str) -> LogTree:
        """The fund's RFC 6962 log tree; complete bottom tiles are recomputed from the log."""
        def leaves(start: int, end: int) -> list[bytes]:
            return [leaf_hash(line) for line in self.log_lines(fund, start, end)]

        return LogTree(connection, fund, leaves=leaves)

    # -- reading the log ------------------------------------------------------------------

    def log_lines(self, name: str, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """Canonical export lines (without newline) of a fund's events with
        start <= index < stop, in log order: the stored bytes themselves (ledger.store.mapper).

        Reads in pages so memory stays flat on long logs (event version = index + 1).
        """
        page = 20000
        position = start
        originator_id = fund_id(name)
        while stop is None or position < stop:
            upper = position + page if stop is None else min(position + page, stop)
            batch = self.recorder.select_states(originator_id, position, upper)  # type: ignore[attr-defined]
            yield from batch
            if len(batch) < upper - position:
                return
            position = upper

    def log_events(self, name: str, start: int = 0, stop: int | None = None) -> Iterator[dict[str, Any]]:
        """Exported events (parsed export lines) of a fund, as `log_lines`."""
        for line in self.log_lines(name, start, stop):
            yield orjson.loads(line)
