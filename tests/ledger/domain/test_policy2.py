"""Policy/2's typed parse (ledger/domain/policy2.py): per pool PoolTerms, Backstop, AdlRule,
and the refusals a schema cannot state."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from ledger.domain.adltrigger import AdlRule
from ledger.domain.errors import PolicyError
from ledger.domain.policy import Policy
from ledger.domain.policy2 import PolicyV2
from ledger.domain.pools import Backstop, PoolTerms
from tests.v2fixture import example_policy, policy2

DECIMALS = {"USDT": 2, "XBT": 8}
POOLS = ("shared", "alt", "btc")
RULE = {"asset": "USDT", "window_seconds": 28800, "start_ratio": "-0.3", "stop_ratio": "-0.25",
        "minimum_balance": "100.00"}


def test_the_examples_policy_parses_to_the_waterfalls_terms() -> None:
    policy = PolicyV2.from_document(example_policy(), DECIMALS, POOLS)
    assert (policy.version, policy.fee_cap_rate, policy.socialization) == (
        1, Fraction(5, 1000), "pro_rata_profit")
    assert policy.share([]) == (Fraction(1, 2), Fraction(0))
    assert policy.terms("alt", "USDT", 3000, False) == PoolTerms("alt", 3000, 1000, False)
    assert policy.terms("btc", "XBT", 150000, True) == PoolTerms("btc", 150000, 0, True)
    assert policy.cap("alt", "USDT") == 8000 and policy.cap("shared", "USDT") is None
    assert policy.backstop("alt", "USDT", {"shared": 100000, "alt": 3000}, ()) == Backstop(
        PoolTerms("shared", 100000, 10000, False), 2500)
    assert policy.backstop("alt", "USDT", {"shared": 100000}, ("shared",)) == Backstop(
        PoolTerms("shared", 100000, 10000, True), 2500)
    assert policy.backstop("alt", "XBT", {}, ()) is None  # its limit does not name XBT
    assert policy.backstop("shared", "USDT", {}, ()) is None
    assert policy.adl_rule("shared") is None


def test_an_adl_rule_parses_to_an_adl_rule() -> None:
    policy = PolicyV2.from_document(policy2(shared={"adl": RULE}), DECIMALS, POOLS)
    assert policy.adl_rule("shared") == AdlRule("USDT", 28800, "-0.3", "-0.25", 10000)


def refusal(doc: Any) -> str:
    with pytest.raises(PolicyError) as caught:
        PolicyV2.from_document(doc, DECIMALS, POOLS)
    return str(caught.value)


@pytest.mark.parametrize(("doc", "message"), [
    ({"version": 1, "minimum_reserve": {}, "fee_cap_rate": "0", "fund_share": {"fixed": "1"},
      "socialization": "none"}, "format: a format 2 fund takes backstop-policy/2"),
    ({**policy2(), "layers": [{}]}, "layers: [{}] is expected to be empty"),
    ({**policy2(), "minimum_reserve": {}}, "minimum_reserve: Additional properties are not allowed"),
    (policy2(nope={}), "pools.nope: unknown pool nope"),
    (policy2(alt={"backstop": {"pool": "nope", "limit": {}}}),
     "pools.alt.backstop.pool: unknown pool nope"),
    (policy2(alt={"per_event_cap": {"USDT": "1.001"}}), "pools.alt.per_event_cap.USDT: "),
    (policy2(alt={"minimum_reserve": {"ETH": "1.00"}}),
     "pools.alt.minimum_reserve.ETH: unknown asset"),
    (policy2(alt={"adl": {**RULE, "asset": "ETH"}}), "pools.alt.adl.asset: unknown asset 'ETH'"),
    (policy2(alt={"adl": {**RULE, "start_ratio": "-0.2"}}),
     "pools.alt.adl.start_ratio: must satisfy -1 <= start_ratio < stop_ratio <= 0"),
    (policy2(alt={"adl": {**RULE, "window_seconds": 28800.0}}),
     "pools.alt.adl.window_seconds: 28800.0 is not an integer"),
    (policy2(alt={"adl": {**RULE, "minimum_balance": "100"}}),
     "pools.alt.adl.minimum_balance: "),
    ({**policy2(), "assets": {"X": {"haircut": "0.1", "source": "redemption_ratio"}}},
     "assets.X.underlying: 'underlying' is a required property"),
])
def test_refused(doc: Any, message: str) -> None:
    assert refusal(doc).startswith(message)


def test_a_v1_fund_refuses_policy_2() -> None:
    with pytest.raises(PolicyError, match=r"^format: a format 1 fund takes a policy/1 "):
        Policy.from_document(example_policy(), DECIMALS)
