"""Escalation's store rebuilt from the record alone: its own events, turned back into the events of its
cases at the same versions and the same places of its outbox, and the complaints it consumed.

Every event of a case is on the record, field for field, except two texts that stay in the store: a
report's text to an executive and the sealed notes of an apology call (``STORE_ONLY``). The store's
other entries (the index of references, the index of learning notices) are derived again. The outbox is
rebuilt in the same order, so that the relay, which resumes from the record, publishes none of it again
and numbers the service's next event after the last one on the record. The timers its open work waits
for are named again (``waiting_timers``), to be set again: a fire for work already done changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import Tracking
from eventsourcing.utils import get_topic

from services.escalation.application import (
    ALERT_RULE,
    DEADLINE_RULE,
    NOTICE_DEADLINE_RULE,
    PUBLISHES,
    EscalationApplication,
    of_case,
    of_duty,
)
from services.escalation.case_notices import NoticesOfCase
from services.escalation.domain import Case
from services.escalation.notices import LEARNING_NOTICE, NoticeIndex
from shared.events import (
    AlertRequested,
    CaseReopened,
    CaseReopenRequested,
    ComplaintReceived,
    DutyAssigned,
    EscalationStarted,
    EventSetAside,
    LearningNoticeIssued,
    MessageRejected,
    MessageTakenUp,
    WireEvent,
)
from shared.reference import indexed
from shared.set_aside import RejectedMessage
from shared.timers import Timer

# Facts of a case the record does not hold: a rebuilt case has them empty.
STORE_ONLY = {"text": "", "notes": ""}
BATCH = 500
ALERT_FIELDS = ("tier", "recipient", "alert_number", "attempt", "due_at", "next_alert_at")
# What people did and what deadlines did, copied field for field (``at`` and ``kind`` under their wire
# names): read back the same way.
DOMAIN_OF = {row.wire: row.domain for row in PUBLISHES.rows if row.given in (of_case, of_duty)}
BASE_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic"}


class CannotRebuild(Exception):
    """The record does not hold what the store needs; the message names it."""


@dataclasses.dataclass(frozen=True)
class Relayed:
    """One event of the service on the record, at its place in the outbox (its notification id)."""

    notification_id: int
    event: WireEvent


class EscalationRebuild:
    """Writes the rebuilt store, one relayed event after another, in the order of the outbox."""

    def __init__(self, store: EscalationApplication, complaints: dict[UUID, ComplaintReceived]) -> None:
        """``complaints``: every ComplaintReceived on the record, by complaint."""
        self.store = store
        self.complaints = complaints
        self.versions: dict[UUID, int] = {}
        self.batch: list[DomainEventProtocol[UUID]] = []
        self.written = 0  # the outbox's last notification id so far
        # Entries of the store's indexes, written in the transaction after the case's events: each fills
        # the next place of the outbox that holds no event on the record.
        self.derived: list[Callable[[], Aggregate]] = []
        # Every timer the relayed events set, by key (the last one for a key is the one pending).
        self.timers: dict[str, Timer] = {}

    def rebuild(self, relayed: Iterable[Relayed], processed: list[Tracking]) -> int:
        """Write every relayed event in its place, the indexes between, and the consumers' positions;
        returns how many events the store holds."""
        for item in relayed:
            self._fill_up_to(item.notification_id)
            if item.notification_id != self.placed + 1:
                raise CannotRebuild(
                    f"escalation's event {item.notification_id} ({item.event.type_name()}) comes after "
                    f"event {self.placed} of the rebuilt store: the record's order cannot be followed"
                )
            self._add(self._domain_event(item.event))
            for timer in self.store.timers_for(item.event):
                self.timers[timer.key] = timer
        while self.derived:
            self._write_derived()
        self._flush()
        for tracking in processed:
            self.store.process_recorder.insert_tracking(tracking)
        return self.written

    def waiting_timers(self) -> list[Timer]:
        """The timers the rebuilt store's open work waits for: each chase's next alert, each open duty's
        deadline, each notice's deadline while a department has not answered."""
        cases: dict[UUID, Case | None] = {}

        def case_of(case_id: UUID) -> Case | None:
            if case_id not in cases:
                cases[case_id] = self.store.get_case(case_id)
            return cases[case_id]

        waiting = []
        for timer in self.timers.values():
            if timer.rule == NOTICE_DEADLINE_RULE:
                index = self.store.find(NoticeIndex, timer.aggregate_id)
                case = case_of(index.complaint_id) if index is not None else None
                notice = case.notices.get(timer.aggregate_id) if case is not None else None
                parts = notice.departments.values() if notice is not None else []
                needed = any(part.answer is None and not part.overdue for part in parts)
            elif (case := case_of(timer.aggregate_id)) is None:
                needed = False
            elif timer.rule == ALERT_RULE and timer.part == LEARNING_NOTICE:
                following = timer.attempt - 1
                needed = any(
                    part.last_alert_number == following and part.is_chased
                    for notice in case.notices.values()
                    for part in notice.departments.values()
                )
            elif (duty := case.duties.get(timer.part)) is None:
                needed = False
            elif timer.rule == ALERT_RULE:
                needed = duty.is_chased and duty.alerts_sent == timer.attempt - 1
            else:
                assert timer.rule == DEADLINE_RULE
                needed = duty.is_open and not duty.deadline_passed and duty.due_at == timer.due_at
            if needed:
                waiting.append(timer)
        return waiting

    @property
    def placed(self) -> int:
        """The outbox's last notification id, written or about to be."""
        return self.written + len(self.batch)

    def _fill_up_to(self, notification_id: int) -> None:
        while self.placed + 1 < notification_id:
            if not self.derived:
                missing = f"{self.placed + 1} to {notification_id - 1}"
                raise CannotRebuild(
                    f"escalation's events {missing} are not on the record and are not entries of its "
                    "indexes: they are only in the lost store"
                )
            self._write_derived()

    def _write_derived(self) -> None:
        self._flush()  # an index entry is read from the store as written so far
        entry = self.derived.pop(0)()
        self._add(*entry.collect_events())

    def _add(self, *events: DomainEventProtocol[UUID]) -> None:
        self.batch.extend(events)
        if len(self.batch) >= BATCH:
            self._flush()

    def _flush(self) -> None:
        if self.batch:
            self.store.events.put(self.batch)
        self.written += len(self.batch)
        self.batch = []

    def _next_version(self, aggregate_id: UUID) -> int:
        version = self.versions.get(aggregate_id, 0) + 1
        self.versions[aggregate_id] = version
        return version

    def _domain_event(self, wire: WireEvent) -> DomainEventProtocol[UUID]:
        match wire:
            case EventSetAside():
                raise CannotRebuild(
                    f"escalation's event {wire.notification_id} ({wire.event_type}) was set aside by its "
                    "relay: only the lost store held it"
                )
            case MessageRejected():
                rejection_id = RejectedMessage.create_id(wire.stream, wire.stream_sequence)
                return self._event(
                    RejectedMessage.Rejected,
                    rejection_id,
                    wire,
                    originator_topic=get_topic(RejectedMessage),
                    **_named(wire, "stream", "stream_sequence", "message_subject", "reason", "complaint_id"),
                    occurred_at=wire.occurred_at,
                )
            case MessageTakenUp():
                rejection_id = RejectedMessage.create_id(wire.stream, wire.stream_sequence)
                return self._event(
                    RejectedMessage.TakenUp,
                    rejection_id,
                    wire,
                    **_named(wire, "stream", "stream_sequence", "complaint_id", "requested_by"),
                    occurred_at=wire.occurred_at,
                )
        case_id = wire.complaint_id
        match wire:
            case EscalationStarted():
                return self._started(wire)
            case DutyAssigned():
                return self._event(
                    Case.DutyAssigned,
                    case_id,
                    wire,
                    kind=wire.duty,
                    owner=wire.owner,
                    due_at=wire.due_at,
                    assigned_at=wire.occurred_at,
                    recipients=_recorded(wire, "recipients"),
                    alert=wire.alert.model_dump() if wire.alert is not None else None,
                )
            case AlertRequested():
                alert = _named(wire, *ALERT_FIELDS)
                if wire.duty == LEARNING_NOTICE:
                    notice = {name: _recorded(wire, name) for name in ("notice_id", "department")}
                    return self._event(
                        NoticesOfCase.NoticeAlertRequested,
                        case_id,
                        wire,
                        **notice,
                        **alert,
                        requested_at=wire.occurred_at,
                    )
                return self._event(
                    Case.AlertRequested, case_id, wire, kind=wire.duty, **alert, requested_at=wire.occurred_at
                )
            case LearningNoticeIssued():
                notice_id, complaint_id = wire.notice_id, wire.complaint_id
                self.derived.append(lambda: NoticeIndex(notice_id=notice_id, complaint_id=complaint_id))
        domain = DOMAIN_OF.get(type(wire))
        if domain is None:
            raise CannotRebuild(f"escalation does not keep {wire.type_name()} events")
        return self._event(domain, case_id, wire, **_fields_from(domain, wire))

    def _started(self, wire: EscalationStarted) -> DomainEventProtocol[UUID]:
        complaint = self.complaints.get(wire.complaint_id)
        if complaint is None:
            raise CannotRebuild(f"the record holds no ComplaintReceived for the case {wire.complaint_id}")
        self.derived.append(lambda: indexed(self.store, wire.complaint_id))
        return self._event(
            Case.Started,
            wire.complaint_id,
            wire,
            originator_topic=get_topic(Case),
            complaint_occurred_at=complaint.occurred_at,
            registered_at=complaint.recorded_at,
            opened_at=wire.occurred_at,
            **_named(wire, "policy_version", "tier", "tier_reason"),
            chase=_recorded(wire, "chase"),
            calendar=_recorded(wire, "calendar"),
            **_named(complaint, "heard_by", "department", "channel", "category"),
        )

    def _event(
        self, event_class: type[Any], aggregate_id: UUID, wire: WireEvent, /, **fields: Any
    ) -> DomainEventProtocol[UUID]:
        """The event of that class, next of its aggregate, stored when the record says it was."""
        made: DomainEventProtocol[UUID] = event_class(
            originator_id=aggregate_id,
            originator_version=self._next_version(aggregate_id),
            timestamp=wire.recorded_at,
            **fields,
        )
        return made


