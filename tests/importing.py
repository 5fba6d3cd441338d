"""Helpers for tests of `backstop import` at the door: the CLI on a database, every row of
every table (to show nothing was written), a refusal in one line, a fund to import into."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, inspect, select, text

from ledger.cli.main import main
from ledger.store.dburl import normalize_url
from tests.factories import TIME, fund_config


def run(args: list[str], url: str) -> Result:
    """The CLI on database `url`; an exception escaping it fails the test."""
    return CliRunner().invoke(main, [*args, "--db", url], catch_exceptions=False)


def database_rows(url: str) -> dict[str, list[str]]:
    """Every row of every table: two equal results mean nothing was written in between."""
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as connection:
            return {table: sorted(repr(tuple(row)) for row in connection.execute(
                        select(text("*")).select_from(text(f'"{table}"'))))
                    for table in inspect(connection).get_table_names()}
    finally:
        engine.dispose()


@pytest.fixture
def fund_db(db_url: str, tmp_path: Path) -> str:
    """A database holding the fund `main` (USDT with 2 decimals) after its opening."""
    config = tmp_path / "fund.json"
    config.write_text(json.dumps(fund_config()))
    assert run(["init", str(config), "--time", TIME], db_url).exit_code == 0
    return db_url


def refused(url: str, path: Path) -> str:
    """Import `path`; assert exit 2, one line and no write; return the message after `path: `."""
    before = database_rows(url)
    result = run(["import", str(path)], url)
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and len(result.output) < 500, result.output[:2000]
    assert database_rows(url) == before
    prefix = f"Error: {path}: "
    assert result.output.startswith(prefix), result.output
    return result.output.removeprefix(prefix).rstrip("\n")
