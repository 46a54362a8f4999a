"""Callback visits (回访) to the patient: when they fall due, attempts, outcome. Pure rules, no I/O."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.domain import Aggregate, event

from shared import refusals
from shared.calendar import next_working_moment, outside_quiet_hours
from shared.case_rules import callback_team
from shared.directory import Directory
from shared.events import CallbackPurpose
from shared.policy import CalendarPolicy, FollowupPolicy

CallbackStatus = Literal["scheduled", "due", "overdue", "completed", "abandoned"]
# An outcome at or below this satisfaction asks for the case to reopen, as does an unresolved problem.
UNSATISFIED = 2


class NotPermitted(refusals.NotPermitted):
    """The person is neither the callback's assignee nor callback staff of the assignee's team."""


class NotPossible(refusals.NotPossible):
    """The action does not fit the state of the callback."""


class NotYetDue(NotPossible):
    """A call before the attempt is due: its outcome would close the loop too early, and a retry
    counted from it would fall earlier than the attempt it replaces."""


def callback_due(
    anchor: datetime, delay: timedelta, rules: FollowupPolicy, calendar: CalendarPolicy
) -> datetime:
    """Anchored on what the callback follows, so a redelivered or replayed event gives the same time;
    never in quiet hours, and with ``working_days_only`` never on a day off."""
    moment = anchor + delay
    if rules.working_days_only:
        return next_working_moment(moment, calendar)
    return outside_quiet_hours(moment, calendar)


def reopen_reason(satisfaction: int, resolved: bool) -> str | None:
    """Why the outcome asks for the case to reopen, or None when the patient is content."""
    reasons = [] if resolved else ["the problem is not resolved"]
    if satisfaction <= UNSATISFIED:
        reasons.append(f"satisfaction {satisfaction} of 5")
    return "; ".join(reasons) or None


class FollowedCase(Aggregate):
    """A case escalation opened: its patient may be called back. Its id is the complaint's."""

    class Opened(Aggregate.Created):
        opened_at: datetime

    @event(Opened)
    def __init__(self, id: UUID, opened_at: datetime) -> None:
        self.opened_at = opened_at


