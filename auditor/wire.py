"""Wire encodings shared by both sides: amounts, exact decimals, canonical JSON bytes.

The ledger imports this module so that both sides produce and read the same bytes; nothing
here knows about the fund's rules.
"""

from __future__ import annotations

import hashlib
import json
import re
from fractions import Fraction
from typing import Any

import rfc8785

_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")


class WireError(ValueError):
    """A value on the wire is not in its defined format."""


def parse_decimal(text: Any) -> Fraction:
    """Parse an exact decimal string (``"-12.50"``) into a Fraction; no floats, no exponents."""
    if not isinstance(text, str) or not _DECIMAL.fullmatch(text):
        raise WireError(f"not a decimal string: {text!r}")
    return Fraction(text)


def parse_amount(text: Any, decimals: int) -> int:
    """Parse an amount string with exactly `decimals` decimals into integer minor units."""
    if not isinstance(text, str) or not _DECIMAL.fullmatch(text):
        raise WireError(f"not a decimal string: {text!r}")
    whole, _, frac = text.partition(".")
    if len(frac) != decimals:
        raise WireError(f"amount {text!r} must have exactly {decimals} decimals")
    negative = whole.startswith("-")
    units = int(whole.lstrip("-")) * 10**decimals + (int(frac) if frac else 0)
    return -units if negative else units


def parse_amount_lenient(text: Any, decimals: int) -> int:
    """Parse an amount with at most `decimals` decimals (exchange input) into minor units."""
    if not isinstance(text, str) or not _DECIMAL.fullmatch(text):
        raise WireError(f"not a decimal string: {text!r}")
    whole, _, frac = text.partition(".")
    digits = frac.rstrip("0")
    if len(digits) > decimals:
        raise WireError(f"amount {text!r} has more than {decimals} decimals")
    units = int(whole.lstrip("-")) * 10**decimals
    if digits:
        units += int(digits) * 10 ** (decimals - len(digits))
    return -units if whole.startswith("-") else units


def format_amount(units: int, decimals: int) -> str:
    """Format integer minor units as a decimal string with exactly `decimals` decimals."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}" if decimals else f"{sign}{whole}"


def format_decimal(value: Fraction, places: int) -> str:
    """Round `value` half-even to `places` decimals and format it (display values only)."""
    scaled = round(value * 10**places)  # Fraction.__round__ rounds half to even
    if places == 0:
        return str(scaled)
    return format_amount(scaled, places)


_SAFE_INT = 2**53  # JCS serializes numbers as IEEE doubles; larger ints are not exact


def _plain(value: Any) -> bool:
    """Whether `value` is in the subset where the standard json module's sorted, compact
    output is byte-identical to RFC 8785: ASCII keys (so code-point and UTF-16 key order
    agree), no floats (JCS formats them the ECMAScript way), integers within +-2^53."""
    if isinstance(value, str) or value is None or value is True or value is False:
        return True
    if isinstance(value, int):
        return -_SAFE_INT < value < _SAFE_INT
    if isinstance(value, dict):
        return all(isinstance(k, str) and k.isascii() and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return False


def canonical_bytes(document: Any) -> bytes:
    """RFC 8785 (JCS) serialization of a JSON document.

    Documents in the plain subset (every Backstop event and snapshot) take the standard
    library's C encoder, which gives the same bytes several times faster; anything else, and
    strings that are not valid Unicode, go through the `rfc8785` package. A property test
    checks the two agree.
    """
    if _plain(document):
        try:
            return json.dumps(document, sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: JCS escapes them
            pass
    return rfc8785.dumps(document)


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256 of `data`."""
    return hashlib.sha256(data).hexdigest()
