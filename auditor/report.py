"""The verdict of one `backstop-audit` command: checks, figures, and how to print them.

A command fills a `Report` with one entry per check and a few figures (counts, totals),
then stops with `Failed` (exit 1: something does not verify) or `InputError` (exit 2: a
file cannot be read, is not JSON, does not match its schema, or a key is malformed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EXIT_FAILED", "EXIT_INPUT", "EXIT_OK", "Failed", "InputError", "Report", "one_line"]

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2
LINE_LIMIT = 400  # characters of a whole reason line


def one_line(text: str, limit: int = LINE_LIMIT) -> str:
    """`text` on one line, at most `limit` characters, printable in any UTF-8 terminal (lone
    surrogates escaped): a reason printed as the verdict's last line."""
    flat = " ".join(text.splitlines())
    flat = flat.encode("utf-8", "backslashreplace").decode("utf-8")
    return flat if len(flat) <= limit else flat[:limit] + "\u2026"


class Failed(Exception):
    """Verification failed; the message is the one-line reason (what failed and why)."""


class InputError(Exception):
    """An input cannot be used at all (unreadable, not JSON, schema-invalid, bad key)."""


@dataclass
class Report:
    """Checks performed so far, figures to show, and the final verdict."""

    command: str
    checks: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    error: str | None = None
    skipped: list[str] = field(default_factory=list)

    def ok(self, name: str, detail: str = "") -> None:
        """Record a check that passed."""
        self.checks.append({"check": name, "ok": True, "detail": detail})

    def note(self, name: str, detail: str) -> None:
        """Record something that was not checked (neither pass nor fail)."""
        self.checks.append({"check": name, "ok": None, "detail": detail})

    def skip(self, name: str, detail: str) -> None:
        """Record a check the user explicitly asked to skip; the verdict line names it."""
        self.note(name, detail)
        self.skipped.append(name)

    def fail(self, name: str, reason: str) -> Failed:
        """Record a failed check; return the `Failed` to raise (``raise report.fail(...)``)."""
        self.checks.append({"check": name, "ok": False, "detail": reason})
        return Failed(f"{name}: {reason}")

    @property
    def verified(self) -> bool:
        return self.reason is None and self.error is None

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return EXIT_INPUT
        return EXIT_OK if self.reason is None else EXIT_FAILED

    def as_json(self) -> str:
        # details bounded like the text lines: one may quote a value of a hostile document
        checks = [{**c, "detail": one_line(c["detail"])} for c in self.checks]
        doc: dict[str, Any] = {"command": self.command, "verified": self.verified,
                               "checks": checks, "reason": self.reason or self.error,
                               "skipped": self.skipped}
        if self.error is not None:
            doc["error"] = self.error
        doc.update(self.figures)
        return json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False)

    def as_text(self) -> str:
        lines = [f"backstop-audit {self.command}"]
        for c in self.checks:
            mark = {True: "  ok     ", False: "  FAILED ", None: "  --     "}[c["ok"]]
            lines.append(one_line(f"{mark}{c['check']}" + (f": {c['detail']}" if c["detail"] else "")))
        for key, value in self.figures.items():
            lines.append(f"  {key}: {_show(value)}")
        if self.error is not None:
            lines.append(f"ERROR: {self.error}")
        elif self.reason is not None:
            lines.append(f"FAILED: {self.reason}")
        elif self.skipped:
            lines.append(f"VERIFIED (not checked, as asked: {', '.join(self.skipped)})")
        else:
            lines.append("VERIFIED")
        return "\n".join(lines)


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_show(v)}" for k, v in value.items()) or "(none)"
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value) or "(none)"
    return str(value)
