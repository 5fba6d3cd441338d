"""Pulling messages from a JetStream pull consumer in bulk, for the bus follower
(ledger.service.follow).

nats-py's `PullSubscription.fetch` waits for each message of a batch on its own (a uuid, a
task and a `wait_for` per message) and `Msg.metadata` parses the reply subject again at each
access: together about half of the follower's time outside the database (issue 28). Here the
pull requests are published by hand (`$JS.API.CONSUMER.MSG.NEXT`, the documented JetStream
API), each with a reply subject of its own under one wildcard subscription whose callback only
appends (a message comes under its own subject; the status that ends a request, under the
request's); `fetch` hands over what has arrived, and the stream sequence and receive time of a
message are read from its reply subject once (`Delivered`).

A request ends when all the messages it asked for came, when the server ends it (a status
message on its reply subject: 404 nothing pending, 408 expired, 409 the consumer's limits), or,
should that status be lost to a reconnection, a second after it expired. Messages that arrive
after `fetch` returned (a request still open) wait for the next `fetch`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass
from typing import NamedTuple

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

API_PREFIX = "$JS.API"  # nats-py's default, as `nc.jetstream()` uses it
STATUS = "Status"
DESCRIPTION = "Description"
HEARTBEAT = "100"
ENDED = {"404", "408"}  # nothing pending (no_wait), the request expired: the normal ends
EXPIRY_SLACK = 1.0  # seconds past its expiry before a request with no status is forgotten
# Delivered messages held by the client at most (nats-py's defaults are larger; the consumer's
# max_ack_pending bounds what the server sends anyway).
PENDING_MESSAGES = 1 << 20
PENDING_BYTES = 256 << 20


class PullRefused(nats.errors.Error):
    """The server refused a pull request (409: the consumer deleted, its limits reached...):
    the follower logs it and waits before asking again, as for the bus failing."""


class Delivered(NamedTuple):
    """A message of the followed stream, its stream sequence and receive time read once
    (a tuple: a frozen dataclass costs several times as much to make, per message)."""

    sequence: int
    data: bytes
    time: float  # the stream's receive time, epoch seconds
    message: Msg


def delivered(message: Msg) -> Delivered:
    """The message with its stream sequence and receive time, from its reply subject
    (`$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ns>.<pending>`,
    or the longer form with a domain and an account hash)."""
    tokens = Msg.Metadata._get_metadata_fields(message.reply)  # raises NotJSMessageError
    if len(tokens) == 9:
        sequence, stamp = tokens[5], tokens[7]
    else:
        sequence, stamp = tokens[Msg.Ack.StreamSeq], tokens[Msg.Ack.Timestamp]
    return Delivered(int(sequence), message.data, int(stamp) / 1e9, message)


@dataclass
class _Request:
    remaining: int  # messages it may still bring
    until: float  # time.monotonic() after which it is forgotten


class Puller:
    """Bulk fetches from the durable pull consumer `consumer` of `stream`."""

    def __init__(self, nc: Client, stream: str, consumer: str) -> None:
        self._nc = nc
        self._next = f"{API_PREFIX}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._inbox = ""
        self._subscription: Subscription | None = None
        self._buffer: list[Msg] = []
        self._requests: dict[str, _Request] = {}
        self._numbers = itertools.count()
        self._arrived = asyncio.Event()
        self._refusal: str | None = None  # the server's last refusal, raised by `fetch`

    async def start(self) -> None:
        """Subscribe to the replies of this puller's requests."""
        self._inbox = self._nc.new_inbox()
        self._subscription = await self._nc.subscribe(
            f"{self._inbox}.*", cb=self._received, pending_msgs_limit=PENDING_MESSAGES,
            pending_bytes_limit=PENDING_BYTES)

    async def _received(self, message: Msg) -> None:
        status = message.headers.get(STATUS) if message.headers else None
        if not status:
            self._buffer.append(message)
            # A message comes under its own subject, not its request's: the server fills
            # the requests in the order they came (dicts keep that order).
            for subject, request in self._requests.items():
                request.remaining -= 1
                if request.remaining <= 0:
                    del self._requests[subject]
                break
        elif status != HEARTBEAT:  # the server ended the request (404, 408, 409)
            self._requests.pop(message.subject, None)
            if status not in ENDED:
                headers = message.headers or {}
                self._refusal = f"{status} {headers.get(DESCRIPTION, '')}".strip()
        self._arrived.set()

    def wake(self) -> None:
        """End a `fetch` waiting for messages now (the follower is stopping)."""
        self._arrived.set()

    def _outstanding(self) -> int:
        now = time.monotonic()
        for subject in [s for s, r in self._requests.items() if r.until < now]:
            del self._requests[subject]
        return sum(r.remaining for r in self._requests.values())

    async def fetch(self, count: int, wait: float) -> list[Delivered]:
        """Up to `count` messages; when none has arrived, asks for them and waits at most
        `wait` seconds for the first (then returns what came, perhaps nothing). PullRefused
        when the server refused the request and nothing came."""
        if not self._buffer:
            short = count - self._outstanding()
            if short > 0:
                await self._request(short, wait)
            self._arrived.clear()
            if not self._buffer:
                try:
                    await asyncio.wait_for(self._arrived.wait(), max(wait, 0.0))
                except TimeoutError:
                    return []
        if not self._buffer and self._refusal is not None:
            refusal, self._refusal = self._refusal, None
            raise PullRefused(f"pull request refused: {refusal}")
        taken, self._buffer = self._buffer[:count], self._buffer[count:]
        return [delivered(m) for m in taken]

    async def _request(self, count: int, wait: float) -> None:
        reply = f"{self._inbox}.{next(self._numbers)}"
        expires = max(wait, 0.01)
        self._requests[reply] = _Request(count, time.monotonic() + expires + EXPIRY_SLACK)
        body = {"batch": count, "expires": int(expires * 1e9)}
        await self._nc.publish(self._next, json.dumps(body).encode(), reply=reply)

    async def close(self) -> None:
        """Stop receiving (what is still buffered is not acked: it comes back)."""
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None
