"""What `backstop-audit` checks, one function per command: load the inputs, verify, and record
each check in a `Report` (`execute` turns a check function into a verdict). The click commands
in `auditor.cli` only parse arguments and print the report. Never imports `ledger`.

Over 400 lines on purpose: one function per command plus the loaders they all share;
split by command, each part would be a few dozen lines importing the same loaders.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from auditor.formats.clip import clip
from auditor.formats.schemas import first_error
from auditor.formats.wire import (
    MAX_DEPTH,
    WireError,
    canonical_bytes,
    check_tree,
    format_amount,
    format_decimal,
    load_document,
    parse_amount,
    parse_decimal,
    sha256_hex,
    snapshot_decimals,
)
from auditor.replay import Discrepancy, Replayer, ReplayResult, replay
from auditor.report import Failed, InputError, Report, one_line
from auditor.state import write_atomic
from auditor.verify import merkle, sumtree
from auditor.verify.keys import (
    PASSPHRASE_ENV,
    KeyFormatError,
    NoteError,
    SignatureError,
    Signer,
    Verifier,
    open_note,
    parse_checkpoint,
    sign_document,
    verify_document,
)
from auditor.verify.reads import (
    DEFAULT_DEADLINE,
    DEFAULT_TIMEOUT,
    MAX_CHECKPOINT,
    MAX_DOCUMENT,
    MAX_KEY_FILE,
    MAX_SEED,
    MAX_SNAPSHOT,
    HttpLimits,
    ReadError,
    open_regular,
    read_regular,
)
from auditor.verify.shards import ShardError, proof_from_shard
from auditor.verify.tiles import TileError, open_source, verified_lines

KINDS = ("fees", "payouts", "clawbacks")


def read_bytes(path: str | Path, what: str, cap: int = MAX_DOCUMENT) -> bytes:
    """The regular file at `path`, at most `cap` bytes (auditor.verify.reads); InputError
    naming `what` and the path otherwise (missing, a FIFO or device, too large)."""
    try:
        return read_regular(path, cap)
    except FileNotFoundError as exc:
        raise InputError(f"{what} {path}: cannot read ({exc.strerror or exc})") from None
    except ReadError as exc:
        raise InputError(f"{what} {path}: {exc}") from None


def load_json(path: str | Path, what: str, schema: str | None) -> dict[str, Any]:
    """Parse a JSON document and validate it against `schema` (InputError otherwise); a
    snapshot is read with its own cap, any other document with MAX_DOCUMENT."""
    cap = MAX_SNAPSHOT if schema == "snapshot" else MAX_DOCUMENT
    return parse_json(read_bytes(path, what, cap), path, what, schema)


def parse_json(raw: bytes, path: str | Path, what: str, schema: str | None) -> dict[str, Any]:
    """Parse the bytes of a JSON document read from `path` (see load_json)."""
    try:
        doc = load_document(raw)
    except WireError as exc:  # strict: depth, integers, UTF-8, duplicates (auditor.formats.wire)
        raise InputError(f"{what} {path}: {exc}") from None
    if schema is not None:
        error = first_error(schema, doc)
        if error is not None:
            raise InputError(f"{what} {path}: does not match {schema}.schema.json: {error}")
    if not isinstance(doc, dict):
        raise InputError(f"{what} {path}: expected a JSON object")
    return doc


def load_verifiers(values: Iterable[str], option: str = "--key",
                   required: bool = True) -> list[Verifier]:
    """Each value is a verifier key, or a file holding one (or several, one per line)."""
    out: list[Verifier] = []
    for value in values:
        try:
            out.append(Verifier.from_vkey(value))
            continue
        except KeyFormatError as exc:
            direct_error = exc
        shown = clip(value)
        try:
            text = read_regular(value, MAX_KEY_FILE).decode("utf-8")
        except (OSError, ValueError) as exc:  # no such file, a FIFO, too large, not UTF-8
            why = ((exc.strerror or "cannot read") if isinstance(exc, OSError) else
                   "not UTF-8" if isinstance(exc, UnicodeError) else
                   str(exc).removeprefix("cannot read (").removesuffix(")"))
            raise InputError(f"{option} {shown}: not a verifier key ({direct_error}) "
                             f"nor a readable key file ({why})") from None
        found = 0
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(Verifier.from_vkey(line))
            except KeyFormatError as exc:
                raise InputError(f"{option} {shown}: line {number}: {exc}") from None
            found += 1
        if not found:
            raise InputError(f"{option} {shown}: file holds no verifier key")
    if not out and required:
        raise InputError(f"no verifier key given ({option})")
    return out


def load_seed(path: str | Path) -> bytes:
    return parse_seed(read_bytes(path, "seed file", MAX_SEED), f"seed file {path}")


def parse_seed(raw: bytes, where: str) -> bytes:
    """The 32-byte account-tree seed written as hex in `raw` (read from `where`)."""
    text = raw.decode("ascii", "replace").strip()
    try:
        seed = bytes.fromhex(text)
    except ValueError:
        raise InputError(f"{where}: not hex") from None
    if len(seed) != 32:
        raise InputError(f"{where}: {len(seed)} bytes, expected 32")
    return seed


def check_signatures(report: Report, doc: dict[str, Any], verifiers: list[Verifier],
                     require: int, what: str = "snapshot") -> list[str]:
    try:
        names = verify_document(doc, verifiers, require)
    except SignatureError as exc:
        raise report.fail(f"{what} signatures", str(exc)) from None
    report.ok(f"{what} signatures", f"{len(names)} valid ({', '.join(names)}), {require} required")
    return names


def check_snapshot_internal(report: Report, snap: dict[str, Any]) -> None:
    """Totals are well-formed non-negative amounts; the previous link's proof verifies."""
    _risk_note(report, snap)
    decimals = snapshot_decimals(snap)
    for asset, text in snap["reserves"].items():
        try:
            units = parse_amount(text, decimals[asset])
        except WireError as exc:
            raise report.fail(f"reserves.{asset}", str(exc)) from None
        if units < 0:
            raise report.fail(f"reserves.{asset}", f"negative reserve {text}")
    acc = snap["accounts"]
    assets = acc["assets"]
    if list(assets) != sorted(set(assets)):
        raise report.fail("accounts.assets", f"{assets} is not sorted and distinct")
    for asset in assets:
        if asset not in decimals:
            raise report.fail(f"accounts.assets.{asset}", "has no reserve entry (decimals unknown)")
        totals = acc["totals"].get(asset)
        if not isinstance(totals, dict):
            raise report.fail(f"accounts.totals.{asset}", "missing")
        for kind in KINDS:
            try:
                units = parse_amount(totals.get(kind), decimals[asset])
            except WireError as exc:
                raise report.fail(f"accounts.totals.{asset}.{kind}", str(exc)) from None
            if units < 0:
                raise report.fail(f"accounts.totals.{asset}.{kind}", f"negative total {totals[kind]}")
            if acc["count"] == 0 and units:
                raise report.fail(f"accounts.totals.{asset}.{kind}", "non-zero with no accounts")
    if acc["count"] == 0 and acc["root"] != merkle.EMPTY_ROOT.hex():
        raise report.fail("accounts.root", "an empty account tree must have root SHA-256('')")
    if snap["log"]["size"] == 0 and snap["log"]["root"] != merkle.EMPTY_ROOT.hex():
        raise report.fail("log.root", "an empty log must have root SHA-256('')")
    report.ok("snapshot totals", "amounts well-formed and non-negative")
    prev = snap.get("previous")
    if prev is None:
        report.note("previous", "none (first snapshot)")
        return
    try:
        merkle.verify_consistency(
            prev["log_size"], snap["log"]["size"], [bytes.fromhex(h) for h in prev["consistency"]],
            bytes.fromhex(prev["log_root"]), bytes.fromhex(snap["log"]["root"]))
    except (merkle.ProofError, ValueError) as exc:
        raise report.fail("previous.consistency", str(exc)) from None
    report.ok("previous.consistency",
              f"log of size {prev['log_size']} is a prefix of this one ({snap['log']['size']})")


