"""The pools report's fold on the README's hand-worked log E1 (schemas/README.md "Example (E1)"):
shared 1000.00 - 25.00 (the backstop draw for alt) = 975.00; alt 30.00 - 20.00 = 10.00, its
deficit 120.00 = 20.00 paid + 25.00 drawn + 75.00 socialized (unresolved, no counterparties);
btc 0.00150000 paid, 0.00058164 socialized and clawed back (A 0.00019012 + B 0.00039152)."""

from __future__ import annotations

from pathlib import Path

from ledger.sim.poolreport import fold_pools, pool_lines
from tests.v2fixture import example_export


def test_e1_folds_to_the_hand_worked_figures(tmp_path: Path) -> None:
    events = example_export(f"sqlite:///{tmp_path / 'e1.sqlite'}", tmp_path)
    pools = fold_pools(events.read_bytes().splitlines())
    assert list(pools) == ["alt", "btc", "shared"]
    alt, btc, shared = pools["alt"], pools["btc"], pools["shared"]
    assert (alt.asset, alt.balance, alt.injected, alt.covered, alt.covered_count,
            alt.backstop_received, alt.backstop_count, alt.socialized, alt.unresolved,
            alt.clawed_back) == ("USDT", 10_00, 30_00, 20_00, 1, 25_00, 1, 75_00, 75_00, 0)
    assert (shared.balance, shared.backstop_given, shared.covered, shared.socialized) == (
        975_00, 25_00, 0, 0)
    assert (btc.asset, btc.balance, btc.covered, btc.socialized, btc.clawed_back,
            btc.unresolved) == ("XBT", 0, 150_000, 58_164, 58_164, 0)
    assert alt.adl == btc.adl == shared.adl == []
    lines = pool_lines(pools)
    assert "    backstop          drawn for it 1x, 25.00 USDT; drawn from it 0.00 USDT" in lines
    assert ("    socialized        1x, 0.00058164 XBT (clawed back 0.00058164 XBT, "
            "unresolved 0.00000000 XBT)") in lines


def test_adl_periods_fold_with_their_times_and_reason(tmp_path: Path) -> None:
    """Vector T1: adl_started/1 at 03:00:00Z, adl_ended/1 (recovered) at 10:30:00Z."""
    from tests.importing import run
    from tests.v2fixture import import_facts, init_fund, t1_config, t1_facts

    url = f"sqlite:///{tmp_path / 't1.sqlite'}"
    init_fund(url, tmp_path, t1_config())
    import_facts(url, tmp_path / "facts.jsonl", t1_facts(), "t1")
    out = tmp_path / "events.jsonl"
    assert run(["export", str(out), "--fund", "t1"], url).exit_code == 0
    main = fold_pools(out.read_bytes().splitlines())["main"]
    assert main.adl == [("2026-01-01T03:00:00Z", "2026-01-01T10:30:00Z", "recovered")]
    assert (main.balance, main.covered, main.fees) == (710_00, 350_00, 60_00)
