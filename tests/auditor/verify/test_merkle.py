"""auditor.verify.merkle against the published transparency-dev vectors and a naive reference MTH."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.verify import merkle
from auditor.verify.merkle import (
    EMPTY_ROOT,
    CompactRange,
    ProofError,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from ledger.store import proofs
from ledger.store.proofs import consistency_proof_from_leaves, inclusion_proof_from_leaves

# transparency-dev/merkle's vectors, copied here with their LICENSE (see README.md there).
VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "rfc6962"


def _vector_files(kind: str) -> list[str]:
    # Collected at import: a missing folder must fail the run, not silently skip it.
    folder = VECTORS / kind
    if not folder.is_dir():
        return ["<missing vectors folder>"]
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.json"))


def _load(kind: str, rel: str) -> dict:
    path = VECTORS / kind / rel
    assert path.is_file(), f"vector file missing: {path}"
    return json.loads(path.read_text())


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _proof(v: dict) -> list[bytes]:
    return [_b64(p) for p in (v["proof"] or [])]


def test_vector_folders_present_and_populated() -> None:
    assert VECTORS.is_dir(), f"missing {VECTORS}"
    assert len(_vector_files("inclusion")) > 50
    assert len(_vector_files("consistency")) > 50


@pytest.mark.parametrize("rel", _vector_files("inclusion"))
def test_inclusion_vector(rel: str) -> None:
    v = _load("inclusion", rel)
    args = (_b64(v["leafHash"]), v["leafIdx"], v["treeSize"], _proof(v), _b64(v["root"]))
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("rel", _vector_files("consistency"))
def test_consistency_vector(rel: str) -> None:
    v = _load("consistency", rel)
    args = (v["size1"], v["size2"], _proof(v), _b64(v["root1"]), _b64(v["root2"]))
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


REFERENCE_LEAVES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
              "606162636465666768696a6b6c6d6e6f"]
]
REFERENCE_ROOTS = {
    0: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}


@pytest.mark.parametrize("size", sorted(REFERENCE_ROOTS))
def test_reference_tree_roots(size: int) -> None:
    hashes = [leaf_hash(d) for d in REFERENCE_LEAVES[:size]]
    assert root_of(hashes).hex() == REFERENCE_ROOTS[size]
    cr = CompactRange()
    cr.extend(hashes)
    assert cr.root().hex() == REFERENCE_ROOTS[size]


def test_primitives_by_hand() -> None:
    assert EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert leaf_hash(b"ab") == hashlib.sha256(b"\x00ab").digest()
    assert node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()


def _naive_mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH, written straight from the definition (recursive split)."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + _naive_mth(leaves[:k]) + _naive_mth(leaves[k:])).digest()


def _leaves(n: int) -> list[bytes]:
    return [hashlib.sha256(b"\x00" + i.to_bytes(4, "big")).digest() for i in range(n)]


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=3000))
def test_root_matches_naive(n: int) -> None:
    leaves = _leaves(n)
    assert root_of(leaves) == _naive_mth(leaves)


def test_compact_range_every_prefix() -> None:
    leaves = _leaves(600)
    cr = CompactRange()
    assert cr.root() == EMPTY_ROOT and cr.size == 0
    for i, h in enumerate(leaves):
        cr.append(h)
        assert cr.size == i + 1
        assert cr.root() == _naive_mth(leaves[: i + 1])


def test_all_generated_proofs_verify_up_to_40() -> None:
    leaves = _leaves(40)
    for n in range(1, 41):
        tree = leaves[:n]
        root = _naive_mth(tree)
        for i in range(n):
            verify_inclusion(tree[i], i, n, inclusion_proof_from_leaves(i, tree), root)
        for m in range(1, n + 1):
            proof = consistency_proof_from_leaves(m, tree)
            verify_consistency(m, n, proof, _naive_mth(tree[:m]), root)


def test_known_inclusion_proof_shape() -> None:
    # RFC 9162 example tree of 7 leaves (a..g): the proof for d (index 3) is [c, H(a,b), H(e,f,g)].
    leaves = _leaves(7)
    a, b, c, d, e, f, g = leaves
    want = [c, node_hash(a, b), node_hash(node_hash(e, f), g)]
    assert inclusion_proof_from_leaves(3, leaves) == want
    # Consistency 3 -> 7 is [c, d, H(a,b), H(e,f,g)] (RFC 6962 §2.1.3 example).
    assert consistency_proof_from_leaves(3, leaves) == [c, d, node_hash(a, b), node_hash(node_hash(e, f), g)]
    # 4 -> 7: old tree is a complete subtree, proof is [H(e,f,g)] only.
    assert consistency_proof_from_leaves(4, leaves) == [node_hash(node_hash(e, f), g)]


def test_error_messages() -> None:
    leaves = _leaves(4)
    root = _naive_mth(leaves)
    with pytest.raises(ProofError, match="index 5 is beyond tree size 4"):
        verify_inclusion(leaves[0], 5, 4, [], root)
    proof = inclusion_proof_from_leaves(1, leaves)
    with pytest.raises(ProofError, match="proof has 3 hashes, expected 2"):
        verify_inclusion(leaves[1], 1, 4, proof + [leaves[0]], root)
    with pytest.raises(ProofError, match="root mismatch: computed"):
        verify_inclusion(leaves[2], 1, 4, proof, root)
    with pytest.raises(ProofError, match="old size 4 is larger"):
        verify_consistency(4, 3, [], root, root)


def test_tampered_generated_proofs_fail() -> None:
    leaves = _leaves(13)
    root = _naive_mth(leaves)
    proof = inclusion_proof_from_leaves(6, leaves)
    for k in range(len(proof)):
        bad = list(proof)
        bad[k] = bytes([bad[k][0] ^ 1]) + bad[k][1:]
        with pytest.raises(ProofError):
            verify_inclusion(leaves[6], 6, 13, bad, root)
    cproof = consistency_proof_from_leaves(5, leaves)
    for k in range(len(cproof)):
        bad = list(cproof)
        bad[k] = bytes([bad[k][0] ^ 1]) + bad[k][1:]
        with pytest.raises(ProofError):
            verify_consistency(5, 13, bad, _naive_mth(leaves[:5]), root)


def test_generators_reject_bad_arguments() -> None:
    with pytest.raises(ValueError):
        proofs.inclusion_proof_from_leaves(3, _leaves(3))
    with pytest.raises(ValueError):
        proofs.consistency_proof_from_leaves(0, _leaves(3))


@pytest.mark.parametrize("n", [255, 256, 257, 511, 513, 65537])
def test_root_across_chunk_boundaries(n: int) -> None:
    leaves = _leaves(n)
    want = _naive_mth(leaves)
    cr = CompactRange()
    cr.extend(leaves)
    assert root_of(leaves) == want and cr.root() == want


def test_compact_range_extend_uneven_chunks() -> None:
    leaves = _leaves(2000)
    cr = CompactRange()
    pos = 0
    for chunk in [1, 255, 256, 257, 3, 512, 700, 16]:
        cr.extend(leaves[pos : pos + chunk])
        pos += chunk
        assert cr.size == pos
        assert cr.root() == _naive_mth(leaves[:pos])
