"""What escalation does with the record."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import Tracking

from services.escalation.application import EscalationApplication
from shared.bus import RECORD_STREAM, Subscription
from shared.consumer import Consumer
from shared.directory import Directory
from shared.events import ComplaintReceived, decoder
from shared.policy import Policy
from shared.timers import now

SUBSCRIPTIONS = [Subscription(RECORD_STREAM, "escalation", ["events.intake.ComplaintReceived"])]


def consumers(store: EscalationApplication, policy: Policy, directory: Directory) -> list[Consumer[Any]]:
    def when_complaint_received_open_case(complaint: Any, tracking: Tracking) -> None:
        assert isinstance(complaint, ComplaintReceived)
        store.open_case(complaint, policy, directory, now(), tracking)

    return [Consumer(SUBSCRIPTIONS[0], decoder(ComplaintReceived), when_complaint_received_open_case)]
