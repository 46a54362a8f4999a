"""A passing fault never buries a message; a message that can never be handled is set aside where
people see it (/health, `kizuki set-aside list`) and is taken up again by command. A real nats-server,
a real SQLite store, the real HTTP server and command; only the handler is a test double."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import uvicorn
from eventsourcing.persistence import Tracking
from faststream.nats import NatsBroker
from nats.aio.client import Client
from nats.js import JetStreamContext

from kizuki.cli import main
from kizuki.processes import free_port
from services.escalation.application import EscalationApplication
from services.escalation.handlers import consumers as escalation_consumers
from services.intake.main import open_intake_store
from shared import refusals
from shared.auth import issue_token
from shared.bus import RECORD_STREAM
from shared.consumer import Consumer, ConsumerLoop
from shared.directory import Directory, watch_directory
from shared.events import ComplaintReceived, EscalationStarted, MessageRejected, MessageTakenUp, encode_event
from shared.policy import Policy
from shared.privacy import KeyVault, MasterKey
from shared.runtime import ServiceRuntime, open_store
from shared.service import http_app
from shared.settings import Settings, load_settings
from shared.store import ServiceApplication
from shared.timers import now
from tests.factories import DATA_KEY, another_patients, complaint_received
from tests.polling import eventually

pytestmark = pytest.mark.integration

Handle = Callable[[Any, Tracking], None]


@pytest.fixture
async def vault(nc: Client, settings: Settings) -> KeyVault:
    bound = KeyVault(MasterKey.load(settings.master_key))
    await bound.bind(nc.jetstream())
    return bound


async def publish_complaint(js: JetStreamContext, vault: KeyVault, event: ComplaintReceived) -> None:
    await vault.put(event.complaint_id, vault.master.wrap(DATA_KEY))
    await js.publish(event.subject, encode_event(event))


def wire_events(store: ServiceApplication) -> list[Any]:
    notifications = store.process_recorder.select_notifications(1, 1000)
    events = [store.wire_event(store.mapper.to_domain_event(n)) for n in notifications]
    return [e for e in events if isinstance(e, EscalationStarted | MessageRejected | MessageTakenUp)]


async def processed(store: ServiceApplication, sequence: int) -> bool:
    return await asyncio.to_thread(store.has_processed, Tracking(RECORD_STREAM, sequence))


async def stop(tasks: list[asyncio.Task[None]]) -> None:
    """Before the store closes: a consumer's work in a worker thread must not meet a closed store."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def works_again(loop: ConsumerLoop[Any]) -> bool:
    """The consumer shows no fault once it has acknowledged (just after the commit that is checked)."""
    return not loop.fault.failing


async def test_a_handler_failing_longer_than_five_deliveries_is_retried_until_it_works_never_set_aside(
    consumer_broker: NatsBroker,
    nc: Client,
    settings: Settings,
    policy: Policy,
    directory: Directory,
    vault: KeyVault,
) -> None:
    js = nc.jetstream()
    store = open_store(EscalationApplication, settings)
    consumer = escalation_consumers(store, policy, watch_directory(settings.directory_path), vault)[0]
    calls: Counter[str] = Counter()

    def key_bucket_slow_for_seven_tries(event: Any, tracking: Tracking) -> None:
        calls[event.department] += 1
        if event.department == "slow" and calls["slow"] <= 7:
            raise TimeoutError("the key bucket did not answer")
        consumer.handle(event, tracking)

    flaky = Consumer(consumer.subscription, consumer.decode, key_bucket_slow_for_seven_tries)
    loop = ConsumerLoop(store, consumer_broker, flaky, lambda: None, first_retry_delay=0.01)
    for department in ("slow", "works"):
        await publish_complaint(js, vault, complaint_received(department=department))
    running = [asyncio.create_task(loop.run())]
    try:

        async def failing() -> dict[str, Any]:
            report = loop.fault.report()
            return report if report["failing"] and report["failures"] >= 2 else {}

        seen = await eventually(failing, what="the consumer showing its passing fault")
        assert seen["last_error"] == "TimeoutError"
        assert seen["since"]
        await eventually(lambda: processed(store, 2), what="both messages handled")
        assert calls == {"slow": 8, "works": 1}
        assert [type(event).__name__ for event in wire_events(store)] == ["EscalationStarted"] * 2
        await eventually(lambda: works_again(loop), what="the fault cleared")
        assert loop.set_aside == 0
    finally:
        await stop(running)
        store.close()


