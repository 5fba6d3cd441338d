"""`backstop-audit follow --listen`: the witness also answers C2SP tlog-witness
`add-checkpoint` (https://c2sp.org/tlog-witness), cosigning only what it has audited.

A request's checkpoint must be signed by a pinned operator key (403), name the log the witness
follows (404), and start from the size the witness last cosigned (409 with that size, as
`text/x.tlog.size`); its consistency proof from there must verify (422). The witness then
polls the log as `follow` does (every snapshot replayed, auditor.witness.poll) and cosigns
only when the log's latest checkpoint, verified, is the one submitted: a log further on is
a 409 with the witness's new size, a failed audit a 422 naming the reason. The 200 answer is
the witness's cosignature line (tlog-cosignature), also kept in DIR/cosigned/<size>.
One request at a time (the state is checked and updated atomically, as the spec requires).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from auditor.formats.digits import parse_uint
from auditor.loaders import read_bytes
from auditor.report import Failed, InputError, Report
from auditor.tiled_audit import signed_checkpoint
from auditor.verify import merkle
from auditor.verify.cosign import cosignature_line
from auditor.verify.keys import (
    NoteError,
    Signer,
    Verifier,
    checkpoint_body,
    open_note,
    parse_checkpoint,
)
from auditor.verify.reads import MAX_CHECKPOINT
from auditor.verify.tiles import Source

__all__ = ["Witnessing", "make_server"]

MAX_REQUEST = 64 * 1024  # an old size line, at most 63 hashes and a checkpoint
_TEXT = "text/plain; charset=utf-8"
Answer = tuple[int, str, bytes]


@dataclass
class Witnessing:
    """What an add-checkpoint needs: the log, its pinned keys, the witness's folder and key,
    and `audit`, the poll that verifies the log and cosigns (auditor.witness.poll)."""

    source: Source
    verifiers: list[Verifier]
    state_dir: Path
    cosigner: Signer
    audit: Callable[[], Report]
    say: Callable[[str], None]

    def last(self) -> tuple[str, int, bytes] | None:
        """(origin, size, root) of the checkpoint last verified and cosigned, if any."""
        path = self.state_dir / "checkpoint"
        if not path.exists():
            return None
        return signed_checkpoint(Report("state"), read_bytes(path, "checkpoint", MAX_CHECKPOINT),
                                 str(path), self.verifiers)

    def add_checkpoint(self, data: bytes) -> Answer:
        """The answer to one add-checkpoint request body."""
        try:
            old, proof, note = _parse(data)
            split = note.rfind("\n\n")
            origin, size, root = parse_checkpoint(note[:split + 1])
        except (ValueError, NoteError) as exc:
            return 400, _TEXT, f"malformed request: {exc}\n".encode()
        try:
            open_note(note, self.verifiers)
        except NoteError as exc:
            return 403, _TEXT, f"{exc}\n".encode()
        try:
            last = self.last()
        except (Failed, InputError) as exc:
            return 500, _TEXT, f"the witness's state: {exc}\n".encode()
        if last is not None and origin != last[0]:
            return 404, _TEXT, f"unknown origin: this witness follows {last[0]}\n".encode()
        if old > size:
            return 400, _TEXT, f"old size {old} is beyond the checkpoint's {size}\n".encode()
        known_size, known_root = (0, b"") if last is None else last[1:]
        if old != known_size:
            return 409, "text/x.tlog.size", f"{known_size}\n".encode()
        if old == size:
            if root != known_root:
                return 409, _TEXT, f"split view: another root for size {size}\n".encode()
        elif old == 0 and proof:
            return 422, _TEXT, b"a proof from size 0 must be empty\n"
        elif old:
            try:
                merkle.verify_consistency(old, size, proof, known_root, root)
            except merkle.ProofError as exc:
                return 422, _TEXT, f"consistency proof: {exc}\n".encode()
        return self._audit_and_cosign(origin, size, root, note[:split + 1])

    def _audit_and_cosign(self, origin: str, size: int, root: bytes, body: str) -> Answer:
        report = self.audit()
        if not report.verified:
            return 422, _TEXT, f"audit: {report.reason or report.error}\n".encode()
        now = self.last()
        if now is None or now[1] < size:
            return 422, _TEXT, (f"the log at {self.source.name} does not serve size {size} "
                                "yet\n").encode()
        if now[1] > size:
            return 409, "text/x.tlog.size", f"{now[1]}\n".encode()
        if now != (origin, size, root):
            return 409, _TEXT, f"split view: the log serves another root for size {size}\n" \
                .encode()
        path = self.state_dir / "cosigned" / str(size)
        served = path.read_text("utf-8") if path.exists() else None
        plain = checkpoint_body(origin, size, root)
        if (served[:served.find("\n\n") + 1] if served is not None else plain) != body:
            return 422, _TEXT, b"the checkpoint's body is not the one the log serves\n"
        # Verified before without --cosign: `body` is the plain body of what was verified.
        line = (served.rstrip("\n").rsplit("\n", 1)[-1] + "\n" if served is not None
                else cosignature_line(self.cosigner, body, int(time.time())))
        self.say(f"add-checkpoint: cosigned size {size}")
        return 200, _TEXT, line.encode("utf-8")


def _parse(data: bytes) -> tuple[int, list[bytes], str]:
    """(old size, proof, checkpoint note) of a request body; ValueError naming the fault."""
    text = data.decode("utf-8")
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise ValueError("no blank line before the checkpoint")
    lines = head.split("\n")
    if not lines[0].startswith("old "):
        raise ValueError("the first line is not 'old <size>'")
    old = parse_uint(lines[0][4:])
    if len(lines) - 1 > 63:
        raise ValueError("more than 63 proof lines")
    proof = []
    for line in lines[1:]:
        try:
            hashed = base64.b64decode(line, validate=True)
        except binascii.Error:
            raise ValueError("a proof line is not base64") from None
        if len(hashed) != 32:
            raise ValueError("a proof line is not a 32-byte hash")
        proof.append(hashed)
    return old, proof, note


def make_server(witnessing: Witnessing, host: str, port: int) -> HTTPServer:
    """A one-request-at-a-time HTTP server for POST /add-checkpoint (bound, not serving)."""

    class Handler(BaseHTTPRequestHandler):
        timeout = 30  # a slow client cannot hold the witness for longer

        def do_POST(self) -> None:
            length = self.headers.get("Content-Length", "")
            if self.path.rstrip("/") != "/add-checkpoint":
                self._answer((404, _TEXT, b"not found: POST /add-checkpoint\n"))
            elif not length.isdigit() or int(length) > MAX_REQUEST:
                self._answer((400, _TEXT, f"a body of at most {MAX_REQUEST} bytes, with its "
                                          "Content-Length\n".encode()))
            else:
                self._answer(witnessing.add_checkpoint(self.rfile.read(int(length))))

        def _answer(self, answer: Answer) -> None:
            status, kind, body = answer
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the witness says what it cosigned."""

    return HTTPServer((host, port), Handler)
