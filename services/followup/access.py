"""Who a complaint's callbacks concern: the people of the complaint, and the callback staff who share
its calls. Pure rules, no I/O."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from shared.directory import Directory


def callback_team(assignee: str, directory: Directory) -> set[str]:
    """Who shares a callback's calls and sees it: its assignee and the callback staff of the assignee's
    department (callbacks are shared out by complaint among them)."""
    member = directory.staff.get(assignee)
    if member is None:
        return {assignee}
    colleagues = {
        staff_id
        for staff_id, colleague in directory.staff.items()
        if "callback_staff" in colleague.roles and colleague.department == member.department
    }
    return {assignee} | colleagues


class ComplaintScope(Aggregate):
    """Who a complaint concerns, learnt from ``ComplaintReceived``: its callbacks are seen by the same
    people as the complaint (``Person.concerned_with``). Its id is derived from the complaint's."""

    class Heard(Aggregate.Created):
        complaint_id: UUID
        heard_by: str
        department: str

    @event(Heard)
    def __init__(self, id: UUID, complaint_id: UUID, heard_by: str, department: str) -> None:
        self.complaint_id = complaint_id
        self.heard_by = heard_by
        self.department = department
