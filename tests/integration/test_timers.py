"""Timers on a real nats-server: never taken early, gone once handled, moved on upgrade, past quiet hours."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from eventsourcing.persistence import Tracking
from faststream.nats import NatsBroker
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NoStreamResponseError, NotFoundError

from kizuki.provision import provision_bus
from kizuki.timer_migration import SHARED_TIMER_STREAM
from services.escalation.application import EscalationApplication
from services.followup.application import FollowupApplication
from shared.bus import RECORD_STREAM, connect, due_subject, schedule_subject, timer_stream, timer_subscription
from shared.chain import SigningKey, new_seed
from shared.consumer import Consumer, ConsumerLoop, body_only
from shared.directory import Directory
from shared.events import AlertWithAssignment, DutyAssigned
from shared.outbox import TIMERS_SET_UP_TO, Checkpoints, OutboxRelay, notification_id_of
from shared.policy import Policy
from shared.runtime import open_store
from shared.settings import Settings
from shared.timers import Timer, now, on_time
from tests.factories import complaint_received
from tests.integration.test_delivery import record_of
from tests.polling import eventually

pytestmark = pytest.mark.integration

SERVICE = "followup"


def timer(due_at: datetime) -> Timer:
    return Timer(rule="callback", aggregate_id=uuid4(), attempt=1, due_at=due_at)


async def set_timer(js: JetStreamContext, timer: Timer, schedule: str | None = None) -> None:
    """As the relay sets it, or with another schedule header (the truncated one of before)."""
    await js.publish(
        schedule_subject(SERVICE, timer.key),
        timer.encode(),
        headers={
            "Nats-Schedule": schedule or timer.schedule,
            "Nats-Schedule-Target": due_subject(SERVICE, timer.key),
        },
    )


async def held(js: JetStreamContext, stream: str, subject: str) -> bool:
    try:
        await js.get_last_msg(stream, subject)
    except NotFoundError:
        return False
    return True


def next_second_and(fraction: float) -> datetime:
    """A sub-second due time at least a second and a half from now."""
    return now().replace(microsecond=0) + timedelta(seconds=2, microseconds=int(fraction * 1e6))


async def first_alerts_chased(js: JetStreamContext) -> list[tuple[DutyAssigned, AlertWithAssignment]]:
    """The duties on the record whose first alert, sent with the assignment, asks for a next one."""
    assigned = [body for _, body, _ in await record_of(js, "events.escalation.DutyAssigned")]
    return [
        (duty, duty.alert)
        for duty in assigned
        if isinstance(duty, DutyAssigned) and duty.alert is not None and duty.alert.next_alert_at is not None
    ]


async def test_a_fire_is_never_taken_before_its_due_time_and_is_gone_once_handled(
    consumer_broker: NatsBroker, nc: Client, settings: Settings
) -> None:
    js = nc.jetstream()
    store = open_store(FollowupApplication, settings)
    arrived: dict[str, list[datetime]] = {}
    handled: dict[str, datetime] = {}

    def decode(data: bytes) -> Timer:
        fired = Timer.decode(data)
        arrived.setdefault(fired.key, []).append(now())
        return fired

    def handle(fired: Timer, tracking: Tracking) -> None:
        handled[fired.key] = now()
        store.record(tracking=tracking)

    consumer = Consumer(timer_subscription(SERVICE), body_only(decode), on_time(handle))
    task = asyncio.create_task(ConsumerLoop(store, consumer_broker, consumer, lambda: None).run())
    try:
        # Scheduled as the relay does it: at the next whole second, so the server never fires early.
        ceiled = timer(next_second_and(0.2))
        # Scheduled truncated to the second, as before: the server fires 0.9 s early, and the consumer
        # puts the fire back until its due time.
        truncated = timer(next_second_and(0.9))
        pending = timer(datetime.now(UTC) + timedelta(days=365))
        await set_timer(js, ceiled)
        await set_timer(js, truncated, "@at " + truncated.due_at.strftime("%Y-%m-%dT%H:%M:%SZ"))
        await set_timer(js, pending)

        async def both_handled() -> bool:
            return len(handled) == 2

        await eventually(both_handled, what="both fires handled")
        for fired in (ceiled, truncated):
            assert handled[fired.key] >= fired.due_at
            assert arrived[fired.key][-1] >= fired.due_at
        assert arrived[ceiled.key][0] >= ceiled.due_at
        assert arrived[truncated.key][0] < truncated.due_at  # it did come early, and was put back

        # Handled fires are gone from the stream once acknowledged (just after the handler's commit);
        # the schedule a year away is still there.
        stream = timer_stream(SERVICE)

        async def fires_gone() -> bool:
            return not await held(js, stream, due_subject(SERVICE, ">"))

        await eventually(fires_gone, what="both fires acknowledged and gone")
        assert not await held(js, stream, schedule_subject(SERVICE, ceiled.key))
        assert await held(js, stream, schedule_subject(SERVICE, pending.key))
        assert (await js.stream_info(stream)).state.messages == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        store.close()


SHARED_TIMERS_BEFORE = StreamConfig(
    name=SHARED_TIMER_STREAM,
    subjects=["timers.>"],
    retention=RetentionPolicy.LIMITS,
    storage=StorageType.FILE,
    allow_msg_schedules=True,
)


async def test_an_upgrade_moves_pending_timers_and_unhandled_fires_to_each_service_stream(
    nats_url: str,
) -> None:
    """An installation from before: one TIMERS stream shared by every service, its consumers on it."""
    nc = await connect(nats_url, "test")
    js = nc.jetstream()
    try:
        await js.add_stream(SHARED_TIMERS_BEFORE)
        await js.add_consumer(
            SHARED_TIMER_STREAM,
            ConsumerConfig(
                durable_name="escalation",
                ack_policy=AckPolicy.EXPLICIT,
                filter_subject="timers.due.escalation.>",
            ),
        )
        far = timer(datetime.now(UTC) + timedelta(days=30))
        handled_fire, unhandled_fire = timer(now()), timer(now())
        await js.publish(
            f"timers.schedule.escalation.{far.key}",
            far.encode(),
            headers={
                "Nats-Schedule": far.schedule,
                "Nats-Schedule-Target": f"timers.due.escalation.{far.key}",
            },
        )
        for fire in (handled_fire, unhandled_fire):
            await js.publish(f"timers.due.escalation.{fire.key}", fire.encode())
        pull = await js.pull_subscribe_bind(durable="escalation", stream=SHARED_TIMER_STREAM)
        [first] = await pull.fetch(1, timeout=5)
        await first.ack_sync()

        await provision_bus(nats_url)
        await provision_bus(nats_url)  # again, as at the next start: nothing more to move

        assert SHARED_TIMER_STREAM not in [info.config.name for info in await js.streams_info()]
        stream = timer_stream("escalation")
        moved = await js.get_last_msg(stream, schedule_subject("escalation", far.key))
        assert moved.data == far.encode()
        assert (moved.headers or {})["Nats-Schedule"] == far.schedule
        assert (moved.headers or {})["Nats-Schedule-Target"] == due_subject("escalation", far.key)
        assert (await js.get_last_msg(stream, due_subject("escalation", unhandled_fire.key))).data == (
            unhandled_fire.encode()
        )
        assert not await held(js, stream, due_subject("escalation", handled_fire.key))
        assert (await js.stream_info(stream)).state.messages == 2
    finally:
        await nc.close()


async def test_the_chase_waits_out_quiet_hours_in_the_timer_the_relay_sets(
    nc: Client, settings: Settings, policy: Policy, directory: Directory
) -> None:
    """With quiet hours from an hour ago to two hours from now, a case opened now gets its first
    alerts at once and its next ones at the end of the quiet hours, on the record and in the schedule."""
    zone = ZoneInfo(policy.escalation.calendar.timezone)
    local = datetime.now(zone).replace(second=0, microsecond=0)
    start, end = local - timedelta(hours=1), local + timedelta(hours=2)
    quiet = policy.escalation.calendar.model_copy(
        update={"quiet_hours_start": start.time(), "quiet_hours_end": end.time()}
    )
    chase = policy.escalation.chase.model_copy(update={"repeat_interval_seconds": 5})
    quiet_now = policy.model_copy(
        update={"escalation": policy.escalation.model_copy(update={"calendar": quiet, "chase": chase})}
    )
    js = nc.jetstream()
    store = open_store(EscalationApplication, settings)
    try:
        complaint = complaint_received()
        await asyncio.to_thread(
            store.open_case,
            complaint,
            "Results were lost.",
            quiet_now,
            directory,
            now(),
            Tracking(RECORD_STREAM, 1),
        )
        relay = OutboxRelay(store, js, Checkpoints(SigningKey(new_seed())))
        await relay.relay_pending()

        chased = await first_alerts_chased(js)
        assert chased, "no alert of the case asks for a next one"
        for duty, alert in chased:
            assert alert.next_alert_at == end.astimezone(UTC)
            scheduled = await js.get_last_msg(
                timer_stream("escalation"),
                schedule_subject(
                    "escalation", f"alert.{complaint.complaint_id}.{duty.duty}.{alert.alert_number + 1}"
                ),
            )
            assert Timer.decode(scheduled.data or b"").due_at == end
            assert (scheduled.headers or {})["Nats-Schedule"] == "@at " + end.astimezone(UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
    finally:
        store.close()


async def test_the_relay_sets_the_timers_of_every_event_of_a_stretch_it_publishes(
    nc: Client, settings: Settings, policy: Policy, directory: Directory
) -> None:
    """Three cases stored, then relayed as one stretch: every next alert the record announces is
    scheduled, each case's from the event that asked for it."""
    js = nc.jetstream()
    store = open_store(EscalationApplication, settings)
    try:
        complaints = [complaint_received() for _ in range(3)]
        for sequence, complaint in enumerate(complaints, start=1):
            await asyncio.to_thread(
                store.open_case, complaint, "Results were lost.", policy, directory, now(),
                Tracking(RECORD_STREAM, sequence),
            )  # fmt: skip
        relay = OutboxRelay(store, js, Checkpoints(SigningKey(new_seed())))
        assert await relay.relay_pending() > 0

        chased = await first_alerts_chased(js)
        assert {duty.complaint_id for duty, _ in chased} == {c.complaint_id for c in complaints}
        for duty, alert in chased:
            key = f"alert.{duty.complaint_id}.{duty.duty}.{alert.alert_number + 1}"
            scheduled = await js.get_last_msg(timer_stream("escalation"), schedule_subject("escalation", key))
            assert Timer.decode(scheduled.data or b"").due_at == alert.next_alert_at
            assert (scheduled.headers or {})["Nats-Msg-Id"].startswith("escalation:")
    finally:
        store.close()


