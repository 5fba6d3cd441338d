"""The canonical event export: one RFC 8785 JSON object per line, in log order."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import BinaryIO

from ledger.service.application import Ledger


def write_export(ledger: Ledger, fund: str, path: Path, size: int,
                 prefix: tuple[Path, int] | None = None) -> int:
    """Write the first `size` events of `fund` to `path` ("-" for stdout); return the count.

    `prefix` = (an earlier export of this fund, its event count) is copied instead of being
    re-serialized. Writes to a temporary file first and renames it, so a reader never sees
    half an export.
    """
    if str(path) == "-":
        return _write(ledger, fund, sys.stdout.buffer, 0, size)
    partial = path.with_name(path.name + ".partial")
    start = 0
    if prefix is not None and prefix[1] <= size:
        shutil.copyfile(prefix[0], partial)
        start = prefix[1]
    with partial.open("ab" if start else "wb") as stream:
        count = start + _write(ledger, fund, stream, start, size)
    partial.replace(path)
    return count


def _write(ledger: Ledger, fund: str, stream: BinaryIO, start: int, size: int) -> int:
    count = 0
    for line in ledger.log_lines(fund, start, size):  # stored canonical (ledger.store.mapper)
        stream.write(line + b"\n")
        count += 1
    return count
