"""Complaint registration: the facts as the first hearer gave them. Pure rules, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.intake.limits import MAX_CATEGORY, MAX_FIELD, contact_problem, summary_problem

# Clocks of phones, desks and servers disagree a little; a complaint cannot have occurred later than this.
CLOCK_SKEW = timedelta(minutes=2)


class RegistrationError(ValueError):
    """The registration breaks a rule; the message names the field and says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Registration:
    channel: str
    occurred_at: datetime
    heard_by: str
    department: str
    summary: str
    complainant_name: str | None
    complainant_contact: str | None
    category: str | None
    tier: str | None
    language: str
    reporter: str | None = None  # who made an anonymous staff report; heard_by is then its receiver

    def check(self, now: datetime) -> None:
        if self.occurred_at.tzinfo is None or self.occurred_at.utcoffset() is None:
            raise RegistrationError("occurred_at", "must carry a UTC offset, e.g. 2026-11-23T09:30:00+09:00")
        if self.occurred_at > now + CLOCK_SKEW:
            raise RegistrationError("occurred_at", "is in the future; give the time the complaint occurred")
        for field in ("heard_by", "department"):
            if not getattr(self, field).strip():
                raise RegistrationError(field, "must not be blank")
        if (problem := summary_problem(self.summary)) is not None:
            raise RegistrationError("summary", problem)
        if self.complainant_contact and (problem := contact_problem(self.complainant_contact)):
            raise RegistrationError("complainant_contact", problem)
        limits = {"department": MAX_FIELD, "complainant_name": MAX_FIELD, "category": MAX_CATEGORY}
        for field, limit in limits.items():
            if len(getattr(self, field) or "") > limit:
                raise RegistrationError(field, f"is longer than {limit} characters")


class Complaint(Aggregate):
    """The register's entry. The patient's data is kept sealed with the complaint's own key."""

    class Received(Aggregate.Created):
        channel: str
        occurred_at: datetime
        heard_by: str
        department: str
        patient_data: str
        category: str | None
        tier: str | None
        language: str
        request_fingerprint: str
        reporter_sealed: str | None

    @event(Received)
    def __init__(
        self,
        id: UUID,  # eventsourcing takes the aggregate id by this name
        channel: str,
        occurred_at: datetime,
        heard_by: str,
        department: str,
        patient_data: str,
        category: str | None,
        tier: str | None,
        language: str,
        request_fingerprint: str,
        reporter_sealed: str | None,
    ) -> None:
        self.channel = channel
        self.occurred_at = occurred_at
        self.heard_by = heard_by
        self.department = department
        self.patient_data = patient_data
        self.category = category
        self.tier = tier
        self.language = language
        self.request_fingerprint = request_fingerprint
        self.reporter_sealed = reporter_sealed
        self.erased_by: str | None = None
        self.further_messages: list[str] = []
        self.possible_duplicate_of: UUID | None = None

    @classmethod
    def register(
        cls,
        complaint_id: UUID,
        registration: Registration,
        patient_data: str,
        request_fingerprint: str,
        reporter_sealed: str | None,
    ) -> Complaint:
        return cls(
            id=complaint_id,
            channel=registration.channel,
            occurred_at=registration.occurred_at,
            heard_by=registration.heard_by.strip(),
            department=registration.department.strip(),
            patient_data=patient_data,
            category=registration.category,
            tier=registration.tier,
            language=registration.language,
            request_fingerprint=request_fingerprint,
            reporter_sealed=reporter_sealed,
        )

    class PossibleDuplicateFlagged(Aggregate.Event):
        duplicate_of: UUID
        similarity: float
        at: datetime

    @event(PossibleDuplicateFlagged)
    def flag_possible_duplicate(self, duplicate_of: UUID, similarity: float, at: datetime) -> None:
        """Both complaints stay in the register; a person decides whether they are one."""
        self.possible_duplicate_of = duplicate_of

    class MessageAppended(Aggregate.Event):
        channel: str
        message_ref: str
        patient_data: str
        at: datetime

    @event(MessageAppended)
    def append_message(self, channel: str, message_ref: str, patient_data: str, at: datetime) -> None:
        """A further chat message from the complainant, sealed with the complaint's key."""
        self.further_messages.append(patient_data)

    class ReporterOpened(Aggregate.Event):
        by: str
        reason: str
        at: datetime

    @event(ReporterOpened)
    def open_reporter(self, by: str, reason: str, at: datetime) -> None:
        """Recorded before the identity is given to the patient-safety officer, every time."""

    class Erased(Aggregate.Event):
        by: str
        at: datetime

    def erase(self, by: str, at: datetime) -> None:
        """Recorded once the key is destroyed; erasing again changes nothing."""
        if not self.erased:
            self._erased(by=by, at=at)

    @property
    def erased(self) -> bool:
        return self.erased_by is not None

    @event(Erased)
    def _erased(self, by: str, at: datetime) -> None:
        self.erased_by = by


@dataclass(frozen=True)
class Receipt:
    """What became of a message that came by a channel; ``new`` is False when it came before."""

    outcome: Literal["registered", "appended", "rejected"]
    complaint_id: UUID | None
    new: bool
    reason: str | None = None


class InboundMessage(Aggregate):
    """A channel message that was added to a complaint or rejected, so that it counts once however
    often it is delivered. (A message that opened a complaint is found by the complaint's own id.)"""

    class Recorded(Aggregate.Created):
        channel: str
        message_ref: str
        complaint_id: UUID | None
        reason: str | None
        at: datetime

    @event(Recorded)
    def __init__(
        self,
        id: UUID,  # eventsourcing takes the aggregate id by this name
        channel: str,
        message_ref: str,
        complaint_id: UUID | None,
        reason: str | None,
        at: datetime,
    ) -> None:
        self.channel = channel
        self.message_ref = message_ref
        self.complaint_id = complaint_id
        self.reason = reason

    @property
    def receipt(self) -> Receipt:
        if self.reason is not None:
            return Receipt("rejected", None, new=False, reason=self.reason)
        return Receipt("appended", self.complaint_id, new=False)
