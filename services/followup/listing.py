"""What the callback lists read instead of every callback ever scheduled: each complaint's own index,
and the callbacks still open."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import ProcessRecorder
from eventsourcing.utils import get_topic

from services.followup.domain import Callback, CallbackStatus
from shared.store import stable_id

OPEN_STATUSES: frozenset[CallbackStatus] = frozenset({"scheduled", "due", "overdue"})
SCHEDULED = get_topic(Callback.Scheduled)
CLOSED = frozenset({get_topic(Callback.Completed), get_topic(Callback.Abandoned)})
PAGE = 500


class ComplaintCallbacks(Aggregate):
    """A complaint's callbacks in the order they were scheduled, stored with each one's scheduling."""

    class Indexed(Aggregate.Created):
        complaint_id: UUID

    class Added(Aggregate.Event):
        callback_id: UUID

    @staticmethod
    def create_id(complaint_id: UUID) -> UUID:
        return stable_id("callbacks", complaint_id)

    @event(Indexed)
    def __init__(self, complaint_id: UUID) -> None:
        self.complaint_id = complaint_id
        self.callback_ids: list[UUID] = []

    @event(Added)
    def add(self, callback_id: UUID) -> None:
        self.callback_ids.append(callback_id)


class CallbacksIndexed(Aggregate):
    """Kept once the callbacks scheduled before ``ComplaintCallbacks`` existed are in it: from then on a
    complaint without an index entry has no callbacks."""

    ID = stable_id("callbacks-indexed")

    class Done(Aggregate.Created):
        pass

    @staticmethod
    def create_id() -> UUID:
        return CallbacksIndexed.ID

    @event(Done)
    def __init__(self) -> None:
        pass


def notifications_of(
    recorder: ProcessRecorder, start: int, topics: list[str]
) -> Iterator[tuple[int, str, UUID]]:
    """Position, topic and callback id of each stored notification of those topics from ``start`` on."""
    while page := recorder.select_notifications(start, PAGE, topics=topics):
        for notification in page:
            yield notification.id, notification.topic, UUID(str(notification.originator_id))
        start = page[-1].id + 1


class OpenCallbacks:
    """The ids of the callbacks still open, in scheduling order, kept by reading the store's log from
    where the last request stopped: a request reads only what was stored since, and no closed callback.
    In memory, so each process reads the log once after it starts (as the outbox relay does)."""

    def __init__(self, recorder: Callable[[], ProcessRecorder]) -> None:
        self._recorder = recorder
        self._open: dict[UUID, None] = {}  # a dict keeps the scheduling order
        self._position = 0
        self._lock = threading.Lock()  # the API reads it from several worker threads

    def ids(self) -> list[UUID]:
        with self._lock:
            topics = [SCHEDULED, *CLOSED]
            for position, topic, callback_id in notifications_of(
                self._recorder(), self._position + 1, topics
            ):
                if topic == SCHEDULED:
                    self._open[callback_id] = None
                else:
                    self._open.pop(callback_id, None)
                self._position = position
            return list(self._open)
