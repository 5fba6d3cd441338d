"""Snapshot `backstop-snapshot/3` end to end (schemas/README.md "Format v2 (pools)", "Snapshot
`backstop-snapshot/3`"): the worked logs E1 and T1 recorded by the ledger, published in both
layouts, VERIFIED by `backstop-audit` member by member; forged members re-signed with the
operator's key fail with the member named.

Expected members, by hand (E1: schemas/README.md "Example (E1)"; T1: vector T1):

E1  pools after index 14: shared USDT 1000.00 - 25.00 (backstop draw for ALT-PERP) = 975.00,
    alt 30.00 - 20.00 = 10.00, btc XBT 0.00150000 - 0.00150000 = 0.00000000; every other
    balance 0. Reserves USDT 975.00 + 10.00 + 0.00 = 985.00.
    Claims: ALT-PERP's cap (index 5) total null, per_period 100.00, period 86400; its claims
    are 20.00 (deficit_covered, index 7) + 25.00 (backstop_drawn, index 8) = 45.00, both at
    02:00 after the cap. The last event's time 03:00 on 2026-01-01: tau = 1767236400,
    k = floor(1767236400 / 86400) = 20454, period start 20454 * 86400 = 1767225600 =
    2026-01-01T00:00:00Z; both claims are in it: claimed_period 45.00. ETH-PERP and XBTUSD
    have no cap: null. No market_observed: metrics.markets is {}; no ADL rule: every adl null.
T1  after index 11 (the log): main USDT 710.00; the last fact is obs-2 at 10:30 (index 10):
    window [02:30, 10:30], s = 4 (idx 3, 4 at 02:00), peak 800.00 at idx 4 (02:00), ratio
    (710 - 800) / 800 = -0.1125; adl_ended at 11: state normal, since null.
    M-PERP: mark 900, open interest 10, notional 900 * 10 = 9000, fund_to_oi = 710.00 / 9000
    = 0.0788888... -> he_12 "0.078888888889".
    Cut after index 7 (the facts up to liq-2): the last fact is liq-2 (indexes 5, 6 at 03:00):
    s = 0, peak 1000.00 at idx 2 (00:00), balance 650.00, ratio -0.35; adl_started at 7:
    state adl, since 7.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditor.verify.keys import Signer
from ledger.cli.main import main as backstop
from tests.e2e.mutations import resigned
from tests.e2e.v2_world import Fund, audit_json, e1, t1
from tests.factories import write_jsonl
from tests.reserves_kit import TIME as KIT_TIME
from tests.reserves_kit import Kit, capital
from tests.v2fixture import T0, example_config, example_facts, t1_config, t1_facts

USD = {"currency": "USD", "decimals": 2}
NO_VALUE = {"open_interest_value": None, "fund_to_oi_after_haircut": None}

E1_STRUCTURE = {
    "valuation": USD,
    "pools": {"alt": {"kind": "isolated", "markets": ["ALT-PERP"]},
              "btc": {"kind": "isolated", "markets": ["XBTUSD"]},
              "shared": {"kind": "shared", "markets": ["ETH-PERP"]}},
    "markets": {"ALT-PERP": {"kind": "linear", "settlement": "USDT", "pool": "alt"},
                "ETH-PERP": {"kind": "linear", "settlement": "USDT", "pool": "shared"},
                "XBTUSD": {"kind": "inverse", "settlement": "XBT", "quote_currency": "USD",
                           "face_value": "1", "pool": "btc"}}}
# E1's policy values no asset (`assets` {}): every held asset is unvalued, every value 0
E1_POOLS = {"alt": {"balances": {"USDT": "10.00", "XBT": "0.00000000"},
                    "value": {"raw": "0.00", "after_haircut": "0.00", "unvalued": ["USDT"]}},
            "btc": {"balances": {"USDT": "0.00", "XBT": "0.00000000"},
                    "value": {"raw": "0.00", "after_haircut": "0.00", "unvalued": []}},
            "shared": {"balances": {"USDT": "975.00", "XBT": "0.00000000"},
                       "value": {"raw": "0.00", "after_haircut": "0.00", "unvalued": ["USDT"]}}}
E1_VALUATION = {"currency": "USD", "decimals": 2, "prices": {}, "haircuts": {},
                "total": {"raw": "0.00", "after_haircut": "0.00", "unvalued": ["USDT"]}}
E1_CLAIMS = {"ALT-PERP": {"asset": "USDT", "total": None, "per_period": "100.00",
                          "period_seconds": 86400, "claimed_total": "45.00",
                          "claimed_period": "45.00", "period_start": "2026-01-01T00:00:00Z"},
             "ETH-PERP": None, "XBTUSD": None}


def publish_tiles(fund: Fund) -> tuple[Path, str]:
    """A tiled publication of the fund and the verifier key."""
    key = fund.tmp / "op.key"
    vkey = fund.run("keygen", "ops.example/v2", "--out", str(key)).strip().splitlines()[-1]
    root = fund.tmp / "tiles"
    fund.run("snapshot", "publish", "--key", str(key), "--layout", "tiles", "--out", str(root))
    return root, vkey


def audit_dir(out: Path, vkey: str) -> tuple[int, dict[str, Any]]:
    return audit_json("replay", str(out / "events.jsonl"), "--snapshot",
                      str(out / "snapshot.json"), "--key", vkey)


def test_e1_publishes_a_verified_snapshot_3(tmp_path: Path) -> None:
    out, vkey = e1(tmp_path).publish()
    doc = json.loads((out / "snapshot.json").read_text())
    assert doc["format"] == "backstop-snapshot/3"
    assert "holdings" not in doc  # no reserves round: optional in /3
    assert doc["reserves"] == {"USDT": "985.00", "XBT": "0.00000000"}
    assert doc["structure"] == E1_STRUCTURE
    assert doc["pools"] == E1_POOLS
    assert doc["claims"] == E1_CLAIMS
    assert doc["valuation"] == E1_VALUATION
    assert doc["metrics"] == {"markets": {},
                              "pools": {p: {**NO_VALUE, "adl": None}
                                        for p in ("alt", "btc", "shared")}}
    code, verdict = audit_dir(out, vkey)
    assert code == 0, verdict
    assert verdict["verified"] is True
    checks = {c["check"]: c["detail"] for c in verdict["checks"]}
    assert checks["snapshot vs replay"].endswith("; pools, structure, claims, valuation, ADL states")


def test_e1_tiled_snapshot_3_is_verified(tmp_path: Path) -> None:
    root, vkey = publish_tiles(e1(tmp_path))
    doc = json.loads((root / "snapshots" / "15" / "snapshot.json").read_text())
    assert (doc["format"], doc["pools"], doc["claims"]) == (
        "backstop-snapshot/3", E1_POOLS, E1_CLAIMS)
    code, verdict = audit_json("replay", str(root), "--key", vkey)
    assert code == 0, verdict
    assert verdict["verified"] is True


def test_e1_observed_markets_are_measured_over_their_pools(tmp_path: Path) -> None:
    """E1 with two observations at 04:00: ETH-PERP (linear, pool shared) mark 3000, open
    interest 2.5: notional 3000 * 2.5 = 7500 (canonical), fund_to_oi = shared's 975.00 / 7500
    = 0.13 -> "0.130000000000" (not the fund's 985.00). XBTUSD (inverse, face value 1, pool
    btc) mark 49000, open interest 10000: 10000 * 1 / 49000 = 0.2040816326530612... XBT, he_12
    "0.204081632653" (no trailing zero to drop); btc holds 0 XBT: fund_to_oi "0.000000000000".
    ALT-PERP's period is still 2026-01-01's: its claims unchanged."""
    def observation(id_: str, market: str, mark: str, open_interest: str) -> dict[str, Any]:
        return {"type": "observation", "id": id_, "time": "2026-01-01T04:00:00Z",
                "market": market, "mark_price": mark, "open_interest": open_interest}

    fund = Fund(tmp_path, example_config(), [*example_facts(),
                                             observation("o-eth", "ETH-PERP", "3000", "2.5"),
                                             observation("o-xbt", "XBTUSD", "49000", "10000")])
    out, vkey = fund.publish()
    doc = json.loads((out / "snapshot.json").read_text())
    assert doc["metrics"]["markets"] == {
        "ETH-PERP": {"mark_price": "3000", "open_interest": "2.5",
                     "open_interest_notional": "7500", "fund_to_oi": "0.130000000000",
                     "pool": "shared", **NO_VALUE},
        "XBTUSD": {"mark_price": "49000", "open_interest": "10000",
                   "open_interest_notional": "0.204081632653", "fund_to_oi": "0.000000000000",
                   "pool": "btc", **NO_VALUE}}
    assert doc["claims"] == E1_CLAIMS
    code, verdict = audit_dir(out, vkey)
    assert code == 0, verdict

    def over_the_fund(doc: dict[str, Any]) -> None:  # v1's meaning: 985.00 / 7500
        doc["metrics"]["markets"]["ETH-PERP"]["fund_to_oi"] = "0.131333333333"

    code, verdict = forged((out, vkey, Signer.from_pem((tmp_path / "op.key").read_bytes())),
                           over_the_fund)
    assert code == 1, verdict
    assert verdict["reason"] == ("snapshot vs replay: metrics.markets.ETH-PERP.fund_to_oi: "
                                 "expected 0.130000000000, got 0.131333333333")


def t1_adl(doc: dict[str, Any]) -> Any:
    return doc["metrics"]["pools"]["main"]["adl"]


def test_t1_snapshot_3_has_the_adl_state_after_the_log(tmp_path: Path) -> None:
    out, vkey = t1(tmp_path).publish()
    doc = json.loads((out / "snapshot.json").read_text())
    assert t1_adl(doc) == {"state": "normal", "since": None, "balance": "710.00",
                           "peak": "800.00", "peak_index": 4,
                           "peak_time": "2026-01-01T02:00:00Z", "ratio": "-0.112500000000"}
    assert doc["metrics"]["markets"] == {"M-PERP": {
        "mark_price": "900", "open_interest": "10", "open_interest_notional": "9000",
        "fund_to_oi": "0.078888888889", "pool": "main", **NO_VALUE}}
    assert doc["claims"] == {"M-PERP": None}
    code, verdict = audit_dir(out, vkey)
    assert code == 0, verdict


def test_t1_cut_after_index_7_is_in_adl_since_7(tmp_path: Path) -> None:
    fund = Fund(tmp_path, t1_config(), t1_facts()[:3])  # up to liq-2: indexes 0-7
    out, vkey = fund.publish()
    doc = json.loads((out / "snapshot.json").read_text())
    assert doc["log"]["size"] == 8
    assert t1_adl(doc) == {"state": "adl", "since": 7, "balance": "650.00",
                           "peak": "1000.00", "peak_index": 2,
                           "peak_time": "2026-01-01T00:00:00Z", "ratio": "-0.350000000000"}
    code, verdict = audit_dir(out, vkey)
    assert code == 0, verdict


def test_a_second_snapshot_3_extends_the_first(tmp_path: Path) -> None:
    """Published after more facts, into the same tiled log: the ADL state moves on."""
    fund = Fund(tmp_path, t1_config(), t1_facts()[:3])
    root, vkey = publish_tiles(fund)
    fund.run("import", str(write_jsonl(tmp_path / "more.jsonl", t1_facts()[3:])))
    fund.run("snapshot", "publish", "--key", str(tmp_path / "op.key"), "--layout", "tiles",
             "--out", str(root))
    first = json.loads((root / "snapshots" / "8" / "snapshot.json").read_text())
    last = json.loads((root / "snapshots" / "12" / "snapshot.json").read_text())
    assert (t1_adl(first)["state"], t1_adl(last)["state"]) == ("adl", "normal")
    code, verdict = audit_json("replay", str(root), "--key", vkey)
    assert code == 0, verdict


@pytest.fixture()
def e1_published(tmp_path: Path) -> tuple[Path, str, Signer]:
    out, vkey = e1(tmp_path).publish()
    return out, vkey, Signer.from_pem((tmp_path / "op.key").read_bytes())


def forged(published: tuple[Path, str, Signer], edit: Any) -> tuple[int, dict[str, Any]]:
    """The E1 publication with its snapshot edited and re-signed with the operator's key."""
    out, vkey, signer = published
    snapshot = json.loads((out / "snapshot.json").read_text())
    lines = (out / "events.jsonl").read_bytes().splitlines(keepends=True)
    (out / "snapshot.json").write_text(json.dumps(resigned(snapshot, lines, signer, edit=edit)))
    return audit_dir(out, vkey)


