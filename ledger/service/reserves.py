"""Proof of reserves, the operator's side: the attestation round and its holdings.

`backstop reserves challenge` opens a round: the fund's current log size, its root and the
snapshot time, recorded in `backstop_reserve_rounds`. Every proof of control signs that
round's challenge (auditor.verify.holdings), which the next `snapshot publish` must then
publish exactly (same size, root and time) with the round's holdings, or refuse. Fixing the
snapshot before signing is what binds each signature to one snapshot; a wallet may take hours.
The contract: docs/RESERVES.md.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from coincurve import PrivateKey
from sqlalchemy import Connection, delete, select, update

from auditor.formats.schemas import first_def_error
from auditor.formats.wire import TIME, WireError, load_document, parse_amount
from auditor.verify import evm_sig
from auditor.verify.holdings import (
    challenge_text,
    holding_key,
    statement_text,
    verify_custodian,
    verify_onchain,
)
from auditor.verify.keys import Signer, Verifier
from ledger.domain.fund import utc_now
from ledger.service.application import Ledger
from ledger.store.busy import ConcurrentWriteError
from ledger.store.tables import published, reserve_rounds

__all__ = ["ReservesError", "Round", "add_holdings", "challenge", "close_round",
           "custodian_holding", "eth_address", "load_eth_key", "open_round", "read_round",
           "round_to_publish", "sign_challenge"]


class ReservesError(ValueError):
    """A reserves command cannot do what was asked (one line, exit 2)."""


@dataclass
class Round:
    """An open attestation round: the snapshot to be published, and the holdings so far."""

    fund: str
    log_size: int
    log_root: str
    time: str
    holdings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def challenge(self) -> str:
        """The text every proof of control signs."""
        return challenge_text(self.fund, self.log_size, self.log_root, self.time)

    def summary(self) -> dict[str, Any]:
        """For --json output."""
        return {"fund": self.fund, "log_size": self.log_size, "log_root": self.log_root,
                "time": self.time, "challenge": self.challenge, "holdings": len(self.holdings)}


def read_round(connection: Connection, fund: str) -> Round | None:
    """The fund's open round, or None."""
    row = connection.execute(select(reserve_rounds).where(reserve_rounds.c.fund == fund)).first()
    if row is None:
        return None
    return Round(row.fund, int(row.log_size), row.log_root, row.time, json.loads(row.holdings))


def open_round(ledger: Ledger, fund: str, time: str | None, new: bool) -> Round:
    """Open a round at the fund's current log size, or return the open one when it is at
    that size. An open round at another size, or at another time than `time`, is refused
    unless `new` (which replaces it and drops its holdings)."""
    if time is not None and not TIME.fullmatch(time):
        raise ReservesError(f"--time {time!r}: not an RFC 3339 UTC time (2020-03-12T01:00:00Z)")
    with ledger.transaction() as connection:
        ledger.lock_writes(connection)  # a concurrent `reserves add` must not write to it
        size = ledger.get_fund(fund).log_size
        current = read_round(connection, fund)
        if current is not None and not new:
            if current.log_size != size:
                raise ReservesError(
                    f"the open reserves round is at log size {current.log_size}, the log now has "
                    f"{size} events: run `backstop reserves challenge --new` (drops its "
                    f"{len(current.holdings)} holding(s))")
            if time is not None and time != current.time:
                raise ReservesError(
                    f"--time {time}: the open round's time is {current.time} (use --new to "
                    f"replace the round and drop its {len(current.holdings)} holding(s))")
            return current
        taken = connection.execute(select(published.c.log_size).where(
            published.c.fund == fund, published.c.log_size == size)).first()
        if taken is not None:  # its snapshot could never be published
            raise ReservesError(f"a snapshot at log size {size} is already published; a round "
                                "needs a log that has grown since (import more facts first)")
        root = ledger.log_tree(connection, fund).root(size).hex()
        opened = Round(fund, size, root, time or utc_now())
        connection.execute(delete(reserve_rounds).where(reserve_rounds.c.fund == fund))
        connection.execute(reserve_rounds.insert().values(
            fund=fund, log_size=size, log_root=root, time=opened.time, holdings="[]"))
        return opened


