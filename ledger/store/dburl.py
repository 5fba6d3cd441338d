"""The database URL: one URL selects SQLite (default) or PostgreSQL; its defaults, checks and redaction.

The event store is `eventsourcing-sqlalchemy`; projections, log tiles and published snapshots
are SQLAlchemy Core tables in the same database, so one transaction covers events and
everything derived from them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from auditor.formats.clip import clip, shorten

DB_ENV = "BACKSTOP_DB"
DEFAULT_DB_FILE = "backstop.sqlite"


# The password of a URL SQLAlchemy cannot parse: whatever sits between "user:" and "@".
_PASSWORD = re.compile(r"(//[^/:@]*:)[^@]*@")
MIN_SCRUBBED = 4  # shorter passwords are not searched for in driver text: they would mangle it


class DatabaseURLError(ValueError):
    """The database URL names a backend Backstop does not support, or cannot be opened."""


def redact(url: str) -> str:
    """`url` with its password shown as ***, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return _PASSWORD.sub(r"\1***@", url)


def scrub(message: str, url: str) -> str:
    """`message` with `url`, and its password in any spelling, no longer in clear."""
    message = message.replace(url, redact(url))
    try:
        password = make_url(url).password
    except (ArgumentError, ValueError):
        return _PASSWORD.sub(r"\1***@", message)
    if password and len(str(password)) >= MIN_SCRUBBED:
        for spelling in {str(password), quote(str(password), safe="")}:
            message = message.replace(spelling, "***")
    return message


# A bus URL's credentials: nats://TOKEN@host carries a token where a database URL has a user.
_BUS_USERINFO = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<userinfo>[^/@]*)@")


def redact_servers(servers: str) -> str:
    """A comma-separated list of bus URLs (NATS) with every secret shown as ***: a password as
    in `redact`, and a token (`nats://TOKEN@host`, userinfo without a colon) whole."""
    shown = []
    for server in servers.split(","):
        match = _BUS_USERINFO.match(server.strip())
        if match and ":" not in match["userinfo"]:
            shown.append(f"{match['scheme']}***@{server.strip()[match.end():]}")
        else:
            shown.append(redact(server.strip()))
    return ",".join(shown)


def scrub_servers(message: str, servers: str) -> str:
    """`message` with no secret of the bus URLs `servers` in clear (see `redact_servers`)."""
    for server in servers.split(","):
        server = server.strip()
        match = _BUS_USERINFO.match(server)
        if match and ":" not in match["userinfo"] and match["userinfo"]:
            message = message.replace(server, redact_servers(server))
            if len(match["userinfo"]) >= MIN_SCRUBBED:
                message = message.replace(match["userinfo"], "***")
        else:
            message = scrub(message, server)
    return message


def open_error(url: str, error: Exception) -> DatabaseURLError:
    """One line for a database that cannot be opened: the driver's first line, without
    SQLAlchemy's background link or the password."""
    detail = error.orig if isinstance(error, DBAPIError) else error
    first = (str(detail).strip().splitlines() or [type(detail).__name__])[0]
    # Redacted before clipping: a clipped password would no longer be found to hide.
    return DatabaseURLError(f"cannot open database {clip(redact(url), 200)}: "
                            f"{shorten(scrub(first, url), 300)}")


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
    raise DatabaseURLError(f"unsupported database URL {clip(redact(url), 200)}: use "
                           "sqlite:///PATH or postgresql+psycopg://...")
