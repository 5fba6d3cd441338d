"""Backstop auditor: verifies what an insurance-fund operator published.

Stands alone: it never imports `ledger`. It defines the wire formats (canonical bytes, Merkle
trees, signatures) that the ledger imports so both sides hash the same bytes.
"""

__version__ = "0.1.0"
