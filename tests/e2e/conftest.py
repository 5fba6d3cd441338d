"""Fixtures of the site's end-to-end tests: one small real publication per session, and
the Node.js and Chromium they need (skipped when absent, failed when
$BACKSTOP_REQUIRE_BROWSER is set, as CI sets it)."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.site_world import World, build_world
from tests.required import skip_or_fail

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


def require(what: str, present: bool) -> None:
    """Skip (or, under $BACKSTOP_REQUIRE_BROWSER, fail) when `what` is missing."""
    skip_or_fail(None if present else f"{what} is missing (make browser web installs it)",
                 "BACKSTOP_REQUIRE_BROWSER")


@pytest.fixture(scope="session")
def site_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """fixtures/crash-small.jsonl published in three tiled snapshots and one directory."""
    return build_world(tmp_path_factory.mktemp("site-world"))


@pytest.fixture(scope="session")
def node() -> str:
    """The node executable."""
    path = shutil.which("node")
    require("Node.js (node)", path is not None)
    assert path is not None
    return path


# The browser tests' fixtures (tests/e2e/test_site_browser.py, test_site_reserves_browser.py).


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists() and os.environ.get("BACKSTOP_REQUIRE_BROWSER"):
        subprocess.run(["make", "-C", str(ROOT), "browser"], check=True, timeout=1800)
    require(str(CHROMIUM), CHROMIUM.exists())
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require("Playwright for Python (pip install 'backstop[browser]')", False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page that records console errors and uncaught exceptions."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.errors = []
    tab.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: tab.errors.append(str(e)))
    # Every Content-Security-Policy violation, as the page's own event reports it (the console
    # error above says the same; this one names the directive).
    tab.add_init_script("""window.__csp = [];
        document.addEventListener('securitypolicyviolation',
            (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));""")
    yield tab
    context.close()
