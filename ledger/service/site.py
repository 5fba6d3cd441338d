"""`backstop site build`: a static transparency site from published snapshot directories.

The one reader of published output for the site: a tiled log's ROOT (`snapshot publish
--layout tiles`: ROOT/checkpoint, ROOT/tile/..., ROOT/snapshots/<size>/) or a per-snapshot
directory (snapshot.json, checkpoint, events.jsonl, verifier-key). Every snapshot must be
signed by the pinned key and every one must commit to a prefix of one log (its root is
recomputed from the events); anything else is refused, naming the file (`SiteError`).

The site (works from file:// and any static host, no server code):

    index.html, verify.html     the pages (ledger/site_assets, built from web/ by `make web`)
    assets/app.js, app.css      the bundled front end (charts, tables, the verifier)
    data.js                     window.BACKSTOP_SITE = {...}: everything the pages show
    balances.csv, events.csv    the balance history and the socialized-loss/ADL events
    snapshots/<size>/           each snapshot.json and its checkpoint, as published
    snapshots/<size>/accounts/  the account-proof shards of the latest --account-shards
                                snapshots, as scripts (ledger.service.site_shards)
    receipts/<size>/            every payout's and clawback's receipt (C2SP tlog-proof) under
                                the latest checkpointed snapshot (ledger.service.site_receipts)
    verifier-key                the key pinned at build time

Money stays exact: amounts are integers in minor units here and decimal strings in the
output; the front end turns them into floats only to draw them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from auditor.formats.schemas import first_error
from auditor.formats.wire import (
    WireError,
    canonical_bytes,
    load_document,
)
from auditor.verify import merkle
from auditor.verify.keys import KeyFormatError, SignatureError, Verifier, verify_document
from auditor.verify.origin import snapshot_origin
from auditor.verify.reads import (
    MAX_CHECKPOINT,
    MAX_KEY_FILE,
    MAX_SNAPSHOT,
    ReadError,
    read_regular,
)
from auditor.verify.tiles import TileError, verified_lines
from ledger.service.outputs import replace_dir
from ledger.service.site_figures import SiteError, balances_csv, events_csv, figures, flatten
from ledger.service.site_files import MAX_EVENTS, Tree, TreeSource, check_checkpoint
from ledger.service.site_pools import pool_figures
from ledger.service.site_receipts import SiteReceipts, site_receipts
from ledger.service.site_shards import Shards, read_shards

SITE_FORMAT = "backstop-site/1"
ASSETS = ("index.html", "verify.html", "app.js", "app.css")


@dataclass
class Snapshot:
    """One published snapshot: its document, checkpoint note and where it was read (`raw`:
    the snapshot.json bytes as read, which the site serves)."""

    document: dict[str, Any]
    checkpoint: str | None
    path: Path
    verifier_key: str | None
    raw: bytes | None = None
    place: tuple[Tree, str] | None = None  # where its accounts/ shards may be, if anywhere

    @property
    def size(self) -> int:
        return int(self.document["log"]["size"])


@dataclass
class Publication:
    """Every snapshot read (sorted by log size) and the longest log's event lines."""

    fund: str
    snapshots: list[Snapshot]
    lines: list[bytes] = field(default_factory=list)


# ------------------------------------------------------------------------------ reading


def _read_text(tree: Tree, relative: str, cap: int) -> str | None:
    data = tree.read(relative, cap)
    try:
        return None if data is None else data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SiteError(f"{tree.root / relative}: not UTF-8 ({error.reason} at byte "
                        f"{error.start})") from None


