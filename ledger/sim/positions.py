"""The simulator's opening book as a positions snapshot (schemas/positions.schema.json).

The same seeded draws as the first loop of `simulate`, so the snapshot is the book the demo's
crash starts from: what `backstop risk --positions` sizes the fund against.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from auditor.formats.wire import format_amount
from ledger.sim.simulate import (
    _SIZE_DECIMALS,
    SimulationConfig,
    _draw_position,
    _Market,
    _price,
    price_path,
)


def opening_positions(config: SimulationConfig) -> list[dict[str, Any]]:
    """One record per position open before the first step, in the simulator's draw order."""
    rng = random.Random(f"{config.seed}/traders")
    markets = [_Market(name, config) for name in config.markets]
    starts = [price_path(config, i)[0] for i in range(len(markets))]
    out = []
    for i in range(config.traders):
        m = i % len(markets)
        long = rng.random() < config.long_share
        pos = _draw_position(config, rng, markets[m], i, f"acct-{i + 1:06d}", long, starts[m],
                             0.004)
        out.append({"account": pos.account, "market": markets[m].name,
                    "side": "long" if long else "short",
                    "size": format_amount(pos.size, _SIZE_DECIMALS),
                    "entry_price": _price(markets[m], pos.entry),
                    "collateral": format_amount(pos.collateral, config.quote_decimals),
                    "maintenance_margin_rate": config.maintenance_rate,
                    "mark_price": _price(markets[m], starts[m])})
    return out


def write_positions(config: SimulationConfig, path: str | Path) -> int:
    """Write the opening book as JSONL; return the number of positions."""
    records = opening_positions(config)
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.writelines(json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n"
                       for record in records)
    return len(records)
