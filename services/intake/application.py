"""Intake's store: the register of complaints."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError

from services.intake.channels import ChannelMessage
from services.intake.domain import Complaint, InboundMessage, Receipt, Registration, RegistrationError
from services.intake.matching import MatchIndex
from shared.contracts import INTAKE
from shared.events import (
    ChannelMessageRejected,
    ComplaintErased,
    ComplaintMessageAppended,
    ComplaintReceived,
    PossibleDuplicateFlagged,
    ReporterIdentityOpened,
    WireEvent,
)
from shared.messages import Happened, Publish, Publishes
from shared.policy import Inbox, IntakePolicy
from shared.privacy import IntakeKeys, PatientData, seal_patient_data
from shared.reference import indexed
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


CHAT_CHANNELS = frozenset({"line", "wechat"})


def _scoped(registration: Registration, idempotency_key: str | None) -> str | None:
    """A key is the caller's own: the same key from another person is another request."""
    caller = registration.reporter or registration.heard_by
    return f"{caller}\n{idempotency_key}" if idempotency_key else None


def _inbound_id(message_ref: str) -> UUID:
    return stable_id("inbound message", message_ref)


def of_complaint(event: Happened) -> dict[str, Any]:
    """An event of a complaint after its registration: its id, and when it happened."""
    return {"complaint_id": event.originator_id, "occurred_at": event.at}


PUBLISHES = Publishes(
    INTAKE,
    Publish(Complaint.Received, ComplaintReceived, lambda received: {"complaint_id": received.originator_id}),
    Publish(Complaint.MessageAppended, ComplaintMessageAppended, of_complaint),
    Publish(Complaint.PossibleDuplicateFlagged, PossibleDuplicateFlagged, of_complaint),
    Publish(Complaint.ReporterOpened, ReporterIdentityOpened, of_complaint),
    Publish(Complaint.Erased, ComplaintErased, of_complaint),
    # A channel's message that was registered is on the record through its complaint; one refused, as itself.
    Publish(
        InboundMessage.Recorded,
        ChannelMessageRejected,
        lambda recorded: {"occurred_at": recorded.at},
        when=lambda recorded: recorded.reason is not None,
    ),
)