def handled_before(stream: str, sequence: int, consumed: WireEvent | None, relayed: list[Relayed]) -> bool:
    """Whether the record shows that the lost store handled this consumed message (``None``: it does not
    decode), delivered and not yet acknowledged when the service stopped: it set it aside, or opened its
    case, or reopened the case as asked. Handling any other consumed message again changes nothing."""
    if any(
        isinstance(item.event, MessageRejected)
        and (item.event.stream, item.event.stream_sequence) == (stream, sequence)
        for item in relayed
    ):
        return True
    if isinstance(consumed, ComplaintReceived):
        return any(
            isinstance(item.event, EscalationStarted) and item.event.complaint_id == consumed.complaint_id
            for item in relayed
        )
    if isinstance(consumed, CaseReopenRequested):
        return any(
            isinstance(item.event, CaseReopened) and item.event.callback_id == consumed.callback_id
            for item in relayed
        )
    return False


def _named(source: object, *names: str) -> dict[str, Any]:
    return {name: getattr(source, name) for name in names}


def _recorded(wire: WireEvent, name: str) -> Any:
    """A fact recorded on the wire since a later version: a record written before cannot rebuild it."""
    value = getattr(wire, name)
    if value is None:
        raise CannotRebuild(
            f"the record's {wire.type_name()} of case {wire.complaint_id} was written before {name} was "
            "recorded: only the lost store held it"
        )
    return value


def _fields_from(domain: type, wire: WireEvent) -> dict[str, Any]:
    """A person's action or a deadline, field for field (as ``copied_to_wire`` wrote it)."""
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(domain):
        name = field.name
        if name in BASE_FIELDS:
            continue
        if name == "at":
            fields[name] = wire.occurred_at
        elif name == "kind":
            fields[name] = wire.duty  # type: ignore[attr-defined]  # every event with a kind has a duty
        elif name in STORE_ONLY:
            fields[name] = STORE_ONLY[name]
        elif name == "recipients":
            fields[name] = _recorded(wire, name)
        else:
            fields[name] = getattr(wire, name)
    return fields