def current_round(ledger: Ledger, connection: Connection, fund: str) -> Round:
    """The open round, which must still be at the log's size."""
    found = read_round(connection, fund)
    if found is None:
        raise ReservesError("no reserves round is open: run `backstop reserves challenge` first")
    size = ledger.get_fund(fund).log_size
    if found.log_size != size:
        raise ReservesError(f"the open reserves round is at log size {found.log_size}, the log "
                            f"now has {size} events: run `backstop reserves challenge --new`")
    return found


def challenge(ledger: Ledger, fund: str) -> Round:
    """The open round (for signing)."""
    with ledger.transaction() as connection:
        return current_round(ledger, connection, fund)


# --- checking holdings -------------------------------------------------------------------


def check_holding(holding: Any, found: Round, decimals: Mapping[str, int],
                  custodian_keys: Mapping[str, Verifier]) -> str | None:
    """None if `holding` may be recorded in `found`; else ``field: reason``."""
    if not isinstance(holding, dict):
        return "(line): expected a JSON object (one holding)"
    kind = holding.get("kind")
    if kind not in ("onchain", "custodian"):
        return "kind: must be \"onchain\" or \"custodian\""
    error = first_def_error("snapshot", f"{kind}_holding", holding)
    if error is not None:
        return error
    asset = holding["asset"]
    if asset not in decimals:
        return f"asset: {asset} is not an asset of fund {found.fund} ({', '.join(sorted(decimals))})"
    try:
        units = parse_amount(holding["amount"], decimals[asset])
    except WireError as exc:
        return f"amount: {exc}"
    if units < 0:
        return f"amount: negative amount {holding['amount']}"
    if kind == "onchain":
        for name in ("address", "token"):
            if holding[name] is not None:
                try:
                    evm_sig.normalize_address(holding[name])
                except evm_sig.AddressError as exc:
                    return f"{name}: {exc}"
        try:
            verify_onchain(found.challenge, holding)
        except evm_sig.AddressError as exc:
            return f"signature: {exc}"
        return None
    if holding["key"] not in custodian_keys:
        return f"key: {holding['key']} was not given with --custodian-key"
    why = verify_custodian(statement_text(found.fund, found.log_size, found.log_root,
                                          found.time, holding), holding, custodian_keys)
    return None if why is None else f"signature: {why}"


def add_holdings(ledger: Ledger, fund: str, lines: Iterable[bytes],
                 custodian_keys: Iterable[Verifier]) -> Round:
    """Check every holding (one JSON object per line) and record them all in the open round,
    in one transaction; the first bad line raises ReservesError ``line N: field: reason`` and
    nothing is recorded.

    The transaction holds the fund's write lock from before it reads the round: a concurrent
    `reserves add` waits and then adds to what this one recorded (or, after the lock timeout,
    gives up with FundBusy); without it, both read the same round and the second write lost
    the first's holdings."""
    pinned = {key.key_name: key for key in custodian_keys}
    read = _Rereadable(lines)
    return ledger.retry(fund, lambda: _add_once(ledger, fund, read, pinned))


class _Rereadable:
    """`lines`, read lazily once and replayed from memory to a retried transaction."""

    def __init__(self, lines: Iterable[bytes]) -> None:
        self._source = iter(lines)
        self._seen: list[bytes] = []

    def __iter__(self) -> Iterator[bytes]:
        yield from self._seen
        for line in self._source:
            self._seen.append(line)
            yield line


