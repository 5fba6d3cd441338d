"""`backstop`: the operator's command line.

Every command takes `--db URL` (or $BACKSTOP_DB; default a SQLite file `backstop.sqlite` in
the working directory) and `--fund NAME` (or $BACKSTOP_FUND; default the database's only fund).
Exit codes: 0 success, 1 failure, 2 usage or input error (bad record, unknown fund, ...),
3 the fund stayed busy (another writer held it) for longer than --lock-timeout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from auditor.formats.schemas import first_error
from ledger.cli.options import (
    InputExit,
    emit_json,
    force_option,
    load_json_file,
    now,
    refuse_overwrite,
    resolve_fund,
    store_options,
)
from ledger.cli.publish import keygen, prove, snapshot
from ledger.cli.reserves import reserves
from ledger.cli.risk import risk_command
from ledger.cli.serve import serve
from ledger.cli.simulate import simulate_command
from ledger.cli.site import site
from ledger.domain.records import RecordError
from ledger.service.application import FundNotFound, Ledger
from ledger.service.factfile import is_export
from ledger.service.importer import DEFAULT_BATCH_SIZE, import_file, restore_export
from ledger.service.queries import account_totals, balances, rebuild_projections


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="backstop")
def main() -> None:
    """Backstop: the ledger of an exchange's insurance fund.

    \b
    Typical flow:
      backstop init fund.json          create the fund (assets, markets, policy)
      backstop import facts.jsonl      record exchange facts (liquidations, fees, ...)
      backstop balances                fund balance per asset and running totals
      backstop export events.jsonl     the event stream an auditor replays

    Exit codes: 0 success, 1 failure, 2 usage or input error, 3 the fund stayed busy
    (another writer held it) for longer than --lock-timeout / BACKSTOP_LOCK_TIMEOUT.
    """


@main.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--time", "time_", metavar="RFC3339", help="Opening time (default: now, UTC).")
@store_options
def init(config: Path, time_: str | None, ledger: Ledger, fund_name: str | None) -> None:
    """Create a fund from CONFIG: {"fund", "assets", "markets", "policy"}.

    With "format": 2 (and "valuation", "pools", market specs with "pool") the fund is a
    format 2 fund (pools): its log opens with fund_opened/2 and its policy is policy/2.

    "policy" is the policy document itself or the path of a policy JSON file (relative to
    CONFIG). See schemas/fund.schema.json and schemas/policy.schema.json.
    """
    try:
        document = load_json_file(config)
    except ValueError as error:
        raise InputExit(f"{config}: not valid JSON: {error}") from None
    if isinstance(document, dict) and isinstance(document.get("policy"), str):
        policy_path = config.parent / document["policy"]
        try:
            document["policy"] = load_json_file(policy_path)
        except (OSError, ValueError) as error:
            raise InputExit(f"{config}: policy: cannot read {policy_path}: {error}") from None
    problem = first_error("fund", document)
    if problem is not None:
        raise InputExit(f"{config}: {problem}")
    if fund_name is not None and fund_name != document["fund"]:
        raise InputExit(f"--fund {fund_name!r} differs from the config's fund "
                         f"{document['fund']!r}")
    try:
        fund = ledger.open_fund(document, time_ or now())
    except ValueError as error:
        raise InputExit(f"{config}: {error}") from None
    click.echo(f"created fund {fund.name!r} with assets {', '.join(sorted(fund.assets))}, "
               f"policy version {fund.policy_version} ({fund.log_size} events)")


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--batch-size", default=DEFAULT_BATCH_SIZE, show_default=True,
              type=click.IntRange(1, 1_000_000), help="Facts per save (one INSERT batch).")
@click.option("--batch-commit", is_flag=True,
              help="Commit each batch on its own (resumable) instead of the whole file at once.")
@click.option("--parse-in", type=click.Choice(["auto", "worker", "inline"]), default="auto",
              show_default=True,
              help="Where FILE is decoded and checked: auto (a worker process beside the import "
                   "for files of 16 MiB or more, when there is a second core), worker, or inline.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@store_options
def import_(file: Path, batch_size: int, batch_commit: bool, parse_in: str, as_json: bool,
            ledger: Ledger, fund_name: str | None) -> None:
    """Record the exchange facts in FILE (JSONL, schemas/facts.schema.json).

    FILE may also be an event export (`backstop export`): then the fund is rebuilt from it in
    an empty database, every outcome re-derived and checked against the export.

    Facts already recorded with the same fields are skipped; the same id with different
    fields is a conflict. A bad record stops the import with `line N: field: reason` and
    exit code 2, and nothing of the file is written (with --batch-commit: nothing of its batch).
    """
    restoring = is_export(file)
    name = None if restoring else resolve_fund(ledger, fund_name)
    total = file.stat().st_size
    show_bar = sys.stderr.isatty() and not as_json
    bar = click.progressbar(length=total, label="importing", file=sys.stderr) if show_bar else None
    done = 0

    def progress(consumed: int) -> None:
        nonlocal done
        if bar is not None:
            bar.update(consumed - done)
        done = consumed

    try:
        if bar is not None:
            bar.__enter__()
        if name is None:
            report = restore_export(ledger, file, batch_size=batch_size, progress=progress)
        else:
            parallel = {"auto": None, "worker": True, "inline": False}[parse_in]
            report = import_file(ledger, name, file, batch_size=batch_size,
                                 batch_commit=batch_commit, progress=progress, parallel=parallel)
    except (RecordError, FundNotFound) as error:
        raise InputExit(f"{file}: {error}") from None
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if as_json:
        emit_json(vars(report))
        return
    kinds = ", ".join(f"{n} {t}" for t, n in sorted(report.by_type.items())) or "none"
    click.echo(f"{report.recorded} facts recorded ({kinds}), {report.already_recorded} already "
               f"recorded; {report.events} events in {report.batches} batches")


@main.command("balances")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@store_options
def balances_(as_json: bool, ledger: Ledger, fund_name: str | None) -> None:
    """Fund balance per asset, and running totals (inflow, covered, socialized, ...).

    A format 2 fund also shows each pool's balance per asset (JSON: "pools")."""
    name = resolve_fund(ledger, fund_name)
    doc = balances(ledger, name)
    if as_json:
        emit_json(doc)
        return
    liquidations = sum(doc["events"].get(kind, 0)  # format v1.1 has two forms
                       for kind in ("liquidation_settled", "large_liquidation_settled"))
    click.echo(f"fund {name}: {doc['log_size']} events, policy version {doc['policy_version']}, "
               f"{liquidations} liquidations")
    for asset, values in doc["assets"].items():
        for label, value in values.items():  # "balance", then the running totals
            click.echo(f"  {asset if label == 'balance' else '':<8} {label:<15} {value:>20}")
    for pool, held in doc.get("pools", {}).items():  # a format 2 fund: per pool
        for asset, value in held.items():
            click.echo(f"  pool {pool:<18} {asset:<8} {value:>20}")


