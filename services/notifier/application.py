"""Notifier's store: what is owed to whom, every attempt to deliver it, and acknowledgements."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

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
from shared.contracts import NOTIFIER
from shared.directory import Directory
from shared.events import (
    AlertRequested,
    AlertWithAssignment,
    ComplainantAcknowledged,
    ComplainantNotAcknowledged,
    ComplaintReceived,
    DutyAssigned,
    NotificationAcknowledged,
    NotificationAttempted,
    NotificationFailed,
    NotificationNotDelivered,
    NotificationSent,
)
from shared.messages import Happened, Publish, Publishes
from shared.metrics import ALERTS_REACHING_NO_ONE
from shared.policy import Policy
from shared.privacy import PatientData
from shared.reference import reference_of
from shared.store import ServiceApplication, stable_id

Result = TypeVar("Result")


@dataclass(frozen=True)
class AlertOwed:
    """An alert escalation asks for: by itself (``AlertRequested``), or with the assignment of the duty
    it is about (``DutyAssigned``)."""

    complaint_id: UUID
    duty: str
    tier: str
    recipient: str
    alert_number: int
    attempt: int
    due_at: datetime

    @classmethod
    def requested(cls, alert: AlertRequested) -> AlertOwed:
        return cls(
            alert.complaint_id,
            alert.duty,
            alert.tier,
            alert.recipient,
            alert.alert_number,
            alert.attempt,
            alert.due_at,
        )

    @classmethod
    def with_assignment(cls, assigned: DutyAssigned, alert: AlertWithAssignment) -> AlertOwed:
        return cls(
            assigned.complaint_id,
            assigned.duty,
            alert.tier,
            alert.recipient,
            alert.alert_number,
            alert.attempt,
            assigned.due_at,
        )


def channel_for_contact(contact: str) -> str:
    """A complainant gives an e-mail address or a phone number."""
    return "email" if "@" in contact else "sms"


def of_delivery(event: Happened) -> dict[str, Any]:
    """An event of a notification: its id is the delivery's, and when it happened."""
    return {"delivery_id": event.originator_id, "occurred_at": event.at}


def to_the_complainant(event: Notification.Event) -> bool:
    return event.recipient == COMPLAINANT


PUBLISHES = Publishes(
    NOTIFIER,
    Publish(Notification.AttemptStarted, NotificationAttempted, of_delivery),
    Publish(Notification.AttemptFailed, NotificationFailed, of_delivery),
    Publish(Notification.Delivered, ComplainantAcknowledged, of_delivery, when=to_the_complainant),
    Publish(Notification.Delivered, NotificationSent, of_delivery),
    Publish(
        Notification.GaveUp,
        ComplainantNotAcknowledged,
        lambda gave_up: {"occurred_at": gave_up.at},
        when=to_the_complainant,
    ),
    Publish(Notification.GaveUp, NotificationNotDelivered, of_delivery),
    Publish(
        Notification.Acknowledged,
        NotificationAcknowledged,
        lambda acknowledged: {**of_delivery(acknowledged), "by": acknowledged.recipient},
    ),
)


class NotifierApplication(ServiceApplication):
    service = "notifier"
    publishes = PUBLISHES

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
        alert: AlertOwed,
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
