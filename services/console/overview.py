"""The overview for executives and quality: open cases by tier and department, both reporting tracks
per case, duties done late or missed by role (never by person), first-response times. Pure.

Duties are judged by the audit report's own rule (shared/duty_status.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from services.console.domain import Case, Duty
from shared.duty_status import duty_status, nearest_rank

TIERS = ("major", "complex", "minor")
TRACKS = ("supervisor_report", "first_hearer_report")
# Whose part of the regime each duty is: the overview counts by role, never by person (DOMAIN.md rule 3).
ROLE_OF_DUTY = {
    "supervisor_acknowledgement": "supervisor",
    "supervisor_report": "supervisor",
    "first_hearer_report": "first hearer",
    "first_response": "handler",
    "patient_feedback": "handler",
}
SHORTFALLS = ("late", "missed", "overdue")
# The tracks of so many open cases are listed, the newest first; the figures count every case.
CASES_LISTED = 200


@dataclass(frozen=True)
class TrackRow:
    complaint_id: UUID
    department: str
    tier: str
    occurred_at: datetime | None
    tracks: dict[str, str | None]  # track: status, or None while the duty is not assigned


@dataclass
class Overview:
    open_by_department: dict[str, Counter[str]] = field(default_factory=dict)  # department: tier counts
    tracks: list[TrackRow] = field(default_factory=list)
    more_cases: int = 0
    # (duty kind, role): status counts, over every case, open or closed.
    duties: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    response_seconds: list[float] = field(default_factory=list)

    @property
    def open_cases(self) -> int:
        return sum(counts.total() for counts in self.open_by_department.values())

    @property
    def response_median(self) -> float | None:
        return nearest_rank(self.response_seconds, 0.5)

    @property
    def response_p90(self) -> float | None:
        return nearest_rank(self.response_seconds, 0.9)


def status_of(duty: Duty, now: datetime) -> str:
    return duty_status(duty.kind, duty.due_at, duty.fulfilled_at, duty.deadline_passed, now)


def overview(cases: Iterable[Case], now: datetime, listed: int = CASES_LISTED) -> Overview:
    found = Overview()
    open_rows: list[TrackRow] = []
    for case in cases:
        if case.occurred_at is None:
            continue  # known only from events after registration: nothing to judge it by
        for duty in case.duties.values():
            role = ROLE_OF_DUTY.get(duty.kind, duty.kind)
            found.duties.setdefault((duty.kind, role), Counter())[status_of(duty, now)] += 1
        if case.first_response_at is not None:
            found.response_seconds.append((case.first_response_at - case.occurred_at).total_seconds())
        if case.closed_at is not None:
            continue
        department, tier = case.department or "", case.tier or ""
        found.open_by_department.setdefault(department, Counter())[tier] += 1
        tracks = {
            track: status_of(case.duties[track], now) if track in case.duties else None for track in TRACKS
        }
        open_rows.append(TrackRow(case.complaint_id, department, tier, case.occurred_at, tracks))
    open_rows.sort(key=lambda row: (row.occurred_at or now, str(row.complaint_id)), reverse=True)
    found.tracks, found.more_cases = open_rows[:listed], max(len(open_rows) - listed, 0)
    found.open_by_department = dict(sorted(found.open_by_department.items()))
    order = {kind: place for place, kind in enumerate(ROLE_OF_DUTY)}  # the regime's order; others last
    found.duties = dict(
        sorted(found.duties.items(), key=lambda item: (order.get(item[0][0], len(order)), item[0]))
    )
    return found


def readable_duration(seconds: float) -> tuple[float, str]:
    """An amount and its unit ("min", "h" or "d"), as people say a wait: minutes under two hours,
    hours under two days, then days; one decimal beyond minutes."""
    minutes = seconds / 60
    if minutes < 120:
        return round(minutes), "min"
    if minutes < 48 * 60:
        return round(minutes / 60, 1), "h"
    return round(minutes / (24 * 60), 1), "d"


# The catalogue's words for the statuses and roles the overview shows.
STATUS_LABELS = {
    "on_time": "done on time",
    "late": "done late",
    "missed": "missed",
    "overdue": "overdue",
    "not_yet_due": "not yet due",
}
ROLE_LABELS = {"supervisor": "Supervisor", "first hearer": "First hearer", "handler": "Handler"}
# "%(amount)s ..." with the unit readable_duration chose.
UNITS = {"min": "%(amount)s min", "h": "%(amount)s h", "d": "%(amount)s days"}
