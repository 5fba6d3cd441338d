"""The follower's health and metrics endpoint (Prometheus text format, prometheus-client).

    GET /metrics   backstop_follow_* gauges and counters (below)
    GET /healthz   200 "ok" while the follower's loop is turning and scheduled publishing
                   works, else 503 with the reason (one line)

Served on a local port by a threaded server (a thread per connection: an idle or slow client
cannot hold up the others); every value is read from the follower's totals when scraped, so
the follower's loop never waits for the endpoint.

Unhealthy: the loop has not turned for HEALTHY_WITHIN seconds, or the last
PUBLISH_FAILURES_UNHEALTHY scheduled publishing runs (`--publish-every`) all failed; a
successful run (or one with nothing new to sign) makes it healthy again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

from ledger.service.follow import FollowStats

HEALTHY_WITHIN = 30.0  # seconds since the loop last turned for /healthz to answer 200
PUBLISH_FAILURES_UNHEALTHY = 3  # scheduled publishing runs failed in a row: /healthz 503


def health(turned_ago: float, publish_failures: int, publish_error: str) -> str | None:
    """None when healthy, else the reason /healthz gives (one line)."""
    if turned_ago >= HEALTHY_WITHIN:
        return f"stalled: the follower's loop has not turned for {turned_ago:.0f} s"
    if publish_failures >= PUBLISH_FAILURES_UNHEALTHY:
        return (f"publishing failing: the last {publish_failures} scheduled runs failed "
                f"({publish_error})")
    return None


class _Totals(Collector):
    """Turns the follower's running totals into metric families at scrape time."""

    def __init__(self, stats: FollowStats, snapshot: Callable[[], float],
                 rate: Callable[[], float]) -> None:
        self.stats, self.snapshot, self.rate = stats, snapshot, rate

    def collect(self) -> Iterable[Any]:
        s = self.stats
        yield GaugeMetricFamily("backstop_follow_lag_messages",
                                "Messages not yet delivered or not yet acked", value=s.pending)
        yield GaugeMetricFamily("backstop_follow_lag_seconds",
                                "Seconds since the last commit when messages are pending",
                                value=(time.time() - max(s.last_commit, s.started))
                                if s.pending else 0.0)
        yield GaugeMetricFamily("backstop_follow_facts_per_second",
                                "Facts recorded per second over the last minute",
                                value=self.rate())
        yield GaugeMetricFamily("backstop_follow_last_committed_sequence",
                                "Stream sequence of the last committed message",
                                value=s.position)
        yield GaugeMetricFamily("backstop_follow_last_commit_timestamp_seconds",
                                "Unix time of the last committed batch", value=s.last_commit)
        yield GaugeMetricFamily("backstop_follow_last_snapshot_timestamp_seconds",
                                "Unix time of the last scheduled snapshot (0: none yet)",
                                value=self.snapshot())
        for name, help_text, value in (
                ("facts", "Facts recorded", s.facts),
                ("duplicates", "Messages whose fact was already recorded", s.duplicates),
                ("dead_letters", "Messages sent to the dead-letter subject", s.dead_letters),
                ("batches", "Batches committed", s.batches),
                ("events", "Events written", s.events)):
            yield CounterMetricFamily(f"backstop_follow_{name}", help_text, value=value)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged (the follower's own log stays one event per line)."""


def serve(host: str, port: int, stats: FollowStats, heartbeat: Callable[[], float],
          snapshot: Callable[[], float], rate: Callable[[], float],
          publishing: Callable[[], tuple[int, str]] = lambda: (0, "")) -> WSGIServer:
    """Start the endpoint in a daemon thread; returns the server (its port is
    `server.server_port`, useful with port 0). `publishing()` gives the scheduled
    publisher's failed runs in a row and the last one's reason."""
    registry = CollectorRegistry()
    registry.register(_Totals(stats, snapshot, rate))
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/healthz":
            problem = health(time.monotonic() - heartbeat(), *publishing())
            start_response("200 OK" if problem is None else "503 Service Unavailable",
                           [("Content-Type", "text/plain; charset=utf-8")])
            return [b"ok\n" if problem is None else f"{problem}\n".encode()]
        return metrics(environ, start_response)

    server = make_server(host, port, app, server_class=ThreadingWSGIServer,
                         handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
