"""What the notifier does with the record: it records what is owed; the dispatcher delivers it."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking

from services.notifier.application import NotifierApplication
from services.notifier.sink import FileSink
from shared.bus import RECORD_STREAM, Subscription
from shared.consumer import Consumer
from shared.directory import Directory
from shared.events import AlertRequested, ComplaintErased, ComplaintReceived, decoder
from shared.live_file import LiveFile
from shared.policy import Policy
from shared.privacy import KeyVault
from shared.timers import now

SUBSCRIPTIONS = [
    Subscription(
        RECORD_STREAM,
        "notifier",
        [
            "events.intake.ComplaintReceived",
            "events.escalation.AlertRequested",
            "events.intake.ComplaintErased",
        ],
    )
]


def consumers(
    store: NotifierApplication,
    policy: Policy,
    directory: LiveFile[Directory],
    configured: Collection[str],
    acknowledge_link: Callable[[UUID], str],
    vault: KeyVault,
    sinks: Sequence[FileSink] = (),
) -> list[Consumer[Any]]:
    def when_the_record_asks_owe_a_receipt_or_an_alert(event: Any, tracking: Tracking) -> None:
        if isinstance(event, ComplaintReceived):
            patient = vault.open_patient_data(event.complaint_id, event.patient_data)
            store.request_receipt(event, patient, policy, configured, now(), tracking)
        elif isinstance(event, ComplaintErased):
            # The local channel's copies of the receipt go with the key: the record cannot be erased,
            # these files can. (Done again, harmlessly, if the message comes again.)
            for sink in sinks:
                sink.erase(event.complaint_id)
            store.complaint_erased(event.complaint_id, now(), tracking)
        else:
            store.request_alert(event, directory.current, configured, acknowledge_link, now(), tracking)

    return [
        Consumer(
            SUBSCRIPTIONS[0],
            decoder(ComplaintReceived, AlertRequested, ComplaintErased),
            when_the_record_asks_owe_a_receipt_or_an_alert,
        )
    ]
