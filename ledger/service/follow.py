"""`backstop follow`: exchange facts from a NATS JetStream stream into the fund, exactly once.

The facts are the import's JSON records, one per message. A durable pull consumer with
explicit acks delivers them; they are committed in batches through the import use case
(`importer.commit_facts`), and a message is acked only once the batch holding it committed.

Over 400 lines for now: the consumer loop, its stream-identity checks and its retries share
one state; splitting the loop from the retries is left to the layering work (issue 22).

Exactly once. The stream position of the last handled message is stored in the same
transaction as the batch (ledger.store.cursors). A message at or below it is acked and not
applied again (it was committed, or dead-lettered by a committed batch); a fact published
twice under one exchange id is recorded once by the import's idempotency. After a crash,
messages held unacked by the dead process are read straight from the stream by sequence
("gap fill") so the facts still go in stream order, and their late redelivery is a no-op.

The stream's identity. The position is stored with the stream's creation time and checked
(ledger.service.streamid) at start, while following and before a redelivered message is
acked: a stream deleted and created again numbers from 1 again, and its messages must not be
taken for handled ones. On a mismatch the follower exits 2 with one line; `--reanchor`
re-anchors the position in the stream as it is now.

Bad input. A message that fails the import's checks, or a conflict (same id, other fields),
or a fact the fund's rules refuse, is published to the dead-letter subject with the one line
`stream sequence N: field: reason` (the import's `line N: ...`), before its batch's
transaction (ledger.service.followbatch), with a message id so a redone batch does not
publish it twice (within the dead-letter stream's duplicate window, 2 minutes by default).
The rest of the batch commits in stream order; the bad message writes nothing and is acked.

Failures. A batch the bus failed under (a dead letter not stored) or the database failed
under (its connection lost) rolls back, nothing acked, and is tried again after a growing
delay (ledger.service.backoff); the database gets DB_ATTEMPTS tries in a row, then the
follower exits 2 with one line. The NATS URL's password never appears in a message or log.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import nats
from eventsourcing.persistence import InterfaceError as StoreInterfaceError
from eventsourcing.persistence import OperationalError as StoreOperationalError
from nats.aio.client import Client
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError
from sqlalchemy.exc import InterfaceError, OperationalError

from ledger.domain.fund import Fund
from ledger.service.application import Ledger
from ledger.service.backoff import Backoff
from ledger.service.followbatch import Batch, Item, Parsed, commit_batch, parse_items
from ledger.service.followpull import Delivered, Puller
from ledger.service.streamid import StreamState, mismatch, reanchored, refusal
from ledger.store.cursors import (
    Cursor,
    CursorMoved,
    anchor_cursor,
    load_cursor,
    upgrade_cursors,
)
from ledger.store.dburl import open_error, redact_servers, scrub_servers

IDLE_POLL = 0.25  # seconds a fetch waits when nothing is pending: bounds the reaction to stop
STALL = 1.0  # seconds without a commit before an idle follower reads the stream directly
CONNECT_WAIT = 15.0  # seconds to reach the bus at start; then exit (the service manager retries)
DEAD_LETTER_TIMEOUT = 5.0  # seconds for the dead-letter stream to store a batch's letters
DB_ATTEMPTS = 8  # database failures in a row (0.5 s to 30 s apart, ~62 s) before exit 2
# The bus failing a batch (or timing out), and the database connection lost: retried.
BUS_FAILED = (nats.errors.Error, TimeoutError)
DB_LOST = (OperationalError, InterfaceError, StoreOperationalError, StoreInterfaceError)
REASON_HEADER = "Backstop-Reason"
SEQUENCE_HEADER = "Backstop-Stream-Sequence"


class FollowError(RuntimeError):
    """The follower cannot go on: the bus is not set up as it needs, the stream is not the
    one its position counts in, or the database stays away (one line: what, and the way
    out)."""


@dataclass(frozen=True)
class FollowConfig:
    """Where to read, where bad messages go, and how facts are batched."""

    fund: str
    stream: str
    durable: str
    dead_letter: str
    servers: str = "nats://127.0.0.1:4222"
    subject: str | None = None  # the consumer's filter; default: all of the stream
    batch_size: int = 1000
    max_latency: float = 0.2  # seconds from a batch's first message to its commit, at most
    max_ack_pending: int | None = None  # default 4 batches: room for a second follower
    ack_wait: float = 30.0
    reanchor: bool = False  # a stream created again: follow it from its first message


@dataclass
class FollowStats:
    """Running totals, read by the metrics endpoint and printed at the end."""

    position: int = 0
    facts: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    batches: int = 0
    events: int = 0
    acked: int = 0
    pending: int = 0  # messages the consumer has not delivered or not had acked
    last_commit: float = 0.0
    started: float = field(default_factory=time.time)


class Follower:
    """One follower process: `await run()` until `stop()` is called."""

    def __init__(self, ledger: Ledger, config: FollowConfig,
                 log: Callable[..., None] = lambda event, **fields: None,
                 on_batch: Callable[[Batch], None] | None = None,
                 on_idle: Callable[[], None] | None = None) -> None:
        self.ledger = ledger
        self.config = config

        def masked(event: str, **fields: object) -> None:  # no NATS password in the logs
            log(event, **{k: self._mask(v) if isinstance(v, str) else v
                          for k, v in fields.items()})
        self.log = masked
        self.on_batch = on_batch
        self.on_idle = on_idle  # between batches, in the follower's thread (publishing)
        self.stats = FollowStats()
        self._stopping = asyncio.Event()
        self._fund: Fund | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._js: JetStreamContext | None = None
        self._subject = config.subject
        self._created = ""  # the followed stream's creation time: its identity
        self._bus_backoff = Backoff()
        self._db_backoff = Backoff()
        self.turned = time.monotonic()  # when the loop last turned (the health check)
        self._puller: Puller | None = None
        self._ack_all = False  # the consumer's ack policy is `all` (else explicit)

    def _mask(self, text: str) -> str:
        """`text` with every --servers URL's password shown as *** (as database URLs)."""
        return scrub_servers(text, self.config.servers)

    def stop(self) -> None:
        """Finish the open batch (commit and ack it), then return from `run`."""
        self._stopping.set()
        if self._puller is not None:
            self._puller.wake()

    async def run(self) -> FollowStats:
        """Consume until stopped; returns the totals."""
        self._loop = asyncio.get_running_loop()
        nc = await self._connect()
        try:
            self._js = nc.jetstream()
            try:
                info = await self._anchor(self._js)
                puller = await self._subscribe(nc, self._js, info)
                self._fund = await asyncio.to_thread(self.ledger.get_fund, self.config.fund)
            except DB_LOST as error:
                raise FollowError(self._mask(str(open_error(self.ledger.url, error)))) from None
            self.log("started", stream=self.config.stream, durable=self.config.durable,
                     position=self.stats.position)
            last_info = 0.0
            # One batch commits (in a thread) while the next is fetched: the bus's share of
            # the work overlaps the database's. Commits stay one at a time, in stream order.
            inflight: asyncio.Task[None] | None = None
            try:
                while not self._stopping.is_set():
                    self.turned = time.monotonic()
                    messages = await self._gather(puller)
                    # Decoded while the batch before commits (the database's waits let it run).
                    parsed = (await asyncio.to_thread(
                        parse_items, [(m.sequence, m.data) for m in messages])
                        if messages else {})
                    if inflight is not None:
                        await inflight
                        inflight = None
                    if self.on_idle is not None:
                        await asyncio.to_thread(self.on_idle)
                    if messages:
                        inflight = asyncio.create_task(self._handle(messages, parsed))
                    else:
                        await self._catch_up()
                    if time.monotonic() - last_info > 1.0:
                        last_info = time.monotonic()
                        await self._refresh_pending()
                        await self._check_stream()
            finally:
                if inflight is not None:  # finish the open batch: commit, then ack
                    await inflight
        finally:
            with contextlib.suppress(Exception):  # closing: nothing uncommitted was acked
                await nc.close()
        self.log("stopped", position=self.stats.position, facts=self.stats.facts,
                 dead_letters=self.stats.dead_letters)
        return self.stats

    # -- the bus ----------------------------------------------------------------------------

    async def _connect(self) -> Client:
        """Connect to --servers; FollowError (one line, no password) when no server answers
        within CONNECT_WAIT or a server refuses the credentials."""
        where = redact_servers(self.config.servers)
        last: list[str] = []  # the latest failure while connecting
        refusal: list[str] = []  # the server's refusal, kept: a reset may follow it
        refused = asyncio.Event()
        connected = False

        async def bus_error(error: Exception) -> None:  # one log line, not a traceback
            reason = f"{type(error).__name__}: {error}"
            self.log("bus_error", reason=reason)
            if not connected:
                last[:] = [reason]
                if (isinstance(error, nats.errors.AuthorizationError)
                        or "authorization violation" in str(error).lower()):
                    refusal[:] = [reason]
                    refused.set()  # nats-py would retry wrong credentials for ever

        # nats-py retries a first connection forever: bounded here
        connect = asyncio.ensure_future(nats.connect(
            self.config.servers, connect_timeout=5, max_reconnect_attempts=-1,
            allow_reconnect=True, error_cb=bus_error))
        refusal_seen = asyncio.ensure_future(refused.wait())
        try:
            await asyncio.wait({connect, refusal_seen}, timeout=CONNECT_WAIT,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            refusal_seen.cancel()
        if not connect.done():
            connect.cancel()
            with contextlib.suppress(BaseException):
                await connect
            if refused.is_set():
                raise FollowError(f"--servers {where}: the server refused the credentials "
                                  f"({self._mask(refusal[-1])})")
            seen = f" (last: {self._mask(last[-1])})" if last else ""
            raise FollowError(f"--servers {where}: no NATS server answered within "
                              f"{CONNECT_WAIT:g} s{seen}")
        try:
            nc = connect.result()
        except Exception as error:
            raise FollowError(f"--servers {where}: cannot connect "
                              f"({self._mask(f'{type(error).__name__}: {error}')})") from None
        connected = True
        return nc

    async def _stream_info(self, js: JetStreamContext) -> api.StreamInfo:
        try:
            return await js.stream_info(self.config.stream)
        except NotFoundError:
            raise FollowError(f"--stream {self.config.stream}: no such stream on "
                              f"{redact_servers(self.config.servers)}") from None

    async def _anchor(self, js: JetStreamContext) -> api.StreamInfo:
        """Load the stored position and check it counts in the stream as it is now
        (ledger.service.streamid): recorded when new, re-anchored with --reanchor, else
        FollowError. Nothing is acked before this. Returns the stream's info."""
        config = self.config
        while True:
            info = await self._stream_info(js)
            state = _state(info)
            cursor = await asyncio.to_thread(self._load_cursor)
            reason = mismatch(cursor, state)
            if reason is not None and not config.reanchor:
                raise FollowError(refusal(config.stream, reason))
            new = (reanchored(cursor, state) if reason is not None
                   else Cursor(cursor.position, state.created))
            try:
                if new != cursor:
                    await asyncio.to_thread(anchor_cursor, self.ledger.engine, config.fund,
                                            config.stream, cursor, new)
            except CursorMoved:  # another follower stored it first: look again
                continue
            if reason is not None:
                self.log("reanchored", reason=reason, old_position=cursor.position,
                         position=new.position, stream_created=new.created)
            elif config.reanchor:
                self.log("reanchor_unneeded", position=new.position,
                         stream_created=new.created)
            self._created = state.created
            self.stats.position = new.position
            return info

    def _load_cursor(self) -> Cursor:
        upgrade_cursors(self.ledger.engine)  # a database of a version before the identity
        return load_cursor(self.ledger.engine, self.config.fund, self.config.stream)

    async def _check_stream(self, info: api.StreamInfo | None = None) -> None:
        """FollowError when the stream followed was deleted and created again meanwhile."""
        assert self._js is not None
        if info is None:
            try:
                info = await self._js.stream_info(self.config.stream)
            except BUS_FAILED:  # gone, or the bus is away: looked at again in a second
                return
        state = _state(info)
        if state.created != self._created:
            raise FollowError(refusal(self.config.stream, mismatch(
                Cursor(self.stats.position, self._created), state) or "changed"))

    async def _subscribe(self, nc: Client, js: JetStreamContext,
                         stream: api.StreamInfo) -> Puller:
        """The durable consumer (created with ack policy `all` when new) and a puller on it."""
        config = self.config
        if self._subject is None:
            subjects = stream.config.subjects or []
            if len(subjects) != 1:
                raise FollowError(f"--subject: stream {config.stream} has subjects "
                                  f"{subjects}; name the facts' subject")
            self._subject = subjects[0]
        try:
            await js.find_stream_name_by_subject(config.dead_letter)
        except NotFoundError:
            raise FollowError(f"--dead-letter {config.dead_letter}: no stream stores this "
                              "subject, so dead letters would be lost; add one (README, "
                              "'Running as a service')") from None
        try:
            info = await js.consumer_info(config.stream, config.durable)
        except NotFoundError:
            # Ack policy `all`: one ack per batch, for every message up to it, as the stored
            # position counts (what is at or below it is handled, whoever held it).
            info = await js.add_consumer(config.stream, api.ConsumerConfig(
                name=config.durable, durable_name=config.durable,
                ack_policy=api.AckPolicy.ALL, deliver_policy=api.DeliverPolicy.ALL,
                filter_subject=self._subject, ack_wait=config.ack_wait,
                max_ack_pending=config.max_ack_pending or 4 * config.batch_size))
        # A consumer made by an earlier version (explicit acks) keeps its policy: JetStream
        # does not change it, and acking each message is as correct, only slower.
        self._ack_all = info.config.ack_policy == api.AckPolicy.ALL
        puller = Puller(nc, config.stream, config.durable)
        await puller.start()
        self._puller = puller
        return puller

    async def _gather(self, puller: Puller) -> list[Delivered]:
        """Up to batch_size messages, waiting at most max_latency after the first."""
        batch: list[Delivered] = []
        deadline: float | None = None
        while len(batch) < self.config.batch_size:
            if self._stopping.is_set():  # stop: commit what is in hand
                break
            wait = IDLE_POLL
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0.001:
                    break
            try:
                got = await puller.fetch(self.config.batch_size - len(batch), wait)
            except (TimeoutError, nats.errors.TimeoutError):  # nats-py raises either
                got = []
            except nats.errors.Error as error:  # reconnecting: commit what is in hand, or wait
                self.log("bus_error", reason=f"{type(error).__name__}: {error}")
                if not batch:
                    await asyncio.sleep(IDLE_POLL)
                break
            if got and deadline is None:
                deadline = time.monotonic() + self.config.max_latency
                self.log("batch_open", first=got[0].sequence)
            batch.extend(got)
            if not got and deadline is None:
                break
        return batch

    async def _refresh_pending(self) -> None:
        assert self._js is not None
        with contextlib.suppress(Exception):  # metrics only
            info = await self._js.consumer_info(self.config.stream, self.config.durable)
            self.stats.pending = int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    async def _stream_messages(self, start: int, end: int,
                               skip: set[int]) -> list[Item]:
        """Messages of the followed subject with start <= sequence <= end, read from the
        stream by sequence (those in `skip` are already in hand)."""
        assert self._js is not None and self._subject is not None
        found: list[Item] = []
        sequence = start
        while sequence <= end:
            try:
                raw = await self._js.get_msg(self.config.stream, seq=sequence,
                                             subject=self._subject, next=True)
            except NotFoundError:
                break
            if raw.seq is None or raw.seq > end:
                break
            if raw.seq not in skip:
                found.append((raw.seq, raw.data or b"", _stamp(raw.time)))
            sequence = raw.seq + 1
        return found

    async def _catch_up(self) -> None:
        """Nothing delivered: take what the stream holds past the position straight from
        the stream (a restart while a dead process still holds messages unacked)."""
        assert self._js is not None
        since = max(self.stats.last_commit, self.stats.started)
        if time.time() - since < STALL:  # in-flight messages of a live follower: let it
            return
        position = self.stats.position
        try:
            info = await self._js.stream_info(self.config.stream)
            await self._check_stream(info)  # never read a stream created again by sequence
            last = int(info.state.last_seq or 0)
            if last <= position:
                return
            items = await self._stream_messages(
                position + 1, min(last, position + self.config.batch_size), set())
        except BUS_FAILED:  # reconnecting: try again when idle next
            return
        if not items:
            return
        self.log("catch_up", first=items[0][0], last=items[-1][0])
        await self._guarded(self._catch_up_commit(items), "catch-up")

    async def _catch_up_commit(self, items: list[Item]) -> None:
        try:
            await self._commit_items(items, [])
        except CursorMoved:  # another follower was faster
            await self._reread_position()

    async def _reread_position(self) -> None:
        """Take the stored position after another follower moved it; FollowError when it
        was re-anchored in a stream created again (this process follows the old one)."""
        cursor = await asyncio.to_thread(load_cursor, self.ledger.engine, self.config.fund,
                                         self.config.stream)
        if cursor.created != self._created:
            raise FollowError(f"--stream {self.config.stream}: another follower re-anchored "
                              f"the position in the stream created at {cursor.created}; "
                              "restart this follower")
        self.stats.position = cursor.position
        self._fund = None

    async def _guarded(self, step: Awaitable[None], what: str) -> None:
        """Run one batch step. The bus failing it or the database connection lost rolls it
        back (nothing acked; its messages come back) and the next step waits a growing
        delay; DB_ATTEMPTS database failures in a row end the follower (FollowError)."""
        try:
            await step
        except BUS_FAILED as error:
            delay = self._bus_backoff.delay()
            self.log("bus_error", reason=f"{what} rolled back: {type(error).__name__}: {error}",
                     retry_in=delay)
        except DB_LOST as error:
            self._fund = None
            delay = self._db_backoff.delay()
            line = str(open_error(self.ledger.url, error)).removeprefix("cannot open ")
            if self._db_backoff.failures >= DB_ATTEMPTS:
                raise FollowError(f"{line} (still failing after {DB_ATTEMPTS} attempts; "
                                  "nothing uncommitted was acked)") from None
            self.log("db_error", reason=f"{what} rolled back: {line}", retry_in=delay)
        else:
            self._bus_backoff.reset()
            self._db_backoff.reset()
            return
        with contextlib.suppress(TimeoutError):  # stop() ends the wait
            await asyncio.wait_for(self._stopping.wait(), delay)

    async def _handle(self, messages: list[Delivered],
                      parsed: dict[int, Parsed] | None = None) -> None:
        """Commit the new messages among `messages` (with any gap before them), then ack.

        When the bus or the database fails meanwhile (a dead letter not stored, a gap not
        read, the connection lost), the batch rolls back and nothing is acked: its messages
        come back and are done again, after a growing delay (`_guarded`)."""
        await self._guarded(self._handle_once(messages, parsed or {}), "batch")

    async def _handle_once(self, messages: list[Delivered], parsed: dict[int, Parsed]) -> None:
        while True:
            position = self.stats.position
            done = [m for m in messages if m.sequence <= position]
            # In stream order, each sequence once (a redelivery may overtake its first copy).
            fresh = list({m.sequence: m for m in sorted(
                (m for m in messages if m.sequence > position),
                key=lambda m: m.sequence)}.values())
            if done:  # redelivered: acked only while the position still counts in this stream
                await self._confirm_position()
            await self._ack(done)  # committed or dead-lettered before: redelivered
            if not fresh:
                return
            items = [(m.sequence, m.data, m.time) for m in fresh]
            held = {sequence for sequence, _, _ in items}
            missing = [s for s in range(position + 1, items[-1][0]) if s not in held]
            if missing:  # held by another (or a dead) consumer instance: read them here
                gap = await self._stream_messages(missing[0], missing[-1], held)
                self.log("gap_fill", first=missing[0], count=len(gap))
                items = sorted(items + gap)
            try:
                await self._commit_items(items, fresh, parsed)
                return
            except CursorMoved:  # another follower committed first: start from its position
                await self._reread_position()
                messages = fresh

    async def _confirm_position(self) -> None:
        """FollowError unless the stored position is still at or past ours, in the stream we
        follow (nobody re-anchored it): only then is a message at or below it handled."""
        cursor = await asyncio.to_thread(load_cursor, self.ledger.engine, self.config.fund,
                                         self.config.stream)
        if cursor.created != self._created or cursor.position < self.stats.position:
            await self._reread_position()  # raises when re-anchored
            raise FollowError(f"--stream {self.config.stream}: the stored position went back "
                              f"from {self.stats.position} to {cursor.position}; restart "
                              "this follower")

    async def _commit_items(self, items: list[Item], messages: list[Delivered],
                            parsed: dict[int, Parsed] | None = None) -> None:
        batch = await asyncio.to_thread(self._commit, items, parsed)
        await self._ack(messages)
        stats = self.stats
        stats.position = batch.last
        stats.facts += batch.report.recorded
        stats.duplicates += batch.report.already_recorded
        stats.dead_letters += len(batch.dead)
        stats.events += batch.report.events
        stats.batches += 1
        stats.last_commit = batch.committed
        for sequence, reason in batch.dead:
            self.log("dead_letter", sequence=sequence, reason=reason)
        self.log("committed", first=batch.first, last=batch.last, facts=batch.report.recorded,
                 duplicates=batch.report.already_recorded, dead=len(batch.dead),
                 events=batch.report.events)
        if self.on_batch is not None:
            self.on_batch(batch)

    async def _ack(self, messages: list[Delivered]) -> None:
        """Ack committed messages: with ack policy `all` the last one only (it acks every
        message at or below it), else each, none awaited on its own (an ack is a publish,
        not a request). An ack lost to the bus is harmless: the message comes back, at or
        below the committed position, and is acked then."""
        if not messages:
            return
        targets = [max(messages, key=lambda m: m.sequence)] if self._ack_all else messages
        for target in targets:
            try:
                await target.message.ack()
            except nats.errors.Error as error:
                self.log("bus_error", reason=f"ack of {target.sequence}: "
                         f"{type(error).__name__}: {error}")
                if not self._ack_all:
                    continue
                return
            self.stats.acked += 1 if not self._ack_all else len(messages)

    # -- the database (in a worker thread) ----------------------------------------------------

    def _commit(self, items: list[Item], parsed: dict[int, Parsed] | None = None) -> Batch:
        """Commit `items` past the position, in stream order (ledger.service.followbatch)."""
        try:
            batch, self._fund = commit_batch(self.ledger, self.config.fund, self.config.stream,
                                             self._fund, self.stats.position, items,
                                             self._dead_letter, self._created, parsed)
        except BaseException:
            self._fund = None  # the fund object may hold what was rolled back
            raise
        return batch

    def _dead_letter(self, dead: list[tuple[int, str]], data: dict[int, bytes]) -> None:
        """Publish the bad messages with their reasons (outside any transaction) and wait,
        DEAD_LETTER_TIMEOUT at most, until the dead-letter stream stored every one."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self._publish_dead(dead, data), self._loop)
        try:
            future.result(timeout=DEAD_LETTER_TIMEOUT + 1)
        except TimeoutError:
            future.cancel()
            raise

    async def _publish_dead(self, dead: list[tuple[int, str]], data: dict[int, bytes]) -> None:
        """All at once: a slow bus costs a batch one timeout, not one per letter."""
        assert self._js is not None
        js = self._js
        try:
            acks = await asyncio.wait_for(asyncio.gather(*(
                js.publish(self.config.dead_letter, data[sequence],
                           timeout=DEAD_LETTER_TIMEOUT,
                           headers={"Nats-Msg-Id": f"{self.config.stream}:{sequence}",
                                    REASON_HEADER: reason, SEQUENCE_HEADER: str(sequence)})
                for sequence, reason in dead), return_exceptions=True), DEAD_LETTER_TIMEOUT)
        except TimeoutError:
            acks = [TimeoutError()]
        for ack in acks:
            if isinstance(ack, TimeoutError):
                raise TimeoutError(f"{self.config.dead_letter}: {len(dead)} dead letter(s) "
                                   f"not stored within {DEAD_LETTER_TIMEOUT:g} s")
            if isinstance(ack, BaseException):
                raise ack


def _state(info: api.StreamInfo) -> StreamState:
    """The stream's identity and sequence range from its info."""
    return StreamState(created=info.created.isoformat() if info.created else "",
                       first=int(info.state.first_seq or 0), last=int(info.state.last_seq or 0))


def _stamp(value: datetime | None) -> float:
    """Epoch seconds of a stream message's receive time (now when the server gave none)."""
    return value.timestamp() if value is not None else time.time()
