"""A large liquidation in a v2 log (V2-CONTRACT.md: v1.1's rule with the head =
`liquidation_settled/2` data minus counterparties plus counterparty_count and
counterparties_sha256): 650 counterparties in 21 chunks, joined and re-derived as /2."""

from __future__ import annotations

import copy

import pytest

from auditor.formats.bounds import counterparties_digest
from auditor.replay import Discrepancy
from auditor.replays import replay
from tests.auditor.v2_kit import DAY, Event, lines
from tests.auditor.v2_logs import T1_EVENTS, T1_FUND, covered, t1_liquidation

CPS = [{"account": f"acct-{i:04d}", "size": "1", "entry_price": "25000",
        "unrealized_pnl": "10.00", "collateral": "1000"} for i in range(650)]


def large_log() -> list[Event]:
    """T1's first three events, then its first liquidation (main pays the whole 200.00, so
    the counterparties pay nothing) with 650 counterparties: a head and 20 chunks of 32 and
    one of 10."""
    at = DAY + "02:00:00Z"
    head = {k: v for k, v in t1_liquidation("28800", "200.00").items() if k != "counterparties"}
    head.update(counterparty_count=len(CPS), counterparties_sha256=counterparties_digest(CPS))
    chunks: list[Event] = [("counterparties_listed", 1, at, "liq-1",
                            {"chunk": k, "counterparties": CPS[32 * k:32 * k + 32]})
                           for k in range(21)]
    return [*copy.deepcopy(T1_EVENTS[:3]), ("large_liquidation_settled", 2, at, "liq-1", head),
            *chunks, ("deficit_covered", 2, at, "liq-1", covered("200.00"))]


def test_a_large_liquidation_2_is_joined_and_re_derived() -> None:
    result = replay(lines(large_log(), T1_FUND))
    assert (result.count, result.liquidations) == (26, 1)
    assert result.pools == {"main": {"USDT": 80000}}


def test_a_large_liquidation_1_is_not_a_version_of_a_v2_log() -> None:
    events = large_log()
    typ, _, time, ref, data = events[3]
    events[3] = (typ, 1, time, ref, data)
    with pytest.raises(Discrepancy) as caught:
        replay(lines(events, T1_FUND))
    assert str(caught.value) == ("event 3: version: 1 is not a version of "
                                 "large_liquidation_settled in a v2 region")
