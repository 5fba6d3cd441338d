"""ledger.store.logtree on SQLite (and PostgreSQL when BACKSTOP_TEST_PG_URL is set)."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest
import sqlalchemy as sa

from auditor.verify.merkle import EMPTY_ROOT, root_of, verify_consistency, verify_inclusion
from ledger.store import logtree
from ledger.store.tables import log_tiles, metadata

_BACKENDS = ["sqlite"] + ([os.environ["BACKSTOP_TEST_PG_URL"]] if os.environ.get("BACKSTOP_TEST_PG_URL") else [])


@pytest.fixture(params=_BACKENDS, ids=lambda p: "sqlite" if p == "sqlite" else "postgresql")
def engine(request, tmp_path):
    if request.param == "sqlite":
        eng = sa.create_engine(f"sqlite:///{tmp_path / 'log.db'}")
    else:
        eng = sa.create_engine(request.param)
    log_tiles.create(eng, checkfirst=True)  # only our table: others own the rest of metadata
    yield eng
    eng.dispose()


@pytest.fixture
def fund(engine):
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    with engine.begin() as conn:
        LogTree(conn, name).delete()


def _leaves(n: int, start: int = 0) -> list[bytes]:
    return [hashlib.sha256(b"\x00" + i.to_bytes(8, "big")).digest() for i in range(start, n)]


_RECOMPUTE = {"on": False}


@pytest.fixture(autouse=True, params=["stored-leaves", "leaves-from-log"])
def leaf_mode(request):
    """Every test runs twice: bottom tiles stored, and bottom tiles recomputed from the log
    (the ledger's mode; the log here is `_leaves`)."""
    _RECOMPUTE["on"] = request.param == "leaves-from-log"
    yield request.param
    _RECOMPUTE["on"] = False


def LogTree(conn, fund):  # noqa: N802 - stands in for the class in both modes
    source = (lambda start, end: _leaves(end, start)) if _RECOMPUTE["on"] else None
    return logtree.LogTree(conn, fund, leaves=source)


def _naive_mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 MTH straight from the recursive definition (independent of auditor.verify.merkle)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _naive_mth(leaves[:k]) + _naive_mth(leaves[k:])).digest()


CHUNKS = [1, 255, 256, 257, 1000, 3, 65536 - 1768, 1, 300]  # crosses 256 and 65536 boundaries


def test_metadata_defines_table() -> None:
    assert metadata.tables["log_tiles"] is log_tiles
    assert [c.name for c in log_tiles.primary_key.columns] == ["fund", "level", "idx"]


def test_uneven_chunks_match_reference(engine, fund) -> None:
    total = sum(CHUNKS)
    leaves = _leaves(total)
    with engine.begin() as conn:
        tree = LogTree(conn, fund)
        assert tree.size() == 0 and tree.root() == EMPTY_ROOT
    pos = 0
    for chunk in CHUNKS:
        with engine.begin() as conn:  # one transaction per batch, as the ledger does
            tree = LogTree(conn, fund)
            tree.append(leaves[pos : pos + chunk])
            pos += chunk
            assert tree.size() == pos
            assert tree.root() == root_of(leaves[:pos])
    with engine.connect() as conn:  # every historical size, from a fresh connection
        tree = LogTree(conn, fund)
        sizes = {1, 2, 255, 256, 257, 511, 512, 513, 1769, 1772, 65535, 65536, 65537, total}
        for n in sorted(sizes):
            assert tree.root(n) == root_of(leaves[:n]), n
        for n in (1, 3, 256, 257, 1000):  # independent check on small sizes
            assert tree.root(n) == _naive_mth(leaves[:n])
        bottom = 1 if _RECOMPUTE["on"] else (total + 255) // 256  # only the edge tile
        assert conn.execute(sa.select(sa.func.count()).select_from(log_tiles).where(log_tiles.c.fund == fund)).scalar() == (
            bottom + (total // 256 + 255) // 256 + 1
        )


def test_proofs_from_db_verify(engine, fund) -> None:
    leaves = _leaves(1300)
    with engine.begin() as conn:
        LogTree(conn, fund).append(leaves[:700])
    with engine.begin() as conn:
        LogTree(conn, fund).append(leaves[700:])
    with engine.connect() as conn:
        tree = LogTree(conn, fund)
        for n in (1, 2, 5, 256, 257, 700, 1024, 1300):
            root = _naive_mth(leaves[:n]) if n <= 300 else root_of(leaves[:n])
            for i in {0, n // 3, n // 2, n - 1}:
                verify_inclusion(leaves[i], i, n, tree.inclusion_proof(i, n), root)
            for m in {1, n // 2 or 1, max(1, n - 1), n}:
                verify_consistency(m, n, tree.consistency_proof(m, n), root_of(leaves[:m]), root)
        with pytest.raises(ValueError):
            tree.inclusion_proof(1300, 1300)
        with pytest.raises(ValueError):
            tree.root(1301)


def test_exhaustive_small_proofs(engine, fund) -> None:
    leaves = _leaves(40)
    with engine.begin() as conn:
        tree = LogTree(conn, fund)
        for h in leaves:
            tree.append([h])
        for n in range(1, 41):
            root = _naive_mth(leaves[:n])
            assert tree.root(n) == root
            for i in range(n):
                verify_inclusion(leaves[i], i, n, tree.inclusion_proof(i, n), root)
            for m in range(1, n + 1):
                verify_consistency(m, n, tree.consistency_proof(m, n), _naive_mth(leaves[:m]), root)


def test_rollback_leaves_tree_unchanged(engine, fund) -> None:
    leaves = _leaves(300)
    with engine.begin() as conn:
        LogTree(conn, fund).append(leaves[:100])
    with pytest.raises(RuntimeError):
        with engine.begin() as conn:
            LogTree(conn, fund).append(leaves[100:])
            raise RuntimeError("batch failed")
    with engine.connect() as conn:
        tree = LogTree(conn, fund)
        assert tree.size() == 100 and tree.root() == root_of(leaves[:100])


def test_funds_are_independent(engine, fund) -> None:
    other = fund + "-b"
    try:
        with engine.begin() as conn:
            LogTree(conn, fund).append(_leaves(10))
            LogTree(conn, other).append(_leaves(3))
            assert LogTree(conn, fund).size() == 10 and LogTree(conn, other).size() == 3
    finally:
        with engine.begin() as conn:
            LogTree(conn, other).delete()
