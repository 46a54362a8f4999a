"""Escalation's store rebuilt from its events as the record holds them: the same events at the same
versions and places of the outbox, the same case, and a refusal that names what the record lacks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Tracking

from services.escalation.api import case_view
from services.escalation.application import (
    ALERT_RULE,
    DEADLINE_RULE,
    NOTICE_DEADLINE_RULE,
    EscalationApplication,
)
from services.escalation.notices import LEARNING_NOTICE, answerers
from services.escalation.rebuild import STORE_ONLY, CannotRebuild, EscalationRebuild, Relayed, handled_before
from shared.directory import load_directory
from shared.events import ComplaintReceived, DutyAssigned, decode_event, encode_event
from shared.policy import load_policy
from shared.reference import reference_of, resolve
from shared.settings import load_settings
from shared.timers import Timer

pytestmark = pytest.mark.unit

SETTINGS = load_settings({})
POLICY = load_policy(SETTINGS.policy_path)
DIRECTORY = load_directory(SETTINGS.directory_path)
OPENED = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # Tuesday 10:00 in Tokyo, outside quiet hours
POPO = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


def received(complaint_id: UUID) -> ComplaintReceived:
    return ComplaintReceived(
        event_id=uuid4(),
        complaint_id=complaint_id,
        occurred_at=OPENED - timedelta(minutes=20),
        recorded_at=OPENED,
        channel="phone",
        heard_by="n-001",
        department="Ward 3",
        patient_data="sealed",
        category="waiting",
        language="ja",
    )


def a_store_that_lived() -> tuple[EscalationApplication, dict[UUID, ComplaintReceived], UUID]:
    """Two cases: one chased, reassigned, reported on, with a learning notice; a message set aside."""
    store = EscalationApplication(env=POPO)
    complaints = {complaint_id: received(complaint_id) for complaint_id in (uuid4(), uuid4())}
    for sequence, complaint in enumerate(complaints.values(), start=1):
        store.open_case(complaint, "Waited.", POLICY, DIRECTORY, OPENED, Tracking("EVENTS", sequence))
    case_id = next(iter(complaints))
    later = OPENED + timedelta(hours=1)
    fire = Timer(rule=ALERT_RULE, aggregate_id=case_id, part="patient_feedback", attempt=2, due_at=later)
    store.timer_fired(fire, later, Tracking("TIMERS_ESCALATION", 1))
    store.act(case_id, lambda case: case.acknowledge("supervisor_acknowledgement", "sv-003", later))
    store.act(case_id, lambda case: case.file_report("sv-003", "ex-001", "Told.", later, DIRECTORY))
    store.act(case_id, lambda case: case.record_first_response("hd-003", later, False, "sealed notes"))
    store.act(case_id, lambda case: case.assess_harassment("sv-003", False, False, True, later, DIRECTORY))
    store.act(case_id, lambda case: case.record_corrective_measure("sv-003", "Rounds.", "sv-003", later))
    notice_id = uuid4()
    wards = answerers(["Ward 3", "Outpatients"], DIRECTORY)
    store.issue_notice(
        case_id,
        notice_id,
        lambda case: case.issue_notice(
            notice_id, "q-001", True, wards, ["safety"], later + timedelta(days=7), later
        ),
    )
    store.act(case_id, lambda case: case.read_notice(notice_id, "Ward 3", "sv-003", later))
    store.reject(Tracking("EVENTS", 3), "events.intake.ComplaintReceived", "not a valid message", None)
    return store, complaints, case_id


def on_the_record(store: EscalationApplication) -> list[Relayed]:
    """What the relay put on the record: each stored event's wire event, as a reader decodes it."""
    relayed = []
    for notification in store.process_recorder.select_notifications(1, 10_000):
        wire = store.wire_event(store.mapper.to_domain_event(notification))
        if wire is not None:
            relayed.append(Relayed(notification.id, decode_event(encode_event(wire))))
    return relayed


def stored(store: EscalationApplication) -> list[tuple[int, str, UUID, int, dict[str, Any]]]:
    """Every stored event, but the facts only a store holds, and when an index entry was made."""
    rows = []
    for notification in store.process_recorder.select_notifications(1, 10_000):
        event = store.mapper.to_domain_event(notification)
        left_out = {*STORE_ONLY, *(["timestamp"] if store.wire_event(event) is None else [])}
        state = {k: v for k, v in vars(event).items() if k not in left_out}
        rows.append(
            (notification.id, notification.topic, event.originator_id, event.originator_version, state)
        )
    return rows


