"""The store every service keeps: an eventsourcing application whose notification log is its outbox."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, AggregateEvent, DomainEventProtocol
from eventsourcing.persistence import IntegrityError, ProcessRecorder, Tracking
from eventsourcing.popo import POPOProcessRecorder
from eventsourcing.postgres import PostgresProcessRecorder
from eventsourcing.sqlite import SQLiteProcessRecorder
from psycopg.sql import SQL, Identifier

from shared.events import MessageRejected, MessageTakenUp, WireEvent
from shared.ids import stable_id as stable_id  # services import it from here
from shared.set_aside import SET_ASIDE_TOPICS, NotSetAside, RejectedMessage, SetAside, UnpublishedEvent
from shared.timers import Timer, now
from shared.tracing import TracedMapper

if TYPE_CHECKING:  # shared.messages builds on this module
    from shared.messages import Publishes

Found = TypeVar("Found", bound=Aggregate)
Wire = TypeVar("Wire", bound=WireEvent)
Result = TypeVar("Result")
WIRE_ONLY_FIELDS = frozenset({"type", "version", "event_id", "recorded_at"})

# An action and a timer fire can meet on the same aggregate; the loser tries again on the new state.
ATTEMPTS_ON_CONFLICT = 5


class ServiceApplication(Application[UUID]):
    """Base of every service's store.

    Events and the tracking record of the bus message that caused them are written in
    one transaction, so a redelivered message is recognised and changes nothing.
    """

    service: ClassVar[str]
    # What the service publishes (its message table, shared/messages.py); none for one that only reads.
    publishes: ClassVar[Publishes | None] = None
    mapper: TracedMapper
    # Aggregates kept in memory (eventsourcing's aggregate cache), fast-forwarded from the store on each
    # read and copied for each use: handling an event no longer replays every earlier one of its
    # aggregate, and what another writer stored is still read.
    env: ClassVar[dict[str, str]] = {"AGGREGATE_CACHE_MAXSIZE": "20000"}

    def construct_mapper(self) -> TracedMapper:
        mapper = self.factory.mapper(transcoder=self.construct_transcoder(), mapper_class=TracedMapper)
        assert isinstance(mapper, TracedMapper)
        return mapper

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
        """Whether this very message was processed. Not eventsourcing's ``has_tracking_id``, which
        answers from the highest id recorded: after a crash JetStream redelivers what the dead process
        held behind newer messages, and those would be taken as done and acked unprocessed."""
        recorder = self.process_recorder
        match recorder:
            case SQLiteProcessRecorder():
                with recorder.datastore.transaction(commit=False) as cursor:
                    cursor.execute(
                        "SELECT 1 FROM tracking WHERE application_name=? AND notification_id=?",
                        (tracking.application_name, tracking.notification_id),
                    )
                    return cursor.fetchone() is not None
            case PostgresProcessRecorder():
                statement = SQL("SELECT 1 FROM {}.{} WHERE application_name=%s AND notification_id=%s")
                table = (Identifier(recorder.datastore.schema), Identifier(recorder.tracking_table_name))
                with recorder.datastore.transaction(commit=False) as cursor:
                    cursor.execute(
                        statement.format(*table),
                        (tracking.application_name, tracking.notification_id),
                        prepare=True,
                    )
                    return cursor.fetchone() is not None
            case POPOProcessRecorder():  # in memory, for tests of the rules: messages come in order
                return recorder.has_tracking_id(tracking.application_name, tracking.notification_id)
        raise TypeError(f"no exact tracking check for {type(recorder).__name__}")

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

    def set_aside(self) -> list[SetAside]:
        """Everything this service set aside and has not taken up again, oldest first. Reads the
        store's set-aside records only (at start, and for the administrator's list), never per message."""
        pending: dict[UUID, SetAside] = {}
        start = 1
        while batch := self.process_recorder.select_notifications(start, 500, topics=SET_ASIDE_TOPICS):
            for notification in batch:
                found = self.mapper.to_domain_event(notification)
                if isinstance(found, RejectedMessage.Rejected | UnpublishedEvent.SetAside):
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

    def unpublished(self, notification_id: int, wire: WireEvent, size: int, reason: str) -> bool:
        """Keep that the bus refused this stored event for good; False if that is kept already."""
        try:
            self.save(
                UnpublishedEvent(
                    notification_id=notification_id,
                    event_type=wire.type_name(),
                    size=size,
                    reason=reason[:2000],
                    complaint_id=wire.complaint_id,
                    occurred_at=now(),
                )
            )
        except IntegrityError:
            return False
        return True

    def take_up_unpublished(self, notification_id: int, requested_by: str) -> None:
        """Have the relay publish the stored event now; once only."""
        unpublished = self.find(UnpublishedEvent, UnpublishedEvent.create_id(notification_id))
        if unpublished is None or unpublished.taken_up:
            raise NotSetAside(f"{self.service} has no event {notification_id} of its outbox set aside")
        unpublished.take_up(notification_id, requested_by, now())
        self.save(unpublished)

    def stored_wire_event(self, notification_id: int) -> WireEvent | None:
        """The wire event of a stored notification, read again (an event set aside, taken up)."""
        [notification] = self.process_recorder.select_notifications(notification_id, 1)
        return self.wire_event(self.mapper.to_domain_event(notification))

    def wire_event(self, domain_event: DomainEventProtocol[UUID]) -> WireEvent | None:
        """The event to put on the record for one stored event, or None if it stays inside."""
        if self.publishes is not None and (wire := self.publishes.wire_event(self, domain_event)) is not None:
            return wire
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
        if isinstance(domain_event, UnpublishedEvent.TakenUp):
            return self.stored_wire_event(domain_event.notification_id)
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
