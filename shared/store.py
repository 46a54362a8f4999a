"""The store every service keeps: an eventsourcing application whose notification log is its outbox."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from copy import deepcopy
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, AggregateEvent, DomainEventProtocol
from eventsourcing.persistence import IntegrityError, ProcessRecorder, StoredEvent, Tracking
from eventsourcing.popo import POPOFactory, POPOProcessRecorder
from eventsourcing.postgres import PostgresProcessRecorder
from eventsourcing.sqlite import SQLiteProcessRecorder
from eventsourcing.utils import EnvType, get_topic
from psycopg.sql import SQL, Identifier

from shared.events import MessageRejected, MessageTakenUp, WireEvent
from shared.ids import stable_id as stable_id  # services import it from here
from shared.recorders import RECORDER_TOPICS, InMemoryRecorder, Recorder
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

log = logging.getLogger(__name__)


@dataclass
class _Handled:
    """What handling one message recorded, kept in memory until its batch is stored."""

    stored: list[StoredEvent] = field(default_factory=list)
    trackings: list[Tracking] = field(default_factory=list)
    aggregates: dict[UUID, Aggregate] = field(default_factory=dict)
    after: list[Callable[[], None]] = field(default_factory=list)


# The messages being handled together in this thread, while ``store_together`` runs.
_together: ContextVar[list[_Handled] | None] = ContextVar("together", default=None)


def _with_subclasses(kinds: Iterable[type]) -> Iterator[type]:
    for kind in kinds:
        yield kind
        yield from _with_subclasses(kind.__subclasses__())


def projected(aggregate: Aggregate | None, events: Iterable[DomainEventProtocol[UUID]]) -> Aggregate | None:
    """eventsourcing's projection of an aggregate, without its check that each event can mutate (a
    runtime protocol check per event, a twentieth of a consumer's time): every stored event is an
    aggregate's event."""
    for event in events:
        aggregate = event.mutate(aggregate)  # type: ignore[attr-defined]
    return aggregate


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

    def construct_env(self, name: str, env: EnvType | None = None) -> Any:
        """eventsourcing's environment, with the services' recorders (shared/recorders.py) configured."""
        environment = super().construct_env(name, env)
        topic = RECORDER_TOPICS.get(environment.get("PERSISTENCE_MODULE", ""))
        if topic is not None and not environment.get("PROCESS_RECORDER_TOPIC"):
            environment["PROCESS_RECORDER_TOPIC"] = topic
        return environment

    def construct_recorder(self) -> ProcessRecorder:
        if isinstance(self.factory, POPOFactory):  # it takes no recorder topic
            return InMemoryRecorder()
        return self.factory.process_recorder()

    @property
    def process_recorder(self) -> ProcessRecorder:
        assert isinstance(self.recorder, ProcessRecorder)
        return self.recorder

    def after_each_commit(self, committed: Callable[[], None]) -> None:
        """Have ``committed`` called after every transaction that stored events that may go on the
        record (``published_topics``), in the thread that stored them (the service's runtime wakes its
        relay with it). A transaction of events the service keeps for itself wakes no one (the
        console's every one, most of followup's)."""
        assert isinstance(self.recorder, Recorder)
        published = frozenset(self.published_topics)

        def after(stored: Sequence[StoredEvent]) -> None:
            if any(event.topic in published for event in stored):
                committed()

        self.recorder.after_commit = after

    def record(self, *aggregates: Aggregate, tracking: Tracking | None = None) -> None:
        """Store the aggregates' new events, and the tracking record if given, atomically; while
        messages are handled together (``store_together``), with the others of the batch."""
        pending = [new for aggregate in aggregates for new in aggregate.collect_events()]
        together = _together.get()
        if together is None:
            self.events.put(pending, tracking=tracking)
            return
        handled = together[-1]
        handled.stored.extend(self.mapper.to_stored_event(new) for new in pending)  # in the message's span
        handled.trackings.extend([tracking] if tracking is not None else [])
        handled.aggregates.update((aggregate.id, aggregate) for aggregate in aggregates)

    def when_stored(self, then: Callable[[], None]) -> None:
        """Do ``then`` once what was recorded is stored: at once, or when the batch is (an effect outside
        the store, such as a read model in memory, must not run ahead of the commit)."""
        together = _together.get()
        if together is None:
            then()
        else:
            together[-1].after.append(then)

    def store_together(self, handlers: Iterable[Callable[[], None]]) -> int:
        """Run each message's handler in turn, keeping what it records in memory (a later one finds what
        an earlier one recorded), then store everything with every tracking record in one transaction.

        Stops at the first handler that raises: nothing it recorded is kept, and it is left to be handled
        by itself, the way that says what its fault is. Returns how many handlers ran and were stored: 0
        when storing them failed (a conflict with a person's action, a passing fault), and then each is
        to be handled by itself."""
        together: list[_Handled] = []
        token = _together.set(together)
        try:
            for handler in handlers:
                together.append(_Handled())
                try:
                    handler()
                except Exception:
                    together.pop()
                    break
        finally:
            _together.reset(token)
        if not together:
            return 0
        stored = [event for handled in together for event in handled.stored]
        trackings = [tracking for handled in together for tracking in handled.trackings]
        try:
            self.recorder.insert_events(stored, trackings=trackings)
        except Exception as failed:
            log.info("%s: %d messages stored one by one: %r", self.service, len(together), failed)
            return 0
        for handled in together:
            for then in handled.after:
                then()
        return len(together)

    def has_processed(self, tracking: Tracking) -> bool:
        """Whether this very message was processed."""
        sequence = tracking.notification_id
        return sequence in self.processed_among(tracking.application_name, [sequence])

    def processed_among(self, stream: str, sequences: Sequence[int]) -> set[int]:
        """Which of these messages of the stream were processed, each by its own tracking record. Not
        eventsourcing's ``has_tracking_id``, which answers from the highest id recorded: after a crash
        JetStream redelivers what the dead process held behind newer messages, and those would be taken
        as done and acked unprocessed."""
        if not sequences:
            return set()
        recorder = self.process_recorder
        match recorder:
            case SQLiteProcessRecorder():
                with recorder.datastore.transaction(commit=False) as cursor:
                    marks = ",".join("?" * len(sequences))
                    cursor.execute(
                        "SELECT notification_id FROM tracking"
                        f" WHERE application_name=? AND notification_id IN ({marks})",
                        (stream, *sequences),
                    )
                    return {row[0] for row in cursor.fetchall()}
            case PostgresProcessRecorder():
                statement = SQL(
                    "SELECT notification_id FROM {}.{} WHERE application_name=%s AND notification_id=ANY(%s)"
                )
                table = (Identifier(recorder.datastore.schema), Identifier(recorder.tracking_table_name))
                with recorder.datastore.transaction(commit=False) as cursor:
                    cursor.execute(statement.format(*table), (stream, list(sequences)), prepare=True)
                    return {row["notification_id"] for row in cursor.fetchall()}
            case POPOProcessRecorder():  # in memory, for tests of the rules: messages come in order
                return {n for n in sequences if recorder.has_tracking_id(stream, n)}
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

    @cached_property
    def published_topics(self) -> tuple[str, ...]:
        """The topics of the stored events that may go on the record (``wire_event`` may still keep one
        inside): the relay reads only these, not every event the store keeps for itself."""
        kinds: list[type] = [RejectedMessage.Rejected, RejectedMessage.TakenUp, UnpublishedEvent.TakenUp]
        if self.publishes is not None:
            kinds += [row.domain for row in self.publishes.rows]
        return tuple(dict.fromkeys(get_topic(kind) for kind in _with_subclasses(kinds)))

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
        """Timers to set on the bus for the wire event, once it is published (shared/outbox.py)."""
        return []

    def keys_for(self, wire_event: WireEvent) -> list[tuple[UUID, bytes | None]]:
        """Patient data keys to put in the key bucket (wrapped) or destroy there (None), before the wire
        event is published."""
        return []

    def find(self, kind: type[Found], aggregate_id: UUID) -> Found | None:
        """The aggregate of that kind with that id, or None if there is none; while messages are handled
        together, as an earlier one of them left it."""
        for handled in reversed(_together.get() or ()):
            if aggregate_id in handled.aggregates:
                recorded = handled.aggregates[aggregate_id]
                return deepcopy(recorded) if isinstance(recorded, kind) else None
        try:
            found: Aggregate = self.repository.get(aggregate_id, projector_func=projected)
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
