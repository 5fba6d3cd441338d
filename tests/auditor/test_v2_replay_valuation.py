"""The auditor on prices and conversions (schemas/README.md "Format v2 (pools)", "Valued
assets and conversions"), on a hand-built log with no ledger: K1 verifies; each change below
is FAILED (exit 1) naming the event and the field. Numbers worked by hand in the comments."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.auditor.v2_kit import DAY, Event, policy_event, replay, write

FUND = "vfund"
ASSETS = {"USDT": {"haircut": "0.01", "source": "oracle"},
          "XBT": {"haircut": "0.10", "source": "oracle"},
          "WBETH": {"haircut": "0.05", "source": "redemption_ratio", "underlying": "ETH"},
          "ETH": {"haircut": "0.10", "source": "oracle"}}
POLICY = {"format": "backstop-policy/2", "version": 1, "fee_cap_rate": "0.005",
          "fund_share": {"fixed": "0.5"}, "socialization": "pro_rata_profit", "pools": {},
          "assets": ASSETS, "layers": []}
T = f"{DAY}00:00:00Z"
K1 = {"pool": "btc", "from_asset": "XBT", "from_amount": "0.01000000", "to_asset": "USDT",
      "to_amount": "580.00", "venue": "spot-desk", "rate": "58000.000000000000",
      "from_price": "60000", "to_price": "0.9995", "from_haircut": "0.10", "to_haircut": "0.01"}


def price(asset: str, value: str, kind: str = "price",
          underlying: str | None = None) -> dict[str, Any]:
    return {"asset": asset, "kind": kind, "value": value,
            "currency": "USD" if kind == "price" else None, "underlying": underlying,
            "source": "oracle-x"}


def log(policy: dict[str, Any] = POLICY) -> list[Event]:
    opened = {"fund": FUND, "assets": {a: {"decimals": 2 if a == "USDT" else 8} for a in ASSETS},
              "valuation": {"currency": "USD", "decimals": 2},
              "pools": {"btc": {"kind": "isolated"}, "main": {"kind": "shared"}},
              "markets": {"BTC-PERP": {"kind": "linear", "settlement": "USDT", "pool": "main"}}}
    typ, version, ref, data = policy_event(policy)
    return [("fund_opened", 2, T, None, opened), (typ, version, T, ref, data),
            ("capital_injected", 2, T, "in-btc", {"asset": "XBT", "amount": "0.02000000",
                                                  "source": "operator", "pool": "btc"}),
            ("asset_priced", 1, T, "p-xbt", price("XBT", "60000")),
            ("asset_priced", 1, T, "p-usdt", price("USDT", "0.9995")),
            ("asset_priced", 1, T, "r-wbeth", price("WBETH", "1.05", "ratio", "ETH")),
            ("asset_converted", 1, T, "k1", dict(K1)),
            # one account, so that the snapshot's account tree is not the empty one
            ("fee_inflow", 2, T, "fee-1", {"pool": "main", "kind": "trading_fee_share",
                                           "asset": "USDT", "amount": "1.00",
                                           "account": "acct-1"})]


def audited(tmp: Path, events: list[Event]) -> tuple[int, dict[str, Any]]:
    # btc: 0.02 - 0.01 XBT, 580.00 USDT; main the fee's 1.00 USDT
    paths = write(tmp, events, FUND, reserves={"USDT": "581.00", "XBT": "0.01000000",
                                               "WBETH": "0.00000000", "ETH": "0.00000000"},
                  totals={a: {"fees": "1.00" if a == "USDT" else z, "payouts": z, "clawbacks": z}
                          for a, z in (("USDT", "0.00"), ("XBT", "0.00000000"),
                                       ("WBETH", "0.00000000"), ("ETH", "0.00000000"))},
                  accounts=1, policy=events[1][4]["policy"])
    return replay(*paths)


def test_k1_verifies(tmp_path: Path) -> None:
    code, doc = audited(tmp_path, log())
    assert code == 0, doc
    assert doc["pools"]["btc"] == {"ETH": "0.00000000", "USDT": "580.00", "WBETH": "0.00000000",
                                   "XBT": "0.01000000"}


def changed(index: int, **data: Any) -> list[Event]:
    events = copy.deepcopy(log())
    typ, version, time, ref, old = events[index]
    events[index] = (typ, version, time, ref, {**old, **data})
    return events


def with_assets(**assets: Any) -> list[Event]:
    return log({**POLICY, "assets": assets})


CASES = [
    (changed(3, currency="EUR"), "event 3: data.currency: 'EUR' is not the valuation currency USD"),
    (changed(3, underlying="ETH"), "event 3: data.underlying: must be null for kind price"),
    (changed(3, value="0"), "event 3: data.value: '0' is not positive"),
    (changed(3, value="1." + "0" * 63), "event 3: data.value: more than 64 characters"),
    (changed(3, kind="mid"), "event 3: data.kind: 'mid' is not price or ratio"),
    (changed(3, asset="DOGE"), "event 3: data.asset: 'DOGE' is not an asset of the fund"),
    (changed(5, underlying="WBETH"),
     "event 5: data.underlying: 'WBETH' is not another asset of the fund"),
    (changed(5, currency="USD"), "event 5: data.currency: must be null for kind ratio"),
    # K2 / K3 against [540.28, 606.36]
    (changed(6, to_amount="700.00", rate="70000.000000000000"),
     ("event 6: data.to_amount: 700.00 is outside [540.28, 606.36] for the recorded prices and "
     "haircuts")),
    (changed(6, to_amount="530.00", rate="53000.000000000000"),
     ("event 6: data.to_amount: 530.00 is outside [540.28, 606.36] for the recorded prices and "
     "haircuts")),
    (changed(6, to_haircut="0.02"),
     "event 6: data.to_haircut: expected 0.01 (the policy's haircut of USDT), got '0.02'"),
    (changed(6, to_price="1"),
     "event 6: data.to_price: expected 0.9995 (π of USDT at this index), got '1'"),
    (changed(6, to_asset="XBT"), "event 6: data.to_asset: is from_asset XBT"),
    # 0.03 XBT out of btc's 0.02 (the bound holds at 3x: 1740.00 in [1620.82, 1819.09])
    (changed(6, from_amount="0.03000000", to_amount="1740.00"),
     ("event 6: data.amount: takes pool btc below zero in XBT (balance 0.02000000, amount "
     "0.03000000)")),
    (changed(6, from_asset="WBETH", from_price="3150", from_haircut="0.05"),
     "event 6: data.from_asset: no valuation price for WBETH"),
    (with_assets(**{**ASSETS, "XBT": {**ASSETS["XBT"], "floor": "1000"}}),
     "event 1: data.policy.assets.XBT.floor: only a redemption_ratio asset may have a floor"),
    (with_assets(WBETH=ASSETS["WBETH"]),
     ("event 1: data.policy.assets.WBETH.underlying: 'ETH' is not a fund asset valued par or "
     "oracle")),
]


@pytest.mark.parametrize(("events", "reason"), CASES,
                         ids=[f"{i}:{r.split(': ')[1]}" for i, (_, r) in enumerate(CASES)])
def test_refused_naming_the_event(tmp_path: Path, events: list[Event], reason: str) -> None:
    code, doc = audited(tmp_path, events)
    assert code == 1, doc
    assert doc["reason"] == f"replay: {reason}"
