"""Shared fixtures: a fresh database per test on every backend (SQLite file, PostgreSQL).

PostgreSQL tests use $BACKSTOP_TEST_PG_URL (default: the local server's `test` database as
user postgres); each test gets a database of its own, created and dropped around it. They are
skipped when the server is unreachable, unless $BACKSTOP_REQUIRE_PG is set (CI sets it).
"""

from __future__ import annotations

import functools
import http.server
import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.required import skip_or_fail
from tests.serving import serving

PG_URL = os.environ.get("BACKSTOP_TEST_PG_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_counter = itertools.count()


def _pg_admin(url: str):  # type: ignore[no-untyped-def]
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(plain, autocommit=True, connect_timeout=5)


def pg_available() -> str | None:
    """None when PostgreSQL is reachable, else the reason."""
    try:
        with _pg_admin(PG_URL):
            return None
    except Exception as error:
        return f"PostgreSQL unreachable at {PG_URL}: {error}"


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The admin URL of the test PostgreSQL server (skip or fail when it is down)."""
    skip_or_fail(pg_available(), "BACKSTOP_REQUIRE_PG")
    return PG_URL


@pytest.fixture
def fresh_pg_url(pg_server: str) -> Iterator[str]:
    """A URL to a newly created, empty PostgreSQL database, dropped after the test."""
    name = f"backstop_t{os.getpid()}_{next(_counter)}"
    with _pg_admin(pg_server) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    base = pg_server.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with _pg_admin(pg_server) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One empty database per test, on each backend: the store conformance parameter."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    return request.getfixturevalue("fresh_pg_url")


@pytest.fixture
def make_ledger() -> Iterator[Callable[[str], object]]:
    """Open Ledger applications that are closed (and their engines disposed) after the test."""
    from ledger.service.application import Ledger

    opened: list[Ledger] = []

    def make(url: str) -> Ledger:
        ledger = Ledger(url)
        opened.append(ledger)
        return ledger

    yield make
    for ledger in opened:
        ledger.close()
        ledger.engine.dispose()


# --- a real local Ethereum node (tests/chain.py): Ganache from chain/node_modules ---------------
# Skipped when Node.js or chain/node_modules is missing, unless $BACKSTOP_REQUIRE_CHAIN is set
# (CI sets it, after `make chain-deps`).


@pytest.fixture(scope="session")
def chain_node() -> Iterator[object]:
    """One Ganache node for the whole run (tests/chain.py `Node`), stopped at the end."""
    from tests import chain as chainlib

    skip_or_fail(chainlib.unavailable(), "BACKSTOP_REQUIRE_CHAIN")
    node = chainlib.start_node()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def chain(chain_node) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """The node's `Chain` handle, its state (balances, contracts, block number) reverted after
    the test, so each test starts from the same chain: block 0, every account 1000 ETH."""
    handle = chain_node.chain
    snapshot = handle.snapshot()
    yield handle
    handle.revert(snapshot)


# -- NATS JetStream (issue 17: `backstop follow`) --------------------------------------------
NATS_URL = os.environ.get("BACKSTOP_TEST_NATS_URL", "nats://127.0.0.1:4222")


def nats_available() -> str | None:
    """None when a NATS server with JetStream answers at NATS_URL, else the reason."""
    from tests.bus import jetstream_reason

    return jetstream_reason(NATS_URL)


@pytest.fixture(scope="session")
def nats_server() -> str:
    """The test NATS server's URL (skip, or fail under $BACKSTOP_REQUIRE_NATS, when down)."""
    skip_or_fail(nats_available(), "BACKSTOP_REQUIRE_NATS")
    return NATS_URL


# -- HTTP ------------------------------------------------------------------------------------
@pytest.fixture
def served_log(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on localhost serving tmp_path/log (plain GETs)."""
    root = tmp_path / "log"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # the CLI's output is the verdict
            pass

    handler = functools.partial(Quiet, directory=str(root))
    with serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)) as port:
        yield f"http://127.0.0.1:{port}/", root
