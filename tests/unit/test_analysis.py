"""The analysis's rules on small scripted records: which coding counts, periods, trends, kappa, notices."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest

from kizuki.agreement import kappa
from kizuki.analysis import AnalysisRebuild, suggested_categories
from kizuki.analysis_figures import Periods, afterwards, figures, recurring, trend
from kizuki.analysis_forms import print_csv, print_table
from kizuki.audit import RecordMessage
from shared.events import (
    CaseCoded,
    LearningNoticeIssued,
    LearningNoticeOverdue,
    WireEvent,
    encode_event,
    headers_for,
)
from shared.policy import HcatPolicy
from tests.factories import complaint_received

pytestmark = pytest.mark.unit

T0 = datetime(2025, 1, 10, tzinfo=UTC)
UTC_MONTHS = Periods("month", ZoneInfo("UTC"))


def record(events: list[WireEvent]) -> AnalysisRebuild:
    rebuild = AnalysisRebuild()
    for sequence, event in enumerate(events, 1):
        message_id = f"{event.service}:{sequence}"
        rebuild.add(
            RecordMessage(sequence, event.subject, headers_for(event, message_id), encode_event(event))
        )
    return rebuild


def coded(complaint: UUID, at: datetime, blind: bool = False, **severities: int) -> CaseCoded:
    return CaseCoded(
        event_id=uuid4(),
        complaint_id=complaint,
        occurred_at=at,
        recorded_at=at,
        coded_by="q-001",
        blind=blind,
        severities=severities,
        harm=1,
        stage="other",
    )


def analysed(events: list[WireEvent], suggested: dict[str, str] | None = None) -> dict[str, Any]:
    rebuild = record(events)
    return figures(rebuild.found(), rebuild.notices.values(), UTC_MONTHS, (None, None), suggested or {})


def test_the_case_counts_under_its_latest_coding_not_a_blind_one() -> None:
    a, b, c = UUID(int=1), UUID(int=2), UUID(int=3)
    found = analysed(
        [
            complaint_received(complaint_id=a, occurred_at=T0, department="Ward 3"),
            complaint_received(complaint_id=b, occurred_at=T0, category="=wait"),
            complaint_received(complaint_id=c, occurred_at=T0, category="Waiting"),
            coded(a, T0, safety=2),
            coded(a, T0 + timedelta(hours=1), communication=1),  # recoded: the first coding stays on record
            coded(a, T0 + timedelta(hours=2), blind=True, safety=3),
        ],
        suggested=suggested_categories(HcatPolicy(map={"WAITING": "institutional_processes"})),
    )
    assert found["by_category"] == {
        "communication": {"counts": [1], "earlier": 0, "later": 0, "trend": "steady"},
        "not_coded": {"counts": [1], "earlier": 0, "later": 0, "trend": "steady"},
    }
    assert found["by_domain"]["relationships"]["counts"] == [1]
    assert found["by_category_suggested"] == {"institutional_processes": [1]}  # apart, and only a suggestion
    agreement = found["agreement"]
    assert agreement["safety"]["pairs"] == 1
    assert agreement["communication"]["pairs"] == 1


def test_a_policy_without_an_hcat_map_suggests_nothing() -> None:
    assert suggested_categories(HcatPolicy()) == {}


def test_periods_are_the_hospitals_months_and_quarters_empty_ones_included() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    late_march_utc = datetime(2025, 3, 31, 20, tzinfo=UTC)  # already April in Tokyo
    assert Periods("month", tokyo).of(late_march_utc) == "2025-04"
    assert Periods("quarter", tokyo).of(late_march_utc) == "2025-Q2"
    assert Periods("quarter", ZoneInfo("UTC")).of(late_march_utc) == "2025-Q1"
    assert UTC_MONTHS.between(datetime(2024, 11, 30, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)) == [
        "2024-11",
        "2024-12",
        "2025-01",
        "2025-02",
    ]
    quarters = Periods("quarter", ZoneInfo("UTC"))
    assert quarters.between(T0, datetime(2025, 12, 31, tzinfo=UTC)) == [
        "2025-Q1",
        "2025-Q2",
        "2025-Q3",
        "2025-Q4",
    ]


def test_a_trend_compares_the_later_half_with_the_earlier_half() -> None:
    assert trend([1, 9, 3]) == {"earlier": 1, "later": 3, "trend": "rising"}  # the middle one left out
    assert trend([4, 0, 0, 1]) == {"earlier": 4, "later": 1, "trend": "falling"}
    assert trend([2]) == {"earlier": 0, "later": 0, "trend": "steady"}


def test_kappa_as_cohen_defined_it_and_with_linear_weights() -> None:
    # 20 both present, 5 and 10 disagreeing, 15 both absent: observed 0.7, chance 0.5, kappa 0.4.
    pairs = [(1, 1)] * 20 + [(1, 0)] * 5 + [(0, 1)] * 10 + [(0, 0)] * 15
    assert kappa(pairs, 2, weighted=False) == 0.4
    assert kappa([(0, 0), (3, 3), (1, 1)], 4, weighted=True) == 1.0
    # A near miss counts partly: 3 against 2 agrees more than 3 against 0.
    near = kappa([(3, 2), (0, 0), (1, 1), (2, 2)], 4, weighted=True)
    far = kappa([(3, 0), (0, 0), (1, 1), (2, 2)], 4, weighted=True)
    assert near is not None
    assert far is not None
    assert near > far
    assert kappa([(0, 0), (0, 0)], 2, weighted=False) is None  # chance explains every agreement
    assert kappa([], 2, weighted=False) is None


def test_a_notice_too_recent_to_compare_says_so_and_its_overdue_department_is_shown() -> None:
    complaint, notice = UUID(int=1), uuid4()
    at = T0 + timedelta(days=1)
    issued = LearningNoticeIssued(
        event_id=uuid4(),
        complaint_id=complaint,
        occurred_at=at,
        recorded_at=at,
        notice_id=notice,
        issued_by="q-001",
        departments=["=Ward 9"],
        responsible={"=Ward 9": "sv-009"},
        categories=["safety"],
        due_at=at + timedelta(days=7),
    )
    overdue = LearningNoticeOverdue(
        event_id=uuid4(),
        complaint_id=complaint,
        occurred_at=at + timedelta(days=7),
        recorded_at=at + timedelta(days=7),
        notice_id=notice,
        department="=Ward 9",
        due_at=at + timedelta(days=7),
    )
    received = complaint_received(complaint_id=complaint, occurred_at=T0, department="=Ward 9")
    found = analysed([received, issued, overdue])
    state = found["notices"][0]["departments"]["=Ward 9"]
    assert state["overdue"]
    assert state["complaints_before"] is None
    table = io.StringIO()
    print_table(found, table)
    assert (
        "=Ward 9 (sv-009): read: not read; no answer, overdue; complaints of these categories: too early"
        in (table.getvalue())
    )
    sheet = io.StringIO()
    print_csv(found, sheet)
    assert "by_department,'=Ward 9,2025-01,1\r\n" in sheet.getvalue()  # a spreadsheet runs no formula


def test_an_empty_record_gives_an_empty_analysis() -> None:
    found = analysed([])
    assert found["periods"] == []
    assert found["recurring"] == []
    table = io.StringIO()
    print_table(found, table)
    assert "recurring in one department (above its baseline 3 or more periods running):\n  none" in (
        table.getvalue()
    )


SIX = [f"2025-{m:02d}" for m in range(1, 7)]


def named(pairs: dict[str, list[int]], coded: dict[str, list[int]]) -> list[tuple[str, str, str, str]]:
    """(department, category, first period of its run, last period) of each cause named recurring."""
    return [
        (row["department"], row["category"], row["run"]["first"], row["run"]["last"])
        for row in recurring(pairs, coded, SIX)
    ]


def test_a_cause_recurs_when_it_stays_above_its_departments_baseline_three_periods_running() -> None:
    coded = {"Ward 3": [10] * 6, "Ward 5": [40] * 6, "Pharmacy": [40] * 6}
    # Safety is 1 in 20 of the others' complaints: 0.5 expected of Ward 3's ten, above it from 2 up.
    # (Ward 5's baseline, from Ward 3 and Pharmacy: 40 of its complaints times 30 in 300.)
    elsewhere = {"Ward 5\tsafety": [2] * 6, "Pharmacy\tsafety": [2] * 6}
    pairs = {"Ward 3\tsafety": [0, 0, 3, 4, 5, 6], **elsewhere}
    [row] = recurring(pairs, coded, SIX)
    assert (row["department"], row["category"], row["trend"]) == ("Ward 3", "safety", "rising")
    assert row["run"] == {"periods": 4, "first": "2025-03", "last": "2025-06"}
    assert row["ongoing"]
    assert row["baseline"] == [0.5] * 6
    # Two periods running are not enough; nor is a count within two standard deviations (1 of 0.5).
    assert named({"Ward 3\tsafety": [0, 0, 0, 1, 5, 6], **elsewhere}, coded) == []


def test_a_category_every_department_has_or_a_larger_department_is_no_cause_of_one() -> None:
    coded = {"Ward 3": [10] * 6, "Ward 5": [40] * 6}
    everywhere = {"Ward 3\tenvironment": [1, 3, 2, 2, 3, 1], "Ward 5\tenvironment": [8, 9, 7, 8, 9, 7]}
    assert named(everywhere, coded) == []
    larger = {"Ward 3\tlistening": [1] * 6, "Ward 5\tlistening": [4] * 6}
    assert named(larger, coded) == []
    # A hospital of one department has nothing to compare with: nothing is named.
    assert named({"Ward 3\tsafety": [5] * 6}, {"Ward 3": [10] * 6}) == []


def test_a_category_only_one_department_has_recurs_and_runs_to_date_come_first() -> None:
    coded = {"Ward 3": [10] * 6, "Ward 5": [10] * 6, "Pharmacy": [10] * 6}
    pairs = {
        "Pharmacy\tsafety": [1, 1, 1, 0, 0, 0],  # nobody else: above a baseline of 0, then stopped
        "Ward 3\tcommunication": [0, 0, 0, 2, 2, 2],  # to the last period
        "Ward 5\tlistening": [3, 3, 3, 3, 0, 0],  # the longest run, over
    }
    assert named(pairs, coded) == [
        ("Ward 3", "communication", "2025-04", "2025-06"),
        ("Ward 5", "listening", "2025-01", "2025-04"),
        ("Pharmacy", "safety", "2025-01", "2025-03"),
    ]


def test_a_notice_says_whether_complaints_fell_rose_or_stayed_afterwards() -> None:
    assert [afterwards(5, 2), afterwards(2, 5), afterwards(3, 3)] == ["fell", "rose", "unchanged"]
    assert afterwards(None, None) is None  # too early to compare
