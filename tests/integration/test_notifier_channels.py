"""Receipts and alerts delivered through real providers in the test process: an SMTP server and HTTP
endpoints, answering as told (refusals, 5xx, 4xx, no answer)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Tracking

from kizuki.provision import provision_bus
from services.escalation.deadlines import due_at
from services.notifier.application import NotifierApplication
from services.notifier.channels import ChannelError, Message, load_channels
from services.notifier.dispatcher import Dispatcher
from services.notifier.domain import Notification, receipt_text
from services.notifier.main import open_channels
from services.notifier.webhooks import HttpChannel, WebhookChannel
from shared.bus import connect
from shared.directory import Directory
from shared.policy import Policy
from shared.privacy import KeyVault, MasterKey
from shared.service import open_store
from shared.settings import Settings
from shared.timers import now
from tests.factories import DATA_KEY, alert_requested, complaint_received
from tests.polling import eventually
from tests.providers import Endpoint, Mailbox, http_endpoint, self_signed_certificate, smtp_server

pytestmark = pytest.mark.integration

FAST_RETRIES = """
[delivery]
timeout_seconds = {timeout}
attempts_per_channel = 3
first_retry_seconds = 0.05
max_retry_seconds = 0.2
"""


@pytest.fixture
def mail() -> Iterator[tuple[int, Mailbox]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def endpoint() -> Iterator[tuple[str, Endpoint]]:
    with http_endpoint() as server:
        yield server


class Notifier:
    """The notifier's store and dispatcher on the given channel configuration, without the bus."""

    def __init__(
        self, settings: Settings, channels_toml: str, env: dict[str, str], vault: KeyVault | None = None
    ) -> None:
        """``vault``: bound to a bus, for receipts; staff alerts never open one."""
        path = settings.data_dir / "channels.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(channels_toml, encoding="utf-8")
        self.config = load_channels(path)
        self.channels = open_channels(self.config, settings, env)
        self.store = open_store(NotifierApplication, settings)
        vault = vault or KeyVault(MasterKey.load(settings.master_key))
        self.dispatcher = Dispatcher(
            self.store, self.channels, self.config.delivery, vault, on_commit=lambda: None
        )
        self.sequence = 0

    def tracking(self) -> Tracking:
        self.sequence += 1
        return Tracking("EVENTS", self.sequence)

    def alert(self, directory: Directory, recipient: str = "sv-003") -> UUID:
        alert = alert_requested(recipient=recipient, tier="major")
        self.store.request_alert(
            alert, directory, self.channels.keys(), lambda d: f"http://kizuki/ack/{d}", now(), self.tracking()
        )
        return self.last_requested()

    def last_requested(self) -> UUID:
        last = self.store.process_recorder.select_notifications(1, 1000)[-1]
        return UUID(str(last.originator_id))

    def events(self, delivery_id: UUID) -> list[Notification.Event]:
        return [
            event for event in self.store.events.get(delivery_id) if isinstance(event, Notification.Event)
        ]

    async def until_done(self, delivery_id: UUID) -> Notification:
        async def done() -> Notification | None:
            notification = self.store.get_notification(delivery_id)
            return notification if notification and not notification.pending else None

        finished = await eventually(done, what=f"delivery {delivery_id} finished")
        assert finished is not None
        return finished


@pytest.fixture
async def running() -> AsyncIterator[Callable[[Notifier], None]]:
    tasks: list[asyncio.Task[None]] = []

    def start(notifier: Notifier) -> None:
        tasks.append(asyncio.create_task(notifier.dispatcher.run()))

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def smtp_channel(port: int, **extra: str) -> str:
    lines = "".join(f'{key} = "{value}"\n' for key, value in extra.items())
    return f"""
[channels.email]
kind = "smtp"
host = "127.0.0.1"
port = {port}
starttls = false
sender = "kizuki@hospital.example"
{lines}"""


@pytest.fixture
async def vault(nats_url: str, settings: Settings) -> AsyncIterator[KeyVault]:
    """The key bucket on a real server, holding the key of the complaints the factories make."""
    await provision_bus(nats_url)
    nc = await connect(nats_url, "test")
    bound = KeyVault(MasterKey.load(settings.master_key))
    await bound.bind(nc.jetstream())
    yield bound
    await nc.close()


