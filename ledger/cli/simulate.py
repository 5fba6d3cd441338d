"""`backstop simulate`: write a simulated crash as exchange facts (JSONL)."""

from __future__ import annotations

import io
from pathlib import Path

import click

from auditor.formats.wire import parse_decimal
from ledger.cli.options import InputExit, force_option, shown_servers
from ledger.service.outputs import OutputExists, check_outputs, staged_outputs, write_outputs
from ledger.sim.poolsim import STRUCTURES, pools_fund_config_bytes, stream_pool_facts
from ledger.sim.simulate import PROFILES, SimulationConfig, fund_config_bytes, stream_facts


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
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Facts file to write (JSONL). Required unless --to-nats.")
@click.option("--to-nats", "to_nats", metavar="SUBJECT", default=None,
              help="Publish the facts to this NATS JetStream subject instead (one fact per "
                   "message; a stream must store the subject), for `backstop follow`.")
@click.option("--rate", type=click.FloatRange(0), default=0.0, show_default=True,
              help="With --to-nats: facts per second (0: as fast as the stream takes them).")
@click.option("--servers", default="nats://127.0.0.1:4222", show_default=True,
              envvar="BACKSTOP_NATS_URL", show_envvar=True, help="With --to-nats: NATS URL.")
@click.option("--fund-config", "fund_config_path", type=click.Path(dir_okay=False, writable=True),
              default=None, help="Also write the fund configuration for `backstop init`.")
@click.option("--structure", type=click.Choice(STRUCTURES), default="single", show_default=True,
              help="single: one pool (a format 1 fund); pools: BTC-PERP and ETH-PERP in a "
                   "shared pool, ALT-PERP in an isolated pool with a backstop, an ADL rule and "
                   "a claim cap, the inverse XBTUSD in a BTC pool (a format 2 fund), through a "
                   "correlated alt-coin crash (ignores --profile, --markets, --tick and "
                   "--initial-fund).")
@force_option
def simulate_command(seed: int, traders: int, profile: str, steps: int, markets: str,
                     tick: str, initial_fund: str, out: str | None, to_nats: str | None,
                     rate: float, servers: str, fund_config_path: str | None,
                     structure: str, force: bool) -> None:
    """Simulate a leveraged market through a crash and write its exchange facts."""
    if (out is None) == (to_nats is None):
        raise InputExit("give one of --out FILE and --to-nats SUBJECT")
    outputs = [("--out", out), ("--fund-config", fund_config_path)]
    paths = [(option, Path(path)) for option, path in outputs if path is not None]
    _check_outputs(paths, force)
    names = tuple(name.strip() for name in markets.split(",") if name.strip())
    try:
        config = SimulationConfig(seed=seed, traders=traders, profile=profile, steps=steps,
                                  markets=names, tick=tick, initial_fund=initial_fund)
    except ValueError as error:
        raise click.BadParameter(str(error)) from error
    if to_nats is not None:
        _to_nats(config, servers, to_nats, rate, fund_config_path, force, structure)
        return
    assert out is not None
    if structure == "pools":
        _write_pools(config, out, paths, fund_config_path, force)
        return
    try:
        with staged_outputs([path for _, path in paths], force) as streams:
            text = io.TextIOWrapper(streams[0], encoding="utf-8", newline="\n")
            summary = stream_facts(config, text)
            text.flush()
            text.detach()  # the staged stream is closed by staged_outputs
            if fund_config_path:
                streams[1].write(fund_config_bytes(config))
    except OutputExists as error:  # appeared since the check
        raise InputExit(str(error)) from None
    except OSError as error:  # a missing folder, no permission, a full disk
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


def _check_outputs(paths: list[tuple[str, Path]], force: bool) -> None:
    """Refuse, before simulating, an output that may not be written: a symlink (--force or
    not), or a taken path without --force; one line naming the option."""
    for option, path in paths:
        try:
            check_outputs([path], force)
        except OutputExists as error:
            raise InputExit(f"{option} {error}") from None


def _write_pools(config: SimulationConfig, out: str, paths: list[tuple[str, Path]],
                 fund_config_path: str | None, force: bool) -> None:
    """`--structure pools` to a file: the facts, and the format 2 fund config if asked."""
    try:
        with staged_outputs([path for _, path in paths], force) as streams:
            text = io.TextIOWrapper(streams[0], encoding="utf-8", newline="\n")
            counts = stream_pool_facts(config, text)
            text.flush()
            text.detach()  # the staged stream is closed by staged_outputs
            if fund_config_path:
                streams[1].write(pools_fund_config_bytes())
    except OutputExists as error:  # appeared since the check
        raise InputExit(str(error)) from None
    except OSError as error:
        raise InputExit(f"{error.filename or out}: cannot write ({error.strerror or error})") from None
    listed = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    click.echo(f"Wrote {sum(counts.values())} facts to {out} ({listed}): pools shared, alt, "
               "btc (a format 2 fund: init it with --fund-config).")


def _to_nats(config: SimulationConfig, servers: str, subject: str, rate: float,
             fund_config_path: str | None, force: bool, structure: str = "single") -> None:
    """Publish the simulation's facts to `subject` (`backstop simulate --to-nats`)."""
    import asyncio

    from ledger.sim.bus import publish_lines
    from ledger.sim.poolsim import simulate_pools
    from ledger.sim.simulate import encode_fact, simulate

    pools = structure == "pools"
    if fund_config_path:
        config_bytes = pools_fund_config_bytes() if pools else fund_config_bytes(config)
        try:
            write_outputs([(Path(fund_config_path), config_bytes)], force)
        except OutputExists as error:
            raise InputExit(f"--fund-config {error}") from None
        except OSError as error:
            raise InputExit(f"--fund-config {fund_config_path}: cannot write "
                            f"({error.strerror or error})") from None
    facts = simulate_pools(config) if pools else simulate(config)
    lines = (encode_fact(fact).encode() for fact in facts)
    try:
        count = asyncio.run(publish_lines(lines, servers=servers, subject=subject, rate=rate))
    except Exception as error:
        raise InputExit(f"--to-nats {subject}: cannot publish to {shown_servers(servers)} "
                        f"({type(error).__name__}: {error})") from None
    click.echo(f"Published {count} facts to {subject} on {shown_servers(servers)}.")
