""" "My work": the open duties a person owns or is in the chain of, by deadline. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from uuid import UUID

from services.console.domain import Case, Duty
from shared.auth import OVERSEERS
from shared.directory import Directory

# "My work" shows the soonest due; a page of thousands would help no one on a ward phone.
WORK_SHOWN = 200
# The one action that fits each duty, as the case page and "My work" offer it: the form's path
# under /cases/<complaint id>/.
ACTION_FOR_DUTY = {
    "supervisor_acknowledgement": "acknowledge",
    "supervisor_report": "report",
    "first_hearer_report": "report",
    "first_response": "first-response",
    "patient_feedback": "feedback",
}


@dataclass(frozen=True)
class WorkItem:
    complaint_id: UUID
    department: str | None
    tier: str | None
    duty: Duty
    owned: bool  # False: the person is in the owner's chain
    action: str


def my_work(
    cases: Iterable[Case], staff_id: str, directory: Directory, shown: int = WORK_SHOWN
) -> tuple[list[WorkItem], int]:
    """The open duties of open cases that ``staff_id`` owns or would be alerted for, soonest due first:
    the first ``shown`` of them, and how many more there are."""
    chain_above = cache(directory.chain_above)
    items = [
        WorkItem(
            case.complaint_id,
            case.department,
            case.tier,
            duty,
            duty.owner == staff_id,
            ACTION_FOR_DUTY[duty.kind],
        )
        for case in cases
        if case.closed_at is None
        for duty in case.duties.values()
        if duty.is_open and (duty.owner == staff_id or staff_id in chain_above(duty.owner))
    ]
    items.sort(key=lambda item: (item.duty.due_at, str(item.complaint_id), item.duty.kind))
    return items[:shown], max(len(items) - shown, 0)


def may_see(case: Case, staff_id: str, directory: Directory) -> bool:
    """The people of the case and their chains; overseers see every case (escalation decides the rest)."""
    member = directory.staff.get(staff_id)
    if member is None:
        return False
    if not OVERSEERS.isdisjoint(member.roles):
        return True
    chains = {duty.owner: directory.chain_above(duty.owner) for duty in case.duties.values()}
    return staff_id in case.people(chains)


def time_left(due_at: datetime, now: datetime) -> tuple[int, str]:
    """Whole minutes until the deadline, or whole hours from two hours on; negative once it has passed."""
    seconds = (due_at - now).total_seconds()
    minutes = int(abs(seconds) // 60)
    amount, unit = (minutes, "min") if minutes < 120 else (minutes // 60, "h")
    return (amount if seconds >= 0 else -amount), unit
