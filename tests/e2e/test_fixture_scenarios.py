"""fixtures/crash-hand: a crash computed by hand, imported end to end through the CLI.

USDT, 2 decimals. Policy v1: fee cap 0.5%, fund share 1, pro rata, no reserve.
  cap-1     inject 500.00                                               fund  500.00
  fee-1     trading-fee share 12.00                                     fund  512.00
  liq-1     long 1 @10000, collateral 1000 (bankruptcy 9000), fill 9500:
            delta = 1000 + (9500 - 10000) * 1 = 500; cap 0.5% * 9500 = 47.50 fund  559.50
  liq-2     short 2 @9000, collateral 900 (bankruptcy 9450), fill 9300:
            delta = 900 + (9000 - 9300) * 2 = 300; cap 0.5% * 9300 * 2 = 93  fund  652.50
  liq-3     long 1 @9000, collateral 450 (bankruptcy 8550), fill 8200:
            delta = 450 - 800 = -350: the fund pays 350.00                  fund  302.50
  liq-4     long 0.5 @9000, collateral 300 (bankruptcy 8400), fill 7000:
            delta = 300 - 1000 = -700: the fund pays all it has, 302.50     fund    0.00
            S = 397.50 over profits 600/300/100: s1 238.50, s2 119.25, s3 39.75
  policy-2  v2: fee cap 1%, fund share 0.5
  liq-5     short 1 @7000, collateral 700 (bankruptcy 7700), fill 7100:
            delta = 700 - 100 = 600; cap 1% * 7100 = 71.00; x 0.5 = 35.50 fund   35.50
  liq-6     long 1 @7200, collateral 360 (bankruptcy 6840), fill 6500:
            delta = 360 - 700 = -340: the fund pays 35.50                   fund    0.00
            S = 304.50; profits a, b, c 1.00 each: each pays 1.00, 301.50 unresolved
Totals: inflow 12 + 47.50 + 93 + 35.50 = 188.00; covered 350 + 302.50 + 35.50 = 688.00;
socialized 397.50 + 304.50 = 702.00; clawed back 400.50; unresolved 301.50;
500 + 188 - 688 = 0.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from auditor.cli import main as audit
from ledger.cli.main import main as backstop

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def test_hand_computed_crash(tmp_path: Path) -> None:
    env = {"BACKSTOP_DB": f"sqlite:///{tmp_path / 'hand.sqlite'}"}

    def run(*args: str) -> str:
        result = CliRunner().invoke(backstop, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    run("init", str(FIXTURES / "crash-hand.fund.json"), "--time", "2020-03-12T00:00:00Z")
    run("import", str(FIXTURES / "crash-hand.jsonl"))
    doc = json.loads(run("balances", "--json"))
    usdt = doc["assets"]["USDT"]
    assert (usdt["balance"], usdt["inflow"], usdt["covered"], usdt["socialized"],
            usdt["clawed_back"], usdt["unresolved"], usdt["injected"]) == (
        "0.00", "188.00", "688.00", "702.00", "400.50", "301.50", "500.00")
    assert (doc["policy_version"], doc["events"]["liquidation_settled"]) == (2, 6)
    clawbacks = {a: json.loads(run("account", a, "--json"))["assets"]["USDT"]["clawbacks"]
                 for a in ("s1", "s2", "s3", "a", "b", "c")}
    assert clawbacks == {"s1": "238.50", "s2": "119.25", "s3": "39.75",
                         "a": "1.00", "b": "1.00", "c": "1.00"}
    liq5 = [json.loads(line) for line in run("history", "--json", "--per-page", "100")
            .splitlines() if '"liq-5"' in line]
    assert [e["type"] for e in liq5] == ["liquidation_settled", "fee_inflow"]
    assert liq5[0]["data"]["policy_version"] == 2 and liq5[1]["data"]["amount"] == "35.50"

    # The independent auditor agrees with every number.
    key = tmp_path / "op.key"
    run("keygen", "hand.example", "--out", str(key))
    run("snapshot", "publish", "--key", str(key), "--out", str(tmp_path / "pub"))
    result = CliRunner().invoke(audit, [
        "replay", str(tmp_path / "pub" / "events.jsonl"), "--snapshot",
        str(tmp_path / "pub" / "snapshot.json"), "--key", str(tmp_path / "pub" / "verifier-key")])
    assert result.exit_code == 0, result.output
