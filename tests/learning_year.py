"""A year of synthetic complaints on the record, with one planted recurring cause.

Several hundred complaints across departments, channels and HCAT categories, drawn from a seeded random
generator; on top of them "safety" complaints from Ward 3 every month, more as the year goes on. Also:
uncoded cases, blind second codings, harassment assessments, callbacks, staff (adverse-event) reports
with complaints linked to them, and a learning notice answered by two departments and overdue in a
third. The events are chained per service and signed as the relays do it (shared/chain.py), so
`kizuki audit verify` holds on the stream they are published to.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from kizuki.audit import RecordMessage
from shared.chain import START, Link, SigningKey, chained, checkpoint_statement
from shared.events import (
    CallbackCompleted,
    CaseClosed,
    CaseCoded,
    CheckpointSigned,
    DutyFulfilled,
    EscalationStarted,
    FirstResponseRecorded,
    HarassmentAssessed,
    LearningNoticeAnswered,
    LearningNoticeIssued,
    LearningNoticeOverdue,
    LearningNoticeRead,
    SafetyEventLinked,
    WireEvent,
    encode_event,
    headers_for,
)
from tests.factories import complaint_received

START_OF_YEAR = datetime(2025, 1, 1, tzinfo=UTC)
PLANTED_DEPARTMENT, PLANTED_CATEGORY = "Ward 3", "safety"
DEPARTMENTS = ("Ward 3", "Ward 5", "Cardiology", "Radiology", "Outpatients", "Pharmacy")
CHANNELS = ("phone", "walk_in", "web", "email", "letter")
BACKGROUND_CATEGORIES = (
    "quality",
    "environment",
    "institutional_processes",
    "listening",
    "communication",
    "respect_and_patient_rights",
    "safety",
)
BACKGROUND_PER_MONTH = 30
NOTICE_ID = UUID("7d3e2a51-4c1b-4f0e-9a55-1f2e3d4c5b6a")
REASON_NOT_APPLICABLE = "=no night shift on Ward 5"  # a spreadsheet would run it, unless made inert


def planted_per_month(month: int) -> int:
    return 1 + month // 2  # 1, 1, 2, 2, ... 6, 6: rising


class Year:
    """The year's events in the order the services would have recorded them."""

    def __init__(self, seed: int = 16) -> None:
        self.random = random.Random(seed)
        self.serial = 0
        self.events: list[WireEvent] = []
        self.staff_reports: list[UUID] = []
        for month in range(12):
            first = START_OF_YEAR.replace(month=month + 1)
            for _ in range(BACKGROUND_PER_MONTH):
                department = self.random.choice(DEPARTMENTS[1:]) if self.random.random() < 0.8 else "Ward 3"
                categories = self.random.sample(BACKGROUND_CATEGORIES[:6], self.random.choice((1, 1, 2)))
                self.complaint(first, department, categories)
            for _ in range(planted_per_month(month)):
                self.complaint(first, PLANTED_DEPARTMENT, [PLANTED_CATEGORY])
            self.complaint(first, self.random.choice(DEPARTMENTS), [], channel="staff_report")
        self.events.sort(key=lambda event: (event.recorded_at, str(event.event_id)))

    def next_id(self) -> UUID:
        self.serial += 1
        return UUID(int=self.serial)

    def on(self, kind: type[WireEvent], complaint_id: UUID, at: datetime, **fields: Any) -> WireEvent:
        event = kind(
            event_id=self.next_id(), complaint_id=complaint_id, occurred_at=at, recorded_at=at, **fields
        )
        self.events.append(event)
        return event

    def complaint(self, month: datetime, department: str, categories: list[str], channel: str = "") -> None:
        complaint_id = self.next_id()
        occurred = month + timedelta(days=self.random.randrange(27), minutes=self.random.randrange(1440))
        channel = channel or self.random.choice(CHANNELS)
        tier = self.random.choice(("minor", "minor", "complex", "major"))
        self.events.append(
            complaint_received(
                complaint_id=complaint_id,
                event_id=self.next_id(),
                occurred_at=occurred,
                recorded_at=occurred + timedelta(minutes=10),
                channel=channel,
                department=department,
                category="medication" if PLANTED_CATEGORY in categories else None,
                tier=tier,
            )
        )
        registered = occurred + timedelta(minutes=10)
        self.on(
            EscalationStarted, complaint_id, registered, policy_version="p", tier=tier, tier_reason="intake"
        )
        if channel == "staff_report":
            self.staff_reports.append(complaint_id)
            return
        responded = occurred + timedelta(minutes=self.random.randrange(20, 600))
        self.on(
            FirstResponseRecorded,
            complaint_id,
            responded,
            by="n-001",
            patient_reached=True,
            within_window=responded < occurred + timedelta(hours=2),
        )
        fed_back = occurred + timedelta(hours=self.random.randrange(24, 24 * 14))
        self.on(DutyFulfilled, complaint_id, fed_back, duty="patient_feedback", by="sv-003", how="letter")
        if categories and self.random.random() < 0.95:
            self.code(complaint_id, fed_back, categories, blind=False)
            if self.random.random() < 0.2:
                self.code(complaint_id, fed_back + timedelta(hours=1), categories, blind=True)
        if self.random.random() < 0.05:
            harassment = self.random.random() < 0.4
            self.on(
                HarassmentAssessed,
                complaint_id,
                responded,
                by="q-001",
                demand_valid=not harassment,
                means_appropriate=not harassment,
                impact_on_staff=harassment,
                is_harassment=harassment,
                second_line="q-002" if harassment else None,
                protected_staff=None,
            )
        if self.random.random() < 0.3:
            self.on(
                CallbackCompleted,
                complaint_id,
                fed_back + timedelta(days=2),
                callback_id=self.next_id(),
                purpose="after_closure",
                by="cb-001",
                attempt=1,
                satisfaction=self.random.randint(1, 5),
                resolved=self.random.random() < 0.7,
            )
        if PLANTED_CATEGORY in categories and self.staff_reports and self.random.random() < 0.3:
            self.on(
                SafetyEventLinked,
                complaint_id,
                fed_back,
                adverse_event_id=self.staff_reports[-1],
                linked_by="q-001",
            )
        if month.month == 6 and PLANTED_CATEGORY in categories and not self.has_notice():
            self.notice(complaint_id, fed_back)
        self.on(CaseClosed, complaint_id, fed_back + timedelta(minutes=5), by="sv-003")

    def code(self, complaint_id: UUID, at: datetime, categories: list[str], blind: bool) -> None:
        severities = {c: self.random.randint(1, 3) for c in categories}
        if blind and self.random.random() < 0.25:  # a second coder does not always see the same
            severities = {self.random.choice(BACKGROUND_CATEGORIES): self.random.randint(1, 3)}
        self.on(
            CaseCoded,
            complaint_id,
            at,
            coded_by="q-002" if blind else "q-001",
            blind=blind,
            severities=severities,
            harm=self.random.randint(0, 3),
            stage="care_on_the_ward",
        )

    def has_notice(self) -> bool:
        return any(isinstance(event, LearningNoticeIssued) for event in self.events)

    def notice(self, complaint_id: UUID, at: datetime) -> None:
        """To Ward 3 (action complete), Ward 5 (not applicable) and Cardiology (never answered)."""
        responsible = {"Ward 3": "sv-003", "Ward 5": "sv-005", "Cardiology": "sv-007"}
        due = at + timedelta(days=14)
        notice = {"notice_id": NOTICE_ID}
        self.on(
            LearningNoticeIssued,
            complaint_id,
            at,
            **notice,
            issued_by="q-001",
            departments=list(responsible),
            responsible=responsible,
            categories=["safety"],
            due_at=due,
        )
        for n, department in enumerate(("Ward 3", "Ward 5")):
            read_at = at + timedelta(days=1 + n)
            who = responsible[department]
            self.on(LearningNoticeRead, complaint_id, read_at, **notice, department=department, read_by=who)
            answer = "action_complete" if department == "Ward 3" else "not_applicable"
            reason = REASON_NOT_APPLICABLE if answer == "not_applicable" else None
            self.on(
                LearningNoticeAnswered,
                complaint_id,
                read_at + timedelta(days=3),
                **notice,
                department=department,
                answered_by=who,
                answer=answer,
                reason=reason,
            )
        self.on(LearningNoticeOverdue, complaint_id, due, **notice, department="Cardiology", due_at=due)


