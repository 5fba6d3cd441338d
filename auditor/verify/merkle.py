"""RFC 6962 / RFC 9162 Merkle tree over SHA-256: the hasher, roots, streaming roots, and the
verification of inclusion and consistency proofs.

leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right); the tree over n leaves
splits at the largest power of two smaller than n. Proof generation is the operator's job and
lives in ledger/store/proofs.py; the auditor only verifies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = [
    "EMPTY_ROOT",
    "CompactRange",
    "NodeFn",
    "ProofError",
    "chain_border_right",
    "chain_inner",
    "chain_inner_right",
    "consistency_proof",
    "inclusion_shape",
    "largest_pow2_below",
    "leaf_hash",
    "node_hash",
    "perfect_root",
    "range_hash",
    "root_from_path",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

_sha256 = hashlib.sha256
HASH_SIZE = 32
EMPTY_ROOT: bytes = _sha256(b"").digest()


class ProofError(ValueError):
    """A Merkle proof does not verify; the message says why."""


# The hasher's home: leaf_hash and node_hash. perfect_root, _carry_root and CompactRange inline
# node_hash in their loops, where a call per node is a measurable share of building a tree of a
# million leaves (bench/merkle_build.py).
def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || data)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """Root of a perfect subtree whose bottom row is `hashes` (length a power of two)."""
    row = hashes
    while len(row) > 1:
        it = iter(row)
        row = [_sha256(b"\x01" + a + b).digest() for a, b in zip(it, it, strict=False)]
    return row[0]


def _carry_root(row: Sequence[bytes]) -> bytes:
    """MTH by pairing level by level, carrying an odd last node up unchanged (RFC 6962 shape)."""
    while len(row) > 1:
        it = iter(row)
        nxt = [_sha256(b"\x01" + a + b).digest() for a, b in zip(it, it, strict=False)]
        if len(row) & 1:
            nxt.append(row[-1])
        row = nxt
    return row[0]


_CHUNK = 256


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """Merkle Tree Hash (MTH) of a list of leaf hashes; EMPTY_ROOT for none.

    Works in aligned chunks of 256 (perfect subtrees, cache-friendly); the short tail chunk is
    the right-edge subtree. Repeating on the chunk roots gives exactly the RFC 6962 shape.
    """
    row = leaf_hashes
    if not row:
        return EMPTY_ROOT
    while len(row) > 1:
        full = len(row) - len(row) % _CHUNK
        nxt = [perfect_root(row[i : i + _CHUNK]) for i in range(0, full, _CHUNK)]
        if full < len(row):
            nxt.append(_carry_root(row[full:]))
        row = nxt
    return row[0]


# node(level, i): hash of the perfect subtree of height `level` over leaves [i * 2**level, ...)
NodeFn = Callable[[int, int], bytes]


def largest_pow2_below(n: int) -> int:
    """Largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_hash(start: int, end: int, node: NodeFn) -> bytes:
    """Hash of the RFC 6962 subtree over leaves [start, end), folded from perfect subtrees.

    `start` must be aligned to a power of two >= end - start (true for every subtree of an
    RFC 6962 tree). The subtree decomposes left to right into perfect subtrees whose sizes
    are the set bits of (end - start), largest first.
    """
    count = end - start
    if count <= 0:
        raise ValueError(f"empty range [{start}, {end})")
    parts: list[bytes] = []
    pos = start
    for level in range(count.bit_length() - 1, -1, -1):
        if count >> level & 1:
            parts.append(node(level, pos >> level))
            pos += 1 << level
    h = parts[-1]
    for left in reversed(parts[:-1]):
        h = node_hash(left, h)
    return h


