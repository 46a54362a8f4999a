"""The store every service keeps: an eventsourcing application whose notification log is its outbox."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, AggregateEvent, DomainEventProtocol, event
from eventsourcing.persistence import IntegrityError, ProcessRecorder, Tracking
from eventsourcing.utils import get_topic

from shared.events import MessageRejected, MessageTakenUp, WireEvent
from shared.timers import Timer, now

Found = TypeVar("Found", bound=Aggregate)
Wire = TypeVar("Wire", bound=WireEvent)
Result = TypeVar("Result")
WIRE_ONLY_FIELDS = frozenset({"type", "version", "event_id", "recorded_at"})

KIZUKI_NAMESPACE = uuid5(NAMESPACE_URL, "https://kizuki.invalid/")
# An action and a timer fire can meet on the same aggregate; the loser tries again on the new state.
ATTEMPTS_ON_CONFLICT = 5


def stable_id(*parts: object) -> UUID:
    """A UUID that is the same every time for the same parts: retries and replays agree on it."""
    return uuid5(KIZUKI_NAMESPACE, ":".join(str(part) for part in parts))


class RejectedMessage(Aggregate):
    """A message from the bus that this service set aside, with the reason."""

    class Rejected(Aggregate.Created):
        stream: str
        stream_sequence: int
        message_subject: str
        reason: str
        complaint_id: UUID | None
        occurred_at: datetime

    @staticmethod
    def create_id(stream: str, stream_sequence: int, **_: Any) -> UUID:
        return stable_id("rejected", stream, stream_sequence)

    @event(Rejected)
    def __init__(
        self,
        stream: str,
        stream_sequence: int,
        message_subject: str,
        reason: str,
        complaint_id: UUID | None,
        occurred_at: datetime,
    ) -> None:
        self.stream = stream
        self.stream_sequence = stream_sequence
        self.message_subject = message_subject
        self.reason = reason
        self.complaint_id = complaint_id
        self.occurred_at = occurred_at
        self.taken_up = False

    class TakenUp(Aggregate.Event):
        stream: str
        stream_sequence: int
        complaint_id: UUID | None
        requested_by: str
        occurred_at: datetime

    @event(TakenUp)
    def take_up(
        self,
        stream: str,
        stream_sequence: int,
        complaint_id: UUID | None,
        requested_by: str,
        occurred_at: datetime,
    ) -> None:
        """The message was handled again, at an administrator's request, once its cause was fixed.
        (Stream, sequence and complaint are repeated so that the event goes on the record by itself.)"""
        self.taken_up = True


SET_ASIDE_TOPICS = (get_topic(RejectedMessage.Rejected), get_topic(RejectedMessage.TakenUp))


def taken_up_tracking(stream: str, stream_sequence: int) -> Tracking:
    """The tracking record of a set-aside message handled again: it is handled again only once."""
    return Tracking(f"{stream}:taken-up", stream_sequence)


class ServiceApplication(Application[UUID]):
    """Base of every service's store.

    Events and the tracking record of the bus message that caused them are written in
    one transaction, so a redelivered message is recognised and changes nothing.
    """

    service: ClassVar[str]

    def construct_recorder(self) -> ProcessRecorder:
        return self.factory.process_recorder()

    @property
    def process_recorder(self) -> ProcessRecorder:
        assert isinstance(self.recorder, ProcessRecorder)
        return self.recorder

    def record(self, *aggregates: Aggregate, tracking: Tracking | None = None) -> None:
        """Store the aggregates' new events, and the tracking record if given, atomically."""
        pending = [new for aggregate in aggregates for new in aggregate.collect_events()]
        self.events.put(pending, tracking=tracking)

    def has_processed(self, tracking: Tracking) -> bool:
        # Exact because every consumer keeps one message in flight: sequences arrive in order.
        return self.process_recorder.has_tracking_id(tracking.application_name, tracking.notification_id)

    def reject(
        self, tracking: Tracking, message_subject: str, reason: str, complaint_id: UUID | None
    ) -> None:
        rejection = RejectedMessage(
            stream=tracking.application_name,
            stream_sequence=tracking.notification_id,
            message_subject=message_subject,
            reason=reason[:2000],
            complaint_id=complaint_id,
            occurred_at=now(),
        )
        self.record(rejection, tracking=tracking)

    def set_aside(self) -> list[RejectedMessage.Rejected]:
        """Every message this service set aside and has not taken up again, oldest first. Reads the
        store's rejections only (at start, and for the administrator's list), never per message."""
        pending: dict[UUID, RejectedMessage.Rejected] = {}
        start = 1
        while batch := self.process_recorder.select_notifications(start, 500, topics=SET_ASIDE_TOPICS):
            for notification in batch:
                found = self.mapper.to_domain_event(notification)
                if isinstance(found, RejectedMessage.Rejected):
                    pending[found.originator_id] = found
                else:
                    pending.pop(found.originator_id, None)
            start = batch[-1].id + 1
        return list(pending.values())

    def rejection(self, stream: str, stream_sequence: int) -> RejectedMessage | None:
        return self.find(RejectedMessage, RejectedMessage.create_id(stream, stream_sequence))

    def taken_up(self, rejection: RejectedMessage, requested_by: str) -> None:
        rejection.take_up(
            rejection.stream, rejection.stream_sequence, rejection.complaint_id, requested_by, now()
        )
        self.save(rejection)

    def wire_event(self, domain_event: DomainEventProtocol[UUID]) -> WireEvent | None:
        """The event to put on the record for one stored event, or None if it stays inside."""
        if isinstance(domain_event, RejectedMessage.Rejected):
            return MessageRejected(
                **self.wire_fields(domain_event),
                complaint_id=domain_event.complaint_id,
                occurred_at=domain_event.occurred_at,
                rejected_by=self.service,
                stream=domain_event.stream,
                stream_sequence=domain_event.stream_sequence,
                message_subject=domain_event.message_subject,
                reason=domain_event.reason,
            )
        if isinstance(domain_event, RejectedMessage.TakenUp):
            return MessageTakenUp(
                **self.wire_fields(domain_event),
                complaint_id=domain_event.complaint_id,
                occurred_at=domain_event.occurred_at,
                taken_up_by=self.service,
                stream=domain_event.stream,
                stream_sequence=domain_event.stream_sequence,
                requested_by=domain_event.requested_by,
            )
        return None

    def timers_for(self, wire_event: WireEvent) -> list[Timer]:
        """Timers to set on the bus, before the wire event is published."""
        return []

    def keys_for(self, wire_event: WireEvent) -> list[tuple[UUID, bytes | None]]:
        """Patient data keys to put in the key bucket (wrapped) or destroy there (None), before the wire
        event is published."""
        return []

    def find(self, kind: type[Found], aggregate_id: UUID) -> Found | None:
        """The aggregate of that kind with that id, or None if there is none."""
        try:
            found: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, kind) else None

    def act_on(
        self, kind: type[Found], aggregate_id: UUID, action: Callable[[Found], Result]
    ) -> Result | None:
        """Apply a person's action to an aggregate and store it; None when there is no such aggregate."""
        for attempt in range(ATTEMPTS_ON_CONFLICT):
            aggregate = self.find(kind, aggregate_id)
            if aggregate is None:
                return None
            result = action(aggregate)
            try:
                self.save(aggregate)
            except IntegrityError:
                if attempt == ATTEMPTS_ON_CONFLICT - 1:
                    raise
                continue
            return result
        raise AssertionError("unreachable")

    def act_on_all(self, acts: Sequence[tuple[Found, Callable[[Found], object]]]) -> list[Found | Exception]:
        """Apply each action to its aggregate as the caller last read it, and store them all in one
        transaction. When that conflicts (another writer changed one of them meanwhile), each is stored
        by itself, and the one in conflict is read again and acted on anew as in ``act_on``: no action is
        lost to another's conflict. For each action, in order: its aggregate as stored, or the exception
        it raised (nothing of that action is stored, and the caller's aggregate is not to be used)."""
        outcomes: list[Found | Exception] = []
        pending: list[list[DomainEventProtocol[UUID]]] = []
        for aggregate, action in acts:
            try:
                action(aggregate)
            except Exception as refused:
                outcomes.append(refused)
                pending.append([])
            else:
                outcomes.append(aggregate)
                pending.append(list(aggregate.collect_events()))
        try:
            self.events.put([new for events in pending for new in events])
        except IntegrityError:
            for index, ((aggregate, action), events) in enumerate(zip(acts, pending, strict=True)):
                if not events:
                    continue
                try:
                    self.events.put(events)
                except IntegrityError:
                    outcomes[index] = self._acted_on_again(aggregate, action)
        return outcomes

    def _acted_on_again(self, stale: Found, action: Callable[[Found], object]) -> Found | Exception:
        def acted(aggregate: Found) -> Found:
            action(aggregate)
            return aggregate

        try:
            again = self.act_on(type(stale), stale.id, acted)
        except Exception as failed:
            return failed
        return again if again is not None else AggregateNotFoundError(stale.id)

    def copied_to_wire(self, wire_class: type[Wire], domain_event: AggregateEvent, **given: Any) -> Wire:
        """The wire event with every field the domain event has under the same name, plus ``given``."""
        copied = {
            name: getattr(domain_event, name)
            for name in wire_class.model_fields
            if name not in given and name not in WIRE_ONLY_FIELDS and hasattr(domain_event, name)
        }
        return wire_class(**self.wire_fields(domain_event), **copied, **given)

    def wire_fields(self, domain_event: AggregateEvent) -> dict[str, Any]:
        return {
            "event_id": stable_id(self.service, domain_event.originator_id, domain_event.originator_version),
            "recorded_at": domain_event.timestamp,
        }
