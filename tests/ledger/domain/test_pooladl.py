"""The ADL trigger of a v2 fund (ledger/domain/pooladl.py) over a long log: the state keeps
only what a window can reach (ledger/domain/poolstate.py prunes), and the trigger still sees
the right window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.domain.fund import export_event
from ledger.domain.poolfund import COMMANDS, open_fund
from tests.v2fixture import T0, capital2, t1_config, t1_loss

START = datetime(2026, 1, 1, tzinfo=UTC)


def wire(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_trigger_after_427_days_of_fees() -> None:
    fund = open_fund(t1_config(), T0)
    fees: list[dict[str, Any]] = [
        {"type": "fee", "id": f"f-{k}", "time": wire(START + timedelta(hours=2.5 * (k + 1))),
         "kind": "other", "asset": "USDT", "amount": "0.01", "pool": "main"}
        for k in range(4100)]
    for fact in [capital2("in-1", "1000.00", "USDT", "main"), *fees]:
        COMMANDS[fact["type"]](fund, fact)
    assert fund.version == 3 + 4100  # indexes 0-2, then fees 3..4102
    # Pruned at index 4096 (t = 10,232.5 h, past 366 days): what is left starts after it.
    assert fund.v2["times_base"] > 0
    assert len(fund.v2["times"]) == fund.version - fund.v2["times_base"]
    assert len(fund.v2["changes"]["main"]["USDT"]) < 4101
    last = START + timedelta(hours=2.5 * 4100)
    # 1000.00 + 4100 * 0.01 = 1041.00; a deficit of 520.50 an hour later halves it: within
    # the 8 h window (from the fee 8.5 h before on) the peak is the last fee's balance.
    fund.collect_events()
    COMMANDS["liquidation"](fund, t1_loss("liq-1", wire(last + timedelta(hours=1)), "479.50"))
    log = [export_event(e, fund.name) for e in fund.collect_events()]
    assert [e["type"] for e in log] == ["liquidation_settled", "deficit_covered", "adl_started"]
    assert log[-1]["data"] == {
        "pool": "main", "asset": "USDT", "balance": "520.50", "peak": "1041.00",
        "peak_index": 4102, "peak_time": wire(last), "window_seconds": 28800,
        "ratio": "-0.500000000000", "start_ratio": "-0.3", "minimum_balance": "100.00",
        "policy_version": 1}