def consistency_proof(old_size: int, new_size: int, node: NodeFn) -> list[bytes]:
    """RFC 9162 consistency proof (PROOF) between tree sizes 0 < old_size <= new_size, its
    hashes from `node` (the operator's log tree, or an auditor's tiles)."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"need 0 < old_size <= new_size, got {old_size} and {new_size}")
    tail: list[bytes] = []
    start, m, n, complete = 0, old_size, new_size, True
    while m != n:
        k = largest_pow2_below(n)
        if m <= k:
            tail.append(range_hash(start + k, start + n, node))
            n = k
        else:
            tail.append(range_hash(start, start + k, node))
            start, m, n, complete = start + k, m - k, n - k, False
    # Base case of SUBPROOF: the old subtree itself, unless it is the whole old tree.
    proof = [] if complete else [range_hash(start, start + n, node)]
    proof.extend(reversed(tail))
    return proof


class CompactRange:
    """Streaming MTH: keeps one perfect-subtree root per set bit of the size (O(log n))."""

    __slots__ = ("_stack", "size")

    def __init__(self) -> None:
        self._stack: list[bytes] = []
        self.size = 0

    def append(self, leaf_hash: bytes) -> None:
        """Add the next leaf hash, merging completed perfect subtrees."""
        stack = self._stack
        n = self.size
        h = leaf_hash
        # Each trailing 1-bit of the old size is a perfect subtree that now has a right sibling.
        while n & 1:
            h = _sha256(b"\x01" + stack.pop() + h).digest()
            n >>= 1
        stack.append(h)
        self.size += 1

    def _push(self, h: bytes, level: int) -> None:
        """Append the root of a perfect subtree of 2**level leaves; size must be aligned."""
        stack = self._stack
        n = self.size >> level
        while n & 1:
            h = _sha256(b"\x01" + stack.pop() + h).digest()
            n >>= 1
        stack.append(h)
        self.size += 1 << level

    def extend(self, leaf_hashes: Sequence[bytes]) -> None:
        """Append many leaf hashes in order (aligned 256-leaf chunks are hashed in bulk)."""
        total = len(leaf_hashes)
        i = 0
        while i < total and self.size % _CHUNK:
            self.append(leaf_hashes[i])
            i += 1
        while total - i >= _CHUNK:
            self._push(perfect_root(leaf_hashes[i : i + _CHUNK]), _CHUNK.bit_length() - 1)
            i += _CHUNK
        for h in leaf_hashes[i:]:
            self.append(h)

    def subtrees(self) -> list[bytes]:
        """The roots of the perfect subtrees it holds, largest first (one per set bit of size)."""
        return list(self._stack)

    @classmethod
    def restore(cls, size: int, subtrees: Sequence[bytes]) -> CompactRange:
        """The range of `size` leaves whose perfect-subtree roots are `subtrees` (largest first)."""
        if size < 0 or len(subtrees) != size.bit_count() or any(len(h) != 32 for h in subtrees):
            raise ValueError(f"a range of {size} leaves holds {max(size, 0).bit_count()} "
                             f"32-byte subtree hashes, not {len(subtrees)}")
        compact = cls()
        compact._stack = list(subtrees)
        compact.size = size
        return compact

    def root(self) -> bytes:
        """MTH of the leaves appended so far."""
        stack = self._stack
        if not stack:
            return EMPTY_ROOT
        h = stack[-1]
        for left in reversed(stack[:-1]):
            h = _sha256(b"\x01" + left + h).digest()
        return h


# -- the RFC 9162 verification chain, shared by inclusion, consistency and sum-tree paths -------
# As transparency-dev/merkle's proof/verify.go: a proof for leaf `index` splits into `inner`
# hashes below the point where the leaf's path leaves the tree's right edge, then `border`
# hashes on the right edge. `node` combines two values (hashes here; hash and sums for the
# account sum tree), so every proof type folds the same way.

_T = TypeVar("_T")


def inclusion_shape(index: int, size: int) -> tuple[int, int]:
    """(inner, border): proof hashes below the path's divergence from the right edge, and on it."""
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def chain_inner(seed: _T, proof: Sequence[_T], index: int, node: Callable[[_T, _T], _T]) -> _T:
    """Fold the inner proof values: bit i of `index` says on which side the i-th sibling is."""
    for i, sibling in enumerate(proof):
        seed = node(sibling, seed) if index >> i & 1 else node(seed, sibling)
    return seed


def chain_inner_right(seed: _T, proof: Sequence[_T], index: int,
                      node: Callable[[_T, _T], _T]) -> _T:
    """As chain_inner, but only the left siblings (the old tree of a consistency proof)."""
    for i, sibling in enumerate(proof):
        if index >> i & 1:
            seed = node(sibling, seed)
    return seed


