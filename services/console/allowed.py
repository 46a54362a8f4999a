"""Which forms a person is offered on a case: the rules the services enforce (``shared.case_rules``,
read from the console's view of the case), so that no one is shown a form only to be refused. The
services still refuse whatever reaches them from someone else. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from services.console.domain import Case
from shared.auth import WRITERS
from shared.case_rules import JUDGES, OWNERS, REPORT_TRACKS, callback_team, report_tracks
from shared.directory import Directory


@dataclass(frozen=True)
class Allowed:
    duties: frozenset[str] = frozenset()  # the open duties whose one action the person may take
    harassment: bool = False
    corrective_measure: bool = False
    close: bool = False
    callbacks: frozenset[UUID] = frozenset()


def recipients(owner: str, directory: Directory) -> list[str]:
    """Who is alerted for a duty, and so may act on it: its owner, then the owner's chain (as
    escalation records them when it assigns the duty)."""
    return [owner, *(person for person in directory.chain_above(owner) if person != owner)]


def may_do_duty(case: Case, kind: str, staff_id: str, directory: Directory) -> bool:
    """The duty's one action: a report fulfils the tracks the person owes; any other, its recipients."""
    member = directory.staff.get(staff_id)
    duty = case.duties.get(kind)
    if member is None or WRITERS.isdisjoint(member.roles) or duty is None or not duty.is_open:
        return False
    if case.closed_at is not None:
        return False
    if kind in REPORT_TRACKS:
        owners = {track: case.duties[track].owner for track in REPORT_TRACKS if track in case.duties}
        supervisor = case.duties.get("supervisor_report")
        chain = recipients(supervisor.owner, directory) if supervisor else []
        return kind in report_tracks(staff_id, owners, chain)
    return staff_id in recipients(duty.owner, directory)


def allowed(case: Case, staff_id: str, directory: Directory) -> Allowed:
    member = directory.staff.get(staff_id)
    if member is None or WRITERS.isdisjoint(member.roles):
        return Allowed()
    callbacks = frozenset(
        callback.callback_id
        for callback in case.callbacks.values()
        if staff_id in callback_team(callback.assignee, directory)
    )
    if case.closed_at is not None:
        return Allowed(callbacks=callbacks)
    people = {case.heard_by, *(p for duty in case.duties.values() for p in recipients(duty.owner, directory))}
    in_case = staff_id in people
    roles = set(member.roles)
    return Allowed(
        duties=frozenset(kind for kind in case.duties if may_do_duty(case, kind, staff_id, directory)),
        harassment=in_case and not roles.isdisjoint(JUDGES),
        corrective_measure=in_case and not roles.isdisjoint(OWNERS),
        close=in_case and not roles.isdisjoint(OWNERS),
        callbacks=callbacks,
    )
