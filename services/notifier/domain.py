"""Notifications: what complainants and staff are told, and how each one is delivered. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.domain import Aggregate, event

from shared.reference import reference_of
from shared.store import stable_id

COMPLAINANT = "complainant"
ERASED = "the complaint's patient data was erased"

RECEIPT_TEXT = {
    "ja": (
        "ご意見をお寄せいただき、ありがとうございます。受付番号は {reference} です。"
        "{due} までに担当者よりご連絡し、お詫びと事実の確認をさせていただきます。"
    ),
    "zh": "感谢您的反馈。受理编号：{reference}。我们的工作人员将在 {due} 之前与您联系，致歉并核实情况。",
    "en": (
        "Thank you for telling us. Your reference is {reference}. "
        "A member of staff will contact you by {due} to apologise and confirm the facts."
    ),
}


RECEIPT_SUBJECT = {
    "ja": "受付番号 {reference}",
    "zh": "受理编号 {reference}",
    "en": "Your reference {reference}",
}


def receipt_text(language: str, complaint_id: UUID, due: datetime, timezone: str) -> str:
    """The receipt, giving the first-response deadline in the hospital's local time."""
    local = due.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")
    return RECEIPT_TEXT[language].format(reference=reference_of(complaint_id), due=local)


def staff_alert_text(
    reference: str, tier: str, duty: str, due_at: datetime, attempt: int, acknowledge_link: str
) -> str:
    """What a staff member is told: the case reference, never the patient's name, contact or story."""
    return (
        f"[kizuki] Case {reference} ({tier}): {duty.replace('_', ' ')} is due by {due_at.isoformat()}. "
        f"Alert {attempt}. Acknowledge: {acknowledge_link}"
    )


@dataclass(frozen=True)
class RetryRule:
    """How long transient failures are retried on one channel before the next channel is tried."""

    attempts_per_channel: int
    first_delay: timedelta
    max_delay: timedelta

    def delay(self, attempt_on_channel: int) -> timedelta:
        return min(self.first_delay * (1 << (attempt_on_channel - 1)), self.max_delay)


class NotPending(ValueError):
    """The notification was already delivered or given up."""


