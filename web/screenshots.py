"""Screenshots of a built site's pages (docs/site-*.png), with Debian's headless Chromium.

    python web/screenshots.py SITE ACCOUNT [OUT_DIR]

The verify page is shot after verifying every snapshot and ACCOUNT by its id alone (from
the shards the site carries). Needs the `browser` extra (Playwright) and /usr/bin/chromium.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


def main(site: Path, account: str, out: Path) -> None:
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
        browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), sys.argv[2], Path(sys.argv[3] if len(sys.argv) > 3 else "docs"))
