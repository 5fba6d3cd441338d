"""What the auditor refuses in a v2 log (docs/FORMAT-V2-DRAFT.md section 13): one change at a
time to the hand-worked logs of tests/auditor/v2_logs.py, each FAILED (exit 1) naming the
event and the field, with the numbers worked by hand in the comments."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.auditor.v2_kit import DAY, Event, replay, write
from tests.auditor.v2_logs import (
    EVENTS,
    FUND,
    POLICY,
    RESERVES,
    T1_EVENTS,
    T1_FUND,
    T1_POLICY,
    T1_RESERVES,
    T1_TOTALS,
    TOTALS,
)


def failed(tmp: Path, events: list[Event], t1: bool = False) -> str:
    """Replay `events` against a snapshot of them; assert exit 1 and return the reason."""
    if t1:
        paths = write(tmp, events, T1_FUND, reserves=T1_RESERVES, totals=T1_TOTALS, accounts=1,
                      policy=T1_POLICY)
    else:
        paths = write(tmp, events, FUND, reserves=RESERVES, totals=TOTALS, accounts=4,
                      policy=POLICY)
    code, doc = replay(*paths)
    assert code == 1, doc
    reason: str = doc["reason"]
    return reason


def example() -> list[Event]:
    return copy.deepcopy(EVENTS)


def set_data(events: list[Event], index: int, **data: Any) -> None:
    typ, version, time, ref, old = events[index]
    events[index] = (typ, version, time, ref, {**old, **data})


def test_a_forged_adl_started_is_not_called_for(tmp_path: Path) -> None:
    # After the first liquidation (index 4): peak 1000.00, ratio -200/1000 = -0.2, not < -0.3.
    events = copy.deepcopy(T1_EVENTS)
    forged = {**events[7][4], "balance": "800.00", "ratio": "-0.200000000000"}
    events.insert(5, ("adl_started", 1, DAY + "02:00:00Z", "liq-1", forged))
    assert failed(tmp_path, events, t1=True) == (
        "replay: event 5: adl_started: not called for: ratio -0.200000000000 is not below -0.3")


def test_a_missing_adl_started_is_refused_at_the_next_event(tmp_path: Path) -> None:
    events = copy.deepcopy(T1_EVENTS)
    del events[7]  # the fee_inflow at 05:00 now stands where the rule wants adl_started
    assert failed(tmp_path, events, t1=True) == (
        "replay: event 7: pool main: the rule calls for adl_started here "
        "(ratio -0.350000000000 < -0.3), the log has none")


def test_an_adl_started_with_a_wrong_peak_names_the_field(tmp_path: Path) -> None:
    events = copy.deepcopy(T1_EVENTS)
    set_data(events, 7, peak_index=1)
    assert failed(tmp_path, events, t1=True) == (
        "replay: event 7: data.peak_index: expected 2, got 1")


def test_a_claim_beyond_its_cap(tmp_path: Path) -> None:
    # per_period 30.00: R = 30.00, but the outcome still pays 20.00 + draws 25.00 = 45.00.
    events = example()
    set_data(events, 5, per_period="30.00")
    assert failed(tmp_path, events) == (
        "replay: event 6: data.outcome.fund_payment: market ALT-PERP's claim would exceed its "
        "cap (remaining 30.00)")


def test_a_backstop_draw_not_called_for(tmp_path: Path) -> None:
    # alt holds 100.00, per_period 200.00: available 90.00, fund_payment = min(120, 90, 80,
    # 200) = 80.00 (the per-event cap): 80 != 90, alt is not exhausted, no draw. The log
    # draws 25.00 anyway (socialized 15.00, conserving).
    events = example()
    set_data(events, 3, amount="100.00")
    set_data(events, 5, per_period="200.00")
    liq = copy.deepcopy(events[6][4])
    liq["outcome"].update(fund_payment="80.00", socialized="15.00", unresolved="15.00",
                          claim_remaining="200.00")
    set_data(events, 6, outcome=liq["outcome"])
    assert failed(tmp_path, events) == (
        "replay: event 6: backstop_drawn: not called for: pool alt is not exhausted "
        "(fund_payment 80.00, available 90.00)")


def test_a_transfer_beyond_the_pools_balance(tmp_path: Path) -> None:
    events = example()
    events.insert(5, ("capital_transferred", 1, DAY + "01:30:00Z", "tr-1", {
        "from_pool": "shared", "to_pool": "alt", "asset": "USDT", "amount": "1000.01",
        "authority": "risk-committee", "reason": "replenish"}))
    assert failed(tmp_path, events) == (
        "replay: event 5: data.amount: takes pool shared below zero in USDT")


def test_a_market_assigned_to_an_isolated_pool_that_holds_one(tmp_path: Path) -> None:
    events = example()
    events.insert(5, ("market_assigned", 1, DAY + "01:30:00Z", "as-1", {
        "market": "ETH-PERP", "pool": "alt", "from": "shared", "reason": "regrouping",
        "spec": None}))
    assert failed(tmp_path, events) == (
        "replay: event 5: data.pool: isolated pool alt already holds ALT-PERP")


@pytest.mark.parametrize(("index", "typ", "version"), [
    (2, "capital_injected", 1),   # v1's shape in a v2 log
    (7, "deficit_covered", 1),
])
def test_a_type_version_not_in_a_v2_log(tmp_path: Path, index: int, typ: str, version: int) -> None:
    events = example()
    _, _, time, ref, data = events[index]
    events[index] = (typ, version, time, ref, data)
    assert failed(tmp_path, events) == (
        f"replay: event {index}: version: {version} is not a version of {typ} in a v2 region")


def test_reserve_rebalanced_is_not_an_event_of_a_v2_log(tmp_path: Path) -> None:
    events = example()
    events.insert(5, ("reserve_rebalanced", 1, DAY + "01:30:00Z", "rb-1", {
        "from_asset": "USDT", "from_amount": "1.00", "to_asset": "XBT", "to_amount": "0.00001"}))
    assert failed(tmp_path, events) == (
        "replay: event 5: version: 1 is not a version of reserve_rebalanced in a v2 region")


def test_a_time_earlier_than_the_previous_event(tmp_path: Path) -> None:
    events = example()
    typ, version, _, ref, data = events[3]
    events[3] = (typ, version, DAY + "00:59:59.5Z", ref, data)  # event 2 is at 01:00:00Z
    assert failed(tmp_path, events) == "replay: event 3: time: earlier than event 2"


def test_a_pool_going_below_zero(tmp_path: Path) -> None:
    events = example()
    events.insert(5, ("capital_withdrawn", 2, DAY + "01:30:00Z", "cap-4", {
        "asset": "USDT", "amount": "30.01", "source": "operator", "pool": "alt"}))
    assert failed(tmp_path, events) == (
        "replay: event 5: data.amount: takes pool alt below zero in USDT (balance 30.00, "
        "amount 30.01)")


def test_a_liquidation_naming_another_pool(tmp_path: Path) -> None:
    events = example()
    set_data(events, 6, pool="shared")
    assert failed(tmp_path, events) == (
        "replay: event 6: data.pool: expected alt (the pool of ALT-PERP at this index), got 'shared'")


def test_a_v1_policy_in_a_v2_log(tmp_path: Path) -> None:
    events = example()
    doc = {k: v for k, v in POLICY.items() if k not in ("format", "pools", "assets", "layers")}
    _, _, time, ref, _ = events[1]
    from auditor.formats.wire import canonical_bytes, sha256_hex

    events[1] = ("policy_set", 2, time, ref, {"policy_version": 1, "policy": doc,
                                             "policy_hash": sha256_hex(canonical_bytes(doc))})
    assert failed(tmp_path, events) == (
        "replay: event 1: data.policy.format: a format 2 fund takes backstop-policy/2")


def test_adl_mode_must_be_a_json_boolean(tmp_path: Path) -> None:
    events = example()
    liq = copy.deepcopy(events[6][4])
    liq["outcome"]["adl_mode"] = 0  # equal to False in Python, not in JSON
    set_data(events, 6, outcome=liq["outcome"])
    assert failed(tmp_path, events) == (
        "replay: event 6: data.outcome.adl_mode: expected False, got 0")


def test_a_missing_snapshot_is_an_input_error(tmp_path: Path) -> None:
    events, _, key = write(tmp_path, example(), FUND, reserves=RESERVES, totals=TOTALS,
                           accounts=4, policy=POLICY)
    code, doc = replay(events, tmp_path / "absent.json", key)
    assert code == 2
    assert doc["error"].startswith(f"snapshot {tmp_path / 'absent.json'}: ")


def test_a_snapshot_whose_reserves_are_not_the_pools_sum_fails(tmp_path: Path) -> None:
    # The pools sum to USDT 985.00 (975.00 + 10.00 + 0.00); a snapshot saying 1000.00 fails.
    paths = write(tmp_path, example(), FUND, reserves={**RESERVES, "USDT": "1000.00"},
                  totals=TOTALS, accounts=4, policy=POLICY)
    code, doc = replay(*paths)
    assert (code, doc["reason"]) == (
        1, "snapshot vs replay: reserves.USDT: expected '985.00', got '1000.00'")
