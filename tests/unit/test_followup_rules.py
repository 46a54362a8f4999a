"""Callback visits: when they fall due, attempts and their limit, outcomes that reopen the case."""

import re
from datetime import UTC, datetime, time, timedelta, timezone
from uuid import uuid4

import pytest

from services.followup.domain import (
    Callback,
    NotPermitted,
    NotPossible,
    NotYetDue,
    callback_due,
    reopen_reason,
)
from shared.case_rules import callback_team
from shared.directory import StaffMember, load_directory
from shared.events import CallbackPurpose
from shared.policy import load_policy
from shared.settings import load_settings
from shared.timers import Timer

pytestmark = pytest.mark.unit

SETTINGS = load_settings({})
POLICY = load_policy(SETTINGS.policy_path)
RULES = POLICY.followup
CALENDAR = POLICY.escalation.calendar
DIRECTORY = load_directory(SETTINGS.directory_path)
TUESDAY_10_TOKYO = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


def schedule(
    purpose: CallbackPurpose = "after_first_response", anchor: datetime = TUESDAY_10_TOKYO
) -> Callback:
    return Callback.schedule(uuid4(), uuid4(), purpose, anchor, RULES, CALENDAR, DIRECTORY)


def test_callbacks_fall_due_at_the_policy_offsets_from_what_they_follow() -> None:
    assert schedule("after_first_response").due_at == TUESDAY_10_TOKYO + timedelta(days=1)
    assert schedule(
        "after_closure", TUESDAY_10_TOKYO - timedelta(days=1)
    ).due_at == TUESDAY_10_TOKYO + timedelta(days=6)
    callback = schedule()
    assert callback.complete_by == callback.due_at + timedelta(seconds=RULES.complete_within_seconds)
    assert callback.assignee in ("cb-001", "cb-002")
    assert callback.status == "scheduled"


def test_a_callback_never_falls_due_in_quiet_hours_or_on_a_day_off() -> None:
    friday_23_tokyo = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    monday_7_tokyo = datetime(2026, 11, 29, 22, 0, tzinfo=UTC)
    assert callback_due(friday_23_tokyo, timedelta(0), RULES, CALENDAR) == monday_7_tokyo
    # 23 November is Labour Thanksgiving Day in Japan: the call waits for Tuesday morning.
    holiday_noon = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    assert callback_due(holiday_noon, timedelta(0), RULES, CALENDAR) == datetime(
        2026, 11, 23, 22, 0, tzinfo=UTC
    )
    every_day = RULES.model_copy(update={"working_days_only": False})
    assert callback_due(holiday_noon, timedelta(0), every_day, CALENDAR) == holiday_noon
    no_quiet_hours = CALENDAR.model_copy(update={"quiet_hours_start": time(0), "quiet_hours_end": time(0)})
    assert callback_due(friday_23_tokyo, timedelta(0), every_day, no_quiet_hours) == friday_23_tokyo


def test_a_patient_not_reached_is_tried_again_then_the_callback_is_abandoned() -> None:
    callback = schedule()
    callback.collect_events()
    for attempt in range(1, RULES.max_attempts):
        called = callback.due_at
        callback.not_reached("cb-001", called, "no answer", DIRECTORY)
        assert callback.attempt == attempt + 1
        assert callback.due_at == callback_due(
            called, timedelta(seconds=RULES.retry_interval_seconds), RULES, CALENDAR
        )
    called = callback.due_at
    callback.not_reached("cb-002", called, "no answer", DIRECTORY)
    assert callback.status == "abandoned"
    names = [type(e).__name__ for e in callback.collect_events()]
    assert names == ["Attempted", "Rescheduled"] * (RULES.max_attempts - 1) + ["Attempted", "Abandoned"]
    with pytest.raises(NotPossible, match="abandoned"):
        callback.reached("cb-001", called, 5, True, "", DIRECTORY)


@pytest.mark.parametrize(
    ("satisfaction", "resolved", "reason"),
    [
        (4, True, None),
        (3, True, None),
        (2, True, "satisfaction 2 of 5"),
        (5, False, "the problem is not resolved"),
        (1, False, "the problem is not resolved; satisfaction 1 of 5"),
    ],
)
def test_an_unresolved_problem_or_an_unhappy_patient_asks_for_the_case_to_reopen(
    satisfaction: int, resolved: bool, reason: str | None
) -> None:
    assert reopen_reason(satisfaction, resolved) == reason
    callback = schedule()
    callback.collect_events()
    callback.reached("cb-001", callback.due_at, satisfaction, resolved, "in the patient's words", DIRECTORY)
    events = callback.collect_events()
    requests = [e for e in events if isinstance(e, Callback.ReopenRequested)]
    assert [e.reason for e in requests] == ([reason] if reason else [])
    assert callback.status == "completed"
    assert callback.comments == "in the patient's words"


