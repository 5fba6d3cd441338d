"""Which event moves which balance: the one statement of the fund's bookkeeping.

`moves(type, data, decimals)` says, for one fund event, how much each balance changes, in
exact integer minor units. Every reader of the log folds these moves: the aggregate
(`ledger.domain.fund`: its balances and committed totals), the projections
(`ledger.store.projections`), the site's figures (`ledger.service.site_figures`) and the demo's
report and chart (`ledger.sim.demo`). The auditor re-derives the same bookkeeping on its own
(`auditor/replay.py`, from schemas/README.md); `tests/e2e/test_rules_differential.py` checks
that the two agree.

The balances, per asset:
- `FUND`: the fund's balance, the one signed move (a payout or withdrawal is negative);
- `TOTALS`: running totals over the log, each only ever added to (the projections' table);
- `ACCOUNT_TOTALS`: a move that also names the account (fees, payouts, clawbacks of one
  account; summed over accounts, the totals a snapshot's account tree commits to).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from auditor.formats.wire import parse_amount

FUND = "fund"
# In the column order of the projections' totals table (ledger.store.tables).
TOTALS = ("inflow", "covered", "socialized", "clawed_back", "unresolved", "injected",
          "withdrawn", "rebalanced_in", "rebalanced_out")
ACCOUNT_TOTALS = ("fees", "payouts", "clawbacks")

# Event types that move no balance (a liquidation's money moves are its derived events).
UNMOVING = frozenset({"fund_opened", "policy_set", "liquidation_settled", "large_liquidation_settled",
                      "counterparties_listed", "market_observed",
                      # format 2: the structure and the ADL state (a transfer moves two pools'
                      # balances, not the fund's: see `pool_moves`)
                      "pool_created", "market_assigned", "capital_transferred", "claim_cap_set",
                      "adl_started", "adl_ended", "asset_priced"})


# One balance's change: (asset, name, units, account): `units` added to balance `name` of
# `asset`, of `account` for an ACCOUNT_TOTALS name (else None). A plain tuple: every event
# of an import is booked twice (aggregate, projections), and a named tuple costs more to build.
Move = tuple[str, str, int, str | None]
Book = Callable[[Mapping[str, Any], Mapping[str, int]], tuple[Move, ...]]

# An event's amounts are parsed by every reader of the same batch (the aggregate applying it,
# then the projections): cached by (text, decimals). Event amounts are always strings with
# exactly the asset's decimals (format_amount's output), so every argument is hashable.
_units = lru_cache(maxsize=8192)(parse_amount)


def _fee(data: Mapping[str, Any], decimals: Mapping[str, int]) -> tuple[Move, ...]:
    asset, account = data["asset"], data.get("account")
    units = _units(data["amount"], decimals[asset])
    if account is None:  # a fee with no account (a venue's fee share) is no account's
        return (asset, FUND, units, None), (asset, "inflow", units, None)
    return ((asset, FUND, units, None), (asset, "inflow", units, None),
            (asset, "fees", units, account))


def _covered(data: Mapping[str, Any], decimals: Mapping[str, int]) -> tuple[Move, ...]:
    asset = data["asset"]
    units = _units(data["amount"], decimals[asset])
    return ((asset, FUND, -units, None), (asset, "covered", units, None),
            (asset, "payouts", units, data["account"]))


def _drawn(data: Mapping[str, Any], decimals: Mapping[str, int]) -> tuple[Move, ...]:
    """Format 2: a backstop pool's payment for a deficit is a payout, as `deficit_covered`."""
    asset = data["asset"]
    units = _units(data["amount"], decimals[asset])
    return ((asset, FUND, -units, None), (asset, "covered", units, None),
            (asset, "payouts", units, data["account"]))


def _socialized(data: Mapping[str, Any], decimals: Mapping[str, int]) -> tuple[Move, ...]:
    asset = data["asset"]
    places = decimals[asset]
    return ((asset, "socialized", _units(data["amount"], places), None),
            (asset, "unresolved", _units(data["unresolved"], places), None))


