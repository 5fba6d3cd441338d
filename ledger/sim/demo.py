"""`backstop demo`: the main job end to end on the embedded SQLite store.

Simulate a crash, record it hour by hour, publish a signed snapshot after every simulated hour
into one tiled log (C2SP tlog-tiles, ledger.service.tilepub), have the auditor (a separate process,
through its CLI) verify every snapshot by full replay of the tiles and every consecutive pair
for consistency, then report and draw the chart.

Proof of reserves (docs/RESERVES.md): before each snapshot the demo opens a reserves round and
records two holdings that sign it: a treasury address holding the token on a simulated chain
(the auditor checks it against a balances file, since no node runs in the demo) and a
custodian's statement; every snapshot is also audited with `backstop-audit reserves`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from auditor.formats.wire import format_amount, format_decimal, parse_decimal
from auditor.verify.keys import Signer
from auditor.verify.origin import derived_origin
from auditor.verify.tiles import LocalSource, verified_lines
from ledger.domain.bookkeeping import FUND, moves
from ledger.service.application import Ledger
from ledger.service.importer import import_file
from ledger.service.reserves import (
    add_holdings,
    custodian_holding,
    eth_address,
    load_eth_key,
    open_round,
    sign_challenge,
)
from ledger.service.signing import generate_signer, key_file
from ledger.service.site import build_site
from ledger.service.tilepub import publish_tiles
from ledger.sim.pooldemo import PoolsDemoResult, pools_report, run_pools_demo
from ledger.sim.simulate import SimulationConfig, fund_config, write_facts

KEY_NAME = "demo.backstop.example"
CUSTODIAN_NAME = "demo-custodian.example"
CHAIN = "eip155:1337"  # a simulated chain: the demo's balances file stands in for a node
TOKEN_DECIMALS = 6
CUSTODIAN_BUFFER = 100_000  # minor units (1,000.00 USDT) the custodian holds beyond its share


class ChartUnavailable(RuntimeError):
    """matplotlib, which draws the demo's chart, is not installed."""


