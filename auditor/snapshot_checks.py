"""The checks of a signed snapshot that several commands share: its signatures, its own
arithmetic (totals, the previous link, metrics.risk), and the replay of its log against it
(`run_replay`, for an export file or the lines of a tiled log). auditor.checks (one function
per command) and auditor.tiled_audit build on these; this module imports neither.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from auditor.formats.clip import clip
from auditor.formats.wire import (
    MAX_DEPTH,
    WireError,
    canonical_bytes,
    check_tree,
    format_amount,
    format_decimal,
    parse_amount,
    parse_decimal,
    sha256_hex,
    snapshot_decimals,
)
from auditor.replay import Discrepancy, Replayer, ReplayResult
from auditor.replays import replay
from auditor.report import InputError, Report
from auditor.v2_snapshot import FORMAT_POOLS, pool_sums
from auditor.verify import merkle, sumtree
from auditor.verify.keys import (
    NoteError,
    SignatureError,
    Verifier,
    open_note,
    parse_checkpoint,
    verify_document,
)
from auditor.verify.reads import ReadError, open_regular
from auditor.verify.tiles import TileError

__all__ = [
    "KINDS",
    "check_signatures",
    "check_snapshot_internal",
    "holdings_note",
    "run_replay",
    "screened",
    "snapshot_figures",
]

KINDS = ("fees", "payouts", "clawbacks")

def check_checkpoint(report: Report, note: str, verifiers: list[Verifier],
                     require: int) -> tuple[str, list[str], str, int, bytes]:
    """A signed checkpoint note: `require` pinned keys sign it, and its body parses. Returns
    (body, the names of the keys that signed, origin, size, root), each check reported."""
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
    return body, names, origin, size, root


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
    if snap["format"] == FORMAT_POOLS:  # its own arithmetic: the pools add up to reserves
        problem = pool_sums(snap)
        if problem is not None:
            where, _, detail = problem.partition(": ")
            raise report.fail(where, detail)
    report.ok("snapshot totals", "amounts well-formed and non-negative"
              + ("; the pools sum to the reserves" if snap["format"] == FORMAT_POOLS else ""))
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
    report.ok("snapshot vs replay", "log size/root, reserves, account totals, policy, metrics"
              + ("; pools, structure, claims, valuation, ADL states" if snap["format"] == FORMAT_POOLS
                 else ""))
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
    if result.format == 2:  # a v2 log: each pool's balances too (their sum is `balances`)
        report.figures["pools"] = {p: {a: format_amount(u, dec[a]) for a, u in sorted(b.items())}
                                   for p, b in sorted(result.pools.items())}
    return result


def holdings_note(report: Report, snap: dict[str, Any]) -> None:
    """A backstop-snapshot/2's holdings are signed with it, but their proofs need balances
    (a chain node or a balances file): say that this verdict does not cover them."""
    holdings = snap.get("holdings")
    if holdings is not None:
        report.note("holdings", f"{len(holdings)} listed; their proofs of reserves are not checked "
                                "by this command (backstop-audit reserves checks them)")


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
