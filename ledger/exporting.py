"""The canonical event export: one RFC 8785 JSON object per line, in log order."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO

from auditor.wire import canonical_bytes
from ledger.application import Ledger


def export_lines(ledger: Ledger, fund: str, size: int):  # type: ignore[no-untyped-def]
    """Yield the export's lines (bytes, newline-terminated) for the first `size` events."""
    for event in ledger.log_events(fund, 0, size):
        yield canonical_bytes(event) + b"\n"


def write_export(ledger: Ledger, fund: str, path: Path, size: int) -> int:
    """Write the first `size` events of `fund` to `path` ("-" for stdout); return the count.

    Writes to a temporary file first and renames it, so a reader never sees half an export.
    """
    if str(path) == "-":
        return _write(ledger, fund, sys.stdout.buffer, size)
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as stream:
        count = _write(ledger, fund, stream, size)
    partial.replace(path)
    return count


def _write(ledger: Ledger, fund: str, stream: BinaryIO, size: int) -> int:
    count = 0
    for line in export_lines(ledger, fund, size):
        stream.write(line)
        count += 1
    return count