async def test_a_handler_defect_is_tried_five_times_then_set_aside_so_the_messages_behind_it_go_on(
    consumer_broker: NatsBroker,
    nc: Client,
    settings: Settings,
    policy: Policy,
    vault: KeyVault,
) -> None:
    js = nc.jetstream()
    store = open_store(EscalationApplication, settings)
    consumer = escalation_consumers(store, policy, watch_directory(settings.directory_path), vault)[0]
    calls: Counter[str] = Counter()

    def a_defect_for_one_department(event: Any, tracking: Tracking) -> None:
        calls[event.department] += 1
        if event.department == "defect":
            raise KeyError("a bug, not a fault of the infrastructure")
        consumer.handle(event, tracking)

    buggy = Consumer(consumer.subscription, consumer.decode, a_defect_for_one_department)
    loop = ConsumerLoop(store, consumer_broker, buggy, lambda: None, first_retry_delay=0.01)
    for department in ("defect", "works"):
        await publish_complaint(js, vault, complaint_received(department=department))
    running = [asyncio.create_task(loop.run())]
    try:
        await eventually(lambda: processed(store, 2), what="the message behind the defect handled")
        assert calls == {"defect": 5, "works": 1}
        rejected, started = wire_events(store)
        assert isinstance(rejected, MessageRejected)
        assert rejected.reason == "handler failed 5 times, last: KeyError"  # the class only
        assert isinstance(started, EscalationStarted)
        assert loop.set_aside == 1
    finally:
        await stop(running)
        store.close()


async def test_a_store_locked_by_another_writer_is_waited_out_and_the_message_handled_once(
    consumer_broker: NatsBroker,
    nc: Client,
    settings: Settings,
    policy: Policy,
    directory: Directory,
    vault: KeyVault,
) -> None:
    js = nc.jetstream()
    settings.service_dir("escalation").mkdir(parents=True, exist_ok=True)
    # A one-second lock timeout instead of ten, so that many deliveries fail within the test.
    store = EscalationApplication(env={**settings.store_env("escalation"), "SQLITE_LOCK_TIMEOUT": "1"})
    consumer = escalation_consumers(store, policy, watch_directory(settings.directory_path), vault)[0]
    loop = ConsumerLoop(store, consumer_broker, consumer, lambda: None, first_retry_delay=0.01)
    other_writer = sqlite3.connect(settings.service_dir("escalation") / "store.sqlite", isolation_level=None)
    other_writer.execute("BEGIN EXCLUSIVE")
    running: list[asyncio.Task[None]] = []
    try:
        await publish_complaint(js, vault, complaint_received())
        running.append(asyncio.create_task(loop.run()))
        # More failed deliveries than the five after which such a message used to be rejected.
        await eventually(lambda: asyncio.sleep(0, loop.fault.failures >= 7), within=60, what="7 failures")
        assert loop.fault.last_error == "OperationalError"
        other_writer.execute("ROLLBACK")
        await eventually(lambda: processed(store, 1), within=60, what="the message handled")
        [started] = wire_events(store)
        assert isinstance(started, EscalationStarted)
        await eventually(lambda: works_again(loop), what="the fault cleared")
    finally:
        other_writer.close()
        await stop(running)
        store.close()


