"""Wire encodings shared by both sides: amounts, exact decimals, canonical JSON bytes.

The ledger imports this module so that both sides produce and read the same bytes; nothing
here knows about the fund's rules.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import orjson
import rfc8785

from auditor.formats.clip import clip

# The wire time, written by the operator (event times, snapshot times): UTC, whole seconds.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_time(moment: datetime) -> str:
    """`moment` (an aware datetime) in the wire time format, e.g. 2020-03-12T00:00:00Z."""
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """The aware UTC datetime of a wire time written by format_time (ValueError otherwise)."""
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def format_instant(moment: datetime) -> str:
    """`moment` as a wire time that keeps its microseconds when it has any (a time read with
    a fraction, shown back): `...T00:59:00.500000Z`; format_time's form otherwise."""
    text = format_time(moment)
    fraction = moment.microsecond
    return f"{text[:-1]}.{fraction:06d}Z" if fraction else text


def parse_instant(text: Any) -> datetime:
    """The aware UTC datetime of any wire time `TIME` allows (whole seconds or 1 to 6
    fraction digits, as events and block times may be written); ValueError if `text` is not
    of that form or not a real instant (February 30, hour 24, a leap second)."""
    if not isinstance(text, str) or TIME.fullmatch(text) is None:
        raise ValueError(f"not a time of the form YYYY-MM-DDTHH:MM:SS[.ffffff]Z: {clip(text)}")
    return datetime.fromisoformat(text)

_DECIMAL = re.compile(r"(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?")  # sign, whole, fraction
# An event time: RFC 3339 UTC, 1 to 6 fraction digits (schemas/README.md, "Numbers").
TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?Z")


class WireError(ValueError):
    """A value on the wire is not in its defined format."""


def _decimal_parts(text: Any) -> tuple[str, str, str]:
    """(sign, whole digits, fraction digits) of a decimal string, or WireError."""
    match = _DECIMAL.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise WireError(f"not a decimal string: {clip(text)}")
    sign, whole, frac = match.groups()
    return sign, whole, frac or ""


def _digits(text: str, original: Any) -> int:
    """int() of a digit string; one beyond Python's conversion limit is a WireError."""
    try:
        return int(text)
    except ValueError:  # more digits than sys.get_int_max_str_digits() allows
        raise WireError(f"decimal {clip(original)} has too many digits") from None


def parse_decimal(text: Any) -> Fraction:
    """Parse an exact decimal string (``"-12.50"``) into a Fraction; no floats, no exponents."""
    sign, whole, frac = _decimal_parts(text)
    return Fraction(_digits(sign + whole + frac, text), 10 ** len(frac))  # not Fraction(str): 3x slower


def parse_amount_lenient(text: Any, decimals: int) -> int:
    """Parse an amount with at most `decimals` decimals (exchange input) into minor units."""
    sign, whole, frac = _decimal_parts(text)
    digits = frac.rstrip("0")
    if len(digits) > decimals:
        raise WireError(f"amount {clip(text)} has more than {decimals} decimals")
    units = _digits(whole + digits.ljust(decimals, "0"), text)
    return -units if sign else units


def parse_amount(text: Any, decimals: int) -> int:
    """Parse an amount string with exactly `decimals` decimals into integer minor units."""
    sign, whole, frac = _decimal_parts(text)
    if len(frac) != decimals:
        raise WireError(f"amount {clip(text)} must have exactly {decimals} decimals")
    units = _digits(whole + frac, text)
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


def format_canonical(value: Fraction) -> str:
    """The canonical decimal of an exact value (docs/FORMAT-V2-DRAFT.md: no exponent, no
    leading zeros, no trailing zeros after the point, no point when integral): `3150`,
    `0.9995`, `-0.1125`. ValueError when the value has no finite decimal expansion."""
    rest, twos, fives = value.denominator, 0, 0
    while rest % 2 == 0:
        rest, twos = rest // 2, twos + 1
    while rest % 5 == 0:
        rest, fives = rest // 5, fives + 1
    if rest != 1:
        raise ValueError(f"{value} has no finite decimal expansion")
    return format_decimal(value, max(twos, fives))  # exact at that many places


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


# ------------------------------------------------------------------ strict document parsing

