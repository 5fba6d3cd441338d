"""Forged logs: altered exports whose snapshot (and checkpoint) the operator's own key signs
again, so that no signature or root check can hide a missing spec check. Every forgery must
fail `backstop-audit` with exit 1, the signatures verifying and the rule named.

Covers issue 10 items 3 (spec violations under a valid signature) and 4 (lines after the
snapshot's log size), and the tamper campaign's cases (tests/e2e/test_tamper.py) re-signed."""

from __future__ import annotations

import copy
import json
import random
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditor import cli
from auditor.formats.wire import canonical_bytes
from auditor.verify.keys import Signer, checkpoint_body, parse_checkpoint, sign_note
from tests.audit_world import build_world
from tests.e2e.mutations import SEED, change_digit, event_mutations, resigned

DERIVED = ("fee_inflow", "deficit_covered", "socialized_loss_assessed", "clawback_charged")
TRIED: Counter[str] = Counter()  # forged logs tried, by kind (printed by the last test)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_world(tmp_path_factory.mktemp("audit-world"))


class Forger:
    """A working copy of a published directory and the operator's signing key: writes an
    altered export, then a snapshot (and checkpoint) re-signed to match it."""

    def __init__(self, world: dict[str, Any], work: Path, name: str = "a") -> None:
        self.dir = work / name
        shutil.copytree(world["base"] / name, self.dir)
        self.vkey = world["op"]
        self.signer = Signer.from_pem((world["base"] / "op.key").read_bytes())
        self.lines = (self.dir / "events.jsonl").read_bytes().splitlines(keepends=True)
        self.events = [json.loads(line) for line in self.lines]
        self.snapshot = json.loads((self.dir / "snapshot.json").read_text())

    def forge(self, lines: list[bytes], *, log_size: int | None = None,
              edit: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Write `lines` as the export and sign a snapshot whose log root is theirs (over the
        first `log_size` lines, default all), with `edit` applied to it."""
        doc = resigned(self.snapshot, lines, self.signer, log_size=log_size, edit=edit)
        (self.dir / "events.jsonl").write_bytes(b"".join(lines))
        (self.dir / "snapshot.json").write_text(json.dumps(doc))

    def forge_events(self, events: list[dict[str, Any]]) -> None:
        self.forge([canonical_bytes(ev) + b"\n" for ev in events])

    def audit(self, *args: str) -> tuple[int, dict[str, Any]]:
        result = CliRunner().invoke(cli.main, [*args, "--key", self.vkey, "--json"])
        return result.exit_code, json.loads(result.output)

    def replay(self) -> tuple[int, dict[str, Any]]:
        return self.audit("replay", str(self.dir / "events.jsonl"),
                          "--snapshot", str(self.dir / "snapshot.json"))


def refused(forger: Forger, kind: str, *words: str, command: str = "replay") -> str:
    """Run the audit of the forged directory: exit 1, signatures valid, the rule named."""
    TRIED[kind] += 1
    if command == "replay":
        code, doc = forger.replay()
    else:
        code, doc = forger.audit("checkpoint", str(forger.dir / "checkpoint"),
                                 "--snapshot", str(forger.dir / "snapshot.json"))
    assert code == 1, (kind, doc)
    assert any("signature" in c["check"] and c["ok"] for c in doc["checks"]), (kind, doc)
    reason = doc["reason"]
    assert ":" in reason and all(word in reason for word in words), (kind, words, reason)
    return str(reason)


@pytest.fixture(scope="module", autouse=True)
def count_forged_logs() -> Any:
    """Print how many forged logs this module tried, by kind (`pytest -s` shows it)."""
    yield
    print(f"\nforged logs tried: {sum(TRIED.values())}", dict(sorted(TRIED.items())))


@pytest.fixture
def forger(world: dict[str, Any], tmp_path: Path) -> Forger:
    return Forger(world, tmp_path)


def first(forger: Forger, predicate: Callable[[dict[str, Any]], bool]) -> int:
    return next(i for i, ev in enumerate(forger.events) if predicate(ev))


def test_the_forger_signs_what_verifies(forger: Forger) -> None:
    """The re-signing helper itself: an unaltered export re-signed verifies (exit 0), so a
    failure below comes from the alteration, not from the helper."""
    forger.forge(forger.lines)
    code, doc = forger.replay()
    assert code == 0, doc
    assert doc["verified"] is True


# ------------------------------------------------------------------ item 3


def test_standalone_liquidation_fee_inflow(forger: Forger) -> None:
    events = copy.deepcopy(forger.events)
    standalone = [i for i, ev in enumerate(events) if ev["type"] == "fee_inflow"
                  and ev["data"]["kind"] != "liquidation_fee"]
    assert standalone
    for i in standalone[:5]:
        forged = copy.deepcopy(events)
        forged[i]["data"]["kind"] = "liquidation_fee"  # the balance and totals are unchanged
        forger.forge_events(forged)
        refused(forger, "standalone liquidation_fee", f"event {i}: data.kind", "only ever derived")


def test_extra_fields_at_top_level_and_in_data(forger: Forger) -> None:
    types = sorted({ev["type"] for ev in forger.events})
    assert len(types) >= 8
    for typ in types:
        i = first(forger, lambda ev, typ=typ: ev["type"] == typ)
        for where in ("top", "data"):
            forged = copy.deepcopy(forger.events)
            (forged[i] if where == "top" else forged[i]["data"])["note"] = "hello"
            forger.forge_events(forged)
            field = "note" if where == "top" else "data.note"
            refused(forger, f"extra field ({where})", f"event {i}: {field}: unexpected field")


def test_unknown_versions(forger: Forger) -> None:
    for n, version in enumerate((99, 2, 0, -1, 2**53 - 1)):
        i = 3 + 7 * n
        forged = copy.deepcopy(forger.events)
        forged[i]["version"] = version
        forger.forge_events(forged)
        refused(forger, "unknown version", f"event {i}: version: {version}")


def test_invalid_times(forger: Forger) -> None:
    for n, time in enumerate(("not a time", "2020-02-30T00:00:00Z", "2020-03-12T24:00:00Z",
                              "2020-03-12T00:00:00.1234567Z", "2020-03-12T00:00:00+00:00", "")):
        i = 2 + 5 * n
        forged = copy.deepcopy(forger.events)
        forged[i]["time"] = time
        forger.forge_events(forged)
        refused(forger, "invalid time", f"event {i}: time: {time!r}", "not a valid time")


def test_derived_event_at_another_time(forger: Forger) -> None:
    kinds = 0
    for typ in DERIVED:
        derived = [i for i, ev in enumerate(forger.events) if ev["type"] == typ
                   and ev["ref"] == forger.events[i - 1]["ref"]]
        if typ == "fee_inflow":
            derived = [i for i in derived if forger.events[i]["data"]["kind"] == "liquidation_fee"]
        if not derived:
            continue
        kinds += 1
        i = derived[0]
        forged = copy.deepcopy(forger.events)
        forged[i]["time"] = "2021-01-01T00:00:00Z"
        forger.forge_events(forged)
        refused(forger, "derived event time", f"event {i}: time: expected", "the time of the liquidation")
    assert kinds >= 3


# ------------------------------------------------------------------ item 4, first bullet


def test_lines_after_the_snapshot_size(forger: Forger, world: dict[str, Any]) -> None:
    """The snapshot is re-signed over the first lines only; the export goes on."""
    size = len(forger.lines)
    longer = (world["base"] / "b" / "events.jsonl").read_bytes().splitlines(keepends=True)
    for extra in ([longer[size]], longer[size:], [b"\n"], [b"garbage\n"], [forger.lines[-1]]):
        forger.forge(forger.lines + extra, log_size=size)
        refused(forger, "lines after the log size", f"event {size}: line {size + 1}: "
                "the export continues after the snapshot's log size")


# ------------------------------------------------------------------ the tamper campaign, re-signed


def _changed_paths(old: Any, new: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(old, dict) and isinstance(new, dict) and old.keys() == new.keys():
        return [p for k in old for p in _changed_paths(old[k], new[k], (*path, k))]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [p for i, (a, b) in enumerate(zip(old, new, strict=True)) for p in _changed_paths(a, b, (*path, i))]
    return [] if old == new else [path]


def _spec_neutral(original: list[bytes], mutated: list[bytes]) -> bool:
    """Whether a digit change is one the spec allows an operator to sign: a fact the rules do
    not use (a counterparty when nothing is socialized, a mark price without ADL or a
    volatility share, an open interest). Re-signed, such a log is simply another history."""
    if len(original) != len(mutated):
        return False
    paths = [p for a, b in zip(original, mutated, strict=True) if a != b
             for p in _changed_paths(json.loads(a), json.loads(b))]
    return all("counterparties" in p or p[-1] in ("mark_price", "open_interest") for p in paths)


def test_tamper_campaign_re_signed(forger: Forger) -> None:
    rng = random.Random(SEED)
    mutations = event_mutations(rng, forger.lines)
    neutral = 0
    for kind, _, files in mutations:
        lines = files["events.jsonl"].splitlines(keepends=True)
        if kind == "amount digit" and _spec_neutral(forger.lines, lines):
            neutral += 1
            continue
        forger.forge(lines)
        refused(forger, f"tamper: {kind}")
    assert neutral < len(mutations) // 4, neutral
    # Snapshot figures changed and re-signed: the replay disagrees with them.
    for n in range(20):
        def edit(doc: dict[str, Any], n: int = n) -> None:
            if n % 2:
                asset = rng.choice(sorted(doc["reserves"]))
                doc["reserves"][asset] = change_digit(rng, doc["reserves"][asset])
            else:
                totals = doc["accounts"]["totals"][rng.choice(doc["accounts"]["assets"])]
                kind = rng.choice(["fees", "payouts", "clawbacks"])
                totals[kind] = change_digit(rng, totals[kind])
        forger.forge(forger.lines, edit=edit)
        refused(forger, "tamper: snapshot reserve/total", "snapshot vs replay: ")
    # A checkpoint for another root, signed by the operator's key.
    forger.forge(forger.lines)
    origin, size, root = parse_checkpoint(
        (forger.dir / "checkpoint").read_text().split("\n\n", 1)[0] + "\n")
    for _ in range(20):
        other = bytes(b ^ (1 << rng.randrange(8)) if i == rng.randrange(32) else b
                      for i, b in enumerate(root))
        other = other if other != root else bytes([root[0] ^ 1]) + root[1:]
        (forger.dir / "checkpoint").write_text(
            sign_note(checkpoint_body(origin, size, other), [forger.signer]))
        refused(forger, "tamper: checkpoint root", "root: checkpoint root", command="checkpoint")


# ------------------------------------------------------------------ item 5 (not a forgery)


def _jq(line: bytes, **changes: Any) -> bytes:
    """The line as `jq -c` with keys reversed would write it, with `changes` in its data."""
    ev = json.loads(line)
    ev["data"].update(changes)
    return json.dumps(dict(reversed(ev.items())), separators=(", ", ": ")).encode() + b"\n"


def test_re_encoded_export_verifies_and_is_counted(forger: Forger) -> None:
    """Key order and spacing are not content: the original signed snapshot verifies an
    export whose lines were re-encoded, and the report says how many were."""
    lines = list(forger.lines)
    for i in (5, 50, 500):
        lines[i] = _jq(lines[i])
    (forger.dir / "events.jsonl").write_bytes(b"".join(lines))
    code, doc = forger.replay()
    assert code == 0, doc
    assert doc["non_canonical_lines"] == 3
    replayed = next(c for c in doc["checks"] if c["check"] == "replay")
    assert replayed["detail"].endswith("; 3 line(s) not in RFC 8785 form, hashed as their "
                                       "canonical bytes (first: line 6)")


def test_re_encoded_line_with_other_content_fails_naming_the_line(forger: Forger) -> None:
    i = first(forger, lambda ev: ev["type"] == "market_observed")
    assert i < len(forger.lines) - 10  # not the last observation: no metric shows it
    lines = list(forger.lines)
    lines[i] = _jq(lines[i], open_interest="12345")  # a fact no rule constrains
    (forger.dir / "events.jsonl").write_bytes(b"".join(lines))
    code, doc = forger.replay()
    assert code == 1
    assert doc["reason"].startswith("snapshot vs replay: log.root: expected ")
    assert doc["reason"].endswith(f"1 line(s) were not canonical, first: {i + 1})")