def _read_snapshot(tree: Tree, folder: str) -> Snapshot:
    """The snapshot in `folder` ("" for the tree's root) of a publication."""
    prefix = f"{folder}/" if folder else ""
    path = tree.root / prefix / "snapshot.json"
    raw = tree.read(f"{prefix}snapshot.json", MAX_SNAPSHOT)
    if raw is None:
        raise SiteError(f"{path}: cannot read (No such file or directory)")
    try:
        document = load_document(raw)
    except WireError as error:
        raise SiteError(f"{path}: {error}") from None
    problem = first_error("snapshot", document)
    if problem is not None:
        raise SiteError(f"{path}: does not match snapshot.schema.json: {problem}")
    key = _read_text(tree, f"{prefix}verifier-key", MAX_KEY_FILE)
    return Snapshot(document, _read_text(tree, f"{prefix}checkpoint", MAX_CHECKPOINT), path,
                    key.strip() if key else None, raw, (tree, folder) if folder else None)


def _read_dir(folder: Path) -> tuple[list[Snapshot], list[bytes]]:
    """The snapshots in one published directory and the event lines it holds."""
    tree = Tree(folder)
    if folder.is_dir() and tree.kind("tile") == "dir" and tree.kind("snapshots") == "dir":
        names = sorted((name for name in tree.listdir("snapshots")
                        if name.isdigit() and tree.kind(f"snapshots/{name}") == "dir"
                        and tree.kind(f"snapshots/{name}/snapshot.json") == "file"), key=int)
        snapshots = [_read_snapshot(tree, f"snapshots/{name}") for name in names]
        if not snapshots:
            raise SiteError(f"{folder}: a tiled log without any snapshots/<size>/snapshot.json")
        last = snapshots[-1].document["log"]
        try:
            lines = list(verified_lines(TreeSource(tree), last["size"],
                                        bytes.fromhex(last["root"])))
        except TileError as error:
            raise SiteError(f"{folder}: {error}") from None
        return snapshots, lines
    if folder.parent.name == "snapshots" and (folder.parent.parent / "tile").is_dir():
        raise SiteError(f"{folder}: one snapshot of a tiled log; pass the log's root "
                        f"{folder.parent.parent} (its events are in the tiles)")
    if folder.is_dir() and tree.kind("snapshot.json") == "file":
        snapshot = _read_snapshot(tree, "")
        events = tree.read("events.jsonl", MAX_EVENTS)
        if events is None:
            raise SiteError(f"{folder / 'events.jsonl'}: cannot read (No such file or directory)")
        lines = events.splitlines()
        if len(lines) != snapshot.size:
            raise SiteError(f"{folder / 'events.jsonl'}: {len(lines)} lines, the snapshot's log "
                            f"has {snapshot.size}")
        return [snapshot], lines
    raise SiteError(f"{folder}: neither a tiled log (tile/, snapshots/) nor a published snapshot "
                    "directory (snapshot.json)")


def read_published(folders: list[Path]) -> Publication:
    """Read every folder; check they hold one fund's snapshots of one log (SiteError if not)."""
    by_size: dict[int, Snapshot] = {}
    lines: list[bytes] = []
    for folder in folders:
        snapshots, held = _read_dir(folder)
        if len(held) > len(lines):
            lines = held
        for snapshot in snapshots:
            other = by_size.get(snapshot.size)
            if other is not None and canonical_bytes(other.document) != canonical_bytes(snapshot.document):
                raise SiteError(f"{snapshot.path}: another snapshot at log size {snapshot.size} "
                                f"differs ({other.path})")
            by_size.setdefault(snapshot.size, snapshot)
    snapshots = [by_size[size] for size in sorted(by_size)]
    funds = {s.document["fund"] for s in snapshots}
    if len(funds) != 1:
        raise SiteError(f"the published folders hold snapshots of {len(funds)} funds "
                        f"({', '.join(sorted(funds))}); build one site per fund")
    _check_roots(snapshots, lines)
    return Publication(funds.pop(), snapshots, lines)


