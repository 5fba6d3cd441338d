"""The site's pool figures of a format v2 fund (issue 23 item 3): per pool its kind, balance
per asset, markets (with fund / open interest where a market was observed, and each market's
claims against its cap), its ADL state at the latest snapshot and every ADL start and end in
the log, and its balances and ADL state at each `backstop-snapshot/3`.

The snapshots are signed and checked before this runs (ledger.service.site); the values are
copied as the snapshots and events state them (decimal strings), nothing is recomputed.
A v1 fund has no `/3` snapshot: `pool_figures` returns None and the site shows no pools.
"""

from __future__ import annotations

import json
from typing import Any

FORMAT_POOLS = "backstop-snapshot/3"
ADL_EVENTS = {"adl_started": "started", "adl_ended": "ended"}
# What an ADL event's row shows (each optional in the other kind of event).
ADL_FIELDS = ("balance", "peak", "peak_index", "peak_time", "ratio", "start_ratio",
              "stop_ratio", "reason")


def adl_events(lines: list[bytes]) -> dict[str, list[dict[str, Any]]]:
    """Every adl_started / adl_ended event of the log, by pool, in log order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        if b'"adl_' not in line:  # most lines: spare them the parse
            continue
        event = json.loads(line)
        kind = ADL_EVENTS.get(event.get("type"))
        if kind is None:
            continue
        data = event["data"]
        out.setdefault(data["pool"], []).append({
            "index": event["index"], "time": event["time"], "event": kind,
            "asset": data.get("asset"), **{k: data.get(k) for k in ADL_FIELDS}})
    return out


def pool_figures(snapshots: list[dict[str, Any]], lines: list[bytes]) -> dict[str, Any] | None:
    """The pools as the latest `/3` of `snapshots` (documents, by log size) states them, their
    balances and ADL state at every `/3` (`history`: [size, time, balances, adl]), and the
    log's ADL events; None when no snapshot is a `/3`."""
    pooled = [doc for doc in snapshots if doc["format"] == FORMAT_POOLS]
    if not pooled:
        return None
    latest = pooled[-1]
    structure = latest["structure"]
    observed = latest["metrics"].get("markets", {})
    adl_states = latest["metrics"].get("pools", {})
    events = adl_events(lines)
    pools = []
    for pool in sorted(structure["pools"]):
        shape = structure["pools"][pool]
        markets = [{"market": m, **structure["markets"].get(m, {}),
                    "observed": observed.get(m), "claims": latest["claims"].get(m)}
                   for m in shape["markets"]]
        pools.append({
            "pool": pool, "kind": shape["kind"],
            "balances": latest["pools"].get(pool, {}).get("balances", {}),
            "markets": markets,
            "adl": (adl_states.get(pool) or {}).get("adl"),
            "adl_events": events.get(pool, []),
            "history": [[doc["log"]["size"], doc["time"],
                         doc["pools"].get(pool, {}).get("balances", {}),
                         (doc["metrics"].get("pools", {}).get(pool) or {}).get("adl")]
                        for doc in pooled],
        })
    return {"size": latest["log"]["size"], "time": latest["time"],
            "valuation": structure.get("valuation"), "pools": pools}
