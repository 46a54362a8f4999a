"""Each service's store, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import select
import threading
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError, Tracking

from services.console.application import CaseRecord, ConsoleApplication
from services.escalation.application import EscalationApplication
from services.followup.application import FollowupApplication
from services.intake.application import IdempotencyConflict, IntakeApplication
from services.intake.main import open_intake_store
from shared.directory import Directory
from shared.events import ComplaintReceived, EscalationStarted, MessageRejected, PossibleDuplicateFlagged
from shared.policy import Policy
from shared.recorders import PostgresRecorder, Recorder
from shared.runtime import open_store
from shared.settings import Settings
from shared.timers import now
from tests.factories import complaint_received, registration

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def all_wire_events(store: IntakeApplication | EscalationApplication) -> list[object]:
    """What the store puts on the record (its index of references stays inside)."""
    notifications = store.process_recorder.select_notifications(1, 100)
    wire = [store.wire_event(store.mapper.to_domain_event(n)) for n in notifications]
    return [event for event in wire if event is not None]


def test_an_idempotency_key_registers_one_complaint(store_settings: Settings) -> None:
    store = open_intake_store(store_settings)
    try:
        retried = registration()
        first, created = store.register(retried, "key-1", now())
        again, created_again = store.register(retried, "key-1", now())
        assert (created, created_again) == (True, False)
        assert first == again
        with pytest.raises(IdempotencyConflict):
            store.register(registration(summary="A different story."), "key-1", now())
        other, _ = store.register(retried, None, now())
        assert other != first
        events = all_wire_events(store)
        # The same story from the same contact without the key is another complaint, flagged.
        assert [type(event) for event in events] == [
            ComplaintReceived,
            ComplaintReceived,
            PossibleDuplicateFlagged,
        ]
    finally:
        store.close()


def test_effects_and_tracking_are_one_transaction(
    store_settings: Settings, policy: Policy, directory: Directory
) -> None:
    store = open_store(EscalationApplication, store_settings)
    try:
        complaint = complaint_received()
        tracking = Tracking("EVENTS", 41)
        assert not store.has_processed(tracking)
        store.open_case(complaint, "Results were lost.", policy, directory, NOW, tracking)
        assert store.has_processed(tracking)
        # The same message again: refused as a whole, so no second case and no second event.
        with pytest.raises(IntegrityError):
            store.open_case(complaint, "Results were lost.", policy, directory, NOW, tracking)
        # A different message that would open the same case: the case refuses, the tracking is not kept.
        with pytest.raises(IntegrityError):
            store.open_case(complaint, "Results were lost.", policy, directory, NOW, Tracking("EVENTS", 42))
        assert not store.has_processed(Tracking("EVENTS", 42))
        started, *duties = all_wire_events(store)
        assert isinstance(started, EscalationStarted)
        assert started.policy_version == policy.version
        assert started.complaint_id == complaint.complaint_id
        assert [type(event).__name__ for event in duties] == ["DutyAssigned"] * 5
        assert all(duty.alert is not None for duty in duties)  # type: ignore[attr-defined]
    finally:
        store.close()


@pytest.mark.parametrize("store_settings", ["postgres"], indirect=True)  # the order of a pipeline's answers
def test_a_duplicate_is_refused_as_a_duplicate_however_slow_the_client(
    store_settings: Settings, policy: Policy, directory: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy consumer may be slow between sending a batch's tracking records and its events, so that
    the server has already refused a tracking record stored before when the events go: the store still
    refuses the batch as the duplicate it is, at once, not as a fault of the database tried again."""
    store = open_store(EscalationApplication, store_settings)
    lock_table = PostgresRecorder._lock_table

    def slowly(recorder: PostgresRecorder, curs: Any) -> None:
        # Not on until the server has answered the tracking record (its socket has something to read).
        readable, _, _ = select.select([curs.connection.pgconn.socket], [], [], 10.0)
        assert readable, "the server did not answer the tracking record"
        lock_table(recorder, curs)

    try:
        complaint, tracking = complaint_received(), Tracking("EVENTS", 41)
        store.open_case(complaint, "Results were lost.", policy, directory, NOW, tracking)
        monkeypatch.setattr(PostgresRecorder, "_lock_table", slowly)
        with pytest.raises(IntegrityError):
            store.open_case(complaint, "Results were lost.", policy, directory, NOW, tracking)
        assert [type(event).__name__ for event in all_wire_events(store)] == ["EscalationStarted"] + [
            "DutyAssigned"
        ] * 5
    finally:
        store.close()


