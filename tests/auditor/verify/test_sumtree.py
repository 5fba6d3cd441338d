"""auditor.verify.sumtree: hand-computed roots, proofs, tampering and the max attack."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from auditor.verify.sumtree import (
    SumProofError,
    account_leaf_hash,
    account_nonce,
    sums_bytes,
    verify_sum_proof,
)
from ledger.store.proofs import ProvingSumTree

SEED = bytes(range(32))


def H(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def enc(*values: int) -> bytes:
    return b"".join(v.to_bytes(16, "big") for v in values)


def hand_leaf(account: str, sums: tuple[int, ...]) -> bytes:
    nonce = hmac.new(SEED, account.encode(), hashlib.sha256).digest()
    return H(b"\x00" + nonce + H(account.encode()) + enc(*sums))


def entries(accounts: dict[str, tuple[int, ...]]) -> list[tuple[str, bytes, tuple[int, ...]]]:
    return [(a, account_nonce(SEED, a), s) for a, s in accounts.items()]


def test_primitives_by_hand() -> None:
    assert account_nonce(SEED, "alice") == hmac.new(SEED, b"alice", hashlib.sha256).digest()
    assert sums_bytes([1, 2**128 - 1]) == b"\x00" * 15 + b"\x01" + b"\xff" * 16
    assert account_leaf_hash(account_nonce(SEED, "bob"), "bob", [5, 0, 7]) == hand_leaf("bob", (5, 0, 7))


def test_empty_tree() -> None:
    tree = ProvingSumTree.build([], width=3)
    assert tree.root == H(b"") and tree.sums == (0, 0, 0) and tree.count == 0


def test_one_leaf() -> None:
    tree = ProvingSumTree.build(entries({"alice": (1, 2, 3)}))
    assert tree.root == hand_leaf("alice", (1, 2, 3))
    assert tree.sums == (1, 2, 3) and tree.count == 1 and tree.proof(0) == []


def test_two_leaves_sorted_by_hash() -> None:
    a, b = hand_leaf("alice", (1, 0, 0)), hand_leaf("bob", (0, 5, 9))
    sa, sb = enc(1, 0, 0), enc(0, 5, 9)
    (lo, slo), (hi, shi) = sorted([(a, sa), (b, sb)])
    tree = ProvingSumTree.build(entries({"alice": (1, 0, 0), "bob": (0, 5, 9)}))
    assert tree.root == H(b"\x01" + lo + slo + hi + shi)
    assert tree.sums == (1, 5, 9)
    assert tree.index_of("alice") == (0 if a < b else 1)


def test_three_leaves_rfc6962_shape() -> None:
    accounts = {"alice": (1, 2, 3), "bob": (10, 20, 30), "carol": (100, 200, 300)}
    leaves = sorted((hand_leaf(k, v), enc(*v), v) for k, v in accounts.items())
    (h0, b0, s0), (h1, b1, s1), (h2, b2, s2) = leaves
    left = H(b"\x01" + h0 + b0 + h1 + b1)
    left_sums = tuple(x + y for x, y in zip(s0, s1))
    root = H(b"\x01" + left + enc(*left_sums) + h2 + b2)
    tree = ProvingSumTree.build(entries(accounts))
    assert tree.root == root and tree.sums == (111, 222, 333) and tree.count == 3


def _accounts(n: int) -> dict[str, tuple[int, ...]]:
    return {f"acct-{i}": (i, (i * 7) % 13, (i * i) % 1000) for i in range(n)}


def test_every_proof_verifies_up_to_50() -> None:
    for n in range(1, 51):
        accounts = _accounts(n)
        tree = ProvingSumTree.build(entries(accounts))
        totals = tuple(sum(col) for col in zip(*accounts.values()))
        assert tree.sums == totals
        for account, sums in accounts.items():
            i = tree.index_of(account)
            leaf = hand_leaf(account, sums)
            verify_sum_proof(leaf, sums, i, n, tree.proof(i), tree.root, totals)


@pytest.fixture
def proof_case():
    accounts = _accounts(11)
    tree = ProvingSumTree.build(entries(accounts))
    i = tree.index_of("acct-4")
    return hand_leaf("acct-4", accounts["acct-4"]), accounts["acct-4"], i, tree


def _flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 1]) + h[1:]


def test_tampering_fails(proof_case) -> None:
    leaf, sums, i, tree = proof_case
    path = tree.proof(i)
    verify_sum_proof(leaf, sums, i, 11, path, tree.root, tree.sums)
    for k, (h, s) in enumerate(path):
        bad_hash = path[:k] + [(_flip(h), s)] + path[k + 1:]
        with pytest.raises(SumProofError, match="root mismatch"):
            verify_sum_proof(leaf, sums, i, 11, bad_hash, tree.root, tree.sums)
        bumped = (s[0] + 1,) + s[1:]
        bad_sum = path[:k] + [(h, bumped)] + path[k + 1:]
        with pytest.raises(SumProofError):
            verify_sum_proof(leaf, sums, i, 11, bad_sum, tree.root, tree.sums)
    with pytest.raises(SumProofError):
        verify_sum_proof(leaf, (sums[0] + 1,) + sums[1:], i, 11, path, tree.root, tree.sums)
    with pytest.raises(SumProofError, match="totals mismatch"):
        verify_sum_proof(leaf, sums, i, 11, path, tree.root, (tree.sums[0] - 1,) + tree.sums[1:])
    with pytest.raises(SumProofError, match="path has"):
        verify_sum_proof(leaf, sums, i, 11, path[:-1], tree.root, tree.sums)
    with pytest.raises(SumProofError, match="beyond"):
        verify_sum_proof(leaf, sums, 11, 11, path, tree.root, tree.sums)


def test_max_attack_cannot_verify() -> None:
    # A cheating operator builds a 2-leaf tree whose root claims max(L, R) rather than L + R,
    # hiding the smaller liability. Because the node hash binds both children's sums, the
    # claimed totals can never be reproduced by a verifier that adds them.
    a, b = hand_leaf("alice", (0, 70, 0)), hand_leaf("bob", (0, 30, 0))
    root = H(b"\x01" + a + enc(0, 70, 0) + b + enc(0, 30, 0))
    with pytest.raises(SumProofError, match="totals mismatch"):
        verify_sum_proof(a, (0, 70, 0), 0, 2, [(b, (0, 30, 0))], root, (0, 70, 0))
    # Lying about the sibling's sum to make the addition match breaks the hash instead.
    with pytest.raises(SumProofError, match="root mismatch"):
        verify_sum_proof(a, (0, 70, 0), 0, 2, [(b, (0, 0, 0))], root, (0, 70, 0))
    # Negative sibling sums (to cancel a liability) are rejected outright.
    with pytest.raises(SumProofError, match="negative"):
        verify_sum_proof(a, (0, 70, 0), 0, 2, [(b, (0, -30, 0))], root, (0, 40, 0))


def test_negative_and_overflow_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        sums_bytes([-1])
    with pytest.raises(ValueError, match="overflows"):
        sums_bytes([2**128])
    with pytest.raises(ValueError, match="negative"):
        ProvingSumTree.build(entries({"a": (-1,)}))
    with pytest.raises(ValueError, match="overflows"):
        ProvingSumTree.build(entries({"a": (2**128,)}))
    # Each component fits, but the parent's sum would not.
    with pytest.raises(ValueError, match="overflows"):
        ProvingSumTree.build(entries({"a": (2**127,), "b": (2**127,)}))
    ProvingSumTree.build(entries({"a": (2**127,), "b": (2**127 - 1,)}))  # exactly the limit - 1


def test_duplicate_account_and_width_mismatch() -> None:
    with pytest.raises(ValueError, match="twice"):
        ProvingSumTree.build([("a", b"n" * 32, (1,)), ("a", b"m" * 32, (1,))])
    with pytest.raises(ValueError, match="expected 2"):
        ProvingSumTree.build([("a", b"n" * 32, (1, 2)), ("b", b"m" * 32, (1,))])


def test_overflow_detected_in_every_component_position() -> None:
    top = 2**128 - 1
    for pos in range(3):
        big = tuple(2**127 if k == pos else 0 for k in range(3))
        with pytest.raises(ValueError, match="overflows"):
            ProvingSumTree.build(entries({"a": big, "b": big}))
    # Components at the limit next to each other do not interfere.
    tree = ProvingSumTree.build(entries({"a": (top, 0, top), "b": (0, top, 0)}))
    assert tree.sums == (top, top, top)
