"""Escalation's store: the cases, their duties and the chase."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Tracking

from services.escalation.domain import Case, ComplaintFacts, NotPermitted, NotPossible
from shared.directory import Directory
from shared.events import (
    AlertAcknowledged,
    AlertRequested,
    CallbackCompleted,
    CaseClosed,
    CaseReopened,
    CaseReopenRequested,
    ComplaintReceived,
    CorrectiveMeasureRecorded,
    DeadlinePassed,
    DutyAssigned,
    DutyFulfilled,
    DutyMissed,
    DutyReassigned,
    EscalationStarted,
    FirstResponseRecorded,
    HarassmentAssessed,
    NotificationAcknowledged,
    ReportFiled,
    WireEvent,
)
from shared.policy import Policy
from shared.reference import indexed
from shared.store import ServiceApplication
from shared.timers import Timer

Result = TypeVar("Result")
log = logging.getLogger(__name__)

ACTIONS_ON_THE_RECORD: dict[type[Case.Event], type[WireEvent]] = {
    Case.DutyReassigned: DutyReassigned,
    Case.AlertAcknowledged: AlertAcknowledged,
    Case.DutyFulfilled: DutyFulfilled,
    Case.DutyMissed: DutyMissed,
    Case.DeadlinePassed: DeadlinePassed,
    Case.ReportFiled: ReportFiled,
    Case.FirstResponseRecorded: FirstResponseRecorded,
    Case.HarassmentAssessed: HarassmentAssessed,
    Case.CorrectiveMeasureRecorded: CorrectiveMeasureRecorded,
    Case.Closed: CaseClosed,
    Case.Reopened: CaseReopened,
}

ALERT_RULE = "alert"
DEADLINE_RULE = "deadline"


class EscalationApplication(ServiceApplication):
    service = "escalation"

    def open_case(
        self,
        complaint: ComplaintReceived,
        summary: str,
        policy: Policy,
        directory: Directory,
        now: datetime,
        tracking: Tracking,
    ) -> None:
        facts = ComplaintFacts(
            complaint_id=complaint.complaint_id,
            occurred_at=complaint.occurred_at,
            registered_at=complaint.recorded_at,
            heard_by=complaint.heard_by,
            department=complaint.department,
            summary=summary,
            category=complaint.category,
            tier=complaint.tier,
        )
        case = Case.open(facts, now, policy.version, policy.escalation, directory)
        self.record(case, indexed(self, case.id), tracking=tracking)

    def callback_completed(self, callback: CallbackCompleted, tracking: Tracking) -> None:
        """A callback after the response fulfils the patient-feedback duty; other callbacks change nothing."""
        case = self.find(Case, callback.complaint_id)
        if case is not None and callback.purpose == "after_first_response":
            case.callback_completed(callback.by, callback.occurred_at)
        self.record(*filter(None, [case]), tracking=tracking)

    def acknowledged_through_link(self, acknowledged: NotificationAcknowledged, tracking: Tracking) -> None:
        """The alert's link is the acknowledgement of its duty by the person alerted; one that no longer
        applies (no such duty, the person out of its chain) changes nothing."""
        case = self.find(Case, acknowledged.complaint_id)
        if case is not None:
            try:
                case.acknowledge(acknowledged.duty, acknowledged.by, acknowledged.occurred_at)
            except (NotPermitted, NotPossible) as refusal:
                log.warning("acknowledgement %s changes nothing: %s", acknowledged.delivery_id, refusal)
        self.record(*filter(None, [case]), tracking=tracking)

    def reopen_case(self, request: CaseReopenRequested, policy: Policy, tracking: Tracking) -> None:
        case = self.find(Case, request.complaint_id)
        if case is not None:
            first_response = policy.escalation.duties["first_response"]
            case.reopen(request.callback_id, request.reason, request.occurred_at, first_response)
        self.record(*filter(None, [case]), tracking=tracking)

    def timer_fired(self, timer: Timer, now: datetime, tracking: Tracking) -> None:
        """A fire for a duty already done, or a fire seen before, changes nothing."""
        case = self.find(Case, timer.aggregate_id)
        if case is not None and timer.rule == ALERT_RULE:
            case.alert(timer.part, timer.attempt, now)
        elif case is not None and timer.rule == DEADLINE_RULE:
            case.deadline_reached(timer.part, timer.due_at, now)
        if case is None:
            self.record(tracking=tracking)
        else:
            self.record(case, tracking=tracking)

    def act(self, complaint_id: UUID, action: Callable[[Case], Result]) -> Result | None:
        """Apply a person's action to a case and store it; None when there is no such case."""
        return self.act_on(Case, complaint_id, action)

    def get_case(self, complaint_id: UUID) -> Case | None:
        return self.find(Case, complaint_id)

    def wire_event(self, domain_event: DomainEventProtocol[UUID]) -> WireEvent | None:
        if not isinstance(domain_event, Case.Event):
            return super().wire_event(domain_event)
        base: dict[str, Any] = {**self.wire_fields(domain_event), "complaint_id": domain_event.originator_id}
        if type(domain_event) in ACTIONS_ON_THE_RECORD:
            # What people did, and what deadlines did: field for field, the duty under its wire name.
            given: dict[str, Any] = {
                "complaint_id": domain_event.originator_id,
                "occurred_at": domain_event.at,  # type: ignore[attr-defined]  # every event in the table has it
            }
            if hasattr(domain_event, "kind"):
                given["duty"] = domain_event.kind
            return self.copied_to_wire(ACTIONS_ON_THE_RECORD[type(domain_event)], domain_event, **given)
        match domain_event:
            case Case.Started():
                return EscalationStarted(
                    **base,
                    occurred_at=domain_event.opened_at,
                    policy_version=domain_event.policy_version,
                    tier=domain_event.tier,
                    tier_reason=domain_event.tier_reason,
                )
            case Case.DutyAssigned():
                return DutyAssigned(
                    **base,
                    occurred_at=domain_event.assigned_at,
                    duty=domain_event.kind,
                    owner=domain_event.owner,
                    due_at=domain_event.due_at,
                    late_on_arrival=domain_event.due_at <= domain_event.assigned_at,
                )
            case Case.AlertRequested():
                return AlertRequested(
                    **base,
                    occurred_at=domain_event.requested_at,
                    duty=domain_event.kind,
                    recipient=domain_event.recipient,
                    tier=domain_event.tier,
                    alert_number=domain_event.alert_number,
                    attempt=domain_event.attempt,
                    due_at=domain_event.due_at,
                    next_alert_at=domain_event.next_alert_at,
                )
        return None

    def timers_for(self, wire_event: WireEvent) -> list[Timer]:
        """Each duty's deadline, and the next alert of a chase that nobody has answered yet."""
        if isinstance(wire_event, DutyAssigned):
            return [
                Timer(
                    rule=DEADLINE_RULE,
                    aggregate_id=wire_event.complaint_id,
                    part=wire_event.duty,
                    attempt=1,
                    due_at=wire_event.due_at,
                )
            ]
        if isinstance(wire_event, AlertRequested) and wire_event.next_alert_at is not None:
            return [
                Timer(
                    rule=ALERT_RULE,
                    aggregate_id=wire_event.complaint_id,
                    part=wire_event.duty,
                    attempt=wire_event.alert_number + 1,
                    due_at=wire_event.next_alert_at,
                )
            ]
        return []
