"""Verification: Merkle inclusion and consistency, sum-tree paths, signed notes and keys."""
