"""Exchange facts: validation, and the normal form that makes recording idempotent.

A fact's normal form has amounts in their exact wire form and optional fields made explicit.
It can be read back from the event the fact caused, so a re-recorded id is compared field by
field with what the log holds, and the idempotency index needs only the id and its position.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

import fastjsonschema

from auditor.formats.bounds import MAX_COUNTERPARTIES
from auditor.formats.schemas import first_error, load_schema
from auditor.formats.wire import format_amount, parse_amount_lenient
from ledger.domain.errors import FactError

LIQUIDATION_FIELDS = ("account", "market", "side", "size", "entry_price", "collateral",
                      "fill_price", "mark_price")
# Event type -> fact type, for events that a fact causes directly (not derived by the waterfall).
FACT_OF_EVENT = {
    "policy_set": "policy",
    "liquidation_settled": "liquidation",
    "large_liquidation_settled": "liquidation",  # format v1.1: with its counterparties_listed
    "fee_inflow": "fee",
    "capital_injected": "capital",
    "capital_withdrawn": "capital",
    "reserve_rebalanced": "rebalance",
    "market_observed": "observation",
    # format 2 (ledger.domain.poolfund)
    "pool_created": "pool",
    "market_assigned": "assignment",
    "capital_transferred": "transfer",
    "claim_cap_set": "claim_cap",
    "asset_priced": "price",
    "asset_converted": "conversion",
}
TRANSFER_FIELDS = ("from_pool", "to_pool", "asset", "amount", "authority", "reason")
PRICE_FIELDS = ("asset", "kind", "value", "source", "currency", "underlying")
CONVERSION_FIELDS = ("pool", "from_asset", "from_amount", "to_asset", "to_amount", "venue")


@cache
def _type_validators() -> dict[str, Callable[[Any], Any]]:
    """One compiled check per fact type, cut from schemas/facts.schema.json (its if/then
    blocks, references inlined). `fastjsonschema` compiles them to plain Python, ~20x faster
    than interpreting the schema per record, which is most of an import's time otherwise;
    the `jsonschema` package still words the message when a record fails."""
    schema = load_schema("facts")
    validators = {}
    for block in schema["allOf"]:
        kind = block["if"]["properties"]["type"]["const"]
        validators[kind] = fastjsonschema.compile(_inline(block["then"], schema["$defs"]))
    return validators


def compile_validators() -> None:
    """Compile the per-type checks now (they are compiled on first use otherwise)."""
    _type_validators()


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Replace local `#/$defs/NAME` references by their target ($ref lookups dominate)."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {key: _inline(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    return node


def validate(record: Any) -> None:
    """Check a fact against schemas/facts.schema.json; raise FactError naming the field."""
    if not isinstance(record, dict):
        raise FactError("(record): must be a JSON object")
    kind = record.get("type")
    listed = record.get("counterparties")
    if kind == "liquidation" and isinstance(listed, list) and len(listed) > MAX_COUNTERPARTIES:
        # Said at once: both schema checks would first walk every one of them.
        raise FactError(f"counterparties: {len(listed):,} counterparties "
                        f"(at most {MAX_COUNTERPARTIES:,} items)")
    check = _type_validators().get(kind) if isinstance(kind, str) else None  # a list: unhashable
    if check is not None:
        try:
            check(record)
            return
        except fastjsonschema.JsonSchemaException:
            pass
    error = first_error("facts", record)
    if error is not None:
        raise FactError(error)


def _amount(record: Mapping[str, Any], field: str, asset: str, decimals: Mapping[str, int]) -> str:
    if asset not in decimals:
        raise FactError(f"{field.replace('amount', 'asset')}: unknown asset {asset!r}")
    try:
        return format_amount(parse_amount_lenient(record[field], decimals[asset]), decimals[asset])
    except ValueError as error:
        raise FactError(f"{field}: {error}") from None


def normal_form(record: Mapping[str, Any], decimals: Mapping[str, int],
                markets: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The fact with amounts in their exact wire form and optional fields made explicit.

    `markets` (market -> settlement asset) is a format 2 fund's: a `claim_cap`'s amounts are
    in its market's asset. A `fee` or `capital` names its `pool` only when it has one."""
    kind = record["type"]
    base = {"type": kind, "id": record["id"], "time": record["time"]}
    if kind == "liquidation":
        return {**base, **{f: record[f] for f in LIQUIDATION_FIELDS},
                "counterparties": list(record.get("counterparties") or [])}
    if kind == "fee":
        fee = {**base, "kind": record["kind"], "asset": record["asset"],
               "amount": _amount(record, "amount", record["asset"], decimals),
               "account": record.get("account")}
        return fee if "pool" not in record else {**fee, "pool": record["pool"]}
    if kind == "capital":
        capital = {**base, "direction": record["direction"], "asset": record["asset"],
                   "amount": _amount(record, "amount", record["asset"], decimals),
                   "source": record["source"]}
        return capital if "pool" not in record else {**capital, "pool": record["pool"]}
    if kind in ("pool", "assignment", "transfer", "claim_cap"):
        return {**base, **_structure_form(record, decimals, markets or {})}
    if kind == "price":
        return {**base, **{f: record.get(f) for f in PRICE_FIELDS}}
    if kind == "conversion":
        return {**base, **{f: record[f] for f in CONVERSION_FIELDS},
                "from_amount": _amount(record, "from_amount", record["from_asset"], decimals),
                "to_amount": _amount(record, "to_amount", record["to_asset"], decimals)}
    if kind == "rebalance":
        return {**base, "from_asset": record["from_asset"],
                "from_amount": _amount(record, "from_amount", record["from_asset"], decimals),
                "to_asset": record["to_asset"],
                "to_amount": _amount(record, "to_amount", record["to_asset"], decimals)}
    if kind == "observation":
        return {**base, "market": record["market"], "mark_price": record["mark_price"],
                "open_interest": record["open_interest"]}
    if kind == "policy":
        return {**base, "policy": record["policy"]}
    raise FactError(f"type: unknown fact type {kind!r}")


