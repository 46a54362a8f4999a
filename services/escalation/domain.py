"""The case: the reporting regime of one complaint, its duties and who owes them. Pure rules, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.escalation.classification import classify
from services.escalation.deadlines import due_at
from shared.directory import Directory
from shared.policy import DUTY_KINDS, EscalationPolicy


@dataclass(frozen=True)
class ComplaintFacts:
    """What escalation needs of a registered complaint."""

    complaint_id: UUID
    occurred_at: datetime
    registered_at: datetime
    heard_by: str
    department: str
    summary: str
    tier: str | None


@dataclass(frozen=True)
class PlannedDuty:
    kind: str
    owner: str
    due_at: datetime


def owner_of(kind: str, facts: ComplaintFacts, directory: Directory) -> str:
    """The first hearer owes their own report; the supervisor the acknowledgement and the other
    report; the department's handler the apology call and the feedback."""
    if kind == "first_hearer_report":
        return facts.heard_by
    if kind in ("supervisor_acknowledgement", "supervisor_report"):
        return directory.supervisor_of(facts.heard_by)
    return directory.handler_for(facts.department, facts.heard_by)


def plan_duties(facts: ComplaintFacts, policy: EscalationPolicy, directory: Directory) -> list[PlannedDuty]:
    return [
        PlannedDuty(
            kind=kind,
            owner=owner_of(kind, facts, directory),
            due_at=due_at(policy.duties[kind], facts.occurred_at, facts.registered_at, policy.calendar),
        )
        for kind in DUTY_KINDS
    ]


@dataclass
class Duty:
    kind: str
    owner: str
    due_at: datetime
    assigned_at: datetime

    def status(self, now: datetime) -> str:
        return "overdue" if now >= self.due_at else "open"


class Case(Aggregate):
    class Started(Aggregate.Created):
        complaint_occurred_at: datetime
        registered_at: datetime
        opened_at: datetime
        policy_version: str
        tier: str
        tier_reason: str
        heard_by: str
        department: str

    class DutyAssigned(Aggregate.Event):
        kind: str
        owner: str
        due_at: datetime
        assigned_at: datetime

    @event(Started)
    def __init__(
        self,
        id: UUID,  # eventsourcing takes the aggregate id by this name; it is the complaint's
        complaint_occurred_at: datetime,
        registered_at: datetime,
        opened_at: datetime,
        policy_version: str,
        tier: str,
        tier_reason: str,
        heard_by: str,
        department: str,
    ) -> None:
        self.complaint_occurred_at = complaint_occurred_at
        self.registered_at = registered_at
        self.opened_at = opened_at
        self.policy_version = policy_version
        self.tier = tier
        self.tier_reason = tier_reason
        self.heard_by = heard_by
        self.department = department
        self.duties: dict[str, Duty] = {}

    @classmethod
    def open(
        cls,
        facts: ComplaintFacts,
        opened_at: datetime,
        policy_version: str,
        policy: EscalationPolicy,
        directory: Directory,
    ) -> Case:
        tier, reason = classify(facts.summary, facts.tier, policy.classification)
        case = cls(
            id=facts.complaint_id,
            complaint_occurred_at=facts.occurred_at,
            registered_at=facts.registered_at,
            opened_at=opened_at,
            policy_version=policy_version,
            tier=tier,
            tier_reason=reason,
            heard_by=facts.heard_by,
            department=facts.department,
        )
        for duty in plan_duties(facts, policy, directory):
            case.assign(kind=duty.kind, owner=duty.owner, due_at=duty.due_at, assigned_at=opened_at)
        return case

    @event(DutyAssigned)
    def assign(self, kind: str, owner: str, due_at: datetime, assigned_at: datetime) -> None:
        self.duties[kind] = Duty(kind=kind, owner=owner, due_at=due_at, assigned_at=assigned_at)
