""" "My work": the open duties a person owns or is in the chain of, and the callbacks they are to make,
by deadline. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from services.console.allowed import may_do_duty
from services.console.domain import Case
from services.console.filters import NO_FILTERS, Filters
from services.console.index import Key
from shared.auth import OVERSEERS
from shared.directory import Directory

# "My work" shows the soonest due a page at a time: a page of hundreds of forms would help no one on a
# ward phone (nor answer fast enough for an executive who is in every chain).
WORK_SHOWN = 50
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
    """A duty, or a callback (``kind`` "callback"), with what the page needs to show and offer."""

    complaint_id: UUID
    department: str | None
    tier: str | None
    kind: str
    owner: str
    due_at: datetime
    late: bool  # overdue, or a reporting duty missed
    owned: bool  # False: the person is in the owner's chain
    action: str  # "" when the person may not take it (e.g. an auditor; a report they do not owe)
    callback_id: UUID | None = None


def my_work(
    cases: Mapping[UUID, Case],
    keys: Sequence[Key],
    staff_id: str,
    directory: Directory,
    now: datetime,
    filters: Filters = NO_FILTERS,
    shown: int = WORK_SHOWN,
    skip: int = 0,
) -> tuple[list[WorkItem], int]:
    """``staff_id``'s items (``keys``, soonest due first, from the work index) that pass the filters:
    the ``shown`` after the first ``skip`` (a page), and how many more come after them."""
    if not filters.any:  # the page is a slice of the keys; the rest all count, unread
        page = keys[skip : skip + shown]
        items = [_item(cases[key[1]], key[2], key[3], staff_id, directory, now) for key in page]
        return items, max(len(keys) - skip - len(page), 0)
    items = []
    matching = 0
    for _, complaint_id, kind, callback_id in keys:
        case = cases[complaint_id]
        if (filters.tier and case.tier != filters.tier) or (
            filters.department and case.department != filters.department
        ):
            continue
        if filters.overdue and not _late(case, kind, callback_id, now):
            continue
        if skip <= matching < skip + shown:
            items.append(_item(case, kind, callback_id, staff_id, directory, now))
        matching += 1
    return items, max(matching - skip - shown, 0)


def _late(case: Case, kind: str, callback_id: UUID | None, now: datetime) -> bool:
    """Overdue, or a reporting duty missed; a callback overdue or past its last day."""
    if callback_id is not None:
        callback = case.callbacks[callback_id]
        return callback.outcome == "overdue" or now >= callback.complete_by
    return case.duties[kind].status(now) in ("overdue", "missed")


def _item(
    case: Case, kind: str, callback_id: UUID | None, staff_id: str, directory: Directory, now: datetime
) -> WorkItem:
    if callback_id is not None:
        callback = case.callbacks[callback_id]
        return WorkItem(
            complaint_id=case.complaint_id,
            department=case.department,
            tier=case.tier,
            kind="callback",
            owner=callback.assignee,
            due_at=callback.due_at,
            late=_late(case, kind, callback_id, now),
            owned=True,
            action="callback",
            callback_id=callback_id,
        )
    duty = case.duties[kind]
    return WorkItem(
        complaint_id=case.complaint_id,
        department=case.department,
        tier=case.tier,
        kind=duty.kind,
        owner=duty.owner,
        due_at=duty.due_at,
        late=_late(case, kind, None, now),
        owned=duty.owner == staff_id,
        action=ACTION_FOR_DUTY[duty.kind] if may_do_duty(case, kind, staff_id, directory) else "",
    )


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
