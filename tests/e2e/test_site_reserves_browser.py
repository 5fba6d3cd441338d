"""Issue 27, items 2 and 3, in headless Chromium (as tests/e2e/test_site_browser.py drives it):
the reserves on the site (holdings, their signatures verified in the browser, the reserve
ratio) and a trader's receipts downloaded from the verify page and accepted offline by
`backstop-audit receipt`.

Reserves: tests/reserves_kit.py's fund (reserves 1000.00 USDT, 2.00000000 ETH; holdings USDT
600.00 at A, USDT 500.00 at the custodian acme-custody, ETH 2.00000000 at B): ratios USDT
1100.00 / 1000.00 = 1.100000, ETH 1.000000. Receipts: the site world of crash-small
(tests/e2e/site_world.py); acct-000006 had one deficit covered, 102.49 USDT, and acct-000297
was clawed back 513.52 USDT in all (both hand-checked in test_site_browser.py).
"""

from __future__ import annotations

import functools
import http.server
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditor.cli import main as audit
from ledger.service.site import build_site
from tests.e2e.conftest import QuietHandler
from tests.e2e.site_world import World
from tests.reserves_kit import ADDRESS_A, ADDRESS_B, Kit
from tests.serving import serving

TRADER = "acct-000297"


def _serve(folder: Path) -> Iterator[str]:
    handler = functools.partial(QuietHandler, directory=str(folder))
    with serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    kit = Kit(tmp_path_factory.mktemp("reserves-site"))
    kit.create()
    kit.standard_round()
    kit.ok("snapshot", "publish", "--key", str(kit.folder / "ops.key"), "--out",
           str(kit.folder / "log"), "--layout", "tiles")
    build_site([kit.folder / "log"], kit.folder / "site",
               (kit.folder / "ops.pub").read_text().strip())
    return kit


@pytest.fixture(scope="module")
def reserves_site(kit: Kit) -> Iterator[str]:
    yield from _serve(kit.folder / "site")


