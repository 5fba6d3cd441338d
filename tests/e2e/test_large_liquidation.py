"""Issue 21 item 1: a liquidation with 650 counterparties (its v1 line would be about 69 KB,
more than a tlog-tiles entry holds) is recorded in format v1.1 by `backstop import` and by
`backstop follow`; tiled publishing goes on, before and after it; `backstop-audit replay`
over the tiles says VERIFIED with the hand-computed balances and totals. SQLite and
PostgreSQL; a real NATS JetStream server for the follower."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditor.cli import main as audit
from tests.bus import Bus, make_bus
from tests.factories import TIME, capital, fee, fund_config, liquidation, write_jsonl
from tests.following import Running, lines
from tests.processes import run

CPS = 650


def first_facts() -> list[dict[str, Any]]:
    """Hand-computed (USDT, 2 decimals): capital 100.00. L1: bob long 0.1 @60000, collateral
    900, filled at 49000: delta = 900 + (49000 - 60000) * 0.1 = -200.00. The fund pays all it
    has, 100.00; S = 100.00 over 650 profits of 10.00 (P = 6500.00): each
    floor(10000 * 1000 / 650000) = 15 units, 9750 in all; the 250 left-over units go to the
    largest remainders, all equal, by ascending id: acct-0000..acct-0249 pay 0.16, the other
    400 pay 0.15. Then a 1.50 fee from carol: balance 1.50."""
    cps = [(f"acct-{i:04d}", "10.00") for i in range(CPS)]
    return [capital("c1", "100.00"),
            liquidation("L1", "49000", account="bob", counterparties=cps),
            fee("f1", "1.50")]


# L2: alice long 0.1 @60000, collateral 900, filled at 56100: surplus 510.00, fee
# min(510, 0.5% * 56100 * 0.1 = 28.05) = 28.05: balance 1.50 + 28.05 = 29.55.
SECOND = [liquidation("L2", "56100")]
FIRST_SIZE = 3 + 1 + 21 + 2 + CPS + 1  # ... head, 21 chunks, payout, socialized, clawbacks, fee
SECOND_SIZE = FIRST_SIZE + 2


def backstop(url: str, *args: str) -> str:
    result = run(url, *args)
    assert result.returncode == 0, (args, result.stderr)
    return result.stdout


def keygen(path: Path) -> str:
    """A signing key at `path`; its verifier key."""
    from ledger.cli.main import main

    result = CliRunner().invoke(main, ["keygen", "op", "--out", str(path)])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def audit_replay(root: Path, size: int, key: str) -> dict[str, Any]:
    result = CliRunner().invoke(audit, ["replay", str(root), "--snapshot", str(size),
                                        "--key", key, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def check_first(doc: dict[str, Any]) -> None:
    assert doc["verified"] is True and doc["events"] == FIRST_SIZE
    assert doc["liquidations"] == 1
    assert doc["balances"] == {"USDT": "1.50"}
    assert doc["totals"] == {"USDT": {"fees": "1.50", "payouts": "100.00",
                                      "clawbacks": "100.00"}}
    assert doc["accounts"] == CPS + 2  # bob, carol and the 650


@pytest.mark.slow  # a dozen `backstop` processes
def test_import_then_tiled_publishing_goes_on_and_the_tiles_verify(db_url: str,
                                                                    tmp_path: Path) -> None:
    config = tmp_path / "fund.json"
    config.write_text(json.dumps(fund_config()))
    vkey = keygen(tmp_path / "op.key")
    backstop(db_url, "init", str(config), "--time", TIME)
    root = tmp_path / "log"
    publish = ["snapshot", "publish", "--layout", "tiles", "--key", str(tmp_path / "op.key"),
               "--out", str(root)]
    facts = first_facts()
    backstop(db_url, "import", str(write_jsonl(tmp_path / "a.jsonl", facts[:1])))
    backstop(db_url, *publish, "--time", "2020-03-12T01:00:00Z")  # a snapshot before it
    backstop(db_url, "import", str(write_jsonl(tmp_path / "b.jsonl", facts[1:])))
    backstop(db_url, *publish, "--time", "2020-03-12T02:00:00Z", "--force")
    backstop(db_url, "import", str(write_jsonl(tmp_path / "c.jsonl", SECOND)))
    backstop(db_url, *publish, "--time", "2020-03-12T03:00:00Z", "--force")
    sizes = sorted(int(p.name) for p in (root / "snapshots").iterdir())
    assert sizes == [3, FIRST_SIZE, SECOND_SIZE]
    check_first(audit_replay(root, FIRST_SIZE, vkey))
    last = audit_replay(root, SECOND_SIZE, vkey)
    assert last["verified"] is True and last["liquidations"] == 2
    assert last["balances"] == {"USDT": "29.55"}
    assert last["totals"] == {"USDT": {"fees": "29.55", "payouts": "100.00",
                                       "clawbacks": "100.00"}}
    # The log holds the v1.1 form, every entry within the bound, and re-derives one by one.
    export = tmp_path / "events.jsonl"
    backstop(db_url, "export", str(export))
    log = [json.loads(line) for line in export.read_text().splitlines()]
    assert [e["type"] for e in log[3:5]] == ["large_liquidation_settled",
                                            "counterparties_listed"]
    assert max(len(line) for line in export.read_bytes().splitlines()) <= 65_535
    claws = {e["data"]["account"]: e["data"]["amount"] for e in log
             if e["type"] == "clawback_charged"}
    assert len(claws) == CPS
    assert claws["acct-0000"] == claws["acct-0249"] == "0.16"
    assert claws["acct-0250"] == claws["acct-0649"] == "0.15"
    # A restore of the export re-derives every event byte for byte, the large ones too.
    restored = f"sqlite:///{tmp_path / 'restored.sqlite'}"
    backstop(restored, "import", str(export))
    backstop(restored, "export", str(tmp_path / "again.jsonl"))
    assert (tmp_path / "again.jsonl").read_bytes() == export.read_bytes()


@pytest.fixture
def bus(nats_server: str) -> Iterator[Bus]:
    created = make_bus(nats_server)
    yield created
    created.delete()


@pytest.mark.slow
def test_follow_records_it_and_scheduled_publishing_goes_on(db_url: str, tmp_path: Path,
                                                            bus: Bus) -> None:
    """The follower's scheduled tiled publication (every 0.05 s) includes the large
    liquidation, and never fails."""
    config = tmp_path / "fund.json"
    config.write_text(json.dumps(fund_config()))
    vkey = keygen(tmp_path / "op.key")
    backstop(db_url, "init", str(config), "--time", TIME)
    facts = write_jsonl(tmp_path / "facts.jsonl", first_facts())
    assert bus.publish(lines(facts)) == [1, 2, 3]
    out = tmp_path / "pub"
    follower = Running(db_url, bus, tmp_path / "follow.log", "--publish-every", "1s",
                       "--key", str(tmp_path / "op.key"), "--out", str(out))
    follower.until(lambda: any(e["size"] == FIRST_SIZE for e in follower.events("published")),
                   "a scheduled snapshot of the whole log")
    summary = follower.stop()
    assert "3 facts recorded, 0 already recorded, 0 dead-lettered" in summary
    assert follower.events("publish_failed") == []
    check_first(audit_replay(out / "log", FIRST_SIZE, vkey))
