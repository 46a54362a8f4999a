"""`kizuki audit report`: the reporting regime rebuilt from the record's first event, deterministically.

Only the events that carry the regime's facts (and checkpoints, for the time) are decoded. Memory
grows with complaints, not events. The same record gives byte-identical output: nothing depends on
the clock or on dictionary order. What is not yet due is judged as of the record's last event.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, get_args

from kizuki.audit import RecordMessage
from shared.duty_status import REPORTING_ROLES, STATUSES, duty_status, nearest_rank
from shared.events import CheckpointSigned, DutyKind

TRACKS = ("first_hearer_report", "supervisor_report")
DUTY_KINDS: tuple[str, ...] = get_args(DutyKind)
CHECKPOINT = CheckpointSigned.type_name()
READ = frozenset(
    {
        "ComplaintReceived",
        "EscalationStarted",
        "DutyAssigned",
        "NotificationSent",
        "NotificationNotDelivered",
        "DutyFulfilled",
        "DutyMissed",
        "DeadlinePassed",
        "ReportFiled",
        "FirstResponseRecorded",
        "CallbackScheduled",
        "CallbackCompleted",
        "CallbackOverdue",
        "CaseReopened",
        "CorrectiveMeasureRecorded",
        "CaseClosed",
    }
)


@dataclass
class Duty:
    kind: str
    due_at: datetime
    done_at: datetime | None = None
    deadline_passed: bool = False  # the record says so (DutyMissed, DeadlinePassed)

    def status(self, as_of: datetime | None) -> str:
        """As of the record's last event."""
        return duty_status(self.kind, self.due_at, self.done_at, self.deadline_passed, as_of)


