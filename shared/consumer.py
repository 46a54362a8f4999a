"""The idempotent consumer: process a bus message, commit its effects with its tracking record, then ack."""

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
from pydantic import ValidationError

from shared.bus import ACK_WAIT_SECONDS, Subscription
from shared.store import ServiceApplication
from shared.timers import FiredEarly

log = logging.getLogger(__name__)

T = TypeVar("T")

# Deliveries of a message whose handler keeps failing before it is set aside as rejected,
# and the wait before the second delivery, doubled for each one after (at most 30 s).
MAX_ATTEMPTS = 5
FIRST_RETRY_DELAY = 1.0


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
        max_attempts: int = MAX_ATTEMPTS,
        first_retry_delay: float = FIRST_RETRY_DELAY,
    ) -> None:
        self.app = app
        self.js = js
        self.consumer = consumer
        self.on_commit = on_commit
        self.max_attempts = max_attempts
        self.first_retry_delay = first_retry_delay

    def retry_delay(self, attempt: int) -> float:
        return min(self.first_retry_delay * 2.0 ** (attempt - 1), 30.0)

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
        except Exception:
            # The store or the bus failed under us: the message stays unacknowledged and comes back.
            log.exception("could not process %s #%d", tracking.application_name, tracking.notification_id)
            await _nak_quietly(message, self.retry_delay(message.metadata.num_delivered))
            return
        self.on_commit()

    async def _apply(self, message: Msg, tracking: Tracking) -> None:
        try:
            decoded = self.consumer.decode(message.data)
        except (ValidationError, ValueError) as error:
            await self._reject(message, tracking, f"not a valid message: {error}")
            return
        try:
            await _while_telling_the_server(
                message, asyncio.to_thread(self.consumer.handle, decoded, tracking)
            )
        except FiredEarly:
            raise
        except Exception as error:
            attempts = message.metadata.num_delivered
            if attempts < self.max_attempts:
                raise
            await self._reject(message, tracking, f"handler failed {attempts} times, last: {error!r}")

    async def _reject(self, message: Msg, tracking: Tracking, reason: str) -> None:
        log.warning("rejecting %s #%d: %s", tracking.application_name, tracking.notification_id, reason)
        await asyncio.to_thread(
            self.app.reject, tracking, message.subject, reason, _complaint_id(message.headers)
        )


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