def snapshot_figures(report: Report, snap: dict[str, Any]) -> None:
    report.figures.update({
        "fund": snap["fund"], "time": snap["time"], "log_size": snap["log"]["size"],
        "log_root": snap["log"]["root"], "reserves": snap["reserves"],
        "accounts": snap["accounts"]["count"], "account_totals": snap["accounts"]["totals"],
        "policy_version": snap["policy"]["version"],
    })


def screened(lines: Iterable[bytes]) -> Iterator[bytes]:
    """The export's lines, refusing (`Discrepancy` at its index) one nested deeper than
    MAX_DEPTH: no event is, and the replay's messages quote values, which a value nested a
    thousand deep would turn into a RecursionError. Counting brackets (C speed) spares every
    ordinary line the parse."""
    for index, line in enumerate(lines):
        if line.count(b"[") + line.count(b"{") > MAX_DEPTH:
            try:
                check_tree(orjson.loads(line))
            except WireError as exc:
                raise Discrepancy(index, str(exc)) from None
            except ValueError:  # not JSON (or beyond orjson's own depth): the replay says so
                pass
        yield line


def run_replay(report: Report, snap: dict[str, Any], events: str | Path | Iterable[bytes],
               seed: bytes | None, skip_accounts: bool,
               resume: Replayer | None = None) -> ReplayResult:
    """Stream the export (a file, or lines read from a tiled log), re-derive everything,
    compare with the snapshot.

    The account root can only be rebuilt with the account seed; without one the verdict fails
    (a check that did not run is no pass) unless the user asked to skip it (`skip_accounts`).
    With `resume` (a replayer restored from a saved state), `events` are the new ones only.
    """
    size = snap["log"]["size"]

    def show(n: int) -> None:
        sys.stderr.write(f"\rreplayed {n:,} / {size:,} events")
        if n >= size:
            sys.stderr.write("\n")
        sys.stderr.flush()

    progress: Callable[[int], None] | None = show if sys.stderr.isatty() else None
    if isinstance(events, (str, Path)):
        try:
            handle: Any = open_regular(events)  # closed by the `with` below; opening apart names the file in the error
        except OSError as exc:
            raise InputError(f"events {events}: cannot read ({exc.strerror or exc})") from None
        except ReadError as exc:
            raise InputError(f"events {events}: {exc}") from None
    else:
        handle = contextlib.nullcontext(events)
    with handle as lines:
        try:
            result = replay(screened(lines), progress=progress, at_size=size, resume=resume)
        except Discrepancy as exc:
            raise report.fail("replay", str(exc)) from None
        except TileError as exc:  # read from a tiled log: a tile or bundle that does not hash
            raise report.fail("tiles", str(exc)) from None
        except ValueError as exc:  # defensive: the replay reports through Discrepancy
            raise report.fail("replay", str(exc)) from None
    report.ok("replay", f"{result.count} events, {result.liquidations} liquidations re-derived"
              + (f"; {result.non_canonical} line(s) not in RFC 8785 form, hashed as their "
                 f"canonical bytes (first: line {result.non_canonical_lines[0]})"
                 if result.non_canonical else ""))
    report.figures["non_canonical_lines"] = result.non_canonical
    problems = result.snapshot_checks(snap, seed)
    if problems:
        for problem in problems[1:]:
            report.checks.append({"check": "snapshot vs replay", "ok": False, "detail": problem})
        raise report.fail("snapshot vs replay", problems[0])
    report.ok("snapshot vs replay", "log size/root, reserves, account totals, policy, metrics")
    _risk_note(report, snap)
    holdings_note(report, snap)
    if seed is not None:
        report.ok("accounts.root", "account tree rebuilt from the replay")
    elif result.account_count == 0:  # no accounts, no nonces: the empty root needs no seed
        if snap["accounts"]["root"] != sumtree.EMPTY_HASH.hex():
            raise report.fail("accounts.root", "an empty account tree must have root SHA-256('')")
        report.ok("accounts.root", "empty account tree")
    elif skip_accounts:
        report.skip("accounts.root", "not verified: no account seed, skipped by --skip-accounts")
    else:
        raise report.fail("accounts.root", "not verified: no account seed (pass --seed FILE, or "
                                           "--skip-accounts to accept a verdict without it)")
    dec = result.decimals
    report.figures.update({
        "events": result.count,
        "liquidations": result.liquidations,
        "balances": {a: format_amount(u, dec[a]) for a, u in sorted(result.balances.items())},
        "accounts": result.account_count,
        "totals": {a: {k: format_amount(v, dec[a]) for k, v in zip(KINDS, t, strict=False)}
                   for a, t in sorted(result.totals.items())},
    })
    return result


