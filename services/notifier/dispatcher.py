"""Delivers what the store says is owed: each attempt recorded before the message is handed over,
its outcome after; bounded in time and in attempts in flight per channel."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import TypeVar
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Tracking

from services.notifier.application import NotifierApplication
from services.notifier.channels import Channel, DeliveryConfig, DeliveryFailed, Message
from services.notifier.domain import COMPLAINANT, ERASED, Notification
from services.notifier.writer import BATCH, Writer
from shared import tracing
from shared.lease import HeldAlone, Lease, LeaseLost, check, while_held
from shared.metrics import ALERTS_REACHING_NO_ONE, DELIVERIES
from shared.privacy import KeyVault
from shared.store import projected
from shared.timers import now

log = logging.getLogger(__name__)

Read = TypeVar("Read")

REQUESTED_TOPIC = f"{Notification.Requested.__module__}:{Notification.Requested.__qualname__}"
# The dispatcher's place in the store's log, kept in the store as a tracking record: every
# notification requested at or before it is finished, so a restart reads the log from there.
FINISHED_UP_TO = "notifier-dispatcher"
MAX_VAULT_WAIT = 30.0
# The place is kept at most this often, however often the log is read (a row each time).
KEEP_PLACE_EVERY = 1.0


class Dispatcher:
    """Follows the store's notification log; every notification requested there gets a task that
    delivers it. After a restart the log is read from the place kept in the store, before which every
    notification is finished, so every pending one is taken up again, an attempt in doubt included
    (resent with the same idempotency key). What the tasks record is stored by one writer (``Writer``).

    Every read of the store is retried after a failure; a task never dies of one.

    Leased: replicas of the notifier share its store, and each would otherwise deliver every pending
    notification. Only the replica holding the ``dispatcher`` lease follows the log; the lease is
    checked again between recording an attempt and handing the message over, so a dispatcher that
    was paused past its lease sends nothing more. What another replica recorded meanwhile makes the
    late one's record of an attempt fail (the notification's version moved on), and it reads the
    notification again. What stays: a holder that stops in the middle of a send leaves an attempt in
    doubt, which the next holder sends again under the same idempotency key."""

    def __init__(
        self,
        store: NotifierApplication,
        channels: Mapping[str, Channel],
        config: DeliveryConfig,
        vault: KeyVault,
        poll_interval: float = 1.0,
        lease: Lease | None = None,
        in_flight: Mapping[str, int] | None = None,
    ) -> None:
        """``in_flight``: attempts each channel may have in flight at once, by name (the channel
        configuration's ``in_flight``); a channel not named there, ``config.concurrency_per_channel``."""
        self.store = store
        self.lease: Lease = lease or HeldAlone("dispatcher")
        self.channels = channels
        self.config = config
        self.vault = vault
        self.poll_interval = poll_interval
        self.writer = Writer(store)
        limits = in_flight or {}
        self.slots = {
            name: asyncio.Semaphore(limits.get(name, config.concurrency_per_channel)) for name in channels
        }
        self._wake = asyncio.Event()
        self._deliveries: dict[UUID, asyncio.Task[None]] = {}
        self._requested_at: dict[UUID, int] = {}  # the log position of each running delivery's request
        self._lost = False  # a delivery stopped for the lease ran out: the dispatcher stops too

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Deliver while this replica holds the dispatcher's lease; wait while another does."""
        await while_held(self.lease, self._follow)

    async def _follow(self) -> None:
        self._lost = False
        self._requested_at.clear()  # what a delivery stopped by a lost lease left: read again from the log
        writer = asyncio.create_task(self.writer.run())
        try:
            position = await self._read(self.store.process_recorder.max_tracking_id, FINISHED_UP_TO) or 0
            kept, kept_at = position, time.monotonic()
            while True:
                self._wake.clear()
                if self._lost:
                    raise LeaseLost(f"a delivery of {self.lease.holder} found the lease run out")
                check(self.lease)
                if time.monotonic() - kept_at >= max(self.poll_interval, KEEP_PLACE_EVERY):
                    kept, kept_at = await self._keep_place(position, kept), time.monotonic()
                read_up_to, requested = await self._read(self._requests_after, position)
                for requested_at, notification, traceparent in requested:
                    self._start(notification, requested_at, traceparent)
                if read_up_to == position:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                position = read_up_to
        finally:
            for task in self._deliveries.values():
                task.cancel()
            await asyncio.gather(*self._deliveries.values(), return_exceptions=True)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    def _requests_after(self, position: int) -> tuple[int, list[tuple[int, Notification, str | None]]]:
        """In a worker thread: how far the log was read (at most BATCH past ``position``), and each
        notification requested in that stretch with its place in the log: one trip to the store's
        thread for them all rather than one per delivery. With each, the trace of the event that asked
        for it (if traced): its deliveries go on that trace.

        A notification's events all come after its request in the log, so when the stretch reaches
        the end of the log (shorter than BATCH) it holds every event of those notifications: each is
        made from them, not read again (that read was an eighth of the notifier's time). A fuller
        stretch may end before the last of them: those are read from the store."""
        stretch = self.store.process_recorder.select_notifications(position + 1, BATCH)
        traced = tracing.enabled()
        events_of: dict[UUID, tuple[int, list[DomainEventProtocol[UUID]], str | None]] = {}
        for row in stretch:
            delivery_id = UUID(str(row.originator_id))
            if row.topic == REQUESTED_TOPIC:
                event, traceparent = self.store.mapper.traced_domain_event(row)
                events_of[delivery_id] = (row.id, [event], traceparent if traced else None)
            elif delivery_id in events_of:
                events_of[delivery_id][1].append(self.store.mapper.to_domain_event(row))
        whole = len(stretch) < BATCH
        requested = []
        for delivery_id, (requested_at, events, traceparent) in events_of.items():
            notification = projected(None, events) if whole else self.store.get_notification(delivery_id)
            if isinstance(notification, Notification):
                requested.append((requested_at, notification, traceparent))
        return (stretch[-1].id if stretch else position), requested

    async def _read(self, read: Callable[..., Read], *args: object) -> Read:
        """A read of the store, tried again until it succeeds (a locked or unreachable store passes)."""
        while True:
            try:
                return await asyncio.to_thread(read, *args)
            except Exception as error:
                log.error("the notifier's store could not be read (%s); trying again", type(error).__name__)
                await asyncio.sleep(self.poll_interval)

    async def _keep_place(self, position: int, kept: int) -> int:
        """Moves the kept place up to just before the oldest request still being delivered. Done once
        a poll interval (and ``KEEP_PLACE_EVERY``) at most, not at every wake: each is a transaction
        (and a row), and a restart only reads a little more of the log, whose finished notifications
        it passes over."""
        finished_up_to = min(self._requested_at.values(), default=position + 1) - 1
        if finished_up_to <= kept:
            return kept
        try:
            tracking = Tracking(FINISHED_UP_TO, finished_up_to)
            await asyncio.to_thread(self.store.process_recorder.insert_tracking, tracking)
        except Exception as error:  # kept next time; meanwhile a restart reads a little more
            log.error("the dispatcher's place could not be kept (%s)", type(error).__name__)
            return kept
        return finished_up_to

    def _start(self, notification: Notification, requested_at: int, traceparent: str | None) -> None:
        delivery_id = notification.id
        task = asyncio.create_task(self.deliver(notification, traceparent))
        self._deliveries[delivery_id] = task
        self._requested_at[delivery_id] = requested_at

        def finished(done: asyncio.Task[None]) -> None:
            self._deliveries.pop(delivery_id, None)
            if not done.cancelled() and isinstance(done.exception(), LeaseLost):
                # Not finished: its place is not kept past, and the dispatcher stops (see _follow).
                self._lost = True
                self._wake.set()
                return
            self._requested_at.pop(delivery_id, None)

        task.add_done_callback(finished)

    async def deliver(self, requested: Notification, traceparent: str | None = None) -> None:
        """Attempts until the notification is delivered or given up. The notification as read with the
        log that requested it is kept as each record of an attempt returns it; read again only after a
        failure to record. Each attempt is logged, and traced, as handling its complaint's
        NotificationAttempted."""
        delivery_id = requested.id
        notification: Notification | None = requested
        while notification is not None and notification.pending:
            if notification.retry_at is not None:
                await asyncio.sleep(max(0.0, (notification.retry_at - now()).total_seconds()))
            try:
                address = await self._address(notification)
                if address is None:
                    notification = await self.writer.record(notification, _give_up_erased)
                    continue
                async with self.slots[notification.channel]:
                    with tracing.handling(
                        "notifier",
                        f"delivers by {notification.channel}",
                        str(notification.complaint_id),
                        "NotificationAttempted",
                        traceparent,
                    ):
                        notification = await self._attempt(notification, address)
            except (asyncio.CancelledError, LeaseLost):
                raise
            except Exception as error:
                log.error(
                    "delivery %s could not be recorded (%s); trying again", delivery_id, type(error).__name__
                )
                await asyncio.sleep(self.poll_interval)
                notification = await self._read(self.store.get_notification, delivery_id)

    async def _attempt(self, notification: Notification, address: str) -> Notification:
        """One attempt, in a slot of its channel: recorded, handed over, its outcome recorded."""
        started = await self.writer.record(notification, _start_attempt)
        delivery_id = started.id
        channel = started.channel
        message = Message(
            delivery_id=delivery_id,
            idempotency_key=started.idempotency_key,
            complaint_id=started.complaint_id,
            recipient=started.recipient,
            address=address,
            subject=started.subject,
            text=started.text,
        )
        failure: DeliveryFailed | None = None
        timeout = self.config.timeout_seconds
        check(self.lease)  # no await since the attempt was recorded: a replica paused meanwhile stops here
        try:
            async with asyncio.timeout(timeout):
                await self.channels[channel].send(message)
        except DeliveryFailed as failed:
            failure = failed
        except TimeoutError:
            failure = DeliveryFailed("timeout", permanent=False, status=f"no answer within {timeout} s")
        except Exception as error:  # a fault of ours, not the provider's: tried again, counted
            log.error("channel %s failed on delivery %s: %s", channel, delivery_id, type(error).__name__)
            failure = DeliveryFailed("channel_error", permanent=False)
        if failure is None:
            log.info("delivered %s by %s", delivery_id, channel)  # the night operator sees each delivery
            DELIVERIES.labels(channel, "delivered").inc()
            return await self.writer.record(started, lambda n: n.deliver(now()))
        # Only the classified reason, in the log, on the record and in metrics: never the provider's text.
        log.warning("delivery %s by %s failed: %s", delivery_id, channel, failure.reason)
        DELIVERIES.labels(channel, failure.kind).inc()
        reason, permanent, rule = failure.reason, failure.permanent, self.config.retry_rule
        recorded = await self.writer.record(started, lambda n: n.fail_attempt(reason, permanent, now(), rule))
        if recorded.duty is not None and not recorded.pending:
            ALERTS_REACHING_NO_ONE.inc()
        return recorded

    async def _address(self, notification: Notification) -> str | None:
        """A member of staff's address as it is; a complainant's contact opened from the sealed
        complaint, at each attempt, so that none is kept in clear. None once the complaint is erased.

        While the key bucket cannot be reached (a passing fault) no attempt is made, so none is
        recorded: the delivery waits, twice as long each time, up to MAX_VAULT_WAIT."""
        if notification.recipient != COMPLAINANT:
            return notification.address
        wait = self.poll_interval
        while True:
            try:
                patient = await self.vault.open(notification.complaint_id, notification.address)
            except Exception as error:
                log.warning(
                    "delivery %s waits %.1f s for the key bucket (%s)",
                    notification.id,
                    wait,
                    type(error).__name__,
                )
                await asyncio.sleep(wait)
                wait = min(wait * 2, MAX_VAULT_WAIT)
                continue
            return patient.contact if patient is not None else None


def _start_attempt(notification: Notification) -> None:
    notification.start_attempt(now())


def _give_up_erased(notification: Notification) -> None:
    notification.give_up(ERASED, now())
