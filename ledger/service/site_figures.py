"""The site's figures from a fund's event log: the balance history per asset, fee inflows,
deficits covered and socialized loss per period, coverage (fund versus open-interest
notional) and every socialized-loss and ADL event; and the CSV files of the first and last.

Amounts are integers in minor units while summed and decimal strings in the output
(auditor.formats.wire); nothing here is a float. `SiteError` names the event that cannot be
read.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from datetime import timedelta
from fractions import Fraction
from typing import Any

from auditor.formats.wire import (
    format_amount,
    format_decimal,
    format_time,
    parse_decimal,
    parse_instant,
    parse_time,
)
from ledger.domain.bookkeeping import FUND, moves

# The running totals (ledger.domain.bookkeeping) summed per period, and their CSV columns.
FLOWS = {"inflow": "fees", "covered": "covered", "socialized": "socialized"}
RATIO_PLACES = 12  # as a snapshot's fund_to_oi
DAY_PERIOD_AFTER = timedelta(days=3)  # a longer history is summed per day, not per hour


class SiteError(ValueError):
    """A published directory cannot be used; the message is one line naming the file."""


def _period(time: str, daily: bool) -> str:
    return f"{time[:10]}T00:00:00Z" if daily else f"{time[:13]}:00:00Z"


def _periods(first: str, last: str, daily: bool) -> list[str]:
    """Every period from the one holding `first` to the one holding `last`."""
    step = timedelta(days=1) if daily else timedelta(hours=1)
    at = parse_time(_period(first, daily))
    end = _period(last, daily)
    out = []
    while True:
        text = format_time(at)
        out.append(text)
        if text >= end:
            return out
        at += step


def figures(lines: list[bytes]) -> dict[str, Any]:
    """Balances, flows per period, coverage and the socialized-loss/ADL events of the log."""
    decimals: dict[str, int] = {}
    quotes: dict[str, str] = {}
    balance: dict[str, int] = defaultdict(int)
    history: dict[str, list[list[Any]]] = defaultdict(list)
    flows: list[tuple[str, str, str, int]] = []  # (time, asset, column, units)
    coverage: dict[str, list[list[str]]] = defaultdict(list)
    liquidations: dict[str, tuple[str, str]] = {}  # ref -> (market, liquidated account)
    events: list[dict[str, Any]] = []
    times: list[str] = []
    for number, line in enumerate(lines):
        try:
            event = json.loads(line)
            kind, data, time = event["type"], event["data"], event["time"]
            moved = moves(kind, data, decimals)
        except (ValueError, KeyError, TypeError) as error:
            raise SiteError(f"event {number}: {error}") from None
        times.append(time)
        if kind == "fund_opened":
            decimals.update({a: v["decimals"] for a, v in data["assets"].items()})
            # v1 names a market's quote; a format 2 market its settlement asset (the fund-wide
            # figures; per-pool display is not shown yet)
            quotes.update({m: v.get("quote") or v["settlement"] for m, v in data["markets"].items()})
        elif kind == "market_assigned" and data["spec"] is not None:  # a v2 listing
            quotes[data["market"]] = data["spec"]["settlement"]
        for asset, name, units, _ in moved:
            if name == FUND:
                balance[asset] += units
                history[asset].append([time, event["index"],
                                       format_amount(balance[asset], decimals[asset])])
            elif name in FLOWS:
                flows.append((time, asset, FLOWS[name], units))
        if kind in ("liquidation_settled", "large_liquidation_settled"):
            liquidations[event["ref"]] = (data["market"], data["account"])
        elif kind == "market_observed":
            quote = quotes.get(data["market"])
            if quote is not None:
                places = decimals[quote]
                fund = Fraction(balance[quote], 10**places)
                notional = parse_decimal(data["mark_price"]) * parse_decimal(data["open_interest"])
                ratio = format_decimal(fund / notional, RATIO_PLACES) if notional else ""
                coverage[data["market"]].append([time, format_amount(balance[quote], places),
                                                 format_decimal(notional, places), ratio])
        if kind in ("socialized_loss_assessed", "clawback_charged"):
            market, liquidated = liquidations.get(event["ref"], ("", ""))
            adl = kind == "clawback_charged" and data["method"] == "adl"
            events.append({
                "index": event["index"], "time": time, "ref": event["ref"], "market": market,
                "kind": "socialized loss" if kind == "socialized_loss_assessed" else
                        "ADL" if adl else "clawback",
                "account": liquidated if kind == "socialized_loss_assessed" else data["account"],
                "asset": data["asset"], "amount": data["amount"], "method": data["method"],
                "unresolved": data.get("unresolved") or "",
                "adl_quantity": data.get("adl_quantity") or "", "adl_price": data.get("adl_price") or "",
            })
    daily = bool(times) and (parse_instant(times[-1]) - parse_instant(times[0])
                             > DAY_PERIOD_AFTER)
    return {"decimals": decimals, "balances": dict(history), "events": events,
            "coverage": {m: {"quote": quotes[m], "points": p} for m, p in coverage.items()},
            "period": "day" if daily else "hour",
            "flows": _flow_rows(flows, times, decimals, daily)}


def _flow_rows(flows: list[tuple[str, str, str, int]], times: list[str],
               decimals: dict[str, int], daily: bool) -> list[dict[str, str]]:
    """Fee inflows, deficits covered and socialized loss per asset and period (every period
    from the first event to the last, so a quiet one shows as zero)."""
    columns = tuple(FLOWS.values())
    sums: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(columns, 0))
    for time, asset, column, units in flows:
        sums[(_period(time, daily), asset)][column] += units
    if not times:
        return []
    rows = []
    for asset in sorted(decimals):
        for period in _periods(times[0], times[-1], daily):
            row = sums.get((period, asset), dict.fromkeys(columns, 0))
            rows.append({"period": period, "asset": asset,
                         **{k: format_amount(v, decimals[asset]) for k, v in row.items()}})
    return rows


def flatten(value: Any, prefix: str = "") -> list[list[str]]:
    """[path, value] leaves of a nested JSON value (metrics.risk, whatever its shape)."""
    if isinstance(value, dict):
        return [leaf for k in sorted(value) for leaf in flatten(value[k], f"{prefix}{k}.")]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in flatten(v, f"{prefix}{i}.")]
    text = value if isinstance(value, str) else "" if value is None else json.dumps(value)
    return [[prefix.rstrip("."), text]]


# A cell a spreadsheet would read as a formula (OWASP, CSV injection): it starts with one of
# these. Such a cell gets a leading "'" so it is shown as text, except in a numeric column
# when it is a plain decimal number (a negative amount such as -12.50 stays a number).
FORMULA_START = "=+-@\t\r"
PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def safe_cell(value: Any, numeric: bool) -> str:
    """`value` as a CSV cell no spreadsheet evaluates: prefixed with "'" when it starts like a
    formula, unless `numeric` (its column holds numbers) and it is a plain decimal number."""
    text = str(value)
    if not text or text[0] not in FORMULA_START:
        return text
    if numeric and PLAIN_NUMBER.fullmatch(text):
        return text
    return "'" + text


def _csv(header: list[str], rows: list[list[Any]], numeric: set[str]) -> bytes:
    """The CSV of `rows` under `header`, every cell made safe (`safe_cell`; the columns in
    `numeric` hold numbers); rows end in LF. A cell holding a CR is quoted too: the csv module
    quotes a CR only when it is part of the line terminator, so such a row is written with
    CRLF, which then becomes LF."""
    flags = [name in numeric for name in header]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in [header, *rows]:
        cells = [safe_cell(v, f) for v, f in zip(row, flags, strict=True)]
        if any("\r" in cell for cell in cells):
            part = io.StringIO()
            csv.writer(part, lineterminator="\r\n").writerow(cells)
            out.write(part.getvalue()[:-2] + "\n")
        else:
            writer.writerow(cells)
    return out.getvalue().encode("utf-8")


def balances_csv(data: dict[str, Any]) -> bytes:
    """time,index,asset,balance: the fund balance after each event that changes it."""
    rows = sorted(([t, i, asset, b] for asset, points in data["balances"].items()
                   for t, i, b in points), key=lambda r: (r[1], r[2]))
    return _csv(["time", "index", "asset", "balance"], rows, {"index", "balance"})


EVENT_COLUMNS = ["index", "time", "kind", "market", "account", "asset", "amount", "method",
                 "unresolved", "adl_quantity", "adl_price", "ref"]
EVENT_NUMBERS = {"index", "amount", "unresolved", "adl_quantity", "adl_price"}


def events_csv(data: dict[str, Any]) -> bytes:
    """Every socialized-loss and ADL/clawback event, one per row, in log order."""
    return _csv(EVENT_COLUMNS, [[e[c] for c in EVENT_COLUMNS] for e in data["events"]],
                EVENT_NUMBERS)