def find_seed(seed_path: str | None, snapshot_path: str) -> bytes | None:
    if seed_path is not None:
        return load_seed(seed_path)
    beside = Path(snapshot_path).parent / "account-seed"
    return load_seed(beside) if beside.is_file() else None


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


def holdings_note(report: Report, snap: dict[str, Any]) -> None:
    """A backstop-snapshot/2's holdings are signed with it, but their proofs need balances
    (a chain node or a balances file): say that this verdict does not cover them."""
    holdings = snap.get("holdings")
    if holdings is not None:
        report.note("holdings", f"{len(holdings)} listed; their proofs of reserves are not checked "
                                "by this command (backstop-audit reserves checks them)")


def verify_replay(report: Report, events: str, snapshot: str | None, keys: tuple[str, ...],
                  require: int, seed: str | None, skip_accounts: bool = False,
                  save_state: str | None = None, resume_state: str | None = None,
                  timeout: float = DEFAULT_TIMEOUT, deadline: float = DEFAULT_DEADLINE) -> None:
    """`backstop-audit replay`: an export against its snapshot, or a tiled log (a folder,
    or a URL read with `timeout` and `deadline`, auditor.verify.reads)."""
    verifiers = load_verifiers(keys)
    source = open_source(events, HttpLimits(timeout, deadline))
    if source is not None:
        from auditor.tiled_audit import verify_tiled_replay  # it builds on this module

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
                      snapshot: str | None) -> None:
    verifiers = load_verifiers(keys)
    raw = read_bytes(checkpoint, "checkpoint", MAX_CHECKPOINT)
    snap = load_json(snapshot, "snapshot", "snapshot") if snapshot else None
    try:
        note = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"checkpoint {checkpoint}: not UTF-8") from None
    try:
        body, names = open_note(note, verifiers)
    except NoteError as exc:
        raise report.fail("checkpoint signature", str(exc)) from None
    if len(set(names)) < require:
        raise report.fail("checkpoint signature", f"{len(set(names))} known key(s) verified, "
                                                  f"{require} required")
    report.ok("checkpoint signature", f"{len(names)} valid ({', '.join(names)})")
    try:
        origin, size, root = parse_checkpoint(body)
    except NoteError as exc:
        raise report.fail("checkpoint body", str(exc)) from None
    report.ok("checkpoint body", f"{origin} size {size}")
    if snap is not None:
        check_signatures(report, snap, verifiers, require)
        if origin != f"backstop/{snap['fund']}":
            raise report.fail("origin", f"{clip(origin)} is not 'backstop/{snap['fund']}'")
        if size != snap["log"]["size"]:
            raise report.fail("size", f"checkpoint size {size}, snapshot log size {snap['log']['size']}")
        if root.hex() != snap["log"]["root"]:
            raise report.fail("root", f"checkpoint root {root.hex()}, snapshot log root {snap['log']['root']}")
        report.ok("snapshot", "checkpoint size and root equal the snapshot's log")
    report.figures.update({"origin": origin, "size": size, "root": root.hex(),
                           "root_base64": base64.b64encode(root).decode()})