def chained_record(
    events: list[WireEvent], keys: dict[str, SigningKey], every: int = 200
) -> Iterator[RecordMessage]:
    """The events as the relays publish them: each service's own hash chain, its head signed in a
    checkpoint every ``every`` links and at the end."""
    heads: dict[str, Link] = {}
    signed: dict[str, int] = {}
    sequence = 0

    def message(wire: WireEvent, service: str, message_id: str) -> RecordMessage:
        nonlocal sequence
        sequence += 1
        payload = encode_event(wire)
        headers = chained(wire.subject, headers_for(wire, message_id), payload, heads.get(service, START))
        heads[service] = Link.of(headers)
        return RecordMessage(sequence, wire.subject, headers, payload)

    def checkpoint(service: str, at: datetime) -> RecordMessage:
        head = heads[service]
        signed[service] = head.index + 1  # the checkpoint is the chain's next link
        statement = CheckpointSigned(
            event_id=UUID(int=2**64 + sequence),
            occurred_at=at,
            recorded_at=at,
            signed_by=service,
            head_index=head.index,
            head_hash=head.hash,
            public_key=keys[service].public_key,
            signature=keys[service].sign(checkpoint_statement(service, head)),
        )
        return message(statement, service, f"{service}:{head.index}:checkpoint")

    for wire in events:
        service = wire.service
        yield message(wire, service, f"{service}:{heads.get(service, START).index + 1}")
        if heads[service].index - signed.get(service, 0) >= every:
            yield checkpoint(service, wire.recorded_at)
    for service in sorted(heads):
        if heads[service].index != signed.get(service):
            yield checkpoint(service, events[-1].recorded_at)
