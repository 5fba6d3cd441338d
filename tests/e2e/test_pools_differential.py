"""The v2 twins agree: the ledger's pool, claim, ADL-trigger and inverse rules
(`ledger/domain/pools.py`, `claims.py`, `adltrigger.py`, `inverse.py`) and the auditor's own
(`auditor/pool_rules.py`, `adl_rules.py`, `inverse_rules.py`, written from schemas/README.md
alone) give identical outputs on hypothesis-generated structures, balance paths and positions.

The path test drives both sides through the same generated facts (injections, transfers,
deficits, policy changes, caps, moves, idle events) with a small replay of each side's own
(balances, claims, ADL states), and compares every event each side says the facts cause."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from auditor import adl_rules, inverse_rules, pool_rules
from ledger.domain.adltrigger import AdlRule, BalanceSeries, evaluate
from ledger.domain.claims import Claim, ClaimCap, remaining_claim
from ledger.domain.errors import FundRuleError
from ledger.domain.inverse import InversePosition, adl_clawbacks, deficit, displayed_delta, surplus
from ledger.domain.pools import Backstop, PoolBalances, PoolTerms, split_deficit
from ledger.domain.waterfall import Clawback, Counterparty, pro_rata
from tests.v2gen import adl_rule, stamp

A, D2 = "USDT", 2
METHODS = ("pro_rata_profit", "adl", "none")


def clawbacks_for(profits: dict[str, int]):
    """One socializer for both sides (the v1 methods are checked by test_rules_differential):
    pro rata by the ledger's largest remainder, or greedy by account id for adl."""
    def ledger_side(amount: int, method: str) -> list[Clawback]:
        if method == "pro_rata_profit":
            return [Clawback(a, u) for a, u in pro_rata(amount, profits)]
        if method == "none":
            return []
        out, left = [], amount
        for account in sorted(profits):
            if left and profits[account] > 0:
                out.append(Clawback(account, min(left, profits[account])))
                left -= out[-1].amount
        return out

    def auditor_side(amount: int, method: str) -> list[tuple[str, int]]:
        return [(c.account, c.amount) for c in ledger_side(amount, method)]

    return ledger_side, auditor_side


# ---------------------------------------------------------------- one deficit

money = st.integers(0, 10**6)
limit = st.one_of(st.none(), money)