class IntakeApplication(ServiceApplication):
    service = "intake"
    publishes = PUBLISHES

    def __init__(
        self, env: Mapping[str, str], keys: IntakeKeys, matches: MatchIndex, policy: IntakePolicy
    ) -> None:
        super().__init__(env=env)
        self.keys = keys
        self.matches = matches
        self.policy = policy

    def register(
        self, registration: Registration, idempotency_key: str | None, now: datetime
    ) -> tuple[UUID, bool]:
        """Register a complaint; returns its id and whether this call created it."""
        registration.check(now)
        scoped_key = _scoped(registration, idempotency_key)
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
        contact = registration.complainant_contact
        trace = (
            self.matches.trace(complaint_id, registration.channel, contact, patient_data.summary, now)
            if contact
            else None
        )
        window = timedelta(seconds=self.policy.duplicate_window_seconds)
        duplicate = (
            self.matches.possible_duplicate(trace, window, self.policy.duplicate_similarity)
            if trace is not None
            else None
        )
        if duplicate is not None:
            complaint.flag_possible_duplicate(duplicate_of=duplicate[0], similarity=duplicate[1], at=now)
        try:
            self.save(complaint, indexed(self, complaint_id))
        except IntegrityError:  # the same key, sent twice at once: the other one was first
            if scoped_key is None:
                raise
            existing = self.find(Complaint, complaint_id)
            assert existing is not None  # the save failed because it exists
            return self._replay(existing, registration), False
        if trace is not None:
            self.matches.add(trace)
        self.matches.prune(now)
        return complaint_id, True

    def receive_message(self, message: ChannelMessage, inbox: Inbox, language: str, now: datetime) -> Receipt:
        """A message to one of the hospital's accounts, registered for the account's department with its
        owner as first hearer; one without text is recorded as rejected."""
        if message.text is None or not message.text.strip():
            return self.refuse_message(
                message.channel, message.ref, f"a {message.kind} message has no text to register", now
            )
        registration = Registration(
            channel=message.channel,
            occurred_at=message.sent_at,
            heard_by=inbox.heard_by,
            department=inbox.department,
            summary=message.text,
            complainant_name=None,
            complainant_contact=message.sender,
            category=None,
            tier=None,
            language=language,
        )
        return self.receive(message.ref, registration, now)

    def receive(self, message_ref: str, registration: Registration, now: datetime) -> Receipt:
        """A channel's message: a new complaint, a message added to the sender's recent complaint on a
        chat channel, or a recorded rejection. The same message again changes nothing."""
        if (known := self.find(InboundMessage, _inbound_id(message_ref))) is not None:
            return known.receipt
        complaint_id = stable_id("complaint", _scoped(registration, message_ref))
        if self.find(Complaint, complaint_id) is not None:
            return Receipt("registered", complaint_id, new=False)
        try:
            registration.check(now)  # an added message holds to the same limits as a new complaint
        except RegistrationError as error:
            return self.refuse_message(registration.channel, message_ref, str(error), now)
        contact = registration.complainant_contact
        if registration.channel in CHAT_CHANNELS and contact:
            since = now - timedelta(seconds=self.policy.append_window_seconds)
            recent_id = self.matches.latest(registration.channel, contact, since)
            recent = self.find(Complaint, recent_id) if recent_id else None
            if recent is not None and not recent.erased:
                return self._append(recent, message_ref, registration, now)
        try:
            complaint_id, created = self.register(registration, message_ref, now)
        except RegistrationError as error:
            return self.refuse_message(registration.channel, message_ref, str(error), now)
        return Receipt("registered", complaint_id, new=created)

    def receive_submission(self, message_ref: str, registration: Registration, now: datetime) -> Receipt:
        """A channel system's submission on the bus, as ``receive`` takes a message, except that the same
        message id with other facts is rejected, never taken for the message that registered a complaint.
        Every fact of a submission is the channel's own; a chat platform's or a mail server's redelivery
        may differ in what intake fills in itself (a mail without a date is dated on arrival)."""
        complaint_id = stable_id("complaint", _scoped(registration, message_ref))
        if (registered := self.find(Complaint, complaint_id)) is None:
            return self.receive(message_ref, registration, now)
        try:
            self._replay(registered, registration)
        except IdempotencyConflict:
            reason = "its message id is the id of an earlier message with other facts; send it with a new id"
            return self.refuse_message(registration.channel, message_ref, reason, now)
        except Erased:
            pass  # its facts can no longer be compared: taken for the message that registered it
        return Receipt("registered", registered.id, new=False)

    def refuse_message(self, channel: str, message_ref: str, reason: str, now: datetime) -> Receipt:
        """Record why a channel's message was not registered; a second time, the first reason stands."""
        message_id = _inbound_id(message_ref)
        try:
            rejection = InboundMessage(
                id=message_id,
                channel=channel,
                message_ref=message_ref,
                complaint_id=None,
                reason=reason,
                at=now,
            )
            self.save(rejection)
        except IntegrityError:
            known = self.find(InboundMessage, message_id)
            assert known is not None  # the save failed because it exists
            return known.receipt
        return Receipt("rejected", None, new=True, reason=reason)

    def _append(
        self, complaint: Complaint, message_ref: str, registration: Registration, now: datetime
    ) -> Receipt:
        sealed = seal_patient_data(
            self.keys.data_key(complaint.id), complaint.id, PatientData(summary=registration.summary.strip())
        )
        complaint.append_message(registration.channel, message_ref, sealed, now)
        message_id = _inbound_id(message_ref)
        try:
            appended = InboundMessage(
                id=message_id,
                channel=registration.channel,
                message_ref=message_ref,
                complaint_id=complaint.id,
                reason=None,
                at=now,
            )
            self.save(complaint, appended)
        except IntegrityError:  # delivered twice at once, or the complaint changed meanwhile
            return self.receive(message_ref, registration, now)
        return Receipt("appended", complaint.id, new=True)

    def _replay(self, existing: Complaint, registration: Registration) -> UUID:
        if existing.erased:
            raise Erased("this Idempotency-Key belongs to a complaint that was erased; use a new key")
        if existing.request_fingerprint != fingerprint(registration, self.keys.data_key(existing.id)):
            raise IdempotencyConflict(
                "this Idempotency-Key was already used for a different complaint; use a new key"
            )
        return existing.id

    def close(self) -> None:
        super().close()
        self.keys.table.close()
        if self.matches.table is not None:
            self.matches.table.close()

    def get_complaint(self, complaint_id: UUID) -> Complaint | None:
        return self.find(Complaint, complaint_id)

    def erase(self, complaint_id: UUID, by: str, at: datetime) -> Complaint | None:
        """Destroy intake's copy of the key at once; the relay destroys the bucket's before it publishes
        ``ComplaintErased``. None when there is no such complaint."""
        complaint = self.find(Complaint, complaint_id)
        if complaint is not None:
            self.keys.destroy(complaint_id)
            self.matches.remove(complaint_id)
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
