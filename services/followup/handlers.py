"""What followup does with the record and with its timers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from eventsourcing.persistence import Tracking

from services.followup.application import FollowupApplication
from shared.bus import RECORD_STREAM, Subscription, timer_subscription
from shared.consumer import Consumer
from shared.directory import Directory
from shared.events import CaseClosed, ComplaintReceived, EscalationStarted, FirstResponseRecorded, decoder
from shared.live_file import LiveFile
from shared.policy import Policy
from shared.timers import DEFAULT_CLOCK_SKEW, Timer, now, on_time

CASE_EVENTS = Subscription(
    RECORD_STREAM,
    "followup",
    [
        "events.intake.ComplaintReceived",  # who the complaint concerns: who may see its callbacks
        "events.escalation.EscalationStarted",
        "events.escalation.FirstResponseRecorded",
        "events.escalation.CaseClosed",
    ],
)
TIMER_FIRED = timer_subscription("followup")
SUBSCRIPTIONS = [CASE_EVENTS, TIMER_FIRED]


def consumers(
    store: FollowupApplication,
    policy: Policy,
    directory: LiveFile[Directory],
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
) -> list[Consumer[Any]]:
    def when_a_case_opens_responds_or_closes_schedule_a_callback(case: Any, tracking: Tracking) -> None:
        if isinstance(case, ComplaintReceived):
            store.hear_complaint(case, tracking)
        elif isinstance(case, EscalationStarted):
            store.follow_case(case, tracking)
        elif isinstance(case, FirstResponseRecorded) and case.patient_reached:
            store.schedule(
                case.complaint_id, "after_first_response", case.occurred_at, case.event_id, policy,
                directory.current, tracking,
            )  # fmt: skip
        elif isinstance(case, CaseClosed):
            store.schedule(
                case.complaint_id,
                "after_closure",
                case.occurred_at,
                case.event_id,
                policy,
                directory.current,
                tracking,
            )
        else:
            store.record(tracking=tracking)  # a first response that did not reach the patient

    def when_a_timer_fires_the_callback_falls_due_or_is_overdue(timer: Timer, tracking: Tracking) -> None:
        store.timer_fired(timer, now(), tracking)

    return [
        Consumer(
            CASE_EVENTS,
            decoder(ComplaintReceived, EscalationStarted, FirstResponseRecorded, CaseClosed),
            when_a_case_opens_responds_or_closes_schedule_a_callback,
        ),
        Consumer(
            TIMER_FIRED,
            Timer.decode,
            on_time(when_a_timer_fires_the_callback_falls_due_or_is_overdue, clock_skew),
        ),
    ]
