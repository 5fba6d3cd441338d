"""Format v2 end to end: the worked logs E1 and T1 of schemas/README.md ("Format v2 (pools)";
E1's facts in fixtures/v2-e1.*, T1's in tests/v2fixture.py) recorded by `backstop init` + `import`, exported, published, and re-derived by
`backstop-audit`; forged v2 logs re-signed with the operator's key fail it; the README's
venue-shaped configs open funds.

Expected figures are the README's hand computations (fixtures/README.md lists them):
E1  shared 1000.00 - 25.00 (backstop draw) = 975.00; alt 30.00 - 20.00 = 10.00;
    btc 0.00150000 - 0.00150000 = 0; A pays 0.00019012, B 0.00039152 (pro rata, one unit to
    the larger remainder).
T1  adl_started/1 at index 7 (ratio -0.35), adl_ended/1 at index 11 (reason recovered);
    main 1000.00 - 200.00 - 150.00 + 60.00 = 710.00.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditor.formats.wire import canonical_bytes
from auditor.verify.keys import Signer
from ledger.cli.main import main as backstop
from tests.e2e.mutations import resigned
from tests.e2e.v2_world import audit_json, e1, t1
from tests.v2fixture import T0, t1_config

ROOT = Path(__file__).resolve().parents[2]


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [f"{ev['type']}/{ev['version']}" for ev in events]


def test_e1_is_recorded_as_worked_by_hand(tmp_path: Path) -> None:
    events = e1(tmp_path).events()
    assert kinds(events) == [
        "fund_opened/2", "policy_set/2", "capital_injected/2", "capital_injected/2",
        "capital_injected/2", "claim_cap_set/1",
        "liquidation_settled/2", "deficit_covered/2", "backstop_drawn/1",
        "socialized_loss_assessed/2",
        "liquidation_settled/2", "deficit_covered/2", "socialized_loss_assessed/2",
        "clawback_charged/2", "clawback_charged/2"]
    outcome = events[6]["data"]["outcome"]
    assert {k: outcome[k] for k in ("bankruptcy_price", "delta", "deficit", "fund_payment",
                                    "pool", "adl_mode", "claim_remaining", "backstop_pool",
                                    "backstop_payment", "socialized", "unresolved", "layers")} == {
        "bankruptcy_price": "28500.00000000", "delta": "-120.00", "deficit": "120.00",
        "fund_payment": "20.00", "pool": "alt", "adl_mode": False, "claim_remaining": "100.00",
        "backstop_pool": "shared", "backstop_payment": "25.00", "socialized": "75.00",
        "unresolved": "75.00", "layers": []}
    assert events[8]["data"] == {"pool": "shared", "for_pool": "alt", "market": "ALT-PERP",
                                 "asset": "USDT", "amount": "25.00", "account": "acct-9",
                                 "limit": "25.00"}
    xbt = events[10]["data"]["outcome"]
    assert (xbt["bankruptcy_price"], xbt["delta"], xbt["deficit"], xbt["fund_payment"],
            xbt["socialized"], xbt["unresolved"], xbt["claim_remaining"]) == (
        "49504.95049505", "-0.00208164", "0.00208164", "0.00150000", "0.00058164",
        "0.00000000", None)
    assert [(ev["data"]["account"], ev["data"]["amount"]) for ev in events[13:]] == [
        ("A", "0.00019012"), ("B", "0.00039152")]


def test_e1_replays_verified_with_each_pools_balance(tmp_path: Path) -> None:
    out, vkey = e1(tmp_path).publish()
    code, doc = audit_json("replay", str(out / "events.jsonl"), "--snapshot",
                           str(out / "snapshot.json"), "--key", vkey)
    assert code == 0, doc
    assert doc["verified"] is True
    assert doc["pools"] == {"alt": {"USDT": "10.00", "XBT": "0.00000000"},
                            "btc": {"USDT": "0.00", "XBT": "0.00000000"},
                            "shared": {"USDT": "975.00", "XBT": "0.00000000"}}
    assert doc["balances"] == {"USDT": "985.00", "XBT": "0.00000000"}
    assert (doc["totals"]["USDT"]["payouts"], doc["totals"]["XBT"]["clawbacks"]) == (
        "45.00", "0.00058164")


def test_t1_starts_and_ends_adl_where_the_rule_says(tmp_path: Path) -> None:
    events = t1(tmp_path).events()
    adl = [(ev["index"], ev["type"], ev["data"]) for ev in events if ev["type"].startswith("adl_")]
    assert [(i, t) for i, t, _ in adl] == [(7, "adl_started"), (11, "adl_ended")]
    started, ended = adl[0][2], adl[1][2]
    assert (started["balance"], started["peak"], started["peak_index"], started["peak_time"],
            started["ratio"]) == ("650.00", "1000.00", 2, "2026-01-01T00:00:00Z",
                                  "-0.350000000000")
    assert (ended["reason"], ended["peak"], ended["peak_index"], ended["peak_time"],
            ended["ratio"]) == ("recovered", "800.00", 4, "2026-01-01T02:00:00Z",
                                "-0.112500000000")


class Forger:
    """A published v2 directory, altered and re-signed with the operator's own key."""

    def __init__(self, out: Path, key: Path, vkey: str) -> None:
        self.out, self.vkey = out, vkey
        self.signer = Signer.from_pem(key.read_bytes())
        self.events = [json.loads(line) for line in
                       (out / "events.jsonl").read_text().splitlines()]
        self.snapshot = json.loads((out / "snapshot.json").read_text())

    def forge(self, events: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        """Write `events` (renumbered) as the export under a re-signed snapshot; audit it."""
        lines = [canonical_bytes({**ev, "index": i}) + b"\n" for i, ev in enumerate(events)]
        doc = resigned(self.snapshot, lines, self.signer)
        (self.out / "events.jsonl").write_bytes(b"".join(lines))
        (self.out / "snapshot.json").write_text(json.dumps(doc))
        return audit_json("replay", str(self.out / "events.jsonl"), "--snapshot",
                          str(self.out / "snapshot.json"), "--key", self.vkey)


@pytest.fixture()
def t1_published(tmp_path: Path) -> Forger:
    fund = t1(tmp_path)
    out, vkey = fund.publish()
    return Forger(out, tmp_path / "op.key", vkey)


def test_a_forged_adl_start_fails_the_audit(t1_published: Forger) -> None:
    events = [dict(ev) for ev in t1_published.events]
    forged = json.loads(json.dumps(events[7]))  # the real start, moved one fact earlier
    forged["data"] = dict(forged["data"], balance="800.00", ratio="-0.200000000000")
    forged["time"], forged["ref"] = events[4]["time"], events[4]["ref"]
    code, doc = t1_published.forge([*events[:5], forged, *events[5:7], *events[8:]])
    assert code == 1, doc
    # -200/1000 = -0.2 is not below the start ratio -0.3 (T1's first deficit)
    assert doc["reason"] == ("replay: event 5: adl_started: not called for: ratio "
                             "-0.200000000000 is not below -0.3")


def test_a_missing_adl_start_fails_the_audit(t1_published: Forger) -> None:
    events = [dict(ev) for ev in t1_published.events]
    code, doc = t1_published.forge([*events[:7], *events[8:11]])
    assert code == 1, doc
    # -350/1000 after the second deficit: the start is owed right after it, at index 7
    assert doc["reason"] == ("replay: event 7: pool main: the rule calls for adl_started here "
                             "(ratio -0.350000000000 < -0.3), the log has none")


def test_a_claim_beyond_its_cap_fails_the_audit(tmp_path: Path) -> None:
    fund = e1(tmp_path)
    out, vkey = fund.publish()
    forger = Forger(out, tmp_path / "op.key", vkey)
    events = json.loads(json.dumps(forger.events))
    events[5]["data"]["per_period"] = "40.00"  # the ledger paid 45.00 under a cap of 100.00
    code, doc = forger.forge(events)
    assert code == 1, doc
    # R = 40.00 - 0 claimed; alt's 20.00 and shared's 25.00 claim 45.00 for ALT-PERP
    assert doc["reason"] == ("replay: event 6: data.outcome.fund_payment: market ALT-PERP's "
                             "claim would exceed its cap (remaining 40.00)")


def readme_configs() -> list[dict[str, Any]]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```json\n(\{\"format\": 2.*?)```", text, re.DOTALL)
    return [json.loads(block) for block in blocks]


@pytest.mark.parametrize("config", readme_configs(), ids=lambda c: c["fund"])
def test_the_readmes_venue_configs_open_funds(tmp_path: Path, config: dict[str, Any]) -> None:
    assert len(readme_configs()) == 4
    policy = {**t1_config()["policy"], "pools": {}}
    path = tmp_path / "fund.json"
    path.write_text(json.dumps({**config, "policy": policy}))
    env = {"BACKSTOP_DB": f"sqlite:///{tmp_path / 'fund.sqlite'}"}
    result = CliRunner().invoke(backstop, ["init", str(path), "--time", T0],
                                env=env)
    assert result.exit_code == 0, result.output
