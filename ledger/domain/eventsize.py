"""Every event the fund records fits one C2SP tlog-tiles entry (format v1.1).

A liquidation whose `liquidation_settled` line would be longer than 65,535 bytes is recorded
as a `large_liquidation_settled` head and `counterparties_listed` chunks of at most 32
counterparties (schemas/README.md, "Large liquidations"); any other event is measured where
it can grow (a policy, the fund's configuration) and refused, naming the fact's field, before
anything is recorded. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor.formats.bounds import (
    CHUNK,
    CHUNK_COUNTERPARTIES,
    LARGE_HEAD,
    MAX_ASSETS,
    MAX_EVENT_LINE,
    MAX_MARKETS,
    BoundError,
    check_line,
    counterparties_digest,
    line_length,
)
from ledger.domain.errors import FundRuleError


def exported(index: int, fund: str, kind: str, time: str, ref: str | None,
             data: Mapping[str, Any]) -> dict[str, Any]:
    """The export form of an event not yet triggered (as `fund.export_event` gives it)."""
    return {"index": index, "type": kind, "version": 1, "fund": fund, "time": time,
            "ref": ref, "data": data}


def liquidation_events(index: int, fund: str, time: str, ref: str,
                       data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(type, data) of the events that record a settled liquidation, from log position
    `index` on: `data` (a `liquidation_settled` payload) as it is, or split into a head and
    its chunks when its line would be too long for a tlog-tiles entry."""
    listed = data["counterparties"]
    # 32 counterparties of bounded fields stay far below the bound (schemas/README.md): only
    # a longer list can make a long line, so only then is the line measured.
    if len(listed) <= CHUNK_COUNTERPARTIES or line_length(
            exported(index, fund, "liquidation_settled", time, ref, data)) <= MAX_EVENT_LINE:
        return [("liquidation_settled", data)]
    head = {key: value for key, value in data.items() if key != "counterparties"}
    head["counterparty_count"] = len(listed)
    head["counterparties_sha256"] = counterparties_digest(listed)
    events: list[tuple[str, dict[str, Any]]] = [(LARGE_HEAD, head)]
    for chunk, start in enumerate(range(0, len(listed), CHUNK_COUNTERPARTIES)):
        events.append((CHUNK, {"chunk": chunk,
                               "counterparties": listed[start:start + CHUNK_COUNTERPARTIES]}))
    for offset, (kind, payload) in enumerate(events):  # a guard: the bounds make these short
        _check(exported(index + offset, fund, kind, time, ref, payload), "counterparties")
    return events


def check_policy_line(index: int, fund: str, time: str, ref: str | None,
                      data: Mapping[str, Any]) -> None:
    """Refuse a policy whose `policy_set` event would not fit a tlog-tiles entry."""
    _check(exported(index, fund, "policy_set", time, ref, data), "policy")


def check_fund_config(data: Mapping[str, Any], time: str) -> None:
    """Refuse a fund configuration beyond the bounds: assets, markets, the opening line."""
    for field, bound in (("assets", MAX_ASSETS), ("markets", MAX_MARKETS)):
        if len(data[field]) > bound:
            raise FundRuleError(f"{field}: {len(data[field]):,} {field}, more than the "
                                f"{bound} a fund may have")
    _check(exported(0, data["fund"], "fund_opened", time, None, data), "markets")


def _check(event: Mapping[str, Any], field: str) -> None:
    try:
        check_line(event, field)
    except BoundError as error:
        raise FundRuleError(str(error)) from None
