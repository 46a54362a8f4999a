"""Leases in PostgreSQL: taken, renewed, lost when they run out, taken over; a holder paused past its
lease stops; and what stops a late ex-holder when the lease alone would not: the record's chain
expectation (the relay) and an attempt recorded before it is sent (the dispatcher)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import Tracking
from faststream.nats import NatsBroker
from nats.aio.client import Client
from nats.js.errors import APIError
from psycopg import sql

from kizuki.audit import read_messages
from kizuki.processes import free_port
from kizuki.provision import provision_signing_keys
from kizuki.verify import Verifier
from services.escalation.application import EscalationApplication
from services.escalation.handlers import consumers as escalation_consumers
from services.intake.main import open_intake_store
from services.notifier.domain import Notification
from shared.bus import RECORD_STREAM, connect
from shared.chain import SigningKey, TrustFile
from shared.consumer import ConsumerLoop
from shared.directory import Directory, watch_directory
from shared.events import encode_event
from shared.lease import LeaseLost, PostgresLease, check, connection_kwargs, while_held
from shared.outbox import Checkpoints, OutboxRelay
from shared.policy import Policy
from shared.privacy import KeyVault, MasterKey
from shared.runtime import open_store
from shared.settings import PostgresSettings, Settings
from shared.timers import now
from tests.factories import DATA_KEY, another_patients, complaint_received
from tests.integration.notifier_harness import (  # noqa: F401 (fixtures)
    Notifier,
    endpoint_fixture,
    running_fixture,
    webhook_channel,
)
from tests.polling import eventually
from tests.providers import Endpoint

pytestmark = pytest.mark.integration

TTL = 1.0
# JetStream's refusal of a publish whose Nats-Expected-Last-Subject-Sequence is no longer the last.
WRONG_LAST_SEQUENCE = 10071
DELIVERY = """
[delivery]
timeout_seconds = 10
first_retry_seconds = 0.05
max_retry_seconds = 0.2
"""


@pytest.fixture
def postgres(postgres_server: PostgresSettings) -> PostgresSettings:
    """A database of its own on the session's server."""
    dbname = f"kizuki_lease_{free_port()}"
    with psycopg.connect(**connection_kwargs(postgres_server), autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return replace(postgres_server, dbname=dbname)


@pytest.fixture
def on_postgres(settings: Settings, postgres: PostgresSettings) -> Settings:
    return replace(settings, store="postgres", postgres=postgres)


@pytest.fixture
async def leases(postgres: PostgresSettings) -> AsyncIterator[tuple[PostgresLease, PostgresLease]]:
    """Two replicas' hold on one lease."""
    pair = (PostgresLease(postgres, "intake", "relay", TTL), PostgresLease(postgres, "intake", "relay", TTL))
    yield pair
    for lease in pair:
        await lease.release()


def expires_at(postgres: PostgresSettings) -> Any:
    with psycopg.connect(**connection_kwargs(postgres)) as connection:
        query = "SELECT expires_at - now() FROM intake.leases WHERE name = 'relay'"
        row = connection.execute(query).fetchone()
        assert row is not None
        return row[0].total_seconds()


async def test_a_lease_is_held_by_one_renewed_by_it_and_taken_over_once_it_runs_out(
    leases: tuple[PostgresLease, PostgresLease], postgres: PostgresSettings
) -> None:
    first, second = leases
    assert await first.take()
    assert first.held()
    assert not await second.take()
    assert not second.held()
    assert 0 < expires_at(postgres) <= TTL  # by the database's clock

    await asyncio.sleep(TTL * 0.6)
    assert first.held()
    assert await first.take()  # renewed: it runs out a TTL after the renewal, not after the take
    assert expires_at(postgres) > TTL * 0.6
    await asyncio.sleep(TTL * 0.6)
    assert first.held()
    assert not await second.take()

    await asyncio.sleep(TTL)  # not renewed: it runs out, by the holder's clock first
    assert not first.held()
    assert await second.take()
    assert second.held()
    assert not await first.take()  # lost: the first one does not get it back while the second renews
    assert not first.held()

    await second.release()  # a clean stop: the other takes it at once, not after the TTL
    assert not second.held()
    assert await first.take()


async def test_a_holder_paused_past_its_lease_does_no_more_work_and_takes_it_back_when_free(
    leases: tuple[PostgresLease, PostgresLease], postgres: PostgresSettings
) -> None:
    first, _ = leases
    steps: list[int] = []
    taken_meanwhile: list[bool] = []

    def another_replica_takes_the_lease() -> None:
        async def take() -> None:
            await asyncio.sleep(TTL + 0.2)
            other = PostgresLease(postgres, "intake", "relay", TTL)
            taken_meanwhile.append(await other.take())
            await other._close()  # neither renewed nor given up: it runs out one TTL later

        asyncio.run(take())

    async def work() -> None:
        while True:
            check(first)
            steps.append(len(steps))
            if len(steps) == 3:
                # The whole process stops (as under SIGSTOP, or a long pause), renewal and all, for
                # longer than its lease, and another replica takes the lease meanwhile.
                other = threading.Thread(target=another_replica_takes_the_lease)
                other.start()
                time.sleep(TTL + 0.5)  # noqa: ASYNC251  # the point: the event loop stops too
                other.join()
            await asyncio.sleep(0.01)

    held = asyncio.create_task(while_held(first, work))
    try:
        await eventually(lambda: asyncio.sleep(0, len(steps) >= 3), what="three steps")
        await asyncio.sleep(0.1)
        assert taken_meanwhile == [True]
        assert steps == [0, 1, 2]  # it woke up past its lease: the next step was not taken
        assert not first.held()
        # The other replica's lease runs out unrenewed: the first takes it back and works on.
        await eventually(lambda: asyncio.sleep(0, len(steps) > 3), within=3 * TTL, what="work again")
        assert first.held()
    finally:
        held.cancel()
        await asyncio.gather(held, return_exceptions=True)


async def test_a_late_relay_publishes_nothing_and_could_not_fork_the_chain_if_it_tried(
    on_postgres: Settings, nc: Client, nats_url: str, postgres: PostgresSettings
) -> None:
    """Two replicas of intake on one PostgreSQL schema: the first relays, is paused past its lease,
    the second takes over and relays. The first, awake again, stops at its lease; and had it been paused
    between the check and the publish, the server refuses its link (its head is not the last one)."""
    settings = on_postgres
    provision_signing_keys(settings)
    key = SigningKey.load(settings.signing_key_file("intake"))
    replica_nc = await connect(nats_url, "replica")
    stores = [open_intake_store(settings), open_intake_store(settings)]
    vault = KeyVault(MasterKey.load(settings.master_key))
    await vault.bind(nc.jetstream())
    first_lease, second_lease = (PostgresLease(postgres, "intake", "relay", TTL) for _ in range(2))
    try:
        first, second = (
            OutboxRelay(store, client.jetstream(), Checkpoints(key), vault, lease=lease)
            for store, client, lease in zip(
                stores, (nc, replica_nc), (first_lease, second_lease), strict=True
            )
        )
        assert await first_lease.take()
        stores[0].register(another_patients(0), None, now())
        first.position = await first.last_relayed()
        await first.relay_pending()

        await asyncio.sleep(TTL)  # the first is paused past its lease
        assert await second_lease.take()
        second.position = await second.last_relayed()
        stores[1].register(another_patients(1), None, now())
        await second.relay_pending()
        on_record = [message async for message in read_messages(nc.jetstream())]

        # The first wakes up: its lease ran out, so it publishes nothing.
        stores[0].register(another_patients(2), None, now())
        with pytest.raises(LeaseLost):
            await first.relay_pending()
        # Paused after its check instead, its next event read (the one the holder has not relayed): the
        # server refuses the link that would fork the chain. (A stretch holding the holder's event too
        # goes out as one batch, which the server refuses for that duplicate; the relay then goes on
        # from the record's head, linked as the holder's next event would be: no fork either.)
        first.lease = None
        first.position = second.position
        with pytest.raises(APIError) as refused:
            await first.relay_pending()
        assert refused.value.err_code == WRONG_LAST_SEQUENCE
        assert [message async for message in read_messages(nc.jetstream())] == on_record

        await second.relay_pending()  # the holder relays what the first one's replica stored
        await second.sign_head()
    finally:
        await replica_nc.close()
        await first_lease.release()
        await second_lease.release()
        for store in stores:
            store.close()
    record = [message async for message in read_messages(nc.jetstream())]
    assert [message.headers["Kizuki-Event-Type"] for message in record] == [
        *["ComplaintReceived"] * 3,
        "CheckpointSigned",
    ]
    verifier = Verifier(TrustFile.load(settings.trust_file))
    for message in record:
        verifier.check(message)
    verifier.finish()
    assert verifier.holds, verifier.problems


def attempts(notifier: Notifier, delivery_id: Any) -> list[str]:
    return [type(event).__name__ for event in notifier.events(delivery_id)]


async def test_a_late_dispatcher_whose_delivery_moved_on_records_nothing_and_sends_nothing(
    on_postgres: Settings, directory: Directory, endpoint: tuple[str, Endpoint], running: Any
) -> None:
    """Its lease not noticed as lost (say it was paused just after its check): the attempt it records
    on the notification as it last read it conflicts with what the new holder recorded; read again,
    the notification is delivered, and nothing is sent."""
    url, hook = endpoint
    channels = DELIVERY + webhook_channel(url + "/hook")
    late, holder = Notifier(on_postgres, channels, {}), Notifier(on_postgres, channels, {})
    delivery_id = late.alert(directory)
    as_read_before_the_pause = late.store.get_notification(delivery_id)
    assert as_read_before_the_pause is not None

    running(holder)
    await holder.until_done(delivery_id)
    assert len(hook.requests) == 1

    writer = asyncio.create_task(late.dispatcher.writer.run())
    try:
        await late.dispatcher.deliver(as_read_before_the_pause)
    finally:
        writer.cancel()
    assert len(hook.requests) == 1
    assert attempts(late, delivery_id) == ["Requested", "AttemptStarted", "Delivered"]


async def test_a_dispatcher_whose_lease_ran_out_sends_nothing_and_the_new_holder_sends_once(
    on_postgres: Settings,
    postgres: PostgresSettings,
    directory: Directory,
    endpoint: tuple[str, Endpoint],
    running: Any,
) -> None:
    url, hook = endpoint
    channels = DELIVERY + webhook_channel(url + "/hook")
    late, holder = Notifier(on_postgres, channels, {}), Notifier(on_postgres, channels, {})
    late.dispatcher.lease = PostgresLease(postgres, "notifier", "dispatcher", TTL)
    holder.dispatcher.lease = PostgresLease(postgres, "notifier", "dispatcher", TTL)
    assert await late.dispatcher.lease.take()
    delivery_id = late.alert(directory)
    notification = late.store.get_notification(delivery_id)
    assert notification is not None

    await asyncio.sleep(TTL)  # paused past its lease: its attempt is recorded, then it stops
    writer = asyncio.create_task(late.dispatcher.writer.run())
    try:
        with pytest.raises(LeaseLost):
            await late.dispatcher.deliver(notification)
    finally:
        writer.cancel()
    assert hook.requests == []

    running(holder)  # takes the lease, and the attempt left in doubt is made again, once
    finished = await holder.until_done(delivery_id)
    assert finished.outcome == "delivered by email"
    assert len(hook.requests) == 1
    assert attempts(holder, delivery_id) == ["Requested", "AttemptStarted", "AttemptStarted", "Delivered"]
    assert isinstance(finished, Notification)
    await holder.dispatcher.lease.release()


class LapsingOnce:
    """A dispatcher's lease that lapses once, as a delivery checks it just before its send."""

    name, holder, ttl = "dispatcher", "this replica", TTL
    lapsed = False

    async def take(self) -> bool:
        return True

    def held(self) -> bool:
        task = asyncio.current_task()
        in_a_delivery = task is not None and task.get_coro().__qualname__.endswith(".deliver")  # type: ignore[union-attr]
        if in_a_delivery and not self.lapsed:
            self.lapsed = True
            return False
        return True

    async def release(self) -> None:
        return None


async def test_a_delivery_stopped_by_its_lease_is_taken_up_again_once_the_lease_is_held_again(
    settings: Settings, directory: Directory, endpoint: tuple[str, Endpoint], running: Any
) -> None:
    """A delivery that found the lease run out is not finished: the dispatcher stops, takes the lease
    again and reads the log from the place it kept, which it kept before that delivery."""
    url, hook = endpoint
    notifier = Notifier(settings, DELIVERY + webhook_channel(url + "/hook"), {})
    notifier.dispatcher.lease = lease = LapsingOnce()
    notifier.dispatcher.poll_interval = 0.05
    delivery_id = notifier.alert(directory)
    running(notifier)
    finished = await notifier.until_done(delivery_id)
    assert lease.lapsed
    assert finished.outcome == "delivered by email"
    assert len(hook.requests) == 1
    assert attempts(notifier, delivery_id) == ["Requested", "AttemptStarted", "AttemptStarted", "Delivered"]


def test_replicas_starting_at_once_on_an_empty_schema_each_open_the_store(on_postgres: Settings) -> None:
    """Each makes the store's tables if they are missing; at the same moment, one waits for the other
    (else CREATE ... IF NOT EXISTS meets the other's half-made type and the replica exits at start)."""
    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: open_store(EscalationApplication, on_postgres), range(4)))
    for store in stores:
        store.close()