def move_between_pools(doc: dict[str, Any]) -> None:
    doc["pools"]["alt"]["balances"]["USDT"] = "15.00"  # 5.00 from shared: the sum holds
    doc["pools"]["shared"]["balances"]["USDT"] = "970.00"


def inflate_a_pool(doc: dict[str, Any]) -> None:
    doc["pools"]["alt"]["balances"]["USDT"] = "15.00"


def hide_the_claims(doc: dict[str, Any]) -> None:
    doc["claims"]["ALT-PERP"]["claimed_period"] = "20.00"


def move_a_market(doc: dict[str, Any]) -> None:
    doc["structure"]["markets"]["ALT-PERP"]["pool"] = "shared"


def drop_a_cap(doc: dict[str, Any]) -> None:
    doc["claims"]["ALT-PERP"] = None


def claim_a_valuation(doc: dict[str, Any]) -> None:
    doc["structure"]["valuation"] = {"currency": "EUR", "decimals": 2}


@pytest.mark.parametrize(("edit", "reason"), [
    (move_between_pools, "snapshot vs replay: pools.alt.balances.USDT: expected 10.00, got 15.00"),
    (inflate_a_pool, "snapshot vs replay: pools: USDT sums to 990.00, reserves.USDT is 985.00"),
    (hide_the_claims, ("snapshot vs replay: claims.ALT-PERP.claimed_period: expected 45.00, "
                      "got 20.00")),
    (move_a_market, ("snapshot vs replay: structure.markets.ALT-PERP.pool: expected alt, "
                    "got shared")),
    (drop_a_cap, ('snapshot vs replay: claims.ALT-PERP: expected {"asset":"USDT",'
                 '"claimed_period":"45.00","claimed_total":"45.00","per_period":"100.00",'
                 '"period_seconds":86400,"period_start":"2026-01-01T00:00:00Z","total":null}, '
                 'got null')),
    (claim_a_valuation, ("snapshot vs replay: structure.valuation.currency: expected USD, "
                        "got EUR")),
], ids=lambda v: getattr(v, "__name__", "reason"))
def test_a_forged_snapshot_3_member_fails_named(e1_published: tuple[Path, str, Signer],
                                                edit: Any, reason: str) -> None:
    code, verdict = forged(e1_published, edit)
    assert code == 1, verdict
    assert verdict["reason"] == reason


