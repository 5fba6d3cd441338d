"""`snapshot publish --layout tiles`: one C2SP tlog-tiles log shared by every snapshot.

Under ROOT (schemas/README.md, "Tiled publication"):

    checkpoint                     the latest signed checkpoint (replaced last, by rename)
    tile/<L>/<N>[.p/<W>]           hash tiles (paths and widths as auditor.verify.tiles)
    tile/entries/<N>[.p/<W>]       entry bundles: uint16-length-prefixed canonical event lines
    snapshots/<size>/              per snapshot: snapshot.json, checkpoint, account-seed,
                                   verifier-key, policy.json, accounts/ (proof shards)

A publish writes only what is new since ROOT's checkpoint: the bundles and level-0 tiles
from the last partial one on, and the tiles above that changed (copied from the ledger's
own log tree, not recomputed). A full tile is written once; a partial one is superseded by
a wider or full one, and deleted once its full tile exists (the spec allows it; readers
fall back to the full tile's prefix). Each file is written beside its name and renamed,
the snapshot folder is staged and renamed into place (then recorded, as in
`ledger.service.publish`), and ROOT/checkpoint is replaced last, so a reader that follows it finds
every file it names. Storage: the log once (its bytes + 2 per entry + 32-byte hashes,
about 1/255 more above level 0), plus one small folder per snapshot.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from auditor.formats.wire import format_amount
from auditor.verify import merkle
from auditor.verify.keys import NoteError, Signer, parse_checkpoint
from auditor.verify.origin import snapshot_origin
from auditor.verify.shards import INDEX_FORMAT, SHARD_FORMAT, shard_digits, shard_name, sibling_keys
from auditor.verify.sumtree import account_nonce
from auditor.verify.tiles import (
    HASH,
    MAX_ENTRY,
    TILE_HEIGHT,
    TILE_WIDTH,
    LocalSource,
    TileError,
    encode_bundle,
    root_from_tiles,
    tile_path,
)
from ledger.service.application import Ledger
from ledger.service.leftovers import STAGED, WRITTEN, remove_stale, staging_prefix
from ledger.service.outputs import is_taken, remove_path, sync_tree, write_file
from ledger.service.publish import (
    Publication,
    PublishError,
    _record_and_place,
    build_snapshot,
    latest,
    load_publication,
    log_origin,
    signed_checkpoint,
    snapshot_row,
    write_json,
    write_snapshot_files,
)


def publish_tiles(ledger: Ledger, fund_name: str, signer: Signer, root: Path, time: str | None,
                  force: bool = False, risk: dict[str, Any] | None = None,
                  origin: str | None = None) -> Publication:
    """Sign a snapshot and add it to the tiled log at `root` (created if absent).

    `root` must be empty or hold this fund's tiled log (its checkpoint names a prefix of the
    ledger's log); anything else is refused unless `force`, which replaces it whole (the old
    content is restored if the publish fails; a `root` this call created is removed).
    `origin`: `--origin` (ledger.service.publish.log_origin: a log keeps its first origin).
    """
    shown, root = root, Path(os.path.abspath(root))
    aside: Path | None = None
    created = not os.path.lexists(root)  # removed again if this publish fails
    touched: set[Path] = set()  # the tile folders written: cleaned of killed writers' files
    try:
        with ledger.engine.connect() as connection:
            name = log_origin(latest(connection, fund_name), fund_name, signer, origin)
        old_size = published_size(ledger, fund_name, root, name)
        repaired = repair(ledger, fund_name, root, old_size, touched)
        if repaired is not None:
            old_size = repaired[1]
            if ledger.get_fund(fund_name).log_size == old_size:  # nothing new to sign
                _clean(root, touched)
                with ledger.engine.connect() as connection:
                    found = load_publication(snapshot_row(connection, fund_name, old_size))
                found.repaired = repaired
                return found
        if old_size is None:
            if not force:
                raise PublishError(f"{shown} holds something other than fund {fund_name}'s "
                                   "tiled log; pass --force to replace it")
            aside = root.with_name(f".{root.name}.{os.getpid()}.old")
            root.rename(aside)
            old_size = 0
        root.mkdir(parents=True, exist_ok=True)
        publication = build_snapshot(ledger, fund_name, signer, time, risk, name)
        document = publication.document
        size = document["log"]["size"]
        full = write_log(ledger, fund_name, root, old_size, size, touched)
        _check_head(root, size, document["log"]["root"], shown)
        _place_snapshot_folder(ledger, root, publication, signer)
        write_file(root / "checkpoint", signed_checkpoint(document, signer).encode(), 0o644,
                   force=True)
        _drop_partials(root, full)
        _clean(root, touched)
        publication.repaired = repaired
    except BaseException as error:
        if aside is not None or created:
            remove_path(root)
        if aside is not None:
            aside.rename(root)
        if isinstance(error, OSError):
            where = f" ({error.filename})" if error.filename else ""
            raise PublishError(f"{shown}: cannot write: {error.strerror or error}{where}") from None
        if isinstance(error, TileError):
            raise PublishError(f"{shown}: {error}") from None
        raise
    if aside is not None:
        remove_path(aside)
    return publication


def repair(ledger: Ledger, fund_name: str, root: Path, old_size: int | None,
           touched: set[Path] | None = None) -> tuple[int, int] | None:
    """Bring ROOT's tiles and checkpoint up to the last recorded snapshot when they are behind
    it; return (the checkpoint's old size, the snapshot's size), or None when nothing was to
    repair.

    A publisher killed after the snapshot's commit and before ROOT/checkpoint was replaced
    leaves ROOT/snapshots/<size>/ in place (it is renamed in before the commit), its tiles
    perhaps not all written, and ROOT/checkpoint at the previous size (or none, on a first
    publish). The snapshot can never be published again, so without a repair ROOT stayed
    behind for good. Repaired only when that folder's checkpoint names this fund's log at
    the recorded size and root; ROOT/checkpoint becomes a copy of it, as a publish writes it.
    """
    with ledger.engine.connect() as connection:
        row = latest(connection, fund_name)
    if row is None or (old_size is not None and old_size >= row["log_size"]):
        return None
    document = json.loads(row["document"])
    size, head = int(row["log_size"]), document["log"]["root"]
    try:
        note = (root / "snapshots" / str(size) / "checkpoint").read_bytes()
        named = parse_checkpoint(note.decode("utf-8").split("\n\n", 1)[0] + "\n")
    except (OSError, UnicodeDecodeError, NoteError):
        return None
    if named != (snapshot_origin(document), size, bytes.fromhex(head)):
        return None
    full = write_log(ledger, fund_name, root, old_size or 0, size, touched)
    _check_head(root, size, head, root)
    write_file(root / "checkpoint", note, 0o644, force=True)
    _drop_partials(root, full)
    return old_size or 0, size


def _check_head(root: Path, size: int, head: str, shown: Path) -> None:
    if root_from_tiles(LocalSource(root), size).hex() != head:
        raise PublishError(f"{shown}: the tiles' tree head differs from the ledger's log "
                           f"root at size {size}")


def _clean(root: Path, touched: set[Path]) -> None:
    """Remove what killed publishers left in ROOT, its snapshots/ and the tile folders this
    publish wrote (ledger.service.leftovers: only files of processes no longer alive)."""
    remove_stale(root, {"checkpoint"}, (WRITTEN,))
    remove_stale(root / "snapshots", None, STAGED)
    for folder in sorted(touched):
        remove_stale(folder, None, (WRITTEN,))


def published_size(ledger: Ledger, fund_name: str, root: Path,
                   origin: str | None = None) -> int | None:
    """Log size of the tiled log at `root` (0 when `root` is free), or None when `root` holds
    anything else: no checkpoint, another log's (its origin not the one recorded with the
    fund's snapshots, else not `origin` when given), or one that is not a prefix of the log."""
    if not is_taken(root):
        return 0
    try:
        note = (root / "checkpoint").read_text("utf-8")
        found, size, head = parse_checkpoint(note.split("\n\n", 1)[0] + "\n")
    except (OSError, UnicodeDecodeError, NoteError):
        return None
    with ledger.engine.connect() as connection:
        row = latest(connection, fund_name)
        expected = snapshot_origin(json.loads(row["document"])) if row is not None else origin
        if expected is not None and found != expected:
            return None
        tree = ledger.log_tree(connection, fund_name)
        if size > tree.size() or tree.root(size) != head:
            return None
    return size


