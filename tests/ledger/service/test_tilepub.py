"""The tiled publication (`snapshot publish --layout tiles`): C2SP tlog-tiles paths for known
sizes, bundles that decode to exactly the export, tiles written once across publishes, the
account-proof shards, and `backstop-audit replay` over a folder and over HTTP, failing with
exit 1 naming a tampered tile or bundle."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main as audit
from auditor.verify import merkle
from auditor.verify.keys import open_note, parse_checkpoint
from auditor.verify.shards import proof_from_shard, shard_digits, shard_name, sibling_keys
from auditor.verify.tiles import decode_bundle, tile_layout, tile_path
from ledger.cli.main import main as backstop
from ledger.service import tilepub
from ledger.service.importer import import_file
from ledger.service.publish import PublishError, account_proof, load_publication, snapshot_row
from ledger.service.signing import generate_signer, key_file
from ledger.service.tilepub import publish_tiles
from tests.factories import TIME, capital, fund_config, write_jsonl
from tests.publishing import MAIN_ORIGIN, SIGNER, at_300, grow

VKEY = SIGNER.verifier_key()


@pytest.fixture
def ledger(make_ledger, tmp_path: Path):  # type: ignore[no-untyped-def]
    ledger = make_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.open_fund(fund_config(), TIME)  # events 0 and 1: fund_opened, policy_set
    return ledger


def files(root: Path, under: str = "tile") -> set[str]:
    return {str(p.relative_to(root)) for p in (root / under).rglob("*") if p.is_file()}


def replay(target: str, *extra: str) -> tuple[int, dict]:
    result = CliRunner().invoke(audit, ["replay", target, "--key", VKEY, "--json", *extra])
    return result.exit_code, json.loads(result.output)


def test_tile_paths_and_layouts_follow_the_spec() -> None:
    assert tile_path(0, 0) == "tile/0/000"
    assert tile_path(0, 1, 44) == "tile/0/001.p/44"
    assert tile_path(2, 1234067) == "tile/2/x001/x234/067"
    assert tile_path("entries", 1000, 3) == "tile/entries/x001/000.p/3"
    assert tile_layout(300) == [(0, 0, 256), (0, 1, 44), (1, 0, 1)]
    assert tile_layout(256) == [(0, 0, 256), (1, 0, 1)]  # the spec's example
    # The spec's example: 70,000 leaves.
    layout = tile_layout(70_000)
    assert len(layout) == 273 + 1 + 1 + 1 + 1
    assert layout[273] == (0, 273, 112) and layout[274:] == [(1, 0, 256), (1, 1, 17), (2, 0, 1)]


def test_size_300_publishes_the_spec_files_and_bundles_hold_the_export(ledger, tmp_path) -> None:
    root = at_300(ledger, tmp_path)
    assert files(root) == {"tile/0/000", "tile/0/001.p/44", "tile/1/000.p/1",
                           "tile/entries/000", "tile/entries/001.p/44"}
    lines = list(ledger.log_lines("main", 0, 300))
    bundles = (decode_bundle((root / "tile/entries/000").read_bytes(), "000")
               + decode_bundle((root / "tile/entries/001.p/44").read_bytes(), "001"))
    assert bundles == lines
    leaves = [merkle.leaf_hash(line) for line in lines]
    assert (root / "tile/0/000").read_bytes() == b"".join(leaves[:256])
    assert (root / "tile/1/000.p/1").read_bytes() == merkle.root_of(leaves[:256])
    body, _ = open_note((root / "checkpoint").read_text(), [SIGNER.verifier()])
    assert parse_checkpoint(body) == (MAIN_ORIGIN, 300, merkle.root_of(leaves))
    assert (root / "checkpoint").read_bytes() == (root / "snapshots/300/checkpoint").read_bytes()
    assert files(root, "snapshots") == {
        f"snapshots/300/{name}" for name in ("snapshot.json", "checkpoint", "account-seed",
                                             "verifier-key", "policy.json",
                                             "accounts/index.json", "accounts/all.json")}
    assert not [p for p in root.rglob("*") if ".partial" in p.name or p.name.endswith(".new")]


def test_tiles_are_written_once_and_old_snapshots_still_replay(ledger, tmp_path,
                                                               served_log) -> None:
    url, _ = served_log
    root = at_300(ledger, tmp_path)
    before = {p: os.stat(root / p) for p in files(root)}
    grow(ledger, tmp_path, "g", 300)
    publish_tiles(ledger, "main", SIGNER, root, "2020-03-14T00:00:00Z")
    after = files(root)
    # A partial tile stays while its full tile is not written (size 300 needs tile/1/000.p/1).
    assert after == {"tile/0/000", "tile/0/001", "tile/0/002.p/88", "tile/1/000.p/1",
                     "tile/1/000.p/2", "tile/entries/000", "tile/entries/001",
                     "tile/entries/002.p/88"}
    for path in ("tile/0/000", "tile/entries/000"):  # full tiles: never rewritten
        now = os.stat(root / path)
        assert (now.st_ino, now.st_mtime_ns) == (before[path].st_ino, before[path].st_mtime_ns)
    # The partials of size 300 are gone; its snapshot reads the full tiles' prefixes.
    assert replay(str(root), "--snapshot", "300")[0] == 0
    assert replay(url, "--snapshot", "300")[0] == 0  # over HTTP: a 404, then the full tile
    code, verdict = replay(str(root))
    assert code == 0, verdict
    assert verdict["events"] == 600
    assert {c["check"] for c in verdict["checks"]} >= {"checkpoint", "replay", "tiles",
                                                       "snapshot vs replay", "accounts.root"}
    snap = json.loads((root / "snapshots/600/snapshot.json").read_text())
    assert snap["previous"]["log_size"] == 300


def test_replay_over_http_and_a_tampered_tile_fails_naming_it(
        ledger, tmp_path, served_log) -> None:
    url, _ = served_log
    root = at_300(ledger, tmp_path)
    code, verdict = replay(url)
    assert code == 0, verdict
    assert verdict["snapshot"]["source"] == url

    cases = {"tile/entries/000": "tile/entries/000: entry 17 does not hash to hash 17 of tile/0/000",
             "tile/0/000": "tile/entries/000: entry 0 does not hash to hash 0 of tile/0/000",
             "tile/1/000.p/1": "tile/1/000.p/1: hash 0 is not the Merkle hash of tile/0/000",
             "tile/0/001.p/44": "tile/entries/001.p/44: entry 256 does not hash to hash 0 of "
                                "tile/0/001.p/44"}
    for path, reason in cases.items():
        original = (root / path).read_bytes()
        data = bytearray(original)
        if path.startswith("tile/entries"):
            data[sum(2 + n for n in map(len, decode_bundle(original, path)[:17])) + 10] ^= 1
        else:
            data[0] ^= 1
        (root / path).write_bytes(bytes(data))
        for target in (url, str(root)):
            code, verdict = replay(target)
            assert code == 1, (path, verdict)
            assert reason in verdict["reason"], (path, verdict["reason"])
        (root / path).write_bytes(original)
    assert replay(str(root))[0] == 0
    (root / "tile/0/001.p/44").unlink()  # a missing tile is a failure, never a pass
    code, verdict = replay(url)
    assert code == 1 and "tile/0/001.p/44: not found" in verdict["reason"]


def test_account_shards_rebuild_the_ledgers_proofs(ledger, tmp_path) -> None:
    root = at_300(ledger, tmp_path)
    folder = root / "snapshots/300"
    index = json.loads((folder / "accounts/index.json").read_text())
    assert (index["digits"], index["count"]) == (0, 13)
    with ledger.engine.connect() as connection:
        publication = load_publication(snapshot_row(connection, "main", 300))
    for n in (0, 7, 12):
        account = f"acct-{n}"
        expected = account_proof(publication.document, publication.seed, publication.tree,
                                 publication.entries, account)
        shard = folder / shard_name(expected["nonce"], index["digits"])
        result = CliRunner().invoke(audit, ["account", str(shard), "--account", account,
                                            "--snapshot", str(folder / "snapshot.json"),
                                            "--key", VKEY, "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["totals"] == expected["totals"]
        assert proof_from_shard(json.loads(shard.read_text()), account) == expected
    result = CliRunner().invoke(audit, ["account", str(folder / "accounts/all.json"),
                                        "--account", "nobody", "--snapshot",
                                        str(folder / "snapshot.json"), "--key", VKEY])
    assert result.exit_code == 2 and "'nobody' is not in this shard" in result.output


def test_shard_rules_hand_computed() -> None:
    assert [shard_digits(n) for n in (0, 4096, 4097, 65536, 65537, 10**12)] == [0, 0, 1, 1, 2, 4]
    assert shard_name("ab12", 0) == "accounts/all.json"
    assert shard_name("ab12", 2) == "accounts/ab.json"
    # 5 leaves: rows of 5, 3, 2, 1. Leaf 4 is carried up twice, then pairs with node (2, 0).
    assert sibling_keys(4, 5) == [(2, 0)]
    assert sibling_keys(2, 5) == [(0, 3), (1, 0), (2, 1)]
    assert sibling_keys(0, 1) == []


def test_a_root_holding_anything_else_is_refused_and_left_alone(ledger, tmp_path) -> None:
    import_file(ledger, "main", write_jsonl(tmp_path / "c.jsonl", [capital("c1", "10.00")]))
    root = tmp_path / "log"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    key = tmp_path / "op.key"
    key.write_bytes(key_file(SIGNER))
    args = ["snapshot", "publish", "--key", str(key), "--out", str(root), "--layout", "tiles",
            "--db", f"sqlite:///{tmp_path / 'ledger.sqlite'}"]
    result = CliRunner().invoke(backstop, args)
    assert result.exit_code == 2
    assert "holds something other than fund main's tiled log; pass --force" in result.output
    assert sorted(p.name for p in root.iterdir()) == ["notes.txt"]
    result = CliRunner().invoke(backstop, [*args, "--force"])
    assert result.exit_code == 0, result.output
    assert result.output.endswith("/snapshots/3\n")
    assert not (root / "notes.txt").exists() and files(root) == {"tile/0/000.p/3",
                                                                 "tile/entries/000.p/3"}
    with pytest.raises(PublishError, match="already published"):  # same size: nothing new
        publish_tiles(ledger, "main", SIGNER, root, TIME)
    assert sorted(p.name for p in (root / "snapshots").iterdir()) == ["3"]


def test_an_event_too_long_for_a_bundle_is_refused_and_nothing_written(ledger, tmp_path,
                                                                       monkeypatch) -> None:
    lines = list(ledger.log_lines("main", 0, 2))
    monkeypatch.setattr(tilepub, "MAX_ENTRY", len(lines[1]) - 1)  # event 1 is one byte over
    root = tmp_path / "log"
    with pytest.raises(PublishError, match=f"event 1 is {len(lines[1])} bytes; an entry "
                                           f"bundle holds entries of at most {len(lines[1]) - 1}"):
        publish_tiles(ledger, "main", SIGNER, root, TIME)
    assert not root.exists()
    with ledger.engine.connect() as connection, pytest.raises(PublishError):
        snapshot_row(connection, "main", None)  # nothing recorded either


def test_cosign_replays_the_tiles_and_a_tampered_bundle_is_refused(ledger, tmp_path) -> None:
    root = at_300(ledger, tmp_path)
    witness = generate_signer("witness.example")
    (tmp_path / "w.key").write_bytes(key_file(witness))
    snapshot = root / "snapshots/300/snapshot.json"
    args = ["cosign", str(snapshot), "--witness-key", str(tmp_path / "w.key"), "--events", str(root),
            "--key", VKEY, "--out", str(tmp_path / "cosigned.json")]
    bundle = root / "tile/entries/001.p/44"
    original = bundle.read_bytes()
    bundle.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    result = CliRunner().invoke(audit, args)
    assert result.exit_code == 1
    assert "tile/entries/001.p/44: entry 299 does not hash" in result.output
    assert not (tmp_path / "cosigned.json").exists()
    bundle.write_bytes(original)
    result = CliRunner().invoke(audit, args)
    assert result.exit_code == 0, result.output
    signed = json.loads((tmp_path / "cosigned.json").read_text())
    assert [s["key"] for s in signed["signatures"]] == [SIGNER.key_name, witness.key_name]


def test_replay_usage_errors_exit_2(ledger, tmp_path) -> None:
    root = at_300(ledger, tmp_path)
    code, verdict = replay(str(root), "--snapshot", "snapshots/300/snapshot.json")
    assert code == 2 and "with a tiled log, give a log size" in verdict["reason"]
    code, verdict = replay(str(root), "--snapshot", "299")  # no snapshot of that size
    assert code == 2 and "snapshots/299/snapshot.json: not found under" in verdict["reason"]
    code, verdict = replay(str(tmp_path / "events.jsonl"))  # an export needs its snapshot
    assert code == 2 and verdict["reason"] == "--snapshot is required to replay an export file"