def test_a_message_redelivered_behind_newer_ones_is_not_taken_as_processed(store_settings: Settings) -> None:
    """After a crash JetStream redelivers what the dead process held after newer messages: a message is
    processed only if its own tracking record is there, not because a later one's is."""
    store = open_store(EscalationApplication, store_settings)
    try:
        store.record(tracking=Tracking("EVENTS", 78))
        assert store.has_processed(Tracking("EVENTS", 78))
        assert not store.has_processed(Tracking("EVENTS", 63))
        assert not store.has_processed(Tracking("TIMERS_ESCALATION", 78))
        store.record(tracking=Tracking("EVENTS", 63))
        assert store.has_processed(Tracking("EVENTS", 63))
        with pytest.raises(IntegrityError):
            store.record(tracking=Tracking("EVENTS", 63))
    finally:
        store.close()


def test_messages_handled_together_are_stored_in_one_transaction_and_see_each_other(
    store_settings: Settings,
) -> None:
    """A batch's messages: a later one finds what an earlier one recorded, everything is stored in one
    transaction with a tracking record per message, and what happens outside the store (the console's
    read model) happens once it is stored. A message whose handler fails is left out, with nothing of
    it kept; the ones before it are stored."""
    store = open_store(ConsoleApplication, store_settings)
    try:
        transactions: list[int] = []  # how many events each stored
        recorder = store.recorder
        assert isinstance(recorder, Recorder)
        recorder.after_commit = lambda stored: transactions.append(len(stored))
        received = complaint_received()
        started = EscalationStarted(
            event_id=uuid4(), complaint_id=received.complaint_id, occurred_at=NOW, recorded_at=NOW,
            policy_version="test", tier="minor", tier_reason="given at intake",
        )  # fmt: skip
        folded_before_commit: list[bool] = []

        def fails() -> None:
            store.note(complaint_received(), Tracking("EVENTS", 3))
            raise RuntimeError("a defect of the handler, after it recorded")

        def folded() -> bool:
            return store.read(lambda cases: received.complaint_id in cases)

        stored = store.store_together(
            [
                lambda: store.note(received, Tracking("EVENTS", 1)),
                lambda: folded_before_commit.append(folded()),
                lambda: store.note(started, Tracking("EVENTS", 2)),
                fails,
                lambda: store.note(complaint_received(), Tracking("EVENTS", 4)),
            ]
        )
        assert stored == 3  # the fourth failed, the fifth is left for after it
        assert folded_before_commit == [False]
        assert folded()
        assert transactions == [2]
        assert store.processed_among("EVENTS", [1, 2, 3, 4]) == {1, 2}
        record = store.find(CaseRecord, received.complaint_id)
        assert record is not None
        assert record.version == 2  # the second message found the record the first one made
        assert store.process_recorder.max_notification_id() == 2
    finally:
        store.close()


def test_a_commit_wakes_the_relay_only_when_it_stored_what_goes_on_the_record(settings: Settings) -> None:
    """The console keeps every event it stores for itself: its commits wake no relay. Intake's
    registration stores a complaint that goes on the record: its commit does."""
    console, intake = open_store(ConsoleApplication, settings), open_intake_store(settings)
    try:
        woken: list[str] = []
        console.after_each_commit(lambda: woken.append("console"))
        intake.after_each_commit(lambda: woken.append("intake"))
        console.note(complaint_received(), Tracking("EVENTS", 1))
        assert console.process_recorder.max_notification_id() == 1
        intake.register(registration(), None, now())
        assert woken == ["intake"]
    finally:
        console.close()
        intake.close()