def require_chart() -> None:
    """Fail at once, not after a minute of work, when the chart cannot be drawn."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ChartUnavailable("backstop demo draws its chart with matplotlib, which is not "
                               "installed: pip install 'backstop[chart]'") from None


@dataclass
class DemoResult:
    """What the demo did, for the report and for tests."""

    workdir: Path
    chart: Path
    published: list[Path]
    facts: int
    events: int
    liquidations: int
    initial_balance: int
    final_balance: int
    covered: int
    covered_count: int
    socialized: int
    clawbacks: int
    clawed_accounts: int
    lowest_ratio: Fraction | None
    lowest_ratio_time: str | None
    audits: list[tuple[str, int, str]] = field(default_factory=list)  # (what, exit, reason)
    decimals: int = 2
    asset: str = "USDT"
    reserve_audits: list[tuple[str, int, str]] = field(default_factory=list)  # reserves runs
    reserve_ratios: dict[str, str | None] = field(default_factory=dict)  # the last snapshot's
    sizing: list[str] = field(default_factory=list)  # the `backstop risk` headline lines
    site: Path | None = None  # the transparency site built from the snapshots
    pools: PoolsDemoResult | None = None  # the format 2 fund of demo-out/pools/

    @property
    def verified(self) -> bool:
        """Whether every audit run (replay, consistency, reserves; the pools fund's) exited 0."""
        runs = self.audits + self.reserve_audits
        pools_ok = self.pools is None or self.pools.verified
        return bool(self.audits) and pools_ok and all(code == 0 for _, code, _ in runs)


def _auditor_command() -> list[str]:
    script = Path(sys.executable).with_name("backstop-audit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "auditor"]


def _audit(args: list[str]) -> tuple[int, str]:
    """Run one auditor command; (exit code, reason). A run counts as verified only when it
    exits 0 AND its verdict says verified: an empty or unparsable output is a failure."""
    code, reason, _ = _audit_verdict(args)
    return code, reason


def _audit_verdict(args: list[str]) -> tuple[int, str, dict[str, Any]]:
    """As `_audit`, with the verdict's JSON document (empty when there is none)."""
    run = subprocess.run(_auditor_command() + args + ["--json"], capture_output=True, text=True,
                         check=False)
    try:
        verdict = json.loads(run.stdout)
    except ValueError:
        verdict = None
    if not isinstance(verdict, dict):
        last = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no output"]
        return run.returncode or 1, f"no verdict from the auditor ({last[0][:200]})", {}
    reason = str(verdict.get("reason") or "")
    if run.returncode == 0 and verdict.get("verified") is not True:
        return 1, reason or "the auditor exited 0 without a VERIFIED verdict", verdict
    return run.returncode, reason, verdict


@dataclass
class _Treasury:
    """The demo fund's proof of reserves: a treasury address on a simulated chain holding the
    fund's token, and a custodian. Keys are derived from fixed labels (reproducible)."""

    folder: Path
    asset: str
    decimals: int
    balances: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.key = load_eth_key(hashlib.sha256(b"backstop demo treasury").hexdigest())
        self.address = eth_address(self.key)
        self.token = "0x" + hashlib.sha256(b"backstop demo token").digest()[:20].hex()
        self.token_decimals = max(TOKEN_DECIMALS, self.decimals)
        self.custodian = generate_signer(CUSTODIAN_NAME)
        (self.folder / "custodian.pub").write_text(self.custodian.verifier_key() + "\n")
        (self.folder / "tokens.json").write_text(json.dumps({
            "format": "backstop-tokens/1", "tokens": [{"asset": self.asset, "chain": CHAIN,
                                                       "token": self.token,
                                                       "decimals": self.token_decimals}]},
                                                      indent=1))

    def attest(self, ledger: Ledger, fund: str, time: str, block: int) -> None:
        """Open the round for the next snapshot; record three quarters of the reserve at the
        treasury address (held exactly, at `block`) and the rest plus a buffer at the
        custodian."""
        opened = open_round(ledger, fund, time, new=True)
        reserve = ledger.get_fund(fund).balances[self.asset]
        custodian_units = reserve - reserve * 3 // 4 + CUSTODIAN_BUFFER
        onchain_units = reserve * 3 // 4
        onchain = {"kind": "onchain", "asset": self.asset, "chain": CHAIN,
                   "address": self.address, "token": self.token,
                   "amount": format_amount(onchain_units, self.decimals), "block": block,
                   "signature": sign_challenge(self.key, opened.challenge)}
        custodian = custodian_holding(opened, self.custodian, self.asset, "insurance-fund-1",
                                      format_amount(custodian_units, self.decimals), None)
        add_holdings(ledger, fund, [json.dumps(onchain).encode(), json.dumps(custodian).encode()],
                     [self.custodian.verifier()])
        # The simulated chain mines `block` at the round's time: the auditor checks its age.
        self.balances.append({"chain": CHAIN, "address": self.address, "token": self.token,
                              "block": block, "balance": str(
                                  onchain_units * 10 ** (self.token_decimals - self.decimals)),
                              "block_time": time})

    def write_balances(self) -> Path:
        """The balances the auditor checks against (what a node would say at each block)."""
        path = self.folder / "balances.json"
        path.write_text(json.dumps({"format": "backstop-balances/1",
                                    "balances": self.balances}, indent=1))
        return path

    def audit_args(self, snapshot: Path, vkey: str) -> list[str]:
        return ["reserves", str(snapshot), "--key", vkey, "--balances",
                str(self.folder / "balances.json"), "--tokens", str(self.folder / "tokens.json"),
                "--custodian-key", str(self.folder / "custodian.pub")]


def _hourly_chunks(facts: Path, out: Path) -> list[tuple[str, Path]]:
    """Split the facts file by simulated hour (facts are in time order)."""
    chunks: dict[str, list[bytes]] = {}
    with facts.open("rb") as stream:
        for line in stream:
            hour = json.loads(line)["time"][:13]
            chunks.setdefault(hour, []).append(line)
    paths = []
    for n, (hour, lines) in enumerate(chunks.items(), start=1):
        path = out / f"{n:03d}-{hour.replace(':', '')}.jsonl"
        path.write_bytes(b"".join(lines))
        paths.append((hour, path))
    return paths


# The report's totals of the bookkeeping's running totals (ledger.domain.bookkeeping).
_REPORTED = {"injected": "initial_balance", "covered": "covered", "socialized": "socialized",
             "clawed_back": "clawbacks"}


def _read_export(events: Iterable[bytes], asset: str,
                 decimals: int) -> tuple[dict[str, int], dict[str, list[Any]]]:
    """One pass over the final log's lines: the report's totals, and the chart's series (price,
    fund balance and coverage ratio at each market observation)."""
    t = dict.fromkeys(("liquidations", "initial_balance", "final_balance", "covered",
                       "covered_count", "socialized", "clawbacks"), 0)
    clawed: set[str] = set()
    series: dict[str, list[Any]] = defaultdict(list)
    places = {asset: decimals}  # every asset's decimals, from the fund_opened event
    for line in events:
        event = json.loads(line)
        kind, data = event["type"], event["data"]
        if kind == "fund_opened":
            places.update({a: spec["decimals"] for a, spec in data["assets"].items()})
        for moved, name, units, account in moves(kind, data, places):
            if moved != asset:  # the report and chart are of the fund's quote asset
                continue
            if name == FUND:
                t["final_balance"] += units
            elif name in _REPORTED:
                t[_REPORTED[name]] += units
                t["covered_count"] += name == "covered"  # one per deficit_covered event
            elif name == "clawbacks" and account is not None:
                clawed.add(account)
        if kind in ("liquidation_settled", "large_liquidation_settled"):
            t["liquidations"] += 1
        elif kind == "market_observed":
            mark = parse_decimal(data["mark_price"])
            notional = mark * parse_decimal(data["open_interest"])
            fund = Fraction(t["final_balance"], 10**decimals)
            series["times"].append(event["time"])
            series["prices"].append(mark)
            series["balances"].append(fund)
            series["ratios"].append(fund / notional if notional else Fraction(0))
    return {**t, "clawed_accounts": len(clawed)}, series


def run_demo(workdir: Path, config: SimulationConfig | None = None,
             say: Callable[[str], None] = print, with_pools: bool = True) -> DemoResult:
    """Run the whole demo in `workdir` (recreated) and return what happened; `with_pools`:
    also the pools fund (format 2) in `workdir/pools` (ledger.sim.pooldemo)."""
    from ledger.sim.chart import write_chart

    require_chart()
    config = config or SimulationConfig()
    if workdir.exists():
        shutil.rmtree(workdir)
    (workdir / "chunks").mkdir(parents=True)
    facts = workdir / "facts.jsonl"
    summary = write_facts(config, facts)
    say(f"simulated {config.profile}: {sum(summary.facts_by_type.values())} exchange facts, "
        f"{summary.liquidations} liquidations, {config.traders} traders")
    settings = fund_config(config)
    asset, decimals = config.quote, config.quote_decimals
    ledger = Ledger(f"sqlite:///{workdir / 'backstop.sqlite'}")
    try:
        ledger.open_fund(settings, summary.times[0] if summary.times else "2020-01-01T00:00:00Z")
        signer = generate_signer(KEY_NAME)
        # C2SP: a log's key SHOULD be named its origin; the demo's log takes the derived one.
        signer = Signer(derived_origin(settings["fund"], signer.public_key), signer.private_key)
        (workdir / "operator.key").write_bytes(key_file(signer))
        (workdir / "operator.key").chmod(0o600)
        vkey = signer.verifier_key()
        published: list[Path] = []
        log = workdir / "published"
        treasury = _Treasury(workdir / "reserves", asset, decimals)
        for hour, chunk in _hourly_chunks(facts, workdir / "chunks"):
            import_file(ledger, settings["fund"], chunk)
            treasury.attest(ledger, settings["fund"], f"{hour}:59:59Z", 1000 + len(published))
            publication = publish_tiles(ledger, settings["fund"], signer, log, f"{hour}:59:59Z")
            events = publication.document["log"]["size"]
            published.append(log / "snapshots" / str(events))
            say(f"  {hour}:00  snapshot {len(published):>2} at log size {events}")
    finally:
        ledger.close()
    treasury.write_balances()
    say(f"auditing {len(published)} snapshots with backstop-audit (separate processes)")
    runs: list[tuple[str, list[str]]] = []
    for n, out in enumerate(published):
        runs.append((f"replay {out.name}", ["replay", str(log), "--snapshot", out.name,
                                            "--key", vkey]))
        if n:
            runs.append((f"consistency {published[n - 1].name} -> {out.name}",
                         ["consistency", str(published[n - 1] / "snapshot.json"),
                          str(out / "snapshot.json"), "--key", vkey]))
    reserve_runs = [(f"reserves {out.name}", treasury.audit_args(out / "snapshot.json", vkey))
                    for out in published]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # one process per core
        results = list(pool.map(lambda run: _audit(run[1]), runs))
        reserve_results = list(pool.map(lambda run: _audit_verdict(run[1]), reserve_runs))
    audits = [(what, code, reason) for (what, _), (code, reason) in zip(runs, results, strict=False)]
    reserve_audits = [(what, code, reason) for (what, _), (code, reason, _) in
                      zip(reserve_runs, reserve_results, strict=True)]
    ratios = reserve_results[-1][2].get("reserve_ratio", {}) if reserve_results else {}
    head = bytes.fromhex(publication.document["log"]["root"])
    lines = verified_lines(LocalSource(log), events, head)
    totals, series = _read_export(lines, asset, decimals)
    chart = workdir / "crash.png"
    write_chart(str(chart), series["times"], series["prices"], series["balances"],
                series["ratios"], title=f"{config.profile}: price, insurance fund, coverage")
    lowest = min(zip(series["ratios"], series["times"], strict=False), default=(None, None))
    from ledger.sim.riskdemo import headline, sizing_report

    say("sizing the fund against the opening book (backstop risk)")
    sizing = headline(sizing_report(config, workdir))
    site = workdir / "site"
    build_site([log], site, vkey)  # the transparency site (ledger.service.site)
    say(f"built the transparency site in {site}")
    pools = run_pools_demo(workdir / "pools", signer, vkey, _audit, say) if with_pools else None
    return DemoResult(pools=pools, sizing=sizing, workdir=workdir, chart=chart, published=published, site=site,
                      facts=sum(summary.facts_by_type.values()), events=events,
                      lowest_ratio=lowest[0], lowest_ratio_time=lowest[1], audits=audits,
                      decimals=decimals, asset=asset, reserve_audits=reserve_audits,
                      reserve_ratios=ratios, **totals)


def report(result: DemoResult) -> str:
    """The short human report printed at the end of the demo."""
    def money(units: int) -> str:
        return f"{format_amount(units, result.decimals)} {result.asset}"

    failed = [(what, reason) for what, code, reason in result.audits + result.reserve_audits
              if code != 0]
    reserves_failed = sum(1 for _, code, _ in result.reserve_audits if code != 0)
    held = ", ".join(f"{a} {r if r is not None else 'n/a (no reserve)'}"
                     for a, r in sorted(result.reserve_ratios.items())) or "n/a"
    ratio = "n/a" if result.lowest_ratio is None else \
        f"{format_decimal(result.lowest_ratio * 100, 4)}% at {result.lowest_ratio_time}"
    lines = [
        "",
        "Backstop demo report",
        (f"  fund balance        {money(result.initial_balance)} before, "
        f"{money(result.final_balance)} after"),
        (f"  liquidations        {result.liquidations} ({result.facts} exchange facts, "
        f"{result.events} events)"),
        f"  deficits covered    {result.covered_count}, {money(result.covered)} paid by the fund",
        (f"  socialized          {money(result.socialized)} clawed back from "
        f"{result.clawed_accounts} accounts"),
        f"  lowest fund/OI      {ratio}",
        (f"  snapshots           {len(result.published)} published under "
        f"{result.workdir / 'published'}"),
        f"  audit               {len(result.audits)} auditor runs: "
        + ("VERIFIED" if result.verified else f"FAILED ({len(failed)})"),
        (f"  proof of reserves   {len(result.reserve_audits)} snapshots checked: "
         + ("VERIFIED" if result.reserve_audits and not reserves_failed
            else f"FAILED ({reserves_failed})")
         + f"; reserve ratio (holdings / reserve) of the last: {held}"),
        f"  chart               {result.chart}",
    ]
    if result.site is not None:
        lines.append(f"  site                python -m http.server -d {result.site}  "
                     "(then open http://localhost:8000)")
    lines += [f"    failed: {what}: {reason}" for what, reason in failed[:5]]
    lines += result.sizing
    if result.pools is not None:
        lines += pools_report(result.pools)
    return "\n".join(lines)
