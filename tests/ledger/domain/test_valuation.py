"""Valued assets by hand (schemas/README.md "Format v2 (pools)", "Valued assets and
conversions"): vector V1, the π rules, K1-K3's bound, on both sides (the ledger's
ledger.domain.valuation and the auditor's auditor.valuation_rules), each value worked in the
README, not copied from the code."""

from __future__ import annotations

from fractions import Fraction
from types import ModuleType
from typing import Any

import pytest

from auditor import valuation_rules
from ledger.domain import valuation

F = Fraction


def terms(side: ModuleType, **spec: dict[str, Any]) -> dict[str, Any]:
    cls = valuation.AssetTerms if side is valuation else valuation_rules.Terms
    return {a: cls(haircut=F(s["haircut"]), haircut_text=s["haircut"], source=s["source"],
                   underlying=s.get("underlying"),
                   floor=F(s["floor"]) if "floor" in s else None) for a, s in spec.items()}


def price_of(side: ModuleType) -> Any:
    return valuation.valuation_price if side is valuation else valuation_rules.pi


SIDES = pytest.mark.parametrize("side", [valuation, valuation_rules], ids=["ledger", "auditor"])

V1_TERMS = {"USDT": {"haircut": "0.01", "source": "oracle"},
            "XBT": {"haircut": "0.10", "source": "oracle"},
            "WBETH": {"haircut": "0.05", "source": "redemption_ratio", "underlying": "ETH"},
            "ETH": {"haircut": "0.10", "source": "oracle"}}
# An order-book price of 430 for WBETH is recorded too: its source is the ratio, so it is ignored.
V1_PRICES = {"USDT": F("0.9995"), "XBT": F(60000), "ETH": F(3000), "WBETH": F(430)}
V1_RATIOS = {("WBETH", "ETH"): F("1.05")}
DECIMALS = {"USDT": 2, "XBT": 8, "WBETH": 8, "ETH": 8}


@SIDES
def test_v1_pool_value_by_hand(side: ModuleType) -> None:
    t = terms(side, **V1_TERMS)
    known = (valuation.valuation_prices if side is valuation else valuation_rules.known_prices)(
        t, V1_PRICES, V1_RATIOS)
    assert known == {"USDT": F("0.9995"), "XBT": F(60000), "ETH": F(3000), "WBETH": F(3150)}
    haircuts = {a: x.haircut for a, x in t.items()}
    balances = {"USDT": 100000, "XBT": 50000000, "WBETH": 200000000, "ETH": 0}
    # USDT 999.50 / 989.50 (989.505 down); XBT 30000.00 / 27000.00; WBETH 6300.00 / 5985.00
    assert side.pool_value(balances, known, haircuts, DECIMALS, 2) == (3729950, 3397450, [])
    assert side.canonical(known["WBETH"]) == "3150"
    assert side.canonical(known["USDT"]) == "0.9995"
    # OI value 600000 USDT at 0.9995 = 599700.00 (a liability: ceil); fund/OI floor_12
    assert side.ceil_v(F(600000) * F("0.9995"), 2) == 59970000
    assert side.floor_v(F(3397450, 100) / F(599700), 12) == 56652492913


@SIDES
def test_an_asset_held_without_a_price_is_unvalued(side: ModuleType) -> None:
    t = terms(side, USDT={"haircut": "0.01", "source": "oracle"},
              XBT={"haircut": "0.10", "source": "oracle"})
    known = {"USDT": F("0.9995")}
    haircuts = {"USDT": F("0.01"), "XBT": F("0.10")}
    # WBETH has no terms at all, XBT no price; ETH is held at 0, so it is not listed
    assert side.pool_value({"XBT": 1, "WBETH": 5, "ETH": 0, "USDT": 100000}, known, haircuts,
                           DECIMALS, 2) == (99950, 98950, ["WBETH", "XBT"])
    assert price_of(side)("XBT", t, {}, {}) is None
    assert price_of(side)("WBETH", t, V1_PRICES, V1_RATIOS) is None


@SIDES
def test_pi_rules(side: ModuleType) -> None:
    pi = price_of(side)
    t = terms(side, USD={"haircut": "0", "source": "par"},
              ETH={"haircut": "0.1", "source": "oracle"},
              STETH={"haircut": "0.05", "source": "redemption_ratio", "underlying": "ETH",
                     "floor": "2000"})
    assert pi("USD", t, {"USD": F(2)}, {}) == 1  # par ignores any recorded price
    assert pi("ETH", t, {"ETH": F(3000)}, {}) == 3000
    # ratio 0.998 to ETH at 3000 = 2994 (above the floor)
    assert pi("STETH", t, {"ETH": F(3000)}, {("STETH", "ETH"): F("0.998")}) == F(2994)
    # ETH wicks to 1500: 0.998 · 1500 = 1497, clamped up to the floor 2000
    assert pi("STETH", t, {"ETH": F(1500)}, {("STETH", "ETH"): F("0.998")}) == 2000
    # a ratio to another underlying does not value it; no ETH price: unknown (floor or not)
    assert pi("STETH", t, {"ETH": F(3000)}, {("STETH", "USD"): F(1)}) is None
    assert pi("STETH", t, {}, {("STETH", "ETH"): F("0.998")}) is None


K = {"XBT": {"haircut": "0.10", "source": "oracle"}, "USDT": {"haircut": "0.01", "source": "oracle"}}


@SIDES
@pytest.mark.parametrize(("to_units", "accepted"), [(58000, True), (70000, False), (53000, False)],
                         ids=["K1", "K2", "K3"])
def test_k_conversion_bound(side: ModuleType, to_units: int, accepted: bool) -> None:
    bound = valuation.conversion_bounds if side is valuation else valuation_rules.bounds
    # V_from = 0.01 · 60000 = 600: L = ceil(540 / 0.9995) = 540.28, U = floor(600 / (0.9995 ·
    # 0.99)) = floor(606.3638...) = 606.36
    low, high = bound(1000000, 8, F(60000), F("0.10"), 2, F("0.9995"), F("0.01"))
    assert (low, high) == (54028, 60636)
    assert (low <= to_units <= high) is accepted


def test_k1_rate() -> None:
    assert valuation.conversion_rate(1000000, 8, 58000, 2) == "58000.000000000000"


@SIDES
def test_canonical(side: ModuleType) -> None:
    assert [side.canonical(x) for x in (F(60000), F("0.9995"), F("-0.1125"), F(0), F("1.050"))] \
        == ["60000", "0.9995", "-0.1125", "0", "1.05"]
