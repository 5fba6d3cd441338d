"""The twins agree: `ledger/waterfall.py` (the operator's rules) and `auditor/rules.py` (the
auditor's, written from schemas/README.md alone) give identical outcomes and derived events on
generated liquidations under every policy kind, and so do their integer paths
(`ledger/domain/intsettle.py`, `auditor/int_rules.py`), each equal to its Fraction one; a random fact file, imported and published by
the ledger, verifies with `backstop-audit replay`; and the ledger's bookkeeping
(`ledger/domain/bookkeeping.py`) and the auditor's replay (`auditor/replay.py`) give the same
balances and account totals over generated logs with rebalances and withdrawals."""

from __future__ import annotations

import json
import tempfile
from fractions import Fraction
from math import ceil, floor
from pathlib import Path
from random import Random
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from auditor import int_rules, rules
from auditor.cli import main as audit
from auditor.formats.wire import format_amount, parse_amount, parse_decimal
from auditor.replay import replay
from ledger.cli.main import main as operator
from ledger.domain.bookkeeping import ACCOUNT_TOTALS, FUND, moves
from ledger.domain.fund import Fund
from ledger.domain.intsettle import settle_record
from ledger.domain.policy import Policy
from ledger.domain.waterfall import LiquidationFact, settle
from ledger.service import queries
from ledger.service.application import Ledger
from ledger.service.importer import import_file
from tests.factories import write_jsonl

ASSET, MARKET, TRADER = "USDT", "BTC-PERP", "trader"
ACCOUNTS = ("a", "b", "c", "d", "e", "f", "g")
METHODS = ("pro_rata_profit", "adl", "none")
EXAMPLES = 2000  # the issue asks for at least 2,000 in CI
draw_t = st.DrawFn


def decimal(rng: Random, lo: Fraction, hi: Fraction, places: int = 12) -> str:
    """A decimal string in [lo, hi] with 0 to `places` decimals (many, often)."""
    k = rng.randint(0, places)
    low, high = ceil(lo * 10**k), floor(hi * 10**k)
    if low > high:  # no value with k decimals in range: take the finest grid
        k = places
        low, high = ceil(lo * 10**k), floor(hi * 10**k)
    return format_amount(rng.randint(low, high), k)


def amount(units: int, d: int) -> str:
    return format_amount(units, d)


def edge(rng: Random, usual: Any, *edges: Any) -> Any:
    """`usual`, or (one time in four) one of the edge values."""
    return rng.choice(edges) if edges and rng.random() < 0.25 else usual


def rate(rng: Random) -> str:
    return edge(rng, decimal(rng, Fraction(0), Fraction(1), 8), "0", "1", "1.000")


# Hypothesis draws the structure (decimals, kinds, counts; these shrink); the numbers come
# from one seeded Random per example, which keeps 2,000 examples within seconds.


@st.composite
def policies(draw: draw_t, d: int, version: int = 1) -> dict[str, Any]:
    """A policy document of any kind: fixed or volatility share, reserve and cap or not."""
    rng = draw(st.randoms(use_true_random=True))
    if draw(st.booleans()):
        share: dict[str, Any] = {"fixed": rate(rng)}
    else:
        vols = sorted({rng.randint(0, 5000) for _ in range(draw(st.integers(1, 4)))})
        share = {"volatility": {
            "window": draw(st.integers(1, 8)),
            "breakpoints": [[format_amount(v, 5), rate(rng)] for v in vols]}}  # vol 0..0.05
    doc: dict[str, Any] = {
        "version": version,
        "minimum_reserve": {ASSET: amount(edge(rng, rng.randint(0, 10**(d + 3)), 0), d)},
        "fee_cap_rate": rate(rng),
        "fund_share": share,
        "socialization": draw(st.sampled_from(METHODS)),
    }
    if draw(st.booleans()):
        doc["per_event_cap"] = {ASSET: amount(edge(rng, rng.randint(0, 10**(d + 4)), 0), d)}
    return doc


