""" "My work": the open duties a person owns or is in the chain of, and the callbacks they are to make,
by deadline. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from uuid import UUID

from services.console.domain import Case
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
OPEN_CALLBACK = ("scheduled", "not reached", "overdue")


@dataclass(frozen=True)
class WorkItem:
    """A duty, or a callback (``kind`` "callback"), with what the page needs to show and offer."""

    complaint_id: UUID
    department: str | None
    tier: str | None
    kind: str
    owner: str
    due_at: datetime
    late: bool  # overdue, or a reporting duty missed
    owned: bool  # False: the person is in the owner's chain
    action: str
    callback_id: UUID | None = None


def my_work(
    cases: Iterable[Case], staff_id: str, directory: Directory, now: datetime, shown: int = WORK_SHOWN
) -> tuple[list[WorkItem], int]:
    """What ``staff_id`` owes or would be alerted for, in open cases, soonest due first: the first
    ``shown`` items, and how many more there are."""
    chain_above = cache(directory.chain_above)
    items: list[WorkItem] = []
    for case in cases:
        if case.closed_at is not None:
            continue
        items += [
            WorkItem(
                complaint_id=case.complaint_id,
                department=case.department,
                tier=case.tier,
                kind=duty.kind,
                owner=duty.owner,
                due_at=duty.due_at,
                late=duty.status(now) in ("overdue", "missed"),
                owned=duty.owner == staff_id,
                action=ACTION_FOR_DUTY[duty.kind],
            )
            for duty in case.duties.values()
            if duty.is_open and (duty.owner == staff_id or staff_id in chain_above(duty.owner))
        ]
        items += [
            WorkItem(
                complaint_id=case.complaint_id,
                department=case.department,
                tier=case.tier,
                kind="callback",
                owner=callback.assignee,
                due_at=callback.due_at,
                late=callback.outcome == "overdue" or now >= callback.complete_by,
                owned=True,
                action="callback",
                callback_id=callback.callback_id,
            )
            for callback in case.callbacks.values()
            if callback.assignee == staff_id and callback.outcome in OPEN_CALLBACK
        ]
    items.sort(key=lambda item: (item.due_at, str(item.complaint_id), item.kind))
    return items[:shown], max(len(items) - shown, 0)


def may_see(case: Case, staff_id: str, directory: Directory) -> bool:
    """The people of the case and their chains; overseers see every case (escalation decides the rest)."""
    member = directory.staff.get(staff_id)
    if member is None:
        return False
    if not OVERSEERS.isdisjoint(member.roles):
        return True
    chains = {duty.owner: directory.chain_above(duty.owner) for duty in case.duties.values()}
    callers = {callback.assignee for callback in case.callbacks.values()}
    return staff_id in case.people(chains) | callers


def time_left(due_at: datetime, now: datetime) -> tuple[int, str]:
    """Whole minutes until the deadline, or whole hours from two hours on; negative once it has passed."""
    seconds = (due_at - now).total_seconds()
    minutes = int(abs(seconds) // 60)
    amount, unit = (minutes, "min") if minutes < 120 else (minutes // 60, "h")
    return (amount if seconds >= 0 else -amount), unit