async def test_a_relay_stopped_between_the_events_and_their_timers_sets_the_timers_when_it_starts(
    nc: Client, nats_url: str, settings: Settings, policy: Policy, directory: Directory
) -> None:
    """The events go on the record first: a relay that fails on their timers (the timer stream is gone,
    a fault) has published them. The next relay to start (a restart, another replica) sets every timer
    those events ask for before relaying anything else, and keeps its place past them."""
    js = nc.jetstream()
    store = open_store(EscalationApplication, settings)
    checkpoints = Checkpoints(SigningKey(new_seed()))
    try:
        first = OutboxRelay(store, js, checkpoints)

        async def place() -> int | None:
            return await asyncio.to_thread(store.process_recorder.max_tracking_id, TIMERS_SET_UP_TO)

        async def place_is(expected: int) -> bool:
            return await place() == expected

        starting = asyncio.create_task(first.run())
        await eventually(lambda: place_is(0), what="the first relay keeping its place")
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await js.delete_stream(timer_stream("escalation"))
        complaint = complaint_received()
        await asyncio.to_thread(
            store.open_case,
            complaint,
            "Results were lost.",
            policy,
            directory,
            now(),
            Tracking(RECORD_STREAM, 1),
        )
        with pytest.raises(NoStreamResponseError):  # no stream takes the timers
            await first.relay_pending()
        on_record = [body for _, body, _ in await record_of(js)]
        asked = [timer for body in on_record for timer in store.timers_for(body)]
        assert len(asked) >= 2, "the case asks for its deadlines and next alerts"

        await provision_bus(nats_url)  # the timer stream is back, empty
        again = OutboxRelay(store, js, checkpoints)
        restarted = asyncio.create_task(again.run())
        try:
            for timer in asked:
                subject = schedule_subject("escalation", timer.key)

                async def set_again(subject: str = subject) -> bool:
                    return await held(js, timer_stream("escalation"), subject)

                await eventually(set_again, what=f"the timer {timer.key} set again")
            *_, (_, _, last_headers) = await record_of(js)
            relayed_up_to = notification_id_of(last_headers["Nats-Msg-Id"], "escalation")

            async def kept_past_them() -> bool:
                return (await place() or 0) >= relayed_up_to

            await eventually(kept_past_them, what="the place kept past the events")
        finally:
            restarted.cancel()
            await asyncio.gather(restarted, return_exceptions=True)
    finally:
        store.close()
