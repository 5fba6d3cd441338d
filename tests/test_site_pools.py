"""ledger.service.site_pools: the site's pool figures, on hand-written /3 documents and ADL
events (values chosen by hand, copied through as the snapshot and the log state them)."""

from __future__ import annotations

import json
from typing import Any

from ledger.service.site_pools import adl_events, pool_figures


def snap(size: int, time: str, main: str, side: str, fmt: str = "backstop-snapshot/3") -> dict[str, Any]:
    return {
        "format": fmt, "time": time, "log": {"size": size},
        "structure": {"valuation": None,
                      "pools": {"side": {"kind": "isolated", "markets": ["B-PERP"]},
                                "main": {"kind": "shared", "markets": ["A-PERP"]}},
                      "markets": {"A-PERP": {"kind": "linear", "settlement": "USDT", "pool": "main"},
                                  "B-PERP": {"kind": "linear", "settlement": "USDT", "pool": "side"}}},
        "pools": {"main": {"balances": {"USDT": main}, "value": None},
                  "side": {"balances": {"USDT": side}, "value": None}},
        "claims": {"A-PERP": None, "B-PERP": {"asset": "USDT", "total": "50.00"}},
        "metrics": {"markets": {"A-PERP": {"fund_to_oi": "0.5", "pool": "main"}},
                    "pools": {"main": {"adl": {"state": "adl", "since": 3}},
                              "side": {"adl": None}}},
    }


def line(index: int, kind: str, pool: str, **data: Any) -> bytes:
    return json.dumps({"index": index, "time": f"2026-01-01T0{index}:00:00Z", "type": kind,
                       "data": {"pool": pool, **data}}).encode()


def test_a_v1_publication_has_no_pool_figures() -> None:
    assert pool_figures([{"format": "backstop-snapshot/1"}, {"format": "backstop-snapshot/2"}],
                        []) is None


def test_pools_sorted_with_their_markets_claims_and_history() -> None:
    figures = pool_figures([snap(4, "2026-01-01T04:00:00Z", "100.00", "5.00"),
                            snap(9, "2026-01-01T09:00:00Z", "80.00", "7.50")], [])
    assert figures is not None
    assert (figures["size"], figures["time"]) == (9, "2026-01-01T09:00:00Z")
    main, side = figures["pools"]
    assert (main["pool"], main["kind"], main["balances"]) == ("main", "shared", {"USDT": "80.00"})
    assert main["markets"] == [{"market": "A-PERP", "kind": "linear", "settlement": "USDT",
                                "pool": "main", "observed": {"fund_to_oi": "0.5", "pool": "main"},
                                "claims": None}]
    assert main["adl"] == {"state": "adl", "since": 3}
    adl = {"state": "adl", "since": 3}
    assert main["history"] == [[4, "2026-01-01T04:00:00Z", {"USDT": "100.00"}, adl],
                               [9, "2026-01-01T09:00:00Z", {"USDT": "80.00"}, adl]]
    assert [h[3] for h in side["history"]] == [None, None]
    assert side["markets"][0]["observed"] is None
    assert side["markets"][0]["claims"] == {"asset": "USDT", "total": "50.00"}
    assert side["adl"] is None


def test_adl_events_by_pool_in_log_order() -> None:
    lines = [line(1, "deficit_covered", "main", amount="1.00"),
             line(3, "adl_started", "main", ratio="-0.4", start_ratio="-0.3", balance="60.00"),
             line(5, "adl_started", "side", ratio="-0.5"),
             line(7, "adl_ended", "main", ratio="-0.1", stop_ratio="-0.2", reason="recovered")]
    found = adl_events(lines)
    assert [(e["index"], e["event"], e["ratio"]) for e in found["main"]] == [
        (3, "started", "-0.4"), (7, "ended", "-0.1")]
    assert found["main"][0]["start_ratio"] == "-0.3"
    assert found["main"][1]["reason"] == "recovered"
    assert found["main"][0]["reason"] is None
    assert [e["index"] for e in found["side"]] == [5]
    assert pool_figures([snap(8, "2026-01-01T08:00:00Z", "1.00", "2.00")],
                        lines)["pools"][0]["adl_events"] == found["main"]  # type: ignore[index]
