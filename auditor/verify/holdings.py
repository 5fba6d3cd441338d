"""The bytes a proof of reserves signs (docs/RESERVES.md, schemas/README.md "Holdings").

A challenge names the fund, the snapshot's log size and root, and its time, so a signature
made for one snapshot does not verify for another. A custodian's statement repeats them and
adds what the custodian attests. Both are UTF-8 lines joined by newlines with no trailing
newline (wallet screens and copy-paste drop one), shared by the operator (who prints and signs
them) and the auditor (who rebuilds them from the snapshot).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from auditor.verify import evm_sig
from auditor.verify.keys import Verifier

__all__ = ["CHALLENGE_TITLE", "STATEMENT_TITLE", "challenge_text", "holding_key",
           "snapshot_challenge", "statement_text", "verify_custodian", "verify_onchain"]

CHALLENGE_TITLE = "Backstop proof of reserves"
STATEMENT_TITLE = "Backstop custodian statement"


def _lines(title: str, fund: str, log_size: int, log_root: str, time: str) -> list[str]:
    return [title, f"fund: {fund}", f"log size: {log_size}", f"log root: {log_root}",
            f"time: {time}"]


def challenge_text(fund: str, log_size: int, log_root: str, time: str) -> str:
    """The challenge every on-chain holding's address signs (personal_sign)."""
    return "\n".join(_lines(CHALLENGE_TITLE, fund, log_size, log_root, time))


def snapshot_challenge(snapshot: Mapping[str, Any]) -> str:
    """The challenge of a snapshot document (its fund, log size, log root and time)."""
    return challenge_text(snapshot["fund"], snapshot["log"]["size"], snapshot["log"]["root"],
                          snapshot["time"])


def statement_text(fund: str, log_size: int, log_root: str, time: str,
                   holding: Mapping[str, Any]) -> str:
    """The statement a custodian signs (Ed25519) for a custodian holding."""
    return "\n".join([*_lines(STATEMENT_TITLE, fund, log_size, log_root, time),
                      f"custodian: {holding['custodian']}", f"account: {holding['account']}",
                      f"asset: {holding['asset']}", f"amount: {holding['amount']}",
                      f"as of: {holding['as_of']}"])


def holding_key(holding: Mapping[str, Any]) -> tuple[str, ...]:
    """What may be counted once: (chain, address, token) lowercased for an on-chain holding,
    (custodian, account, asset) for a custodian one. Needs a well-formed address."""
    if holding["kind"] == "onchain":
        token = holding["token"]
        return ("onchain", holding["chain"], evm_sig.normalize_address(holding["address"]),
                "" if token is None else evm_sig.normalize_address(token))
    return ("custodian", holding["custodian"], holding["account"], holding["asset"])


def verify_onchain(challenge: str, holding: Mapping[str, Any]) -> None:
    """The holding's signature recovers to its address for `challenge` (AddressError if not)."""
    address = evm_sig.normalize_address(holding["address"])
    if holding["token"] is not None:
        evm_sig.normalize_address(holding["token"])
    signer = evm_sig.recover_address(challenge.encode("utf-8"), holding["signature"])
    if signer != address:
        raise evm_sig.AddressError(
            f"signature recovers to {evm_sig.checksum_address(signer)}, not the holding's "
            "address (signed by another key, or for another snapshot)")


def verify_custodian(statement: str, holding: Mapping[str, Any],
                     pinned: Mapping[str, Verifier]) -> str | None:
    """None if the statement's signature verifies by the pinned key it names (whose name must
    be the holding's custodian); otherwise why not."""
    key = pinned.get(holding["key"])
    if key is None:
        return f"key {holding['key']} is not pinned (--custodian-key)"
    if key.name != holding["custodian"]:
        return f"key {holding['key']} is not the key of custodian {holding['custodian']}"
    try:
        raw = base64.b64decode(holding["signature"], validate=True)
    except (binascii.Error, ValueError):
        return "signature is not base64"
    if not key.verify(statement.encode("utf-8"), raw):
        return "statement signature does not verify (for this snapshot)"
    return None