def _structure_form(record: Mapping[str, Any], decimals: Mapping[str, int],
                    markets: Mapping[str, str]) -> dict[str, Any]:
    """The normal form's fields of a format 2 structure fact (draft section 2.5)."""
    kind = record["type"]
    if kind == "pool":
        return {"pool": record["pool"], "kind": record["kind"]}
    if kind == "assignment":
        return {"market": record["market"], "pool": record["pool"], "reason": record["reason"],
                "spec": record.get("spec")}
    if kind == "transfer":
        return {**{f: record[f] for f in TRANSFER_FIELDS},
                "amount": _amount(record, "amount", record["asset"], decimals)}
    market = record["market"]
    if market not in markets:
        raise FactError(f"market: unknown market {market}")
    asset = markets[market]

    def cap(field: str) -> str | None:
        return None if record.get(field) is None else _amount(record, field, asset, decimals)

    return {"market": market, "total": cap("total"), "per_period": cap("per_period"),
            "period_seconds": record.get("period_seconds")}


def fact_key_of_event(event: Mapping[str, Any]) -> tuple[str, str] | None:
    """(fact type, exchange id) of the fact that caused an exported event, or None for
    derived events (and the fund's opening)."""
    kind = event["type"]
    fact = FACT_OF_EVENT.get(kind)
    if fact is None or event["ref"] is None or (
            kind == "fee_inflow" and event["data"]["kind"] == "liquidation_fee"):
        return None
    return fact, event["ref"]


def joined_liquidation(head: Mapping[str, Any],
                       chunks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The `liquidation_settled` event a `large_liquidation_settled` head and its
    `counterparties_listed` chunks (in log order) stand for (format v1.1)."""
    data = {key: value for key, value in head["data"].items()
            if key not in ("counterparty_count", "counterparties_sha256")}
    data["counterparties"] = [cp for chunk in chunks for cp in chunk["data"]["counterparties"]]
    return {**head, "type": "liquidation_settled", "data": data}


def normal_form_of_event(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The normal form of the fact that caused an exported event, or None for derived events.

    A `large_liquidation_settled` head holds no counterparties: pass the event
    `joined_liquidation` makes of it and its chunks."""
    key = fact_key_of_event(event)
    if key is None:
        return None
    fact, kind, data = key[0], event["type"], event["data"]
    base = {"type": fact, "id": key[1], "time": event["time"]}
    if fact == "liquidation":
        return {**base, **{f: data[f] for f in LIQUIDATION_FIELDS},
                "counterparties": data["counterparties"]}
    if fact == "fee":
        fee = {**base, "kind": data["kind"], "asset": data["asset"], "amount": data["amount"],
               "account": data.get("account")}
        return fee if "pool" not in data else {**fee, "pool": data["pool"]}
    if fact == "capital":
        direction = "inject" if kind == "capital_injected" else "withdraw"
        capital = {**base, "direction": direction, "asset": data["asset"],
                   "amount": data["amount"], "source": data["source"]}
        return capital if "pool" not in data else {**capital, "pool": data["pool"]}
    if fact == "pool":
        return {**base, "pool": data["pool"], "kind": data["kind"]}
    if fact == "assignment":
        return {**base, **{f: data[f] for f in ("market", "pool", "reason", "spec")}}
    if fact == "transfer":
        return {**base, **{f: data[f] for f in TRANSFER_FIELDS}}
    if fact == "claim_cap":
        return {**base, **{f: data[f] for f in ("market", "total", "per_period",
                                                "period_seconds")}}
    if fact == "price":
        return {**base, **{f: data[f] for f in PRICE_FIELDS}}
    if fact == "conversion":
        return {**base, **{f: data[f] for f in CONVERSION_FIELDS}}
    if fact == "rebalance":
        return {**base, **{f: data[f] for f in ("from_asset", "from_amount", "to_asset",
                                                "to_amount")}}
    if fact == "observation":
        return {**base, **{f: data[f] for f in ("market", "mark_price", "open_interest")}}
    return {**base, "policy": data["policy"]}
