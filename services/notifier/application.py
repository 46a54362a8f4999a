"""Notifier's store: what was sent to whom."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Tracking

from services.notifier.domain import Receipt, StaffAlert, receipt_text, reference_of, staff_alert_text
from services.notifier.sink import FileSink
from shared.directory import Directory
from shared.events import (
    AlertRequested,
    ComplainantAcknowledged,
    ComplainantNotAcknowledged,
    ComplaintReceived,
    NotificationSent,
    WireEvent,
)
from shared.privacy import PatientData
from shared.store import ServiceApplication, stable_id


class NotifierApplication(ServiceApplication):
    service = "notifier"

    def send_receipt(
        self,
        complaint: ComplaintReceived,
        patient: PatientData | None,
        sink: FileSink,
        now: datetime,
        tracking: Tracking,
    ) -> None:
        """``patient`` is None when the complaint was erased before its receipt could be sent."""
        receipt = Receipt(id=complaint.complaint_id, language=complaint.language)
        contact = patient.contact if patient is not None else None
        if patient is None:
            receipt.withhold(reason="the complaint's patient data was erased", at=now)
        elif contact:
            delivery_id = stable_id("receipt", complaint.complaint_id)
            sink.deliver(delivery_id, contact, receipt_text(complaint.language, complaint.complaint_id))
            receipt.hand_over(
                delivery_id=delivery_id, channel=sink.channel, language=complaint.language, at=now
            )
        else:
            receipt.withhold(reason="the complaint gives no contact for the complainant", at=now)
        self.record(receipt, tracking=tracking)

    def alert_staff(
        self, alert: AlertRequested, directory: Directory, sink: FileSink, now: datetime, tracking: Tracking
    ) -> None:
        delivery_id = stable_id("alert", alert.complaint_id, alert.duty, alert.alert_number)
        member = directory.staff.get(alert.recipient)
        address = next(iter(member.contacts.values())) if member and member.contacts else alert.recipient
        text = staff_alert_text(
            reference_of(alert.complaint_id), alert.tier, alert.duty, alert.due_at, alert.attempt
        )
        sink.deliver(delivery_id, address, text)
        delivered = StaffAlert(
            id=delivery_id,
            complaint_id=alert.complaint_id,
            recipient=alert.recipient,
            duty=alert.duty,
            alert_number=alert.alert_number,
            channel=sink.channel,
            at=now,
        )
        self.record(delivered, tracking=tracking)

    def wire_event(self, domain_event: DomainEventProtocol[UUID]) -> WireEvent | None:
        if isinstance(domain_event, StaffAlert.Delivered):
            return NotificationSent(
                **self.wire_fields(domain_event),
                complaint_id=domain_event.complaint_id,
                occurred_at=domain_event.at,
                delivery_id=domain_event.originator_id,
                recipient=domain_event.recipient,
                channel=domain_event.channel,
                duty=domain_event.duty,
                alert_number=domain_event.alert_number,
            )
        if isinstance(domain_event, Receipt.HandedOver):
            return ComplainantAcknowledged(
                **self.wire_fields(domain_event),
                complaint_id=domain_event.originator_id,
                occurred_at=domain_event.at,
                delivery_id=domain_event.delivery_id,
                channel=domain_event.channel,
                language=domain_event.language,
            )
        if isinstance(domain_event, Receipt.Withheld):
            return ComplainantNotAcknowledged(
                **self.wire_fields(domain_event),
                complaint_id=domain_event.originator_id,
                occurred_at=domain_event.at,
                reason=domain_event.reason,
            )
        return super().wire_event(domain_event)
