"""What followup does with the record and with its timers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from eventsourcing.persistence import Tracking

from services.followup.application import FollowupApplication
from shared.consumer import Consumer
from shared.contracts import FOLLOWUP
from shared.directory import Directory
from shared.events import CaseClosed, ComplaintReceived, EscalationStarted, FirstResponseRecorded
from shared.live_file import LiveFile
from shared.messages import Handles, On
from shared.policy import Policy
from shared.timers import DEFAULT_CLOCK_SKEW, Timer, now, on_time


def consumers(
    store: FollowupApplication,
    policy: Policy,
    directory: LiveFile[Directory],
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
) -> list[Consumer[Any]]:
    def when_the_patient_was_reached_schedule_a_callback(
        response: FirstResponseRecorded, tracking: Tracking
    ) -> None:
        if not response.patient_reached:
            store.record(tracking=tracking)
            return
        store.schedule(
            response.complaint_id, "after_first_response", response.occurred_at, response.event_id, policy,
            directory.current, tracking,
        )  # fmt: skip

    def when_a_case_closes_schedule_a_callback(closed: CaseClosed, tracking: Tracking) -> None:
        store.schedule(
            closed.complaint_id, "after_closure", closed.occurred_at, closed.event_id, policy,
            directory.current, tracking,
        )  # fmt: skip

    def when_a_timer_fires_the_callback_falls_due_or_is_overdue(timer: Timer, tracking: Tracking) -> None:
        store.timer_fired(timer, now(), tracking)

    return Handles(
        FOLLOWUP,
        On(ComplaintReceived, store.hear_complaint),
        On(EscalationStarted, store.follow_case),
        On(FirstResponseRecorded, when_the_patient_was_reached_schedule_a_callback),
        On(CaseClosed, when_a_case_closes_schedule_a_callback),
        timer_fired=on_time(when_a_timer_fires_the_callback_falls_due_or_is_overdue, clock_skew),
    ).consumers()
