"""Read-side use cases: which funds exist, a fund's balances and running totals, one
account's totals, and rebuilding projections from the log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from auditor.formats.wire import format_amount
from auditor.verify.merkle import CompactRange
from ledger.domain.poolfund import is_v2, pool_balances
from ledger.service.application import Ledger, event_leaf
from ledger.store import tables
from ledger.store.projections import Projector
from ledger.store.tables import ACCOUNT_FIELDS, PROJECTION_TABLES, TOTAL_FIELDS, positions

REBUILD_PAGE = 5000


def fund_names(engine: Engine) -> list[str]:
    """Names of the funds in this database (those with projections)."""
    with engine.connect() as conn:
        return sorted(conn.execute(select(positions.c.fund)).scalars())


def balances(ledger: Ledger, fund: str) -> dict[str, Any]:
    """What `backstop balances --json` prints: the fund's log size, policy version, event
    counts by type, and per asset its balance and running totals (TOTAL_FIELDS, in that
    order after "balance"), as decimal strings. Read from the projections. A format 2 fund
    adds "pools": per pool (creation order) its balance of every asset (they sum to the
    fund's), read from the fund's state."""
    state = ledger.get_fund(fund)
    with ledger.engine.connect() as conn:
        total_rows = {r.asset: r for r in conn.execute(
            select(tables.totals).where(tables.totals.c.fund == fund))}
        position = conn.execute(select(positions.c.position).where(
            positions.c.fund == fund)).scalar() or 0
        type_counts: dict[str, int] = {kind: n for kind, n in conn.execute(
            select(tables.counts.c.type, tables.counts.c.count).where(
                tables.counts.c.fund == fund))}
        balance_rows = {r.asset: int(r.units) for r in conn.execute(
            select(tables.balances).where(tables.balances.c.fund == fund))}
    doc: dict[str, Any] = {"fund": fund, "log_size": position,
                           "policy_version": state.policy_version, "events": type_counts,
                           "assets": {}}
    for asset, decimals in sorted(state.assets.items()):
        row = total_rows.get(asset)
        doc["assets"][asset] = {
            "balance": format_amount(balance_rows.get(asset, 0), decimals),
            **{f: format_amount(int(getattr(row, f)) if row else 0, decimals)
               for f in TOTAL_FIELDS}}
    if is_v2(state):
        doc["pools"] = pool_balances(state)
    return doc


def account_totals(ledger: Ledger, fund: str, account: str) -> dict[str, Any] | None:
    """What `backstop account --json` prints: per asset the fees the account contributed,
    the payouts it received and the clawbacks it paid; None when it has none recorded."""
    state = ledger.get_fund(fund)
    with ledger.engine.connect() as conn:
        rows = conn.execute(select(tables.accounts).where(
            tables.accounts.c.fund == fund, tables.accounts.c.account == account)).all()
    if not rows:
        return None
    return {"fund": fund, "account": account, "assets": {
        r.asset: {f: format_amount(int(getattr(r, f)), state.assets[r.asset])
                  for f in ACCOUNT_FIELDS} for r in rows}}


def _projection_rows(connection: Any, fund: str) -> dict[str, list[tuple[Any, ...]]]:
    return {table.name: sorted(tuple(row) for row in connection.execute(
        select(table).where(table.c.fund == fund))) for table in PROJECTION_TABLES}


def rebuild_projections(ledger: Ledger, fund: str) -> dict[str, Any]:
    """Recompute every projection of `fund` from its events, in one transaction.

    Also recomputes the log root from the events and checks it against the stored log tree.
    Returns {"events", "unchanged", "log_root_matches"}.
    """
    state = ledger.get_fund(fund)
    with ledger.transaction() as connection:
        before = _projection_rows(connection, fund)
        projector = Projector(connection, fund, {}, ledger.account_cache(fund))
        projector.reset()
        compact = CompactRange()
        page: list[dict[str, Any]] = []
        for event in ledger.log_events(fund, 0, state.log_size):
            page.append(event)
            compact.append(event_leaf(event))
            if len(page) >= REBUILD_PAGE:
                projector.apply(page)
                page = []
        projector.apply(page)
        after = _projection_rows(connection, fund)
        stored_root = ledger.log_tree(connection, fund).root(state.log_size)
    return {"events": state.log_size, "unchanged": before == after,
            "log_root_matches": stored_root == compact.root()}
