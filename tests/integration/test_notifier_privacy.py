"""A complainant's contact reaches no log and no event, whatever a provider answers; the local channel's
files are owner-only, findable by kind, and erased with the complaint."""

from __future__ import annotations

import asyncio
import logging
import stat
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Tracking

from services.notifier.application import NotifierApplication
from services.notifier.domain import ERASED, Notification
from services.notifier.handlers import consumers
from services.notifier.sink import FileSink
from shared.bus import RECORD_STREAM
from shared.directory import Directory, watch_directory
from shared.events import ComplaintErased
from shared.policy import Policy
from shared.privacy import KeyVault
from shared.settings import Settings
from shared.timers import now
from tests.at_rest import store_files
from tests.factories import DATA_KEY, complaint_received
from tests.integration.notifier_harness import (  # noqa: F401 (fixtures)
    Notifier,
    endpoint_fixture,
    mail_fixture,
    running_fixture,
    smtp_channel,
    vault_fixture,
)
from tests.polling import eventually
from tests.providers import Endpoint, Mailbox

pytestmark = pytest.mark.integration

RETRIES = """
[delivery]
timeout_seconds = 10
attempts_per_channel = {attempts}
first_retry_seconds = 0.05
max_retry_seconds = 0.2
"""


async def receipt_for(notifier: Notifier, vault: KeyVault, policy: Policy, contact: str) -> UUID:
    """A complaint whose key is in the bucket, and its receipt owed to ``contact``."""
    complaint = complaint_received(name="Sato Hanako", contact=contact)
    await vault.put(complaint.complaint_id, vault.master.wrap(DATA_KEY))
    patient = await vault.open(complaint.complaint_id, complaint.patient_data)
    notifier.store.request_receipt(
        complaint, patient, policy, notifier.channels.keys(), now(), notifier.tracking()
    )
    return notifier.last_requested()


def wire_text(store: NotifierApplication) -> str:
    """Everything the notifier puts on the record (``EVENTS``), as it goes there."""
    wired = []
    for stored in store.process_recorder.select_notifications(1, 10_000):
        wire = store.wire_event(store.mapper.to_domain_event(stored))
        if wire is not None:
            wired.append(wire.model_dump_json())
    return "\n".join(wired)


def notifier_log(caplog: pytest.LogCaptureFixture) -> str:
    """What the notifier's process logged, at every level: not the test's SMTP server (``mail.log``)."""
    return "\n".join(
        f"{record.name} {record.getMessage()} {record.exc_text or ''}"
        for record in caplog.records
        if not record.name.startswith("mail.log")
    )


def leaks(notifier: Notifier, caplog: pytest.LogCaptureFixture, forms: list[str]) -> list[str]:
    """Where any form of the contact was found (case ignored): the log, the record, the store's files."""
    places = {"log": notifier_log(caplog), "record": wire_text(notifier.store)}
    for path in store_files(notifier.settings.service_dir("notifier")):
        places[path.name] = path.read_bytes().decode(errors="replace")
    return [f"{form} in {place}" for place, text in places.items() for form in forms if form in text.lower()]


