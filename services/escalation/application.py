"""Escalation's store: the cases, their duties and the chase."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Tracking

from services.escalation.case_notices import NoticesOfCase
from services.escalation.coding import CodingOfCase
from services.escalation.domain import Case, ComplaintFacts, NotPermitted, NotPossible
from services.escalation.notices import LEARNING_NOTICE, NoticeIndex
from services.escalation.safety import SafetyLinksOfCase
from shared.contracts import ESCALATION
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
from shared.messages import Happened, Publish, Publishes
from shared.policy import Policy
from shared.reference import indexed
from shared.store import ATTEMPTS_ON_CONFLICT, ServiceApplication
from shared.timers import Timer

Result = TypeVar("Result")
log = logging.getLogger(__name__)


def of_case(event: Happened) -> dict[str, Any]:
    """What people did on a case, and what its deadlines did: its id, and when it happened."""
    return {"complaint_id": event.originator_id, "occurred_at": event.at}


class AboutADuty(Happened, Protocol):
    """A domain event about one duty of a case (its ``kind``)."""

    @property
    def kind(self) -> str: ...


def of_duty(event: AboutADuty) -> dict[str, Any]:
    """As ``of_case``, the duty under its wire name."""
    return {**of_case(event), "duty": event.kind}


def of_alert(alert: Case.AlertRequested | NoticesOfCase.NoticeAlertRequested) -> dict[str, Any]:
    """An alert of a case: its id, and when the alert was requested."""
    return {"complaint_id": alert.originator_id, "occurred_at": alert.requested_at}


PUBLISHES = Publishes(
    ESCALATION,
    Publish(
        Case.Started,
        EscalationStarted,
        lambda started: {"complaint_id": started.originator_id, "occurred_at": started.opened_at},
    ),
    Publish(
        Case.DutyAssigned,
        DutyAssigned,
        lambda assigned: {
            "complaint_id": assigned.originator_id,
            "occurred_at": assigned.assigned_at,
            "duty": assigned.kind,
            "late_on_arrival": assigned.due_at <= assigned.assigned_at,
            "alert": assigned.alert,
        },
    ),
    Publish(Case.AlertRequested, AlertRequested, lambda alert: {**of_alert(alert), "duty": alert.kind}),
    # A learning notice's alert: its department is chased like a duty (shared/events.py AlertSubject).
    Publish(
        NoticesOfCase.NoticeAlertRequested,
        AlertRequested,
        lambda alert: {**of_alert(alert), "duty": LEARNING_NOTICE},
    ),
    Publish(Case.DutyReassigned, DutyReassigned, of_duty),
    Publish(Case.AlertAcknowledged, AlertAcknowledged, of_duty),
    Publish(Case.DutyFulfilled, DutyFulfilled, of_duty),
    Publish(Case.DutyMissed, DutyMissed, of_duty),
    Publish(Case.DeadlinePassed, DeadlinePassed, of_duty),
    Publish(Case.ReportFiled, ReportFiled, of_case),
    Publish(Case.FirstResponseRecorded, FirstResponseRecorded, of_case),
    Publish(Case.HarassmentAssessed, HarassmentAssessed, of_case),
    Publish(Case.CorrectiveMeasureRecorded, CorrectiveMeasureRecorded, of_case),
    Publish(Case.Closed, CaseClosed, of_case),
    Publish(Case.Reopened, CaseReopened, of_case),
    # The parts of a case declared in their own modules keep their own event classes.
    Publish(CodingOfCase.Coded, CaseCoded, of_case),
    Publish(NoticesOfCase.LearningNoticeIssued, LearningNoticeIssued, of_case),
    Publish(NoticesOfCase.LearningNoticeRead, LearningNoticeRead, of_case),
    Publish(NoticesOfCase.LearningNoticeAnswered, LearningNoticeAnswered, of_case),
    Publish(NoticesOfCase.LearningNoticeOverdue, LearningNoticeOverdue, of_case),
    Publish(SafetyLinksOfCase.SafetyEventLinked, SafetyEventLinked, of_case),
)

ALERT_RULE = "alert"
DEADLINE_RULE = "deadline"
NOTICE_DEADLINE_RULE = "notice_deadline"


def next_alert(complaint_id: UUID, duty: str, alert_number: int, at: datetime) -> Timer:
    """The timer of a chase's next alert, unless someone answers first."""
    return Timer(rule=ALERT_RULE, aggregate_id=complaint_id, part=duty, attempt=alert_number + 1, due_at=at)


class EscalationApplication(ServiceApplication):
    service = "escalation"
    publishes = PUBLISHES

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
            deadline = Timer(
                rule=DEADLINE_RULE,
                aggregate_id=wire_event.complaint_id,
                part=wire_event.duty,
                attempt=1,
                due_at=wire_event.due_at,
            )
            alert = wire_event.alert
            if alert is None or alert.next_alert_at is None:
                return [deadline]
            return [
                deadline,
                next_alert(wire_event.complaint_id, wire_event.duty, alert.alert_number, alert.next_alert_at),
            ]
        if isinstance(wire_event, AlertRequested) and wire_event.next_alert_at is not None:
            return [
                next_alert(
                    wire_event.complaint_id,
                    wire_event.duty,
                    wire_event.alert_number,
                    wire_event.next_alert_at,
                )
            ]
        return []
