"""The pools of a format v2 fund on the site, in a real browser (Chromium, as
tests/e2e/test_site_browser.py): the worked logs E1 and T1 (tests/e2e/v2_world.py) published,
built into sites and opened over HTTP.

By hand (schemas/README.md "Format v2 (pools)"; tests/e2e/test_v2_snapshot.py):
E1  shared USDT 1000.00 - 25.00 = 975.00 (market ETH-PERP), alt 30.00 - 20.00 = 10.00
    (ALT-PERP, capped at 100.00 per 86400 s, claimed 20.00 + 25.00 = 45.00), btc XBT
    0.00150000 - 0.00150000 = 0.00000000 (XBTUSD); no ADL rule.
T1  (a tiled log with snapshots at sizes 8 and 12) pool main: adl_started at index 7 (03:00, ratio (650 - 1000) / 1000 = -0.35), adl_ended at
    index 11 (10:30, ratio (710 - 800) / 800 = -0.1125); now normal, balance 710.00;
    M-PERP observed: fund / notional 710.00 / 9000 = 0.078888888889.
"""

from __future__ import annotations

import functools
import http.server
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.service.site import build_site
from tests.e2e.conftest import QuietHandler
from tests.e2e.v2_world import Fund, e1
from tests.factories import write_jsonl
from tests.serving import serving
from tests.v2fixture import t1_config, t1_facts


def built(fund: Fund, out: Path) -> tuple[Path, Path]:
    public, vkey = fund.publish()
    build_site([public], out, vkey)
    return out, public


def t1_tiled(tmp: Path, out: Path) -> tuple[Path, Path]:
    """T1 published into one tiled log twice: after index 7 (in ADL since 7) and after 11."""
    fund = Fund(tmp, t1_config(), t1_facts()[:3])
    key = tmp / "op.key"
    vkey = fund.run("keygen", "ops.example/v2", "--out", str(key)).strip().splitlines()[-1]
    root = tmp / "tiles"
    publish = ("snapshot", "publish", "--key", str(key), "--layout", "tiles", "--out", str(root))
    fund.run(*publish)
    fund.run("import", str(write_jsonl(tmp / "more.jsonl", t1_facts()[3:])))
    fund.run(*publish)
    build_site([root], out, vkey)
    return out, root


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """E1's and T1's sites, served over HTTP from one root (e1/, t1/)."""
    root = tmp_path_factory.mktemp("v2sites")
    found = {"e1": built(e1(tmp_path_factory.mktemp("e1")), root / "e1"),
             "t1": t1_tiled(tmp_path_factory.mktemp("t1"), root / "t1")}
    handler = functools.partial(QuietHandler, directory=str(root))
    with serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)) as port:
        yield {"url": f"http://127.0.0.1:{port}", "root": root, **found}


def pool_text(page: Any, pool: str, part: str) -> str:
    return str(page.locator(f"#pool-{pool} .{part}").inner_text())


def test_e1_shows_each_pool_with_its_balance_and_markets(page: Any, sites: dict[str, Any]) -> None:
    page.goto(f"{sites['url']}/e1/index.html")
    page.wait_for_selector("#pools .pool")
    assert page.locator("#pools .pool h3").all_inner_texts() == [
        "Pool alt (isolated)", "Pool btc (isolated)", "Pool shared (shared)"]
    assert "975.00 USDT" in pool_text(page, "shared", "pool-balance")
    assert "10.00 USDT" in pool_text(page, "alt", "pool-balance")
    assert "0.00000000 XBT" in pool_text(page, "btc", "pool-balance")
    markets = {p: page.locator(f"#pool-{p} tbody tr td:first-child").all_inner_texts()
               for p in ("alt", "btc", "shared")}
    assert markets == {"alt": ["ALT-PERP"], "btc": ["XBTUSD"], "shared": ["ETH-PERP"]}
    alt = page.locator("#pool-alt tbody tr").inner_text()
    assert "100.00 USDT per 86400 s (claimed 45.00 in the period from 2026-01-01 00:00:00 UTC)" in alt
    assert "no cap" in page.locator("#pool-shared tbody tr").inner_text()
    assert pool_text(page, "shared", "pool-adl") == "no ADL rule"
    assert page.errors == []
    assert page.evaluate("window.__csp") == []


def test_t1_shows_adl_started_at_7_and_ended_at_11(page: Any, sites: dict[str, Any]) -> None:
    page.goto(f"{sites['url']}/t1/index.html")
    page.wait_for_selector("#pool-main")
    rows = page.locator("#pool-main h4 + .table-wrap tbody tr")
    cells = [r.locator("td").all_inner_texts() for r in rows.all()]
    assert [c[:3] for c in cells] == [["7", "2026-01-01 03:00:00 UTC", "started"],
                                      ["11", "2026-01-01 10:30:00 UTC", "ended"]]
    assert [c[5] for c in cells] == ["-0.350000000000", "-0.112500000000"]
    assert cells[1][7] == "recovered"
    assert pool_text(page, "main", "pool-balance") == "710.00 USDT"
    assert pool_text(page, "main", "pool-adl").startswith("normal: balance 710.00, peak 800.00")
    assert "0.078888888889" in page.locator("#pool-main tbody tr").first.inner_text()
    page.click("#pool-main details summary")
    history = [r.locator("td").all_inner_texts()
               for r in page.locator("#pool-main details tbody tr").all()]
    assert [(h[0], h[2], h[3]) for h in history] == [
        ("8", "650.00 USDT", "in ADL since event 7, ratio -0.350000000000"),
        ("12", "710.00 USDT", "normal, ratio -0.112500000000")]
    assert page.errors == []
    assert page.evaluate("window.__csp") == []


def test_e1_verify_page_verifies_the_snapshot_3_and_an_account(page: Any,
                                                               sites: dict[str, Any]) -> None:
    _, public = sites["e1"]
    proof = next(p for p in sorted((public / "accounts").glob("*.json")))
    account = json.loads(proof.read_text())["account"]
    page.goto(f"{sites['url']}/e1/verify.html")
    page.click("#snaps-verify")
    page.wait_for_function("document.querySelectorAll('#snaps-result li').length === 1")
    assert page.locator("#snaps-result li .word").all_inner_texts() == ["VERIFIED"]
    page.set_input_files("#proof-file", str(proof))
    page.click("#proof-verify")
    verdict = page.locator("#proof-result .box")
    verdict.wait_for()
    text = verdict.inner_text()
    assert text.startswith("VERIFIED"), text
    assert f"the totals of {account} are in the snapshot at log size 15" in text
    assert page.errors == []


def test_t1_verify_page_verifies_both_snapshots_3_and_their_link(page: Any,
                                                                 sites: dict[str, Any]) -> None:
    page.goto(f"{sites['url']}/t1/verify.html")
    page.click("#snaps-verify")
    page.wait_for_function("document.querySelectorAll('#snaps-result li').length === 2")
    assert page.locator("#snaps-result li .word").all_inner_texts() == ["VERIFIED"] * 2
    page.click("#cons-verify")
    verdict = page.locator("#cons-result .box")
    verdict.wait_for()
    assert verdict.inner_text().startswith("VERIFIED"), verdict.inner_text()
    assert page.errors == []