def test_the_rebuilt_store_holds_the_same_events_in_the_same_places_and_answers_the_same() -> None:
    lived, complaints, case_id = a_store_that_lived()
    rebuilt = EscalationApplication(env=POPO)
    processed = [Tracking("EVENTS", 3), Tracking("TIMERS_ESCALATION", 1)]
    written = EscalationRebuild(rebuilt, complaints).rebuild(on_the_record(lived), processed)

    assert written == lived.process_recorder.max_notification_id()
    assert stored(rebuilt) == stored(lived)
    for complaint_id in complaints:
        case, before = rebuilt.get_case(complaint_id), lived.get_case(complaint_id)
        assert case is not None
        assert before is not None
        assert case_view(case, POLICY.hcat) == case_view(before, POLICY.hcat)
        assert resolve(rebuilt, reference_of(complaint_id)) == complaint_id
    assert [(kept.originator_id, kept.reason) for kept in rebuilt.set_aside()] == [
        (kept.originator_id, kept.reason) for kept in lived.set_aside()
    ]
    assert rebuilt.has_processed(Tracking("EVENTS", 3))
    assert rebuilt.has_processed(Tracking("TIMERS_ESCALATION", 1))
    # The rebuilt case goes on from where it stood: the next alert is taken, once.
    fire = Timer(rule=ALERT_RULE, aggregate_id=case_id, part="patient_feedback", attempt=3, due_at=OPENED)
    for store in (lived, rebuilt):
        store.timer_fired(fire, OPENED + timedelta(hours=2), Tracking("TIMERS_ESCALATION", 2))
    assert stored(rebuilt) == stored(lived)


def test_a_record_written_before_the_people_chased_were_on_it_cannot_be_rebuilt() -> None:
    lived, complaints, _ = a_store_that_lived()
    older = [
        Relayed(item.notification_id, item.event.model_copy(update={"recipients": None}))
        if isinstance(item.event, DutyAssigned)
        else item
        for item in on_the_record(lived)
    ]
    with pytest.raises(CannotRebuild, match=r"DutyAssigned of case .* before recipients was recorded"):
        EscalationRebuild(EscalationApplication(env=POPO), complaints).rebuild(older, [])


def test_an_event_missing_from_the_record_is_named() -> None:
    lived, complaints, _ = a_store_that_lived()
    relayed = on_the_record(lived)
    del relayed[20]
    with pytest.raises(CannotRebuild, match="not on the record"):
        EscalationRebuild(EscalationApplication(env=POPO), complaints).rebuild(relayed, [])


def test_the_timers_the_open_work_waits_for_are_named_to_be_set_again() -> None:
    lived, complaints, case_id = a_store_that_lived()
    rebuilt = EscalationApplication(env=POPO)
    rebuilding = EscalationRebuild(rebuilt, complaints)
    rebuilding.rebuild(on_the_record(lived), [])
    waiting = rebuilding.waiting_timers()
    for complaint_id in complaints:
        case = rebuilt.get_case(complaint_id)
        assert case is not None
        mine = [timer for timer in waiting if timer.aggregate_id == complaint_id]
        alerts = {timer.part: timer.attempt for timer in mine if timer.rule == ALERT_RULE}
        chased = {kind: duty.alerts_sent + 1 for kind, duty in case.duties.items() if duty.is_chased}
        assert {kind: attempt for kind, attempt in alerts.items() if kind != LEARNING_NOTICE} == chased
        deadlines = {timer.part for timer in mine if timer.rule == DEADLINE_RULE}
        assert deadlines == {kind for kind, duty in case.duties.items() if duty.is_open}
    case = rebuilt.get_case(case_id)
    assert case is not None
    assert "supervisor_acknowledgement" not in {
        timer.part for timer in waiting if timer.aggregate_id == case_id
    }
    # The notice: its deadline, and the next alert of the one department that has not read it.
    [notice] = case.notices.values()
    [deadline] = [timer for timer in waiting if timer.rule == NOTICE_DEADLINE_RULE]
    assert (deadline.aggregate_id, deadline.due_at) == (notice.notice_id, notice.due_at)
    [chase] = [timer for timer in waiting if timer.part == LEARNING_NOTICE]
    assert chase.attempt == notice.departments["Outpatients"].last_alert_number + 1


def test_a_message_delivered_and_not_acknowledged_is_taken_as_handled_when_the_record_shows_it() -> None:
    lived, complaints, case_id = a_store_that_lived()
    relayed = on_the_record(lived)
    opened, unknown = complaints[case_id], received(uuid4())
    assert handled_before("EVENTS", 1, opened, relayed)
    assert not handled_before("EVENTS", 4, unknown, relayed)
    assert handled_before("EVENTS", 3, None, relayed)  # it was set aside
    assert not handled_before("TIMERS_ESCALATION", 2, None, relayed)  # a fire: taken again, changing nothing
