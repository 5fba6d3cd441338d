"""Read-side helpers: which funds exist, and rebuilding projections from the log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from auditor.verify.merkle import CompactRange
from ledger.service.application import Ledger, event_leaf
from ledger.store.projections import Projector
from ledger.store.tables import PROJECTION_TABLES, positions

REBUILD_PAGE = 5000


def fund_names(engine: Engine) -> list[str]:
    """Names of the funds in this database (those with projections)."""
    with engine.connect() as conn:
        return sorted(conn.execute(select(positions.c.fund)).scalars())


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
