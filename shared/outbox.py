"""The outbox relay: a service's notification log, published in order to the record stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from uuid import UUID, uuid4

from eventsourcing.persistence import Notification, Tracking
from nats.errors import MaxPayloadError
from nats.js import JetStreamContext, api
from nats.js.errors import APIError, NotFoundError

from shared.bus import RECORD_STREAM, due_subject, record_subjects, schedule_subject
from shared.chain import START, Link, SigningKey, chained, checkpoint_statement
from shared.events import CheckpointSigned, EventSetAside, WireEvent, encode_event, headers_for
from shared.faults import FaultWatch
from shared.lease import Lease, check
from shared.privacy import KeyVault
from shared.set_aside import UnpublishedEvent
from shared.store import ServiceApplication, stable_id
from shared.timers import Timer, now
from shared.tracing import TRACEPARENT

log = logging.getLogger(__name__)

BATCH = 200

# More than the relay's headers ever take: a message is measured whole only when its payload is this
# close to the server's max_payload.
HEADER_ROOM = 4096
# JetStream's refusals of a publish that will be refused again however often it is tried: the
# message is larger than the stream takes, its headers are larger than the server takes.
REFUSED_FOR_GOOD = {10054: "larger than the stream's max_msg_size", 10097: "headers larger than 64 KiB"}
# JetStream's refusal of an atomic batch holding a message already on the record (by its Nats-Msg-Id).
DUPLICATE_IN_BATCH = 10201
# A record stream declared by an earlier version, before provisioning brought it to allow_atomic.
ATOMIC_PUBLISH_DISABLED = 10174
# An atomic batch costs a few milliseconds whatever its size (here, one server with sync_interval
# always: 3.4-3.9 ms for 4 to 11 messages, of which 1.6 ms of the server's CPU; one publish awaited,
# 0.6 ms and 0.3 ms): on an idle server, from 8 events on a batch costs less than publishing them one
# by one. But under load each awaited publish waits its turn for the disk: at 50 complaints/s,
# escalation's stretches of about 6 events took 7.6 ms (p50; 31 ms p99) one by one and 5.5 ms (21 ms)
# as one batch, and the CPU per complaint did not grow. So every stretch of two or more is one batch.
# The fixed cost is the server's: it stages each atomic batch of a one-replica file stream in a file
# store of its own, made and removed for that batch (nats-server's newBatchStore; a replicated stream
# stages in memory), so more, smaller batches cost more: the notifier's batches cut at 16 events made
# nats-server spend 6.6 -> 9.1 ms per complaint at 50/s and doubled every latency.
ATOMIC_FROM = 2
# How long the relay waits for the server to acknowledge a publish (nats-py's own default).
PUBLISH_TIMEOUT = 5.0


# The relay's place for timers, kept in the store as a tracking record: every event at or before it had
# its timers set, so a relay that starts sets those of the events after it again (``set_timers_again``).
TIMERS_SET_UP_TO = "relay-timers"
# The place is kept at most this often (a row each time); a start sets again what came after it.
KEEP_TIMERS_PLACE_EVERY = 1.0


def msg_id(service: str, notification_id: int) -> str:
    return f"{service}:{notification_id}"


CHECKPOINT_SUFFIX = ":checkpoint"


def notification_id_of(message_id: str, service: str) -> int:
    prefix, _, number = message_id.removesuffix(CHECKPOINT_SUFFIX).partition(":")
    if prefix != service or not number.isdigit():
        raise ValueError(f"record message id {message_id!r} was not written by the {service} relay")
    return int(number)


@dataclass(frozen=True)
class Outgoing:
    """An event to publish: its wire event, the notification it is or follows, its Msg-Id, the trace
    that stored it."""

    wire: WireEvent
    notification_id: int
    message_id: str
    traceparent: str | None = None


# A timer to set, the Msg-Id of the event that asks for it, and that event's trace.
TimerToSet = tuple[Timer, str, str | None]


@dataclass(frozen=True)
class Prepared:
    """An event as it goes on the record, linked to ``previous``: ``head`` is its own link."""

    event: Outgoing
    payload: bytes
    headers: dict[str, str]
    previous: Link
    head: Link


class OnTheRecordAlready(Exception):
    """A batch held an event already on the record: the relay goes on from the record's head."""


