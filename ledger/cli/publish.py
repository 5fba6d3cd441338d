"""`backstop keygen`, `backstop snapshot publish`, `backstop prove ...`: publishing commitments."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from auditor.verify.cosign import parse_cosigner_keys
from auditor.verify.keys import PASSPHRASE_ENV, KeyFormatError, Signer
from auditor.verify.origin import check_origin, derived_origin
from ledger.cli.options import (
    InputExit,
    emit_json,
    force_option,
    refuse_overwrite,
    resolve_fund,
    store_options,
)
from ledger.service.application import Ledger
from ledger.service.outputs import OutputExists, write_file
from ledger.service.publish import (
    Publication,
    PublishError,
    account_proof,
    consistency_proof,
    event_proof,
    latest,
    load_publication,
    publish,
    snapshot_row,
)
from ledger.service.receipts import (
    account_receipt_indexes,
    checkpoint_size,
    event_receipt,
    signed_checkpoint_at,
)
from ledger.service.signing import env_passphrase, generate_signer, key_file, load_signer
from ledger.service.tilepub import publish_tiles
from ledger.service.witnessing import Witness, WitnessError, cosign_files, load_witnesses


@click.command()
@click.argument("name", required=False)
@click.option("--origin", default=None, metavar="ORIGIN",
              help="Name the key ORIGIN, the log's origin (C2SP: a log's key name SHOULD be its "
                   "origin), e.g. log.example.com/backstop/main; pass the same to "
                   "`snapshot publish --origin`.")
@click.option("--fund", "for_fund", default=None, metavar="FUND",
              help="Name the key the default origin of FUND's new log, derived from this key "
                   "(backstop/FUND/<16 hex of SHA-256(public key)>).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Private key file to write (mode 0600); the verifier key goes to OUT.pub.")
@click.option("--encrypt", is_flag=True,
              help=f"Encrypt the key with a passphrase (from ${PASSPHRASE_ENV}, else prompted).")
@force_option
def keygen(name: str | None, origin: str | None, for_fund: str | None, out: Path,
           encrypt: bool, force: bool) -> None:
    """Create an Ed25519 signing key named NAME, or --origin ORIGIN, or for --fund FUND's
    derived origin (one of the three).

    Prints the verifier key (C2SP signed-note form name+keyid+base64) that auditors pin.
    Neither file is written through a symlink, nor replaced without --force.
    """
    if sum(x is not None for x in (name, origin, for_fund)) != 1:
        raise InputExit("NAME, --origin, --fund: give exactly one")
    if origin is not None and (why := check_origin(origin)) is not None:
        raise InputExit(f"--origin {origin!r}: {why}")
    public = out.with_name(out.name + ".pub")
    for path in (out, public):  # both checked before either is written
        refuse_overwrite("--out", path, force)
    passphrase = None
    if encrypt:
        passphrase = env_passphrase() or click.prompt(
            "passphrase", hide_input=True, confirmation_prompt=True).encode()
    try:
        signer = generate_signer(name or origin or "pending")
        if for_fund is not None:  # the name is derived from the key itself
            signer = Signer(derived_origin(for_fund, signer.public_key), signer.private_key)
    except KeyFormatError as error:
        raise InputExit(f"{'NAME' if name is not None else '--fund'}: {error}") from None
    try:
        write_file(out, key_file(signer, passphrase), 0o600, force)
        write_file(public, (signer.verifier_key() + "\n").encode(), 0o644, force)
    except OutputExists as error:  # appeared since the check
        raise InputExit(f"--out {error}") from None
    except OSError as error:  # a missing folder, no permission
        raise InputExit(f"--out {out}: cannot write ({error.strerror or error})") from None
    click.echo(signer.verifier_key())


@click.group()
def snapshot() -> None:
    """Signed reserve snapshots."""


@snapshot.command("publish")
@click.option("--key", "key_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Private key file from `backstop keygen`.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory to write (served as-is by any web server); absent or empty "
                   "unless --force.")
@click.option("--time", "time_", metavar="RFC3339",
              help="Snapshot time (default: now; with an open `backstop reserves` round, "
                   "the round's time, which --time may only repeat).")
@click.option("--layout", type=click.Choice(["directory", "tiles"]), default="directory",
              show_default=True,
              help="directory: DIR holds this snapshot alone. tiles: DIR is a C2SP "
                   "tlog-tiles log every snapshot extends (see below).")
@click.option("--origin", default=None, metavar="ORIGIN",
              help="The log's origin, the first line of its checkpoints: a schema-less URL "
                   "prefix of where it is served (log.example.com/backstop/main). Fixed by the "
                   "first snapshot; default derived from the key (schemas/README.md, Origin).")
@click.option("--witness", "witness_urls", multiple=True, metavar="URL",
              help="A tlog-witness to submit the new checkpoint to (POST URL/add-checkpoint); "
                   "repeatable; its keys from --witness-key.")
@click.option("--witness-key", "witness_keys", multiple=True, metavar="VKEY|FILE",
              help="A witness's cosignature/v1 verifier key (name+id+base64(0x04||key)), or a "
                   "file of them; only their cosignatures are kept.")
@click.option("--witnesses", "witness_file", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Witnesses to submit to, one 'URL VKEY' a line (# comments).")
@click.option("--require-cosignatures", "required", default=0, type=click.IntRange(0),
              help="Exit 1 when fewer witnesses than this cosigned (the snapshot stays "
                   "published).")
@click.option("--json", "as_json", is_flag=True, help="Print the snapshot document.")
@click.option("--risk", "risk_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A `backstop risk --out` report: its headline (ES 99.9%, recommended size, "
                   "coverage, model parameters and hash) goes into the signed metrics.risk.")
@force_option
@store_options
def publish_(key_path: Path, out: Path, time_: str | None, layout: str, origin: str | None,
             witness_urls: tuple[str, ...], witness_keys: tuple[str, ...],
             witness_file: Path | None, required: int, as_json: bool, risk_path: Path | None,
             force: bool, ledger: Ledger, fund_name: str | None) -> None:
    """Sign a snapshot of the fund now and write it with checkpoint, export and proofs.

    \b
    DIR/snapshot.json    the signed snapshot        DIR/checkpoint   C2SP signed checkpoint
    DIR/events.jsonl     the event export           DIR/accounts/    one proof per account
    DIR/account-seed     seed of the account tree   DIR/verifier-key the operator's key

    All or nothing: written beside DIR, then renamed into place, and only then recorded. A
    non-empty DIR is refused unless --force, which replaces it whole.

    With an open reserves round (`backstop reserves challenge`), the snapshot is that round's:
    backstop-snapshot/2 with its holdings, at its log size and time; refused if the log has
    grown since (open a new round and sign again). docs/RESERVES.md. A format 2 fund
    publishes backstop-snapshot/3 (its pools, structure, claims and ADL states; the round's
    holdings when there is one).

    \b
    --layout tiles: DIR/checkpoint, DIR/tile/... (hash tiles and entry bundles of the
    log, written once) and DIR/snapshots/SIZE/ (snapshot.json, checkpoint, account-seed,
    verifier-key, policy.json, accounts/ proof shards). DIR must be empty or this fund's
    tiled log, unless --force. A checkpoint left behind the last recorded snapshot (a
    publisher killed after its commit) is repaired first: that snapshot's tiles and
    checkpoint are written again. What killed publishers left (.*.PID.new files, staging
    folders) is removed once their process is gone.

    \b
    --witness/--witnesses: the new checkpoint goes to each witness over C2SP tlog-witness;
    the cosignatures that verify are appended to the checkpoint (schemas/README.md,
    "Witness cosignatures"); a witness that does not cosign is reported on stderr.
    """
    witnesses = _witnesses(witness_urls, witness_keys, witness_file)
    if layout == "directory":
        refuse_overwrite("--out", out, force)
    name = resolve_fund(ledger, fund_name)
    signer = load_signer(key_path)
    risk = None if risk_path is None else _risk_headline(risk_path, ledger, name)
    write = publish if layout == "directory" else publish_tiles
    try:
        # time None: the open reserves round's time, or now (ledger.service.reserves)
        publication = write(ledger, name, signer, out, time_, force=force, risk=risk,
                            origin=origin)
    except PublishError as error:
        raise InputExit(str(error)) from None
    document = publication.document
    fresh = publication.repaired is None or document["log"]["size"] != publication.repaired[1]
    cosigned = _submit(ledger, name, document, out, layout, witnesses) if fresh else 0
    if as_json:
        emit_json(document)
    else:
        _say_published(publication, name, out, layout)
    if witnesses and fresh:
        click.echo(f"cosigned by {cosigned} of {len(witnesses)} witnesses", err=as_json)
    if fresh and cosigned < required:
        sys.exit(1)


def _say_published(publication: Publication, name: str, out: Path, layout: str) -> None:
    """What a publish did: a repair, nothing new, or the new snapshot."""
    document = publication.document
    if publication.repaired is not None:
        before, after = publication.repaired
        click.echo(f"repaired {out}: its checkpoint was at log size {before}, behind the "
                   f"snapshot recorded at {after}; re-wrote that snapshot's tiles and checkpoint")
        if document["log"]["size"] == after:
            click.echo(f"nothing new to publish: the log has {after} events")
            return
    click.echo(f"published snapshot of fund {name} at log size {document['log']['size']} "
               f"(root {document['log']['root'][:16]}…, {document['accounts']['count']} "
               f"accounts) to {out}"
               + ("" if layout == "directory" else f"/snapshots/{document['log']['size']}"))


def _witnesses(urls: tuple[str, ...], keys: tuple[str, ...], file: Path | None) -> list[Witness]:
    """The witnesses to submit to (bad input: exit 2 before anything is published)."""
    if urls and not keys:
        raise InputExit("--witness: needs --witness-key (the witnesses' cosignature keys)")
    try:
        trusted = tuple(parse_cosigner_keys(keys, "--witness-key"))
        listed = load_witnesses(file) if file is not None else []
    except (KeyFormatError, WitnessError) as error:
        raise InputExit(f"{'--witnesses ' if isinstance(error, WitnessError) else ''}{error}") \
            from None
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise InputExit(f"--witness {url}: not an http(s) URL")
    return [*(Witness(url, trusted) for url in urls), *listed]


def _submit(ledger: Ledger, fund: str, document: dict[str, Any], out: Path, layout: str,
            witnesses: list[Witness]) -> int:
    """Submit the new checkpoint to `witnesses`, store their cosignatures; how many cosigned."""
    if not witnesses:
        return 0
    size = document["log"]["size"]
    own = out / "checkpoint" if layout == "directory" else out / f"snapshots/{size}/checkpoint"
    previous = document["previous"]
    with ledger.engine.connect() as connection:
        tree = ledger.log_tree(connection, fund)
        outcomes = cosign_files(witnesses, own.read_text("utf-8"), size,
                                0 if previous is None else previous["log_size"],
                                lambda old: tree.consistency_proof(old, size), [own],
                                None if layout == "directory" else out / "checkpoint")
    for outcome in outcomes:
        if outcome.error is not None:
            click.echo(f"witness {outcome.url}: {outcome.error}", err=True)
    return sum(1 for outcome in outcomes if outcome.error is None)


@click.group()
def prove() -> None:
    """Proofs against the published snapshots (print JSON documents)."""


@prove.command("event")
@click.argument("index", type=click.IntRange(0))
@click.option("--size", type=click.IntRange(1),
              help="Log size to prove against (default: the latest snapshot's).")
@store_options
def prove_event(index: int, size: int | None, ledger: Ledger, fund_name: str | None) -> None:
    """Inclusion proof of event INDEX (0-based) in the log."""
    name = resolve_fund(ledger, fund_name)
    if size is None:
        with ledger.engine.connect() as connection:
            row = latest(connection, name)
        size = row["log_size"] if row else ledger.get_fund(name).log_size
    try:
        emit_json(event_proof(ledger, name, index, size))
    except PublishError as error:
        raise InputExit(str(error)) from None


@prove.command("account")
@click.argument("account_id")
@click.option("--size", type=click.IntRange(1),
              help="Log size of the snapshot to prove against (default: the latest).")
@store_options
def prove_account(account_id: str, size: int | None, ledger: Ledger,
                  fund_name: str | None) -> None:
    """Proof that ACCOUNT_ID's totals are in a snapshot's account tree."""
    name = resolve_fund(ledger, fund_name)
    try:
        with ledger.engine.connect() as connection:
            publication = load_publication(snapshot_row(connection, name, size))
        if account_id not in publication.entries:
            raise PublishError(f"account {account_id!r} is not in the snapshot at log size "
                               f"{publication.document['log']['size']}")
        emit_json(account_proof(publication.document, publication.seed, publication.tree,
                                publication.entries, account_id))
    except PublishError as error:
        raise InputExit(str(error)) from None


@prove.command("consistency")
@click.argument("old", type=click.IntRange(1))
@click.argument("new", type=click.IntRange(1))
@store_options
def prove_consistency(old: int, new: int, ledger: Ledger, fund_name: str | None) -> None:
    """Consistency proof: the log of NEW events extends the log of OLD events."""
    name = resolve_fund(ledger, fund_name)
    try:
        emit_json(consistency_proof(ledger, name, old, new))
    except PublishError as error:
        raise InputExit(str(error)) from None



@prove.command("receipt")
@click.argument("index", type=click.IntRange(0), required=False)
@click.option("--account", "account_id", metavar="ID",
              help="Instead of INDEX: every payout to and clawback from account ID, one "
                   "receipt file each, in --out.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="With --account: the folder for the receipts (<fund>-<index>.tlog-proof).")
@click.option("--checkpoint", "checkpoint_path",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A published checkpoint (ROOT/snapshots/SIZE/checkpoint, or one a witness "
                   "cosigned): used verbatim, cosignatures and all.")
@click.option("--key", "key_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Instead of --checkpoint: sign a checkpoint of --size with this key file.")
@click.option("--size", type=click.IntRange(1),
              help="With --key: the log size (default: the latest snapshot's).")
@force_option
@store_options
def prove_receipt(index: int | None, account_id: str | None, out: Path | None,
                  checkpoint_path: Path | None, key_path: Path | None, size: int | None,
                  force: bool, ledger: Ledger, fund_name: str | None) -> None:
    """A receipt of event INDEX: a C2SP tlog-proof that `backstop-audit receipt` checks
    offline (schemas/README.md "Receipts"). Printed; with --account, written to --out."""
    if (index is None) == (account_id is None):
        raise InputExit("give either INDEX or --account ID")
    if account_id is not None and out is None:
        raise InputExit("--account needs --out DIR")
    if (checkpoint_path is None) == (key_path is None):
        raise InputExit("give either --checkpoint FILE or --key FILE")
    if size is not None and key_path is None:
        raise InputExit("--size goes with --key (a checkpoint names its own size)")
    name = resolve_fund(ledger, fund_name)
    try:
        if checkpoint_path is not None:
            try:
                note = checkpoint_path.read_text("utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise InputExit(f"--checkpoint {checkpoint_path}: cannot read ({error})") from None
        else:
            assert key_path is not None
            if size is None:
                with ledger.engine.connect() as connection:
                    size = snapshot_row(connection, name, None)["log_size"]
            note = signed_checkpoint_at(ledger, name, size, load_signer(key_path))
        if index is not None:
            click.echo(event_receipt(ledger, name, index, note), nl=False)
            return
        assert account_id is not None and out is not None
        indexes = list(account_receipt_indexes(ledger, name, account_id,
                                               checkpoint_size(ledger, name, note)))
        receipts = {out / f"{name}-{i}.tlog-proof": event_receipt(ledger, name, i, note)
                    for i in indexes}
    except PublishError as error:
        raise InputExit(str(error)) from None
    for path in receipts:  # all checked before any is written
        refuse_overwrite("--out", path, force)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for path, text in receipts.items():
            write_file(path, text.encode("utf-8"), 0o644, force)
    except OutputExists as error:
        raise InputExit(f"--out {error}") from None
    except OSError as error:
        raise InputExit(f"--out {out}: cannot write ({error.strerror or error})") from None
    click.echo(f"wrote {len(receipts)} receipt(s) of account {account_id} to {out}")


def _risk_headline(path: Path, ledger: Ledger, fund: str) -> dict[str, Any]:
    """The `metrics.risk` object from a risk report file (exit 2 with one line if bad)."""
    from ledger.risk.headline import HeadlineError, risk_metrics

    try:
        report = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise InputExit(f"--risk {path}: not a readable JSON file ({error})") from None
    try:
        return risk_metrics(report, fund, ledger.get_fund(fund).assets)
    except HeadlineError as error:
        raise InputExit(f"--risk {path}: {error}") from None
