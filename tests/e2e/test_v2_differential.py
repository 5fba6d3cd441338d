"""Format v2 through both whole implementations: hypothesis-generated (seeded, bounded) v2
funds and fact streams (tests/v2gen.py) recorded by `backstop init` + `import` (a fact the
ledger refuses is dropped, one at a time: its refusal names the line and the field, and
nothing was written), exported, published and replayed by `backstop-audit`. Every log the
ledger writes verifies, with the auditor's balance of every pool equal to `backstop balances
--json`'s; and each kind of seeded single mutation of the log (an amount digit, an ADL event
dropped or moved, a `backstop_drawn/1` amount, a claim cap), re-signed with the operator's own
key, fails the audit (exit 1).

The pure rules are compared by tests/e2e/test_pools_differential.py; here the whole of each
side runs: the ledger's import, aggregate, store and export, the auditor's replay."""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import tempfile
from pathlib import Path
from typing import Any

import psycopg
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from auditor.cli import main as audit
from auditor.formats.wire import canonical_bytes
from auditor.verify.keys import Signer
from ledger.cli.main import main as backstop
from tests.e2e.mutations import change_digit, resigned
from tests.factories import write_jsonl
from tests.importing import database_rows, run
from tests.v2gen import T0_TEXT, v2_facts, v2_funds

EXAMPLES = int(os.environ.get("BACKSTOP_V2DIFF_EXAMPLES", "40"))  # ~0.6 s each on tmpfs
PG_EXAMPLES = int(os.environ.get("BACKSTOP_V2DIFF_PG_EXAMPLES", "6"))
PG_NAMES = itertools.count()
# Seeded by the test's name; BACKSTOP_V2DIFF_EXPLORE=1 with --hypothesis-seed=N explores others.
DERANDOMIZE = not os.environ.get("BACKSTOP_V2DIFF_EXPLORE")
SCRATCH = "/dev/shm" if Path("/dev/shm").is_dir() else None  # SQLite without disk syncs
REFUSAL = re.compile(r"^Error: (?P<path>.+?): line (?P<line>[0-9]+): (?P<field>[A-Za-z0-9_.-]+): .+\n$")
#: Events whose `amount` a forger may change. `capital_transferred/1` too: a transfer moves
#: money between pools, which only the per-pool snapshot /3 commits (its pools' balances).
MONEY_EVENTS = ("capital_injected", "capital_withdrawn", "fee_inflow", "deficit_covered",
                "backstop_drawn", "socialized_loss_assessed", "clawback_charged",
                "capital_transferred")


def units(amount: str) -> int:
    """A decimal string's minor units (its own decimals)."""
    whole, _, frac = amount.partition(".")
    return int(whole + frac)


class Recorded:
    """A generated fund recorded by the ledger on a database of its own, published, signed."""

    def __init__(self, tmp: Path, url: str, config: dict[str, Any],
                 facts: list[tuple[dict[str, Any], str | None]]) -> None:
        self.tmp, self.url = tmp, url
        (tmp / "fund.json").write_text(json.dumps(config))
        self.cli("init", str(tmp / "fund.json"), "--time", T0_TEXT)
        self.kept, self.refused = self.import_all(facts)

    def cli(self, *args: str, code: int = 0) -> str:
        result = run(list(args), self.url)
        assert result.exit_code == code, result.output
        return result.output

    def import_all(self, facts: list[tuple[dict[str, Any], str | None]]
                   ) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str]]]:
        """Import `facts`, dropping each refused one: the refusal is one line naming the
        fact's line and a field (the one the generator meant, if it meant one), and nothing
        was written. The facts kept and the refused ones with their fields."""
        before = database_rows(self.url)
        pending, refused = list(facts), []
        while True:
            path = write_jsonl(self.tmp / "facts.jsonl", [f for f, _ in pending])
            result = run(["import", str(path)], self.url)
            if result.exit_code == 0:
                break
            assert result.exit_code == 2, result.output
            match = REFUSAL.match(result.output)
            assert match is not None and match["path"] == str(path), result.output
            assert database_rows(self.url) == before, "a refused import wrote"
            fact, meant = pending.pop(int(match["line"]) - 1)
            if meant is not None:
                assert match["field"] == meant, (result.output, fact)
            refused.append((fact, match["field"]))
            event(f"refused {fact['type']}: {match['field']}")
        assert all(meant is None for fact, meant in pending), "a fact to refuse was recorded"
        return [f for f, _ in pending], refused

    def publish(self) -> tuple[Path, str, Signer]:
        """The export published in one signed directory; its verifier key and signer."""
        key = self.tmp / "op.key"
        made = CliRunner().invoke(backstop, ["keygen", "ops.example/diff", "--out", str(key)])
        assert made.exit_code == 0, made.output
        vkey = made.output.strip().splitlines()[-1]
        out = self.tmp / "public"
        self.cli("snapshot", "publish", "--key", str(key), "--out", str(out))
        return out, vkey, Signer.from_pem(key.read_bytes())

    def pools(self) -> dict[str, Any]:
        return json.loads(self.cli("balances", "--json"))["pools"]  # type: ignore[no-any-return]


