"""`backstop risk`: how big must the fund be? Stress paths over a positions snapshot."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import click

from auditor.formats.wire import WireError, parse_decimal
from ledger.cli.options import (
    BoundedInt,
    FiniteFloat,
    InputExit,
    emit_json,
    force_option,
    resolve_fund,
    store_options,
)
from ledger.risk import scenarios, sizing
from ledger.risk.text import committee_text
from ledger.service.application import Ledger
from ledger.service.riskfiles import (
    RiskFileError,
    check_report_paths,
    load_policy,
    read_book,
    write_report,
)

SCENARIO_HELP = ("Repeatable. 'stochastic' (Student-t diffusion with Poisson jumps, --paths of "
                 "them), a historical shape (" + ", ".join(sorted(scenarios.shapes())) +
                 "; one path each), or a CSV file of price paths (header: path names; one row "
                 "per step). Default: stochastic and every historical shape.")


def _fraction(option: str, text: str, low: Fraction, high: Fraction) -> Fraction:
    try:
        value = parse_decimal(text)
    except WireError as error:
        raise InputExit(f"{option}: {error}") from None
    if not low <= value <= high:
        raise InputExit(f"{option}: must be between {float(low):g} and {float(high):g}, got {text}")
    return value


@click.command("risk")
@click.option("--positions", "positions_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Positions snapshot (JSONL, schemas/positions.schema.json).")
@click.option("--scenario", "scenario_names", multiple=True, metavar="NAME|FILE.csv",
              help=SCENARIO_HELP)
@click.option("--paths", default=1000, show_default=True,
              type=BoundedInt(1, sizing.MAX_PATHS),
              help="Stochastic paths (every path's outcome is kept: at most "
                   f"{sizing.MAX_PATHS:,} paths of all scenarios together).")
@click.option("--horizon", default=1440, show_default=True,
              type=BoundedInt(2, scenarios.MAX_HORIZON),
              help="Steps per path (the margin engine checks once per step: 1440 = a day of "
                   f"minutes; at most {scenarios.MAX_HORIZON:,}, a week, for bounded memory).")
@click.option("--seed", default=1, show_default=True, type=BoundedInt(0, 2**53 - 1),
              help="Seed of the stochastic paths: the same seed gives the same numbers.")
@click.option("--vol", default=0.04, show_default=True, type=FiniteFloat(),
              help="Stochastic: standard deviation of the diffusion's log move over the horizon.")
@click.option("--jump-intensity", default=0.5, show_default=True, type=FiniteFloat(),
              help="Stochastic: expected jumps per horizon (Poisson).")
@click.option("--jump-size", default=0.05, show_default=True, type=FiniteFloat(),
              help="Stochastic: standard deviation of one jump's log move.")
@click.option("--tail-df", default=3.0, show_default=True,
              type=FiniteFloat(),
              help="Stochastic: Student-t degrees of freedom (lower: fatter tails).")
@click.option("--shape-paths", default=1, show_default=True, type=BoundedInt(1, 100_000),
              help="Paths per historical shape: the smooth shape, then seeded rough variants "
                   "through the same anchors (gaps between them, as in real crashes).")
@click.option("--shape-noise", default=0.002, show_default=True,
              type=FiniteFloat(0, 1),
              help="Per-step scale of the rough variants' Student-t log noise.")
@click.option("--policy", "policy_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Repeatable: compare the fund's active policy with this policy document on "
                   "the same paths.")
@click.option("--slippage", default="0.001", show_default=True,
              help="Base slippage of liquidation fills (the simulator's model: plus the notional "
                   "liquidated that step over the book depth); 0: fill at the crossing mark.")
@click.option("--buffer", "buffer_", default="0.2", show_default=True,
              help="Recommended size = max(ES 99.9% of deficits, cover-2) x (1 + buffer).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the JSON report here (for `snapshot publish --risk`).")
@click.option("--png", "png", type=click.Path(dir_okay=False, path_type=Path),
              help="Draw the loss distribution and the size/socialization curve (matplotlib).")
@force_option
@store_options
def risk_command(positions_path: Path, scenario_names: tuple[str, ...], paths: int, horizon: int,
                 seed: int, vol: float, jump_intensity: float, jump_size: float, tail_df: float,
                 shape_paths: int, shape_noise: float, policy_files: tuple[Path, ...],
                 slippage: str, buffer_: str, as_json: bool,
                 out: Path | None, png: Path | None, force: bool, ledger: Ledger,
                 fund_name: str | None) -> None:
    """Size the fund: stress the open positions of --positions along price paths, run the
    liquidations through the fund's waterfall, and report VaR/ES of the fund's drawdown, of
    deficits and of socialized loss, the probability of socialization, cover-1/cover-2,
    reverse stress and a recommended fund size with today's coverage.

    \b
    Example:
      backstop risk --positions book.jsonl --paths 2000 --seed 7 \\
          --policy share-curve.json --out risk.json --png risk.png
    Exit codes: 0 report written, 2 bad input (`line N: field: reason`), nothing written.
    """
    try:
        check_report_paths(out, png, force)
    except RiskFileError as error:
        raise InputExit(str(error)) from None
    if png is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise InputExit("--png needs matplotlib: pip install 'backstop[chart]'") from None
    name = resolve_fund(ledger, fund_name)
    fund = ledger.get_fund(name)
    try:
        book, positions_hash = read_book(positions_path, fund.markets, fund.assets)
        policies = [sizing.NamedPolicy("active", fund.active_policy())]
        policies += [load_policy(path, fund.assets) for path in policy_files]
        config = sizing.RiskConfig(
            scenarios=scenario_names or (sizing.STOCHASTIC, *sorted(scenarios.shapes())),
            paths=paths, horizon=horizon, seed=seed,
            stochastic=scenarios.Stochastic(vol, jump_intensity, jump_size, tail_df),
            slippage=_fraction("--slippage", slippage, Fraction(0), Fraction(15, 100)),
            buffer=_fraction("--buffer", buffer_, Fraction(0), Fraction(100)),
            positions_hash=positions_hash, shape_paths=shape_paths, shape_noise=shape_noise)
        sizing.check_scenarios(config.scenarios)
        total = sizing.path_count(config)  # reads (and checks) every CSV before the long run
        sizing.check_size(total, len(policies))
        balance = fund.balances[book.asset]
        show = sys.stderr.isatty() and total * book.count * horizon > 10**9
        with click.progressbar(length=total, label="stress paths", file=sys.stderr) if show \
                else _Quiet() as bar:
            results = sizing.simulate(book, policies, balance, config, progress=bar.update)
        document = sizing.report(book, policies, balance, config, results)
        document["fund"] = name
        write_report(document, results, out, png, force)
    except (RiskFileError, scenarios.ScenarioError) as error:
        raise InputExit(str(error)) from None
    if as_json:
        emit_json(document)
    else:
        click.echo(committee_text(document))


class _Quiet:
    """Stands in for the progress bar when it is not shown."""

    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *_: Any) -> None:
        return None

    def update(self, _: int) -> None:
        """Nothing to show."""
