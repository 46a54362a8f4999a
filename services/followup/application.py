"""Followup's store: the cases it follows and their callback visits."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Tracking

from services.followup.access import ComplaintScope
from services.followup.domain import Callback, FollowedCase
from services.followup.listing import (
    SCHEDULED,
    CallbacksIndexed,
    ComplaintCallbacks,
    OpenCallbacks,
    notifications_of,
)
from shared.contracts import FOLLOWUP
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
from shared.messages import Happened, Publish, Publishes
from shared.policy import Policy
from shared.reference import indexed
from shared.store import ATTEMPTS_ON_CONFLICT, ServiceApplication, stable_id
from shared.timers import Timer

Result = TypeVar("Result")

CALLBACK_RULE = "callback"
OVERDUE_RULE = "overdue"


def callback_id_for(complaint_id: UUID, purpose: CallbackPurpose, cause: object) -> UUID:
    """The same for the same cause (an event on the record, a discharge), so none is scheduled twice."""
    return stable_id("callback", complaint_id, purpose, cause)


def scope_id_for(complaint_id: UUID) -> UUID:
    return stable_id("scope", complaint_id)


def of_callback(event: Happened) -> dict[str, Any]:
    """An event of a callback after it was scheduled: its id, and when it happened."""
    return {"callback_id": event.originator_id, "occurred_at": event.at}


PUBLISHES = Publishes(
    FOLLOWUP,
    Publish(
        Callback.Scheduled,
        CallbackScheduled,
        lambda scheduled: {"callback_id": scheduled.originator_id, "occurred_at": scheduled.timestamp},
    ),
    Publish(Callback.Rescheduled, CallbackScheduled, of_callback),
    Publish(
        Callback.FellDue,
        CallbackDue,
        lambda fell_due: {"callback_id": fell_due.originator_id, "occurred_at": fell_due.due_at},
    ),
    Publish(Callback.Attempted, CallbackAttempted, of_callback),
    Publish(Callback.Completed, CallbackCompleted, of_callback),
    Publish(Callback.ReopenRequested, CaseReopenRequested, of_callback),
    Publish(Callback.Abandoned, CallbackAbandoned, of_callback),
    Publish(Callback.BecameOverdue, CallbackOverdue, of_callback),
)


class FollowupApplication(ServiceApplication):
    service = "followup"
    publishes = PUBLISHES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open_callbacks = OpenCallbacks(lambda: self.process_recorder)

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
        """The callback for that cause: scheduled now, or as it was the first time; listed in its
        complaint's index in the same transaction. The consumer and a discharge registered over the API
        can meet on that index: the loser tries again on the new state."""
        callback_id = callback_id_for(complaint_id, purpose, cause)
        for attempt in range(ATTEMPTS_ON_CONFLICT):
            callback = self.get_callback(callback_id)
            if callback is not None:
                if tracking is not None:
                    self.record(tracking=tracking)
                return callback
            callback = Callback.schedule(
                callback_id,
                complaint_id,
                purpose,
                anchor,
                policy.followup,
                policy.escalation.calendar,
                directory,
            )
            index = self.callback_index(complaint_id) or ComplaintCallbacks(complaint_id=complaint_id)
            index.add(callback_id)
            try:
                self.record(callback, index, tracking=tracking)
            except IntegrityError:
                if attempt == ATTEMPTS_ON_CONFLICT - 1:
                    raise
                continue
            return callback
        raise AssertionError("unreachable")

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
        """Every callback, in the order they were scheduled: the whole log (for closed ones asked for)."""
        return [
            self.repository.get(callback_id)
            for _, _, callback_id in notifications_of(self.process_recorder, 1, [SCHEDULED])
        ]

    def open_callback_list(self) -> list[Callback]:
        """The callbacks still open, in the order they were scheduled (one closed meanwhile shows as it
        is now)."""
        return [self.repository.get(callback_id) for callback_id in self.open_callbacks.ids()]

    def callback_index(self, complaint_id: UUID) -> ComplaintCallbacks | None:
        return self.find(ComplaintCallbacks, ComplaintCallbacks.create_id(complaint_id))

    def callbacks_of(self, complaint_id: UUID) -> list[Callback]:
        """One complaint's callbacks, in the order they were scheduled, from its index."""
        index = self.callback_index(complaint_id)
        return (
            [] if index is None else [self.repository.get(callback_id) for callback_id in index.callback_ids]
        )

    def index_earlier_callbacks(self) -> None:
        """Once per store, before anything else writes to it: list the callbacks scheduled before
        complaints had an index in their complaints' indexes (a store from before reads its log once)."""
        if self.find(CallbacksIndexed, CallbacksIndexed.ID) is not None:
            return
        indexes: dict[UUID, ComplaintCallbacks] = {}
        for callback in self.callbacks():
            complaint_id = callback.complaint_id
            if complaint_id not in indexes:
                indexes[complaint_id] = self.callback_index(complaint_id) or ComplaintCallbacks(
                    complaint_id=complaint_id
                )
            if callback.id not in indexes[complaint_id].callback_ids:
                indexes[complaint_id].add(callback.id)
        self.record(*indexes.values(), CallbacksIndexed())

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