@dataclass(frozen=True)
class Checkpoints:
    """The service's signing key, and how often it signs its chain's head."""

    key: SigningKey
    every: int = 1000
    seconds: float = 60.0


class OutboxRelay:
    """Publishes each stored event once, with ``Nats-Msg-Id: <service>:<notification id>``.

    After a crash it resumes after the last message of its service that it finds on the record.
    A timer asked for by an event is set just after the event is published: the events go out without
    waiting for the timer stream's writes (at 50 complaints/s, escalation's ten timers a complaint took
    7.5 ms p50 and 33 ms p99 before each stretch went out, on the way to every first alert). Setting a
    timer again changes nothing (one schedule by its Msg-Id, and by its subject after the duplicate
    window; a fire for work already done is a no-op), so a relay that stopped between the two (a crash,
    a bus fault, a lost lease) sets, when it starts, the timers of every event after the place it keeps
    in the store (``TIMERS_SET_UP_TO``), before it relays anything else: an event on the record has its
    timer pending from then on, and one whose time passed meanwhile fires at once.

    Every event it publishes is the next link of the service's hash chain, and the relay signs the
    chain's head in a CheckpointSigned event every N links or T seconds and on clean shutdown.
    The relay itself publishes the checkpoints, not the store: the head's hash exists only once the
    event is published, and the chain, like the resume position, is read back from the last message
    of the service on the record (its chain headers). A checkpoint's Msg-Id is that of the last
    notification it follows plus ``:checkpoint``: there is at most one per head (a head already signed
    is not signed again), so deduplication and resuming hold as for events.
    """

    def __init__(
        self,
        app: ServiceApplication,
        js: JetStreamContext,
        checkpoints: Checkpoints,
        vault: KeyVault | None = None,
        poll_interval: float = 1.0,
        max_payload: Callable[[], int] | None = None,
        set_aside: int = 0,
        lease: Lease | None = None,
        gather: float = 0.0,
    ) -> None:
        """``gather``: how long to wait after publishing fewer events than a batch, so that what is
        stored meanwhile goes out together (``GATHER_SECONDS`` for a service whose events only people
        wait for; the first event after a quiet spell goes out at once);
        ``lease``: the one relay of the service's replicas that may publish (none: not leased);
        checked before each publish, so a relay that lost it (paused past its TTL) publishes nothing
        more, and the server refuses a link whose head moved meanwhile anyway;
        ``max_payload``: the server's now (it may change on reconnecting), to refuse before sending a
        message it would refuse with its headers (the client counts the payload only, and the server
        closes the connection);
        ``set_aside``: how many of the service's events are set aside already (from the store)."""
        self.app = app
        self.max_payload = max_payload
        self.set_aside = set_aside
        self.js = js
        self.checkpoints = checkpoints
        self.vault = vault
        self.lease = lease
        self.poll_interval = poll_interval
        self.gather = gather
        self._wake = asyncio.Event()
        self.position = 0
        self.head = START
        self.head_sequence = 0  # the head's stream sequence: a publish expects it to be the last
        self.signed = START  # the last checkpoint's own link: everything up to it is signed
        self._signed_at = time.monotonic()
        self.sets_timers = type(app).timers_for is not ServiceApplication.timers_for
        self.timers_set_up_to = 0  # every event up to it had its timers set
        self._timers_kept = 0  # the place as kept in the store
        self._timers_kept_at = time.monotonic()
        self.fault = FaultWatch()

    def wake(self) -> None:
        """Call after a commit so the relay publishes at once instead of at its next poll."""
        self._wake.set()

    async def last_relayed(self) -> int:
        """Finds the relay's place on the record: the last notification relayed, and the chain head."""
        try:
            last = await self.js.get_last_msg(RECORD_STREAM, record_subjects(self.app.service))
        except NotFoundError:
            return 0
        headers = last.headers or {}
        self.head, self.head_sequence = Link.of(headers), last.seq or 0
        self.signed = self.head if headers["Nats-Msg-Id"].endswith(CHECKPOINT_SUFFIX) else START
        return notification_id_of(headers["Nats-Msg-Id"], self.app.service)

    async def run(self) -> None:
        """Relay until cancelled. A failure (no bus, a timeout, another replica's link first) ends
        the run; the service notes it in ``fault`` and starts the relay again from the record
        (``Supervised`` in shared/faults.py, from shared/runtime.py), and the relay clears the fault
        once it has relayed again."""
        self.position = await self.last_relayed()
        log.info("%s relay resumes after notification %d", self.app.service, self.position)
        await self.set_timers_again()
        while True:
            self._wake.clear()
            if time.monotonic() - self._signed_at >= self.checkpoints.seconds:
                await self.sign_head()
            relayed = await self.relay_pending()
            self.fault.worked()
            if not relayed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            elif self.gather and relayed < BATCH:
                await asyncio.sleep(self.gather)

    async def set_timers_again(self) -> None:
        """Set again the timers of the events relayed after the place kept in the store, then keep the
        place at the relay's position. No place kept: the relay of an earlier version, which set each
        timer before its event, or none ever ran. A service that sets no timers keeps no place."""
        if not self.sets_timers:
            return
        recorder = self.app.process_recorder
        kept = await asyncio.to_thread(recorder.max_tracking_id, TIMERS_SET_UP_TO)
        start = self.position if kept is None else kept
        while start < self.position:
            stretch = await asyncio.to_thread(
                recorder.select_notifications,
                start + 1, BATCH, stop=self.position, topics=self.app.published_topics,
            )  # fmt: skip
            if not stretch:
                break
            timers = [timer for notification in stretch for timer in self._prepare(notification)[1]]
            await self._set_timers(timers)
            start = stretch[-1].id
            log.info("%s relay set the timers of its events up to %d again", self.app.service, start)
        self.timers_set_up_to = self.position
        self._timers_kept = -1 if kept is None else kept
        await self._keep_timers_place(self.position, now_or_never=True)

    async def _keep_timers_place(self, up_to: int, now_or_never: bool = False) -> None:
        """Every event up to ``up_to`` had its timers set: keep it in the store, at most once a second."""
        if not self.sets_timers:
            return
        self.timers_set_up_to = max(self.timers_set_up_to, up_to)
        due = now_or_never or time.monotonic() - self._timers_kept_at >= KEEP_TIMERS_PLACE_EVERY
        if not due or self.timers_set_up_to <= self._timers_kept:
            return
        self._timers_kept_at = time.monotonic()
        place = Tracking(TIMERS_SET_UP_TO, self.timers_set_up_to)
        await asyncio.to_thread(self.app.process_recorder.insert_tracking, place)
        self._timers_kept = place.notification_id

    async def lag(self) -> int:
        """Stored notifications not yet relayed (one store read: for /health, not per message)."""
        stored = await asyncio.to_thread(self.app.process_recorder.max_notification_id)
        return max((stored or 0) - self.position, 0)

    async def sign_head(self) -> None:
        """Publish a checkpoint signing the chain's head, unless it is signed already."""
        self._signed_at = time.monotonic()
        if self.head == self.signed:
            return
        service = self.app.service
        checkpoint = CheckpointSigned(
            event_id=stable_id(service, "checkpoint", self.head.index),
            occurred_at=now(),
            recorded_at=now(),
            signed_by=service,
            head_index=self.head.index,
            head_hash=self.head.hash,
            public_key=self.checkpoints.key.public_key,
            signature=self.checkpoints.key.sign(checkpoint_statement(service, self.head)),
        )
        message_id = msg_id(service, self.position) + CHECKPOINT_SUFFIX
        await self._send(self._prepared(Outgoing(checkpoint, self.position, message_id), self.head))
        self.signed = self.head

    async def relay_pending(self) -> int:
        """Publish what is stored and not yet relayed; returns how many notifications were passed (the
        events kept inside among them).

        The keys the stretch's events ask for are kept first (a service that reads an event opens its
        patient data with them); then its events go out as atomic batches (one round trip each, all
        stored or none), a batch ending where a checkpoint is due; then the timers they ask for are set.
        Only a batch's first message carries the expectation that the chain's head is still the last
        message of the service: the rest follow it in the same commit, so no replica's event can come
        between them."""
        start = self.position
        notifications, passed_up_to = await asyncio.to_thread(self._to_publish)
        outgoing: list[Outgoing] = []
        timers: list[TimerToSet] = []
        keys: dict[UUID, list[bytes | None]] = {}
        for notification in notifications:
            event, its_timers, its_keys = self._prepare(notification)
            if event is None:
                continue
            timers += its_timers
            for complaint_id, wrapped in its_keys:
                keys.setdefault(complaint_id, []).append(wrapped)
            outgoing.append(event)
        await self._keep_keys(keys)
        try:
            await self._publish_all(outgoing)
        except OnTheRecordAlready:  # published before, unknown to this relay (it crashed, a replica)
            self.position = await self.last_relayed()
            await self._publish_all([event for event in outgoing if event.notification_id > self.position])
        await self._set_timers(timers)
        await self._keep_timers_place(passed_up_to)
        self.position = max(self.position, passed_up_to)  # a replica may have taken it further
        return self.position - start

    def _prepare(
        self, notification: Notification
    ) -> tuple[Outgoing | None, list[TimerToSet], list[tuple[UUID, bytes | None]]]:
        """A stored event as it goes on the record (None if it stays inside), with the timers it asks
        for and the keys it needs kept. An event set aside and taken up had its timers set and keys kept
        when it was set aside."""
        domain_event, traceparent = self.app.mapper.traced_domain_event(notification)
        wire = self.app.wire_event(domain_event)
        if wire is None:
            return None, [], []
        message_id = msg_id(self.app.service, notification.id)
        outgoing = Outgoing(wire, notification.id, message_id, traceparent)
        if isinstance(domain_event, UnpublishedEvent.TakenUp):
            return outgoing, [], []
        timers = [(timer, message_id, traceparent) for timer in self.app.timers_for(wire)]
        return outgoing, timers, self.app.keys_for(wire)

    def _to_publish(self) -> tuple[Sequence[Notification], int]:
        """In a worker thread: the next stored events that may go on the record (at most ``BATCH``), and
        how far the store was read for them; the events a service keeps for itself are not read."""
        recorder = self.app.process_recorder
        stored = recorder.max_notification_id() or 0
        if stored <= self.position:
            return [], self.position
        topics = self.app.published_topics
        notifications = recorder.select_notifications(self.position + 1, BATCH, stop=stored, topics=topics)
        return notifications, (notifications[-1].id if len(notifications) == BATCH else stored)

    async def _publish_all(self, outgoing: Sequence[Outgoing]) -> None:
        batch: list[Prepared] = []
        for event in outgoing:
            prepared = self._prepared(event, batch[-1].head if batch else self.head)
            if self._too_large(prepared.payload, prepared.headers):
                await self._publish_batch(batch)
                batch = []
                await self._publish_batch([prepared])  # one alone: the client refuses it, it is set aside
            else:
                batch.append(prepared)
            if self.head.index + len(batch) - self.signed.index >= self.checkpoints.every:
                await self._publish_batch(batch)
                batch = []
                await self.sign_head()
        await self._publish_batch(batch)

    @staticmethod
    def _prepared(event: Outgoing, previous: Link) -> Prepared:
        payload = encode_event(event.wire)
        headers = chained(event.wire.subject, headers_for(event.wire, event.message_id), payload, previous)
        head = Link.of(headers)
        if event.traceparent is not None:  # beside the chain's content, like the expectation
            headers[TRACEPARENT] = event.traceparent
        return Prepared(event, payload, headers, previous, head)

    async def _publish_batch(self, batch: Sequence[Prepared]) -> None:
        """Publish the events as one atomic batch; a few of them (or a batch the stream will not take,
        e.g. one of its messages is larger than the stream's limit) one by one, the way of
        ``_publish_or_set_aside``."""
        if len(batch) < ATOMIC_FROM:
            for prepared in batch:
                await self._publish_or_set_aside(prepared)
            return
        try:
            ack = await self._atomic(batch)
        except APIError as refusal:
            if refusal.err_code == DUPLICATE_IN_BATCH:
                raise OnTheRecordAlready from refusal
            if refusal.err_code == ATOMIC_PUBLISH_DISABLED:
                log.warning("the record stream takes no atomic batches: run `kizuki provision`")
            elif _refused_for_good(refusal) is None:
                raise
            for prepared in batch:  # one by one, to set aside the one the stream refuses
                await self._publish_or_set_aside(prepared)
            return
        last = batch[-1]
        self.head, self.head_sequence = last.head, ack.seq
        self.position = last.event.notification_id
        log.debug("relayed %d events up to seq %d", len(batch), ack.seq)

    async def _atomic(self, batch: Sequence[Prepared]) -> api.PubAck:
        nc = self.js._nc  # nats-py has no batch publish: the messages go out on the context's connection
        check(self.lease)
        batch_id = str(uuid4())
        last = len(batch)
        for number, prepared in enumerate(batch, start=1):
            subject = prepared.event.wire.subject
            headers = prepared.headers | {"Nats-Batch-Id": batch_id, "Nats-Batch-Sequence": str(number)}
            if number == 1:
                headers |= self._expectation()
            if number < last:
                await nc.publish(subject, prepared.payload, headers=headers)
                continue
            headers["Nats-Batch-Commit"] = "1"
            reply = await nc.request(subject, prepared.payload, timeout=PUBLISH_TIMEOUT, headers=headers)
            answer = json.loads(reply.data)
            if "error" in answer:
                raise APIError.from_error(answer["error"])
            return api.PubAck.from_response(answer)
        raise AssertionError("a batch has a last message")

    async def _publish_or_set_aside(self, prepared: Prepared) -> None:
        """Publish the event; if the bus refuses it for good, it is kept as set aside in the store and
        an EventSetAside takes its place on the chain (same Msg-Id), so the events behind it go on."""
        event = prepared.event
        try:
            await self._send(prepared)
        except (MaxPayloadError, APIError) as refusal:
            reason = _refused_for_good(refusal)
            if reason is None:
                raise
            wire, notification_id, size = event.wire, event.notification_id, len(prepared.payload)
            log.error(
                "%s: the bus refuses %s (notification %d, %d bytes) for good: %s; setting it aside",
                self.app.service, wire.type_name(), notification_id, size, reason,
            )  # fmt: skip
            if await asyncio.to_thread(self.app.unpublished, notification_id, wire, size, reason):
                self.set_aside += 1
            set_aside = EventSetAside(
                event_id=stable_id(self.app.service, "set aside", notification_id),
                complaint_id=wire.complaint_id,
                occurred_at=wire.recorded_at,
                recorded_at=now(),
                set_aside_by=self.app.service,
                notification_id=notification_id,
                event_type=wire.type_name(),
                size=size,
                reason=reason,
            )
            await self._send(
                self._prepared(Outgoing(set_aside, notification_id, event.message_id), self.head)
            )
        self.position = event.notification_id

    def _too_large(self, payload: bytes, headers: dict[str, str]) -> bool:
        if self.max_payload is None:
            return False
        limit = self.max_payload()
        return len(payload) > limit - HEADER_ROOM and _size(payload, headers) > limit

    async def take_up(self, notification_id: int, requested_by: str) -> None:
        """Publish an event set aside now, once its cause is fixed: as a new event of the outbox whose
        wire event is the stored one, so it takes its place at the head of the chain, once."""
        await asyncio.to_thread(self.app.take_up_unpublished, notification_id, requested_by)
        self.set_aside -= 1
        self.wake()

    async def _send(self, prepared: Prepared) -> None:
        """Publish one event, linked to the head as it is now."""
        if prepared.previous != self.head:  # the head moved: a duplicate took it from the record
            prepared = self._prepared(prepared.event, self.head)
        wire, payload = prepared.event.wire, prepared.payload
        sent = prepared.headers | self._expectation()
        if self._too_large(payload, sent):
            raise MaxPayloadError
        check(self.lease)
        ack = await self.js.publish(wire.subject, payload, stream=RECORD_STREAM, headers=sent)
        if ack.duplicate:
            await self.last_relayed()  # it was on the record already: the chain goes on from there
        else:
            self.head, self.head_sequence = prepared.head, ack.seq
        log.debug("relayed %s seq %d (duplicate=%s)", prepared.event.message_id, ack.seq, ack.duplicate)

    def _expectation(self) -> dict[str, str]:
        """Another relay of the same service (a replica) cannot fork the chain: the server refuses a
        link whose head is no longer the last message of the service, and this relay starts again."""
        return {
            "Nats-Expected-Last-Subject-Sequence": str(self.head_sequence),
            "Nats-Expected-Last-Subject-Sequence-Subject": f"events.{self.app.service}.>",
        }

    async def _keep_keys(self, keys: dict[UUID, list[bytes | None]]) -> None:
        """Put each complaint's key where the services that need it find it, or destroy it there (None):
        the complaints' side by side, each complaint's in the order asked (a key put, then destroyed)."""
        if not keys:
            return
        vault = self.vault
        if vault is None:
            raise RuntimeError(f"the {self.app.service} relay has patient data keys to keep but no vault")

        async def keep(complaint_id: UUID, asked: list[bytes | None]) -> None:
            for wrapped in asked:
                check(self.lease)
                if wrapped is None:
                    await vault.destroy(complaint_id)
                else:
                    await vault.put(complaint_id, wrapped)

        await asyncio.gather(*(keep(complaint_id, asked) for complaint_id, asked in keys.items()))

    async def _set_timers(self, timers: Sequence[TimerToSet]) -> None:
        """Set the timers of a stretch's events, each with the Msg-Id of the event that asks for it and
        its trace, all at once (one round trip's wait rather than one each): each is its own schedule,
        setting one again changes nothing, and they go out on one connection in the events' order, so
        a timer set again later in the stretch replaces the earlier one, as one by one."""
        if not timers:
            return
        check(self.lease)
        js, service = self.js, self.app.service
        await asyncio.gather(*(set_timer(js, service, timer, by, trace) for timer, by, trace in timers))


