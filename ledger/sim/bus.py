"""Publishing facts to a NATS JetStream subject: `backstop simulate --to-nats`, the benchmark.

Each fact is one message (its JSONL line without the newline). Publishes are pipelined and
every one is confirmed by the stream (a JetStream publish ack) before this returns, so a
caller knows the facts are stored. `rate` paces them (facts per second) for demos and the
lag benchmark; 0 sends as fast as the stream acknowledges.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

import nats

WINDOW = 2000  # publishes in flight before waiting for their acks (bounds memory)


async def publish_lines(lines: Iterable[bytes], *, servers: str, subject: str,
                        rate: float = 0.0,
                        on_sent: Callable[[int, float], None] | None = None) -> int:
    """Publish each line to `subject`; returns how many. `on_sent(i, epoch)` is called as
    message i leaves (the lag benchmark pairs it with the commit time)."""
    nc = await nats.connect(servers, connect_timeout=5)
    try:
        js = nc.jetstream()
        pending: list[Any] = []
        start = time.monotonic()
        count = 0
        for line in lines:
            if rate > 0:
                due = start + count / rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            pending.append(await js.publish_async(subject, line.rstrip(b"\r\n")))
            if on_sent is not None:
                on_sent(count, time.time())
            count += 1
            if len(pending) >= WINDOW:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        return count
    finally:
        await nc.close()
