"""The browser verifier (web/src/verify.js, run under Node.js by tests/vectors/verify_vectors.mjs)
against the RFC 6962 inclusion and consistency vectors that tests/auditor/verify/test_merkle.py
runs the Python verifier over: every vector's verdict is the published one, and every reason is
the Python verifier's, word for word. With WebCrypto and with the bundled @noble fallback.
Skipped when Node.js or web/node_modules is missing, unless $BACKSTOP_REQUIRE_BROWSER is set."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from auditor.verify.merkle import ProofError, verify_consistency, verify_inclusion
from tests.required import skip_or_fail

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "tests" / "vectors" / "rfc6962"
SCRIPT = ROOT / "tests" / "vectors" / "verify_vectors.mjs"
ENGINES = {"webcrypto": "WebCrypto", "noble": "@noble/hashes"}


def run_script(vector_dir: Path, engine: str) -> dict[str, Any]:
    """The script's output for the vectors under `vector_dir` (skips when it cannot run)."""
    node = shutil.which("node")
    ready = node is not None and (ROOT / "web" / "node_modules" / "@noble" / "hashes").is_dir()
    skip_or_fail(None if ready else "Node.js or web/node_modules missing (make web-deps installs them)",
                 "BACKSTOP_REQUIRE_BROWSER")
    assert node is not None
    argv = [node, str(SCRIPT), str(vector_dir)] + (["noble"] if engine == "noble" else [])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    out: dict[str, Any] = json.loads(done.stdout)
    assert out["engines"]["sha256"] == ENGINES[engine]
    return out


def python_reason(kind: str, vector: dict[str, Any]) -> str | None:
    """What auditor.verify.merkle says of `vector`: None when it verifies, else the reason."""
    b = base64.b64decode
    proof = [b(p) for p in vector["proof"] or []]
    try:
        if kind == "inclusion":
            verify_inclusion(b(vector["leafHash"]), vector["leafIdx"], vector["treeSize"], proof,
                             b(vector["root"]))
        else:
            verify_consistency(vector["size1"], vector["size2"], proof, b(vector["root1"]),
                               b(vector["root2"]))
    except ProofError as error:
        return str(error)
    return None


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_every_vector_gets_its_published_verdict_and_the_python_reason(engine: str) -> None:
    verdicts = run_script(VECTORS, engine)["verdicts"]
    files = sorted(str(p.relative_to(VECTORS)) for kind in ("inclusion", "consistency")
                   for p in (VECTORS / kind).rglob("*.json"))
    assert sorted(verdicts) == files
    assert sum(name.startswith("inclusion/") for name in files) > 50
    assert sum(name.startswith("consistency/") for name in files) > 50
    wrong = []
    for name in files:
        vector = json.loads((VECTORS / name).read_text())
        got = verdicts[name]
        if got["ok"] is vector["wantErr"]:
            wrong.append(f"{name}: ok={got['ok']} but wantErr={vector['wantErr']} ({got['reason']})")
        elif got["reason"] != python_reason(name.split("/")[0], vector):
            wrong.append(f"{name}: {got['reason']!r} != {python_reason(name.split('/')[0], vector)!r}")
    assert wrong == []
    # Both verdicts occur: 12 of the 196 vectors verify, the other 184 are refused.
    assert (len(files), sum(v["ok"] for v in verdicts.values())) == (196, 12)


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


def test_a_wrong_proof_is_refused(tmp_path: Path) -> None:
    # A tree of three leaves, hashed by hand (RFC 6962 §2.1): root = H(1 || H(1||a||b) || c).
    a, b, c = (hashlib.sha256(b"\x00" + data).digest() for data in (b"a", b"b", b"c"))
    ab = hashlib.sha256(b"\x01" + a + b).digest()
    root3 = hashlib.sha256(b"\x01" + ab + c).digest()
    root2 = ab
    cases = {
        "inclusion/right.json": {"leafHash": _b64(b), "leafIdx": 1, "treeSize": 3,
                                 "proof": [_b64(a), _b64(c)], "root": _b64(root3)},
        # b's proof with its siblings swapped: folds to H(1 || H(1||c||b) || a).
        "inclusion/swapped.json": {"leafHash": _b64(b), "leafIdx": 1, "treeSize": 3,
                                   "proof": [_b64(c), _b64(a)], "root": _b64(root3)},
        "consistency/right.json": {"size1": 2, "size2": 3, "proof": [_b64(c)],
                                   "root1": _b64(root2), "root2": _b64(root3)},
        # The new tree's last leaf replaced by a: same shape, another new root.
        "consistency/wrong-leaf.json": {"size1": 2, "size2": 3, "proof": [_b64(a)],
                                        "root1": _b64(root2), "root2": _b64(root3)},
    }
    for name, vector in cases.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(json.dumps(vector))
    cb = hashlib.sha256(b"\x01" + c + b).digest()
    swapped = hashlib.sha256(b"\x01" + cb + a).digest()
    ab_a = hashlib.sha256(b"\x01" + ab + a).digest()
    assert run_script(tmp_path, "webcrypto")["verdicts"] == {
        "inclusion/right.json": {"ok": True, "reason": None},
        "inclusion/swapped.json": {
            "ok": False, "reason": f"root mismatch: computed {swapped.hex()}, expected {root3.hex()}"},
        "consistency/right.json": {"ok": True, "reason": None},
        "consistency/wrong-leaf.json": {
            "ok": False, "reason": f"new root mismatch: computed {ab_a.hex()}, expected {root3.hex()}"},
    }
