"""Screenshots of a built site's pages (docs/site-*.png), with Debian's headless Chromium.

    python web/screenshots.py SITE ACCOUNT [OUT_DIR [CUSTODIAN_KEY_FILE]]

The verify page is shot after verifying every snapshot and ACCOUNT by its id alone (from
the shards the site carries). With a custodian's verifier key file (the demo's
demo-out/reserves/custodian.pub), also its reserves section after checking the holdings
(docs/site-reserves.png). Needs the `browser` extra (Playwright) and /usr/bin/chromium.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


def main(site: Path, account: str, out: Path, custodian: Path | None = None) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for name, width, height in (("overview", 1280, 900), ("overview-phone", 390, 2000),
                                    ("verify", 1280, 900)):
            page = browser.new_page(viewport={"width": width, "height": height},
                                    device_scale_factor=1)
            page.goto((site / ("verify.html" if name == "verify" else "index.html")).as_uri())
            if name == "verify":
                page.click("#snaps-verify")
                page.fill("#proof-account", account)
                page.click("#proof-verify")
                page.wait_for_selector("#proof-result .box")
                page.click("#cons-verify")
                page.wait_for_selector("#cons-result .box")
            else:
                page.wait_for_selector("#chart-coverage canvas")
            # The phone's shot is its first two screens; the others, the whole page.
            page.screenshot(path=str(out / f"site-{name}.png"), full_page="phone" not in name)
            page.close()
        if custodian is not None:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
            page.goto((site / "verify.html").as_uri())
            page.fill("#res-custodian", custodian.read_text())
            page.click("#res-verify")
            page.wait_for_selector("#res-result .box")
            page.locator("section[aria-labelledby=h-reserves]").screenshot(
                path=str(out / "site-reserves.png"))
            page.close()
        browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), sys.argv[2], Path(sys.argv[3] if len(sys.argv) > 3 else "docs"),
         Path(sys.argv[4]) if len(sys.argv) > 4 else None)
