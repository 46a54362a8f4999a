"""The duties a case opens with: owners from the directory, deadlines anchored as the policy says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from services.escalation.classification import classify
from services.escalation.domain import Case, ComplaintFacts, plan_duties
from shared.calendar import add_working_days, due_at
from shared.directory import Directory, DirectoryError, load_directory
from shared.policy import DutyRule, EscalationPolicy, Policy, PolicyError, load_policy
from shared.settings import load_settings

pytestmark = pytest.mark.unit

SETTINGS = load_settings({})
POLICY: Policy = load_policy(SETTINGS.policy_path)
RULES: EscalationPolicy = POLICY.escalation
DIRECTORY: Directory = load_directory(SETTINGS.directory_path)

OCCURRED = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # Tuesday 10:00 in Tokyo


def facts(registered_after: timedelta, **changes: object) -> ComplaintFacts:
    fields: dict[str, object] = {
        "complaint_id": uuid4(),
        "occurred_at": OCCURRED,
        "registered_at": OCCURRED + registered_after,
        "heard_by": "n-001",
        "department": "Ward 3",
        "summary": "Waited three hours for pain medication.",
        "category": None,
        "tier": None,
    }
    return ComplaintFacts(**(fields | changes))  # type: ignore[arg-type]


def planned(
    registered_after: timedelta = timedelta(minutes=5), **changes: object
) -> dict[str, tuple[str, datetime]]:
    return {
        duty.kind: (duty.owner, duty.due_at)
        for duty in plan_duties(facts(registered_after, **changes), RULES, DIRECTORY)
    }


def test_both_tracks_and_the_response_are_owed_by_the_right_people() -> None:
    owners = {kind: owner for kind, (owner, _) in planned().items()}
    assert owners == {
        "supervisor_acknowledgement": "sv-003",
        "supervisor_report": "sv-003",
        "first_hearer_report": "n-001",
        "first_response": "hd-003",
        "patient_feedback": "hd-003",
    }


def test_reporting_deadlines_run_from_registration() -> None:
    duties = planned(timedelta(minutes=5))
    registered = OCCURRED + timedelta(minutes=5)
    assert duties["supervisor_acknowledgement"][1] == registered + timedelta(minutes=10)
    assert duties["supervisor_report"][1] == registered + timedelta(minutes=60)
    assert duties["first_hearer_report"][1] == registered + timedelta(minutes=60)
    assert duties["patient_feedback"][1] == registered + timedelta(hours=48)


def test_the_apology_call_is_due_two_hours_after_the_complaint_occurred_however_late_it_was_registered() -> (
    None
):
    # Registered 90 minutes after it occurred: 30 minutes are left.
    late = planned(timedelta(minutes=90))
    assert late["first_response"][1] == OCCURRED + timedelta(hours=2)
    assert late["first_response"][1] - (OCCURRED + timedelta(minutes=90)) == timedelta(minutes=30)


def test_a_complaint_registered_after_its_deadline_is_late_at_once() -> None:
    registered = OCCURRED + timedelta(hours=3)
    case = Case.open(facts(timedelta(hours=3)), registered, POLICY.version, RULES, DIRECTORY)
    assert case.duties["first_response"].status(registered) == "overdue"
    assert case.duties["first_hearer_report"].status(registered) == "open"
    assert case.policy_version == POLICY.version


def test_an_unknown_first_hearer_still_gets_a_supervisor_the_duty_manager() -> None:
    owners = {
        kind: owner for kind, (owner, _) in planned(heard_by="agency-77", department="Pharmacy").items()
    }
    assert owners["supervisor_acknowledgement"] == DIRECTORY.duty_manager
    assert owners["first_hearer_report"] == "agency-77"
    assert owners["first_response"] == DIRECTORY.duty_manager


def test_working_days_skip_weekends_and_the_calendars_holidays() -> None:
    friday_morning = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # Friday 10:00 in Tokyo
    # Monday 23 November is Labour Thanksgiving Day in Japan.
    assert add_working_days(friday_morning, 1, RULES.calendar) == datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    china = RULES.calendar.model_copy(update={"country": "CN", "timezone": "Asia/Shanghai"})
    before_national_day = datetime(2026, 9, 30, 2, 0, tzinfo=UTC)  # Wednesday 10:00 in Shanghai
    assert add_working_days(before_national_day, 1, china).date() > datetime(2026, 10, 7).date()
    rule = DutyRule(anchor="registered_at", within_working_days=5)
    assert due_at(rule, friday_morning, friday_morning, RULES.calendar) == datetime(
        2026, 11, 30, 1, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("summary", "category", "given", "tier"),
    [
        ("The patient was given the wrong medication.", None, None, "major"),
        ("家族が訴訟を起こすと言っている", None, None, "major"),
        ("患者家属说要找媒体", None, None, "major"),
        ("The waiting room was cold.", None, None, "complex"),
        ("The bed rail was left down.", "Patient Safety", None, "major"),
        ("No parking spaces near the entrance.", "parking", None, "minor"),
        ("The patient fell and has an injury.", None, "minor", "minor"),
    ],
)
def test_a_complaint_without_a_tier_is_classified_by_the_policy(
    summary: str, category: str | None, given: str | None, tier: str
) -> None:
    assert classify(summary, category, given, RULES.classification)[0] == tier


def test_the_case_says_why_it_has_its_tier() -> None:
    assert classify("Rude reception.", "parking", None, RULES.classification) == (
        "minor",
        "category 'parking'",
    )
    assert classify("They will call a lawyer.", None, None, RULES.classification) == (
        "major",
        "keyword 'lawyer'",
    )
    assert classify("Rude reception.", None, None, RULES.classification) == ("complex", "policy default")


def test_the_chain_above_a_supervisor_is_deputies_then_up_the_line() -> None:
    assert DIRECTORY.chain_above("sv-003") == ["sv-004", "ex-002", "ex-001", "dm-001"]


def test_callbacks_are_shared_among_the_callback_staff_by_complaint() -> None:
    assignees = {DIRECTORY.callback_staff_for(uuid4()) for _ in range(50)}
    assert assignees == {"cb-001", "cb-002"}
    complaint_id = uuid4()
    assert DIRECTORY.callback_staff_for(complaint_id) == DIRECTORY.callback_staff_for(complaint_id)
    no_callback_staff = DIRECTORY.model_copy(update={"staff": {"dm-001": DIRECTORY.staff["dm-001"]}})
    assert no_callback_staff.callback_staff_for(complaint_id) == "dm-001"


def test_a_directory_that_refers_to_unknown_staff_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "directory.toml"
    broken.write_text(
        'duty_manager = "dm"\nexecutives = ["ex"]\n[staff.dm]\nname = "D"\nroles = ["supervisor"]\n'
        'department = "Office"\nsupervisor = "ghost"\n'
    )
    with pytest.raises(DirectoryError, match="ex, ghost"):
        load_directory(broken)


def test_a_duty_takes_exactly_one_measure_and_the_policy_names_every_duty(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        DutyRule(anchor="occurred_at", within_seconds=60, within_working_days=1)
    shipped = SETTINGS.policy_path.read_text(encoding="utf-8")
    without_feedback = shipped.replace("[escalation.duties.patient_feedback]", "[escalation.duties.unused]")
    broken = tmp_path / "policy.toml"
    broken.write_text(without_feedback, encoding="utf-8")
    with pytest.raises(PolicyError):
        load_policy(broken)
