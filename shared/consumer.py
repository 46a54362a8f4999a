"""The idempotent consumer: process a bus message, commit its effects with its tracking record, then ack.

A message is set aside (recorded as ``MessageRejected`` with the reason, then acked) at once when it
can never be handled: it does not decode, or handling it breaks a domain rule (``shared.refusals``).
A fault of the infrastructure (the store, the bus, the key bucket, a timeout, a conflict with a
person's action: ``PASSING_FAULTS``) is put back with a growing delay for as long as it lasts, and the
consumer shows it in /health meanwhile. Any other error is a defect of the handler: it is tried a few
times, then set aside too, so that the messages behind it go on. A set-aside message can be taken up
again once its cause is fixed (``take_up``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

import nats.errors
from eventsourcing.persistence import Tracking
from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from shared import refusals
from shared.bus import ACK_WAIT_SECONDS, BATCH_SIZE, GATHER_SECONDS, BusUser, Subscription, inbox_of
from shared.events import COMPLAINT_ID_HEADER
from shared.faults import (
    ATTEMPTS_BEFORE_SETTING_ASIDE,
    FIRST_RETRY_DELAY,
    PASSING_FAULTS,
    FaultWatch,
    retry_delay,
)
from shared.set_aside import NotSetAside, taken_up_tracking
from shared.store import ServiceApplication
from shared.timers import FiredEarly
from shared.tracing import handling_message

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a fetch waits for the first message of a batch before asking again.
WAIT_SECONDS = 5.0
# Beyond a nak's delay, before fetching again: the server has put the messages back by then.
REDELIVERY_MARGIN = 0.05

# What handling a message raises when the message breaks a domain rule: it will never succeed.
BROKEN_RULES = (refusals.NotPossible, refusals.NotPermitted)


@dataclass(frozen=True)
class Consumer(Generic[T]):
    """What a service does with the messages of one of its subscriptions.

    ``decode`` reads a message from its subject and body (a subject may say who sent it, which the
    body cannot); ``handle`` runs in a worker thread (the store is synchronous) and must record its
    effects together with the tracking record it is given.
    """

    subscription: Subscription
    decode: Callable[[str, bytes], T]
    handle: Callable[[T, Tracking], None]
    # What the handlers of a batch will need from outside the store, read for the whole batch at once
    # before they run and held while they do (one round trip for the batch, not one per message).
    prepare: Callable[[Sequence[Msg]], contextlib.AbstractAsyncContextManager[None]] | None = None


def body_only(decode: Callable[[bytes], T]) -> Callable[[str, bytes], T]:
    """A consumer's decoder for messages that say all they are in their body."""

    def decode_body(_subject: str, data: bytes) -> T:
        return decode(data)

    return decode_body


