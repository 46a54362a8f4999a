"""Delivers what the store says is owed: each attempt recorded before the message is handed over,
its outcome after; bounded in time and in attempts in flight per channel."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from uuid import UUID

from services.notifier.application import NotifierApplication
from services.notifier.channels import Channel, DeliveryConfig, DeliveryFailed, Message
from services.notifier.domain import COMPLAINANT, Notification
from shared.privacy import KeyVault
from shared.timers import now

log = logging.getLogger(__name__)

Action = Callable[[Notification], object]

BATCH = 200
REQUESTED_TOPIC = f"{Notification.Requested.__module__}:{Notification.Requested.__qualname__}"


class Dispatcher:
    """Follows the store's notification log; every notification requested there gets a task that
    delivers it. After a restart the log is read from the start, so every pending notification is
    taken up again, an attempt in doubt included (resent with the same idempotency key).

    The tasks do not write: they queue what is to be recorded (an attempt started, its outcome) and
    wait for it, and one writer stores whatever is queued in one transaction, so that many deliveries
    cost one commit rather than one each."""

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
        self._to_record: asyncio.Queue[ToRecord] = asyncio.Queue()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        writer = asyncio.create_task(self._record_batches())
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
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    def _start(self, delivery_id: UUID) -> None:
        task = asyncio.create_task(self.deliver(delivery_id))
        self._deliveries[delivery_id] = task
        task.add_done_callback(lambda _: self._deliveries.pop(delivery_id, None))

    async def deliver(self, delivery_id: UUID) -> None:
        """Attempts until the notification is delivered or given up. The notification is read once and
        kept as each record of an attempt returns it; read again only after a failure to record."""
        notification = await asyncio.to_thread(self.store.get_notification, delivery_id)
        while notification is not None and notification.pending:
            if notification.retry_at is not None:
                await asyncio.sleep(max(0.0, (notification.retry_at - now()).total_seconds()))
            try:
                async with self.slots[notification.channel]:
                    notification = await self._attempt(notification)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery %s could not be recorded; trying again", delivery_id)
                await asyncio.sleep(self.poll_interval)
                notification = await asyncio.to_thread(self.store.get_notification, delivery_id)

    async def _attempt(self, notification: Notification) -> Notification:
        """One attempt, in a slot of its channel: recorded, handed over, its outcome recorded."""
        started = await self._record(notification, _start_attempt)
        delivery_id = started.id
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
        if failure is None:
            log.info("delivered %s by %s", delivery_id, channel)
            return await self._record(started, lambda n: n.deliver(now()))
        log.warning("delivery %s by %s failed: %s", delivery_id, channel, failure.reason)
        # The reason goes on the record: never with the address in it.
        reason = failure.reason.replace(address, "<address>") if address else failure.reason
        permanent = failure.permanent
        rule = self.config.retry_rule
        return await self._record(started, lambda n: n.fail_attempt(reason, permanent, now(), rule))

    async def _record(self, notification: Notification, action: Action) -> Notification:
        """The notification with the action applied and stored, by the writer, in its next batch."""
        recorded: asyncio.Future[Notification] = asyncio.get_running_loop().create_future()
        self._to_record.put_nowait(ToRecord(notification, action, recorded))
        return await recorded

    async def _record_batches(self) -> None:
        """The one writer: whatever was queued while the last batch was being stored is the next batch,
        stored in one transaction; the relay is woken once per batch."""
        while True:
            batch = [await self._to_record.get()]
            while not self._to_record.empty() and len(batch) < BATCH:
                batch.append(self._to_record.get_nowait())
            acts = [(queued.notification, queued.action) for queued in batch]
            try:
                outcomes = await asyncio.to_thread(self.store.act_on_all, acts)
            except Exception as error:  # the store failed: each delivery reads its notification again
                outcomes = [error] * len(batch)
            for queued, outcome in zip(batch, outcomes, strict=True):
                if queued.recorded.done():  # its delivery was cancelled
                    continue
                if isinstance(outcome, Exception):
                    queued.recorded.set_exception(outcome)
                else:
                    queued.recorded.set_result(outcome)
            if not all(isinstance(outcome, Exception) for outcome in outcomes):
                self.on_commit()

    async def _address(self, notification: Notification) -> str | None:
        """A member of staff's address as it is; a complainant's contact opened from the sealed
        complaint, at each attempt, so that none is kept in clear. None once the complaint is erased."""
        if notification.recipient != COMPLAINANT:
            return notification.address
        patient = await self.vault.open(notification.complaint_id, notification.address)
        return patient.contact if patient is not None else None


@dataclass(frozen=True)
class ToRecord:
    """An action of a delivery on its notification, waiting for the writer."""

    notification: Notification
    action: Action
    recorded: asyncio.Future[Notification]


def _start_attempt(notification: Notification) -> None:
    notification.start_attempt(now())
