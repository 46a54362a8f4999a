"""What the notifier does with the record."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import Tracking

from services.notifier.application import NotifierApplication
from services.notifier.sink import FileSink
from shared.bus import RECORD_STREAM, Subscription
from shared.consumer import Consumer
from shared.events import ComplaintReceived, decoder
from shared.timers import now

SUBSCRIPTIONS = [Subscription(RECORD_STREAM, "notifier", ["events.intake.ComplaintReceived"])]


def consumers(store: NotifierApplication, sink: FileSink) -> list[Consumer[Any]]:
    def when_complaint_received_send_receipt(complaint: Any, tracking: Tracking) -> None:
        assert isinstance(complaint, ComplaintReceived)
        store.send_receipt(complaint, sink, now(), tracking)

    return [Consumer(SUBSCRIPTIONS[0], decoder(ComplaintReceived), when_complaint_received_send_receipt)]
