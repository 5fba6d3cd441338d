"""Prices and conversions end to end: a v2 log with V1's prices and K1's conversion
(tests/valuation_kit.py) recorded by `backstop init` + `import`, published, and VERIFIED by
`backstop-audit replay`; forged conversions (K2's rate, K3's, a haircut, a price) re-signed
with the operator's key fail it, naming the event.

Hand-worked (schemas/README.md "Format v2 (pools)", "Valued assets and conversions"):
pool btc 0.02 - 0.01 = 0.01 XBT and + 580.00 USDT (K1); main 1000.00 USDT, 0.5 XBT, 2 WBETH;
K's bound for 0.01 XBT at 60000 (h 0.10) into USDT at 0.9995 (h 0.01) is [540.28, 606.36].

The published `/3`'s valuation members (schemas/README.md "Snapshot `backstop-snapshot/3`",
"Valuation"), the log above plus an observation of BTC-PERP (mark 60000, open interest 10) at
index 12:
- main (V1): USDT 1000 · 0.9995 = 999.50, · 0.99 = 989.505 -> 989.50; XBT 0.5 · 60000 =
  30000.00, · 0.9 = 27000.00; WBETH π = 1.05 · 3000 = 3150 (the order-book 430 ignored),
  2 · 3150 = 6300.00, · 0.95 = 5985.00; ETH 0. Raw 37299.50, after haircut 33974.50.
- btc: XBT 0.01 · 60000 = 600.00, · 0.9 = 540.00; USDT 580 · 0.9995 = 579.71, · 0.99 =
  573.9129 -> 573.91. Raw 1179.71, after 1113.91.
- total: 37299.50 + 1179.71 = 38479.21; 33974.50 + 1113.91 = 35088.41; nothing unvalued.
- BTC-PERP: notional 60000 · 10 = 600000 USDT; value 600000 · 0.9995 = 599700 ->
  "599700.00"; fund_to_oi 1000.00 / 600000 = 0.0016666... -> he_12 "0.001666666667";
  after haircut floor_12(33974.50 / 599700) = floor_12(67949 / 1199400) = "0.056652492913".
  Pool main the same (its only observed market); btc has none observed: null, null.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditor import valuation_rules
from auditor.cli import main as audit
from auditor.formats.wire import canonical_bytes
from auditor.replays import replay
from auditor.verify.keys import Signer
from ledger.cli.main import main as backstop
from ledger.domain import poolfund
from ledger.domain import valuation as ledger_valuation
from ledger.domain.fund import export_event
from ledger.service.snapshot3 import pool_members, pool_metrics
from tests.e2e.mutations import resigned
from tests.factories import write_jsonl
from tests.v2fixture import T0
from tests.valuation_kit import config, facts

K1_INDEX = 11
# V1's market: BTC-PERP (linear, USDT, pool main) at mark 60000, open interest 10 (index 12)
OBSERVED = {"type": "observation", "id": "o-btc", "time": "2026-01-01T02:00:00Z",
            "market": "BTC-PERP", "mark_price": "60000", "open_interest": "10"}


def run(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(backstop, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def audit_json(out: Path, vkey: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(audit, ["replay", str(out / "events.jsonl"), "--snapshot",
                                        str(out / "snapshot.json"), "--key", vkey, "--json"])
    return result.exit_code, json.loads(result.output)


@pytest.fixture()
def published(tmp_path: Path) -> tuple[Path, Path, str]:
    """vfund recorded and published: (directory, operator key file, verifier key)."""
    env = {"BACKSTOP_DB": f"sqlite:///{tmp_path / 'fund.sqlite'}"}
    (tmp_path / "fund.json").write_text(json.dumps(config()))
    run(env, "init", str(tmp_path / "fund.json"), "--time", T0)
    run(env, "import", str(write_jsonl(tmp_path / "facts.jsonl", [*facts(), OBSERVED])))
    key = tmp_path / "op.key"
    vkey = run(env, "keygen", "ops.example/v2", "--out", str(key)).strip().splitlines()[-1]
    out = tmp_path / "public"
    run(env, "snapshot", "publish", "--key", str(key), "--out", str(out))
    return out, key, vkey


def test_prices_and_a_conversion_are_verified(published: tuple[Path, Path, str]) -> None:
    out, _, vkey = published
    code, doc = audit_json(out, vkey)
    assert code == 0, doc
    assert doc["verified"] is True
    assert doc["pools"] == {
        "btc": {"ETH": "0.00000000", "USDT": "580.00", "WBETH": "0.00000000",
                "XBT": "0.01000000"},
        "main": {"ETH": "0.00000000", "USDT": "1000.00", "WBETH": "2.00000000",
                 "XBT": "0.50000000"}}
    assert doc["balances"] == {"ETH": "0.00000000", "USDT": "1580.00", "WBETH": "2.00000000",
                               "XBT": "0.51000000"}


def forge(published: tuple[Path, Path, str], index: int,
          **changes: str) -> tuple[int, dict[str, Any]]:
    """Event `index`'s data changed, the snapshot re-signed with the operator's key; audited."""
    out, key, vkey = published
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    events[index]["data"].update(changes)
    lines = [canonical_bytes(ev) + b"\n" for ev in events]
    snapshot = json.loads((out / "snapshot.json").read_text())
    doc = resigned(snapshot, lines, Signer.from_pem(key.read_bytes()))
    (out / "events.jsonl").write_bytes(b"".join(lines))
    (out / "snapshot.json").write_text(json.dumps(doc))
    return audit_json(out, vkey)


BOUND = "is outside [540.28, 606.36] for the recorded prices and haircuts"


@pytest.mark.parametrize(("changes", "reason"), [
    # K2: a forged rate, 700.00 USDT booked for 0.01 XBT: 699.65 · 0.99 > 600
    ({"to_amount": "700.00", "rate": "70000.000000000000"},
     f"data.to_amount: 700.00 {BOUND}"),
    # K3: sold below the pool's own haircut value: 529.735 < 540
    ({"to_amount": "530.00", "rate": "53000.000000000000"},
     f"data.to_amount: 530.00 {BOUND}"),
    # a forged haircut that would widen the bound
    ({"from_haircut": "0.20"},
     "data.from_haircut: expected 0.10 (the policy's haircut of XBT), got '0.20'"),
    ({"from_price": "70000"},
     "data.from_price: expected 60000 (π of XBT at this index), got '70000'"),
    ({"rate": "58000.000000000001"},
     "data.rate: expected 58000.000000000000, got '58000.000000000001'"),
], ids=["K2", "K3", "haircut", "price", "rate"])
def test_a_forged_conversion_fails_the_audit(published: tuple[Path, Path, str],
                                             changes: dict[str, str], reason: str) -> None:
    code, doc = forge(published, K1_INDEX, **changes)
    assert code == 1, doc
    assert doc["reason"] == f"replay: event {K1_INDEX}: {reason}"


def test_a_forged_price_moves_the_conversions_bound(published: tuple[Path, Path, str]) -> None:
    # XBT's recorded price (event 8) raised to 70000: K1's from_price no longer matches it
    code, doc = forge(published, 8, value="70000")
    assert code == 1, doc
    assert doc["reason"] == (f"replay: event {K1_INDEX}: data.from_price: expected 70000 "
                             "(π of XBT at this index), got '60000'")


def test_both_sides_value_the_pools_as_worked_by_hand() -> None:
    """The inputs snapshot /3 will commit to, on the log above. main is V1 exactly: raw
    999.50 + 30000.00 + 6300.00 = 37299.50, after 989.50 + 27000.00 + 5985.00 = 33974.50.
    btc after K1: XBT 0.01 · 60000 = 600.00 / 540.00; USDT 580 · 0.9995 = 579.71, · 0.99 =
    573.9129 -> 573.91. Fund: 38479.21 / 35088.41."""
    fund = poolfund.open_fund(config(), T0)
    for fact in facts():
        poolfund.COMMANDS[fact["type"]](fund, fact)
    mine = poolfund.pool_values(fund)
    lines = [canonical_bytes(export_event(ev, fund.name)) + b"\n" for ev in fund.pending_events]
    result = replay(lines)
    theirs = result.value_book.pool_values(result.pools, result.decimals)
    assert mine == theirs == {"main": (3729950, 3397450, []), "btc": (117971, 111391, [])}
    assert ledger_valuation.total_value(mine) == valuation_rules.total_value(theirs) == (
        3847921, 3508841, [])
    assert ledger_valuation.format_value(3508841, 2) == "35088.41"


V1_PRICES = {"ETH": {"price": "3000", "source": "oracle", "index": 6},
             "USDT": {"price": "0.9995", "source": "oracle", "index": 7},
             "WBETH": {"price": "3150", "source": "redemption_ratio", "ratio": "1.05",
                       "underlying": "ETH", "index": 9},
             "XBT": {"price": "60000", "source": "oracle", "index": 8}}
V1_HAIRCUTS = {"ETH": "0.10", "USDT": "0.01", "WBETH": "0.05", "XBT": "0.10"}


def test_the_snapshot_3_valuation_members_are_v1s(published: tuple[Path, Path, str]) -> None:
    out, _, vkey = published
    doc = json.loads((out / "snapshot.json").read_text())
    assert doc["pools"]["main"]["value"] == {"raw": "37299.50", "after_haircut": "33974.50",
                                             "unvalued": []}
    assert doc["pools"]["btc"]["value"] == {"raw": "1179.71", "after_haircut": "1113.91",
                                            "unvalued": []}
    assert doc["valuation"] == {
        "currency": "USD", "decimals": 2, "prices": V1_PRICES, "haircuts": V1_HAIRCUTS,
        "total": {"raw": "38479.21", "after_haircut": "35088.41", "unvalued": []}}
    assert doc["metrics"]["markets"] == {"BTC-PERP": {
        "mark_price": "60000", "open_interest": "10", "open_interest_notional": "600000",
        "fund_to_oi": "0.001666666667", "pool": "main", "open_interest_value": "599700.00",
        "fund_to_oi_after_haircut": "0.056652492913"}}
    assert {p: {k: v for k, v in m.items() if k != "adl"}
            for p, m in doc["metrics"]["pools"].items()} == {
        "btc": {"open_interest_value": None, "fund_to_oi_after_haircut": None},
        "main": {"open_interest_value": "599700.00",
                 "fund_to_oi_after_haircut": "0.056652492913"}}
    code, verdict = audit_json(out, vkey)
    assert code == 0, verdict
    assert verdict["verified"] is True


def forge_snapshot(published: tuple[Path, Path, str], edit: Any) -> tuple[int, dict[str, Any]]:
    """The snapshot edited and re-signed with the operator's key (the log unchanged)."""
    out, key, vkey = published
    lines = (out / "events.jsonl").read_bytes().splitlines(keepends=True)
    snapshot = json.loads((out / "snapshot.json").read_text())
    doc = resigned(snapshot, lines, Signer.from_pem(key.read_bytes()), edit=edit)
    (out / "snapshot.json").write_text(json.dumps(doc))
    return audit_json(out, vkey)


