"""The console's store: every event of each complaint as received, and the read model folded from them.

The store is what survives a restart (each event with the tracking record of its bus message, in one
transaction); the read model lives in memory, rebuilt from the store at start and kept up to date
after each stored event.

The read model follows the store's log, not the events this process handles: replicas of the console
share its durable consumer and its store (PostgreSQL), each handling some of the messages, and each
folds every event stored, its own after each commit and the others' when it next looks
(``catch_up``), in the order of the log.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import Tracking
from eventsourcing.utils import get_topic

from services.console.domain import Case, apply
from services.console.index import WorkIndex
from shared.directory import Directory
from shared.events import AnyEvent, decode_event, encode_event
from shared.reference import reference_of
from shared.store import ServiceApplication

Result = TypeVar("Result")
PAGE = 500
# Where an eventsourcing aggregate keeps its events not yet stored.
PENDING = "_pending_events"


class CaseRecord(Aggregate):
    """The events of one complaint as the console received them from the record; its id is the
    complaint's."""

    class Opened(Aggregate.Created):
        body: str

    class Noted(Aggregate.Event):
        body: str

    @event(Opened)
    def __init__(self, id: UUID, body: str) -> None:
        pass

    @event(Noted)
    def note(self, body: str) -> None:
        pass

    def __deepcopy__(self, memo: dict[int, object]) -> CaseRecord:
        """Its state is its id, version and times, none of which changes in place: a copy needs only a
        list of new events of its own. (The store copies an aggregate at each read, and the console
        reads one per event; ``copy.deepcopy`` copied each UUID and datetime field by field, a sixth of
        the console's time.)"""
        copied = copy.copy(self)
        copied.__dict__[PENDING] = list(self.__dict__[PENDING])
        return copied


class ConsoleApplication(ServiceApplication):
    service = "console"

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env=env)
        self._lock = threading.Lock()
        self._cases: dict[UUID, Case] = {}
        self._work = WorkIndex()
        self._references: dict[str, set[UUID]] = {}  # a reference can be shared (rarely): see reference.py
        self._following = threading.Lock()  # one catch-up at a time: each notification is folded once
        self._position = 0  # the last notification of the log folded into the read model
        # What this process stored, decoded already: folded without decoding it again.
        self._decoded: dict[tuple[UUID, int], tuple[str, AnyEvent]] = {}
        self.catch_up()

    def note(self, received: AnyEvent, tracking: Tracking) -> None:
        """Store the event with its tracking record, then fold it into the read model."""
        complaint_id = received.complaint_id
        if complaint_id is None:  # a checkpoint or a rejection that names no complaint: nothing to show
            self.record(tracking=tracking)
            return
        body = encode_event(received).decode()
        record = self.find(CaseRecord, complaint_id)
        if record is None:
            record = CaseRecord(id=complaint_id, body=body)
        else:
            record.note(body)
        stored = (complaint_id, record.version)
        with self._following:
            self._decoded[stored] = (body, received)
        self.record(record, tracking=tracking)
        self.when_stored(lambda: self._caught_up_with(stored))

    def _caught_up_with(self, stored: tuple[UUID, int]) -> None:
        """After a commit: catch up, unless a catch-up after an earlier event of the batch folded it."""
        with self._following:
            if stored not in self._decoded:
                return
        self.catch_up()

    def read(self, query: Callable[[dict[UUID, Case]], Result]) -> Result:
        """Answer a query over the read model, which does not change meanwhile."""
        with self._lock:
            return query(self._cases)

    def read_work(
        self, directory: Directory, query: Callable[[dict[UUID, Case], WorkIndex], Result]
    ) -> Result:
        """Answer a query over the read model and its work index, brought up to date first."""
        with self._lock:
            return query(self._cases, self._work.refreshed(self._cases, directory))

    def by_reference(self, reference: str) -> set[UUID]:
        """The complaints with this reference (``XXXX-XXXX``): one, or none, or (rarely) several."""
        with self._lock:
            return set(self._references.get(reference, ()))

    def _fold(self, complaint_id: UUID, received: AnyEvent) -> None:
        with self._lock:
            if complaint_id not in self._cases:
                self._cases[complaint_id] = Case(complaint_id)
                self._references.setdefault(reference_of(complaint_id), set()).add(complaint_id)
            apply(self._cases[complaint_id], received)
            self._work.changed(complaint_id)

    def catch_up(self) -> int:
        """Fold into the read model what is stored after its place in the log, whoever stored it (this
        process, or another replica of the console); returns how many events were folded."""
        topics = [get_topic(CaseRecord.Opened), get_topic(CaseRecord.Noted)]
        folded = 0
        with self._following:
            while page := self.process_recorder.select_notifications(self._position + 1, PAGE, topics=topics):
                for notification in page:
                    stored = self.mapper.to_domain_event(notification)
                    body: str = stored.body  # type: ignore[attr-defined]  # both kinds have a body
                    # Decoded already only if this very event was stored by this process: the same
                    # version of a case may have been noted here first, and not stored (a conflict).
                    mine = self._decoded.pop((stored.originator_id, stored.originator_version), None)
                    received = mine[1] if mine and mine[0] == body else decode_event(body.encode())
                    self._fold(stored.originator_id, received)
                self._position = page[-1].id
                folded += len(page)
        return folded
