"""`backstop follow` of format 2 (pools) facts against the real NATS JetStream server: the
worked log E1 (fixtures/v2-e1.jsonl) followed is the file import's log byte for byte, and a
bad v2 fact is dead-lettered with the import's `field: reason` (its stream sequence for the
line), nothing of it written, the stream going on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.bus import Bus
from tests.factories import write_jsonl
from tests.following import Running, position
from tests.processes import export_bytes, run
from tests.v2fixture import T0, capital2, example_config, example_facts

pytestmark = pytest.mark.slow  # `backstop` subprocesses and a follower (CI runs them all)


def init_v2(url: str, tmp: Path) -> None:
    """E1's fund `v2demo` opened at T0 on `url`."""
    config = tmp / "v2demo.json"
    config.write_text(json.dumps(example_config()))
    result = run(url, "init", str(config), "--time", T0)
    assert result.returncode == 0, result.stderr


def imported(tmp: Path, facts: list[dict[str, Any]]) -> bytes:
    """The export after `backstop import` of `facts` into E1's fund on a fresh SQLite file."""
    folder = tmp / "file-import"
    folder.mkdir()
    url = f"sqlite:///{folder / 'ledger.sqlite'}"
    init_v2(url, folder)
    result = run(url, "import", str(write_jsonl(folder / "facts.jsonl", facts)))
    assert result.returncode == 0, result.stderr
    return export_bytes(url, folder / "events.jsonl")


def follow(url: str, tmp: Path, bus: Bus, payloads: list[bytes]) -> tuple[Running, str]:
    """Publish `payloads`, follow until the last is committed and all acked; the summary."""
    bus.publish(payloads)
    follower = Running(url, bus, tmp / "follow.log", "--max-latency", "0.05")
    follower.until(lambda: position(url, bus) == len(payloads),
                   f"sequence {len(payloads)} committed")
    follower.until(lambda: bus.consumer() == (0, 0), "every message acked")
    return follower, follower.stop()


def test_e1_followed_is_the_file_imports_log(db_url: str, tmp_path: Path, bus: Bus) -> None:
    """E1's six facts through the bus: 15 events (the README's table), the same bytes."""
    init_v2(db_url, tmp_path)
    facts = example_facts()
    _, summary = follow(db_url, tmp_path, bus, [json.dumps(f).encode() for f in facts])
    assert "6 facts recorded, 0 already recorded, 0 dead-lettered" in summary
    exported = export_bytes(db_url, tmp_path / "events.jsonl")
    assert exported.count(b"\n") == 15
    assert exported == imported(tmp_path, facts)


def test_bad_v2_facts_are_dead_lettered_with_their_reason(db_url: str, tmp_path: Path,
                                                          bus: Bus) -> None:
    """shared gets 10.00; a transfer of 10.01 from it (beyond its balance) and a fee without
    `pool` are dead-lettered (sequences 2 and 3, the import's reasons); the transfer of 4.00
    and the fee into alt go on: shared 6.00, alt 4.00 + 0.50 = 4.50."""
    init_v2(db_url, tmp_path)

    def transfer(id_: str, amount: str) -> dict[str, Any]:
        return {"type": "transfer", "id": id_, "time": T0, "from_pool": "shared",
                "to_pool": "alt", "asset": "USDT", "amount": amount, "authority": "operator",
                "reason": "replenish"}

    fee: dict[str, Any] = {"type": "fee", "id": "f-1", "time": T0, "kind": "other",
                           "asset": "USDT", "amount": "0.50"}
    good = [capital2("c-1", "10.00", "USDT", "shared"), transfer("t-2", "4.00"),
            {**fee, "id": "f-2", "pool": "alt"}]
    bad = [transfer("t-1", "10.01"), fee]
    payloads = [json.dumps(r).encode() for r in (good[0], *bad, *good[1:])]
    _, summary = follow(db_url, tmp_path, bus, payloads)
    assert "3 facts recorded, 0 already recorded, 2 dead-lettered" in summary
    assert [(reason, sequence, payload) for reason, sequence, payload in bus.dead_letters()] == [
        ("stream sequence 2: amount: 10.01 exceeds pool shared's balance 10.00", "2",
         payloads[1]),
        ("stream sequence 3: pool: required in a format 2 fund", "3", payloads[2])]
    pools = json.loads(run(db_url, "balances", "--json").stdout)["pools"]
    assert (pools["shared"]["USDT"], pools["alt"]["USDT"]) == ("6.00", "4.50")
    # nothing of the bad facts: the log is the file import of the good ones alone
    assert export_bytes(db_url, tmp_path / "events.jsonl") == imported(tmp_path, good)
