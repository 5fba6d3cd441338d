"""The crash simulator: determinism, the facts contract, the margin engine, the crash size."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger.cli.simulate import simulate_command
from ledger.sim.simulate import (
    SimulationConfig,
    SimulationSummary,
    encode_fact,
    fund_config,
    profile_anchors,
    simulate,
    write_facts,
)

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"
SMALL = SimulationConfig(traders=300, steps=96, initial_fund="10000.00")  # = the fixture

REQUIRED = {
    "liquidation": {"id", "time", "account", "market", "side", "size", "entry_price",
                    "collateral", "fill_price", "mark_price"},
    "fee": {"id", "time", "kind", "asset", "amount"},
    "observation": {"id", "time", "market", "mark_price", "open_interest"},
    "capital": {"id", "time", "direction", "asset", "amount", "source"},
}
OPTIONAL = {"liquidation": {"counterparties"}, "fee": {"account"}}
DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")
AMOUNT = re.compile(r"(0|[1-9][0-9]*)\.[0-9]{2}")  # quote_decimals = 2
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.fixture(scope="module")
def small_facts() -> list[dict]:
    return list(simulate(SMALL))


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimulationSummary, list[dict]]:
    path = tmp_path_factory.mktemp("default") / "crash.jsonl"
    summary = write_facts(SimulationConfig(), path)
    return summary, [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def default_facts(default_run: tuple[SimulationSummary, list[dict]]) -> list[dict]:
    return default_run[1]


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    write_facts(SMALL, tmp_path / "a.jsonl")
    write_facts(SMALL, tmp_path / "b.jsonl")
    write_facts(SimulationConfig(seed=8, traders=300, steps=96), tmp_path / "c.jsonl")
    a = (tmp_path / "a.jsonl").read_bytes()
    assert a == (tmp_path / "b.jsonl").read_bytes()
    assert a != (tmp_path / "c.jsonl").read_bytes()


def test_committed_fixture_is_what_the_simulator_writes(tmp_path: Path) -> None:
    write_facts(SMALL, tmp_path / "small.jsonl")
    assert (tmp_path / "small.jsonl").read_bytes() == (FIXTURES / "crash-small.jsonl").read_bytes()
    assert json.loads((FIXTURES / "crash-small.fund.json").read_text()) == fund_config(SMALL)


def test_every_fact_has_the_contract_fields(small_facts: list[dict]) -> None:
    seen: dict[str, set[str]] = {kind: set() for kind in REQUIRED}
    previous_time = ""
    for fact in small_facts:
        kind = fact["type"]
        keys = set(fact) - {"type"}
        assert REQUIRED[kind] <= keys <= REQUIRED[kind] | OPTIONAL.get(kind, set()), fact
        assert fact["id"] not in seen[kind], f"duplicate {kind} id {fact['id']}"
        seen[kind].add(fact["id"])
        assert TIME.fullmatch(fact["time"]) and fact["time"] >= previous_time
        previous_time = fact["time"]
        if kind in ("fee", "capital"):
            assert AMOUNT.fullmatch(fact["amount"]) and fact["asset"] == "USDT"
        if kind == "observation":
            assert DECIMAL.fullmatch(fact["mark_price"])
            assert re.fullmatch(r"[0-9]+\.[0-9]{3}", fact["open_interest"])
        if kind == "liquidation":
            assert fact["side"] in ("long", "short")
            assert AMOUNT.fullmatch(fact["collateral"])
            for field in ("size", "entry_price", "fill_price", "mark_price"):
                assert DECIMAL.fullmatch(fact[field]) and Fraction(fact[field]) > 0
            for cp in fact.get("counterparties", []):
                assert set(cp) == {"account", "size", "entry_price", "unrealized_pnl",
                                   "collateral"}
                assert AMOUNT.fullmatch(cp["unrealized_pnl"]) and AMOUNT.fullmatch(cp["collateral"])
    assert small_facts[0]["type"] == "capital" and small_facts[0]["amount"] == "10000.00"
    assert all(seen.values())


def test_lines_are_compact_sorted_json(tmp_path: Path) -> None:
    write_facts(SMALL, tmp_path / "f.jsonl")
    for line in (tmp_path / "f.jsonl").read_text().splitlines(keepends=True)[:200]:
        assert encode_fact(json.loads(line)) == line


def _equity(fact: dict, price: Fraction) -> Fraction:
    size, entry = Fraction(fact["size"]), Fraction(fact["entry_price"])
    move = price - entry if fact["side"] == "long" else entry - price
    return Fraction(fact["collateral"]) + move * size


def test_liquidated_only_below_maintenance_at_the_mark(small_facts: list[dict]) -> None:
    liquidations = [f for f in small_facts if f["type"] == "liquidation"]
    assert len(liquidations) > 100
    for fact in liquidations:
        mark, size = Fraction(fact["mark_price"]), Fraction(fact["size"])
        assert _equity(fact, mark) < Fraction("0.005") * mark * size, fact["id"]
        # The fill is never better for the trader than the mark.
        fill = Fraction(fact["fill_price"])
        assert fill <= mark if fact["side"] == "long" else fill >= mark


def test_counterparties_are_profitable_opposite_side(small_facts: list[dict]) -> None:
    with_cps = [f for f in small_facts if f["type"] == "liquidation" and "counterparties" in f]
    assert with_cps
    for fact in with_cps:
        assert _equity(fact, Fraction(fact["fill_price"])) < 0  # only deficits carry them
        mark = Fraction(fact["mark_price"])
        assert 0 < len(fact["counterparties"]) <= SMALL.max_counterparties
        pnls = []
        for cp in fact["counterparties"]:
            entry, size = Fraction(cp["entry_price"]), Fraction(cp["size"])
            # Opposite side: a short profits when the mark is below its entry, and vice versa.
            move = entry - mark if fact["side"] == "long" else mark - entry
            pnl = math.floor(move * size * 100)
            assert pnl > 0 and Fraction(cp["unrealized_pnl"]) * 100 == pnl
            assert cp["account"] != fact["account"]
            pnls.append(pnl)
        assert pnls == sorted(pnls, reverse=True)


def _run_fund(facts: list[dict]) -> dict[str, int]:
    """Pay-as-you-go fund under the contract (fee cap 0.005, share 1, reserve 0), in cents."""
    balance = covered = fees = deficit_total = shortfall = 0
    first_shortfall_at = None
    for fact in facts:
        if fact["type"] in ("capital", "fee"):
            amount = int(Fraction(fact["amount"]) * 100)
            balance += amount
            fees += amount if fact["type"] == "fee" else 0
        elif fact["type"] == "liquidation":
            fill, size = Fraction(fact["fill_price"]), Fraction(fact["size"])
            delta = _equity(fact, fill) * 100
            if delta > 0:
                fee = math.floor(min(delta, Fraction("0.005") * fill * size * 100))
                balance += fee
                fees += fee
            elif delta < 0:
                deficit = math.ceil(-delta)
                deficit_total += deficit
                paid = min(deficit, balance)
                balance -= paid
                if paid == deficit:
                    covered += 1
                elif first_shortfall_at is None:
                    first_shortfall_at = covered
                shortfall += deficit - paid
    return {"covered": covered, "fees": fees, "deficits": deficit_total,
            "shortfall": shortfall, "covered_before_dry": first_shortfall_at or 0}


@pytest.mark.parametrize("which", ["small", "default"])
def test_crash_drains_the_fund_and_socializes(which: str, small_facts: list[dict],
                                             default_facts: list[dict]) -> None:
    facts = small_facts if which == "small" else default_facts
    fund = int(Fraction(facts[0]["amount"]) * 100)
    result = _run_fund(facts)
    assert result["deficits"] > fund + result["fees"]
    assert result["covered_before_dry"] >= 20  # the fund pays many deficits first
    assert result["shortfall"] > 0


def test_default_summary_matches_an_independent_count(
        default_run: tuple[SimulationSummary, list[dict]]) -> None:
    summary, default_facts = default_run
    counts = Counter(f["type"] for f in default_facts)
    assert summary.facts_by_type == dict(counts)
    assert 2000 <= summary.liquidations <= 6000 and summary.facts <= 20000
    result = _run_fund(default_facts)
    assert Fraction(summary.deficit_total) * 100 == result["deficits"]
    assert Fraction(summary.shortfall_estimate) * 100 == result["shortfall"]
    assert len(summary.times) == len(summary.fund_estimate) == 289
    assert len(summary.prices["BTC-PERP"]) == len(summary.open_interest_notional) == 289


@pytest.mark.parametrize("profile,low", [("btc-2020-03-12", 3858), ("eth-2021-05-19", 1862)])
def test_price_path_passes_near_the_anchors(profile: str, low: int) -> None:
    steps = 96
    config = SimulationConfig(profile=profile, steps=steps, traders=20, tick="0.01")
    marks = [Fraction(f["mark_price"]) for f in simulate(config) if f["type"] == "observation"]
    assert len(marks) == steps + 1
    for step, price in profile_anchors(profile, steps):
        assert abs(marks[step] / Fraction(price) - 1) < Fraction(3, 100), (step, price)
    assert abs(min(marks) / low - 1) < Fraction(4, 100)


def test_btc_profile_hits_both_lows_in_order() -> None:
    marks = [Fraction(f["mark_price"]) for f in simulate(SMALL) if f["type"] == "observation"]
    first_low = min(range(len(marks)), key=lambda i: marks[i] if i < 80 else 10**9)
    assert abs(marks[0] - 7938) < 40
    assert abs(marks[first_low] / 4644 - 1) < Fraction(4, 100)
    assert abs(min(marks) / 3858 - 1) < Fraction(4, 100) and marks.index(min(marks)) > first_low


def test_prices_sit_on_the_tick_and_jump_diffusion_is_seeded() -> None:
    config = SimulationConfig(profile="jump-diffusion", traders=200, steps=96)
    facts = list(simulate(config))
    assert facts == list(simulate(config))
    marks = [Fraction(f["mark_price"]) for f in facts if f["type"] == "observation"]
    assert all((m / Fraction("0.5")).denominator == 1 and m > 0 for m in marks)
    other = [f["mark_price"] for f in simulate(SimulationConfig(
        profile="jump-diffusion", traders=200, steps=96, seed=9)) if f["type"] == "observation"]
    assert [str(m) for m in marks] != other


def test_two_markets_have_their_own_ids_and_paths() -> None:
    config = SimulationConfig(markets=("BTC-PERP", "ETH-PERP"), traders=200, steps=48)
    facts = list(simulate(config))
    obs = [f for f in facts if f["type"] == "observation"]
    assert Counter(f["market"] for f in obs) == {"BTC-PERP": 49, "ETH-PERP": 49}
    for kind in ("liquidation", "fee", "observation"):
        ids = [f["id"] for f in facts if f["type"] == kind]
        assert len(ids) == len(set(ids))
    assert fund_config(config)["markets"] == {"BTC-PERP": {"quote": "USDT"},
                                              "ETH-PERP": {"quote": "USDT"}}


def test_fund_config_is_the_contract_policy() -> None:
    assert fund_config(SimulationConfig()) == {
        "fund": "demo", "assets": {"USDT": {"decimals": 2}},
        "markets": {"BTC-PERP": {"quote": "USDT"}},
        "policy": {"version": 1, "minimum_reserve": {"USDT": "0.00"}, "fee_cap_rate": "0.005",
                   "fund_share": {"fixed": "1"}, "socialization": "pro_rata_profit"}}


def test_bad_config_is_rejected_with_the_field_name() -> None:
    with pytest.raises(ValueError, match="profile"):
        SimulationConfig(profile="luna-2022")
    with pytest.raises(ValueError, match="steps"):
        SimulationConfig(steps=1)
    with pytest.raises(ValueError, match="markets"):
        SimulationConfig(markets=("A", "A"))


def test_cli_writes_facts_and_fund_config(tmp_path: Path) -> None:
    out, fund = tmp_path / "facts.jsonl", tmp_path / "fund.json"
    result = CliRunner().invoke(simulate_command, [
        "--seed", "3", "--traders", "100", "--steps", "24", "--profile", "eth-2021-05-19",
        "--tick", "0.01", "--out", str(out), "--fund-config", str(fund)])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert f"Wrote {len(lines)} facts" in result.output and "3376.00 ->" in result.output
    assert json.loads(fund.read_text())["policy"]["socialization"] == "pro_rata_profit"
    direct = tmp_path / "direct.jsonl"
    write_facts(SimulationConfig(seed=3, traders=100, steps=24, profile="eth-2021-05-19",
                                 tick="0.01"), direct)
    assert direct.read_bytes() == out.read_bytes()


def test_cli_rejects_a_bad_profile(tmp_path: Path) -> None:
    result = CliRunner().invoke(simulate_command, ["--profile", "x", "--out",
                                                   str(tmp_path / "f.jsonl")])
    assert result.exit_code == 2 and "--profile" in result.output
    assert not (tmp_path / "f.jsonl").exists()
