"""The event-log Merkle tree, persisted incrementally as C2SP tlog-tiles-style tiles.

Tile level L, index t holds the hashes of tree level 8*L, nodes [256*t, 256*t + w),
concatenated (w <= 256; a partial tile on the right edge is rewritten as it grows). Nodes at
tree levels between tile levels are recomputed from a tile's hashes on demand, exactly as
tlog-tiles clients do. Only perfect subtrees are stored; auditor.verify.merkle folds right-edge
subtrees from them. The log size is derived from the last level-0 tile, so there is no
separate counter to drift.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from auditor.verify import merkle
from ledger.store import proofs
from ledger.store.bulk import execute, insert_rows, pipelined
from ledger.store.tables import log_tiles

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
HASH = 32



_fund: sa.BindParameter[str] = sa.bindparam("fund")
_level: sa.BindParameter[int] = sa.bindparam("level")
_idx: sa.BindParameter[int] = sa.bindparam("idx")
_tiles = log_tiles.c
_last_idx = (
    sa.select(_tiles.level, sa.func.max(_tiles.idx).label("idx"))
    .where(_tiles.fund == _fund)
    .group_by(_tiles.level)
    .subquery()
)
# The right-edge (last) tile of every tile level, in one statement.
_SELECT_LAST_TILES = (
    sa.select(_tiles.level, _tiles.idx, _tiles.hashes)
    .join(_last_idx, sa.and_(_tiles.level == _last_idx.c.level, _tiles.idx == _last_idx.c.idx))
    .where(_tiles.fund == _fund)
)
_SELECT_LAST_TILE = (
    sa.select(_tiles.idx, _tiles.hashes)
    .where(_tiles.fund == _fund, _tiles.level == _level)
    .order_by(_tiles.idx.desc())
    .limit(1)
)
_SELECT_TILE = sa.select(_tiles.hashes).where(
    _tiles.fund == _fund, _tiles.level == _level, _tiles.idx == _idx
)


def _split(blob: bytes) -> list[bytes]:
    return [blob[i : i + HASH] for i in range(0, len(blob), HASH)]


LeafSource = Callable[[int, int], Sequence[bytes]]


class LogTree:
    """One fund's log tree inside the caller's connection (and transaction).

    With `leaves` (a function giving the leaf hashes of [start, end) from the log itself),
    complete bottom tiles are not stored: they are 97% of the tree's bytes and the log can
    recompute any of them from 256 events. Only the right-edge bottom tile (possibly empty,
    it also records the size) and the tiles above are kept. A fund's tree must always be
    opened the same way.
    """

    def __init__(self, connection: sa.Connection, fund: str,
                 leaves: LeafSource | None = None) -> None:
        self.conn = connection
        self.fund = fund
        self.leaves = leaves

    # --- storage ---------------------------------------------------------------------

    def _last_tile(self, level: int) -> tuple[int, bytes] | None:
        row = self.conn.execute(_SELECT_LAST_TILE, {"fund": self.fund, "level": level}).first()
        return None if row is None else (row.idx, bytes(row.hashes))

    def _last_tiles(self) -> dict[int, tuple[int, bytes]]:
        return self.edges(self.conn.execute(_SELECT_LAST_TILES, {"fund": self.fund}))

    def edges_statement(self) -> sa.Select[Any]:
        """The SELECT of every level's right-edge tile, for a caller that sends it together
        with its own reads (ledger.store.bulk.read_all); `edges` reads its rows."""
        return _SELECT_LAST_TILES.params(fund=self.fund)

    @staticmethod
    def edges(rows: Iterable[Sequence[Any]]) -> dict[int, tuple[int, bytes]]:
        """{level: (index, hashes)} of the right-edge tiles, from `edges_statement`'s rows."""
        return {level: (idx, bytes(hashes)) for level, idx, hashes in rows}

    @staticmethod
    def size_of(edges: dict[int, tuple[int, bytes]]) -> int:
        """Number of leaves in a log whose right-edge tiles are `edges`."""
        last = edges.get(0)
        return 0 if last is None else last[0] * TILE_WIDTH + len(last[1]) // HASH

    def _get_tile(self, level: int, idx: int) -> bytes:
        row = self.conn.execute(_SELECT_TILE, {"fund": self.fund, "level": level, "idx": idx}).first()
        return b"" if row is None else bytes(row.hashes)

    def _fetch_tiles(self, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        keys = sorted(set(keys))
        if not keys:
            return {}
        cond = sa.or_(*(sa.and_(log_tiles.c.level == lv, log_tiles.c.idx == ix) for lv, ix in keys))
        rows = self.conn.execute(
            sa.select(log_tiles.c.level, log_tiles.c.idx, log_tiles.c.hashes).where(
                log_tiles.c.fund == self.fund, cond
            )
        )
        return {(r.level, r.idx): bytes(r.hashes) for r in rows}

    # --- reading ---------------------------------------------------------------------

    def tile(self, level: int, index: int) -> bytes:
        """The stored hashes of tile (level, index); complete bottom tiles are not stored."""
        return self._get_tile(level, index)

    def size(self) -> int:
        """Number of leaves in the log."""
        last = self._last_tile(0)
        return 0 if last is None else last[0] * TILE_WIDTH + len(last[1]) // HASH

    def _node_fn(self, tiles: dict[tuple[int, int], bytes]) -> merkle.NodeFn:
        """A node(level, i) callback over fetched tiles (missing tiles are fetched singly)."""
        cache: dict[tuple[int, int], bytes] = {}

        def node(level: int, i: int) -> bytes:
            key = (level, i)
            if key in cache:
                return cache[key]
            tile_level, sub = divmod(level, TILE_HEIGHT)
            first = i << sub  # index of the subtree's first node on the tile level's row
            tkey = (tile_level, first >> TILE_HEIGHT)
            if tkey not in tiles:
                tiles[tkey] = self._get_tile(*tkey)
            blob = tiles[tkey]
            if tkey[0] == 0 and len(blob) < TILE_WIDTH * HASH and self.leaves is not None \
                    and tkey[1] < self._edge_tile():
                start = tkey[1] * TILE_WIDTH  # an elided, complete bottom tile
                blob = tiles[tkey] = b"".join(self.leaves(start, start + TILE_WIDTH))
            lo = (first & (TILE_WIDTH - 1)) * HASH
            hi = lo + (HASH << sub)
            if hi > len(blob):
                raise ValueError(f"log tree node ({level}, {i}) is not stored (fund {self.fund!r})")
            h = merkle.perfect_root(_split(blob[lo:hi]))
            cache[key] = h
            return h

        return node

    def _prefetched(self, build: Callable[[merkle.NodeFn], object]) -> merkle.NodeFn:
        """Find every tile a computation touches (dry run with dummy hashes), fetch them in
        one query, and return a node callback over them."""
        needed: set[tuple[int, int]] = set()

        def record(level: int, i: int) -> bytes:
            tile_level, sub = divmod(level, TILE_HEIGHT)
            needed.add((tile_level, (i << sub) >> TILE_HEIGHT))
            return bytes(HASH)

        build(record)
        return self._node_fn(self._fetch_tiles(needed))

    def _edge_tile(self) -> int:
        """Index of the right-edge bottom tile (the first one that is not complete)."""
        return self.size() // TILE_WIDTH

    def _checked_size(self, size: int | None) -> int:
        current = self.size()
        if size is None:
            return current
        if not 0 <= size <= current:
            raise ValueError(f"tree size {size} is outside the log (size {current})")
        return size

    def root(self, size: int | None = None) -> bytes:
        """Root hash of the first `size` leaves (default: the whole log)."""
        n = self._checked_size(size)
        if n == 0:
            return merkle.EMPTY_ROOT

        def build(node: merkle.NodeFn) -> bytes:
            return merkle.range_hash(0, n, node)

        return build(self._prefetched(build))

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of leaf `index` in the tree of `size` leaves."""
        n = self._checked_size(size)

        def build(node: merkle.NodeFn) -> list[bytes]:
            return proofs.inclusion_proof(index, n, node)

        return build(self._prefetched(build))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 9162 consistency proof between two sizes of this log."""
        n = self._checked_size(new_size)

        def build(node: merkle.NodeFn) -> list[bytes]:
            return merkle.consistency_proof(old_size, n, node)

        return build(self._prefetched(build))

    # --- writing ---------------------------------------------------------------------

    def append(self, leaf_hashes: Sequence[bytes],
               edges: dict[int, tuple[int, bytes]] | None = None) -> None:
        """Append leaf hashes (in log order) inside the caller's transaction.

        One SELECT of every level's right-edge tile, then (one round trip on PostgreSQL) the
        delete of a bottom tile completed by now and one multi-row upsert.
        Every completed tile contributes its root as a new hash on the next tile level.
        Appends to one fund must be serialized by the caller (one writer per fund, as the
        event store's per-fund ordering already requires): two concurrent appenders would
        both extend the same right-edge tile. `edges`: the right-edge tiles as the caller
        just read them in this transaction (`edges_statement`), saving that SELECT.
        """
        new = list(leaf_hashes)
        if not new:
            return
        if set(map(len, new)) - {HASH}:  # map/set keep the check at C speed
            raise ValueError("leaf hashes must be 32 bytes each")
        lasts = self._last_tiles() if edges is None else edges
        rows: list[tuple[str, int, int, bytes]] = []
        elided_below: int | None = None
        level = 0
        while new:
            last = lasts.get(level)
            prefix: list[bytes]
            if last is None:
                tile_idx, prefix = 0, []
            elif len(last[1]) == TILE_WIDTH * HASH:
                tile_idx, prefix = last[0] + 1, []
            else:
                tile_idx, prefix = last[0], _split(last[1])
            row = prefix + new if prefix else new
            completed: list[bytes] = []
            elide = level == 0 and self.leaves is not None
            for off in range(0, len(row), TILE_WIDTH):
                chunk = row[off : off + TILE_WIDTH]
                if len(chunk) == TILE_WIDTH:
                    completed.append(merkle.perfect_root(chunk))
                if not (elide and len(chunk) == TILE_WIDTH):
                    rows.append((self.fund, level, tile_idx, b"".join(chunk)))
                tile_idx += 1
            if elide:
                edge = tile_idx if len(row) % TILE_WIDTH == 0 else tile_idx - 1
                if edge == tile_idx:  # an empty edge tile keeps recording the size
                    rows.append((self.fund, 0, edge, b""))
                elided_below = edge
            new = completed
            level += 1
        with pipelined(self.conn):  # one wait for both statements on PostgreSQL
            if elided_below is not None:
                # The old edge tile is complete now: the log can recompute it.
                execute(self.conn, log_tiles.delete().where(
                    log_tiles.c.fund == self.fund, log_tiles.c.level == 0,
                    log_tiles.c.idx < elided_below))
            insert_rows(self.conn, log_tiles, rows, replace=True)

    def delete(self) -> None:
        """Remove this fund's tiles (tests and tooling)."""
        self.conn.execute(log_tiles.delete().where(log_tiles.c.fund == self.fund))
