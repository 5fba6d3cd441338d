"""Submitting a new checkpoint to witnesses over C2SP tlog-witness (https://c2sp.org/tlog-witness)
and keeping their cosignatures beside it (schemas/README.md, "Witness cosignatures").

`POST <witness>/add-checkpoint` with ``old <size>``, the RFC 6962 consistency proof from that
size (base64, one hash a line), a blank line and the signed checkpoint. The old size sent first
is the one the caller believes the witness holds (the previous snapshot's); a 409 Conflict
names the witness's own size, and the request is sent once more with a proof from it.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from auditor.formats.digits import parse_uint
from auditor.verify.cosign import CosignerKey, add_cosignatures, verify_cosignature
from auditor.verify.keys import KeyFormatError
from ledger.service.outputs import write_file

__all__ = ["Outcome", "Witness", "WitnessError", "cosign_files", "load_witnesses", "submit"]

TIMEOUT = 30.0  # seconds per request
MAX_RESPONSE = 64 * 1024  # a few signature lines; anything longer is not a witness's answer
MAX_PROOF = 63  # the spec's bound on consistency proof lines


class WitnessError(ValueError):
    """A witness did not cosign: refused, unreachable, or answered something else."""


@dataclass(frozen=True)
class Witness:
    """A witness's submission prefix and the cosignature keys trusted for its answers."""

    url: str
    keys: tuple[CosignerKey, ...]


@dataclass
class Outcome:
    """What one witness did with the checkpoint."""

    url: str
    lines: list[str] = field(default_factory=list)  # the verified cosignature lines
    error: str | None = None


def load_witnesses(path: Path) -> list[Witness]:
    """The witnesses FILE lists: `URL VKEY` a line, blank lines and `#` comments skipped.
    WitnessError `FILE: line N: reason` otherwise."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise WitnessError(f"{path}: cannot read ({getattr(error, 'strerror', None) or error})") \
            from None
    out: list[Witness] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].startswith(("http://", "https://")):
            raise WitnessError(f"{path}: line {number}: expected 'URL VKEY'")
        try:
            out.append(Witness(parts[0], (CosignerKey.from_vkey(parts[1]),)))
        except KeyFormatError as error:
            raise WitnessError(f"{path}: line {number}: {error}") from None
    return out


def _request_body(old: int, proof: Sequence[bytes], note: str) -> bytes:
    lines = [f"old {old}\n", *(base64.b64encode(h).decode() + "\n" for h in proof), "\n"]
    return ("".join(lines) + note).encode("utf-8")


def _post(url: str, body: bytes) -> tuple[int, str, str]:
    """(status, content type, body text) of a POST; WitnessError when unreachable."""
    request = urllib.request.Request(url.rstrip("/") + "/add-checkpoint", data=body,
                                     method="POST",
                                     headers={"Content-Type": "text/plain; charset=utf-8"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, response.headers.get("Content-Type", ""), \
                response.read(MAX_RESPONSE + 1).decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers.get("Content-Type", ""), \
                error.read(MAX_RESPONSE + 1).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise WitnessError(f"unreachable ({reason})") from None


def submit(witness: Witness, note: str, size: int, old: int,
           prove: Callable[[int], Sequence[bytes]]) -> list[str]:
    """Submit checkpoint `note` (of tree `size`) claiming the witness holds `old`; return the
    verified cosignature lines of its answer (at least one). `prove(m)`: the consistency proof
    from size m to `size`. WitnessError naming what went wrong otherwise."""
    body = note[:note.rfind("\n\n") + 1]
    for attempt in range(2):
        proof = [] if old in (0, size) else list(prove(old))
        if len(proof) > MAX_PROOF:
            raise WitnessError(f"the proof from {old} has {len(proof)} hashes, over {MAX_PROOF}")
        status, content_type, text = _post(witness.url, _request_body(old, proof, note))
        if len(text) > MAX_RESPONSE:
            raise WitnessError(f"HTTP {status}: an answer over {MAX_RESPONSE} bytes")
        if status == 409 and attempt == 0 and content_type.split(";")[0].strip() == \
                "text/x.tlog.size":
            try:
                theirs = parse_uint(text.strip())
            except ValueError:
                raise WitnessError(f"409 Conflict with a size that is not one: {text[:40]!r}") \
                    from None
            if theirs > size:
                raise WitnessError(f"409 Conflict: the witness holds size {theirs}, beyond "
                                   f"this checkpoint's {size}")
            if theirs != old:
                old = theirs  # resync: prove from the witness's own size
                continue
        if status != 200:
            raise WitnessError(f"HTTP {status}: {' '.join(text.split())[:200]}")
        lines = [line + "\n" for line in text.split("\n") if line]
        good = [line for line in lines if verify_cosignature(witness.keys, body, line)]
        if not good:
            raise WitnessError("200, but no cosignature by a trusted key verifies")
        return good
    raise WitnessError(f"409 Conflict again after resyncing from size {old}")


def cosign_files(witnesses: Iterable[Witness], note: str, size: int, old: int,
                 prove: Callable[[int], Sequence[bytes]], files: Sequence[Path],
                 latest: Path | None = None) -> list[Outcome]:
    """Submit `note` to every witness and append the verified cosignatures to each of `files`
    (the checkpoint's own copies), and to `latest` while it holds the same checkpoint body;
    each file replaced by rename. The outcome of each witness, in order."""
    outcomes: list[Outcome] = []
    for witness in witnesses:
        outcome = Outcome(witness.url)
        try:
            outcome.lines = submit(witness, note, size, old, prove)
        except WitnessError as error:
            outcome.error = str(error)
        outcomes.append(outcome)
    lines = [line for outcome in outcomes for line in outcome.lines]
    if not lines:
        return outcomes
    body = note[:note.rfind("\n\n") + 1]
    targets = list(files)
    if latest is not None:
        try:
            current = latest.read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            current = ""
        if current[:current.rfind("\n\n") + 1] == body:
            targets.append(latest)
    for path in targets:
        current = path.read_text("utf-8")
        write_file(path, add_cosignatures(current, lines).encode("utf-8"), 0o644, force=True)
    return outcomes
