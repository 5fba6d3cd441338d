"""`backstop follow`: run as a service, following a NATS JetStream stream of exchange facts."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from auditor.formats.durations import Duration
from ledger.cli.options import InputExit, now, resolve_fund, store_options
from ledger.service.application import Ledger

if TYPE_CHECKING:  # the bus client is imported when `follow` runs, not by every command
    from ledger.service.follow import Follower
    from ledger.service.followbatch import Batch

def make_logger(log_format: str) -> Any:
    """log(event, **fields): one line per event on stderr, text or one JSON object."""
    def log(event: str, **fields: Any) -> None:
        stamp = now()
        if log_format == "json":
            line = json.dumps({"time": stamp, "event": event, **fields}, sort_keys=True,
                              default=str)
        else:
            line = " ".join([stamp, event, *(f"{k}={v}" for k, v in fields.items())])
        click.echo(line, err=True)
        sys.stderr.flush()
    return log


class _LibraryLog(logging.Handler):
    """Libraries' warnings and errors (SQLAlchemy's pool on a killed connection, nats-py) as
    events of the follower's own log, one line each, instead of Python's bare stderr lines
    that would break a JSON log."""

    def __init__(self, log: Any) -> None:
        super().__init__(logging.WARNING)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        fields = {"logger": record.name, "level": record.levelname.lower(),
                  "message": " ".join(record.getMessage().split())}
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            fields["error"] = " ".join(f"{type(error).__name__}: {error}".split())
        self.log("library_log", **fields)


def _env(name: str) -> dict[str, Any]:
    return {"envvar": f"BACKSTOP_{name}", "show_envvar": True}


@click.command("follow")
@click.option("--servers", default="nats://127.0.0.1:4222", show_default=True, metavar="URL",
              **_env("NATS_URL"), help="NATS server(s), comma-separated.")
@click.option("--stream", required=True, **_env("STREAM"),
              help="JetStream stream holding the facts (one JSON fact per message).")
@click.option("--subject", default=None, **_env("SUBJECT"),
              help="Subject of the facts in the stream (default: the stream's only subject).")
@click.option("--durable", default="backstop", show_default=True, **_env("DURABLE"),
              help="Durable consumer name; followers sharing it share the work.")
@click.option("--dead-letter", required=True, metavar="SUBJECT", **_env("DEAD_LETTER"),
              help="Where refused messages go, with the reason in the Backstop-Reason "
                   "header; a stream must store this subject.")
@click.option("--batch-size", default=1000, show_default=True,
              type=click.IntRange(1, 100_000), **_env("BATCH_SIZE"),
              help="Facts per committed batch, at most.")
@click.option("--max-latency", default=0.2, show_default=True,
              type=click.FloatRange(0.001, 3600), metavar="SECONDS", **_env("MAX_LATENCY"),
              help="Longest wait from a batch's first message to its commit.")
@click.option("--max-ack-pending", default=None, type=click.IntRange(1), **_env("MAX_ACK_PENDING"),
              help="Messages delivered but not acked, at most (bounds memory; set when the "
                   "consumer is created; default 4 x --batch-size).")
@click.option("--ack-wait", default=30.0, show_default=True, type=click.FloatRange(1),
              metavar="SECONDS", **_env("ACK_WAIT"),
              help="Redelivery delay of an unacked message (set when the consumer is created).")
@click.option("--reanchor", is_flag=True, default=False, **_env("REANCHOR"),
              help="The stream was deleted and created again: follow it from its first "
                   "message (facts already recorded are recognised by their ids). Without "
                   "it, follow refuses such a stream (exit 2); with it, a stream that was not "
                   "created again is followed as usual.")
@click.option("--metrics-port", default=None, type=click.IntRange(0, 65535),
              **_env("METRICS_PORT"),
              help="Serve /metrics (Prometheus) and /healthz on this port (default: off).")
@click.option("--metrics-host", default="127.0.0.1", show_default=True,
              **_env("METRICS_HOST"), help="Address the metrics endpoint listens on.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, **_env("LOG_FORMAT"),
              help="json: one JSON object per line on stderr.")
@click.option("--publish-every", type=Duration(), metavar="DURATION", default=None,
              **_env("PUBLISH_EVERY"),
              help="Sign a snapshot this often (30m, 1h, 1h30m; README, \"Durations\") into "
                   "OUT: a dated folder per run and OUT/latest (needs --key and --out).")
@click.option("--key", "key_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, **_env("KEY"), help="Signing key for --publish-every.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              **_env("PUBLISH_DIR"), help="Publication folder for --publish-every.")
@store_options
def follow(servers: str, stream: str, subject: str | None, durable: str, dead_letter: str,
           batch_size: int, max_latency: float, max_ack_pending: int | None, ack_wait: float,
           reanchor: bool, metrics_port: int | None, metrics_host: str, log_format: str,
           publish_every: int | None, key_path: Path | None, out: Path | None,
           ledger: Ledger, fund_name: str | None) -> None:
    """Follow a NATS JetStream stream of exchange facts into the fund, exactly once.

    Each message is one fact, as a line of an import file. Facts are committed in batches
    (--batch-size, --max-latency) in stream order and acked only once committed, so a crash
    loses nothing and a redelivered or duplicated message is recorded once. A refused
    message (bad field, conflict, refused by the fund's rules) goes to --dead-letter with
    `stream sequence N: field: reason`, writes nothing and does not stop the stream.

    SIGTERM or SIGINT: the open batch is committed and acked, then exit 0. Every option can
    be given as the environment variable shown; see README, "Running as a service".
    """
    from ledger.service.follow import FollowConfig, Follower, FollowError

    if publish_every is not None and (key_path is None or out is None):
        raise InputExit("--publish-every needs --key and --out")
    name = resolve_fund(ledger, fund_name)
    log = make_logger(log_format)
    config = FollowConfig(fund=name, stream=stream, durable=durable, dead_letter=dead_letter,
                          servers=servers, subject=subject, batch_size=batch_size,
                          max_latency=max_latency, max_ack_pending=max_ack_pending,
                          ack_wait=ack_wait, reanchor=reanchor)
    publisher = None
    if publish_every is not None:
        assert key_path is not None and out is not None
        from ledger.service.signing import load_signer

        publisher = _Publisher(ledger, name, load_signer(key_path), out, publish_every, log)
    recent: deque[tuple[float, int]] = deque(maxlen=600)

    def on_batch(batch: Batch) -> None:
        recent.append((time.monotonic(), batch.report.recorded))

    def rate() -> float:
        horizon = time.monotonic() - 60
        facts = sum(n for t, n in recent if t >= horizon)
        return facts / 60.0

    follower = Follower(ledger, config, log=log, on_batch=on_batch,
                        on_idle=publisher.tick if publisher else None)
    if metrics_port is not None:
        from ledger.service.health import serve

        server = serve(metrics_host, metrics_port, follower.stats, lambda: follower.turned,
                       lambda: publisher.last if publisher else 0.0, rate,
                       lambda: (publisher.failures, publisher.error) if publisher else (0, ""))
        log("metrics", url=f"http://{metrics_host}:{server.server_port}/metrics")
    library = _LibraryLog(log)
    logging.getLogger().addHandler(library)
    try:
        stats = asyncio.run(_run(follower))
    except FollowError as error:
        raise InputExit(str(error)) from None
    finally:
        logging.getLogger().removeHandler(library)
    click.echo(f"followed {stream} to position {stats.position}: {stats.facts} facts "
               f"recorded, {stats.duplicates} already recorded, {stats.dead_letters} "
               f"dead-lettered in {stats.batches} batches")


async def _run(follower: Follower) -> Any:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, follower.stop)
    return await follower.run()


class _Publisher:
    """Publishes a scheduled snapshot when one is due (called between batches)."""

    def __init__(self, ledger: Ledger, fund: str, signer: Any, out: Path, every: int,
                 log: Any) -> None:
        self.ledger, self.fund, self.signer, self.out = ledger, fund, signer, out
        self.every, self.log = every, log
        self.due = time.monotonic()  # the first run right away
        self.last = 0.0
        self.failures = 0  # runs failed in a row (/healthz: ledger.service.health)
        self.error = ""  # the last failed run's reason

    def tick(self) -> None:
        """Publish if due; a failed run is logged and tried again at the next period."""
        from ledger.service.schedule import publish_dated, rebuild_site

        if time.monotonic() < self.due:
            return
        self.due = time.monotonic() + self.every
        try:
            run = publish_dated(self.ledger, self.fund, self.signer, self.out, now())
        except Exception as error:
            self.failures += 1
            self.error = f"{type(error).__name__}: {error}"
            self.log("publish_failed", reason=self.error, failures=self.failures)
            return
        self.failures = 0
        if run is None:
            self.log("publish_skipped", reason="no new events since the last snapshot")
            return
        self.last = time.time()
        self.log("published", folder=str(run.folder), size=run.size,
                 previous=run.previous_size)
        try:
            self.log("site_built", folder=str(rebuild_site(self.out)))
        except Exception as error:
            self.log("site_failed", reason=f"{type(error).__name__}: {error}")
