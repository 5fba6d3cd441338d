"""Backstop ledger: the operator's side of an exchange insurance fund.

Records exchange facts as immutable events, applies the versioned liquidation policy, keeps
projections, and publishes signed commitments that `auditor` verifies independently.
"""

__version__ = "0.1.0"