@main.command("account")
@click.argument("account_id")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@store_options
def account_(account_id: str, as_json: bool, ledger: Ledger, fund_name: str | None) -> None:
    """Totals of one account: fees contributed, payouts received, clawbacks paid."""
    name = resolve_fund(ledger, fund_name)
    doc = account_totals(ledger, name, account_id)
    if doc is None:
        raise InputExit(f"account {account_id!r}: no fees, payouts or clawbacks recorded")
    if as_json:
        emit_json(doc)
        return
    click.echo(f"account {account_id} in fund {name}")
    for asset, values in sorted(doc["assets"].items()):
        click.echo(f"  {asset:8} fees {values['fees']:>16}  payouts {values['payouts']:>16}  "
                   f"clawbacks {values['clawbacks']:>16}")


@main.command()
@click.option("--page", default=1, show_default=True, type=click.IntRange(1))
@click.option("--per-page", default=20, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="One exported event per line (JSONL).")
@store_options
def history(page: int, per_page: int, as_json: bool, ledger: Ledger,
            fund_name: str | None) -> None:
    """The fund's events, oldest first, a page at a time."""
    name = resolve_fund(ledger, fund_name)
    size = ledger.get_fund(name).log_size
    start = (page - 1) * per_page
    pages = max(1, -(-size // per_page))
    if start >= size and size:
        raise InputExit(f"--page {page}: the log has {pages} pages of {per_page}")
    for event in ledger.log_events(name, start, min(start + per_page, size)):
        if as_json:
            click.echo(json.dumps(event, sort_keys=True, separators=(",", ":")))
            continue
        data = event["data"]
        summary = " ".join(f"{k}={v}" for k, v in data.items()
                           if isinstance(v, (str, int)) and k != "policy_hash")
        click.echo(f"{event['index']:>8}  {event['time']}  {event['type']:<26} "
                   f"{event['ref'] or '':<16} {summary}")
    if not as_json:
        click.echo(f"page {page} of {pages} ({size} events)", err=True)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--size", type=click.IntRange(0), help="Export only the first SIZE events.")
@force_option
@store_options
def export(file: Path, size: int | None, force: bool, ledger: Ledger,
           fund_name: str | None) -> None:
    """Write the event stream as canonical JSONL (one RFC 8785 object per line).

    This is what an auditor replays with `backstop-audit replay`. FILE may be - for stdout.
    """
    from ledger.service.exporting import write_export

    if str(file) != "-":
        refuse_overwrite("FILE", file, force)
    name = resolve_fund(ledger, fund_name)
    log_size = ledger.get_fund(name).log_size
    if size is not None and size > log_size:
        raise InputExit(f"--size {size}: the log has only {log_size} events")
    try:
        count = write_export(ledger, name, file, size if size is not None else log_size)
    except OSError as error:  # a missing folder, no permission, a full disk
        raise InputExit(f"FILE {file}: cannot write ({error.strerror or error})") from None
    if str(file) != "-":
        click.echo(f"exported {count} events to {file}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@store_options
def rebuild(as_json: bool, ledger: Ledger, fund_name: str | None) -> None:
    """Rebuild every projection and the log tree from the event log, from zero.

    Reports whether the rebuilt balances equal the ones kept incrementally.
    """
    name = resolve_fund(ledger, fund_name)
    report = ledger.retry(name, lambda: rebuild_projections(ledger, name))
    if as_json:
        emit_json(report)
        return
    verdict = "identical to" if report["unchanged"] else "DIFFERENT from"
    click.echo(f"replayed {report['events']} events of fund {name}: projections are {verdict} "
               "the incremental ones")
    if not report["unchanged"]:
        sys.exit(1)


def _replay_moved(**kwargs: Any) -> Any:
    click.echo("`backstop replay` is now `backstop rebuild` (`backstop-audit replay` is the "
               "auditor's replay of an export)", err=True)
    return rebuild.callback(**kwargs)  # type: ignore[misc]


# The old name, kept so scripts keep working; hidden from --help.
main.add_command(click.Command("replay", callback=_replay_moved, params=rebuild.params,
                               hidden=True, help="Moved: see `backstop rebuild`."))


@main.command()
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("demo-out"), show_default=True,
              help="Folder for the database, published snapshots and chart (recreated).")
@click.option("--seed", default=7, show_default=True, help="Simulation seed.")
@click.option("--traders", default=3000, show_default=True, type=click.IntRange(10))
def demo(workdir: Path, seed: int, traders: int) -> None:
    """Simulate a crash, record it, publish hourly snapshots, audit them, draw the chart."""
    from ledger.sim.demo import ChartUnavailable, report, run_demo
    from ledger.sim.simulate import SimulationConfig

    try:
        result = run_demo(workdir, SimulationConfig(seed=seed, traders=traders), say=click.echo)
    except ChartUnavailable as error:
        raise InputExit(str(error)) from None
    click.echo(report(result))
    if not result.verified:
        sys.exit(1)


for _command in (simulate_command, keygen, snapshot, prove, reserves, risk_command, site,
                 serve):
    main.add_command(_command)

# `backstop follow` (issue 17), registered on its own lines; it loads nats-py only when it runs.
from ledger.cli.follow import follow  # noqa: E402

main.add_command(follow)
