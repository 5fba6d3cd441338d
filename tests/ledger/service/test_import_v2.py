"""`backstop init` / `import` of a format 2 (pools) fund, a conformance suite run on each
backend (SQLite and PostgreSQL: the `db_url` fixture of tests/conftest.py): the contract's
hand-worked example end to end (/work/wt/V2-CONTRACT.md), vector T1 as a log, the refusals
(one line, exit 2, nothing written) and idempotent re-import. Every expected value below is
worked by hand from the contract, not read from the code's output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.factories import fund_config, write_jsonl
from tests.importing import database_rows, refused, run
from tests.v2fixture import (
    T0,
    at,
    capital2,
    example_config,
    example_export,
    example_facts,
    example_policy,
    import_facts,
    init_fund,
    policy2,
    t1_config,
    t1_facts,
)


@pytest.fixture
def url(db_url: str) -> str:
    """The fund's database: an empty one on each backend (PostgreSQL is never skipped in CI:
    $BACKSTOP_REQUIRE_PG)."""
    return db_url


def events(url: str, folder: Path, fund: str) -> list[dict[str, Any]]:
    out = folder / f"{fund}-events.jsonl"
    result = run(["export", str(out), "--fund", fund], url)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text().splitlines()]


def balances(url: str, fund: str) -> dict[str, Any]:
    result = run(["balances", "--json", "--fund", fund], url)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


# -- the contract's example ---------------------------------------------------------------

def test_the_contracts_example_log(url: str, tmp_path: Path) -> None:
    log = [json.loads(line) for line in example_export(url, tmp_path).read_text().splitlines()]
    assert [(e["type"], e["version"]) for e in log] == [
        ("fund_opened", 2), ("policy_set", 2),
        ("capital_injected", 2), ("capital_injected", 2), ("capital_injected", 2),
        ("claim_cap_set", 1),
        ("liquidation_settled", 2), ("deficit_covered", 2), ("backstop_drawn", 1),
        ("socialized_loss_assessed", 2),
        ("liquidation_settled", 2), ("deficit_covered", 2), ("socialized_loss_assessed", 2),
        ("clawback_charged", 2), ("clawback_charged", 2)]
    config = example_config()
    assert log[0]["data"] == {k: config[k] for k in ("fund", "assets", "valuation", "pools",
                                                     "markets")}
    assert log[0]["ref"] is None
    assert log[1]["ref"] == "init" and log[1]["data"]["policy"] == example_policy()
    assert log[5]["data"] == {"market": "ALT-PERP", "asset": "USDT", "total": None,
                              "per_period": "100.00", "period_seconds": 86400}

    # Step 3 (W2): D = 120.00; alt: min(120, 30 - 10, 80, R 100) = 20.00 = available, so
    # the backstop draws min(100, 100 - 20, 25, 1000 - 100) = 25.00; 75.00 left, no one to
    # claw back from.
    alt = log[6]["data"]
    assert alt["pool"] == "alt" and alt["asset"] == "USDT" and alt["policy_version"] == 1
    assert alt["outcome"] == {
        "bankruptcy_price": "28500.00000000", "delta": "-120.00", "fee": "0.00",
        "remainder": "0.00", "share": "0.500000000000", "volatility": "0.000000000000",
        "deficit": "120.00", "fund_payment": "20.00", "socialized": "75.00",
        "unresolved": "75.00", "method": "pro_rata_profit", "pool": "alt", "adl_mode": False,
        "claim_remaining": "100.00", "backstop_pool": "shared", "backstop_payment": "25.00",
        "layers": []}
    assert [e["data"] for e in log[7:10]] == [
        {"pool": "alt", "market": "ALT-PERP", "asset": "USDT", "amount": "20.00",
         "account": "acct-9"},
        {"pool": "shared", "for_pool": "alt", "market": "ALT-PERP", "asset": "USDT",
         "amount": "25.00", "account": "acct-9", "limit": "25.00"},
        {"pool": "alt", "market": "ALT-PERP", "asset": "USDT", "amount": "75.00",
         "method": "pro_rata_profit", "unresolved": "75.00"}]

    # Step 4 (I1/I5): D = 208164 sat; btc pays its 150000, S = 58164 over p_A = 588697 and
    # p_B = 1212366 (P = 1801063): 58164 * 588697 = 34240972308 = 19011 * P + 963615 and
    # 58164 * 1212366 = 70516056024 = 39152 * P + 837448; 19011 + 39152 = 58163, the one
    # unit left goes to the larger remainder (A): A 19012, B 39152.
    xbt = log[10]["data"]
    assert xbt["pool"] == "btc" and xbt["asset"] == "XBT"
    assert xbt["outcome"] == {
        "bankruptcy_price": "49504.95049505", "delta": "-0.00208164", "fee": "0.00000000",
        "remainder": "0.00000000", "share": "0.500000000000",
        "volatility": "0.000000000000", "deficit": "0.00208164",
        "fund_payment": "0.00150000", "socialized": "0.00058164", "unresolved": "0.00000000",
        "method": "pro_rata_profit", "pool": "btc", "adl_mode": False,
        "claim_remaining": None, "backstop_pool": None, "backstop_payment": "0.00000000",
        "layers": []}
    assert [e["data"] for e in log[11:]] == [
        {"pool": "btc", "market": "XBTUSD", "asset": "XBT", "amount": "0.00150000",
         "account": "acct-1"},
        {"pool": "btc", "market": "XBTUSD", "asset": "XBT", "amount": "0.00058164",
         "method": "pro_rata_profit", "unresolved": "0.00000000"},
        {"pool": "btc", "market": "XBTUSD", "asset": "XBT", "account": "A",
         "amount": "0.00019012", "method": "pro_rata_profit", "adl_quantity": None,
         "adl_price": None},
        {"pool": "btc", "market": "XBTUSD", "asset": "XBT", "account": "B",
         "amount": "0.00039152", "method": "pro_rata_profit", "adl_quantity": None,
         "adl_price": None}]
    assert all(e["ref"] == "L-xbt" and e["time"] == at("03:00:00") for e in log[10:])

    # Balances: shared 1000 - 25, alt 30 - 20, btc 0.0015 - 0.0015; the fund is their sum.
    doc = balances(url, "v2demo")
    assert doc["pools"] == {"shared": {"USDT": "975.00", "XBT": "0.00000000"},
                            "alt": {"USDT": "10.00", "XBT": "0.00000000"},
                            "btc": {"USDT": "0.00", "XBT": "0.00000000"}}
    assert doc["assets"]["USDT"]["balance"] == "985.00"
    assert doc["assets"]["USDT"]["covered"] == "45.00"  # 20.00 + the draw's 25.00
    assert doc["assets"]["XBT"]["balance"] == "0.00000000"
    assert doc["log_size"] == 15
    account = run(["account", "acct-9", "--json", "--fund", "v2demo"], url)
    assert json.loads(account.output)["assets"]["USDT"]["payouts"] == "45.00"
    text = run(["balances", "--fund", "v2demo"], url).output
    assert "  pool shared             USDT                   975.00\n" in text


def test_the_example_re_imported_is_a_no_op(url: str, tmp_path: Path) -> None:
    example_export(url, tmp_path)
    before = database_rows(url)
    path = write_jsonl(tmp_path / "again.jsonl", example_facts())
    result = run(["import", str(path), "--fund", "v2demo"], url)
    assert result.exit_code == 0, result.output
    assert "0 facts recorded (none), 6 already recorded" in result.output
    assert database_rows(url) == before
    # The same ids in another form (amounts with fewer decimals) are the same facts.
    relaxed = example_facts()
    relaxed[0]["amount"], relaxed[3]["per_period"] = "1000", "100"
    result = run(["import", str(write_jsonl(tmp_path / "relaxed.jsonl", relaxed)),
                  "--fund", "v2demo"], url)
    assert "6 already recorded" in result.output and database_rows(url) == before


def test_the_example_export_restores_byte_for_byte(url: str, tmp_path: Path) -> None:
    exported = example_export(url, tmp_path)
    other = f"sqlite:///{tmp_path / 'restored.sqlite'}"
    result = run(["import", str(exported)], other)
    assert result.exit_code == 0, result.output
    again = tmp_path / "again.jsonl"
    assert run(["export", str(again), "--fund", "v2demo"], other).exit_code == 0
    assert again.read_bytes() == exported.read_bytes()


# -- vector T1 ----------------------------------------------------------------------------

def test_t1_adl_starts_and_ends_as_the_vector_says(url: str, tmp_path: Path) -> None:
    init_fund(url, tmp_path, t1_config())
    import_facts(url, tmp_path / "t1.jsonl", t1_facts(), "t1")
    log = events(url, tmp_path, "t1")
    assert [(e["index"], e["type"]) for e in log] == [
        (0, "fund_opened"), (1, "policy_set"), (2, "capital_injected"),
        (3, "liquidation_settled"), (4, "deficit_covered"), (5, "liquidation_settled"),
        (6, "deficit_covered"), (7, "adl_started"), (8, "fee_inflow"), (9, "market_observed"),
        (10, "market_observed"), (11, "adl_ended")]
    # After 6 (03:00): peak 1000.00 (index 2), (650 - 1000) / 1000 = -0.35 < -0.3.
    assert log[7]["ref"] == "liq-2" and log[7]["time"] == at("03:00:00")
    assert log[7]["data"] == {
        "pool": "main", "asset": "USDT", "balance": "650.00", "peak": "1000.00",
        "peak_index": 2, "peak_time": "2026-01-01T00:00:00Z", "window_seconds": 28800,
        "ratio": "-0.350000000000", "start_ratio": "-0.3", "minimum_balance": "100.00",
        "policy_version": 1}
    # After 10 (10:30, t - W = 02:30): s = 4, peak 800.00, (710 - 800) / 800 = -0.1125.
    assert log[11]["ref"] == "obs-2" and log[11]["time"] == at("10:30:00")
    assert log[11]["data"] == {
        "pool": "main", "asset": "USDT", "balance": "710.00", "peak": "800.00",
        "peak_index": 4, "peak_time": "2026-01-01T02:00:00Z", "window_seconds": 28800,
        "ratio": "-0.112500000000", "stop_ratio": "-0.25", "reason": "recovered",
        "policy_version": 1}


def test_a_liquidation_in_adl_mode_claws_back_first(url: str, tmp_path: Path) -> None:
    """W5's shape after T1's start: main in ADL, a deficit of 100.00 with one counterparty
    of pnl 40.00 (C 1000, size 1, entry 900, mark 850): the ADL ranking claws back 40.00,
    the pool pays the rest, 60.00 (its available 650.00 allows it)."""
    init_fund(url, tmp_path, t1_config())
    loss = {"type": "liquidation", "id": "liq-3", "time": at("03:30:00"), "account": "acct-2",
            "market": "M-PERP", "side": "long", "size": "1", "entry_price": "1000",
            "collateral": "0", "fill_price": "900", "mark_price": "850",
            "counterparties": [{"account": "C", "size": "1", "entry_price": "900",
                                "unrealized_pnl": "40.00", "collateral": "1000"}]}
    import_facts(url, tmp_path / "t1.jsonl", [*t1_facts()[:3], loss], "t1")
    log = events(url, tmp_path, "t1")
    assert log[7]["type"] == "adl_started"
    outcome = log[8]["data"]["outcome"]
    assert (outcome["adl_mode"], outcome["method"], outcome["deficit"], outcome["fund_payment"],
            outcome["socialized"], outcome["unresolved"]) == (True, "adl", "100.00", "60.00",
                                                              "40.00", "0.00")
    # Bankruptcy 1000 (no collateral): 40.00 / |900 - 1000| = 0.4 contracts at 1000.
    assert [(e["type"], e["data"]["amount"]) for e in log[9:12]] == [
        ("deficit_covered", "60.00"), ("socialized_loss_assessed", "40.00"),
        ("clawback_charged", "40.00")]
    assert (log[11]["data"]["adl_quantity"], log[11]["data"]["adl_price"]) == (
        "0.40000000", "1000.00000000")


# -- the structure facts ------------------------------------------------------------------

def test_pools_assignments_transfers_and_caps(url: str, tmp_path: Path) -> None:
    init_fund(url, tmp_path, example_config())
    facts = [
        capital2("cap-1", "1000.00", "USDT", "shared"),
        {"type": "pool", "id": "p-1", "time": T0, "pool": "alt-iso", "kind": "isolated"},
        {"type": "assignment", "id": "a-1", "time": T0, "market": "NEW-PERP",
         "pool": "shared", "reason": "listing", "spec": {"kind": "linear",
                                                         "settlement": "USDT"}},
        {"type": "assignment", "id": "a-2", "time": T0, "market": "NEW-PERP",
         "pool": "alt-iso", "reason": "ejection"},
        {"type": "transfer", "id": "t-1", "time": T0, "from_pool": "shared",
         "to_pool": "alt-iso", "asset": "USDT", "amount": "500", "authority": "risk-committee",
         "reason": "replenish"},
        {"type": "claim_cap", "id": "cc-1", "time": T0, "market": "NEW-PERP",
         "total": "500.00", "per_period": "60", "period_seconds": 86400}]
    import_facts(url, tmp_path / "s.jsonl", facts, "v2demo")
    log = events(url, tmp_path, "v2demo")[3:]
    assert [(e["type"], e["version"], e["data"]) for e in log] == [
        ("pool_created", 1, {"pool": "alt-iso", "kind": "isolated"}),
        ("market_assigned", 1, {"market": "NEW-PERP", "pool": "shared", "from": None,
                                "reason": "listing", "spec": {"kind": "linear",
                                                              "settlement": "USDT"}}),
        ("market_assigned", 1, {"market": "NEW-PERP", "pool": "alt-iso", "from": "shared",
                                "reason": "ejection", "spec": None}),
        ("capital_transferred", 1, {"from_pool": "shared", "to_pool": "alt-iso",
                                    "asset": "USDT", "amount": "500.00",
                                    "authority": "risk-committee", "reason": "replenish"}),
        ("claim_cap_set", 1, {"market": "NEW-PERP", "asset": "USDT", "total": "500.00",
                              "per_period": "60.00", "period_seconds": 86400})]
    pools = balances(url, "v2demo")["pools"]
    assert (pools["shared"]["USDT"], pools["alt-iso"]["USDT"]) == ("500.00", "500.00")
    assert balances(url, "v2demo")["assets"]["USDT"]["balance"] == "1000.00"
    before = database_rows(url)
    result = run(["import", str(write_jsonl(tmp_path / "s2.jsonl", facts)),
                  "--fund", "v2demo"], url)
    assert "6 already recorded" in result.output and database_rows(url) == before


# -- refusals: one line naming the record and field, exit 2, nothing written ----------------

REFUSALS = [
    ([{"type": "fee", "id": "f-1", "time": T0, "kind": "other", "asset": "USDT",
       "amount": "1.00"}], "line 1: pool: required in a format 2 fund"),
    ([capital2("c-1", "1.00", "USDT", "nope")], "line 1: pool: unknown pool nope"),
    ([capital2("c-1", "30.01", "USDT", "alt", direction="withdraw")],
     "line 1: amount: 30.01 exceeds pool alt's balance 30.00"),
    ([capital2("c-1", "1.00", "USDT", "alt", time="2025-12-31T23:59:59Z")],
     ("line 1: time: 2025-12-31T23:59:59Z is earlier than the log's last event "
     "(2026-01-01T00:00:00Z)")),
    ([{"type": "rebalance", "id": "r-1", "time": T0, "from_asset": "USDT",
       "from_amount": "1.00", "to_asset": "XBT", "to_amount": "0.00001000"}],
     "line 1: type: rebalance is not a fact of a format 2 fund"),
    ([{"type": "price", "id": "pr-1", "time": T0, "asset": "XBT", "kind": "price",
       "value": "60000", "currency": "EUR", "source": "oracle"}],
     "line 1: currency: 'EUR' is not the fund's valuation currency USD"),
    ([{"type": "policy", "id": "pol-2", "time": T0, "policy": fund_config()["policy"]}],
     "line 1: policy.format: a format 2 fund takes backstop-policy/2"),
    ([{"type": "policy", "id": "pol-2", "time": T0,
       "policy": policy2(2, nope={"minimum_reserve": {"USDT": "1.00"}})}],
     "line 1: policy.pools.nope: unknown pool nope"),
    ([{"type": "policy", "id": "pol-2", "time": T0,
       "policy": policy2(2, alt={"backstop": {"pool": "alt", "limit": {"USDT": "1.00"}}})}],
     "line 1: policy.pools.alt.backstop.pool: a pool cannot be its own backstop"),
    ([{"type": "policy", "id": "pol-2", "time": T0,
       "policy": policy2(2, alt={"minimum_reserve": {"USDT": "1.5"}})}],
     "line 1: policy.pools.alt.minimum_reserve.USDT: "),
    ([{"type": "pool", "id": "p-1", "time": T0, "pool": "alt", "kind": "shared"}],
     "line 1: pool: pool alt exists"),
    ([{"type": "assignment", "id": "a-1", "time": T0, "market": "NEW-PERP", "pool": "alt",
       "reason": "listing", "spec": {"kind": "linear", "settlement": "USDT"}}],
     "line 1: pool: isolated pool alt already holds market ALT-PERP"),
    ([{"type": "assignment", "id": "a-1", "time": T0, "market": "ETH-PERP", "pool": "shared",
       "reason": "regrouping"}], "line 1: pool: market ETH-PERP is already in pool shared"),
    ([capital2("c-1", "10.00", "USDT", "shared"),
      {"type": "transfer", "id": "t-1", "time": T0, "from_pool": "shared", "to_pool": "alt",
       "asset": "USDT", "amount": "10.01", "authority": "operator", "reason": "other"}],
     "line 2: amount: 10.01 exceeds pool shared's balance 10.00"),
    ([{"type": "claim_cap", "id": "cc-1", "time": T0, "market": "NOPE-PERP",
       "total": "1.00"}], "line 1: market: unknown market NOPE-PERP"),
    ([{"type": "claim_cap", "id": "cc-1", "time": T0, "market": "ALT-PERP",
       "per_period": "1.00"}], "line 1: per_period: per_period and period_seconds go together"),
    ([capital2("c-1", "1.00", "USDT", "alt"), capital2("c-1", "2.00", "USDT", "alt")],
     "line 2: id: capital 'c-1' is already recorded with different fields (conflict)"),
]


@pytest.mark.parametrize(("facts", "message"), REFUSALS,
                         ids=[m.split(": ", 2)[1] + ":" + str(i)
                              for i, (_, m) in enumerate(REFUSALS)])
def test_a_v2_fund_refuses(url: str, tmp_path: Path, facts: list[dict[str, Any]],
                           message: str) -> None:
    init_fund(url, tmp_path, example_config())
    # cap-2's 30.00 in alt: the balance the withdrawal and transfer refusals name
    import_facts(url, tmp_path / "setup.jsonl", [capital2("cap-2", "30.00", "USDT", "alt")],
                 "v2demo")
    size = balances(url, "v2demo")["log_size"]
    said = refused(url, write_jsonl(tmp_path / "bad.jsonl", facts))
    assert said.startswith(message) if message.endswith(": ") else said == message
    assert balances(url, "v2demo")["log_size"] == size


def test_a_v1_fund_refuses_v2_facts(url: str, tmp_path: Path) -> None:
    init_fund(url, tmp_path, fund_config())
    size = balances(url, "main")["log_size"]
    cases: list[tuple[list[dict[str, Any]], str]] = [
            ([{"type": "pool", "id": "p-1", "time": T0, "pool": "x", "kind": "shared"}],
             "line 1: type: pool is not a fact of a format 1 fund"),
            ([{"type": "capital", "id": "c-1", "time": T0, "direction": "inject",
               "asset": "USDT", "amount": "1.00", "source": "operator", "pool": "x"}],
             "line 1: pool: not a field of a format 1 fund"),
            ([{"type": "policy", "id": "p-2", "time": T0, "policy": policy2(2)}],
             "line 1: policy.format: a format 1 fund takes a policy/1 document (no format)")]
    for facts, message in cases:
        assert refused(url, write_jsonl(tmp_path / "bad.jsonl", facts)) == message
    assert balances(url, "main")["log_size"] == size


CONFIG_REFUSALS = [
    ({"markets": {"X-PERP": {"kind": "linear", "settlement": "USDT", "pool": "nope"}}},
     "markets.X-PERP.pool: unknown pool nope"),
    ({"markets": {"X-PERP": {"kind": "linear", "settlement": "ETH", "pool": "shared"}}},
     "markets.X-PERP.settlement: unknown asset 'ETH'"),
    ({"markets": {"A-PERP": {"kind": "linear", "settlement": "USDT", "pool": "alt"},
                  "B-PERP": {"kind": "linear", "settlement": "USDT", "pool": "alt"}}},
     "markets.B-PERP.pool: isolated pool alt already holds market A-PERP"),
    ({"pools": {}}, "pools: {} should be non-empty"),
    ({"valuation": {"currency": "usd", "decimals": 2}}, "valuation.currency: 'usd' does not match"),
    ({"policy": fund_config()["policy"]},
     "policy.format: a format 2 fund takes backstop-policy/2"),
]


@pytest.mark.parametrize(("change", "message"), CONFIG_REFUSALS)
def test_init_refuses_a_bad_v2_config(url: str, tmp_path: Path, change: dict[str, Any],
                                      message: str) -> None:
    config = {**example_config(), **change}
    path = tmp_path / "fund.json"
    path.write_text(json.dumps(config))
    result = run(["init", str(path), "--time", T0], url)
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1
    assert result.output.startswith(f"Error: {path}: {message}"), result.output
    assert all(rows == [] for rows in database_rows(url).values())


def test_a_v2_fund_reloads_from_its_aggregate_snapshot(url: str, tmp_path: Path) -> None:
    """Past 1,000 events the fund's state (fund.v2 included) is snapshotted as JSON; the
    fund loaded from it goes on exactly (2,000 fees of 0.01 into alt, then a withdrawal)."""
    init_fund(url, tmp_path, example_config())
    fees = [{"type": "fee", "id": f"f-{i}", "time": T0, "kind": "other", "asset": "USDT",
             "amount": "0.01", "pool": "alt"} for i in range(2000)]
    import_facts(url, tmp_path / "fees.jsonl", fees, "v2demo")
    import_facts(url, tmp_path / "out.jsonl",
                 [capital2("w-1", "19.99", "USDT", "alt", direction="withdraw")], "v2demo")
    assert balances(url, "v2demo")["pools"]["alt"]["USDT"] == "0.01"
    said = refused(url, write_jsonl(tmp_path / "bad.jsonl", [
        capital2("w-2", "0.02", "USDT", "alt", direction="withdraw")]))
    assert said == "line 1: amount: 0.02 exceeds pool alt's balance 0.01"


def test_t2_adl_ends_below_the_minimum(url: str, tmp_path: Path) -> None:
    """T2: in ADL after T1's index 7, a deficit leaving 90.00 <= 100.00 ends it, reason
    below_minimum (ADL mode: no counterparties, so the pool pays the 560.00 it can)."""
    init_fund(url, tmp_path, t1_config())
    loss = {**t1_facts()[1], "id": "liq-3", "time": at("04:00:00"), "fill_price": "440",
            "mark_price": "440"}
    import_facts(url, tmp_path / "t2.jsonl", [*t1_facts()[:3], loss], "t1")
    log = events(url, tmp_path, "t1")
    assert [e["type"] for e in log[7:]] == ["adl_started", "liquidation_settled",
                                            "deficit_covered", "adl_ended"]
    assert log[8]["data"]["outcome"]["adl_mode"] is True
    assert log[9]["data"]["amount"] == "560.00"
    # window at 04:00: t - W before every event, s = 0, peak 1000.00 at index 2
    assert log[10]["data"] == {
        "pool": "main", "asset": "USDT", "balance": "90.00", "peak": "1000.00",
        "peak_index": 2, "peak_time": "2026-01-01T00:00:00Z", "window_seconds": 28800,
        "ratio": "-0.910000000000", "stop_ratio": "-0.25", "reason": "below_minimum",
        "policy_version": 1}


def test_a_v1_fund_still_records_v1_events(url: str, tmp_path: Path) -> None:
    init_fund(url, tmp_path, fund_config(), time="2020-03-12T00:00:00Z")
    facts = [{"type": "capital", "id": "c-1", "time": "2020-03-12T00:00:00Z",
              "direction": "inject", "asset": "USDT", "amount": "100", "source": "operator"},
             {"type": "fee", "id": "f-1", "time": "2020-03-11T00:00:00Z",  # v1: any order
              "kind": "other", "asset": "USDT", "amount": "1.5"}]
    import_facts(url, tmp_path / "v1.jsonl", facts, "main")
    log = events(url, tmp_path, "main")
    assert [(e["type"], e["version"]) for e in log] == [
        ("fund_opened", 1), ("policy_set", 1), ("capital_injected", 1), ("fee_inflow", 1)]
    assert log[2]["data"] == {"asset": "USDT", "amount": "100.00", "source": "operator"}
    assert log[3]["data"] == {"kind": "other", "asset": "USDT", "amount": "1.50",
                              "account": None}
    assert "pools" not in balances(url, "main")


def test_batch_boundaries_change_nothing(url: str, tmp_path: Path) -> None:
    whole = example_export(url, tmp_path).read_bytes()
    other = f"sqlite:///{tmp_path / 'batched.sqlite'}"
    init_fund(other, tmp_path, example_config())
    path = write_jsonl(tmp_path / "facts1.jsonl", example_facts())
    result = run(["import", str(path), "--batch-size", "1", "--batch-commit"], other)
    assert result.exit_code == 0, result.output
    out = tmp_path / "batched.jsonl"
    assert run(["export", str(out)], other).exit_code == 0
    assert out.read_bytes() == whole


def test_t1_restores_byte_for_byte(url: str, tmp_path: Path) -> None:
    """The ADL events are derived: a restore re-derives them from the facts."""
    init_fund(url, tmp_path, t1_config())
    import_facts(url, tmp_path / "t1.jsonl", t1_facts(), "t1")
    exported = tmp_path / "t1-export.jsonl"
    assert run(["export", str(exported)], url).exit_code == 0
    other = f"sqlite:///{tmp_path / 'restored.sqlite'}"
    assert run(["import", str(exported)], other).exit_code == 0
    again = tmp_path / "again.jsonl"
    assert run(["export", str(again)], other).exit_code == 0
    assert again.read_bytes() == exported.read_bytes()


def alt_loss(id_: str, time: str) -> dict[str, Any]:
    """liq-7's position again: D = 120.00 on ALT-PERP."""
    return {**example_facts()[4], "id": id_, "time": time}


