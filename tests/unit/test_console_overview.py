"""The console's overview: figures on a small known set of cases, judged by the audit report's rule;
its picture; durations as people read them. Pure."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from jinja2.ext import babel_extract

from services.console import auditing, erasure, overview, record_desk, roles, web
from services.console.chart import WIDTH, duty_bars
from services.console.domain import Case, apply
from services.console.i18n import LANGUAGES, translations
from shared.duty_status import duty_status
from shared.events import (
    CaseClosed,
    DutyAssigned,
    DutyFulfilled,
    DutyMissed,
    EscalationStarted,
    FirstResponseRecorded,
)
from tests.factories import complaint_received

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
TEMPLATES = Path(overview.__file__).parent / "templates"


def at(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


def common(complaint_id: UUID, when: datetime) -> dict[str, Any]:
    return {"event_id": uuid4(), "complaint_id": complaint_id, "occurred_at": when, "recorded_at": when}


def case_of(department: str, tier: str, occurred: float, **duties: tuple[float, float | None, bool]) -> Case:
    """A case that occurred ``occurred`` minutes from NOW; each duty: (due, done or None, missed)."""
    complaint_id = uuid4()
    case = Case(complaint_id)
    apply(
        case, complaint_received(complaint_id=complaint_id, department=department, occurred_at=at(occurred))
    )
    apply(
        case,
        EscalationStarted(
            **common(complaint_id, at(occurred)), policy_version="1", tier=tier, tier_reason="intake"
        ),
    )
    for duty, (due, done, missed) in duties.items():
        event = common(complaint_id, at(occurred))
        apply(case, DutyAssigned(**event, duty=duty, owner="sv-003", due_at=at(due), late_on_arrival=False))
        if done is not None:
            apply(case, DutyFulfilled(**common(complaint_id, at(done)), duty=duty, by="sv-003", how="form"))
        if missed:
            apply(
                case, DutyMissed(**common(complaint_id, at(due)), duty=duty, person="sv-003", due_at=at(due))
            )
    return case


def reached(case: Case, minutes: float) -> None:
    event = common(case.complaint_id, at(minutes))
    apply(case, FirstResponseRecorded(**event, by="hd-003", patient_reached=True, within_window=True))


def known_cases() -> list[Case]:
    """Three open cases and one closed: Ward 3 has a major and a minor one, Radiology a minor one."""
    on_time = case_of(
        "Ward 3",
        "major",
        -300,
        supervisor_report=(-240, -250, False),
        first_hearer_report=(-240, -200, False),
    )
    reached(on_time, -240)  # 60 min after it occurred
    missed = case_of(
        "Ward 3", "minor", -200, supervisor_report=(-100, None, True), first_response=(-80, None, False)
    )
    reached(missed, -20)  # 180 min after
    waiting = case_of("Radiology", "minor", -10, supervisor_report=(50, None, False))
    closed = case_of("Radiology", "complex", -1000, first_hearer_report=(-900, -890, False))
    reached(closed, -970)  # 30 min after
    apply(closed, CaseClosed(**common(closed.complaint_id, at(-800)), by="ex-001"))
    return [on_time, missed, waiting, closed]


def test_the_overview_counts_open_cases_tracks_shortfalls_by_role_and_response_times() -> None:
    cases = known_cases()
    found = overview.overview(cases, NOW)

    assert {dept: dict(counted) for dept, counted in found.open_by_department.items()} == {
        "Radiology": {"minor": 1},
        "Ward 3": {"major": 1, "minor": 1},
    }
    assert found.open_cases == 3
    # Newest first; the closed case is not listed.
    assert [(row.complaint_id, row.tracks) for row in found.tracks] == [
        (cases[2].complaint_id, {"supervisor_report": "not_yet_due", "first_hearer_report": None}),
        (cases[1].complaint_id, {"supervisor_report": "missed", "first_hearer_report": None}),
        (cases[0].complaint_id, {"supervisor_report": "on_time", "first_hearer_report": "late"}),
    ]
    # Every case counts here, the closed one too; by duty and role, with no one's name.
    assert {key: dict(counted) for key, counted in found.duties.items()} == {
        ("supervisor_report", "supervisor"): {"on_time": 1, "missed": 1, "not_yet_due": 1},
        ("first_hearer_report", "first hearer"): {"late": 2},
        ("first_response", "handler"): {"overdue": 1},
    }
    assert sorted(found.response_seconds) == [1800.0, 3600.0, 10800.0]
    assert (found.response_median, found.response_p90) == (3600.0, 10800.0)


def test_the_overview_judges_each_duty_as_the_audit_report_does() -> None:
    for case in known_cases():
        for duty in case.duties.values():
            expected = duty_status(duty.kind, duty.due_at, duty.fulfilled_at, duty.deadline_passed, NOW)
            assert overview.status_of(duty, NOW) == expected


def test_only_the_open_cases_listed_are_the_newest_and_the_rest_are_counted() -> None:
    found = overview.overview(known_cases(), NOW, listed=1)
    assert len(found.tracks) == 1
    assert found.more_cases == 2


def test_durations_read_in_minutes_hours_or_days() -> None:
    assert overview.readable_duration(45 * 60) == (45, "min")
    assert overview.readable_duration(119 * 60) == (119, "min")
    assert overview.readable_duration(3 * 3600 + 1800) == (3.5, "h")
    assert overview.readable_duration(3 * 86400) == (3.0, "d")


def test_each_duty_is_one_bar_shared_among_its_statuses() -> None:
    bars, height = duty_bars({("supervisor_report", "supervisor"): Counter(on_time=3, missed=1)})
    [bar] = bars
    assert [(s.status, s.count) for s in bar.segments] == [("on_time", 3), ("missed", 1)]
    first, second = bar.segments
    assert first.width == pytest.approx(3 * second.width)
    assert second.x + second.width == pytest.approx(WIDTH - 10)
    assert height > bar.y


def test_the_new_pages_strings_are_in_each_catalogue() -> None:
    wanted = {
        roles.NOT_FOR_YOUR_ROLE,
        *overview.STATUS_LABELS.values(),
        *overview.ROLE_LABELS.values(),
        *overview.UNITS.values(),
        record_desk.NO_AUDITOR_CREDENTIAL,
        record_desk.NO_TRUST_FILE,
        record_desk.BUS_DOWN,
        auditing.NO_SUCH_COMPLAINT,
        web.NOT_AN_ID,
        erasure.NO_REASON,
        erasure.NOT_CONFIRMED,
    }
    with (TEMPLATES / "duties.svg").open("rb") as source:
        wanted |= {m for _, _, m, _ in babel_extract(source, ["_"], [], {}) if isinstance(m, str)}
    for language in ("ja", "zh"):
        catalogue = translations(language)
        assert sorted(m for m in wanted if catalogue.gettext(m) == m) == [], language
    assert set(LANGUAGES) == {"ja", "zh", "en"}
