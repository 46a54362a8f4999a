"""The forms a person is offered on a case: those the services' rules (shared.case_rules) let them use,
and only those. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from services.console.allowed import Allowed, allowed
from services.console.domain import Case, apply
from shared.case_rules import report_tracks
from shared.directory import load_directory
from shared.events import CallbackScheduled, CaseClosed, DutyAssigned
from shared.settings import load_settings
from tests.factories import complaint_received

pytestmark = pytest.mark.unit

DIRECTORY = load_directory(load_settings({}).directory_path)
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
DUTIES = {
    "supervisor_acknowledgement": "sv-003",
    "supervisor_report": "sv-003",
    "first_hearer_report": "n-001",
    "first_response": "hd-003",
    "patient_feedback": "hd-003",
}


def common(complaint_id: UUID) -> dict[str, Any]:
    return {"event_id": uuid4(), "complaint_id": complaint_id, "occurred_at": NOW, "recorded_at": NOW}


def ward_3_case() -> Case:
    """Heard by the nurse n-001 on Ward 3: her supervisor sv-003 (deputy sv-004), the handler hd-003."""
    complaint_id = uuid4()
    case = Case(complaint_id)
    apply(case, complaint_received(complaint_id=complaint_id, heard_by="n-001", department="Ward 3"))
    for duty, owner in DUTIES.items():
        due = NOW + timedelta(hours=1)
        apply(
            case,
            DutyAssigned(**common(complaint_id), duty=duty, owner=owner, due_at=due, late_on_arrival=False),
        )
    callback = CallbackScheduled(
        **common(complaint_id), callback_id=uuid4(), purpose="after_first_response", assignee="cb-001",
        due_at=NOW, complete_by=NOW + timedelta(days=1), attempt=1,
    )  # fmt: skip
    apply(case, callback)
    return case


def test_the_nurse_files_her_own_report_and_nothing_else() -> None:
    offered = allowed(ward_3_case(), "n-001", DIRECTORY)
    assert offered == Allowed(duties=frozenset({"first_hearer_report"}))


def test_the_supervisor_acts_on_her_duties_and_her_reports_judges_and_closes() -> None:
    case = ward_3_case()
    offered = allowed(case, "sv-003", DIRECTORY)
    # In the handler's chain too, so the apology call and the feedback are hers to record if need be;
    # the nurse's report is the nurse's own.
    assert offered.duties == set(DUTIES) - {"first_hearer_report"}
    assert (offered.harassment, offered.corrective_measure, offered.close) == (True, True, True)
    assert offered.callbacks == frozenset()


def test_the_handler_may_not_judge_harassment_but_may_close() -> None:
    offered = allowed(ward_3_case(), "hd-003", DIRECTORY)
    assert offered.duties == {"first_response", "patient_feedback"}
    assert (offered.harassment, offered.close) == (False, True)


def test_callback_staff_record_their_teams_callbacks_and_nothing_of_the_case() -> None:
    case = ward_3_case()
    [callback_id] = case.callbacks
    for member in ("cb-001", "cb-002"):  # cb-002 shares cb-001's calls (the same department)
        assert allowed(case, member, DIRECTORY) == Allowed(callbacks=frozenset({callback_id}))


def test_an_auditor_or_a_nurse_of_another_department_is_offered_nothing() -> None:
    case = ward_3_case()
    assert allowed(case, "au-001", DIRECTORY) == Allowed()
    assert allowed(case, "n-002", DIRECTORY) == Allowed()


def test_a_closed_case_offers_only_its_callbacks() -> None:
    case = ward_3_case()
    apply(case, CaseClosed(**common(case.complaint_id), by="sv-003"))
    assert allowed(case, "sv-003", DIRECTORY) == Allowed()
    assert allowed(case, "cb-001", DIRECTORY).callbacks == frozenset(case.callbacks)


def test_a_report_fulfils_the_track_owned_and_the_supervisors_track_for_its_chain() -> None:
    owners = {"first_hearer_report": "n-001", "supervisor_report": "sv-003"}
    chain = ["sv-003", "sv-004", "ex-002"]
    assert report_tracks("n-001", owners, chain) == ["first_hearer_report"]
    assert report_tracks("sv-004", owners, chain) == ["supervisor_report"]
    assert report_tracks("hd-003", owners, chain) == []
    both = {"first_hearer_report": "sv-003", "supervisor_report": "sv-003"}
    assert report_tracks("sv-003", both, chain) == ["first_hearer_report", "supervisor_report"]
