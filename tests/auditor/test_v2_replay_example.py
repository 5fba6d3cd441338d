"""The contract's hand-worked v2 log (V2-CONTRACT.md, "Hand-worked log example"), written out
event by event, replayed by `backstop-audit replay`: VERIFIED with every pool's balance, the
fund's sums and the account totals computed by hand below."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.auditor.v2_kit import DAY, lines, policy_event, replay, write

FUND = "v2demo"
POLICY = {
    "format": "backstop-policy/2", "version": 1, "fee_cap_rate": "0.005",
    "fund_share": {"fixed": "0.5"}, "socialization": "pro_rata_profit",
    "pools": {"alt": {"minimum_reserve": {"USDT": "10.00"}, "per_event_cap": {"USDT": "80.00"},
                      "backstop": {"pool": "shared", "limit": {"USDT": "25.00"}}},
              "shared": {"minimum_reserve": {"USDT": "100.00"}}},
    "assets": {}, "layers": [],
}
OPENED = {
    "fund": FUND, "assets": {"USDT": {"decimals": 2}, "XBT": {"decimals": 8}},
    "valuation": {"currency": "USD", "decimals": 2},
    "pools": {"shared": {"kind": "shared"}, "alt": {"kind": "isolated"}, "btc": {"kind": "isolated"}},
    "markets": {"ETH-PERP": {"kind": "linear", "settlement": "USDT", "pool": "shared"},
                "ALT-PERP": {"kind": "linear", "settlement": "USDT", "pool": "alt"},
                "XBTUSD": {"kind": "inverse", "settlement": "XBT", "quote_currency": "USD",
                           "face_value": "1", "pool": "btc"}},
}


def capital(pool: str, asset: str, amount: str) -> dict[str, Any]:
    return {"asset": asset, "amount": amount, "source": "operator", "pool": pool}


# ALT-PERP, acct-9 long 2 @ 30000, collateral 3000.00, fill = mark = 28440:
# B = 30000 - 3000/2 = 28500; delta = 3000 + 2 * (28440 - 30000) = -120.00, D = 120.00.
# alt: available = 30.00 - 10.00 = 20.00; cap 80.00; R = 100.00 (per period, nothing claimed):
# fund_payment = min(120, 20, 80, 100) = 20.00 = available < D -> backstop shared draws
# min(120 - 20, 100 - 20, 25, 1000 - 100) = 25.00; socialized 120 - 20 - 25 = 75.00, no
# counterparties: unresolved 75.00.
ALT_LIQ = {
    "account": "acct-9", "market": "ALT-PERP", "side": "long", "size": "2",
    "entry_price": "30000", "collateral": "3000.00", "fill_price": "28440", "mark_price": "28440",
    "counterparties": [], "asset": "USDT", "policy_version": 1, "pool": "alt",
    "outcome": {"bankruptcy_price": "28500.00000000", "delta": "-120.00", "fee": "0.00",
                "remainder": "0.00", "share": "0.500000000000", "volatility": "0.000000000000",
                "deficit": "120.00", "fund_payment": "20.00", "socialized": "75.00",
                "unresolved": "75.00", "method": "pro_rata_profit", "pool": "alt",
                "adl_mode": False, "claim_remaining": "100.00", "backstop_pool": "shared",
                "backstop_payment": "25.00", "layers": []},
}
ALT = {"market": "ALT-PERP", "asset": "USDT"}
# XBTUSD (I1): long 10000 @ 50000, C 0.002, X = M = 49000. 1/B = 1/50000 + 0.002/10000, B =
# 5000000/101 = 49504.95049505; delta = 0.002 - 10000 * (1/49000 - 1/50000) = -51/24500 =
# -0.0020816326.. -> wire -0.00208164, D = 208164 sat. btc pays its 150000 sat (no reserve, no
# cap, no backstop); S = 58164 sat pro rata over p_A = 588697, p_B = 1212366 (P = 1801063):
# 58164 * 588697 = 34240972308 = 19011 * 1801063 + 963615;
# 58164 * 1212366 = 70516056024 = 39152 * 1801063 + 837448;
# floors 19011 + 39152 = 58163, the unit left goes to the larger remainder (A: 963615):
# A 19012 sat, B 39152 sat, unresolved 0.
CPS = [{"account": "A", "size": "5000", "entry_price": "52000", "unrealized_pnl": "0.00588697",
        "collateral": "0.01"},
       {"account": "B", "size": "20000", "entry_price": "50500", "unrealized_pnl": "0.01212366",
        "collateral": "0.1"}]
XBT_LIQ = {
    "account": "acct-1", "market": "XBTUSD", "side": "long", "size": "10000",
    "entry_price": "50000", "collateral": "0.002", "fill_price": "49000", "mark_price": "49000",
    "counterparties": CPS, "asset": "XBT", "policy_version": 1, "pool": "btc",
    "outcome": {"bankruptcy_price": "49504.95049505", "delta": "-0.00208164",
                "fee": "0.00000000", "remainder": "0.00000000", "share": "0.500000000000",
                "volatility": "0.000000000000", "deficit": "0.00208164",
                "fund_payment": "0.00150000", "socialized": "0.00058164",
                "unresolved": "0.00000000", "method": "pro_rata_profit", "pool": "btc",
                "adl_mode": False, "claim_remaining": None, "backstop_pool": None,
                "backstop_payment": "0.00000000", "layers": []},
}
XBT = {"pool": "btc", "market": "XBTUSD", "asset": "XBT"}


def claw(account: str, amount: str) -> dict[str, Any]:
    return {**XBT, "account": account, "amount": amount, "method": "pro_rata_profit",
            "adl_quantity": None, "adl_price": None}


EVENTS = [
    ("fund_opened", 2, DAY + "00:00:00Z", None, OPENED),
    (*policy_event(POLICY)[:2], DAY + "00:00:00Z", "init", policy_event(POLICY)[3]),
    ("capital_injected", 2, DAY + "01:00:00Z", "cap-1", capital("shared", "USDT", "1000.00")),
    ("capital_injected", 2, DAY + "01:00:00Z", "cap-2", capital("alt", "USDT", "30.00")),
    ("capital_injected", 2, DAY + "01:00:00Z", "cap-3", capital("btc", "XBT", "0.00150000")),
    ("claim_cap_set", 1, DAY + "02:00:00Z", "cc-1", {**ALT, "total": None,
                                                    "per_period": "100.00", "period_seconds": 86400}),
    ("liquidation_settled", 2, DAY + "03:00:00Z", "liq-7", ALT_LIQ),
    ("deficit_covered", 2, DAY + "03:00:00Z", "liq-7", {"pool": "alt", **ALT, "amount": "20.00",
                                                       "account": "acct-9"}),
    ("backstop_drawn", 1, DAY + "03:00:00Z", "liq-7", {"pool": "shared", "for_pool": "alt", **ALT,
                                                      "amount": "25.00", "account": "acct-9",
                                                      "limit": "25.00"}),
    ("socialized_loss_assessed", 2, DAY + "03:00:00Z", "liq-7", {
        "pool": "alt", **ALT, "amount": "75.00", "method": "pro_rata_profit", "unresolved": "75.00"}),
    ("liquidation_settled", 2, DAY + "04:00:00Z", "liq-8", XBT_LIQ),
    ("deficit_covered", 2, DAY + "04:00:00Z", "liq-8", {**XBT, "amount": "0.00150000",
                                                       "account": "acct-1"}),
    ("socialized_loss_assessed", 2, DAY + "04:00:00Z", "liq-8", {
        **XBT, "amount": "0.00058164", "method": "pro_rata_profit", "unresolved": "0.00000000"}),
    ("clawback_charged", 2, DAY + "04:00:00Z", "liq-8", claw("A", "0.00019012")),
    ("clawback_charged", 2, DAY + "04:00:00Z", "liq-8", claw("B", "0.00039152")),
]
# shared 1000.00 - 25.00 = 975.00; alt 30.00 - 20.00 = 10.00; btc 0.00150000 - 0.00150000.
RESERVES = {"USDT": "985.00", "XBT": "0.00000000"}
TOTALS = {"USDT": {"fees": "0.00", "payouts": "45.00", "clawbacks": "0.00"},
          "XBT": {"fees": "0.00000000", "payouts": "0.00150000", "clawbacks": "0.00058164"}}


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
