"""Escalation's store: the cases."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Tracking

from services.escalation.domain import Case
from shared.events import ComplaintReceived, EscalationStarted, WireEvent
from shared.store import ServiceApplication


class EscalationApplication(ServiceApplication):
    service = "escalation"

    def open_case(
        self, complaint: ComplaintReceived, policy_version: str, now: datetime, tracking: Tracking
    ) -> None:
        case = Case(
            id=complaint.complaint_id,
            complaint_occurred_at=complaint.occurred_at,
            opened_at=now,
            policy_version=policy_version,
            tier=complaint.tier,
        )
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
            )
        return super().wire_event(domain_event)
