"""Backstop auditor: verifies what an insurance-fund operator published.

Stands alone: it never imports `ledger`. It defines the wire formats (canonical bytes, Merkle
trees, signatures) that the ledger imports so both sides hash the same bytes.

The Python API, one call per check; each returns a `Report` whose `verified` is True only if
every check ran and passed (`exit_code` is what `backstop-audit` would exit with, `as_text()`
what it would print). `keys` are pinned verifier keys (`name+id+key`) or files holding one.

    import auditor
    keys = ["example.com/backstop+1a2b3c4d+AbC..."]
    auditor.verify_snapshot("public/snapshot.json", keys).verified
    auditor.replay_export("public/events.jsonl", "public/snapshot.json", keys).verified
    auditor.verify_event_proof("proof.json", "public/snapshot.json", keys).verified
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when called: `import auditor` stays cheap
    from auditor.report import Report

__version__ = "0.1.0"
__all__ = ["replay_export", "verify_account_proof", "verify_event_proof", "verify_snapshot"]

PathLike = str | Path


def verify_snapshot(snapshot: PathLike, keys: Iterable[str], *, require: int = 1) -> Report:
    """Check a snapshot's schema, signatures (`require` distinct valid ones) and arithmetic."""
    from auditor import checks

    return checks.execute("snapshot", checks.verify_snapshot, snapshot=str(snapshot),
                          keys=tuple(keys), require=require)


def replay_export(events: PathLike, snapshot: PathLike, keys: Iterable[str], *,
                  require: int = 1, seed: PathLike | None = None,
                  skip_accounts: bool = False) -> Report:
    """Replay an event export: re-derive every outcome, balance, total and both roots, and
    compare them with the signed snapshot (`seed`: the account-seed file, default beside it)."""
    from auditor import checks

    return checks.execute("replay", checks.verify_replay, events=str(events),
                          snapshot=str(snapshot), keys=tuple(keys), require=require,
                          seed=None if seed is None else str(seed), skip_accounts=skip_accounts)


def verify_event_proof(proof: PathLike, snapshot: PathLike, keys: Iterable[str], *,
                       require: int = 1) -> Report:
    """Check an event inclusion proof (`backstop prove event`) against a signed snapshot."""
    from auditor import checks

    return checks.execute("event", checks.verify_event, proof=str(proof),
                          snapshot=str(snapshot), keys=tuple(keys), require=require)


def verify_account_proof(proof: PathLike, snapshot: PathLike, keys: Iterable[str], *,
                         require: int = 1) -> Report:
    """Check an account's sum-tree proof (`backstop prove account`) against a signed snapshot."""
    from auditor import checks

    return checks.execute("account", checks.verify_account, proof=str(proof),
                          snapshot=str(snapshot), keys=tuple(keys), require=require)