def _check_roots(snapshots: list[Snapshot], lines: list[bytes]) -> None:
    """Every snapshot's log root must be the root of that many events of the log read."""
    wanted = {s.size: s for s in snapshots}
    if max(wanted) > len(lines):
        raise SiteError(f"{wanted[max(wanted)].path}: the log read has {len(lines)} events, "
                        f"fewer than the snapshot's {max(wanted)}")
    tree = merkle.CompactRange()
    for size in sorted(wanted):
        tree.extend([merkle.leaf_hash(line) for line in lines[tree.size:size]])
        if tree.root().hex() != wanted[size].document["log"]["root"]:
            raise SiteError(f"{wanted[size].path}: log root {wanted[size].document['log']['root']} "
                            f"is not the root of the first {size} events of the log "
                            f"({tree.root().hex()})")


def pinned_key(key: str | None, publication: Publication) -> tuple[Verifier, str, str]:
    """(verifier, key text, where it came from): `key` (a verifier key or a file holding one)
    or else the publication's verifier-key files, which must agree; every snapshot must be
    signed by it."""
    if key is not None:
        text, source = key.strip(), "pinned with --key at build time"
        try:
            Verifier.from_vkey(text)
        except KeyFormatError:  # then a file holding the key, as backstop-audit --key takes
            content = _key_file(key)
            if content is None:
                raise SiteError(f"--key {key[:60]}: neither a verifier key nor a key file") from None
            text = next((line.strip() for line in content.splitlines() if line.strip()), "")
    else:
        found = {s.verifier_key for s in publication.snapshots if s.verifier_key}
        if len(found) != 1:
            raise SiteError(f"the published folders hold {len(found)} different verifier-key "
                            "files; pass --key with the operator's key")
        text, source = found.pop(), "taken from the publication's verifier-key at build time"
    try:
        verifier = Verifier.from_vkey(text)
    except KeyFormatError as error:
        raise SiteError(f"--key: {error}") from None
    for snapshot in publication.snapshots:
        try:
            verify_document(snapshot.document, [verifier])
        except SignatureError as error:
            raise SiteError(f"{snapshot.path}: signatures: {error}") from None
        if snapshot.checkpoint is not None:  # shown on the site: it must be the snapshot's
            log = snapshot.document["log"]
            check_checkpoint(snapshot.checkpoint, snapshot.path.with_name("checkpoint"), verifier,
                             snapshot_origin(snapshot.document), snapshot.size, log["root"])
    return verifier, text, source


def _key_file(key: str) -> str | None:
    """The text of the key file `key` names (the operator's own file: symlinks followed),
    None when there is none."""
    if len(key) >= 4096 or "\0" in key:
        return None
    try:
        return read_regular(Path(key), MAX_KEY_FILE).decode("utf-8")
    except (FileNotFoundError, IsADirectoryError):
        return None
    except (ReadError, UnicodeDecodeError) as error:
        raise SiteError(f"--key {key[:60]}: {error}") from None


def carried_shards(publication: Publication, latest: int | None) -> dict[int, Shards]:
    """The shards of the `latest` snapshots (every one when None) that have them, by log
    size, read and checked (SiteError if one is not its snapshot's)."""
    chosen = publication.snapshots if latest is None else \
        publication.snapshots[max(0, len(publication.snapshots) - latest):]
    out = {}
    for snapshot in chosen:
        if snapshot.place is not None and latest != 0:
            found = read_shards(*snapshot.place, snapshot.document)
            if found is not None:
                out[snapshot.size] = found
    return out


def carried_receipts(publication: Publication) -> SiteReceipts | None:
    """The receipts of the latest snapshot that has a checkpoint (None: none has one)."""
    for snapshot in reversed(publication.snapshots):
        if snapshot.checkpoint is not None and snapshot.size <= len(publication.lines):
            return site_receipts(publication.fund, snapshot.size, snapshot.checkpoint,
                                 publication.lines)
    return None


