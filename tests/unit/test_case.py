"""The reporting regime of one case: chasing, acknowledgements, reports, deadlines, closing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from services.escalation.domain import Case, ComplaintFacts, NotPermitted, NotPossible
from shared.calendar import in_quiet_hours, outside_quiet_hours
from shared.directory import Directory, load_directory
from shared.policy import EscalationPolicy, load_policy
from shared.settings import load_settings

pytestmark = pytest.mark.unit

SETTINGS = load_settings({})
RULES: EscalationPolicy = load_policy(SETTINGS.policy_path).escalation
DIRECTORY: Directory = load_directory(SETTINGS.directory_path)
OPENED = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # Tuesday 10:00 in Tokyo, outside quiet hours
INTERVAL = timedelta(seconds=RULES.chase.repeat_interval_seconds)


def open_case(summary: str = "Waited three hours for pain medication.", **changes: Any) -> Case:
    facts = ComplaintFacts(
        complaint_id=uuid4(),
        occurred_at=OPENED - timedelta(minutes=20),
        registered_at=OPENED,
        heard_by="n-001",
        department="Ward 3",
        summary=summary,
        category=None,
        tier=None,
    )
    policy = RULES.model_copy(update=changes)
    return Case.open(facts, OPENED, "v-test", policy, DIRECTORY)


def alerts(case: Case, kind: str | None = None) -> list[tuple[str, str, int]]:
    """The alerts requested since the last look: by themselves, or with a duty's assignment."""
    requested = []
    for event in case.collect_events():
        if isinstance(event, Case.AlertRequested):
            requested.append((event.kind, event.recipient, event.attempt))
        elif isinstance(event, Case.DutyAssigned) and event.alert is not None:
            requested.append((event.kind, event.alert["recipient"], event.alert["attempt"]))
    return [alert for alert in requested if kind in (None, alert[0])]


def test_a_duty_and_its_first_alert_are_one_event() -> None:
    case = open_case()
    events = case.collect_events()
    assigned = [event for event in events if isinstance(event, Case.DutyAssigned)]
    assert len(assigned) == 5
    assert not any(isinstance(event, Case.AlertRequested) for event in events)
    first = next(event for event in assigned if event.kind == "supervisor_report")
    assert first.alert is not None
    assert (first.alert["alert_number"], first.alert["tier"]) == (1, case.tier)
    assert first.alert["next_alert_at"] == OPENED + INTERVAL


def test_every_owner_is_alerted_when_the_case_opens() -> None:
    case = open_case()
    assert sorted(alerts(case)) == sorted(
        [
            ("supervisor_acknowledgement", "sv-003", 1),
            ("supervisor_report", "sv-003", 1),
            ("first_hearer_report", "n-001", 1),
            ("first_response", "hd-003", 1),
            ("patient_feedback", "hd-003", 1),
        ]
    )


def test_a_major_complaint_goes_straight_to_leadership_too() -> None:
    case = open_case("The patient was given the wrong medication and was injured.")
    assert case.tier == "major"
    assert ("major_case", DIRECTORY.executives[0], 1) in alerts(case)


def test_no_answer_means_the_configured_attempts_then_the_next_person_up_the_chain() -> None:
    case = open_case()
    case.collect_events()
    moment = OPENED
    for number in range(2, 2 * RULES.chase.attempts + 1):
        moment += INTERVAL
        assert case.alert("supervisor_acknowledgement", number, moment)
    sent = alerts(case, "supervisor_acknowledgement")
    attempts = RULES.chase.attempts
    assert sent[: attempts - 1] == [
        ("supervisor_acknowledgement", "sv-003", n) for n in range(2, attempts + 1)
    ]
    # Then the supervisor's deputy, with attempts of their own; the duty stays the supervisor's.
    assert sent[attempts - 1 :] == [
        ("supervisor_acknowledgement", "sv-004", n) for n in range(1, attempts + 1)
    ]
    assert case.duties["supervisor_acknowledgement"].owner == "sv-003"


