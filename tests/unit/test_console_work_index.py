"""The console's work index: each person's items kept as events are folded, the same as a scan of
every case would find; filters; the callbacks' order. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from services.console.callbacks import first_to_call
from services.console.domain import Case, apply
from services.console.filters import NO_FILTERS, Filters
from services.console.index import WorkIndex, work_keys
from services.console.work import my_work
from shared.directory import Directory, load_directory
from shared.events import CallbackScheduled, CaseClosed, DutyAssigned, DutyFulfilled, EscalationStarted
from shared.settings import load_settings
from tests.factories import complaint_received

pytestmark = pytest.mark.unit

DIRECTORY = load_directory(load_settings({}).directory_path)
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


def common(complaint_id: UUID) -> dict[str, Any]:
    return {"event_id": uuid4(), "complaint_id": complaint_id, "occurred_at": NOW, "recorded_at": NOW}


def opened(cases: dict[UUID, Case], index: WorkIndex, department: str, tier: str, minutes: int) -> Case:
    """A case whose supervisor's acknowledgement and apology call are due in ``minutes`` (negative:
    overdue), folded as the application folds it: each event marks the case changed in the index."""
    complaint_id = uuid4()
    case = cases[complaint_id] = Case(complaint_id)
    heard_by, supervisor, handler = ("n-001", "sv-003", "hd-003") if department == "Ward 3" else (
        "n-002", "sv-010", "hd-010"
    )  # fmt: skip
    events: list[Any] = [
        complaint_received(complaint_id=complaint_id, heard_by=heard_by, department=department),
        EscalationStarted(**common(complaint_id), policy_version="1", tier=tier, tier_reason="intake"),
    ]
    for duty, owner in (("supervisor_acknowledgement", supervisor), ("first_response", handler)):
        due = NOW + timedelta(minutes=minutes)
        events.append(
            DutyAssigned(**common(complaint_id), duty=duty, owner=owner, due_at=due, late_on_arrival=False)
        )
    for received in events:
        apply(case, received)
        index.changed(complaint_id)
    return case


def fold(case: Case, index: WorkIndex, received: Any) -> None:
    apply(case, received)
    index.changed(case.complaint_id)


def scanned(cases: dict[UUID, Case], staff_id: str, directory: Directory = DIRECTORY) -> list[Any]:
    """Every case looked at afresh: what the index must always agree with."""
    keys = [
        key for case in cases.values() for key in work_keys(case, directory.chain_above).get(staff_id, [])
    ]
    return sorted(keys)


def test_the_index_kept_as_events_are_folded_agrees_with_a_scan_of_every_case() -> None:
    cases: dict[UUID, Case] = {}
    index = WorkIndex().refreshed(cases, DIRECTORY)  # built once, then only kept up to date
    ward = [opened(cases, index, "Ward 3", "minor", minutes) for minutes in (30, -5, 90)]
    outpatients = opened(cases, index, "Outpatients", "complex", 10)
    fulfilled = DutyFulfilled(
        **common(ward[0].complaint_id), duty="first_response", by="hd-003", how="called"
    )
    fold(ward[0], index, fulfilled)
    fold(ward[1], index, CaseClosed(**common(ward[1].complaint_id), by="sv-003"))
    index.refreshed(cases, DIRECTORY)
    for person in ("sv-003", "hd-003", "sv-010", "ex-001", "n-001", "cb-001"):
        assert index.keys_of(person) == scanned(cases, person), person
    assert {key[1] for key in index.keys_of("sv-010")} == {outpatients.complaint_id}
    assert index.keys_of("n-001") == []  # the first hearer owes nothing here


def test_a_changed_directory_rebuilds_the_index_for_the_new_chains() -> None:
    cases: dict[UUID, Case] = {}
    index = WorkIndex().refreshed(cases, DIRECTORY)
    opened(cases, index, "Ward 3", "minor", 30)
    assert index.refreshed(cases, DIRECTORY).keys_of("sv-004") != []  # sv-003's deputy
    staff = dict(DIRECTORY.staff)
    staff["sv-003"] = staff["sv-003"].model_copy(update={"deputies": []})
    changed = DIRECTORY.model_copy(update={"staff": staff})
    assert index.refreshed(cases, changed).keys_of("sv-004") == []
    assert index.keys_of("sv-004") == scanned(cases, "sv-004", changed)


def test_filters_narrow_my_work_and_count_what_they_leave_out_of_the_page() -> None:
    cases: dict[UUID, Case] = {}
    index = WorkIndex()
    for minutes in (-10, 20, 40):
        opened(cases, index, "Ward 3", "minor", minutes)
    opened(cases, index, "Outpatients", "complex", -30)
    keys = index.refreshed(cases, DIRECTORY).keys_of("ex-001")  # the executives are in every chain

    def shown(filters: Filters, page: int = 200) -> tuple[list[tuple[str | None, bool]], int]:
        items, more = my_work(cases, keys, "ex-001", DIRECTORY, NOW, filters, page)
        return [(item.department, item.late) for item in items], more

    assert len(shown(NO_FILTERS)[0]) == 8
    assert shown(Filters(department="Outpatients")) == ([("Outpatients", True)] * 2, 0)
    assert shown(Filters(tier="minor", overdue=True)) == ([("Ward 3", True)] * 2, 0)
    assert shown(Filters(department="Ward 3"), page=4) == (
        [("Ward 3", True)] * 2 + [("Ward 3", False)] * 2,
        2,
    )
    assert shown(NO_FILTERS, page=3)[1] == 5


def test_my_work_in_pages_shows_each_item_once_in_order_and_counts_what_comes_after() -> None:
    cases: dict[UUID, Case] = {}
    index = WorkIndex()
    for minutes in range(-25, 25, 5):
        opened(cases, index, "Ward 3" if minutes % 2 else "Outpatients", "minor", minutes)
    keys = index.refreshed(cases, DIRECTORY).keys_of("ex-001")

    for filters in (NO_FILTERS, Filters(department="Ward 3"), Filters(overdue=True)):
        everything, none_after = my_work(cases, keys, "ex-001", DIRECTORY, NOW, filters, shown=1000)
        assert none_after == 0
        pages = [my_work(cases, keys, "ex-001", DIRECTORY, NOW, filters, 3, skip) for skip in range(0, 60, 3)]
        assert [item for items, _ in pages for item in items] == everything
        assert [more for _, more in pages] == [max(len(everything) - skip - 3, 0) for skip in range(0, 60, 3)]


def test_filters_come_from_the_address_or_stay_as_the_session_kept_them() -> None:
    kept = Filters(tier="major")
    assert Filters.chosen({}, kept) is kept  # a link without filters: the session's
    assert Filters.chosen({"department": "Ward 3", "overdue": "yes"}, kept) == Filters("", "Ward 3", True)
    assert Filters.chosen({"filter": "yes", "tier": ""}, kept) == NO_FILTERS  # "all" chosen again
    assert Filters("minor", "Ward 3", True).query() == "?tier=minor&department=Ward+3&overdue=yes"
    assert NO_FILTERS.query() == ""


def test_callbacks_overdue_first_then_due_then_to_come() -> None:
    cases: dict[UUID, Case] = {}
    index = WorkIndex()
    for hours, days_to_complete in ((5, 2), (-2, 2), (-30, 1), (1, 2)):
        case = opened(cases, index, "Ward 3", "minor", 30)
        due = NOW + timedelta(hours=hours)
        scheduled = CallbackScheduled(
            **common(case.complaint_id), callback_id=uuid4(), purpose="after_first_response",
            assignee="cb-001", due_at=due, complete_by=due + timedelta(days=days_to_complete), attempt=1,
        )  # fmt: skip
        fold(case, index, scheduled)
    keys = [key for key in index.refreshed(cases, DIRECTORY).keys_of("cb-001") if key[2] == "callback"]
    items = first_to_call(my_work(cases, keys, "cb-001", DIRECTORY, NOW)[0], NOW)
    hours_from_now = [round((item.due_at - NOW).total_seconds() / 3600) for item in items]
    assert hours_from_now == [-30, -2, 1, 5]  # the overdue one (past its last day), the due one, then by due
    assert [item.late for item in items] == [True, False, False, False]
