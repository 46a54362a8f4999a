"""What escalation does with the record and with its timers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from eventsourcing.persistence import Tracking

from services.escalation.application import EscalationApplication
from shared.consumer import Consumer
from shared.contracts import ESCALATION
from shared.directory import Directory
from shared.events import CallbackCompleted, CaseReopenRequested, ComplaintReceived, NotificationAcknowledged
from shared.live_file import LiveFile
from shared.messages import Handles, On
from shared.policy import Policy
from shared.privacy import KeyVault
from shared.timers import DEFAULT_CLOCK_SKEW, Timer, now, on_time


def consumers(
    store: EscalationApplication,
    policy: Policy,
    directory: LiveFile[Directory],
    vault: KeyVault,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
) -> list[Consumer[Any]]:
    def when_complaint_received_open_a_case(complaint: ComplaintReceived, tracking: Tracking) -> None:
        # The text is read to classify the complaint, then forgotten: the case never keeps it.
        patient = vault.open_patient_data(complaint.complaint_id, complaint.patient_data)
        summary = patient.summary if patient is not None else ""  # erased before the case opened
        store.open_case(complaint, summary, policy, directory.current, now(), tracking)

    def when_a_reopening_is_requested_reopen_the_case(
        request: CaseReopenRequested, tracking: Tracking
    ) -> None:
        store.reopen_case(request, policy, tracking)

    def when_a_timer_fires_chase_or_close_the_deadline(timer: Timer, tracking: Tracking) -> None:
        store.timer_fired(timer, now(), tracking)

    return Handles(
        ESCALATION,
        On(ComplaintReceived, when_complaint_received_open_a_case),
        # When a callback is done, close the loop.
        On(CallbackCompleted, store.callback_completed),
        On(CaseReopenRequested, when_a_reopening_is_requested_reopen_the_case),
        On(NotificationAcknowledged, store.acknowledged_through_link),
        timer_fired=on_time(when_a_timer_fires_chase_or_close_the_deadline, clock_skew),
        opening_with=vault,
    ).consumers()
