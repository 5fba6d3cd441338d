"""The site in a real browser: Debian's headless Chromium driven by Playwright, the site
served by a local http.server on a free port (and once from file://).

Skipped when Chromium or Playwright is missing, unless $BACKSTOP_REQUIRE_BROWSER is set (CI):
then a missing /usr/bin/chromium is installed the way CI installs it (`make browser`:
apt-get install chromium chromium-driver) and the tests run for real.
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
from tests.e2e.site_world import World
from tests.serving import serving

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(site_world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    build_site([site_world.tiled, site_world.directory], out, site_world.vkey)
    return out


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """The site over HTTP on 127.0.0.1, a free port, in a thread of this process."""
    handler = functools.partial(QuietHandler, directory=str(site))
    with serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)) as port:
        yield f"http://127.0.0.1:{port}"


def test_overview_opens_without_errors_and_draws_its_charts(page: Any, served: str,
                                                            site_world: World) -> None:
    page.goto(f"{served}/index.html")
    for chart in ("chart-balance", "chart-flows", "chart-coverage"):
        canvas = page.locator(f"#{chart} canvas")
        canvas.wait_for()
        box = canvas.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 100, chart
    # The canvas holds a drawn line: not every pixel is the same.
    colors = page.evaluate("""() => {
        const c = document.querySelector('#chart-balance canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const seen = new Set();
        for (let i = 0; i < d.length; i += 4 * 97) seen.add(d[i] + ',' + d[i+1] + ',' + d[i+2] + ',' + d[i+3]);
        return seen.size;
    }""")
    assert colors > 3
    rows = page.locator("#snapshots tbody tr")
    assert rows.count() == 4  # 3 tiled snapshots + 1 directory
    assert rows.first.locator("td").nth(1).inner_text() == str(site_world.sizes[-1])
    assert page.errors == []
    assert page.evaluate("window.__csp") == []


def test_events_filter_by_account_and_page(page: Any, served: str, site: Path) -> None:
    events = (site / "events.csv").read_text().splitlines()[1:]
    mine = [line for line in events if line.split(",")[4] == "acct-000042"]
    page.goto(f"{served}/index.html")
    page.wait_for_selector("#events tbody tr")
    assert page.locator("#events tbody tr").count() == 20
    pages = -(-len(events) // 20)
    assert page.locator("#events .pager span").inner_text() == \
        f"Page 1 of {pages} · {len(events)} events"
    page.locator("#events .pager button", has_text="Next").click()
    assert page.locator("#events .pager span").inner_text().startswith(f"Page 2 of {pages}")
    assert page.locator("#events tbody tr td").first.inner_text() == events[20].split(",")[0]
    page.fill("#filter-account", "acct-000042")
    accounts = page.locator("#events tbody tr td:nth-child(5)").all_inner_texts()
    assert accounts == ["acct-000042"] * min(20, len(mine))
    assert page.locator("#events .pager span").inner_text().endswith(f" · {len(mine)} events")
    page.select_option("#filter-market", "BTC-PERP")
    page.select_option("#filter-kind", "socialized loss")
    texts = page.locator("#events tbody tr td:nth-child(3)").all_inner_texts()
    assert set(texts) <= {"socialized loss"}
    assert page.errors == []


def test_a_real_account_proof_verifies(page: Any, served: str, site_world: World) -> None:
    account, proof = next(iter(site_world.proofs.items()))
    page.goto(f"{served}/verify.html")
    page.set_input_files("#proof-file", str(proof))
    page.click("#proof-verify")
    verdict = page.locator("#proof-result .box")
    verdict.wait_for()
    text = verdict.inner_text()
    assert text.startswith("VERIFIED"), text
    assert f"the totals of {account} are in the snapshot at log size {site_world.sizes[-1]}" in text
    page.click("#snaps-verify")
    page.wait_for_function("document.querySelectorAll('#snaps-result li').length === 4")
    assert page.locator("#snaps-result li .word").all_inner_texts() == ["VERIFIED"] * 4
    assert page.errors == []


def test_a_tampered_proof_fails_with_the_auditors_reason(page: Any, served: str,
                                                         site_world: World) -> None:
    proof = json.loads(next(iter(site_world.proofs.values())).read_text())
    proof["count"] += 1
    page.goto(f"{served}/verify.html")
    page.fill("#proof-input", json.dumps(proof))
    page.click("#proof-verify")
    verdict = page.locator("#proof-result .box")
    verdict.wait_for()
    first = verdict.inner_text().splitlines()[0]
    count = proof["count"]
    assert first == ("FAILED: This proof was made for another account tree than this "
                     "snapshot's: another snapshot's proof, or one that was changed.")
    # the auditor's own words, one click away
    reason = verdict.locator("details.technical code.reason")
    assert not reason.is_visible()
    verdict.locator("details.technical summary").click()
    assert reason.inner_text() == f"count: proof is for {count} accounts, snapshot has {count - 1}"
    assert page.errors == []


def test_a_pasted_wrong_key_fails_the_snapshots(page: Any, served: str) -> None:
    from ledger.service.signing import generate_signer

    page.goto(f"{served}/verify.html")
    page.fill("#key-input", generate_signer("stranger.example").verifier_key())
    page.click("#key-use")
    page.click("#snaps-verify")
    page.wait_for_function("document.querySelectorAll('#snaps-result li').length === 4")
    first = page.locator("#snaps-result li").first.inner_text()
    assert first.startswith("FAILED")
    assert first.endswith("snapshot signatures: 0 known key(s) verified, 1 required")


def test_consistency_of_the_last_link(page: Any, served: str) -> None:
    page.goto(f"{served}/verify.html")
    page.click("#cons-verify")
    verdict = page.locator("#cons-result .box")
    verdict.wait_for()
    assert verdict.inner_text().startswith("VERIFIED")


def test_csv_downloads(page: Any, served: str, site: Path) -> None:
    page.goto(f"{served}/index.html")
    with page.expect_download() as info:
        page.click("a[href='events.csv']")
    path = info.value.path()
    assert info.value.suggested_filename == "events.csv"
    assert Path(path).read_bytes() == (site / "events.csv").read_bytes()
    assert Path(path).read_text().startswith("index,time,kind,market,account,asset,amount,")


def test_works_from_file_urls(page: Any, site: Path) -> None:
    """Opened from disk: no server, the same pages and verifier."""
    page.goto((site / "verify.html").as_uri())
    page.click("#snaps-verify")
    page.wait_for_function("document.querySelectorAll('#snaps-result li').length === 4")
    assert page.locator("#snaps-result li .word").all_inner_texts() == ["VERIFIED"] * 4
    assert page.errors == []


def test_keyboard_reaches_the_content_and_the_file_chooser(page: Any, served: str) -> None:
    """Tab first lands on the skip link; the proof's file button opens the chooser on Enter."""
    # File choosers are intercepted from before the page loads: enabling that only inside
    # expect_file_chooser races with the key press (the chooser was sometimes missed).
    page.on("filechooser", lambda _: None)
    page.goto(f"{served}/verify.html")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#main"
    page.focus("#proof-choose")
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    assert chooser.value.element.get_attribute("id") == "proof-file"


@pytest.mark.parametrize("name", ["index.html", "verify.html"])
def test_the_content_security_policy_holds_and_nothing_violates_it(page: Any, served: str,
                                                                   site: Path, name: str) -> None:
    """Both pages work under their policy (no violation reported, over HTTP and from file://,
    the filter form's Enter included), and the policy is in force: an injected inline script
    does not run and is reported."""
    for url in (f"{served}/{name}", (site / name).as_uri()):
        page.goto(url)
        page.wait_for_selector("#snapshots tbody tr" if name == "index.html" else "#snaps-verify")
        if name == "index.html":
            page.press("#filter-account", "Enter")  # the form must not submit (form-action)
            assert page.evaluate("location.href") == url
        assert page.evaluate("window.__csp") == [], url
        assert page.errors == [], url
    page.evaluate("""() => { const s = document.createElement('script');
        s.textContent = 'window.__ran = true'; document.body.append(s); }""")
    page.wait_for_function("window.__csp.length > 0")
    assert page.evaluate("window.__ran === undefined")
    assert page.evaluate("window.__csp") == ["script-src-elem inline"]
    assert any("Content Security Policy" in e for e in page.errors)


# ------------------------------------------------------------------ a trader's own account

TRADER = "acct-000297"  # paid fees and was clawed back: two of the three totals are not zero
TOTAL_KINDS = {"fee_inflow": "fees", "deficit_covered": "payouts",
               "clawback_charged": "clawbacks"}


def totals_from_the_log(world: World, account: str, size: int) -> dict[str, str]:
    """The account's fees, payouts and clawbacks summed from the first `size` events of the
    log as exported (not from the account tree the page checks)."""
    from decimal import Decimal

    from tests.e2e.site_world import backstop

    out = world.base / "log-export.jsonl"
    if not out.exists():
        backstop("export", str(out), "--db", f"sqlite:///{world.base / 'ledger.sqlite'}")
    sums = dict.fromkeys(TOTAL_KINDS.values(), Decimal("0.00"))
    for line in out.read_text().splitlines()[:size]:
        event = json.loads(line)
        kind = TOTAL_KINDS.get(event["type"])
        if kind and event["data"].get("account") == account:
            sums[kind] += Decimal(event["data"]["amount"])
    return {k: str(v) for k, v in sums.items()}


def verify_by_id(page: Any, url: str, account: str, nonce: str = "") -> Any:
    page.goto(url)
    page.fill("#proof-account", account)
    if nonce:
        page.fill("#proof-nonce", nonce)
    page.click("#proof-verify")
    verdict = page.locator("#proof-result .box")
    verdict.wait_for()
    return verdict


def test_a_trader_with_only_their_account_id_reaches_verified_with_their_totals(
        page: Any, served: str, site_world: World) -> None:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    last = site_world.sizes[-1]
    verdict = verify_by_id(page, f"{served}/verify.html", TRADER)
    text = verdict.inner_text()
    assert text.startswith(f"VERIFIED: the totals of {TRADER} are in the snapshot at log size "
                           f"{last}."), text
    rows = [row.locator("td").all_inner_texts() for row in page.locator("#proof-totals tbody tr").all()]
    # Hand-checked against the facts: acct-000297 paid 6.70 USDT of trading-fee shares, had
    # no deficit covered, and was clawed back 513.52 USDT over the socialized losses.
    assert rows == [["USDT", "6.70", "0.00", "513.52"]]
    assert totals_from_the_log(site_world, TRADER, last) == {
        "fees": "6.70", "payouts": "0.00", "clawbacks": "513.52"}
    headers = page.locator("#proof-totals thead th").all_inner_texts()
    assert headers == ["asset", "Fees you paid into the fund", "Payouts the fund made for you",
                       "Clawbacks charged to you"]
    # the shard came from the site itself, and nothing else was asked for
    assert f"{served}/snapshots/{last}/accounts/all.js" in requests
    assert all(url.startswith(served + "/") for url in requests), requests
    scope = page.locator("aside[aria-labelledby=h-scope]").inner_text()
    assert "backstop-audit replay" in scope and "backstop-audit reserves" in scope
    assert page.errors == []
    assert page.evaluate("window.__csp") == []


def test_a_payout_and_the_nonce_the_operator_gave(page: Any, served: str,
                                                  site_world: World) -> None:
    last = site_world.sizes[-1]
    shard = json.loads((site_world.tiled / "snapshots" / str(last) / "accounts" / "all.json")
                       .read_text())
    nonce = shard["accounts"]["acct-000006"]["nonce"]
    verdict = verify_by_id(page, f"{served}/verify.html", "acct-000006", nonce)
    assert verdict.inner_text().startswith("VERIFIED"), verdict.inner_text()
    rows = [row.locator("td").all_inner_texts() for row in page.locator("#proof-totals tbody tr").all()]
    assert rows == [["USDT", "0.00", "102.49", "0.00"]]  # one deficit covered, 102.49 USDT
    other = ("0" if nonce[0] != "0" else "1") + nonce[1:]
    verdict = verify_by_id(page, f"{served}/verify.html", "acct-000006", other)
    assert verdict.inner_text().splitlines()[0] == (
        "FAILED: The published proof of “acct-000006” carries another nonce than the one the "
        "operator gave you: it is not the proof of your account as you were told it.")
    assert page.errors == []


def test_a_wrong_account_id_says_check_the_id(page: Any, served: str,
                                              site_world: World) -> None:
    last = site_world.sizes[-1]
    verdict = verify_by_id(page, f"{served}/verify.html", "acct-999999")
    assert verdict.inner_text().splitlines()[0] == (
        f"ERROR: Account “acct-999999” is not in the snapshot at log size {last} (143 accounts). "
        "Check the id: it must be exactly as the exchange shows it. An account with no fees, "
        "payouts or clawbacks yet is not in the tree.")
    verdict.locator("details.technical summary").click()
    assert verdict.locator("code.reason").inner_text() == \
        "account shard: account 'acct-999999' is not in this shard"
    verdict = verify_by_id(page, f"{served}/verify.html", TRADER.upper())
    assert "(did you mean “acct-000297”?)" in verdict.inner_text()
    assert page.errors == []


def test_a_proof_for_another_snapshot_names_its_log_size(page: Any, served: str,
                                                         site_world: World) -> None:
    assert site_world.old_proof is not None
    first, last = site_world.sizes[0], site_world.sizes[-1]
    page.goto(f"{served}/verify.html")
    page.fill("#proof-input", site_world.old_proof.read_text())
    page.focus("#proof-account")  # leaving the box: the page picks the proof's own snapshot,
    assert page.input_value("#proof-snapshot") == "0"  # ... and the trader another one
    page.select_option("#proof-snapshot", label=next(
        o for o in page.locator("#proof-snapshot option").all_inner_texts()
        if o.startswith(f"log size {last} ")))
    page.click("#proof-verify")
    verdict = page.locator("#proof-result .box")
    verdict.wait_for()
    assert verdict.inner_text().splitlines()[0] == (
        f"FAILED: This proof is for log size {first}, not for the snapshot chosen (log size "
        f"{last}). Choose “log size {first}” in the Snapshot list to check it against its own "
        "snapshot.")
    verdict.locator("details.technical summary").click()
    assert verdict.locator("code.reason").inner_text().startswith("root: proof is for account root ")
    assert page.errors == []


def test_a_shard_dropped_without_an_account_id_asks_for_it(page: Any, served: str,
                                                           site_world: World) -> None:
    last = site_world.sizes[-1]
    shard = site_world.tiled / "snapshots" / str(last) / "accounts" / "all.json"
    page.goto(f"{served}/verify.html")
    page.set_input_files("#proof-file", str(shard))
    page.click("#proof-verify")
    verdict = page.locator("#proof-result .box")
    verdict.wait_for()
    assert verdict.inner_text().splitlines()[0] == (
        "ERROR: This file is a shard: it holds the proofs of 143 accounts. Type your account id "
        "above to find yours in it.")
    page.fill("#proof-account", TRADER)
    page.click("#proof-verify")
    page.wait_for_function("document.querySelector('#proof-result .box .word')"
                           ".textContent === 'VERIFIED'")
    rows = [row.locator("td").all_inner_texts() for row in page.locator("#proof-totals tbody tr").all()]
    assert rows == [["USDT", "6.70", "0.00", "513.52"]]
    assert page.errors == []


def test_an_older_snapshot_without_shards_says_where_to_get_them(page: Any, served: str,
                                                                 site_world: World) -> None:
    first, last = site_world.sizes[0], site_world.sizes[-1]
    page.goto(f"{served}/verify.html")
    page.select_option("#proof-snapshot", "0")
    assert page.locator("#proof-where").inner_text() == (
        f"This site does not carry the account proofs of this snapshot (only of log size {last}): "
        "use a proof file below.")
    page.fill("#proof-account", TRADER)
    page.click("#proof-verify")
    verdict = page.locator("#proof-result .box")
    verdict.wait_for()
    assert verdict.inner_text().splitlines()[0] == (
        f"ERROR: This site does not carry the account proofs of the snapshot at log size {first} "
        f"(it carries those of log size {last}). Ask the operator for yours (backstop prove "
        f"account ID --size {first}), or take the shard from the published log: "
        f"snapshots/{first}/accounts/, and drop it below.")


def test_verify_by_id_from_a_file_url(page: Any, site: Path) -> None:
    """From disk the shard loads as a script too (fetch() would be refused on file://)."""
    verdict = verify_by_id(page, (site / "verify.html").as_uri(), TRADER)
    assert verdict.inner_text().startswith("VERIFIED"), verdict.inner_text()
    assert page.errors == []
    assert page.evaluate("window.__csp") == []


def test_the_verified_proof_saved_from_the_page_verifies_with_backstop_audit(
        page: Any, served: str, site: Path, site_world: World, tmp_path: Path) -> None:
    """The proof the page checked, taken away: `backstop-audit account` says VERIFIED on it."""
    from click.testing import CliRunner

    from auditor.cli import main as audit

    last = site_world.sizes[-1]
    verify_by_id(page, f"{served}/verify.html", TRADER)
    with page.expect_download() as info:
        page.click("#proof-save")
    assert info.value.suggested_filename == f"account-proof-{TRADER}-{last}.json"
    saved = tmp_path / "proof.json"
    info.value.save_as(saved)
    proof = json.loads(saved.read_text())
    assert proof["account"] == TRADER and proof["log_size"] == last
    assert proof["totals"] == {"USDT": {"fees": "6.70", "payouts": "0.00", "clawbacks": "513.52"}}
    result = CliRunner().invoke(audit, ["account", str(saved), "--snapshot",
                                        str(site / "snapshots" / str(last) / "snapshot.json"),
                                        "--key", site_world.vkey])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "VERIFIED", result.output
    assert "  totals: USDT fees 6.70, payouts 0.00, clawbacks 513.52\n" in result.output
    assert page.errors == []
    assert page.evaluate("window.__csp") == []


def test_a_proof_of_another_account_than_the_id_typed(page: Any, served: str,
                                                      site_world: World) -> None:
    account, proof = next(iter(site_world.proofs.items()))
    page.goto(f"{served}/verify.html")
    page.fill("#proof-account", TRADER)
    page.fill("#proof-input", proof.read_text())
    page.click("#proof-verify")
    verdict = page.locator("#proof-result .box")
    verdict.wait_for()
    assert verdict.inner_text().splitlines()[0] == (
        f"ERROR: This proof is of account “{account}”, not of the id typed above (“{TRADER}”): "
        "clear the id, or use your own proof.")
    assert page.errors == []


def test_the_overview_leads_a_trader_to_their_account(page: Any, served: str) -> None:
    page.goto(f"{served}/index.html")
    page.click("text=Check your own totals")
    page.wait_for_url(f"{served}/verify.html#h-account")
    assert page.evaluate("document.activeElement.id") == "proof-account"
    assert page.errors == []