@dataclass
class Timeline:
    """What the record says of one complaint."""

    complaint_id: str
    occurred_at: datetime | None = None
    registered_at: datetime | None = None
    channel: str = ""
    department: str = ""
    tier: str = ""
    supervisor_reached_at: datetime | None = None
    acknowledged_at: datetime | None = None
    executive_reached_at: dict[str, datetime] = field(default_factory=dict)
    first_response_at: datetime | None = None  # as the person who called stated it
    first_response_recorded_at: datetime | None = None  # when they recorded it: a stated time can be earlier
    first_response_within_window: bool | None = None
    feedback_at: datetime | None = None
    callbacks_scheduled: int = 0
    callbacks_completed: int = 0
    callbacks_overdue: int = 0
    reopened: int = 0
    corrective_measure: str | None = None
    responsible: str | None = None
    closed_at: datetime | None = None
    duties: dict[str, Duty] = field(default_factory=dict)
    missed: list[str] = field(default_factory=list)  # the roles that missed a reporting duty
    unreached: list[str] = field(default_factory=list)  # staff an alert could not be delivered to
    as_of: datetime | None = None  # the record's last event: what is not yet due is judged then

    def statuses(self) -> dict[str, str]:
        return {kind: duty.status(self.as_of) for kind, duty in sorted(self.duties.items())}

    def apply(self, kind: str, event: dict[str, Any]) -> None:
        at = _time(event["occurred_at"])
        duty: DutyKind | None = event.get("duty")
        match kind:
            case "ComplaintReceived":
                self.occurred_at, self.registered_at = at, _time(event["recorded_at"])
                self.channel, self.department = event["channel"], event["department"]
                self.tier = self.tier or event.get("tier") or ""
            case "EscalationStarted":
                self.tier = event["tier"]
            case "DutyAssigned":
                self.duties[event["duty"]] = Duty(event["duty"], _time(event["due_at"]))
            case "NotificationSent" if duty == "supervisor_acknowledgement":
                self.supervisor_reached_at = self.supervisor_reached_at or at
            case "NotificationNotDelivered":
                self.unreached.append(event["recipient"])
            case "DutyFulfilled":
                if duty in self.duties and self.duties[duty].done_at is None:
                    self.duties[duty].done_at = at
                if duty == "supervisor_acknowledgement":
                    self.acknowledged_at = self.acknowledged_at or at
                elif duty == "patient_feedback":
                    self.feedback_at = self.feedback_at or at
            case "DutyMissed":
                self.missed.append(REPORTING_ROLES.get(event["duty"], event["duty"]))
                if duty in self.duties:
                    self.duties[duty].deadline_passed = True
            case "DeadlinePassed" if duty in self.duties:
                self.duties[duty].deadline_passed = True
            case "ReportFiled":
                self.executive_reached_at.setdefault(event["track"], at)
            case "FirstResponseRecorded" if event["patient_reached"] and self.first_response_at is None:
                self.first_response_at, self.first_response_recorded_at = at, _time(event["recorded_at"])
                self.first_response_within_window = event["within_window"]
            case "CallbackScheduled" if event["attempt"] == 1:  # a retry is the same callback
                self.callbacks_scheduled += 1
            case "CallbackCompleted":
                self.callbacks_completed += 1
            case "CallbackOverdue":
                self.callbacks_overdue += 1
            case "CaseReopened":
                self.reopened += 1
            case "CorrectiveMeasureRecorded":
                self.corrective_measure, self.responsible = event["measure"], event["responsible"]
            case "CaseClosed":
                self.closed_at = at

    @property
    def first_response_seconds(self) -> float | None:
        if self.first_response_at is None or self.occurred_at is None:
            return None
        return (self.first_response_at - self.occurred_at).total_seconds()

    def row(self) -> dict[str, Any]:
        statuses = self.statuses()
        return {
            "complaint_id": self.complaint_id,
            "occurred_at": iso_or_none(self.occurred_at),
            "registered_at": iso_or_none(self.registered_at),
            "department": self.department,
            "channel": self.channel,
            "tier": self.tier,
            "supervisor_reached_at": iso_or_none(self.supervisor_reached_at),
            "acknowledged_at": iso_or_none(self.acknowledged_at),
            **{
                f"executive_reached_{track}_at": iso_or_none(self.executive_reached_at.get(track))
                for track in TRACKS
            },
            "first_response_at": iso_or_none(self.first_response_at),
            "first_response_recorded_at": iso_or_none(self.first_response_recorded_at),
            "first_response_within_window": self.first_response_within_window,
            "feedback_at": iso_or_none(self.feedback_at),
            "callbacks_scheduled": self.callbacks_scheduled,
            "callbacks_completed": self.callbacks_completed,
            "callbacks_overdue": self.callbacks_overdue,
            "reopened": self.reopened,
            "alerts_not_delivered": len(self.unreached),
            "corrective_measure": self.corrective_measure,
            "responsible": self.responsible,
            "closed_at": iso_or_none(self.closed_at),
            **{f"{kind}_status": statuses.get(kind) for kind in DUTY_KINDS},
        }


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def iso_or_none(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class Rebuild:
    """Feed it the record in order, then ask for the timelines of a period."""

    def __init__(self) -> None:
        self.found: dict[str, Timeline] = {}
        self.as_of: datetime | None = None  # the latest time the record has reached

    def add(self, message: RecordMessage) -> None:
        kind = message.headers.get("Kizuki-Event-Type")
        complaint_id = message.headers.get("Kizuki-Complaint-Id")
        if message.data is None or (kind not in READ and kind != CHECKPOINT):
            return
        event = json.loads(message.data)
        recorded = _time(event["recorded_at"])
        self.as_of = recorded if self.as_of is None else max(self.as_of, recorded)
        if kind == CHECKPOINT or complaint_id is None:
            return
        timeline = self.found.get(complaint_id) or self.found.setdefault(complaint_id, Timeline(complaint_id))
        timeline.apply(kind, event)

    def timelines(self, since: datetime | None = None, until: datetime | None = None) -> list[Timeline]:
        """Each complaint that occurred in [since, until), in order of occurrence, as of the record's end."""
        for timeline in self.found.values():
            timeline.as_of = self.as_of
        return sorted(
            (
                timeline
                for timeline in self.found.values()
                if timeline.occurred_at is not None
                and (since is None or timeline.occurred_at >= since)
                and (until is None or timeline.occurred_at < until)
            ),
            key=lambda timeline: (timeline.occurred_at, timeline.complaint_id),
        )


def summary(found: list[Timeline]) -> dict[str, Any]:
    duties: dict[str, Counter[str]] = {}
    for timeline in found:
        for kind, status in timeline.statuses().items():
            duties.setdefault(kind, Counter())[status] += 1
    response_times = [t.first_response_seconds for t in found if t.first_response_seconds is not None]
    return {
        "complaints": len(found),
        "as_of": iso_or_none(found[0].as_of) if found else None,
        "duties_on_time": {kind: _duty_figures(counted) for kind, counted in sorted(duties.items())},
        "missed_reporting_duties_by_role": dict(sorted(Counter(r for t in found for r in t.missed).items())),
        # Whom the alerts did not reach: a contact missing from the directory, or a channel down.
        "alerts_not_delivered_by_recipient": dict(
            sorted(Counter(r for t in found for r in t.unreached).items())
        ),
        "first_response_seconds": {
            "count": len(response_times),
            "median": nearest_rank(response_times, 0.5),
            "p90": nearest_rank(response_times, 0.9),
        },
        "first_responses_within_window": sum(bool(t.first_response_within_window) for t in found),
        "by_tier": _counts(t.tier for t in found),
        "by_channel": _counts(t.channel for t in found),
        "by_department": _counts(t.department for t in found),
    }


def _duty_figures(counted: Counter[str]) -> dict[str, Any]:
    """Each status's count; the share on time is of the duties done or past their deadline (none
    when every one is still ahead)."""
    owed = counted.total()
    due = owed - counted["not_yet_due"]
    figures: dict[str, Any] = {"owed": owed, **{status: counted[status] for status in STATUSES}}
    figures["share"] = round(counted["on_time"] / due, 4) if due else None
    return figures


def _counts(values: Iterable[str]) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))
