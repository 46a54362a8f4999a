"""Outbox relay, idempotent consumers and timers against a real nats-server with JetStream."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Tracking
from faststream.nats import NatsBroker
from nats.aio.client import Client
from nats.js import JetStreamContext

from services.console.application import ConsoleApplication
from services.escalation.application import EscalationApplication
from services.escalation.handlers import consumers as escalation_consumers
from services.followup.application import CALLBACK_RULE, FollowupApplication
from services.followup.handlers import consumers as followup_consumers
from services.intake.main import open_intake_store
from shared import consumer as consumer_module
from shared.bus import RECORD_STREAM, Subscription, due_subject
from shared.chain import SigningKey, new_seed
from shared.consumer import Consumer, ConsumerLoop, body_only
from shared.directory import Directory, watch_directory
from shared.events import ComplaintReceived, EscalationStarted, decode_event, encode_event, headers_for
from shared.outbox import Checkpoints, OutboxRelay
from shared.policy import Policy, load_policy
from shared.privacy import KeyVault, MasterKey, PatientData
from shared.recorders import SQLiteRecorder
from shared.runtime import ServiceRuntime, open_store
from shared.settings import Settings
from shared.timers import Timer, now
from tests.factories import DATA_KEY, another_patients, complaint_received
from tests.polling import eventually

pytestmark = pytest.mark.integration

CHECKPOINTS = Checkpoints(SigningKey(new_seed()))


@pytest.fixture
async def vault(nc: Client, settings: Settings) -> KeyVault:
    bound = KeyVault(MasterKey.load(settings.master_key))
    await bound.bind(nc.jetstream())
    return bound


async def publish_complaint(js: JetStreamContext, vault: KeyVault, event: ComplaintReceived) -> None:
    """As intake's relay does it: the complaint's key in the bucket first, then the complaint."""
    await vault.put(event.complaint_id, vault.master.wrap(DATA_KEY))
    await js.publish(event.subject, encode_event(event))


async def record_of(js: JetStreamContext, subject: str = "events.>") -> list[tuple[str, Any, dict[str, str]]]:
    """(subject, decoded body, headers) of every record message on the subject, in order."""
    info = await js.stream_info(RECORD_STREAM)
    found: list[tuple[str, Any, dict[str, str]]] = []
    if info.state.messages == 0:
        return found
    for sequence in range(info.state.first_seq, info.state.last_seq + 1):
        message = await js.get_msg(RECORD_STREAM, sequence)
        if subject == "events.>" or message.subject == subject:
            try:
                body: Any = decode_event(message.data or b"")
            except ValueError:
                body = message.data
            found.append((message.subject or "", body, dict(message.headers or {})))
    return found


async def test_the_relay_publishes_in_order_once_and_resumes_after_a_restart(
    nc: Client, settings: Settings, vault: KeyVault
) -> None:
    js = nc.jetstream()
    store = open_intake_store(settings)
    try:
        for n in range(3):
            store.register(another_patients(n), None, now())
        relay = OutboxRelay(store, js, CHECKPOINTS, vault)
        relay.position = await relay.last_relayed()
        assert await relay.relay_pending() == 6  # each complaint, and its reference's index entry

        for n in range(3, 5):
            store.register(another_patients(n), None, now())
        restarted = OutboxRelay(store, js, CHECKPOINTS, vault)  # a new process finds its place on the record
        restarted.position = await restarted.last_relayed()
        assert restarted.position == 5  # the third complaint
        await restarted.relay_pending()

        # A relay that crashed after publishing but before it knew: the server drops the copies.
        restarted.position = 5
        await restarted.relay_pending()

        record = await record_of(js)
        complaints = [f"intake:{n}" for n in range(1, 10, 2)]  # 2, 4, ...: their index entries
        assert [headers["Nats-Msg-Id"] for _, _, headers in record] == complaints
        # Each key reached the bucket before its complaint, so services can open what they need.
        opened = [
            await asyncio.to_thread(vault.open_patient_data, b.complaint_id, b.patient_data)
            for _, b, _ in record
        ]
        assert [patient.summary for patient in opened if patient] == [f"complaint {n}" for n in range(5)]
        assert all(subject == "events.intake.ComplaintReceived" for subject, _, _ in record)
    finally:
        store.close()


async def test_a_commit_wakes_the_relay_at_once_whatever_its_poll(
    nc: Client, nats_url: str, settings: Settings, vault: KeyVault
) -> None:
    """The store tells the relay of each commit (its recorder's hook, as the runtime wires it): nothing
    in a service calls the relay by hand, and a new event does not wait for the relay's next poll."""
    js = nc.jetstream()
    store = open_intake_store(settings)
    runtime = ServiceRuntime(replace(settings, nats_url=nats_url, nats_credentials=None), store, [], vault)
    await runtime.start()
    try:
        relay = runtime.relay
        assert relay is not None
        relay.poll_interval = 3600.0  # before the relay's task first runs: every poll of it is an hour
        # Its first pass, over an empty store, before anything is stored (nothing it holds says it has
        # begun to wait; checked: without the store's hook the complaint is not relayed).
        await asyncio.sleep(0.5)

        store.register(another_patients(0), None, now())

        async def on_the_record() -> list[str]:
            return [subject for subject, _, _ in await record_of(js) if subject.endswith("ComplaintReceived")]

        await eventually(on_the_record, within=5, what="the complaint on the record before the next poll")
    finally:
        await runtime.stop()


async def test_a_relay_that_gathers_publishes_what_follows_a_few_events_a_moment_later(
    nc: Client, settings: Settings, vault: KeyVault
) -> None:
    """A relay whose events only people wait for (the notifier's) publishes the first event after a
    quiet spell at once, then waits a moment before the next, so that what is stored meanwhile goes
    out together."""
    js = nc.jetstream()
    store = open_intake_store(settings)
    relay = OutboxRelay(store, js, CHECKPOINTS, vault, gather=1.0)
    store.after_each_commit(relay.wake)
    task = asyncio.create_task(relay.run())
    seen_at: dict[int, float] = {}

    async def on_the_record(count: int) -> bool:
        complaints = [s for s, _, _ in await record_of(js) if s.endswith("ComplaintReceived")]
        for n in range(len(complaints)):
            seen_at.setdefault(n, asyncio.get_running_loop().time())
        return len(complaints) == count

    try:
        store.register(another_patients(0), None, now())
        await eventually(lambda: on_the_record(1), what="the first complaint on the record")
        store.register(another_patients(1), None, now())
        await eventually(lambda: on_the_record(2), what="the second complaint on the record")
        assert seen_at[1] - seen_at[0] >= 0.8  # a relay that does not gather: a few milliseconds
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        store.close()


async def test_the_relay_reads_only_what_may_go_on_the_record(
    nc: Client, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console keeps every event it is shown and publishes none of them: its relay passes them by
    without reading one, and still publishes what any service may (a message it set aside)."""
    store = open_store(ConsoleApplication, settings)
    try:
        for sequence in range(1, 21):
            store.note(complaint_received(), Tracking(RECORD_STREAM, sequence))
        store.reject(
            Tracking(RECORD_STREAM, 21), "events.intake.ComplaintReceived", "not a valid message", None
        )
        read: list[int] = []
        traced_domain_event = store.mapper.traced_domain_event

        def reading(notification: Any) -> Any:
            read.append(notification.id)
            return traced_domain_event(notification)

        monkeypatch.setattr(store.mapper, "traced_domain_event", reading)
        relay = OutboxRelay(store, nc.jetstream(), CHECKPOINTS)
        relay.position = await relay.last_relayed()
        assert await relay.relay_pending() == 21
        assert read == [21]
        assert [body.type for _, body, _ in await record_of(nc.jetstream())] == ["MessageRejected"]
        assert await relay.relay_pending() == 0
    finally:
        store.close()


async def run_loops(*loops: ConsumerLoop[Any]) -> list[asyncio.Task[None]]:
    return [asyncio.create_task(loop.run()) for loop in loops]


async def stop_tasks(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_bad_message_is_recorded_and_set_aside_and_the_next_one_is_processed(
    consumer_broker: NatsBroker,
    nc: Client,
    settings: Settings,
    policy: Policy,
    directory: Directory,
    vault: KeyVault,
) -> None:
    js = nc.jetstream()
    store = open_store(EscalationApplication, settings)
    relay = OutboxRelay(store, js, CHECKPOINTS)
    consumer, _ = escalation_consumers(store, policy, watch_directory(settings.directory_path), vault)
    tasks = await run_loops(ConsumerLoop(store, consumer_broker, consumer, relay.wake))
    tasks.append(asyncio.create_task(relay.run()))
    try:
        first, second = complaint_received(summary="first"), complaint_received(summary="second")
        await publish_complaint(js, vault, first)
        # Not valid, and quoting what should never be on the record: the reason says what is wrong only.
        await js.publish(first.subject, b'{"type": "ComplaintReceived", "oops": "Mrs Quiller, room 12"}')
        # Not even JSON, though it says it is (what the consumer's framework would try to decode).
        await js.publish(first.subject, b"\xff{not json", headers={"Content-Type": "application/json"})
        await publish_complaint(js, vault, second)

        async def four_results() -> list[Any]:
            found = [
                m
                for m in await record_of(js)
                if m[0] in ("events.escalation.EscalationStarted", "events.escalation.MessageRejected")
            ]
            return found if len(found) == 4 else []

        results = await eventually(four_results, what="two cases and two rejections")
        kinds = sorted(type(body).__name__ for _, body, _ in results)
        assert kinds == ["EscalationStarted", "EscalationStarted", "MessageRejected", "MessageRejected"]
        rejection, not_json = [body for _, body, _ in results if type(body).__name__ == "MessageRejected"]
        assert (rejection.stream_sequence, not_json.stream_sequence) == (2, 3)
        assert not_json.reason.startswith("not a valid message")
        assert rejection.reason.startswith("not a valid message: ComplaintReceived.event_id: Field required")
        assert "ComplaintReceived.oops: Extra inputs are not permitted" in rejection.reason
        assert "Quiller" not in rejection.reason
        assert {body.complaint_id for _, body, _ in results if isinstance(body, EscalationStarted)} == {
            first.complaint_id,
            second.complaint_id,
        }
    finally:
        await stop_tasks(tasks)
        store.close()


async def counting(
    js: JetStreamContext, store: EscalationApplication, name: str
) -> tuple[Consumer[bytes], list[int]]:
    """A consumer of ``events.<name>.>`` on its own durable consumer that stores only its tracking
    records, and the stream sequences it handled, in order."""
    subscription = Subscription(RECORD_STREAM, name, [f"events.{name}.>"])
    await js.add_consumer(RECORD_STREAM, subscription.consumer_config())
    handled: list[int] = []

    def handle(_: bytes, tracking: Tracking) -> None:
        handled.append(tracking.notification_id)
        store.record(tracking=tracking)

    return Consumer(subscription, body_only(bytes), handle), handled


def committed(store: EscalationApplication) -> list[int]:
    """How many events each transaction of the store held, in order, as they commit (a transaction of
    tracking records only included)."""
    transactions: list[int] = []
    recorder = store.process_recorder
    assert isinstance(recorder, SQLiteRecorder)
    recorder.after_commit = lambda stored: transactions.append(len(stored))
    return transactions


async def drained(js: JetStreamContext, durable: str) -> bool:
    """Whether the durable consumer has nothing waiting and nothing unacknowledged."""
    info = await js.consumer_info(RECORD_STREAM, durable)
    return (info.num_pending, info.num_ack_pending) == (0, 0)


async def test_a_trickle_of_messages_is_handled_in_order_each_at_its_first_delivery(
    consumer_broker: NatsBroker, nc: Client, settings: Settings
) -> None:
    """Messages arriving a few milliseconds apart, as at a steady load: every batch the consumer
    fetches is handled, none is left to wait out ack_wait and come back behind newer ones (as with
    faststream's own batch loop, whose consume task a timeout near its deadline ends)."""
    js = nc.jetstream()
    store = open_store(EscalationApplication, settings)
    consumer, handled = await counting(js, store, "trickle")
    tasks = await run_loops(ConsumerLoop(store, consumer_broker, consumer, lambda: None))
    try:
        count = 200
        for n in range(count):
            await js.publish("events.trickle.Tick", str(n).encode())
            await asyncio.sleep(0.003)  # the load's shape under test: a few milliseconds apart

        async def all_handled() -> bool:
            return len(handled) == count and await drained(js, "trickle")

        await eventually(all_handled, what="every tick handled and acknowledged")
        assert handled == list(range(1, count + 1))
        info = await js.consumer_info(RECORD_STREAM, "trickle")
        assert info.num_redelivered == 0
    finally:
        await stop_tasks(tasks)
        store.close()


async def test_a_backlog_is_stored_a_batch_at_a_time_in_order_each_message_with_its_tracking(
    consumer_broker: NatsBroker, nc: Client, settings: Settings
) -> None:
    """What waits for a consumer (after a restart, a burst) is handled in batches, each stored in one
    transaction: not one transaction per message."""
    js = nc.jetstream()
    store = open_store(EscalationApplication, settings)
    consumer, handled = await counting(js, store, "backlog")
    transactions = committed(store)

    count = 150
    for n in range(count):
        await js.publish("events.backlog.Tick", str(n).encode())
    tasks = await run_loops(ConsumerLoop(store, consumer_broker, consumer, lambda: None))
    try:
        await eventually(lambda: drained(js, "backlog"), what="the backlog handled and acknowledged")
        assert handled == list(range(1, count + 1))
        assert store.processed_among(RECORD_STREAM, handled) == set(handled)
        assert len(transactions) == 3  # 64 to a batch
    finally:
        await stop_tasks(tasks)
        store.close()


async def test_a_consumer_that_gathers_takes_what_comes_after_a_small_batch_together(
    consumer_broker: NatsBroker, nc: Client, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader for people (the console) waits a moment after a small batch: the first message after a
    quiet spell is handled at once, the two that follow it within the wait in one transaction."""
    monkeypatch.setattr(consumer_module, "GATHER_SECONDS", 1.0)
    js = nc.jetstream()
    store = open_store(EscalationApplication, settings)
    consumer, handled = await counting(js, store, "gathers")
    consumer = replace(consumer, subscription=replace(consumer.subscription, gathers=True))
    transactions = committed(store)
    tasks = await run_loops(ConsumerLoop(store, consumer_broker, consumer, lambda: None))
    try:
        await js.publish("events.gathers.Tick", b"1")
        await eventually(lambda: drained(js, "gathers"), what="the first message handled")
        await js.publish("events.gathers.Tick", b"2")
        await asyncio.sleep(0.3)  # the load's shape under test: long enough to handle one alone
        await js.publish("events.gathers.Tick", b"3")
        await eventually(lambda: drained(js, "gathers"), what="the next two handled")
        assert handled == [1, 2, 3]
        assert len(transactions) == 2  # [1], then [2, 3]; a consumer that does not gather: three
    finally:
        await stop_tasks(tasks)
        store.close()


async def test_a_redelivered_message_changes_nothing(
    consumer_broker: NatsBroker,
    nc: Client,
    settings: Settings,
    policy: Policy,
    directory: Directory,
    vault: KeyVault,
) -> None:
    js = nc.jetstream()
    store = open_store(EscalationApplication, settings)
    consumer, _ = escalation_consumers(store, policy, watch_directory(settings.directory_path), vault)
    # A second durable consumer over the same messages delivers each one again, as a redelivery would.
    replay = Subscription(RECORD_STREAM, "escalation-replay", consumer.subscription.subjects)
    await js.add_consumer(RECORD_STREAM, replay.consumer_config())
    for summary in ("a", "b", "c"):
        await publish_complaint(js, vault, complaint_received(summary=summary))
    tasks = await run_loops(ConsumerLoop(store, consumer_broker, consumer, lambda: None))
    try:
        await eventually(
            lambda: asyncio.to_thread(store.has_processed, Tracking(RECORD_STREAM, 3)), what="three processed"
        )
        stored_before = store.process_recorder.max_notification_id()
        tasks += await run_loops(
            ConsumerLoop(
                store, consumer_broker, Consumer(replay, consumer.decode, consumer.handle), lambda: None
            )
        )

        await eventually(
            lambda: drained(js, "escalation-replay"), what="the replay consumer acknowledging everything"
        )
        # Each case: opened, five duties assigned (each with its first alert); and its reference indexed.
        assert store.process_recorder.max_notification_id() == stored_before == 3 * (1 + 5 + 1)
    finally:
        await stop_tasks(tasks)
        store.close()


async def test_a_timer_set_by_the_relay_fires_once_through_a_nats_schedule(
    consumer_broker: NatsBroker, nc: Client, settings: Settings, directory: Directory
) -> None:
    js = nc.jetstream()
    store = open_store(FollowupApplication, settings)
    relay = OutboxRelay(store, js, CHECKPOINTS, poll_interval=0.1)
    shipped = load_policy(settings.policy_path)
    always_open = shipped.escalation.calendar.model_copy(
        update={"quiet_hours_start": time(0), "quiet_hours_end": time(0)}
    )
    policy = shipped.model_copy(
        update={
            "followup": shipped.followup.model_copy(
                update={"after_first_response_seconds": 2, "working_days_only": False}
            ),
            "escalation": shipped.escalation.model_copy(update={"calendar": always_open}),
        }
    )
    _, timer_consumer = followup_consumers(store, policy, watch_directory(settings.directory_path))
    tasks = await run_loops(ConsumerLoop(store, consumer_broker, timer_consumer, relay.wake))
    tasks.append(asyncio.create_task(relay.run()))
    try:
        responded = datetime.now(UTC)
        await asyncio.to_thread(
            store.schedule, uuid4(), "after_first_response", responded, uuid4(), policy, directory,
            Tracking(RECORD_STREAM, 1),
        )  # fmt: skip
        relay.wake()

        async def callback_due() -> list[Any]:
            return await record_of(js, "events.followup.CallbackDue")

        [(_, due, _)] = await eventually(callback_due, what="CallbackDue")
        [(_, scheduled, _)] = await record_of(js, "events.followup.CallbackScheduled")
        assert due.callback_id == scheduled.callback_id
        assert scheduled.due_at == responded + timedelta(seconds=2)
        assert due.occurred_at == scheduled.due_at
        assert due.recorded_at >= scheduled.due_at  # never before its due time

        # The same fire delivered again (a timer set twice, a redelivery): nothing more happens.
        callback_id, due_at = scheduled.callback_id, scheduled.due_at
        fire = Timer(rule=CALLBACK_RULE, aggregate_id=callback_id, attempt=1, due_at=due_at)
        again = await js.publish(due_subject("followup", fire.key), fire.encode())
        await eventually(
            lambda: asyncio.to_thread(store.has_processed, Tracking(again.stream, again.seq)),
            what="second fire seen",
        )
        await relay.relay_pending()
        assert len(await callback_due()) == 1
    finally:
        await stop_tasks(tasks)
        store.close()


class ReadsCounted(KeyVault):
    """The key bucket, counting the keys read and the openings that went through the event loop."""

    keys_read = 0
    opened_through_the_loop = 0

    async def data_key(self, complaint_id: UUID) -> bytes | None:
        self.keys_read += 1
        return await super().data_key(complaint_id)

    async def open(self, complaint_id: UUID, sealed: str) -> PatientData | None:
        self.opened_through_the_loop += 1
        return await super().open(complaint_id, sealed)


async def test_a_batch_of_complaints_opens_their_data_with_keys_read_together_before_it(
    consumer_broker: NatsBroker, nc: Client, settings: Settings, policy: Policy
) -> None:
    """Five complaints on the record before escalation's consumer starts come as one batch: their keys
    are read side by side before its handlers run, and no handler waits on the bucket by itself."""
    js = nc.jetstream()
    vault = ReadsCounted(MasterKey.load(settings.master_key))
    await vault.bind(js)
    complaints = [complaint_received(summary=f"complaint {n}") for n in range(5)]
    sequences = []
    for n, complaint in enumerate(complaints):
        await vault.put(complaint.complaint_id, vault.master.wrap(DATA_KEY))
        headers = headers_for(complaint, f"intake:{n + 1}")  # as the relay sends it
        sequences.append((await js.publish(complaint.subject, encode_event(complaint), headers=headers)).seq)
    store = open_store(EscalationApplication, settings)
    consumer, _ = escalation_consumers(store, policy, watch_directory(settings.directory_path), vault)
    tasks = await run_loops(ConsumerLoop(store, consumer_broker, consumer, lambda: None))
    try:

        async def all_opened() -> bool:
            return len(store.processed_among(RECORD_STREAM, sequences)) == len(sequences)

        await eventually(all_opened, what="five cases opened")
        assert vault.keys_read == len(complaints)
        assert vault.opened_through_the_loop == 0
        for complaint in complaints:
            case = store.get_case(complaint.complaint_id)
            assert case is not None
    finally:
        await stop_tasks(tasks)
        store.close()
