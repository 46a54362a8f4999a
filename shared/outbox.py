"""The outbox relay: a service's notification log, published in order to the record stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from uuid import UUID

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from shared.bus import RECORD_STREAM, due_subject, record_subjects, schedule_subject
from shared.events import WireEvent, encode_event, headers_for
from shared.privacy import KeyVault
from shared.store import ServiceApplication
from shared.timers import Timer

log = logging.getLogger(__name__)

BATCH = 200


def msg_id(service: str, notification_id: int) -> str:
    return f"{service}:{notification_id}"


def notification_id_of(message_id: str, service: str) -> int:
    prefix, _, number = message_id.partition(":")
    if prefix != service or not number.isdigit():
        raise ValueError(f"record message id {message_id!r} was not written by the {service} relay")
    return int(number)


class OutboxRelay:
    """Publishes each stored event once, with ``Nats-Msg-Id: <service>:<notification id>``.

    After a crash it resumes after the last message of its service that it finds on the record.
    A timer asked for by an event is set before the event is published, so an event on the record
    always has its timer pending.
    """

    def __init__(
        self,
        app: ServiceApplication,
        js: JetStreamContext,
        vault: KeyVault | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        self.app = app
        self.js = js
        self.vault = vault
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self.position = 0

    def wake(self) -> None:
        """Call after a commit so the relay publishes at once instead of at its next poll."""
        self._wake.set()

    async def last_relayed(self) -> int:
        try:
            last = await self.js.get_last_msg(RECORD_STREAM, record_subjects(self.app.service))
        except NotFoundError:
            return 0
        return notification_id_of((last.headers or {})["Nats-Msg-Id"], self.app.service)

    async def run(self) -> None:
        self.position = await self.last_relayed()
        log.info("%s relay resumes after notification %d", self.app.service, self.position)
        while True:
            self._wake.clear()
            if not await self.relay_pending():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def relay_pending(self) -> int:
        """Publish what is stored and not yet relayed; returns how many notifications were passed."""
        notifications = await asyncio.to_thread(
            self.app.process_recorder.select_notifications, self.position + 1, BATCH
        )
        for notification in notifications:
            domain_event = self.app.mapper.to_domain_event(notification)
            wire = self.app.wire_event(domain_event)
            if wire is not None:
                for timer in self.app.timers_for(wire):
                    await self._set_timer(timer, notification.id)
                for complaint_id, wrapped in self.app.keys_for(wire):
                    await self._keep_key(complaint_id, wrapped)
                await self._publish(wire, notification.id)
            self.position = notification.id
        return len(notifications)

    async def _publish(self, wire: WireEvent, notification_id: int) -> None:
        ack = await self.js.publish(
            wire.subject,
            encode_event(wire),
            stream=RECORD_STREAM,
            headers=headers_for(wire, msg_id(self.app.service, notification_id)),
        )
        log.debug(
            "relayed %s as %s seq %d (duplicate=%s)", notification_id, wire.subject, ack.seq, ack.duplicate
        )

    async def _keep_key(self, complaint_id: UUID, wrapped: bytes | None) -> None:
        """Put the key where the services that need it find it, or destroy it there."""
        if self.vault is None:
            raise RuntimeError(f"the {self.app.service} relay has patient data keys to keep but no vault")
        if wrapped is None:
            await self.vault.destroy(complaint_id)
        else:
            await self.vault.put(complaint_id, wrapped)

    async def _set_timer(self, timer: Timer, notification_id: int) -> None:
        service = self.app.service
        await self.js.publish(
            schedule_subject(service, timer.key),
            timer.encode(),
            headers={
                "Nats-Msg-Id": f"{msg_id(service, notification_id)}:timer:{timer.key}",
                "Nats-Schedule": timer.schedule,
                "Nats-Schedule-Target": due_subject(service, timer.key),
            },
        )
