"""Merkle-sum account tree (schemas/README.md, "Account tree").

leaf = SHA-256(0x00 || nonce || SHA-256(account) || sums_bytes(sums)),
node = SHA-256(0x01 || hL || sums_bytes(L) || hR || sums_bytes(R)), node sums = L + R.
Every node commits to both children's sums separately, so a parent cannot claim, say,
max(L, R) instead of L + R (the "max attack" on plain sum trees). Components are unsigned
128-bit big-endian; negatives and overflow are errors. Leaves are sorted by leaf hash and the
shape is RFC 6962's.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import Self

from auditor.verify import merkle

__all__ = [
    "EMPTY_HASH",
    "SUM_LIMIT",
    "SumProofError",
    "SumTree",
    "account_leaf_hash",
    "account_nonce",
    "sums_bytes",
    "verify_sum_proof",
]

_sha256 = hashlib.sha256
SUM_LIMIT = 1 << 128
EMPTY_HASH = _sha256(b"").digest()

Sums = tuple[int, ...]
PathItem = tuple[bytes, Sums]


class SumProofError(ValueError):
    """An account (sum) proof does not verify; the message says why."""


def account_nonce(seed: bytes, account: str) -> bytes:
    """Per-account nonce: HMAC-SHA256(key = snapshot seed, msg = UTF-8 account id)."""
    return hmac.new(seed, account.encode("utf-8"), hashlib.sha256).digest()


def _check_sums(sums: Sequence[int], what: str = "sum") -> None:
    for pos, value in enumerate(sums):
        if not isinstance(value, int):
            # A ValueError on purpose: callers treat every bad sum as one kind of error.
            raise ValueError(f"{what} component {pos} is not an integer: {value!r}")  # noqa: TRY004
        if value < 0:
            raise ValueError(f"{what} component {pos} is negative: {value}")
        if value >= SUM_LIMIT:
            raise ValueError(f"{what} component {pos} overflows 128 bits: {value}")


def sums_bytes(sums: Sequence[int]) -> bytes:
    """Encode a sum vector as 16-byte big-endian unsigned integers; reject negatives/overflow."""
    try:
        # Unsigned to_bytes itself refuses negatives and values >= 2**128.
        return b"".join([v.to_bytes(16, "big") for v in sums])
    except (OverflowError, AttributeError, TypeError):
        _check_sums(sums)  # raises with the component and the reason
        raise


def account_leaf_hash(nonce: bytes, account: str, sums: Sequence[int]) -> bytes:
    """Leaf hash: SHA-256(0x00 || nonce || SHA-256(UTF-8 account) || sums_bytes(sums))."""
    account_hash = _sha256(account.encode("utf-8")).digest()
    return _sha256(b"\x00" + nonce + account_hash + sums_bytes(sums)).digest()


def _add(left: Sums, right: Sums) -> Sums:
    total = tuple(a + b for a, b in zip(left, right, strict=True))
    for pos, value in enumerate(total):
        if value >= SUM_LIMIT:
            raise ValueError(f"sum component {pos} overflows 128 bits: {value}")
    return total


def _node(h_left: bytes, b_left: bytes, h_right: bytes, b_right: bytes) -> bytes:
    return _sha256(b"\x01" + h_left + b_left + h_right + b_right).digest()


class SumTree:
    """A built account tree. Use `SumTree.build`.

    Internally a sum vector is one packed integer (components of 128 bits, first component
    most significant), so `packed.to_bytes(16 * width)` is exactly sums_bytes and adding two
    vectors is one integer addition; a carry across a 128-bit boundary is an overflow.
    """

    def __init__(
        self, hashes: list[list[bytes]], sums: list[list[int]], width: int, index: dict[str, int]
    ) -> None:
        self._hashes = hashes  # per level, bottom (sorted leaves) first
        self._sums = sums
        self.width = width
        self._index = index

    @classmethod
    def build(
        cls, entries: Iterable[tuple[str, bytes, Sequence[int]]], width: int | None = None
    ) -> Self:
        """Build from (account, nonce, sums) triples; `width` fixes the sum-vector length.

        Without `width` it is taken from the first entry (an empty tree then has no sums).
        Raises ValueError on a duplicate account, a wrong-length, negative or >= 2**128
        component, or a node sum that overflows 128 bits.
        """
        sha = _sha256
        leaves: list[tuple[bytes, int, str]] = []
        for account, nonce, sums in entries:
            if width is None:
                width = len(sums)
            if len(sums) != width:
                raise ValueError(f"account {account!r} has {len(sums)} sums, expected {width}")
            encoded = sums_bytes(sums)
            acct = sha(account.encode("utf-8")).digest()
            leaves.append(
                (sha(b"\x00" + nonce + acct + encoded).digest(), int.from_bytes(encoded), account)
            )
        width = width or 0
        leaves.sort()
        index = {account: pos for pos, (_, _, account) in enumerate(leaves)}
        if len(index) != len(leaves):
            seen: set[str] = set()
            for _, _, account in leaves:
                if account in seen:
                    raise ValueError(f"account {account!r} appears twice")
                seen.add(account)
        hashes = [[h for h, _, _ in leaves]]
        sums_levels = [[p for _, p, _ in leaves]]
        del leaves
        nbytes = 16 * width
        limit_shift = 128 * width
        carry_bits = sum(1 << (128 * k) for k in range(1, width))
        hrow, srow = hashes[0], sums_levels[0]
        # Pair level by level, carrying an odd last node up: the RFC 6962 shape.
        while len(hrow) > 1:
            nh: list[bytes] = []
            ns: list[int] = []
            hit, sit = iter(hrow), iter(srow)
            for hl, hr, sl, sr in zip(hit, hit, sit, sit, strict=False):
                total = sl + sr
                # Carries into a component boundary (or past the top) mean overflow.
                if (sl ^ sr ^ total) & carry_bits or total >> limit_shift:
                    raise ValueError("sum component overflows 128 bits")
                nh.append(sha(b"\x01" + hl + sl.to_bytes(nbytes) + hr + sr.to_bytes(nbytes)).digest())
                ns.append(total)
            if len(hrow) & 1:
                nh.append(hrow[-1])
                ns.append(srow[-1])
            hashes.append(nh)
            sums_levels.append(ns)
            hrow, srow = nh, ns
        return cls(hashes, sums_levels, width, index)

    def _unpack(self, packed: int) -> Sums:
        raw = packed.to_bytes(16 * self.width)
        return tuple(int.from_bytes(raw[k : k + 16]) for k in range(0, len(raw), 16))

    @property
    def count(self) -> int:
        """Number of accounts (leaves)."""
        return len(self._hashes[0])

    @property
    def root(self) -> bytes:
        """Root hash; SHA-256("") for the empty tree."""
        return self._hashes[-1][0] if self.count else EMPTY_HASH

    @property
    def sums(self) -> Sums:
        """Root sums (totals); all zeros for the empty tree."""
        return self._unpack(self._sums[-1][0]) if self.count else (0,) * self.width

    def index_of(self, account: str) -> int:
        """Leaf position of `account` (KeyError if absent)."""
        return self._index[account]

    def leaf(self, index: int) -> tuple[bytes, Sums]:
        """(leaf hash, sums) of the leaf at `index`."""
        return self._hashes[0][index], self._unpack(self._sums[0][index])


def verify_sum_proof(
    leaf_hash: bytes,
    leaf_sums: Sequence[int],
    index: int,
    count: int,
    path: Sequence[tuple[bytes, Sequence[int]]],
    root: bytes,
    total_sums: Sequence[int],
) -> None:
    """Recompute the root hash and totals from a leaf and its path; raise SumProofError if
    either differs, or if any input is malformed (wrong lengths, negative, overflow)."""
    if not 0 <= index < count:
        raise SumProofError(f"index {index} is beyond account count {count}")
    if len(leaf_hash) != 32:
        raise SumProofError(f"leaf hash is {len(leaf_hash)} bytes, expected 32")
    expected = sum(merkle.inclusion_shape(index, count))
    if len(path) != expected:
        raise SumProofError(f"path has {len(path)} entries, expected {expected}")
    width = len(leaf_sums)

    def node(left: tuple[bytes, Sums], right: tuple[bytes, Sums]) -> tuple[bytes, Sums]:
        return (_node(left[0], sums_bytes(left[1]), right[0], sums_bytes(right[1])),
                _add(left[1], right[1]))

    try:
        sums_bytes(leaf_sums)
        siblings: list[tuple[bytes, Sums]] = []
        for step, (p_hash, p_sums) in enumerate(path):
            if len(p_hash) != 32:
                raise SumProofError(f"path entry {step}: hash is {len(p_hash)} bytes, expected 32")
            if len(p_sums) != width:
                raise SumProofError(f"path entry {step}: {len(p_sums)} sums, expected {width}")
            sums_bytes(p_sums)
            siblings.append((bytes(p_hash), tuple(p_sums)))
        r, r_sums = merkle.root_from_path((bytes(leaf_hash), tuple(leaf_sums)), index, count,
                                          siblings, node)
    except SumProofError:
        raise
    except ValueError as exc:
        raise SumProofError(str(exc)) from exc
    if r != root:
        raise SumProofError(f"root mismatch: computed {r.hex()}, expected {bytes(root).hex()}")
    if r_sums != tuple(total_sums):
        raise SumProofError(f"totals mismatch: computed {list(r_sums)}, expected {list(total_sums)}")
