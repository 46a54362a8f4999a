"""The dispatcher's writes in batches, on real stores: several deliveries' attempts in one transaction, and
a batch that meets a concurrent write (an acknowledgement) loses nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import Tracking

from services.notifier.application import AlertOwed, NotifierApplication
from services.notifier.channels import DeliveryConfig, Message
from services.notifier.dispatcher import Dispatcher
from services.notifier.domain import Notification, NotPending
from shared.directory import Directory
from shared.privacy import KeyVault, MasterKey
from shared.runtime import open_store
from shared.settings import Settings
from shared.timers import now
from tests.factories import alert_requested
from tests.polling import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def store(settings: Settings) -> Iterator[NotifierApplication]:
    opened = open_store(NotifierApplication, settings)
    yield opened
    opened.close()


@pytest.fixture
def any_store(store_settings: Settings) -> Iterator[NotifierApplication]:
    """The same test on SQLite and on PostgreSQL."""
    opened = open_store(NotifierApplication, store_settings)
    yield opened
    opened.close()


def alerts(store: NotifierApplication, directory: Directory, count: int) -> list[UUID]:
    """``count`` alerts to sv-003 (e-mail, then SMS), each requested in its own transaction."""
    for sequence in range(1, count + 1):
        store.request_alert(
            AlertOwed.requested(alert_requested()),
            directory,
            ["email", "sms"],
            lambda d: f"http://kizuki/ack/{d}",
            now(),
            Tracking("EVENTS", sequence),
        )
    requested = store.process_recorder.select_notifications(1, 1000)
    return [UUID(str(notification.originator_id)) for notification in requested]


def kinds(store: NotifierApplication, delivery_id: UUID) -> list[str]:
    return [type(event).__name__ for event in store.events.get(delivery_id)]


class Transactions:
    """The store's recorder, counting: the aggregates whose events each insert held, failed ones too."""

    def __init__(self, store: NotifierApplication, monkeypatch: pytest.MonkeyPatch, pause: float = 0.0):
        self.inserts: list[set[UUID]] = []
        insert_events = store.process_recorder.insert_events

        def counted(events: Sequence[Any], **kwargs: Any) -> Any:
            self.inserts.append({UUID(str(event.originator_id)) for event in events})
            time.sleep(pause)  # in the writer's thread: what is queued meanwhile joins the next batch
            return insert_events(events, **kwargs)

        monkeypatch.setattr(store.process_recorder, "insert_events", counted)


class HeldChannel:
    """Takes every message and holds it until released; ``on_send`` runs as each arrives."""

    def __init__(self, on_send: Callable[[Message], None] = lambda _: None) -> None:
        self.held: list[Message] = []
        self.release = asyncio.Event()
        self.on_send = on_send

    async def send(self, message: Message) -> None:
        self.held.append(message)
        self.on_send(message)
        await self.release.wait()


@pytest.fixture
async def dispatching(store: NotifierApplication, settings: Settings) -> AsyncIterator[Callable[..., None]]:
    tasks: list[asyncio.Task[None]] = []

    def start(channel: HeldChannel, concurrency: int = 8) -> None:
        vault = KeyVault(MasterKey.load(settings.master_key))  # staff alerts open no complaint's key
        config = DeliveryConfig(concurrency_per_channel=concurrency)
        dispatcher = Dispatcher(store, {"email": channel, "sms": channel}, config, vault)
        tasks.append(asyncio.create_task(dispatcher.run()))

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def until_done(store: NotifierApplication, delivery_ids: list[UUID]) -> None:
    async def done() -> bool:
        found = [store.get_notification(delivery_id) for delivery_id in delivery_ids]
        return all(notification is not None and not notification.pending for notification in found)

    await eventually(done, what="every delivery finished")


async def test_the_attempts_of_several_deliveries_are_recorded_in_one_transaction(
    store: NotifierApplication,
    directory: Directory,
    monkeypatch: pytest.MonkeyPatch,
    dispatching: Callable[..., None],
) -> None:
    delivery_ids = alerts(store, directory, 6)
    transactions = Transactions(store, monkeypatch, pause=0.3)
    channel = HeldChannel()
    dispatching(channel)

    async def all_in_flight() -> bool:
        return len(channel.held) == 6

    await eventually(all_in_flight, what="six attempts handed over")
    # Each attempt was stored before its message was handed over, and they were stored together.
    assert all(kinds(store, delivery_id)[-1] == "AttemptStarted" for delivery_id in delivery_ids)
    assert sum(len(insert) for insert in transactions.inserts) == 6
    assert len(transactions.inserts) < 6
    assert max(len(insert) for insert in transactions.inserts) >= 2

    channel.release.set()
    await until_done(store, delivery_ids)
    assert all(kinds(store, d) == ["Requested", "AttemptStarted", "Delivered"] for d in delivery_ids)
    assert sum(len(insert) for insert in transactions.inserts) == 12
    assert len(transactions.inserts) < 12


async def test_an_acknowledgement_while_the_message_is_out_is_kept_with_the_outcome(
    store: NotifierApplication, directory: Directory, dispatching: Callable[..., None]
) -> None:
    [delivery_id] = alerts(store, directory, 1)

    def recipient_clicks_at_once(message: Message) -> None:
        # The link works as soon as the message is out, before the provider's answer is recorded:
        # the dispatcher's notification is now one version behind.
        store.act_on_notification(message.delivery_id, lambda n: n.acknowledge(now()))

    channel = HeldChannel(recipient_clicks_at_once)
    channel.release.set()
    dispatching(channel)

    await until_done(store, [delivery_id])
    assert kinds(store, delivery_id) == ["Requested", "AttemptStarted", "Acknowledged", "Delivered"]
    notification = store.get_notification(delivery_id)
    assert notification is not None
    assert notification.acknowledged_by == "sv-003"
    assert notification.outcome == "delivered by email"
    assert len(channel.held) == 1


def test_a_batch_whose_one_aggregate_conflicts_still_records_the_others(
    any_store: NotifierApplication, directory: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, third = alerts(any_store, directory, 3)
    read = [any_store.get_notification(delivery_id) for delivery_id in (first, second, third)]
    # Another writer changes the second after the batch read it.
    any_store.act_on_notification(second, lambda n: n.acknowledge(now()))
    transactions = Transactions(any_store, monkeypatch)

    def start(notification: Notification) -> None:
        notification.start_attempt(now())

    stored = any_store.act_on_all([(notification, start) for notification in read if notification])

    assert transactions.inserts[0] == {first, second, third}  # tried as one first
    assert all(
        isinstance(notification, Notification) and notification.attempts == 1 for notification in stored
    )
    assert kinds(any_store, first) == kinds(any_store, third) == ["Requested", "AttemptStarted"]
    assert kinds(any_store, second) == ["Requested", "Acknowledged", "AttemptStarted"]


def test_an_action_refused_in_a_batch_is_answered_with_its_error_and_the_others_are_stored(
    store: NotifierApplication, directory: Directory
) -> None:
    first, second = alerts(store, directory, 2)
    store.act_on_notification(second, lambda n: n.give_up("withdrawn", now()))
    read = [store.get_notification(delivery_id) for delivery_id in (first, second)]

    def start(notification: Notification) -> None:
        notification.start_attempt(now())

    started, refused = store.act_on_all([(notification, start) for notification in read if notification])

    assert isinstance(started, Notification)
    assert isinstance(refused, NotPending)
    assert kinds(store, first) == ["Requested", "AttemptStarted"]
    assert kinds(store, second) == ["Requested", "GaveUp"]