async def test_a_refusal_echoing_the_address_in_any_form_reaches_no_log_and_no_event(
    settings: Settings,
    policy: Policy,
    mail: tuple[int, Mailbox],
    running: Any,
    vault: KeyVault,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port, mailbox = mail
    address = "Sato.Hanako@example.org"
    mailbox.replies[address] = (
        "550 5.1.1 <SATO.HANAKO@EXAMPLE.ORG> (Sato Hanako <sato.hanako@example.org>) unknown; "
        "see https://mx.example/bounce?rcpt=sato.hanako%40example.org"
    )
    caplog.set_level(logging.DEBUG)
    notifier = Notifier(settings, RETRIES.format(attempts=3) + smtp_channel(port), {}, vault)
    delivery_id = await receipt_for(notifier, vault, policy, address)
    running(notifier)

    receipt = await notifier.until_done(delivery_id)
    [failed] = [e for e in notifier.events(delivery_id) if isinstance(e, Notification.AttemptFailed)]
    assert (failed.reason, failed.permanent) == ("rejected_recipient (SMTP 550)", True)
    assert (
        receipt.outcome == "not delivered: every channel failed, the last one (email) with: " + failed.reason
    )
    assert "rejected_recipient (SMTP 550)" in notifier_log(caplog)  # the search sees what was logged
    assert leaks(notifier, caplog, ["sato.hanako", "sato hanako", "hanako%40"]) == []


async def test_an_http_error_body_naming_the_contact_reaches_no_log_and_no_event(
    settings: Settings,
    policy: Policy,
    endpoint: tuple[str, Endpoint],
    running: Any,
    vault: KeyVault,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, provider = endpoint
    provider.statuses = [503, 422]
    provider.reply = b'{"error": "number +81-90-5555-0142 (+81905550142, %2B81-90-5555-0142) is invalid"}'
    sms = f'[channels.sms]\nkind = "sms"\nurl = "{url}/send"\nbody = {{ to = "{{to}}", text = "{{text}}" }}\n'
    caplog.set_level(logging.DEBUG)
    notifier = Notifier(settings, RETRIES.format(attempts=3) + sms, {}, vault)
    delivery_id = await receipt_for(notifier, vault, policy, "+81-90-5555-0142")
    running(notifier)

    await notifier.until_done(delivery_id)
    assert [request.body["to"] for request in provider.requests] == ["+81-90-5555-0142"] * 2
    failed = [e for e in notifier.events(delivery_id) if isinstance(e, Notification.AttemptFailed)]
    assert [(e.reason, e.permanent) for e in failed] == [
        ("server_error (HTTP 503)", False),
        ("refused (HTTP 422)", True),
    ]
    assert "refused (HTTP 422)" in notifier_log(caplog)
    assert leaks(notifier, caplog, ["5555-0142", "905550142", "is invalid"]) == []


def sink_channels(directory: Path) -> str:
    return "".join(
        f'[channels.{name}]\nkind = "file"\ndirectory = "{directory}"\n' for name in ("email", "sms")
    )


async def test_the_sink_writes_owner_only_files_named_by_kind_and_erasure_removes_the_receipt(
    settings: Settings,
    policy: Policy,
    directory: Directory,
    running: Any,
    vault: KeyVault,
    tmp_path: Path,
) -> None:
    sink_dir = tmp_path / "sink"
    sink_dir.mkdir(mode=0o755)  # as an earlier version left it
    notifier = Notifier(settings, RETRIES.format(attempts=3) + sink_channels(sink_dir), {}, vault)
    receipt_id = await receipt_for(notifier, vault, policy, "+81-90-5555-0142")
    alert_id = notifier.alert(directory, "sv-003")
    running(notifier)
    await notifier.until_done(receipt_id)
    await notifier.until_done(alert_id)

    [receipt_file] = sink_dir.glob("receipt-*.json")
    [alert_file] = sink_dir.glob("alert-sv-003-*.json")
    assert receipt_file.name.endswith(f"-{receipt_id}.json")
    assert "+81-90-5555-0142" in receipt_file.read_text()  # the message that was "sent"
    assert stat.S_IMODE(sink_dir.stat().st_mode) == 0o700
    assert {stat.S_IMODE(path.stat().st_mode) for path in (receipt_file, alert_file)} == {0o600}
    for name in (receipt_file.name, alert_file.name):
        assert "5555" not in name
        assert "Sato" not in name

    receipt = notifier.store.get_notification(receipt_id)
    assert receipt is not None
    sinks = [channel for channel in notifier.channels.values() if isinstance(channel, FileSink)]
    [consumer] = consumers(
        notifier.store,
        policy,
        watch_directory(settings.directory_path),
        notifier.channels.keys(),
        str,
        vault,
        sinks,
    )
    erased = erasure(receipt.complaint_id)
    await asyncio.to_thread(consumer.handle, erased, Tracking(RECORD_STREAM, 1000))

    assert list(sink_dir.glob("receipt-*.json")) == []
    assert list(sink_dir.glob("alert-*.json")) == [alert_file]  # an alert says nothing of the patient


async def test_erasure_gives_up_a_pending_receipt(
    settings: Settings, policy: Policy, directory: Directory, endpoint: tuple[str, Endpoint], vault: KeyVault
) -> None:
    url, _ = endpoint
    hook = f'[channels.email]\nkind = "webhook"\nurl = "{url}/hook"\n'
    notifier = Notifier(settings, RETRIES.format(attempts=3) + hook, {}, vault)
    receipt_id = await receipt_for(notifier, vault, policy, "sato@example.org")
    receipt = notifier.store.get_notification(receipt_id)
    assert receipt is not None
    assert receipt.pending

    [consumer] = consumers(
        notifier.store, policy, watch_directory(settings.directory_path), notifier.channels.keys(), str, vault
    )
    erased = erasure(receipt.complaint_id)
    await asyncio.to_thread(consumer.handle, erased, Tracking(RECORD_STREAM, 1000))

    given_up = notifier.store.get_notification(receipt_id)
    assert given_up is not None
    assert given_up.outcome == f"not delivered: {ERASED}"
    assert notifier.store.has_processed(Tracking(RECORD_STREAM, 1000))
    assert "ComplainantNotAcknowledged" in wire_text(notifier.store)


async def test_a_receipt_retried_when_its_key_is_destroyed_is_given_up_without_another_attempt(
    settings: Settings, policy: Policy, endpoint: tuple[str, Endpoint], running: Any, vault: KeyVault
) -> None:
    url, provider = endpoint
    provider.statuses = [503] * 1000
    hook = f'[channels.email]\nkind = "webhook"\nurl = "{url}/hook"\n'
    notifier = Notifier(settings, RETRIES.format(attempts=1000) + hook, {}, vault)
    receipt_id = await receipt_for(notifier, vault, policy, "sato@example.org")
    running(notifier)

    async def retried() -> bool:
        return len(provider.requests) >= 2

    await eventually(retried, what="the receipt retried")
    receipt = notifier.store.get_notification(receipt_id)
    assert receipt is not None
    await vault.destroy(receipt.complaint_id)
    given_up = await notifier.until_done(receipt_id)

    assert given_up.outcome == f"not delivered: {ERASED}"
    events = notifier.events(receipt_id)
    # Every attempt recorded was made: none is recorded once the contact can no longer be opened.
    assert sum(isinstance(e, Notification.AttemptStarted) for e in events) == len(provider.requests)


def erasure(complaint_id: UUID) -> ComplaintErased:
    moment = now()
    return ComplaintErased(
        event_id=uuid4(), complaint_id=complaint_id, occurred_at=moment, recorded_at=moment, by="dm-001"
    )
