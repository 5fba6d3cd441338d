"""backstop-audit re-derives a large liquidation (format v1.1, schemas/README.md "Large
liquidations"): the head and its counterparties_listed chunks are joined, counted and hashed;
a head without all its chunks, chunks without their head, another event in between, a wrong
count or hash, and a head for a liquidation that fits one line each fail (exit 1) with their
reason. The same liquidation in the v1 form replays to the same balances and accounts."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditor.cli import main as audit
from auditor.formats.bounds import counterparties_digest
from auditor.formats.wire import canonical_bytes
from auditor.replay import replay
from tests.factories import TIME, capital, fee, fund_config, liquidation, write_jsonl

CPS = 650  # 21 chunks: 20 of 32 and one of 10
HEAD = 3   # fund_opened, policy_set, capital_injected, then the head


def backstop(*args: str) -> str:
    from ledger.cli.main import main as operator

    result = CliRunner().invoke(operator, list(args), catch_exceptions=False)
    assert result.exit_code == 0, (args, result.output)
    return result.output


def publish(base: Path, name: str, counterparties: int) -> tuple[Path, str]:
    """A published directory of capital 100.00, one deficit liquidation with `counterparties`
    counterparties of 10.00 profit each, then a fee; and its verifier key."""
    db = f"sqlite:///{base / f'{name}.sqlite'}"
    config = base / f"{name}.fund.json"
    config.write_text(json.dumps(fund_config()))
    cps = [(f"acct-{i:04d}", "10.00") for i in range(counterparties)]
    facts = write_jsonl(base / f"{name}.jsonl", [
        capital("c1", "100.00"),
        liquidation("L1", "49000", account="bob", counterparties=cps),
        fee("f1", "1.50")])
    vkey = backstop("keygen", "op", "--out", str(base / f"{name}.key")).strip().splitlines()[-1]
    backstop("init", str(config), "--db", db, "--time", TIME)
    backstop("import", str(facts), "--db", db)
    backstop("snapshot", "publish", "--key", str(base / f"{name}.key"), "--out",
             str(base / name), "--db", db, "--time", "2020-03-13T00:00:00Z")
    return base / name, vkey


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("large")
    large, key = publish(base, "large", CPS)
    small, small_key = publish(base, "small", 40)
    return {"large": large, "key": key, "small": small, "small_key": small_key}


def events(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]


def rewrite(world: dict[str, Any], tmp_path: Path, changed: list[dict[str, Any]],
            which: str = "large") -> Path:
    """A copy of a published directory whose events.jsonl is `changed`, re-indexed."""
    folder = tmp_path / which
    shutil.copytree(world[which], folder)
    lines = [canonical_bytes({**event, "index": i}) + b"\n" for i, event in enumerate(changed)]
    (folder / "events.jsonl").write_bytes(b"".join(lines))
    return folder


def audit_replay(folder: Path, key: str) -> tuple[int, str]:
    result = CliRunner().invoke(audit, ["replay", str(folder / "events.jsonl"), "--snapshot",
                                        str(folder / "snapshot.json"), "--key", key])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_the_published_large_liquidation_is_recorded_as_head_and_chunks(world) -> None:
    log = events(world["large"])
    types = [e["type"] for e in log]
    # 3 + head + 21 chunks + deficit_covered + socialized_loss_assessed + 650 clawbacks + fee
    assert len(log) == 3 + 1 + 21 + 2 + CPS + 1
    assert types[HEAD] == "large_liquidation_settled"
    assert types[HEAD + 1:HEAD + 22] == ["counterparties_listed"] * 21
    assert types[HEAD + 22:HEAD + 24] == ["deficit_covered", "socialized_loss_assessed"]
    head = log[HEAD]["data"]
    assert head["counterparty_count"] == CPS and "counterparties" not in head
    chunks = log[HEAD + 1:HEAD + 22]
    assert [c["data"]["chunk"] for c in chunks] == list(range(21))
    assert [len(c["data"]["counterparties"]) for c in chunks] == [32] * 20 + [10]
    assert {(c["ref"], c["time"]) for c in chunks} == {("L1", TIME)}
    # The hash, by hand: the list's RFC 8785 bytes are its objects (keys sorted, no spaces)
    # joined by commas inside brackets.
    objects = ['{"account":"acct-%04d","collateral":"1000","entry_price":"40000","size":"1",'
               '"unrealized_pnl":"10.00"}' % i for i in range(CPS)]
    by_hand = hashlib.sha256(("[" + ",".join(objects) + "]").encode()).hexdigest()
    assert head["counterparties_sha256"] == by_hand
    assert max(len(line) for line in (world["large"] / "events.jsonl").read_bytes()
               .splitlines()) < 65_535
    assert audit_replay(world["large"], world["key"])[0] == 0


def test_the_readme_example_hash_is_the_hand_computed_one() -> None:
    """schemas/README.md's example: 33 counterparties c00..c32."""
    listed = [{"account": f"c{i:02d}", "collateral": "10", "entry_price": "100", "size": "1",
               "unrealized_pnl": "5.00"} for i in range(33)]
    text = "[" + ",".join('{"account":"c%02d","collateral":"10","entry_price":"100",'
                          '"size":"1","unrealized_pnl":"5.00"}' % i for i in range(33)) + "]"
    assert len(text) == 3004
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert digest == "7fbe6b66afdb6c754c0849c5df28f6a5a45e209cb84c2ba17c630dde271f1cad"
    assert counterparties_digest(listed) == digest
    readme = (Path(__file__).resolve().parents[2] / "schemas" / "README.md").read_text()
    assert digest in readme


