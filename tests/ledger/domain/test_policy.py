"""Policy documents: schema and semantic checks, the policy hash, the volatility share curve."""

from __future__ import annotations

import copy
import hashlib
from fractions import Fraction as F

import pytest

from ledger.domain.policy import (
    FixedShare,
    Policy,
    PolicyError,
    VolatilityCurve,
    policy_hash,
    volatility,
)

DECIMALS = {"USDT": 2, "BTC": 8}


def doc(**changes):
    """A valid policy document with `changes` applied (None deletes a key)."""
    base = {
        "version": 1,
        "minimum_reserve": {"USDT": "0.00"},
        "per_event_cap": {"USDT": "1000000.00"},
        "fee_cap_rate": "0.005",
        "fund_share": {"fixed": "1"},
        "socialization": "pro_rata_profit",
    }
    for key, value in changes.items():
        if value is None:
            base.pop(key)
        else:
            base[key] = value
    return base


def curve(*points, window=20):
    return {"volatility": {"window": window, "breakpoints": [list(p) for p in points]}}


def error_of(document) -> str:
    with pytest.raises(PolicyError) as info:
        Policy.from_document(document, DECIMALS)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- parsing -------------------------------------------------------------------------------

def test_parses_the_readme_example():
    policy = Policy.from_document(doc(), DECIMALS)
    assert policy.version == 1
    assert policy.reserve("USDT") == 0
    assert policy.cap("USDT") == 100_000_000
    assert policy.fee_cap_rate == F(5, 1000)
    assert policy.fund_share == FixedShare(F(1))
    assert policy.socialization == "pro_rata_profit"


def test_absent_assets_mean_no_reserve_and_no_cap():
    policy = Policy.from_document(doc(per_event_cap=None), DECIMALS)
    assert policy.reserve("BTC") == 0
    assert policy.cap("USDT") is None
    assert policy.cap("BTC") is None


def test_parses_a_volatility_curve():
    policy = Policy.from_document(doc(fund_share=curve(("0.00", "0.5"), ("0.02", "1"), window=3)),
                                  DECIMALS)
    assert policy.fund_share == VolatilityCurve(3, ((F(0), F(1, 2)), (F(2, 100), F(1))))


def test_policy_is_immutable():
    policy = Policy.from_document(doc(), DECIMALS)
    with pytest.raises(TypeError):
        policy.minimum_reserve["USDT"] = 5  # type: ignore[index]


# --- schema errors -------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("document", "prefix"),
    [
        (doc(fee_cap_rate=None), "fee_cap_rate: 'fee_cap_rate' is a required property"),
        (doc(fee_cap_rate=0.005), "fee_cap_rate: 0.005 is not of type 'string'"),
        (doc(fee_cap_rate="1.5"), "fee_cap_rate: '1.5' does not match"),
        (doc(fee_cap_rate="-0.1"), "fee_cap_rate: '-0.1' does not match"),
        (doc(version=0), "version: 0 is less than the minimum of 1"),
        (doc(socialization="lottery"), "socialization: 'lottery' is not one of"),
        (doc(minimum_reserve={"USDT": "1e3"}), "minimum_reserve.USDT: '1e3' does not match"),
        (doc(minimum_reserve={"USDT": "-1.00"}), "minimum_reserve.USDT: '-1.00' does not match"),
        (doc(extra=True), "extra: Additional properties are not allowed ('extra'"),
        (doc(fund_share={"fixed": "1", "volatility": curve(("0", "1"))["volatility"]}),
         "fund_share: "),
        (doc(fund_share={}), "fund_share: "),
        (doc(fund_share={"fixed": "1.01"}), "fund_share.fixed: '1.01' does not match"),
        (doc(fund_share=curve(("0", "1"), window=0)),
         "fund_share.volatility.window: 0 is less than the minimum of 1"),
        (doc(fund_share=curve()), "fund_share.volatility.breakpoints: [] should be non-empty"),
        (doc(fund_share=curve(("0", "1", "2"))), "fund_share.volatility.breakpoints.0: "),
        (doc(fund_share=curve(("0",))), "fund_share.volatility.breakpoints.0: "),
        (doc(fund_share=curve(("0", "2"))), "fund_share.volatility.breakpoints.0.1: '2' does not"),
        (doc(fund_share=curve(("-0.1", "1"))),
         "fund_share.volatility.breakpoints.0.0: '-0.1' does not match"),
        ([], "(document): [] is not of type 'object'"),
    ],
)
def test_schema_errors_name_the_field(document, prefix):
    assert error_of(document).startswith(prefix)


@pytest.mark.parametrize("rate", ["0", "0.0", "1", "1.000", "0.5", "0.123456789"])
def test_rates_in_unit_interval_are_accepted(rate):
    assert Policy.from_document(doc(fee_cap_rate=rate), DECIMALS).fee_cap_rate == F(rate)


