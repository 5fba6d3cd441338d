"""Durations on the command line, one grammar for both sides: `backstop follow
--publish-every`, `backstop-audit follow --interval` and `backstop-audit reserves
--max-block-age` (README, "Durations").

A duration is a whole number from 1 and a unit, `s`, `m`, `h` or `d` (`30s`, `5m`, `8h`,
`2d`), or several such parts with the largest unit first, each unit once (`1h30m`, as
`format_duration` writes an age back). ASCII digits without a leading zero; no sign, no
fraction, no bare number, no space inside; at most MAX_SECONDS in all. Surrounding
whitespace is ignored (a value from an environment file). Durations are not on the wire:
no published file holds one.
"""

from __future__ import annotations

import re
from typing import Any

import click

from auditor.formats.clip import clip

__all__ = ["MAX_SECONDS", "UNITS", "Duration", "DurationError", "format_duration",
           "parse_duration"]

UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}  # largest first: the order parts come in
MAX_SECONDS = 3650 * UNITS["d"]  # ten years: more is a typo, and would overflow a timedelta
_GRAMMAR = re.compile("".join(f"(?:([1-9][0-9]*){unit})?" for unit in UNITS))
_MAX_DIGITS = len(str(MAX_SECONDS))  # a longer count is too long before int() need see it
_EXAMPLES = "e.g. 30s, 5m, 8h, 2d, 1h30m"


class DurationError(ValueError):
    """Text that is not a duration of this grammar; one line quoting it."""


def parse_duration(text: Any) -> int:
    """The seconds in `text`, a duration of the grammar above; DurationError otherwise."""
    match = _GRAMMAR.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None or not any(match.groups()):
        raise DurationError(f"{clip(text)} is not a duration: a whole number from 1 and a unit "
                            f"s, m, h or d, or several, the largest unit first ({_EXAMPLES})")
    counts = [(count, size) for count, size in zip(match.groups(), UNITS.values(), strict=True)
              if count]
    if any(len(count) > _MAX_DIGITS for count, _ in counts) or \
            sum(int(count) * size for count, size in counts) > MAX_SECONDS:
        raise DurationError(f"{clip(text)} is longer than {format_duration(MAX_SECONDS)}, the "
                            "longest duration taken")
    return sum(int(count) * size for count, size in counts)


def format_duration(seconds: int) -> str:
    """`3723` -> `1h2m3s`, `3600` -> `1h`, `0` -> `0s`: what `parse_duration` reads (from 1)."""
    parts = []
    for unit, size in UNITS.items():
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


class Duration(click.ParamType[int]):
    """A click option taking a duration; its value is the seconds (an int). Both command
    lines use it, so the option's refusal reads the same on either side."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and 1 <= value <= MAX_SECONDS:  # converted once already
            return value
        try:
            return parse_duration(value)
        except DurationError as exc:
            self.fail(str(exc), param, ctx)