async def set_timer(
    js: JetStreamContext, service: str, timer: Timer, set_by: str, traceparent: str | None = None
) -> None:
    """Schedule the timer's fire on the service's timer stream; ``set_by`` names what set it (the same
    timer set again by the same message is one schedule). A traceparent is passed on by the server to
    the fire, so the fire joins the trace."""
    headers = {
        "Nats-Msg-Id": f"{set_by}:timer:{timer.key}",
        "Nats-Schedule": timer.schedule,
        "Nats-Schedule-Target": due_subject(service, timer.key),
    }
    if traceparent is not None:
        headers[TRACEPARENT] = traceparent
    await js.publish(schedule_subject(service, timer.key), timer.encode(), headers=headers)


def _refused_for_good(refusal: MaxPayloadError | APIError) -> str | None:
    """Why the bus will never take this message, or None if trying again may work."""
    if isinstance(refusal, MaxPayloadError):
        return "larger than the server's max_payload"
    return REFUSED_FOR_GOOD.get(refusal.err_code or 0)


def _size(payload: bytes, headers: dict[str, str]) -> int:
    """The message as the server counts it against max_payload: ``NATS/1.0`` and each header line, then
    the payload."""
    header_lines = sum(len(f"{name}: {value}\r\n".encode()) for name, value in headers.items())
    return len(b"NATS/1.0\r\n") + header_lines + len(b"\r\n") + len(payload)
