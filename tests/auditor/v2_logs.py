"""The hand-worked v2 logs the auditor's v2 tests replay (no ledger: every event written out
here, every number computed by hand in the comments): the contract's example and vector T1.

Not a test module: shared as tests/audit_world.py is."""

from __future__ import annotations

from typing import Any

from tests.auditor.v2_kit import DAY, Event, policy_event

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


EVENTS: list[Event] = [
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



# ------------------------------------------------------------------ vector T1 (ADL start/end)
# Pool `main` (shared) watches USDT: W = 28800 s, start -0.3, stop -0.25, minimum 100.00.
T1_FUND = "t1"
T1_POLICY = {
    "format": "backstop-policy/2", "version": 1, "fee_cap_rate": "0.005",
    "fund_share": {"fixed": "1"}, "socialization": "pro_rata_profit",
    "pools": {"main": {"adl": {"asset": "USDT", "window_seconds": 28800, "start_ratio": "-0.3",
                               "stop_ratio": "-0.25", "minimum_balance": "100.00"}}},
    "assets": {}, "layers": [],
}
T1_OPENED = {"fund": T1_FUND, "assets": {"USDT": {"decimals": 2}},
             "valuation": {"currency": "USD", "decimals": 2},
             "pools": {"main": {"kind": "shared"}},
             "markets": {"ETH-PERP": {"kind": "linear", "settlement": "USDT", "pool": "main"}}}


def t1_liquidation(fill: str, deficit: str) -> dict[str, Any]:
    """acct-1 long 1 @ 30000, collateral 1000: B = 29000, delta = 1000 + fill - 30000 < 0;
    main has no reserve, cap or claim cap, so it pays the whole deficit."""
    return {"account": "acct-1", "market": "ETH-PERP", "side": "long", "size": "1",
            "entry_price": "30000", "collateral": "1000", "fill_price": fill, "mark_price": fill,
            "counterparties": [], "asset": "USDT", "policy_version": 1, "pool": "main",
            "outcome": {"bankruptcy_price": "29000.00000000", "delta": f"-{deficit}",
                        "fee": "0.00", "remainder": "0.00", "share": "1.000000000000",
                        "volatility": "0.000000000000", "deficit": deficit,
                        "fund_payment": deficit, "socialized": "0.00", "unresolved": "0.00",
                        "method": "pro_rata_profit", "pool": "main", "adl_mode": False,
                        "claim_remaining": None, "backstop_pool": None,
                        "backstop_payment": "0.00", "layers": []}}


def covered(amount: str) -> dict[str, Any]:
    return {"pool": "main", "market": "ETH-PERP", "asset": "USDT", "amount": amount,
            "account": "acct-1"}


OBSERVED = {"market": "ETH-PERP", "mark_price": "3000", "open_interest": "0"}
# After 6 (t 03:00, t - W before every event: s = 0): peak 1000.00 at index 2 (00:00), ratio
# (650 - 1000)/1000 = -0.35 < -0.3 and 650.00 > 100.00: adl_started. After 8: -290/1000 =
# -0.29, not above -0.25. After 9 (t - W = 00:00, inclusive): s = 2, same. After 10 (t - W =
# 02:30): s = 4 (3 and 4 at 02:00), B(4) = 800.00 is the peak of 4..10; (710 - 800)/800 =
# -0.1125 > -0.25: adl_ended, reason recovered.
T1_STARTED = {"pool": "main", "asset": "USDT", "balance": "650.00", "peak": "1000.00",
              "peak_index": 2, "peak_time": DAY + "00:00:00Z", "window_seconds": 28800,
              "ratio": "-0.350000000000", "start_ratio": "-0.3", "minimum_balance": "100.00",
              "policy_version": 1}
T1_ENDED = {"pool": "main", "asset": "USDT", "balance": "710.00", "peak": "800.00",
            "peak_index": 4, "peak_time": DAY + "02:00:00Z", "window_seconds": 28800,
            "ratio": "-0.112500000000", "stop_ratio": "-0.25", "reason": "recovered",
            "policy_version": 1}
T1_EVENTS: list[Event] = [
    ("fund_opened", 2, DAY + "00:00:00Z", None, T1_OPENED),
    (*policy_event(T1_POLICY)[:2], DAY + "00:00:00Z", "init", policy_event(T1_POLICY)[3]),
    ("capital_injected", 2, DAY + "00:00:00Z", "cap-1",
     {"asset": "USDT", "amount": "1000.00", "source": "operator", "pool": "main"}),
    ("liquidation_settled", 2, DAY + "02:00:00Z", "liq-1", t1_liquidation("28800", "200.00")),
    ("deficit_covered", 2, DAY + "02:00:00Z", "liq-1", covered("200.00")),
    ("liquidation_settled", 2, DAY + "03:00:00Z", "liq-2", t1_liquidation("28850", "150.00")),
    ("deficit_covered", 2, DAY + "03:00:00Z", "liq-2", covered("150.00")),
    ("adl_started", 1, DAY + "03:00:00Z", "liq-2", T1_STARTED),
    ("fee_inflow", 2, DAY + "05:00:00Z", "fee-1", {"pool": "main", "kind": "trading_fee_share",
                                                  "asset": "USDT", "amount": "60.00",
                                                  "account": None}),
    ("market_observed", 1, DAY + "08:00:00Z", "obs-1", OBSERVED),
    ("market_observed", 1, DAY + "10:30:00Z", "obs-2", OBSERVED),
    ("adl_ended", 1, DAY + "10:30:00Z", "obs-2", T1_ENDED),
]
T1_RESERVES = {"USDT": "710.00"}
T1_TOTALS = {"USDT": {"fees": "0.00", "payouts": "350.00", "clawbacks": "0.00"}}
T1_METRICS = {"ETH-PERP": {"mark_price": "3000", "open_interest": "0",
                           "open_interest_notional": "0", "fund_to_oi": None}}
