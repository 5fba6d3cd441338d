"""Reading a published C2SP tlog-tiles log (https://c2sp.org/tlog-tiles), local or over HTTP.

Layout under the log's ROOT (a folder, or an http(s) base URL fetched with plain GETs):
``checkpoint`` (the latest signed checkpoint), hash tiles ``tile/<L>/<N>[.p/<W>]``, entry
bundles ``tile/entries/<N>[.p/<W>]`` and one folder per snapshot ``snapshots/<size>/``
(schemas/README.md, "Tiled publication"). `<N>` is written in 3-digit path elements, all
but the last prefixed with ``x`` (1234067 -> ``x001/x234/067``). An entry bundle is the
spec's default encoding: each entry (one canonical event line, no newline) prefixed by its
length as a big-endian uint16; entry i hashes to hash i of the level-0 tile of the same
index (RFC 6962 leaf hash). A partial tile that is gone (the log may delete one once the
full tile exists) is read as the prefix of the full tile, as the spec allows.

Every read has a cap (`tile_cap`: 32 bytes a hash, 2 + 65,535 bytes an entry; the
documents' caps are in auditor.verify.reads) and, over HTTP, a timeout and a deadline.

The ledger writes with the same helpers (`tile_path`, `encode_bundle`), so both sides agree
on every byte; `verified_lines` is the auditor's check of everything it reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from auditor.formats.bounds import MAX_EVENT_LINE
from auditor.formats.clip import shorten
from auditor.verify import merkle
from auditor.verify.reads import HttpLimits, ReadError, http_get, read_regular

__all__ = [
    "HASH",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "HttpSource",
    "LocalSource",
    "Source",
    "TileError",
    "bundle_cap",
    "consistency_from_tiles",
    "decode_bundle",
    "encode_bundle",
    "open_source",
    "root_from_tiles",
    "tile_cap",
    "tile_layout",
    "tile_path",
    "verified_lines",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
HASH = 32
MAX_ENTRY = MAX_EVENT_LINE  # a uint16 length prefix
_T = TypeVar("_T")


class TileError(ValueError):
    """A tile or bundle is missing, malformed or does not hash as it must; names the file."""


def tile_path(level: int | str, index: int, width: int = TILE_WIDTH) -> str:
    """The spec's path of a tile: ``tile/<L>/<N>[.p/<W>]``; level "entries" for a bundle."""
    if index < 0 or not 0 < width <= TILE_WIDTH:
        raise ValueError(f"bad tile index {index} or width {width}")
    digits = f"{index:03d}"
    digits = "0" * (-len(digits) % 3) + digits
    parts = [digits[i:i + 3] for i in range(0, len(digits), 3)]
    name = "/".join([*(f"x{p}" for p in parts[:-1]), parts[-1]])
    return f"tile/{level}/{name}" + ("" if width == TILE_WIDTH else f".p/{width}")


