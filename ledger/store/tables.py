"""Every table Backstop keeps beside the event store, in one place: projections, log tiles,
published snapshots. The event store's own tables belong to eventsourcing (ledger.store.sqlstore).

Tables live in the same database as the event store, so one transaction can cover both.
Amounts are stored as decimal strings of integer minor units: exact at any size, on both
backends.
"""

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, MetaData, String, Table, Text

from ledger.domain.bookkeeping import ACCOUNT_TOTALS, TOTALS

metadata = MetaData()

# -- projections (ledger.store.projections) --------------------------------------------------
positions = Table(
    "backstop_projection_position", metadata,
    Column("fund", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
)
balances = Table(
    "backstop_balances", metadata,
    Column("fund", String(64), primary_key=True),
    Column("asset", String(32), primary_key=True),
    Column("units", Text, nullable=False),
)
accounts = Table(
    "backstop_accounts", metadata,
    Column("fund", String(64), primary_key=True),
    Column("account", String(200), primary_key=True),
    Column("asset", String(32), primary_key=True),
    Column("fees", Text, nullable=False),
    Column("payouts", Text, nullable=False),
    Column("clawbacks", Text, nullable=False),
    sqlite_with_rowid=False,  # rows are found by their key only: one b-tree, not two
)
TOTAL_FIELDS = TOTALS  # the running totals of ledger.domain.bookkeeping, column by column
totals = Table(
    "backstop_totals", metadata,
    Column("fund", String(64), primary_key=True),
    Column("asset", String(32), primary_key=True),
    *[Column(name, Text, nullable=False) for name in TOTAL_FIELDS],
)
exchange_ids = Table(
    "backstop_exchange_ids", metadata,
    Column("fund", String(64), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("exchange_id", String(200), primary_key=True),
    Column("position", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)
counts = Table(
    "backstop_event_counts", metadata,
    Column("fund", String(64), primary_key=True),
    Column("type", String(40), primary_key=True),
    Column("count", Integer, nullable=False),
)
ACCOUNT_FIELDS = ACCOUNT_TOTALS  # the accounts table's columns, in that order
PROJECTION_TABLES = (positions, balances, accounts, totals, exchange_ids, counts)

# -- RFC 6962 log tiles (ledger.store.logtree) ----------------------------------------------
log_tiles = Table(
    "log_tiles",
    metadata,
    Column("fund", Text, primary_key=True),
    Column("level", Integer, primary_key=True),
    Column("idx", BigInteger, primary_key=True),
    Column("hashes", LargeBinary, nullable=False),
)

# -- published snapshots (ledger.service.publish) -------------------------------------------
published = Table(
    "backstop_published", metadata,
    Column("fund", String(64), primary_key=True),
    Column("log_size", BigInteger, primary_key=True),
    Column("document", Text, nullable=False),
    Column("seed", String(64), nullable=False),
    Column("accounts", Text, nullable=False),  # {account: [sums...]} as committed
)

# -- proof of reserves: the open attestation round (ledger.service.reserves) -----------------
reserve_rounds = Table(
    "backstop_reserve_rounds", metadata,
    Column("fund", String(64), primary_key=True),  # at most one open round per fund
    Column("log_size", BigInteger, nullable=False),
    Column("log_root", String(64), nullable=False),
    Column("time", String(40), nullable=False),
    Column("holdings", Text, nullable=False),  # JSON list, in the order they were added
)

# -- the bus follower's position (ledger.store.cursors, ledger.service.follow) ---------------
follow_cursors = Table(
    "backstop_follow_cursors", metadata,
    Column("fund", String(64), primary_key=True),
    Column("stream", String(200), primary_key=True),
    Column("position", BigInteger, nullable=False),  # last stream sequence handled
    # The stream's creation time (JetStream stream info), ISO 8601: the position counts in
    # that stream only. NULL in rows written before issue 21 (adopted at the next start).
    Column("stream_created", String(40), nullable=True),
)