def counterparties(rng: Random, d: int, count: int, scale: Fraction) -> list[dict[str, Any]]:
    """Profitable and losing accounts, profits up to `scale`; some profits differ from
    another's only below a unit (equal once floored: the ranking's tie rule decides)."""
    out: list[dict[str, Any]] = []
    names = rng.sample(ACCOUNTS, count) if count <= len(ACCOUNTS) else [
        f"n{i:04d}" for i in range(count)]  # a large liquidation (format v1.1)
    for name in names:
        if out and rng.random() < 0.3:  # a twin of the previous one but for sub-unit profit
            units = floor(parse_decimal(out[-1]["unrealized_pnl"]) * 10**d)
            pnl = format_amount(units * 10**6 + rng.randint(0, 10**6 - 1), d + 6)
            out.append({**out[-1], "account": name, "unrealized_pnl": pnl})
            continue
        out.append({"account": name,
                    "size": decimal(rng, Fraction(1, 10**8), Fraction(50), 8),
                    "entry_price": decimal(rng, Fraction(1, 100), Fraction(100000), 10),
                    "unrealized_pnl": decimal(rng, -scale / 10, scale, d + 4),
                    "collateral": edge(rng, decimal(rng, Fraction(0), Fraction(5000), 10), "0")})
    return out


@st.composite
def liquidations(draw: draw_t, d: int, id_: str = "L1", large: bool = False) -> dict[str, Any]:
    """A liquidation fact, long or short, closing anywhere from deep deficit to surplus, or
    exactly at its bankruptcy price; `large`: with 800 to 900 counterparties, whose line
    (at least ~85 bytes each) passes 65,535 bytes, so it is recorded in format v1.1."""
    rng = draw(st.randoms(use_true_random=True))
    side = draw(st.sampled_from(["long", "short"]))
    entry = decimal(rng, Fraction(1, 10), Fraction(100000), 8)
    size = decimal(rng, Fraction(1, 10**6), Fraction(20), 8)
    per_contract = parse_decimal(entry) * rng.randint(0, 2000) / 10000  # collateral / size
    collateral = format_amount(floor(per_contract * parse_decimal(size) * 10**16), 16)
    move = Fraction(rng.randint(-4000, 4000), 10000)  # -40% .. +40%
    fill = decimal(rng, parse_decimal(entry) * (1 + move), parse_decimal(entry) * (1 + move) + 1, 10)
    if draw(st.integers(0, 9)) == 0:  # exactly at bankruptcy: delta 0
        per = parse_decimal(collateral) / parse_decimal(size)
        at = parse_decimal(entry) + (per if side == "short" else -per)
        if at > 0 and 10**20 % at.denominator == 0:
            fill = format_amount(int(at * 10**20), 20)
    mark = edge(rng, decimal(rng, Fraction(1, 100), Fraction(200000), 6), fill)
    return {"type": "liquidation", "id": id_, "time": "2020-03-12T00:00:00Z",
            "account": TRADER, "market": MARKET, "side": side, "size": size,
            "entry_price": entry, "collateral": collateral, "fill_price": fill,
            "mark_price": mark,
            "counterparties": counterparties(rng, d, draw(
                st.integers(800, 900) if large else st.integers(0, 6)), rng.choice(
                [Fraction(10), parse_decimal(entry) * parse_decimal(size) / 8]))}


