"""An event the bus refuses for good is set aside by the relay, the events behind it flow, and it is
published once its cause is fixed: a real nats-server whose max_payload is small (so an event of
ordinary size within intake's limits is too large for it), then raised; a real SQLite store; the
service's real HTTP server and `kizuki set-aside`; the record checked as `kizuki audit verify` does."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
import uvicorn
from eventsourcing.persistence import Tracking
from nats.aio.client import Client

from kizuki.audit import RecordMessage, read_messages
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
from shared.runtime import ServiceRuntime
from shared.service import http_app
from shared.settings import Settings, load_settings
from shared.timers import now
from tests.factories import registration
from tests.polling import eventually

pytestmark = pytest.mark.integration

MAX_PAYLOAD = 2048


class SmallBus:
    """A nats-server that takes at most MAX_PAYLOAD bytes a message, until it is restarted with more."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.process = self._start(MAX_PAYLOAD)

    def _start(self, max_payload: int) -> subprocess.Popen[bytes]:
        config = self.tmp_path / f"max-payload-{max_payload}.conf"
        config.write_text(f"max_payload: {max_payload}\n", encoding="utf-8")
        return start_nats(self.port, self.tmp_path / "nats", self.tmp_path / "nats-server.log", config)

    def restart(self, max_payload: int) -> None:
        """The same server, store and port, taking larger messages: the cause is fixed."""
        stop(self.process)
        self.process = self._start(max_payload)


@pytest.fixture
def small_bus(tmp_path: Path) -> Iterator[SmallBus]:
    bus = SmallBus(tmp_path)
    yield bus
    stop(bus.process)


@pytest.fixture
async def small_nc(small_bus: SmallBus) -> AsyncIterator[Client]:
    await provision_bus(small_bus.url)
    client = await connect(small_bus.url, "test")
    yield client
    await client.close()


def verified(messages: list[RecordMessage], settings: Settings) -> Verifier:
    verifier = Verifier(TrustFile.load(settings.trust_file))
    for message in messages:
        verifier.check(message)
    verifier.finish()
    return verifier


async def test_an_event_too_large_for_the_bus_is_set_aside_the_next_flow_and_it_is_published_once_fixed(
    small_bus: SmallBus,
    small_nc: Client,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    provision_signing_keys(settings)
    port = free_port()
    monkeypatch.setenv("KIZUKI_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("NATS_URL", small_bus.url)
    monkeypatch.setenv("KIZUKI_INTAKE_PORT", str(port))
    settings = load_settings()
    store = open_intake_store(settings)
    too_large = secrets.token_hex(1000)  # 2,000 characters that do not compress
    for n, summary in enumerate(("before", too_large, "after")):
        store.register(registration(summary=summary, complainant_contact=f"p-{n}@example.org"), None, now())
    runtime = ServiceRuntime(settings, store, [], KeyVault(MasterKey.load(settings.master_key)))
    server = uvicorn.Server(uvicorn.Config(http_app("intake", runtime), port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    http = httpx.AsyncClient(base_url=settings.http_url("intake"))
    js = small_nc.jetstream()
    try:

        async def relay_health(lag: int, set_aside: int) -> dict[str, Any]:
            answer = await http.get("/health")
            relay: dict[str, Any] = answer.json()["relay"] if answer.status_code == 200 else {}
            return relay if relay.get("lag") == lag and relay.get("set_aside") == set_aside else {}

        await eventually(lambda: asyncio.sleep(0, server.started), what="the service started")
        shown = await eventually(lambda: relay_health(0, 1), what="every event relayed, one set aside")
        assert shown["failing"] is False

        messages = [message async for message in read_messages(js)]
        # Each registration stores two notifications: the complaint, and its reference's index entry
        # (which stays inside): the complaints are notifications 1, 3 and 5.
        assert [m.headers["Nats-Msg-Id"] for m in messages] == ["intake:1", "intake:3", "intake:5"]
        bodies = [decode_event(m.data or b"") for m in messages]
        assert [type(body).__name__ for body in bodies] == [
            "ComplaintReceived",
            "EventSetAside",
            "ComplaintReceived",
        ]
        set_aside = bodies[1]
        assert isinstance(set_aside, EventSetAside)
        assert (set_aside.set_aside_by, set_aside.notification_id) == ("intake", 3)
        assert set_aside.event_type == "ComplaintReceived"
        assert set_aside.size > MAX_PAYLOAD
        assert set_aside.reason == "larger than the server's max_payload"
        assert too_large.encode() not in (messages[1].data or b"")  # nothing of the event's content
        stored = store.stored_wire_event(3)
        assert isinstance(stored, ComplaintReceived)  # the event itself stays in the store
        assert set_aside.complaint_id == stored.complaint_id
        assert set_aside.event_id != stored.event_id

        with pytest.raises(SystemExit) as listing:
            await asyncio.to_thread(main, ["set-aside", "list", "--service", "intake", "--by", "dm-001"])
        assert listing.value.code == 0
        [line] = capsys.readouterr().out.splitlines()
        assert line.startswith("intake outbox 3 set aside ")
        assert line.endswith(
            f"(ComplaintReceived, {set_aside.size} bytes, complaint {stored.complaint_id}): "
            "larger than the server's max_payload"
        )

        small_bus.restart(max_payload=1024 * 1024)  # the cause is fixed

        async def back_on_the_larger_bus() -> bool:
            assert runtime.nc is not None
            return runtime.nc.is_connected and runtime.nc.max_payload == 1024 * 1024

        await eventually(back_on_the_larger_bus, what="the service back on the bus")
        await asyncio.to_thread(main, ["set-aside", "take-up", "intake", "outbox", "3", "--by", "dm-001"])
        assert "took up outbox #3 again" in capsys.readouterr().out
        await eventually(lambda: relay_health(0, 0), what="the event set aside published")
        with pytest.raises(SystemExit) as again:
            await asyncio.to_thread(main, ["set-aside", "take-up", "intake", "outbox", "3", "--by", "dm-001"])
        assert "(404: intake has no event 3 of its outbox set aside" in str(again.value.code)
    finally:
        await http.aclose()
        server.should_exit = True
        await serving  # a clean shutdown: the relay signs its head

    messages = [message async for message in read_messages(small_nc.jetstream())]
    # Notification 7 (kept as set aside) stays inside; 8 (taken up) is the stored event, published.
    assert [m.headers["Nats-Msg-Id"] for m in messages] == [
        "intake:1",
        "intake:3",
        "intake:5",
        "intake:8",
        "intake:8:checkpoint",
    ]
    assert decode_event(messages[3].data or b"") == stored
    verifier = verified(messages, settings)
    assert verifier.holds, verifier.problems


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
        wire = store.stored_wire_event(1)
        assert wire is not None
        assert MAX_PAYLOAD - 300 < len(encode_event(wire)) < MAX_PAYLOAD

        key = SigningKey.load(settings.signing_key_file("intake"))
        relay = OutboxRelay(store, js, Checkpoints(key), max_payload=lambda: small_nc.max_payload)
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
