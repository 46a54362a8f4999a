"""Intake's store: the register of complaints."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import datetime
from uuid import UUID, uuid4

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import IntegrityError

from services.intake.domain import Complaint, Registration
from shared.events import Complainant, ComplaintReceived, WireEvent
from shared.store import ServiceApplication, stable_id


class IdempotencyConflict(ValueError):
    """An Idempotency-Key was used again for a different complaint."""


def fingerprint(registration: Registration) -> str:
    canonical = json.dumps(asdict(registration), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class IntakeApplication(ServiceApplication):
    service = "intake"

    def register(
        self, registration: Registration, idempotency_key: str | None, now: datetime
    ) -> tuple[UUID, bool]:
        """Register a complaint; returns its id and whether this call created it."""
        registration.check(now)
        # A key is the caller's own: the same key from another first hearer is another request.
        scoped_key = f"{registration.heard_by}\n{idempotency_key}" if idempotency_key else None
        complaint_id = stable_id("complaint", scoped_key) if scoped_key else uuid4()
        request_fingerprint = fingerprint(registration)
        complaint = Complaint.register(complaint_id, registration, request_fingerprint)
        try:
            self.save(complaint)
        except IntegrityError:
            if idempotency_key is None:
                raise
            return self._replay(complaint_id, request_fingerprint), False
        return complaint_id, True

    def _replay(self, complaint_id: UUID, request_fingerprint: str) -> UUID:
        existing = self.find(Complaint, complaint_id)
        assert existing is not None  # the save above failed because it exists
        if existing.request_fingerprint != request_fingerprint:
            raise IdempotencyConflict(
                "this Idempotency-Key was already used for a different complaint; use a new key"
            )
        return complaint_id

    def get_complaint(self, complaint_id: UUID) -> Complaint | None:
        return self.find(Complaint, complaint_id)

    def wire_event(self, domain_event: DomainEventProtocol[UUID]) -> WireEvent | None:
        if isinstance(domain_event, Complaint.Received):
            has_complainant = domain_event.complainant_name or domain_event.complainant_contact
            return ComplaintReceived(
                **self.wire_fields(domain_event),
                complaint_id=domain_event.originator_id,
                occurred_at=domain_event.occurred_at,
                channel=domain_event.channel,
                heard_by=domain_event.heard_by,
                department=domain_event.department,
                summary=domain_event.summary,
                complainant=Complainant(
                    name=domain_event.complainant_name, contact=domain_event.complainant_contact
                )
                if has_complainant
                else None,
                category=domain_event.category,
                tier=domain_event.tier,
                language=domain_event.language,
            )
        return super().wire_event(domain_event)
