"""Notifier's store: what was sent to whom."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Tracking

from services.notifier.domain import Receipt, receipt_text
from services.notifier.sink import FileSink
from shared.events import ComplainantAcknowledged, ComplainantNotAcknowledged, ComplaintReceived, WireEvent
from shared.store import ServiceApplication, stable_id


class NotifierApplication(ServiceApplication):
    service = "notifier"

    def send_receipt(
        self, complaint: ComplaintReceived, sink: FileSink, now: datetime, tracking: Tracking
    ) -> None:
        receipt = Receipt(id=complaint.complaint_id, language=complaint.language)
        contact = complaint.complainant.contact if complaint.complainant else None
        if contact:
            delivery_id = stable_id("receipt", complaint.complaint_id)
            sink.deliver(delivery_id, contact, receipt_text(complaint.language, complaint.complaint_id))
            receipt.hand_over(
                delivery_id=delivery_id, channel=sink.channel, language=complaint.language, at=now
            )
        else:
            receipt.withhold(reason="the complaint gives no contact for the complainant", at=now)
        self.record(receipt, tracking=tracking)

    def wire_event(self, domain_event: DomainEventProtocol[UUID]) -> WireEvent | None:
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