@pytest.fixture(scope="module")
def world_site(site_world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("receipts-site") / "site"
    build_site([site_world.tiled, site_world.directory], out, site_world.vkey)
    return out


@pytest.fixture(scope="module")
def world_served(world_site: Path) -> Iterator[str]:
    yield from _serve(world_site)


def rows(page: Any, selector: str) -> list[list[str]]:
    return [r.locator("td").all_inner_texts() for r in page.locator(f"{selector} tbody tr").all()]


def test_the_overview_lists_the_holdings_and_names_the_ledgers_figure(
        page: Any, reserves_site: str) -> None:
    page.goto(f"{reserves_site}/index.html")
    page.wait_for_selector("#reserves tbody tr")
    listed = rows(page, "#reserves")
    assert [r[:2] for r in listed] == [["USDT", "600.00"], ["USDT", "500.00"],
                                       ["ETH", "2.00000000"]]
    assert ADDRESS_A in listed[0][2] and "custodian acme-custody, account ACC-1" in listed[1][2]
    assert ADDRESS_B in listed[2][2] and "native coin" in listed[2][2]
    headers = page.locator("#snapshots thead th").all_inner_texts()
    assert "fund balance (ledger)" in headers and "reserves" not in headers
    assert "backstop-audit reserves --rpc" in page.locator("#h-reserves + p").inner_text()
    assert page.errors == []
    assert page.evaluate("window.__csp") == []


def test_the_holdings_signatures_verify_in_the_browser(page: Any, reserves_site: str,
                                                      kit: Kit) -> None:
    page.goto(f"{reserves_site}/verify.html")
    page.fill("#res-custodian", (kit.folder / "acme.pub").read_text())
    page.click("#res-verify")
    box = page.locator("#res-result .box")
    box.wait_for()
    assert box.inner_text().startswith(
        "VERIFIED: every holding's signature verified for the snapshot at log size 4"), \
        box.inner_text()
    assert rows(page, "#res-ratios") == [["ETH", "2.00000000", "2.00000000", "1.000000"],
                                         ["USDT", "1000.00", "1100.00", "1.100000"]]
    assert [r[4] for r in rows(page, "#res-holdings")] == ["verified"] * 3
    said = box.inner_text()
    assert "The balances on chain are not checked here" in said
    assert "backstop-audit reserves snapshots/4/snapshot.json --key verifier-key --rpc" in said
    scope = page.locator("#h-res-scope").locator("..").inner_text()
    assert "backstop-audit reserves --rpc" in scope
    assert page.errors == []
    assert page.evaluate("window.__csp") == []


def test_an_unpinned_or_wrong_custodian_key_fails_that_holding(page: Any, reserves_site: str,
                                                              kit: Kit) -> None:
    key = json.loads((kit.folder / "log" / "snapshots" / "4" / "snapshot.json").read_text()
                     )["holdings"][1]["key"]
    for pinned in ("", (kit.folder / "acme-other.pub").read_text()):
        page.goto(f"{reserves_site}/verify.html")
        page.fill("#res-custodian", pinned)
        page.click("#res-verify")
        box = page.locator("#res-result .box")
        box.wait_for()
        assert box.inner_text().splitlines()[0] == (
            f"FAILED: holdings[1]: key {key} is not pinned (--custodian-key) (and 1 more "
            "failure(s) above)")
        assert [r[4].split(":")[0] for r in rows(page, "#res-holdings")] == [
            "verified", "FAILED", "verified"]
        # USDT: 600.00 of 1000.00 signed for
        assert rows(page, "#res-ratios")[1] == ["USDT", "1000.00", "600.00", "0.600000"]
    assert page.errors == []


def test_a_site_without_holdings_says_so(page: Any, world_served: str) -> None:
    page.goto(f"{world_served}/index.html")
    page.wait_for_selector("#reserves p")
    assert page.locator("#reserves").inner_text().startswith(
        "These snapshots carry no proof of reserves")
    page.goto(f"{world_served}/verify.html")
    assert page.locator("#res-verify").is_disabled()
    assert page.errors == []


def verify_by_id(page: Any, url: str, account: str) -> None:
    page.goto(url)
    page.fill("#proof-account", account)
    page.click("#proof-verify")
    page.locator("#proof-result .box").wait_for()


def test_a_payout_receipt_downloaded_from_the_page_verifies_offline(
        page: Any, world_served: str, site_world: World, tmp_path: Path) -> None:
    last = site_world.sizes[-1]
    verify_by_id(page, f"{world_served}/verify.html", "acct-000006")
    listed = rows(page, "#receipts")
    assert len(listed) == 1 and listed[0][1:3] == ["payout to you", "102.49 USDT"]
    index = listed[0][0]
    with page.expect_download() as info:
        page.click("#receipts a.receipt")
    assert info.value.suggested_filename == f"demo-{index}.tlog-proof"
    saved = tmp_path / "receipt.tlog-proof"
    info.value.save_as(saved)
    result = CliRunner().invoke(audit, ["receipt", str(saved), "--key", site_world.vkey,
                                        "--json"])
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.output)
    assert (verdict["account"], verdict["amount"], verdict["type"], verdict["log_size"],
            verdict["index"]) == ("acct-000006", "102.49", "deficit_covered", last, int(index))
    assert page.errors == []
    assert page.evaluate("window.__csp") == []


