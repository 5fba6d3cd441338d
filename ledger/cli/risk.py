"""`backstop risk`: how big must the fund be? Stress paths over a positions snapshot."""

from __future__ import annotations

import sys
from collections.abc import Callable
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
from ledger.risk import calibrate, model, scenarios, sensitivity, sizing
from ledger.risk.text import committee_text
from ledger.service.application import Ledger
from ledger.service.calibfiles import (
    CalibFileError,
    check_out,
    ledger_marks,
    read_candles,
    read_model,
    write_model,
)
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


COARSE_SECONDS = 300  # data coarser than the ledger's 5-minute marks: say what it cannot see


class _RiskCommand(click.Command):
    """`backstop risk ...` sizes the fund; `backstop risk calibrate ...` is the calibration
    (a subcommand without making `risk` a group, whose own options would then come first)."""

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        if args and args[0] == "calibrate":
            return calibrate_command.make_context(f"{info_name} calibrate", args[1:],
                                                  parent=parent, **extra)
        return super().make_context(info_name, args, parent=parent, **extra)


@click.command("risk", cls=_RiskCommand)
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
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Stochastic parameters from a `backstop risk calibrate` file (instead of "
                   "--vol, --jump-intensity, --jump-size): the largest of the book's markets; "
                   "its SHA-256 joins the model parameters.")
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
@click.option("--bootstrap", default=200, show_default=True, type=BoundedInt(0, 10_000),
              help="Resamples of the paths for the 95% intervals of VaR, ES, cover-2, the "
                   "recommended size and P(socialization) (seeded by --seed; 0: none).")
@click.option("--sensitivity", "with_sensitivity", is_flag=True,
              help="Also rerun with volatility, jump size, jump intensity and book depth each "
                   "halved and doubled (same seed): 8 more runs.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the JSON report here (for `snapshot publish --risk`).")
@click.option("--png", "png", type=click.Path(dir_okay=False, path_type=Path),
              help="Draw the loss distribution and the size/socialization curve (matplotlib).")
