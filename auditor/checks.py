"""What `backstop-audit` checks, one function per command: load the inputs (auditor.loaders),
verify, and record each check in a `Report` (`execute` turns a check function into a verdict).
The checks several commands share are in auditor.snapshot_checks; a tiled log's replay is
auditor.tiled_audit. The click commands in `auditor.cli` only parse arguments and print the
report. Never imports `ledger`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from auditor.formats.clip import clip
from auditor.formats.schemas import first_error
from auditor.formats.wire import WireError, canonical_bytes, parse_amount, snapshot_decimals
from auditor.loaders import find_seed, load_json, load_verifiers, load_witness, read_bytes
from auditor.report import Failed, InputError, Report, one_line
from auditor.snapshot_checks import (
    KINDS,
    check_checkpoint,
    check_signatures,
    check_snapshot_internal,
    holdings_note,
    run_replay,
    snapshot_figures,
)
from auditor.state import write_atomic
from auditor.tiled_audit import verify_tiled_replay
from auditor.verify import merkle, sumtree
from auditor.verify.cosign import CosignerKey, parse_cosigner_keys, verify_cosignature
from auditor.verify.keys import (
    KeyFormatError,
    SignatureError,
    sign_document,
    verify_document,
)
from auditor.verify.origin import snapshot_origin
from auditor.verify.reads import DEFAULT_DEADLINE, DEFAULT_TIMEOUT, MAX_CHECKPOINT, HttpLimits
from auditor.verify.shards import ShardError, proof_from_shard
from auditor.verify.tiles import open_source, verified_lines


def execute(name: str, body: Callable[..., None], **params: Any) -> Report:
    """Run one command body; return its report (the verdict is in `exit_code`)."""
    report = Report(name)
    try:
        body(report, **params)
    except Failed as exc:
        report.reason = one_line(str(exc))
    except InputError as exc:
        report.error = one_line(str(exc))
    return report


def verify_snapshot(report: Report, snapshot: str, keys: tuple[str, ...], require: int) -> None:
    verifiers = load_verifiers(keys)
    snap = load_json(snapshot, "snapshot", "snapshot")
    report.ok("snapshot schema")
    check_signatures(report, snap, verifiers, require)
    check_snapshot_internal(report, snap)
    holdings_note(report, snap)
    snapshot_figures(report, snap)


def verify_replay(report: Report, events: str, snapshot: str | None, keys: tuple[str, ...],
                  require: int, seed: str | None, skip_accounts: bool = False,
                  save_state: str | None = None, resume_state: str | None = None,
                  timeout: float = DEFAULT_TIMEOUT, deadline: float = DEFAULT_DEADLINE) -> None:
    """`backstop-audit replay`: an export against its snapshot, or a tiled log (a folder,
    or a URL read with `timeout` and `deadline`, auditor.verify.reads)."""
    verifiers = load_verifiers(keys)
    source = open_source(events, HttpLimits(timeout, deadline))
    if source is not None:
        verify_tiled_replay(report, source, snapshot, verifiers, require, seed, skip_accounts,
                            save_state, resume_state)
        return
    if save_state or resume_state:
        raise InputError("--save-state and --resume-state need a tiled log (ROOT or URL)")
    if snapshot is None:
        raise InputError("--snapshot is required to replay an export file")
    snap = load_json(snapshot, "snapshot", "snapshot")
    seed_bytes = find_seed(seed, snapshot)
    report.ok("snapshot schema")
    check_signatures(report, snap, verifiers, require)
    run_replay(report, snap, events, seed_bytes, skip_accounts)
    report.figures["snapshot"] = {"fund": snap["fund"], "log_size": snap["log"]["size"],
                                  "log_root": snap["log"]["root"]}


def verify_account(report: Report, proof: str, snapshot: str, keys: tuple[str, ...],
                   require: int, account: str | None = None) -> None:
    verifiers = load_verifiers(keys)
    snap = load_json(snapshot, "snapshot", "snapshot")
    if account is None:
        doc = load_json(proof, "account proof", "account-proof")
    else:
        try:
            doc = proof_from_shard(load_json(proof, "account shard", None), account)
        except ShardError as exc:
            raise InputError(f"account shard {proof}: {exc}") from None
        error = first_error("account-proof", doc)
        if error is not None:
            raise InputError(f"account shard {proof}: proof of {account!r} does not match "
                             f"account-proof.schema.json: {error}")
    report.ok("schemas")
    check_signatures(report, snap, verifiers, require)
    acc = snap["accounts"]
    if doc["root"] != acc["root"]:
        raise report.fail("root", f"proof is for account root {doc['root']}, snapshot has {acc['root']}")
    if doc["count"] != acc["count"]:
        raise report.fail("count", f"proof is for {doc['count']} accounts, snapshot has {acc['count']}")
    # Optional, but when present they name the snapshot: a proof naming another one is refused.
    if "fund" in doc and doc["fund"] != snap["fund"]:
        raise report.fail("fund", f"proof is for fund {clip(doc['fund'])}, snapshot is of {snap['fund']!r}")
    if "log_size" in doc and doc["log_size"] != snap["log"]["size"]:
        raise report.fail("log_size", f"proof is for log size {doc['log_size']}, snapshot has "
                                      f"{snap['log']['size']}")
    decimals = snapshot_decimals(snap)
    assets = acc["assets"]

    def vector(sums: Any, where: str) -> list[int]:
        out = []
        for asset in assets:
            if asset not in decimals:
                raise report.fail(f"accounts.assets.{asset}", "has no reserve entry (decimals unknown)")
            entry = sums.get(asset) if isinstance(sums, dict) else None
            if not isinstance(entry, dict):
                raise report.fail(f"{where}.{asset}", "missing")
            for kind in KINDS:
                try:
                    out.append(parse_amount(entry.get(kind), decimals[asset]))
                except WireError as exc:
                    raise report.fail(f"{where}.{asset}.{kind}", str(exc)) from None
        return out

    leaf_sums = vector(doc["totals"], "totals")
    totals = vector(acc["totals"], "snapshot accounts.totals")
    path = [(bytes.fromhex(p["hash"]), vector(p["sums"], f"path.{i}.sums"))
            for i, p in enumerate(doc["path"])]
    try:
        leaf = sumtree.account_leaf_hash(bytes.fromhex(doc["nonce"]), doc["account"], leaf_sums)
        sumtree.verify_sum_proof(leaf, leaf_sums, doc["index"], doc["count"], path,
                                 bytes.fromhex(acc["root"]), totals)
    except (sumtree.SumProofError, ValueError) as exc:
        raise report.fail("sum proof", str(exc)) from None
    report.ok("sum proof", f"leaf {doc['index']} of {doc['count']} -> snapshot account root and totals")
    report.figures.update({"account": doc["account"], "totals": doc["totals"],
                           "fund": snap["fund"], "log_size": snap["log"]["size"]})


def verify_event(report: Report, proof: str, snapshot: str, keys: tuple[str, ...],
                 require: int) -> None:
    verifiers = load_verifiers(keys)
    snap = load_json(snapshot, "snapshot", "snapshot")
    doc = load_json(proof, "event proof", "event-proof")
    error = first_error("event", doc["event"])
    if error is not None:
        raise InputError(f"event proof {proof}: event does not match event.schema.json: {error}")
    report.ok("schemas")
    check_signatures(report, snap, verifiers, require)
    size, root = snap["log"]["size"], snap["log"]["root"]
    if doc["log_size"] != size:
        raise report.fail("log_size", f"proof is for log size {doc['log_size']}, snapshot has {size}")
    if doc["log_root"] != root:
        raise report.fail("log_root", f"proof names root {doc['log_root']}, snapshot has {root}")
    event = doc["event"]
    if event["index"] != doc["index"]:
        raise report.fail("index", f"event index {clip(event['index'])} differs from proof index {doc['index']}")
    if event["fund"] != snap["fund"]:
        raise report.fail("event.fund", f"{clip(event['fund'])} is not the snapshot's fund {snap['fund']!r}")
    leaf = merkle.leaf_hash(canonical_bytes(event))
    try:
        merkle.verify_inclusion(leaf, doc["index"], size, [bytes.fromhex(h) for h in doc["proof"]],
                                bytes.fromhex(root))
    except (merkle.ProofError, ValueError) as exc:
        raise report.fail("inclusion", str(exc)) from None
    report.ok("inclusion", f"event {doc['index']} is in the log of size {size}")
    report.figures.update({"index": doc["index"], "type": event["type"], "ref": event["ref"],
                           "log_size": size, "log_root": root})


def verify_consistency(report: Report, old: str, new: str, keys: tuple[str, ...], require: int,
                       proof: str | None) -> None:
    verifiers = load_verifiers(keys)
    a = load_json(old, "old snapshot", "snapshot")
    b = load_json(new, "new snapshot", "snapshot")
    doc = load_json(proof, "consistency proof", "consistency-proof") if proof else None
    report.ok("schemas")
    check_signatures(report, a, verifiers, require, "old snapshot")
    check_signatures(report, b, verifiers, require, "new snapshot")
    if a["fund"] != b["fund"]:
        raise report.fail("fund", f"old snapshot is of {a['fund']!r}, new of {b['fund']!r}")
    old_size, old_root = a["log"]["size"], a["log"]["root"]
    new_size, new_root = b["log"]["size"], b["log"]["root"]
    if doc is not None:
        if doc["old"]["size"] != old_size or doc["new"]["size"] != new_size:
            raise report.fail("proof sizes", f"proof is from {doc['old']['size']} to "
                                             f"{doc['new']['size']}, snapshots are {old_size} and {new_size}")
        hashes = doc["proof"]
        source = "--proof"
    else:
        prev = b.get("previous")
        if prev is None:
            raise report.fail("previous", "new snapshot has no previous link (pass --proof)")
        if prev["log_size"] != old_size or prev["log_root"] != old_root:
            raise report.fail("previous", f"new snapshot links to log size {prev['log_size']} root "
                                          f"{prev['log_root']}, not the old snapshot's {old_size} "
                                          f"root {old_root} (pass --proof)")
        hashes = prev["consistency"]
        source = "new snapshot's previous link"
    try:
        merkle.verify_consistency(old_size, new_size, [bytes.fromhex(h) for h in hashes],
                                  bytes.fromhex(old_root), bytes.fromhex(new_root))
    except (merkle.ProofError, ValueError) as exc:
        raise report.fail("consistency", f"{exc} (history rewritten or wrong proof)") from None
    if doc is not None:  # the document's own claims must be the signed snapshots' roots
        for side, root in (("old", old_root), ("new", new_root)):
            if doc[side]["root"] != root:
                raise report.fail(f"proof {side}.root", f"proof names root {doc[side]['root']}, "
                                                        f"the {side} snapshot has {root}")
    report.ok("consistency", f"log of size {old_size} is a prefix of size {new_size} ({source})")
    report.figures.update({"fund": a["fund"], "old": {"size": old_size, "root": old_root},
                           "new": {"size": new_size, "root": new_root}})


def verify_checkpoint(report: Report, checkpoint: str, keys: tuple[str, ...], require: int,
                      snapshot: str | None, cosigners: tuple[str, ...] = (),
                      cosigned: int | None = None) -> None:
    """The checkpoint's signature by the pinned keys, its body, the snapshot's log when given,
    and the pinned witnesses' cosignatures (tlog-cosignature) when `cosigners` are given."""
    verifiers = load_verifiers(keys)
    try:
        witnesses = parse_cosigner_keys(cosigners, "--cosigner")
    except KeyFormatError as exc:
        raise InputError(str(exc)) from None
    raw = read_bytes(checkpoint, "checkpoint", MAX_CHECKPOINT)
    snap = load_json(snapshot, "snapshot", "snapshot") if snapshot else None
    try:
        note = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"checkpoint {checkpoint}: not UTF-8") from None
    body, _, origin, size, root = check_checkpoint(report, note, verifiers, require)
    if snap is not None:
        check_signatures(report, snap, verifiers, require)
        if origin != snapshot_origin(snap):
            raise report.fail("origin", f"{clip(origin)} is not {clip(snapshot_origin(snap))}, "
                                        "the snapshot's")
        if size != snap["log"]["size"]:
            raise report.fail("size", f"checkpoint size {size}, snapshot log size {snap['log']['size']}")
        if root.hex() != snap["log"]["root"]:
            raise report.fail("root", f"checkpoint root {root.hex()}, snapshot log root {snap['log']['root']}")
        report.ok("snapshot", "checkpoint size and root equal the snapshot's log")
    report.figures.update({"origin": origin, "size": size, "root": root.hex(),
                           "root_base64": base64.b64encode(root).decode()})
    if witnesses:
        check_cosignatures(report, note, body, witnesses,
                           len(witnesses) if cosigned is None else cosigned)