def test_only_the_assignee_or_callback_staff_of_their_team_make_the_call() -> None:
    elsewhere = StaffMember(name="Abe Ren", roles=["callback_staff"], department="Outpatients")
    directory = DIRECTORY.model_copy(update={"staff": DIRECTORY.staff | {"cb-900": elsewhere}})
    callback = schedule()
    assert callback_team(callback.assignee, directory) == {"cb-001", "cb-002"}
    for outsider in ("n-001", "cb-900"):
        with pytest.raises(NotPermitted, match=outsider):
            callback.reached(outsider, callback.due_at, 5, True, "", directory)
    teammate = next(staff for staff in ("cb-001", "cb-002") if staff != callback.assignee)
    callback.reached(teammate, callback.due_at, 5, True, "", directory)
    assert callback.status == "completed"


def test_a_call_before_the_attempt_is_due_is_refused_saying_when_it_is_due() -> None:
    callback = schedule()
    callback.collect_events()
    early = callback.due_at - timedelta(seconds=1)
    # Due at 10:00 on Wednesday in Tokyo, said in the hospital's time.
    due = re.escape("attempt 1 is due at 2026-11-25T10:00:00+09:00")
    with pytest.raises(NotYetDue, match=due):
        callback.not_reached("cb-001", early, "no answer", DIRECTORY)
    with pytest.raises(NotYetDue, match=due):
        callback.reached("cb-001", early, 5, True, "", DIRECTORY)
    assert isinstance(NotYetDue("x"), NotPossible)  # a 409, as any action that does not fit the state
    assert callback.collect_events() == []
    assert (callback.attempt, callback.status, callback.outcome) == (1, "scheduled", None)
    # Due means the due time has come: the timer's fire need not have arrived yet.
    callback.reached("cb-001", callback.due_at, 5, True, "", DIRECTORY)
    assert callback.status == "completed"
    # Or the timer has fired (to the second, so up to a second before a due time with a fraction):
    # a callback the work list shows as due can be called.
    fired = schedule()
    fired.fall_due()
    fired.not_reached("cb-001", fired.due_at - timedelta(milliseconds=500), "no answer", DIRECTORY)
    assert fired.attempt == 2


@pytest.mark.parametrize("called_after_due", [timedelta(0), timedelta(hours=11), timedelta(days=3)])
def test_the_next_attempt_never_falls_before_the_attempt_it_replaces(called_after_due: timedelta) -> None:
    """Once "not reached" 12 hours early moved a 10:00 call to 07:00 the same morning."""
    callback = schedule()
    first_due = callback.due_at
    with pytest.raises(NotYetDue):
        callback.not_reached("cb-001", first_due - timedelta(hours=12), "", DIRECTORY)
    callback.not_reached("cb-001", first_due + called_after_due, "", DIRECTORY)
    assert callback.attempt == 2
    assert callback.due_at >= first_due + called_after_due + timedelta(seconds=RULES.retry_interval_seconds)


def test_a_callback_falls_due_once_for_its_attempt_and_is_overdue_once_while_open() -> None:
    callback = schedule()
    assert callback.is_awaiting(1)
    assert not callback.is_awaiting(2)
    callback.fall_due()
    assert callback.status == "due"
    assert not callback.is_awaiting(1)
    late = schedule()
    assert late.deadline_passed(late.complete_by)
    assert not late.deadline_passed(late.complete_by)
    assert late.status == "overdue"
    overdue = [e for e in late.collect_events() if isinstance(e, Callback.BecameOverdue)]
    assert len(overdue) == 1
    assert not hasattr(overdue[0], "by")  # against the case, never a person
    done = schedule()
    done.reached("cb-001", done.due_at, 5, True, "", DIRECTORY)
    assert not done.deadline_passed(done.complete_by)


def test_a_timer_schedules_in_utc_with_second_resolution() -> None:
    tokyo = timezone(timedelta(hours=9))
    timer = Timer(
        rule="callback", aggregate_id=uuid4(), attempt=2, due_at=datetime(2026, 11, 24, 11, 0, 5, 999, tokyo)
    )
    assert timer.schedule == "@at 2026-11-24T02:00:06Z"  # the next whole second: never before it is due
    assert timer.key == f"callback.{timer.aggregate_id}.2"
    assert Timer.decode(timer.encode()) == timer
