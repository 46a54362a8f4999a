"""Learning notices: a case's corrective measure issued to the departments it concerns. Each
department's responsible person (the supervisor above the department's handler, the head of the
department) is alerted and chased like a duty owner, until they read it or answer; each department
answers "action complete" or "not applicable, because ..." by the deadline. A department that has not
answered by then is overdue: recorded against the department and the notice, never a person, for this
is not a report anyone failed to make (DOMAIN.md rule 3). Pure rules, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.escalation.chase import Chased
from shared.directory import Directory
from shared.events import HcatCategory, NoticeAnswer

# The name of a notice's alerts on the record (AlertRequested.duty): never a duty, never missed.
LEARNING_NOTICE = "learning_notice"


class UnknownDepartment(ValueError):
    """A notice names a department the staff directory does not have."""


def answerers(departments: list[str], directory: Directory) -> dict[str, list[str]]:
    """Per department, who is alerted: its responsible person (the supervisor of its handler), then
    the chain above them."""
    unknown = [name for name in departments if name not in directory.departments]
    if unknown:
        known = ", ".join(sorted(directory.departments))
        raise UnknownDepartment(f"no department {', '.join(map(repr, unknown))} in the directory ({known})")
    chains = {}
    for name in dict.fromkeys(departments):
        responsible = directory.supervisor_of(directory.departments[name].handler)
        chains[name] = [responsible, *(p for p in directory.chain_above(responsible) if p != responsible)]
    return chains


@dataclass(kw_only=True)
class DepartmentAnswer(Chased):
    """One department's part of a notice."""

    department: str
    due_at: datetime
    last_alert_number: int = 0  # the case-wide number of its latest alert (see NoticesOfCase)
    answer: NoticeAnswer | None = None
    answered_by: str | None = None
    reason: str | None = None
    overdue: bool = False
    history: list[str] = field(default_factory=list)

    @property
    def responsible(self) -> str:
        return self.recipients[0]

    @property
    def is_chased(self) -> bool:
        """Alerted until the notice is read or answered."""
        return self.answer is None and self.acknowledged_by is None

    def status(self, now: datetime) -> str:
        if self.answer is not None:
            return self.answer
        if self.overdue or now >= self.due_at:
            return "overdue"
        return "read" if self.acknowledged_by is not None else "open"


@dataclass
class Notice:
    notice_id: UUID
    issued_by: str
    issued_at: datetime
    due_at: datetime
    categories: list[HcatCategory]
    departments: dict[str, DepartmentAnswer]


class NoticeIndex(Aggregate):
    """Which case a notice belongs to, under the notice's id: a notice's deadline timer names the notice."""

    class Indexed(Aggregate.Created):
        notice_id: UUID
        complaint_id: UUID

    @staticmethod
    def create_id(notice_id: UUID, **_: object) -> UUID:
        return notice_id

    @event(Indexed)
    def __init__(self, notice_id: UUID, complaint_id: UUID) -> None:
        self.complaint_id = complaint_id
