"""Vector T1 (schemas/README.md "ADL trigger") as a whole v2 log (tests/auditor/v2_logs.py):
the auditor re-derives the `adl_started/1` at index 7 and the `adl_ended/1` at index 11."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.auditor.v2_kit import DAY, Event, lines, replay, write
from tests.auditor.v2_logs import (
    T1_ENDED,
    T1_EVENTS,
    T1_FUND,
    T1_METRICS,
    T1_POLICY,
    T1_RESERVES,
    T1_STARTED,
    T1_TOTALS,
)


def test_t1_verifies(tmp_path: Path) -> None:
    events, snap, key = write(tmp_path, T1_EVENTS, T1_FUND, reserves=T1_RESERVES,
                              totals=T1_TOTALS, accounts=1, policy=T1_POLICY, metrics=T1_METRICS)
    code, doc = replay(events, snap, key)
    assert (code, doc["reason"]) == (0, None)
    assert doc["pools"] == {"main": {"USDT": "710.00"}}
    assert (doc["events"], doc["liquidations"]) == (12, 2)


def test_t1_ends_out_of_adl_and_in_adl_when_cut_before_the_end() -> None:
    from auditor.replays import replay as run

    assert run(lines(T1_EVENTS, T1_FUND)).adl_pools == []
    assert run(lines(T1_EVENTS[:10], T1_FUND)).adl_pools == ["main"]


def in_adl_liquidation() -> list[Event]:
    """T1 with a liquidation at 04:00, while `main` is in ADL (after index 7).

    acct-2 long 1 @ 30000, collateral 1000, fill 28900: B = 29000, delta = -100.00. ADL mode:
    the ranking runs first on the whole 100.00: C1 (pnl 40.00) pays 40.00, quantity 40 / |28900
    - 29000| = 0.4 at 29000; rest 60.00 from main (available 650.00: not exhausted, no draw);
    unresolved 0.00, socialized 40.00 + 0.00, method adl. main: 650.00 - 60.00 = 590.00."""
    liq = {"account": "acct-2", "market": "ETH-PERP", "side": "long", "size": "1",
           "entry_price": "30000", "collateral": "1000", "fill_price": "28900",
           "mark_price": "28900",
           "counterparties": [{"account": "C1", "size": "1", "entry_price": "25000",
                               "unrealized_pnl": "40.00", "collateral": "1000"}],
           "asset": "USDT", "policy_version": 1, "pool": "main",
           "outcome": {"bankruptcy_price": "29000.00000000", "delta": "-100.00", "fee": "0.00",
                       "remainder": "0.00", "share": "1.000000000000",
                       "volatility": "0.000000000000", "deficit": "100.00",
                       "fund_payment": "60.00", "socialized": "40.00", "unresolved": "0.00",
                       "method": "adl", "pool": "main", "adl_mode": True,
                       "claim_remaining": None, "backstop_pool": None,
                       "backstop_payment": "0.00", "layers": []}}
    where = {"pool": "main", "market": "ETH-PERP", "asset": "USDT"}
    at = DAY + "04:00:00Z"
    events = copy.deepcopy(T1_EVENTS)
    events[8:8] = [
        ("liquidation_settled", 2, at, "liq-3", liq),
        ("deficit_covered", 2, at, "liq-3", {**where, "amount": "60.00", "account": "acct-2"}),
        ("socialized_loss_assessed", 2, at, "liq-3", {**where, "amount": "40.00",
                                                     "method": "adl", "unresolved": "0.00"}),
        ("clawback_charged", 2, at, "liq-3", {**where, "account": "C1", "amount": "40.00",
                                             "method": "adl", "adl_quantity": "0.40000000",
                                             "adl_price": "29000.00000000"}),
    ]
    # At 10:30 (index 14, t - W = 02:30): s = 4, peak 800.00 (index 4) over 4..14; main holds
    # 590.00 + 60.00 = 650.00: (650 - 800)/800 = -0.1875 > -0.25: recovered.
    typ, version, time, ref, _ = events[15]
    events[15] = (typ, version, time, ref, {**T1_ENDED, "balance": "650.00",
                                            "ratio": "-0.187500000000"})
    return events


def test_a_liquidation_in_adl_mode_ranks_first_then_the_pool_pays(tmp_path: Path) -> None:
    totals = {"USDT": {"fees": "0.00", "payouts": "410.00", "clawbacks": "40.00"}}
    events, snap, key = write(tmp_path, in_adl_liquidation(), T1_FUND,
                              reserves={"USDT": "650.00"}, totals=totals, accounts=3,
                              policy=T1_POLICY, metrics=T1_METRICS)
    code, doc = replay(events, snap, key)
    assert (code, doc["reason"]) == (0, None)
    assert doc["pools"] == {"main": {"USDT": "650.00"}}


def test_adl_mode_recorded_as_normal_mode_is_refused() -> None:
    from auditor.replay import Discrepancy
    from auditor.replays import replay as run

    events = in_adl_liquidation()
    typ, version, time, ref, data = events[8]
    data = copy.deepcopy(data)
    data["outcome"]["adl_mode"] = False
    events[8] = (typ, version, time, ref, data)
    with pytest.raises(Discrepancy) as caught:
        run(lines(events, T1_FUND))
    assert str(caught.value) == "event 8: data.outcome.adl_mode: expected True, got False"


def test_t2_a_balance_at_the_minimum_starts_no_adl() -> None:
    """T2: a withdrawal leaving main 90.00 under peak 1000.00 (ratio -0.91) at 01:00: 90.00 is
    not above the minimum 100.00, so no adl_started; a forged one is refused, saying why."""
    from auditor.replay import Discrepancy
    from auditor.replays import replay as run

    withdraw = ("capital_withdrawn", 2, DAY + "01:00:00Z", "cap-2",
                {"asset": "USDT", "amount": "910.00", "source": "operator", "pool": "main"})
    events = [*T1_EVENTS[:3], withdraw]
    assert run(lines(events, T1_FUND)).adl_pools == []
    forged = {**T1_STARTED, "balance": "90.00", "ratio": "-0.910000000000"}
    events.append(("adl_started", 1, DAY + "01:00:00Z", "cap-2", forged))
    with pytest.raises(Discrepancy) as caught:
        run(lines(events, T1_FUND))
    assert str(caught.value) == ("event 4: adl_started: not called for: balance 90.00 is not "
                                 "above minimum_balance 100.00")


def test_a_policy_without_the_rule_ends_adl_with_reason_policy() -> None:
    """In ADL after index 7, a policy/2 version 2 with no rule for main at 04:00: adl_ended,
    reason policy, its window fields null, asset and balance those of the rule it had."""
    from auditor.formats.wire import canonical_bytes, sha256_hex
    from auditor.replays import replay as run

    doc = {**T1_POLICY, "version": 2, "pools": {}}
    at = DAY + "04:00:00Z"
    ended = {"pool": "main", "asset": "USDT", "balance": "650.00", "peak": None,
             "peak_index": None, "peak_time": None, "window_seconds": None, "ratio": None,
             "stop_ratio": None, "reason": "policy", "policy_version": 2}
    events = [*T1_EVENTS[:8],
              ("policy_set", 2, at, "pol-2", {"policy_version": 2, "policy": doc,
                                              "policy_hash": sha256_hex(canonical_bytes(doc))}),
              ("adl_ended", 1, at, "pol-2", ended)]
    result = run(lines(events, T1_FUND))
    assert (result.adl_pools, result.policy_version) == ([], 2)