def richer(doc: dict[str, Any]) -> None:
    doc["valuation"]["total"]["after_haircut"] = "35188.41"  # 100.00 more


def lighter_haircut(doc: dict[str, Any]) -> None:
    doc["valuation"]["haircuts"]["XBT"] = "0.05"


def cheaper_oi(doc: dict[str, Any]) -> None:
    doc["metrics"]["markets"]["BTC-PERP"]["open_interest_value"] = "599699.99"  # rounded down


def pool_ratio(doc: dict[str, Any]) -> None:
    doc["metrics"]["pools"]["main"]["fund_to_oi_after_haircut"] = "0.056652492914"


def book_price(doc: dict[str, Any]) -> None:  # WBETH at its order-book price (index 10)
    doc["valuation"]["prices"]["WBETH"] = {"price": "430", "source": "oracle", "index": 10}


def pool_value(doc: dict[str, Any]) -> None:
    doc["pools"]["btc"]["value"]["unvalued"] = ["XBT"]


@pytest.mark.parametrize(("edit", "reason"), [
    (richer, "valuation.total.after_haircut: expected 35088.41, got 35188.41"),
    (lighter_haircut, "valuation.haircuts.XBT: expected 0.10, got 0.05"),
    (cheaper_oi, ("metrics.markets.BTC-PERP.open_interest_value: expected 599700.00, "
                  "got 599699.99")),
    (pool_ratio, ("metrics.pools.main.fund_to_oi_after_haircut: expected 0.056652492913, "
                  "got 0.056652492914")),
    (book_price, "valuation.prices.WBETH.index: expected 9, got 10"),
    (pool_value, 'pools.btc.value.unvalued: expected [], got ["XBT"]'),
], ids=lambda v: getattr(v, "__name__", "reason"))
def test_a_forged_valuation_member_fails_named(published: tuple[Path, Path, str], edit: Any,
                                               reason: str) -> None:
    code, verdict = forge_snapshot(published, edit)
    assert code == 1, verdict
    assert verdict["reason"] == f"snapshot vs replay: {reason}"