@pytest.mark.parametrize("language", ["ja", "zh", "en"])
async def test_the_receipt_reaches_the_complainant_by_smtp_in_their_language(
    settings: Settings,
    policy: Policy,
    mail: tuple[int, Mailbox],
    running: Any,
    language: str,
    vault: KeyVault,
) -> None:
    port, mailbox = mail
    notifier = Notifier(settings, FAST_RETRIES.format(timeout=10) + smtp_channel(port), {}, vault)
    complaint = complaint_received(language=language, name="Sato Hanako", contact="sato@example.org")
    await vault.put(complaint.complaint_id, vault.master.wrap(DATA_KEY))
    patient = await vault.open(complaint.complaint_id, complaint.patient_data)
    notifier.store.request_receipt(
        complaint, patient, policy, notifier.channels.keys(), now(), notifier.tracking()
    )
    # The notifier keeps the contact sealed, as it came: it is opened at each attempt.
    assert b"sato@example.org" not in (settings.data_dir / "notifier" / "store.sqlite").read_bytes()
    running(notifier)

    receipt = await notifier.until_done(notifier.last_requested())
    assert receipt.outcome == "delivered by email"
    [message] = mailbox.messages
    assert message["To"] == "sato@example.org"
    assert message["Message-ID"] == f"<{receipt.idempotency_key}@kizuki>"
    calendar = policy.escalation.calendar
    due = due_at(
        policy.escalation.duties["first_response"], complaint.occurred_at, complaint.recorded_at, calendar
    )
    expected = receipt_text(language, complaint.complaint_id, due, calendar.timezone)
    assert message.get_content().strip() == expected
    assert "Sato Hanako" not in message.as_string()


async def test_smtp_authenticates_with_the_password_from_the_environment(
    settings: Settings, directory: Directory, mail: tuple[int, Mailbox], running: Any
) -> None:
    port, mailbox = mail
    channel = smtp_channel(port, username="kizuki", password_env="TEST_SMTP_PASSWORD")
    notifier = Notifier(settings, FAST_RETRIES.format(timeout=10) + channel, {"TEST_SMTP_PASSWORD": "right"})
    running(notifier)
    assert (await notifier.until_done(notifier.alert(directory))).outcome == "delivered by email"
    assert mailbox.logins == [("kizuki", "right")]


async def test_smtp_upgrades_with_starttls_before_it_logs_in(
    settings: Settings, directory: Directory, tmp_path: Path, running: Any
) -> None:
    certificate = self_signed_certificate(tmp_path)
    with smtp_server(certificate) as (port, mailbox):
        channel = smtp_channel(port, username="kizuki", password_env="TEST_SMTP_PASSWORD")
        trusted = channel.replace("starttls = false", f'starttls = true\nca_file = "{certificate[0]}"')
        notifier = Notifier(
            settings, FAST_RETRIES.format(timeout=10) + trusted, {"TEST_SMTP_PASSWORD": "right"}
        )
        running(notifier)
        assert (await notifier.until_done(notifier.alert(directory))).outcome == "delivered by email"
        assert mailbox.logins == [("kizuki", "right")]
        assert mailbox.tls == [True]


async def test_a_refused_mailbox_is_recorded_and_the_alert_goes_to_the_next_channel(
    settings: Settings,
    directory: Directory,
    mail: tuple[int, Mailbox],
    endpoint: tuple[str, Endpoint],
    running: Any,
) -> None:
    port, mailbox = mail
    url, sms = endpoint
    mailbox.replies["suzuki@hospital.example"] = "550 5.1.1 <suzuki@hospital.example>: no such mailbox"
    sms_channel = f"""
[channels.sms]
kind = "sms"
url = "{url}/send"
username = "kizuki"
password_env = "TEST_SMS_TOKEN"
body = {{ to = "{{to}}", message = "{{text}}", reference = "{{delivery_id}}" }}
"""
    notifier = Notifier(
        settings,
        FAST_RETRIES.format(timeout=10) + smtp_channel(port) + sms_channel,
        {"TEST_SMS_TOKEN": "t0k"},
    )
    running(notifier)
    delivery_id = notifier.alert(directory)

    alert = await notifier.until_done(delivery_id)
    assert alert.outcome == "delivered by sms"
    failed = [
        event for event in notifier.events(delivery_id) if isinstance(event, Notification.AttemptFailed)
    ]
    assert [(event.channel, event.permanent, event.next_channel) for event in failed] == [
        ("email", True, "sms")
    ]
    assert failed[0].reason == "rejected_recipient (SMTP 550)"
    [request] = sms.requests
    assert request.body["to"] == "+81-90-0000-0003"
    assert request.body["reference"] == str(delivery_id)
    assert "http://kizuki/ack/" in request.body["message"]
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"kizuki:t0k").decode()
    assert request.headers["Idempotency-Key"] == str(alert.idempotency_key)


def webhook_channel(url: str, name: str = "email", format: str = "json") -> str:
    return f"""
[channels.{name}]
kind = "webhook"
format = "{format}"
url = "{url}"
"""


async def test_transient_failures_are_retried_with_the_same_idempotency_key(
    settings: Settings, directory: Directory, endpoint: tuple[str, Endpoint], running: Any
) -> None:
    url, hook = endpoint
    hook.statuses = [503, 502]
    notifier = Notifier(settings, FAST_RETRIES.format(timeout=10) + webhook_channel(url + "/hook"), {})
    running(notifier)
    delivery_id = notifier.alert(directory)

    alert = await notifier.until_done(delivery_id)
    assert alert.outcome == "delivered by email"
    assert hook.keys() == [str(alert.idempotency_key)] * 3
    kinds = [type(event).__name__ for event in notifier.events(delivery_id)]
    assert kinds == ["Requested", *["AttemptStarted", "AttemptFailed"] * 2, "AttemptStarted", "Delivered"]
    failed = [
        event for event in notifier.events(delivery_id) if isinstance(event, Notification.AttemptFailed)
    ]
    assert all(event.retry_at is not None and not event.permanent for event in failed)


