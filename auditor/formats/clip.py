"""Short quotes of input values for one-line error messages.

An error names the offending value so the reader can find it, but a hostile or broken
input can hold a megabyte in one field: a message quotes at most a short prefix of it.
"""

from __future__ import annotations

from typing import Any

QUOTE_CHARS = 60  # characters of a value quoted in a message


def clip(value: Any, limit: int = QUOTE_CHARS) -> str:
    """`repr(value)`, cut to about `limit` characters with the full length noted."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f"{len(value)} chars" if isinstance(value, str | bytes) else f"{len(text)} chars as text"
    return f"{text[:limit]}... ({size})"


def shorten(text: str, limit: int = 300) -> str:
    """`text` cut to `limit` characters (a whole message, when it quotes several values)."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"
