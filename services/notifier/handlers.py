"""What the notifier does with the record."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import Tracking

from services.notifier.application import NotifierApplication
from services.notifier.sink import FileSink
from shared.bus import RECORD_STREAM, Subscription
from shared.consumer import Consumer
from shared.directory import Directory
from shared.events import AlertRequested, ComplaintReceived, decoder
from shared.privacy import KeyVault
from shared.timers import now

SUBSCRIPTIONS = [
    Subscription(
        RECORD_STREAM, "notifier", ["events.intake.ComplaintReceived", "events.escalation.AlertRequested"]
    )
]


def consumers(
    store: NotifierApplication, directory: Directory, sink: FileSink, vault: KeyVault
) -> list[Consumer[Any]]:
    def send_what_the_record_asks_for(event: Any, tracking: Tracking) -> None:
        if isinstance(event, ComplaintReceived):
            patient = vault.open_patient_data(event.complaint_id, event.patient_data)
            store.send_receipt(event, patient, sink, now(), tracking)
        else:
            store.alert_staff(event, directory, sink, now(), tracking)

    return [
        Consumer(
            SUBSCRIPTIONS[0],
            decoder(ComplaintReceived, AlertRequested),
            send_what_the_record_asks_for,
        )
    ]
