"""The follower's /healthz and /metrics endpoint (issue 21): served to every client at once,
and unhealthy while scheduled publishing keeps failing; real sockets, a real follower."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from ledger.cli.main import main
from ledger.service.follow import FollowStats
from ledger.service.health import PUBLISH_FAILURES_UNHEALTHY, serve
from tests.bus import Bus
from tests.following import Running, init
from tests.processes import wait_for


def get(url: str) -> tuple[int, bytes]:
    """(status, body) of a GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_an_idle_connection_does_not_hold_up_healthz_or_metrics() -> None:
    """A client connects and sends nothing; /healthz and /metrics still answer at once (a
    single-threaded server would wait on the silent one: these GETs would time out)."""
    server = serve("127.0.0.1", 0, FollowStats(position=7), time.monotonic,
                   lambda: 0.0, lambda: 0.0)
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=5):
            assert get(f"{base}/healthz") == (200, b"ok\n")
            status, body = get(f"{base}/metrics")
            assert status == 200
            assert b"backstop_follow_last_committed_sequence 7.0\n" in body
    finally:
        server.shutdown()
        server.server_close()


def test_healthz_turns_unhealthy_while_publishing_keeps_failing_and_recovers(
        tmp_path: Path, bus: Bus) -> None:
    """--out lies under a regular file, so every scheduled run fails: after 3 failed runs in
    a row /healthz answers 503 with the reason. The file is removed: the next run publishes
    and /healthz is 200 again."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    init(url, tmp_path)
    key = tmp_path / "key"
    assert CliRunner().invoke(main, ["keygen", "example.com/backstop", "--out",
                                     str(key)]).exit_code == 0
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    out = blocker / "pub"
    follower = Running(url, bus, tmp_path / "follow.log", "--publish-every", "1s",
                       "--key", str(key), "--out", str(out), "--metrics-port", "0")
    follower.until(lambda: follower.events("metrics"), "the metrics endpoint")
    healthz = str(follower.events("metrics")[0]["url"]).replace("/metrics", "/healthz")
    follower.until(lambda: get(healthz)[0] == 503, "/healthz to turn unhealthy")
    failed = follower.events("publish_failed")
    assert len(failed) >= PUBLISH_FAILURES_UNHEALTHY
    assert [e["failures"] for e in failed[:3]] == [1, 2, 3]
    reason = f"NotADirectoryError: [Errno 20] Not a directory: '{out}'"
    assert failed[0]["reason"] == reason
    status, body = get(healthz)
    runs = int(body.split()[4])  # failed runs so far: still counting
    assert runs >= PUBLISH_FAILURES_UNHEALTHY
    assert (status, body.decode()) == (
        503, f"publishing failing: the last {runs} scheduled runs failed ({reason})\n")
    blocker.unlink()
    follower.until(lambda: follower.events("published"), "a successful run")
    wait_for(lambda: get(healthz) == (200, b"ok\n"), "/healthz healthy again")
    follower.stop()
