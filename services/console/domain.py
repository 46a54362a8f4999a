"""The console's read model: each case as people need to see it, folded from the record's events. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from shared.events import (
    AlertAcknowledged,
    AlertRequested,
    AnyEvent,
    CallbackAbandoned,
    CallbackAttempted,
    CallbackCompleted,
    CallbackOverdue,
    CallbackScheduled,
    CaseClosed,
    CaseReopened,
    ComplaintErased,
    ComplaintReceived,
    DeadlinePassed,
    DutyAssigned,
    DutyFulfilled,
    DutyMissed,
    DutyReassigned,
    EscalationStarted,
    FirstResponseRecorded,
    NotificationAcknowledged,
    NotificationFailed,
    NotificationNotDelivered,
    NotificationSent,
    ReportFiled,
)

REPORTING_DUTIES = ("supervisor_report", "first_hearer_report")
CALLBACK_OUTCOMES = {
    "CallbackCompleted": "completed",
    "CallbackAbandoned": "abandoned",
    "CallbackOverdue": "overdue",
}


@dataclass
class Duty:
    kind: str
    owner: str
    due_at: datetime
    fulfilled_by: str | None = None
    fulfilled_at: datetime | None = None
    acknowledged_by: str | None = None
    deadline_passed: bool = False

    def status(self, now: datetime) -> str:
        """As escalation says it: open, overdue, done, done late, or missed (a reporting duty)."""
        if self.fulfilled_at is not None:
            return "done late" if self.fulfilled_at > self.due_at else "done"
        if self.kind in REPORTING_DUTIES and self.deadline_passed:
            return "missed"
        return "overdue" if now >= self.due_at else "open"

    @property
    def is_open(self) -> bool:
        return self.fulfilled_at is None


@dataclass
class Alert:
    duty: str
    recipient: str
    number: int
    requested_at: datetime
    channel: str | None = None
    outcome: str = "requested"  # then: sent, failed, not delivered, acknowledged
    delivery_id: UUID | None = None


@dataclass
class Callback:
    callback_id: UUID
    purpose: str
    assignee: str
    due_at: datetime
    complete_by: datetime
    attempts: int = 0
    outcome: str = "scheduled"  # then: not reached, completed, abandoned, overdue


@dataclass
class Entry:
    """One line of the case's timeline: when, what (the event's type), who, and about which duty."""

    at: datetime
    what: str
    who: str | None
    duty: str | None


@dataclass
class Case:
    complaint_id: UUID
    occurred_at: datetime | None = None
    registered_at: datetime | None = None
    heard_by: str | None = None
    department: str | None = None
    channel: str | None = None
    tier: str | None = None
    erased: bool = False
    closed_at: datetime | None = None
    first_response_at: datetime | None = None  # the first call that reached the patient, as stated
    duties: dict[str, Duty] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    callbacks: dict[UUID, Callback] = field(default_factory=dict)
    timeline: list[Entry] = field(default_factory=list)

    def people(self, chain_of: dict[str, list[str]]) -> set[str]:
        """The first hearer, every duty's owner and, per ``chain_of`` (owner: chain), their chains."""
        owners = {duty.owner for duty in self.duties.values()}
        chains = {person for owner in owners for person in chain_of.get(owner, [])}
        return {*owners, *chains, *([self.heard_by] if self.heard_by else [])}


def apply(case: Case, event: AnyEvent) -> None:
    """Fold one event of the case into its view; events the console does not show change nothing."""
    who = getattr(event, "by", None) or getattr(event, "owner", None) or getattr(event, "recipient", None)
    case.timeline.append(Entry(event.occurred_at, event.type_name(), who, getattr(event, "duty", None)))
    match event:
        case ComplaintReceived():
            case.occurred_at, case.registered_at = event.occurred_at, event.recorded_at
            case.heard_by, case.department, case.channel = event.heard_by, event.department, event.channel
            case.tier = case.tier or event.tier
        case EscalationStarted():
            case.tier = event.tier
        case DutyAssigned():
            case.duties[event.duty] = Duty(event.duty, event.owner, event.due_at)
            if event.alert is not None:
                alert = event.alert
                case.alerts.append(Alert(event.duty, alert.recipient, alert.alert_number, event.occurred_at))
        case DutyReassigned() if event.duty in case.duties:
            case.duties[event.duty].owner = event.owner
        case DutyFulfilled() if event.duty in case.duties:
            case.duties[event.duty].fulfilled_by = event.by
            case.duties[event.duty].fulfilled_at = event.occurred_at
        case AlertAcknowledged() if event.duty in case.duties:
            case.duties[event.duty].acknowledged_by = event.by
            _acknowledge_alerts(case, event.duty)
        case DutyMissed() | DeadlinePassed() if event.duty in case.duties:
            case.duties[event.duty].deadline_passed = True
        case FirstResponseRecorded() if event.patient_reached and case.first_response_at is None:
            case.first_response_at = event.occurred_at
        case ReportFiled():
            pass  # the track's DutyFulfilled follows; the timeline keeps the report itself
        case CaseClosed():
            case.closed_at = event.occurred_at
        case CaseReopened():
            case.closed_at = None
        case ComplaintErased():
            case.erased = True
        case _:
            _apply_delivery(case, event)
            _apply_callback(case, event)


def _apply_delivery(case: Case, event: AnyEvent) -> None:
    match event:
        case AlertRequested():
            case.alerts.append(Alert(event.duty, event.recipient, event.alert_number, event.occurred_at))
        case NotificationSent():
            alert = _alert(case, event.duty, event.recipient, event.alert_number)
            if alert is not None:
                alert.channel, alert.outcome, alert.delivery_id = event.channel, "sent", event.delivery_id
        case NotificationFailed():
            alert = next((a for a in case.alerts if a.delivery_id == event.delivery_id), None)
            if alert is not None and alert.outcome == "requested":
                alert.channel = event.channel
        case NotificationNotDelivered():
            alert = _alert(case, event.duty, event.recipient, event.alert_number)
            if alert is not None:
                alert.outcome = "not delivered"
        case NotificationAcknowledged():
            _acknowledge_alerts(case, event.duty)


def _apply_callback(case: Case, event: AnyEvent) -> None:
    match event:
        case CallbackScheduled():
            callback = case.callbacks.get(event.callback_id)
            if callback is None:
                case.callbacks[event.callback_id] = Callback(
                    event.callback_id, event.purpose, event.assignee, event.due_at, event.complete_by
                )
            else:
                callback.due_at = event.due_at
        case CallbackAttempted() if event.callback_id in case.callbacks:
            case.callbacks[event.callback_id].attempts = event.attempt
            case.callbacks[event.callback_id].outcome = "not reached"
        case CallbackCompleted() | CallbackAbandoned() | CallbackOverdue() if (
            event.callback_id in case.callbacks
        ):
            case.callbacks[event.callback_id].outcome = CALLBACK_OUTCOMES[event.type_name()]


def _alert(case: Case, duty: str, recipient: str, number: int) -> Alert | None:
    return next(
        (a for a in case.alerts if (a.duty, a.recipient, a.number) == (duty, recipient, number)), None
    )


def _acknowledge_alerts(case: Case, duty: str) -> None:
    for alert in case.alerts:
        if alert.duty == duty and alert.outcome in ("requested", "sent"):
            alert.outcome = "acknowledged"
