"""Per-pool figures of a format 2 log, folded from its events (for the demo's pools report).

Balances come from `ledger.domain.bookkeeping.pool_moves`, the one statement of which event
moves which pool; the rest is read from the derived events' own fields: `deficit_covered/2`
(paid by its `pool`), `backstop_drawn/1` (paid by `pool` for `for_pool`),
`socialized_loss_assessed/2` (the liquidated market's pool), `clawback_charged/2`,
`capital_transferred/1`, and the ADL periods of `adl_started/1` / `adl_ended/1`.
Nothing is taken from the simulator.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from auditor.formats.wire import format_amount, parse_amount
from ledger.domain.bookkeeping import pool_moves


@dataclass
class PoolFigures:
    """One pool's figures in one asset (minor units), folded from the log."""

    pool: str
    asset: str
    decimals: int
    balance: int = 0
    injected: int = 0
    fees: int = 0  # fee_inflow/2 into the pool (trading-fee shares and liquidation fees)
    covered: int = 0  # deficits it paid (deficit_covered/2)
    covered_count: int = 0
    backstop_given: int = 0  # drawn from it for another pool (backstop_drawn/1, its `pool`)
    backstop_received: int = 0  # drawn for it from its backstop (`for_pool`)
    backstop_count: int = 0  # draws for it
    socialized: int = 0  # socialized_loss_assessed/2 of its markets' liquidations
    socialized_count: int = 0
    clawed_back: int = 0
    unresolved: int = 0
    transferred_in: int = 0
    transferred_out: int = 0
    adl: list[tuple[str, str | None, str | None]] = field(default_factory=list)  # (start, end, reason)

    def money(self, units: int) -> str:
        """`units` of the pool's asset as a decimal string with its symbol."""
        return f"{format_amount(units, self.decimals)} {self.asset}"


def fold_pools(lines: Iterable[bytes | str]) -> dict[str, PoolFigures]:
    """Fold a format 2 log's exported lines into each pool's figures, keyed by pool id. A pool's
    asset is the settlement asset of its markets (the first listed), or of its first money
    move."""
    places: dict[str, int] = {}
    pools: dict[str, PoolFigures] = {}
    asset_of: dict[str, str] = {}

    def figures(pool: str, asset: str) -> PoolFigures:
        if pool not in pools:
            pools[pool] = PoolFigures(pool, asset_of.get(pool, asset),
                                      places[asset_of.get(pool, asset)])
        return pools[pool]

    for line in lines:
        event = json.loads(line)
        kind, data = event["type"], event["data"]
        if kind == "fund_opened":
            places.update({a: spec["decimals"] for a, spec in data["assets"].items()})
            for spec in data["markets"].values():
                asset_of.setdefault(spec["pool"], spec["settlement"])
            for pool in data["pools"]:
                if pool in asset_of:
                    figures(pool, asset_of[pool])
            continue
        for pool, asset, units in pool_moves(kind, data, places):
            if asset == figures(pool, asset).asset:
                pools[pool].balance += units
        _fold_event(kind, data, event["time"], places, figures)
    return dict(sorted(pools.items()))


def _fold_event(kind: str, data: dict[str, Any], time: str, places: dict[str, int],
                figures: Any) -> None:
    """Add one event's own fields to the figures of the pools it names."""
    if kind in ("adl_started", "adl_ended"):
        adl = figures(data["pool"], data["asset"]).adl
        if kind == "adl_started":
            adl.append((time, None, None))
        elif adl and adl[-1][1] is None:
            adl[-1] = (adl[-1][0], time, data["reason"])
        return
    if "asset" not in data or kind not in _AMOUNTS:
        return
    units = parse_amount(data["amount"], places[data["asset"]])
    if kind == "capital_transferred":
        figures(data["from_pool"], data["asset"]).transferred_out += units
        figures(data["to_pool"], data["asset"]).transferred_in += units
        return
    target = figures(data["pool"], data["asset"])
    if kind == "capital_injected":
        target.injected += units
    elif kind == "fee_inflow":
        target.fees += units
    elif kind == "deficit_covered":
        target.covered += units
        target.covered_count += 1
    elif kind == "backstop_drawn":
        target.backstop_given += units
        receiver = figures(data["for_pool"], data["asset"])
        receiver.backstop_received += units
        receiver.backstop_count += 1
    elif kind == "socialized_loss_assessed":
        target.socialized += units
        target.socialized_count += 1
        target.unresolved += parse_amount(data["unresolved"], places[data["asset"]])
    elif kind == "clawback_charged":
        target.clawed_back += units


_AMOUNTS = frozenset({"capital_transferred", "capital_injected", "fee_inflow", "deficit_covered",
                      "backstop_drawn", "socialized_loss_assessed", "clawback_charged"})


def pool_lines(figures: dict[str, PoolFigures]) -> list[str]:
    """The report's lines: one block per pool."""
    out = []
    for f in figures.values():
        out.append(f"  pool {f.pool:<8} balance {f.money(f.balance)} "
                   f"(injected {f.money(f.injected)}, fees {f.money(f.fees)}, "
                   f"transfers in {f.money(f.transferred_in)} / out {f.money(f.transferred_out)})")
        out.append(f"    deficits paid     {f.covered_count}, {f.money(f.covered)}")
        out.append(f"    backstop          drawn for it {f.backstop_count}x, "
                   f"{f.money(f.backstop_received)}; drawn from it {f.money(f.backstop_given)}")
        out.append(f"    socialized        {f.socialized_count}x, {f.money(f.socialized)} "
                   f"(clawed back {f.money(f.clawed_back)}, unresolved {f.money(f.unresolved)})")
        for start, end, reason in f.adl:
            out.append(f"    ADL               {start} -> {end or 'still on'}"
                       + (f" ({reason})" if reason else ""))
    return out
