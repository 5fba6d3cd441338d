"""`backstop simulate --structure pools`: a format 2 fund's facts through a correlated alt-coin
crash. Properties checked on the recorded log (init + import + export through the CLI), with
balances folded here by the README's "Balances" rule, independently of the ledger's folds:
the alt pool is exhausted down to its reserve (10.00% of its capital: 1000.00 USDT), draws its
backstop, goes into ADL and socializes; the shared pool stays above its reserve 50000.00."""

from __future__ import annotations

import io
import json
from collections import Counter, defaultdict
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger.cli.main import main as backstop
from ledger.sim.pooldemo import POOLS_CONFIG
from ledger.sim.poolsim import pools_fund_config, simulate_pools, stream_pool_facts
from ledger.sim.simulate import SimulationConfig, encode_fact

ALT_RESERVE = Fraction("1000.00")
SHARED_RESERVE = Fraction("50000.00")


def facts_bytes(config: SimulationConfig) -> bytes:
    return b"".join(encode_fact(f).encode() for f in simulate_pools(config))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo's pools config simulated, recorded and exported with the CLI."""
    tmp = tmp_path_factory.mktemp("pools")
    out, fund = tmp / "facts.jsonl", tmp / "fund.json"
    env = {"BACKSTOP_DB": f"sqlite:///{tmp / 'fund.sqlite'}"}
    runner = CliRunner()
    args = ["simulate", "--structure", "pools", "--seed", str(POOLS_CONFIG.seed),
            "--traders", str(POOLS_CONFIG.traders), "--steps", "96", "--out", str(out),
            "--fund-config", str(fund)]
    # The CLI's steps are 5 minutes; the demo's 15: write the demo's config's facts directly.
    result = runner.invoke(backstop, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == facts_bytes(SimulationConfig(
        seed=POOLS_CONFIG.seed, traders=POOLS_CONFIG.traders, steps=96))
    out.write_bytes(facts_bytes(POOLS_CONFIG))
    facts = [json.loads(line) for line in out.read_text().splitlines()]
    for command in (["init", str(fund), "--time", facts[0]["time"]], ["import", str(out)],
                    ["export", str(tmp / "events.jsonl")]):
        result = runner.invoke(backstop, command, env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in (tmp / "events.jsonl").read_text().splitlines()]
    return {"facts": facts, "events": events, "fund": json.loads(fund.read_text())}


def pool_series(events: list[dict[str, Any]]) -> dict[str, list[tuple[int, Fraction]]]:
    """Each pool's balance of its asset after each event that moves it (README "Balances")."""
    balance: dict[str, Fraction] = defaultdict(Fraction)
    series: dict[str, list[tuple[int, Fraction]]] = defaultdict(list)
    sign = {"capital_injected": 1, "fee_inflow": 1, "capital_withdrawn": -1,
            "deficit_covered": -1, "backstop_drawn": -1}
    for ev in events:
        data = ev["data"]
        moved: list[tuple[str, Fraction]] = []
        if ev["type"] == "capital_transferred":
            moved = [(data["from_pool"], -Fraction(data["amount"])),
                     (data["to_pool"], Fraction(data["amount"]))]
        elif ev["type"] in sign:
            moved = [(data["pool"], sign[ev["type"]] * Fraction(data["amount"]))]
        for pool, amount in moved:
            balance[pool] += amount
            series[pool].append((ev["index"], balance[pool]))
    return series


def test_same_seed_same_bytes_other_seed_differs() -> None:
    small = SimulationConfig(seed=3, traders=200, steps=24)
    assert facts_bytes(small) == facts_bytes(small)
    assert facts_bytes(small) != facts_bytes(SimulationConfig(seed=4, traders=200, steps=24))


def test_stream_writes_what_simulate_yields_and_counts_it() -> None:
    small = SimulationConfig(seed=3, traders=200, steps=24)
    out = io.StringIO()
    counts = stream_pool_facts(small, out)
    assert out.getvalue().encode() == facts_bytes(small)
    assert sum(counts.values()) == len(out.getvalue().splitlines())
    # 25 steps x 4 markets; a fee per pool per step at most; one transfer, 3 pools' capital
    assert (counts["observation"], counts["transfer"], counts["capital"], counts["claim_cap"]) \
        == (100, 1, 3, 1)
    assert counts["fee"] <= 75


def test_cli_writes_the_format_2_fund_config(recorded: dict[str, Any]) -> None:
    fund = recorded["fund"]
    assert fund == pools_fund_config()
    assert (fund["format"], sorted(fund["pools"]), fund["markets"]["XBTUSD"]["kind"],
            fund["policy"]["pools"]["alt"]["backstop"]) == (
        2, ["alt", "btc", "shared"], "inverse",
        {"pool": "shared", "limit": {"USDT": "1000.00"}})
    assert fund["policy"]["pools"]["alt"]["adl"]["start_ratio"] == "-0.6"


def test_facts_are_in_time_order_with_pools_on_money_facts(recorded: dict[str, Any]) -> None:
    facts = recorded["facts"]
    times = [f["time"] for f in facts]
    assert times == sorted(times)
    assert {f["pool"] for f in facts if f["type"] in ("capital", "fee")} == {
        "shared", "alt", "btc"}
    assert {(f["pool"], f["asset"]) for f in facts if f["type"] == "fee"} == {
        ("shared", "USDT"), ("alt", "USDT"), ("btc", "XBT")}
    markets = Counter(f["market"] for f in facts if f["type"] == "liquidation")
    assert set(markets) == {"BTC-PERP", "ETH-PERP", "ALT-PERP", "XBTUSD"}
    [transfer] = [f for f in facts if f["type"] == "transfer"]
    assert (transfer["from_pool"], transfer["to_pool"], transfer["amount"],
            transfer["reason"]) == ("shared", "alt", "20000.00", "replenish")


def test_every_fact_imports(recorded: dict[str, Any]) -> None:
    facts, events = recorded["facts"], recorded["events"]
    refs = {ev["ref"] for ev in events}
    assert all(f["id"] in refs for f in facts)
    liquidations = [f for f in facts if f["type"] == "liquidation"]
    settled = [ev for ev in events if ev["type"] in ("liquidation_settled",
                                                     "large_liquidation_settled")]
    assert len(settled) == len(liquidations)
    # XBTUSD settles in XBT in pool btc
    xbt = [ev["data"] for ev in settled if ev["data"]["market"] == "XBTUSD"]
    assert xbt and {(d["asset"], d["outcome"]["pool"]) for d in xbt} == {("XBT", "btc")}


def test_alt_pool_is_exhausted_draws_its_backstop_and_goes_into_adl(
        recorded: dict[str, Any]) -> None:
    events = recorded["events"]
    series = pool_series(events)
    [transfer] = [ev["index"] for ev in events if ev["type"] == "capital_transferred"]
    alt_before = [b for i, b in series["alt"] if i < transfer]
    assert min(alt_before) == ALT_RESERVE  # paid down to its reserve, never below
    assert alt_before[-1] < 2 * ALT_RESERVE  # still near it when replenished
    draws = [ev["data"] for ev in events if ev["type"] == "backstop_drawn"]
    assert draws and {(d["pool"], d["for_pool"], d["market"]) for d in draws} == {
        ("shared", "alt", "ALT-PERP")}
    assert all(Fraction(d["amount"]) <= Fraction("1000.00") for d in draws)
    started = [ev for ev in events if ev["type"] == "adl_started"]
    assert started and {ev["data"]["pool"] for ev in started} == {"alt"}
    social = Counter(ev["data"]["pool"] for ev in events
                     if ev["type"] == "socialized_loss_assessed")
    assert social["alt"] > 0 and social["shared"] == 0


def test_shared_pool_holds_above_its_reserve(recorded: dict[str, Any]) -> None:
    series = pool_series(recorded["events"])
    shared = [b for _, b in series["shared"]]
    assert shared[0] == Fraction("250000.00")
    assert min(shared) > SHARED_RESERVE
    paid = [ev for ev in recorded["events"] if ev["type"] == "deficit_covered"
            and ev["data"]["pool"] == "shared"]
    assert paid  # it paid its own markets' deficits too


def test_an_unknown_structure_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "facts.jsonl"
    result = CliRunner().invoke(backstop, ["simulate", "--structure", "pool", "--out", str(out)])
    assert result.exit_code == 2
    assert "'pool' is not one of 'single', 'pools'" in result.output
    assert list(tmp_path.iterdir()) == []
