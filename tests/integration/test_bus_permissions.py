"""Least privilege on a real nats-server started with the configuration kizuki generates.

Each refusal is the server's: it reports a permissions violation for the exact subject, the request
gets no answer, and the streams and consumers are as they were.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import nats
import nkeys
import pytest
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, StreamConfig
from nats.js.errors import BadRequestError

from kizuki.audit import read_record
from kizuki.permissions import ADMINISTRATOR, AUDITOR
from kizuki.processes import free_port, start_nats, stop
from kizuki.provision import ALL_SUBSCRIPTIONS, provision_bus
from kizuki.server_config import make_channel_credential, write_server_config
from shared.bus import (
    KEY_BUCKET,
    KEY_STREAM,
    RECORD_STREAM,
    RECORD_STREAM_CONFIG,
    SUBMISSION_STREAM,
    BusUser,
    Subscription,
    channel_user,
    connect,
    due_subject,
    record_subjects,
    schedule_subject,
    services_with_timers,
    submission_subject,
    timer_stream,
)
from shared.contracts import SUBSCRIPTIONS
from shared.privacy import KeyVault, MasterKey
from shared.settings import SERVICES, Settings, load_settings
from tests.polling import eventually

pytestmark = pytest.mark.integration

# Long enough for an answer on loopback; a refused request gets none.
REFUSED_AFTER_SECONDS = 1.0
# A channel system that publishes submissions, with the credential `kizuki channel-credential` makes.
CHANNEL = "call-centre"


@pytest.fixture(autouse=True)
def _nats_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="nats.aio.client")


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Settings]:
    """The embedded server as `kizuki run` starts it: only the generated users, each with its permissions."""
    settings = load_settings({"KIZUKI_DATA_DIR": str(tmp_path / "var"), "KIZUKI_NATS_PORT": str(free_port())})
    make_channel_credential(settings, CHANNEL)
    config = write_server_config(settings)
    process = start_nats(settings.nats_port, settings.nats_dir, tmp_path / "nats-server.log", config)
    yield settings
    stop(process)


@pytest.fixture
async def administrator(secured: Settings) -> AsyncIterator[Client]:
    await provision_bus(secured.bus_url, secured.bus_user(ADMINISTRATOR))
    client = await connect(secured.bus_url, "test-admin", user=secured.bus_user(ADMINISTRATOR))
    yield client
    await client.close()


async def connected_as(settings: Settings, name: str) -> Client:
    return await connect(settings.bus_url, f"test-{name}", user=settings.bus_user(name))


def probe_subject(subscription: Subscription) -> str:
    """A subject the consumer takes: its first filter, with a wildcard filled in."""
    return subscription.subjects[0].replace(">", "probe").replace("*", "probe")


def reported_violations(caplog: pytest.LogCaptureFixture) -> set[str]:
    """The permissions violations the server reported to the client (nats-py logs its async errors)."""
    errors = (record.exc_info[1] for record in caplog.records if record.exc_info)
    return {str(error) for error in errors if isinstance(error, NatsError)}


async def assert_refused(caplog: pytest.LogCaptureFixture, attempts: dict[str, Awaitable[Any]]) -> None:
    """Every attempt, keyed by the subject it publishes to, is refused by the server: no answer comes,
    and the server reports the violation."""
    results = await asyncio.gather(
        *(asyncio.wait_for(attempt, REFUSED_AFTER_SECONDS) for attempt in attempts.values()),
        return_exceptions=True,
    )
    answered = {subject: result for subject, result in zip(attempts, results, strict=True)}
    assert {s: r for s, r in answered.items() if not isinstance(r, TimeoutError)} == {}
    expected = {f'nats: permissions violation for publish to "{subject.lower()}"' for subject in attempts}

    async def all_reported() -> bool:
        return expected <= reported_violations(caplog)

    await eventually(all_reported, what=f"the server reporting {sorted(expected)}")


async def state(js: JetStreamContext) -> dict[str, Any]:
    """What a refused attempt must leave as it was: the streams, their messages, every durable consumer."""
    streams = {info.config.name: info.state.messages for info in await js.streams_info()}
    consumers = [
        (info.stream_name, info.name, info.config.filter_subjects)
        for name in streams
        for info in await js.consumers_info(name or "")
        if info.config.durable_name
    ]
    return {"messages": streams, "consumers": sorted(consumers, key=str)}


async def test_only_the_generated_users_may_connect(secured: Settings, tmp_path: Path) -> None:
    with pytest.raises(NatsError, match="Authorization Violation"):
        await nats.connect(secured.bus_url, allow_reconnect=False)
    stranger = tmp_path / "stranger.nk"
    stranger.write_bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))
    with pytest.raises(NatsError, match="Authorization Violation"):
        await nats.connect(secured.bus_url, allow_reconnect=False, nkeys_seed=str(stranger))
    for name in (*SERVICES, AUDITOR, ADMINISTRATOR, channel_user(CHANNEL)):
        client = await connected_as(secured, name)
        await client.close()


def test_credentials_are_made_once_owner_only_and_kept(secured: Settings) -> None:
    assert secured.nats_credentials is not None
    seeds = sorted(secured.nats_credentials.iterdir())
    users = (*SERVICES, AUDITOR, ADMINISTRATOR, channel_user(CHANNEL))
    assert [seed.name for seed in seeds] == sorted(f"{n}.nk" for n in users)
    assert stat.S_IMODE(secured.nats_credentials.stat().st_mode) == 0o700
    config = secured.nats_dir / "server.conf"
    for secret in (*seeds, config):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    before = {seed: seed.read_bytes() for seed in seeds}
    written = config.read_text()
    write_server_config(secured)  # the next start
    assert {seed: seed.read_bytes() for seed in seeds} == before
    assert config.read_text() == written
    assert all(seed.decode().strip() not in written for seed in before.values())  # public keys only


async def test_the_administrator_provisions(administrator: Client) -> None:
    js = administrator.jetstream()
    for subscription in ALL_SUBSCRIPTIONS:
        consumer = await js.consumer_info(subscription.stream, subscription.durable)
        assert consumer.config.filter_subjects == list(subscription.subjects)


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_publishes_its_events_sets_its_timers_and_takes_its_messages(
    secured: Settings, administrator: Client, service: str
) -> None:
    admin = administrator.jetstream()
    for subscription in SUBSCRIPTIONS[service]:
        await admin.publish(probe_subject(subscription), b"{}")
    client = await connected_as(secured, service)
    js = client.jetstream()
    try:
        event = await js.publish(f"events.{service}.Probed", b"{}", headers={"Nats-Msg-Id": f"{service}:1"})
        assert event.stream == RECORD_STREAM
        last = await js.get_last_msg(RECORD_STREAM, record_subjects(service))  # where the relay resumes
        assert (last.headers or {})["Nats-Msg-Id"] == f"{service}:1"
        if service in services_with_timers(ALL_SUBSCRIPTIONS):
            timer = await js.publish(
                schedule_subject(service, "probe"),
                b"{}",
                headers={
                    "Nats-Schedule": "@at 2099-01-01T00:00:00Z",
                    "Nats-Schedule-Target": due_subject(service, "probe"),
                },
            )
            assert timer.stream == timer_stream(service)
        for subscription in SUBSCRIPTIONS[service]:
            pull = await js.pull_subscribe_bind(durable=subscription.durable, stream=subscription.stream)
            [message] = await pull.fetch(1, timeout=10)
            assert message.subject == probe_subject(subscription)
            await message.ack_sync()
            info = await admin.consumer_info(subscription.stream, subscription.durable)
            assert (info.num_pending, info.num_ack_pending) == (0, 0)
    finally:
        await client.close()


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_may_not_touch_what_is_not_its_own(
    secured: Settings, administrator: Client, service: str, caplog: pytest.LogCaptureFixture
) -> None:
    admin = administrator.jetstream()
    await admin.publish("events.intake.ComplaintReceived", b"{}")
    before = await state(admin)
    other = next(name for name in SERVICES if name != service)
    theirs = next(s for s in ALL_SUBSCRIPTIONS if s not in SUBSCRIPTIONS[service])
    client = await connected_as(secured, service)
    js = client.jetstream()
    try:
        pull = await js.pull_subscribe_bind(durable=theirs.durable, stream=theirs.stream)
        await assert_refused(
            caplog,
            {
                f"events.{other}.Forged": js.publish(f"events.{other}.Forged", b"{}"),
                schedule_subject(other, "forged"): js.publish(schedule_subject(other, "forged"), b"{}"),
                due_subject(service, "forged"): js.publish(due_subject(service, "forged"), b"{}"),
                "$JS.API.STREAM.CREATE.OWN": js.add_stream(StreamConfig("OWN", subjects=[f"{service}.>"])),
                f"$JS.API.STREAM.PURGE.{RECORD_STREAM}": js.purge_stream(RECORD_STREAM),
                f"$JS.API.STREAM.PURGE.{timer_stream(service)}": js.purge_stream(timer_stream(service)),
                f"$JS.API.STREAM.DELETE.{RECORD_STREAM}": js.delete_stream(RECORD_STREAM),
                f"$JS.API.STREAM.UPDATE.{RECORD_STREAM}": js.update_stream(RECORD_STREAM_CONFIG),
                f"$JS.API.STREAM.MSG.DELETE.{RECORD_STREAM}": js.delete_msg(RECORD_STREAM, 1),
                f"$JS.API.CONSUMER.DURABLE.CREATE.{RECORD_STREAM}.{service}-more": js.add_consumer(
                    RECORD_STREAM, ConsumerConfig(durable_name=f"{service}-more")
                ),
                f"$JS.API.CONSUMER.DELETE.{theirs.stream}.{theirs.durable}": js.delete_consumer(
                    theirs.stream, theirs.durable
                ),
                f"$JS.API.CONSUMER.MSG.NEXT.{theirs.stream}.{theirs.durable}": pull.fetch(
                    1, timeout=REFUSED_AFTER_SECONDS
                ),
            },
        )
    finally:
        await client.close()
    assert await state(admin) == before


@pytest.mark.parametrize(("service", "other"), [("escalation", "followup"), ("followup", "escalation")])
async def test_a_service_cannot_set_a_timer_that_fires_into_another_service(
    secured: Settings, administrator: Client, service: str, other: str, caplog: pytest.LogCaptureFixture
) -> None:
    admin = administrator.jetstream()
    before = await state(admin)
    client = await connected_as(secured, service)
    js = client.jetstream()
    aimed_at_other = {
        "Nats-Schedule": "@at 2000-01-01T00:00:00Z",
        "Nats-Schedule-Target": due_subject(other, "x"),
    }
    try:
        # In its own stream, the server refuses a target outside that stream...
        with pytest.raises(BadRequestError, match="target is invalid"):
            await js.publish(schedule_subject(service, "forged"), b"{}", headers=aimed_at_other)
        # ...and the other service's schedules, which may target its fires, are not the service's to set.
        await assert_refused(
            caplog,
            {
                schedule_subject(other, "forged"): js.publish(
                    schedule_subject(other, "forged"), b"{}", headers=aimed_at_other
                )
            },
        )
    finally:
        await client.close()
    assert await state(admin) == before


async def test_the_auditor_reads_the_record_and_writes_nothing(
    secured: Settings, administrator: Client, caplog: pytest.LogCaptureFixture
) -> None:
    admin = administrator.jetstream()
    for n in range(3):
        await admin.publish("events.intake.ComplaintReceived", f'{{"n": {n}}}'.encode())
    before = await state(admin)
    client = await connected_as(secured, AUDITOR)
    js = client.jetstream()
    try:
        assert [entry.body["n"] async for entry in read_record(js)] == [0, 1, 2]
        assert (await js.get_msg(RECORD_STREAM, 2)).data == b'{"n": 1}'
        theirs = ALL_SUBSCRIPTIONS[0]
        await assert_refused(
            caplog,
            {
                "events.intake.ComplaintReceived": js.publish("events.intake.ComplaintReceived", b"{}"),
                schedule_subject("escalation", "x"): js.publish(schedule_subject("escalation", "x"), b""),
                f"$JS.API.STREAM.PURGE.{RECORD_STREAM}": js.purge_stream(RECORD_STREAM),
                f"$JS.API.STREAM.DELETE.{RECORD_STREAM}": js.delete_stream(RECORD_STREAM),
                f"$JS.API.STREAM.MSG.DELETE.{RECORD_STREAM}": js.delete_msg(RECORD_STREAM, 1),
                f"$JS.API.CONSUMER.DURABLE.CREATE.{RECORD_STREAM}.audit": js.add_consumer(
                    RECORD_STREAM, ConsumerConfig(durable_name="audit")
                ),
                f"$JS.API.CONSUMER.DELETE.{theirs.stream}.{theirs.durable}": js.delete_consumer(
                    theirs.stream, theirs.durable
                ),
                f"$JS.API.STREAM.INFO.{timer_stream('escalation')}": js.stream_info(
                    timer_stream("escalation")
                ),
            },
        )
    finally:
        await client.close()
    assert await state(admin) == before


async def test_a_channel_publishes_its_submissions_and_nothing_else(
    secured: Settings, administrator: Client, caplog: pytest.LogCaptureFixture
) -> None:
    admin = administrator.jetstream()
    await admin.publish("events.intake.ComplaintReceived", b"{}")
    channel = await connected_as(secured, channel_user(CHANNEL))
    js = channel.jetstream()
    intakes = await js.pull_subscribe_bind(durable="intake", stream=SUBMISSION_STREAM)
    try:
        ack = await js.publish(submission_subject(CHANNEL), b"{}", headers={"Nats-Msg-Id": "m-1"})
        assert (ack.stream, ack.seq) == (SUBMISSION_STREAM, 1)
        before = await state(admin)
        await assert_refused(
            caplog,
            {
                submission_subject("kiosk"): js.publish(submission_subject("kiosk"), b"{}"),
                "events.intake.ComplaintReceived": js.publish("events.intake.ComplaintReceived", b"{}"),
                f"$JS.API.STREAM.MSG.GET.{RECORD_STREAM}": js.get_msg(RECORD_STREAM, 1),
                f"$JS.API.STREAM.MSG.GET.{SUBMISSION_STREAM}": js.get_msg(SUBMISSION_STREAM, 1),
                f"$JS.API.CONSUMER.CREATE.{RECORD_STREAM}": js.add_consumer(RECORD_STREAM, ConsumerConfig()),
                f"$JS.API.CONSUMER.MSG.NEXT.{SUBMISSION_STREAM}.intake": intakes.fetch(
                    1, timeout=REFUSED_AFTER_SECONDS
                ),
                f"$JS.API.STREAM.PURGE.{SUBMISSION_STREAM}": js.purge_stream(SUBMISSION_STREAM),
            },
        )
        # Nor may it listen to what is published: the submissions, its own included, or the record.
        for subject in ("submissions.>", "events.>"):
            await channel.subscribe(subject)
        expected = {
            f'nats: permissions violation for subscription to "{s}"' for s in ("submissions.>", "events.>")
        }

        async def reported() -> bool:
            return expected <= reported_violations(caplog)

        await eventually(reported, what=f"the server refusing {sorted(expected)}")
    finally:
        await channel.close()
    assert await state(admin) == before


async def test_a_missing_credential_is_named(secured: Settings, tmp_path: Path) -> None:
    missing = BusUser("escalation", tmp_path / "nowhere.nk")
    with pytest.raises(FileNotFoundError, match="no NATS credential for escalation"):
        await connect(secured.bus_url, "test", user=missing)


async def test_patient_data_keys_are_kept_by_intake_read_by_whom_needs_them_and_hidden_from_the_rest(
    secured: Settings, administrator: Client, caplog: pytest.LogCaptureFixture
) -> None:
    master = MasterKey(bytes(range(32)))
    complaint_id = uuid4()
    wrapped = master.wrap(bytes(32))
    intake = await connected_as(secured, "intake")
    escalation = await connected_as(secured, "escalation")
    try:
        keeper = KeyVault(master)
        await keeper.bind(intake.jetstream())
        await keeper.put(complaint_id, wrapped)
        reader = KeyVault(master)
        await reader.bind(escalation.jetstream())
        assert await reader.data_key(complaint_id) == bytes(32)
        # A reader can neither put nor destroy a key.
        await assert_refused(
            caplog,
            {
                f"$KV.{KEY_BUCKET}.{complaint_id}": escalation.jetstream().publish(
                    f"$KV.{KEY_BUCKET}.{complaint_id}", b"forged"
                ),
                f"$JS.API.STREAM.MSG.DELETE.{KEY_STREAM}": escalation.jetstream().delete_msg(KEY_STREAM, 1),
            },
        )
        await keeper.destroy(complaint_id)
        assert await reader.data_key(complaint_id) is None
    finally:
        await intake.close()
        await escalation.close()
    # The auditor never sees a key: the record proves itself without the patient's data.
    auditor = await connected_as(secured, AUDITOR)
    try:
        await assert_refused(
            caplog, {f"$JS.API.STREAM.INFO.{KEY_STREAM}": auditor.jetstream().stream_info(KEY_STREAM)}
        )
    finally:
        await auditor.close()
