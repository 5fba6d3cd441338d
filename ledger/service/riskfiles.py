"""The files of `backstop risk`: the positions snapshot and policy documents it reads, and
the report it writes (JSON and PNG together, all or nothing, never through a symlink).

The sizing itself is pure (ledger.risk); this module is where it meets the file system, so
the command only parses options and prints. Every error is one line (RiskFileError), naming
the file and, for a snapshot, the line and field.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from auditor.formats.wire import PARSER_SAFE_DEPTH, too_deep_to_parse
from ledger.domain.errors import PolicyError
from ledger.domain.policy import Policy
from ledger.domain.records import RecordError
from ledger.risk import sizing
from ledger.risk.positions import Book, build_book, read_positions
from ledger.service.outputs import OutputExists, check_outputs, write_outputs


class RiskFileError(ValueError):
    """A file `backstop risk` reads or writes is unusable: one line, for exit code 2."""


def read_book(path: Path, markets: Mapping[str, str],
              decimals: Mapping[str, int]) -> tuple[Book, str]:
    """The positions snapshot at `path` as the engine's book, and the SHA-256 of its bytes
    (read once: the hash is of the bytes that were sized)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise RiskFileError(f"{path}: cannot read ({error.strerror or error})") from None
    try:
        book = build_book(read_positions(io.BytesIO(data)), markets, decimals)
    except RecordError as error:
        raise RiskFileError(f"{path}: {error}") from None
    return book, hashlib.sha256(data).hexdigest()


def load_policy(path: Path, decimals: Mapping[str, int]) -> sizing.NamedPolicy:
    """A policy document to compare with the active one, named by its file name."""
    try:
        text = path.read_text("utf-8")
        if too_deep_to_parse(text):
            raise ValueError(f"nested deeper than {PARSER_SAFE_DEPTH} levels")
        document = json.loads(text)
    except (OSError, ValueError) as error:
        raise RiskFileError(f"--policy {path}: not a readable JSON file ({error})") from None
    try:
        return sizing.NamedPolicy(path.name, Policy.from_document(document, dict(decimals)))
    except PolicyError as error:
        raise RiskFileError(f"--policy {path}: {error}") from None


def check_report_paths(out: Path | None, png: Path | None, force: bool) -> None:
    """Refuse, before the long run, an output that may not be written (a symlink, or taken
    without `force`)."""
    for option, path in (("--out", out), ("--png", png)):
        if path is not None:
            try:
                check_outputs([path], force)
            except OutputExists as error:
                raise RiskFileError(f"{option} {error}") from None


def write_report(document: dict[str, Any], results: sizing.Results, out: Path | None,
                 png: Path | None, force: bool) -> None:
    """Write the JSON report to `out` and its chart to `png` (either may be None): both or
    neither (ledger.service.outputs.write_outputs)."""
    outputs: list[tuple[str, Path, bytes]] = []
    if png is not None:
        from ledger.risk.chart import risk_chart

        outputs.append(("--png", png, risk_chart(document, results)))
    if out is not None:
        text = json.dumps(document, indent=2, sort_keys=True) + "\n"
        outputs.append(("--out", out, text.encode("utf-8")))
    if not outputs:
        return
    try:
        write_outputs([(path, data) for _, path, data in outputs], force)
    except OutputExists as error:  # appeared since the check
        option = next((o for o, p, _ in outputs if str(error).startswith(str(p))), "--out")
        raise RiskFileError(f"{option} {error}") from None
    except OSError as error:  # a missing folder, no permission, a full disk
        option, path = next(((o, p) for o, p, _ in outputs if str(p) == error.filename),
                            outputs[-1][:2])
        raise RiskFileError(f"{option} {path}: cannot write ({error.strerror or error})"
                            ) from None