class ConsumerLoop(Generic[T]):
    """A consumer bound by faststream to its durable consumer, a batch at a time.

    The batch is handled in order, each message committed with its tracking record and then
    acknowledged. A passing fault puts that message and the rest of the batch back with a delay, and
    the loop waits that long before fetching again, so they come back before anything newer. A
    subscription that ``gathers`` waits a moment after a batch smaller than a full one.
    """

    def __init__(
        self,
        app: ServiceApplication,
        broker: NatsBroker,
        consumer: Consumer[T],
        on_commit: Callable[[], None],
        first_retry_delay: float = FIRST_RETRY_DELAY,
        set_aside: int = 0,
        user: BusUser | None = None,
    ) -> None:
        """``set_aside``: how many of this consumer's messages are set aside already (from the store);
        ``user``: who the broker connects as (its deliveries come to that user's inbox)."""
        self.app = app
        self.broker = broker
        self.consumer = consumer
        self.on_commit = on_commit
        self.first_retry_delay = first_retry_delay
        self.fault = FaultWatch()
        self.set_aside = set_aside
        subscription = consumer.subscription
        self.subscriber = broker.subscriber(
            subscription.subjects[0],
            stream=JStream(subscription.stream, declare=False),
            durable=subscription.durable,
            pull_sub=PullSub(batch_size=BATCH_SIZE, timeout=None, batch=True),
            ack_policy=AckPolicy.MANUAL,
            inbox_prefix=f"{inbox_of(user)}.".encode(),
            decoder=_undecoded,  # the consumer's own decoder reads each message, in its worker thread
            title=self.name,
        )
        self.subscriber(self._on_batch)

    @property
    def name(self) -> str:
        """As /health and the logs name it: its durable consumer on its stream."""
        subscription = self.consumer.subscription
        return f"{subscription.durable} on {subscription.stream}"

    @property
    def js(self) -> JetStreamContext:
        return self.broker.connection.jetstream()

    async def run(self) -> None:
        """Bind to the durable consumer and handle its batches until cancelled; a failure to bind ends
        the run (the runtime starts it again later)."""
        subscriber = self.subscriber
        await self.broker.connect()  # once per broker: its loops and relay share the connection
        try:
            await start_handing_what_is_there(subscriber)
            log.info("%s consuming %s", self.consumer.subscription.durable, self.consumer.subscription.stream)
            await asyncio.Event().wait()
        finally:
            with contextlib.suppress(Exception):
                await subscriber.stop()

    async def _on_batch(self, _: object) -> None:
        messages: list[Msg] = self.broker.context.get_local("message").raw_message
        await self.handle_batch(messages)
        if self.consumer.subscription.gathers and len(messages) < BATCH_SIZE:
            await asyncio.sleep(GATHER_SECONDS)  # before the next fetch: what comes meanwhile, together

    async def handle_batch(self, messages: list[Msg]) -> None:
        """Handle the batch in order, as many messages together as can be (one transaction); a message
        that cannot be is handled by itself, then the rest together again."""
        rest = messages
        while rest:
            stored, failure = await self.store_together(rest)
            rest = rest[stored:]
            if not rest:
                return
            first, rest = rest[0], rest[1:]
            with handling_message(first.headers, self.app.service):
                held_back = await self.process(first, rest, failure)
            if held_back:
                # The rest comes back after the delay: wait as long, so it comes before newer messages.
                await asyncio.sleep(held_back + REDELIVERY_MARGIN)
                return

    async def store_together(self, messages: Sequence[Msg]) -> tuple[int, Exception | None]:
        """Handle the messages in turn and store what they did in one transaction, then ack them. Stops
        before the first that does not decode or whose handler raises (``store_together`` of the store).
        Returns how many were stored and acked, and what the handler of the next one raised, if it did
        (so that it is not run twice for one delivery)."""
        stream = self.consumer.subscription.stream
        service = self.app.service
        failures: dict[int, Exception] = {}

        def handling(index: int, message: Msg, tracking: Tracking, processed: set[int]) -> Callable[[], None]:
            def handle() -> None:
                if tracking.notification_id in processed:
                    return
                decoded = self.consumer.decode(message.subject, message.data)
                with handling_message(message.headers, service):
                    try:
                        self.consumer.handle(decoded, tracking)
                    except Exception as failure:
                        failures[index] = failure
                        raise

            return handle

        def handle_all() -> int:
            trackings = [Tracking(stream, message.metadata.sequence.stream) for message in messages]
            processed = self.app.processed_among(stream, [tracking.notification_id for tracking in trackings])
            return self.app.store_together(
                handling(index, message, tracking, processed)
                for index, (message, tracking) in enumerate(zip(messages, trackings, strict=True))
            )

        prepare = self.consumer.prepare
        try:
            async with prepare(messages) if prepare is not None else contextlib.nullcontext():
                stored = await _while_telling_the_server(messages, asyncio.to_thread(handle_all))
        except PASSING_FAULTS:
            return 0, None  # handled by itself, the first message meets the fault again and says so
        except Exception:
            log.exception("could not handle a batch together; its messages are handled one by one")
            return 0, None
        for message in messages[:stored]:
            await message.ack()
        if stored:
            self.fault.worked()
            self.on_commit()
        # Storing the ones before it may have failed: then its failure is not the next one's.
        return stored, failures.get(stored)

    async def process(
        self, message: Msg, behind: Sequence[Msg] = (), failure: Exception | None = None
    ) -> float:
        """Handle one message; returns 0, or the delay after which it and ``behind`` (put back with it)
        come back after a passing fault. ``failure``: what its handler raised at this delivery already."""
        tracking = Tracking(self.consumer.subscription.stream, message.metadata.sequence.stream)
        try:
            if not await asyncio.to_thread(self.app.has_processed, tracking):
                await self._apply(message, tracking, behind, failure)
            await message.ack()
        except FiredEarly as early:
            await _nak_quietly(message, early.wait)
            return 0.0
        except Exception as fault:
            # A passing fault: the message stays unacknowledged and comes back, later each time.
            failures = self.fault.failed(fault)
            where = f"{tracking.application_name} #{tracking.notification_id}"
            if failures == 1:
                log.exception("could not process %s; trying again until it works", where)
            else:
                log.warning("could not process %s (%d failures in a row): %r", where, failures, fault)
            delay = retry_delay(message.metadata.num_delivered, self.first_retry_delay)
            for held in (message, *behind):
                await _nak_quietly(held, delay)
            return delay
        self.fault.worked()
        self.on_commit()
        return 0.0

    async def _apply(
        self, message: Msg, tracking: Tracking, behind: Sequence[Msg], failure: Exception | None
    ) -> None:
        try:
            decoded = self.consumer.decode(message.subject, message.data)
        except (ValidationError, ValueError) as error:
            await self._reject(message, tracking, f"not a valid message: {described(error)}")
            return
        try:
            if failure is not None:
                raise failure
            await _while_telling_the_server(
                [message, *behind], asyncio.to_thread(self.consumer.handle, decoded, tracking)
            )
        except BROKEN_RULES as refusal:
            await self._reject(message, tracking, f"breaks a rule: {refusal}")
        except PASSING_FAULTS:
            raise
        except Exception as defect:
            attempts = message.metadata.num_delivered
            if attempts < ATTEMPTS_BEFORE_SETTING_ASIDE:
                raise
            # The class only: what an error says may quote the message, and the record cannot be erased.
            reason = f"handler failed {attempts} times, last: {type(defect).__name__}"
            await self._reject(message, tracking, reason)

    async def _reject(self, message: Msg, tracking: Tracking, reason: str) -> None:
        log.warning("setting aside %s #%d: %s", tracking.application_name, tracking.notification_id, reason)
        await asyncio.to_thread(
            self.app.reject, tracking, message.subject, reason, complaint_id_of(message.headers)
        )
        self.set_aside += 1

    async def take_up(self, stream_sequence: int, requested_by: str) -> None:
        """Handle a set-aside message again, read from its stream, through the same decoder and
        handler; once only (its own tracking record). Raises ``NotSetAside``, a refusal (it still
        cannot be handled: it stays set aside), or a passing fault (try again later)."""
        stream = self.consumer.subscription.stream
        rejection = await asyncio.to_thread(self.app.rejection, stream, stream_sequence)
        if rejection is None or rejection.taken_up:
            raise NotSetAside(f"{self.app.service} has no message {stream} #{stream_sequence} set aside")
        tracking = taken_up_tracking(stream, stream_sequence)
        if not await asyncio.to_thread(self.app.has_processed, tracking):
            try:
                message = await self.js.get_msg(stream, stream_sequence)
            except NotFoundError:
                raise refusals.NotPossible(f"{stream} no longer holds message #{stream_sequence}") from None
            try:
                decoded = self.consumer.decode(message.subject or "", message.data or b"")
            except (ValidationError, ValueError) as error:
                raise refusals.NotPossible(f"it is still not a valid message: {described(error)}") from None
            await asyncio.to_thread(self.consumer.handle, decoded, tracking)
        await asyncio.to_thread(self.app.taken_up, rejection, requested_by)
        self.set_aside -= 1
        self.on_commit()
        log.info("took up %s #%d again, as %s asked", stream, stream_sequence, requested_by)