@st.composite
def cases(draw: draw_t) -> tuple[int, dict[str, Any], dict[str, Any], int, list[str]]:
    d = draw(st.integers(0, 18))
    rng = draw(st.randoms(use_true_random=True))
    prices = [decimal(rng, Fraction(1, 10**4), Fraction(10**6), 8)
              for _ in range(draw(st.integers(0, 10)))]
    balance = edge(rng, rng.randint(0, 10**(d + 4)), 0, 10**(d + 2))
    return d, draw(policies(d)), draw(liquidations(d)), balance, prices


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_twins_give_identical_outcomes_and_derived_events(
        case: tuple[int, dict[str, Any], dict[str, Any], int, list[str]]) -> None:
    d, doc, record, balance, prices = case
    fact = LiquidationFact.from_record(record, d)
    ours = settle(fact, Policy.from_document(doc, {ASSET: d}), balance, d,
                  [parse_decimal(p) for p in prices], asset=ASSET)
    data = {k: v for k, v in record.items() if k not in ("type", "id", "time")}  # event data
    theirs = rules.settle({**data, "asset": ASSET}, doc, balance, d, prices)
    assert ours.outcome(d) == theirs.outcome
    assert ours.events(ASSET, TRADER, d) == theirs.events
    assert rules.outcome_mismatch(theirs, ours.outcome(d), d) is None
    assert rules.conservation_error(ours.outcome(d), theirs.delta, d) is None
    # The integer twins (the import's and the replay's paths) equal the Fraction ones.
    policy = Policy.from_document(doc, {ASSET: d})
    assert settle_record(record, policy, balance, d, [parse_decimal(p) for p in prices],
                         asset=ASSET) == ours
    assert int_rules.settle({**data, "asset": ASSET}, doc, balance, d, prices).__dict__ \
        == theirs.__dict__
    # What was covered, for --hypothesis-show-statistics:
    sign = "surplus" if ours.delta > 0 else "deficit" if ours.delta < 0 else "zero delta"
    event(f"{sign}, {record['side']}, {next(iter(doc['fund_share']))} share")
    if ours.socialized:
        event(f"socialized by {ours.method}, {len(ours.clawbacks)} clawback(s), "
              f"{'with' if ours.unresolved else 'no'} unresolved")
    if ours.fund_payment and ours.fund_payment < ours.deficit:
        event("fund payment limited (" + ("cap" if "per_event_cap" in doc else "reserve/balance") + ")")


# ------------------------------------------------------------------ end to end

E2E_EXAMPLES = 25
_KEY: dict[str, Any] = {}


def run(cli: Any, *args: Any) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, (args, result.output)
    return result.output


def operator_key() -> tuple[Path, str]:
    """One signing key for the whole module (keygen is the slow part of a small publish)."""
    if not _KEY:
        path = Path(tempfile.mkdtemp(prefix="diff-key-")) / "op.key"
        _KEY.update(path=path, vkey=run(operator, "keygen", "op", "--out", path).split()[-1])
    return _KEY["path"], _KEY["vkey"]


@st.composite
def fact_files(draw: draw_t) -> tuple[int, list[dict[str, Any]]]:
    """A fund's facts: capital, observations, fees, policy changes and liquidations."""
    d = draw(st.integers(0, 18))
    rng = draw(st.randoms(use_true_random=True))
    facts: list[dict[str, Any]] = []
    version = 1
    for n in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["capital", "observation", "fee", "policy", "liquidation",
                                     "liquidation", "large"]))
        fid, time = f"{kind}-{n}", "2020-03-12T00:00:00Z"
        if kind == "capital":
            facts.append({"type": "capital", "id": fid, "time": time, "direction": "inject",
                          "asset": ASSET, "amount": amount(rng.randint(1, 10**(d + 4)), d),
                          "source": "operator"})
        elif kind == "observation":
            facts.append({"type": "observation", "id": fid, "time": time, "market": MARKET,
                          "mark_price": decimal(rng, Fraction(1, 10**6), Fraction(10**6), 8),
                          "open_interest": decimal(rng, Fraction(0), Fraction(1000), 4)})
        elif kind == "fee":
            facts.append({"type": "fee", "id": fid, "time": time, "kind": "trading_fee_share",
                          "asset": ASSET, "amount": amount(rng.randint(1, 10**(d + 2)), d)})
        elif kind == "policy":
            version += rng.randint(1, 3)
            facts.append({"type": "policy", "id": fid, "time": time,
                          "policy": draw(policies(d, version))})
        else:
            facts.append(draw(liquidations(d, fid, large=kind == "large")))
    return d, facts