def test_the_snapshot_command_checks_the_pools_sum(e1_published: tuple[Path, str, Signer]) -> None:
    """Without the log: a /3 whose pools add up to more than its reserves (10.00 + 5.00 in alt:
    975.00 + 15.00 + 0.00 = 990.00 USDT) fails on its own arithmetic."""
    out, vkey, _ = e1_published
    forged(e1_published, inflate_a_pool)
    code, verdict = audit_json("snapshot", str(out / "snapshot.json"), "--key", vkey)
    assert code == 1, verdict
    assert verdict["reason"] == "pools: USDT sums to 990.00, reserves.USDT is 985.00"


def test_a_forged_adl_state_fails_named(tmp_path: Path) -> None:
    out, vkey = t1(tmp_path).publish()
    signer = Signer.from_pem((tmp_path / "op.key").read_bytes())
    snapshot = json.loads((out / "snapshot.json").read_text())
    lines = (out / "events.jsonl").read_bytes().splitlines(keepends=True)

    def still_in_adl(doc: dict[str, Any]) -> None:
        doc["metrics"]["pools"]["main"]["adl"] |= {"state": "adl", "since": 7}

    (out / "snapshot.json").write_text(json.dumps(resigned(snapshot, lines, signer,
                                                           edit=still_in_adl)))
    code, verdict = audit_dir(out, vkey)
    assert code == 1, verdict
    assert verdict["reason"] == ("snapshot vs replay: metrics.pools.main.adl.since: "
                                 "expected null, got 7")


