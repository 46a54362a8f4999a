"""Callback visits (回访) to the complainant. Pure rules, no I/O."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import Aggregate, event


def first_callback_due(case_opened_at: datetime, delay: timedelta) -> datetime:
    """Anchored on when the case opened, so a redelivered or replayed event gives the same time."""
    return case_opened_at + delay


class Callback(Aggregate):
    class Scheduled(Aggregate.Created):
        complaint_id: UUID
        due_at: datetime
        attempt: int

    class FellDue(Aggregate.Event):
        complaint_id: UUID
        due_at: datetime
        attempt: int

    @event(Scheduled)
    def __init__(self, id: UUID, complaint_id: UUID, due_at: datetime, attempt: int) -> None:
        self.complaint_id = complaint_id
        self.due_at = due_at
        self.attempt = attempt
        self.status = "scheduled"

    def is_awaiting(self, attempt: int) -> bool:
        """A timer fire counts only for the attempt that is scheduled and not yet due."""
        return self.status == "scheduled" and self.attempt == attempt

    def fall_due(self) -> None:
        self._fell_due(complaint_id=self.complaint_id, due_at=self.due_at, attempt=self.attempt)

    @event(FellDue)
    def _fell_due(self, complaint_id: UUID, due_at: datetime, attempt: int) -> None:
        self.status = "due"
