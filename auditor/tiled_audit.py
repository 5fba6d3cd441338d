"""`backstop-audit replay ROOT_OR_URL`: a full replay of a tiled publication.

Reads ROOT/snapshots/<size>/ (snapshot.json, checkpoint, account-seed), checks the snapshot's
signatures and its signed checkpoint, then replays the log's entry bundles up to the
snapshot's size, each bundle checked against the hash tiles and the tiles against the
checkpoint's root (auditor.verify.tiles.verified_lines). ROOT/checkpoint and the snapshot
must be one view of one log (`check_one_view`): a second root for a size is a split view.
"""

from __future__ import annotations

from typing import Any

from auditor.formats.clip import clip
from auditor.formats.digits import parse_uint
from auditor.loaders import load_seed, parse_json, parse_seed
from auditor.replay import Replayer
from auditor.report import InputError, Report
from auditor.snapshot_checks import check_signatures, run_replay
from auditor.state import check_resume, read_state, write_state
from auditor.verify import merkle
from auditor.verify.keys import NoteError, Verifier, open_note, parse_checkpoint
from auditor.verify.origin import snapshot_origin
from auditor.verify.reads import MAX_CHECKPOINT, MAX_SEED, MAX_SNAPSHOT
from auditor.verify.tiles import (
    TILE_WIDTH,
    Source,
    TileError,
    consistency_from_tiles,
    tile_layout,
    verified_lines,
)


def need_input(source: Source, path: str, cap: int) -> bytes:
    """The file at `path` under the log, at most `cap` bytes; InputError (exit 2) if it is
    absent, too large, not a regular file or not fetched in time."""
    try:
        return source.need(path, cap)
    except TileError as exc:
        raise InputError(str(exc)) from None


def read_input(source: Source, path: str, cap: int) -> bytes | None:
    """As `need_input`, None when the file is absent."""
    try:
        return source.read(path, cap)
    except TileError as exc:
        raise InputError(str(exc)) from None


def snapshot_size(snapshot: str) -> int:
    """`--snapshot` for a tiled log: a log size in ASCII digits (InputError otherwise)."""
    try:
        return parse_uint(snapshot)
    except ValueError:
        raise InputError(f"--snapshot {clip(snapshot)}: with a tiled log, give a log size in "
                         "ASCII digits (a folder under snapshots/)") from None


def signed_checkpoint(report: Report, raw: bytes, what: str,
                       verifiers: list[Verifier]) -> tuple[str, int, bytes]:
    """(origin, size, root) of a checkpoint signed by a trusted key (Failed otherwise)."""
    try:
        body, _ = open_note(raw.decode("utf-8"), verifiers)
        return parse_checkpoint(body)
    except (NoteError, UnicodeDecodeError) as exc:
        raise report.fail(what, str(exc)) from None


def latest_checkpoint(report: Report, source: Source,
                      verifiers: list[Verifier]) -> tuple[str, int, bytes]:
    """(origin, size, root) of ROOT/checkpoint, its signature checked."""
    return signed_checkpoint(report, need_input(source, "checkpoint", MAX_CHECKPOINT),
                             "checkpoint", verifiers)


def check_one_view(report: Report, source: Source, latest: tuple[str, int, bytes],
                   snap: dict[str, Any], folder: str) -> None:
    """ROOT/checkpoint and the snapshot (its checkpoint, log and previous link) are signed
    statements about one log: two roots for one size are a split view, and the larger tree
    must extend the smaller (a consistency proof folded from the larger tree's tiles).
    Failed naming both roots and where each came from."""
    origin, size, root = latest
    mine = snapshot_origin(snap)
    if origin != mine:
        raise report.fail("one view", f"ROOT/checkpoint names origin {clip(origin)}, "
                                      f"{folder}/snapshot.json {clip(mine)}")
    here = f"{folder}/snapshot.json log (and {folder}/checkpoint)"
    claims = [(snap["log"]["size"], snap["log"]["root"], here)]
    previous = snap.get("previous")
    if previous is not None:
        claims.append((previous["log_size"], previous["log_root"],
                       f"{folder}/snapshot.json previous"))
    for other_size, other_root, where in claims:
        if other_size == size and other_root != root.hex():
            raise report.fail("one view", f"split view: ROOT/checkpoint names root {root.hex()} "
                                          f"for size {size}, {where} names root {other_root}")
    snap_size, snap_root = snap["log"]["size"], bytes.fromhex(snap["log"]["root"])
    if size == snap_size or min(size, snap_size) == 0:
        report.ok("one view", f"ROOT/checkpoint (size {size}) agrees with the snapshot")
        return
    (old, old_root, old_where), (new, new_root, new_where) = sorted(
        [(size, root, "ROOT/checkpoint"), (snap_size, snap_root, f"{folder}/checkpoint")])
    try:
        proof = consistency_from_tiles(source, old, new)
        merkle.verify_consistency(old, new, proof, old_root, new_root)
    except TileError as exc:
        raise report.fail("tiles", str(exc)) from None
    except merkle.ProofError as exc:
        raise report.fail("one view", f"split view: {new_where} (size {new}, root "
                                      f"{new_root.hex()}) does not extend {old_where} (size "
                                      f"{old}, root {old_root.hex()}) by the tiles of size "
                                      f"{new}: {exc}") from None
    report.ok("one view", f"{new_where} (size {new}) extends {old_where} (size {old}): "
                          "consistency proof from the tiles")


