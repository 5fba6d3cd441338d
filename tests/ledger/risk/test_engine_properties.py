"""Engine properties beyond single paths: the required-size curve, several markets, the
demo's positions snapshot."""

from __future__ import annotations

import io
import json
from pathlib import Path

from ledger.domain.policy import Policy
from ledger.risk import engine, reference, scenarios
from ledger.risk.positions import build_book, read_positions
from ledger.sim.positions import opening_positions, write_positions
from ledger.sim.simulate import SimulationConfig, simulate
from tests.ledger.risk.helpers import POLICIES


def _book(records: list[dict], markets: dict[str, str]):  # type: ignore[no-untyped-def]
    raw = "".join(json.dumps(r) + "\n" for r in records).encode()
    return build_book(read_positions(io.BytesIO(raw)), markets, {"USDT": 2})


def test_required_size_is_the_socialization_boundary() -> None:
    """A path socializes with starting balance S iff S < required (or a deficit is above the
    per-event cap): checked at required - 1, required and required + 1 on every path."""
    book = _book(opening_positions(SimulationConfig(traders=300)), {"BTC-PERP": "USDT"})
    prep = engine.prepare(book)
    policy = Policy.from_document(POLICIES["fixed, reserve and cap"], {"USDT": 2})
    gen = scenarios.Stochastic(vol=0.2, jump_intensity=3, jump_size=0.1)
    prices = scenarios.market_prices(next(gen.paths(5, 10, 120)), book.start)
    boundaries = 0
    for j in range(prices.shape[0]):
        ev = engine.events(prep, prices[j], engine.Slippage(1000))
        fee = engine.fees(prep, ev, policy, prices[j])
        first = engine.waterfall(fee, ev.deficit, 0, 100_000, 500_000)
        for start in (first.required - 1, first.required, first.required + 1):
            if start < 0:
                continue
            out = engine.waterfall(fee, ev.deficit, start, 100_000, 500_000)
            assert (out.socialized > 0) == (start < first.required or out.forced)
        boundaries += first.required > 0 and not first.forced
    assert boundaries > 0


def test_two_markets_merge_in_time_order_like_the_reference() -> None:
    """Odd positions moved to ETH-PERP at half the prices: the engine's event order across
    markets and sides, fees and waterfall equal the reference's on every path."""
    records = opening_positions(SimulationConfig(traders=200))
    for i, record in enumerate(records):
        if i % 2:
            record["market"] = "ETH-PERP"
            for key in ("entry_price", "mark_price"):
                record[key] = f"{float(record[key]) / 2:.2f}"
            record["collateral"] = f"{float(record['collateral']) / 2:.2f}"
    book = _book(records, {"BTC-PERP": "USDT", "ETH-PERP": "USDT"})
    assert book.markets == ["BTC-PERP", "ETH-PERP"] and list(book.start) == [793800, 396900]
    prep = engine.prepare(book)
    for name in sorted(POLICIES):
        policy = Policy.from_document(POLICIES[name], {"USDT": 2})
        gen = scenarios.Stochastic(vol=0.2, jump_intensity=3, jump_size=0.1)
        prices = scenarios.market_prices(next(gen.paths(9, 6, 90)), book.start)
        for j in range(prices.shape[0]):
            ev, (fast,) = engine.run_path(prep, prices[j], engine.Slippage(1000),
                                          [(policy, 1_000_000)])
            slow = reference.run_path(book, prices[j].tolist(), engine.Slippage(1000), policy,
                                      1_000_000)
            ref_order = [i for i, *_ in reference.liquidations(book, prices[j].tolist(),
                                                               engine.Slippage(1000))]
            assert ev.position.tolist() == ref_order
            assert (fast.fees, fast.deficits, fast.final, fast.socialized) == \
                (slow.fees, slow.deficits, slow.final, slow.socialized)


def test_positions_snapshot_is_the_simulators_opening_book(tmp_path: Path) -> None:
    """The first liquidations of a simulated crash (before anyone could re-enter) are
    positions of the snapshot: same account, side, size, entry price and collateral."""
    config = SimulationConfig(seed=3, traders=400, steps=96)
    path = tmp_path / "book.jsonl"
    assert write_positions(config, path) == 400
    book = {r["account"]: r for r in map(json.loads, path.read_text().splitlines())}
    liquidations = [f for f in simulate(config) if f["type"] == "liquidation"][:20]
    assert liquidations
    for fact in liquidations:
        record = book[fact["account"]]
        assert {k: record[k] for k in ("side", "size", "entry_price", "collateral")} == \
            {k: fact[k] for k in ("side", "size", "entry_price", "collateral")}


def test_rough_shape_variants_keep_the_anchors_and_the_seed() -> None:
    """Variants pass through every anchor of the shape (the documented moves hold), differ
    between anchors, and one seed gives the same variants."""
    from ledger.risk.scenarios import shape_path, shape_variants, shapes

    name, steps = "btc-2020-03-12", 280
    paths = shape_variants(name, steps, 5, 0.01, 3.0, seed=4)
    assert paths.shape == (5, steps + 1)
    smooth = shape_path(name, steps)[0]
    assert (paths[0] == smooth).all()
    anchors = shapes()[name]["anchors"]
    at = [round(hour / anchors[-1][0] * steps) for hour, _ in anchors]
    for row in paths[1:]:
        assert abs(row[at] / smooth[at] - 1).max() < 1e-12
        assert abs(row / smooth - 1).max() > 0.01
    assert (shape_variants(name, steps, 5, 0.01, 3.0, seed=4) == paths).all()
    assert not (shape_variants(name, steps, 5, 0.01, 3.0, seed=5) == paths).all()
