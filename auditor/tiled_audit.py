"""`backstop-audit replay ROOT_OR_URL`: a full replay of a tiled publication.

Reads ROOT/snapshots/<size>/ (snapshot.json, checkpoint, account-seed), checks the snapshot's
signatures and its signed checkpoint, then replays the log's entry bundles up to the
snapshot's size, each bundle checked against the hash tiles and the tiles against the
checkpoint's root (auditor.verify.tiles.verified_lines).
"""

from __future__ import annotations

from auditor.checks import check_signatures, load_seed, parse_json, parse_seed, run_replay
from auditor.formats.clip import clip
from auditor.replay import Replayer
from auditor.report import InputError, Report
from auditor.state import check_resume, read_state, write_state
from auditor.verify.keys import NoteError, Verifier, open_note, parse_checkpoint
from auditor.verify.tiles import TILE_WIDTH, Source, TileError, tile_layout, verified_lines


def need_input(source: Source, path: str) -> bytes:
    try:
        return source.need(path)
    except TileError as exc:
        raise InputError(str(exc)) from None


def signed_checkpoint(report: Report, raw: bytes, what: str,
                       verifiers: list[Verifier]) -> tuple[str, int, bytes]:
    """(origin, size, root) of a checkpoint signed by a trusted key (Failed otherwise)."""
    try:
        body, _ = open_note(raw.decode("utf-8"), verifiers)
        return parse_checkpoint(body)
    except (NoteError, UnicodeDecodeError) as exc:
        raise report.fail(what, str(exc)) from None


def latest_size(report: Report, source: Source, verifiers: list[Verifier]) -> int:
    """The size named by the log's latest checkpoint (signature checked)."""
    return signed_checkpoint(report, need_input(source, "checkpoint"), "checkpoint", verifiers)[1]


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
    if snapshot is None:
        size = latest_size(report, source, verifiers)
    elif snapshot.isdigit():
        size = int(snapshot)
    else:
        raise InputError(f"--snapshot {clip(snapshot)}: with a tiled log, give a log size "
                         "(a folder under snapshots/)")
    folder = f"snapshots/{size}"
    snap = parse_json(need_input(source, f"{folder}/snapshot.json"), f"{source.name}/{folder}",
                      "snapshot", "snapshot")
    report.ok("snapshot schema")
    check_signatures(report, snap, verifiers, require)
    checkpoint = need_input(source, f"{folder}/checkpoint")
    origin, cp_size, cp_root = signed_checkpoint(report, checkpoint, "checkpoint", verifiers)
    if (origin, cp_size, cp_root.hex()) != (f"backstop/{snap['fund']}", snap["log"]["size"],
                                            snap["log"]["root"]):
        raise report.fail("checkpoint", f"{folder}/checkpoint names {origin} size {cp_size} "
                                        f"root {cp_root.hex()}, not the snapshot's log")
    report.ok("checkpoint", f"{origin} size {cp_size}, signed, equal to the snapshot's log")
    if seed is not None:
        seed_bytes: bytes | None = load_seed(seed)
    else:
        text = source.read(f"{folder}/account-seed")
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
