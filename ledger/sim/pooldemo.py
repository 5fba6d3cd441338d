"""The demo's pools part: a format 2 fund (`ledger.sim.poolsim`) in `demo-out/pools/`.

Simulated, recorded in its own SQLite file, published every few simulated hours into its own
tiled log (the snapshot format of a format 2 fund, `backstop-snapshot/3`), audited by
`backstop-audit replay` (and `consistency` between consecutive snapshots) in separate
processes, and reported per pool from the published log's events (`ledger.sim.poolreport`).
Its transparency site is its own (`demo-out/pools/site`), beside the format 1 fund's. The pools
part is fixed (POOLS_CONFIG): `backstop demo --seed` and
`--traders` size only the format 1 part.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from auditor.verify.keys import Signer
from auditor.verify.tiles import LocalSource, verified_lines
from ledger.service.application import Ledger
from ledger.service.importer import import_file
from ledger.service.site import build_site
from ledger.service.tilepub import publish_tiles
from ledger.sim.poolreport import PoolFigures, fold_pools, pool_lines
from ledger.sim.poolsim import pools_fund_config, stream_pool_facts
from ledger.sim.simulate import SimulationConfig

# 24 simulated hours in 15-minute steps with a margin check every minute: the same crash as
# the CLI's default shape, with fewer events (each fact of a pool with an ADL rule walks back
# over its window's events).
POOLS_CONFIG = SimulationConfig(seed=7, traders=600, steps=96, step_seconds=900,
                                checks_per_step=15)
PUBLISH_EVERY_HOURS = 6


@dataclass
class PoolsDemoResult:
    """What the pools part did."""

    workdir: Path
    facts: int
    events: int
    published: list[Path]
    pools: dict[str, PoolFigures]
    audits: list[tuple[str, int, str]] = field(default_factory=list)
    site: Path | None = None  # its transparency site

    @property
    def verified(self) -> bool:
        """Whether every auditor run of the pools log exited 0 with VERIFIED."""
        return bool(self.audits) and all(code == 0 for _, code, _ in self.audits)


def _chunks(facts: Path, out: Path, hours: int) -> list[tuple[str, Path]]:
    """Split the facts (in time order) every `hours` simulated hours; (last hour, file)."""
    groups: dict[str, list[bytes]] = {}
    with facts.open("rb") as stream:
        for line in stream:
            stamp = json.loads(line)["time"]
            hour = int(stamp[11:13]) // hours * hours
            groups.setdefault(f"{stamp[:10]}T{hour:02d}", []).append(line)
    paths = []
    for n, lines in enumerate(groups.values(), start=1):
        path = out / f"{n:03d}.jsonl"
        path.write_bytes(b"".join(lines))
        last = json.loads(lines[-1])["time"][:13]
        paths.append((last, path))
    return paths


def run_pools_demo(workdir: Path, signer: Signer, vkey: str,
                   audit: Callable[[list[str]], tuple[int, str]],
                   say: Callable[[str], None] = print,
                   config: SimulationConfig = POOLS_CONFIG) -> PoolsDemoResult:
    """Simulate, record, publish and audit the pools fund in `workdir` (a new folder)."""
    (workdir / "chunks").mkdir(parents=True)
    facts = workdir / "facts.jsonl"
    with facts.open("w", encoding="utf-8", newline="\n") as out:
        counts = stream_pool_facts(config, out)
    settings = pools_fund_config()
    (workdir / "fund.json").write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
    say(f"simulated the pools structure: {sum(counts.values())} exchange facts, "
        f"{counts['liquidation']} liquidations in 4 markets, 3 pools")
    ledger = Ledger(f"sqlite:///{workdir / 'backstop.sqlite'}")
    log = workdir / "published"
    published: list[Path] = []
    events = 0
    try:
        first = json.loads(facts.open("rb").readline())["time"]
        ledger.open_fund(settings, first)
        for hour, chunk in _chunks(facts, workdir / "chunks", PUBLISH_EVERY_HOURS):
            import_file(ledger, settings["fund"], chunk)
            publication = publish_tiles(ledger, settings["fund"], signer, log, f"{hour}:59:59Z")
            events = publication.document["log"]["size"]
            published.append(log / "snapshots" / str(events))
            say(f"  pools {hour}:00  snapshot {len(published)} at log size {events}")
    finally:
        ledger.close()
    runs: list[tuple[str, list[str]]] = []
    for n, snap in enumerate(published):
        runs.append((f"pools replay {snap.name}",
                     ["replay", str(log), "--snapshot", snap.name, "--key", vkey]))
        if n:
            runs.append((f"pools consistency {published[n - 1].name} -> {snap.name}",
                         ["consistency", str(published[n - 1] / "snapshot.json"),
                          str(snap / "snapshot.json"), "--key", vkey]))
    with ThreadPoolExecutor(max_workers=2) as pool:  # separate processes, two at a time
        verdicts = list(pool.map(lambda run: audit(run[1]), runs))
    audits = [(what, code, reason) for (what, _), (code, reason) in zip(runs, verdicts, strict=True)]
    head = bytes.fromhex(publication.document["log"]["root"])
    pools = fold_pools(verified_lines(LocalSource(log), events, head))
    site = workdir / "site"
    build_site([log], site, vkey)
    say(f"built the pools fund's transparency site in {site}")
    return PoolsDemoResult(workdir=workdir, facts=sum(counts.values()), events=events,
                           published=published, pools=pools, audits=audits, site=site)


def pools_report(result: PoolsDemoResult) -> list[str]:
    """The report's pools section."""
    failed = [(what, reason) for what, code, reason in result.audits if code != 0]
    lines = [
        "",
        f"Pools fund (format 2) in {result.workdir}",
        (f"  log                 {result.facts} exchange facts, {result.events} events, "
         f"{len(result.published)} snapshots"),
        f"  audit               {len(result.audits)} auditor runs: "
        + ("VERIFIED" if result.verified else f"FAILED ({len(failed)})"),
    ]
    lines += pool_lines(result.pools)
    lines += [f"    failed: {what}: {reason}" for what, reason in failed[:5]]
    if result.site is not None:
        lines.append(f"  site                python -m http.server -d {result.site}")
    return lines
