"""Delivers what the store says is owed: each attempt recorded before the message is handed over,
its outcome after; bounded in time and in attempts in flight per channel."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from uuid import UUID

from services.notifier.application import NotifierApplication
from services.notifier.channels import Channel, DeliveryConfig, DeliveryFailed, Message
from services.notifier.domain import COMPLAINANT, Notification
from shared.privacy import KeyVault
from shared.timers import now

log = logging.getLogger(__name__)

BATCH = 200
REQUESTED_TOPIC = f"{Notification.Requested.__module__}:{Notification.Requested.__qualname__}"


class Dispatcher:
    """Follows the store's notification log; every notification requested there gets a task that
    delivers it. After a restart the log is read from the start, so every pending notification is
    taken up again, an attempt in doubt included (resent with the same idempotency key)."""

    def __init__(
        self,
        store: NotifierApplication,
        channels: Mapping[str, Channel],
        config: DeliveryConfig,
        vault: KeyVault,
        on_commit: Callable[[], None],
        poll_interval: float = 1.0,
    ) -> None:
        self.store = store
        self.channels = channels
        self.config = config
        self.vault = vault
        self.on_commit = on_commit
        self.poll_interval = poll_interval
        self.slots = {name: asyncio.Semaphore(config.concurrency_per_channel) for name in channels}
        self._wake = asyncio.Event()
        self._deliveries: dict[UUID, asyncio.Task[None]] = {}

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        position = 0
        try:
            while True:
                self._wake.clear()
                notifications = await asyncio.to_thread(
                    self.store.process_recorder.select_notifications, position + 1, BATCH
                )
                for notification in notifications:
                    if notification.topic == REQUESTED_TOPIC:
                        self._start(UUID(str(notification.originator_id)))
                    position = notification.id
                if not notifications:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll_interval)
        finally:
            for task in self._deliveries.values():
                task.cancel()
            await asyncio.gather(*self._deliveries.values(), return_exceptions=True)

    def _start(self, delivery_id: UUID) -> None:
        task = asyncio.create_task(self.deliver(delivery_id))
        self._deliveries[delivery_id] = task
        task.add_done_callback(lambda _: self._deliveries.pop(delivery_id, None))

    async def deliver(self, delivery_id: UUID) -> None:
        """Attempts until the notification is delivered or given up."""
        while True:
            notification = await asyncio.to_thread(self.store.get_notification, delivery_id)
            if notification is None or not notification.pending:
                return
            if notification.retry_at is not None:
                await asyncio.sleep(max(0.0, (notification.retry_at - now()).total_seconds()))
            try:
                async with self.slots[notification.channel]:
                    await self._attempt(delivery_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery %s could not be recorded; trying again", delivery_id)
                await asyncio.sleep(self.poll_interval)

    async def _attempt(self, delivery_id: UUID) -> None:
        """One attempt, in a slot of its channel: recorded, handed over, its outcome recorded."""
        started = await asyncio.to_thread(self.store.act_on_notification, delivery_id, _start_attempt)
        if started is None:
            return
        self.on_commit()
        channel = started.channel
        address = await self._address(started)
        message = Message(
            delivery_id=delivery_id,
            idempotency_key=started.idempotency_key,
            address=address or "",
            subject=started.subject,
            text=started.text,
        )
        failure: DeliveryFailed | None = None
        try:
            if address is None:
                raise DeliveryFailed("the complaint's patient data was erased", permanent=True)
            await asyncio.wait_for(self.channels[channel].send(message), self.config.timeout_seconds)
        except DeliveryFailed as failed:
            failure = failed
        except TimeoutError:
            failure = DeliveryFailed(f"no answer within {self.config.timeout_seconds} s", permanent=False)
        except Exception as error:  # a fault of ours, not the provider's: tried again, counted
            failure = DeliveryFailed(f"channel error: {error!r}", permanent=False)
        rule = self.config.retry_rule
        if failure is None:
            log.info("delivered %s by %s", delivery_id, channel)
            await asyncio.to_thread(self.store.act_on_notification, delivery_id, lambda n: n.deliver(now()))
        else:
            log.warning("delivery %s by %s failed: %s", delivery_id, channel, failure.reason)
            # The reason goes on the record: never with the address in it.
            reason = failure.reason.replace(address, "<address>") if address else failure.reason
            permanent = failure.permanent
            await asyncio.to_thread(
                self.store.act_on_notification,
                delivery_id,
                lambda n: n.fail_attempt(reason, permanent, now(), rule),
            )
        self.on_commit()

    async def _address(self, notification: Notification) -> str | None:
        """A member of staff's address as it is; a complainant's contact opened from the sealed
        complaint, at each attempt, so that none is kept in clear. None once the complaint is erased."""
        if notification.recipient != COMPLAINANT:
            return notification.address
        patient = await self.vault.open(notification.complaint_id, notification.address)
        return patient.contact if patient is not None else None


def _start_attempt(notification: Notification) -> Notification:
    notification.start_attempt(now())
    return notification