MAX_DEPTH = 32  # as the import side; the deepest Backstop document nests 6 levels
MAX_SAFE_INTEGER = 2**53 - 1  # I-JSON (RFC 7493): larger integers are not interoperable
# Deeper input is refused before it reaches the recursive json parser: a RecursionError deep
# in the stack also breaks whatever the garbage collector runs there (finalizers, hooks).
PARSER_SAFE_DEPTH = 256
_STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in a JSON text, brackets inside strings
    skipped (an unterminated string's brackets count: such a text is refused either way)."""
    depth = deepest = 0
    for bracket in _NOT_BRACKET.sub("", _STRING_LITERAL.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def too_deep_to_parse(text: str) -> bool:
    """Whether `text` nests beyond PARSER_SAFE_DEPTH (counting brackets first: C speed)."""
    return (text.count("[") + text.count("{") > PARSER_SAFE_DEPTH
            and nesting_depth(text) > PARSER_SAFE_DEPTH)


class _Refused:
    """A number the parser saw but a document may not hold; the tree walk reports it with
    its path (the json hooks do not know where they are)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _number(text: str) -> int | _Refused:
    """parse_int hook: integers within +-(2^53-1) only (17 digits or more never are)."""
    if len(text.lstrip("-")) > 16 or abs(int(text)) > MAX_SAFE_INTEGER:
        return _Refused(f"integer {clip(text)} is beyond 2^53-1")
    return int(text)


def _no_float(text: str) -> _Refused:
    return _Refused(f"number {clip(text)} is not an integer (no field takes a fraction or exponent)")


def _no_constant(text: str) -> Any:
    raise WireError(f"{text} is not JSON")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):  # rare: find the name to report
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise WireError(f"member {clip(name)} appears twice in one object")
            seen.add(name)
    return doc


def _where(path: tuple[str | int, ...]) -> str:
    """``log.size``; long names and deep paths shortened (both can be hostile)."""
    shown = [clip(p, 40) if isinstance(p, str) and len(p) > 40 else str(p) for p in path[:8]]
    return ".".join(shown + (["\u2026"] if len(path) > 8 else [])) or "(document)"


def check_tree(doc: Any, max_depth: int = MAX_DEPTH) -> None:
    """Refused numbers, nesting beyond `max_depth` containers, and strings or member names
    that are not valid Unicode (JSON's \\u escapes can spell a lone surrogate) raise
    WireError naming the path. Iterative: the input is untrusted."""
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(doc, 0, ())]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, _Refused):
            raise WireError(f"{_where(path)}: {value.reason}")
        if isinstance(value, str):
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    raise WireError(f"{_where(path)}: string {clip(value)} holds a lone "
                                    "surrogate") from None
            continue
        if not isinstance(value, dict | list):
            continue
        if depth >= max_depth:
            raise WireError(f"{_where(path)}: nested deeper than {max_depth} levels")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in items:
            if isinstance(key, str):
                stack.append((key, depth, path))  # a member name is checked as a string
            stack.append((child, depth + 1, (*path, key)))


def load_document(raw: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse an untrusted JSON document strictly, or raise WireError with a one-line reason.

    Refused: invalid UTF-8, NaN/Infinity, any fraction or exponent (every number in a Backstop
    document is an integer), integers beyond +-(2^53-1), duplicate member names, lone
    surrogates, and more than `max_depth` nested containers. The reason names the path
    (``log.size: integer ... is beyond 2^53-1``) and quotes at most a short prefix.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError(f"not UTF-8 (byte {exc.start})") from None
    if too_deep_to_parse(text):
        raise WireError(f"nested deeper than {max_depth} levels")
    try:
        doc = json.loads(text, parse_int=_number, parse_float=_no_float,
                         parse_constant=_no_constant, object_pairs_hook=_object)
    except json.JSONDecodeError as exc:  # its position, never the input itself
        raise WireError(f"not valid JSON ({exc.msg}: line {exc.lineno} column {exc.colno})") from None
    check_tree(doc, max_depth)
    return doc


def snapshot_decimals(snapshot: Mapping[str, Any]) -> dict[str, int]:
    """Asset decimals implied by a snapshot's reserve strings ("16.26" -> 2)."""
    return {asset: len(text.partition(".")[2]) for asset, text in snapshot["reserves"].items()}
