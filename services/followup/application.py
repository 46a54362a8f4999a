"""Followup's store: the callback visits."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Tracking

from services.followup.domain import Callback, first_callback_due
from shared.events import CallbackDue, CallbackScheduled, EscalationStarted, WireEvent
from shared.store import ServiceApplication, stable_id
from shared.timers import Timer

CALLBACK_RULE = "callback"


def callback_id_for(complaint_id: UUID) -> UUID:
    return stable_id("callback", complaint_id, "after-case-opened")


class FollowupApplication(ServiceApplication):
    service = "followup"

    def schedule_first_callback(self, case: EscalationStarted, delay: timedelta, tracking: Tracking) -> None:
        callback = Callback(
            id=callback_id_for(case.complaint_id),
            complaint_id=case.complaint_id,
            due_at=first_callback_due(case.occurred_at, delay),
            attempt=1,
        )
        self.record(callback, tracking=tracking)

    def timer_fired(self, timer: Timer, tracking: Tracking) -> None:
        callback = self.get_callback(timer.aggregate_id)
        if callback is not None and callback.is_awaiting(timer.attempt):
            callback.fall_due()
            self.record(callback, tracking=tracking)
        else:
            self.record(tracking=tracking)  # a fire for work already done: only remember it was seen

    def get_callback(self, callback_id: UUID) -> Callback | None:
        return self.find(Callback, callback_id)

    def wire_event(self, domain_event: DomainEventProtocol[UUID]) -> WireEvent | None:
        if isinstance(domain_event, Callback.Scheduled):
            return CallbackScheduled(
                **self.wire_fields(domain_event),
                complaint_id=domain_event.complaint_id,
                occurred_at=domain_event.timestamp,
                callback_id=domain_event.originator_id,
                due_at=domain_event.due_at,
                attempt=domain_event.attempt,
            )
        if isinstance(domain_event, Callback.FellDue):
            return CallbackDue(
                **self.wire_fields(domain_event),
                complaint_id=domain_event.complaint_id,
                occurred_at=domain_event.due_at,
                callback_id=domain_event.originator_id,
                attempt=domain_event.attempt,
            )
        return super().wire_event(domain_event)

    def timers_for(self, wire_event: WireEvent) -> list[Timer]:
        if isinstance(wire_event, CallbackScheduled):
            return [
                Timer(
                    rule=CALLBACK_RULE,
                    aggregate_id=wire_event.callback_id,
                    attempt=wire_event.attempt,
                    due_at=wire_event.due_at,
                )
            ]
        return []
