"""Incremental audits of a tiled log (`backstop-audit replay --save-state/--resume-state`):
a resumed replay reaches the full replay's verdict, figures and state; a tampered tile in the
new range, a forked history and a corrupt state file are refused; a version 1 state (ids as
a plain list) still resumes and is saved as version 2."""

from __future__ import annotations

import gzip
import json
import re
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main as audit
from auditor.saved_ids import SavedIds
from auditor.state import FORMAT, FORMAT_V1
from auditor.verify.keys import Signer
from tests.factories import TIME, capital, fund_config, write_jsonl
from tests.publishing import SIGNER, add, batch, publish_day

VKEY = SIGNER.verifier_key()


@pytest.fixture
def published(make_ledger, tmp_path: Path) -> tuple[Path, list[int]]:  # type: ignore[no-untyped-def]
    """One tiled log with three snapshots (the sizes cross tile boundaries)."""
    ledger = make_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.open_fund(fund_config(), TIME)
    add(ledger, tmp_path, "c", [capital("c1", "500.00")])
    root = tmp_path / "log"
    sizes = []
    for n, count in enumerate((240, 190, 330)):
        add(ledger, tmp_path, f"b{n}", batch(f"b{n}", count))
        sizes.append(publish_day(ledger, root, 13 + n))
    return root, sizes


def audit_json(*args: str, key: str = VKEY) -> tuple[int, dict]:
    result = CliRunner().invoke(audit, [*args, "--key", key, "--json"])
    return result.exit_code, json.loads(result.output)


def resume(root: Path, size: int, state: Path, *extra: str) -> tuple[int, dict]:
    return audit_json("replay", str(root), "--snapshot", str(size), "--resume-state",
                      str(state), *extra)


def test_resumed_replays_reach_the_full_replays_verdict_figures_and_state(published,
                                                                          tmp_path) -> None:
    root, sizes = published
    first, second, third = sizes
    assert sizes == [245, 437, 770]  # the resumes start inside bundles 0 and 1
    code, full = audit_json("replay", str(root), "--snapshot", str(third), "--save-state",
                            str(tmp_path / "full.state"))
    assert code == 0, full
    assert full["liquidations"] > 0 and full["accounts"] > 11
    # The chain: save at the first snapshot, resume to the second, resume to the third.
    code, verdict = audit_json("replay", str(root), "--snapshot", str(first), "--save-state",
                               str(tmp_path / "s1"))
    assert code == 0, verdict
    code, verdict = resume(root, second, tmp_path / "s1", "--save-state", str(tmp_path / "s2"))
    assert code == 0, verdict
    code, resumed = resume(root, third, tmp_path / "s2", "--save-state",
                           str(tmp_path / "s3"))
    assert code == 0, resumed
    figures = ("events", "liquidations", "balances", "accounts", "totals", "snapshot",
               "non_canonical_lines")
    assert {k: resumed[k] for k in figures} == {k: full[k] for k in figures}
    assert resumed["events"] == third
    checks = {c["check"]: c["detail"] for c in resumed["checks"]}
    assert f"replaying {third - second} new events" in checks["consistency"]
    assert checks["tiles"].startswith("333 entries in 3 bundles")  # bundles 1, 2 and 3.p/2
    # The same state, byte for byte, whichever way it was reached.
    assert (tmp_path / "s3").read_bytes() == (tmp_path / "full.state").read_bytes()
    doc = json.loads(gzip.decompress((tmp_path / "s3").read_bytes()))
    assert doc["format"] == FORMAT and doc["log"]["size"] == third
    assert doc["snapshot"]["log_root"] == full["snapshot"]["log_root"]
    assert len(doc["log"]["subtrees"]) == 3  # 770 = 512 + 256 + 2
    count = 1 + 1 + 240 + 190 + 330  # the policy's, the capital's, the facts'
    assert doc["seen"]["count"] == count
    blocks = doc["seen"]["blocks"]
    keys = SavedIds.from_blocks(blocks, count, "s3").keys()
    assert keys[:2] == ["capital\x00c1", "fee\x00b0-f0"] and keys == sorted(set(keys))
    # A block starts at the first id and at each one whose CRC-32 is 0 mod 512.
    assert [b[0] for b in blocks] == [k for i, k in enumerate(keys)
                                      if i == 0 or zlib.crc32(k.encode()) % 512 == 0]
    # Resuming at the state's own size replays nothing and verifies.
    code, verdict = resume(root, third, tmp_path / "s3")
    assert code == 0 and verdict["events"] == third, verdict