def check_cosignatures(report: Report, note: str, body: str, witnesses: list[CosignerKey],
                       required: int) -> None:
    """At least `required` of the pinned `witnesses` cosigned `body` in `note` (each line by
    a pinned witness must verify, as a known key's signature must)."""
    found: list[str] = []
    for line in note[note.rfind("\n\n") + 2:].splitlines():
        name = line[2:].split(" ", 1)[0]
        if not any(w.name == name for w in witnesses):
            continue
        key = verify_cosignature(witnesses, body, line)
        if key is None:
            raise report.fail("cosignatures", f"the line by witness {clip(name)} does not verify")
        if key.name not in found:
            found.append(key.name)
    if len(found) < required:
        raise report.fail("cosignatures", f"{len(found)} pinned witness(es) cosigned, "
                                          f"{required} required")
    report.ok("cosignatures", f"{len(found)} valid ({', '.join(found) or 'none required'})")
    report.figures["cosigned_by"] = found


def do_cosign(report: Report, snapshot: str, keys: tuple[str, ...], witness_key: str,
              events: str, require: int, seed: str | None, skip_accounts: bool,
              out: str | None, timeout: float = DEFAULT_TIMEOUT,
              deadline: float = DEFAULT_DEADLINE) -> None:
    """Verify against the pinned operator keys only: a `verifier-key` file beside the snapshot
    comes from the very directory being audited, so it is never trusted. A tiled log at a URL
    is read with `timeout` and `deadline`."""
    verifiers = load_verifiers(keys)
    signer = load_witness(witness_key)
    snap = load_json(snapshot, "snapshot", "snapshot")
    seed_bytes = find_seed(seed, snapshot)
    report.ok("snapshot schema")
    check_signatures(report, snap, verifiers, require)
    check_snapshot_internal(report, snap)
    # a tiled log: its tiles must hold the snapshot's log
    source = open_source(events, HttpLimits(timeout, deadline))
    run_replay(report, snap, events if source is None else verified_lines(
        source, snap["log"]["size"], bytes.fromhex(snap["log"]["root"])), seed_bytes,
        skip_accounts)
    sigs = snap["signatures"]
    if any(s.get("key") == signer.key_name for s in sigs):
        # Only a signature that verifies under the witness's own key counts as "already
        # signed": a planted entry under its name must not stop the witness from signing.
        try:
            verify_document(snap, [signer.verifier()])
        except SignatureError as exc:
            raise report.fail("cosign", f"the snapshot holds an entry under the witness's key "
                                        f"name {signer.key_name} that does not verify ({exc})") from None
        report.note("cosign", f"already signed by {signer.key_name}; nothing written")
        return
    sigs.append(sign_document(snap, signer))
    target = Path(out) if out else Path(snapshot)
    text = json.dumps(snap, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    write_atomic(target, text.encode("utf-8"))
    report.ok("cosign", f"signed by {signer.key_name}, written to {target}")
    report.figures.update({"witness": signer.verifier_key(), "written": str(target)})
