"""Shared setup of the publishing benchmarks: the simulated crash day's facts and a fresh
SQLite fund to import them into, with an operator key to sign snapshots."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from auditor.verify.keys import Signer
from ledger.service.application import Ledger
from ledger.service.signing import generate_signer
from ledger.sim.simulate import SimulationConfig, fund_config, write_facts


@dataclass
class CrashDay:
    lines: list[bytes]  # the facts, one JSONL line each, in file order
    ledger: Ledger
    fund: str
    signer: Signer


def crash_day(work: Path, traders: int, steps: int) -> CrashDay:
    """Simulate the day into `work`/facts.jsonl and open its fund in `work`/ledger.sqlite."""
    config = SimulationConfig(traders=traders, steps=steps)
    summary = write_facts(config, work / "facts.jsonl")
    ledger = Ledger(f"sqlite:///{work / 'ledger.sqlite'}")
    settings = fund_config(config)
    ledger.open_fund(settings, summary.times[0])
    return CrashDay(lines=(work / "facts.jsonl").read_bytes().splitlines(keepends=True),
                    ledger=ledger, fund=settings["fund"],
                    signer=generate_signer("bench.backstop.example"))
