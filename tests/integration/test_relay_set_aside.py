"""An event the bus refuses for good is set aside by the relay, and the events behind it flow: a real
nats-server whose max_payload is small, so an event of ordinary size within intake's limits is too
large for it, a real SQLite store, and the record checked as `kizuki audit verify` checks it."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from eventsourcing.persistence import Tracking
from nats.aio.client import Client

from kizuki.audit import read_messages
from kizuki.cli import main
from kizuki.processes import free_port, start_nats, stop
from kizuki.provision import provision_bus, provision_signing_keys
from kizuki.verify import Verifier
from services.intake.main import open_intake_store
from shared.bus import connect
from shared.chain import SigningKey, TrustFile
from shared.events import ComplaintReceived, EventSetAside, MessageRejected, decode_event, encode_event
from shared.outbox import Checkpoints, OutboxRelay
from shared.privacy import KeyVault, MasterKey
from shared.settings import Settings
from shared.timers import now
from tests.factories import registration

pytestmark = pytest.mark.integration

MAX_PAYLOAD = 2048


@pytest.fixture
def small_payload_url(tmp_path: Path) -> Iterator[str]:
    config = tmp_path / "small-payload.conf"
    config.write_text(f"max_payload: {MAX_PAYLOAD}\n", encoding="utf-8")
    port = free_port()
    process = start_nats(port, tmp_path / "nats", tmp_path / "nats-server.log", config)
    yield f"nats://127.0.0.1:{port}"
    stop(process)


@pytest.fixture
async def small_nc(small_payload_url: str) -> AsyncIterator[Client]:
    await provision_bus(small_payload_url)
    client = await connect(small_payload_url, "test")
    yield client
    await client.close()


async def test_an_event_too_large_for_the_bus_is_set_aside_and_the_chain_goes_on(
    small_payload_url: str,
    small_nc: Client,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    provision_signing_keys(settings)
    js = small_nc.jetstream()
    vault = KeyVault(MasterKey.load(settings.master_key))
    await vault.bind(js)
    store = open_intake_store(settings)
    try:
        too_large = secrets.token_hex(1000)  # 2,000 characters that do not compress
        for n, summary in enumerate(("before", too_large, "after")):
            store.register(
                registration(summary=summary, complainant_contact=f"p-{n}@example.org"), None, now()
            )
        [stored] = store.process_recorder.select_notifications(2, 1)
        assert len(stored.state) > MAX_PAYLOAD

        key = SigningKey.load(settings.signing_key_file("intake"))
        relay = OutboxRelay(store, js, Checkpoints(key), vault)
        relay.position = await relay.last_relayed()
        assert await relay.relay_pending() == 3
        await relay.sign_head()
        assert await relay.lag() == 0
        assert not relay.fault.failing

        messages = [message async for message in read_messages(js)]
        assert [m.headers["Nats-Msg-Id"] for m in messages] == [
            "intake:1",
            "intake:2",
            "intake:3",
            "intake:3:checkpoint",
        ]
        bodies = [decode_event(m.data or b"") for m in messages]
        assert [type(body).__name__ for body in bodies] == [
            "ComplaintReceived",
            "EventSetAside",
            "ComplaintReceived",
            "CheckpointSigned",
        ]
        set_aside = bodies[1]
        assert isinstance(set_aside, EventSetAside)
        assert (set_aside.set_aside_by, set_aside.notification_id) == ("intake", 2)
        assert set_aside.event_type == "ComplaintReceived"
        assert set_aside.size > MAX_PAYLOAD
        assert set_aside.reason == "larger than the server's max_payload"
        assert isinstance(bodies[2], ComplaintReceived)
        assert set_aside.complaint_id == store.mapper.to_domain_event(stored).originator_id
        assert too_large.encode() not in (messages[1].data or b"")  # no content of the event set aside

        verifier = Verifier(TrustFile.load(settings.trust_file))
        for message in messages:
            verifier.check(message)
        verifier.finish()
        assert verifier.holds, verifier.problems
        # The event itself stays where it was stored.
        assert store.process_recorder.max_notification_id() == 3

        # `kizuki set-aside list` names it (read from the record), even with intake's HTTP down.
        monkeypatch.setenv("KIZUKI_DATA_DIR", str(settings.data_dir))
        monkeypatch.setenv("NATS_URL", small_payload_url)
        monkeypatch.setenv("KIZUKI_INTAKE_PORT", str(free_port()))
        with pytest.raises(SystemExit) as listing:
            await asyncio.to_thread(main, ["set-aside", "list", "--service", "intake", "--by", "dm-001"])
        assert listing.value.code == 1
        shown = capsys.readouterr()
        assert "kizuki: intake does not answer" in shown.err
        assert shown.out.startswith(
            f"intake relay: notification 2 (ComplaintReceived, {set_aside.size} bytes, complaint "
            f"{set_aside.complaint_id}) not published: larger than the server's max_payload;"
        )
    finally:
        store.close()


async def test_an_event_that_fits_only_without_its_headers_is_set_aside_before_the_server_refuses_it(
    small_nc: Client, settings: Settings
) -> None:
    """The client counts the payload only; the server counts the headers too, and closes the connection
    of a client that sends more: the relay measures both before it publishes."""
    provision_signing_keys(settings)
    js = small_nc.jetstream()
    store = open_intake_store(settings)
    try:
        # A stored event whose payload is a little under max_payload: with its chain headers, over it.
        probe = MessageRejected(
            event_id=uuid4(), occurred_at=now(), recorded_at=now(), rejected_by="intake", stream="EVENTS",
            stream_sequence=1, message_subject="events.x.Y", reason="",
        )  # fmt: skip
        reason = "x" * (MAX_PAYLOAD - 150 - len(encode_event(probe)))
        store.reject(Tracking("EVENTS", 1), "events.x.Y", reason, None)
        [stored] = store.process_recorder.select_notifications(1, 1)
        wire = store.wire_event(store.mapper.to_domain_event(stored))
        assert wire is not None
        assert MAX_PAYLOAD - 300 < len(encode_event(wire)) < MAX_PAYLOAD

        key = SigningKey.load(settings.signing_key_file("intake"))
        relay = OutboxRelay(store, js, Checkpoints(key), max_payload=small_nc.max_payload)
        relay.position = await relay.last_relayed()
        assert await relay.relay_pending() == 1
        assert small_nc.is_connected

        [message] = [message async for message in read_messages(js)]
        set_aside = decode_event(message.data or b"")
        assert isinstance(set_aside, EventSetAside)
        assert (set_aside.event_type, set_aside.reason) == (
            "MessageRejected",
            "larger than the server's max_payload",
        )
    finally:
        store.close()
