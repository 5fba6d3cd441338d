"""Tamper campaign: from one valid published directory, >= 200 seeded single mutations across
kinds; every one must be caught (exit 1 with a reason naming what failed), and the untouched
directory must verify (exit 0) with every command."""

from __future__ import annotations

import base64
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditor import checks, cli
from tests.audit_world import build_world
from tests.e2e.mutations import SEED, change_digit, change_hex, event_mutations

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_world(tmp_path_factory.mktemp("audit-world"))


# ------------------------------------------------------------------ mutation generators
# Each returns (kind, command, {relative path: new bytes}); the event log's are
# tests/e2e/mutations.py:event_mutations.


def other_mutations(rng: random.Random, d: Path) -> list[tuple[str, str, dict[str, bytes]]]:
    out = []
    snap = json.loads((d / "snapshot.json").read_text())

    def dump(doc: Any) -> bytes:
        return json.dumps(doc, indent=1, sort_keys=True).encode()

    for _ in range(25):
        doc = json.loads(json.dumps(snap))
        raw = bytearray(base64.b64decode(doc["signatures"][0]["sig"]))
        pos = rng.randrange(len(raw))
        raw[pos] ^= 1 << rng.randrange(8)
        doc["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
        out.append(("snapshot signature byte", "snapshot", {"snapshot.json": dump(doc)}))
    for n in range(20):
        doc = json.loads(json.dumps(snap))
        if n % 2:
            asset = rng.choice(sorted(doc["reserves"]))
            doc["reserves"][asset] = change_digit(rng, doc["reserves"][asset])
        else:
            asset = rng.choice(doc["accounts"]["assets"])
            kind = rng.choice(["fees", "payouts", "clawbacks"])
            t = doc["accounts"]["totals"][asset]
            t[kind] = change_digit(rng, t[kind])
        out.append(("snapshot reserve/total", "snapshot", {"snapshot.json": dump(doc)}))
    proofs = sorted(p.name for p in (d / "accounts").iterdir())
    for n in range(50):
        name = rng.choice(proofs)
        doc = json.loads((d / "accounts" / name).read_text())
        step = rng.choice(doc["path"])
        if n % 2:
            step["hash"] = change_hex(rng, step["hash"])
            kind = "account path hash"
        else:
            sums = step["sums"][rng.choice(sorted(step["sums"]))]
            k = rng.choice(sorted(sums))
            sums[k] = change_digit(rng, sums[k])
            kind = "account path sum"
        out.append((kind, f"account:{name}", {f"accounts/{name}": dump(doc)}))
    note = (d / "checkpoint").read_text()
    origin, size, root, rest = note.split("\n", 3)
    for _ in range(20):
        new_root = change_hex(rng, root, B64)
        out.append(("checkpoint root", "checkpoint",
                    {"checkpoint": "\n".join([origin, size, new_root, rest]).encode()}))
    return out


# ------------------------------------------------------------------ running


def command(kind: str, d: Path, key: str) -> tuple[Any, dict[str, Any], list[str]]:
    """(body function, params, CLI args) of the command that checks a mutated file."""
    snap = str(d / "snapshot.json")
    keys = (key,)
    if kind == "replay":
        return (checks.verify_replay,
                dict(events=str(d / "events.jsonl"), snapshot=snap, keys=keys, require=1, seed=None),
                ["replay", str(d / "events.jsonl"), "--snapshot", snap])
    if kind == "snapshot":
        return checks.verify_snapshot, dict(snapshot=snap, keys=keys, require=1), ["snapshot", snap]
    if kind == "checkpoint":
        cp = str(d / "checkpoint")
        return (checks.verify_checkpoint, dict(checkpoint=cp, keys=keys, require=1, snapshot=snap),
                ["checkpoint", cp, "--snapshot", snap])
    name = kind.split(":", 1)[1]
    proof = str(d / "accounts" / name)
    return (checks.verify_account, dict(proof=proof, snapshot=snap, keys=keys, require=1),
            ["account", proof, "--snapshot", snap])


def test_untouched_directory_verifies_with_every_command(world: dict[str, Any]) -> None:
    d = world["base"] / "a"
    some_account = sorted((d / "accounts").iterdir())[0].name
    for kind in ("replay", "snapshot", "checkpoint", f"account:{some_account}"):
        _, _, args = command(kind, d, world["op"])
        result = CliRunner().invoke(cli.main, args + ["--key", world["op"]])
        assert result.exit_code == 0, (kind, result.output)
        assert result.output.rstrip().endswith("VERIFIED")


def test_tamper_campaign(world: dict[str, Any], tmp_path: Path) -> None:
    src = world["base"] / "a"
    rng = random.Random(SEED)
    lines = (src / "events.jsonl").read_bytes().splitlines(keepends=True)
    mutations = event_mutations(rng, lines) + other_mutations(rng, src)
    assert len(mutations) >= 200
    counts = Counter(kind for kind, _, _ in mutations)
    assert len(counts) == 10, counts
    # a working copy; each mutation writes its files, runs, then restores the originals
    d = tmp_path / "pub"
    import shutil

    shutil.copytree(src, d)
    originals: dict[str, bytes] = {}
    cli_sample = set(rng.sample(range(len(mutations)), 24))
    caught: Counter[str] = Counter()
    for n, (kind, cmd, files) in enumerate(mutations):
        for rel, data in files.items():
            originals.setdefault(rel, (d / rel).read_bytes())
            assert data != originals[rel], (kind, rel)
            (d / rel).write_bytes(data)
        body, params, args = command(cmd, d, world["op"])
        if n in cli_sample:
            result = CliRunner().invoke(cli.main, args + ["--key", world["op"]])
            assert result.exit_code == 1, (n, kind, result.output)
            last = result.output.rstrip().splitlines()[-1]
            assert last.startswith("FAILED: ") and len(last) > len("FAILED: ") + 3, (kind, last)
        else:
            report = checks.execute(cmd.split(":")[0], body, **params)
            assert report.exit_code == 1, (n, kind, report.error, report.checks)
            assert report.reason and ":" in report.reason, (kind, report.reason)
        caught[kind] += 1
        for rel in files:
            (d / rel).write_bytes(originals[rel])
    assert caught == counts
    print("tamper campaign:", dict(sorted(caught.items())))
