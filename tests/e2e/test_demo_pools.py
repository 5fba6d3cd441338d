"""The demo's pools part (ledger.sim.pooldemo): the format 2 fund recorded, published, replayed
VERIFIED by `backstop-audit` in separate processes, and its report's per-pool figures equal to
the sums folded here, by hand, from the fund's exported events."""

from __future__ import annotations

import json
from collections import defaultdict
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger.cli.main import main as backstop
from ledger.service.signing import generate_signer
from ledger.sim.demo import _audit
from ledger.sim.pooldemo import pools_report, run_pools_demo


def exported(folder: Path) -> list[dict[str, Any]]:
    out = folder / "export.jsonl"
    result = CliRunner().invoke(backstop, ["export", str(out)],
                                env={"BACKSTOP_DB": f"sqlite:///{folder / 'backstop.sqlite'}"},
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text().splitlines()]


def by_pool(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per pool: deficits paid, backstop drawn from it / for it, socialized, ADL periods."""
    sums: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(Fraction))
    for ev in events:
        d = ev["data"]
        if ev["type"] == "deficit_covered":
            sums[d["pool"]]["covered"] += Fraction(d["amount"])
        elif ev["type"] == "backstop_drawn":
            sums[d["pool"]]["given"] += Fraction(d["amount"])
            sums[d["for_pool"]]["received"] += Fraction(d["amount"])
        elif ev["type"] == "socialized_loss_assessed":
            sums[d["pool"]]["socialized"] += Fraction(d["amount"])
        elif ev["type"] == "adl_started":
            sums[d["pool"]].setdefault("adl", []).append([ev["time"], None])
        elif ev["type"] == "adl_ended":
            sums[d["pool"]]["adl"][-1][1] = ev["time"]
    return sums


@pytest.mark.slow
def test_pools_demo_is_verified_and_its_report_adds_up(tmp_path: Path) -> None:
    signer = generate_signer("demo.backstop.example")
    result = run_pools_demo(tmp_path / "pools", signer, signer.verifier_key(), _audit,
                            say=lambda _: None)
    assert [(what, code) for what, code, _ in result.audits if code] == []
    assert result.verified and len(result.audits) == 2 * len(result.published) - 1
    events = exported(tmp_path / "pools")
    assert len(events) == result.events
    sums = by_pool(events)
    for pool, figures in result.pools.items():
        unit = Fraction(1, 10**figures.decimals)
        assert figures.covered * unit == sums[pool]["covered"], pool
        assert figures.backstop_given * unit == sums[pool]["given"], pool
        assert figures.backstop_received * unit == sums[pool]["received"], pool
        assert figures.socialized * unit == sums[pool]["socialized"], pool
        assert [list(period[:2]) for period in figures.adl] == sums[pool].get("adl", []), pool
    alt, shared = result.pools["alt"], result.pools["shared"]
    assert alt.backstop_received > 0 and alt.backstop_received == shared.backstop_given
    assert alt.socialized > 0 and alt.adl and shared.socialized == 0 and not shared.adl
    assert result.site is not None
    site = (result.site / "data.js").read_text()
    assert site.count('"file":"snapshots/') == len(result.published)
    text = "\n".join(pools_report(result))
    assert f"python -m http.server -d {result.site}" in text
    assert "VERIFIED" in text
    assert f"deficits paid     {alt.covered_count}, {alt.money(alt.covered)}" in text
    assert f"drawn from it {shared.money(shared.backstop_given)}" in text
    start, end, reason = alt.adl[0]
    assert f"ADL               {start} -> {end} ({reason})" in text
