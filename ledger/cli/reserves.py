"""`backstop reserves ...`: proof of reserves, the assets side (docs/RESERVES.md).

challenge opens the attestation round and prints what to sign; sign and custodian-sign make
signatures with local keys (tests, demo); add checks and records holdings; show lists them.
The next `backstop snapshot publish` publishes the round (backstop-snapshot/2).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from auditor.formats.wire import TIME
from auditor.verify.keys import KeyFormatError, Verifier, parse_verifiers
from ledger.cli.options import InputExit, emit_json, resolve_fund, store_options
from ledger.service.application import Ledger
from ledger.service.reserves import (
    ReservesError,
    add_holdings,
    challenge,
    custodian_holding,
    eth_address,
    load_eth_key,
    open_round,
    sign_challenge,
)
from ledger.service.signing import load_signer


@click.group()
def reserves() -> None:
    """Proof of reserves: sign a challenge bound to the next snapshot, record holdings.

    \b
    Workflow (docs/RESERVES.md; README "Proof of reserves"):
      backstop reserves challenge          open a round, print the text to sign
      (sign it: personal_sign in a wallet, or `backstop reserves sign --eth-key FILE`;
       a custodian signs its statement: `backstop reserves custodian-sign`)
      backstop reserves add holdings.jsonl record the holdings (each checked first)
      backstop snapshot publish ...        publish the round: backstop-snapshot/2
    """


@reserves.command("challenge")
@click.option("--time", "time_", metavar="RFC3339",
              help="The snapshot's time (default: now). Fixed with the round.")
@click.option("--new", is_flag=True,
              help="Replace the open round (its holdings are dropped), e.g. after the log grew.")
@click.option("--hex", "as_hex", is_flag=True,
              help="Print 0x + hex of the challenge's UTF-8 bytes (what personal_sign takes).")
@click.option("--json", "as_json", is_flag=True, help="Print the round as JSON.")
@store_options
def challenge_(time_: str | None, new: bool, as_hex: bool, as_json: bool, ledger: Ledger,
               fund_name: str | None) -> None:
    """Open a reserves round at the log's current size and print its challenge.

    The challenge names the fund, the log size, the log root and the snapshot time; every
    proof of control signs exactly these bytes (no trailing newline). Run again to reprint
    the open round. If the log grows before `snapshot publish`, the round no longer matches:
    open a new one with --new and sign again.
    """
    name = resolve_fund(ledger, fund_name)
    try:
        opened = open_round(ledger, name, time_, new)
    except ReservesError as error:
        raise InputExit(str(error)) from None
    if as_json:
        emit_json(opened.summary())
    elif as_hex:
        click.echo("0x" + opened.challenge.encode("utf-8").hex())
    else:
        click.echo(opened.challenge)


def _read_text(path: Path, option: str) -> str:
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        why = error.strerror if isinstance(error, OSError) else "not UTF-8"
        raise InputExit(f"{option} {path}: cannot read ({why or error})") from None


@reserves.command("sign")
@click.option("--eth-key", "eth_key", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File holding a secp256k1 private key as 64 hex digits (0x optional).")
@click.option("--json", "as_json", is_flag=True, help="Print {address, signature}.")
@store_options
def sign(eth_key: Path, as_json: bool, ledger: Ledger, fund_name: str | None) -> None:
    """Sign the open round's challenge (EIP-191 personal_sign) with a local key file.

    For tests and demos: a real treasury signs in its wallet instead (see the README).
    Prints the 0x signature, to put in the holding's "signature".
    """
    name = resolve_fund(ledger, fund_name)
    try:
        key = load_eth_key(_read_text(eth_key, "--eth-key"))
    except ReservesError as error:
        raise InputExit(f"--eth-key {eth_key}: {error}") from None
    try:
        opened = challenge(ledger, name)
    except ReservesError as error:
        raise InputExit(str(error)) from None
    signature = sign_challenge(key, opened.challenge)
    if as_json:
        emit_json({"address": eth_address(key), "signature": signature})
    else:
        click.echo(signature)


@reserves.command("custodian-sign")
@click.option("--key", "key_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The custodian's Ed25519 key file (backstop keygen); its name is the "
                   "custodian's name.")
@click.option("--asset", required=True, help="Asset held (one of the fund's).")
@click.option("--account", required=True, help="The custodian's account reference.")
@click.option("--amount", required=True, help="Amount, with exactly the asset's decimals.")
@click.option("--as-of", "as_of", metavar="RFC3339", help="Statement time (default: the round's).")
@store_options
def custodian_sign(key_path: Path, asset: str, account: str, amount: str, as_of: str | None,
                   ledger: Ledger, fund_name: str | None) -> None:
    """Sign a custodian statement for the open round; print the holding (one JSON line).

    For tests and demos: a custodian runs this (or signs the same statement bytes with its
    own tooling) and sends the line to the operator, who records it with `reserves add`.
    """
    name = resolve_fund(ledger, fund_name)
    if as_of is not None and not TIME.fullmatch(as_of):
        raise InputExit(f"--as-of {as_of!r}: not an RFC 3339 UTC time")
    signer = load_signer(key_path)
    try:
        opened = challenge(ledger, name)
    except ReservesError as error:
        raise InputExit(str(error)) from None
    holding = custodian_holding(opened, signer, asset, account, amount, as_of)
    click.echo(json.dumps(holding, separators=(",", ":")))


def _verifiers(values: tuple[str, ...]) -> list[Verifier]:
    """The --custodian-key values, read as the auditor reads its pinned keys
    (auditor.verify.keys.parse_verifiers): a verifier key, or a key file of them."""
    try:
        return parse_verifiers(values, "--custodian-key")
    except KeyFormatError as error:
        raise InputExit(str(error)) from None


@reserves.command("add")
@click.argument("holdings_file", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--custodian-key", "custodian_keys", multiple=True, metavar="VKEY|FILE",
              help="A custodian's verifier key (name+id+key) or a file of them; repeatable. "
                   "Needed for each custodian holding.")
@click.option("--json", "as_json", is_flag=True, help="Print the round as JSON.")
@store_options
def add(holdings_file: str, custodian_keys: tuple[str, ...], as_json: bool, ledger: Ledger,
        fund_name: str | None) -> None:
    """Check and record holdings (FILE: JSONL, one holding per line; - for stdin).

    Each signature is verified against the open round's challenge before anything is
    written; the first bad line stops with `line N: field: reason` (exit 2) and nothing is
    recorded. Holding format: docs/RESERVES.md.
    """
    name = resolve_fund(ledger, fund_name)
    keys = _verifiers(custodian_keys)
    try:
        if holdings_file == "-":
            lines = sys.stdin.buffer.read().splitlines()
        else:
            lines = Path(holdings_file).read_bytes().splitlines()
    except OSError as error:
        raise InputExit(f"FILE {holdings_file}: cannot read ({error.strerror or error})") from None
    if lines and lines[0].startswith(b"\xef\xbb\xbf"):  # a byte order mark, as `import` allows
        lines[0] = lines[0][3:]
    try:
        updated = add_holdings(ledger, name, lines, keys)
    except ReservesError as error:
        raise InputExit(f"{holdings_file}: {error}") from None
    if as_json:
        emit_json({**updated.summary(), "holdings": updated.holdings})
    else:
        click.echo(f"recorded; the round at log size {updated.log_size} now has "
                   f"{len(updated.holdings)} holding(s)")


@reserves.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print the round as JSON.")
@store_options
def show(as_json: bool, ledger: Ledger, fund_name: str | None) -> None:
    """The open round: its challenge and holdings."""
    name = resolve_fund(ledger, fund_name)
    try:
        opened = challenge(ledger, name)
    except ReservesError as error:
        raise InputExit(str(error)) from None
    if as_json:
        emit_json({**opened.summary(), "holdings": opened.holdings})
        return
    click.echo(opened.challenge)
    click.echo(f"-- {len(opened.holdings)} holding(s)")
    for h in opened.holdings:
        where = (f"{h['chain']} {h['address']} {h['token'] or 'native'} block {h['block']}"
                 if h["kind"] == "onchain" else f"{h['custodian']} {h['account']}")
        click.echo(f"{h['asset']} {h['amount']}  {h['kind']} {where}")
