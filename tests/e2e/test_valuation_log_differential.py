"""Prices and conversions through both sides on generated fact sequences: the ledger's
commands (ledger.domain.poolfund, in memory) record what they accept, and the auditor's v2
replay (auditor.replays.replay) re-derives the exported log to the same pool balances. The
ledger accepts a conversion exactly when the README's bound holds for the prices recorded so
far (`V_to >= V_from·(1 - h_from)`, `V_to·(1 - h_to) <= V_from`), checked here on the exact
rationals, and never accepts one without both prices or beyond the pool's balance."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from auditor.formats.wire import canonical_bytes, format_amount
from auditor.replays import replay
from ledger.domain import poolfund
from ledger.domain.errors import FundRuleError
from ledger.domain.fund import export_event
from tests.v2fixture import T0
from tests.valuation_kit import ASSETS, config

DECIMALS = {"USDT": 2, "XBT": 8, "WBETH": 8, "ETH": 8}
HAIRCUT = {a: Fraction(t["haircut"]) for a, t in ASSETS.items()}


def pi(asset: str, prices: dict[str, Fraction], ratios: dict[str, Fraction]) -> Fraction | None:
    """The README's π for V1's terms (WBETH by its ratio to ETH, the rest oracle)."""
    if asset == "WBETH":
        if "WBETH" not in ratios or "ETH" not in prices:
            return None
        return ratios["WBETH"] * prices["ETH"]
    return prices.get(asset)


def value(places: int) -> st.SearchStrategy[str]:
    return st.integers(10**places // 10, 10**(places + 4)).map(lambda n: format_amount(n, places).rstrip("0").rstrip("."))


prices_st = st.tuples(st.just("price"), st.sampled_from(sorted(DECIMALS)), value(4))
ratios_st = st.tuples(st.just("ratio"), st.just("WBETH"), value(6))
conversions_st = st.tuples(st.just("conversion"),
                           st.sampled_from([(a, b) for a in DECIMALS for b in DECIMALS if a != b]),
                           st.integers(10**5, 10**9), st.integers(-2, 2), st.booleans())
# every price known first (then changed, or not, by the steps)
opening_st = st.tuples(*[st.tuples(st.just("price"), st.just(a), value(4)) for a in
                         sorted(DECIMALS)], ratios_st).map(list)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.just([]), opening_st),
       st.lists(st.one_of(prices_st, ratios_st, conversions_st, conversions_st), min_size=1,
                max_size=25))
def test_what_the_ledger_records_the_auditor_verifies(opening: list[Any],
                                                      later: list[Any]) -> None:
    steps = [*opening, *later]
    fund = poolfund.open_fund(config(), T0)
    start = {"USDT": 10**9, "XBT": 10**10, "WBETH": 10**10, "ETH": 10**10}
    for asset, units in start.items():
        poolfund.COMMANDS["capital"](fund, {
            "type": "capital", "id": f"in-{asset}", "time": T0, "direction": "inject",
            "asset": asset, "amount": format_amount(units, DECIMALS[asset]),
            "source": "operator", "pool": "main"})
    held = dict(start)
    prices: dict[str, Fraction] = {}
    ratios: dict[str, Fraction] = {}
    accepted = 0
    for n, step in enumerate(steps):
        if step[0] != "conversion":
            _, asset, text = step
            fact = {"type": "price", "id": f"p{n}", "time": T0, "asset": asset, "kind": step[0],
                    "value": text, "source": "gen"}
            fact.update({"currency": "USD"} if step[0] == "price" else {"underlying": "ETH"})
            poolfund.COMMANDS["price"](fund, fact)
            (prices if step[0] == "price" else ratios)[asset] = Fraction(text)
            continue
        _, (source, target), out, offset, upper = step
        p_from, p_to = pi(source, prices, ratios), pi(target, prices, ratios)
        into = 1
        if p_from is not None and p_to is not None:
            # near the bound's lower edge, or its upper one: the cases that matter
            v_from = Fraction(out, 10**DECIMALS[source]) * p_from
            edge = v_from / (1 - HAIRCUT[target]) if upper else v_from * (1 - HAIRCUT[source])
            into = max(1, int(edge / p_to * 10**DECIMALS[target]) + offset)
        fact = {"type": "conversion", "id": f"k{n}", "time": T0, "pool": "main",
                "from_asset": source, "from_amount": format_amount(out, DECIMALS[source]),
                "to_asset": target, "to_amount": format_amount(into, DECIMALS[target]),
                "venue": "gen"}
        inside = False
        if p_from is not None and p_to is not None and out <= held[source]:
            v_from = Fraction(out, 10**DECIMALS[source]) * p_from
            v_to = Fraction(into, 10**DECIMALS[target]) * p_to
            inside = v_to >= v_from * (1 - HAIRCUT[source]) and \
                v_to * (1 - HAIRCUT[target]) <= v_from
        try:
            poolfund.COMMANDS["conversion"](fund, fact)
            recorded = True
        except FundRuleError:
            recorded = False
        assert recorded == inside, (fact, p_from, p_to)
        if recorded:
            held[source] -= out
            held[target] += into
            accepted += 1
    event(f"conversions accepted: {min(accepted, 3)}{'+' if accepted > 3 else ''}")
    lines = [canonical_bytes(export_event(ev, fund.name)) + b"\n" for ev in fund.pending_events]
    result = replay(lines)
    assert result.count == len(lines)
    assert result.pools["main"] == held
    assert result.pools["btc"] == dict.fromkeys(DECIMALS, 0)