def test_a_tampered_bundle_in_the_new_range_is_caught_naming_it(published, tmp_path) -> None:
    root, (first, _, third) = published
    assert audit_json("replay", str(root), "--snapshot", str(first), "--save-state",
                      str(tmp_path / "s1"))[0] == 0
    path = root / "tile/entries/002"  # entries 512..767: after the state's 245
    data = bytearray(path.read_bytes())
    data[40] ^= 1
    path.write_bytes(bytes(data))
    code, verdict = resume(root, third, tmp_path / "s1", "--save-state", str(tmp_path / "s3"))
    assert code == 1, verdict
    assert verdict["reason"] == ("tiles: tile/entries/002: entry 512 does not hash to hash 0 "
                                 "of tile/0/002"), verdict
    assert not (tmp_path / "s3").exists()  # a failed audit saves nothing


def test_a_state_of_another_history_is_a_fork(published, make_ledger, tmp_path) -> None:
    root, (_, second, _) = published
    other = make_ledger(f"sqlite:///{tmp_path / 'other.sqlite'}")
    other.open_fund(fund_config(), TIME)
    add(other, tmp_path, "oc", [capital("c1", "500.00")])
    add(other, tmp_path, "ob", batch("other", 100))
    size = publish_day(other, tmp_path / "other", 13)
    assert audit_json("replay", str(tmp_path / "other"), "--save-state",
                      str(tmp_path / "o"))[0] == 0
    code, verdict = resume(root, second, tmp_path / "o")
    assert code == 1, verdict
    assert verdict["reason"].startswith(f"consistency: the log's first {size} entries fold to "
                                        "root "), verdict
    assert "the history was rewritten" in verdict["reason"]
    # A state ahead of the snapshot: the log would have shrunk.
    assert audit_json("replay", str(root), "--save-state", str(tmp_path / "last"))[0] == 0
    code, verdict = resume(root, second, tmp_path / "last")
    assert code == 1 and "is smaller than the state's" in verdict["reason"], verdict


FULL_AUDIT = "; run a full audit (without --resume-state) to save a new state"


@pytest.mark.parametrize(("content", "reason"), [
    (b"not gzip", "not a backstop-audit state file (not gzip-compressed JSON"),
    (gzip.compress(b'{"format": "something/else"}'),
     "format: expected backstop-audit-state/v2 (or backstop-audit-state/v1), got "
     "'something/else'" + FULL_AUDIT),
    (gzip.compress(b'{"format": "backstop-audit-state/v3"}'),
     "format: expected backstop-audit-state/v2 (or backstop-audit-state/v1), got "
     "'backstop-audit-state/v3'" + FULL_AUDIT),
    (gzip.compress(b"[1, 2]"), "format: expected backstop-audit-state/v2 (or "
                               "backstop-audit-state/v1), got 'list'" + FULL_AUDIT),
])
def test_a_foreign_state_file_exits_2_in_one_line(published, tmp_path, content, reason) -> None:
    root, (_, second, _) = published
    state = tmp_path / "bad.state"
    state.write_bytes(content)
    code, verdict = resume(root, second, state, "--save-state", str(tmp_path / "out"))
    assert code == 2, verdict
    assert verdict["error"] == f"state {state}: {reason}" or reason in verdict["error"]
    assert "\n" not in verdict["error"]
    assert not (tmp_path / "out").exists()


def test_a_corrupt_or_edited_state_file_exits_2(published, tmp_path) -> None:
    root, (first, second, _) = published
    good = tmp_path / "s1"
    assert audit_json("replay", str(root), "--snapshot", str(first), "--save-state",
                      str(good))[0] == 0
    raw = good.read_bytes()
    truncated = tmp_path / "truncated"
    truncated.write_bytes(raw[:-9])
    code, verdict = resume(root, second, truncated)
    assert code == 2 and "not a backstop-audit state file" in verdict["error"], verdict
    doc = json.loads(gzip.decompress(raw))
    keys = SavedIds.from_blocks(doc["seen"]["blocks"], doc["seen"]["count"], "s1").keys()
    edits = {"balances": lambda d: d["balances"].update(USDT=-1),
             "root": lambda d: d["log"].update(root="00" * 32),
             "subtrees": lambda d: d["log"]["subtrees"].pop(),
             "accounts": lambda d: d["accounts"].update(x=[1]),
             "count": lambda d: d["seen"].update(count=d["seen"]["count"] + 1),
             "blocks": lambda d: d["seen"]["blocks"][0].__setitem__(1, 0),
             "v1 twice": lambda d: d.update(format=FORMAT_V1, seen=[*keys, keys[0]])}
    expected = {"balances": "balances: {'USDT': -1} is not an object of a non-negative integer",
                "root": "log.subtrees fold to", "subtrees": "32-byte subtree hashes",
                "accounts": "accounts: ", "count": "seen.count: 243, but the blocks hold 242",
                "blocks": "seen.blocks: not a list of [first id, count > 0, data]",
                "v1 twice": "seen: 'capital\\x00c1' is listed twice"}
    for name, edit in edits.items():
        changed = json.loads(json.dumps(doc))
        edit(changed)
        path = tmp_path / name
        path.write_bytes(gzip.compress(json.dumps(changed).encode()))
        code, verdict = resume(root, second, path)
        assert code == 2, (name, verdict)
        assert verdict["error"].startswith(f"state {path}: malformed ("), (name, verdict)
        assert expected[name] in verdict["error"], (name, verdict)


