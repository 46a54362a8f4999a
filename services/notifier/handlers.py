"""What the notifier does with the record: it records what is owed; the dispatcher delivers it."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking

from services.notifier.application import NotifierApplication
from shared.bus import RECORD_STREAM, Subscription
from shared.consumer import Consumer
from shared.directory import Directory
from shared.events import AlertRequested, ComplaintReceived, decoder
from shared.live_file import LiveFile
from shared.policy import Policy
from shared.privacy import KeyVault
from shared.timers import now

SUBSCRIPTIONS = [
    Subscription(
        RECORD_STREAM, "notifier", ["events.intake.ComplaintReceived", "events.escalation.AlertRequested"]
    )
]


def consumers(
    store: NotifierApplication,
    policy: Policy,
    directory: LiveFile[Directory],
    configured: Collection[str],
    acknowledge_link: Callable[[UUID], str],
    vault: KeyVault,
) -> list[Consumer[Any]]:
    def when_the_record_asks_owe_a_receipt_or_an_alert(event: Any, tracking: Tracking) -> None:
        if isinstance(event, ComplaintReceived):
            patient = vault.open_patient_data(event.complaint_id, event.patient_data)
            store.request_receipt(event, patient, policy, configured, now(), tracking)
        else:
            store.request_alert(event, directory.current, configured, acknowledge_link, now(), tracking)

    return [
        Consumer(
            SUBSCRIPTIONS[0],
            decoder(ComplaintReceived, AlertRequested),
            when_the_record_asks_owe_a_receipt_or_an_alert,
        )
    ]
