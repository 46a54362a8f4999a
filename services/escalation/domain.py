"""The case: the reporting regime of one complaint, its duties and who owes them. Pure rules, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.escalation.case_notices import NoticesOfCase
from services.escalation.chase import Chased
from services.escalation.classification import classify
from services.escalation.coding import CodingOfCase
from services.escalation.safety import SafetyLinksOfCase
from shared import refusals
from shared.calendar import due_at
from shared.case_rules import REPORT_TRACKS, report_tracks
from shared.directory import Directory
from shared.entered import check_entered
from shared.policy import DUTY_KINDS, CalendarPolicy, ChasePolicy, DutyRule, EscalationPolicy

# Only these can ever name a person as having failed, and only the first hearer or the supervisor.
REPORTING_DUTIES = ("supervisor_acknowledgement", "supervisor_report", "first_hearer_report")
# What a second-line responder takes over when a complaint is judged to be harassment.
RESPONSE_DUTIES = ("first_response", "patient_feedback")
MAJOR_CASE_ALERT = "major_case"


class NotPermitted(refusals.NotPermitted):
    """The person is neither the owner of the duty nor in its chain."""


class NotPossible(refusals.NotPossible):
    """The action does not fit the state of the case; closing names the duties still open."""

    def __init__(self, message: str, open_duties: list[str] | None = None) -> None:
        super().__init__(message)
        self.open_duties = open_duties or []

    def detail(self) -> str | dict[str, object]:
        detail: dict[str, object] = {"error": str(self)}
        if self.open_duties:
            detail["open_duties"] = self.open_duties
        return detail


@dataclass(frozen=True)
class ComplaintFacts:
    """What escalation needs of a registered complaint."""

    complaint_id: UUID
    occurred_at: datetime
    registered_at: datetime
    heard_by: str
    department: str
    summary: str
    category: str | None
    tier: str | None
    channel: str | None = None


@dataclass(frozen=True)
class PlannedDuty:
    kind: str
    owner: str
    due_at: datetime
    chain: list[str]


def owner_of(kind: str, facts: ComplaintFacts, directory: Directory) -> str:
    """The first hearer owes their own report; the supervisor the acknowledgement and the other
    report; the department's handler the apology call and the feedback."""
    if kind == "first_hearer_report":
        return facts.heard_by
    if kind in ("supervisor_acknowledgement", "supervisor_report"):
        return directory.supervisor_of(facts.heard_by)
    return directory.handler_for(facts.department, facts.heard_by)


def plan_duties(facts: ComplaintFacts, policy: EscalationPolicy, directory: Directory) -> list[PlannedDuty]:
    planned = []
    for kind in DUTY_KINDS:
        owner = owner_of(kind, facts, directory)
        deadline = due_at(policy.duties[kind], facts.occurred_at, facts.registered_at, policy.calendar)
        planned.append(PlannedDuty(kind, owner, deadline, directory.chain_above(owner)))
    return planned


@dataclass(kw_only=True)
class Duty(Chased):
    kind: str
    owner: str
    due_at: datetime
    fulfilled_by: str | None = None
    fulfilled_at: datetime | None = None
    deadline_passed: bool = False
    history: list[str] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.fulfilled_at is None

    @property
    def is_chased(self) -> bool:
        return self.is_open and self.acknowledged_by is None

    def status(self, now: datetime) -> str:
        if not self.is_open:
            late = self.fulfilled_at is not None and self.fulfilled_at > self.due_at
            return "done late" if late else "done"
        if self.kind in REPORTING_DUTIES and self.deadline_passed:
            return "missed"
        return "overdue" if now >= self.due_at else "open"


