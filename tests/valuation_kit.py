"""A format 2 fund with valued assets (schemas/README.md "Format v2 (pools)", "Valued assets
and conversions"): vector V1's assets and terms, K1's conversion, as a fund config and facts
shared by the ledger's import tests and the end-to-end audit (tests/e2e/test_v2_valuation.py).
"""

from __future__ import annotations

from typing import Any

from tests.v2fixture import T0, at, capital2, policy2

# V1's terms and K's (XBT 0.10, USDT 0.01)
ASSETS = {"USDT": {"haircut": "0.01", "source": "oracle"},
          "XBT": {"haircut": "0.10", "source": "oracle"},
          "WBETH": {"haircut": "0.05", "source": "redemption_ratio", "underlying": "ETH"},
          "ETH": {"haircut": "0.10", "source": "oracle"}}


def config() -> dict[str, Any]:
    """Fund `vfund`: USDT 2 decimals, XBT/WBETH/ETH 8; valuation USD 2; pools `main` (shared,
    BTC-PERP linear USDT) and `btc` (isolated, XBTUSD inverse XBT); V1's asset terms."""
    return {"format": 2, "fund": "vfund",
            "assets": {"USDT": {"decimals": 2}, "XBT": {"decimals": 8},
                       "WBETH": {"decimals": 8}, "ETH": {"decimals": 8}},
            "valuation": {"currency": "USD", "decimals": 2},
            "pools": {"main": {"kind": "shared"}, "btc": {"kind": "isolated"}},
            "markets": {"BTC-PERP": {"kind": "linear", "settlement": "USDT", "pool": "main"},
                        "XBTUSD": {"kind": "inverse", "settlement": "XBT",
                                   "quote_currency": "USD", "face_value": "1", "pool": "btc"}},
            "policy": {**policy2(), "assets": ASSETS}}


def price(id_: str, asset: str, value: str, time: str = T0, *, kind: str = "price",
          underlying: str | None = None, source: str = "oracle-x") -> dict[str, Any]:
    """A `price` fact (kind price in USD, or kind ratio to `underlying`)."""
    fact: dict[str, Any] = {"type": "price", "id": id_, "time": time, "asset": asset,
                            "kind": kind, "value": value, "source": source}
    if kind == "price":
        fact["currency"] = "USD"
    else:
        fact["underlying"] = underlying
    return fact


def conversion(id_: str, to_amount: str, time: str = T0, *, pool: str = "btc",
               from_asset: str = "XBT", from_amount: str = "0.01000000",
               to_asset: str = "USDT") -> dict[str, Any]:
    """A `conversion` fact; by default K's: 0.01 XBT of pool btc into `to_amount` USDT."""
    return {"type": "conversion", "id": id_, "time": time, "pool": pool,
            "from_asset": from_asset, "from_amount": from_amount, "to_asset": to_asset,
            "to_amount": to_amount, "venue": "spot-desk"}


def facts() -> list[dict[str, Any]]:
    """Capital (1000.00 USDT, 0.5 XBT, 2 WBETH into main; 0.02 XBT into btc), V1's prices
    (with WBETH's ignored order-book price 430), then K1 at 01:00 (0.01 XBT -> 580.00 USDT in
    btc). Log indexes 2-5 capital, 6-10 prices, 11 the conversion."""
    return [capital2("in-usdt", "1000.00", "USDT", "main"),
            capital2("in-xbt", "0.50000000", "XBT", "main"),
            capital2("in-wbeth", "2.00000000", "WBETH", "main"),
            capital2("in-btc", "0.02000000", "XBT", "btc"),
            price("p-eth", "ETH", "3000"),
            price("p-usdt", "USDT", "0.9995"),
            price("p-xbt", "XBT", "60000"),
            price("r-wbeth", "WBETH", "1.05", kind="ratio", underlying="ETH",
                  source="wbeth-contract"),
            price("p-wbeth-book", "WBETH", "430", source="order-book"),
            conversion("k1", "580.00", at("01:00:00"))]
