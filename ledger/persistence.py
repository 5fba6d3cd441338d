"""Choosing the store: one database URL selects SQLite (default) or PostgreSQL.

The event store is `eventsourcing-sqlalchemy`; projections, log tiles and published snapshots
are SQLAlchemy Core tables in the same database, so one transaction covers events and
everything derived from them.
"""

from __future__ import annotations

import os
from pathlib import Path

DB_ENV = "BACKSTOP_DB"
DEFAULT_DB_FILE = "backstop.sqlite"


class DatabaseURLError(ValueError):
    """The database URL names a backend Backstop does not support."""


def default_url() -> str:
    """The database URL from $BACKSTOP_DB, else a SQLite file in the working directory."""
    return os.environ.get(DB_ENV) or f"sqlite:///{Path.cwd() / DEFAULT_DB_FILE}"


def normalize_url(url: str) -> str:
    """Check `url` names a supported backend and pin PostgreSQL to the psycopg 3 driver."""
    if url.startswith("sqlite:///"):
        return url
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    raise DatabaseURLError(
        f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql+psycopg://..."
    )