def test_a_v1_log_is_not_verified_against_a_snapshot_3(tmp_path: Path) -> None:
    """A /3 is a v2 log's: the auditor refuses one over a v1 log, naming the format."""
    config = {"fund": "v1", "assets": {"USDT": {"decimals": 2}},
              "markets": {"M-PERP": {"quote": "USDT"}},
              "policy": {"version": 1, "fee_cap_rate": "0.005", "fund_share": {"fixed": "0.5"},
                         "socialization": "pro_rata_profit", "minimum_reserve": {}}}
    fund = Fund(tmp_path, config, [{"type": "capital", "id": "c1", "time": T0,
                                    "direction": "inject", "asset": "USDT",
                                    "amount": "10.00", "source": "operator"}])
    out, vkey = fund.publish()
    signer = Signer.from_pem((tmp_path / "op.key").read_bytes())
    snapshot = json.loads((out / "snapshot.json").read_text())
    assert snapshot["format"] == "backstop-snapshot/1"
    lines = (out / "events.jsonl").read_bytes().splitlines(keepends=True)

    def as_3(doc: dict[str, Any]) -> None:
        doc["format"] = "backstop-snapshot/3"
        doc["structure"] = {"valuation": None, "pools": {}, "markets": {}}
        nothing = {"raw": "0.00", "after_haircut": "0.00", "unvalued": ["USDT"]}
        doc["pools"] = {"default": {"balances": {"USDT": "10.00"}, "value": nothing}}
        doc["claims"] = {}
        doc["valuation"] = {"currency": "USD", "decimals": 2, "prices": {}, "haircuts": {},
                            "total": nothing}
        doc["metrics"]["pools"] = {}

    (out / "snapshot.json").write_text(json.dumps(resigned(snapshot, lines, signer, edit=as_3)))
    code, verdict = audit_dir(out, vkey)
    assert code == 1, verdict
    assert verdict["reason"] == ("snapshot vs replay: format: backstop-snapshot/3 is published "
                                 "for a format v2 log only (this log's event 0 is "
                                 "fund_opened/1)")