def test_the_v1_form_replays_to_the_same_balances_and_accounts(world) -> None:
    """Joined into one liquidation_settled line (a v1 log, which stays valid), the same
    liquidation gives the same balances and account totals; only the root differs."""
    log = events(world["large"])
    head, chunks = log[HEAD], log[HEAD + 1:HEAD + 22]
    data = {k: v for k, v in head["data"].items()
            if k not in ("counterparty_count", "counterparties_sha256")}
    data["counterparties"] = [cp for c in chunks for cp in c["data"]["counterparties"]]
    v1 = [*log[:HEAD], {**head, "type": "liquidation_settled", "data": data}, *log[HEAD + 22:]]
    as_v1 = replay(canonical_bytes({**e, "index": i}) for i, e in enumerate(v1))
    as_v11 = replay(canonical_bytes(e) for e in log)
    # Hand-computed: deficit 900 + (49000 - 60000) * 0.1 = -200.00; the fund pays its 100.00
    # and is left with 0; 100.00 socialized over 650 profits of 10.00: 0.1538.. each, floored
    # 0.15 (97.50 in all), the 250 left-over units to the first 250 account ids (all tie);
    # then the 1.50 fee.
    for result in (as_v1, as_v11):
        assert result.balances == {"USDT": 150}
        assert result.totals == {"USDT": [150, 10000, 10000]}
        assert result.account_totals("bob") == {
            "USDT": {"fees": 0, "payouts": 10000, "clawbacks": 0}}
        assert result.account_totals("acct-0249")["USDT"]["clawbacks"] == 16
        assert result.account_totals("acct-0250")["USDT"]["clawbacks"] == 15
        assert result.liquidations == 1
    assert as_v1.accounts == as_v11.accounts
    assert as_v1.count == as_v11.count - 21


def refused(world: dict[str, Any], tmp_path: Path, changed: list[dict[str, Any]],
            which: str = "large") -> str:
    key = world["key"] if which == "large" else world["small_key"]
    code, out = audit_replay(rewrite(world, tmp_path, changed, which), key)
    assert code == 1, out
    return out


def test_a_head_without_all_its_chunks_fails(world, tmp_path) -> None:
    out = refused(world, tmp_path, events(world["large"])[:HEAD + 6])  # head + 5 chunks
    assert ("event 9: log ends before counterparties_listed chunk 5 of 21 of the large "
            "liquidation at index 3") in out


def test_a_missing_chunk_fails(world, tmp_path) -> None:
    log = events(world["large"])
    del log[HEAD + 8]  # chunk 7
    out = refused(world, tmp_path, log)
    assert ("event 11: data.chunk: expected 7 (chunks of the large liquidation at index 3 are "
            "numbered in order), got 8") in out


def test_chunks_without_their_head_fail(world, tmp_path) -> None:
    log = events(world["large"])
    del log[HEAD]
    out = refused(world, tmp_path, log)
    assert "event 3: type: counterparties_listed without a liquidation that calls for it" in out


def test_another_event_between_the_chunks_fails(world, tmp_path) -> None:
    log = events(world["large"])
    log.insert(HEAD + 5, log.pop())  # the fee after chunk 3
    out = refused(world, tmp_path, log)
    assert ("event 8: type: expected counterparties_listed chunk 4 of 21 of the large "
            "liquidation at index 3, got 'fee_inflow'") in out


def test_a_wrong_hash_fails(world, tmp_path) -> None:
    log = events(world["large"])
    recorded = log[HEAD]["data"]["counterparties_sha256"]
    log[HEAD]["data"]["counterparties_sha256"] = "0" * 64
    out = refused(world, tmp_path, log)
    assert (f"event 24: data.counterparties: the 650 counterparties listed hash to {recorded}, "
            f"but the large liquidation at index 3 has counterparties_sha256 {'0' * 64}") in out


def test_a_counterparty_changed_in_a_chunk_fails_the_hash(world, tmp_path) -> None:
    log = events(world["large"])
    log[HEAD + 2]["data"]["counterparties"][0]["unrealized_pnl"] = "11.00"  # acct-0032
    out = refused(world, tmp_path, log)
    assert "event 24: data.counterparties: the 650 counterparties listed hash to " in out
    assert "but the large liquidation at index 3 has counterparties_sha256" in out


def test_a_wrong_count_fails(world, tmp_path) -> None:
    log = events(world["large"])
    log[HEAD]["data"]["counterparty_count"] = CPS + 1
    out = refused(world, tmp_path, log)
    assert ("event 24: data.counterparties: chunk 20 of the large liquidation at index 3 must "
            "list 11 counterparties (651 in all, 32 a chunk), got 10") in out


def test_a_head_for_a_liquidation_that_fits_one_line_fails(world, tmp_path) -> None:
    """40 counterparties fit a liquidation_settled line: the large form is not its form."""
    log = events(world["small"])
    assert log[HEAD]["type"] == "liquidation_settled"
    data = dict(log[HEAD]["data"])
    listed = data.pop("counterparties")
    head = {**log[HEAD], "type": "large_liquidation_settled",
            "data": {**data, "counterparty_count": 40,
                     "counterparties_sha256": counterparties_digest(listed)}}
    chunks = [{**log[HEAD], "type": "counterparties_listed",
               "data": {"chunk": n, "counterparties": listed[n * 32:n * 32 + 32]}}
              for n in range(2)]
    out = refused(world, tmp_path, [*log[:HEAD], head, *chunks, *log[HEAD + 1:]], "small")
    assert "event 5: type: the large liquidation at index 3 would be a liquidation_settled line" \
        in out
    assert "it must be recorded as liquidation_settled (format v1.1)" in out
