"""The auditor's integer rules (`auditor/int_rules.py`) equal its Fraction rules
(`auditor/rules.py` `settle`, kept as the oracle) on generated liquidation data: the whole
Settlement (outcome strings, derived events, exact delta and bankruptcy price, amounts,
clawbacks) or the same RuleError, with extreme decimals and sizes and every policy kind."""

from __future__ import annotations

from random import Random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from auditor import int_rules, rules


def number(rng: Random, positive: bool = True) -> str:
    """A decimal string, often extreme: up to 40 digits, up to 30 places, odd spellings."""
    if rng.random() < 0.004:
        return rng.choice(["-0", "0", "0.000", "1e3", " 1", "01", "", "-1.5", "0.0000001"])
    digits = rng.choice([1, 2, 3, 5, 8, 12, 20, 40])
    n = rng.randint(1 if positive else 0, 10**digits)
    places = rng.choice([0, 0, 1, 2, 4, 8, 12, 18, 30])
    whole, frac = divmod(n, 10**places)
    text = f"{whole}.{frac:0{places}d}" if places else str(whole)
    return "-" + text if not positive and rng.random() < 0.3 else text


def data(rng: Random, n_cps: int) -> dict[str, Any]:
    cps = [{"account": f"c{i}", "size": number(rng), "entry_price": number(rng),
            "unrealized_pnl": number(rng, positive=False), "collateral": number(rng, False)}
           for i in range(n_cps)]
    if cps and rng.random() < 0.02:
        cps[-1]["account"] = rng.choice(["c0", "trader", ""])
    out: dict[str, Any] = {
        "asset": "Q", "account": "trader", "market": "M",
        "side": rng.choice(["long", "short"]) if rng.random() > 0.01 else "up",
        "size": number(rng), "entry_price": number(rng), "collateral": number(rng),
        "fill_price": number(rng), "mark_price": number(rng), "counterparties": cps}
    if rng.random() < 0.3:  # a deficit, often: a whole entry, little collateral
        out["entry_price"] = str(rng.randint(1, 10**6))
        out["collateral"] = rng.choice(["0", "0.01", "1", number(rng)])
    return out


def policy(rng: Random, method: str) -> dict[str, Any]:
    share: dict[str, Any] = {"fixed": rng.choice(["0", "1", "0.5", "0.333333333333"])}
    if rng.random() < 0.5:
        share = {"volatility": {"window": 3, "breakpoints": [["0", "0.2"], ["0.05", "0.9"]]}}
    doc: dict[str, Any] = {"version": 1, "fee_cap_rate": rng.choice(["0", "0.005", "1", "0.12345678"]),
                           "fund_share": share, "socialization": method,
                           "minimum_reserve": {}}
    if rng.random() < 0.5:
        doc["per_event_cap"] = {"Q": str(rng.randint(0, 10**6))}
    return doc


def result(fn: Any) -> Any:
    try:
        return fn()
    except rules.RuleError as exc:
        return ("error", str(exc))


@settings(max_examples=1500, deadline=None)
@given(st.randoms(use_true_random=True), st.integers(0, 8),
       st.sampled_from(["pro_rata_profit", "adl", "none"]), st.integers(0, 18))
def test_integer_rules_equal_the_fraction_rules(rng: Random, n_cps: int, method: str,
                                                decimals: int) -> None:
    doc = policy(rng, method)
    item = data(rng, n_cps)
    balance = rng.choice([0, 10, 10**6, 10**40])
    prices = [str(rng.randint(1, 10**6)) for _ in range(rng.randint(0, 5))]
    want = result(lambda: rules.settle(item, doc, balance, decimals, prices))
    got = result(lambda: int_rules.settle(item, doc, balance, decimals, prices))
    if isinstance(want, tuple):
        assert got == want
    else:
        assert got.__dict__ == want.__dict__


def test_a_pro_rata_shortfall_hand_computed() -> None:
    # short 1 @ 100, collateral 4, fill 110: delta = 4 - 10 = -6 -> D = 600 units (d=2); fund
    # balance 100 -> S = 500 over profits a 3.009 (300 units) and b 7 (700): 500*300/1000 = 150,
    # 500*700/1000 = 350, no left-over.
    item = {"asset": "Q", "account": "t", "side": "short", "size": "1", "entry_price": "100",
            "collateral": "4", "fill_price": "110", "mark_price": "110", "counterparties": [
                {"account": "b", "size": "1", "entry_price": "1", "unrealized_pnl": "7",
                 "collateral": "0"},
                {"account": "a", "size": "1", "entry_price": "1", "unrealized_pnl": "3.009",
                 "collateral": "0"}]}
    doc = {"version": 1, "fee_cap_rate": "0", "fund_share": {"fixed": "1"},
           "socialization": "pro_rata_profit"}
    s = int_rules.settle(item, doc, 100, 2)
    assert (s.deficit, s.fund_payment, s.socialized, s.unresolved) == (600, 100, 500, 0)
    assert s.clawbacks == {"a": 150, "b": 350}
    assert s.outcome["bankruptcy_price"] == "104.00000000"
    assert s.outcome["delta"] == "-6.00"


def test_an_adl_shortfall_hand_computed() -> None:
    # long 2 @ 100, collateral 10, fill 90: delta = -10 -> D = S = 1000 units (d=2, no fund).
    # a: pnl 6 (6.009 floored), entry 50, collateral 4 -> score 6/(50*10) = 0.012; b: pnl 8,
    # entry 100, collateral 0 -> 8/(100*8) = 0.01. a pays 600, 6/|90-95| = 1.2; b 400, 0.8.
    item = {"asset": "Q", "account": "t", "side": "long", "size": "2", "entry_price": "100",
            "collateral": "10", "fill_price": "90", "mark_price": "90", "counterparties": [
                {"account": "b", "size": "3", "entry_price": "100", "unrealized_pnl": "8",
                 "collateral": "0"},
                {"account": "a", "size": "5", "entry_price": "50", "unrealized_pnl": "6.009",
                 "collateral": "4"}]}
    doc = {"version": 1, "fee_cap_rate": "0", "fund_share": {"fixed": "1"}, "socialization": "adl"}
    s = int_rules.settle(item, doc, 0, 2)
    assert [(typ, e.get("account"), e["amount"], e.get("adl_quantity"), e.get("adl_price"))
            for typ, e in s.events] == [
        ("socialized_loss_assessed", None, "10.00", None, None),
        ("clawback_charged", "a", "6.00", "1.20000000", "95.00000000"),
        ("clawback_charged", "b", "4.00", "0.80000000", "95.00000000")]
    assert s.unresolved == 0
