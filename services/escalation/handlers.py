"""What escalation does with the record and with its timers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from eventsourcing.persistence import Tracking

from services.escalation.application import EscalationApplication
from shared.bus import RECORD_STREAM, Subscription, timer_subscription
from shared.consumer import Consumer
from shared.directory import Directory
from shared.events import (
    CallbackCompleted,
    CaseReopenRequested,
    ComplaintReceived,
    NotificationAcknowledged,
    decoder,
)
from shared.live_file import LiveFile
from shared.policy import Policy
from shared.privacy import KeyVault
from shared.timers import DEFAULT_CLOCK_SKEW, Timer, now, on_time

FROM_THE_RECORD = Subscription(
    RECORD_STREAM,
    "escalation",
    [
        "events.intake.ComplaintReceived",
        "events.followup.CallbackCompleted",
        "events.followup.CaseReopenRequested",
        "events.notifier.NotificationAcknowledged",
    ],
)
TIMER_FIRED = timer_subscription("escalation")
SUBSCRIPTIONS = [FROM_THE_RECORD, TIMER_FIRED]


def consumers(
    store: EscalationApplication,
    policy: Policy,
    directory: LiveFile[Directory],
    vault: KeyVault,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
) -> list[Consumer[Any]]:
    def when_complaint_received_open_case_when_callback_done_close_the_loop(
        event: Any, tracking: Tracking
    ) -> None:
        if isinstance(event, ComplaintReceived):
            # The text is read to classify the complaint, then forgotten: the case never keeps it.
            patient = vault.open_patient_data(event.complaint_id, event.patient_data)
            summary = patient.summary if patient is not None else ""  # erased before the case opened
            store.open_case(event, summary, policy, directory.current, now(), tracking)
        elif isinstance(event, CallbackCompleted):
            store.callback_completed(event, tracking)
        elif isinstance(event, NotificationAcknowledged):
            store.acknowledged_through_link(event, tracking)
        else:
            store.reopen_case(event, policy, tracking)

    def when_a_timer_fires_chase_or_close_the_deadline(timer: Timer, tracking: Tracking) -> None:
        store.timer_fired(timer, now(), tracking)

    return [
        Consumer(
            FROM_THE_RECORD,
            decoder(ComplaintReceived, CallbackCompleted, CaseReopenRequested, NotificationAcknowledged),
            when_complaint_received_open_case_when_callback_done_close_the_loop,
        ),
        Consumer(
            TIMER_FIRED, Timer.decode, on_time(when_a_timer_fires_chase_or_close_the_deadline, clock_skew)
        ),
    ]