def load_witness(path: str) -> Signer:
    """The witness's signing key (backstop keygen; passphrase from the environment)."""
    passphrase = os.environ.get(PASSPHRASE_ENV)
    try:
        return Signer.from_pem(read_bytes(path, "witness key", MAX_KEY_FILE),
                               passphrase=passphrase.encode() if passphrase else None)
    except (KeyFormatError, UnicodeDecodeError) as exc:
        raise InputError(f"witness key {path}: {exc}") from None


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


def _risk_note(report: Report, snap: dict[str, Any]) -> None:
    """metrics.risk (optional): its schema and signature were checked with the snapshot's;
    check the model hash, and say plainly that the figures cannot be recomputed."""
    risk = snap["metrics"].get("risk")
    if risk is None or any(c["check"] == "metrics.risk" for c in report.checks):
        return
    model = risk["model"]
    if sha256_hex(canonical_bytes(model["parameters"])) != model["hash"]:
        raise report.fail("metrics.risk", "model.hash is not the SHA-256 of the RFC 8785 bytes "
                                          "of model.parameters")
    _check_risk_figures(report, snap, risk)
    report.note("metrics.risk", "schema, signature and model hash checked; the figures "
                f"(ES 99.9% {risk['es_999_deficits']}, recommended size "
                f"{risk['recommended_size']} {risk['asset']}, coverage {risk['coverage']}) "
                "cannot be recomputed without the exchange's positions snapshot")


def _check_risk_figures(report: Report, snap: dict[str, Any], risk: dict[str, Any]) -> None:
    """What can be checked without the positions: the asset is the snapshot's, the
    probability is one, and coverage is balance / recommended size (6 places, half-even, as
    `backstop risk` writes it; null when the recommended size is zero)."""
    if risk["asset"] not in snap["reserves"]:
        raise report.fail("metrics.risk.asset", f"{clip(risk['asset'])} is not an asset of the "
                                                "snapshot's reserves")
    try:
        probability = parse_decimal(risk["probability_of_socialization"])
        balance, size = parse_decimal(risk["balance"]), parse_decimal(risk["recommended_size"])
    except WireError as exc:
        raise report.fail("metrics.risk", str(exc)) from None
    if not 0 <= probability <= 1:
        raise report.fail("metrics.risk.probability_of_socialization",
                          f"{risk['probability_of_socialization']} is not a probability (0 to 1)")
    expected = format_decimal(balance / size, 6) if size else None
    if risk["coverage"] != expected:
        raise report.fail("metrics.risk.coverage", f"{risk['coverage']} is not balance / "
                          f"recommended size ({risk['balance']} / {risk['recommended_size']} = "
                          f"{expected})")
