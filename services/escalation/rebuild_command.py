"""Escalation's store, lost or broken without a backup, made again from the record alone, with the service
stopped, read with the service's own bus credentials: what `kizuki rebuild escalation` runs, as a
process of its own (``python -m services.escalation.rebuild_command``), so that the command imports no
service.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from uuid import UUID

import psycopg
from eventsourcing.persistence import PersistenceError, Tracking
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from services.escalation.application import EscalationApplication
from services.escalation.rebuild import CannotRebuild, EscalationRebuild, Relayed, handled_before
from shared.bus import RECORD_STREAM, connect, record_subjects
from shared.contracts import ESCALATION
from shared.events import ComplaintReceived, WireEvent, decode_event, subject_of
from shared.outbox import CHECKPOINT_SUFFIX, notification_id_of, set_timer
from shared.runtime import open_store
from shared.settings import Settings, load_settings

SERVICE = ESCALATION.service
# The complaints escalation consumed: a case starts from their facts.
COMPLAINTS_RECEIVED = subject_of(ComplaintReceived)


class RebuildRefused(Exception):
    """The rebuild cannot start or cannot finish; nothing is to be used of what it wrote."""


def rebuild_store(settings: Settings) -> str:
    """Rebuild the service's store; returns what was done, in a sentence."""
    service = SERVICE
    _refuse_while_running(settings, service)
    try:
        store = open_store(EscalationApplication, settings)
        held = store.process_recorder.max_notification_id() or 0
    except (sqlite3.DatabaseError, PersistenceError, psycopg.Error) as broken:
        raise RebuildRefused(
            f"{service}'s store cannot be read ({broken}): move it away ({_where(settings, service)}) first"
        ) from None
    try:
        if held:
            raise RebuildRefused(
                f"{service}'s store holds {held} events: move it away ({_where(settings, service)}) first"
            )
        return asyncio.run(_rebuild(settings, service, store))
    finally:
        store.close()


async def _rebuild(settings: Settings, service: str, store: EscalationApplication) -> str:
    nc = await connect(settings.bus_url, name=f"{service}-rebuild", user=settings.bus_user(service))
    try:
        js = nc.jetstream()
        relayed, complaints, processed = await _read_record(js, service)
        rebuilding = EscalationRebuild(store, complaints)
        try:
            written = await asyncio.to_thread(rebuilding.rebuild, relayed, processed)
        except CannotRebuild as missing:
            raise RebuildRefused(
                f"{missing}; the rebuilt store is incomplete: remove it ({_where(settings, service)})"
            ) from None
        # Set again, in case the lost store had taken a fire whose effect never reached the record.
        timers = await asyncio.to_thread(rebuilding.waiting_timers)
        for timer in timers:
            await set_timer(js, service, timer, f"{service}:rebuild")
    finally:
        await nc.close()
    positions = ", ".join(f"{t.application_name} up to #{t.notification_id}" for t in processed) or "none"
    return (
        f"{service}'s store rebuilt from the record: {len(relayed)} of its events and the "
        f"{len(complaints)} complaints it consumed, {written} events in all; messages taken as processed: "
        f"{positions}; {len(timers)} timers of its open work set again. Start {service} again."
    )


def _refuse_while_running(settings: Settings, service: str) -> None:
    try:
        with socket.create_connection((settings.http_host, settings.http_ports[service]), timeout=1):
            pass
    except OSError:
        return
    raise RebuildRefused(
        f"{service} is running (it answers on {settings.http_url(service)}): "
        "stop it before rebuilding its store"
    )


def _where(settings: Settings, service: str) -> str:
    if settings.postgres is not None:
        return f"the PostgreSQL schema {service}"
    return str(settings.store_file(service))


async def _read_record(
    js: JetStreamContext, service: str
) -> tuple[list[Relayed], dict[UUID, ComplaintReceived], list[Tracking]]:
    relayed: list[Relayed] = []
    async for headers, data in _messages(js, record_subjects(service)):
        message_id = headers["Nats-Msg-Id"]
        if not message_id.endswith(CHECKPOINT_SUFFIX):
            relayed.append(Relayed(notification_id_of(message_id, service), decode_event(data)))
    complaints: dict[UUID, ComplaintReceived] = {}
    async for _, data in _messages(js, COMPLAINTS_RECEIVED):
        complaint = decode_event(data)
        assert isinstance(complaint, ComplaintReceived)
        complaints[complaint.complaint_id] = complaint
    # Every consumed message up to its consumer's acknowledged floor was handled by the lost store; so
    # was the one delivered after it (one at most) if the record shows it.
    processed: list[Tracking] = []
    for subscription in ESCALATION.subscriptions:
        info = await js.consumer_info(subscription.stream, subscription.durable)
        floor = info.ack_floor.stream_seq if info.ack_floor is not None else 0
        delivered = info.delivered.stream_seq if info.delivered is not None else 0
        if delivered > floor:
            pending = await js.get_msg(subscription.stream, seq=delivered)
            try:
                consumed: WireEvent | None = decode_event(pending.data or b"")
            except ValidationError:
                consumed = None
            if handled_before(subscription.stream, delivered, consumed, relayed):
                floor = delivered
        if floor:
            processed.append(Tracking(subscription.stream, floor))
    return sorted(relayed, key=lambda item: item.notification_id), complaints, processed


async def _messages(js: JetStreamContext, subject: str) -> AsyncIterator[tuple[dict[str, str], bytes]]:
    """The record's messages on the subject, in order, one request each (all a service may do)."""
    sequence = 1
    while True:
        try:
            message = await js.get_msg(RECORD_STREAM, seq=sequence, subject=subject, next=True)
        except NotFoundError:
            return
        yield message.headers or {}, message.data or b""
        sequence = (message.seq or sequence) + 1


def main() -> None:
    try:
        print(f"kizuki: {rebuild_store(load_settings())}")
    except (RebuildRefused, NatsError, OSError) as error:
        sys.exit(f"kizuki: {error}")


if __name__ == "__main__":
    main()
