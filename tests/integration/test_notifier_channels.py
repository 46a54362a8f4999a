"""Receipts and alerts delivered through real providers in the test process: an SMTP server and HTTP
endpoints, answering as told (refusals, 5xx, 4xx, no answer)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from kizuki.processes import free_port
from services.notifier.channels import ChannelError, Message, load_channels
from services.notifier.domain import Notification, receipt_text
from services.notifier.main import open_channels
from services.notifier.webhooks import HttpChannel, WebhookChannel
from shared.calendar import due_at
from shared.directory import Directory
from shared.policy import Policy
from shared.privacy import KeyVault
from shared.reference import reference_of
from shared.settings import Settings
from shared.timers import now
from tests.at_rest import store_holds
from tests.factories import DATA_KEY, complaint_received
from tests.integration.notifier_harness import (  # noqa: F401 (fixtures)
    FAST_RETRIES,
    Notifier,
    endpoint_fixture,
    mail_fixture,
    running_fixture,
    smtp_channel,
    vault_fixture,
    webhook_channel,
)
from tests.polling import eventually
from tests.providers import Endpoint, Mailbox, self_signed_certificate, smtp_server

pytestmark = pytest.mark.integration


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
    # The notifier keeps the contact sealed, as it came: it is opened at each attempt. The search
    # sees what was just written (the receipt's reference, in clear), wherever SQLite keeps it.
    notifier_dir = settings.service_dir("notifier")
    assert store_holds(notifier_dir, reference_of(complaint.complaint_id).encode())
    assert not store_holds(notifier_dir, b"sato@example.org")
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
    path.write_text(webhook_channel("http://x") + "concurrency = 0\n", encoding="utf-8")
    with pytest.raises(ChannelError, match=r"channels.email.webhook.concurrency\s+Input should be greater"):
        load_channels(path)


def test_the_shipped_file_channels_take_more_attempts_at_once_than_a_provider(settings: Settings) -> None:
    """Writing a file again under the same name makes no second message, so an attempt in doubt costs
    nothing there; a provider's channel keeps the shipped cap, and its own when it names one."""
    config = load_channels(settings.channels_path)
    assert config.in_flight() == {"email": 32, "sms": 32}
    path = settings.data_dir / "channels.toml"
    path.write_text(
        "[delivery]\nconcurrency_per_channel = 4\n"
        + webhook_channel("http://x", "slack")
        + webhook_channel("http://y", "line")
        + "concurrency = 2\n",
        encoding="utf-8",
    )
    assert load_channels(path).in_flight() == {"slack": 4, "line": 2}


async def test_each_failure_is_recorded_as_its_class_with_the_status_code(
    settings: Settings, directory: Directory, endpoint: tuple[str, Endpoint], running: Any
) -> None:
    """HTTP 429 then 401, then an endpoint where nothing listens."""
    url, hook = endpoint
    hook.statuses = [429, 401]
    nothing_listens = f"http://127.0.0.1:{free_port()}/hook"
    channels = (
        FAST_RETRIES.format(timeout=10)
        + webhook_channel(url + "/hook", name="sms")
        + webhook_channel(nothing_listens, name="line")
    )
    notifier = Notifier(settings, channels, {})
    both = directory.staff["sv-003"].model_copy(
        update={"contacts": {"sms": "+81-90-0000-0003", "line": "U0123"}}
    )
    widened = directory.model_copy(update={"staff": directory.staff | {"sv-003": both}})
    running(notifier)
    delivery_id = notifier.alert(widened)

    alert = await notifier.until_done(delivery_id)
    failed = [e for e in notifier.events(delivery_id) if isinstance(e, Notification.AttemptFailed)]
    assert [(e.channel, e.reason, e.permanent) for e in failed] == [
        ("sms", "rate_limited (HTTP 429)", False),
        ("sms", "auth_failed (HTTP 401)", True),
        *[("line", "unreachable", False)] * 3,
    ]
    assert alert.outcome == "not delivered: every channel failed, the last one (line) with: unreachable"
