"""Intake's store: the register of complaints."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from uuid import UUID, uuid4

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import IntegrityError

from services.intake.domain import Complaint, Registration
from shared.events import ComplaintErased, ComplaintReceived, ReporterIdentityOpened, WireEvent
from shared.privacy import IntakeKeys, PatientData, seal_patient_data
from shared.store import ServiceApplication, stable_id


class IdempotencyConflict(ValueError):
    """An Idempotency-Key was used again for a different complaint."""


class NotAnonymous(ValueError):
    """There is no sealed reporter: the complaint was not an anonymous staff report."""


class Erased(ValueError):
    """The complaint's patient data was erased: a request that needs it cannot be answered."""


def fingerprint(registration: Registration, data_key: bytes) -> str:
    """Keyed with the complaint's data key, so that after erasure it says nothing about the patient."""
    canonical = json.dumps(asdict(registration), sort_keys=True, default=str)
    return hmac.new(data_key, canonical.encode(), hashlib.sha256).hexdigest()


class IntakeApplication(ServiceApplication):
    service = "intake"

    def __init__(self, env: Mapping[str, str], keys: IntakeKeys) -> None:
        super().__init__(env=env)
        self.keys = keys

    def register(
        self, registration: Registration, idempotency_key: str | None, now: datetime
    ) -> tuple[UUID, bool]:
        """Register a complaint; returns its id and whether this call created it."""
        registration.check(now)
        # A key is the caller's own: the same key from another person is another request.
        caller = registration.reporter or registration.heard_by
        scoped_key = f"{caller}\n{idempotency_key}" if idempotency_key else None
        complaint_id = stable_id("complaint", scoped_key) if scoped_key else uuid4()
        if scoped_key is not None and (existing := self.find(Complaint, complaint_id)) is not None:
            return self._replay(existing, registration), False
        data_key = self.keys.data_key(complaint_id)
        patient_data = PatientData(
            name=registration.complainant_name,
            contact=registration.complainant_contact,
            summary=registration.summary.strip(),
        )
        sealed = seal_patient_data(data_key, complaint_id, patient_data)
        reporter = registration.reporter
        complaint = Complaint.register(
            complaint_id,
            registration,
            sealed,
            fingerprint(registration, data_key),
            self.keys.seal_reporter(complaint_id, reporter) if reporter else None,
        )
        try:
            self.save(complaint)
        except IntegrityError:  # the same key, sent twice at once: the other one was first
            if scoped_key is None:
                raise
            existing = self.find(Complaint, complaint_id)
            assert existing is not None  # the save failed because it exists
            return self._replay(existing, registration), False
        return complaint_id, True

    def _replay(self, existing: Complaint, registration: Registration) -> UUID:
        if existing.erased:
            raise Erased("this Idempotency-Key belongs to a complaint that was erased; use a new key")
        if existing.request_fingerprint != fingerprint(registration, self.keys.data_key(existing.id)):
            raise IdempotencyConflict(
                "this Idempotency-Key was already used for a different complaint; use a new key"
            )
        return existing.id

    def get_complaint(self, complaint_id: UUID) -> Complaint | None:
        return self.find(Complaint, complaint_id)

    def erase(self, complaint_id: UUID, by: str, at: datetime) -> Complaint | None:
        """Destroy intake's copy of the key at once; the relay destroys the bucket's before it publishes
        ``ComplaintErased``. None when there is no such complaint."""
        complaint = self.find(Complaint, complaint_id)
        if complaint is not None:
            self.keys.destroy(complaint_id)
            complaint.erase(by, at)
            self.save(complaint)
        return complaint

    def open_reporter(self, complaint_id: UUID, by: str, reason: str, at: datetime) -> str | None:
        """The anonymous reporter's staff id, once the opening is recorded; None for no such complaint."""
        complaint = self.find(Complaint, complaint_id)
        if complaint is None:
            return None
        if complaint.reporter_sealed is None:
            raise NotAnonymous("this complaint was not an anonymous staff report: it has no sealed reporter")
        complaint.open_reporter(by=by, reason=reason, at=at)
        self.save(complaint)
        return self.keys.open_reporter(complaint_id, complaint.reporter_sealed)

    def keys_for(self, wire: WireEvent) -> list[tuple[UUID, bytes | None]]:
        if isinstance(wire, ComplaintReceived):
            wrapped = self.keys.wrapped(wire.complaint_id)
            return [] if wrapped is None else [(wire.complaint_id, wrapped)]
        if isinstance(wire, ComplaintErased):
            return [(wire.complaint_id, None)]
        return []

    def wire_event(self, domain_event: DomainEventProtocol[UUID]) -> WireEvent | None:
        if isinstance(domain_event, Complaint.Received):
            return ComplaintReceived(
                **self.wire_fields(domain_event),
                complaint_id=domain_event.originator_id,
                occurred_at=domain_event.occurred_at,
                channel=domain_event.channel,
                heard_by=domain_event.heard_by,
                department=domain_event.department,
                patient_data=domain_event.patient_data,
                reporter_sealed=domain_event.reporter_sealed,
                category=domain_event.category,
                tier=domain_event.tier,
                language=domain_event.language,
            )
        if isinstance(domain_event, Complaint.ReporterOpened):
            return ReporterIdentityOpened(
                **self.wire_fields(domain_event),
                complaint_id=domain_event.originator_id,
                occurred_at=domain_event.at,
                by=domain_event.by,
                reason=domain_event.reason,
            )
        if isinstance(domain_event, Complaint.Erased):
            return ComplaintErased(
                **self.wire_fields(domain_event),
                complaint_id=domain_event.originator_id,
                occurred_at=domain_event.at,
                by=domain_event.by,
            )
        return super().wire_event(domain_event)
