"""Fixtures the follower's tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.bus import Bus, make_bus


@pytest.fixture
def bus(nats_server: str) -> Iterator[Bus]:
    """A stream (and dead-letter stream) of this test's own on the real NATS server."""
    created = make_bus(nats_server)
    yield created
    created.delete()
