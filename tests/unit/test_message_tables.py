"""Message tables: a domain event on the record as its wire event (fields copied by name, a row's own
for the rest), a wire event handed to the handler of its kind, and tables that say more or less than
their contract refused when they are built."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import Tracking
from pydantic import Field

from services.console.application import ConsoleApplication
from services.console.handlers import consumers as console_consumers
from services.escalation.application import EscalationApplication
from services.escalation.handlers import consumers as escalation_consumers
from services.followup.application import FollowupApplication
from services.followup.handlers import consumers as followup_consumers
from services.intake.handlers import consumers as intake_consumers
from services.notifier.application import NotifierApplication
from services.notifier.domain import COMPLAINANT, Notification
from services.notifier.handlers import consumers as notifier_consumers
from shared.bus import RECORD_STREAM, SUBMISSION_STREAM, due_subject, submission_subject, timer_subscription
from shared.contracts import CONTRACTS, ESCALATION, INTAKE, NOTIFIER, Contract
from shared.events import (
    AlertRequested,
    CaseClosed,
    ComplainantNotAcknowledged,
    ComplaintReceived,
    MessageRejected,
    NotificationAcknowledged,
    NotificationNotDelivered,
    WireEvent,
    encode_event,
    subject_of,
)
from shared.messages import Handles, On, Publish, Publishes, Submitted
from shared.store import ServiceApplication
from shared.timers import Timer
from tests.factories import alert_requested, complaint_received

pytestmark = pytest.mark.unit

AT = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
POPO = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


class Note(Aggregate):
    class Written(Aggregate.Created):
        complaint_id: UUID
        by: str
        at: datetime

    @event(Written)
    def __init__(self, complaint_id: UUID, by: str, at: datetime) -> None:
        self.complaint_id = complaint_id


class NoteWritten(WireEvent):
    service: ClassVar[str] = "desk"
    type: Literal["NoteWritten"] = "NoteWritten"
    version: Literal[1] = 1

    written_by: str = Field(description="Who wrote it.")


DESK = Contract("desk")


class Desk(ServiceApplication):
    service = "desk"
    publishes = Publishes(
        DESK,
        Publish(
            Note.Written, NoteWritten, lambda written: {"written_by": written.by, "occurred_at": written.at}
        ),
    )


def test_a_domain_event_goes_on_the_record_with_its_fields_copied_and_the_rows_own_given() -> None:
    complaint_id = uuid4()
    note = Note(complaint_id=complaint_id, by="n-001", at=AT)
    [written] = note.collect_events()

    wire = Desk(env=POPO).wire_event(written)

    assert isinstance(wire, NoteWritten)
    assert wire.complaint_id == complaint_id  # the same name: copied
    assert (wire.written_by, wire.occurred_at) == ("n-001", AT)  # renamed: the row's own
    assert wire.recorded_at == written.timestamp


def notification(recipient: str, duty: str | None) -> Notification:
    return Notification(
        id=uuid4(), complaint_id=uuid4(), recipient=recipient, contacts={}, subject="s", text="t", duty=duty,
        alert_number=None if duty is None else 1, language="ja", at=AT,
    )  # fmt: skip


def test_the_first_row_that_holds_decides_and_a_stored_event_of_no_row_stays_inside() -> None:
    store = NotifierApplication(env=POPO)
    receipt, alert = notification(COMPLAINANT, None), notification("sv-003", "first_response")
    [requested] = receipt.collect_events()
    alert.collect_events()
    receipt.give_up("no contact", AT)
    alert.give_up("no contact", AT)

    assert store.wire_event(requested) is None
    [receipt_given_up], [alert_given_up] = receipt.collect_events(), alert.collect_events()
    assert isinstance(store.wire_event(receipt_given_up), ComplainantNotAcknowledged)
    not_delivered = store.wire_event(alert_given_up)
    assert isinstance(not_delivered, NotificationNotDelivered)
    assert not_delivered.delivery_id == alert.id


def test_a_renamed_field_comes_from_the_rows_own() -> None:
    alert = notification("sv-003", "first_response")
    alert.acknowledge(AT)
    acknowledged = alert.collect_events()[-1]

    wire = NotifierApplication(env=POPO).wire_event(acknowledged)

    assert isinstance(wire, NotificationAcknowledged)
    assert (wire.by, wire.duty, wire.delivery_id) == ("sv-003", "first_response", alert.id)


def test_a_table_publishes_its_own_events_every_one_of_them() -> None:
    with pytest.raises(ValueError, match="CaseClosed"):
        Publishes(DESK, Publish(Note.Written, CaseClosed))
    with pytest.raises(ValueError, match="NotificationSent"):
        Publishes(NOTIFIER)


RECEIVING = Contract("desk", handles=(ComplaintReceived, AlertRequested))


def test_each_event_goes_to_the_handler_of_its_kind_through_a_consumer_made_from_the_table() -> None:
    complaints: list[ComplaintReceived] = []
    alerts: list[AlertRequested] = []
    handles = Handles(
        RECEIVING,
        On(ComplaintReceived, lambda complaint, _: complaints.append(complaint)),
        On(AlertRequested, lambda alert, _: alerts.append(alert)),
    )
    [consumer] = handles.consumers()
    complaint, alert = complaint_received(), alert_requested()

    for sequence, sent in enumerate((complaint, alert), start=1):
        decoded = consumer.decode(subject_of(type(sent)), encode_event(sent))
        consumer.handle(decoded, Tracking(RECORD_STREAM, sequence))

    assert (complaints, alerts) == ([complaint], [alert])
    assert consumer.subscription.durable == "desk"
    assert list(consumer.subscription.subjects) == [
        "events.intake.ComplaintReceived",
        "events.escalation.AlertRequested",
    ]
    closed = CaseClosed(event_id=uuid4(), complaint_id=uuid4(), occurred_at=AT, recorded_at=AT, by="sv-003")
    with pytest.raises(ValueError, match="got CaseClosed"):
        consumer.decode(subject_of(CaseClosed), encode_event(closed))


def test_an_event_handled_must_be_one_its_subscription_carries_and_each_one_carried_is_handled() -> None:
    def ignore(_: WireEvent, __: Tracking) -> None:
        pass

    with pytest.raises(ValueError, match="CaseClosed, which its subscription does not carry"):
        Handles(RECEIVING, On(ComplaintReceived, ignore), On(AlertRequested, ignore), On(CaseClosed, ignore))
    with pytest.raises(ValueError, match="AlertRequested and handles none"):
        Handles(RECEIVING, On(ComplaintReceived, ignore))
    with pytest.raises(ValueError, match="two handlers"):
        Handles(
            RECEIVING, On(ComplaintReceived, ignore), On(AlertRequested, ignore), On(AlertRequested, ignore)
        )


def test_timer_fires_come_through_the_same_table() -> None:
    fired: list[Timer] = []
    timers = Contract("desk", timers=True)
    with pytest.raises(ValueError, match="no handler for their fires"):
        Handles(timers)
    with pytest.raises(ValueError, match="sets no timers"):
        Handles(DESK, timer_fired=lambda timer, _: fired.append(timer))

    [consumer] = Handles(timers, timer_fired=lambda timer, _: fired.append(timer)).consumers()
    timer = Timer(rule="callback", aggregate_id=uuid4(), attempt=1, due_at=AT)
    decoded = consumer.decode(due_subject("desk", timer.key), timer.encode())
    consumer.handle(decoded, Tracking("TIMERS_DESK", 1))

    assert consumer.subscription == timer_subscription("desk")
    assert fired == [timer]


def test_what_channel_systems_submit_comes_through_the_same_table() -> None:
    taken: list[tuple[str, str]] = []
    desk = Contract("desk", submissions="tests:Submission")
    with pytest.raises(ValueError, match="takes submissions and has no handler"):
        Handles(desk)
    submitted = Submitted(lambda subject, data: (subject, data.decode()), lambda read, _: taken.append(read))
    with pytest.raises(ValueError, match="a handler for submissions and takes none"):
        Handles(DESK, submitted=submitted)

    [consumer] = Handles(desk, submitted=submitted).consumers()
    consumer.handle(consumer.decode(submission_subject("kiosk"), b"{}"), Tracking(SUBMISSION_STREAM, 1))

    assert consumer.subscription == desk.submitted
    assert taken == [(submission_subject("kiosk"), "{}")]


def test_no_service_subscribes_to_what_no_one_service_publishes() -> None:
    with pytest.raises(ValueError, match="MessageRejected"):
        Contract("desk", handles=(ComplaintReceived, MessageRejected))


def test_every_service_builds_its_table_of_what_it_handles_as_its_contract_says() -> None:
    unused: Any = object()  # what the handlers use when a message comes, not to be built
    built = {
        "intake": intake_consumers(unused, unused),
        "escalation": escalation_consumers(EscalationApplication(env=POPO), unused, unused, unused),
        "notifier": notifier_consumers(NotifierApplication(env=POPO), unused, unused, (), unused, unused),
        "followup": followup_consumers(FollowupApplication(env=POPO), unused, unused),
        "console": console_consumers(ConsoleApplication(env=POPO)),
    }

    for contract in CONTRACTS:
        assert [
            consumer.subscription for consumer in built.get(contract.service, [])
        ] == contract.subscriptions


def test_nothing_on_the_way_from_a_complaint_to_its_alert_waits_to_gather_more() -> None:
    """Intake's relay, escalation's consumer and relay and the notifier's consumer take and publish at
    once; only the readers for people (the console, followup's callbacks days ahead) and the relay of
    what became of a delivery wait a moment to take more together."""
    on_the_way = [INTAKE.relays_gathered, ESCALATION.reads_gathered, ESCALATION.relays_gathered]
    assert not any(on_the_way)
    gathering = {
        contract.service: [subscription.gathers for subscription in contract.subscriptions]
        for contract in CONTRACTS
    }
    # Each its record's consumer first; followup's timer fires are handled when they are due.
    assert gathering == {
        "intake": [False],
        "escalation": [False, False],
        "notifier": [False],
        "followup": [True, False],
        "console": [True],
    }
    assert NOTIFIER.relays_gathered
