"""Learning from a case: HCAT coding, learning notices chased and answered, safety-event links. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from services.escalation.application import NOTICE_DEADLINE_RULE, EscalationApplication
from services.escalation.case_notices import NoticesOfCase
from services.escalation.domain import Case, ComplaintFacts
from services.escalation.notices import UnknownDepartment, answerers
from shared.directory import Directory, load_directory
from shared.events import AlertRequested, LearningNoticeIssued
from shared.policy import EscalationPolicy, HcatPolicy, load_policy
from shared.refusals import NotPermitted, NotPossible
from shared.settings import load_settings

pytestmark = pytest.mark.unit

SETTINGS = load_settings({})
POLICY = load_policy(SETTINGS.policy_path)
RULES: EscalationPolicy = POLICY.escalation
DIRECTORY: Directory = load_directory(SETTINGS.directory_path)
OPENED = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # Tuesday 10:00 in Tokyo, outside quiet hours
INTERVAL = timedelta(seconds=RULES.chase.repeat_interval_seconds)
DUE = OPENED + timedelta(days=14)
TWO_WARDS = answerers(["Ward 3", "Outpatients"], DIRECTORY)


def facts(channel: str = "phone", category: str | None = None) -> ComplaintFacts:
    return ComplaintFacts(
        complaint_id=uuid4(),
        occurred_at=OPENED - timedelta(minutes=20),
        registered_at=OPENED,
        heard_by="n-001",
        department="Ward 3",
        summary="Waited three hours for pain medication.",
        category=category,
        tier=None,
        channel=channel,
    )


def open_case() -> Case:
    case = Case.open(facts(), OPENED, "v-test", RULES, DIRECTORY)
    case.collect_events()
    return case


def with_notice(case: Case) -> UUID:
    case.record_corrective_measure("hd-003", "Rounds every hour.", "sv-003", OPENED)
    notice_id = uuid4()
    case.issue_notice(notice_id, "q-001", True, TWO_WARDS, ["institutional_processes"], DUE, OPENED)
    return notice_id


def notice_alerts(case: Case) -> list[tuple[str, str, int]]:
    return [
        (event.department, event.recipient, event.alert_number)
        for event in case.collect_events()
        if isinstance(event, NoticesOfCase.NoticeAlertRequested)
    ]


def types(events: Sequence[object]) -> list[str]:
    return [type(event).__name__ for event in events]


def test_a_coding_fills_every_category_and_the_case_coding_is_the_latest_that_is_not_blind() -> None:
    case = open_case()
    case.code("hd-003", False, {"institutional_processes": 2}, 1, "care_on_the_ward", False, OPENED)
    case.code("q-001", True, {"safety": 3}, 3, "care_on_the_ward", True, OPENED)
    assert case.coding is not None
    assert case.coding.coded_by == "hd-003"
    assert case.coding.severities["safety"] == 0
    assert len(case.coding.severities) == 7
    assert case.coding.present == ["institutional_processes"]
    case.code("q-001", True, {"communication": 1}, 0, "other", False, OPENED)  # recoded openly
    assert case.coding.coded_by == "q-001"
    assert len(case.codings) == 3


def test_a_handler_codes_only_a_case_they_belong_to_and_a_blind_coding_is_a_second_coders() -> None:
    case = open_case()
    with pytest.raises(NotPermitted, match="hd-010 is not among the people"):
        case.code("hd-010", False, {}, 0, "other", False, OPENED)
    case.code("hd-003", False, {"safety": 1}, 1, "other", False, OPENED)
    with pytest.raises(NotPossible, match="a blind coding is a second coder's"):
        case.code("hd-003", False, {"safety": 1}, 1, "other", True, OPENED)


def test_the_responsible_person_of_a_department_is_the_supervisor_above_its_handler() -> None:
    assert TWO_WARDS["Ward 3"][:2] == ["sv-003", "sv-004"]  # then sv-003's chain: deputy, up the line
    assert TWO_WARDS["Outpatients"][0] == "sv-010"
    with pytest.raises(UnknownDepartment, match="no department 'Kitchen'"):
        answerers(["Kitchen"], DIRECTORY)


def test_a_notice_needs_the_corrective_measure_and_alerts_each_department_with_its_own_number() -> None:
    case = open_case()
    with pytest.raises(NotPossible, match="record the corrective measure first"):
        case.issue_notice(uuid4(), "q-001", True, TWO_WARDS, [], DUE, OPENED)
    with pytest.raises(NotPermitted):
        case.issue_notice(uuid4(), "sv-010", False, TWO_WARDS, [], DUE, OPENED)
    with_notice(case)
    assert notice_alerts(case) == [("Ward 3", "sv-003", 1), ("Outpatients", "sv-010", 2)]


def test_a_notice_is_chased_until_read_or_answered_and_a_fire_seen_twice_changes_nothing() -> None:
    case = open_case()
    notice_id = with_notice(case)
    case.collect_events()
    assert case.chase_notice(1, OPENED + INTERVAL)  # Ward 3's next alert
    assert not case.chase_notice(1, OPENED + INTERVAL)  # the same fire again
    assert notice_alerts(case) == [("Ward 3", "sv-003", 3)]
    case.read_notice(notice_id, "Outpatients", "sv-010", OPENED + INTERVAL)
    assert not case.chase_notice(2, OPENED + INTERVAL)  # read: no more alerts to Outpatients
    case.answer_notice(notice_id, "Ward 3", "sv-003", "action_complete", None, OPENED + INTERVAL)
    assert not case.chase_notice(3, OPENED + 2 * INTERVAL)  # answered: the chase stops


def test_only_the_departments_people_answer_and_not_applicable_says_why_and_once() -> None:
    case = open_case()
    notice_id = with_notice(case)
    with pytest.raises(NotPermitted, match="sv-010 is neither responsible for Ward 3"):
        case.answer_notice(notice_id, "Ward 3", "sv-010", "action_complete", None, OPENED)
    with pytest.raises(NotPossible, match="needs the reason"):
        case.answer_notice(notice_id, "Outpatients", "sv-010", "not_applicable", " ", OPENED)
    with pytest.raises(NotPossible, match="was not issued to 'Radiology'"):
        case.answer_notice(notice_id, "Radiology", "sv-010", "action_complete", None, OPENED)
    case.answer_notice(notice_id, "Outpatients", "sv-010", "not_applicable", "no night rounds", OPENED)
    with pytest.raises(NotPossible, match="already answered"):
        case.answer_notice(notice_id, "Outpatients", "sv-010", "action_complete", None, OPENED)
    part = case.notices[notice_id].departments["Outpatients"]
    assert (part.answer, part.reason, part.status(OPENED)) == (
        "not_applicable",
        "no night rounds",
        "not_applicable",
    )


def test_an_answer_to_a_notice_nobody_read_records_the_read_by_whoever_answers() -> None:
    case = open_case()
    notice_id = with_notice(case)
    case.read_notice(notice_id, "Outpatients", "sv-010", OPENED)
    case.collect_events()
    later = OPENED + INTERVAL
    case.answer_notice(notice_id, "Ward 3", "sv-004", "action_complete", None, later)  # sv-003's deputy
    case.answer_notice(notice_id, "Outpatients", "sv-010", "not_applicable", "no night rounds", later)
    answered = case.collect_events()
    assert types(answered) == ["LearningNoticeRead", "LearningNoticeAnswered", "LearningNoticeAnswered"]
    assert (answered[0].department, answered[0].read_by) == ("Ward 3", "sv-004")  # type: ignore[attr-defined]
    assert case.notices[notice_id].departments["Outpatients"].acknowledged_by == "sv-010"  # read before


def test_the_deadline_makes_unanswered_departments_overdue_and_never_names_a_person() -> None:
    case = open_case()
    notice_id = with_notice(case)
    case.answer_notice(notice_id, "Ward 3", "sv-003", "action_complete", None, OPENED)
    case.collect_events()
    assert not case.notice_deadline_reached(notice_id, DUE - timedelta(seconds=1))
    assert case.notice_deadline_reached(notice_id, DUE)
    overdue = case.collect_events()
    assert types(overdue) == ["LearningNoticeOverdue"]
    assert overdue[0].department == "Outpatients"  # type: ignore[attr-defined]  # a LearningNoticeOverdue
    assert not case.notice_deadline_reached(notice_id, DUE)  # seen before
    assert case.notices[notice_id].departments["Outpatients"].status(DUE) == "overdue"
    assert not any(isinstance(event, Case.DutyMissed) for event in case.collect_events())


def test_the_alert_link_reads_the_notices_that_alerted_that_person() -> None:
    case = open_case()
    notice_id = with_notice(case)
    assert case.read_through_link("sv-010", OPENED) == [(notice_id, "Outpatients")]
    assert case.read_through_link("sv-010", OPENED) == []
    assert case.notices[notice_id].departments["Ward 3"].acknowledged_by is None


def test_a_complaint_links_only_to_an_adverse_event_report() -> None:
    case = open_case()
    report = uuid4()
    with pytest.raises(NotPossible, match="is not an adverse-event report"):
        case.link_safety_event("q-001", True, report, "phone", OPENED)
    with pytest.raises(NotPossible, match="linked to itself"):
        case.link_safety_event("q-001", True, case.id, "staff_report", OPENED)
    with pytest.raises(NotPermitted):
        case.link_safety_event("sv-010", False, report, "staff_report", OPENED)
    case.link_safety_event("hd-003", False, report, "staff_report", OPENED)
    case.link_safety_event("q-001", True, report, "staff_report", OPENED)  # again: nothing new
    assert case.safety_events == [report]
    assert types(case.collect_events()) == ["SafetyEventLinked"]


def test_notice_events_go_on_the_record_with_their_timers() -> None:
    store = EscalationApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    case = open_case()
    case.record_corrective_measure("hd-003", "Rounds every hour.", "sv-003", OPENED)
    case.collect_events()
    notice_id = uuid4()
    case.issue_notice(notice_id, "q-001", True, TWO_WARDS, ["safety"], DUE, OPENED)
    wire = [store.wire_event(event) for event in case.collect_events()]
    notice = wire[0]
    assert isinstance(notice, LearningNoticeIssued)
    assert notice.responsible == {"Ward 3": "sv-003", "Outpatients": "sv-010"}
    [deadline] = store.timers_for(notice)
    assert (deadline.rule, deadline.aggregate_id, deadline.due_at) == (NOTICE_DEADLINE_RULE, notice_id, DUE)
    alert = wire[1]
    assert isinstance(alert, AlertRequested)
    assert alert.duty == "learning_notice"
    [chase] = store.timers_for(alert)
    assert (chase.part, chase.attempt) == ("learning_notice", 2)


def test_a_case_opened_before_cases_kept_the_channel_and_category_is_read_as_not_known() -> None:
    store = EscalationApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    case = Case.open(facts(category="parking"), OPENED, "v-test", RULES, DIRECTORY)
    [started, *_] = case.collect_events()
    stored = store.mapper.to_stored_event(started)
    state = store.mapper.transcoder.decode(stored.state)
    for added_in_v2 in ("class_version", "channel", "category"):
        del state[added_in_v2]
    as_v1 = replace(stored, state=store.mapper.transcoder.encode(state))
    event = store.mapper.to_domain_event(as_v1)
    assert isinstance(event, Case.Started)
    reopened = event.mutate(None)
    assert isinstance(reopened, Case)
    assert (reopened.channel, reopened.category, reopened.heard_by) == (None, None, "n-001")


def test_the_policy_suggests_an_hcat_category_for_the_hospitals_own_and_refuses_an_unknown_one() -> None:
    assert POLICY.hcat.suggestion("Parking") == "environment"
    assert POLICY.hcat.suggestion("something else") is None
    assert POLICY.hcat.suggestion(None) is None
    with pytest.raises(ValidationError, match=r"map\.parking"):
        HcatPolicy.model_validate({"map": {"parking": "cars"}})