def test_a_fire_for_an_alert_already_sent_or_not_yet_due_does_nothing() -> None:
    case = open_case()
    case.collect_events()
    assert not case.alert("supervisor_report", 1, OPENED)  # already sent at opening
    assert not case.alert("supervisor_report", 3, OPENED)  # 2 comes first
    assert case.alert("supervisor_report", 2, OPENED + INTERVAL)
    assert not case.alert("supervisor_report", 2, OPENED + INTERVAL)  # the same fire twice


def test_the_chase_ends_when_the_chain_is_exhausted() -> None:
    case = open_case()
    duty = case.duties["supervisor_report"]
    last = len(duty.recipients) * RULES.chase.attempts
    for number in range(2, last + 1):
        assert case.alert("supervisor_report", number, OPENED)
    assert not case.alert("supervisor_report", last + 1, OPENED)
    final = [
        e
        for e in case.collect_events()
        if isinstance(e, Case.AlertRequested) and e.kind == "supervisor_report"
    ]
    assert final[-1].next_alert_at is None
    assert final[-2].next_alert_at is not None


def test_an_acknowledgement_stops_the_chase_and_a_late_one_from_an_earlier_recipient_counts() -> None:
    case = open_case()
    for number in range(2, RULES.chase.attempts + 2):  # past the supervisor, on to the deputy
        case.alert("supervisor_report", number, OPENED)
    case.acknowledge("supervisor_report", "sv-003", OPENED + timedelta(minutes=20))
    assert not case.alert("supervisor_report", RULES.chase.attempts + 2, OPENED + timedelta(minutes=25))
    duty = case.duties["supervisor_report"]
    assert duty.acknowledged_by == "sv-003"
    assert duty.is_open  # acknowledged is not reported


def test_acknowledging_the_supervisor_alert_is_the_acknowledgement_duty_done() -> None:
    case = open_case()
    case.acknowledge("supervisor_acknowledgement", "sv-003", OPENED + timedelta(minutes=2))
    assert not case.duties["supervisor_acknowledgement"].is_open
    assert case.duties["supervisor_acknowledgement"].status(OPENED) == "done"


def test_someone_outside_the_chain_cannot_act_on_a_duty() -> None:
    case = open_case()
    with pytest.raises(NotPermitted, match="hd-010 is neither the owner"):
        case.acknowledge("supervisor_acknowledgement", "hd-010", OPENED)
    with pytest.raises(NotPermitted):
        case.record_first_response("n-002", OPENED, True, "")


def test_the_two_report_tracks_are_separate() -> None:
    case = open_case()
    assert case.file_report("sv-003", "ex-002", "Pain medication delayed on Ward 3.", OPENED, DIRECTORY) == [
        "supervisor_report"
    ]
    assert case.duties["first_hearer_report"].is_open
    case.deadline_reached(
        "first_hearer_report", case.duties["first_hearer_report"].due_at, OPENED + timedelta(hours=1)
    )
    missed = [e for e in case.collect_events() if isinstance(e, Case.DutyMissed)]
    assert [(e.kind, e.person) for e in missed] == [("first_hearer_report", "n-001")]
    assert case.duties["first_hearer_report"].status(OPENED + timedelta(hours=1)) == "missed"
    with pytest.raises(NotPossible, match="executive"):
        case.file_report("n-001", "sv-003", "one line", OPENED, DIRECTORY)


def test_a_late_apology_call_is_recorded_against_the_case_never_a_person() -> None:
    case = open_case()
    case.collect_events()
    assert case.deadline_reached(
        "first_response", case.duties["first_response"].due_at, OPENED + timedelta(hours=2)
    )
    assert not case.deadline_reached(
        "first_response", case.duties["first_response"].due_at, OPENED + timedelta(hours=2)
    )  # once only
    events = case.collect_events()
    assert [type(e).__name__ for e in events] == ["DeadlinePassed"]
    assert not hasattr(events[0], "person")
    case.record_first_response("hd-003", OPENED + timedelta(hours=3), True, "apologised")
    assert case.duties["first_response"].status(OPENED + timedelta(hours=3)) == "done late"


