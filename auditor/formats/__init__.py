"""The wire kernel that ledger/ may import: amounts, canonical JSON, schema loading, clipping."""
