"""`backstop simulate`: write a simulated crash as exchange facts (JSONL)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from auditor.formats.wire import parse_decimal
from ledger.cli.options import InputExit, force_option, refuse_overwrite
from ledger.sim.simulate import PROFILES, SimulationConfig, fund_config, write_facts


@click.command("simulate")
@click.option("--seed", type=int, default=SimulationConfig.seed, show_default=True,
              help="Random seed; the same seed writes the same bytes.")
@click.option("--traders", type=click.IntRange(min=2), default=SimulationConfig.traders,
              show_default=True, help="Number of trader accounts.")
@click.option("--profile", type=click.Choice(PROFILES), default=SimulationConfig.profile,
              show_default=True, help="Price path shape.")
@click.option("--steps", type=click.IntRange(min=2), default=SimulationConfig.steps,
              show_default=True, help="5-minute steps after the opening observation.")
@click.option("--markets", default=",".join(SimulationConfig.markets), show_default=True,
              help="Comma-separated market names (all quoted in USDT).")
@click.option("--tick", default=SimulationConfig.tick, show_default=True,
              help="Price tick, e.g. 0.5 or 0.01.")
@click.option("--initial-fund", default=SimulationConfig.initial_fund, show_default=True,
              help="Operator capital injected before the first step.")
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True), required=True,
              help="Facts file to write (JSONL).")
@click.option("--fund-config", "fund_config_path", type=click.Path(dir_okay=False, writable=True),
              default=None, help="Also write the fund configuration for `backstop init`.")
@force_option
def simulate_command(seed: int, traders: int, profile: str, steps: int, markets: str,
                     tick: str, initial_fund: str, out: str,
                     fund_config_path: str | None, force: bool) -> None:
    """Simulate a leveraged market through a crash and write its exchange facts."""
    refuse_overwrite("--out", Path(out), force)
    if fund_config_path:
        refuse_overwrite("--fund-config", Path(fund_config_path), force)
    names = tuple(name.strip() for name in markets.split(",") if name.strip())
    try:
        config = SimulationConfig(seed=seed, traders=traders, profile=profile, steps=steps,
                                  markets=names, tick=tick, initial_fund=initial_fund)
    except ValueError as error:
        raise click.BadParameter(str(error)) from error
    try:
        summary = write_facts(config, out)
        if fund_config_path:
            with open(fund_config_path, "w", encoding="utf-8", newline="\n") as handle:
                json.dump(fund_config(config), handle, indent=2, sort_keys=True)
                handle.write("\n")
    except OSError as error:  # a missing folder, no permission
        raise InputExit(f"{error.filename or out}: cannot write ({error.strerror or error})") from None
    counts = ", ".join(f"{n} {kind}" for kind, n in summary.facts_by_type.items())
    moves = "; ".join(f"{m} {p[0]} -> min {min(p, key=parse_decimal)} -> {p[-1]}"
                      for m, p in summary.prices.items())
    click.echo(
        f"Wrote {summary.facts} facts to {out} ({counts}). "
        f"{summary.liquidations} liquidations, {summary.deficits} below bankruptcy with "
        f"deficits of {summary.deficit_total} {config.quote} against a fund of "
        f"{summary.initial_fund} plus {summary.trading_fee_total} trading fees and "
        f"{summary.liquidation_fee_total} liquidation fees (estimated shortfall "
        f"{summary.shortfall_estimate}). Price {moves}."
    )
