"""Who a complaint's callbacks concern: the people of the complaint (who shares its calls is
``shared.case_rules.callback_team``). Pure rules, no I/O."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event


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
