"""Helpers for tests against a real NATS JetStream server: a stream of their own per test
(unique names, deleted afterwards), publishing facts, reading dead letters, consumer state;
and a NATS server of a test's own, to stop and start again.

Every call opens its own short connection in its own event loop, so tests stay synchronous.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import subprocess
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
_counter = itertools.count()


def _run(url: str, action: Callable[[Any], Awaitable[T]]) -> T:
    import nats

    async def main() -> T:
        async def quiet(error: Exception) -> None:
            """nats-py logs each failed attempt with a traceback; the caller reports it."""

        # nats-py retries a first connection while attempts remain (0 means forever): one retry.
        nc = await asyncio.wait_for(nats.connect(url, connect_timeout=3, max_reconnect_attempts=1,
                                                 allow_reconnect=False, error_cb=quiet),
                                    timeout=10)
        try:
            return await action(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(main())


def jetstream_reason(url: str) -> str | None:
    """None when JetStream answers at `url`, else why not."""
    try:
        _run(url, lambda js: js.account_info())
    except Exception as error:
        return f"NATS JetStream unreachable at {url}: {type(error).__name__}: {error}"
    return None


@dataclass(frozen=True)
class Bus:
    """One test's stream (facts on `subject`) and dead-letter stream."""

    url: str
    stream: str
    subject: str
    dead_stream: str
    dead_letter: str
    durable: str

    def publish(self, payloads: Iterable[bytes]) -> list[int]:
        """Publish each payload to the facts subject; their stream sequences."""
        async def action(js: Any) -> list[int]:
            futures = [await js.publish_async(self.subject, p) for p in payloads]
            return [(await f).seq for f in futures]
        return _run(self.url, action)

    def dead_letters(self) -> list[tuple[str, str, bytes]]:
        """(reason header, sequence header, payload) of every dead letter, in order."""
        async def action(js: Any) -> list[tuple[str, str, bytes]]:
            info = await js.stream_info(self.dead_stream)
            found = []
            for seq in range(1, int(info.state.last_seq or 0) + 1):
                message = await js.get_msg(self.dead_stream, seq)
                headers = message.headers or {}
                found.append((headers.get("Backstop-Reason", ""),
                              headers.get("Backstop-Stream-Sequence", ""), message.data or b""))
            return found
        return _run(self.url, action)

    def consumer(self) -> tuple[int, int]:
        """(messages not yet delivered, delivered but not acked) of the durable consumer."""
        async def action(js: Any) -> tuple[int, int]:
            info = await js.consumer_info(self.stream, self.durable)
            return int(info.num_pending or 0), int(info.num_ack_pending or 0)
        return _run(self.url, action)

    def hold(self, count: int, *, nak: bool, ack_wait: float = 1.0) -> list[int]:
        """Take `count` messages from the durable consumer as another instance would, and
        nak them (redelivered at once) or leave them unacked (redelivered after ack_wait).
        Creates the consumer as the follower would. Returns their stream sequences."""
        async def action(js: Any) -> list[int]:
            from nats.js import api

            config = api.ConsumerConfig(durable_name=self.durable, ack_wait=ack_wait,
                                        ack_policy=api.AckPolicy.EXPLICIT,
                                        filter_subject=self.subject, max_ack_pending=4000)
            sub = await js.pull_subscribe(self.subject, durable=self.durable,
                                          stream=self.stream, config=config)
            messages = await sub.fetch(count, timeout=5)
            for message in messages:
                if nak:
                    await message.nak()
            await sub.unsubscribe()
            return [m.metadata.sequence.stream for m in messages]
        return _run(self.url, action)

    def recreate(self) -> None:
        """Delete the facts stream (and its consumers) and create it again under its name:
        its sequences start from 1 again."""
        async def action(js: Any) -> None:
            await js.delete_stream(self.stream)
            await js.add_stream(name=self.stream, subjects=[self.subject])
        _run(self.url, action)

    def created(self) -> str:
        """The facts stream's creation time, as the follower records it (ISO 8601)."""
        async def action(js: Any) -> str:
            return str((await js.stream_info(self.stream)).created.isoformat())
        return _run(self.url, action)

    def consumers(self) -> list[str]:
        """Names of the facts stream's consumers."""
        async def action(js: Any) -> list[str]:
            return [c.name for c in await js.consumers_info(self.stream)]
        return _run(self.url, action)

    def delete_dead_stream(self) -> None:
        """Delete the dead-letter stream (an operator's mistake): its subject is stored
        nowhere."""
        _run(self.url, lambda js: js.delete_stream(self.dead_stream))

    def add_dead_stream(self) -> None:
        _run(self.url, lambda js: js.add_stream(name=self.dead_stream,
                                                subjects=[self.dead_letter]))

    def delete(self) -> None:
        async def action(js: Any) -> None:
            for name in (self.stream, self.dead_stream):
                with contextlib.suppress(Exception):  # already gone
                    await js.delete_stream(name)
        _run(self.url, action)


def make_bus(url: str) -> Bus:
    """Create a uniquely named facts stream and dead-letter stream."""
    tag = f"t{os.getpid()}_{next(_counter)}"
    bus = Bus(url=url, stream=f"FACTS_{tag}", subject=f"facts.{tag}",
              dead_stream=f"DEAD_{tag}", dead_letter=f"dead.{tag}", durable=f"backstop_{tag}")

    async def action(js: Any) -> None:
        await js.add_stream(name=bus.stream, subjects=[bus.subject])
        await js.add_stream(name=bus.dead_stream, subjects=[bus.dead_letter])
    _run(url, action)
    return bus


@contextlib.contextmanager
def silent_listener(url: str, subject: str) -> Iterator[list[bytes]]:
    """A plain NATS subscriber on `subject` that never answers, in a thread of its own: a
    JetStream publish there (no stream stores it) waits for an ack that never comes, as on
    a slow bus. Yields the payloads it has received so far."""
    import nats

    received: list[bytes] = []
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def listen() -> None:
        nc = await nats.connect(url)
        state["loop"], state["stop"] = asyncio.get_running_loop(), asyncio.Event()

        async def take(message: Any) -> None:
            received.append(message.data)
        await nc.subscribe(subject, cb=take)
        await nc.flush()
        ready.set()
        await state["stop"].wait()
        await nc.close()

    thread = threading.Thread(target=asyncio.run, args=(listen(),), daemon=True)
    thread.start()
    if not ready.wait(10):
        raise AssertionError(f"the silent listener on {subject} did not start")
    try:
        yield received
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(timeout=10)


# A server of the test's own (to stop and restart it): Debian's nats-server.
NATS_SERVER = "/usr/sbin/nats-server"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 just now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_nats(port: int, store: Path, *extra: str) -> subprocess.Popen[bytes]:
    """A NATS server with JetStream of the test's own, storing in `store`."""
    return subprocess.Popen([NATS_SERVER, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd",
                             str(store), *extra], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