def chain_border_right(seed: _T, proof: Sequence[_T], node: Callable[[_T, _T], _T]) -> _T:
    """Fold the border values: all of them are left siblings on the right edge."""
    for sibling in proof:
        seed = node(sibling, seed)
    return seed


def root_from_path(leaf: _T, index: int, size: int, proof: Sequence[_T],
                   node: Callable[[_T, _T], _T]) -> _T:
    """The root that an inclusion path for leaf `index` of `size` leads to (length checked
    by the caller: `sum(inclusion_shape(index, size))` values)."""
    inner, _ = inclusion_shape(index, size)
    return chain_border_right(chain_inner(leaf, proof[:inner], index, node), proof[inner:], node)


def _check_hashes(proof: Sequence[bytes]) -> None:
    for pos, h in enumerate(proof):
        if not isinstance(h, (bytes, bytearray)) or len(h) != HASH_SIZE:
            raise ProofError(f"proof hash {pos} is not {HASH_SIZE} bytes")


def _hex(h: bytes) -> str:
    return bytes(h).hex() or "(empty)"


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes] | None, root: bytes
) -> None:
    """Verify an RFC 9162 §2.1.3.2 inclusion proof; raise ProofError with the reason."""
    proof = list(proof or [])
    if index < 0 or size < 0:
        raise ProofError(f"negative index {index} or size {size}")
    if index >= size:
        raise ProofError(f"index {index} is beyond tree size {size}")
    if len(leaf_hash) != HASH_SIZE:
        raise ProofError(f"leaf hash is {len(leaf_hash)} bytes, expected {HASH_SIZE}")
    inner, border = inclusion_shape(index, size)
    if len(proof) != inner + border:
        raise ProofError(f"proof has {len(proof)} hashes, expected {inner + border}")
    _check_hashes(proof)
    r = root_from_path(bytes(leaf_hash), index, size, [bytes(p) for p in proof], node_hash)
    if r != root:
        raise ProofError(f"root mismatch: computed {_hex(r)}, expected {_hex(root)}")


def verify_consistency(
    old_size: int,
    new_size: int,
    proof: Sequence[bytes] | None,
    old_root: bytes,
    new_root: bytes,
) -> None:
    """Verify an RFC 9162 §2.1.4.2 consistency proof; raise ProofError with the reason."""
    proof = list(proof or [])
    if old_size < 0 or new_size < 0:
        raise ProofError(f"negative tree size {old_size} or {new_size}")
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == 0:
        # Every tree extends the empty tree: such a proof proves nothing, so it is refused.
        raise ProofError("consistency proof from the empty tree (old size 0) is not accepted")
    if old_size == new_size:
        if proof:
            raise ProofError(f"proof has {len(proof)} hashes, expected 0 for equal sizes")
        if old_root != new_root:
            raise ProofError(
                f"root mismatch: sizes are equal but roots differ ({_hex(old_root)} vs {_hex(new_root)})"
            )
        return
    # Expected length: the inclusion path of leaf old_size-1 in new_size, minus the levels
    # below the old tree's lowest perfect subtree, plus that subtree's root unless the old
    # tree is itself perfect (then old_root serves as the seed).
    shift = (old_size & -old_size).bit_length() - 1
    inner, border = inclusion_shape(old_size - 1, new_size)
    seeded = old_size == 1 << shift
    expected = (0 if seeded else 1) + inner - shift + border
    if len(proof) != expected:
        raise ProofError(f"proof has {len(proof)} hashes, expected {expected}")
    _check_hashes(proof)
    seed, rest = (bytes(old_root), proof) if seeded else (proof[0], proof[1:])
    inner -= shift
    mask = (old_size - 1) >> shift  # the old tree's last leaf, counted in perfect subtrees
    fr = chain_border_right(chain_inner_right(seed, rest[:inner], mask, node_hash),
                            rest[inner:], node_hash)
    sr = chain_border_right(chain_inner(seed, rest[:inner], mask, node_hash),
                            rest[inner:], node_hash)
    if fr != old_root:
        raise ProofError(f"old root mismatch: computed {_hex(fr)}, expected {_hex(old_root)}")
    if sr != new_root:
        raise ProofError(f"new root mismatch: computed {_hex(sr)}, expected {_hex(new_root)}")
