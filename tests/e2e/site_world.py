"""A small real publication for the site's tests, made with the operator's CLI as the demo
makes one: fixtures/crash-small.jsonl imported in three parts, a tiled snapshot after each
(`snapshot publish --layout tiles`), one snapshot in the per-snapshot directory form, and
account proofs from `backstop prove account` for the last snapshot and an older one."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
FUND = ROOT / "fixtures" / "crash-small.fund.json"
FACTS = ROOT / "fixtures" / "crash-small.jsonl"
T0 = "2020-03-12T00:00:00Z"
TIMES = ("2020-03-12T02:59:59Z", "2020-03-12T05:59:59Z", "2020-03-12T06:59:59Z",
         "2020-03-12T08:59:59Z")
DIRECTORY_PART = 2  # this part's snapshot is published in the per-snapshot directory form


@dataclass
class World:
    """Paths of the publication and what the tests compare against."""

    base: Path
    vkey: str
    tiled: Path
    directory: Path
    sizes: list[int] = field(default_factory=list)  # of the tiled snapshots
    proofs: dict[str, Path] = field(default_factory=dict)  # account -> proof of the last snapshot
    old_proof: Path | None = None  # a proof against the first snapshot
    consistency: Path | None = None  # `prove consistency` from the first to the last snapshot

    def snapshot(self, size: int) -> Path:
        return self.tiled / "snapshots" / str(size) / "snapshot.json"


def backstop(*args: str) -> str:
    """Run the operator CLI in-process; raise on a non-zero exit."""
    from ledger.cli.main import main as operator

    result = CliRunner().invoke(operator, list(args), catch_exceptions=False)
    if result.exit_code != 0:
        raise AssertionError(f"backstop {' '.join(args)}: {result.output}")
    return result.output


def build_world(base: Path) -> World:
    """Build the publication under `base` (about 10 s)."""
    base.mkdir(parents=True, exist_ok=True)
    db = f"sqlite:///{base / 'ledger.sqlite'}"
    key = base / "operator.key"
    vkey = backstop("keygen", "site.backstop.example", "--out", str(key)).strip().splitlines()[-1]
    backstop("init", str(FUND), "--db", db, "--time", T0)
    lines = FACTS.read_text().splitlines(keepends=True)
    parts = [lines[:150], lines[150:300], lines[300:380], lines[380:]]
    world = World(base, vkey, base / "published", base / "directory")
    accounts: list[str] = []
    for n, (part, time) in enumerate(zip(parts, TIMES, strict=True)):
        chunk = base / f"part{n}.jsonl"
        chunk.write_text("".join(part))
        backstop("import", str(chunk), "--db", db)
        out, layout = ((world.directory, "directory") if n == DIRECTORY_PART else
                       (world.tiled, "tiles"))
        document = json.loads(backstop("snapshot", "publish", "--key", str(key), "--out",
                                       str(out), "--layout", layout, "--db", db,
                                       "--time", time, "--json"))
        if n != DIRECTORY_PART:
            world.sizes.append(document["log"]["size"])
        if n == 0:
            accounts = sorted(json.loads(line)["account"] for line in part
                              if '"liquidation"' in line)[:1]
            world.old_proof = base / "proof-old.json"
            world.old_proof.write_text(backstop("prove", "account", accounts[0], "--db", db))
    events = [json.loads(line) for line in (world.directory / "events.jsonl").open()]
    clawed = sorted({e["data"]["account"] for e in events if e["type"] == "clawback_charged"})
    paid = sorted({e["data"]["account"] for e in events if e["type"] == "deficit_covered"})
    for account in [*clawed[:2], *paid[:1], accounts[0]]:
        path = base / f"proof-{len(world.proofs)}.json"
        path.write_text(backstop("prove", "account", account, "--db", db,
                                 "--size", str(world.sizes[-1])))
        world.proofs[account] = path
    world.consistency = base / "consistency.json"
    world.consistency.write_text(backstop("prove", "consistency", str(world.sizes[0]),
                                          str(world.sizes[-1]), "--db", db))
    return world


def data_of(site: Path) -> dict[str, Any]:
    """The figures a built site carries: the JSON inside its data.js."""
    text = (site / "data.js").read_text()
    prefix = "window.BACKSTOP_SITE = "
    assert text.startswith(prefix) and text.endswith(";\n")
    return json.loads(text[len(prefix):-2])


def build(*args: str) -> Any:
    """`backstop site build ARGS` through click's runner (the result, whatever its exit)."""
    from ledger.cli.main import main as operator

    return CliRunner().invoke(operator, ["site", "build", *args])


def refused(tmp_path: Path, *args: str) -> str:
    """Exit 2, one line, and no site written."""
    out = tmp_path / "site"
    result = build(*args, "--out", str(out))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".site")]
    return lines[0]
