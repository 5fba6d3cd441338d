"""What every `backstop` command shares: the store options, errors with their exit codes,
output helpers. Command modules import this one and never each other, so there is no cycle
(ledger.cli.main registers the commands of ledger.cli.publish and ledger.cli.simulate)."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError

from auditor.formats.clip import shorten
from auditor.formats.wire import PARSER_SAFE_DEPTH, too_deep_to_parse
from ledger.domain.fund import utc_now
from ledger.service.application import Ledger
from ledger.service.outputs import OutputExists, refuse_taken
from ledger.service.queries import fund_names
from ledger.service.signing import KeyFileError
from ledger.store.busy import (
    BUSY_EXIT_CODE,
    DEFAULT_LOCK_TIMEOUT,
    LOCK_TIMEOUT_ENV,
    ConcurrentWriteError,
    DatabaseBusy,
    FundBusy,
    describe_holder,
)
from ledger.store.dburl import DB_ENV, DatabaseURLError, default_url, open_error, redact_servers

F = TypeVar("F", bound=Callable[..., Any])


class InputExit(click.ClickException):
    """A usage or input problem: exit code 2, one line on stderr."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        # One line of bounded length, whatever a driver or a value quoted in it holds.
        super().__init__(shorten(" ".join(message.splitlines()), 1000))


class BusyExit(click.ClickException):
    """Another writer held the fund for longer than the lock timeout: exit code 3."""

    exit_code = BUSY_EXIT_CODE


now = utc_now  # the default of every --time option


def store_options(func: F) -> F:
    """Add `--db` and `--fund` to a command and pass an opened Ledger and fund name."""

    @click.option("--db", "db_url", envvar=DB_ENV, metavar="URL", show_envvar=True,
                  help="Database URL: sqlite:///PATH (default ./backstop.sqlite) or "
                       "postgresql+psycopg://USER@HOST/DB.")
    @click.option("--fund", "fund_name", envvar="BACKSTOP_FUND", metavar="NAME",
                  show_envvar=True, help="Fund name (default: the database's only fund).")
    @click.option("--lock-timeout", type=click.FloatRange(0, 86_400), envvar=LOCK_TIMEOUT_ENV,
                  metavar="SECONDS", show_envvar=True,
                  help=f"How long to wait while another writer holds the fund (default "
                       f"{DEFAULT_LOCK_TIMEOUT:g}); then exit code {BUSY_EXIT_CODE}.")
    @functools.wraps(func)
    def wrapper(*args: Any, db_url: str | None, fund_name: str | None,
                lock_timeout: float | None, **kwargs: Any) -> Any:
        try:
            ledger = Ledger(db_url, lock_timeout=lock_timeout)
        except DatabaseURLError as error:
            raise InputExit(str(error)) from None
        except (SQLAlchemyError, OSError) as error:  # unreachable server, missing database
            raise InputExit(str(open_error(db_url or default_url(), error))) from None
        ctx = click.get_current_context()
        ctx.call_on_close(ledger.close)
        try:
            return func(*args, ledger=ledger, fund_name=fund_name, **kwargs)
        except KeyFileError as error:  # every command that signs names its key file --key
            raise InputExit(f"--key {error}") from None
        except FundBusy as error:
            raise BusyExit(str(error)) from None
        except (DatabaseBusy, ConcurrentWriteError):  # from a command that does not retry
            raise BusyExit(describe_holder(ledger.engine, fund_name)) from None

    return wrapper  # type: ignore[return-value]


def resolve_fund(ledger: Ledger, name: str | None) -> str:
    """The fund to act on: the given name, or the database's only fund."""
    if name is not None:
        if not ledger.fund_exists(name):
            raise InputExit(f"no fund named {name!r} in this database "
                             "(create it with `backstop init`)")
        return name
    names = fund_names(ledger.engine)
    if len(names) == 1:
        return names[0]
    if not names:
        raise InputExit("this database has no fund yet: create one with `backstop init CONFIG`")
    raise InputExit(f"this database has several funds ({', '.join(names)}): pick one with --fund")


def load_json_file(path: Path) -> Any:
    """A small JSON file's document (a config, a policy); ValueError for nesting deeper than
    the recursive parser takes, as for any other invalid JSON. OSError passes through."""
    text = path.read_text("utf-8")
    if too_deep_to_parse(text):
        raise ValueError(f"nested deeper than {PARSER_SAFE_DEPTH} levels")
    return json.loads(text)


def emit_json(document: Any) -> None:
    """Print a JSON document for scripts."""
    click.echo(json.dumps(document, indent=2, sort_keys=True))


force_option = click.option("--force", is_flag=True,
                            help="Replace existing output (by default it is refused).")


def refuse_overwrite(option: str, path: Path, force: bool) -> None:
    """Exit 2 with one line when the output `path` of `option` is taken and not `force`."""
    try:
        refuse_taken(path, force)
    except OutputExists as error:
        raise InputExit(f"{option} {error}") from None


def _one_line(message: str, param: click.Parameter | None) -> InputExit:
    """A parameter type's refusal as the commands' one-line input error (exit 2), naming the
    option, instead of click's usage block."""
    name = (param.opts[0] if param.opts else param.name) if param is not None else "value"
    return InputExit(f"{name}: {message}")


class BoundedInt(click.IntRange):
    """click.IntRange whose refusal is one line naming the option and the bound."""

    def fail(self, message: str, param: click.Parameter | None = None,
             ctx: click.Context | None = None) -> NoReturn:
        raise _one_line(message, param)


class FiniteFloat(click.FloatRange):
    """A float option (in a range, when given) that also refuses nan and inf: click's
    FloatRange lets nan through (every comparison with it is false), and neither means
    anything as a model parameter or a rate. Refusals are one line naming the option."""

    name = "finite float"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number

    def fail(self, message: str, param: click.Parameter | None = None,
             ctx: click.Context | None = None) -> NoReturn:
        raise _one_line(message, param)


def shown_servers(servers: str) -> str:
    """--servers as a message may show it: passwords and tokens as *** (store.dburl)."""
    return redact_servers(servers)
