"""The proof-of-reserves formats: snapshot/2 holdings, the balances file, the token list."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.auditor.formats.documents import SNAPSHOT

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
ONCHAIN = {"kind": "onchain", "asset": "USDT", "chain": "eip155:1", "address": ADDRESS,
           "token": "0xdac17f958d2ee523a2206206994597c13d831ec7", "amount": "100.00",
           "block": 19000000, "signature": "0x" + "ab" * 65}
CUSTODIAN = {"kind": "custodian", "asset": "USDT", "custodian": "acme-custody",
             "account": "ACC-1", "amount": "23.45", "as_of": "2020-03-12T00:59:00Z",
             "key": "acme-custody+0a1b2c3d", "signature": "AAAA+/8="}
SNAPSHOT_2 = {**SNAPSHOT, "format": "backstop-snapshot/2", "holdings": [ONCHAIN, CUSTODIAN]}
BALANCES = {"format": "backstop-balances/1", "balances": [
    {"chain": "eip155:1", "address": ADDRESS, "token": None, "block": 1, "balance": "10" * 30}]}
TOKENS = {"format": "backstop-tokens/1", "tokens": [
    {"asset": "ETH", "chain": "eip155:1", "token": None, "decimals": 18}]}


def errors(name: str, doc: Any) -> list[str]:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text("utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == f"https://backstop.example/schemas/{name}.schema.json"
    return [e.message for e in Draft202012Validator(schema).iter_errors(doc)]


@pytest.mark.parametrize(("name", "doc"), [("snapshot", SNAPSHOT_2), ("snapshot", SNAPSHOT),
                                           ("balances", BALANCES), ("tokens", TOKENS)])
def test_valid(name: str, doc: dict[str, Any]) -> None:
    assert errors(name, doc) == []


def test_holdings_belong_to_version_2_only() -> None:
    assert errors("snapshot", {**SNAPSHOT, "holdings": []})  # a /1 with holdings
    without = {k: v for k, v in SNAPSHOT_2.items() if k != "holdings"}
    assert errors("snapshot", without)  # a /2 without


@pytest.mark.parametrize(("index", "field", "value"), [
    (0, "chain", "bitcoin:000000000019d6689c085ae165831e93"),
    (0, "address", "0x1234"),
    (0, "token", "native"),
    (0, "amount", "-1.00"),
    (0, "block", -1),
    (0, "signature", "0x" + "ab" * 64),
    (0, "kind", "custodian"),
    (1, "custodian", "acme custody"),
    (1, "account", "a\nb"),
    (1, "as_of", "2020-03-12"),
    (1, "key", "acme-custody"),
    (1, "extra", 1),
])
def test_invalid_holdings(index: int, field: str, value: Any) -> None:
    doc = copy.deepcopy(SNAPSHOT_2)
    doc["holdings"][index][field] = value
    assert errors("snapshot", doc)


@pytest.mark.parametrize("balance", ["-1", "1.5", "01", "1" * 79])
def test_invalid_balances(balance: str) -> None:
    doc = copy.deepcopy(BALANCES)
    doc["balances"][0]["balance"] = balance
    assert errors("balances", doc)


def test_a_balance_may_give_its_blocks_time() -> None:
    """block_time is optional (files without it stay valid, test_valid); RFC 3339 UTC."""
    for when in ("2020-03-12T00:59:00Z", "2020-03-12T00:59:00.5Z"):
        doc = copy.deepcopy(BALANCES)
        doc["balances"][0]["block_time"] = when
        assert errors("balances", doc) == []


@pytest.mark.parametrize("when", ["2020-03-12 00:59:00Z", "2020-03-12T00:59:00+00:00",
                                  "2020-03-12T00:59:00", 1583974740, None, ""])
def test_invalid_block_times(when: Any) -> None:
    doc = copy.deepcopy(BALANCES)
    doc["balances"][0]["block_time"] = when
    assert errors("balances", doc)