async def test_a_consumer_takes_messages_only_while_its_replica_holds_the_lease_and_again_once_it_does(
    consumer_broker: NatsBroker,
    nc: Client,
    settings: Settings,
    policy: Policy,
    postgres: PostgresSettings,
) -> None:
    js = nc.jetstream()
    vault = KeyVault(MasterKey.load(settings.master_key))
    await vault.bind(js)
    store = open_store(EscalationApplication, settings)
    consumer = escalation_consumers(store, policy, watch_directory(settings.directory_path), vault)[0]
    loop = ConsumerLoop(store, consumer_broker, consumer, lambda: None)
    lease = PostgresLease(postgres, "escalation", f"consumer {loop.name}", TTL)

    async def publish_complaint() -> int:
        event = complaint_received()
        await vault.put(event.complaint_id, vault.master.wrap(DATA_KEY))
        return (await js.publish(event.subject, encode_event(event))).seq

    def handled(sequence: int) -> Callable[[], Awaitable[bool]]:
        return lambda: asyncio.to_thread(store.has_processed, Tracking(RECORD_STREAM, sequence))

    held = asyncio.create_task(while_held(lease, loop.run))
    try:
        await eventually(handled(await publish_complaint()), what="the first complaint handled")
        # Another replica holds the lease for 3 s (as after this one was paused past it): this one
        # stops taking messages, and the next complaint waits for whoever holds the lease.
        with psycopg.connect(**connection_kwargs(postgres)) as connection:
            connection.execute(
                "UPDATE escalation.leases SET holder = 'another replica', expires_at = now() + interval '3 s'"
            )
        await eventually(lambda: asyncio.sleep(0, not lease.held()), what="the lease lost")
        second = await publish_complaint()
        await asyncio.sleep(1.0)
        assert not await handled(second)()
        # The other replica's lease runs out unrenewed: this one takes it back, binds again, goes on.
        await eventually(handled(second), within=10, what="the second complaint handled")
        assert lease.held()
    finally:
        held.cancel()
        await asyncio.gather(held, return_exceptions=True)
        await lease.release()
        store.close()
