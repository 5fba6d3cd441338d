"""auditor.replays decides the format once, on event 0: a v1 log replays as before (its one
pool `default` holding the fund's balances), `fund_opened` version 2 opens a v2 log, and a v2
type in a v1 log is refused by the v1 rules as before."""

from __future__ import annotations

import pytest

from auditor.formats.wire import canonical_bytes, sha256_hex
from auditor.replay import Discrepancy
from auditor.replays import replay

POLICY = {"version": 1, "minimum_reserve": {"USDT": "0.00"}, "fee_cap_rate": "0.005",
          "fund_share": {"fixed": "1"}, "socialization": "pro_rata_profit"}


def v1_log(extra: tuple[str, int, dict[str, object]] | None = None) -> list[bytes]:
    items: list[tuple[str, int, object, dict[str, object]]] = [
        ("fund_opened", 1, None, {"fund": "main", "assets": {"USDT": {"decimals": 2}},
                                  "markets": {"BTC-PERP": {"quote": "USDT"}}}),
        ("policy_set", 1, "init", {"policy_version": 1, "policy": POLICY,
                                   "policy_hash": sha256_hex(canonical_bytes(POLICY))}),
        ("capital_injected", 1, "cap-1", {"asset": "USDT", "amount": "12.34",
                                          "source": "operator"}),
    ]
    if extra is not None:
        items.append((extra[0], extra[1], "x-1", extra[2]))
    return [canonical_bytes({"index": i, "type": t, "version": v, "fund": "main",
                             "time": "2026-01-01T00:00:00Z", "ref": ref, "data": data})
            for i, (t, v, ref, data) in enumerate(items)]


def test_a_v1_log_replays_as_v1_with_its_default_pool() -> None:
    result = replay(v1_log())
    assert (result.format, result.balances, result.pools) == (
        1, {"USDT": 1234}, {"default": {"USDT": 1234}})


def test_a_v2_event_in_a_v1_log_is_refused_by_the_v1_rules() -> None:
    with pytest.raises(Discrepancy) as caught:
        replay(v1_log(("pool_created", 1, {"pool": "alt", "kind": "isolated"})))
    assert str(caught.value) == "event 3: type: unknown event type 'pool_created'"
    with pytest.raises(Discrepancy) as caught:
        replay(v1_log(("capital_injected", 2, {"asset": "USDT", "amount": "1.00",
                                                "source": "operator", "pool": "alt"})))
    assert str(caught.value) == ("event 3: version: 2 is not a version of capital_injected "
                                 "(format v1 knows only version 1)")


def test_an_empty_export_is_a_v1_replay_of_nothing() -> None:
    assert replay([]).count == 0
