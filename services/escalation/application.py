"""Escalation's store: the cases, their duties and the chase."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import IntegrityError, Tracking

from services.escalation.case_notices import NoticesOfCase
from services.escalation.coding import CodingOfCase
from services.escalation.domain import Case, ComplaintFacts, NotPermitted, NotPossible
from services.escalation.notices import LEARNING_NOTICE, NoticeIndex
from services.escalation.safety import SafetyLinksOfCase
from shared.directory import Directory
from shared.events import (
    AlertAcknowledged,
    AlertRequested,
    CallbackCompleted,
    CaseClosed,
    CaseCoded,
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
    LearningNoticeAnswered,
    LearningNoticeIssued,
    LearningNoticeOverdue,
    LearningNoticeRead,
    NotificationAcknowledged,
    ReportFiled,
    SafetyEventLinked,
    WireEvent,
)
from shared.policy import Policy
from shared.reference import indexed
from shared.store import ATTEMPTS_ON_CONFLICT, ServiceApplication
from shared.timers import Timer

Result = TypeVar("Result")
log = logging.getLogger(__name__)

ACTIONS_ON_THE_RECORD: dict[type[Aggregate.Event], type[WireEvent]] = {
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
    # The parts of a case declared in their own modules keep their own event classes.
    CodingOfCase.Coded: CaseCoded,
    NoticesOfCase.LearningNoticeIssued: LearningNoticeIssued,
    NoticesOfCase.LearningNoticeRead: LearningNoticeRead,
    NoticesOfCase.LearningNoticeAnswered: LearningNoticeAnswered,
    NoticesOfCase.LearningNoticeOverdue: LearningNoticeOverdue,
    SafetyLinksOfCase.SafetyEventLinked: SafetyEventLinked,
}
CASE_EVENTS = (Case.Event, CodingOfCase.Event, NoticesOfCase.Event, SafetyLinksOfCase.Event)

ALERT_RULE = "alert"
DEADLINE_RULE = "deadline"
NOTICE_DEADLINE_RULE = "notice_deadline"


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
            channel=complaint.channel,
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
        if case is not None and acknowledged.duty == LEARNING_NOTICE:
            case.read_through_link(acknowledged.by, acknowledged.occurred_at)
        elif case is not None:
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
        if timer.rule == NOTICE_DEADLINE_RULE:  # a notice's timer names the notice
            index = self.find(NoticeIndex, timer.aggregate_id)
            case = self.find(Case, index.complaint_id) if index is not None else None
            if case is not None:
                case.notice_deadline_reached(timer.aggregate_id, now)
        else:
            case = self.find(Case, timer.aggregate_id)
        if case is not None and timer.rule == ALERT_RULE and timer.part == LEARNING_NOTICE:
            case.chase_notice(timer.attempt - 1, now)
        elif case is not None and timer.rule == ALERT_RULE:
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

    def issue_notice(self, complaint_id: UUID, notice_id: UUID, issue: Callable[[Case], None]) -> Case | None:
        """Issue a notice from the case, with the index entry its deadline timer needs, in one
        transaction; None when there is no such case."""
        for _ in range(ATTEMPTS_ON_CONFLICT):
            case = self.find(Case, complaint_id)
            if case is None:
                return None
            issue(case)
            try:
                self.record(case, NoticeIndex(notice_id=notice_id, complaint_id=complaint_id))
            except IntegrityError:
                continue
            return case
        raise IntegrityError(f"case {complaint_id} kept changing while a notice was issued")

    def get_case(self, complaint_id: UUID) -> Case | None:
        return self.find(Case, complaint_id)

    def wire_event(self, domain_event: DomainEventProtocol[UUID]) -> WireEvent | None:
        if not isinstance(domain_event, CASE_EVENTS):
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
                    chase=domain_event.chase,
                    calendar=domain_event.calendar,
                )
            case Case.DutyAssigned():
                return DutyAssigned(
                    **base,
                    occurred_at=domain_event.assigned_at,
                    duty=domain_event.kind,
                    owner=domain_event.owner,
                    due_at=domain_event.due_at,
                    late_on_arrival=domain_event.due_at <= domain_event.assigned_at,
                    recipients=domain_event.recipients,
                )
            case NoticesOfCase.NoticeAlertRequested():
                return AlertRequested(
                    **base,
                    occurred_at=domain_event.requested_at,
                    duty=LEARNING_NOTICE,
                    recipient=domain_event.recipient,
                    tier=domain_event.tier,
                    alert_number=domain_event.alert_number,
                    attempt=domain_event.attempt,
                    due_at=domain_event.due_at,
                    next_alert_at=domain_event.next_alert_at,
                    notice_id=domain_event.notice_id,
                    department=domain_event.department,
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
        """Each duty's and each notice's deadline, and the next alert of a chase that nobody has
        answered yet (a notice's alerts are numbered across the case: see NoticesOfCase)."""
        if isinstance(wire_event, LearningNoticeIssued):
            return [
                Timer(
                    rule=NOTICE_DEADLINE_RULE,
                    aggregate_id=wire_event.notice_id,
                    attempt=1,
                    due_at=wire_event.due_at,
                )
            ]
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
