"""Signed reserve snapshots, checkpoints and proofs: what the operator publishes.

A snapshot commits to the log (RFC 6962 root), the reserves, the account tree (Merkle sum
tree over per-account totals under a fresh per-snapshot seed), market metrics and the active
policy, and links to the previous snapshot by a consistency proof. Formats: schemas/README.md.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from auditor.formats.wire import format_amount, format_decimal, parse_decimal, snapshot_decimals
from auditor.verify.keys import Signer, checkpoint_body, sign_document, sign_note
from auditor.verify.origin import check_origin, derived_origin, legacy_origin, snapshot_origin
from auditor.verify.sumtree import account_nonce
from ledger.domain.fund import Fund, utc_now
from ledger.domain.policy import policy_hash
from ledger.domain.poolstate import is_v2
from ledger.service.application import Ledger
from ledger.service.exporting import write_export
from ledger.service.leftovers import STAGED, remove_stale, staging_prefix
from ledger.service.outputs import (
    OutputExists,
    move_back,
    move_into_place,
    refuse_taken,
    remove_path,
    sync_tree,
)
from ledger.service.reserves import ReservesError, close_round, round_to_publish
from ledger.service.snapshot3 import SNAPSHOT_FORMAT_POOLS, pool_members, pool_metrics
from ledger.store.proofs import ProvingSumTree
from ledger.store.tables import ACCOUNT_FIELDS, accounts, published

SNAPSHOT_FORMAT = "backstop-snapshot/1"
SNAPSHOT_FORMAT_HOLDINGS = "backstop-snapshot/2"  # with a reserves round's holdings


class PublishError(ValueError):
    """The snapshot cannot be published as asked."""


@dataclass
class Publication:
    """A signed snapshot and what is needed to prove against it."""

    document: dict[str, Any]
    seed: bytes
    tree: ProvingSumTree
    entries: dict[str, tuple[int, ...]]
    policy: dict[str, Any] | None = None
    # (from, to): a tiled log's checkpoint was behind the last recorded snapshot, at log size
    # `from`; publishing first re-wrote the tiles and checkpoint of that snapshot, at `to`.
    repaired: tuple[int, int] | None = None


def _sums_by_asset(sums: tuple[int, ...], assets: list[str], decimals: dict[str, int]) -> dict[str, Any]:
    return {asset: {field: format_amount(sums[3 * i + j], decimals[asset])
                    for j, field in enumerate(ACCOUNT_FIELDS)}
            for i, asset in enumerate(assets)}


def account_entries(connection: Connection, fund: str, assets: list[str]) -> dict[str, tuple[int, ...]]:
    """Per-account sum vectors (fees, payouts, clawbacks per asset, assets in order)."""
    position = {asset: i for i, asset in enumerate(assets)}
    entries: dict[str, list[int]] = {}
    for row in connection.execute(select(accounts).where(accounts.c.fund == fund)):
        vector = entries.setdefault(row.account, [0] * (3 * len(assets)))
        base = 3 * position[row.asset]
        vector[base:base + 3] = [int(row.fees), int(row.payouts), int(row.clawbacks)]
    return {account: tuple(v) for account, v in entries.items()}


def _metrics(fund: Fund) -> dict[str, Any]:
    markets = {}
    for market, (mark, open_interest) in sorted(fund.observed.items()):
        asset = fund.markets[market]
        notional = parse_decimal(mark) * parse_decimal(open_interest)
        reserve = Fraction(fund.balances[asset], 10 ** fund.assets[asset])
        markets[market] = {
            "mark_price": mark, "open_interest": open_interest,
            "open_interest_notional": format_decimal(notional, fund.assets[asset]),
            "fund_to_oi": None if notional == 0 else format_decimal(reserve / notional, 12)}
    return {"markets": markets}


def latest(connection: Connection, fund: str) -> dict[str, Any] | None:
    """The latest published snapshot row of `fund`, or None."""
    row = connection.execute(select(published).where(published.c.fund == fund)
                             .order_by(published.c.log_size.desc()).limit(1)).first()
    return None if row is None else dict(row._mapping)


def snapshot_row(connection: Connection, fund: str, log_size: int | None) -> dict[str, Any]:
    """The published snapshot of `fund` at `log_size` (None: the latest)."""
    if log_size is None:
        row = latest(connection, fund)
    else:
        found = connection.execute(select(published).where(
            published.c.fund == fund, published.c.log_size == log_size)).first()
        row = None if found is None else dict(found._mapping)
    if row is None:
        raise PublishError("no snapshot published" + ("" if log_size is None
                                                      else f" at log size {log_size}"))
    return row


def log_origin(previous: dict[str, Any] | None, fund_name: str, signer: Signer,
               requested: str | None) -> str:
    """The fund's log origin (schemas/README.md, "Origin"): the one its first snapshot recorded
    (`previous`: the latest row), else `requested`, else derived from the key."""
    if requested is not None and (why := check_origin(requested)) is not None:
        raise PublishError(f"--origin {requested!r}: {why}")
    recorded = None if previous is None else snapshot_origin(json.loads(previous["document"]))
    if recorded is not None and requested not in (None, recorded):
        raise PublishError(f"--origin {requested}: fund {fund_name}'s log has origin {recorded}, "
                           "fixed by its first snapshot (witnesses know it by that name)")
    return recorded or requested or derived_origin(fund_name, signer.public_key)


def build_snapshot(ledger: Ledger, fund_name: str, signer: Signer, time: str | None,
                   risk: dict[str, Any] | None = None, origin: str | None = None) -> Publication:
    """Build and sign a snapshot of the fund's current state (record_snapshot records it).

    With an open reserves round (ledger.service.reserves) the snapshot is that round's: at its
    log size, root and time (`time` None, or equal), format /2 with its holdings; a round the
    log has outgrown is refused. Without one: format /1 at `time` (None: now). A format 2
    fund publishes format /3 instead of both (ledger.service.snapshot3), with the round's
    holdings when there is one. `risk`, when given, is the optional `metrics.risk`
    (ledger.risk.headline); `origin`, `log_origin`'s.
    """
    with ledger.transaction() as connection:  # read only: one consistent view of the fund
        fund = ledger.get_fund(fund_name)
        # A format 2 fund's valuation currency is in its fund_opened/2 only (event 0).
        opened = next(iter(ledger.log_events(fund_name, 0, 1)), None) if is_v2(fund) else None
        tree_log = ledger.log_tree(connection, fund_name)
        size = fund.log_size
        assets = sorted(fund.assets)
        entries = account_entries(connection, fund_name, assets)
        seed = secrets.token_bytes(32)
        tree = ProvingSumTree.build(((account, account_nonce(seed, account), sums)
                              for account, sums in entries.items()), width=3 * len(assets))
        previous = latest(connection, fund_name)
        name = log_origin(previous, fund_name, signer, origin)
        link = None
        if previous is not None:
            old_size = previous["log_size"]
            if old_size == size:
                raise PublishError(f"a snapshot at log size {size} is already published; "
                                   "import more facts first")
            if old_size > size:
                raise PublishError(f"the log shrank from {old_size} to {size} events")
            link = {"log_size": old_size, "log_root": tree_log.root(old_size).hex(),
                    "consistency": [h.hex() for h in tree_log.consistency_proof(old_size, size)]
                    if 0 < old_size < size else []}
        root = tree_log.root(size).hex()
        try:
            attested = round_to_publish(connection, fund_name, size, root, time)
        except ReservesError as error:
            raise PublishError(str(error)) from None
        time = attested.time if attested is not None else (time or utc_now())
        document: dict[str, Any] = {
            "format": SNAPSHOT_FORMAT_POOLS if opened is not None else
            SNAPSHOT_FORMAT if attested is None else SNAPSHOT_FORMAT_HOLDINGS,
            "fund": fund_name, "time": time,
            "log": {"size": size, "root": root},
            "reserves": {a: format_amount(fund.balances[a], fund.assets[a]) for a in assets},
            "accounts": {"assets": assets, "root": tree.root.hex(), "count": tree.count,
                         "totals": _sums_by_asset(tree.sums, assets, fund.assets)},
            "metrics": _metrics(fund) if risk is None else {**_metrics(fund), "risk": risk},
            "policy": {"version": fund.policy_version, "hash": policy_hash(fund.policy or {})},
            "previous": link,
        }
        if opened is not None:
            document |= pool_members(fund, opened["data"]["valuation"])
            document["metrics"] = pool_metrics(fund, risk)
        if name != legacy_origin(fund_name):  # an old log's snapshots stay as they were
            document["log"]["origin"] = name
        if attested is not None:
            document["holdings"] = attested.holdings
    document["signatures"] = [sign_document(document, signer)]
    return Publication(document, seed, tree, entries, fund.policy)


def record_snapshot(connection: Connection, publication: Publication) -> None:
    """Record a built snapshot, unless another was recorded since it was built (its link to
    the previous snapshot would then be stale)."""
    document = publication.document
    current = latest(connection, document["fund"])
    linked = None if document["previous"] is None else document["previous"]["log_size"]
    if (None if current is None else current["log_size"]) != linked:
        raise PublishError("another snapshot was published while this one was being written; "
                           "publish again")
    if "holdings" in document:  # the round it published is closed in the same transaction
        try:
            close_round(connection, document["fund"], document["holdings"])
        except ReservesError as error:
            raise PublishError(str(error)) from None
    connection.execute(published.insert().values(
        fund=document["fund"], log_size=document["log"]["size"],
        document=json.dumps(document), seed=publication.seed.hex(),
        accounts=json.dumps({a: list(s) for a, s in publication.entries.items()})))


def account_proof(document: dict[str, Any], seed: bytes, tree: ProvingSumTree,
                  entries: dict[str, tuple[int, ...]], account: str) -> dict[str, Any]:
    """The account-proof document of one account against a snapshot."""
    assets = document["accounts"]["assets"]
    decimals = snapshot_decimals(document)
    index = tree.index_of(account)
    return {"format": "backstop-account-proof/1", "fund": document["fund"],
            "log_size": document["log"]["size"], "account": account,
            "nonce": account_nonce(seed, account).hex(),
            "totals": _sums_by_asset(entries[account], assets, decimals),
            "index": index, "count": tree.count, "root": tree.root.hex(),
            "path": [{"hash": h.hex(), "sums": _sums_by_asset(tuple(s), assets, decimals)}
                     for h, s in tree.proof(index)]}


def load_publication(row: dict[str, Any]) -> Publication:
    """Rebuild the account tree of a stored snapshot (deterministic from seed and entries)."""
    document = json.loads(row["document"])
    seed = bytes.fromhex(row["seed"])
    entries = {a: tuple(s) for a, s in json.loads(row["accounts"]).items()}
    width = 3 * len(document["accounts"]["assets"])
    tree = ProvingSumTree.build(((a, account_nonce(seed, a), s) for a, s in entries.items()), width=width)
    return Publication(document, seed, tree, entries)


def event_proof(ledger: Ledger, fund: str, index: int, size: int) -> dict[str, Any]:
    """Inclusion proof of event `index` in the log of `size` events."""
    if not 0 <= index < size:
        raise PublishError(f"event {index} is not in a log of {size} events")
    event = next(iter(ledger.log_events(fund, index, index + 1)))
    with ledger.engine.connect() as connection:
        tree = ledger.log_tree(connection, fund)
        return {"format": "backstop-event-proof/1", "event": event, "index": index,
                "log_size": size, "log_root": tree.root(size).hex(),
                "proof": [h.hex() for h in tree.inclusion_proof(index, size)]}


def consistency_proof(ledger: Ledger, fund: str, old_size: int, new_size: int) -> dict[str, Any]:
    """Consistency proof between two log sizes."""
    if not 0 < old_size <= new_size:
        raise PublishError(f"need 0 < OLD <= NEW, got {old_size} and {new_size}")
    with ledger.engine.connect() as connection:
        tree = ledger.log_tree(connection, fund)
        if new_size > tree.size():
            raise PublishError(f"the log has only {tree.size()} events")
        return {"format": "backstop-consistency-proof/1",
                "old": {"size": old_size, "root": tree.root(old_size).hex()},
                "new": {"size": new_size, "root": tree.root(new_size).hex()},
                "proof": [h.hex() for h in tree.consistency_proof(old_size, new_size)]
                if old_size < new_size else []}


def write_json(path: Path, document: Any) -> None:
    """Write a JSON document (pretty, stable key order)."""
    path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", "utf-8")


def publish(ledger: Ledger, fund_name: str, signer: Signer, out: Path, time: str | None,
            previous_dir: Path | None = None, force: bool = False,
            risk: dict[str, Any] | None = None, origin: str | None = None) -> Publication:
    """Create a snapshot and write the directory a web server can serve as-is.

    All or nothing: the files are written to a staging directory beside `out`, synced to disk
    and renamed into place; the snapshot is recorded in a transaction that commits only once
    the rename has succeeded. A non-empty `out` is refused unless `force`, which replaces it
    whole. `previous_dir`, an earlier publication of this fund, lets the event export be
    extended instead of rewritten; `origin`: `--origin` (`log_origin`).
    """
    try:
        refuse_taken(out, force)
    except OutputExists as error:
        raise PublishError(str(error)) from None
    for parent in out.parents:  # the nearest existing ancestor must be a directory
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise PublishError(f"{out}: {parent} is not a directory")
            break
    shown, out = out, Path(os.path.abspath(out))  # `--out .` has a parent to stage beside
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(out.parent, {out.name}, STAGED)  # a killed publisher's, beside `out`
        stage = Path(tempfile.mkdtemp(prefix=staging_prefix(out.name), suffix=".partial",
                                      dir=out.parent))
        try:
            publication = build_snapshot(ledger, fund_name, signer, time, risk, origin)
            _write_publication(ledger, stage, publication, signer, previous_dir)
            sync_tree(stage)
            _record_and_place(ledger, publication, stage, out)
        finally:
            remove_path(stage)
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        raise PublishError(f"{shown}: cannot write: {error.strerror or error}{where}") from None
    return publication


def _record_and_place(ledger: Ledger, publication: Publication, stage: Path, out: Path) -> None:
    """Record the snapshot and rename `stage` to `out`: both happen or neither.

    Order: record (uncommitted), rename, commit. A failed rename rolls the record back, so
    nothing blocks a retry; a failed commit moves the files back out. Only a crash between the
    rename and the commit can leave files unrecorded: the database, which the next snapshot
    links from, never names a snapshot that was not written, and --force replaces the stray
    directory. The opposite order would, after such a crash, record a snapshot nobody can
    fetch and refuse every retry at that log size.
    """
    aside = stage.with_suffix(".old")  # what was at `out`, kept until the commit succeeds
    placed = False
    try:
        with ledger.transaction() as connection:
            if "holdings" in publication.document:  # closes the round: no `reserves add` now
                ledger.lock_writes(connection)
            record_snapshot(connection, publication)
            move_into_place(stage, out, aside)
            placed = True
    except BaseException as error:
        if placed:
            move_back(stage, out, aside)
        if isinstance(error, IntegrityError):  # a concurrent publisher took this log size
            raise PublishError("another snapshot was published at the same time; "
                               "publish again") from None
        raise
    remove_path(aside)


def _write_publication(ledger: Ledger, out: Path, publication: Publication, signer: Signer,
                       previous_dir: Path | None) -> None:
    """Write the files of a publication into the (empty) directory `out`."""
    document = publication.document
    write_snapshot_files(out, publication, signer)
    (out / "accounts").mkdir()
    prefix = None
    if previous_dir is not None and document["previous"] is not None:
        prefix = (previous_dir / "events.jsonl", document["previous"]["log_size"])
    write_export(ledger, document["fund"], out / "events.jsonl", document["log"]["size"], prefix)
    for account in publication.entries:
        proof = account_proof(document, publication.seed, publication.tree,
                              publication.entries, account)
        leaf = publication.tree.leaf(proof["index"])[0].hex()
        write_json(out / "accounts" / f"{leaf}.json", proof)


def signed_checkpoint(document: dict[str, Any], signer: Signer) -> str:
    """The C2SP signed checkpoint of a snapshot's log (its origin: `snapshot_origin`)."""
    log = document["log"]
    body = checkpoint_body(snapshot_origin(document), log["size"], bytes.fromhex(log["root"]))
    return sign_note(body, [signer])


def write_snapshot_files(out: Path, publication: Publication, signer: Signer) -> None:
    """The files every published snapshot folder holds, into the (empty) directory `out`:
    snapshot.json, checkpoint, account-seed, verifier-key, policy.json."""
    out.chmod(0o755)  # served as-is; mkdtemp made it private
    write_json(out / "snapshot.json", publication.document)
    (out / "checkpoint").write_text(signed_checkpoint(publication.document, signer), "utf-8")
    (out / "account-seed").write_text(publication.seed.hex() + "\n", "utf-8")
    os.chmod(out / "account-seed", 0o644)
    (out / "verifier-key").write_text(signer.verifier_key() + "\n", "utf-8")
    write_json(out / "policy.json", publication.policy)