class Case(NoticesOfCase, CodingOfCase, SafetyLinksOfCase):
    class Started(Aggregate.Created):
        complaint_occurred_at: datetime
        registered_at: datetime
        opened_at: datetime
        policy_version: str
        tier: str
        tier_reason: str
        heard_by: str
        department: str
        chase: dict[str, int]
        calendar: dict[str, str]
        channel: str | None
        category: str | None

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            """Cases opened before escalation kept the complaint's channel and category."""
            state["channel"] = state["category"] = None

    class DutyAssigned(Aggregate.Event):
        kind: str
        owner: str
        due_at: datetime
        assigned_at: datetime
        recipients: list[str]
        # The alert sent with the assignment (``AlertWithAssignment``'s fields), if anyone can be alerted.
        alert: dict[str, Any] | None

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            """Assigned before the assignment carried its alert: an AlertRequested followed."""
            state["alert"] = None

    class AlertRequested(Aggregate.Event):
        kind: str
        tier: str
        recipient: str
        alert_number: int
        attempt: int
        due_at: datetime
        requested_at: datetime
        next_alert_at: datetime | None

    class DutyReassigned(Aggregate.Event):
        kind: str
        owner: str
        recipients: list[str]
        reason: str
        at: datetime

    class AlertAcknowledged(Aggregate.Event):
        kind: str
        by: str
        at: datetime

    class DutyFulfilled(Aggregate.Event):
        kind: str
        by: str
        at: datetime
        how: str

    class DutyMissed(Aggregate.Event):
        kind: str
        person: str
        due_at: datetime
        at: datetime

    class DeadlinePassed(Aggregate.Event):
        kind: str
        due_at: datetime
        at: datetime

    class ReportFiled(Aggregate.Event):
        track: str
        by: str
        to: str
        text: str
        at: datetime

    class FirstResponseRecorded(Aggregate.Event):
        by: str
        at: datetime
        patient_reached: bool
        notes: str
        within_window: bool

    class HarassmentAssessed(Aggregate.Event):
        by: str
        demand_valid: bool
        means_appropriate: bool
        impact_on_staff: bool
        is_harassment: bool
        second_line: str | None
        protected_staff: str | None
        at: datetime

    class CorrectiveMeasureRecorded(Aggregate.Event):
        by: str
        measure: str
        responsible: str
        at: datetime

    class Closed(Aggregate.Event):
        by: str
        at: datetime

    class Reopened(Aggregate.Event):
        callback_id: UUID
        reason: str
        at: datetime

    @event(Started)
    def __init__(
        self,
        id: UUID,  # eventsourcing takes the aggregate id by this name; it is the complaint's
        complaint_occurred_at: datetime,
        registered_at: datetime,
        opened_at: datetime,
        policy_version: str,
        tier: str,
        tier_reason: str,
        heard_by: str,
        department: str,
        chase: dict[str, int],
        calendar: dict[str, str],
        channel: str | None,
        category: str | None,
    ) -> None:
        self.complaint_occurred_at = complaint_occurred_at
        self.registered_at = registered_at
        self.opened_at = opened_at
        self.policy_version = policy_version
        self.tier = tier
        self.tier_reason = tier_reason
        self.heard_by = heard_by
        self.department = department
        # Kept with the case: a policy edited later does not change how this case is chased.
        self.chase = ChasePolicy.model_validate(chase)
        self.calendar = CalendarPolicy.model_validate(calendar)
        self.duties: dict[str, Duty] = {}
        self.reports: list[str] = []
        self.harassment: str | None = None
        self.protected_staff: str | None = None
        self.corrective_measure: str | None = None
        self.closed_at: datetime | None = None
        self.reopened: list[str] = []
        self.channel = channel
        self.category = category  # the hospital's own, as given at intake
        self.codings = []
        self.notices = {}
        self.notice_alerts = 0
        self.safety_events = []

    # Opening and chasing

    @classmethod
    def open(
        cls,
        facts: ComplaintFacts,
        opened_at: datetime,
        policy_version: str,
        policy: EscalationPolicy,
        directory: Directory,
    ) -> Case:
        tier, reason = classify(facts.summary, facts.category, facts.tier, policy.classification)
        case = cls(
            id=facts.complaint_id,
            complaint_occurred_at=facts.occurred_at,
            registered_at=facts.registered_at,
            opened_at=opened_at,
            policy_version=policy_version,
            tier=tier,
            tier_reason=reason,
            heard_by=facts.heard_by,
            department=facts.department,
            chase=policy.chase.model_dump(),
            calendar=policy.calendar.model_dump(mode="json"),
            channel=facts.channel,
            category=facts.category,
        )
        for duty in plan_duties(facts, policy, directory):
            recipients = [duty.owner, *(person for person in duty.chain if person != duty.owner)]
            case.assign(duty.kind, duty.owner, duty.due_at, recipients, opened_at)
        if tier == "major":
            # Straight to leadership, in parallel with the duties: one alert, no chase.
            case._request_alert(
                kind=MAJOR_CASE_ALERT,
                tier=tier,
                recipient=directory.executives[0],
                alert_number=1,
                attempt=1,
                due_at=opened_at,
                requested_at=opened_at,
                next_alert_at=None,
            )
        return case

    def assign(self, kind: str, owner: str, due: datetime, recipients: list[str], at: datetime) -> None:
        """Assign the duty, with its next alert (the first of its chase; the one after those already
        sent when the case reopens) in the same event."""
        duty = self._as_assigned(kind, owner, due, recipients)
        number = duty.alerts_sent + 1
        target = duty.next_alert(number, at, self.chase, self.calendar)
        alert = None
        if target is not None:
            alert = {
                "recipient": target.recipient,
                "tier": self.tier,
                "alert_number": number,
                "attempt": target.attempt,
                "next_alert_at": target.next_alert_at,
            }
        self._assign(kind=kind, owner=owner, due_at=due, assigned_at=at, recipients=recipients, alert=alert)

    def _as_assigned(self, kind: str, owner: str, due_at: datetime, recipients: list[str]) -> Duty:
        """The duty as assigned: when it is assigned again (the case reopens), its alerts number on."""
        previous = self.duties.get(kind)
        duty = Duty(kind=kind, owner=owner, due_at=due_at, recipients=list(recipients))
        if previous is not None:
            duty.alerts_sent = duty.alerts_before_owner = previous.alerts_sent
            duty.history = previous.history
        return duty

    @event(DutyAssigned)
    def _assign(
        self,
        kind: str,
        owner: str,
        due_at: datetime,
        assigned_at: datetime,
        recipients: list[str],
        alert: dict[str, Any] | None,
    ) -> None:
        duty = self.duties[kind] = self._as_assigned(kind, owner, due_at, recipients)
        duty.history.append(f"{assigned_at.isoformat()} assigned to {owner}, due {due_at.isoformat()}")
        if alert is not None:
            self._alerted(duty, alert["alert_number"], alert["recipient"], alert["attempt"], assigned_at)

    def alert(self, kind: str, alert_number: int, now: datetime) -> bool:
        """Send alert number N for a duty, if it is still owed and N is the next one; False otherwise."""
        duty = self.duties.get(kind)
        if duty is None or not duty.is_chased or duty.alerts_sent != alert_number - 1:
            return False
        target = duty.next_alert(alert_number, now, self.chase, self.calendar)
        if target is None:
            return False
        self._request_alert(
            kind=kind,
            tier=self.tier,
            recipient=target.recipient,
            alert_number=alert_number,
            attempt=target.attempt,
            due_at=duty.due_at,
            requested_at=now,
            next_alert_at=target.next_alert_at,
        )
        return True

    @event(AlertRequested)
    def _request_alert(
        self,
        kind: str,
        tier: str,
        recipient: str,
        alert_number: int,
        attempt: int,
        due_at: datetime,
        requested_at: datetime,
        next_alert_at: datetime | None,
    ) -> None:
        duty = self.duties.get(kind)
        if duty is not None:
            self._alerted(duty, alert_number, recipient, attempt, requested_at)

    @staticmethod
    def _alerted(duty: Duty, alert_number: int, recipient: str, attempt: int, at: datetime) -> None:
        duty.alerted_now(alert_number, recipient)
        duty.history.append(f"{at.isoformat()} alert {alert_number} to {recipient} (attempt {attempt})")

    def deadline_reached(self, kind: str, due_at: datetime, now: datetime) -> bool:
        """For the deadline the duty has now: a fire for the deadline before a reopening changes nothing."""
        duty = self.duties.get(kind)
        if duty is None or not duty.is_open or duty.deadline_passed or duty.due_at != due_at:
            return False
        if kind in REPORTING_DUTIES:
            self._miss(kind=kind, person=duty.owner, due_at=duty.due_at, at=now)
        else:
            self._pass_deadline(kind=kind, due_at=duty.due_at, at=now)
        return True

    @event(DutyMissed)
    def _miss(self, kind: str, person: str, due_at: datetime, at: datetime) -> None:
        self.duties[kind].deadline_passed = True
        self.duties[kind].history.append(f"{at.isoformat()} missed by {person}")

    @event(DeadlinePassed)
    def _pass_deadline(self, kind: str, due_at: datetime, at: datetime) -> None:
        self.duties[kind].deadline_passed = True
        self.duties[kind].history.append(f"{at.isoformat()} deadline passed")

    # Actions of people

    def people(self) -> set[str]:
        """Everyone who may act on the case: the first hearer and every duty's chain."""
        return {self.heard_by, *(person for duty in self.duties.values() for person in duty.recipients)}

    def _check_may_act(self, by: str, duty: Duty | None = None) -> None:
        allowed = set(duty.recipients) if duty is not None else self.people()
        if by not in allowed:
            where = f"the duty {duty.kind}" if duty is not None else "this case"
            raise NotPermitted(f"{by} is neither the owner of {where} nor in its chain")

    def _check_open(self) -> None:
        if self.closed_at is not None:
            raise NotPossible("the case is closed")

    def _duty(self, kind: str) -> Duty:
        if kind not in self.duties:
            raise NotPossible(f"the case has no duty {kind!r}; it has {', '.join(self.duties)}")
        return self.duties[kind]

    def acknowledge(self, kind: str, by: str, at: datetime) -> None:
        """Stops the chase for the duty; a late acknowledgement from an earlier recipient still counts.
        Acknowledging the supervisor's alert is also that duty done."""
        duty = self._duty(kind)
        self._check_may_act(by, duty)
        if duty.acknowledged_by is None and duty.is_open:
            self._acknowledge(kind=kind, by=by, at=at)
        if kind == "supervisor_acknowledgement" and duty.is_open:
            self._fulfil(kind=kind, by=by, at=at, how="acknowledged")

    @event(AlertAcknowledged)
    def _acknowledge(self, kind: str, by: str, at: datetime) -> None:
        self.duties[kind].acknowledged_by = by
        self.duties[kind].history.append(f"{at.isoformat()} acknowledged by {by}")

    @event(DutyFulfilled)
    def _fulfil(self, kind: str, by: str, at: datetime, how: str) -> None:
        self.duties[kind].fulfilled_by = by
        self.duties[kind].fulfilled_at = at
        self.duties[kind].history.append(f"{at.isoformat()} done by {by}: {how}")

    def file_report(self, by: str, to: str, text: str, at: datetime, directory: Directory) -> list[str]:
        """A short report to an executive; it fulfils the track(s) of the person who files it."""
        self._check_open()
        if to not in directory.executives:
            raise NotPossible(f"reports go to an executive ({', '.join(directory.executives)}), not {to}")
        owners = {kind: self.duties[kind].owner for kind in REPORT_TRACKS}
        tracks = report_tracks(by, owners, self.duties["supervisor_report"].recipients)
        if not tracks:
            raise NotPermitted(f"{by} owes no report on this case")
        for track in tracks:
            self._file_report(track=track, by=by, to=to, text=text, at=at)
            if self.duties[track].is_open:
                self._fulfil(kind=track, by=by, at=at, how=f"reported to {to}")
        return tracks

    @event(ReportFiled)
    def _file_report(self, track: str, by: str, to: str, text: str, at: datetime) -> None:
        self.reports.append(f"{at.isoformat()} {track} by {by} to {to}")

    def check_call_time(self, by: str, at: datetime, now: datetime, within: timedelta) -> None:
        """The apology call's time as typed in: not in the future, not before the complaint occurred, and
        at most ``within`` before ``now``, when it is recorded (``shared.entered``; the audit report reads
        the first-response times from it). Checked after who may record the call, so that a refusal tells
        someone outside the case nothing of it."""
        self._check_may_act(by, self._duty("first_response"))
        occurred = ("the complaint occurred", self.complaint_occurred_at)
        check_entered("at", at, now, within, "first_response_within_seconds", occurred)

    def record_first_response(self, by: str, at: datetime, patient_reached: bool, notes: str) -> None:
        """The apology call and fact-check. Not reached: the duty stays open and the chase goes on."""
        self._check_open()
        duty = self._duty("first_response")
        self._check_may_act(by, duty)
        self._record_first_response(
            by=by, at=at, patient_reached=patient_reached, notes=notes, within_window=at <= duty.due_at
        )
        if patient_reached and duty.is_open:
            self._fulfil(
                kind="first_response", by=by, at=at, how="patient called, apology and facts confirmed"
            )

    @event(FirstResponseRecorded)
    def _record_first_response(
        self, by: str, at: datetime, patient_reached: bool, notes: str, within_window: bool
    ) -> None:
        outcome = "reached" if patient_reached else "not reached"
        self.duties["first_response"].history.append(f"{at.isoformat()} call by {by}: patient {outcome}")

    def give_feedback(self, by: str, at: datetime) -> None:
        self._check_open()
        duty = self._duty("patient_feedback")
        self._check_may_act(by, duty)
        if duty.is_open:
            self._fulfil(kind="patient_feedback", by=by, at=at, how="result fed back to the patient")

    def callback_completed(self, by: str, at: datetime) -> None:
        """A callback visit after the response reached the patient: the result was fed back."""
        duty = self.duties["patient_feedback"]
        if self.closed_at is None and duty.is_open:
            self._fulfil(kind="patient_feedback", by=by, at=at, how="callback visit (回访): patient reached")

    def reopen(self, callback_id: UUID, reason: str, at: datetime, first_response: DutyRule) -> None:
        """A callback found the patient unsatisfied: open again, with a new first-response duty from now."""
        duty = self.duties["first_response"]
        self._reopen(callback_id=callback_id, reason=reason, at=at)
        self.assign(
            "first_response", duty.owner, due_at(first_response, at, at, self.calendar), duty.recipients, at
        )

    @event(Reopened)
    def _reopen(self, callback_id: UUID, reason: str, at: datetime) -> None:
        self.closed_at = None
        self.reopened.append(f"{at.isoformat()} reopened after callback {callback_id}: {reason}")

    def assess_harassment(
        self,
        by: str,
        demand_valid: bool,
        means_appropriate: bool,
        impact_on_staff: bool,
        at: datetime,
        directory: Directory,
    ) -> bool:
        """Judged on three criteria, never assumed. Harassment hands the case to a second-line
        responder and marks the first hearer as protected."""
        self._check_open()
        self._check_may_act(by)
        is_harassment = (not demand_valid or not means_appropriate) and impact_on_staff
        second_line = directory.second_line_responder() if is_harassment else None
        self._assess(
            by=by,
            demand_valid=demand_valid,
            means_appropriate=means_appropriate,
            impact_on_staff=impact_on_staff,
            is_harassment=is_harassment,
            second_line=second_line,
            protected_staff=self.heard_by if is_harassment else None,
            at=at,
        )
        if second_line is not None:
            for kind in RESPONSE_DUTIES:
                if self.duties[kind].is_open and self.duties[kind].owner != second_line:
                    chain = [person for person in directory.chain_above(second_line) if person != second_line]
                    self._reassign(
                        kind=kind,
                        owner=second_line,
                        recipients=[second_line, *chain],
                        reason="judged customer harassment: handed to the second-line responder",
                        at=at,
                    )
                    self.alert(kind, self.duties[kind].alerts_sent + 1, at)
        return is_harassment

    @event(DutyReassigned)
    def _reassign(self, kind: str, owner: str, recipients: list[str], reason: str, at: datetime) -> None:
        duty = self.duties[kind]
        duty.owner = owner
        duty.recipients = list(recipients)
        duty.alerts_before_owner = duty.alerts_sent
        duty.acknowledged_by = None
        duty.history.append(f"{at.isoformat()} reassigned to {owner}: {reason}")

    @event(HarassmentAssessed)
    def _assess(
        self,
        by: str,
        demand_valid: bool,
        means_appropriate: bool,
        impact_on_staff: bool,
        is_harassment: bool,
        second_line: str | None,
        protected_staff: str | None,
        at: datetime,
    ) -> None:
        self.harassment = f"harassment, handed to {second_line}" if is_harassment else "not harassment"
        self.protected_staff = protected_staff

    def record_corrective_measure(self, by: str, measure: str, responsible: str, at: datetime) -> None:
        self._check_open()
        self._check_may_act(by)
        self._record_measure(by=by, measure=measure, responsible=responsible, at=at)

    @event(CorrectiveMeasureRecorded)
    def _record_measure(self, by: str, measure: str, responsible: str, at: datetime) -> None:
        self.corrective_measure = f"{measure} (responsible: {responsible})"

    def open_duties(self) -> list[str]:
        return [kind for kind, duty in self.duties.items() if duty.is_open]

    def close(self, by: str, at: datetime) -> None:
        self._check_open()
        self._check_may_act(by)
        if self.open_duties():
            raise NotPossible("the case has open duties", self.open_duties())
        if self.corrective_measure is None:
            raise NotPossible("a case closes with a corrective measure and a responsible person")
        self._close(by=by, at=at)

    @event(Closed)
    def _close(self, by: str, at: datetime) -> None:
        self.closed_at = at
