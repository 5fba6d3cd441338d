"""Exact duplicate detection for exchange ids in bounded memory.

A replay must notice a repeated exchange id anywhere in a log of millions of events, yet keep
memory proportional to accounts, not events. Recent ids live in a set; past `memory_limit`
they are spilled to a temporary SQLite table (standard library) behind an in-memory Bloom
filter of fixed size, so the disk is consulted only for the rare id the filter cannot rule
out. The answer is always exact: the filter only decides whether to look.

A replay resumed from a saved state starts with that state's ids as `base` (auditor.saved_ids:
sorted blocks, decoded only when looked up), so restoring them costs nothing per id.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from typing import Any

from auditor.saved_ids import SavedIds, encode_blocks

DEFAULT_MEMORY_LIMIT = 200_000  # ids kept in the set before spilling
BLOOM_BITS = 1 << 27  # 16 MiB; with 2 probes, ~2e-4 false positives at 1M ids


class SeenIds:
    """A set of strings that answers `add(key) -> bool` (False if already present)."""

    def __init__(self, memory_limit: int = DEFAULT_MEMORY_LIMIT,
                 base: SavedIds | None = None) -> None:
        self.memory_limit = memory_limit
        self.base = base  # the ids of the state resumed from (read-only)
        self.recent: set[str] = set()
        self.bloom: bytearray | None = None
        self.db: sqlite3.Connection | None = None
        self._path: str | None = None

    def add(self, key: str) -> bool:
        """Record `key`; return False when it was seen before."""
        if key in self.recent:
            return False
        if self.base is not None and key in self.base:
            return False
        if self.bloom is not None and self._maybe_spilled(key):
            assert self.db is not None
            if self.db.execute("SELECT 1 FROM ids WHERE key = ?", (key,)).fetchone():
                return False
        self.recent.add(key)
        if len(self.recent) >= self.memory_limit:
            self._spill()
        return True

    def keys(self) -> list[str]:
        """Every key recorded so far, sorted (the spilled ones read back from the table)."""
        spilled = [k for (k,) in self.db.execute("SELECT key FROM ids")] if self.db else []
        base = self.base.keys() if self.base is not None else []
        return sorted([*base, *spilled, *self.recent])  # runs already sorted: timsort merges

    def saved(self) -> tuple[int, list[list[Any]]]:
        """(count, blocks) of every key recorded so far, as a saved state holds them: with a
        `base`, its blocks that no new key falls in are copied, not decoded."""
        spilled = [k for (k,) in self.db.execute("SELECT key FROM ids")] if self.db else []
        new = sorted([*spilled, *self.recent])
        if self.base is None:
            return len(new), encode_blocks(new)
        return len(self.base) + len(new), self.base.merged_blocks(new)

    def _probes(self, key: str) -> tuple[int, int]:
        # str hashes are stable within a process, which is all an in-memory filter needs.
        h = hash(key) & 0xFFFF_FFFF_FFFF_FFFF
        return h & (BLOOM_BITS - 1), (h >> 32) & (BLOOM_BITS - 1)

    def _maybe_spilled(self, key: str) -> bool:
        assert self.bloom is not None
        a, b = self._probes(key)
        return bool(self.bloom[a >> 3] & (1 << (a & 7)) and self.bloom[b >> 3] & (1 << (b & 7)))

    def _spill(self) -> None:
        if self.db is None:
            fd, self._path = tempfile.mkstemp(prefix="backstop-audit-ids-", suffix=".sqlite")
            os.close(fd)
            self.db = sqlite3.connect(self._path)
            self.db.execute("PRAGMA journal_mode=OFF")
            self.db.execute("PRAGMA synchronous=OFF")
            self.db.execute("CREATE TABLE ids (key TEXT PRIMARY KEY) WITHOUT ROWID")
            self.bloom = bytearray(BLOOM_BITS // 8)
        assert self.bloom is not None
        with self.db:
            self.db.executemany("INSERT INTO ids VALUES (?)", ((k,) for k in self.recent))
        bloom = self.bloom
        for key in self.recent:
            a, b = self._probes(key)
            bloom[a >> 3] |= 1 << (a & 7)
            bloom[b >> 3] |= 1 << (b & 7)
        self.recent.clear()

    def close(self) -> None:
        """Drop the temporary table, if one was made."""
        if self.db is not None:
            self.db.close()
            self.db = None
        if self._path is not None:
            os.unlink(self._path)
            self._path = None

    def __del__(self) -> None:
        self.close()
