"""The console's read model from a real record stream, on SQLite and PostgreSQL: each event folded
once, even when its message comes again after a crash between commit and ack, and rebuilt at start."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from uuid import uuid4

import pytest
from eventsourcing.persistence import Tracking
from faststream.nats import NatsBroker
from nats.aio.client import Client

from services.console.application import ConsoleApplication
from services.console.handlers import consumers
from shared.consumer import ConsumerLoop
from shared.events import DutyAssigned, WireEvent, encode_event, headers_for
from shared.runtime import open_store
from shared.settings import Settings
from shared.timers import now
from tests.factories import complaint_received
from tests.polling import eventually

pytestmark = pytest.mark.integration


async def test_each_event_is_folded_once_across_a_redelivery_and_a_restart(
    consumer_broker: NatsBroker, nc: Client, store_settings: Settings
) -> None:
    js = nc.jetstream()
    received = complaint_received(heard_by="n-001", department="Ward 3")
    complaint_id, moment = received.complaint_id, now()
    duties: list[WireEvent] = [
        DutyAssigned(
            event_id=uuid4(), complaint_id=complaint_id, occurred_at=moment, recorded_at=moment,
            duty=duty, owner=owner, due_at=moment + timedelta(hours=1), late_on_arrival=False,
        )
        for duty, owner in (("supervisor_acknowledgement", "sv-003"), ("first_response", "hd-003"))
    ]  # fmt: skip
    for event in (received, *duties):
        await js.publish(event.subject, encode_event(event), headers=headers_for(event, str(event.event_id)))

    store = open_store(ConsoleApplication, store_settings)
    [consumer] = consumers(store)
    record = consumer.subscription
    # The console dies after committing the first message and before acking it.
    pull = await js.pull_subscribe_bind(durable=record.durable, stream=record.stream)
    [first] = await pull.fetch(1, timeout=5)
    tracking = Tracking(record.stream, first.metadata.sequence.stream)
    store.note(consumer.decode(first.subject, first.data), tracking)
    await pull.unsubscribe()

    loop = asyncio.create_task(
        ConsumerLoop(store, consumer_broker, consumer, lambda: None, first_retry_delay=0.1).run()
    )
    try:

        async def both_duties() -> bool:
            return store.read(
                lambda cases: len(cases[complaint_id].duties) == 2 if complaint_id in cases else False
            )

        await eventually(both_duties, within=20, what="both duties in the read model")
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
    timeline = store.read(lambda cases: [entry.what for entry in cases[complaint_id].timeline])
    assert timeline == ["ComplaintReceived", "DutyAssigned", "DutyAssigned"]
    store.close()

    again = open_store(ConsoleApplication, store_settings)  # a restart: rebuilt from its own store
    rebuilt = again.read(lambda cases: cases[complaint_id])
    assert [entry.what for entry in rebuilt.timeline] == timeline
    assert (rebuilt.department, rebuilt.heard_by) == ("Ward 3", "n-001")
    assert rebuilt.duties["first_response"].owner == "hd-003"
    again.close()


def test_replicas_of_the_console_each_fold_every_event_stored_whichever_handled_it(
    store_settings: Settings,
) -> None:
    """Two processes of the console share the store and the durable consumer: each is handed some of
    the messages, and each read model shows them all, in the order they were stored."""
    if store_settings.postgres is None:
        pytest.skip("replicas share a PostgreSQL store; a SQLite store is one process's")
    received = complaint_received(heard_by="n-001", department="Ward 3")
    complaint_id, moment = received.complaint_id, now()
    duties = [
        DutyAssigned(
            event_id=uuid4(), complaint_id=complaint_id, occurred_at=moment, recorded_at=moment,
            duty=duty, owner="sv-003", due_at=moment + timedelta(hours=1), late_on_arrival=False,
        )
        for duty in ("supervisor_acknowledgement", "supervisor_report")
    ]  # fmt: skip
    first, second = (
        open_store(ConsoleApplication, store_settings),
        open_store(ConsoleApplication, store_settings),
    )
    try:
        first.note(received, Tracking("EVENTS", 1))
        second.note(duties[0], Tracking("EVENTS", 2))
        first.note(duties[1], Tracking("EVENTS", 3))  # it reads what the second stored before its own
        assert second.catch_up() == 1  # what the first stored after it (as the worker does every 0.5 s)
        assert first.catch_up() == 0
        for replica in (first, second):
            timeline = replica.read(lambda cases: [entry.what for entry in cases[complaint_id].timeline])
            assert timeline == ["ComplaintReceived", "DutyAssigned", "DutyAssigned"]
            assert replica.read(lambda cases: set(cases[complaint_id].duties)) == {
                "supervisor_acknowledgement",
                "supervisor_report",
            }
    finally:
        first.close()
        second.close()
