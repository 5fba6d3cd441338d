"""The follower's bulk pulls (ledger.service.followpull) against the real NATS server: what
a fetch hands over, in stream order, and the stream sequence and receive time read from the
reply subject in both of its forms."""

from __future__ import annotations

import asyncio
import json

import nats
from nats.aio.msg import Msg
from nats.js import api

from ledger.service.followpull import Puller, PullRefused, delivered
from tests.bus import Bus


def test_the_sequence_and_receive_time_come_from_either_form_of_the_reply_subject() -> None:
    short = Msg(_client=None, subject="facts.x", data=b"{}",  # type: ignore[arg-type]
                reply="$JS.ACK.FACTS.backstop.1.42.7.1700000000500000000.3")
    long = Msg(_client=None, subject="facts.x", data=b"{}",  # type: ignore[arg-type]
               reply="$JS.ACK.hub.ACCHASH.FACTS.backstop.2.43.8.1700000001500000000.0.r4nd")
    assert delivered(short)[:3] == (42, b"{}", 1700000000.5)
    assert delivered(long)[:3] == (43, b"{}", 1700000001.5)


def test_fetches_hand_over_what_came_in_stream_order_and_nothing_when_the_stream_is_idle(
        bus: Bus) -> None:
    """5 messages; fetches of 3: 1-3, then 4-5; a third waits 0.2 s and returns nothing.
    After acking 5 under ack policy `all`, nothing is pending or unacked."""
    assert bus.publish([b"m1", b"m2", b"m3", b"m4", b"m5"]) == [1, 2, 3, 4, 5]

    async def main() -> tuple[list[list[int]], list[bytes], tuple[int, int]]:
        nc = await nats.connect(bus.url)
        try:
            js = nc.jetstream()
            await js.add_consumer(bus.stream, api.ConsumerConfig(
                durable_name=bus.durable, ack_policy=api.AckPolicy.ALL,
                filter_subject=bus.subject))
            puller = Puller(nc, bus.stream, bus.durable)
            await puller.start()
            got: list[list[int]] = []
            data: list[bytes] = []
            first = await puller.fetch(3, 5.0)
            while len(first) < 3:  # a fetch hands over what has come so far
                first += await puller.fetch(3 - len(first), 5.0)
            second = await puller.fetch(2, 5.0)
            while len(second) < 2:
                second += await puller.fetch(2 - len(second), 5.0)
            idle = await puller.fetch(3, 0.2)
            for batch in (first, second, idle):
                got.append([d.sequence for d in batch])
                data += [d.data for d in batch]
            await second[-1].message.ack_sync()
            info = await js.consumer_info(bus.stream, bus.durable)
            await puller.close()
            return got, data, (int(info.num_pending or 0), int(info.num_ack_pending or 0))
        finally:
            await nc.close()

    got, data, consumer = asyncio.run(main())
    assert got == [[1, 2, 3], [4, 5], []]
    assert data == [b"m1", b"m2", b"m3", b"m4", b"m5"]
    assert consumer == (0, 0)


def test_a_refused_pull_request_is_raised_with_the_servers_reason(bus: Bus) -> None:
    """The consumer takes batches of 2 at most: a fetch of 3 is refused (409), named."""
    bus.publish([b"m1"])

    async def main() -> str:
        nc = await nats.connect(bus.url)
        try:
            # nats-py's ConsumerConfig has no max_batch: the JetStream API request itself
            config = {"durable_name": bus.durable, "ack_policy": "all",
                      "filter_subject": bus.subject, "max_batch": 2}
            reply = await nc.request(
                f"$JS.API.CONSUMER.CREATE.{bus.stream}.{bus.durable}",
                json.dumps({"stream_name": bus.stream, "config": config}).encode(), timeout=5)
            assert "error" not in json.loads(reply.data), reply.data
            puller = Puller(nc, bus.stream, bus.durable)
            await puller.start()
            try:
                await puller.fetch(3, 5.0)
            except PullRefused as error:
                return str(error)
            return "not refused"
        finally:
            await nc.close()

    assert asyncio.run(main()) == "pull request refused: 409 Exceeded MaxRequestBatch of 2"
