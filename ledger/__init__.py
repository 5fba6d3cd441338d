"""Backstop ledger: the operator's side of an exchange insurance fund.

Records exchange facts as immutable events, applies the versioned liquidation policy, keeps
projections, and publishes signed commitments that `auditor` verifies independently.

The Python API (what `backstop` does, from a program):

    from ledger import Ledger, Signer, import_file, publish, write_export
    ledger = Ledger("sqlite:///backstop.sqlite")      # or postgresql+psycopg://...
    import_file(ledger, "main", Path("facts.jsonl"))
    write_export(ledger, "main", Path("events.jsonl"), ledger.get_fund("main").log_size)
    signer = Signer.from_pem(Path("operator.key").read_bytes())
    publish(ledger, "main", signer, Path("public"), time="2026-01-01T00:00:00Z")
    balances(ledger, "main")["assets"]["USDT"]["balance"]   # what `backstop balances` shows

Layout: domain/ (pure rules), store/ (database), service/ (use cases), cli/, sim/; see
docs/LAYOUT.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auditor.verify.keys import Signer
    from ledger.service.application import Ledger
    from ledger.service.exporting import write_export
    from ledger.service.importer import import_file, restore_export
    from ledger.service.publish import publish
    from ledger.service.queries import balances

__version__ = "0.1.0"
__all__ = ["Ledger", "Signer", "balances", "import_file", "publish", "restore_export",
           "write_export"]

# Loaded on first use, so that importing one submodule (ledger.domain.waterfall, say) does not
# pull in the database layer, and no import cycle runs through this package.
_HOMES = {"Ledger": "ledger.service.application", "Signer": "auditor.verify.keys",
          "write_export": "ledger.service.exporting", "import_file": "ledger.service.importer",
          "restore_export": "ledger.service.importer", "publish": "ledger.service.publish",
          "balances": "ledger.service.queries"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'ledger' has no attribute {name!r}")
