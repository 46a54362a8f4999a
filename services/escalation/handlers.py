"""What escalation does with the record and with its timers."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import Tracking

from services.escalation.application import EscalationApplication
from shared.bus import RECORD_STREAM, TIMER_STREAM, Subscription, due_subject
from shared.consumer import Consumer
from shared.directory import Directory
from shared.events import ComplaintReceived, decoder
from shared.policy import Policy
from shared.timers import Timer, now

COMPLAINT_RECEIVED = Subscription(RECORD_STREAM, "escalation", ["events.intake.ComplaintReceived"])
TIMER_FIRED = Subscription(TIMER_STREAM, "escalation", [due_subject("escalation", ">")])
SUBSCRIPTIONS = [COMPLAINT_RECEIVED, TIMER_FIRED]


def consumers(store: EscalationApplication, policy: Policy, directory: Directory) -> list[Consumer[Any]]:
    def when_complaint_received_open_case(complaint: Any, tracking: Tracking) -> None:
        assert isinstance(complaint, ComplaintReceived)
        store.open_case(complaint, policy, directory, now(), tracking)

    def when_a_timer_fires_chase_or_close_the_deadline(timer: Timer, tracking: Tracking) -> None:
        store.timer_fired(timer, now(), tracking)

    return [
        Consumer(COMPLAINT_RECEIVED, decoder(ComplaintReceived), when_complaint_received_open_case),
        Consumer(TIMER_FIRED, Timer.decode, when_a_timer_fires_chase_or_close_the_deadline),
    ]
