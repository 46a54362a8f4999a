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
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar
from uuid import UUID

from eventsourcing.persistence import Tracking
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from shared import refusals
from shared.bus import ACK_WAIT_SECONDS, Subscription
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

# What handling a message raises when the message breaks a domain rule: it will never succeed.
BROKEN_RULES = (refusals.NotPossible, refusals.NotPermitted)


@dataclass(frozen=True)
class Consumer(Generic[T]):
    """What a service does with the messages of one of its subscriptions.

    ``handle`` runs in a worker thread (the store is synchronous) and must record its effects
    together with the tracking record it is given.
    """

    subscription: Subscription
    decode: Callable[[bytes], T]
    handle: Callable[[T, Tracking], None]


class ConsumerLoop(Generic[T]):
    def __init__(
        self,
        app: ServiceApplication,
        js: JetStreamContext,
        consumer: Consumer[T],
        on_commit: Callable[[], None],
        first_retry_delay: float = FIRST_RETRY_DELAY,
        set_aside: int = 0,
    ) -> None:
        """``set_aside``: how many of this consumer's messages are set aside already (from the store)."""
        self.app = app
        self.js = js
        self.consumer = consumer
        self.on_commit = on_commit
        self.first_retry_delay = first_retry_delay
        self.fault = FaultWatch()
        self.set_aside = set_aside

    @property
    def name(self) -> str:
        """As /health and the logs name it: its durable consumer on its stream."""
        subscription = self.consumer.subscription
        return f"{subscription.durable} on {subscription.stream}"

    async def run(self) -> None:
        subscription = self.consumer.subscription
        pull = await self.js.pull_subscribe_bind(durable=subscription.durable, stream=subscription.stream)
        log.info("%s consuming %s", subscription.durable, subscription.stream)
        while True:
            try:
                messages = await pull.fetch(1, timeout=5)
            except TimeoutError:  # nats-py raises its own or asyncio's, both TimeoutError
                continue
            for message in messages:
                with handling_message(message.headers, self.app.service):
                    await self.process(message)

    async def process(self, message: Msg) -> None:
        tracking = Tracking(self.consumer.subscription.stream, message.metadata.sequence.stream)
        try:
            if not await asyncio.to_thread(self.app.has_processed, tracking):
                await self._apply(message, tracking)
            await message.ack_sync()
        except FiredEarly as early:
            await _nak_quietly(message, early.wait)
            return
        except Exception as fault:
            # A passing fault: the message stays unacknowledged and comes back, later each time.
            failures = self.fault.failed(fault)
            where = f"{tracking.application_name} #{tracking.notification_id}"
            if failures == 1:
                log.exception("could not process %s; trying again until it works", where)
            else:
                log.warning("could not process %s (%d failures in a row): %r", where, failures, fault)
            await _nak_quietly(message, retry_delay(message.metadata.num_delivered, self.first_retry_delay))
            return
        self.fault.worked()
        self.on_commit()

    async def _apply(self, message: Msg, tracking: Tracking) -> None:
        try:
            decoded = self.consumer.decode(message.data)
        except (ValidationError, ValueError) as error:
            await self._reject(message, tracking, f"not a valid message: {described(error)}")
            return
        try:
            await _while_telling_the_server(
                message, asyncio.to_thread(self.consumer.handle, decoded, tracking)
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
            self.app.reject, tracking, message.subject, reason, _complaint_id(message.headers)
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
                decoded = self.consumer.decode(message.data or b"")
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


def _complaint_id(headers: dict[str, str] | None) -> UUID | None:
    try:
        return UUID((headers or {})["Kizuki-Complaint-Id"])
    except (KeyError, ValueError):
        return None


async def _while_telling_the_server(message: Msg, work: Awaitable[None]) -> None:
    """Run the work, telling the server every so often that the message is still being handled."""
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=ACK_WAIT_SECONDS / 3)
        if done:
            return task.result()
        await message.in_progress()


async def _nak_quietly(message: Msg, delay: float) -> None:
    try:
        await message.nak(delay=delay)
    except Exception:
        log.exception("could not nak; the server redelivers after ack_wait")
