"""Tests that need a real component (PostgreSQL, a chain node, NATS, a browser) skip locally
when it is missing, and fail instead when CI says it must be there."""

from __future__ import annotations

import os

import pytest


def skip_or_fail(reason: str | None, env: str) -> None:
    """Nothing when `reason` is None (the component is there); else skip the test for that
    reason, or fail it when $`env` (e.g. BACKSTOP_REQUIRE_PG, set by CI) is set."""
    if reason is None:
        return
    if os.environ.get(env):
        pytest.fail(f"{reason}; {env} is set")
    pytest.skip(reason)