@settings(max_examples=E2E_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(fact_files())
def test_imported_and_published_fact_file_verifies(case: tuple[int, list[dict[str, Any]]]) -> None:
    d, facts = case
    key, vkey = operator_key()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        db = f"sqlite:///{base / 'ledger.sqlite'}"
        config = base / "fund.json"
        config.write_text(json.dumps({
            "fund": "main", "assets": {ASSET: {"decimals": d}}, "markets": {MARKET: {"quote": ASSET}},
            "policy": {"version": 1, "minimum_reserve": {}, "fee_cap_rate": "0.005",
                       "fund_share": {"fixed": "1"}, "socialization": "pro_rata_profit"}}))
        run(operator, "init", config, "--db", db, "--time", "2020-03-12T00:00:00Z")
        run(operator, "import", write_jsonl(base / "facts.jsonl", facts), "--db", db)
        out = base / "pub"
        run(operator, "snapshot", "publish", "--key", key, "--out", out, "--db", db,
            "--time", "2020-03-13T00:00:00Z")
        result = CliRunner().invoke(audit, ["replay", str(out / "events.jsonl"), "--snapshot",
                                            str(out / "snapshot.json"), "--key", vkey])
        assert result.exit_code == 0, result.output
        assert result.output.rstrip().endswith("VERIFIED")
        lines = (out / "events.jsonl").read_bytes().splitlines()
        assert max(map(len, lines)) <= 65_535  # every event publishable in tiles
        large = sum(b'"type":"large_liquidation_settled"' in line for line in lines)
        assert large == sum(f["type"] == "liquidation" and len(f["counterparties"]) > 100
                            for f in facts)
        event(f"{large} large liquidation(s)")


# ------------------------------------------------------------------ bookkeeping

BOOK_EXAMPLES = 40
BOOK_ASSETS = ("USDT", "BTC", "JPY")  # USDT is the market's quote; all three are reserves
_COMMANDS = {"capital": Fund.record_capital, "fee": Fund.record_fee,
             "rebalance": Fund.record_rebalance, "observation": Fund.record_observation,
             "liquidation": Fund.record_liquidation}


def book_config(decimals: dict[str, int]) -> dict[str, Any]:
    return {"fund": "main", "assets": {a: {"decimals": d} for a, d in decimals.items()},
            "markets": {MARKET: {"quote": ASSET}},
            "policy": {"version": 1, "minimum_reserve": {}, "fee_cap_rate": "0.005",
                       "fund_share": {"fixed": "1"}, "socialization": "pro_rata_profit"}}


@st.composite
def book_streams(draw: draw_t) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Facts of a three-asset fund: injections, withdrawals, rebalances between any two
    assets (out of the quote asset too, after liquidations have moved it), fees with and
    without an account, observations and liquidations. The ledger's own aggregate, in
    memory, says each asset's balance, so that every withdrawal and rebalance stays within
    it (the ledger would refuse the file otherwise)."""
    decimals = {a: draw(st.integers(0, 18)) for a in BOOK_ASSETS}
    rng = draw(st.randoms(use_true_random=True))
    config = book_config(decimals)
    fund = Fund(time="2020-03-12T00:00:00Z", ref=None,
                data={k: config[k] for k in ("fund", "assets", "markets")})
    fund.set_policy(config["policy"], time="2020-03-12T00:00:00Z", ref="initial")
    facts: list[dict[str, Any]] = []
    for n in range(draw(st.integers(1, 16))):
        kind = draw(st.sampled_from(["inject", "withdraw", "rebalance", "rebalance", "fee",
                                     "observation", "liquidation"]))
        fid, time = f"{kind}-{n}", "2020-03-12T00:00:00Z"
        source, target = rng.sample(BOOK_ASSETS, 2)
        if kind in ("withdraw", "rebalance") and not fund.balances[source]:
            kind = "inject"  # nothing to take out of this asset yet
        if kind in ("inject", "withdraw"):
            units = rng.randint(1, fund.balances[source] if kind == "withdraw"
                                else 10**(decimals[source] + 4))
            fact = {"type": "capital", "id": fid, "time": time, "direction": kind,
                    "asset": source, "amount": amount(units, decimals[source]),
                    "source": rng.choice(["operator", "underwriter"])}
        elif kind == "rebalance":
            out = edge(rng, rng.randint(1, fund.balances[source]), fund.balances[source])
            fact = {"type": "rebalance", "id": fid, "time": time, "from_asset": source,
                    "from_amount": amount(out, decimals[source]), "to_asset": target,
                    "to_amount": amount(rng.randint(1, 10**(decimals[target] + 3)),
                                        decimals[target])}
        elif kind == "fee":
            fact = {"type": "fee", "id": fid, "time": time,
                    "kind": rng.choice(["trading_fee_share", "other"]), "asset": source,
                    "amount": amount(rng.randint(1, 10**(decimals[source] + 2)),
                                     decimals[source])}
            if rng.random() < 0.5:
                fact["account"] = rng.choice(ACCOUNTS)
        elif kind == "observation":
            fact = {"type": "observation", "id": fid, "time": time, "market": MARKET,
                    "mark_price": decimal(rng, Fraction(1, 10**6), Fraction(10**6), 8),
                    "open_interest": decimal(rng, Fraction(0), Fraction(1000), 4)}
        else:
            fact = draw(liquidations(decimals[ASSET], fid))
        _COMMANDS[fact["type"]](fund, fact)
        facts.append(fact)
    return decimals, facts


def folded(lines: list[bytes]) -> tuple[dict[str, int], dict[str, dict[str, list[int]]]]:
    """The ledger's bookkeeping over a log: each asset's fund balance, and each account's
    [fees, payouts, clawbacks] per asset."""
    decimals: dict[str, int] = {}
    balance: dict[str, int] = {}
    accounts: dict[str, dict[str, list[int]]] = {}
    for line in lines:
        event = json.loads(line)
        if event["type"] == "fund_opened":
            decimals = {a: s["decimals"] for a, s in event["data"]["assets"].items()}
            balance = dict.fromkeys(decimals, 0)
        for asset, name, units, account in moves(event["type"], event["data"], decimals):
            if name == FUND:
                balance[asset] += units
            elif account is not None:
                sums = accounts.setdefault(account, {a: [0, 0, 0] for a in decimals})
                sums[asset][ACCOUNT_TOTALS.index(name)] += units
    return balance, accounts


@settings(max_examples=BOOK_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(book_streams())
def test_the_ledgers_bookkeeping_and_the_auditors_agree(
        case: tuple[dict[str, int], list[dict[str, Any]]]) -> None:
    """Over a generated log (rebalances and withdrawals included), the balances and account
    totals the ledger keeps (its bookkeeping folded over the log, the aggregate, the
    projections) are those `auditor/replay.py` derives on its own."""
    decimals, facts = case
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        ledger = Ledger(f"sqlite:///{base / 'ledger.sqlite'}")
        try:
            ledger.open_fund(book_config(decimals), "2020-03-12T00:00:00Z")
            import_file(ledger, "main", write_jsonl(base / "facts.jsonl", facts))
            lines = list(ledger.log_lines("main"))
            fund = ledger.get_fund("main")
            projected = queries.balances(ledger, "main")
            theirs = replay(lines)
            balance, accounts = folded(lines)
            assert balance == theirs.balances == fund.balances
            assert {a: parse_amount(row["balance"], decimals[a])
                    for a, row in projected["assets"].items()} == theirs.balances
            assert accounts.keys() == theirs.accounts.keys()
            for account, sums in accounts.items():
                expected = {a: dict(zip(ACCOUNT_TOTALS, s, strict=True)) for a, s in sums.items()}
                assert theirs.account_totals(account) == expected
                stored = queries.account_totals(ledger, "main", account)
                assert stored is not None
                assert {a: {k: parse_amount(v, decimals[a]) for k, v in row.items()}
                        for a, row in stored["assets"].items()} == \
                    {a: row for a, row in expected.items() if any(row.values())}
            assert {a: fund.committed.get(a, [0, 0, 0]) for a in decimals} == theirs.totals
        finally:
            ledger.close()
    kinds = {fact["type"] for fact in facts}
    event(f"{'with' if 'rebalance' in kinds else 'no'} rebalance, "
          f"{'with' if any(f.get('direction') == 'withdraw' for f in facts) else 'no'} withdrawal")
