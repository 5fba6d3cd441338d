"""Vector I5 in a whole log: the contract's example (tests/auditor/v2_logs.py) under a policy
whose socialization is `adl`, so the XBTUSD deficit's 58164 sat are clawed back by the
inverse ADL ranking (score and quantity in coin), and a surplus on the inverse market (I2)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from auditor.formats.wire import canonical_bytes, sha256_hex
from auditor.replay import Discrepancy
from auditor.replays import replay
from tests.auditor.v2_kit import DAY, Event, lines
from tests.auditor.v2_logs import EVENTS, FUND, POLICY


def with_adl_socialization() -> list[Event]:
    events = copy.deepcopy(EVENTS)
    doc = {**copy.deepcopy(POLICY), "socialization": "adl"}
    typ, version, time, ref, _ = events[1]
    events[1] = (typ, version, time, ref, {"policy_version": 1, "policy": doc,
                                           "policy_hash": sha256_hex(canonical_bytes(doc))})
    for index in (6, 10):  # both outcomes name the policy's method
        events[index][4]["outcome"]["method"] = "adl"
    events[9][4]["method"] = "adl"
    # I5: A's score 0.39324 > B's 0.11144: A pays min(58164, 588697) = 58164 sat, quantity
    # 0.00058164 / (1 * |1/49000 - 101/5000000|) = 0.00058164 * 245000000 / 51 = 237503/85 =
    # 2794.15294117.. (below A's 5000) at he_8(B) = 49504.95049505; B pays nothing.
    where = {"pool": "btc", "market": "XBTUSD", "asset": "XBT"}
    events[11:15] = [
        events[11],
        ("socialized_loss_assessed", 2, DAY + "04:00:00Z", "liq-8", {
            **where, "amount": "0.00058164", "method": "adl", "unresolved": "0.00000000"}),
        ("clawback_charged", 2, DAY + "04:00:00Z", "liq-8", {
            **where, "account": "A", "amount": "0.00058164", "method": "adl",
            "adl_quantity": "2794.15294117", "adl_price": "49504.95049505"}),
    ]
    return events


def test_i5_the_inverse_adl_ranking_claws_back_from_a_alone() -> None:
    result = replay(lines(with_adl_socialization(), FUND))
    assert result.account_totals("A")["XBT"] == {"fees": 0, "payouts": 0, "clawbacks": 58164}
    assert "B" not in result.accounts
    assert result.pools["btc"] == {"USDT": 0, "XBT": 0}


def test_i5_a_wrong_quantity_is_named() -> None:
    events = with_adl_socialization()
    events[13][4]["adl_quantity"] = "2794.15294118"
    with pytest.raises(Discrepancy) as caught:
        replay(lines(events, FUND))
    assert str(caught.value) == ("event 13: data.adl_quantity: expected '2794.15294117', got "
                                 "'2794.15294118' (derived from the liquidation at index 10)")


def surplus() -> dict[str, Any]:
    """I2: I1 at X = M = 49600 with no counterparties: delta = 0.002 - 10000 * (1/49600 -
    1/50000) = 3/7750 = 0.000387096..; the fee cap 0.005 * 10000/49600 = 1/992 is above it:
    fee = floor(3/7750 * 1/2 * 10^8) = 19354 sat, remainder 38709 - 19354 = 19355 sat."""
    liq = copy.deepcopy(EVENTS[10][4])
    liq.update(fill_price="49600", mark_price="49600", counterparties=[])
    liq["outcome"].update(delta="0.00038709", fee="0.00019354", remainder="0.00019355",
                          deficit="0.00000000", fund_payment="0.00000000",
                          socialized="0.00000000")
    return liq


def test_i2_an_inverse_surplus_pays_its_fee_into_the_markets_pool() -> None:
    events = copy.deepcopy(EVENTS[:10])
    events.append(("liquidation_settled", 2, DAY + "04:00:00Z", "liq-8", surplus()))
    events.append(("fee_inflow", 2, DAY + "04:00:00Z", "liq-8", {
        "pool": "btc", "kind": "liquidation_fee", "asset": "XBT", "amount": "0.00019354",
        "account": "acct-1"}))
    result = replay(lines(events, FUND))
    assert result.pools["btc"]["XBT"] == 150000 + 19354
    assert result.balances == {"USDT": 98500, "XBT": 169354}
