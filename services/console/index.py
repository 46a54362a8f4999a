"""Who has what to do, kept up to date as events are folded, so that "My work" for one person costs
what that person's items cost, not a scan of every case. Pure.

An item of work is keyed ``(due_at, complaint id, kind, callback id or None)``: each person's keys are
kept sorted, soonest due first. The people of a duty are its owner and everyone in the owner's chain,
which the staff directory decides: when the directory changes the index is built again.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache
from uuid import UUID

from services.console.domain import Case
from shared.directory import Directory

Key = tuple[datetime, UUID, str, UUID | None]
OPEN_CALLBACK = ("scheduled", "not reached", "overdue")


def work_keys(case: Case, chain_above: Callable[[str], list[str]]) -> dict[str, list[Key]]:
    """Each person's items in one case: open duties for their owner and the owner's chain, open
    callbacks for their callback staff; nothing once the case is closed."""
    if case.closed_at is not None:
        return {}
    complaint = case.complaint_id
    keyed: dict[str, list[Key]] = {}
    for duty in case.duties.values():
        if duty.is_open:
            for person in dict.fromkeys([duty.owner, *chain_above(duty.owner)]):
                keyed.setdefault(person, []).append((duty.due_at, complaint, duty.kind, None))
    for callback in case.callbacks.values():
        if callback.outcome in OPEN_CALLBACK:
            key = (callback.due_at, complaint, "callback", callback.callback_id)
            keyed.setdefault(callback.assignee, []).append(key)
    return keyed


class WorkIndex:
    """Each person's items, sorted. Cases are marked changed as they are folded and indexed again
    when the index is next read; a directory other than the one it was built for builds it afresh."""

    def __init__(self) -> None:
        self._by_person: dict[str, list[Key]] = {}
        self._of_case: dict[UUID, dict[str, list[Key]]] = {}
        self._changed: set[UUID] = set()
        self._directory: Directory | None = None
        self._chain_above: Callable[[str], list[str]] = cache(lambda _: [])

    def changed(self, complaint_id: UUID) -> None:
        self._changed.add(complaint_id)

    def refreshed(self, cases: Mapping[UUID, Case], directory: Directory) -> WorkIndex:
        if directory is not self._directory:
            self._build(cases, directory)
        for complaint_id in self._changed:
            self._reindex(cases[complaint_id])
        self._changed.clear()
        return self

    def keys_of(self, staff_id: str) -> list[Key]:
        """The person's items, soonest due first (read it while the read model does not change)."""
        return self._by_person.get(staff_id, [])

    def _build(self, cases: Mapping[UUID, Case], directory: Directory) -> None:
        self._directory, self._chain_above = directory, cache(directory.chain_above)
        self._by_person, self._of_case, self._changed = {}, {}, set()
        for case in cases.values():
            self._of_case[case.complaint_id] = work_keys(case, self._chain_above)
            for person, keys in self._of_case[case.complaint_id].items():
                self._by_person.setdefault(person, []).extend(keys)
        for keys in self._by_person.values():
            keys.sort()

    def _reindex(self, case: Case) -> None:
        for person, keys in self._of_case.pop(case.complaint_id, {}).items():
            mine = self._by_person[person]
            for key in keys:
                del mine[bisect.bisect_left(mine, key)]
        self._of_case[case.complaint_id] = work_keys(case, self._chain_above)
        for person, keys in self._of_case[case.complaint_id].items():
            mine = self._by_person.setdefault(person, [])
            for key in keys:
                bisect.insort(mine, key)
