"""`backstop-audit reserves`: are a snapshot's reserves really held? (docs/RESERVES.md)

A `backstop-snapshot/2` lists holdings. Each on-chain holding must carry a personal_sign of
this snapshot's challenge that recovers to its address, be in the asset the auditor's own
token list (`--tokens`) says its contract is, and claim at most the balance at its block, as
the auditor's own node (`--rpc`, through `auditor.verify.evm`) or balance export
(`--balances`) reports it. Each custodian holding must carry a statement for this snapshot
signed by a custodian key the auditor pinned (`--custodian-key`, never the operator's `--key`).
No address (with its token) and no custodian account is counted twice. Per asset, the verified
claims must cover the snapshot's reserve; the ratio is reported. Never imports `ledger`.

Two checks keep the auditor's own balance source honest about what it reports: a node given
with `--rpc` must serve the chain the holdings name (`eth_chainId`; a node of another chain is
an input error of the auditor's setup, exit 2), and the block a balance is read at must be at
most `--max-block-age` before the snapshot's time and not after it (the block's timestamp from
the node, or the `block_time` a balances file gives; a file without it vouches for it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from auditor.balances import (
    DEFAULT_MAX_BLOCK_AGE,
    Balances,
    load_balances,
    load_tokens,
    parse_rpc,
)
from auditor.formats.durations import format_duration, parse_duration
from auditor.formats.wire import (
    WireError,
    format_amount,
    format_decimal,
    format_instant,
    parse_amount,
    parse_instant,
    snapshot_decimals,
)
from auditor.loaders import load_json, load_verifiers
from auditor.report import Failed, InputError, Report
from auditor.snapshot_checks import check_signatures, check_snapshot_internal, snapshot_figures
from auditor.verify import evm_sig
from auditor.verify.holdings import (
    holding_key,
    snapshot_challenge,
    statement_text,
    verify_custodian,
)
from auditor.verify.keys import Verifier

__all__ = ["DEFAULT_MAX_BLOCK_AGE", "verify_reserves"]

RATIO_PLACES = 6


@dataclass
class _Audit:
    """What the per-holding checks share."""

    snap: dict[str, Any]
    decimals: dict[str, int]
    balances: Balances
    tokens: dict[tuple[str, str], tuple[str, int]] | None
    custodians: dict[str, Verifier]
    max_age: int  # seconds a holding's block may be before the snapshot's time
    seen: dict[tuple[str, ...], int] = field(default_factory=dict)
    notes: dict[int, str] = field(default_factory=dict)  # holding index -> block time shown


def _describe(h: Mapping[str, Any]) -> str:
    if h["kind"] == "onchain":
        return (f"{h['asset']} {h['amount']} at {h['address']} "
                f"({h['token'] or 'native coin'}) on {h['chain']} block {h['block']}")
    return f"{h['asset']} {h['amount']} at custodian {h['custodian']} account {h['account']}"


def _common(audit: _Audit, index: int, h: Mapping[str, Any]) -> tuple[int, str | None]:
    """The claim in units, or why the holding fails before its proof is looked at."""
    asset = h["asset"]
    if asset not in audit.decimals:
        return 0, f"wrong asset: {asset} is not one of the fund's assets ({', '.join(sorted(audit.decimals))})"
    try:
        units = parse_amount(h["amount"], audit.decimals[asset])
    except WireError as exc:
        return 0, f"amount: {exc}"
    try:
        key = holding_key(h)
    except evm_sig.AddressError as exc:
        return 0, f"address: {exc}"
    if key in audit.seen:
        what = "address and token" if h["kind"] == "onchain" else "custodian account"
        return 0, f"counted twice: the same {what} as holdings[{audit.seen[key]}]"
    audit.seen[key] = index
    return units, None


def _check_block_time(audit: _Audit, index: int, h: Mapping[str, Any], address: str,
                      token: str) -> str | None:
    """The holding's block is not after the snapshot's time, nor more than the maximum age
    before it; its time is noted for the report."""
    block = h["block"]
    when = audit.balances.block_time(h["chain"], address, token, block)
    if isinstance(when, str):
        return when
    if when is None:
        audit.notes[index] = "block time not checked (no block_time in --balances)"
        return None
    snapshot_time = parse_instant(audit.snap["time"])
    shown = format_instant(when)
    if when > snapshot_time:
        return (f"block {block} time {shown} is after the snapshot time {audit.snap['time']}: "
                "a later balance says nothing about the snapshot")
    age = snapshot_time - when
    if age.total_seconds() > audit.max_age:
        return (f"block {block} time {shown} is {format_duration(int(age.total_seconds()))} before "
                f"the snapshot time {audit.snap['time']}, more than --max-block-age "
                f"{format_duration(audit.max_age)}: the balance may have moved since")
    audit.notes[index] = f"block time {shown}"
    return None


def _check_onchain(audit: _Audit, index: int, h: Mapping[str, Any], units: int) -> str | None:
    address = evm_sig.normalize_address(h["address"])
    token = "" if h["token"] is None else evm_sig.normalize_address(h["token"])
    try:
        signer = evm_sig.recover_address(snapshot_challenge(audit.snap).encode("utf-8"),
                                         h["signature"])
    except evm_sig.AddressError as exc:
        return f"signature: {exc}"
    if signer != address:
        return (f"signature: recovers to {evm_sig.checksum_address(signer)}, not the holding's "
                "address (signed by another key, or for another snapshot)")
    if audit.tokens is None:
        return "asset not verified: no --tokens FILE saying which contract is which asset"
    listed = audit.tokens.get((h["chain"], token))
    if listed is None:
        return (f"asset not verified: {token or 'the native coin'} on {h['chain']} is not in "
                "--tokens")
    asset, chain_decimals = listed
    if asset != h["asset"]:
        return (f"wrong asset: --tokens lists {token or 'the native coin'} on {h['chain']} as "
                f"{asset}, the holding claims {h['asset']}")
    balance = audit.balances.balance(h["chain"], address, token, h["block"])
    if isinstance(balance, str):
        return balance
    fund_decimals = audit.decimals[h["asset"]]
    # claim <= balance, exactly: units / 10^fd <= balance / 10^cd
    if units * 10**chain_decimals > balance * 10**fund_decimals:
        return (f"balance at block {h['block']} is {format_amount(balance, chain_decimals)} "
                f"{h['asset']}, less than the {h['amount']} claimed")
    return _check_block_time(audit, index, h, address, token)


def _check_custodian(audit: _Audit, h: Mapping[str, Any]) -> str | None:
    snap = audit.snap
    statement = statement_text(snap["fund"], snap["log"]["size"], snap["log"]["root"],
                               snap["time"], h)
    return verify_custodian(statement, h, audit.custodians)


def verify_reserves(report: Report, snapshot: str, keys: tuple[str, ...], require: int,
                    rpc: tuple[str, ...], balances: str | None, tokens: str | None,
                    custodian_keys: tuple[str, ...],
                    max_block_age: int | None = None) -> None:
    """The `reserves` command (see the module docstring). `max_block_age`: seconds (default
    `DEFAULT_MAX_BLOCK_AGE`)."""
    max_age = parse_duration(DEFAULT_MAX_BLOCK_AGE) if max_block_age is None else max_block_age
    verifiers = load_verifiers(keys)
    custodians = {v.key_name: v for v in load_verifiers(custodian_keys, "--custodian-key",
                                                        required=False)}
    operators = {v.public_key for v in verifiers}
    for custodian in custodians.values():
        if custodian.public_key in operators:  # the operator would vouch for itself
            raise InputError(f"--custodian-key {custodian.key_name}: is the operator's own key "
                             "(--key); pin each custodian's key from the custodian")
    if rpc and balances is not None:
        raise InputError("give --rpc or --balances, not both")
    source = Balances(rpc=parse_rpc(rpc))
    if balances is not None:
        source.listed = load_balances(balances)
    token_list = None if tokens is None else load_tokens(tokens)
    snap = load_json(snapshot, "snapshot", "snapshot")
    report.ok("snapshot schema")
    check_signatures(report, snap, verifiers, require)
    check_snapshot_internal(report, snap)
    snapshot_figures(report, snap)
    holdings = snap.get("holdings")
    if holdings is None:
        raise report.fail("holdings", f"none: a {snap['format']} snapshot carries no proof of "
                                      "reserves (backstop-snapshot/2 does)")
    if not holdings:
        raise report.fail("holdings", "none listed: no reserve is proven")
    onchain = sum(1 for h in holdings if h["kind"] == "onchain")
    if onchain and not rpc and balances is None:
        raise InputError(f"the snapshot has {onchain} on-chain holding(s): give --rpc URL (your "
                         "own node) or --balances FILE")
    source.check_chains({h["chain"] for h in holdings if h["kind"] == "onchain"})
    audit = _Audit(snap, snapshot_decimals(snap), source, token_list, custodians, max_age)
    verified: dict[str, int] = dict.fromkeys(audit.decimals, 0)
    failures: list[str] = []
    for index, h in enumerate(holdings):
        name = f"holdings[{index}]"
        units, why = _common(audit, index, h)
        if why is None:
            why = (_check_onchain(audit, index, h, units) if h["kind"] == "onchain"
                   else _check_custodian(audit, h))
        if why is None:
            verified[h["asset"]] += units
            report.ok(name, _describe(h) + (": signature, asset and balance verified; "
                                            + audit.notes[index]
                                            if h["kind"] == "onchain"
                                            else ": custodian statement verified"))
        else:
            report.checks.append({"check": name, "ok": False, "detail": f"{_describe(h)}: {why}"})
            failures.append(f"{name}: {why}")
    ratios: dict[str, str | None] = {}
    for asset in sorted(audit.decimals):
        reserve = parse_amount(snap["reserves"][asset], audit.decimals[asset])
        have = verified[asset]
        shown = format_amount(have, audit.decimals[asset])
        ratios[asset] = None if reserve == 0 else format_decimal(Fraction(have, reserve), RATIO_PLACES)
        detail = (f"verified holdings {shown} vs reserve {snap['reserves'][asset]}"
                  + ("" if ratios[asset] is None else f" (ratio {ratios[asset]})"))
        if have >= reserve:
            report.ok(f"reserves.{asset}", detail)
        else:
            report.checks.append({"check": f"reserves.{asset}", "ok": False,
                                  "detail": detail + ": not covered"})
            failures.append(f"reserves.{asset}: {detail}: not covered")
    report.figures["reserve_ratio"] = ratios
    report.figures["verified_holdings"] = {a: format_amount(u, audit.decimals[a])
                                           for a, u in sorted(verified.items())}
    if failures:
        more = f" (and {len(failures) - 1} more failure(s) above)" if len(failures) > 1 else ""
        raise Failed(failures[0] + more)