def _add_once(ledger: Ledger, fund: str, lines: Iterable[bytes],
              pinned: Mapping[str, Verifier]) -> Round:
    with ledger.transaction() as connection:
        ledger.lock_writes(connection)
        found = current_round(ledger, connection, fund)
        decimals = dict(ledger.get_fund(fund).assets)
        seen = {holding_key(h): "the open round" for h in found.holdings}
        added = 0
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                holding = load_document(raw)
            except WireError as exc:
                raise ReservesError(f"line {number}: {exc}") from None
            why = check_holding(holding, found, decimals, pinned)
            if why is not None:
                raise ReservesError(f"line {number}: {why}")
            key = holding_key(holding)
            if key in seen:
                what = ("address" if key[0] == "onchain" else "account")
                raise ReservesError(f"line {number}: {what}: already listed ({seen[key]}); a "
                                    "holding is counted once")
            seen[key] = f"line {number}"
            found.holdings.append(holding)
            added += 1
        if not added:
            raise ReservesError("no holding given (the file is empty)")
        # Only the round that was read, as it was read: a version check behind the lock.
        written = connection.execute(update(reserve_rounds).where(
            reserve_rounds.c.fund == fund, reserve_rounds.c.log_size == found.log_size,
            reserve_rounds.c.log_root == found.log_root, reserve_rounds.c.time == found.time,
            reserve_rounds.c.holdings == json.dumps(found.holdings[:-added]))
            .values(holdings=json.dumps(found.holdings)))
        if written.rowcount != 1:
            raise ConcurrentWriteError(f"the reserves round of fund {fund!r} changed while "
                                       "holdings were added")
    return found


# --- signing (tests, the demo, and operators with a local key) -----------------------------


def load_eth_key(text: str) -> PrivateKey:
    """A secp256k1 private key written as 64 hex digits (optionally 0x-prefixed)."""
    body = text.strip()
    body = body[2:] if body[:2] in ("0x", "0X") else body
    if len(body) != 64:
        raise ReservesError("not 64 hex digits (a secp256k1 private key)")
    try:
        return PrivateKey(bytes.fromhex(body))
    except ValueError as exc:
        raise ReservesError(f"not a secp256k1 private key ({exc})") from None


def eth_address(key: PrivateKey) -> str:
    """The EIP-55 address of a private key."""
    return evm_sig.checksum_address(evm_sig.address_of(key.public_key))


def sign_challenge(key: PrivateKey, text: str) -> str:
    """EIP-191 personal_sign of `text`: 0x + r || s || v (v = 27/28)."""
    raw = key.sign_recoverable(evm_sig.personal_sign_hash(text.encode("utf-8")), hasher=None)
    return "0x" + (raw[:64] + bytes([raw[64] + 27])).hex()


def custodian_holding(found: Round, signer: Signer, asset: str, account: str, amount: str,
                      as_of: str | None) -> dict[str, Any]:
    """A custodian holding whose statement `signer` (the custodian's key) signs."""
    holding: dict[str, Any] = {"kind": "custodian", "asset": asset, "custodian": signer.name,
                               "account": account, "amount": amount,
                               "as_of": as_of or found.time, "key": signer.key_name}
    text = statement_text(found.fund, found.log_size, found.log_root, found.time, holding)
    holding["signature"] = base64.b64encode(signer.sign(text.encode("utf-8"))).decode()
    return holding


# --- publishing ------------------------------------------------------------------------------


def round_to_publish(connection: Connection, fund: str, size: int, root: str,
                     time: str | None) -> Round | None:
    """The open round a snapshot at `size` must publish (None: no round, publish /1).

    A round at another size or root, or a `time` other than the round's, is refused:
    its signatures name that size, root and time.
    """
    found = read_round(connection, fund)
    if found is None:
        return None
    if found.log_size != size or found.log_root != root:
        raise ReservesError(
            f"the open reserves round is at log size {found.log_size}, the log now has {size} "
            "events: its signatures would not match; run `backstop reserves challenge --new` "
            "and sign again")
    if time is not None and time != found.time:
        raise ReservesError(f"--time {time}: the open reserves round's time is {found.time}; "
                            "publish it at that time (omit --time)")
    return found


def close_round(connection: Connection, fund: str, published: list[dict[str, Any]]) -> None:
    """Delete the round a snapshot has just published (in the snapshot's transaction)."""
    found = read_round(connection, fund)
    if found is None or found.holdings != published:
        raise ReservesError("the reserves round changed while the snapshot was written; "
                            "publish again")
    connection.execute(delete(reserve_rounds).where(reserve_rounds.c.fund == fund))