class Notification(Aggregate):
    """A message owed to one person (a receipt to a complainant, an alert to a staff member), tried on
    their channels in order of preference until one takes it."""

    class Requested(Aggregate.Created):
        complaint_id: UUID
        recipient: str
        contacts: dict[str, str]
        subject: str
        text: str
        duty: str | None
        alert_number: int | None
        language: str
        at: datetime

    class Event(Aggregate.Event):
        complaint_id: UUID
        recipient: str

    class AttemptStarted(Event):
        attempt: int
        channel: str
        idempotency_key: UUID
        at: datetime

    class AttemptFailed(Event):
        attempt: int
        channel: str
        reason: str
        permanent: bool
        retry_at: datetime | None
        next_channel: str | None
        at: datetime

    class Delivered(Event):
        attempt: int
        channel: str
        duty: str | None
        alert_number: int | None
        language: str
        at: datetime

    class GaveUp(Event):
        reason: str
        duty: str | None
        alert_number: int | None
        at: datetime

    class Acknowledged(Event):
        duty: str
        at: datetime

    @event(Requested)
    def __init__(
        self,
        id: UUID,  # eventsourcing's name for it
        complaint_id: UUID,
        recipient: str,
        contacts: dict[str, str],
        subject: str,
        text: str,
        duty: str | None,
        alert_number: int | None,
        language: str,
        at: datetime,
    ) -> None:
        self.complaint_id = complaint_id
        self.recipient = recipient
        self.contacts = contacts
        self.subject = subject
        self.text = text
        self.duty = duty
        self.alert_number = alert_number
        self.language = language
        self.channels = list(contacts)
        self.channel_index = 0
        self.attempts = 0
        self.attempts_on_channel = 0
        self.retry_at: datetime | None = None
        self.outcome: str | None = None
        self.acknowledged_by: str | None = None

    @property
    def pending(self) -> bool:
        return self.outcome is None

    @property
    def channel(self) -> str:
        return self.channels[self.channel_index]

    @property
    def address(self) -> str:
        return self.contacts[self.channel]

    @property
    def idempotency_key(self) -> UUID:
        """The same on every attempt on the current channel, so a provider can drop a repeat."""
        return stable_id("delivery", self.id, self.channel)

    def start_attempt(self, at: datetime) -> None:
        """Recorded before the message is handed over: after a crash the attempt is known, and the
        next one carries the same idempotency key to the same channel."""
        if not self.pending:
            raise NotPending(f"the notification is {self.outcome}")
        self._start_attempt(
            **self._about(),
            attempt=self.attempts + 1,
            channel=self.channel,
            idempotency_key=self.idempotency_key,
            at=at,
        )

    def _about(self) -> dict[str, Any]:
        """What every event of the notification says, so that it can go on the record by itself."""
        return {"complaint_id": self.complaint_id, "recipient": self.recipient}

    @event(AttemptStarted)
    def _start_attempt(
        self,
        complaint_id: UUID,
        recipient: str,
        attempt: int,
        channel: str,
        idempotency_key: UUID,
        at: datetime,
    ) -> None:
        self.attempts = attempt
        self.attempts_on_channel += 1
        self.retry_at = None

    def fail_attempt(self, reason: str, permanent: bool, at: datetime, rule: RetryRule) -> None:
        """A transient failure is retried after a growing delay; a permanent one, or too many transient
        ones, moves on to the next channel; after the last channel the notification is given up.
        The reason goes on the record: a classified one (``DeliveryFailed``), never a provider's text."""
        retry_at = None
        next_channel = None
        if not permanent and self.attempts_on_channel < rule.attempts_per_channel:
            retry_at = at + rule.delay(self.attempts_on_channel)
        elif self.channel_index + 1 < len(self.channels):
            next_channel = self.channels[self.channel_index + 1]
        self._fail_attempt(
            **self._about(),
            attempt=self.attempts,
            channel=self.channel,
            reason=reason,
            permanent=permanent,
            retry_at=retry_at,
            next_channel=next_channel,
            at=at,
        )
        if retry_at is None and next_channel is None:
            self.give_up(f"every channel failed, the last one ({self.channels[-1]}) with: {reason}", at)

    @event(AttemptFailed)
    def _fail_attempt(
        self,
        complaint_id: UUID,
        recipient: str,
        attempt: int,
        channel: str,
        reason: str,
        permanent: bool,
        retry_at: datetime | None,
        next_channel: str | None,
        at: datetime,
    ) -> None:
        self.retry_at = retry_at
        if next_channel is not None:
            self.channel_index += 1
            self.attempts_on_channel = 0

    def deliver(self, at: datetime) -> None:
        self._deliver(
            **self._about(),
            attempt=self.attempts,
            channel=self.channel,
            duty=self.duty,
            alert_number=self.alert_number,
            language=self.language,
            at=at,
        )

    @event(Delivered)
    def _deliver(
        self,
        complaint_id: UUID,
        recipient: str,
        attempt: int,
        channel: str,
        duty: str | None,
        alert_number: int | None,
        language: str,
        at: datetime,
    ) -> None:
        self.outcome = f"delivered by {channel}"

    def give_up(self, reason: str, at: datetime) -> None:
        self._give_up(**self._about(), reason=reason, duty=self.duty, alert_number=self.alert_number, at=at)

    @event(GaveUp)
    def _give_up(
        self,
        complaint_id: UUID,
        recipient: str,
        reason: str,
        duty: str | None,
        alert_number: int | None,
        at: datetime,
    ) -> None:
        self.outcome = f"not delivered: {reason}"

    def acknowledge(self, at: datetime) -> bool:
        """The recipient acknowledged the alert through its link; False when they already had."""
        if self.duty is None:
            raise NotPending("a receipt is not acknowledged")
        if self.acknowledged_by is not None:
            return False
        self._acknowledge(**self._about(), duty=self.duty, at=at)
        return True

    @event(Acknowledged)
    def _acknowledge(self, complaint_id: UUID, recipient: str, duty: str, at: datetime) -> None:
        self.acknowledged_by = recipient