# --- semantic errors -----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("document", "message"),
    [
        (doc(minimum_reserve={"USDT": "0"}),
         "minimum_reserve.USDT: amount '0' must have exactly 2 decimals"),
        (doc(per_event_cap={"USDT": "10.000"}),
         "per_event_cap.USDT: amount '10.000' must have exactly 2 decimals"),
        (doc(minimum_reserve={"ETH": "1.00"}),
         "minimum_reserve.ETH: unknown asset (configured: BTC, USDT)"),
        (doc(fund_share=curve(("0.01", "0.5"), ("0.01", "1"))),
         "fund_share.volatility.breakpoints.1: vol must be greater than the previous one"),
        (doc(fund_share=curve(("0.00", "0.5"), ("0.02", "0.7"), ("0.010", "1"))),
         "fund_share.volatility.breakpoints.2: vol must be greater than the previous one"),
    ],
)
def test_semantic_errors_name_the_field(document, message):
    assert error_of(document) == message


def test_policy_error_is_a_value_error():
    assert issubclass(PolicyError, ValueError)


# --- hash ----------------------------------------------------------------------------------

def test_policy_hash_is_sha256_of_jcs_bytes():
    document = {"version": 1, "socialization": "none", "minimum_reserve": {"USDT": "0.00"},
                "fund_share": {"fixed": "1"}, "fee_cap_rate": "0.005"}
    # RFC 8785 by hand: keys sorted, no whitespace, integers as-is.
    jcs = (b'{"fee_cap_rate":"0.005","fund_share":{"fixed":"1"},'
           b'"minimum_reserve":{"USDT":"0.00"},"socialization":"none","version":1}')
    expected = hashlib.sha256(jcs).hexdigest()
    assert policy_hash(document) == expected
    assert Policy.from_document(document, DECIMALS).hash == expected


def test_parsing_does_not_modify_the_document():
    document = doc(fund_share=curve(("0", "0.5"), ("0.02", "1")))
    before = copy.deepcopy(document)
    Policy.from_document(document, DECIMALS)
    assert document == before


# --- volatility share ----------------------------------------------------------------------

# Returns of 100 -> 102 -> 99.96 -> 100.9596: +0.02, -0.02, +0.01 (|.| mean = 0.05/3 = 1/60).
PRICES = [F("100"), F("102"), F("99.96"), F("100.9596")]


def test_volatility_is_mean_absolute_return():
    assert volatility(PRICES, 20) == F(1, 60)
    assert volatility(PRICES, 3) == F(1, 60)
    assert volatility(PRICES, 2) == F(3, 200)  # (0.02 + 0.01) / 2
    assert volatility(PRICES, 1) == F(1, 100)


def test_volatility_needs_two_prices():
    assert volatility([], 5) == 0
    assert volatility([F(100)], 5) == 0


def test_volatility_rejects_floats_and_non_positive_prices():
    with pytest.raises(ValueError):
        volatility([100.0, 101.0], 5)
    with pytest.raises(ValueError):
        volatility([F(0), F(1)], 5)


def test_interpolated_share():
    policy = Policy.from_document(doc(fund_share=curve(("0.00", "0.5"), ("0.02", "1"))), DECIMALS)
    # 0.5 + (1 - 0.5) * (1/60) / 0.02 = 0.5 + 5/12 = 11/12
    assert policy.share(PRICES) == (F(11, 12), F(1, 60))
    window2 = Policy.from_document(
        doc(fund_share=curve(("0.00", "0.5"), ("0.02", "1"), window=2)), DECIMALS)
    assert window2.share(PRICES) == (F(7, 8), F(3, 200))  # 0.5 + 0.5 * 0.015 / 0.02


def test_share_on_a_middle_segment_and_at_breakpoints():
    policy = Policy.from_document(
        doc(fund_share=curve(("0.01", "0.2"), ("0.02", "0.6"), ("0.04", "1"), window=1)), DECIMALS)
    assert policy.share([F(100), F(103)]) == (F("0.8"), F("0.03"))  # halfway on 2nd segment
    assert policy.share([F(100), F(102)]) == (F("0.6"), F("0.02"))  # exactly on a breakpoint
    assert policy.share([F(100), F(99)]) == (F("0.2"), F("0.01"))


def test_share_is_clamped_outside_the_breakpoints():
    policy = Policy.from_document(doc(fund_share=curve(("0.01", "0.5"), ("0.02", "1"))), DECIMALS)
    assert policy.share([F(100), F("100.5")]) == (F("0.5"), F("0.005"))  # below the first
    assert policy.share([F(100), F(110)]) == (F(1), F("0.1"))  # above the last
    assert policy.share([F(100)]) == (F("0.5"), F(0))  # no return observed: vol 0


def test_single_breakpoint_is_constant():
    policy = Policy.from_document(doc(fund_share=curve(("0.01", "0.3"))), DECIMALS)
    assert policy.share([F(100), F(150)])[0] == F("0.3")
    assert policy.share([])[0] == F("0.3")


def test_fixed_share_reports_zero_volatility():
    policy = Policy.from_document(doc(fund_share={"fixed": "0.5"}), DECIMALS)
    assert policy.share(PRICES) == (F(1, 2), F(0))