def replay(out: Path, vkey: str, events: bytes | None = None,
           snapshot: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    """`backstop-audit replay --json` of the directory (after writing `events`/`snapshot`)."""
    if events is not None:
        (out / "events.jsonl").write_bytes(events)
    if snapshot is not None:
        (out / "snapshot.json").write_text(json.dumps(snapshot))
    result = CliRunner().invoke(audit, ["replay", str(out / "events.jsonl"), "--snapshot",
                                        str(out / "snapshot.json"), "--key", vkey, "--json"])
    return result.exit_code, json.loads(result.output)


# ---------------------------------------------------------------- the mutations

Log = list[dict[str, Any]]


def amount_digit(rng: random.Random, log: Log) -> Log | None:
    """One digit of a money event's amount, or of a liquidation's fund payment or deficit."""
    spots = [(i, ("amount",)) for i, ev in enumerate(log) if ev["type"] in MONEY_EVENTS]
    spots += [(i, ("outcome", key)) for i, ev in enumerate(log)
              if ev["type"] == "liquidation_settled" for key in ("fund_payment", "deficit")
              if ev["data"]["outcome"][key] is not None and units(ev["data"]["outcome"][key])]
    if not spots:
        return None
    i, path = rng.choice(spots)
    holder = log[i]["data"] if len(path) == 1 else log[i]["data"]["outcome"]
    holder[path[-1]] = change_digit(rng, holder[path[-1]])
    return log


def adl_moved(rng: random.Random, log: Log) -> Log | None:
    """An ADL event dropped, or moved one place earlier or later."""
    spots = [i for i, ev in enumerate(log) if ev["type"] in ("adl_started", "adl_ended")]
    if not spots:
        return None
    i = rng.choice(spots)
    moved = log.pop(i)
    how = rng.choice(["drop", "earlier", "later"])
    if how != "drop":
        log.insert(max(2, min(len(log), i + (-1 if how == "earlier" else 1))), moved)
        if log[i] is moved:  # clamped at the end: nowhere to move it, drop it
            log.pop(i)
    return log


def backstop_digit(rng: random.Random, log: Log) -> Log | None:
    """One digit of a `backstop_drawn/1` amount."""
    spots = [i for i, ev in enumerate(log) if ev["type"] == "backstop_drawn"]
    if not spots:
        return None
    data = log[rng.choice(spots)]["data"]
    data["amount"] = change_digit(rng, data["amount"])
    return log


def claim_cap_digit(rng: random.Random, log: Log) -> Log | None:
    """One digit of a `claim_cap_set/1` limit, chosen so that the remaining claim R of its
    market's next liquidation changes: that liquidation is the first after the cap, so no claim
    of the market counts in the cap's period yet and R = max(0, min(total - claimed_total,
    per_period)) (schemas/README.md, "Claim caps and periods")."""
    pairs = []
    for c, ev in enumerate(log):
        if ev["type"] != "claim_cap_set":
            continue
        market = ev["data"]["market"]
        for later in log[c + 1:]:
            if later["data"].get("market") != market:
                continue
            if later["type"] == "claim_cap_set":
                break
            if later["type"] == "liquidation_settled":
                pairs.append((c, later["index"]))
                break
    rng.shuffle(pairs)
    for c, liq in pairs:
        data = log[c]["data"]
        market, recorded = data["market"], log[liq]["data"]["outcome"]["claim_remaining"]
        claimed = sum(units(e["data"]["amount"]) for e in log[:liq]
                      if e["type"] in ("deficit_covered", "backstop_drawn")
                      and e["data"]["market"] == market)
        for key in [k for k in ("total", "per_period") if data[k] is not None] * 3:
            new = change_digit(rng, data[key])
            limits = {k: data[k] for k in ("total", "per_period")} | {key: new}
            room = min(units(limits["total"]) - claimed if limits["total"] else 10**40,
                       units(limits["per_period"]) if limits["per_period"] else 10**40)
            if recorded is None or max(0, room) != units(recorded):
                data[key] = new
                return log
    return None


MUTATIONS = {"amount digit": amount_digit, "adl event moved": adl_moved,
             "backstop_drawn amount": backstop_digit, "claim cap": claim_cap_digit}


# ---------------------------------------------------------------- the test

# No shrinking: an example runs whole CLIs; a failure prints its draws as generated.
@settings(max_examples=EXAMPLES, derandomize=DERANDOMIZE, database=None, deadline=None,
          phases=[Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_both_sides_agree_on_generated_v2_funds(data: st.DataObject) -> None:
    """EXAMPLES generated funds on SQLite (in a tmpfs folder when there is one)."""
    with tempfile.TemporaryDirectory(dir=SCRATCH) as folder:
        agree(data, Path(folder), f"sqlite:///{Path(folder) / 'fund.sqlite'}")


@settings(max_examples=PG_EXAMPLES, derandomize=DERANDOMIZE, database=None, deadline=None,
          phases=[Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_both_sides_agree_on_postgresql(pg_server: str, data: st.DataObject) -> None:
    """A few generated funds recorded on PostgreSQL (a database of each example's own; the
    restore goes to SQLite: the same bytes across the backends)."""
    name = f"backstop_v2diff_{os.getpid()}_{next(PG_NAMES)}"
    plain = pg_server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with tempfile.TemporaryDirectory(dir=SCRATCH) as folder:
            agree(data, Path(folder), f"{pg_server.rsplit('/', 1)[0]}/{name}")
    finally:
        with psycopg.connect(plain, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def agree(data: st.DataObject, folder: Path, url: str) -> None:
    """One generated fund and stream on `url`: recorded, published, replayed verified with
    equal pools, restored byte for byte, each applicable mutation failing the audit."""
    config = data.draw(v2_funds(), label="config")
    facts = data.draw(v2_facts(config), label="facts")
    fund = Recorded(folder, url, config, facts)
    out, vkey, signer = fund.publish()
    code, doc = replay(out, vkey)
    assert code == 0, doc
    assert doc["verified"] is True
    assert doc["pools"] == fund.pools()
    exported = (out / "events.jsonl").read_bytes()
    # a restore re-derives every derived event (the ADL ones too): the same bytes
    restored = f"sqlite:///{folder / 'restored.sqlite'}"
    assert run(["import", str(out / "events.jsonl")], restored).exit_code == 0
    again = folder / "again.jsonl"
    assert run(["export", str(again)], restored).exit_code == 0
    assert again.read_bytes() == exported
    log = [json.loads(line) for line in exported.splitlines()]
    for kind in sorted({ev["type"] for ev in log} & {"adl_started", "adl_ended",
                                                     "backstop_drawn", "clawback_charged",
                                                     "market_assigned", "capital_transferred",
                                                     "large_liquidation_settled"}):
        event(kind)
    if any(ev["type"] == "adl_ended" and ev["data"]["reason"] == "policy" for ev in log):
        event("adl_ended by policy")
    outcomes = [(ev["data"]["outcome"], config["markets"].get(ev["data"]["market"], {}))
                for ev in log if ev["type"] == "liquidation_settled"]
    for outcome, spec in outcomes:
        if outcome["adl_mode"]:
            event("a liquidation in ADL mode")
        if spec.get("kind") == "inverse":
            event("inverse " + ("deficit" if units(outcome["deficit"]) else "surplus"))
        if outcome["claim_remaining"] is not None and units(outcome["deficit"]) > units(
                outcome["claim_remaining"]):
            event("a claim cap binds")
        if outcome["bankruptcy_price"] is None:
            event("an inverse short that cannot go bankrupt")
    snapshot = json.loads((out / "snapshot.json").read_text())
    rng = random.Random(canonical_bytes(log[-1]))
    for name, mutate in MUTATIONS.items():
        forged = mutate(rng, [json.loads(line) for line in exported.splitlines()])
        if forged is None:
            continue
        event(f"mutation: {name}")
        lines = [canonical_bytes({**ev, "index": i}) + b"\n" for i, ev in enumerate(forged)]
        code, verdict = replay(out, vkey, b"".join(lines), resigned(snapshot, lines, signer))
        changed = [(old, new) for old, new in zip(exported.splitlines(keepends=True), lines,
                                                  strict=False) if old != new][:2]
        assert code == 1, (name, changed, verdict)