@pytest.mark.parametrize("log", [e1, t1], ids=["E1", "T1"])
def test_the_site_reads_a_snapshot_3(tmp_path: Path, log: Any) -> None:
    out, _ = log(tmp_path).publish()
    env = {"BACKSTOP_DB": f"sqlite:///{tmp_path / 'fund.sqlite'}"}
    result = CliRunner().invoke(backstop, ["site", "build", "--published", str(out), "--out",
                                           str(tmp_path / "site")], env=env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "site" / "index.html").is_file()


def test_a_reserves_round_of_a_v2_fund_publishes_a_snapshot_3_with_its_holdings(
        tmp_path: Path) -> None:
    """The round's holdings go into the /3 (optional there, present with a round); the
    replay verifies it. Pool main: 1000.00 USDT and 2.00000000 ETH injected."""
    kit = Kit(tmp_path)
    config = {"format": 2, "fund": "main",
              "assets": {"USDT": {"decimals": 2}, "ETH": {"decimals": 8}},
              "valuation": USD, "pools": {"main": {"kind": "shared"}},
              "markets": {"BTC-PERP": {"kind": "linear", "settlement": "USDT", "pool": "main"}},
              "policy": t1_config()["policy"] | {"pools": {}}}
    (tmp_path / "fund.json").write_text(json.dumps(config))
    kit.ok("init", str(tmp_path / "fund.json"), "--time", KIT_TIME)
    kit.import_facts(*({**capital(i, a, amount), "pool": "main"}
                       for i, a, amount in (("c1", "USDT", "1000.00"),
                                            ("c2", "ETH", "2.00000000"))))
    kit.standard_round()
    doc = kit.publish()
    assert (doc["format"], len(doc["holdings"])) == ("backstop-snapshot/3", 3)
    # T1's policy values no asset: both held assets unvalued
    assert doc["pools"] == {"main": {"balances": {"ETH": "2.00000000", "USDT": "1000.00"},
                                     "value": {"raw": "0.00", "after_haircut": "0.00",
                                               "unvalued": ["ETH", "USDT"]}}}
    code, verdict = audit_dir(tmp_path / "pub", kit.operator.verifier_key())
    assert code == 0, verdict
