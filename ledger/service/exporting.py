"""The canonical event export: one RFC 8785 JSON object per line, in log order."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
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
    # A fresh, unpredictable name (created exclusively, so never through a symlink), synced
    # before the rename and removed on failure.
    fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial",
                                   dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            start = 0
            if prefix is not None and prefix[1] <= size:
                with open(prefix[0], "rb") as earlier:
                    shutil.copyfileobj(earlier, stream)
                start = prefix[1]
            count = start + _write(ledger, fund, stream, start, size)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    return count


def _write(ledger: Ledger, fund: str, stream: BinaryIO, start: int, size: int) -> int:
    count = 0
    for line in ledger.log_lines(fund, start, size):  # stored canonical (ledger.store.mapper)
        stream.write(line + b"\n")
        count += 1
    return count
