"""The services' recorders: eventsourcing's process recorders, configured (``PROCESS_RECORDER_TOPIC``)
to do two things more.

- Store the events of a whole batch of bus messages with a tracking record for each message, in one
  transaction (``trackings=``): a transaction per message was most of a consumer's time.
- Say when they committed, and what (``after_commit``), so the relay and the workers are woken by the
  store itself, whoever wrote to it, never by a call someone has to remember.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.popo import POPOProcessRecorder
from eventsourcing.postgres import PostgresProcessRecorder
from eventsourcing.sqlite import SQLiteCursor, SQLiteProcessRecorder
from eventsourcing.utils import get_topic
from psycopg import Cursor
from psycopg.rows import DictRow


def nothing(stored: Sequence[StoredEvent]) -> None:
    pass


class SQLiteRecorder(SQLiteProcessRecorder):
    after_commit: Callable[[Sequence[StoredEvent]], None] = staticmethod(nothing)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        notification_ids = super().insert_events(stored_events, **kwargs)
        self.after_commit(stored_events)
        return notification_ids

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        notification_ids = super()._insert_events(c, stored_events, **kwargs)
        for tracking in kwargs.get("trackings", ()):
            self._insert_tracking(c, tracking)
        return notification_ids


class PostgresRecorder(PostgresProcessRecorder):
    after_commit: Callable[[Sequence[StoredEvent]], None] = staticmethod(nothing)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        notification_ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
        self.after_commit(stored_events)
        return notification_ids

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        for tracking in kwargs.get("trackings", ()):
            self._insert_tracking(curs, tracking=tracking)
        super()._insert_events(curs, stored_events, **kwargs)

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        """eventsourcing keeps an error raised here, commits, then raises it. When psycopg read the
        error early (a tracking record stored already, answered before the events were sent: a busy
        client), the pipeline was still aborted at that commit, which failed as ``PipelineAborted``
        instead, was retried as a passing fault and ended as ``OperationalError``, not the
        ``IntegrityError`` a duplicate is. Leaving an inner pipeline block syncs it first."""
        with curs.connection.pipeline():
            super()._insert_stored_events(curs, stored_events, **kwargs)


class InMemoryRecorder(POPOProcessRecorder):
    """For the tests of the rules, which run without a database."""

    after_commit: Callable[[Sequence[StoredEvent]], None] = staticmethod(nothing)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        notification_ids = super().insert_events(stored_events, **kwargs)
        self.after_commit(stored_events)
        return notification_ids

    def _assert_uniqueness(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        super()._assert_uniqueness(stored_events, **kwargs)
        for tracking in kwargs.get("trackings", ()):
            self._assert_tracking_uniqueness(tracking)

    def _update_table(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        notification_ids = super()._update_table(stored_events, **kwargs)
        for tracking in kwargs.get("trackings", ()):
            self._insert_tracking(tracking)
        return notification_ids


Recorder = SQLiteRecorder | PostgresRecorder | InMemoryRecorder

RECORDER_TOPICS = {
    "eventsourcing.sqlite": get_topic(SQLiteRecorder),
    "eventsourcing.postgres": get_topic(PostgresRecorder),
}