@st.composite
def deficits(draw: st.DrawFn) -> dict[str, Any]:
    claims = draw(st.lists(st.tuples(st.integers(0, 400), money.map(lambda u: u // 10)),
                           max_size=8))
    claims = [(i, stamp(h), units) for i, (h, units) in enumerate(sorted(claims))]
    period = draw(st.one_of(st.none(), st.integers(1, 200)))
    return {
        "deficit": draw(st.integers(1, 2 * 10**6)), "method": draw(st.sampled_from(METHODS)),
        "p": (draw(money), draw(money.map(lambda u: u // 4)), draw(st.booleans())),
        "q": draw(st.one_of(st.none(), st.tuples(money, money.map(lambda u: u // 4),
                                                 st.booleans(), money))),
        "cap": draw(limit),
        "claim_cap": draw(st.one_of(st.none(), st.tuples(
            st.integers(-1, 8), limit, st.none() if period is None else limit))),
        "period": period, "claims": claims, "when": stamp(draw(st.integers(400, 800))),
        "profits": draw(st.dictionaries(st.sampled_from("abcdef"), st.integers(-50, 10**5),
                                        max_size=5)),
    }


@settings(max_examples=1000, deadline=None)
@given(deficits())
def test_one_deficit(case: dict[str, Any]) -> None:
    ledger_claws, auditor_claws = clawbacks_for(case["profits"])
    period = case["period"]
    cap_l = cap_a = None
    if case["claim_cap"] is not None:
        index, total, per = case["claim_cap"]
        per, period = (per, period) if per is not None else (None, None)
        cap_l = ClaimCap(index, total, per, period)
        cap_a = pool_rules.Cap(index, total, per, period)
    room = remaining_claim(cap_l, [Claim(*c) for c in case["claims"]], case["when"])
    assert room == pool_rules.claim_room(cap_a, case["claims"], case["when"])

    balance, reserve, adl = case["p"]
    backstop_l = backstop_a = None
    if case["q"] is not None:
        qb, qr, qadl, qlimit = case["q"]
        backstop_l = Backstop(PoolTerms("q", qb, qr, qadl), qlimit)
        backstop_a = (pool_rules.Side("q", qb, qr, qadl), qlimit)
    ours = split_deficit(case["deficit"], PoolTerms("p", balance, reserve, adl),
                         method=case["method"], socialize=ledger_claws, cap=case["cap"],
                         remaining=room, backstop=backstop_l)
    payer = pool_rules.Side("p", balance, reserve, adl)
    theirs = pool_rules.waterfall(case["deficit"], payer, case["method"], auditor_claws,
                                  cap=case["cap"], room=room, backstop=backstop_a)
    assert (ours.fund_payment, ours.backstop_payment, ours.backstop_pool, ours.socialized,
            ours.unresolved, ours.method) == (
        theirs.fund_payment, theirs.backstop_payment, theirs.backstop_pool, theirs.socialized,
        theirs.unresolved, theirs.method)
    assert [(c.account, c.amount) for c in ours.clawbacks] == theirs.paid
    assert pool_rules.split_error(theirs, payer, cap=case["cap"], room=room,
                                  backstop=backstop_a) is None
    where = {"pool": "p", "market": "M", "asset": A, "account": "t", "decimals": D2}
    qlimit_ = case["q"][3] if case["q"] else None
    assert ours.events(**where, limit=qlimit_) == pool_rules.expected_events(
        theirs, **where, limit=qlimit_)


# ---------------------------------------------------------------- balance paths

POOLS = ("p0", "p1", "p2")
MARKETS = ("M0", "M1")
ratios = st.integers(-100, 0).map(lambda k: Fraction(k, 100))


@st.composite
def paths(draw: st.DrawFn) -> dict[str, Any]:
    pools = {p: {"reserve": draw(st.integers(0, 300)), "cap": draw(st.one_of(st.none(), st.integers(0, 5000))),
                 "backstop": draw(st.one_of(st.none(), st.tuples(
                     st.sampled_from([x for x in POOLS if x != p]), st.integers(0, 3000))))}
             for p in POOLS}
    inject = st.tuples(st.just("inject"), st.sampled_from(POOLS), st.integers(1, 20000))
    liq = st.tuples(st.just("liq"), st.sampled_from(MARKETS), st.integers(1, 9000),
                    st.dictionaries(st.sampled_from("abc"), st.integers(-10, 3000), max_size=3))
    step = st.one_of(
        inject, liq, liq,  # money moves most often
        st.tuples(st.just("transfer"), st.sampled_from(POOLS), st.sampled_from(POOLS),
                  st.integers(1, 8000)),
        st.tuples(st.just("tick")),
        st.tuples(st.just("policy"), st.sampled_from(POOLS), adl_rule()),
        st.tuples(st.just("cap"), st.sampled_from(MARKETS),
                  st.one_of(st.none(), st.integers(0, 20000)), st.one_of(st.none(), st.integers(0, 5000)),
                  st.sampled_from([60, 3600, 86400])),
        st.tuples(st.just("move"), st.sampled_from(MARKETS), st.sampled_from(POOLS)),
    )
    # Time steps in half seconds: often none, often a little, sometimes past a window.
    gaps = st.sampled_from([0, 0, 1, 120, 3600, 7200, 28800, 57601, 172800])
    # Every pool starts funded and most with a rule, so deficits soon draw down a watched pool.
    opening = [(0, ("policy", p, draw(adl_rule()))) for p in POOLS]
    opening += [(0, ("inject", p, draw(st.integers(1, 20000)))) for p in POOLS]
    return {"pools": pools, "method": draw(st.sampled_from(METHODS)),
            "steps": opening + draw(st.lists(st.tuples(gaps, step), min_size=8, max_size=40))}


class LedgerReplay:
    """The facts through the ledger's rules."""

    def __init__(self, pools: dict[str, Any], method: str) -> None:
        self.pools, self.method = pools, method
        self.balances = PoolBalances({p: {A: 0} for p in POOLS})
        self.series = {p: BalanceSeries() for p in POOLS}
        self.rules: dict[str, AdlRule | None] = dict.fromkeys(POOLS)
        self.in_adl = dict.fromkeys(POOLS, False)
        self.claims: dict[str, list[Claim]] = {m: [] for m in MARKETS}
        self.caps: dict[str, ClaimCap | None] = dict.fromkeys(MARKETS)
        self.where = dict(zip(MARKETS, POOLS, strict=False))
        self.log: list[tuple[str, Any]] = []
        self.refused: list[tuple[Any, ...]] = []  # facts refused: no event

    def append(self, time: str, kind: str, data: Any) -> None:
        index = len(self.log)
        if kind in ("deficit_covered", "backstop_drawn"):
            self.balances = self.balances.change(data["pool"], A, -_units(data["amount"]))
            self.claims[data["market"]].append(Claim(index, time, _units(data["amount"])))
        elif kind == "capital_injected":
            self.balances = self.balances.change(data["pool"], A, data["units"])
        elif kind == "capital_transferred":
            self.balances = self.balances.transfer(data["from"], data["to"], A, data["units"])
        for p in POOLS:
            self.series[p].record(index, time, self.balances.of(p, A))
        self.log.append((kind, data))

    def fact(self, time: str, step: tuple[Any, ...]) -> None:
        kind = step[0]
        if kind == "inject":
            self.append(time, "capital_injected", {"pool": step[1], "units": step[2]})
        elif kind == "transfer":
            try:
                self.balances.transfer(step[1], step[2], A, step[3])
            except FundRuleError:
                self.refused.append(step)
                return
            self.append(time, "capital_transferred", {"from": step[1], "to": step[2], "units": step[3]})
        elif kind == "liq":
            self.liquidation(time, *step[1:])
        elif kind == "policy":
            rule = step[2]
            self.rules[step[1]] = None if rule is None else AdlRule(A, rule[0], rule[1], rule[2], rule[3])
            self.append(time, "policy_set", {"pool": step[1], "rule": rule})
        elif kind == "cap":
            self.caps[step[1]] = ClaimCap(len(self.log), step[2], step[3],
                                          None if step[3] is None else step[4])
            self.append(time, "claim_cap_set", step)
        elif kind == "move":
            self.where[step[1]] = step[2]
            self.append(time, "market_assigned", step)
        else:
            self.append(time, "market_observed", None)
        for p in POOLS:  # the trigger, per fact, in ascending pool id
            change = evaluate(self.rules[p], self.in_adl[p], self.series[p])
            if change is not None:
                self.in_adl[p] = change.type == "adl_started"
                self.append(time, change.type, change.data(p, A, D2, 1))

    def liquidation(self, time: str, market: str, deficit: int, profits: dict[str, int]) -> None:
        p = self.where[market]
        terms = self.pools[p]
        self.append(time, "liquidation_settled", {"market": market})
        backstop, lim = None, None
        if terms["backstop"] is not None:
            q, lim = terms["backstop"]
            backstop = Backstop(PoolTerms(q, self.balances.of(q, A), self.pools[q]["reserve"],
                                          self.in_adl[q]), lim)
        room = remaining_claim(self.caps[market], self.claims[market], time)
        split = split_deficit(deficit, PoolTerms(p, self.balances.of(p, A), terms["reserve"],
                                                 self.in_adl[p]),
                              method=self.method, socialize=clawbacks_for(profits)[0],
                              cap=terms["cap"], remaining=room, backstop=backstop)
        for kind, data in split.events(pool=p, market=market, asset=A, account="t",
                                       decimals=D2, limit=lim):
            self.append(time, kind, data)


class AuditorReplay:
    """The same facts through the auditor's rules, with its own plain state."""

    def __init__(self, pools: dict[str, Any], method: str) -> None:
        self.pools, self.method = pools, method
        self.bal = {p: 0 for p in POOLS}
        self.series: dict[str, list[tuple[str, int]]] = {p: [] for p in POOLS}
        self.rules: dict[str, adl_rules.Rule | None] = dict.fromkeys(POOLS)
        self.adl = dict.fromkeys(POOLS, False)
        self.claims: dict[str, list[tuple[int, str, int]]] = {m: [] for m in MARKETS}
        self.caps: dict[str, pool_rules.Cap | None] = dict.fromkeys(MARKETS)
        self.where = dict(zip(MARKETS, POOLS, strict=False))
        self.log: list[tuple[str, Any]] = []
        self.refused: list[tuple[Any, ...]] = []  # facts refused: no event

    def append(self, time: str, kind: str, data: Any) -> None:
        if kind in ("deficit_covered", "backstop_drawn"):
            self.bal[data["pool"]] -= _units(data["amount"])
            assert self.bal[data["pool"]] >= 0, "a pool went below zero"
            self.claims[data["market"]].append((len(self.log), time, _units(data["amount"])))
        elif kind == "capital_injected":
            self.bal[data["pool"]] += data["units"]
        elif kind == "capital_transferred":
            self.bal[data["from"]] -= data["units"]
            self.bal[data["to"]] += data["units"]
        for p in POOLS:
            self.series[p].append((time, self.bal[p]))
        self.log.append((kind, data))

    def fact(self, time: str, step: tuple[Any, ...]) -> None:
        kind = step[0]
        if kind == "inject":
            self.append(time, "capital_injected", {"pool": step[1], "units": step[2]})
        elif kind == "transfer":
            balances = {p: {A: self.bal[p]} for p in POOLS}
            if pool_rules.transfer_error(balances, step[1], step[2], A, step[3]) is not None:
                self.refused.append(step)
                return
            self.append(time, "capital_transferred", {"from": step[1], "to": step[2], "units": step[3]})
        elif kind == "liq":
            self.liquidation(time, *step[1:])
        elif kind == "policy":
            rule = step[2]
            self.rules[step[1]] = None if rule is None else adl_rules.Rule(A, *rule)
            self.append(time, "policy_set", {"pool": step[1], "rule": rule})
        elif kind == "cap":
            self.caps[step[1]] = pool_rules.Cap(len(self.log), step[2], step[3],
                                                None if step[3] is None else step[4])
            self.append(time, "claim_cap_set", step)
        elif kind == "move":
            self.where[step[1]] = step[2]
            self.append(time, "market_assigned", step)
        else:
            self.append(time, "market_observed", None)
        for p in POOLS:
            verdict = adl_rules.judge(p, A, self.rules[p], self.adl[p], self.series[p], 0, D2, 1)
            if verdict is not None:
                self.adl[p] = verdict.type == "adl_started"
                self.append(time, verdict.type, verdict.data)

    def liquidation(self, time: str, market: str, deficit: int, profits: dict[str, int]) -> None:
        p = self.where[market]
        terms = self.pools[p]
        self.append(time, "liquidation_settled", {"market": market})
        backstop, lim = None, None
        if terms["backstop"] is not None:
            q, lim = terms["backstop"]
            backstop = (pool_rules.Side(q, self.bal[q], self.pools[q]["reserve"], self.adl[q]), lim)
        room = pool_rules.claim_room(self.caps[market], self.claims[market], time)
        payer = pool_rules.Side(p, self.bal[p], terms["reserve"], self.adl[p])
        split = pool_rules.waterfall(deficit, payer, self.method, clawbacks_for(profits)[1],
                                     cap=terms["cap"], room=room, backstop=backstop)
        assert pool_rules.split_error(split, payer, cap=terms["cap"], room=room,
                                      backstop=backstop) is None
        for kind, data in pool_rules.expected_events(split, pool=p, market=market, asset=A,
                                                     account="t", decimals=D2, limit=lim):
            self.append(time, kind, data)


def _units(amount: str) -> int:
    whole, _, frac = amount.partition(".")
    return int(whole + frac)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(paths())
def test_balance_paths(path: dict[str, Any]) -> None:
    ours, theirs = LedgerReplay(path["pools"], path["method"]), AuditorReplay(path["pools"], path["method"])
    clock = 0
    for gap, step in path["steps"]:
        clock += gap
        ours.fact(stamp(clock), step)
        theirs.fact(stamp(clock), step)
        assert (ours.log, ours.refused) == (theirs.log, theirs.refused)
    assert [ours.balances.of(p, A) for p in POOLS] == [theirs.bal[p] for p in POOLS]
    for kind in sorted({k for k, _ in ours.log} & {"adl_started", "adl_ended", "backstop_drawn"}):
        event(kind)  # the statistics show the paths reach the rules that matter
    if any(k == "adl_ended" and d["reason"] == "policy" for k, d in ours.log):
        event("adl_ended by policy")


# ---------------------------------------------------------------- inverse positions

size = st.integers(1, 10**6).map(Fraction)
price = st.integers(100, 10**6).map(lambda c: Fraction(c, 10))
coins = st.integers(0, 10**8).map(lambda u: Fraction(u, 10**8))
face = st.sampled_from([Fraction(1), Fraction(100), Fraction(1, 10)])


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(["long", "short"]), size, price, coins, price, face, price,
       st.integers(0, 20).map(lambda r: Fraction(r, 1000)), st.integers(0, 4).map(lambda s: Fraction(s, 4)),
       st.lists(st.tuples(size, price, coins, st.integers(-10**6, 10**7)), max_size=4),
       st.integers(4, 10))
def test_inverse_positions(side, n, entry, collateral, fill, f, mark, rate, share, holders, d) -> None:
    pos = InversePosition(side, n, entry, collateral, fill, f)
    twin = inverse_rules.derive(side, n, f, entry, collateral, fill, d)
    assert (pos.pnl(fill), pos.delta, pos.bankruptcy_price) == (twin.pnl, twin.delta, twin.bankruptcy)
    assert (displayed_delta(pos, d), deficit(pos, d)) == (twin.delta_units, twin.deficit)
    if pos.delta >= 0:
        assert surplus(pos, rate, share, d) == inverse_rules.fee_split(twin, n, f, fill, rate, share, d)
        return
    assert pos.bankruptcy_price is not None
    names = "abcd"
    # Each holder's pnl: sub-unit digits below the floored units, so flooring is exercised.
    cps = [Counterparty(names[k], hn, he, (pnl * 10**d) // 10**7, hc)
           for k, (hn, he, hc, pnl) in enumerate(holders)]
    exact = [inverse_rules.Holder(names[k], hn, he, hc, Fraction(pnl, 10**7))
             for k, (hn, he, hc, pnl) in enumerate(holders)]
    amount = deficit(pos, d)
    ours = [(c.account, c.amount, c.adl_quantity)
            for c in adl_clawbacks(pos, cps, mark, amount, d)]
    assert ours == inverse_rules.deleverage(exact, amount, f, mark, fill, pos.bankruptcy_price, d)
