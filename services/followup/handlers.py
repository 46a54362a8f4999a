"""What followup does with the record and with its timers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from eventsourcing.persistence import Tracking

from services.followup.application import FollowupApplication
from shared.bus import RECORD_STREAM, TIMER_STREAM, Subscription, due_subject
from shared.consumer import Consumer
from shared.events import EscalationStarted, decoder
from shared.policy import Policy
from shared.timers import Timer

CASE_OPENED = Subscription(RECORD_STREAM, "followup", ["events.escalation.EscalationStarted"])
TIMER_FIRED = Subscription(TIMER_STREAM, "followup", [due_subject("followup", ">")])
SUBSCRIPTIONS = [CASE_OPENED, TIMER_FIRED]


def consumers(store: FollowupApplication, policy: Policy) -> list[Consumer[Any]]:
    delay = timedelta(seconds=policy.followup.callback_delay_seconds)

    def when_case_opened_schedule_callback(case: Any, tracking: Tracking) -> None:
        assert isinstance(case, EscalationStarted)
        store.schedule_first_callback(case, delay, tracking)

    return [
        Consumer(CASE_OPENED, decoder(EscalationStarted), when_case_opened_schedule_callback),
        Consumer(TIMER_FIRED, Timer.decode, store.timer_fired),
    ]