def test_a_deadline_for_a_duty_done_in_time_does_nothing() -> None:
    case = open_case()
    case.file_report("n-001", "ex-002", "Told the director.", OPENED + timedelta(minutes=5), DIRECTORY)
    case.collect_events()
    assert not case.deadline_reached(
        "first_hearer_report", case.duties["first_hearer_report"].due_at, OPENED + timedelta(hours=1)
    )
    assert case.collect_events() == []


def test_a_patient_not_reached_keeps_the_first_response_open() -> None:
    case = open_case()
    case.record_first_response("hd-003", OPENED, False, "no answer")
    assert case.duties["first_response"].is_open
    case.record_first_response("hd-003", OPENED + timedelta(minutes=10), True, "apologised")
    assert not case.duties["first_response"].is_open


@pytest.mark.parametrize(
    ("demand_valid", "means_appropriate", "impact", "harassment"),
    [
        (True, True, True, False),  # a valid demand made properly is a complaint, whatever its weight
        (False, True, True, True),
        (True, False, True, True),  # threats, hours-long calls, SNS exposure
        (False, False, False, False),  # no impact on the staff's working environment
    ],
)
def test_harassment_is_judged_on_three_criteria(
    demand_valid: bool, means_appropriate: bool, impact: bool, harassment: bool
) -> None:
    case = open_case()
    assert (
        case.assess_harassment("sv-003", demand_valid, means_appropriate, impact, OPENED, DIRECTORY)
        == harassment
    )
    assert case.protected_staff == ("n-001" if harassment else None)
    if harassment:
        assert case.harassment == "harassment, handed to sl-001"


def test_a_case_closes_only_with_every_duty_done_and_a_corrective_measure() -> None:
    case = open_case()
    with pytest.raises(NotPossible) as refused:
        case.close("sv-003", OPENED)
    assert refused.value.open_duties == list(case.duties)
    case.acknowledge("supervisor_acknowledgement", "sv-003", OPENED)
    case.file_report("sv-003", "ex-002", "Reported.", OPENED, DIRECTORY)
    case.file_report("n-001", "ex-002", "Reported.", OPENED, DIRECTORY)
    case.record_first_response("hd-003", OPENED, True, "apologised")
    case.give_feedback("hd-003", OPENED)
    with pytest.raises(NotPossible, match="corrective measure"):
        case.close("sv-003", OPENED)
    case.record_corrective_measure("sv-003", "Pain rounds every two hours.", "sv-003", OPENED)
    case.close("sv-003", OPENED)
    assert case.closed_at == OPENED
    with pytest.raises(NotPossible, match="closed"):
        case.record_corrective_measure("sv-003", "Again.", "sv-003", OPENED)


def test_a_case_keeps_the_chase_of_the_policy_it_opened_under() -> None:
    faster = RULES.chase.model_copy(update={"repeat_interval_seconds": 1, "attempts": 1})
    case = open_case(chase=faster)
    assert case.chase == faster
    assert case.duties["supervisor_report"].recipient_of(2, case.chase.attempts) == ("sv-004", 1)


def test_reminders_wait_for_the_end_of_quiet_hours() -> None:
    calendar = RULES.calendar  # 22:00 to 07:00 in Tokyo
    late_evening = datetime(2026, 11, 24, 13, 30, tzinfo=UTC)  # 22:30 in Tokyo
    assert in_quiet_hours(late_evening, calendar)
    assert outside_quiet_hours(late_evening, calendar) == datetime(2026, 11, 24, 22, 0, tzinfo=UTC)  # 07:00
    morning = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    assert outside_quiet_hours(morning, calendar) == morning