def test_claims_per_period(url: str, tmp_path: Path) -> None:
    """After the example, ALT-PERP has claimed 45.00 (20.00 + 25.00) on 2026-01-01; alt holds
    its reserve 10.00 (available 0.00). At 23:59:59 the period is the same: R = 100 - 45 =
    55.00, alt pays min(120, 0, 80, 55) = 0.00 = available, so it is exhausted and the
    backstop draws min(120, 55 - 0, 25, 975 - 100) = 25.00. At 2026-01-02T00:00:00Z a new
    period starts (tau = 20455 * 86400): R = 100.00, the draw min(120, 100, 25, 950 - 100)."""
    example_export(url, tmp_path)
    import_facts(url, tmp_path / "more.jsonl",
                 [alt_loss("liq-9", "2026-01-01T23:59:59Z"),
                  alt_loss("liq-10", "2026-01-02T00:00:00Z")], "v2demo")
    log = events(url, tmp_path, "v2demo")[15:]
    outcomes = [e["data"]["outcome"] for e in log if e["type"] == "liquidation_settled"]
    assert [(o["claim_remaining"], o["fund_payment"], o["backstop_payment"], o["socialized"])
            for o in outcomes] == [("55.00", "0.00", "25.00", "95.00"),
                                   ("100.00", "0.00", "25.00", "95.00")]
    assert [e["type"] for e in log] == ["liquidation_settled", "backstop_drawn",
                                        "socialized_loss_assessed"] * 2
    assert balances(url, "v2demo")["pools"]["shared"]["USDT"] == "925.00"


