"""Wire encodings shared by both sides: amounts, exact decimals, canonical JSON bytes.

The ledger imports this module so that both sides produce and read the same bytes; nothing
here knows about the fund's rules.
"""

from __future__ import annotations

import hashlib
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
    value = parse_decimal(text) * 10**decimals
    if value.denominator != 1:
        raise WireError(f"amount {text!r} has more than {decimals} decimals")
    return int(value)


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


def canonical_bytes(document: Any) -> bytes:
    """RFC 8785 (JCS) serialization of a JSON document."""
    return rfc8785.dumps(document)


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256 of `data`."""
    return hashlib.sha256(data).hexdigest()
