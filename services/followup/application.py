"""Followup's store: the cases it follows and their callback visits."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Tracking
from eventsourcing.utils import get_topic

from services.followup.access import ComplaintScope
from services.followup.domain import Callback, FollowedCase
from shared.directory import Directory
from shared.events import (
    CallbackAbandoned,
    CallbackAttempted,
    CallbackCompleted,
    CallbackDue,
    CallbackOverdue,
    CallbackPurpose,
    CallbackScheduled,
    CaseReopenRequested,
    ComplaintReceived,
    EscalationStarted,
    WireEvent,
)
from shared.policy import Policy
from shared.reference import indexed
from shared.store import ServiceApplication, stable_id
from shared.timers import Timer

Result = TypeVar("Result")

CALLBACK_RULE = "callback"
OVERDUE_RULE = "overdue"
PAGE = 500

ON_THE_RECORD: dict[type[Callback.Event], type[WireEvent]] = {
    Callback.Rescheduled: CallbackScheduled,
    Callback.Attempted: CallbackAttempted,
    Callback.Completed: CallbackCompleted,
    Callback.ReopenRequested: CaseReopenRequested,
    Callback.Abandoned: CallbackAbandoned,
    Callback.BecameOverdue: CallbackOverdue,
}


def callback_id_for(complaint_id: UUID, purpose: CallbackPurpose, cause: object) -> UUID:
    """The same for the same cause (an event on the record, a discharge), so none is scheduled twice."""
    return stable_id("callback", complaint_id, purpose, cause)


def scope_id_for(complaint_id: UUID) -> UUID:
    return stable_id("scope", complaint_id)


class FollowupApplication(ServiceApplication):
    service = "followup"

    def hear_complaint(self, complaint: ComplaintReceived, tracking: Tracking) -> None:
        """Who the complaint concerns, kept once (a complaint is received once; a replay finds it kept)."""
        scope_id = scope_id_for(complaint.complaint_id)
        if self.find(ComplaintScope, scope_id) is not None:
            self.record(tracking=tracking)
            return
        scope = ComplaintScope(
            id=scope_id,
            complaint_id=complaint.complaint_id,
            heard_by=complaint.heard_by,
            department=complaint.department,
        )
        self.record(scope, tracking=tracking)

    def scope_of(self, complaint_id: UUID) -> ComplaintScope | None:
        """None for a complaint received before followup learnt who complaints concern."""
        return self.find(ComplaintScope, scope_id_for(complaint_id))

    def follow_case(self, case: EscalationStarted, tracking: Tracking) -> None:
        followed = FollowedCase(id=case.complaint_id, opened_at=case.occurred_at)
        self.record(followed, indexed(self, case.complaint_id), tracking=tracking)

    def schedule(
        self,
        complaint_id: UUID,
        purpose: CallbackPurpose,
        anchor: datetime,
        cause: object,
        policy: Policy,
        directory: Directory,
        tracking: Tracking | None = None,
    ) -> Callback:
        """The callback for that cause: scheduled now, or as it was the first time."""
        callback_id = callback_id_for(complaint_id, purpose, cause)
        callback = self.get_callback(callback_id)
        if callback is None:
            callback = Callback.schedule(
                callback_id,
                complaint_id,
                purpose,
                anchor,
                policy.followup,
                policy.escalation.calendar,
                directory,
            )
            self.record(callback, tracking=tracking)
        elif tracking is not None:
            self.record(tracking=tracking)
        return callback

    def register_discharge(
        self, complaint_id: UUID, discharged_at: datetime, policy: Policy, directory: Directory
    ) -> Callback | None:
        """The follow-up call to a discharged patient; None when followup knows no such case."""
        if self.followed_case(complaint_id) is None:
            return None
        discharge = discharged_at.astimezone(UTC).isoformat()
        return self.schedule(complaint_id, "after_discharge", discharged_at, discharge, policy, directory)

    def followed_case(self, complaint_id: UUID) -> FollowedCase | None:
        """The case escalation opened, once followup has seen it open."""
        return self.find(FollowedCase, complaint_id)

    def timer_fired(self, timer: Timer, now: datetime, tracking: Tracking) -> None:
        """A fire for an attempt already made, or for a callback already done, changes nothing."""
        callback = self.get_callback(timer.aggregate_id)
        if callback is not None and timer.rule == CALLBACK_RULE and callback.is_awaiting(timer.attempt):
            callback.fall_due()
        elif callback is not None and timer.rule == OVERDUE_RULE:
            callback.deadline_passed(now)
        if callback is None:
            self.record(tracking=tracking)
        else:
            self.record(callback, tracking=tracking)

    def act(self, callback_id: UUID, action: Callable[[Callback], Result]) -> Result | None:
        """Apply a person's action to a callback and store it; None when there is no such callback."""
        return self.act_on(Callback, callback_id, action)

    def get_callback(self, callback_id: UUID) -> Callback | None:
        return self.find(Callback, callback_id)

    def callbacks(self) -> list[Callback]:
        """Every callback, in the order they were scheduled."""
        topic = get_topic(Callback.Scheduled)
        found: list[Callback] = []
        start = 1
        while page := self.process_recorder.select_notifications(start, PAGE, topics=[topic]):
            found += [self.repository.get(UUID(str(notification.originator_id))) for notification in page]
            start = page[-1].id + 1
        return found

    def wire_event(self, domain_event: DomainEventProtocol[UUID]) -> WireEvent | None:
        if not isinstance(domain_event, Callback.Event):
            return super().wire_event(domain_event)
        given: dict[str, Any] = {"callback_id": domain_event.originator_id}
        if isinstance(domain_event, Callback.Scheduled):
            return self.copied_to_wire(
                CallbackScheduled, domain_event, occurred_at=domain_event.timestamp, **given
            )
        if isinstance(domain_event, Callback.FellDue):
            return self.copied_to_wire(CallbackDue, domain_event, occurred_at=domain_event.due_at, **given)
        wire_class = ON_THE_RECORD[type(domain_event)]
        occurred_at = domain_event.at  # type: ignore[attr-defined]  # every event in the table has it
        return self.copied_to_wire(wire_class, domain_event, occurred_at=occurred_at, **given)

    def timers_for(self, wire_event: WireEvent) -> list[Timer]:
        """Each attempt's due time, and for the first one the deadline after which it is overdue."""
        if not isinstance(wire_event, CallbackScheduled):
            return []
        due = Timer(
            rule=CALLBACK_RULE,
            aggregate_id=wire_event.callback_id,
            attempt=wire_event.attempt,
            due_at=wire_event.due_at,
        )
        if wire_event.attempt > 1:
            return [due]
        overdue = Timer(
            rule=OVERDUE_RULE, aggregate_id=wire_event.callback_id, attempt=1, due_at=wire_event.complete_by
        )
        return [due, overdue]
