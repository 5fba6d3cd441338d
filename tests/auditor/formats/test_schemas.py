"""The wire-format JSON Schemas: well-formed, accept hand-written valid documents, reject bad ones."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from tests.auditor.formats.documents import H2, SNAPSHOT, TOTALS, H

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
NAMES = ["event", "snapshot", "event-proof", "consistency-proof", "account-proof"]


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads((SCHEMAS / f"{name}.schema.json").read_text("utf-8")))


def ev(index, type_, data, ref="x-1"):
    return {"index": index, "type": type_, "version": 1, "fund": "main",
            "time": "2020-03-12T00:00:00Z", "ref": ref, "data": data}


POLICY = {"version": 1, "minimum_reserve": {"USDT": "0.00"}, "per_event_cap": {"USDT": "1000000.00"},
          "fee_cap_rate": "0.005",
          "fund_share": {"volatility": {"window": 20, "breakpoints": [["0.00", "0.5"], ["0.02", "1"]]}},
          "socialization": "pro_rata_profit"}
OUTCOME = {"bankruptcy_price": "51000.00000000", "delta": "-51.00", "fee": "0.00", "remainder": "0.00",
           "share": "1.000000000000", "volatility": "0.000000000000", "deficit": "51.00",
           "fund_payment": "50.00", "socialized": "1.00", "unresolved": "0.00", "method": "pro_rata_profit"}
VALID_EVENTS = [
    ev(0, "fund_opened", {"fund": "main", "assets": {"USDT": {"decimals": 2}},
                          "markets": {"BTC-PERP": {"quote": "USDT"}}}, ref=None),
    ev(1, "policy_set", {"policy_version": 1, "policy": POLICY, "policy_hash": H}),
    ev(2, "liquidation_settled", {
        "account": "acct-1", "market": "BTC-PERP", "side": "long", "size": "0.1",
        "entry_price": "60000", "collateral": "900", "fill_price": "50490", "mark_price": "50500",
        "counterparties": [{"account": "a", "size": "1", "entry_price": "50000",
                            "unrealized_pnl": "1.00", "collateral": "10"}],
        "asset": "USDT", "policy_version": 1, "outcome": OUTCOME}),
    ev(3, "fee_inflow", {"kind": "trading_fee_share", "asset": "USDT", "amount": "28.05", "account": None}),
    ev(4, "deficit_covered", {"asset": "USDT", "amount": "50.00", "account": "acct-1"}),
    ev(5, "socialized_loss_assessed", {"asset": "USDT", "amount": "1.00", "method": "adl",
                                       "unresolved": "0.00"}),
    ev(6, "clawback_charged", {"asset": "USDT", "account": "a", "amount": "1.00", "method": "adl",
                               "adl_quantity": "0.00100000", "adl_price": "51000.00000000"}),
    ev(7, "capital_injected", {"asset": "USDT", "amount": "1000.00", "source": "operator"}),
    ev(8, "capital_withdrawn", {"asset": "USDT", "amount": "1.00", "source": "underwriter"}),
    ev(9, "reserve_rebalanced", {"from_asset": "USDT", "from_amount": "10.00", "to_asset": "USDC",
                                 "to_amount": "9.99"}),
    ev(10, "market_observed", {"market": "BTC-PERP", "mark_price": "50000.5", "open_interest": "12.5"}),
]
EVENT_PROOF = {"format": "backstop-event-proof/1", "event": VALID_EVENTS[3], "index": 3,
               "log_size": 11, "log_root": H, "proof": [H, H2]}
CONSISTENCY = {"format": "backstop-consistency-proof/1", "old": {"size": 3, "root": H},
               "new": {"size": 11, "root": H2}, "proof": [H]}
ACCOUNT_PROOF = {"format": "backstop-account-proof/1", "account": "acct-1", "nonce": H,
                 "totals": {"USDT": TOTALS}, "index": 0, "count": 2, "root": H2,
                 "path": [{"hash": H, "sums": {"USDT": TOTALS}}]}
VALID = {"snapshot": SNAPSHOT, "event-proof": EVENT_PROOF, "consistency-proof": CONSISTENCY,
         "account-proof": ACCOUNT_PROOF}


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_valid_2020_12(name):
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text("utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == f"https://backstop.example/schemas/{name}.schema.json"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("event", VALID_EVENTS, ids=lambda e: e["type"])
def test_valid_events(event):
    assert list(validator("event").iter_errors(event)) == []


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_documents(name):
    assert list(validator(name).iter_errors(VALID[name])) == []


def _mutated(doc, path, value=KeyError):
    """Copy of `doc` with the item at `path` replaced (or deleted when value is KeyError)."""
    doc = copy.deepcopy(doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


BAD_EVENTS = {
    "float amount": _mutated(VALID_EVENTS[7], ["data", "amount"], 1000.0),
    "exponent amount": _mutated(VALID_EVENTS[7], ["data", "amount"], "1e3"),
    "negative amount": _mutated(VALID_EVENTS[4], ["data", "amount"], "-50.00"),
    "missing amount": _mutated(VALID_EVENTS[3], ["data", "amount"]),
    "missing ref": _mutated(VALID_EVENTS[3], ["ref"]),
    "null ref on external event": _mutated(VALID_EVENTS[7], ["ref"], None),
    "bad policy hash": _mutated(VALID_EVENTS[1], ["data", "policy_hash"], H.upper()),
    "short hash": _mutated(VALID_EVENTS[1], ["data", "policy_hash"], H[:-2]),
    "unknown type": _mutated(VALID_EVENTS[3], ["type"], "fee_refund"),
    "data of another type": _mutated(VALID_EVENTS[7], ["type"], "market_observed"),
    "extra data field": _mutated(VALID_EVENTS[3], ["data", "note"], "hi"),
    "bad side": _mutated(VALID_EVENTS[2], ["data", "side"], "up"),
    "float price": _mutated(VALID_EVENTS[10], ["data", "mark_price"], 50000.5),
    "missing outcome field": _mutated(VALID_EVENTS[2], ["data", "outcome", "unresolved"]),
    "bad time": _mutated(VALID_EVENTS[3], ["time"], "2020-03-12 00:00:00"),
    "fund_opened not at 0": _mutated(VALID_EVENTS[0], ["index"], 5),
}


@pytest.mark.parametrize("event", BAD_EVENTS.values(), ids=list(BAD_EVENTS))
def test_invalid_events(event):
    assert not validator("event").is_valid(event)


BAD_DOCS = [
    ("snapshot", ["log", "root"], "xyz"),
    ("snapshot", ["reserves", "USDT"], 123.45),
    ("snapshot", ["accounts", "count"], KeyError),
    ("snapshot", ["signatures"], []),
    ("snapshot", ["format"], "backstop-snapshot/2"),
    ("event-proof", ["proof", 0], H[:10]),
    ("event-proof", ["log_root"], KeyError),
    ("consistency-proof", ["old", "size"], -1),
    ("consistency-proof", ["new", "root"], KeyError),
    ("account-proof", ["totals", "USDT", "fees"], 28.05),
    ("account-proof", ["path", 0, "hash"], H.upper()),
    ("account-proof", ["nonce"], KeyError),
]


@pytest.mark.parametrize("name, path, value", BAD_DOCS, ids=lambda x: str(x))
def test_invalid_documents(name, path, value):
    assert not validator(name).is_valid(_mutated(VALID[name], path, value))


def test_packaged_validator_loads_them():
    from auditor.formats.schemas import first_error

    assert first_error("event", VALID_EVENTS[3]) is None
    assert first_error("event", BAD_EVENTS["missing amount"]) is not None