class Callback(Aggregate):
    class Scheduled(Aggregate.Created):
        complaint_id: UUID
        purpose: str
        assignee: str
        due_at: datetime
        complete_by: datetime
        attempt: int
        rules: dict[str, Any]
        calendar: dict[str, str]

    class Rescheduled(Aggregate.Event):
        complaint_id: UUID
        purpose: str
        assignee: str
        due_at: datetime
        complete_by: datetime
        attempt: int
        at: datetime

    class FellDue(Aggregate.Event):
        complaint_id: UUID
        due_at: datetime
        attempt: int

    class Attempted(Aggregate.Event):
        complaint_id: UUID
        by: str
        attempt: int
        notes: str
        at: datetime

    class Completed(Aggregate.Event):
        complaint_id: UUID
        purpose: str
        by: str
        attempt: int
        satisfaction: int
        resolved: bool
        comments: str
        at: datetime

    class ReopenRequested(Aggregate.Event):
        complaint_id: UUID
        reason: str
        at: datetime

    class Abandoned(Aggregate.Event):
        complaint_id: UUID
        attempts: int
        at: datetime

    class BecameOverdue(Aggregate.Event):
        complaint_id: UUID
        complete_by: datetime
        at: datetime

    @event(Scheduled)
    def __init__(
        self,
        id: UUID,
        complaint_id: UUID,
        purpose: CallbackPurpose,
        assignee: str,
        due_at: datetime,
        complete_by: datetime,
        attempt: int,
        rules: dict[str, Any],
        calendar: dict[str, str],
    ) -> None:
        self.complaint_id = complaint_id
        self.purpose = purpose
        self.assignee = assignee
        self.due_at = due_at
        self.complete_by = complete_by
        self.attempt = attempt
        # Kept with the callback: a policy edited later does not change how this one is retried.
        self.rules = FollowupPolicy.model_validate(rules)
        self.calendar = CalendarPolicy.model_validate(calendar)
        self.fell_due = False
        self.overdue = False
        self.abandoned = False
        self.outcome: str | None = None
        self.comments = ""
        self.history: list[str] = [f"attempt 1 due {due_at.isoformat()}"]

    @classmethod
    def schedule(
        cls,
        id: UUID,
        complaint_id: UUID,
        purpose: CallbackPurpose,
        anchor: datetime,
        rules: FollowupPolicy,
        calendar: CalendarPolicy,
        directory: Directory,
    ) -> Callback:
        delay = {
            "after_first_response": rules.after_first_response_seconds,
            "after_closure": rules.after_closure_seconds,
            "after_discharge": rules.after_discharge_seconds,
        }[purpose]
        due_at = callback_due(anchor, timedelta(seconds=delay), rules, calendar)
        return cls(
            id=id,
            complaint_id=complaint_id,
            purpose=purpose,
            assignee=directory.callback_staff_for(complaint_id),
            due_at=due_at,
            complete_by=due_at + timedelta(seconds=rules.complete_within_seconds),
            attempt=1,
            rules=rules.model_dump(),
            calendar=calendar.model_dump(mode="json"),
        )

    @property
    def is_open(self) -> bool:
        return self.outcome is None and not self.abandoned

    @property
    def status(self) -> CallbackStatus:
        if self.outcome is not None:
            return "completed"
        if self.abandoned:
            return "abandoned"
        if self.overdue:
            return "overdue"
        return "due" if self.fell_due else "scheduled"

    def is_awaiting(self, attempt: int) -> bool:
        """A timer fire counts only for the attempt that is scheduled and not yet due."""
        return self.is_open and not self.fell_due and self.attempt == attempt

    def fall_due(self) -> None:
        self._fell_due(complaint_id=self.complaint_id, due_at=self.due_at, attempt=self.attempt)

    @event(FellDue)
    def _fell_due(self, complaint_id: UUID, due_at: datetime, attempt: int) -> None:
        self.fell_due = True

    def deadline_passed(self, at: datetime) -> bool:
        """Overdue once, if still open at its deadline; recorded against the case, never a person."""
        if not self.is_open or self.overdue:
            return False
        self._become_overdue(complaint_id=self.complaint_id, complete_by=self.complete_by, at=at)
        return True

    @event(BecameOverdue)
    def _become_overdue(self, complaint_id: UUID, complete_by: datetime, at: datetime) -> None:
        self.overdue = True
        self.history.append(f"{at.isoformat()} overdue (due to be done by {complete_by.isoformat()})")

    def _check_may_call(self, by: str, at: datetime, directory: Directory) -> None:
        """Due means the attempt's ``CallbackDue`` is recorded or its due time has come, whichever is
        first: a callback the work list shows as due can be called, and one whose timer is late too."""
        if by not in callback_team(self.assignee, directory):
            raise NotPermitted(
                f"{by} is neither the assignee of this callback nor callback staff of their team"
            )
        if not self.is_open:
            raise NotPossible(f"the callback is {self.status}")
        if not self.fell_due and at < self.due_at:
            local = self.due_at.astimezone(ZoneInfo(self.calendar.timezone))
            raise NotYetDue(
                f"the callback is not due yet: attempt {self.attempt} is due at {local.isoformat()}"
            )

    def not_reached(self, by: str, at: datetime, notes: str, directory: Directory) -> None:
        """The next attempt after the retry interval, or abandoned once the attempts are used up. The call
        is made once due, so the next attempt always falls after the one it replaces."""
        self._check_may_call(by, at, directory)
        self._attempted(complaint_id=self.complaint_id, by=by, attempt=self.attempt, notes=notes, at=at)
        if self.attempt >= self.rules.max_attempts:
            self._abandon(complaint_id=self.complaint_id, attempts=self.attempt, at=at)
            return
        self._reschedule(
            complaint_id=self.complaint_id,
            purpose=self.purpose,
            assignee=self.assignee,
            due_at=callback_due(
                at, timedelta(seconds=self.rules.retry_interval_seconds), self.rules, self.calendar
            ),
            complete_by=self.complete_by,
            attempt=self.attempt + 1,
            at=at,
        )

    @event(Attempted)
    def _attempted(self, complaint_id: UUID, by: str, attempt: int, notes: str, at: datetime) -> None:
        self.history.append(f"{at.isoformat()} attempt {attempt} by {by}: not reached")

    @event(Rescheduled)
    def _reschedule(
        self,
        complaint_id: UUID,
        purpose: str,
        assignee: str,
        due_at: datetime,
        complete_by: datetime,
        attempt: int,
        at: datetime,
    ) -> None:
        self.due_at = due_at
        self.attempt = attempt
        self.fell_due = False
        self.history.append(f"attempt {attempt} due {due_at.isoformat()}")

    @event(Abandoned)
    def _abandon(self, complaint_id: UUID, attempts: int, at: datetime) -> None:
        self.abandoned = True
        self.history.append(f"{at.isoformat()} abandoned after {attempts} attempts")

    def reached(
        self, by: str, at: datetime, satisfaction: int, resolved: bool, comments: str, directory: Directory
    ) -> None:
        """The patient's answer; an unresolved problem or an unhappy patient asks for the case to reopen."""
        self._check_may_call(by, at, directory)
        self._complete(
            complaint_id=self.complaint_id,
            purpose=self.purpose,
            by=by,
            attempt=self.attempt,
            satisfaction=satisfaction,
            resolved=resolved,
            comments=comments,
            at=at,
        )
        reason = reopen_reason(satisfaction, resolved)
        if reason is not None:
            self._request_reopen(complaint_id=self.complaint_id, reason=reason, at=at)

    @event(Completed)
    def _complete(
        self,
        complaint_id: UUID,
        purpose: str,
        by: str,
        attempt: int,
        satisfaction: int,
        resolved: bool,
        comments: str,
        at: datetime,
    ) -> None:
        said = "resolved" if resolved else "not resolved"
        self.outcome = f"satisfaction {satisfaction} of 5, {said}"
        self.comments = comments
        self.history.append(f"{at.isoformat()} attempt {attempt} by {by}: reached, {self.outcome}")

    @event(ReopenRequested)
    def _request_reopen(self, complaint_id: UUID, reason: str, at: datetime) -> None:
        self.history.append(f"{at.isoformat()} reopening of the case requested: {reason}")