@force_option
@store_options
def risk_command(positions_path: Path, scenario_names: tuple[str, ...], paths: int, horizon: int,
                 seed: int, vol: float, jump_intensity: float, jump_size: float, tail_df: float,
                 model_path: Path | None, shape_paths: int, shape_noise: float, policy_files: tuple[Path, ...],
                 slippage: str, buffer_: str, bootstrap: int, with_sensitivity: bool,
                 as_json: bool,
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
    Calibrate the stochastic model from price history first with `backstop risk calibrate`
    (see `backstop risk calibrate --help`) and pass it with --model.
    Exit codes: 0 report written, 2 bad input (`line N: field: reason`), nothing written.
    """
    ctx = click.get_current_context()
    for option in ("vol", "jump_intensity", "jump_size"):
        if model_path is not None and \
                ctx.get_parameter_source(option) is not click.core.ParameterSource.DEFAULT:
            raise InputExit(f"--{option.replace('_', '-')}: not with --model (the model file "
                            "gives it)")
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
        model_hash = ""
        if model_path is None:
            stochastic = scenarios.Stochastic(vol, jump_intensity, jump_size, tail_df)
        else:
            document, model_hash = read_model(model_path)
            model.check(document)
            stochastic = model.stochastic(document, book.markets, horizon, tail_df)
        config = sizing.RiskConfig(
            scenarios=scenario_names or (sizing.STOCHASTIC, *sorted(scenarios.shapes())),
            paths=paths, horizon=horizon, seed=seed, stochastic=stochastic,
            model_sha256=model_hash, bootstrap=bootstrap,
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
        if with_sensitivity:
            with click.progressbar(length=8, label="sensitivity runs", file=sys.stderr) \
                    if show else _Quiet() as bar:
                document["sensitivity"] = sensitivity.table(book, policies, balance, config,
                                                            progress=bar.update)
        write_report(document, results, out, png, force)
    except (RiskFileError, CalibFileError, scenarios.ScenarioError) as error:
        raise InputExit(str(error)) from None
    if as_json:
        emit_json(document)
    else:
        click.echo(committee_text(document))


def _marks(ledger: Ledger, fund_name: str | None) -> tuple[str, str, Any, str]:
    """("ledger", fund, its marks, their hash)."""
    name = resolve_fund(ledger, fund_name)
    marks, digest = ledger_marks(ledger, name)
    return "ledger", name, marks, digest


# store_options' wrapper, called directly: it opens the Ledger from db_url, fund_name and
# lock_timeout, and its --db, --fund and --lock-timeout become calibrate's options.
_read_marks: Callable[..., tuple[str, str, Any, str]] = store_options(_marks)


def _store_params(func: Any) -> Any:
    """Give `func` store_options' three options without opening the database first."""
    func.__click_params__ = [*getattr(func, "__click_params__", []),
                             *getattr(_read_marks, "__click_params__", [])]
    return func


@click.command("calibrate")
@click.option("--candles", "candle_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Repeatable: a CSV of candles (header with time, market, close; "
                   "schemas/README.md 'Risk model file').")
@click.option("--ledger-marks/--no-ledger-marks", "ledger_marks_", default=None,
              help="Use the fund's market_observed marks (default: when no --candles).")
@click.option("--window", default=1440.0, show_default=True, type=FiniteFloat(1, 10**7),
              help="Stressed look-back in minutes: the window of the data with the largest "
                   "sum of squared log returns.")
@click.option("--floor-vol", default=0.02, show_default=True, type=FiniteFloat(0, 5),
              help="Floor of the diffusion's volatility, per day (1,440 minutes).")
@click.option("--floor-jump-intensity", default=0.0, show_default=True,
              type=FiniteFloat(0, 1000), help="Floor of the expected jumps per day.")
@click.option("--floor-jump-size", default=0.0, show_default=True, type=FiniteFloat(0, 5),
              help="Floor of one jump's log-move standard deviation.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The model file to write (for `backstop risk --model`).")
@click.option("--json", "as_json", is_flag=True, help="Print the model file too.")
@force_option
@_store_params
def calibrate_command(candle_files: tuple[Path, ...], ledger_marks_: bool | None,
                      window: float, floor_vol: float, floor_jump_intensity: float,
                      floor_jump_size: float, out: Path, as_json: bool, force: bool,
                      db_url: str | None, fund_name: str | None,
                      lock_timeout: float | None) -> None:
    """Estimate each market's volatility, jump intensity and jump size, and the markets'
    co-movement, from price history: the fund's market_observed marks and CSV candles. Each
    parameter is the largest of the full sample, the stressed window and the floor.

    \b
    Example:
      backstop risk calibrate --candles btc-1m.csv --out model.json
      backstop risk --positions book.jsonl --model model.json --paths 10000
    Exit codes: 0 model written, 2 bad input (`FILE: line N: field: reason`), nothing written.
    """
    use_marks = not candle_files if ledger_marks_ is None else ledger_marks_
    try:
        check_out(out, force)
        series: dict[str, Any] = {}
        origin: dict[str, str] = {}
        sources = []
        inputs = []
        if use_marks:  # the database is opened only now: candles alone touch no file
            inputs.append(_read_marks(db_url=db_url, fund_name=fund_name,
                                      lock_timeout=lock_timeout))
        for path in candle_files:
            candles, digest = read_candles(path)
            inputs.append(("candles", path.name, candles, digest))
        for kind, name, found, digest in inputs:
            for market in found:
                if market in series:
                    raise CalibFileError(f"{name}: market {market}: also in {origin[market]} "
                                         "(give each market's history once)")
                series[market], origin[market] = found[market], name
            sources.append({"kind": kind, "name": name, "sha256": digest,
                            "markets": sorted(found)})
        if not series:
            raise CalibFileError("no price history: the fund has no market_observed events "
                                 "and no --candles were given")
        floor = calibrate.Floor(floor_vol / 1440**0.5, floor_jump_intensity / 1440,
                                floor_jump_size)
        document = model.build(series, origin, sources, window, floor)
        model.check(document)
        write_model(document, out, force)
    except (CalibFileError, calibrate.CalibrationError, scenarios.ScenarioError) as error:
        raise InputExit(str(error)) from None
    if as_json:
        emit_json(document)
        return
    for market, row in document["markets"].items():
        click.echo(f"{market} ({row['source']}, {row['observations']} prices every "
                   f"{row['resolution_seconds']} s): vol {row['sigma_per_minute'] * 1440**0.5:.4g}"
                   f" a day, {row['jump_rate_per_minute'] * 1440:.4g} jumps a day of size "
                   f"{row['jump_size']:.4g}; stressed window {row['stressed_window'][0]} to "
                   f"{row['stressed_window'][1]}")
        if row["resolution_seconds"] > COARSE_SECONDS:
            click.echo(f"  warning: {market} is sampled every {row['resolution_seconds']} s: a "
                       "jump found there is a whole candle's move, not an intraday gap; "
                       "prefer one-minute data", err=True)
    click.echo(f"model written to {out}")


class _Quiet:
    """Stands in for the progress bar when it is not shown."""

    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *_: Any) -> None:
        return None

    def update(self, _: int) -> None:
        """Nothing to show."""