def test_a_clawed_back_traders_receipts_add_up_to_their_clawbacks(
        page: Any, world_served: str, world_site: Path, site_world: World) -> None:
    verify_by_id(page, f"{world_served}/verify.html", TRADER)
    summary = page.locator("#receipts summary")
    count = len([i for i in json.loads((world_site / "data.js").read_text()
                                       .removeprefix("window.BACKSTOP_SITE = ")
                                       .removesuffix(";\n"))["receipts"]["items"]
                 if i[2] == TRADER])
    assert summary.inner_text() == (f"Your {count} payout(s) and clawback(s) in the log up to "
                                    f"size {site_world.sizes[-1]}, each with a receipt")
    if count > 10:  # folded: one click opens it
        summary.click()
    listed = rows(page, "#receipts")
    assert len(listed) == count
    assert {r[1] for r in listed} == {"clawback from you"}
    assert sum(Decimal(r[2].removesuffix(" USDT")) for r in listed) == Decimal("513.52")
    # every receipt the page links is a file of the site that backstop-audit accepts
    last = site_world.sizes[-1]
    for r in listed:
        path = world_site / "receipts" / str(last) / f"demo-{r[0]}.tlog-proof"
        result = CliRunner().invoke(audit, ["receipt", str(path), "--key", site_world.vkey])
        assert result.exit_code == 0, result.output
    assert page.errors == []


def test_a_trader_with_no_payout_or_clawback_has_no_receipt(page: Any, world_served: str,
                                                            site_world: World) -> None:
    data = json.loads((site_world.directory / "snapshot.json").read_text())
    assert data["fund"] == "demo"
    shard = next((site_world.tiled / "snapshots" / str(site_world.sizes[-1]) / "accounts")
                 .glob("all.json"))
    receipts = set(json.loads(shard.read_text())["accounts"])
    export = site_world.base / "log-export.jsonl"
    if not export.exists():
        from tests.e2e.site_world import backstop
        backstop("export", str(export), "--db", f"sqlite:///{site_world.base / 'ledger.sqlite'}")
    touched = {json.loads(line)["data"].get("account") for line in export.read_text().splitlines()
               if '"clawback_charged"' in line or '"deficit_covered"' in line}
    quiet = min(receipts - touched)
    verify_by_id(page, f"{world_served}/verify.html", quiet)
    assert page.locator("#receipts").inner_text().startswith(
        "No payout to you and no clawback from you in the log up to size")


def test_a_receipt_is_checked_on_the_page_too(page: Any, world_served: str,
                                              world_site: Path, site_world: World) -> None:
    """The receipt file chosen on the verify page: VERIFIED with the event it proves; its
    amount changed: FAILED, the inclusion proof no longer reaches the checkpoint's root."""
    import base64

    last = site_world.sizes[-1]
    [path] = [p for p in (world_site / "receipts" / str(last)).iterdir()
              if '"acct-000006"' in base64.b64decode(
                  p.read_text().split("\n")[1].removeprefix("extra ")).decode()]
    index = int(path.read_text().split("\n")[2].removeprefix("index "))
    origin = path.read_text().split("\n\n", 1)[1].split("\n", 1)[0]  # the checkpoint's own
    assert origin.startswith("backstop/demo/")  # derived from the operator's key (Origin)
    page.goto(f"{world_served}/verify.html")
    page.set_input_files("#receipt-file", str(path))
    page.wait_for_function("document.getElementById('receipt-input').value.length > 0")
    page.click("#receipt-verify")
    box = page.locator("#receipt-result .box")
    box.wait_for()
    assert box.inner_text().splitlines()[0] == (
        f"VERIFIED: a payout of 102.49 USDT (account acct-000006), event {index} of the log of "
        f"{last} events ({origin}), under a checkpoint the key in use signed.")
    lines = path.read_text().split("\n")
    entry = base64.b64decode(lines[1].removeprefix("extra ")).replace(b'"102.49"', b'"1024.90"')
    lines[1] = "extra " + base64.b64encode(entry).decode()
    page.fill("#receipt-input", "\n".join(lines))
    page.click("#receipt-verify")
    page.wait_for_function("document.querySelector('#receipt-result .box').innerText.startsWith('FAILED')")
    assert box.inner_text().splitlines()[0].startswith("FAILED: inclusion: root mismatch: computed ")
    assert page.errors == []
    assert page.evaluate("window.__csp") == []
