"""The dispatcher under passing faults: a store that fails a read, a writer that fails, a key bucket out
of reach (a real nats-server stopped and started again); and what it keeps bounded: attempts in flight
per channel, the part of the log it reads at a start, and what it reads again of what it found there."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from kizuki.processes import free_port, start_nats, stop
from kizuki.provision import provision_bus
from services.notifier import dispatcher
from services.notifier.dispatcher import FINISHED_UP_TO
from services.notifier.domain import Notification
from services.notifier.writer import BATCH
from shared.bus import connect
from shared.directory import Directory
from shared.policy import Policy
from shared.privacy import KeyVault, MasterKey, PatientData
from shared.settings import Settings
from shared.timers import now
from tests.factories import DATA_KEY, complaint_received
from tests.integration.notifier_harness import (  # noqa: F401 (fixtures)
    Notifier,
    endpoint_fixture,
    running_fixture,
    webhook_channel,
)
from tests.polling import eventually
from tests.providers import Endpoint

pytestmark = pytest.mark.integration

DELIVERY = """
[delivery]
timeout_seconds = 10
concurrency_per_channel = {concurrency}
first_retry_seconds = 0.05
max_retry_seconds = 0.2
"""


def failing(times: int, read: Callable[..., Any]) -> Callable[..., Any]:
    """The store's own read, failing its first ``times`` calls as a locked database does."""
    left = [times]

    def read_or_fail(*args: Any) -> Any:
        if left[0] > 0:
            left[0] -= 1
            raise sqlite3.OperationalError("database is locked")
        return read(*args)

    return read_or_fail