def test_an_unvalued_snapshot_3_is_refused(published: tuple[Path, Path, str]) -> None:
    """A `/3` of the earlier version, its valuation members null, is refused (the schema's
    non-null shapes), even though its log is the one it commits to."""
    def unvalued(doc: dict[str, Any]) -> None:
        doc["valuation"] = None
        for pool in doc["pools"].values():
            pool["value"] = None

    code, verdict = forge_snapshot(published, unvalued)
    assert code == 2, verdict  # unreadable as a /3 of this version, as any schema failure
    assert verdict["reason"].endswith(
        "snapshot.json: does not match snapshot.schema.json: pools.btc.value: None is not "
        "of type 'object'")


def test_a_log_without_prices_values_nothing(tmp_path: Path) -> None:
    """vfund's capital (main 1000.00 USDT, 0.5 XBT, 2 WBETH; btc 0.02 XBT) and BTC-PERP's
    observation, no `price`: every asset's source is oracle or redemption_ratio, so no π is
    known: prices {}, every held asset unvalued, every value 0.00; the open interest has no
    value (π(USDT) unknown): both null. The haircuts are still the policy's."""
    env = {"BACKSTOP_DB": f"sqlite:///{tmp_path / 'fund.sqlite'}"}
    (tmp_path / "fund.json").write_text(json.dumps(config()))
    run(env, "init", str(tmp_path / "fund.json"), "--time", T0)
    capital = [f for f in facts() if f["type"] == "capital"]
    run(env, "import", str(write_jsonl(tmp_path / "facts.jsonl", [*capital, OBSERVED])))
    key = tmp_path / "op.key"
    vkey = run(env, "keygen", "ops.example/v2", "--out", str(key)).strip().splitlines()[-1]
    out = tmp_path / "public"
    run(env, "snapshot", "publish", "--key", str(key), "--out", str(out))
    doc = json.loads((out / "snapshot.json").read_text())
    zero = {"raw": "0.00", "after_haircut": "0.00"}
    assert doc["valuation"] == {"currency": "USD", "decimals": 2, "prices": {},
                                "haircuts": V1_HAIRCUTS,
                                "total": {**zero, "unvalued": ["USDT", "WBETH", "XBT"]}}
    assert {p: v["value"] for p, v in doc["pools"].items()} == {
        "btc": {**zero, "unvalued": ["XBT"]}, "main": {**zero, "unvalued": ["USDT", "WBETH", "XBT"]}}
    market = doc["metrics"]["markets"]["BTC-PERP"]
    assert (market["open_interest_value"], market["fund_to_oi_after_haircut"]) == (None, None)
    assert doc["metrics"]["pools"]["main"]["open_interest_value"] is None
    code, verdict = audit_json(out, vkey)
    assert code == 0, verdict