def site_data(publication: Publication, vkey: str, key_source: str,
              shards: dict[int, Shards] | None = None,
              receipts: SiteReceipts | None = None) -> dict[str, Any]:
    """The document data.js holds (window.BACKSTOP_SITE)."""
    found = figures(publication.lines)
    snapshots = []
    risk = []
    for s in publication.snapshots:
        doc = s.document
        carried = (shards or {}).get(s.size)
        snapshots.append({
            "size": s.size, "time": doc["time"], "root": doc["log"]["root"],
            "account_root": doc["accounts"]["root"], "accounts": doc["accounts"]["count"],
            "reserves": doc["reserves"], "signers": [g["key"] for g in doc["signatures"]],
            "checkpoint": s.checkpoint, "file": f"snapshots/{s.size}/snapshot.json", "doc": doc,
            "shards": None if carried is None else carried.listing(),
        })
        metrics = doc.get("metrics") or {}
        if isinstance(metrics, dict) and metrics.get("risk") is not None:
            risk.append({"size": s.size, "time": doc["time"], "figures": flatten(metrics["risk"])})
    data = {"format": SITE_FORMAT, "fund": publication.fund,
            "key": {"vkey": vkey, "source": key_source}, "assets": found["decimals"],
            "period": found["period"], "balances": found["balances"], "flows": found["flows"],
            "coverage": found["coverage"], "events": found["events"], "risk": risk,
            "snapshots": snapshots,
            "receipts": None if receipts is None else receipts.listing()}
    pools = pool_figures([s.document for s in publication.snapshots], publication.lines)
    if pools is not None:  # a v2 fund only: a v1 site's data.js stays as it was
        data["pools"] = pools
    return data


# ------------------------------------------------------------------------------ writing


def asset_bytes(name: str) -> bytes:
    """A built front-end file shipped in the package (ledger/site_assets/)."""
    return resources.files("ledger.site_assets").joinpath(name).read_bytes()


def build_site(folders: list[Path], out: Path, key: str | None = None,
               force: bool = False, account_shards: int | None = 1,
               with_receipts: bool = True) -> dict[str, Any]:
    """Read `folders`, write the site to `out` and return its data. All or nothing
    (outputs.replace_dir): nothing is written when reading fails, and `out` is replaced only
    once the whole site is staged beside it; never written through a symlink. `out` must be
    free or empty unless `force`. The site carries the account-proof shards of the latest
    `account_shards` snapshots (None: of every snapshot), and, `with_receipts`, the receipts
    of the latest checkpointed snapshot's payouts and clawbacks."""
    publication = read_published(folders)
    _, vkey, source = pinned_key(key, publication)
    shards = carried_shards(publication, account_shards)
    receipts = carried_receipts(publication) if with_receipts else None
    data = site_data(publication, vkey, source, shards, receipts)

    def fill(stage: Path) -> None:
        (stage / "assets").mkdir()
        for name in ASSETS:
            target = stage / (name if name.endswith(".html") else f"assets/{name}")
            target.write_bytes(asset_bytes(name))
        text = json.dumps(data, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
        (stage / "data.js").write_text(f"window.BACKSTOP_SITE = {text};\n", "utf-8")
        (stage / "balances.csv").write_bytes(balances_csv(data))
        (stage / "events.csv").write_bytes(events_csv(data))
        (stage / "verifier-key").write_text(vkey + "\n", "utf-8")
        for snapshot in publication.snapshots:
            folder = stage / "snapshots" / str(snapshot.size)
            folder.mkdir(parents=True)
            raw = snapshot.raw if snapshot.raw is not None else canonical_bytes(snapshot.document)
            (folder / "snapshot.json").write_bytes(raw)
            if snapshot.checkpoint is not None:
                (folder / "checkpoint").write_text(snapshot.checkpoint, "utf-8")
            if snapshot.size in shards:
                (folder / "accounts").mkdir()
                for name, script in shards[snapshot.size].scripts().items():
                    (folder / "accounts" / name).write_bytes(script)
        if receipts is not None:
            folder = stage / "receipts" / str(receipts.size)
            folder.mkdir(parents=True)
            for name, text in receipts.files.items():
                (folder / name).write_text(text, "utf-8")
        for path in [stage, *stage.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)

    replace_dir(out, fill, force)
    return data
