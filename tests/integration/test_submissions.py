"""A channel system publishes its submissions on the bus with its own credential, and intake registers
each once. A real nats-server configured as `kizuki run` configures it, the credential made by the
`kizuki` command, intake's real runtime and store; the record is read as the auditor reads it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import nats
import pytest
from eventsourcing.persistence import Tracking
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.errors import ServiceUnavailableError

from kizuki.audit import RecordEntry, read_record
from kizuki.cli import main
from kizuki.launcher import users_reloaded_for_new_channels
from kizuki.permissions import ADMINISTRATOR
from kizuki.processes import Supervised, free_port, start_nats, stop
from kizuki.provision import provision_bus, provision_secrets
from kizuki.server_config import write_server_config
from services.intake import handlers
from services.intake.application import IntakeApplication
from services.intake.main import open_intake_store
from shared.bus import MAX_WAITING_PER_CHANNEL, SUBMISSION_STREAM, BusUser, channel_user, connect
from shared.consumer import Consumer
from shared.policy import load_policy
from shared.privacy import KeyVault
from shared.runtime import ServiceRuntime
from shared.settings import Settings, load_settings
from tests.polling import eventually

pytestmark = pytest.mark.integration

CHANNEL = "call-centre"  # declared in deploy/policy.toml: first hearer n-002, phone
STORY = "受付で三時間待たされ、説明もありませんでした"


@dataclass
class Embedded:
    """The embedded server as `kizuki run` runs it, and what its launcher does every half second."""

    settings: Settings
    nats: Supervised
    channels: list[str] = field(default_factory=list)

    def launcher_looks(self) -> None:
        self.channels = users_reloaded_for_new_channels(self.settings, [self.nats], self.channels)


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Embedded]:
    monkeypatch.setenv("KIZUKI_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("KIZUKI_NATS_PORT", str(free_port()))
    monkeypatch.setenv("KIZUKI_INTAKE_SMTP_PORT", str(free_port()))
    settings = load_settings()
    provision_secrets(settings)
    config = write_server_config(settings)
    log = tmp_path / "nats.log"
    server = Supervised(
        "nats-server", partial(start_nats, settings.nats_port, settings.nats_dir, log, config)
    )
    yield Embedded(settings, server)
    stop(server.process)


@pytest.fixture
async def secured(embedded: Embedded, capsys: pytest.CaptureFixture[str]) -> Settings:
    """The system running while `kizuki channel-credential call-centre` makes the channel's
    credential: the launcher has the server take the new user in."""
    made = asyncio.ensure_future(asyncio.to_thread(main, ["channel-credential", CHANNEL]))
    while not made.done():
        embedded.launcher_looks()
        await asyncio.sleep(0.5)
    await made
    said = capsys.readouterr().out
    assert f"channel-{CHANNEL}.nk (made now; public key U" in said
    inbox = f"_INBOX.channel-{CHANNEL}"
    assert f"may publish to submissions.{CHANNEL} only, connected with the inbox prefix {inbox}" in said
    assert f"the running nats-server lets {CHANNEL} in: it may publish now" in said
    return embedded.settings


@pytest.fixture
async def record(secured: Settings) -> AsyncIterator[Client]:
    """Provisioned as `kizuki run` provisions; connected as the administrator, to read what happened."""
    await provision_bus(secured.bus_url, secured.bus_user(ADMINISTRATOR))
    client = await connect(secured.bus_url, "test-admin", user=secured.bus_user(ADMINISTRATOR))
    yield client
    await client.close()


@pytest.fixture
async def channel(secured: Settings, record: Client) -> AsyncIterator[Client]:
    """Connected as the call centre's system, with the credential the command made."""
    assert secured.nats_credentials is not None
    user = BusUser.in_directory(secured.nats_credentials, channel_user(CHANNEL))
    client = await connect(secured.bus_url, "call-centre-system", user=user)
    yield client
    await client.close()


Handle = Callable[[Any, Tracking], None]