async def test_a_store_read_that_fails_is_tried_again_and_nothing_dies(
    settings: Settings,
    directory: Directory,
    endpoint: tuple[str, Endpoint],
    running: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, hook = endpoint
    notifier = Notifier(settings, DELIVERY.format(concurrency=4) + webhook_channel(url + "/hook"), {})
    notifier.dispatcher.poll_interval = 0.05
    delivery_id = notifier.alert(directory)
    recorder = notifier.store.process_recorder
    monkeypatch.setattr(recorder, "select_notifications", failing(2, recorder.select_notifications))
    monkeypatch.setattr(notifier.store, "get_notification", failing(1, notifier.store.get_notification))
    running(notifier)

    assert (await notifier.until_done(delivery_id)).outcome == "delivered by email"
    assert len(hook.requests) == 1


async def test_a_writer_that_fails_goes_on_and_what_it_held_is_recorded_after_all(
    settings: Settings,
    directory: Directory,
    endpoint: tuple[str, Endpoint],
    running: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, hook = endpoint
    notifier = Notifier(settings, DELIVERY.format(concurrency=4) + webhook_channel(url + "/hook"), {})
    failures = [RuntimeError("the writer's batch failed after it was stored")]
    writer = notifier.dispatcher.writer
    store_batch = writer._store

    async def store_then_fail_once(batch: Any) -> None:
        await store_batch(batch)
        if failures:
            raise failures.pop()

    monkeypatch.setattr(writer, "_store", store_then_fail_once)
    first = notifier.alert(directory, "sv-003")
    running(notifier)
    assert (await notifier.until_done(first)).outcome == "delivered by email"
    assert not failures  # the writer failed once on the way
    second = notifier.alert(directory, "sv-004")
    notifier.dispatcher.wake()
    assert (await notifier.until_done(second)).outcome == "delivered by email"
    assert len(hook.requests) == 2


@pytest.mark.parametrize(
    ("per_channel", "own", "in_flight"),
    [(2, "", 2), (1, "concurrency = 3\n", 3)],
    ids=["the delivery cap", "the channel's own cap"],
)
async def test_no_more_than_the_cap_of_attempts_is_in_flight_on_a_channel(
    settings: Settings,
    directory: Directory,
    endpoint: tuple[str, Endpoint],
    running: Any,
    per_channel: int,
    own: str,
    in_flight: int,
) -> None:
    url, hook = endpoint
    hook.delay = 0.5  # a slow provider: without the cap, all six would be in flight at once
    channels = DELIVERY.format(concurrency=per_channel) + webhook_channel(url + "/hook") + own
    notifier = Notifier(settings, channels, {})
    alerts = [notifier.alert(directory, recipient) for recipient in ["sv-003", "sv-004", "dm-001"] * 2]
    running(notifier)
    for delivery_id in alerts:
        assert (await notifier.until_done(delivery_id)).outcome == "delivered by email"
    assert len(hook.requests) == 6
    assert hook.most_in_flight == in_flight


async def test_a_restart_reads_the_log_from_the_place_it_kept(
    settings: Settings,
    directory: Directory,
    endpoint: tuple[str, Endpoint],
    running: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, hook = endpoint
    channels = DELIVERY.format(concurrency=4) + webhook_channel(url + "/hook")
    notifier = Notifier(settings, channels, {})
    notifier.dispatcher.poll_interval = 0.05
    delivered = [notifier.alert(directory, recipient) for recipient in ["sv-003", "sv-004"]]
    first_run = asyncio.create_task(notifier.dispatcher.run())
    for delivery_id in delivered:
        await notifier.until_done(delivery_id)
    last = notifier.store.process_recorder.max_notification_id()
    assert last is not None

    async def kept() -> bool:
        return notifier.store.process_recorder.max_tracking_id(FINISHED_UP_TO) == last

    await eventually(kept, what="the dispatcher's place kept past the finished deliveries")
    first_run.cancel()
    await asyncio.gather(first_run, return_exceptions=True)

    # Started again on the same store: it reads from its place, and takes up what came after it.
    again = Notifier(settings, channels, {})
    again.sequence = notifier.sequence  # the bus messages it has taken
    reads: list[int] = []
    select = again.store.process_recorder.select_notifications

    def counted(start: int, limit: int, *args: Any, **kwargs: Any) -> Any:
        reads.append(start)
        return select(start, limit, *args, **kwargs)

    later = again.alert(directory, "dm-001")
    monkeypatch.setattr(again.store.process_recorder, "select_notifications", counted)
    running(again)
    assert (await again.until_done(later)).outcome == "delivered by email"
    assert reads[0] == last + 1
    assert len(hook.requests) == 3


class OwnBus:
    """A nats-server of the test's own, to be stopped and started again on the same port and store."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.directory = directory
        self.process = self.start()

    def start(self) -> subprocess.Popen[bytes]:
        self.process = start_nats(self.port, self.directory / "nats", self.directory / "nats.log")
        return self.process

    def stop(self) -> None:
        stop(self.process)


class CountingVault(KeyVault):
    """The key bucket, counting the openings that failed."""

    failures = 0

    async def open(self, complaint_id: UUID, sealed: str) -> PatientData | None:
        try:
            return await super().open(complaint_id, sealed)
        except Exception:
            self.failures += 1
            raise


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[OwnBus]:
    own = OwnBus(tmp_path / "own-bus")
    yield own
    own.stop()


@pytest.mark.parametrize("stretch", [BATCH, 2], ids=["reaching the end of the log", "full"])
async def test_requested_notifications_are_made_from_the_log_as_read_and_read_again_only_past_a_full_stretch(
    settings: Settings,
    directory: Directory,
    endpoint: tuple[str, Endpoint],
    running: Any,
    monkeypatch: pytest.MonkeyPatch,
    stretch: int,
) -> None:
    """A stretch of the log shorter than the dispatcher reads at once ends at the end of the log: it
    holds every event of the notifications requested in it, and each is made from them. A full one
    may end before the last events of one of them: those are read from the store."""
    url, hook = endpoint
    notifier = Notifier(settings, DELIVERY.format(concurrency=4) + webhook_channel(url + "/hook"), {})
    alerts = [notifier.alert(directory, recipient) for recipient in ["sv-003", "sv-004", "dm-001"]]
    read_again: list[UUID] = []
    get_notification = notifier.store.get_notification

    def counted(delivery_id: UUID) -> Notification | None:
        read_again.append(delivery_id)
        return get_notification(delivery_id)

    monkeypatch.setattr(notifier.store, "get_notification", counted)
    monkeypatch.setattr(dispatcher, "BATCH", stretch)
    running(notifier)
    for delivery_id in alerts:
        assert (await notifier.until_done(delivery_id)).outcome == "delivered by email"
    assert len(hook.requests) == 3
    if stretch == 2:  # the first stretch is the first two requests, and nothing after them
        assert read_again[:2] == alerts[:2]
    else:
        assert read_again == []


async def test_while_the_key_bucket_is_out_of_reach_the_receipt_waits_and_no_attempt_is_recorded(
    settings: Settings,
    policy: Policy,
    endpoint: tuple[str, Endpoint],
    running: Any,
    bus: OwnBus,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, hook = endpoint
    await provision_bus(bus.url)
    nc = await connect(bus.url, "test")
    vault = CountingVault(MasterKey.load(settings.master_key))
    await vault.bind(nc.jetstream())
    notifier = Notifier(settings, DELIVERY.format(concurrency=4) + webhook_channel(url + "/hook"), {}, vault)
    notifier.dispatcher.poll_interval = 0.2  # the first wait for the bucket
    complaint = complaint_received(name="Sato Hanako", contact="sato@example.org")
    await vault.put(complaint.complaint_id, vault.master.wrap(DATA_KEY))
    patient = await vault.open(complaint.complaint_id, complaint.patient_data)
    notifier.store.request_receipt(
        complaint, patient, policy, notifier.channels.keys(), now(), notifier.tracking()
    )
    receipt_id = notifier.last_requested()
    caplog.set_level(logging.WARNING, logger="services.notifier.dispatcher")
    await asyncio.to_thread(bus.stop)
    running(notifier)

    def waits() -> list[str]:
        return [record.getMessage() for record in caplog.records if "waits" in record.getMessage()]

    async def failed_twice() -> bool:
        return vault.failures >= 2

    await eventually(failed_twice, within=60, what="the key bucket failing the receipt twice")
    assert [e for e in notifier.events(receipt_id) if isinstance(e, Notification.AttemptStarted)] == []
    assert hook.requests == []
    assert "0.2 s" in waits()[0]
    assert "0.4 s" in waits()[1]  # backing off

    await asyncio.to_thread(bus.start)
    receipt = await notifier.until_done(receipt_id)
    assert receipt.outcome == "delivered by email"
    kinds = [type(event).__name__ for event in notifier.events(receipt_id)]
    assert kinds == ["Requested", "AttemptStarted", "Delivered"]
    await nc.close()