async def test_a_message_that_breaks_a_rule_is_set_aside_at_once_shown_and_taken_up_again_by_command(
    nats_url: str,
    nc: Client,
    settings: Settings,
    policy: Policy,
    directory: Directory,
    vault: KeyVault,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    monkeypatch.setenv("KIZUKI_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("NATS_URL", nats_url)
    monkeypatch.setenv("KIZUKI_ESCALATION_PORT", str(port))
    settings = load_settings()
    store = open_store(EscalationApplication, settings)
    consumer = escalation_consumers(store, policy, watch_directory(settings.directory_path), vault)[0]
    calls: Counter[str] = Counter()
    broken = True

    def refuses_until_fixed(event: Any, tracking: Tracking) -> None:
        calls[event.department] += 1
        if broken and event.department == "unknown ward":
            raise refusals.NotPossible("no chain is set for the department 'unknown ward'")
        consumer.handle(event, tracking)

    runtime = ServiceRuntime(
        settings, store, [Consumer(consumer.subscription, consumer.decode, refuses_until_fixed)], vault
    )
    server = uvicorn.Server(uvicorn.Config(http_app("escalation", runtime), port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    http = httpx.AsyncClient(base_url=settings.http_url("escalation"))
    try:
        await eventually(lambda: asyncio.sleep(0, server.started), what="the service started")
        js = nc.jetstream()
        for department in ("unknown ward", "Radiology"):
            await publish_complaint(js, vault, complaint_received(department=department))

        async def health() -> dict[str, Any]:
            answer: dict[str, Any] = (await http.get("/health")).json()
            return answer

        async def set_aside_shown() -> dict[str, Any]:
            consumers = (await health())["consumers"]
            return consumers if consumers["escalation on EVENTS"]["set_aside"] == 1 else {}

        await eventually(set_aside_shown, what="/health showing one message set aside")
        await eventually(lambda: processed(store, 2), what="the message behind it handled")
        assert calls == {"unknown ward": 1, "Radiology": 1}  # set aside at once, not after retries
        rejection = wire_events(store)[0]
        assert isinstance(rejection, MessageRejected)
        assert rejection.stream_sequence == 1
        assert "breaks a rule: no chain is set" in rejection.reason
        body = await health()
        assert body["status"] == "ok"
        assert body["relay"]["failing"] is False
        assert body["tasks"]["relay"] == {"failing": False, "restarts": 0}
        assert (await http.get("/ready")).json() == {"ready": True, "service": "escalation", "failing": []}

        nurse = issue_token(settings.token_signing_key, "n-001", directory)
        listed = await http.get("/v1/set-aside", headers={"Authorization": f"Bearer {nurse}"})
        assert listed.status_code == 403

        with pytest.raises(SystemExit) as listing:
            await asyncio.to_thread(main, ["set-aside", "list", "--service", "escalation", "--by", "dm-001"])
        assert listing.value.code == 0
        [line] = capsys.readouterr().out.splitlines()
        assert line.startswith("escalation EVENTS 1 set aside ")
        assert "breaks a rule: no chain is set for the department 'unknown ward'" in line

        broken = False  # the cause is fixed
        await asyncio.to_thread(main, ["set-aside", "take-up", "escalation", "EVENTS", "1", "--by", "dm-001"])
        assert "took up EVENTS #1 again" in capsys.readouterr().out
        kinds = [type(event).__name__ for event in wire_events(store)]
        assert kinds == ["MessageRejected", "EscalationStarted", "EscalationStarted", "MessageTakenUp"]
        taken_up = wire_events(store)[-1]
        assert (taken_up.stream_sequence, taken_up.requested_by) == (1, "dm-001")
        assert (await health())["consumers"]["escalation on EVENTS"]["set_aside"] == 0

        # Once only: a second take-up finds nothing set aside, and the handler is not called again.
        with pytest.raises(SystemExit) as again:
            await asyncio.to_thread(
                main, ["set-aside", "take-up", "escalation", "EVENTS", "1", "--by", "dm-001"]
            )
        assert "404" in str(again.value.code)
        assert "no message EVENTS #1 set aside" in str(again.value.code)
        assert calls == {"unknown ward": 2, "Radiology": 1}
    finally:
        await http.aclose()
        server.should_exit = True
        await serving


async def test_a_failing_relay_is_shown_with_its_lag_and_restarts_and_is_not_ready_once_it_fails_too_long(
    nats_url: str, settings: Settings, vault: KeyVault
) -> None:
    settings = load_settings({"KIZUKI_DATA_DIR": str(settings.data_dir), "NATS_URL": nats_url})
    store = open_intake_store(settings)
    store.register(another_patients(0), None, now())
    # Intake's relay keeps each complaint's key before the complaint: without the vault it fails.
    runtime = ServiceRuntime(settings, store, [], vault=None, not_ready_after=0.5)
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(http_app("intake", runtime)), base_url="http://intake"
    )
    await runtime.start()
    try:

        async def relay_failing_too_long() -> dict[str, Any]:
            answer = await http.get("/ready")
            return answer.json() if answer.status_code == 503 else {}

        assert await eventually(relay_failing_too_long, what="/ready 503") == {
            "ready": False,
            "service": "intake",
            "failing": ["relay"],
        }
        health = await http.get("/health")
        assert health.status_code == 200  # connected to the bus and the store: the body says the rest
        relay, task = health.json()["relay"], health.json()["tasks"]["relay"]
        # Lag counts stored notifications: the complaint and its reference's index entry.
        assert (relay["lag"], relay["failing"], relay["last_error"]) == (2, True, "RuntimeError")
        assert task["failing"] is True
        assert task["restarts"] >= 1

        assert runtime.relay is not None
        runtime.relay.vault = vault  # the cause is fixed: the next restart relays

        async def relayed() -> dict[str, Any]:
            relay: dict[str, Any] = (await http.get("/health")).json()["relay"]
            return relay if relay["lag"] == 0 else {}

        assert await eventually(relayed, what="the relay catching up") == {
            "lag": 0,
            "failing": False,
            "set_aside": 0,
        }
        assert (await http.get("/ready")).status_code == 200
    finally:
        await http.aclose()
        await runtime.stop()
