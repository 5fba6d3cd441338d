"""The demo's sizing headline: `backstop risk` on the demo's opening book and crash shape.

Writes the simulator's opening book as a positions snapshot, then sizes the demo fund
(its initial capital, the demo policy) against the demo's crash profile and a small set of
stochastic paths, so the demo stays fast.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

from auditor.formats.wire import format_amount, parse_amount_lenient
from ledger.domain.policy import Policy
from ledger.risk import sizing
from ledger.risk.positions import build_book, read_positions
from ledger.sim.positions import write_positions
from ledger.sim.simulate import SimulationConfig, fund_config, price_path

DEMO_PATHS = 200


def sizing_report(config: SimulationConfig, workdir: Path,
                  paths: int = DEMO_PATHS) -> dict[str, Any]:
    """Size the demo fund; the positions snapshot is written to workdir/positions.jsonl."""
    book_path = workdir / "positions.jsonl"
    write_positions(config, book_path)
    settings = fund_config(config)
    decimals = {config.quote: config.quote_decimals}
    with book_path.open("rb") as stream:
        book = build_book(read_positions(stream), {m: config.quote for m in config.markets},
                          decimals)
    policy = sizing.NamedPolicy("demo", Policy.from_document(settings["policy"], decimals))
    crash = workdir / "crash-path.csv"  # the demo's own marks, one row per margin check
    places = len(config.tick.partition(".")[2])
    marks = price_path(config)
    crash.write_text(f"{config.profile}\n" + "".join(f"{format_amount(p, places)}\n"
                                                     for p in marks))
    run = sizing.RiskConfig(scenarios=(str(crash), sizing.STOCHASTIC), paths=paths,
                            horizon=config.steps * config.checks_per_step, seed=config.seed,
                            slippage=Fraction(1, 1000))
    balance = parse_amount_lenient(config.initial_fund, config.quote_decimals)
    results = sizing.simulate(book, [policy], balance, run)
    doc = sizing.report(book, [policy], balance, run, results)
    doc["fund"] = settings["fund"]
    return doc


def headline(doc: dict[str, Any]) -> list[str]:
    """Two report lines: the recommendation and the crash shape's own outcome."""
    asset = doc["asset"]
    policy = doc["policies"][0]
    crash = next(((name, row) for name, row in doc["scenarios"].items()
                  if name != sizing.STOCHASTIC), None)
    coverage = "n/a" if doc["coverage"] is None else f"{float(doc['coverage']) * 100:.1f}%"
    lines = [(f"  sizing              recommended {doc['recommended_size']} {asset} (ES 99.9% of "
             f"deficits {doc['deficits']['99.9']['es']}, cover-2 {doc['cover_2']}, "
             f"{doc['paths']} paths); the fund's {doc['balance']} covers {coverage}; "
             f"P(socialization) {float(policy['probability_of_socialization']):.1%}")]
    if crash is not None:
        name, row = crash
        lines.append(f"  the demo's path     {name}: deficits {row['worst_deficits']} {asset}, "
                     f"socialized {row['worst_socialized']['demo']} (the opening book; no re-entry)")
    return lines