def risk_report(path: Path) -> Path:
    """A `backstop risk --out` report of vfund, written by hand: recommended 50000.00 USDT
    (its figures are the operator's; only the hash of its parameters is checked)."""
    parameters = {"scenarios": "hand"}
    report = {"format": "backstop-risk/1", "fund": "vfund", "asset": "USDT",
              "deficits": {"99.9": {"es": "40000.00"}}, "cover_2": "45000.00",
              "recommended_size": "50000.00", "balance": "1580.00", "coverage": "0.031600",
              "policies": [{"probability_of_socialization": "0.010000"}], "paths": 1,
              "model": {"parameters": parameters,
                        "hash": hashlib.sha256(canonical_bytes(parameters)).hexdigest()}}
    path.write_text(json.dumps(report))
    return path


@pytest.fixture()
def with_risk(tmp_path: Path) -> tuple[Path, Path, str]:
    """vfund with BTC-PERP observed, published with the risk report above."""
    env = {"BACKSTOP_DB": f"sqlite:///{tmp_path / 'fund.sqlite'}"}
    (tmp_path / "fund.json").write_text(json.dumps(config()))
    run(env, "init", str(tmp_path / "fund.json"), "--time", T0)
    run(env, "import", str(write_jsonl(tmp_path / "facts.jsonl", [*facts(), OBSERVED])))
    key = tmp_path / "op.key"
    vkey = run(env, "keygen", "ops.example/v2", "--out", str(key)).strip().splitlines()[-1]
    out = tmp_path / "public"
    run(env, "snapshot", "publish", "--key", str(key), "--out", str(out), "--risk",
        str(risk_report(tmp_path / "risk.json")))
    return out, key, vkey


