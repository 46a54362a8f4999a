"""The console's read model and "My work": folded from the record's events, nothing else. Pure."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from services.console.application import CaseRecord
from services.console.domain import Case, apply
from services.console.index import WorkIndex
from services.console.work import WORK_SHOWN, WorkItem, may_see, my_work, time_left
from shared.directory import load_directory
from shared.events import (
    AlertAcknowledged,
    AlertWithAssignment,
    CallbackCompleted,
    CallbackScheduled,
    CaseClosed,
    DutyAssigned,
    DutyFulfilled,
    NotificationSent,
)
from shared.settings import load_settings
from tests.factories import alert_requested, complaint_received

pytestmark = pytest.mark.unit

DIRECTORY = load_directory(load_settings({}).directory_path)
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


def work_of(cases: list[Case], staff_id: str, shown: int = WORK_SHOWN) -> tuple[list[WorkItem], int]:
    """ "My work" as the console answers it: from a work index of these cases."""
    by_id = {case.complaint_id: case for case in cases}
    keys = WorkIndex().refreshed(by_id, DIRECTORY).keys_of(staff_id)
    return my_work(by_id, keys, staff_id, DIRECTORY, NOW, shown=shown)


def common(complaint_id: UUID) -> dict[str, Any]:
    return {"event_id": uuid4(), "complaint_id": complaint_id, "occurred_at": NOW, "recorded_at": NOW}


def ward_3_case() -> Case:
    """A complaint n-001 (Ward 3) heard: the supervisor sv-003 owes the acknowledgement, due in 10 min,
    and the handler hd-003 the apology call, due in 2 h."""
    complaint_id = uuid4()
    case = Case(complaint_id)
    apply(case, complaint_received(complaint_id=complaint_id, heard_by="n-001", department="Ward 3"))
    for duty, owner, minutes in (
        ("supervisor_acknowledgement", "sv-003", 10),
        ("first_response", "hd-003", 120),
    ):
        due = NOW + timedelta(minutes=minutes)
        apply(
            case,
            DutyAssigned(**common(complaint_id), duty=duty, owner=owner, due_at=due, late_on_arrival=False),
        )
    return case


def test_my_work_lists_what_a_person_owns_and_what_they_are_in_the_chain_of_soonest_first() -> None:
    case = ward_3_case()
    supervisor = work_of([case], "sv-003")[0]
    # sv-003 owns the acknowledgement and is hd-003's supervisor, so in the apology call's chain.
    assert [(item.kind, item.owned) for item in supervisor] == [
        ("supervisor_acknowledgement", True),
        ("first_response", False),
    ]
    assert [item.action for item in supervisor] == ["acknowledge", "first-response"]
    assert work_of([case], "n-002") == ([], 0)  # a nurse of Outpatients
    assert not may_see(case, "n-002", DIRECTORY)
    assert may_see(case, "n-001", DIRECTORY)
    assert may_see(case, "ex-001", DIRECTORY)  # executives oversee every case


def test_a_duty_done_or_a_case_closed_leaves_my_work() -> None:
    case = ward_3_case()
    apply(
        case,
        DutyFulfilled(
            **common(case.complaint_id), duty="supervisor_acknowledgement", by="sv-003", how="acknowledged"
        ),
    )
    assert [item.kind for item in work_of([case], "sv-003")[0]] == ["first_response"]
    apply(case, CaseClosed(**common(case.complaint_id), by="ex-001"))
    assert work_of([case], "sv-003")[0] == []


def test_an_alert_shows_to_whom_on_which_channel_and_whether_it_was_acknowledged() -> None:
    case = ward_3_case()
    apply(case, alert_requested(complaint_id=case.complaint_id))
    [alert] = case.alerts
    assert (alert.recipient, alert.outcome, alert.channel) == ("sv-003", "requested", None)
    apply(
        case,
        NotificationSent(
            **common(case.complaint_id),
            delivery_id=uuid4(),
            recipient="sv-003",
            channel="email",
            duty="supervisor_acknowledgement",
            alert_number=1,
        ),
    )
    assert (alert.outcome, alert.channel) == ("sent", "email")
    apply(
        case, AlertAcknowledged(**common(case.complaint_id), duty="supervisor_acknowledgement", by="sv-003")
    )
    assert alert.outcome == "acknowledged"
    assert case.duties["supervisor_acknowledgement"].acknowledged_by == "sv-003"
    assert [entry.what for entry in case.timeline][-3:] == [
        "AlertRequested",
        "NotificationSent",
        "AlertAcknowledged",
    ]


def test_an_alert_sent_with_its_duty_shows_like_one_requested_by_itself() -> None:
    case = Case(uuid4())
    alert = AlertWithAssignment(
        recipient="sv-003", tier="complex", alert_number=1, attempt=1, next_alert_at=None
    )
    apply(
        case,
        DutyAssigned(
            **common(case.complaint_id),
            duty="supervisor_acknowledgement",
            owner="sv-003",
            due_at=NOW + timedelta(minutes=10),
            late_on_arrival=False,
            alert=alert,
        ),
    )
    [shown] = case.alerts
    assert (shown.duty, shown.recipient, shown.number, shown.outcome) == (
        "supervisor_acknowledgement",
        "sv-003",
        1,
        "requested",
    )


def test_an_event_about_a_duty_the_console_never_saw_changes_only_the_timeline() -> None:
    case = Case(uuid4())
    apply(case, DutyFulfilled(**common(case.complaint_id), duty="first_response", by="hd-003", how="called"))
    assert case.duties == {}
    assert [entry.what for entry in case.timeline] == ["DutyFulfilled"]


def test_the_clock_counts_minutes_then_hours_and_goes_negative_once_overdue() -> None:
    assert time_left(NOW + timedelta(minutes=47, seconds=30), NOW) == (47, "min")
    assert time_left(NOW + timedelta(hours=47, minutes=59), NOW) == (47, "h")
    assert time_left(NOW - timedelta(minutes=5), NOW) == (-5, "min")


def test_my_work_shows_the_soonest_due_and_counts_the_rest() -> None:
    cases = [ward_3_case() for _ in range(3)]
    shown, more = work_of(cases, "sv-003", shown=4)
    assert (len(shown), more) == (4, 2)
    assert [item.kind for item in shown] == ["supervisor_acknowledgement"] * 3 + ["first_response"]


def test_a_callback_is_the_work_of_its_callback_staff_until_it_is_completed() -> None:
    case = ward_3_case()
    callback_id, due = uuid4(), NOW + timedelta(hours=3)
    scheduled = CallbackScheduled(
        **common(case.complaint_id), callback_id=callback_id, purpose="after_first_response",
        assignee="cb-001", due_at=due, complete_by=due + timedelta(days=1), attempt=1,
    )  # fmt: skip
    apply(case, scheduled)
    [item] = work_of([case], "cb-001")[0]
    assert (item.kind, item.action, item.callback_id, item.late) == (
        "callback",
        "callback",
        callback_id,
        False,
    )
    assert may_see(case, "cb-001", DIRECTORY)
    completed = CallbackCompleted(
        **common(case.complaint_id), callback_id=callback_id, purpose="after_first_response", by="cb-001",
        attempt=1, satisfaction=4, resolved=True,
    )  # fmt: skip
    apply(case, completed)
    assert work_of([case], "cb-001") == ([], 0)


def test_a_copy_of_a_case_record_takes_new_events_of_its_own() -> None:
    """What the store does at each read: the copy is noted, the original is as it was."""
    record = CaseRecord(id=uuid4(), body="{}")
    copied = copy.deepcopy(record)
    copied.note('{"type": "EscalationStarted"}')
    assert (record.version, copied.version) == (1, 2)
    assert [type(event).__name__ for event in record.collect_events()] == ["Opened"]
    assert [type(event).__name__ for event in copied.collect_events()] == ["Opened", "Noted"]
    assert copied.id == record.id