def test_a_harassment_case_moves_the_response_to_the_second_line_responder() -> None:
    case = open_case()
    case.alert("first_response", 2, OPENED + INTERVAL)
    case.collect_events()
    assert case.assess_harassment("sv-003", False, False, True, OPENED + INTERVAL, DIRECTORY)
    events = case.collect_events()
    reassigned = [(e.kind, e.owner) for e in events if isinstance(e, Case.DutyReassigned)]
    assert reassigned == [("first_response", "sl-001"), ("patient_feedback", "sl-001")]
    new_alerts = [
        (e.kind, e.recipient, e.attempt, e.alert_number) for e in events if isinstance(e, Case.AlertRequested)
    ]
    assert new_alerts == [("first_response", "sl-001", 1, 3), ("patient_feedback", "sl-001", 1, 2)]
    # The timer set for the old owner's next alert finds it already sent: nothing happens.
    assert not case.alert("first_response", 3, OPENED + 2 * INTERVAL)
    assert case.alert("first_response", 4, OPENED + 2 * INTERVAL)
    assert alerts(case, "first_response") == [("first_response", "sl-001", 2)]
    with pytest.raises(NotPermitted):
        case.record_first_response("hd-003", OPENED, True, "")
    case.record_first_response("sl-001", OPENED + INTERVAL, True, "Calm call; facts confirmed.")
    assert case.protected_staff == "n-001"


def test_a_completed_callback_feeds_the_result_back_to_the_patient() -> None:
    case = open_case()
    case.record_first_response("hd-003", OPENED, True, "apologised")
    case.collect_events()
    case.callback_completed("cb-001", OPENED + timedelta(days=1))
    assert case.duties["patient_feedback"].fulfilled_by == "cb-001"
    case.callback_completed("cb-002", OPENED + timedelta(days=2))  # done once: a second changes nothing
    fulfilled = [e for e in case.collect_events() if isinstance(e, Case.DutyFulfilled)]
    assert [(e.kind, e.by) for e in fulfilled] == [("patient_feedback", "cb-001")]


def test_an_unsatisfied_patient_reopens_a_closed_case_with_a_new_first_response_duty() -> None:
    case = open_case()
    case.acknowledge("supervisor_acknowledgement", "sv-003", OPENED)
    case.file_report("sv-003", "ex-002", "Reported.", OPENED, DIRECTORY)
    case.file_report("n-001", "ex-002", "Reported.", OPENED, DIRECTORY)
    case.record_first_response("hd-003", OPENED, True, "apologised")
    case.give_feedback("hd-003", OPENED)
    case.record_corrective_measure("sv-003", "Pain rounds every two hours.", "sv-003", OPENED)
    case.close("sv-003", OPENED)
    first = case.duties["first_response"]
    alerts_before = first.alerts_sent
    case.collect_events()

    reopened_at = OPENED + timedelta(days=8)
    case.reopen(uuid4(), "the problem is not resolved", reopened_at, RULES.duties["first_response"])

    assert case.closed_at is None
    duty = case.duties["first_response"]
    assert duty.is_open
    assert duty.owner == "hd-003"
    assert duty.due_at == reopened_at + timedelta(seconds=RULES.duties["first_response"].within_seconds or 0)
    events = case.collect_events()
    assert [type(e).__name__ for e in events] == ["Reopened", "DutyAssigned"]
    # The chase numbers on, so the new alerts' timers never meet the old ones.
    assigned = events[1]
    assert isinstance(assigned, Case.DutyAssigned)
    assert assigned.alert is not None
    assert (assigned.alert["recipient"], assigned.alert["alert_number"], assigned.alert["attempt"]) == (
        "hd-003",
        alerts_before + 1,
        1,
    )
    # The deadline before the reopening no longer counts; the new one does.
    assert not case.deadline_reached("first_response", first.due_at, reopened_at + timedelta(days=1))
    assert case.deadline_reached("first_response", duty.due_at, reopened_at + timedelta(days=1))
    case.record_first_response("hd-003", reopened_at + timedelta(hours=1), True, "called again")
    assert not case.duties["first_response"].is_open
