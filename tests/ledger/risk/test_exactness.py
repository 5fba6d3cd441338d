"""The vectorized engine against the plain reference, and against `backstop import` itself."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from ledger.domain.policy import Policy
from ledger.risk import engine, reference, scenarios
from ledger.risk.pathfacts import epoch, path_facts
from ledger.risk.positions import Book, build_book, read_positions
from ledger.service.application import Ledger
from ledger.service.importer import import_file
from ledger.sim.positions import opening_positions
from ledger.sim.simulate import SimulationConfig
from tests.factories import capital, fund_config
from tests.ledger.risk.helpers import POLICIES

START = 2_000_000  # 20,000.00 USDT


def _book(traders: int = 300) -> Book:
    raw = "".join(json.dumps(r) + "\n" for r in opening_positions(
        SimulationConfig(traders=traders))).encode()
    return build_book(read_positions(io.BytesIO(raw)), {"BTC-PERP": "USDT"}, {"USDT": 2})


def _paths(book: Book, count: int, steps: int) -> Any:
    gen = scenarios.Stochastic(vol=0.2, jump_intensity=3, jump_size=0.1)
    return scenarios.market_prices(next(gen.paths(11, count, steps)), book.start)


@pytest.mark.parametrize("name", sorted(POLICIES))
@pytest.mark.parametrize("slip_ppm", [0, 1000])
def test_vectorized_equals_reference(name: str, slip_ppm: int) -> None:
    """Every field of every path: fees, deficits, paid, socialized, final and lowest balance."""
    book = _book()
    prep = engine.prepare(book)
    policy = Policy.from_document(POLICIES[name], {"USDT": 2})
    slip = engine.Slippage(slip_ppm)
    prices = _paths(book, 12, 120)
    socialized = 0
    for j in range(prices.shape[0]):
        _, (fast,) = engine.run_path(prep, prices[j], slip, [(policy, START)])
        slow = reference.run_path(book, prices[j].tolist(), slip, policy, START)
        assert (fast.fees, fast.deficits, fast.paid, fast.socialized, fast.final, fast.lowest) \
            == (slow.fees, slow.deficits, slow.paid, slow.socialized, slow.final, slow.lowest)
        socialized += fast.socialized
    assert socialized > 0  # the sample reaches the sequential part of the waterfall


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_import_reconciles_sampled_paths(tmp_path: Path, name: str) -> None:
    """Each sampled path's liquidations, imported into a fresh fund with the same policy and
    starting balance, give the engine's balance and socialized total to the minor unit."""
    book = _book(200)
    prep = engine.prepare(book)
    policy = Policy.from_document(POLICIES[name], {"USDT": 2})
    prices = _paths(book, 3, 60)
    checked = socialized_total = 0
    for j in range(prices.shape[0]):
        ev, (out,) = engine.run_path(prep, prices[j], engine.Slippage(1000), [(policy, START)])
        socialized_total += out.socialized
        ledger = Ledger(f"sqlite:///{tmp_path / f'{j}.sqlite'}")
        try:
            ledger.open_fund(fund_config(**POLICIES[name]), "2025-12-31T00:00:00Z")
            facts = tmp_path / f"path-{j}.jsonl"
            records = [capital("cap-1", "20000.00"), *path_facts(book, prices[j], ev, epoch(), j)]
            facts.write_text("".join(json.dumps(r) + "\n" for r in records))
            import_file(ledger, "main", facts)
            fund = ledger.get_fund("main")
            assert fund.balances["USDT"] == out.final
            socialized = sum(int(line["data"]["amount"].replace(".", ""))
                             for line in ledger.log_events("main")
                             if line["type"] == "socialized_loss_assessed")
            assert socialized == out.socialized
            checked += len(ev.position)
        finally:
            ledger.close()
    assert checked > 0
    assert socialized_total > 0  # the fund ran short on a sampled path: the waterfall's edge
