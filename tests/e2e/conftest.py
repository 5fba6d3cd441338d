"""Fixtures of the site's end-to-end tests: one small real publication per session, and
the Node.js and Chromium they need (skipped when absent, failed when
$BACKSTOP_REQUIRE_BROWSER is set, as CI sets it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.site_world import World, build_world
from tests.required import skip_or_fail

CHROMIUM = Path("/usr/bin/chromium")


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