def test_messages_handled_together_that_meet_another_writer_are_stored_by_none(
    store_settings: Settings,
) -> None:
    """When storing the batch conflicts with what another writer stored meanwhile, nothing of the batch
    is stored and nothing outside the store happens: each message is then handled by itself."""
    store = open_store(ConsoleApplication, store_settings)
    try:
        received = complaint_received()

        def meets_another_writer() -> None:
            store.note(received, Tracking("EVENTS", 1))
            other = threading.Thread(target=store.note, args=(received, Tracking("TIMERS_CONSOLE", 1)))
            other.start()  # another thread is another writer: it stores at once
            other.join()

        assert store.store_together([lambda: store.note(complaint_received(), Tracking("EVENTS", 2)),
                                     meets_another_writer]) == 0  # fmt: skip
        assert store.processed_among("EVENTS", [1, 2]) == set()
        assert store.processed_among("TIMERS_CONSOLE", [1]) == {1}
        assert store.read(len) == 1  # only the other writer's event is folded
    finally:
        store.close()


def test_a_rejected_message_is_recorded_with_its_reason(store_settings: Settings) -> None:
    store = open_store(EscalationApplication, store_settings)
    try:
        complaint_id = uuid4()
        store.reject(
            Tracking("EVENTS", 9), "events.intake.ComplaintReceived", "not a valid message", complaint_id
        )
        assert store.has_processed(Tracking("EVENTS", 9))
        [rejection] = all_wire_events(store)
        assert isinstance(rejection, MessageRejected)
        assert rejection.subject == "events.escalation.MessageRejected"
        assert (rejection.stream, rejection.stream_sequence) == ("EVENTS", 9)
        assert rejection.complaint_id == complaint_id
        assert rejection.reason == "not a valid message"
    finally:
        store.close()


def test_the_store_keeps_its_data_across_a_restart(store_settings: Settings) -> None:
    store = open_intake_store(store_settings)
    complaint_id, _ = store.register(registration(), None, now())
    store.close()
    reopened = open_intake_store(store_settings)
    try:
        complaint = reopened.get_complaint(complaint_id)
        assert complaint is not None
        assert complaint.department == "Ward 3"
    finally:
        reopened.close()


def test_a_callback_is_scheduled_once_per_cause_and_listed_from_the_store(
    store_settings: Settings, policy: Policy, directory: Directory
) -> None:
    store = open_store(FollowupApplication, store_settings)
    try:
        case = EscalationStarted(
            event_id=uuid4(), complaint_id=uuid4(), occurred_at=NOW, recorded_at=NOW,
            policy_version="test", tier="minor", tier_reason="given at intake",
        )  # fmt: skip
        assert store.register_discharge(case.complaint_id, NOW, policy, directory) is None  # not followed yet
        store.follow_case(case, Tracking("EVENTS", 1))
        response = uuid4()  # the event id of a first response, seen twice (republished, redelivered)
        first = store.schedule(
            case.complaint_id, "after_first_response", NOW, response, policy, directory, Tracking("EVENTS", 2)
        )
        again = store.schedule(
            case.complaint_id, "after_first_response", NOW, response, policy, directory, Tracking("EVENTS", 3)
        )
        assert again.id == first.id
        assert store.has_processed(Tracking("EVENTS", 3))
        discharge = store.register_discharge(case.complaint_id, NOW, policy, directory)
        assert discharge is not None
        assert store.register_discharge(case.complaint_id, NOW, policy, directory) == discharge
        assert [callback.id for callback in store.callbacks()] == [first.id, discharge.id]
    finally:
        store.close()
