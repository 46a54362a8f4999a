"""Notifier's store: what is owed to whom, every attempt to deliver it, and acknowledgements."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import TypeVar
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Tracking

from services.notifier.domain import (
    COMPLAINANT,
    ERASED,
    RECEIPT_SUBJECT,
    Notification,
    receipt_text,
    staff_alert_text,
)
from shared.calendar import due_at
from shared.directory import Directory
from shared.events import (
    AlertRequested,
    ComplainantAcknowledged,
    ComplainantNotAcknowledged,
    ComplaintReceived,
    NotificationAcknowledged,
    NotificationAttempted,
    NotificationFailed,
    NotificationNotDelivered,
    NotificationSent,
    WireEvent,
)
from shared.metrics import ALERTS_REACHING_NO_ONE
from shared.policy import Policy
from shared.privacy import PatientData
from shared.reference import reference_of
from shared.store import ServiceApplication, stable_id

Result = TypeVar("Result")


def channel_for_contact(contact: str) -> str:
    """A complainant gives an e-mail address or a phone number."""
    return "email" if "@" in contact else "sms"


class NotifierApplication(ServiceApplication):
    service = "notifier"

    def request_receipt(
        self,
        complaint: ComplaintReceived,
        patient: PatientData | None,
        policy: Policy,
        configured: Collection[str],
        now: datetime,
        tracking: Tracking,
    ) -> None:
        """The receipt, with the first-response deadline of the policy in force. ``patient`` is the
        complaint's data, opened; None once erased. The contact is kept sealed, as it came: the
        dispatcher opens it again at each attempt, so an erasure also stops a pending receipt."""
        calendar = policy.escalation.calendar
        due = due_at(
            policy.escalation.duties["first_response"],
            complaint.occurred_at,
            complaint.recorded_at,
            calendar,
        )
        contact = (patient.contact if patient is not None else None) or ""
        channel = channel_for_contact(contact)
        reference = reference_of(complaint.complaint_id)
        receipt = Notification(
            id=stable_id("receipt", complaint.complaint_id),
            complaint_id=complaint.complaint_id,
            recipient=COMPLAINANT,
            contacts={channel: complaint.patient_data} if contact and channel in configured else {},
            subject=RECEIPT_SUBJECT[complaint.language].format(reference=reference),
            text=receipt_text(complaint.language, complaint.complaint_id, due, calendar.timezone),
            duty=None,
            alert_number=None,
            language=complaint.language,
            at=now,
        )
        if patient is None:
            receipt.give_up(ERASED, now)
        elif not contact:
            receipt.give_up("the complaint gives no contact for the complainant", now)
        elif channel not in configured:
            receipt.give_up(f"no channel {channel!r} is configured for the complainant's contact", now)
        self.record(receipt, tracking=tracking)

    def request_alert(
        self,
        alert: AlertRequested,
        directory: Directory,
        configured: Collection[str],
        acknowledge_link: Callable[[UUID], str],
        now: datetime,
        tracking: Tracking,
    ) -> None:
        """The alert, to the recipient's configured channels in their order of preference."""
        delivery_id = stable_id("alert", alert.complaint_id, alert.duty, alert.alert_number)
        member = directory.staff.get(alert.recipient)
        contacts = member.contacts if member else {}
        reference = reference_of(alert.complaint_id)
        notification = Notification(
            id=delivery_id,
            complaint_id=alert.complaint_id,
            recipient=alert.recipient,
            contacts={channel: address for channel, address in contacts.items() if channel in configured},
            subject=f"[kizuki] Case {reference}: {alert.duty.replace('_', ' ')}",
            text=staff_alert_text(
                reference, alert.tier, alert.duty, alert.due_at, alert.attempt, acknowledge_link(delivery_id)
            ),
            duty=alert.duty,
            alert_number=alert.alert_number,
            language=member.language if member else "ja",
            at=now,
        )
        if not notification.channels:
            notification.give_up(f"{alert.recipient} has no contact on a configured channel", now)
        self.record(notification, tracking=tracking)
        if not notification.channels:
            self.when_stored(ALERTS_REACHING_NO_ONE.inc)

    def complaint_erased(self, complaint_id: UUID, now: datetime, tracking: Tracking) -> None:
        """A receipt still pending is given up now, rather than at its next attempt."""
        receipt = self.get_notification(stable_id("receipt", complaint_id))
        if receipt is not None and receipt.pending:
            receipt.give_up(ERASED, now)
        self.record(*([receipt] if receipt is not None else []), tracking=tracking)

    def act_on_notification(
        self, delivery_id: UUID, action: Callable[[Notification], Result]
    ) -> Result | None:
        return self.act_on(Notification, delivery_id, action)

    def get_notification(self, delivery_id: UUID) -> Notification | None:
        return self.find(Notification, delivery_id)

    def wire_event(self, domain_event: DomainEventProtocol[UUID]) -> WireEvent | None:
        if isinstance(domain_event, Notification.AttemptStarted):
            return self.copied_to_wire(
                NotificationAttempted,
                domain_event,
                delivery_id=domain_event.originator_id,
                occurred_at=domain_event.at,
            )
        if isinstance(domain_event, Notification.AttemptFailed):
            return self.copied_to_wire(
                NotificationFailed,
                domain_event,
                delivery_id=domain_event.originator_id,
                occurred_at=domain_event.at,
            )
        if isinstance(domain_event, Notification.Delivered) and domain_event.recipient == COMPLAINANT:
            return self.copied_to_wire(
                ComplainantAcknowledged,
                domain_event,
                delivery_id=domain_event.originator_id,
                occurred_at=domain_event.at,
            )
        if isinstance(domain_event, Notification.Delivered):
            return self.copied_to_wire(
                NotificationSent,
                domain_event,
                delivery_id=domain_event.originator_id,
                occurred_at=domain_event.at,
            )
        if isinstance(domain_event, Notification.GaveUp) and domain_event.recipient == COMPLAINANT:
            return self.copied_to_wire(ComplainantNotAcknowledged, domain_event, occurred_at=domain_event.at)
        if isinstance(domain_event, Notification.GaveUp):
            return self.copied_to_wire(
                NotificationNotDelivered,
                domain_event,
                delivery_id=domain_event.originator_id,
                occurred_at=domain_event.at,
            )
        if isinstance(domain_event, Notification.Acknowledged):
            return self.copied_to_wire(
                NotificationAcknowledged,
                domain_event,
                delivery_id=domain_event.originator_id,
                by=domain_event.recipient,
                occurred_at=domain_event.at,
            )
        return super().wire_event(domain_event)
