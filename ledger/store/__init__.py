"""Everything that talks SQL: URL handling, tables, event store and mapper, bulk writes, busy
handling, projections, log tiles, proof generation over them."""
