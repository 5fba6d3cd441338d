"""Wire encodings: amounts, decimals, and canonical bytes against the rfc8785 reference."""

from __future__ import annotations

from fractions import Fraction

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.formats.wire import (
    PARSER_SAFE_DEPTH,
    WireError,
    canonical_bytes,
    format_amount,
    format_decimal,
    load_document,
    nesting_depth,
    parse_amount,
    parse_amount_lenient,
    parse_decimal,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400)
@given(json_values)
def test_canonical_bytes_equal_rfc8785(document: object) -> None:
    try:
        expected = rfc8785.dumps(document)
    except rfc8785.IntegerDomainError:
        with pytest.raises(rfc8785.IntegerDomainError):
            canonical_bytes(document)
        return
    assert canonical_bytes(document) == expected


@pytest.mark.parametrize("document, expected", [
    ({"b": 1, "a": "x"}, b'{"a":"x","b":1}'),
    # Keys sort by UTF-16 code units: U+1F600 (D83D DE00) before U+FF01.
    ({"\uff01": 1, "\U0001f600": 2}, '{"\U0001f600":2,"\uff01":1}'.encode()),
    ({"s": "\u0007\n\"\\\u007f\u2028"}, b'{"s":"\\u0007\\n\\"\\\\\x7f\xe2\x80\xa8"}'),
    ([1.5, 1e21], b"[1.5,1e+21]"),  # floats only via rfc8785 (never in Backstop documents)
])
def test_canonical_bytes_known_values(document: object, expected: bytes) -> None:
    assert canonical_bytes(document) == expected


def test_canonical_bytes_refuse_lone_surrogates() -> None:
    with pytest.raises(rfc8785.CanonicalizationError, match="non-UTF-8"):
        canonical_bytes({"s": "\ud800"})  # not valid Unicode: no canonical UTF-8 form


def test_amounts_round_trip_exactly() -> None:
    assert parse_amount("51.00", 2) == 5100
    assert parse_amount("-0.05", 2) == -5
    assert format_amount(-5100, 2) == "-51.00"
    assert format_amount(7, 0) == "7"
    assert format_amount(5, 8) == "0.00000005"
    assert parse_amount_lenient("1.5", 2) == 150
    with pytest.raises(WireError, match="exactly 2 decimals"):
        parse_amount("51", 2)
    with pytest.raises(WireError, match="more than 2 decimals"):
        parse_amount_lenient("1.005", 2)
    with pytest.raises(WireError, match="not a decimal string"):
        parse_decimal("1e3")


def test_format_decimal_rounds_half_even() -> None:
    assert format_decimal(Fraction(1, 8), 2) == "0.12"
    assert format_decimal(Fraction(3, 8), 2) == "0.38"
    assert format_decimal(Fraction(-1, 3), 4) == "-0.3333"


@pytest.mark.parametrize("text, decimals, units", [
    ("1.5", 2, 150), ("1", 2, 100), ("1.500", 2, 150), ("7.000", 0, 7), ("-1.25", 2, -125),
    ("0.00000001", 8, 1),
])
def test_lenient_amounts_accept_fewer_or_padded_decimals(text: str, decimals: int,
                                                         units: int) -> None:
    assert parse_amount_lenient(text, decimals) == units


@given(st.integers(-(10**30), 10**30), st.integers(0, 18), st.integers(0, 3))
def test_amount_parsers_invert_format(units: int, decimals: int, padding: int) -> None:
    text = format_amount(units, decimals)
    assert parse_amount(text, decimals) == units
    padded = text + ("." if decimals == 0 and padding else "") + "0" * padding
    assert parse_amount_lenient(padded, decimals) == units


@given(st.fractions(max_denominator=10**6).filter(lambda f: abs(f) < 10**9),
       st.integers(0, 12))
def test_format_decimal_is_half_even_rounding(value: Fraction, places: int) -> None:
    scaled = round(value * 10**places)  # Fraction.__round__: half to even, the reference
    expected = str(scaled) if places == 0 else format_amount(scaled, places)
    assert format_decimal(value, places) == expected


@given(st.decimals(allow_nan=False, allow_infinity=False, places=6))
def test_parse_decimal_is_exact(value: object) -> None:
    text = f"{value:f}"
    assert parse_decimal(text) == Fraction(text)


@pytest.mark.parametrize(("text", "depth"), [
    ("1", 0), ("[]", 1), ('{"a": [1, {"b": 2}]}', 3),
    ('"[[[{"', 0),                      # brackets in a string are text
    ('["a\\"[[", [[]]]', 3),            # an escaped quote does not end the string
    ('[[1], [[2]], []]', 3),
])
def test_nesting_depth_counts_containers_not_brackets_in_strings(text: str, depth: int) -> None:
    assert nesting_depth(text) == depth


def test_a_document_deeper_than_the_parser_can_take_is_refused_before_parsing() -> None:
    """The json parser recurses; a RecursionError deep in the stack also breaks finalizers
    the garbage collector runs there, so such input never reaches it."""
    for depth in (PARSER_SAFE_DEPTH + 1, 5000, 200_000):
        with pytest.raises(WireError, match=r"^nested deeper than 32 levels$"):
            load_document(b"[" * depth + b"]" * depth)
    with pytest.raises(WireError, match="nested deeper than 32 levels"):  # within: the tree walk
        load_document(b"[" * 40 + b"]" * 40)