async def test_a_4xx_from_a_webhook_is_permanent_and_the_last_channel_gives_up(
    settings: Settings, directory: Directory, endpoint: tuple[str, Endpoint], running: Any
) -> None:
    url, hook = endpoint
    hook.statuses = [400, 404]
    channels = webhook_channel(url + "/mail") + webhook_channel(url + "/sms", name="sms")
    notifier = Notifier(settings, FAST_RETRIES.format(timeout=10) + channels, {})
    running(notifier)
    alert = await notifier.until_done(notifier.alert(directory))
    assert str(alert.outcome).startswith("not delivered: every channel failed")
    assert [request.path for request in hook.requests] == ["/mail", "/sms"]


async def test_a_provider_that_hangs_holds_up_nothing_else_and_times_out(
    settings: Settings, directory: Directory, endpoint: tuple[str, Endpoint], running: Any
) -> None:
    url, hook = endpoint
    hook.hanging = {"/slow"}
    hanging_and_fine = webhook_channel(url + "/slow") + webhook_channel(url + "/fast", name="sms")
    notifier = Notifier(settings, FAST_RETRIES.format(timeout=2) + hanging_and_fine, {})
    sms_only = directory.staff["sv-004"].model_copy(update={"contacts": {"sms": "+81-90-1"}})
    narrowed = directory.model_copy(update={"staff": directory.staff | {"sv-004": sms_only}})
    running(notifier)
    slow = notifier.alert(narrowed, "sv-003")  # e-mail first: the hanging endpoint
    fast = notifier.alert(narrowed, "sv-004")  # SMS only: the other endpoint

    assert (await notifier.until_done(fast)).outcome == "delivered by sms"
    assert hook.held == ["/slow"]  # still held: the slow request has no answer yet
    assert notifier.store.get_notification(slow).pending  # type: ignore[union-attr]

    async def timed_out() -> bool:
        return any(isinstance(e, Notification.AttemptFailed) for e in notifier.events(slow))

    await eventually(timed_out, what="the hanging attempt timed out")
    hook.release.set()
    alert = await notifier.until_done(slow)
    assert alert.outcome == "delivered by email"
    [failure] = [e for e in notifier.events(slow) if isinstance(e, Notification.AttemptFailed)]
    assert failure.reason == "timeout (no answer within 2.0 s)"
    assert failure.retry_at is not None


@pytest.mark.parametrize(
    ("format", "expected"),
    [
        ("slack", {"text": "<@U0123> Case 1234"}),
        ("line", {"to": "U0123", "messages": [{"type": "text", "text": "Case 1234"}]}),
        ("wechat", {"msgtype": "text", "text": {"content": "Case 1234", "mentioned_mobile_list": ["U0123"]}}),
        (
            "json",
            {
                "delivery_id": "00000000-0000-0000-0000-000000000001",
                "to": "U0123",
                "subject": "s",
                "text": "Case 1234",
            },
        ),
    ],
)
async def test_each_chat_tool_gets_the_body_it_expects_with_the_idempotency_key(
    endpoint: tuple[str, Endpoint], format: str, expected: dict[str, Any]
) -> None:
    url, hook = endpoint
    key = uuid4()
    channel = WebhookChannel(HttpChannel(url + "/hook", {"Authorization": "Bearer secret"}, 5), format)
    await channel.send(Message(UUID(int=1), key, UUID(int=2), "sv-003", "U0123", "s", "Case 1234"))
    [request] = hook.requests
    assert request.body == expected
    assert request.headers["Idempotency-Key"] == request.headers["X-Line-Retry-Key"] == str(key)
    assert request.headers["Authorization"] == "Bearer secret"


def test_the_shipped_channels_need_no_account_and_a_missing_secret_is_named(settings: Settings) -> None:
    config = load_channels(settings.channels_path)
    assert {channel.kind for channel in config.channels.values()} == {"file"}
    assert set(open_channels(config, settings, {})) == {"email", "sms"}
    path = settings.data_dir / "channels.toml"
    path.write_text(webhook_channel("http://x") + 'token_env = "TEST_HOOK_TOKEN"\n', encoding="utf-8")
    with pytest.raises(ChannelError, match=r"\$TEST_HOOK_TOKEN, which is not set"):
        open_channels(load_channels(path), settings, {})
    path.write_text('[channels.sms]\nkind = "sms"\nurl = "http://x"\nbody = { to = "{phone}" }\n')
    with pytest.raises(ChannelError, match=r"body.to: only \{to\}, \{text\} and \{delivery_id\}"):
        load_channels(path)