def described(error: ValidationError | ValueError) -> str:
    """What is wrong with a message, without quoting it: the reason goes on the record, which cannot be
    erased, and a message may hold what it should not (pydantic's own text shows the input)."""
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'message'}: {problem['msg']}"
            for problem in error.errors(include_url=False, include_input=False, include_context=False)
        )
    return type(error).__name__


def complaint_id_of(headers: dict[str, str] | None) -> UUID | None:
    """The complaint a message is about, as its headers say; None if they name none (or no valid one)."""
    try:
        return UUID((headers or {})[COMPLAINT_ID_HEADER])
    except (KeyError, ValueError):
        return None


async def _while_telling_the_server(waiting: Sequence[Msg], work: Awaitable[T]) -> T:
    """Run the work, telling the server every so often that the messages waiting on it (the one being
    handled and the rest of its batch) are still in hand."""
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=ACK_WAIT_SECONDS / 3)
        if done:
            return task.result()
        try:
            for message in waiting:
                await message.in_progress()
        except Exception:  # the work goes on: at worst the server sends a message again, which is known
            log.warning("could not tell the server that messages are in hand", exc_info=True)


async def _undecoded(_: object) -> None:
    """faststream's decoding of a batch (JSON, whatever the consumer takes), which nothing reads."""


async def start_handing_what_is_there(subscriber: Any) -> None:
    """Start a faststream batch subscriber whose fetches hand over what is there (``WhatIsThere``)."""
    await subscriber.start()
    # Before the consume task the start made first runs (nothing is awaited in between).
    subscriber.subscription = WhatIsThere(subscriber.subscription)


class WhatIsThere:
    """A pull subscription whose fetch hands faststream's batch loop what is there, at once.

    faststream 0.7.8's batch loop fetches again until its batch is full or its timeout passes: with a
    short timeout a consumer polls the server all night (11 % of a core each, measured) and adds that
    timeout to every hop; with a long one, a trickle of messages waits for it. And a plain
    ``TimeoutError`` that nats-py raises near a deadline is not caught there: the consume task dies
    and the messages it had fetched wait out ``ack_wait`` (5 s), then come back out of order.
    So: a fetch waits for the first messages of a batch (up to ``WAIT_SECONDS``), the next call of the
    same round ends the round, and every timeout is the one faststream catches."""

    def __init__(self, subscription: JetStreamContext.PullSubscription) -> None:
        self.subscription = subscription
        self._handed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.subscription, name)

    async def fetch(self, batch: int = 1, timeout: float | None = None) -> list[Msg]:  # noqa: ASYNC109 (as faststream calls it)
        if self._handed:
            self._handed = False
            raise nats.errors.TimeoutError  # faststream's loop handles the batch it has
        try:
            messages = await self.subscription.fetch(batch, timeout=WAIT_SECONDS)
        except TimeoutError as waited:  # nats-py's own or a plain one
            raise nats.errors.TimeoutError from waited
        self._handed = True
        return messages


async def _nak_quietly(message: Msg, delay: float) -> None:
    try:
        await message.nak(delay=delay)
    except Exception:
        log.exception("could not nak; the server redelivers after ack_wait")
