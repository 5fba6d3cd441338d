"""Verification: Merkle inclusion and consistency, sum-tree paths, signed notes and keys, a
tiled log's tiles and bundles, account-proof shards."""
