"""Scheduled publishing: each run signs a snapshot into a new dated folder under OUT.

    OUT/log/                   the tiled log every run extends (ledger.service.tilepub)
    OUT/<time>-<size>/         one folder per run: snapshot.json, checkpoint, verifier-key,
                               consistency.json (proof from the previous run's log size)
    OUT/latest -> <time>-<size> a symlink, replaced by rename: never half-written
    OUT/site -> .site-<n>      the transparency site, rebuilt after each run

A dated folder is staged beside its name and renamed into place, then `latest` is pointed at
it; a web server serving OUT always sees whole folders. Staged folders and new links carry
the writer's pid (ledger.service.leftovers), so each run removes what a killed run left.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from auditor.verify.keys import Signer
from ledger.service.application import Ledger
from ledger.service.leftovers import remove_stale, staging_prefix
from ledger.service.publish import consistency_proof, write_json
from ledger.service.site import build_site
from ledger.service.tilepub import publish_tiles, published_size

LOG = "log"
LATEST = "latest"
SITE = "site"


@dataclass(frozen=True)
class ScheduledRun:
    """One scheduled publication: its folder and the log sizes it spans."""

    folder: Path
    previous_size: int
    size: int


def publish_dated(ledger: Ledger, fund: str, signer: Signer, out: Path,
                  time: str) -> ScheduledRun | None:
    """Sign a snapshot now into OUT/log and a new dated folder; None when the log has not
    grown since the last run (nothing new to sign)."""
    out.mkdir(parents=True, exist_ok=True)
    remove_stale(out)  # what killed runs left: staged folders, `latest` and `site` links
    log = out / LOG
    previous = published_size(ledger, fund, log) or 0
    if ledger.get_fund(fund).log_size <= previous:
        return None
    publication = publish_tiles(ledger, fund, signer, log, time)
    size = int(publication.document["log"]["size"])
    name = f"{time.replace('-', '').replace(':', '')}-{size}"
    stage = Path(tempfile.mkdtemp(prefix=staging_prefix(name), suffix=".partial", dir=out))
    try:
        snapshot = log / "snapshots" / str(size)
        for file in ("snapshot.json", "checkpoint", "verifier-key"):
            shutil.copyfile(snapshot / file, stage / file)
        proof = (consistency_proof(ledger, fund, previous, size) if previous
                 else {"format": "backstop-consistency-proof/1", "old": None,
                       "new": {"size": size, "root": publication.document["log"]["root"]},
                       "proof": []})
        write_json(stage / "consistency.json", proof)
        stage.chmod(0o755)
        os.rename(stage, out / name)
    finally:
        if stage.exists():
            shutil.rmtree(stage)
    point_latest(out, name)
    return ScheduledRun(out / name, previous, size)


def point_latest(out: Path, name: str) -> None:
    """OUT/latest -> name, atomically: a new symlink beside it, renamed over the old one."""
    temporary = out / f".{LATEST}.{os.getpid()}.new"
    if os.path.lexists(temporary):
        temporary.unlink()
    os.symlink(name, temporary)
    os.replace(temporary, out / LATEST)


def rebuild_site(out: Path) -> Path:
    """Rebuild the transparency site from OUT/log: built into a new folder OUT/.site-<n>, then
    OUT/site, a symlink, is pointed at it by rename (as `latest`) and the previous build
    removed."""
    staging = Path(tempfile.mkdtemp(prefix=staging_prefix(SITE), suffix=".partial", dir=out))
    staging.rmdir()  # the builder wants an absent or empty folder; it creates it
    try:
        build_site([out / LOG], staging, None)
        # Built: a name outside the leftover scheme, as the link will point at it for good.
        stage = Path(tempfile.mkdtemp(prefix=".site-", dir=out))
        os.replace(staging, stage)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    link = out / SITE
    old = os.readlink(link) if link.is_symlink() else None
    temporary = out / f".{SITE}.{os.getpid()}.new"
    if os.path.lexists(temporary):
        temporary.unlink()
    os.symlink(stage.name, temporary)
    os.replace(temporary, link)
    if old is not None and old != stage.name and (out / old).is_dir():
        shutil.rmtree(out / old)
    return link