def write_log(ledger: Ledger, fund_name: str, root: Path, old_size: int,
              size: int, touched: set[Path] | None = None) -> list[tuple[int, int]]:
    """Write the bundles and tiles of the log from `old_size` to `size`; return the
    (level, index) of the full tiles among them. `touched` collects the folders written to."""
    folders = touched if touched is not None else set()
    full: list[tuple[int, int]] = []
    start = old_size - old_size % TILE_WIDTH  # the last partial bundle is rewritten wider
    bundle_roots: dict[int, bytes] = {}  # full level-0 tile -> its Merkle hash
    lines = ledger.log_lines(fund_name, start, size)
    for index, chunk in _chunks(lines, start // TILE_WIDTH, size):
        for k, line in enumerate(chunk):
            if len(line) > MAX_ENTRY:
                raise PublishError(f"event {index * TILE_WIDTH + k} is {len(line)} bytes; an "
                                   f"entry bundle holds entries of at most {MAX_ENTRY} bytes")
        hashes = [merkle.leaf_hash(line) for line in chunk]
        _put(root, tile_path("entries", index, len(chunk)), encode_bundle(chunk), folders)
        _put(root, tile_path(0, index, len(chunk)), b"".join(hashes), folders)
        if len(chunk) == TILE_WIDTH:
            full.append((0, index))
            bundle_roots[index] = merkle.perfect_root(hashes)
    with ledger.engine.connect() as connection:
        tree = ledger.log_tree(connection, fund_name)
        level = 1
        while size >> (TILE_HEIGHT * level):
            count, old = size >> (TILE_HEIGHT * level), old_size >> (TILE_HEIGHT * level)
            for index in range(old // TILE_WIDTH, -(-count // TILE_WIDTH)):
                width = min(TILE_WIDTH, count - index * TILE_WIDTH)
                blob = tree.tile(level, index)[:width * HASH]  # the log may have grown since
                if len(blob) != width * HASH:
                    raise PublishError(f"the ledger's log tree lacks {tile_path(level, index, width)}")
                if level == 1:
                    _check_level1(blob, index, bundle_roots)
                _put(root, tile_path(level, index, width), blob, folders)
                if width == TILE_WIDTH:
                    full.append((level, index))
            level += 1
    return full


def _chunks(lines: Iterator[bytes], first: int, size: int) -> Iterator[tuple[int, list[bytes]]]:
    index = first
    while index * TILE_WIDTH < size:
        chunk = list(islice(lines, min(TILE_WIDTH, size - index * TILE_WIDTH)))
        if not chunk:
            raise PublishError(f"the log ends before event {index * TILE_WIDTH}")
        yield index, chunk
        index += 1


def _check_level1(blob: bytes, index: int, bundle_roots: dict[int, bytes]) -> None:
    """The ledger's level-1 hashes must be the Merkle hashes of the bundles just written."""
    for slot in range(len(blob) // HASH):
        bundle = index * TILE_WIDTH + slot
        if bundle in bundle_roots and blob[slot * HASH:(slot + 1) * HASH] != bundle_roots[bundle]:
            raise PublishError(f"the ledger's log tree disagrees with its events in "
                               f"{tile_path(0, bundle)}")


def _put(root: Path, relative: str, data: bytes, folders: set[Path]) -> None:
    """Write a tile once: an existing one must hold the same bytes (immutable)."""
    path = root / relative
    folders.add(path.parent)
    if path.exists():
        if path.read_bytes() != data:
            raise PublishError(f"{path} already holds other bytes; it is not this log's")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path, data, 0o644, force=True)  # written beside, fsynced, renamed


def _place_snapshot_folder(ledger: Ledger, root: Path, publication: Publication,
                           signer: Signer) -> None:
    """Stage ROOT/snapshots/<size>/, rename it into place and record the snapshot."""
    parent = root / "snapshots"
    parent.mkdir(exist_ok=True)
    size = publication.document["log"]["size"]
    stage = Path(tempfile.mkdtemp(prefix=staging_prefix(str(size)), suffix=".partial",
                                  dir=parent))
    try:
        write_snapshot_files(stage, publication, signer)
        write_shards(stage, publication)
        sync_tree(stage)
        _record_and_place(ledger, publication, stage, parent / str(size))
    finally:
        remove_path(stage)


def write_shards(out: Path, publication: Publication) -> int:
    """Write accounts/index.json and the account-proof shards (auditor.verify.shards); return the
    number of shards."""
    document, tree = publication.document, publication.tree
    assets = document["accounts"]["assets"]
    decimals = {a: len(document["reserves"][a].partition(".")[2]) for a in assets}
    count = tree.count
    digits = shard_digits(count)
    shards: dict[str, dict[str, dict[str, object]]] = {}
    for account in publication.entries:
        index = tree.index_of(account)
        nonce = account_nonce(publication.seed, account).hex()
        name = shard_name(nonce, digits)
        shard = shards.setdefault(name, {"accounts": {}, "nodes": {}})
        shard["accounts"][account] = {"nonce": nonce, "index": index}
        nodes = shard["nodes"]
        leaf_hash, leaf_sums = tree.leaf(index)
        nodes[f"0/{index}"] = _node(leaf_hash, leaf_sums, assets, decimals)
        for (row, pos), (h, sums) in zip(sibling_keys(index, count), tree.proof(index),
                                         strict=True):
            nodes[f"{row}/{pos}"] = _node(h, sums, assets, decimals)
    (out / "accounts").mkdir()
    header = {"fund": document["fund"], "log_size": document["log"]["size"],
              "root": tree.root.hex(), "count": count, "assets": assets}
    write_json(out / "accounts" / "index.json", {"format": INDEX_FORMAT, "digits": digits,
                                                 **header})
    for name, shard in shards.items():
        text = json.dumps({"format": SHARD_FORMAT, **header, **shard}, sort_keys=True,
                          separators=(",", ":"))  # compact: shards are most of a snapshot
        (out / name).write_text(text + "\n", "utf-8")
    return len(shards)


def _node(h: bytes, sums: tuple[int, ...], assets: list[str],
          decimals: dict[str, int]) -> list[str]:
    """A shard's node: [hash hex, amount strings, three per asset]."""
    return [h.hex(), *(format_amount(sums[3 * i + k], decimals[a])
                       for i, a in enumerate(assets) for k in range(3))]


def _drop_partials(root: Path, full: list[tuple[int, int]]) -> None:
    """Delete the partial versions of tiles now full (ROOT/checkpoint no longer needs them)."""
    for level, index in full:
        levels: tuple[int | str, ...] = (level, "entries") if level == 0 else (level,)
        for name in levels:
            remove_path(root / (tile_path(name, index) + ".p"))
