"""`backstop-audit`: verify what an insurance-fund operator publishes, offline.

Exit codes: 0 verified (every check ran and passed, except those the user explicitly skipped,
which the verdict line names); 1 verification failed or a required check could not run (one
``FAILED: what: why`` line); 2 usage or input error (unreadable file, bad JSON, schema-invalid
document, malformed key). Messages quote at most a short prefix of any input (`auditor.formats.clip`).
Every command takes ``--json`` for a machine-readable verdict. This module never imports
`ledger`: the auditor shares only the wire formats with the operator (schemas/README.md).
Run it as ``backstop-audit``, ``python -m auditor`` or ``python -m auditor.cli``.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable
from typing import Any

import click

from auditor.checks import (
    do_cosign,
    execute,
    verify_account,
    verify_checkpoint,
    verify_consistency,
    verify_event,
    verify_replay,
    verify_snapshot,
)
from auditor.formats.clip import clip
from auditor.formats.digits import parse_uint
from auditor.formats.durations import Duration
from auditor.receipt import verify_receipt
from auditor.report import Report
from auditor.reserves import DEFAULT_MAX_BLOCK_AGE, verify_reserves
from auditor.verify.reads import DEFAULT_DEADLINE, DEFAULT_TIMEOUT, HttpLimits
from auditor.witness import follow

EXIT_CODES_HELP = ("Exit codes: 0 verified; 1 verification failed, or a required check could not "
                   "run; 2 usage or input error.")


def audit_command(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Wrap a command body `f(report, **params)`: verdict, output, exit code."""

    def wrap(f: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(f)
        def run(as_json: bool, **params: Any) -> None:
            report = execute(name, f, **params)
            click.echo(report.as_json() if as_json else report.as_text())
            sys.exit(report.exit_code)

        return click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")(run)

    return wrap


class WholeNumber(click.ParamType[int]):
    """A whole number in ASCII digits, at least `minimum` (click.INT takes int(): '١٢', '1_000')."""

    name = "integer"

    def __init__(self, minimum: int = 0) -> None:
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            number = parse_uint(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if number < self.minimum:
            self.fail(f"{value} is less than {self.minimum}", param, ctx)
        return number


class Seconds(click.ParamType[float]):
    """Seconds in ASCII digits, with up to 3 decimals, from `minimum` to one day (float()
    would take '١٢', '1_0', 'inf' and 'nan')."""

    name = "seconds"
    _TEXT = re.compile(r"(0|[1-9][0-9]{0,4})(\.[0-9]{1,3})?")

    def __init__(self, minimum: float) -> None:
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        if not isinstance(value, str) or not self._TEXT.fullmatch(value):
            self.fail(f"{clip(value)} is not a number of seconds (ASCII digits, up to 3 "
                      "decimals)", param, ctx)
        seconds = float(value)
        if not self.minimum <= seconds <= 86400:
            self.fail(f"{value} is not from {self.minimum:g} to 86400 seconds", param, ctx)
        return seconds


def http_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--timeout and --deadline: the bounds of each HTTP request to a tiled log (README)."""
    f = click.option("--deadline", default=DEFAULT_DEADLINE, show_default=True,
                     type=Seconds(0.001), metavar="SECONDS",
                     help="A log at a URL: the most seconds one request (a tile, a bundle, a "
                          "checkpoint) may take in all; a slower answer is refused.")(f)
    return click.option("--timeout", default=DEFAULT_TIMEOUT, show_default=True,
                        type=Seconds(0.001), metavar="SECONDS",
                        help="A log at a URL: the most seconds to connect, and to wait for "
                             "each piece of an answer.")(f)


def seed_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--skip-accounts", is_flag=True,
                     help="Accept a verdict without rebuilding the account root when no seed is "
                          "available (the verdict line says it was not checked).")(f)
    return click.option("--seed", default=None, metavar="FILE",
                        help="Account-tree seed (hex); default: account-seed beside the snapshot.")(f)


def key_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--require", default=1, show_default=True, type=WholeNumber(1),
                     help="Distinct valid signatures required.")(f)
    return click.option("--key", "keys", multiple=True, required=True, metavar="VKEY|FILE",
                        help="Pinned verifier key (name+id+key) or a file holding one; repeatable. "
                             "Every signature by a pinned key must verify.")(f)


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP)
def main() -> None:
    """Verify an insurance fund's published snapshots, proofs and event log offline."""


@main.command("snapshot")
@click.argument("snapshot")
@key_options
@audit_command("snapshot")
def snapshot_cmd(report: Report, **params: Any) -> None:
    """Check a snapshot's schema, signatures and internal consistency."""
    verify_snapshot(report, **params)


@main.command("replay")
@click.argument("events")
@click.option("--snapshot", default=None,
              help="The signed snapshot the export must match. For a tiled log: a log size "
                   "(ROOT/snapshots/SIZE/), default the latest checkpoint's.")
@click.option("--save-state", default=None, metavar="FILE",
              help="Tiled log: after a verified replay, save the state to resume from.")
@click.option("--resume-state", default=None, metavar="FILE",
              help="Tiled log: start from a saved state; check the log extends it, replay "
                   "only the events after it.")
@key_options
@seed_options
@http_options
@audit_command("replay")
def replay_cmd(report: Report, **params: Any) -> None:
    """Replay EVENTS.jsonl: re-derive every outcome, balance and total; compare with the snapshot.

    Without the account seed the account root cannot be rebuilt: the verdict is FAILED (exit 1)
    unless --skip-accounts is given, and then the VERIFIED line names what was skipped.

    EVENTS may also be a tiled log (a folder, or an http(s) base URL): its entry bundles up
    to the snapshot's log size are checked against the hash tiles and the snapshot's
    signed checkpoint, then replayed.
    """
    verify_replay(report, **params)


@main.command("account")
@click.argument("proof")
@click.option("--snapshot", required=True, help="The signed snapshot the proof must match.")
@click.option("--account", default=None, metavar="ID",
              help="PROOF is an account-proof shard (accounts/<prefix>.json); check ID's proof.")
@key_options
@audit_command("account")
def account_cmd(report: Report, **params: Any) -> None:
    """Check an account proof against a snapshot's account root and totals."""
    verify_account(report, **params)


@main.command("event")
@click.argument("proof")
@click.option("--snapshot", required=True, help="The signed snapshot the proof must match.")
@key_options
@audit_command("event")
def event_cmd(report: Report, **params: Any) -> None:
    """Check an event inclusion proof against a snapshot's log root."""
    verify_event(report, **params)


@main.command("consistency")
@click.argument("old")
@click.argument("new")
@key_options
@click.option("--proof", default=None, metavar="FILE",
              help="Consistency-proof document, when NEW.previous does not link to OLD.")
@audit_command("consistency")
def consistency_cmd(report: Report, **params: Any) -> None:
    """Check that NEW's log extends OLD's (append-only history)."""
    verify_consistency(report, **params)


@main.command("checkpoint")
@click.argument("checkpoint")
@key_options
@click.option("--snapshot", default=None, help="Also require the snapshot's log size and root.")
@click.option("--cosigner", "cosigners", multiple=True, metavar="VKEY|FILE",
              help="A witness's cosignature/v1 key (name+id+base64(0x04||key)) or a file of "
                   "them: its cosignature line in the checkpoint must verify. Repeatable.")
@click.option("--require-cosignatures", "cosigned", default=None, type=WholeNumber(0),
              help="How many of the --cosigner witnesses must have cosigned (default: all).")
@audit_command("checkpoint")
def checkpoint_cmd(report: Report, **params: Any) -> None:
    """Check a C2SP tlog-checkpoint (signed note), and its witnesses' cosignatures."""
    verify_checkpoint(report, **params)


@main.command("receipt")
@click.argument("receipt", metavar="FILE")
@key_options
@click.option("--witness-key", "witness_keys", multiple=True, metavar="VKEY",
              help="A witness's cosignature/v1 verifier key (name+id+base64(0x04 || key)) "
                   "you pinned: its cosignature of the checkpoint must be in the receipt. "
                   "Repeatable.")
@audit_command("receipt")
def receipt_cmd(report: Report, **params: Any) -> None:
    """Check a receipt (a C2SP tlog-proof from `backstop prove receipt`) with no network.

    The checkpoint's signature by the pinned key, each pinned witness's cosignature, the
    event's inclusion at its index in the checkpoint's tree, and that it is an event of this
    fund at that index. Prints the event's type, account, asset and amount.
    """
    verify_receipt(report, **params)


@main.command("cosign")
@click.argument("snapshot")
@key_options
@click.option("--witness-key", required=True, metavar="FILE",
              help="Your witness private key file (backstop keygen), used to sign.")
@click.option("--events", required=True, metavar="EVENTS.jsonl",
              help="The event export to replay, or a tiled log (folder or http(s) URL).")
@seed_options
@click.option("--out", default=None, metavar="FILE", help="Write here instead of SNAPSHOT.")
@http_options
@audit_command("cosign")
def cosign_cmd(report: Report, **params: Any) -> None:
    """Fully verify SNAPSHOT against EVENTS, then append the witness's signature.

    The operator's signature is checked against the key(s) pinned with --key only, never
    against a verifier-key file in the audited directory.
    """
    do_cosign(report, **params)


@main.command("reserves")
@click.argument("snapshot")
@key_options
@click.option("--rpc", multiple=True, metavar="[eip155:ID=]URL",
              help="Your own Ethereum node's JSON-RPC URL: balances at each holding's block "
                   "(eth_getBalance, eth_call balanceOf). A bare URL serves every chain; "
                   "eip155:ID=URL one chain. Repeatable.")
@click.option("--balances", default=None, metavar="FILE",
              help="Instead of --rpc: balances you exported from a source you trust "
                   "(backstop-balances/1, docs/RESERVES.md).")
@click.option("--tokens", default=None, metavar="FILE",
              help="Your token list: which contract (or native coin) on which chain is which "
                   "asset, with its decimals (backstop-tokens/1). Needed for on-chain holdings.")
@click.option("--custodian-key", "custodian_keys", multiple=True, metavar="VKEY|FILE",
              help="A custodian's verifier key you pinned (not the operator's); repeatable.")
@click.option("--max-block-age", metavar="AGE", default=DEFAULT_MAX_BLOCK_AGE,
              show_default=True, type=Duration(),
              help="How long before the snapshot's time a holding's block may be (30m, 1h, "
                   "2d): an older balance may have moved since. A block after the snapshot's "
                   "time always fails. Block times come from --rpc (eth_getBlockByNumber) or "
                   "from the balances file's block_time.")
@audit_command("reserves")
def reserves_cmd(report: Report, **params: Any) -> None:
    """Check a snapshot's proof of reserves: is every reserve really held?

    For each holding of a backstop-snapshot/2: its signature binds it to this snapshot
    (personal_sign by the address, or the custodian's statement by a pinned key), its asset
    is right, its claim is at most the balance at its block, that block is at most
    --max-block-age before the snapshot's time (and not after it), and nothing is counted
    twice. Per asset, the verified holdings must cover the reserve; the reserve ratio is
    reported. A backstop-snapshot/1 has no holdings: FAILED. An unreachable node, or a node of
    another chain than the holdings name (eth_chainId): exit 2.
    """
    verify_reserves(report, **params)


@main.command("follow")
@click.argument("log", metavar="ROOT_OR_URL")
@key_options
@click.option("--state", "state_dir", required=True, metavar="DIR",
              help="The witness's folder: replay state, last checkpoint, cosignatures.")
@click.option("--cosign", default=None, metavar="WITNESS_KEY_FILE",
              help="Write a C2SP tlog-cosignature (Ed25519 cosignature/v1) for each checkpoint "
                   "verified, under DIR/cosigned/SIZE.")
@click.option("--interval", default="60s", show_default=True, type=Duration(),
              metavar="DURATION", help="Time between polls (30s, 5m, 1h).")
@click.option("--once", is_flag=True, help="Process what is published, then exit.")
@click.option("--skip-accounts", is_flag=True,
              help="Accept snapshots published without an account seed.")
@click.option("--listen", default=None, metavar="HOST:PORT",
              help="Also be a C2SP tlog-witness: answer POST /add-checkpoint there, cosigning "
                   "a submitted checkpoint once the log, audited, serves it (needs --cosign).")
@http_options
def follow_cmd(timeout: float, deadline: float, **params: Any) -> None:
    """Follow a tiled log: verify each new snapshot incrementally, refuse a checkpoint that is
    not consistent with the last one verified (split view, rewritten history), optionally
    cosign. Runs until stopped (SIGINT/SIGTERM: exit 0) or the first failure (exit 1, or 2)."""
    sys.exit(follow(**params, limits=HttpLimits(timeout, deadline)))


if __name__ == "__main__":
    main(prog_name="backstop-audit")
