"""One strict parser for the whole numbers of untrusted text: sizes, counts, option values.

Python's ``int()`` accepts far more than a decimal number: ``int('١٢')`` is 12 (any Unicode
decimal digits), ``int('1_000')`` is 1000, ``int(' 7 ')`` is 7, and ``'²'.isdigit()`` is
true although ``int('²')`` raises. A size read from a path, a checkpoint or the command line
is accepted here only as ASCII digits without a leading zero (``0`` itself excepted).
"""

from __future__ import annotations

import re

from auditor.formats.clip import clip

__all__ = ["MAX_UINT64", "parse_uint"]

MAX_UINT64 = 2**64 - 1
_UINT = re.compile(r"0|[1-9][0-9]{0,19}")  # [0-9] in a str pattern: ASCII only (not \d)


def parse_uint(text: object, limit: int = MAX_UINT64) -> int:
    """`text` as a whole number 0..`limit` written in ASCII digits; ValueError (one line,
    quoting a short prefix of `text`) for anything else."""
    if not isinstance(text, str) or not _UINT.fullmatch(text) or int(text) > limit:
        raise ValueError(f"{clip(text)} is not a whole number from 0 to {limit} in ASCII digits")
    return int(text)
