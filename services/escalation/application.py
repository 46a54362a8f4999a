"""Escalation's store: the cases and their duties."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Tracking

from services.escalation.domain import Case, ComplaintFacts
from shared.directory import Directory
from shared.events import ComplaintReceived, DutyAssigned, EscalationStarted, WireEvent
from shared.policy import Policy
from shared.store import ServiceApplication


class EscalationApplication(ServiceApplication):
    service = "escalation"

    def open_case(
        self,
        complaint: ComplaintReceived,
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
            summary=complaint.summary,
            tier=complaint.tier,
        )
        case = Case.open(facts, now, policy.version, policy.escalation, directory)
        self.record(case, tracking=tracking)

    def get_case(self, complaint_id: UUID) -> Case | None:
        return self.find(Case, complaint_id)

    def wire_event(self, domain_event: DomainEventProtocol[UUID]) -> WireEvent | None:
        if isinstance(domain_event, Case.Started):
            return EscalationStarted(
                **self.wire_fields(domain_event),
                complaint_id=domain_event.originator_id,
                occurred_at=domain_event.opened_at,
                policy_version=domain_event.policy_version,
                tier=domain_event.tier,
                tier_reason=domain_event.tier_reason,
            )
        if isinstance(domain_event, Case.DutyAssigned):
            return DutyAssigned(
                **self.wire_fields(domain_event),
                complaint_id=domain_event.originator_id,
                occurred_at=domain_event.assigned_at,
                duty=domain_event.kind,
                owner=domain_event.owner,
                due_at=domain_event.due_at,
                late_on_arrival=domain_event.due_at <= domain_event.assigned_at,
            )
        return super().wire_event(domain_event)