def test_a_state_whose_id_block_was_replaced_exits_2_naming_it(published, tmp_path) -> None:
    root, (first, second, _) = published
    good = tmp_path / "s1"
    assert audit_json("replay", str(root), "--snapshot", str(first), "--save-state",
                      str(good))[0] == 0
    doc = json.loads(gzip.decompress(good.read_bytes()))
    assert sum(b[1] for b in doc["seen"]["blocks"]) == 1 + 1 + 240
    for block in doc["seen"]["blocks"]:
        block[2] = "AAAA"  # valid base64, not zlib: the first new id's block is read
    edited = tmp_path / "edited"
    edited.write_bytes(gzip.compress(json.dumps(doc).encode()))
    code, verdict = resume(root, second, edited, "--save-state", str(tmp_path / "out"))
    assert code == 2, verdict
    assert re.match(rf"state {re.escape(str(edited))}: malformed \(seen block \d does not "
                    r"decode \(", verdict["error"]), verdict
    assert verdict["error"].endswith(FULL_AUDIT), verdict
    assert not (tmp_path / "out").exists()


def test_a_version_1_state_still_resumes_and_is_saved_as_version_2(published, tmp_path) -> None:
    root, (first, second, _) = published
    assert audit_json("replay", str(root), "--snapshot", str(second), "--save-state",
                      str(tmp_path / "full"))[0] == 0
    assert audit_json("replay", str(root), "--snapshot", str(first), "--save-state",
                      str(tmp_path / "s1"))[0] == 0
    doc = json.loads(gzip.decompress((tmp_path / "s1").read_bytes()))
    keys = SavedIds.from_blocks(doc["seen"]["blocks"], doc["seen"]["count"], "s1").keys()
    doc.update(format=FORMAT_V1, seen=keys)  # as version 1 wrote it: every id in one list
    old = tmp_path / "v1"
    old.write_bytes(gzip.compress(json.dumps(doc, sort_keys=True).encode()))
    code, verdict = resume(root, second, old, "--save-state", str(tmp_path / "s2"))
    assert code == 0, verdict
    assert verdict["events"] == second
    assert (tmp_path / "s2").read_bytes() == (tmp_path / "full").read_bytes()


def test_state_options_need_a_tiled_log(tmp_path) -> None:
    events = write_jsonl(tmp_path / "e.jsonl", [])
    code, verdict = audit_json("replay", str(events), "--snapshot", "x.json", "--save-state",
                               str(tmp_path / "s"))
    assert code == 2 and verdict["error"] == ("--save-state and --resume-state need a tiled "
                                              "log (ROOT or URL)")


@pytest.mark.slow
def test_the_demos_snapshots_resumed_one_after_another_equal_full_replays(tmp_path) -> None:
    from ledger.sim.demo import run_demo
    from ledger.sim.simulate import SimulationConfig

    config = SimulationConfig(seed=11, traders=300, steps=72, initial_fund="3000.00")
    result = run_demo(tmp_path / "demo", config, say=lambda _: None)
    root = tmp_path / "demo" / "published"
    key = Signer.from_pem((tmp_path / "demo" / "operator.key").read_bytes()).verifier_key()
    assert result.published[0].parent == root / "snapshots" and len(result.published) >= 6
    state, figures = tmp_path / "demo.state", ("events", "liquidations", "balances",
                                               "accounts", "totals", "snapshot")
    for n, folder in enumerate(result.published):
        code, full = audit_json("replay", str(root), "--snapshot", folder.name, key=key)
        assert code == 0, full
        resumed_from = ("--resume-state", str(state)) if n else ()
        code, resumed = audit_json("replay", str(root), "--snapshot", folder.name,
                                   *resumed_from, "--save-state", str(state), key=key)
        assert code == 0, (folder.name, resumed)
        assert {k: resumed[k] for k in figures} == {k: full[k] for k in figures}
    assert resumed["events"] == result.events and result.socialized > 0