def _clawback(data: Mapping[str, Any], decimals: Mapping[str, int]) -> tuple[Move, ...]:
    asset = data["asset"]
    units = _units(data["amount"], decimals[asset])
    return (asset, "clawed_back", units, None), (asset, "clawbacks", units, data["account"])


def _injected(data: Mapping[str, Any], decimals: Mapping[str, int]) -> tuple[Move, ...]:
    asset = data["asset"]
    units = _units(data["amount"], decimals[asset])
    return (asset, FUND, units, None), (asset, "injected", units, None)


def _withdrawn(data: Mapping[str, Any], decimals: Mapping[str, int]) -> tuple[Move, ...]:
    asset = data["asset"]
    units = _units(data["amount"], decimals[asset])
    return (asset, FUND, -units, None), (asset, "withdrawn", units, None)


def _rebalanced(data: Mapping[str, Any], decimals: Mapping[str, int]) -> tuple[Move, ...]:
    source, target = data["from_asset"], data["to_asset"]
    out = _units(data["from_amount"], decimals[source])
    into = _units(data["to_amount"], decimals[target])
    return ((source, FUND, -out, None), (source, "rebalanced_out", out, None),
            (target, FUND, into, None), (target, "rebalanced_in", into, None))


_MOVES: dict[str, Book] = {
    "fee_inflow": _fee,
    "deficit_covered": _covered,
    "backstop_drawn": _drawn,
    "socialized_loss_assessed": _socialized,
    "clawback_charged": _clawback,
    "capital_injected": _injected,
    "capital_withdrawn": _withdrawn,
    "reserve_rebalanced": _rebalanced,
    # format 2: a pool's conversion moves the fund's two balances as a v1 rebalance does
    "asset_converted": _rebalanced,
}
MOVING = frozenset(_MOVES)  # event types that move a balance


def moves(kind: str, data: Mapping[str, Any], decimals: Mapping[str, int]) -> tuple[Move, ...]:
    """The balance moves of one fund event of type `kind` with payload `data`; `decimals`
    maps each asset to its decimals. A type that moves nothing (UNMOVING, or one this module
    does not know) gives (). A payload that cannot be read raises KeyError (a missing field
    or an unknown asset) or ValueError (an amount not in the asset's exact wire form)."""
    book = _MOVES.get(kind)
    return () if book is None else book(data, decimals)


# Format 2: the signed move of each pool balance, (pool, asset, units), per event type.
PoolMove = tuple[str, str, int]
_POOL_SIGN = {"fee_inflow": 1, "capital_injected": 1, "capital_withdrawn": -1,
              "deficit_covered": -1, "backstop_drawn": -1}


def pool_moves(kind: str, data: Mapping[str, Any],
               decimals: Mapping[str, int]) -> tuple[PoolMove, ...]:
    """The pool-balance moves of one event of a format 2 log (V2-CONTRACT.md "Balances"):
    + `capital_injected/2`, `fee_inflow/2`, a transfer's `to_pool`; - `capital_withdrawn/2`,
    `deficit_covered/2`, `backstop_drawn/1` (its `pool`, the payer), a transfer's
    `from_pool`; an `asset_converted/1`'s pool, - `from_amount` of `from_asset` and +
    `to_amount` of `to_asset`. Summed over pools they are the event's `FUND` moves. A v1 event
    (no `pool`) and a type that moves no pool give ()."""
    if kind == "asset_converted":
        source, target, pool = data["from_asset"], data["to_asset"], data["pool"]
        return ((pool, source, -_units(data["from_amount"], decimals[source])),
                (pool, target, _units(data["to_amount"], decimals[target])))
    if kind == "capital_transferred":
        asset = data["asset"]
        units = _units(data["amount"], decimals[asset])
        return (data["from_pool"], asset, -units), (data["to_pool"], asset, units)
    sign = _POOL_SIGN.get(kind)
    if sign is None or "pool" not in data:
        return ()
    asset = data["asset"]
    return ((data["pool"], asset, sign * _units(data["amount"], decimals[asset])),)
