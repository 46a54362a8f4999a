"""What the console reads from the record: the events its pages show, each folded into its read model."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import Tracking

from services.console.application import ConsoleApplication
from shared.bus import RECORD_STREAM, Subscription
from shared.consumer import Consumer
from shared.events import (
    AlertAcknowledged,
    AlertRequested,
    AnyEvent,
    CallbackAbandoned,
    CallbackAttempted,
    CallbackCompleted,
    CallbackOverdue,
    CallbackScheduled,
    CaseClosed,
    CaseReopened,
    ComplaintErased,
    ComplaintReceived,
    CorrectiveMeasureRecorded,
    DeadlinePassed,
    DutyAssigned,
    DutyFulfilled,
    DutyMissed,
    DutyReassigned,
    EscalationStarted,
    FirstResponseRecorded,
    HarassmentAssessed,
    NotificationAcknowledged,
    NotificationFailed,
    NotificationNotDelivered,
    NotificationSent,
    ReportFiled,
    WireEvent,
    decoder,
)

SHOWN: tuple[type[WireEvent], ...] = (
    ComplaintReceived, ComplaintErased, EscalationStarted, DutyAssigned, DutyReassigned, AlertRequested,
    AlertAcknowledged, DutyFulfilled, DutyMissed, DeadlinePassed, ReportFiled, FirstResponseRecorded,
    HarassmentAssessed, CorrectiveMeasureRecorded, CaseClosed, CaseReopened, NotificationSent,
    NotificationFailed, NotificationNotDelivered, NotificationAcknowledged, CallbackScheduled,
    CallbackAttempted, CallbackCompleted, CallbackAbandoned, CallbackOverdue,
)  # fmt: skip

RECORD = Subscription(
    RECORD_STREAM, "console", [f"events.{kind.service}.{kind.type_name()}" for kind in SHOWN]
)
SUBSCRIPTIONS = [RECORD]


def consumers(store: ConsoleApplication) -> list[Consumer[Any]]:
    def when_the_record_changes_update_the_pages(received: AnyEvent, tracking: Tracking) -> None:
        store.note(received, tracking)

    return [Consumer(RECORD, decoder(*SHOWN), when_the_record_changes_update_the_pages)]
