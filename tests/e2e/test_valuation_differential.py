"""The ledger's valuation (ledger.domain.valuation) and the auditor's (auditor.valuation_rules)
agree on generated inputs: π under every source with and without a floor, a pool's value raw
and after haircut with unvalued assets, the conversion bound, canonical decimals. Each side
is checked by hand in tests/ledger/domain/test_valuation.py; this checks they are the same
function. Exact integers and fractions only."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from auditor import valuation_rules as audit
from ledger.domain import valuation as ledger

ASSETS = ("USDT", "XBT", "ETH", "WBETH", "STETH")
BASES = ("USDT", "XBT", "ETH")  # valued par or oracle; WBETH / STETH may be ratio assets


def decimal(places: int, high: int) -> st.SearchStrategy[Fraction]:
    """A positive decimal of at most `places` decimals up to `high`."""
    return st.integers(1, high * 10**places).map(lambda n: Fraction(n, 10**places))


haircuts = st.integers(0, 100).map(lambda n: Fraction(n, 100)) | st.sampled_from(
    [Fraction(0), Fraction(1), Fraction(1, 1000)])


@st.composite
def books(draw: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Fraction],
                              dict[tuple[str, str], Fraction]]:
    """(ledger terms, auditor terms, prices, ratios) of a random policy and price book."""
    spec: dict[str, tuple[Fraction, str, str | None, Fraction | None]] = {}
    for asset in ASSETS:
        if draw(st.booleans()) and asset != "USDT":
            continue  # no terms: unvalued
        h = draw(haircuts)
        if asset in BASES:
            spec[asset] = (h, draw(st.sampled_from(["par", "oracle"])), None, None)
        else:
            floor = draw(st.none() | decimal(2, 5000))
            spec[asset] = (h, "redemption_ratio", draw(st.sampled_from(BASES)), floor)
    for asset, (_, source, under, _) in list(spec.items()):
        if source == "redemption_ratio" and under not in spec:
            del spec[asset]  # policy/2 requires a valued underlying
    prices = {a: draw(decimal(8, 100000)) for a in ASSETS if draw(st.booleans())}
    ratios = {(a, u): draw(decimal(6, 3)) for a in ("WBETH", "STETH") for u in BASES
              if draw(st.booleans())}

    def text(h: Fraction) -> str:
        return ledger.canonical(h)

    lt = {a: ledger.AssetTerms(h, text(h), s, u, f) for a, (h, s, u, f) in spec.items()}
    at = {a: audit.Terms(h, text(h), s, u, f) for a, (h, s, u, f) in spec.items()}
    return lt, at, prices, ratios


@settings(max_examples=300, deadline=None)
@given(books(), st.dictionaries(st.sampled_from(ASSETS), st.integers(0, 10**20)),
       st.integers(0, 8))
def test_prices_and_pool_values_agree(book: Any, balances: dict[str, int], v: int) -> None:
    lt, at, prices, ratios = book
    known = ledger.valuation_prices(lt, prices, ratios)
    assert known == audit.known_prices(at, prices, ratios)
    for asset in ASSETS:
        assert ledger.valuation_price(asset, lt, prices, ratios) == audit.pi(asset, at, prices,
                                                                            ratios)
    decimals = {"USDT": 2, "XBT": 8, "ETH": 18, "WBETH": 8, "STETH": 0}
    haircuts = {a: t.haircut for a, t in lt.items()}
    mine = ledger.pool_value(balances, known, haircuts, decimals, v)
    assert mine == audit.pool_value(balances, known, haircuts, decimals, v)
    raw, after, unvalued = mine
    assert 0 <= after <= raw  # a haircut never adds value
    assert unvalued == sorted(a for a, b in balances.items() if b > 0 and a not in known)
    assert ledger.total_value({"p": mine, "q": mine}) == audit.total_value({"p": mine, "q": mine})
    for value in known.values():
        assert ledger.canonical(value) == audit.canonical(value)
        assert Fraction(ledger.canonical(value)) == value


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 10**18), st.integers(0, 18), decimal(8, 100000), haircuts,
       st.integers(0, 18), decimal(8, 100000), haircuts, st.integers(0, 10**22))
def test_conversion_bounds_agree(out: int, d_from: int, p_from: Fraction, h_from: Fraction,
                                 d_to: int, p_to: Fraction, h_to: Fraction, into: int) -> None:
    mine = ledger.conversion_bounds(out, d_from, p_from, h_from, d_to, p_to, h_to)
    assert mine == audit.bounds(out, d_from, p_from, h_from, d_to, p_to, h_to)
    low, high = mine
    # the bound exactly: V_to >= V_from (1 - h_from) and V_to (1 - h_to) <= V_from
    v_from = Fraction(out, 10**d_from) * p_from
    edges = [low - 1, low] + ([] if high is None else [high, high + 1])
    for units in [into, *edges]:  # a random amount, and each side of each edge
        v_to = Fraction(units, 10**d_to) * p_to
        inside = v_to >= v_from * (1 - h_from) and v_to * (1 - h_to) <= v_from
        assert inside == (low <= units and (high is None or units <= high))
