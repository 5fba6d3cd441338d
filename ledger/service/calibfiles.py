"""The inputs and output of `backstop risk calibrate`: price history from the fund's log
(`market_observed` marks) and from CSV files of candles, and the model file written
all-or-nothing. The estimators are pure (ledger.risk.calibrate); this is where they meet files.

Candle CSV (schemas/README.md, "Risk model file"): a header naming at least `time`, `market`
and `close` (any case; other columns such as open, high, low, volume are ignored), then one row
per candle. `time` is the candle's time in UTC: integer epoch seconds, an ISO 8601 date-time
(`2020-03-12T00:01:00Z`; no offset means UTC) or a date (midnight UTC).
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from auditor.formats.wire import parse_decimal, parse_instant
from ledger.service.application import Ledger
from ledger.service.outputs import OutputExists, check_outputs, write_outputs

Series = dict[str, tuple[np.ndarray, np.ndarray]]


class CalibFileError(ValueError):
    """An unusable input or output of the calibration: one line, for exit code 2."""


def _seconds(text: str) -> float:
    text = text.strip()
    if text.lstrip("-").isdigit():
        return float(int(text))
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _series(rows: dict[str, list[tuple[float, float, int]]], where: str) -> Series:
    """Sorted (times, prices) per market; a repeated time is refused, naming its line."""
    out = {}
    for market, points in rows.items():
        points.sort()
        for (t0, _, _), (t1, _, line) in itertools.pairwise(points):
            if t0 == t1:
                raise CalibFileError(f"{where}: line {line}: time: {market} has two prices at "
                                     "this time")
        out[market] = (np.array([p[0] for p in points]), np.array([p[1] for p in points]))
    return out


def read_candles(path: Path) -> tuple[Series, str]:
    """(market -> (times in seconds, close prices)) of a candle CSV, and the SHA-256 of its
    bytes. CalibFileError: `FILE: line N: column: reason`."""
    try:
        data = path.read_bytes()
        text = data.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise CalibFileError(f"{path}: cannot read ({getattr(error, 'strerror', None) or error})"
                             ) from None
    reader = csv.reader(text.splitlines())
    header = [cell.strip().lower() for cell in next(reader, [])]
    for column in ("time", "market", "close"):
        if column not in header:
            raise CalibFileError(f"{path}: line 1: header: no '{column}' column (needs time, "
                                 "market, close)")
    at = {c: header.index(c) for c in ("time", "market", "close")}
    rows: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for number, row in enumerate(reader, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise CalibFileError(f"{path}: line {number}: has {len(row)} values, the header "
                                 f"names {len(header)}")
        market = row[at["market"]].strip()
        if not market:
            raise CalibFileError(f"{path}: line {number}: market: empty")
        try:
            seconds = _seconds(row[at["time"]])
        except ValueError:
            raise CalibFileError(f"{path}: line {number}: time: {row[at['time']].strip()[:40]!r} "
                                 "is not epoch seconds, an ISO 8601 date-time or a date") from None
        try:
            close = float(row[at["close"]])
        except ValueError:
            close = math.nan
        if not math.isfinite(close) or close <= 0:
            raise CalibFileError(f"{path}: line {number}: close: "
                                 f"{row[at['close']].strip()[:40]!r} is not a positive price")
        rows[market].append((seconds, close, number))
    if not rows:
        raise CalibFileError(f"{path}: line 2: no candles")
    return _series(rows, str(path)), hashlib.sha256(data).hexdigest()


def ledger_marks(ledger: Ledger, fund: str) -> tuple[Series, str]:
    """(market -> (times, mark prices)) of the fund's `market_observed` events, and the
    SHA-256 of those events' exported lines, in log order."""
    digest = hashlib.sha256()
    rows: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for number, line in enumerate(ledger.log_lines(fund)):
        if b"market_observed" not in line:  # most of a log: skip without parsing
            continue
        event = json.loads(line)
        if event.get("type") != "market_observed":
            continue
        digest.update(line if line.endswith(b"\n") else line + b"\n")
        data = event["data"]
        rows[data["market"]].append((parse_instant(event["time"]).timestamp(),
                                     float(parse_decimal(data["mark_price"])), number))
    return _series(rows, f"fund {fund}: event"), digest.hexdigest()


def write_model(document: dict[str, Any], out: Path, force: bool) -> None:
    """The model file, whole or not at all."""
    data = (json.dumps(document, indent=1, sort_keys=True) + "\n").encode("utf-8")
    try:
        write_outputs([(out, data)], force)
    except OutputExists as error:
        raise CalibFileError(f"--out {error}") from None


def check_out(out: Path, force: bool) -> None:
    """Refuse, before reading anything, an output that may not be written."""
    try:
        check_outputs([out], force)
    except OutputExists as error:
        raise CalibFileError(f"--out {error}") from None


def read_model(path: Path) -> tuple[dict[str, Any], str]:
    """A model file's document and the SHA-256 of its bytes (checked by the caller)."""
    try:
        data = path.read_bytes()
        document = json.loads(data)
    except (OSError, ValueError) as error:
        raise CalibFileError(f"--model {path}: not a readable JSON file ({error})") from None
    return document, hashlib.sha256(data).hexdigest()
