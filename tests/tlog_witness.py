"""A tlog-witness written from the spec by the tests (https://c2sp.org/tlog-witness,
https://c2sp.org/tlog-cosignature, https://c2sp.org/signed-note, RFC 9162 2.1.4.2), sharing
no code with Backstop: it parses add-checkpoint requests, checks the log's Ed25519 signature,
keeps the latest cosigned size and root per origin, verifies the consistency proof and
cosigns with Ed25519 cosignature/v1. A real HTTP server on 127.0.0.1 (tests/serving.py).
"""

from __future__ import annotations

import base64
import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def consistent(old: int, new: int, proof: list[bytes], old_root: bytes, new_root: bytes) -> bool:
    """RFC 9162 2.1.4.2, step by step."""
    if old == new:
        return not proof and old_root == new_root
    if old == 0 or old > new:
        return False
    if old & (old - 1) == 0:  # a power of two: the old root is the first node
        proof = [old_root, *proof]
    if not proof:
        return False
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = _node(c, fr), _node(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


class SpecWitness:
    """The witness's name, key, trusted logs (origin -> (key name, Ed25519 public key)) and
    state (origin -> (size, root)); every request it answered, for the tests to look at."""

    def __init__(self, name: str, logs: dict[str, tuple[str, bytes]]) -> None:
        self.name = name
        self.key = Ed25519PrivateKey.generate()
        self.logs = logs
        self.state: dict[str, tuple[int, bytes]] = {}
        self.answers: list[int] = []
        self.lock = threading.Lock()  # check and update of the state are atomic (the spec)
        self.clock = 1_700_000_000

    @property
    def public(self) -> bytes:
        return self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def key_id(self) -> bytes:
        return hashlib.sha256(self.name.encode() + b"\n\x04" + self.public).digest()[:4]

    def vkey(self) -> str:
        key = base64.b64encode(b"\x04" + self.public).decode()
        return f"{self.name}+{self.key_id().hex()}+{key}"

    def _log_signed(self, origin: str, body: bytes, signatures: list[str]) -> bool:
        name, public = self.logs[origin]
        kid = hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]
        for line in signatures:
            who, _, b64 = line[2:].partition(" ")
            raw = base64.b64decode(b64)
            if who == name and raw[:4] == kid:
                try:
                    Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], body)
                    return True
                except InvalidSignature:
                    return False
        return False

    def add_checkpoint(self, request: bytes) -> tuple[int, str, bytes]:
        """(status, content type, body) of the answer to one add-checkpoint body."""
        text = request.decode("utf-8")
        head, sep, note = text.partition("\n\n")
        lines = head.split("\n")
        if not sep or not lines[0].startswith("old ") or len(lines) > 64:
            return 400, "text/plain", b"malformed\n"
        old = int(lines[0][4:])
        proof = [base64.b64decode(h) for h in lines[1:]]
        body, sep, sigs = note.rpartition("\n\n")
        if not sep:
            return 400, "text/plain", b"malformed checkpoint\n"
        body += "\n"
        origin, size_text, root_b64 = body.split("\n")[:3]
        size, root = int(size_text), base64.b64decode(root_b64)
        if origin not in self.logs:
            return 404, "text/plain", b"unknown origin\n"
        if not self._log_signed(origin, body.encode(), [s for s in sigs.split("\n") if s]):
            return 403, "text/plain", b"no trusted signature\n"
        if old > size:
            return 400, "text/plain", b"old size beyond the checkpoint\n"
        with self.lock:
            known_size, known_root = self.state.get(origin, (0, b""))
            if old != known_size:
                return 409, "text/x.tlog.size", f"{known_size}\n".encode()
            if old == size and known_size and root != known_root:
                return 409, "text/plain", b"another root for this size\n"
            if old and old < size and not consistent(old, size, proof, known_root, root):
                return 422, "text/plain", b"consistency proof does not verify\n"
            if old == 0 and proof:
                return 422, "text/plain", b"a proof from size 0 must be empty\n"
            self.state[origin] = (size, root)
            self.clock += 1
            stamp = self.clock
        message = f"cosignature/v1\ntime {stamp}\n".encode() + body.encode()
        blob = self.key_id() + stamp.to_bytes(8, "big") + self.key.sign(message)
        return 200, "text/plain; charset=utf-8", \
            f"\u2014 {self.name} {base64.b64encode(blob).decode()}\n".encode()


def witness_server(witness: SpecWitness) -> ThreadingHTTPServer:
    """An HTTP server answering POST /add-checkpoint for `witness` (port: any free one)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length", "0"))
            data = self.rfile.read(length)
            status, kind, body = (witness.add_checkpoint(data) if self.path == "/add-checkpoint"
                                  else (404, "text/plain", b"not found\n"))
            witness.answers.append(status)
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)
