"""Wire encodings shared by both sides: amounts, exact decimals, canonical JSON bytes.

The ledger imports this module so that both sides produce and read the same bytes; nothing
here knows about the fund's rules.
"""

from __future__ import annotations

import hashlib
import re
from fractions import Fraction
from typing import Any

import orjson
import rfc8785

_DECIMAL = re.compile(r"(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?")  # sign, whole, fraction
# An event time: RFC 3339 UTC, 1 to 6 fraction digits (schemas/README.md, "Numbers").
TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?Z")


class WireError(ValueError):
    """A value on the wire is not in its defined format."""


def _decimal_parts(text: Any) -> tuple[str, str, str]:
    """(sign, whole digits, fraction digits) of a decimal string, or WireError."""
    match = _DECIMAL.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise WireError(f"not a decimal string: {text!r}")
    sign, whole, frac = match.groups()
    return sign, whole, frac or ""


def parse_decimal(text: Any) -> Fraction:
    """Parse an exact decimal string (``"-12.50"``) into a Fraction; no floats, no exponents."""
    sign, whole, frac = _decimal_parts(text)
    return Fraction(int(sign + whole + frac), 10 ** len(frac))  # not Fraction(str): 3x slower


def parse_amount_lenient(text: Any, decimals: int) -> int:
    """Parse an amount with at most `decimals` decimals (exchange input) into minor units."""
    sign, whole, frac = _decimal_parts(text)
    digits = frac.rstrip("0")
    if len(digits) > decimals:
        raise WireError(f"amount {text!r} has more than {decimals} decimals")
    units = int(whole + digits.ljust(decimals, "0"))
    return -units if sign else units


def parse_amount(text: Any, decimals: int) -> int:
    """Parse an amount string with exactly `decimals` decimals into integer minor units."""
    sign, whole, frac = _decimal_parts(text)
    if len(frac) != decimals:
        raise WireError(f"amount {text!r} must have exactly {decimals} decimals")
    units = int(whole + frac)
    return -units if sign else units


def format_amount(units: int, decimals: int) -> str:
    """Format integer minor units as a decimal string with exactly `decimals` decimals."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}" if decimals else f"{sign}{whole}"


def format_decimal(value: Fraction, places: int) -> str:
    """Round `value` half-even to `places` decimals and format it (display values only)."""
    quotient, remainder = divmod(value.numerator * 10**places, value.denominator)
    twice = 2 * remainder  # the remainder is >= 0 (floor division): compare it with half
    if twice > value.denominator or (twice == value.denominator and quotient % 2):
        quotient += 1
    if places == 0:
        return str(quotient)
    return format_amount(quotient, places)


_SAFE_INT = 2**53  # JCS serializes numbers as IEEE doubles; larger ints are not exact


def _plain(document: Any) -> bool:
    """Whether `document` is in the subset where orjson's sorted output is byte-identical
    to RFC 8785: ASCII keys (so code-point and UTF-16 key order agree), no floats (JCS
    formats them the ECMAScript way), integers within +-2^53. Exact value types only (a str
    or int subclass may serialize its own way). Runs once per event written, so containers
    are walked with a stack and keys are checked at C speed."""
    stack = [document]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is dict:
            try:
                if not all(map(str.isascii, value)):
                    return False
            except TypeError:  # a key that is not a string
                return False
            items: Any = value.values()
        elif kind is list:
            items = value
        else:
            items = (value,)
        for item in items:
            kind = type(item)
            if kind is str or item is None or kind is bool:
                continue
            if kind is int:
                if -_SAFE_INT < item < _SAFE_INT:
                    continue
                return False
            if kind is dict or kind is list:
                stack.append(item)
                continue
            return False
    return True


def canonical_bytes(document: Any) -> bytes:
    """RFC 8785 (JCS) serialization of a JSON document.

    Documents in the plain subset (every Backstop event and snapshot) take `orjson` with
    sorted keys, which gives the same bytes an order of magnitude faster; anything else, and
    strings that are not valid Unicode, go through the `rfc8785` package. A property test
    checks the two agree.
    """
    if _plain(document):
        try:
            return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:  # lone surrogates: rfc8785 raises its own error
            pass
    return rfc8785.dumps(document)


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256 of `data`."""
    return hashlib.sha256(data).hexdigest()