def verify_tiled_replay(report: Report, source: Source, snapshot: str | None,
                        verifiers: list[Verifier], require: int, seed: str | None,
                        skip_accounts: bool = False, save_state: str | None = None,
                        resume_state: str | None = None) -> bytes:
    """Replay the tiled log at `source` up to the snapshot of log size `snapshot`; return the
    bytes of the snapshot's checkpoint that were verified (a witness cosigns exactly those, not
    a second download).

    With `resume_state`, start from that saved state (auditor.state) and replay only the
    events after it; with `save_state`, save the state once everything verified."""
    saved = read_state(resume_state) if resume_state is not None else None
    size = None if snapshot is None else snapshot_size(snapshot)
    raw = (need_input(source, "checkpoint", MAX_CHECKPOINT) if size is None
           else read_input(source, "checkpoint", MAX_CHECKPOINT))
    latest = None if raw is None else signed_checkpoint(report, raw, "checkpoint", verifiers)
    if size is None:
        size = latest[1] if latest is not None else 0
    folder = f"snapshots/{size}"
    snap = parse_json(need_input(source, f"{folder}/snapshot.json", MAX_SNAPSHOT),
                      f"{source.name}/{folder}", "snapshot", "snapshot")
    report.ok("snapshot schema")
    check_signatures(report, snap, verifiers, require)
    checkpoint = need_input(source, f"{folder}/checkpoint", MAX_CHECKPOINT)
    origin, cp_size, cp_root = signed_checkpoint(report, checkpoint, "checkpoint", verifiers)
    if (origin, cp_size, cp_root.hex()) != (snapshot_origin(snap), snap["log"]["size"],
                                            snap["log"]["root"]):
        raise report.fail("checkpoint", f"{folder}/checkpoint names {origin} size {cp_size} "
                                        f"root {cp_root.hex()}, not the snapshot's log")
    report.ok("checkpoint", f"{origin} size {cp_size}, signed, equal to the snapshot's log")
    if latest is None:
        report.note("one view", "the log has no ROOT/checkpoint to compare with")
    else:
        check_one_view(report, source, latest, snap, folder)
    if seed is not None:
        seed_bytes: bytes | None = load_seed(seed)
    else:
        text = read_input(source, f"{folder}/account-seed", MAX_SEED)
        seed_bytes = None if text is None else parse_seed(text, f"{folder}/account-seed")
    replayer = saved.replayer if saved is not None else Replayer()
    replayer.keep_refs = save_state is not None  # its ids are saved after the run
    start = 0
    if saved is not None:
        check_resume(report, source, saved, snap, cp_size)
        start = saved.size
    run_replay(report, snap, verified_lines(source, cp_size, cp_root, start), seed_bytes,
               skip_accounts, replayer)
    bundles = sum(1 for level, index, _ in tile_layout(cp_size)
                  if level == 0 and index >= start // TILE_WIDTH)
    report.ok("tiles", f"{cp_size - start} entries in {bundles} bundles hash to the level-0 "
                       "tiles, the tiles to each other and to the checkpoint's root")
    report.figures["snapshot"] = {"fund": snap["fund"], "log_size": snap["log"]["size"],
                                  "log_root": snap["log"]["root"], "source": source.name}
    if save_state is not None:
        written = write_state(save_state, replayer)
        replayer.refs.close()
        report.ok("state", f"saved to {save_state} ({written} bytes)")
    return checkpoint