@contextlib.asynccontextmanager
async def intake(
    settings: Settings, wrapped: Callable[[Handle], Handle] = lambda handle: handle
) -> AsyncIterator[IntakeApplication]:
    """Intake's runtime as its process runs it (its consumer's handler ``wrapped``, to count or break it)."""
    store = open_intake_store(settings)
    [submitted] = handlers.consumers(store, load_policy(settings.policy_path).intake)
    runtime = ServiceRuntime(
        settings,
        store,
        [Consumer(submitted.subscription, submitted.decode, wrapped(submitted.handle))],
        KeyVault(store.keys.master),
    )
    await runtime.start()
    try:
        yield store
    finally:
        await runtime.stop()


def submission(message_id: str, **changes: Any) -> bytes:
    body = {
        "message_id": message_id,
        "channel": "phone",
        "occurred_at": "2026-12-03T09:30:00+09:00",
        "department": "Outpatients",
        "summary": STORY,
        "complainant": {"name": "山田花子", "contact": "+81-90-1234-5678"},
        **changes,
    }
    return json.dumps(body, ensure_ascii=False).encode()


async def publish(channel: Client, data: bytes, message_id: str | None) -> bool:
    """As a channel publishes: the message id as Nats-Msg-Id; True if the server took it as new."""
    headers = {"Nats-Msg-Id": f"{CHANNEL}:{message_id}"} if message_id else None
    ack = await channel.jetstream().publish(f"submissions.{CHANNEL}", data, headers=headers)
    assert ack.stream == SUBMISSION_STREAM
    return not ack.duplicate


async def on_record(record: Client, *event_types: str) -> list[RecordEntry]:
    return [entry async for entry in read_record(record.jetstream()) if entry.event_type in event_types]


async def all_taken(record: Client) -> bool:
    """Every submission registered or rejected, acknowledged and so gone from the stream."""
    info = await record.jetstream().stream_info(SUBMISSION_STREAM)
    consumer = await record.jetstream().consumer_info(SUBMISSION_STREAM, "intake")
    return info.state.messages == 0 and consumer.num_ack_pending == 0 and info.state.last_seq > 0


async def test_a_channel_publishes_its_submission_and_it_is_registered_once_sealed(
    secured: Settings, record: Client, channel: Client
) -> None:
    async with intake(secured):
        assert await publish(channel, submission("cc-0001"), "cc-0001")
        # Published again at once (an ack that was lost): the server drops it as a duplicate...
        assert not await publish(channel, submission("cc-0001"), "cc-0001")
        # ...and later, past the server's window, intake knows the channel's id of it.
        assert await publish(channel, submission("cc-0001"), None)

        async def registered() -> list[RecordEntry]:
            return await on_record(record, "ComplaintReceived") if await all_taken(record) else []

        [received] = await eventually(registered, what="the complaint on the record")
        info = await record.jetstream().stream_info(SUBMISSION_STREAM)
        assert info.state.last_seq == 2  # two taken by the server, the second registering nothing
    assert received.body["channel"] == "phone"
    assert received.body["heard_by"] == "n-002"  # the owner of the call centre's inbox, from the policy
    assert received.body["department"] == "Outpatients"
    raw = json.dumps(received.body, ensure_ascii=False)
    for patient_data in (STORY, "山田", "1234-5678"):
        assert patient_data not in raw  # sealed
    assert await on_record(record, "ChannelMessageRejected", "MessageRejected") == []


