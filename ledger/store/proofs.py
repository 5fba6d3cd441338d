"""Proof generation, the operator's side: RFC 9162 inclusion and consistency proofs for the
log, and account paths in the sum tree (`ProvingSumTree`).

Works on a `node(level, i)` callback returning the hash of the *perfect* subtree of height
`level` covering leaves [i * 2**level, (i + 1) * 2**level), so storage only ever keeps perfect
subtrees (they never change once complete, see ledger.store.logtree); the hashes of
non-perfect subtrees on the right edge are folded from perfect ones here. The hasher is the
auditor's (auditor.verify.merkle), so both sides hash the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from auditor.verify.merkle import (
    NodeFn,
    consistency_proof,
    largest_pow2_below,
    perfect_root,
    range_hash,
)
from auditor.verify.sumtree import PathItem, SumTree


def inclusion_proof(index: int, size: int, node: NodeFn) -> list[bytes]:
    """RFC 9162 inclusion proof (PATH) for leaf `index` in a tree of `size` leaves."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is outside tree size {size}")
    path: list[bytes] = []
    start, n, m = 0, size, index
    while n > 1:
        k = largest_pow2_below(n)
        if m < k:
            path.append(range_hash(start + k, start + n, node))
            n = k
        else:
            path.append(range_hash(start, start + k, node))
            start, m, n = start + k, m - k, n - k
    path.reverse()  # collected top-down; proofs list siblings from the leaf upwards
    return path


def _leaves_node_fn(leaf_hashes: Sequence[bytes]) -> NodeFn:
    """A node callback over an in-memory list of leaf hashes."""

    def node(level: int, i: int) -> bytes:
        lo = i << level
        hi = lo + (1 << level)
        if hi > len(leaf_hashes):
            raise ValueError(f"perfect subtree ({level}, {i}) is beyond {len(leaf_hashes)} leaves")
        return perfect_root(leaf_hashes[lo:hi])

    return node


def inclusion_proof_from_leaves(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Inclusion proof for leaf `index` in the tree over all of `leaf_hashes`."""
    return inclusion_proof(index, len(leaf_hashes), _leaves_node_fn(leaf_hashes))


def consistency_proof_from_leaves(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Consistency proof from the first `old_size` leaves to all of `leaf_hashes`."""
    return consistency_proof(old_size, len(leaf_hashes), _leaves_node_fn(leaf_hashes))


class ProvingSumTree(SumTree):
    """The account sum tree (auditor.verify.sumtree builds it, so both sides hash alike) with
    path generation, which only the operator needs."""

    def proof(self, index: int) -> list[PathItem]:
        """Siblings (hash, sums) from the leaf upwards, as in an RFC 9162 inclusion proof."""
        if not 0 <= index < self.count:
            raise IndexError(f"index {index} is outside tree of {self.count} accounts")
        path: list[PathItem] = []
        pos = index
        for hrow, srow in zip(self._hashes[:-1], self._sums[:-1], strict=False):
            sibling = pos ^ 1
            if sibling < len(hrow):  # no sibling: this node was carried up unchanged
                path.append((hrow[sibling], self._unpack(srow[sibling])))
            pos >>= 1
        return path