def test_a_policy_that_adds_and_removes_rules_is_evaluated_at_once(url: str,
                                                                   tmp_path: Path) -> None:
    """Pools alpha and main lose 50% and 40% at 02:00 under a policy without rules; the
    policy/2 of 03:00 adds a rule to both: both start at once, in ascending pool id, with the
    policy fact's ref and time; the policy of 04:00 drops them: both end, reason policy."""
    rule = {"asset": "USDT", "window_seconds": 28800, "start_ratio": "-0.3",
            "stop_ratio": "-0.25", "minimum_balance": "100.00"}
    config = {**t1_config(), "pools": {"main": {"kind": "shared"}, "alpha": {"kind": "shared"}},
              "markets": {"M-PERP": {"kind": "linear", "settlement": "USDT", "pool": "main"},
                          "A-PERP": {"kind": "linear", "settlement": "USDT", "pool": "alpha"}},
              "policy": policy2()}
    init_fund(url, tmp_path, config)
    main_loss = {**t1_facts()[1], "fill_price": "600", "mark_price": "600"}
    alpha_loss = {**main_loss, "id": "liq-a", "market": "A-PERP", "fill_price": "500",
                  "mark_price": "500"}
    facts = [capital2("in-1", "1000.00", "USDT", "main"),
             capital2("in-2", "1000.00", "USDT", "alpha"), main_loss, alpha_loss,
             {"type": "policy", "id": "pol-2", "time": at("03:00:00"),
              "policy": policy2(2, main={"adl": rule}, alpha={"adl": rule})},
             {"type": "policy", "id": "pol-3", "time": at("04:00:00"), "policy": policy2(3)}]
    import_facts(url, tmp_path / "p.jsonl", facts, "t1")
    log = events(url, tmp_path, "t1")[8:]
    assert [(e["index"], e["type"], e["ref"], e["time"], e["data"]["pool"])
            for e in log if e["type"].startswith("adl_")] == [
        (9, "adl_started", "pol-2", at("03:00:00"), "alpha"),
        (10, "adl_started", "pol-2", at("03:00:00"), "main"),
        (12, "adl_ended", "pol-3", at("04:00:00"), "alpha"),
        (13, "adl_ended", "pol-3", at("04:00:00"), "main")]
    # alpha: 1000.00 at index 3, 500.00 after index 7: (500 - 1000) / 1000
    assert (log[1]["data"]["ratio"], log[1]["data"]["peak_index"],
            log[1]["data"]["policy_version"]) == ("-0.500000000000", 3, 2)
    assert log[4]["data"] == {
        "pool": "alpha", "asset": "USDT", "balance": "500.00", "peak": None,
        "peak_index": None, "peak_time": None, "window_seconds": None, "ratio": None,
        "stop_ratio": None, "reason": "policy", "policy_version": 3}