def tile_layout(size: int) -> list[tuple[int, int, int]]:
    """Every tile (level, index, width) of a tree of `size` leaves, bottom level first."""
    tiles = []
    level = 0
    while size >> (TILE_HEIGHT * level):
        count = size >> (TILE_HEIGHT * level)  # hashes on tree level 8 * level
        tiles += [(level, n, TILE_WIDTH) for n in range(count // TILE_WIDTH)]
        if count % TILE_WIDTH:
            tiles.append((level, count // TILE_WIDTH, count % TILE_WIDTH))
        level += 1
    return tiles


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """An entry bundle: each entry prefixed by its big-endian uint16 length."""
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY:
            raise ValueError(f"entry of {len(entry)} bytes exceeds the {MAX_ENTRY}-byte limit "
                             "of a tlog-tiles entry bundle")
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def decode_bundle(data: bytes, where: str) -> list[bytes]:
    """The entries of a bundle; TileError (naming `where`) if it is truncated."""
    entries: list[bytes] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise TileError(f"{where}: truncated length prefix at byte {pos}")
        n = int.from_bytes(data[pos:pos + 2], "big")
        if pos + 2 + n > len(data):
            raise TileError(f"{where}: entry {len(entries)} runs past the end of the bundle")
        entries.append(data[pos + 2:pos + 2 + n])
        pos += 2 + n
    return entries


def bundle_cap(width: int) -> int:
    """The most bytes an entry bundle of `width` entries can hold: each entry at most
    MAX_ENTRY bytes after its 2-byte length (16,777,472 bytes for a full bundle)."""
    return width * (2 + MAX_ENTRY)


def tile_cap(level: int | str, width: int) -> int:
    """The most bytes the tile or bundle (level "entries") of `width` entries may hold."""
    return bundle_cap(width) if level == "entries" else width * HASH


class Source:
    """Where a tiled log is read from: `read(path, cap)` gives the bytes (at most `cap` of
    them, auditor.verify.reads), or None if absent."""

    name: str

    def read(self, path: str, cap: int) -> bytes | None:
        raise NotImplementedError

    def need(self, path: str, cap: int) -> bytes:
        """The bytes at `path` (at most `cap`); TileError if absent."""
        data = self.read(path, cap)
        if data is None:
            raise TileError(f"{path}: not found under {self.name}")
        return data

    def tile(self, level: int | str, index: int, width: int) -> bytes:
        """A tile or bundle; a missing partial one falls back to the full one's prefix.
        Each is read with the cap its width allows (`tile_cap`)."""
        path = tile_path(level, index, width)
        data = self.read(path, tile_cap(level, width))
        if data is None and width < TILE_WIDTH:
            full = self.read(tile_path(level, index), tile_cap(level, TILE_WIDTH))
            if full is not None:
                if level == "entries":
                    return encode_bundle(decode_bundle(full, tile_path(level, index))[:width])
                return full[:width * HASH]
        if data is None:
            raise TileError(f"{path}: not found under {self.name}")
        return data


@dataclass
class LocalSource(Source):
    """A tiled log in a local folder: regular files only (a FIFO, a device or a symlink to
    one is refused), each read with its cap."""

    root: Path

    def __post_init__(self) -> None:
        self.name = str(self.root)

    def read(self, path: str, cap: int) -> bytes | None:
        try:
            return read_regular(self.root / path, cap)
        except FileNotFoundError:
            return None
        except ReadError as exc:
            raise TileError(f"{path}: {exc}") from None


@dataclass
class HttpSource(Source):
    """A tiled log at an http(s) base URL, fetched with plain GETs (404: absent), each with
    its cap, a connect/read timeout and a total deadline (`limits`)."""

    base: str
    limits: HttpLimits = field(default_factory=HttpLimits)

    def __post_init__(self) -> None:
        self.base = self.base.rstrip("/") + "/"
        self.name = self.base

    def read(self, path: str, cap: int) -> bytes | None:
        url = self.base + path
        try:
            return http_get(url, cap, self.limits)
        except ReadError as exc:
            raise TileError(f"{shorten(url, 200)}: {exc}") from None


def open_source(where: str, limits: HttpLimits | None = None) -> Source | None:
    """A source for an http(s) URL (requests bounded by `limits`) or a folder holding a
    tiled log; None for anything else."""
    if where.startswith(("http://", "https://")):
        return HttpSource(where, limits or HttpLimits())
    path = Path(where)
    if path.is_dir() and (path / "tile").is_dir():
        return LocalSource(path)
    return None


def _node_fn(tiles: dict[tuple[int, int], bytes]) -> merkle.NodeFn:
    """node(level, i) over tiles {(tile level, index): hashes} (perfect subtrees only)."""
    def node(level: int, i: int) -> bytes:
        tile_level, sub = divmod(level, TILE_HEIGHT)
        first = i << sub
        blob = tiles[(tile_level, first >> TILE_HEIGHT)]
        lo = (first % TILE_WIDTH) * HASH
        hashes = [blob[k:k + HASH] for k in range(lo, lo + (HASH << sub), HASH)]
        return merkle.perfect_root(hashes)

    return node


def _fold(source: Source, tree_size: int, compute: Callable[[merkle.NodeFn], _T]) -> _T:
    """`compute(node)` over the tiles of a tree of `tree_size` leaves: a dry run finds the
    tiles it touches (a few per level), which are read and checked for width once."""
    tiles: dict[tuple[int, int], bytes] = {}

    def record(level: int, i: int) -> bytes:  # dry run: which tiles the fold touches
        tile_level, sub = divmod(level, TILE_HEIGHT)
        tiles[(tile_level, (i << sub) >> TILE_HEIGHT)] = b""
        return bytes(HASH)

    compute(record)
    for level, index in list(tiles):
        width = min(TILE_WIDTH, (tree_size >> (TILE_HEIGHT * level)) - index * TILE_WIDTH)
        tiles[(level, index)] = _checked_tile(source, level, index, width)
    return compute(_node_fn(tiles))


def root_from_tiles(source: Source, size: int, tree_size: int | None = None) -> bytes:
    """The tree head of `size` leaves computed from the tiles it needs (a few per level).

    With `tree_size` (at least `size`), the tiles are those of a tree of that many leaves:
    the head of its first `size` leaves, which must be an older checkpoint's for the log to
    be consistent with it."""
    if size == 0:
        return merkle.EMPTY_ROOT
    return _fold(source, size if tree_size is None else tree_size,
                 lambda node: merkle.range_hash(0, size, node))


def consistency_from_tiles(source: Source, old: int, new: int) -> list[bytes]:
    """The RFC 9162 consistency proof from size `old` (> 0) to `new` (>= old), its hashes
    folded from the tiles of the tree of `new` leaves (merkle.verify_consistency checks it
    against both roots)."""
    return _fold(source, new, lambda node: merkle.consistency_proof(old, new, node))


def _checked_tile(source: Source, level: int, index: int, width: int) -> bytes:
    data = source.tile(level, index, width)
    if len(data) != width * HASH:
        raise TileError(f"{tile_path(level, index, width)}: {len(data)} bytes, expected "
                        f"{width * HASH} ({width} hashes)")
    return data


def verified_lines(source: Source, size: int, root: bytes, start: int = 0) -> Iterator[bytes]:
    """The entries `start`..`size` - 1 of the log, each checked before it is yielded.

    The tree head folded from the tiles must be `root` (the checkpoint's); then every
    bundle's entries must hash to its level-0 tile and every full tile's Merkle hash must be
    its hash one level up. A tampered tile or bundle raises TileError naming it. Only the
    bundles from the one holding entry `start` on are read (an incremental audit: the
    caller has checked that the first `start` leaves are those it verified before).
    """
    if root_from_tiles(source, size) != root:
        for _ in _checked_entries(source, size, start):  # name the tile that disagrees
            pass
        raise TileError(f"tiles: the tree head of {size} leaves folded from the tiles is not "
                        f"the checkpoint's root {root.hex()}")
    yield from _checked_entries(source, size, start)


def _checked_entries(source: Source, size: int, start: int = 0) -> Iterator[bytes]:
    """Entries of every bundle, checked bottom-up against the tiles (see verified_lines)."""
    upper: dict[int, tuple[int, bytes]] = {}  # level -> (index, hashes) of the tile in use

    def check_up(level: int, index: int, blob: bytes) -> None:
        """A full tile's Merkle hash must be its hash in the tile one level up."""
        parent_index, slot = divmod(index, TILE_WIDTH)
        width = min(TILE_WIDTH, (size >> (TILE_HEIGHT * (level + 1))) - parent_index * TILE_WIDTH)
        held = upper.get(level + 1)
        if held is None or held[0] != parent_index:
            held = (parent_index, _checked_tile(source, level + 1, parent_index, width))
            upper[level + 1] = held
        mth = merkle.perfect_root([blob[k:k + HASH] for k in range(0, len(blob), HASH)])
        if held[1][slot * HASH:(slot + 1) * HASH] != mth:
            raise TileError(f"{tile_path(level + 1, parent_index, width)}: hash {slot} is not "
                            f"the Merkle hash of {tile_path(level, index)}")
        if slot == TILE_WIDTH - 1:
            check_up(level + 1, parent_index, held[1])

    for level, index, width in tile_layout(size):
        if level:
            break
        if index < start // TILE_WIDTH:
            continue
        hashes = _checked_tile(source, 0, index, width)
        where = tile_path("entries", index, width)
        entries = decode_bundle(source.tile("entries", index, width), where)
        if len(entries) != width:
            raise TileError(f"{where}: {len(entries)} entries, expected {width}")
        for k, entry in enumerate(entries):
            if merkle.leaf_hash(entry) != hashes[k * HASH:(k + 1) * HASH]:
                raise TileError(f"{where}: entry {index * TILE_WIDTH + k} does not hash to "
                                f"hash {k} of {tile_path(0, index, width)}")
        if width == TILE_WIDTH:
            check_up(0, index, hashes)
        yield from entries[max(0, start - index * TILE_WIDTH):]
