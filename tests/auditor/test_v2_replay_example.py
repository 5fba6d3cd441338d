"""The contract's hand-worked v2 log (V2-CONTRACT.md, "Hand-worked log example"; its events
and hand computations are in tests/auditor/v2_logs.py), replayed by `backstop-audit replay`:
VERIFIED with every pool's balance, the fund's sums and the account totals computed by hand."""

from __future__ import annotations

from pathlib import Path

from tests.auditor.v2_kit import lines, replay, write
from tests.auditor.v2_logs import EVENTS, FUND, POLICY, RESERVES, TOTALS


def test_the_contract_example_verifies_with_exact_pool_balances(tmp_path: Path) -> None:
    events, snap, key = write(tmp_path, EVENTS, FUND, reserves=RESERVES, totals=TOTALS,
                              accounts=4, policy=POLICY)
    code, doc = replay(events, snap, key)
    assert (code, doc["reason"]) == (0, None)
    assert doc["pools"] == {"alt": {"USDT": "10.00", "XBT": "0.00000000"},
                            "btc": {"USDT": "0.00", "XBT": "0.00000000"},
                            "shared": {"USDT": "975.00", "XBT": "0.00000000"}}
    assert doc["balances"] == RESERVES
    assert doc["totals"] == TOTALS
    assert (doc["events"], doc["liquidations"], doc["accounts"]) == (15, 2, 4)


def test_the_example_replayed_in_python_keeps_claims_and_pools() -> None:
    from auditor.replay import replay as run

    result = run(lines(EVENTS, FUND))
    assert result.format == 2
    assert result.pools == {"shared": {"USDT": 97500, "XBT": 0}, "alt": {"USDT": 1000, "XBT": 0},
                            "btc": {"USDT": 0, "XBT": 0}}
    assert result.balances == {"USDT": 98500, "XBT": 0}
    assert result.market_pools == {"ETH-PERP": "shared", "ALT-PERP": "alt", "XBTUSD": "btc"}
    assert result.account_totals("A") == {"USDT": {"fees": 0, "payouts": 0, "clawbacks": 0},
                                          "XBT": {"fees": 0, "payouts": 0, "clawbacks": 19012}}
    assert result.adl_pools == []


def test_a_v2_replay_state_is_refused_clearly() -> None:
    """auditor.state saves v1 replayers only: saving one for a v2 log is refused up front."""
    import pytest

    from auditor.replay import Discrepancy, Replayer
    from auditor.replay import replay as run

    saving = Replayer()
    saving.keep_refs = True  # as tiled_audit sets it for --save-state (and the witness)
    with pytest.raises(Discrepancy) as caught:
        run(lines(EVENTS, FUND), resume=saving)
    assert str(caught.value) == (
        "event 0: type: a replay state of a format v2 log cannot be saved yet (the saved state "
        "holds v1 logs only): replay it in full, without --save-state")
    assert run(lines(EVENTS, FUND), resume=Replayer()).format == 2  # a fresh one: full replay
