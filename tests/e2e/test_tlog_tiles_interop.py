"""Interop: the published tiles read by a small C2SP tlog-tiles reader written from the specs
alone (c2sp.org/tlog-tiles, c2sp.org/tlog-checkpoint, RFC 6962), with nothing but hashlib
and base64: neither `auditor` nor `ledger` code reads a byte here.

For every checkpoint of a log published several times (sizes that are not multiples of
256, partial tiles superseded in between), the reader recomputes the tree head from the
tiles, compares it with the checkpoint's root hash, and checks each entry bundle against
the level-0 tile hashes.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from ledger.service.importer import import_file
from ledger.service.tilepub import publish_tiles
from tests.factories import TIME, capital, fee, fund_config, write_jsonl
from tests.publishing import MAIN_ORIGIN, SIGNER

# ---------------------------------------------------------------- the reader (spec only)


def tile_url(level: str, n: int, width: int) -> str:
    """tile/<L>/<N>[.p/<W>]: N in zero-padded 3-digit elements, all but the last x-prefixed."""
    elements = []
    while True:
        elements.append(f"{n % 1000:03d}")
        n //= 1000
        if n == 0:
            break
    elements.reverse()
    name = "/".join(["x" + e for e in elements[:-1]] + [elements[-1]])
    return f"tile/{level}/{name}" + (f".p/{width}" if width < 256 else "")


def fetch_tile(root: Path, level: str, n: int, width: int) -> bytes:
    """A tile or bundle; a partial one may be gone once the full one exists (spec: fall back)."""
    path = root / tile_url(level, n, width)
    if path.exists():
        return path.read_bytes()
    return (root / tile_url(level, n, 256)).read_bytes()  # caller takes the prefix it needs


def parse_checkpoint_note(text: str) -> tuple[str, int, bytes]:
    """Signed note: body lines origin, size, base64 root hash; a blank line; signatures."""
    body, _, signatures = text.partition("\n\n")
    origin, size, root = body.split("\n")[:3]
    assert signatures.startswith("\u2014 ")
    return origin, int(size), base64.b64decode(root)


def leaf(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(hashes: list[bytes]) -> bytes:
    """RFC 6962 Merkle Tree Hash over already-hashed leaves (split at the largest 2^k < n)."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return node(mth(hashes[:k]), mth(hashes[k:]))


def subtree(root: Path, size: int, start: int, count: int) -> bytes:
    """MTH of leaves [start, start + count), count a power of two, from the highest tile
    level whose hashes cover whole 256**level-leaf subtrees inside it."""
    level = 0
    while 256 ** (level + 1) <= count:
        level += 1
    per = 256 ** level
    first = start // per  # first hash on tile level `level`
    n, offset = divmod(first, 256)
    width = min(256, size // per - n * 256)
    data = fetch_tile(root, str(level), n, width)
    wanted = count // per
    hashes = [data[32 * i:32 * i + 32] for i in range(offset, offset + wanted)]
    return mth(hashes)


def tree_head(root: Path, size: int) -> bytes:
    """MTH(D[0:size]) from the tiles: the perfect subtrees of size's set bits, left to
    right, folded from the right (RFC 6962 splits at the largest power of two)."""
    parts, start = [], 0
    for bit in reversed(range(size.bit_length())):
        if size >> bit & 1:
            parts.append(subtree(root, size, start, 1 << bit))
            start += 1 << bit
    head = parts[-1]
    for left in reversed(parts[:-1]):
        head = node(left, head)
    return head


def entries(root: Path, size: int) -> list[bytes]:
    """Every entry up to size; each bundle checked against its level-0 tile."""
    out: list[bytes] = []
    for n in range((size + 255) // 256):
        width = min(256, size - 256 * n)
        data = fetch_tile(root, "entries", n, width)
        hashes = fetch_tile(root, "0", n, width)
        pos, bundle = 0, []
        while pos < len(data) and len(bundle) < width:
            length = int.from_bytes(data[pos:pos + 2], "big")
            bundle.append(data[pos + 2:pos + 2 + length])
            pos += 2 + length
        assert len(bundle) == width
        for i, entry in enumerate(bundle):
            assert leaf(entry) == hashes[32 * i:32 * i + 32], f"entry {256 * n + i}"
        out += bundle
    return out


# ---------------------------------------------------------------- the test


def publish_and_read(make_ledger, tmp_path: Path, counts: tuple[int, ...]) -> list[int]:
    """Publish after each batch of fees; read every checkpoint with the reader; the sizes."""
    ledger = make_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.open_fund(fund_config(), TIME)  # 2 events, and 1 for the capital below
    import_file(ledger, "main", write_jsonl(tmp_path / "c.jsonl", [capital("c1", "10.00")]))
    root = tmp_path / "log"
    sizes = []
    for step, count in enumerate(counts):
        facts = [fee(f"s{step}-{i}", "0.01", f"acct-{i % 7}") for i in range(count)]
        import_file(ledger, "main", write_jsonl(tmp_path / f"{step}.jsonl", facts))
        publication = publish_tiles(ledger, "main", SIGNER, root, f"2020-03-13T0{step}:00:00Z")
        sizes.append(publication.document["log"]["size"])
    export = list(ledger.log_lines("main", 0, sizes[-1]))
    for size in sizes:
        origin, cp_size, cp_root = parse_checkpoint_note(
            (root / "snapshots" / str(size) / "checkpoint").read_text("utf-8"))
        assert (origin, cp_size) == (MAIN_ORIGIN, size)
        assert tree_head(root, size) == cp_root
        log = entries(root, size)
        assert log == export[:size]
        assert mth([leaf(e) for e in log]) == cp_root
    assert parse_checkpoint_note((root / "checkpoint").read_text("utf-8"))[1] == sizes[-1]
    return sizes


def test_an_independent_reader_verifies_every_published_checkpoint(make_ledger,
                                                                   tmp_path: Path) -> None:
    sizes = publish_and_read(make_ledger, tmp_path, (297, 257, 1, 799, 1000))
    assert sizes == [300, 557, 558, 1357, 2357]
    assert tile_url("0", 1234067, 256) == "tile/0/x001/x234/067"


@pytest.mark.slow
def test_the_reader_agrees_past_the_second_tile_level(make_ledger, tmp_path: Path) -> None:
    # 65,539 leaves: 256 full level-0 tiles and one of 3, one full level-1 tile, a level-2
    # tile of width 1; then 66,000: a level-1 partial tile of width 1 appears.
    sizes = publish_and_read(make_ledger, tmp_path, (65_536, 461))
    assert sizes == [65_539, 66_000]
    root = tmp_path / "log"
    assert (root / "tile/2/000.p/1").stat().st_size == 32
    assert (root / "tile/1/000").stat().st_size == 8192
    assert (root / "tile/1/001.p/1").stat().st_size == 32