def test_the_risk_headline_has_its_coverage_after_haircut(
        with_risk: tuple[Path, Path, str]) -> None:
    """floor_6(35088.41 / (50000.00 · 0.9995)) = floor_6(35088.41 / 49975) =
    floor_6(0.70211925...) = 0.702119 (35088.41 - 0.7 · 49975 = 105.91; 105.91 / 49975 =
    0.0021192...)."""
    out, _, vkey = with_risk
    doc = json.loads((out / "snapshot.json").read_text())
    assert doc["metrics"]["risk"]["coverage_after_haircut"] == "0.702119"
    assert doc["metrics"]["risk"]["coverage"] == "0.031600"  # the report's, as in /1
    code, verdict = audit_json(out, vkey)
    assert code == 0, verdict

    def better_covered(doc: dict[str, Any]) -> None:
        doc["metrics"]["risk"]["coverage_after_haircut"] = "0.712119"

    code, verdict = forge_snapshot(with_risk, better_covered)
    assert code == 1, verdict
    assert verdict["reason"] == ("snapshot vs replay: metrics.risk.coverage_after_haircut: "
                                 "expected 0.702119, got 0.712119")


def test_an_inverse_market_is_valued_in_its_coin(tmp_path: Path) -> None:
    """XBTUSD (inverse, face value 1, pool btc) observed at mark 50000, open interest 10000:
    notional 10000 · 1 / 50000 = 0.2 XBT ("0.2"); fund_to_oi btc's 0.01 XBT / 0.2 = 0.05 ->
    "0.050000000000"; value 0.2 · π(XBT) 60000 = 12000 -> "12000.00"; after haircut
    floor_12(1113.91 / 12000) = floor_12(0.09282583333...) = "0.092825833333"."""
    observed = {**OBSERVED, "id": "o-xbt", "market": "XBTUSD", "mark_price": "50000",
                "open_interest": "10000"}
    env = {"BACKSTOP_DB": f"sqlite:///{tmp_path / 'fund.sqlite'}"}
    (tmp_path / "fund.json").write_text(json.dumps(config()))
    run(env, "init", str(tmp_path / "fund.json"), "--time", T0)
    run(env, "import", str(write_jsonl(tmp_path / "facts.jsonl", [*facts(), observed])))
    key = tmp_path / "op.key"
    vkey = run(env, "keygen", "ops.example/v2", "--out", str(key)).strip().splitlines()[-1]
    out = tmp_path / "public"
    run(env, "snapshot", "publish", "--key", str(key), "--out", str(out))
    doc = json.loads((out / "snapshot.json").read_text())
    assert doc["metrics"]["markets"]["XBTUSD"] == {
        "mark_price": "50000", "open_interest": "10000", "open_interest_notional": "0.2",
        "fund_to_oi": "0.050000000000", "pool": "btc", "open_interest_value": "12000.00",
        "fund_to_oi_after_haircut": "0.092825833333"}
    assert {k: v for k, v in doc["metrics"]["pools"]["btc"].items() if k != "adl"} == {
        "open_interest_value": "12000.00", "fund_to_oi_after_haircut": "0.092825833333"}
    assert doc["metrics"]["pools"]["main"]["open_interest_value"] is None  # none observed
    code, verdict = audit_json(out, vkey)
    assert code == 0, verdict