async def test_a_submission_delivered_again_after_its_registration_registers_nothing_more(
    secured: Settings, record: Client, channel: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As when intake dies after the registration is stored and before its tracking record: the server
    delivers the submission again, and it is registered once."""
    handled: list[int] = []
    redelivered = asyncio.Event()

    def counted(handle: Handle) -> Handle:
        def counting(message: Any, tracking: Tracking) -> None:
            handled.append(tracking.notification_id)
            handle(message, tracking)

        return counting

    async with intake(secured, counted) as store:
        tracked = store.record

        def lost_until_delivered_again(*aggregates: Any, tracking: Tracking | None = None) -> None:
            if not redelivered.is_set():
                raise ConnectionError("the tracking record is lost with the process")
            tracked(*aggregates, tracking=tracking)

        monkeypatch.setattr(store, "record", lost_until_delivered_again)
        assert await publish(channel, submission("cc-0002"), "cc-0002")

        async def delivered_again() -> bool:
            consumer = await record.jetstream().consumer_info(SUBMISSION_STREAM, "intake")
            return consumer.num_redelivered > 0 and len(handled) > 1

        await eventually(delivered_again, what="the server delivering the submission again")
        redelivered.set()
        await eventually(lambda: all_taken(record), what="the submission acknowledged")
    assert set(handled) == {1}
    assert len(await on_record(record, "ComplaintReceived")) == 1


async def test_a_bad_submission_is_recorded_as_rejected_and_the_next_one_goes_through(
    secured: Settings, record: Client, channel: Client
) -> None:
    async with intake(secured):
        await publish(channel, submission("cc-0003", summary=STORY * 200), "cc-0003")  # over 4,000 characters
        await publish(channel, submission("cc-0004", channel="web"), "cc-0004")  # not the call centre's
        await publish(channel, b"\x00 not json", "garbage-1")
        await publish(channel, submission("cc-0005"), "cc-0005")
        # The id of a registered message again, with other facts: never taken for it.
        await publish(channel, submission("cc-0005", department="Ward 3"), "cc-0005-again")

        async def judged() -> list[RecordEntry]:
            kinds = ("ComplaintReceived", "ChannelMessageRejected", "MessageRejected")
            entries = await on_record(record, *kinds) if await all_taken(record) else []
            return entries if len(entries) == 5 else []

        entries = await eventually(judged, what="every submission registered or rejected on the record")
    by_ref = {entry.body.get("message_ref"): entry.body for entry in entries}
    too_long = by_ref[f"submissions.{CHANNEL}:cc-0003"]
    assert too_long["type"] == "ChannelMessageRejected"
    assert too_long["channel"] == "phone"
    assert too_long["reason"] == "summary: String should have at most 4000 characters"
    not_its_own = by_ref[f"submissions.{CHANNEL}:cc-0004"]
    assert not_its_own["reason"] == f"channel: {CHANNEL} submits for phone, not web"
    assert by_ref[None]["type"] == "ComplaintReceived"
    other_facts = by_ref[f"submissions.{CHANNEL}:cc-0005"]
    assert other_facts["type"] == "ChannelMessageRejected"
    assert "the id of an earlier message with other facts" in other_facts["reason"]
    [set_aside] = [entry.body for entry in entries if entry.event_type == "MessageRejected"]
    assert (set_aside["stream"], set_aside["stream_sequence"]) == (SUBMISSION_STREAM, 3)
    assert set_aside["reason"].startswith("not a valid message: message: Invalid JSON")
    assert all(STORY not in json.dumps(entry.body, ensure_ascii=False) for entry in entries)


async def test_a_channel_whose_credential_is_removed_is_let_in_no_more(
    embedded: Embedded, channel: Client, tmp_path: Path
) -> None:
    assert embedded.settings.nats_credentials is not None
    kept = tmp_path / "kept.nk"
    (embedded.settings.nats_credentials / f"channel-{CHANNEL}.nk").rename(kept)
    embedded.launcher_looks()

    async def dropped() -> bool:
        return not channel.is_connected

    await eventually(dropped, what="the channel's connection closed by the server")
    with pytest.raises(NatsError, match="Authorization Violation"):
        await nats.connect(embedded.settings.bus_url, nkeys_seed=str(kept), allow_reconnect=False)


async def test_a_channel_whose_backlog_is_full_is_refused_more_and_the_others_go_on(
    channel: Client, record: Client
) -> None:
    js = channel.jetstream()
    for n in range(MAX_WAITING_PER_CHANNEL):  # intake is not running: nothing is taken
        await js.publish(f"submissions.{CHANNEL}", b"{}", headers={"Nats-Msg-Id": f"{CHANNEL}:{n}"})
    with pytest.raises(ServiceUnavailableError, match="maximum messages per subject exceeded"):
        await js.publish(f"submissions.{CHANNEL}", b"{}", headers={"Nats-Msg-Id": f"{CHANNEL}:more"})
    ack = await record.jetstream().publish("submissions.kiosk", b"{}")  # another channel's
    assert ack.seq == MAX_WAITING_PER_CHANNEL + 1
