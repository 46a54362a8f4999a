"""Receipts to complainants: what they are told and whether it was handed to a channel. Pure, no I/O."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

RECEIPT_TEXT = {
    "ja": (
        "ご意見をお寄せいただき、ありがとうございます。受付番号は {reference} です。"
        "担当者より改めてご連絡し、お詫びと事実の確認をさせていただきます。"
    ),
    "zh": "感谢您的反馈。受理编号：{reference}。我们的工作人员将尽快与您联系，致歉并核实情况。",
    "en": (
        "Thank you for telling us. Your reference is {reference}. "
        "A member of staff will contact you to apologise and confirm the facts."
    ),
}


def reference_of(complaint_id: UUID) -> str:
    """The short reference a complainant can quote on the phone."""
    return complaint_id.hex[:8].upper()


def receipt_text(language: str, complaint_id: UUID) -> str:
    return RECEIPT_TEXT[language].format(reference=reference_of(complaint_id))


class Receipt(Aggregate):
    """The receipt owed to the complainant of one complaint; its id is the complaint's."""

    class Requested(Aggregate.Created):
        language: str

    class HandedOver(Aggregate.Event):
        delivery_id: UUID
        channel: str
        language: str
        at: datetime

    class Withheld(Aggregate.Event):
        reason: str
        at: datetime

    @event(Requested)
    def __init__(self, id: UUID, language: str) -> None:  # eventsourcing's name for it
        self.language = language
        self.outcome: str | None = None

    @event(HandedOver)
    def hand_over(self, delivery_id: UUID, channel: str, language: str, at: datetime) -> None:
        self.outcome = f"handed to {channel}"

    @event(Withheld)
    def withhold(self, reason: str, at: datetime) -> None:
        self.outcome = f"not sent: {reason}"


def staff_alert_text(reference: str, tier: str, duty: str, due_at: datetime, attempt: int) -> str:
    """What a staff member is told: the case reference, never the patient's name, contact or story."""
    return (
        f"[kizuki] Case {reference} ({tier}): {duty.replace('_', ' ')} is due by {due_at.isoformat()}. "
        f"Alert {attempt}. Please acknowledge."
    )


class StaffAlert(Aggregate):
    """One alert to one staff member about one duty of a case."""

    class Delivered(Aggregate.Created):
        complaint_id: UUID
        recipient: str
        duty: str
        alert_number: int
        channel: str
        at: datetime

    @event(Delivered)
    def __init__(
        self,
        id: UUID,  # eventsourcing's name for it
        complaint_id: UUID,
        recipient: str,
        duty: str,
        alert_number: int,
        channel: str,
        at: datetime,
    ) -> None:
        self.complaint_id = complaint_id
        self.recipient = recipient
