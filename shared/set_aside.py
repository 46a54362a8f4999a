"""What a service set aside: messages it could not handle (``RejectedMessage``) and events of its own
the bus refused for good (``UnpublishedEvent``), until an administrator takes them up again."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import Tracking
from eventsourcing.utils import get_topic

from shared.ids import stable_id


class NotSetAside(LookupError):
    """Nothing of that stream and sequence is set aside by this service (or it was taken up)."""


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


class UnpublishedEvent(Aggregate):
    """An event of this service's outbox that the bus refused for good. Its relay put an EventSetAside
    in its place on the record; the event stays in the store and is published when taken up."""

    class SetAside(Aggregate.Created):
        notification_id: int
        event_type: str
        size: int
        reason: str
        complaint_id: UUID | None
        occurred_at: datetime

    @staticmethod
    def create_id(notification_id: int, **_: Any) -> UUID:
        return stable_id("unpublished", notification_id)

    @event(SetAside)
    def __init__(
        self,
        notification_id: int,
        event_type: str,
        size: int,
        reason: str,
        complaint_id: UUID | None,
        occurred_at: datetime,
    ) -> None:
        self.notification_id = notification_id
        self.event_type = event_type
        self.size = size
        self.reason = reason
        self.complaint_id = complaint_id
        self.occurred_at = occurred_at
        self.taken_up = False

    class TakenUp(Aggregate.Event):
        notification_id: int
        requested_by: str
        occurred_at: datetime

    @event(TakenUp)
    def take_up(self, notification_id: int, requested_by: str, occurred_at: datetime) -> None:
        """Publish it now, at the head of the chain: its relay publishes the stored event for this one."""
        self.taken_up = True


SetAside = RejectedMessage.Rejected | UnpublishedEvent.SetAside
SET_ASIDE_TOPICS = tuple(
    get_topic(kind)
    for kind in (
        RejectedMessage.Rejected,
        RejectedMessage.TakenUp,
        UnpublishedEvent.SetAside,
        UnpublishedEvent.TakenUp,
    )
)
# How the list and the take-up command name a service's outbox, beside the streams it consumes.
OUTBOX = "outbox"


def taken_up_tracking(stream: str, stream_sequence: int) -> Tracking:
    """The tracking record of a set-aside message handled again: it is handled again only once."""
    return Tracking(f"{stream}:taken-up", stream_sequence)