def test_par_and_a_floor_on_both_sides() -> None:
    """vfund with USDT valued par and WBETH floored at 3200, without a publication: the
    ledger's /3 members equal the auditor's. USDT π 1 (index null): main 1000.00 / 990.00,
    btc 580.00 / 574.20 (580 · 0.99); WBETH π max(1.05 · 3000, 3200) = 3200: 6400.00 /
    6080.00 (· 0.95); XBT as V1. main raw 1000 + 30000 + 6400 = 37400.00, after 990 + 27000
    + 6080 = 34070.00; btc raw 600 + 580 = 1180.00, after 540 + 574.20 = 1114.20."""

    cfg = config()
    cfg["policy"]["assets"] = {**cfg["policy"]["assets"],
                               "USDT": {"haircut": "0.01", "source": "par"},
                               "WBETH": {**cfg["policy"]["assets"]["WBETH"], "floor": "3200"}}
    fund = poolfund.open_fund(cfg, T0)
    for fact in [f for f in facts() if f["id"] != "p-usdt"]:
        poolfund.COMMANDS[fact["type"]](fund, fact)
    mine = {**pool_members(fund, cfg["valuation"]), "metrics": pool_metrics(fund, None)}
    lines = [canonical_bytes(export_event(ev, fund.name)) + b"\n" for ev in fund.pending_events]
    theirs = replay(lines).snapshot3
    assert theirs is not None
    for member in ("pools", "valuation", "metrics"):
        assert mine[member] == theirs[member], member
    assert {p: v["value"] for p, v in mine["pools"].items()} == {
        "btc": {"raw": "1180.00", "after_haircut": "1114.20", "unvalued": []},
        "main": {"raw": "37400.00", "after_haircut": "34070.00", "unvalued": []}}
    prices = mine["valuation"]["prices"]
    assert prices["USDT"] == {"price": "1", "source": "par", "index": None}
    # the ratio was recorded at index 8 here (no USDT price: the prices sit at 6 to 9)
    assert prices["WBETH"] == {"price": "3200", "source": "redemption_ratio", "ratio": "1.05",
                               "underlying": "ETH", "index": 8}
    assert mine["valuation"]["total"] == {"raw": "38580.00", "after_haircut": "35184.20",
                                          "unvalued": []}
